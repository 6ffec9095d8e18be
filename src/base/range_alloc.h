/* SPDX-License-Identifier: MIT */
/*
 * range_alloc.h - a gap tree: allocation of ranges of any size, alignment and
 * boundary inside a span of integers, in O(log n).
 *
 * The free ranges are kept in a red-black tree ordered by start address;
 * every node also holds the largest free length in its subtree, so a search
 * skips any subtree where the request cannot fit. Freed ranges merge with
 * their neighbours at once, so the tree holds one node per hole.
 *
 * It manages anything addressed by integers: the heap's virtual pages, a
 * memfd's offsets, the emulated physical address space, IOVAs.
 *
 * Not thread-safe: the owner holds its own lock around every call.
 */
#ifndef IOVM_BASE_RANGE_ALLOC_H
#define IOVM_BASE_RANGE_ALLOC_H

#include <stdbool.h>
#include <stdint.h>

#include "base/rbtree.h"

struct range_node {
	struct rb_node rb;
	uint64_t start;
	uint64_t len;
	uint64_t max_len; /* largest len in this subtree */
};

struct range_alloc {
	struct rb_root tree;
	uint64_t free_len;  /* total free */
	uint64_t nr_ranges; /* nodes in the tree */
	/* Nodes kept for reuse, so that steady alloc/free does not call malloc. */
	struct range_node *spare;
	unsigned nr_spare;
};

/* A request: @len units, aligned to @align, not crossing a multiple of @bound, inside [lo, hi). */
struct range_req {
	uint64_t len;
	uint64_t align; /* power of two; 0 or 1: none */
	uint64_t bound; /* power of two; 0: none */
	uint64_t lo, hi;
	bool topdown; /* highest fitting address instead of lowest */
};

void ra_init(struct range_alloc *ra);
void ra_destroy(struct range_alloc *ra);

/*
 * ra_free() - make [start, start+len) free; it merges with adjacent free
 * ranges. Returns -EINVAL when any part of it is free already (a double free)
 * or it wraps around, -ENOMEM when a node cannot be allocated: only when
 * memory has run short for several frees in a row, since every allocation
 * keeps spare nodes for the frees that follow it (a free of what was
 * allocated does not fail for one malloc() failing).
 */
int ra_free(struct range_alloc *ra, uint64_t start, uint64_t len);

/* ra_alloc() - take a free range that fits @req; -ENOSPC when none does, -ENOMEM (nothing taken) when memory is short. */
int ra_alloc(struct range_alloc *ra, const struct range_req *req, uint64_t *start);

/* ra_reserve() - take exactly [start, start+len); -EBUSY unless all of it is free; -ENOMEM as ra_alloc(). */
int ra_reserve(struct range_alloc *ra, uint64_t start, uint64_t len);

/* ra_is_free() - whether all of [start, start+len) is free. */
bool ra_is_free(const struct range_alloc *ra, uint64_t start, uint64_t len);

static inline uint64_t ra_largest(const struct range_alloc *ra)
{
	return ra->tree.root ? rb_entry(ra->tree.root, struct range_node, rb)->max_len : 0;
}

#endif /* IOVM_BASE_RANGE_ALLOC_H */
