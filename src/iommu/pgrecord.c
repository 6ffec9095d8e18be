/* SPDX-License-Identifier: MIT */
/*
 * pgrecord.c - a shared table's unmap, recorded before it clears: the
 * preview that tells its writer what the unmap will take away, and the
 * survivor's half of the record, which clears what a writer killed after
 * recording had not cleared yet.
 *
 * Another process's device may still cache what an unmap clears, so its
 * memory, IOVAs and tables are released only after an invalidation that
 * reaches every process (mp/domain_journal.c). If the writer dies between
 * clearing an entry and recording what it named, no survivor can learn
 * it: the entry is gone. Recorded first, a piece is either still in the
 * table, which the survivor clears here, or cleared and recorded; either
 * way the survivor's invalidation of everything lets it go.
 *
 * Tables are the same for a writer killed between taking a page from the
 * pool and hanging it (or saying it did): the pool records where it was
 * to hang, and the survivor asks whether it does (pt_hangs()).
 */
#include "iommu/pgtable.h"

struct preview {
	pt_unmap_fn fn;
	pt_detach_fn tfn;
	void *arg;
};

/*
 * A table @t an unmap would detach whole (entries of @level, from @base):
 * its leaves, its tables, then it. Tables below before the table above:
 * a survivor that detaches a recorded table takes everything below it
 * out of reach, so what is below must be recorded by then (as leaves
 * before tables, iommu/unmap.c).
 */
static void preview_subtree(const struct io_pgtable *pt, _Atomic iopte_t *t, int level, uint64_t base,
			    const struct preview *p)
{
	for (unsigned i = 0; i < PT_ENTRIES; i++) {
		iopte_t pte = atomic_load_explicit(&t[i], memory_order_acquire);
		uint64_t va = base + (uint64_t)i * PT_SPAN(level);

		if (!(pte & PTE_PRESENT))
			continue;
		if (pte_is_leaf(pte, level)) {
			if (p->fn)
				p->fn(p->arg, iova_make(va), pa_make(pte & PTE_ADDR_MASK), PT_SPAN(level), pte);
		} else {
			preview_subtree(pt, pt_table(pt, pte), level - 1, va, p);
		}
	}
	if (p->tfn)
		p->tfn(p->arg, (void *)t, iova_make(base), level);
}

/* pgtable.c's unmap_level(), storing nothing: the same entries in the same order. */
static bool preview_level(const struct io_pgtable *pt, _Atomic iopte_t *t, int level, uint64_t base, uint64_t start,
			  uint64_t end, const struct preview *p)
{
	uint64_t span = PT_SPAN(level);

	for (uint64_t idx = (MAX(start, base) - base) / span; idx < PT_ENTRIES; idx++) {
		uint64_t e_start = base + idx * span, e_end = e_start + span;
		iopte_t pte;

		if (e_start >= end)
			break;
		pte = atomic_load_explicit(&t[idx], memory_order_acquire);
		if (!(pte & PTE_PRESENT))
			continue;
		if (pte_is_leaf(pte, level)) {
			/* A huge leaf the range cuts would be split first: not told. */
			if (MAX(start, e_start) != e_start || MIN(end, e_end) != e_end)
				return false;
			if (p->fn)
				p->fn(p->arg, iova_make(e_start), pa_make(pte & PTE_ADDR_MASK), span, pte);
			continue;
		}
		if (start <= e_start && end >= e_end)
			preview_subtree(pt, pt_table(pt, pte), level - 1, e_start, p);
		else if (!preview_level(pt, pt_table(pt, pte), level - 1, e_start, start, end, p))
			return false;
	}
	return true;
}

bool pt_unmap_preview(const struct io_pgtable *pt, iova_t iova, uint64_t len, pt_unmap_fn fn, pt_detach_fn tfn,
		      void *arg)
{
	const struct preview p = { fn, tfn, arg };
	uint64_t end = pt_clip_end(iova, len);

	if (!end || !is_aligned(iova_val(iova) | len, SZ_4K))
		return true; /* pt_unmap() takes nothing */
	return preview_level(pt, pt->root, PT_LEVELS - 1, 0, iova_val(iova), end, &p);
}

void pt_clear_recorded(struct io_pgtable *pt, iova_t iova, pa_t pa, uint64_t len)
{
	uint64_t start = iova_val(iova), end = pt_clip_end(iova, len), at = start;

	while (end && at < end) {
		_Atomic iopte_t *t = pt->root;
		uint64_t next = at + SZ_4K;

		for (int level = PT_LEVELS - 1; level >= 0; level--) {
			_Atomic iopte_t *slot = &t[PT_INDEX(at, level)];
			iopte_t pte = atomic_load_explicit(slot, memory_order_acquire);
			uint64_t leaf = align_down(at, PT_SPAN(level));

			next = leaf + PT_SPAN(level);
			if (!(pte & PTE_PRESENT))
				break;
			if (!pte_is_leaf(pte, level)) {
				t = pt_table(pt, pte);
				continue;
			}
			/* Only a leaf wholly inside the record, naming what it says: nothing else is the dead unmap's. */
			if (leaf >= start && next <= end && (pte & PTE_ADDR_MASK) == pa_val(pa) + (leaf - start)) {
				atomic_store_explicit(slot, 0, memory_order_release);
				pt_leaves_sub(pt, level, 1);
			}
			break;
		}
		at = next;
	}
}

/* The entry that table @table hangs from, if it spans @base with entries of @level; else NULL. */
static _Atomic iopte_t *hang_slot(const struct io_pgtable *pt, const void *table, iova_t base, int level)
{
	_Atomic iopte_t *t = pt->root;

	if (level < 0 || level >= PT_LEVELS - 1 || iova_val(base) >> PT_IOVA_BITS)
		return NULL;
	for (int l = PT_LEVELS - 1; l > level; l--) {
		_Atomic iopte_t *slot = &t[PT_INDEX(iova_val(base), l)];
		iopte_t pte = atomic_load_explicit(slot, memory_order_acquire);

		if (!(pte & PTE_PRESENT) || pte_is_leaf(pte, l))
			return NULL; /* detached already, and the slot taken anew: not this table */
		t = pt_table(pt, pte);
		if (l == level + 1)
			return (const void *)t == table ? slot : NULL;
	}
	return NULL;
}

void pt_detach_recorded(struct io_pgtable *pt, void *table, iova_t base, int level)
{
	_Atomic iopte_t *slot = hang_slot(pt, table, base, level);

	/*
	 * Its subtree goes with it, unfreed: each table of it has a record of
	 * its own. Not told (pt_source.unhang()): the caller holds the records,
	 * and whatever its source keeps of the tables.
	 */
	if (slot)
		atomic_store_explicit(slot, 0, memory_order_release);
}

bool pt_hangs(const struct io_pgtable *pt, const void *table, iova_t base, int level)
{
	return hang_slot(pt, table, base, level) != NULL;
}
