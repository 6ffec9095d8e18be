/* SPDX-License-Identifier: MIT */
/*
 * test_attack_cbuf.c - attacks the common buffer and coherency promises
 * of mem.h: size and flag checks, the pages list (only @max filled),
 * zeroed memory, a coherent buffer seen by the device at once, and a
 * non-coherent one whose CPU writes reach the device only after
 * iovm_dma_sync_for_device() and whose device writes reach the CPU only
 * after iovm_dma_sync_for_cpu(), with the oracle counting a missing sync.
 */
#include "attack.h"

#define RW (IOVM_MAP_READ | IOVM_MAP_WRITE)

static struct rig r;

static uint64_t map_cbuf(struct iovm_cbuf *cb, unsigned npages)
{
	iovm_pa_t pages[64];
	unsigned n;
	iovm_iova_t io = IOVM_IOVA_ANY;

	CHECK_OK(iovm_cbuf_pages(cb, pages, 64, &n));
	CHECK_EQ(n, npages);
	CHECK_OK(iovm_domain_map_pages(r.dom, &io, pages, n, RW));
	return io.addr;
}

static uint64_t sync_errors(void)
{
	struct iovm_mem_stats st;

	CHECK_OK(iovm_mem_stats(r.ctx, &st));
	return st.oracle_sync_errors;
}

TEST(cbuf_arguments_and_pages)
{
	struct iovm_cbuf *cb;
	iovm_pa_t pages[8];
	unsigned n = 0;

	CHECK_RET(iovm_cbuf_alloc(NULL, 4096, 0, &cb), -EINVAL);
	CHECK_RET(iovm_cbuf_alloc(r.ctx, 4096, 0, NULL), -EINVAL);
	CHECK_RET(iovm_cbuf_alloc(r.ctx, 0, 0, &cb), -EINVAL);
	CHECK_RET(iovm_cbuf_alloc(r.ctx, (256u << 20) + 1, 0, &cb), -EINVAL);
	CHECK_RET(iovm_cbuf_alloc(r.ctx, SIZE_MAX, 0, &cb), -EINVAL);
	CHECK_RET(iovm_cbuf_alloc(r.ctx, 4096, 1u << 1, &cb), -EINVAL);
	CHECK_RET(iovm_cbuf_alloc(r.ctx, 4096, UINT32_MAX, &cb), -EINVAL);
	CHECK_RET(iovm_cbuf_free(NULL), -EINVAL);
	CHECK_NULL_ERRNO(iovm_cbuf_ptr(NULL), EINVAL);
	CHECK_RET(iovm_cbuf_pages(NULL, pages, 8, &n), -EINVAL);
	/* 5 pages for 4097*4 bytes; only @max filled, @n says all. */
	CHECK_RET(iovm_cbuf_alloc(r.ctx, 4 * 4096 + 1, 0, &cb), 0);
	for (int i = 0; i < 8; i++)
		pages[i] = IOVM_PA(0x5a5a5a5a);
	CHECK_RET(iovm_cbuf_pages(cb, pages, 2, &n), 0);
	EXPECT_EQ(n, 5);
	for (int i = 2; i < 8; i++)
		EXPECT_MSG(pages[i].addr == 0x5a5a5a5a, "cbuf_pages wrote past max at %d", i);
	CHECK_RET(iovm_cbuf_pages(cb, pages, 0, &n), 0);
	EXPECT_EQ(n, 5);
	uint8_t *v = iovm_cbuf_ptr(cb);
	CHECK(v != NULL);
	CHECK(all_bytes(v, 5 * 4096, 0));
	CHECK_OK(iovm_cbuf_free(cb));
	/* The largest allowed. */
	int ret = iovm_cbuf_alloc(r.ctx, 256u << 20, 0, &cb);
	CHECK(ret == 0 || ret == -ENOMEM);
	if (!ret)
		CHECK_OK(iovm_cbuf_free(cb));
}

TEST(sync_arguments)
{
	uint8_t *h = iovm_dma_alloc(r.ctx, 4096, 64, 0);
	static uint8_t not_ours[128];

	CHECK(h != NULL);
	CHECK_RET(iovm_dma_sync_for_device(r.ctx, h, 4096), 0);
	CHECK_RET(iovm_dma_sync_for_cpu(r.ctx, h, 4096), 0);
	CHECK_RET(iovm_dma_sync_for_device(r.ctx, not_ours, 64), -ENOENT);
	CHECK_RET(iovm_dma_sync_for_cpu(r.ctx, not_ours, 64), -ENOENT);
	CHECK_RET(iovm_dma_sync_for_device(NULL, h, 64), -EINVAL);
	CHECK_RET(iovm_dma_sync_for_device(r.ctx, NULL, 64), -EINVAL);
	/* A range that wraps the address space. */
	CHECK_RET(iovm_dma_sync_for_device(r.ctx, h, SIZE_MAX), -EINVAL);
	CHECK_OK(iovm_dma_free(r.ctx, h));
}

TEST(a_coherent_buffer_is_seen_at_once)
{
	struct iovm_cbuf *cb;
	uint8_t *out = iovm_dma_zalloc(r.ctx, 16384, 4096, 0);

	CHECK_OK(iovm_cbuf_alloc(r.ctx, 16384, 0, &cb));
	uint8_t *v = iovm_cbuf_ptr(cb);
	uint64_t io = map_cbuf(cb, 4);
	uint64_t before = sync_errors();
	memset(v, 0x4b, 16384);
	struct iovm_completion c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = io,
		.dst = iova_of(&r, out), .len = 16384 });
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	EXPECT(all_bytes(out, 16384, 0x4b));
	c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = io + 100, .len = 1000,
		.pattern = 0x6c6c6c6c6c6c6c6cull });
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	EXPECT(all_bytes(v + 100, 1000, 0x6c) && all_bytes(v, 100, 0x4b) && all_bytes(v + 1100, 16384 - 1100, 0x4b));
	EXPECT_EQ(sync_errors(), before);
	CHECK_OK(iovm_domain_unmap(r.dom, IOVM_IOVA(io), 16384));
	CHECK_OK(iovm_cbuf_free(cb));
	CHECK_OK(iovm_dma_free(r.ctx, out));
}

TEST(a_noncoherent_buffer_needs_its_syncs)
{
	struct iovm_cbuf *cb;
	uint8_t *out = iovm_dma_zalloc(r.ctx, 16384, 4096, 0);

	CHECK_OK(iovm_cbuf_alloc(r.ctx, 16384, IOVM_CBUF_NONCOHERENT, &cb));
	uint8_t *v = iovm_cbuf_ptr(cb);
	uint64_t io = map_cbuf(cb, 4);
	/* The device owns it at creation: hand it to the CPU first. */
	CHECK_OK(iovm_dma_sync_for_cpu(r.ctx, v, 16384));
	uint64_t e0 = sync_errors();
	memset(v, 0x21, 16384);
	/* No sync: the device reads memory, which still holds zeroes; the oracle counts it. */
	struct iovm_completion c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = io,
		.dst = iova_of(&r, out), .len = 4096 });
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	EXPECT_MSG(all_bytes(out, 4096, 0), "the device saw CPU writes without a sync_for_device");
	uint64_t e1 = sync_errors();
	EXPECT_MSG(e1 > e0, "the oracle counted no missing sync");
	/* Clean one byte: its whole 64-byte line reaches memory, the next line does not. */
	CHECK_OK(iovm_dma_sync_for_device(r.ctx, v + 130, 1));
	c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = io, .dst = iova_of(&r, out), .len = 256 });
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	EXPECT_MSG(all_bytes(out + 128, 64, 0x21) && all_bytes(out, 128, 0) && all_bytes(out + 192, 64, 0),
		   "a 1-byte sync did not clean exactly its line");
	/* Everything: the device sees it all, no new error. */
	CHECK_OK(iovm_dma_sync_for_device(r.ctx, v, 16384));
	uint64_t e2 = sync_errors();
	c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = io, .dst = iova_of(&r, out), .len = 16384 });
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	EXPECT(all_bytes(out, 16384, 0x21));
	EXPECT_MSG(sync_errors() == e2, "a read after sync_for_device counted as a missing sync");
	/* The device writes; the CPU sees it only after sync_for_cpu. */
	c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = io + 4096, .len = 4096,
		.pattern = 0x7e7e7e7e7e7e7e7eull });
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	EXPECT_MSG(all_bytes(v + 4096, 4096, 0x21), "the CPU saw device writes before sync_for_cpu");
	CHECK_OK(iovm_dma_sync_for_cpu(r.ctx, v + 4096, 4096));
	EXPECT_MSG(all_bytes(v + 4096, 4096, 0x7e), "after sync_for_cpu the CPU does not see the device's writes");
	EXPECT(all_bytes(v, 4096, 0x21) && all_bytes(v + 8192, 8192, 0x21));
	CHECK_OK(iovm_domain_unmap(r.dom, IOVM_IOVA(io), 16384));
	CHECK_OK(iovm_cbuf_free(cb));
	CHECK_OK(iovm_dma_free(r.ctx, out));
}

/* The missing syncs are on purpose: keep their log lines out of the output. */
static void quiet(void *arg, enum iovm_log_level level, const char *msg)
{
	(void)arg;
	(void)level;
	(void)msg;
}

int main(void)
{
	test_init();
	iovm_log_set_handler(quiet, NULL);
	rig_open(&r, "oracle=on,log_level=error", NULL, IOVM_QUEUE_POLLED);
	RUN(cbuf_arguments_and_pages);
	RUN(sync_arguments);
	RUN(a_coherent_buffer_is_seen_at_once);
	RUN(a_noncoherent_buffer_needs_its_syncs);
	/* The syncs the tests skipped on purpose are counted; no domain violation. */
	check_domain_clean(r.dom);
	rig_close(&r);
	return attack_status();
}
