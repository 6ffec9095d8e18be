/* SPDX-License-Identifier: MIT */
/*
 * flushq.c - deferred invalidation: unmaps are queued, and flushed together
 * once the batch is full or the oldest has waited its timeout (Linux: 256
 * entries, 10 ms). A flush invalidates the domain's IOTLB entries on every
 * attached device, waits one grace period for all of them, and only then
 * unpins the pages and hands the IOVAs back: until that point a device may
 * still reach them through a stale entry, and nothing else may have them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/ctx.h"
#include "iommu/iommu_internal.h"
#include "phys/phys.h"

/* Release what a flush covers: pins, IOVAs, the shadow's pending record. */
static void release_pieces(struct iovm_domain *dom, const struct unmapped *p, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		shadow_flushed(dom, &p[i]);
		if (p[i].pa != IOVM_ADDR_INVALID)
			phys_unpin(dom->ctx->phys, pa_make(p[i].pa), p[i].len);
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

int flushq_add(struct iovm_domain *dom, struct unmapped *pieces, unsigned n)
{
	struct flush_entry *e = malloc(sizeof(*e) + n * sizeof(*pieces));
	bool full, first;

	if (e) {
		e->deadline_ns = clock_now_ns() + dom->flush_timeout_ns;
		e->n = n;
		memcpy(e->pieces, pieces, n * sizeof(*pieces));
		pthread_mutex_lock(&dom->flush_lock);
		if (dom->queued == dom->queue_cap) {
			unsigned cap = dom->queue_cap ? dom->queue_cap * 2 : 64;
			struct flush_entry **q = realloc(dom->queue, cap * sizeof(*q));

			if (q) {
				dom->queue = q;
				dom->queue_cap = cap;
			}
		}
		if (dom->queued < dom->queue_cap) {
			dom->queue[dom->queued++] = e;
			full = dom->queued >= dom->flush_batch;
			first = dom->queued == 1;
			pthread_mutex_unlock(&dom->flush_lock);
			atomic_fetch_add_explicit(&dom->pending_unmaps, 1, memory_order_relaxed);
			if (full)
				flushq_flush(dom);
			else if (first)
				flusher_kick(dom->is); /* the first one sets the deadline */
			return 0;
		}
		pthread_mutex_unlock(&dom->flush_lock);
		free(e);
	}
	/* No room to defer: invalidate now, as a strict domain would. */
	invalidate_all(dom);
	release_pieces(dom, pieces, n);
	return 0;
}

void flushq_flush(struct iovm_domain *dom)
{
	struct flush_entry **q;
	unsigned n;

	pthread_mutex_lock(&dom->flush_lock);
	q = dom->queue;
	n = dom->queued;
	dom->queue = NULL;
	dom->queued = dom->queue_cap = 0;
	pthread_mutex_unlock(&dom->flush_lock);
	if (!n) {
		free(q);
		return;
	}
	invalidate_all(dom);
	for (unsigned i = 0; i < n; i++) {
		release_pieces(dom, q[i]->pieces, q[i]->n);
		free(q[i]);
	}
	free(q);
	atomic_fetch_add_explicit(&dom->flushes, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&dom->flushed_unmaps, n, memory_order_relaxed);
	atomic_fetch_sub_explicit(&dom->pending_unmaps, n, memory_order_relaxed);
}

uint64_t flushq_deadline(struct iovm_domain *dom)
{
	uint64_t due = UINT64_MAX;

	pthread_mutex_lock(&dom->flush_lock);
	if (dom->queued)
		due = dom->queue[0]->deadline_ns; /* queued in order: the first is the oldest */
	pthread_mutex_unlock(&dom->flush_lock);
	return due;
}

void flushq_destroy(struct iovm_domain *dom)
{
	flushq_flush(dom);
}
