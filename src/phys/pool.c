/* SPDX-License-Identifier: MIT */
/*
 * pool.c - reserved pools: frames taken out of an arena's buddy and kept
 * for one owner, so that what other users of memory do cannot fragment
 * them. A direct-mapped guest placed in a pool can always be created again
 * on the same banks, and a guest of the pool's size always finds them:
 * the answer the Xen 1:1 design discussion gives to "you may end up with
 * many small banks if the guest is not created right after boot, or is
 * rebooted".
 *
 * A pool is carved with the same halving placement as a guest (place.c),
 * at start-up or at run time while the memory is free; max_banks 1 asks
 * for one contiguous range. Its frames stay USED in the buddy, marked
 * with the pool's id (phys_free() refuses them), and its own gap tree
 * hands them out: any size and alignment, or exactly where asked.
 *
 * Locking: phys_space.lock, for the pool list and every pool's tree.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/compiler.h"
#include "phys/phys_internal.h"

int phys_pool_create(struct phys_arena *a, const char *name, uint64_t nframes, const struct phys_placement *pl,
		     struct phys_pool **out)
{
	struct phys_space *ps;
	struct phys_placement carve;
	struct phys_pool *pool;
	int ret;

	if (!placement_ok(a, nframes, pl) || !name || !out || strlen(name) >= sizeof(pool->name))
		return -EINVAL;
	pool = calloc(1, sizeof(*pool));
	if (!pool)
		return -ENOMEM;
	ps = a->space;
	carve = *pl;
	carve.max_banks = MIN(pl->max_banks, PHYS_POOL_MAX_RANGES);
	pool->arena = a;
	pool->nframes = nframes;
	snprintf(pool->name, sizeof(pool->name), "%s", name);
	ra_init(&pool->free);
	pthread_mutex_lock(&ps->lock);
	ret = place_banks(a, NULL, nframes, &carve, pool->ranges, &pool->nr_ranges);
	if (ret)
		goto unlock;
	pool->id = ++ps->next_pool_id;
	for (unsigned i = 0; i < pool->nr_ranges; i++) {
		uint64_t pfn = pa_to_pfn(a, pool->ranges[i].pa), n = pool->ranges[i].len >> a->shift;

		for (uint64_t f = 0; f < n; f++)
			frame_at(a, pfn + f)->pool = pool->id;
		ret = ra_free(&pool->free, pfn, n);
		if (ret)
			goto give_back;
	}
	list_add_tail(&ps->pools, &pool->link);
	pthread_mutex_unlock(&ps->lock);
	*out = pool;
	return 0;

give_back:
	for (unsigned i = 0; i < pool->nr_ranges; i++)
		buddy_free_block(a, pa_to_pfn(a, pool->ranges[i].pa), pool->ranges[i].len >> a->shift);
unlock:
	pthread_mutex_unlock(&ps->lock);
	ra_destroy(&pool->free);
	free(pool);
	return ret;
}

int phys_pool_destroy(struct phys_pool *pool)
{
	struct phys_space *ps;
	struct phys_arena *a;

	if (!pool)
		return -EINVAL;
	a = pool->arena;
	ps = a->space;
	pthread_mutex_lock(&ps->lock);
	if (pool->free.free_len != pool->nframes) {
		pthread_mutex_unlock(&ps->lock);
		return -EBUSY;
	}
	for (unsigned i = 0; i < pool->nr_ranges; i++)
		buddy_free_block(a, pa_to_pfn(a, pool->ranges[i].pa), pool->ranges[i].len >> a->shift);
	list_del(&pool->link);
	pthread_mutex_unlock(&ps->lock);
	ra_destroy(&pool->free);
	free(pool);
	return 0;
}

bool pool_holds(const struct phys_pool *pool, struct phys_range r)
{
	for (unsigned i = 0; i < pool->nr_ranges; i++)
		if (pa_val(r.pa) >= pa_val(pool->ranges[i].pa) &&
		    pa_val(r.pa) + r.len <= pa_val(pool->ranges[i].pa) + pool->ranges[i].len)
			return true;
	return false;
}

int phys_pool_alloc_at(struct phys_pool *pool, pa_t pa, uint64_t nframes)
{
	struct phys_arena *a;
	int ret;

	if (!pool || !nframes || !is_aligned(pa_val(pa), pool->arena->page_size) || nframes > pool->nframes)
		return -EINVAL;
	a = pool->arena;
	/* The pool's ranges never change: only its tree needs the lock. */
	if (!pool_holds(pool, (struct phys_range){ .pa = pa, .len = nframes << a->shift }))
		return -ENOENT;
	pthread_mutex_lock(&a->space->lock);
	ret = ra_reserve(&pool->free, pa_to_pfn(a, pa), nframes);
	pthread_mutex_unlock(&a->space->lock);
	return ret;
}

struct phys_arena *phys_pool_arena(const struct phys_pool *pool)
{
	return pool ? pool->arena : NULL;
}

/* Pools still there when the space goes: their frames go with the banks. Needs nothing: the space is dying. */
void pool_destroy_all(struct phys_space *ps)
{
	while (!list_empty(&ps->pools)) {
		struct phys_pool *pool = list_first(&ps->pools, struct phys_pool, link);

		list_del(&pool->link);
		ra_destroy(&pool->free);
		free(pool);
	}
}
