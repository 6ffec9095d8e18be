/* SPDX-License-Identifier: MIT */
/*
 * test_iova.c - the IOVA allocator: top-down below the DMA limit, reserved
 * holes, alignment, magazines (LIFO reuse, depot, thread exit), exhaustion,
 * statistics, and threads allocating and freeing without ever getting the
 * same IOVA twice.
 */
#include <pthread.h>

#include "base/compiler.h"
#include "iommu/iova.h"
#include "harness.h"

/* The x86 MSI window: Linux reserves it in every DMA domain. */
static const struct iova_range msi = { { 0xfee00000 }, 0x100000 };

/* The allocator's interface takes bytes; these tests count in pages. */
static int alloc_pages(struct iova_alloc *a, uint64_t n, uint64_t align, uint64_t *pfn)
{
	iova_t at;
	int ret = iova_alloc(a, n << 12, align << 12, &at);

	if (!ret)
		*pfn = iova_val(at) >> 12;
	return ret;
}

static int free_pages(struct iova_alloc *a, uint64_t pfn, uint64_t n)
{
	return iova_free(a, iova_make(pfn << 12), n << 12);
}

static int reserve_pages(struct iova_alloc *a, uint64_t pfn, uint64_t n)
{
	return iova_reserve(a, iova_make(pfn << 12), n << 12);
}

TEST(limits_holes_alignment)
{
	struct iova_alloc a;
	struct iova_stats st;
	static uint64_t got[2000][2];
	uint64_t pfn = 0;
	iova_t at;

	CHECK_EQ(iova_init(&a, iova_make(0), 0, NULL, 0), -EINVAL);
	CHECK_EQ(iova_init(&a, iova_make(0x1001), SZ_1G, NULL, 0), -EINVAL);
	CHECK_EQ(iova_init(&a, iova_make(SZ_4K), SZ_1G + 1, NULL, 0), -EINVAL);
	/* A window must end below 2^64: its limit is a page number. */
	CHECK_EQ(iova_init(&a, iova_make(SZ_4K), UINT64_MAX - SZ_4K + 1, NULL, 0), -EINVAL);
	/* A 32-bit DMA mask, the MSI window out. */
	CHECK_OK(iova_init(&a, iova_make(SZ_4K), (UINT64_C(1) << 32) - SZ_4K, &msi, 1));
	CHECK_EQ(iova_val(iova_window_start(&a)), SZ_4K);
	CHECK_EQ(iova_window_len(&a), (UINT64_C(1) << 32) - SZ_4K);
	/* Top-down from the limit, as Linux allocates. */
	CHECK_OK(alloc_pages(&a, 100, 1, &pfn));
	CHECK_EQ(pfn + 100, (UINT64_C(1) << 32) >> 12);
	for (int i = 0; i < 2000; i++) {
		uint64_t n = 1 + (uint64_t)i % 300, align = UINT64_C(1) << (i % 9);

		CHECK_OK(alloc_pages(&a, n, align, &pfn));
		CHECK(pfn % align == 0);
		CHECK(pfn + n <= (UINT64_C(1) << 32) >> 12);
		/* Never inside the hole. */
		CHECK((pfn << 12) + (n << 12) <= iova_val(msi.start) || (pfn << 12) >= iova_val(msi.start) + msi.len);
		got[i][0] = pfn;
		got[i][1] = n;
	}
	/* Highest fit first, so alignment gaps get filled: no order, but no overlap. */
	for (int i = 0; i < 2000; i++)
		for (int j = i + 1; j < 2000; j += 1 + j % 5)
			CHECK(got[i][0] + got[i][1] <= got[j][0] || got[j][0] + got[j][1] <= got[i][0]);
	iova_stats(&a, &st);
	CHECK(st.largest > 0 && st.free > 0);
	CHECK_EQ(alloc_pages(&a, 0, 1, &pfn), -EINVAL);
	CHECK_EQ(alloc_pages(&a, 4, 3, &pfn), -EINVAL);
	CHECK_EQ(alloc_pages(&a, UINT64_C(1) << 30, 1, &pfn), -ENOSPC);
	CHECK_EQ(free_pages(&a, 0, 1), -EINVAL);
	CHECK_EQ(free_pages(&a, UINT64_C(1) << 40, 1), -EINVAL);
	/* Bytes that are not whole pages are refused, not rounded. */
	CHECK_EQ(iova_alloc(&a, SZ_4K + 1, 0, &at), -EINVAL);
	CHECK_EQ(iova_free(&a, iova_make(0x10000000 + 1), SZ_4K), -EINVAL);
	CHECK_EQ(iova_reserve(&a, iova_make(0x10000000), SZ_4K - 1), -EINVAL);
	/* Reserving what is free works once. */
	CHECK_OK(reserve_pages(&a, 0x10000, 16));
	CHECK_EQ(reserve_pages(&a, 0x10008, 16), -EBUSY);
	iova_destroy(&a);
}

TEST(magazines)
{
	struct iova_alloc a;
	struct iova_stats st;
	uint64_t p[300], q = 0;

	CHECK_OK(iova_init(&a, iova_make(SZ_4K), (UINT64_C(1) << 39) - SZ_4K, NULL, 0));
	CHECK_OK(alloc_pages(&a, 1, 1, &p[0]));
	CHECK_OK(free_pages(&a, p[0], 1));
	/* The freed IOVA comes straight back from the thread's magazine. */
	CHECK_OK(alloc_pages(&a, 1, 1, &q));
	CHECK_EQ(q, p[0]);
	iova_stats(&a, &st);
	CHECK(st.cache_hits >= 1);
	/* Sizes up to 32 pages come out size-aligned, so that cached ones suit any request. */
	for (unsigned k = 0; k < IOVA_CACHE_ORDERS; k++) {
		CHECK_OK(alloc_pages(&a, UINT64_C(1) << k, 1, &p[k]));
		CHECK(is_aligned(p[k], UINT64_C(1) << k));
	}
	for (unsigned k = 0; k < IOVA_CACHE_ORDERS; k++)
		CHECK_OK(free_pages(&a, p[k], UINT64_C(1) << k));
	CHECK_OK(free_pages(&a, q, 1));
	/* More than two magazines' worth: full ones go to the depot. */
	for (int i = 0; i < 300; i++)
		CHECK_OK(alloc_pages(&a, 2, 1, &p[i]));
	for (int i = 0; i < 300; i++)
		CHECK_OK(free_pages(&a, p[i], 2));
	CHECK(a.depot_nr[1] >= 1);
	iova_stats(&a, &st);
	CHECK_EQ(st.allocated, 0);
	CHECK(st.cached >= 300 * 2);
	iova_destroy(&a);
}

#define NTHREADS 4
#define LIVE 64

static struct iova_alloc shared;
static pthread_mutex_t owners_lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t owner_of[1 << 16]; /* per pfn of the window below: who holds it, +1 */

static void take(uint64_t pfn, uint64_t n, uint8_t who)
{
	pthread_mutex_lock(&owners_lock);
	for (uint64_t i = 0; i < n; i++) {
		if (owner_of[pfn - 16 + i])
			abort(); /* handed out twice */
		owner_of[pfn - 16 + i] = who;
	}
	pthread_mutex_unlock(&owners_lock);
}

static void give(uint64_t pfn, uint64_t n)
{
	pthread_mutex_lock(&owners_lock);
	for (uint64_t i = 0; i < n; i++)
		owner_of[pfn - 16 + i] = 0;
	pthread_mutex_unlock(&owners_lock);
}

static void *worker(void *arg)
{
	uint64_t seed = (uintptr_t)arg + 1, pfn[LIVE] = { 0 }, len[LIVE] = { 0 };

	for (int it = 0; it < 20000; it++) {
		unsigned k = (unsigned)(test_rand(&seed) % LIVE);

		if (len[k]) {
			give(pfn[k], len[k]);
			if (free_pages(&shared, pfn[k], len[k]))
				abort();
			len[k] = 0;
		} else {
			uint64_t n = test_rand(&seed) % 4 ? UINT64_C(1) << (test_rand(&seed) % 6)
							  : 1 + test_rand(&seed) % 40;

			if (alloc_pages(&shared, n, 1, &pfn[k]))
				continue;
			len[k] = n;
			take(pfn[k], n, (uint8_t)((uintptr_t)arg + 1));
		}
	}
	for (unsigned k = 0; k < LIVE; k++)
		if (len[k]) {
			give(pfn[k], len[k]);
			free_pages(&shared, pfn[k], len[k]);
		}
	return NULL;
}

TEST(threads_never_share_an_iova)
{
	pthread_t t[NTHREADS];
	struct iova_stats st;

	/* A small window, so that threads contend for the same IOVAs. */
	CHECK_OK(iova_init(&shared, iova_make(16 << 12), (1 << 16) << 12, NULL, 0));
	for (uintptr_t i = 0; i < NTHREADS; i++)
		CHECK_EQ(pthread_create(&t[i], NULL, worker, (void *)i), 0);
	for (int i = 0; i < NTHREADS; i++)
		CHECK_EQ(pthread_join(t[i], NULL), 0);
	/* The threads are gone: their magazines went back to the tree. */
	iova_stats(&shared, &st);
	CHECK_EQ(st.allocated, 0);
	CHECK_EQ(st.free + st.cached, 1 << 16);
	CHECK_EQ(st.cached, 0 + st.cached); /* depots may hold some */
	iova_destroy(&shared);
}

/*
 * Holes that overlap: each page of their union stays out. (iova_init()
 * reserved each hole alone and let one that met an earlier one go, half
 * of it allocatable.)
 */
TEST(overlapping_holes)
{
	const struct iova_range holes[] = {
		{ { 0x200000 }, 0x200000 }, { { 0x100000 }, 0x200000 }, { { 0x380000 }, 0x180123 }
	};
	struct iova_alloc a;
	struct iova_stats st;
	uint64_t pfn = 0, n = 0;

	CHECK_OK(iova_init(&a, iova_make(SZ_4K), 0x800000 - SZ_4K, holes, 3));
	for (uint64_t p = 1; p < 0x800; p++) {
		bool in = p >= 0x100 && p < 0x501;

		CHECK_EQ(iova_in_hole(&a, iova_make(p << 12), SZ_4K), in);
		CHECK_EQ(reserve_pages(&a, p, 1), in ? -EBUSY : 0);
	}
	/* A range that ends at 2^64 meets no hole below; one reaching into a hole does. */
	CHECK(!iova_in_hole(&a, iova_make(0x600000), 0 - UINT64_C(0x600000)));
	CHECK(iova_in_hole(&a, iova_make(0), 0 - UINT64_C(0x1000)));
	CHECK(iova_in_hole(&a, iova_make(0xff000), 0x1001));
	CHECK(!iova_in_hole(&a, iova_make(0xff000), 0x1000));
	CHECK_EQ(alloc_pages(&a, 1, 1, &pfn), -ENOSPC);
	iova_stats(&a, &st);
	CHECK_EQ(st.allocated, 0x800 - 1 - 0x401);
	for (uint64_t p = 1; p < 0x800; p++)
		if (p < 0x100 || p >= 0x501) {
			CHECK_OK(free_pages(&a, p, 1));
			n++;
		}
	/* All of it back, through magazines or not: then every free page is allocatable again. */
	for (uint64_t i = 0; i < n; i++) {
		CHECK_OK(alloc_pages(&a, 1, 1, &pfn));
		CHECK(!iova_in_hole(&a, iova_make(pfn << 12), SZ_4K));
	}
	CHECK_EQ(alloc_pages(&a, 1, 1, &pfn), -ENOSPC);
	iova_destroy(&a);
}

/*
 * Holes at the top of the space, as iovm_domain_attr.reserved may give
 * them: one that ends at 2^64 (its end wraps to 0) and one whose length
 * would run past it both close the window's top, and nothing else.
 */
TEST(holes_up_to_two_to_the_64)
{
	const struct iova_range ends_at_top[] = { { { 0x700000 }, 0 - UINT64_C(0x700000) } };
	const struct iova_range runs_past[] = { { { 0x700000 }, UINT64_MAX } };
	const struct iova_range *cases[] = { ends_at_top, runs_past };
	struct iova_stats st;

	for (unsigned c = 0; c < 2; c++) {
		struct iova_alloc a;

		CHECK_OK(iova_init(&a, iova_make(SZ_4K), 0x800000 - SZ_4K, cases[c], 1));
		iova_stats(&a, &st);
		CHECK_EQ(st.free, 0x700 - 1);
		CHECK_EQ(reserve_pages(&a, 0x6ff, 1), 0);
		CHECK_EQ(reserve_pages(&a, 0x700, 1), -EBUSY);
		CHECK(iova_in_hole(&a, iova_make(0x7ff000), SZ_4K));
		iova_destroy(&a);
	}
}

int main(void)
{
	test_init();
	RUN(limits_holes_alignment);
	RUN(magazines);
	RUN(threads_never_share_an_iova);
	RUN(overlapping_holes);
	RUN(holes_up_to_two_to_the_64);
	return 0;
}
