/* SPDX-License-Identifier: MIT */
/*
 * test_copy_overlap.c - COPY with overlapping ranges is memmove, whichever
 * side is higher, as DSA's memory move: dst above src runs from the end
 * and says so in result; a fault then leaves the last bytes done.
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
 * COPY with overlapping ranges is memmove, whichever side is higher (DSA's
 * memory move): dst above src runs from the end and says so (result 1);
 * a fault then leaves the last bytes_completed bytes done.
 */
TEST(overlapping_copy_is_memmove)
{
	struct rig r;
	uint8_t *buf, *want;
	struct iovm_completion c;
	uint64_t base;
	iovm_iova_t at = IOVM_IOVA_ANY;

	rig_open(&r, opts, NULL, IOVM_QUEUE_POLLED);
	buf = iovm_dma_alloc(r.ctx, 8 * 4096, 4096, IOVM_DMA_CONTIG);
	want = malloc(8 * 4096);
	CHECK(buf && want);
	base = iova_of(&r, buf);
	for (int dir = 0; dir < 2; dir++) {
		uint64_t src = dir ? 1000 : 5000, dst = dir ? 5000 - 7 : 1000 + 3;

		fill_random(buf, 8 * 4096, 40 + (uint64_t)dir);
		memcpy(want, buf, 8 * 4096);
		memmove(want + dst, want + src, 3 * 4096 + 11);
		c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = base + src, .dst = base + dst,
						     .len = 3 * 4096 + 11 });
		CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
		CHECK_EQ(c.bytes_completed, 3 * 4096 + 11);
		CHECK_EQ(c.result, dst > src);
		CHECK(!memcmp(buf, want, 8 * 4096));
	}
	/* From the end, into a hole: the bytes above the hole are done, no others. */
	{
		struct iovm_dma_xlate x;

		CHECK_OK(iovm_dma_xlate(r.ctx, buf, &x));
		CHECK_OK(iovm_domain_map(r.dom, &at, x.pa, 8 * 4096, RW));
		CHECK_OK(iovm_domain_unmap(r.dom, IOVM_IOVA(at.addr + 2 * 4096), 4096)); /* page 2: a hole */
		fill_random(buf, 8 * 4096, 50);
		memcpy(want, buf, 8 * 4096);
		/*
		 * src [4196, 20580), dst 300 above. Going down, pieces end where a
		 * page of either side does; src reaches the hole first: the piece
		 * [7792, 8092) of the range, whose src starts at 11988 in page 2.
		 * The 8292 bytes above it are done.
		 */
		c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = at.addr + 4196, .dst = at.addr + 4496,
						     .len = 4 * 4096 });
		CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
		CHECK_EQ(c.result, 1);
		CHECK_EQ(c.fault_addr, at.addr + 11988);
		CHECK_EQ(c.fault_access, IOVM_MAP_READ);
		CHECK_EQ(c.bytes_completed, 8292);
		memmove(want + 4496 + 8092, want + 4196 + 8092, 8292);
		CHECK(!memcmp(buf, want, 8 * 4096));
		CHECK_OK(iovm_domain_unmap(r.dom, at, 2 * 4096));
		CHECK_OK(iovm_domain_unmap(r.dom, IOVM_IOVA(at.addr + 3 * 4096), 5 * 4096));
	}
	free(want);
	rig_close(&r);
}

int main(void)
{
	test_init();
	RUN(overlapping_copy_is_memmove);
	return 0;
}
