/* SPDX-License-Identifier: MIT */
/*
 * rcache.c - the registration cache: MRs kept by address after use, found
 * again without a lock, and never served stale.
 *
 * The index sorts regions by size into levels 8x apart: a region of L
 * bytes belongs to the smallest level whose granule (16 KiB, 128 KiB, ...,
 * 128 TiB) is at least L long, and is linked into the bucket of each
 * granule of that level it overlaps: one or two, since it is no longer
 * than a granule. A lookup of [addr, addr+len) reads, at each level in use
 * whose regions can be len long, the one bucket of addr. Regions that do
 * not overlap each other meet at most about ten to a bucket: a granule
 * holds eight regions of more than an eighth of it, plus the two that
 * cross its edges. So crowded memory (thousands of small buffers in one
 * heap arena) is found without a lock as well as sparse memory is, and a
 * miss files its region in O(1), with no tree to rebalance.
 *
 * Readers walk a bucket's list with no lock while the cache's lock holder
 * links and unlinks (after Linux's hlist_nulls under SLAB_TYPESAFE_BY_RCU):
 * region structs are kept for reuse, never freed before the cache, so a
 * reader may stand on a region that left its list and even joined
 * another. The end of each list is a marker naming its bucket: a reader
 * that reaches another bucket's end was led away and starts again. What a
 * reader finds is only a candidate, checked as below; a reader that finds
 * nothing takes the lock and looks again, so a list changing under it can
 * cost a hit, never correctness. Buckets (radix tables) live as long as
 * the cache.
 *
 * A hit writes only the calling thread's own memory:
 *   - find a region covering the range with the rights asked;
 *   - count a hold on it in the thread's own table (a plain store);
 *   - check the region is still indexed, in the same life (its generation
 *     did not move; the generation is also the seqlock that makes the
 *     range and rights read before it those of this life, as a reused
 *     struct rewrites them): an evictor takes a region out of the index, moves its
 *     generation, makes every thread pass a memory barrier (membarrier(2):
 *     readers then need only a compiler barrier), then sums the holds of
 *     all threads' tables. Either the reader sees the move and drops its
 *     hold, or the evictor sees the hold and keeps the region (a zombie,
 *     deregistered by its last put);
 *   - check every page of the range is valid, between two reads of the
 *     MR's seqcount: a lookup overtaken by an invalidation of its range is
 *     no hit.
 * A put undoes the hold in the thread's table; one made on another thread
 * than the get, or with the table full, goes to the region's shared
 * counter (atomic), and a thread's table is folded into those counters when
 * the thread exits: the sum stays exact.
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
#include <unistd.h>

#include "base/compiler.h"
#include "base/ctx.h"
#include "base/error.h"
#include "base/fault_inject.h"
#include "base/lock.h"
#include "base/radix.h"
#include "base/tlscache.h"
#include "iommu/iommu.h"
#include "os/membarrier.h"
#include "reg/reg_internal.h"

#define PG 4096u
/* User addresses are below 2^47 on x86-64 (four-level paging). */
#define VA_BITS 47
/*
 * Levels: granules of 2^14 bytes (a 4 KiB region shares a bucket with at
 * most four others it does not overlap), then 8x larger each (LEVEL_STEP),
 * up to one granule for the whole address space.
 */
#define LEVEL_SHIFT0 14
#define LEVEL_STEP 3
#define NR_LEVELS 12
static_assert(LEVEL_SHIFT0 + LEVEL_STEP * (NR_LEVELS - 1) == VA_BITS, "the top level takes any region");
/* A bucket table's first level: at most 2^16 pointers, 512 KiB of address space, most never touched. */
#define LEVEL_L1_BITS 16
/* List steps a lock-free lookup takes before it leaves the search to the locked path. */
#define FAST_STEPS 64
#define DEFAULT_MAX_REGIONS 16384
/* Regions a thread holds at once in its table; past it, holds go to the shared counters. */
#define HELD 32

/*
 * A bucket's list links regions by their next[] words, one per bucket a
 * region is in. A list entry names a region and which of its words goes
 * on: (region | i << 1), so a reader gets the region without a load. The
 * list's end is a marker, odd, that names the bucket (bucket_end()).
 */
#define LINK_END 1u
#define LINK_IDX 2u
#define LINK_MASK 7u

struct bucket {
	_Atomic uintptr_t first; /* a list entry, or the end marker; 0 while never used */
};

/*
 * What a lock-free reader reads comes first, in one cache line: the
 * generation, range, rights, MR and list words.
 */
struct rc_region {
	struct iovm_rcache *cache;
	/* Odd while out of the index; made even once the fields below it are written, before it is linked. */
	_Atomic uint64_t gen;
	uint64_t start, end;     /* [start, end), pages; written while gen is odd */
	uint32_t access;
	uint8_t level, nr_links; /* under cache.lock: its level and list words in use */
	struct iovm_mr *mr;
	_Atomic uintptr_t next[2]; /* in the buckets of its level it overlaps: written under cache.lock */
	struct list_node lru;    /* under cache.lock: in cache.lru (indexed), .zombies or .spare */
	_Atomic bool zombie;       /* out of the index but still held: the last put deregisters */
	_Atomic int64_t shared;    /* holds counted outside the threads' tables */
	_Atomic uint64_t used;     /* the cache's clock at the last hit */
	_Atomic uint64_t life;     /* moved when it is freed: holds of an earlier life do not count */
	uint64_t seen;             /* under cache.lock: the clock when eviction last looked */
} __attribute__((aligned(64)));
static_assert(offsetof(struct rc_region, next) + sizeof(uintptr_t[2]) <= 64, "a reader's fields in one line");

/*
 * Region structs come RC_CHUNK at a time: a miss then costs no malloc() of
 * its own (a cold cache pays one per RC_CHUNK misses, as UCX's memory pool
 * grows). A lock-free reader may look at a struct after its region went
 * (its generation says so), so structs live as long as the cache.
 */
#define RC_CHUNK 64

struct rc_chunk {
	struct list_node link; /* in cache.chunks, under cache.lock */
	struct rc_region r[RC_CHUNK];
};

/* A thread's holds on one cache's regions: written by that thread only. */
struct rc_held {
	_Atomic(struct rc_region *) r;
	_Atomic uint64_t life;     /* of r when taken */
	_Atomic int64_t n;
};

/* Whether @e counts holds on @r as it is now. */
static bool held_is(const struct rc_held *e, const struct rc_region *r)
{
	return atomic_load_explicit(&e->r, memory_order_relaxed) == r &&
	       atomic_load_explicit(&e->life, memory_order_relaxed) == atomic_load_explicit(&r->life, memory_order_relaxed);
}

struct rc_tls {
	struct tls_cache base;
	_Atomic uint64_t hits, raced; /* written by its thread only */
	/*
	 * The region this thread found last, tried first: a hint, checked as
	 * any region found in the index is (the struct may live another
	 * life by now). Its thread's only.
	 */
	struct rc_region *last;
	struct rc_held held[HELD];
};

struct iovm_rcache {
	struct reg_space *rs;
	struct iovm_domain *dom;
	uint64_t max_regions, max_bytes;
	struct radix level[NR_LEVELS]; /* granule -> struct bucket; linked under lock, read lock-free */
	_Atomic uint32_t levels_used;  /* levels with a region; written under lock */
	_Atomic uint64_t clock;    /* moved by misses: recency for eviction */
	bool fence_readers;        /* no membarrier(2): readers fence for themselves */
	struct tls_owner owner;    /* the threads' tables */
	_Atomic uint64_t hits_gone, raced_gone; /* of threads that exited */

	struct mutex lock;      /* everything below */
	uint64_t nr_at[NR_LEVELS]; /* indexed regions by level */
	struct list_node lru;      /* indexed regions, least recently registered or found first */
	struct list_node spare;    /* region structs to reuse */
	struct list_node chunks;   /* struct rc_chunk: where every region struct lives */
	struct list_node zombies;  /* out of the index, still held */
	uint64_t nr_regions, bytes;
	uint64_t misses, uncached, evictions;
	_Atomic uint64_t inval[4]; /* by event: unmap, remove, remap, lost */
	struct list_node link;     /* in reg_space.caches, under its lock */
};

static struct tls_kind rc_kind = TLS_KIND_INIT;
static __thread struct tls_slots rc_slots __tls_ie;

static void cache_free(struct iovm_rcache *c);

static void count(_Atomic uint64_t *ctr)
{
	atomic_fetch_add_explicit(ctr, 1, memory_order_relaxed);
}

/* A counter with one writer: a load and a store, no locked instruction. */
static void count_own(_Atomic uint64_t *ctr)
{
	atomic_store_explicit(ctr, atomic_load_explicit(ctr, memory_order_relaxed) + 1, memory_order_relaxed);
}

/* ---- the threads' tables ---- */

static struct tls_cache *tls_create(struct tls_owner *o)
{
	struct rc_tls *t = fi_calloc(1, sizeof(*t));

	(void)o;
	return t ? &t->base : NULL;
}

static void tls_discard(struct tls_cache *tc)
{
	free(container_of(tc, struct rc_tls, base));
}

/* The thread goes (or its slot does): its holds and counts to the shared counters. */
static void tls_retire(struct tls_owner *o, struct tls_cache *tc)
{
	struct iovm_rcache *c = container_of(o, struct iovm_rcache, owner);
	struct rc_tls *t = container_of(tc, struct rc_tls, base);

	for (unsigned i = 0; i < HELD; i++) {
		struct rc_region *r = atomic_load_explicit(&t->held[i].r, memory_order_relaxed);
		int64_t n = atomic_load_explicit(&t->held[i].n, memory_order_relaxed);

		if (r && n && held_is(&t->held[i], r))
			atomic_fetch_add_explicit(&r->shared, n, memory_order_seq_cst);
	}
	atomic_fetch_add_explicit(&c->hits_gone, atomic_load_explicit(&t->hits, memory_order_relaxed),
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&c->raced_gone, atomic_load_explicit(&t->raced, memory_order_relaxed),
				  memory_order_relaxed);
	free(t);
}

static struct rc_tls *tls_of(struct iovm_rcache *c)
{
	struct tls_cache *tc = tls_cache_get(&rc_kind, &rc_slots, &c->owner);

	return tc ? container_of(tc, struct rc_tls, base) : NULL;
}

/* Whether @e holds nothing that counts: never used, no holds, or holds of a region's earlier life. */
static bool held_free(const struct rc_held *e)
{
	struct rc_region *er = atomic_load_explicit(&e->r, memory_order_relaxed);

	return !er || !atomic_load_explicit(&e->n, memory_order_relaxed) || !held_is(e, er);
}

static struct rc_held *held_claim(struct rc_held *e, struct rc_region *r)
{
	/*
	 * Taken over with its count at 0: a summing evictor reads the count
	 * (acquire), then the region and its life, and so sees the new region
	 * with any new count, never the old region with it.
	 */
	atomic_store_explicit(&e->n, 0, memory_order_relaxed);
	atomic_store_explicit(&e->r, r, memory_order_relaxed);
	atomic_store_explicit(&e->life, atomic_load_explicit(&r->life, memory_order_relaxed),
			      memory_order_relaxed);
	return e;
}

static unsigned held_hash(const struct rc_region *r)
{
	/* Fibonacci hashing: region structs sit at a fixed stride, which a mask alone would fold. */
	return (unsigned)(((uintptr_t)r >> 6) * UINT64_C(0x9e3779b97f4a7c15) >> 59) & (HELD - 1);
}
static_assert(HELD == 32, "held_hash() takes five bits");

/*
 * The thread's entry for @r, from @r's slot on: with @make, the first that
 * is @r's or free (claimed for @r); else the first that counts holds on
 * @r. NULL when there is none (@make: the table is full).
 *
 * A region may so have two entries (one claimed while an older one further
 * on still counts): holds are summed over all entries, so that is exact,
 * and a get then stops at its first probe when the table is in use, not
 * after a search of all of it.
 */
static struct rc_held *held_of(struct rc_tls *t, struct rc_region *r, bool make)
{
	unsigned h = held_hash(r);

	for (unsigned i = 0; i < HELD; i++) {
		struct rc_held *e = &t->held[(h + i) & (HELD - 1)];

		if (held_is(e, r) && (make || atomic_load_explicit(&e->n, memory_order_relaxed) > 0))
			return e;
		if (make && held_free(e))
			return held_claim(e, r);
	}
	return NULL;
}

struct sum {
	const struct rc_region *r;
	int64_t n;
	bool shared_read;
};

static void sum_table(struct tls_cache *tc, void *arg)
{
	struct rc_tls *t = container_of(tc, struct rc_tls, base);
	struct sum *s = arg;

	for (unsigned i = 0; i < HELD; i++) {
		int64_t n = atomic_load_explicit(&t->held[i].n, memory_order_acquire);

		if (n && held_is(&t->held[i], s->r))
			s->n += n;
	}
}

/*
 * The holds on @r, all threads together. Needs cache.lock, and @r out of the
 * index with its generation moved (and, for zombies, the flag set) before.
 */
static int64_t refs(struct iovm_rcache *c, struct rc_region *r)
{
	struct sum s = { .r = r };

	/* Every thread past a barrier: a hold stored before it is visible now, one after it sees the move. */
	os_membarrier();
	/* The tables first: a thread exiting meanwhile moves its holds to the shared counter, read last. */
	tls_owner_for_each(&c->owner, sum_table, &s);
	return s.n + atomic_load_explicit(&r->shared, memory_order_seq_cst);
}

/* The holds on an indexed region (eviction decides on them): no barrier needed, under the lock. */
static int64_t refs_indexed(struct iovm_rcache *c, struct rc_region *r)
{
	struct sum s = { .r = r };

	tls_owner_for_each(&c->owner, sum_table, &s);
	return s.n + atomic_load_explicit(&r->shared, memory_order_relaxed);
}

/* ---- the lock-free hit ---- */

/* After a plain store of a hold, before the loads that check it stands. */
static inline void reader_fence(const struct iovm_rcache *c)
{
	if (unlikely(c->fence_readers))
		atomic_thread_fence(memory_order_seq_cst);
	else
		atomic_signal_fence(memory_order_seq_cst);
}

static void hold_add(struct rc_held *h, struct rc_region *r, int64_t d)
{
	if (likely(h))
		atomic_store_explicit(&h->n, atomic_load_explicit(&h->n, memory_order_relaxed) + d,
				      memory_order_release);
	else
		atomic_fetch_add_explicit(&r->shared, d, memory_order_seq_cst);
}

/* Hold @r, read at generation @gen, for [addr, addr+len) if it is a valid hit. */
static bool try_hold(struct iovm_rcache *c, struct rc_tls *t, struct rc_region *r, uint64_t gen, uint64_t addr,
		     uint64_t len)
{
	struct rc_held *h;
	struct iovm_mr *mr;
	uint64_t s1, s2;
	bool valid;

	h = held_of(t, r, true);
	hold_add(h, r, 1);
	reader_fence(c);
	/* Still indexed, in the life whose range and rights we read? */
	if (atomic_load_explicit(&r->gen, memory_order_acquire) != gen)
		goto drop;
	mr = r->mr;
	s1 = atomic_load_explicit(&mr->seq, memory_order_acquire);
	valid = mr_pages_valid(mr, addr, len);
	atomic_thread_fence(memory_order_acquire);
	s2 = atomic_load_explicit(&mr->seq, memory_order_relaxed);
	if (valid && !(s1 & 1) && s1 == s2) {
		uint64_t now = atomic_load_explicit(&c->clock, memory_order_relaxed);

		/* Written only when the clock moved: almost never. */
		if (atomic_load_explicit(&r->used, memory_order_relaxed) != now)
			atomic_store_explicit(&r->used, now, memory_order_relaxed);
		return true;
	}
	/* An invalidation overtook the lookup: not a hit, and counted. (Invalid pages: just a miss.) */
	if ((s1 & 1) || s1 != s2)
		count_own(&t->raced);
drop:
	hold_add(h, r, -1);
	return false;
}

/*
 * Hold @r for [addr, addr+len) if it is a valid hit. The first look
 * (indexed, long enough, with the rights) is inline: most candidates of a
 * bucket fail it.
 */
static inline bool try_hit(struct iovm_rcache *c, struct rc_tls *t, struct rc_region *r, uint64_t addr,
			   uint64_t len, uint32_t access)
{
	uint64_t gen = atomic_load_explicit(&r->gen, memory_order_acquire);

	if ((gen & 1) || addr < r->start || addr + len > r->end || (access & ~r->access))
		return false;
	return try_hold(c, t, r, gen, addr, len);
}

/* ---- the index ---- */

static unsigned level_shift(unsigned k)
{
	return LEVEL_SHIFT0 + LEVEL_STEP * k;
}

/* The level of a region (or a range) of @len bytes: the first whose granules are as long. */
static unsigned level_of(uint64_t len)
{
	unsigned bits = len ? ilog2_up(len) : 0;

	return bits <= LEVEL_SHIFT0 ? 0 : (bits - LEVEL_SHIFT0 + LEVEL_STEP - 1) / LEVEL_STEP;
}

/* The end marker of a bucket's list: odd (no link is), and naming its level and granule. */
static uintptr_t bucket_end(unsigned k, uint64_t key)
{
	return (uintptr_t)(key << 5 | k << 1 | LINK_END);
}
static_assert(NR_LEVELS <= 16 && VA_BITS - LEVEL_SHIFT0 + 5 <= 64, "a bucket's end marker holds its level and key");

/* A bucket's first link, an empty bucket's (never used, all zero) being its end. */
static uintptr_t bucket_first(const struct bucket *b, unsigned k, uint64_t key, memory_order mo)
{
	uintptr_t p = atomic_load_explicit(&b->first, mo);

	return p ? p : bucket_end(k, key);
}

static struct rc_region *entry_region(uintptr_t p)
{
	return (struct rc_region *)(p & ~(uintptr_t)LINK_MASK);
}

/* The word that goes on from list entry @p. */
static _Atomic uintptr_t *entry_next(uintptr_t p)
{
	return &entry_region(p)->next[(p & LINK_IDX) ? 1 : 0];
}

static uintptr_t entry_of(struct rc_region *r, unsigned i)
{
	return (uintptr_t)r | (i ? LINK_IDX : 0);
}

/*
 * A region of the index holding [addr, addr+len) with @access, all valid,
 * held; no lock. NULL when none is found: there may be none, or the lists
 * changed too much under the walk.
 */
static struct rc_region *lookup_fast(struct iovm_rcache *c, struct rc_tls *t, uint64_t addr, uint64_t len,
				     uint32_t access)
{
	uint32_t used = atomic_load_explicit(&c->levels_used, memory_order_relaxed);
	unsigned steps = FAST_STEPS;

	while (used) {
		unsigned k = (unsigned)__builtin_ctz(used);
		uint64_t key = addr >> level_shift(k);
		struct bucket *b = radix_lookup(&c->level[k], key);
		uintptr_t p;

		used &= used - 1;
		/*
		 * A level of regions shorter than the range holds none that
		 * covers it. (Tested here, beside the lookup, rather than on
		 * the mask before it: off the chain of loads a hit waits on.)
		 */
		if (!b || len > UINT64_C(1) << level_shift(k))
			continue;
again:
		for (p = bucket_first(b, k, key, memory_order_acquire); !(p & LINK_END);
		     p = atomic_load_explicit(entry_next(p), memory_order_acquire)) {
			struct rc_region *r = entry_region(p);

			if (try_hit(c, t, r, addr, len, access))
				return r;
			if (!--steps)
				return NULL;
		}
		/* Led into another bucket's list by a link that moved: this one again. */
		if (p != bucket_end(k, key)) {
			if (!--steps)
				return NULL;
			goto again;
		}
	}
	return NULL;
}

/* ---- the locked side ---- */

static void region_retire(struct iovm_rcache *c, struct rc_region *r);

/*
 * Link @r (its fields written, its generation odd) into the buckets it
 * overlaps at its level, and make it visible. All or nothing: -ENOMEM
 * leaves it out. Needs cache.lock.
 */
static int index_add(struct iovm_rcache *c, struct rc_region *r)
{
	unsigned k = level_of(r->end - r->start), s = level_shift(k);
	uint64_t key = r->start >> s;
	struct bucket *b[2];

	/* No longer than a granule: in one, or across the edge of two. */
	r->nr_links = (r->end - 1) >> s != key ? 2 : 1;
	for (unsigned i = 0; i < r->nr_links; i++)
		if (!(b[i] = radix_lookup_alloc(&c->level[k], key + i)))
			return -ENOMEM;
	r->level = (uint8_t)k;
	/* Even: a reader that finds a link below (release) reads the fields written before. */
	atomic_fetch_add_explicit(&r->gen, 1, memory_order_release);
	for (unsigned i = 0; i < r->nr_links; i++) {
		atomic_store_explicit(&r->next[i], bucket_first(b[i], k, key + i, memory_order_relaxed),
				      memory_order_relaxed);
		atomic_store_explicit(&b[i]->first, entry_of(r, i), memory_order_release);
	}
	if (!c->nr_at[k]++)
		atomic_fetch_or_explicit(&c->levels_used, 1u << k, memory_order_relaxed);
	return 0;
}

/* Take @r out of the index: no lookup finds it any more. Needs cache.lock. */
static void index_del(struct iovm_rcache *c, struct rc_region *r)
{
	unsigned k = r->level, s = level_shift(k);

	for (unsigned i = 0; i < r->nr_links; i++) {
		struct bucket *b = radix_lookup(&c->level[k], (r->start >> s) + i);
		_Atomic uintptr_t *pp = &b->first;

		while (atomic_load_explicit(pp, memory_order_relaxed) != entry_of(r, i))
			pp = entry_next(atomic_load_explicit(pp, memory_order_relaxed));
		/* A reader standing on the region goes on along this list: its own word stays. */
		atomic_store_explicit(pp, atomic_load_explicit(&r->next[i], memory_order_relaxed),
				      memory_order_release);
	}
	r->nr_links = 0;
	if (!--c->nr_at[k])
		atomic_fetch_and_explicit(&c->levels_used, ~(1u << k), memory_order_relaxed);
	/* Odd: a reader holding a pointer to it sees it gone. */
	atomic_fetch_add_explicit(&r->gen, 1, memory_order_seq_cst);
}

/*
 * Call @fn on every indexed region overlapping [start, end), each once,
 * until it returns true; that region, or NULL. @fn may take the region it
 * is given out of the index. Needs cache.lock.
 */
static struct rc_region *for_each_overlap(struct iovm_rcache *c, uint64_t start, uint64_t end,
					  bool (*fn)(struct iovm_rcache *c, struct rc_region *r, void *arg),
					  void *arg)
{
	uint32_t used = atomic_load_explicit(&c->levels_used, memory_order_relaxed);

	while (used) {
		unsigned k = (unsigned)__builtin_ctz(used), s = level_shift(k);
		struct radix *ix = &c->level[k];
		uint64_t first = start >> s, last = (end - 1) >> s;

		used &= used - 1;
		for (uint64_t key = first; key <= last; key++) {
			struct bucket *b = radix_lookup(ix, key);
			uintptr_t p, next;

			if (!b) {
				/* No table here: on to the next one's first key. */
				key |= (UINT64_C(1) << ix->l2_bits) - 1;
				continue;
			}
			for (p = bucket_first(b, k, key, memory_order_relaxed); !(p & LINK_END); p = next) {
				struct rc_region *r = entry_region(p);

				next = atomic_load_explicit(entry_next(p), memory_order_relaxed);
				/* In two buckets: met in the first of them the range reaches. */
				if (r->end <= start || r->start >= end || MAX(r->start >> s, first) != key)
					continue;
				if (fn(c, r, arg))
					return r;
			}
		}
	}
	return NULL;
}

/* A region struct, from the spares or a new chunk. Needs cache.lock. */
static struct rc_region *region_new(struct iovm_rcache *c)
{
	struct rc_region *r;
	struct rc_chunk *ch;

	if (list_empty(&c->spare)) {
		/* Cache-line aligned (what a reader reads is one line): not calloc(). */
		ch = fi_aligned_alloc(_Alignof(struct rc_chunk), sizeof(*ch));
		if (!ch)
			return NULL;
		memset(ch, 0, sizeof(*ch));
		list_add(&c->chunks, &ch->link);
		for (unsigned i = 0; i < RC_CHUNK; i++) {
			struct rc_region *n = &ch->r[i];

			n->cache = c;
			/* Out of the index: odd. */
			atomic_init(&n->gen, 1);
			list_add_tail(&c->spare, &n->lru);
		}
	}
	r = list_entry(c->spare.next, struct rc_region, lru);
	list_del(&r->lru);
	return r;
}

/* Deregister @r's MR and keep the struct for reuse. Needs cache.lock; @r is out of the index and idle. */
static void region_free(struct iovm_rcache *c, struct rc_region *r)
{
	r->mr->rc = NULL;
	mr_dereg(r->mr);
	r->mr = NULL;
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
	index_del(c, r);
	list_del(&r->lru);
	c->nr_regions--;
	c->bytes -= r->end - r->start;
	atomic_store_explicit(&r->zombie, true, memory_order_seq_cst);
	if (refs(c, r)) {
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
		uint64_t used = atomic_load_explicit(&r->used, memory_order_relaxed);

		list_del(&r->lru);
		list_add_tail(&c->lru, &r->lru);
		if (r == keep || refs_indexed(c, r))
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
	if (f->addr < r->start || f->addr + f->len > r->end || (f->access & ~r->access))
		return false;
	/* Under the cache lock no region leaves; the seqcount still guards the pages. */
	s1 = atomic_load_explicit(&r->mr->seq, memory_order_acquire);
	return !(s1 & 1) && mr_pages_valid(r->mr, f->addr, f->len) &&
	       atomic_load_explicit(&r->mr->seq, memory_order_acquire) == s1;
}

/* A region of the index holding [addr, addr+len) with @access, all valid, held. Needs cache.lock. */
static struct rc_region *lookup_slow(struct iovm_rcache *c, struct rc_tls *t, uint64_t addr, uint64_t len,
				     uint32_t access, bool *overlap)
{
	struct find f = { .addr = addr, .len = len, .access = access };
	struct rc_region *r = for_each_overlap(c, align_down(addr, PG), align_up(addr + len, PG), holds_valid, &f);

	*overlap = f.overlap;
	if (r)
		hold_add(t ? held_of(t, r, true) : NULL, r, 1);
	return r;
}

/* A region the application took all the memory of, held by no one: out. */
static bool retire_if_dead(struct iovm_rcache *c, struct rc_region *r, void *arg)
{
	(void)arg;
	if (!__atomic_load_n(&r->mr->nr_valid, __ATOMIC_RELAXED) && !refs_indexed(c, r))
		region_retire(c, r);
	return false;
}

/*
 * Regions over [start, end) with no valid page left (the application took
 * their memory away) and no holder: out, so that they do not lengthen the
 * lists. Needs cache.lock.
 */
static void retire_dead(struct iovm_rcache *c, uint64_t start, uint64_t end)
{
	for_each_overlap(c, start, end, retire_if_dead, NULL);
}

static int get_slow(struct iovm_rcache *c, struct rc_tls *t, uint64_t addr, uint64_t len, uint32_t access,
		    struct iovm_mr **out)
{
	uint64_t start = align_down(addr, PG), end = align_up(addr + len, PG);
	struct rc_region *r;
	struct iovm_mr *mr;
	bool overlap;
	int ret;

	mutex_lock(&c->lock);
	r = lookup_slow(c, t, addr, len, access, &overlap);
	if (r) {
		if (t)
			count_own(&t->hits);
		goto found;
	}
	c->misses++;
	atomic_fetch_add_explicit(&c->clock, 1, memory_order_relaxed);
	/*
	 * Regions are page-aligned: one overlaps [start, end) exactly when it
	 * overlaps [addr, addr+len), so a lookup that met none leaves nothing
	 * to retire, and the tree need not be walked again.
	 */
	if (overlap)
		retire_dead(c, start, end);
	ret = iovm_mr_reg(c->dom, (void *)start, end - start, access, &mr);
	if (ret)
		goto unlock;
	if (!mr->monitored) {
		/* Nothing would say when it goes stale: the caller's alone, deregistered at put. */
		c->uncached++;
		mutex_unlock(&c->lock);
		*out = mr;
		return 0;
	}
	r = region_new(c);
	ret = -ENOMEM;
	if (!r)
		goto dereg;
	r->start = start;
	r->end = end;
	r->access = access;
	r->mr = mr;
	r->seen = atomic_load_explicit(&c->clock, memory_order_relaxed);
	ret = index_add(c, r);
	if (ret) {
		/* Never filed, its generation still odd: a spare again. */
		r->mr = NULL;
		list_add(&c->spare, &r->lru);
		goto dereg;
	}
	mr->rc = r;
	list_add_tail(&c->lru, &r->lru);
	c->nr_regions++;
	c->bytes += end - start;
	hold_add(t ? held_of(t, r, true) : NULL, r, 1);
	evict(c, r);
found:
	mutex_unlock(&c->lock);
	if (t)
		t->last = r;
	*out = r->mr;
	return 0;

dereg:
	mr_dereg(mr);
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
		     (access & IOVM_ACCESS_ON_DEMAND)))
		return -EINVAL;
	t = tls_of(c);
	if (likely(t)) {
		/* The same buffer again (a ping-pong, a ring of sends): no index walk. */
		if ((r = t->last) && try_hit(c, t, r, a, len, access))
			goto hit;
		if ((r = lookup_fast(c, t, a, len, access))) {
			t->last = r;
			goto hit;
		}
	}
	err_clear();
	return get_slow(c, t, a, len, access, mr);
hit:
	count_own(&t->hits);
	*mr = r->mr;
	return 0;
}

IOVM_API int iovm_rcache_put(struct iovm_rcache *c, struct iovm_mr *mr)
{
	struct rc_region *r;
	struct rc_held *h;
	struct rc_tls *t;

	if (unlikely(!c || !mr))
		return -EINVAL;
	r = mr->rc;
	if (!r) {
		/* Uncached: the caller's only. */
		return mr_dereg(mr);
	}
	if (unlikely(r->cache != c))
		return -EINVAL;
	t = tls_of(c);
	h = t ? held_of(t, r, false) : NULL;
	/* Held here: undone here. Got on another thread (or here with a full table): the shared counter. */
	hold_add(h, r, -1);
	reader_fence(c);
	if (unlikely(atomic_load_explicit(&r->zombie, memory_order_acquire))) {
		/* Evicted or invalidated away while held: the last put lets it go. */
		mutex_lock(&c->lock);
		if (atomic_load_explicit(&r->zombie, memory_order_relaxed) && r->mr == mr && !refs(c, r)) {
			list_del(&r->lru);
			region_free(c, r);
		}
		mutex_unlock(&c->lock);
	}
	return 0;
}

void rcache_count_invalidation(struct rc_region *r, unsigned kind)
{
	unsigned i = kind == UFFD_EVENT_UNMAP ? 0 : kind == UFFD_EVENT_REMOVE ? 1 : kind == UFFD_EVENT_REMAP ? 2 : 3;

	count(&r->cache->inval[i]);
}

/* The levels' bucket tables, empty. */
static int levels_init(struct iovm_rcache *c)
{
	for (unsigned k = 0; k < NR_LEVELS; k++) {
		/* The top level has one granule; a table needs a key bit. */
		unsigned key_bits = MAX(VA_BITS - level_shift(k), 1u);
		/*
		 * Second-level tables of 8192 buckets at least (64 KiB of address
		 * space, touched a page at a time), the first level within its bound.
		 */
		unsigned l2_bits = MAX(key_bits - MIN(key_bits, LEVEL_L1_BITS), MIN(key_bits, 13u));
		int ret = radix_init(&c->level[k], key_bits, l2_bits, sizeof(struct bucket));

		if (ret)
			return ret;
	}
	return 0;
}

static void levels_destroy(struct iovm_rcache *c)
{
	for (unsigned k = 0; k < NR_LEVELS; k++)
		radix_destroy(&c->level[k]);
}

IOVM_API int iovm_rcache_create(struct iovm_domain *dom, const struct iovm_rcache_attr *attr,
				struct iovm_rcache **out)
{
	struct iovm_rcache *c;
	int ret;

	err_clear();
	if (!dom || !out)
		return -EINVAL;
	c = fi_calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->rs = iommu_domain_ctx(dom)->reg;
	c->dom = dom;
	c->max_regions = attr && attr->max_regions ? attr->max_regions : DEFAULT_MAX_REGIONS;
	c->max_bytes = attr && attr->max_bytes ? attr->max_bytes : c->rs->budget_pages * PG;
	c->fence_readers = !os_membarrier_init();
	ret = levels_init(c);
	if (ret) {
		levels_destroy(c);
		free(c);
		return ret;
	}
	c->owner.create = tls_create;
	c->owner.retire = tls_retire;
	c->owner.discard = tls_discard;
	tls_owner_register(&c->owner);
	mutex_init(&c->lock);
	list_init(&c->lru);
	list_init(&c->spare);
	list_init(&c->chunks);
	list_init(&c->zombies);
	mutex_lock(&c->rs->lock);
	list_add(&c->rs->caches, &c->link);
	mutex_unlock(&c->rs->lock);
	*out = c;
	return 0;
}

void rcache_destroy_all(struct reg_space *rs)
{
	for (;;) {
		struct iovm_rcache *c;

		mutex_lock(&rs->lock);
		c = list_empty(&rs->caches) ? NULL : list_entry(rs->caches.next, struct iovm_rcache, link);
		mutex_unlock(&rs->lock);
		if (!c)
			return;
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
}

/* Deregister every region the cache keeps and free it. */
static void cache_free(struct iovm_rcache *c)
{
	struct list_node *n, *t;

	mutex_lock(&c->rs->lock);
	list_del(&c->link);
	mutex_unlock(&c->rs->lock);
	/* The threads' tables go first: nothing may use the cache any more. */
	tls_owner_unregister(&c->owner);
	mutex_lock(&c->lock);
	list_for_each_safe(n, t, &c->lru) {
		struct rc_region *r = list_entry(n, struct rc_region, lru);

		index_del(c, r);
		list_del(&r->lru);
		region_free(c, r);
	}
	while (!list_empty(&c->chunks)) {
		struct rc_chunk *ch = list_entry(c->chunks.next, struct rc_chunk, link);

		list_del(&ch->link);
		free(ch);
	}
	mutex_unlock(&c->lock);
	mutex_destroy(&c->lock);
	levels_destroy(c);
	free(c);
}

IOVM_API int iovm_rcache_destroy(struct iovm_rcache *c)
{
	struct list_node *n;

	err_clear();
	if (!c)
		return -EINVAL;
	mutex_lock(&c->lock);
	if (!list_empty(&c->zombies)) {
		mutex_unlock(&c->lock);
		return -EBUSY;
	}
	list_for_each(n, &c->lru)
		if (refs_indexed(c, list_entry(n, struct rc_region, lru))) {
			mutex_unlock(&c->lock);
			return -EBUSY;
		}
	mutex_unlock(&c->lock);
	cache_free(c);
	return 0;
}

struct stat_sum {
	uint64_t hits, raced;
};

static void sum_stats(struct tls_cache *tc, void *arg)
{
	struct rc_tls *t = container_of(tc, struct rc_tls, base);
	struct stat_sum *s = arg;

	s->hits += atomic_load_explicit(&t->hits, memory_order_relaxed);
	s->raced += atomic_load_explicit(&t->raced, memory_order_relaxed);
}

IOVM_API int iovm_rcache_stats(struct iovm_rcache *c, struct iovm_rcache_stats *st)
{
	struct stat_sum s = { 0 };

	err_clear();
	if (!c || !st)
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	tls_owner_for_each(&c->owner, sum_stats, &s);
	st->hits = s.hits + atomic_load_explicit(&c->hits_gone, memory_order_relaxed);
	st->raced = s.raced + atomic_load_explicit(&c->raced_gone, memory_order_relaxed);
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
