/* SPDX-License-Identifier: MIT */
/*
 * test_attack_release.c - attacks what a domain that follows the heap
 * promises around commits and releases (iommu.h: "it maps every page the
 * heap commits and unmaps it before the heap releases it"): a device
 * write at the IOVA of memory freed and trimmed faults, and once memory
 * is committed anew, a write lands only where iovm_dma_iova() says each
 * live page is; a domain created after the memory was committed maps it;
 * a destroyed domain's IOVAs reach nothing through a new domain at the
 * same PASID; the heap goes on after a following domain is destroyed.
 */
#include "attack.h"

#define RW (IOVM_MAP_READ | IOVM_MAP_WRITE)

TEST(a_write_at_the_iova_of_released_memory_reaches_no_live_page_but_its_own)
{
	struct rig r;
	const size_t n = 8u << 20;

	rig_open(&r, "oracle=on,log_level=error,release_delay_ms=0", NULL, IOVM_QUEUE_POLLED);
	uint8_t *a = iovm_dma_alloc(r.ctx, n, 2u << 20, 0);
	CHECK(a != NULL);
	/* Its IOVA range, page by page (it may not be contiguous: see test_attack_follow_heap). */
	uint64_t *pio = malloc(sizeof(uint64_t) * (n / 4096));
	for (size_t i = 0; i < n / 4096; i++)
		pio[i] = iova_of(&r, a + i * 4096);
	CHECK_OK(iovm_dma_free(r.ctx, a));
	CHECK(iovm_dma_trim(r.ctx, IOVM_TRIM_ALL) >= 0);
	/* Released: every page of it faults. */
	unsigned wrote = 0;
	for (size_t i = 0; i < n / 4096; i += 64) {
		struct iovm_completion c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = pio[i],
			.len = 64, .pattern = 0x5555555555555555ull });
		if (c.status != IOVM_STATUS_PAGE_FAULT)
			wrote++;
	}
	EXPECT_MSG(wrote == 0, "%u writes at IOVAs of released memory did not fault", wrote);
	/* New memory, stamped; the same writes may only land where a live page's IOVA is. */
	enum { NB = 8 };
	uint8_t *b[NB];
	for (int k = 0; k < NB; k++) {
		b[k] = iovm_dma_alloc(r.ctx, 2u << 20, 4096, 0);
		CHECK(b[k] != NULL);
		memset(b[k], 0x30 + k, 2u << 20);
	}
	unsigned stray = 0;
	for (size_t i = 0; i < n / 4096; i += 16) {
		struct iovm_completion c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = pio[i],
			.len = 4096, .pattern = 0xeeeeeeeeeeeeeeeeull });
		for (int k = 0; k < NB; k++)
			for (size_t p = 0; p < (2u << 20) / 4096; p++) {
				uint8_t *pg = b[k] + p * 4096;
				int mine = c.status == IOVM_STATUS_SUCCESS && iova_of(&r, pg) == pio[i];
				if (mine) {
					EXPECT(all_bytes(pg, 4096, 0xee));
					memset(pg, 0x30 + k, 4096);
				} else if (!all_bytes(pg, 4096, (uint8_t)(0x30 + k))) {
					if (stray++ < 3)
						EXPECT_MSG(0, "a write at IOVA %#llx landed in a live page whose IOVA "
							   "is %#llx", (unsigned long long)pio[i],
							   (unsigned long long)iova_of(&r, pg));
					memset(pg, 0x30 + k, 4096);
				}
			}
	}
	EXPECT_MSG(stray == 0, "%u stray writes", stray);
	for (int k = 0; k < NB; k++)
		CHECK_OK(iovm_dma_free(r.ctx, b[k]));
	free(pio);
	struct iovm_fault f;
	while (iovm_domain_fault_pop(r.dom, &f) == 0)
		;
	rig_close(&r);
}

TEST(a_domain_created_later_maps_what_was_committed_before)
{
	struct iovm_ctx *ctx = attack_open(NULL);
	uint8_t *a = iovm_dma_alloc(ctx, 3u << 20, 0, 0);
	struct iovm_domain_attr fa = { .type = IOVM_DOMAIN_MANAGED, .flags = IOVM_DOMAIN_FOLLOW_HEAP };
	struct iovm_domain *d;
	iovm_iova_t io;
	iovm_pa_t pa, tpa;

	CHECK(a != NULL);
	CHECK_OK(iovm_domain_create(ctx, &fa, &d));
	for (size_t off = 0; off < (3u << 20); off += 4096) {
		CHECK_OK(iovm_dma_iova(d, a + off, &io));
		CHECK_OK(iovm_domain_translate(d, io, &tpa, NULL));
		CHECK_OK(iovm_dma_pa(ctx, a + off, &pa));
		EXPECT_EQ(tpa.addr, pa.addr);
	}
	/* Destroyed: the heap goes on committing and releasing without it. */
	CHECK_OK(iovm_domain_destroy(d));
	for (int k = 0; k < 20; k++) {
		void *p = iovm_dma_alloc(ctx, (size_t)(k + 1) << 20, 0, 0);
		CHECK(p != NULL);
		CHECK_OK(iovm_dma_free(ctx, p));
		CHECK(iovm_dma_trim(ctx, IOVM_TRIM_ALL) >= 0);
	}
	CHECK_OK(iovm_dma_free(ctx, a));
	iovm_close(ctx);
}

TEST(a_destroyed_domains_iovas_reach_nothing_through_its_successor)
{
	struct rig r;
	struct iovm_domain_attr a = { .type = IOVM_DOMAIN_MANAGED };
	struct iovm_domain *d1, *d2;
	struct iovm_domain_attr fa = { .type = IOVM_DOMAIN_MANAGED, .flags = IOVM_DOMAIN_FOLLOW_HEAP };

	rig_open(&r, "oracle=on,log_level=error", &fa, IOVM_QUEUE_POLLED);
	uint8_t *page = iovm_dma_zalloc(r.ctx, 4096, 4096, 0);
	iovm_pa_t pa;
	CHECK_OK(iovm_dma_pa(r.ctx, page, &pa));
	CHECK_OK(iovm_domain_create(r.ctx, &a, &d1));
	iovm_iova_t io = IOVM_IOVA(0x9000000);
	CHECK_OK(iovm_domain_map(d1, &io, pa, 4096, RW));
	CHECK_OK(iovm_device_attach(r.dev, d1, 4));
	CHECK_EQ(run_polled(r.q, (struct iovm_desc){ .op = IOVM_OP_FILL, .pasid = 4, .dst = 0x9000000, .len = 64,
		.pattern = 0x0909090909090909ull }), IOVM_STATUS_SUCCESS);
	CHECK(all_bytes(page, 64, 9));
	CHECK_OK(iovm_device_detach(r.dev, 4));
	CHECK_OK(iovm_domain_destroy(d1));
	memset(page, 0, 4096);
	CHECK_OK(iovm_domain_create(r.ctx, &a, &d2));
	CHECK_OK(iovm_device_attach(r.dev, d2, 4));
	EXPECT_EQ(run_polled(r.q, (struct iovm_desc){ .op = IOVM_OP_FILL, .pasid = 4, .dst = 0x9000000, .len = 64,
		.pattern = 0x0808080808080808ull }), IOVM_STATUS_PAGE_FAULT);
	EXPECT_MSG(all_bytes(page, 4096, 0), "the destroyed domain's mapping was used");
	CHECK_OK(iovm_device_detach(r.dev, 4));
	check_domain_clean(d2);
	CHECK_OK(iovm_domain_destroy(d2));
	iovm_dma_free(r.ctx, page);
	rig_close(&r);
}

int main(void)
{
	test_init();
	RUN(a_write_at_the_iova_of_released_memory_reaches_no_live_page_but_its_own);
	RUN(a_domain_created_later_maps_what_was_committed_before);
	RUN(a_destroyed_domains_iovas_reach_nothing_through_its_successor);
	return attack_status();
}
