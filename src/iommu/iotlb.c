/* SPDX-License-Identifier: MIT */
/*
 * iotlb.c - IOTLBs: made and freed with their engine queue, filled by
 * their owner, invalidated by writers, and the device-side sections their
 * owner's accesses run in. The lookup and the translation are in iotlb.h
 * and access.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/ctx.h"
#include "base/fault_inject.h"
#include "base/log.h"
#include "base/lock.h"
#include "base/counter.h"
#include "iommu/iommu_internal.h"
#include "phys/phys.h"

/*
 * Plain stores, then one full fence: a locked store per entry would wait,
 * each in turn, for a line the device's thread last wrote (a flush clears
 * most of the IOTLB); the fence orders every clear before the grace period
 * that follows. A clear racing with a fill of the same entry at most
 * drops a good entry, as before: the filler checks its leaf after its tag.
 */
void iotlb_invalidate(struct iommu_iotlb *t, uint32_t pasid, iova_t iova, uint64_t len, bool all)
{
	/* Page numbers, inclusive, for the tags' arithmetic. */
	uint64_t first = all ? 0 : iova_val(iova) >> 12, last = all ? UINT64_MAX : (iova_val(iova) + len - 1) >> 12;

	lock_assert_held(&t->client->lock);
	if (all || len / SZ_4K >= IOTLB_SMALL) {
		/* Large ranges: look at every entry. */
		for (unsigned i = 0; i < IOTLB_SMALL; i++) {
			struct iotlb_entry *e = &t->small[i];
			uint64_t tag = atomic_load_explicit(&e->tag, memory_order_relaxed);

			if ((tag & TAG_VALID) && iotlb_tag_pasid(tag) == pasid && iotlb_tag_page(tag) >= first &&
			    iotlb_tag_page(tag) <= last)
				atomic_store_explicit(&e->tag, 0, memory_order_relaxed);
		}
	} else {
		/* Small ranges: only the sets their pages hash to. */
		for (uint64_t p = first; p <= last; p++) {
			struct iotlb_entry *e = iotlb_set(t, iova_make(p << 12), 12, pasid);
			uint64_t tag = iotlb_tag(iova_make(p << 12), 12, pasid);

			for (unsigned w = 0; w < IOTLB_WAYS; w++)
				if (atomic_load_explicit(&e[w].tag, memory_order_relaxed) == tag)
					atomic_store_explicit(&e[w].tag, 0, memory_order_relaxed);
		}
	}
	/* Huge entries cover 2 MiB: any that overlaps goes. */
	for (unsigned i = 0; i < IOTLB_HUGE; i++) {
		struct iotlb_entry *e = &t->huge[i];
		uint64_t tag = atomic_load_explicit(&e->tag, memory_order_relaxed);

		if ((tag & TAG_VALID) && iotlb_tag_pasid(tag) == pasid &&
		    iotlb_tag_page(tag) >= first >> (IOTLB_HUGE_SHIFT - 12) &&
		    iotlb_tag_page(tag) <= last >> (IOTLB_HUGE_SHIFT - 12))
			atomic_store_explicit(&e->tag, 0, memory_order_relaxed);
	}
	atomic_thread_fence(memory_order_seq_cst);
}

struct iotlb_entry *iotlb_fill(struct iommu_iotlb *t, iova_t iova, unsigned shift, uint32_t pasid,
			       const struct pt_walk *w, pa_t page_pa, uint8_t *page_ptr, uint8_t reach, uint32_t bus_gen,
			       bool write)
{
	struct iotlb_entry *e = iotlb_set(t, iova, shift, pasid) + t->victim++ % IOTLB_WAYS;

	t->fills++;
	e->pa = page_pa;
	e->ptr = page_ptr;
	e->reach = reach;
	e->prot = (uint8_t)w->prot;
	e->ptep = w->ptep;
	e->pte = w->pte;
	e->bus_gen = bus_gen;
	e->dirty = write;
	atomic_store_explicit(&e->tag, iotlb_tag(iova, shift, pasid), memory_order_seq_cst);
	if ((atomic_load_explicit(w->ptep, memory_order_seq_cst) ^ w->pte) & ~(PTE_ACCESSED | PTE_DIRTY))
		atomic_store_explicit(&e->tag, 0, memory_order_relaxed);
	/* The next access of the kind most likely falls in it. */
	t->last[write] = e;
	t->last_shift[write] = shift;
	return e;
}

int iommu_iotlb_create(struct iommu_client *c, struct iommu_iotlb **out)
{
	struct iommu_iotlb *t = fi_aligned_alloc(CACHE_LINE_SIZE, align_up(sizeof(*t), CACHE_LINE_SIZE));

	if (!t)
		return -ENOMEM;
	memset(t, 0, sizeof(*t));
	t->client = c;
	t->phys = c->is->ctx->phys;
	t->bus_gen = phys_bus_gen(t->phys);
	t->oracle = c->is->oracle;
	t->epoch = c->is->epoch;
	epoch_reader_add(t->epoch, &t->reader);
	mutex_lock(&c->lock);
	list_add(&c->iotlbs, &t->link);
	mutex_unlock(&c->lock);
	*out = t;
	return 0;
}

void iommu_iotlb_destroy(struct iommu_iotlb *t)
{
	if (!t)
		return;
	mutex_lock(&t->client->lock);
	list_del(&t->link);
	mutex_unlock(&t->client->lock);
	epoch_reader_del(t->client->is->epoch, &t->reader);
	free(t);
}

void iommu_iotlb_counters(const struct iommu_iotlb *t, uint64_t *hits, uint64_t *misses)
{
	*hits = counter_read(&t->hits);
	*misses = counter_read(&t->misses);
}

/*
 * A device holds its log messages while inside: the memory monitor's
 * reader waits for it to leave, and fork() (holding malloc's locks), or a
 * munmap, waits for the reader; a log handler that allocates, or the log
 * lock held by a thread inside one, would close the circle (log.h). Held
 * before the section, handed over after it: the handler runs outside.
 */
void iommu_enter(struct iommu_iotlb *t)
{
	log_hold();
	epoch_enter(t->epoch, &t->reader);
}

void iommu_exit(struct iommu_iotlb *t)
{
	epoch_exit(&t->reader);
	log_release();
}

bool iommu_quiesce(struct iommu_iotlb *t)
{
	struct epoch *e = t->epoch;

	if (likely(!epoch_waited_on(e, &t->reader)))
		return false;
	epoch_exit(&t->reader);
	epoch_enter(e, &t->reader);
	return true;
}
