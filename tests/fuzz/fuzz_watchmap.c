/* SPDX-License-Identifier: MIT */
/*
 * fuzz_watchmap.c - the watchmap (src/reg/watchmap.h) against the plain
 * model of tests/reg/watchmap_model.h, driven by the input bytes: the
 * first picks a window (an anchor address: 0, a leaf boundary low or in
 * the middle of the space, the top of the 47-bit map), then each 6 bytes
 * are one set/mark/clear/any near it, with a start within a leaf or 16
 * leaves of the anchor, or near a leaf or a 64-page word boundary, at a
 * byte offset, and a length of 0, a
 * few bytes, pages, up to a boundary, leaves, past 1 << 47, or one that
 * overflows start + len. At most 256 operations an input; every one is
 * checked against the model, then the window is swept. A new map each
 * input (the window keeps the checks off the 8 MiB of top level).
 */
#include <stdio.h>
#include <stdlib.h>

#define WM_FAIL(fmt, ...)                                              \
	do {                                                           \
		fprintf(stderr, "fuzz_watchmap: " fmt "\n", ##__VA_ARGS__); \
		abort();                                               \
	} while (0)

#include "reg/watchmap_model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_OPS 256
#define WIN_LEAVES 24 /* the window: its anchor's leaf +- this many */


static uint64_t rd16(const uint8_t *p)
{
	return (uint64_t)p[0] | (uint64_t)p[1] << 8;
}

static uint64_t decode_len(unsigned cls, uint64_t v, uint64_t start)
{
	static const uint64_t bounds[] = { WM_PAGE, 64 * WM_PAGE, 512 * WM_PAGE, WM_LEAF };

	switch (cls) {
	case 0: return 0;
	case 1: return 1 + v;                                      /* bytes, up to 16 pages */
	case 2: return (1 + v % 1024) * WM_PAGE;                   /* whole pages */
	case 3: return (1 + v % 1024) * WM_PAGE + (v >> 10) * 64;  /* pages and bytes */
	case 4: /* up to a page, word, 2 MiB or leaf boundary exactly, a few on */
		return (start / bounds[v % 4] + 1 + (v >> 2) % 3) * bounds[v % 4] - start;
	case 5: return (1 + v % 4) * WM_LEAF - (v >> 2) % 2;
	case 6: /* past the top of the map (only from near it: the length stays small) */
		return start < WM_TOP - 4 * WM_LEAF ? 1 + v : WM_TOP - start + (v % 3) * WM_PAGE + (v >> 2) % 2;
	default: /* start + len overflows (from near the top only, as above) */
		return start < WM_TOP - 4 * WM_LEAF ? 1 + v : UINT64_MAX - start + 1 + v;
	}
}

/* Pages from the anchor: within a leaf, 16 leaves, near a leaf boundary, near a word boundary. */
static int64_t delta_pages(unsigned cls, uint64_t v)
{
	int16_t sv = (int16_t)v;
	int8_t hi = (int8_t)(v >> 8), lo = (int8_t)v;

	switch (cls) {
	case 0: return sv;
	case 1: return (int64_t)sv * 16;
	case 2: return (int64_t)(hi % 20) * (int64_t)WM_LEAF_PAGES + lo;
	default: return (int64_t)(sv >> 4) * 64 + (int64_t)(v & 3) - 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint64_t anchors[] = { 0, WM_LEAF, 2 * WM_LEAF, 1000 * WM_LEAF, (WM_LEAVES / 2) * WM_LEAF,
					    WM_TOP - 2 * WM_LEAF, WM_TOP - WM_LEAF, WM_TOP };
	struct wm_model *m;
	uint64_t anchor, al;

	if (size < 1)
		return 0;
	m = calloc(1, sizeof(*m));
	if (!m)
		abort();
	anchor = anchors[data[0] % 8];
	al = anchor / WM_LEAF;
	m->what = "fuzz_watchmap";
	m->reset_on_all = true;
	m->win_lo = al > WIN_LEAVES ? al - WIN_LEAVES : 0;
	m->win_hi = al + WIN_LEAVES < WM_LEAVES ? al + WIN_LEAVES : WM_LEAVES;
	wm_model_open(m);
	data++;
	size--;
	for (unsigned n = 0; size >= 6 && n < MAX_OPS; n++, data += 6, size -= 6) {
		enum wm_op op = (enum wm_op)(data[0] & 3);
		int64_t d = delta_pages(data[0] >> 2 & 3, rd16(data + 1));
		uint64_t off = data[3] == 255 ? WM_PAGE - 1 : (uint64_t)data[3] * 16;
		int64_t a = (int64_t)anchor + d * (int64_t)WM_PAGE;
		uint64_t start, len;
		struct wm_rng r;

		if (a < 0)
			a = -a % (int64_t)WM_LEAF;
		start = (uint64_t)a + off;
		if (start > WM_TOP + 4 * WM_PAGE)
			start = WM_TOP + (start & (4 * WM_PAGE - 1));
		len = decode_len(data[0] >> 4 & 7, rd16(data + 4) * (data[0] >> 7 ? 16 : 1), start);
		r = wm_range(start, len);
		/* A set() allocates its leaves: a few. */
		if (op == WM_SET && r.pe > r.ps && (r.pe - 1) / WM_LEAF_PAGES - r.ps / WM_LEAF_PAGES >= WM_MAX_SET_LEAVES)
			len = WM_LEAF;
		wm_step(m, op, start, len);
	}
	wm_sweep(m, 512);
	wm_check_leaves(m);
	wm_model_close(m);
	wm_model_free(m);
	free(m);
	return 0;
}
