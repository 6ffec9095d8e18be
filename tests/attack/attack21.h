/* SPDX-License-Identifier: MIT */
/*
 * attack21.h - what the twenty-first adversarial round (test_attack21_*.c)
 * shares: a process's own memory registered into a shared domain
 * (iovm_mr_reg() on a view of iovm_share_domain_create()), reached by the
 * devices of OTHER processes of the share, which the registering process
 * serves with its own engine ("delegated access", iovm/mp.h). Written
 * from the public headers alone.
 *
 * Harness: tests/mp's children and devices (mp_util.h, mp_sdom.h), soft
 * checks that count broken promises, a hang detector (alarm(): a hang is
 * a failure, never a wait), a queue with a worker for threads that
 * hammer, generation-tagged memory (every 8-byte word says which buffer
 * and offset it is, so a stray byte names where it came from), and a
 * CRC-32C reference.
 *
 * Tests that found a broken promise run only with IOVM_ATTACK21_KNOWN=1
 * (a21_known()); otherwise they print a skip line naming the bug.
 */
#ifndef IOVM_TESTS_ATTACK21_H
#define IOVM_TESTS_ATTACK21_H

#include <pthread.h>
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

#define A21_RW (IOVM_MAP_READ | IOVM_MAP_WRITE)
#define A21_K4 UINT64_C(4096)
#define A21_M2 (UINT64_C(2) << 20)

static _Atomic unsigned a21_broken;

/* A broken promise: reported and counted; the test goes on to the next. */
#define EXPECT_MSG(cond, ...)                                                                   \
	do {                                                                                    \
		if (!(cond)) {                                                                  \
			fprintf(stderr, "FAIL %s:%d [%s] pid %d: ", __FILE__, __LINE__,         \
				test_current, (int)getpid());                                   \
			fprintf(stderr, __VA_ARGS__);                                           \
			fprintf(stderr, "\n");                                                  \
			atomic_fetch_add(&a21_broken, 1);                                       \
		}                                                                               \
		atomic_fetch_add_explicit(&test_checks, 1, memory_order_relaxed);               \
	} while (0)

#define EXPECT(cond) EXPECT_MSG(cond, "%s", #cond)

#define EXPECT_EQ(a, b)                                                                        \
	do {                                                                                   \
		long long _ea = (long long)(a), _eb = (long long)(b);                          \
		EXPECT_MSG(_ea == _eb, "%s == %s: %lld != %lld (%#llx != %#llx)", #a, #b, _ea, \
			   _eb, (unsigned long long)_ea, (unsigned long long)_eb);             \
	} while (0)

#define EXPECT_SOUND(ctx)                                                                     \
	do {                                                                                  \
		int _r = iovm_share_check(ctx);                                               \
		EXPECT_MSG(_r == 0, "iovm_share_check: %d (%s): %s", _r, strerror(-_r),       \
			   iovm_error_detail() ? iovm_error_detail() : "");                   \
	} while (0)

static inline int a21_status(void)
{
	unsigned n = atomic_load(&a21_broken);

	if (n)
		fprintf(stderr, "FAIL: %u broken promise(s), see above\n", n);
	return n ? 1 : 0;
}

static unsigned a21_broken_before; /* in a child: the parent's count at the fork */

/* First thing in a child: what the parent had failed is not the child's. */
static inline void a21_child_begin(void)
{
	a21_broken_before = atomic_load(&a21_broken);
}

/* In a child: exit 1 when a soft check failed in it. */
static inline _Noreturn void a21_child_exit(void)
{
	fflush(NULL);
	_exit(atomic_load(&a21_broken) != a21_broken_before ? 1 : 0);
}

static inline bool a21_known(const char *bug)
{
	return round_known("IOVM_ATTACK21_KNOWN", bug);
}

#define a21_watchdog round_watchdog

static inline void a21_init(void)
{
	test_init();
	signal(SIGPIPE, SIG_IGN);
}

/*
 * Generation-tagged memory: word w (8 bytes) of buffer @gen is
 * A21_WORD(gen, w); a word read anywhere names its buffer and offset.
 */
#define A21_WORD(gen, w) ((UINT64_C(0xa21) << 52) | ((uint64_t)(gen) << 32) | (uint64_t)(w))
#define A21_WORD_GEN(v) ((unsigned)(((v) >> 32) & 0xfffff))
#define A21_WORD_IS(v) (((v) >> 52) == 0xa21)

static inline void a21_tag(void *p, size_t len, unsigned gen)
{
	uint64_t *w = p;

	for (size_t i = 0; i < len / 8; i++)
		w[i] = A21_WORD(gen, i);
}

/* Byte @i of pattern @seed: never 0. */
static inline uint8_t a21_pat(uint64_t seed, size_t i)
{
	uint64_t x = (seed * 1000003u + i) * UINT64_C(0x9E3779B97F4A7C15);

	return (uint8_t)((x >> 29) | 1);
}

static inline void a21_fill(uint8_t *p, size_t len, uint64_t seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = a21_pat(seed, i);
}

/* The first offset where [p, p+len) is not pattern @seed from offset @from, or len. */
static inline size_t a21_differs(const uint8_t *p, size_t len, uint64_t seed, size_t from)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != a21_pat(seed, from + i))
			return i;
	return len;
}

static inline size_t a21_first_not(const uint8_t *p, size_t len, uint8_t v)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != v)
			return i;
	return len;
}

/* CRC-32C (Castagnoli, reflected), from @seed as the engine takes crc_seed. */
static inline uint32_t a21_crc32c_raw(uint32_t crc, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
	}
	return crc;
}

/* 2 MiB-aligned anonymous memory of @len bytes plus a 2 MiB guard after it. */
static inline uint8_t *a21_map_aligned(size_t len)
{
	uint8_t *p = mmap(NULL, len + 2 * A21_M2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(p != MAP_FAILED);
	return (uint8_t *)(((uintptr_t)p + A21_M2 - 1) & ~(uintptr_t)(A21_M2 - 1));
}

static inline uint64_t a21_mr_iova(struct iovm_mr *mr)
{
	struct iovm_mr_info info;

	CHECK_OK(iovm_mr_query(mr, &info));
	return info.iova.addr;
}

/* Run @desc on a polled devq with its completion record at @comp_iova (whose bytes are at @comp). */
static inline struct iovm_completion devq_run_rec(struct devq *d, struct iovm_desc desc, struct iovm_completion *comp,
						  uint64_t comp_iova)
{
	uint8_t st;

	memset(comp, 0, sizeof(*comp));
	desc.flags |= IOVM_DESC_COMPLETION;
	desc.completion = comp_iova;
	st = devq_run(d, desc);
	EXPECT_EQ(st, __atomic_load_n(&comp->status, __ATOMIC_ACQUIRE));
	return *comp;
}

#endif /* IOVM_TESTS_ATTACK21_H */
