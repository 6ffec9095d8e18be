/* SPDX-License-Identifier: MIT */
/*
 * test_edges.c - the iommu API at the edges of the address space, row by
 * row, each against what iommu.h promises: IOVA 0, the last page below
 * 2^64, the DMA mask's last page, reserved ranges that wrap, lengths that
 * overflow, holes, and a device's access at each edge.
 */
#include "dev/dev_util.h"

#define RW (IOVM_MAP_READ | IOVM_MAP_WRITE)
#define TOP_PAGE (UINT64_MAX & ~UINT64_C(4095)) /* the last page below 2^64 */

static const char *opts = "page_size=4K,host_pa=off,oracle=on";

struct attr_row {
	const char *what;
	struct iovm_iova_range hole;
	int want;
};

/* Issue 16: a reserved range that wraps past 2^64 was accepted. */
TEST(reserved_ranges)
{
	static const struct attr_row rows[] = {
		{ "wraps past 2^64", { IOVM_IOVA(TOP_PAGE), 2 * SZ_4K }, -EINVAL },
		{ "wraps from the middle", { IOVM_IOVA(UINT64_C(1) << 63), UINT64_C(1) << 63 | SZ_4K }, -EINVAL },
		{ "length 2^64 - 1", { IOVM_IOVA(SZ_4K), UINT64_MAX }, -EINVAL },
		{ "empty", { IOVM_IOVA(0x100000), 0 }, -EINVAL },
		{ "ends exactly at 2^64", { IOVM_IOVA(TOP_PAGE), SZ_4K }, 0 },
		{ "all of it but page 0", { IOVM_IOVA(SZ_4K), TOP_PAGE }, 0 },
		{ "beyond the DMA mask", { IOVM_IOVA(UINT64_C(1) << 50), SZ_1G }, 0 },
		{ "unaligned (rounded out to pages)", { IOVM_IOVA(0x100123), 0x10 }, 0 },
	};
	struct iovm_ctx *ctx = open_ctx(opts);

	for (unsigned i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct iovm_domain_attr a = { .reserved = &rows[i].hole, .nr_reserved = 1 };
		struct iovm_domain *dom = NULL;
		int ret = iovm_domain_create(ctx, &a, &dom);

		CHECK_MSG(ret == rows[i].want, "reserved range %s: %d, want %d", rows[i].what, ret, rows[i].want);
		if (!ret)
			CHECK_OK(iovm_domain_destroy(dom));
	}
	/* A good range after a bad one: the whole list is refused. */
	{
		struct iovm_iova_range two[2] = { { IOVM_IOVA(0x100000), SZ_4K }, { IOVM_IOVA(TOP_PAGE), 3 * SZ_4K } };
		struct iovm_domain_attr a = { .reserved = two, .nr_reserved = 2 };
		struct iovm_domain *dom;

		CHECK_EQ(iovm_domain_create(ctx, &a, &dom), -EINVAL);
	}
	iovm_close(ctx);
}

/* A hole is never handed out, and a map at a chosen IOVA in it is refused as outside the window. */
TEST(holes_refuse_chosen_iovas)
{
	struct iovm_ctx *ctx = open_ctx(opts);
	struct iovm_iova_range hole = { IOVM_IOVA(0x100000), 0x100000 };
	struct iovm_domain_attr a = { .reserved = &hole, .nr_reserved = 1, .dma_bits = 32 };
	struct iovm_domain *dom, *dflt;
	iovm_pa_t pa;
	uint8_t *buf = iovm_dma_alloc(ctx, 2 * SZ_4K, SZ_4K, IOVM_DMA_CONTIG);
	iovm_iova_t at;

	CHECK_OK(iovm_dma_pa(ctx, buf, &pa));
	CHECK_OK(iovm_domain_create(ctx, &a, &dom));
	CHECK_OK(iovm_domain_create(ctx, NULL, &dflt));
	at = IOVM_IOVA(0x100000);
	CHECK_EQ(iovm_domain_map(dom, &at, pa, SZ_4K, RW), -EINVAL);
	at = IOVM_IOVA(0x1ff000);
	CHECK_EQ(iovm_domain_map(dom, &at, pa, SZ_4K, RW), -EINVAL);
	at = IOVM_IOVA(0xff000); /* its last page in the hole */
	CHECK_EQ(iovm_domain_map(dom, &at, pa, 2 * SZ_4K, RW), -EINVAL);
	at = IOVM_IOVA(0xff000); /* just below it */
	CHECK_OK(iovm_domain_map(dom, &at, pa, SZ_4K, RW));
	at = IOVM_IOVA(0x200000); /* just above it */
	CHECK_OK(iovm_domain_map(dom, &at, pa, SZ_4K, RW));
	/* A list of holes replaces the default MSI window, which is then mappable. */
	at = IOVM_IOVA(0xfee00000);
	CHECK_OK(iovm_domain_map(dom, &at, pa, SZ_4K, RW));
	/* Without a list, the MSI window is the hole. */
	at = IOVM_IOVA(0xfee00000);
	CHECK_EQ(iovm_domain_map(dflt, &at, pa, SZ_4K, RW), -EINVAL);
	at = IOVM_IOVA(0xfeeff000);
	CHECK_EQ(iovm_domain_map(dflt, &at, pa, SZ_4K, RW), -EINVAL);
	at = IOVM_IOVA(0xfef00000);
	CHECK_OK(iovm_domain_map(dflt, &at, pa, SZ_4K, RW));
	no_violations(dom);
	CHECK_OK(iovm_domain_destroy(dflt));
	CHECK_OK(iovm_domain_destroy(dom));
	iovm_dma_free(ctx, buf);
	iovm_close(ctx);
}

struct map_row {
	const char *what;
	uint64_t iova;
	uint64_t len;
	int want_managed, want_va; /* in a 32-bit managed domain, a 32-bit VA domain */
};

static const struct map_row map_rows[] = {
	{ "IOVA 0 (a NULL device address always faults)", 0, SZ_4K, -EINVAL, -EINVAL },
	{ "IOVA 0, two pages", 0, 2 * SZ_4K, -EINVAL, -EINVAL },
	{ "the page after 0", SZ_4K, SZ_4K, 0, 0 },
	{ "the DMA mask's last page", (UINT64_C(1) << 32) - SZ_4K, SZ_4K, 0, 0 },
	{ "across the DMA mask", (UINT64_C(1) << 32) - SZ_4K, 2 * SZ_4K, -EINVAL, -EINVAL },
	{ "just past the DMA mask", UINT64_C(1) << 32, SZ_4K, -EINVAL, -EINVAL },
	{ "at 2^48", UINT64_C(1) << 48, SZ_4K, -EINVAL, -EINVAL },
	{ "the last page below 2^64", TOP_PAGE, SZ_4K, -EINVAL, -EINVAL },
	{ "wraps past 2^64", TOP_PAGE, 2 * SZ_4K, -EINVAL, -EINVAL },
	{ "a length that overflows", 2 * SZ_4K, UINT64_MAX & ~UINT64_C(4095), -EINVAL, -EINVAL },
	{ "a length to exactly 2^64", SZ_4K, UINT64_MAX & ~UINT64_C(4095), -EINVAL, -EINVAL },
	{ "unaligned IOVA", 0x10000800, SZ_4K, -EINVAL, -EINVAL },
	{ "unaligned length", 0x10000000, SZ_4K + 1, -EINVAL, -EINVAL },
	{ "no length", 0x10000000, 0, -EINVAL, -EINVAL },
};

/* Every row in both kinds of domain, by iovm_domain_map() and _map_pages(); unmap rows too. */
TEST(map_rows_at_the_edges)
{
	struct iovm_ctx *ctx = open_ctx(opts);
	struct iovm_domain_attr ma = { .dma_bits = 32 }, va = { .type = IOVM_DOMAIN_VA, .dma_bits = 32 };
	struct iovm_domain *doms[2];
	uint8_t *buf = iovm_dma_alloc(ctx, 2 * SZ_4K, SZ_4K, IOVM_DMA_CONTIG);
	iovm_pa_t pa, pages[2];

	CHECK_OK(iovm_dma_pa(ctx, buf, &pa));
	pages[0] = pa;
	pages[1] = IOVM_PA(pa.addr + SZ_4K);
	CHECK_OK(iovm_domain_create(ctx, &ma, &doms[0]));
	CHECK_OK(iovm_domain_create(ctx, &va, &doms[1]));
	for (unsigned d = 0; d < 2; d++) {
		for (unsigned i = 0; i < sizeof(map_rows) / sizeof(map_rows[0]); i++) {
			const struct map_row *r = &map_rows[i];
			int want = d ? r->want_va : r->want_managed, ret;
			iovm_iova_t at = IOVM_IOVA(r->iova);

			ret = iovm_domain_map(doms[d], &at, pa, r->len, RW);
			CHECK_MSG(ret == want, "%s domain, map %s: %d, want %d", d ? "VA" : "managed", r->what, ret,
				  want);
			CHECK(ret || at.addr == r->iova);
			if (!ret)
				CHECK_OK(iovm_domain_unmap(doms[d], at, r->len));
			/* The same through the batch call, where the length is pages. */
			if (r->len && r->len <= 2 * SZ_4K && is_aligned(r->len, SZ_4K)) {
				at = IOVM_IOVA(r->iova);
				ret = iovm_domain_map_pages(doms[d], &at, pages, (unsigned)(r->len >> 12), RW);
				CHECK_MSG(ret == want, "%s domain, map_pages %s: %d, want %d", d ? "VA" : "managed",
					  r->what, ret, want);
				if (!ret)
					CHECK_OK(iovm_domain_unmap(doms[d], at, r->len));
			}
		}
		no_violations(doms[d]);
	}
	/* Unmap: bad arguments are -EINVAL; a good range with nothing in it -ENOENT, even beyond the mask. */
	{
		struct { uint64_t iova, len; int want; } un[] = {
			{ 0, SZ_4K, -ENOENT },
			{ TOP_PAGE, SZ_4K, -ENOENT },           /* ends exactly at 2^64: no wrap */
			{ TOP_PAGE, 2 * SZ_4K, -EINVAL },       /* wraps */
			{ 2 * SZ_4K, UINT64_MAX & ~UINT64_C(4095), -EINVAL }, /* overflows */
			{ SZ_4K, UINT64_MAX & ~UINT64_C(4095), -ENOENT },   /* to exactly 2^64 */
			{ 0, TOP_PAGE, -ENOENT },               /* all of it but the top page: nothing mapped */
			{ UINT64_C(1) << 48, SZ_4K, -ENOENT },
			{ 0x800, SZ_4K, -EINVAL },
			{ SZ_4K, 0, -EINVAL },
		};

		for (unsigned d = 0; d < 2; d++)
			for (unsigned i = 0; i < sizeof(un) / sizeof(un[0]); i++) {
				int ret = iovm_domain_unmap(doms[d], IOVM_IOVA(un[i].iova), un[i].len);

				CHECK_MSG(ret == un[i].want, "unmap row %u: %d, want %d", i, ret, un[i].want);
			}
	}
	/* read_dirty: as unmap, without -ENOENT. */
	{
		bool a, dirty;

		CHECK_OK(iovm_domain_read_dirty(doms[0], IOVM_IOVA(TOP_PAGE), SZ_4K, false, &a, &dirty));
		CHECK(!a && !dirty);
		CHECK_EQ(iovm_domain_read_dirty(doms[0], IOVM_IOVA(TOP_PAGE), 2 * SZ_4K, false, &a, &dirty), -EINVAL);
		CHECK_EQ(iovm_domain_read_dirty(doms[0], IOVM_IOVA(0), 0, false, &a, &dirty), -EINVAL);
	}
	/* Translate: anything not mapped is -ENOENT, at every edge. */
	{
		const uint64_t at[] = { 0, SZ_4K - 1, TOP_PAGE, UINT64_MAX, UINT64_C(1) << 48, UINT64_C(1) << 32 };

		for (unsigned d = 0; d < 2; d++)
			for (unsigned i = 0; i < sizeof(at) / sizeof(at[0]); i++)
				CHECK_EQ(iovm_domain_translate(doms[d], IOVM_IOVA(at[i]), &pa, NULL), -ENOENT);
	}
	CHECK_OK(iovm_domain_destroy(doms[1]));
	CHECK_OK(iovm_domain_destroy(doms[0]));
	iovm_dma_free(ctx, buf);
	iovm_close(ctx);
}

/* Lengths whose end overflows, by pointer and by guest physical address. */
TEST(overflowing_lengths)
{
	struct iovm_ctx *ctx = open_ctx(opts);
	struct iovm_guest_attr ga = { .size = 16 << 20, .page_size = SZ_4K };
	struct iovm_domain_attr va = { .type = IOVM_DOMAIN_VA };
	struct iovm_domain *dom, *vdom, *s1;
	struct iovm_guest *g;
	uint8_t *buf = iovm_dma_alloc(ctx, SZ_4K, SZ_4K, 0);
	iovm_iova_t at = IOVM_IOVA_ANY;
	size_t huge = SIZE_MAX & ~(size_t)4095;

	CHECK_OK(iovm_domain_create(ctx, NULL, &dom));
	CHECK_OK(iovm_domain_create(ctx, &va, &vdom));
	CHECK_EQ(iovm_domain_map_ptr(dom, buf, huge, RW, &at), -EINVAL);
	CHECK_EQ(iovm_domain_map_ptr(vdom, buf, huge, RW, &at), -EINVAL);
	CHECK_EQ(iovm_domain_map(dom, &at, IOVM_PA(SZ_4K), huge, RW), -EINVAL);
	CHECK_EQ(iovm_domain_map_pages(dom, &at, NULL, 1, RW), -EINVAL);
	CHECK_EQ(iovm_domain_map(vdom, &at, IOVM_PA(SZ_4K), SZ_4K, RW), -EINVAL); /* a VA domain chooses nothing */
	CHECK_OK(iovm_guest_create(ctx, &ga, &g));
	CHECK_OK(iovm_guest_domain_create(g, NULL, &s1));
	at = IOVM_IOVA_ANY;
	CHECK_EQ(iovm_domain_map_gpa(s1, &at, IOVM_GPA(SZ_4K), huge, RW), -EINVAL);
	CHECK_EQ(iovm_domain_map_gpa(s1, &at, IOVM_GPA(TOP_PAGE), SZ_4K, RW), -EINVAL);
	at = IOVM_IOVA(0);
	CHECK_EQ(iovm_domain_map_gpa(s1, &at, IOVM_GPA(SZ_4K), SZ_4K, RW), -EINVAL);
	at = IOVM_IOVA(TOP_PAGE);
	CHECK_EQ(iovm_domain_map_gpa(s1, &at, IOVM_GPA(SZ_4K), SZ_4K, RW), -EINVAL);
	at = IOVM_IOVA((UINT64_C(1) << 48) - SZ_4K);
	CHECK_OK(iovm_domain_map_gpa(s1, &at, IOVM_GPA(SZ_4K), SZ_4K, RW));
	CHECK_OK(iovm_domain_unmap(s1, at, SZ_4K));
	CHECK_OK(iovm_domain_destroy(s1));
	CHECK_OK(iovm_guest_destroy(g));
	CHECK_OK(iovm_domain_destroy(vdom));
	CHECK_OK(iovm_domain_destroy(dom));
	iovm_close(ctx);
}

/*
 * A device at the edges: the DMA mask's last page is reachable to its last
 * byte and the next byte faults; IOVA 0 faults; an access that runs off
 * the top of the 64-bit space faults at its first byte.
 */
TEST(device_at_the_edges)
{
	struct iovm_domain_attr a = { .dma_bits = 32 };
	uint8_t *buf, *dst;
	iovm_pa_t pa, there;
	iovm_iova_t dst_iova, at;
	struct iovm_completion c;
	const uint64_t last = (UINT64_C(1) << 32) - SZ_4K;
	bool ours;
	struct rig r;

	rig_open(&r, opts, &a, IOVM_QUEUE_POLLED);
	buf = iovm_dma_alloc(r.ctx, SZ_4K, SZ_4K, 0);
	dst = iovm_dma_zalloc(r.ctx, SZ_4K, SZ_4K, 0);
	memset(buf, 0x5e, SZ_4K);
	CHECK_OK(iovm_dma_pa(r.ctx, buf, &pa));
	CHECK_OK(iovm_domain_map_ptr(r.dom, dst, SZ_4K, RW, &dst_iova));
	/* Top-down: the rig's rings may hold the mask's last page already; else it is ours. */
	at = IOVM_IOVA(last);
	ours = iovm_domain_translate(r.dom, at, &there, NULL) == -ENOENT;
	if (ours)
		CHECK_OK(iovm_domain_map(r.dom, &at, pa, SZ_4K, IOVM_MAP_READ));
	c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = last, .dst = dst_iova.addr, .len = SZ_4K });
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	if (ours)
		CHECK_EQ(dst[SZ_4K - 1], 0x5e);
	c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = last + 100, .dst = dst_iova.addr,
					     .len = SZ_4K });
	CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(c.fault_addr, UINT64_C(1) << 32);
	CHECK_EQ(c.bytes_completed, SZ_4K - 100);
	c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = 0, .dst = dst_iova.addr, .len = 8 });
	CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(c.fault_addr, 0);
	c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = UINT64_MAX - 7, .dst = dst_iova.addr,
					     .len = 64 });
	CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(c.bytes_completed, 0);
	if (ours)
		CHECK_OK(iovm_domain_unmap(r.dom, IOVM_IOVA(last), SZ_4K));
	CHECK_OK(iovm_domain_unmap(r.dom, dst_iova, SZ_4K));
	rig_close(&r);
}

int main(void)
{
	test_init();
	RUN(reserved_ranges);
	RUN(holes_refuse_chosen_iovas);
	RUN(map_rows_at_the_edges);
	RUN(overflowing_lengths);
	RUN(device_at_the_edges);
	return 0;
}
