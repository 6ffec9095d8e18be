/* SPDX-License-Identifier: MIT */
/*
 * iova.h - the IOVA allocator of a managed domain.
 *
 * A gap tree (base/range_alloc.h) of free IOVA pages, below the domain's DMA
 * limit and outside its reserved holes, allocates any size and alignment in
 * O(log n), top-down from the limit as Linux does. In front of it, for sizes
 * of 1 to 32 pages, per-thread magazines after Linux iova.c's range caches
 * (Peleg et al., USENIX ATC'15): each thread holds a loaded and a previous
 * magazine per size; full and empty magazines move to and from a depot.
 * An allocation or free that its magazines serve takes no shared lock and
 * executes no locked instruction.
 *
 * A free IOVA may sit in any thread's magazine, where the gap tree does not
 * see it. iova_reserve() (a map at a chosen IOVA) takes such IOVAs back:
 * it steals every cached IOVA that overlaps the range from the magazines
 * and depots into the tree, then reserves. A thread uses its magazines
 * between a relaxed store of its busy flag and a load of the allocator's
 * stealing flag (an asymmetric Dekker: the stealer stores its flag, then
 * makes every thread pass a barrier with membarrier(2)): either the thread
 * sees the steal and takes its cache's lock, which the stealer holds while
 * it looks, or the stealer sees the thread busy and waits for it to finish.
 * Where the kernel has no expedited membarrier, threads fence instead.
 *
 * Quarantine is the caller's: under deferred invalidation an IOVA is handed
 * back only after its flush.
 *
 * Accounting, under the lock: every page of the window outside the
 * reserved holes is either free in the tree or counted in @allocated
 * (handed out, or in a magazine or depot); IOVM_WARN_ON() checks it.
 */
#ifndef IOVM_IOMMU_IOVA_H
#define IOVM_IOMMU_IOVA_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/addr.h"
#include "base/lock.h"
#include "base/range_alloc.h"
#include "base/tlscache.h"

/* Sizes of 2^0 to 2^5 pages are cached: Linux's IOVA_RANGE_CACHE_MAX_SIZE. */
#define IOVA_CACHE_ORDERS 6
/* 127 pfns and a count make a 1 KiB magazine, as in Linux. */
#define IOVA_MAG_SIZE 127
/* Full magazines the depot keeps per size before giving IOVAs back to the tree. */
#define IOVA_DEPOT_MAX 32

/* Inside the allocator, IOVAs are page frame numbers: its interface takes bytes. */
struct iova_mag {
	uint64_t size;
	uint64_t pfns[IOVA_MAG_SIZE];
};

/* A range of IOVA: [start, start + len), bytes. */
struct iova_range {
	iova_t start;
	uint64_t len;
};

struct iova_alloc {
	struct mutex lock;             /* the tree, the depots, @allocated's invariant */
	struct range_alloc tree;       /* under lock: free IOVA pages (page frame numbers) */
	uint64_t base_pfn, limit_pfn;  /* [base, limit): the allocatable window, in pages */
	uint64_t capacity;             /* pages of the window outside the reserved holes */
	struct iova_range *holes;      /* the reserved holes within the window, page aligned, sorted */
	unsigned nr_holes;
	struct iova_mag *depot[IOVA_CACHE_ORDERS][IOVA_DEPOT_MAX]; /* under lock: full magazines */
	unsigned depot_nr[IOVA_CACHE_ORDERS];                      /* under lock */
	/* Pages out of the tree: handed out, or cached. Written under lock; read racily by iova_stats(). */
	_Atomic uint64_t allocated;
	_Atomic uint64_t cache_hits;   /* of the threads that have exited */
	struct mutex steal_lock;       /* one stealer at a time; before the tlscache registry's lock */
	/* Read by every thread at each use of its magazines: beside the owner id they read too. */
	struct tls_owner owner;        /* the per-thread magazines */
	_Atomic bool stealing;         /* a stealer is at work (under steal_lock): magazines by their lock */
	bool fence_users;              /* no expedited membarrier: magazine users fence for themselves */
};

/*
 * iova_init() - an allocator of the window [base, base + len) (page
 * aligned), less the @reserved holes (rounded out to pages; one that ends
 * at 2^64 may have a length that makes its end wrap to 0).
 */
int iova_init(struct iova_alloc *a, iova_t base, uint64_t len, const struct iova_range *reserved,
	      unsigned nr_reserved);
void iova_destroy(struct iova_alloc *a);

/* The allocatable window, [iova_window_start(), + iova_window_len()). */
static inline iova_t iova_window_start(const struct iova_alloc *a)
{
	return iova_make(a->base_pfn << 12);
}

static inline uint64_t iova_window_len(const struct iova_alloc *a)
{
	return (a->limit_pfn - a->base_pfn) << 12;
}

/* iova_in_hole() - whether [start, start + len) meets a reserved hole. */
bool iova_in_hole(const struct iova_alloc *a, iova_t start, uint64_t len);

/*
 * iova_alloc() - @len bytes (whole pages) aligned to @align bytes (a power
 * of two; 0, or up to a page: a page). -EINVAL for a length or alignment
 * not so, -ENOSPC when the window has no room, -ENOMEM.
 */
int iova_alloc(struct iova_alloc *a, uint64_t len, uint64_t align, iova_t *out);

/* iova_free() - give back [start, start + len) as iova_alloc() gave it, with the same @len. */
int iova_free(struct iova_alloc *a, iova_t start, uint64_t len);

/*
 * iova_reserve() - take exactly [start, start + len) (whole pages): -EBUSY
 * unless all of it is free (in the tree, or cached in any thread's
 * magazine or a depot, from where it is stolen back). -EINVAL outside the
 * window.
 */
int iova_reserve(struct iova_alloc *a, iova_t start, uint64_t len);

struct iova_stats {
	uint64_t allocated;  /* pages handed out */
	uint64_t free;       /* pages free in the tree */
	uint64_t cached;     /* pages held in magazines and depots */
	uint64_t largest;    /* the largest free gap, pages */
	uint64_t gaps;       /* free ranges */
	uint64_t cache_hits; /* allocations a magazine served */
};

void iova_stats(struct iova_alloc *a, struct iova_stats *st);

#endif /* IOVM_IOMMU_IOVA_H */
