/* SPDX-License-Identifier: MIT */
/*
 * access_hot.h - the IOTLB hit that a device's own thread checks inline,
 * with no call, for a range that one entry holds whole: the engine's
 * common case (a copy within a page, or a 2 MiB one). Anything else, and
 * a hit that would change state (a first write that sets the dirty bit,
 * the oracle's checks), is iommu_access_run()'s (access.c). The same
 * tags are compared, so an invalidation that clears them is seen here as
 * it is there.
 */
#ifndef IOVM_IOMMU_ACCESS_HOT_H
#define IOVM_IOMMU_ACCESS_HOT_H

#include <stdatomic.h>
#include <stdint.h>

#include "base/compiler.h"
#include "base/counter.h"
#include "base/epoch.h"
#include "iommu/iotlb.h"
#include "phys/phys.h"

/*
 * access.c: the oracle's check of a hit of iommu_access_hot(), as
 * iommu_access() checks each of its hits: [@iova, @iova+@len) against
 * the shadow of @pasid's domain, reaching @pa.
 */
void iommu_hot_oracle(struct iommu_iotlb *t, uint32_t pasid, uint64_t iova, unsigned access, uint64_t len, pa_t pa);

/*
 * iommu_access_hot() - for the owner of @t, inside its device-side
 * section: the CPU's pointer to all of [@iova, @iova+@len) of @pasid's
 * domain for @access (IOVM_MAP_READ or IOVM_MAP_WRITE), and its PA in
 * *@pa, when the entry its last access of the kind hit holds the whole
 * range, in iovm's own memory (PHYS_REACH_OWN), with the permission, and
 * its leaf already dirty for a write. NULL otherwise, with nothing
 * counted, marked or filled: iommu_access_run() then does it (and finds
 * any fault at its exact IOVA). Where the oracle is on, a hit is checked
 * as iommu_access() checks one. Not counted: the caller adds its hits
 * with iommu_count_hits(), once for many. @pasid is at most
 * IOVM_PASID_MAX; @len > 0.
 */
static __inline_always uint8_t *iommu_access_hot(struct iommu_iotlb *t, uint32_t pasid, uint64_t iova, unsigned access,
					uint64_t len, pa_t *pa)
{
	unsigned slot = iotlb_last_slot(access);
	struct iotlb_entry *e = t->last[slot];
	unsigned shift = t->last_shift[slot];
	uint64_t last = iova + len - 1, off;

	/*
	 * One page of the entry's size, not wrapping past 2^64, below the
	 * page table's reach (where no tag can name it); the entry is at
	 * most 2 MiB and aligned, so one bus granule holds it.
	 */
	if (unlikely(!e) || ((iova ^ last) >> shift) || last < iova || (last >> PT_IOVA_BITS))
		return NULL;
	if (atomic_load_explicit(&e->tag, memory_order_acquire) != iotlb_tag(iova_make(iova), shift, pasid))
		return NULL;
	if (e->bus_gen != atomic_load_explicit(t->bus_gen, memory_order_acquire) || (access & e->prot) != access ||
	    e->reach != PHYS_REACH_OWN || ((access & PT_PROT_WRITE) && !e->dirty))
		return NULL;
	off = iova & ((UINT64_C(1) << shift) - 1);
	*pa = pa_add(e->pa, off);
	if (unlikely(t->oracle))
		iommu_hot_oracle(t, pasid, iova, access, len, *pa);
	return e->ptr + off;
}

/*
 * What iommu_access_hot() last found for one kind of access, kept by its
 * caller over a run of accesses: the next access in the same page takes
 * its pointer from here, with no load to wait for, while the checks that
 * the entry still holds it (its tag, no fill since, the bus generation)
 * run beside the copy the pointer starts. Zeroed: empty.
 */
struct iommu_hot {
	struct iotlb_entry *e;
	uint64_t tag;     /* e's tag then */
	uint64_t fills;   /* the IOTLB's fills then */
	uint64_t page;    /* the IOVA of the page e holds */
	uint64_t mask;    /* its size, less one */
	uint8_t *ptr;     /* the CPU's pointer to the page */
	pa_t pa;          /* the page's PA, for the oracle */
	uint32_t bus_gen; /* e's bus generation */
	uint32_t pasid;
};

/*
 * iommu_hot_access() - iommu_access_hot(), through @h: the page @h holds
 * when the range is in it and its entry still holds it, else
 * iommu_access_hot(), whose hit @h then holds. Use one @h per kind of
 * access (@access), and only inside one device-side section: a section
 * left may have seen the entry invalidated and filled again.
 */
static __inline_always uint8_t *iommu_hot_access(struct iommu_iotlb *t, struct iommu_hot *h, uint32_t pasid, uint64_t iova,
					unsigned access, uint64_t len, pa_t *pa)
{
	uint64_t last = iova + len - 1;
	unsigned slot;
	uint8_t *p;

	if (likely(h->e) && (iova & ~h->mask) == h->page && (last & ~h->mask) == h->page && pasid == h->pasid &&
	    h->fills == t->fills && atomic_load_explicit(&h->e->tag, memory_order_acquire) == h->tag &&
	    h->bus_gen == atomic_load_explicit(t->bus_gen, memory_order_acquire)) {
		*pa = pa_add(h->pa, iova & h->mask);
		if (unlikely(t->oracle))
			iommu_hot_oracle(t, pasid, iova, access, len, *pa);
		return h->ptr + (iova & h->mask);
	}
	p = iommu_access_hot(t, pasid, iova, access, len, pa);
	if (!p)
		return NULL;
	/* iommu_access_hot() hit the kind's last entry: held here, as it was. */
	slot = iotlb_last_slot(access);
	h->e = t->last[slot];
	h->mask = (UINT64_C(1) << t->last_shift[slot]) - 1;
	/* The tag that matched, not one loaded again: an invalidation since would have it 0. */
	h->tag = iotlb_tag(iova_make(iova), t->last_shift[slot], pasid);
	h->fills = t->fills;
	h->page = iova & ~h->mask;
	h->ptr = h->e->ptr;
	h->pa = h->e->pa;
	h->bus_gen = h->e->bus_gen;
	h->pasid = pasid;
	return p;
}

/* iommu_count_hits() - count @n hits of iommu_access_hot() in @t's counters. */
static inline void iommu_count_hits(struct iommu_iotlb *t, uint64_t n)
{
	counter_add(&t->hits, n);
}

/*
 * iommu_waited_on() - iommu_quiesce()'s question, inline: whether a
 * writer waits for the owner's section. Only then need it call
 * iommu_quiesce().
 */
static inline bool iommu_waited_on(const struct iommu_iotlb *t)
{
	return epoch_waited_on(t->epoch, &t->reader);
}

#endif /* IOVM_IOMMU_ACCESS_HOT_H */
