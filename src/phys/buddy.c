/* SPDX-License-Identifier: MIT */
/*
 * buddy.c - the frame allocator: a binary buddy over each arena's frames,
 * and a run scan for what the buddy's power-of-two blocks cannot give.
 *
 * A free block of 2^k frames starts at a frame number aligned to 2^k; its
 * buddy is the block it merges with, pfn ^ 2^k. Blocks merge across banks
 * whenever the frames are adjacent in PA: in host-PA mode that is exactly
 * "physically adjacent hugepages", found as pages arrive, at run time.
 *
 * The buddy alone can only give power-of-two, naturally aligned blocks. A
 * contiguous request it cannot serve (3 frames where the free ones are 2+1
 * adjacent, or more than a block holds) falls back to a scan of the free
 * runs in PA order, as DPDK's legacy mode sorts its hugepages, done when
 * needed rather than once at start-up.
 *
 * Every function here needs phys_space.lock.
 */
#include <errno.h>
#include <stdlib.h>

#include "base/compiler.h"
#include "base/error.h"
#include "base/lock.h"
#include "base/log.h"
#include "os/hugepage.h"
#include "phys/phys_internal.h"

/* A contiguous search adds at most this many banks before it gives up. */
#define GROW_TRIES 3

struct phys_frame *frame_at(struct phys_arena *a, uint64_t pfn)
{
	return radix_lookup(&a->frames, pfn);
}

static struct phys_bank *frame_bank(struct phys_arena *a, const struct phys_frame *f)
{
	return a->space->banks[f->bank];
}

static void block_push(struct phys_arena *a, uint64_t pfn, unsigned order)
{
	struct phys_frame *f = frame_at(a, pfn);

	lock_assert_held(&a->space->lock);
	/* A block goes on a free list once, and never a used frame. */
	IOVM_ASSERT(f && f->state == FRAME_FREE_TAIL);
	f->state = FRAME_FREE_HEAD;
	f->order = (uint8_t)order;
	list_add(&a->free_area[order], &f->link);
	a->nr_free_blocks[order]++;
}

static void block_pop(struct phys_arena *a, struct phys_frame *f)
{
	lock_assert_held(&a->space->lock);
	IOVM_ASSERT(f->state == FRAME_FREE_HEAD && a->nr_free_blocks[f->order] > 0);
	list_del(&f->link);
	a->nr_free_blocks[f->order]--;
	f->state = FRAME_FREE_TAIL;
}

/* Whether @pfn heads a free block of exactly 2^order frames. */
static bool is_free_head(struct phys_arena *a, uint64_t pfn, unsigned order)
{
	struct phys_frame *f = frame_at(a, pfn);

	lock_assert_held(&a->space->lock);
	return f && f->state == FRAME_FREE_HEAD && f->order == order;
}

/* Insert the free block [pfn, pfn + 2^order), merging it with free buddies. */
static void block_free_merge(struct phys_arena *a, uint64_t pfn, unsigned order)
{
	lock_assert_held(&a->space->lock);
	while (order < PHYS_MAX_ORDER) {
		uint64_t buddy = pfn ^ (UINT64_C(1) << order);

		if (!is_free_head(a, buddy, order))
			break;
		block_pop(a, frame_at(a, buddy));
		pfn = MIN(pfn, buddy);
		order++;
	}
	block_push(a, pfn, order);
}

/*
 * The largest naturally aligned block that starts at @pfn and fits before
 * @end: pieces of this size tile any range with the fewest blocks.
 */
static unsigned piece_order(uint64_t pfn, uint64_t end)
{
	unsigned order = pfn ? MIN((unsigned)__builtin_ctzll(pfn), PHYS_MAX_ORDER) : PHYS_MAX_ORDER;

	while ((UINT64_C(1) << order) > end - pfn)
		order--;
	return order;
}

/* Free [pfn, end) as maximal aligned pieces; with @merge, each merges with free buddies. */
static void free_pieces(struct phys_arena *a, uint64_t pfn, uint64_t end, bool merge)
{
	lock_assert_held(&a->space->lock);
	while (pfn < end) {
		unsigned order = piece_order(pfn, end);

		if (merge)
			block_free_merge(a, pfn, order);
		else
			block_push(a, pfn, order);
		pfn += UINT64_C(1) << order;
	}
}

/* Mark [pfn, pfn+n) allocated, and say whether all of it holds zeroes. */
static bool mark_used(struct phys_arena *a, uint64_t pfn, uint64_t n)
{
	bool zero = true;

	lock_assert_held(&a->space->lock);
	for (uint64_t i = 0; i < n; i++) {
		struct phys_frame *f = frame_at(a, pfn + i);

		/* Only free frames, off every free list, are handed out; the counts follow. */
		IOVM_ASSERT(f->state == FRAME_FREE_TAIL && frame_bank(a, f)->nr_free > 0);
		f->state = FRAME_USED;
		atomic_store_explicit(&f->pinref, 0, memory_order_release);
		zero &= f->zero;
		f->zero = 0;
		frame_bank(a, f)->nr_free--;
	}
	IOVM_ASSERT(a->frames_free >= n);
	a->frames_free -= n;
	return zero;
}

int buddy_online(struct phys_arena *a, uint64_t pfn, uint64_t n, uint32_t bank)
{
	lock_assert_held(&a->space->lock);
	/* Allocate every table first, so that failing leaves nothing half done. */
	for (uint64_t i = 0; i < n; i++)
		if (!radix_lookup_alloc(&a->frames, pfn + i))
			return -ENOMEM;
	for (uint64_t i = 0; i < n; i++) {
		struct phys_frame *f = frame_at(a, pfn + i);

		*f = (struct phys_frame){ .pfn = pfn + i, .state = FRAME_FREE_TAIL, .zero = 1,
					  .bank = bank, .pinref = PIN_NONE };
		list_init(&f->link);
	}
	a->space->banks[bank]->nr_free += n;
	a->frames_total += n;
	a->frames_free += n;
	free_pieces(a, pfn, pfn + n, true);
	return 0;
}

/* The free block that contains @pfn: its head, and its order in *@order. */
static struct phys_frame *block_containing(struct phys_arena *a, uint64_t pfn, unsigned *order)
{
	lock_assert_held(&a->space->lock);
	for (unsigned k = 0; k <= PHYS_MAX_ORDER; k++) {
		uint64_t head = align_down(pfn, UINT64_C(1) << k);

		if (is_free_head(a, head, k)) {
			*order = k;
			return frame_at(a, head);
		}
	}
	return NULL;
}

/*
 * Take the free frames [pfn, pfn+n) out of the free lists, whatever blocks
 * they are in: the parts of those blocks outside the range go back as
 * pieces. -EBUSY, changing nothing, unless every frame in it is free.
 * The taken frames are left FREE_TAIL for the caller to mark.
 */
static int take_range(struct phys_arena *a, uint64_t pfn, uint64_t n)
{
	uint64_t end = pfn + n, f;

	lock_assert_held(&a->space->lock);
	for (f = pfn; f < end; f++) {
		struct phys_frame *fr = frame_at(a, f);

		if (!fr || (fr->state != FRAME_FREE_HEAD && fr->state != FRAME_FREE_TAIL))
			return -EBUSY;
	}
	for (f = pfn; f < end;) {
		unsigned order;
		struct phys_frame *head = block_containing(a, f, &order);
		uint64_t h = head->pfn, h_end = h + (UINT64_C(1) << order);

		block_pop(a, head);
		if (h < pfn)
			free_pieces(a, h, pfn, false);
		if (h_end > end)
			free_pieces(a, end, h_end, false);
		f = h_end;
	}
	return 0;
}

int buddy_offline(struct phys_arena *a, uint64_t pfn, uint64_t n)
{
	int ret = take_range(a, pfn, n);

	lock_assert_held(&a->space->lock);
	if (ret)
		return ret;
	for (uint64_t i = 0; i < n; i++) {
		struct phys_frame *f = frame_at(a, pfn + i);

		frame_bank(a, f)->nr_free--;
		f->state = FRAME_ABSENT;
	}
	a->frames_total -= n;
	a->frames_free -= n;
	return 0;
}

/* A block of 2^order frames from the free lists, splitting a larger one if needed. */
static int alloc_order(struct phys_arena *a, unsigned order, uint64_t *pfn)
{
	lock_assert_held(&a->space->lock);
	for (unsigned o = order; o <= PHYS_MAX_ORDER; o++) {
		struct phys_frame *f;

		if (list_empty(&a->free_area[o]))
			continue;
		f = list_first(&a->free_area[o], struct phys_frame, link);
		block_pop(a, f);
		/* Give back the upper halves until the block is the size asked for. */
		while (o > order) {
			o--;
			block_push(a, f->pfn + (UINT64_C(1) << o), o);
		}
		*pfn = f->pfn;
		return 0;
	}
	return -ENOMEM;
}

/* Fill @ra with every free run of @a, merged across block boundaries. */
static int collect_runs(struct phys_arena *a, struct range_alloc *ra)
{
	lock_assert_held(&a->space->lock);
	ra_init(ra);
	for (unsigned o = 0; o <= PHYS_MAX_ORDER; o++) {
		struct list_node *n;

		list_for_each(n, &a->free_area[o]) {
			struct phys_frame *f = list_entry(n, struct phys_frame, link);

			if (ra_free(ra, f->pfn, UINT64_C(1) << o)) {
				ra_destroy(ra);
				return -ENOMEM;
			}
		}
	}
	return 0;
}

uint64_t buddy_largest_run(struct phys_arena *a)
{
	struct range_alloc ra;
	uint64_t largest;

	lock_assert_held(&a->space->lock);
	if (collect_runs(a, &ra))
		return 0;
	largest = ra_largest(&ra);
	ra_destroy(&ra);
	return largest;
}

/* The run scan: any free run where the request fits, lowest first. */
static int contig_from_runs(struct phys_arena *a, const struct phys_req *req, uint64_t *pfn)
{
	struct range_req q = {
		.len = req->nframes,
		.align = req->align,
		.bound = req->bound,
		.lo = 0,
		.hi = req->limit ? req->limit : UINT64_C(1) << (PHYS_PA_BITS - a->shift),
	};
	struct range_alloc ra;
	int ret;

	lock_assert_held(&a->space->lock);
	ret = collect_runs(a, &ra);
	if (ret)
		return ret;
	ret = ra_alloc(&ra, &q, pfn);
	ra_destroy(&ra);
	if (ret)
		return -ENOMEM;
	return take_range(a, *pfn, req->nframes);
}

static int contig_from_free(struct phys_arena *a, const struct phys_req *req, uint64_t *pfn)
{
	unsigned order = MAX(ilog2_up(req->nframes), ilog2(req->align));

	lock_assert_held(&a->space->lock);
	if (req->nframes > a->frames_free)
		return -ENOMEM;
	/*
	 * A naturally aligned block of 2^order frames crosses no boundary of
	 * that size or more. Below a limit, the scan: the free lists are not
	 * sorted by address.
	 */
	if (order <= PHYS_MAX_ORDER && (!req->bound || (UINT64_C(1) << order) <= req->bound) && !req->limit &&
	    !alloc_order(a, order, pfn)) {
		free_pieces(a, *pfn + req->nframes, *pfn + (UINT64_C(1) << order), false);
		return 0;
	}
	return contig_from_runs(a, req, pfn);
}

static bool req_valid(const struct phys_req *req)
{
	return req->nframes && is_pow2(req->align) && (!req->bound || is_pow2(req->bound)) &&
	       (!req->bound || req->nframes <= req->bound) && (!req->limit || req->nframes <= req->limit) &&
	       req->nframes < (UINT64_C(1) << (PHYS_PA_BITS - 12));
}

/* Add one bank of every free hugepage of @a's size and node; 0 if one was added. */
static int sweep_free_hugepages(struct phys_arena *a)
{
	uint64_t total, free;

	lock_assert_held(&a->space->lock);
	if (os_hugepage_pool(a->page_size, a->node, &total, &free) || !free)
		return -ENOMEM;
	return bank_add(a, free << a->shift);
}

/* Banks added by a search: give back those it left wholly free. */
static void release_added(struct phys_space *ps, unsigned first_new)
{
	lock_assert_held(&ps->lock);
	for (unsigned i = first_new; i < ps->nr_banks; i++)
		if (ps->banks[i] && !ps->banks[i]->released)
			bank_release(ps->banks[i]);
}

int phys_alloc_contig(struct phys_arena *a, const struct phys_req *req, pa_t *pa, bool *zero)
{
	struct phys_space *ps = a->space;
	int ret;

	if (!req_valid(req))
		return -EINVAL;
	mutex_lock(&ps->lock);
	ret = buddy_alloc_contig(a, req, pa, zero);
	mutex_unlock(&ps->lock);
	return ret;
}

int buddy_alloc_contig(struct phys_arena *a, const struct phys_req *req, pa_t *pa, bool *zero)
{
	struct phys_space *ps = a->space;
	unsigned first_new;
	uint64_t pfn;
	int ret = -ENOMEM;

	lock_assert_held(&a->space->lock);
	first_new = ps->nr_banks;
	for (unsigned tries = 0;; tries++) {
		ret = contig_from_free(a, req, &pfn);
		if (!ret || req->no_grow)
			break;
		if (tries == GROW_TRIES) {
			/*
			 * Last resort at host PA: every free hugepage of the machine
			 * at once, sorted by the scan, as DPDK's legacy mode does at
			 * start-up. What the block does not use goes back below.
			 */
			if (a->at_host_pa && !sweep_free_hugepages(a))
				ret = contig_from_free(a, req, &pfn);
			break;
		}
		/*
		 * An emulated bank is contiguous by construction: one the size of
		 * the request always fits it. Hugepages at their host PA may not be
		 * adjacent: each try takes twice as many as the last, a wider
		 * window for the scan, as DPDK's legacy mode takes every hugepage
		 * to sort them.
		 */
		ret = bank_add(a, ((req->nframes + req->align - 1) << tries) << a->shift);
		if (ret)
			break;
	}
	if (!ret) {
		bool z = mark_used(a, pfn, req->nframes);

		*pa = pfn_to_pa(a, pfn);
		if (zero)
			*zero = z;
	}
	/* Hugepages the search took and did not use go back to the machine now. */
	release_added(ps, first_new);
	return ret ? -ENOMEM : 0;
}

/* The highest order with a free block, or -1. */
static int highest_free_order(struct phys_arena *a)
{
	lock_assert_held(&a->space->lock);
	for (int o = PHYS_MAX_ORDER; o >= 0; o--)
		if (!list_empty(&a->free_area[o]))
			return o;
	return -1;
}

static void unwind_scattered(struct phys_arena *a, struct phys_extent *ext, unsigned n)
{
	lock_assert_held(&a->space->lock);
	for (unsigned i = 0; i < n; i++) {
		uint64_t pfn = pa_to_pfn(a, ext[i].pa);

		for (uint64_t j = 0; j < ext[i].nframes; j++) {
			struct phys_frame *f = frame_at(a, pfn + j);

			f->state = FRAME_FREE_TAIL;
			atomic_store_explicit(&f->pinref, PIN_NONE, memory_order_relaxed);
			f->zero = ext[i].zero;
			frame_bank(a, f)->nr_free++;
		}
		a->frames_free += ext[i].nframes;
		free_pieces(a, pfn, pfn + ext[i].nframes, true);
	}
}

/* Record [pfn, pfn+got) as allocated, merging it into the last extent when adjacent. */
static void extent_add(struct phys_arena *a, struct phys_extent *ext, unsigned *cnt, uint64_t pfn,
		       uint64_t got)
{
	bool z = mark_used(a, pfn, got);

	lock_assert_held(&a->space->lock);
	if (*cnt && pa_to_pfn(a, ext[*cnt - 1].pa) + ext[*cnt - 1].nframes == pfn) {
		/* Adjacent to the previous extent: one mapping instead of two. */
		ext[*cnt - 1].zero = ext[*cnt - 1].zero && z;
		ext[*cnt - 1].nframes += got;
		return;
	}
	ext[*cnt] = (struct phys_extent){ .pa = pfn_to_pa(a, pfn), .nframes = got, .zero = z };
	(*cnt)++;
}

int phys_alloc_scattered(struct phys_arena *a, uint64_t nframes, bool no_grow,
			 struct phys_extent *ext, unsigned max, unsigned *n)
{
	struct phys_space *ps = a->space;
	unsigned cnt = 0, first_new, grown = 0;
	uint64_t left = nframes;
	int ret = 0;

	if (!nframes || !max || nframes >= (UINT64_C(1) << (PHYS_PA_BITS - 12)))
		return -EINVAL;
	mutex_lock(&ps->lock);
	first_new = ps->nr_banks;
	while (left) {
		int top = highest_free_order(a);
		uint64_t pfn;

		if (top < 0) {
			/* Nothing free: a bank for the rest, then on as before. */
			if (no_grow || grown++ == GROW_TRIES || bank_add(a, left << a->shift)) {
				ret = -ENOMEM;
				break;
			}
			continue;
		}
		/*
		 * The last extent takes the rest in one piece: free frames too
		 * scattered for the extents left are better served by a new,
		 * contiguous bank than not at all.
		 */
		if (cnt + 1 >= max) {
			struct phys_req req = { .nframes = left, .align = 1 };

			ret = contig_from_free(a, &req, &pfn);
			if (ret && !no_grow && !bank_add(a, left << a->shift))
				ret = contig_from_free(a, &req, &pfn);
			if (ret) {
				ret = -ENOMEM;
				break;
			}
			extent_add(a, ext, &cnt, pfn, left);
			left = 0;
			break;
		}
		/* Largest blocks first: the fewest extents, the longest contiguous runs. */
		{
			unsigned order = MIN(MIN(ilog2(left), PHYS_MAX_ORDER), (unsigned)top);
			uint64_t got = UINT64_C(1) << order;

			alloc_order(a, order, &pfn); /* cannot fail: a block of at least order exists */
			extent_add(a, ext, &cnt, pfn, got);
			left -= got;
		}
	}
	if (ret) {
		unwind_scattered(a, ext, cnt);
		release_added(ps, first_new);
	} else {
		*n = cnt;
	}
	mutex_unlock(&ps->lock);
	return ret;
}

/* Needs the lock: give a frame back to the buddy. */
static void frame_release(struct phys_arena *a, struct phys_frame *f, bool zero)
{
	lock_assert_held(&a->space->lock);
	IOVM_ASSERT(f->state == FRAME_USED && frame_bank(a, f)->nr_free < frame_bank(a, f)->npages);
	f->state = FRAME_FREE_TAIL;
	f->zero = zero;
	frame_bank(a, f)->nr_free++;
	a->frames_free++;
	block_free_merge(a, f->pfn, 0);
}

int phys_free(struct phys_arena *a, pa_t pa, uint64_t nframes, bool zero)
{
	struct phys_space *ps = a->space;
	uint64_t pfn = pa_to_pfn(a, pa), run = 0;

	if (!nframes || !is_aligned(pa_val(pa), a->page_size) ||
	    nframes >= (UINT64_C(1) << (PHYS_PA_BITS - 12)))
		return -EINVAL;
	mutex_lock(&ps->lock);
	for (uint64_t i = 0; i < nframes; i++) {
		struct phys_frame *f = frame_at(a, pfn + i);

		/* A pool's frames go back through the pool (pool.c). */
		if (!f || f->state != FRAME_USED ||
		    (atomic_load_explicit(&f->pinref, memory_order_relaxed) & PIN_NONE) || f->pool) {
			mutex_unlock(&ps->lock);
			return -EINVAL;
		}
	}
	for (uint64_t i = 0; i <= nframes; i++) {
		struct phys_frame *f = i < nframes ? frame_at(a, pfn + i) : NULL;

		/*
		 * Runs of unpinned frames go back in blocks; a pinned one waits for
		 * its last pin. PIN_NONE goes on first: from then on no pin is
		 * taken, and the count it returns is the last word on the pins.
		 */
		if (f && !(atomic_fetch_or_explicit(&f->pinref, PIN_NONE, memory_order_acq_rel) / PIN_ONE)) {
			IOVM_ASSERT(frame_bank(a, f)->nr_free < frame_bank(a, f)->npages);
			f->state = FRAME_FREE_TAIL;
			f->zero = zero;
			frame_bank(a, f)->nr_free++;
			run++;
			continue;
		}
		if (run) {
			a->frames_free += run;
			free_pieces(a, pfn + i - run, pfn + i, true);
			run = 0;
		}
	}
	mutex_unlock(&ps->lock);
	return 0;
}

/* The frame at *@p and its arena, or NULL; *@p moves to the next page. No lock needed. */
static struct phys_frame *frame_step(struct phys_space *ps, uint64_t *p, struct phys_arena **a)
{
	struct phys_frame *f = bus_frame(ps, pa_make(*p), a);

	if (f)
		*p = align_down(*p, (*a)->page_size) + (*a)->page_size;
	return f;
}

/* Drop a pin. The last pin of a zombie gives it to the buddy: nothing else can reach it then. */
static void unpin_frame(struct phys_space *ps, struct phys_arena *a, struct phys_frame *f)
{
	if (atomic_fetch_sub_explicit(&f->pinref, PIN_ONE, memory_order_acq_rel) != PIN_ONE + PIN_NONE)
		return;
	mutex_lock(&ps->lock);
	frame_release(a, f, false);
	mutex_unlock(&ps->lock);
}

/* Past a granule of a shared window, which lives as long as it is on the bus: pinned by being there. */
static bool shared_step(struct phys_space *ps, uint64_t *p)
{
	if (!bus_shared(ps, pa_make(*p)))
		return false;
	*p = align_down(*p, BUS_GRANULE) + BUS_GRANULE;
	return true;
}

static void unpin_range(struct phys_space *ps, pa_t pa, uint64_t len)
{
	uint64_t end = pa_val(pa) + len;
	struct phys_arena *a;

	for (uint64_t p = pa_val(pa); p < end;) {
		struct phys_frame *f = frame_step(ps, &p, &a);

		if (!f && shared_step(ps, &p))
			continue;
		if (!f)
			break;
		unpin_frame(ps, a, f);
	}
}

/*
 * Pins take no lock, so that a deferred unmap does not wait for it: a
 * frame that is allocated and not freed has PIN_NONE clear, and the
 * compare-and-swap adds a pin only while it stays clear. phys_free() sets
 * it with one atomic OR, and so either sees the pin or makes it fail.
 */
int phys_pin(struct phys_space *ps, pa_t pa, uint64_t len)
{
	uint64_t end = pa_val(pa) + len;
	struct phys_arena *a;

	if (!len || end < pa_val(pa))
		return -EINVAL;
	for (uint64_t p = pa_val(pa); p < end;) {
		uint64_t at = p;
		struct phys_frame *f = frame_step(ps, &p, &a);
		uint32_t old;

		if (!f && shared_step(ps, &p))
			continue;
		old = f ? atomic_load_explicit(&f->pinref, memory_order_relaxed) : PIN_NONE;

		while (!(old & PIN_NONE) &&
		       !atomic_compare_exchange_weak_explicit(&f->pinref, &old, old + PIN_ONE, memory_order_acq_rel,
							      memory_order_relaxed))
			;
		if (old & PIN_NONE) {
			/* Not iovm's memory, free, or freed: undo the pins taken so far. */
			unpin_range(ps, pa, at - pa_val(pa));
			return -EINVAL;
		}
	}
	return 0;
}

void phys_unpin(struct phys_space *ps, pa_t pa, uint64_t len)
{
	unpin_range(ps, pa, len);
}

void phys_unpin_many(struct phys_space *ps, const pa_t *pa, const uint64_t *len, size_t stride, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		const pa_t *p = (const pa_t *)(const void *)((const char *)pa + i * stride);
		const uint64_t *l = (const uint64_t *)(const void *)((const char *)len + i * stride);

		if (pa_valid(*p))
			unpin_range(ps, *p, *l);
	}
}

bool phys_pinned(struct phys_space *ps, pa_t pa, uint64_t len)
{
	uint64_t end = pa_val(pa) + len;
	bool pinned = len > 0;

	/*
	 * No lock, as for phys_pin(): the oracle asks from inside a device's
	 * access, and a device must not wait there for a lock whose holder may
	 * be waiting for malloc (which fork() holds; fork() waits for the
	 * monitor, the monitor for the devices). A frame with a pin is never
	 * reused: freed while pinned, it waits as a zombie.
	 */
	for (uint64_t p = pa_val(pa); pinned && p < end;) {
		struct phys_arena *a;
		struct phys_frame *f = frame_step(ps, &p, &a);

		if (!f && shared_step(ps, &p))
			continue;

		pinned = f && atomic_load_explicit(&f->pinref, memory_order_acquire) >= PIN_ONE;
	}
	return pinned;
}

int buddy_alloc_at(struct phys_arena *a, uint64_t pfn, uint64_t n, bool *zero)
{
	bool z;

	lock_assert_held(&a->space->lock);
	for (uint64_t i = 0; i < n; i++)
		if (!frame_at(a, pfn + i) || frame_at(a, pfn + i)->state == FRAME_ABSENT)
			return -ENOENT;
	if (take_range(a, pfn, n))
		return -EBUSY;
	z = mark_used(a, pfn, n);
	if (zero)
		*zero = z;
	return 0;
}

int phys_alloc_at(struct phys_arena *a, pa_t pa, uint64_t nframes, bool *zero)
{
	int ret;

	if (!nframes || !is_aligned(pa_val(pa), a->page_size) || nframes >= (UINT64_C(1) << (PHYS_PA_BITS - 12)) ||
	    pa_val(pa) + (nframes << a->shift) > (UINT64_C(1) << PHYS_PA_BITS))
		return -EINVAL;
	mutex_lock(&a->space->lock);
	ret = buddy_alloc_at(a, pa_to_pfn(a, pa), nframes, zero);
	mutex_unlock(&a->space->lock);
	return ret;
}

void buddy_free_block(struct phys_arena *a, uint64_t pfn, uint64_t n)
{
	lock_assert_held(&a->space->lock);
	for (uint64_t i = 0; i < n; i++) {
		struct phys_frame *f = frame_at(a, pfn + i);

		IOVM_ASSERT(f->state == FRAME_USED);
		f->state = FRAME_FREE_TAIL;
		atomic_store_explicit(&f->pinref, PIN_NONE, memory_order_relaxed);
		f->pool = 0;
		frame_bank(a, f)->nr_free++;
	}
	a->frames_free += n;
	free_pieces(a, pfn, pfn + n, true);
}
