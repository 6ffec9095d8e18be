/* SPDX-License-Identifier: MIT */
/*
 * seglist.c - segment lists: virtual address space reserved once, pages
 * committed into it on demand and given back when they have stayed free
 * long enough; and the page-run allocator on top of them.
 *
 * A list's VA is handed out in 4 KiB units by a gap tree, whatever the page
 * size: a 2 MiB page holds many small runs and slabs. Each page counts the
 * units handed out of it. Pages are committed in commits, the pages one
 * allocation needed, and released in whole commits (mem_page says why). A
 * commit none of whose pages is used stays committed ("idle") and goes back
 * only after release_delay_ms: allocating and freeing a 2 MiB buffer in a
 * loop reuses the same mapped hugepage, where DPDK's dynamic mode maps and
 * unmaps it every time. Free pages of a commit in use stay committed, and
 * serve the next allocations that fall on them.
 *
 * Committing maps frames of the list's arena at their memfd offset with
 * MAP_FIXED over the reservation; releasing maps the reservation back.
 * Subscribers hear of a commit after the translation is in place and of a
 * release before it is taken away.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "base/clock.h"
#include "base/error.h"
#include "base/fault_inject.h"
#include "base/lock.h"
#include "base/log.h"
#include "mem/mem_internal.h"
#include "os/vaspace.h"
#include "phys/phys.h"

/*
 * Extents one scattered commit may take: past them, the frame allocator
 * gives the rest as one contiguous block (from a new bank if need be).
 */
#define COMMIT_MAX_EXTENTS 32

/* After the kernel refused memory, skip growing this list for this long (pass 0 only). */
#define GROW_BACKOFF_NS (100 * 1000 * 1000)

static uint8_t *page_va(const struct mem_seglist *sl, uint64_t page)
{
	return sl->base + (page << sl->page_shift);
}

static uint64_t units_per_page(const struct mem_seglist *sl)
{
	return sl->page_size >> MEM_UNIT_SHIFT;
}

static void *map_array(uint64_t n, size_t elem)
{
	void *p = fi_mmap(NULL, n * elem, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/*
 * Dirty bits: a unit handed out since its page was last known to hold
 * zeroes. Word at a time: a 2 MiB run is eight words, not 512 bits.
 */
static uint64_t bits_mask(uint64_t from, uint64_t to) /* bits [from, to) of one word, to <= 64 */
{
	uint64_t hi = to == 64 ? ~UINT64_C(0) : (UINT64_C(1) << to) - 1;

	return hi & ~((UINT64_C(1) << from) - 1);
}

static void dirty_set(struct mem_seglist *sl, uint64_t unit, uint64_t n, bool dirty)
{
	uint64_t end = unit + n;

	while (unit < end) {
		uint64_t w = unit / 64, to = MIN(end - w * 64, 64), m = bits_mask(unit % 64, to);

		if (dirty)
			sl->dirty[w] |= m;
		else
			sl->dirty[w] &= ~m;
		unit = w * 64 + to;
	}
}

static bool dirty_any(const struct mem_seglist *sl, uint64_t unit, uint64_t n)
{
	uint64_t end = unit + n;

	while (unit < end) {
		uint64_t w = unit / 64, to = MIN(end - w * 64, 64);

		if (sl->dirty[w] & bits_mask(unit % 64, to))
			return true;
		unit = w * 64 + to;
	}
	return false;
}

/* The head of the commit @page belongs to. Needs the list lock. */
static uint64_t commit_head(const struct mem_seglist *sl, uint64_t page)
{
	lock_assert_held(&sl->lock);
	return page - sl->pages[page].head_dist;
}

/* The commit at @head goes idle, as of @now. Needs the list lock. */
static void idle_add(struct mem_seglist *sl, uint64_t head, uint64_t now)
{
	struct mem_page *h = &sl->pages[head];

	lock_assert_held(&sl->lock);
	h->idle_since_ns = now;
	list_add_tail(&sl->idle, &h->idle_link);
	if (sl->next_trim_ns == UINT64_MAX)
		sl->next_trim_ns = now + sl->ms->release_delay_ns;
}

/* Needs the list lock. */
static void idle_del(struct mem_seglist *sl, uint64_t head)
{
	lock_assert_held(&sl->lock);
	list_del(&sl->pages[head].idle_link);
}

/* Needs the list lock. Units of @page handed out (+) or given back (-). */
static void page_use(struct mem_seglist *sl, uint64_t page, uint64_t units)
{
	struct mem_page *p = &sl->pages[page];

	lock_assert_held(&sl->lock);
	/* Units handed out of a page never exceed it: two live allocations would overlap. */
	IOVM_ASSERT(p->committed && p->units_used + units <= units_per_page(sl));
	if (!p->units_used) {
		uint64_t head = commit_head(sl, page);

		IOVM_ASSERT(sl->pages[head].live_pages < sl->pages[head].commit_pages && sl->idle_pages);
		if (!sl->pages[head].live_pages++)
			idle_del(sl, head);
		sl->idle_pages--;
	}
	p->units_used += (uint32_t)units;
}

static void page_unuse(struct mem_seglist *sl, uint64_t page, uint64_t units, uint64_t now)
{
	struct mem_page *p = &sl->pages[page];

	lock_assert_held(&sl->lock);
	IOVM_ASSERT(p->units_used >= units);
	p->units_used -= (uint32_t)units;
	if (!p->units_used) {
		uint64_t head = commit_head(sl, page);

		IOVM_ASSERT(sl->pages[head].live_pages > 0);
		if (!--sl->pages[head].live_pages)
			idle_add(sl, head, now);
		sl->idle_pages++;
	}
}

/* Whether the commit at @head is idle and has been for the release delay (or @all). Needs the list lock. */
static bool commit_due(const struct mem_seglist *sl, uint64_t head, uint64_t now, bool all)
{
	const struct mem_page *h = &sl->pages[head];

	lock_assert_held(&sl->lock);
	return !h->live_pages && (all || now - h->idle_since_ns >= sl->ms->release_delay_ns);
}

/* Iterate over the part of units [unit, unit+n) in each page it spans: @page, @cnt units. */
#define for_each_page_part(sl, unit, n, page, cnt)                                              \
	for (uint64_t pp_u = (unit), pp_end = (unit) + (n), page, cnt;                          \
	     pp_u < pp_end && ((page = pp_u / units_per_page(sl)),                              \
			       (cnt = MIN(pp_end, (page + 1) * units_per_page(sl)) - pp_u), 1); \
	     pp_u += cnt)

/*
 * Map frames [pa, pa + n pages) at @page: one mmap per piece that is
 * consecutive in a memfd. Needs the list lock.
 */
static int map_frames(struct mem_seglist *sl, uint64_t page, pa_t pa, uint64_t n)
{
	lock_assert_held(&sl->lock);
	return phys_map(sl->ms->phys, pa, n << sl->page_shift, page_va(sl, page), true);
}

/* Give frames back, in runs that are contiguous in PA. Needs the list lock. */
static void free_frames(struct mem_seglist *sl, uint64_t page, uint64_t n, const bool *zero)
{
	uint64_t i = 0;

	lock_assert_held(&sl->lock);
	while (i < n) {
		pa_t start = xlate_stale_pa(sl, page + i);
		bool z = zero ? zero[i] : false;
		uint64_t k = 1;

		while (i + k < n && (zero ? zero[i + k] : false) == z &&
		       pa_eq(xlate_stale_pa(sl, page + i + k), pa_add(start, k << sl->page_shift)))
			k++;
		phys_free(sl->arena, start, k, z);
		i += k;
	}
}

/*
 * Release the idle commits that make up [page, page+n): subscribers first,
 * then the translation, then the mapping, then the frames. Needs the list
 * lock.
 */
static void decommit_pages(struct mem_seglist *sl, uint64_t page, uint64_t n)
{
	uint8_t *va = page_va(sl, page);
	uint64_t len = n << sl->page_shift;
	bool zero_small[64], *zero = n <= 64 ? zero_small : fi_malloc(n * sizeof(*zero));

	lock_assert_held(&sl->lock);
	/* Only idle pages go: none of them holds a live allocation. */
	IOVM_ASSERT(sl->idle_pages >= n && sl->committed_pages >= n);
	event_notify_release(sl, va, len);
	for (uint64_t i = 0; i < n; i++) {
		IOVM_ASSERT(sl->pages[page + i].committed && !sl->pages[page + i].units_used);
		if (!sl->pages[page + i].head_dist)
			idle_del(sl, page + i);
		sl->idle_pages--;
		if (zero)
			zero[i] = !dirty_any(sl, (page + i) * units_per_page(sl), units_per_page(sl));
		sl->pages[page + i].committed = 0;
		rev_clear(sl->ms, sl->psz_idx, xlate_stale_pa(sl, page + i), 1);
	}
	xlate_release(sl, page, n);
	os_va_decommit(va, len);
	free_frames(sl, page, n, zero);
	if (zero != zero_small)
		free(zero);
	sl->committed_pages -= n;
	sl->decommits++;
}

/*
 * Commit uncommitted pages [page, page+n): frames from the arena (one
 * contiguous block when @contig, aligned to @pa_align pages), mapped, then
 * translated, then announced. The pages come out committed and idle.
 * Needs the list lock.
 */
static int commit_pages(struct mem_seglist *sl, uint64_t page, uint64_t n, bool contig,
			uint64_t pa_align, bool allow_grow)
{
	struct phys_extent ext[COMMIT_MAX_EXTENTS];
	unsigned next = 0, mapped = 0;
	uint64_t p = page, now;
	int ret;

	lock_assert_held(&sl->lock);
	if (contig || n == 1) {
		struct phys_req req = { .nframes = n, .align = pa_align, .no_grow = !allow_grow };

		ret = phys_alloc_contig(sl->arena, &req, &ext[0].pa, &ext[0].zero);
		ext[0].nframes = n;
		next = 1;
	} else {
		ret = phys_alloc_scattered(sl->arena, n, !allow_grow, ext, COMMIT_MAX_EXTENTS, &next);
	}
	if (ret) {
		if (allow_grow)
			atomic_store_explicit(&sl->grow_failed_ns, clock_now_ns(), memory_order_relaxed);
		return ret;
	}

	for (mapped = 0; mapped < next; mapped++) {
		ret = map_frames(sl, p, ext[mapped].pa, ext[mapped].nframes);
		if (ret)
			goto unmap;
		ret = rev_set(sl->ms, sl->psz_idx, ext[mapped].pa, ext[mapped].nframes, page_va(sl, p));
		if (ret) {
			os_va_decommit(page_va(sl, p), ext[mapped].nframes << sl->page_shift);
			goto unmap;
		}
		xlate_commit(sl, p, ext[mapped].nframes, ext[mapped].pa);
		dirty_set(sl, p * units_per_page(sl), ext[mapped].nframes * units_per_page(sl),
			  !ext[mapped].zero);
		p += ext[mapped].nframes;
	}
	ret = event_notify_commit(sl, page_va(sl, page), n << sl->page_shift);
	if (ret)
		goto unmap;

	now = clock_now_ns();
	for (uint64_t i = 0; i < n; i++)
		sl->pages[page + i] = (struct mem_page){ .committed = 1, .head_dist = (uint32_t)i };
	sl->pages[page].commit_pages = (uint32_t)n;
	idle_add(sl, page, now);
	sl->idle_pages += n;
	sl->committed_pages += n;
	sl->page_hwm = MAX(sl->page_hwm, page + n);
	sl->commits++;
	return 0;

unmap:
	/* Undo the extents [0, mapped), which are mapped and translated. */
	p = page;
	for (unsigned i = 0; i < mapped; i++) {
		rev_clear(sl->ms, sl->psz_idx, ext[i].pa, ext[i].nframes);
		xlate_release(sl, p, ext[i].nframes);
		os_va_decommit(page_va(sl, p), ext[i].nframes << sl->page_shift);
		p += ext[i].nframes;
	}
	for (unsigned i = 0; i < next; i++)
		phys_free(sl->arena, ext[i].pa, ext[i].nframes, ext[i].zero);
	return ret;
}

/*
 * Out of memory with growth allowed: make room, cheapest first. Step 0
 * gives back the list's idle commits, whatever their age; step 1 the
 * banks whose every frame is free, of any arena (they count against
 * mem_limit, and growing needs room under it). Whether anything went.
 * Needs the list lock.
 */
static bool reclaim(struct mem_seglist *sl, unsigned step)
{
	lock_assert_held(&sl->lock);
	if (step == 0)
		return seglist_trim_locked(sl, true, false) != 0;
	if (step == 1)
		return phys_trim(sl->ms->phys) != 0;
	return false;
}

/*
 * Commit every uncommitted page of [first, first+n), in runs. Pages that
 * were committed here stay committed (idle) if a later run fails: the trim
 * takes them back. Needs the list lock.
 *
 * Out of memory, room is made (reclaim()) and the range is walked again
 * from its start: the idle commits given back may be ones the range found
 * committed (or committed itself) a moment ago, and a run committed after
 * them would leave those pages of the range unbacked.
 */
static int commit_missing(struct mem_seglist *sl, uint64_t first, uint64_t n, bool allow_grow)
{
	uint64_t p = first, end = first + n;
	unsigned step = 0;

	lock_assert_held(&sl->lock);
	while (p < end) {
		uint64_t q;
		int ret;

		if (sl->pages[p].committed) {
			p++;
			continue;
		}
		for (q = p; q < end && !sl->pages[q].committed; q++)
			;
		ret = commit_pages(sl, p, q - p, false, 1, allow_grow);
		if (ret == -ENOMEM && allow_grow) {
			bool freed = false;

			while (!freed && step < 2)
				freed = reclaim(sl, step++);
			if (freed) {
				p = first;
				continue;
			}
		}
		if (ret)
			return ret;
		p = q;
	}
	for (p = first; p < end; p++)
		IOVM_ASSERT(sl->pages[p].committed);
	return 0;
}

/* Whether committed pages [first, first+n) are contiguous in PA and aligned to @pa_align pages. */
static bool committed_contig(struct mem_seglist *sl, uint64_t first, uint64_t n, uint64_t pa_align)
{
	uint32_t run = atomic_load_explicit(&sl->xlate[first].pa_run, memory_order_relaxed);

	lock_assert_held(&sl->lock);
	for (uint64_t i = 0; i < n; i++)
		if (!sl->pages[first + i].committed)
			return false;
	return run >= n && is_aligned(pa_val(xlate_stale_pa(sl, first)), pa_align << sl->page_shift);
}

/*
 * Whether the pages committed among [first, first+n) (all free) can be
 * released: each belongs to a commit that is idle as a whole. A commit
 * with pages in use outside the run would have to be cut. Needs the list
 * lock.
 */
static bool commits_idle(const struct mem_seglist *sl, uint64_t first, uint64_t n)
{
	lock_assert_held(&sl->lock);
	for (uint64_t i = 0; i < n; i++)
		if (sl->pages[first + i].committed && sl->pages[commit_head(sl, first + i)].live_pages)
			return false;
	return true;
}

/*
 * A contiguous run of whole pages: reuse its pages if they already are,
 * otherwise release the idle commits among them (whole, so possibly
 * beyond the run) and commit one block. -EBUSY where a commit with pages
 * in use overlaps the run. Needs the list lock.
 */
static int commit_contig(struct mem_seglist *sl, uint64_t first, uint64_t n, uint64_t pa_align,
			 bool allow_grow)
{
	int ret;

	lock_assert_held(&sl->lock);
	if (committed_contig(sl, first, n, pa_align))
		return 0;
	if (!commits_idle(sl, first, n))
		return -EBUSY;
	for (uint64_t i = 0; i < n; i++)
		if (sl->pages[first + i].committed) {
			uint64_t head = commit_head(sl, first + i);

			decommit_pages(sl, head, sl->pages[head].commit_pages);
		}
	/*
	 * Cheapest first: the free frames as they are; then with the frames of
	 * idle pages given back (they merge into larger blocks; the banks stay,
	 * since hugepages given back to the kernel come back elsewhere); only
	 * then new banks, which the kernel must allocate and zero.
	 */
	ret = commit_pages(sl, first, n, true, pa_align, false);
	if (ret == -ENOMEM && reclaim(sl, 0))
		ret = commit_pages(sl, first, n, true, pa_align, false);
	if (ret == -ENOMEM && allow_grow)
		ret = commit_pages(sl, first, n, true, pa_align, true);
	/* Last, free banks given back: under mem_limit they may be what leaves no room to grow. */
	if (ret == -ENOMEM && allow_grow && reclaim(sl, 1))
		ret = commit_pages(sl, first, n, true, pa_align, true);
	return ret;
}

int run_alloc(struct mem_seglist *sl, const struct mem_req *req, bool allow_grow, void **out,
	      bool *zero)
{
	uint64_t units = align_up(req->size, MEM_UNIT) >> MEM_UNIT_SHIFT;
	uint64_t upp = units_per_page(sl), first, p0, np;
	struct range_req q = { .align = MAX(req->align, MEM_UNIT) >> MEM_UNIT_SHIFT,
			       .lo = 0, .hi = sl->nunits };
	bool whole_pages = false;
	int ret;

	if (req->contig) {
		if (units <= upp) {
			/* Inside one page, memory is contiguous: just do not cross a page. */
			q.bound = upp;
		} else {
			whole_pages = true;
			units = align_up(units, upp);
			q.align = MAX(q.align, upp);
		}
	}
	if (!units || units > sl->nunits)
		return -ENOMEM;
	q.len = units;

	mutex_lock(&sl->lock);
	if (ra_alloc(&sl->free_units, &q, &first)) {
		ret = -ENOMEM;
		goto unlock;
	}
	p0 = first / upp;
	np = (first + units + upp - 1) / upp - p0;
	if (whole_pages) {
		ret = commit_contig(sl, p0, np, MAX(req->align >> sl->page_shift, 1), allow_grow);
		if (ret == -EBUSY) {
			/* The free VA found cuts a commit in use: take VA no commit ever reached. */
			ra_free(&sl->free_units, first, units);
			q.lo = sl->page_hwm * upp;
			ret = -ENOMEM;
			if (q.lo >= q.hi || ra_alloc(&sl->free_units, &q, &first))
				goto unlock;
			p0 = first / upp;
			ret = commit_contig(sl, p0, np, MAX(req->align >> sl->page_shift, 1), allow_grow);
		}
	} else {
		ret = commit_missing(sl, p0, np, allow_grow);
	}
	if (ret) {
		ra_free(&sl->free_units, first, units);
		goto unlock;
	}
	/* Free VA holds no live run: none may start there. */
	IOVM_ASSERT(!atomic_load_explicit(&sl->units[first], memory_order_relaxed));
	for_each_page_part(sl, first, units, page, cnt)
		page_use(sl, page, cnt);
	if (zero)
		*zero = !dirty_any(sl, first, units);
	dirty_set(sl, first, units, true);
	sl->used_units += units;
	IOVM_ASSERT(sl->used_units <= sl->nunits && sl->idle_pages <= sl->committed_pages);
	atomic_store_explicit(&sl->units[first], unit_run(units), memory_order_release);
	*out = sl->base + (first << MEM_UNIT_SHIFT);
unlock:
	mutex_unlock(&sl->lock);
	return ret;
}

/* The run at @ptr: its first unit and length, or -EINVAL. */
static int run_lookup(struct mem_seglist *sl, const void *ptr, uint64_t *unit, uint64_t *n)
{
	uint64_t off = (uint64_t)((const uint8_t *)ptr - sl->base);
	uintptr_t e;

	if (off >= sl->len || !is_aligned(off, MEM_UNIT))
		return -EINVAL;
	e = atomic_load_explicit(&sl->units[off >> MEM_UNIT_SHIFT], memory_order_acquire);
	if (!e || !unit_is_run(e))
		return -EINVAL;
	*unit = off >> MEM_UNIT_SHIFT;
	*n = unit_run_len(e);
	return 0;
}

/* Needs the list lock. */
static void maybe_trim(struct mem_seglist *sl, uint64_t now)
{
	lock_assert_held(&sl->lock);
	if (now >= sl->next_trim_ns)
		seglist_trim_locked(sl, false, true);
}

int run_free(struct mem_seglist *sl, void *ptr)
{
	uint64_t unit, n, now;
	int ret;

	mutex_lock(&sl->lock);
	/* Looked up under the lock: two threads freeing the same run cannot both pass. */
	ret = run_lookup(sl, ptr, &unit, &n);
	if (ret)
		goto unlock;
	ret = ra_free(&sl->free_units, unit, n);
	if (ret)
		goto unlock;
	atomic_store_explicit(&sl->units[unit], 0, memory_order_release);
	now = clock_now_ns();
	for_each_page_part(sl, unit, n, page, cnt)
		page_unuse(sl, page, cnt, now);
	IOVM_ASSERT(sl->used_units >= n);
	sl->used_units -= n;
	maybe_trim(sl, now);
unlock:
	mutex_unlock(&sl->lock);
	return ret;
}

uint64_t run_size(struct mem_seglist *sl, const void *ptr)
{
	uint64_t unit, n;

	return run_lookup(sl, ptr, &unit, &n) ? 0 : n << MEM_UNIT_SHIFT;
}

int run_resize(struct mem_seglist *sl, void *ptr, uint64_t size)
{
	uint64_t unit, n, want = align_up(size, MEM_UNIT) >> MEM_UNIT_SHIFT, upp = units_per_page(sl);
	int ret;

	if (!want)
		return -EINVAL;
	mutex_lock(&sl->lock);
	ret = run_lookup(sl, ptr, &unit, &n);
	if (ret || want == n)
		goto unlock;
	if (want < n) {
		uint64_t now = clock_now_ns();

		ret = ra_free(&sl->free_units, unit + want, n - want);
		if (ret)
			goto unlock;
		for_each_page_part(sl, unit + want, n - want, page, cnt)
			page_unuse(sl, page, cnt, now);
		sl->used_units -= n - want;
		maybe_trim(sl, now);
	} else {
		uint64_t extra = want - n, p0, np;

		if (unit + want > sl->nunits || ra_reserve(&sl->free_units, unit + n, extra)) {
			ret = -ENOSPC;
			goto unlock;
		}
		p0 = (unit + n) / upp;
		np = (unit + want + upp - 1) / upp - p0;
		ret = commit_missing(sl, p0, np, true);
		if (ret) {
			ra_free(&sl->free_units, unit + n, extra);
			goto unlock;
		}
		for_each_page_part(sl, unit + n, extra, page, cnt)
			page_use(sl, page, cnt);
		dirty_set(sl, unit + n, extra, true);
		sl->used_units += extra;
	}
	atomic_store_explicit(&sl->units[unit], unit_run(want), memory_order_release);
unlock:
	mutex_unlock(&sl->lock);
	return ret;
}

uint64_t seglist_trim_locked(struct mem_seglist *sl, bool all, bool release_banks)
{
	uint64_t now = clock_now_ns(), delay = sl->ms->release_delay_ns, released = 0;

	lock_assert_held(&sl->lock);
	while (!list_empty(&sl->idle)) {
		struct mem_page *h = list_first(&sl->idle, struct mem_page, idle_link);
		uint64_t head = (uint64_t)(h - sl->pages), s = head, e = head + h->commit_pages;

		if (!commit_due(sl, head, now, all))
			break;
		/* Take the idle, due neighbouring commits along: one munmap instead of many. */
		while (s > 0 && sl->pages[s - 1].committed && commit_due(sl, commit_head(sl, s - 1), now, all))
			s = commit_head(sl, s - 1);
		while (e < sl->npages && sl->pages[e].committed && commit_due(sl, e, now, all))
			e += sl->pages[e].commit_pages;
		decommit_pages(sl, s, e - s);
		released += (e - s) << sl->page_shift;
	}
	if (list_empty(&sl->idle))
		sl->next_trim_ns = UINT64_MAX;
	else
		sl->next_trim_ns = list_first(&sl->idle, struct mem_page, idle_link)->idle_since_ns +
				   delay;
	/* Banks whose every frame is now free go back to the kernel. */
	if (released && release_banks)
		phys_trim(sl->ms->phys);
	return released;
}

uint64_t seglist_trim(struct mem_seglist *sl, bool all)
{
	uint64_t released;

	mutex_lock(&sl->lock);
	released = seglist_trim_locked(sl, all, true);
	mutex_unlock(&sl->lock);
	return released;
}

bool seglist_may_grow(struct mem_seglist *sl)
{
	uint64_t failed = atomic_load_explicit(&sl->grow_failed_ns, memory_order_relaxed);

	return !failed || clock_now_ns() - failed > GROW_BACKOFF_NS;
}

int seglist_create(struct mem_space *ms, unsigned psz_idx, unsigned node_slot,
		   struct mem_seglist **out)
{
	struct mem_seglist *sl;
	int ret;

	sl = fi_aligned_alloc(CACHE_LINE_SIZE, align_up(sizeof(*sl), CACHE_LINE_SIZE));
	if (!sl)
		return -ENOMEM;
	memset(sl, 0, sizeof(*sl));
	sl->ms = ms;
	sl->psz_idx = psz_idx;
	sl->slot = psz_idx * ms->nr_node_slots + node_slot;
	sl->node = ms->node_of_slot[node_slot];
	sl->len = UINT64_C(1) << ms->slot_shift;
	sl->base = ms->arena + ((uint64_t)sl->slot << ms->slot_shift);
	sl->page_size = ms->page_size[psz_idx];
	sl->page_shift = ilog2(sl->page_size);
	sl->len_mask = sl->len - 1;
	sl->page_mask = sl->page_size - 1;
	sl->npages = sl->len >> sl->page_shift;
	sl->nunits = sl->len >> MEM_UNIT_SHIFT;
	sl->next_trim_ns = UINT64_MAX;
	sl->in_default_set = false;
	for (unsigned i = 0; i < ms->nr_pref; i++)
		if (ms->pref[i] == psz_idx && node_slot == ms->default_node_slot)
			sl->in_default_set = true;
	list_init(&sl->idle);
	ra_init(&sl->free_units);
	for (unsigned c = 0; c < MEM_NR_CLASSES; c++)
		class_init(&sl->classes[c], c);

	ret = phys_arena_get(ms->phys, sl->page_size, sl->node, &sl->arena);
	if (ret)
		goto free_list;
	ret = -ENOMEM;
	sl->xlate = map_array(sl->npages, sizeof(*sl->xlate));
	if (!sl->xlate)
		goto free_list;
	sl->pages = map_array(sl->npages, sizeof(*sl->pages));
	if (!sl->pages)
		goto unmap_xlate;
	sl->units = map_array(sl->nunits, sizeof(*sl->units));
	if (!sl->units)
		goto unmap_pages;
	sl->dirty = map_array(sl->nunits / 64, sizeof(*sl->dirty));
	if (!sl->dirty)
		goto unmap_units;
	ret = ra_free(&sl->free_units, 0, sl->nunits);
	if (ret)
		goto unmap_dirty;
	mutex_init(&sl->lock);
	*out = sl;
	return 0;

unmap_dirty:
	munmap(sl->dirty, sl->nunits / 64 * sizeof(*sl->dirty));
unmap_units:
	munmap((void *)sl->units, sl->nunits * sizeof(*sl->units));
unmap_pages:
	munmap(sl->pages, sl->npages * sizeof(*sl->pages));
unmap_xlate:
	munmap(sl->xlate, sl->npages * sizeof(*sl->xlate));
free_list:
	ra_destroy(&sl->free_units);
	free(sl);
	return ret;
}

void seglist_destroy(struct mem_seglist *sl)
{
	slab_destroy_all(sl);
	for (unsigned c = 0; c < MEM_NR_CLASSES; c++)
		mutex_destroy(&sl->classes[c].lock);
	munmap(sl->dirty, sl->nunits / 64 * sizeof(*sl->dirty));
	munmap((void *)sl->units, sl->nunits * sizeof(*sl->units));
	munmap(sl->pages, sl->npages * sizeof(*sl->pages));
	munmap(sl->xlate, sl->npages * sizeof(*sl->xlate));
	ra_destroy(&sl->free_units);
	mutex_destroy(&sl->lock);
	free(sl);
}
