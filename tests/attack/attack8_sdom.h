/* SPDX-License-Identifier: MIT */
/*
 * attack8_sdom.h - what the eighth adversarial round (test_attack8_sdom_*.c)
 * shares: shared domains (iovm/mp.h, "Shared domains") attacked from the
 * public headers alone. Soft checks that report a broken promise and go on,
 * the share's accounting read in one call, a device of the process on the
 * shared domain (tests/mp/mp_sdom.h), and children that die with the test.
 */
#ifndef IOVM_TESTS_ATTACK8_SDOM_H
#define IOVM_TESTS_ATTACK8_SDOM_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include <iovm.h>

#include "mp/mp_sdom.h"
#include "mp/mp_util.h"

#define A8_RW (IOVM_MAP_READ | IOVM_MAP_WRITE)
#define A8_WIN UINT64_C(0x100000000) /* the window's first IOVA: 4 GiB */
#define A8_K4 UINT64_C(4096)
#define A8_M2 (UINT64_C(2) << 20)

static _Atomic unsigned a8_broken;

/* A broken promise: reported and counted; the test goes on to the next. */
#define EXPECT_MSG(cond, ...)                                                                   \
	do {                                                                                    \
		if (!(cond)) {                                                                  \
			fprintf(stderr, "FAIL %s:%d [%s]: ", __FILE__, __LINE__, test_current); \
			fprintf(stderr, __VA_ARGS__);                                           \
			fprintf(stderr, "\n");                                                  \
			atomic_fetch_add(&a8_broken, 1);                                        \
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

/* The share's structure is sound (iovm_share_check()), said with its detail. */
#define EXPECT_SOUND(ctx)                                                                     \
	do {                                                                                  \
		int _r = iovm_share_check(ctx);                                               \
		EXPECT_MSG(_r == 0, "iovm_share_check: %d (%s): %s", _r, strerror(-_r),       \
			   iovm_error_detail() ? iovm_error_detail() : "");                   \
	} while (0)

static inline int a8_status(void)
{
	unsigned n = atomic_load(&a8_broken);

	if (n)
		fprintf(stderr, "FAIL: %u broken promise(s), see above\n", n);
	return n ? 1 : 0;
}

/* In a child: exit 1 when a soft check failed in it. */
static inline _Noreturn void a8_child_exit(void)
{
	fflush(NULL);
	_exit(atomic_load(&a8_broken) ? 1 : 0);
}

static inline void a8_init(void)
{
	test_init();
	signal(SIGPIPE, SIG_IGN);
}

static inline uint64_t a8_held(struct iovm_ctx *ctx)
{
	return share_info(ctx).domain_held;
}

static inline uint64_t a8_free(struct iovm_ctx *ctx)
{
	return share_info(ctx).heap_free;
}

/* Nothing held, the heap back at @base_free bytes free in @base_blocks blocks, and sound. */
static inline void a8_settled(struct iovm_ctx *ctx, uint64_t base_free, uint64_t base_blocks, const char *when)
{
	struct iovm_share_info in = share_info(ctx);

	EXPECT_MSG(in.domain_held == 0, "%s: domain_held %llu", when, (unsigned long long)in.domain_held);
	EXPECT_MSG(in.heap_free == base_free, "%s: heap_free %llu, was %llu", when,
		   (unsigned long long)in.heap_free, (unsigned long long)base_free);
	EXPECT_MSG(in.blocks == base_blocks, "%s: blocks %llu, was %llu", when,
		   (unsigned long long)in.blocks, (unsigned long long)base_blocks);
	EXPECT_SOUND(ctx);
}

static inline iovm_pa_t a8_pa(struct iovm_ctx *ctx, const void *p)
{
	iovm_pa_t pa;

	CHECK_OK(iovm_dma_pa(ctx, p, &pa));
	return pa;
}

static inline void *a8_alloc(struct iovm_ctx *ctx, size_t size, size_t align, uint32_t flags)
{
	void *p = iovm_dma_alloc(ctx, size, align, flags);

	CHECK_MSG(p != NULL, "iovm_dma_alloc(%zu, %zu, %#x): %s", size, align, flags, strerror(errno));
	return p;
}

/* Map @len bytes at PA @pa at IOVA @at (IOVM_IOVA_ANY: the domain's choice); the IOVA. */
static inline uint64_t a8_map(struct iovm_domain *dom, iovm_pa_t pa, size_t len, uint64_t at)
{
	iovm_iova_t iova = IOVM_IOVA(at);
	int r = iovm_domain_map(dom, &iova, pa, len, A8_RW);

	CHECK_MSG(r == 0, "iovm_domain_map(pa %#llx, len %zu, at %#llx): %d (%s): %s",
		  (unsigned long long)pa.addr, len, (unsigned long long)at, r, strerror(-r),
		  iovm_error_detail() ? iovm_error_detail() : "");
	return iova.addr;
}

static inline void a8_unmap(struct iovm_domain *dom, uint64_t iova, size_t len)
{
	int r = iovm_domain_unmap(dom, IOVM_IOVA(iova), len);

	CHECK_MSG(r == 0, "iovm_domain_unmap(%#llx, %zu): %d (%s)", (unsigned long long)iova, len, r,
		  strerror(-r));
}

/* Whether @iova translates in @dom, and to which PA. */
static inline int a8_xlate(struct iovm_domain *dom, uint64_t iova, iovm_pa_t *pa)
{
	uint32_t perm;
	iovm_pa_t p = IOVM_PA(0);
	int r = iovm_domain_translate(dom, IOVM_IOVA(iova), &p, &perm);

	if (pa)
		*pa = p;
	return r;
}

/* Whether [a, a+alen) and [b, b+blen) overlap. */
static inline bool a8_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/* Open a shared domain by name in @ctx; the view. */
static inline struct iovm_domain *a8_open(struct iovm_ctx *ctx, const char *name)
{
	struct iovm_domain *dom = NULL;
	int r = iovm_share_domain_open(ctx, name, &dom);

	CHECK_MSG(r == 0, "iovm_share_domain_open(%s): %d (%s): %s", name, r, strerror(-r),
		  iovm_error_detail() ? iovm_error_detail() : "");
	return dom;
}

static inline struct iovm_domain *a8_create(struct iovm_ctx *ctx, const char *name,
					    const struct iovm_share_domain_params *p)
{
	struct iovm_domain *dom = NULL;
	int r = iovm_share_domain_create(ctx, name, p, &dom);

	CHECK_MSG(r == 0, "iovm_share_domain_create(%s): %d (%s): %s", name, r, strerror(-r),
		  iovm_error_detail() ? iovm_error_detail() : "");
	return dom;
}

#endif /* IOVM_TESTS_ATTACK8_SDOM_H */
