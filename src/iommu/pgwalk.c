/* SPDX-License-Identifier: MIT */
/*
 * pgwalk.c - reading IO page tables: the device side's lock-free walk, the
 * runs of every mapping (pt_for_each()), the accessed and dirty bits, and
 * the leaves of a range counted, and a census of the whole table.
 */
#include <errno.h>

#include "base/sanitizer.h"
#include "iommu/pgtable.h"

/* The run being gathered: [iova, +len) to [pa, +len), of one protection. */
struct run {
	pt_leaf_fn fn;
	void *arg;
	iova_t iova;
	pa_t pa;
	uint64_t len;
	unsigned prot;
};

static int run_flush(struct run *r)
{
	int ret = r->len ? r->fn(r->arg, r->iova, r->pa, r->len, r->prot) : 0;

	r->len = 0;
	return ret;
}

static int each_level(const struct io_pgtable *pt, _Atomic iopte_t *t, int level, uint64_t base, struct run *r)
{
	for (unsigned idx = 0; idx < PT_ENTRIES; idx++) {
		iopte_t pte = atomic_load_explicit(&t[idx], memory_order_acquire);
		uint64_t at = base + idx * PT_SPAN(level);
		iova_t iova = iova_make(at);
		pa_t pa;
		int ret;

		if (!(pte & PTE_PRESENT))
			continue;
		if (!pte_is_leaf(pte, level)) {
			if ((ret = each_level(pt, pt_table(pt, pte), level - 1, at, r)))
				return ret;
			continue;
		}
		pa = pa_make(pte & PTE_ADDR_MASK);
		if (r->len && iova_eq(iova_add(r->iova, r->len), iova) && pa_eq(pa_add(r->pa, r->len), pa) &&
		    r->prot == pte_prot(pte)) {
			r->len += PT_SPAN(level);
			continue;
		}
		if ((ret = run_flush(r)))
			return ret;
		*r = (struct run){ .fn = r->fn, .arg = r->arg, .iova = iova, .pa = pa, .len = PT_SPAN(level),
				   .prot = pte_prot(pte) };
	}
	return 0;
}

int pt_for_each(const struct io_pgtable *pt, pt_leaf_fn fn, void *arg)
{
	struct run r = { .fn = fn, .arg = arg };
	int ret = each_level(pt, pt->root, PT_LEVELS - 1, 0, &r);

	return ret ? ret : run_flush(&r);
}

int pt_walk(const struct io_pgtable *pt, iova_t at, struct pt_walk *w)
{
	_Atomic iopte_t *t = pt->root;
	uint64_t iova = iova_val(at);

	if (unlikely(iova >> PT_IOVA_BITS))
		return -ENOENT;
	for (int level = PT_LEVELS - 1;; level--) {
		_Atomic iopte_t *slot = &t[PT_INDEX(iova, level)];
		iopte_t pte = atomic_load_explicit(slot, memory_order_acquire);

		if (!(pte & PTE_PRESENT))
			return -ENOENT;
		if (pte_is_leaf(pte, level)) {
			w->shift = PT_SHIFT(level);
			w->pa = pa_make((pte & PTE_ADDR_MASK) + (iova & (PT_SPAN(level) - 1)));
			w->prot = pte_prot(pte);
			w->ptep = slot;
			w->pte = pte;
			return 0;
		}
		t = pt_table(pt, pte);
	}
}

/* Called for each leaf of a range, with its slot; false stops the walk. */
typedef bool (*leaf_visit_fn)(void *arg, _Atomic iopte_t *slot, iopte_t pte);

/* The leaves of [start, end) under table @t of @level, which maps from @base. False: stopped. */
static bool range_leaves(const struct io_pgtable *pt, _Atomic iopte_t *t, int level, uint64_t base, uint64_t start,
			 uint64_t end, leaf_visit_fn fn, void *arg)
{
	uint64_t span = PT_SPAN(level);

	for (uint64_t idx = (MAX(start, base) - base) / span; idx < PT_ENTRIES; idx++) {
		uint64_t e_start = base + idx * span;
		iopte_t pte = atomic_load_explicit(&t[idx], memory_order_acquire);

		if (e_start >= end)
			break;
		if (!(pte & PTE_PRESENT))
			continue;
		if (!pte_is_leaf(pte, level)) {
			if (!range_leaves(pt, pt_table(pt, pte), level - 1, e_start, start, end, fn, arg))
				return false;
			continue;
		}
		if (!fn(arg, &t[idx], pte))
			return false;
	}
	return true;
}

struct ad {
	bool clear, accessed, dirty;
};

static bool ad_leaf(void *arg, _Atomic iopte_t *slot, iopte_t pte)
{
	struct ad *ad = arg;

	if (ad->clear)
		pte = atomic_fetch_and_explicit(slot, ~(PTE_ACCESSED | PTE_DIRTY), memory_order_relaxed);
	ad->accessed |= pte & PTE_ACCESSED;
	ad->dirty |= pte & PTE_DIRTY;
	return true;
}

void pt_read_ad(struct io_pgtable *pt, iova_t iova, uint64_t len, bool clear, bool *accessed, bool *dirty)
{
	uint64_t end = pt_clip_end(iova, len);
	struct ad ad = { .clear = clear };

	if (end)
		range_leaves(pt, pt->root, PT_LEVELS - 1, 0, iova_val(iova), end, ad_leaf, &ad);
	*accessed = ad.accessed;
	*dirty = ad.dirty;
}

struct count {
	uint64_t n, cap;
};

static bool count_leaf(void *arg, _Atomic iopte_t *slot, iopte_t pte)
{
	struct count *c = arg;

	(void)slot;
	(void)pte;
	return ++c->n < c->cap;
}

uint64_t pt_count_leaves(const struct io_pgtable *pt, iova_t iova, uint64_t len, uint64_t cap)
{
	uint64_t end = pt_clip_end(iova, len);
	struct count c = { .cap = cap };

	if (end && cap)
		range_leaves(pt, pt->root, PT_LEVELS - 1, 0, iova_val(iova), end, count_leaf, &c);
	return c.n;
}

/*
 * The leaves under table @t. @racy: its tables may be freed and taken
 * again under the walk (pt_census_racy()), so it follows no entry out of
 * the source's pages, and says false where one would have led.
 */
static bool census_level(const struct io_pgtable *pt, _Atomic iopte_t *t, int level, struct pt_census *c, bool racy)
{
	for (unsigned idx = 0; idx < PT_ENTRIES; idx++) {
		iopte_t pte = atomic_load_explicit(&t[idx], memory_order_acquire);
		const uint8_t *next;

		if (!(pte & PTE_PRESENT))
			continue;
		if (pte_is_leaf(pte, level)) {
			c->leaves[level]++;
			continue;
		}
		next = (const uint8_t *)pt_table(pt, pte);
		if (racy && (next < (const uint8_t *)pt->src->pages_lo || next >= (const uint8_t *)pt->src->pages_hi))
			return false;
		if (!census_level(pt, (_Atomic iopte_t *)(uintptr_t)next, level - 1, c, racy))
			return false;
	}
	return true;
}

void pt_census(const struct io_pgtable *pt, struct pt_census *c)
{
	*c = (struct pt_census){ { 0 } };
	if (pt->root)
		(void)census_level(pt, pt->root, PT_LEVELS - 1, c, false);
}

bool pt_census_racy(const struct io_pgtable *pt, struct pt_census *c)
{
	uint64_t gen;
	bool sound;

	*c = (struct pt_census){ { 0 } };
	if (!pt->src || !pt->src->pages_lo || !pt->root)
		return false;
	gen = atomic_load_explicit(&pt->cnt->frees, memory_order_acquire);
	/* Racing with frees and the zeroing of a page taken again, on purpose: what it read is checked below. */
	tsan_ignore_begin();
	sound = census_level(pt, pt->root, PT_LEVELS - 1, c, true);
	tsan_ignore_end();
	/* The walk's reads before the generation's second read: a free counted before its page changed shows. */
	atomic_thread_fence(memory_order_acquire);
	return sound && atomic_load_explicit(&pt->cnt->frees, memory_order_relaxed) == gen;
}
