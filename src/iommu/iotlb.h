/* SPDX-License-Identifier: MIT */
/*
 * iotlb.h - a device queue's IOTLB: its entries, their tags, and the lookup
 * and fill that iommu_access() (access.c) makes inline on every access.
 *
 * An IOTLB is four-way set associative: 256 entries for 4 KiB leaves, 64
 * for 2 MiB and 1 GiB ones (cached at 2 MiB granularity). Only its owner
 * (the engine thread of one queue) fills and reads it; any writer
 * invalidates entries by clearing their tags (iotlb.c). A fill can race
 * with an unmap that cleared the PTE just after the walk read it: the
 * owner stores the entry, then reads the PTE again, and drops the entry if
 * it changed. Either that second read sees the clear, or the unmap's
 * invalidation, which comes after the clear, sees the entry.
 */
#ifndef IOVM_IOMMU_IOTLB_H
#define IOVM_IOMMU_IOTLB_H

#include <assert.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/addr.h"
#include "base/compiler.h"
#include "base/epoch.h"
#include "base/list.h"
#include "iommu/pgtable.h"

struct iommu_client;
struct phys_space;

/*
 * One IOTLB entry. The tag says which translation it holds: the IOVA's page
 * number at the entry's granularity, the PASID, and a valid bit. Only the
 * IOTLB's owner fills entries and reads the fields after the tag; anyone
 * invalidates an entry by clearing its tag. The tag is a packed word
 * (compared, stored and cleared as one atomic), so an integer, not an
 * iova_t; iotlb_tag() makes it from one.
 */
struct iotlb_entry {
	_Atomic uint64_t tag;
	pa_t pa;                  /* of the page (at the entry's granularity) */
	uint8_t *ptr;             /* where the CPU reaches that page: no bus lookup on a hit */
	_Atomic iopte_t *ptep;    /* the leaf, for the dirty bit on a later write */
	iopte_t pte;              /* its value when walked: marked only while it holds */
	uint32_t bus_gen;         /* phys_bus_gen() when filled: ptr is good while it holds */
	uint8_t prot;             /* PT_PROT_* */
	uint8_t dirty;            /* the leaf's dirty bit was set through this entry */
	uint8_t reach;            /* enum phys_reach: how the CPU reaches the page */
};

static_assert(sizeof(struct iotlb_entry) == 48, "a set of four entries is three cache lines");

/*
 * 4 KiB entries for 4 KiB leaves; 2 MiB entries for 2 MiB and 1 GiB leaves.
 * Four-way set associative: a direct-mapped IOTLB thrashes when a copy's
 * source and destination are a power-of-two distance apart.
 */
#define IOTLB_SMALL 256
#define IOTLB_HUGE 64
#define IOTLB_WAYS 4
#define IOTLB_HUGE_SHIFT 21

struct iommu_iotlb {
	struct iommu_client *client;
	const _Atomic uint32_t *bus_gen; /* the context's phys_bus_gen() */
	struct phys_space *phys;
	bool oracle;                /* the space's: check accesses against the shadow */
	struct list_node link;      /* in iommu_client.iotlbs, under its lock */
	struct epoch_reader reader; /* the owner's device-side sections */
	struct epoch *epoch;        /* the space's, which reader is in: one load, not three */
	/* Written by the owner only (counter_add()), read by iommu_iotlb_counters() on any thread. */
	_Atomic uint64_t hits, misses;
	unsigned victim;            /* the owner's: round-robin replacement within a set */
	/*
	 * The owner's: the entry each kind of access (read, write) last hit
	 * or filled, looked at before any set, as a copy's source and
	 * destination each stay in their page descriptor after descriptor.
	 * A hint only: a hit is its tag, loaded as a set's is, equal to the
	 * access's, so an invalidation (which clears the tag) or a refill
	 * (which changes it) misses here as it would in the set.
	 */
	struct iotlb_entry *last[2];
	unsigned last_shift[2];
	/*
	 * The owner's: entries filled so far. An entry's fields change only
	 * in a fill (an invalidation clears its tag, nothing else), so an
	 * entry whose tag is what it was, with no fill since, holds what it
	 * held then (iommu_hot_access()).
	 */
	uint64_t fills;
	struct iotlb_entry small[IOTLB_SMALL];
	struct iotlb_entry huge[IOTLB_HUGE];
};

#define IOTLB_PASID_BITS 20
#define TAG_VALID UINT64_C(1)

/*
 * A tag keeps the page number of an IOVA below 2^PT_IOVA_BITS whole. IOVAs
 * at or above it never reach a tag (iommu_access() walks for them, and the
 * walk faults): no two IOVAs share a tag.
 */
static_assert(PT_IOVA_BITS - 12 + IOTLB_PASID_BITS + 1 <= 64,
	      "a tag holds a 4 KiB page number, a PASID and a valid bit");

static inline uint64_t iotlb_tag(iova_t iova, unsigned shift, uint32_t pasid)
{
	return ((iova_val(iova) >> shift) << (IOTLB_PASID_BITS + 1)) | ((uint64_t)pasid << 1) | TAG_VALID;
}

static inline uint32_t iotlb_tag_pasid(uint64_t tag)
{
	return (uint32_t)(tag >> 1) & ((1u << IOTLB_PASID_BITS) - 1);
}

static inline uint64_t iotlb_tag_page(uint64_t tag)
{
	return tag >> (IOTLB_PASID_BITS + 1);
}

/* The first entry of the set a page (at @shift granularity) of @pasid belongs to, of @entries. */
static inline unsigned iotlb_set_base(iova_t iova, unsigned shift, uint32_t pasid, unsigned entries)
{
	unsigned sets_bits = ilog2(entries / IOTLB_WAYS);
	uint64_t key = (iova_val(iova) >> shift) ^ ((uint64_t)pasid << 40);

	/* Multiplicative hashing spreads strided pages over the sets. */
	return (unsigned)((key * UINT64_C(0x9e3779b97f4a7c15)) >> (64 - sets_bits)) * IOTLB_WAYS;
}

/* The set @iova's translation at @shift (12 or IOTLB_HUGE_SHIFT) goes in. */
static inline struct iotlb_entry *iotlb_set(struct iommu_iotlb *t, iova_t iova, unsigned shift, uint32_t pasid)
{
	return shift == 12 ? &t->small[iotlb_set_base(iova, 12, pasid, IOTLB_SMALL)]
			   : &t->huge[iotlb_set_base(iova, IOTLB_HUGE_SHIFT, pasid, IOTLB_HUGE)];
}

/*
 * The entry holding @iova's translation, or NULL: its 4 KiB set, then its
 * 2 MiB one. @iova is below 2^PT_IOVA_BITS.
 */
static inline struct iotlb_entry *iotlb_lookup(struct iommu_iotlb *t, iova_t iova, uint32_t pasid)
{
	uint64_t tag = iotlb_tag(iova, 12, pasid);
	struct iotlb_entry *e = iotlb_set(t, iova, 12, pasid);

	for (unsigned w = 0; w < IOTLB_WAYS; w++)
		if (atomic_load_explicit(&e[w].tag, memory_order_acquire) == tag)
			return &e[w];
	tag = iotlb_tag(iova, IOTLB_HUGE_SHIFT, pasid);
	e = iotlb_set(t, iova, IOTLB_HUGE_SHIFT, pasid);
	for (unsigned w = 0; w < IOTLB_WAYS; w++)
		if (atomic_load_explicit(&e[w].tag, memory_order_acquire) == tag)
			return &e[w];
	return NULL;
}

/* Which of iommu_iotlb.last an access of @access uses. */
static inline unsigned iotlb_last_slot(unsigned access)
{
	return (access & PT_PROT_WRITE) ? 1 : 0;
}

/*
 * iotlb_lookup_last() - iotlb_lookup() for the owner: the entry its last
 * access of the kind hit first, then the sets; remembered for the next.
 */
static inline struct iotlb_entry *iotlb_lookup_last(struct iommu_iotlb *t, iova_t iova, uint32_t pasid,
						   unsigned access)
{
	unsigned slot = iotlb_last_slot(access);
	struct iotlb_entry *e = t->last[slot];

	if (likely(e) && atomic_load_explicit(&e->tag, memory_order_acquire) ==
				 iotlb_tag(iova, t->last_shift[slot], pasid))
		return e;
	e = iotlb_lookup(t, iova, pasid);
	if (e) {
		t->last[slot] = e;
		t->last_shift[slot] = e >= t->huge ? IOTLB_HUGE_SHIFT : 12;
	}
	return e;
}

/*
 * iotlb_fill() - the owner caches a walk's translation of @iova at @shift
 * granularity in a way of its set (round robin), then checks the walk's
 * leaf still holds, dropping the entry if not.
 */
struct iotlb_entry *iotlb_fill(struct iommu_iotlb *t, iova_t iova, unsigned shift, uint32_t pasid,
			       const struct pt_walk *w, pa_t page_pa, uint8_t *page_ptr, uint8_t reach, uint32_t bus_gen,
			       bool write);

/*
 * iotlb_invalidate() - clear the entries of @pasid in [iova, iova+len), or
 * all of them. Needs the lock of the client the IOTLB belongs to.
 */
void iotlb_invalidate(struct iommu_iotlb *t, uint32_t pasid, iova_t iova, uint64_t len, bool all);

#endif /* IOVM_IOMMU_IOTLB_H */
