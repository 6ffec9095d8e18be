/* SPDX-License-Identifier: MIT */
/*
 * pgtable.h - IO page tables: four levels of 512 entries over a 48-bit IOVA,
 * leaves of 4 KiB, 2 MiB and 1 GiB, read and write permissions, accessed and
 * dirty bits that the device side sets.
 *
 *   level 3: IOVA[47:39]  512 GiB per entry (tables only)
 *   level 2: IOVA[38:30]  1 GiB   (a leaf, or a table)
 *   level 1: IOVA[29:21]  2 MiB   (a leaf, or a table)
 *   level 0: IOVA[20:12]  4 KiB   (leaves)
 *
 * An entry holds a leaf's PA, or the address of the next table: its host
 * address in a private table (this is a software IOMMU, and its walker is
 * the CPU); in a table shared between processes, an address every process
 * agrees on (struct pt_source). The interface takes typed
 * addresses (an iova_t in, a pa_t out) and ranges as (start, len); the
 * walks inside do their arithmetic on integers.
 *
 * Concurrency: the device side walks without a lock. Writers may map and
 * unmap disjoint ranges concurrently: tables are installed, and huge leaves
 * split, with compare-and-swap. Tables that a writer detaches are retired,
 * not freed: onto the writer's own list (struct pt_retired), which it
 * frees once no walker can hold them (after it has invalidated what
 * devices cached through them, and a grace period).
 */
#ifndef IOVM_IOMMU_PGTABLE_H
#define IOVM_IOMMU_PGTABLE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/addr.h"
#include "base/compiler.h"
#include "base/lock.h"
#include "base/sanitizer.h"

typedef uint64_t iopte_t;

#define PTE_PRESENT (UINT64_C(1) << 0)
#define PTE_READ (UINT64_C(1) << 1)
#define PTE_WRITE (UINT64_C(1) << 2)
#define PTE_ACCESSED (UINT64_C(1) << 5)
#define PTE_DIRTY (UINT64_C(1) << 6)
#define PTE_LEAF (UINT64_C(1) << 7) /* a 2 MiB or 1 GiB leaf at level 1 or 2 */
#define PTE_ADDR_MASK UINT64_C(0x000ffffffffff000)

#define PT_LEVELS 4
#define PT_ENTRIES 512
#define PT_IOVA_BITS 48
#define PT_SHIFT(level) (12 + 9 * (level))
#define PT_SPAN(level) (UINT64_C(1) << PT_SHIFT(level))
#define PT_INDEX(iova, level) (((iova) >> PT_SHIFT(level)) & (PT_ENTRIES - 1))

static_assert(PT_SHIFT(PT_LEVELS - 1) + 9 == PT_IOVA_BITS, "four levels reach 48 bits");
static_assert(sizeof(iopte_t) * PT_ENTRIES == 4096, "a table is one 4 KiB page");

/* Permissions: what iovm_domain_map() takes, and what a leaf grants. */
#define PT_PROT_READ 1u
#define PT_PROT_WRITE 2u

/*
 * Tables one writer detached, linked through their entry 0. Each writer
 * frees only its own, and only when no walker can still reach them: the
 * device caches it invalidated, a grace period that began after the
 * detach has passed. A list handed to the table's own list
 * (pt_retired_give()) waits there for whoever flushes everything
 * (pt_retired_take()), or for pt_reclaim()/pt_destroy().
 */
struct pt_retired {
	void *head;
};

/*
 * Where a table's 4 KiB pages come from, and how an entry names one. A
 * private table's pages are the process's own (aligned_alloc()), and an
 * entry holds a table's host address. A table shared between processes
 * (the shared domains of iovm/mp.h) lives in memory that each process maps
 * at an address of its own: its entries hold what is the same in all of
 * them, a table's host address less this process's @delta (its PA, for
 * tables in the shared heap), and a walk adds @delta back, one add per
 * level.
 */
struct pt_source {
	/*
	 * A 4 KiB-aligned page, or NULL, for a table of entries of @level
	 * that is to hang where it spans @base from (@level PT_LEVELS - 1:
	 * the root, which hangs nowhere). A source shared between processes
	 * records where, so that a survivor of a process killed before the
	 * table hung, or before it said so, can tell (pt_hangs()); hung()
	 * gets *@cookie once it does.
	 */
	void *(*alloc)(void *arg, iova_t base, int level, uint64_t *cookie);
	void (*free)(void *arg, void *table);
	/* Optional: @table, from alloc() with @cookie, hangs where alloc() was told. */
	void (*hung)(void *arg, void *table, uint64_t cookie);
	/*
	 * Optional: @table, which spans @base with entries of @level, is about
	 * to leave the tree (an unmap detaches it, a huge leaf replaces it):
	 * told before, for it and every table under it, so that whoever holds
	 * a record of one that never said it hung learns that it is someone
	 * else's to free, and so that a shared source can record it (and free
	 * it after a survivor's invalidation) if its detacher dies. A map's
	 * rollback in such a table detaches none (it empties them).
	 */
	void (*unhang)(void *arg, void *table, iova_t base, int level);
	void *arg;
	uintptr_t delta;
	/*
	 * Where every page it hands out lies, mapped for as long as the view
	 * is, freed or not (NULL, NULL: not said): a census that races with
	 * frees reads only there (pt_census_racy()).
	 */
	const void *pages_lo, *pages_hi;
};

/* What a table holds, updated atomically by concurrent writers (of every process, for a shared one). */
struct pt_counters {
	_Atomic uint64_t nr_tables;
	_Atomic uint64_t leaves[3]; /* 4 KiB, 2 MiB, 1 GiB leaves mapped */
	_Atomic uint64_t splits;    /* huge leaves split by partial unmaps */
	_Atomic uint64_t frees;     /* tables a shared source took back: the generation pt_census_racy() reads */
};

/*
 * Devices read @root and @delta at every walk; every map and unmap writes
 * the counters. Apart, so that a device's walk does not take a line from
 * the CPU mapping, nor the CPU's count one from the device.
 */
struct io_pgtable {
	_Atomic iopte_t *root;
	uintptr_t delta;            /* @src's, or 0 */
	const struct pt_source *src; /* NULL: the process's own pages */
	struct pt_counters *cnt;    /* &own, or a shared table's, in shared memory */
	struct pt_counters own __cacheline_aligned;
	struct mutex retired_lock;
	struct pt_retired retired;  /* under retired_lock: the table's own list (pt_retired_give()) */
};

/* An entry's parts: the table it points to, in this process. */
static inline _Atomic iopte_t *pt_table(const struct io_pgtable *pt, iopte_t pte)
{
	/* A shared table's page may have been installed by another process (base/sanitizer.h). */
	if (pt->src)
		tsan_acquire(pt->src);
	return (_Atomic iopte_t *)((uintptr_t)(pte & PTE_ADDR_MASK) + pt->delta);
}

static inline bool pte_is_leaf(iopte_t pte, int level)
{
	return level == 0 || (pte & PTE_LEAF);
}

static inline unsigned pte_prot(iopte_t pte)
{
	return (pte & PTE_READ ? PT_PROT_READ : 0) | (pte & PTE_WRITE ? PT_PROT_WRITE : 0);
}

/*
 * The end of [iova, iova+len) clipped to the table's reach, as an integer
 * for the walk's arithmetic, or 0 when nothing of it is in reach or it
 * runs past 2^64 (one ending at 2^64 is in bounds).
 */
static inline uint64_t pt_clip_end(iova_t iova, uint64_t len)
{
	uint64_t start = iova_val(iova);

	if (!len || len - 1 > UINT64_MAX - start || start >> PT_IOVA_BITS)
		return 0;
	return MIN(start + (len - 1), (UINT64_C(1) << PT_IOVA_BITS) - 1) + 1;
}

/*
 * What a walk found. A table maps IOVAs to PAs; a nested domain's stage 1
 * maps them to guest physical addresses, which it reads out of @pa with
 * stage1_gpa() (iommu_internal.h).
 */
struct pt_walk {
	pa_t pa;                  /* of the IOVA walked, not of the page */
	unsigned prot;            /* PT_PROT_* */
	unsigned shift;           /* 12, 21 or 30: the leaf's size */
	_Atomic iopte_t *ptep;    /* the leaf, for accessed and dirty bits */
	iopte_t pte;              /* its value at the walk */
};

int pt_init(struct io_pgtable *pt);
/*
 * pt_init_shared() - a process's view of a table whose pages come from
 * @src, with its counters at @cnt: a fresh one (*@root_off 0: its root is
 * made, and its offset from @delta, which every process agrees on, is
 * returned there), or one another process made (the root at *@root_off).
 */
int pt_init_shared(struct io_pgtable *pt, const struct pt_source *src, struct pt_counters *cnt, uint64_t *root_off);
/* Frees every table: no walker or writer may remain, in any process. */
void pt_destroy(struct io_pgtable *pt);
/* pt_view_close() - forget a shared table's view, freeing nothing but what is on its own retired list. */
void pt_view_close(struct io_pgtable *pt);

/*
 * pt_map() - map [iova, iova+len) to [pa, pa+len), with the largest leaves
 * alignment and length allow (@huge: 2 MiB and 1 GiB leaves permitted).
 * -EEXIST, having mapped nothing, if any part is mapped already. Tables it
 * detaches (empty ones a huge leaf replaces, its own on a rollback) go to
 * @retired; NULL: to the table's own list.
 */
int pt_map(struct io_pgtable *pt, iova_t iova, pa_t pa, uint64_t len, unsigned prot, bool huge,
	   struct pt_retired *retired);

/*
 * pt_map_pages() - map @n 4 KiB pages at consecutive IOVAs from @iova, to the
 * PAs in @pa: one walk per 512 pages, then a store per page.
 */
int pt_map_pages(struct io_pgtable *pt, iova_t iova, const pa_t *pa, unsigned n, unsigned prot,
		 struct pt_retired *retired);

/* Called for each piece pt_unmap() takes away (pt_unmap_preview(): would take away). */
typedef void (*pt_unmap_fn)(void *arg, iova_t iova, pa_t pa, uint64_t len, iopte_t pte);

/*
 * pt_unmap() - unmap whatever is mapped in [iova, iova+len); a huge leaf only
 * partly inside is split first. Returns the bytes unmapped. Walkers may run
 * meanwhile; maps and unmaps of ranges that overlap this one may not.
 * Tables it detaches go to @retired (NULL: the table's own list).
 */
uint64_t pt_unmap(struct io_pgtable *pt, iova_t iova, uint64_t len, pt_unmap_fn fn, void *arg,
		  struct pt_retired *retired);

/* Called for each table an unmap would detach: the table, the IOVA its span starts at, the level of its entries. */
typedef void (*pt_detach_fn)(void *arg, void *table, iova_t base, int level);

/*
 * pt_unmap_preview() - what pt_unmap() of [iova, iova+len) would take away,
 * told before anything is taken: @fn for each leaf, @tfn for each table it
 * would detach, and nothing stored. A shared table's writer records them
 * first (mp's journal), so that a process killed in the middle of the
 * unmap leaves nothing it cleared unrecorded. False where the preview
 * cannot tell: a huge leaf the range cuts (pt_unmap_prepare() splits it).
 * No map or unmap of an overlapping range may run meanwhile.
 */
bool pt_unmap_preview(const struct io_pgtable *pt, iova_t iova, uint64_t len, pt_unmap_fn fn, pt_detach_fn tfn,
		      void *arg);

/*
 * pt_clear_recorded() - of [iova, iova+len), recorded as mapping [pa,
 * +len) by an unmap whose process died, clear the leaves that are still
 * there and name those PAs: the unmap recorded them and may have died
 * before it cleared them. Leaves naming anything else stay. Idempotent.
 */
void pt_clear_recorded(struct io_pgtable *pt, iova_t iova, pa_t pa, uint64_t len);

/*
 * pt_detach_recorded() - the table @table, recorded as spanning from
 * @base with entries of @level by an unmap whose process died: take it out
 * of reach if it still hangs where it was (nothing is freed, counted or
 * retired, nor told by pt_source.unhang(): the record's owner frees it).
 * Idempotent.
 */
void pt_detach_recorded(struct io_pgtable *pt, void *table, iova_t base, int level);

/*
 * pt_hangs() - whether @table hangs from the entry that spans @base for
 * tables of entries of @level, as pt_source.alloc() was told. The caller
 * keeps the tables from being freed under the walk.
 */
bool pt_hangs(const struct io_pgtable *pt, const void *table, iova_t base, int level);

/*
 * pt_unhang_subtree() - pt_source.unhang() of table @t (spanning @base,
 * entries of @level) and of every table under it, those first.
 */
void pt_unhang_subtree(const struct io_pgtable *pt, _Atomic iopte_t *t, uint64_t base, int level);

/*
 * pt_unmap_prepare() - split the huge leaves that the edges of [iova,
 * iova+len) cut, so that pt_unmap() of it needs no memory: 0, or -ENOMEM
 * with the translations unchanged (a split leaf maps what it mapped).
 */
int pt_unmap_prepare(struct io_pgtable *pt, iova_t iova, uint64_t len);

/* Called for each run of leaves pt_for_each() finds, contiguous in IOVA and PA, of one protection. */
typedef int (*pt_leaf_fn)(void *arg, iova_t iova, pa_t pa, uint64_t len, unsigned prot);

/*
 * pt_for_each() - every mapping, in IOVA order, merged into runs; stops at
 * the first non-zero return of @fn, and returns it. No map or unmap may run.
 */
int pt_for_each(const struct io_pgtable *pt, pt_leaf_fn fn, void *arg);

/* pt_walk() - the device side's translation, lock-free: 0, or -ENOENT when nothing is mapped. */
int pt_walk(const struct io_pgtable *pt, iova_t iova, struct pt_walk *w);

/*
 * pt_mark() - set the accessed bit, and the dirty bit for a write, as a
 * device's access does, in the leaf @ptep held as @pte when it was walked;
 * only while it still holds that leaf. An unmap clears entries with plain
 * stores while devices may still be inside their sections: a device must
 * not write bits into an entry cleared (or replaced) under it.
 */
static inline void pt_mark(_Atomic iopte_t *ptep, iopte_t pte, bool write)
{
	const iopte_t ad = PTE_ACCESSED | PTE_DIRTY;
	iopte_t want = PTE_ACCESSED | (write ? PTE_DIRTY : 0), cur;

	if ((pte & want) == want)
		return;
	cur = atomic_load_explicit(ptep, memory_order_relaxed);
	while (!((cur ^ pte) & ~ad) && (cur & want) != want)
		if (atomic_compare_exchange_weak_explicit(ptep, &cur, cur | want, memory_order_relaxed,
							  memory_order_relaxed))
			break;
}

/*
 * pt_read_ad() - accessed and dirty bits of the leaves in [iova, iova+len),
 * ORed together; with @clear, cleared as read (dirty tracking for live
 * migration reads and clears the same way).
 */
void pt_read_ad(struct io_pgtable *pt, iova_t iova, uint64_t len, bool clear, bool *accessed, bool *dirty);
/* pt_count_leaves() - the leaves of any size in [iova, iova+len), counted up to @cap (then @cap). */
uint64_t pt_count_leaves(const struct io_pgtable *pt, iova_t iova, uint64_t len, uint64_t cap);

/* What a walk of the whole table finds: its leaves per level. */
struct pt_census {
	uint64_t leaves[PT_LEVELS]; /* 4 KiB, 2 MiB, 1 GiB; the top level has none */
};

/*
 * pt_census() - count the table's leaves by walking it, not from its
 * counters. A shared table's counters are one step behind its entries
 * for as long as a writer is between the two, and stay so when another
 * process is killed there; the entries are the truth. The caller keeps
 * the tables from being freed under the walk (a section of the domain's
 * epoch, which every process's unmap waits for).
 */
void pt_census(const struct io_pgtable *pt, struct pt_census *c);

/*
 * pt_census_racy() - pt_census() of a shared table without keeping its
 * tables from being freed: the walk follows only entries that point
 * inside the source's pages (pt_source.pages_lo, .pages_hi), which stay
 * mapped freed or not, and it is told true only if no table was freed
 * meanwhile (the source counts its frees in the counters' @frees before
 * a page can be taken again). False: the counts may be wrong; walk again,
 * or inside a section (pt_census()). A source that does not say where its
 * pages lie always gets false.
 */
bool pt_census_racy(const struct io_pgtable *pt, struct pt_census *c);

/* pt_leaves_sub() - take @n leaves of @level off the table's count (a shared table's stops at 0). */
void pt_leaves_sub(struct io_pgtable *pt, int level, uint64_t n);

/* Free the tables on @r: no walker or device cache may reach them any more. */
void pt_retired_free(struct io_pgtable *pt, struct pt_retired *r);
/* Call @fn on each table on @r. */
void pt_retired_each(const struct pt_retired *r, void (*fn)(void *arg, void *table), void *arg);
/* Add the tables on @r to the table's own list, which the next pt_retired_take() gets. */
void pt_retired_give(struct io_pgtable *pt, struct pt_retired *r);
/* Whether the table's own list holds tables: a flush with nothing queued frees them all the same. */
bool pt_retired_waiting(struct io_pgtable *pt);
/* Move the table's own list to @r (empty before). */
void pt_retired_take(struct io_pgtable *pt, struct pt_retired *r);
/* Free the table's own list now: for a table no device walks (tests, teardown). */
void pt_reclaim(struct io_pgtable *pt);

#endif /* IOVM_IOMMU_PGTABLE_H */
