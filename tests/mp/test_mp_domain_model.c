/* SPDX-License-Identifier: MIT */
/*
 * test_mp_domain_model.c - a shared domain against a plain model: random
 * allocations, frees, maps (chosen and fixed IOVAs), unmaps (whole, part,
 * over holes), flushes and translations, each from one of three processes
 * with the domain open, checked after every step against what a model of
 * the IO address space and of the heap says:
 *
 * - a map at a chosen IOVA lands in the window, on no mapped page, at the
 *   lowest gap that fits (first fit); one at a fixed IOVA succeeds exactly
 *   when no page of it is taken (mapped, or queued by a deferred unmap:
 *   the mapping process flushes its own queue first);
 * - an unmap says -ENOENT exactly when nothing of its range is mapped;
 * - every process translates every IOVA looked at as the model maps it;
 * - the domain's IOVA and 4 KiB leaf counts are the model's, in every view;
 * - memory freed while mapped is held (iovm_share_info().domain_held), no
 *   allocation gets it or any live block, and it is free again once the
 *   last mapping of its pages is unmapped (and, deferred, flushed).
 *
 * Strict, then deferred. IOVM_MP_SEED and IOVM_MP_MODEL_STEPS change the run.
 */
#include <stdlib.h>

#include "mp_util.h"

#define HEAP (UINT64_C(32) << 20)
#define NPROC 3
#define MAXBLK 48
#define WIN_BASE (UINT64_C(4) << 30)
#define WIN_PAGES 256 /* the window, in 4 KiB pages: small, so that it fills */
#define PG 4096u

enum cmd { C_ALLOC = 1, C_FREE, C_MAP, C_UNMAP, C_FLUSH, C_XLATE, C_STATS, C_END };

static const char *g_share;
static bool g_deferred;

/* ---- the processes ---- */

static void proc_main(int rd, int wr, void *arg)
{
	struct iovm_ctx *ctx = attach_ok(g_share);
	struct iovm_domain *dom;
	void *blk[MAXBLK] = { NULL };

	if ((uintptr_t)arg == 0) {
		struct iovm_share_domain_params p = { .iova_size = (uint64_t)WIN_PAGES * PG,
						      .flags = g_deferred ? IOVM_DOMAIN_DEFERRED : 0,
						      /* Flushed when the model says only: no batch fills, no timeout runs out. */
						      .flush_batch = 65536,
						      .flush_timeout_us = UINT32_MAX };

		CHECK_OK(iovm_share_domain_create(ctx, "model", &p, &dom));
	} else {
		CHECK_OK(iovm_share_domain_open(ctx, "model", &dom));
	}
	put64(wr, 1);
	for (;;) {
		uint64_t op = get64(rd), a = get64(rd), b = get64(rd), c = get64(rd);
		int64_t ret = 0;
		uint64_t out = 0;

		switch (op) {
		case C_ALLOC: {
			struct iovm_dma_xlate x;

			blk[a] = iovm_dma_alloc(ctx, b, b, 0);
			ret = blk[a] ? iovm_dma_xlate(ctx, blk[a], &x) : -ENOMEM;
			out = ret ? 0 : x.pa.addr;
			break;
		}
		case C_FREE:
			ret = iovm_dma_free(ctx, blk[a]);
			blk[a] = NULL;
			break;
		case C_MAP: {
			iovm_iova_t iova = c ? IOVM_IOVA(c) : IOVM_IOVA_ANY;

			ret = iovm_domain_map(dom, &iova, IOVM_PA(a), b, IOVM_MAP_READ | IOVM_MAP_WRITE);
			out = ret ? 0 : iova.addr;
			break;
		}
		case C_UNMAP:
			ret = iovm_domain_unmap(dom, IOVM_IOVA(a), b);
			break;
		case C_FLUSH:
			ret = iovm_domain_flush(dom);
			break;
		case C_XLATE: {
			iovm_pa_t pa;

			ret = iovm_domain_translate(dom, IOVM_IOVA(a), &pa, NULL);
			out = ret ? 0 : pa.addr;
			break;
		}
		case C_STATS: {
			struct iovm_domain_stats st;

			CHECK_OK(iovm_domain_stats(dom, &st));
			put64(wr, st.iova_allocated);
			put64(wr, st.leaves_4k);
			put64(wr, share_info(ctx).domain_held);
			continue;
		}
		default:
			CHECK_OK(iovm_domain_flush(dom));
			CHECK_OK(iovm_domain_destroy(dom));
			CHECK_OK(iovm_close(ctx));
			put64(wr, 1);
			return;
		}
		put64(wr, (uint64_t)ret);
		put64(wr, out);
	}
}

static struct child g_proc[NPROC];

static int64_t ask(unsigned p, enum cmd op, uint64_t a, uint64_t b, uint64_t c, uint64_t *out)
{
	int64_t ret;

	put64(g_proc[p].wr, op);
	put64(g_proc[p].wr, a);
	put64(g_proc[p].wr, b);
	put64(g_proc[p].wr, c);
	ret = (int64_t)get64(g_proc[p].rd);
	*out = get64(g_proc[p].rd);
	return ret;
}

/* ---- the model ---- */

enum pstate { P_FREE = 0, P_MAPPED, P_PENDING }; /* pending: a deferred unmap, until its process flushes */

static struct {
	uint8_t state[WIN_PAGES];
	uint8_t pender[WIN_PAGES];     /* the process whose queue holds it */
	uint64_t pa[WIN_PAGES];
} io;

enum bstate { B_NONE = 0, B_LIVE, B_HELD };

static struct blk {
	enum bstate state;
	unsigned owner;  /* the process that allocated it, its slot there is the index */
	uint64_t pa, len;
} bl[MAXBLK];

static uint64_t seed;

/* What the run met: none of it may stay at 0, or the run proved little. */
static struct {
	unsigned maps, fixed_taken, nospace, unmaps, unmaps_none, held_frees, flushes;
} seen;

static uint64_t rnd(uint64_t n)
{
	seed ^= seed << 13;
	seed ^= seed >> 7;
	seed ^= seed << 17;
	return seed % n;
}

/* IOVA pages, mapped or queued, that name the 4 KiB at @pa. */
static unsigned pa_refs(uint64_t pa)
{
	unsigned n = 0;

	for (unsigned i = 0; i < WIN_PAGES; i++)
		n += io.state[i] != P_FREE && io.pa[i] == pa;
	return n;
}

/* Held blocks whose pages nothing names any more are free. */
static void held_settle(void)
{
	for (unsigned b = 0; b < MAXBLK; b++) {
		bool named = false;

		if (bl[b].state != B_HELD)
			continue;
		for (uint64_t off = 0; off < bl[b].len && !named; off += PG)
			named = pa_refs(bl[b].pa + off) > 0;
		if (!named)
			bl[b].state = B_NONE;
	}
}

static uint64_t held_bytes(void)
{
	uint64_t n = 0;

	for (unsigned b = 0; b < MAXBLK; b++)
		n += bl[b].state == B_HELD ? bl[b].len : 0;
	return n;
}

/* ---- the steps ---- */

static void step_alloc(void)
{
	unsigned b = (unsigned)rnd(MAXBLK), p = (unsigned)rnd(NPROC);
	uint64_t len = (uint64_t)PG << rnd(7), pa;
	int64_t ret;

	if (bl[b].state != B_NONE)
		return;
	ret = ask(p, C_ALLOC, b, len, 0, &pa);
	if (ret == -ENOMEM)
		return;
	CHECK_EQ(ret, 0);
	/* Never on memory a domain maps, or a deferred unmap has not flushed yet. */
	for (unsigned i = 0; i < WIN_PAGES; i++)
		if (io.state[i] != P_FREE)
			CHECK_MSG(io.pa[i] < pa || io.pa[i] >= pa + len, "block %u at %#llx is %s at page %u", b,
				  (unsigned long long)pa, io.state[i] == P_MAPPED ? "mapped" : "queued", i);
	/* Nor on a live block, nor on one freed while mapped. */
	for (unsigned o = 0; o < MAXBLK; o++)
		if (bl[o].state != B_NONE)
			CHECK_MSG(pa + len <= bl[o].pa || bl[o].pa + bl[o].len <= pa,
				  "block %u at %#llx overlaps block %u (%s)", b, (unsigned long long)pa, o,
				  bl[o].state == B_HELD ? "held" : "live");
	bl[b] = (struct blk){ B_LIVE, p, pa, len };
}

static void step_free(void)
{
	unsigned b = (unsigned)rnd(MAXBLK);
	uint64_t out;

	if (bl[b].state != B_LIVE)
		return;
	CHECK_EQ(ask(bl[b].owner, C_FREE, b, 0, 0, &out), 0);
	bl[b].state = B_HELD; /* until no page of it is named: */
	held_settle();
	seen.held_frees += bl[b].state == B_HELD;
}

static void flush_model(unsigned p)
{
	for (unsigned i = 0; i < WIN_PAGES; i++)
		if (io.state[i] == P_PENDING && io.pender[i] == p)
			io.state[i] = P_FREE;
	held_settle();
}

/*
 * The lowest run of @n free pages (none pending) starting at a multiple of
 * @a pages, or -1. A chosen IOVA is as aligned as the PA and the length
 * allow (the largest power of two of both), so that huge leaves can map
 * what could be; the window's base is 1 GiB aligned.
 */
static int first_fit(unsigned n, unsigned a)
{
	for (unsigned at = 0; at + n <= WIN_PAGES; at += a) {
		unsigned i = at;

		while (i < at + n && io.state[i] == P_FREE)
			i++;
		if (i == at + n)
			return (int)at;
	}
	return -1;
}

/* The alignment, in pages, of a chosen IOVA for @n pages at @pa. */
static unsigned iova_align_pages(uint64_t pa, unsigned n)
{
	unsigned a = 1;

	while ((pa / PG) % (a * 2) == 0 && n >= a * 2)
		a *= 2;
	return a;
}

static void step_map(void)
{
	unsigned b = (unsigned)rnd(MAXBLK), p = (unsigned)rnd(NPROC), n, at = 0;
	bool fixed = rnd(3) == 0, busy = false;
	uint64_t off, iova, got;
	int64_t ret;

	if (bl[b].state != B_LIVE)
		return;
	n = (unsigned)(1 + rnd(bl[b].len / PG));
	off = rnd(bl[b].len / PG - n + 1) * PG;
	if (fixed) {
		at = (unsigned)rnd(WIN_PAGES - n + 1);
		for (unsigned i = at; i < at + n; i++)
			busy |= io.state[i] != P_FREE;
	}
	iova = fixed ? WIN_BASE + (uint64_t)at * PG : 0;
	ret = ask(p, C_MAP, bl[b].pa + off, (uint64_t)n * PG, iova, &got);
	if (fixed) {
		/*
		 * Taken: deferred, the mapping process flushes its own queue
		 * (what it unmapped there may be what is in the way) and tries
		 * again; another's queue, or a mapping, is in the way still.
		 */
		if (busy && g_deferred)
			flush_model(p);
		busy = false;
		for (unsigned i = at; i < at + n; i++)
			busy |= io.state[i] != P_FREE;
		CHECK_MSG(ret == (busy ? -EEXIST : 0), "map at page %u+%u (%s): %lld", at, n, busy ? "taken" : "free",
			  (long long)ret);
		seen.fixed_taken += busy;
	} else {
		int ff = first_fit(n, iova_align_pages(bl[b].pa + off, n));

		if (ret == -ENOSPC) {
			/* Queued pages may be what is in the way: only then may a fit be missed. */
			CHECK_MSG(ff < 0, "no IOVA for %u pages, the model has a gap at %d", n, ff);
			seen.nospace++;
			return;
		}
		CHECK_MSG(ret == 0, "map of %u pages: %lld", n, (long long)ret);
		CHECK(got >= WIN_BASE && (got - WIN_BASE) % PG == 0 && (got - WIN_BASE) / PG + n <= WIN_PAGES);
		at = (unsigned)((got - WIN_BASE) / PG);
		/* First fit: nothing free lower down would have held it. */
		CHECK_MSG((int)at == ff, "map of %u pages at page %u, first fit is %d", n, at, ff);
	}
	if (ret)
		return;
	seen.maps++;
	for (unsigned i = 0; i < n; i++) {
		CHECK_MSG(io.state[at + i] != P_MAPPED, "page %u mapped twice", at + i);
		io.state[at + i] = P_MAPPED;
		io.pa[at + i] = bl[b].pa + off + (uint64_t)i * PG;
	}
}

static void step_unmap(void)
{
	unsigned p = (unsigned)rnd(NPROC), at, n;
	bool any = false;
	uint64_t out;
	int64_t ret;

	/* Mostly where something is mapped: a page of the model's, and a run around it. */
	at = (unsigned)rnd(WIN_PAGES);
	if (rnd(8))
		for (unsigned k = 0; k < WIN_PAGES && io.state[at] != P_MAPPED; k++)
			at = (at + 1) % WIN_PAGES;
	n = (unsigned)(1 + rnd(64));
	if (at + n > WIN_PAGES)
		n = WIN_PAGES - at;
	for (unsigned i = at; i < at + n; i++)
		any |= io.state[i] == P_MAPPED;
	ret = ask(p, C_UNMAP, WIN_BASE + (uint64_t)at * PG, (uint64_t)n * PG, 0, &out);
	CHECK_MSG(ret == (any ? 0 : -ENOENT), "unmap of pages %u+%u (%s mapped): %lld", at, n, any ? "some" : "none",
		  (long long)ret);
	seen.unmaps += any;
	seen.unmaps_none += !any;
	for (unsigned i = at; i < at + n; i++)
		if (io.state[i] == P_MAPPED) {
			io.state[i] = g_deferred ? P_PENDING : P_FREE;
			io.pender[i] = (uint8_t)p;
		}
	held_settle();
}

static void step_flush(void)
{
	unsigned p = (unsigned)rnd(NPROC);
	uint64_t out;

	CHECK_EQ(ask(p, C_FLUSH, 0, 0, 0, &out), 0);
	flush_model(p);
	seen.flushes++;
}

static void check_all(void)
{
	uint64_t mapped = 0, pending = 0;

	for (unsigned i = 0; i < WIN_PAGES; i++) {
		mapped += io.state[i] == P_MAPPED;
		pending += io.state[i] == P_PENDING;
	}
	for (unsigned p = 0; p < NPROC; p++) {
		uint64_t allocated, leaves, held;

		put64(g_proc[p].wr, C_STATS);
		for (int k = 0; k < 3; k++)
			put64(g_proc[p].wr, 0);
		allocated = get64(g_proc[p].rd);
		leaves = get64(g_proc[p].rd);
		held = get64(g_proc[p].rd);
		CHECK_MSG(leaves == mapped, "process %u counts %llu leaves, the model %llu", p,
			  (unsigned long long)leaves, (unsigned long long)mapped);
		/* Pages a deferred unmap queued stay taken until their process flushes. */
		CHECK_MSG(allocated == (mapped + pending) * PG,
			  "process %u: %llu IOVA bytes taken, the model %llu mapped and %llu queued", p,
			  (unsigned long long)allocated, (unsigned long long)(mapped * PG), (unsigned long long)(pending * PG));
		CHECK_MSG(held == held_bytes(), "process %u: %llu bytes held, the model %llu", p,
				  (unsigned long long)held, (unsigned long long)held_bytes());
	}
	/* Every process translates a few pages, mapped or not, as the model does. */
	for (int k = 0; k < 8; k++) {
		unsigned i = (unsigned)rnd(WIN_PAGES), p = (unsigned)rnd(NPROC);
		uint64_t pa;
		int64_t ret = ask(p, C_XLATE, WIN_BASE + (uint64_t)i * PG + rnd(PG), 0, 0, &pa);

		if (io.state[i] == P_MAPPED) {
			CHECK_MSG(ret == 0, "process %u: page %u unmapped, the model maps it", p, i);
			CHECK_MSG(align_down(pa, PG) == io.pa[i], "process %u: page %u at %#llx, the model %#llx", p, i,
				  (unsigned long long)pa, (unsigned long long)io.pa[i]);
		} else {
			CHECK_MSG(ret == -ENOENT, "process %u: page %u translates (%lld), the model has it unmapped", p, i,
				  (long long)ret);
		}
	}
}

static void run_model(bool deferred, unsigned steps)
{
	struct iovm_ctx *owner;
	uint64_t out;

	g_deferred = deferred;
	g_share = share_name(deferred ? "model-def" : "model-strict");
	owner = share_ok(g_share, HEAP);
	memset(&io, 0, sizeof(io));
	memset(bl, 0, sizeof(bl));
	memset(&seen, 0, sizeof(seen));
	for (unsigned p = 0; p < NPROC; p++) {
		g_proc[p] = child_start(proc_main, (void *)(uintptr_t)p);
		CHECK_EQ(get64(g_proc[p].rd), 1);
	}
	for (unsigned s = 0; s < steps; s++) {
		switch (rnd(16)) {
		case 0 ... 2: step_alloc(); break;
		case 3 ... 4: step_free(); break;
		case 5 ... 9: step_map(); break;
		case 10 ... 13: step_unmap(); break;
		case 14: step_flush(); break;
		default: break;
		}
		if (s % 8 == 7)
			check_all();
	}
	/* Everything unmapped and flushed: nothing held, nothing taken. */
	for (unsigned p = 0; p < NPROC; p++) {
		CHECK(ask(p, C_UNMAP, WIN_BASE, (uint64_t)WIN_PAGES * PG, 0, &out) <= 0);
		for (unsigned i = 0; i < WIN_PAGES; i++)
			if (io.state[i] == P_MAPPED) {
				io.state[i] = deferred ? P_PENDING : P_FREE;
				io.pender[i] = (uint8_t)p;
			}
		CHECK_EQ(ask(p, C_FLUSH, 0, 0, 0, &out), 0);
		flush_model(p);
	}
	for (unsigned p = 0; p < NPROC; p++)
		flush_model(p);
	check_all();
	CHECK_EQ(held_bytes(), 0);
	for (unsigned p = 0; p < NPROC; p++) {
		put64(g_proc[p].wr, C_END);
		for (int k = 0; k < 3; k++)
			put64(g_proc[p].wr, 0);
		CHECK_EQ(get64(g_proc[p].rd), 1);
		child_ok(&g_proc[p]);
	}
	CHECK_EQ(share_info(owner).domain_held, 0);
	CHECK_OK(iovm_close(owner));
	printf("# %s: %u maps, %u fixed over taken pages, %u without room, %u unmaps (%u over nothing), "
	       "%u frees of mapped memory, %u flushes\n", deferred ? "deferred" : "strict", seen.maps, seen.fixed_taken,
	       seen.nospace, seen.unmaps, seen.unmaps_none, seen.held_frees, seen.flushes);
	CHECK(seen.maps && seen.fixed_taken && seen.unmaps && seen.unmaps_none && seen.held_frees && seen.flushes);
}

static unsigned model_steps(void)
{
	const char *e = getenv("IOVM_MP_MODEL_STEPS");

	return e ? (unsigned)atoi(e) : TEST_ASAN || TEST_TSAN ? 1500 : 6000;
}

TEST(strict_against_the_model)
{
	seed = getenv("IOVM_MP_SEED") ? strtoull(getenv("IOVM_MP_SEED"), NULL, 0) : 0x5d0e1;
	printf("# seed %#llx, %u steps\n", (unsigned long long)seed, model_steps());
	run_model(false, model_steps());
}

TEST(deferred_against_the_model)
{
	seed = (getenv("IOVM_MP_SEED") ? strtoull(getenv("IOVM_MP_SEED"), NULL, 0) : 0x5d0e1) ^ 0xdef;
	run_model(true, model_steps());
}

int main(void)
{
	test_init();
	RUN(strict_against_the_model);
	RUN(deferred_against_the_model);
	return 0;
}
