/* SPDX-License-Identifier: MIT */
/*
 * rcache_internal.h - what the registration cache's four files share:
 *   rcache.c        its life and its API: regions registered, retired,
 *                   evicted and freed, gets that miss, puts, statistics;
 *   rcache_structs.c where region structs come from: chunks, kept for the
 *                   context's next caches when their cache goes;
 *   rcache_holds.c  who holds what: the threads' tables of holds, their
 *                   sums, and the accounting that accepts each put once;
 *   rcache_index.c  the index by address, walked without a lock, and the
 *                   lock-free hit's rarer steps.
 * The hit's own steps (a hold counted, a region checked) are inline here:
 * they run in every get.
 *
 * Lock order: cache.lock -> reg_space.lock (a miss registers under the
 * cache's lock) -> the tlscache lock (sums of the threads' tables).
 */
#ifndef IOVM_REG_RCACHE_INTERNAL_H
#define IOVM_REG_RCACHE_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/check.h"
#include "base/compiler.h"
#include "base/list.h"
#include "base/lock.h"
#include "base/radix.h"
#include "base/tlscache.h"
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
/* Regions a thread holds at once in its table; past it, holds go to the shared counters. */
#define HELD 64

struct bucket {
	_Atomic uintptr_t first; /* a list entry, or the end marker; 0 while never used */
};

/*
 * A region: a range registered for the cache, and the MR that registers
 * it, embedded. Its struct lives as long as the cache and goes through
 * lives: spare, then live (indexed; or a zombie: out of the index, still
 * held; or uncached: memory the monitor cannot watch, never indexed, a
 * zombie from the start), then spare again.
 *
 * What a lock-free reader reads comes first, in one cache line: the
 * generation, range, rights and list words. Readers read them before they
 * know the region is theirs (the generation, a seqlock, tells them after):
 * atomics, relaxed, written under cache.lock while the generation is odd.
 */
struct rc_region {
	struct iovm_rcache *cache; /* set when the struct is made */
	/* Odd while out of the index; made even once the fields below it are written, before it is linked. */
	_Atomic uint64_t gen;
	_Atomic uint64_t start, end; /* [start, end), pages */
	_Atomic uint32_t access;
	uint8_t level, nr_links;     /* under cache.lock: its level and list words in use */
	uint16_t slot;               /* its entry in the threads' tables of holds (held_slot()): set when made */
	_Atomic uintptr_t next[2];   /* in the buckets of its level it overlaps: written under cache.lock */
	struct list_node lru;        /* under cache.lock: in cache.lru (indexed), .zombies or .spare */
	bool live;                   /* under cache.lock: its MR is registered (a miss made it, no free since) */
	_Atomic bool zombie;         /* out of the index but maybe held: the last put deregisters */
	_Atomic int64_t shared;      /* holds counted outside the threads' tables */
	_Atomic uint64_t used;       /* the cache's clock at the last hit */
	_Atomic uint64_t life;       /* moved when it is freed: holds of an earlier life do not count */
	/* Its MR's pages, written with the range: a hit compares it with the MR's count of valid pages. */
	_Atomic uint64_t npages;
	uint64_t seen;               /* under cache.lock: the clock when eviction last looked */
	/* Its registration: mr.rc points back here for the struct's whole life. */
	struct iovm_mr mr;
} __attribute__((aligned(64)));
static_assert(offsetof(struct rc_region, next) + sizeof(uintptr_t[2]) <= 64, "a reader's fields in one line");
/* What a hit and its put read past the first line (holds, age, pages) in the second. */
static_assert(offsetof(struct rc_region, zombie) >= 64 && offsetof(struct rc_region, npages) + sizeof(uint64_t) <= 128,
	      "a hit's own fields in the second line");

/*
 * Region structs come RC_CHUNK at a time: a miss then costs no malloc() of
 * its own (a cold cache pays one per RC_CHUNK misses, as UCX's memory pool
 * grows), and a struct is cleared only when a miss first takes it, so a
 * chunk costs its allocation alone. A lock-free reader may look at a
 * struct after its region went (its generation says so), and a put may be
 * handed the MR of one, so structs live as long as the cache; then the
 * context's next caches take them (rcache_structs.c).
 */
#define RC_CHUNK 64

struct rc_chunk {
	struct list_node link; /* in cache.chunks, under cache.lock */
	struct rc_region r[RC_CHUNK]; /* from cache.fresh on: never used, not cleared */
};

/* A thread's holds on one cache's regions: written by that thread only. */
struct rc_held {
	_Atomic(struct rc_region *) r;
	_Atomic uint64_t life; /* of r when taken */
	_Atomic int64_t n;     /* never negative: a put takes from it only what its thread's gets put there */
};

/* Hints a thread keeps (rc_tls.hint): a working set of buffers found without the index. */
#define RC_HINTS 128

/*
 * A hint: the region a get that began in @page found. The page is kept
 * beside it so that a get of another page sharing the slot (a miss, most
 * often) does not read a region struct long out of the CPU's caches.
 */
struct rc_hint {
	uint64_t page;
	struct rc_region *r;
};

struct rc_tls {
	struct tls_cache base;
	_Atomic uint64_t hits, raced; /* written by its thread only */
	struct rc_held held[HELD];
	/*
	 * The regions this thread found last, by the page their get began
	 * in, tried before the index: hints, each checked as any region found
	 * in the index is (the struct may live another life by now). Its
	 * thread's only.
	 */
	struct rc_hint hint[RC_HINTS];
};

struct iovm_rcache {
	/* Read by every get: */
	struct reg_space *rs;
	struct iovm_domain *dom;
	struct radix level[NR_LEVELS]; /* granule -> struct bucket; linked under lock, read lock-free */
	_Atomic uint32_t levels_used;  /* levels with a region; written under lock */
	_Atomic uint64_t clock;        /* moved by misses: recency for eviction */
	bool fence_readers;            /* no membarrier(2): readers fence for themselves */
	struct tls_owner owner;        /* the threads' tables */
	uint64_t max_regions, max_bytes;
	/*
	 * Written under cache.lock: regions held past the limits stayed
	 * (eviction takes idle ones only), so a put that leaves one idle
	 * takes the lock and evicts. Read by every put, written rarely.
	 */
	_Atomic bool over_limits;
	_Atomic uint64_t hits_gone, raced_gone; /* of threads that exited */
	_Atomic uint64_t inval[4];     /* by event: unmap, remove, remap, lost */

	struct mutex lock;             /* everything below, and what says "under cache.lock" */
	uint64_t nr_at[NR_LEVELS];     /* indexed regions by level */
	struct list_node lru;          /* indexed regions, least recently registered or found first */
	struct list_node spare;        /* region structs to reuse */
	struct list_node chunks;       /* struct rc_chunk: where every region struct lives */
	struct rc_region *fresh;       /* the newest chunk's structs never used: from here */
	unsigned nr_fresh;             /* how many */
	struct list_node zombies;      /* live, out of the index: held, or uncached */
	uint64_t nr_regions, bytes;    /* indexed */
	uint64_t nr_structs;           /* region structs made */
	uint64_t misses, uncached, evictions;
	struct list_node link;         /* in reg_space.caches, under its lock */
};

/* ---- rcache_holds.c ---- */

struct rc_tls *rc_tls_slow(struct iovm_rcache *c);
void holds_register(struct iovm_rcache *c);
void holds_unregister(struct iovm_rcache *c);
/*
 * The holds on @r of its current life, all threads together, as far as
 * the caller can know them: every hold whose get happened before. Needs
 * cache.lock.
 */
int64_t holds_sum(struct iovm_rcache *c, struct rc_region *r);
/*
 * The holds on @r exactly, lock-free gets racing with it included: @r is
 * out of the index, its generation moved and its zombie flag set before.
 * Makes every thread pass a memory barrier. Needs cache.lock.
 */
int64_t holds_exact(struct iovm_rcache *c, struct rc_region *r);
/*
 * A put on the calling thread (@t, NULL when it has no table) of a hold on
 * @r, checked against the holds there are: the remaining holds, or
 * -EINVAL when none is left to give back (nothing changed then). Needs
 * cache.lock.
 */
int64_t holds_put_locked(struct iovm_rcache *c, struct rc_tls *t, struct rc_region *r);
/* Counters of all threads, for statistics. */
void holds_stats(struct iovm_rcache *c, uint64_t *hits, uint64_t *raced);

/* ---- rcache_index.c ---- */

int index_init(struct iovm_rcache *c);
void index_destroy(struct iovm_rcache *c);
/*
 * Link @r (its fields written, its generation odd) into the buckets it
 * overlaps at its level, and make it visible. All or nothing: -ENOMEM
 * leaves it out. Needs cache.lock.
 */
int index_add(struct iovm_rcache *c, struct rc_region *r);
/* Take @r out of the index: no lookup finds it any more. Needs cache.lock. */
void index_del(struct iovm_rcache *c, struct rc_region *r);
/*
 * A region of the index holding [addr, addr+len) with @access, all valid,
 * held; no lock. NULL when none is found: there may be none, or the lists
 * changed too much under the walk.
 */
struct rc_region *index_lookup(struct iovm_rcache *c, struct rc_tls *t, uint64_t addr, uint64_t len,
			       uint32_t access);
/*
 * Call @fn on every indexed region overlapping [start, end), each once,
 * until it returns true; that region, or NULL. @fn may take the region it
 * is given out of the index. Needs cache.lock.
 */
struct rc_region *index_for_each_overlap(struct iovm_rcache *c, uint64_t start, uint64_t end,
					 bool (*fn)(struct iovm_rcache *c, struct rc_region *r, void *arg),
					 void *arg);
/*
 * The rest of a hit the inline check could not settle: @r, read at
 * generation @gen, held through @h (taken in @r's life @life). The pages
 * of [addr, addr+len) checked one by one; the hold kept if it is a valid
 * hit, else dropped.
 */
bool index_hold_slow(struct iovm_rcache *c, struct rc_tls *t, struct rc_region *r, struct rc_held *h, uint64_t gen,
		     uint64_t life, uint64_t addr, uint64_t len);

/* ---- rcache_structs.c ---- */

/* A region struct, made or a spare, out of the index and idle. Needs cache.lock. */
struct rc_region *region_new(struct iovm_rcache *c);
/* The cache goes: its chunks to the context's, for its next caches. Needs cache.lock, no reader left. */
void chunks_give_back(struct iovm_rcache *c);
/* The context closes, its caches gone: their chunks are freed. */
void chunks_free_all(struct reg_space *rs);

/* ---- rcache.c ---- */

/* A hold on zombie @r was dropped by a get that found it no hit: free @r if that was the last. */
void region_release_zombie(struct iovm_rcache *c, struct rc_region *r, uint64_t life);

/* ---- the hit's steps, inline ---- */

extern struct tls_kind rc_kind;
extern __thread struct tls_slots rc_slots __tls_ie;

/* The calling thread's table, made on first use; NULL when memory is short. */
static inline struct rc_tls *rc_tls_of(struct iovm_rcache *c)
{
	if (likely(rc_slots.s[0].id == c->owner.id))
		return container_of(rc_slots.s[0].c, struct rc_tls, base);
	return rc_tls_slow(c);
}

/*
 * The hint slot of a get at @addr: its page number (below 2^35) folded
 * seven bits at a time, which spreads buffers at a fixed stride (a pool's)
 * over distinct slots, as a multiplicative hash does not for strides of
 * a power of two.
 */
static inline unsigned hint_slot(uint64_t addr)
{
	uint64_t k = addr >> 12;

	return (unsigned)(k ^ k >> 7 ^ k >> 14 ^ k >> 21 ^ k >> 28) & (RC_HINTS - 1);
}
static_assert(RC_HINTS == 128 && VA_BITS - 12 <= 35, "hint_slot() folds 35 bits into seven");

/* Whether @e counts holds on @r as it is now. */
static inline bool held_is(const struct rc_held *e, const struct rc_region *r)
{
	return atomic_load_explicit(&e->r, memory_order_relaxed) == r &&
	       atomic_load_explicit(&e->life, memory_order_relaxed) == atomic_load_explicit(&r->life, memory_order_relaxed);
}

/* Whether @e holds nothing that counts: never used, no holds, or holds of a region's earlier life. */
static inline bool held_free(const struct rc_held *e)
{
	struct rc_region *er = atomic_load_explicit(&e->r, memory_order_relaxed);

	return !er || !atomic_load_explicit(&e->n, memory_order_relaxed) || !held_is(e, er);
}

static inline struct rc_held *held_claim(struct rc_held *e, struct rc_region *r)
{
	/*
	 * Taken over with its count at 0: a summing evictor reads the count
	 * (acquire), then the region and its life, and so sees the new region
	 * with any new count, never the old region with it.
	 */
	atomic_store_explicit(&e->n, 0, memory_order_relaxed);
	atomic_store_explicit(&e->r, r, memory_order_relaxed);
	atomic_store_explicit(&e->life, atomic_load_explicit(&r->life, memory_order_relaxed), memory_order_relaxed);
	return e;
}

/*
 * Where a thread's table counts holds on @r first: the struct's number in
 * its cache, so that regions made one after another (a pool's buffers
 * registered in turn) never share an entry, up to HELD of them.
 */
static inline unsigned held_slot(const struct rc_region *r)
{
	return r->slot & (HELD - 1);
}

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
static inline struct rc_held *held_of(struct rc_tls *t, struct rc_region *r, bool make)
{
	unsigned h = held_slot(r);

	for (unsigned i = 0; i < HELD; i++) {
		struct rc_held *e = &t->held[(h + i) & (HELD - 1)];

		if (held_is(e, r) && (make || atomic_load_explicit(&e->n, memory_order_relaxed) > 0))
			return e;
		if (make && held_free(e))
			return held_claim(e, r);
	}
	return NULL;
}

/* After a plain store of a hold, before the loads that check it stands. */
static inline void reader_fence(const struct iovm_rcache *c)
{
	if (unlikely(c->fence_readers))
		atomic_thread_fence(memory_order_seq_cst);
	else
		atomic_signal_fence(memory_order_seq_cst);
}

/* Count @d holds on @r: in the thread's entry @h (its thread's own store), or the shared counter. */
static inline void hold_add(struct rc_held *h, struct rc_region *r, int64_t d)
{
	if (likely(h)) {
		int64_t n = atomic_load_explicit(&h->n, memory_order_relaxed) + d;

		IOVM_ASSERT(n >= 0);
		atomic_store_explicit(&h->n, n, memory_order_release);
	} else {
		atomic_fetch_add_explicit(&r->shared, d, memory_order_seq_cst);
	}
}

/* The thread's entry to count a get's hold on @r in: @r's own slot first, as a put looks. */
static inline struct rc_held *held_for_get(struct rc_tls *t, struct rc_region *r)
{
	struct rc_held *e = &t->held[held_slot(r)];

	if (likely(held_is(e, r)))
		return e;
	return held_of(t, r, true);
}

/* The thread's entry that counts a hold on @r to give back, or NULL. */
static inline struct rc_held *held_for_put(struct rc_tls *t, struct rc_region *r)
{
	struct rc_held *e = &t->held[held_slot(r)];

	if (likely(held_is(e, r) && atomic_load_explicit(&e->n, memory_order_relaxed) > 0))
		return e;
	return held_of(t, r, false);
}

/* A hit on @r: its last-used stamp moved to the clock, written only when the clock moved (almost never). */
static inline void region_touch(struct iovm_rcache *c, struct rc_region *r)
{
	uint64_t now = atomic_load_explicit(&c->clock, memory_order_relaxed);

	if (atomic_load_explicit(&r->used, memory_order_relaxed) != now)
		atomic_store_explicit(&r->used, now, memory_order_relaxed);
}

/*
 * Hold @r, read at generation @gen, for [addr, addr+len) if it is a valid
 * hit:
 *   - count a hold on it in the thread's own table (a plain store);
 *   - check it is still indexed, in the same life (its generation did not
 *     move; see rcache_index.c for why the hold comes first);
 *   - check its pages are valid, between two reads of the MR's seqcount:
 *     inline when every page of the MR is (its count of valid pages, kept
 *     with the bits under the same seqcount, is whole), which is how a
 *     cached MR lives until memory is taken from it; page by page
 *     (index_hold_slow()) otherwise.
 */
static inline bool index_try_hold(struct iovm_rcache *c, struct rc_tls *t, struct rc_region *r, uint64_t gen,
				  uint64_t addr, uint64_t len)
{
	struct iovm_mr *mr = &r->mr;
	struct rc_held *h = held_for_get(t, r);
	uint64_t life = atomic_load_explicit(&r->life, memory_order_relaxed);

	hold_add(h, r, 1);
	reader_fence(c);
	if (likely(atomic_load_explicit(&r->gen, memory_order_acquire) == gen)) {
		uint64_t s1 = atomic_load_explicit(&mr->seq, memory_order_acquire);
		bool whole = __atomic_load_n(&mr->nr_valid, __ATOMIC_RELAXED) ==
			     atomic_load_explicit(&r->npages, memory_order_relaxed);

		atomic_thread_fence(memory_order_acquire);
		if (likely(whole && !(s1 & 1) && atomic_load_explicit(&mr->seq, memory_order_relaxed) == s1)) {
			region_touch(c, r);
			return true;
		}
	}
	return index_hold_slow(c, t, r, h, gen, life, addr, len);
}

/*
 * Hold @r for [addr, addr+len) if it is a valid hit. The first look
 * (indexed, long enough, with the rights) is inline: most candidates of a
 * bucket fail it.
 */
static inline bool index_try_hit(struct iovm_rcache *c, struct rc_tls *t, struct rc_region *r, uint64_t addr,
				 uint64_t len, uint32_t access)
{
	uint64_t gen = atomic_load_explicit(&r->gen, memory_order_acquire);

	if ((gen & 1) || addr < atomic_load_explicit(&r->start, memory_order_relaxed) ||
	    addr + len > atomic_load_explicit(&r->end, memory_order_relaxed) ||
	    (access & ~atomic_load_explicit(&r->access, memory_order_relaxed)))
		return false;
	return index_try_hold(c, t, r, gen, addr, len);
}

#endif /* IOVM_REG_RCACHE_INTERNAL_H */
