/* SPDX-License-Identifier: MIT */
/*
 * iova.c - the gap tree, its per-thread magazines and depots, and stealing
 * cached IOVAs back for a reservation (see iova.h for the protocol).
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "base/check.h"
#include "base/compiler.h"
#include "base/fault_inject.h"
#include "base/lock.h"
#include "base/counter.h"
#include "iommu/iova.h"
#include "os/membarrier.h"

struct iova_tcache {
	struct tls_cache base;
	/* Its thread's, set around each use of the magazines (relaxed; see iova.h). */
	_Atomic bool busy;
	struct mutex lock;      /* the magazines, while a stealer is at work */
	/* Its thread's; a stealer's while it holds @lock and the thread is not busy. */
	struct iova_mag *loaded[IOVA_CACHE_ORDERS];
	struct iova_mag *prev[IOVA_CACHE_ORDERS];
	/* Pages in loaded and prev, written with them; read by iova_stats() (never the magazines). */
	_Atomic uint64_t cached;
	/* Written by its thread only; read by iova_stats(). */
	_Atomic uint64_t hits;
};

static struct tls_kind iova_kind = TLS_KIND_INIT;
static __thread struct tls_slots iova_slots __tls_ie;

static struct iova_alloc *alloc_of(struct tls_owner *o)
{
	return container_of(o, struct iova_alloc, owner);
}

/* Needs the lock. */
static int tree_alloc(struct iova_alloc *a, uint64_t npages, uint64_t align, uint64_t *pfn)
{
	struct range_req q = {
		.len = npages,
		.align = align,
		.lo = a->base_pfn,
		.hi = a->limit_pfn,
		.topdown = true,
	};

	int ret;

	lock_assert_held(&a->lock);
	ret = ra_alloc(&a->tree, &q, pfn);
	if (ret)
		/* Memory short for the tree's nodes is not the IOVA space full. */
		return ret == -ENOMEM ? ret : -ENOSPC;
	counter_add(&a->allocated, npages);
	return 0;
}

/*
 * Give [pfn, +npages), out of the tree, back to it. Needs the lock. A
 * double free is an iovm bug (the page table said it was mapped); -ENOMEM
 * for a tree node leaks the range, and is survived.
 */
static int tree_free(struct iova_alloc *a, uint64_t pfn, uint64_t npages)
{
	int ret;

	lock_assert_held(&a->lock);
	ret = ra_free(&a->tree, pfn, npages);
	if (IOVM_WARN_ON(ret == -EINVAL))
		return ret;
	if (!ret) {
		IOVM_ASSERT(counter_read(&a->allocated) >= npages);
		counter_add(&a->allocated, -npages);
	}
	return ret;
}

/* Give a magazine's IOVAs back to the tree. Needs the lock. */
static void mag_drain(struct iova_alloc *a, struct iova_mag *m, unsigned order)
{
	lock_assert_held(&a->lock);
	IOVM_ASSERT(m->size <= IOVA_MAG_SIZE);
	for (uint64_t i = 0; i < m->size; i++)
		tree_free(a, m->pfns[i], UINT64_C(1) << order);
	m->size = 0;
}

static struct tls_cache *tcache_create(struct tls_owner *o)
{
	struct iova_tcache *t = fi_calloc(1, sizeof(*t));

	(void)o;
	if (!t)
		return NULL;
	mutex_init(&t->lock);
	for (unsigned k = 0; k < IOVA_CACHE_ORDERS; k++) {
		t->loaded[k] = fi_calloc(1, sizeof(struct iova_mag));
		t->prev[k] = fi_calloc(1, sizeof(struct iova_mag));
		if (!t->loaded[k] || !t->prev[k]) {
			for (unsigned j = 0; j <= k; j++) {
				free(t->loaded[j]);
				free(t->prev[j]);
			}
			mutex_destroy(&t->lock);
			free(t);
			return NULL;
		}
	}
	return &t->base;
}

static void tcache_discard(struct tls_cache *c)
{
	struct iova_tcache *t = container_of(c, struct iova_tcache, base);

	for (unsigned k = 0; k < IOVA_CACHE_ORDERS; k++) {
		free(t->loaded[k]);
		free(t->prev[k]);
	}
	mutex_destroy(&t->lock);
	free(t);
}

/* A thread exits: its IOVAs go back to the tree. Runs under the tlscache lock. */
static void tcache_retire(struct tls_owner *o, struct tls_cache *c)
{
	struct iova_tcache *t = container_of(c, struct iova_tcache, base);
	struct iova_alloc *a = alloc_of(o);

	mutex_lock(&a->lock);
	for (unsigned k = 0; k < IOVA_CACHE_ORDERS; k++) {
		mag_drain(a, t->loaded[k], k);
		mag_drain(a, t->prev[k], k);
	}
	mutex_unlock(&a->lock);
	atomic_fetch_add_explicit(&a->cache_hits, counter_read(&t->hits), memory_order_relaxed);
	tcache_discard(c);
}

static int by_start(const void *x, const void *y)
{
	uint64_t a = iova_val(((const struct iova_range *)x)->start);
	uint64_t b = iova_val(((const struct iova_range *)y)->start);

	return a < b ? -1 : a > b;
}

int iova_init(struct iova_alloc *a, iova_t window, uint64_t len, const struct iova_range *reserved,
	      unsigned nr_reserved)
{
	uint64_t base = iova_val(window), limit = base + len;
	int ret;

	/* The window ends below 2^64: its limit is a page frame number like any other. */
	if (!is_aligned(base | len, SZ_4K) || !len || len > UINT64_MAX - base)
		return -EINVAL;
	memset(a, 0, sizeof(*a));
	mutex_init(&a->lock);
	mutex_init(&a->steal_lock);
	ra_init(&a->tree);
	a->base_pfn = base >> 12;
	a->limit_pfn = limit >> 12;
	ret = ra_free(&a->tree, a->base_pfn, a->limit_pfn - a->base_pfn);
	a->holes = nr_reserved ? fi_calloc(nr_reserved, sizeof(*a->holes)) : NULL;
	if (nr_reserved && !a->holes)
		ret = -ENOMEM;
	for (unsigned i = 0; !ret && i < nr_reserved; i++) {
		uint64_t start = iova_val(reserved[i].start), hlen = reserved[i].len, last, s, e;

		if (!hlen)
			continue;
		/* The last byte: up to 2^64 - 1 for a hole that ends at 2^64 (or would run past it). */
		last = hlen - 1 > UINT64_MAX - start ? UINT64_MAX : start + (hlen - 1);
		/* Rounded out to pages, clipped to the window. */
		s = MAX(align_down(start, SZ_4K), base);
		e = last >= limit ? limit : MIN(align_up(last + 1, SZ_4K), limit);
		if (s < e)
			a->holes[a->nr_holes++] = (struct iova_range){ iova_make(s), e - s };
	}
	/* Disjoint, in order: each is then reserved whole from the free window. */
	if (a->nr_holes)
		qsort(a->holes, a->nr_holes, sizeof(*a->holes), by_start);
	for (unsigned i = 0, j; !ret && i < a->nr_holes; i = j) {
		uint64_t s = iova_val(a->holes[i].start), e = s + a->holes[i].len;

		for (j = i + 1; j < a->nr_holes && iova_val(a->holes[j].start) <= e; j++)
			e = MAX(e, iova_val(a->holes[j].start) + a->holes[j].len);
		ret = ra_reserve(&a->tree, s >> 12, (e - s) >> 12);
	}
	if (ret) {
		free(a->holes);
		ra_destroy(&a->tree);
		mutex_destroy(&a->steal_lock);
		mutex_destroy(&a->lock);
		return ret;
	}
	a->capacity = a->tree.free_len;
	a->fence_users = !os_membarrier_init();
	a->owner.create = tcache_create;
	a->owner.retire = tcache_retire;
	a->owner.discard = tcache_discard;
	tls_owner_register(&a->owner);
	return 0;
}

void iova_destroy(struct iova_alloc *a)
{
	tls_owner_unregister(&a->owner);
	mutex_lock(&a->lock);
	IOVM_WARN_ON(a->tree.free_len + counter_read(&a->allocated) != a->capacity);
	mutex_unlock(&a->lock);
	for (unsigned k = 0; k < IOVA_CACHE_ORDERS; k++)
		for (unsigned i = 0; i < a->depot_nr[k]; i++)
			free(a->depot[k][i]);
	ra_destroy(&a->tree);
	free(a->holes);
	mutex_destroy(&a->steal_lock);
	mutex_destroy(&a->lock);
}

bool iova_in_hole(const struct iova_alloc *a, iova_t start, uint64_t len)
{
	/* Compared by last bytes: a range may end at 2^64 (a hole never does, it ends in the window). */
	uint64_t s = iova_val(start), last = len - 1 > UINT64_MAX - s ? UINT64_MAX : s + (len - 1);

	if (!len)
		return false;
	for (unsigned i = 0; i < a->nr_holes; i++) {
		uint64_t hs = iova_val(a->holes[i].start);

		if (s <= hs + (a->holes[i].len - 1) && hs <= last)
			return true;
	}
	return false;
}

/* The magazine order of a request, or -1 when magazines do not serve it. */
static int cache_order(uint64_t npages, uint64_t align)
{
	if (!is_pow2(npages) || npages > (UINT64_C(1) << (IOVA_CACHE_ORDERS - 1)) || align > npages)
		return -1;
	return (int)ilog2(npages);
}

/*
 * Begin using @t's magazines: the fast way (the busy flag), or under @t's
 * lock while a stealer is at work. Returns whether it took the lock.
 */
static inline bool mags_begin(struct iova_alloc *a, struct iova_tcache *t)
{
	atomic_store_explicit(&t->busy, true, memory_order_relaxed);
	/* The stealer's membarrier makes this a full barrier; without one, a real fence. */
	if (unlikely(a->fence_users))
		atomic_thread_fence(memory_order_seq_cst);
	else
		atomic_signal_fence(memory_order_seq_cst);
	/* Acquire: what a finished steal did to the magazines is seen by what follows. */
	if (likely(!atomic_load_explicit(&a->stealing, memory_order_acquire)))
		return false;
	atomic_store_explicit(&t->busy, false, memory_order_release);
	mutex_lock(&t->lock);
	return true;
}

static inline void mags_end(struct iova_tcache *t, bool locked)
{
	if (locked)
		mutex_unlock(&t->lock);
	else
		atomic_store_explicit(&t->busy, false, memory_order_release);
}

/* Between mags_begin() and mags_end(): the loaded magazine empty, swap in the previous one. */
static bool mag_pop(struct iova_tcache *t, unsigned k, uint64_t *pfn)
{
	struct iova_mag *m = t->loaded[k];

	if (!m->size) {
		if (!t->prev[k]->size)
			return false;
		t->loaded[k] = t->prev[k];
		t->prev[k] = m;
		m = t->loaded[k];
	}
	*pfn = m->pfns[--m->size];
	counter_add(&t->cached, -(UINT64_C(1) << k));
	return true;
}

/* cache_alloc() past its loaded magazine: the previous one, or a full one from the depot. */
static __noinline bool cache_alloc_slow(struct iova_alloc *a, struct iova_tcache *t, unsigned order,
					uint64_t *pfn)
{
	bool ok = mag_pop(t, order, pfn);

	if (!ok) {
		mutex_lock(&a->lock);
		if (a->depot_nr[order]) {
			/* A full magazine from the depot for the empty loaded one. */
			struct iova_mag *full = a->depot[order][--a->depot_nr[order]];

			IOVM_ASSERT(full->size > 0 && full->size <= IOVA_MAG_SIZE);
			free(t->loaded[order]);
			t->loaded[order] = full;
			counter_add(&t->cached, full->size << order);
			ok = mag_pop(t, order, pfn);
		}
		mutex_unlock(&a->lock);
	}
	return ok;
}

/* From the magazines, or a full magazine of the depot: true when served. */
static inline bool cache_alloc(struct iova_alloc *a, struct iova_tcache *t, unsigned order, uint64_t *pfn)
{
	bool locked = mags_begin(a, t), ok = true;
	struct iova_mag *m = t->loaded[order];

	if (likely(m->size)) {
		*pfn = m->pfns[--m->size];
		counter_add(&t->cached, -(UINT64_C(1) << order));
	} else {
		ok = cache_alloc_slow(a, t, order, pfn);
	}
	if (ok)
		counter_add(&t->hits, 1);
	mags_end(t, locked);
	return ok;
}

int iova_alloc(struct iova_alloc *a, uint64_t len, uint64_t align_bytes, iova_t *out)
{
	uint64_t npages = len >> 12, align = align_bytes >> 12, pfn;
	int order = cache_order(npages, align);
	int ret;

	if (!npages || !is_aligned(len, SZ_4K) || (align_bytes && !is_pow2(align_bytes)))
		return -EINVAL;
	if (order >= 0) {
		struct tls_cache *c = tls_cache_get(&iova_kind, &iova_slots, &a->owner);

		if (c && cache_alloc(a, container_of(c, struct iova_tcache, base), (unsigned)order, &pfn)) {
			*out = iova_make(pfn << 12);
			return 0;
		}
	}
	mutex_lock(&a->lock);
	/* Cached sizes come out size-aligned, so that any magazine entry suits any request. */
	ret = tree_alloc(a, npages, order >= 0 ? npages : MAX(align, 1), &pfn);
	mutex_unlock(&a->lock);
	if (!ret)
		*out = iova_make(pfn << 12);
	return ret;
}

/* cache_free() with the loaded magazine full: swap in the previous one, or move it on. */
static __noinline struct iova_mag *cache_free_slow(struct iova_alloc *a, struct iova_tcache *t, unsigned order)
{
	struct iova_mag *m = t->loaded[order];

	if (!t->prev[order]->size) {
		t->loaded[order] = t->prev[order];
		t->prev[order] = m;
		return t->loaded[order];
	}
	/* Both full: the loaded one goes to the depot, or back to the tree. */
	{
		struct iova_mag *empty = NULL;

		mutex_lock(&a->lock);
		if (a->depot_nr[order] < IOVA_DEPOT_MAX)
			empty = fi_calloc(1, sizeof(*empty));
		if (empty) {
			a->depot[order][a->depot_nr[order]++] = m;
			t->loaded[order] = empty;
		} else {
			mag_drain(a, m, order);
		}
		counter_add(&t->cached, -((uint64_t)IOVA_MAG_SIZE << order));
		mutex_unlock(&a->lock);
	}
	return t->loaded[order];
}

/* Into the thread's magazines; a full one goes to the depot, or back to the tree. */
static inline void cache_free(struct iova_alloc *a, struct iova_tcache *t, unsigned order, uint64_t pfn)
{
	bool locked = mags_begin(a, t);
	struct iova_mag *m = t->loaded[order];

	if (unlikely(m->size == IOVA_MAG_SIZE))
		m = cache_free_slow(a, t, order);
	m->pfns[m->size++] = pfn;
	counter_add(&t->cached, UINT64_C(1) << order);
	mags_end(t, locked);
}

/* The pages of [start, start + len) when they are whole pages inside the window. */
static bool window_pages(const struct iova_alloc *a, iova_t start, uint64_t len, uint64_t *pfn, uint64_t *npages)
{
	*pfn = iova_val(start) >> 12;
	*npages = len >> 12;
	return *npages && is_aligned(iova_val(start) | len, SZ_4K) && *pfn >= a->base_pfn &&
	       *pfn <= a->limit_pfn && *npages <= a->limit_pfn - *pfn;
}

int iova_free(struct iova_alloc *a, iova_t start, uint64_t len)
{
	uint64_t pfn, npages;
	int order, ret;

	if (!window_pages(a, start, len, &pfn, &npages))
		return -EINVAL;
	order = cache_order(npages, npages);
	if (order >= 0 && is_aligned(pfn, npages)) {
		struct tls_cache *c = tls_cache_get(&iova_kind, &iova_slots, &a->owner);

		if (c) {
			cache_free(a, container_of(c, struct iova_tcache, base), (unsigned)order, pfn);
			return 0;
		}
	}
	mutex_lock(&a->lock);
	ret = tree_free(a, pfn, npages);
	mutex_unlock(&a->lock);
	return ret;
}

struct steal {
	struct iova_alloc *a;
	uint64_t first, end; /* the pfns wanted back: [first, end) */
	uint64_t pages;      /* cached pages seen (a look), or stolen (a steal) */
};

static bool overlaps(const struct steal *s, uint64_t pfn, unsigned order)
{
	return pfn < s->end && pfn + (UINT64_C(1) << order) > s->first;
}

/* Take the entries of @m that overlap the range back to the tree. Needs the lock. */
static uint64_t mag_steal(struct steal *s, struct iova_mag *m, unsigned order)
{
	uint64_t n = 0;

	lock_assert_held(&s->a->lock);
	for (uint64_t i = 0; i < m->size;) {
		if (!overlaps(s, m->pfns[i], order)) {
			i++;
			continue;
		}
		tree_free(s->a, m->pfns[i], UINT64_C(1) << order);
		m->pfns[i] = m->pfns[--m->size];
		n += UINT64_C(1) << order;
	}
	return n;
}

/* Under the tlscache lock: what a thread's magazines cache, racily, for a first look. */
static void cache_look(struct tls_cache *c, void *arg)
{
	((struct steal *)arg)->pages += counter_read(&container_of(c, struct iova_tcache, base)->cached);
}

/* Under the tlscache lock, stealing set and every thread past a barrier since. */
static void cache_steal(struct tls_cache *c, void *arg)
{
	struct iova_tcache *t = container_of(c, struct iova_tcache, base);
	struct steal *s = arg;
	uint64_t n = 0;

	mutex_lock(&t->lock);
	/* A thread that began before the steal finishes first; later ones wait for the lock. */
	while (atomic_load_explicit(&t->busy, memory_order_acquire))
		sched_yield();
	mutex_lock(&s->a->lock);
	for (unsigned k = 0; k < IOVA_CACHE_ORDERS; k++)
		n += mag_steal(s, t->loaded[k], k) + mag_steal(s, t->prev[k], k);
	mutex_unlock(&s->a->lock);
	counter_add(&t->cached, -n);
	s->pages += n;
	mutex_unlock(&t->lock);
}

/* The depots' entries that overlap: back to the tree; emptied magazines freed. Needs the lock. */
static void depot_steal(struct steal *s)
{
	struct iova_alloc *a = s->a;

	lock_assert_held(&a->lock);
	for (unsigned k = 0; k < IOVA_CACHE_ORDERS; k++) {
		for (unsigned i = 0; i < a->depot_nr[k];) {
			struct iova_mag *m = a->depot[k][i];

			s->pages += mag_steal(s, m, k);
			if (m->size) {
				i++;
				continue;
			}
			free(m);
			a->depot[k][i] = a->depot[k][--a->depot_nr[k]];
		}
	}
}

/* Whether any cache could hold part of the range: a look without stealing. */
static bool anything_cached(struct iova_alloc *a, struct steal *s)
{
	bool depot = false;

	mutex_lock(&a->lock);
	for (unsigned k = 0; k < IOVA_CACHE_ORDERS; k++)
		depot |= a->depot_nr[k] > 0;
	mutex_unlock(&a->lock);
	s->pages = 0;
	tls_owner_for_each(&a->owner, cache_look, s);
	return depot || s->pages;
}

int iova_reserve(struct iova_alloc *a, iova_t start, uint64_t len)
{
	struct steal s = { .a = a };
	uint64_t pfn, npages;
	int ret;

	if (!window_pages(a, start, len, &pfn, &npages))
		return -EINVAL;
	s.first = pfn;
	s.end = pfn + npages;
	mutex_lock(&a->lock);
	ret = ra_reserve(&a->tree, pfn, npages);
	if (!ret)
		counter_add(&a->allocated, npages);
	mutex_unlock(&a->lock);
	/*
	 * Taken: by a mapping, or by caches (freed IOVAs a thread's magazine
	 * or a depot holds, which a map at a chosen IOVA must still get).
	 * A free that happened before this call shows in its cache's count.
	 */
	if (ret != -EBUSY || !anything_cached(a, &s))
		return ret;
	mutex_lock(&a->steal_lock);
	atomic_store_explicit(&a->stealing, true, memory_order_seq_cst);
	/* Every thread past a barrier: it sees the flag at its next use, or we see it busy. */
	os_membarrier();
	s.pages = 0;
	tls_owner_for_each(&a->owner, cache_steal, &s);
	mutex_lock(&a->lock);
	depot_steal(&s);
	ret = ra_reserve(&a->tree, pfn, npages);
	if (!ret)
		counter_add(&a->allocated, npages);
	mutex_unlock(&a->lock);
	atomic_store_explicit(&a->stealing, false, memory_order_release);
	mutex_unlock(&a->steal_lock);
	return ret;
}

struct cache_count {
	uint64_t pages, hits;
};

static void count_cached(struct tls_cache *c, void *arg)
{
	struct iova_tcache *t = container_of(c, struct iova_tcache, base);
	struct cache_count *n = arg;

	n->pages += counter_read(&t->cached);
	n->hits += counter_read(&t->hits);
}

void iova_stats(struct iova_alloc *a, struct iova_stats *st)
{
	struct cache_count count = { 0 };
	uint64_t cached, allocated;

	tls_owner_for_each(&a->owner, count_cached, &count);
	cached = count.pages;
	st->cache_hits = count.hits + atomic_load_explicit(&a->cache_hits, memory_order_relaxed);
	mutex_lock(&a->lock);
	for (unsigned k = 0; k < IOVA_CACHE_ORDERS; k++)
		for (unsigned i = 0; i < a->depot_nr[k]; i++)
			cached += a->depot[k][i]->size << k;
	st->free = a->tree.free_len;
	st->largest = ra_largest(&a->tree);
	st->gaps = a->tree.nr_ranges;
	allocated = counter_read(&a->allocated);
	IOVM_WARN_ON(st->free + allocated != a->capacity);
	mutex_unlock(&a->lock);
	st->cached = cached;
	/* Pages in magazines came out of the tree but are not handed out. */
	st->allocated = allocated > cached ? allocated - cached : 0;
}
