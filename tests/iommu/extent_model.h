/* SPDX-License-Identifier: MIT */
/*
 * extent_model.h - the plain reference model the page-table and IOVA model
 * tests check against: a sorted map of pages, kept as a sorted array of
 * extents [page, page+n), each with the PA of its first page, a
 * protection, and accessed/dirty bits. Nothing clever: every operation is
 * a linear pass, so that it is obviously right.
 */
#ifndef IOVM_TESTS_EXTENT_MODEL_H
#define IOVM_TESTS_EXTENT_MODEL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct extent {
	uint64_t page, n; /* pages [page, page+n) */
	uint64_t pa;      /* of the first page; each next page at +4 KiB */
	unsigned prot;
	unsigned ad;      /* accessed 1, dirty 2 */
};

struct extents {
	struct extent *e;
	size_t nr, cap;
};

static inline void ext_init(struct extents *x)
{
	memset(x, 0, sizeof(*x));
}

static inline void ext_free(struct extents *x)
{
	free(x->e);
	ext_init(x);
}

/* The index of the first extent ending after @page. */
static inline size_t ext_find(const struct extents *x, uint64_t page)
{
	size_t lo = 0, hi = x->nr;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (x->e[mid].page + x->e[mid].n <= page)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The extent holding @page, or NULL. */
static inline const struct extent *ext_at(const struct extents *x, uint64_t page)
{
	size_t i = ext_find(x, page);

	return i < x->nr && x->e[i].page <= page ? &x->e[i] : NULL;
}

/* Pages of [page, page+n) in some extent. */
static inline uint64_t ext_count(const struct extents *x, uint64_t page, uint64_t n)
{
	uint64_t got = 0, end = page + n;

	for (size_t i = ext_find(x, page); i < x->nr && x->e[i].page < end; i++) {
		uint64_t s = x->e[i].page > page ? x->e[i].page : page;
		uint64_t e = x->e[i].page + x->e[i].n < end ? x->e[i].page + x->e[i].n : end;

		got += e - s;
	}
	return got;
}

static inline uint64_t ext_total(const struct extents *x)
{
	uint64_t n = 0;

	for (size_t i = 0; i < x->nr; i++)
		n += x->e[i].n;
	return n;
}

static inline void ext_insert_at(struct extents *x, size_t i, struct extent e)
{
	if (x->nr == x->cap) {
		x->cap = x->cap ? 2 * x->cap : 64;
		x->e = realloc(x->e, x->cap * sizeof(*x->e));
		if (!x->e)
			abort();
	}
	memmove(&x->e[i + 1], &x->e[i], (x->nr - i) * sizeof(*x->e));
	x->e[i] = e;
	x->nr++;
}

/* Make @page the start of an extent if an extent holds it. */
static inline void ext_split(struct extents *x, uint64_t page)
{
	size_t i = ext_find(x, page);
	struct extent tail;

	if (i >= x->nr || x->e[i].page >= page)
		return;
	tail = x->e[i];
	tail.n = x->e[i].page + x->e[i].n - page;
	tail.pa += (page - x->e[i].page) << 12;
	tail.page = page;
	x->e[i].n = page - x->e[i].page;
	ext_insert_at(x, i + 1, tail);
}

/* Add [page, page+n), which no extent holds. */
static inline void ext_add(struct extents *x, uint64_t page, uint64_t n, uint64_t pa, unsigned prot)
{
	ext_insert_at(x, ext_find(x, page), (struct extent){ .page = page, .n = n, .pa = pa, .prot = prot });
}

/* Take [page, page+n) out. */
static inline void ext_remove(struct extents *x, uint64_t page, uint64_t n)
{
	size_t i, j;

	if (!x->nr)
		return; /* nothing to take (and no array to move in) */
	ext_split(x, page);
	ext_split(x, page + n);
	i = ext_find(x, page);
	for (j = i; j < x->nr && x->e[j].page < page + n; j++)
		;
	memmove(&x->e[i], &x->e[j], (x->nr - j) * sizeof(*x->e));
	x->nr -= j - i;
}

/* OR @ad into the pages of [page, page+n) (set), or clear them all (!set); returns the OR before. */
static inline unsigned ext_ad(struct extents *x, uint64_t page, uint64_t n, unsigned ad, bool set)
{
	unsigned was = 0;

	ext_split(x, page);
	ext_split(x, page + n);
	for (size_t i = ext_find(x, page); i < x->nr && x->e[i].page < page + n; i++) {
		was |= x->e[i].ad;
		x->e[i].ad = set ? x->e[i].ad | ad : 0;
	}
	return was;
}

/*
 * The next run of @x from index *i on, merged as pt_for_each() merges:
 * contiguous in page and PA, of one protection (accessed/dirty ignored).
 * False at the end.
 */
static inline bool ext_next_run(const struct extents *x, size_t *i, struct extent *run)
{
	if (*i >= x->nr)
		return false;
	*run = x->e[(*i)++];
	while (*i < x->nr && x->e[*i].page == run->page + run->n && x->e[*i].pa == run->pa + (run->n << 12) &&
	       x->e[*i].prot == run->prot)
		run->n += x->e[(*i)++].n;
	return true;
}

#endif /* IOVM_TESTS_EXTENT_MODEL_H */
