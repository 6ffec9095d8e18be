/* SPDX-License-Identifier: MIT */
/*
 * test_attack6_devown_faults2.c - more faults in a client's own memory:
 * a gather's destination and a scatter's source running into a hole; a
 * DUALCAST whose source does; a COMPARE (and COMPARE_PATTERN) that meets
 * a difference before the hole (it completes, result 1, at the
 * difference: the hole is never reached); a memmove from the end whose
 * destination meets the hole first. Each against dev.h's rule: the bytes
 * before the first byte not moved are done, in every destination, and no
 * byte after. It found a DUALCAST whose dst (own memory) runs into the
 * hole writing dst2 (heap memory) to the end of the stretch (fixed).
 */
#include "attack6_rig.h"

TEST(gather_dst_and_scatter_src_into_a_hole)
{
	struct iovm_ctx *owner;
	struct child srv;
	struct rig r;
	uint64_t seed = 0x9a7;
	struct iovm_sge *l;

	owner = a6_setup("a6f2sg", &srv, 2);
	rig_open(&r);
	l = (struct iovm_sge *)(r.d + SZ - A6_PAGE);
	for (unsigned round = 0; round < 16; round++) {
		int scatter = round % 2;
		unsigned n = 1 + (unsigned)(test_rand(&seed) % 8);
		uint32_t before = 1 + (uint32_t)(test_rand(&seed) % 6000), total = 0, at = 0;
		struct iovm_completion rec;
		struct iovm_cqe cq;

		rig_fill(&r, &seed);
		for (unsigned i = 0; i < n; i++) {
			uint32_t len = i == n - 1 ? before + A6_PAGE + 100 : 1 + (uint32_t)(test_rand(&seed) % 1500);

			if (i == n - 1 && total >= before) /* the last entry must carry the range into the hole */
				len = A6_PAGE + 100;
			l[i] = (struct iovm_sge){ .iova = r.id + 2000 * (uint64_t)i, .len = len };
			total += len;
		}
		if (total <= before)
			continue;
		memcpy(r.orig_d + SZ - A6_PAGE, l, 16 * n);
		rec = rig_run(&r, (struct iovm_desc){ .op = scatter ? IOVM_OP_SCATTER : IOVM_OP_GATHER,
						      .src = scatter ? r.ih + HOLE - before : r.id + SZ - A6_PAGE,
						      .dst = scatter ? r.id + SZ - A6_PAGE : r.ih + HOLE - before,
						      .len = total, .sg_count = (uint16_t)n },
			      &cq);
		expect_bus(&rec, r.ih + HOLE, scatter ? IOVM_MAP_READ : IOVM_MAP_WRITE,
			   scatter ? "a scatter's source" : "a gather's destination");
		CHECK_MSG(rec.bytes_completed == before, "round %u (%s): %u bytes done, want %u", round,
			  scatter ? "scatter" : "gather", rec.bytes_completed, before);
		/* Entry by entry: what lies before the hole done, nothing after. */
		for (unsigned i = 0; i < n; i++) {
			uint32_t len = l[i].len, done = at >= before ? 0 : (before - at < len ? before - at : len);
			uint8_t *e = r.d + (l[i].iova - r.id);
			const uint8_t *eo = r.orig_d + (l[i].iova - r.id);

			if (scatter) {
				CHECK_MSG(!memcmp(e, r.h + HOLE - before + at, done) && !memcmp(e + done, eo + done, len - done),
					  "round %u: scatter entry %u (%u of %u bytes before the hole)", round, i, done, len);
			} else {
				size_t o = HOLE - before + at;

				CHECK_MSG(!memcmp(r.h + o, eo, done), "round %u: gather entry %u not done before the hole",
					  round, i);
			}
			at += len;
		}
		if (!scatter)
			CHECK_MSG(!memcmp(r.h, r.orig_h, HOLE - before) &&
					  !memcmp(r.h + HOLE + A6_PAGE, r.orig_h + HOLE + A6_PAGE, SZ - HOLE - A6_PAGE),
				  "round %u: the gather wrote outside the bytes it completed", round);
	}
	rig_close(&r);
	a6_teardown(owner, &srv);
}

TEST(dualcast_source_into_a_hole)
{
	struct iovm_ctx *owner;
	struct child srv;
	struct rig r;
	uint64_t seed = 0xd0a1;

	owner = a6_setup("a6f2dc", &srv, 2);
	rig_open(&r);
	for (unsigned round = 0; round < 12; round++) {
		uint32_t before = 1 + (uint32_t)(test_rand(&seed) % 7000), len = before + A6_PAGE + 10;
		uint32_t d1 = (uint32_t)(test_rand(&seed) % 4096), d2 = 10 * A6_PAGE + d1;
		struct iovm_completion rec;
		struct iovm_cqe cq;

		rig_fill(&r, &seed);
		rec = rig_run(&r, (struct iovm_desc){ .op = IOVM_OP_DUALCAST, .src = r.ih + HOLE - before,
						      .dst = r.id + d1, .dst2 = r.id + d2, .len = len },
			      &cq);
		expect_bus(&rec, r.ih + HOLE, IOVM_MAP_READ, "DUALCAST's source");
		CHECK_EQ(rec.bytes_completed, before);
		CHECK(!memcmp(r.d + d1, r.h + HOLE - before, before));
		CHECK(!memcmp(r.d + d2, r.h + HOLE - before, before));
		CHECK_MSG(!memcmp(r.d + d1 + before, r.orig_d + d1 + before, len - before) &&
				  !memcmp(r.d + d2 + before, r.orig_d + d2 + before, len - before),
			  "round %u: DUALCAST wrote past the bytes it completed", round);
	}
	rig_close(&r);
	a6_teardown(owner, &srv);
}

/* A difference before the hole: the compare completes there, result 1, and never reaches the hole. */
TEST(compare_difference_before_a_hole)
{
	struct iovm_ctx *owner;
	struct child srv;
	struct rig r;
	uint64_t seed = 0xd1ff;
	unsigned odd = 0;

	owner = a6_setup("a6f2cd", &srv, 2);
	rig_open(&r);
	for (unsigned round = 0; round < 24; round++) {
		int pattern = round % 2;
		uint32_t before = 2 + (uint32_t)(test_rand(&seed) % 7000), len = before + A6_PAGE + 10;
		uint32_t diff = (uint32_t)(test_rand(&seed) % before);
		uint64_t pat = test_rand(&seed);
		struct iovm_completion rec;
		struct iovm_cqe cq;

		rig_fill(&r, &seed);
		/* Bytes before the hole equal (to d, or to the pattern) but one, at diff. */
		for (uint32_t i = 0; i < before; i++)
			r.h[HOLE - before + i] = pattern ? (uint8_t)(pat >> (8 * (i % 8))) : r.d[i];
		r.h[HOLE - before + diff] ^= 0x40;
		rec = rig_run(&r, pattern ? (struct iovm_desc){ .op = IOVM_OP_COMPARE_PATTERN, .src = r.ih + HOLE - before,
								.len = len, .pattern = pat }
					  : (struct iovm_desc){ .op = IOVM_OP_COMPARE, .src = r.id,
								.dst = r.ih + HOLE - before, .len = len },
			      &cq);
		if (rec.status != IOVM_STATUS_SUCCESS || rec.result != 1 || rec.mismatch != diff) {
			odd++;
			printf("# round %u (%s, difference at %u, hole after %u): status %u result %u mismatch %" PRIu64
			       " bytes %u\n",
			       round, pattern ? "COMPARE_PATTERN" : "COMPARE", diff, before, rec.status, rec.result,
			       rec.mismatch, rec.bytes_completed);
		}
	}
	CHECK_MSG(odd == 0, "%u rounds: a compare with a difference before a hole did not complete at the difference",
		  odd);
	rig_close(&r);
	a6_teardown(owner, &srv);
}

/* A memmove from the end whose destination meets the hole before its source does. */
TEST(memmove_from_the_end_dst_meets_the_hole)
{
	struct iovm_ctx *owner;
	struct child srv;
	struct rig r;
	uint64_t seed = 0x3e3f;

	owner = a6_setup("a6f2mv", &srv, 2);
	rig_open(&r);
	for (unsigned round = 0; round < 16; round++) {
		/* src [s, s+len) ends below the hole; dst = s + delta ends above it. */
		uint32_t len = 2 * A6_PAGE + (uint32_t)(test_rand(&seed) % 8000);
		uint32_t above = 1 + (uint32_t)(test_rand(&seed) % 3000);
		uint32_t s = HOLE - len - (uint32_t)(test_rand(&seed) % 500), delta = HOLE + A6_PAGE + above - len - s;
		uint8_t *want = malloc(above);
		struct iovm_completion rec;
		struct iovm_cqe cq;

		CHECK(want != NULL);
		if (delta >= len) { /* not overlapping: not from the end */
			free(want);
			continue;
		}
		rig_fill(&r, &seed);
		rec = rig_run(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = r.ih + s, .dst = r.ih + s + delta,
						      .len = len },
			      &cq);
		CHECK_EQ(rec.status, IOVM_STATUS_PAGE_FAULT);
		CHECK_EQ(rec.fault_reason, IOVM_FAULT_BUS);
		CHECK_EQ(rec.fault_access, IOVM_MAP_WRITE);
		CHECK_EQ(rec.result, 1);
		CHECK_MSG(rec.bytes_completed == above, "round %u: %u bytes done from the end, want the %u above the hole",
			  round, rec.bytes_completed, above);
		memcpy(want, r.orig_h + s + len - above, above);
		expect_h(&r, s + delta + len - above, want, above, "memmove from the end, dst into the hole");
		free(want);
	}
	rig_close(&r);
	a6_teardown(owner, &srv);
}

/*
 * DUALCAST whose dst (own memory) runs into the hole while dst2 is heap
 * memory: dst2 gets the bytes before the hole, none after (dev.h: "the
 * bytes before it are done, in every destination (both of DUALCAST), and
 * no byte after"). The mirror case (dst2 into the hole) is in
 * test_attack6_devown.c.
 */
TEST(dualcast_dst_into_a_hole_dst2_on_the_heap)
{
	struct iovm_ctx *owner;
	struct child srv;
	struct rig r;
	uint64_t seed = 0xd0a2, ihp;
	uint8_t *heap, *orig;
	unsigned bad = 0;

	owner = a6_setup("a6f2dh", &srv, 2);
	rig_open(&r);
	heap = iovm_dma_alloc(r.c.ctx, SZ, A6_PAGE, 0);
	orig = malloc(SZ);
	CHECK(heap && orig);
	ihp = a6_map(r.c.q, heap, SZ, RW);
	for (unsigned round = 0; round < 12; round++) {
		uint32_t before = 1 + (uint32_t)(test_rand(&seed) % 7000), len = before + A6_PAGE + 10;
		uint32_t d2 = (uint32_t)(test_rand(&seed) % 4096);
		struct iovm_completion rec;
		struct iovm_cqe cq;

		rig_fill(&r, &seed);
		a6_fill_rand(heap, SZ, &seed);
		memcpy(orig, heap, SZ);
		rec = rig_run(&r, (struct iovm_desc){ .op = IOVM_OP_DUALCAST, .src = r.id, .dst = r.ih + HOLE - before,
						      .dst2 = ihp + d2, .len = len },
			      &cq);
		expect_bus(&rec, r.ih + HOLE, IOVM_MAP_WRITE, "DUALCAST's dst");
		CHECK_EQ(rec.bytes_completed, before);
		CHECK(!memcmp(heap + d2, r.d, before));
		expect_h(&r, HOLE - before, r.d, before, "DUALCAST's dst into the hole");
		if (memcmp(heap + d2 + before, orig + d2 + before, len - before)) {
			uint32_t last = len;

			while (last > before && heap[d2 + last - 1] == orig[d2 + last - 1])
				last--;
			printf("# round %u: dst stopped after %u bytes, dst2 (heap) written up to %u\n", round, before, last);
			bad++;
		}
	}
	CHECK_MSG(bad == 0, "%u rounds: DUALCAST wrote dst2 past the fault in dst", bad);
	CHECK_OK(iovm_rqueue_unmap(r.c.q, IOVM_IOVA(ihp), SZ));
	CHECK_OK(iovm_dma_free(r.c.ctx, heap));
	free(orig);
	rig_close(&r);
	a6_teardown(owner, &srv);
}

int main(void)
{
	test_init();
	RUN(gather_dst_and_scatter_src_into_a_hole);
	RUN(dualcast_source_into_a_hole);
	RUN(compare_difference_before_a_hole);
	RUN(memmove_from_the_end_dst_meets_the_hole);
	RUN(dualcast_dst_into_a_hole_dst2_on_the_heap);
	return 0;
}
