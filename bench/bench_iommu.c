/* SPDX-License-Identifier: MIT */
/*
 * bench_iommu.c - `iovm bench iommu`: the software IOMMU and DMA engine,
 * each beside a peer measured in the same run:
 *  - the IOVA allocator's per-thread magazines beside its own gap tree under
 *    its lock (a size the magazines do not cache), on one thread and on two;
 *  - IO page tables: a batch of 256 scattered pages beside 256 single-page
 *    maps of the same pages; single maps and unmaps;
 *  - engine copies through the IOMMU beside memcpy of the same buffers (a
 *    round of each in turn, so that both see the same moments of a shared
 *    machine), and
 *    the descriptor rate beside DPDK's software dmadev (dma_skeleton, which
 *    has no IOMMU), when DPDK is built in;
 *  - a map-per-I/O workload (map, DMA, unmap for every buffer, as a NIC
 *    driver does) in a deferred domain beside a strict one.
 *
 * The allocator and page-table rows call the internal layers directly: they
 * measure the data structures the domain calls are built of.
 *
 *	IOVM_BENCH_IOMMU=engine   the engine's rows alone (profiling them)
 *
 * The engine's rows move with where its threads run: this thread is
 * pinned to the first CPU and a queue's worker to the second, where there
 * is one (DPDK's copy thread is a control thread, off its lcore 0); under
 * `taskset -c 0` they all share one CPU.
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
#include "iommu/iova.h"
#include "iommu/pgtable.h"

#ifdef HAVE_DPDK
#include <rte_dmadev.h>
#include <rte_eal.h>
#include <rte_errno.h>
#endif

#define KEEP(x) __asm__ volatile("" : : "r"(x) : "memory")

static const struct bench_args *args;
static struct iovm_ctx *ctx;

static unsigned reps(void)
{
	return args->quick ? 3 : 9;
}

static uint64_t iters(uint64_t full)
{
	return args->quick ? full / 100 + 1 : full;
}

/* The dmadev rows' peer: DPDK's skeleton (its figure NAN when it did not start), or why it is not there. */
static const char *dpdk_peer(void)
{
#ifdef HAVE_DPDK
	return args->dpdk ? "DPDK dma_skeleton (no IOMMU)" : "none (--no-dpdk)";
#else
	return "none (DPDK not built in)";
#endif
}

/* ---- the IOVA allocator ---- */

/* IOVAs each thread holds at once: a queue's worth of buffers in flight. */
#define IOVA_BURST 64

/* One per thread, each on its own cache lines: the measurement must not share any. */
struct iova_run {
	struct iova_alloc *a;
	uint64_t npages, rounds;
	int cpu;        /* pinned there, or -1 */
	pthread_barrier_t *start;
	double ns;      /* per alloc+free pair */
	int err;
} __attribute__((aligned(128)));

/*
 * Work that shares nothing between threads, about as long as a burst: what
 * two threads of this machine can do side by side at best. On a shared VM
 * that is not 2x (its vCPUs may be a host core's two hyperthreads, or have
 * neighbours), so an allocator's speed-up is read beside it.
 */
static int independent_burst(uint64_t *work)
{
	for (unsigned k = 0; k < IOVA_BURST * 8; k++)
		work[k & (IOVA_BURST - 1)] += work[(k * 5) & (IOVA_BURST - 1)] + k;
	KEEP(work);
	return 0;
}

static int iova_burst(struct iova_alloc *a, uint64_t npages, iova_t *iovas, uint64_t *work)
{
	if (!npages)
		return independent_burst(work);
	for (unsigned k = 0; k < IOVA_BURST; k++)
		if (iova_alloc(a, npages << 12, 0, &iovas[k]))
			return -ENOSPC;
	for (unsigned k = 0; k < IOVA_BURST; k++)
		if (iova_free(a, iovas[k], npages << 12))
			return -EINVAL;
	return 0;
}

static void *iova_thread(void *arg)
{
	struct iova_run *r = arg;
	uint64_t work[IOVA_BURST] = { 0 }, t0;
	iova_t iovas[IOVA_BURST];
	int err = 0;

	if (r->cpu >= 0) {
		cpu_set_t one;

		CPU_ZERO(&one);
		CPU_SET(r->cpu, &one);
		pthread_setaffinity_np(pthread_self(), sizeof(one), &one);
	}
	/* Warm up: the magazines fill, the tree grows its nodes. */
	for (unsigned i = 0; i < 64 && !err; i++)
		err = iova_burst(r->a, r->npages, iovas, work);
	pthread_barrier_wait(r->start);
	t0 = bench_now_ns();
	for (uint64_t i = 0; i < r->rounds && !err; i++)
		err = iova_burst(r->a, r->npages, iovas, work);
	r->ns = (double)(bench_now_ns() - t0) / (double)(r->rounds * IOVA_BURST);
	r->err = err;
	return NULL;
}

/*
 * The @n-th CPU this process may run on, or -1 when there are not two: the
 * threads of a scaling measurement are pinned apart, as DPDK pins its
 * lcores, or the scheduler may stack them on one CPU for a whole run.
 */
static cpu_set_t process_cpus; /* what the process may run on, read at the start */

static int nth_cpu(unsigned n)
{
	if (CPU_COUNT(&process_cpus) < 2)
		return -1;
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &process_cpus) && !n--)
			return c;
	return -1;
}

/* One run of alloc+free pairs of @npages on @threads threads: Mops/s, all threads together. */
static double iova_run(struct iova_alloc *a, uint64_t npages, unsigned threads, double *ns)
{
	struct iova_run run[2];
	pthread_barrier_t start;
	pthread_t tid[2];
	double mops = 0;

	*ns = 0;
	pthread_barrier_init(&start, NULL, threads);
	for (unsigned t = 0; t < threads; t++) {
		run[t] = (struct iova_run){ .a = a, .npages = npages, .rounds = iters(100000), .start = &start,
					    .cpu = nth_cpu(t) };
		if (pthread_create(&tid[t], NULL, iova_thread, &run[t])) {
			fprintf(stderr, "iovm bench: pthread_create failed\n");
			exit(1);
		}
	}
	for (unsigned t = 0; t < threads; t++) {
		pthread_join(tid[t], NULL);
		if (run[t].err) {
			fprintf(stderr, "iovm bench: IOVA allocation failed: %d\n", run[t].err);
			exit(1);
		}
		mops += 1e3 / run[t].ns;
		*ns += run[t].ns / threads;
	}
	pthread_barrier_destroy(&start);
	return mops;
}

struct iova_figures {
	double ns1;      /* per pair, one thread */
	double mops2;    /* two threads together */
	double speedup;  /* two threads over one, paired run by run */
};

/*
 * One thread, then two, in each repetition: the speed-up is taken within a
 * repetition, so that a noisy neighbour slows both sides of the ratio.
 */
static void iova_measure(struct iova_alloc *a, uint64_t npages, struct iova_figures *f)
{
	double ns1[16], mops2[16], up[16], ns;
	unsigned nr = reps();

	for (unsigned rep = 0; rep < nr; rep++) {
		double m1 = iova_run(a, npages, 1, &ns1[rep]);

		mops2[rep] = iova_run(a, npages, 2, &ns);
		up[rep] = mops2[rep] / m1;
	}
	f->ns1 = bench_median(ns1, nr);
	f->mops2 = bench_median(mops2, nr);
	f->speedup = bench_median(up, nr);
}

static void bench_iova(void)
{
	struct iova_alloc a;
	struct iova_figures mag, tree, ceiling;
	/* A 39-bit window, with the x86 MSI hole reserved, as a domain has. */
	struct iova_range msi = { iova_make(0xfee00000), 0x100000 };

	bench_progress("IOVA allocator: magazines and gap tree, 1 and 2 threads");
	if (iova_init(&a, iova_make(4096), (UINT64_C(1) << 39) - 4096, &msi, 1)) {
		fprintf(stderr, "iovm bench: iova_init failed\n");
		exit(1);
	}
	iova_measure(&a, 1, &mag);
	/* Three pages: not a power of two, so every request takes the tree's lock. */
	iova_measure(&a, 3, &tree);
	/* No allocation at all: the machine's own ceiling. */
	iova_measure(&a, 0, &ceiling);
	iova_destroy(&a);

	bench_result("IOVA alloc+free, 1 thread", "ns", mag.ns1, "gap tree under its lock", tree.ns1,
		     "<= 20 ns");
	bench_result("IOVA alloc+free, 2 threads", "Mops/s", mag.mops2, "gap tree under its lock",
		     tree.mops2, NULL);
	bench_result("IOVA 2-thread speed-up", "x", mag.speedup, "independent work (the machine)",
		     ceiling.speedup, ">= 1.8x");
	bench_note("IOVA: the gap tree under its lock speeds up %.2fx on 2 threads", tree.speedup);
}

/* ---- IO page tables ---- */

#define PT_BATCH 256
#define RW (PT_PROT_READ | PT_PROT_WRITE)

/* Scattered physical pages, as a registration of application memory yields. */
static void scattered_pages(pa_t *pa, unsigned n)
{
	uint64_t x = 0x9e3779b97f4a7c15u;

	for (unsigned i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		pa[i] = pa_make((x % (UINT64_C(1) << 26)) << 12); /* below 256 GiB */
	}
}

static void pt_fail(const char *what)
{
	fprintf(stderr, "iovm bench: %s failed\n", what);
	exit(1);
}

static void bench_pgtable(void)
{
	unsigned nr = reps(), batches = (unsigned)iters(1024), singles = (unsigned)iters(65536);
	double map_b[16], unmap_b[16], map_p[16], unmap_p[16], map_1[16], unmap_1[16];
	iova_t base = iova_make(UINT64_C(1) << 32);
	pa_t pa[PT_BATCH];
	struct io_pgtable pt;

	bench_progress("IO page tables: batched and single maps and unmaps");
	scattered_pages(pa, PT_BATCH);
	if (pt_init(&pt))
		pt_fail("pt_init");
	/* Each batch in its own 1 MiB of IOVA, as consecutive I/Os get. */
	for (unsigned rep = 0; rep <= nr; rep++) {
		uint64_t t0, t1, t2;

		t0 = bench_now_ns();
		for (unsigned b = 0; b < batches; b++)
			if (pt_map_pages(&pt, iova_add(base, (uint64_t)b << 20), pa, PT_BATCH, RW, NULL))
				pt_fail("pt_map_pages");
		t1 = bench_now_ns();
		for (unsigned b = 0; b < batches; b++)
			if (pt_unmap(&pt, iova_add(base, (uint64_t)b << 20), PT_BATCH * 4096, NULL, NULL, NULL) !=
			    PT_BATCH * 4096)
				pt_fail("pt_unmap");
		t2 = bench_now_ns();
		/* The first round builds the tables: a warm-up. */
		if (rep) {
			map_b[rep - 1] = (double)(t1 - t0) / batches;
			unmap_b[rep - 1] = (double)(t2 - t1) / batches;
		}

		/* The peer: the same pages, one walk each. */
		t0 = bench_now_ns();
		for (unsigned b = 0; b < batches; b++)
			for (unsigned i = 0; i < PT_BATCH; i++)
				if (pt_map(&pt, iova_add(base, ((uint64_t)b << 20) + i * 4096u), pa[i], 4096, RW, true, NULL))
					pt_fail("pt_map");
		t1 = bench_now_ns();
		for (unsigned b = 0; b < batches; b++)
			for (unsigned i = 0; i < PT_BATCH; i++)
				if (pt_unmap(&pt, iova_add(base, ((uint64_t)b << 20) + i * 4096u), 4096, NULL, NULL, NULL) !=
				    4096)
					pt_fail("pt_unmap");
		t2 = bench_now_ns();
		if (rep) {
			map_p[rep - 1] = (double)(t1 - t0) / batches;
			unmap_p[rep - 1] = (double)(t2 - t1) / batches;
		}

		/* Single 4 KiB maps at consecutive IOVAs, then their unmaps. */
		t0 = bench_now_ns();
		for (unsigned i = 0; i < singles; i++)
			if (pt_map(&pt, iova_add(base, (uint64_t)i * 4096), pa[i % PT_BATCH], 4096, RW, true, NULL))
				pt_fail("pt_map");
		t1 = bench_now_ns();
		for (unsigned i = 0; i < singles; i++)
			if (pt_unmap(&pt, iova_add(base, (uint64_t)i * 4096), 4096, NULL, NULL, NULL) != 4096)
				pt_fail("pt_unmap");
		t2 = bench_now_ns();
		if (rep) {
			map_1[rep - 1] = (double)(t1 - t0) / singles;
			unmap_1[rep - 1] = (double)(t2 - t1) / singles;
		}
	}
	pt_destroy(&pt);

	bench_result("map 256 x 4 KiB, one batch", "ns", bench_median(map_b, nr),
		     "256 single-page maps", bench_median(map_p, nr), "<= 400 ns");
	bench_result("unmap 256 x 4 KiB, one range", "ns", bench_median(unmap_b, nr),
		     "256 single-page unmaps", bench_median(unmap_p, nr), "<= 400 ns");
	bench_result("map 4 KiB", "ns", bench_median(map_1, nr), "none (no software peer)", NAN,
		     "<= 60 ns");
	bench_result("unmap 4 KiB", "ns", bench_median(unmap_1, nr), "none (no software peer)", NAN,
		     "<= 60 ns");
}

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

	if (!(qflags & IOVM_QUEUE_POLLED) && nth_cpu(1) >= 0) {
		qa.flags |= IOVM_QUEUE_CPU;
		qa.cpu = (unsigned)nth_cpu(1);
	}

	if ((ret = iovm_domain_create(ctx, &da, &r->dom)))
		die("iovm_domain_create", ret);
	if ((ret = iovm_device_open(ctx, "sw", &r->dev)))
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
	unsigned nr = reps(), rounds = (unsigned)iters(64);

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
	unsigned nr = reps();

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
	unsigned nr = reps();

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
	unsigned nr = reps(), rounds = (unsigned)iters(64);

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
	unsigned nr = reps();

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

static void bench_engine(void)
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
	src = iovm_dma_alloc(ctx, COPY_MAX, 2u << 20, 0);
	dst = iovm_dma_alloc(ctx, COPY_MAX, 2u << 20, 0);
	if (!src || !dst)
		die("iovm_dma_alloc", -ENOMEM);
	memset(src, 0x5a, COPY_MAX);
	memset(dst, 0, COPY_MAX);
	s = iova_of(&polled, src);
	d = iova_of(&polled, dst);

	rate = engine_desc_rate(&polled, s, d, 64);
#ifdef HAVE_DPDK
	/* Started only now: its copy thread is not to disturb the other rows. */
	if (args->dpdk)
		dpdk_start();
	if (skel >= 0)
		pdesc = skel_desc_rate(src, dst, 64);
#endif
	bench_result("copy 64 B, descriptors per engine thread", "Mdesc/s", rate,
		     dpdk_peer(), pdesc, ">= 10 Mdesc/s");

	/* End to end: the worker runs the copies while this thread submits and reaps. */
	rig_open(&worker, IOVM_DOMAIN_FOLLOW_HEAP, 1024, 0);
	engine_copy(&worker, iova_of(&worker, src), iova_of(&worker, dst), 64, iters(1000000), false,
		    &wdesc);
	rig_close(&worker);
#ifdef HAVE_DPDK
	if (skel >= 0)
		peer = skel_stream(src, dst, 64, iters(1000000));
#endif
	bench_result("copy 64 B, end to end, worker thread", "Mdesc/s", wdesc,
		     dpdk_peer(), peer, NULL);
#ifdef HAVE_DPDK
	dpdk_stop();
#endif

	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint64_t count = iters((UINT64_C(1) << 30) / sizes[i]);
		char name[64], size[16];

		copy_vs_memcpy(&polled, s, d, dst, src, sizes[i], count, &rate, &peer);
		snprintf(name, sizeof(name), "copy %s through the IOMMU", bench_size(sizes[i], size, sizeof(size)));
		bench_result(name, "GB/s", rate, "memcpy, same buffers", peer, targets[i]);
	}
	iovm_dma_free(ctx, src);
	iovm_dma_free(ctx, dst);
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
	unsigned nr = reps();
	struct rig r;
	int ret;

	rig_open(&r, dom_flags, 256, 0);
	bufs = iovm_dma_alloc(ctx, IO_WINDOW * 4096, 4096, 0);
	area = iovm_dma_alloc(ctx, IO_WINDOW * 4096, 4096, 0);
	if (!bufs || !area)
		die("iovm_dma_alloc", -ENOMEM);
	memset(bufs, 0x77, IO_WINDOW * 4096);
	for (unsigned i = 0; i < IO_WINDOW; i++)
		if ((ret = iovm_dma_pa(ctx, bufs + i * 4096, &pa[i])))
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
	iovm_dma_free(ctx, bufs);
	iovm_dma_free(ctx, area);
	*unmap_ns = bench_median(u, nr);
	return bench_median(v, nr);
}

static void bench_map_per_io(void)
{
	struct iovm_domain_stats strict_st, deferred_st;
	uint64_t count = iters(200000);
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

/* Pin the calling thread to the first CPU, when there are two. */
static void pin_driver(void)
{
	int cpu = nth_cpu(0);
	cpu_set_t one;

	if (cpu < 0)
		return;
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	pthread_setaffinity_np(pthread_self(), sizeof(one), &one);
}

int bench_iommu(const struct bench_args *a)
{
	bool only_engine;
	int ret;

	args = a;
	if (sched_getaffinity(0, sizeof(process_cpus), &process_cpus))
		CPU_ZERO(&process_cpus);
	bench_hugepages_reserve(args->quick ? 0 : 64);
	ret = iovm_open(args->opts, &ctx);
	if (ret) {
		fprintf(stderr, "iovm bench: iovm_open: %s: %s\n", iovm_strerror(ret), iovm_error_detail());
		return 1;
	}
#ifndef HAVE_DPDK
	bench_note("DPDK: not built in (install libdpdk-dev and rebuild to compare against its dmadev)");
#endif
	/* IOVM_BENCH_IOMMU=engine: the engine's rows alone, for profiling them. */
	only_engine = getenv("IOVM_BENCH_IOMMU") && !strcmp(getenv("IOVM_BENCH_IOMMU"), "engine");
	if (!only_engine)
		bench_iova();
	pin_driver();
	if (!only_engine)
		bench_pgtable();
	bench_engine();
	if (!only_engine)
		bench_map_per_io();
	bench_report(args, "iovm bench iommu", reps());
	iovm_close(ctx);
	return 0;
}
