/* SPDX-License-Identifier: MIT */
/*
 * test_mp_domain_held.c - memory a shared domain maps is given to nobody
 * else while mapped, however it stops being its holder's: freed by the
 * process (through its thread cache or the lock), or reaped with a process
 * killed while its mappings stand. A device keeps writing where the domain
 * says; every allocation made meanwhile, up to the heap's last byte, is
 * elsewhere and untouched. The last unmap of it (by any process), or the
 * end of the last domain that maps it, frees it; iovm_share_info() counts
 * it as held, never as free or as a live allocation. And what a forked
 * child may do with its parent's view.
 */
#include <limits.h>
#include <stdlib.h>

#include "mp/mp_internal.h" /* mp_crash_countdown */
#include "mp_sdom.h"
#include "mp_util.h"

#define HEAP (UINT64_C(8) << 20)
#define DOM "held-dom"
#define DOM2 "held-dom2"
#define MAX_ALLOCS (HEAP / 4096)

static const char *g_name;

/* Every 4 KiB block the heap has left, zeroed; none may overlap [pa, +len) of any range in @avoid. */
struct avoid {
	uint64_t pa, len;
};

static unsigned grab_all(struct iovm_ctx *ctx, void **out, const struct avoid *avoid, unsigned n_avoid)
{
	unsigned n = 0;

	for (;;) {
		void *p = iovm_dma_alloc(ctx, 4096, 4096, 0);
		iovm_pa_t pa;

		if (!p) {
			CHECK_EQ(errno, ENOMEM);
			break;
		}
		CHECK(n < MAX_ALLOCS);
		CHECK_OK(iovm_dma_pa(ctx, p, &pa));
		for (unsigned i = 0; i < n_avoid; i++)
			CHECK_MSG(pa.addr + 4096 <= avoid[i].pa || pa.addr >= avoid[i].pa + avoid[i].len,
				  "allocation at PA %#llx is in memory a shared domain maps at %#llx",
				  (unsigned long long)pa.addr, (unsigned long long)avoid[i].pa);
		memset(p, 0, 4096);
		out[n++] = p;
	}
	return n;
}

static void free_all(struct iovm_ctx *ctx, void **p, unsigned n, bool untouched)
{
	for (unsigned i = 0; i < n; i++) {
		if (untouched)
			CHECK(all_bytes(p[i], 4096, 0));
		CHECK_OK(iovm_dma_free(ctx, p[i]));
	}
}

/*
 * Freed by its process while mapped, both ways a free goes (a 4 KiB block
 * through the thread cache, a 64 KiB one under the lock): the memory is
 * held, not reused by anyone, reached by the device; a second free is
 * refused; the unmap frees it.
 */
TEST(freed_while_mapped_is_held_until_unmapped)
{
	static void *grabbed[MAX_ALLOCS];
	const size_t sizes[2] = { 4096, 65536 };

	for (int k = 0; k < 2; k++) {
		struct iovm_ctx *ctx;
		struct iovm_domain *dom;
		iovm_iova_t iova = IOVM_IOVA(IOVM_ADDR_INVALID);
		size_t len = sizes[k];
		struct iovm_share_info before, info;
		struct avoid held;
		struct devq d;
		unsigned n;
		uint8_t *buf;
		iovm_pa_t pa;

		g_name = share_name("held-free");
		ctx = share_ok(g_name, HEAP);
		CHECK_OK(iovm_share_domain_create(ctx, DOM, NULL, &dom));
		d = devq_open(ctx, dom);
		buf = iovm_dma_alloc(ctx, len, 4096, 0);
		CHECK(buf != NULL);
		CHECK_OK(iovm_dma_pa(ctx, buf, &pa));
		CHECK_OK(iovm_domain_map_ptr(dom, buf, len, IOVM_MAP_READ | IOVM_MAP_WRITE, &iova));
		before = share_info(ctx);
		CHECK_OK(iovm_dma_free(ctx, buf));
		info = share_info(ctx);
		CHECK_EQ(info.domain_held, len);
		CHECK_EQ(info.heap_free, before.heap_free);
		CHECK_EQ(info.blocks, before.blocks - 1);
		CHECK_OK(iovm_share_check(ctx));
		/* Freed already, as far as anyone may know. */
		CHECK_EQ(iovm_dma_free(ctx, buf), -EINVAL);
		held = (struct avoid){ pa.addr, len };
		n = grab_all(ctx, grabbed, &held, 1);
		CHECK(n > 0);
		/* The device writes where the domain says: into the held memory, nobody's allocation. */
		CHECK_EQ(devq_fill(&d, iova.addr, len, 0x5e), IOVM_STATUS_SUCCESS);
		CHECK(all_bytes(buf, len, 0x5e));
		free_all(ctx, grabbed, n, true);
		CHECK_OK(iovm_domain_unmap(dom, iova, len));
		info = share_info(ctx);
		CHECK_EQ(info.domain_held, 0);
		CHECK_EQ(info.heap_free, before.heap_free + len);
		CHECK_OK(iovm_share_check(ctx));
		devq_close(&d);
		CHECK_OK(iovm_domain_destroy(dom));
		info = share_info(ctx);
		CHECK_EQ(info.blocks, 0);
		CHECK_EQ(info.heap_free, info.heap_size);
		CHECK_OK(iovm_close(ctx));
	}
}

/*
 * Mapped in two domains, freed: the end of one leaves it held for the
 * other; the other's unmap frees it. Mapped twice in one domain: the first
 * unmap leaves it held.
 */
TEST(held_until_the_last_mapping_goes)
{
	struct iovm_ctx *ctx;
	struct iovm_domain *a, *b;
	iovm_iova_t ia = IOVM_IOVA(IOVM_ADDR_INVALID), ib = IOVM_IOVA(IOVM_ADDR_INVALID),
		    ib2 = IOVM_IOVA(IOVM_ADDR_INVALID);
	uint8_t *buf;

	g_name = share_name("held-two");
	ctx = share_ok(g_name, HEAP);
	CHECK_OK(iovm_share_domain_create(ctx, DOM, NULL, &a));
	CHECK_OK(iovm_share_domain_create(ctx, DOM2, NULL, &b));
	buf = iovm_dma_alloc(ctx, 3 * 4096, 4096, 0);
	CHECK(buf != NULL);
	CHECK_OK(iovm_domain_map_ptr(a, buf, 3 * 4096, IOVM_MAP_READ, &ia));
	/* Only the middle page, twice. */
	CHECK_OK(iovm_domain_map_ptr(b, buf + 4096, 4096, IOVM_MAP_READ, &ib));
	CHECK_OK(iovm_domain_map_ptr(b, buf + 4096, 4096, IOVM_MAP_READ, &ib2));
	CHECK_OK(iovm_dma_free(ctx, buf));
	CHECK_EQ(share_info(ctx).domain_held, 4 * 4096); /* the block, rounded up to its order */
	CHECK_OK(iovm_domain_destroy(a)); /* a's mappings go with it */
	CHECK_EQ(share_info(ctx).domain_held, 4 * 4096);
	CHECK_OK(iovm_domain_unmap(b, ib, 4096));
	CHECK_EQ(share_info(ctx).domain_held, 4 * 4096);
	CHECK_OK(iovm_share_check(ctx));
	CHECK_OK(iovm_domain_unmap(b, ib2, 4096));
	CHECK_EQ(share_info(ctx).domain_held, 0);
	CHECK_OK(iovm_domain_destroy(b));
	CHECK_EQ(share_info(ctx).heap_free, HEAP);
	CHECK_OK(iovm_share_check(ctx));
	CHECK_OK(iovm_close(ctx));
}

/*
 * A process killed with its memory mapped (a block of its own, a small
 * one from its thread cache's size class): the reap keeps both for the
 * domain. The survivor takes the whole heap and none of it overlaps; its
 * device writes through the dead one's IOVAs into the held memory only;
 * the survivor unmaps them (any process may), and they are free.
 */
struct dead_maps {
	uint64_t iova[2], pa[2], len[2];
};

static void mapper_child(int rd, int wr, void *arg)
{
	struct iovm_ctx *ctx = attach_ok(g_name);
	const size_t len[2] = { 65536, 4096 };
	struct iovm_domain *dom;

	(void)rd;
	(void)arg;
	CHECK_OK(iovm_share_domain_open(ctx, DOM, &dom));
	for (int i = 0; i < 2; i++) {
		iovm_iova_t iova = IOVM_IOVA(IOVM_ADDR_INVALID);
		uint8_t *buf = iovm_dma_alloc(ctx, len[i], 4096, 0);
		iovm_pa_t pa;

		CHECK(buf != NULL);
		CHECK_OK(iovm_dma_pa(ctx, buf, &pa));
		CHECK_OK(iovm_domain_map_ptr(dom, buf, len[i], IOVM_MAP_READ | IOVM_MAP_WRITE, &iova));
		put64(wr, iova.addr);
		put64(wr, pa.addr);
		put64(wr, len[i]);
	}
	pause();
}

TEST(dead_mappers_memory_is_held_while_mapped)
{
	static void *grabbed[MAX_ALLOCS];

	for (int by_close = 0; by_close < 2; by_close++) {
		struct iovm_share_info info;
		struct avoid held[2];
		struct iovm_ctx *ctx;
		struct iovm_domain *dom;
		struct dead_maps m;
		struct devq d;
		struct child c;
		unsigned n;

		g_name = share_name("held-dead");
		ctx = share_ok(g_name, HEAP);
		CHECK_OK(iovm_share_domain_create(ctx, DOM, NULL, &dom));
		d = devq_open(ctx, dom);
		c = child_start(mapper_child, NULL);
		for (int i = 0; i < 2; i++) {
			m.iova[i] = get64(c.rd);
			m.pa[i] = get64(c.rd);
			m.len[i] = get64(c.rd);
			held[i] = (struct avoid){ m.pa[i], m.len[i] };
		}
		child_kill(&c);
		WAIT_UNTIL(share_info(ctx).processes == 1);
		CHECK_OK(iovm_share_check(ctx));
		info = share_info(ctx);
		CHECK_EQ(info.domain_held, m.len[0] + m.len[1]);
		CHECK_EQ(info.reaped, 1);
		n = grab_all(ctx, grabbed, held, 2);
		CHECK(n > 0);
		for (int i = 0; i < 2; i++)
			CHECK_EQ(devq_fill(&d, m.iova[i], m.len[i], (uint8_t)(0x61 + i)), IOVM_STATUS_SUCCESS);
		free_all(ctx, grabbed, n, true);
		if (by_close) {
			/* The domain's end takes its mappings, and the hold, with it. */
			devq_close(&d);
			CHECK_OK(iovm_domain_destroy(dom));
			CHECK_EQ(share_info(ctx).domain_held, 0);
		} else {
			for (int i = 0; i < 2; i++)
				CHECK_OK(iovm_domain_unmap(dom, IOVM_IOVA(m.iova[i]), m.len[i]));
			CHECK_EQ(share_info(ctx).domain_held, 0);
			CHECK_EQ(devq_fill(&d, m.iova[0], 4096, 0x70), IOVM_STATUS_PAGE_FAULT);
			devq_close(&d);
			CHECK_OK(iovm_domain_destroy(dom));
		}
		info = share_info(ctx);
		CHECK_EQ(info.blocks, 0);
		CHECK_EQ(info.heap_free, info.heap_size);
		CHECK_OK(iovm_share_check(ctx));
		CHECK_OK(iovm_close(ctx));
	}
}

/* The IOVA counts are the shared allocator's: what any process mapped, every view counts. */
static void stats_child(int rd, int wr, void *arg)
{
	struct iovm_ctx *ctx = attach_ok(g_name);
	struct iovm_domain_stats st;
	struct iovm_domain *dom;

	(void)arg;
	CHECK_OK(iovm_share_domain_open(ctx, DOM, &dom));
	CHECK_OK(iovm_domain_stats(dom, &st));
	put64(wr, st.iova_allocated);
	put64(wr, st.iova_free);
	(void)get64(rd);
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_OK(iovm_close(ctx));
}

TEST(iova_counts_are_the_domains)
{
	const uint64_t size = UINT64_C(64) << 20;
	struct iovm_domain_stats st;
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	iovm_iova_t iova = IOVM_IOVA(IOVM_ADDR_INVALID), fixed = IOVM_IOVA((UINT64_C(4) << 30) + (UINT64_C(32) << 20));
	struct child c;
	uint8_t *buf;

	g_name = share_name("held-stats");
	ctx = share_ok(g_name, HEAP);
	CHECK_OK(iovm_share_domain_create(ctx, DOM, &(struct iovm_share_domain_params){ .iova_size = size }, &dom));
	buf = iovm_dma_alloc(ctx, 3 * 4096, 4096, 0);
	CHECK(buf != NULL);
	CHECK_OK(iovm_domain_map_ptr(dom, buf, 3 * 4096, IOVM_MAP_READ, &iova));
	CHECK_OK(map_at(ctx, dom, buf, 4096, &fixed));
	c = child_start(stats_child, NULL);
	CHECK_EQ(get64(c.rd), 4 * 4096);
	CHECK_EQ(get64(c.rd), size - 4 * 4096);
	put64(c.wr, 1);
	child_ok(&c);
	CHECK_OK(iovm_domain_stats(dom, &st));
	CHECK_EQ(st.iova_allocated, 4 * 4096);
	CHECK_EQ(st.iova_free, size - 4 * 4096);
	/* The fixed page splits the free space: the largest gap is above it. */
	CHECK_EQ(st.iova_largest_gap, size - (UINT64_C(32) << 20) - 4096);
	CHECK_OK(iovm_domain_unmap(dom, iova, 3 * 4096));
	CHECK_OK(iovm_domain_unmap(dom, fixed, 4096));
	CHECK_OK(iovm_domain_stats(dom, &st));
	CHECK_EQ(st.iova_allocated, 0);
	CHECK_EQ(st.iova_largest_gap, size);
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_OK(iovm_dma_free(ctx, buf));
	CHECK_OK(iovm_close(ctx));
}

/*
 * Fork: the child's inherited view is its parent's; a map on it is EPERM
 * and touches nothing. Attached and opened by name, the child maps, and
 * the parent's device reaches what it mapped.
 */
static struct iovm_domain *g_inherited;
static void *g_parent_buf;
static iovm_pa_t g_parent_pa;

static void forked_child(int rd, int wr, void *arg)
{
	iovm_iova_t iova = IOVM_IOVA(IOVM_ADDR_INVALID);
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	uint8_t *buf;

	(void)rd;
	(void)arg;
	CHECK_EQ(iovm_domain_map_ptr(g_inherited, g_parent_buf, 4096, IOVM_MAP_READ, &iova), -EPERM);
	CHECK_EQ(iovm_domain_map(g_inherited, &iova, g_parent_pa, 4096, IOVM_MAP_READ), -EPERM);
	ctx = attach_ok(g_name);
	CHECK_OK(iovm_share_domain_open(ctx, DOM, &dom));
	buf = iovm_dma_alloc(ctx, 4096, 4096, 0);
	CHECK(buf != NULL);
	memset(buf, 0, 4096);
	CHECK_OK(iovm_domain_map_ptr(dom, buf, 4096, IOVM_MAP_READ | IOVM_MAP_WRITE, &iova));
	put64(wr, iova.addr);
	CHECK_EQ(get64(rd), 1);
	CHECK(all_bytes(buf, 4096, 0x4f));
	CHECK_OK(iovm_domain_unmap(dom, iova, 4096));
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_OK(iovm_dma_free(ctx, buf));
	CHECK_OK(iovm_close(ctx));
}

TEST(a_forked_child_opens_its_own_view)
{
	struct iovm_domain_stats st;
	struct iovm_ctx *ctx;
	struct devq d;
	struct child c;

	g_name = share_name("held-fork");
	ctx = share_ok(g_name, HEAP);
	CHECK_OK(iovm_share_domain_create(ctx, DOM, NULL, &g_inherited));
	d = devq_open(ctx, g_inherited);
	g_parent_buf = iovm_dma_alloc(ctx, 4096, 4096, 0);
	CHECK(g_parent_buf != NULL);
	CHECK_OK(iovm_dma_pa(ctx, g_parent_buf, &g_parent_pa));
	c = child_start(forked_child, NULL);
	CHECK_EQ(devq_fill(&d, get64(c.rd), 4096, 0x4f), IOVM_STATUS_SUCCESS);
	put64(c.wr, 1);
	child_ok(&c);
	CHECK_OK(iovm_domain_stats(g_inherited, &st));
	CHECK_EQ(st.iova_allocated, 0);
	CHECK_EQ(st.leaves_4k, 0);
	devq_close(&d);
	CHECK_OK(iovm_domain_destroy(g_inherited));
	CHECK_OK(iovm_dma_free(ctx, g_parent_buf));
	CHECK_EQ(share_info(ctx).heap_free, HEAP);
	CHECK_OK(iovm_close(ctx));
}

#ifdef IOVM_DEBUG_CHECKS
/*
 * A process killed at each store of an unmap in a shared domain (the
 * library's crash points, mp_internal.h), strict, or deferred and then
 * flushed: what it leaves is sound, freed by the survivor's next strict
 * unmap or flush (the unmap records each piece before it clears it: at
 * no store is a piece neither mapped nor recorded), and never freed
 * twice: the survivor's own
 * mapping of the same page keeps its hold throughout, so that its buffer,
 * freed while mapped, is held to the byte.
 */
static unsigned long g_countdown;
static bool g_deferred;
/* The dead one's 8 KiB alone in a page-table page, which its unmap of the page's whole span detaches. */
static bool g_whole_table;
#define TABLE_AT ((UINT64_C(4) << 30) + (UINT64_C(64) << 20))

/* What the dying child unmaps: its 8 KiB, or the whole span of the table they are in. */
static uint64_t dying_unmap_len(void)
{
	return g_whole_table ? SZ_2M : 8192;
}

static void unmap_dies(int rd, int wr, void *arg)
{
	struct iovm_ctx *ctx = attach_ok(g_name);
	iovm_iova_t iova = IOVM_IOVA(g_whole_table ? TABLE_AT : IOVM_ADDR_INVALID);
	struct iovm_domain *dom;
	iovm_pa_t pa;

	(void)arg;
	CHECK_OK(iovm_share_domain_open(ctx, DOM, &dom));
	pa = IOVM_PA(get64(rd));
	CHECK_OK(iovm_domain_map(dom, &iova, pa, 8192, IOVM_MAP_READ));
	put64(wr, iova.addr);
	(void)get64(rd);
	mp_crash_countdown = g_countdown;
	CHECK_OK(iovm_domain_unmap(dom, iova, dying_unmap_len()));
	if (g_deferred)
		CHECK_OK(iovm_domain_flush(dom));
	mp_crash_countdown = 0;
	put64(wr, 1); /* lived through it */
	pause();
}

static void killed_at_each_store(bool deferred, bool whole_table, bool theirs_first)
{
	struct iovm_share_domain_params p = { .flags = deferred ? IOVM_DOMAIN_DEFERRED : 0,
					      .flush_batch = 4096, .flush_timeout_us = UINT32_MAX };
	unsigned long n, left = 0;

	g_deferred = deferred;
	g_whole_table = whole_table;
	for (n = 1;; n++) {
		struct iovm_ctx *ctx;
		struct iovm_domain *dom;
		iovm_iova_t mine = IOVM_IOVA(IOVM_ADDR_INVALID), next = IOVM_IOVA(IOVM_ADDR_INVALID), theirs;
		struct iovm_domain_stats st;
		iovm_pa_t pa_now;
		uint64_t still, tables;
		int ret;
		struct child c;
		uint8_t *buf, *other;
		iovm_pa_t pa;
		uint64_t said;
		bool lived;

		g_name = share_name("held-crash");
		ctx = share_ok(g_name, HEAP);
		CHECK_OK(iovm_share_domain_create(ctx, DOM, &p, &dom));
		buf = iovm_dma_alloc(ctx, 8192, 4096, 0);
		other = iovm_dma_alloc(ctx, 4096, 4096, 0);
		CHECK(buf && other);
		CHECK_OK(iovm_dma_pa(ctx, buf, &pa));
		CHECK_OK(iovm_domain_map_ptr(dom, buf, 8192, IOVM_MAP_READ, &mine));
		CHECK_OK(iovm_domain_stats(dom, &st));
		tables = st.tables;
		g_countdown = n;
		c = child_start(unmap_dies, NULL);
		put64(c.wr, pa.addr);
		theirs = IOVM_IOVA(get64(c.rd));
		/* It says it lived through the unmap, or dies at the n-th point with the pipe closing. */
		lived = child_go_lives(&c, n, &said);
		WAIT_UNTIL(share_info(ctx).processes == 1);
		CHECK_MSG(iovm_share_check(ctx) == 0, "point %lu: %s", n, iovm_error_detail());
		/*
		 * Or first, before any claim, the survivor unmaps what the dead one
		 * left: a piece it recorded and had not cleared is released once
		 * (attack8's killed_mid_cycle saw it put twice).
		 */
		if (theirs_first) {
			ret = iovm_domain_unmap(dom, theirs, dying_unmap_len());
			CHECK_MSG(ret == 0 || ret == -ENOENT, "point %lu: unmap of theirs first: %d", n, ret);
			if (deferred)
				CHECK_OK(iovm_domain_flush(dom));
		}
		/* The survivor's next strict unmap, or flush, frees what the dead one recorded. */
		CHECK_OK(iovm_domain_map_ptr(dom, other, 4096, IOVM_MAP_READ, &next));
		CHECK_OK(iovm_domain_unmap(dom, next, 4096));
		if (deferred)
			CHECK_OK(iovm_domain_flush(dom));
		/*
		 * The survivor's 8 KiB, and of the dead one's what still translates
		 * (killed before its unmap cleared it): no IOVA is taken that does
		 * not, since its unmap records each piece before it clears it.
		 */
		still = 0;
		for (uint64_t off = 0; off < 8192; off += 4096)
			still += iovm_domain_translate(dom, IOVM_IOVA(theirs.addr + off), &pa_now, NULL) == 0 ? 4096 : 0;
		CHECK_OK(iovm_domain_stats(dom, &st));
		left += st.iova_allocated != 8192 + still;
		CHECK_MSG(st.iova_allocated == 8192 + still, "point %lu: %llu bytes of IOVA taken, %llu translate", n,
			  (unsigned long long)st.iova_allocated, (unsigned long long)(8192 + still));
		CHECK_MSG(st.leaves_4k == 2 + still / 4096 && st.leaves_2m == 0, "point %lu: %llu leaves", n,
			  (unsigned long long)(st.leaves_4k + st.leaves_2m));
		/*
		 * What it left mapped, the survivor unmaps as it would have: its
		 * IOVAs and its table go too (a table left empty and in place,
		 * killed before it was recorded, is detached by an unmap of its
		 * span that finds nothing mapped).
		 */
		ret = iovm_domain_unmap(dom, theirs, dying_unmap_len());
		CHECK_MSG(ret == (still ? 0 : -ENOENT), "point %lu: unmap of its rest: %d", n, ret);
		if (deferred)
			CHECK_OK(iovm_domain_flush(dom));
		CHECK_OK(iovm_domain_stats(dom, &st));
		CHECK_MSG(st.iova_allocated == 8192, "point %lu: %llu bytes of IOVA taken after unmapping its rest", n,
			  (unsigned long long)st.iova_allocated);
		/* No page-table page is left taken: detached, it was recorded first. */
		CHECK_MSG(st.tables == tables, "point %lu: %llu page-table pages, %llu before it mapped", n,
			  (unsigned long long)st.tables, (unsigned long long)tables);
		/* Its own mapping kept its hold: its buffer, freed now, is held whole. */
		CHECK_OK(iovm_dma_free(ctx, buf));
		CHECK_MSG(share_info(ctx).domain_held == 8192, "point %lu: held %llu, not the survivor's 8192", n,
			  (unsigned long long)share_info(ctx).domain_held);
		CHECK_OK(iovm_domain_unmap(dom, mine, 8192));
		CHECK_OK(iovm_domain_stats(dom, &st));
		CHECK_EQ(st.leaves_4k + st.leaves_2m, 0);
		CHECK_OK(iovm_domain_destroy(dom));
		CHECK_OK(iovm_dma_free(ctx, other));
		CHECK_MSG(share_info(ctx).heap_free == HEAP, "point %lu: %llu bytes not free after the domain went", n,
			  (unsigned long long)(HEAP - share_info(ctx).heap_free));
		CHECK_OK(iovm_share_check(ctx));
		CHECK_OK(iovm_close(ctx));
		if (lived)
			break;
	}
	printf("# a %s unmap%s killed at each of its %lu stores%s, whole every time; left to the domain's end at %lu\n",
	       deferred ? "deferred" : "strict", whole_table ? " of a table's whole span" : "", n - 1,
	       theirs_first ? " (its range unmapped by the survivor first)" : "", left);
	CHECK(n > 4);
	/* No store leaves anything behind: recorded before it is cleared, what it took is released. */
	CHECK_EQ(left, 0);
}

TEST(killed_at_each_store_of_an_unmap)
{
	killed_at_each_store(false, false, false);
	killed_at_each_store(true, false, false);
	killed_at_each_store(false, true, false);
	killed_at_each_store(true, true, false);
	killed_at_each_store(false, false, true);
	killed_at_each_store(true, false, true);
	killed_at_each_store(false, true, true);
}

/*
 * A process killed at each store of its maps into a shared domain: four
 * 4 KiB leaves, then a 2 MiB one, at IOVAs the test chose. Whatever it
 * left, the domain's stats count exactly the leaves that translate (the
 * table's counts ran one step apart from its entries at some of those
 * stores; attack11 once saw a count of a leaf that was gone), and the
 * survivor's unmap of the window takes every one of them.
 */
#define MAP_AT (UINT64_C(4) << 30) /* the window's first IOVA: 2 MiB aligned */
#define MAP_HUGE_AT (MAP_AT + SZ_2M)

static void map_dies(int rd, int wr, void *arg)
{
	struct iovm_ctx *ctx = attach_ok(g_name);
	iovm_iova_t small = IOVM_IOVA(MAP_AT), huge = IOVM_IOVA(MAP_HUGE_AT);
	struct iovm_domain *dom;
	iovm_pa_t pa_small, pa_huge;

	(void)arg;
	CHECK_OK(iovm_share_domain_open(ctx, DOM, &dom));
	pa_small = IOVM_PA(get64(rd));
	pa_huge = IOVM_PA(get64(rd));
	put64(wr, 1);
	(void)get64(rd);
	mp_crash_countdown = g_countdown;
	CHECK_OK(iovm_domain_map(dom, &small, pa_small, 4 * 4096, IOVM_MAP_READ));
	CHECK_OK(iovm_domain_map(dom, &huge, pa_huge, SZ_2M, IOVM_MAP_READ | IOVM_MAP_WRITE));
	/* Lived through it: how many points it passed. */
	put64(wr, g_countdown - mp_crash_countdown);
	mp_crash_countdown = 0;
	pause();
}

/* The page-table pages in use once the survivor unmapped the window after a map that lived: strict, deferred. */
static uint64_t g_map_tables[2];

/* The leaves of the window that translate, by size. */
static void window_leaves(struct iovm_domain *dom, uint64_t *small, uint64_t *huge)
{
	iovm_pa_t pa;

	*small = *huge = 0;
	for (uint64_t at = MAP_AT; at < MAP_AT + 4 * 4096; at += 4096)
		*small += iovm_domain_translate(dom, IOVM_IOVA(at), &pa, NULL) == 0;
	*huge = iovm_domain_translate(dom, IOVM_IOVA(MAP_HUGE_AT), &pa, NULL) == 0;
}

/*
 * One child, killed at its @n-th point (or living through the maps, and
 * then killed): the stats after it, and the survivor's unmap. Whether it
 * lived; if so, the points it passed in *@points.
 */
static bool map_killed_at(bool deferred, unsigned long n, unsigned long *points, uint64_t *partial)
{
	struct iovm_share_domain_params p = { .flags = deferred ? IOVM_DOMAIN_DEFERRED : 0,
					      .flush_batch = 4096, .flush_timeout_us = UINT32_MAX };
	struct iovm_domain_stats st;
	struct iovm_domain *dom;
	uint64_t small, huge, said;
	struct iovm_ctx *ctx;
	uint8_t *buf, *big;
	iovm_pa_t pa, pa_big;
	struct child c;
	bool lived;
	int ret;

	g_countdown = n;
	g_name = share_name("held-mapcrash");
	ctx = share_ok(g_name, HEAP);
	CHECK_OK(iovm_share_domain_create(ctx, DOM, &p, &dom));
	buf = iovm_dma_alloc(ctx, 4 * 4096, 4096, 0);
	big = iovm_dma_alloc(ctx, SZ_2M, SZ_2M, 0);
	CHECK(buf && big);
	CHECK_OK(iovm_dma_pa(ctx, buf, &pa));
	CHECK_OK(iovm_dma_pa(ctx, big, &pa_big));
	CHECK_EQ(pa_big.addr % SZ_2M, 0);
	c = child_start(map_dies, NULL);
	put64(c.wr, pa.addr);
	put64(c.wr, pa_big.addr);
	(void)get64(c.rd);
	lived = child_go_lives(&c, n, &said);
	if (lived)
		*points = said;
	WAIT_UNTIL(share_info(ctx).processes == 1);
	CHECK_MSG(iovm_share_check(ctx) == 0, "point %lu: %s", n, iovm_error_detail());
	window_leaves(dom, &small, &huge);
	CHECK_OK(iovm_domain_stats(dom, &st));
	CHECK_MSG(st.leaves_4k == small && st.leaves_2m == huge && st.leaves_1g == 0,
		  "point %lu: stats count %llu + %llu leaves, the table translates %llu + %llu", n,
		  (unsigned long long)st.leaves_4k, (unsigned long long)st.leaves_2m,
		  (unsigned long long)small, (unsigned long long)huge);
	if (lived)
		CHECK(small == 4 && huge == 1);
	*partial += !lived && (small % 4 || (small && !huge));
	/* The survivor takes what is there: after it, nothing translates and nothing is counted. */
	ret = iovm_domain_unmap(dom, IOVM_IOVA(MAP_AT), 2 * SZ_2M);
	CHECK_MSG(ret == 0 || ret == -ENOENT, "point %lu: the survivor's unmap: %d", n, ret);
	if (deferred)
		CHECK_OK(iovm_domain_flush(dom));
	window_leaves(dom, &small, &huge);
	CHECK_EQ(small + huge, 0);
	CHECK_OK(iovm_domain_stats(dom, &st));
	CHECK_EQ(st.leaves_4k + st.leaves_2m + st.leaves_1g, 0);
	/*
	 * And the page-table pages as after a map that lived, once the
	 * survivor mapped a page in the window's 1 GiB and unmapped its 2 MiB
	 * (the tables above it hang then, whatever the child hung): one the
	 * child took and had not hung (or not said so) when it died is the
	 * survivor's claim's to free, or to leave where it hangs. And no IOVA
	 * taken: what the child's map took and had not mapped, the claim
	 * gave back.
	 */
	{
		iovm_iova_t at = IOVM_IOVA(MAP_AT + 32 * SZ_2M);

		CHECK_OK(iovm_domain_map(dom, &at, pa, 4096, IOVM_MAP_READ));
		CHECK_OK(iovm_domain_unmap(dom, at, SZ_2M));
		if (deferred)
			CHECK_OK(iovm_domain_flush(dom));
		CHECK_OK(iovm_domain_stats(dom, &st));
	}
	if (lived && n == ULONG_MAX / 2)
		g_map_tables[deferred] = st.tables;
	else
		CHECK_MSG(st.tables == g_map_tables[deferred], "point %lu: %llu page-table pages, %llu after a map that lived",
			  n, (unsigned long long)st.tables, (unsigned long long)g_map_tables[deferred]);
	CHECK_MSG(st.iova_allocated == 0, "point %lu: %#llx bytes of IOVA taken with nothing mapped", n,
		  (unsigned long long)st.iova_allocated);
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_OK(iovm_dma_free(ctx, buf));
	CHECK_OK(iovm_dma_free(ctx, big));
	CHECK_MSG(share_info(ctx).heap_free == HEAP, "point %lu: %llu bytes not free after the domain went", n,
		  (unsigned long long)(HEAP - share_info(ctx).heap_free));
	CHECK_OK(iovm_share_check(ctx));
	CHECK_OK(iovm_close(ctx));
	return lived;
}

/*
 * Every one of the first and last 48 points, and 64 between, of a strict
 * and of a deferred domain (all of them, some 1550 with the huge leaf's
 * page by page holds, take 40 s here: IOVM_HELD_EVERY_POINT=1).
 */
TEST(killed_at_each_store_of_a_map)
{
	bool every = getenv("IOVM_HELD_EVERY_POINT");

	for (int deferred = 0; deferred < 2; deferred++) {
		unsigned long points = 0, tried = 0, step;
		uint64_t partial = 0;

		CHECK(map_killed_at(deferred, ULONG_MAX / 2, &points, &partial));
		CHECK(points >= 3); /* the points between an entry and its count among them */
		step = every || points <= 160 ? 1 : (points - 96) / 64;
		for (unsigned long n = 1; n < points; n += n <= 48 || n >= points - 48 ? 1 : step, tried++)
			CHECK_MSG(!map_killed_at(deferred, n, &points, &partial), "lived through %lu of %lu points", n,
				  points);
		printf("# %s domain: maps killed at %lu of their %lu points, the stats right every time; "
		       "%llu died with a part of it mapped\n",
		       deferred ? "a deferred" : "a strict", tried, points, (unsigned long long)partial);
	}
}
#endif

int main(void)
{
	test_init();
	RUN(freed_while_mapped_is_held_until_unmapped);
	RUN(held_until_the_last_mapping_goes);
	RUN(dead_mappers_memory_is_held_while_mapped);
	RUN(iova_counts_are_the_domains);
	RUN(a_forked_child_opens_its_own_view);
#ifdef IOVM_DEBUG_CHECKS
	RUN(killed_at_each_store_of_an_unmap);
	RUN(killed_at_each_store_of_a_map);
#endif
	return 0;
}
