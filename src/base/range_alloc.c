/* SPDX-License-Identifier: MIT */
/*
 * range_alloc.c - the gap tree.
 */
#include <errno.h>
#include <stdlib.h>

#include "base/compiler.h"
#include "base/fault_inject.h"
#include "base/range_alloc.h"

/* Enough spare nodes for a burst of splits without calling malloc. */
#define RA_SPARE_MAX 32
/*
 * A free must not fail: callers give ranges back on their error paths and
 * in functions that cannot fail, and a range a free could not record would
 * be lost for good. A free that makes a new hole needs a node, so every
 * allocation first makes sure of RA_SPARE_MIN spare nodes (failing, with
 * nothing changed, when it cannot), and a free that takes one tries to put
 * one back. Only RA_SPARE_MIN frees in a row, each needing a node, each
 * with malloc() failing, could then fail.
 */
#define RA_SPARE_MIN 2

#define node_of(n) rb_entry(n, struct range_node, rb)

static uint64_t node_end(const struct range_node *r)
{
	return r->start + r->len;
}

static bool range_augment(struct rb_node *n)
{
	struct range_node *r = node_of(n);
	uint64_t m = r->len;

	if (n->left)
		m = MAX(m, node_of(n->left)->max_len);
	if (n->right)
		m = MAX(m, node_of(n->right)->max_len);
	if (m == r->max_len)
		return false;
	r->max_len = m;
	return true;
}

void ra_init(struct range_alloc *ra)
{
	*ra = (struct range_alloc){ 0 };
	rb_root_init(&ra->tree, range_augment);
}

static struct range_node *node_get(struct range_alloc *ra)
{
	struct range_node *r = ra->spare;

	if (r) {
		ra->spare = (struct range_node *)r->rb.parent;
		ra->nr_spare--;
		return r;
	}
	return fi_malloc(sizeof(*r));
}

static void node_put(struct range_alloc *ra, struct range_node *r)
{
	if (ra->nr_spare >= RA_SPARE_MAX) {
		free(r);
		return;
	}
	r->rb.parent = (struct rb_node *)ra->spare;
	ra->spare = r;
	ra->nr_spare++;
}

/* Top the spare nodes up to RA_SPARE_MIN; -ENOMEM when malloc() fails. */
static int spare_fill(struct range_alloc *ra)
{
	while (ra->nr_spare < RA_SPARE_MIN) {
		struct range_node *r = fi_malloc(sizeof(*r));

		if (!r)
			return -ENOMEM;
		node_put(ra, r);
	}
	return 0;
}

void ra_destroy(struct range_alloc *ra)
{
	struct rb_node *n;

	while ((n = ra->tree.root)) {
		rb_erase(&ra->tree, n);
		free(node_of(n));
	}
	while (ra->spare) {
		struct range_node *r = ra->spare;

		ra->spare = (struct range_node *)r->rb.parent;
		free(r);
	}
	ra->nr_spare = 0;
	ra->free_len = ra->nr_ranges = 0;
}

static void node_insert(struct range_alloc *ra, struct range_node *r)
{
	struct rb_node **link = &ra->tree.root, *parent = NULL;

	while (*link) {
		parent = *link;
		link = r->start < node_of(parent)->start ? &parent->left : &parent->right;
	}
	r->max_len = r->len;
	rb_insert(&ra->tree, &r->rb, parent, link);
	ra->nr_ranges++;
}

static void node_remove(struct range_alloc *ra, struct range_node *r)
{
	rb_erase(&ra->tree, &r->rb);
	ra->nr_ranges--;
	node_put(ra, r);
}

/* The free range with the largest start <= @addr, or NULL. */
static struct range_node *find_le(const struct range_alloc *ra, uint64_t addr)
{
	struct rb_node *n = ra->tree.root;
	struct range_node *best = NULL;

	while (n) {
		struct range_node *r = node_of(n);

		if (r->start <= addr) {
			best = r;
			n = n->right;
		} else {
			n = n->left;
		}
	}
	return best;
}

/* The free range with the smallest start > @addr, or NULL. */
static struct range_node *find_gt(const struct range_alloc *ra, uint64_t addr)
{
	struct rb_node *n = ra->tree.root;
	struct range_node *best = NULL;

	while (n) {
		struct range_node *r = node_of(n);

		if (r->start > addr) {
			best = r;
			n = n->left;
		} else {
			n = n->right;
		}
	}
	return best;
}

int ra_free(struct range_alloc *ra, uint64_t start, uint64_t len)
{
	struct range_node *prev, *next, *r;
	uint64_t end = start + len;

	if (!len || end < start)
		return -EINVAL;
	prev = find_le(ra, start);
	next = find_gt(ra, start);
	if (prev && node_end(prev) > start)
		return -EINVAL;
	if (next && next->start < end)
		return -EINVAL;

	if (prev && node_end(prev) == start) {
		prev->len += len;
		if (next && next->start == end) {
			prev->len += next->len;
			node_remove(ra, next);
		}
		rb_propagate(&ra->tree, &prev->rb);
	} else if (next && next->start == end) {
		/* Moving next's start down keeps the order: it stays above prev. */
		next->start = start;
		next->len += len;
		rb_propagate(&ra->tree, &next->rb);
	} else {
		r = node_get(ra);
		if (!r)
			return -ENOMEM;
		r->start = start;
		r->len = len;
		node_insert(ra, r);
		spare_fill(ra); /* for the next free; if it fails, the next allocation tries again */
	}
	ra->free_len += len;
	return 0;
}

/* Take [start, start+len) out of the free range @r, which contains it. */
static int carve(struct range_alloc *ra, struct range_node *r, uint64_t start, uint64_t len)
{
	uint64_t end = start + len, r_end = node_end(r);

	if (start == r->start && end == r_end) {
		node_remove(ra, r);
	} else if (start == r->start) {
		r->start = end;
		r->len = r_end - end;
		rb_propagate(&ra->tree, &r->rb);
	} else if (end == r_end) {
		r->len = start - r->start;
		rb_propagate(&ra->tree, &r->rb);
	} else {
		struct range_node *tail = node_get(ra);

		if (!tail)
			return -ENOMEM;
		r->len = start - r->start;
		rb_propagate(&ra->tree, &r->rb);
		tail->start = end;
		tail->len = r_end - end;
		node_insert(ra, tail);
	}
	ra->free_len -= len;
	return 0;
}

/* Lowest address in [s, e) where @q fits, if any. */
static bool fit_low(const struct range_req *q, uint64_t s, uint64_t e, uint64_t *out)
{
	uint64_t a;

	s = MAX(s, q->lo);
	e = MIN(e, q->hi);
	if (s >= e || e - s < q->len)
		return false;
	a = align_up(s, q->align);
	if (a < s) /* wrapped */
		return false;
	if (q->bound && align_down(a, q->bound) != align_down(a + q->len - 1, q->bound)) {
		a = align_up(a + 1, q->bound);
		if (!a)
			return false;
	}
	if (a > e || e - a < q->len)
		return false;
	*out = a;
	return true;
}

/* Highest address in [s, e) where @q fits, if any. */
static bool fit_high(const struct range_req *q, uint64_t s, uint64_t e, uint64_t *out)
{
	uint64_t a, b;

	s = MAX(s, q->lo);
	e = MIN(e, q->hi);
	if (s >= e || e - s < q->len)
		return false;
	a = align_down(e - q->len, q->align);
	if (q->bound) {
		b = align_down(a + q->len - 1, q->bound);
		if (a < b) {
			if (b - s < q->len)
				return false;
			a = align_down(b - q->len, q->align);
		}
	}
	if (a < s)
		return false;
	*out = a;
	return true;
}

static struct range_node *search_low(struct rb_node *n, const struct range_req *q, uint64_t *out)
{
	while (n) {
		struct range_node *r = node_of(n), *found;

		if (r->max_len < q->len)
			return NULL;
		/* Everything left of r ends at or below r->start. */
		if (n->left && r->start > q->lo) {
			found = search_low(n->left, q, out);
			if (found)
				return found;
		}
		if (r->start >= q->hi)
			return NULL;
		if (fit_low(q, r->start, node_end(r), out))
			return r;
		n = n->right;
	}
	return NULL;
}

static struct range_node *search_high(struct rb_node *n, const struct range_req *q, uint64_t *out)
{
	while (n) {
		struct range_node *r = node_of(n), *found;

		if (r->max_len < q->len)
			return NULL;
		/* Everything right of r starts at or above its end. */
		if (n->right && node_end(r) < q->hi) {
			found = search_high(n->right, q, out);
			if (found)
				return found;
		}
		if (node_end(r) <= q->lo)
			return NULL;
		if (fit_high(q, r->start, node_end(r), out))
			return r;
		n = n->left;
	}
	return NULL;
}

int ra_alloc(struct range_alloc *ra, const struct range_req *req, uint64_t *start)
{
	struct range_req q = *req;
	struct range_node *r;
	uint64_t a;

	if (!q.len || (q.align > 1 && !is_pow2(q.align)) || (q.bound && !is_pow2(q.bound)) ||
	    (q.bound && q.len > q.bound) || q.hi <= q.lo)
		return -EINVAL;
	if (q.align < 1)
		q.align = 1;
	if (spare_fill(ra))
		return -ENOMEM;
	r = q.topdown ? search_high(ra->tree.root, &q, &a) : search_low(ra->tree.root, &q, &a);
	if (!r)
		return -ENOSPC;
	if (carve(ra, r, a, q.len))
		return -ENOMEM;
	*start = a;
	return 0;
}

int ra_reserve(struct range_alloc *ra, uint64_t start, uint64_t len)
{
	struct range_node *r;

	if (!len || start + len < start)
		return -EINVAL;
	r = find_le(ra, start);
	if (!r || node_end(r) < start + len)
		return -EBUSY;
	if (spare_fill(ra))
		return -ENOMEM;
	return carve(ra, r, start, len);
}

bool ra_is_free(const struct range_alloc *ra, uint64_t start, uint64_t len)
{
	struct range_node *r = find_le(ra, start);

	return len && start + len > start && r && node_end(r) >= start + len;
}
