/* SPDX-License-Identifier: MIT */
/*
 * tcache.c - per-thread caches of small objects: an allocation or a free
 * that hits the cache takes no lock and touches no shared cache line but
 * the slab's bitmap word.
 *
 * A thread keeps a cache for each of up to four contexts, in thread-local
 * slots keyed by the context's id. Ids are never reused, so a slot whose
 * context was closed never matches again and its cache, freed at close, is
 * never touched. Each cache is also on its context's list, under
 * tcache_global_lock, so that closing the context frees it and a thread
 * exiting gives its objects back to a context that is still open.
 *
 * A cache serves requests with the context's default placement only; its
 * objects may come from any list of the default set (2 MiB, or 4 KiB once
 * hugepages ran out).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "mem/mem_internal.h"

#define TCACHE_SLOTS 4

struct tcache_bin {
	void *head;     /* objects linked through word 0; word 1 holds the free stamp */
	uint32_t count;
	uint32_t max;   /* the class's cache_max, kept here to spare a lookup per free */
};

struct mem_tcache {
	uint64_t ms_id;
	struct mem_space *ms;
	struct list_node link; /* under tcache_global_lock: in mem_space.tcaches */
	/* Written by the owning thread only; read racily by statistics. */
	uint64_t allocs, frees, hits;
	struct tcache_bin bins[MEM_NR_CLASSES];
};

struct tcache_slot {
	uint64_t ms_id;
	struct mem_tcache *tc;
};

static __thread struct tcache_slot tls_tcache[TCACHE_SLOTS] __tls_ie;

/* Protects every context's tcaches list and retired counters, and live_spaces. */
static pthread_mutex_t tcache_global_lock = PTHREAD_MUTEX_INITIALIZER;
static struct list_node live_spaces = LIST_HEAD_INIT(live_spaces);
static pthread_key_t tcache_key;
static pthread_once_t tcache_key_once = PTHREAD_ONCE_INIT;

/* Needs tcache_global_lock. */
static struct mem_space *live_space(uint64_t id)
{
	struct list_node *n;

	list_for_each(n, &live_spaces) {
		struct mem_space *ms = list_entry(n, struct mem_space, live_link);

		if (ms->id == id)
			return ms;
	}
	return NULL;
}

/* Give a cache's objects back and free it. Needs tcache_global_lock. */
static void tcache_retire(struct mem_space *ms, struct mem_tcache *tc)
{
	for (unsigned c = 0; c < MEM_NR_CLASSES; c++)
		if (tc->bins[c].count)
			slab_flush(ms, c, tc->bins[c].head, tc->bins[c].count);
	ms->tcache_retired_allocs += tc->allocs;
	ms->tcache_retired_frees += tc->frees;
	ms->tcache_retired_hits += tc->hits;
	list_del(&tc->link);
	free(tc);
}

static void tcache_thread_exit(void *unused)
{
	(void)unused;
	pthread_mutex_lock(&tcache_global_lock);
	for (unsigned i = 0; i < TCACHE_SLOTS; i++) {
		struct tcache_slot *slot = &tls_tcache[i];
		struct mem_space *ms = slot->ms_id ? live_space(slot->ms_id) : NULL;

		if (ms)
			tcache_retire(ms, slot->tc);
		slot->ms_id = 0;
		slot->tc = NULL;
	}
	pthread_mutex_unlock(&tcache_global_lock);
}

static void tcache_key_create(void)
{
	pthread_key_create(&tcache_key, tcache_thread_exit);
}

void tcache_register_space(struct mem_space *ms)
{
	pthread_once(&tcache_key_once, tcache_key_create);
	pthread_mutex_lock(&tcache_global_lock);
	list_add(&live_spaces, &ms->live_link);
	pthread_mutex_unlock(&tcache_global_lock);
}

void tcache_destroy_all(struct mem_space *ms)
{
	struct list_node *n, *t;

	pthread_mutex_lock(&tcache_global_lock);
	list_del(&ms->live_link);
	/* The objects die with the context's memory: only the caches are freed. */
	list_for_each_safe(n, t, &ms->tcaches) {
		list_del(n);
		free(list_entry(n, struct mem_tcache, link));
	}
	pthread_mutex_unlock(&tcache_global_lock);
}

static __noinline struct mem_tcache *tcache_get_slow(struct mem_space *ms)
{
	struct tcache_slot found = { 0 };
	unsigned i;

	for (i = 1; i < TCACHE_SLOTS; i++) {
		if (tls_tcache[i].ms_id == ms->id) {
			found = tls_tcache[i];
			break;
		}
	}
	if (!found.tc) {
		struct tcache_slot *last = &tls_tcache[TCACHE_SLOTS - 1];
		struct mem_tcache *tc = calloc(1, sizeof(*tc));

		if (!tc)
			return NULL;
		tc->ms_id = ms->id;
		tc->ms = ms;
		for (unsigned c = 0; c < MEM_NR_CLASSES; c++)
			tc->bins[c].max = class_cache_max(c);
		pthread_mutex_lock(&tcache_global_lock);
		/* The least recently used slot makes room; its cache goes back if its context lives. */
		if (last->ms_id) {
			struct mem_space *old = live_space(last->ms_id);

			if (old)
				tcache_retire(old, last->tc);
		}
		list_add(&ms->tcaches, &tc->link);
		pthread_mutex_unlock(&tcache_global_lock);
		pthread_setspecific(tcache_key, tls_tcache);
		found = (struct tcache_slot){ .ms_id = ms->id, .tc = tc };
		i = TCACHE_SLOTS - 1;
	}
	/* Most recently used first. */
	for (; i > 0; i--)
		tls_tcache[i] = tls_tcache[i - 1];
	tls_tcache[0] = found;
	return found.tc;
}

static inline struct mem_tcache *tcache_get(struct mem_space *ms)
{
	if (likely(tls_tcache[0].ms_id == ms->id))
		return tls_tcache[0].tc;
	return tcache_get_slow(ms);
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

void tcache_stats(struct mem_space *ms, uint64_t *allocs, uint64_t *frees, uint64_t *hits)
{
	struct list_node *n;

	pthread_mutex_lock(&tcache_global_lock);
	*allocs = ms->tcache_retired_allocs;
	*frees = ms->tcache_retired_frees;
	*hits = ms->tcache_retired_hits;
	list_for_each(n, &ms->tcaches) {
		struct mem_tcache *tc = list_entry(n, struct mem_tcache, link);

		*allocs += tc->allocs;
		*frees += tc->frees;
		*hits += tc->hits;
	}
	pthread_mutex_unlock(&tcache_global_lock);
}
