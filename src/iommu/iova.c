/* SPDX-License-Identifier: MIT */
/*
 * iova.c - the gap tree and its magazines.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/compiler.h"
#include "base/fault_inject.h"
#include "base/lock.h"
#include "iommu/iova.h"

struct iova_tcache {
	struct tls_cache base;
	struct iova_mag *loaded[IOVA_CACHE_ORDERS];
	struct iova_mag *prev[IOVA_CACHE_ORDERS];
	/* Written by its thread only (a load and a store, no shared line); read by iova_stats(). */
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

	int ret = ra_alloc(&a->tree, &q, pfn);

	/* Memory short for the tree's nodes is not the IOVA space full. */
	return ret == -ENOMEM ? ret : ret ? -ENOSPC : 0;
}

/* Give a magazine's IOVAs back to the tree. Needs the lock. */
static void mag_drain(struct iova_alloc *a, struct iova_mag *m, unsigned order)
{
	for (uint64_t i = 0; i < m->size; i++)
		ra_free(&a->tree, m->pfns[i], UINT64_C(1) << order);
	atomic_fetch_sub_explicit(&a->allocated, m->size << order, memory_order_relaxed);
	m->size = 0;
}

static struct tls_cache *tcache_create(struct tls_owner *o)
{
	struct iova_tcache *t = fi_calloc(1, sizeof(*t));

	(void)o;
	if (!t)
		return NULL;
	for (unsigned k = 0; k < IOVA_CACHE_ORDERS; k++) {
		t->loaded[k] = fi_calloc(1, sizeof(struct iova_mag));
		t->prev[k] = fi_calloc(1, sizeof(struct iova_mag));
		if (!t->loaded[k] || !t->prev[k]) {
			for (unsigned j = 0; j <= k; j++) {
				free(t->loaded[j]);
				free(t->prev[j]);
			}
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
	atomic_fetch_add_explicit(&a->cache_hits, atomic_load_explicit(&t->hits, memory_order_relaxed),
				  memory_order_relaxed);
	tcache_discard(c);
}

int iova_init(struct iova_alloc *a, uint64_t base, uint64_t limit, const struct iova_range *reserved,
	      unsigned nr_reserved)
{
	int ret;

	if (!is_aligned(base | limit, SZ_4K) || limit <= base)
		return -EINVAL;
	memset(a, 0, sizeof(*a));
	mutex_init(&a->lock);
	ra_init(&a->tree);
	a->base_pfn = base >> 12;
	a->limit_pfn = limit >> 12;
	ret = ra_free(&a->tree, a->base_pfn, a->limit_pfn - a->base_pfn);
	for (unsigned i = 0; !ret && i < nr_reserved; i++) {
		uint64_t s = MAX(align_down(reserved[i].start, SZ_4K), base);
		uint64_t e = MIN(align_up(reserved[i].end, SZ_4K), limit);

		if (s < e && ra_reserve(&a->tree, s >> 12, (e - s) >> 12) == -ENOMEM)
			ret = -ENOMEM;
	}
	if (ret) {
		ra_destroy(&a->tree);
		mutex_destroy(&a->lock);
		return ret;
	}
	a->owner.create = tcache_create;
	a->owner.retire = tcache_retire;
	a->owner.discard = tcache_discard;
	tls_owner_register(&a->owner);
	return 0;
}

void iova_destroy(struct iova_alloc *a)
{
	tls_owner_unregister(&a->owner);
	for (unsigned k = 0; k < IOVA_CACHE_ORDERS; k++)
		for (unsigned i = 0; i < a->depot_nr[k]; i++)
			free(a->depot[k][i]);
	ra_destroy(&a->tree);
	mutex_destroy(&a->lock);
}

/* The magazine order of a request, or -1 when magazines do not serve it. */
static int cache_order(uint64_t npages, uint64_t align)
{
	if (!is_pow2(npages) || npages > (UINT64_C(1) << (IOVA_CACHE_ORDERS - 1)) || align > npages)
		return -1;
	return (int)ilog2(npages);
}

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
	return true;
}

int iova_alloc(struct iova_alloc *a, uint64_t npages, uint64_t align, uint64_t *pfn)
{
	int order = cache_order(npages, align);
	struct iova_tcache *t = NULL;
	int ret;

	if (!npages || (align > 1 && !is_pow2(align)))
		return -EINVAL;
	if (order >= 0) {
		struct tls_cache *c = tls_cache_get(&iova_kind, &iova_slots, &a->owner);

		t = c ? container_of(c, struct iova_tcache, base) : NULL;
		if (t && mag_pop(t, (unsigned)order, pfn)) {
			atomic_store_explicit(&t->hits, atomic_load_explicit(&t->hits, memory_order_relaxed) + 1,
					      memory_order_relaxed);
			return 0;
		}
	}
	mutex_lock(&a->lock);
	if (t && a->depot_nr[order]) {
		/* A full magazine from the depot for the empty loaded one. */
		struct iova_mag *full = a->depot[order][--a->depot_nr[order]];

		free(t->loaded[order]);
		t->loaded[order] = full;
		mutex_unlock(&a->lock);
		*pfn = full->pfns[--full->size];
		return 0;
	}
	/* Cached sizes come out size-aligned, so that any magazine entry suits any request. */
	ret = tree_alloc(a, npages, order >= 0 ? npages : MAX(align, 1), pfn);
	mutex_unlock(&a->lock);
	if (!ret)
		atomic_fetch_add_explicit(&a->allocated, npages, memory_order_relaxed);
	return ret;
}

int iova_free(struct iova_alloc *a, uint64_t pfn, uint64_t npages)
{
	int order = cache_order(npages, npages);
	struct iova_tcache *t = NULL;
	int ret;

	if (!npages || pfn < a->base_pfn || pfn + npages > a->limit_pfn)
		return -EINVAL;
	if (order >= 0 && is_aligned(pfn, npages)) {
		struct tls_cache *c = tls_cache_get(&iova_kind, &iova_slots, &a->owner);

		t = c ? container_of(c, struct iova_tcache, base) : NULL;
	}
	if (t) {
		struct iova_mag *m = t->loaded[order];

		if (m->size == IOVA_MAG_SIZE && !t->prev[order]->size) {
			t->loaded[order] = t->prev[order];
			t->prev[order] = m;
			m = t->loaded[order];
		}
		if (m->size < IOVA_MAG_SIZE) {
			m->pfns[m->size++] = pfn;
			return 0;
		}
		/* Both full: the loaded one goes to the depot, or back to the tree. */
		mutex_lock(&a->lock);
		if (a->depot_nr[order] < IOVA_DEPOT_MAX) {
			struct iova_mag *empty = fi_calloc(1, sizeof(*empty));

			if (empty) {
				a->depot[order][a->depot_nr[order]++] = m;
				t->loaded[order] = empty;
				mutex_unlock(&a->lock);
				empty->pfns[empty->size++] = pfn;
				return 0;
			}
		}
		mag_drain(a, m, (unsigned)order);
		m->pfns[m->size++] = pfn;
		mutex_unlock(&a->lock);
		return 0;
	}
	mutex_lock(&a->lock);
	ret = ra_free(&a->tree, pfn, npages);
	mutex_unlock(&a->lock);
	if (!ret)
		atomic_fetch_sub_explicit(&a->allocated, npages, memory_order_relaxed);
	return ret;
}

int iova_reserve(struct iova_alloc *a, uint64_t pfn, uint64_t npages)
{
	int ret;

	if (!npages || pfn < a->base_pfn || pfn + npages > a->limit_pfn || pfn + npages < pfn)
		return -EINVAL;
	mutex_lock(&a->lock);
	ret = ra_reserve(&a->tree, pfn, npages);
	mutex_unlock(&a->lock);
	if (!ret)
		atomic_fetch_add_explicit(&a->allocated, npages, memory_order_relaxed);
	return ret;
}

struct cache_count {
	uint64_t pages, hits;
};

static void count_cached(struct tls_cache *c, void *arg)
{
	struct iova_tcache *t = container_of(c, struct iova_tcache, base);
	struct cache_count *n = arg;

	for (unsigned k = 0; k < IOVA_CACHE_ORDERS; k++)
		n->pages += (t->loaded[k]->size + t->prev[k]->size) << k;
	n->hits += atomic_load_explicit(&t->hits, memory_order_relaxed);
}

void iova_stats(struct iova_alloc *a, struct iova_stats *st)
{
	struct cache_count count = { 0 };
	uint64_t cached;

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
	mutex_unlock(&a->lock);
	st->cached = cached;
	/* Pages in magazines came out of the tree but are not handed out. */
	st->allocated = atomic_load_explicit(&a->allocated, memory_order_relaxed);
	st->allocated = st->allocated > cached ? st->allocated - cached : 0;
}
