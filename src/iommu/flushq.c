/* SPDX-License-Identifier: MIT */
/*
 * flushq.c - deferred invalidation: unmapped ranges are queued, and flushed
 * together once the batch is full or the oldest has waited its timeout
 * (Linux: 256 entries, 10 ms). A flush invalidates the domain's IOTLB
 * entries on every attached device, waits one grace period for all of them,
 * and only then unpins the pages and hands the IOVAs back: until that point
 * a device may still reach them through a stale entry, and nothing else may
 * have them.
 *
 * The queue is an array of flush_batch ranges allocated with the domain: an
 * unmap appends under flush_lock, reads the clock only when it starts a
 * batch, and wakes the flusher thread only when the flusher is not already
 * watching (iommu_space.flusher_armed). The unmap that fills the batch
 * flushes it, under flush_lock: unmaps of the domain wait for that grace
 * period, as they would for a strict unmap of their own.
 *
 * A domain mirrored into the kernel's IOMMU (a VFIO device's) unmaps there
 * at the flush too: the batch's ranges, sorted and merged, as few calls as
 * they allow. The kernel's mappings are the device's IOTLB in that case.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/ctx.h"
#include "iommu/iommu_internal.h"
#include "phys/phys.h"

/* A counter written under flush_lock, read racily by iovm_domain_stats(). */
static void count_add(_Atomic uint64_t *c, int64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + (uint64_t)n,
			      memory_order_relaxed);
}

static_assert(offsetof(struct unmapped, len) == offsetof(struct unmapped, pa) + sizeof(uint64_t),
	      "phys_unpin_many() reads a PA and the length after it");

/* Release what a flush covers: the mirror's mappings, pins, IOVAs, the shadow's pending record. */
static void release_pieces(struct iovm_domain *dom, const struct unmapped *p, unsigned n)
{
	mirror_unmap_pieces(dom, p, n);
	phys_unpin_many(dom->ctx->phys, &p[0].pa, sizeof(*p), n);
	for (unsigned i = 0; i < n; i++) {
		shadow_flushed(dom, &p[i]);
		if (dom->has_iova)
			iova_free(&dom->iova, p[i].iova >> 12, p[i].len >> 12);
	}
}

/* Invalidate everything the domain's devices cache, and wait them out. */
static void invalidate_all(struct iovm_domain *dom)
{
	domain_invalidate(dom, 0, 0, true);
	epoch_synchronize(dom->is->epoch);
	pt_reclaim(&dom->pt);
}

int flushq_init(struct iovm_domain *dom)
{
	dom->fq = calloc(dom->flush_batch, sizeof(*dom->fq));
	dom->fq_deadline_ns = UINT64_MAX;
	return dom->fq ? 0 : -ENOMEM;
}

/* Flush the batch queued. Needs flush_lock. */
static void flush_locked(struct iovm_domain *dom)
{
	if (!dom->fq_len)
		return;
	invalidate_all(dom);
	release_pieces(dom, dom->fq, dom->fq_len);
	count_add(&dom->flushes, 1);
	count_add(&dom->flushed_unmaps, dom->fq_unmaps);
	count_add(&dom->pending_unmaps, -(int64_t)dom->fq_unmaps);
	dom->fq_len = dom->fq_unmaps = 0;
	dom->fq_deadline_ns = UINT64_MAX;
}

int flushq_add(struct iovm_domain *dom, const struct unmapped *pieces, unsigned n)
{
	bool started;

	pthread_mutex_lock(&dom->flush_lock);
	if (n > dom->flush_batch) {
		/* More ranges than a batch holds: flush them, with what is queued, now. */
		flush_locked(dom);
		invalidate_all(dom);
		release_pieces(dom, pieces, n);
		count_add(&dom->flushes, 1);
		count_add(&dom->flushed_unmaps, 1);
		pthread_mutex_unlock(&dom->flush_lock);
		return 0;
	}
	if (dom->fq_len + n > dom->flush_batch)
		flush_locked(dom);
	started = dom->fq_len == 0;
	if (started)
		dom->fq_deadline_ns = clock_now_ns() + dom->flush_timeout_ns;
	memcpy(&dom->fq[dom->fq_len], pieces, n * sizeof(*pieces));
	dom->fq_len += n;
	dom->fq_unmaps++;
	count_add(&dom->pending_unmaps, 1);
	if (dom->fq_len == dom->flush_batch)
		flush_locked(dom);
	pthread_mutex_unlock(&dom->flush_lock);
	/*
	 * A new batch needs the flusher watching its deadline. An armed flusher
	 * looks at every domain before it disarms (seq_cst, after our unlock
	 * or before our lock), so it sees this batch or we see it disarmed.
	 */
	if (started && !atomic_load_explicit(&dom->is->flusher_armed, memory_order_seq_cst))
		flusher_kick(dom->is);
	return 0;
}

void flushq_flush(struct iovm_domain *dom)
{
	pthread_mutex_lock(&dom->flush_lock);
	flush_locked(dom);
	pthread_mutex_unlock(&dom->flush_lock);
}

uint64_t flushq_deadline(struct iovm_domain *dom)
{
	uint64_t due;

	pthread_mutex_lock(&dom->flush_lock);
	due = dom->fq_deadline_ns;
	pthread_mutex_unlock(&dom->flush_lock);
	return due;
}

void flushq_destroy(struct iovm_domain *dom)
{
	if (!dom->fq)
		return;
	flushq_flush(dom);
	free(dom->fq);
	dom->fq = NULL;
}
