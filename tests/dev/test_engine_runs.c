/* SPDX-License-Identifier: MIT */
/*
 * test_engine_runs.c - the software engine's page-contiguous runs: a side
 * translated past its leaf while the next leaves continue it, a COPY in
 * one piece, and what must not change for it: where a run ends, faults at
 * the first byte not moved, and the IOTLB's remembered last hit after an
 * unmap.
 */
#include "dev/dev_util.h"

#define RW (IOVM_MAP_READ | IOVM_MAP_WRITE)

static const char *opts = "page_size=4K,host_pa=off,oracle=on";

static void fill_random(uint8_t *p, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(test_rand(&seed) >> 56);
}

/*
 * A copy over several leaves goes in page-contiguous runs, and a copy
 * that fits a run in one piece: a run ends where the PAs do not follow,
 * and a fault inside what would be one run still stops the copy at the
 * first byte not moved. The IOTLB's last hit does not outlive an unmap.
 */
TEST(page_runs)
{
	iovm_iova_t s = IOVM_IOVA(0x20000000), d = IOVM_IOVA(0x30000000), odd;
	struct iovm_domain_attr plain = { 0 };
	struct iovm_dma_xlate xs, xd, xo;
	uint8_t *src, *dst, *other, *exp;
	struct iovm_completion c;
	uint32_t len = 4 * 4096 - 200;
	struct rig r;

	rig_open(&r, opts, &plain, IOVM_QUEUE_POLLED);
	src = iovm_dma_alloc(r.ctx, 4 * 4096, 4096, IOVM_DMA_CONTIG);
	dst = iovm_dma_alloc(r.ctx, 4 * 4096, 4096, IOVM_DMA_CONTIG);
	other = iovm_dma_alloc(r.ctx, 4096, 4096, IOVM_DMA_CONTIG);
	exp = malloc(4 * 4096);
	CHECK(src && dst && other && exp);
	fill_random(src, 4 * 4096, 7);
	fill_random(other, 4096, 8);
	CHECK_OK(iovm_dma_xlate(r.ctx, src, &xs));
	CHECK_OK(iovm_dma_xlate(r.ctx, dst, &xd));
	CHECK_OK(iovm_dma_xlate(r.ctx, other, &xo));
	/* Source: three pages of src, then one of other's: not physically contiguous there. */
	CHECK_OK(iovm_domain_map(r.dom, &s, xs.pa, 3 * 4096, IOVM_MAP_READ));
	odd = IOVM_IOVA(s.addr + 3 * 4096);
	CHECK_OK(iovm_domain_map(r.dom, &odd, xo.pa, 4096, IOVM_MAP_READ));
	CHECK_OK(iovm_domain_map(r.dom, &d, xd.pa, 4 * 4096, RW));
	memcpy(exp, src, 3 * 4096);
	memcpy(exp + 3 * 4096, other, 4096);

	memset(dst, 0, 4 * 4096);
	c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = s.addr + 100, .dst = d.addr + 100, .len = len });
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	CHECK_EQ(c.bytes_completed, len);
	CHECK(!memcmp(dst + 100, exp + 100, len));
	CHECK(dst[99] == 0 && dst[100 + len] == 0);

	/* The third source page unmapped: what was one run stops at its first byte. */
	CHECK_OK(iovm_domain_unmap(r.dom, IOVM_IOVA(s.addr + 2 * 4096), 4096));
	memset(dst, 0, 4 * 4096);
	c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = s.addr + 100, .dst = d.addr + 100, .len = len });
	CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(c.fault_reason, IOVM_FAULT_NOT_PRESENT);
	CHECK_EQ(c.fault_access, IOVM_MAP_READ);
	CHECK_EQ(c.fault_addr, s.addr + 2 * 4096);
	CHECK_EQ(c.bytes_completed, 2 * 4096 - 100);
	CHECK(!memcmp(dst + 100, exp + 100, 2 * 4096 - 100));
	CHECK_EQ(dst[2 * 4096], 0);

	/* A read-only page inside the destination's run: a write fault there, nothing written on it. */
	CHECK_OK(iovm_domain_unmap(r.dom, IOVM_IOVA(d.addr + 4096), 4096));
	odd = IOVM_IOVA(d.addr + 4096);
	CHECK_OK(iovm_domain_map(r.dom, &odd, IOVM_PA(xd.pa.addr + 4096), 4096, IOVM_MAP_READ));
	memset(dst, 0, 4 * 4096);
	c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = s.addr, .dst = d.addr, .len = 2 * 4096 });
	CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(c.fault_reason, IOVM_FAULT_PERMISSION);
	CHECK_EQ(c.fault_access, IOVM_MAP_WRITE);
	CHECK_EQ(c.fault_addr, d.addr + 4096);
	CHECK_EQ(c.bytes_completed, 4096);
	CHECK(!memcmp(dst, exp, 4096));
	CHECK_EQ(dst[4096], 0);

	/* Many small copies out of one page (the IOTLB's last hit), then the page unmapped. */
	for (int i = 0; i < 32; i++) {
		c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = s.addr + (uint64_t)i * 64,
						     .dst = d.addr + (uint64_t)i * 64, .len = 64 });
		CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	}
	CHECK_OK(iovm_domain_unmap(r.dom, s, 4096));
	dst[0] = 0;
	c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = s.addr, .dst = d.addr, .len = 64 });
	CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(c.fault_addr, s.addr);
	CHECK_EQ(c.bytes_completed, 0);
	CHECK_EQ(dst[0], 0);

	CHECK_OK(iovm_domain_unmap(r.dom, IOVM_IOVA(s.addr + 4096), 4096));
	CHECK_OK(iovm_domain_unmap(r.dom, IOVM_IOVA(s.addr + 3 * 4096), 4096));
	CHECK_OK(iovm_domain_unmap(r.dom, d, 4 * 4096));
	free(exp);
	iovm_dma_free(r.ctx, src);
	iovm_dma_free(r.ctx, dst);
	iovm_dma_free(r.ctx, other);
	rig_close(&r);
}

int main(void)
{
	test_init();
	RUN(page_runs);
	return 0;
}
