/* SPDX-License-Identifier: MIT */
/*
 * bench_mp_mr.c - the mirrored-registration row of `iovm bench mp`: what a
 * page request costs when the device is another process
 * (iovm_rqueue_map_mr()): the device asks the client, the client pins the
 * 64 KiB within its budget and has the device map it, then answers. Beside
 * it, the same on-demand MR's first touch by a device of the client's own
 * (an in-process engine queue): the ratio is what crossing processes adds
 * to a page request.
 *
 * Each side runs a CRC32C over a fresh on-demand MR of MR_BYTES twice: the
 * first faults every 64 KiB in, the second finds them mapped; the
 * difference over the number of pieces is the cost of one page request.
 * Two processes forked from the benchmark (which holds no context): the
 * device process, and the client, which measures both sides alternately,
 * so that a change of the machine's load hits both alike.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <iovm.h>

#include "bench.h"
#include "bench_mp.h"

#define MR_DEVICE "bench-mr-dev"
#define MR_BYTES (UINT64_C(16) << 20)
#define MR_QUICK_BYTES (UINT64_C(4) << 20)
#define MR_PIECE (UINT64_C(64) << 10)
#define MR_REPS_MAX 32

static const struct mp_cfg *mr_cfg;
static const char *mr_share;

struct mr_result {
	int err;        /* 0, or what failed */
	char why[96];
	double remote;  /* median ns per page request, device process */
	double local;   /* the same, the client's own device */
};

/* Run @d on whichever queue is given, to its completion: its status, or -errno. */
static int run_remote(struct iovm_rqueue *q, const struct iovm_desc *d)
{
	struct iovm_cqe cqe;
	int n = iovm_rqueue_submit(q, d);

	while (!n) {
		n = iovm_rqueue_reap(q, &cqe, 1);
		if (n < 0)
			return n;
		if (!n)
			continue;
		return cqe.status == IOVM_STATUS_SUCCESS ? 0 : -EIO;
	}
	return n < 0 ? n : -EIO;
}

static int run_local(struct iovm_queue *q, const struct iovm_desc *d)
{
	struct iovm_cqe cqe;
	int n = iovm_queue_submit(q, d);

	while (!n) {
		iovm_queue_process(q, 16);
		n = iovm_queue_reap(q, &cqe, 1);
		if (n < 0)
			return n;
		if (n)
			return cqe.status == IOVM_STATUS_SUCCESS ? 0 : -EIO;
	}
	return n < 0 ? n : -EIO;
}

struct side {
	struct iovm_domain *dom;   /* where the MR is registered */
	struct iovm_rqueue *rq;    /* remote: the device process's queue */
	struct iovm_queue *lq;     /* local: the client's own engine, attached to dom */
};

/* One fresh MR, touched twice: ns per page request; NAN on failure (*@why says). */
static double one_pass(struct side *s, uint8_t *buf, uint64_t bytes, char *why, size_t whylen)
{
	struct iovm_mr *mr = NULL;
	struct iovm_mr_info info;
	iovm_iova_t iova;
	uint64_t t0, t1, t2;
	double v = NAN;
	int ret;

	ret = iovm_mr_reg(s->dom, buf, bytes, IOVM_ACCESS_ON_DEMAND, &mr);
	if (ret) {
		snprintf(why, whylen, "iovm_mr_reg: %s", iovm_strerror(ret));
		return NAN;
	}
	if (s->rq)
		ret = iovm_rqueue_map_mr(s->rq, mr, IOVM_MAP_READ, &iova);
	else if (!(ret = iovm_mr_query(mr, &info)))
		iova = info.iova;
	if (ret) {
		snprintf(why, whylen, "mapping the MR: %s", iovm_strerror(ret));
		goto dereg;
	}
	{
		struct iovm_desc d = { .op = IOVM_OP_CRC32C, .src = iova.addr, .len = (uint32_t)bytes };

		t0 = bench_now_ns();
		ret = s->rq ? run_remote(s->rq, &d) : run_local(s->lq, &d);
		t1 = bench_now_ns();
		if (!ret)
			ret = s->rq ? run_remote(s->rq, &d) : run_local(s->lq, &d);
		t2 = bench_now_ns();
	}
	if (ret)
		snprintf(why, whylen, "the CRC: %s", iovm_strerror(ret));
	else
		v = ((double)(t1 - t0) - (double)(t2 - t1)) / (double)(bytes / MR_PIECE);
	if (s->rq)
		iovm_rqueue_unmap_mr(s->rq, mr);
dereg:
	iovm_mr_dereg(mr);
	return v;
}

/* The client: both sides, alternately; the medians to @wr. */
static void client_main(int rd, int wr, void *arg)
{
	struct iovm_domain_attr da = { .type = IOVM_DOMAIN_MANAGED };
	struct iovm_queue_attr qa = { .depth = 16, .flags = IOVM_QUEUE_POLLED };
	unsigned reps = mr_cfg->reps < MR_REPS_MAX ? mr_cfg->reps : MR_REPS_MAX;
	uint64_t bytes = mr_cfg->quick ? MR_QUICK_BYTES : MR_BYTES;
	struct side remote = { 0 }, local = { 0 };
	struct mr_result res = { 0 };
	double vr[MR_REPS_MAX], vl[MR_REPS_MAX];
	struct iovm_device *dev = NULL;
	struct iovm_ctx *ctx = NULL;
	uint8_t *raw = MAP_FAILED, *buf;
	int ret;

	(void)rd;
	(void)arg;
	if ((ret = iovm_attach(mr_share, mr_cfg->opts, &ctx)) ||
	    (ret = iovm_rqueue_open(ctx, MR_DEVICE, 16, &remote.rq)) ||
	    (ret = iovm_domain_create(ctx, &da, &remote.dom)) || (ret = iovm_domain_create(ctx, &da, &local.dom)) ||
	    (ret = iovm_device_open(ctx, "sw", &dev)) || (ret = iovm_device_attach(dev, local.dom, IOVM_PASID_NONE)) ||
	    (ret = iovm_queue_create(dev, &qa, &local.lq))) {
		res.err = ret;
		snprintf(res.why, sizeof(res.why), "setting up: %s", iovm_error_detail());
		goto say;
	}
	/* At a multiple of 64 KiB, as the pieces are cut, and touched: only the pins are measured. */
	raw = mmap(NULL, bytes + MR_PIECE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED) {
		res.err = -errno;
		snprintf(res.why, sizeof(res.why), "mmap");
		goto say;
	}
	buf = (uint8_t *)(((uintptr_t)raw + MR_PIECE - 1) & ~(uintptr_t)(MR_PIECE - 1));
	memset(buf, 0x5a, bytes);
	one_pass(&remote, buf, bytes, res.why, sizeof(res.why)); /* warm-up */
	one_pass(&local, buf, bytes, res.why, sizeof(res.why));
	for (unsigned r = 0; r < reps && !res.err; r++) {
		bench_progress("mirrored MR: round %u of %u", r + 1, reps);
		vr[r] = one_pass(&remote, buf, bytes, res.why, sizeof(res.why));
		vl[r] = one_pass(&local, buf, bytes, res.why, sizeof(res.why));
		if (isnan(vr[r]) || isnan(vl[r]))
			res.err = -EIO;
	}
	if (!res.err) {
		res.remote = bench_median(vr, reps);
		res.local = bench_median(vl, reps);
	}
say:
	mp_put(wr, &res, sizeof(res));
	if (raw != MAP_FAILED)
		munmap(raw, bytes + MR_PIECE);
	if (local.lq)
		iovm_queue_destroy(local.lq);
	if (dev)
		iovm_device_close(dev);
	if (remote.rq)
		iovm_rqueue_close(remote.rq);
	if (local.dom)
		iovm_domain_destroy(local.dom);
	if (remote.dom)
		iovm_domain_destroy(remote.dom);
	if (ctx)
		iovm_close(ctx);
}

/* The device process: serves until the driver closes the pipe. */
static void device_main(int rd, int wr, void *arg)
{
	struct iovm_device_server *srv = NULL;
	struct iovm_ctx *ctx = NULL;
	int ret;
	char c;

	(void)arg;
	ret = iovm_attach(mr_share, mr_cfg->opts, &ctx);
	if (!ret)
		ret = iovm_device_serve(ctx, MR_DEVICE, 1, &srv);
	mp_put(wr, &ret, sizeof(ret));
	if (!ret)
		mp_get(rd, &c, 1);
	if (srv)
		iovm_device_server_stop(srv);
	if (ctx)
		iovm_close(ctx);
}

void mp_mr_bench(const struct mp_cfg *cfg, const char *share)
{
	struct mr_result res = { .err = -EPIPE };
	struct mp_child device, client;
	int err = -EPIPE;

	mr_cfg = cfg;
	mr_share = share;
	bench_progress("mirrored MR: page requests");
	if (mp_child_start(&device, device_main, NULL))
		return;
	if (mp_get(device.rd, &err, sizeof(err)) || err) {
		bench_note("iovm: mirrored MR row: the device process: %s", iovm_strerror(err));
		close(device.wr);
		mp_child_wait(&device);
		return;
	}
	if (!mp_child_start(&client, client_main, NULL)) {
		mp_get(client.rd, &res, sizeof(res));
		mp_child_wait(&client);
	}
	close(device.wr);
	mp_child_wait(&device);
	if (res.err)
		bench_note("iovm: mirrored MR row: %s: %s", res.why, iovm_strerror(res.err));
	bench_result("mirrored MR: page request per 64 KiB", "ns", res.err ? NAN : res.remote,
		     "the same MR's own device, in-process", res.err ? NAN : res.local, "report");
	bench_note("mirrored MR: the device process asks the client, which pins the 64 KiB and has it mapped "
		   "before it answers (first touch minus second, over the pieces)");
}
