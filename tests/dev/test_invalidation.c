/* SPDX-License-Identifier: MIT */
/*
 * test_invalidation.c - invalidation under concurrent DMA.
 *
 * Strict: a worker thread runs writes to a buffer while this thread unmaps
 * it. Once the unmap returns, the CPU writes a canary; no descriptor may
 * write the buffer after that (through a stale translation), and the oracle
 * sees no access to the unmapped IOVA.
 *
 * Deferred: until the flush, a device may still write through a stale
 * translation (the oracle counts those), but only to pages still pinned:
 * a buffer freed meanwhile is not reused until the flush. After the flush,
 * nothing. Batches and the timeout both flush. Each thread queues into a
 * ring of its own: threads that unmap at once, and exit with unmaps still
 * queued, lose none of them.
 */
#include <pthread.h>

#include "dev/dev_util.h"

#define PG 4096
#define WRITES 16

static bool all_equal(const uint8_t *p, size_t n, uint8_t v)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return false;
	return true;
}

/* Wait for @n completions, counting faults. */
static unsigned reap_all(struct rig *r, unsigned n, unsigned *faults)
{
	struct iovm_cqe cqe[WRITES];
	unsigned got = 0;

	while (got < n) {
		int k = iovm_queue_reap(r->q, cqe, WRITES);

		CHECK(k >= 0);
		for (int i = 0; i < k; i++) {
			CHECK(cqe[i].status == IOVM_STATUS_SUCCESS || cqe[i].status == IOVM_STATUS_PAGE_FAULT);
			*faults += cqe[i].status == IOVM_STATUS_PAGE_FAULT;
		}
		got += (unsigned)k;
		if (!k)
			sched_yield();
	}
	return got;
}

TEST(strict_under_concurrent_dma)
{
	struct iovm_domain_attr plain = { 0 };
	unsigned faults = 0, rounds = 3000;
	struct rig r;
	uint8_t *buf;

	rig_open(&r, "page_size=4K,host_pa=off,oracle=on", &plain, 0 /* a worker thread */);
	buf = iovm_dma_alloc(r.ctx, 4 * PG, PG, 0);
	for (unsigned round = 0; round < rounds; round++) {
		struct iovm_queue_stats qs;
		uint64_t base;
		iovm_iova_t iova;

		CHECK_OK(iovm_domain_map_ptr(r.dom, buf, 4 * PG, IOVM_MAP_READ | IOVM_MAP_WRITE, &iova));
		CHECK_OK(iovm_queue_stats(r.q, &qs));
		base = qs.completed;
		for (unsigned i = 0; i < WRITES; i++) {
			struct iovm_desc d = { .op = IOVM_OP_FILL, .dst = iova.addr, .len = 4 * PG,
					       .pattern = 0x0101010101010101ull * (round % 200 + 1) };

			CHECK_OK(iovm_queue_submit(r.q, &d));
		}
		/* Unmap while the worker is running them: after a few, before the rest. */
		do
			CHECK_OK(iovm_queue_stats(r.q, &qs));
		while (qs.completed < base + 1 + round % (WRITES / 2));
		CHECK_OK(iovm_domain_unmap(r.dom, iova, 4 * PG));
		/* The unmap has returned: from now on the device must not reach the buffer. */
		memset(buf, 0xee, 4 * PG);
		reap_all(&r, WRITES, &faults);
		/*
		 * One write more, submitted after the unmap returned: it faults,
		 * whatever the scheduler did with the others (on a loaded
		 * machine the worker may run them all before the unmap).
		 */
		{
			struct iovm_desc d = { .op = IOVM_OP_FILL, .dst = iova.addr, .len = 4 * PG, .pattern = 1 };
			unsigned late = 0;

			CHECK_OK(iovm_queue_submit(r.q, &d));
			reap_all(&r, 1, &late);
			CHECK_MSG(late == 1, "round %u: a write after the unmap did not fault", round);
		}
		CHECK_MSG(all_equal(buf, 4 * PG, 0xee), "round %u: written after the unmap returned", round);
	}
	/* At least the first write of every round ran before its unmap (the wait above saw it done). */
	CHECK(faults < rounds * WRITES);
	printf("# %u rounds, %u of %u racing writes faulted\n", rounds, faults, rounds * WRITES);
	rig_close(&r);
}

TEST(deferred_window)
{
	struct iovm_domain_attr a = { .flags = IOVM_DOMAIN_DEFERRED, .flush_batch = 1000,
				      .flush_timeout_us = 60 * 1000 * 1000 };
	struct iovm_domain_stats st;
	unsigned faults = 0;
	struct rig r;
	uint8_t *buf;

	rig_open(&r, "page_size=4K,host_pa=off,oracle=on,release_delay_ms=0", &a, IOVM_QUEUE_POLLED);
	for (unsigned round = 0; round < 200; round++) {
		struct iovm_dma_xlate x, y;
		iovm_iova_t iova;
		uint8_t *other;

		buf = iovm_dma_alloc(r.ctx, 4 * PG, PG, IOVM_DMA_CONTIG);
		CHECK_OK(iovm_dma_xlate(r.ctx, buf, &x));
		CHECK_OK(iovm_domain_map_ptr(r.dom, buf, 4 * PG, IOVM_MAP_READ | IOVM_MAP_WRITE, &iova));
		/* A write that fills the IOTLB, then the unmap: deferred, it returns at once. */
		CHECK_EQ(run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = iova.addr, .len = PG })
				 .status,
			 IOVM_STATUS_SUCCESS);
		CHECK_OK(iovm_domain_unmap(r.dom, iova, 4 * PG));
		/* Inside the window: a stale write may land, but only on the same, still pinned pages. */
		{
			struct iovm_completion c = run_desc(
				&r, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = iova.addr, .len = 64 });

			faults += c.status == IOVM_STATUS_PAGE_FAULT;
		}
		/* Freed and released meanwhile: its pages are not reused before the flush. */
		CHECK_OK(iovm_dma_free(r.ctx, buf));
		iovm_dma_trim(r.ctx, IOVM_TRIM_ALL);
		other = iovm_dma_alloc(r.ctx, 64 * PG, PG, IOVM_DMA_CONTIG);
		CHECK_OK(iovm_dma_xlate(r.ctx, other, &y));
		CHECK(y.pa.addr + 64 * PG <= x.pa.addr || y.pa.addr >= x.pa.addr + 4 * PG);
		CHECK_OK(iovm_dma_free(r.ctx, other));
		if (round % 10 == 9) {
			/* After the flush, nothing stale. */
			CHECK_OK(iovm_domain_flush(r.dom));
			CHECK_EQ(run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = iova.addr, .len = 64 })
					 .status,
				 IOVM_STATUS_PAGE_FAULT);
		}
	}
	CHECK_OK(iovm_domain_stats(r.dom, &st));
	/* The window was used (stale writes happened), and never wrongly. */
	CHECK(st.oracle_stale > 0);
	CHECK_EQ(st.oracle_violations, 0);
	CHECK(st.flushes >= 20);
	printf("# %lu stale accesses inside the window, %u faults\n", (unsigned long)st.oracle_stale, faults);
	rig_close(&r);
}

TEST(deferred_flush_triggers)
{
	struct iovm_domain_attr a = { .flags = IOVM_DOMAIN_DEFERRED, .flush_batch = 4,
				      .flush_timeout_us = 1000 };
	struct iovm_domain_stats st;
	struct iovm_ctx *ctx = open_ctx("page_size=4K,host_pa=off,oracle=on");
	struct iovm_domain *dom;
	uint8_t *buf = iovm_dma_alloc(ctx, 16 * PG, PG, 0);
	iovm_iova_t iova[4];

	CHECK_OK(iovm_domain_create(ctx, &a, &dom));
	for (int i = 0; i < 4; i++)
		CHECK_OK(iovm_domain_map_ptr(dom, buf + i * 4 * PG, 4 * PG, IOVM_MAP_READ, &iova[i]));
	/* Three unmaps wait... */
	for (int i = 0; i < 3; i++)
		CHECK_OK(iovm_domain_unmap(dom, iova[i], 4 * PG));
	CHECK_OK(iovm_domain_stats(dom, &st));
	CHECK_EQ(st.flushed_unmaps + st.pending_unmaps, 3);
	/* ...the fourth fills the batch: flushed before it returns. */
	CHECK_OK(iovm_domain_unmap(dom, iova[3], 4 * PG));
	CHECK_OK(iovm_domain_stats(dom, &st));
	CHECK_EQ(st.pending_unmaps, 0);
	CHECK(st.flushes >= 1);
	/* One unmap alone: the flusher takes it once its timeout passes. */
	CHECK_OK(iovm_domain_map_ptr(dom, buf, 4 * PG, IOVM_MAP_READ, &iova[0]));
	CHECK_OK(iovm_domain_unmap(dom, iova[0], 4 * PG));
	for (int spins = 0;; spins++) {
		CHECK_OK(iovm_domain_stats(dom, &st));
		if (!st.pending_unmaps)
			break;
		CHECK_MSG(spins < 100000, "the flusher never flushed");
		usleep(100);
	}
	/*
	 * One unmap of more ranges than a batch holds (five mappings side by
	 * side, of pages out of order, so that none merge): flushed at once.
	 */
	{
		uint64_t flushes = st.flushes;
		iovm_iova_t at = IOVM_IOVA(0x40000000);

		for (int i = 0; i < 5; i++) {
			iovm_iova_t one = IOVM_IOVA(at.addr + (uint64_t)i * PG);
			iovm_pa_t pa;

			CHECK_OK(iovm_dma_pa(ctx, buf + (8 - i) * PG, &pa));
			CHECK_OK(iovm_domain_map(dom, &one, pa, PG, IOVM_MAP_READ));
		}
		CHECK_OK(iovm_domain_unmap(dom, at, 5 * PG));
		CHECK_OK(iovm_domain_stats(dom, &st));
		CHECK_EQ(st.pending_unmaps, 0);
		CHECK_EQ(st.flushes, flushes + 1);
	}
	/* Destroying a domain with unmaps pending flushes them (no pin, no IOVA left behind). */
	CHECK_OK(iovm_domain_map_ptr(dom, buf, 4 * PG, IOVM_MAP_READ, &iova[0]));
	CHECK_OK(iovm_domain_unmap(dom, iova[0], 4 * PG));
	no_violations(dom);
	CHECK_OK(iovm_domain_destroy(dom));
	iovm_close(ctx);
}

TEST(heap_following_deferred)
{
	struct iovm_domain_attr a = { .flags = IOVM_DOMAIN_FOLLOW_HEAP | IOVM_DOMAIN_DEFERRED,
				      .flush_batch = 1000, .flush_timeout_us = 60 * 1000 * 1000 };
	struct iovm_phys_stats before, pinned, after;
	struct rig r;
	uint8_t *buf;

	rig_open(&r, "page_size=4K,host_pa=off,oracle=on,release_delay_ms=0", &a, IOVM_QUEUE_POLLED);
	buf = iovm_dma_alloc(r.ctx, 1 << 20, 0, 0);
	CHECK_EQ(run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = iova_of(&r, buf), .len = 1 << 20 })
			 .status,
		 IOVM_STATUS_SUCCESS);
	CHECK_OK(iovm_phys_stats(r.ctx, &before));
	/* Freed and released: the domain unmaps it (deferred); its frames wait for the flush. */
	CHECK_OK(iovm_dma_free(r.ctx, buf));
	iovm_dma_trim(r.ctx, IOVM_TRIM_ALL);
	CHECK_OK(iovm_phys_stats(r.ctx, &pinned));
	CHECK(pinned.free < before.free + (1 << 20));
	CHECK_OK(iovm_domain_flush(r.dom));
	iovm_dma_trim(r.ctx, IOVM_TRIM_ALL);
	CHECK_OK(iovm_phys_stats(r.ctx, &after));
	/* Flushed: the frames are free (or their banks given back). */
	CHECK(after.free + (after.banks_released - pinned.banks_released) * (2 << 20) >=
	      pinned.free + (1 << 20));
	rig_close(&r);
}

/* Threads that map and unmap in one deferred domain, each through its own ring. */
#define RING_THREADS 4
#define RING_ROUNDS 3000
#define RING_LEFT 3

struct ring_arg {
	struct iovm_domain *dom;
	iovm_pa_t pa;
	unsigned rounds;
	_Atomic int *failures;
	pthread_barrier_t *all_flushed;
};

static void *ring_thread(void *p)
{
	struct ring_arg *a = p;

	for (unsigned i = 0; i < a->rounds; i++) {
		iovm_iova_t iova = IOVM_IOVA_ANY;

		if (iovm_domain_map(a->dom, &iova, a->pa, PG, IOVM_MAP_READ) ||
		    iovm_domain_unmap(a->dom, iova, PG))
			atomic_fetch_add(a->failures, 1);
		/* Now and then, a flush from here empties every thread's ring. */
		if (i % 1000 == 999 && iovm_domain_flush(a->dom))
			atomic_fetch_add(a->failures, 1);
	}
	/* Every ring empty, then three unmaps each: they stay queued as the threads exit. */
	if (iovm_domain_flush(a->dom))
		atomic_fetch_add(a->failures, 1);
	pthread_barrier_wait(a->all_flushed);
	for (unsigned i = 0; i < RING_LEFT; i++) {
		iovm_iova_t iova = IOVM_IOVA_ANY;

		if (iovm_domain_map(a->dom, &iova, a->pa, PG, IOVM_MAP_READ) ||
		    iovm_domain_unmap(a->dom, iova, PG))
			atomic_fetch_add(a->failures, 1);
	}
	return NULL;
}

TEST(deferred_rings_of_many_threads)
{
	/* A minute's timeout: the flusher stays out of the counts. */
	struct iovm_domain_attr a = { .flags = IOVM_DOMAIN_DEFERRED, .flush_batch = 64,
				      .flush_timeout_us = 60000000 };
	pthread_barrier_t all_flushed;
	struct iovm_ctx *ctx = open_ctx("page_size=4K,host_pa=off,oracle=on");
	uint8_t *buf = iovm_dma_alloc(ctx, RING_THREADS * PG, PG, 0);
	struct ring_arg args[RING_THREADS];
	pthread_t th[RING_THREADS];
	struct iovm_domain_stats st;
	struct iovm_domain *dom;
	_Atomic int failures = 0;
	uint64_t total = 0;

	CHECK(buf != NULL);
	CHECK_OK(iovm_domain_create(ctx, &a, &dom));
	CHECK_OK(pthread_barrier_init(&all_flushed, NULL, RING_THREADS));
	for (unsigned t = 0; t < RING_THREADS; t++) {
		args[t] = (struct ring_arg){ .dom = dom, .rounds = RING_ROUNDS + t * 7, .failures = &failures,
					     .all_flushed = &all_flushed };
		CHECK_OK(iovm_dma_pa(ctx, buf + t * PG, &args[t].pa));
		total += args[t].rounds + RING_LEFT;
		CHECK_OK(pthread_create(&th[t], NULL, ring_thread, &args[t]));
	}
	for (unsigned t = 0; t < RING_THREADS; t++)
		CHECK_OK(pthread_join(th[t], NULL));
	pthread_barrier_destroy(&all_flushed);
	CHECK_EQ(failures, 0);
	CHECK_OK(iovm_domain_stats(dom, &st));
	/* Every unmap is flushed or queued, none lost; the exited threads' rings hold theirs. */
	CHECK_EQ(st.flushed_unmaps + st.pending_unmaps, total);
	CHECK_EQ(st.pending_unmaps, RING_THREADS * RING_LEFT);
	CHECK(st.flushes > 0);
	CHECK_OK(iovm_domain_flush(dom));
	CHECK_OK(iovm_domain_stats(dom, &st));
	CHECK_EQ(st.pending_unmaps, 0);
	CHECK_EQ(st.flushed_unmaps, total);
	/* The quarantined IOVAs all came back. */
	CHECK_EQ(st.iova_allocated, 0);
	no_violations(dom);
	CHECK_OK(iovm_domain_destroy(dom));
	iovm_dma_free(ctx, buf);
	iovm_close(ctx);
}

int main(void)
{
	test_init();
	RUN(strict_under_concurrent_dma);
	RUN(deferred_window);
	RUN(deferred_flush_triggers);
	RUN(heap_following_deferred);
	RUN(deferred_rings_of_many_threads);
	return 0;
}
