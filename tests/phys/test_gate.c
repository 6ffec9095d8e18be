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
 *  - fairness with closers on several threads whose batches overlap, each
 *    taking longer to open than a device's chance used to last: the
 *    gate opens between them, and the device gets in;
 *  - the yield waits for no peer that died waiting, for none once none
 *    waits, and no longer once told the gate waits for its caller.
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
	/* Until the device got in at least once, too: a loaded machine may not run it for a while. */
	for (unsigned round = 0; round < 20000 || !atomic_load(&d.entered); round++) {
		CHECK(round < 100000000);
		phys_gate_yield(ps, NULL, NULL);
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
		phys_gate_yield(ps, NULL, NULL);
		phys_gate_close(ps);
		phys_gate_wait_peers(ps);
	}
	atomic_store(&d.stop, true);
	phys_gate_open(ps, 1);
	CHECK_OK(pthread_join(th, NULL));
	printf("# the device got in %llu times in %u rounds of a monitor that closes at once\n",
	       (unsigned long long)atomic_load(&d.entered), rounds);
	/* Each yield lets it in unless it slept past PHYS_GATE_YIELD_OPEN_NS: most rounds, on any machine. */
	CHECK(atomic_load(&d.entered) >= rounds / 8);
	CHECK_EQ(atomic_load(&w.waiting), 0);
	phys_gate_peer_del(ps, id);
	phys_destroy(ps);
}

/*
 * Three threads unmap at once, as attack18's churn does: each closes the
 * gate for a batch that the invalidator opens only 30 ms later, longer
 * than the device's chance lasted when it was counted from the closer's
 * call (20 ms). The closers then gave up before the gate ever opened, one
 * of them always closed it again while a batch before was invalidated,
 * and the device waited until its timeout. Counted from the gate's opening, each closer holds off while
 * the batches before are opened and the device gets in.
 */
struct closers {
	struct phys_space *ps;
	_Atomic bool stop;
	_Atomic uint32_t pending; /* batches closed, not yet opened */
	_Atomic uint64_t opened;
};

static void *closer_main(void *arg)
{
	struct closers *c = arg;

	while (!atomic_load(&c->stop)) {
		phys_gate_yield(c->ps, NULL, NULL);
		phys_gate_close(c->ps);
		phys_gate_wait_peers(c->ps);
		atomic_fetch_add(&c->pending, 1);
		usleep(1000);
	}
	return NULL;
}

static void *opener_main(void *arg)
{
	struct closers *c = arg;

	while (!atomic_load(&c->stop) || atomic_load(&c->pending)) {
		uint32_t n;

		if (!atomic_load(&c->pending)) {
			usleep(500);
			continue;
		}
		/* As the invalidator: the batches closed by now, a slow invalidation, then opened. */
		n = atomic_exchange(&c->pending, 0);
		usleep(30000);
		phys_gate_open(c->ps, n);
		atomic_fetch_add(&c->opened, 1);
	}
	return NULL;
}

TEST(overlapping_slow_batches_let_a_waiting_device_in)
{
	struct closers c = { .ps = space() };
	struct phys_gate_words w = { 0 };
	_Atomic bool alive = true;
	struct device d = { .w = &w, .look_us = 200 };
	pthread_t dev, opener, closer[3];
	const uint64_t openings = 60;
	int id;

	id = phys_gate_peer_add(c.ps, &w, alive_flag, &alive);
	CHECK(id >= 0);
	CHECK_OK(pthread_create(&dev, NULL, device_main, &d));
	CHECK_OK(pthread_create(&opener, NULL, opener_main, &c));
	for (unsigned i = 0; i < 3; i++)
		CHECK_OK(pthread_create(&closer[i], NULL, closer_main, &c));
	while (atomic_load(&c.opened) < openings)
		usleep(1000);
	atomic_store(&c.stop, true);
	for (unsigned i = 0; i < 3; i++)
		CHECK_OK(pthread_join(closer[i], NULL));
	CHECK_OK(pthread_join(opener, NULL));
	/* A batch a closer counted after the opener's last look. */
	phys_gate_open(c.ps, atomic_exchange(&c.pending, 0));
	atomic_store(&d.stop, true);
	CHECK_OK(pthread_join(dev, NULL));
	printf("# the device got in %llu times in %llu openings of batches from three closers\n",
	       (unsigned long long)atomic_load(&d.entered), (unsigned long long)atomic_load(&c.opened));
	/* Each opening lets it in unless it slept past PHYS_GATE_YIELD_OPEN_NS: most, on any machine. */
	CHECK(atomic_load(&d.entered) >= openings / 8);
	CHECK_EQ(atomic_load(&w.gate), 0);
	CHECK_EQ(atomic_load(&w.busy), 0);
	CHECK_EQ(atomic_load(&w.waiting), 0);
	phys_gate_peer_del(c.ps, id);
	phys_destroy(c.ps);
}

/* Asked to stop (its caller is what keeps the gate closed), the yield returns at once, the peer still waiting. */
static bool stop_after_three(void *arg)
{
	return atomic_fetch_add((_Atomic unsigned *)arg, 1) + 1 >= 3;
}

TEST(yield_stops_when_the_gate_waits_for_its_caller)
{
	struct phys_space *ps = space();
	struct phys_gate_words w = { 0 };
	_Atomic bool alive = true;
	_Atomic unsigned asked = 0;
	int id;

	id = phys_gate_peer_add(ps, &w, alive_flag, &alive);
	CHECK(id >= 0);
	atomic_store(&w.waiting, 1); /* a device that waits, alive */
	phys_gate_close(ps);         /* kept closed by the caller's own batch */
	/* 2000 yields, each stopped at its third look: waits of 500 ms each would pass the test's timeout. */
	for (unsigned i = 0; i < 2000; i++) {
		atomic_store(&asked, 0);
		phys_gate_yield(ps, stop_after_three, &asked);
		CHECK_EQ(atomic_load(&asked), 3);
	}
	/* Nobody waits: the stop is not even asked. */
	atomic_store(&w.waiting, 0);
	atomic_store(&asked, 0);
	phys_gate_yield(ps, stop_after_three, &asked);
	CHECK_EQ(atomic_load(&asked), 0);
	phys_gate_open(ps, 1);
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

	phys_gate_yield(ps, NULL, NULL); /* no peer at all */
	id = phys_gate_peer_add(ps, &w, alive_flag, &alive);
	CHECK(id >= 0);
	CHECK(phys_gate_has_peers(ps));
	atomic_store(&w.waiting, 1); /* died while it waited: never counts itself out */
	/* Each returns at once: 5000 waits of PHYS_GATE_YIELD_OPEN_NS (50 ms) would pass the test's timeout. */
	for (unsigned i = 0; i < 5000; i++)
		phys_gate_yield(ps, NULL, NULL);
	/* One alive that waits for ever: the yield gives up (bounded), the gate still closes. */
	atomic_store(&alive, true);
	phys_gate_yield(ps, NULL, NULL);
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

/*
 * Each opening that brings the gate to 0 counts in the peer's words: a
 * device that waits for the gate faults only when its owner stopped
 * opening it, not while an owner that keeps discarding memory closes it
 * again and again. Batches settled while another keeps it closed are no
 * opening (a call stuck with the gate closed must still time the device
 * out), nor is an empty opening.
 */
TEST(openings_count_the_owners_progress)
{
	struct phys_space *ps = space();
	struct phys_gate_words w = { 0 };
	_Atomic bool alive = true;
	int id = phys_gate_peer_add(ps, &w, alive_flag, &alive);

	CHECK(id >= 0);
	CHECK_EQ(atomic_load(&w.opened), 0);
	phys_gate_close(ps);
	phys_gate_close(ps);
	phys_gate_open(ps, 1);
	CHECK_EQ(atomic_load(&w.gate), 1); /* still closed: no opening */
	CHECK_EQ(atomic_load(&w.opened), 0);
	phys_gate_open(ps, 1);
	CHECK_EQ(atomic_load(&w.gate), 0);
	CHECK_EQ(atomic_load(&w.opened), 1);
	phys_gate_open(ps, 0);
	CHECK_EQ(atomic_load(&w.opened), 1);
	phys_gate_close(ps);
	phys_gate_close(ps);
	phys_gate_open(ps, 2);
	CHECK_EQ(atomic_load(&w.opened), 2);
	phys_gate_peer_del(ps, id);
	/* Gone: its words are left alone. */
	phys_gate_close(ps);
	phys_gate_open(ps, 1);
	CHECK_EQ(atomic_load(&w.opened), 2);
	phys_destroy(ps);
}

int main(void)
{
	test_init();
	RUN(closed_gate_leaves_no_access_running);
	RUN(reclosing_monitor_lets_a_waiting_device_in);
	RUN(overlapping_slow_batches_let_a_waiting_device_in);
	RUN(yield_skips_dead_and_absent_waiters);
	RUN(yield_stops_when_the_gate_waits_for_its_caller);
	RUN(openings_count_the_owners_progress);
	return 0;
}
