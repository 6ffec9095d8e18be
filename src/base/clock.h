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

#endif /* IOVM_BASE_CLOCK_H */
