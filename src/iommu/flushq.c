/* SPDX-License-Identifier: MIT */
/*
 * flushq.c - deferred invalidation: unmapped ranges are queued, and flushed
 * together once a batch is full or the oldest has waited its timeout
 * (Linux: 256 entries, 10 ms). A flush invalidates the domain's IOTLB
 * entries on every attached device, waits one grace period for all of them,
 * and only then unpins the pages and hands the IOVAs back: until that point
 * a device may still reach them through a stale entry, and nothing else may
 * have them.
 *
 * Each thread that unmaps in a domain queues into a ring of its own, as
 * Linux keeps a flush queue per CPU. The ring has one producer, its thread,
 * which appends with plain stores and publishes with a release store of the
 * tail: an unmap takes no lock and executes no locked instruction, which
 * would wait for the PTE stores the unmap just made. A ring is emptied by
 * whoever flushes, under flush_lock: its thread when the ring is full, the
 * flusher thread at the deadline, iovm_domain_flush().
 *
 * Why a flush may release what it saw: it reads every ring's tail (acquire)
 * before it invalidates. An entry published by that tail had its PTEs
 * cleared before the release store that published it, so the invalidation
 * comes after the clear, and no device can fill its IOTLB from the old PTE
 * afterwards. Entries published later wait for the next flush.
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
#include "base/compiler.h"
#include "base/ctx.h"
#include "base/fault_inject.h"
#include "base/lock.h"
#include "base/tlscache.h"
#include "base/counter.h"
#include "iommu/iommu_internal.h"
#include "phys/phys.h"

struct fq_ring {
	struct tls_cache tc;         /* first: what the thread's slot points to */
	struct list_node link;       /* in iovm_domain.fq_rings, under flush_lock */
	struct iovm_domain *dom;
	_Atomic bool orphan;         /* its thread let go of it: freed at a flush once empty */
	uint32_t mask;               /* the array's size, a power of two, less one */
	uint8_t *ends;               /* per entry: 1 when it is an unmap's last piece; after e[] */

	/* The producer's: its thread's. */
	_Atomic uint32_t tail __cacheline_aligned; /* entries published, ever (wraps) */
	_Atomic uint64_t queued_unmaps;
	_Atomic uint64_t first_ns;   /* when an entry went into the empty ring */

	/* The consumer's: under flush_lock. */
	_Atomic uint32_t head __cacheline_aligned; /* entries released, ever (wraps) */
	uint32_t seen;               /* the tail as the flush in progress read it */
	_Atomic uint64_t released_unmaps;

	struct unmapped e[];         /* mask + 1 of them */
};

static struct tls_kind fq_kind = TLS_KIND_INIT;
static __thread struct tls_slots fq_slots __tls_ie;

/* Release what a flush covers: the mirror's mappings, pins, IOVAs, the shadow's pending record. */
static void release_pieces(struct iovm_domain *dom, const struct unmapped *p, unsigned n)
{
	if (dom->shared_ops) {
		/* A shared domain's: the map's hold on the memory, and the shared allocator's IOVAs. */
		for (unsigned i = 0; i < n; i++) {
			shadow_flushed(dom, &p[i]);
			domain_unmapped_release(dom, p[i].iova, p[i].pa, p[i].len, p[i].keep_iova);
		}
		return;
	}
	mirror_unmap_pieces(dom, p, n);
	phys_unpin_many(dom->ctx->phys, &p[0].pa, &p[0].len, sizeof(*p), n);
	for (unsigned i = 0; i < n; i++) {
		shadow_flushed(dom, &p[i]);
		if (dom->has_iova && !p[i].keep_iova)
			iova_free(&dom->iova, p[i].iova, p[i].len);
	}
}

/*
 * Invalidate everything the domain's devices cache, and wait them out;
 * then free the tables deferred unmaps detached before the invalidation.
 */
static void invalidate_all(struct iovm_domain *dom)
{
	struct pt_retired retired = { NULL };

	pt_retired_take(&dom->pt, &retired);
	domain_invalidate(dom, iova_make(0), 0, true);
	epoch_synchronize(dom->is->epoch);
	/* A shared domain's: every other process's devices too, before anything is freed or reused. */
	if (dom->shared_ops)
		dom->shared_ops->invalidate(dom->shared_arg, iova_make(0), UINT64_MAX);
	pt_retired_free(&dom->pt, &retired);
}

/* Give back the entries of @r up to what the flush saw. Needs flush_lock. Returns the unmaps. */
static uint64_t ring_release(struct iovm_domain *dom, struct fq_ring *r)
{
	uint32_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
	uint64_t unmaps = 0;

	lock_assert_held(&dom->flush_lock);
	/* The flush saw no more than the ring holds: the producer never overruns the head. */
	IOVM_ASSERT(r->seen - h <= dom->flush_batch && dom->flush_batch <= r->mask + 1);
	while (h != r->seen) {
		uint32_t at = h & r->mask, k = MIN(r->seen - h, r->mask + 1 - at);

		release_pieces(dom, &r->e[at], k);
		for (uint32_t i = 0; i < k; i++)
			unmaps += r->ends[at + i];
		h += k;
	}
	/* Room for the producer, once the entries are no longer read. */
	atomic_store_explicit(&r->head, h, memory_order_release);
	counter_add(&r->released_unmaps, unmaps); /* under flush_lock */
	IOVM_WARN_ON(counter_read(&r->released_unmaps) > counter_read(&r->queued_unmaps));
	return unmaps;
}

/*
 * Flush what every ring holds now, and the @nr_extra pieces of one unmap
 * that no ring could take (none: NULL, 0), under one invalidation. Needs flush_lock.
 */
static void flush_locked(struct iovm_domain *dom, const struct unmapped *extra, unsigned nr_extra)
{
	struct list_node *n, *t;
	uint64_t unmaps = nr_extra ? 1 : 0;
	bool any = nr_extra > 0;

	lock_assert_held(&dom->flush_lock);
	list_for_each(n, &dom->fq_rings) {
		struct fq_ring *r = list_entry(n, struct fq_ring, link);

		r->seen = atomic_load_explicit(&r->tail, memory_order_acquire);
		any |= r->seen != atomic_load_explicit(&r->head, memory_order_relaxed);
	}
	/*
	 * Nothing queued here; but an unmap that found nothing to queue may
	 * have detached empty tables, and a shared domain's dead process may
	 * have left unmaps for any flush to release.
	 */
	if (!any && !pt_retired_waiting(&dom->pt) && !(dom->shared_ops && dom->shared_ops->orphans(dom->shared_arg)))
		return;
	invalidate_all(dom);
	if (nr_extra)
		release_pieces(dom, extra, nr_extra);
	list_for_each_safe(n, t, &dom->fq_rings) {
		struct fq_ring *r = list_entry(n, struct fq_ring, link);

		unmaps += ring_release(dom, r);
		/* A ring whose thread is gone gets nothing more: once empty, it goes. */
		if (atomic_load_explicit(&r->orphan, memory_order_acquire) &&
		    atomic_load_explicit(&r->tail, memory_order_acquire) == r->seen) {
			list_del(&r->link);
			free(r);
		}
	}
	counter_add(&dom->flushes, 1); /* under flush_lock */
	counter_add(&dom->flushed_unmaps, unmaps);
}

/* The tlscache hooks. create() runs with no lock held; retire() and discard() under the registry's. */
static struct tls_cache *ring_create(struct tls_owner *o)
{
	struct iovm_domain *dom = container_of(o, struct iovm_domain, fq_owner);
	uint32_t size = 1;
	struct fq_ring *r;
	size_t len;

	while (size < dom->flush_batch)
		size <<= 1;
	/* Line-aligned: the producer's and the consumer's fields are on lines of their own. */
	len = align_up(sizeof(*r) + size * (sizeof(r->e[0]) + 1), CACHE_LINE_SIZE);
	r = fi_aligned_alloc(CACHE_LINE_SIZE, len);
	if (!r)
		return NULL;
	memset(r, 0, len);
	r->ends = (uint8_t *)&r->e[size];
	r->dom = dom;
	r->mask = size - 1;
	mutex_lock(&dom->flush_lock);
	list_add_tail(&dom->fq_rings, &r->link);
	mutex_unlock(&dom->flush_lock);
	return &r->tc;
}

/*
 * The thread exits, or needs its slot for another domain: the ring stays on
 * the domain's list until a flush has emptied it. flush_lock cannot be taken
 * here (a flush may wait for the registry to give an IOVA magazine).
 */
static void ring_retire(struct tls_owner *o, struct tls_cache *c)
{
	(void)o;
	atomic_store_explicit(&container_of(c, struct fq_ring, tc)->orphan, true, memory_order_release);
}

/* The domain goes: it frees its rings itself, from its list. */
static void ring_discard(struct tls_cache *c)
{
	(void)c;
}

int flushq_init(struct iovm_domain *dom)
{
	list_init(&dom->fq_rings);
	dom->fq_owner.create = ring_create;
	dom->fq_owner.retire = ring_retire;
	dom->fq_owner.discard = ring_discard;
	tls_owner_register(&dom->fq_owner);
	dom->fq_ready = true;
	return 0;
}

int flushq_add(struct iovm_domain *dom, const struct unmapped *pieces, unsigned n)
{
	struct tls_cache *tc;
	struct fq_ring *r;
	uint32_t head, tail;
	bool started;

	tc = n <= dom->flush_batch ? tls_cache_get(&fq_kind, &fq_slots, &dom->fq_owner) : NULL;
	if (!tc) {
		/* More ranges than a batch holds, or no memory for a ring: flushed now. */
		mutex_lock(&dom->flush_lock);
		flush_locked(dom, pieces, n);
		mutex_unlock(&dom->flush_lock);
		return 0;
	}
	r = container_of(tc, struct fq_ring, tc);
	tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	head = atomic_load_explicit(&r->head, memory_order_acquire);
	if (tail - head + n > dom->flush_batch) {
		/* No room left (a flush here failed to keep up): flush first. */
		flushq_flush(dom);
		head = atomic_load_explicit(&r->head, memory_order_acquire);
	}
	IOVM_ASSERT(tail - head + n <= dom->flush_batch);
	started = head == tail;
	if (started)
		atomic_store_explicit(&r->first_ns, clock_now_ns(), memory_order_relaxed);
	for (unsigned i = 0; i < n; i++) {
		r->e[(tail + i) & r->mask] = pieces[i];
		r->ends[(tail + i) & r->mask] = i == n - 1;
	}
	counter_add(&r->queued_unmaps, 1); /* the ring's thread is its only writer */
	atomic_store_explicit(&r->tail, tail + n, memory_order_release);
	if (tail + n - head == dom->flush_batch) {
		/*
		 * The unmap that fills the thread's batch flushes it, every
		 * thread's ring with it: unmaps of the domain wait for that grace
		 * period, as they would for a strict unmap of their own.
		 */
		flushq_flush(dom);
		return 0;
	}
	/*
	 * A new batch needs the flusher watching its deadline. An armed flusher
	 * looks at every ring before it disarms (seq_cst), so it sees this
	 * batch or we see it disarmed: the fence orders our tail before our
	 * look, once per batch.
	 */
	if (started) {
		atomic_thread_fence(memory_order_seq_cst);
		if (!atomic_load_explicit(&dom->is->flusher_armed, memory_order_seq_cst))
			flusher_kick(dom->is);
	}
	return 0;
}

void flushq_flush(struct iovm_domain *dom)
{
	if (!dom->fq_ready) {
		/* A strict shared domain queues nothing; what a dead process left in flight waits for this. */
		if (dom->shared_ops && dom->shared_ops->orphans(dom->shared_arg)) {
			mutex_lock(&dom->flush_lock);
			invalidate_all(dom);
			mutex_unlock(&dom->flush_lock);
		}
		return;
	}
	mutex_lock(&dom->flush_lock);
	flush_locked(dom, NULL, 0);
	mutex_unlock(&dom->flush_lock);
}

/* Whether a piece @r holds, not yet released, overlaps [iova, +len). Needs flush_lock. */
static bool ring_holds(struct iovm_domain *dom, struct fq_ring *r, iova_t iova, uint64_t len)
{
	uint32_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);

	lock_assert_held(&dom->flush_lock);
	for (uint32_t h = atomic_load_explicit(&r->head, memory_order_relaxed); h != tail; h++) {
		const struct unmapped *p = &r->e[h & r->mask];

		if (iova_val(p->iova) < iova_val(iova) + len && iova_val(iova) < iova_val(p->iova) + p->len)
			return true;
	}
	return false;
}

void flushq_unquarantine(struct iovm_domain *dom, iova_t iova, uint64_t len)
{
	struct list_node *n;
	bool held = false;

	if (!dom->fq_ready || dom->has_iova)
		return;
	mutex_lock(&dom->flush_lock);
	list_for_each(n, &dom->fq_rings)
		if ((held = ring_holds(dom, list_entry(n, struct fq_ring, link), iova, len)))
			break;
	if (held)
		flush_locked(dom, NULL, 0);
	mutex_unlock(&dom->flush_lock);
}

uint64_t flushq_deadline(struct iovm_domain *dom)
{
	uint64_t due = UINT64_MAX;
	struct list_node *n;

	if (!dom->fq_ready)
		return UINT64_MAX; /* a strict domain: no queue, nothing due */
	mutex_lock(&dom->flush_lock);
	list_for_each(n, &dom->fq_rings) {
		struct fq_ring *r = list_entry(n, struct fq_ring, link);

		/* first_ns may be older than the oldest entry left: a flush comes early then, never late. */
		if (atomic_load_explicit(&r->tail, memory_order_acquire) != atomic_load_explicit(&r->head, memory_order_relaxed))
			due = MIN(due, atomic_load_explicit(&r->first_ns, memory_order_relaxed) + dom->flush_timeout_ns);
	}
	mutex_unlock(&dom->flush_lock);
	return due;
}

void flushq_stats(struct iovm_domain *dom, struct iovm_domain_stats *st)
{
	struct list_node *n;

	if (!dom->fq_ready)
		return;
	mutex_lock(&dom->flush_lock);
	st->flushes = atomic_load_explicit(&dom->flushes, memory_order_relaxed);
	st->flushed_unmaps = atomic_load_explicit(&dom->flushed_unmaps, memory_order_relaxed);
	st->pending_unmaps = 0;
	list_for_each(n, &dom->fq_rings) {
		struct fq_ring *r = list_entry(n, struct fq_ring, link);

		/* Published before the tail that a flush saw: never fewer than what it released. */
		st->pending_unmaps += atomic_load_explicit(&r->queued_unmaps, memory_order_relaxed) -
				      atomic_load_explicit(&r->released_unmaps, memory_order_relaxed);
	}
	mutex_unlock(&dom->flush_lock);
}

void flushq_destroy(struct iovm_domain *dom)
{
	if (!dom->fq_ready)
		return;
	flushq_flush(dom);
	/* No thread finds its ring any more; then the rings go. */
	tls_owner_unregister(&dom->fq_owner);
	while (!list_empty(&dom->fq_rings)) {
		struct fq_ring *r = list_entry(dom->fq_rings.next, struct fq_ring, link);

		list_del(&r->link);
		free(r);
	}
	dom->fq_ready = false;
}
