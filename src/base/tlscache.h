/* SPDX-License-Identifier: MIT */
/*
 * tlscache.h - per-thread caches of an owner (a heap, an IOVA allocator),
 * found without a lock.
 *
 * A thread holds a few slots per kind of cache, keyed by the owner's id. Ids
 * are never reused, so a slot whose owner is gone never matches again, and
 * its cache, freed when the owner went, is never touched. Every cache is
 * also on its owner's list, under one process-wide lock: an owner going away
 * frees its threads' caches; a thread exiting gives its caches back to the
 * owners still alive.
 */
#ifndef IOVM_BASE_TLSCACHE_H
#define IOVM_BASE_TLSCACHE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "base/compiler.h"
#include "base/list.h"

struct tls_cache;

struct tls_owner {
	uint64_t id;              /* set by tls_owner_register(); never 0, never reused */
	struct list_node live;    /* under the tlscache lock */
	struct list_node caches;  /* under the tlscache lock */
	/* Give @c's contents back to the owner and free it. Runs under the tlscache lock. */
	void (*retire)(struct tls_owner *o, struct tls_cache *c);
	/* Free @c without giving anything back: the owner is going away. */
	void (*discard)(struct tls_cache *c);
	/* Make a cache for the calling thread; NULL when memory is short. */
	struct tls_cache *(*create)(struct tls_owner *o);
};

/* Embedded at the start of each cache. */
struct tls_cache {
	struct tls_owner *owner;
	struct list_node link; /* in owner->caches, under the tlscache lock */
};

#define TLS_SLOTS 4

struct tls_slots {
	struct {
		uint64_t id;
		struct tls_cache *c;
	} s[TLS_SLOTS];
};

/* A kind of cache: its thread-exit hook. Define one per kind with TLS_KIND_INIT. */
struct tls_kind {
	_Atomic int ready;
	pthread_key_t key;
};
#define TLS_KIND_INIT { 0, 0 }

void tls_owner_register(struct tls_owner *o);
/* Frees every thread's cache of @o (discard): @o's memory is about to go. */
void tls_owner_unregister(struct tls_owner *o);

struct tls_cache *tls_cache_get_slow(struct tls_kind *kind, struct tls_slots *slots,
				     struct tls_owner *o);

/* The calling thread's cache of @o, made on first use; NULL when none can be made. */
static inline struct tls_cache *tls_cache_get(struct tls_kind *kind, struct tls_slots *slots,
					      struct tls_owner *o)
{
	if (likely(slots->s[0].id == o->id))
		return slots->s[0].c;
	return tls_cache_get_slow(kind, slots, o);
}

/*
 * Run @fn on every live cache of @o, under the tlscache lock (statistics).
 * The lock keeps the caches from going, not their threads from writing
 * them: what @fn reads of a cache its thread changes without a lock must
 * be an atomic (relaxed is enough for a count).
 */
void tls_owner_for_each(struct tls_owner *o, void (*fn)(struct tls_cache *c, void *arg), void *arg);

#endif /* IOVM_BASE_TLSCACHE_H */
