/* SPDX-License-Identifier: MIT */
/*
 * test_attack9_mr_inval.c - the registration lets pages go under an MR
 * mapped on a device queue (iovm/mp.h, iovm_rqueue_map_mr(): "once the
 * pages are unpinned here, no device access reaches them through @mr's
 * mapping; the next asks again"; "after this process's munmap() returns,
 * nothing of the pages is reached, whatever the device mapped"; iovm/reg.h:
 * "From the moment the call returns, no device access through the old
 * registration lands anywhere").
 *
 * How a stale device mapping is seen, though the device reaches memory
 * through the client's memory file (which follows its page tables):
 *  - a pinned MR never takes pages again once invalid: new memory mapped
 *    where its pages were must never be read or written by the device;
 *  - an on-demand MR takes new memory only through a page request, which
 *    finds a read-only page read-only: a device write there must fault;
 *  - a memfd mapped twice: once the registered mapping is unmapped, the
 *    device must never reach the memfd's pages (seen through the alias).
 * Then the same with a thread replacing pages while descriptors run.
 */
#include "attack/attack9_mr.h"

#ifndef MADV_DONTNEED_LOCKED
#define MADV_DONTNEED_LOCKED 24
#endif

#define NP 64 /* pages of the MR: 4 pieces */

static bool need_monitor(struct a9 *r)
{
	return a9_monitor(r);
}

/* Wait (for a hang, not a timing) until the monitor has dealt with what the client did. */
static void settle(struct a9 *r, struct iovm_mr *mr, uint64_t valid_pages)
{
	struct iovm_mr_info info;

	CHECK_OK(iovm_mr_query(mr, &info)); /* waits for the monitor's events in hand */
	(void)r;
	(void)valid_pages;
}

static uint8_t *map_at(void *addr, int prot, uint8_t marker)
{
	uint8_t *p = mmap(addr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

	CHECK(p == addr);
	memset(p, marker, 4096);
	if (prot != (PROT_READ | PROT_WRITE))
		CHECK_OK(mprotect(p, 4096, prot));
	return p;
}

/*
 * A pinned MR, all of it mapped on the device; a page unmapped, and new
 * memory mapped there: the device must fault at that page, reading and
 * writing, and never touch the new memory.
 */
TEST(pinned_munmap_then_new_memory)
{
	struct a9 r;
	struct iovm_mr *mr;
	uint8_t *app = a9_pages_64k(NP);
	uint8_t *p = app + 37 * 4096;
	struct iovm_completion c;
	iovm_iova_t io;

	a9_open(&r, "a9pinun", "", 0);
	memset(app, 0x21, NP * 4096);
	CHECK_OK(iovm_mr_reg(r.dom, app, NP * 4096, IOVM_ACCESS_LOCAL_WRITE, &mr));
	if (!need_monitor(&r)) {
		CHECK_OK(iovm_mr_dereg(mr));
		a9_close(&r, true);
		SKIP("no memory monitor (userfaultfd): invalidations are not seen");
	}
	CHECK_OK(iovm_rqueue_map_mr(r.q, mr, IOVM_MAP_READ | IOVM_MAP_WRITE, &io));
	c = a9_go(&r, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = io.addr, .len = NP * 4096, .pattern = 0x2222222222222222ull });
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	CHECK_OK(munmap(p, 4096));
	map_at(p, PROT_READ | PROT_WRITE, 0xcd);
	settle(&r, mr, 0);
	c = a9_go(&r, (struct iovm_desc){ .op = IOVM_OP_FILL, .flags = IOVM_DESC_BLOCK_ON_FAULT, .dst = io.addr + 36 * 4096,
					  .len = 3 * 4096, .pattern = 0x4444444444444444ull });
	CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(c.fault_addr, io.addr + 37 * 4096);
	CHECK_EQ(c.bytes_completed, 4096);
	CHECK(a9_all(p, 0xcd, 4096));
	memset(r.heap, 0, 3 * 4096);
	c = a9_go(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = io.addr + 37 * 4096, .dst = r.ih.addr, .len = 4096 });
	CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
	CHECK(a9_all(r.heap, 0, 4096));
	CHECK(a9_all(p + 4096, 0x22, 4096));
	CHECK(a9_all(p - 4096, 0x44, 4096));
	CHECK_OK(iovm_rqueue_unmap_mr(r.q, mr));
	CHECK_OK(iovm_mr_dereg(mr));
	a9_close(&r, true);
	CHECK_OK(munmap(app, NP * 4096));
}

/*
 * An on-demand MR, mapped on the device; a page unmapped and mapped again
 * read-only: the device's write there asks again, finds it read-only, and
 * faults: the new page keeps its bytes. A read reaches the new bytes.
 */
TEST(odp_munmap_then_readonly_memory)
{
	struct a9 r;
	struct iovm_mr *mr;
	uint8_t *app = a9_pages_64k(NP);
	uint8_t *p = app + 21 * 4096;
	struct iovm_completion c;
	struct iovm_reg_stats s0;
	iovm_iova_t io;

	a9_open(&r, "a9odpro", "", 0);
	memset(app, 0x21, NP * 4096);
	CHECK_OK(iovm_mr_reg(r.dom, app, NP * 4096, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND, &mr));
	if (!need_monitor(&r)) {
		CHECK_OK(iovm_mr_dereg(mr));
		a9_close(&r, true);
		SKIP("no memory monitor (userfaultfd): invalidations are not seen");
	}
	CHECK_OK(iovm_rqueue_map_mr(r.q, mr, IOVM_MAP_READ | IOVM_MAP_WRITE, &io));
	c = a9_go(&r, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = io.addr, .len = NP * 4096, .pattern = 0x2222222222222222ull });
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	CHECK_OK(munmap(p, 4096));
	map_at(p, PROT_READ, 0xcd);
	settle(&r, mr, 0);
	s0 = a9_stats(r.ctx);
	c = a9_go(&r, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = io.addr + 16 * 4096, .len = 16 * 4096,
					  .pattern = 0x4444444444444444ull });
	printf("# after munmap + read-only mmap: fill status %u bytes %u, requests %llu, new page[0] %#x\n", c.status,
	       c.bytes_completed, (unsigned long long)(a9_stats(r.ctx).odp_faults - s0.odp_faults), p[0]);
	CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(c.fault_addr, io.addr + 21 * 4096);
	CHECK(a9_all(p, 0xcd, 4096));
	c = a9_go(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = io.addr + 21 * 4096, .dst = r.ih.addr, .len = 4096 });
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	CHECK(a9_all(r.heap, 0xcd, 4096));
	/*
	 * The device asked the client for the new page, not a mapping it kept:
	 * the read of it is a page request answered (the write before it was
	 * refused at the client, read-only; since 2026-12-06 a drop unmaps
	 * only page 21, so the fill asked about that page alone).
	 */
	CHECK(a9_stats(r.ctx).odp_faults > s0.odp_faults);
	CHECK_OK(iovm_rqueue_unmap_mr(r.q, mr));
	CHECK_OK(iovm_mr_dereg(mr));
	a9_close(&r, true);
	CHECK_OK(munmap(app, NP * 4096));
}

/* Control: an on-demand MR with a read-only page from the start: a device write there faults. */
TEST(odp_readonly_page_from_start)
{
	struct a9 r;
	struct iovm_mr *mr;
	uint8_t *app = a9_pages_64k(NP);
	struct iovm_completion c;
	iovm_iova_t io;

	a9_open(&r, "a9rostart", "", 0);
	memset(app, 0x21, NP * 4096);
	CHECK_OK(mprotect(app + 21 * 4096, 4096, PROT_READ));
	CHECK_OK(iovm_mr_reg(r.dom, app, NP * 4096, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND, &mr));
	CHECK_OK(iovm_rqueue_map_mr(r.q, mr, IOVM_MAP_READ | IOVM_MAP_WRITE, &io));
	c = a9_go(&r, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = io.addr + 16 * 4096, .len = 16 * 4096,
					  .pattern = 0x4444444444444444ull });
	printf("# read-only page in an ODP MR: fill status %u bytes %u fault %#llx, page[0] %#x\n", c.status,
	       c.bytes_completed, (unsigned long long)(c.fault_addr - io.addr), app[21 * 4096]);
	CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(c.fault_addr, io.addr + 21 * 4096);
	CHECK(a9_all(app + 21 * 4096, 0x21, 4096));
	CHECK_OK(iovm_rqueue_unmap_mr(r.q, mr));
	CHECK_OK(iovm_mr_dereg(mr));
	a9_close(&r, true);
	CHECK_OK(munmap(app, NP * 4096));
}

/*
 * A read first, beside a read-only page of the same chunk: the device's
 * later write to the writable pages must still land. Mapping the read's
 * whole chunk read-only would fault it for good (a permission fault asks
 * nothing), as a page replaced under a read once did in race_odp_replace.
 */
TEST(odp_read_beside_readonly_then_write)
{
	struct a9 r;
	struct iovm_mr *mr;
	uint8_t *app = a9_pages_64k(NP);
	struct iovm_completion c;
	iovm_iova_t io;

	a9_open(&r, "a9robeside", "", 0);
	memset(app, 0x21, NP * 4096);
	CHECK_OK(mprotect(app + 21 * 4096, 4096, PROT_READ));
	CHECK_OK(iovm_mr_reg(r.dom, app, NP * 4096, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND, &mr));
	CHECK_OK(iovm_rqueue_map_mr(r.q, mr, IOVM_MAP_READ | IOVM_MAP_WRITE, &io));
	/* Read every page of the chunk, the read-only one included. */
	c = a9_go(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = io.addr + 16 * 4096, .dst = r.ih.addr, .len = 16 * 4096 });
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	CHECK(a9_all(r.heap, 0x21, 16 * 4096));
	for (int pg = 16; pg < 32; pg++) {
		c = a9_go(&r, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = io.addr + (uint64_t)pg * 4096, .len = 4096,
						  .pattern = 0x4444444444444444ull });
		if (pg == 21) {
			CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
			CHECK_EQ(c.fault_addr, io.addr + 21 * 4096);
			CHECK(a9_all(app + 21 * 4096, 0x21, 4096));
		} else {
			CHECK_MSG(c.status == IOVM_STATUS_SUCCESS, "page %d: status %u, reason %u", pg, c.status,
				  c.fault_reason);
			CHECK(a9_all(app + pg * 4096, 0x44, 4096));
		}
	}
	CHECK_OK(iovm_rqueue_unmap_mr(r.q, mr));
	CHECK_OK(iovm_mr_dereg(mr));
	a9_close(&r, true);
	CHECK_OK(munmap(app, NP * 4096));
}

/* mmap(MAP_FIXED) of a read-only page over an on-demand MR's mapped page: the device's write faults there. */
TEST(odp_map_fixed_readonly_over)
{
	struct a9 r;
	struct iovm_mr *mr;
	uint8_t *app = a9_pages_64k(NP);
	uint8_t *p = app + 50 * 4096;
	struct iovm_completion c;
	iovm_iova_t io;

	a9_open(&r, "a9fixed", "", 0);
	memset(app, 0x21, NP * 4096);
	CHECK_OK(iovm_mr_reg(r.dom, app, NP * 4096, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND, &mr));
	if (!need_monitor(&r)) {
		CHECK_OK(iovm_mr_dereg(mr));
		a9_close(&r, true);
		SKIP("no memory monitor (userfaultfd): invalidations are not seen");
	}
	CHECK_OK(iovm_rqueue_map_mr(r.q, mr, IOVM_MAP_READ | IOVM_MAP_WRITE, &io));
	c = a9_go(&r, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = io.addr, .len = NP * 4096, .pattern = 0x2222222222222222ull });
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	CHECK(mmap(p, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == p);
	settle(&r, mr, 0);
	c = a9_go(&r, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = io.addr + 48 * 4096, .len = 16 * 4096,
					  .pattern = 0x4444444444444444ull });
	CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(c.fault_addr, io.addr + 50 * 4096);
	CHECK(a9_all(p, 0, 4096));
	CHECK_OK(iovm_rqueue_unmap_mr(r.q, mr));
	CHECK_OK(iovm_mr_dereg(mr));
	a9_close(&r, true);
	CHECK_OK(munmap(app, NP * 4096));
}

/*
 * A memfd mapped twice; the MR over one mapping, all of it on the device.
 * That mapping unmapped: the device reaches nothing of the memfd's pages
 * (seen through the other mapping), reading or writing.
 */
static void memfd_alias(uint32_t access)
{
	struct a9 r;
	struct iovm_mr *mr;
	struct iovm_mr_info info;
	int fd = memfd_create("a9alias", 0);
	uint8_t *a, *b;
	struct iovm_completion c;
	iovm_iova_t io;

	CHECK(fd >= 0);
	CHECK_OK(ftruncate(fd, NP * 4096));
	a = a9_pages_64k(NP);
	CHECK(mmap(a, NP * 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) == a);
	b = mmap(NULL, NP * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(b != MAP_FAILED);
	memset(b, 0x21, NP * 4096);
	a9_open(&r, "a9alias", "", 0);
	CHECK_OK(iovm_mr_reg(r.dom, a, NP * 4096, access, &mr));
	CHECK_OK(iovm_mr_query(mr, &info));
	printf("# memfd MR monitored: %d\n", info.monitored);
	CHECK_OK(iovm_rqueue_map_mr(r.q, mr, IOVM_MAP_READ | IOVM_MAP_WRITE, &io));
	c = a9_go(&r, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = io.addr, .len = NP * 4096, .pattern = 0x2222222222222222ull });
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	CHECK(a9_all(b, 0x22, NP * 4096));
	CHECK_OK(munmap(a + 8 * 4096, 40 * 4096));
	memset(b, 0x77, NP * 4096);
	c = a9_go(&r, (struct iovm_desc){ .op = IOVM_OP_FILL, .flags = IOVM_DESC_BLOCK_ON_FAULT, .dst = io.addr,
					  .len = NP * 4096, .pattern = 0x4444444444444444ull });
	CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(c.fault_addr, io.addr + 8 * 4096);
	CHECK(a9_all(b, 0x44, 8 * 4096));
	CHECK(a9_all(b + 8 * 4096, 0x77, (NP - 8) * 4096));
	memset(r.heap, 0, 4096);
	c = a9_go(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = io.addr + 20 * 4096, .dst = r.ih.addr, .len = 4096 });
	CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
	CHECK(a9_all(r.heap, 0, 4096));
	/* beyond the hole, the rest is still the memfd's, through the MR */
	c = a9_go(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = io.addr + 50 * 4096, .dst = r.ih.addr, .len = 4096 });
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	CHECK(a9_all(r.heap, 0x77, 4096));
	CHECK_OK(iovm_rqueue_unmap_mr(r.q, mr));
	CHECK_OK(iovm_mr_dereg(mr));
	a9_close(&r, true);
	CHECK_OK(munmap(a, 8 * 4096));
	CHECK_OK(munmap(a + 48 * 4096, 16 * 4096));
	CHECK_OK(munmap(b, NP * 4096));
	close(fd);
}

TEST(memfd_alias_odp)
{
	memfd_alias(IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND);
}

TEST(memfd_alias_pinned)
{
	memfd_alias(IOVM_ACCESS_LOCAL_WRITE);
}

/* MADV_DONTNEED on an on-demand MR's mapped pages: the device reads the zeros, after asking again. */
TEST(odp_dontneed_reads_zeros)
{
	struct a9 r;
	struct iovm_mr *mr;
	uint8_t *app = a9_pages_64k(NP);
	struct iovm_completion c;
	struct iovm_reg_stats s0;
	iovm_iova_t io;

	a9_open(&r, "a9dontn", "", 0);
	memset(app, 0x21, NP * 4096);
	CHECK_OK(iovm_mr_reg(r.dom, app, NP * 4096, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND, &mr));
	if (!need_monitor(&r)) {
		CHECK_OK(iovm_mr_dereg(mr));
		a9_close(&r, true);
		SKIP("no memory monitor (userfaultfd): invalidations are not seen");
	}
	CHECK_OK(iovm_rqueue_map_mr(r.q, mr, IOVM_MAP_READ | IOVM_MAP_WRITE, &io));
	c = a9_go(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = io.addr, .dst = r.ih.addr, .len = NP * 4096 });
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	CHECK_OK(madvise(app + 17 * 4096, 30 * 4096, MADV_DONTNEED));
	s0 = a9_stats(r.ctx);
	c = a9_go(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = io.addr, .dst = r.ih.addr, .len = NP * 4096 });
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	CHECK(a9_all(r.heap, 0x21, 17 * 4096));
	CHECK(a9_all(r.heap + 17 * 4096, 0, 30 * 4096));
	CHECK(a9_all(r.heap + 47 * 4096, 0x21, 17 * 4096));
	/* 17..47 touch pieces 1 and 2 (16..31, 32..47): both asked again */
	CHECK(a9_stats(r.ctx).odp_faults - s0.odp_faults >= 2);
	CHECK_OK(iovm_rqueue_unmap_mr(r.q, mr));
	CHECK_OK(iovm_mr_dereg(mr));
	a9_close(&r, true);
	CHECK_OK(munmap(app, NP * 4096));
}

/* MADV_DONTNEED_LOCKED on a pinned MR: the pages are invalid: the device faults, and never touches the new zero pages. */
TEST(pinned_dontneed_locked)
{
	struct a9 r;
	struct iovm_mr *mr;
	uint8_t *app = a9_pages_64k(NP);
	struct iovm_completion c;
	iovm_iova_t io;

	a9_open(&r, "a9dnl", "", 0);
	memset(app, 0x21, NP * 4096);
	CHECK_OK(iovm_mr_reg(r.dom, app, NP * 4096, IOVM_ACCESS_LOCAL_WRITE, &mr));
	if (!need_monitor(&r)) {
		CHECK_OK(iovm_mr_dereg(mr));
		a9_close(&r, true);
		SKIP("no memory monitor (userfaultfd): invalidations are not seen");
	}
	CHECK_OK(iovm_rqueue_map_mr(r.q, mr, IOVM_MAP_READ | IOVM_MAP_WRITE, &io));
	c = a9_go(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = io.addr, .dst = r.ih.addr, .len = NP * 4096 });
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	if (madvise(app + 33 * 4096, 4096, MADV_DONTNEED_LOCKED)) {
		CHECK_OK(iovm_rqueue_unmap_mr(r.q, mr));
		CHECK_OK(iovm_mr_dereg(mr));
		a9_close(&r, true);
		SKIP_CASE("no MADV_DONTNEED_LOCKED in this kernel");
	}
	memset(app + 33 * 4096, 0xcd, 4096);
	settle(&r, mr, 0);
	c = a9_go(&r, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = io.addr + 32 * 4096, .len = 4 * 4096, .pattern = 0 });
	CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(c.fault_addr, io.addr + 33 * 4096);
	CHECK(a9_all(app + 33 * 4096, 0xcd, 4096));
	c = a9_go(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = io.addr + 33 * 4096, .dst = r.ih.addr, .len = 4096 });
	CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
	CHECK(!a9_all(r.heap, 0xcd, 4096));
	CHECK_OK(iovm_rqueue_unmap_mr(r.q, mr));
	CHECK_OK(iovm_mr_dereg(mr));
	a9_close(&r, true);
	CHECK_OK(munmap(app, NP * 4096));
}

/* mremap() moves a pinned MR's page away; new memory at the old address: the device faults there, and the moved page is not reached either. */
TEST(pinned_mremap_away)
{
	struct a9 r;
	struct iovm_mr *mr;
	uint8_t *app = a9_pages_64k(NP);
	uint8_t *dst = a9_pages_64k(1), *p = app + 40 * 4096;
	struct iovm_completion c;
	iovm_iova_t io;

	a9_open(&r, "a9mrem", "", 0);
	memset(app, 0x21, NP * 4096);
	CHECK_OK(iovm_mr_reg(r.dom, app, NP * 4096, IOVM_ACCESS_LOCAL_WRITE, &mr));
	if (!need_monitor(&r)) {
		CHECK_OK(iovm_mr_dereg(mr));
		a9_close(&r, true);
		SKIP("no memory monitor (userfaultfd): invalidations are not seen");
	}
	CHECK_OK(iovm_rqueue_map_mr(r.q, mr, IOVM_MAP_READ | IOVM_MAP_WRITE, &io));
	c = a9_go(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = io.addr, .dst = r.ih.addr, .len = NP * 4096 });
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	CHECK(mremap(p, 4096, 4096, MREMAP_MAYMOVE | MREMAP_FIXED, dst) == dst);
	map_at(p, PROT_READ | PROT_WRITE, 0xcd);
	settle(&r, mr, 0);
	c = a9_go(&r, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = io.addr + 39 * 4096, .len = 3 * 4096, .pattern = 0 });
	CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(c.fault_addr, io.addr + 40 * 4096);
	CHECK(a9_all(p, 0xcd, 4096));
	CHECK(a9_all(dst, 0x21, 4096));
	CHECK_OK(iovm_rqueue_unmap_mr(r.q, mr));
	CHECK_OK(iovm_mr_dereg(mr));
	a9_close(&r, true);
	CHECK_OK(munmap(app, NP * 4096));
	CHECK_OK(munmap(dst, 4096));
}

/*
 * The race: descriptors run over a pinned MR from the page a thread is
 * about to replace (munmap, then new memory with a marker). Once the
 * munmap returned, the device must never write the new memory, nor read
 * its marker.
 */
struct racer {
	uint8_t *app;
	_Atomic int next;   /* page to replace, set by main */
	_Atomic int done;   /* page replaced */
	_Atomic int stop;
};

static void *racer_fn(void *arg)
{
	struct racer *x = arg;

	for (;;) {
		int pg;

		while ((pg = atomic_load(&x->next)) == atomic_load(&x->done) && !atomic_load(&x->stop))
			sched_yield();
		if (atomic_load(&x->stop))
			return NULL;
		CHECK_OK(munmap(x->app + pg * 4096, 4096));
		map_at(x->app + pg * 4096, PROT_READ | PROT_WRITE, 0xcd);
		atomic_store(&x->done, pg);
	}
}

static void race_replace(uint32_t access, const char *tag)
{
	struct a9 r;
	struct iovm_mr *mr;
	const int np = 256;
	uint8_t *app = a9_pages_64k(np);
	struct racer x = { .app = app, .next = 0, .done = 0 };
	pthread_t th;
	iovm_iova_t io;
	unsigned wrote = 0, read_marker = 0;
	uint64_t tag_n = 0;

	a9_open(&r, tag, "", 0);
	memset(app, 0x21, np * 4096);
	CHECK_OK(iovm_mr_reg(r.dom, app, np * 4096, access, &mr));
	if (!need_monitor(&r)) {
		CHECK_OK(iovm_mr_dereg(mr));
		a9_close(&r, true);
		SKIP_CASE("no memory monitor (userfaultfd): invalidations are not seen");
	}
	CHECK_OK(iovm_rqueue_map_mr(r.q, mr, IOVM_MAP_READ | IOVM_MAP_WRITE, &io));
	CHECK_OK(pthread_create(&th, NULL, racer_fn, &x));
	for (int pg = 1; pg < np - 1; pg++) {
		int inflight = 0;
		bool go = false;

		/* Keep up to 8 descriptors in flight over [pg, pg+1]: fills and reads. */
		for (int round = 0; round < 40; round++) {
			while (inflight < 8) {
				struct iovm_desc d = { .tag = ++tag_n };

				if (tag_n % 2) {
					d.op = IOVM_OP_FILL;
					d.dst = io.addr + (uint64_t)pg * 4096;
					d.len = 2 * 4096;
					d.pattern = 0x4444444444444444ull;
				} else {
					d.op = IOVM_OP_COPY;
					d.src = io.addr + (uint64_t)pg * 4096;
					d.dst = r.ih.addr + (tag_n / 2 % 8) * 8192;
					d.len = 2 * 4096;
				}
				CHECK_OK(iovm_rqueue_submit(r.q, &d));
				inflight++;
			}
			if (round == 10 && !go) {
				atomic_store(&x.next, pg);
				go = true;
			}
			a9_reap_some(r.q, &inflight);
		}
		while (atomic_load(&x.done) != pg) {
			a9_reap_some(r.q, &inflight);
			usleep(10);
		}
		/* Drain, then look: the new page must hold its marker, the heap no marker. */
		while (inflight)
			a9_reap_some(r.q, &inflight);
		/* and one more round after the replacement, every one must fault at pg */
		for (int k = 0; k < 4; k++) {
			struct iovm_completion c = a9_go(&r, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = io.addr + (uint64_t)pg * 4096,
										 .len = 2 * 4096, .pattern = 0x5555555555555555ull });
			if (access & IOVM_ACCESS_ON_DEMAND)
				CHECK_MSG(c.status == IOVM_STATUS_SUCCESS,
					  "page %d, after its replacement: status %u, reason %u at %#llx, %u bytes done", pg,
					  c.status, c.fault_reason, (unsigned long long)c.fault_addr, c.bytes_completed);
			else {
				CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
				CHECK_EQ(c.fault_addr, io.addr + (uint64_t)pg * 4096);
			}
		}
		if (!(access & IOVM_ACCESS_ON_DEMAND)) {
			if (!a9_all(app + pg * 4096, 0xcd, 4096))
				wrote++;
			for (int h = 0; h < 16; h++)
				if (memchr(r.heap + h * 4096, 0xcd, 4096))
					read_marker++;
			memset(r.heap, 0, 16 * 4096);
		}
	}
	atomic_store(&x.stop, 1);
	pthread_join(th, NULL);
	printf("# %s: %d pages replaced under descriptors: new memory written %u times, marker read %u times\n", tag,
	       np - 2, wrote, read_marker);
	CHECK_EQ(wrote, 0);
	CHECK_EQ(read_marker, 0);
	CHECK_OK(iovm_rqueue_unmap_mr(r.q, mr));
	CHECK_OK(iovm_mr_dereg(mr));
	a9_close(&r, true);
	CHECK_OK(munmap(app, np * 4096));
}

TEST(race_pinned_replace)
{
	race_replace(IOVM_ACCESS_LOCAL_WRITE, "a9racep");
}

TEST(race_odp_replace)
{
	/*
	 * Failed in CI under load (2026-12-07): a read during a replacement
	 * saw the page gone, then pinned the new one and mapped it read-only
	 * for good (odp_read_beside_readonly_then_write shows it at once).
	 * The device says why it faults.
	 */
	g_fault_reasons = true;
	race_replace(IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND, "a9raceo");
}

int main(void)
{
	test_init();
	A9_RUN(pinned_munmap_then_new_memory);
	A9_RUN(odp_readonly_page_from_start);
	A9_RUN(odp_munmap_then_readonly_memory);
	A9_RUN(odp_read_beside_readonly_then_write);
	A9_RUN(odp_map_fixed_readonly_over);
	A9_RUN(memfd_alias_odp);
	A9_RUN(memfd_alias_pinned);
	A9_RUN(odp_dontneed_reads_zeros);
	A9_RUN(pinned_dontneed_locked);
	A9_RUN(pinned_mremap_away);
	A9_RUN(race_pinned_replace);
	A9_RUN(race_odp_replace);
	return 0;
}
