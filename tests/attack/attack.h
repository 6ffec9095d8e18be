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

/*
 * Soft checks: a broken promise is reported and counted, and the program
 * goes on to find the next one; attack_status() makes main() fail at the
 * end. Hard checks (CHECK*) stop at once, for what the rest depends on.
 */
static _Atomic unsigned attack_broken;

#define EXPECT_MSG(cond, ...)                                                            \
	do {                                                                             \
		if (!(cond)) {                                                           \
			fprintf(stderr, "FAIL %s:%d [%s]: ", __FILE__, __LINE__, test_current); \
			fprintf(stderr, __VA_ARGS__);                                    \
			fprintf(stderr, "\n");                                           \
			atomic_fetch_add(&attack_broken, 1);                             \
		}                                                                        \
		atomic_fetch_add_explicit(&test_checks, 1, memory_order_relaxed);        \
	} while (0)

#define EXPECT(cond) EXPECT_MSG(cond, "%s", #cond)

#define EXPECT_EQ(a, b)                                                                  \
	do {                                                                             \
		long long _ea = (long long)(a), _eb = (long long)(b);                    \
		EXPECT_MSG(_ea == _eb, "%s == %s: %lld != %lld (%#llx != %#llx)", #a, #b, _ea, \
			   _eb, (unsigned long long)_ea, (unsigned long long)_eb);       \
	} while (0)

/*
 * base.h: a failed call leaves a sentence that names the call, and every
 * -EINVAL says which argument failed which check. @expr's text starts
 * with the function's name.
 */
static inline void expect_detail_names(const char *expr, const char *file, int line)
{
	char fn[64];
	size_t n = strcspn(expr, "( ");
	const char *d = iovm_error_detail();

	if (n >= sizeof(fn))
		n = sizeof(fn) - 1;
	memcpy(fn, expr, n);
	fn[n] = 0;
	if (strncmp(fn, "iovm_", 5))
		return;
	if (!d || !strstr(d, fn)) {
		/* Once per function: the first case says it, the rest only count. */
		static char said[64][64];
		static unsigned nsaid;
		static pthread_mutex_t said_lock = PTHREAD_MUTEX_INITIALIZER;
		unsigned i;

		pthread_mutex_lock(&said_lock);
		for (i = 0; i < nsaid && strcmp(said[i], fn); i++)
			;
		if (i == nsaid && nsaid < 64) {
			snprintf(said[nsaid++], sizeof(said[0]), "%s", fn);
			fprintf(stderr, "FAIL %s:%d [%s]: %s: EINVAL without a detail naming %s "
				"(detail: \"%s\"); further cases of %s only counted\n",
				file, line, test_current, expr, fn, d ? d : "(null)", fn);
		}
		pthread_mutex_unlock(&said_lock);
		atomic_fetch_add(&attack_broken, 1);
	}
	atomic_fetch_add_explicit(&test_checks, 1, memory_order_relaxed);
}

/* errno after a call that must return NULL. */
#define CHECK_NULL_ERRNO(expr, e)                                                        \
	do {                                                                             \
		errno = 0;                                                               \
		void *_p = (void *)(expr);                                               \
		int _e = errno;                                                          \
		EXPECT_MSG(_p == NULL && _e == (e), "%s: %p errno %d (%s), expected NULL/%d (%s) [%s]", \
			   #expr, _p, _e, strerror(_e), (e), strerror(e), iovm_error_detail()); \
		if (_p == NULL && _e == EINVAL && (e) == EINVAL)                         \
			expect_detail_names(#expr, __FILE__, __LINE__);                  \
	} while (0)

/* A call that must return exactly @e (0 or a negative errno). */
#define CHECK_RET(expr, e)                                                               \
	do {                                                                             \
		long long _r = (long long)(expr);                                        \
		EXPECT_MSG(_r == (long long)(e), "%s: %lld (%s), expected %lld (%s) [%s]", \
			   #expr, _r, _r < 0 ? strerror((int)-_r) : "-", (long long)(e),  \
			   (e) < 0 ? strerror(-(e)) : "-", iovm_error_detail());          \
		if (_r == -EINVAL && (e) == -EINVAL)                                     \
			expect_detail_names(#expr, __FILE__, __LINE__);                  \
	} while (0)

/* main()'s exit status: 1 when a soft check failed. */
static inline int attack_status(void)
{
	unsigned n = atomic_load(&attack_broken);

	if (n) {
		fprintf(stderr, "FAIL: %u broken promise(s), see above\n", n);
		test_ended = 1;
		return 1;
	}
	return 0;
}

/* Run descriptor @d on a rig's queue and return its completion record. */
static inline struct iovm_completion attack_run(struct rig *r, struct iovm_desc d)
{
	return run_desc(r, d);
}

#endif /* IOVM_TESTS_ATTACK_H */
