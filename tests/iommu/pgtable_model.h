/* SPDX-License-Identifier: MIT */
/*
 * pgtable_model.h - the IO page table against a plain model (a sorted map
 * of page -> (PA, protection, accessed/dirty)), one operation at a time,
 * everything checked after every step. The operations come from a byte
 * stream: test_pgtable_model.c feeds it from a seeded generator,
 * fuzz_pgtable.c from libFuzzer.
 *
 * Three subjects: the bare page table (pt_*: 4 KiB, 2 MiB and 1 GiB
 * leaves, any PA), and a managed domain, strict or deferred, through the
 * public API (iovm_domain_map/_map_pages/_unmap/_translate/_read_dirty/
 * _flush, PAs within one buffer of the heap). A device's accessed and
 * dirty bits are set through the walk, as the engine sets them (pt_walk()
 * and pt_mark() on the domain's table).
 *
 * After every step: the table's mappings, merged into runs by
 * pt_for_each(), equal the model's; the leaf counters add up to what is
 * mapped; every leaf a walk finds maps, whole, what the model says; a
 * strict domain's allocated IOVAs are what is mapped (a deferred one's
 * after its flush).
 *
 * The includer defines MODEL_FAIL(fmt, ...) (not returning).
 */
#ifndef IOVM_TESTS_PGTABLE_MODEL_H
#define IOVM_TESTS_PGTABLE_MODEL_H

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <iovm.h>

#include "iommu/extent_model.h"
#include "iommu/iommu_internal.h"
#include "iommu/pgtable.h"

enum pgm_kind { PGM_PT, PGM_STRICT, PGM_DEFERRED, PGM_KINDS };

#define PGM_BASE (UINT64_C(1) << 20)  /* the window's first page: 4 GiB */
#define PGM_PAGES (UINT64_C(1) << 20) /* 4 GiB of pages */
#define PGM_NEAR (UINT64_C(1) << 15)  /* where small ranges go: its first 128 MiB */
#define PGM_BUF (UINT64_C(8) << 20)   /* a domain's PAs: one heap buffer, 2 MiB aligned */
#define PGM_TOP (UINT64_MAX >> 12)    /* the last page below 2^64 */

struct pgm {
	enum pgm_kind kind;
	struct io_pgtable pt;        /* PGM_PT */
	struct iovm_domain *dom;     /* the others */
	uint64_t buf_pa;             /* their PAs: [buf_pa, +PGM_BUF) */
	struct extents m;
	const uint8_t *data;
	size_t size, pos;
	uint64_t step;
	char what[200];              /* the step being run, for a failure */
	uint64_t checks;
	uint64_t previewed;          /* PGM_PT: leaves and tables an unmap's preview told */
};

#define PGM_FAIL(g, fmt, ...) \
	MODEL_FAIL("step %" PRIu64 " (%s): " fmt, (g)->step, (g)->what, ##__VA_ARGS__)
#define PGM_CHECK(g, cond, fmt, ...)                          \
	do {                                                  \
		(g)->checks++;                                \
		if (!(cond))                                  \
			PGM_FAIL(g, "%s: " fmt, #cond, ##__VA_ARGS__); \
	} while (0)

/* @n bytes of the stream, little endian; zeros past its end. */
static inline uint64_t pgm_take(struct pgm *g, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++, g->pos++)
		v |= (uint64_t)(g->pos < g->size ? g->data[g->pos] : 0) << (8 * i);
	return v;
}

static inline struct io_pgtable *pgm_pt(struct pgm *g)
{
	return g->kind == PGM_PT ? &g->pt : &g->dom->pt;
}

static inline int pgm_open(struct pgm *g, enum pgm_kind kind, struct iovm_ctx *ctx, uint64_t buf_pa)
{
	memset(g, 0, sizeof(*g));
	g->kind = kind;
	g->buf_pa = buf_pa;
	ext_init(&g->m);
	if (kind == PGM_PT)
		return pt_init(&g->pt);
	{
		struct iovm_domain_attr a = { .flags = kind == PGM_DEFERRED ? IOVM_DOMAIN_DEFERRED : 0,
					      .flush_timeout_us = 1000000 };

		return iovm_domain_create(ctx, &a, &g->dom);
	}
}

static inline void pgm_close(struct pgm *g)
{
	if (g->kind == PGM_PT)
		pt_destroy(&g->pt);
	else if (iovm_domain_destroy(g->dom))
		PGM_FAIL(g, "domain destroy failed");
	ext_free(&g->m);
}

/* A range of pages: small, 2 MiB sized, large, 1 GiB, or inside what is mapped. */
static inline void pgm_range(struct pgm *g, uint64_t *page, uint64_t *n, bool for_map)
{
	unsigned cls = (unsigned)pgm_take(g, 1) % 6;
	uint64_t max = g->kind == PGM_PT ? PGM_PAGES : PGM_BUF >> 12;

	if (cls >= 4 && g->m.nr) {
		const struct extent *e = &g->m.e[pgm_take(g, 2) % g->m.nr];
		uint64_t off = pgm_take(g, 2) % e->n;

		*page = e->page + off;
		*n = 1 + pgm_take(g, 2) % (e->n - off);
	} else if (cls == 3 && g->kind == PGM_PT) {
		*n = UINT64_C(1) << 18;
		*page = PGM_BASE + *n * (pgm_take(g, 1) % 4);
	} else if (cls == 1 || cls == 3) {
		/* In the first 512 MiB: ranges meet often, and few tables make a step's check cheap. */
		*n = 512 * (1 + pgm_take(g, 1) % 4);
		*page = PGM_BASE + align_down(pgm_take(g, 4) % (PGM_NEAR * 4 - *n), 512);
	} else {
		*n = 1 + (cls == 2 ? pgm_take(g, 2) % 1100 : pgm_take(g, 1) % 16);
		*page = PGM_BASE + pgm_take(g, 4) % (PGM_NEAR - *n);
	}
	if (for_map && *n > max)
		*n = max;
}

/* A PA for @n pages at @page: often aligned alike, so that huge leaves happen. */
static inline uint64_t pgm_pa(struct pgm *g, uint64_t page, uint64_t n)
{
	/* A gigabyte at a PA aligned otherwise would be 262144 small leaves: too slow a step to check. */
	bool alike = (pgm_take(g, 1) & 1) || n >= (UINT64_C(1) << 18);

	if (g->kind == PGM_PT)
		return alike ? ((pgm_take(g, 2) % 1024) << 30) + ((page << 12) & (SZ_1G - 1))
			     : (pgm_take(g, 3) & 0xffffff) << 12;
	{
		uint64_t len = n << 12, room = PGM_BUF - len, off;

		off = alike && room >= ((page << 12) & (SZ_2M - 1))
			      ? align_down(room - ((page << 12) & (SZ_2M - 1)), SZ_2M) + ((page << 12) & (SZ_2M - 1))
			      : ((pgm_take(g, 2) % ((room >> 12) + 1)) << 12);
		if (alike && off > room)
			off = 0;
		return g->buf_pa + off;
	}
}

/* The model's PA for @page, or UINT64_MAX. */
static inline uint64_t pgm_model_pa(const struct pgm *g, uint64_t page, unsigned *prot)
{
	const struct extent *e = ext_at(&g->m, page);

	if (!e)
		return UINT64_MAX;
	if (prot)
		*prot = e->prot;
	return e->pa + ((page - e->page) << 12);
}

/* A walk's leaf maps, whole, what the model says: returns its first page and its pages. */
static inline void pgm_leaf_ok(struct pgm *g, uint64_t iova, const struct pt_walk *w, uint64_t *first,
			       uint64_t *pages)
{
	uint64_t span = UINT64_C(1) << (w->shift - 12), start = align_down(iova >> 12, span);
	uint64_t pa0 = pa_val(w->pa) - (iova & ((UINT64_C(1) << w->shift) - 1));
	unsigned prot = 0;

	PGM_CHECK(g, w->shift == 12 || w->shift == 21 || w->shift == 30, "shift %u", w->shift);
	PGM_CHECK(g, ext_count(&g->m, start, span) == span, "a %u-bit leaf at page %#" PRIx64 " maps unmapped pages",
		  w->shift, start);
	for (uint64_t p = 0; p < span; p += span > 1 ? span - 1 : 1) {
		PGM_CHECK(g, pgm_model_pa(g, start + p, &prot) == pa0 + (p << 12), "leaf PA at page %#" PRIx64,
			  start + p);
		PGM_CHECK(g, prot == w->prot, "leaf prot %u, model %u", w->prot, prot);
	}
	*first = start;
	*pages = span;
}

struct pgm_cmp {
	struct pgm *g;
	size_t i;
};

static inline int pgm_cmp_run(void *arg, iova_t at, pa_t to, uint64_t len, unsigned prot)
{
	uint64_t iova = iova_val(at), pa = pa_val(to);
	struct pgm_cmp *c = arg;
	struct extent run;

	if (!ext_next_run(&c->g->m, &c->i, &run))
		PGM_FAIL(c->g, "the table maps %#" PRIx64 "+%#" PRIx64 ", the model nothing more", iova, len);
	if (run.page << 12 != iova || run.n << 12 != len || run.pa != pa || run.prot != prot)
		PGM_FAIL(c->g,
			 "the table maps %#" PRIx64 "+%#" PRIx64 " -> %#" PRIx64 " prot %u, the model %#" PRIx64
			 "+%#" PRIx64 " -> %#" PRIx64 " prot %u",
			 iova, len, pa, prot, run.page << 12, run.n << 12, run.pa, run.prot);
	return 0;
}

/* Everything, after every step. */
static inline void pgm_check_all(struct pgm *g)
{
	struct io_pgtable *pt = pgm_pt(g);
	struct pgm_cmp c = { .g = g };
	struct extent rest;
	uint64_t leaf_pages = 0;

	PGM_CHECK(g, pt_for_each(pt, pgm_cmp_run, &c) == 0, "walk");
	if (ext_next_run(&g->m, &c.i, &rest))
		PGM_FAIL(g, "the model maps %#" PRIx64 "+%#" PRIx64 ", the table not", rest.page << 12, rest.n << 12);
	for (int l = 0; l < 3; l++)
		leaf_pages += atomic_load(&pt->cnt->leaves[l]) << (9 * l);
	PGM_CHECK(g, leaf_pages == ext_total(&g->m), "leaf counters %" PRIu64 " pages, model %" PRIu64, leaf_pages,
		  ext_total(&g->m));
	if (g->kind == PGM_STRICT) {
		struct iovm_domain_stats st;

		PGM_CHECK(g, iovm_domain_stats(g->dom, &st) == 0, "stats");
		PGM_CHECK(g, st.iova_allocated == ext_total(&g->m) << 12, "allocated %#" PRIx64 ", mapped %#" PRIx64,
			  st.iova_allocated, ext_total(&g->m) << 12);
		PGM_CHECK(g, st.oracle_violations == 0, "oracle");
	}
}

static inline int pgm_do_map(struct pgm *g, uint64_t *page, uint64_t n, uint64_t pa, unsigned prot, bool any,
			     bool huge)
{
	if (g->kind == PGM_PT)
		return pt_map(&g->pt, IOVM_IOVA(*page << 12), IOVM_PA(pa), n << 12, prot, huge, NULL);
	{
		iovm_iova_t at = any ? IOVM_IOVA_ANY : IOVM_IOVA(*page << 12);
		int ret = iovm_domain_map(g->dom, &at, IOVM_PA(pa), n << 12, prot);

		if (!ret)
			*page = at.addr >> 12;
		return ret;
	}
}

static inline void pgm_map(struct pgm *g, uint64_t page, uint64_t n, bool must)
{
	uint64_t pa = pgm_pa(g, page, n);
	unsigned prot = 1 + (unsigned)pgm_take(g, 1) % 3;
	bool huge = g->kind != PGM_PT || (pgm_take(g, 1) & 3), any = g->kind != PGM_PT && !must && !(pgm_take(g, 1) % 4);
	int ret, want;

	if (!huge && n > 1024)
		n = 1024; /* 4 KiB leaves only: a few tables' worth */
	snprintf(g->what, sizeof(g->what), "map %s%#" PRIx64 " +%#" PRIx64 " -> %#" PRIx64 " prot %u%s",
		 any ? "anywhere, not " : "", page << 12, n << 12, pa, prot, huge ? "" : " no huge");
	want = !any && ext_count(&g->m, page, n) ? -EEXIST : 0;
	ret = pgm_do_map(g, &page, n, pa, prot, any, huge);
	PGM_CHECK(g, ret == want, "returned %d, want %d", ret, want);
	if (!ret) {
		PGM_CHECK(g, !ext_count(&g->m, page, n), "chose %#" PRIx64 ", which is mapped", page << 12);
		ext_add(&g->m, page, n, pa, prot);
	}
}

static inline void pgm_map_pages(struct pgm *g)
{
	uint64_t page, n;
	pa_t pas[600];
	unsigned prot = 1 + (unsigned)pgm_take(g, 1) % 3;
	bool any = g->kind != PGM_PT && !(pgm_take(g, 1) % 4);
	int ret, want;

	pgm_range(g, &page, &n, true);
	n = MIN(n, 600);
	for (uint64_t i = 0; i < n; i++)
		pas[i] = pa_make(g->kind == PGM_PT ? (pgm_take(g, 2) + 1) << 12
						   : g->buf_pa + ((pgm_take(g, 2) % (PGM_BUF >> 12)) << 12));
	snprintf(g->what, sizeof(g->what), "map %" PRIu64 " scattered pages at %s%#" PRIx64 " prot %u", n,
		 any ? "anywhere, not " : "", page << 12, prot);
	want = !any && ext_count(&g->m, page, n) ? -EEXIST : 0;
	if (g->kind == PGM_PT) {
		ret = pt_map_pages(&g->pt, IOVM_IOVA(page << 12), pas, (unsigned)n, prot, NULL);
	} else {
		iovm_iova_t at = any ? IOVM_IOVA_ANY : IOVM_IOVA(page << 12);

		ret = iovm_domain_map_pages(g->dom, &at, pas, (unsigned)n, prot);
		if (!ret)
			page = at.addr >> 12;
	}
	PGM_CHECK(g, ret == want, "returned %d, want %d", ret, want);
	if (!ret) {
		PGM_CHECK(g, !ext_count(&g->m, page, n), "chose %#" PRIx64 ", which is mapped", page << 12);
		for (uint64_t i = 0; i < n; i++)
			ext_add(&g->m, page + i, 1, pa_val(pas[i]), prot);
	}
}

/*
 * What an unmap takes, or its preview says it will (pt_unmap_preview(),
 * which a shared domain's unmap records before it clears): leaves and
 * detached tables, in the order told.
 */
#define PGM_TOLD 4096
struct pgm_told {
	uint64_t leaf[PGM_TOLD][3]; /* iova, pa, len */
	void *table[PGM_TOLD];
	unsigned leaves, tables;
	bool over;
};

static inline void pgm_tell_leaf(void *arg, iova_t iova, pa_t pa, uint64_t len, iopte_t pte)
{
	struct pgm_told *t = arg;

	(void)pte;
	if (t->leaves == PGM_TOLD) {
		t->over = true;
		return;
	}
	t->leaf[t->leaves][0] = iova_val(iova);
	t->leaf[t->leaves][1] = pa_val(pa);
	t->leaf[t->leaves++][2] = len;
}

static inline void pgm_tell_table(void *arg, void *table, iova_t base, int level)
{
	struct pgm_told *t = arg;

	(void)base, (void)level;
	if (t->tables == PGM_TOLD)
		t->over = true;
	else
		t->table[t->tables++] = table;
}

static inline void pgm_tell_retired(void *arg, void *table)
{
	pgm_tell_table(arg, table, iova_make(0), 0);
}

static inline bool pgm_has_table(const struct pgm_told *t, const void *table)
{
	for (unsigned i = 0; i < t->tables; i++)
		if (t->table[i] == table)
			return true;
	return false;
}

/* The bare table's unmap, told first by its preview: the same leaves in the same order, the same tables. */
static inline uint64_t pgm_pt_unmap_previewed(struct pgm *g, uint64_t page, uint64_t n)
{
	static struct pgm_told told, took;
	struct pt_retired retired = { NULL };
	iova_t at = IOVM_IOVA(page << 12);
	uint64_t got;

	memset(&told, 0, sizeof(told));
	memset(&took, 0, sizeof(took));
	/* Its edges split first, as a domain's unmap does: then the preview can tell everything. */
	PGM_CHECK(g, pt_unmap_prepare(&g->pt, at, n << 12) == 0, "prepare");
	PGM_CHECK(g, pt_unmap_preview(&g->pt, at, n << 12, pgm_tell_leaf, pgm_tell_table, &told),
		  "the preview could not tell");
	got = pt_unmap(&g->pt, at, n << 12, pgm_tell_leaf, &took, &retired);
	pt_retired_each(&retired, pgm_tell_retired, &took);
	pt_retired_give(&g->pt, &retired);
	if (told.over || took.over)
		return got;
	PGM_CHECK(g, told.leaves == took.leaves, "preview told %u leaves, the unmap took %u", told.leaves, took.leaves);
	for (unsigned i = 0; i < told.leaves; i++)
		PGM_CHECK(g, !memcmp(told.leaf[i], took.leaf[i], sizeof(told.leaf[i])),
			  "leaf %u: told %#" PRIx64 "->%#" PRIx64 " +%#" PRIx64 ", took %#" PRIx64 "->%#" PRIx64
			  " +%#" PRIx64,
			  i, told.leaf[i][0], told.leaf[i][1], told.leaf[i][2], took.leaf[i][0], took.leaf[i][1],
			  took.leaf[i][2]);
	PGM_CHECK(g, told.tables == took.tables, "preview told %u tables, the unmap detached %u", told.tables,
		  took.tables);
	for (unsigned i = 0; i < took.tables; i++)
		PGM_CHECK(g, pgm_has_table(&told, took.table[i]), "detached table %u was not told", i);
	g->previewed += told.leaves + told.tables;
	return got;
}

static inline void pgm_unmap(struct pgm *g, uint64_t page, uint64_t n)
{
	uint64_t want = ext_count(&g->m, page, n);

	snprintf(g->what, sizeof(g->what), "unmap %#" PRIx64 " +%#" PRIx64, page << 12, n << 12);
	if (g->kind == PGM_PT) {
		/* Half of them told first by the preview; the other half split as they go. */
		uint64_t got = g->step % 2 ? pgm_pt_unmap_previewed(g, page, n)
					   : pt_unmap(&g->pt, IOVM_IOVA(page << 12), n << 12, NULL, NULL, NULL);

		PGM_CHECK(g, got == want << 12, "unmapped %#" PRIx64 ", want %#" PRIx64, got, want << 12);
	} else {
		int ret = iovm_domain_unmap(g->dom, IOVM_IOVA(page << 12), n << 12);

		PGM_CHECK(g, ret == (want ? 0 : -ENOENT), "returned %d", ret);
	}
	ext_remove(&g->m, page, n);
}

/* Part of a mapping unmapped, and mapped again at once at the same IOVA, elsewhere. */
static inline void pgm_remap(struct pgm *g)
{
	uint64_t page, n;

	if (!g->m.nr) {
		pgm_range(g, &page, &n, true);
		pgm_map(g, page, n, false);
		return;
	}
	{
		const struct extent *e = &g->m.e[pgm_take(g, 2) % g->m.nr];
		uint64_t off = pgm_take(g, 2) % e->n;

		page = e->page + off;
		n = MIN(1 + pgm_take(g, 2) % (e->n - off), g->kind == PGM_PT ? PGM_PAGES : PGM_BUF >> 12);
	}
	pgm_unmap(g, page, n);
	pgm_map(g, page, n, true);
}

static inline void pgm_translate(struct pgm *g)
{
	static const uint64_t edges[] = { 0, 1, (UINT64_C(1) << 36) - 1, UINT64_C(1) << 36, PGM_TOP };
	unsigned how = (unsigned)pgm_take(g, 1) % 4;
	uint64_t page, off = pgm_take(g, 2) & 4095, want;
	unsigned prot = 0;

	if (how == 0 && g->m.nr) {
		const struct extent *e = &g->m.e[pgm_take(g, 2) % g->m.nr];

		page = e->page + pgm_take(g, 3) % e->n;
	} else if (how == 1) {
		page = edges[pgm_take(g, 1) % (sizeof(edges) / sizeof(edges[0]))];
	} else {
		page = PGM_BASE + pgm_take(g, 4) % PGM_PAGES;
	}
	snprintf(g->what, sizeof(g->what), "translate %#" PRIx64, (page << 12) + off);
	want = pgm_model_pa(g, page, &prot);
	if (g->kind == PGM_PT) {
		struct pt_walk w;
		int ret = pt_walk(&g->pt, IOVM_IOVA((page << 12) + off), &w);
		uint64_t first, pages;

		PGM_CHECK(g, ret == (want == UINT64_MAX ? -ENOENT : 0), "walk %d", ret);
		if (!ret) {
			PGM_CHECK(g, pa_val(w.pa) == want + off && w.prot == prot, "walk gave %#" PRIx64, pa_val(w.pa));
			pgm_leaf_ok(g, (page << 12) + off, &w, &first, &pages);
		}
	} else {
		iovm_pa_t pa;
		uint32_t perm;
		int ret = iovm_domain_translate(g->dom, IOVM_IOVA((page << 12) + off), &pa, &perm);

		PGM_CHECK(g, ret == (want == UINT64_MAX ? -ENOENT : 0), "translate %d", ret);
		if (!ret)
			PGM_CHECK(g, pa.addr == want + off && perm == prot, "translate gave %#" PRIx64, pa.addr);
	}
}

/* A device's access: walk, set the accessed (and dirty) bit of the leaf, as the engine does. */
static inline void pgm_access(struct pgm *g)
{
	const struct extent *e;
	uint64_t page, first, pages;
	bool write = pgm_take(g, 1) & 1;
	struct pt_walk w;

	if (!g->m.nr)
		return;
	e = &g->m.e[pgm_take(g, 2) % g->m.nr];
	page = e->page + pgm_take(g, 3) % e->n;
	snprintf(g->what, sizeof(g->what), "device %s %#" PRIx64, write ? "writes" : "reads", page << 12);
	PGM_CHECK(g, pt_walk(pgm_pt(g), IOVM_IOVA(page << 12), &w) == 0, "walk");
	pgm_leaf_ok(g, page << 12, &w, &first, &pages);
	pt_mark(w.ptep, w.pte, write);
	ext_ad(&g->m, first, pages, 1 | (write ? 2 : 0), true);
}

/* The leaf holding mapped @page: its pages. */
static inline void pgm_leaf_of(struct pgm *g, uint64_t page, uint64_t *first, uint64_t *pages)
{
	struct pt_walk w;

	PGM_CHECK(g, pt_walk(pgm_pt(g), IOVM_IOVA(page << 12), &w) == 0, "walk %#" PRIx64, page << 12);
	pgm_leaf_ok(g, page << 12, &w, first, pages);
}

static inline void pgm_read_dirty(struct pgm *g)
{
	uint64_t page, n, lo = UINT64_MAX, hi = 0;
	bool clear = pgm_take(g, 1) & 1, a, d;
	unsigned want;

	pgm_range(g, &page, &n, false);
	snprintf(g->what, sizeof(g->what), "read%s dirty %#" PRIx64 " +%#" PRIx64, clear ? " and clear" : "",
		 page << 12, n << 12);
	/* Bits are per leaf, and the model keeps them alike over each leaf: the pages' OR is the leaves'. */
	want = ext_ad(&g->m, page, n, 0, true);
	if (g->kind == PGM_PT) {
		pt_read_ad(&g->pt, IOVM_IOVA(page << 12), n << 12, clear, &a, &d);
	} else {
		PGM_CHECK(g, iovm_domain_read_dirty(g->dom, IOVM_IOVA(page << 12), n << 12, clear, &a, &d) == 0,
			  "read_dirty");
	}
	PGM_CHECK(g, a == !!(want & 1) && d == !!(want & 2), "got %d/%d, model %u", a, d, want);
	if (!clear)
		return;
	/* A clear clears whole leaves, also where they stick out of the range. */
	for (size_t i = ext_find(&g->m, page); i < g->m.nr && g->m.e[i].page < page + n; i++) {
		lo = MIN(lo, MAX(g->m.e[i].page, page));
		hi = MAX(hi, MIN(g->m.e[i].page + g->m.e[i].n, page + n) - 1);
	}
	if (lo > hi)
		return;
	{
		uint64_t f1, n1, f2, n2;

		pgm_leaf_of(g, lo, &f1, &n1);
		pgm_leaf_of(g, hi, &f2, &n2);
		ext_ad(&g->m, f1, f2 + n2 - f1, 0, false);
	}
}

static inline void pgm_flush(struct pgm *g)
{
	snprintf(g->what, sizeof(g->what), "%s", g->kind == PGM_PT ? "reclaim" : "flush");
	if (g->kind == PGM_PT) {
		pt_reclaim(&g->pt);
		return;
	}
	PGM_CHECK(g, iovm_domain_flush(g->dom) == 0, "flush");
	if (g->kind == PGM_DEFERRED) {
		struct iovm_domain_stats st;

		PGM_CHECK(g, iovm_domain_stats(g->dom, &st) == 0, "stats");
		PGM_CHECK(g, st.pending_unmaps == 0, "pending %" PRIu64, st.pending_unmaps);
		PGM_CHECK(g, st.iova_allocated == ext_total(&g->m) << 12, "allocated %#" PRIx64 ", mapped %#" PRIx64,
			  st.iova_allocated, ext_total(&g->m) << 12);
	}
}

/* Input the API refuses, with nothing changed. */
static inline void pgm_bad(struct pgm *g)
{
	uint64_t page = PGM_BASE + pgm_take(g, 2), pa = g->kind == PGM_PT ? SZ_2M : g->buf_pa;
	unsigned which = (unsigned)pgm_take(g, 1) % 5;
	static const uint64_t iovas[] = { 0x800, 0, UINT64_C(1) << 48, PGM_TOP << 12, 0x1000 };
	static const uint64_t lens[] = { SZ_4K, 0, SZ_4K, 2 * SZ_4K, SZ_4K + 1 };
	int ret;

	snprintf(g->what, sizeof(g->what), "bad input %u", which);
	(void)page;
	if (g->kind == PGM_PT) {
		ret = pt_map(&g->pt, IOVM_IOVA(iovas[which]), IOVM_PA(pa), lens[which], PT_PROT_READ, true, NULL);
		PGM_CHECK(g, ret == -EINVAL || (which == 1 && lens[which]), "pt_map %d", ret);
		PGM_CHECK(g, pt_map(&g->pt, IOVM_IOVA(page << 12), IOVM_PA(pa), SZ_4K, which == 4 ? 0 : 4, true, NULL) == -EINVAL, "prot");
		PGM_CHECK(g, pt_unmap(&g->pt, IOVM_IOVA((page << 12) + 8), SZ_4K, NULL, NULL, NULL) == 0, "unaligned unmap");
	} else {
		iovm_iova_t at = IOVM_IOVA(iovas[which]);

		ret = iovm_domain_map(g->dom, &at, IOVM_PA(pa), lens[which], IOVM_MAP_READ);
		PGM_CHECK(g, ret == -EINVAL, "map %d", ret);
		PGM_CHECK(g, iovm_domain_unmap(g->dom, IOVM_IOVA(PGM_TOP << 12), 2 * SZ_4K) == -EINVAL, "unmap");
		at = IOVM_IOVA(page << 12);
		PGM_CHECK(g, iovm_domain_map(g->dom, &at, IOVM_PA(pa + 1), SZ_4K, IOVM_MAP_READ) == -EINVAL, "pa");
	}
}

/* Run the stream to its end, or @max_steps steps. */
static inline void pgm_run(struct pgm *g, const uint8_t *data, size_t size, uint64_t max_steps)
{
	g->data = data;
	g->size = size;
	g->pos = 0;
	for (g->step = 0; g->pos < size && g->step < max_steps; g->step++) {
		unsigned op = (unsigned)pgm_take(g, 1) % 16;
		uint64_t page, n;

		switch (op) {
		case 0: case 1: case 2: case 3:
			pgm_range(g, &page, &n, true);
			pgm_map(g, page, n, false);
			break;
		case 4:
			pgm_map_pages(g);
			break;
		case 5: case 6: case 7:
			pgm_range(g, &page, &n, false);
			pgm_unmap(g, page, n);
			break;
		case 8: case 9:
			pgm_remap(g);
			break;
		case 10: case 11:
			pgm_translate(g);
			break;
		case 12:
			pgm_access(g);
			break;
		case 13:
			pgm_read_dirty(g);
			break;
		case 14:
			pgm_flush(g);
			break;
		default:
			pgm_bad(g);
			break;
		}
		pgm_check_all(g);
	}
}

#endif /* IOVM_TESTS_PGTABLE_MODEL_H */
