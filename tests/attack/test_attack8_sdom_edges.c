/* SPDX-License-Identifier: MIT */
/*
 * test_attack8_sdom_edges.c - shared domains at their edges: bad input on
 * every call (a negative errno, never a crash), the window
 * [4 GiB, 4 GiB + iova_size) to the page, the IOVA space and the table
 * pool run out, registrations refused, a domain's own block never
 * reachable by a device.
 */
#include "attack/attack8_sdom.h"

#define HEAP (UINT64_C(16) << 20)

static const char *g_name;
static struct iovm_ctx *ctx;
static uint64_t base_free, base_blocks;

/* Nothing held, the heap back where the test began, and sound. */
#define settled(when) a8_settled(ctx, base_free, base_blocks, (when))

TEST(bad_input)
{
	struct iovm_domain *d = NULL, *x = NULL;
	struct iovm_ctx *own = open_ctx("");
	char n31[32], n32[33];
	void *b = a8_alloc(ctx, A8_K4, A8_K4, 0);
	iovm_pa_t pa = a8_pa(ctx, b);
	iovm_iova_t io;
	struct iovm_share_domain_params p = { 0 };

	memset(n31, 'a', 31), n31[31] = 0;
	memset(n32, 'b', 32), n32[32] = 0;
	EXPECT_EQ(iovm_share_domain_create(NULL, "a", NULL, &d), -EINVAL);
	EXPECT_EQ(iovm_share_domain_create(ctx, NULL, NULL, &d), -EINVAL);
	EXPECT_EQ(iovm_share_domain_create(ctx, "", NULL, &d), -EINVAL);
	EXPECT_EQ(iovm_share_domain_create(ctx, n32, NULL, &d), -EINVAL);
	EXPECT_EQ(iovm_share_domain_create(ctx, "a", NULL, NULL), -EINVAL);
	EXPECT_EQ(iovm_share_domain_create(own, "a", NULL, &d), -ENOENT);
	EXPECT_EQ(iovm_share_domain_open(own, "a", &d), -ENOENT);
	p.iova_size = UINT64_MAX & ~(A8_K4 - 1);
	EXPECT_EQ(iovm_share_domain_create(ctx, "a", &p, &d), -EINVAL);
	p.iova_size = (UINT64_C(1) << 48);
	EXPECT_EQ(iovm_share_domain_create(ctx, "a", &p, &d), -EINVAL);
	p.iova_size = (UINT64_C(1) << 48) - A8_WIN; /* too big for the heap, or fine */
	if (iovm_share_domain_create(ctx, "a", &p, &d) == 0)
		CHECK_OK(iovm_domain_destroy(d));
	p.iova_size = 12345;
	EXPECT_EQ(iovm_share_domain_create(ctx, "a", &p, &d), -EINVAL);
	p.iova_size = 0, p.tables = UINT32_MAX;
	EXPECT(iovm_share_domain_create(ctx, "a", &p, &d) < 0);
	EXPECT_EQ(share_info(ctx).domain_held, 0);

	d = a8_create(ctx, n31, NULL);
	EXPECT_EQ(iovm_share_domain_create(ctx, n31, NULL, &x), -EEXIST);
	EXPECT_EQ(iovm_share_domain_open(ctx, n31, &x), -EBUSY);
	EXPECT_EQ(iovm_share_domain_open(ctx, "nope", &x), -ENOENT);
	EXPECT_EQ(iovm_share_domain_open(ctx, NULL, &x), -EINVAL);
	EXPECT_EQ(iovm_share_domain_open(ctx, n31, NULL), -EINVAL);
	EXPECT_EQ(iovm_share_domain_open(NULL, n31, &x), -EINVAL);

	/* Maps. */
	io = IOVM_IOVA_ANY;
	EXPECT_EQ(iovm_domain_map(d, &io, pa, 0, A8_RW), -EINVAL);
	EXPECT_EQ(iovm_domain_map(d, &io, IOVM_PA(pa.addr + 8), A8_K4, A8_RW), -EINVAL);
	EXPECT_EQ(iovm_domain_map(d, &io, pa, 100, A8_RW), -EINVAL);
	EXPECT_EQ(iovm_domain_map(d, NULL, pa, A8_K4, A8_RW), -EINVAL);
	EXPECT(iovm_domain_map(d, &io, pa, SIZE_MAX & ~(A8_K4 - 1), A8_RW) < 0);
	EXPECT(iovm_domain_map(d, &io, IOVM_PA(UINT64_MAX & ~(A8_K4 - 1)), A8_K4, A8_RW) < 0);
	EXPECT_EQ(iovm_domain_map(d, &io, IOVM_PA(0x1000), A8_K4, A8_RW), -EINVAL);
	io = IOVM_IOVA(A8_WIN + 12);
	EXPECT_EQ(iovm_domain_map(d, &io, pa, A8_K4, A8_RW), -EINVAL);
	io = IOVM_IOVA(0);
	EXPECT_EQ(iovm_domain_map(d, &io, pa, A8_K4, A8_RW), -EINVAL);
	/* The heap's last page and one past it. */
	struct iovm_share_info in = share_info(ctx);

	io = IOVM_IOVA(A8_WIN);
	EXPECT_EQ(iovm_domain_map(d, &io, IOVM_PA(in.heap_pa.addr + in.heap_size - A8_K4), 2 * A8_K4, A8_RW),
		  -EINVAL);
	EXPECT_EQ(a8_xlate(d, A8_WIN, NULL), -ENOENT);
	/* A process's own memory (the context's own heap), not the share's. */
	void *mine = iovm_dma_alloc(own, A8_K4, A8_K4, 0);

	CHECK(mine != NULL);
	io = IOVM_IOVA_ANY;
	EXPECT_EQ(iovm_domain_map(d, &io, a8_pa(own, mine), A8_K4, A8_RW), -EINVAL);
	void *m = aligned_alloc(A8_K4, A8_K4);

	EXPECT(iovm_domain_map_ptr(d, m, A8_K4, A8_RW, &io) < 0);
	EXPECT(iovm_domain_map_ptr(d, mine, A8_K4, A8_RW, &io) < 0);
	free(m);
	CHECK_OK(iovm_dma_free(own, mine));
	iovm_pa_t pages[2] = { pa, IOVM_PA(pa.addr + 1) };

	io = IOVM_IOVA_ANY;
	EXPECT_EQ(iovm_domain_map_pages(d, &io, NULL, 1, A8_RW), -EINVAL);
	EXPECT_EQ(iovm_domain_map_pages(d, &io, pages, 2, A8_RW), -EINVAL);
	EXPECT(iovm_domain_map_pages(d, &io, pages, 0, A8_RW) <= 0);
	pages[1] = IOVM_PA(0x1000);
	EXPECT_EQ(iovm_domain_map_pages(d, &io, pages, 2, A8_RW), -EINVAL);
	struct iovm_domain_stats st;

	CHECK_OK(iovm_domain_stats(d, &st));
	EXPECT_MSG(st.iova_allocated == 0 && st.leaves_4k == 0, "failed maps left %llu bytes of IOVA, %llu leaves",
		   (unsigned long long)st.iova_allocated, (unsigned long long)st.leaves_4k);

	/* Unmaps. */
	EXPECT_EQ(iovm_domain_unmap(d, IOVM_IOVA(A8_WIN), 0), -EINVAL);
	EXPECT_EQ(iovm_domain_unmap(d, IOVM_IOVA(A8_WIN + 1), A8_K4), -EINVAL);
	EXPECT_EQ(iovm_domain_unmap(d, IOVM_IOVA(A8_WIN), A8_K4), -ENOENT);
	EXPECT_EQ(iovm_domain_unmap(d, IOVM_IOVA(A8_K4), A8_K4), -ENOENT);
	EXPECT_EQ(iovm_domain_unmap(d, IOVM_IOVA(UINT64_MAX - A8_K4 + 1), 2 * A8_K4), -EINVAL);
	EXPECT_EQ(iovm_domain_unmap(d, IOVM_IOVA(UINT64_MAX - A8_K4 + 1), A8_K4), -ENOENT);
	EXPECT_EQ(iovm_domain_unmap(NULL, IOVM_IOVA(A8_WIN), A8_K4), -EINVAL);
	EXPECT_EQ(iovm_domain_translate(d, IOVM_IOVA(UINT64_MAX), &pa, NULL) < 0, 1);
	pa = a8_pa(ctx, b);

	/* Registrations and registration caches. */
	struct iovm_rcache *rc = NULL;
	struct iovm_mr *mr = NULL;

	/* A cache is made, holds the view open while it lives, and goes. */
	EXPECT_EQ(iovm_rcache_create(d, NULL, &rc), 0);
	EXPECT_EQ(iovm_domain_destroy(d), -EBUSY);
	EXPECT_EQ(iovm_rcache_destroy(rc), 0);
	m = aligned_alloc(A8_K4, A8_K4);
	/* Registrations of the process's own memory are taken (mp.h), pinned or on demand; the implicit one not. */
	EXPECT_EQ(iovm_mr_reg(d, NULL, SIZE_MAX, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND, &mr), -EOPNOTSUPP);
	EXPECT_EQ(iovm_mr_reg(d, m, A8_K4, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND, &mr), 0);
	EXPECT_EQ(iovm_mr_dereg(mr), 0);
	mr = NULL;
	EXPECT_EQ(iovm_mr_reg(d, m, A8_K4, IOVM_ACCESS_LOCAL_WRITE, &mr), 0);
	EXPECT_EQ(iovm_domain_destroy(d), -EBUSY);
	EXPECT_EQ(iovm_mr_dereg(mr), 0);
	mr = NULL;
	EXPECT_EQ(iovm_mr_reg(d, b, A8_K4, IOVM_ACCESS_LOCAL_WRITE, &mr), 0);
	EXPECT_EQ(iovm_mr_dereg(mr), 0);
	free(m);
	EXPECT_EQ(iovm_domain_flush(d), 0);

	/* A device attached: the view cannot close. */
	struct devq dq = devq_open(ctx, d);

	EXPECT_EQ(iovm_domain_destroy(d), -EBUSY);
	devq_close(&dq);
	EXPECT_EQ(iovm_domain_destroy(NULL), -EINVAL);
	CHECK_OK(iovm_domain_destroy(d));
	EXPECT_EQ(iovm_share_domain_open(ctx, n31, &x), -ENOENT);
	CHECK_OK(iovm_dma_free(ctx, b));
	iovm_close(own);
	settled("bad input");
}

/* The window to the page: [4 GiB, 4 GiB + iova_size), whatever iova_size is. */
TEST(window_edges)
{
	static const uint64_t sizes[] = { A8_K4, 3 * A8_K4, UINT64_C(1) << 20, A8_M2 + A8_K4, UINT64_C(1) << 30 };
	uint8_t *b = a8_alloc(ctx, A8_M2, A8_M2, 0);
	iovm_pa_t pa = a8_pa(ctx, b);

	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct iovm_share_domain_params p = { .iova_size = sizes[i] };
		struct iovm_domain *d = a8_create(ctx, "win", &p);
		uint64_t end = A8_WIN + sizes[i];
		struct iovm_domain_stats st;
		iovm_iova_t io;
		unsigned n = 0, outside = 0;
		uint64_t first_out = 0;

		CHECK_OK(iovm_domain_stats(d, &st));
		EXPECT_MSG(st.iova_free == sizes[i], "iova_size %#llx: iova_free %#llx",
			   (unsigned long long)sizes[i], (unsigned long long)st.iova_free);
		io = IOVM_IOVA(A8_WIN - A8_K4);
		EXPECT_EQ(iovm_domain_map(d, &io, pa, A8_K4, A8_RW), -EINVAL);
		io = IOVM_IOVA(A8_WIN - A8_K4);
		EXPECT_EQ(iovm_domain_map(d, &io, pa, 2 * A8_K4, A8_RW), -EINVAL);
		io = IOVM_IOVA(end);
		int r0 = iovm_domain_map(d, &io, pa, A8_K4, A8_RW);

		EXPECT_MSG(r0 == -EINVAL, "iova_size %#llx: a map at the window's end %#llx says %d, not -EINVAL",
			   (unsigned long long)sizes[i], (unsigned long long)end, r0);
		if (r0 == 0)
			a8_unmap(d, end, A8_K4);
		io = IOVM_IOVA(end - A8_K4);
		r0 = iovm_domain_map(d, &io, pa, 2 * A8_K4, A8_RW);
		EXPECT_MSG(r0 == -EINVAL, "iova_size %#llx: a map across the window's end says %d, not -EINVAL",
			   (unsigned long long)sizes[i], r0);
		if (r0 == 0)
			a8_unmap(d, end - A8_K4, 2 * A8_K4);
		CHECK_EQ(a8_map(d, pa, A8_K4, end - A8_K4), end - A8_K4);
		if (sizes[i] > A8_K4)
			CHECK_EQ(a8_map(d, pa, A8_K4, A8_WIN), A8_WIN);
		/* The rest at the domain's choice, until it says -ENOSPC. */
		for (;;) {
			io = IOVM_IOVA_ANY;
			int r = iovm_domain_map(d, &io, pa, A8_K4, A8_RW);

			if (r) {
				EXPECT_EQ(r, -ENOSPC);
				break;
			}
			if (io.addr < A8_WIN || io.addr + A8_K4 > end) {
				if (!outside++)
					first_out = io.addr;
				a8_unmap(d, io.addr, A8_K4);
			}
			if (++n > 300)
				break;
		}
		EXPECT_MSG(outside == 0, "iova_size %#llx (window [%#llx, %#llx)): %u IOVAs chosen outside it, the first %#llx",
			   (unsigned long long)sizes[i], (unsigned long long)A8_WIN, (unsigned long long)end, outside,
			   (unsigned long long)first_out);
		CHECK_OK(iovm_domain_stats(d, &st));
		if (sizes[i] <= 300 * A8_K4) {
			EXPECT_MSG(st.iova_allocated == sizes[i] && st.iova_free == 0,
				   "iova_size %#llx full: allocated %#llx free %#llx", (unsigned long long)sizes[i],
				   (unsigned long long)st.iova_allocated, (unsigned long long)st.iova_free);
		}
		/* The whole window in one unmap, and 2^64 - end beyond it. */
		a8_unmap(d, A8_WIN, sizes[i]);
		CHECK_OK(iovm_domain_stats(d, &st));
		EXPECT_EQ(st.iova_allocated, 0);
		CHECK_OK(iovm_domain_destroy(d));
	}
	CHECK_OK(iovm_dma_free(ctx, b));
	settled("window");
}

/* A small table pool: a map that needs one table more fails -ENOMEM, leaving nothing. */
TEST(table_pool_exhaustion)
{
	struct iovm_share_domain_params p = { .tables = 4 };
	struct iovm_domain *d = a8_create(ctx, "pool", &p);
	uint8_t *b = a8_alloc(ctx, A8_K4, A8_K4, 0);
	iovm_pa_t pa = a8_pa(ctx, b);
	struct iovm_domain_stats st0, st;
	unsigned ok = 0;
	int r = 0;

	CHECK_OK(iovm_domain_stats(d, &st0));
	for (unsigned i = 0; i < 512; i++) {
		iovm_iova_t io = IOVM_IOVA(A8_WIN + (uint64_t)i * A8_M2);

		r = iovm_domain_map(d, &io, pa, A8_K4, A8_RW);
		if (r)
			break;
		ok++;
	}
	EXPECT_EQ(r, -ENOMEM);
	EXPECT(ok >= 1 && ok < 512);
	EXPECT_EQ(a8_xlate(d, A8_WIN + (uint64_t)ok * A8_M2, NULL), -ENOENT);
	CHECK_OK(iovm_domain_stats(d, &st));
	EXPECT_EQ(st.iova_allocated, ok * A8_K4);
	EXPECT_EQ(st.leaves_4k, ok);
	/* At the domain's choice: either in a table it has, or -ENOMEM with no IOVA kept. */
	iovm_iova_t io = IOVM_IOVA_ANY;

	r = iovm_domain_map(d, &io, pa, A8_K4, A8_RW);
	if (r == 0)
		a8_unmap(d, io.addr, A8_K4);
	else
		EXPECT_EQ(r, -ENOMEM);
	CHECK_OK(iovm_domain_stats(d, &st));
	EXPECT_EQ(st.iova_allocated, ok * A8_K4);
	/* Freed while mapped in a starved domain, then all unmapped. */
	CHECK_OK(iovm_dma_free(ctx, b));
	EXPECT(a8_held(ctx) >= A8_K4);
	for (unsigned i = 0; i < ok; i++)
		a8_unmap(d, A8_WIN + (uint64_t)i * A8_M2, A8_K4);
	EXPECT_EQ(a8_held(ctx), 0);
	/* Tables stay: the same maps fit again, and no more. */
	b = a8_alloc(ctx, A8_K4, A8_K4, 0);
	pa = a8_pa(ctx, b);
	for (unsigned i = 0; i < ok; i++)
		CHECK_EQ(a8_map(d, pa, A8_K4, A8_WIN + (uint64_t)i * A8_M2), A8_WIN + (uint64_t)i * A8_M2);
	a8_unmap(d, A8_WIN, (size_t)ok * A8_M2);
	CHECK_OK(iovm_dma_free(ctx, b));
	CHECK_OK(iovm_domain_destroy(d));
	settled("table pool");
}

/* 32 domains; the 33rd -ENOSPC; then the names are free again. */
TEST(max_domains)
{
	struct iovm_share_domain_params p = { .iova_size = A8_M2, .tables = 4 };
	struct iovm_domain *d[33];
	unsigned n = 0;
	int r = 0;

	for (; n < 33; n++) {
		char nm[16];

		snprintf(nm, sizeof(nm), "m%u", n);
		r = iovm_share_domain_create(ctx, nm, &p, &d[n]);
		if (r)
			break;
	}
	EXPECT_EQ(n, 32);
	EXPECT_EQ(r, -ENOSPC);
	for (unsigned i = 0; i < n; i++)
		CHECK_OK(iovm_domain_destroy(d[i]));
	d[0] = a8_create(ctx, "m32", &p);
	CHECK_OK(iovm_domain_destroy(d[0]));
	settled("32 domains");
}

static void kid_scribble(int rd, int wr, void *arg)
{
	uint64_t first = (uint64_t)(uintptr_t)arg;
	struct iovm_ctx *c = attach_ok(g_name);
	struct iovm_domain *d1 = a8_open(c, "reach"), *d2 = a8_open(c, "victim");
	struct devq dq = devq_open(c, d1);
	struct iovm_share_info in = share_info(c);
	iovm_pa_t got;

	(void)rd;
	/* Everything d1 maps from @first on: the pages a new domain took among them. */
	for (uint64_t off = first; off < in.heap_size; off += A8_K4)
		if (a8_xlate(d1, A8_WIN + off, NULL) == 0)
			devq_fill(&dq, A8_WIN + off, A8_K4, 0xff);
	put64(wr, (uint64_t)(int64_t)a8_xlate(d2, A8_WIN + 0x123000, &got));
	_exit(0);
}

/*
 * Free heap memory may be mapped; a domain's own block may not. A domain
 * made afterwards must not have its block in memory a device reaches.
 */
TEST(new_domain_block_not_device_reachable)
{
	struct iovm_domain *d1 = a8_create(ctx, "reach", NULL), *d2;
	struct iovm_share_info in = share_info(ctx);
	iovm_iova_t io;
	uint64_t first = UINT64_MAX, last = 0;

	/* Every page no domain holds, mapped in d1, page by page at IOVA heap offset + 4 GiB. */
	for (uint64_t off = 0; off < in.heap_size; off += A8_K4) {
		io = IOVM_IOVA(A8_WIN + off);
		if (iovm_domain_map(d1, &io, IOVM_PA(in.heap_pa.addr + off), A8_K4, A8_RW) == 0) {
			first = first < off ? first : off;
			last = off;
		}
	}
	CHECK(first != UINT64_MAX);
	int r = iovm_share_domain_create(ctx, "victim", NULL, &d2);

	if (r) {
		EXPECT_EQ(r, -ENOMEM);
		a8_unmap(d1, A8_WIN, in.heap_size);
		CHECK_OK(iovm_domain_destroy(d1));
		settled("reach");
		return;
	}
	/* Pages of the new block: those a map now refuses, though d1 maps them. */
	unsigned reachable = 0;
	struct iovm_domain *d3 = a8_create(ctx, "probe", NULL);

	for (uint64_t off = first; off <= last; off += A8_K4) {
		io = IOVM_IOVA_ANY;
		if (iovm_domain_map(d3, &io, IOVM_PA(in.heap_pa.addr + off), A8_K4, A8_RW) == 0)
			a8_unmap(d3, io.addr, A8_K4);
		else if (a8_xlate(d1, A8_WIN + off, NULL) == 0)
			reachable++;
	}
	EXPECT_MSG(reachable == 0, "%u pages of shared domains' own blocks are mapped in another shared domain",
		   reachable);
	if (reachable) {
		/* What a device does with it: a child fills them through d1, then walks d2. */
		struct child k = child_start(kid_scribble, (void *)(uintptr_t)first);
		uint64_t ret = get64(k.rd);

		EXPECT_MSG(ret == (uint64_t)-ENOENT,
			   "after a device wrote through d1, d2 (nothing mapped) translates %#llx: %lld",
			   (unsigned long long)(A8_WIN + 0x123000), (long long)ret);
		int st = child_wait(&k);

		EXPECT_MSG(st == 0, "the child walking d2 ended with %d", st);
		/* The share is beyond repair now: the rest of this test would walk garbage. */
		return;
	}
	CHECK_OK(iovm_domain_destroy(d3));
	CHECK_OK(iovm_domain_destroy(d2));
	a8_unmap(d1, A8_WIN, in.heap_size);
	CHECK_OK(iovm_domain_destroy(d1));
	settled("reach");
}

int main(void)
{
	a8_init();
	g_name = share_name("a8edges");
	ctx = share_ok(g_name, HEAP);
	base_free = a8_free(ctx);
	base_blocks = share_info(ctx).blocks;

	RUN(bad_input);
	RUN(window_edges);
	RUN(table_pool_exhaustion);
	RUN(max_domains);
	RUN(new_domain_block_not_device_reachable);

	iovm_close(ctx);
	return a8_status();
}
