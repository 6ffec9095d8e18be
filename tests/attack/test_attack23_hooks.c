/* SPDX-License-Identifier: MIT */
/*
 * test_attack23_hooks.c - libc's hooked madvise(), mremap(), mmap(MAP_FIXED),
 * munmap() and sbrk() (iovm/reg.h, docs/guarantees.md) attacked where the
 * kernel does part of a call and then fails: a madvise() over a hole (the
 * kernel goes on past it, then says ENOMEM), a madvise() that stops at a
 * locked mapping after discarding the ones before, an mremap(MREMAP_FIXED)
 * that unmaps its destination and then finds its source bad, a move of
 * several mappings with a gap; MREMAP_DONTUNMAP; edges, zero and
 * overflowing lengths; the registration cache after each; threads, a
 * signal handler, fork() and a context closed under the calls.
 *
 * Every page of a pinned registration is filled with words naming it: a
 * device read of it that succeeds must bring exactly those words, so a
 * registration left valid over replaced memory shows. Written from the
 * public headers; which path saw a change is told by the hooks' counter,
 * as tests/reg/test_hooks.c tells it.
 *
 * Found, and fixed the same day (2026-12-06):
 *  - madvise(MADV_DONTNEED) over [pinned MR the application munlock()ed]
 *    [locked pinned MR] discards the first and is refused at the second:
 *    the first MR stayed valid, and the device reached the new pages
 *    (madvise_of_unlocked_pinned_memory);
 *  - a brk() below the heap's start, which the kernel ignores, invalidated
 *    registrations of the heap it left as they were (sbrk_unaligned_shrink).
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "attack/attack17.h"
#include "base/ctx.h"
#include "reg/reg_internal.h"

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif
#ifndef MADV_DONTNEED_LOCKED
#define MADV_DONTNEED_LOCKED 24
#endif

static struct rig R;
static uint8_t *H; /* DMA memory the device reads into */
static uint64_t HI;

static void open_all(void)
{
	rig_open(&R, REG_OPTS ",log_level=error", NULL, IOVM_QUEUE_POLLED);
	H = iovm_dma_alloc(R.ctx, 16 * PG, PG, 0);
	CHECK(H != NULL);
	HI = iova_of(&R, H);
}

static void close_all(void)
{
	iovm_dma_free(R.ctx, H);
	rig_close(&R);
}

static uint64_t hooked(void)
{
	return monitor_hooked(R.ctx->reg->mon);
}

/* ---- registrations whose pages name themselves ---- */

struct reg {
	uint8_t *p;
	unsigned n;
	unsigned tag;
	bool odp;
	struct iovm_mr *mr;
	uint64_t iova;
};

static uint64_t word(unsigned tag, unsigned page, unsigned i)
{
	return 0x8000000000000000ull | ((uint64_t)tag << 40) | ((uint64_t)page << 20) | i;
}

static void pat(uint8_t *p, unsigned tag, unsigned page)
{
	uint64_t *w = (uint64_t *)p;

	for (unsigned i = 0; i < PG / 8; i++)
		w[i] = word(tag, page, i);
}

static bool is_pat(const uint8_t *p, unsigned tag, unsigned page)
{
	const uint64_t *w = (const uint64_t *)p;

	for (unsigned i = 0; i < PG / 8; i++)
		if (w[i] != word(tag, page, i))
			return false;
	return true;
}

static void reg_on(struct reg *g, uint8_t *p, unsigned n, unsigned tag, bool odp)
{
	g->p = p;
	g->n = n;
	g->tag = tag;
	g->odp = odp;
	for (unsigned i = 0; i < n; i++)
		pat(p + (size_t)i * PG, tag, i);
	CHECK_OK(iovm_mr_reg(R.dom, p, (size_t)n * PG,
			     IOVM_ACCESS_LOCAL_WRITE | (odp ? IOVM_ACCESS_ON_DEMAND : 0), &g->mr));
	g->iova = mr_iova(g->mr, p);
	if (odp) /* faulted in by the device: its pages are the MR's */
		for (unsigned i = 0; i < n; i++)
			CHECK_EQ(dma_copy(&R, g->iova + (uint64_t)i * PG, HI, PG), IOVM_STATUS_SUCCESS);
}

static void reg_off(struct reg *g)
{
	CHECK_OK(iovm_mr_dereg(g->mr));
}

/*
 * Page @i of @g read by the device: true when reached. A pinned MR that
 * reaches its page must bring the page's own words (anything else is the
 * memory that replaced it); @what names the step.
 */
static bool rd(struct reg *g, unsigned i, const char *what)
{
	uint8_t st;

	memset(H, 0x5a, PG);
	st = dma_copy(&R, g->iova + (uint64_t)i * PG, HI, PG);
	if (st == IOVM_STATUS_PAGE_FAULT) {
		CHECK(H[0] == 0x5a && H[PG - 1] == 0x5a);
		return false;
	}
	CHECK_MSG(st == IOVM_STATUS_SUCCESS, "%s: MR %u page %u: status %u", what, g->tag, i, st);
	if (!g->odp)
		CHECK_MSG(is_pat(H, g->tag, i),
			  "%s: MR %u page %u reached, but not its memory (word 0 %#llx): stale registration", what,
			  g->tag, i, (unsigned long long)*(uint64_t *)H);
	return true;
}

/*
 * Page requests a device read of [first, first+n) of on-demand @iova's
 * pages makes now: none where its translations are still there, some
 * where they were invalidated.
 */
static uint64_t refaults(uint64_t iova, unsigned first, unsigned n)
{
	uint64_t f = rstats(&R).odp_faults;

	CHECK_EQ(dma_copy(&R, iova + (uint64_t)first * PG, HI, n * PG), IOVM_STATUS_SUCCESS);
	return rstats(&R).odp_faults - f;
}

/* Fill every hole of [p, p+n pages) with new memory (0xa5), so that a stale registration would reach something. */
static void fill_holes(uint8_t *p, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uint8_t *a = p + (size_t)i * PG;
		uint8_t *q = mmap(a, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

		if (q == a)
			memset(q, 0xa5, PG);
		else if (q != MAP_FAILED)
			munmap(q, PG);
	}
}

/* Every page of pinned @g: reached with its own words or not at all; @want_valid: -1 any, 0 none, 1 all. */
static unsigned sweep(struct reg *g, int want_valid, const char *what)
{
	unsigned n = 0;

	fill_holes(g->p, g->n);
	for (unsigned i = 0; i < g->n; i++) {
		bool r = rd(g, i, what);

		n += r;
		if (want_valid == 0)
			CHECK_MSG(!r, "%s: MR %u page %u still reached", what, g->tag, i);
		if (want_valid == 1)
			CHECK_MSG(r, "%s: MR %u page %u no longer reached", what, g->tag, i);
	}
	return n;
}

/* Page @i of pinned @g, still valid, is still watched: a raw munmap() of it is seen. */
static void still_watched(struct reg *g, unsigned i, const char *what)
{
	uint64_t v = mr_info(g->mr).valid_pages;

	CHECK_OK((int)syscall(SYS_munmap, g->p + (size_t)i * PG, (size_t)PG));
	CHECK_MSG(mr_info(g->mr).valid_pages == v - 1, "%s: a raw munmap of MR %u page %u unseen (valid %llu)", what,
		  g->tag, i, (unsigned long long)mr_info(g->mr).valid_pages);
	fill_holes(g->p + (size_t)i * PG, 1);
	CHECK_MSG(!rd(g, i, what), "%s: MR %u page %u reached after a raw munmap", what, g->tag, i);
}

/* n pages of fresh address space, with a free page either side (unmapped). */
static uint8_t *space(unsigned n)
{
	uint8_t *p = app_map((size_t)(n + 2) * PG);

	munmap(p, PG);
	munmap(p + (size_t)(n + 1) * PG, PG);
	return p + PG;
}

#define NEED(bit, name)                                                    \
	do {                                                               \
		if (!(hooks_installed() & (bit)))                          \
			SKIP_CASE("libc's %s() is not hooked here", name); \
	} while (0)

/* ---- madvise ---- */

/*
 * madvise(MADV_DONTNEED_LOCKED) over [pinned A][hole][pinned B]: the kernel
 * discards A and B, skipping the hole, and fails with ENOMEM. Both were
 * discarded: neither may be reached.
 */
TEST(madvise_locked_over_a_hole)
{
	struct reg a, b;
	uint8_t *p;
	uint64_t h;
	int ret;

	NEED(HOOK_MADVISE, "madvise");
	p = space(9);
	munmap(p + 4 * PG, PG);
	reg_on(&a, p, 4, 1, false);
	reg_on(&b, p + 5 * PG, 4, 2, false);
	h = hooked();
	errno = 0;
	ret = madvise(p, 9 * PG, MADV_DONTNEED_LOCKED);
	CHECK_EQ(ret, -1);
	CHECK_EQ(errno, ENOMEM);
	CHECK(hooked() > h);
	/* The kernel did discard both: the pages are zero now. */
	CHECK(p[0] == 0 && p[5 * PG] == 0);
	sweep(&a, 0, "DONTNEED_LOCKED before the hole");
	sweep(&b, 0, "DONTNEED_LOCKED after the hole");
	reg_off(&a);
	reg_off(&b);
}

/* The same with MADV_DONTNEED over on-demand MRs: B's pages, discarded after the hole, must be invalidated. */
TEST(madvise_odp_over_a_hole)
{
	struct reg a, b;
	uint8_t *p;
	uint64_t h;

	NEED(HOOK_MADVISE, "madvise");
	p = space(9);
	munmap(p + 4 * PG, PG);
	reg_on(&a, p, 4, 3, true);
	reg_on(&b, p + 5 * PG, 4, 4, true);
	/* Control: faulted in, a read makes no page request; after a madvise() that succeeds, it does. */
	CHECK_EQ(refaults(a.iova, 0, 4), 0);
	CHECK_OK(madvise(p, 4 * PG, MADV_DONTNEED));
	CHECK(refaults(a.iova, 0, 4) > 0);
	CHECK_EQ(refaults(a.iova, 0, 4), 0);
	h = hooked();
	CHECK_EQ(madvise(p, 9 * PG, MADV_DONTNEED), -1);
	CHECK_EQ(errno, ENOMEM);
	CHECK(hooked() > h);
	CHECK(p[5 * PG] == 0);
	CHECK_MSG(refaults(a.iova, 0, 4) > 0, "A (before the hole) discarded, its translations kept");
	CHECK_MSG(refaults(b.iova, 0, 4) > 0, "B (after the hole) discarded by a madvise() that failed, its "
					       "translations kept: stale");
	no_violations(R.dom);
	reg_off(&a);
	reg_off(&b);
}

/*
 * One mapping split in two by a pinned MR's lock: [on-demand][locked] and
 * [locked][on-demand]. The kernel discards until the locked one. Pinned
 * pages stay valid, reached with their words, and watched; on-demand pages
 * discarded before the refusal are invalidated.
 */
static void mixed(bool odp_first)
{
	struct reg o, k, span;
	uint8_t *p = space(8);
	uint8_t *po = odp_first ? p : p + 4 * PG, *pk = odp_first ? p + 4 * PG : p;
	uint64_t h;
	const char *what = odp_first ? "odp then locked" : "locked then odp";

	reg_on(&o, po, 4, 10, true);
	reg_on(&k, pk, 4, 11, false);
	/* An on-demand MR over the whole range too, faulted in. */
	CHECK_OK(iovm_mr_reg(R.dom, p, 8 * PG, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND, &span.mr));
	span.iova = mr_iova(span.mr, p);
	CHECK_EQ(dma_copy(&R, span.iova, HI, 8 * PG), IOVM_STATUS_SUCCESS);
	CHECK_EQ(refaults(o.iova, 0, 4), 0);
	CHECK_EQ(refaults(span.iova, 0, 8), 0);
	h = hooked();
	errno = 0;
	CHECK_EQ(madvise(p, 8 * PG, MADV_DONTNEED), -1);
	CHECK_EQ(errno, EINVAL);
	CHECK(hooked() > h);
	CHECK(page_locked(pk));
	/* The pinned MR: every page valid, reached with its own words. */
	CHECK_MSG(mr_info(k.mr).valid_pages == 4, "%s: pinned MR lost %llu pages", what,
		  4 - (unsigned long long)mr_info(k.mr).valid_pages);
	sweep(&k, 1, what);
	if (odp_first) {
		/* Discarded before the refusal: zero now, and invalidated in both on-demand MRs. */
		CHECK(po[0] == 0);
		CHECK_MSG(refaults(o.iova, 0, 4) > 0, "%s: discarded on-demand pages kept their translations", what);
		CHECK_MSG(refaults(span.iova, 0, 4) > 0,
			  "%s: discarded pages of the spanning on-demand MR kept their translations", what);
		CHECK_EQ(dma_copy(&R, o.iova, HI, 4 * PG), IOVM_STATUS_SUCCESS);
		CHECK(a17_all(H, 0, 4 * PG));
	} else {
		CHECK(is_pat(po, 10, 0)); /* nothing discarded */
	}
	/* Still watched: raw munmaps of a pinned page and an on-demand page. */
	still_watched(&k, 2, what);
	(void)refaults(o.iova, 0, 4); /* faulted in again (a refused call may invalidate more than it must) */
	CHECK_EQ(refaults(o.iova, 1, 1), 0);
	CHECK_OK((int)syscall(SYS_munmap, po + PG, (size_t)PG));
	fill_holes(po, 4);
	(void)mr_info(o.mr); /* waits for the monitor */
	CHECK_MSG(refaults(o.iova, 1, 1) > 0, "%s: raw munmap of an on-demand page unseen", what);
	no_violations(R.dom);
	reg_off(&o);
	reg_off(&k);
	CHECK_OK(iovm_mr_dereg(span.mr));
}

TEST(madvise_odp_then_locked)
{
	NEED(HOOK_MADVISE, "madvise");
	mixed(true);
}

TEST(madvise_locked_then_odp)
{
	NEED(HOOK_MADVISE, "madvise");
	mixed(false);
}

/* Edges: zero length, unaligned start, overflowing length, unaligned length, a range straddling an MR's edge. */
TEST(madvise_edges)
{
	struct reg g;
	uint8_t *p = space(8);
	uint64_t h;

	NEED(HOOK_MADVISE, "madvise");
	reg_on(&g, p + 2 * PG, 4, 20, false); /* pages 2..5 of the mapping */
	CHECK_OK(madvise(p + 2 * PG, 0, MADV_DONTNEED_LOCKED));
	CHECK_EQ(madvise(p + 2 * PG + 1, PG, MADV_DONTNEED_LOCKED), -1);
	CHECK_EQ(madvise(p + 2 * PG, SIZE_MAX - PG, MADV_DONTNEED_LOCKED), -1);
	CHECK_EQ(madvise(p + 2 * PG, (size_t)-(uintptr_t)(p + 2 * PG), MADV_DONTNEED_LOCKED), -1);
	CHECK_EQ(madvise(p + 2 * PG, 4 * PG, MADV_FREE), -1);
	CHECK_EQ(madvise(p + 2 * PG, 4 * PG, MADV_REMOVE), -1);
	CHECK_EQ(mr_info(g.mr).valid_pages, 4);
	sweep(&g, 1, "refused madvise calls");
	/* Pages 0..2 and one byte of 3: the kernel rounds the length up, so 3 goes too. */
	h = hooked();
	CHECK_OK(madvise(p, 3 * PG + 1, MADV_DONTNEED_LOCKED));
	CHECK(hooked() > h);
	CHECK_MSG(mr_info(g.mr).valid_pages == 2, "valid pages %llu, not 2 (pages 2 and 3 discarded)",
		  (unsigned long long)mr_info(g.mr).valid_pages);
	CHECK(!rd(&g, 0, "rounded-up madvise") && !rd(&g, 1, "rounded-up madvise"));
	CHECK(rd(&g, 2, "rounded-up madvise") && rd(&g, 3, "rounded-up madvise"));
	still_watched(&g, 3, "after madvise at the edge");
	reg_off(&g);
}

/* munmap() edges: zero and overflowing lengths refused, an unaligned length rounded up across an MR's edge. */
TEST(munmap_edges)
{
	struct reg a, b;
	uint8_t *p = space(8);
	uint64_t h;

	reg_on(&a, p, 4, 25, false);
	reg_on(&b, p + 4 * PG, 4, 26, false);
	CHECK_EQ(munmap(p, 0), -1);
	CHECK_EQ(munmap(p + 1, PG), -1);
	CHECK_EQ(munmap(p, SIZE_MAX - PG), -1);
	CHECK_EQ(munmap(p + 2 * PG, (size_t)-(uintptr_t)(p + 2 * PG)), -1);
	CHECK_EQ(mr_info(a.mr).valid_pages, 4);
	CHECK_EQ(mr_info(b.mr).valid_pages, 4);
	sweep(&a, 1, "refused munmap");
	sweep(&b, 1, "refused munmap");
	h = hooked();
	/* Pages 3 of A and 0 of B, with a length one byte past a page. */
	CHECK_OK(munmap(p + 3 * PG, PG + 1));
	CHECK(hooked() > h);
	fill_holes(p, 8);
	CHECK(!rd(&a, 3, "munmap across the edge") && !rd(&b, 0, "munmap across the edge"));
	CHECK(rd(&a, 2, "munmap across the edge") && rd(&b, 1, "munmap across the edge"));
	CHECK_EQ(mr_info(a.mr).valid_pages, 3);
	CHECK_EQ(mr_info(b.mr).valid_pages, 3);
	still_watched(&b, 2, "after munmap across the edge");
	reg_off(&a);
	reg_off(&b);
}

/* ---- mremap ---- */

/*
 * mremap(MREMAP_FIXED) onto a registered destination whose source is bad
 * (its range runs past its mapping): Linux unmaps the destination first,
 * then fails with EFAULT. The destination's MR must not reach the hole,
 * nor what is mapped there afterwards.
 */
TEST(mremap_fixed_fails_after_unmapping_destination)
{
	/* old length, new length, flags: the source has one page mapped. */
	static const struct {
		unsigned old_pages, new_pages;
		int flags;
	} v[] = {
		{ 2, 4, MREMAP_MAYMOVE | MREMAP_FIXED },
		{ 2, 2, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP },
		{ 4, 4, MREMAP_MAYMOVE | MREMAP_FIXED },
	};
	unsigned failed_after_unmap = 0;

	NEED(HOOK_MREMAP, "mremap");
	for (unsigned k = 0; k < sizeof(v) / sizeof(v[0]); k++) {
		struct reg d;
		uint8_t *src = space(4), *dst = space(4), *after;
		uint64_t h;
		bool dst_mapped;

		munmap(src + PG, 3 * PG);
		src[0] = 0x77;
		reg_on(&d, dst, 4, 30 + k, false);
		h = hooked();
		errno = 0;
		after = mremap(src, (size_t)v[k].old_pages * PG, (size_t)v[k].new_pages * PG, v[k].flags, dst);
		dst_mapped = mincore(dst + PG, PG, (unsigned char[1]){ 0 }) == 0;
		printf("# variant %u: mremap %s (errno %d), destination page 1 %s\n", k,
		       after == MAP_FAILED ? "failed" : "moved", after == MAP_FAILED ? errno : 0,
		       dst_mapped ? "mapped" : "unmapped");
		if (after == MAP_FAILED && !dst_mapped)
			failed_after_unmap++;
		if (after != MAP_FAILED) {
			CHECK(hooked() > h);
			memset(dst, 0xa5, PG);
			sweep(&d, -1, "mremap moved onto a registered destination");
			for (unsigned i = 0; i < v[k].new_pages; i++)
				CHECK_MSG(!rd(&d, i, "moved onto"), "variant %u: destination page %u still reached", k,
					  i);
		} else {
			sweep(&d, -1, "failed mremap onto a registered destination");
			if (dst_mapped)
				still_watched(&d, 1, "failed mremap onto a registered destination");
		}
		no_violations(R.dom);
		reg_off(&d);
	}
	/* Linux 6.18 checks the source before it unmaps the destination: then no variant fails half-way. */
	printf("# %u variant(s) failed after unmapping the destination\n", failed_after_unmap);
}

/* A successful move onto a registered destination: its MR dies; the source's bytes are never reached through it. */
TEST(mremap_fixed_onto_registered)
{
	struct reg s, d;
	uint8_t *src = space(4), *dst = space(6);
	uint64_t h;

	NEED(HOOK_MREMAP, "mremap");
	reg_on(&s, src, 4, 31, false);
	reg_on(&d, dst, 6, 32, false);
	h = hooked();
	CHECK(mremap(src, 4 * PG, 4 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, dst + PG) == dst + PG);
	CHECK(hooked() > h);
	CHECK(is_pat(dst + PG, 31, 0));
	sweep(&s, 0, "moved source");
	CHECK(rd(&d, 0, "destination's untouched page") && rd(&d, 5, "destination's untouched page"));
	for (unsigned i = 1; i < 5; i++)
		CHECK_MSG(!rd(&d, i, "moved onto"), "destination page %u still reached", i);
	CHECK_EQ(mr_info(d.mr).valid_pages, 2);
	still_watched(&d, 5, "destination's untouched page");
	reg_off(&s);
	reg_off(&d);
}

/*
 * A move of several mappings ([A][B], A and B split by their locks, then
 * [A][gap][B]) onto a registered destination, which Linux 6.17+ allows
 * for a same-size move and may do in part. Whatever it did, no MR may
 * reach other memory.
 */
TEST(mremap_several_mappings)
{
	for (unsigned gap = 0; gap < 2; gap++) {
		struct reg a, b, d, mid;
		uint8_t *src = space(5), *dst = space(5), *r;
		uint64_t h;

		NEED(HOOK_MREMAP, "mremap");
		if (gap)
			munmap(src + 2 * PG, PG);
		reg_on(&a, src, 2, 40 + gap * 3, false);
		reg_on(&b, src + 3 * PG, 2, 41 + gap * 3, false);
		if (!gap)
			reg_on(&mid, src + 2 * PG, 1, 99, false); /* a third mapping between */
		reg_on(&d, dst, 5, 42 + gap * 3, false);
		h = hooked();
		errno = 0;
		r = mremap(src, 5 * PG, 5 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
		printf("# gap %u: mremap %s (errno %d)\n", gap, r == MAP_FAILED ? "failed" : "moved", errno);
		CHECK(hooked() > h);
		sweep(&a, -1, gap ? "multi-mapping move with a gap: A" : "multi-mapping move: A");
		sweep(&b, -1, gap ? "multi-mapping move with a gap: B" : "multi-mapping move: B");
		sweep(&d, -1, gap ? "multi-mapping move with a gap: dst" : "multi-mapping move: dst");
		if (r != MAP_FAILED)
			sweep(&d, 0, "moved onto");
		no_violations(R.dom);
		if (!gap) {
			sweep(&mid, -1, "multi-mapping move: middle");
			reg_off(&mid);
		}
		reg_off(&a);
		reg_off(&b);
		reg_off(&d);
	}
}

/* MREMAP_DONTUNMAP of part of a pinned MR: the moved pages leave it (the source is empty now), the rest stays. */
TEST(mremap_dontunmap)
{
	struct reg g;
	uint8_t *p = space(8), *q;
	uint64_t h;

	NEED(HOOK_MREMAP, "mremap");
	reg_on(&g, p, 8, 50, false);
	h = hooked();
	q = mremap(p + 2 * PG, 2 * PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL);
	CHECK(q != MAP_FAILED);
	CHECK(hooked() > h);
	CHECK(is_pat(q, 50, 2));
	CHECK(p[2 * PG] == 0); /* the source is mapped, empty */
	memset(p + 2 * PG, 0xa5, 2 * PG);
	CHECK_MSG(!rd(&g, 2, "DONTUNMAP") && !rd(&g, 3, "DONTUNMAP"), "moved pages reached through the MR");
	CHECK_MSG(mr_info(g.mr).valid_pages == 6, "valid pages %llu, not 6",
		  (unsigned long long)mr_info(g.mr).valid_pages);
	CHECK(rd(&g, 1, "DONTUNMAP") && rd(&g, 4, "DONTUNMAP"));
	CHECK(page_locked(p + 5 * PG)); /* locked again by the monitor */
	still_watched(&g, 6, "after DONTUNMAP");
	/* The source range (left mapped) is still watched too. */
	CHECK_OK((int)syscall(SYS_munmap, p + 2 * PG, 2 * PG));
	fill_holes(p, 8);
	CHECK(!rd(&g, 2, "DONTUNMAP then raw munmap"));
	reg_off(&g);
	munmap(q, 2 * PG);
}

/* Grown where it lies, grown and moved, and refused calls: each leaves the MR right, and watched. */
TEST(mremap_grow_and_refused)
{
	struct reg g, m;
	uint8_t *p = space(8), *q;
	uint64_t h;

	NEED(HOOK_MREMAP, "mremap");
	reg_on(&g, p, 4, 60, false);
	munmap(p + 4 * PG, 4 * PG);
	/* Refused: unknown flag, zero length, DONTUNMAP of unequal lengths, FIXED without MAYMOVE, overlap. */
	CHECK(mremap(p, 4 * PG, 4 * PG, 0x80) == MAP_FAILED);
	CHECK(mremap(p, 4 * PG, 0, MREMAP_MAYMOVE) == MAP_FAILED);
	CHECK(mremap(p, 4 * PG, 5 * PG, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL) == MAP_FAILED);
	CHECK(mremap(p, 2 * PG, 2 * PG, MREMAP_FIXED, p + 8 * PG) == MAP_FAILED);
	CHECK(mremap(p, 2 * PG, 2 * PG, MREMAP_FIXED | MREMAP_MAYMOVE, p + PG) == MAP_FAILED);
	CHECK(mremap(p, SIZE_MAX & ~(size_t)(PG - 1), PG, MREMAP_MAYMOVE) == MAP_FAILED);
	CHECK_EQ(mr_info(g.mr).valid_pages, 4);
	sweep(&g, 1, "refused mremap calls");
	/* Grown in place: kept. */
	h = hooked();
	q = mremap(p, 4 * PG, 6 * PG, 0);
	CHECK(q == p);
	printf("# grown in place: %llu hooked events\n", (unsigned long long)(hooked() - h));
	CHECK_EQ(mr_info(g.mr).valid_pages, 4);
	sweep(&g, 1, "grown in place");
	still_watched(&g, 3, "grown in place");
	reg_off(&g);
	/* Grown where it cannot: moved; every page goes. */
	p = space(8);
	reg_on(&m, p, 4, 61, false);
	h = hooked();
	q = mremap(p, 4 * PG, 12 * PG, MREMAP_MAYMOVE);
	CHECK(q != MAP_FAILED && q != p);
	CHECK(hooked() > h);
	CHECK(is_pat(q + 3 * PG, 61, 3));
	CHECK(!mr_info(m.mr).valid);
	sweep(&m, 0, "grown and moved");
	/* Grown without MAYMOVE where it cannot: refused, unchanged, watched. */
	munmap(q, 12 * PG);
	reg_off(&m);
	p = space(8);
	reg_on(&m, p, 4, 62, false);
	CHECK(mremap(p, 4 * PG, 12 * PG, 0) == MAP_FAILED);
	sweep(&m, 1, "refused growth");
	still_watched(&m, 0, "refused growth");
	reg_off(&m);
}

/* ---- mmap(MAP_FIXED) ---- */

TEST(mmap_fixed_spans_and_failures)
{
	struct reg a, b;
	uint8_t *p = space(9), *q;
	uint64_t h;

	NEED(HOOK_MMAP, "mmap");
	munmap(p + 4 * PG, PG);
	reg_on(&a, p, 4, 70, false);
	reg_on(&b, p + 5 * PG, 4, 71, false);
	/*
	 * Refused: a bad fd, a bad offset; MAP_FIXED_NOREPLACE over it. The
	 * memory is unchanged; a registration may lose the pages (a refused
	 * call invalidates what it may have changed), never reach other memory,
	 * and what it keeps stays watched.
	 */
	{
		static const char *const names[] = { "MAP_FIXED with a bad fd", "MAP_FIXED with a bad offset",
						     "MAP_FIXED_NOREPLACE" };
		void *r[3];
		uint64_t v[4];

		v[0] = mr_info(a.mr).valid_pages;
		r[0] = mmap(p + PG, 2 * PG, PROT_READ, MAP_PRIVATE | MAP_FIXED, 12345, 0);
		v[1] = mr_info(a.mr).valid_pages;
		r[1] = mmap(p + PG, 2 * PG, PROT_READ, MAP_SHARED | MAP_FIXED | MAP_ANONYMOUS, -1, 1);
		v[2] = mr_info(a.mr).valid_pages;
		r[2] = mmap(p + PG, 2 * PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		v[3] = mr_info(a.mr).valid_pages;
		for (unsigned i = 0; i < 3; i++) {
			CHECK(r[i] == MAP_FAILED);
			if (v[i + 1] != v[i])
				printf("# note: the refused %s invalidated %llu pages of the memory it left as it was\n",
				       names[i], (unsigned long long)(v[i] - v[i + 1]));
		}
		CHECK(is_pat(p + PG, 70, 1) && is_pat(p + 2 * PG, 70, 2));
		sweep(&a, -1, "refused MAP_FIXED");
		CHECK(rd(&a, 0, "refused MAP_FIXED"));
		still_watched(&a, 0, "refused MAP_FIXED");
	}
	/* Pages 2-3 of A, the hole, 0 of B, with an unaligned length (rounded up). */
	h = hooked();
	q = mmap(p + 2 * PG, 4 * PG - 100, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	CHECK(q == p + 2 * PG);
	CHECK(hooked() > h);
	memset(q, 0xa5, 4 * PG);
	CHECK(!rd(&a, 2, "MAP_FIXED span") && !rd(&a, 3, "MAP_FIXED span"));
	CHECK(!rd(&b, 0, "MAP_FIXED span"));
	CHECK(rd(&b, 1, "MAP_FIXED span") && rd(&b, 2, "MAP_FIXED span"));
	CHECK_EQ(mr_info(b.mr).valid_pages, 3);
	still_watched(&b, 3, "after MAP_FIXED span");
	reg_off(&a);
	reg_off(&b);
}

/* ---- pinned memory the application unlocked: madvise() discards it ---- */

/*
 * munlock() of a pinned MR's memory (the kernel drops the lock, whatever
 * iovm counts), then madvise() over [unlocked pinned A][locked pinned B]:
 * the kernel discards A and stops at B. A's pages went: its MR must not
 * reach the zero pages; B keeps every page. Then MADV_FREE of unlocked
 * pinned memory, which may free it at any time: the MR must let it go.
 */
TEST(madvise_of_unlocked_pinned_memory)
{
	struct reg a, b, c;
	uint8_t *p = space(8), *pc = space(4);
	uint64_t h;
	int ret;

	NEED(HOOK_MADVISE, "madvise");
	reg_on(&a, p, 4, 700, false);
	reg_on(&b, p + 4 * PG, 4, 701, false);
	CHECK_OK(munlock(p, 4 * PG));
	if (page_locked(p)) {
		/* AddressSanitizer's munlock() interceptor does nothing. */
		reg_off(&a);
		reg_off(&b);
		SKIP_CASE("munlock() left the pages locked (a sanitizer's interceptor ignores it)");
	}
	CHECK(page_locked(p + 4 * PG));
	h = hooked();
	errno = 0;
	ret = madvise(p, 8 * PG, MADV_DONTNEED);
	printf("# madvise over [unlocked A][locked B]: %d (errno %d), A's first word %#llx\n", ret, errno,
	       (unsigned long long)*(uint64_t *)p);
	CHECK(hooked() > h);
	if (ret == -1 && *(uint64_t *)p == 0) {
		unsigned reached_n = 0;

		memset(H, 0x5a, PG);
		memset(p, 0xa5, 4 * PG);
		for (unsigned i = 0; i < 4; i++)
			reached_n += dma_copy(&R, a.iova + (uint64_t)i * PG, HI, PG) == IOVM_STATUS_SUCCESS;
		CHECK_MSG(reached_n == 0,
				"madvise(MADV_DONTNEED) over [munlocked pinned MR][locked pinned MR], refused at the "
				"locked one, discarded the first MR's pages and left %u of 4 reachable (the device "
				"reads the new memory: %#x)",
				reached_n, H[0]);
	} else {
		sweep(&a, -1, "madvise over unlocked pinned memory");
	}
	sweep(&b, 1, "locked pinned memory after the refusal");
	still_watched(&b, 1, "locked pinned memory after the refusal");
	reg_off(&a);
	reg_off(&b);

	/* The same without a refusal: madvise() of the unlocked pinned memory alone succeeds. */
	reg_on(&a, p, 4, 703, false);
	CHECK_OK(munlock(p, 4 * PG));
	h = hooked();
	CHECK_OK(madvise(p, 4 * PG, MADV_DONTNEED));
	CHECK(hooked() > h);
	memset(p, 0xa5, 4 * PG);
	for (unsigned i = 0; i < 4; i++)
		CHECK_MSG(!rd(&a, i, "munlocked pinned memory discarded"),
			  "pinned MR page %u reached after madvise() discarded it", i);
	reg_off(&a);

	reg_on(&c, pc, 4, 702, false);
	CHECK_OK(munlock(pc, 4 * PG));
	h = hooked();
	CHECK_OK(madvise(pc, 4 * PG, MADV_FREE));
	CHECK(hooked() > h);
	CHECK_MSG(mr_info(c.mr).valid_pages == 0, "MADV_FREE of unlocked pinned memory left %llu pages valid",
		  (unsigned long long)mr_info(c.mr).valid_pages);
	sweep(&c, -1, "MADV_FREE");
	reg_off(&c);
}

/*
 * MREMAP_DONTUNMAP of part of a pinned MR unlocks the whole mapping it
 * moves from; a madvise(MADV_DONTNEED) of the pages that stayed, right
 * after, may discard them (iovm/reg.h): then they must be invalid.
 */
TEST(dontunmap_then_dontneed_at_once)
{
	unsigned discarded = 0;

	NEED(HOOK_MREMAP, "mremap");
	NEED(HOOK_MADVISE, "madvise");
	for (unsigned round = 0; round < 40; round++) {
		struct reg g;
		uint8_t *p = space(8), *q;
		int ret;

		reg_on(&g, p, 8, 800 + round, false);
		q = mremap(p, PG, PG, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL);
		CHECK(q != MAP_FAILED);
		ret = madvise(p + 4 * PG, 4 * PG, MADV_DONTNEED);
		if (ret == 0 && *(uint64_t *)(p + 4 * PG) == 0) {
			discarded++;
			memset(p + 4 * PG, 0xa5, 4 * PG);
			for (unsigned i = 4; i < 8; i++)
				CHECK_MSG(!rd(&g, i, "discarded after DONTUNMAP"),
					  "round %u: page %u discarded after DONTUNMAP still reached", round, i);
		} else {
			sweep(&g, -1, "DONTUNMAP then a refused DONTNEED");
		}
		CHECK(!rd(&g, 0, "moved by DONTUNMAP"));
		sweep(&g, -1, "DONTUNMAP then DONTNEED");
		reg_off(&g);
		munmap(q, PG);
	}
	printf("# %u of 40 rounds discarded the pages DONTUNMAP left unlocked\n", discarded);
}

/* ---- the registration cache after each call ---- */

static void rc_case(struct iovm_rcache *c, int op, uint8_t *p)
{
	struct iovm_mr *m;
	struct iovm_rcache_stats s0, s1;
	uint8_t *q = NULL;
	static const char *const names[] = { "madvise DONTNEED_LOCKED", "MAP_FIXED", "mremap FIXED onto",
					     "mremap DONTUNMAP", "failed mremap FIXED onto", "munmap+map" };

	for (unsigned i = 0; i < 4; i++)
		pat(p + (size_t)i * PG, 80 + op, i);
	CHECK_OK(iovm_rcache_get(c, p, 4 * PG, IOVM_ACCESS_LOCAL_WRITE, &m));
	CHECK_OK(iovm_rcache_put(c, m));
	CHECK_OK(iovm_rcache_get(c, p, 4 * PG, IOVM_ACCESS_LOCAL_WRITE, &m)); /* a hit */
	CHECK_OK(iovm_rcache_put(c, m));
	CHECK_OK(iovm_rcache_stats(c, &s0));
	switch (op) {
	case 0:
		CHECK_OK(madvise(p + PG, PG, MADV_DONTNEED_LOCKED));
		break;
	case 1:
		CHECK(mmap(p + PG, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
		      p + PG);
		break;
	case 2:
		q = app_map(PG);
		memset(q, 0x33, PG);
		CHECK(mremap(q, PG, PG, MREMAP_MAYMOVE | MREMAP_FIXED, p + PG) == p + PG);
		break;
	case 3:
		q = mremap(p + PG, PG, PG, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL);
		CHECK(q != MAP_FAILED);
		break;
	case 4:
		q = space(4);
		munmap(q + PG, 3 * PG);
		CHECK(mremap(q, 2 * PG, 4 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, p) == MAP_FAILED);
		fill_holes(p, 4);
		break;
	case 5:
		CHECK_OK(munmap(p + PG, PG));
		fill_holes(p, 4);
		break;
	}
	memset(p + PG, 0xa5, PG);
	CHECK_OK(iovm_rcache_get(c, p, 4 * PG, IOVM_ACCESS_LOCAL_WRITE, &m));
	CHECK_OK(iovm_rcache_stats(c, &s1));
	/* The failed mremap changed nothing: a hit is right there. */
	CHECK_MSG(op == 4 || s1.hits == s0.hits, "%s: the get after the call hit the old region", names[op]);
	{
		struct reg g = { .p = p, .n = 4, .tag = 80 + op, .mr = m, .iova = mr_iova(m, p) };

		CHECK_MSG(mr_info(m).valid_pages == 4, "%s: the get gave a region with %llu valid pages", names[op],
			  (unsigned long long)mr_info(m).valid_pages);
		memset(H, 0, PG);
		CHECK_EQ(dma_copy(&R, g.iova + PG, HI, PG), IOVM_STATUS_SUCCESS);
		CHECK_MSG(a17_all(H, 0xa5, PG), "%s: the new region does not reach the new memory", names[op]);
	}
	CHECK_OK(iovm_rcache_put(c, m));
	if (q && op != 4)
		munmap(q, PG);
}

TEST(rcache_after_each_call)
{
	struct iovm_rcache *c;

	NEED(HOOK_MREMAP, "mremap");
	NEED(HOOK_MADVISE, "madvise");
	NEED(HOOK_MMAP, "mmap");
	CHECK_OK(iovm_rcache_create(R.dom, NULL, &c));
	for (int op = 0; op < 6; op++) {
		uint64_t h = hooked();

		rc_case(c, op, space(4));
		CHECK_MSG(op == 4 || hooked() > h, "op %d not hooked", op);
	}
	CHECK_OK(iovm_rcache_destroy(c));
}

/* ---- sbrk ---- */

TEST(sbrk_unaligned_shrink)
{
	struct reg g;
	uint8_t *b0, *base;
	uint64_t h;

	NEED(HOOK_BRK, "brk");
	if (TEST_OWN_MALLOC)
		SKIP_CASE("a sanitizer's malloc");
	b0 = sbrk(0);
	base = (uint8_t *)(((uintptr_t)b0 + PG - 1) & ~(uintptr_t)(PG - 1));
	CHECK(sbrk((intptr_t)(base - b0) + 8 * PG) == b0);
	reg_on(&g, base, 8, 90, false);
	if (sbrk(0) != base + 8 * PG) {
		reg_off(&g);
		SKIP_CASE("the break moved under the test");
	}
	h = hooked();
	/* Down to 100 bytes into page 4: pages 5..7 go, 4 stays. */
	CHECK(sbrk(-(intptr_t)(4 * PG - 100)) == base + 8 * PG);
	CHECK(hooked() > h);
	CHECK_MSG(mr_info(g.mr).valid_pages == 5, "valid pages %llu, not 5",
		  (unsigned long long)mr_info(g.mr).valid_pages);
	CHECK(rd(&g, 4, "sbrk") && !rd(&g, 5, "sbrk"));
	/* A break below the heap's start: the kernel keeps the break, nothing changes. */
	CHECK_EQ(brk((void *)PG), 0);
	CHECK(sbrk(0) == base + 4 * PG + 100);
	CHECK(is_pat(base, 90, 0) && is_pat(base + 4 * PG, 90, 4));
	sweep(&g, -1, "brk below the heap");
	{
		uint64_t v = mr_info(g.mr).valid_pages;

		if (v != 5)
			printf("# brk below the heap's start, refused by the kernel, invalidated %llu pages of unchanged "
			       "memory\n", (unsigned long long)(5 - v));
		CHECK_MSG(v == 5, "a brk() the kernel refused (below the heap) invalidated %llu registered pages "
					"it left as they were", (unsigned long long)(5 - v));
	}
	reg_off(&g);
	CHECK(sbrk(-(intptr_t)(base + 4 * PG + 100 - b0)) == base + 4 * PG + 100);
	CHECK(sbrk(0) == b0);
}

/* ---- threads: calls on registered memory while devices read it ---- */

#define SLOTS 96
#define SLOT_PAGES 2

static struct reg slots[SLOTS];
static atomic_bool gone[SLOTS];
static bool not_ours[SLOTS];
static atomic_bool storm_stop;
static atomic_ulong reads, faults_after;

static void slot_replace(unsigned i, unsigned op, uint8_t *spare)
{
	uint8_t *p = slots[i].p;

	switch (op % 5) {
	case 0:
		CHECK_OK(madvise(p, SLOT_PAGES * PG, MADV_DONTNEED_LOCKED));
		break;
	case 1:
		CHECK(mmap(p, SLOT_PAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
		      p);
		break;
	case 2:
		CHECK(mremap(spare, SLOT_PAGES * PG, SLOT_PAGES * PG, MREMAP_MAYMOVE | MREMAP_FIXED, p) == p);
		break;
	case 3: {
		uint8_t *q = mremap(p, SLOT_PAGES * PG, SLOT_PAGES * PG, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL);

		CHECK(q != MAP_FAILED);
		munmap(q, SLOT_PAGES * PG);
		break;
	}
	case 4: {
		void *q;

		CHECK_OK(munmap(p, SLOT_PAGES * PG));
		q = mmap(p, SLOT_PAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
			 -1, 0);
		if (q != p) {
			/* Another thread's mapping took the address: not ours. */
			if (q != MAP_FAILED)
				munmap(q, SLOT_PAGES * PG);
			atomic_store(&gone[i], true);
			not_ours[i] = true;
			return;
		}
		break;
	}
	}
	atomic_store(&gone[i], true);
	memset(p, 0xa5, SLOT_PAGES * PG);
}

static void *storm_worker(void *arg)
{
	unsigned w = (unsigned)(uintptr_t)arg;

	for (unsigned i = w; i < SLOTS; i += 2) {
		uint8_t *spare = app_map(SLOT_PAGES * PG);

		memset(spare, 0xa5, SLOT_PAGES * PG);
		slot_replace(i, i / 2 + w, spare);
		if ((i / 2 + w) % 5 != 2) /* op 2 moved the spare onto the slot */
			munmap(spare, SLOT_PAGES * PG);
		sched_yield();
	}
	return NULL;
}

static void *storm_reader(void *arg)
{
	struct a17q a;
	uint64_t seed = 23;

	(void)arg;
	a17q_open(&R, &a, PG, IOVM_QUEUE_POLLED);
	while (!atomic_load(&storm_stop)) {
		unsigned i = (unsigned)(test_rand(&seed) % SLOTS), pg = (unsigned)(test_rand(&seed) % SLOT_PAGES);
		bool was_gone = atomic_load(&gone[i]);
		uint8_t st;

		memset(a.buf, 0x5a, PG);
		st = a17_copy(&a, slots[i].iova + (uint64_t)pg * PG, a.buf_iova, PG);
		atomic_fetch_add(&reads, 1);
		if (st == IOVM_STATUS_SUCCESS) {
			CHECK_MSG(!was_gone, "slot %u page %u reached after its replacement returned", i, pg);
			CHECK_MSG(is_pat(a.buf, slots[i].tag, pg),
				  "slot %u page %u: a device read brought the replacing memory's bytes (%#x)", i, pg,
				  a.buf[0]);
		} else {
			CHECK_EQ(st, IOVM_STATUS_PAGE_FAULT);
			faults_after += was_gone;
		}
	}
	a17q_close(&R, &a);
	return NULL;
}

/*
 * Gets of the registration cache: of a slot not yet replaced (put back at
 * once), and of one whose replacement returned before the get began: that
 * get must not hit the old region (every page of what it gives valid, and
 * the device reaching the new memory).
 */
static struct iovm_rcache *storm_cache;
static atomic_ulong rc_after;

static void *storm_rcache(void *arg)
{
	struct a17q a;
	uint64_t seed = 2323;

	(void)arg;
	a17q_open(&R, &a, PG, IOVM_QUEUE_POLLED);
	while (!atomic_load(&storm_stop)) {
		unsigned i = (unsigned)(test_rand(&seed) % SLOTS);
		bool was_gone = atomic_load(&gone[i]) && !not_ours[i];
		struct iovm_mr *m;
		int ret = iovm_rcache_get(storm_cache, slots[i].p, SLOT_PAGES * PG, IOVM_ACCESS_LOCAL_WRITE, &m);

		if (ret)
			continue;
		if (was_gone) {
			struct iovm_mr_info in = mr_info(m);
			uint8_t st;

			atomic_fetch_add(&rc_after, 1);
			CHECK_MSG(in.valid_pages == SLOT_PAGES,
				  "slot %u: a get after its replacement returned gave a region with %llu of %u pages valid", i,
				  (unsigned long long)in.valid_pages, SLOT_PAGES);
			st = a17_copy(&a, mr_iova(m, slots[i].p) + PG, a.buf_iova, PG);
			CHECK_MSG(st == IOVM_STATUS_SUCCESS, "slot %u: a get after its replacement gave a region the device "
							     "cannot reach (status %u)", i, st);
		}
		CHECK_OK(iovm_rcache_put(storm_cache, m));
	}
	a17q_close(&R, &a);
	return NULL;
}

TEST(storm_of_calls_under_devices)
{
	pthread_t w[2], rd_t, rc_t;
	uint64_t h;

	NEED(HOOK_MREMAP, "mremap");
	NEED(HOOK_MADVISE, "madvise");
	NEED(HOOK_MMAP, "mmap");
	for (unsigned round = 0; round < 3; round++) {
		for (unsigned i = 0; i < SLOTS; i++) {
			reg_on(&slots[i], space(SLOT_PAGES), SLOT_PAGES, 200 + i, false);
			atomic_store(&gone[i], false);
			not_ours[i] = false;
		}
		h = hooked();
		atomic_store(&storm_stop, false);
		CHECK_OK(iovm_rcache_create(R.dom, NULL, &storm_cache));
		CHECK_OK(-pthread_create(&rd_t, NULL, storm_reader, NULL));
		CHECK_OK(-pthread_create(&rc_t, NULL, storm_rcache, NULL));
		for (unsigned t = 0; t < 2; t++)
			CHECK_OK(-pthread_create(&w[t], NULL, storm_worker, (void *)(uintptr_t)t));
		for (unsigned t = 0; t < 2; t++)
			pthread_join(w[t], NULL);
		while (atomic_load(&reads) < 200)
			sched_yield();
		while (atomic_load(&rc_after) < (round + 1) * 20ul)
			sched_yield();
		atomic_store(&storm_stop, true);
		pthread_join(rd_t, NULL);
		pthread_join(rc_t, NULL);
		CHECK_OK(iovm_rcache_destroy(storm_cache));
		CHECK(hooked() >= h + SLOTS);
		for (unsigned i = 0; i < SLOTS; i++) {
			CHECK_MSG(mr_info(slots[i].mr).valid_pages == 0, "round %u slot %u (op %u): %llu pages valid",
				  round, i, (i / 2 + i % 2) % 5, (unsigned long long)mr_info(slots[i].mr).valid_pages);
			for (unsigned pg = 0; pg < SLOT_PAGES; pg++)
				CHECK(!rd(&slots[i], pg, "after the storm"));
			reg_off(&slots[i]);
			if (!not_ours[i])
				munmap(slots[i].p, SLOT_PAGES * PG);
		}
	}
	printf("# %lu device reads, %lu faults after a replacement, %lu cache gets after one\n", atomic_load(&reads),
	       atomic_load(&faults_after), atomic_load(&rc_after));
	no_violations(R.dom);
}

/* ---- a signal handler that madvises, remaps and maps over registered memory, inside a hooked call ---- */

#define SIG_SLOTS 64
static struct reg sig_slots[SIG_SLOTS];
static atomic_uint sig_next, sig_runs;
static atomic_bool sig_done[SIG_SLOTS];

static void on_usr2(int sig)
{
	unsigned i = atomic_fetch_add(&sig_next, 1);
	int e = errno;

	(void)sig;
	atomic_fetch_add(&sig_runs, 1);
	if (i < SIG_SLOTS) {
		uint8_t *p = sig_slots[i].p;
		bool ok;

		switch (i % 3) {
		case 0:
			ok = madvise(p, 2 * PG, MADV_DONTNEED_LOCKED) == 0;
			break;
		case 1:
			ok = mmap(p, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == p;
			break;
		default: {
			void *q = mremap(p, 2 * PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL);

			ok = q != MAP_FAILED;
			if (ok)
				munmap(q, 2 * PG);
		}
		}
		if (ok)
			atomic_store(&sig_done[i], true);
	}
	errno = e;
}

static atomic_bool kick_stop;

static void *kick(void *arg)
{
	pthread_t t = *(pthread_t *)arg;

	while (!atomic_load(&kick_stop)) {
		pthread_kill(t, SIGUSR2);
		usleep(30);
	}
	return NULL;
}

TEST(signal_handler_inside_hooked_calls)
{
	struct sigaction sa = { .sa_handler = on_usr2 }, old;
	pthread_t self = pthread_self(), k;
	struct reg g;
	uint8_t *p = space(16);
	unsigned rounds = 0;

	NEED(HOOK_MREMAP, "mremap");
	NEED(HOOK_MADVISE, "madvise");
	alarm(60);
	for (unsigned i = 0; i < SIG_SLOTS; i++) {
		reg_on(&sig_slots[i], space(2), 2, 400 + i, false);
		atomic_store(&sig_done[i], false);
	}
	atomic_store(&sig_next, 0);
	reg_on(&g, p, 16, 399, true);
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	CHECK_OK(sigaction(SIGUSR2, &sa, &old));
	atomic_store(&kick_stop, false);
	CHECK_OK(-pthread_create(&k, NULL, kick, &self));
	/* This thread inside hooked madvise() and mremap() of registered memory, again and again. */
	while (atomic_load(&sig_next) < SIG_SLOTS && rounds < 200000) {
		CHECK_OK(madvise(p, 16 * PG, MADV_DONTNEED));
		CHECK(mremap(p, 16 * PG, 16 * PG, MREMAP_MAYMOVE) == p);
		rounds++;
	}
	atomic_store(&kick_stop, true);
	pthread_join(k, NULL);
	CHECK_OK(sigaction(SIGUSR2, &old, NULL));
	printf("# %u handler runs over %u rounds\n", atomic_load(&sig_runs), rounds);
	CHECK(atomic_load(&sig_runs) > 0);
	for (unsigned i = 0; i < SIG_SLOTS; i++) {
		if (atomic_load(&sig_done[i])) {
			memset(sig_slots[i].p, 0xa5, 2 * PG);
			sweep(&sig_slots[i], 0, "replaced in a signal handler");
		} else {
			sweep(&sig_slots[i], 1, "untouched by the handler");
		}
		reg_off(&sig_slots[i]);
	}
	reg_off(&g);
	alarm(0);
}

/* ---- fork: the child's calls on its copy leave the parent's registrations alone ---- */

TEST(fork_child_calls_leave_parent_alone)
{
	struct reg g, o;
	uint8_t *p = space(8), *po = space(8);
	int status;
	pid_t pid;

	NEED(HOOK_MADVISE, "madvise");
	reg_on(&g, p, 8, 500, false);
	reg_on(&o, po, 8, 501, true);
	pid = fork();
	CHECK(pid >= 0);
	if (!pid) {
		alarm(10);
		madvise(p, 4 * PG, MADV_DONTNEED_LOCKED);
		madvise(po, 8 * PG, MADV_DONTNEED);
		mmap(p + 4 * PG, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		mremap(p + 5 * PG, PG, PG, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL);
		mremap(po, 8 * PG, 16 * PG, MREMAP_MAYMOVE);
		_exit(p[0] == 0 ? 0 : 3);
	}
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
	CHECK_EQ(mr_info(g.mr).valid_pages, 8);
	sweep(&g, 1, "parent's pinned MR after the child's calls");
	CHECK_EQ(dma_copy(&R, o.iova, HI, 8 * PG), IOVM_STATUS_SUCCESS);
	for (unsigned i = 0; i < 8; i++)
		CHECK_MSG(is_pat(H + (size_t)i * PG, 501, i), "parent's on-demand page %u changed", i);
	still_watched(&g, 2, "after fork");
	reg_off(&g);
	reg_off(&o);
}

/* fork() while other threads are inside hooked madvise() and mremap() of registered memory. */
static atomic_bool fk_stop;
static atomic_ulong fk_calls;

static void *fk_churn(void *arg)
{
	uint8_t *p = arg;

	while (!atomic_load(&fk_stop)) {
		madvise(p, 8 * PG, MADV_DONTNEED);
		mremap(p, 8 * PG, 8 * PG, MREMAP_MAYMOVE);
		atomic_fetch_add(&fk_calls, 1);
	}
	return NULL;
}

TEST(fork_during_madvise_and_mremap)
{
	struct reg g, o[2];
	pthread_t t[2];

	/*
	 * Broken until 2026-12-06: two threads calling hooked madvise() and
	 * mremap() in a loop began batches of events thousands ahead of the
	 * invalidator; a ticket's slot (reg/monitor.h) was written over
	 * before the invalidator read it, and it and every lookup waited for
	 * ever (every run under taskset -c 0). It counts batches instead now.
	 */
	NEED(HOOK_MADVISE, "madvise");
	if (TEST_TSAN)
		SKIP_CASE("ThreadSanitizer's fork()");
	alarm(60);
	reg_on(&g, space(8), 8, 900, false);
	for (unsigned i = 0; i < 2; i++)
		reg_on(&o[i], space(8), 8, 901 + i, true);
	atomic_store(&fk_stop, false);
	for (unsigned i = 0; i < 2; i++)
		CHECK_OK(-pthread_create(&t[i], NULL, fk_churn, o[i].p));
	for (unsigned k = 0; k < 8; k++) {
		unsigned long c = atomic_load(&fk_calls);
		int status;
		pid_t pid;

		while (atomic_load(&fk_calls) < c + 5)
			sched_yield();
		pid = k & 1 ? (pid_t)syscall(SYS_fork) : fork();
		CHECK(pid >= 0);
		if (!pid) {
			alarm(10);
			madvise(g.p, 8 * PG, MADV_DONTNEED_LOCKED);
			mremap(g.p + 4 * PG, PG, PG, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL);
			mmap(g.p + 6 * PG, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
			_exit(g.p[0] == 0 ? 0 : 3);
		}
		CHECK_EQ(waitpid(pid, &status, 0), pid);
		CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %u: status %#x", k, status);
		CHECK_MSG(mr_info(g.mr).valid_pages == 8, "fork %u: the child's calls cost the parent's MR %llu pages",
			  k, 8 - (unsigned long long)mr_info(g.mr).valid_pages);
	}
	atomic_store(&fk_stop, true);
	for (unsigned i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	sweep(&g, 1, "parent's pinned MR after forks");
	still_watched(&g, 3, "parent's pinned MR after forks");
	reg_off(&g);
	for (unsigned i = 0; i < 2; i++)
		reg_off(&o[i]);
	alarm(0);
}

/* ---- a context closed while other threads are inside these calls ---- */

static atomic_bool close_stop;
static atomic_ulong close_calls;

static void *close_churn(void *arg)
{
	uint8_t *p = arg;

	while (!atomic_load(&close_stop)) {
		madvise(p, 8 * PG, MADV_DONTNEED_LOCKED);
		mremap(p, 8 * PG, 8 * PG, MREMAP_MAYMOVE);
		mmap(p + 7 * PG, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		atomic_fetch_add(&close_calls, 1);
	}
	return NULL;
}

TEST(context_closed_under_calls)
{
	alarm(90);
	for (unsigned round = 0; round < 4; round++) {
		struct rig r2;
		struct iovm_mr *mr2[2];
		uint8_t *mem[2];
		pthread_t t[2];
		struct reg g;
		unsigned long c;

		/* Another context, whose promise must hold throughout. */
		rig_open(&r2, REG_OPTS ",log_level=error", NULL, IOVM_QUEUE_POLLED);
		for (unsigned i = 0; i < 2; i++) {
			mem[i] = space(8);
			CHECK_OK(iovm_mr_reg(r2.dom, mem[i], 8 * PG, IOVM_ACCESS_LOCAL_WRITE, &mr2[i]));
		}
		reg_on(&g, space(4), 4, 600 + round, false);
		atomic_store(&close_stop, false);
		for (unsigned i = 0; i < 2; i++)
			CHECK_OK(-pthread_create(&t[i], NULL, close_churn, mem[i]));
		c = atomic_load(&close_calls);
		while (atomic_load(&close_calls) < c + 20)
			sched_yield();
		for (unsigned i = 0; i < 2; i++)
			CHECK_OK(iovm_mr_dereg(mr2[i]));
		rig_close(&r2);
		c = atomic_load(&close_calls);
		while (atomic_load(&close_calls) < c + 20)
			sched_yield();
		/* The first context still keeps its promise, hooks and all. */
		CHECK_OK(madvise(g.p + PG, PG, MADV_DONTNEED_LOCKED));
		memset(g.p + PG, 0xa5, PG);
		CHECK_MSG(!rd(&g, 1, "after another context closed"), "round %u: discarded page reached", round);
		CHECK(rd(&g, 0, "after another context closed"));
		atomic_store(&close_stop, true);
		for (unsigned i = 0; i < 2; i++)
			pthread_join(t[i], NULL);
		reg_off(&g);
	}
	alarm(0);
}

static void on_alarm(int sig)
{
	(void)sig;
	fprintf(stderr, "FAIL [%s]: watchdog: hung\n", test_current);
	_exit(1);
}

int main(void)
{
	/* Every hook, before the first monitor installs them (reg/hooks.c: the rest are opt-in). */
	setenv("IOVM_HOOKS", "all", 1);
	test_init();
	signal(SIGALRM, on_alarm);
	if (getenv("IOVM_NO_HOOKS"))
		SKIP("IOVM_NO_HOOKS is set");
	open_all();
	{
		struct reg g;

		reg_on(&g, space(1), 1, 0, false);
		reg_off(&g);
	}
	if (!(hooks_installed() & HOOK_MUNMAP))
		SKIP("libc is not hooked here");
	alarm(100);
	RUN_SELECTED(madvise_locked_over_a_hole);
	RUN_SELECTED(madvise_odp_over_a_hole);
	RUN_SELECTED(madvise_odp_then_locked);
	RUN_SELECTED(madvise_locked_then_odp);
	RUN_SELECTED(madvise_edges);
	RUN_SELECTED(munmap_edges);
	RUN_SELECTED(mremap_fixed_fails_after_unmapping_destination);
	RUN_SELECTED(mremap_fixed_onto_registered);
	RUN_SELECTED(mremap_several_mappings);
	RUN_SELECTED(mremap_dontunmap);
	RUN_SELECTED(mremap_grow_and_refused);
	RUN_SELECTED(mmap_fixed_spans_and_failures);
	RUN_SELECTED(madvise_of_unlocked_pinned_memory);
	RUN_SELECTED(dontunmap_then_dontneed_at_once);
	RUN_SELECTED(rcache_after_each_call);
	RUN_SELECTED(sbrk_unaligned_shrink);
	RUN_SELECTED(storm_of_calls_under_devices);
	RUN_SELECTED(signal_handler_inside_hooked_calls);
	RUN_SELECTED(fork_child_calls_leave_parent_alone);
	RUN_SELECTED(fork_during_madvise_and_mremap);
	alarm(100);
	RUN_SELECTED(context_closed_under_calls);
	close_all();
	return 0;
}
