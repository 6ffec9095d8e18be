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

#include <iovm/phys.h>

#include "base/compiler.h"
#include "base/ctx.h"
#include "base/error.h"
#include "base/fault_inject.h"
#include "base/lock.h"
#include "phys/phys_internal.h"

/* The pool named @name, or NULL. Needs the lock. */
static struct phys_pool *pool_find(struct phys_space *ps, const char *name)
{
	struct list_node *n;

	lock_assert_held(&ps->lock);
	list_for_each(n, &ps->pools) {
		struct phys_pool *pool = list_entry(n, struct phys_pool, link);

		if (!strcmp(pool->name, name))
			return pool;
	}
	return NULL;
}

int phys_pool_create(struct phys_arena *a, const char *name, uint64_t nframes, const struct phys_placement *pl,
		     struct phys_pool **out)
{
	struct phys_space *ps;
	struct phys_placement carve;
	struct phys_pool *pool;
	int ret;

	if (!placement_ok(a, nframes, pl) || !name || !out || strlen(name) >= sizeof(pool->name))
		return -EINVAL;
	pool = fi_calloc(1, sizeof(*pool));
	if (!pool)
		return -ENOMEM;
	ps = a->space;
	carve = *pl;
	carve.max_banks = MIN(pl->max_banks, PHYS_POOL_MAX_RANGES);
	pool->arena = a;
	pool->nframes = nframes;
	snprintf(pool->name, sizeof(pool->name), "%s", name);
	ra_init(&pool->free);
	mutex_lock(&ps->lock);
		ret = -EEXIST;
	if (pool_find(ps, name))
		goto unlock;
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
	mutex_unlock(&ps->lock);
	*out = pool;
	return 0;

give_back:
	for (unsigned i = 0; i < pool->nr_ranges; i++)
		buddy_free_block(a, pa_to_pfn(a, pool->ranges[i].pa), pool->ranges[i].len >> a->shift);
unlock:
	mutex_unlock(&ps->lock);
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
	mutex_lock(&ps->lock);
	if (pool->free.free_len != pool->nframes) {
		mutex_unlock(&ps->lock);
		return -EBUSY;
	}
	for (unsigned i = 0; i < pool->nr_ranges; i++)
		buddy_free_block(a, pa_to_pfn(a, pool->ranges[i].pa), pool->ranges[i].len >> a->shift);
	list_del(&pool->link);
	mutex_unlock(&ps->lock);
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
	mutex_lock(&a->space->lock);
	ret = ra_reserve(&pool->free, pa_to_pfn(a, pa), nframes);
	mutex_unlock(&a->space->lock);
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

int phys_pool_lookup(struct phys_space *ps, const char *name, struct phys_pool **out)
{
	struct phys_pool *pool;

	mutex_lock(&ps->lock);
	pool = pool_find(ps, name);
	mutex_unlock(&ps->lock);
	if (!pool)
		return -ENOENT;
	*out = pool;
	return 0;
}

/* ---- the public API ---- */

static struct iovm_pool *pool_handle(struct phys_pool *pool)
{
	return (struct iovm_pool *)(void *)pool;
}

IOVM_API int iovm_pool_create(struct iovm_ctx *ctx, const char *name, uint64_t size, uint64_t page_size,
			      unsigned max_ranges, struct iovm_pool **out)
{
	uint64_t sizes[2];
	unsigned nr_sizes;
	int ret = -ENOMEM;

	err_enter();
	if (!ctx || !name || !*name || strlen(name) >= sizeof(((struct phys_pool *)0)->name) || !out || !size ||
	    !max_ranges || max_ranges > IOVM_POOL_MAX_RANGES)
		return err_inval("!ctx || !name || !*name || strlen(name) >= sizeof(((struct phys_pool *)0)->name) || !out || !size || !max_ranges || max_ranges > IOVM_POOL_MAX_RANGES");
	if (page_size && page_size != SZ_4K && page_size != SZ_2M && page_size != SZ_1G)
		return err_inval("page_size && page_size != SZ_4K && page_size != SZ_2M && page_size != SZ_1G");
	/* Auto: 2 MiB hugepages when the machine gives them, else 4 KiB. */
	nr_sizes = phys_page_sizes(ctx->phys, page_size, sizes);
	for (unsigned i = 0; i < nr_sizes; i++) {
		struct phys_placement pl = { .max_banks = max_ranges };
		struct phys_arena *a;
		struct phys_pool *pool;

		if (!is_aligned(size, sizes[i]))
			return err_inval("!is_aligned(size, sizes[i])");
		/* More than the physical address space holds: memory that is not there, as phys.h says. */
		if (size / sizes[i] >= (UINT64_C(1) << (PHYS_PA_BITS - 12))) {
			ret = -ENOMEM;
			continue;
		}
		ret = phys_arena_get(ctx->phys, sizes[i], ctx->cfg.numa_node, &a);
		if (ret)
			continue;
		/* Halving stops at 2 MiB: smaller ranges are not worth a pool's reservation. */
		pl.min_chunk = MAX(SZ_2M / sizes[i], UINT64_C(1));
		ret = phys_pool_create(a, name, size / sizes[i], &pl, &pool);
		if (!ret) {
			*out = pool_handle(pool);
			return 0;
		}
		if (ret != -ENOMEM)
			break;
	}
	return err_detail(ret, IOVM_LOG_DEBUG, "pool '%s' of %lu MiB: %s", name, (unsigned long)(size >> 20),
			  strerror(-ret));
}

IOVM_API int iovm_pool_lookup(struct iovm_ctx *ctx, const char *name, struct iovm_pool **out)
{
	struct phys_pool *pool;
	int ret;

	err_enter();
	if (!ctx || !name || !out)
		return err_inval("!ctx || !name || !out");
	ret = phys_pool_lookup(ctx->phys, name, &pool);
	if (!ret)
		*out = pool_handle(pool);
	return ret;
}

IOVM_API int iovm_pool_destroy(struct iovm_pool *pool)
{
	err_enter();
	if (!pool)
		return err_inval("!pool");
	return phys_pool_destroy(phys_pool_of(pool));
}
