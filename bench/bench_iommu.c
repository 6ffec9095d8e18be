/* SPDX-License-Identifier: MIT */
/*
 * bench_iommu.c - `iovm bench iommu`: the software IOMMU and DMA engine,
 * each beside a peer measured in the same run (the engine's rows and the
 * map-per-I/O rows are in bench_engine.c):
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
#include "bench_iommu.h"
#include "iommu/iova.h"
#include "iommu/pgtable.h"


const struct bench_args *iommu_args;
struct iovm_ctx *iommu_ctx;

unsigned iommu_reps(void)
{
	return iommu_args->quick ? 3 : 9;
}

uint64_t iommu_iters(uint64_t full)
{
	return iommu_args->quick ? full / 100 + 1 : full;
}

/* The dmadev rows' peer: DPDK's skeleton (its figure NAN when it did not start), or why it is not there. */
const char *iommu_dpdk_peer(void)
{
#ifdef HAVE_DPDK
	return iommu_args->dpdk ? "DPDK dma_skeleton (no IOMMU)" : "none (--no-dpdk)";
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

int iommu_nth_cpu(unsigned n)
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
		run[t] = (struct iova_run){ .a = a, .npages = npages, .rounds = iommu_iters(100000), .start = &start,
					    .cpu = iommu_nth_cpu(t) };
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
	unsigned nr = iommu_reps();

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
	unsigned nr = iommu_reps(), batches = (unsigned)iommu_iters(1024), singles = (unsigned)iommu_iters(65536);
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

/* Pin the calling thread to the first CPU, when there are two. */
static void pin_driver(void)
{
	int cpu = iommu_nth_cpu(0);
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

	iommu_args = a;
	if (sched_getaffinity(0, sizeof(process_cpus), &process_cpus))
		CPU_ZERO(&process_cpus);
	bench_hugepages_reserve(iommu_args->quick ? 0 : 64);
	ret = iovm_open(iommu_args->opts, &iommu_ctx);
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
	bench_report(iommu_args, "iovm bench iommu", iommu_reps());
	iovm_close(iommu_ctx);
	return 0;
}
