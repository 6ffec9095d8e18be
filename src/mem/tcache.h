/* SPDX-License-Identifier: MIT */
/*
 * tcache.h - the fast paths of the per-thread caches of small objects
 * (tcache.c owns the caches and their slow paths): inline, so that an
 * iovm_dma_alloc() or iovm_dma_free() served by the calling thread's cache
 * makes no call, takes no lock, and executes no atomic read-modify-write.
 *
 * Only heap.c includes it.
 */
#ifndef IOVM_MEM_TCACHE_H
#define IOVM_MEM_TCACHE_H

#include <stddef.h>

#include "base/counter.h"
#include "base/tlscache.h"
#include "mem/mem_internal.h"

struct tcache_bin {
	void *head;     /* objects linked through word 0; word 1 holds the free stamp */
	uint32_t count;
	uint32_t max;   /* the class's cache_max, kept here to spare a lookup per free */
};

struct mem_tcache {
	struct tls_cache base;
	/*
	 * Written by the owning thread only (counter.h), read by statistics.
	 * Misses are allocations a refill served: hits are allocs - misses,
	 * so that a hit counts once, not twice.
	 */
	_Atomic uint64_t allocs, frees, misses;
	struct tcache_bin bins[MEM_NR_CLASSES];
};
/* tcache_get() turns a slot's cache into its tcache by a cast: NULL stays NULL. */
static_assert(offsetof(struct mem_tcache, base) == 0, "the tls_cache comes first");

/* The calling thread's slots of the tcache kind (tlscache.h). */
extern __thread struct tls_slots mem_tcache_slots __tls_ie;

/* The calling thread's cache of @ms, made on first use; NULL when none can be made. */
struct mem_tcache *tcache_get_slow(struct mem_space *ms);
/* An object of class @cls for an empty bin, taken from the slabs; NULL when there is none. */
void *tcache_refill(struct mem_space *ms, struct mem_tcache *tc, unsigned cls);
/* Give the older half of a bin that went over its max back to the slabs. */
void tcache_overflow(struct mem_space *ms, struct tcache_bin *bin, unsigned cls);

mem_fast_inline struct mem_tcache *tcache_get(struct mem_space *ms)
{
	if (likely(mem_tcache_slots.s[0].id == ms->tc_owner.id))
		return (struct mem_tcache *)mem_tcache_slots.s[0].c;
	return tcache_get_slow(ms);
}

/* An object of class @cls from the calling thread's cache; NULL when none is to be had. */
mem_fast_inline void *tcache_alloc(struct mem_space *ms, unsigned cls)
{
	struct mem_tcache *tc = tcache_get(ms);
	struct tcache_bin *bin;
	uintptr_t *obj;

	if (unlikely(!tc))
		return NULL;
	bin = &tc->bins[cls];
	obj = bin->head;
	if (unlikely(!obj)) {
		obj = tcache_refill(ms, tc, cls);
		if (!obj)
			return NULL;
	}
	bin->head = (void *)obj[0];
	bin->count--;
	obj[1] = 0; /* no stamp on a live object */
	counter_add(&tc->allocs, 1);
	return obj;
}

/* Put @ptr, a live object of class @cls, in the calling thread's cache; false when it has none. */
mem_fast_inline bool tcache_free(struct mem_space *ms, void *ptr, unsigned cls)
{
	struct mem_tcache *tc = tcache_get(ms);
	uintptr_t *obj = ptr;
	struct tcache_bin *bin;

	if (unlikely(!tc))
		return false;
	bin = &tc->bins[cls];
	obj[0] = (uintptr_t)bin->head;
	obj[1] = dfree_key(ms, obj);
	bin->head = obj;
	counter_add(&tc->frees, 1);
	if (unlikely(++bin->count > bin->max))
		tcache_overflow(ms, bin, cls);
	return true;
}

#endif /* IOVM_MEM_TCACHE_H */
