/* SPDX-License-Identifier: MIT */
/*
 * test_attack_nested.c - attacks two-stage translation (iommu.h,
 * guest.h): iovm_domain_translate() through both stages with the
 * permissions both allow, the engine reading what that says, a fault
 * reported by the stage that faulted (stage 1 to the nested domain,
 * stage 2 to the guest's stage 2 with its GPA), an unmap in either stage
 * dropping the cached combined translation at once.
 */
#include "attack.h"

#define RW (IOVM_MAP_READ | IOVM_MAP_WRITE)

TEST(two_stages_translate_fault_and_invalidate_as_promised)
{
	struct iovm_ctx *ctx = attack_open(NULL);
	struct iovm_guest_attr ga = { .size = 8u << 20, .page_size = 4096 };
	struct iovm_guest *g;
	struct iovm_domain *s2, *s1, *rings;
	struct iovm_device *dev;
	struct iovm_queue *q;
	struct iovm_domain_attr fa = { .type = IOVM_DOMAIN_MANAGED, .flags = IOVM_DOMAIN_FOLLOW_HEAP };
	struct iovm_fault f;

	CHECK_OK(iovm_guest_create(ctx, &ga, &g));
	CHECK_OK(iovm_guest_stage2(g, &s2));
	CHECK_OK(iovm_guest_domain_create(g, NULL, &s1));
	CHECK_OK(iovm_domain_create(ctx, &fa, &rings));
	CHECK_OK(iovm_device_open(ctx, "sw", &dev));
	CHECK_OK(iovm_device_attach(dev, rings, 0));
	CHECK_OK(iovm_device_attach(dev, s1, 3));
	struct iovm_queue_attr qa = { .depth = 64, .flags = IOVM_QUEUE_POLLED };
	CHECK_OK(iovm_queue_create(dev, &qa, &q));
	struct rig r = { .ctx = ctx, .dom = rings, .dev = dev, .q = q };
	uint8_t *ram = iovm_guest_ptr(g, IOVM_GPA(0), NULL);
	CHECK(ram != NULL);
	for (int i = 0; i < 2048; i++)
		memset(ram + i * 4096, i & 0xff, 4096);
	/* Completion records are at addresses of the descriptor's PASID: guest page 0x30000 at 0x500000. */
	r.comp = (struct iovm_completion *)(ram + 0x30000);
	r.comp_iova = IOVM_IOVA(0x500000);
	{
		iovm_iova_t cio = r.comp_iova;
		CHECK_OK(iovm_domain_map_gpa(s1, &cio, IOVM_GPA(0x30000), 4096, RW));
	}
	/* Stage 1: guest IOVA 0x100000.. -> GPA 0x10000.. (16 pages) RW; 0x200000 -> GPA 0x20000 read-only. */
	iovm_iova_t io = IOVM_IOVA(0x100000);
	iovm_pa_t pa;
	uint32_t perm;
	CHECK_RET(iovm_domain_map(s1, &io, IOVM_PA(0x10000), 4096, RW), -EOPNOTSUPP);
	CHECK_RET(iovm_domain_map_gpa(rings, &io, IOVM_GPA(0x10000), 4096, RW), -EOPNOTSUPP);
	CHECK_OK(iovm_domain_map_gpa(s1, &io, IOVM_GPA(0x10000), 16 * 4096, RW));
	io = IOVM_IOVA(0x200000);
	CHECK_OK(iovm_domain_map_gpa(s1, &io, IOVM_GPA(0x20000), 4096, IOVM_MAP_READ));
	/* A GPA beyond the guest's memory: stage 1 maps it, stage 2 does not. */
	io = IOVM_IOVA(0x300000);
	CHECK_OK(iovm_domain_map_gpa(s1, &io, IOVM_GPA(1ull << 40), 4096, RW));

	/* translate = stage 2 (translate of GPA) after stage 1. */
	for (int i = 0; i < 16; i++) {
		iovm_pa_t p2;
		CHECK_OK(iovm_domain_translate(s1, IOVM_IOVA(0x100000 + i * 4096 + 5), &pa, &perm));
		CHECK_OK(iovm_domain_translate(s2, IOVM_IOVA(0x10000 + i * 4096 + 5), &p2, NULL));
		EXPECT_EQ(pa.addr, p2.addr);
		EXPECT_EQ(perm, RW);
	}
	CHECK_OK(iovm_domain_translate(s1, IOVM_IOVA(0x200000), &pa, &perm));
	EXPECT_EQ(perm, IOVM_MAP_READ);
	CHECK_RET(iovm_domain_translate(s1, IOVM_IOVA(0x300000), &pa, &perm), -ENOENT);
	CHECK_RET(iovm_domain_translate(s1, IOVM_IOVA(0x400000), &pa, &perm), -ENOENT);

	/* The engine copies guest IOVA 0x100000 (GPA 0x10000 = page 16) to 0x101000 (page 17). */
	uint8_t *out = iovm_dma_zalloc(ctx, 8192, 4096, 0);
	struct iovm_completion c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .pasid = 3,
		.src = 0x100000, .dst = 0x101000, .len = 4096 });
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	EXPECT_MSG(all_bytes(ram + 0x11000, 4096, 16), "the copy through two stages landed wrong");
	memset(ram + 0x11000, 17, 4096);
	/* Write to the read-only page: stage 1 permission fault, to s1. */
	c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_FILL, .pasid = 3, .dst = 0x200000, .len = 64 });
	EXPECT_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
	EXPECT_EQ(c.fault_reason, IOVM_FAULT_PERMISSION);
	CHECK_RET(iovm_domain_fault_pop(s1, &f), 0);
	EXPECT_EQ(f.stage, IOVM_STAGE_1);
	EXPECT_EQ(f.reason, IOVM_FAULT_PERMISSION);
	CHECK_RET(iovm_domain_fault_pop(s2, &f), -EAGAIN);
	EXPECT(all_bytes(ram + 0x20000, 4096, 0x20));
	/* Stage 2 fault: the GPA has no stage-2 mapping; to s2, with the GPA. */
	c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_FILL, .pasid = 3, .dst = 0x300000 + 8, .len = 8 });
	EXPECT_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
	EXPECT_EQ(c.fault_addr, 0x300000 + 8);
	CHECK_RET(iovm_domain_fault_pop(s2, &f), 0);
	EXPECT_EQ(f.stage, IOVM_STAGE_2);
	EXPECT_EQ(f.gpa.addr, (1ull << 40) + 8);
	CHECK_RET(iovm_domain_fault_pop(s1, &f), -EAGAIN);
	/* Unmap in stage 2 (the monitor takes a page away): the cached combined translation goes at once. */
	c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_CRC32C, .pasid = 3, .src = 0x102000, .len = 64 });
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS); /* now cached */
	CHECK_OK(iovm_domain_unmap(s2, IOVM_IOVA(0x12000), 4096));
	memset(ram + 0x12000, 0x55, 4096);
	c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_FILL, .pasid = 3, .dst = 0x102000, .len = 4096,
		.pattern = 0xaaaaaaaaaaaaaaaaull });
	EXPECT_MSG(c.status == IOVM_STATUS_PAGE_FAULT, "a write through a stage-2 page unmapped: status %u",
		   c.status);
	EXPECT_MSG(all_bytes(ram + 0x12000, 4096, 0x55), "a write reached a page stage 2 no longer maps");
	while (iovm_domain_fault_pop(s2, &f) == 0)
		;
	/* And in stage 1. */
	c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_CRC32C, .pasid = 3, .src = 0x103000, .len = 64 });
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	CHECK_OK(iovm_domain_unmap(s1, IOVM_IOVA(0x103000), 4096));
	c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_FILL, .pasid = 3, .dst = 0x103000, .len = 64 });
	EXPECT_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
	EXPECT(all_bytes(ram + 0x13000, 4096, 0x13));
	while (iovm_domain_fault_pop(s1, &f) == 0)
		;
	check_domain_clean(s1);
	check_domain_clean(s2);
	check_domain_clean(rings);
	CHECK_OK(iovm_queue_destroy(q));
	CHECK_OK(iovm_device_close(dev));
	CHECK_RET(iovm_guest_destroy(g), -EBUSY);
	CHECK_OK(iovm_domain_destroy(s1));
	CHECK_OK(iovm_domain_destroy(rings));
	CHECK_OK(iovm_guest_destroy(g));
	iovm_dma_free(ctx, out);
	iovm_close(ctx);
}

int main(void)
{
	test_init();
	RUN(two_stages_translate_fault_and_invalidate_as_promised);
	return attack_status();
}
