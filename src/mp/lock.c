/* SPDX-License-Identifier: MIT */
/*
 * lock.c - the share's one lock: robust and process-shared, so that a
 * process killed while holding it hands it, with EOWNERDEAD, to the next
 * one, which repairs the region before it goes on.
 *
 * What a dead holder can have left: a heap change whose committing store
 * was or was not made (heap.c), a zone half made or half freed (its record
 * and mp_ctl.zone_pending say which), a dead process half reaped (its slot
 * stays MP_SLOT_DEAD until the reap completes, and any process finishes
 * it). None of them needs to know where the holder stopped.
 *
 * A waiter never sleeps on the lock for good: glibc's robust mutex and the
 * kernel can lose a wakeup when the waiter it went to is killed before it
 * takes the lock and a third process takes it first, without the waiters
 * bit (the kernel's robust-list walk at the death wakes another only when
 * the word is 0). Nobody else would wake the rest when no more unlocks
 * come, which is what a dead owner leaves. So each sleep ends after
 * LOCK_RECHECK_NS and the waiter looks again: a lost wakeup costs that
 * much once, not a hang.
 */
#include <errno.h>
#include <inttypes.h>
#include <time.h>

#include "base/error.h"
#include "base/log.h"
#include "mp/mp_internal.h"

#if defined(__SANITIZE_THREAD__)
#define MP_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MP_TSAN 1
#endif
#endif
#ifdef MP_TSAN
#include <sanitizer/tsan_interface.h>
#endif

/* How long a waiter sleeps before it looks at the lock again. */
#define LOCK_RECHECK_NS 50000000L

/*
 * ThreadSanitizer's pthread_mutex_timedlock() takes EOWNERDEAD for a
 * failure, and would call our unlock an unlock of a free mutex: tell it.
 */
static void tsan_took_from_dead(pthread_mutex_t *l)
{
#ifdef MP_TSAN
	__tsan_mutex_pre_lock(l, 0);
	__tsan_mutex_post_lock(l, 0, 0);
#else
	(void)l;
#endif
}

static int lock_wait(pthread_mutex_t *l)
{
	int ret = pthread_mutex_trylock(l);

	while (ret == EBUSY || ret == ETIMEDOUT) {
		struct timespec until;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += LOCK_RECHECK_NS;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		ret = pthread_mutex_timedlock(l, &until);
		if (ret == EOWNERDEAD)
			tsan_took_from_dead(l);
	}
	return ret;
}

int mp_lock_init(pthread_mutex_t *l)
{
	pthread_mutexattr_t attr;
	int ret;

	if (pthread_mutexattr_init(&attr))
		return -ENOMEM;
	ret = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
	if (!ret)
		ret = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
	if (!ret)
		ret = pthread_mutex_init(l, &attr);
	pthread_mutexattr_destroy(&attr);
	return -ret;
}

int mp_repair(struct mp_heap *h)
{
	struct mp_ctl *c = h->c;
	/* The walk is the truth: the free lists, counts and half-done stores first, so that frees below work. */
	int ret = mp_heap_repair(h);

	if (ret)
		return ret;
	if (c->zone_pending) {
		uint32_t i = c->zone_pending - 1;
		struct mp_zone_rec *z = i < MP_MAX_ZONES ? &c->zones[i] : NULL;
		unsigned order;
		uint8_t owner;

		/* A zone not (or no longer) in use whose block exists: its maker or freer died. */
		if (z && !z->used && z->grain != MP_NO_GRAIN &&
		    !mp_heap_block(h, z->grain, &order, &owner) && owner == MP_OWNER_KEEP)
			mp_heap_free(h, z->grain);
		if (z && !z->used)
			z->grain = MP_NO_GRAIN;
		c->zone_pending = 0;
	}
	/* A shared domain made or closed halfway: its block goes if nobody has it open; counts half changed. */
	mp_domains_repair(h);
	/* An allocation killed before its commit: committed now. */
	mp_parcel_repair(h);
	c->nr_zones = 0;
	for (unsigned i = 0; i < MP_MAX_ZONES; i++)
		c->nr_zones += c->zones[i].used != 0;
	/* A reap the dead holder left half done: finished now, not at the next reap someone asks for. */
	for (unsigned i = 0; i < MP_MAX_PROCS; i++)
		if (c->slots[i].state == MP_SLOT_DEAD)
			mp_reap_slot(h, i);
	return 0;
}

int mp_lock(struct mp_heap *h)
{
	int ret = lock_wait(&h->c->lock);

	if (ret == EOWNERDEAD) {
		ret = mp_repair(h);
		if (ret) {
			/* Unlocked without pthread_mutex_consistent(): nobody may take it again. */
			pthread_mutex_unlock(&h->c->lock);
			return err_detail(-ENOTRECOVERABLE, IOVM_LOG_ERR,
					  "a process died holding the share's lock and its state cannot be repaired");
		}
		h->c->recoveries++;
		pthread_mutex_consistent(&h->c->lock);
		log_info("share %s: took the lock from a dead process, and repaired the heap", h->c->name);
		return 0;
	}
	if (ret == ENOTRECOVERABLE)
		return err_detail(-ENOTRECOVERABLE, IOVM_LOG_ERR,
				  "the share's lock was left unrecoverable by a failed repair");
	return -ret;
}

int mp_lock_plain(pthread_mutex_t *l)
{
	int ret = lock_wait(l);

	if (ret == EOWNERDEAD) {
		pthread_mutex_consistent(l);
		return 0;
	}
	return -ret;
}

void mp_unlock(struct mp_heap *h)
{
	pthread_mutex_unlock(&h->c->lock);
}
