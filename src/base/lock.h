/* SPDX-License-Identifier: MIT */
/*
 * lock.h - iovm's mutex: a pthread mutex that knows which thread holds it,
 * so that a function documented as needing a lock asserts that its caller
 * holds it (lock_assert_held(), as Linux's lockdep_assert_held()).
 *
 * The owner is tracked only with the debug_checks build option; without it
 * struct mutex is a pthread mutex and the assertions are gone. Condition
 * variables wait through cond_wait()/cond_timedwait(), which hand the
 * ownership over with the mutex.
 */
#ifndef IOVM_BASE_LOCK_H
#define IOVM_BASE_LOCK_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "base/check.h"
#include "base/compiler.h"

struct mutex {
	pthread_mutex_t m;
#ifdef IOVM_DEBUG_CHECKS
	/*
	 * The holder's pthread_self(), 0 when free. Written by the holder,
	 * read by anyone asserting: relaxed, as only the holder's own reads
	 * must be right (a thread always sees its own last store).
	 */
	_Atomic uintptr_t owner;
#endif
};

#define MUTEX_INITIALIZER { .m = PTHREAD_MUTEX_INITIALIZER }

#ifdef IOVM_DEBUG_CHECKS
static inline void mutex_set_owner(struct mutex *l, uintptr_t who)
{
	atomic_store_explicit(&l->owner, who, memory_order_relaxed);
}

/* Whether the calling thread holds @l. */
static inline bool mutex_held(const struct mutex *l)
{
	return atomic_load_explicit(&l->owner, memory_order_relaxed) == (uintptr_t)pthread_self();
}
#define lock_assert_held(l) IOVM_ASSERT(mutex_held(l))
#define lock_assert_not_held(l) IOVM_ASSERT(!mutex_held(l))
#else
static inline void mutex_set_owner(struct mutex *l __unused, uintptr_t who __unused) {}
#define lock_assert_held(l) ((void)(l))
#define lock_assert_not_held(l) ((void)(l))
#endif

static inline void mutex_init(struct mutex *l)
{
	pthread_mutex_init(&l->m, NULL);
	mutex_set_owner(l, 0);
}

static inline void mutex_destroy(struct mutex *l)
{
	lock_assert_not_held(l);
	pthread_mutex_destroy(&l->m);
}

static inline void mutex_lock(struct mutex *l)
{
	lock_assert_not_held(l); /* not recursive: a thread taking its own lock would hang */
	pthread_mutex_lock(&l->m);
	mutex_set_owner(l, (uintptr_t)pthread_self());
}

static inline bool mutex_trylock(struct mutex *l)
{
	if (pthread_mutex_trylock(&l->m))
		return false;
	mutex_set_owner(l, (uintptr_t)pthread_self());
	return true;
}

static inline void mutex_unlock(struct mutex *l)
{
	lock_assert_held(l);
	mutex_set_owner(l, 0);
	pthread_mutex_unlock(&l->m);
}

static inline void cond_wait(pthread_cond_t *c, struct mutex *l)
{
	lock_assert_held(l);
	mutex_set_owner(l, 0);
	pthread_cond_wait(c, &l->m);
	mutex_set_owner(l, (uintptr_t)pthread_self());
}

/* Returns 0, or ETIMEDOUT once @abstime (the clock @c was made with) has passed. */
static inline int cond_timedwait(pthread_cond_t *c, struct mutex *l, const struct timespec *abstime)
{
	int ret;

	lock_assert_held(l);
	mutex_set_owner(l, 0);
	ret = pthread_cond_timedwait(c, &l->m, abstime);
	mutex_set_owner(l, (uintptr_t)pthread_self());
	return ret;
}

#endif /* IOVM_BASE_LOCK_H */
