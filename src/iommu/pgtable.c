/* SPDX-License-Identifier: MIT */
/*
 * pgtable.c - building and tearing down IO page tables: maps, unmaps,
 * splits, and the retirement of detached tables. Walks are pgwalk.c's.
 *
 * Leaves at level 0 are stored with a plain load-check-store: writers own
 * disjoint ranges (the IOVA allocator sees to it), and a batched map of 256
 * pages must cost a store per page, not a locked instruction per page.
 * Tables and huge-leaf splits, which two writers of neighbouring ranges may
 * race for, are installed with compare-and-swap.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/crash.h"
#include "base/fault_inject.h"
#include "base/lock.h"
#include "iommu/pgtable.h"

static iopte_t mk_leaf(pa_t pa, unsigned prot, int level)
{
	return PTE_PRESENT | (prot & PT_PROT_READ ? PTE_READ : 0) |
	       (prot & PT_PROT_WRITE ? PTE_WRITE : 0) | (level ? PTE_LEAF : 0) | (pa_val(pa) & PTE_ADDR_MASK);
}

/* An entry naming table @t: its address less the delta (pgtable.h), the same in every process. */
static iopte_t mk_table(const struct io_pgtable *pt, _Atomic iopte_t *t)
{
	return PTE_PRESENT | (((uintptr_t)t - pt->delta) & PTE_ADDR_MASK);
}

/*
 * Between an entry of a shared table and its count: where a test kills
 * the process (base/crash.h), as kill -9 may, to show that the survivors'
 * view of the table does not rest on the counts.
 */
static inline void shared_crash_point(const struct io_pgtable *pt)
{
	if (pt->src)
		crash_point();
}

/*
 * Take @n off counter @c. A process's own table's counters follow its
 * entries exactly: less than @n there is a bug. A shared table's may run
 * one step short where a process was killed between an entry and its
 * count, which its survivors cannot tell; they stop at 0 rather than
 * wrap, and nothing reads them as the truth (pt_census() walks instead).
 */
static void count_sub(struct io_pgtable *pt, _Atomic uint64_t *c, uint64_t n)
{
	uint64_t old;

	if (!pt->src) {
		IOVM_WARN_ON(atomic_fetch_sub_explicit(c, n, memory_order_relaxed) < n);
		return;
	}
	old = atomic_load_explicit(c, memory_order_relaxed);
	while (!atomic_compare_exchange_weak_explicit(c, &old, old > n ? old - n : 0, memory_order_relaxed,
						      memory_order_relaxed))
		;
}

/* A table of entries of @level, to hang where it spans @base from (pt_source.alloc()). */
static _Atomic iopte_t *table_alloc(struct io_pgtable *pt, uint64_t base, int level, uint64_t *cookie)
{
	void *t = pt->src ? pt->src->alloc(pt->src->arg, iova_make(base), level, cookie) : fi_aligned_alloc(4096, 4096);

	if (!t)
		return NULL;
	memset(t, 0, 4096);
	atomic_fetch_add_explicit(&pt->cnt->nr_tables, 1, memory_order_relaxed);
	shared_crash_point(pt);
	return t;
}

/* Table @t, from table_alloc() with @cookie, hangs where it was to. */
static void table_hung(struct io_pgtable *pt, _Atomic iopte_t *t, uint64_t cookie)
{
	shared_crash_point(pt);
	if (pt->src && pt->src->hung)
		pt->src->hung(pt->src->arg, (void *)t, cookie);
}

void pt_unhang_subtree(const struct io_pgtable *pt, _Atomic iopte_t *t, uint64_t base, int level)
{
	if (!pt->src || !pt->src->unhang)
		return;
	for (unsigned i = 0; level > 0 && i < PT_ENTRIES; i++) {
		iopte_t pte = atomic_load_explicit(&t[i], memory_order_acquire);

		if ((pte & PTE_PRESENT) && !pte_is_leaf(pte, level))
			pt_unhang_subtree(pt, pt_table(pt, pte), base + i * PT_SPAN(level), level - 1);
	}
	pt->src->unhang(pt->src->arg, (void *)t, iova_make(base), level);
}

static void table_free(struct io_pgtable *pt, _Atomic iopte_t *t)
{
	count_sub(pt, &pt->cnt->nr_tables, 1);
	if (pt->src) {
		/* Another process may take, install and let this one's walkers reach it (base/sanitizer.h). */
		tsan_release(pt->src);
		pt->src->free(pt->src->arg, (void *)t);
	} else {
		free((void *)t);
	}
}

/* Take @n leaves of @level off the count: never more than it holds. */
void pt_leaves_sub(struct io_pgtable *pt, int level, uint64_t n)
{
	shared_crash_point(pt);
	count_sub(pt, &pt->cnt->leaves[level], n);
}

/*
 * Detached: freed by pt_reclaim() after a grace period. The retired tables
 * are linked through their entry 0, which a walker that read the table's
 * address before the detach may still load: the link is stored as an
 * entry, atomically, and reads as not present (a table is 4 KiB aligned,
 * so its address has PTE_PRESENT clear). That walker faults, as it should
 * on an unmapped range, or finds the entries still there.
 */
static void retired_push(struct pt_retired *r, _Atomic iopte_t *t)
{
	IOVM_ASSERT(!((uintptr_t)r->head & (PTE_PRESENT | (SZ_4K - 1))));
	atomic_store_explicit(&t[0], (iopte_t)(uintptr_t)r->head, memory_order_relaxed);
	r->head = (void *)t;
}

static void *retired_next(void *t)
{
	return (void *)(uintptr_t)atomic_load_explicit((_Atomic iopte_t *)t, memory_order_relaxed);
}

/* Onto the writer's list @r, or (NULL) the table's own. */
static void table_retire(struct io_pgtable *pt, _Atomic iopte_t *t, struct pt_retired *r)
{
	if (r) {
		retired_push(r, t);
		return;
	}
	mutex_lock(&pt->retired_lock);
	retired_push(&pt->retired, t);
	mutex_unlock(&pt->retired_lock);
}

void pt_retired_free(struct io_pgtable *pt, struct pt_retired *r)
{
	for (void *t = r->head, *next; t; t = next) {
		next = retired_next(t);
		table_free(pt, t);
	}
	r->head = NULL;
}

void pt_retired_each(const struct pt_retired *r, void (*fn)(void *arg, void *table), void *arg)
{
	for (void *t = r->head; t; t = retired_next(t))
		fn(arg, t);
}

void pt_retired_give(struct io_pgtable *pt, struct pt_retired *r)
{
	void *last = r->head;

	if (!last)
		return;
	while (retired_next(last))
		last = retired_next(last);
	mutex_lock(&pt->retired_lock);
	atomic_store_explicit((_Atomic iopte_t *)last, (iopte_t)(uintptr_t)pt->retired.head, memory_order_relaxed);
	pt->retired.head = r->head;
	mutex_unlock(&pt->retired_lock);
	r->head = NULL;
}

void pt_retired_take(struct io_pgtable *pt, struct pt_retired *r)
{
	IOVM_ASSERT(!r->head);
	mutex_lock(&pt->retired_lock);
	r->head = pt->retired.head;
	pt->retired.head = NULL;
	mutex_unlock(&pt->retired_lock);
}

bool pt_retired_waiting(struct io_pgtable *pt)
{
	bool any;

	mutex_lock(&pt->retired_lock);
	any = pt->retired.head != NULL;
	mutex_unlock(&pt->retired_lock);
	return any;
}

int pt_init(struct io_pgtable *pt)
{
	memset(pt, 0, sizeof(*pt));
	pt->cnt = &pt->own;
	mutex_init(&pt->retired_lock);
	pt->root = table_alloc(pt, 0, PT_LEVELS - 1, &(uint64_t){ 0 });
	if (!pt->root) {
		mutex_destroy(&pt->retired_lock);
		return -ENOMEM;
	}
	return 0;
}

int pt_init_shared(struct io_pgtable *pt, const struct pt_source *src, struct pt_counters *cnt, uint64_t *root_off)
{
	memset(pt, 0, sizeof(*pt));
	pt->src = src;
	pt->delta = src->delta;
	pt->cnt = cnt;
	if (*root_off) {
		if (!is_aligned(*root_off, SZ_4K))
			return -EINVAL;
		pt->root = (_Atomic iopte_t *)(uintptr_t)(*root_off + pt->delta);
	} else {
		pt->root = table_alloc(pt, 0, PT_LEVELS - 1, &(uint64_t){ 0 });
		if (!pt->root)
			return -ENOMEM;
		*root_off = (uintptr_t)pt->root - pt->delta;
	}
	mutex_init(&pt->retired_lock);
	return 0;
}

void pt_view_close(struct io_pgtable *pt)
{
	pt_reclaim(pt);
	pt->root = NULL;
	mutex_destroy(&pt->retired_lock);
}

/* Free a subtree, counting its leaves per level into @leaves. */
static void free_subtree(struct io_pgtable *pt, _Atomic iopte_t *t, int level, uint64_t *leaves)
{
	for (unsigned i = 0; i < PT_ENTRIES; i++) {
		iopte_t pte = atomic_load_explicit(&t[i], memory_order_relaxed);

		if (!(pte & PTE_PRESENT))
			continue;
		if (pte_is_leaf(pte, level))
			leaves[level]++;
		else
			free_subtree(pt, pt_table(pt, pte), level - 1, leaves);
	}
	table_free(pt, t);
}

void pt_reclaim(struct io_pgtable *pt)
{
	struct pt_retired r = { NULL };

	pt_retired_take(pt, &r);
	pt_retired_free(pt, &r);
}

void pt_destroy(struct io_pgtable *pt)
{
	uint64_t leaves[PT_LEVELS] = { 0 };

	if (pt->root)
		free_subtree(pt, pt->root, PT_LEVELS - 1, leaves);
	pt->root = NULL;
	pt_reclaim(pt);
	/* The counters agree with the table: every leaf counted once, every table freed. */
	for (int l = 0; l < 3; l++)
		IOVM_WARN_ON(leaves[l] != atomic_load_explicit(&pt->cnt->leaves[l], memory_order_relaxed));
	IOVM_WARN_ON(leaves[3] != 0);
	IOVM_WARN_ON(atomic_load_explicit(&pt->cnt->nr_tables, memory_order_relaxed) != 0);
	mutex_destroy(&pt->retired_lock);
}

/*
 * The table below @slot, an entry of @level spanning @base, made if the
 * slot is empty. NULL with -EEXIST when a leaf is there, -ENOMEM when
 * memory is not.
 */
static _Atomic iopte_t *next_table(struct io_pgtable *pt, _Atomic iopte_t *slot, uint64_t base, int level, int *err)
{
	iopte_t pte = atomic_load_explicit(slot, memory_order_acquire), want;
	uint64_t cookie = 0;
	_Atomic iopte_t *t;

	if (pte & PTE_PRESENT) {
		if (pte & PTE_LEAF) {
			*err = -EEXIST;
			return NULL;
		}
		return pt_table(pt, pte);
	}
	t = table_alloc(pt, base, level - 1, &cookie);
	if (!t) {
		*err = -ENOMEM;
		return NULL;
	}
	want = mk_table(pt, t);
	pte = 0;
	if (atomic_compare_exchange_strong_explicit(slot, &pte, want, memory_order_release,
						    memory_order_acquire)) {
		table_hung(pt, t, cookie);
		return t;
	}
	/* A neighbour's writer installed one first: use it. */
	table_free(pt, t);
	if (pte & PTE_LEAF) {
		*err = -EEXIST;
		return NULL;
	}
	return pt_table(pt, pte);
}

/* The slot at @level for @iova, making the tables above it. */
static _Atomic iopte_t *slot_at(struct io_pgtable *pt, iova_t iova, int level, int *err)
{
	_Atomic iopte_t *t = pt->root;

	for (int l = PT_LEVELS - 1; l > level; l--) {
		t = next_table(pt, &t[PT_INDEX(iova_val(iova), l)], align_down(iova_val(iova), PT_SPAN(l)), l, err);
		if (!t)
			return NULL;
	}
	return &t[PT_INDEX(iova_val(iova), level)];
}

/* The largest leaf level, at most @max, that @iova, @pa and @left allow. */
static int leaf_level(iova_t iova, pa_t pa, uint64_t left, int max)
{
	for (int l = max; l > 0; l--)
		if (is_aligned(iova_val(iova) | pa_val(pa), PT_SPAN(l)) && left >= PT_SPAN(l))
			return l;
	return 0;
}

/*
 * Store 4 KiB leaves from @slot on, to the end of its table or of the run:
 * a load and a store per page. Returns how many, or -EEXIST.
 *
 * The leaf count is added before the first store, and taken back on
 * failure: a locked instruction after the stores would wait for each of
 * them to own its line, which a device that walked a neighbouring leaf
 * holds.
 */
static int fill_level0(struct io_pgtable *pt, _Atomic iopte_t *slot, iova_t iova, const pa_t *pas, pa_t pa,
		       uint64_t npages, unsigned prot)
{
	unsigned room = PT_ENTRIES - (unsigned)PT_INDEX(iova_val(iova), 0), n = (unsigned)MIN(npages, room);

	/* A device may have walked a neighbour of the first leaf: take the line once. */
	prefetch_for_write(slot);
	atomic_fetch_add_explicit(&pt->cnt->leaves[0], n, memory_order_relaxed);
	shared_crash_point(pt);
	for (unsigned i = 0; i < n; i++) {
		if (atomic_load_explicit(&slot[i], memory_order_relaxed) & PTE_PRESENT) {
			/* Take back what this call stored: the caller undoes only the rest. */
			while (i--)
				atomic_store_explicit(&slot[i], 0, memory_order_release);
			pt_leaves_sub(pt, 0, n);
			return -EEXIST;
		}
		atomic_store_explicit(&slot[i], mk_leaf(pas ? pas[i] : pa_add(pa, (uint64_t)i << 12), prot, 0),
				      memory_order_release);
	}
	return (int)n;
}

static uint64_t drop_subtree(struct io_pgtable *pt, _Atomic iopte_t *t, int level, uint64_t base,
			     pt_unmap_fn fn, void *arg, struct pt_retired *r);

/* Whether the subtree of table @t (entries of @level) maps nothing. */
static bool subtree_empty(const struct io_pgtable *pt, _Atomic iopte_t *t, int level)
{
	for (unsigned i = 0; i < PT_ENTRIES; i++) {
		iopte_t pte = atomic_load_explicit(&t[i], memory_order_acquire);

		if (!(pte & PTE_PRESENT))
			continue;
		if (pte_is_leaf(pte, level) || !subtree_empty(pt, pt_table(pt, pte), level - 1))
			return false;
	}
	return true;
}

/*
 * Put the huge leaf @leaf in @slot (of @level): in an empty slot, or in
 * place of a table that maps nothing (left by smaller mappings since
 * unmapped), which is retired. Whoever maps the leaf's whole range owns
 * everything below the slot: no other writer is in that table. Returns
 * whether it went in; if not, *old is what is there.
 */
static bool put_huge_leaf(struct io_pgtable *pt, _Atomic iopte_t *slot, uint64_t base, int level, iopte_t leaf,
			  iopte_t *old, struct pt_retired *r)
{
	*old = 0;
	if (atomic_compare_exchange_strong_explicit(slot, old, leaf, memory_order_release, memory_order_relaxed))
		return true;
	if ((*old & PTE_LEAF) || !subtree_empty(pt, pt_table(pt, *old), level - 1))
		return false;
	/* Told before it may go: still hanging if the exchange fails, where that changes nothing. */
	pt_unhang_subtree(pt, pt_table(pt, *old), base, level - 1);
	if (!atomic_compare_exchange_strong_explicit(slot, old, leaf, memory_order_release, memory_order_relaxed))
		return false;
	/* Walkers that read the table's address before may still read its zeros: retired, not freed. */
	drop_subtree(pt, pt_table(pt, *old), level - 1, 0, NULL, NULL, r);
	return true;
}

static uint64_t unmap_level(struct io_pgtable *pt, _Atomic iopte_t *t, int level, uint64_t base,
			    uint64_t start, uint64_t end, pt_unmap_fn fn, void *arg, struct pt_retired *r, bool keep);

/* Map [iova, +len) to @pa (contiguous) or to @pas (one PA per 4 KiB page). */
static int map_range(struct io_pgtable *pt, iova_t iova, pa_t pa, const pa_t *pas, uint64_t len, unsigned prot,
		     bool huge, struct pt_retired *r)
{
	uint64_t done = 0, start = iova_val(iova);
	int err = 0;

	if (!len || !is_aligned(start | len, SZ_4K) || (!pas && !is_aligned(pa_val(pa), SZ_4K)) ||
	    start + len > (UINT64_C(1) << PT_IOVA_BITS) || start + len < start || !(prot & 3) || (prot & ~3u))
		return -EINVAL;
	while (done < len) {
		iova_t cur = iova_add(iova, done);
		pa_t cpa = pas ? pas[done >> 12] : pa_add(pa, done);
		int level = pas || !huge ? 0 : leaf_level(cur, cpa, len - done, 2);
		_Atomic iopte_t *slot;

		for (;;) {
			slot = slot_at(pt, cur, level, &err);
			if (!slot)
				goto rollback;
			if (level == 0)
				break;
			/*
			 * A huge leaf goes in an empty slot, or over a table that
			 * maps nothing; a table that maps something takes smaller
			 * leaves instead (and refuses them where it maps).
			 */
			{
				iopte_t old;

				if (put_huge_leaf(pt, slot, iova_val(cur), level, mk_leaf(cpa, prot, level), &old, r)) {
					uint64_t n = 1;

					done += PT_SPAN(level);
					/*
					 * The following leaves of the same table, without
					 * walking down again: 1 GiB of 2 MiB pages is 512
					 * slots of one table.
					 */
					while (done + PT_SPAN(level) <= len && PT_INDEX(start + done, level) &&
					       is_aligned(pa_val(pa) + done, PT_SPAN(level))) {
						if (!put_huge_leaf(pt, &slot[n], start + done, level,
								   mk_leaf(pa_add(pa, done), prot, level), &old, r))
							break;
						n++;
						done += PT_SPAN(level);
					}
					shared_crash_point(pt);
					atomic_fetch_add_explicit(&pt->cnt->leaves[level], n, memory_order_relaxed);
					goto next;
				}
				if (old & PTE_LEAF) {
					err = -EEXIST;
					goto rollback;
				}
				level--;
			}
		}
		{
			int n = fill_level0(pt, slot, cur, pas ? pas + (done >> 12) : NULL, cpa,
					    (len - done) >> 12, prot);

			if (n < 0) {
				err = n;
				goto rollback;
			}
			done += (uint64_t)n << 12;
		}
next:;
	}
	return 0;

rollback:
	if (done)
		(void)unmap_level(pt, pt->root, PT_LEVELS - 1, 0, start, start + done, NULL, NULL, r, pt->src != NULL);
	return err;
}

int pt_map(struct io_pgtable *pt, iova_t iova, pa_t pa, uint64_t len, unsigned prot, bool huge,
	   struct pt_retired *retired)
{
	return map_range(pt, iova, pa, NULL, len, prot, huge, retired);
}

int pt_map_pages(struct io_pgtable *pt, iova_t iova, const pa_t *pa, unsigned n, unsigned prot,
		 struct pt_retired *retired)
{
	if (!pa || !n)
		return -EINVAL;
	for (unsigned i = 0; i < n; i++)
		if (!is_aligned(pa_val(pa[i]), SZ_4K))
			return -EINVAL;
	return map_range(pt, iova, pa_make(0), pa, (uint64_t)n << 12, prot, false, retired);
}

/* Report every leaf of a detached subtree, and retire its tables. */
static uint64_t drop_subtree(struct io_pgtable *pt, _Atomic iopte_t *t, int level, uint64_t base,
			     pt_unmap_fn fn, void *arg, struct pt_retired *r)
{
	uint64_t gone = 0, leaves = 0;

	for (unsigned i = 0; i < PT_ENTRIES; i++) {
		iopte_t pte = atomic_load_explicit(&t[i], memory_order_relaxed);
		uint64_t va = base + (uint64_t)i * PT_SPAN(level);

		if (!(pte & PTE_PRESENT))
			continue;
		if (pte_is_leaf(pte, level)) {
			if (fn)
				fn(arg, iova_make(va), pa_make(pte & PTE_ADDR_MASK), PT_SPAN(level), pte);
			leaves++;
			gone += PT_SPAN(level);
		} else {
			gone += drop_subtree(pt, pt_table(pt, pte), level - 1, va, fn, arg, r);
		}
	}
	if (leaves)
		pt_leaves_sub(pt, level, leaves);
	table_retire(pt, t, r);
	return gone;
}

/*
 * Replace the huge leaf in @slot (an entry of @level spanning @base) by a
 * table of 512 smaller leaves that map the same memory, keeping its
 * permissions and accessed/dirty bits. Returns the table now in the slot,
 * or NULL if the slot was emptied meanwhile (or with -ENOMEM in *err).
 */
static _Atomic iopte_t *split_leaf(struct io_pgtable *pt, _Atomic iopte_t *slot, uint64_t base, int level, int *err)
{
	for (;;) {
		iopte_t pte = atomic_load_explicit(slot, memory_order_acquire);
		uint64_t cookie = 0;
		_Atomic iopte_t *t;

		if (!(pte & PTE_PRESENT))
			return NULL;
		if (!(pte & PTE_LEAF))
			return pt_table(pt, pte);
		t = table_alloc(pt, base, level - 1, &cookie);
		if (!t) {
			*err = -ENOMEM;
			return NULL;
		}
		for (unsigned i = 0; i < PT_ENTRIES; i++)
			atomic_store_explicit(&t[i],
					      mk_leaf(pa_make((pte & PTE_ADDR_MASK) + (uint64_t)i * PT_SPAN(level - 1)),
						      pte_prot(pte), level - 1) |
						      (pte & (PTE_ACCESSED | PTE_DIRTY)),
					      memory_order_relaxed);
		/* Fails if the device set an accessed or dirty bit meanwhile: copy again. */
		if (atomic_compare_exchange_strong_explicit(slot, &pte, mk_table(pt, t), memory_order_release,
							    memory_order_relaxed)) {
			table_hung(pt, t, cookie);
			atomic_fetch_add_explicit(&pt->cnt->leaves[level - 1], PT_ENTRIES, memory_order_relaxed);
			pt_leaves_sub(pt, level, 1);
			atomic_fetch_add_explicit(&pt->cnt->splits, 1, memory_order_relaxed);
			return t;
		}
		table_free(pt, t);
	}
}

/*
 * Clear the 4 KiB leaves of table @t (based at @base) in [start, end): the
 * common case of every unmap, kept to a load and a store per page. A plain
 * store, not an exchange: no other writer may touch the range (maps and
 * unmaps of one range are serialized by the caller), and a device marks
 * accessed and dirty bits only while the leaf it walked is still there
 * (pt_mark()), so bits it sets between the load and the store are lost
 * with the mapping. A locked instruction per page would cost more than all
 * the rest of an unmap.
 */
static uint64_t unmap_leaves(struct io_pgtable *pt, _Atomic iopte_t *t, uint64_t base, uint64_t start,
			     uint64_t end, pt_unmap_fn fn, void *arg)
{
	unsigned first = (unsigned)((MAX(start, base) - base) >> 12);
	unsigned last = (unsigned)MIN((uint64_t)PT_ENTRIES, (end - base) >> 12);
	uint64_t leaves = 0;

	/*
	 * The device walked the first leaf, likely: take its line once, for
	 * the load and the store. Owned before the store, the line lets the
	 * locked count below go without waiting for it.
	 */
	if (first < last)
		prefetch_for_write(&t[first]);
	for (unsigned i = first; i < last; i++) {
		iopte_t pte = atomic_load_explicit(&t[i], memory_order_acquire);

		if (!(pte & PTE_PRESENT))
			continue;
		atomic_store_explicit(&t[i], 0, memory_order_release);
		if (fn)
			fn(arg, iova_make(base + ((uint64_t)i << 12)), pa_make(pte & PTE_ADDR_MASK), SZ_4K, pte);
		leaves++;
	}
	if (leaves)
		pt_leaves_sub(pt, 0, leaves);
	return leaves << 12;
}

/*
 * Unmap [start, end) below table @t (spanning @base, entries of @level).
 * @keep: detach no table, empty them instead (a map's rollback in a shared
 * table, which records nothing: a table it detached and did not free
 * before its process died would be lost).
 */
static uint64_t unmap_level(struct io_pgtable *pt, _Atomic iopte_t *t, int level, uint64_t base,
			    uint64_t start, uint64_t end, pt_unmap_fn fn, void *arg, struct pt_retired *r, bool keep)
{
	uint64_t gone = 0, leaves = 0, span = PT_SPAN(level);

	if (level == 0)
		return unmap_leaves(pt, t, base, start, end, fn, arg);
	for (uint64_t idx = (MAX(start, base) - base) / span; idx < PT_ENTRIES; idx++) {
		uint64_t e_start = base + idx * span, e_end = e_start + span;
		uint64_t s = MAX(start, e_start), e = MIN(end, e_end);
		_Atomic iopte_t *slot = &t[idx];
		iopte_t pte;

		if (e_start >= end)
			break;
		pte = atomic_load_explicit(slot, memory_order_acquire);
		if (!(pte & PTE_PRESENT))
			continue;
		if (s == e_start && e == e_end && !(keep && !pte_is_leaf(pte, level))) {
			/* The whole entry goes: a leaf, or a table and everything below
			 * it. A plain store, as in unmap_leaves(). */
			if (!pte_is_leaf(pte, level))
				pt_unhang_subtree(pt, pt_table(pt, pte), e_start, level - 1);
			atomic_store_explicit(slot, 0, memory_order_release);
			if (pte_is_leaf(pte, level)) {
				if (fn)
					fn(arg, iova_make(e_start), pa_make(pte & PTE_ADDR_MASK), span, pte);
				leaves++;
				gone += span;
			} else {
				gone += drop_subtree(pt, pt_table(pt, pte), level - 1, e_start, fn, arg, r);
			}
			continue;
		}
		/* Part of the entry: into its table, splitting a huge leaf first. */
		if (pte_is_leaf(pte, level)) {
			int err = 0;
			_Atomic iopte_t *child = split_leaf(pt, slot, e_start, level, &err);

			if (!child)
				continue; /* emptied meanwhile, or no memory to split */
			gone += unmap_level(pt, child, level - 1, e_start, s, e, fn, arg, r, keep);
		} else {
			gone += unmap_level(pt, pt_table(pt, pte), level - 1, e_start, s, e, fn, arg, r, keep);
		}
	}
	if (leaves)
		pt_leaves_sub(pt, level, leaves);
	return gone;
}

/* Split the huge leaves that @addr falls strictly inside, down to 4 KiB; -ENOMEM. */
static int split_at(struct io_pgtable *pt, uint64_t addr)
{
	_Atomic iopte_t *t = pt->root;

	for (int level = PT_LEVELS - 1; level > 0 && t; level--) {
		_Atomic iopte_t *slot = &t[PT_INDEX(addr, level)];
		iopte_t pte = atomic_load_explicit(slot, memory_order_acquire);
		int err = 0;

		if (!(pte & PTE_PRESENT))
			return 0;
		if (!pte_is_leaf(pte, level)) {
			t = pt_table(pt, pte);
			continue;
		}
		if (is_aligned(addr, PT_SPAN(level)))
			return 0;
		t = split_leaf(pt, slot, align_down(addr, PT_SPAN(level)), level, &err);
		if (err)
			return err;
	}
	return 0;
}

int pt_unmap_prepare(struct io_pgtable *pt, iova_t start, uint64_t len)
{
	uint64_t iova = iova_val(start);
	int ret;

	/*
	 * Without a huge leaf (the common case) there is nothing to split; a
	 * shared table's count may be short of a leaf a killed process put in
	 * (count_sub()), so it is split by what the entries say.
	 */
	if (!pt->src && !atomic_load_explicit(&pt->cnt->leaves[1], memory_order_relaxed) &&
	    !atomic_load_explicit(&pt->cnt->leaves[2], memory_order_relaxed))
		return 0;
	if (!len || iova + len < iova || iova + len > (UINT64_C(1) << PT_IOVA_BITS))
		return 0;
	ret = split_at(pt, iova);
	return ret ? ret : split_at(pt, iova + len);
}

uint64_t pt_unmap(struct io_pgtable *pt, iova_t iova, uint64_t len, pt_unmap_fn fn, void *arg,
		  struct pt_retired *retired)
{
	uint64_t end = pt_clip_end(iova, len);

	if (!end || !is_aligned(iova_val(iova) | len, SZ_4K))
		return 0;
	return unmap_level(pt, pt->root, PT_LEVELS - 1, 0, iova_val(iova), end, fn, arg, retired, false);
}
