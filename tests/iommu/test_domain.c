/* SPDX-License-Identifier: MIT */
/*
 * test_domain.c - domains: managed, identity and VA; maps and unmaps,
 * explicit and chosen IOVAs, partial unmaps, a 32-bit DMA mask with the MSI
 * hole, huge leaves on hugepage memory, batches, heap-following domains and
 * O(1) iovm_dma_iova, and faults.
 */
#include "dev/dev_util.h"

#define RW (IOVM_MAP_READ | IOVM_MAP_WRITE)

static const char *opts = "page_size=4K,host_pa=off,oracle=on";

TEST(create_and_bad_attributes)
{
	struct iovm_ctx *ctx = open_ctx(opts);
	struct iovm_domain_attr a = { 0 };
	struct iovm_iova_range hole = { IOVM_IOVA(0x100000), 0x100000 };
	struct iovm_domain *dom;

	CHECK_OK(iovm_domain_create(ctx, NULL, &dom));
	CHECK_OK(iovm_domain_destroy(dom));
	for (int t = IOVM_DOMAIN_MANAGED; t <= IOVM_DOMAIN_VA; t++) {
		a = (struct iovm_domain_attr){ .type = (enum iovm_domain_type)t,
					       .flags = IOVM_DOMAIN_DEFERRED | IOVM_DOMAIN_FOLLOW_HEAP };
		CHECK_OK(iovm_domain_create(ctx, &a, &dom));
		CHECK_OK(iovm_domain_destroy(dom));
	}
	a = (struct iovm_domain_attr){ .type = 7 };
	CHECK_EQ(iovm_domain_create(ctx, &a, &dom), -EINVAL);
	a = (struct iovm_domain_attr){ .flags = 1u << 9 };
	CHECK_EQ(iovm_domain_create(ctx, &a, &dom), -EINVAL);
	a = (struct iovm_domain_attr){ .dma_bits = 31 };
	CHECK_EQ(iovm_domain_create(ctx, &a, &dom), -EINVAL);
	a = (struct iovm_domain_attr){ .dma_bits = 49 };
	CHECK_EQ(iovm_domain_create(ctx, &a, &dom), -EINVAL);
	a = (struct iovm_domain_attr){ .nr_reserved = 1 };
	CHECK_EQ(iovm_domain_create(ctx, &a, &dom), -EINVAL);
	a = (struct iovm_domain_attr){ .reserved = &hole };
	CHECK_EQ(iovm_domain_create(ctx, &a, &dom), -EINVAL);
	CHECK_EQ(iovm_domain_create(NULL, NULL, &dom), -EINVAL);
	CHECK_EQ(iovm_domain_create(ctx, NULL, NULL), -EINVAL);
	iovm_close(ctx);
}

TEST(managed_map_unmap)
{
	struct iovm_ctx *ctx = open_ctx(opts);
	struct iovm_domain *dom;
	iovm_iova_t iova = IOVM_IOVA_ANY, fixed = IOVM_IOVA(0x40000000);
	struct iovm_dma_xlate x;
	uint8_t *buf = iovm_dma_alloc(ctx, 1 << 20, 4096, IOVM_DMA_CONTIG);
	iovm_pa_t pa;
	uint32_t perm;

	CHECK(buf != NULL);
	CHECK_OK(iovm_dma_xlate(ctx, buf, &x));
	CHECK_OK(iovm_domain_create(ctx, NULL, &dom));
	CHECK_OK(iovm_domain_map(dom, &iova, x.pa, 1 << 20, RW));
	CHECK(iova.addr != IOVM_ADDR_INVALID && (iova.addr & 4095) == 0);
	CHECK_OK(iovm_domain_translate(dom, IOVM_IOVA(iova.addr + 5000), &pa, &perm));
	CHECK_EQ(pa.addr, x.pa.addr + 5000);
	CHECK_EQ(perm, RW);
	/* An explicit IOVA, read-only; then the same again: refused. */
	CHECK_OK(iovm_domain_map(dom, &fixed, x.pa, 8192, IOVM_MAP_READ));
	CHECK_EQ(fixed.addr, 0x40000000);
	CHECK_EQ(iovm_domain_map(dom, &fixed, x.pa, 4096, RW), -EEXIST);
	CHECK_OK(iovm_domain_translate(dom, fixed, &pa, &perm));
	CHECK_EQ(perm, IOVM_MAP_READ);
	/* Unmapping part of a mapping: the rest stays. */
	CHECK_OK(iovm_domain_unmap(dom, IOVM_IOVA(iova.addr + 8192), 8192));
	CHECK_EQ(iovm_domain_translate(dom, IOVM_IOVA(iova.addr + 8192), &pa, NULL), -ENOENT);
	CHECK_OK(iovm_domain_translate(dom, IOVM_IOVA(iova.addr + 16384), &pa, NULL));
	CHECK_EQ(iovm_domain_unmap(dom, IOVM_IOVA(iova.addr + 8192), 8192), -ENOENT);
	CHECK_OK(iovm_domain_unmap(dom, iova, 1 << 20));
	CHECK_OK(iovm_domain_unmap(dom, fixed, 8192));
	/* Bad arguments. */
	CHECK_EQ(iovm_domain_map(dom, &iova, IOVM_PA(x.pa.addr + 1), 4096, RW), -EINVAL);
	CHECK_EQ(iovm_domain_map(dom, &iova, x.pa, 4095, RW), -EINVAL);
	CHECK_EQ(iovm_domain_map(dom, &iova, x.pa, 4096, 0), -EINVAL);
	CHECK_EQ(iovm_domain_map(dom, &iova, x.pa, 4096, 4), -EINVAL);
	iova = IOVM_IOVA_ANY;
	CHECK_EQ(iovm_domain_map(dom, &iova, IOVM_PA(1ull << 46), 4096, RW), -EINVAL); /* no memory there */
	CHECK_EQ(iovm_domain_unmap(dom, IOVM_IOVA(1), 4096), -EINVAL);
	no_violations(dom);
	CHECK_OK(iovm_domain_destroy(dom));
	iovm_dma_free(ctx, buf);
	iovm_close(ctx);
}

TEST(dma_mask_and_holes)
{
	struct iovm_ctx *ctx = open_ctx(opts);
	struct iovm_domain_attr a = { .dma_bits = 32 };
	struct iovm_domain *dom;
	struct iovm_dma_xlate x;
	uint8_t *buf = iovm_dma_alloc(ctx, 4096, 4096, 0);
	iovm_iova_t iova[512];

	CHECK_OK(iovm_dma_xlate(ctx, buf, &x));
	CHECK_OK(iovm_domain_create(ctx, &a, &dom));
	for (int i = 0; i < 512; i++) {
		iova[i] = IOVM_IOVA_ANY;
		CHECK_OK(iovm_domain_map(dom, &iova[i], x.pa, 4096, RW));
		CHECK(iova[i].addr + 4096 <= (1ull << 32));
		/* The MSI window is never handed out. */
		CHECK(iova[i].addr + 4096 <= 0xfee00000 || iova[i].addr >= 0xfef00000);
	}
	/* Beyond the mask, explicitly: refused. */
	iova[0] = IOVM_IOVA(1ull << 32);
	CHECK_EQ(iovm_domain_map(dom, &iova[0], x.pa, 4096, RW), -EINVAL);
	CHECK_OK(iovm_domain_destroy(dom));
	iovm_dma_free(ctx, buf);
	iovm_close(ctx);
}

TEST(huge_leaves_on_hugepages)
{
	struct iovm_ctx *ctx;
	struct iovm_domain_stats st;
	struct iovm_domain *dom;
	struct iovm_dma_xlate x;
	iovm_iova_t iova = IOVM_IOVA_ANY;
	uint8_t *buf;

	if (free_hugepages_2m() < 8) {
		printf("# fewer than 8 free hugepages: 2 MiB leaves not exercised here\n");
		return;
	}
	ctx = open_ctx("page_size=2M,host_pa=off,oracle=on");
	buf = iovm_dma_alloc(ctx, 8 << 20, 0, IOVM_DMA_CONTIG);
	if (!buf && errno == ENOMEM) {
		/* Other processes took the free hugepages since we looked. */
		printf("# the free hugepages went to other processes: 2 MiB leaves not exercised here\n");
		iovm_close(ctx);
		return;
	}
	CHECK(buf != NULL);
	CHECK_OK(iovm_dma_xlate(ctx, buf, &x));
	CHECK_OK(iovm_domain_create(ctx, NULL, &dom));
	CHECK_OK(iovm_domain_map(dom, &iova, x.pa, 8 << 20, RW));
	/* The IOVA is aligned like the PA, so 2 MiB leaves map it. */
	CHECK_EQ(iova.addr % (2 << 20), 0);
	CHECK_OK(iovm_domain_stats(dom, &st));
	CHECK_EQ(st.leaves_2m, 4);
	/* A 4 KiB hole in the middle splits one leaf, as VFIO type1 would refuse to. */
	CHECK_OK(iovm_domain_unmap(dom, IOVM_IOVA(iova.addr + (3 << 20)), 4096));
	CHECK_OK(iovm_domain_stats(dom, &st));
	CHECK_EQ(st.leaves_2m, 3);
	CHECK_EQ(st.leaves_4k, 511);
	CHECK_EQ(st.splits, 1);
	CHECK_OK(iovm_domain_destroy(dom));
	iovm_dma_free(ctx, buf);
	iovm_close(ctx);
}

TEST(batched_and_by_pointer)
{
	struct iovm_ctx *ctx = open_ctx(opts);
	struct iovm_domain *dom, *va;
	struct iovm_domain_attr vattr = { .type = IOVM_DOMAIN_VA };
	iovm_pa_t pages[256];
	iovm_iova_t iova = IOVM_IOVA_ANY;
	uint8_t *bufs[256], *big;

	CHECK_OK(iovm_domain_create(ctx, NULL, &dom));
	for (int i = 0; i < 256; i++) {
		bufs[i] = iovm_dma_alloc(ctx, 4096, 4096, 0);
		CHECK_OK(iovm_dma_pa(ctx, bufs[i], &pages[i]));
	}
	/* 256 scattered pages at consecutive IOVAs. */
	CHECK_OK(iovm_domain_map_pages(dom, &iova, pages, 256, RW));
	for (int i = 0; i < 256; i++) {
		iovm_pa_t pa;

		CHECK_OK(iovm_domain_translate(dom, IOVM_IOVA(iova.addr + ((uint64_t)i << 12) + 7), &pa, NULL));
		CHECK_EQ(pa.addr, pages[i].addr + 7);
	}
	CHECK_OK(iovm_domain_unmap(dom, iova, 256 << 12));
	/* By pointer: a VA domain maps at the pointer itself. */
	big = iovm_dma_alloc(ctx, 64 << 10, 4096, 0);
	CHECK_OK(iovm_domain_create(ctx, &vattr, &va));
	CHECK_OK(iovm_domain_map_ptr(va, big, 64 << 10, RW, &iova));
	CHECK_EQ(iova.addr, (uintptr_t)big);
	CHECK_OK(iovm_domain_map_ptr(dom, big, 64 << 10, IOVM_MAP_READ, &iova));
	{
		iovm_pa_t pa, want;

		CHECK_OK(iovm_dma_pa(ctx, big + 12345, &want));
		CHECK_OK(iovm_domain_translate(dom, IOVM_IOVA(iova.addr + 12345), &pa, NULL));
		CHECK_EQ(pa.addr, want.addr);
	}
	CHECK_EQ(iovm_domain_map_ptr(dom, big + 1, 4096, RW, &iova), -EINVAL);
	CHECK_OK(iovm_domain_destroy(va));
	CHECK_OK(iovm_domain_destroy(dom));
	iovm_close(ctx);
}

TEST(follow_the_heap)
{
	struct iovm_ctx *ctx = open_ctx("page_size=4K,host_pa=off,oracle=on,release_delay_ms=0");
	struct iovm_domain_attr a = { .flags = IOVM_DOMAIN_FOLLOW_HEAP };
	struct iovm_domain *dom, *late, *id, *va;
	uint8_t *before = iovm_dma_alloc(ctx, 3 << 20, 0, 0), *after;
	iovm_iova_t iova, other;
	iovm_pa_t pa, want;

	CHECK(before != NULL);
	CHECK_OK(iovm_domain_create(ctx, &a, &dom));
	/* What was committed before the domain existed is mapped too (replay). */
	for (size_t off = 0; off < (3 << 20); off += 99991) {
		CHECK_OK(iovm_dma_iova(dom, before + off, &iova));
		CHECK_OK(iovm_domain_translate(dom, iova, &pa, NULL));
		CHECK_OK(iovm_dma_pa(ctx, before + off, &want));
		CHECK_EQ(pa.addr, want.addr);
	}
	/* A VA-contiguous commit is IOVA-contiguous. */
	CHECK_OK(iovm_dma_iova(dom, before, &iova));
	CHECK_OK(iovm_dma_iova(dom, before + (1 << 20), &other));
	CHECK_EQ(other.addr - iova.addr, 1 << 20);
	/* New memory is mapped as it is committed. */
	after = iovm_dma_alloc(ctx, 5 << 20, 0, 0);
	CHECK_OK(iovm_dma_iova(dom, after + (4 << 20) + 17, &iova));
	CHECK_OK(iovm_domain_translate(dom, iova, &pa, NULL));
	CHECK_OK(iovm_dma_pa(ctx, after + (4 << 20) + 17, &want));
	CHECK_EQ(pa.addr, want.addr);
	/* Identity and VA domains follow the heap their own way. */
	a.type = IOVM_DOMAIN_IDENTITY;
	CHECK_OK(iovm_domain_create(ctx, &a, &id));
	CHECK_OK(iovm_dma_iova(id, after + 5, &iova));
	CHECK_EQ(iova.addr, want.addr - (4 << 20) - 12);
	a.type = IOVM_DOMAIN_VA;
	CHECK_OK(iovm_domain_create(ctx, &a, &va));
	CHECK_OK(iovm_dma_iova(va, after + 5, &iova));
	CHECK_EQ(iova.addr, (uintptr_t)after + 5);
	CHECK_OK(iovm_domain_translate(va, iova, &pa, NULL));
	a.type = IOVM_DOMAIN_MANAGED;
	CHECK_OK(iovm_domain_create(ctx, &a, &late));
	/* Released memory is unmapped before it goes. */
	CHECK_OK(iovm_dma_iova(dom, after, &iova));
	CHECK_OK(iovm_dma_free(ctx, after));
	iovm_dma_trim(ctx, IOVM_TRIM_ALL);
	CHECK_EQ(iovm_dma_iova(dom, after, &other), -ENOENT);
	CHECK_EQ(iovm_domain_translate(dom, iova, &pa, NULL), -ENOENT);
	CHECK_EQ(iovm_dma_iova(va, after, &other), -ENOENT);
	CHECK_EQ(iovm_dma_iova(dom, &iova, &other), -ENOENT);
	no_violations(dom);
	CHECK_OK(iovm_domain_destroy(late));
	CHECK_OK(iovm_domain_destroy(va));
	CHECK_OK(iovm_domain_destroy(id));
	CHECK_OK(iovm_domain_destroy(dom));
	iovm_dma_free(ctx, before);
	iovm_close(ctx);
}

TEST(fault_queue)
{
	struct rig r;
	struct iovm_domain_attr a = { .flags = IOVM_DOMAIN_FOLLOW_HEAP, .fault_queue = 4 };
	struct iovm_domain_stats st;
	struct iovm_fault f;
	uint8_t *buf;

	rig_open(&r, opts, &a, IOVM_QUEUE_POLLED);
	buf = iovm_dma_alloc(r.ctx, 4096, 4096, 0);
	for (int i = 0; i < 6; i++) {
		struct iovm_desc d = { .op = IOVM_OP_COPY, .src = 0x1000 + (uint64_t)i * 4096,
				       .dst = iova_of(&r, buf), .len = 64 };
		struct iovm_completion c = run_desc(&r, d);

		CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
		CHECK_EQ(c.fault_addr, 0x1000 + (uint64_t)i * 4096);
		CHECK_EQ(c.fault_reason, IOVM_FAULT_NOT_PRESENT);
		CHECK_EQ(c.fault_access, IOVM_MAP_READ);
	}
	/* Four kept, two dropped, the oldest first. */
	for (int i = 0; i < 4; i++) {
		CHECK_OK(iovm_domain_fault_pop(r.dom, &f));
		CHECK_EQ(f.iova.addr, 0x1000 + (uint64_t)i * 4096);
		CHECK_EQ(f.reason, IOVM_FAULT_NOT_PRESENT);
		CHECK_EQ(f.device, iovm_device_id(r.dev));
		CHECK_EQ(f.seq, (uint64_t)i + 1);
	}
	CHECK_EQ(iovm_domain_fault_pop(r.dom, &f), -EAGAIN);
	CHECK_OK(iovm_domain_stats(r.dom, &st));
	CHECK_EQ(st.faults, 6);
	CHECK_EQ(st.faults_dropped, 2);
	rig_close(&r);
}

TEST(dirty_tracking)
{
	struct rig r;
	uint8_t *src, *dst;
	bool a, d;

	rig_open(&r, opts, NULL, IOVM_QUEUE_POLLED);
	src = iovm_dma_alloc(r.ctx, 8192, 4096, 0);
	dst = iovm_dma_alloc(r.ctx, 8192, 4096, 0);
	CHECK_OK(iovm_domain_read_dirty(r.dom, IOVM_IOVA(iova_of(&r, dst)), 8192, true, &a, &d));
	CHECK_EQ(run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = iova_of(&r, src),
						  .dst = iova_of(&r, dst), .len = 100 })
			 .status,
		 IOVM_STATUS_SUCCESS);
	CHECK_OK(iovm_domain_read_dirty(r.dom, IOVM_IOVA(iova_of(&r, src)), 4096, false, &a, &d));
	CHECK(a && !d);
	CHECK_OK(iovm_domain_read_dirty(r.dom, IOVM_IOVA(iova_of(&r, dst)), 4096, true, &a, &d));
	CHECK(a && d);
	CHECK_OK(iovm_domain_read_dirty(r.dom, IOVM_IOVA(iova_of(&r, dst)), 4096, false, &a, &d));
	CHECK(!a && !d);
	rig_close(&r);
}

/* Map and unmap one page in a deferred domain, then wait for the flusher (not us) to flush it. */
static void flushed_by_the_flusher(struct iovm_ctx *ctx, struct iovm_domain *dom)
{
	struct iovm_domain_stats st;
	struct iovm_dma_xlate x;
	iovm_iova_t iova = IOVM_IOVA_ANY;
	uint8_t *buf = iovm_dma_alloc(ctx, 4096, 4096, 0);

	CHECK(buf != NULL);
	CHECK_OK(iovm_dma_xlate(ctx, buf, &x));
	CHECK_OK(iovm_domain_map(dom, &iova, x.pa, 4096, RW));
	CHECK_OK(iovm_domain_unmap(dom, iova, 4096));
	/* Bounded by the test's timeout, not by a guess at the flusher's speed. */
	do {
		usleep(1000);
		CHECK_OK(iovm_domain_stats(dom, &st));
	} while (st.flushes == 0);
	CHECK_EQ(st.pending_unmaps, 0);
	iovm_dma_free(ctx, buf);
}

/*
 * Issue 16 item 1: the flusher thread looked at the flush queue of every
 * domain of the context, and only deferred ones have one: it crashed on the
 * first strict domain it met, whether created before a deferred one, or
 * after the last deferred one had gone (the flusher lives on).
 */
TEST(flusher_meets_strict_domains)
{
	struct iovm_ctx *ctx = open_ctx(opts);
	struct iovm_domain_attr deferred = { .flags = IOVM_DOMAIN_DEFERRED, .flush_timeout_us = 1000 };
	struct iovm_domain_attr ident = { .type = IOVM_DOMAIN_IDENTITY };
	struct iovm_domain *strict, *id, *d1, *d2;

	/* Strict and identity domains first, then a deferred one: the flusher's first pass meets them. */
	CHECK_OK(iovm_domain_create(ctx, NULL, &strict));
	CHECK_OK(iovm_domain_create(ctx, &ident, &id));
	CHECK_OK(iovm_domain_create(ctx, &deferred, &d1));
	flushed_by_the_flusher(ctx, d1);
	/* The deferred domain goes; the flusher stays, and wakes now and then with strict domains only. */
	CHECK_OK(iovm_domain_destroy(d1));
	CHECK_OK(iovm_domain_destroy(strict));
	CHECK_OK(iovm_domain_create(ctx, NULL, &strict));
	usleep(1200 * 1000); /* past the idle flusher's wake-up: it must find nothing to do, and say nothing */
	/* A deferred domain after the strict one. */
	CHECK_OK(iovm_domain_create(ctx, &deferred, &d2));
	flushed_by_the_flusher(ctx, d2);
	CHECK_OK(iovm_domain_destroy(d2));
	CHECK_OK(iovm_domain_destroy(id));
	CHECK_OK(iovm_domain_destroy(strict));
	iovm_close(ctx);
}

/*
 * A deferred domain destroyed while the flusher thread looks at it: the
 * domain stayed on the context's list while its flush queue was torn
 * down, and the flusher, walking that list, read rings being freed (TSan,
 * ASan). Many short-lived domains with unmaps pending, a flusher kept busy.
 */
TEST(destroy_while_the_flusher_runs)
{
	struct iovm_ctx *ctx = open_ctx(opts);
	struct iovm_domain_attr deferred = { .flags = IOVM_DOMAIN_DEFERRED, .flush_timeout_us = 20 };
	struct iovm_domain *keep, *dom;
	struct iovm_dma_xlate x;
	uint8_t *buf = iovm_dma_alloc(ctx, 4096, 4096, 0);

	CHECK_OK(iovm_dma_xlate(ctx, buf, &x));
	/* One that stays, with an unmap always pending: the flusher never sleeps long. */
	CHECK_OK(iovm_domain_create(ctx, &deferred, &keep));
	for (int i = 0; i < 300; i++) {
		iovm_iova_t a = IOVM_IOVA_ANY, b = IOVM_IOVA_ANY;

		CHECK_OK(iovm_domain_map(keep, &a, x.pa, 4096, RW));
		CHECK_OK(iovm_domain_unmap(keep, a, 4096));
		CHECK_OK(iovm_domain_create(ctx, &deferred, &dom));
		CHECK_OK(iovm_domain_map(dom, &b, x.pa, 4096, RW));
		CHECK_OK(iovm_domain_unmap(dom, b, 4096));
		if (i % 3)
			usleep(20);
		CHECK_OK(iovm_domain_destroy(dom));
	}
	CHECK_OK(iovm_domain_destroy(keep));
	iovm_dma_free(ctx, buf);
	iovm_close(ctx);
}

int main(void)
{
	test_init();
	RUN(create_and_bad_attributes);
	RUN(managed_map_unmap);
	RUN(dma_mask_and_holes);
	RUN(huge_leaves_on_hugepages);
	RUN(batched_and_by_pointer);
	RUN(follow_the_heap);
	RUN(fault_queue);
	RUN(dirty_tracking);
	RUN(flusher_meets_strict_domains);
	RUN(destroy_while_the_flusher_runs);
	return 0;
}
