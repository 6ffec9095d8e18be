/* SPDX-License-Identifier: MIT */
/*
 * bench_mp.c - `iovm bench mp`: a DMA heap and its zones shared between
 * processes (iovm/mp.h) beside DPDK 22.11's primary and secondaries,
 * measured in one run: how long a second process takes to attach, its
 * alloc+free and zone lookups, and how long the memory of a process killed
 * with kill -9 takes to come back.
 *
 * Every process is forked from this one, which itself opens no context and
 * starts no EAL (so it stays single-threaded, and every fork is safe): an
 * owner process shares the heap, and each measurement is a fresh process
 * that attaches to it. Each timing is warmed up, repeated, and reported as
 * the median. The device process's rows (descriptors from N clients
 * into one device process) are bench_mp_dev.c's.
 */
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <iovm.h>

#include "bench.h"
#include "bench_mp.h"

/* Keeps a computed value alive without a store the compiler could drop. */
#define KEEP(x) __asm__ volatile("" : : "r"(x) : "memory")

#define HEAP_SIZE (UINT64_C(64) << 20)
/* How long the recovery loop waits for the memory before it calls it failed. */
#define RECOVERY_TIMEOUT_NS (UINT64_C(10) * 1000000000u)

/* ---- children and pipes ---- */

int mp_child_start(struct mp_child *c, void (*fn)(int rd, int wr, void *arg), void *arg)
{
	int up[2], down[2];

	if (pipe(up))
		return -errno;
	if (pipe(down)) {
		int err = -errno;

		close(up[0]);
		close(up[1]);
		return err;
	}
	fflush(NULL);
	c->pid = fork();
	if (c->pid < 0) {
		int err = -errno;

		close(up[0]);
		close(up[1]);
		close(down[0]);
		close(down[1]);
		return err;
	}
	if (!c->pid) {
		close(up[0]);
		close(down[1]);
		fn(down[0], up[1], arg);
		_exit(0);
	}
	close(up[1]);
	close(down[0]);
	c->rd = up[0];
	c->wr = down[1];
	return 0;
}

int mp_child_wait(struct mp_child *c)
{
	int st = 0;

	close(c->rd);
	close(c->wr);
	while (waitpid(c->pid, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFSIGNALED(st) ? -WTERMSIG(st) : WEXITSTATUS(st);
}

int mp_put(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EPIPE;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int mp_get(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EPIPE;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

void mp_serve(int rd, int wr, void (*run)(const struct mp_cmd *cmd, struct mp_reply *reply))
{
	struct mp_cmd cmd;

	while (!mp_get(rd, &cmd, sizeof(cmd))) {
		struct mp_reply reply = { .v = NAN };

		run(&cmd, &reply);
		if (mp_put(wr, &reply, sizeof(reply)))
			return;
	}
}

void mp_call(struct mp_child *side, uint32_t op, uint64_t n, struct mp_reply *reply)
{
	struct mp_cmd cmd = { .op = op, .n = n };

	if (mp_put(side->wr, &cmd, sizeof(cmd)) || mp_get(side->rd, reply, sizeof(*reply))) {
		reply->v = NAN;
		snprintf(reply->why, sizeof(reply->why), "the process measuring died");
	}
}

uint64_t mp_iters(const struct mp_cfg *cfg, uint64_t full)
{
	return cfg->quick ? full / 100 + 1 : full;
}

/* ---- iovm: the owner ---- */

static struct mp_cfg cfg;
static char share_name[IOVM_SHARE_NAMESIZE];

enum owner_cmd { CMD_BASELINE = 1, CMD_ARM };

struct owner_ready {
	int err;
	uint64_t page_size;
	char why[128];
};

static void owner_fail(int wr, int err, const char *what)
{
	struct owner_ready r = { .err = err };

	snprintf(r.why, sizeof(r.why), "%s: %s: %s", what, iovm_strerror(err), iovm_error_detail());
	mp_put(wr, &r, sizeof(r));
	_exit(1);
}

/*
 * After CMD_ARM, poll until the share has reaped one more dead process and
 * the heap is as free as at CMD_BASELINE: the dead process's memory can be
 * allocated again. Sends the time it saw that, or 0 after the timeout.
 */
static void owner_watch(struct iovm_ctx *ctx, uint64_t heap_free, int wr)
{
	struct iovm_share_info info;
	uint64_t reaped, start, t = 0;

	iovm_share_info(ctx, &info);
	reaped = info.reaped;
	if (mp_put(wr, &t, sizeof(t))) /* armed */
		_exit(1);
	start = bench_now_ns();
	for (;;) {
		uint64_t now;

		iovm_share_info(ctx, &info);
		now = bench_now_ns();
		if (info.reaped > reaped && info.heap_free >= heap_free) {
			t = now;
			break;
		}
		if (now - start > RECOVERY_TIMEOUT_NS)
			break;
		sched_yield();
	}
	mp_put(wr, &t, sizeof(t));
}

static void owner_main(int rd, int wr, void *arg)
{
	struct iovm_share_params params = { .heap_size = HEAP_SIZE, .group = -1 };
	const struct iovm_zone *zones[MP_ZONES];
	struct owner_ready ready = { 0 };
	struct iovm_share_info info;
	struct iovm_ctx *ctx;
	uint64_t heap_free = 0;
	uint32_t cmd;
	int ret;

	(void)arg;
	if ((ret = iovm_open(cfg.opts, &ctx)))
		owner_fail(wr, ret, "iovm_open");
	if ((ret = iovm_share(ctx, share_name, &params)))
		owner_fail(wr, ret, "iovm_share");
	for (unsigned i = 0; i < MP_ZONES; i++) {
		char name[32];

		snprintf(name, sizeof(name), "bench-z%u", i);
		if ((ret = iovm_zone_reserve(ctx, name, 4096, 0, 0, &zones[i])) < 0)
			owner_fail(wr, ret, "iovm_zone_reserve");
	}
	iovm_share_info(ctx, &info);
	ready.page_size = info.page_size;
	if (mp_put(wr, &ready, sizeof(ready)))
		_exit(1);
	while (!mp_get(rd, &cmd, sizeof(cmd))) {
		if (cmd == CMD_BASELINE) {
			iovm_share_info(ctx, &info);
			heap_free = info.heap_free;
			mp_put(wr, &heap_free, sizeof(heap_free));
		} else if (cmd == CMD_ARM) {
			owner_watch(ctx, heap_free, wr);
		}
	}
	for (unsigned i = 0; i < MP_ZONES; i++)
		iovm_zone_free(ctx, zones[i]);
	iovm_close(ctx);
}

/* ---- iovm: attach ---- */

struct attach_done {
	uint64_t t; /* when the first allocation had its PA; 0 when it failed */
	int err;
};

/* A context on the share, or NULL with *err set. */
static struct iovm_ctx *attach_share(int *err)
{
	struct iovm_ctx *ctx = NULL;

	*err = iovm_attach(share_name, cfg.opts, &ctx);
	return *err ? NULL : ctx;
}

static void attach_main(int rd, int wr, void *arg)
{
	struct attach_done done = { 0 };
	struct iovm_ctx *ctx;
	iovm_pa_t pa;
	void *p = NULL;

	(void)rd;
	(void)arg;
	ctx = attach_share(&done.err);
	if (ctx) {
		p = iovm_dma_alloc(ctx, 64, 0, 0);
		if (!p)
			done.err = -errno;
		else if ((done.err = iovm_dma_pa(ctx, p, &pa)) == 0)
			done.t = bench_now_ns();
	}
	mp_put(wr, &done, sizeof(done));
	if (p)
		iovm_dma_free(ctx, p);
	if (ctx)
		iovm_close(ctx);
}

/* One second process, from before its fork until its first allocation had a PA. */
static void attach_once(struct mp_reply *r)
{
	struct attach_done done = { .err = -EPIPE };
	struct mp_child c;
	uint64_t t0 = bench_now_ns();
	int ret;

	r->v = NAN;
	if ((ret = mp_child_start(&c, attach_main, NULL))) {
		snprintf(r->why, sizeof(r->why), "fork: %s", strerror(-ret));
		return;
	}
	mp_get(c.rd, &done, sizeof(done));
	mp_child_wait(&c);
	if (done.t)
		r->v = (double)(done.t - t0) / 1e3;
	else
		snprintf(r->why, sizeof(r->why), "attach, alloc and PA: %s", iovm_strerror(done.err));
}

/* ---- iovm: a second process's alloc+free and lookups ---- */

static double pairs(struct iovm_ctx *ctx, size_t size, uint64_t n)
{
	uint64_t t0 = bench_now_ns();

	for (uint64_t i = 0; i < n; i++) {
		void *p = iovm_dma_alloc(ctx, size, 0, 0);

		KEEP(p);
		iovm_dma_free(ctx, p);
	}
	return (double)(bench_now_ns() - t0) / (double)n;
}

static double lookups(struct iovm_ctx *ctx, uint64_t n)
{
	char names[MP_ZONES][32];
	const struct iovm_zone *z;
	uint64_t t0, sum = 0;

	for (unsigned i = 0; i < MP_ZONES; i++)
		snprintf(names[i], sizeof(names[i]), "bench-z%u", i);
	t0 = bench_now_ns();
	for (uint64_t i = 0; i < n; i++) {
		if (iovm_zone_lookup(ctx, names[i % MP_ZONES], &z))
			return NAN;
		sum += z->pa.addr;
	}
	KEEP(sum);
	return (double)(bench_now_ns() - t0) / (double)n;
}

static struct iovm_ctx *ops_ctx; /* the measuring process's */

static void ops_run(const struct mp_cmd *cmd, struct mp_reply *r)
{
	r->v = cmd->op == MP_PAIR64 ? pairs(ops_ctx, 64, cmd->n)
	     : cmd->op == MP_PAIR4K ? pairs(ops_ctx, 4096, cmd->n)
	     : cmd->op == MP_LOOKUP ? lookups(ops_ctx, cmd->n)
				    : NAN;
	if (isnan(r->v))
		snprintf(r->why, sizeof(r->why), "%s failed", cmd->op == MP_LOOKUP ? "iovm_zone_lookup" : "command");
}

static void ops_main(int rd, int wr, void *arg)
{
	int err;

	(void)arg;
	ops_ctx = attach_share(&err);
	if (mp_put(wr, &err, sizeof(err)) || !ops_ctx)
		return;
	mp_serve(rd, wr, ops_run);
	iovm_close(ops_ctx);
}

static struct mp_child iovm_ops;
static bool iovm_ops_up;

/* iovm's side of a measurement: an attach here, a timing in the measuring process. */
static void iovm_call(uint32_t op, uint64_t n, struct mp_reply *r)
{
	int err = -EPIPE;

	if (op == MP_ATTACH) {
		attach_once(r);
		return;
	}
	if (!iovm_ops_up) {
		r->v = NAN;
		if ((err = mp_child_start(&iovm_ops, ops_main, NULL))) {
			snprintf(r->why, sizeof(r->why), "fork: %s", strerror(-err));
			return;
		}
		if (mp_get(iovm_ops.rd, &err, sizeof(err)) || err) {
			snprintf(r->why, sizeof(r->why), "iovm_attach: %s", iovm_strerror(err));
			mp_child_wait(&iovm_ops);
			return;
		}
		iovm_ops_up = true;
	}
	mp_call(&iovm_ops, op, n, r);
}

/* ---- iovm: recovery after kill -9 ---- */

static void doomed_main(int rd, int wr, void *arg)
{
	struct iovm_ctx *ctx;
	int err, held = 0;
	char c;

	(void)arg;
	ctx = attach_share(&err);
	for (int i = 0; ctx && i < MP_DOOMED_BLOCKS; i++)
		if (iovm_dma_alloc(ctx, (size_t)64 << (i % 7), 0, 0)) /* 64 B to 4 KiB */
			held++;
	mp_put(wr, &held, sizeof(held));
	while (read(rd, &c, 1) < 0 && errno == EINTR) /* until killed */
		;
	_exit(3);
}

/* One round: the time from kill -9 until the owner saw the memory back, in us. */
static double recovery_round(struct mp_child *owner)
{
	uint32_t cmd = CMD_BASELINE;
	uint64_t heap_free, armed, t1, t0;
	struct mp_child doomed;
	int held = 0;

	if (mp_put(owner->wr, &cmd, sizeof(cmd)) || mp_get(owner->rd, &heap_free, sizeof(heap_free)))
		return NAN;
	if (mp_child_start(&doomed, doomed_main, NULL))
		return NAN;
	if (mp_get(doomed.rd, &held, sizeof(held)) || held != MP_DOOMED_BLOCKS) {
		bench_note("iovm: the process to kill holds %d of %d blocks", held, MP_DOOMED_BLOCKS);
		kill(doomed.pid, SIGKILL);
		mp_child_wait(&doomed);
		return NAN;
	}
	cmd = CMD_ARM;
	if (mp_put(owner->wr, &cmd, sizeof(cmd)) || mp_get(owner->rd, &armed, sizeof(armed))) {
		kill(doomed.pid, SIGKILL);
		mp_child_wait(&doomed);
		return NAN;
	}
	t0 = bench_now_ns();
	kill(doomed.pid, SIGKILL);
	if (mp_get(owner->rd, &t1, sizeof(t1)))
		t1 = 0;
	mp_child_wait(&doomed);
	if (!t1) {
		bench_note("iovm: the killed process's memory did not come back within %llu s",
			   (unsigned long long)(RECOVERY_TIMEOUT_NS / 1000000000u));
		return NAN;
	}
	return (double)(t1 - t0) / 1e3;
}

static double iovm_recovery_us(struct mp_child *owner)
{
	double v[32];

	for (unsigned r = 0; r < cfg.reps + 1; r++) { /* the first warms up */
		double t = recovery_round(owner);

		if (isnan(t))
			return NAN;
		if (r)
			v[r - 1] = t;
	}
	return bench_median(v, cfg.reps);
}

/* ---- the run ---- */

static struct mp_child dpdk;
static bool dpdk_up;

/*
 * Why DPDK's rows have no peer: not built in, or not asked for. NULL when
 * it was to run: then a DPDK that did not start is a peer that failed.
 */
static const char *dpdk_absent(void)
{
#ifdef HAVE_DPDK
	return cfg.dpdk ? NULL : "none (--no-dpdk)";
#else
	return "none (DPDK not built in)";
#endif
}

/*
 * One row: both sides warmed up, then their repetitions alternated (iovm,
 * DPDK, iovm...), so that a change in the machine's load hits both alike.
 */
static void measure(const char *name, const char *unit, uint32_t op, uint64_t n, const char *peer,
		    const char *target)
{
	double vi[32], vd[32];
	unsigned ni = 0, nd = 0;
	struct mp_reply r;

	bench_progress("%s", name);
	iovm_call(op, n / 10 + 1, &r);
	if (dpdk_up)
		mp_call(&dpdk, op, n / 10 + 1, &r);
	for (unsigned i = 0; i < cfg.reps; i++) {
		if (ni == i) {
			iovm_call(op, n, &r);
			if (!isnan(r.v))
				vi[ni++] = r.v;
			else
				bench_note("iovm: %s: %s", name, r.why);
		}
		if (dpdk_up && nd == i) {
			mp_call(&dpdk, op, n, &r);
			if (!isnan(r.v))
				vd[nd++] = r.v;
			else
				bench_note("DPDK: %s: %s", name, r.why);
		}
	}
	bench_result(name, unit, ni == cfg.reps ? bench_median(vi, ni) : NAN,
		     dpdk_up || !dpdk_absent() ? peer : dpdk_absent(), nd == cfg.reps ? bench_median(vd, nd) : NAN,
		     target);
}

static int start_owner(struct mp_child *owner)
{
	struct owner_ready ready = { 0 };
	char a[32];
	int ret;

	snprintf(share_name, sizeof(share_name), "iovm-bench-mp-%d", (int)getpid());
	if ((ret = mp_child_start(owner, owner_main, NULL))) {
		fprintf(stderr, "iovm bench mp: fork: %s\n", strerror(-ret));
		return -1;
	}
	if (mp_get(owner->rd, &ready, sizeof(ready)) || ready.err) {
		fprintf(stderr, "iovm bench mp: %s\n", ready.err ? ready.why : "the owner died");
		mp_child_wait(owner);
		return -1;
	}
	bench_note("iovm: a %s shared heap in %s pages, %u zones; processes forked from one without iovm",
		   bench_size(HEAP_SIZE, a, sizeof(a)), ready.page_size >= (2u << 20) ? "2 MiB" : "4 KiB",
		   MP_ZONES);
	return 0;
}

int bench_mp(const struct bench_args *args)
{
	uint64_t n = 0;
	struct mp_child owner;
	char why[160];
	double recovery_us;
	int ret;

	/*
	 * A child that failed a round reports it and exits; the next round's
	 * write to its pipe must fail with EPIPE, not kill the benchmark with
	 * SIGPIPE and the notes that say what failed (printed at the end).
	 */
	signal(SIGPIPE, SIG_IGN);
	cfg.quick = args->quick;
	cfg.dpdk = args->dpdk;
	cfg.opts = args->opts;
	cfg.reps = args->quick ? 3 : 9;
	n = mp_iters(&cfg, 2000000);
	/* iovm's heap (32 pages of 2 MiB) and DPDK's (at most 48) at once. */
	bench_hugepages_reserve(cfg.quick ? 0 : 96);
	if (start_owner(&owner))
		return 1;
	dpdk_up = mp_dpdk_start(&cfg, &dpdk, why, sizeof(why)) == 0;
	if (!dpdk_up)
		bench_note("DPDK: %s; iovm alone", why);

	measure("attach: spawn to first alloc+PA", "us", MP_ATTACH, 0, "DPDK secondary rte_eal_init",
		"ratio <= 0.1");
	measure("alloc+free 64 B, second process", "ns/pair", MP_PAIR64, n,
		"rte_malloc+rte_free, secondary", "ratio <= 0.33");
	measure("alloc+free 4 KiB, second process", "ns/pair", MP_PAIR4K, n,
		"rte_malloc+rte_free, secondary", "ratio <= 0.33");
	measure("zone lookup by name, second process", "ns/lookup", MP_LOOKUP, n,
		"rte_memzone_lookup, secondary", NULL);
	if (iovm_ops_up)
		mp_child_wait(&iovm_ops);
	if (dpdk_up)
		mp_dpdk_stop(&dpdk);

	bench_progress("recovery after kill -9");
	recovery_us = iovm_recovery_us(&owner);
	bench_result("recovery: kill -9 of a holder of 1000 blocks", "us", recovery_us,
		     "none (DPDK cannot reclaim)", NAN, NULL);
	mp_dev_bench(&cfg, share_name);
	mp_sdom_bench(&cfg, share_name);
	mp_mr_bench(&cfg, share_name);
	ret = mp_child_wait(&owner);
	if (ret)
		bench_note("iovm: the owner ended with %d", ret);
	bench_note("recovery: from kill -9 until the owner has freed all the dead process held (%d blocks of 64 B to 4 KiB)",
		   MP_DOOMED_BLOCKS);
	bench_note("DPDK has no recovery: a dead secondary's rte_malloc memory stays allocated until the primary restarts");
	bench_report(args, "iovm bench mp", cfg.reps);
	return 0;
}
