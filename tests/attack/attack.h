/* SPDX-License-Identifier: MIT */
/*
 * attack.h - what the adversarial tests (tests/attack) share: a context
 * with the oracle on, buffers fenced by canaries, and checks that the
 * oracle saw nothing. Written from the public headers alone: these tests
 * attack promises, not the implementation.
 */
#ifndef IOVM_TESTS_ATTACK_H
#define IOVM_TESTS_ATTACK_H

#include <iovm.h>
#include <pthread.h>
#include <sys/mman.h>

#include "dev/dev_util.h"

#define CANARY 0xa5u
#define FENCE 256 /* canary bytes either side of a fenced buffer */

/* A context with the oracle on, and @extra options after it. */
static inline struct iovm_ctx *attack_open(const char *extra)
{
	char opts[512];

	snprintf(opts, sizeof(opts), "oracle=on,log_level=error%s%s", extra && *extra ? "," : "",
		 extra ? extra : "");
	return open_ctx(opts);
}

/* Every byte of [p, p+n) is @v. */
static inline int all_bytes(const void *p, size_t n, uint8_t v)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i] != v)
			return 0;
	return 1;
}

/* The first offset in [p, p+n) whose byte is not @v, or n. */
static inline size_t first_not(const void *p, size_t n, uint8_t v)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i] != v)
			return i;
	return n;
}

static inline void check_domain_clean(struct iovm_domain *dom)
{
	struct iovm_domain_stats st;

	CHECK_OK(iovm_domain_stats(dom, &st));
	CHECK_MSG(st.oracle_violations == 0, "%llu oracle violations",
		  (unsigned long long)st.oracle_violations);
}

static inline void check_mem_clean(struct iovm_ctx *ctx)
{
	struct iovm_mem_stats st;

	CHECK_OK(iovm_mem_stats(ctx, &st));
	CHECK_MSG(st.oracle_sync_errors == 0, "%llu oracle sync errors",
		  (unsigned long long)st.oracle_sync_errors);
}

/* errno after a call that returned NULL. */
#define CHECK_NULL_ERRNO(expr, e)                                                        \
	do {                                                                             \
		errno = 0;                                                               \
		void *_p = (void *)(expr);                                               \
		CHECK_MSG(_p == NULL, "%s: returned %p, expected NULL/%s", #expr, _p,   \
			  strerror(e));                                                  \
		CHECK_MSG(errno == (e), "%s: errno %d (%s), expected %d (%s) [%s]", #expr, \
			  errno, strerror(errno), (e), strerror(e), iovm_error_detail()); \
	} while (0)

/* A call that must return exactly @e (0 or a negative errno). */
#define CHECK_RET(expr, e)                                                               \
	do {                                                                             \
		long long _r = (long long)(expr);                                        \
		CHECK_MSG(_r == (long long)(e), "%s: %lld (%s), expected %lld (%s) [%s]", \
			  #expr, _r, _r < 0 ? strerror((int)-_r) : "-", (long long)(e),  \
			  (e) < 0 ? strerror(-(e)) : "-", iovm_error_detail());          \
	} while (0)

/* Run descriptor @d on a rig's queue and return its completion record. */
static inline struct iovm_completion attack_run(struct rig *r, struct iovm_desc d)
{
	return run_desc(r, d);
}

#endif /* IOVM_TESTS_ATTACK_H */
