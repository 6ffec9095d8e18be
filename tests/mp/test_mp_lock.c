/* SPDX-License-Identifier: MIT */
/*
 * test_mp_lock.c - the share's lock (mp/lock.c) hands itself on whatever
 * the processes around it die of: a waiter never sleeps for good.
 *
 * The case that hung attachers before: the holder's unlock wakes one
 * waiter, that waiter is killed before it takes the lock, and a third
 * process takes the free lock first, without the waiters bit. The kernel's
 * robust-list walk at the death wakes another waiter only when the word is
 * 0, so nobody wakes the waiters left. lost_wakeup builds the state that
 * sequence leaves (a sleeping waiter, the lock held without the waiters
 * bit) on purpose; woken_waiter_killed runs the sequence itself, many
 * times, and lands on it now and then.
 *
 * The lock word's layout (glibc's __data.__lock, FUTEX_WAITERS) is the
 * kernel's robust-futex ABI: the test reads it to know when a waiter
 * sleeps, and lost_wakeup clears the bit the way the race does.
 */
#include <linux/futex.h>
#include <poll.h>
#include <sched.h>
#include <sys/syscall.h>

#include "mp_region.h"

static struct region R;

/* A process made to die while it holds the lock, or to wait for it. */
enum role { TAKE_AND_REPORT, TAKE_AND_DIE, TAKE_WHEN_IDLE };

static void locker(int rd, int wr, void *arg)
{
	enum role role = (enum role)(uintptr_t)arg;

	(void)rd;
	if (role == TAKE_WHEN_IDLE) {
		struct sched_param sp = { 0 };

		/* Runs only when the CPU has nothing else: a wakeup does not let it run at once. */
		CHECK_OK(sched_setscheduler(0, SCHED_IDLE, &sp));
	}
	CHECK_OK(mp_lock(&R.s.h));
	if (role == TAKE_AND_DIE)
		_exit(0); /* holding it: the robust list hands it on */
	put64(wr, 1);
	mp_unlock(&R.s.h);
}

static _Atomic unsigned *lock_word(void)
{
	return (_Atomic unsigned *)&R.s.c->lock.__data.__lock;
}

/* Whether process @pid sleeps in the futex call (its main thread: the one that locks). */
static bool in_futex_wait(pid_t pid)
{
	char path[64], buf[64];
	long nr = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/syscall", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	if (fgets(buf, sizeof(buf), f))
		nr = strtol(buf, NULL, 10);
	fclose(f);
	return nr == SYS_futex;
}

/*
 * That @c reports it took the lock within 30 s: a waiter left asleep never
 * does, and is killed before the test fails, so that no process outlives it.
 */
static void took_lock(struct child *c, const char *what)
{
	struct pollfd p = { .fd = c->rd, .events = POLLIN };
	bool took = poll(&p, 1, 30000) == 1;

	if (!took)
		kill(c->pid, SIGKILL);
	CHECK_MSG(took, "%s", what);
	CHECK_EQ(get64(c->rd), 1);
	child_ok(c);
}

/* A sleeping waiter, the lock held without the waiters bit, then released: the waiter gets it. */
TEST(lost_wakeup)
{
	struct child w;
	unsigned v;

	region_init(&R);
	CHECK_OK(mp_lock(&R.s.h));
	w = child_start(locker, (void *)(uintptr_t)TAKE_AND_REPORT);
	WAIT_UNTIL((atomic_load(lock_word()) & FUTEX_WAITERS) && in_futex_wait(w.pid));
	/* What a consumed wakeup and a third locker leave: the bit gone, the waiter asleep. */
	v = atomic_load(lock_word());
	while (!atomic_compare_exchange_weak(lock_word(), &v, v & ~FUTEX_WAITERS))
		;
	mp_unlock(&R.s.h);
	took_lock(&w, "a waiter slept on a free lock whose wakeup was lost");
}

/* A waiter killed while it sleeps: the next waiter still gets the lock. */
TEST(killed_waiter)
{
	struct child a, b;

	region_init(&R);
	CHECK_OK(mp_lock(&R.s.h));
	a = child_start(locker, (void *)(uintptr_t)TAKE_AND_REPORT);
	WAIT_UNTIL(in_futex_wait(a.pid));
	b = child_start(locker, (void *)(uintptr_t)TAKE_AND_REPORT);
	WAIT_UNTIL(in_futex_wait(b.pid));
	child_kill(&a);
	mp_unlock(&R.s.h);
	took_lock(&b, "the waiter after a killed one never got the lock");
	/* Nothing died holding it: no repair was due. */
	CHECK_EQ(R.s.c->recoveries, 0);
}

/*
 * The race itself. Everything on one CPU, the first waiter at idle
 * priority: the unlock wakes it (it slept first) but it cannot run before
 * the test kills it and takes the lock again, without the waiters bit, and
 * holds it until the woken one is dead. The other waiter must get the
 * lock every time.
 */
TEST(woken_waiter_killed)
{
	enum { ROUNDS = 50 };
	cpu_set_t all, one;

	CHECK_OK(sched_getaffinity(0, sizeof(all), &all));
	CPU_ZERO(&one);
	CPU_SET(sched_getcpu(), &one);
	CHECK_OK(sched_setaffinity(0, sizeof(one), &one));
	region_init(&R);
	for (int round = 0; round < ROUNDS; round++) {
		struct child a, b;

		CHECK_OK(mp_lock(&R.s.h));
		a = child_start(locker, (void *)(uintptr_t)TAKE_WHEN_IDLE);
		WAIT_UNTIL(in_futex_wait(a.pid));
		b = child_start(locker, (void *)(uintptr_t)TAKE_AND_REPORT);
		WAIT_UNTIL(in_futex_wait(b.pid));
		mp_unlock(&R.s.h);
		kill(a.pid, SIGKILL);
		CHECK_OK(mp_lock(&R.s.h));
		/* a may have run and taken the lock before the kill landed: then it reported, or died holding it. */
		child_wait(&a);
		mp_unlock(&R.s.h);
		took_lock(&b, "a waiter slept on after the one woken was killed");
	}
	CHECK_OK(sched_setaffinity(0, sizeof(all), &all));
}

/* A holder that dies: the next locker takes the lock, repairs, and counts it. */
TEST(holder_dies)
{
	struct child a;

	region_init(&R);
	a = child_start(locker, (void *)(uintptr_t)TAKE_AND_DIE);
	child_ok(&a);
	CHECK_OK(mp_lock(&R.s.h));
	CHECK_EQ(R.s.c->recoveries, 1);
	CHECK_OK(mp_heap_check(&R.s.h));
	mp_unlock(&R.s.h);
	/* Made consistent: the next lock is a plain one. */
	CHECK_OK(mp_lock(&R.s.h));
	CHECK_EQ(R.s.c->recoveries, 1);
	mp_unlock(&R.s.h);
}

int main(void)
{
	test_init();
	RUN(lost_wakeup);
	RUN(killed_waiter);
	RUN(woken_waiter_killed);
	RUN(holder_dies);
	return 0;
}
