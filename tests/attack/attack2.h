/* SPDX-License-Identifier: MIT */
/*
 * attack2.h - what the second adversarial round (test_attack2_*.c) shares:
 * keyed copies through a rig, anonymous mappings, the reg counters and the
 * kernel's VmLck. Written from the public headers alone.
 */
#ifndef IOVM_TESTS_ATTACK2_H
#define IOVM_TESTS_ATTACK2_H

#include "attack.h"

#define PG 4096u

static inline void *anon(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(p != MAP_FAILED);
	return p;
}

/* A keyed COPY src -> dst of @len bytes: the completion record. */
static inline struct iovm_completion kcopy(struct rig *r, void *dst, uint32_t dkey,
					   const void *src, uint32_t skey, uint32_t len)
{
	struct iovm_desc d = { .op = IOVM_OP_COPY, .flags = IOVM_DESC_KEYED,
			       .src = (uint64_t)(uintptr_t)src, .dst = (uint64_t)(uintptr_t)dst,
			       .len = len, .src_key = skey, .dst_key = dkey, .tag = 7 };

	return run_desc(r, d);
}

static inline struct iovm_reg_stats reg_stats(struct iovm_ctx *ctx)
{
	struct iovm_reg_stats st;

	CHECK_OK(iovm_reg_stats(ctx, &st));
	return st;
}

static inline struct iovm_mr_info mr_info(const struct iovm_mr *mr)
{
	struct iovm_mr_info in;

	CHECK_OK(iovm_mr_query(mr, &in));
	return in;
}

/* The kernel's count of this process's locked memory, in bytes (VmLck). */
static inline long long vm_locked(void)
{
	char line[256];
	long long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmLck: %lld kB", &kb) == 1)
			break;
	fclose(f);
	return kb < 0 ? -1 : kb * 1024;
}

/* A context and rig with the oracle on; skips the test when the monitor cannot run. */
static inline void rig2_open(struct rig *r)
{
	rig_open(r, "oracle=on,log_level=error", NULL, IOVM_QUEUE_POLLED);
}

/* The memory monitor runs (after a first registration). */
static inline bool monitor_runs(struct iovm_ctx *ctx)
{
	return reg_stats(ctx).monitor;
}

#endif /* IOVM_TESTS_ATTACK2_H */
