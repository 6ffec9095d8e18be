/* SPDX-License-Identifier: MIT */
/*
 * attack22.h - what the twenty-second adversarial round
 * (test_attack22_*.c) shares: processes of one share that register their
 * own memory (malloc(), mmap()) into a shared domain and reach each
 * other's registrations with their devices ("delegated access",
 * iovm/mp.h). Written from the public headers alone.
 *
 * Harness: soft checks that count broken promises (the test goes on and
 * reports every one), a hang detector (alarm(): a hang is a failure,
 * never a wait), byte patterns, and a software engine queue with a worker
 * thread whose rings are in a domain of the process's own while the
 * shared domain is attached at SDOM_PASID.
 *
 * Tests that found a broken promise run only with IOVM_ATTACK22_KNOWN=1
 * (a22_known()); otherwise they print a skip line naming the bug.
 */
#ifndef IOVM_TESTS_ATTACK22_H
#define IOVM_TESTS_ATTACK22_H

#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <iovm.h>

#include "mp/mp_sdom.h"
#include "mp/mp_util.h"
#include "round.h"

#define A22_RW (IOVM_MAP_READ | IOVM_MAP_WRITE)
#define A22_K4 UINT64_C(4096)
#define A22_M2 (UINT64_C(2) << 20)

static _Atomic unsigned a22_broken;

/* A broken promise: reported and counted; the test goes on. */
#define A22_EXPECT_MSG(cond, ...)                                                               \
	do {                                                                                    \
		if (!(cond)) {                                                                  \
			fprintf(stderr, "FAIL %s:%d [%s] pid %d: ", __FILE__, __LINE__,         \
				test_current, (int)getpid());                                   \
			fprintf(stderr, __VA_ARGS__);                                           \
			fprintf(stderr, "\n");                                                  \
			atomic_fetch_add(&a22_broken, 1);                                       \
		}                                                                               \
		atomic_fetch_add_explicit(&test_checks, 1, memory_order_relaxed);               \
	} while (0)

#define A22_EXPECT_EQ(a, b)                                                                        \
	do {                                                                                       \
		long long _ea = (long long)(a), _eb = (long long)(b);                              \
		A22_EXPECT_MSG(_ea == _eb, "%s == %s: %lld != %lld (%#llx != %#llx)", #a, #b, _ea, \
			       _eb, (unsigned long long)_ea, (unsigned long long)_eb);             \
	} while (0)

static inline int a22_status(void)
{
	unsigned n = atomic_load(&a22_broken);

	if (n)
		fprintf(stderr, "FAIL: %u broken promise(s), see above\n", n);
	return n ? 1 : 0;
}

static inline bool a22_known(const char *bug)
{
	return round_known("IOVM_ATTACK22_KNOWN", bug);
}

#define a22_watchdog round_watchdog

/* Byte @i of pattern @seed. */
static inline uint8_t a22_pat(uint64_t seed, size_t i)
{
	uint64_t x = (seed * 1000003u + i + 1) * UINT64_C(0x9E3779B97F4A7C15);

	return (uint8_t)(x >> 31);
}

static inline void a22_fill(uint8_t *p, size_t len, uint64_t seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = a22_pat(seed, i);
}

/* The first offset of [p, p+len) that is not pattern @seed (from its offset @from), or len. */
static inline size_t a22_differs(const uint8_t *p, size_t len, uint64_t seed, size_t from)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != a22_pat(seed, from + i))
			return i;
	return len;
}

static inline uint64_t a22_mr_iova(struct iovm_mr *mr)
{
	struct iovm_mr_info info;

	CHECK_OK(iovm_mr_query(mr, &info));
	return info.iova.addr;
}

/* Faults this process counted: the domain's (its view's) and the queue's. */
static inline uint64_t a22_faults(struct iovm_domain *dom, struct iovm_queue *q)
{
	struct iovm_domain_stats st;
	struct iovm_queue_stats qs;

	CHECK_OK(iovm_domain_stats(dom, &st));
	CHECK_OK(iovm_queue_stats(q, &qs));
	return st.faults + st.faults_dropped + qs.faults + qs.ring_faults + qs.bus_faults;
}

/* No oracle violation in this view's accesses. */
static inline void a22_oracle_clean(struct iovm_domain *dom)
{
	struct iovm_domain_stats st;

	CHECK_OK(iovm_domain_stats(dom, &st));
	A22_EXPECT_MSG(st.oracle_violations == 0, "the oracle saw %llu violations in %llu checks",
		       (unsigned long long)st.oracle_violations, (unsigned long long)st.oracle_checks);
}

#endif /* IOVM_TESTS_ATTACK22_H */
