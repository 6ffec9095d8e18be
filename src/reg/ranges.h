/* SPDX-License-Identifier: MIT */
/*
 * ranges.h - counted page ranges: how many registrations cover each page,
 * for what the kernel does not count (mlock is not counted: one munlock
 * undoes every mlock of a page; nor is a userfaultfd registration).
 *
 * Adding a range reports the pieces whose count went from 0 to 1 (lock
 * them, register them); removing one reports those that went to 0 (unlock
 * them, unregister them). Overlapping registrations then lock and unlock
 * each page once.
 */
#ifndef IOVM_REG_RANGES_H
#define IOVM_REG_RANGES_H

#include <stdint.h>

#include "base/rbtree.h"

/* Disjoint segments with their counts, merged when neighbours have the same one. */
struct ranges {
	struct rb_root tree;
	uint64_t segments;
};

/* Called for each maximal piece whose count crossed zero. */
typedef int (*ranges_fn)(void *arg, uint64_t start, uint64_t end);

void ranges_init(struct ranges *r);
void ranges_destroy(struct ranges *r);

/*
 * ranges_add() - count [start, end) once more; @fn for the pieces that were
 * at zero. When @fn fails the add is undone (the pieces it took are given
 * to @undo) and its error returned. -ENOMEM when a segment cannot be had.
 */
int ranges_add(struct ranges *r, uint64_t start, uint64_t end, ranges_fn fn, ranges_fn undo, void *arg);

/* ranges_remove() - count [start, end) once less; @fn for the pieces now at zero. */
void ranges_remove(struct ranges *r, uint64_t start, uint64_t end, ranges_fn fn, void *arg);

/* ranges_for_each() - @fn on each maximal piece counted at least once, in address order. */
void ranges_for_each(const struct ranges *r, ranges_fn fn, void *arg);

/* How many times @addr is counted. */
uint64_t ranges_count(const struct ranges *r, uint64_t addr);

#endif /* IOVM_REG_RANGES_H */
