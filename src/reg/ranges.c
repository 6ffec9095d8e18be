/* SPDX-License-Identifier: MIT */
/*
 * ranges.c - counted ranges as disjoint segments in a red-black tree.
 *
 * An add or remove first splits the segments at its two ends, then walks
 * the segments inside, adjusting counts and creating segments for the
 * holes (count 0 -> 1), and last merges neighbours left with equal counts.
 * Segments at count zero are dropped.
 */
#include <errno.h>
#include <stdlib.h>

#include "base/check.h"
#include "base/compiler.h"
#include "base/fault_inject.h"
#include "reg/ranges.h"

struct seg {
	struct rb_node rb;
	uint64_t start, end; /* [start, end) */
	uint64_t count;
};

static struct seg *seg_of(struct rb_node *n)
{
	return n ? rb_entry(n, struct seg, rb) : NULL;
}

void ranges_init(struct ranges *r)
{
	rb_root_init(&r->tree, NULL);
	r->segments = 0;
}

void ranges_destroy(struct ranges *r)
{
	struct rb_node *n;

	while ((n = rb_first(&r->tree))) {
		rb_erase(&r->tree, n);
		free(seg_of(n));
	}
	r->segments = 0;
}

static void link_seg(struct ranges *r, struct seg *s)
{
	struct rb_node **link = &r->tree.root, *parent = NULL;

	while (*link) {
		parent = *link;
		link = s->start < seg_of(parent)->start ? &parent->left : &parent->right;
	}
	rb_insert(&r->tree, &s->rb, parent, link);
	r->segments++;
}

static void drop_seg(struct ranges *r, struct seg *s)
{
	rb_erase(&r->tree, &s->rb);
	r->segments--;
	free(s);
}

/* The segment holding @addr, or the first one after it. */
static struct seg *seg_at_or_after(const struct ranges *r, uint64_t addr)
{
	struct rb_node *n = r->tree.root;
	struct seg *best = NULL;

	while (n) {
		struct seg *s = seg_of(n);

		if (addr < s->start) {
			best = s;
			n = n->left;
		} else if (addr >= s->end) {
			n = n->right;
		} else {
			return s;
		}
	}
	return best;
}

/* Make @addr a segment boundary. -ENOMEM when the split needs a segment it cannot have. */
static int split_at(struct ranges *r, uint64_t addr)
{
	struct seg *s = seg_at_or_after(r, addr), *t;

	if (!s || s->start >= addr)
		return 0;
	t = fi_malloc(sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->start = addr;
	t->end = s->end;
	t->count = s->count;
	s->end = addr;
	link_seg(r, t);
	return 0;
}

/* Merge neighbours with equal counts around [start, end). */
static void merge_around(struct ranges *r, uint64_t start, uint64_t end)
{
	struct seg *s = seg_at_or_after(r, start ? start - 1 : 0);

	while (s && s->start <= end) {
		struct seg *next = seg_of(rb_next(&s->rb));

		if (next && next->start == s->end && next->count == s->count) {
			s->end = next->end;
			drop_seg(r, next);
			continue;
		}
		s = next;
	}
}

/*
 * Add @delta (+1 or -1) to [start, end), calling @fn on pieces crossing
 * zero. *@reached says how far the counts changed: all of it, but for +1
 * where a segment for a hole could not be had or @fn failed on it.
 */
static int adjust(struct ranges *r, uint64_t start, uint64_t end, int delta, ranges_fn fn, void *arg,
		  uint64_t *reached)
{
	uint64_t at = start;
	struct seg *s;
	int ret = 0;

	*reached = start;
	if (split_at(r, start) || split_at(r, end)) {
		merge_around(r, start, end);
		return -ENOMEM;
	}
	s = seg_at_or_after(r, start);
	while (at < end) {
		uint64_t upto = s && s->start < end ? s->start : end;

		if (at < upto) {
			/* A hole: count 0. Never less: a remove has its add. */
			IOVM_WARN_ON(delta < 0);
			if (delta > 0) {
				struct seg *h = fi_malloc(sizeof(*h));

				if (!h) {
					ret = -ENOMEM;
					break;
				}
				h->start = at;
				h->end = upto;
				h->count = 1;
				link_seg(r, h);
				if (fn && (ret = fn(arg, at, upto))) {
					/* Stop here: what is before is counted and done, this and after are not. */
					drop_seg(r, h);
					break;
				}
			}
			at = upto;
			continue;
		}
		/* s starts at @at. */
		{
			struct seg *next = seg_of(rb_next(&s->rb));

			at = s->end;
			if (delta > 0) {
				s->count++;
			} else if (!--s->count) {
				if (fn)
					fn(arg, s->start, s->end);
				drop_seg(r, s);
			}
			s = next;
		}
	}
	*reached = at;
	merge_around(r, start, end);
	return ret;
}

int ranges_add(struct ranges *r, uint64_t start, uint64_t end, ranges_fn fn, ranges_fn undo, void *arg)
{
	uint64_t reached, back;
	int ret;

	if (start >= end)
		return -EINVAL;
	ret = adjust(r, start, end, +1, fn, arg, &reached);
	if (ret) {
		/* Take back the counts taken, and what fn did for the pieces that were at zero. */
		adjust(r, start, reached, -1, undo, arg, &back);
	}
	return ret;
}

void ranges_remove(struct ranges *r, uint64_t start, uint64_t end, ranges_fn fn, void *arg)
{
	uint64_t reached;

	/* Splitting at the ends may fail for memory: the counts stay, nothing worse. */
	if (start < end)
		adjust(r, start, end, -1, fn, arg, &reached);
}

void ranges_for_each(const struct ranges *r, ranges_fn fn, void *arg)
{
	struct seg *s = seg_of(rb_first(&r->tree));

	while (s) {
		uint64_t start = s->start, end = s->end;

		/* Neighbours with other counts are one piece. */
		for (s = seg_of(rb_next(&s->rb)); s && s->start == end; s = seg_of(rb_next(&s->rb)))
			end = s->end;
		fn(arg, start, end);
	}
}

uint64_t ranges_count(const struct ranges *r, uint64_t addr)
{
	struct seg *s = seg_at_or_after(r, addr);

	return s && s->start <= addr ? s->count : 0;
}
