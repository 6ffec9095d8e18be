/* SPDX-License-Identifier: MIT */
/*
 * attack19.h - what the nineteenth adversarial round (test_attack19_*.c)
 * shares: a process's own memory registered into a shared domain
 * (iovm/mp.h, iovm_mr_reg() on a view), attacked from the public headers.
 *
 * Tests that found a broken promise run only with IOVM_ATTACK19_KNOWN=1
 * (A19_KNOWN()); otherwise they print a skip line naming the bug.
 */
#ifndef IOVM_TESTS_ATTACK19_H
#define IOVM_TESTS_ATTACK19_H

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include "mp/mp_sdom.h"
#include "mp/mp_util.h"

#define A19_KNOWN(bug)                                                                   \
	do {                                                                             \
		const char *_k = getenv("IOVM_ATTACK19_KNOWN");                          \
		if (!_k || strcmp(_k, "1"))                                              \
			SKIP_CASE("known bug (IOVM_ATTACK19_KNOWN=1 runs it): %s", bug); \
	} while (0)

/* Whether known bugs are to fail (IOVM_ATTACK19_KNOWN=1); when not, a case that shows one says so and goes on. */
static inline bool a19_known(const char *bug)
{
	const char *k = getenv("IOVM_ATTACK19_KNOWN");

	if (k && !strcmp(k, "1"))
		return true;
	printf("# skip %s: known bug (IOVM_ATTACK19_KNOWN=1 runs it): %s\n", test_current, bug);
	return false;
}

/* Where shared domains put registrations' windows (as test_mp_domain_reg.c). */
#define A19_REG_PA_LO (UINT64_C(1) << 46)
#define A19_REG_PA_HI (UINT64_C(1) << 47)
#define A19_WIN (UINT64_C(4) << 30)

static inline uint64_t a19_mr_iova(struct iovm_mr *mr)
{
	struct iovm_mr_info info;

	CHECK_OK(iovm_mr_query(mr, &info));
	return info.iova.addr;
}

static inline struct iovm_domain_stats a19_stats(struct iovm_domain *dom)
{
	struct iovm_domain_stats st;

	CHECK_OK(iovm_domain_stats(dom, &st));
	return st;
}

static inline uint8_t a19_copy(struct devq *d, uint64_t src, uint64_t dst, uint64_t len)
{
	return devq_run(d, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = src, .dst = dst, .len = (uint32_t)len });
}

static inline uint8_t a19_pat(uint64_t seed, size_t i)
{
	uint64_t x = (seed + i) * UINT64_C(0x9E3779B97F4A7C15);

	return (uint8_t)((x >> 29) | 1); /* never 0 */
}

#endif /* IOVM_TESTS_ATTACK19_H */
