/* SPDX-License-Identifier: MIT */
/*
 * bench_engine.c - the rows of `iovm bench iommu` (bench_iommu.c runs
 * them) that drive the software DMA engine through a domain: copies
 * beside memcpy of the same buffers, the descriptor rate beside DPDK's
 * software dmadev (dma_skeleton, which has no IOMMU) when DPDK is built
 * in, and a map-per-I/O workload in a deferred domain beside a strict one.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <iovm.h>

#include "bench.h"
#include "bench_iommu.h"

#ifdef HAVE_DPDK
#include <rte_dmadev.h>
#include <rte_eal.h>
#include <rte_errno.h>
#endif

/* ---- the engine ---- */

/* The largest copy measured, and the buffers' size. */
#define COPY_MAX (1u << 20)
/* Descriptors queued before the engine runs them, for the descriptor rate. */
#define PREFILL 4096

struct rig {
	struct iovm_domain *dom;
	struct iovm_device *dev;
	struct iovm_queue *q;
};

static void die(const char *what, int err)
{
	fprintf(stderr, "iovm bench: %s: %s (%s)\n", what, iovm_strerror(err), iovm_error_detail());
	exit(1);
}

/*
 * A queue with a worker runs on the second CPU while this thread, pinned to
 * the first, drives it: a device working beside its driver. Left to the
 * scheduler, the two sometimes share a CPU for a whole run, and the figures
 * change by a factor of three.
 */
static void rig_open(struct rig *r, uint32_t dom_flags, unsigned depth, uint32_t qflags)
{
	struct iovm_domain_attr da = { .type = IOVM_DOMAIN_MANAGED, .flags = dom_flags };
	struct iovm_queue_attr qa = { .depth = depth, .flags = qflags };
	int ret;

	if (!(qflags & IOVM_QUEUE_POLLED) && iommu_nth_cpu(1) >= 0) {
		qa.flags |= IOVM_QUEUE_CPU;
		qa.cpu = (unsigned)iommu_nth_cpu(1);
	}

	if ((ret = iovm_domain_create(iommu_ctx, &da, &r->dom)))
		die("iovm_domain_create", ret);
	if ((ret = iovm_device_open(iommu_ctx, "sw", &r->dev)))
		die("iovm_device_open", ret);
	if ((ret = iovm_device_attach(r->dev, r->dom, IOVM_PASID_NONE)))
		die("iovm_device_attach", ret);
	if ((ret = iovm_queue_create(r->dev, &qa, &r->q)))
		die("iovm_queue_create", ret);
}

static void rig_close(struct rig *r)
{
	iovm_queue_destroy(r->q);
	iovm_device_close(r->dev);
	iovm_domain_destroy(r->dom);
}

static uint64_t iova_of(struct rig *r, const void *p)
{
	iovm_iova_t iova;
	int ret = iovm_dma_iova(r->dom, p, &iova);

	if (ret)
		die("iovm_dma_iova", ret);
	return iova.addr;
}

static struct iovm_desc copy_desc(uint64_t src, uint64_t dst, uint32_t len, uint64_t tag)
{
	return (struct iovm_desc){ .op = IOVM_OP_COPY, .src = src, .dst = dst, .len = len, .tag = tag };
}

/* Take every completion of @n outstanding, checking each succeeded. */
static void reap_all(struct iovm_queue *q, unsigned n, bool polled)
{
	struct iovm_cqe cqe[64];

	while (n) {
		int got = iovm_queue_reap(q, cqe, n < 64 ? n : 64);

		if (got < 0)
			die("iovm_queue_reap", got);
		for (int i = 0; i < got; i++)
			if (cqe[i].status != IOVM_STATUS_SUCCESS) {
				fprintf(stderr, "iovm bench: a copy completed with status %u\n", cqe[i].status);
				exit(1);
			}
		n -= (unsigned)got;
		if (!got && polled)
			iovm_queue_process(q, 64);
	}
}

/* Descriptors per second of one engine thread: the ring filled first, then run. */
static double engine_desc_rate(struct rig *r, uint64_t src, uint64_t dst, uint32_t len)
{
	double v[16];
	unsigned nr = iommu_reps(), rounds = (unsigned)iommu_iters(64);

	for (unsigned rep = 0; rep <= nr; rep++) {
		uint64_t busy = 0;

		for (unsigned k = 0; k < rounds; k++) {
			uint64_t t0;

			for (unsigned i = 0; i < PREFILL; i++) {
				struct iovm_desc d = copy_desc(src + (i % 64) * 64, dst + (i % 64) * 64, len, i);
				int ret = iovm_queue_submit(r->q, &d);

				if (ret)
					die("iovm_queue_submit", ret);
			}
			t0 = bench_now_ns();
			for (unsigned done = 0; done < PREFILL;) {
				int n = iovm_queue_process(r->q, PREFILL - done);

				if (n < 0)
					die("iovm_queue_process", n);
				done += (unsigned)n;
			}
			busy += bench_now_ns() - t0;
			reap_all(r->q, PREFILL, true);
		}
		if (rep)
			v[rep - 1] = (double)rounds * PREFILL / ((double)busy / 1e9) / 1e6;
	}
	return bench_median(v, nr);
}

/*
 * One round of @count copies of @len bytes, submitted, run and reaped on
 * the calling thread (polled) or run by the queue's worker, up to 256 in
 * flight: nanoseconds.
 */
static uint64_t engine_copy_round(struct rig *r, uint64_t src, uint64_t dst, uint32_t len, uint64_t count,
				  bool polled)
{
	uint64_t submitted = 0, completed = 0, t0 = bench_now_ns();
	unsigned window = 256;
	struct iovm_cqe cqe[64];

	while (completed < count) {
		while (submitted < count && submitted - completed < window) {
			struct iovm_desc desc = copy_desc(src, dst, len, submitted);
			int ret = iovm_queue_submit(r->q, &desc);

			if (ret == -EAGAIN)
				break;
			if (ret)
				die("iovm_queue_submit", ret);
			submitted++;
		}
		if (polled)
			iovm_queue_process(r->q, 64);
		for (int got = iovm_queue_reap(r->q, cqe, 64); got > 0; got = 0) {
			for (int i = 0; i < got; i++)
				if (cqe[i].status != IOVM_STATUS_SUCCESS)
					die("a copy", -EIO);
			completed += (uint64_t)got;
		}
	}
	return bench_now_ns() - t0;
}

/* Copies through the engine (see engine_copy_round()): GB/s, and descriptors per second. */
static double engine_copy(struct rig *r, uint64_t src, uint64_t dst, uint32_t len, uint64_t count,
			  bool polled, double *mdesc)
{
	double v[16], d[16];
	unsigned nr = iommu_reps();

	for (unsigned rep = 0; rep <= nr; rep++) {
		uint64_t dt = engine_copy_round(r, src, dst, len, count, polled);

		if (rep) {
			v[rep - 1] = (double)count * len / (double)dt;
			d[rep - 1] = (double)count / ((double)dt / 1e9) / 1e6;
		}
	}
	*mdesc = bench_median(d, nr);
	return bench_median(v, nr);
}

/* One round of @count memcpy()s of the same buffers: nanoseconds. */
static uint64_t memcpy_round(void *dst, const void *src, uint32_t len, uint64_t count)
{
	uint64_t t0 = bench_now_ns();

	for (uint64_t i = 0; i < count; i++) {
		memcpy(dst, src, len);
		KEEP(dst);
	}
	return bench_now_ns() - t0;
}

/*
 * Copies of @len bytes through the polled engine (IOVAs @s and @d) and by
 * memcpy() of the same buffers (@src, @dst), the same count each, a round
 * of one then a round of the other, rep after rep: on a machine others
 * share, both see the same moments of it. GB/s of each, medians.
 */
static void copy_vs_memcpy(struct rig *r, uint64_t s, uint64_t d, void *dst, const void *src, uint32_t len,
			   uint64_t count, double *engine, double *peer)
{
	double v[16], p[16];
	unsigned nr = iommu_reps();

	for (unsigned rep = 0; rep <= nr; rep++) {
		uint64_t te = engine_copy_round(r, s, d, len, count, true);
		uint64_t tm = memcpy_round(dst, src, len, count);

		/* The first round of each warms what it touches. */
		if (rep) {
			v[rep - 1] = (double)count * len / (double)te;
			p[rep - 1] = (double)count * len / (double)tm;
		}
	}
	*engine = bench_median(v, nr);
	*peer = bench_median(p, nr);
}

#ifdef HAVE_DPDK
/* DPDK's dma_skeleton device, once started. */
static int skel = -1;
static bool dpdk_up;

/*
 * DPDK's software dmadev: a thread that memcpys what rte_dma_copy() queued.
 * It takes virtual addresses as its IOVAs: it has no IOMMU to go through.
 */

static void dpdk_start(void)
{
	char *eal[] = { "iovm-bench", "--no-huge", "-m", "64", "--no-pci", "--no-shconf",
			"--no-telemetry", "--log-level=lib.*:error", "--log-level=dma.*:error",
			"--vdev=dma_skeleton", "-l", "0", NULL };
	int argc = (int)(sizeof(eal) / sizeof(eal[0])) - 1;
	struct rte_dma_conf conf = { .nb_vchans = 1 };
	struct rte_dma_vchan_conf vc = { .direction = RTE_DMA_DIR_MEM_TO_MEM, .nb_desc = PREFILL };
	cpu_set_t cpus;

	/* The EAL pins the calling thread to its lcore: the other benchmarks want every CPU. */
	sched_getaffinity(0, sizeof(cpus), &cpus);
	if (rte_eal_init(argc, eal) < 0) {
		bench_note("DPDK: rte_eal_init failed: %s", rte_strerror(rte_errno));
		sched_setaffinity(0, sizeof(cpus), &cpus);
		return;
	}
	sched_setaffinity(0, sizeof(cpus), &cpus);
	dpdk_up = true;
	skel = rte_dma_get_dev_id_by_name("dma_skeleton");
	if (skel < 0 || rte_dma_configure(skel, &conf) || rte_dma_vchan_setup(skel, 0, &vc) ||
	    rte_dma_start(skel)) {
		bench_note("DPDK: the dma_skeleton dmadev did not start");
		skel = -1;
	}
}

static void dpdk_stop(void)
{
	if (skel >= 0) {
		/* Stopping it ends its copy thread, which would otherwise poll on. */
		rte_dma_stop(skel);
		rte_dma_close(skel);
		skel = -1;
	}
	if (dpdk_up)
		rte_eal_cleanup();
	dpdk_up = false;
}

/* The skeleton's descriptor rate: the ring filled first, then the doorbell, timed to the last completion. */
static double skel_desc_rate(void *src, void *dst, uint32_t len)
{
	double v[16];
	unsigned nr = iommu_reps(), rounds = (unsigned)iommu_iters(64);

	for (unsigned rep = 0; rep <= nr; rep++) {
		uint64_t busy = 0;

		for (unsigned k = 0; k < rounds; k++) {
			unsigned done = 0;
			uint64_t t0;

			/* The skeleton's ring holds one fewer than its size. */
			for (unsigned i = 0; i < PREFILL - 1; i++)
				if (rte_dma_copy(skel, 0, (rte_iova_t)(uintptr_t)src + (i % 64) * 64,
						 (rte_iova_t)(uintptr_t)dst + (i % 64) * 64, len, 0) < 0)
					die("rte_dma_copy", -ENOSPC);
			t0 = bench_now_ns();
			rte_dma_submit(skel, 0);
			while (done < PREFILL - 1) {
				bool error = false;
				uint16_t last;

				done += rte_dma_completed(skel, 0, 64, &last, &error);
				if (error)
					die("dma_skeleton", -EIO);
			}
			busy += bench_now_ns() - t0;
		}
		if (rep)
			v[rep - 1] = (double)rounds * (PREFILL - 1) / ((double)busy / 1e9) / 1e6;
	}
	return bench_median(v, nr);
}

/* Copies streamed to the skeleton with up to 256 in flight: descriptors per second. */
static double skel_stream(void *src, void *dst, uint32_t len, uint64_t count)
{
	double v[16];
	unsigned nr = iommu_reps();

	for (unsigned rep = 0; rep <= nr; rep++) {
		uint64_t submitted = 0, completed = 0, t0 = bench_now_ns();

		while (completed < count) {
			bool error = false;
			uint16_t last;

			while (submitted < count && submitted - completed < 256 &&
			       rte_dma_copy(skel, 0, (rte_iova_t)(uintptr_t)src, (rte_iova_t)(uintptr_t)dst, len,
					    RTE_DMA_OP_FLAG_SUBMIT) >= 0)
				submitted++;
			completed += rte_dma_completed(skel, 0, 64, &last, &error);
			if (error)
				die("dma_skeleton", -EIO);
		}
		if (rep)
			v[rep - 1] = (double)count / ((double)(bench_now_ns() - t0) / 1e9) / 1e6;
	}
	return bench_median(v, nr);
}
#endif

void bench_engine(void)
{
	static const uint32_t sizes[] = { 4096, 65536, 262144, COPY_MAX };
	static const char *const targets[] = { ">= 0.7x memcpy", ">= 0.95x memcpy", ">= 0.9x memcpy",
					       ">= 0.9x memcpy" };
	struct rig polled, worker;
	uint8_t *src, *dst;
	uint64_t s, d;
	double rate, peer = NAN, wdesc, pdesc = NAN;

	bench_progress("engine: copies through the IOMMU, memcpy, DPDK dma_skeleton");
	rig_open(&polled, IOVM_DOMAIN_FOLLOW_HEAP, PREFILL, IOVM_QUEUE_POLLED);
	src = iovm_dma_alloc(iommu_ctx, COPY_MAX, 2u << 20, 0);
	dst = iovm_dma_alloc(iommu_ctx, COPY_MAX, 2u << 20, 0);
	if (!src || !dst)
		die("iovm_dma_alloc", -ENOMEM);
	memset(src, 0x5a, COPY_MAX);
	memset(dst, 0, COPY_MAX);
	s = iova_of(&polled, src);
	d = iova_of(&polled, dst);

	rate = engine_desc_rate(&polled, s, d, 64);
#ifdef HAVE_DPDK
	/* Started only now: its copy thread is not to disturb the other rows. */
	if (iommu_args->dpdk)
		dpdk_start();
	if (skel >= 0)
		pdesc = skel_desc_rate(src, dst, 64);
#endif
	bench_result("copy 64 B, descriptors per engine thread", "Mdesc/s", rate,
		     iommu_dpdk_peer(), pdesc, ">= 10 Mdesc/s");

	/* End to end: the worker runs the copies while this thread submits and reaps. */
	rig_open(&worker, IOVM_DOMAIN_FOLLOW_HEAP, 1024, 0);
	engine_copy(&worker, iova_of(&worker, src), iova_of(&worker, dst), 64, iommu_iters(1000000), false,
		    &wdesc);
	rig_close(&worker);
#ifdef HAVE_DPDK
	if (skel >= 0)
		peer = skel_stream(src, dst, 64, iommu_iters(1000000));
#endif
	bench_result("copy 64 B, end to end, worker thread", "Mdesc/s", wdesc,
		     iommu_dpdk_peer(), peer, NULL);
#ifdef HAVE_DPDK
	dpdk_stop();
#endif

	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint64_t count = iommu_iters((UINT64_C(1) << 30) / sizes[i]);
		char name[64], size[16];

		copy_vs_memcpy(&polled, s, d, dst, src, sizes[i], count, &rate, &peer);
		snprintf(name, sizeof(name), "copy %s through the IOMMU", bench_size(sizes[i], size, sizeof(size)));
		bench_result(name, "GB/s", rate, "memcpy, same buffers", peer, targets[i]);
	}
	iovm_dma_free(iommu_ctx, src);
	iovm_dma_free(iommu_ctx, dst);
	rig_close(&polled);
}

/* ---- map per I/O ---- */

/* I/Os in flight: a NIC ring's worth being transmitted while completed ones are unmapped. */
#define IO_WINDOW 64
#define IO_BYTES 2048

/*
 * For each I/O: map a 4 KiB buffer at an IOVA the domain chooses, copy
 * IO_BYTES of it to a receive area through the engine's worker, and unmap it
 * once it completes. Returns thousands of I/Os per second, and in
 * *unmap_ns the time iovm_domain_unmap() took per I/O.
 */
static double map_per_io(uint32_t dom_flags, uint64_t count, struct iovm_domain_stats *st,
			 double *unmap_ns)
{
	uint8_t *bufs, *area;
	iovm_pa_t pa[IO_WINDOW];
	iovm_iova_t slot[IO_WINDOW], area_iova;
	double v[16], u[16];
	unsigned nr = iommu_reps();
	struct rig r;
	int ret;

	rig_open(&r, dom_flags, 256, 0);
	bufs = iovm_dma_alloc(iommu_ctx, IO_WINDOW * 4096, 4096, 0);
	area = iovm_dma_alloc(iommu_ctx, IO_WINDOW * 4096, 4096, 0);
	if (!bufs || !area)
		die("iovm_dma_alloc", -ENOMEM);
	memset(bufs, 0x77, IO_WINDOW * 4096);
	for (unsigned i = 0; i < IO_WINDOW; i++)
		if ((ret = iovm_dma_pa(iommu_ctx, bufs + i * 4096, &pa[i])))
			die("iovm_dma_pa", ret);
	if ((ret = iovm_domain_map_ptr(r.dom, area, IO_WINDOW * 4096, IOVM_MAP_READ | IOVM_MAP_WRITE,
				       &area_iova)))
		die("iovm_domain_map_ptr", ret);

	for (unsigned rep = 0; rep <= nr; rep++) {
		uint64_t submitted = 0, completed = 0, unmapping = 0, t0 = bench_now_ns(), t1;
		struct iovm_cqe cqe[IO_WINDOW];

		while (completed < count) {
			int got;

			while (submitted < count && submitted - completed < IO_WINDOW) {
				unsigned k = (unsigned)(submitted % IO_WINDOW);
				struct iovm_desc desc;

				slot[k] = IOVM_IOVA_ANY;
				if ((ret = iovm_domain_map(r.dom, &slot[k], pa[k], 4096, IOVM_MAP_READ)))
					die("iovm_domain_map", ret);
				desc = copy_desc(slot[k].addr, area_iova.addr + k * 4096, IO_BYTES, k);
				if ((ret = iovm_queue_submit(r.q, &desc)))
					die("iovm_queue_submit", ret);
				submitted++;
			}
			got = iovm_queue_reap(r.q, cqe, IO_WINDOW);
			if (got < 0)
				die("iovm_queue_reap", got);
			t1 = got ? bench_now_ns() : 0;
			for (int i = 0; i < got; i++) {
				if (cqe[i].status != IOVM_STATUS_SUCCESS)
					die("an I/O", -EIO);
				if ((ret = iovm_domain_unmap(r.dom, slot[cqe[i].tag], 4096)))
					die("iovm_domain_unmap", ret);
			}
			if (got)
				unmapping += bench_now_ns() - t1;
			completed += (uint64_t)got;
		}
		if (rep) {
			v[rep - 1] = (double)count / ((double)(bench_now_ns() - t0) / 1e9) / 1e3;
			u[rep - 1] = (double)unmapping / (double)count;
		}
	}
	iovm_domain_flush(r.dom);
	iovm_domain_stats(r.dom, st);
	if (memcmp(area, bufs, IO_BYTES)) {
		fprintf(stderr, "iovm bench: map-per-I/O copies did not land\n");
		exit(1);
	}
	iovm_domain_unmap(r.dom, area_iova, IO_WINDOW * 4096);
	rig_close(&r);
	iovm_dma_free(iommu_ctx, bufs);
	iovm_dma_free(iommu_ctx, area);
	*unmap_ns = bench_median(u, nr);
	return bench_median(v, nr);
}

void bench_map_per_io(void)
{
	struct iovm_domain_stats strict_st, deferred_st;
	uint64_t count = iommu_iters(200000);
	double strict, deferred, strict_unmap, deferred_unmap;

	bench_progress("map per I/O: strict and deferred invalidation");
	strict = map_per_io(0, count, &strict_st, &strict_unmap);
	deferred = map_per_io(IOVM_DOMAIN_DEFERRED, count, &deferred_st, &deferred_unmap);
	bench_result("map, 2 KiB DMA, unmap per I/O: deferred", "kIO/s", deferred, "strict invalidation",
		     strict, ">= 3x strict");
	bench_result("  of which unmap: deferred", "ns", deferred_unmap, "strict invalidation",
		     strict_unmap, NULL);
	bench_note("map per I/O: %" PRIu64 " strict invalidations; deferred: %" PRIu64
		   " flushes covered %" PRIu64 " unmaps",
		   strict_st.strict_invalidations, deferred_st.flushes, deferred_st.flushed_unmaps);
}
