/* SPDX-License-Identifier: MIT */
/*
 * test_stress.c - threads allocating, checking and freeing at random, some
 * frees done by another thread, with invariants checked throughout:
 *  - each allocation is aligned, within its boundary, contiguous when asked,
 *    zeroed when asked, translated to memory the bus reaches at that PA;
 *  - its contents survive until it is freed (a unique tag in every word:
 *    an overlap with another live allocation would break it);
 *  - at barriers, with every thread paused: no two live allocations
 *    overlap, and no physical page is reached from two virtual pages.
 */
#include <pthread.h>

#include "mem_util.h"

#define NTHREADS 4
#define ITERS 16000
#define LIVE_MAX 192
#define CHECK_EVERY 4000

struct live {
	uint64_t *p;
	size_t size;
	uint64_t tag;
};

struct worker {
	struct iovm_ctx *ctx;
	unsigned id;
	uint64_t seed;
	struct live live[LIVE_MAX];
	unsigned nlive;
	uint64_t allocs, frees, remote_frees;
};

static struct worker workers[NTHREADS];
static pthread_barrier_t barrier;

/* Frees handed from one thread to another. */
static pthread_mutex_t handoff_lock = PTHREAD_MUTEX_INITIALIZER;
static struct live handoff[64];
static unsigned nhandoff;

static void fill(struct live *l)
{
	size_t words = l->size / 8;

	for (size_t i = 0; i < words; i++)
		l->p[i] = l->tag ^ i;
}

static void verify(const struct live *l)
{
	size_t words = l->size / 8;

	for (size_t i = 0; i < words; i++)
		if (l->p[i] != (l->tag ^ i))
			test_fail("allocation %p+%zu: word %zu is %#lx, not %#lx", (void *)l->p,
				  l->size, i, (unsigned long)l->p[i], (unsigned long)(l->tag ^ i));
	atomic_fetch_add_explicit(&test_checks, 1, memory_order_relaxed);
}

static size_t random_size(uint64_t *seed)
{
	uint64_t r = test_rand(seed) % 100;

	if (r < 60)
		return 8 + test_rand(seed) % 512;
	if (r < 95)
		return 512 + test_rand(seed) % (32 << 10);
	return (32 << 10) + test_rand(seed) % (1 << 20);
}

static void do_alloc(struct worker *w)
{
	size_t size = align_up(random_size(&w->seed), 8), align = 0;
	uint64_t r = test_rand(&w->seed);
	uint32_t flags = 0;
	unsigned shift = 0;
	struct iovm_dma_xlate x;
	struct live *l;
	uint8_t *p;

	if (r % 5 == 0)
		flags |= IOVM_DMA_CONTIG;
	if (r % 7 == 0)
		flags |= IOVM_DMA_ZERO;
	if (r % 11 == 0) {
		shift = ilog2_up(size) + (unsigned)(r % 3);
		flags |= IOVM_DMA_BOUNDARY(shift);
	}
	if (r % 13 == 0)
		align = (size_t)64 << (r % 7);
	p = iovm_dma_alloc(w->ctx, size, align, flags);
	CHECK_MSG(p != NULL, "alloc %zu align %zu flags %#x: %s", size, align, flags, strerror(errno));
	CHECK(is_aligned((uintptr_t)p, align ? align : 16));
	CHECK_OK(iovm_dma_xlate(w->ctx, p, &x));
	if (flags & (IOVM_DMA_CONTIG | 0xff00u))
		CHECK_MSG(x.contig >= size, "%zu bytes contiguous over %zu", size, x.contig);
	if (shift) {
		CHECK_EQ((uintptr_t)p >> shift, ((uintptr_t)p + size - 1) >> shift);
		CHECK_EQ(x.pa.addr >> shift, (x.pa.addr + size - 1) >> shift);
	}
	if (flags & IOVM_DMA_ZERO)
		for (size_t i = 0; i < size; i += 1 + i / 16)
			CHECK_MSG(p[i] == 0, "zalloc byte %zu of %zu", i, size);
	check_translation(w->ctx, p);
	check_translation(w->ctx, p + size - 1);
	l = &w->live[w->nlive++];
	*l = (struct live){ .p = (uint64_t *)p, .size = size,
			    .tag = ((uint64_t)w->id << 56) | (w->allocs << 20) };
	fill(l);
	w->allocs++;
}

static void do_free(struct worker *w, unsigned k)
{
	struct live l = w->live[k];

	w->live[k] = w->live[--w->nlive];
	verify(&l);
	/* One in eight goes to another thread to free. */
	if (test_rand(&w->seed) % 8 == 0) {
		pthread_mutex_lock(&handoff_lock);
		if (nhandoff < 64) {
			handoff[nhandoff++] = l;
			pthread_mutex_unlock(&handoff_lock);
			return;
		}
		pthread_mutex_unlock(&handoff_lock);
	}
	CHECK_OK(iovm_dma_free(w->ctx, l.p));
	w->frees++;
}

static void do_remote_frees(struct worker *w)
{
	struct live mine[64];
	unsigned n;

	pthread_mutex_lock(&handoff_lock);
	n = nhandoff;
	memcpy(mine, handoff, n * sizeof(mine[0]));
	nhandoff = 0;
	pthread_mutex_unlock(&handoff_lock);
	for (unsigned i = 0; i < n; i++) {
		verify(&mine[i]);
		CHECK_OK(iovm_dma_free(w->ctx, mine[i].p));
		w->remote_frees++;
	}
}

static void do_realloc(struct worker *w, unsigned k)
{
	struct live *l = &w->live[k];
	size_t size = align_up(random_size(&w->seed), 8), keep = MIN(size, l->size) / 8;
	uint64_t *p;

	verify(l);
	p = iovm_dma_realloc(w->ctx, l->p, size, 0, 0);
	CHECK(p != NULL);
	for (size_t i = 0; i < keep; i++)
		CHECK_MSG(p[i] == (l->tag ^ i), "realloc lost word %zu", i);
	l->p = p;
	l->size = size;
	fill(l);
}

struct span {
	uintptr_t start, end;
};

static int cmp_span(const void *a, const void *b)
{
	const struct span *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* With every thread paused: no overlap in VA, and VA pages map to distinct PA pages. */
static void global_invariants(struct iovm_ctx *ctx)
{
	struct span *va = calloc(NTHREADS * LIVE_MAX, sizeof(*va));
	struct span *pages = calloc(NTHREADS * LIVE_MAX * 300, sizeof(*pages));
	size_t nva = 0, npages = 0;

	CHECK(va && pages);
	for (unsigned t = 0; t < NTHREADS; t++) {
		for (unsigned i = 0; i < workers[t].nlive; i++) {
			struct live *l = &workers[t].live[i];
			uintptr_t s = (uintptr_t)l->p;

			va[nva++] = (struct span){ s, s + l->size };
			for (uintptr_t pg = align_down(s, 4096); pg < s + l->size; pg += 4096) {
				iovm_pa_t pa;

				CHECK_OK(iovm_dma_pa(ctx, (void *)pg, &pa));
				/* start: PA page, end: the VA page that maps it */
				pages[npages++] = (struct span){ (uintptr_t)align_down(pa.addr, 4096), pg };
			}
		}
	}
	qsort(va, nva, sizeof(*va), cmp_span);
	for (size_t i = 1; i < nva; i++)
		CHECK_MSG(va[i].start >= va[i - 1].end, "live allocations overlap: %#lx-%#lx and %#lx",
			  (unsigned long)va[i - 1].start, (unsigned long)va[i - 1].end,
			  (unsigned long)va[i].start);
	qsort(pages, npages, sizeof(*pages), cmp_span);
	for (size_t i = 1; i < npages; i++)
		if (pages[i].start == pages[i - 1].start)
			CHECK_MSG(pages[i].end == pages[i - 1].end,
				  "PA page %#lx mapped at two VA pages", (unsigned long)pages[i].start);
	free(va);
	free(pages);
}

static void *run(void *arg)
{
	struct worker *w = arg;

	for (unsigned it = 1; it <= ITERS; it++) {
		uint64_t r = test_rand(&w->seed) % 100;

		if (w->nlive < LIVE_MAX && (r < 55 || !w->nlive))
			do_alloc(w);
		else if (r < 95)
			do_free(w, (unsigned)(test_rand(&w->seed) % w->nlive));
		else
			do_realloc(w, (unsigned)(test_rand(&w->seed) % w->nlive));
		if (it % 64 == 0)
			do_remote_frees(w);
		if (it % CHECK_EVERY == 0) {
			pthread_barrier_wait(&barrier);
			if (w->id == 0)
				global_invariants(w->ctx);
			pthread_barrier_wait(&barrier);
		}
	}
	return NULL;
}

static void stress(const char *opts)
{
	struct iovm_ctx *ctx = open_ctx(opts);
	struct iovm_mem_stats st;
	pthread_t th[NTHREADS];
	uint64_t allocs = 0;

	CHECK_EQ(pthread_barrier_init(&barrier, NULL, NTHREADS), 0);
	for (unsigned t = 0; t < NTHREADS; t++) {
		workers[t] = (struct worker){ .ctx = ctx, .id = t, .seed = 0x9e3779b97f4a7c15u * (t + 1) };
		CHECK_EQ(pthread_create(&th[t], NULL, run, &workers[t]), 0);
	}
	for (unsigned t = 0; t < NTHREADS; t++)
		CHECK_EQ(pthread_join(th[t], NULL), 0);
	do_remote_frees(&workers[0]);
	for (unsigned t = 0; t < NTHREADS; t++) {
		while (workers[t].nlive)
			do_free(&workers[t], 0);
		allocs += workers[t].allocs;
	}
	do_remote_frees(&workers[0]);
	CHECK_OK(iovm_mem_stats(ctx, &st));
	/* The per-thread counters saw at least every allocation this test made. */
	CHECK(st.allocs >= allocs);
	printf("# %s: %lu allocations, %lu committed bytes, %lu cache hits\n", opts,
	       (unsigned long)allocs, (unsigned long)st.committed, (unsigned long)st.cache_hits);
	pthread_barrier_destroy(&barrier);
	iovm_close(ctx);
}

TEST(stress_4k)
{
	stress("page_size=4K,host_pa=off,release_delay_ms=5");
}

TEST(stress_hugepages)
{
	if (free_hugepages_2m() < 64) {
		printf("# fewer than 64 free 2 MiB hugepages: auto page size, 4 KiB fallback\n");
		stress("host_pa=off,release_delay_ms=5");
		return;
	}
	/*
	 * Hugepages while they last, 4 KiB pages when other processes take
	 * the pool's pages under the test (with page_size=2M an allocation
	 * would then fail, and a worker cannot tell that from a bug).
	 */
	stress("page_size=auto,host_pa=off,release_delay_ms=5");
}

int main(void)
{
	test_init();
	RUN(stress_4k);
	RUN(stress_hugepages);
	return 0;
}
