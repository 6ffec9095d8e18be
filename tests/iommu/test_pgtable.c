/* SPDX-License-Identifier: MIT */
/*
 * test_pgtable.c - IO page tables: leaf sizes chosen from alignment and
 * length, scattered batches, overlap refused with nothing left behind,
 * partial unmaps that split 1 GiB and 2 MiB leaves, accessed and dirty bits,
 * table reclamation, a random model test, and writers on disjoint ranges
 * with walkers running.
 */
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include "iommu/pgtable.h"
#include "harness.h"

#define RW (PT_PROT_READ | PT_PROT_WRITE)

static void expect(struct io_pgtable *pt, uint64_t iova, uint64_t pa, unsigned shift, unsigned prot)
{
	struct pt_walk w;

	CHECK_MSG(pt_walk(pt, IOVM_IOVA(iova), &w) == 0, "iova %#lx not mapped", (unsigned long)iova);
	CHECK_EQ(pa_val(w.pa), pa);
	CHECK_EQ(w.shift, shift);
	CHECK_EQ(w.prot, prot);
}

static void unmapped(struct io_pgtable *pt, uint64_t iova)
{
	struct pt_walk w;

	CHECK_EQ(pt_walk(pt, IOVM_IOVA(iova), &w), -ENOENT);
}

TEST(leaf_sizes)
{
	struct io_pgtable pt;
	uint64_t iova = UINT64_C(1) << 30, pa = UINT64_C(5) << 30;

	CHECK_OK(pt_init(&pt));
	/* 1 GiB + 2 MiB + 4 KiB, all aligned: one leaf of each size. */
	CHECK_OK(pt_map(&pt, IOVM_IOVA(iova), IOVM_PA(pa), SZ_1G + SZ_2M + SZ_4K, RW, true, NULL));
	CHECK_EQ(pt.cnt->leaves[2], 1);
	CHECK_EQ(pt.cnt->leaves[1], 1);
	CHECK_EQ(pt.cnt->leaves[0], 1);
	expect(&pt, iova + 12345, pa + 12345, 30, RW);
	expect(&pt, iova + SZ_1G + 77, pa + SZ_1G + 77, 21, RW);
	expect(&pt, iova + SZ_1G + SZ_2M + 5, pa + SZ_1G + SZ_2M + 5, 12, RW);
	unmapped(&pt, iova + SZ_1G + SZ_2M + SZ_4K);
	unmapped(&pt, iova - 1);
	/* Without huge leaves: 4 KiB leaves only. */
	CHECK_OK(pt_map(&pt, IOVM_IOVA(UINT64_C(8) << 30), IOVM_PA(pa), SZ_2M, PT_PROT_READ, false, NULL));
	CHECK_EQ(pt.cnt->leaves[0], 1 + 512);
	expect(&pt, (UINT64_C(8) << 30) + (UINT64_C(1) << 20), pa + (UINT64_C(1) << 20), 12, PT_PROT_READ);
	/* Misaligned PA for a huge leaf: smaller leaves. */
	CHECK_OK(pt_map(&pt, IOVM_IOVA(UINT64_C(16) << 30), IOVM_PA(pa + SZ_4K), SZ_2M, RW, true, NULL));
	expect(&pt, (UINT64_C(16) << 30) + SZ_4K, pa + 2 * SZ_4K, 12, RW);
	pt_destroy(&pt);
}

/* pt_count_leaves(): leaves of every size that a range touches, whole or in part, up to the cap. */
TEST(count_leaves_of_a_range)
{
	struct io_pgtable pt;
	uint64_t iova = UINT64_C(1) << 30, pa = UINT64_C(5) << 30, small = UINT64_C(8) << 30;

	CHECK_OK(pt_init(&pt));
	CHECK_OK(pt_map(&pt, IOVM_IOVA(iova), IOVM_PA(pa), SZ_1G + SZ_2M + SZ_4K, RW, true, NULL));
	CHECK_OK(pt_map(&pt, IOVM_IOVA(small), IOVM_PA(pa), SZ_2M, RW, false, NULL)); /* 512 of 4 KiB */
	CHECK_EQ(pt_count_leaves(&pt, IOVM_IOVA(iova), SZ_1G + SZ_2M + SZ_4K, 100), 3);
	CHECK_EQ(pt_count_leaves(&pt, IOVM_IOVA(iova + 4096), 4096, 100), 1); /* inside the 1 GiB leaf */
	CHECK_EQ(pt_count_leaves(&pt, IOVM_IOVA(iova + SZ_1G - 4096), 8192, 100), 2); /* across two */
	CHECK_EQ(pt_count_leaves(&pt, IOVM_IOVA(iova - SZ_2M), SZ_2M, 100), 0);
	CHECK_EQ(pt_count_leaves(&pt, IOVM_IOVA(small), SZ_2M, 1000), 512);
	CHECK_EQ(pt_count_leaves(&pt, IOVM_IOVA(small), SZ_2M, 257), 257); /* stops at the cap */
	CHECK_EQ(pt_count_leaves(&pt, IOVM_IOVA(small + 4096), 3 * 4096, 1000), 3);
	CHECK_EQ(pt_count_leaves(&pt, IOVM_IOVA(small), SZ_2M, 0), 0);
	CHECK_EQ(pt_count_leaves(&pt, IOVM_IOVA(0), UINT64_MAX, 10000), 3 + 512); /* past 2^48: clipped */
	pt_destroy(&pt);
}

TEST(bad_input_and_overlap)
{
	struct io_pgtable pt;
	pa_t pages[4] = { { 0x10000 }, { 0x30000 }, { 0x20000 }, { 0x50000 } };
	uint64_t tables;

	CHECK_OK(pt_init(&pt));
	CHECK_EQ(pt_map(&pt, IOVM_IOVA(0x1001), IOVM_PA(0x2000), SZ_4K, RW, true, NULL), -EINVAL);
	CHECK_EQ(pt_map(&pt, IOVM_IOVA(0x1000), IOVM_PA(0x2001), SZ_4K, RW, true, NULL), -EINVAL);
	CHECK_EQ(pt_map(&pt, IOVM_IOVA(0x1000), IOVM_PA(0x2000), 0, RW, true, NULL), -EINVAL);
	CHECK_EQ(pt_map(&pt, IOVM_IOVA(0x1000), IOVM_PA(0x2000), SZ_4K, 0, true, NULL), -EINVAL);
	CHECK_EQ(pt_map(&pt, IOVM_IOVA(0x1000), IOVM_PA(0x2000), SZ_4K, 8, true, NULL), -EINVAL);
	CHECK_EQ(pt_map(&pt, IOVM_IOVA((UINT64_C(1) << 48) - SZ_4K), IOVM_PA(0), SZ_2M, RW, true, NULL), -EINVAL);
	CHECK_EQ(pt_map_pages(&pt, IOVM_IOVA(0x1000), NULL, 1, RW, NULL), -EINVAL);
	pages[1].addr |= 1;
	CHECK_EQ(pt_map_pages(&pt, IOVM_IOVA(0x1000), pages, 4, RW, NULL), -EINVAL);
	pages[1].addr &= ~UINT64_C(1);

	CHECK_OK(pt_map(&pt, IOVM_IOVA(0x200000 + 0x3000), IOVM_PA(0x7000), SZ_4K, RW, true, NULL));
	tables = pt.cnt->nr_tables;
	/* Overlapping the page at 0x203000: refused, and nothing of it stays. */
	CHECK_EQ(pt_map(&pt, IOVM_IOVA(0x200000), IOVM_PA(0x100000), 16 * SZ_4K, RW, true, NULL), -EEXIST);
	unmapped(&pt, 0x200000);
	unmapped(&pt, 0x202000);
	unmapped(&pt, 0x204000);
	expect(&pt, 0x203000, 0x7000, 12, RW);
	CHECK_EQ(pt.cnt->leaves[0], 1);
	CHECK_EQ(pt_map_pages(&pt, IOVM_IOVA(0x201000), pages, 4, RW, NULL), -EEXIST);
	unmapped(&pt, 0x201000);
	unmapped(&pt, 0x202000);
	CHECK_EQ(pt.cnt->leaves[0], 1);
	CHECK_EQ(pt.cnt->nr_tables, tables);
	/* A huge leaf where anything is mapped is refused too. */
	CHECK_OK(pt_map(&pt, IOVM_IOVA(UINT64_C(1) << 30), IOVM_PA(0), SZ_2M, RW, true, NULL));
	CHECK_EQ(pt_map(&pt, IOVM_IOVA((UINT64_C(1) << 30) + SZ_4K), IOVM_PA(0), SZ_4K, RW, true, NULL), -EEXIST);
	CHECK_OK(pt_map_pages(&pt, IOVM_IOVA(0x400000), pages, 4, PT_PROT_READ, NULL));
	for (int i = 0; i < 4; i++)
		expect(&pt, 0x400000 + (uint64_t)i * SZ_4K + 8, pa_val(pages[i]) + 8, 12, PT_PROT_READ);
	CHECK_EQ(pt_unmap(&pt, IOVM_IOVA(0x1001), SZ_4K, NULL, NULL, NULL), 0);
	pt_destroy(&pt);
}

struct pieces {
	uint64_t bytes;
	unsigned n;
	uint64_t last_iova;
};

static void collect(void *arg, iova_t iova, pa_t pa, uint64_t len, iopte_t pte)
{
	struct pieces *p = arg;

	(void)pa;
	(void)pte;
	CHECK(p->n == 0 || iova_val(iova) > p->last_iova); /* in IOVA order */
	p->bytes += len;
	p->n++;
	p->last_iova = iova_val(iova);
}

TEST(partial_unmap_splits)
{
	struct io_pgtable pt;
	uint64_t iova = UINT64_C(4) << 30, pa = UINT64_C(7) << 30;
	struct pieces p = { 0 };

	CHECK_OK(pt_init(&pt));
	CHECK_OK(pt_map(&pt, IOVM_IOVA(iova), IOVM_PA(pa), SZ_1G, RW, true, NULL));
	CHECK_EQ(pt.cnt->leaves[2], 1);
	/* One 4 KiB page out of a 1 GiB leaf: split to 2 MiB, then to 4 KiB. */
	CHECK_EQ(pt_unmap(&pt, IOVM_IOVA(iova + SZ_2M * 3 + SZ_4K * 5), SZ_4K, collect, &p, NULL), SZ_4K);
	CHECK_EQ(p.n, 1);
	CHECK_EQ(pt.cnt->splits, 2);
	CHECK_EQ(pt.cnt->leaves[2], 0);
	CHECK_EQ(pt.cnt->leaves[1], 511);
	CHECK_EQ(pt.cnt->leaves[0], 511);
	unmapped(&pt, iova + SZ_2M * 3 + SZ_4K * 5);
	expect(&pt, iova + SZ_2M * 3 + SZ_4K * 4, pa + SZ_2M * 3 + SZ_4K * 4, 12, RW);
	expect(&pt, iova + SZ_2M * 3 + SZ_4K * 6 + 9, pa + SZ_2M * 3 + SZ_4K * 6 + 9, 12, RW);
	expect(&pt, iova + SZ_2M * 100 + 1, pa + SZ_2M * 100 + 1, 21, RW);
	/* Unmapping the rest reports every piece, largest leaves whole. */
	p = (struct pieces){ 0 };
	CHECK_EQ(pt_unmap(&pt, IOVM_IOVA(iova), SZ_1G, collect, &p, NULL), SZ_1G - SZ_4K);
	CHECK_EQ(p.bytes, SZ_1G - SZ_4K);
	CHECK_EQ(p.n, 511 + 511);
	CHECK_EQ(pt.cnt->leaves[0] + pt.cnt->leaves[1] + pt.cnt->leaves[2], 0);
	/* The detached tables go once a grace period says so. */
	pt_reclaim(&pt);
	CHECK(pt.cnt->nr_tables <= 3); /* root, and the level-2 and level-1 tables still linked */
	pt_destroy(&pt);
}

TEST(accessed_dirty)
{
	struct io_pgtable pt;
	struct pt_walk w;
	bool a, d;

	CHECK_OK(pt_init(&pt));
	CHECK_OK(pt_map(&pt, IOVM_IOVA(0x100000), IOVM_PA(0x500000), 16 * SZ_4K, RW, true, NULL));
	pt_read_ad(&pt, IOVM_IOVA(0x100000), 16 * SZ_4K, false, &a, &d);
	CHECK(!a && !d);
	CHECK_OK(pt_walk(&pt, IOVM_IOVA(0x103000), &w));
	pt_mark(w.ptep, w.pte, false);
	pt_read_ad(&pt, IOVM_IOVA(0x100000), 16 * SZ_4K, false, &a, &d);
	CHECK(a && !d);
	CHECK_OK(pt_walk(&pt, IOVM_IOVA(0x105000), &w));
	pt_mark(w.ptep, w.pte, true);
	pt_read_ad(&pt, IOVM_IOVA(0x105000), SZ_4K, true, &a, &d);
	CHECK(a && d);
	pt_read_ad(&pt, IOVM_IOVA(0x105000), SZ_4K, false, &a, &d);
	CHECK(!a && !d);
	/* Splitting keeps the bits. */
	CHECK_OK(pt_map(&pt, IOVM_IOVA(SZ_1G), IOVM_PA(0), SZ_2M, RW, true, NULL));
	CHECK_OK(pt_walk(&pt, IOVM_IOVA(SZ_1G), &w));
	pt_mark(w.ptep, w.pte, true);
	CHECK_EQ(pt_unmap(&pt, IOVM_IOVA(SZ_1G), SZ_4K, NULL, NULL, NULL), SZ_4K);
	pt_read_ad(&pt, IOVM_IOVA(SZ_1G + SZ_4K * 7), SZ_4K, false, &a, &d);
	CHECK(a && d);
	/*
	 * A device marks only the leaf it walked: an entry an unmap cleared
	 * under it stays clear, and the leaf mapped there next stays unmarked.
	 */
	CHECK_OK(pt_walk(&pt, IOVM_IOVA(0x10a000), &w));
	CHECK_EQ(pt_unmap(&pt, IOVM_IOVA(0x10a000), SZ_4K, NULL, NULL, NULL), SZ_4K);
	pt_mark(w.ptep, w.pte, true);
	CHECK_EQ(atomic_load(w.ptep), 0);
	CHECK_OK(pt_map(&pt, IOVM_IOVA(0x10a000), IOVM_PA(0x900000), SZ_4K, RW, true, NULL));
	pt_mark(w.ptep, w.pte, true);
	pt_read_ad(&pt, IOVM_IOVA(0x10a000), SZ_4K, false, &a, &d);
	CHECK(!a && !d);
	pt_destroy(&pt);
}

/* The model: one PA per 4 KiB IOVA page, in a window of 64 MiB. */
#define MODEL_PAGES 16384
static uint64_t model[MODEL_PAGES]; /* PA + 1, or 0 */

TEST(against_model)
{
	struct io_pgtable pt;
	uint64_t seed = 7, base = UINT64_C(3) << 30;

	memset(model, 0, sizeof(model));
	CHECK_OK(pt_init(&pt));
	for (int it = 0; it < 4000; it++) {
		uint64_t r = test_rand(&seed), first = r % MODEL_PAGES;
		uint64_t n = 1 + test_rand(&seed) % (r % 5 ? 16 : 1024);
		uint64_t pa = (test_rand(&seed) % 4096) << 21; /* 2 MiB aligned: huge leaves happen */

		if (first + n > MODEL_PAGES)
			n = MODEL_PAGES - first;
		if (r % 3) {
			bool free = true;
			int ret;

			/* Half the maps are 2 MiB aligned, so that huge leaves appear and get split. */
			if (r % 2) {
				first = align_down(first, 512);
				n = MIN(align_up(n, 512), MODEL_PAGES - first);
			}
			for (uint64_t i = 0; i < n; i++)
				free &= !model[first + i];
			ret = pt_map(&pt, IOVM_IOVA(base + (first << 12)), IOVM_PA(pa), n << 12, RW, true, NULL);
			CHECK_EQ(ret, free ? 0 : -EEXIST);
			if (!ret)
				for (uint64_t i = 0; i < n; i++)
					model[first + i] = pa + (i << 12) + 1;
		} else {
			uint64_t expect_bytes = 0;

			for (uint64_t i = 0; i < n; i++)
				expect_bytes += model[first + i] ? SZ_4K : 0;
			CHECK_EQ(pt_unmap(&pt, IOVM_IOVA(base + (first << 12)), n << 12, NULL, NULL, NULL), expect_bytes);
			memset(&model[first], 0, n * sizeof(model[0]));
		}
		if (it % 50 == 0) {
			for (uint64_t i = 0; i < MODEL_PAGES; i += 1 + test_rand(&seed) % 7) {
				struct pt_walk w;
				int ret = pt_walk(&pt, IOVM_IOVA(base + (i << 12) + 100), &w);

				CHECK_EQ(ret, model[i] ? 0 : -ENOENT);
				if (!ret)
					CHECK_EQ(pa_val(w.pa), model[i] - 1 + 100);
			}
		}
		if (it % 500 == 0)
			pt_reclaim(&pt);
	}
	pt_destroy(&pt);
}

/*
 * A huge leaf where a table was left empty by smaller mappings now gone:
 * iommu.h promises 2 MiB and 1 GiB leaves wherever alignment and length
 * allow, and an empty table allows them (generic_pt's "table to OA"). The
 * map used 512 (or 512 x 512) smaller leaves instead.
 */
TEST(huge_leaf_over_an_empty_table)
{
	struct io_pgtable pt;
	uint64_t iova = UINT64_C(4) << 30, pa = UINT64_C(9) << 30;
	uint64_t tables;

	CHECK_OK(pt_init(&pt));
	/* A 4 KiB page inside a 2 MiB region, gone again: its table stays. */
	CHECK_OK(pt_map(&pt, IOVM_IOVA(iova + SZ_4K), IOVM_PA(pa), SZ_4K, RW, true, NULL));
	CHECK_EQ(pt_unmap(&pt, IOVM_IOVA(iova + SZ_4K), SZ_4K, NULL, NULL, NULL), SZ_4K);
	tables = pt.cnt->nr_tables;
	CHECK_OK(pt_map(&pt, IOVM_IOVA(iova), IOVM_PA(pa), SZ_2M, RW, true, NULL));
	CHECK_EQ(pt.cnt->leaves[1], 1);
	CHECK_EQ(pt.cnt->leaves[0], 0);
	expect(&pt, iova + 5, pa + 5, 21, RW);
	/* The empty table was retired: freed at the next reclaim. */
	pt_reclaim(&pt);
	CHECK_EQ(pt.cnt->nr_tables, tables - 1);
	CHECK_EQ(pt_unmap(&pt, IOVM_IOVA(iova), SZ_2M, NULL, NULL, NULL), SZ_2M);
	/* A 1 GiB region whose table holds only empty tables. */
	CHECK_OK(pt_map(&pt, IOVM_IOVA(iova + SZ_2M * 7), IOVM_PA(pa), SZ_4K, RW, true, NULL));
	CHECK_OK(pt_map(&pt, IOVM_IOVA(iova + SZ_2M * 9), IOVM_PA(pa), SZ_2M, RW, true, NULL));
	CHECK_EQ(pt_unmap(&pt, IOVM_IOVA(iova + SZ_2M * 7), SZ_4K, NULL, NULL, NULL), SZ_4K);
	CHECK_EQ(pt_unmap(&pt, IOVM_IOVA(iova + SZ_2M * 9), SZ_2M, NULL, NULL, NULL), SZ_2M);
	CHECK_OK(pt_map(&pt, IOVM_IOVA(iova), IOVM_PA(pa), SZ_1G, RW, true, NULL));
	CHECK_EQ(pt.cnt->leaves[2], 1);
	CHECK_EQ(pt.cnt->leaves[1] + pt.cnt->leaves[0], 0);
	expect(&pt, iova + SZ_2M * 7 + 3, pa + SZ_2M * 7 + 3, 30, RW);
	/* A table that still maps something is no place for a huge leaf: refused, nothing changed. */
	CHECK_EQ(pt_unmap(&pt, IOVM_IOVA(iova + SZ_4K), SZ_4K, NULL, NULL, NULL), SZ_4K); /* splits the 1 GiB leaf */
	CHECK_EQ(pt_unmap(&pt, IOVM_IOVA(iova + SZ_2M), SZ_1G - SZ_2M, NULL, NULL, NULL), SZ_1G - SZ_2M);
	CHECK_EQ(pt_map(&pt, IOVM_IOVA(iova), IOVM_PA(pa), SZ_1G, RW, true, NULL), -EEXIST);
	expect(&pt, iova, pa, 12, RW);
	unmapped(&pt, iova + SZ_4K);
	unmapped(&pt, iova + SZ_2M);
	pt_reclaim(&pt);
	pt_destroy(&pt);
}

static struct io_pgtable shared;
static _Atomic int writers_done;

struct writer {
	uint64_t base;
	int id;
};

static void *writer(void *arg)
{
	struct writer *w = arg;
	uint64_t seed = (uint64_t)w->id + 1;

	for (int it = 0; it < 3000; it++) {
		uint64_t off = (test_rand(&seed) % 64) << 21;
		uint64_t iova = w->base + off;

		/* The PA encodes the IOVA: a walker can check any translation it sees. */
		if (pt_map(&shared, IOVM_IOVA(iova), IOVM_PA(iova ^ (UINT64_C(1) << 40)), SZ_2M, RW, it & 1, NULL) == 0)
			pt_unmap(&shared, IOVM_IOVA(iova + (test_rand(&seed) % 512) * SZ_4K), SZ_4K * 3, NULL, NULL, NULL);
		else
			pt_unmap(&shared, IOVM_IOVA(iova), SZ_2M, NULL, NULL, NULL);
	}
	return NULL;
}

static void *walker(void *arg)
{
	uint64_t seed = 99, seen = 0;

	(void)arg;
	while (!atomic_load(&writers_done)) {
		uint64_t iova = (test_rand(&seed) % (4 * 64 * SZ_2M)) & ~UINT64_C(7);
		struct pt_walk w;

		if (!pt_walk(&shared, IOVM_IOVA(iova), &w)) {
			if (pa_val(w.pa) != (iova ^ (UINT64_C(1) << 40)))
				abort();
			seen++;
		}
	}
	return (void *)(uintptr_t)seen;
}

TEST(concurrent_writers_and_walkers)
{
	pthread_t w[4], r;
	struct writer args[4];

	CHECK_OK(pt_init(&shared));
	CHECK_EQ(pthread_create(&r, NULL, walker, NULL), 0);
	for (int i = 0; i < 4; i++) {
		/* Neighbouring ranges in one 1 GiB span: writers race to install tables. */
		args[i] = (struct writer){ .base = (uint64_t)i * 64 * SZ_2M, .id = i };
		CHECK_EQ(pthread_create(&w[i], NULL, writer, &args[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		CHECK_EQ(pthread_join(w[i], NULL), 0);
	atomic_store(&writers_done, 1);
	CHECK_EQ(pthread_join(r, NULL), 0);
	/* Everything left mapped still translates right. */
	for (uint64_t iova = 0; iova < 4 * 64 * SZ_2M; iova += SZ_4K * 13) {
		struct pt_walk w2;

		if (!pt_walk(&shared, IOVM_IOVA(iova), &w2))
			CHECK_EQ(pa_val(w2.pa), iova ^ (UINT64_C(1) << 40));
	}
	pt_destroy(&shared);
}

/*
 * A table whose pages are in memory mapped twice, at two addresses, as a
 * shared domain's are in two processes: a view through each, entries that
 * hold what is the same in both (the page's offset from a fake PA base),
 * maps through one seen by walks through the other, counters in common,
 * and every page back in the arena after a destroy through the second.
 */
#define ARENA_PAGES 64
#define ARENA_PA (UINT64_C(3) << 40)

struct arena {
	uint8_t *base[2];
	bool used[ARENA_PAGES];
	unsigned in_use;
};

struct arena_view {
	struct arena *a;
	int which;
	struct pt_source src;
};

static void *arena_alloc(void *arg, iova_t base, int level, uint64_t *cookie)
{
	struct arena_view *v = arg;

	(void)base, (void)level, (void)cookie; /* test_pgtable_hang.c's concern */

	for (unsigned i = 0; i < ARENA_PAGES; i++)
		if (!v->a->used[i]) {
			v->a->used[i] = true;
			v->a->in_use++;
			return v->a->base[v->which] + (size_t)i * SZ_4K;
		}
	return NULL;
}

static void arena_free(void *arg, void *t)
{
	struct arena_view *v = arg;
	size_t i = (size_t)((uint8_t *)t - v->a->base[v->which]) / SZ_4K;

	CHECK(i < ARENA_PAGES && v->a->used[i]);
	v->a->used[i] = false;
	v->a->in_use--;
}

TEST(one_table_mapped_at_two_addresses)
{
	struct arena a = { 0 };
	struct arena_view v[2];
	struct pt_counters cnt = { 0 };
	struct io_pgtable pt[2];
	uint64_t root_off = 0, root_again;
	int fd = memfd_create("pt-arena", MFD_CLOEXEC);
	uint64_t iova = UINT64_C(7) << 39, pa = UINT64_C(9) << 30;

	CHECK(fd >= 0);
	CHECK_OK(ftruncate(fd, ARENA_PAGES * SZ_4K));
	for (int i = 0; i < 2; i++) {
		a.base[i] = mmap(NULL, ARENA_PAGES * SZ_4K, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		CHECK(a.base[i] != MAP_FAILED);
		v[i] = (struct arena_view){ .a = &a, .which = i };
		v[i].src = (struct pt_source){ .alloc = arena_alloc, .free = arena_free, .arg = &v[i],
					       .delta = (uintptr_t)a.base[i] - ARENA_PA };
	}
	CHECK(a.base[0] != a.base[1]);
	CHECK_OK(pt_init_shared(&pt[0], &v[0].src, &cnt, &root_off));
	CHECK_EQ(root_off, ARENA_PA); /* the first page, named the same in both */
	root_again = root_off;
	CHECK_OK(pt_init_shared(&pt[1], &v[1].src, &cnt, &root_again));
	CHECK_EQ(root_again, root_off);
	CHECK_EQ(a.in_use, 1);
	CHECK_EQ(pt_init_shared(&pt[1], &v[1].src, &cnt, &(uint64_t){ ARENA_PA + 1 }), -EINVAL);
	CHECK_OK(pt_init_shared(&pt[1], &v[1].src, &cnt, &root_again));

	/* Mapped through one view, walked through the other: one 2 MiB leaf, three 4 KiB ones. */
	CHECK_OK(pt_map(&pt[0], IOVM_IOVA(iova), IOVM_PA(pa), SZ_2M + 3 * SZ_4K, RW, true, NULL));
	expect(&pt[1], iova + 4242, pa + 4242, 21, RW);
	expect(&pt[1], iova + SZ_2M + 2 * SZ_4K + 1, pa + SZ_2M + 2 * SZ_4K + 1, 12, RW);
	unmapped(&pt[1], iova + SZ_2M + 3 * SZ_4K);
	CHECK_EQ(cnt.leaves[1], 1);
	CHECK_EQ(cnt.leaves[0], 3);
	CHECK_EQ(cnt.nr_tables, a.in_use);
	/* No entry holds either view's address: each names a page by its fake PA. */
	for (unsigned i = 0; i < PT_ENTRIES; i++) {
		iopte_t e = atomic_load(&pt[0].root[i]);

		if (e & PTE_PRESENT)
			CHECK((e & PTE_ADDR_MASK) >= ARENA_PA && (e & PTE_ADDR_MASK) < ARENA_PA + ARENA_PAGES * SZ_4K);
	}
	/* Split through the second view, seen through the first. */
	CHECK_EQ(pt_unmap(&pt[1], IOVM_IOVA(iova + SZ_4K), SZ_4K, NULL, NULL, NULL), SZ_4K);
	unmapped(&pt[0], iova + SZ_4K);
	expect(&pt[0], iova + 2 * SZ_4K, pa + 2 * SZ_4K, 12, RW);
	CHECK_EQ(cnt.splits, 1);
	CHECK_EQ(pt_unmap(&pt[0], IOVM_IOVA(iova), SZ_2M + 3 * SZ_4K, NULL, NULL, NULL), SZ_2M + 2 * SZ_4K);
	unmapped(&pt[1], iova);
	/* The first view goes without freeing what the other still walks; the last frees all. */
	pt_view_close(&pt[0]);
	CHECK_OK(pt_map(&pt[1], IOVM_IOVA(iova), IOVM_PA(pa), SZ_4K, PT_PROT_READ, true, NULL));
	expect(&pt[1], iova, pa, 12, PT_PROT_READ);
	pt_destroy(&pt[1]);
	CHECK_EQ(a.in_use, 0);
	CHECK_EQ(cnt.nr_tables, 0);
	for (int i = 0; i < 2; i++)
		munmap(a.base[i], ARENA_PAGES * SZ_4K);
	close(fd);
}

int main(void)
{
	test_init();
	RUN(leaf_sizes);
	RUN(bad_input_and_overlap);
	RUN(partial_unmap_splits);
	RUN(accessed_dirty);
	RUN(against_model);
	RUN(huge_leaf_over_an_empty_table);
	RUN(count_leaves_of_a_range);
	RUN(concurrent_writers_and_walkers);
	RUN(one_table_mapped_at_two_addresses);
	return 0;
}
