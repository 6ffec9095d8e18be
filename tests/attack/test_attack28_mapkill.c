/* SPDX-License-Identifier: MIT */
/*
 * test_attack28_mapkill.c - a process killed inside iovm_domain_map() of a
 * shared domain (iovm/mp.h, "Lifetime"), attacked from the public headers:
 * it "leaves what it mapped, and at worst an IOVA range allocated but
 * unused until the domain goes"; a page-table page it had taken and not
 * hung yet (for a map, or for the split of a huge leaf that an unmap of
 * part of it begins with) is freed by the next strict unmap or flush in
 * any process; nothing is freed twice; the stats' leaves are what
 * iovm_domain_translate() finds; iovm_share_check() passes.
 *
 * Plans (what a child maps): a 4 KiB page in a fresh 512 GiB, 1 GiB and 2
 * MiB span (3, 2, 1 new tables), 600 scattered pages (map_pages), a run
 * with a 2 MiB leaf in its middle, 2 MiB leaves in fresh 2 MiB, 1 GiB and
 * 512 GiB spans, 1 GiB leaves (free heap memory at a 1 GiB aligned PA), a
 * 2 MiB and a 1 GiB leaf over a span emptied before (its tables empty or
 * detached), an unmap of part of a 2 MiB and of a 1 GiB leaf (splits),
 * maps that fail midway with -EEXIST (rollbacks: fixed, with a 2 MiB
 * leaf, map_pages), and a map at an IOVA the domain chooses.
 *
 * After each death, against a run in which nobody died: the survivor's
 * strict unmap (deferred: flush) claims; every page that translates does
 * so to the PA mapped there, the leaves counted are those that translate,
 * no IOVA is taken beyond what translates (until 2026-12-07 a documented
 * gap: an IOVA range a dead map took stayed taken); the survivor unmaps
 * every range (and again, mapped nowhere), and the table count must be the
 * clean run's; then it maps the same ranges itself and unmaps them, and
 * the count must be the clean run's again; a probe maps one page in each
 * of four fresh 2 MiB spans and four fresh 1 GiB spans (12 new tables),
 * and no span may see another's page (a page-table page handed out twice).
 *
 *  - crash_point_walks: the child armed with the library's crash
 *    countdown (debug builds), sampled (A28_POINTS per walk, A28_EVERY=1
 *    for all), strict and deferred;
 *  - racing_maps: two children map neighbouring pages in the same fresh
 *    spans at once (both create the same tables), one killed at its crash
 *    points (debug builds) and at random moments (A28_RACE rounds), the
 *    other lives and must find every page of its own mapped;
 *  - random_kills: a child loops over every plan, mapping and unmapping,
 *    killed after a random delay, while another process does strict unmaps
 *    and (deferred) flushes (A28_ROUNDS rounds per mode, A28_SEED).
 *
 * A28_CASES=walk,race,random picks cases; A28_PLAN=id limits the walks.
 * Run it under `taskset -c 0` too. Written by an outsider on 2026-12-07.
 */
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>

#include <iovm.h>

#include "mp/mp_util.h"

#ifndef IOVM_DEBUG_CHECKS
static unsigned long crash_countdown; /* no crash points: a count nobody reads */
#endif

#define K4 UINT64_C(4096)
#define M2 (UINT64_C(2) << 20)
#define G1 (UINT64_C(1) << 30)
#define G(n) ((uint64_t)(n) << 30)
#define WIN G(4)
#define WIN_BIG G(512)  /* [4 GiB, 516 GiB): a fresh 512 GiB span at 512 GiB (the domain's block grows with it) */
#define WIN_SMALL G(20) /* [4 GiB, 24 GiB): for plans that stay below (iovm_domain_stats() scans the window) */
#define HEAP_S (UINT64_C(64) << 20)
#define HEAP_M (UINT64_C(256) << 20) /* room for the big window's domain block */
#define HEAP_G G(3)
#define POOL 256u
#define SMALL_PAGES 64u
#define MINE (WIN + 64 * M2)  /* the survivor's pages, one per 2 MiB block; below: IOVM_IOVA_ANY's */
#define OTHER (MINE + 8 * K4) /* the survivor's trigger */
#define HPAGE (MINE + 12 * K4) /* the helper's page (random kills) */
#define AT (WIN + 128 * M2)   /* 2 MiB spans of the plans */
#define RACE_AT (AT + 32 * M2)
#define PROBE2 (WIN + 256 * M2) /* four fresh 2 MiB spans */
#define PROBE1 G(19)            /* four fresh 1 GiB spans */
#define DOM "a28-dom"
#define NEVER (600u * 1000u * 1000u)
#define BIGS 4u
#define FILL G(5) /* the survivor's filler pages, one per 2 MiB span: a pool with 2 tables free */
#define MAXOPS 10
#define MAXPAGES 600u

enum { OP_MAP, OP_ANY, OP_PAGES, OP_UNMAP, OP_FLUSH };
enum { S_SMALL, S_RUN, S_BIG0, S_BIG1, S_BIG2, S_BIG3, S_GIG, NSRC };

struct op {
	int kind, src;
	uint64_t iova, len, off; /* OP_PAGES: page i is small page (off/4K + 7 i) % 64 */
	int want;
};
struct range {
	uint64_t at, len;
};
struct plan {
	const char *name;
	bool gig;
	uint32_t pool; /* not 0: the domain's pool, filled by the survivor's filler pages to leave 2 tables free */
	unsigned npre, narm, nb, nclean, nkeep;
	struct op pre[MAXOPS], arm[MAXOPS], b[MAXOPS]; /* b: the racing neighbour's */
	struct range clean[3];
	uint64_t keep[2]; /* the survivor's pages inside the plan (a rollback's conflict): small's last page */
};

enum { M_STRICT, M_DEFER, NMODES };
static const char *const mode_name[NMODES] = { "strict", "deferred" };

/* ---------------------------------------------------------------- plans */

static struct op MAPOP(uint64_t iova, uint64_t len, int src, uint64_t off)
{
	return (struct op){ OP_MAP, src, iova, len, off, 0 };
}
static struct op UNMAPOP(uint64_t iova, uint64_t len)
{
	return (struct op){ OP_UNMAP, 0, iova, len, 0, 0 };
}
static struct op FLUSHOP(void)
{
	return (struct op){ OP_FLUSH, 0, 0, 0, 0, 0 };
}
static struct op PAGESOP(uint64_t iova, unsigned pages, uint64_t off)
{
	return (struct op){ OP_PAGES, S_SMALL, iova, pages * K4, off, 0 };
}
static struct op FAILS(struct op o)
{
	o.want = -EEXIST;
	return o;
}

enum { P_L4, P_L3, P_L2, P_PAGES, P_CONTIG, P_2M, P_2M_1G, P_2M_512G, P_1G, P_1G_512G, P_EMPTY2M, P_EMPTY1G,
       P_SPLIT2M, P_SPLIT1G, P_ROLL4K, P_ROLL2M, P_ROLLPAGES, P_ROLLNOMEM, P_ANY, NPLANS };
enum { R_512G, R_2M, R_MIX, R_PAGES, NRACES };

static struct plan g_plans[NPLANS], g_races[NRACES];

#define PUT(list, n, o)                                \
	do {                                           \
		CHECK((n) < MAXOPS);                   \
		(list)[(n)++] = (o);                   \
	} while (0)
#define CLEAN(p, a, l) ((p)->clean[(p)->nclean++] = (struct range){ (a), (l) })

static void build_plans(void)
{
	struct plan *p;

	memset(g_plans, 0, sizeof(g_plans));
	memset(g_races, 0, sizeof(g_races));

	p = &g_plans[P_L4];
	p->name = "a 4K page in a fresh 512G span";
	PUT(p->arm, p->narm, MAPOP(G(512) + 3 * M2 + 5 * K4, K4, S_SMALL, 0));
	CLEAN(p, G(512), G(512));

	p = &g_plans[P_L3];
	p->name = "a 4K page in a fresh 1G span";
	PUT(p->arm, p->narm, MAPOP(G(8) + 7 * M2 + 9 * K4, K4, S_SMALL, K4));
	CLEAN(p, G(8), G1);

	p = &g_plans[P_L2];
	p->name = "a 4K page in a fresh 2M span";
	PUT(p->arm, p->narm, MAPOP(AT + 11 * K4, K4, S_SMALL, 2 * K4));
	CLEAN(p, AT, M2);

	p = &g_plans[P_PAGES];
	p->name = "600 scattered pages over 2 fresh spans";
	PUT(p->arm, p->narm, PAGESOP(AT + 2 * M2 - 300 * K4, 600, 0));
	CLEAN(p, AT + M2, 2 * M2);

	p = &g_plans[P_CONTIG];
	p->name = "64 4K, a 2M leaf, 64 4K";
	PUT(p->arm, p->narm, MAPOP(AT + 4 * M2 - 64 * K4, M2 + 128 * K4, S_RUN, M2 - 64 * K4));
	CLEAN(p, AT + 3 * M2, 3 * M2);

	p = &g_plans[P_2M];
	p->name = "a 2M leaf in a fresh 2M span";
	PUT(p->arm, p->narm, MAPOP(AT + 6 * M2, M2, S_BIG0, 0));
	CLEAN(p, AT + 6 * M2, M2);

	p = &g_plans[P_2M_1G];
	p->name = "a 2M leaf in a fresh 1G span";
	PUT(p->arm, p->narm, MAPOP(G(14) + 5 * M2, M2, S_RUN, 0));
	CLEAN(p, G(14), G1);

	p = &g_plans[P_2M_512G];
	p->name = "a 2M leaf in a fresh 512G span";
	PUT(p->arm, p->narm, MAPOP(G(515) + 4 * M2, M2, S_BIG3, 0));
	CLEAN(p, G(512), G(512));

	p = &g_plans[P_1G];
	p->name = "a 1G leaf";
	p->gig = true;
	PUT(p->arm, p->narm, MAPOP(G(6), G1, S_GIG, 0));
	CLEAN(p, G(6), G1);

	p = &g_plans[P_1G_512G];
	p->name = "a 1G leaf in a fresh 512G span";
	p->gig = true;
	PUT(p->arm, p->narm, MAPOP(G(513), G1, S_GIG, 0));
	CLEAN(p, G(512), G(512));

	p = &g_plans[P_EMPTY2M];
	p->name = "a 2M leaf over an emptied table";
	PUT(p->pre, p->npre, MAPOP(AT + 7 * M2 + 3 * K4, K4, S_SMALL, 3 * K4));
	PUT(p->pre, p->npre, MAPOP(AT + 7 * M2 + 200 * K4, K4, S_SMALL, 4 * K4));
	PUT(p->pre, p->npre, MAPOP(AT + 7 * M2 + 511 * K4, K4, S_SMALL, 5 * K4));
	PUT(p->pre, p->npre, UNMAPOP(AT + 7 * M2 + 3 * K4, K4));
	PUT(p->pre, p->npre, UNMAPOP(AT + 7 * M2 + 200 * K4, K4));
	PUT(p->pre, p->npre, UNMAPOP(AT + 7 * M2 + 511 * K4, K4));
	PUT(p->pre, p->npre, FLUSHOP());
	PUT(p->arm, p->narm, MAPOP(AT + 7 * M2, M2, S_BIG1, 0));
	CLEAN(p, AT + 7 * M2, M2);

	p = &g_plans[P_EMPTY1G];
	p->name = "a 1G leaf over an emptied 1G span";
	p->gig = true;
	PUT(p->pre, p->npre, MAPOP(G(9) + 5 * M2 + K4, K4, S_SMALL, 6 * K4));
	PUT(p->pre, p->npre, MAPOP(G(9) + 300 * M2, K4, S_SMALL, 7 * K4));
	PUT(p->pre, p->npre, MAPOP(G(9) + 400 * M2, M2, S_BIG2, 0));
	PUT(p->pre, p->npre, UNMAPOP(G(9) + 5 * M2 + K4, K4));
	PUT(p->pre, p->npre, UNMAPOP(G(9) + 300 * M2, K4));
	PUT(p->pre, p->npre, UNMAPOP(G(9) + 400 * M2, M2));
	PUT(p->pre, p->npre, FLUSHOP());
	PUT(p->arm, p->narm, MAPOP(G(9), G1, S_GIG, 0));
	CLEAN(p, G(9), G1);

	p = &g_plans[P_SPLIT2M];
	p->name = "a cut inside a 2M leaf (split)";
	PUT(p->pre, p->npre, MAPOP(AT + 8 * M2, M2, S_BIG2, 0));
	PUT(p->arm, p->narm, UNMAPOP(AT + 8 * M2 + 65 * K4, 10 * K4));
	CLEAN(p, AT + 8 * M2, M2);

	p = &g_plans[P_SPLIT1G];
	p->name = "a cut inside a 1G leaf (two splits)";
	p->gig = true;
	PUT(p->pre, p->npre, MAPOP(G(10), G1, S_GIG, 0));
	PUT(p->arm, p->narm, UNMAPOP(G(10) + 3 * M2 + K4, 2 * K4));
	CLEAN(p, G(10), G1);

	p = &g_plans[P_ROLL4K];
	p->name = "200 pages hit a mapped one (rollback)";
	p->keep[p->nkeep++] = AT + 10 * M2 + 50 * K4;
	PUT(p->arm, p->narm, FAILS(MAPOP(AT + 10 * M2 - 100 * K4, 200 * K4, S_RUN, 7 * K4)));
	CLEAN(p, AT + 9 * M2, M2 + 50 * K4);
	CLEAN(p, AT + 10 * M2 + 51 * K4, M2 - 51 * K4);

	p = &g_plans[P_ROLL2M];
	p->name = "a 2M leaf, then a mapped page (rollback)";
	p->keep[p->nkeep++] = G(12) + 4 * K4;
	PUT(p->arm, p->narm, FAILS(MAPOP(G(12) - M2, M2 + 8 * K4, S_RUN, 0)));
	CLEAN(p, G(11), G1 + 4 * K4);
	CLEAN(p, G(12) + 5 * K4, G1 - 5 * K4);

	p = &g_plans[P_ROLLPAGES];
	p->name = "40 scattered pages hit one (rollback)";
	p->keep[p->nkeep++] = AT + 12 * M2 + 10 * K4;
	PUT(p->arm, p->narm, FAILS(PAGESOP(AT + 12 * M2 - 20 * K4, 40, 9 * K4)));
	CLEAN(p, AT + 11 * M2, M2 + 10 * K4);
	CLEAN(p, AT + 12 * M2 + 11 * K4, M2 - 11 * K4);

	/* -EEXIST is found before anything is taken; a pool that runs dry is found midway. */
	p = &g_plans[P_ROLLNOMEM];
	p->name = "600 pages, 3 tables, 2 in the pool (rollback)";
	p->pool = 48;
	PUT(p->arm, p->narm, PAGESOP(AT + 14 * M2 - 8 * K4, 600, 0));
	p->arm[0].want = -ENOMEM;
	CLEAN(p, AT + 13 * M2, 3 * M2);

	p = &g_plans[P_ANY];
	p->name = "300 pages at an IOVA chosen";
	PUT(p->arm, p->narm, ((struct op){ OP_ANY, S_RUN, 0, 300 * K4, M2, 0 }));
	CLEAN(p, WIN, MINE - WIN);

	/* Races: A (arm) and B (b) map neighbouring pages in the same fresh spans. */
	p = &g_races[R_512G];
	p->name = "race: 4K pages in a fresh 512G span";
	for (unsigned j = 0; j < 4; j++) {
		PUT(p->arm, p->narm, MAPOP(G(512) + j * G1 + j * M2 + (2 * j + 1) * K4, K4, S_SMALL, j * K4));
		PUT(p->b, p->nb, MAPOP(G(512) + j * G1 + j * M2 + (2 * j + 2) * K4, K4, S_SMALL, (8 + j) * K4));
	}
	CLEAN(p, G(512), G(512));

	p = &g_races[R_2M];
	p->name = "race: 4K pages in fresh 2M spans";
	for (unsigned j = 0; j < 6; j++) {
		PUT(p->arm, p->narm, MAPOP(RACE_AT + j * M2 + 2 * j * K4, K4, S_SMALL, j * K4));
		PUT(p->b, p->nb, MAPOP(RACE_AT + j * M2 + (2 * j + 1) * K4, K4, S_SMALL, (8 + j) * K4));
	}
	CLEAN(p, RACE_AT, 6 * M2);

	p = &g_races[R_MIX];
	p->name = "race: 2M leaves beside 4K pages, fresh 1G";
	for (unsigned j = 0; j < 3; j++) {
		PUT(p->arm, p->narm, MAPOP(G(16) + 2 * j * M2, M2, S_BIG0 + (int)j, 0));
		PUT(p->b, p->nb, MAPOP(G(16) + (2 * j + 1) * M2 + (j + 1) * K4, K4, S_SMALL, (16 + j) * K4));
	}
	CLEAN(p, G(16), G1);

	p = &g_races[R_PAGES];
	p->name = "race: runs meeting in fresh 2M spans";
	PUT(p->arm, p->narm, PAGESOP(RACE_AT + 8 * M2 - 8 * K4, 16, 0));
	PUT(p->b, p->nb, PAGESOP(RACE_AT + 8 * M2 + 8 * K4, 16, 20 * K4));
	PUT(p->arm, p->narm, PAGESOP(RACE_AT + 10 * M2 - 8 * K4, 16, 0));
	PUT(p->b, p->nb, PAGESOP(RACE_AT + 9 * M2 - 16 * K4, 8, 40 * K4));
	CLEAN(p, RACE_AT + 7 * M2, 4 * M2);
}

/* ---------------------------------------------------------------- memory */

struct pas {
	uint64_t src[NSRC];
};
static struct pas g_pa; /* the rig's, inherited by its children */
static const char *g_name;
static int g_mode;
static unsigned long g_count;
static const struct plan *g_plan;
static bool g_is_b; /* the racing child runs the plan's b list */

static uint64_t page_pa(const struct op *o, uint64_t i)
{
	if (o->kind == OP_PAGES)
		return g_pa.src[S_SMALL] + ((o->off / K4 + 7 * i) % SMALL_PAGES) * K4;
	return g_pa.src[o->src] + o->off + i * K4;
}

static uint64_t leaves(const struct iovm_domain_stats *st)
{
	return st->leaves_4k + st->leaves_2m * 512 + st->leaves_1g * 512 * 512;
}

/* Runs @o on @dom; checks the result is the one a lone run gets, and that a map translates. Returns its result. */
static int do_op(struct iovm_domain *dom, const struct op *o, bool check, uint64_t *any_at)
{
	static iovm_pa_t pages[MAXPAGES];
	iovm_iova_t iova = o->kind == OP_ANY ? IOVM_IOVA_ANY : IOVM_IOVA(o->iova);
	iovm_pa_t pa;
	int ret = 0;

	switch (o->kind) {
	case OP_MAP:
	case OP_ANY:
		ret = iovm_domain_map(dom, &iova, IOVM_PA(page_pa(o, 0)), o->len, IOVM_MAP_READ | IOVM_MAP_WRITE);
		break;
	case OP_PAGES:
		for (uint64_t i = 0; i < o->len / K4; i++)
			pages[i] = IOVM_PA(page_pa(o, i));
		ret = iovm_domain_map_pages(dom, &iova, pages, (unsigned)(o->len / K4), IOVM_MAP_READ | IOVM_MAP_WRITE);
		break;
	case OP_UNMAP:
		ret = iovm_domain_unmap(dom, iova, o->len);
		break;
	case OP_FLUSH:
		ret = iovm_domain_flush(dom);
		break;
	}
	if (!check)
		return ret;
	CHECK_MSG(ret == o->want, "op %d at %#llx+%#llx: %d (%s), a lone run gets %d", o->kind,
		  (unsigned long long)o->iova, (unsigned long long)o->len, ret, iovm_error_detail(), o->want);
	if (ret == 0 && (o->kind == OP_MAP || o->kind == OP_ANY || o->kind == OP_PAGES)) {
		uint64_t last = o->len / K4 - 1;

		if (o->kind == OP_ANY && any_at)
			*any_at = iova.addr;
		CHECK_MSG(o->kind == OP_ANY || iova.addr == o->iova, "mapped at %#llx, asked %#llx",
			  (unsigned long long)iova.addr, (unsigned long long)o->iova);
		CHECK_MSG(iovm_domain_translate(dom, iova, &pa, NULL) == 0 && pa.addr == page_pa(o, 0),
			  "a page just mapped at %#llx does not translate to %#llx", (unsigned long long)iova.addr,
			  (unsigned long long)page_pa(o, 0));
		CHECK_MSG(iovm_domain_translate(dom, IOVM_IOVA(iova.addr + last * K4), &pa, NULL) == 0 &&
				  pa.addr == page_pa(o, last),
			  "the last page just mapped at %#llx does not translate to %#llx",
			  (unsigned long long)(iova.addr + last * K4), (unsigned long long)page_pa(o, last));
	}
	return ret;
}

static void run_ops(struct iovm_domain *dom, const struct op *ops, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		(void)do_op(dom, &ops[i], true, NULL);
}

/* ---------------------------------------------------------------- children */

/* A child that lived through its calls: disarmed, it says how many points it passed, and waits to be killed. */
static void lived(int wr)
{
	unsigned long left = crash_countdown;

	crash_countdown = 0;
	put64(wr, g_count - left);
	for (;;)
		pause();
}

static struct iovm_domain *view(void)
{
	struct iovm_ctx *ctx = attach_ok(g_name);
	struct iovm_domain *dom;

	CHECK_OK(iovm_share_domain_open(ctx, DOM, &dom));
	return dom;
}

/* Runs g_plan's pre ops, says so, waits for the word, then (armed with g_count) its arm ops (b ops: unarmed). */
static void mapper(int rd, int wr, void *arg)
{
	struct iovm_domain *dom = view();

	(void)arg;
	if (!g_is_b)
		run_ops(dom, g_plan->pre, g_plan->npre);
	put64(wr, 1);
	(void)get64(rd);
	if (g_is_b) {
		run_ops(dom, g_plan->b, g_plan->nb);
		g_count = 0;
		lived(wr);
	}
	crash_countdown = g_count;
	run_ops(dom, g_plan->arm, g_plan->narm);
	lived(wr);
}

static uint64_t g_seed;
static unsigned g_loop[NPLANS], g_nloop;

/* Every plan of g_loop, mapped and unmapped, in a random order, until killed. */
static void looper(int rd, int wr, void *arg)
{
	struct iovm_domain *dom = view();
	uint64_t seed = g_seed | 1;

	(void)arg;
	put64(wr, 1);
	(void)get64(rd);
	for (;;) {
		uint64_t x = test_rand(&seed);
		const struct plan *p = &g_plans[g_loop[x % g_nloop]];

		run_ops(dom, p->pre, p->npre);
		run_ops(dom, p->arm, p->narm);
		for (unsigned i = 0; i < p->nclean; i++) {
			int ret = iovm_domain_unmap(dom, IOVM_IOVA(p->clean[i].at), p->clean[i].len);

			CHECK_MSG(ret == 0 || ret == -ENOENT, "looper: unmap of %s: %d", p->name, ret);
		}
		if (g_mode == M_DEFER && (x >> 32) % 2)
			CHECK_OK(iovm_domain_flush(dom));
	}
}

/* Strict unmaps (deferred: and flushes) of its own page, until told to stop; says how many. */
static void helper(int rd, int wr, void *arg)
{
	struct iovm_domain *dom = view();
	uint64_t n = 0;

	(void)arg;
	put64(wr, 1);
	(void)get64(rd);
	for (;;) {
		struct pollfd pfd = { .fd = rd, .events = POLLIN };
		iovm_iova_t iova = IOVM_IOVA(HPAGE);

		CHECK_OK(iovm_domain_map(dom, &iova, IOVM_PA(g_pa.src[S_SMALL] + 62 * K4), K4, IOVM_MAP_READ));
		CHECK_OK(iovm_domain_unmap(dom, iova, K4));
		if (g_mode == M_DEFER)
			CHECK_OK(iovm_domain_flush(dom));
		n++;
		if (poll(&pfd, 1, 0) == 1)
			break;
	}
	(void)get64(rd);
	put64(wr, n);
}

/* ---------------------------------------------------------------- the survivor */

struct rig {
	char name[64]; /* the share's */
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	void *small, *run, *big[BIGS], *other;
	uint64_t heap, base_iova, base_leaves, fill;
	const struct plan *pl[NPLANS + 1];
	unsigned npl;
};

static struct iovm_domain_stats stats(struct iovm_domain *dom)
{
	struct iovm_domain_stats st;

	CHECK_OK(iovm_domain_stats(dom, &st));
	return st;
}

static uint64_t pa_of(struct iovm_ctx *ctx, void *p)
{
	iovm_pa_t pa;

	CHECK(p != NULL);
	CHECK_OK(iovm_dma_pa(ctx, p, &pa));
	return pa.addr;
}

static bool g_nogig; /* a heap of 3 GiB could not be had: the 1 GiB plans are skipped */

static void map_ro(struct iovm_domain *dom, uint64_t at, uint64_t pa)
{
	iovm_iova_t iova = IOVM_IOVA(at);

	CHECK_OK(iovm_domain_map(dom, &iova, IOVM_PA(pa), K4, IOVM_MAP_READ));
}

/* The filler pages: mapped (@on), or unmapped with their tables. */
static void fill(struct rig *g, bool on)
{
	if (!g->fill)
		return;
	if (!on) {
		CHECK_OK(iovm_domain_unmap(g->dom, IOVM_IOVA(FILL), G1));
		CHECK_OK(iovm_domain_flush(g->dom));
		return;
	}
	for (uint64_t k = 0; k < g->fill; k++)
		map_ro(g->dom, FILL + k * M2 + (k % 512) * K4, g_pa.src[S_SMALL] + 61 * K4);
}

/* A share, its domain, the blocks; the survivor maps a page of each 2 MiB block and the plans' keep pages. */
/* Whether @p needs the big window (a fresh 512 GiB span): slow to count, as iovm_domain_stats() scans it. */
static bool plan_big(const struct plan *p)
{
	bool big = false;

	for (unsigned k = 0; k < p->nclean; k++)
		big |= p->clean[k].at + p->clean[k].len > WIN + WIN_SMALL;
	return big;
}

static bool rig_up(struct rig *g, int mode, bool gig, const char *what, const struct plan *const *pl, unsigned npl)
{
	bool big = false;

	for (unsigned i = 0; i < npl; i++)
		big |= plan_big(pl[i]);

	struct iovm_share_params sp = { .heap_size = gig ? HEAP_G : big ? HEAP_M : HEAP_S, .group = -1, .page_size = K4 };
	struct iovm_share_domain_params p = { .iova_size = big ? WIN_BIG : WIN_SMALL, .tables = POOL };
	struct iovm_domain_stats st;
	unsigned keeps = 0;
	int ret;

	for (unsigned i = 0; i < npl; i++)
		p.tables = pl[i]->pool ? pl[i]->pool : p.tables;

	memset(g, 0, sizeof(*g));
	g->heap = sp.heap_size;
	snprintf(g->name, sizeof(g->name), "%s", share_name(what));
	g_name = g->name;
	if (mode == M_DEFER) {
		p.flags = IOVM_DOMAIN_DEFERRED;
		p.flush_batch = 4096;
		p.flush_timeout_us = NEVER;
	}
	CHECK_OK(iovm_open("oracle=on", &g->ctx));
	ret = iovm_share(g->ctx, g_name, &sp);
	if (ret == -ENOMEM && gig) {
		CHECK_OK(iovm_close(g->ctx));
		return false;
	}
	CHECK_MSG(ret == 0, "iovm_share: %d %s", ret, iovm_error_detail());
	ret = iovm_share_domain_create(g->ctx, DOM, &p, &g->dom);
	CHECK_MSG(ret == 0, "iovm_share_domain_create: %d %s", ret, iovm_error_detail());
	g->small = iovm_dma_alloc(g->ctx, SMALL_PAGES * K4, K4, 0);
	g->run = iovm_dma_alloc(g->ctx, 2 * M2, M2, 0);
	g->other = iovm_dma_alloc(g->ctx, K4, K4, 0);
	g_pa.src[S_SMALL] = pa_of(g->ctx, g->small);
	g_pa.src[S_RUN] = pa_of(g->ctx, g->run);
	CHECK_EQ(g_pa.src[S_RUN] % M2, 0);
	(void)pa_of(g->ctx, g->other);
	for (unsigned i = 0; i < BIGS; i++) {
		g->big[i] = iovm_dma_alloc(g->ctx, M2, M2, 0);
		g_pa.src[S_BIG0 + i] = pa_of(g->ctx, g->big[i]);
		CHECK_EQ(g_pa.src[S_BIG0 + i] % M2, 0);
		map_ro(g->dom, MINE + i * K4, g_pa.src[S_BIG0 + i]);
	}
	g_pa.src[S_GIG] = 0;
	if (gig) { /* free heap memory at a 1 GiB aligned PA, past everything allocated */
		struct iovm_share_info info = share_info(g->ctx);

		g_pa.src[S_GIG] = (info.heap_pa.addr + G1 / 2 + G1 - 1) & ~(G1 - 1);
		CHECK(g_pa.src[S_GIG] + G1 <= info.heap_pa.addr + info.heap_size);
	}
	for (unsigned i = 0; i < npl; i++) {
		g->pl[g->npl++] = pl[i];
		for (unsigned k = 0; k < pl[i]->nkeep; k++, keeps++)
			map_ro(g->dom, pl[i]->keep[k], g_pa.src[S_SMALL] + 63 * K4);
	}
	st = stats(g->dom);
	if (p.tables != POOL) /* fillers: room for 2 tables, one of them the fillers' 1 GiB span's */
		g->fill = p.tables - st.tables - 3;
	fill(g, true);
	st = stats(g->dom);
	CHECK_MSG(p.tables == POOL || st.tables + 2 == p.tables, "%llu tables with the fillers, of %u",
		  (unsigned long long)st.tables, p.tables);
	g->base_iova = st.iova_allocated;
	g->base_leaves = leaves(&st);
	CHECK_EQ(g->base_iova, (BIGS + keeps + g->fill) * K4);
	CHECK_EQ(g->base_leaves, BIGS + keeps + g->fill);
	return true;
}

static void rig_down(struct rig *g, const char *at)
{
	struct iovm_share_info info;

	CHECK_OK(iovm_domain_unmap(g->dom, IOVM_IOVA(MINE), BIGS * K4));
	fill(g, false);
	for (unsigned i = 0; i < g->npl; i++)
		for (unsigned k = 0; k < g->pl[i]->nkeep; k++)
			CHECK_OK(iovm_domain_unmap(g->dom, IOVM_IOVA(g->pl[i]->keep[k]), K4));
	CHECK_OK(iovm_domain_flush(g->dom));
	CHECK_OK(iovm_domain_destroy(g->dom));
	CHECK_OK(iovm_dma_free(g->ctx, g->small));
	CHECK_OK(iovm_dma_free(g->ctx, g->run));
	CHECK_OK(iovm_dma_free(g->ctx, g->other));
	for (unsigned i = 0; i < BIGS; i++)
		CHECK_OK(iovm_dma_free(g->ctx, g->big[i]));
	CHECK_MSG(iovm_share_check(g->ctx) == 0, "%s: iovm_share_check at the end: %s", at, iovm_error_detail());
	info = share_info(g->ctx);
	CHECK_MSG(info.heap_free == g->heap && info.domain_held == 0,
		  "%s: %llu bytes of the heap not free after the domain went (held %llu)", at,
		  (unsigned long long)(g->heap - info.heap_free), (unsigned long long)info.domain_held);
	CHECK_OK(iovm_close(g->ctx));
}

static void wait_procs(struct rig *g, unsigned n)
{
	WAIT_UNTIL(share_info(g->ctx).processes == n);
}

/* The next strict unmap (deferred: and its flush) of the survivor: it claims what the dead left. */
static void trigger(struct rig *g, bool deferred)
{
	iovm_iova_t iova = IOVM_IOVA(OTHER);

	CHECK_OK(iovm_domain_map(g->dom, &iova, IOVM_PA(pa_of(g->ctx, g->other)), K4, IOVM_MAP_READ));
	CHECK_OK(iovm_domain_unmap(g->dom, iova, K4));
	if (deferred)
		CHECK_OK(iovm_domain_flush(g->dom));
}

/* ---------------------------------------------------------------- what translates */

static bool is_keep(const struct rig *g, uint64_t x)
{
	for (unsigned i = 0; i < g->npl; i++)
		for (unsigned k = 0; k < g->pl[i]->nkeep; k++)
			if (g->pl[i]->keep[k] == x)
				return true;
	return false;
}

/*
 * Whether a fixed map of the rig's plans put *@pa at @x (keep pages: only
 * theirs); with *@pa UINT64_MAX on entry, the latest map's PA there.
 * False where none covers it; where some do but none with *@pa, true with
 * *@pa set to one of theirs (the caller's check then fails).
 */
static bool expect_pa(const struct rig *g, uint64_t x, uint64_t *pa)
{
	bool covered = false;
	uint64_t first = UINT64_MAX;

	if (is_keep(g, x)) {
		*pa = g_pa.src[S_SMALL] + 63 * K4;
		return true;
	}
	(void)first;
	for (unsigned i = 0; i < g->npl; i++) { /* the latest map that covers @x: its pre ops' may have gone */
		const struct plan *p = g->pl[i];
		const struct op *lists[3] = { p->b, p->arm, p->pre };
		unsigned ns[3] = { p->nb, p->narm, p->npre };

		for (unsigned l = 0; l < 3; l++)
			for (unsigned j = ns[l]; j-- > 0;) {
				const struct op *o = &lists[l][j];

				if ((o->kind == OP_MAP || o->kind == OP_PAGES) && x >= o->iova && x < o->iova + o->len) {
					/* any map that covers @x: one killed between a map and its unmap left the earlier */
					if (*pa == UINT64_MAX || page_pa(o, (x - o->iova) / K4) == *pa) {
						*pa = page_pa(o, (x - o->iova) / K4);
						return true;
					}
					covered = true;
				}
			}
	}
	if (covered) { /* none maps @x to *@pa: say the latest's */
		*pa = UINT64_MAX;
		return expect_pa(g, x, pa);
	}
	return false;
}

/* Ranges to walk page by page: every fixed map's, the keep pages, IOVM_IOVA_ANY's region. */
struct walk {
	struct range r[64];
	unsigned n;
	const struct op *any;
};

static void add_range(struct walk *w, uint64_t at, uint64_t len)
{
	/* Merge with what overlaps, so that no page is counted twice. */
	for (unsigned i = 0; i < w->n; i++) {
		uint64_t lo = w->r[i].at, hi = lo + w->r[i].len;

		if (at <= hi && at + len >= lo) {
			uint64_t nlo = at < lo ? at : lo, nhi = at + len > hi ? at + len : hi;

			w->r[i] = w->r[--w->n];
			add_range(w, nlo, nhi - nlo);
			return;
		}
	}
	CHECK(w->n < 64);
	w->r[w->n++] = (struct range){ at, len };
}

static struct walk walk_of(const struct rig *g)
{
	struct walk w;

	memset(&w, 0, sizeof(w));
	for (unsigned i = 0; i < g->npl; i++) {
		const struct plan *p = g->pl[i];
		const struct op *lists[3] = { p->pre, p->arm, p->b };
		unsigned ns[3] = { p->npre, p->narm, p->nb };

		for (unsigned k = 0; k < p->nkeep; k++)
			add_range(&w, p->keep[k], K4);
		for (unsigned l = 0; l < 3; l++)
			for (unsigned j = 0; j < ns[l]; j++) {
				const struct op *o = &lists[l][j];

				if (o->kind == OP_MAP || o->kind == OP_PAGES)
					add_range(&w, o->iova, o->len);
				if (o->kind == OP_ANY)
					w.any = o;
			}
	}
	if (w.any)
		add_range(&w, WIN, MINE - WIN);
	return w;
}

/*
 * Every page of the walk that translates does so to the PA mapped there
 * (IOVM_IOVA_ANY's pages: to its memory, at one offset); their number.
 * @in, when not NULL: count only pages inside it.
 */
static uint64_t translating(const struct rig *g, const struct walk *w, const struct range *in, const char *at)
{
	uint64_t n = 0, any_base = UINT64_MAX;

	for (unsigned i = 0; i < w->n; i++) {
		uint64_t lo = w->r[i].at, hi = lo + w->r[i].len;

		if (in) {
			lo = lo > in->at ? lo : in->at;
			hi = hi < in->at + in->len ? hi : in->at + in->len;
		}
		for (uint64_t x = lo; x < hi; x += K4) {
			iovm_pa_t pa;
			uint64_t want;
			int ret = iovm_domain_translate(g->dom, IOVM_IOVA(x), &pa, NULL);

			if (ret == -ENOENT)
				continue;
			CHECK_MSG(ret == 0, "%s: translate %#llx: %d", at, (unsigned long long)x, ret);
			n++;
			want = pa.addr;
			if (expect_pa(g, x, &want)) {
				CHECK_MSG(pa.addr == want, "%s: IOVA %#llx translates to %#llx, mapped to %#llx", at,
					  (unsigned long long)x, (unsigned long long)pa.addr, (unsigned long long)want);
				continue;
			}
			CHECK_MSG(w->any && x >= WIN && x < MINE, "%s: IOVA %#llx translates to %#llx: nobody mapped it",
				  at, (unsigned long long)x, (unsigned long long)pa.addr);
			{
				uint64_t pa0 = page_pa(w->any, 0);

				CHECK_MSG(pa.addr >= pa0 && pa.addr < pa0 + w->any->len,
					  "%s: IOVA %#llx (chosen) translates to %#llx, outside the memory mapped there", at,
					  (unsigned long long)x, (unsigned long long)pa.addr);
				if (any_base == UINT64_MAX)
					any_base = x - (pa.addr - pa0);
				CHECK_MSG(x - (pa.addr - pa0) == any_base,
					  "%s: IOVA %#llx (chosen) translates to %#llx: not at the offset of the rest", at,
					  (unsigned long long)x, (unsigned long long)pa.addr);
			}
		}
	}
	return n;
}

/* The survivor's pages (and keep pages) are where they were. */
static void mine_intact(const struct rig *g, const char *at)
{
	for (unsigned i = 0; i < BIGS; i++) {
		iovm_pa_t pa;

		CHECK_MSG(iovm_domain_translate(g->dom, IOVM_IOVA(MINE + i * K4), &pa, NULL) == 0 &&
				  pa.addr == g_pa.src[S_BIG0 + i],
			  "%s: the survivor's page %u moved or went", at, i);
	}
	for (unsigned i = 0; i < g->npl; i++)
		for (unsigned k = 0; k < g->pl[i]->nkeep; k++) {
			iovm_pa_t pa;

			CHECK_MSG(iovm_domain_translate(g->dom, IOVM_IOVA(g->pl[i]->keep[k]), &pa, NULL) == 0 &&
					  pa.addr == g_pa.src[S_SMALL] + 63 * K4,
				  "%s: the survivor's page at %#llx (a rollback's conflict) moved or went", at,
				  (unsigned long long)g->pl[i]->keep[k]);
		}
}

/* The leaves counted, against what translates: the survivor's pages and the walk's. */
static struct iovm_domain_stats exact(const struct rig *g, const struct walk *w, uint64_t *pages, const char *at)
{
	struct iovm_domain_stats st = stats(g->dom);
	uint64_t n = translating(g, w, NULL, at);

	mine_intact(g, at);
	CHECK_MSG(leaves(&st) == BIGS + g->fill + n,
		  "%s: %llu pages of leaves counted (4K %llu, 2M %llu, 1G %llu), %llu translate", at,
		  (unsigned long long)leaves(&st), (unsigned long long)st.leaves_4k, (unsigned long long)st.leaves_2m,
		  (unsigned long long)st.leaves_1g, (unsigned long long)(BIGS + g->fill + n));
	*pages = n;
	return st;
}

/* Unmaps every plan range: 0 where something translates there, -ENOENT elsewhere. */
static void unmap_all(struct rig *g, const struct walk *w, bool again, const char *at)
{
	for (unsigned i = 0; i < g->npl; i++)
		for (unsigned k = 0; k < g->pl[i]->nclean; k++) {
			const struct range *r = &g->pl[i]->clean[k];
			bool m = !again && translating(g, w, r, at) > 0;
			int ret = iovm_domain_unmap(g->dom, IOVM_IOVA(r->at), r->len);

			CHECK_MSG(ret == (m ? 0 : -ENOENT), "%s: the survivor's %sunmap of %#llx+%#llx (%s): %d, mapped %d",
				  at, again ? "second " : "", (unsigned long long)r->at, (unsigned long long)r->len,
				  g->pl[i]->name, ret, m);
		}
	CHECK_OK(iovm_domain_flush(g->dom));
}

/*
 * One page in each of 4 fresh 2 MiB spans and 4 fresh 1 GiB spans, each
 * at an offset of its own: 12 tables; a page-table page handed out twice
 * (freed twice, or freed while hung) shows one span's page in another,
 * or a page of the survivor's, or of a plan's range, that went.
 */
static void probe(struct rig *g, const struct walk *w, uint64_t t0, const char *at)
{
	uint64_t spans[8], n;

	for (unsigned k = 0; k < 8; k++)
		spans[k] = k < 4 ? PROBE2 + k * M2 : PROBE1 + (k - 4) * G1 + (k - 4) * M2;
	for (unsigned k = 0; k < 8; k++) {
		iovm_iova_t iova = IOVM_IOVA(spans[k] + (k + 1) * K4);
		int ret = iovm_domain_map(g->dom, &iova, IOVM_PA(g_pa.src[S_BIG0] + k * K4), K4, IOVM_MAP_READ);

		CHECK_MSG(ret == 0, "%s: probe map %u: %d (%s), %llu tables in use", at, k, ret, iovm_error_detail(),
			  (unsigned long long)stats(g->dom).tables);
	}
	CHECK_MSG(stats(g->dom).tables == t0 + 12, "%s: the probe's 8 pages took %llu tables, not 12", at,
		  (unsigned long long)(stats(g->dom).tables - t0));
	mine_intact(g, at);
	n = translating(g, w, NULL, at);
	for (unsigned i = 0; i < g->npl; i++) /* only the keep pages translate among the plans' */
		n -= g->pl[i]->nkeep;
	CHECK_MSG(n == 0, "%s: with the probe mapped, %llu pages of the plans' ranges translate", at,
		  (unsigned long long)n);
	for (unsigned k = 0; k < 8; k++)
		for (unsigned j = 0; j < 9; j++) {
			iovm_pa_t pa;
			int ret = iovm_domain_translate(g->dom, IOVM_IOVA(spans[k] + j * K4), &pa, NULL);

			CHECK_MSG(j == k + 1 ? ret == 0 && pa.addr == g_pa.src[S_BIG0] + k * K4 : ret == -ENOENT,
				  "%s: probe span %u (%#llx) offset %u: %d (%#llx): a page-table page shared by two spans", at,
				  k, (unsigned long long)spans[k], j, ret, (unsigned long long)pa.addr);
			if (k >= 4) { /* and the 2 MiB spans of a probed 1 GiB span that others use */
				ret = iovm_domain_translate(g->dom, IOVM_IOVA(spans[k] - (k - 4) * M2 + j * M2 + (k + 1) * K4),
							    &pa, NULL);
				CHECK_MSG(j == k - 4 ? ret == 0 : ret == -ENOENT,
					  "%s: probe 1G span %u, 2M span %u: %d: a page-table page shared", at, k, j, ret);
			}
		}
	/* Whole spans, so that their tables go too. */
	CHECK_OK(iovm_domain_unmap(g->dom, IOVM_IOVA(PROBE2), 4 * M2));
	CHECK_OK(iovm_domain_unmap(g->dom, IOVM_IOVA(PROBE1), 4 * G1));
	CHECK_OK(iovm_domain_flush(g->dom));
	CHECK_MSG(stats(g->dom).tables == t0, "%s: %llu tables after the probe, %llu before", at,
		  (unsigned long long)stats(g->dom).tables, (unsigned long long)t0);
}

static unsigned long g_oracle_bad; /* runs whose oracle counted violations (A28_ORACLE=0) */

struct ref {
	bool set;
	uint64_t mid, end; /* tables after the first cleanup, and after the survivor's own round */
};

struct outcome {
	uint64_t still;  /* pages left mapped by the dead */
	uint64_t leaked; /* IOVA bytes taken beyond what translates: 0 (a documented gap until 2026-12-07) */
	unsigned refused; /* the survivor's maps refused there (the gap again) */
};

static uint64_t max_map(const struct rig *g)
{
	uint64_t m = 0;

	for (unsigned i = 0; i < g->npl; i++) {
		const struct plan *p = g->pl[i];
		const struct op *lists[3] = { p->pre, p->arm, p->b };
		unsigned ns[3] = { p->npre, p->narm, p->nb };

		for (unsigned l = 0; l < 3; l++)
			for (unsigned j = 0; j < ns[l]; j++)
				if (lists[l][j].kind <= OP_PAGES && lists[l][j].len > m)
					m = lists[l][j].len;
	}
	return m;
}

static void table_mismatch(struct rig *g, const struct walk *w, uint64_t got, uint64_t want, const char *stage,
			   const char *at)
{
	printf("#   %s: %llu page-table pages %s, %llu when nobody died: probing\n", at, (unsigned long long)got,
	       stage, (unsigned long long)want);
	fill(g, false);
	probe(g, w, stats(g->dom).tables, at);
	printf("#   the probe found no table shared\n");
	test_fail("%s: %llu page-table pages in use %s, %llu when nobody died", at, (unsigned long long)got, stage,
		  (unsigned long long)want);
}

/*
 * After the dead: the claim, what translates against the counts, the
 * survivor's cleanup and its own round of the same maps, the tables
 * against the clean run's (@ref, set by the clean run), the probe.
 */
static struct outcome verify(struct rig *g, int mode, struct ref *ref, const char *at)
{
	struct walk w = walk_of(g);
	struct iovm_domain_stats st;
	struct outcome o = { 0, 0, 0 };
	uint64_t n, keeps = g->base_leaves - BIGS - g->fill, iova_after;
	int ret;

	ret = iovm_share_check(g->ctx);
	CHECK_MSG(ret == 0, "%s: iovm_share_check before the claim: %d %s", at, ret, iovm_error_detail());
	trigger(g, mode == M_DEFER);
	ret = iovm_share_check(g->ctx);
	CHECK_MSG(ret == 0, "%s: iovm_share_check after the claim: %d %s", at, ret, iovm_error_detail());
	st = exact(g, &w, &n, at);
	o.still = n - keeps;
	CHECK_MSG(st.pending_unmaps == 0, "%s: %llu unmaps pending after the claim", at,
		  (unsigned long long)st.pending_unmaps);
	CHECK_MSG(st.iova_allocated >= (BIGS + g->fill + n) * K4, "%s: %llu bytes of IOVA taken, %llu translate", at,
		  (unsigned long long)st.iova_allocated, (unsigned long long)((BIGS + g->fill + n) * K4));
	o.leaked = st.iova_allocated - (BIGS + g->fill + n) * K4;
	/* Since 2026-12-07 a survivor's claim gives back what a dead map took and did not map (mp.h). */
	CHECK_MSG(o.leaked == 0, "%s: %llu bytes of IOVA taken and unmapped after the claim (a map's range is at most "
		  "%llu bytes)", at, (unsigned long long)o.leaked, (unsigned long long)max_map(g));
	if (getenv("A28_TRACE"))
		printf("#   %s: after the claim %llu pages still, %llu IOVA bytes leaked, tables %llu\n", at,
		       (unsigned long long)o.still, (unsigned long long)o.leaked, (unsigned long long)st.tables);

	/* The survivor unmaps every range, then once more (mapped nowhere now: an empty table left goes). */
	unmap_all(g, &w, false, at);
	unmap_all(g, &w, true, at);
	st = exact(g, &w, &n, at);
	CHECK_MSG(n == keeps, "%s: %llu pages translate after the survivor unmapped everything", at,
		  (unsigned long long)(n - keeps));
	CHECK_MSG(st.iova_allocated <= g->base_iova + o.leaked, "%s: %llu IOVA bytes taken after the cleanup, %llu + %llu "
		  "before", at, (unsigned long long)st.iova_allocated, (unsigned long long)g->base_iova,
		  (unsigned long long)o.leaked);
	iova_after = st.iova_allocated - g->base_iova;
	if (ref->set && st.tables != ref->mid)
		table_mismatch(g, &w, st.tables, ref->mid, "after the cleanup", at);
	if (!ref->set)
		ref->mid = st.tables;

	/* Its own round of the same ops: maps where the dead mapped, in tables the dead may have taken. */
	for (unsigned i = 0; i < g->npl; i++) {
		const struct plan *p = g->pl[i];
		const struct op *lists[3] = { p->pre, p->arm, p->b };
		unsigned ns[3] = { p->npre, p->narm, p->nb };

		for (unsigned l = 0; l < 3; l++)
			for (unsigned j = 0; j < ns[l]; j++) {
				const struct op *op = &lists[l][j];

				ret = do_op(g->dom, op, false, NULL);
				if (ret == op->want) {
					if (ret == 0 && op->kind <= OP_PAGES) {
						iovm_pa_t pa;

						CHECK_MSG(op->kind == OP_ANY ||
								  (iovm_domain_translate(g->dom, IOVM_IOVA(op->iova), &pa, NULL) ==
									   0 &&
								   pa.addr == page_pa(op, 0)),
							  "%s: the survivor's map at %#llx does not translate", at,
							  (unsigned long long)op->iova);
					}
					continue;
				}
				CHECK_MSG(iova_after > 0 && op->kind != OP_ANY &&
						  (ret == -EEXIST || ret == -ENOSPC || (ret == -ENOENT && op->kind == OP_UNMAP && o.refused)),
					  "%s: the survivor's own op %d at %#llx+%#llx (%s): %d (%s), a clean run gets %d; "
					  "%llu IOVA bytes left taken", at, op->kind, (unsigned long long)op->iova,
					  (unsigned long long)op->len, p->name, ret, iovm_error_detail(), op->want,
					  (unsigned long long)iova_after);
				o.refused++;
			}
	}
	(void)translating(g, &w, NULL, at); /* the survivor's own maps translate where they must */
	unmap_all(g, &w, false, at);
	unmap_all(g, &w, true, at);
	st = exact(g, &w, &n, at);
	CHECK_MSG(n == keeps, "%s: %llu pages translate after the survivor's own round", at,
		  (unsigned long long)(n - keeps));
	CHECK_MSG(st.iova_allocated <= g->base_iova + iova_after, "%s: the survivor's own round left %llu IOVA bytes taken",
		  at, (unsigned long long)(st.iova_allocated - g->base_iova - iova_after));
	if (ref->set && st.tables != ref->end)
		table_mismatch(g, &w, st.tables, ref->end, "after the survivor's own round", at);
	/* A28_ORACLE=0: go on past it (to see what else fails). */
	CHECK_MSG(st.oracle_violations == 0 || !strcmp(getenv("A28_ORACLE") ? getenv("A28_ORACLE") : "", "0"),
		  "%s: the oracle counts %llu violations after the survivor's own round (its maps where the dead "
		  "one's were)", at, (unsigned long long)st.oracle_violations);
	g_oracle_bad += st.oracle_violations > 0;
	if (!ref->set) { /* this is the clean run: its counts are the reference */
		ref->end = st.tables;
		ref->set = true;
	}
	fill(g, false);
	probe(g, &w, stats(g->dom).tables, at);
	fill(g, true);
	ret = iovm_share_check(g->ctx);
	CHECK_MSG(ret == 0, "%s: iovm_share_check after the probe: %d %s", at, ret, iovm_error_detail());
	return o;
}

/* ---------------------------------------------------------------- bookkeeping */

struct tally {
	unsigned long runs, deaths, lived, leaked, refused, still;
	uint64_t leaked_bytes;
};

static void tally_add(struct tally *t, const struct outcome *o, bool died)
{
	t->runs++;
	t->deaths += died;
	t->lived += !died;
	t->leaked += o->leaked > 0;
	t->leaked_bytes += o->leaked;
	t->refused += o->refused > 0;
	t->still += o->still > 0;
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
	const char *v = getenv(name);

	return v && *v ? strtoull(v, NULL, 0) : dflt;
}

/* The points to walk out of 1..@p: all of them, or the first and last @cap/3 and @cap/3 between. */
static unsigned long next_point(unsigned long n, unsigned long p, unsigned long cap, uint64_t *seed)
{
	unsigned long edge = cap / 3, step;

	if (p <= cap || n < edge || n >= p - edge)
		return n + 1;
	step = (p - 2 * edge) / (cap / 3 + 1);
	return n + 1 + test_rand(seed) % (2 * step);
}

static unsigned long points_cap(void)
{
	return getenv("A28_EVERY") ? ULONG_MAX : env_u64("A28_POINTS", TEST_ASAN || TEST_TSAN ? 4 : 8);
}

/* Plans in the 512 GiB window, or with 1 GiB leaves: a run costs ten times more. */
static unsigned long points_cap_big(void)
{
	return getenv("A28_EVERY") ? ULONG_MAX : env_u64("A28_POINTS_BIG", 3);
}

/* Reads a word from @c with a timeout: whether one came. */
static bool get64_within(struct child *c, uint64_t *v, int ms)
{
	struct pollfd pfd = { .fd = c->rd, .events = POLLIN };

	if (poll(&pfd, 1, ms) != 1)
		return false;
	return read(c->rd, v, sizeof(*v)) == (ssize_t)sizeof(*v);
}

/*
 * The rig of a walk, reused from run to run: verify() leaves the domain as
 * it found it (each death's damage adds up, as a pool that leaks runs dry),
 * except for IOVAs a dead map left taken: then, and every 8 runs (so that
 * rig_down() checks the heap often), it is made anew.
 */
static struct rig g_rig;
static bool g_rig_live;
static unsigned g_rig_uses;

static struct rig *rig_get(int mode, bool gig, const char *what, const struct plan *const *pl, unsigned npl)
{
	if (!g_rig_live) {
		CHECK(rig_up(&g_rig, mode, gig, what, pl, npl));
		g_rig_live = true;
		g_rig_uses = 0;
	}
	g_name = g_rig.name; /* the children attach to it */
	return &g_rig;
}

static void rig_put(const struct outcome *o, bool last, const char *at)
{
	if (!g_rig_live)
		return;
	if (last || o->leaked || o->refused || ++g_rig_uses >= (getenv("A28_FRESH") ? 1u : 8u)) {
		rig_down(&g_rig, at);
		g_rig_live = false;
	}
}

/* A28_TIME=1: how long each step of a run took. */
static void lap(const char *what)
{
	static struct timespec t0;
	struct timespec t;

	if (!getenv("A28_TIME"))
		return;
	clock_gettime(CLOCK_MONOTONIC, &t);
	if (what)
		printf("#   %-12s %6.1f ms\n", what,
		       (double)(t.tv_sec - t0.tv_sec) * 1e3 + (double)(t.tv_nsec - t0.tv_nsec) / 1e6);
	t0 = t;
}

/* ---------------------------------------------------------------- 1: crash-point walks */

static struct ref g_ref[NPLANS][NMODES], g_race_ref[NRACES][NMODES];
static unsigned long g_ref_points[NPLANS][NMODES];

/*
 * One run of plan @id in @mode, the child armed at @n: whether it lived
 * (then its points in *@points). The first run (ref not set) must live:
 * it is the reference.
 */
static bool one_point(int id, int mode, unsigned long n, unsigned long *points, struct tally *t)
{
	const struct plan *pl[1] = { &g_plans[id] };
	struct ref *ref = &g_ref[id][mode];
	char at[200];
	struct outcome o;
	struct child c;
	struct rig *g;
	uint64_t said = 0;
	bool lived, first = !ref->set;

	snprintf(at, sizeof(at), "walk: %s, %s, point %lu", g_plans[id].name, mode_name[mode], n);
	lap(NULL);
	g = rig_get(mode, g_plans[id].gig, "a28-pt", pl, 1);
	lap("rig_up");
	g_plan = &g_plans[id];
	g_is_b = false;
	g_mode = mode;
	g_count = n;
	c = child_start(mapper, NULL);
	CHECK_EQ(get64(c.rd), 1);
	lap("child ready");
	lived = child_go_lives(&c, n, &said);
	lap("child went");
	if (lived)
		*points = said;
	wait_procs(g, 1);
	lap("reaped");
	o = verify(g, mode, ref, at);
	lap("verify");
	CHECK_MSG(!first || lived, "%s: the clean run died", at);
	tally_add(t, &o, !lived);
	rig_put(&o, false, at);
	lap("rig_down");
	return lived;
}

static void walk(int id, int mode, struct tally *t)
{
	unsigned long p = 0, n, tried = 0, dummy,
		      cap = plan_big(&g_plans[id]) || g_plans[id].gig ? points_cap_big() : points_cap(),
		      lived_early = 0;
	uint64_t seed = g_seed ^ (uint64_t)(id * 31 + mode);
	struct tally before = *t;
	time_t t0 = time(NULL);

	if (g_plans[id].gig && g_nogig) {
		printf("# %-42s %-8s skipped: no 3 GiB heap for a 1 GiB leaf\n", g_plans[id].name, mode_name[mode]);
		return;
	}
	if (!g_ref[id][mode].set) {
		CHECK(one_point(id, mode, ULONG_MAX / 2, &p, t));
		g_ref_points[id][mode] = p;
	}
	p = g_ref_points[id][mode];
	if (!p)
		printf("# %-42s %-8s passes no crash point: its error comes before it takes anything\n", g_plans[id].name,
		       mode_name[mode]);
	for (n = 1; n <= p; n = next_point(n, p, cap, &seed), tried++)
		lived_early += one_point(id, mode, n, &dummy, t);
	{
		struct outcome none = { 0, 0, 0 };

		rig_put(&none, true, g_plans[id].name);
	}
	printf("# %-42s %-8s killed at %lu of its %lu points (+1 clean): tables %llu/%llu; %lu left IOVA taken "
	       "(%llu KiB), %lu left pages mapped, %lu lived; %lds\n",
	       g_plans[id].name, mode_name[mode], tried, p, (unsigned long long)g_ref[id][mode].mid,
	       (unsigned long long)g_ref[id][mode].end, t->leaked - before.leaked,
	       (unsigned long long)((t->leaked_bytes - before.leaked_bytes) >> 10), t->still - before.still,
	       lived_early, (long)(time(NULL) - t0));
}

TEST(crash_point_walks)
{
	struct tally t;
	int only = (int)env_u64("A28_PLAN", (uint64_t)-1);

	memset(&t, 0, sizeof(t));
	for (int id = 0; id < NPLANS; id++) {
		if (only >= 0 && id != only)
			continue;
		walk(id, M_STRICT, &t);
		walk(id, M_DEFER, &t);
	}
	printf("# crash-point walks: %lu runs, %lu deaths; %lu left an IOVA range taken (%llu KiB), "
	       "%lu of them refused the survivor's map there; %lu left pages mapped\n",
	       t.runs, t.deaths, t.leaked, (unsigned long long)(t.leaked_bytes >> 10), t.refused, t.still);
	CHECK(t.runs > 0);
}

/* ---------------------------------------------------------------- 2: racing maps */

/*
 * Race @id in @mode: A armed at @n (or, @n == 0, killed after @us
 * microseconds), B lives and must have all its pages mapped. Whether A
 * lived (then its points in *@points).
 */
static bool race_one(int id, int mode, unsigned long n, unsigned us, unsigned long *points, struct tally *t)
{
	const struct plan *pl[1] = { &g_races[id] };
	struct ref *ref = &g_race_ref[id][mode];
	char at[200];
	struct outcome o;
	struct child a, b;
	struct rig *g;
	uint64_t said = 0, bsaid = 0;
	bool lived;

	if (n)
		snprintf(at, sizeof(at), "race: %s, %s, A at point %lu", g_races[id].name, mode_name[mode], n);
	else
		snprintf(at, sizeof(at), "race: %s, %s, A killed after %u us (A28_SEED=%#llx)", g_races[id].name,
			 mode_name[mode], us, (unsigned long long)g_seed);
	g = rig_get(mode, false, "a28-race", pl, 1);
	g_plan = &g_races[id];
	g_mode = mode;
	g_is_b = true;
	g_count = 0;
	b = child_start(mapper, NULL);
	g_is_b = false;
	g_count = n ? n : ULONG_MAX / 2;
	a = child_start(mapper, NULL);
	CHECK_EQ(get64(a.rd), 1);
	CHECK_EQ(get64(b.rd), 1);
	put64(b.wr, 1);
	if (n) {
		lived = child_go_lives(&a, n, &said);
		if (lived)
			*points = said;
	} else {
		put64(a.wr, 1);
		usleep(us);
		{
			struct pollfd pfd = { .fd = a.rd, .events = POLLIN };

			lived = poll(&pfd, 1, 0) == 1;
		}
		child_kill(&a);
	}
	CHECK_MSG(get64_within(&b, &bsaid, 60000), "%s: B did not finish its maps within a minute of A's death", at);
	child_kill(&b);
	wait_procs(g, 1);
	/* B's pages are all there. */
	for (unsigned j = 0; j < g_races[id].nb; j++) {
		const struct op *op = &g_races[id].b[j];

		for (uint64_t x = 0; x < op->len / K4; x++) {
			iovm_pa_t pa;
			int ret = iovm_domain_translate(g->dom, IOVM_IOVA(op->iova + x * K4), &pa, NULL);

			CHECK_MSG(ret == 0 && pa.addr == page_pa(op, x), "%s: B's page at %#llx: %d (%#llx), mapped to %#llx",
				  at, (unsigned long long)(op->iova + x * K4), ret, (unsigned long long)pa.addr,
				  (unsigned long long)page_pa(op, x));
		}
	}
	o = verify(g, mode, ref, at);
	tally_add(t, &o, !lived);
	rig_put(&o, false, at);
	return lived;
}

TEST(racing_maps)
{
	unsigned rounds = (unsigned)env_u64("A28_RACE", TEST_ASAN || TEST_TSAN ? 3 : 6);
	uint64_t seed = g_seed ^ 0x28;
	struct tally t;

	memset(&t, 0, sizeof(t));
	for (int id = 0; id < NRACES; id++)
		for (int mode = 0; mode < NMODES; mode++) {
			struct tally before = t;
			bool big = plan_big(&g_races[id]);
			unsigned long p = 0, dummy, tried = 0, lived_early = 0, cap = big ? points_cap_big() : points_cap();
			unsigned nr = big ? (rounds + 2) / 3 : rounds;
			time_t t0 = time(NULL);

			CHECK(race_one(id, mode, ULONG_MAX / 2, 0, &p, &t));
#ifdef IOVM_DEBUG_CHECKS
			for (unsigned long n = 1; n <= p; n = next_point(n, p, cap, &seed), tried++)
				lived_early += race_one(id, mode, n, 0, &dummy, &t);
#else
			(void)cap;
			(void)dummy;
#endif
			for (unsigned r = 0; r < nr; r++)
				lived_early += race_one(id, mode, 0, (unsigned)(test_rand(&seed) % 400), &dummy, &t);
			{
				struct outcome none = { 0, 0, 0 };

				rig_put(&none, true, g_races[id].name);
			}
			printf("# %-42s %-8s A killed at %lu of its %lu points and %u times at random: tables %llu/%llu; %lu "
			       "left IOVA taken, %lu left pages mapped, %lu lived; %lds\n",
			       g_races[id].name, mode_name[mode], tried, p, nr,
			       (unsigned long long)g_race_ref[id][mode].mid, (unsigned long long)g_race_ref[id][mode].end,
			       t.leaked - before.leaked, t.still - before.still, lived_early, (long)(time(NULL) - t0));
		}
	printf("# racing maps: %lu runs, %lu deaths; %lu left an IOVA range taken (%llu KiB), %lu refused the "
	       "survivor's map there\n",
	       t.runs, t.deaths, t.leaked, (unsigned long long)(t.leaked_bytes >> 10), t.refused);
	CHECK(t.runs > 0);
}

/* ---------------------------------------------------------------- 3: random kills */

/*
 * Rounds in the small window loop over every plan below it; every fourth
 * round, in the 512 GiB window, over every plan (a run there costs more).
 */
TEST(random_kills)
{
	unsigned rounds = (unsigned)env_u64("A28_ROUNDS", TEST_ASAN || TEST_TSAN ? 3 : 6);
	const struct plan *pl[2][NPLANS];
	unsigned loop[2][NPLANS], nloop[2] = { 0, 0 };
	uint64_t seed = g_seed | 1;
	struct tally t;
	time_t t0 = time(NULL);
	uint64_t helper_ops = 0;
	bool gig = !g_nogig && getenv("A28_LOOP_GIG"); /* 1 GiB plans: a round costs seconds to check */

	memset(&t, 0, sizeof(t));
	for (int id = 0; id < NPLANS; id++)
		for (int big = 0; big < 2; big++)
			if ((gig || !g_plans[id].gig) && (big || !plan_big(&g_plans[id])) && !g_plans[id].pool) {
				loop[big][nloop[big]] = (unsigned)id;
				pl[big][nloop[big]++] = &g_plans[id];
			}
	for (int mode = 0; mode < NMODES; mode++) {
		struct ref ref[2];
		struct rig g, *gp;
		char at[200];
		int last_big = -1;

		memset(ref, 0, sizeof(ref));
		for (unsigned r = 0; r < rounds; r++) {
			uint64_t x = test_rand(&seed), hn = 0;
			unsigned us = (unsigned)(x % 30000), us2 = (unsigned)((x >> 20) % 2000);
			int big = r % 4 == 3;
			struct child l, h;
			struct outcome o;

			if (!ref[big].set) { /* the reference: nobody ran; the survivor's own round of every plan */
				snprintf(at, sizeof(at), "random: %s, %s window, the clean run", mode_name[mode],
					 big ? "512G" : "small");
				CHECK(rig_up(&g, mode, gig, "a28-rnd", pl[big], nloop[big]));
				(void)verify(&g, mode, &ref[big], at);
				rig_down(&g, at);
			}
			snprintf(at, sizeof(at), "random: %s, round %u (A28_SEED=%#llx, %s window), killed after %u us",
				 mode_name[mode], r, (unsigned long long)g_seed, big ? "512G" : "small", us);
			if (big != last_big) {
				struct outcome none = { 0, 0, 0 };

				rig_put(&none, true, at);
				last_big = big;
			}
			gp = rig_get(mode, gig, "a28-rnd", pl[big], nloop[big]);
			g_mode = mode;
			memcpy(g_loop, loop[big], sizeof(g_loop));
			g_nloop = nloop[big];
			g_seed ^= x;
			l = child_start(looper, NULL);
			g_seed ^= x;
			h = child_start(helper, NULL);
			CHECK_EQ(get64(l.rd), 1);
			CHECK_EQ(get64(h.rd), 1);
			put64(l.wr, 1);
			put64(h.wr, 1);
			usleep(us);
			child_kill(&l);
			usleep(us2);
			put64(h.wr, 2);
			CHECK_MSG(get64_within(&h, &hn, 60000), "%s: the helper hung", at);
			child_ok(&h);
			helper_ops += hn;
			wait_procs(gp, 1);
			o = verify(gp, mode, &ref[big], at);
			tally_add(&t, &o, true);
			rig_put(&o, r + 1 == rounds, at);
		}
	}
	printf("# random kills: %lu rounds (%u plans looped, %u in the 512G window%s; the helper's unmaps %llu): %lu "
	       "left an IOVA range taken (%llu KiB), %lu refused the survivor's map there, %lu left "
	       "pages mapped; %lds\n",
	       t.runs, nloop[0], nloop[1], gig ? "" : ", no 1 GiB ones (A28_LOOP_GIG=1)", (unsigned long long)helper_ops, t.leaked,
	       (unsigned long long)(t.leaked_bytes >> 10), t.refused, t.still, (long)(time(NULL) - t0));
	CHECK(t.runs > 0);
}

/* ---------------------------------------------------------------- main */

static void hung(int sig)
{
	static const char msg[] = "FAIL: the watchdog fired: a call hung (see the last 'ok' above)\n";

	(void)sig;
	if (write(2, msg, sizeof(msg) - 1) < 0)
		_exit(2);
	_exit(3);
}

static bool want(const char *name)
{
	const char *v = getenv("A28_CASES");

	return !v || strstr(v, name);
}

int main(void)
{
	struct rig g;
	const struct plan *none[1];

	test_init();
	signal(SIGALRM, hung);
	alarm((unsigned)env_u64("A28_WATCHDOG", 290));
	g_seed = env_u64("A28_SEED", (uint64_t)time(NULL));
	printf("# A28_SEED=%#llx\n", (unsigned long long)g_seed);
	build_plans();
	(void)none;
	if (getenv("A28_ONLY")) { /* A28_ONLY=plan,mode,point: that run alone, after the clean one */
		int id = 0, mode = 0;
		unsigned long n = 0, p = 0;
		struct tally t;

		memset(&t, 0, sizeof(t));
		CHECK(sscanf(getenv("A28_ONLY"), "%d,%d,%lu", &id, &mode, &n) == 3);
		CHECK(one_point(id, mode, ULONG_MAX / 2, &p, &t));
		printf("# %s, %s: %lu points; at %lu: lived %d\n", g_plans[id].name, mode_name[mode], p, n,
		       one_point(id, mode, n, &p, &t));
		return 0;
	}
	if (!rig_up(&g, M_STRICT, true, "a28-gig", none, 0)) {
		g_nogig = true;
		printf("# a 3 GiB heap (address space) cannot be had: the 1 GiB leaf plans are skipped\n");
	} else {
		rig_down(&g, "gig");
	}
#ifdef IOVM_DEBUG_CHECKS
	if (want("walk"))
		RUN(crash_point_walks);
#else
	printf("# crash points exist only in builds with debug checks: the crash-point walks are skipped\n");
	(void)run_crash_point_walks; /* compiled all the same */
#endif
	if (want("race"))
		RUN(racing_maps);
	if (want("random"))
		RUN(random_kills);
	if (g_oracle_bad)
		printf("# %lu runs counted oracle violations (A28_ORACLE=0 let them pass)\n", g_oracle_bad);
	return 0;
}
