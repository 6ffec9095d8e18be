/* SPDX-License-Identifier: MIT */
/*
 * bench_mp_sdom.c - the shared-domain rows of `iovm bench mp`: a map and
 * an unmap of 4 KiB in a domain shared with one other process that has it
 * open (iovm_share_domain_create()), strict and deferred, beside the same
 * pair in a private domain of the same process, strict and deferred: the
 * ratio is what sharing the IO address space costs. A strict unmap waits
 * for the other process's agent to drop what its devices cached; a
 * deferred one queues, and a flush posts once per batch.
 *
 * And a device's 4 KiB copy out of a registration in the strict shared
 * domain: of the other process's (which that process's engine moves,
 * mp.h: two futex round trips) beside the same copy out of this
 * process's own registration, which the device reaches directly.
 *
 * Two processes forked from the benchmark (which holds no context), both
 * attached to the share: the other view, which opens both domains and
 * waits, and the measuring one, which made them. Each repetition runs the
 * four loops in turn, so that a change of the machine's load hits all
 * alike; the medians are reported.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <iovm.h>

#include "bench.h"
#include "bench_mp.h"

#define SDOM_STRICT "bench-sdom-strict"
#define SDOM_DEFERRED "bench-sdom-deferred"
#define SDOM_REPS_MAX 32
/* The registrations the copy rows read: 16 pages each, copied in turn. */
#define REG_PAGES 16u
#define REG_LEN (REG_PAGES * 4096u)
#define REG_PASID 1u

enum { PRIV_STRICT, SHARED_STRICT, PRIV_DEFERRED, SHARED_DEFERRED, NR_LOOPS };

static const struct mp_cfg *sd_cfg;
static const char *sd_share;

struct sdom_result {
	int err;            /* 0, or what failed */
	char why[96];
	double ns[NR_LOOPS]; /* median ns per map+unmap pair */
	double copy_theirs, copy_own; /* median ns per 4 KiB copy; NAN: not measured */
	double big_theirs, big_own;   /* median ns per 64 KiB copy (the whole registration) */
	char copy_why[96];
};

static struct iovm_ctx *sd_attach(int *err)
{
	struct iovm_ctx *ctx = NULL;

	*err = iovm_attach(sd_share, sd_cfg->opts, &ctx);
	return *err ? NULL : ctx;
}

/*
 * The other view: opens both domains, registers memory of its own into
 * the strict one, says so (and where: 0 when it could not), and holds
 * them until told.
 */
static void viewer_main(int rd, int wr, void *arg)
{
	struct iovm_domain *s = NULL, *d = NULL;
	struct iovm_mr *mr = NULL;
	struct iovm_mr_info info;
	uint8_t *mem = aligned_alloc(4096, REG_LEN);
	struct iovm_ctx *ctx;
	uint64_t iova = 0;
	int err;
	char c;

	(void)arg;
	ctx = sd_attach(&err);
	if (ctx && !(err = iovm_share_domain_open(ctx, SDOM_STRICT, &s)))
		err = iovm_share_domain_open(ctx, SDOM_DEFERRED, &d);
	if (!err && mem) {
		memset(mem, 0x5c, REG_LEN);
		if (!iovm_mr_reg(s, mem, REG_LEN, IOVM_ACCESS_LOCAL_WRITE, &mr) && !iovm_mr_query(mr, &info))
			iova = info.iova.addr;
	}
	mp_put(wr, &err, sizeof(err));
	mp_put(wr, &iova, sizeof(iova));
	while (read(rd, &c, 1) < 0 && errno == EINTR)
		;
	if (mr)
		iovm_mr_dereg(mr);
	free(mem);
	if (d)
		iovm_domain_destroy(d);
	if (s)
		iovm_domain_destroy(s);
	if (ctx)
		iovm_close(ctx);
}

static double pairs(struct iovm_domain *dom, void *buf, uint64_t n)
{
	uint64_t t0 = bench_now_ns();

	for (uint64_t i = 0; i < n; i++) {
		iovm_iova_t iova = IOVM_IOVA_ANY;

		if (iovm_domain_map_ptr(dom, buf, 4096, IOVM_MAP_READ | IOVM_MAP_WRITE, &iova) ||
		    iovm_domain_unmap(dom, iova, 4096))
			return NAN;
	}
	/* A deferred domain's last batch is part of the cost. */
	iovm_domain_flush(dom);
	return (double)(bench_now_ns() - t0) / (double)n;
}

/* One copy of @len bytes on polled queue @q: its status. */
static uint8_t copy_once(struct iovm_queue *q, uint64_t src, uint64_t dst, uint32_t len)
{
	struct iovm_desc d = { .op = IOVM_OP_COPY, .pasid = REG_PASID, .src = src, .dst = dst, .len = len };
	struct iovm_cqe cqe;
	int n = 0;

	if (iovm_queue_submit(q, &d))
		return IOVM_STATUS_NONE;
	while (n == 0) {
		if (iovm_queue_process(q, 1) < 0)
			return IOVM_STATUS_NONE;
		n = iovm_queue_reap(q, &cqe, 1);
	}
	return n == 1 ? cqe.status : IOVM_STATUS_NONE;
}

/* ns per copy of @len (4 KiB or REG_LEN) of @n, out of the registration at @src (in turn) into @dst; NAN on a failure. */
static double copies(struct iovm_queue *q, uint64_t src, uint64_t dst, uint64_t n, uint32_t len)
{
	uint64_t t0 = bench_now_ns();

	for (uint64_t i = 0; i < n; i++)
		if (copy_once(q, src + (i % (REG_LEN / len)) * len, dst, len) != IOVM_STATUS_SUCCESS)
			return NAN;
	return (double)(bench_now_ns() - t0) / (double)n;
}

/*
 * The copy rows: a device of this process on the strict shared domain
 * copies 4 KiB pages out of the other process's registration at @theirs,
 * and out of one of its own, into heap memory mapped there. Medians into
 * @res; a failure says why in res->copy_why.
 */
static void copy_rows(struct iovm_ctx *ctx, struct iovm_domain *dom, uint64_t theirs, unsigned reps,
		      struct sdom_result *res)
{
	struct iovm_queue_attr qa = { .depth = 16, .flags = IOVM_QUEUE_POLLED };
	double vt[SDOM_REPS_MAX], vo[SDOM_REPS_MAX], bt[SDOM_REPS_MAX], bo[SDOM_REPS_MAX];
	uint64_t n = mp_iters(sd_cfg, 2000) / 4 + 1, own;
	struct iovm_domain *rings = NULL;
	struct iovm_device *dev = NULL;
	struct iovm_queue *q = NULL;
	struct iovm_mr *mr = NULL;
	struct iovm_mr_info info;
	iovm_iova_t dst = IOVM_IOVA_ANY;
	uint8_t *mem = aligned_alloc(4096, REG_LEN), *buf = iovm_dma_alloc(ctx, REG_LEN, 4096, 0);
	const char *what = "the other process could not register";

	if (!theirs || !mem || !buf)
		goto out;
	memset(mem, 0x3a, REG_LEN);
	what = "a device on the shared domain";
	if (iovm_device_open(ctx, "sw", &dev) || iovm_domain_create(ctx, NULL, &rings) ||
	    iovm_device_attach(dev, rings, IOVM_PASID_NONE) || iovm_device_attach(dev, dom, REG_PASID) ||
	    iovm_queue_create(dev, &qa, &q) ||
	    iovm_domain_map_ptr(dom, buf, REG_LEN, IOVM_MAP_READ | IOVM_MAP_WRITE, &dst) ||
	    iovm_mr_reg(dom, mem, REG_LEN, IOVM_ACCESS_LOCAL_WRITE, &mr) || iovm_mr_query(mr, &info))
		goto out;
	own = info.iova.addr;
	what = "a copy failed";
	if (isnan(copies(q, theirs, dst.addr, n / 10 + 1, 4096)) || isnan(copies(q, own, dst.addr, n / 10 + 1, 4096)) ||
	    isnan(copies(q, theirs, dst.addr, n / 40 + 1, REG_LEN)))
		goto out; /* warm-up */
	for (unsigned r = 0; r < reps; r++)
		if (isnan(vt[r] = copies(q, theirs, dst.addr, n, 4096)) || isnan(vo[r] = copies(q, own, dst.addr, n, 4096)) ||
		    isnan(bt[r] = copies(q, theirs, dst.addr, n / 16 + 1, REG_LEN)) ||
		    isnan(bo[r] = copies(q, own, dst.addr, n / 16 + 1, REG_LEN)))
			goto out;
	res->copy_theirs = bench_median(vt, reps);
	res->copy_own = bench_median(vo, reps);
	res->big_theirs = bench_median(bt, reps);
	res->big_own = bench_median(bo, reps);
	what = NULL;
out:
	if (what)
		snprintf(res->copy_why, sizeof(res->copy_why), "%s: %s", what, iovm_error_detail());
	if (mr)
		iovm_mr_dereg(mr);
	if (q)
		iovm_queue_destroy(q);
	if (dev)
		iovm_device_close(dev);
	if (rings)
		iovm_domain_destroy(rings);
	if (dst.addr != IOVM_ADDR_INVALID)
		iovm_domain_unmap(dom, dst, REG_LEN);
	if (buf)
		iovm_dma_free(ctx, buf);
	free(mem);
}

/* The measuring process: makes the domains, waits for the other view, then times. */
static void measurer_main(int rd, int wr, void *arg)
{
	struct iovm_share_domain_params def = { .flags = IOVM_DOMAIN_DEFERRED };
	struct iovm_domain_attr pdef = { .type = IOVM_DOMAIN_MANAGED, .flags = IOVM_DOMAIN_DEFERRED };
	struct iovm_domain *dom[NR_LOOPS] = { NULL };
	struct sdom_result res = { .copy_theirs = NAN, .copy_own = NAN, .big_theirs = NAN, .big_own = NAN };
	double v[NR_LOOPS][SDOM_REPS_MAX];
	uint64_t theirs = 0;
	uint64_t n = mp_iters(sd_cfg, 20000);
	unsigned reps = sd_cfg->reps < SDOM_REPS_MAX ? sd_cfg->reps : SDOM_REPS_MAX;
	struct iovm_ctx *ctx;
	void *buf = NULL;
	int go = 0;

	(void)arg;
	ctx = sd_attach(&res.err);
	if (!ctx) {
		snprintf(res.why, sizeof(res.why), "iovm_attach");
		goto say;
	}
	if ((res.err = iovm_domain_create(ctx, NULL, &dom[PRIV_STRICT])) ||
	    (res.err = iovm_domain_create(ctx, &pdef, &dom[PRIV_DEFERRED])) ||
	    (res.err = iovm_share_domain_create(ctx, SDOM_STRICT, NULL, &dom[SHARED_STRICT])) ||
	    (res.err = iovm_share_domain_create(ctx, SDOM_DEFERRED, &def, &dom[SHARED_DEFERRED]))) {
		snprintf(res.why, sizeof(res.why), "a domain: %s", iovm_error_detail());
		goto say;
	}
	buf = iovm_dma_alloc(ctx, 4096, 4096, 0);
	if (!buf) {
		res.err = -errno;
		snprintf(res.why, sizeof(res.why), "iovm_dma_alloc");
		goto say;
	}
	res.err = 0;
	mp_put(wr, &res.err, sizeof(res.err)); /* domains made: the other view may open them */
	if (mp_get(rd, &go, sizeof(go)) || !go || mp_get(rd, &theirs, sizeof(theirs)))
		goto close;
	for (int k = 0; k < NR_LOOPS; k++)
		pairs(dom[k], buf, n / 10 + 1); /* warm-up */
	for (unsigned r = 0; r < reps && !res.err; r++)
		for (int k = 0; k < NR_LOOPS && !res.err; k++)
			if (isnan(v[k][r] = pairs(dom[k], buf, n))) {
				res.err = -EIO;
				snprintf(res.why, sizeof(res.why), "map or unmap failed: %s", iovm_error_detail());
			}
	for (int k = 0; k < NR_LOOPS && !res.err; k++)
		res.ns[k] = bench_median(v[k], reps);
	if (!res.err)
		copy_rows(ctx, dom[SHARED_STRICT], theirs, reps, &res);
	mp_put(wr, &res, sizeof(res));
	goto close;
say:
	/* Not ready: the error first, where the readiness was awaited, then what failed. */
	mp_put(wr, &res.err, sizeof(res.err));
	mp_put(wr, &res, sizeof(res));
close:
	if (buf)
		iovm_dma_free(ctx, buf);
	for (int k = 0; k < NR_LOOPS; k++)
		if (dom[k])
			iovm_domain_destroy(dom[k]);
	if (ctx)
		iovm_close(ctx);
}

void mp_sdom_bench(const struct mp_cfg *cfg, const char *share)
{
	struct sdom_result res = { .err = -EPIPE };
	struct mp_child measurer, viewer;
	int err = -EPIPE, go, started;
	uint64_t theirs = 0;

	sd_cfg = cfg;
	sd_share = share;
	bench_progress("shared domain: map+unmap");
	if (mp_child_start(&measurer, measurer_main, NULL))
		return;
	if (mp_get(measurer.rd, &err, sizeof(err)) || err) {
		mp_get(measurer.rd, &res, sizeof(res));
		bench_note("iovm: shared domain rows: %s: %s", res.why, iovm_strerror(res.err));
		mp_child_wait(&measurer);
		return;
	}
	started = mp_child_start(&viewer, viewer_main, NULL) == 0;
	go = started && !mp_get(viewer.rd, &err, sizeof(err)) && !err && !mp_get(viewer.rd, &theirs, sizeof(theirs));
	if (!go)
		bench_note("iovm: shared domain rows: the other view: %s", iovm_strerror(err));
	mp_put(measurer.wr, &go, sizeof(go));
	if (go)
		mp_put(measurer.wr, &theirs, sizeof(theirs));
	if (go)
		mp_get(measurer.rd, &res, sizeof(res));
	mp_child_wait(&measurer);
	if (started) {
		close(viewer.wr);
		mp_child_wait(&viewer);
	}
	if (!go)
		return;
	if (res.err)
		bench_note("iovm: shared domain rows: %s", res.why);
	bench_result("shared domain: map+unmap 4 KiB, strict", "ns/pair",
		     res.err ? NAN : res.ns[SHARED_STRICT], "private domain, strict, same process",
		     res.err ? NAN : res.ns[PRIV_STRICT], "report");
	bench_result("shared domain: map+unmap 4 KiB, deferred", "ns/pair",
		     res.err ? NAN : res.ns[SHARED_DEFERRED], "private domain, deferred, same process",
		     res.err ? NAN : res.ns[PRIV_DEFERRED], "report");
	bench_note("shared domain: one other process has it open; a strict unmap waits for its agent; "
		   "a deferred one posts once per batch of 256 (each loop ends with a flush)");
	if (res.err)
		return;
	/* Not measured (a registration refused, say, under a small RLIMIT_MEMLOCK): a note, no row. */
	if (res.copy_why[0]) {
		bench_note("iovm: shared domain copy row: %s", res.copy_why);
		return;
	}
	bench_result("shared domain: copy 4 KiB, other's MR", "ns", res.copy_theirs, "own MR, same device",
		     res.copy_own, "report");
	bench_result("shared domain: copy 64 KiB, other's MR", "ns", res.big_theirs, "own MR, same device",
		     res.big_own, "report");
	bench_note("shared domain copy: a polled queue of this process; the other process's engine moves "
		   "the bytes of its registration (two futex round trips per ask: a page, or up to 16 KiB of a read)");
}
