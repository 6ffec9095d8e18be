/* SPDX-License-Identifier: MIT */
/*
 * attack20.h - what the twentieth adversarial round (test_attack20_*.c)
 * shares: the physical addresses of memory registrations (iovm/reg.h)
 * and of memory registered with iovm_mem_register() (iovm/memmap.h),
 * handed to the public map calls (iovm/iommu.h) and to the other calls
 * that take a PA. Written from the public headers alone.
 *
 * Tests that found a broken promise run only with IOVM_ATTACK20_KNOWN=1
 * (a20_known()); otherwise they print a skip line naming the bug.
 */
#ifndef IOVM_TESTS_ATTACK20_H
#define IOVM_TESTS_ATTACK20_H

#include <pthread.h>
#include <sys/mman.h>

#include "attack.h"
#include "reg/reg_util.h"

#define A20_OPTS "page_size=4K,host_pa=off"
#define A20_RW (IOVM_MAP_READ | IOVM_MAP_WRITE)

/* Whether known bugs are to fail (IOVM_ATTACK20_KNOWN=1); when not, say so and go on. */
static inline bool a20_known(const char *bug)
{
	const char *k = getenv("IOVM_ATTACK20_KNOWN");

	if (k && !strcmp(k, "1"))
		return true;
	printf("# skip %s: known bug (IOVM_ATTACK20_KNOWN=1 runs it): %s\n", test_current, bug);
	return false;
}

static inline uint8_t a20_pat(uint64_t seed, size_t i)
{
	uint64_t x = (seed + i) * UINT64_C(0x9E3779B97F4A7C15);

	return (uint8_t)((x >> 29) | 1); /* never 0 */
}

static inline void a20_fill(uint8_t *p, size_t len, uint64_t seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = a20_pat(seed, i);
}

static inline bool a20_same(const uint8_t *p, size_t len, uint64_t seed)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != a20_pat(seed, i))
			return false;
	return true;
}

/* 2 MiB-aligned anonymous memory of @len bytes (the mapping around it is leaked on purpose: test memory). */
static inline uint8_t *a20_map_aligned(size_t len)
{
	uint8_t *p = mmap(NULL, len + (2u << 20), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(p != MAP_FAILED);
	return (uint8_t *)(((uintptr_t)p + (2u << 20) - 1) & ~(uintptr_t)((2u << 20) - 1));
}

static inline uint64_t a20_leaves(struct iovm_domain *dom)
{
	struct iovm_domain_stats st;

	CHECK_OK(iovm_domain_stats(dom, &st));
	return st.leaves_4k + st.leaves_2m + st.leaves_1g;
}

/* The PA a domain maps @iova to (it must map it). */
static inline uint64_t a20_xlate(struct iovm_domain *dom, uint64_t iova)
{
	iovm_pa_t pa;
	uint32_t perm = 0;
	int ret = iovm_domain_translate(dom, IOVM_IOVA(iova), &pa, &perm);

	CHECK_MSG(ret == 0, "iovm_domain_translate(%#llx): %d (%s)", (unsigned long long)iova, ret,
		  iovm_error_detail());
	return pa.addr;
}

/*
 * Run @d on @r's queue with its completion record at @comp (an address of
 * the domain @d's PASID names: the record's PA in an identity domain).
 */
static inline struct iovm_completion a20_run_at(struct rig *r, struct iovm_desc d, uint64_t comp)
{
	struct iovm_cqe cqe;
	int n = 0;

	memset(r->comp, 0, sizeof(*r->comp));
	d.flags |= IOVM_DESC_COMPLETION;
	d.completion = comp;
	CHECK_OK(iovm_queue_submit(r->q, &d));
	for (unsigned spins = 0; n == 0; spins++) {
		CHECK(iovm_queue_process(r->q, 1) >= 0);
		n = iovm_queue_reap(r->q, &cqe, 1);
		CHECK(n >= 0);
		CHECK(spins < 100000000u);
	}
	CHECK_EQ(cqe.status, __atomic_load_n(&r->comp->status, __ATOMIC_ACQUIRE));
	return *r->comp;
}

#endif /* IOVM_TESTS_ATTACK20_H */
