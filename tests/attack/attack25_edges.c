/* SPDX-License-Identifier: MIT */
/*
 * attack25_edges.c - moves at the edges (test_attack25_moves):
 * MREMAP_DONTUNMAP of part of a pinned MR, shrink then munmap of the
 * tail, the pages a growth added unmapped alone, and registered memory
 * moved between the lowest and the highest pages of the address space.
 */
#include "attack/attack25.h"

A25_HARNESS(edges);

static atomic_ulong e_gone, e_kept, e_locked, e_fresh;

/* Memory mapped anew at [p, p+n pages) (free now) registers whole, reaches its bytes, and stays whole. */
static void fresh_whole(struct a17q *a, uint8_t *p, size_t n)
{
	uint8_t *q = a25_map_at(p, n * PG);
	uint32_t tag = a25_tag();
	struct iovm_mr *m, *pl;

	CHECK_MSG(q != NULL, "%p is no longer free", (void *)p);
	a25_fill(q, n, tag);
	CHECK_OK(iovm_rcache_get(RC, q, n * PG, A25_ACC, &m));
	CHECK_OK(iovm_mr_reg(R.dom, q, n * PG, A25_ACC, &pl));
	for (unsigned round = 0; round < 3; round++) {
		for (unsigned w = 0; w < 2; w++) {
			struct iovm_mr_info inf = a25_info(w ? pl : m);
			const char *bad;

			CHECK_MSG(inf.valid_pages == n, "memory mapped anew at %p, %zu pages: %llu valid by %s (round %u)",
				  (void *)p, n, (unsigned long long)inf.valid_pages, w ? "iovm_mr_reg()" : "iovm_rcache_get()",
				  round);
			bad = a25_kept_page(a, w ? pl : m, q + (n - 1) * PG, tag, n - 1);
			CHECK_MSG(!bad, "memory mapped anew at %p: %s", (void *)p, bad);
		}
		usleep(2000);
	}
	atomic_fetch_add(&e_fresh, 1);
	CHECK_OK(iovm_rcache_put(RC, m));
	CHECK_OK(iovm_mr_dereg(pl));
	CHECK_OK(munmap(q, n * PG));
}

static void print_edges(void)
{
	printf("# [%s] pages checked gone %lu, kept %lu, locked again %lu, fresh registrations whole %lu\n", test_current,
	       atomic_exchange(&e_gone, 0), atomic_exchange(&e_kept, 0), atomic_exchange(&e_locked, 0),
	       atomic_exchange(&e_fresh, 0));
}

/*
 * MREMAP_DONTUNMAP of pages 2 to 4 of an 8-page pinned MR (reg.h,
 * iovm_mr_reg(): "the memory monitor locks them again before devices
 * reach the memory again and before a call that waits for it
 * (iovm_mr_query(), iovm_rcache_get()) returns"; guarantees.md: "Pinned
 * pages stay locked while any MR holds them, also after an
 * MREMAP_DONTUNMAP move of part of them"). The moved pages are gone at
 * the source (now empty pages, which the application fills: the device
 * must not reach them), the others stay valid and locked; the
 * destination, unregistered, is unmapped at once (hooked where it went)
 * and mapped anew there registers whole.
 */
TEST(dontunmap)
{
	struct a17q a;
	unsigned rounds = a25_rounds(10), done = 0;

	a17q_open(&R, &a, 64 << 10, IOVM_QUEUE_POLLED);
	for (unsigned r = 0; r < rounds; r++) {
		uint8_t *x = a25_map_at(A25_AREA(4), 8 * PG), *z;
		uint8_t *want = A25_AREA(4) + A25_MB2 * 4;
		uint32_t tag = a25_tag(), t2 = a25_tag();
		struct iovm_mr *pm, *rm, *part;

		CHECK(x != NULL);
		a25_fill(x, 8, tag);
		CHECK_OK(iovm_mr_reg(R.dom, x + 8, 8 * PG - 16, A25_ACC, &pm));
		CHECK_OK(iovm_rcache_get(RC, x, 8 * PG, A25_ACC, &rm));
		z = r % 2 ? mremap(x + 2 * PG, 3 * PG, 3 * PG, MREMAP_MAYMOVE | MREMAP_DONTUNMAP) : MAP_FAILED;
		if (z == MAP_FAILED) /* some kernels refuse it without MREMAP_FIXED (6.18 here: EINVAL) */
			z = mremap(x + 2 * PG, 3 * PG, 3 * PG, MREMAP_MAYMOVE | MREMAP_DONTUNMAP | MREMAP_FIXED, want);
		if (z == MAP_FAILED) {
			int e = errno;

			CHECK_OK(iovm_rcache_put(RC, rm));
			CHECK_OK(iovm_mr_dereg(pm));
			munmap(x, 8 * PG);
			a17q_close(&R, &a);
			SKIP_CASE("mremap(MREMAP_DONTUNMAP): %s", strerror(e));
		}
		/* The moved pages went with it, the source's are empty: fill them as the application would. */
		CHECK(a25_eq(z + PG, tag, 3, 0, PG));
		for (unsigned w = 0; w < 2; w++) {
			struct iovm_mr *o = w ? rm : pm;
			struct iovm_mr_info inf = a25_info(o);

			CHECK_MSG(inf.valid_pages == inf.pages - 3, "%s after MREMAP_DONTUNMAP of 3 pages: %llu of %llu valid",
				  w ? "region" : "MR", (unsigned long long)inf.valid_pages, (unsigned long long)inf.pages);
		}
		/* Locked again before iovm_mr_query() returned (it did, above). */
		CHECK_MSG(page_locked(x) && page_locked(x + 5 * PG) && page_locked(x + 7 * PG),
			  "pages of a pinned MR that stayed are no longer locked after MREMAP_DONTUNMAP and a query");
		atomic_fetch_add(&e_locked, 3);
		a25_fill(x + 2 * PG, 3, t2);
		for (unsigned w = 0; w < 2; w++) {
			struct iovm_mr *o = w ? rm : pm;

			for (unsigned i = 2; i < 5; i++) {
				const char *bad = a25_gone_page(&a, o, x + i * PG, x + i * PG, t2, i - 2);

				CHECK_MSG(!bad, "page %u moved away by MREMAP_DONTUNMAP: %s", i, bad);
				atomic_fetch_add(&e_gone, 1);
			}
			for (unsigned i = 1; i < 8; i += 5) {
				const char *bad = a25_kept_page(&a, o, x + i * PG, tag, i);

				CHECK_MSG(!bad, "page %u, which stayed: %s", i, bad);
				atomic_fetch_add(&e_kept, 1);
			}
		}
		/* A get of the pages that stayed may hit; one that spans the moved ones must not hand out rm. */
		CHECK_OK(iovm_rcache_get(RC, x + PG, 3 * PG, A25_ACC, &part));
		CHECK_MSG(part != rm, "iovm_rcache_get() over pages MREMAP_DONTUNMAP moved away hit the old region");
		CHECK_EQ(a25_info(part).valid_pages, 3);
		CHECK_OK(iovm_rcache_put(RC, part));
		/* The destination goes at once. */
		CHECK_OK(munmap(z, 3 * PG));
		fresh_whole(&a, z, 3);
		CHECK_OK(iovm_rcache_put(RC, rm));
		CHECK_OK(iovm_mr_dereg(pm));
		CHECK_OK(munmap(x, 8 * PG));
		done++;
	}
	CHECK(done > 0);
	print_edges();
	a17q_close(&R, &a);
}

A25_CASE(dontunmap)

/*
 * Shrink a registered mapping with mremap() (its tail goes), munmap the
 * tail of what is left, grow it in place again and unmap only the pages
 * the growth added (reg.h: without IOVM_HOOKS=all "a munmap() of only the
 * pages an unhooked mremap() grew ... are still seen by userfaultfd,
 * waiting for its thread": correct, slower). Each step: what went is gone
 * for the MR, a region of the cache held over all of it, and the device;
 * what stayed reads back; memory mapped anew in each hole registers whole.
 */
TEST(shrink_grow_tail)
{
	struct a17q a;
	unsigned rounds = a25_rounds(10);

	a17q_open(&R, &a, 64 << 10, IOVM_QUEUE_POLLED);
	for (unsigned r = 0; r < rounds; r++) {
		uint8_t *x = a25_map_at(A25_AREA(5), 16 * PG);
		uint32_t tag = a25_tag();
		struct iovm_mr *pm, *rm, *grown = NULL;
		unsigned off = r % 2 ? 300 : 0;

		CHECK(x != NULL);
		a25_fill(x, 16, tag);
		CHECK_OK(iovm_mr_reg(R.dom, x + off, 16 * PG - off - (r % 3) * 8, A25_ACC, &pm));
		CHECK_OK(iovm_rcache_get(RC, x, 16 * PG, A25_ACC, &rm));
		CHECK(mremap(x, 16 * PG, 10 * PG, 0) == x);
		CHECK_EQ(a25_info(pm).valid_pages, 10);
		CHECK_EQ(a25_info(rm).valid_pages, 10);
		for (unsigned i = 10; i < 16; i += 5) {
			const char *bad = a25_gone_page(&a, pm, x + i * PG, NULL, 0, 0);

			CHECK_MSG(!bad, "page %u, cut by an mremap() shrink: %s", i, bad);
			atomic_fetch_add(&e_gone, 1);
		}
		fresh_whole(&a, x + 10 * PG, 6);
		CHECK_OK(munmap(x + 8 * PG, 2 * PG));
		CHECK_EQ(a25_info(pm).valid_pages, 8);
		CHECK_EQ(a25_info(rm).valid_pages, 8);
		{
			const char *bad = a25_gone_page(&a, rm, x + 9 * PG, NULL, 0, 0);

			CHECK_MSG(!bad, "page 9, the tail unmapped after the shrink: %s", bad);
			bad = a25_kept_page(&a, pm, x + 7 * PG, tag, 7);
			CHECK_MSG(!bad, "page 7, which stayed: %s", bad);
			atomic_fetch_add(&e_kept, 1);
		}
		/* Grow in place (pages 8 to 11, fresh), register them or not, unmap them alone. */
		CHECK(mremap(x, 8 * PG, 12 * PG, 0) == x);
		a25_fill(x + 8 * PG, 4, tag + 1);
		if (r % 2)
			CHECK_OK(iovm_rcache_get(RC, x + 8 * PG, 4 * PG, A25_ACC, &grown));
		CHECK_OK(munmap(x + 8 * PG, 4 * PG));
		if (grown) {
			const char *bad = a25_gone_page(&a, grown, x + 8 * PG, NULL, 0, 0);

			CHECK_MSG(!bad, "pages a growth added, unmapped alone: %s", bad);
			CHECK_EQ(a25_info(grown).valid_pages, 0);
			atomic_fetch_add(&e_gone, 1);
			CHECK_OK(iovm_rcache_put(RC, grown));
		}
		fresh_whole(&a, x + 8 * PG, 4);
		CHECK_EQ(a25_info(pm).valid_pages, 8);
		CHECK_OK(iovm_rcache_put(RC, rm));
		CHECK_OK(iovm_mr_dereg(pm));
		CHECK_OK(munmap(x, 8 * PG));
	}
	print_edges();
	a17q_close(&R, &a);
}

A25_CASE(shrink_grow_tail)

/*
 * Registered memory at the lowest address an mmap() may take
 * (vm.mmap_min_addr) and at the highest page of user space (just below
 * 2^47 - 4 KiB), moved between the two with MREMAP_FIXED, each end
 * registered with odd lengths that end at its last byte: the source is
 * gone after each move, and memory mapped anew there registers whole.
 */
TEST(edges)
{
	struct a17q a;
	unsigned long lo_addr = 65536;
	const size_t n = 4;
	uint8_t *top = (uint8_t *)(uintptr_t)(UINT64_C(0x7ffffffff000) - n * PG), *lo, *end[2];
	unsigned moves = 0, at = 0;
	FILE *f = fopen("/proc/sys/vm/mmap_min_addr", "re");

	if (f) {
		if (fscanf(f, "%lu", &lo_addr) != 1)
			lo_addr = 65536;
		fclose(f);
	}
	lo = (uint8_t *)(uintptr_t)((lo_addr + PG - 1) & ~(unsigned long)(PG - 1));
	if (!lo)
		lo = (uint8_t *)(uintptr_t)PG;
	if (!a25_map_at(top, n * PG))
		SKIP_CASE("the highest pages of user space are taken (%p: %s)", (void *)top, strerror(errno));
	CHECK_OK(munmap(top, n * PG));
	if (!a25_map_at(lo, n * PG))
		SKIP_CASE("the lowest pages mmap() may take are taken (%p: %s)", (void *)lo, strerror(errno));
	a17q_open(&R, &a, 64 << 10, IOVM_QUEUE_POLLED);
	end[0] = lo;
	end[1] = top;
	for (unsigned mv = 0; mv < a25_rounds(12); mv++) {
		uint32_t tag = a25_tag();
		struct iovm_mr *pm, *rm;
		size_t off = mv % 3 == 1 ? 1 : 0, len = n * PG - off - (mv % 3 == 2 ? 1 : 0);

		a25_fill(end[at], n, tag);
		CHECK_OK(iovm_mr_reg(R.dom, end[at] + off, len, A25_ACC, &pm));
		CHECK_OK(iovm_rcache_get(RC, end[at] + off, len, A25_ACC, &rm));
		CHECK_EQ(a25_info(rm).valid_pages, n);
		{
			const char *bad = a25_kept_n(&a, rm, end[at] + (n - 1) * PG, PG - (mv % 3 == 2), tag, n - 1);

			CHECK_MSG(!bad, "at %p: %s", (void *)end[at], bad);
		}
		CHECK(mremap(end[at], n * PG, n * PG, MREMAP_MAYMOVE | MREMAP_FIXED, end[!at]) == end[!at]);
		moves++;
		for (unsigned w = 0; w < 2; w++) {
			const char *bad = a25_gone_page(&a, w ? rm : pm, end[at] + off, NULL, 0, 0);

			CHECK_MSG(!bad, "moved away from %p: %s", (void *)end[at], bad);
			CHECK_EQ(a25_info(w ? rm : pm).valid_pages, 0);
			atomic_fetch_add(&e_gone, 1);
		}
		CHECK(a25_eq(end[!at], tag, 0, 0, PG));
		fresh_whole(&a, end[at], n);
		CHECK_OK(iovm_rcache_put(RC, rm));
		CHECK_OK(iovm_mr_dereg(pm));
		at = !at;
	}
	CHECK_OK(munmap(end[at], n * PG));
	CHECK(moves > 0);
	print_edges();
	a17q_close(&R, &a);
}

A25_CASE(edges)

/*
 * Calls beside registered memory that take none of it: the registered
 * pages stay valid, the region stays a hit, the device reads them ("the
 * memory monitor invalidates the pages the application takes away (only
 * those: the rest of a region stays usable)", reg.h, the registration
 * cache). An 8-page mapping, pages 2 to 5 registered: mremap() with an
 * old length of 0 and onto itself (refused by the kernel: a hooked call
 * that fails invalidates only what it may have changed, and these change
 * nothing), a no-op mremap(), moves of the unregistered pages 6-7 away
 * and back, a shrink that cuts only them, a growth of it in place, a
 * munmap() of pages 0-1, and a move that ends right before page 2.
 */
TEST(calls_that_take_nothing)
{
	struct a17q a;
	unsigned rounds = a25_rounds(6);
	unsigned long calls = 0;

	a17q_open(&R, &a, 64 << 10, IOVM_QUEUE_POLLED);
	for (unsigned r = 0; r < rounds; r++) {
		uint8_t *x = a25_map_at(A25_AREA(13), 8 * PG), *far = A25_AREA(13) + A25_MB2 * 4, *p;
		uint32_t tag = a25_tag();
		struct iovm_mr *pm, *rm, *again;
		struct iovm_rcache_stats s0, s1;

		CHECK(x != NULL);
		a25_fill(x, 8, tag);
		CHECK_OK(iovm_mr_reg(R.dom, x + 2 * PG + 5, 4 * PG - 10, A25_ACC, &pm));
		CHECK_OK(iovm_rcache_get(RC, x + 2 * PG, 4 * PG, A25_ACC, &rm));
		for (unsigned step = 0; step < 9; step++) {
			switch (step) {
			case 0:
				(void)mremap(x + 2 * PG, 0, PG, MREMAP_MAYMOVE); /* EINVAL for private memory here */
				break;
			case 1:
				CHECK(mremap(x + 2 * PG, PG, PG, MREMAP_MAYMOVE | MREMAP_FIXED, x + 2 * PG) == MAP_FAILED);
				break;
			case 2:
				CHECK(mremap(x, 8 * PG, 8 * PG, 0) == x);
				break;
			case 3:
				CHECK(mremap(x + 6 * PG, 2 * PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, far) == far);
				CHECK(mremap(far, 2 * PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, x + 6 * PG) == x + 6 * PG);
				break;
			case 4: /* the shrink cuts pages 6-7 only; grown back in place */
				CHECK(mremap(x + 4 * PG, 4 * PG, 2 * PG, 0) == x + 4 * PG || mremap(x, 8 * PG, 6 * PG, 0) == x);
				p = mremap(x + 4 * PG, 2 * PG, 4 * PG, 0);
				if (p == MAP_FAILED) /* another mapping: map the pages instead */
					CHECK(a25_map_at(x + 6 * PG, 2 * PG) != NULL);
				break;
			case 5:
				CHECK_OK(munmap(x, 2 * PG));
				CHECK(a25_map_at(x, 2 * PG) != NULL);
				break;
			case 6: /* a move that ends right before page 2 */
				CHECK_OK(munmap(x, 2 * PG));
				CHECK(a25_map_at(far, 2 * PG) == far);
				CHECK(mremap(far, 2 * PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, x) == x);
				break;
			case 7: /* one that starts right after page 5, onto unregistered pages */
				CHECK(a25_map_at(far, 2 * PG) == far);
				CHECK(mremap(far, 2 * PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, x + 6 * PG) == x + 6 * PG);
				break;
			default: /* madvise of the unregistered pages around */
				CHECK_OK(madvise(x, 2 * PG, MADV_DONTNEED));
				CHECK_OK(madvise(x + 6 * PG, 2 * PG, MADV_DONTNEED));
				break;
			}
			calls++;
			for (unsigned w = 0; w < 2; w++) {
				struct iovm_mr_info inf = a25_info(w ? rm : pm);

				CHECK_MSG(inf.valid_pages == 4, "step %u: the %s has %llu of 4 pages valid after a call that took "
					  "none of them", step, w ? "region" : "MR", (unsigned long long)inf.valid_pages);
				for (unsigned pg = 2; pg < 6; pg += 3) {
					const char *bad = a25_kept_n(&a, w ? rm : pm, x + pg * PG + (pg == 2 ? 5 : 0),
								     pg == 2 ? PG - 5 : PG - 5, tag, pg);

					CHECK_MSG(!bad, "step %u, page %u: %s", step, pg, bad);
				}
			}
			s0 = a25_rstats();
			CHECK_OK(iovm_rcache_get(RC, x + 2 * PG, 4 * PG, A25_ACC, &again));
			s1 = a25_rstats();
			CHECK_MSG(again == rm && s1.hits == s0.hits + 1, "step %u: the region of pages no call took is no "
				  "longer a hit", step);
			CHECK_OK(iovm_rcache_put(RC, again));
		}
		CHECK_OK(iovm_rcache_put(RC, rm));
		CHECK_OK(iovm_mr_dereg(pm));
		CHECK_OK(munmap(x, 8 * PG));
		munmap(far, 2 * PG);
	}
	printf("# [%s] calls beside registered memory %lu\n", test_current, calls);
	a17q_close(&R, &a);
}

A25_CASE(calls_that_take_nothing)

/*
 * A move of registered memory made of two mappings (pages 0-3 pinned,
 * locked; pages 4-7 on demand, not locked): Linux 6.17 and later move
 * several mappings in one call where no userfaultfd watches them, and
 * otherwise may fail (EFAULT) after moving the first. Whatever the call
 * did, once it returned the pages that left are invalid for their MR and
 * a region of the cache over all of them, the device faults there, and
 * the pages that stayed stay valid and read back ("invalidates the pages
 * it hit", reg.h; "an mremap() that may move memory invalidates it if it
 * moves"; "such a call that fails invalidates what it may have changed").
 */
TEST(move_of_two_mappings)
{
	struct a17q a;
	unsigned rounds = a25_rounds(8);
	unsigned long whole = 0, partly = 0, none = 0;

	a17q_open(&R, &a, 64 << 10, IOVM_QUEUE_POLLED);
	for (unsigned r = 0; r < rounds; r++) {
		uint8_t *x = a25_map_at(A25_AREA(16), 8 * PG), *y = A25_AREA(16) + A25_MB2 * 4;
		uint32_t tag = a25_tag();
		struct iovm_mr *pin, *odp, *rm;
		size_t moved = 0;
		unsigned char v;

		CHECK(x != NULL);
		a25_fill(x, 8, tag);
		CHECK_OK(iovm_mr_reg(R.dom, x, 4 * PG, A25_ACC, &pin));
		CHECK_OK(iovm_mr_reg(R.dom, x + 4 * PG, 4 * PG, A25_ACC | IOVM_ACCESS_ON_DEMAND, &odp));
		if (r % 2)
			CHECK_OK(iovm_rcache_get(RC, x, 8 * PG, A25_ACC, &rm));
		else
			rm = NULL;
		if (mremap(x, 8 * PG, 8 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, y) == y) {
			moved = 8;
			whole++;
		} else {
			CHECK_MSG(errno == EFAULT, "mremap(): %s", strerror(errno));
			for (size_t i = 0; i < 8; i++)
				moved += mincore(y + i * PG, PG, &v) == 0;
			moved ? partly++ : none++;
		}
		for (size_t i = 0; i < 8; i++) {
			bool went = mincore(x + i * PG, PG, &v) != 0;
			struct iovm_mr *o = i < 4 ? pin : odp;
			const char *bad;

			if (i >= 4 && went)
				continue; /* on demand: a fault finds what is there now */
			if (went) {
				bad = a25_gone_page(&a, o, x + i * PG, NULL, 0, 0);
				CHECK_MSG(!bad, "page %zu, moved away by an mremap() that %s: %s", i, moved == 8 ? "succeeded" :
					  "failed", bad);
				if (rm) {
					bad = a25_gone_page(&a, rm, x + i * PG, NULL, 0, 0);
					CHECK_MSG(!bad, "page %zu, moved away, the cache's region: %s", i, bad);
				}
			} else {
				bad = a25_kept_page(&a, o, x + i * PG, tag, i);
				CHECK_MSG(!bad, "page %zu, which stayed after a failed mremap(): %s", i, bad);
			}
		}
		if (moved == 8) {
			CHECK_EQ(a25_info(pin).valid_pages, 0);
		} else {
			size_t went_pin = 0;

			for (size_t i = 0; i < 4; i++)
				went_pin += mincore(x + i * PG, PG, &v) != 0;
			CHECK_EQ(a25_info(pin).valid_pages, 4 - went_pin);
		}
		if (rm)
			CHECK_OK(iovm_rcache_put(RC, rm));
		CHECK_OK(iovm_mr_dereg(pin));
		CHECK_OK(iovm_mr_dereg(odp));
		munmap(x, 8 * PG);
		munmap(y, 8 * PG);
	}
	printf("# [%s] moves of two mappings: whole %lu, failed after moving part %lu, failed moving none %lu\n",
	       test_current, whole, partly, none);
	a17q_close(&R, &a);
}

A25_CASE(move_of_two_mappings)
