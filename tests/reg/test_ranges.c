/* SPDX-License-Identifier: MIT */
/*
 * test_ranges.c - counted ranges against a per-page model: the pieces
 * reported crossing zero are exactly the pages whose count did, merged.
 */
#include "reg/ranges.h"
#include "harness.h"

#define PAGES 512

static unsigned model[PAGES];
static int events[PAGES]; /* +1 locked, -1 unlocked, per page, by the callbacks */

static int on_up(void *arg, uint64_t s, uint64_t e)
{
	(void)arg;
	CHECK(s < e && e <= PAGES);
	for (uint64_t p = s; p < e; p++)
		events[p]++;
	return 0;
}

static int on_down(void *arg, uint64_t s, uint64_t e)
{
	(void)arg;
	CHECK(s < e && e <= PAGES);
	for (uint64_t p = s; p < e; p++)
		events[p]--;
	return 0;
}

static int fail_at_200(void *arg, uint64_t s, uint64_t e)
{
	(void)arg;
	if (s <= 200 && e > 200)
		return -EIO;
	return on_up(NULL, s, e);
}

struct pieces {
	uint64_t seen[PAGES];
	uint64_t last_end;
	bool first;
};

/* ranges_for_each(): pieces in order, each maximal (none touches the one before). */
static int on_piece(void *arg, uint64_t s, uint64_t e)
{
	struct pieces *pc = arg;

	CHECK(s < e && e <= PAGES);
	CHECK(pc->first || s > pc->last_end);
	pc->first = false;
	pc->last_end = e;
	for (uint64_t p = s; p < e; p++)
		pc->seen[p]++;
	return 0;
}

/* Every page counted at least once is in exactly one piece; no other page is. */
static void check_pieces(const struct ranges *r)
{
	static struct pieces pc;

	memset(&pc, 0, sizeof(pc));
	pc.first = true;
	ranges_for_each(r, on_piece, &pc);
	for (unsigned p = 0; p < PAGES; p++)
		CHECK_EQ(pc.seen[p], model[p] ? 1 : 0);
}

TEST(against_model)
{
	struct ranges r;
	uint64_t seed = 7;

	ranges_init(&r);
	for (unsigned round = 0; round < 5000; round++) {
		uint64_t s = test_rand(&seed) % PAGES, e = s + 1 + test_rand(&seed) % 64;
		bool up = test_rand(&seed) % 2;

		if (e > PAGES)
			e = PAGES;
		/* Only remove what is there, as registrations do. */
		for (uint64_t p = s; p < e && !up; p++)
			if (!model[p])
				up = true;
		if (up) {
			CHECK_OK(ranges_add(&r, s, e, on_up, on_down, NULL));
			for (uint64_t p = s; p < e; p++)
				model[p]++;
		} else {
			ranges_remove(&r, s, e, on_down, NULL);
			for (uint64_t p = s; p < e; p++)
				model[p]--;
		}
		for (uint64_t p = 0; p < PAGES; p += 7) {
			CHECK_EQ(ranges_count(&r, p), model[p]);
			CHECK_EQ(events[p], model[p] ? 1 : 0);
		}
		if (round % 50 == 0)
			check_pieces(&r);
	}
	/* Neighbours with one count are one segment: never more segments than count changes. */
	{
		uint64_t changes = 1;

		for (unsigned p = 1; p < PAGES; p++)
			changes += model[p] != model[p - 1];
		CHECK(r.segments <= changes);
	}
	ranges_destroy(&r);
}

TEST(failed_add_is_undone)
{
	struct ranges r;

	ranges_init(&r);
	memset(events, 0, sizeof(events));
	CHECK_OK(ranges_add(&r, 100, 150, on_up, on_down, NULL));
	/* The callback fails for the piece holding page 200: everything taken is given back. */
	CHECK_EQ(ranges_add(&r, 120, 300, fail_at_200, on_down, NULL), -EIO);
	CHECK_EQ(ranges_count(&r, 120), 1);
	CHECK_EQ(ranges_count(&r, 160), 0);
	CHECK_EQ(ranges_count(&r, 250), 0);
	for (unsigned p = 0; p < PAGES; p++)
		CHECK_EQ(events[p], p >= 100 && p < 150 ? 1 : 0);
	CHECK_EQ(ranges_add(&r, 5, 5, on_up, on_down, NULL), -EINVAL);
	ranges_destroy(&r);
}

int main(void)
{
	test_init();
	RUN(against_model);
	RUN(failed_add_is_undone);
	return 0;
}
