/* SPDX-License-Identifier: MIT */
/*
 * tcache.c - per-thread caches of the shared heap's small blocks (64 B to
 * 4 KiB), so that a process allocates and frees them without the share's
 * lock, as a process-local heap would.
 *
 * A cached block stays allocated in the heap, held by this process's slot,
 * with the lender byte MP_LENDER_CACHED: if the process dies, its reap
 * frees the block like any other it held, and nothing else can take it
 * meanwhile. Other processes see it as not theirs and not live: their
 * free of it, a lend of it, iovm_dma_size() of it all refuse it.
 *
 * Freeing into the cache is a compare-and-swap of the lender byte from
 * NONE to CACHED, and the locked free does the same from NONE to
 * FREEING: of two processes freeing one block at once, one wins, the
 * other is told it was not live. A cache gives half its blocks of an
 * order back under one lock when it fills, and takes a batch when empty.
 */
#include <errno.h>
#include <stdlib.h>

#include "base/compiler.h"
#include "base/fault_inject.h"
#include "base/log.h"
#include "mp/mp_internal.h"

/* Blocks per order a thread keeps: 32 x (64 B .. 4 KiB), at most 254 KiB a thread. */
#define TC_MAX 32
#define TC_BATCH 16

struct mp_tcache {
	struct tls_cache base;
	struct mp_space *s;
	uint32_t n[MP_TCACHE_ORDERS];
	uint64_t grain[MP_TCACHE_ORDERS][TC_MAX];
};

static struct tls_kind tc_kind = TLS_KIND_INIT;
static __thread struct tls_slots tc_slots __tls_ie;

/* Give @n blocks of @order from the top of @tc back to the heap; how many. Takes the share's lock. */
static unsigned give_back(struct mp_tcache *tc, unsigned order, unsigned n)
{
	struct mp_space *s = tc->s;
	unsigned given = 0;

	if (!tc->n[order] || mp_lock(&s->h))
		return 0; /* unrecoverable: the blocks stay this process's until it goes */
	while (n-- && tc->n[order]) {
		uint64_t g = tc->grain[order][--tc->n[order]];

		lender_set(&s->h.lender[g], MP_LENDER_NONE);
		mp_heap_free(&s->h, g);
		given++;
	}
	mp_unlock(&s->h);
	return given;
}

static void tc_retire(struct tls_owner *o, struct tls_cache *c)
{
	struct mp_tcache *tc = (struct mp_tcache *)c;

	(void)o;
	/* The thread exits: what it kept goes back now, not when the process does. */
	for (unsigned order = 0; order < MP_TCACHE_ORDERS; order++)
		give_back(tc, order, TC_MAX);
	free(tc);
}

static void tc_discard(struct tls_cache *c)
{
	/* The share is being left: the blocks are this process's slot's, and leaving frees them all. */
	free(c);
}

static struct tls_cache *tc_create(struct tls_owner *o)
{
	struct mp_tcache *tc = fi_calloc(1, sizeof(*tc));

	if (!tc)
		return NULL;
	tc->s = container_of(o, struct mp_space, tc_owner);
	return &tc->base;
}

void mp_tcache_init(struct mp_space *s)
{
	s->tc_owner.retire = tc_retire;
	s->tc_owner.discard = tc_discard;
	s->tc_owner.create = tc_create;
	tls_owner_register(&s->tc_owner);
	s->tc_registered = true;
}

void mp_tcache_fini(struct mp_space *s)
{
	if (s->tc_registered)
		tls_owner_unregister(&s->tc_owner);
	s->tc_registered = false;
}

static struct mp_tcache *my_cache(struct mp_space *s)
{
	return (struct mp_tcache *)tls_cache_get(&tc_kind, &tc_slots, &s->tc_owner);
}

bool mp_tcache_drain(struct mp_space *s)
{
	struct mp_tcache *tc;
	unsigned given = 0;

	/*
	 * The calling thread's cache only: the others write theirs without a
	 * lock, and give back as they fill or when their thread exits.
	 */
	if (!s->tc_registered || !(tc = my_cache(s)))
		return false;
	for (unsigned order = 0; order < MP_TCACHE_ORDERS; order++)
		given += give_back(tc, order, TC_MAX);
	return given != 0;
}

void *mp_tcache_alloc(struct mp_space *s, unsigned order)
{
	struct mp_tcache *tc = my_cache(s);
	uint64_t g;

	if (unlikely(!tc))
		return NULL;
	if (unlikely(!tc->n[order])) {
		uint64_t batch;
		uint32_t seq;

		/*
		 * Empty: a batch of blocks of this order, under one lock; a batch
		 * takes at most 1/256 of what is free, so that caches of many
		 * processes do not starve the heap (another's cache can only be
		 * emptied by its own process).
		 */
		if (mp_lock(&s->h))
			return NULL;
		batch = MIN((uint64_t)TC_BATCH, (s->c->free_grains >> 8) >> order);
		batch = MAX(batch, 1);
		while (tc->n[order] < batch &&
		       !mp_heap_alloc(&s->h, MP_GRAIN << order, 0, s->slot, NULL, &g)) {
			lender_set(&s->h.lender[g], MP_LENDER_CACHED);
			tc->grain[order][tc->n[order]++] = g;
		}
		seq = mp_follow_seq(s);
		mp_unlock(&s->h);
		if (!tc->n[order])
			return NULL;
		/* Memory a batch committed: in every process's following domains first. */
		mp_follow_wait(s, seq);
	}
	g = tc->grain[order][--tc->n[order]];
	lender_set(&s->h.lender[g], MP_LENDER_NONE);
	return s->heap + (g << MP_GRAIN_SHIFT);
}

int mp_tcache_free(struct mp_space *s, uint64_t grain)
{
	struct mp_heap *h = &s->h;
	struct mp_tcache *tc;
	unsigned order;
	uint8_t st;

	st = __atomic_load_n(&h->state[grain], __ATOMIC_ACQUIRE);
	order = st & MP_ORDER_MASK;
	/* Only this process's small blocks; the rest take the lock. */
	if ((st & (MP_BLOCK | MP_ALLOCATED)) != (MP_BLOCK | MP_ALLOCATED) || order >= MP_TCACHE_ORDERS ||
	    __atomic_load_n(&h->owner[grain], __ATOMIC_RELAXED) != s->slot)
		return 1;
	tc = my_cache(s);
	if (unlikely(!tc))
		return 1;
	/* A device may reach it through a shared domain: the lock path keeps it for the domain. */
	if (unlikely(mp_domains_map(h, grain, order)))
		return 1;
	if (!lender_cas(&h->lender[grain], MP_LENDER_NONE, MP_LENDER_CACHED)) {
		uint8_t l = lender_get(&h->lender[grain]);

		return l == MP_LENDER_CACHED || l == MP_LENDER_FREEING || l == MP_LENDER_DOMAINS ? -EINVAL : -EBUSY;
	}
	/*
	 * Another process may have freed it and a third allocated the grain
	 * again between the reads above and the swap (only when two processes
	 * free one block at once): then it is not ours, and goes back as it was.
	 */
	if (unlikely(__atomic_load_n(&h->owner[grain], __ATOMIC_ACQUIRE) != s->slot ||
		     __atomic_load_n(&h->state[grain], __ATOMIC_ACQUIRE) != st)) {
		lender_cas(&h->lender[grain], MP_LENDER_CACHED, MP_LENDER_NONE);
		return -EINVAL;
	}
	if (unlikely(tc->n[order] == TC_MAX))
		give_back(tc, order, TC_MAX / 2);
	tc->grain[order][tc->n[order]++] = grain;
	return 0;
}
