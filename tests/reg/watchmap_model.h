/* SPDX-License-Identifier: MIT */
/*
 * watchmap_model.h - the watchmap (src/reg/watchmap.h) against a plain
 * model written from that header alone: sorted page intervals of what
 * must be reported ("on") and of what may or may not be ("maybe"), every
 * other page of the 47-bit map having to be reported absent while the
 * map's sticky `all` is false. One operation at a time on one thread;
 * test_watchmap.c feeds it from a seeded generator, fuzz_watchmap.c from
 * libFuzzer.
 *
 * The semantics the model holds the map to (a range covers every page it
 * touches a byte of; ranges are clipped to the map, [0, 1 << 47)):
 *  - watchmap_set(): every page of the range is on, until cleared. A range
 *    past the map may make `all` true (nothing past it can be marked); an
 *    in-map one may not (a leaf can always be made here). Every leaf of
 *    the range is made, and WM_SPARES leaves are made ahead for mark();
 *  - watchmap_mark(): a leaf already made gets its pages marked; a leaf
 *    not made takes a spare while there is one (it must: "a leaf not made
 *    yet is taken from the spares"), and stays unmade otherwise, its pages
 *    off. Never more leaves made than spares held, and the spares left are
 *    those held less those used;
 *  - watchmap_clear(): every page of the range is off;
 *  - watchmap_any(): true where the range has an on page (whatever `all`
 *    says), false where it has neither an on nor a maybe page and `all`
 *    is false; clear() and any() make no leaf and take no spare.
 *
 * What the header leaves open, taken leniently (maybe), see the report of
 * the test for what the implementation was seen to do:
 *  - a range of length 0 with an unaligned start: set(), mark() and any()
 *    may count the page of start (a positive in excess, "only a filter");
 *    clear() of such a range must change nothing, as it covers no page;
 *  - a range reaching past 1 << 47 (also one whose start + len overflows,
 *    taken as running to 2^64): any() may say true; clear() may leave its
 *    in-map pages marked (a positive in excess), but must never touch a
 *    page below start (a wrap); mark() may leave all of it unmarked.
 *
 * Leaves are seen through the header's struct: top[] (NULL: not made),
 * lo/hi (every leaf made lies in [lo, hi)), spare[] (counted).
 *
 * The includer defines WM_FAIL(fmt, ...) (not returning).
 */
#ifndef IOVM_TESTS_REG_WATCHMAP_MODEL_H
#define IOVM_TESTS_REG_WATCHMAP_MODEL_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reg/watchmap.h"

#define WM_PAGE_SHIFT 12
#define WM_PAGE (UINT64_C(1) << WM_PAGE_SHIFT)
#define WM_LEAF_SHIFT 27                     /* 128 MiB */
#define WM_LEAF (UINT64_C(1) << WM_LEAF_SHIFT)
#define WM_LEAF_PAGES (WM_LEAF >> WM_PAGE_SHIFT)
#define WM_TOP (UINT64_C(1) << 47)
#define WM_MAP_PAGES (WM_TOP >> WM_PAGE_SHIFT)
#define WM_LEAVES (1u << 20)
#define WM_LOG 24                            /* operations a failure report shows */
#define WM_MAX_SET_LEAVES 64                 /* a set() spans at most this many leaves (memory) */

enum wm_op { WM_SET, WM_MARK, WM_CLEAR, WM_ANY, WM_OPS };
#define WM_OP_NAMES { "set", "mark", "clear", "any" }

struct wm_iv {
	uint64_t s, e; /* pages [s, e) */
};

struct wm_ivs {
	struct wm_iv *v;
	size_t nr, cap;
};

/* What a range covers, in the model's terms. */
struct wm_rng {
	uint64_t ps, pe;   /* its in-map pages, [ps, pe) */
	bool empty;        /* len == 0 */
	bool past;         /* reaches past the map (or starts there, or wraps) */
	bool wraps;        /* start + len overflows */
	bool stub;         /* empty, start unaligned and in the map: page ps may count */
};

struct wm_model {
	struct watchmap w;
	struct wm_ivs on, maybe;
	uint64_t made[WM_LEAVES / 64];        /* leaves seen made: they must stay so until fini */
	uint32_t made_nr;
	unsigned spare_floor;                 /* fresh leaves mark() must still be able to make */
	bool all;                             /* `all` (or top NULL) seen after the last step */
	bool reset_on_all;                    /* start a new map once `all` is set */
	uint64_t win_lo, win_hi;              /* leaves the sweeps look at; [0, 0): all (costly: 2^20 of them) */
	uint64_t checks, steps, resets, marks_left_out;
	struct wm_logent {
		uint8_t op;
		uint64_t start, len;
		int res; /* any(): its answer; -1 otherwise */
	} log[WM_LOG];
	uint64_t log_n;
	const char *what;                     /* the includer's name for the sequence */
};

static inline void wm_fail_log(const struct wm_model *m)
{
	static const char *const wm_op_names[WM_OPS] = WM_OP_NAMES;
	uint64_t first = m->log_n > WM_LOG ? m->log_n - WM_LOG : 0;

	fprintf(stderr, "%s: the last %" PRIu64 " operations of this map (oldest first):\n",
		m->what ? m->what : "watchmap", m->log_n - first);
	for (uint64_t i = first; i < m->log_n; i++) {
		const struct wm_logent *l = &m->log[i % WM_LOG];

		fprintf(stderr, "  watchmap_%s(w, %#" PRIx64 ", %#" PRIx64 ")", wm_op_names[l->op], l->start, l->len);
		if (l->res >= 0)
			fprintf(stderr, " = %s", l->res ? "true" : "false");
		fprintf(stderr, "\n");
	}
}

#define WM_CHECK(m, cond, fmt, ...)                          \
	do {                                                 \
		(m)->checks++;                               \
		if (!(cond)) {                               \
			wm_fail_log(m);                      \
			WM_FAIL(fmt, ##__VA_ARGS__);         \
		}                                            \
	} while (0)

/* ---- sorted, disjoint, non-adjacent page intervals ---- */

/* The first interval ending after page p. */
static inline size_t wm_ivs_find(const struct wm_ivs *a, uint64_t p)
{
	size_t lo = 0, hi = a->nr;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (a->v[mid].e > p)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

static inline void wm_ivs_splice(struct wm_ivs *a, size_t i, size_t j, const struct wm_iv *with, size_t n)
{
	if (a->nr - (j - i) + n > a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 64;
		struct wm_iv *v;

		while (cap < a->nr - (j - i) + n)
			cap *= 2;
		v = realloc(a->v, cap * sizeof(*v));
		if (!v)
			abort();
		a->v = v;
		a->cap = cap;
	}
	memmove(&a->v[i + n], &a->v[j], (a->nr - j) * sizeof(*a->v));
	memcpy(&a->v[i], with, n * sizeof(*with));
	a->nr = a->nr - (j - i) + n;
}

static inline void wm_ivs_add(struct wm_ivs *a, uint64_t s, uint64_t e)
{
	size_t i, j;
	struct wm_iv iv = { s, e };

	if (s >= e)
		return;
	i = s ? wm_ivs_find(a, s - 1) : 0; /* the first that ends at s or later: touching merges */
	for (j = i; j < a->nr && a->v[j].s <= e; j++) {
		iv.s = a->v[j].s < iv.s ? a->v[j].s : iv.s;
		iv.e = a->v[j].e > iv.e ? a->v[j].e : iv.e;
	}
	wm_ivs_splice(a, i, j, &iv, 1);
}

static inline void wm_ivs_del(struct wm_ivs *a, uint64_t s, uint64_t e)
{
	struct wm_iv keep[2];
	size_t i, j, n = 0;

	if (s >= e)
		return;
	i = wm_ivs_find(a, s);
	for (j = i; j < a->nr && a->v[j].s < e; j++)
		;
	if (i == j)
		return;
	if (a->v[i].s < s)
		keep[n++] = (struct wm_iv){ a->v[i].s, s };
	if (a->v[j - 1].e > e)
		keep[n++] = (struct wm_iv){ e, a->v[j - 1].e };
	wm_ivs_splice(a, i, j, keep, n);
}

static inline bool wm_ivs_overlaps(const struct wm_ivs *a, uint64_t s, uint64_t e)
{
	size_t i = wm_ivs_find(a, s);

	return s < e && i < a->nr && a->v[i].s < e;
}

/* Every on page of [s, e) becomes maybe. */
static inline void wm_ivs_demote(struct wm_ivs *on, struct wm_ivs *maybe, uint64_t s, uint64_t e)
{
	for (size_t i = wm_ivs_find(on, s); i < on->nr && on->v[i].s < e; i++)
		wm_ivs_add(maybe, on->v[i].s > s ? on->v[i].s : s, on->v[i].e < e ? on->v[i].e : e);
	wm_ivs_del(on, s, e);
}

/* ---- the map as the header shows it ---- */

static inline struct wm_rng wm_range(uint64_t start, uint64_t len)
{
	struct wm_rng r = { 0 };
	uint64_t end, pe;

	r.empty = len == 0;
	r.wraps = len > UINT64_MAX - start;
	end = r.wraps ? UINT64_MAX : start + len; /* taken as running to 2^64 */
	pe = r.empty ? start >> WM_PAGE_SHIFT : (end >> WM_PAGE_SHIFT) + ((end & (WM_PAGE - 1)) != 0);
	r.ps = start >> WM_PAGE_SHIFT;
	r.past = start >= WM_TOP || (!r.empty && end > WM_TOP) || r.wraps;
	r.stub = r.empty && (start & (WM_PAGE - 1)) && start < WM_TOP;
	r.ps = r.ps < WM_MAP_PAGES ? r.ps : WM_MAP_PAGES;
	r.pe = pe < WM_MAP_PAGES ? pe : WM_MAP_PAGES;
	return r;
}

static inline bool wm_map_all(struct watchmap *w)
{
	return atomic_load(&w->all) || w->top == NULL;
}

static inline bool wm_leaf_made(struct watchmap *w, uint64_t leaf)
{
	_Atomic(_Atomic uint64_t *) *top = w->top;

	return top && leaf < WM_LEAVES && atomic_load(&top[leaf]) != NULL;
}

static inline unsigned wm_spares(struct watchmap *w)
{
	unsigned n = 0;

	for (unsigned i = 0; i < WM_SPARES + 1; i++)
		n += atomic_load(&w->spare[i]) != NULL;
	return n;
}

static inline bool wm_seen_made(const struct wm_model *m, uint64_t leaf)
{
	return m->made[leaf / 64] >> (leaf % 64) & 1;
}

static inline void wm_model_open(struct wm_model *m)
{
	watchmap_init(&m->w);
	m->on.nr = m->maybe.nr = 0;
	memset(m->made, 0, sizeof(m->made));
	m->made_nr = 0;
	m->spare_floor = 0; /* the header makes spares in set(); init() owes none */
	m->all = wm_map_all(&m->w);
	m->log_n = 0;
	WM_CHECK(m, !m->all, "a new map says every page may be watched (its top level could not be mapped?)");
	WM_CHECK(m, !watchmap_any(&m->w, 0, 4 * WM_LEAF), "a new map has a page watched in its first leaves");
}

static inline void wm_model_close(struct wm_model *m)
{
	watchmap_fini(&m->w);
}

static inline void wm_model_free(struct wm_model *m)
{
	free(m->on.v);
	free(m->maybe.v);
	m->on = m->maybe = (struct wm_ivs){ 0 };
}

/* watchmap_any() against the model: a false negative or a false positive fails. */
static inline bool wm_check_any(struct wm_model *m, uint64_t start, uint64_t len, const char *why)
{
	struct wm_rng r = wm_range(start, len);
	bool res = watchmap_any(&m->w, start, len);
	bool all = wm_map_all(&m->w); /* sticky: read after, it covers the call */
	bool must = !r.empty && wm_ivs_overlaps(&m->on, r.ps, r.pe);
	bool may = must || all || r.past || wm_ivs_overlaps(&m->maybe, r.ps, r.pe) ||
		   (r.stub && (wm_ivs_overlaps(&m->on, r.ps, r.ps + 1) || wm_ivs_overlaps(&m->maybe, r.ps, r.ps + 1)));

	WM_CHECK(m, !must || res,
		 "%s: watchmap_any(%#" PRIx64 ", %#" PRIx64 ") = false, but a page of it was set and not cleared since",
		 why, start, len);
	WM_CHECK(m, !res || may,
		 "%s: watchmap_any(%#" PRIx64 ", %#" PRIx64 ") = true with `all` false: no page of it was set, or all were cleared",
		 why, start, len);
	return res;
}

/* One page, and the byte on each of its edges: the pages around a change. */
static inline void wm_probe_page(struct wm_model *m, uint64_t p, const char *why)
{
	if (p >= WM_MAP_PAGES)
		return;
	wm_check_any(m, p << WM_PAGE_SHIFT, WM_PAGE, why);
	wm_check_any(m, p << WM_PAGE_SHIFT, 1, why);
	wm_check_any(m, ((p + 1) << WM_PAGE_SHIFT) - 1, 1, why);
}

static inline uint64_t wm_win_lo(const struct wm_model *m)
{
	return m->win_hi ? m->win_lo : 0;
}

static inline uint64_t wm_win_hi(const struct wm_model *m)
{
	return m->win_hi ? m->win_hi : WM_LEAVES;
}

static inline void wm_probe_around(struct wm_model *m, const struct wm_rng *r, bool wide)
{
	uint64_t lo, hi;

	if (r->ps >= r->pe)
		return;
	if (r->ps)
		wm_probe_page(m, r->ps - 1, "the page before the range");
	wm_probe_page(m, r->ps, "the first page of the range");
	wm_probe_page(m, r->pe - 1, "the last page of the range");
	wm_probe_page(m, r->pe, "the page after the range");
	if (!wide)
		return;
	/* All below and all above (in the window), as ranges ending (starting) exactly on its boundary. */
	lo = wm_win_lo(m) * WM_LEAF_PAGES;
	hi = wm_win_hi(m) * WM_LEAF_PAGES;
	if (r->ps > lo)
		wm_check_any(m, lo << WM_PAGE_SHIFT, (r->ps - lo) << WM_PAGE_SHIFT, "everything below the range");
	if (r->pe < hi)
		wm_check_any(m, r->pe << WM_PAGE_SHIFT, (hi - r->pe) << WM_PAGE_SHIFT, "everything above the range");
	wm_check_any(m, r->ps << WM_PAGE_SHIFT, (r->pe - r->ps) << WM_PAGE_SHIFT, "the range, page-aligned");
}

/* Leaves of pages [ps, pe) the model has seen made. */
static inline uint64_t wm_seen_in(const struct wm_model *m, uint64_t lf, uint64_t ll)
{
	uint64_t n = 0;

	for (uint64_t l = lf; l <= ll;) {
		if (l % 64 == 0 && l + 63 <= ll) {
			n += (uint64_t)__builtin_popcountll(m->made[l / 64]);
			l += 64;
		} else {
			n += wm_seen_made(m, l++);
		}
	}
	return n;
}

/*
 * The leaves of [lf, ll] made now that the model had not seen made: each
 * is recorded. Only [lo, hi) is looked at (wm_check_leaves() holds the map
 * to its promise that no leaf lies outside). Returns how many.
 */
static inline uint64_t wm_scan_new(struct wm_model *m, uint64_t lf, uint64_t ll)
{
	uint64_t lo = atomic_load(&m->w.lo), hi = atomic_load(&m->w.hi), n = 0;

	for (uint64_t l = lf > lo ? lf : lo; l <= ll && l < hi; l++) {
		if (!wm_seen_made(m, l) && wm_leaf_made(&m->w, l)) {
			m->made[l / 64] |= UINT64_C(1) << (l % 64);
			m->made_nr++;
			n++;
		}
	}
	return n;
}

/*
 * The top level (in the window): exactly the leaves seen made, all in
 * [lo, hi), the spares within their room. The whole of it (no window):
 * 2^20 loads, and a fault for each of its 2048 pages not touched yet.
 */
static inline void wm_check_leaves(struct wm_model *m)
{
	_Atomic(_Atomic uint64_t *) *top = m->w.top;
	uint32_t lo = atomic_load(&m->w.lo), hi = atomic_load(&m->w.hi);
	uint64_t n = 0, l0 = wm_win_lo(m), l1 = wm_win_hi(m);

	if (!top)
		return;
	for (uint64_t l = l0; l < l1; l++) {
		if (!atomic_load(&top[l]))
			continue;
		n++;
		WM_CHECK(m, l >= lo && l < hi, "leaf %#" PRIx64 " is made outside [lo, hi) = [%#x, %#x)", l, lo, hi);
		WM_CHECK(m, wm_seen_made(m, l), "leaf %#" PRIx64 " was made by no set() or mark() of its pages", l);
	}
	WM_CHECK(m, n == wm_seen_in(m, l0, l1 - 1), "%" PRIu64 " leaves made, %" PRIu64 " seen made: one was freed",
		 n, wm_seen_in(m, l0, l1 - 1));
	WM_CHECK(m, wm_spares(&m->w) <= WM_SPARES + 1, "%u spares held, room for %d", wm_spares(&m->w), WM_SPARES + 1);
}

/*
 * Every interval of the model and every gap between them, as ranges and
 * by their edge pages (at most @budget of them): the whole map is swept.
 */
static inline void wm_sweep(struct wm_model *m, size_t budget)
{
	struct wm_ivs u = { 0 };
	uint64_t prev = wm_win_lo(m) * WM_LEAF_PAGES, end = wm_win_hi(m) * WM_LEAF_PAGES;

	for (size_t i = 0; i < m->on.nr; i++)
		wm_ivs_add(&u, m->on.v[i].s, m->on.v[i].e);
	for (size_t i = 0; i < m->maybe.nr; i++)
		wm_ivs_add(&u, m->maybe.v[i].s, m->maybe.v[i].e);
	for (size_t i = wm_ivs_find(&u, prev); i <= u.nr && budget; i++, budget--) {
		uint64_t s = i < u.nr && u.v[i].s < end ? u.v[i].s : end;

		if (prev < s)
			wm_check_any(m, prev << WM_PAGE_SHIFT, (s - prev) << WM_PAGE_SHIFT, "sweep: a gap between what was set");
		if (i == u.nr || s == end)
			break;
		wm_probe_page(m, u.v[i].s, "sweep: the first page of an interval");
		wm_probe_page(m, u.v[i].e - 1, "sweep: the last page of an interval");
		prev = u.v[i].e;
	}
	for (size_t i = 0; i < m->on.nr && budget; i++, budget--)
		wm_check_any(m, m->on.v[i].s << WM_PAGE_SHIFT, (m->on.v[i].e - m->on.v[i].s) << WM_PAGE_SHIFT,
			     "sweep: an interval set");
	free(u.v);
	if (!m->all) {
		for (uint64_t l = wm_win_lo(m); l < wm_win_hi(m); l += m->win_hi ? 1 : 1 + (l * 7919) % 4099)
			if (!wm_leaf_made(&m->w, l))
				wm_check_any(m, l << WM_LEAF_SHIFT, WM_LEAF, "sweep: a leaf not made");
	}
}

/*
 * One operation, applied to the map and to the model, then checked: the
 * map's answer (any), its leaves and spares, the pages around the range.
 * Returns any()'s answer (false for the others).
 */
static inline bool wm_step(struct wm_model *m, enum wm_op op, uint64_t start, uint64_t len)
{
	struct wm_rng r = wm_range(start, len);
	uint64_t nleaves = r.ps < r.pe ? (r.pe - 1) / WM_LEAF_PAGES - r.ps / WM_LEAF_PAGES + 1 : 0;
	unsigned spares = wm_spares(&m->w);
	uint64_t lp = r.stub ? r.ps : 0, lq = r.stub ? r.ps + 1 : 0; /* the page an empty range may count */
	uint64_t seen = 0;
	bool res = false, all_before = m->all;

	if (op == WM_SET && !r.empty)
		WM_CHECK(m, nleaves <= WM_MAX_SET_LEAVES || r.past, "the generator: a set() of %" PRIu64 " leaves", nleaves);
	m->log[m->log_n % WM_LOG].op = (uint8_t)op;
	m->log[m->log_n % WM_LOG].start = start;
	m->log[m->log_n % WM_LOG].len = len;
	m->log[m->log_n % WM_LOG].res = -1;
	m->log_n++;
	m->steps++;
	if (op != WM_ANY && (r.stub || r.ps < r.pe))
		seen = wm_seen_in(m, (r.stub ? lp : r.ps) / WM_LEAF_PAGES,
				  ((r.stub ? lq : r.pe) - 1) / WM_LEAF_PAGES);

	switch (op) {
	case WM_SET:
		watchmap_set(&m->w, start, len);
		if (!r.empty) {
			wm_ivs_add(&m->on, r.ps, r.pe);
			wm_ivs_del(&m->maybe, r.ps, r.pe);
		} else if (r.stub && !wm_ivs_overlaps(&m->on, lp, lq)) {
			wm_ivs_add(&m->maybe, lp, lq);
		}
		break;
	case WM_CLEAR:
		watchmap_clear(&m->w, start, len);
		if (r.empty)
			break;
		if (!r.past) {
			wm_ivs_del(&m->on, r.ps, r.pe);
			wm_ivs_del(&m->maybe, r.ps, r.pe);
		} else {
			wm_ivs_demote(&m->on, &m->maybe, r.ps, r.pe);
		}
		break;
	case WM_MARK:
		watchmap_mark(&m->w, start, len);
		break;
	case WM_ANY:
		res = wm_check_any(m, start, len, "the operation");
		m->log[(m->log_n - 1) % WM_LOG].res = res;
		break;
	default:
		abort();
	}

	m->all = wm_map_all(&m->w);
	WM_CHECK(m, all_before || !m->all || (op == WM_SET && r.past),
		 "`all` was set by that last operation (only a set() past the map may: here a leaf can always be made)");

	if (op == WM_MARK || op == WM_SET || op == WM_CLEAR) {
		uint64_t ps = r.stub ? lp : r.ps, pe = r.stub ? lq : r.pe, fresh = 0, made = 0;
		uint64_t lf = ps / WM_LEAF_PAGES, ll = pe ? (pe - 1) / WM_LEAF_PAGES : 0;

		if (ps < pe) {
			fresh = ll - lf + 1 - seen;
			made = wm_scan_new(m, lf, ll);
		}
		if (op == WM_CLEAR) {
			WM_CHECK(m, made == 0, "clear() made %" PRIu64 " leaves (it never allocates)", made);
			WM_CHECK(m, wm_spares(&m->w) == spares, "clear() took spares: %u, then %u", spares, wm_spares(&m->w));
		} else if (op == WM_SET && !m->all && !r.empty) {
			WM_CHECK(m, made == fresh, "set() left %" PRIu64 " of its leaves unmade and `all` false", fresh - made);
			m->spare_floor = WM_SPARES;
		} else if (op == WM_MARK) {
			WM_CHECK(m, made <= spares, "mark() made %" PRIu64 " leaves with %u spares: it allocated", made, spares);
			WM_CHECK(m, wm_spares(&m->w) == spares - made, "mark() made %" PRIu64 " leaves, spares went %u -> %u",
				 made, spares, wm_spares(&m->w));
			if (!r.past && !r.empty) {
				uint64_t want = fresh < spares ? fresh : spares;

				WM_CHECK(m, made == want, "mark() made %" PRIu64 " of %" PRIu64 " fresh leaves with %u spares held",
					 made, fresh, spares);
				WM_CHECK(m, fresh > m->spare_floor || made == fresh,
					 "mark() made %" PRIu64 " of %" PRIu64 " fresh leaves, %u owed since the last set()",
					 made, fresh, m->spare_floor);
			}
			m->spare_floor = m->spare_floor > made ? m->spare_floor - (unsigned)made : 0;
			if (r.empty || r.past) {
				/* Header ambiguity: such a mark may be left out (see the top). */
				wm_ivs_add(&m->maybe, ps, pe);
			} else {
				/* What a made leaf holds is marked, what an unmade one holds stays off. */
				uint64_t lo = atomic_load(&m->w.lo), hi = atomic_load(&m->w.hi), out = 0;

				for (uint64_t l = lf > lo ? lf : lo; l <= ll && l < hi; l++) {
					uint64_t s = l * WM_LEAF_PAGES > ps ? l * WM_LEAF_PAGES : ps;
					uint64_t e = (l + 1) * WM_LEAF_PAGES < pe ? (l + 1) * WM_LEAF_PAGES : pe;

					if (wm_leaf_made(&m->w, l)) {
						wm_ivs_add(&m->on, s, e);
						wm_ivs_del(&m->maybe, s, e);
						out++;
					}
				}
				m->marks_left_out += out < ll - lf + 1;
			}
		}
	}
	if (op != WM_ANY) {
		wm_probe_around(m, &r, m->steps % 64 == 0);
		if (r.stub)
			wm_probe_page(m, lp, "the page of an empty range's start");
	}
	WM_CHECK(m, wm_spares(&m->w) <= WM_SPARES + 1, "%u spares held, room for %d", wm_spares(&m->w), WM_SPARES + 1);
	{
		uint32_t lo = atomic_load(&m->w.lo), hi = atomic_load(&m->w.hi);

		for (uint64_t p = r.ps / WM_LEAF_PAGES, i = 0; r.ps < r.pe && i < 4 && p < WM_LEAVES; p++, i++)
			if (wm_leaf_made(&m->w, p))
				WM_CHECK(m, p >= lo && p < hi, "leaf %#" PRIx64 " is made outside [lo, hi) = [%#x, %#x)", p, lo, hi);
	}
	if (m->all && m->reset_on_all && !all_before) {
		/* Nothing can be found absent any more: check what must be there, then start afresh. */
		wm_sweep(m, 256);
		wm_model_close(m);
		wm_model_open(m);
		m->resets++;
	}
	return res;
}

#endif /* IOVM_TESTS_REG_WATCHMAP_MODEL_H */
