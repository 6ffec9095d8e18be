/* SPDX-License-Identifier: MIT */
/*
 * attack25_single.c - moves of registered memory by one thread
 * (test_attack25_moves): realloc() growth chains then free(), explicit
 * mremap() chains then munmap() of the destination at once, memory moved
 * back and forth between two addresses, moved onto other registered
 * memory, MREMAP_DONTUNMAP, shrink then munmap of the tail, the pages a
 * growth added, and the address space's edges. After each call returns,
 * what it replaced must be gone for iovm_mr_query(), the registration
 * cache and the device, and memory mapped there anew must register whole
 * and stay whole.
 */
#include "attack/attack25.h"

A25_HARNESS(single);

static atomic_ulong s_moved, s_inplace, s_gone_checked, s_fresh_whole, s_same_addr, s_kept;

/* Bytes [p, p+len) (any alignment) get the words of tag @tag, pages counted from @p's page. */
static void fill_range(uint8_t *p, size_t len, uint32_t tag)
{
	uint8_t *base = (uint8_t *)((uintptr_t)p & ~(uintptr_t)(PG - 1));
	uint64_t w[PG / 8];

	for (uint64_t pg = 0; base + pg * PG < p + len; pg++) {
		uint8_t *s = base + pg * PG, *e = s + PG;

		for (unsigned i = 0; i < PG / 8; i++)
			w[i] = a25_word(tag, pg, i);
		if (s < p)
			s = p;
		if (e > p + len)
			e = p + len;
		memcpy(s, (uint8_t *)w + (s - (base + pg * PG)), (size_t)(e - s));
	}
}

/*
 * After a call that returned took [p, p+len) away whole: map it anew
 * (when the address is free), fill it, and check the old registrations
 * (@old, @nold of them, covering the range) as gone; then a get of the
 * cache and a plain registration of the new memory register it whole,
 * reach its bytes, and stay whole: "Memory mapped again where a call that
 * returned took memory away registers whole: the events of that call are
 * dealt with first ... and never invalidate the new registration" (reg.h).
 * Unmaps the new memory. Whether the address was free.
 */
static bool gone_then_fresh(struct a17q *a, uint8_t *p, size_t len, struct iovm_mr **old, unsigned nold)
{
	uint8_t *base = (uint8_t *)((uintptr_t)p & ~(uintptr_t)(PG - 1));
	size_t span = (size_t)((((uintptr_t)p + len + PG - 1) & ~(uintptr_t)(PG - 1)) - (uintptr_t)base);
	uint8_t *q = a25_map_at(base, span);
	uint32_t tag = a25_tag();
	struct iovm_mr *mr, *pl;
	struct iovm_mr_info inf;
	const char *bad;

	if (q)
		a25_fill(q, span / PG, tag);
	for (unsigned i = 0; i < nold; i++) {
		bad = a25_gone_page(a, old[i], p, q, tag, 0);
		CHECK_MSG(!bad, "old registration %u of %p+%zu: %s", i, (void *)p, len, bad);
		inf = a25_info(old[i]);
		CHECK_MSG(inf.valid_pages == 0, "old registration %u: %llu of %llu pages still valid", i,
			  (unsigned long long)inf.valid_pages, (unsigned long long)inf.pages);
		atomic_fetch_add(&s_gone_checked, 1);
	}
	if (!q)
		return false;
	CHECK_OK(iovm_rcache_get(RC, p, len, A25_ACC, &mr));
	for (unsigned i = 0; i < nold; i++)
		CHECK_MSG(mr != old[i], "iovm_rcache_get() hit the region of memory a returned call took away");
	CHECK_OK(iovm_mr_reg(R.dom, p, len, A25_ACC, &pl));
	for (unsigned round = 0; round < 3; round++) {
		struct iovm_mr *both[2] = { mr, pl };

		for (unsigned k = 0; k < 2; k++) {
			inf = a25_info(both[k]);
			CHECK_MSG(inf.valid_pages == inf.pages, "%s of memory mapped anew at %p+%zu: %llu of %llu pages valid (round %u)",
				  k ? "iovm_mr_reg()" : "iovm_rcache_get()", (void *)p, len,
				  (unsigned long long)inf.valid_pages, (unsigned long long)inf.pages, round);
			{
				uint8_t *lp = (uint8_t *)((uintptr_t)(p + len - 1) & ~(uintptr_t)(PG - 1));
				size_t n0 = PG - ((uintptr_t)p & (PG - 1));

				bad = a25_kept_n(a, both[k], p, (unsigned)(n0 < len ? n0 : len), tag, 0);
				CHECK_MSG(!bad, "memory mapped anew at %p+%zu, first page: %s", (void *)p, len, bad);
				if (lp > p) {
					bad = a25_kept_n(a, both[k], lp, (unsigned)(p + len - lp), tag, (uint64_t)(lp - base) / PG);
					CHECK_MSG(!bad, "memory mapped anew at %p+%zu, last page: %s", (void *)p, len, bad);
				}
			}
		}
		usleep(2000); /* a stale event read late would take the new pages now */
	}
	atomic_fetch_add(&s_fresh_whole, 1);
	CHECK_OK(iovm_rcache_put(RC, mr));
	CHECK_OK(iovm_mr_dereg(pl));
	munmap(q, span);
	return true;
}

/* An address of a block realloc() or free() took: for the checks of what was there, never dereferenced as the block. */
static uint8_t *old_addr(uintptr_t x)
{
	__asm__ volatile("" : "+r"(x));
	return (uint8_t *)x;
}

static void print_single(void)
{
	printf("# [%s] moved %lu, grown in place %lu, old registrations checked gone %lu, fresh registrations whole %lu, "
	       "same address again %lu, kept pages checked %lu\n",
	       test_current, atomic_exchange(&s_moved, 0), atomic_exchange(&s_inplace, 0),
	       atomic_exchange(&s_gone_checked, 0), atomic_exchange(&s_fresh_whole, 0), atomic_exchange(&s_same_addr, 0),
	       atomic_exchange(&s_kept, 0));
}

/*
 * "Memory such an mremap() moved is hooked where it went (a free() of a
 * block realloc() moved)" and "once the application's call has returned
 * no iovm_rcache_get() hits what it replaced and no iovm_mr_query()
 * calls it valid" (reg.h): glibc's realloc() of an mmapped block grows it
 * by mremap(MREMAP_MAYMOVE); each block is registered (cache and plain,
 * odd address and length, as malloc gives them) before it grows, and the
 * last is freed right after it moved, unregistered where it went.
 */
TEST(realloc_chain_then_free)
{
	struct a17q a;
	unsigned rounds = a25_rounds(12);
	unsigned long moved0;

	if (TEST_OWN_MALLOC)
		SKIP_CASE("the sanitizer's realloc() neither mremap()s nor unmaps");
	a17q_open(&R, &a, 64 << 10, IOVM_QUEUE_POLLED);
	CHECK(mallopt(M_MMAP_THRESHOLD, 128 << 10) == 1); /* no dynamic threshold: large blocks stay mmapped */
	for (unsigned r = 0; r < rounds; r++) {
		size_t len = (200u << 10) + (r * 4099u) % 65536u;
		uint8_t *p = malloc(len);
		bool last_registered = r % 2;

		CHECK(p != NULL);
		for (unsigned step = 0; step < 6; step++) {
			size_t nlen = len * 2 + 24 * step + 8;
			uint32_t tag = a25_tag();
			struct iovm_mr *m = NULL, *pl = NULL, *old[2];
			uint8_t *q;
			uintptr_t was;
			unsigned nold = 0;

			fill_range(p, len, tag);
			if (step < 5 || last_registered) {
				CHECK_OK(iovm_rcache_get(RC, p, len, A25_ACC, &m));
				old[nold++] = m;
				if (step % 2) {
					CHECK_OK(iovm_mr_reg(R.dom, p, len, A25_ACC, &pl));
					old[nold++] = pl;
				}
			}
			was = (uintptr_t)p;
			q = realloc(p, nlen);
			CHECK(q != NULL);
			p = old_addr(was); /* the old address, for the checks (not the block) */
			if ((uintptr_t)q != was) {
				atomic_fetch_add(&s_moved, 1);
				for (unsigned i = 0; i < nold; i++) {
					const char *bad = a25_gone_page(&a, old[i], p, NULL, 0, 0);

					CHECK_MSG(!bad, "block %p moved by realloc() to %p: %s", (void *)p, (void *)q, bad);
					CHECK_EQ(a25_info(old[i]).valid_pages, 0);
					atomic_fetch_add(&s_gone_checked, 1);
				}
			} else {
				atomic_fetch_add(&s_inplace, 1);
				for (unsigned i = 0; i < nold; i++) {
					struct iovm_mr_info inf = a25_info(old[i]);

					CHECK_MSG(inf.valid_pages == inf.pages, "realloc() grew in place: %llu of %llu valid",
						  (unsigned long long)inf.valid_pages, (unsigned long long)inf.pages);
					atomic_fetch_add(&s_kept, 1);
				}
			}
			if (m)
				CHECK_OK(iovm_rcache_put(RC, m));
			if (pl)
				CHECK_OK(iovm_mr_dereg(pl));
			p = q;
			len = nlen;
		}
		/* The last block moved (or grew) unregistered where it went: free() at once. */
		{
			struct iovm_mr *m;
			uintptr_t was = (uintptr_t)p;
			size_t wlen = len;

			free(p);
			/* Memory mapped there anew registers whole, and stays whole. */
			if (gone_then_fresh(&a, old_addr(was), wlen, NULL, 0))
				atomic_fetch_add(&s_same_addr, 1);
			/* And a block malloc() gives there again (the kernel's choice) gets no old region. */
			p = malloc(wlen);
			CHECK(p != NULL);
			fill_range(p, wlen, 77);
			CHECK_OK(iovm_rcache_get(RC, p, wlen, A25_ACC, &m));
			CHECK_EQ(a25_info(m).valid_pages, a25_info(m).pages);
			CHECK_EQ(a25_read(&a, a25_iova(m, p + 4096), 64), IOVM_STATUS_SUCCESS);
			CHECK(a25_eq(a.buf, 77, ((uintptr_t)(p + 4096) - ((uintptr_t)p & ~(uintptr_t)(PG - 1))) / PG,
				     (unsigned)((uintptr_t)(p + 4096) & (PG - 1)), 64));
			CHECK_OK(iovm_rcache_put(RC, m));
			free(p);
		}
	}
	moved0 = atomic_load(&s_moved);
	print_single();
	CHECK_MSG(moved0 > 0, "realloc() never moved a block: nothing attacked");
	a17q_close(&R, &a);
}

A25_CASE(realloc_chain_then_free)

/*
 * The same by hand (sanitizers too): mremap(MREMAP_MAYMOVE) growths of
 * registered memory of odd sizes (one page, 2 MiB + 4 KiB from a 2 MiB
 * boundary, an odd number of pages registered from an odd offset), a
 * guard page after it so that the growth must move; the source is
 * registered (cache and plain); the destination is unmapped at once,
 * before anything registers it (hooked where it went: the munmap() may
 * wait for the monitor's mark), then mapped anew and registered.
 */
TEST(mremap_chain_then_munmap)
{
	struct a17q a;
	unsigned rounds = a25_rounds(10);
	static const size_t sizes[] = { PG, A25_MB2 + PG, 7 * PG, 33 * PG };

	a17q_open(&R, &a, 64 << 10, IOVM_QUEUE_POLLED);
	for (unsigned r = 0; r < rounds; r++) {
		size_t len = sizes[r % 4];
		uint8_t *src = a25_map_at(A25_AREA(1) + (r % 2 ? A25_MB2 * 4 : 0), len), *guard, *dst;
		size_t off = r % 4 == 2 ? 123 : 0, rlen = len - off - (r % 4 == 3 ? 77 : 0);
		struct iovm_mr *m, *pl, *old[2];
		uint32_t tag = a25_tag();

		CHECK(src != NULL);
		guard = a25_map_at(src + len, PG);
		a25_fill(src, len / PG, tag);
		CHECK_OK(iovm_rcache_get(RC, src + off, rlen, A25_ACC, &m));
		CHECK_OK(iovm_mr_reg(R.dom, src + off, rlen, A25_ACC, &pl));
		old[0] = m;
		old[1] = pl;
		dst = mremap(src, len, len + (r % 3) * PG, MREMAP_MAYMOVE);
		CHECK(dst != MAP_FAILED);
		if (dst == src) {
			atomic_fetch_add(&s_inplace, 1);
			CHECK_EQ(a25_info(pl).valid_pages, a25_info(pl).pages);
		} else {
			atomic_fetch_add(&s_moved, 1);
			CHECK(a25_eq(dst + len - PG, tag, len / PG - 1, 0, PG));
		}
		/* The destination goes at once, unregistered where it went. */
		CHECK_OK(munmap(dst, len + (r % 3) * PG));
		if (gone_then_fresh(&a, src + off, rlen, old, 2))
			atomic_fetch_add(&s_same_addr, 1);
		if (dst != src) {
			uint8_t *q = a25_map_at(dst, len);

			/* And where it went: mapped anew there, registered whole. */
			if (q) {
				munmap(q, len);
				CHECK(gone_then_fresh(&a, dst, len, NULL, 0));
			}
		}
		CHECK_OK(iovm_rcache_put(RC, m));
		CHECK_OK(iovm_mr_dereg(pl));
		if (guard)
			munmap(guard, PG);
	}
	CHECK_MSG(atomic_load(&s_moved) > 0, "no growth moved: nothing attacked");
	print_single();
	a17q_close(&R, &a);
}

A25_CASE(mremap_chain_then_munmap)

/*
 * Memory moved back and forth between two addresses with
 * MREMAP_MAYMOVE|MREMAP_FIXED: at each end a region of the cache (held)
 * and a plain MR; after each move the source's are gone, and a get at
 * the destination never hits the region held there from two moves ago
 * (its memory left then), but registers the memory now there, whose
 * bytes the device reads.
 */
TEST(back_and_forth)
{
	struct a17q a;
	static const size_t sizes[] = { PG, A25_MB2 + PG, 5 * PG };
	unsigned rounds = a25_rounds(4);

	a17q_open(&R, &a, 64 << 10, IOVM_QUEUE_POLLED);
	for (unsigned r = 0; r < rounds * 3; r++) {
		size_t len = sizes[r % 3], off = r % 3 == 2 ? 4000 : 0, rlen = len - off - (r % 3 == 2 ? 3 : 0);
		uint8_t *end[2] = { A25_AREA(2), A25_AREA(2) + (r % 2 ? A25_MB2 * 2 : A25_MB2 * 8 + PG) };
		struct iovm_mr *held[2] = { NULL, NULL }, *pl[2] = { NULL, NULL };
		unsigned at = 0;

		CHECK(a25_map_at(end[0], len) == end[0]);
		for (unsigned mv = 0; mv < 16; mv++) {
			uint32_t tag = a25_tag();
			struct iovm_mr *m;
			uint8_t *to;

			a25_fill(end[at], len / PG, tag);
			CHECK_OK(iovm_rcache_get(RC, end[at] + off, rlen, A25_ACC, &m));
			CHECK_MSG(m != held[at], "move %u: iovm_rcache_get() at %p hit the region held there since the memory "
				  "left", mv, (void *)end[at]);
			CHECK_EQ(a25_info(m).valid_pages, a25_info(m).pages);
			{
				const char *bad = a25_kept_page(&a, m, end[at] + len - PG, tag, len / PG - 1);

				CHECK_MSG(!bad, "move %u, at the destination: %s", mv, bad);
				atomic_fetch_add(&s_kept, 1);
			}
			if (held[at])
				CHECK_OK(iovm_rcache_put(RC, held[at]));
			held[at] = m;
			if (pl[at])
				CHECK_OK(iovm_mr_dereg(pl[at]));
			pl[at] = NULL;
			if (mv % 2)
				CHECK_OK(iovm_mr_reg(R.dom, end[at] + off, rlen, A25_ACC, &pl[at]));
			to = mremap(end[at], len, len, MREMAP_MAYMOVE | MREMAP_FIXED, end[!at]);
			CHECK(to == end[!at]);
			atomic_fetch_add(&s_moved, 1);
			/* The source is empty now: its registrations are gone, the device faults there. */
			for (unsigned k = 0; k < 2; k++) {
				struct iovm_mr *o = k ? pl[at] : held[at];
				const char *bad;

				if (!o)
					continue;
				bad = a25_gone_page(&a, o, end[at] + off, NULL, 0, 0);
				CHECK_MSG(!bad, "move %u, the source's %s: %s", mv, k ? "MR" : "region", bad);
				CHECK_EQ(a25_info(o).valid_pages, 0);
				atomic_fetch_add(&s_gone_checked, 1);
			}
			at = !at;
		}
		for (unsigned k = 0; k < 2; k++) {
			if (held[k])
				CHECK_OK(iovm_rcache_put(RC, held[k]));
			if (pl[k])
				CHECK_OK(iovm_mr_dereg(pl[k]));
		}
		CHECK_OK(munmap(end[at], len));
	}
	print_single();
	a17q_close(&R, &a);
}

A25_CASE(back_and_forth)

/*
 * mremap(MREMAP_MAYMOVE|MREMAP_FIXED) onto other registered memory:
 * the destination's pages are replaced by the moved ones. Its MR and
 * region (held) count exactly those invalid; the device faults there
 * (on iovm's software platform a stale registration would reach the
 * moved bytes) and reads the rest as it was; a get of the destination
 * registers the moved memory. Destinations: a 2 MiB + 4 KiB MR mapped
 * with 2 MiB leaves (one page moved into its middle), and odd overlaps.
 */
TEST(move_onto_registered)
{
	struct a17q a;
	unsigned rounds = a25_rounds(8);
	unsigned long huge = 0;

	a17q_open(&R, &a, 64 << 10, IOVM_QUEUE_POLLED);
	for (unsigned r = 0; r < rounds; r++) {
		bool big = r % 2 == 0;
		size_t ylen = big ? A25_MB2 + PG : 12 * PG, xn = big ? 1 + r % 3 : 3 + r % 5;
		size_t k = big ? 256 + r : (r * 3) % 10; /* the first page replaced */
		uint8_t *y = a25_map_at(A25_AREA(3), ylen), *x = a25_map_at(A25_AREA(3) + A25_MB2 * 8, xn * PG);
		uint32_t ty = a25_tag(), tx = a25_tag();
		size_t yoff = big ? 0 : 100, ylen_r = ylen - yoff - (big ? 0 : 5);
		struct iovm_mr *ym, *yr, *xm, *got;
		struct iovm_mr_info inf;

		CHECK(y && x);
		if (k + xn > ylen / PG)
			k = ylen / PG - xn;
		a25_fill(y, ylen / PG, ty);
		a25_fill(x, xn, tx);
		CHECK_OK(iovm_mr_reg(R.dom, y + yoff, ylen_r, A25_ACC, &ym));
		CHECK_OK(iovm_rcache_get(RC, y + yoff, ylen_r, A25_ACC, &yr));
		CHECK_OK(iovm_mr_reg(R.dom, x, xn * PG, A25_ACC, &xm));
		huge += a25_info(ym).huge_leaves;
		CHECK(mremap(x, xn * PG, xn * PG, MREMAP_MAYMOVE | MREMAP_FIXED, y + k * PG) == y + k * PG);
		atomic_fetch_add(&s_moved, 1);
		for (unsigned w = 0; w < 2; w++) {
			struct iovm_mr *o = w ? yr : ym;

			inf = a25_info(o);
			CHECK_MSG(inf.valid_pages == inf.pages - xn, "destination's %s: %llu of %llu pages valid, %zu replaced",
				  w ? "region" : "MR", (unsigned long long)inf.valid_pages, (unsigned long long)inf.pages, xn);
			for (size_t i = 0; i < xn; i++) {
				uint8_t *pp = y + (k + i) * PG;
				const char *bad = a25_gone_page(&a, o, pp < y + yoff ? y + yoff : pp, pp, tx, i);

				CHECK_MSG(!bad, "page %zu of the destination, replaced by a move: %s", k + i, bad);
				atomic_fetch_add(&s_gone_checked, 1);
			}
			for (size_t i = 1; i + 1 < ylen / PG; i += 1 + ylen / PG / 7) {
				const char *bad;

				if (i >= k && i < k + xn)
					continue;
				bad = a25_kept_page(&a, o, y + i * PG, ty, i);
				CHECK_MSG(!bad, "page %zu of the destination, not replaced: %s", i, bad);
				atomic_fetch_add(&s_kept, 1);
			}
		}
		{
			const char *bad = a25_gone_page(&a, xm, x, NULL, 0, 0);

			CHECK_MSG(!bad, "the moved memory's own MR at the source: %s", bad);
		}
		/* A get of the replaced pages registers the moved memory. */
		CHECK_OK(iovm_rcache_get(RC, y + k * PG, xn * PG, A25_ACC, &got));
		CHECK_MSG(got != yr, "iovm_rcache_get() hit the destination's region over replaced pages");
		CHECK_EQ(a25_info(got).valid_pages, xn);
		{
			const char *bad = a25_kept_page(&a, got, y + k * PG, tx, 0);

			CHECK_MSG(!bad, "get of the moved memory: %s", bad);
		}
		CHECK_OK(iovm_rcache_put(RC, got));
		CHECK_OK(iovm_rcache_put(RC, yr));
		CHECK_OK(iovm_mr_dereg(ym));
		CHECK_OK(iovm_mr_dereg(xm));
		CHECK_OK(munmap(y, ylen));
	}
	printf("# [%s] 2 MiB leaves of destinations %lu\n", test_current, huge);
	print_single();
	a17q_close(&R, &a);
}

A25_CASE(move_onto_registered)
