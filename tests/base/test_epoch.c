/* SPDX-License-Identifier: MIT */
/*
 * test_epoch.c - grace periods as the IOMMU uses them: readers follow a
 * published pointer inside their sections while a writer replaces it,
 * waits for a grace period and only then poisons the old object. A reader
 * that ever sees a poisoned object found a grace period that ended too
 * soon. Readers come and go (register, unregister) meanwhile, and long
 * sections ask epoch_waited_on() and re-enter. Run under ThreadSanitizer,
 * it also checks that every access is ordered as the code says.
 *
 *	IOVM_TEST_EPOCH_ROUNDS   writer rounds (default 10000)
 */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

#include "base/epoch.h"
#include "harness.h"

#define READERS 3
#define LIVE 0x11111111u
#define DEAD 0xdeadbeefu
#define POOL 4096

struct obj {
	_Atomic unsigned state; /* LIVE, then DEAD once its grace period ended */
	unsigned long gen;
};

static struct epoch ep;
static _Atomic(struct obj *) current;
static _Atomic bool stop;
static _Atomic unsigned long sections, dead_seen, started, overlapped;
static _Atomic unsigned long live_sections; /* so far, for the writer to run as long as the readers do */

static void *reader(void *arg)
{
	struct epoch_reader *r = aligned_alloc(64, sizeof(*r));
	unsigned long n = 0, last_gen = 0;

	(void)arg;
	CHECK(r != NULL);
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		/* Registered for a while, then gone: readers are not all there from the start. */
		epoch_reader_add(&ep, r);
		if (!n)
			atomic_fetch_add(&started, 1);
		for (unsigned k = 0; k < 200; k++) {
			epoch_enter(&ep, r);
			for (unsigned step = 0; step < 4; step++) {
				struct obj *o = atomic_load_explicit(&current, memory_order_acquire);

				/* Held for a while, as an engine holds a page-table walk's result. */
				for (unsigned look = 0; look < 256; look++)
					if (atomic_load_explicit(&o->state, memory_order_relaxed) != LIVE)
						atomic_fetch_add(&dead_seen, 1);
				/* Generations only grow within a section's view of the world. */
				if (o->gen < last_gen && step)
					atomic_fetch_add(&dead_seen, 1);
				if (o->gen != last_gen && step)
					atomic_fetch_add_explicit(&overlapped, 1, memory_order_relaxed);
				last_gen = o->gen;
				if (epoch_waited_on(&ep, r)) {
					/* A writer waits: leave, and see the world afresh. */
					epoch_exit(r);
					epoch_enter(&ep, r);
					last_gen = 0;
				}
			}
			epoch_exit(r);
			atomic_fetch_add_explicit(&live_sections, 1, memory_order_relaxed);
			/* Outside, now and then, let the writer run (one CPU). */
			if (++n % 16 == 0)
				sched_yield();
		}
		epoch_reader_del(&ep, r);
		last_gen = 0;
	}
	atomic_fetch_add(&sections, n);
	free(r);
	return NULL;
}

TEST(grace_periods)
{
	const char *env = getenv("IOVM_TEST_EPOCH_ROUNDS");
	unsigned long rounds = env ? strtoul(env, NULL, 10) : 10000;
	pthread_t t[READERS];
	/*
	 * Objects are used in turn and stay DEAD for POOL - 1 rounds after
	 * their grace period: a read too late finds DEAD, not memory reused.
	 */
	struct obj *objs = calloc(POOL, sizeof(*objs)), *o = objs;
	unsigned long g;

	CHECK(objs != NULL);
	epoch_init(&ep);
	atomic_store(&o->state, LIVE);
	atomic_store(&current, o);
	for (int i = 0; i < READERS; i++)
		CHECK_EQ(pthread_create(&t[i], NULL, reader, NULL), 0);
	/* The readers run before the writer begins, so that its rounds meet them. */
	while (atomic_load(&started) < READERS)
		sched_yield();
	/* As many rounds as asked, and at least as long as the readers run 20000 sections. */
	for (g = 1; g <= rounds || atomic_load_explicit(&live_sections, memory_order_relaxed) < 20000; g++) {
		struct obj *n = &objs[g % POOL], *old;

		n->gen = g;
		atomic_store_explicit(&n->state, LIVE, memory_order_relaxed);
		old = atomic_exchange_explicit(&current, n, memory_order_release);
		epoch_synchronize(&ep);
		/* No reader can hold it now: poison it, as a freed page table would be reused. */
		atomic_store_explicit(&old->state, DEAD, memory_order_relaxed);
		if (g % 64 == 0)
			sched_yield();
	}
	atomic_store(&stop, true);
	for (int i = 0; i < READERS; i++)
		CHECK_EQ(pthread_join(t[i], NULL), 0);
	CHECK_MSG(atomic_load(&dead_seen) == 0, "%lu reads of an object whose grace period had ended",
		  atomic_load(&dead_seen));
	CHECK(atomic_load(&sections) > 0);
	/* Not vacuous: readers saw the pointer change inside their sections. */
	printf("# %lu sections, %lu saw a new object mid-section\n", atomic_load(&sections), atomic_load(&overlapped));
	CHECK_EQ(ep.syncs, g - 1);
	free(objs);
	epoch_destroy(&ep);
}

/*
 * The same promise, without leaving it to the scheduler: a reader inside
 * its section waits until the writer has begun a grace period, then keeps
 * looking at the object it holds for a while; the writer may poison it
 * only once the reader left. A synchronize that did not wait would be
 * seen every round.
 */
static _Atomic(struct obj *) held;
static _Atomic unsigned phase; /* 1: the reader holds the object, 2: it left */

static void *holder(void *arg)
{
	struct epoch_reader *r = aligned_alloc(64, sizeof(*r));

	(void)arg;
	CHECK(r != NULL);
	epoch_reader_add(&ep, r);
	for (unsigned round = 0; round < 50; round++) {
		struct obj *o;

		while (atomic_load(&phase) != 0)
			sched_yield();
		epoch_enter(&ep, r);
		o = atomic_load_explicit(&held, memory_order_acquire);
		atomic_store(&phase, 1);
		while (!epoch_waited_on(&ep, r))
			sched_yield();
		/* The writer waits for us now: what we hold must stay alive. */
		for (unsigned look = 0; look < 20000; look++) {
			if (atomic_load_explicit(&o->state, memory_order_relaxed) != LIVE) {
				atomic_fetch_add(&dead_seen, 1);
				break;
			}
			if (look % 1000 == 0)
				sched_yield();
		}
		/* Done with it, then out: a writer that saw us out sees this too (exit is a release). */
		atomic_store(&phase, 2);
		epoch_exit(r);
	}
	epoch_reader_del(&ep, r);
	free(r);
	return NULL;
}

TEST(synchronize_waits_for_a_reader_inside)
{
	struct obj objs[51];
	pthread_t t;

	epoch_init(&ep);
	atomic_store(&dead_seen, 0);
	atomic_store(&phase, 0);
	atomic_store(&objs[0].state, LIVE);
	atomic_store(&held, &objs[0]);
	CHECK_EQ(pthread_create(&t, NULL, holder, NULL), 0);
	for (unsigned round = 1; round <= 50; round++) {
		struct obj *old;

		while (atomic_load(&phase) != 1)
			sched_yield();
		atomic_store(&objs[round].state, LIVE);
		old = atomic_exchange(&held, &objs[round]);
		epoch_synchronize(&ep);
		CHECK_EQ(atomic_load(&phase), 2); /* it left before we returned */
		atomic_store(&old->state, DEAD);
		atomic_store(&phase, 0);
	}
	CHECK_EQ(pthread_join(t, NULL), 0);
	CHECK_EQ(atomic_load(&dead_seen), 0);
	epoch_destroy(&ep);
}

int main(void)
{
	test_init();
	RUN(grace_periods);
	RUN(synchronize_waits_for_a_reader_inside);
	return 0;
}
