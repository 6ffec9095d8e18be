/* SPDX-License-Identifier: MIT */
/*
 * test_peer_util.h - what the scenario tests re-expressed from peers'
 * suites (UCX, libfabric) and the attacks on reg.h's promises share: a
 * context with the oracle and the software engine, DMA through an MR by
 * IOVA or by key into a scratch buffer, and the two verdicts every
 * scenario ends with: an MR reaches exactly the memory there now, or it
 * reaches nothing.
 */
#ifndef IOVM_TESTS_TEST_PEER_UTIL_H
#define IOVM_TESTS_TEST_PEER_UTIL_H

#include <sys/resource.h>
#include <sys/wait.h>

#include "reg/reg_util.h"

#define SCRATCH_LEN (64u << 10)

/* Only a build without a sanitizer has glibc's heap and its mmapped blocks. */
#define TEST_GLIBC_MALLOC (!TEST_ASAN && !TEST_TSAN)

struct env {
	struct rig r;
	uint8_t *scratch; /* DMA memory the engine reads into and writes from */
	uint64_t scratch_iova;
};

static inline void env_open(struct env *e)
{
	rig_open(&e->r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	e->scratch = iovm_dma_zalloc(e->r.ctx, SCRATCH_LEN, 4096, 0);
	CHECK(e->scratch != NULL);
	e->scratch_iova = iova_of(&e->r, e->scratch);
}

static inline void env_close(struct env *e)
{
	iovm_dma_free(e->r.ctx, e->scratch);
	rig_close(&e->r);
}

/* Copy @n bytes at @src (an IOVA, or with @key a virtual address) into the scratch buffer. */
static inline struct iovm_completion env_read(struct env *e, uint64_t src, uint32_t key, uint32_t n)
{
	CHECK(n <= SCRATCH_LEN);
	memset(e->scratch, 0xee, n);
	return run_desc(&e->r, (struct iovm_desc){ .op = IOVM_OP_COPY, .flags = key ? IOVM_DESC_KEYED : 0,
						   .src = src, .dst = e->scratch_iova, .len = n, .src_key = key });
}

/* Write @n bytes of @byte at @dst (an IOVA, or with @key a virtual address). */
static inline struct iovm_completion env_write(struct env *e, uint64_t dst, uint32_t key, uint32_t n, uint8_t byte)
{
	CHECK(n <= SCRATCH_LEN);
	memset(e->scratch, byte, n);
	return run_desc(&e->r, (struct iovm_desc){ .op = IOVM_OP_COPY, .flags = key ? IOVM_DESC_KEYED : 0,
						   .src = e->scratch_iova, .dst = dst, .len = n, .dst_key = key });
}

/*
 * @mr reaches [va, va+n) - by IOVA, by local key, by remote key when it has
 * the right - and what it reads is the memory there now, byte for byte.
 */
static inline void mr_reaches(struct env *e, struct iovm_mr *mr, const void *va, uint32_t n)
{
	struct iovm_mr_info in = mr_info(mr);
	struct iovm_completion c;

	c = env_read(e, mr_iova(mr, va), 0, n);
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	CHECK(!memcmp(e->scratch, va, n));
	c = env_read(e, (uintptr_t)va, in.lkey, n);
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	CHECK(!memcmp(e->scratch, va, n));
	if (in.access & IOVM_ACCESS_REMOTE_READ) {
		c = env_read(e, (uintptr_t)va, in.rkey, n);
		CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
		CHECK(!memcmp(e->scratch, va, n));
	}
}

/*
 * Keys @info named, and the IOVA it had, reach nothing of [va, va+n) any
 * more: every read and write fails, and the memory there now is untouched.
 * @va must be mapped and readable (the memory that replaced the old).
 */
static inline void keys_reach_nothing(struct env *e, const struct iovm_mr_info *info, const void *va, uint32_t n)
{
	uint8_t *copy = malloc(n);
	uint64_t iova = info->iova.addr + ((uintptr_t)va - (uintptr_t)info->addr);

	CHECK(copy != NULL);
	memcpy(copy, va, n);
	CHECK(env_read(e, (uintptr_t)va, info->lkey, n).status != IOVM_STATUS_SUCCESS);
	CHECK(env_read(e, (uintptr_t)va, info->rkey, n).status != IOVM_STATUS_SUCCESS);
	CHECK(env_read(e, iova, 0, n).status != IOVM_STATUS_SUCCESS);
	CHECK(env_write(e, (uintptr_t)va, info->lkey, n, 0xa5).status != IOVM_STATUS_SUCCESS);
	CHECK(env_write(e, (uintptr_t)va, info->rkey, n, 0xa5).status != IOVM_STATUS_SUCCESS);
	CHECK(env_write(e, iova, 0, n, 0xa5).status != IOVM_STATUS_SUCCESS);
	CHECK_MSG(!memcmp(copy, va, n), "a stale key or IOVA wrote into the memory that replaced its own");
	free(copy);
}

/*
 * Memory far below where the kernel places mappings (where the sanitizer
 * allows the address): once unmapped, its hole is not taken by anyone
 * else's mmap(), so that the test can map new memory at the same address.
 */
static inline uint8_t *far_map(size_t len)
{
	/* ThreadSanitizer takes hints inside its application ranges only. */
	static uintptr_t next = TEST_TSAN ? 0x7e8000000000ull : 0x3c0000000000ull;
	uint8_t *p = mmap((void *)next, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(p != MAP_FAILED);
	next += (len + (1u << 30)) & ~(uintptr_t)((1u << 30) - 1);
	return p;
}

/* New memory at @p, where memory was unmapped: false if someone else took the address. */
static inline bool remap_same(uint8_t *p, size_t len)
{
	return mmap(p, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) == p;
}

static inline struct iovm_rcache_stats cstats(struct iovm_rcache *c)
{
	struct iovm_rcache_stats st;

	CHECK_OK(iovm_rcache_stats(c, &st));
	return st;
}

/* get + put: the MR's lkey, which tells whether the next get found the same registration. */
static inline uint32_t get_put(struct iovm_rcache *c, void *p, size_t n, uint32_t access)
{
	struct iovm_mr *mr;
	uint32_t lkey;

	CHECK_OK(iovm_rcache_get(c, p, n, access, &mr));
	lkey = mr_info(mr).lkey;
	CHECK_OK(iovm_rcache_put(c, mr));
	return lkey;
}

/*
 * ThreadSanitizer's fork() holds its runtime's locks while the kernel
 * waits for the memory monitor's thread to read the fork event, and that
 * thread waits for the locks: the process hangs in fork(). Tests that fork
 * say so and skip there.
 */
#define SKIP_FORK_UNDER_TSAN()                                                                 \
	do {                                                                                   \
		if (TEST_TSAN)                                                                 \
			SKIP_CASE("ThreadSanitizer's fork() deadlocks with the monitor's fork event"); \
	} while (0)

/* Run @fn in a child process; its exit status (or 128 + the signal that killed it). */
static inline int in_child(void (*fn)(void *), void *arg)
{
	int status;
	pid_t pid = fork();

	CHECK(pid >= 0);
	if (pid == 0) {
		fn(arg);
		_exit(0);
	}
	CHECK(waitpid(pid, &status, 0) == pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Run test @name, or only the one named on the command line. */
#define RUN_ONLY(only, name)                       \
	do {                                       \
		if (!(only) || !strcmp((only), #name)) \
			RUN(name);                 \
	} while (0)

/*
 * Whether glibc gave the block at @p a mapping of its own (its chunk
 * header's IS_MMAPPED bit): its free() then munmaps it.
 */
static inline bool glibc_mmapped(const void *p)
{
	size_t head;

	memcpy(&head, (const void *)((uintptr_t)p - sizeof(size_t)), sizeof(head));
	return head & 2;
}

/* An address kept past free() or realloc(): compared, never dereferenced by the C code. */
static inline uint8_t *addr_of(const void *p, size_t off)
{
	volatile uintptr_t a = (uintptr_t)p + off; /* the compiler need not follow it */

	return (uint8_t *)a;
}

/*
 * Whether -ENOMEM from a pinned registration may be RLIMIT_MEMLOCK's: a
 * finite limit, unprivileged (root locks past it). An unprivileged run
 * has 8 MiB: a malloc'ed block of 8 MiB spans 2049 pages.
 */
static inline bool memlock_limited(void)
{
	struct rlimit rl;

	return !getrlimit(RLIMIT_MEMLOCK, &rl) && rl.rlim_cur != RLIM_INFINITY && geteuid() != 0;
}

#define RW (IOVM_ACCESS_LOCAL_READ | IOVM_ACCESS_LOCAL_WRITE)
#define ALL_RIGHTS (RW | IOVM_ACCESS_REMOTE_READ | IOVM_ACCESS_REMOTE_WRITE)

#endif /* IOVM_TESTS_TEST_PEER_UTIL_H */
