/* SPDX-License-Identifier: MIT */
/*
 * test_range_alloc.c - the gap tree against a bitmap model: random
 * allocations with alignment, boundary and limits, frees, reservations,
 * bottom-up and top-down, with the tree's red-black and augmented
 * invariants checked throughout.
 */
#include "base/compiler.h"
#include "base/fault_inject.h"
#include "base/range_alloc.h"
#include "harness.h"

#define SPAN 4096

static uint8_t model[SPAN]; /* 1 = free */

#define node_of(n) rb_entry(n, struct range_node, rb)

/* Black height of the subtree, checking colours, order and summaries on the way. */
static int check_subtree(struct rb_node *n, uint64_t *prev_end, uint64_t *free_sum, unsigned *count)
{
	struct range_node *r;
	uint64_t m;
	int lh, rh;

	if (!n)
		return 1;
	r = node_of(n);
	if (n->red) {
		CHECK(!n->left || !n->left->red);
		CHECK(!n->right || !n->right->red);
	}
	if (n->left)
		CHECK(n->left->parent == n);
	if (n->right)
		CHECK(n->right->parent == n);
	lh = check_subtree(n->left, prev_end, free_sum, count);
	/* In order: after the previous range, and never touching it (it would have merged). */
	CHECK(r->len > 0);
	CHECK(*prev_end == UINT64_MAX || r->start > *prev_end);
	*prev_end = r->start + r->len;
	*free_sum += r->len;
	(*count)++;
	rh = check_subtree(n->right, prev_end, free_sum, count);
	CHECK_EQ(lh, rh);
	m = r->len;
	if (n->left)
		m = MAX(m, node_of(n->left)->max_len);
	if (n->right)
		m = MAX(m, node_of(n->right)->max_len);
	CHECK_EQ(r->max_len, m);
	return lh + !n->red;
}

static void check_tree(struct range_alloc *ra)
{
	uint64_t prev_end = UINT64_MAX, sum = 0, model_free = 0;
	unsigned count = 0;

	if (ra->tree.root)
		CHECK(!ra->tree.root->red);
	check_subtree(ra->tree.root, &prev_end, &sum, &count);
	CHECK_EQ(sum, ra->free_len);
	CHECK_EQ(count, ra->nr_ranges);
	for (unsigned i = 0; i < SPAN; i++)
		model_free += model[i];
	CHECK_EQ(model_free, ra->free_len);
	for (struct rb_node *n = rb_first(&ra->tree); n; n = rb_next(n))
		for (uint64_t a = node_of(n)->start; a < node_of(n)->start + node_of(n)->len; a++)
			CHECK(model[a]);
}

/* The answer the model gives for the lowest (or highest) fit. */
static bool model_fit(const struct range_req *q, uint64_t *out)
{
	for (uint64_t i = 0; i + q->len <= SPAN; i++) {
		uint64_t a = q->topdown ? SPAN - q->len - i : i;
		bool ok = a >= q->lo && a + q->len <= q->hi && (!q->align || a % q->align == 0);

		if (ok && q->bound && a / q->bound != (a + q->len - 1) / q->bound)
			ok = false;
		for (uint64_t j = 0; ok && j < q->len; j++)
			ok = model[a + j];
		if (ok) {
			*out = a;
			return true;
		}
	}
	return false;
}

TEST(basic)
{
	struct range_alloc ra;
	struct range_req q = { .len = 10, .align = 1, .lo = 0, .hi = UINT64_MAX };
	uint64_t a;

	ra_init(&ra);
	CHECK_EQ(ra_alloc(&ra, &q, &a), -ENOSPC);
	CHECK_OK(ra_free(&ra, 100, 100));
	CHECK_EQ(ra_largest(&ra), 100);
	CHECK_OK(ra_alloc(&ra, &q, &a));
	CHECK_EQ(a, 100);
	q.topdown = true;
	CHECK_OK(ra_alloc(&ra, &q, &a));
	CHECK_EQ(a, 190);
	/* Double free and overlap are refused, without changing anything. */
	CHECK_EQ(ra_free(&ra, 150, 10), -EINVAL);
	CHECK_EQ(ra_free(&ra, 105, 10), -EINVAL);
	CHECK_EQ(ra_free(&ra, 0, 0), -EINVAL);
	CHECK_EQ(ra_free(&ra, UINT64_MAX - 1, 4), -EINVAL);
	CHECK_OK(ra_free(&ra, 100, 10));
	CHECK_OK(ra_free(&ra, 190, 10));
	CHECK_EQ(ra.nr_ranges, 1);
	CHECK_EQ(ra.free_len, 100);
	/* Reserve exactly, then fail to reserve what is taken. */
	CHECK_OK(ra_reserve(&ra, 120, 30));
	CHECK_EQ(ra_reserve(&ra, 140, 20), -EBUSY);
	CHECK(!ra_is_free(&ra, 120, 1));
	CHECK(ra_is_free(&ra, 150, 50));
	/* Bad requests. */
	q = (struct range_req){ .len = 0, .hi = 10 };
	CHECK_EQ(ra_alloc(&ra, &q, &a), -EINVAL);
	q = (struct range_req){ .len = 4, .align = 3, .hi = UINT64_MAX };
	CHECK_EQ(ra_alloc(&ra, &q, &a), -EINVAL);
	q = (struct range_req){ .len = 16, .bound = 8, .hi = UINT64_MAX };
	CHECK_EQ(ra_alloc(&ra, &q, &a), -EINVAL);
	q = (struct range_req){ .len = 4, .lo = 10, .hi = 10 };
	CHECK_EQ(ra_alloc(&ra, &q, &a), -EINVAL);
	ra_destroy(&ra);
}

TEST(against_model)
{
	uint64_t seed = 0x1234567, live[512][2];
	unsigned nlive = 0;
	struct range_alloc ra;

	ra_init(&ra);
	memset(model, 1, sizeof(model));
	CHECK_OK(ra_free(&ra, 0, SPAN));
	for (int iter = 0; iter < 20000; iter++) {
		uint64_t r = test_rand(&seed);

		if (nlive < 512 && (r % 3 != 0 || nlive == 0)) {
			struct range_req q = {
				.len = 1 + test_rand(&seed) % 64,
				.align = UINT64_C(1) << (test_rand(&seed) % 6),
				.bound = test_rand(&seed) % 4 ? 0 : UINT64_C(64) << (test_rand(&seed) % 3),
				.lo = test_rand(&seed) % 8 ? 0 : test_rand(&seed) % SPAN,
				.hi = SPAN,
				.topdown = test_rand(&seed) % 2,
			};
			uint64_t a, expect;
			bool fits;
			int ret;

			if (q.bound && q.len > q.bound)
				q.len = q.bound;
			if (q.lo >= q.hi)
				q.lo = 0;
			fits = model_fit(&q, &expect);
			ret = ra_alloc(&ra, &q, &a);
			CHECK_EQ(ret, fits ? 0 : -ENOSPC);
			if (!fits)
				continue;
			/* Exactly the lowest (highest) fit: first fit is the policy. */
			CHECK_EQ(a, expect);
			for (uint64_t j = 0; j < q.len; j++)
				model[a + j] = 0;
			live[nlive][0] = a;
			live[nlive][1] = q.len;
			nlive++;
		} else {
			unsigned k = (unsigned)(test_rand(&seed) % nlive);

			CHECK_OK(ra_free(&ra, live[k][0], live[k][1]));
			for (uint64_t j = 0; j < live[k][1]; j++)
				model[live[k][0] + j] = 1;
			live[k][0] = live[nlive - 1][0];
			live[k][1] = live[nlive - 1][1];
			nlive--;
		}
		if (iter % 97 == 0)
			check_tree(&ra);
	}
	while (nlive) {
		nlive--;
		CHECK_OK(ra_free(&ra, live[nlive][0], live[nlive][1]));
		for (uint64_t j = 0; j < live[nlive][1]; j++)
			model[live[nlive][0] + j] = 1;
	}
	check_tree(&ra);
	/* Everything merged back into one range. */
	CHECK_EQ(ra.nr_ranges, 1);
	CHECK_EQ(ra_largest(&ra), SPAN);
	ra_destroy(&ra);
}

TEST(large_span)
{
	struct range_alloc ra;
	struct range_req q = { .len = UINT64_C(1) << 40, .align = UINT64_C(1) << 40,
			       .lo = 0, .hi = UINT64_MAX };
	uint64_t a;

	ra_init(&ra);
	CHECK_OK(ra_free(&ra, 1, UINT64_MAX - 2));
	CHECK_OK(ra_alloc(&ra, &q, &a));
	CHECK_EQ(a, UINT64_C(1) << 40);
	q.topdown = true;
	CHECK_OK(ra_alloc(&ra, &q, &a));
	CHECK(a + q.len <= UINT64_MAX - 1);
	CHECK_EQ(a % q.align, 0);
	ra_destroy(&ra);
}

/*
 * Giving back what was allocated does not fail when malloc() does: callers
 * free on their error paths and in functions that cannot fail, and a range
 * a free could not record would be lost. Each free here opens a hole of its
 * own (its neighbours stay allocated), so each needs a node; every other
 * one runs with the calling thread's next malloc() failing.
 */
TEST(free_survives_allocation_failure)
{
	struct range_req q = { .len = 8, .align = 8, .lo = 0, .hi = SPAN };
	struct range_alloc ra;
	uint64_t a[SPAN / 8];
	unsigned n = 0;
	int ret;

	ra_init(&ra);
	CHECK_OK(ra_free(&ra, 0, SPAN));
	/* Back to back, bottom up: no split, so no node comes free for later. */
	while (n < SPAN / 8 && !ra_alloc(&ra, &q, &a[n]))
		n++;
	CHECK_EQ(n, SPAN / 8);
	CHECK_EQ(ra.free_len, 0);
	for (unsigned i = 0; i < n; i += 2) {
		if (i % 4 == 0)
			fi_arm(FI_ALLOC, 1, 0);
		ret = ra_free(&ra, a[i], 8);
		fi_disarm();
		CHECK_MSG(ret == 0, "free %u of [%" PRIu64 ", +8)%s: %d", i, a[i],
			  i % 4 == 0 ? " with malloc failing" : "", ret);
	}
	CHECK_EQ(ra.free_len, SPAN / 2);
	CHECK_EQ(ra.nr_ranges, SPAN / 16);
	/* An allocation that cannot keep its spares fails whole, taking nothing. */
	for (unsigned i = 0; i < 64; i++) {
		uint64_t got;

		fi_arm(FI_ALLOC, 1, 0);
		ret = ra_alloc(&ra, &q, &got);
		if (fi_disarm()) {
			CHECK_EQ(ret, -ENOMEM);
			CHECK_EQ(ra.free_len, SPAN / 2);
		} else {
			CHECK_OK(ret);
			CHECK_OK(ra_free(&ra, got, 8));
		}
	}
	ra_destroy(&ra);
}

int main(void)
{
	test_init();
	RUN(basic);
	RUN(against_model);
	RUN(large_span);
	RUN(free_survives_allocation_failure);
	return 0;
}
