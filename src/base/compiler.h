/* SPDX-License-Identifier: MIT */
/*
 * compiler.h - the small macros every file of iovm uses: branch hints,
 * cleanup attributes, alignment arithmetic, bit tricks.
 */
#ifndef IOVM_BASE_COMPILER_H
#define IOVM_BASE_COMPILER_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#define __unused __attribute__((unused))
#define __cleanup(fn) __attribute__((cleanup(fn)))
#define __printf(a, b) __attribute__((format(printf, a, b)))
#define __noinline __attribute__((noinline))
/*
 * Not checked by AddressSanitizer: for code that touches whole pages of
 * memory the application registered, where the bytes around its buffer
 * (a malloc() block's neighbours, an ASan redzone) are the page's too.
 */
#define __no_sanitize_address __attribute__((no_sanitize_address))
/* Inlined whatever the compiler's estimate: hot paths whose calls would cost more than their bodies. */
#define __inline_always inline __attribute__((always_inline))
/* Thread-locals of the fast paths: a %fs-relative load, not a call to __tls_get_addr. */
#define __tls_ie __attribute__((tls_model("initial-exec")))

/* x86 and arm64 server parts both have 64-byte lines. */
#define CACHE_LINE_SIZE 64
#define __cacheline_aligned __attribute__((aligned(CACHE_LINE_SIZE)))

#define SZ_4K (UINT64_C(1) << 12)
#define SZ_64K (UINT64_C(1) << 16)
#define SZ_2M (UINT64_C(1) << 21)
#define SZ_1G (UINT64_C(1) << 30)

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/*
 * Fetch the line of @p for writing: where the next access is a load
 * followed by a store, one transfer of the line instead of two (a shared
 * copy for the load, then the others invalidated for the store). x86's
 * PREFETCHW, a no-op on the few x86-64 parts without it.
 */
static inline void prefetch_for_write(const volatile void *p)
{
#if defined(__x86_64__)
	__asm__ volatile("prefetchw %0" : : "m"(*(const volatile char *)p));
#else
	__builtin_prefetch((const void *)p, 1, 3);
#endif
}

static inline bool is_pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

/* Both alignment helpers require a power-of-two @a. */
static inline uint64_t align_down(uint64_t x, uint64_t a)
{
	return x & ~(a - 1);
}

static inline uint64_t align_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) & ~(a - 1);
}

static inline bool is_aligned(uint64_t x, uint64_t a)
{
	return !(x & (a - 1));
}

/* floor(log2(x)); @x must be non-zero. */
static inline unsigned ilog2(uint64_t x)
{
	return 63u - (unsigned)__builtin_clzll(x);
}

/* ceil(log2(x)); @x must be non-zero. */
static inline unsigned ilog2_up(uint64_t x)
{
	return x == 1 ? 0 : ilog2(x - 1) + 1;
}

static inline uint64_t roundup_pow2(uint64_t x)
{
	return x <= 1 ? 1 : UINT64_C(1) << ilog2_up(x);
}

/* Lowest set bit: the largest power of two dividing @x. */
static inline uint64_t lowbit(uint64_t x)
{
	return x & -x;
}

/* Frees what a cleanup-attributed pointer still owns when it goes out of scope. */
static inline void freep(void *p)
{
	free(*(void **)p);
}

static inline void closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}

#define __autofree __cleanup(freep)
#define __autoclose __cleanup(closep)

/* Hand ownership out of a cleanup-attributed variable. */
#define steal_ptr(p)                    \
	({                              \
		__typeof__(p) __p = (p); \
		(p) = NULL;             \
		__p;                    \
	})

#define steal_fd(fd)              \
	({                        \
		int __fd = (fd);  \
		(fd) = -1;        \
		__fd;             \
	})

#endif /* IOVM_BASE_COMPILER_H */
