/* SPDX-License-Identifier: MIT */
/*
 * attack27.h - what test_attack27_unmapkill.c's cases share: a share (4
 * KiB pages) with one shared domain, "shapes" a dying process maps at
 * fixed IOVAs and then unmaps (4 KiB runs of 1..700 pages, whole 2 MiB
 * spans with few pages, 2 MiB and 1 GiB leaves, splits, window edges),
 * the child that does it (armed with the library's crash countdown, or
 * killed from outside), and the check of iovm/mp.h's promise after its
 * death: the next strict unmap (or flush) of a survivor leaves nothing
 * taken that does not translate, counts the leaves exactly, frees the
 * holds, and once the survivor unmapped the rest, the IOVAs, the tables
 * and the holds are back where they were, the heap whole at the end.
 *
 * Memory: the dying process's 4 KiB pieces come from a "lone" 256 KiB
 * block that nobody else maps, freed by the owner while mapped (held
 * while any page of it translates, freed by the claim otherwise); its 2
 * MiB leaves from four 2 MiB blocks the survivor maps one page of each
 * (held to the byte throughout: never freed twice); its 1 GiB leaves from
 * free heap memory at a 1 GiB aligned PA.
 */
#ifndef IOVM_TESTS_ATTACK27_H
#define IOVM_TESTS_ATTACK27_H

#include <limits.h>
#include <signal.h>
#include <stdlib.h>

#include <iovm.h>

#include "mp/mp_util.h"

#ifndef IOVM_DEBUG_CHECKS
static unsigned long crash_countdown; /* no crash points: a count nobody reads */
#endif

#define K4 UINT64_C(4096)
#define M2 (UINT64_C(2) << 20)
#define G1 (UINT64_C(1) << 30)
#define WIN (UINT64_C(4) << 30)
#define HEAP_S (UINT64_C(64) << 20)
#define HEAP_G (UINT64_C(3) << 30)
#define WIN_S (UINT64_C(256) << 20) /* window of the small heap: [4 GiB, 4 GiB + 256 MiB) */
#define WIN_G (UINT64_C(2) << 30)   /* of the big one: [4 GiB, 6 GiB) */
#define SMALL_PAGES 64u
#define SMALL_LEN (SMALL_PAGES * K4)
#define BIGS 4u
#define MINE (WIN + 16 * M2) /* the survivor's pages: one per 2 MiB block */
#define OTHER (MINE + 8 * K4) /* the survivor's trigger: mapped, then unmapped */
#define CPAGE (MINE + 16 * K4) /* the claimer's own two pages */
#define AT (WIN + 32 * M2) /* where the shapes are */
#define DOM "a27-dom"
#define MAXP 160
#define MAXR 4
#define NEVER (600u * 1000u * 1000u)

enum { SRC_SMALL, SRC_BIG, SRC_GIG, SRC_CLAIM };
struct piece {
	uint64_t iova, len, pa;
	int src; /* SRC_*: which memory */
};
struct range {
	uint64_t at, len;
};
struct shape {
	const char *name;
	bool gig;
	bool splits; /* its unmap begins by splitting a huge leaf: it takes page-table pages */
	unsigned np, nr;
	struct piece p[MAXP];
	struct range r[MAXR]; /* what the dying process unmaps, in order */
};
enum { M_STRICT, M_DEFER, M_DEFER_B1, M_DEFER_FLUSH, NMODES };
static const char *const mode_name[NMODES] = { "strict", "deferred", "deferred batch 1", "deferred, flush armed" };

struct pas {
	uint64_t small, big[BIGS], gig, claim;
};

static const char *g_name;
static struct shape g_shape;
static int g_mode;
static unsigned long g_count;
static bool g_premapped; /* the survivor mapped the shape: the dying child only unmaps it */
static uint32_t g_pool; /* params.tables, when not 0 */
static bool g_noflush; /* the dying child's deferred unmaps stay queued: it is killed from outside */

/* ---------------------------------------------------------------- shapes */

static void add(struct shape *s, uint64_t iova, uint64_t len, uint64_t pa, int src)
{
	CHECK(s->np < MAXP);
	s->p[s->np++] = (struct piece){ iova, len, pa, src };
}

/* @pages of 4 KiB at @iova from the lone block, runs of at most 64 (one map each). */
static void add_run(struct shape *s, const struct pas *pa, uint64_t iova, unsigned pages)
{
	for (unsigned done = 0; done < pages;) {
		unsigned n = pages - done < SMALL_PAGES ? pages - done : SMALL_PAGES;

		add(s, iova + done * K4, n * K4, pa->small, SRC_SMALL);
		done += n;
	}
}

static void unmap_of(struct shape *s, uint64_t at, uint64_t len)
{
	CHECK(s->nr < MAXR);
	s->r[s->nr++] = (struct range){ at, len };
}

enum { SH_ONE, SH_RUN300, SH_RUN600, SH_SPARSE, SH_SPANS, SH_HUGE, SH_SPLIT, SH_SPLIT2, SH_EDGES, SH_HOLES,
       SH_GIG_SPLIT, SH_GIG_SPARSE, NSHAPES };
static const char *const shape_name[NSHAPES] = {
	"one page", "300 pages (two parts)", "600 pages across a table", "a table's span, 3 pages mapped",
	"4 spans: 4K runs, 2M leaves, holes", "four 2M leaves", "a cut inside a 2M leaf",
	"a cut across two 2M leaves", "the window's edges", "700 pages with holes (500 leaves)",
	"a cut inside a 1G leaf", "a 1G span, 3 pages mapped"
};

static bool shape_gig(int id)
{
	return id == SH_GIG_SPLIT || id == SH_GIG_SPARSE;
}

static void build(int id, struct shape *s, const struct pas *pa)
{
	uint64_t end = WIN + (shape_gig(id) ? WIN_G : WIN_S);

	memset(s, 0, sizeof(*s));
	s->name = shape_name[id];
	s->gig = shape_gig(id);
	s->splits = id == SH_SPLIT || id == SH_SPLIT2 || id == SH_GIG_SPLIT;
	switch (id) {
	case SH_ONE:
		add(s, AT + 5 * K4, K4, pa->small + 3 * K4, SRC_SMALL);
		unmap_of(s, AT + 5 * K4, K4);
		break;
	case SH_RUN300:
		add_run(s, pa, AT + 100 * K4, 300);
		unmap_of(s, AT + 100 * K4, 300 * K4);
		break;
	case SH_RUN600:
		add_run(s, pa, AT + 300 * K4, 600);
		unmap_of(s, AT + 300 * K4, 600 * K4);
		break;
	case SH_SPARSE:
		add(s, AT, K4, pa->small, SRC_SMALL);
		add(s, AT + 255 * K4, K4, pa->small + K4, SRC_SMALL);
		add(s, AT + 511 * K4, K4, pa->small + 2 * K4, SRC_SMALL);
		unmap_of(s, AT, M2);
		break;
	case SH_SPANS:
		add_run(s, pa, AT + M2 - 4 * K4, 4);
		add(s, AT + M2, M2, pa->big[0], SRC_BIG);
		for (unsigned i = 0; i < 5; i++)
			add(s, AT + 2 * M2 + i * 97 * K4, K4, pa->small + i * K4, SRC_SMALL);
		add(s, AT + 3 * M2, M2, pa->big[1], SRC_BIG);
		add_run(s, pa, AT + 4 * M2, 5); /* its last page is past the range: it stays */
		unmap_of(s, AT + M2 - 4 * K4, 3 * M2 + 8 * K4);
		break;
	case SH_HUGE:
		for (unsigned i = 0; i < BIGS; i++)
			add(s, AT + i * M2, M2, pa->big[i], SRC_BIG);
		unmap_of(s, AT, BIGS * M2);
		break;
	case SH_SPLIT:
		add(s, AT, M2, pa->big[0], SRC_BIG);
		unmap_of(s, AT + 65 * K4, 200 * K4);
		break;
	case SH_SPLIT2:
		add(s, AT, M2, pa->big[0], SRC_BIG);
		add(s, AT + M2, M2, pa->big[1], SRC_BIG);
		unmap_of(s, AT + M2 - 16 * K4, 40 * K4);
		break;
	case SH_EDGES:
		add_run(s, pa, WIN, 3);
		add_run(s, pa, end - 3 * K4, 3);
		unmap_of(s, WIN, 2 * K4);
		unmap_of(s, end - 2 * K4, 4 * K4); /* runs past the window's end */
		unmap_of(s, end - 3 * K4, K4);
		break;
	case SH_HOLES:
		for (unsigned i = 0; i < 100; i++)
			add(s, AT + 3 * M2 + i * 7 * K4, 5 * K4, pa->small + (i % 50) * K4, SRC_SMALL);
		unmap_of(s, AT + 3 * M2, 700 * K4);
		break;
	case SH_GIG_SPLIT:
		add(s, 5 * G1, G1, pa->gig, SRC_GIG);
		unmap_of(s, 5 * G1 + 3 * M2 + K4, 2 * K4);
		break;
	case SH_GIG_SPARSE:
		add(s, 5 * G1, K4, pa->small, SRC_SMALL);
		add(s, 5 * G1 + 301 * M2 + 7 * K4, K4, pa->small + K4, SRC_SMALL);
		add(s, 6 * G1 - K4, K4, pa->small + 2 * K4, SRC_SMALL);
		unmap_of(s, 5 * G1, G1);
		break;
	}
}

/* ---------------------------------------------------------------- the dying child */

static void map_piece(struct iovm_domain *dom, const struct piece *p)
{
	iovm_iova_t iova = IOVM_IOVA(p->iova);
	int ret = iovm_domain_map(dom, &iova, IOVM_PA(p->pa), p->len, IOVM_MAP_READ | IOVM_MAP_WRITE);

	CHECK_MSG(ret == 0 && iova.addr == p->iova, "map %#llx+%#llx: %d %s", (unsigned long long)p->iova,
		  (unsigned long long)p->len, ret, iovm_error_detail());
}

/* A child's view of the domain, opened, and said so. */
static inline struct iovm_domain *view_ready(int wr)
{
	struct iovm_ctx *ctx = attach_ok(g_name);
	struct iovm_domain *dom;

	CHECK_OK(iovm_share_domain_open(ctx, DOM, &dom));
	put64(wr, 1);
	return dom;
}

/* A child that lived through its calls: disarmed, it says how many points it passed, and waits to be killed. */
static inline void lived(int wr)
{
	unsigned long left = crash_countdown;

	crash_countdown = 0;
	put64(wr, g_count - left);
	pause();
	_exit(0);
}

/*
 * Maps g_shape, says so, waits for the word, then (armed with g_count)
 * unmaps its ranges, deferred: flushes; says how many points it passed.
 */
static void dier(int rd, int wr, void *arg)
{
	struct iovm_ctx *ctx = attach_ok(g_name);
	struct iovm_domain *dom;

	(void)arg;
	CHECK_OK(iovm_share_domain_open(ctx, DOM, &dom));
	for (unsigned i = 0; i < g_shape.np && !g_premapped; i++)
		map_piece(dom, &g_shape.p[i]);
	put64(wr, 1);
	(void)get64(rd);
	if (g_mode != M_DEFER_FLUSH)
		crash_countdown = g_count;
	for (unsigned i = 0; i < g_shape.nr; i++) {
		int ret = iovm_domain_unmap(dom, IOVM_IOVA(g_shape.r[i].at), g_shape.r[i].len);

		CHECK_MSG(ret == 0, "unmap %u: %d", i, ret);
	}
	if (g_mode == M_DEFER_FLUSH)
		crash_countdown = g_count;
	if (g_mode != M_STRICT && !g_noflush)
		CHECK_OK(iovm_domain_flush(dom));
	lived(wr);
}

/* ---------------------------------------------------------------- the survivor */

struct rig {
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	void *small, *big[BIGS], *other, *claim;
	struct pas pa;
	uint64_t heap, base_iova, base_leaves, base_held;
};

static uint64_t pa_of(struct iovm_ctx *ctx, void *p)
{
	iovm_pa_t pa;

	CHECK(p != NULL);
	CHECK_OK(iovm_dma_pa(ctx, p, &pa));
	return pa.addr;
}

static struct iovm_domain_stats stats(struct iovm_domain *dom)
{
	struct iovm_domain_stats st;

	CHECK_OK(iovm_domain_stats(dom, &st));
	return st;
}

static uint64_t leaves(const struct iovm_domain_stats *st)
{
	return st->leaves_4k + st->leaves_2m * 512 + st->leaves_1g * 512 * 512;
}

static struct iovm_share_domain_params mode_params(int mode, bool gig)
{
	struct iovm_share_domain_params p = { .iova_size = gig ? WIN_G : WIN_S,
					      .tables = g_pool ? g_pool : gig ? 1024 : 512 };

	if (mode != M_STRICT) {
		p.flags = IOVM_DOMAIN_DEFERRED;
		p.flush_batch = mode == M_DEFER_B1 ? 1 : 4096;
		p.flush_timeout_us = NEVER;
	}
	return p;
}

/* A share, its domain, the blocks; the survivor maps a page of each 2 MiB block. */
static void rig_up(struct rig *g, int mode, bool gig, const char *what)
{
	struct iovm_share_params sp = { .heap_size = gig ? HEAP_G : HEAP_S, .group = -1, .page_size = K4 };
	struct iovm_share_domain_params p = mode_params(mode, gig);
	struct iovm_domain_stats st;
	int ret;

	memset(g, 0, sizeof(*g));
	g->heap = sp.heap_size;
	g_name = share_name(what);
	CHECK_OK(iovm_open("oracle=on", &g->ctx));
	ret = iovm_share(g->ctx, g_name, &sp);
	CHECK_MSG(ret == 0, "iovm_share: %d %s", ret, iovm_error_detail());
	ret = iovm_share_domain_create(g->ctx, DOM, &p, &g->dom);
	CHECK_MSG(ret == 0, "iovm_share_domain_create: %d %s", ret, iovm_error_detail());
	g->small = iovm_dma_alloc(g->ctx, SMALL_LEN, K4, 0);
	g->other = iovm_dma_alloc(g->ctx, K4, K4, 0);
	g->claim = iovm_dma_alloc(g->ctx, 2 * K4, K4, 0);
	g->pa.small = pa_of(g->ctx, g->small);
	g->pa.claim = pa_of(g->ctx, g->claim);
	(void)pa_of(g->ctx, g->other);
	for (unsigned i = 0; i < BIGS; i++) {
		iovm_iova_t iova = IOVM_IOVA(MINE + i * K4);

		g->big[i] = iovm_dma_alloc(g->ctx, M2, M2, 0);
		g->pa.big[i] = pa_of(g->ctx, g->big[i]);
		CHECK_EQ(g->pa.big[i] % M2, 0);
		CHECK_OK(iovm_domain_map(g->dom, &iova, IOVM_PA(g->pa.big[i]), K4, IOVM_MAP_READ));
	}
	if (gig) {
		struct iovm_share_info info = share_info(g->ctx);

		g->pa.gig = (info.heap_pa.addr + G1 / 2 + G1 - 1) & ~(G1 - 1);
		CHECK(g->pa.gig + G1 <= info.heap_pa.addr + info.heap_size);
	}
	st = stats(g->dom);
	if (getenv("A27_TRACE"))
		printf("#   rig: tables %llu\n", (unsigned long long)st.tables);
	g->base_iova = st.iova_allocated;
	g->base_leaves = leaves(&st);
	CHECK_EQ(g->base_iova, BIGS * K4);
	CHECK_EQ(g->base_leaves, BIGS);
}

/* After the child mapped: the owner frees every block; the 2 MiB ones stay held whole (the survivor maps them). */
static void rig_free_blocks(struct rig *g)
{
	CHECK_OK(iovm_dma_free(g->ctx, g->small));
	CHECK_OK(iovm_dma_free(g->ctx, g->claim));
	for (unsigned i = 0; i < BIGS; i++)
		CHECK_OK(iovm_dma_free(g->ctx, g->big[i]));
	g->base_held = BIGS * M2;
}

/* The next strict unmap (deferred: its flush) of the survivor: it claims what the dead left. */
static void trigger(struct rig *g, bool deferred)
{
	iovm_iova_t iova = IOVM_IOVA(OTHER);

	CHECK_OK(iovm_domain_map(g->dom, &iova, IOVM_PA(pa_of(g->ctx, g->other)), K4, IOVM_MAP_READ));
	CHECK_OK(iovm_domain_unmap(g->dom, iova, K4));
	if (deferred)
		CHECK_OK(iovm_domain_flush(g->dom));
}

/* Pages of @s's pieces that translate (each to its own PA, or the check fails); per source in @by. */
static uint64_t still_mapped(struct rig *g, const struct shape *s, uint64_t by[4], const char *at)
{
	uint64_t n = 0;

	memset(by, 0, 4 * sizeof(*by));
	for (unsigned i = 0; i < s->np; i++) {
		const struct piece *p = &s->p[i];

		for (uint64_t off = 0; off < p->len; off += K4) {
			iovm_pa_t pa;
			int ret = iovm_domain_translate(g->dom, IOVM_IOVA(p->iova + off), &pa, NULL);

			if (ret == -ENOENT)
				continue;
			CHECK_MSG(ret == 0 && pa.addr == p->pa + off, "%s: IOVA %#llx translates to %#llx (%d), mapped to %#llx",
				  at, (unsigned long long)(p->iova + off), (unsigned long long)pa.addr, ret,
				  (unsigned long long)(p->pa + off));
			n++;
			by[p->src]++;
		}
	}
	return n;
}

static bool range_mapped(struct rig *g, uint64_t at, uint64_t len, const struct shape *s)
{
	for (unsigned i = 0; i < s->np; i++) {
		const struct piece *p = &s->p[i];
		uint64_t lo = p->iova > at ? p->iova : at, hi = p->iova + p->len < at + len ? p->iova + p->len : at + len;

		for (uint64_t x = lo; x < hi; x += K4) {
			iovm_pa_t pa;

			if (iovm_domain_translate(g->dom, IOVM_IOVA(x), &pa, NULL) == 0)
				return true;
		}
	}
	return false;
}

/* Pages of @s's pieces outside every range it unmaps: mapped still when nobody died. */
static uint64_t outside_pages(const struct shape *s)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < s->np; i++)
		for (uint64_t x = s->p[i].iova; x < s->p[i].iova + s->p[i].len; x += K4) {
			bool in = false;

			for (unsigned j = 0; j < s->nr && !in; j++)
				in = x >= s->r[j].at && x < s->r[j].at + s->r[j].len;
			n += !in;
		}
	return n;
}

#define PROBE (AT + 40 * M2) /* probe_tables()'s spans */
static void probe_tables(struct rig *g, const struct shape *s, const char *at);

struct verdict {
	uint64_t still;  /* pages left mapped by the dead */
	uint64_t tables; /* after the survivor unmapped the rest, and each range once more */
	uint64_t tables_first; /* before that second unmap */
};

/*
 * After the dead (and the reap): the claim by the survivor, the counts
 * against the table, then the survivor's unmap of what the dead left
 * mapped, and the counts back where they were. @ref_tables: the count a
 * run in which nobody died ends with (or -1: this is that run).
 */
static struct verdict verify(struct rig *g, const struct shape *s, int mode, long ref_tables, const char *at)
{
	bool deferred = mode != M_STRICT;
	struct iovm_domain_stats st;
	struct verdict v;
	uint64_t by[4], held, want_held;
	int ret;

	CHECK_MSG(iovm_share_check(g->ctx) == 0, "%s: iovm_share_check: %s", at, iovm_error_detail());
	trigger(g, deferred);
	v.still = still_mapped(g, s, by, at);
	st = stats(g->dom);
	CHECK_MSG(st.iova_allocated == g->base_iova + v.still * K4,
		  "%s: after the survivor's claim %llu bytes of IOVA taken, %llu translate", at,
		  (unsigned long long)(st.iova_allocated - g->base_iova), (unsigned long long)(v.still * K4));
	CHECK_MSG(leaves(&st) == g->base_leaves + v.still, "%s: %llu pages of leaves counted, %llu translate", at,
		  (unsigned long long)(leaves(&st) - g->base_leaves), (unsigned long long)v.still);
	CHECK_MSG(st.pending_unmaps == 0, "%s: %llu unmaps pending after the claim", at,
		  (unsigned long long)st.pending_unmaps);
	held = share_info(g->ctx).domain_held;
	want_held = g->base_held + (by[SRC_SMALL] ? SMALL_LEN : 0) + (by[SRC_CLAIM] ? 2 * K4 : 0);
	CHECK_MSG(held == want_held, "%s: held %llu after the claim, want %llu (lone pages still mapped %llu+%llu)", at,
		  (unsigned long long)held, (unsigned long long)want_held, (unsigned long long)by[SRC_SMALL],
		  (unsigned long long)by[SRC_CLAIM]);
	if (getenv("A27_TRACE"))
		printf("#   %s: after the claim: %llu pages still, tables %llu\n", at, (unsigned long long)v.still,
		       (unsigned long long)st.tables);
	/* The survivor unmaps what it left, range by range as it would have, then piece by piece. */
	for (unsigned i = 0; i < s->nr; i++) {
		bool m = range_mapped(g, s->r[i].at, s->r[i].len, s);

		ret = iovm_domain_unmap(g->dom, IOVM_IOVA(s->r[i].at), s->r[i].len);
		if (getenv("A27_TRACE"))
			printf("#   unmap of range %u: %d, tables %llu\n", i, ret, (unsigned long long)stats(g->dom).tables);
		CHECK_MSG(ret == (m ? 0 : -ENOENT), "%s: the survivor's unmap of range %u: %d (mapped: %d)", at, i, ret,
			  m);
	}
	for (unsigned i = 0; i < s->np; i++) {
		bool m = range_mapped(g, s->p[i].iova, s->p[i].len, s);

		ret = iovm_domain_unmap(g->dom, IOVM_IOVA(s->p[i].iova), s->p[i].len);
		CHECK_MSG(ret == (m ? 0 : -ENOENT), "%s: the survivor's unmap of piece %u: %d", at, i, ret);
	}
	if (deferred)
		CHECK_OK(iovm_domain_flush(g->dom));
	v.tables_first = stats(g->dom).tables;
	/*
	 * Once more, each range, mapped nowhere now: an unmap that finds
	 * nothing mapped detaches a table left empty in place (an unmap in
	 * parts, killed or not, leaves one: not promised otherwise), so that
	 * the count left is what a leak alone would change.
	 */
	for (unsigned i = 0; i < s->nr; i++) {
		ret = iovm_domain_unmap(g->dom, IOVM_IOVA(s->r[i].at), s->r[i].len);
		CHECK_MSG(ret == -ENOENT, "%s: the survivor's second unmap of range %u: %d", at, i, ret);
	}
	if (deferred)
		CHECK_OK(iovm_domain_flush(g->dom));
	st = stats(g->dom);
	CHECK_MSG(st.iova_allocated == g->base_iova, "%s: %llu bytes of IOVA left taken", at,
		  (unsigned long long)(st.iova_allocated - g->base_iova));
	CHECK_MSG(leaves(&st) == g->base_leaves, "%s: %lld pages of leaves left", at,
		  (long long)(leaves(&st) - g->base_leaves));
	v.tables = st.tables;
	if (ref_tables >= 0 && st.tables != (uint64_t)ref_tables) {
		printf("#   %s: %llu page-table pages (%llu before the second unmap), %ld when nobody died: probing\n", at,
		       (unsigned long long)st.tables, (unsigned long long)v.tables_first, ref_tables);
		probe_tables(g, s, at);
		printf("#   the probe found no table shared\n");
		for (unsigned i = 0; i < s->np; i++) { /* which spans have a table still: a map there takes none */
			iovm_iova_t iova = IOVM_IOVA(s->p[i].iova & ~(M2 - 1));
			uint64_t t0 = stats(g->dom).tables;

			if (s->p[i].len >= M2 || iovm_domain_map(g->dom, &iova, IOVM_PA(g->pa.big[1]), K4, IOVM_MAP_READ))
				continue;
			printf("#   a page mapped at %#llx (piece %u's span) took %llu tables\n",
			       (unsigned long long)iova.addr, i, (unsigned long long)(stats(g->dom).tables - t0));
			CHECK_OK(iovm_domain_unmap(g->dom, iova, K4));
		}
		ret = 0;
		if (g_pool) { /* the pool to its end: how many tables it still gives, and whether any is given twice */
			uint64_t got = 0, t0 = stats(g->dom).tables;

			for (; got < 50; got++) {
				iovm_iova_t iova = IOVM_IOVA(PROBE + got * M2 + got * K4);

				ret = iovm_domain_map(g->dom, &iova, IOVM_PA(g->pa.big[0] + got * K4), K4, IOVM_MAP_READ);
				if (ret)
					break;
			}
			printf("#   the pool of %u gave %llu tables more (-> %llu counted) before %d\n", g_pool,
			       (unsigned long long)got, (unsigned long long)stats(g->dom).tables, ret);
			for (uint64_t k = 0; k < got; k++)
				for (uint64_t j = 0; j < 64; j++) {
					iovm_pa_t pa;

					ret = iovm_domain_translate(g->dom, IOVM_IOVA(PROBE + k * M2 + j * K4), &pa, NULL);
					CHECK_MSG(j == k ? ret == 0 && pa.addr == g->pa.big[0] + k * K4 : ret == -ENOENT,
						  "%s: pool span %llu offset %llu: %d: one page-table page in two spans", at,
						  (unsigned long long)k, (unsigned long long)j, ret);
				}
			CHECK_MSG(t0 + got == g_pool, "%s: %llu tables counted, the pool gave %llu more: %u in all", at,
				  (unsigned long long)t0, (unsigned long long)got, g_pool);
		}
	}
	if (getenv("A27_TRACE")) {
		trigger(g, true); /* one more claim, and a flush */
		printf("#   %s: tables %llu at the end, %llu after one more claim\n", at, (unsigned long long)st.tables,
		       (unsigned long long)stats(g->dom).tables);
	}
	/*
	 * Exactly as many as when nobody died: also where it died in a split,
	 * between taking a page and hanging it (the survivor's claim frees a
	 * page that hangs nowhere).
	 */
	if (ref_tables >= 0)
		CHECK_MSG(st.tables == (uint64_t)ref_tables, "%s: %llu page-table pages in use, %ld when nobody died", at,
			  (unsigned long long)st.tables, ref_tables);
	probe_tables(g, s, at);
	held = share_info(g->ctx).domain_held;
	CHECK_MSG(held == g->base_held, "%s: held %llu, want the survivor's %llu (freed twice, or kept)", at,
		  (unsigned long long)held, (unsigned long long)g->base_held);
	return v;
}

/*
 * Eight fresh tables: one page in each of eight spans of their own, each
 * at an offset of its own. A page-table page handed out twice (freed
 * twice) would show one span's page in another.
 */
static void probe_tables(struct rig *g, const struct shape *s, const char *at)
{
	uint64_t t0 = stats(g->dom).tables;

	for (unsigned k = 0; k < 8; k++) {
		iovm_iova_t iova = IOVM_IOVA(PROBE + k * M2 + k * K4);
		int ret = iovm_domain_map(g->dom, &iova, IOVM_PA(g->pa.big[0] + k * K4), K4, IOVM_MAP_READ);

		CHECK_MSG(ret == 0, "%s: probe map %u: %d", at, k, ret);
	}
	CHECK_MSG(stats(g->dom).tables == t0 + 8, "%s: the probe's 8 pages took %llu tables", at,
		  (unsigned long long)(stats(g->dom).tables - t0));
	/* Nothing in the spans of the dead one's 4 KiB pieces (a table of theirs handed out again would show it). */
	for (unsigned i = 0; i < s->np; i++)
		for (uint64_t x = s->p[i].iova & ~(M2 - 1);
		     s->p[i].len < M2 && s->p[i].src != SRC_CLAIM && x < s->p[i].iova + s->p[i].len + M2;
		     x += K4) {
			iovm_pa_t pa;
			int ret = iovm_domain_translate(g->dom, IOVM_IOVA(x), &pa, NULL);

			CHECK_MSG(ret == -ENOENT, "%s: with the probe mapped, IOVA %#llx (a span of piece %u) translates to "
				  "%#llx: a page-table page in two places", at, (unsigned long long)x, i,
				  (unsigned long long)pa.addr);
		}
	for (unsigned i = 0; i < BIGS; i++) {
		iovm_pa_t pa;

		CHECK_MSG(iovm_domain_translate(g->dom, IOVM_IOVA(MINE + i * K4), &pa, NULL) == 0 &&
				  pa.addr == g->pa.big[i],
			  "%s: with the probe mapped, the survivor's page %u moved", at, i);
	}
	for (unsigned k = 0; k < 8; k++)
		for (unsigned j = 0; j < 8; j++) {
			iovm_pa_t pa;
			int ret = iovm_domain_translate(g->dom, IOVM_IOVA(PROBE + k * M2 + j * K4), &pa, NULL);

			CHECK_MSG(j == k ? ret == 0 && pa.addr == g->pa.big[0] + k * K4 : ret == -ENOENT,
				  "%s: probe span %u offset %u: %d (%#llx): a page-table page shared by two spans", at, k,
				  j, ret, (unsigned long long)pa.addr);
		}
	CHECK_OK(iovm_domain_unmap(g->dom, IOVM_IOVA(PROBE), 8 * M2));
	CHECK_OK(iovm_domain_flush(g->dom));
	CHECK_MSG(stats(g->dom).tables == t0, "%s: %llu tables after the probe, %llu before", at,
		  (unsigned long long)stats(g->dom).tables, (unsigned long long)t0);
}

/* The end: the survivor's pages go, the domain, the heap whole and sound. */
static void rig_down(struct rig *g, const char *at)
{
	struct iovm_share_info info;

	CHECK_OK(iovm_domain_unmap(g->dom, IOVM_IOVA(MINE), BIGS * K4));
	CHECK_OK(iovm_domain_flush(g->dom)); /* deferred: the holds go with the flush */
	CHECK_MSG(share_info(g->ctx).domain_held == 0, "%s: held %llu after the last mapping went", at,
		  (unsigned long long)share_info(g->ctx).domain_held);
	CHECK_OK(iovm_domain_destroy(g->dom));
	CHECK_OK(iovm_dma_free(g->ctx, g->other));
	CHECK_MSG(iovm_share_check(g->ctx) == 0, "%s: iovm_share_check: %s", at, iovm_error_detail());
	info = share_info(g->ctx);
	CHECK_MSG(info.heap_free == g->heap, "%s: %llu bytes of the heap not free after the domain went", at,
		  (unsigned long long)(g->heap - info.heap_free));
	CHECK_OK(iovm_close(g->ctx));
}

static void hung(int sig)
{
	static const char msg[] = "FAIL: the watchdog fired: a call hung (see the last 'ok' above)\n";

	(void)sig;
	if (write(2, msg, sizeof(msg) - 1) < 0)
		_exit(2);
	_exit(3);
}

#endif /* IOVM_TESTS_ATTACK27_H */
