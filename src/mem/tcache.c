/* SPDX-License-Identifier: MIT */
/*
 * tcache.c - per-thread caches of small objects: an allocation or a free
 * that hits the cache takes no lock and no atomic instruction.
 *
 * The caches are per-thread caches of the heap in the sense of
 * base/tlscache.h: found through thread-local slots keyed by the heap, freed
 * when the heap goes, given back when their thread exits.
 *
 * A cache serves requests with the context's default placement only; its
 * objects may come from any list of the default set (2 MiB, or 4 KiB once
 * hugepages ran out).
 *
 * The fast paths, tcache_alloc() and tcache_free(), are inline in
 * mem/tcache.h; this file owns the caches' life, refills, overflows and
 * statistics.
 */
#include <errno.h>
#include <stdlib.h>

#include "base/fault_inject.h"
#include "base/tlscache.h"
#include "mem/tcache.h"

static struct tls_kind tcache_kind = TLS_KIND_INIT;
__thread struct tls_slots mem_tcache_slots __tls_ie;

static struct mem_space *space_of(struct tls_owner *o)
{
	return container_of(o, struct mem_space, tc_owner);
}

static struct tls_cache *tcache_create(struct tls_owner *o)
{
	struct mem_tcache *tc = fi_calloc(1, sizeof(*tc));

	(void)o;
	if (!tc)
		return NULL;
	for (unsigned c = 0; c < MEM_NR_CLASSES; c++)
		tc->bins[c].max = class_cache_max(c);
	return &tc->base;
}

/* Allocations the cache served without a refill; read by its thread, or racily by statistics. */
static uint64_t cache_hits(const struct mem_tcache *tc)
{
	uint64_t misses = counter_read(&tc->misses), allocs = counter_read(&tc->allocs);

	/* A reader on another thread may see a miss before the allocation it counts. */
	return allocs > misses ? allocs - misses : 0;
}

/* The owner lives: its objects go back to their slabs. Runs under the tlscache lock. */
static void tcache_retire(struct tls_owner *o, struct tls_cache *c)
{
	struct mem_tcache *tc = container_of(c, struct mem_tcache, base);
	struct mem_space *ms = space_of(o);

	for (unsigned k = 0; k < MEM_NR_CLASSES; k++)
		if (tc->bins[k].count)
			slab_flush(ms, k, tc->bins[k].head, tc->bins[k].count);
	atomic_fetch_add_explicit(&ms->retired_allocs, counter_read(&tc->allocs), memory_order_relaxed);
	atomic_fetch_add_explicit(&ms->retired_frees, counter_read(&tc->frees), memory_order_relaxed);
	atomic_fetch_add_explicit(&ms->retired_hits, cache_hits(tc), memory_order_relaxed);
	free(tc);
}

/* The heap is going: its memory, objects included, goes with it. */
static void tcache_discard(struct tls_cache *c)
{
	free(container_of(c, struct mem_tcache, base));
}

void tcache_register_space(struct mem_space *ms)
{
	ms->tc_owner.create = tcache_create;
	ms->tc_owner.retire = tcache_retire;
	ms->tc_owner.discard = tcache_discard;
	tls_owner_register(&ms->tc_owner);
}

void tcache_destroy_all(struct mem_space *ms)
{
	tls_owner_unregister(&ms->tc_owner);
}

struct mem_tcache *tcache_get_slow(struct mem_space *ms)
{
	struct tls_cache *c = tls_cache_get(&tcache_kind, &mem_tcache_slots, &ms->tc_owner);

	return c ? container_of(c, struct mem_tcache, base) : NULL;
}

void *tcache_refill(struct mem_space *ms, struct mem_tcache *tc, unsigned cls)
{
	struct tcache_bin *bin = &tc->bins[cls];

	/* A refill takes locks a memory event callback's caller already holds. */
	if (event_in_callback())
		return NULL;
	for (int pass = 0; pass < 2; pass++) {
		for (unsigned i = 0; i < ms->nr_pref; i++) {
			struct mem_seglist *sl = mem_list_get(ms, ms->pref[i], ms->default_node_slot);
			unsigned want;
			int got;

			if (!sl)
				continue;
			want = MAX(sl->classes[cls].cache_max / 2, 1);
			got = slab_refill(sl, cls, pass || seglist_may_grow(sl), &bin->head, want);
			if (got > 0) {
				bin->count += (uint32_t)got;
				counter_add(&tc->misses, 1);
				return bin->head;
			}
		}
	}
	return NULL;
}

void tcache_overflow(struct mem_space *ms, struct tcache_bin *bin, unsigned cls)
{
	/* Give the older half back: walk past the newer half first. */
	unsigned keep = bin->max / 2;
	uintptr_t *tail = bin->head;

	for (unsigned i = 1; i < keep; i++)
		tail = (uintptr_t *)tail[0];
	slab_flush(ms, cls, (void *)tail[0], bin->count - keep);
	tail[0] = 0;
	bin->count = keep;
}

struct tcache_sums {
	uint64_t allocs, frees, hits;
};

static void sum_cache(struct tls_cache *c, void *arg)
{
	struct mem_tcache *tc = container_of(c, struct mem_tcache, base);
	struct tcache_sums *s = arg;

	s->allocs += counter_read(&tc->allocs);
	s->frees += counter_read(&tc->frees);
	s->hits += cache_hits(tc);
}

void tcache_stats(struct mem_space *ms, uint64_t *allocs, uint64_t *frees, uint64_t *hits)
{
	struct tcache_sums s = { 0 };

	tls_owner_for_each(&ms->tc_owner, sum_cache, &s);
	*allocs = s.allocs + atomic_load_explicit(&ms->retired_allocs, memory_order_relaxed);
	*frees = s.frees + atomic_load_explicit(&ms->retired_frees, memory_order_relaxed);
	*hits = s.hits + atomic_load_explicit(&ms->retired_hits, memory_order_relaxed);
}
