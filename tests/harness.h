/* SPDX-License-Identifier: MIT */
/*
 * harness.h - what every test program uses: checks that print what failed,
 * a skip that tells meson (exit 77), and a count of checks so that a test
 * that asserted nothing fails instead of passing vacuously; a test in which
 * the library's own IOVM_WARN_ON() fired fails too.
 */
#ifndef IOVM_TESTS_HARNESS_H
#define IOVM_TESTS_HARNESS_H

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/check.h"

#define TEST_SKIP 77

static _Atomic unsigned long test_checks;
static const char *test_current = "";
static volatile int test_ended; /* failed or skipped: the exit code already says it */

static void test_done(void)
{
	if (test_ended)
		return;
	if (atomic_load(&test_checks) == 0) {
		fprintf(stderr, "FAIL: no check ran: a test must assert something\n");
		_exit(1);
	}
	/* An IOVM_WARN_ON() of the library fired: an invariant broke, whatever the checks said. */
	if (check_warnings()) {
		fprintf(stderr, "FAIL: %lu library warning(s) (IOVM_WARN_ON), see the log above\n",
			check_warnings());
		_exit(1);
	}
	printf("# %lu checks passed\n", atomic_load(&test_checks));
}

#define test_fail(...)                                                             \
	do {                                                                       \
		fprintf(stderr, "FAIL %s:%d [%s]: ", __FILE__, __LINE__, test_current); \
		fprintf(stderr, __VA_ARGS__);                                      \
		fprintf(stderr, "\n");                                             \
		test_ended = 1;                                                    \
		exit(1);                                                           \
	} while (0)

#define CHECK(cond)                                          \
	do {                                                 \
		if (!(cond))                                 \
			test_fail("%s", #cond);              \
		atomic_fetch_add_explicit(&test_checks, 1, memory_order_relaxed); \
	} while (0)

#define CHECK_MSG(cond, ...)                                 \
	do {                                                 \
		if (!(cond))                                 \
			test_fail(__VA_ARGS__);              \
		atomic_fetch_add_explicit(&test_checks, 1, memory_order_relaxed); \
	} while (0)

#define CHECK_EQ(a, b)                                                                   \
	do {                                                                             \
		long long _a = (long long)(a), _b = (long long)(b);                      \
		if (_a != _b)                                                            \
			test_fail("%s == %s: %lld != %lld (%#llx != %#llx)", #a, #b, _a, _b, \
				  (unsigned long long)_a, (unsigned long long)_b);       \
		atomic_fetch_add_explicit(&test_checks, 1, memory_order_relaxed);        \
	} while (0)

/* A call returning 0 or a negative errno. */
#define CHECK_OK(expr)                                                                 \
	do {                                                                           \
		long long _r = (long long)(expr);                                      \
		if (_r < 0)                                                            \
			test_fail("%s: %lld (%s)", #expr, _r, strerror((int)-_r));     \
		atomic_fetch_add_explicit(&test_checks, 1, memory_order_relaxed);      \
	} while (0)

#define TEST(name)                                                   \
	static void test_##name(void);                               \
	static void run_##name(void)                                 \
	{                                                            \
		test_current = #name;                                \
		test_##name();                                       \
		printf("ok - %s\n", #name);                          \
		fflush(stdout);                                      \
	}                                                            \
	static void test_##name(void)

#define RUN(name) run_##name()

#define SKIP(...)                                      \
	do {                                           \
		printf("# SKIP: ");                    \
		printf(__VA_ARGS__);                   \
		printf("\n");                          \
		test_ended = 1;                        \
		exit(TEST_SKIP);                       \
	} while (0)

/* Skip the rest of one test (the program goes on), saying why. */
#define SKIP_CASE(...)                                 \
	do {                                           \
		printf("# skip %s: ", test_current);   \
		printf(__VA_ARGS__);                   \
		printf("\n");                          \
		return;                                \
	} while (0)

/* AddressSanitizer replaces malloc: its free() neither unmaps nor trims. */
#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif
#ifndef TEST_ASAN
#define TEST_ASAN 0
#endif

/* ThreadSanitizer replaces malloc too, and its fork() cannot wait for the memory monitor's reader. */
#if defined(__SANITIZE_THREAD__)
#define TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TEST_TSAN 1
#endif
#endif
#ifndef TEST_TSAN
#define TEST_TSAN 0
#endif

static inline void test_init(void)
{
	atexit(test_done);
	setvbuf(stdout, NULL, _IOLBF, 0);
}

/* A small, fast, reproducible random generator (xorshift64*). */
static inline uint64_t test_rand(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * UINT64_C(2685821657736338717);
}

#endif /* IOVM_TESTS_HARNESS_H */
