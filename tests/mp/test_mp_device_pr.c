/* SPDX-License-Identifier: MIT */
/*
 * test_mp_device_pr.c - holes in a client's own memory on the device: a
 * hole inside a span of several pages faults exactly at the hole, the
 * bytes before it done. And page requests of a device process to the
 * client that owns the address space: a descriptor that blocks on faults and
 * meets a hole in the client's own memory asks the client, whose handler
 * (iovm_rqueue_set_fault_handler(), answered in its reap) maps the page.
 * Without the flag, a handler, or its yes, the descriptor completes with
 * the fault after the bytes before it; a queue closed while the device
 * waits ends the wait. Then 64 clients with holes at one address each,
 * every request answered by its own client.
 */
#include <stdlib.h>

#include "mp_device.h"

/*
 * A hole inside a 2 MiB-aligned range, which the device may map with 2 MiB
 * leaves: a span then holds more than one page, and a write-back runs
 * into the hole partway. The bytes before the hole are done, exactly; no
 * byte after; the fault is at the hole.
 */
TEST(hole_inside_a_large_span)
{
	static const uint32_t holes[] = { 5 * 4096, 6 * 4096 + 0, 300 * 4096 };
	struct iovm_ctx *owner;
	struct child srv;
	struct cl c;
	uint8_t *raw, *big, *heap;
	struct iovm_completion *rec;
	iovm_iova_t ib, ih, ir;

	g_share = share_name("ownbig");
	g_dev = share_name("ownbigdev");
	owner = share_ok(g_share, HEAP);
	srv = start_server();
	c = client_open();
	raw = mmap(NULL, 6 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(raw != MAP_FAILED);
	big = (uint8_t *)(((uintptr_t)raw + (2 << 20) - 1) & ~(uintptr_t)((2 << 20) - 1));
	heap = iovm_dma_zalloc(c.ctx, 64 * 4096, 4096, 0);
	rec = iovm_dma_zalloc(c.ctx, 4096, 4096, 0);
	CHECK(heap && rec);
	CHECK_OK(iovm_rqueue_map(c.q, heap, 64 * 4096, IOVM_MAP_READ | IOVM_MAP_WRITE, &ih));
	CHECK_OK(iovm_rqueue_map(c.q, rec, 4096, IOVM_MAP_READ | IOVM_MAP_WRITE, &ir));
	for (unsigned h = 0; h < sizeof(holes) / sizeof(holes[0]); h++) {
		uint32_t hole = holes[h], start = hole - 3 * 4096 - 1000, len = 6 * 4096;
		struct iovm_completion r;

		memset(big, 0x33, 4 << 20);
		CHECK_OK(iovm_rqueue_map(c.q, big, 4 << 20, IOVM_MAP_READ | IOVM_MAP_WRITE, &ib));
		CHECK_OK(munmap(big + hole, 4096));
		r = run_rec(c.q, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = ib.addr + start, .len = len,
						     .pattern = 0x4444444444444444ull }, rec, ir.addr);
		CHECK_EQ(r.status, IOVM_STATUS_PAGE_FAULT);
		CHECK_EQ(r.fault_addr, ib.addr + hole);
		CHECK_EQ(r.bytes_completed, hole - start);
		CHECK(big[start] == 0x44 && big[hole - 1] == 0x44 && big[hole + 4096] == 0x33);
		r = run_rec(c.q, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = ih.addr, .dst = ib.addr + start + 1,
						     .len = len }, rec, ir.addr);
		CHECK_EQ(r.status, IOVM_STATUS_PAGE_FAULT);
		CHECK_EQ(r.fault_addr, ib.addr + hole);
		CHECK_EQ(r.bytes_completed, hole - start - 1);
		CHECK(big[hole - 1] == 0 && big[hole + 4096] == 0x33);
		CHECK_OK(iovm_rqueue_unmap(c.q, ib, 4 << 20));
		CHECK(mmap(big + hole, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
		      big + hole);
	}
	client_close(&c);
	CHECK_OK(munmap(raw, 6 << 20));
	stop_server(&srv);
	CHECK_OK(iovm_close(owner));
}

/*
 * Page requests: a descriptor that blocks on faults and finds a hole in
 * the client's own memory asks the client, whose handler (answering in its
 * reap) maps the page; the descriptor then goes on. Without the flag, or
 * with a handler that says no, or with none, it completes with the fault.
 */
struct pr_state {
	uint8_t *base;
	unsigned calls;
	uint32_t last_access;
	bool refuse;
};

static int pr_handler(void *arg, void *addr, uint32_t access)
{
	struct pr_state *st = arg;
	uint8_t *page = (uint8_t *)((uintptr_t)addr & ~(uintptr_t)4095);

	st->calls++;
	st->last_access = access;
	if (st->refuse)
		return -EFAULT;
	CHECK(page >= st->base && page < st->base + 4 * 4096);
	CHECK(mmap(page, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == page);
	memset(page, 0x60 + (int)((page - st->base) / 4096), 4096);
	return 0;
}

TEST(page_requests)
{
	struct iovm_ctx *owner;
	struct child srv;
	struct cl c;
	struct pr_state st = { 0 };
	struct iovm_completion *rec, r;
	uint8_t *heap;
	iovm_iova_t io, ih, ir;

	g_share = share_name("ownpr");
	g_dev = share_name("ownprdev");
	owner = share_ok(g_share, HEAP);
	srv = start_server();
	c = client_open();
	st.base = own_pages(4);
	memset(st.base, 0x5f, 4 * 4096);
	heap = iovm_dma_zalloc(c.ctx, 4 * 4096, 4096, 0);
	rec = iovm_dma_zalloc(c.ctx, 4096, 4096, 0);
	CHECK(heap && rec);
	CHECK_OK(iovm_rqueue_map(c.q, st.base, 4 * 4096, IOVM_MAP_READ | IOVM_MAP_WRITE, &io));
	CHECK_OK(iovm_rqueue_map(c.q, heap, 4 * 4096, IOVM_MAP_READ | IOVM_MAP_WRITE, &ih));
	CHECK_OK(iovm_rqueue_map(c.q, rec, 4096, IOVM_MAP_READ | IOVM_MAP_WRITE, &ir));
	CHECK_EQ(iovm_rqueue_set_fault_handler(NULL, pr_handler, &st), -EINVAL);
	/* No handler yet: a blocking descriptor over a hole completes with the fault, after the bytes before it. */
	CHECK_OK(munmap(st.base + 4096, 2 * 4096));
	r = run_rec(c.q, (struct iovm_desc){ .op = IOVM_OP_COPY, .flags = IOVM_DESC_BLOCK_ON_FAULT, .src = io.addr,
						   .dst = ih.addr, .len = 4 * 4096 }, rec, ir.addr);
	CHECK_EQ(r.status, IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(r.fault_reason, IOVM_FAULT_BUS);
	CHECK_EQ(r.fault_addr, io.addr + 4096);
	CHECK_EQ(r.bytes_completed, 4096);
	/* With the handler: not asked unless the descriptor blocks on faults. */
	CHECK_OK(iovm_rqueue_set_fault_handler(c.q, pr_handler, &st));
	r = run_rec(c.q, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = io.addr, .dst = ih.addr, .len = 4 * 4096 },
			  rec, ir.addr);
	CHECK_EQ(r.status, IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(st.calls, 0);
	/* Blocking: each hole is asked for once, mapped by the handler, and copied. */
	memset(heap, 0, 4 * 4096);
	r = run_rec(c.q, (struct iovm_desc){ .op = IOVM_OP_COPY, .flags = IOVM_DESC_BLOCK_ON_FAULT, .src = io.addr,
						   .dst = ih.addr, .len = 4 * 4096 }, rec, ir.addr);
	CHECK_EQ(r.status, IOVM_STATUS_SUCCESS);
	CHECK_EQ(r.bytes_completed, 4 * 4096);
	CHECK_EQ(st.calls, 2);
	CHECK_EQ(st.last_access, IOVM_MAP_READ);
	CHECK(heap[0] == 0x5f && heap[4096] == 0x61 && heap[2 * 4096 + 4095] == 0x62 && heap[3 * 4096] == 0x5f);
	/* A write into a hole: asked for with the write's access; the fill lands in the new page. */
	CHECK_OK(munmap(st.base + 3 * 4096, 4096));
	r = run_rec(c.q, (struct iovm_desc){ .op = IOVM_OP_FILL, .flags = IOVM_DESC_BLOCK_ON_FAULT,
						   .dst = io.addr + 2 * 4096 + 100, .len = 8000,
						   .pattern = 0x0707070707070707ull }, rec, ir.addr);
	CHECK_EQ(r.status, IOVM_STATUS_SUCCESS);
	CHECK_EQ(st.calls, 3);
	CHECK_EQ(st.last_access, IOVM_MAP_WRITE);
	CHECK(st.base[2 * 4096 + 99] == 0x62 && st.base[2 * 4096 + 100] == 7 && st.base[3 * 4096 + 4096 - 93] == 7 &&
	      st.base[3 * 4096 + 4095] == 0x63);
	/* A handler that says no: the fault, after the bytes before the hole. */
	st.refuse = true;
	CHECK_OK(munmap(st.base + 2 * 4096, 4096));
	r = run_rec(c.q, (struct iovm_desc){ .op = IOVM_OP_COMPARE_PATTERN, .flags = IOVM_DESC_BLOCK_ON_FAULT,
						   .src = io.addr + 4096, .len = 3 * 4096, .pattern = 0x6161616161616161ull },
			  rec, ir.addr);
	CHECK_EQ(r.status, IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(r.fault_addr, io.addr + 2 * 4096);
	CHECK_EQ(r.bytes_completed, 4096);
	CHECK_EQ(st.calls, 4);
	/* Removed: not asked any more. */
	CHECK_OK(iovm_rqueue_set_fault_handler(c.q, NULL, NULL));
	r = run_rec(c.q, (struct iovm_desc){ .op = IOVM_OP_CRC32C, .flags = IOVM_DESC_BLOCK_ON_FAULT,
						   .src = io.addr, .len = 4 * 4096 }, rec, ir.addr);
	CHECK_EQ(r.status, IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(st.calls, 4);
	/* A blocking descriptor nobody answers, and the queue closed under it: the close does not hang. */
	CHECK_OK(iovm_rqueue_set_fault_handler(c.q, pr_handler, &st));
	CHECK_OK(iovm_rqueue_submit(c.q, &(struct iovm_desc){ .op = IOVM_OP_COPY, .flags = IOVM_DESC_BLOCK_ON_FAULT,
							       .src = io.addr + 2 * 4096, .dst = ih.addr, .len = 4096 }));
	client_close(&c);
	CHECK_OK(munmap(st.base, 2 * 4096));
	CHECK_OK(munmap(st.base + 3 * 4096, 4096));
	stop_server(&srv);
	CHECK_OK(iovm_close(owner));
}

/*
 * 64 clients on one device process, each with its own memory mapped at
 * the same address in every one of them (they are forked from one
 * parent), half of it unmapped: every copy's page requests go to the
 * client that owns the address space, whose handler maps the page with
 * the client's own byte. Each must find its own bytes only.
 */
static void *many_at; /* the parent's; each client's copy is its own */

static int many_handler(void *arg, void *addr, uint32_t access)
{
	uint8_t me = (uint8_t)(uintptr_t)arg;
	uint8_t *page = (uint8_t *)((uintptr_t)addr & ~(uintptr_t)4095);

	(void)access;
	CHECK(page >= (uint8_t *)many_at && page < (uint8_t *)many_at + 8 * 4096);
	CHECK(mmap(page, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == page);
	memset(page, me, 4096);
	return 0;
}

static void many_own_client(int rd, int wr, void *arg)
{
	uint8_t me = (uint8_t)(uintptr_t)arg;
	struct cl c = client_open();
	uint8_t *own = many_at, *heap = iovm_dma_zalloc(c.ctx, 8 * 4096, 4096, 0);
	iovm_iova_t io, ih;

	CHECK(heap != NULL);
	memset(own, me, 8 * 4096);
	CHECK_OK(iovm_rqueue_map(c.q, own, 8 * 4096, IOVM_MAP_READ | IOVM_MAP_WRITE, &io));
	CHECK_OK(iovm_rqueue_map(c.q, heap, 8 * 4096, IOVM_MAP_READ | IOVM_MAP_WRITE, &ih));
	CHECK_OK(iovm_rqueue_set_fault_handler(c.q, many_handler, arg));
	put64(wr, iovm_rqueue_pasid(c.q));
	get64(rd);
	for (int round = 0; round < 10; round++) {
		for (int pg = round & 1; pg < 8; pg += 2)
			CHECK_OK(munmap(own + pg * 4096, 4096));
		CHECK_EQ(run(c.q, (struct iovm_desc){ .op = IOVM_OP_COPY, .flags = IOVM_DESC_BLOCK_ON_FAULT, .src = io.addr,
						      .dst = ih.addr, .len = 8 * 4096 }), IOVM_STATUS_SUCCESS);
		for (int i = 0; i < 8 * 4096; i++)
			CHECK_MSG(heap[i] == me, "client %u found %#x at %d", me, heap[i], i);
		memset(heap, 0, 8 * 4096);
	}
	client_close(&c);
	put64(wr, 1);
}

TEST(sixty_four_clients_page_requests)
{
	unsigned n = TEST_ASAN || TEST_TSAN ? 16 : 64;
	struct iovm_ctx *owner;
	struct child srv;

	g_share = share_name("ownmany64");
	g_dev = share_name("ownmany64dev");
	owner = share_ok(g_share, HEAP);
	srv = start_server();
	many_at = own_pages(8);
	run_clients(n, many_own_client);
	printf("# %u clients at one address each, their holes filled by their own handlers\n", n);
	stop_server(&srv);
	CHECK_OK(munmap(many_at, 8 * 4096));
	CHECK_EQ(share_info(owner).blocks, 0);
	CHECK_OK(iovm_close(owner));
}

int main(void)
{
	test_init();
	RUN(hole_inside_a_large_span);
	RUN(page_requests);
	RUN(sixty_four_clients_page_requests);
	return 0;
}
