/* SPDX-License-Identifier: MIT */
/*
 * test_attack_dirty_faults.c - attacks the accessed/dirty, fault queue,
 * fault handler and deferred-window promises of iommu.h and dev.h:
 * read_dirty after device reads and writes (also across a huge leaf's
 * split), clear; a bounded fault queue counting what it drops; a handler
 * that maps the page and has the access retried (IOVM_DESC_BLOCK_ON_FAULT);
 * a deferred domain's queue flushed by batch size.
 */
#include "attack.h"

#define RW (IOVM_MAP_READ | IOVM_MAP_WRITE)

TEST(accessed_and_dirty_follow_the_device_and_survive_a_split)
{
	struct rig r;
	struct iovm_domain_attr a = { .type = IOVM_DOMAIN_MANAGED };
	bool acc, dirty;
	iovm_pa_t pa;

	rig_open(&r, "oracle=on,log_level=error", &a, IOVM_QUEUE_POLLED);
	uint8_t *m = iovm_dma_alloc(r.ctx, 4u << 20, 2u << 20, IOVM_DMA_CONTIG);
	CHECK(m != NULL);
	CHECK_OK(iovm_dma_pa(r.ctx, m, &pa));
	const uint64_t base = 0x80000000;
	iovm_iova_t io = IOVM_IOVA(base);
	CHECK_OK(iovm_domain_map(r.dom, &io, pa, 4u << 20, RW));
	CHECK_OK(iovm_domain_read_dirty(r.dom, IOVM_IOVA(base), 4u << 20, true, &acc, &dirty));
	CHECK_OK(iovm_domain_read_dirty(r.dom, IOVM_IOVA(base), 4u << 20, false, &acc, &dirty));
	EXPECT(!acc && !dirty);
	/* A device read of page 5: accessed, not dirty. */
	struct iovm_completion c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_CRC32C, .src = base + 5 * 4096,
		.len = 100 });
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	CHECK_OK(iovm_domain_read_dirty(r.dom, IOVM_IOVA(base + 5 * 4096), 4096, false, &acc, &dirty));
	EXPECT_MSG(acc && !dirty, "after a read: accessed %d dirty %d", acc, dirty);
	/* A device write of page 700 (in the second 2 MiB leaf). */
	c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = base + 700 * 4096 + 8, .len = 8, .pattern = 1 });
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	CHECK_OK(iovm_domain_read_dirty(r.dom, IOVM_IOVA(base + 700 * 4096), 4096, false, &acc, &dirty));
	EXPECT_MSG(acc && dirty, "after a write: accessed %d dirty %d", acc, dirty);
	/* Split both leaves (unmap a page of each): what the device did is still reported. */
	CHECK_OK(iovm_domain_unmap(r.dom, IOVM_IOVA(base + 100 * 4096), 4096));
	CHECK_OK(iovm_domain_unmap(r.dom, IOVM_IOVA(base + 600 * 4096), 4096));
	CHECK_OK(iovm_domain_read_dirty(r.dom, IOVM_IOVA(base + 700 * 4096), 4096, false, &acc, &dirty));
	EXPECT_MSG(acc && dirty, "the write's dirty bit was lost when its 2 MiB leaf was split: %d %d", acc, dirty);
	CHECK_OK(iovm_domain_read_dirty(r.dom, IOVM_IOVA(base + 5 * 4096), 4096, false, &acc, &dirty));
	EXPECT_MSG(acc, "the read's accessed bit was lost when its 2 MiB leaf was split");
	/* Clear, as read: then nothing. */
	CHECK_OK(iovm_domain_read_dirty(r.dom, IOVM_IOVA(base), 4u << 20, true, &acc, &dirty));
	EXPECT(acc && dirty);
	CHECK_OK(iovm_domain_read_dirty(r.dom, IOVM_IOVA(base), 4u << 20, false, &acc, &dirty));
	EXPECT_MSG(!acc && !dirty, "after clearing: accessed %d dirty %d", acc, dirty);
	/*
	 * Written again after the clear, through what the device cached: dirty
	 * again (a migration that clears and reads in rounds misses nothing),
	 * and a read sets accessed again. Rounds, so that a device's IOTLB
	 * holding the page from the round before is what is tried.
	 */
	for (unsigned round = 0; round < 4; round++) {
		c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = base + 700 * 4096 + 8, .len = 8,
						      .pattern = round });
		CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
		CHECK_OK(iovm_domain_read_dirty(r.dom, IOVM_IOVA(base + 700 * 4096), 4096, true, &acc, &dirty));
		EXPECT_MSG(acc && dirty, "round %u: a write after read_dirty(clear) left the page clean: %d %d", round,
			   acc, dirty);
		c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_CRC32C, .src = base + 5 * 4096, .len = 100 });
		CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
		CHECK_OK(iovm_domain_read_dirty(r.dom, IOVM_IOVA(base + 5 * 4096), 4096, true, &acc, &dirty));
		EXPECT_MSG(acc && !dirty, "round %u: a read after read_dirty(clear): accessed %d dirty %d", round, acc,
			   dirty);
	}
	/* An unmapped range reads as untouched. */
	CHECK_OK(iovm_domain_read_dirty(r.dom, IOVM_IOVA(base + 100 * 4096), 4096, false, &acc, &dirty));
	EXPECT(!acc && !dirty);
	CHECK_OK(iovm_domain_unmap(r.dom, IOVM_IOVA(base), 4u << 20));
	CHECK_OK(iovm_dma_free(r.ctx, m));
	rig_close(&r);
}

TEST(the_fault_queue_keeps_its_size_and_counts_the_rest)
{
	struct rig r;
	struct iovm_domain_attr a = { .type = IOVM_DOMAIN_MANAGED, .flags = IOVM_DOMAIN_FOLLOW_HEAP,
				      .fault_queue = 8 };
	struct iovm_fault f;
	struct iovm_domain_stats st;

	rig_open(&r, "oracle=on,log_level=error", &a, IOVM_QUEUE_POLLED);
	for (int i = 0; i < 20; i++) {
		struct iovm_completion c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_FILL,
			.dst = 0x1000 + (uint64_t)i * 4096, .len = 8 });
		CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
		EXPECT_EQ(c.fault_addr, 0x1000 + (uint64_t)i * 4096);
	}
	CHECK_OK(iovm_domain_stats(r.dom, &st));
	EXPECT_EQ(st.faults, 20);
	EXPECT_EQ(st.faults_dropped, 12);
	int n = 0;
	uint64_t last = 0;
	while (iovm_domain_fault_pop(r.dom, &f) == 0) {
		EXPECT_EQ(f.iova.addr, 0x1000 + (uint64_t)n * 4096); /* the oldest first: the first 8 */
		EXPECT(n == 0 || f.seq > last);
		EXPECT_EQ(f.access, IOVM_MAP_WRITE);
		EXPECT_EQ(f.reason, IOVM_FAULT_NOT_PRESENT);
		EXPECT_EQ(f.device, iovm_device_id(r.dev));
		EXPECT_EQ(f.stage, IOVM_STAGE_ONLY);
		last = f.seq;
		n++;
	}
	EXPECT_EQ(n, 8);
	rig_close(&r);
}

static int handler_calls;
static uint8_t *handler_page;
static int map_on_fault(void *arg, struct iovm_domain *dom, const struct iovm_fault *f)
{
	struct iovm_ctx *ctx = arg;
	iovm_pa_t pa;
	iovm_iova_t io = IOVM_IOVA(f->iova.addr & ~4095ull);

	handler_calls++;
	if (iovm_dma_pa(ctx, handler_page, &pa))
		return -EFAULT;
	return iovm_domain_map(dom, &io, pa, 4096, RW);
}

static int refuse(void *arg, struct iovm_domain *dom, const struct iovm_fault *f)
{
	(void)arg;
	(void)dom;
	(void)f;
	handler_calls++;
	return -EFAULT;
}

TEST(a_handler_that_maps_the_page_has_the_access_retried)
{
	struct rig r;
	struct iovm_domain_attr a = { .type = IOVM_DOMAIN_MANAGED };
	struct iovm_queue_stats qs;

	rig_open(&r, "oracle=on,log_level=error", &a, IOVM_QUEUE_POLLED);
	handler_page = iovm_dma_zalloc(r.ctx, 4096, 4096, 0);
	CHECK_OK(iovm_domain_set_fault_handler(r.dom, map_on_fault, r.ctx));
	const uint64_t target = 0x7700000;
	handler_calls = 0;
	struct iovm_completion c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_FILL,
		.flags = IOVM_DESC_BLOCK_ON_FAULT, .dst = target + 64, .len = 64, .pattern = 0x5151515151515151ull });
	EXPECT_EQ(c.status, IOVM_STATUS_SUCCESS);
	EXPECT_EQ(handler_calls, 1);
	EXPECT(all_bytes(handler_page + 64, 64, 0x51) && all_bytes(handler_page, 64, 0));
	CHECK_OK(iovm_queue_stats(r.q, &qs));
	EXPECT(qs.fault_retries >= 1);
	/* Without BLOCK_ON_FAULT the handler is not asked. */
	handler_calls = 0;
	c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = target + 8192, .len = 64 });
	EXPECT_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
	EXPECT_EQ(handler_calls, 0);
	/* A handler that refuses: PAGE_FAULT, nothing written. */
	CHECK_OK(iovm_domain_set_fault_handler(r.dom, refuse, NULL));
	c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .flags = IOVM_DESC_BLOCK_ON_FAULT,
		.src = target + 64, .dst = target + 2 * 4096, .len = 64 });
	EXPECT_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
	EXPECT_EQ(handler_calls, 1);
	/* Removed: not called (it "may still run once" only while being removed). */
	CHECK_OK(iovm_domain_set_fault_handler(r.dom, NULL, NULL));
	handler_calls = 0;
	c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_FILL, .flags = IOVM_DESC_BLOCK_ON_FAULT,
		.dst = target + 3 * 4096, .len = 64 });
	EXPECT_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
	EXPECT_EQ(handler_calls, 0);
	iovm_dma_free(r.ctx, handler_page);
	rig_close(&r);
}

TEST(a_deferred_queue_is_flushed_by_its_batch_size)
{
	struct iovm_ctx *ctx = attack_open(NULL);
	struct iovm_domain_attr a = { .type = IOVM_DOMAIN_MANAGED, .flags = IOVM_DOMAIN_DEFERRED,
				      .flush_batch = 4, .flush_timeout_us = 1000000 };
	struct iovm_domain *d;
	struct iovm_domain_stats st;
	uint8_t *m = iovm_dma_alloc(ctx, 65536, 4096, 0);
	iovm_pa_t pa;

	CHECK_OK(iovm_dma_pa(ctx, m, &pa));
	CHECK_OK(iovm_domain_create(ctx, &a, &d));
	for (int i = 0; i < 40; i++) {
		iovm_iova_t io = IOVM_IOVA_ANY;
		CHECK_OK(iovm_domain_map(d, &io, pa, 4096, RW));
		CHECK_OK(iovm_domain_unmap(d, io, 4096));
		CHECK_OK(iovm_domain_stats(d, &st));
		EXPECT_MSG(st.pending_unmaps <= 4, "after %d unmaps, %llu pending with a batch of 4", i + 1,
			   (unsigned long long)st.pending_unmaps);
	}
	CHECK_OK(iovm_domain_flush(d));
	CHECK_OK(iovm_domain_stats(d, &st));
	EXPECT_EQ(st.pending_unmaps, 0);
	EXPECT(st.flushes >= 9);
	EXPECT_EQ(st.flushed_unmaps, 40);
	CHECK_OK(iovm_domain_destroy(d));
	iovm_dma_free(ctx, m);
	iovm_close(ctx);
}

int main(void)
{
	test_init();
	RUN(accessed_and_dirty_follow_the_device_and_survive_a_split);
	RUN(the_fault_queue_keeps_its_size_and_counts_the_rest);
	RUN(a_handler_that_maps_the_page_has_the_access_retried);
	RUN(a_deferred_queue_is_flushed_by_its_batch_size);
	return attack_status();
}
