/* SPDX-License-Identifier: MIT */
/*
 * rcache.c - the registration cache: MRs kept by address after use, found
 * again without a lock, and never served stale.
 *
 * The index is a radix table of 2 MiB granules of the address space, each
 * with a few slots naming the regions that overlap it (a granule with more
 * sends lookups to the locked slow path, which searches an interval tree).
 * Radix tables are never freed before the cache, and region structs are
 * kept for reuse, never freed before it either: a lock-free reader may hold
 * a pointer to a region that has left the index, and must find it still a
 * region.
 *
 * A hit, on the calling CPU's own cache lines only:
 *   - find a region covering the range with the rights asked;
 *   - take a reference on the CPU's counter of the region (an atomic add on
 *     a line of the region's that only this CPU writes, but when a thread
 *     moves between CPUs);
 *   - check the region is still the one indexed there (its generation did
 *     not move): an evictor takes a region out of the index, moves its
 *     generation, then sums the CPUs' counters: either the reader sees the
 *     move and gives its reference back, or the evictor sees the reference
 *     and keeps the region (a zombie, deregistered by its last put);
 *   - check every page of the range is valid, between two reads of the
 *     MR's seqcount: a lookup overtaken by an invalidation of its range is
 *     no hit.
 *
 * Regions are evicted least recently used first, by count and by bytes,
 * idle ones only. Recency costs hits nothing shared: each CPU's counter line
 * also holds the clock value of its last hit there, and eviction gives a
 * region used since it last looked a second chance.
 */
#include <errno.h>
#include <linux/userfaultfd.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/compiler.h"
#include "base/ctx.h"
#include "base/error.h"
#include "base/radix.h"
#include "iommu/iommu.h"
#include "reg/reg_internal.h"

#define PG 4096u
#define GRANULE_SHIFT 21
/* Regions a granule names itself; more, and lookups there take the lock. */
#define SLOTS 4
/* User addresses are below 2^47 on x86-64 (four-level paging). */
#define VA_BITS 47
#define DEFAULT_MAX_REGIONS 16384
/* CPU counters a region holds at most: past it, CPUs share lines. */
#define MAX_CPU_SLOTS 64

struct granule {
	_Atomic(struct rc_region *) r[SLOTS];
	_Atomic uint32_t crowded; /* more regions than slots overlap it */
};

/* A CPU's part of a region: written by that CPU only (but when a thread migrates). */
struct rc_cpu {
	_Atomic int64_t refs;  /* gets minus puts on this CPU */
	_Atomic uint64_t used; /* the cache's clock at the last hit here */
} __cacheline_aligned;

struct rc_region {
	struct iovm_rcache *cache;
	struct list_node lru;    /* under cache.lock: in cache.lru (indexed) or cache.spare */
	struct itree_node node;  /* under cache.lock: by VA, while indexed */
	uint64_t start, end;     /* [start, end), pages */
	uint32_t access;
	struct iovm_mr *mr;
	/* Even while indexed; moved on when it leaves the index. */
	_Atomic uint64_t gen;
	_Atomic bool zombie;     /* out of the index but still held: the last put deregisters */
	uint64_t seen;           /* under cache.lock: the clock when eviction last looked */
	struct rc_cpu cpu[];     /* cache.nr_slots of them */
};

/* Counters a CPU writes alone. */
struct rc_cpu_stats {
	_Atomic uint64_t hits, raced;
} __cacheline_aligned;

struct iovm_rcache {
	struct reg_space *rs;
	struct iovm_domain *dom;
	unsigned nr_slots;         /* CPU counters per region */
	uint64_t max_regions, max_bytes;
	struct radix index;        /* granule -> struct granule; written under lock, read lock-free */
	_Atomic uint64_t clock;    /* moved by misses: recency for eviction */

	pthread_mutex_t lock;      /* everything below */
	struct itree regions;      /* indexed regions by VA */
	struct list_node lru;      /* indexed regions, least recently registered or found first */
	struct list_node spare;    /* region structs to reuse */
	struct list_node zombies;  /* out of the index, still held */
	uint64_t nr_regions, bytes;
	uint64_t misses, uncached, evictions;
	_Atomic uint64_t inval[4]; /* by event: unmap, remove, remap, lost */

	struct list_node link;     /* in reg_space.caches, under its lock */
	struct rc_cpu_stats stats[]; /* nr_slots of them */
};

static void cache_free(struct iovm_rcache *c);

static unsigned cpu_slot(const struct iovm_rcache *c)
{
	int cpu = sched_getcpu();

	return cpu < 0 ? 0 : (unsigned)cpu % c->nr_slots;
}

static void count(_Atomic uint64_t *ctr)
{
	atomic_fetch_add_explicit(ctr, 1, memory_order_relaxed);
}

static int64_t refs(const struct rc_region *r)
{
	int64_t sum = 0;

	for (unsigned i = 0; i < r->cache->nr_slots; i++)
		sum += atomic_load_explicit(&r->cpu[i].refs, memory_order_seq_cst);
	return sum;
}

static uint64_t last_used(const struct rc_region *r)
{
	uint64_t m = 0;

	for (unsigned i = 0; i < r->cache->nr_slots; i++)
		m = MAX(m, atomic_load_explicit(&r->cpu[i].used, memory_order_relaxed));
	return m;
}

/* ---- the lock-free hit ---- */

/* Take a reference on @r for [addr, addr+len) if it is a valid hit. */
static bool try_hit(struct iovm_rcache *c, struct granule *g, unsigned k, struct rc_region *r, uint64_t addr,
		    uint64_t len, uint32_t access, unsigned slot)
{
	uint64_t gen = atomic_load_explicit(&r->gen, memory_order_acquire), s1, s2;
	struct iovm_mr *mr;
	bool valid;

	if ((gen & 1) || addr < r->start || addr + len > r->end || (access & ~r->access))
		return false;
	atomic_fetch_add_explicit(&r->cpu[slot].refs, 1, memory_order_seq_cst);
	/* Still the region indexed here, and not taken out since we looked? */
	if (atomic_load_explicit(&r->gen, memory_order_seq_cst) != gen ||
	    atomic_load_explicit(&g->r[k], memory_order_acquire) != r)
		goto drop;
	mr = r->mr;
	s1 = atomic_load_explicit(&mr->seq, memory_order_acquire);
	valid = mr_pages_valid(mr, addr, len);
	atomic_thread_fence(memory_order_acquire);
	s2 = atomic_load_explicit(&mr->seq, memory_order_relaxed);
	if (valid && !(s1 & 1) && s1 == s2) {
		uint64_t now = atomic_load_explicit(&c->clock, memory_order_relaxed);

		if (atomic_load_explicit(&r->cpu[slot].used, memory_order_relaxed) != now)
			atomic_store_explicit(&r->cpu[slot].used, now, memory_order_relaxed);
		return true;
	}
	/* An invalidation overtook the lookup: not a hit, and counted. (Invalid pages: just a miss.) */
	if ((s1 & 1) || s1 != s2)
		atomic_fetch_add_explicit(&c->stats[slot].raced, 1, memory_order_relaxed);
drop:
	atomic_fetch_sub_explicit(&r->cpu[slot].refs, 1, memory_order_release);
	return false;
}

static struct rc_region *lookup_fast(struct iovm_rcache *c, uint64_t addr, uint64_t len, uint32_t access,
				     unsigned slot, bool *crowded)
{
	struct granule *g = radix_lookup(&c->index, addr >> GRANULE_SHIFT);

	*crowded = false;
	if (!g)
		return NULL;
	for (unsigned k = 0; k < SLOTS; k++) {
		struct rc_region *r = atomic_load_explicit(&g->r[k], memory_order_acquire);

		if (r && try_hit(c, g, k, r, addr, len, access, slot))
			return r;
	}
	*crowded = atomic_load_explicit(&g->crowded, memory_order_relaxed);
	return NULL;
}

/* ---- the locked side ---- */

/* Name @r in every granule it overlaps. Needs cache.lock. */
static int index_add(struct iovm_rcache *c, struct rc_region *r)
{
	for (uint64_t gi = r->start >> GRANULE_SHIFT; gi <= (r->end - 1) >> GRANULE_SHIFT; gi++) {
		struct granule *g = radix_lookup_alloc(&c->index, gi);
		unsigned k;

		if (!g)
			return -ENOMEM;
		for (k = 0; k < SLOTS; k++)
			if (!atomic_load_explicit(&g->r[k], memory_order_relaxed))
				break;
		if (k == SLOTS)
			atomic_store_explicit(&g->crowded, 1, memory_order_relaxed);
		else
			atomic_store_explicit(&g->r[k], r, memory_order_release);
	}
	itree_insert(&c->regions, &r->node);
	return 0;
}

/* Take @r out of the index: no lookup finds it any more. Needs cache.lock. */
static void index_del(struct iovm_rcache *c, struct rc_region *r)
{
	for (uint64_t gi = r->start >> GRANULE_SHIFT; gi <= (r->end - 1) >> GRANULE_SHIFT; gi++) {
		struct granule *g = radix_lookup(&c->index, gi);

		for (unsigned k = 0; g && k < SLOTS; k++)
			if (atomic_load_explicit(&g->r[k], memory_order_relaxed) == r)
				atomic_store_explicit(&g->r[k], NULL, memory_order_release);
	}
	itree_remove(&c->regions, &r->node);
	/* Odd: a reader holding a pointer to it sees it gone. */
	atomic_fetch_add_explicit(&r->gen, 1, memory_order_seq_cst);
}

static struct rc_region *region_new(struct iovm_rcache *c)
{
	struct rc_region *r;

	if (!list_empty(&c->spare)) {
		r = list_entry(c->spare.next, struct rc_region, lru);
		list_del(&r->lru);
		return r;
	}
	r = aligned_alloc(CACHE_LINE_SIZE,
			  align_up(sizeof(*r) + c->nr_slots * sizeof(struct rc_cpu), CACHE_LINE_SIZE));
	if (!r)
		return NULL;
	memset(r, 0, sizeof(*r) + c->nr_slots * sizeof(struct rc_cpu));
	r->cache = c;
	return r;
}

/* Deregister @r's MR and keep the struct for reuse. Needs cache.lock; @r is out of the index and idle. */
static void region_free(struct iovm_rcache *c, struct rc_region *r)
{
	r->mr->rc = NULL;
	mr_dereg(r->mr);
	r->mr = NULL;
	atomic_store_explicit(&r->zombie, false, memory_order_relaxed);
	/* Even again, for its next life. */
	atomic_fetch_add_explicit(&r->gen, 1, memory_order_release);
	list_add(&c->spare, &r->lru);
}

/*
 * Take @r out of the cache: deregistered now if idle, else left a zombie
 * for its last put. Needs cache.lock.
 */
static void region_retire(struct iovm_rcache *c, struct rc_region *r)
{
	index_del(c, r);
	list_del(&r->lru);
	c->nr_regions--;
	c->bytes -= r->end - r->start;
	atomic_store_explicit(&r->zombie, true, memory_order_seq_cst);
	if (refs(r)) {
		list_add(&c->zombies, &r->lru);
		return;
	}
	region_free(c, r);
}

/* Evict idle regions, least recently used first, until within the limits. Needs cache.lock. */
static void evict(struct iovm_rcache *c, struct rc_region *keep)
{
	uint64_t look = 0, limit = 2 * c->nr_regions;

	while ((c->nr_regions > c->max_regions || c->bytes > c->max_bytes) && look++ < limit &&
	       !list_empty(&c->lru)) {
		struct rc_region *r = list_entry(c->lru.next, struct rc_region, lru);
		uint64_t used = last_used(r);

		list_del(&r->lru);
		list_add_tail(&c->lru, &r->lru);
		if (r == keep || refs(r))
			continue;
		/* Found by a hit since last looked at: a second chance. */
		if (used > r->seen) {
			r->seen = used;
			continue;
		}
		region_retire(c, r);
		c->evictions++;
	}
}

/* A region of the index holding [addr, addr+len) with @access, all valid, referenced. Needs cache.lock. */
static struct rc_region *lookup_slow(struct iovm_rcache *c, uint64_t addr, uint64_t len, uint32_t access,
				     unsigned slot)
{
	struct itree_node *n;

	itree_for_each(n, &c->regions, addr, addr + len - 1) {
		struct rc_region *r = container_of(n, struct rc_region, node);

		if (addr < r->start || addr + len > r->end || (access & ~r->access))
			continue;
		/* Under the cache lock no region leaves; the seqcount still guards the pages. */
		atomic_fetch_add_explicit(&r->cpu[slot].refs, 1, memory_order_seq_cst);
		{
			uint64_t s1 = atomic_load_explicit(&r->mr->seq, memory_order_acquire);
			bool ok = !(s1 & 1) && mr_pages_valid(r->mr, addr, len);

			if (ok && atomic_load_explicit(&r->mr->seq, memory_order_acquire) == s1)
				return r;
		}
		atomic_fetch_sub_explicit(&r->cpu[slot].refs, 1, memory_order_release);
	}
	return NULL;
}

/*
 * Regions over [start, end) with no valid page left (the application took
 * their memory away) and no holder: out, so that they do not crowd the
 * granules. Needs cache.lock.
 */
static void retire_dead(struct iovm_rcache *c, uint64_t start, uint64_t end)
{
	struct itree_node *n = itree_first(&c->regions, start, end - 1);

	while (n) {
		struct rc_region *r = container_of(n, struct rc_region, node);
		struct iovm_mr_info info;

		n = itree_next(n, start, end - 1);
		iovm_mr_query(r->mr, &info);
		if (!info.valid_pages && !refs(r))
			region_retire(c, r);
	}
}

static int get_slow(struct iovm_rcache *c, uint64_t addr, uint64_t len, uint32_t access, unsigned slot,
		    struct iovm_mr **out)
{
	uint64_t start = align_down(addr, PG), end = align_up(addr + len, PG);
	struct rc_region *r;
	struct iovm_mr *mr;
	int ret;

	pthread_mutex_lock(&c->lock);
	r = lookup_slow(c, addr, len, access, slot);
	if (r) {
		count(&c->stats[slot].hits);
		goto found;
	}
	c->misses++;
	atomic_fetch_add_explicit(&c->clock, 1, memory_order_relaxed);
	retire_dead(c, start, end);
	ret = iovm_mr_reg(c->dom, (void *)start, end - start, access, &mr);
	if (ret)
		goto unlock;
	{
		struct iovm_mr_info info;

		iovm_mr_query(mr, &info);
		if (!info.monitored) {
			/* Nothing would say when it goes stale: the caller's alone, deregistered at put. */
			c->uncached++;
			pthread_mutex_unlock(&c->lock);
			*out = mr;
			return 0;
		}
	}
	r = region_new(c);
	ret = -ENOMEM;
	if (!r)
		goto dereg;
	r->start = start;
	r->end = end;
	r->access = access;
	r->mr = mr;
	r->node.start = start;
	r->node.last = end - 1;
	r->seen = atomic_load_explicit(&c->clock, memory_order_relaxed);
	ret = index_add(c, r);
	if (ret) {
		index_del(c, r);
		r->mr = NULL;
		atomic_fetch_add_explicit(&r->gen, 1, memory_order_release);
		list_add(&c->spare, &r->lru);
		goto dereg;
	}
	mr->rc = r;
	list_add_tail(&c->lru, &r->lru);
	c->nr_regions++;
	c->bytes += end - start;
	atomic_fetch_add_explicit(&r->cpu[slot].refs, 1, memory_order_seq_cst);
	evict(c, r);
found:
	pthread_mutex_unlock(&c->lock);
	*out = r->mr;
	return 0;

dereg:
	mr_dereg(mr);
unlock:
	pthread_mutex_unlock(&c->lock);
	return ret;
}

IOVM_API int iovm_rcache_get(struct iovm_rcache *c, void *addr, size_t len, uint32_t access,
			     struct iovm_mr **mr)
{
	uintptr_t a = (uintptr_t)addr;
	struct rc_region *r;
	unsigned slot;
	bool crowded;

	if (unlikely(!c || !addr || !len || !mr || a + len < a || a + len > (UINT64_C(1) << VA_BITS) ||
		     (access & IOVM_ACCESS_ON_DEMAND)))
		return -EINVAL;
	slot = cpu_slot(c);
	r = lookup_fast(c, a, len, access, slot, &crowded);
	if (likely(r)) {
		count(&c->stats[slot].hits);
		*mr = r->mr;
		return 0;
	}
	err_clear();
	return get_slow(c, a, len, access, slot, mr);
}

IOVM_API int iovm_rcache_put(struct iovm_rcache *c, struct iovm_mr *mr)
{
	struct rc_region *r;

	if (unlikely(!c || !mr))
		return -EINVAL;
	r = mr->rc;
	if (!r) {
		/* Uncached: the caller's only. */
		return mr_dereg(mr);
	}
	if (unlikely(r->cache != c))
		return -EINVAL;
	atomic_fetch_sub_explicit(&r->cpu[cpu_slot(c)].refs, 1, memory_order_seq_cst);
	if (unlikely(atomic_load_explicit(&r->zombie, memory_order_seq_cst))) {
		/* Evicted or invalidated away while held: the last put lets it go. */
		pthread_mutex_lock(&c->lock);
		if (atomic_load_explicit(&r->zombie, memory_order_relaxed) && r->mr == mr && !refs(r)) {
			list_del(&r->lru);
			region_free(c, r);
		}
		pthread_mutex_unlock(&c->lock);
	}
	return 0;
}

void rcache_count_invalidation(struct rc_region *r, unsigned kind)
{
	unsigned i = kind == UFFD_EVENT_UNMAP ? 0 : kind == UFFD_EVENT_REMOVE ? 1 : kind == UFFD_EVENT_REMAP ? 2 : 3;

	count(&r->cache->inval[i]);
}

IOVM_API int iovm_rcache_create(struct iovm_domain *dom, const struct iovm_rcache_attr *attr,
				struct iovm_rcache **out)
{
	long ncpu = sysconf(_SC_NPROCESSORS_CONF);
	unsigned slots = (unsigned)MIN(MAX(ncpu, 1L), (long)MAX_CPU_SLOTS);
	struct iovm_rcache *c;
	int ret;

	err_clear();
	if (!dom || !out)
		return -EINVAL;
	c = aligned_alloc(CACHE_LINE_SIZE, align_up(sizeof(*c) + slots * sizeof(struct rc_cpu_stats), CACHE_LINE_SIZE));
	if (!c)
		return -ENOMEM;
	memset(c, 0, sizeof(*c) + slots * sizeof(struct rc_cpu_stats));
	c->rs = iommu_domain_ctx(dom)->reg;
	c->dom = dom;
	c->nr_slots = slots;
	c->max_regions = attr && attr->max_regions ? attr->max_regions : DEFAULT_MAX_REGIONS;
	c->max_bytes = attr && attr->max_bytes ? attr->max_bytes : c->rs->budget_pages * PG;
	ret = radix_init(&c->index, VA_BITS - GRANULE_SHIFT, 12, sizeof(struct granule));
	if (ret) {
		free(c);
		return ret;
	}
	pthread_mutex_init(&c->lock, NULL);
	itree_init(&c->regions);
	list_init(&c->lru);
	list_init(&c->spare);
	list_init(&c->zombies);
	pthread_mutex_lock(&c->rs->lock);
	list_add(&c->rs->caches, &c->link);
	pthread_mutex_unlock(&c->rs->lock);
	*out = c;
	return 0;
}

void rcache_destroy_all(struct reg_space *rs)
{
	for (;;) {
		struct iovm_rcache *c;

		pthread_mutex_lock(&rs->lock);
		c = list_empty(&rs->caches) ? NULL : list_entry(rs->caches.next, struct iovm_rcache, link);
		pthread_mutex_unlock(&rs->lock);
		if (!c)
			return;
		/* The context closes: held MRs are let go too. */
		pthread_mutex_lock(&c->lock);
		while (!list_empty(&c->zombies)) {
			struct rc_region *r = list_entry(c->zombies.next, struct rc_region, lru);

			list_del(&r->lru);
			region_free(c, r);
		}
		pthread_mutex_unlock(&c->lock);
		cache_free(c);
	}
}

/* Deregister every region the cache keeps and free it. */
static void cache_free(struct iovm_rcache *c)
{
	struct list_node *n, *t;

	pthread_mutex_lock(&c->rs->lock);
	list_del(&c->link);
	pthread_mutex_unlock(&c->rs->lock);
	pthread_mutex_lock(&c->lock);
	list_for_each_safe(n, t, &c->lru) {
		struct rc_region *r = list_entry(n, struct rc_region, lru);

		index_del(c, r);
		list_del(&r->lru);
		region_free(c, r);
	}
	while (!list_empty(&c->spare)) {
		struct rc_region *r = list_entry(c->spare.next, struct rc_region, lru);

		list_del(&r->lru);
		free(r);
	}
	pthread_mutex_unlock(&c->lock);
	pthread_mutex_destroy(&c->lock);
	radix_destroy(&c->index);
	free(c);
}

IOVM_API int iovm_rcache_destroy(struct iovm_rcache *c)
{
	struct list_node *n;

	err_clear();
	if (!c)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	if (!list_empty(&c->zombies)) {
		pthread_mutex_unlock(&c->lock);
		return -EBUSY;
	}
	list_for_each(n, &c->lru)
		if (refs(list_entry(n, struct rc_region, lru))) {
			pthread_mutex_unlock(&c->lock);
			return -EBUSY;
		}
	pthread_mutex_unlock(&c->lock);
	cache_free(c);
	return 0;
}

IOVM_API int iovm_rcache_stats(struct iovm_rcache *c, struct iovm_rcache_stats *st)
{
	err_clear();
	if (!c || !st)
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	for (unsigned i = 0; i < c->nr_slots; i++) {
		st->hits += atomic_load_explicit(&c->stats[i].hits, memory_order_relaxed);
		st->raced += atomic_load_explicit(&c->stats[i].raced, memory_order_relaxed);
	}
	st->invalidations_unmap = atomic_load_explicit(&c->inval[0], memory_order_relaxed);
	st->invalidations_remove = atomic_load_explicit(&c->inval[1], memory_order_relaxed);
	st->invalidations_remap = atomic_load_explicit(&c->inval[2], memory_order_relaxed);
	st->invalidations_overflow = atomic_load_explicit(&c->inval[3], memory_order_relaxed);
	pthread_mutex_lock(&c->lock);
	st->misses = c->misses;
	st->uncached = c->uncached;
	st->evictions = c->evictions;
	st->regions = c->nr_regions;
	st->bytes = c->bytes;
	pthread_mutex_unlock(&c->lock);
	return 0;
}
