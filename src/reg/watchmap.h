/* SPDX-License-Identifier: MIT */
/*
 * watchmap.h - which pages a memory monitor may watch, read lock-free by
 * libc's hooked calls (reg/hooks.c): a bit per page of the 47-bit
 * address space, in leaves of 128 MiB made as ranges are watched.
 *
 * Only a filter: a page it misses is still watched by the userfaultfd
 * (slower, never wrong); one it has in excess costs a hook its work for
 * nothing.
 */
#ifndef IOVM_REG_WATCHMAP_H
#define IOVM_REG_WATCHMAP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Leaves made ahead, for watchmap_mark(), which cannot allocate. */
#define WM_SPARES 2

struct watchmap {
	_Atomic(_Atomic uint64_t *) *top; /* 2^20 leaves (8 MiB mapped, touched where used); NULL: all */
	_Atomic bool all;                 /* a leaf could not be made: every page may be watched */
	_Atomic uint32_t lo, hi;          /* the leaves made lie in [lo, hi) of top */
	/*
	 * Made by watchmap_set(), taken by watchmap_mark(); the last one is
	 * where a spare taken and not used (another thread made that leaf)
	 * is given back, and is taken first.
	 */
	_Atomic(_Atomic uint64_t *) spare[WM_SPARES + 1];
};

/*
 * Every call takes a byte range: the pages it touches, a partial page
 * whole; a range of length 0 touches none. Ranges that reach past the
 * 47-bit map (or wrap) are the exceptions each call names.
 */

/* Map the top level and WM_SPARES spare leaves (never fails: without the top every page may be watched). */
void watchmap_init(struct watchmap *w);
/* Free it all: no reader may be left (the hooks were stopped). */
void watchmap_fini(struct watchmap *w);
/*
 * Mark [start, start+len) watched, and make the spares again; may
 * allocate (not from a hook); safe on several threads (leaves go in by
 * compare-and-swap). Past the map, or with a leaf not to be had, every
 * page becomes watched (`all`, for good).
 */
void watchmap_set(struct watchmap *w, uint64_t start, uint64_t len);
/*
 * Mark [start, start+len) watched without allocating or freeing (the
 * monitor's reader; one thread at a time): a leaf not made yet is taken
 * from the spares; with none left its pages stay unmarked (their unmap
 * then goes through userfaultfd: slower, never wrong). A range reaching
 * past the map is not marked at all.
 */
void watchmap_mark(struct watchmap *w, uint64_t start, uint64_t len);
/* Unmark it; lock-free, never allocates. A range reaching past the map unmarks nothing. */
void watchmap_clear(struct watchmap *w, uint64_t start, uint64_t len);
/* Whether any page of it may be watched (true for a range reaching past the map); lock-free, never allocates. */
bool watchmap_any(struct watchmap *w, uint64_t start, uint64_t len);

#endif /* IOVM_REG_WATCHMAP_H */
