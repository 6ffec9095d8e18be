/* SPDX-License-Identifier: MIT */
/*
 * test_itree.c - the interval tree against a brute-force model: random
 * inserts, removals and overlap queries.
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

int main(void)
{
	test_init();
	RUN(against_model);
	return 0;
}
