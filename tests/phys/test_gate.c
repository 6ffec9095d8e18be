/* SPDX-License-Identifier: MIT */
/*
 * test_gate.c - the foreign gate's words for devices of other processes
 * (phys/gate.c, phys.h): what the memory monitor and a device process
 * promise each other, tried with the two sides on two threads.
 *  - safety: once the monitor has closed the gate and waited for its
 *    peers, no device access that saw the gate open is still running;
 *  - fairness: a monitor that closes the gate again as soon as it opened
 *    it still lets a waiting device in (phys_gate_yield()), where a device
 *    that looks only now and then would otherwise never find it open;
 *  - the yield waits for no peer that died waiting, and for none once
 *    none waits.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "phys/phys.h"
#include "harness.h"

static struct phys_space *space(void)
{
	struct phys_params p = { .limit = 64ull << 20 };
	struct phys_space *ps;

	CHECK_OK(phys_create(&p, &ps));
	return ps;
}

static bool alive_flag(void *arg)
{
	return atomic_load((_Atomic bool *)arg);
}

struct device {
	struct phys_gate_words *w;
	_Atomic bool stop;
	_Atomic int inside;      /* an access under way: it saw the gate open */
	_Atomic uint64_t entered;
	unsigned look_us;        /* between accesses, and between looks at a closed gate: 0 spins */
};

static void *device_main(void *arg)
{
	struct device *d = arg;

	while (!atomic_load(&d->stop)) {
		bool waiting = false;

		while (!phys_gate_enter(d->w)) {
			if (!waiting) {
				phys_gate_wait_begin(d->w);
				waiting = true;
			}
			if (atomic_load(&d->stop))
				goto out;
			if (d->look_us)
				usleep(d->look_us);
		}
		if (waiting)
			phys_gate_wait_end(d->w);
		atomic_store(&d->inside, 1);
		atomic_fetch_add(&d->entered, 1);
		atomic_store(&d->inside, 0);
		phys_gate_leave(d->w);
		if (d->look_us)
			usleep(d->look_us); /* now and then: the next access finds the gate closed again */
		continue;
out:
		if (waiting)
			phys_gate_wait_end(d->w);
		break;
	}
	return NULL;
}

/* Closed and waited for, no access that looked at it open is left: the munmap may return. */
TEST(closed_gate_leaves_no_access_running)
{
	struct phys_space *ps = space();
	struct phys_gate_words w = { 0 };
	_Atomic bool alive = true;
	struct device d = { .w = &w };
	pthread_t th;
	unsigned caught = 0;
	int id;

	id = phys_gate_peer_add(ps, &w, alive_flag, &alive);
	CHECK(id >= 0);
	CHECK_EQ(atomic_load(&w.gate), 0);
	CHECK_OK(pthread_create(&th, NULL, device_main, &d));
	for (unsigned round = 0; round < 20000; round++) {
		phys_gate_yield(ps);
		phys_gate_close(ps);
		CHECK(atomic_load(&w.gate) != 0);
		phys_gate_wait_peers(ps);
		caught += atomic_load(&d.inside) != 0;
		phys_gate_open(ps, 1);
	}
	atomic_store(&d.stop, true);
	CHECK_OK(pthread_join(th, NULL));
	CHECK_EQ(caught, 0);
	CHECK(atomic_load(&d.entered) > 0);
	CHECK_EQ(atomic_load(&w.busy), 0);
	CHECK_EQ(atomic_load(&w.waiting), 0);
	CHECK_EQ(atomic_load(&w.gate), 0);
	phys_gate_peer_del(ps, id);
	phys_destroy(ps);
}

/*
 * The monitor opens the gate and closes it again at once, round after
 * round, each round with the device waiting at the closed gate, which it
 * looks at once every 200 us. Without the yield the device would find
 * the gate open about never (it is open for well under a microsecond of
 * each round); with it, the monitor waits for the waiting device to get
 * in before each close.
 */
TEST(reclosing_monitor_lets_a_waiting_device_in)
{
	struct phys_space *ps = space();
	struct phys_gate_words w = { 0 };
	_Atomic bool alive = true;
	struct device d = { .w = &w, .look_us = 200 };
	pthread_t th;
	const unsigned rounds = 400;
	int id;

	id = phys_gate_peer_add(ps, &w, alive_flag, &alive);
	CHECK(id >= 0);
	phys_gate_close(ps);
	CHECK_OK(pthread_create(&th, NULL, device_main, &d));
	for (unsigned round = 0; round < rounds; round++) {
		/* Each round finds the device waiting at the closed gate. */
		for (unsigned spins = 0; !atomic_load(&w.waiting); spins++) {
			CHECK(spins < 100000000);
			sched_yield();
		}
		phys_gate_open(ps, 1);
		phys_gate_yield(ps);
		phys_gate_close(ps);
		phys_gate_wait_peers(ps);
	}
	atomic_store(&d.stop, true);
	phys_gate_open(ps, 1);
	CHECK_OK(pthread_join(th, NULL));
	printf("# the device got in %llu times in %u rounds of a monitor that closes at once\n",
	       (unsigned long long)atomic_load(&d.entered), rounds);
	/* Each yield lets it in unless it slept past PHYS_GATE_YIELD_NS: most rounds, on any machine. */
	CHECK(atomic_load(&d.entered) >= rounds / 8);
	CHECK_EQ(atomic_load(&w.waiting), 0);
	phys_gate_peer_del(ps, id);
	phys_destroy(ps);
}

/* A peer that died waiting, or one nobody added, holds no munmap up. */
TEST(yield_skips_dead_and_absent_waiters)
{
	struct phys_space *ps = space();
	struct phys_gate_words w = { 0 };
	_Atomic bool alive = false;
	int id;

	phys_gate_yield(ps); /* no peer at all */
	id = phys_gate_peer_add(ps, &w, alive_flag, &alive);
	CHECK(id >= 0);
	CHECK(phys_gate_has_peers(ps));
	atomic_store(&w.waiting, 1); /* died while it waited: never counts itself out */
	/* Each returns at once: 5000 waits of PHYS_GATE_YIELD_NS (20 ms) would pass the test's timeout. */
	for (unsigned i = 0; i < 5000; i++)
		phys_gate_yield(ps);
	/* One alive that waits for ever: the yield gives up (bounded), the gate still closes. */
	atomic_store(&alive, true);
	phys_gate_yield(ps);
	phys_gate_close(ps);
	CHECK_EQ(atomic_load(&w.gate), 1);
	phys_gate_open(ps, 1);
	CHECK_EQ(atomic_load(&w.gate), 0);
	phys_gate_peer_del(ps, id);
	CHECK(!phys_gate_has_peers(ps));
	/* Gone: closing no longer touches its words. */
	phys_gate_close(ps);
	CHECK_EQ(atomic_load(&w.gate), 0);
	phys_gate_open(ps, 1);
	phys_destroy(ps);
}

int main(void)
{
	test_init();
	RUN(closed_gate_leaves_no_access_running);
	RUN(reclosing_monitor_lets_a_waiting_device_in);
	RUN(yield_skips_dead_and_absent_waiters);
	return 0;
}
