/* SPDX-License-Identifier: MIT */
/*
 * attack10.h - what the tenth adversarial round (test_attack10_*.c)
 * shares, on top of the ninth's rig (attack9_mr.h): the gate of an MR
 * mapped on a device process (iovm/mp.h, iovm_rqueue_map_mr()), pieces cut
 * from the MR's first page under tiny pin budgets, and liveness when the
 * device process dies or stalls. Written from the public headers alone.
 *
 * Tests that found a broken promise run only with IOVM_ATTACK10_KNOWN=1
 * (A10_KNOWN()); otherwise they print a skip line naming the bug.
 * A call that may hang runs under a watchdog (a10_watch()): past its
 * deadline the test fails, naming the call.
 */
#ifndef IOVM_TESTS_ATTACK10_H
#define IOVM_TESTS_ATTACK10_H

#include <signal.h>

#include "attack/attack9_mr.h"

#ifndef MADV_DONTNEED_LOCKED
#define MADV_DONTNEED_LOCKED 24
#endif

#define A10_KNOWN(bug)                                                                   \
	do {                                                                             \
		const char *_k = getenv("IOVM_ATTACK10_KNOWN");                          \
		if (!_k || strcmp(_k, "1"))                                              \
			SKIP_CASE("known bug (IOVM_ATTACK10_KNOWN=1 runs it): %s", bug); \
	} while (0)

#define A10_RUN(name)                                  \
	do {                                           \
		const char *_o = getenv("A10_ONLY");   \
		if (!_o || !strcmp(_o, #name))         \
			RUN(name);                     \
	} while (0)

#define ODPW (IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND)
#define RW (IOVM_MAP_READ | IOVM_MAP_WRITE)

static const char *volatile a10_what = "";

static void a10_alarm(int sig)
{
	char buf[256];
	int n = snprintf(buf, sizeof(buf), "FAIL [%s]: hang: %s did not return within the deadline\n", test_current,
			 a10_what);

	(void)sig;
	if (write(2, buf, (size_t)n) < 0) {
	}
	_exit(1);
}

/* Fail the test (exit 1) if @what has not returned after @s seconds; a10_watch(0, ...) disarms. */
static inline void a10_watch(unsigned s, const char *what)
{
	a10_what = what;
	signal(SIGALRM, a10_alarm);
	alarm(s);
}

static inline void a10_fill_rand(uint8_t *p, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)a9_rng(&seed);
}

static inline void a10_report(struct iovm_completion c, const char *what)
{
	printf("# %s: status %u, bytes_completed %u, fault_addr %#llx, reason %u, access %u\n", what, c.status,
	       c.bytes_completed, (unsigned long long)c.fault_addr, c.fault_reason, c.fault_access);
}

#endif /* IOVM_TESTS_ATTACK10_H */
