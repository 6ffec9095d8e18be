/* SPDX-License-Identifier: MIT */
/*
 * itree.h - an interval tree: closed ranges [start, last] that may overlap,
 * found by any range they overlap in O(log n + k). A red-black tree ordered
 * by start, each node summarising the largest last of its subtree (as
 * Linux's interval_tree), for memory registrations indexed by address.
 */
#ifndef IOVM_BASE_ITREE_H
#define IOVM_BASE_ITREE_H

#include <stdint.h>

#include "base/rbtree.h"

struct itree_node {
	struct rb_node rb;
	uint64_t start, last;   /* the range, inclusive */
	uint64_t subtree_last;  /* the largest last below, this node included */
};

struct itree {
	struct rb_root root;
};

void itree_init(struct itree *t);
/* Insert @n with its start and last set. */
void itree_insert(struct itree *t, struct itree_node *n);
void itree_remove(struct itree *t, struct itree_node *n);

/* The first node, by start, that overlaps [start, last]; NULL if none. */
struct itree_node *itree_first(const struct itree *t, uint64_t start, uint64_t last);
/* The next node after @n that overlaps [start, last]. */
struct itree_node *itree_next(const struct itree_node *n, uint64_t start, uint64_t last);

#define itree_for_each(n, t, s, l) for ((n) = itree_first((t), (s), (l)); (n); (n) = itree_next((n), (s), (l)))

#endif /* IOVM_BASE_ITREE_H */
