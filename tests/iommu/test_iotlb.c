/* SPDX-License-Identifier: MIT */
/*
 * test_iotlb.c - the IOTLB as a device sees it, through the software engine
 * with the oracle on: every bit of an IOVA takes part in a hit, so an
 * address that differs from a cached one anywhere (above the domain's
 * address width too) misses, walks, and faults when nothing maps it.
 */
#include "dev/dev_util.h"

static const char *opts = "page_size=4K,host_pa=off,oracle=on";

static struct iovm_completion copy(struct rig *r, uint64_t src, uint64_t dst, uint32_t len)
{
	return run_desc(r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = src, .dst = dst, .len = len });
}

/*
 * Issue 16 item 6: the tag kept the IOVA's page number shifted left past
 * the PASID, and bits 55-63 fell off its top: once X was cached, X + k*2^55
 * hit X's entry whenever it hashed to X's set (8 values of k in 511), and
 * the device read X's page. Every k, reading and writing, must fault.
 */
static void aliases_fault(const struct iovm_domain_attr *attr)
{
	struct rig r;
	uint8_t *src, *dst;
	uint64_t x, y;
	unsigned faults = 0;

	rig_open(&r, opts, attr, IOVM_QUEUE_POLLED);
	src = iovm_dma_alloc(r.ctx, 4096, 4096, 0);
	dst = iovm_dma_zalloc(r.ctx, 4096, 4096, 0);
	CHECK(src && dst);
	memset(src, 0xa5, 4096);
	x = iova_of(&r, src);
	y = iova_of(&r, dst);
	for (uint64_t k = 1; k < 512; k++) {
		uint64_t alias = k << 55;
		struct iovm_completion c;

		/* X and Y cached, by a read and a write. */
		CHECK_EQ(copy(&r, x, y, 64).status, IOVM_STATUS_SUCCESS);
		/* A read at X's alias. */
		c = copy(&r, x + alias, y + 64, 64);
		CHECK_MSG(c.status == IOVM_STATUS_PAGE_FAULT, "k=%" PRIu64 ": read of %#" PRIx64 " gave status %u",
			  k, x + alias, c.status);
		CHECK_EQ(c.fault_addr, x + alias);
		CHECK_EQ(c.fault_reason, IOVM_FAULT_NOT_PRESENT);
		CHECK_EQ(c.fault_access, IOVM_MAP_READ);
		CHECK_EQ(c.bytes_completed, 0);
		/* A write at Y's alias. */
		c = copy(&r, x, y + alias + 128, 64);
		CHECK_MSG(c.status == IOVM_STATUS_PAGE_FAULT, "k=%" PRIu64 ": write of %#" PRIx64 " gave status %u",
			  k, y + alias + 128, c.status);
		CHECK_EQ(c.fault_addr, y + alias + 128);
		CHECK_EQ(c.fault_access, IOVM_MAP_WRITE);
		faults += 2;
	}
	CHECK_EQ(faults, 2 * 511);
	/* Nothing reached Y but the cached copies of X. */
	for (unsigned i = 0; i < 4096; i++)
		CHECK_EQ(dst[i], i < 64 ? 0xa5 : 0);
	/* Just above the address width, and the top page of the 64-bit space. */
	CHECK_EQ(copy(&r, x + (UINT64_C(1) << 48), y, 64).status, IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(copy(&r, x | UINT64_C(0xfffff00000000000), y, 64).status, IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(copy(&r, UINT64_MAX & ~UINT64_C(4095), y, 64).status, IOVM_STATUS_PAGE_FAULT);
	iovm_dma_free(r.ctx, src);
	iovm_dma_free(r.ctx, dst);
	rig_close(&r);
}

TEST(aliases_above_bit_55_managed)
{
	struct iovm_domain_attr a = { .type = IOVM_DOMAIN_MANAGED, .flags = IOVM_DOMAIN_FOLLOW_HEAP };

	aliases_fault(&a);
}

TEST(aliases_above_bit_55_va)
{
	struct iovm_domain_attr a = { .type = IOVM_DOMAIN_VA, .flags = IOVM_DOMAIN_FOLLOW_HEAP };

	aliases_fault(&a);
}

/*
 * A 32-bit domain: addresses past its mask, at any bit, fault though their
 * low 32 bits name a cached page.
 */
TEST(aliases_above_the_dma_mask)
{
	struct iovm_domain_attr a = { .type = IOVM_DOMAIN_MANAGED, .flags = IOVM_DOMAIN_FOLLOW_HEAP,
				      .dma_bits = 32 };
	struct rig r;
	uint8_t *src, *dst;
	uint64_t x, y;

	rig_open(&r, opts, &a, IOVM_QUEUE_POLLED);
	src = iovm_dma_alloc(r.ctx, 4096, 4096, 0);
	dst = iovm_dma_zalloc(r.ctx, 4096, 4096, 0);
	x = iova_of(&r, src);
	y = iova_of(&r, dst);
	CHECK(x < (UINT64_C(1) << 32) && y < (UINT64_C(1) << 32));
	for (unsigned bit = 32; bit < 64; bit++) {
		CHECK_EQ(copy(&r, x, y, 64).status, IOVM_STATUS_SUCCESS);
		CHECK_EQ(copy(&r, x | (UINT64_C(1) << bit), y, 64).status, IOVM_STATUS_PAGE_FAULT);
	}
	rig_close(&r);
}

int main(void)
{
	test_init();
	RUN(aliases_above_bit_55_managed);
	RUN(aliases_above_bit_55_va);
	RUN(aliases_above_the_dma_mask);
	return 0;
}
