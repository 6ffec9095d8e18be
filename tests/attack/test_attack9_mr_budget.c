/* SPDX-License-Identifier: MIT */
/*
 * test_attack9_mr_budget.c - on-demand MRs mapped on a device queue under
 * tiny pin budgets (iovm/reg.h: pin_budget, at least 64K; iovm/mp.h:
 * iovm_rqueue_map_mr()): a budget of one piece with a descriptor of many,
 * one whose ranges need more pieces than the budget holds at once, two
 * MRs sharing a budget, the same memory registered twice and both mapped.
 * The budget evicts as the device goes; the device asks again; every
 * descriptor must finish with the right bytes, and the pins stay within
 * the budget.
 */
#include "attack/attack9_mr.h"

#define ODPW (IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND)

static void fill_rand(uint8_t *p, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)a9_rng(&seed);
}

static void report(struct iovm_completion c, const char *what)
{
	if (c.status != IOVM_STATUS_SUCCESS)
		printf("# %s: status %u, bytes_completed %u, fault_addr %#llx, reason %u, access %u\n", what, c.status,
		       c.bytes_completed, (unsigned long long)c.fault_addr, c.fault_reason, c.fault_access);
}

/* Read @len of an MR at @skew past a 64 KiB line into the heap, budget @opts. */
static void read_through(const char *tag, const char *opts, size_t skew, size_t len)
{
	struct a9 r;
	struct iovm_mr *mr;
	size_t npg = (skew + len + 4095) / 4096 + 1;
	uint8_t *app = a9_pages_64k(npg);
	struct iovm_completion c;
	struct iovm_reg_stats st;
	iovm_iova_t io;

	a9_open(&r, tag, opts, 2u << 20);
	fill_rand(app, npg * 4096, 7);
	CHECK_OK(iovm_mr_reg(r.dom, app + skew, len, ODPW, &mr));
	CHECK_OK(iovm_rqueue_map_mr(r.q, mr, IOVM_MAP_READ | IOVM_MAP_WRITE, &io));
	c = a9_go(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = io.addr, .dst = r.ih.addr, .len = (uint32_t)len });
	report(c, tag);
	st = a9_stats(r.ctx);
	printf("# %s: odp_faults %llu, pinned %llu, evicted %llu, budget %llu\n", tag, (unsigned long long)st.odp_faults,
	       (unsigned long long)st.odp_pinned_bytes, (unsigned long long)st.odp_evicted_bytes,
	       (unsigned long long)st.pin_budget);
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	CHECK(memcmp(r.heap, app + skew, len) == 0);
	CHECK(st.odp_pinned_bytes <= st.pin_budget);
	/* And back, written */
	fill_rand(r.heap, len, 99);
	c = a9_go(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = r.ih.addr, .dst = io.addr, .len = (uint32_t)len });
	report(c, tag);
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	CHECK(memcmp(r.heap, app + skew, len) == 0);
	CHECK_OK(iovm_rqueue_unmap_mr(r.q, mr));
	CHECK_OK(iovm_mr_dereg(mr));
	a9_close(&r, true);
	CHECK_OK(munmap(app, npg * 4096));
}

/* Budget 64K, the MR aligned on 64 KiB: one piece at a time. */
TEST(budget64k_aligned)
{
	read_through("a9b64a", "pin_budget=64K", 0, 1 << 20);
}

/* Budget 64K, the MR starting mid-piece: its first piece is short. */
TEST(budget64k_unaligned)
{
	read_through("a9b64u", "pin_budget=64K", 3 * 4096 + 123, 1 << 20);
}

/* Budget 128K, the MR starting mid-piece. */
TEST(budget128k_unaligned)
{
	read_through("a9b128u", "pin_budget=128K", 3 * 4096 + 123, 1 << 20);
}

/*
 * A copy MR -> MR between two pieces far apart: the device needs both at
 * once, and a budget of 128K holds exactly two; with 64K only one (the
 * device then has to make progress piece by piece, or fault: never a wrong byte).
 */
static void mr_to_mr(const char *tag, const char *opts, size_t skew, bool must_succeed)
{
	struct a9 r;
	struct iovm_mr *mr;
	uint8_t *app = a9_pages_64k(80);
	uint8_t *model = malloc(80 * 4096);
	struct iovm_completion c;
	iovm_iova_t io;
	size_t len = 64 * 4096 - skew;

	CHECK(model);
	a9_open(&r, tag, opts, 0);
	fill_rand(app, 80 * 4096, 3);
	memcpy(model, app, 80 * 4096);
	CHECK_OK(iovm_mr_reg(r.dom, app + skew, len, ODPW, &mr));
	CHECK_OK(iovm_rqueue_map_mr(r.q, mr, IOVM_MAP_READ | IOVM_MAP_WRITE, &io));
	/* 100 KiB from the start to 150 KiB further */
	c = a9_go(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = io.addr + 10, .dst = io.addr + 10 + 150 * 1024,
					  .len = 100 * 1024 });
	report(c, tag);
	if (c.status == IOVM_STATUS_SUCCESS || must_succeed) {
		CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
		memmove(model + skew + 10 + 150 * 1024, model + skew + 10, 100 * 1024);
	} else {
		CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
		memmove(model + skew + 10 + 150 * 1024, model + skew + 10, c.bytes_completed);
	}
	CHECK_EQ(a9_diff(app, model, 80 * 4096), -1);
	CHECK(a9_stats(r.ctx).odp_pinned_bytes <= a9_stats(r.ctx).pin_budget);
	CHECK_OK(iovm_rqueue_unmap_mr(r.q, mr));
	CHECK_OK(iovm_mr_dereg(mr));
	a9_close(&r, true);
	CHECK_OK(munmap(app, 80 * 4096));
	free(model);
}

TEST(mr_to_mr_budget128k)
{
	mr_to_mr("a9mm128", "pin_budget=128K", 0, true);
}

TEST(mr_to_mr_budget128k_unaligned)
{
	a9_hang_s = 20;
	mr_to_mr("a9mm128u", "pin_budget=128K", 4096 + 5, true);
}

TEST(mr_to_mr_budget64k)
{
	/* More than the budget at once: bounded, the descriptor completes with the fault (mr_to_mr() accepts it). */
	a9_hang_s = 20;
	mr_to_mr("a9mm64", "pin_budget=64K", 0, false);
}

/* A dualcast of one byte into two pieces: two pieces fit a budget of 128K. */
TEST(dualcast_two_pieces_budget128k)
{
	struct a9 r;
	struct iovm_mr *mr;
	uint8_t *app = a9_pages_64k(64);
	struct iovm_completion c;
	iovm_iova_t io;

	a9_open(&r, "a9dual", "pin_budget=128K", 0);
	memset(app, 0x11, 64 * 4096);
	r.heap[0] = 0x99;
	CHECK_OK(iovm_mr_reg(r.dom, app, 64 * 4096, ODPW, &mr));
	CHECK_OK(iovm_rqueue_map_mr(r.q, mr, IOVM_MAP_READ | IOVM_MAP_WRITE, &io));
	c = a9_go(&r, (struct iovm_desc){ .op = IOVM_OP_DUALCAST, .src = r.ih.addr, .dst = io.addr + 100,
					  .dst2 = io.addr + 100 + 128 * 1024, .len = 1 });
	report(c, "dualcast");
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	CHECK(app[100] == 0x99 && app[100 + 128 * 1024] == 0x99);
	CHECK_OK(iovm_rqueue_unmap_mr(r.q, mr));
	CHECK_OK(iovm_mr_dereg(mr));
	a9_close(&r, true);
	CHECK_OK(munmap(app, 64 * 4096));
}

/* Two MRs share a 128K budget; a copy from one to the other, 1 MiB, both unaligned. */
TEST(two_mrs_share_budget)
{
	struct a9 r;
	struct iovm_mr *m1, *m2;
	uint8_t *a1 = a9_pages_64k(264), *a2 = a9_pages_64k(264);
	struct iovm_completion c;
	iovm_iova_t i1, i2;
	size_t len = 1 << 20;

	a9_open(&r, "a9two", "pin_budget=128K", 0);
	fill_rand(a1, 264 * 4096, 11);
	memset(a2, 0, 264 * 4096);
	CHECK_OK(iovm_mr_reg(r.dom, a1 + 777, len, ODPW, &m1));
	CHECK_OK(iovm_mr_reg(r.dom, a2 + 4096 * 5 + 1, len, ODPW, &m2));
	CHECK_OK(iovm_rqueue_map_mr(r.q, m1, IOVM_MAP_READ, &i1));
	CHECK_OK(iovm_rqueue_map_mr(r.q, m2, IOVM_MAP_READ | IOVM_MAP_WRITE, &i2));
	c = a9_go(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = i1.addr, .dst = i2.addr, .len = (uint32_t)len });
	report(c, "two mrs");
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	CHECK(memcmp(a1 + 777, a2 + 4096 * 5 + 1, len) == 0);
	CHECK(a9_all(a2, 0, 4096 * 5 + 1));
	CHECK(a9_stats(r.ctx).odp_pinned_bytes <= 128 * 1024);
	CHECK_OK(iovm_rqueue_unmap_mr(r.q, m1));
	CHECK_OK(iovm_rqueue_unmap_mr(r.q, m2));
	CHECK_OK(iovm_mr_dereg(m1));
	CHECK_OK(iovm_mr_dereg(m2));
	a9_close(&r, true);
	CHECK_OK(munmap(a1, 264 * 4096));
	CHECK_OK(munmap(a2, 264 * 4096));
}

/*
 * The same memory registered twice (overlapping MRs), both mapped: writes
 * through one are read through the other; the budget evicting one MR's
 * pages leaves the other's mapping right.
 */
TEST(same_memory_twice)
{
	struct a9 r;
	struct iovm_mr *m1, *m2;
	uint8_t *app = a9_pages_64k(128);
	struct iovm_completion c;
	iovm_iova_t i1, i2;

	a9_open(&r, "a9twice", "pin_budget=128K", 0);
	memset(app, 0x33, 128 * 4096);
	CHECK_OK(iovm_mr_reg(r.dom, app, 128 * 4096, ODPW, &m1));
	CHECK_OK(iovm_mr_reg(r.dom, app + 4096 * 8, 100 * 4096, ODPW, &m2));
	CHECK_OK(iovm_rqueue_map_mr(r.q, m1, IOVM_MAP_READ | IOVM_MAP_WRITE, &i1));
	CHECK_OK(iovm_rqueue_map_mr(r.q, m2, IOVM_MAP_READ | IOVM_MAP_WRITE, &i2));
	CHECK(i1.addr != i2.addr);
	for (unsigned round = 0; round < 20; round++) {
		size_t off = (round * 37 * 4096 + round * 13) % (90 * 4096);
		uint8_t v = (uint8_t)(0x40 + round);

		c = a9_go(&r, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = i2.addr + off, .len = 5000,
						  .pattern = 0x0101010101010101ull * v });
		report(c, "fill m2");
		CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
		c = a9_go(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = i1.addr + 8 * 4096 + off, .dst = r.ih.addr,
						  .len = 5000 });
		report(c, "read m1");
		CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
		CHECK(a9_all(r.heap, v, 5000));
		CHECK(a9_all(app + 8 * 4096 + off, v, 5000));
		/* m1 -> m2 across the whole overlap: memmove semantics are per IOVA, these are two IOVAs of one memory */
		c = a9_go(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = i1.addr + 120 * 4096, .dst = i2.addr + off + 7,
						  .len = 3000 });
		report(c, "m1 -> m2");
		CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
		CHECK(memcmp(app + 120 * 4096, app + 8 * 4096 + off + 7, 3000) == 0);
	}
	CHECK(a9_stats(r.ctx).odp_pinned_bytes <= 128 * 1024);
	CHECK_EQ(iovm_mr_dereg(m1), -EBUSY);
	CHECK_OK(iovm_rqueue_unmap_mr(r.q, m1));
	/* m2 still works after m1 went */
	CHECK_OK(iovm_mr_dereg(m1));
	c = a9_go(&r, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = i2.addr, .len = 100 * 4096, .pattern = 0 });
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	CHECK(a9_all(app + 8 * 4096, 0, 100 * 4096));
	CHECK(a9_all(app, 0x33, 8 * 4096));
	CHECK_OK(iovm_rqueue_unmap_mr(r.q, m2));
	CHECK_OK(iovm_mr_dereg(m2));
	a9_close(&r, true);
	CHECK_OK(munmap(app, 128 * 4096));
}

int main(void)
{
	test_init();
	A9_RUN(budget64k_aligned);
	A9_RUN(budget128k_unaligned);
	A9_RUN(budget64k_unaligned);
	A9_RUN(dualcast_two_pieces_budget128k);
	A9_RUN(mr_to_mr_budget128k);
	A9_RUN(mr_to_mr_budget128k_unaligned);
	A9_RUN(mr_to_mr_budget64k);
	A9_RUN(two_mrs_share_budget);
	A9_RUN(same_memory_twice);
	return 0;
}
