/* SPDX-License-Identifier: MIT */
/*
 * test_attack8_sdom_held.c - "Memory mapped is kept while mapped"
 * (iovm/mp.h, Shared domains), in one process: a block freed while a
 * shared domain maps a page of it is counted in domain_held, given to no
 * allocation (the per-thread cache of small blocks included), written by
 * a device only where it is, freed twice -EINVAL, and freed when the last
 * mapping of its pages goes; heap_free, blocks and domain_held exact.
 */
#include "attack/attack8_sdom.h"

#define HEAP (UINT64_C(16) << 20)

static struct iovm_ctx *ctx;
static struct iovm_domain *dom;
static struct devq dq;

static uint64_t base_free, base_blocks;

/* Nothing held, the heap back where the test began, and sound. */
#define settled(when) a8_settled(ctx, base_free, base_blocks, (when))

/*
 * A page-sized block freed while mapped: held, never handed out again (the
 * whole heap is allocated around it), a device writes only into it.
 */
TEST(page_block_held_through_exhaustion)
{
	uint8_t *b = a8_alloc(ctx, A8_K4, A8_K4, 0);
	iovm_pa_t pa = a8_pa(ctx, b);
	uint64_t iova = a8_map(dom, pa, A8_K4, IOVM_ADDR_INVALID);
	struct iovm_share_info before = share_info(ctx), in;
	static void *got[8192];
	unsigned n = 0;

	CHECK_OK(iovm_dma_free(ctx, b));
	in = share_info(ctx);
	EXPECT_EQ(in.heap_free, before.heap_free);
	EXPECT(in.domain_held >= A8_K4);
	EXPECT_EQ(iovm_dma_free(ctx, b), -EINVAL);
	EXPECT_SOUND(ctx);

	/* Take every page the heap has left. */
	for (; n < 8192; n++) {
		got[n] = iovm_dma_zalloc(ctx, A8_K4, A8_K4, 0);
		if (!got[n])
			break;
		EXPECT_MSG(!a8_overlap(a8_pa(ctx, got[n]).addr, A8_K4, pa.addr, A8_K4),
			   "allocation %u got the held page (pa %#llx)", n, (unsigned long long)pa.addr);
	}
	EXPECT_EQ(errno, ENOMEM);
	EXPECT(n > 3000);
	EXPECT_SOUND(ctx);

	/* The device writes through the old mapping: into the held page only. */
	CHECK_EQ(devq_fill(&dq, iova, A8_K4, 0x5c), IOVM_STATUS_SUCCESS);
	EXPECT(all_bytes(b, A8_K4, 0x5c));
	for (unsigned i = 0; i < n; i++)
		EXPECT_MSG(all_bytes(got[i], A8_K4, 0), "allocation %u written by the device", i);
	for (unsigned i = 0; i < n; i++)
		CHECK_OK(iovm_dma_free(ctx, got[i]));
	EXPECT_EQ(share_info(ctx).heap_free, before.heap_free);

	a8_unmap(dom, iova, A8_K4);
	EXPECT_EQ(share_info(ctx).heap_free, in.heap_free + in.domain_held - before.domain_held);
	EXPECT_EQ(iovm_dma_free(ctx, b), -EINVAL);
	settled("after the unmap");
}

/*
 * Small blocks (64 B .. 4 KiB, a per-thread cache's): those of one page,
 * freed while the page is mapped, never come back from an allocation of
 * their size, in this thread or another; freed when the page is unmapped.
 */
static void *alloc_burst(void *arg)
{
	size_t sz = (size_t)(uintptr_t)arg;
	void **v = calloc(512, sizeof(*v));

	CHECK(v != NULL);
	for (unsigned i = 0; i < 512; i++)
		v[i] = a8_alloc(ctx, sz, 0, 0);
	return v;
}

TEST(small_blocks_not_recycled)
{
	static const size_t sizes[] = { 64, 100, 256, 1000, 2048, 4096 };

	for (unsigned s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		size_t sz = sizes[s];
		void *blk[512];
		uint64_t page = 0, held0, free0;
		unsigned best = 0, nheld = 0;
		uint64_t held_pa[512];

		for (unsigned i = 0; i < 512; i++)
			blk[i] = a8_alloc(ctx, sz, 0, 0);
		/* The page that holds most of them. */
		for (unsigned i = 0; i < 512; i++) {
			uint64_t p = a8_pa(ctx, blk[i]).addr & ~(A8_K4 - 1);
			unsigned c = 0;

			for (unsigned j = 0; j < 512; j++)
				c += (a8_pa(ctx, blk[j]).addr & ~(A8_K4 - 1)) == p;
			if (c > best)
				best = c, page = p;
		}
		uint64_t iova = a8_map(dom, IOVM_PA(page), A8_K4, IOVM_ADDR_INVALID);

		held0 = a8_held(ctx);
		free0 = a8_free(ctx);
		for (unsigned i = 0; i < 512; i++) {
			uint64_t p = a8_pa(ctx, blk[i]).addr;

			if ((p & ~(A8_K4 - 1)) != page && (p + sz - 1) / A8_K4 * A8_K4 != page)
				continue;
			held_pa[nheld++] = p;
			CHECK_OK(iovm_dma_free(ctx, blk[i]));
			EXPECT_MSG(iovm_dma_free(ctx, blk[i]) == -EINVAL, "size %zu: second free", sz);
			blk[i] = NULL;
		}
		CHECK(nheld > 0);
		EXPECT_MSG(a8_held(ctx) > held0, "size %zu: %u blocks freed, domain_held %llu", sz, nheld,
			   (unsigned long long)a8_held(ctx));
		EXPECT_MSG(a8_free(ctx) == free0, "size %zu: heap_free %llu -> %llu", sz,
			   (unsigned long long)free0, (unsigned long long)a8_free(ctx));

		/* This thread's cache, then another thread's. */
		void **mine = alloc_burst((void *)(uintptr_t)sz), **theirs;
		pthread_t t;

		CHECK(pthread_create(&t, NULL, alloc_burst, (void *)(uintptr_t)sz) == 0);
		CHECK(pthread_join(t, (void **)&theirs) == 0);
		for (unsigned i = 0; i < 1024; i++) {
			void *q = i < 512 ? mine[i] : theirs[i - 512];
			uint64_t qp = a8_pa(ctx, q).addr;

			for (unsigned h = 0; h < nheld; h++)
				EXPECT_MSG(!a8_overlap(qp, sz, held_pa[h], sz),
					   "size %zu: a new block at pa %#llx is a held one", sz,
					   (unsigned long long)qp);
		}
		for (unsigned i = 0; i < 512; i++) {
			CHECK_OK(iovm_dma_free(ctx, mine[i]));
			CHECK_OK(iovm_dma_free(ctx, theirs[i]));
		}
		free(mine);
		free(theirs);
		EXPECT_SOUND(ctx);
		a8_unmap(dom, iova, A8_K4);
		EXPECT_MSG(a8_held(ctx) == held0, "size %zu: domain_held %llu after the unmap", sz,
			   (unsigned long long)a8_held(ctx));
		for (unsigned i = 0; i < 512; i++)
			if (blk[i])
				CHECK_OK(iovm_dma_free(ctx, blk[i]));
		EXPECT_SOUND(ctx);
	}
	settled("small blocks");
}

/* Two blocks sharing a page: each freed while mapped is held until the page's last unmap. */
TEST(blocks_sharing_a_page)
{
	void *v[64];
	int a = -1, b = -1;

	for (unsigned i = 0; i < 64; i++)
		v[i] = a8_alloc(ctx, 1500, 0, 0);
	for (unsigned i = 0; i < 64 && a < 0; i++)
		for (unsigned j = i + 1; j < 64; j++)
			if ((a8_pa(ctx, v[i]).addr >> 12) == (a8_pa(ctx, v[j]).addr >> 12) &&
			    ((a8_pa(ctx, v[i]).addr + 1499) >> 12) == (a8_pa(ctx, v[i]).addr >> 12) &&
			    ((a8_pa(ctx, v[j]).addr + 1499) >> 12) == (a8_pa(ctx, v[j]).addr >> 12)) {
				a = (int)i, b = (int)j;
				break;
			}
	CHECK_MSG(a >= 0, "no two 1500-byte blocks in one page");
	iovm_pa_t page = IOVM_PA(a8_pa(ctx, v[a]).addr & ~(A8_K4 - 1));
	uint64_t iova = a8_map(dom, page, A8_K4, IOVM_ADDR_INVALID);
	uint64_t f0 = a8_free(ctx), h0 = a8_held(ctx);

	CHECK_OK(iovm_dma_free(ctx, v[a]));
	uint64_t h1 = a8_held(ctx);

	EXPECT(h1 > h0);
	CHECK_OK(iovm_dma_free(ctx, v[b]));
	uint64_t h2 = a8_held(ctx);

	EXPECT(h2 > h1);
	EXPECT_EQ(a8_free(ctx), f0);
	EXPECT_SOUND(ctx);
	a8_unmap(dom, iova, A8_K4);
	EXPECT_EQ(a8_held(ctx), h0);
	EXPECT_EQ(a8_free(ctx), f0 + (h2 - h0));
	v[a] = v[b] = NULL;
	for (unsigned i = 0; i < 64; i++)
		if (v[i])
			CHECK_OK(iovm_dma_free(ctx, v[i]));
	settled("two blocks in a page");
}

/* One page mapped 16 times (iovm_domain_map_pages): held until the 16th mapping goes. */
TEST(map_pages_same_page_many_times)
{
	uint8_t *b = a8_alloc(ctx, A8_K4, A8_K4, 0);
	iovm_pa_t pages[16];
	iovm_iova_t iova = IOVM_IOVA_ANY;

	for (unsigned i = 0; i < 16; i++)
		pages[i] = a8_pa(ctx, b);
	CHECK_OK(iovm_domain_map_pages(dom, &iova, pages, 16, A8_RW));
	uint64_t f0 = a8_free(ctx);

	CHECK_OK(iovm_dma_free(ctx, b));
	uint64_t held = a8_held(ctx);

	EXPECT(held >= A8_K4);
	/* Unmap them in a scattered order; each but the last leaves it held. */
	static const unsigned order[16] = { 7, 0, 15, 3, 8, 12, 1, 14, 2, 9, 4, 13, 5, 10, 6, 11 };
	for (unsigned k = 0; k < 16; k++) {
		if (k == 15) {
			/* The device writes through the last one: into the held page. */
			CHECK_EQ(devq_fill(&dq, iova.addr + order[k] * A8_K4, A8_K4, 0x3e), IOVM_STATUS_SUCCESS);
			EXPECT(all_bytes(b, A8_K4, 0x3e));
		}
		a8_unmap(dom, iova.addr + order[k] * A8_K4, A8_K4);
		if (k < 15) {
			EXPECT_MSG(a8_held(ctx) == held, "after %u of 16 unmaps: domain_held %llu, was %llu",
				   k + 1, (unsigned long long)a8_held(ctx), (unsigned long long)held);
			EXPECT_MSG(a8_free(ctx) == f0, "after %u of 16 unmaps: heap_free %llu, was %llu", k + 1,
				   (unsigned long long)a8_free(ctx), (unsigned long long)f0);
		}
	}
	settled("map_pages");
}

/* A 64 KiB block of which one interior page is mapped: the whole block is held. */
TEST(interior_page_holds_whole_block)
{
	uint8_t *b = a8_alloc(ctx, 16 * A8_K4, A8_K4, 0);
	iovm_pa_t pa = a8_pa(ctx, b);
	uint64_t iova = a8_map(dom, IOVM_PA(pa.addr + 5 * A8_K4), A8_K4, IOVM_ADDR_INVALID);
	uint64_t f0 = a8_free(ctx);
	void *got[64];
	unsigned n = 0;

	CHECK_OK(iovm_dma_free(ctx, b));
	EXPECT_EQ(a8_free(ctx), f0);
	EXPECT(a8_held(ctx) >= 16 * A8_K4);
	/* Nobody gets the held block's bytes, mapped page or not. */
	for (; n < 64; n++) {
		got[n] = a8_alloc(ctx, A8_K4, A8_K4, 0);
		EXPECT_MSG(!a8_overlap(a8_pa(ctx, got[n]).addr, A8_K4, pa.addr, 16 * A8_K4),
			   "page %u of a held block handed out", (unsigned)((a8_pa(ctx, got[n]).addr - pa.addr) / A8_K4));
	}
	for (unsigned i = 0; i < n; i++)
		CHECK_OK(iovm_dma_free(ctx, got[i]));
	a8_unmap(dom, iova, A8_K4);
	settled("interior page");
}

/* iovm_dma_realloc() that moves a mapped block frees the old one: held, not free. */
TEST(realloc_moves_mapped_block)
{
	uint8_t *b = a8_alloc(ctx, A8_K4, A8_K4, 0);
	iovm_pa_t pa = a8_pa(ctx, b);
	uint64_t iova = a8_map(dom, pa, A8_K4, IOVM_ADDR_INVALID);
	/* A neighbour after it, so that it cannot grow in place. */
	void *wall = a8_alloc(ctx, A8_K4, A8_K4, 0);
	uint8_t *nb;

	memset(b, 0x11, A8_K4);
	nb = iovm_dma_realloc(ctx, b, 1 << 20, A8_K4, 0);
	CHECK_MSG(nb != NULL, "realloc: %s", strerror(errno));
	if (nb == b) {
		CHECK_OK(iovm_dma_free(ctx, wall));
		CHECK_OK(iovm_dma_free(ctx, nb));
		a8_unmap(dom, iova, A8_K4);
		settled("realloc in place");
		SKIP_CASE("realloc grew in place");
	}
	EXPECT(all_bytes(nb, A8_K4, 0x11));
	EXPECT_MSG(a8_held(ctx) >= A8_K4, "the block realloc moved away from is not held: domain_held %llu",
		   (unsigned long long)a8_held(ctx));
	void *again = iovm_dma_zalloc(ctx, A8_K4, A8_K4, 0);

	CHECK(again != NULL);

	EXPECT_MSG(a8_pa(ctx, again).addr != pa.addr, "the mapped block realloc left is handed out again");
	CHECK_EQ(devq_fill(&dq, iova, A8_K4, 0x77), IOVM_STATUS_SUCCESS);
	EXPECT_MSG(all_bytes(again, A8_K4, 0) || a8_pa(ctx, again).addr != pa.addr, "device wrote a new block");
	CHECK_OK(iovm_dma_free(ctx, again));
	CHECK_OK(iovm_dma_free(ctx, nb));
	CHECK_OK(iovm_dma_free(ctx, wall));
	a8_unmap(dom, iova, A8_K4);
	settled("realloc");
}

int main(void)
{
	a8_init();
	ctx = share_ok(share_name("a8held"), HEAP);
	dom = a8_create(ctx, "held", NULL);
	dq = devq_open(ctx, dom);
	base_free = a8_free(ctx);
	base_blocks = share_info(ctx).blocks;
	EXPECT_EQ(a8_held(ctx), 0);

	RUN(page_block_held_through_exhaustion);
	RUN(small_blocks_not_recycled);
	RUN(blocks_sharing_a_page);
	RUN(map_pages_same_page_many_times);
	RUN(interior_page_holds_whole_block);
	RUN(realloc_moves_mapped_block);

	devq_close(&dq);
	CHECK_OK(iovm_domain_destroy(dom));
	iovm_close(ctx);
	return a8_status();
}
