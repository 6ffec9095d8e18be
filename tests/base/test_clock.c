/* SPDX-License-Identifier: MIT */
/*
 * test_clock.c - a bounded wait's clock (clock_wait_tick()), on made-up
 * times: a waiter that looks often counts all of its wait; one kept off
 * the CPU for seconds counts only a gap's worth of them, so that a
 * machine stalled as a whole never times out a wait whose other side
 * was stalled with it (attack18's churn: a device process woke past its
 * 5 s for a gate its client had not had the time to open).
 */
#include <stdint.h>

#include "base/clock.h"
#include "harness.h"

#define MS (UINT64_C(1000000))
#define GAP (50 * MS)
#define TIMEOUT (5000 * MS)

/* A waiter looking every 1 ms times out after 5 s, as a plain clock would say. */
TEST(looking_often_counts_everything)
{
	struct clock_wait w;
	uint64_t now = 123 * MS, looks = 0;

	clock_wait_start(&w, now);
	while (clock_wait_tick(&w, now, GAP) < TIMEOUT) {
		now += MS;
		looks++;
	}
	CHECK_EQ(looks, 5000);
	CHECK_EQ(w.waited, TIMEOUT);
}

/* Off the CPU for 10 s between two looks: 50 ms of it counted, the wait goes on. */
TEST(a_stall_counts_one_gap)
{
	struct clock_wait w;
	uint64_t now = 7 * MS;

	clock_wait_start(&w, now);
	CHECK_EQ(clock_wait_tick(&w, now += 2 * MS, GAP), 2 * MS);
	CHECK_EQ(clock_wait_tick(&w, now += 10000 * MS, GAP), 2 * MS + GAP);
	CHECK(w.waited < TIMEOUT);
	/* Then looking again, every 10 ms, up to the bound: 495 looks more. */
	while (clock_wait_tick(&w, now += 10 * MS, GAP) < TIMEOUT)
		;
	CHECK_EQ(w.waited, 5002 * MS);
	/* Nearly 15 s of the wall clock, 5 s of them counted. */
	CHECK_EQ(now - 7 * MS, 2 * MS + 10000 * MS + 495 * 10 * MS);
}

/* A loaded machine: 60 ms off the CPU between looks, each counted 50 ms; a clock going back counts nothing. */
TEST(long_gaps_count_the_gap)
{
	struct clock_wait w;
	uint64_t now = 0;
	unsigned looks = 0;

	clock_wait_start(&w, now);
	while (clock_wait_tick(&w, now += 60 * MS, GAP) < TIMEOUT)
		looks++;
	CHECK_EQ(looks + 1, TIMEOUT / GAP);
	clock_wait_start(&w, 100 * MS);
	CHECK_EQ(clock_wait_tick(&w, 90 * MS, GAP), 0);
	CHECK_EQ(clock_wait_tick(&w, 95 * MS, GAP), 5 * MS);
}

int main(void)
{
	test_init();
	RUN(looking_often_counts_everything);
	RUN(a_stall_counts_one_gap);
	RUN(long_gaps_count_the_gap);
	return 0;
}
