/* SPDX-License-Identifier: MIT */
/*
 * place.c - where a guest's memory goes when nobody names the banks: the
 * halving fallback of Xen's allocate_memory_11 (xen/arch/arm/domain_build.c),
 * over an arena's buddy or over a reserved pool.
 *
 * A direct-mapped guest sees its memory as banks (guest physical ==
 * physical), and every bank is a region its firmware tables must describe:
 * the fewer the better, and there is a hard maximum. So memory comes in
 * the largest naturally aligned blocks the allocator can give. When a
 * block of 2^k frames cannot be had, try 2^(k-1), down to a minimum chunk;
 * blocks that turn out adjacent merge into one bank. Memory below a limit
 * (a 32-bit DMA mask: the devices such guests get are often 32-bit) is
 * tried first, and only when even the minimum chunk is not there below it
 * does the search go above. The order never climbs back: after a halving,
 * larger blocks have just been shown absent.
 *
 * The weakness the design discussion points out holds here too: once the
 * machine's memory is fragmented by other users, a guest created or
 * rebooted late gets many small banks, or none. Reserved pools (pool.c)
 * are the answer; `iovm bench placement` measures both.
 */
#include <errno.h>
#include <string.h>

#include "base/compiler.h"
#include "base/lock.h"
#include "phys/phys_internal.h"

/* The largest k with 2^k <= n (n > 0). */
static unsigned floor_order(uint64_t n)
{
	return 63u - (unsigned)__builtin_clzll(n);
}

/*
 * One naturally aligned block of 2^order frames, ending at or below frame
 * @limit (0: anywhere), from @pool or from the buddy. Needs the lock.
 */
static int block_alloc(struct phys_arena *a, struct phys_pool *pool, unsigned order, uint64_t limit, bool no_grow,
		       uint64_t *pfn)
{
	uint64_t n = UINT64_C(1) << order;
	struct phys_req req = { .nframes = n, .align = n, .limit = limit, .no_grow = no_grow };
	pa_t pa;
	int ret;

	lock_assert_held(&a->space->lock);
	if (pool) {
		struct range_req q = { .len = n, .align = n, .lo = 0, .hi = limit ? limit : UINT64_MAX };

		return ra_alloc(&pool->free, &q, pfn) ? -ENOMEM : 0;
	}
	if (limit && limit < n)
		return -ENOMEM;
	ret = buddy_alloc_contig(a, &req, &pa, NULL);
	if (!ret)
		*pfn = pa_to_pfn(a, pa);
	return ret;
}

/* Give back a block place_banks() took. Needs the lock. */
static void block_free(struct phys_arena *a, struct phys_pool *pool, uint64_t pfn, uint64_t n)
{
	lock_assert_held(&a->space->lock);
	if (pool)
		ra_free(&pool->free, pfn, n); /* cannot fail: it was just taken out of the tree */
	else
		buddy_free_block(a, pfn, n);
}

/*
 * Put [pa, pa+len) in the sorted banks, merged with the banks it touches.
 * False when it touches none and there are @max banks already.
 */
static bool bank_insert(struct phys_range *b, unsigned *n, unsigned max, pa_t pa, uint64_t len)
{
	unsigned i = 0;
	bool prev, next;

	while (i < *n && pa_val(b[i].pa) < pa_val(pa))
		i++;
	prev = i > 0 && pa_val(b[i - 1].pa) + b[i - 1].len == pa_val(pa);
	next = i < *n && pa_val(pa) + len == pa_val(b[i].pa);
	if (prev && next) {
		b[i - 1].len += len + b[i].len;
		memmove(&b[i], &b[i + 1], (*n - i - 1) * sizeof(*b));
		(*n)--;
	} else if (prev) {
		b[i - 1].len += len;
	} else if (next) {
		b[i].pa = pa;
		b[i].len += len;
	} else {
		if (*n == max)
			return false;
		memmove(&b[i + 1], &b[i], (*n - i) * sizeof(*b));
		b[i] = (struct phys_range){ .pa = pa, .len = len };
		(*n)++;
	}
	return true;
}

int place_banks(struct phys_arena *a, struct phys_pool *pool, uint64_t nframes, const struct phys_placement *pl,
		struct phys_range *banks, unsigned *nr_banks)
{
	unsigned order = floor_order(nframes), min_order = floor_order(pl->min_chunk);
	bool low = pl->below != 0;
	uint64_t left = nframes;

	lock_assert_held(&a->space->lock);
	*nr_banks = 0;
	while (left) {
		uint64_t pfn;

		order = MIN(order, floor_order(left));
		if (!block_alloc(a, pool, order, low ? pl->below : 0, pl->no_grow, &pfn)) {
			if (!bank_insert(banks, nr_banks, pl->max_banks, pfn_to_pa(a, pfn),
					 (UINT64_C(1) << order) << a->shift)) {
				block_free(a, pool, pfn, UINT64_C(1) << order);
				goto unwind; /* as many banks as allowed, and this block touches none */
			}
			left -= UINT64_C(1) << order;
			continue;
		}
		if (order > min_order) {
			order--;
			continue;
		}
		if (low) {
			/* Not even the minimum chunk below the limit: anywhere, from the largest order again. */
			low = false;
			order = floor_order(left);
			continue;
		}
		goto unwind;
	}
	return 0;

unwind:
	for (unsigned i = 0; i < *nr_banks; i++)
		block_free(a, pool, pa_to_pfn(a, banks[i].pa), banks[i].len >> a->shift);
	*nr_banks = 0;
	return -ENOMEM;
}

/* The limit on banks one call may ask for: a guest's firmware tables describe a handful. */
#define PLACE_MAX_BANKS 256

bool placement_ok(const struct phys_arena *a, uint64_t nframes, const struct phys_placement *pl)
{
	return a && pl && nframes && nframes < (UINT64_C(1) << (PHYS_PA_BITS - 12)) && pl->min_chunk &&
	       is_pow2(pl->min_chunk) && pl->max_banks && pl->max_banks <= PLACE_MAX_BANKS &&
	       pl->below < (UINT64_C(1) << (PHYS_PA_BITS - a->shift));
}

int phys_alloc_banks(struct phys_arena *a, struct phys_pool *pool, uint64_t nframes,
		     const struct phys_placement *pl, struct phys_range *banks, unsigned *nr_banks)
{
	int ret;

	if (!placement_ok(a, nframes, pl) || !banks || !nr_banks || (pool && pool->arena != a))
		return -EINVAL;
	mutex_lock(&a->space->lock);
	ret = place_banks(a, pool, nframes, pl, banks, nr_banks);
	mutex_unlock(&a->space->lock);
	return ret;
}

int phys_free_banks(struct phys_arena *a, struct phys_pool *pool, const struct phys_range *banks, unsigned n)
{
	int ret = 0;

	if (!a || !banks || (pool && pool->arena != a))
		return -EINVAL;
	for (unsigned i = 0; i < n; i++)
		if (!banks[i].len || !is_aligned(pa_val(banks[i].pa) | banks[i].len, a->page_size))
			return -EINVAL;
	if (!pool) {
		/* phys_free() checks each bank, and keeps pinned frames until their last pin. */
		for (unsigned i = 0; i < n; i++) {
			int r = phys_free(a, banks[i].pa, banks[i].len >> a->shift, false);

			ret = ret ? ret : r;
		}
		return ret;
	}
	mutex_lock(&a->space->lock);
	for (unsigned i = 0; i < n && !ret; i++)
		if (!pool_holds(pool, banks[i]))
			ret = -EINVAL;
	for (unsigned i = 0; i < n && !ret; i++) {
		/* ra_free() refuses, changing nothing, a range any part of which is free already. */
		ret = ra_free(&pool->free, pa_to_pfn(a, banks[i].pa), banks[i].len >> a->shift);
		if (ret) /* all or nothing: take back what this call freed */
			while (i--)
				ra_reserve(&pool->free, pa_to_pfn(a, banks[i].pa), banks[i].len >> a->shift);
	}
	mutex_unlock(&a->space->lock);
	return ret;
}
