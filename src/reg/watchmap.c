/* SPDX-License-Identifier: MIT */
/*
 * watchmap.c - the pages a memory monitor may watch, for its hooks
 * (watchmap.h): set by monitor_watch(), cleared by the hooks' own unmaps,
 * read lock-free. The top level is an mmap of our own, 8 MiB of which
 * only the pages used are touched, not malloc()'d: glibc would map it
 * too, but freeing a block it mapped raises its mmap threshold to that
 * size, and the application's large blocks would come from its heap
 * from then on (no longer unmapped by free()). A leak checker scans heap
 * blocks, not anonymous mappings: the top is declared to LeakSanitizer,
 * where one is loaded (ours or the application's), as a root region, or
 * every leaf, reachable only from there, would read as leaked while a
 * context is open.
 */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "base/compiler.h"
#include "reg/watchmap.h"

#define WM_SHIFT 12                 /* a bit per 4 KiB page */
#define WM_LEAF_BITS 15             /* a 4 KiB leaf: 128 MiB */
#define WM_TOP (1u << (47 - WM_SHIFT - WM_LEAF_BITS))
#define WM_END (UINT64_C(1) << 47)

enum wm_op { WM_SET, WM_MARK, WM_CLEAR, WM_TEST };

/*
 * LeakSanitizer's root regions, where its runtime is loaded; looked up at
 * run time, so that libiovm references nothing outside libc.
 */
typedef void lsan_region_fn(const void *p, size_t size);

static lsan_region_fn *lsan_fn(const char *name)
{
	lsan_region_fn *fn;
	void *sym = dlsym(RTLD_DEFAULT, name);

	memcpy(&fn, &sym, sizeof(fn));
	return fn;
}

static void spares_fill(struct watchmap *w);

void watchmap_init(struct watchmap *w)
{
	void *p = mmap(NULL, WM_TOP * sizeof(*w->top), PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	w->top = p == MAP_FAILED ? NULL : p;
	if (w->top) {
		lsan_region_fn *reg = lsan_fn("__lsan_register_root_region");

		if (reg)
			reg((const void *)w->top, WM_TOP * sizeof(*w->top));
	}
	atomic_init(&w->all, w->top == NULL);
	atomic_init(&w->lo, WM_TOP);
	atomic_init(&w->hi, 0);
	for (unsigned i = 0; i <= WM_SPARES; i++)
		atomic_init(&w->spare[i], NULL);
	if (w->top)
		spares_fill(w);
}

void watchmap_fini(struct watchmap *w)
{
	if (!w->top)
		return;
	/* Only where leaves were made: the rest of the top was never touched. */
	for (uint32_t i = atomic_load_explicit(&w->lo, memory_order_relaxed);
	     i < atomic_load_explicit(&w->hi, memory_order_relaxed); i++)
		free((void *)atomic_load_explicit(&w->top[i], memory_order_relaxed));
	for (unsigned i = 0; i <= WM_SPARES; i++)
		free((void *)atomic_exchange_explicit(&w->spare[i], NULL, memory_order_relaxed));
	{
		lsan_region_fn *unreg = lsan_fn("__lsan_unregister_root_region");

		if (unreg)
			unreg((const void *)w->top, WM_TOP * sizeof(*w->top));
	}
	munmap((void *)w->top, WM_TOP * sizeof(*w->top));
	w->top = NULL;
}

static _Atomic uint64_t *leaf_new(void)
{
	return calloc((1u << WM_LEAF_BITS) / 64, sizeof(_Atomic uint64_t));
}

/* The spares made again where taken (watchmap_set()'s callers may allocate). */
static void spares_fill(struct watchmap *w)
{
	for (unsigned i = 0; i < WM_SPARES; i++) {
		_Atomic uint64_t *fresh, *none = NULL;

		if (atomic_load_explicit(&w->spare[i], memory_order_relaxed))
			continue;
		fresh = leaf_new();
		if (fresh && !atomic_compare_exchange_strong_explicit(&w->spare[i], &none, fresh, memory_order_release,
								      memory_order_relaxed))
			free((void *)fresh);
	}
}

/* A spare leaf, or NULL: the one given back first, then those made ahead. */
static _Atomic uint64_t *spare_take(struct watchmap *w)
{
	for (unsigned i = WM_SPARES + 1; i-- > 0;) {
		_Atomic uint64_t *leaf = atomic_exchange_explicit(&w->spare[i], NULL, memory_order_acquire);

		if (leaf)
			return leaf;
	}
	return NULL;
}

/*
 * Leaf @i of the top, made from @fresh unless another thread made it
 * first: the leaf now in place. @fresh, not used, is freed, or, taken
 * from the spares, given back (still zeroed): the place it is given back
 * to is empty, as the one marking thread took from there first, or found
 * it empty.
 */
static _Atomic uint64_t *leaf_install(struct watchmap *w, uint32_t i, _Atomic uint64_t *fresh, bool spare)
{
	_Atomic uint64_t *leaf = NULL;
	uint32_t v;

	if (!atomic_compare_exchange_strong_explicit(&w->top[i], &leaf, fresh, memory_order_acq_rel,
						     memory_order_acquire)) {
		if (spare)
			atomic_store_explicit(&w->spare[WM_SPARES], fresh, memory_order_release);
		else
			free((void *)fresh);
		return leaf;
	}
	v = atomic_load_explicit(&w->lo, memory_order_relaxed);
	while (i < v && !atomic_compare_exchange_weak_explicit(&w->lo, &v, i, memory_order_relaxed, memory_order_relaxed))
		;
	v = atomic_load_explicit(&w->hi, memory_order_relaxed);
	while (i + 1 > v &&
	       !atomic_compare_exchange_weak_explicit(&w->hi, &v, i + 1, memory_order_relaxed, memory_order_relaxed))
		;
	return fresh;
}

/*
 * Set (allocating the leaves it needs, or, for WM_MARK, taking spares),
 * clear or test the bits of [start, start+len), a word at a time. Test:
 * whether any is set.
 */
static bool wm_op(struct watchmap *w, uint64_t start, uint64_t len, enum wm_op op)
{
	bool setting = op == WM_SET || op == WM_MARK;
	uint64_t end;

	/* An empty range covers no page: rounded up, one at an unaligned start would be its page. */
	if (!len)
		return false;
	if (start + len > WM_END || start + len < start || !w->top) {
		/* A mark is only a saving: past the map, it is left out rather than make every page watched. */
		if (op == WM_SET)
			atomic_store_explicit(&w->all, true, memory_order_release);
		return true;
	}
	end = (start + len + (1u << WM_SHIFT) - 1) >> WM_SHIFT;
	for (uint64_t pg = start >> WM_SHIFT; pg < end;) {
		_Atomic(_Atomic uint64_t *) *slot = &w->top[pg >> WM_LEAF_BITS];
		_Atomic uint64_t *leaf = atomic_load_explicit(slot, memory_order_acquire);
		uint64_t bit = pg & ((1u << WM_LEAF_BITS) - 1);
		uint64_t n = MIN(end - pg, 64 - bit % 64);
		uint64_t mask = (n == 64 ? ~UINT64_C(0) : ((UINT64_C(1) << n) - 1)) << (bit % 64);

		if (!leaf && setting) {
			_Atomic uint64_t *fresh = op == WM_SET ? leaf_new() : spare_take(w);

			/*
			 * No spare left to mark with: that leaf's pages stay
			 * unmarked, and their unmap goes through userfaultfd (what
			 * marking saves, not what it makes correct). Every
			 * page from then on would cost every munmap() far more.
			 */
			if (!fresh && op == WM_MARK) {
				pg = (pg | ((1u << WM_LEAF_BITS) - 1)) + 1;
				continue;
			}
			if (!fresh) {
				atomic_store_explicit(&w->all, true, memory_order_release);
				return true;
			}
			leaf = leaf_install(w, (uint32_t)(pg >> WM_LEAF_BITS), fresh, op == WM_MARK);
		}
		if (!leaf) {
			/* A whole leaf never watched: on to the next one. */
			pg = (pg | ((1u << WM_LEAF_BITS) - 1)) + 1;
			continue;
		}
		/* Set before the range is registered (seq_cst): a hook that misses it finds it registered. */
		if (setting)
			atomic_fetch_or_explicit(&leaf[bit / 64], mask, memory_order_seq_cst);
		else if (op == WM_CLEAR)
			atomic_fetch_and_explicit(&leaf[bit / 64], ~mask, memory_order_relaxed);
		else if (atomic_load_explicit(&leaf[bit / 64], memory_order_acquire) & mask)
			return true;
		pg += n;
	}
	return false;
}

void watchmap_set(struct watchmap *w, uint64_t start, uint64_t len)
{
	if (w->top)
		spares_fill(w);
	wm_op(w, start, len, WM_SET);
}

void watchmap_mark(struct watchmap *w, uint64_t start, uint64_t len)
{
	wm_op(w, start, len, WM_MARK);
}

void watchmap_clear(struct watchmap *w, uint64_t start, uint64_t len)
{
	wm_op(w, start, len, WM_CLEAR);
}

bool watchmap_any(struct watchmap *w, uint64_t start, uint64_t len)
{
	return atomic_load_explicit(&w->all, memory_order_acquire) || wm_op(w, start, len, WM_TEST);
}
