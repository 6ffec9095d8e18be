/* SPDX-License-Identifier: MIT */
/*
 * test_attack6_devown_faults.c - faults in a client's own memory, against
 * dev.h's rules for a partial completion: a hole (a page the client
 * unmapped) under a batch's list, a gather's or a scatter's list, a list
 * entry's data, a COMPARE, a COPY_CRC's destination and a memmove that
 * runs from the end: the status, the bytes completed, the fault's address,
 * kind and access, the CRC of the bytes done, and the bytes themselves
 * (done before the fault, untouched after). Then the end of a range, which
 * must fault as the end of a heap range does.
 * It found COPY_CRC stopped by the hole in its destination reporting the
 * CRC of the whole stretch it read (fixed).
 */
#include "attack6_rig.h"

TEST(batch_list_across_a_hole)
{
	struct iovm_ctx *owner;
	struct child srv;
	struct rig r;
	uint64_t seed = 0xba7c;

	owner = a6_setup("a6fbat", &srv, 2);
	rig_open(&r);
	for (unsigned k = 0; k < 6; k++) {
		unsigned n = k + 1 + (unsigned)(test_rand(&seed) % 4);
		uint64_t list = r.ih + HOLE - 64 * k;
		struct iovm_desc *kids = (struct iovm_desc *)(r.h + HOLE - 64 * k);
		struct iovm_completion rec;
		struct iovm_cqe cq;

		rig_fill(&r, &seed);
		for (unsigned i = 0; i < k; i++)
			kids[i] = (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = r.id + i * A6_PAGE, .len = 100,
						      .pattern = 0x1111111111111111ull * (i + 1),
						      .flags = IOVM_DESC_COMPLETION, .completion = r.irec + 64 + 32 * i };
		memcpy(r.orig_h + HOLE - 64 * k, kids, 64 * k);
		rec = rig_run(&r, (struct iovm_desc){ .op = IOVM_OP_BATCH, .src = list, .len = n }, &cq);
		expect_bus(&rec, r.ih + HOLE, IOVM_MAP_READ, "a batch's list");
		CHECK_MSG(rec.bytes_completed == k, "batch with the hole at child %u: %u children counted", k,
			  rec.bytes_completed);
		for (unsigned i = 0; i < k; i++) {
			const struct iovm_completion *kr = (const void *)(r.rec + 64 + 32 * i);

			CHECK_EQ(kr->status, IOVM_STATUS_SUCCESS);
			CHECK_EQ(r.d[i * A6_PAGE + 99], 0x11 * (i + 1));
		}
		CHECK(!memcmp(r.d + k * A6_PAGE, r.orig_d + k * A6_PAGE, SZ - k * A6_PAGE));
	}
	rig_close(&r);
	a6_teardown(owner, &srv);
}

/* A gather's or scatter's list that runs into the hole at entry @j: nothing moves past the entries before. */
TEST(sg_list_across_a_hole)
{
	struct iovm_ctx *owner;
	struct child srv;
	struct rig r;
	uint64_t seed = 0x5c47;

	owner = a6_setup("a6fsgl", &srv, 2);
	rig_open(&r);
	for (unsigned round = 0; round < 12; round++) {
		int scatter = round % 2;
		unsigned j = 1 + (unsigned)(test_rand(&seed) % 6), n = j + 1 + (unsigned)(test_rand(&seed) % 4);
		struct iovm_sge *l = (struct iovm_sge *)(r.h + HOLE - 16 * j);
		uint32_t total = 0, before = 0;
		struct iovm_completion rec;
		struct iovm_cqe cq;

		rig_fill(&r, &seed);
		for (unsigned i = 0; i < j; i++) {
			uint32_t len = 1 + (uint32_t)(test_rand(&seed) % 3000);

			l[i] = (struct iovm_sge){ .iova = r.id + 4 * A6_PAGE + total + 7 * i, .len = len };
			total += len;
		}
		before = total;
		total += 500 * (n - j); /* the entries in the hole: their lengths count in len */
		memcpy(r.orig_h + HOLE - 16 * j, l, 16 * j);
		rec = rig_run(&r, (struct iovm_desc){ .op = scatter ? IOVM_OP_SCATTER : IOVM_OP_GATHER,
						      .src = scatter ? r.ih : r.ih + HOLE - 16 * j,
						      .dst = scatter ? r.ih + HOLE - 16 * j : r.ih, .len = total,
						      .sg_count = (uint16_t)n },
			      &cq);
		expect_bus(&rec, r.ih + HOLE, IOVM_MAP_READ, scatter ? "a scatter's list" : "a gather's list");
		CHECK_MSG(rec.bytes_completed == 0 || rec.bytes_completed == before,
			  "round %u: %u bytes done, want 0 or the %u of the entries before the hole", round,
			  rec.bytes_completed, before);
		/* What moved: the entries before, whole, or nothing. */
		if (scatter) {
			uint32_t at = 0;

			for (unsigned i = 0; i < j; i++) {
				const uint8_t *got = r.d + (l[i].iova - r.id);
				const uint8_t *exp = rec.bytes_completed ? r.h + at : r.orig_d + (l[i].iova - r.id);

				CHECK_MSG(!memcmp(got, exp, l[i].len), "round %u: scatter entry %u", round, i);
				at += l[i].len;
			}
		} else {
			for (unsigned i = 0, at = 0; i < j; i++) {
				const uint8_t *src = r.d + (l[i].iova - r.id);

				CHECK_MSG(!memcmp(r.h + at, rec.bytes_completed ? src : r.orig_h + at, l[i].len),
					  "round %u: gather entry %u", round, i);
				at += l[i].len;
			}
			CHECK(!memcmp(r.h + before, r.orig_h + before, HOLE - 16 * j - before));
		}
	}
	rig_close(&r);
	a6_teardown(owner, &srv);
}

/* A gather entry's source, or a scatter entry's destination, across the hole. */
TEST(sg_entry_across_a_hole)
{
	struct iovm_ctx *owner;
	struct child srv;
	struct rig r;
	uint64_t seed = 0x5ce7;
	struct iovm_sge *l;

	owner = a6_setup("a6fsge", &srv, 2);
	rig_open(&r);
	l = (struct iovm_sge *)(r.d + SZ - A6_PAGE);
	for (unsigned round = 0; round < 12; round++) {
		int scatter = round % 2;
		unsigned j = (unsigned)(test_rand(&seed) % 4), n = j + 1 + (unsigned)(test_rand(&seed) % 3);
		uint32_t total = 0, done, cut = 1 + (uint32_t)(test_rand(&seed) % 2000);
		struct iovm_completion rec;
		struct iovm_cqe cq;

		rig_fill(&r, &seed);
		for (unsigned i = 0; i < n; i++) {
			uint32_t len = i == j ? cut + A6_PAGE + 10 : 1 + (uint32_t)(test_rand(&seed) % 1000);
			uint64_t at = i == j ? r.ih + HOLE - cut : r.ih + (i < j ? 1000 * (uint64_t)i : HOLE + 2 * A6_PAGE + 1000 * (uint64_t)i);

			l[i] = (struct iovm_sge){ .iova = at, .len = len };
			total += len;
		}
		done = cut;
		for (unsigned i = 0; i < j; i++)
			done += l[i].len;
		memcpy(r.orig_d + SZ - A6_PAGE, l, 16 * n);
		rec = rig_run(&r, (struct iovm_desc){ .op = scatter ? IOVM_OP_SCATTER : IOVM_OP_GATHER,
						      .src = scatter ? r.id : r.id + SZ - A6_PAGE,
						      .dst = scatter ? r.id + SZ - A6_PAGE : r.id, .len = total,
						      .sg_count = (uint16_t)n },
			      &cq);
		expect_bus(&rec, r.ih + HOLE, scatter ? IOVM_MAP_WRITE : IOVM_MAP_READ,
			   scatter ? "a scatter entry" : "a gather entry");
		CHECK_MSG(rec.bytes_completed == done, "round %u (%s): %u bytes done, want %u", round,
			  scatter ? "scatter" : "gather", rec.bytes_completed, done);
		if (scatter) {
			uint32_t at = 0;

			for (unsigned i = 0; i <= j; i++) {
				uint32_t len = i == j ? cut : l[i].len;

				CHECK_MSG(!memcmp(r.h + (l[i].iova - r.ih), r.d + at, len), "round %u: entry %u", round, i);
				at += l[i].len;
			}
			for (unsigned i = j + 1; i < n; i++)
				CHECK(!memcmp(r.h + (l[i].iova - r.ih), r.orig_h + (l[i].iova - r.ih), l[i].len));
		} else {
			uint32_t at = 0;

			for (unsigned i = 0; i <= j; i++) {
				uint32_t len = i == j ? cut : l[i].len;

				CHECK_MSG(!memcmp(r.d + at, r.h + (l[i].iova - r.ih), len), "round %u: entry %u", round, i);
				at += l[i].len;
			}
			CHECK_MSG(!memcmp(r.d + done, r.orig_d + done, total - done),
				  "round %u: gather wrote past the bytes it completed", round);
		}
	}
	rig_close(&r);
	a6_teardown(owner, &srv);
}

/* CRC-32C (Castagnoli), bit by bit: the oracle for the CRC of the bytes done. */
static uint32_t crc32c(uint32_t crc, const uint8_t *p, size_t len)
{
	crc = ~crc;
	while (len--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = crc & 1 ? (crc >> 1) ^ 0x82f63b78u : crc >> 1;
	}
	return ~crc;
}

TEST(compare_and_copy_crc_into_a_hole)
{
	struct iovm_ctx *owner;
	struct child srv;
	struct rig r;
	uint64_t seed = 0xc0c0;

	owner = a6_setup("a6fcmp", &srv, 2);
	rig_open(&r);
	for (unsigned round = 0; round < 16; round++) {
		uint32_t before = 1 + (uint32_t)(test_rand(&seed) % 9000), len = before + A6_PAGE + 50;
		uint32_t seed32 = (uint32_t)test_rand(&seed);
		struct iovm_completion rec, crc_rec;
		struct iovm_cqe cq;

		rig_fill(&r, &seed);
		/* Equal bytes before the hole: COMPARE meets the hole. */
		memcpy(r.d, r.h + HOLE - before, before);
		rec = rig_run(&r, (struct iovm_desc){ .op = IOVM_OP_COMPARE, .src = r.id, .dst = r.ih + HOLE - before,
						      .len = len },
			      &cq);
		expect_bus(&rec, r.ih + HOLE, IOVM_MAP_READ, "COMPARE");
		CHECK_EQ(rec.bytes_completed, before);
		/* COPY_CRC into the hole: the CRC is of the bytes done. */
		rec = rig_run(&r, (struct iovm_desc){ .op = IOVM_OP_COPY_CRC, .src = r.id + 5 * A6_PAGE,
						      .dst = r.ih + HOLE - before, .len = len, .crc_seed = seed32 },
			      &cq);
		expect_bus(&rec, r.ih + HOLE, IOVM_MAP_WRITE, "COPY_CRC");
		CHECK_EQ(rec.bytes_completed, before);
		/* The engine's own CRC32C of the bytes done agrees with the oracle. */
		crc_rec = rig_run(&r, (struct iovm_desc){ .op = IOVM_OP_CRC32C, .src = r.id + 5 * A6_PAGE, .len = before,
							  .crc_seed = seed32 },
				  &cq);
		CHECK_EQ(crc_rec.crc, crc32c(seed32, r.d + 5 * A6_PAGE, before));
		if (rec.crc != crc_rec.crc) {
			uint32_t run = seed32;

			for (uint32_t n = 0; n <= len; run = crc32c(run, r.d + 5 * A6_PAGE + n, 1), n++)
				if (run == rec.crc)
					printf("# round %u: COPY_CRC's crc is that of %u bytes, %u were done\n", round, n,
					       before);
		}
		CHECK_MSG(rec.crc == crc_rec.crc,
			  "round %u: COPY_CRC stopped after %u bytes reports crc %#x, the bytes done have %#x", round,
			  before, rec.crc, crc_rec.crc);
		expect_h(&r, HOLE - before, r.d + 5 * A6_PAGE, before, "COPY_CRC into the hole");
	}
	rig_close(&r);
	a6_teardown(owner, &srv);
}

/* A memmove that runs from the end, stopped by the hole: its last bytes_completed bytes done, no others. */
TEST(memmove_from_the_end_into_a_hole)
{
	struct iovm_ctx *owner;
	struct child srv;
	struct rig r;
	uint64_t seed = 0x3e3e;

	owner = a6_setup("a6fmov", &srv, 2);
	rig_open(&r);
	for (unsigned round = 0; round < 16; round++) {
		/* src ends above the hole, starts below it; dst = src + delta. */
		uint32_t below = 1 + (uint32_t)(test_rand(&seed) % 5000), above = 1 + (uint32_t)(test_rand(&seed) % 5000);
		uint32_t delta = 1 + (uint32_t)(test_rand(&seed) % 3000), len = below + A6_PAGE + above;
		uint32_t s = HOLE - below, done = above; /* the src bytes above the hole */
		struct iovm_completion rec;
		struct iovm_cqe cq;
		uint8_t *want = malloc(len);

		CHECK(want != NULL);
		if (s + delta + len > SZ)
			delta = SZ - s - len;
		rig_fill(&r, &seed);
		rec = rig_run(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = r.ih + s, .dst = r.ih + s + delta,
						      .len = len },
			      &cq);
		CHECK_EQ(rec.status, IOVM_STATUS_PAGE_FAULT);
		CHECK_EQ(rec.fault_reason, IOVM_FAULT_BUS);
		CHECK_MSG(rec.result == 1, "round %u: a memmove up that faulted says result %u", round, rec.result);
		CHECK_MSG(rec.fault_addr >= r.ih + HOLE && rec.fault_addr < r.ih + HOLE + A6_PAGE,
			  "round %u: fault at %#" PRIx64 ", the hole is at %#" PRIx64, round, rec.fault_addr, r.ih + HOLE);
		/* dst's bytes: the last ones done (going down, until dst or src meets the hole). */
		if (s + delta + len - above - delta <= HOLE + A6_PAGE)
			done = (uint32_t)(s + len - (HOLE + A6_PAGE)); /* src meets it first */
		if (s + delta < HOLE + A6_PAGE && s + delta + len > HOLE + A6_PAGE &&
		    (uint32_t)(s + delta + len - (HOLE + A6_PAGE)) < done)
			done = (uint32_t)(s + delta + len - (HOLE + A6_PAGE)); /* dst meets it first */
		CHECK_MSG(rec.bytes_completed == done, "round %u (below %u above %u delta %u): %u bytes done, want %u",
			  round, below, above, delta, rec.bytes_completed, done);
		memcpy(want, r.orig_h + s + len - rec.bytes_completed, rec.bytes_completed);
		expect_h(&r, s + delta + len - rec.bytes_completed, want, rec.bytes_completed, "memmove from the end");
		free(want);
	}
	rig_close(&r);
	a6_teardown(owner, &srv);
}

/*
 * The end of a mapped range, crossed by a destination or a source: own
 * memory faults there exactly as heap memory does (the same status, bytes,
 * CRC, fault address relative to the range, reason and access, and the
 * same bytes written). The IOVA after each range is made free first (a
 * page mapped there and unmapped), and checked to fault.
 */
#define ESZ (8 * A6_PAGE)

struct eworld {
	uint8_t *src, *dst, *rec;
	uint64_t isrc, idst, irec;
};

static int end_free(struct iovm_rqueue *q, uint64_t at)
{
	return a6_run(q, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = at, .len = 1 }).status ==
	       IOVM_STATUS_PAGE_FAULT;
}

/* IOVAs come top-down here, or bottom-up: a dummy page on each side of each range, unmapped after. */
static void eworld_map(struct a6_cl *c, struct eworld *w, void *dummy, uint64_t *dummies)
{
	w->irec = a6_map(c->q, w->rec, A6_PAGE, RW);
	dummies[0] = a6_map(c->q, dummy, ESZ, IOVM_MAP_READ);
	w->isrc = a6_map(c->q, w->src, ESZ, IOVM_MAP_READ);
	dummies[1] = a6_map(c->q, dummy, ESZ, IOVM_MAP_READ);
	w->idst = a6_map(c->q, w->dst, ESZ, RW);
	dummies[2] = a6_map(c->q, dummy, ESZ, IOVM_MAP_READ);
}

TEST(range_end_faults_as_the_heap)
{
	struct iovm_ctx *owner;
	struct child srv;
	struct a6_cl c;
	struct eworld h, o;
	uint8_t *dummy;
	uint64_t seed = 0xe7d, dummies[6];
	unsigned differ = 0, rounds = 0, faults = 0;

	owner = a6_setup("a6fend", &srv, 2);
	c = a6_client(16);
	dummy = a6_anon(ESZ, PROT_READ);
	h.src = iovm_dma_alloc(c.ctx, ESZ, A6_PAGE, 0);
	h.dst = iovm_dma_alloc(c.ctx, ESZ, A6_PAGE, 0);
	h.rec = iovm_dma_alloc(c.ctx, A6_PAGE, A6_PAGE, 0);
	CHECK(dummy && h.src && h.dst && h.rec);
	o.src = a6_anon(ESZ, PROT_READ | PROT_WRITE);
	o.dst = a6_anon(ESZ, PROT_READ | PROT_WRITE);
	o.rec = a6_anon(A6_PAGE, PROT_READ | PROT_WRITE);
	eworld_map(&c, &h, dummy, dummies);
	eworld_map(&c, &o, dummy, dummies + 3);
	for (int i = 0; i < 6; i++)
		CHECK_OK(iovm_rqueue_unmap(c.q, IOVM_IOVA(dummies[i]), ESZ));
	printf("# heap: src %p at %#" PRIx64 ", dst %p at %#" PRIx64 "; own: src %p at %#" PRIx64 ", dst %p at %#" PRIx64
	       "\n", (void *)h.src, h.isrc, (void *)h.dst, h.idst, (void *)o.src, o.isrc, (void *)o.dst, o.idst);
	if (!end_free(c.q, h.idst + ESZ) || !end_free(c.q, o.idst + ESZ) || !end_free(c.q, h.isrc + ESZ) ||
	    !end_free(c.q, o.isrc + ESZ)) {
		a6_client_close(&c);
		a6_teardown(owner, &srv);
		SKIP_CASE("the IOVA after a range is mapped: no end to cross");
	}
	for (unsigned round = 0; round < 60; round++) {
		static const uint8_t ops[] = { IOVM_OP_COPY, IOVM_OP_FILL, IOVM_OP_COPY_CRC, IOVM_OP_DUALCAST,
					       IOVM_OP_CRC32C, IOVM_OP_COMPARE, IOVM_OP_COMPARE_PATTERN };
		uint8_t op = ops[round % sizeof(ops)];
		uint32_t in = 1 + (uint32_t)(test_rand(&seed) % 6000), len = in + 1 + (uint32_t)(test_rand(&seed) % 6000);
		uint32_t soff = (uint32_t)(test_rand(&seed) % (ESZ - len)), seed32 = (uint32_t)test_rand(&seed);
		int src_end = op == IOVM_OP_CRC32C || op == IOVM_OP_COMPARE_PATTERN || (op != IOVM_OP_FILL && round % 2);
		struct iovm_completion rh, ro;
		struct iovm_cqe ch, co;
		struct eworld *w[2] = { &h, &o };
		struct iovm_cqe *cq[2] = { &ch, &co };

		uint64_t pattern = test_rand(&seed);

		a6_fill_rand(h.src, ESZ, &seed);
		a6_fill_rand(h.dst, ESZ, &seed);
		if (op == IOVM_OP_COMPARE) { /* equal up to the end */
			if (src_end)
				memcpy(h.dst + soff, h.src + ESZ - in, in);
			else
				memcpy(h.dst + ESZ - in, h.src + soff, in);
		}
		if (op == IOVM_OP_COMPARE_PATTERN)
			for (uint32_t i = 0; i < in; i++)
				h.src[ESZ - in + i] = (uint8_t)(pattern >> (8 * (i % 8)));
		memcpy(o.src, h.src, ESZ);
		memcpy(o.dst, h.dst, ESZ);
		for (int k = 0; k < 2; k++) {
			struct eworld *x = w[k];
			struct iovm_desc d = { .op = op, .len = len, .crc_seed = seed32, .pattern = pattern,
					       .flags = IOVM_DESC_COMPLETION, .completion = x->irec };

			d.src = src_end ? x->isrc + ESZ - in : x->isrc + soff;
			d.dst = src_end ? x->idst + soff : x->idst + ESZ - in;
			if (op == IOVM_OP_DUALCAST) { /* dst whole; dst2 crosses the end, or lies whole too */
				d.dst = x->idst + (ESZ - in) % A6_PAGE;
				d.dst2 = src_end ? x->idst + ESZ / 2 : x->idst + ESZ - in;
			}
			memset(x->rec, 0, 32);
			*cq[k] = a6_run(c.q, d);
		}
		memcpy(&rh, h.rec, sizeof(rh));
		memcpy(&ro, o.rec, sizeof(ro));
		rounds++;
		faults += rh.status == IOVM_STATUS_PAGE_FAULT;
		rh.fault_addr -= rh.fault_addr >= h.idst && rh.fault_addr <= h.idst + ESZ ? h.idst : h.isrc;
		ro.fault_addr -= ro.fault_addr >= o.idst && ro.fault_addr <= o.idst + ESZ ? o.idst : o.isrc;
		if (memcmp(&rh, &ro, sizeof(rh)) || memcmp(h.dst, o.dst, ESZ) || ch.status != co.status) {
			differ++;
			printf("# round %u op %u (%s crosses the end, %u of %u bytes inside): heap status %u bytes %u "
			       "crc %#x result %u reason %u access %u at +%#" PRIx64 "; own status %u bytes %u crc %#x "
			       "result %u reason %u access %u at +%#" PRIx64 "; bytes %s\n",
			       round, op, src_end ? "src" : "dst", in, len, rh.status, rh.bytes_completed, rh.crc,
			       rh.result, rh.fault_reason, rh.fault_access, rh.fault_addr, ro.status,
			       ro.bytes_completed, ro.crc, ro.result, ro.fault_reason, ro.fault_access, ro.fault_addr,
			       memcmp(h.dst, o.dst, ESZ) ? "differ" : "agree");
		}
	}
	CHECK(rounds >= 40);
	printf("# %u of %u rounds faulted at the end\n", faults, rounds);
	CHECK(faults >= 30);
	CHECK_MSG(differ == 0, "%u of %u rounds: own memory faulted at a range's end otherwise than heap memory",
		  differ, rounds);
	a6_client_close(&c);
	munmap(o.src, ESZ);
	munmap(o.dst, ESZ);
	munmap(o.rec, A6_PAGE);
	munmap(dummy, ESZ);
	a6_teardown(owner, &srv);
}

int main(void)
{
	test_init();
	RUN(batch_list_across_a_hole);
	RUN(sg_list_across_a_hole);
	RUN(sg_entry_across_a_hole);
	RUN(memmove_from_the_end_into_a_hole);
	RUN(range_end_faults_as_the_heap);
	RUN(compare_and_copy_crc_into_a_hole);
	return 0;
}
