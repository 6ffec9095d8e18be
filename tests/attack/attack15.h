/* SPDX-License-Identifier: MIT */
/*
 * attack15.h - what the fifteenth adversarial round (test_attack15_*.c)
 * shares: iovm_mr_keys() and implicit registrations on verbs devices
 * (iovm/reg.h "Implicit", iovm/dev.h "verbs:") against the stand-in
 * libibverbs (tests/dev/fake_ibverbs.c): fake0 without ODP, fake1 with
 * implicit ODP, fake2 with ODP but no implicit ODP (as rxe), whose
 * implicit MRs are registered on the device child by child.
 *
 * Tests that found a broken promise run only with IOVM_ATTACK15_KNOWN=1
 * (A15_KNOWN()); otherwise they print a skip line naming the bug.
 */
#ifndef IOVM_TESTS_ATTACK15_H
#define IOVM_TESTS_ATTACK15_H

#include <stdint.h>

#include "attack/attack13.h"

/* A child of an implicit MR: 64 MiB of address space, aligned. */
#define A15_CHILD (UINT64_C(64) << 20)
/* Where the kernel's user space ends on x86-64 (TASK_SIZE): a page below 2^47. */
#define A15_TOP ((UINT64_C(1) << 47) - 4096)

#define A15_ODP (IOVM_ACCESS_ON_DEMAND | IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_REMOTE_READ | IOVM_ACCESS_REMOTE_WRITE)

#define A15_KNOWN(bug)                                                                   \
	do {                                                                             \
		const char *_k = getenv("IOVM_ATTACK15_KNOWN");                          \
		if (!_k || strcmp(_k, "1"))                                              \
			SKIP_CASE("known bug (IOVM_ATTACK15_KNOWN=1 runs it): %s", bug); \
	} while (0)

#define A15_RUN(name)                                  \
	do {                                           \
		const char *_o = getenv("A15_ONLY");   \
		if (!_o || !strcmp(_o, #name))         \
			RUN(name);                     \
	} while (0)

/* An implicit MR of @dom, or a skip of the whole program without a memory monitor. */
static inline struct iovm_mr *a15_implicit(struct iovm_domain *dom)
{
	struct iovm_mr *mr;
	int ret = iovm_mr_reg(dom, NULL, SIZE_MAX, A15_ODP, &mr);

	if (ret == -EOPNOTSUPP)
		SKIP("no memory monitor (userfaultfd): no implicit registration");
	CHECK_OK(ret);
	return mr;
}

static inline uint64_t a15_children(const struct iovm_mr *mr)
{
	struct iovm_mr_info info;

	CHECK_OK(iovm_mr_query(mr, &info));
	return info.children;
}

/*
 * The keys of [addr, addr+len) of an implicit MR on fake2: a child's,
 * registered on the device with exactly the child's range, on demand.
 */
static inline struct iovm_mr_keys a15_child_keys(struct iovm_mr *mr, uintptr_t addr, size_t len)
{
	struct iovm_mr_keys k;
	struct fake_ibv_mr fm;
	uintptr_t base = addr & ~(uintptr_t)(A15_CHILD - 1);

	CHECK_OK(iovm_mr_keys(mr, (void *)addr, len, &k));
	CHECK_EQ((uintptr_t)k.addr, base);
	CHECK_EQ(k.len, base + A15_CHILD > A15_TOP ? A15_TOP - base : A15_CHILD);
	CHECK_OK(fake_ibv_find(k.lkey, &fm));
	CHECK(fm.addr == k.addr && fm.len == k.len && fm.rkey == k.rkey);
	CHECK(fm.access & IBV_ACCESS_ON_DEMAND);
	return k;
}

#endif /* IOVM_TESTS_ATTACK15_H */
