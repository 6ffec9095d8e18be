/* SPDX-License-Identifier: MIT */
/*
 * rcache_index.c - the registration cache's index of regions by address,
 * walked without a lock, and the lock-free hit's rarer steps (its common
 * ones are inline, in rcache_internal.h).
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
 *     struct rewrites them): an evictor takes a region out of the index,
 *     moves its generation, makes every thread pass a memory barrier
 *     (holds_exact()), then sums the holds. Either the reader sees the
 *     move and drops its hold, or the evictor sees the hold and keeps the
 *     region (a zombie, deregistered by its last put);
 *   - check every page of the range is valid, between two reads of the
 *     MR's seqcount: a lookup overtaken by an invalidation of its range is
 *     no hit. (Inline when the MR's count of valid pages is whole, which
 *     the same seqcount guards; page by page in index_hold_slow() else.)
 * A region is filed only once its MR is registered and every field a
 * reader or a put reads is written: from the moment a reader can find it,
 * it is whole.
 */
#include <errno.h>

#include "base/counter.h"
#include "reg/rcache_internal.h"

/* A bucket table's first level: at most 2^16 pointers, 512 KiB of address space, most never touched. */
#define LEVEL_L1_BITS 16
/* List steps a lock-free lookup takes before it leaves the search to the locked path. */
#define FAST_STEPS 64

/*
 * A bucket's list links regions by their next[] words, one per bucket a
 * region is in. A list entry names a region and which of its words goes
 * on: (region | i << 1), so a reader gets the region without a load. The
 * list's end is a marker, odd, that names the bucket (bucket_end()).
 */
#define LINK_END 1u
#define LINK_IDX 2u
#define LINK_MASK 7u

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

/* ---- the lock-free hit ---- */

bool index_hold_slow(struct iovm_rcache *c, struct rc_tls *t, struct rc_region *r, struct rc_held *h, uint64_t gen,
		     uint64_t life, uint64_t addr, uint64_t len)
{
	struct iovm_mr *mr = &r->mr;
	uint64_t s1, s2;
	bool valid;

	/* Still indexed, in the life whose range and rights we read? */
	if (atomic_load_explicit(&r->gen, memory_order_acquire) != gen)
		goto drop;
	s1 = atomic_load_explicit(&mr->seq, memory_order_acquire);
	valid = mr_pages_valid(mr, addr, len);
	atomic_thread_fence(memory_order_acquire);
	s2 = atomic_load_explicit(&mr->seq, memory_order_relaxed);
	if (valid && !(s1 & 1) && s1 == s2) {
		region_touch(c, r);
		return true;
	}
	/* An invalidation overtook the lookup: not a hit, and counted. (Invalid pages: just a miss.) */
	if ((s1 & 1) || s1 != s2)
		counter_add(&t->raced, 1);
drop:
	hold_add(h, r, -1);
	reader_fence(c);
	/*
	 * Out of the index meanwhile, and kept for this hold alone maybe (an
	 * evictor saw it): then this was its last hold, and it goes here.
	 */
	if (unlikely(atomic_load_explicit(&r->zombie, memory_order_acquire)))
		region_release_zombie(c, r, life);
	return false;
}

struct rc_region *index_lookup(struct iovm_rcache *c, struct rc_tls *t, uint64_t addr, uint64_t len,
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

			if (index_try_hit(c, t, r, addr, len, access))
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

int index_add(struct iovm_rcache *c, struct rc_region *r)
{
	uint64_t start = atomic_load_explicit(&r->start, memory_order_relaxed);
	uint64_t end = atomic_load_explicit(&r->end, memory_order_relaxed);
	unsigned k = level_of(end - start), s = level_shift(k);
	uint64_t key = start >> s;
	struct bucket *b[2];

	lock_assert_held(&c->lock);
	IOVM_ASSERT(atomic_load_explicit(&r->gen, memory_order_relaxed) & 1);
	IOVM_ASSERT(r->live && r->mr.rc == r);
	/* No longer than a granule: in one, or across the edge of two. */
	r->nr_links = (end - 1) >> s != key ? 2 : 1;
	for (unsigned i = 0; i < r->nr_links; i++)
		if (!(b[i] = radix_lookup_alloc(&c->level[k], key + i)))
			return -ENOMEM;
	r->level = (uint8_t)k;
	/*
	 * Even: a reader that finds a link below (release) reads the fields
	 * written before. Its one writer holds cache.lock: no locked
	 * instruction.
	 */
	atomic_store_explicit(&r->gen, atomic_load_explicit(&r->gen, memory_order_relaxed) + 1, memory_order_release);
	for (unsigned i = 0; i < r->nr_links; i++) {
		atomic_store_explicit(&r->next[i], bucket_first(b[i], k, key + i, memory_order_relaxed),
				      memory_order_relaxed);
		atomic_store_explicit(&b[i]->first, entry_of(r, i), memory_order_release);
	}
	if (!c->nr_at[k]++)
		atomic_fetch_or_explicit(&c->levels_used, 1u << k, memory_order_relaxed);
	return 0;
}

void index_del(struct iovm_rcache *c, struct rc_region *r)
{
	unsigned k = r->level, s = level_shift(k);
	uint64_t start = atomic_load_explicit(&r->start, memory_order_relaxed);

	lock_assert_held(&c->lock);
	IOVM_ASSERT(!(atomic_load_explicit(&r->gen, memory_order_relaxed) & 1));
	for (unsigned i = 0; i < r->nr_links; i++) {
		struct bucket *b = radix_lookup(&c->level[k], (start >> s) + i);
		_Atomic uintptr_t *pp = &b->first;

		while (atomic_load_explicit(pp, memory_order_relaxed) != entry_of(r, i))
			pp = entry_next(atomic_load_explicit(pp, memory_order_relaxed));
		/* A reader standing on the region goes on along this list: its own word stays. */
		atomic_store_explicit(pp, atomic_load_explicit(&r->next[i], memory_order_relaxed),
				      memory_order_release);
	}
	r->nr_links = 0;
	IOVM_ASSERT(c->nr_at[k] > 0);
	if (!--c->nr_at[k])
		atomic_fetch_and_explicit(&c->levels_used, ~(1u << k), memory_order_relaxed);
	/* Odd: a reader holding a pointer to it sees it gone. */
	atomic_fetch_add_explicit(&r->gen, 1, memory_order_seq_cst);
}

struct rc_region *index_for_each_overlap(struct iovm_rcache *c, uint64_t start, uint64_t end,
					 bool (*fn)(struct iovm_rcache *c, struct rc_region *r, void *arg),
					 void *arg)
{
	uint32_t used = atomic_load_explicit(&c->levels_used, memory_order_relaxed);

	lock_assert_held(&c->lock);
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
				uint64_t rs = atomic_load_explicit(&r->start, memory_order_relaxed);
				uint64_t re = atomic_load_explicit(&r->end, memory_order_relaxed);

				next = atomic_load_explicit(entry_next(p), memory_order_relaxed);
				/* In two buckets: met in the first of them the range reaches. */
				if (re <= start || rs >= end || MAX(rs >> s, first) != key)
					continue;
				if (fn(c, r, arg))
					return r;
			}
		}
	}
	return NULL;
}

int index_init(struct iovm_rcache *c)
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

void index_destroy(struct iovm_rcache *c)
{
	for (unsigned k = 0; k < NR_LEVELS; k++)
		radix_destroy(&c->level[k]);
}
