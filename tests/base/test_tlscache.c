/* SPDX-License-Identifier: MIT */
/*
 * test_tlscache.c - per-thread caches of owners that come and go while
 * threads that hold caches of them come and go too: every cache made is
 * given back exactly once (retired to its live owner by a thread that
 * exits or needs the slot, or discarded with its owner), none is touched
 * after its owner went, and statistics walk the caches while their
 * threads change them (through relaxed atomics, as the walk requires).
 * Run under ThreadSanitizer, it checks the locking of every path.
 */
#include <pthread.h>
#include <stdlib.h>

#include "base/tlscache.h"
#include "harness.h"

#define OWNERS 6
#define THREADS 4
#define ROUNDS 300

struct counting_cache {
	struct tls_cache base;
	_Atomic unsigned long uses; /* the owning thread's, read by the statistics walk */
};

struct counting_owner {
	struct tls_owner o;
	_Atomic unsigned long retired_uses; /* given back by retired caches, under the tlscache lock */
};

static struct tls_kind kind = TLS_KIND_INIT;
static __thread struct tls_slots slots;
static _Atomic unsigned long made, retired, discarded;

static struct tls_cache *cache_create(struct tls_owner *o)
{
	struct counting_cache *c = calloc(1, sizeof(*c));

	(void)o;
	if (!c)
		return NULL;
	atomic_fetch_add(&made, 1);
	return &c->base;
}

static void cache_retire(struct tls_owner *o, struct tls_cache *c)
{
	struct counting_owner *co = (struct counting_owner *)o;
	struct counting_cache *cc = (struct counting_cache *)c;

	atomic_fetch_add_explicit(&co->retired_uses, atomic_load_explicit(&cc->uses, memory_order_relaxed),
				  memory_order_relaxed);
	atomic_fetch_add(&retired, 1);
	free(c);
}

static void cache_discard(struct tls_cache *c)
{
	atomic_fetch_add(&discarded, 1);
	free(c);
}

static void count_uses(struct tls_cache *c, void *arg)
{
	*(unsigned long *)arg += atomic_load_explicit(&((struct counting_cache *)c)->uses, memory_order_relaxed);
}

/* The owners' slots: an owner is replaced (unregistered, freed, a new one made) while threads use it. */
static struct counting_owner *_Atomic owners[OWNERS];
static pthread_rwlock_t owners_lock = PTHREAD_RWLOCK_INITIALIZER; /* readers use, the writer replaces */

static struct counting_owner *owner_new(void)
{
	struct counting_owner *co = calloc(1, sizeof(*co));

	CHECK(co != NULL);
	co->o.create = cache_create;
	co->o.retire = cache_retire;
	co->o.discard = cache_discard;
	tls_owner_register(&co->o);
	return co;
}

static void *worker(void *arg)
{
	uint64_t seed = (uintptr_t)arg * 7919 + 1;

	for (unsigned i = 0; i < 2000; i++) {
		unsigned k = (unsigned)(test_rand(&seed) % OWNERS);
		struct counting_cache *c;

		pthread_rwlock_rdlock(&owners_lock);
		/* More owners than slots: the least recently used slot gives its cache back. */
		c = (struct counting_cache *)tls_cache_get(&kind, &slots, &atomic_load(&owners[k])->o);
		if (c)
			atomic_fetch_add_explicit(&c->uses, 1, memory_order_relaxed);
		pthread_rwlock_unlock(&owners_lock);
	}
	return NULL;
}

TEST(owners_and_threads_come_and_go)
{
	for (int k = 0; k < OWNERS; k++)
		atomic_store(&owners[k], owner_new());
	for (unsigned round = 0; round < ROUNDS / 30; round++) {
		pthread_t t[THREADS];

		for (uintptr_t i = 0; i < THREADS; i++)
			CHECK_EQ(pthread_create(&t[i], NULL, worker, (void *)(i + round * THREADS)), 0);
		/* Meanwhile: statistics, and an owner replaced under them. */
		for (unsigned j = 0; j < 30; j++) {
			unsigned long uses = 0;
			int k = (int)(j % OWNERS);
			struct counting_owner *old;

			tls_owner_for_each(&atomic_load(&owners[k])->o, count_uses, &uses);
			pthread_rwlock_wrlock(&owners_lock);
			old = atomic_exchange(&owners[k], owner_new());
			pthread_rwlock_unlock(&owners_lock);
			tls_owner_unregister(&old->o);
			free(old);
		}
		for (int i = 0; i < THREADS; i++)
			CHECK_EQ(pthread_join(t[i], NULL), 0);
	}
	for (int k = 0; k < OWNERS; k++) {
		struct counting_owner *co = atomic_load(&owners[k]);

		tls_owner_unregister(&co->o);
		free(co);
	}
	/* Every cache made went back exactly once, one way or the other. */
	CHECK(atomic_load(&made) > 0);
	CHECK_EQ(atomic_load(&retired) + atomic_load(&discarded), atomic_load(&made));
}

int main(void)
{
	test_init();
	RUN(owners_and_threads_come_and_go);
	return 0;
}
