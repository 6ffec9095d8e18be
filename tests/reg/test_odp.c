/* SPDX-License-Identifier: MIT */
/*
 * test_odp.c - on-demand registrations through the engine: first-touch
 * faults answered whether the descriptor blocks or not, memory that follows
 * the address space (unmapped: a fault; mapped again: the new memory),
 * prefetch, pin-budget eviction, prefetches that race with faults, and an
 * invalidation that arrives in the middle of a fault.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "reg/reg_internal.h"
#include "reg/reg_util.h"

static struct iovm_queue_stats qstats(struct rig *r)
{
	struct iovm_queue_stats st;

	CHECK_OK(iovm_queue_stats(r->q, &st));
	return st;
}

TEST(first_touch)
{
	struct rig r;
	struct iovm_mr *mr;
	/* Never touched by the CPU: not even populated. */
	uint8_t *app = app_map(64 * PG), *heap;
	uint64_t before;

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	heap = iovm_dma_alloc(r.ctx, 64 * PG, PG, 0);
	fill_random(heap, 64 * PG, 3);
	CHECK_OK(iovm_mr_reg(r.dom, app, 64 * PG, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND, &mr));
	CHECK(mr_info(mr).on_demand);
	CHECK_EQ(mr_info(mr).valid_pages, 0);
	CHECK_EQ(rstats(&r).odp_pinned_bytes, 0);
	before = qstats(&r).page_requests;
	/* A descriptor that does not block on faults: the page requests are answered all the same. */
	CHECK_EQ(dma_copy(&r, iova_of(&r, heap), mr_iova(mr, app), 64 * PG), IOVM_STATUS_SUCCESS);
	CHECK(!memcmp(app, heap, 64 * PG));
	/* 64 KiB at a time: four faults for 256 KiB. */
	CHECK_EQ(qstats(&r).page_requests - before, 4);
	CHECK_EQ(rstats(&r).odp_faults, 4);
	CHECK_EQ(mr_info(mr).valid_pages, 64);
	CHECK_EQ(rstats(&r).odp_pinned_bytes, 64 * PG);
	/* Pinned by its mapping in the domain, not by mlock (which would split the VMA at every chunk). */
	CHECK(!page_locked(app));
	/* Mapped now: no fault the second time. */
	before = qstats(&r).page_requests;
	CHECK_EQ(dma_copy(&r, mr_iova(mr, app), iova_of(&r, heap), 64 * PG), IOVM_STATUS_SUCCESS);
	CHECK_EQ(qstats(&r).page_requests, before);
	CHECK_OK(iovm_mr_dereg(mr));
	CHECK_EQ(rstats(&r).odp_pinned_bytes, 0);
	rig_close(&r);
	app_unmap(app, 64 * PG);
}

TEST(follows_the_address_space)
{
	struct rig r;
	struct iovm_mr *mr;
	uint8_t *app = app_map(32 * PG), *heap, *again;

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	heap = iovm_dma_alloc(r.ctx, 16 * PG, PG, 0);
	memset(heap, 0xab, 16 * PG);
	CHECK_OK(iovm_mr_reg(r.dom, app, 32 * PG, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND, &mr));
	CHECK_EQ(dma_copy(&r, iova_of(&r, heap), mr_iova(mr, app), 16 * PG), IOVM_STATUS_SUCCESS);
	/*
	 * Taken away (replaced by an inaccessible mapping, so that nothing else
	 * lands there meanwhile): the device faults there, and the rest of the
	 * registration stays.
	 */
	CHECK(mmap(app + 16 * PG, 16 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
	      app + 16 * PG);
	CHECK_EQ(dma_copy(&r, iova_of(&r, heap), mr_iova(mr, app) + 20 * PG, PG), IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(dma_copy(&r, iova_of(&r, heap), mr_iova(mr, app), PG), IOVM_STATUS_SUCCESS);
	/* Mapped again: on demand, the registration is the address space, so the new memory it is. */
	again = mmap(app + 16 * PG, 16 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	CHECK(again == app + 16 * PG);
	CHECK_EQ(dma_copy(&r, iova_of(&r, heap), mr_iova(mr, app) + 20 * PG, PG), IOVM_STATUS_SUCCESS);
	CHECK_EQ(again[4 * PG], 0xab);
	/*
	 * The new memory is watched as the old was: taken away in turn, its
	 * pages are invalidated, and the device's fault is a page not present
	 * (not a stale mapping that the guard catches as a bus fault).
	 */
	CHECK(mmap(again, 16 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == again);
	{
		struct iovm_completion c = run_desc(&r, (struct iovm_desc){
			.op = IOVM_OP_COPY, .src = iova_of(&r, heap), .dst = mr_iova(mr, app) + 20 * PG, .len = PG });

		CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
		CHECK_EQ(c.fault_reason, IOVM_FAULT_NOT_PRESENT);
	}
	/* Discarded (the pages are pinned, so DONTNEED_LOCKED): the next access faults a new page in. */
	CHECK_OK(madvise(app, PG, MADV_DONTNEED_LOCKED));
	CHECK_EQ(dma_copy(&r, mr_iova(mr, app), iova_of(&r, heap), PG), IOVM_STATUS_SUCCESS);
	CHECK_EQ(heap[0], 0);
	no_violations(r.dom);
	CHECK_OK(iovm_mr_dereg(mr));
	rig_close(&r);
	app_unmap(app, 32 * PG);
}

TEST(prefetch)
{
	struct rig r;
	struct iovm_mr *mr;
	uint8_t *app = app_map(256 * PG), *heap;
	uint64_t before;

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	heap = iovm_dma_alloc(r.ctx, 256 * PG, PG, 0);
	CHECK_OK(iovm_mr_reg(r.dom, app, 256 * PG, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND, &mr));
	CHECK_EQ(iovm_mr_advise(mr, app + 10, 100 * PG, IOVM_ADVISE_WRITE), 0);
	/* Whole chunks around it: pages 0 to 111. */
	CHECK_EQ(mr_info(mr).valid_pages, 112);
	CHECK_EQ(rstats(&r).odp_prefetched_bytes, 112 * PG);
	before = qstats(&r).page_requests;
	CHECK_EQ(dma_copy(&r, iova_of(&r, heap), mr_iova(mr, app), 112 * PG), IOVM_STATUS_SUCCESS);
	CHECK_EQ(qstats(&r).page_requests, before);
	CHECK_EQ(iovm_mr_advise(mr, app + 200 * PG, 100 * PG, 0), -ERANGE);
	CHECK_OK(iovm_mr_dereg(mr));
	rig_close(&r);
	app_unmap(app, 256 * PG);
}

TEST(pin_budget)
{
	struct rig r;
	struct iovm_mr *mr;
	uint8_t *app = app_map(256 * PG), *heap;

	/* Room for four chunks of 64 KiB. */
	rig_open(&r, REG_OPTS ",pin_budget=256K", NULL, IOVM_QUEUE_POLLED);
	heap = iovm_dma_alloc(r.ctx, 16 * PG, PG, 0);
	CHECK_OK(iovm_mr_reg(r.dom, app, 256 * PG, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND, &mr));
	for (unsigned c = 0; c < 16; c++) {
		fill_random(heap, 16 * PG, c);
		CHECK_EQ(dma_copy(&r, iova_of(&r, heap), mr_iova(mr, app) + c * 16 * PG, 16 * PG),
			 IOVM_STATUS_SUCCESS);
		CHECK(!memcmp(app + c * 16 * PG, heap, 16 * PG));
		CHECK(rstats(&r).odp_pinned_bytes <= 256 << 10);
	}
	CHECK_EQ(rstats(&r).odp_evicted_bytes, 12 * 16 * PG);
	/* The first chunks went (least recently used): they fault in again, evicting others. */
	{
		uint64_t before = qstats(&r).page_requests, evicted = rstats(&r).odp_evicted_bytes;

		CHECK_EQ(dma_copy(&r, mr_iova(mr, app), iova_of(&r, heap), 16 * PG), IOVM_STATUS_SUCCESS);
		CHECK_EQ(qstats(&r).page_requests, before + 1);
		CHECK_EQ(rstats(&r).odp_evicted_bytes, evicted + 16 * PG);
		/* The last ones are still mapped: no fault. */
		before = qstats(&r).page_requests;
		CHECK_EQ(dma_copy(&r, mr_iova(mr, app) + 15 * 16 * PG, iova_of(&r, heap), 16 * PG),
			 IOVM_STATUS_SUCCESS);
		CHECK_EQ(qstats(&r).page_requests, before);
	}
	CHECK_OK(iovm_mr_dereg(mr));
	CHECK_EQ(rstats(&r).odp_pinned_bytes, 0);
	rig_close(&r);
	app_unmap(app, 256 * PG);
}

/*
 * Budget of two chunks, both pinned by the device's faults (and accessed
 * since, which gives each a second chance once): a prefetch of a third
 * chunk evicts its own pin, not the device's, which it does not know the
 * device is done with. The device finds both still mapped.
 */
TEST(advise_spares_faulted_chunks)
{
	struct rig r;
	struct iovm_mr *mr;
	uint8_t *app = app_map(64 * PG), *heap;
	uint64_t before;

	rig_open(&r, REG_OPTS ",pin_budget=128K", NULL, IOVM_QUEUE_POLLED);
	heap = iovm_dma_alloc(r.ctx, PG, PG, 0);
	CHECK(heap);
	fill_random(heap, PG, 1);
	CHECK_OK(iovm_mr_reg(r.dom, app, 64 * PG, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND, &mr));
	CHECK_EQ(dma_copy(&r, iova_of(&r, heap), mr_iova(mr, app), PG), IOVM_STATUS_SUCCESS);
	CHECK_EQ(dma_copy(&r, iova_of(&r, heap), mr_iova(mr, app + 16 * PG), PG), IOVM_STATUS_SUCCESS);
	CHECK_EQ(mr_info(mr).valid_pages, 32);
	CHECK_OK(iovm_mr_advise(mr, app + 32 * PG, PG, 0));
	CHECK_EQ(rstats(&r).odp_pinned_bytes, 32 * PG);
	CHECK_EQ(rstats(&r).odp_prefetched_bytes, 16 * PG);
	before = qstats(&r).page_requests;
	CHECK_EQ(dma_copy(&r, mr_iova(mr, app), mr_iova(mr, app + 16 * PG + 8), PG), IOVM_STATUS_SUCCESS);
	CHECK_EQ(qstats(&r).page_requests, before);
	CHECK(!memcmp(app + 16 * PG + 8, heap, PG));
	/* A fault does take the chunks of earlier faults back, the least recently used first. */
	CHECK_EQ(dma_copy(&r, iova_of(&r, heap), mr_iova(mr, app + 48 * PG), PG), IOVM_STATUS_SUCCESS);
	CHECK_EQ(qstats(&r).page_requests, before + 1);
	CHECK_EQ(rstats(&r).odp_pinned_bytes, 32 * PG);
	no_violations(r.dom);
	CHECK_OK(iovm_mr_dereg(mr));
	rig_close(&r);
	app_unmap(app, 64 * PG);
}

/*
 * iovm_mr_advise() in a loop on another thread while copies run into and
 * within the MR under a budget of two chunks. Each copy needs two chunks
 * at once at most (a span of each side): the budget holds them, so every
 * copy succeeds. A prefetch is a hint: it must not evict a chunk a fault
 * just pinned before the device used it, time after time, until the
 * engine gives the descriptor up as stuck.
 */
struct advisor {
	struct iovm_mr *mr;
	uint8_t *app;
	size_t len;
	atomic_int stop;
	unsigned long calls;
	int bad;
};

static void *advise_loop(void *arg)
{
	struct advisor *a = arg;
	uint64_t x = 99;

	while (!atomic_load(&a->stop)) {
		size_t l, off;
		int ret;

		x = x * 6364136223846793005u + 1442695040888963407u;
		l = 1 + (x >> 33) % (48 * 1024);
		off = (x >> 7) % (a->len - l);
		ret = iovm_mr_advise(a->mr, a->app + off, l, (x & 1) ? IOVM_ADVISE_WRITE : 0);
		if (ret && ret != -EAGAIN && !a->bad)
			a->bad = ret;
		a->calls++;
	}
	return NULL;
}

TEST(advise_races_faults)
{
	const size_t np = 96, len = np * PG;
	struct advisor a = { 0 };
	struct rig r;
	uint8_t *app = app_map(len), *heap, *model = malloc(len);
	uint64_t x = 4242, failed = 0;
	pthread_t th;

	CHECK(model);
	fill_random(app, len, 7);
	memcpy(model, app, len);
	rig_open(&r, REG_OPTS ",pin_budget=128K", NULL, IOVM_QUEUE_POLLED);
	heap = iovm_dma_alloc(r.ctx, 4 * PG, PG, 0);
	CHECK(heap);
	CHECK_OK(iovm_mr_reg(r.dom, app, len, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND, &a.mr));
	a.app = app;
	a.len = len;
	CHECK_OK(pthread_create(&th, NULL, advise_loop, &a));
	for (unsigned i = 0; i < 4000 || !a.calls; i++) {
		uint32_t n;
		size_t off, off2;
		uint8_t st;

		x = x * 6364136223846793005u + 1442695040888963407u;
		n = (uint32_t)(1 + (x >> 33) % 6000);
		off = (x >> 3) % (len - n);
		if (i % 2) {
			fill_random(heap, n, i);
			st = dma_copy(&r, iova_of(&r, heap), mr_iova(a.mr, app + off), n);
			if (st == IOVM_STATUS_SUCCESS)
				memcpy(model + off, heap, n);
		} else {
			off2 = (x >> 17) % (len - n);
			if (off2 < off + n && off < off2 + n)
				continue;
			st = dma_copy(&r, mr_iova(a.mr, app + off), mr_iova(a.mr, app + off2), n);
			if (st == IOVM_STATUS_SUCCESS)
				memmove(model + off2, model + off, n);
		}
		failed += st != IOVM_STATUS_SUCCESS;
		CHECK(rstats(&r).odp_pinned_bytes <= 128 << 10);
	}
	atomic_store(&a.stop, 1);
	CHECK_OK(pthread_join(th, NULL));
	printf("# %lu prefetches; %llu copies failed\n", a.calls, (unsigned long long)failed);
	CHECK_EQ(a.bad, 0);
	CHECK_EQ(failed, 0);
	CHECK(!memcmp(app, model, len));
	no_violations(r.dom);
	CHECK_OK(iovm_mr_dereg(a.mr));
	rig_close(&r);
	app_unmap(app, len);
	free(model);
}

/* An invalidation that lands while a fault has the pages faulted in but not yet mapped. */
static struct rig *between_rig;
static uint8_t *between_hole;

static void unmap_between(struct iovm_mr *mr, uint64_t first, uint64_t last)
{
	(void)first;
	(void)last;
	odp_test_between = NULL;
	/*
	 * The application takes the page away (an inaccessible mapping over
	 * it, so that nothing else lands there); wait until the monitor has
	 * invalidated it.
	 */
	CHECK(mmap(between_hole, PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == between_hole);
	for (unsigned spins = 0; rstats(between_rig).events_unmap == 0 ||
				 atomic_load(&mr->seq) == 0; spins++) {
		CHECK(spins < 1000000);
		usleep(10);
	}
}

TEST(invalidation_during_a_fault)
{
	struct rig r;
	struct iovm_mr *mr;
	uint8_t *app = app_map(16 * PG), *heap;
	struct iovm_reg_stats before;

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	heap = iovm_dma_alloc(r.ctx, PG, PG, 0);
	memset(heap, 0xcd, PG);
	CHECK_OK(iovm_mr_reg(r.dom, app, 16 * PG, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND, &mr));
	before = rstats(&r);
	between_rig = &r;
	between_hole = app + 5 * PG;
	odp_test_between = unmap_between;
	/*
	 * The fault faults the chunk in, the page is unmapped under it and
	 * invalidated: the fault sees the sequence moved, starts over, finds the
	 * page gone, and the device faults. Nothing reaches the hole.
	 */
	CHECK_EQ(dma_copy(&r, iova_of(&r, heap), mr_iova(mr, app) + 5 * PG, PG), IOVM_STATUS_PAGE_FAULT);
	CHECK(rstats(&r).odp_fault_retries > before.odp_fault_retries);
	CHECK_EQ(mr_info(mr).valid_pages, 0);
	/* The pages around the hole still fault in one by one. */
	CHECK_EQ(dma_copy(&r, iova_of(&r, heap), mr_iova(mr, app) + 4 * PG, PG), IOVM_STATUS_SUCCESS);
	CHECK_EQ(app[4 * PG], 0xcd);
	no_violations(r.dom);
	CHECK_OK(iovm_mr_dereg(mr));
	rig_close(&r);
	app_unmap(app, 16 * PG);
}

/*
 * The application keeps discarding pages of the MR away from the ones a
 * fault brings in: every time the fault has left the lock, a page of
 * another chunk goes (madvise, as an allocator returning memory does).
 * Only an invalidation of the pages being faulted in may send the fault
 * round again; one elsewhere in the MR must not, or an application that
 * keeps discarding some pages starves every fault in of the others
 * (its 8 rounds, then a device fault).
 */
#define DISCARDS 16 /* more than a fault in retries (ODP_RETRIES, 8) */
static unsigned elsewhere_calls, fault_page;

static void discard_elsewhere(struct iovm_mr *mr, uint64_t first, uint64_t last)
{
	uint64_t seq = atomic_load(&mr->seq);
	uint8_t *page = between_hole + (elsewhere_calls % 16) * PG;

	CHECK(first <= fault_page && last >= fault_page && last - first < 32);
	if (++elsewhere_calls > DISCARDS)
		odp_test_between = NULL;
	CHECK_OK(madvise(page, PG, MADV_DONTNEED));
	/* Invalidated by now? The monitor's REMOVE event, read and taken (the MR's sequence moves twice). */
	for (unsigned spins = 0; atomic_load(&mr->seq) < seq + 2; spins++) {
		CHECK(spins < 1000000);
		usleep(10);
	}
}

TEST(discards_elsewhere_spare_a_fault)
{
	struct rig r;
	struct iovm_mr *mr;
	uint8_t *app = app_map(64 * PG), *heap;
	struct iovm_reg_stats before;

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	heap = iovm_dma_alloc(r.ctx, PG, PG, 0);
	memset(heap, 0x5e, PG);
	memset(app, 0x11, 64 * PG);
	CHECK_OK(iovm_mr_reg(r.dom, app, 64 * PG, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND, &mr));
	before = rstats(&r);
	between_rig = &r;
	between_hole = app + 40 * PG; /* pages 40..55: chunks 2 and 3, the fault's is chunk 0 */
	elsewhere_calls = 0;
	fault_page = 5;
	odp_test_between = discard_elsewhere;
	CHECK_EQ(dma_copy(&r, iova_of(&r, heap), mr_iova(mr, app) + 5 * PG, PG), IOVM_STATUS_SUCCESS);
	odp_test_between = NULL;
	CHECK_EQ(elsewhere_calls, 1);
	CHECK_EQ(rstats(&r).odp_fault_retries, before.odp_fault_retries);
	CHECK_EQ(app[5 * PG], 0x5e);
	CHECK_EQ(app[5 * PG + PG - 1], 0x5e);
	/* The discarded page reads zero, as the kernel gives it back; its neighbours kept theirs. */
	CHECK_EQ(app[40 * PG], 0);
	CHECK_EQ(app[41 * PG], 0x11);
	/* And a discard of the very page being faulted in still sends the fault round again. */
	before = rstats(&r);
	between_hole = app + 20 * PG;
	elsewhere_calls = DISCARDS; /* one call, then the hook is gone */
	fault_page = 20;
	odp_test_between = discard_elsewhere;
	CHECK_EQ(dma_copy(&r, iova_of(&r, heap), mr_iova(mr, app) + 20 * PG, PG), IOVM_STATUS_SUCCESS);
	odp_test_between = NULL;
	CHECK_EQ(rstats(&r).odp_fault_retries, before.odp_fault_retries + 1);
	CHECK_EQ(app[20 * PG], 0x5e);
	no_violations(r.dom);
	CHECK_OK(iovm_mr_dereg(mr));
	iovm_dma_free(r.ctx, heap);
	rig_close(&r);
	app_unmap(app, 64 * PG);
}

int main(void)
{
	test_init();
	RUN(first_touch);
	RUN(follows_the_address_space);
	RUN(prefetch);
	RUN(pin_budget);
	RUN(advise_spares_faulted_chunks);
	RUN(advise_races_faults);
	RUN(invalidation_during_a_fault);
	RUN(discards_elsewhere_spare_a_fault);
	return 0;
}
