/* SPDX-License-Identifier: MIT */
/*
 * reg_util.h - what the registration tests share: the application's own
 * memory to register, DMA through the engine by IOVA, and whether a page
 * is locked.
 */
#ifndef IOVM_TESTS_REG_UTIL_H
#define IOVM_TESTS_REG_UTIL_H

#include <stdio.h>
#include <sys/mman.h>

#include "dev/dev_util.h"

#define PG 4096u

/* RUN(@name), unless IOVM_TEST names another test: one test alone, to see it fail or pass. */
#define RUN_SELECTED(name)                                              \
	do {                                                            \
		const char *_only = getenv("IOVM_TEST");                \
		if (!_only || !strcmp(_only, #name))                    \
			RUN(name);                                      \
	} while (0)
#define REG_OPTS "page_size=4K,host_pa=off,oracle=on"

/* A sanitizer that replaces malloc: its free() neither unmaps nor trims, and it never uses the brk heap. */
#define TEST_OWN_MALLOC (TEST_ASAN || TEST_TSAN)

static inline uint8_t *app_map(size_t len)
{
	uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(p != MAP_FAILED);
	return p;
}

static inline void app_unmap(void *p, size_t len)
{
	munmap(p, len);
}

static inline void fill_random(uint8_t *p, size_t n, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15u + 1;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)x;
	}
}

/* A copy through the engine; its completion status. */
static inline uint8_t dma_copy(struct rig *r, uint64_t src, uint64_t dst, uint32_t len)
{
	return run_desc(r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = src, .dst = dst, .len = len }).status;
}

/* What @mr is now. */
static inline struct iovm_mr_info mr_info(struct iovm_mr *mr)
{
	struct iovm_mr_info info;

	CHECK_OK(iovm_mr_query(mr, &info));
	return info;
}

static inline struct iovm_reg_stats rstats(struct rig *r)
{
	struct iovm_reg_stats st;

	CHECK_OK(iovm_reg_stats(r->ctx, &st));
	return st;
}

static inline uint64_t mr_iova(struct iovm_mr *mr, const void *p)
{
	iovm_iova_t iova;

	CHECK_OK(iovm_mr_iova(mr, p, 1, &iova));
	return iova.addr;
}

/* Whether the page at @p is locked, from /proc/self/smaps' VmFlags ("lo"). */
static inline bool page_locked(const void *p)
{
	char line[256];
	bool in = false, locked = false;
	FILE *f = fopen("/proc/self/smaps", "re");

	CHECK(f != NULL);
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long s, e;

		/* A VMA's first line; its fields' names never parse as two hex numbers. */
		if (sscanf(line, "%lx-%lx ", &s, &e) == 2) {
			in = (uintptr_t)p >= s && (uintptr_t)p < e;
			continue;
		}
		if (in && !strncmp(line, "VmFlags:", 8)) {
			locked = strstr(line, " lo") != NULL;
			break;
		}
	}
	if (f)
		fclose(f);
	return locked;
}

#endif /* IOVM_TESTS_REG_UTIL_H */
