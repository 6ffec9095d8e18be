/* SPDX-License-Identifier: MIT */
/*
 * test_itree.c - the interval tree against a brute-force model: random
 * inserts, removals and overlap queries, by inclusive bounds and by
 * (start, len); ranges that end at 2^64.
 */
#include <stdlib.h>

#include "base/itree.h"
#include "harness.h"

#define N 600

static struct itree_node nodes[N];
static bool in[N];

/* Every node the tree finds overlaps, in order of start, and none is missed. */
static void query(struct itree *t, uint64_t s, uint64_t l)
{
	bool seen[N] = { false };
	uint64_t last_start = 0;
	struct itree_node *n;
	unsigned found = 0, expect = 0;

	itree_for_each(n, t, s, l) {
		unsigned i = (unsigned)(n - nodes);

		CHECK(i < N && in[i] && !seen[i]);
		CHECK(n->start <= l && n->last >= s);
		CHECK(n->start >= last_start);
		last_start = n->start;
		seen[i] = true;
		found++;
	}
	for (unsigned i = 0; i < N; i++)
		if (in[i] && nodes[i].start <= l && nodes[i].last >= s)
			expect++;
	CHECK_EQ(found, expect);
}

TEST(against_model)
{
	struct itree t;
	uint64_t seed = 42;

	itree_init(&t);
	CHECK(itree_first(&t, 0, UINT64_MAX) == NULL);
	for (unsigned round = 0; round < 20000; round++) {
		unsigned i = (unsigned)(test_rand(&seed) % N);
		uint64_t s = test_rand(&seed) % 100000, len = test_rand(&seed) % 3000;

		if (in[i]) {
			itree_remove(&t, &nodes[i]);
			in[i] = false;
		} else {
			nodes[i].start = s;
			nodes[i].last = s + len;
			itree_insert(&t, &nodes[i]);
			in[i] = true;
		}
		if (round % 50 == 0)
			query(&t, s, s + test_rand(&seed) % 5000);
	}
	query(&t, 0, UINT64_MAX);
	query(&t, 50000, 50000);
}

/* A (start, len) query finds what the inclusive one for [start, start + len - 1] finds, in order. */
static void query_in(struct itree *t, uint64_t s, uint64_t len)
{
	struct itree_node *n, *m = itree_first(t, s, s + len - 1);
	unsigned found = 0;

	itree_for_each_in(n, t, s, len) {
		CHECK(n == m);
		CHECK(itree_node_len(n) > 0 && n->start < s + len && n->start + itree_node_len(n) > s);
		m = itree_next(m, s, s + len - 1);
		found++;
	}
	CHECK(m == NULL);
	CHECK(found <= N);
}

TEST(start_len_against_inclusive)
{
	struct itree t;
	uint64_t seed = 43;

	memset(in, 0, sizeof(in));
	itree_init(&t);
	CHECK(itree_min(&t) == NULL);
	CHECK(itree_first_in(&t, 0, 100) == NULL);
	for (unsigned round = 0; round < 20000; round++) {
		unsigned i = (unsigned)(test_rand(&seed) % N);
		uint64_t s = test_rand(&seed) % 100000, len = 1 + test_rand(&seed) % 3000;

		if (in[i]) {
			itree_remove(&t, &nodes[i]);
			in[i] = false;
		} else {
			itree_node_set(&nodes[i], s, len);
			CHECK_EQ(itree_node_len(&nodes[i]), len);
			itree_insert(&t, &nodes[i]);
			in[i] = true;
		}
		if (round % 50 == 0)
			query_in(&t, s, 1 + test_rand(&seed) % 5000);
	}
	/* The smallest start is what itree_min() gives. */
	for (unsigned i = 0; i < N; i++)
		if (in[i])
			CHECK(itree_min(&t)->start <= nodes[i].start);
	/* An empty query finds nothing, though every range overlaps its start's neighbourhood. */
	CHECK(itree_first_in(&t, 0, 0) == NULL);
	query_in(&t, 50000, 1);
}

/* Ranges at the top of the space: one that ends at 2^64 keeps its length; a query that would run past ends there. */
TEST(up_to_two_to_the_64)
{
	struct itree t;
	struct itree_node top, low;

	itree_init(&t);
	itree_node_set(&top, UINT64_MAX - 0xfff, 0x1000); /* ends exactly at 2^64 */
	itree_node_set(&low, 0x1000, 0x1000);
	CHECK_EQ(top.last, UINT64_MAX);
	CHECK_EQ(itree_node_len(&top), 0x1000);
	itree_insert(&t, &top);
	itree_insert(&t, &low);
	CHECK(itree_first_in(&t, UINT64_MAX, 1) == &top);
	CHECK(itree_first_in(&t, UINT64_MAX - 0x1fff, UINT64_MAX) == &top); /* runs past 2^64: clipped */
	CHECK(itree_first_in(&t, 0x2000, UINT64_MAX - 0x2fff) == NULL);    /* ends right before top */
	CHECK(itree_first_in(&t, 0x1fff, 1) == &low);
	CHECK(itree_first_in(&t, 0x2000, 1) == NULL);
	CHECK(itree_min(&t) == &low);
	/* The longest range a length can say ends at 2^64 too; all of [0, 2^64), set inclusively, says 0. */
	itree_remove(&t, &low);
	itree_node_set(&low, 1, UINT64_MAX);
	CHECK_EQ(low.last, UINT64_MAX);
	CHECK_EQ(itree_node_len(&low), UINT64_MAX);
	low.start = 0;
	CHECK_EQ(itree_node_len(&low), 0);
}

int main(void)
{
	test_init();
	RUN(against_model);
	RUN(start_len_against_inclusive);
	RUN(up_to_two_to_the_64);
	return 0;
}
