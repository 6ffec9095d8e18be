/* SPDX-License-Identifier: MIT */
/*
 * rcache_holds.c - who holds which region of a registration cache: each
 * thread's table of holds, their sums, and the accounting that accepts a
 * put once per get.
 *
 * A get counts its hold in the calling thread's own table (a plain store:
 * a hit writes only its thread's memory). A put undoes it there when the
 * thread holds the region; a put on another thread than the get, or with
 * the table full, goes to the region's shared counter (atomic), and a
 * thread's table is folded into those counters when the thread exits: the
 * sum of all tables and the shared counter is the number of gets not yet
 * put.
 *
 * A put must not take what is not there (the caller's own MR, a second put
 * of one get): it is accepted only while the sum stays at or above zero.
 * On its thread's table alone a put can tell that cheaply: the entry's
 * count is that thread's gets less its own puts, never negative, so with
 * the shared counter at or above zero the sum is at least that count. Any
 * other put (another thread's get, a shared counter below zero after puts
 * on other threads) is judged under the cache's lock against the sum of
 * every table, which then also moves the thread's surplus against the
 * shared counter's deficit, so that its next puts are cheap again.
 *
 * Sums under the lock see every hold whose get happened before the caller
 * (its thread's stores before), which is what a put is judged against.
 * Deciding that a region out of the index is idle must also see the gets
 * racing with it, whose threads stored their hold with only a compiler
 * barrier: holds_exact() makes every thread pass a memory barrier first
 * (membarrier(2)); a reader then either sees the region gone or is seen.
 */
#include <errno.h>
#include <stdlib.h>

#include "base/fault_inject.h"
#include "os/membarrier.h"
#include "reg/rcache_internal.h"

struct tls_kind rc_kind = TLS_KIND_INIT;
__thread struct tls_slots rc_slots __tls_ie;

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

/* The thread goes (or its slot does): its holds and counts to the shared counters. Under the tlscache lock. */
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

struct rc_tls *rc_tls_slow(struct iovm_rcache *c)
{
	struct tls_cache *tc = tls_cache_get(&rc_kind, &rc_slots, &c->owner);

	return tc ? container_of(tc, struct rc_tls, base) : NULL;
}

void holds_register(struct iovm_rcache *c)
{
	c->owner.create = tls_create;
	c->owner.retire = tls_retire;
	c->owner.discard = tls_discard;
	tls_owner_register(&c->owner);
}

void holds_unregister(struct iovm_rcache *c)
{
	tls_owner_unregister(&c->owner);
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

	/*
	 * The shared counter while the tlscache lock is held, with the tables:
	 * a thread exiting moves its holds from its table to that counter
	 * under the same lock, and must be counted in one place or the other.
	 */
	if (!s->shared_read) {
		s->n += atomic_load_explicit(&s->r->shared, memory_order_seq_cst);
		s->shared_read = true;
	}
	for (unsigned i = 0; i < HELD; i++) {
		int64_t n = atomic_load_explicit(&t->held[i].n, memory_order_acquire);

		if (n && held_is(&t->held[i], s->r))
			s->n += n;
	}
}

int64_t holds_sum(struct iovm_rcache *c, struct rc_region *r)
{
	struct sum s = { .r = r };

	lock_assert_held(&c->lock);
	tls_owner_for_each(&c->owner, sum_table, &s);
	/* No table at all: no thread can move holds meanwhile but into a table made since, counted there. */
	if (!s.shared_read)
		s.n += atomic_load_explicit(&r->shared, memory_order_seq_cst);
	return s.n;
}

int64_t holds_exact(struct iovm_rcache *c, struct rc_region *r)
{
	lock_assert_held(&c->lock);
	IOVM_ASSERT(atomic_load_explicit(&r->gen, memory_order_relaxed) & 1);
	/* Every thread past a barrier: a hold stored before it is visible now, one after it sees the move. */
	os_membarrier();
	return holds_sum(c, r);
}

int64_t holds_put_locked(struct iovm_rcache *c, struct rc_tls *t, struct rc_region *r)
{
	struct rc_held *h;
	int64_t total, shared;

	lock_assert_held(&c->lock);
	/* Not in a life: whatever was held of it was put already. */
	if (!r->live)
		return -EINVAL;
	total = holds_sum(c, r);
	IOVM_WARN_ON(total < 0);
	if (total <= 0)
		return -EINVAL;
	h = t ? held_of(t, r, false) : NULL;
	hold_add(h, r, -1);
	/*
	 * Puts on other threads left the shared counter below zero while this
	 * thread's table still counts the gets they put: even them out (the
	 * sum stays), so that this thread's next puts need no lock. Other
	 * threads' puts read the shared counter only: they see it below zero
	 * (and come here) or at its final value.
	 */
	shared = atomic_load_explicit(&r->shared, memory_order_relaxed);
	if (h && shared < 0) {
		int64_t k = MIN(atomic_load_explicit(&h->n, memory_order_relaxed), -shared);

		hold_add(h, r, -k);
		atomic_fetch_add_explicit(&r->shared, k, memory_order_seq_cst);
	}
	return total - 1;
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

void holds_stats(struct iovm_rcache *c, uint64_t *hits, uint64_t *raced)
{
	struct stat_sum s = { 0 };

	tls_owner_for_each(&c->owner, sum_stats, &s);
	*hits = s.hits + atomic_load_explicit(&c->hits_gone, memory_order_relaxed);
	*raced = s.raced + atomic_load_explicit(&c->raced_gone, memory_order_relaxed);
}
