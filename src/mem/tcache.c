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
 */
#include <errno.h>
#include <stdlib.h>

#include "base/fault_inject.h"
#include "base/tlscache.h"
#include "mem/mem_internal.h"

struct tcache_bin {
	void *head;     /* objects linked through word 0; word 1 holds the free stamp */
	uint32_t count;
	uint32_t max;   /* the class's cache_max, kept here to spare a lookup per free */
};

struct mem_tcache {
	struct tls_cache base;
	/* Written by the owning thread only; read racily by statistics. */
	uint64_t allocs, frees, hits;
	struct tcache_bin bins[MEM_NR_CLASSES];
};

static struct tls_kind tcache_kind = TLS_KIND_INIT;
static __thread struct tls_slots tcache_slots __tls_ie;

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

/* The owner lives: its objects go back to their slabs. Runs under the tlscache lock. */
static void tcache_retire(struct tls_owner *o, struct tls_cache *c)
{
	struct mem_tcache *tc = container_of(c, struct mem_tcache, base);
	struct mem_space *ms = space_of(o);

	for (unsigned k = 0; k < MEM_NR_CLASSES; k++)
		if (tc->bins[k].count)
			slab_flush(ms, k, tc->bins[k].head, tc->bins[k].count);
	atomic_fetch_add_explicit(&ms->retired_allocs, tc->allocs, memory_order_relaxed);
	atomic_fetch_add_explicit(&ms->retired_frees, tc->frees, memory_order_relaxed);
	atomic_fetch_add_explicit(&ms->retired_hits, tc->hits, memory_order_relaxed);
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

static inline struct mem_tcache *tcache_get(struct mem_space *ms)
{
	struct tls_cache *c = tls_cache_get(&tcache_kind, &tcache_slots, &ms->tc_owner);

	return c ? container_of(c, struct mem_tcache, base) : NULL;
}

static __noinline void *tcache_refill(struct mem_space *ms, struct mem_tcache *tc, unsigned cls)
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
				return bin->head;
			}
		}
	}
	return NULL;
}

void *tcache_alloc(struct mem_space *ms, unsigned cls)
{
	struct mem_tcache *tc = tcache_get(ms);
	struct tcache_bin *bin;
	uintptr_t *obj;

	if (unlikely(!tc))
		return NULL;
	bin = &tc->bins[cls];
	obj = bin->head;
	if (likely(obj)) {
		tc->hits++;
	} else {
		obj = tcache_refill(ms, tc, cls);
		if (!obj)
			return NULL;
	}
	bin->head = (void *)obj[0];
	bin->count--;
	obj[1] = 0; /* no stamp on a live object */
	tc->allocs++;
	return obj;
}

bool tcache_free(struct mem_space *ms, void *ptr, unsigned cls)
{
	struct mem_tcache *tc = tcache_get(ms);
	uintptr_t *obj = ptr;
	struct tcache_bin *bin;
	uint32_t max;

	if (unlikely(!tc))
		return false;
	bin = &tc->bins[cls];
	obj[0] = (uintptr_t)bin->head;
	obj[1] = dfree_key(ms, obj);
	bin->head = obj;
	tc->frees++;
	max = bin->max;
	if (unlikely(++bin->count > max)) {
		/* Give the older half back: walk past the newer half first. */
		unsigned keep = max / 2;
		uintptr_t *tail = bin->head;

		for (unsigned i = 1; i < keep; i++)
			tail = (uintptr_t *)tail[0];
		slab_flush(ms, cls, (void *)tail[0], bin->count - keep);
		tail[0] = 0;
		bin->count = keep;
	}
	return true;
}

struct tcache_sums {
	uint64_t allocs, frees, hits;
};

static void sum_cache(struct tls_cache *c, void *arg)
{
	struct mem_tcache *tc = container_of(c, struct mem_tcache, base);
	struct tcache_sums *s = arg;

	s->allocs += tc->allocs;
	s->frees += tc->frees;
	s->hits += tc->hits;
}

void tcache_stats(struct mem_space *ms, uint64_t *allocs, uint64_t *frees, uint64_t *hits)
{
	struct tcache_sums s = { 0 };

	tls_owner_for_each(&ms->tc_owner, sum_cache, &s);
	*allocs = s.allocs + atomic_load_explicit(&ms->retired_allocs, memory_order_relaxed);
	*frees = s.frees + atomic_load_explicit(&ms->retired_frees, memory_order_relaxed);
	*hits = s.hits + atomic_load_explicit(&ms->retired_hits, memory_order_relaxed);
}
