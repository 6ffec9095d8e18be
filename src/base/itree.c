/* SPDX-License-Identifier: MIT */
/*
 * itree.c - interval tree over the augmented red-black tree.
 */
#include "base/itree.h"

static struct itree_node *node_of(const struct rb_node *rb)
{
	return rb ? rb_entry(rb, struct itree_node, rb) : NULL;
}

static uint64_t sub_last(const struct rb_node *rb)
{
	return rb ? node_of(rb)->subtree_last : 0;
}

static bool augment(struct rb_node *rb)
{
	struct itree_node *n = node_of(rb);
	uint64_t m = n->last;

	if (sub_last(rb->left) > m)
		m = sub_last(rb->left);
	if (sub_last(rb->right) > m)
		m = sub_last(rb->right);
	if (n->subtree_last == m)
		return false;
	n->subtree_last = m;
	return true;
}

void itree_init(struct itree *t)
{
	rb_root_init(&t->root, augment);
}

void itree_insert(struct itree *t, struct itree_node *n)
{
	struct rb_node **link = &t->root.root, *parent = NULL;

	n->subtree_last = n->last;
	while (*link) {
		parent = *link;
		link = n->start < node_of(parent)->start ? &parent->left : &parent->right;
	}
	rb_insert(&t->root, &n->rb, parent, link);
}

void itree_remove(struct itree *t, struct itree_node *n)
{
	rb_erase(&t->root, &n->rb);
}

/* The leftmost node of @rb's subtree that overlaps [start, last]. */
static struct itree_node *subtree_first(struct rb_node *rb, uint64_t start, uint64_t last)
{
	while (rb) {
		struct itree_node *n = node_of(rb);

		/* Nothing below ends at or after start: no overlap here. */
		if (n->subtree_last < start)
			return NULL;
		if (rb->left && node_of(rb->left)->subtree_last >= start) {
			rb = rb->left;
			continue;
		}
		if (n->start > last)
			return NULL; /* it, and all to its right, start after the range */
		if (n->last >= start)
			return n;
		rb = rb->right;
	}
	return NULL;
}

struct itree_node *itree_first(const struct itree *t, uint64_t start, uint64_t last)
{
	return subtree_first(t->root.root, start, last);
}

struct itree_node *itree_next(const struct itree_node *n, uint64_t start, uint64_t last)
{
	const struct rb_node *rb = &n->rb;

	for (;;) {
		struct itree_node *found;

		/* First, what is to the right, below. */
		if (rb->right && (found = subtree_first(rb->right, start, last)))
			return found;
		/* Then up: the first ancestor we reach from its left subtree. */
		while (rb->parent && rb == rb->parent->right)
			rb = rb->parent;
		rb = rb->parent;
		if (!rb)
			return NULL;
		found = node_of(rb);
		if (found->start > last)
			return NULL;
		if (found->last >= start)
			return found;
	}
}
