/* SPDX-License-Identifier: MIT */
/*
 * test_mp_domain.c - shared domains (iovm/mp.h) between real processes:
 * what one maps another's device reaches at the same IOVA; a strict unmap
 * in one process reaches the IOTLB of a device in another before it
 * returns, while that device runs; several processes mapping, using and
 * unmapping at once without an IOVA handed twice; a process killed with
 * the domain open neither hangs an unmap nor leaks the domain; and bad
 * input on the new calls.
 */
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "mp_sdom.h"
#include "mp_util.h"

#define HEAP (UINT64_C(16) << 20)
#define DOM "shared-dom"

static const char *g_name;

static uint64_t free_bytes(struct iovm_ctx *ctx)
{
	return share_info(ctx).heap_free;
}

TEST(bad_input)
{
	struct iovm_ctx *ctx, *alone;
	struct iovm_domain *dom, *doms[33];
	char name[64];
	uint8_t *buf, own[8192] __attribute__((aligned(4096)));
	iovm_iova_t iova;
	struct iovm_mr *mr;
	struct iovm_rcache *rc;
	struct iovm_cbuf *cb;
	iovm_pa_t pages[2], pa;
	iovm_iova_t taken;
	unsigned npages;
	struct iovm_share_info info;
	uint64_t before;

	g_name = share_name("dom-bad");
	ctx = share_ok(g_name, HEAP);
	before = free_bytes(ctx);
	CHECK_OK(iovm_open("", &alone));
	CHECK_EQ(iovm_share_domain_create(NULL, DOM, NULL, &dom), -EINVAL);
	CHECK_EQ(iovm_share_domain_create(ctx, NULL, NULL, &dom), -EINVAL);
	CHECK_EQ(iovm_share_domain_create(ctx, "", NULL, &dom), -EINVAL);
	CHECK_EQ(iovm_share_domain_create(ctx, DOM, NULL, NULL), -EINVAL);
	memset(name, 'x', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	CHECK_EQ(iovm_share_domain_create(ctx, name, NULL, &dom), -EINVAL);
	CHECK_EQ(iovm_share_domain_create(alone, DOM, NULL, &dom), -ENOENT);
	CHECK_EQ(iovm_share_domain_create(ctx, DOM, &(struct iovm_share_domain_params){ .iova_size = 4097 }, &dom),
		 -EINVAL);
	CHECK_EQ(iovm_share_domain_create(ctx, DOM, &(struct iovm_share_domain_params){ .tables = 3 }, &dom), -EINVAL);
	CHECK_EQ(iovm_share_domain_create(ctx, DOM, &(struct iovm_share_domain_params){ .iova_size = UINT64_MAX & ~4095ull },
					  &dom),
		 -EINVAL);
	CHECK_EQ(iovm_share_domain_open(NULL, DOM, &dom), -EINVAL);
	CHECK_EQ(iovm_share_domain_open(ctx, NULL, &dom), -EINVAL);
	CHECK_EQ(iovm_share_domain_open(ctx, DOM, NULL), -EINVAL);
	CHECK_EQ(iovm_share_domain_open(ctx, DOM, &dom), -ENOENT);
	CHECK_EQ(iovm_share_domain_open(alone, DOM, &dom), -ENOENT);
	CHECK_EQ(free_bytes(ctx), before); /* nothing of the failures stayed */

	CHECK_OK(iovm_share_domain_create(ctx, DOM, NULL, &dom));
	CHECK(free_bytes(ctx) < before);
	CHECK_EQ(iovm_share_domain_create(ctx, DOM, NULL, &(struct iovm_domain *){ NULL }), -EEXIST);
	CHECK_EQ(iovm_share_domain_open(ctx, DOM, &(struct iovm_domain *){ NULL }), -EBUSY);
	/* Only the shared heap maps: not this process's own memory, not the whole heap (a domain's block is in it). */
	iova = IOVM_IOVA(IOVM_ADDR_INVALID);
	CHECK_EQ(iovm_domain_map_ptr(dom, own, sizeof(own), IOVM_MAP_READ, &iova), -ENOENT); /* not iovm's */
	/* A common buffer stays the process's own: its PA means nothing in another process. */
	CHECK_OK(iovm_cbuf_alloc(ctx, 8192, 0, &cb));
	CHECK_OK(iovm_cbuf_pages(cb, pages, 2, &npages));
	CHECK_EQ(iovm_domain_map_pages(dom, &iova, pages, npages, IOVM_MAP_READ), -EINVAL);
	CHECK_EQ(iovm_domain_map(dom, &iova, pages[0], 4096, IOVM_MAP_READ), -EINVAL);
	CHECK_OK(iovm_cbuf_free(cb));
	CHECK_OK(iovm_share_info(ctx, &info));
	iova = IOVM_IOVA(IOVM_ADDR_INVALID);
	CHECK_EQ(iovm_domain_map(dom, &iova, info.heap_pa, info.heap_size, IOVM_MAP_READ), -EINVAL);
	CHECK_EQ(iovm_mr_reg(dom, NULL, SIZE_MAX, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND, &mr), -EOPNOTSUPP);
	/* A registration cache is made (test_mp_domain_rcache.c tries it). */
	CHECK_OK(iovm_rcache_create(dom, NULL, &rc));
	CHECK_OK(iovm_rcache_destroy(rc));
	buf = iovm_dma_alloc(ctx, 8192, 4096, 0);
	CHECK(buf != NULL);
	/* An IOVA outside the window, and one taken. */
	CHECK_OK(iovm_dma_pa(ctx, buf, &pa));
	iova = IOVM_IOVA(4096);
	CHECK_EQ(iovm_domain_map(dom, &iova, pa, 8192, IOVM_MAP_READ), -EINVAL);
	iova = IOVM_IOVA((UINT64_C(1) << 48) - 4096);
	CHECK_EQ(iovm_domain_map(dom, &iova, pa, 8192, IOVM_MAP_READ), -EINVAL);
	iova = IOVM_IOVA(IOVM_ADDR_INVALID);
	CHECK_OK(iovm_domain_map_ptr(dom, buf, 8192, IOVM_MAP_READ, &iova));
	CHECK_EQ(iovm_domain_map(dom, &iova, pa, 8192, IOVM_MAP_READ), -EEXIST);
	taken = IOVM_IOVA(iova.addr + 4096);
	CHECK_EQ(iovm_domain_map(dom, &taken, pa, 4096, IOVM_MAP_READ), -EEXIST);
	taken = IOVM_IOVA(iova.addr + 8192);
	CHECK_OK(iovm_domain_map(dom, &taken, pa, 4096, IOVM_MAP_READ)); /* the next page is free */
	CHECK_OK(iovm_domain_unmap(dom, taken, 4096));
	CHECK_OK(iovm_domain_unmap(dom, iova, 8192));
	CHECK_EQ(iovm_domain_unmap(dom, iova, 8192), -ENOENT);
	CHECK_OK(iovm_dma_free(ctx, buf));
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_EQ(iovm_share_domain_open(ctx, DOM, &dom), -ENOENT); /* the last view took it */
	CHECK_EQ(free_bytes(ctx), before);

	/* 32 domains, not 33; all their memory back after. */
	for (int i = 0; i < 33; i++) {
		snprintf(name, sizeof(name), "d%d", i);
		/* A small window: with the oracle on, each block holds a word of shadow per IOVA page. */
		struct iovm_share_domain_params p = { .tables = 8, .iova_size = 64 << 20 };
		int ret = iovm_share_domain_create(ctx, name, &p, &doms[i]);

		CHECK_EQ(ret, i < 32 ? 0 : -ENOSPC);
	}
	for (int i = 0; i < 32; i++)
		CHECK_OK(iovm_domain_destroy(doms[i]));
	CHECK_EQ(free_bytes(ctx), before);
	CHECK_OK(iovm_share_check(ctx));
	CHECK_OK(iovm_close(alone));
	CHECK_OK(iovm_close(ctx));
}

/*
 * Too few tables: a map that needs more fails whole (-ENOMEM), leaving its
 * IOVA free and the domain working.
 */
TEST(table_pool_runs_out)
{
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	struct iovm_domain_stats st;
	uint8_t *buf;
	iovm_pa_t pa;
	/* 1 GiB apart: each needs a level-1 and a level-0 table of its own. */
	iovm_iova_t a = IOVM_IOVA(UINT64_C(4) << 30), b = IOVM_IOVA(UINT64_C(5) << 30), any;

	g_name = share_name("dom-pool");
	ctx = share_ok(g_name, HEAP);
	/* The root, and three: one map's worth (levels 2, 1, 0). */
	CHECK_OK(iovm_share_domain_create(ctx, DOM, &(struct iovm_share_domain_params){ .tables = 4, .iova_size = UINT64_C(4) << 30 },
					  &dom));
	buf = iovm_dma_alloc(ctx, 4096, 4096, 0);
	CHECK(buf != NULL);
	CHECK_OK(iovm_dma_pa(ctx, buf, &pa));
	CHECK_OK(iovm_domain_map(dom, &a, pa, 4096, IOVM_MAP_READ));
	CHECK_EQ(iovm_domain_map(dom, &b, pa, 4096, IOVM_MAP_READ), -ENOMEM);
	CHECK_OK(iovm_domain_stats(dom, &st));
	CHECK_EQ(st.leaves_4k, 1);
	CHECK_EQ(st.tables, 4);
	/* Its IOVA was given back: taken by an allocation now, after a's. */
	any = IOVM_IOVA(IOVM_ADDR_INVALID);
	CHECK_OK(iovm_domain_map(dom, &any, pa, 4096, IOVM_MAP_READ));
	CHECK_EQ(any.addr, a.addr + 4096);
	CHECK_OK(iovm_domain_unmap(dom, any, 4096));
	CHECK_OK(iovm_domain_unmap(dom, a, 4096));
	/* Tables stay once made (as a private page table's do): a's region maps again, b's still cannot. */
	CHECK_OK(iovm_domain_stats(dom, &st));
	CHECK_EQ(st.tables, 4);
	CHECK_EQ(iovm_domain_map(dom, &b, pa, 4096, IOVM_MAP_READ), -ENOMEM);
	CHECK_OK(iovm_domain_map(dom, &a, pa, 4096, IOVM_MAP_READ | IOVM_MAP_WRITE));
	CHECK_OK(iovm_domain_unmap(dom, a, 4096));
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_OK(iovm_dma_free(ctx, buf));
	CHECK_OK(iovm_share_check(ctx));
	CHECK_OK(iovm_close(ctx));
}

/*
 * The child opens the domain the parent made and mapped: its device copies
 * the parent's buffer, at the parent's IOVA, into a buffer the child maps;
 * the parent's device then reads the child's mapping. Both translate every
 * IOVA to the same PA.
 */
static void two_way_child(int rd, int wr, void *arg)
{
	struct iovm_ctx *ctx = attach_ok(g_name);
	struct iovm_domain *dom;
	iovm_iova_t src = IOVM_IOVA(get64(rd)), dst = IOVM_IOVA(IOVM_ADDR_INVALID);
	iovm_pa_t pa;
	struct devq d;
	uint8_t *buf;

	(void)arg;
	CHECK_OK(iovm_share_domain_open(ctx, DOM, &dom));
	CHECK_OK(iovm_domain_translate(dom, src, &pa, NULL));
	put64(wr, pa.addr);
	buf = iovm_dma_alloc(ctx, 65536, 4096, 0);
	CHECK(buf != NULL);
	memset(buf, 0, 65536);
	CHECK_OK(iovm_domain_map_ptr(dom, buf, 65536, IOVM_MAP_READ | IOVM_MAP_WRITE, &dst));
	d = devq_open(ctx, dom);
	CHECK_EQ(devq_run(&d, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = src.addr, .dst = dst.addr,
						     .len = 65536 }),
		 IOVM_STATUS_SUCCESS);
	for (int i = 0; i < 65536; i++)
		CHECK_EQ(buf[i], (uint8_t)(i * 13 + 5));
	/* The parent's mapping is read-only: a write there faults. */
	CHECK_EQ(devq_fill(&d, src.addr, 4096, 1), IOVM_STATUS_PAGE_FAULT);
	put64(wr, dst.addr);
	CHECK_EQ(get64(rd), 1); /* the parent read it */
	CHECK_OK(iovm_domain_unmap(dom, dst, 65536));
	put64(wr, 2);
	CHECK_EQ(get64(rd), 3);
	devq_close(&d);
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_OK(iovm_dma_free(ctx, buf));
	CHECK_OK(iovm_close(ctx));
}

TEST(mapped_in_one_reached_from_another)
{
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	struct iovm_domain_stats st;
	iovm_iova_t src = IOVM_IOVA(IOVM_ADDR_INVALID), back_iova = IOVM_IOVA(IOVM_ADDR_INVALID), theirs;
	iovm_pa_t pa, seen;
	uint64_t before;
	struct child c;
	struct devq d;
	uint8_t *buf, *back;

	g_name = share_name("dom-2way");
	ctx = share_ok(g_name, HEAP);
	before = free_bytes(ctx);
	CHECK_OK(iovm_share_domain_create(ctx, DOM, NULL, &dom));
	buf = iovm_dma_alloc(ctx, 65536, 4096, 0);
	back = iovm_dma_alloc(ctx, 65536, 4096, 0);
	CHECK(buf && back);
	for (int i = 0; i < 65536; i++)
		buf[i] = (uint8_t)(i * 13 + 5);
	CHECK_OK(iovm_domain_map_ptr(dom, buf, 65536, IOVM_MAP_READ, &src));
	CHECK(src.addr >= (UINT64_C(4) << 30));
	CHECK_OK(iovm_dma_pa(ctx, buf, &pa));
	c = child_start(two_way_child, NULL);
	put64(c.wr, src.addr);
	CHECK_EQ(get64(c.rd), pa.addr);
	theirs = IOVM_IOVA(get64(c.rd));
	CHECK(theirs.addr >= src.addr + 65536 || theirs.addr + 65536 <= src.addr);
	CHECK_OK(iovm_domain_translate(dom, theirs, &seen, NULL));
	d = devq_open(ctx, dom);
	memset(back, 0, 65536);
	CHECK_OK(iovm_domain_map_ptr(dom, back, 65536, IOVM_MAP_READ | IOVM_MAP_WRITE, &back_iova));
	/* Through the child's mapping, by this process's device: the child's buffer holds the copy. */
	CHECK_EQ(devq_run(&d, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = theirs.addr, .dst = back_iova.addr,
						     .len = 65536 }),
		 IOVM_STATUS_SUCCESS);
	CHECK(!memcmp(back, buf, 65536));
	put64(c.wr, 1);
	/* The child unmapped its range: this process's device, which cached it, faults there now. */
	CHECK_EQ(get64(c.rd), 2);
	CHECK_EQ(devq_fill(&d, theirs.addr, 4096, 9), IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(iovm_domain_translate(dom, theirs, &seen, NULL), -ENOENT);
	put64(c.wr, 3);
	child_ok(&c);
	devq_close(&d);
	CHECK_OK(iovm_domain_stats(dom, &st));
	CHECK_EQ(st.leaves_4k, 32); /* buf's and back's pages: the child's went */
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_OK(iovm_dma_free(ctx, buf));
	CHECK_OK(iovm_dma_free(ctx, back));
	CHECK_EQ(free_bytes(ctx), before);
	CHECK_OK(iovm_close(ctx));
}

/*
 * A strict unmap in one process reaches a device in another while it runs:
 * the child's device fills a page over and over through the parent's
 * mapping (its IOTLB holds the translation); once the parent's unmap
 * returns, the parent clears the page, and no fill of the child's may
 * land there again. Rounds, each at a new IOVA.
 */
#define UNMAP_ROUNDS 40

static void filler_child(int rd, int wr, void *arg)
{
	struct iovm_ctx *ctx = attach_ok(g_name);
	struct iovm_domain *dom;
	struct devq d;

	(void)arg;
	CHECK_OK(iovm_share_domain_open(ctx, DOM, &dom));
	d = devq_open(ctx, dom);
	for (int round = 0; round < UNMAP_ROUNDS; round++) {
		uint64_t iova = get64(rd), ok = 0, after = 0, msg = 0;
		int flags = fcntl(rd, F_GETFL);

		/* Until the parent says its unmap returned, fill; a fill may fault only once it began. */
		CHECK_EQ(devq_fill(&d, iova, 4096, 0xa5), IOVM_STATUS_SUCCESS);
		put64(wr, 1);
		CHECK_OK(fcntl(rd, F_SETFL, flags | O_NONBLOCK));
		for (;;) {
			uint8_t st = devq_fill(&d, iova, 4096, 0xa5);
			ssize_t n;

			ok += st == IOVM_STATUS_SUCCESS;
			CHECK(st == IOVM_STATUS_SUCCESS || st == IOVM_STATUS_PAGE_FAULT);
			n = read(rd, &msg, sizeof(msg));
			if (n == (ssize_t)sizeof(msg))
				break;
			CHECK(n < 0 && errno == EAGAIN);
		}
		CHECK_OK(fcntl(rd, F_SETFL, flags));
		CHECK_EQ(msg, 2);
		for (int i = 0; i < 64; i++)
			after += devq_fill(&d, iova, 4096, 0xa5) != IOVM_STATUS_PAGE_FAULT;
		put64(wr, after);
		put64(wr, ok);
	}
	devq_close(&d);
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_OK(iovm_close(ctx));
}

TEST(strict_unmap_reaches_a_running_device)
{
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	struct iovm_domain_stats st;
	struct child c;
	uint8_t *page;

	g_name = share_name("dom-unmap");
	ctx = share_ok(g_name, HEAP);
	CHECK_OK(iovm_share_domain_create(ctx, DOM, NULL, &dom));
	page = iovm_dma_alloc(ctx, 4096, 4096, 0);
	CHECK(page != NULL);
	c = child_start(filler_child, NULL);
	for (int round = 0; round < UNMAP_ROUNDS; round++) {
		iovm_iova_t iova = IOVM_IOVA(IOVM_ADDR_INVALID);

		memset(page, 0, 4096);
		CHECK_OK(iovm_domain_map_ptr(dom, page, 4096, IOVM_MAP_READ | IOVM_MAP_WRITE, &iova));
		put64(c.wr, iova.addr);
		CHECK_EQ(get64(c.rd), 1); /* its device cached the translation, and fills */
		CHECK(all_bytes(page, 4096, 0xa5));
		CHECK_OK(iovm_domain_unmap(dom, iova, 4096));
		/* Returned: no device anywhere writes through it. */
		memset(page, 0, 4096);
		put64(c.wr, 2);
		CHECK_EQ(get64(c.rd), 0); /* every fill after the unmap faulted */
		(void)get64(c.rd); /* fills that landed before: any number, the first one aside */
		CHECK(all_bytes(page, 4096, 0));
	}
	child_ok(&c);
	CHECK_OK(iovm_domain_stats(dom, &st));
	CHECK_EQ(st.leaves_4k, 0);
	CHECK_EQ(st.strict_invalidations, UNMAP_ROUNDS);
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_OK(iovm_dma_free(ctx, page));
	CHECK_OK(iovm_close(ctx));
}

/*
 * Several processes map, use and unmap their own buffers in one domain at
 * once: every IOVA one gets is its own (its device's fills land in its
 * buffer and nowhere else), and an unmapped range faults. An IOVA that
 * one process unmaps is another's to map at once: the fault after the
 * unmap is looked for in a window of the process's own (every other
 * round), far above where the allocator puts the others.
 */
#define WORKERS 4
#define WORK_ROUNDS 150
#define WINDOW(tag) ((UINT64_C(4) << 30) + (UINT64_C(512) << 20) + (uint64_t)(tag) * (UINT64_C(128) << 10))

static void worker_child(int rd, int wr, void *arg)
{
	uint8_t tag = (uint8_t)(uintptr_t)arg;
	struct iovm_ctx *ctx = attach_ok(g_name);
	struct iovm_domain *dom;
	unsigned seed = tag * 7919u;
	struct devq d;

	(void)rd;
	CHECK_OK(iovm_share_domain_open(ctx, DOM, &dom));
	d = devq_open(ctx, dom);
	for (int round = 0; round < WORK_ROUNDS; round++) {
		size_t len = (size_t)(1 + rand_r(&seed) % 24) * 4096;
		bool own = round % 2;
		iovm_iova_t iova = IOVM_IOVA(own ? WINDOW(tag) : IOVM_ADDR_INVALID);
		uint8_t *buf = iovm_dma_alloc(ctx, len, 4096, 0);
		iovm_pa_t pa;

		CHECK(buf != NULL);
		memset(buf, 0, len);
		if (own)
			CHECK_OK(map_at(ctx, dom, buf, len, &iova));
		else
			CHECK_OK(iovm_domain_map_ptr(dom, buf, len, IOVM_MAP_READ | IOVM_MAP_WRITE, &iova));
		CHECK_OK(iovm_domain_translate(dom, IOVM_IOVA(iova.addr + len - 1), &pa, NULL));
		CHECK_EQ(devq_fill(&d, iova.addr, len, tag), IOVM_STATUS_SUCCESS);
		CHECK(all_bytes(buf, len, tag));
		if (own)
			CHECK_EQ(iova.addr, WINDOW(tag));
		CHECK_OK(iovm_domain_unmap(dom, iova, len));
		if (own)
			CHECK_EQ(devq_fill(&d, iova.addr, 4096, (uint8_t)(tag + 1)), IOVM_STATUS_PAGE_FAULT);
		CHECK(all_bytes(buf, len, tag));
		CHECK_OK(iovm_dma_free(ctx, buf));
	}
	put64(wr, 1);
	devq_close(&d);
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_OK(iovm_close(ctx));
}

TEST(processes_map_and_unmap_at_once)
{
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	struct iovm_domain_stats st;
	struct child c[WORKERS];
	uint64_t before;

	g_name = share_name("dom-many");
	ctx = share_ok(g_name, HEAP);
	before = free_bytes(ctx);
	CHECK_OK(iovm_share_domain_create(ctx, DOM, &(struct iovm_share_domain_params){ .iova_size = UINT64_C(1) << 30 },
					  &dom));
	for (int i = 0; i < WORKERS; i++)
		c[i] = child_start(worker_child, (void *)(uintptr_t)(0x10 + i));
	for (int i = 0; i < WORKERS; i++) {
		CHECK_EQ(get64(c[i].rd), 1);
		child_ok(&c[i]);
	}
	CHECK_OK(iovm_domain_stats(dom, &st));
	CHECK_EQ(st.leaves_4k + st.leaves_2m + st.leaves_1g, 0);
	CHECK_EQ(st.iova_allocated, 0);
	CHECK_EQ(st.iova_free, UINT64_C(1) << 30);
	CHECK_EQ(st.strict_invalidations, 0); /* counted per view: this one unmapped nothing */
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_OK(iovm_share_check(ctx));
	CHECK_EQ(free_bytes(ctx), before);
	CHECK_OK(iovm_close(ctx));
}

/*
 * The IOVA statistics of a shared domain against a model: random maps at
 * chosen IOVAs and unmaps, in a window whose page count is no multiple of
 * 64 (the allocator's bitmap ends inside a word), runs that end at the
 * window's edges included; after each step, allocated, free and the
 * largest gap are the model's.
 */
#define SW_PAGES (64 * 64 + 37)

static void model_stats(const bool *taken, uint64_t *alloc, uint64_t *free_, uint64_t *largest)
{
	uint64_t run = 0;

	*alloc = *free_ = *largest = 0;
	for (unsigned i = 0; i < SW_PAGES; i++) {
		if (taken[i]) {
			++*alloc;
			run = 0;
		} else {
			++*free_;
			run++;
			*largest = MAX(*largest, run);
		}
	}
}

TEST(iova_stats_follow_a_model)
{
	static bool taken[SW_PAGES];
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	struct iovm_domain_stats st;
	uint64_t base, rng = 0x5eed, alloc, free_, largest;
	iovm_pa_t pa;
	uint8_t *buf;

	g_name = share_name("dom-stats");
	ctx = share_ok(g_name, HEAP);
	CHECK_OK(iovm_share_domain_create(ctx, DOM, &(struct iovm_share_domain_params){ .iova_size = SW_PAGES * 4096ull },
					  &dom));
	buf = iovm_dma_alloc(ctx, 4096, 4096, 0);
	CHECK(buf);
	CHECK_OK(iovm_dma_pa(ctx, buf, &pa));
	/* Where the window starts: the first IOVA the domain chooses, once everything is free. */
	{
		iovm_iova_t at = IOVM_IOVA_ANY;

		CHECK_OK(iovm_domain_map(dom, &at, pa, 4096, IOVM_MAP_READ));
		CHECK_OK(iovm_domain_unmap(dom, at, 4096));
		base = at.addr;
	}
	memset(taken, 0, sizeof(taken));
	for (int step = 0; step < 600; step++) {
		unsigned first, n;

		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		n = 1 + (unsigned)(rng >> 33) % 70;
		first = step % 7 == 0 ? 0 : step % 7 == 1 ? SW_PAGES - n : (unsigned)(rng >> 20) % (SW_PAGES - n + 1);
		if (rng >> 63) {
			bool free_run = true;

			for (unsigned i = 0; i < n; i++)
				free_run &= !taken[first + i];
			if (!free_run)
				continue;
			for (unsigned i = 0; i < n; i++) {
				iovm_iova_t at = IOVM_IOVA(base + (uint64_t)(first + i) * 4096);

				CHECK_OK(iovm_domain_map(dom, &at, pa, 4096, IOVM_MAP_READ));
				taken[first + i] = true;
			}
		} else {
			for (unsigned i = 0; i < n; i++)
				if (taken[first + i]) {
					CHECK_OK(iovm_domain_unmap(dom, IOVM_IOVA(base + (uint64_t)(first + i) * 4096), 4096));
					taken[first + i] = false;
				}
		}
		model_stats(taken, &alloc, &free_, &largest);
		CHECK_OK(iovm_domain_stats(dom, &st));
		CHECK_MSG(st.iova_allocated == alloc * 4096 && st.iova_free == free_ * 4096 &&
				  st.iova_largest_gap == largest * 4096,
			  "step %d: allocated %llu free %llu largest %llu, the model %llu %llu %llu (pages)", step,
			  (unsigned long long)st.iova_allocated / 4096, (unsigned long long)st.iova_free / 4096,
			  (unsigned long long)st.iova_largest_gap / 4096, (unsigned long long)alloc,
			  (unsigned long long)free_, (unsigned long long)largest);
	}
	for (unsigned i = 0; i < SW_PAGES; i++)
		if (taken[i])
			CHECK_OK(iovm_domain_unmap(dom, IOVM_IOVA(base + (uint64_t)i * 4096), 4096));
	CHECK_OK(iovm_domain_stats(dom, &st));
	CHECK_EQ(st.iova_largest_gap, SW_PAGES * 4096ull);
	CHECK_OK(iovm_dma_free(ctx, buf));
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_OK(iovm_close(ctx));
}

/*
 * A process killed with the domain open, its device attached and its agent
 * listening: an unmap in another process does not wait for it, and the
 * domain goes with the last view, whether the dead one was last or not.
 */
static void doomed_child(int rd, int wr, void *arg)
{
	struct iovm_ctx *ctx = attach_ok(g_name);
	struct iovm_domain *dom;
	iovm_iova_t iova = IOVM_IOVA(get64(rd));
	struct devq d;

	(void)arg;
	CHECK_OK(iovm_share_domain_open(ctx, DOM, &dom));
	d = devq_open(ctx, dom);
	CHECK_EQ(devq_fill(&d, iova.addr, 4096, 0x77), IOVM_STATUS_SUCCESS);
	put64(wr, 1);
	pause();
}

TEST(death_with_the_domain_open)
{
	for (int last = 0; last < 2; last++) {
		struct iovm_ctx *ctx;
		struct iovm_domain *dom;
		iovm_iova_t iova = IOVM_IOVA(IOVM_ADDR_INVALID);
		uint64_t before;
		struct child c;
		uint8_t *page;

		g_name = share_name("dom-death");
		ctx = share_ok(g_name, HEAP);
		page = iovm_dma_alloc(ctx, 4096, 4096, 0);
		CHECK(page != NULL);
		before = free_bytes(ctx);
		CHECK_OK(iovm_share_domain_create(ctx, DOM, NULL, &dom));
		CHECK_OK(iovm_domain_map_ptr(dom, page, 4096, IOVM_MAP_READ | IOVM_MAP_WRITE, &iova));
		c = child_start(doomed_child, NULL);
		put64(c.wr, iova.addr);
		CHECK_EQ(get64(c.rd), 1);
		CHECK(all_bytes(page, 4096, 0x77));
		if (last) {
			/* The dead child is the last to hold it: the reap frees it. */
			CHECK_OK(iovm_domain_unmap(dom, iova, 4096));
			CHECK_OK(iovm_domain_destroy(dom));
			CHECK(free_bytes(ctx) < before);
			child_kill(&c);
			WAIT_UNTIL(share_info(ctx).processes == 1);
			CHECK_EQ(iovm_share_domain_open(ctx, DOM, &dom), -ENOENT);
		} else {
			child_kill(&c);
			/* Its agent listens no more: the unmap does not wait for it (a hang fails the test). */
			CHECK_OK(iovm_domain_unmap(dom, iova, 4096));
			WAIT_UNTIL(share_info(ctx).processes == 1);
			CHECK_OK(iovm_domain_destroy(dom));
		}
		CHECK_EQ(free_bytes(ctx), before);
		CHECK_OK(iovm_share_check(ctx));
		CHECK_OK(iovm_dma_free(ctx, page));
		CHECK_OK(iovm_close(ctx));
	}
}

int main(void)
{
	RUN(bad_input);
	RUN(table_pool_runs_out);
	RUN(mapped_in_one_reached_from_another);
	RUN(strict_unmap_reaches_a_running_device);
	RUN(processes_map_and_unmap_at_once);
	RUN(death_with_the_domain_open);
	RUN(iova_stats_follow_a_model);
	return 0;
}
