/* SPDX-License-Identifier: MIT */
/*
 * clock.h - monotonic time for hysteresis and benchmarks.
 */
#ifndef IOVM_BASE_CLOCK_H
#define IOVM_BASE_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t clock_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * A bounded wait's clock, as the waiter sees it: the time between two of
 * its looks counts, but at most @gap_ns of each gap. A waiter kept off
 * the CPU (a loaded machine, a stalled one) saw nothing of what it waits
 * for meanwhile, which may well be done at its next look: that time is
 * not the awaited party's. Seen in attack18's churn: a device process
 * off the CPU for seconds woke past its 5 s for a gate its client, as
 * stalled, had not had the time to open, and faulted a descriptor.
 * clock_wait_tick() counts up to @now and returns the time counted.
 */
struct clock_wait {
	uint64_t last, waited;
};

static inline void clock_wait_start(struct clock_wait *w, uint64_t now)
{
	w->last = now;
	w->waited = 0;
}

static inline uint64_t clock_wait_tick(struct clock_wait *w, uint64_t now, uint64_t gap_ns)
{
	uint64_t gap = now > w->last ? now - w->last : 0;

	w->waited += gap < gap_ns ? gap : gap_ns;
	w->last = now;
	return w->waited;
}

#endif /* IOVM_BASE_CLOCK_H */
