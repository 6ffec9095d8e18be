/* SPDX-License-Identifier: MIT */
/*
 * test_heap.c - the DMA heap's calls: sizes and classes, alignment,
 * physical contiguity, boundaries, zeroing, realloc, usable size, double
 * frees refused (from any thread), the thread caches' counters, page size and node placement, and the hysteresis that
 * keeps a freed page mapped until it has stayed free long enough.
 */
#include <pthread.h>

#include "mem_util.h"

static const char *opts_4k = "page_size=4K,host_pa=off,mem_limit=1G";

TEST(small_sizes_and_alignment)
{
	struct iovm_ctx *ctx = open_ctx(opts_4k);
	void *p[64];

	for (size_t size = 1; size <= 70000; size = size * 5 / 4 + 1) {
		for (size_t align = 0; align <= 8192; align = align ? align * 4 : 1) {
			uint8_t *m = iovm_dma_alloc(ctx, size, align, 0);

			CHECK_MSG(m != NULL, "size %zu align %zu: %s", size, align, strerror(errno));
			CHECK(is_aligned((uintptr_t)m, MAX(align, 16)));
			CHECK(iovm_dma_size(ctx, m) >= size);
			memset(m, 0xee, size);
			check_translation(ctx, m);
			check_translation(ctx, m + size - 1);
			CHECK_OK(iovm_dma_free(ctx, m));
		}
	}
	/* Cache-line sized requests get cache-line aligned objects without asking. */
	for (int i = 0; i < 64; i++) {
		p[i] = iovm_dma_alloc(ctx, 64 * (1 + i % 4), 0, 0);
		CHECK(p[i] && is_aligned((uintptr_t)p[i], 64));
	}
	for (int i = 0; i < 64; i++)
		CHECK_OK(iovm_dma_free(ctx, p[i]));
	iovm_close(ctx);
}

TEST(contiguous)
{
	struct iovm_ctx *ctx = open_ctx(opts_4k);
	static const size_t sizes[] = { 100, 4096, 5000, 65536, 1 << 20, 3 << 20, 17 << 20 };

	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		uint8_t *m = iovm_dma_alloc(ctx, sizes[i], 0, IOVM_DMA_CONTIG);
		struct iovm_dma_xlate x, y;

		CHECK(m != NULL);
		CHECK_OK(iovm_dma_xlate(ctx, m, &x));
		CHECK_MSG(x.contig >= sizes[i], "%zu bytes contiguous over only %zu", sizes[i], x.contig);
		CHECK_OK(iovm_dma_xlate(ctx, m + sizes[i] - 1, &y));
		CHECK_EQ(y.pa.addr, x.pa.addr + sizes[i] - 1);
		memset(m, 1, sizes[i]);
		check_translation(ctx, m + sizes[i] / 2);
		CHECK_OK(iovm_dma_free(ctx, m));
	}
	iovm_close(ctx);
}

TEST(boundary)
{
	struct iovm_ctx *ctx = open_ctx(opts_4k);

	for (unsigned shift = 6; shift <= 22; shift += 2) {
		for (size_t size = 1; size <= (UINT64_C(1) << shift); size = size * 3 + 1) {
			uint8_t *m = iovm_dma_alloc(ctx, size, 0, IOVM_DMA_BOUNDARY(shift));
			struct iovm_dma_xlate x;

			CHECK_MSG(m != NULL, "size %zu boundary 2^%u", size, shift);
			CHECK_OK(iovm_dma_xlate(ctx, m, &x));
			/* Neither the virtual nor the physical range crosses the boundary. */
			CHECK_EQ((uintptr_t)m >> shift, ((uintptr_t)m + size - 1) >> shift);
			CHECK_EQ(x.pa.addr >> shift, (x.pa.addr + size - 1) >> shift);
			CHECK(x.contig >= size);
			CHECK_OK(iovm_dma_free(ctx, m));
		}
	}
	errno = 0;
	CHECK(iovm_dma_alloc(ctx, 8192, 0, IOVM_DMA_BOUNDARY(12)) == NULL);
	CHECK_EQ(errno, EINVAL);
	CHECK(iovm_dma_alloc(ctx, 8, 0, IOVM_DMA_BOUNDARY(41)) == NULL);
	CHECK_EQ(errno, EINVAL);
	iovm_close(ctx);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

TEST(zeroing)
{
	struct iovm_ctx *ctx = open_ctx(opts_4k);
	static const size_t sizes[] = { 24, 4000, 40000, 1 << 20 };

	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		for (int round = 0; round < 3; round++) {
			uint8_t *m = iovm_dma_zalloc(ctx, sizes[i], 0, 0);

			CHECK(m != NULL);
			CHECK_MSG(all_zero(m, sizes[i]), "zalloc(%zu) round %d not zero", sizes[i], round);
			/* Dirty it: the next zalloc likely gets the same memory back. */
			memset(m, 0xff, sizes[i]);
			CHECK_OK(iovm_dma_free(ctx, m));
		}
	}
	iovm_close(ctx);
}

TEST(known_zero_is_not_zeroed_again)
{
	struct iovm_ctx *ctx = open_ctx("page_size=4K,host_pa=off,release_delay_ms=600000");
	struct iovm_mem_stats st;
	uint8_t *m;

	/* Fresh pages from the kernel: zero already, no memset. */
	m = iovm_dma_zalloc(ctx, 1 << 20, 0, 0);
	CHECK(m != NULL);
	CHECK(all_zero(m, 1 << 20));
	CHECK_OK(iovm_mem_stats(ctx, &st));
	CHECK_EQ(st.zeroed, 0);
	CHECK_EQ(st.zero_known, 1 << 20);
	memset(m, 0xab, 1 << 20);
	CHECK_OK(iovm_dma_free(ctx, m));
	/* The same pages, written since: zeroed this time. */
	m = iovm_dma_zalloc(ctx, 1 << 20, 0, 0);
	CHECK(m != NULL);
	CHECK(all_zero(m, 1 << 20));
	CHECK_OK(iovm_mem_stats(ctx, &st));
	CHECK_EQ(st.zeroed, 1 << 20);
	CHECK_OK(iovm_dma_free(ctx, m));
	iovm_close(ctx);
}

TEST(realloc)
{
	struct iovm_ctx *ctx = open_ctx(opts_4k);
	uint8_t *m = iovm_dma_realloc(ctx, NULL, 100, 0, 0), *n;

	CHECK(m != NULL);
	for (int i = 0; i < 100; i++)
		m[i] = (uint8_t)i;
	/* Within its class: in place. */
	CHECK(iovm_dma_realloc(ctx, m, 110, 0, 0) == m);
	/* Grow through classes into page runs, keeping the contents. */
	for (size_t size = 200; size <= (8 << 20); size *= 3) {
		n = iovm_dma_realloc(ctx, m, size, 0, 0);
		CHECK(n != NULL);
		for (int i = 0; i < 100; i++)
			CHECK_EQ(n[i], (uint8_t)i);
		m = n;
	}
	/* A run grows in place when the pages after it are free. */
	n = iovm_dma_alloc(ctx, 1 << 20, 4096, 0);
	CHECK(n != NULL);
	CHECK(iovm_dma_realloc(ctx, n, 2 << 20, 0, 0) == n);
	CHECK(iovm_dma_size(ctx, n) >= (2 << 20));
	/* ... shrinks in place, and zeroes what it adds when asked. */
	CHECK(iovm_dma_realloc(ctx, n, 8192, 0, 0) == n);
	memset(n, 0xff, 8192);
	n = iovm_dma_realloc(ctx, n, 1 << 20, 0, IOVM_DMA_ZERO);
	CHECK(n != NULL);
	CHECK(all_zero(n + 8192, (1 << 20) - 8192));
	CHECK_OK(iovm_dma_free(ctx, n));
	CHECK_OK(iovm_dma_free(ctx, m));
	/* A failed realloc leaves the memory alone. */
	m = iovm_dma_alloc(ctx, 64, 0, 0);
	errno = 0;
	CHECK(iovm_dma_realloc(ctx, m, 0, 0, 0) == NULL);
	CHECK_EQ(errno, EINVAL);
	CHECK(iovm_dma_realloc(ctx, m + 8, 128, 0, 0) == NULL);
	CHECK_EQ(errno, EINVAL);
	CHECK_OK(iovm_dma_free(ctx, m));
	iovm_close(ctx);
}

TEST(free_validation)
{
	struct iovm_ctx *ctx = open_ctx(opts_4k);
	uint8_t *small = iovm_dma_alloc(ctx, 48, 0, 0), *big = iovm_dma_alloc(ctx, 100000, 0, 0);
	int local;

	CHECK(small && big);
	CHECK_OK(iovm_dma_free(ctx, NULL));
	CHECK_EQ(iovm_dma_free(ctx, &local), -EINVAL);
	CHECK_EQ(iovm_dma_free(ctx, small + 16), -EINVAL);
	CHECK_EQ(iovm_dma_free(ctx, big + 4096), -EINVAL);
	CHECK_EQ(iovm_dma_free(ctx, big + 1), -EINVAL);
	CHECK_OK(iovm_dma_free(ctx, small));
	CHECK_EQ(iovm_dma_free(ctx, small), -EINVAL);
	CHECK_OK(iovm_dma_free(ctx, big));
	CHECK_EQ(iovm_dma_free(ctx, big), -EINVAL);
	CHECK_EQ(iovm_dma_size(ctx, big), 0);
	CHECK_EQ(iovm_dma_size(ctx, &local), 0);
	iovm_close(ctx);
}

/*
 * The free fast path checks by address: an object of a live slab that was
 * never handed out, and one already in another thread's cache, are refused.
 */
static void *free_in_thread(void *p)
{
	return (void *)(intptr_t)iovm_dma_free(((void **)p)[0], ((void **)p)[1]);
}

TEST(free_validation_by_address)
{
	struct iovm_ctx *ctx = open_ctx(opts_4k);
	uint8_t *p = iovm_dma_alloc(ctx, 64, 0, 0), *q = iovm_dma_alloc(ctx, 64, 0, 0);
	void *args[2] = { ctx, q };
	pthread_t t;
	void *ret;

	CHECK(p && q);
	/* A fresh slab of 64 B objects hands out a few dozen: 200 further on was never out. */
	CHECK_EQ(iovm_dma_free(ctx, p + 64 * 200), -EINVAL);
	CHECK_OK(pthread_create(&t, NULL, free_in_thread, args));
	CHECK_OK(pthread_join(t, &ret));
	CHECK_EQ((int)(intptr_t)ret, 0);
	/* q sits in the exited thread's cache, or back in its slab: either way freed. */
	CHECK_EQ(iovm_dma_free(ctx, q), -EINVAL);
	CHECK_OK(iovm_dma_free(ctx, p));
	CHECK_EQ(iovm_dma_free(ctx, p), -EINVAL);
	iovm_close(ctx);
}

/* Each allocation a thread cache serves is one hit; the one that refilled the cache is none. */
static void *one_alloc_in_thread(void *arg)
{
	struct iovm_ctx *ctx = arg;
	void *p = iovm_dma_alloc(ctx, 64, 0, 0);

	return p && !iovm_dma_free(ctx, p) ? p : NULL;
}

TEST(cache_counters)
{
	struct iovm_ctx *ctx = open_ctx(opts_4k);
	struct iovm_mem_stats a, b;
	pthread_t t;
	void *ret;

	CHECK_OK(iovm_dma_free(ctx, iovm_dma_alloc(ctx, 64, 0, 0)));
	CHECK_OK(iovm_mem_stats(ctx, &a));
	for (int i = 0; i < 1000; i++) {
		void *p = iovm_dma_alloc(ctx, 64, 0, 0);

		CHECK(p != NULL);
		CHECK_OK(iovm_dma_free(ctx, p));
	}
	CHECK_OK(iovm_mem_stats(ctx, &b));
	CHECK_EQ(b.allocs - a.allocs, 1000);
	CHECK_EQ(b.frees - a.frees, 1000);
	CHECK_EQ(b.cache_hits - a.cache_hits, 1000);
	/* A new thread's first allocation fills its cache: counted, not a hit, once the thread is gone too. */
	CHECK_OK(pthread_create(&t, NULL, one_alloc_in_thread, ctx));
	CHECK_OK(pthread_join(t, &ret));
	CHECK(ret != NULL);
	CHECK_OK(iovm_mem_stats(ctx, &a));
	CHECK_EQ(a.allocs - b.allocs, 1);
	CHECK_EQ(a.frees - b.frees, 1);
	CHECK_EQ(a.cache_hits, b.cache_hits);
	iovm_close(ctx);
}

TEST(placement)
{
	struct iovm_ctx *ctx = open_ctx("host_pa=off,mem_limit=1G");
	struct iovm_dma_xlate x;
	uint8_t *m;
	int err;

	m = iovm_dma_alloc(ctx, 1000, 0, IOVM_DMA_PAGE_4K);
	CHECK(m != NULL);
	CHECK_OK(iovm_dma_xlate(ctx, m, &x));
	CHECK_EQ(x.page_size, 4096);
	CHECK_OK(iovm_dma_free(ctx, m));

	m = iovm_dma_alloc(ctx, 1000, 0, IOVM_DMA_NODE(0));
	CHECK(m != NULL);
	CHECK_OK(iovm_dma_xlate(ctx, m, &x));
	CHECK_EQ(x.node, 0);
	CHECK_OK(iovm_dma_free(ctx, m));
	errno = 0;
	CHECK(iovm_dma_alloc(ctx, 1000, 0, IOVM_DMA_NODE(200)) == NULL);
	CHECK_EQ(errno, EINVAL);

	m = iovm_dma_alloc(ctx, 3 << 20, 0, IOVM_DMA_PAGE_2M);
	err = errno;
	if (m) {
		CHECK_OK(iovm_dma_xlate(ctx, m, &x));
		CHECK_EQ(x.page_size, 2 << 20);
		CHECK_OK(iovm_dma_free(ctx, m));
	} else {
		/*
		 * No hugepages (none here, or other processes took them: the
		 * pool is not ours to count): asked for 2 MiB pages only, it
		 * does not fall back.
		 */
		CHECK_EQ(err, ENOMEM);
	}
	iovm_close(ctx);
}

static struct iovm_mem_stats stats(struct iovm_ctx *ctx)
{
	struct iovm_mem_stats st;

	CHECK_OK(iovm_mem_stats(ctx, &st));
	return st;
}

TEST(hysteresis)
{
	/* A long delay: a 2 MiB buffer freed and allocated again stays mapped. */
	struct iovm_ctx *ctx = open_ctx("page_size=4K,host_pa=off,release_delay_ms=600000");
	uint64_t commits;
	void *m;

	m = iovm_dma_alloc(ctx, 2 << 20, 0, 0);
	CHECK_OK(iovm_dma_free(ctx, m));
	commits = stats(ctx).commits;
	for (int i = 0; i < 2000; i++) {
		m = iovm_dma_alloc(ctx, 2 << 20, 0, 0);
		CHECK(m != NULL);
		CHECK_OK(iovm_dma_free(ctx, m));
	}
	CHECK_EQ(stats(ctx).commits, commits);
	CHECK_EQ(stats(ctx).decommits, 0);
	CHECK(stats(ctx).idle >= (2 << 20));
	/* An explicit trim gives the idle pages back at once. */
	CHECK(iovm_dma_trim(ctx, IOVM_TRIM_ALL) >= (2 << 20));
	CHECK_EQ(stats(ctx).idle, 0);
	CHECK(stats(ctx).decommits >= 1);
	/* Without IOVM_TRIM_ALL nothing is due yet. */
	m = iovm_dma_alloc(ctx, 2 << 20, 0, 0);
	CHECK_OK(iovm_dma_free(ctx, m));
	CHECK_EQ(iovm_dma_trim(ctx, 0), 0);
	CHECK_EQ(iovm_dma_trim(ctx, 2), -EINVAL);
	iovm_close(ctx);

	/* No delay: every free gives its pages back, as DPDK's dynamic mode does. */
	ctx = open_ctx("page_size=4K,host_pa=off,release_delay_ms=0");
	for (int i = 0; i < 10; i++) {
		m = iovm_dma_alloc(ctx, 2 << 20, 0, 0);
		CHECK_OK(iovm_dma_free(ctx, m));
	}
	CHECK(stats(ctx).decommits >= 10);
	CHECK_EQ(stats(ctx).idle, 0);
	iovm_close(ctx);
}

TEST(banks_given_back)
{
	struct iovm_ctx *ctx = open_ctx("page_size=4K,host_pa=off,release_delay_ms=0");
	struct iovm_phys_stats ps;
	void *m[8];

	for (int i = 0; i < 8; i++)
		CHECK((m[i] = iovm_dma_alloc(ctx, 3 << 20, 0, 0)) != NULL);
	CHECK_OK(iovm_phys_stats(ctx, &ps));
	CHECK(ps.total >= (24 << 20));
	for (int i = 0; i < 8; i++)
		CHECK_OK(iovm_dma_free(ctx, m[i]));
	iovm_dma_trim(ctx, IOVM_TRIM_ALL);
	CHECK_OK(iovm_phys_stats(ctx, &ps));
	CHECK(ps.banks_released >= 1);
	CHECK_EQ(ps.total, ps.total - ps.free + ps.free);
	CHECK(ps.total < (24 << 20));
	iovm_close(ctx);
}

TEST(limit)
{
	struct iovm_ctx *ctx = open_ctx("page_size=4K,host_pa=off,mem_limit=16M");
	void *m;

	errno = 0;
	CHECK(iovm_dma_alloc(ctx, 32 << 20, 0, 0) == NULL);
	CHECK_EQ(errno, ENOMEM);
	m = iovm_dma_alloc(ctx, 8 << 20, 0, 0);
	CHECK(m != NULL);
	CHECK_OK(iovm_dma_free(ctx, m));
	iovm_close(ctx);
}

int main(void)
{
	test_init();
	RUN(small_sizes_and_alignment);
	RUN(contiguous);
	RUN(boundary);
	RUN(zeroing);
	RUN(known_zero_is_not_zeroed_again);
	RUN(realloc);
	RUN(free_validation);
	RUN(free_validation_by_address);
	RUN(cache_counters);
	RUN(placement);
	RUN(hysteresis);
	RUN(banks_given_back);
	RUN(limit);
	return 0;
}
