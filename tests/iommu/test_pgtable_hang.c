/* SPDX-License-Identifier: MIT */
/*
 * test_pgtable_hang.c - what a shared table's source is told about each of
 * its pages (iommu/pgtable.h, struct pt_source): where a table is to hang
 * when it is taken (alloc()), that it hangs there (hung()), and, before
 * it leaves the tree, that it is about to (unhang(), for it and every
 * table under it). mp's table pool relies on it to free the page of a
 * process killed before its table hung, and never one that hung and that
 * a detacher retired. Every way a table comes and goes: a map's new
 * tables, a split, a huge leaf over an emptied table, an unmap of whole
 * spans, a map's rollback, a dead unmap's record detached
 * (pt_detach_recorded()); after each, pt_hangs() against where every
 * table hangs, and every reachable table hung. A free of a table that
 * was never told it leaves is what a survivor would free twice.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "iommu/pgtable.h"
#include "harness.h"

#define PAGES 96
#define FAKE_PA (UINT64_C(5) << 40)
#define RW (PT_PROT_READ | PT_PROT_WRITE)

enum page_state { P_FREE, P_ROOT, P_TAKEN, P_HUNG, P_LEAVING };

struct arena {
	uint8_t *base;
	enum page_state state[PAGES];
	uint64_t cookie[PAGES], base_of[PAGES];
	int level[PAGES];
	uint64_t seq;
	bool teardown; /* pt_destroy(): every table goes, hung or not */
	struct pt_source src;
};

static unsigned page_of(const struct arena *a, const void *t)
{
	size_t i = (size_t)((const uint8_t *)t - a->base) / SZ_4K;

	CHECK((const uint8_t *)t >= a->base && i < PAGES && (size_t)((const uint8_t *)t - a->base) % SZ_4K == 0);
	return (unsigned)i;
}

static void *arena_alloc(void *arg, iova_t base, int level, uint64_t *cookie)
{
	struct arena *a = arg;

	for (unsigned i = 0; i < PAGES; i++)
		if (a->state[i] == P_FREE) {
			a->state[i] = level == PT_LEVELS - 1 ? P_ROOT : P_TAKEN;
			a->base_of[i] = iova_val(base);
			a->level[i] = level;
			CHECK(level >= 0 && level < PT_LEVELS);
			/* Where it spans from: aligned to its span (a level-0 table spans 2 MiB). */
			CHECK_MSG(iova_val(base) % (UINT64_C(1) << (12 + 9 * (level + 1))) == 0 || level == PT_LEVELS - 1,
				  "table of level %d told to hang at %#llx", level, (unsigned long long)iova_val(base));
			*cookie = a->cookie[i] = ++a->seq;
			return a->base + (size_t)i * SZ_4K;
		}
	return NULL;
}

static void arena_hung(void *arg, void *t, uint64_t cookie)
{
	struct arena *a = arg;
	unsigned i = page_of(a, t);

	CHECK_MSG(a->state[i] == P_TAKEN && a->cookie[i] == cookie, "page %u hung in state %d, cookie %llu of %llu",
		  i, a->state[i], (unsigned long long)cookie, (unsigned long long)a->cookie[i]);
	a->state[i] = P_HUNG;
}

static void arena_unhang(void *arg, void *t, iova_t base, int level)
{
	struct arena *a = arg;
	unsigned i = page_of(a, t);

	CHECK_MSG(a->state[i] == P_HUNG, "page %u told it leaves in state %d", i, a->state[i]);
	/* Told where it hangs from, as its alloc() was: a shared source records that. */
	CHECK_MSG(iova_val(base) == a->base_of[i] && level == a->level[i],
		  "page %u told it leaves from level %d at %#llx, taken for level %d at %#llx", i, level,
		  (unsigned long long)iova_val(base), a->level[i], (unsigned long long)a->base_of[i]);
	a->state[i] = P_LEAVING;
}

static void arena_free(void *arg, void *t)
{
	struct arena *a = arg;
	unsigned i = page_of(a, t);

	/* Taken and lost a race to hang (another writer's table went in), or told it leaves. */
	CHECK_MSG(a->state[i] == P_TAKEN || a->state[i] == P_LEAVING || a->teardown,
		  "page %u freed in state %d: detached without being told", i, a->state[i]);
	a->state[i] = P_FREE;
}

static void arena_init(struct arena *a)
{
	memset(a, 0, sizeof(*a));
	a->base = aligned_alloc(SZ_4K, PAGES * SZ_4K);
	CHECK(a->base != NULL);
	a->src = (struct pt_source){ .alloc = arena_alloc, .free = arena_free, .hung = arena_hung,
				     .unhang = arena_unhang, .arg = a, .delta = (uintptr_t)a->base - FAKE_PA,
				     .pages_lo = a->base, .pages_hi = a->base + PAGES * SZ_4K };
}

/* Mark the tables reachable from @t (entries of @level); each must be hung (or the root). */
static void reach(struct arena *a, const struct io_pgtable *pt, _Atomic iopte_t *t, int level, bool *seen)
{
	unsigned i = page_of(a, t);

	CHECK_MSG(a->state[i] == (level == PT_LEVELS - 1 ? P_ROOT : P_HUNG), "reachable page %u in state %d", i,
		  a->state[i]);
	seen[i] = true;
	for (unsigned e = 0; level > 0 && e < PT_ENTRIES; e++) {
		iopte_t pte = atomic_load(&t[e]);

		if ((pte & PTE_PRESENT) && !pte_is_leaf(pte, level))
			reach(a, pt, pt_table(pt, pte), level - 1, seen);
	}
}

/* After each step: what is reachable hangs, where it said; what is not, does not; none is left taken. */
static void audit(struct arena *a, const struct io_pgtable *pt, const char *step)
{
	bool seen[PAGES] = { false };

	reach(a, pt, pt->root, PT_LEVELS - 1, seen);
	for (unsigned i = 0; i < PAGES; i++) {
		void *t = a->base + (size_t)i * SZ_4K;

		CHECK_MSG(a->state[i] != P_TAKEN, "%s: page %u taken and never said hung", step, i);
		if (a->state[i] == P_HUNG) {
			CHECK_MSG(seen[i], "%s: page %u hung and unreachable", step, i);
			CHECK_MSG(pt_hangs(pt, t, iova_make(a->base_of[i]), a->level[i]),
				  "%s: pt_hangs() of page %u (level %d at %#llx) false", step, i, a->level[i],
				  (unsigned long long)a->base_of[i]);
		} else if (a->state[i] == P_LEAVING) {
			CHECK_MSG(!seen[i], "%s: page %u told it leaves and still reachable", step, i);
			CHECK_MSG(!pt_hangs(pt, t, iova_make(a->base_of[i]), a->level[i]), "%s: pt_hangs() of gone page %u",
				  step, i);
		}
	}
}

static unsigned count(const struct arena *a, enum page_state s)
{
	unsigned n = 0;

	for (unsigned i = 0; i < PAGES; i++)
		n += a->state[i] == s;
	return n;
}

TEST(every_way_a_table_comes_and_goes)
{
	struct arena a;
	struct pt_counters cnt = { 0 };
	struct io_pgtable pt;
	uint64_t root_off = 0, x = UINT64_C(3) << 39, pa = UINT64_C(7) << 30;

	arena_init(&a);
	CHECK_OK(pt_init_shared(&pt, &a.src, &cnt, &root_off));
	CHECK_EQ(count(&a, P_ROOT), 1);

	/* A map's new tables, one per level below the root. */
	CHECK_OK(pt_map(&pt, iova_make(x + 5 * SZ_4K), pa_make(pa), 3 * SZ_4K, RW, true, NULL));
	audit(&a, &pt, "4 KiB map");
	CHECK_EQ(count(&a, P_HUNG), 3);

	/* A 1 GiB leaf elsewhere, then a split of it down to 4 KiB by a partial unmap. */
	CHECK_OK(pt_map(&pt, iova_make(x + SZ_1G), pa_make(pa), SZ_1G, RW, true, NULL));
	audit(&a, &pt, "1 GiB map");
	CHECK_EQ(pt_unmap(&pt, iova_make(x + SZ_1G + SZ_2M + SZ_4K), SZ_4K, NULL, NULL, NULL), SZ_4K);
	audit(&a, &pt, "split of 1 GiB");
	CHECK_EQ(count(&a, P_HUNG), 5);
	CHECK_EQ(cnt.splits, 2);

	/* The split range's rest, whole spans: the 2 MiB table and then the 1 GiB table leave, told first. */
	CHECK_EQ(pt_unmap(&pt, iova_make(x + SZ_1G), SZ_1G, NULL, NULL, NULL), SZ_1G - SZ_4K);
	audit(&a, &pt, "unmap of the split 1 GiB");
	CHECK_EQ(count(&a, P_LEAVING), 2);
	pt_reclaim(&pt);
	CHECK_EQ(count(&a, P_LEAVING), 0);

	/* A 2 MiB leaf over the emptied table of the first map: that table leaves, told. */
	CHECK_EQ(pt_unmap(&pt, iova_make(x + 5 * SZ_4K), 3 * SZ_4K, NULL, NULL, NULL), 3 * SZ_4K);
	audit(&a, &pt, "unmap of the 4 KiB pages");
	CHECK_OK(pt_map(&pt, iova_make(x), pa_make(pa), SZ_2M, RW, true, NULL));
	audit(&a, &pt, "2 MiB leaf over an empty table");
	CHECK_EQ(count(&a, P_LEAVING), 1);
	pt_reclaim(&pt);

	/*
	 * A rollback: 4 KiB pages into a fresh table, then a page mapped
	 * already. A shared table's rollback detaches nothing: its fresh table
	 * stays, empty (a detach it did not record would be lost if its
	 * process died before the free).
	 */
	CHECK_OK(pt_map(&pt, iova_make(x + 3 * SZ_2M + SZ_4K), pa_make(pa), SZ_4K, RW, false, NULL));
	audit(&a, &pt, "a page in the way");
	{
		unsigned hung = count(&a, P_HUNG);
		struct pt_walk w;

		CHECK_EQ(pt_map(&pt, iova_make(x + 2 * SZ_2M), pa_make(pa), 2 * SZ_2M, RW, false, NULL), -EEXIST);
		audit(&a, &pt, "rollback");
		CHECK_EQ(count(&a, P_LEAVING), 0);
		CHECK_EQ(count(&a, P_HUNG), hung + 1);
		CHECK_EQ(pt_walk(&pt, iova_make(x + 2 * SZ_2M), &w), -ENOENT);
		CHECK_EQ(pt_walk(&pt, iova_make(x + 3 * SZ_2M - SZ_4K), &w), -ENOENT);
		CHECK_OK(pt_walk(&pt, iova_make(x + 3 * SZ_2M + SZ_4K), &w));
	}

	/* A dead unmap's record of a table with a table under it: both told, once detached. */
	CHECK_OK(pt_map(&pt, iova_make(x + 2 * SZ_1G + 7 * SZ_4K), pa_make(pa), SZ_4K, RW, false, NULL));
	audit(&a, &pt, "a page in a third 1 GiB span");
	{
		_Atomic iopte_t *l2 = pt_table(&pt, atomic_load(&pt.root[PT_INDEX(x, 3)]));
		_Atomic iopte_t *l1 = pt_table(&pt, atomic_load(&l2[PT_INDEX(x + 2 * SZ_1G, 2)]));

		CHECK(pt_hangs(&pt, l1, iova_make(x + 2 * SZ_1G), 1));
		CHECK(!pt_hangs(&pt, l1, iova_make(x + SZ_1G), 1));
		CHECK(!pt_hangs(&pt, l1, iova_make(x + 2 * SZ_1G), 0));
		CHECK(!pt_hangs(&pt, l1, iova_make(x + 2 * SZ_1G), PT_LEVELS - 1));
		CHECK(!pt_hangs(&pt, l1, iova_make(UINT64_C(1) << 48), 1));
		_Atomic iopte_t *l0 = pt_table(&pt, atomic_load(&l1[PT_INDEX(x + 2 * SZ_1G, 1)]));

		pt_detach_recorded(&pt, l1, iova_make(x + 2 * SZ_1G), 1);
		CHECK(!pt_hangs(&pt, l1, iova_make(x + 2 * SZ_1G), 1));
		/* Not told: the record's holder clears what its source keeps (mp's pending words). */
		CHECK_EQ(count(&a, P_LEAVING), 0);
		a.state[page_of(&a, l1)] = a.state[page_of(&a, l0)] = P_LEAVING;
		audit(&a, &pt, "a dead unmap's table detached");
		/* Again: it hangs nowhere now, nothing is told twice. */
		pt_detach_recorded(&pt, l1, iova_make(x + 2 * SZ_1G), 1);
		/* The record's owner frees them, and counts them (as mp's journal does). */
		atomic_fetch_sub(&cnt.nr_tables, 2);
		arena_free(&a, (void *)l0);
		arena_free(&a, (void *)l1);
		pt_leaves_sub(&pt, 0, 1);
	}

	/* Out of pages: the map fails whole, and nothing is left taken. */
	{
		int ret = 0;

		for (uint64_t k = 0; k < PAGES && !ret; k++)
			ret = pt_map(&pt, iova_make((k + 8) << 39), pa_make(pa), SZ_4K, RW, false, NULL);
		CHECK_EQ(ret, -ENOMEM);
		audit(&a, &pt, "pool run dry");
		CHECK_EQ(count(&a, P_FREE), 0);
	}
	a.teardown = true;
	pt_destroy(&pt);
	CHECK_EQ(count(&a, P_FREE), PAGES);
	free(a.base);
}

int main(void)
{
	test_init();
	RUN(every_way_a_table_comes_and_goes);
	return 0;
}
