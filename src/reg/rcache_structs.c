/* SPDX-License-Identifier: MIT */
/*
 * rcache_structs.c - where a registration cache's region structs come
 * from: chunks of RC_CHUNK, made and made again (each struct is as it was
 * left, cleared only where a miss first takes it), kept as long as their
 * cache (a lock-free reader may stand on a struct whose region went), then
 * kept by the context for its next caches (reg_space.rc_chunks) and freed
 * when it closes.
 */
#include <errno.h>
#include <stdlib.h>

#include "base/fault_inject.h"
#include "reg/rcache_internal.h"

/*
 * A chunk of structs to make regions of: one a destroyed cache of the
 * context left (reg_space.rc_chunks; freed, glibc gave them back to the
 * kernel, and the next cache's misses paid a page fault every seventh),
 * else a new one. Needs cache.lock.
 */
static int chunk_new(struct iovm_rcache *c)
{
	struct reg_space *rs = c->rs;
	struct rc_chunk *ch = NULL;

	lock_assert_held(&c->lock);
	mutex_lock(&rs->lock);
	if (!list_empty(&rs->rc_chunks)) {
		ch = list_entry(rs->rc_chunks.next, struct rc_chunk, link);
		list_del(&ch->link);
	}
	mutex_unlock(&rs->lock);
	/* Cache-line aligned (what a reader reads is one line); not cleared: each struct is as it is first used. */
	if (!ch)
		ch = fi_aligned_alloc(_Alignof(struct rc_chunk), sizeof(*ch));
	if (!ch)
		return -ENOMEM;
	list_add(&c->chunks, &ch->link);
	c->fresh = ch->r;
	c->nr_fresh = RC_CHUNK;
	return 0;
}

/* A region struct, from the spares or a chunk. Needs cache.lock. */
struct rc_region *region_new(struct iovm_rcache *c)
{
	struct rc_region *r;

	lock_assert_held(&c->lock);
	if (list_empty(&c->spare)) {
		if (!c->nr_fresh && chunk_new(c))
			return NULL;
		r = c->fresh++;
		c->nr_fresh--;
		/*
		 * Made: the fields a struct keeps for its whole life, out of the
		 * index (odd), idle, in its first life. The range, rights and
		 * list words are written as a miss registers and files it, and
		 * the MR by mr_init(). (Stores, not memset(): its string
		 * instruction costs a miss more than these.)
		 */
		r->cache = c;
		r->mr.rc = r;
		r->slot = (uint16_t)(c->nr_structs++ % HELD);
		r->level = r->nr_links = 0;
		r->live = false;
		atomic_init(&r->gen, 1);
		atomic_init(&r->zombie, false);
		atomic_init(&r->shared, 0);
		atomic_init(&r->used, 0);
		atomic_init(&r->life, 0);
		return r;
	}
	r = list_entry(c->spare.next, struct rc_region, lru);
	list_del(&r->lru);
	IOVM_ASSERT(!r->live && (atomic_load_explicit(&r->gen, memory_order_relaxed) & 1));
	return r;
}

void chunks_give_back(struct iovm_rcache *c)
{
	struct reg_space *rs = c->rs;

	lock_assert_held(&c->lock);
	mutex_lock(&rs->lock);
	while (!list_empty(&c->chunks)) {
		struct rc_chunk *ch = list_entry(c->chunks.next, struct rc_chunk, link);

		list_del(&ch->link);
		list_add(&rs->rc_chunks, &ch->link);
	}
	c->nr_fresh = 0;
	mutex_unlock(&rs->lock);
}

void chunks_free_all(struct reg_space *rs)
{
	mutex_lock(&rs->lock);
	while (!list_empty(&rs->rc_chunks)) {
		struct rc_chunk *ch = list_entry(rs->rc_chunks.next, struct rc_chunk, link);

		list_del(&ch->link);
		free(ch);
	}
	mutex_unlock(&rs->lock);
}
