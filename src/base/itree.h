/* SPDX-License-Identifier: MIT */
/*
 * itree.h - an interval tree: ranges that may overlap, found by any range
 * they overlap in O(log n + k). A red-black tree ordered by start, each
 * node summarising the largest last byte of its subtree (as Linux's
 * interval_tree), for memory registrations and kernel mappings indexed by
 * address.
 *
 * Its users give ranges as iovm does everywhere, (start, len) in bytes,
 * half-open: itree_node_set(), itree_first_in(), itree_for_each_in().
 * Inside, a node keeps its inclusive last byte, which is what the subtree
 * summary compares, and what a range that ends at 2^64 still has in 64
 * bits.
 */
#ifndef IOVM_BASE_ITREE_H
#define IOVM_BASE_ITREE_H

#include <stdint.h>

#include "base/rbtree.h"

struct itree_node {
	struct rb_node rb;
	uint64_t start, last;   /* the range, inclusive: set with itree_node_set() */
	uint64_t subtree_last;  /* the largest last below, this node included */
};

struct itree {
	struct rb_root root;
};

void itree_init(struct itree *t);
/* Insert @n with its range set. */
void itree_insert(struct itree *t, struct itree_node *n);
void itree_remove(struct itree *t, struct itree_node *n);

/* The last byte of [start, start + len), len > 0; 2^64 - 1 for a range that runs past it. */
static inline uint64_t itree_last_of(uint64_t start, uint64_t len)
{
	return len - 1 > UINT64_MAX - start ? UINT64_MAX : start + (len - 1);
}

/* Set @n (not in a tree) to [start, start + len), len > 0. */
static inline void itree_node_set(struct itree_node *n, uint64_t start, uint64_t len)
{
	n->start = start;
	n->last = itree_last_of(start, len);
}

/* The bytes of @n's range; 0 for the whole of [0, 2^64), which no length can say. */
static inline uint64_t itree_node_len(const struct itree_node *n)
{
	return n->last - n->start + 1;
}

/*
 * The tree's own, inclusive form, which the (start, len) one below wraps:
 * for itree.c and its test. Users call the (start, len) form.
 */
/* The first node, by start, that overlaps [start, last]; NULL if none. */
struct itree_node *itree_first(const struct itree *t, uint64_t start, uint64_t last);
/* The next node after @n that overlaps [start, last]. */
struct itree_node *itree_next(const struct itree_node *n, uint64_t start, uint64_t last);

#define itree_for_each(n, t, s, l) for ((n) = itree_first((t), (s), (l)); (n); (n) = itree_next((n), (s), (l)))

/* The first node, by start, that overlaps [start, start + len); NULL if none, or if @len is 0. */
static inline struct itree_node *itree_first_in(const struct itree *t, uint64_t start, uint64_t len)
{
	return len ? itree_first(t, start, itree_last_of(start, len)) : NULL;
}

/* The next node after @n that overlaps [start, start + len) (len > 0). */
static inline struct itree_node *itree_next_in(const struct itree_node *n, uint64_t start, uint64_t len)
{
	return itree_next(n, start, itree_last_of(start, len));
}

#define itree_for_each_in(n, t, s, len) \
	for ((n) = itree_first_in((t), (s), (len)); (n); (n) = itree_next_in((n), (s), (len)))

/* The node that starts first (any node), or NULL when the tree is empty. */
static inline struct itree_node *itree_min(const struct itree *t)
{
	return itree_first(t, 0, UINT64_MAX);
}

/* Every node, by start; none may be removed on the way. */
#define itree_for_each_node(n, t) for ((n) = itree_min(t); (n); (n) = itree_next((n), 0, UINT64_MAX))

#endif /* IOVM_BASE_ITREE_H */
