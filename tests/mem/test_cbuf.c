/* SPDX-License-Identifier: MIT */
/*
 * test_cbuf.c - common buffers through the software engine: a ring made of
 * scattered 4 KiB pages behind one contiguous mapping, reached by the
 * device at consecutive IOVAs; non-coherent buffers, where the device sees
 * the CPU's writes only after a sync for the device and the CPU sees the
 * device's only after a sync for the CPU, and the oracle reports every
 * missing sync, for data and for the completion records the engine writes.
 */
#include "dev/dev_util.h"

static const char *opts = "page_size=4K,host_pa=off,oracle=on";

static uint8_t copy(struct rig *r, uint64_t src, uint64_t dst, uint32_t len)
{
	return run_desc(r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = src, .dst = dst, .len = len }).status;
}

static uint64_t sync_errors(struct iovm_ctx *ctx)
{
	struct iovm_mem_stats st;

	CHECK_OK(iovm_mem_stats(ctx, &st));
	return st.oracle_sync_errors;
}

/* Map the buffer's pages at consecutive IOVAs of the rig's domain. */
static uint64_t map_cbuf(struct rig *r, struct iovm_cbuf *cb)
{
	iovm_pa_t pages[64];
	iovm_iova_t iova = IOVM_IOVA_ANY;
	unsigned n;

	CHECK_OK(iovm_cbuf_pages(cb, pages, 64, &n));
	CHECK(n <= 64);
	CHECK_OK(iovm_domain_map_pages(r->dom, &iova, pages, n, IOVM_MAP_READ | IOVM_MAP_WRITE));
	return iova.addr;
}

TEST(ring_from_scattered_pages)
{
	struct iovm_cbuf *single[32], *ring;
	iovm_pa_t pages[16];
	uint8_t *p, *dst;
	uint64_t iova;
	bool scattered = false;
	struct rig r;
	unsigned n;

	rig_open(&r, opts, NULL, IOVM_QUEUE_POLLED);
	/* Pages taken one by one, every other one given back: the holes are what a ring gets. */
	for (int i = 0; i < 32; i++)
		CHECK_OK(iovm_cbuf_alloc(r.ctx, 4096, 0, &single[i]));
	for (int i = 0; i < 32; i += 2)
		CHECK_OK(iovm_cbuf_free(single[i]));
	CHECK_OK(iovm_cbuf_alloc(r.ctx, 16 * 4096, 0, &ring));
	CHECK_OK(iovm_cbuf_pages(ring, pages, 16, &n));
	CHECK_EQ(n, 16);
	for (unsigned i = 0; i + 1 < n; i++)
		scattered |= pages[i + 1].addr != pages[i].addr + 4096;
	CHECK(scattered);
	/* One contiguous mapping for the CPU, whose every page is the memory at its PA. */
	p = iovm_cbuf_ptr(ring);
	CHECK(p != NULL);
	for (unsigned i = 0; i < n; i++) {
		uint8_t *bus = phys_bus_ptr(r.ctx->phys, pa_make(pages[i].addr));

		CHECK_EQ(p[i * 4096], 0); /* zeroed */
		memset(p + i * 4096, (int)(i + 1), 4096);
		CHECK(bus != NULL);
		CHECK_EQ(bus[100], i + 1);
	}
	/* The device reads it at consecutive IOVAs, across the scattered pages. */
	iova = map_cbuf(&r, ring);
	dst = iovm_dma_zalloc(r.ctx, 16 * 4096, 4096, 0);
	CHECK(dst != NULL);
	CHECK_EQ(copy(&r, iova, iova_of(&r, dst), 16 * 4096), IOVM_STATUS_SUCCESS);
	CHECK(!memcmp(dst, p, 16 * 4096));
	/* Coherent: syncs are no-ops, and so they are for the heap; not for memory that is not iovm's. */
	CHECK_OK(iovm_dma_sync_for_device(r.ctx, p, 100));
	CHECK_OK(iovm_dma_sync_for_cpu(r.ctx, dst, 100));
	CHECK_EQ(iovm_dma_sync_for_cpu(r.ctx, &n, sizeof(n)), -ENOENT);
	CHECK_EQ(sync_errors(r.ctx), 0);
	CHECK_OK(iovm_domain_unmap(r.dom, IOVM_IOVA(iova), 16 * 4096));
	CHECK_OK(iovm_cbuf_free(ring));
	for (int i = 1; i < 32; i += 2)
		CHECK_OK(iovm_cbuf_free(single[i]));
	CHECK_OK(iovm_dma_free(r.ctx, dst));
	rig_close(&r);
}

TEST(noncoherent_needs_syncs)
{
	struct iovm_cbuf *cb;
	uint8_t *p, *heap, *mem;
	uint64_t iova, h;
	iovm_pa_t pages[2];
	struct rig r;
	unsigned n;

	rig_open(&r, opts, NULL, IOVM_QUEUE_POLLED);
	CHECK_OK(iovm_cbuf_alloc(r.ctx, 8192, IOVM_CBUF_NONCOHERENT, &cb));
	p = iovm_cbuf_ptr(cb);
	CHECK_OK(iovm_cbuf_pages(cb, pages, 2, &n));
	mem = phys_bus_ptr(r.ctx->phys, pa_make(pages[1].addr)); /* what devices see of page 1 */
	iova = map_cbuf(&r, cb);
	heap = iovm_dma_zalloc(r.ctx, 8192, 4096, 0);
	h = iova_of(&r, heap);

	/* The CPU writes a descriptor and forgets the sync: the device reads stale memory, and the oracle says so. */
	memset(p, 0x11, 64);
	CHECK_EQ(copy(&r, iova, h, 64), IOVM_STATUS_SUCCESS);
	CHECK_EQ(heap[0], 0);
	CHECK_EQ(sync_errors(r.ctx), 1);
	/* With the sync, the device sees it. */
	CHECK_OK(iovm_dma_sync_for_device(r.ctx, p, 64));
	CHECK_EQ(copy(&r, iova, h, 64), IOVM_STATUS_SUCCESS);
	CHECK_EQ(heap[63], 0x11);
	CHECK_EQ(sync_errors(r.ctx), 1);

	/* The device writes page 1: the CPU sees it only after a sync for the CPU. */
	memset(heap + 4096, 0x22, 128);
	CHECK_EQ(copy(&r, h + 4096, iova + 4096, 128), IOVM_STATUS_SUCCESS);
	CHECK_EQ(mem[0], 0x22);
	CHECK_EQ(p[4096], 0);
	CHECK_OK(iovm_dma_sync_for_cpu(r.ctx, p + 4096, 128));
	CHECK_EQ(p[4096], 0x22);
	CHECK_EQ(p[4096 + 127], 0x22);
	CHECK_EQ(sync_errors(r.ctx), 1);
	/* The CPU owns those lines now: a device access before the next sync for the device is an error. */
	CHECK_EQ(copy(&r, iova + 4096, h, 64), IOVM_STATUS_SUCCESS);
	CHECK_EQ(sync_errors(r.ctx), 2);

	/* The device writes again, and the CPU hands the line back without looking: its stale copy wins. */
	CHECK_OK(iovm_dma_sync_for_device(r.ctx, p + 4096, 64));
	memset(heap + 4096, 0x33, 64);
	CHECK_EQ(copy(&r, h + 4096, iova + 4096, 64), IOVM_STATUS_SUCCESS);
	CHECK_EQ(mem[0], 0x33);
	CHECK_OK(iovm_dma_sync_for_device(r.ctx, p + 4096, 64));
	CHECK_EQ(sync_errors(r.ctx), 3);
	CHECK_EQ(mem[0], 0x22); /* written back over the device's data, as a write-back cache would */

	/* A correct exchange, in both directions, many times: not one error. The RX lines go to the device first. */
	CHECK_OK(iovm_dma_sync_for_device(r.ctx, p + 4096, 256));
	for (int i = 0; i < 100; i++) {
		memset(p, i, 256);
		CHECK_OK(iovm_dma_sync_for_device(r.ctx, p, 256));
		CHECK_EQ(copy(&r, iova, h, 256), IOVM_STATUS_SUCCESS);
		CHECK_EQ(heap[255], (uint8_t)i);
		memset(heap + 4096, i + 1, 256);
		CHECK_EQ(copy(&r, h + 4096, iova + 4096, 256), IOVM_STATUS_SUCCESS);
		CHECK_OK(iovm_dma_sync_for_cpu(r.ctx, p + 4096, 256));
		CHECK_EQ(p[4096 + 255], (uint8_t)(i + 1));
		CHECK_OK(iovm_dma_sync_for_device(r.ctx, p + 4096, 256));
	}
	CHECK_EQ(sync_errors(r.ctx), 3);
	CHECK_OK(iovm_domain_unmap(r.dom, IOVM_IOVA(iova), 8192));
	CHECK_OK(iovm_cbuf_free(cb));
	CHECK_OK(iovm_dma_free(r.ctx, heap));
	rig_close(&r);
}

/* A copy whose completion record goes to @rec (an IOVA); the status of its completion ring entry. */
static uint8_t copy_recorded(struct rig *r, uint64_t src, uint64_t dst, uint32_t len, uint64_t rec)
{
	return run_polled(r->q, (struct iovm_desc){ .op = IOVM_OP_COPY, .flags = IOVM_DESC_COMPLETION, .src = src,
						    .dst = dst, .len = len, .completion = rec });
}

/*
 * Completion records in non-coherent memory, as a driver on such a machine
 * puts them beside its descriptors: the engine's record reaches the CPU
 * only through a sync for the CPU, and the oracle checks the record's
 * lines as it checks data: a record line the CPU owns (reused without a
 * sync for the device) is an error, and so is handing a line back over a
 * record the CPU never looked at.
 */
TEST(completion_records_in_noncoherent_memory)
{
	struct iovm_cbuf *cb;
	struct iovm_completion *rec;
	uint8_t *p, *heap;
	uint64_t iova, h, rec_iova;
	struct rig r;

	rig_open(&r, opts, NULL, IOVM_QUEUE_POLLED);
	CHECK_OK(iovm_cbuf_alloc(r.ctx, 4096, IOVM_CBUF_NONCOHERENT, &cb));
	p = iovm_cbuf_ptr(cb);
	iova = map_cbuf(&r, cb);
	heap = iovm_dma_zalloc(r.ctx, 8192, 4096, 0);
	h = iova_of(&r, heap);
	rec = (struct iovm_completion *)(p + 256);
	rec_iova = iova + 256;
	memset(heap, 0x5a, 64);

	/* Handed to the device: the record lands in memory; the CPU's copy says nothing until it syncs. */
	CHECK_OK(iovm_dma_sync_for_device(r.ctx, rec, sizeof(*rec)));
	CHECK_EQ(copy_recorded(&r, h, h + 4096, 64, rec_iova), IOVM_STATUS_SUCCESS);
	CHECK_EQ(rec->status, IOVM_STATUS_NONE);
	CHECK_OK(iovm_dma_sync_for_cpu(r.ctx, rec, sizeof(*rec)));
	CHECK_EQ(rec->status, IOVM_STATUS_SUCCESS);
	CHECK_EQ(rec->bytes_completed, 64);
	CHECK_EQ(sync_errors(r.ctx), 0);

	/* Cleared and reused without a sync for the device: the engine writes a line the CPU owns. */
	memset(rec, 0, sizeof(*rec));
	CHECK_EQ(copy_recorded(&r, h, h + 4096, 64, rec_iova), IOVM_STATUS_SUCCESS);
	CHECK_EQ(sync_errors(r.ctx), 1);

	/* The right sequence, many times over: no error. */
	for (int i = 0; i < 50; i++) {
		memset(rec, 0, sizeof(*rec));
		CHECK_OK(iovm_dma_sync_for_device(r.ctx, rec, sizeof(*rec)));
		CHECK_EQ(copy_recorded(&r, h, h + 4096, (uint32_t)(64 + i), rec_iova), IOVM_STATUS_SUCCESS);
		CHECK_OK(iovm_dma_sync_for_cpu(r.ctx, rec, sizeof(*rec)));
		CHECK_EQ(rec->status, IOVM_STATUS_SUCCESS);
		CHECK_EQ(rec->bytes_completed, (uint32_t)(64 + i));
	}
	CHECK_EQ(sync_errors(r.ctx), 1);

	/* The engine writes a record and the CPU hands the line back unread: its stale copy would win. */
	CHECK_OK(iovm_dma_sync_for_device(r.ctx, rec, sizeof(*rec)));
	CHECK_EQ(copy_recorded(&r, h, h + 4096, 64, rec_iova), IOVM_STATUS_SUCCESS);
	CHECK_OK(iovm_dma_sync_for_device(r.ctx, rec, sizeof(*rec)));
	CHECK_EQ(sync_errors(r.ctx), 2);

	CHECK_OK(iovm_domain_unmap(r.dom, IOVM_IOVA(iova), 4096));
	CHECK_OK(iovm_cbuf_free(cb));
	CHECK_OK(iovm_dma_free(r.ctx, heap));
	rig_close(&r);
}

int main(void)
{
	test_init();
	RUN(ring_from_scattered_pages);
	RUN(noncoherent_needs_syncs);
	RUN(completion_records_in_noncoherent_memory);
	return 0;
}
