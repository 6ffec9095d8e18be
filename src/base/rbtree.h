/* SPDX-License-Identifier: MIT */
/*
 * rbtree.h - intrusive red-black tree with an optional augmented value.
 *
 * The caller walks the tree to find where a node goes (it knows the key),
 * then links it with rb_insert(); the tree only rebalances. An augment
 * callback, when set, recomputes a node's summary of its subtree (the
 * largest free gap below it, for the range allocator); the tree calls it on
 * every node whose subtree changed, so summaries are exact after each
 * insert and erase, in O(log n).
 */
#ifndef IOVM_BASE_RBTREE_H
#define IOVM_BASE_RBTREE_H

#include <stdbool.h>
#include <stddef.h>

#include "base/compiler.h"

struct rb_node {
	struct rb_node *parent, *left, *right;
	bool red;
};

/*
 * rb_augment_fn - recompute @n's summary from @n and its children's summaries.
 * Returns true when the summary changed, so that propagation to the root may
 * stop early when it did not.
 */
typedef bool (*rb_augment_fn)(struct rb_node *n);

struct rb_root {
	struct rb_node *root;
	rb_augment_fn augment; /* NULL for a plain tree */
};

#define rb_entry(ptr, type, member) container_of(ptr, type, member)

static inline void rb_root_init(struct rb_root *t, rb_augment_fn augment)
{
	t->root = NULL;
	t->augment = augment;
}

/* Link @n at *@link under @parent (both found by the caller's descent), then rebalance. */
void rb_insert(struct rb_root *t, struct rb_node *n, struct rb_node *parent, struct rb_node **link);

void rb_erase(struct rb_root *t, struct rb_node *n);

/* Recompute summaries from @n up to the root, after @n's own key data changed. */
void rb_propagate(struct rb_root *t, struct rb_node *n);

struct rb_node *rb_first(const struct rb_root *t);
struct rb_node *rb_last(const struct rb_root *t);
struct rb_node *rb_next(const struct rb_node *n);
struct rb_node *rb_prev(const struct rb_node *n);

#endif /* IOVM_BASE_RBTREE_H */
