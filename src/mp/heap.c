/* SPDX-License-Identifier: MIT */
/*
 * heap.c - the shared heap's allocator: a buddy allocator whose every
 * change commits with one store, so that a process killed at any
 * instruction leaves a heap the next one can repair.
 *
 * The truth is the state byte of each block's first grain (mp_internal.h):
 * a walk from grain 0, jumping by each block's size, meets every block.
 *  - Allocating splits a free block: the buddies' state bytes are written
 *    first, inside the block where the walk does not look, and the block's
 *    own byte last. Killed before it, the block is still whole and free.
 *  - Freeing merges with free buddies: the merged block's byte is written
 *    once; the bytes it swallowed are cleared afterwards. Killed between,
 *    they are inside a block, unreached, and the repair clears them.
 * The free lists (doubly linked through grain-indexed arrays outside the
 * heap, so that the application's writes can never corrupt them, and a
 * block's memory is never written by the allocator) are derived: the
 * repair rebuilds them from the walk.
 *
 * Every function but the layout ones needs mp_ctl.lock.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include "base/compiler.h"
#include "base/error.h"
#include "base/log.h"
#include "mp/mp_internal.h"

uint64_t mp_ctl_layout(uint64_t heap_size, struct mp_layout *l)
{
	uint64_t n = heap_size >> MP_GRAIN_SHIFT, off = align_up(sizeof(struct mp_ctl), SZ_4K);

	l->off_state = off;
	off = align_up(off + n, 64);
	l->off_owner = off;
	off = align_up(off + n, 64);
	l->off_lender = off;
	off = align_up(off + n, 64);
	l->off_next = off;
	off = align_up(off + n * sizeof(uint32_t), 64);
	l->off_prev = off;
	off = align_up(off + n * sizeof(uint32_t), 64);
	l->off_maps = off;
	off = align_up(off + mp_heap_pages(heap_size) * sizeof(uint32_t), 64);
	l->off_parcel = off;
	off += (heap_size + MP_PARCEL - 1) >> MP_PARCEL_SHIFT;
	l->size = align_up(off, SZ_4K);
	return l->size;
}

void mp_ctl_layout_set(struct mp_ctl *c, uint64_t heap_size)
{
	struct mp_layout l;

	c->ctl_size = mp_ctl_layout(heap_size, &l);
	c->off_state = l.off_state;
	c->off_owner = l.off_owner;
	c->off_lender = l.off_lender;
	c->off_next = l.off_next;
	c->off_prev = l.off_prev;
	c->off_maps = l.off_maps;
	c->off_parcel = l.off_parcel;
	c->heap_size = heap_size;
	c->ngrains = heap_size >> MP_GRAIN_SHIFT;
	c->nparcels = (heap_size + MP_PARCEL - 1) >> MP_PARCEL_SHIFT;
	c->trim_grain = MP_NO_GRAIN;
}

int mp_heap_view(struct mp_ctl *c, struct mp_heap *h)
{
	struct mp_layout l;

	if (c->magic != MP_MAGIC || c->version != MP_VERSION || c->hdr_size != sizeof(*c))
		return err_detail(-EPROTO, IOVM_LOG_ERR, "the share's control region is not of this iovm version");
	if (!c->heap_size || c->heap_size >> MP_GRAIN_SHIFT != c->ngrains || c->ngrains > MP_MAX_GRAINS ||
	    (c->heap_size + MP_PARCEL - 1) >> MP_PARCEL_SHIFT != c->nparcels)
		return err_detail(-EPROTO, IOVM_LOG_ERR, "the share's heap size is malformed");
	mp_ctl_layout(c->heap_size, &l);
	if (l.size != c->ctl_size || l.off_state != c->off_state || l.off_owner != c->off_owner ||
	    l.off_lender != c->off_lender || l.off_next != c->off_next || l.off_prev != c->off_prev ||
	    l.off_maps != c->off_maps || l.off_parcel != c->off_parcel)
		return err_detail(-EPROTO, IOVM_LOG_ERR, "the share's control region layout is malformed");
	h->c = c;
	h->state = (uint8_t *)c + l.off_state;
	h->owner = (uint8_t *)c + l.off_owner;
	h->lender = (uint8_t *)c + l.off_lender;
	h->next = (uint32_t *)(void *)((uint8_t *)c + l.off_next);
	h->prev = (uint32_t *)(void *)((uint8_t *)c + l.off_prev);
	h->maps = (uint32_t *)(void *)((uint8_t *)c + l.off_maps);
	h->parcel = (uint8_t *)c + l.off_parcel;
	h->fd = -1;
	return 0;
}

static inline uint64_t order_grains(unsigned order)
{
	return UINT64_C(1) << order;
}

static void list_push(struct mp_heap *h, uint64_t g, unsigned order)
{
	uint64_t head = h->c->free_head[order];

	h->prev[g] = 0;
	h->next[g] = (uint32_t)head;
	mp_crash_point();
	if (head)
		h->prev[head - 1] = (uint32_t)(g + 1);
	mp_crash_point();
	h->c->free_head[order] = g + 1;
	mp_crash_point();
}

static void list_remove(struct mp_heap *h, uint64_t g, unsigned order)
{
	uint64_t next = h->next[g], prev = h->prev[g];

	if (prev)
		h->next[prev - 1] = (uint32_t)next;
	else
		h->c->free_head[order] = next;
	mp_crash_point();
	if (next)
		h->prev[next - 1] = (uint32_t)prev;
	mp_crash_point();
}

/* The largest order of a block starting at @g that fits before @end. */
static unsigned fit_order(uint64_t g, uint64_t end)
{
	unsigned order = g ? MIN((unsigned)__builtin_ctzll(g), MP_MAX_ORDER) : MP_MAX_ORDER;

	while (g + order_grains(order) > end)
		order--;
	return order;
}

void mp_heap_init(struct mp_heap *h)
{
	struct mp_ctl *c = h->c;

	memset(h->state, 0, c->ngrains);
	memset(h->parcel, MP_PARCEL_UNCOMMITTED, c->nparcels);
	for (unsigned i = 0; i <= MP_MAX_ORDER; i++)
		c->free_head[i] = 0;
	for (uint64_t g = 0; g < c->ngrains;) {
		unsigned order = fit_order(g, c->ngrains);

		h->state[g] = (uint8_t)(MP_BLOCK | order);
		list_push(h, g, order);
		g += order_grains(order);
	}
	c->free_grains = c->ngrains;
	c->nr_blocks = 0;
}

unsigned mp_order_for(uint64_t size, uint64_t align)
{
	uint64_t grains = (MAX(size, align) + MP_GRAIN - 1) >> MP_GRAIN_SHIFT;

	return ilog2_up(MAX(grains, 1));
}

int mp_heap_alloc(struct mp_heap *h, uint64_t size, uint64_t align, uint8_t owner, uint64_t *record,
		  uint64_t *grain)
{
	struct mp_ctl *c = h->c;
	unsigned want, order;
	uint64_t g;

	if (!size || size > (c->ngrains << MP_GRAIN_SHIFT))
		return -ENOMEM;
	want = mp_order_for(size, align);
	if (want > MP_MAX_ORDER)
		return -ENOMEM;
	for (order = want; order <= MP_MAX_ORDER && !c->free_head[order]; order++)
		;
	if (order > MP_MAX_ORDER)
		return -ENOMEM;
	g = c->free_head[order] - 1;
	list_remove(h, g, order);
	/* The upper halves, inside the block: the walk does not see them yet. */
	while (order > want) {
		uint64_t buddy;

		order--;
		buddy = g + order_grains(order);
		h->state[buddy] = (uint8_t)(MP_BLOCK | order);
		mp_crash_point();
		list_push(h, buddy, order);
	}
	h->owner[g] = owner;
	lender_set(&h->lender[g], MP_LENDER_NONE);
	mp_crash_point();
	if (record)
		*record = g;
	mp_crash_point();
	/* The commit: one store, after every other (the compiler keeps the order; x86 stores do too). */
	atomic_signal_fence(memory_order_release);
	atomic_store_explicit((_Atomic uint8_t *)&h->state[g], (uint8_t)(MP_BLOCK | MP_ALLOCATED | want),
			      memory_order_release);
	mp_crash_point();
	c->free_grains -= order_grains(want);
	mp_crash_point();
	c->nr_blocks++;
	mp_crash_point();
	/* Memory behind it before anyone has its address; none to be had: as if there were no block. */
	if (mp_parcel_commit(h, g, want)) {
		mp_heap_unalloc(h, g);
		return -ENOMEM;
	}
	*grain = g;
	return 0;
}

int mp_heap_take(struct mp_heap *h, uint64_t grain, unsigned order, uint8_t owner, uint8_t lender)
{
	struct mp_ctl *c = h->c;

	if (grain >= c->ngrains || h->state[grain] != (MP_BLOCK | order))
		return -EINVAL;
	list_remove(h, grain, order);
	h->owner[grain] = owner;
	lender_set(&h->lender[grain], lender);
	mp_crash_point();
	atomic_signal_fence(memory_order_release);
	atomic_store_explicit((_Atomic uint8_t *)&h->state[grain], (uint8_t)(MP_BLOCK | MP_ALLOCATED | order),
			      memory_order_release);
	mp_crash_point();
	c->free_grains -= order_grains(order);
	mp_crash_point();
	c->nr_blocks++;
	mp_crash_point();
	return 0;
}

int mp_heap_block(const struct mp_heap *h, uint64_t grain, unsigned *order, uint8_t *owner)
{
	uint8_t s;

	if (grain >= h->c->ngrains)
		return -EINVAL;
	s = h->state[grain];
	if ((s & (MP_BLOCK | MP_ALLOCATED)) != (MP_BLOCK | MP_ALLOCATED))
		return -EINVAL;
	*order = s & MP_ORDER_MASK;
	*owner = h->owner[grain];
	return 0;
}

/* The block at @grain, of @order, its lender byte FREEING or DOMAINS: free, merged with its free buddies. */
static void free_block(struct mp_heap *h, uint64_t grain, unsigned order)
{
	struct mp_ctl *c = h->c;
	uint64_t g = grain, swallowed[MP_MAX_ORDER + 1];
	unsigned n = 0, start;

	start = order;
	/* Merge with each free buddy of equal order; nothing is written until the commit. */
	while (order < MP_MAX_ORDER) {
		uint64_t buddy = g ^ order_grains(order);

		if (buddy + order_grains(order) > c->ngrains || h->state[buddy] != (MP_BLOCK | order))
			break;
		list_remove(h, buddy, order);
		swallowed[n++] = MAX(buddy, g);
		g = MIN(buddy, g);
		order++;
	}
	atomic_signal_fence(memory_order_release);
	atomic_store_explicit((_Atomic uint8_t *)&h->state[g], (uint8_t)(MP_BLOCK | order), memory_order_release);
	atomic_signal_fence(memory_order_release);
	mp_crash_point();
	/* Now inside the merged block: cleared so that a stale free of one finds nothing. */
	for (unsigned i = 0; i < n; i++) {
		h->state[swallowed[i]] = 0;
		mp_crash_point();
	}
	list_push(h, g, order);
	c->free_grains += order_grains(start);
	mp_crash_point();
	c->nr_blocks--;
	mp_crash_point();
}

int mp_heap_free(struct mp_heap *h, uint64_t grain)
{
	unsigned order;
	uint8_t owner;

	if (mp_heap_block(h, grain, &order, &owner))
		return -EINVAL;
	/* Against its owner caching it at once without the lock: one of the two wins. */
	if (!lender_cas(&h->lender[grain], MP_LENDER_NONE, MP_LENDER_FREEING)) {
		uint8_t l = lender_get(&h->lender[grain]);

		return l == MP_LENDER_CACHED || l == MP_LENDER_FREEING || l == MP_LENDER_DOMAINS ? -EINVAL : -EBUSY;
	}
	mp_crash_point();
	if (mp_domains_map(h, grain, order)) {
		/* A device may still reach it through a shared domain: the share keeps it until unmapped. */
		h->c->domains_held = 1;
		mp_crash_point();
		lender_set(&h->lender[grain], MP_LENDER_DOMAINS);
		mp_crash_point();
		h->owner[grain] = MP_OWNER_KEEP;
		mp_crash_point();
		return 0;
	}
	free_block(h, grain, order);
	return 0;
}

int mp_heap_unalloc(struct mp_heap *h, uint64_t grain)
{
	unsigned order;
	uint8_t owner;

	if (mp_heap_block(h, grain, &order, &owner) || !lender_cas(&h->lender[grain], MP_LENDER_NONE, MP_LENDER_FREEING))
		return -EINVAL;
	mp_crash_point();
	free_block(h, grain, order);
	return 0;
}

int mp_heap_free_held(struct mp_heap *h, uint64_t grain)
{
	unsigned order;
	uint8_t owner;

	if (mp_heap_block(h, grain, &order, &owner) || lender_get(&h->lender[grain]) != MP_LENDER_DOMAINS)
		return -EINVAL;
	/*
	 * The lender byte stays: the free commits with the state byte, and a
	 * holder killed before that leaves the block held, as it was (nothing
	 * without the lock touches a held block's lender byte).
	 */
	free_block(h, grain, order);
	return 0;
}

int mp_heap_lend(struct mp_heap *h, uint64_t grain, uint8_t to)
{
	unsigned order;
	uint8_t owner;

	if (mp_heap_block(h, grain, &order, &owner) || lender_get(&h->lender[grain]) == MP_LENDER_CACHED)
		return -EINVAL;
	/* Lender first: killed between, lender == owner, which the repair undoes. */
	if (owner == to || !lender_cas(&h->lender[grain], MP_LENDER_NONE, owner))
		return -EBUSY;
	mp_crash_point();
	h->owner[grain] = to;
	mp_crash_point();
	return 0;
}

int mp_heap_give_back(struct mp_heap *h, uint64_t grain)
{
	unsigned order;
	uint8_t owner, lender;

	lender = mp_heap_block(h, grain, &order, &owner) ? MP_LENDER_NONE : lender_get(&h->lender[grain]);
	if (lender == MP_LENDER_NONE || lender == MP_LENDER_CACHED || lender == MP_LENDER_FREEING)
		return -EINVAL;
	if (lender == MP_LENDER_GONE) {
		/* Its lender died: nobody holds it now. Killed before the free, it stays the borrower's, reaped with it. */
		lender_set(&h->lender[grain], MP_LENDER_NONE);
		mp_crash_point();
		return mp_heap_free(h, grain);
	}
	/* Owner first: killed between, lender == owner, which the repair finishes. */
	h->owner[grain] = lender;
	mp_crash_point();
	lender_set(&h->lender[grain], MP_LENDER_NONE);
	mp_crash_point();
	return 0;
}

int mp_heap_block_any(const struct mp_heap *h, uint64_t g, uint64_t *first, unsigned *order, bool *allocated)
{
	/* The block holding g starts at g with its low bits cleared, for some order: try each. */
	for (unsigned o = 0; o <= MP_MAX_ORDER && g < h->c->ngrains; o++) {
		uint64_t start = g & ~(order_grains(o) - 1);
		uint8_t s = h->state[start];

		if ((s & MP_BLOCK) && (s & MP_ORDER_MASK) >= o) {
			/* The first start met going down is g's block when it reaches g. */
			if (start + order_grains(s & MP_ORDER_MASK) <= g)
				return -ENOENT;
			*first = start;
			*order = s & MP_ORDER_MASK;
			*allocated = s & MP_ALLOCATED;
			return 0;
		}
	}
	return -ENOENT;
}

int mp_heap_block_of(const struct mp_heap *h, uint64_t g, uint64_t *first, unsigned *order)
{
	bool allocated;

	if (mp_heap_block_any(h, g, first, order, &allocated) || !allocated)
		return -ENOENT;
	return 0;
}

/*
 * The end of the block that holds grain @g, which starts no block: the
 * block's start is @g rounded down to its order, the first such rounding
 * up the orders that starts a block that long.
 */
static uint64_t enclosing_end(const struct mp_heap *h, uint64_t g)
{
	for (unsigned order = 1; order <= MP_MAX_ORDER; order++) {
		uint64_t base = g & ~(order_grains(order) - 1);
		uint8_t s = h->state[base];

		if ((s & MP_BLOCK) && (s & MP_ORDER_MASK) >= order && base + order_grains(s & MP_ORDER_MASK) > g)
			return base + order_grains(s & MP_ORDER_MASK);
	}
	return g + 1; /* torn (a repair's to mend): grain by grain, as before */
}

uint64_t mp_heap_free_owned(struct mp_heap *h, uint8_t owner)
{
	uint64_t freed = 0;

	for (uint64_t g = 0; g < h->c->ngrains;) {
		uint8_t s = h->state[g];
		uint64_t next = g + order_grains(s & MP_ORDER_MASK);

		/* Inside a free block a free below merged into: on from its end, not grain by grain. */
		if (!(s & MP_BLOCK)) {
			g = enclosing_end(h, g);
			continue;
		}
		if (!(s & MP_ALLOCATED)) {
			g = next;
			continue;
		}
		uint8_t l = lender_get(&h->lender[g]);

		if (l == owner) {
			/* Lent to a device by the one going: freed when the device gives it back. */
			lender_set(&h->lender[g], MP_LENDER_GONE);
			mp_crash_point();
		} else if (h->owner[g] == owner && (l < MP_MAX_PROCS || l == MP_OWNER_KEEP || l == MP_LENDER_GONE)) {
			/* A device going: what it borrowed goes back. */
			if (l == MP_LENDER_GONE)
				freed++;
			mp_heap_give_back(h, g);
		} else if (l == MP_LENDER_DOMAINS) {
			/* Freed while a shared domain maps it, half handed to the share: finished. */
			h->owner[g] = MP_OWNER_KEEP;
			mp_crash_point();
		} else if (h->owner[g] == owner) {
			/* Its own, cached or half freed by a process killed in the free: free now. */
			lender_set(&h->lender[g], MP_LENDER_NONE);
			mp_heap_free(h, g);
			freed += l != MP_LENDER_CACHED; /* a cached block was free to it: not an allocation lost */
			/* The merge may have grown a free block below g: go on from the end of g's block. */
		}
		g = next;
	}
	return freed;
}

int mp_heap_repair(struct mp_heap *h)
{
	struct mp_ctl *c = h->c;
	uint64_t free_grains = 0, blocks = 0, g;

	for (unsigned i = 0; i <= MP_MAX_ORDER; i++)
		c->free_head[i] = 0;
	for (g = 0; g < c->ngrains;) {
		uint8_t s = h->state[g];
		unsigned order = s & MP_ORDER_MASK;
		uint64_t len = order_grains(order);

		if (!(s & MP_BLOCK) || order > MP_MAX_ORDER || g & (len - 1) || g + len > c->ngrains)
			return err_detail(-EUCLEAN, IOVM_LOG_ERR, "shared heap: no block at grain %" PRIu64, g);
		/* What a killed process left inside the block: half-split buddies, swallowed starts. */
		memset(h->state + g + 1, 0, len - 1);
		if (s & MP_ALLOCATED) {
			/* A loan half made or half ended (lender == owner), a free half done: neither happened. */
			uint8_t l = lender_get(&h->lender[g]);

			if (l == h->owner[g] || l == MP_LENDER_FREEING)
				lender_set(&h->lender[g], MP_LENDER_NONE);
			/* Handed to the share halfway: finished (its flag was set first). */
			if (l == MP_LENDER_DOMAINS) {
				h->owner[g] = MP_OWNER_KEEP;
				c->domains_held = 1;
			}
			blocks++;
		} else {
			list_push(h, g, order);
			free_grains += len;
		}
		g += len;
	}
	c->free_grains = free_grains;
	c->nr_blocks = blocks;
	return 0;
}

int mp_heap_check(const struct mp_heap *h)
{
	const struct mp_ctl *c = h->c;
	uint64_t free_grains = 0, blocks = 0, listed = 0;

	for (uint64_t g = 0; g < c->ngrains;) {
		uint8_t s = h->state[g];
		unsigned order = s & MP_ORDER_MASK;
		uint64_t len = order_grains(order);

		if (!(s & MP_BLOCK) || order > MP_MAX_ORDER || g & (len - 1) || g + len > c->ngrains)
			return err_detail(-EUCLEAN, IOVM_LOG_ERR, "shared heap: no block at grain %" PRIu64, g);
		/* No block start inside: the bytes after the first all zero (the one after each equal to it). */
		if (len > 1 && (h->state[g + 1] || (len > 2 && memcmp(&h->state[g + 1], &h->state[g + 2], len - 2))))
			return err_detail(-EUCLEAN, IOVM_LOG_ERR,
					  "shared heap: a block start inside the block at grain %" PRIu64, g);
		if (s & MP_ALLOCATED) {
			uint8_t o = h->owner[g], l = lender_get(&h->lender[g]);
			bool lent = l < MP_MAX_PROCS || l == MP_OWNER_KEEP || l == MP_LENDER_GONE;
			bool held = l == MP_LENDER_DOMAINS;
			bool trim = l == MP_LENDER_TRIM && o == MP_OWNER_KEEP && c->trim_grain == g;

			if (l == o || l == MP_LENDER_FREEING ||
			    (!lent && !held && !trim && l != MP_LENDER_NONE && l != MP_LENDER_CACHED) ||
			    (held && (o != MP_OWNER_KEEP || !c->domains_held)) ||
			    (o != MP_OWNER_KEEP && o >= MP_MAX_PROCS) || (lent && o == MP_OWNER_KEEP) ||
			    (l == MP_LENDER_CACHED && o >= MP_MAX_PROCS))
				return err_detail(-EUCLEAN, IOVM_LOG_ERR,
						  "shared heap: the block at grain %" PRIu64 " has owner %u and lender %u", g,
						  (unsigned)o, (unsigned)l);
			blocks++;
		} else {
			uint64_t buddy = g ^ len;

			free_grains += len;
			if (order < MP_MAX_ORDER && buddy + len <= c->ngrains && h->state[buddy] == (MP_BLOCK | order))
				return err_detail(-EUCLEAN, IOVM_LOG_ERR,
						  "shared heap: free buddies at grains %" PRIu64 " and %" PRIu64
						  " were not merged", g, buddy);
		}
		g += len;
	}
	for (unsigned order = 0; order <= MP_MAX_ORDER; order++) {
		uint64_t prev = 0;

		for (uint64_t e = c->free_head[order]; e; e = h->next[e - 1]) {
			if (e > c->ngrains || h->state[e - 1] != (MP_BLOCK | order) || h->prev[e - 1] != prev ||
			    ++listed > c->ngrains)
				return err_detail(-EUCLEAN, IOVM_LOG_ERR,
						  "shared heap: free list %u is broken at grain %" PRIu64, order, e - 1);
			prev = e;
		}
	}
	if (free_grains != c->free_grains || blocks != c->nr_blocks)
		return err_detail(-EUCLEAN, IOVM_LOG_ERR,
				  "shared heap: counts disagree (free %" PRIu64 " grains, counted %" PRIu64
				  "; blocks %" PRIu64 ", counted %" PRIu64 ")",
				  c->free_grains, free_grains, c->nr_blocks, blocks);
	/* Every free block listed exactly once: as many listed entries as free blocks walked. */
	{
		uint64_t free_blocks = 0;

		for (uint64_t g = 0; g < c->ngrains; g += order_grains(h->state[g] & MP_ORDER_MASK))
			free_blocks += !(h->state[g] & MP_ALLOCATED);
		if (free_blocks != listed)
			return err_detail(-EUCLEAN, IOVM_LOG_ERR,
					  "shared heap: %" PRIu64 " free blocks, %" PRIu64 " listed", free_blocks,
					  listed);
	}
	return 0;
}
