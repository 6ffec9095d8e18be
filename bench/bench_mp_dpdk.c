/* SPDX-License-Identifier: MIT */
/*
 * bench_mp_dpdk.c - the peer of `iovm bench mp`: DPDK 22.11's
 * multi-process, a primary and secondaries (--proc-type=secondary) started
 * in the same run and measured as iovm's processes are.
 *
 * DPDK's multi-process shares hugetlbfs files (--no-huge memory is
 * anonymous: a secondary cannot map it), and its runtime files live in
 * /var/run/dpdk/PREFIX. So the measurement runs in a process of its own
 * with a private mount namespace: a tmpfs on /run for the runtime files, a
 * hugetlbfs of a capped size in it for the pages, and a file prefix unique
 * to the run. When that process and its children end, the namespace goes
 * and everything DPDK left with it, even after a crash: nothing is left in
 * the machine's /run, /dev/hugepages or hugepage pool.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "bench_mp.h"

#ifdef HAVE_DPDK
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_malloc.h>
#include <rte_memory.h>
#include <rte_memzone.h>

#define KEEP(x) __asm__ volatile("" : : "r"(x) : "memory")

/* The primary's memory (-m, in MiB, kept for its life) and the hugetlbfs cap. */
#define DPDK_MEM_MB 32
#define STRINGIFY(x) #x
#define STR(x) STRINGIFY(x)
#define HUGE_MOUNT_MB 96
#define HUGE_DIR "/run/iovm-bench-huge"

static char file_prefix[64];

static int eal_start(bool primary, char *why, size_t len)
{
	char prefix_arg[96], *argv[16];
	int argc = 0;

	snprintf(prefix_arg, sizeof(prefix_arg), "--file-prefix=%s", file_prefix);
	argv[argc++] = primary ? "iovm-bench-primary" : "iovm-bench-secondary";
	argv[argc++] = primary ? "--proc-type=primary" : "--proc-type=secondary";
	argv[argc++] = prefix_arg;
	argv[argc++] = "--no-pci";
	argv[argc++] = "--no-telemetry";
	argv[argc++] = "--log-level=lib.*:error";
	argv[argc++] = "-l";
	argv[argc++] = "0";
	if (primary) {
		argv[argc++] = "--iova-mode=pa";
		argv[argc++] = "--huge-dir=" HUGE_DIR;
		argv[argc++] = "-m";
		argv[argc++] = STR(DPDK_MEM_MB);
	}
	argv[argc] = NULL;
	if (rte_eal_init(argc, argv) < 0) {
		snprintf(why, len, "rte_eal_init(%s): %s", argv[1], rte_strerror(rte_errno));
		return -1;
	}
	return 0;
}

/* ---- the primary ---- */

struct ready {
	int err;
	char why[128];
};

static void primary_main(int rd, int wr, void *arg)
{
	struct ready r = { 0 };
	char c;

	(void)arg;
	if (eal_start(true, r.why, sizeof(r.why))) {
		r.err = 1;
		mp_put(wr, &r, sizeof(r));
		return;
	}
	for (unsigned i = 0; i < MP_ZONES && !r.err; i++) {
		char name[32];

		snprintf(name, sizeof(name), "bench-z%u", i);
		if (!rte_memzone_reserve(name, 4096, SOCKET_ID_ANY, 0)) {
			r.err = 1;
			snprintf(r.why, sizeof(r.why), "rte_memzone_reserve: %s", rte_strerror(rte_errno));
		}
	}
	mp_put(wr, &r, sizeof(r));
	while (read(rd, &c, 1) > 0 || errno == EINTR) /* until the driver closes the pipe */
		;
	rte_eal_cleanup();
}

/* ---- secondaries ---- */

struct attach_done {
	uint64_t t; /* when the first allocation had its IOVA; 0 when it failed */
	char why[128];
};

static void attach_main(int rd, int wr, void *arg)
{
	struct attach_done done = { 0 };
	void *p;

	(void)rd;
	(void)arg;
	if (eal_start(false, done.why, sizeof(done.why))) {
		mp_put(wr, &done, sizeof(done));
		return;
	}
	p = rte_malloc(NULL, 64, 0);
	if (p && rte_malloc_virt2iova(p) != RTE_BAD_IOVA)
		done.t = bench_now_ns();
	else
		snprintf(done.why, sizeof(done.why), "rte_malloc in the secondary failed");
	mp_put(wr, &done, sizeof(done));
	rte_free(p);
	rte_eal_cleanup();
}

/* One secondary, from before its fork until its first rte_malloc had an IOVA. */
static void attach_once(struct mp_reply *r)
{
	struct attach_done done = { 0 };
	struct mp_child c;
	uint64_t t0 = bench_now_ns();

	r->v = NAN;
	if (mp_child_start(&c, attach_main, NULL)) {
		snprintf(r->why, sizeof(r->why), "fork: %s", strerror(errno));
		return;
	}
	if (mp_get(c.rd, &done, sizeof(done)))
		snprintf(done.why, sizeof(done.why), "the secondary died");
	mp_child_wait(&c);
	if (done.t)
		r->v = (double)(done.t - t0) / 1e3;
	else
		snprintf(r->why, sizeof(r->why), "%s", done.why);
}

static double pairs(size_t size, uint64_t n)
{
	uint64_t t0 = bench_now_ns();

	for (uint64_t i = 0; i < n; i++) {
		void *p = rte_malloc(NULL, size, 0);

		KEEP(p);
		rte_free(p);
	}
	return (double)(bench_now_ns() - t0) / (double)n;
}

static double lookups(uint64_t n)
{
	char names[MP_ZONES][32];
	uint64_t t0, sum = 0;

	for (unsigned i = 0; i < MP_ZONES; i++)
		snprintf(names[i], sizeof(names[i]), "bench-z%u", i);
	t0 = bench_now_ns();
	for (uint64_t i = 0; i < n; i++) {
		const struct rte_memzone *mz = rte_memzone_lookup(names[i % MP_ZONES]);

		if (!mz)
			return NAN;
		sum += mz->iova;
	}
	KEEP(sum);
	return (double)(bench_now_ns() - t0) / (double)n;
}

/* In the measuring secondary: one timing. */
static void ops_run(const struct mp_cmd *cmd, struct mp_reply *r)
{
	r->v = cmd->op == MP_PAIR64 ? pairs(64, cmd->n)
	     : cmd->op == MP_PAIR4K ? pairs(4096, cmd->n)
	     : cmd->op == MP_LOOKUP ? lookups(cmd->n)
				    : NAN;
	if (isnan(r->v))
		snprintf(r->why, sizeof(r->why), "%s failed", cmd->op == MP_LOOKUP ? "rte_memzone_lookup" : "command");
}

static void ops_main(int rd, int wr, void *arg)
{
	struct ready r = { 0 };

	(void)arg;
	if (eal_start(false, r.why, sizeof(r.why))) {
		r.err = 1;
		mp_put(wr, &r, sizeof(r));
		return;
	}
	if (!mp_put(wr, &r, sizeof(r)))
		mp_serve(rd, wr, ops_run);
	rte_eal_cleanup();
}

/* ---- the driver, in its own mount namespace ---- */

static int private_mounts(char *why, size_t len)
{
	char opts[64];

	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) {
		snprintf(why, len, "no private mount namespace: %s", strerror(errno));
		return -1;
	}
	if (mount("iovm-bench", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=16m")) {
		snprintf(why, len, "tmpfs on /run: %s", strerror(errno));
		return -1;
	}
	snprintf(opts, sizeof(opts), "pagesize=2M,size=%uM", HUGE_MOUNT_MB);
	if (mkdir(HUGE_DIR, 0700) || mount("iovm-bench", HUGE_DIR, "hugetlbfs", MS_NOSUID | MS_NODEV, opts)) {
		snprintf(why, len, "hugetlbfs on %s: %s", HUGE_DIR, strerror(errno));
		return -1;
	}
	return 0;
}

static struct mp_child ops;
static bool ops_up;

/* In the driver: an attach, or a timing the measuring secondary (started at the first) runs. */
static void driver_run(const struct mp_cmd *cmd, struct mp_reply *r)
{
	struct ready ready = { 0 };

	if (cmd->op == MP_ATTACH) {
		attach_once(r);
		return;
	}
	if (!ops_up) {
		r->v = NAN;
		if (mp_child_start(&ops, ops_main, NULL)) {
			snprintf(r->why, sizeof(r->why), "fork: %s", strerror(errno));
			return;
		}
		if (mp_get(ops.rd, &ready, sizeof(ready)) || ready.err) {
			snprintf(r->why, sizeof(r->why), "%s", ready.err ? ready.why : "the secondary died");
			mp_child_wait(&ops);
			return;
		}
		ops_up = true;
	}
	mp_call(&ops, cmd->op, cmd->n, r);
}

static void driver_main(int rd, int wr, void *arg)
{
	struct ready ready = { 0 };
	struct mp_child primary;

	(void)arg;
	if (private_mounts(ready.why, sizeof(ready.why))) {
		ready.err = 1;
		goto report;
	}
	if (mp_child_start(&primary, primary_main, NULL)) {
		ready.err = 1;
		snprintf(ready.why, sizeof(ready.why), "fork: %s", strerror(errno));
		goto report;
	}
	if (mp_get(primary.rd, &ready, sizeof(ready)) || ready.err) {
		if (!ready.err)
			snprintf(ready.why, sizeof(ready.why), "the primary died");
		ready.err = 1;
		mp_child_wait(&primary);
		goto report;
	}
	if (!mp_put(wr, &ready, sizeof(ready)))
		mp_serve(rd, wr, driver_run);
	if (ops_up)
		mp_child_wait(&ops);
	mp_child_wait(&primary);
	return;
report:
	mp_put(wr, &ready, sizeof(ready));
}

static long read_sys_long(const char *path)
{
	FILE *f = fopen(path, "re");
	long v = -1;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

int mp_dpdk_start(const struct mp_cfg *c, struct mp_child *side, char *why, size_t len)
{
	const char *sys = "/sys/kernel/mm/hugepages/hugepages-2048kB";
	struct ready ready = { 0 };
	long free_pages, resv;
	char path[128];

	if (!c->dpdk) {
		snprintf(why, len, "not run (--no-dpdk)");
		return -1;
	}
	if (geteuid() != 0) {
		snprintf(why, len, "not run: its multi-process needs a hugetlbfs mount and PA mode, so root");
		return -1;
	}
	snprintf(path, sizeof(path), "%s/free_hugepages", sys);
	free_pages = read_sys_long(path);
	snprintf(path, sizeof(path), "%s/resv_hugepages", sys);
	resv = read_sys_long(path);
	free_pages -= resv > 0 ? resv : 0;
	if (free_pages < DPDK_MEM_MB / 2 + 8) {
		snprintf(why, len,
			 "not run: its secondaries need 2 MiB hugepages (with --no-huge they fail: Cannot init memory), %ld free",
			 free_pages);
		return -1;
	}
	snprintf(file_prefix, sizeof(file_prefix), "iovm-bench-mp-%d", (int)getpid());
	if (mp_child_start(side, driver_main, NULL)) {
		snprintf(why, len, "fork: %s", strerror(errno));
		return -1;
	}
	if (mp_get(side->rd, &ready, sizeof(ready)) || ready.err) {
		snprintf(why, len, "%s", ready.err ? ready.why : "its driver process died");
		mp_child_wait(side);
		return -1;
	}
	bench_note("DPDK: primary with -m %d --iova-mode=pa on a private hugetlbfs; secondaries forked like iovm's",
		   DPDK_MEM_MB);
	return 0;
}

void mp_dpdk_stop(struct mp_child *side)
{
	mp_child_wait(side);
}

#else /* !HAVE_DPDK */

int mp_dpdk_start(const struct mp_cfg *c, struct mp_child *side, char *why, size_t len)
{
	(void)side;
	snprintf(why, len, "%s", c->dpdk ? "not built in (install libdpdk-dev and rebuild)" : "not run (--no-dpdk)");
	return -1;
}

void mp_dpdk_stop(struct mp_child *side)
{
	(void)side;
}

#endif /* HAVE_DPDK */
