/* SPDX-License-Identifier: MIT */
/*
 * rcache.c - the registration cache's life and API: MRs kept by address
 * after use, found again without a lock (rcache_index.c), held and given
 * back once per get (rcache_holds.c), and never served stale.
 *
 * A region goes through its lives in one struct, its MR embedded:
 *   spare -> live: a miss registers its range and files it in the index
 *            (only then, whole, can a lock-free reader find it);
 *   live -> zombie: eviction, or a miss over memory taken away, takes it
 *            out of the index while it may be held; its last put frees it;
 *   live -> spare: freed (its MR deregistered) once out of the index and
 *            idle.
 * Memory the monitor cannot watch gets a region too, never filed: a zombie
 * from the start, deregistered at its put. A put thus always finds a
 * region behind a cache's MR, and one behind no MR of the cache's is
 * refused.
 *
 * Region structs come from rcache_structs.c.
 *
 * Regions are evicted least recently used first, by count and by bytes,
 * idle ones only. The clock moves with misses, and a hit writes the
 * region's last-used stamp only when the clock moved since: almost never a
 * write. Eviction gives a region used since it last looked a second chance.
 */
#include <errno.h>
#include <linux/userfaultfd.h>
#include <stdlib.h>
#include <string.h>

#include "base/counter.h"
#include "base/ctx.h"
#include "base/error.h"
#include "base/fault_inject.h"
#include "base/log.h"
#include "iommu/iommu.h"
#include "os/membarrier.h"
#include "reg/rcache_internal.h"

#define DEFAULT_MAX_REGIONS 16384
/* The rights a get may ask for: pinned ones (a cached MR is never on demand). */
#define RC_ACCESS \
	(IOVM_ACCESS_LOCAL_READ | IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_REMOTE_READ | IOVM_ACCESS_REMOTE_WRITE)

_Atomic(rcache_test_hook) rcache_test_published;

static void cache_free(struct iovm_rcache *c);

/* ---- regions ---- */

/*
 * Register [start, end) with @access in spare @r: live, not filed. Needs
 * cache.lock; on an error @r is a spare again.
 */
static int region_register(struct iovm_rcache *c, struct rc_region *r, uint64_t start, uint64_t end,
			   uint32_t access)
{
	int ret;

	lock_assert_held(&c->lock);
	ret = mr_init(&r->mr, c->dom, start, end - start, access);
	if (ret)
		goto spare;
	ret = mr_register(&r->mr);
	if (ret) {
		mr_fini(&r->mr);
		goto spare;
	}
	IOVM_ASSERT(r->mr.rc == r);
	/* Written while the generation is odd: a reader that finds it filed reads these. */
	atomic_store_explicit(&r->start, start, memory_order_relaxed);
	atomic_store_explicit(&r->end, end, memory_order_relaxed);
	atomic_store_explicit(&r->access, access, memory_order_relaxed);
	atomic_store_explicit(&r->npages, r->mr.npages, memory_order_relaxed);
	r->live = true;
	return 0;

spare:
	list_add(&c->spare, &r->lru);
	return ret;
}

/* Deregister @r's MR and keep the struct for reuse. Needs cache.lock; @r is out of the index, off its list, idle. */
static void region_free(struct iovm_rcache *c, struct rc_region *r)
{
	lock_assert_held(&c->lock);
	IOVM_ASSERT(r->live && (atomic_load_explicit(&r->gen, memory_order_relaxed) & 1));
	r->live = false;
	mr_dereg(&r->mr, false);
	atomic_store_explicit(&r->zombie, false, memory_order_relaxed);
	/*
	 * A new life: the threads' holds on this one count no more, and the
	 * shared counter (skewed the other way by puts on other threads than
	 * the gets) starts again from zero.
	 */
	atomic_fetch_add_explicit(&r->life, 1, memory_order_relaxed);
	atomic_store_explicit(&r->shared, 0, memory_order_relaxed);
	/* Its generation stays odd until index_add() files it again. */
	list_add(&c->spare, &r->lru);
}

/*
 * Take @r out of the cache: deregistered now if idle, else left a zombie
 * for its last put. Needs cache.lock.
 */
static void region_retire(struct iovm_rcache *c, struct rc_region *r)
{
	int64_t held;

	lock_assert_held(&c->lock);
	index_del(c, r);
	list_del(&r->lru);
	IOVM_ASSERT(c->nr_regions > 0);
	c->nr_regions--;
	c->bytes -= atomic_load_explicit(&r->end, memory_order_relaxed) -
		    atomic_load_explicit(&r->start, memory_order_relaxed);
	atomic_store_explicit(&r->zombie, true, memory_order_seq_cst);
	held = holds_exact(c, r);
	IOVM_WARN_ON(held < 0);
	if (held) {
		list_add(&c->zombies, &r->lru);
		return;
	}
	region_free(c, r);
}

void region_release_zombie(struct iovm_rcache *c, struct rc_region *r, uint64_t life)
{
	mutex_lock(&c->lock);
	/*
	 * Still the life whose hold was given back, out of the index, and no
	 * hold left: every hold taken before it left the index is counted
	 * (holds_exact() when it left), and one taken since is dropped, by a
	 * thread that comes here after.
	 */
	if (r->live && atomic_load_explicit(&r->life, memory_order_relaxed) == life &&
	    atomic_load_explicit(&r->zombie, memory_order_relaxed) && !holds_sum(c, r)) {
		list_del(&r->lru);
		region_free(c, r);
	}
	mutex_unlock(&c->lock);
}

static bool over_limits(const struct iovm_rcache *c)
{
	return c->nr_regions > c->max_regions || c->bytes > c->max_bytes;
}

/*
 * Evict idle regions, least recently used first, until within the limits
 * (a region found by a hit since last looked at gets a second chance); or,
 * @all, every idle region whatever the limits: a miss found no room for its
 * registration (-ENOSPC: a shared domain's IOVA window, where each
 * registration takes whole 2 MiB units; -ENOMEM: the pin budget, page
 * tables), and may try again once. Returns how many went. Needs cache.lock.
 */
static uint64_t evict(struct iovm_rcache *c, struct rc_region *keep, bool all)
{
	uint64_t look = 0, limit = (all ? 1 : 2) * c->nr_regions, before = c->evictions;

	lock_assert_held(&c->lock);
	while ((all || over_limits(c)) && look++ < limit && !list_empty(&c->lru)) {
		struct rc_region *r = list_entry(c->lru.next, struct rc_region, lru);
		uint64_t used = atomic_load_explicit(&r->used, memory_order_relaxed);

		list_del(&r->lru);
		list_add_tail(&c->lru, &r->lru);
		if (r == keep || holds_sum(c, r))
			continue;
		if (!all && used > r->seen) {
			r->seen = used;
			continue;
		}
		region_retire(c, r);
		c->evictions++;
	}
	atomic_store_explicit(&c->over_limits, over_limits(c), memory_order_relaxed);
	return c->evictions - before;
}

/*
 * A put let go of this thread's last hold of a region while the cache holds
 * more than its limits: evict now, not at the next miss. Only if the lock is
 * free: a miss holds it while it registers (milliseconds on a real device),
 * which a put must not wait for, and evicts itself when it is done; another
 * put holding it is evicting already.
 */
static __noinline void put_over_limits(struct iovm_rcache *c)
{
	if (!mutex_trylock(&c->lock))
		return;
	evict(c, NULL, false);
	mutex_unlock(&c->lock);
}

/* ---- gets ---- */

struct find {
	uint64_t addr, len;
	uint32_t access;
	bool overlap;
};

/* Whether @r holds the range sought with its rights, all valid. */
static bool holds_valid(struct iovm_rcache *c, struct rc_region *r, void *arg)
{
	struct find *f = arg;
	uint64_t s1;

	(void)c;
	f->overlap = true;
	if (f->addr < atomic_load_explicit(&r->start, memory_order_relaxed) ||
	    f->addr + f->len > atomic_load_explicit(&r->end, memory_order_relaxed) ||
	    (f->access & ~atomic_load_explicit(&r->access, memory_order_relaxed)))
		return false;
	/* Under the cache lock no region leaves; the seqcount still guards the pages. */
	s1 = atomic_load_explicit(&r->mr.seq, memory_order_acquire);
	return !(s1 & 1) && mr_pages_valid(&r->mr, f->addr, f->len) &&
	       atomic_load_explicit(&r->mr.seq, memory_order_acquire) == s1;
}

/* A region of the index holding [addr, addr+len) with @access, all valid, held. Needs cache.lock. */
static struct rc_region *lookup_locked(struct iovm_rcache *c, struct rc_tls *t, uint64_t addr, uint64_t len,
				       uint32_t access, bool *overlap)
{
	struct find f = { .addr = addr, .len = len, .access = access };
	struct rc_region *r;

	lock_assert_held(&c->lock);
	r = index_for_each_overlap(c, align_down(addr, PG), align_up(addr + len, PG), holds_valid, &f);

	*overlap = f.overlap;
	if (r)
		hold_add(t ? held_of(t, r, true) : NULL, r, 1);
	return r;
}

/* A region the application took all the memory of, held by no one: out. */
static bool retire_if_dead(struct iovm_rcache *c, struct rc_region *r, void *arg)
{
	(void)arg;
	lock_assert_held(&c->lock);
	if (!__atomic_load_n(&r->mr.nr_valid, __ATOMIC_RELAXED) && !holds_sum(c, r))
		region_retire(c, r);
	return false;
}

/* Memory the monitor cannot watch: @r is the caller's alone, never filed, deregistered at its put. */
static void keep_uncached(struct iovm_rcache *c, struct rc_tls *t, struct rc_region *r)
{
	lock_assert_held(&c->lock);
	c->uncached++;
	atomic_store_explicit(&r->zombie, true, memory_order_relaxed);
	list_add(&c->zombies, &r->lru);
	hold_add(t ? held_of(t, r, true) : NULL, r, 1);
}

/* Out of line: the hit's path stays short, with no frame for the miss's. */
static __noinline int get_slow(struct iovm_rcache *c, struct rc_tls *t, uint64_t addr, uint64_t len,
			       uint32_t access, struct iovm_mr **out)
{
	uint64_t start = align_down(addr, PG), end = align_up(addr + len, PG);
	struct rc_region *r;
	bool overlap;
	int ret;

	mutex_lock(&c->lock);
	r = lookup_locked(c, t, addr, len, access, &overlap);
	if (r) {
		if (t)
			counter_add(&t->hits, 1);
		goto found;
	}
	c->misses++;
	/* Its one writer holds cache.lock: no locked instruction. */
	counter_add(&c->clock, 1);
	/*
	 * Regions are page-aligned: one overlaps [start, end) exactly when it
	 * overlaps [addr, addr+len), so a lookup that met none leaves nothing
	 * to retire, and the index need not be walked again.
	 */
	if (overlap)
		index_for_each_overlap(c, start, end, retire_if_dead, NULL);
	r = region_new(c);
	ret = -ENOMEM;
	if (!r)
		goto unlock;
	ret = region_register(c, r, start, end, access);
	if ((ret == -ENOSPC || ret == -ENOMEM) && evict(c, NULL, true)) {
		/* r went back to the spares: take one again (room freed, so the struct is there). */
		r = region_new(c);
		ret = r ? region_register(c, r, start, end, access) : -ENOMEM;
	}
	if (ret)
		goto unlock;
	if (!r->mr.monitored) {
		/* Nothing would say when it goes stale. */
		keep_uncached(c, t, r);
		mutex_unlock(&c->lock);
		*out = &r->mr;
		return 0;
	}
	r->seen = atomic_load_explicit(&c->clock, memory_order_relaxed);
	ret = index_add(c, r);
	if (ret) {
		/* Never filed: freed as it is. */
		region_free(c, r);
		goto unlock;
	}
	{
		rcache_test_hook hook = atomic_load_explicit(&rcache_test_published, memory_order_acquire);

		if (unlikely(hook))
			hook(c);
	}
	list_add_tail(&c->lru, &r->lru);
	c->nr_regions++;
	c->bytes += end - start;
	hold_add(t ? held_of(t, r, true) : NULL, r, 1);
	evict(c, r, false);
found:
	mutex_unlock(&c->lock);
	if (t)
		t->hint[hint_slot(addr)] = (struct rc_hint){ .page = addr >> 12, .r = r };
	*out = &r->mr;
	return 0;

unlock:
	mutex_unlock(&c->lock);
	return ret;
}

IOVM_API int iovm_rcache_get(struct iovm_rcache *c, void *addr, size_t len, uint32_t access,
			     struct iovm_mr **mr)
{
	uintptr_t a = (uintptr_t)addr;
	struct rc_region *r;
	struct rc_tls *t;

	if (unlikely(!c || !addr || !len || !mr || a + len < a || a + len > (UINT64_C(1) << VA_BITS) ||
		     (access & ~RC_ACCESS)))
		return err_hot(-EINVAL, "invalid argument: !c || !addr || !len || !mr || a + len < a || a + len > (UINT64_C(1) << VA_BITS) || (access & ~RC_ACCESS)");
	/* A call that took memory away has returned: what it replaced is invalidated first. */
	reg_settle(c->rs);
	t = rc_tls_of(c);
	if (likely(t)) {
		struct rc_hint *hint = &t->hint[hint_slot(a)];

		/* A buffer of the thread's working set again (a ping-pong, a ring of sends): no index walk. */
		if (hint->page == a >> 12 && (r = hint->r) && index_try_hit(c, t, r, a, len, access))
			goto hit;
		if ((r = index_lookup(c, t, a, len, access))) {
			*hint = (struct rc_hint){ .page = a >> 12, .r = r };
			goto hit;
		}
	}
	err_enter(); /* the slow path: a miss registers */
	return get_slow(c, t, a, len, access, mr);
hit:
	counter_add(&t->hits, 1);
	*mr = &r->mr;
	return 0;
}

/* ---- puts ---- */

IOVM_API int iovm_rcache_put(struct iovm_rcache *c, struct iovm_mr *mr)
{
	struct rc_region *r;
	struct rc_held *h;
	struct rc_tls *t;
	int64_t left;

	if (unlikely(!c || !mr))
		return err_hot(-EINVAL, "invalid argument: !c || !mr");
	/* Set once for a cache's MR, which lives as long as its cache: readable even if long put. */
	r = mr->rc;
	if (unlikely(!r || r->cache != c))
		return err_hot(-EINVAL, "a put of an MR this cache did not give");
	t = rc_tls_of(c);
	/*
	 * Got here and not put yet, with no put elsewhere owing (the shared
	 * counter not below zero): the sum of holds is at least this thread's,
	 * so there is a get to match. Undone in the thread's own table.
	 */
	if (likely(t) && (h = held_for_put(t, r)) && atomic_load_explicit(&r->shared, memory_order_relaxed) >= 0) {
		uint64_t life = atomic_load_explicit(&h->life, memory_order_relaxed);

		hold_add(h, r, -1);
		reader_fence(c);
		/* Evicted or invalidated away while held: the last put lets it go. */
		if (unlikely(atomic_load_explicit(&r->zombie, memory_order_acquire)))
			region_release_zombie(c, r, life);
		else if (unlikely(atomic_load_explicit(&c->over_limits, memory_order_relaxed)) &&
			 !atomic_load_explicit(&h->n, memory_order_relaxed))
			put_over_limits(c);
		return 0;
	}
	/* Got on another thread, or puts elsewhere owe: judged against every thread's holds. */
	mutex_lock(&c->lock);
	left = holds_put_locked(c, t, r);
	if (!left && atomic_load_explicit(&r->zombie, memory_order_relaxed)) {
		list_del(&r->lru);
		region_free(c, r);
	} else if (!left && atomic_load_explicit(&c->over_limits, memory_order_relaxed)) {
		evict(c, NULL, false);
	}
	mutex_unlock(&c->lock);
	if (left < 0)
		return err_hot(-EINVAL, "a put with no get of the MR left to match");
	return 0;
}

void rcache_count_invalidation(struct rc_region *r, unsigned kind)
{
	unsigned i = kind == UFFD_EVENT_UNMAP			       ? 0
		     : kind == UFFD_EVENT_REMOVE || kind == MON_EVENT_REMOVE_UNLOCKED ? 1
		     : kind == UFFD_EVENT_REMAP				       ? 2
									       : 3;

	atomic_fetch_add_explicit(&r->cache->inval[i], 1, memory_order_relaxed);
}

/* ---- the cache ---- */

IOVM_API int iovm_rcache_create(struct iovm_domain *dom, const struct iovm_rcache_attr *attr,
				struct iovm_rcache **out)
{
	struct iovm_rcache *c;
	int ret;

	err_enter();
	if (!dom || !out)
		return err_inval("!dom || !out");
	c = fi_calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->rs = iommu_domain_ctx(dom)->reg;
	c->dom = dom;
	c->max_regions = attr && attr->max_regions ? attr->max_regions : DEFAULT_MAX_REGIONS;
	c->max_bytes = attr && attr->max_bytes ? attr->max_bytes : c->rs->budget_pages * PG;
	c->fence_readers = !os_membarrier_init();
	ret = index_init(c);
	if (ret) {
		index_destroy(c);
		free(c);
		return ret;
	}
	holds_register(c);
	mutex_init(&c->lock);
	list_init(&c->lru);
	list_init(&c->spare);
	list_init(&c->chunks);
	list_init(&c->zombies);
	mutex_lock(&c->rs->lock);
	list_add(&c->rs->caches, &c->link);
	mutex_unlock(&c->rs->lock);
	/* Its domain stays while it lives (its misses register there). */
	iommu_domain_use(dom, 1);
	*out = c;
	return 0;
}

/* Free the zombies no one holds any more. Needs cache.lock. */
static void free_idle_zombies(struct iovm_rcache *c)
{
	struct list_node *n, *t;

	lock_assert_held(&c->lock);
	list_for_each_safe(n, t, &c->zombies) {
		struct rc_region *r = list_entry(n, struct rc_region, lru);

		if (!holds_sum(c, r)) {
			list_del(&r->lru);
			region_free(c, r);
		}
	}
}

void rcache_destroy_all(struct reg_space *rs)
{
	for (;;) {
		struct iovm_rcache *c;

		mutex_lock(&rs->lock);
		c = list_empty(&rs->caches) ? NULL : list_entry(rs->caches.next, struct iovm_rcache, link);
		mutex_unlock(&rs->lock);
		if (!c)
			break;
		/* The context closes: held MRs are let go too. */
		mutex_lock(&c->lock);
		while (!list_empty(&c->zombies)) {
			struct rc_region *r = list_entry(c->zombies.next, struct rc_region, lru);

			list_del(&r->lru);
			region_free(c, r);
		}
		mutex_unlock(&c->lock);
		cache_free(c);
	}
	/* No cache is left to use them: the region structs the caches kept for the next go too. */
	chunks_free_all(rs);
}

/* Deregister every region the cache keeps and free it, but its region structs (chunk_new()). */
static void cache_free(struct iovm_rcache *c)
{
	struct list_node *n, *t;

	mutex_lock(&c->rs->lock);
	list_del(&c->link);
	mutex_unlock(&c->rs->lock);
	/* The threads' tables go first: nothing may use the cache any more. */
	holds_unregister(c);
	mutex_lock(&c->lock);
	IOVM_WARN_ON(!list_empty(&c->zombies));
	list_for_each_safe(n, t, &c->lru) {
		struct rc_region *r = list_entry(n, struct rc_region, lru);

		index_del(c, r);
		list_del(&r->lru);
		region_free(c, r);
	}
	/* No reader is left (nor thread's table): its structs may live again in another cache. */
	chunks_give_back(c);
	mutex_unlock(&c->lock);
	mutex_destroy(&c->lock);
	index_destroy(c);
	iommu_domain_use(c->dom, -1);
	free(c);
}

IOVM_API int iovm_rcache_destroy(struct iovm_rcache *c)
{
	struct list_node *n;

	err_enter();
	if (!c)
		return err_inval("!c");
	mutex_lock(&c->lock);
	free_idle_zombies(c);
	if (!list_empty(&c->zombies))
		goto busy;
	list_for_each(n, &c->lru)
		if (holds_sum(c, list_entry(n, struct rc_region, lru)))
			goto busy;
	mutex_unlock(&c->lock);
	cache_free(c);
	return 0;

busy:
	mutex_unlock(&c->lock);
	return err_detail(-EBUSY, IOVM_LOG_DEBUG, "rcache: an MR of it is held (got, not put)");
}

IOVM_API int iovm_rcache_stats(struct iovm_rcache *c, struct iovm_rcache_stats *st)
{
	err_enter();
	if (!c || !st)
		return err_inval("!c || !st");
	memset(st, 0, sizeof(*st));
	holds_stats(c, &st->hits, &st->raced);
	st->invalidations_unmap = atomic_load_explicit(&c->inval[0], memory_order_relaxed);
	st->invalidations_remove = atomic_load_explicit(&c->inval[1], memory_order_relaxed);
	st->invalidations_remap = atomic_load_explicit(&c->inval[2], memory_order_relaxed);
	st->invalidations_overflow = atomic_load_explicit(&c->inval[3], memory_order_relaxed);
	mutex_lock(&c->lock);
	st->misses = c->misses;
	st->uncached = c->uncached;
	st->evictions = c->evictions;
	st->regions = c->nr_regions;
	st->bytes = c->bytes;
	mutex_unlock(&c->lock);
	return 0;
}
