/* SPDX-License-Identifier: MIT */
/*
 * test_attack8_sdom_kinds.c - "Memory mapped is kept while mapped" for
 * every kind of memory and mapping, in one process: two domains mapping
 * one block, a 2 MiB leaf split by partial unmaps, zones, IOVM_DMA_KEEP,
 * the end of the last view freeing what it held, and a heap too small
 * for what is asked while memory is held.
 */
#include "attack/attack8_sdom.h"

#define HEAP (UINT64_C(16) << 20)

static struct iovm_ctx *ctx;
static uint64_t base_free, base_blocks;

/* Nothing held, the heap back where the test began, and sound. */
#define settled(when) a8_settled(ctx, base_free, base_blocks, (when))

/* Mapped in two domains: held until both mappings go, the last with the last view. */
TEST(two_domains_one_block)
{
	struct iovm_domain *d1 = a8_create(ctx, "two-1", NULL), *d2 = a8_create(ctx, "two-2", NULL);
	uint8_t *b = a8_alloc(ctx, 8 * A8_K4, A8_K4, 0);
	iovm_pa_t pa = a8_pa(ctx, b);
	uint64_t i1 = a8_map(d1, pa, 8 * A8_K4, IOVM_ADDR_INVALID);
	uint64_t i2 = a8_map(d2, IOVM_PA(pa.addr + 7 * A8_K4), A8_K4, A8_WIN + (UINT64_C(512) << 20));
	uint64_t f0 = a8_free(ctx);

	CHECK_OK(iovm_dma_free(ctx, b));
	uint64_t held = a8_held(ctx);

	EXPECT(held >= 8 * A8_K4);
	a8_unmap(d1, i1, 8 * A8_K4);
	EXPECT_MSG(a8_held(ctx) == held, "unmapped in one domain, mapped in the other: domain_held %llu, was %llu",
		   (unsigned long long)a8_held(ctx), (unsigned long long)held);
	EXPECT_EQ(a8_free(ctx), f0);
	/* Still given to nobody. */
	void *v = a8_alloc(ctx, 8 * A8_K4, A8_K4, 0);

	EXPECT(!a8_overlap(a8_pa(ctx, v).addr, 8 * A8_K4, pa.addr, 8 * A8_K4));
	CHECK_OK(iovm_dma_free(ctx, v));
	(void)i2;
	/* The last view of d2 goes with its mapping in place: that frees it. */
	CHECK_OK(iovm_domain_destroy(d2));
	EXPECT_EQ(a8_held(ctx), 0);
	/* The held block, and the domain's own block, are free now. */
	EXPECT(a8_free(ctx) > f0 + held);
	struct iovm_domain *x = NULL;

	EXPECT_EQ(iovm_share_domain_open(ctx, "two-2", &x), -ENOENT);
	CHECK_OK(iovm_domain_destroy(d1));
	EXPECT_EQ(iovm_share_domain_open(ctx, "two-1", &x), -ENOENT);
	settled("two domains");
}

/* A 2 MiB block on a 2 MiB leaf, unmapped a page at a time out of order. */
TEST(huge_mapping_split)
{
	struct iovm_domain *d = a8_create(ctx, "huge", NULL);
	struct devq dq = devq_open(ctx, d);
	uint8_t *b = a8_alloc(ctx, A8_M2, A8_M2, 0);
	iovm_pa_t pa = a8_pa(ctx, b);
	uint64_t at = A8_WIN + 7 * A8_M2;
	struct iovm_domain_stats st;
	uint64_t f0;

	/* The dq's rings are allocated: the baseline is after them. */
	f0 = a8_free(ctx);
	CHECK_EQ(a8_map(d, pa, A8_M2, at), at);
	CHECK_OK(iovm_domain_stats(d, &st));
	if ((pa.addr & (A8_M2 - 1)) == 0)
		EXPECT_EQ(st.leaves_2m, 1);
	CHECK_OK(iovm_dma_free(ctx, b));
	uint64_t held = a8_held(ctx);

	EXPECT(held >= A8_M2);
	EXPECT_EQ(a8_free(ctx), f0);
	/* Unmap 511 of its 512 pages, the first, the last, then the rest. */
	a8_unmap(d, at, A8_K4);
	a8_unmap(d, at + A8_M2 - A8_K4, A8_K4);
	a8_unmap(d, at + A8_K4, 300 * A8_K4);
	a8_unmap(d, at + 302 * A8_K4, A8_M2 - 303 * A8_K4);
	EXPECT_MSG(a8_held(ctx) == held, "one page of 512 still mapped: domain_held %llu, was %llu",
		   (unsigned long long)a8_held(ctx), (unsigned long long)held);
	EXPECT_EQ(a8_free(ctx), f0);
	/* The page left is written by the device, into the held block. */
	CHECK_EQ(devq_fill(&dq, at + 301 * A8_K4, A8_K4, 0x29), IOVM_STATUS_SUCCESS);
	EXPECT(all_bytes(b + 301 * A8_K4, A8_K4, 0x29));
	/* Nothing allocated meanwhile lands in it. */
	void *v = a8_alloc(ctx, A8_M2, A8_K4, 0);

	EXPECT(!a8_overlap(a8_pa(ctx, v).addr, A8_M2, pa.addr, A8_M2));
	CHECK_OK(iovm_dma_free(ctx, v));
	a8_unmap(d, at + 301 * A8_K4, A8_K4);
	EXPECT_EQ(a8_held(ctx), 0);
	EXPECT_EQ(a8_free(ctx), f0 + held);
	EXPECT_EQ(a8_xlate(d, at + 301 * A8_K4, NULL), -ENOENT);
	devq_close(&dq);
	CHECK_OK(iovm_domain_destroy(d));
	settled("huge");
}

/* A zone mapped then freed: held, its name free again, its memory not. */
TEST(zone_freed_while_mapped)
{
	struct iovm_domain *d = a8_create(ctx, "zone", NULL);
	const struct iovm_zone *z = NULL, *z2 = NULL;

	CHECK_EQ(iovm_zone_reserve(ctx, "a8-ring", 3 * A8_K4, A8_K4, 0, &z), 0);
	iovm_pa_t zpa = z->pa;
	uint64_t iova = a8_map(d, zpa, 3 * A8_K4, IOVM_ADDR_INVALID);
	uint64_t f0 = a8_free(ctx);

	CHECK_OK(iovm_zone_free(ctx, z));
	EXPECT(a8_held(ctx) >= 3 * A8_K4);
	EXPECT_EQ(a8_free(ctx), f0);
	EXPECT_EQ(iovm_zone_lookup(ctx, "a8-ring", &z2), -ENOENT);
	EXPECT_EQ(share_info(ctx).zones, 0);
	EXPECT_SOUND(ctx);
	/* The name again: a new zone, elsewhere. */
	CHECK_EQ(iovm_zone_reserve(ctx, "a8-ring", 3 * A8_K4, A8_K4, 0, &z2), 0);
	EXPECT(!a8_overlap(z2->pa.addr, 3 * A8_K4, zpa.addr, 3 * A8_K4));
	EXPECT(all_bytes(z2->va, 3 * A8_K4, 0));
	CHECK_OK(iovm_zone_free(ctx, z2));
	a8_unmap(d, iova, 3 * A8_K4);
	EXPECT_EQ(a8_held(ctx), 0);
	CHECK_OK(iovm_domain_destroy(d));
	settled("zone");
}

/* IOVM_DMA_KEEP memory, the share's, freed while mapped. */
TEST(keep_memory_held)
{
	struct iovm_domain *d = a8_create(ctx, "keep", NULL);
	void *k = a8_alloc(ctx, 2 * A8_K4, A8_K4, IOVM_DMA_KEEP);
	void *s = a8_alloc(ctx, 200, 0, IOVM_DMA_KEEP);
	uint64_t ik = a8_map(d, a8_pa(ctx, k), 2 * A8_K4, IOVM_ADDR_INVALID);
	uint64_t is = a8_map(d, IOVM_PA(a8_pa(ctx, s).addr & ~(A8_K4 - 1)), A8_K4, IOVM_ADDR_INVALID);
	uint64_t f0 = a8_free(ctx);

	CHECK_OK(iovm_dma_free(ctx, k));
	CHECK_OK(iovm_dma_free(ctx, s));
	EXPECT(a8_held(ctx) >= 2 * A8_K4 + 200);
	EXPECT_EQ(a8_free(ctx), f0);
	EXPECT_EQ(iovm_dma_free(ctx, k), -EINVAL);
	EXPECT_EQ(iovm_dma_free(ctx, s), -EINVAL);
	void *again = a8_alloc(ctx, 200, 0, IOVM_DMA_KEEP);

	EXPECT(again != s);
	CHECK_OK(iovm_dma_free(ctx, again));
	a8_unmap(d, ik, 2 * A8_K4);
	a8_unmap(d, is, A8_K4);
	CHECK_OK(iovm_domain_destroy(d));
	settled("keep");
}

/*
 * The whole heap held by a domain: allocations fail with ENOMEM (they must
 * not take the held memory), the accounting exact; once unmapped it all
 * comes back.
 */
TEST(exhaustion_while_held)
{
	struct iovm_domain *d = a8_create(ctx, "exh", NULL);
	uint64_t f0 = a8_free(ctx), iova[64];
	const size_t big = (size_t)1 << 20;
	void *b[64], *small[4096];
	unsigned n = 0, ns = 0;

	for (; n < 64; n++) {
		b[n] = iovm_dma_alloc(ctx, big, A8_K4, 0);
		if (!b[n])
			break;
		memset(b[n], 0x44, big);
	}
	CHECK(n >= 4);
	for (unsigned i = 0; i < n; i++) {
		iova[i] = a8_map(d, IOVM_PA(a8_pa(ctx, b[i]).addr + big / 2), A8_K4, IOVM_ADDR_INVALID);
		CHECK_OK(iovm_dma_free(ctx, b[i]));
	}
	uint64_t held = a8_held(ctx);

	EXPECT(held >= n * big);
	EXPECT_EQ(a8_free(ctx) + held, f0);
	errno = 0;
	void *x = iovm_dma_alloc(ctx, big, A8_K4, 0);

	EXPECT_MSG(x == NULL, "a %zu-byte allocation succeeded with the heap held (%llu free)", big,
		   (unsigned long long)a8_free(ctx));
	if (x)
		CHECK_OK(iovm_dma_free(ctx, x));
	else
		EXPECT_EQ(errno, ENOMEM);
	/* Whatever small memory is left: none of it held memory. */
	for (; ns < 4096; ns++) {
		small[ns] = iovm_dma_alloc(ctx, A8_K4, A8_K4, 0);
		if (!small[ns])
			break;
		for (unsigned i = 0; i < n; i++)
			EXPECT(!a8_overlap(a8_pa(ctx, small[ns]).addr, A8_K4, a8_pa(ctx, b[i]).addr, big));
	}
	for (unsigned i = 0; i < n; i++)
		EXPECT(all_bytes(b[i], big, 0x44));
	for (unsigned i = 0; i < ns; i++)
		CHECK_OK(iovm_dma_free(ctx, small[i]));
	/* iovm_share_reap() has nothing to give back either. */
	EXPECT_EQ(iovm_share_reap(ctx), 0);
	EXPECT_EQ(a8_held(ctx), held);
	for (unsigned i = 0; i < n; i++)
		a8_unmap(d, iova[i], A8_K4);
	EXPECT_EQ(a8_held(ctx), 0);
	EXPECT_EQ(a8_free(ctx), f0);
	for (unsigned i = 0; i < n; i++) {
		b[i] = iovm_dma_alloc(ctx, big, A8_K4, 0);
		EXPECT_MSG(b[i] != NULL, "allocation %u of %u after the unmaps: %s", i, n, strerror(errno));
	}
	for (unsigned i = 0; i < n; i++)
		if (b[i])
			CHECK_OK(iovm_dma_free(ctx, b[i]));
	CHECK_OK(iovm_domain_destroy(d));
	settled("exhaustion");
}

/* The only view destroyed with a held block mapped: the block is freed, the name gone. */
TEST(last_view_frees_held)
{
	struct iovm_domain *d = a8_create(ctx, "last", NULL), *x = NULL;
	void *v[6];
	uint64_t f0 = a8_free(ctx);

	for (unsigned i = 0; i < 6; i++) {
		v[i] = a8_alloc(ctx, (size_t)64 << i, 0, 0);
		a8_map(d, IOVM_PA(a8_pa(ctx, v[i]).addr & ~(A8_K4 - 1)), A8_K4, IOVM_ADDR_INVALID);
	}
	for (unsigned i = 0; i < 6; i++)
		CHECK_OK(iovm_dma_free(ctx, v[i]));
	EXPECT(a8_held(ctx) > 0);
	CHECK_OK(iovm_domain_destroy(d));
	EXPECT_EQ(a8_held(ctx), 0);
	EXPECT_EQ(iovm_share_domain_open(ctx, "last", &x), -ENOENT);
	EXPECT(a8_free(ctx) >= f0);
	settled("last view");
}

int main(void)
{
	a8_init();
	ctx = share_ok(share_name("a8kinds"), HEAP);
	base_free = a8_free(ctx);
	base_blocks = share_info(ctx).blocks;

	RUN(two_domains_one_block);
	RUN(huge_mapping_split);
	RUN(zone_freed_while_mapped);
	RUN(keep_memory_held);
	RUN(exhaustion_while_held);
	RUN(last_view_frees_held);

	iovm_close(ctx);
	return a8_status();
}
