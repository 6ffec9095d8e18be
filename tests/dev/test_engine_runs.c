/* SPDX-License-Identifier: MIT */
/*
 * test_engine_runs.c - the software engine's page-contiguous runs: a side
 * translated past its leaf while the next leaves continue it, a COPY in
 * one piece, and what must not change for it: where a run ends, faults at
 * the first byte not moved, and the IOTLB's remembered last hit after an
 * unmap. And the COPY the engine does inline, when both sides fall in the
 * pages its last accesses hit: what it must still see (an unmap, a remap,
 * a permission taken away) and what it must leave to the general way.
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

/* Submit @n descriptors, run them in one go (one device-side section), reap them in order. */
static void run_batch(struct rig *r, const struct iovm_desc *d, unsigned n, struct iovm_cqe *cqe)
{
	unsigned got = 0;

	for (unsigned i = 0; i < n; i++)
		CHECK_OK(iovm_queue_submit(r->q, &d[i]));
	CHECK_EQ(iovm_queue_process(r->q, n), (int)n);
	while (got < n) {
		int k = iovm_queue_reap(r->q, cqe + got, n - got);

		CHECK(k > 0);
		got += (unsigned)k;
	}
	for (unsigned i = 0; i < n; i++)
		CHECK_EQ(cqe[i].tag, d[i].tag);
}

static struct iovm_desc copy(uint64_t src, uint64_t dst, uint32_t len, uint64_t tag)
{
	return (struct iovm_desc){ .op = IOVM_OP_COPY, .src = src, .dst = dst, .len = len, .tag = tag };
}

/*
 * Copies whose sides stay in the pages the engine's last accesses hit,
 * run inline with no walk, in batches (one section each): every byte
 * still goes through the domain. A strict unmap between two batches
 * faults the next copy at its first byte, writing nothing; a page mapped
 * again elsewhere is read there, not where it was; a destination made
 * read-only faults. What the inline copy leaves to the general way (a
 * copy down, a bad PASID, a misaligned record, a copy past its page, a
 * run with a hole) comes out as the general way has it.
 */
TEST(inline_copies)
{
	iovm_iova_t s = IOVM_IOVA(0x40000000), d = IOVM_IOVA(0x50000000), odd;
	struct iovm_domain_attr plain = { 0 };
	struct iovm_dma_xlate xs, xd, xo;
	struct iovm_queue_stats st0, st1;
	uint8_t *src, *dst, *other;
	struct iovm_completion c;
	struct iovm_desc batch[16];
	struct iovm_cqe cqe[16];
	struct rig r;

	rig_open(&r, opts, &plain, IOVM_QUEUE_POLLED);
	src = iovm_dma_alloc(r.ctx, 3 * 4096, 4096, IOVM_DMA_CONTIG);
	dst = iovm_dma_alloc(r.ctx, 3 * 4096, 4096, IOVM_DMA_CONTIG);
	other = iovm_dma_alloc(r.ctx, 4096, 4096, IOVM_DMA_CONTIG);
	CHECK(src && dst && other);
	fill_random(src, 3 * 4096, 11);
	fill_random(other, 4096, 12);
	memset(dst, 0, 3 * 4096);
	CHECK_OK(iovm_dma_xlate(r.ctx, src, &xs));
	CHECK_OK(iovm_dma_xlate(r.ctx, dst, &xd));
	CHECK_OK(iovm_dma_xlate(r.ctx, other, &xo));
	CHECK_OK(iovm_domain_map(r.dom, &s, xs.pa, 3 * 4096, IOVM_MAP_READ));
	CHECK_OK(iovm_domain_map(r.dom, &d, xd.pa, 3 * 4096, IOVM_MAP_READ | IOVM_MAP_WRITE));

	/* Sixteen copies within one page each side: the first walks, the rest hit. */
	CHECK_OK(iovm_queue_stats(r.q, &st0));
	for (unsigned i = 0; i < 16; i++)
		batch[i] = copy(s.addr + i * 256, d.addr + i * 256, 256, 100 + i);
	run_batch(&r, batch, 16, cqe);
	for (unsigned i = 0; i < 16; i++) {
		CHECK_EQ(cqe[i].status, IOVM_STATUS_SUCCESS);
		CHECK_EQ(cqe[i].bytes_completed, 256);
	}
	CHECK(!memcmp(dst, src, 4096));
	CHECK_OK(iovm_queue_stats(r.q, &st1));
	CHECK_EQ(st1.completed - st0.completed, 16);
	CHECK_EQ(st1.bytes - st0.bytes, 16 * 256);
	CHECK(st1.iotlb_hits - st0.iotlb_hits >= 30);

	/* With a completion record, still inline: the record says what the entry says. */
	memset(dst, 0, 4096);
	c = run_desc(&r, copy(s.addr + 8, d.addr + 8, 1000, 7));
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	CHECK_EQ(c.bytes_completed, 1000);
	CHECK_EQ(c.result, 0);
	CHECK(!memcmp(dst + 8, src + 8, 1000));
	CHECK(dst[7] == 0 && dst[1008] == 0);

	/* The source page unmapped (strict) between two batches: the next copy faults there, writing nothing. */
	run_batch(&r, batch, 4, cqe);
	CHECK_OK(iovm_domain_unmap(r.dom, s, 4096));
	memset(dst, 0, 4096);
	batch[0] = copy(s.addr + 512, d.addr + 512, 64, 1);
	batch[1] = copy(s.addr + 4096, d.addr + 4096, 64, 2); /* the next page, still mapped */
	run_batch(&r, batch, 2, cqe);
	CHECK_EQ(cqe[0].status, IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(cqe[0].bytes_completed, 0);
	CHECK_EQ(cqe[1].status, IOVM_STATUS_SUCCESS);
	for (unsigned i = 0; i < 4096; i++)
		CHECK_EQ(dst[i], 0);
	c = run_desc(&r, copy(s.addr + 512, d.addr + 512, 64, 3));
	CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(c.fault_addr, s.addr + 512);
	CHECK_EQ(c.fault_access, IOVM_MAP_READ);
	CHECK_EQ(c.fault_reason, IOVM_FAULT_NOT_PRESENT);

	/* Mapped again at the same IOVA onto other memory: read there, never where it was. */
	odd = s;
	CHECK_OK(iovm_domain_map(r.dom, &odd, xo.pa, 4096, IOVM_MAP_READ));
	for (unsigned i = 0; i < 16; i++)
		batch[i] = copy(s.addr + i * 256, d.addr + i * 256, 256, 200 + i);
	run_batch(&r, batch, 16, cqe);
	for (unsigned i = 0; i < 16; i++)
		CHECK_EQ(cqe[i].status, IOVM_STATUS_SUCCESS);
	CHECK(!memcmp(dst, other, 4096));

	/* The destination made read-only: a write fault at its first byte, nothing written. */
	CHECK_OK(iovm_domain_unmap(r.dom, d, 4096));
	odd = d;
	CHECK_OK(iovm_domain_map(r.dom, &odd, xd.pa, 4096, IOVM_MAP_READ));
	memset(dst, 0, 4096);
	c = run_desc(&r, copy(s.addr, d.addr + 100, 200, 4));
	CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(c.fault_addr, d.addr + 100);
	CHECK_EQ(c.fault_access, IOVM_MAP_WRITE);
	CHECK_EQ(c.fault_reason, IOVM_FAULT_PERMISSION);
	CHECK_EQ(c.bytes_completed, 0);
	for (unsigned i = 0; i < 4096; i++)
		CHECK_EQ(dst[i], 0);
	CHECK_OK(iovm_domain_unmap(r.dom, d, 4096));
	odd = d;
	CHECK_OK(iovm_domain_map(r.dom, &odd, xd.pa, 4096, IOVM_MAP_READ | IOVM_MAP_WRITE));

	/* Within one destination page: a copy down runs from the end, as memmove, and says so. */
	memcpy(dst, other, 4096);
	batch[0] = copy(d.addr, d.addr + 64, 64, 5); /* primes the hits on d's page */
	run_batch(&r, batch, 1, cqe);
	memcpy(dst, other, 4096);
	c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = d.addr + 100, .dst = d.addr + 150, .len = 300 });
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	CHECK_EQ(c.result, 1);
	CHECK(!memcmp(dst + 150, other + 100, 300));

	/*
	 * Its pages' hits primed by the first copy, what the inline copy must
	 * still refuse: a PASID past the tags' bits (2^20: with it, the tag of
	 * an even page is that of the odd page above it with PASID 0, the
	 * primed one), a misaligned record.
	 */
	memset(dst, 0, 2 * 4096);
	batch[0] = copy(s.addr + 4096, d.addr + 4096, 64, 6);
	batch[1] = copy(s.addr + 64, d.addr + 64, 64, 7);
	batch[1].pasid = IOVM_PASID_MAX + 1;
	batch[2] = copy(s.addr + 4096 + 64, d.addr + 4096 + 64, 64, 8);
	batch[2].flags = IOVM_DESC_COMPLETION;
	batch[2].completion = r.comp_iova.addr + 8;
	run_batch(&r, batch, 3, cqe);
	CHECK_EQ(cqe[0].status, IOVM_STATUS_SUCCESS);
	CHECK_EQ(cqe[1].status, IOVM_STATUS_INVALID);
	CHECK_EQ(cqe[2].status, IOVM_STATUS_INVALID);
	CHECK(!memcmp(dst + 4096, src + 4096, 64));
	for (unsigned i = 0; i < 2 * 4096; i++)
		CHECK(i - 4096 < 64 || dst[i] == 0);

	/*
	 * Two IOVAs onto the same memory, a copy between them with its pages
	 * primed: the memory overlaps though the IOVAs do not, and the copy
	 * comes out as memmove's.
	 */
	odd = IOVM_IOVA(0x60000000);
	CHECK_OK(iovm_domain_map(r.dom, &odd, xd.pa, 4096, IOVM_MAP_READ | IOVM_MAP_WRITE));
	memcpy(dst, other, 4096);
	batch[0] = copy(odd.addr, d.addr + 2048, 64, 9);
	batch[1] = copy(odd.addr + 100, d.addr + 150, 1000, 10);
	run_batch(&r, batch, 2, cqe);
	CHECK_EQ(cqe[0].status, IOVM_STATUS_SUCCESS);
	CHECK_EQ(cqe[1].status, IOVM_STATUS_SUCCESS);
	CHECK(!memcmp(dst + 150, other + 100, 1000));
	CHECK_OK(iovm_domain_unmap(r.dom, odd, 4096));

	/*
	 * Hits primed in the first pages, then a copy past them with the
	 * middle source page unmapped: it stops at that page's first byte,
	 * the bytes before it done, none after.
	 */
	CHECK_OK(iovm_domain_unmap(r.dom, s, 4096));
	odd = s;
	CHECK_OK(iovm_domain_map(r.dom, &odd, xs.pa, 4096, IOVM_MAP_READ));
	CHECK_OK(iovm_domain_unmap(r.dom, IOVM_IOVA(s.addr + 4096), 4096));
	memset(dst, 0, 3 * 4096);
	batch[0] = copy(s.addr + 3000, d.addr + 3000, 64, 8);
	batch[1] = copy(s.addr + 3000, d.addr + 3000, 3 * 4096 - 3000 - 10, 9);
	run_batch(&r, batch, 2, cqe);
	CHECK_EQ(cqe[0].status, IOVM_STATUS_SUCCESS);
	CHECK_EQ(cqe[1].status, IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(cqe[1].bytes_completed, 4096 - 3000);
	CHECK(!memcmp(dst + 3000, src + 3000, 4096 - 3000));
	for (unsigned i = 4096; i < 3 * 4096; i++)
		CHECK_EQ(dst[i], 0);
	c = run_desc(&r, copy(s.addr + 3000, d.addr + 3000, 3 * 4096 - 3000 - 10, 10));
	CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(c.fault_addr, s.addr + 4096);
	CHECK_EQ(c.bytes_completed, 4096 - 3000);

	CHECK_OK(iovm_domain_unmap(r.dom, s, 4096));
	CHECK_OK(iovm_domain_unmap(r.dom, IOVM_IOVA(s.addr + 2 * 4096), 4096));
	CHECK_OK(iovm_domain_unmap(r.dom, d, 3 * 4096));
	iovm_dma_free(r.ctx, src);
	iovm_dma_free(r.ctx, dst);
	iovm_dma_free(r.ctx, other);
	rig_close(&r);
}

int main(void)
{
	test_init();
	RUN(page_runs);
	RUN(inline_copies);
	return 0;
}
