/* SPDX-License-Identifier: MIT */
/*
 * memmap.c - SPDK's memory maps (include/iovm/memmap.h): a 64-bit value per
 * 2 MiB granule of user address space, found in O(1) without a lock.
 *
 * The table is SPDK's two-level layout (base/radix.h): a second-level
 * table per GiB, made the first time a granule in it is set and kept
 * until the map goes, so a lookup that found it may use it without any
 * reclamation. Entries hold the translation XOR the default: a table
 * fresh from the kernel is all default, and no table at all is too.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "base/ctx.h"
#include "base/error.h"
#include "base/fault_inject.h"
#include "base/log.h"
#include "mem/mem_internal.h"
#include "mem/memmap.h"

static inline uint64_t entry_load(const struct iovm_mem_map *map, uint64_t g)
{
	_Atomic uint64_t *e = radix_lookup(&map->table, g);

	return e ? atomic_load_explicit(e, memory_order_acquire) ^ map->def : map->def;
}

/* Whether [vaddr, vaddr+size) is a range a map may hold: whole granules, at least one, below the limit. */
static int range_check(uint64_t vaddr, uint64_t size)
{
	if (!size)
		return err_inval("size 0");
	if ((vaddr | size) & (MM_GRANULE - 1))
		return err_detail(-EINVAL, IOVM_LOG_DEBUG,
				  "invalid argument: vaddr %#" PRIx64 " and size %#" PRIx64
				  " must be multiples of 2 MiB", vaddr, size);
	if (vaddr >= IOVM_MEM_MAP_VA_LIMIT || size > IOVM_MEM_MAP_VA_LIMIT - vaddr)
		return err_detail(-EINVAL, IOVM_LOG_DEBUG,
				  "invalid argument: %#" PRIx64 " + %#" PRIx64 " is not below 2^48, the end of user space",
				  vaddr, size);
	return 0;
}

int mm_notify(struct iovm_mem_map *map, enum iovm_mem_map_notify_action action, uint64_t va, uint64_t len)
{
	const char *api = err_api;
	int ret;

	if (!map->ops.notify)
		return 0;
	/*
	 * As a memory event callback: the heap refuses its calls from here
	 * (-EDEADLK) instead of waiting for a lock this thread may hold, and
	 * so does the registry.
	 */
	event_cb_depth++;
	ret = map->ops.notify(map->cb_ctx, map, action, (void *)(uintptr_t)va, (size_t)len);
	event_cb_depth--;
	/* The callback's own calls named themselves; what follows is the caller's again. */
	err_api = api;
	return ret > 0 ? -EIO : ret;
}

void mm_map_destroy(struct iovm_mem_map *map)
{
	radix_destroy(&map->table);
	mutex_destroy(&map->lock);
	free(map);
}

IOVM_API int iovm_mem_map_alloc(struct iovm_ctx *ctx, uint64_t default_translation,
				const struct iovm_mem_map_ops *ops, void *cb_ctx, struct iovm_mem_map **out)
{
	struct memmap_space *mm;
	struct iovm_mem_map *map;
	uint64_t failed = 0;
	int ret = 0;

	err_enter();
	if (!ctx || !out)
		return err_inval("!ctx || !map");
	if (event_in_callback())
		return err_detail(-EDEADLK, IOVM_LOG_DEBUG, "called from a memory event or map notify callback");
	mm = memmap_space_get(ctx, true, __func__, &ret);
	if (!mm)
		return ret;
	map = fi_calloc(1, sizeof(*map));
	if (!map)
		return -ENOMEM;
	map->mm = mm;
	map->def = default_translation;
	if (ops)
		map->ops = *ops;
	map->cb_ctx = cb_ctx;
	mutex_init(&map->lock);
	ret = radix_init(&map->table, MM_KEY_BITS, MM_L2_BITS, sizeof(_Atomic uint64_t));
	if (ret)
		goto free_map;

	/* Under the registry's lock from the walk to the list: no change slips between. */
	mutex_lock(&mm->lock);
	if (map->ops.notify) {
		ret = mm_walk(mm, map, IOVM_MEM_MAP_NOTIFY_REGISTER, UINT64_MAX, &failed);
		if (ret) {
			mm_walk(mm, map, IOVM_MEM_MAP_NOTIFY_UNREGISTER, failed, NULL);
			mutex_unlock(&mm->lock);
			err_detail(ret, IOVM_LOG_DEBUG, "the notify callback refused %#" PRIx64 ": %s",
				   failed << MM_GRANULE_SHIFT, iovm_strerror(ret));
			goto destroy_table;
		}
	}
	list_add_tail(&mm->maps, &map->link);
	mutex_unlock(&mm->lock);
	*out = map;
	return 0;

destroy_table:
	radix_destroy(&map->table);
free_map:
	mutex_destroy(&map->lock);
	free(map);
	return ret;
}

IOVM_API int iovm_mem_map_free(struct iovm_mem_map **pmap)
{
	struct iovm_mem_map *map;
	struct memmap_space *mm;

	err_enter();
	if (!pmap)
		return err_inval("!map");
	map = *pmap;
	if (!map)
		return 0;
	if (event_in_callback())
		return err_detail(-EDEADLK, IOVM_LOG_DEBUG, "called from a memory event or map notify callback");
	mm = map->mm;
	mutex_lock(&mm->lock);
	if (map->ops.notify)
		mm_walk(mm, map, IOVM_MEM_MAP_NOTIFY_UNREGISTER, UINT64_MAX, NULL);
	list_del(&map->link);
	mutex_unlock(&mm->lock);
	mm_map_destroy(map);
	*pmap = NULL;
	return 0;
}

/* Store @tr in granules [g0, g1). Needs @map's lock; the tables exist, or @tr is the default. */
static void store_range(struct iovm_mem_map *map, uint64_t g0, uint64_t g1, uint64_t tr)
{
	lock_assert_held(&map->lock);
	for (uint64_t g = g0; g < g1; g++) {
		_Atomic uint64_t *e = radix_lookup(&map->table, g);

		if (e)
			atomic_store_explicit(e, tr ^ map->def, memory_order_release);
	}
}

IOVM_API int iovm_mem_map_set_translation(struct iovm_mem_map *map, uint64_t vaddr, uint64_t size,
					  uint64_t translation)
{
	uint64_t g0, g1;
	int ret;

	err_enter();
	if (!map)
		return err_inval("!map");
	ret = range_check(vaddr, size);
	if (ret)
		return ret;
	g0 = vaddr >> MM_GRANULE_SHIFT;
	g1 = (vaddr + size) >> MM_GRANULE_SHIFT;
	mutex_lock(&map->lock);
	/* Every table first: a table that cannot be made fails the call before any granule changed. */
	for (uint64_t t = g0 >> MM_L2_BITS; t <= (g1 - 1) >> MM_L2_BITS; t++) {
		if (!radix_lookup_alloc(&map->table, t << MM_L2_BITS)) {
			mutex_unlock(&map->lock);
			return err_detail(-ENOMEM, IOVM_LOG_DEBUG, "no memory for the map's table at %#" PRIx64,
					  t << (MM_L2_BITS + MM_GRANULE_SHIFT));
		}
	}
	store_range(map, g0, g1, translation);
	mutex_unlock(&map->lock);
	return 0;
}

IOVM_API int iovm_mem_map_clear_translation(struct iovm_mem_map *map, uint64_t vaddr, uint64_t size)
{
	int ret;

	err_enter();
	if (!map)
		return err_inval("!map");
	ret = range_check(vaddr, size);
	if (ret)
		return ret;
	/* Granules without a table are default already: clearing needs no memory, and cannot fail. */
	mutex_lock(&map->lock);
	store_range(map, vaddr >> MM_GRANULE_SHIFT, (vaddr + size) >> MM_GRANULE_SHIFT, map->def);
	mutex_unlock(&map->lock);
	return 0;
}

IOVM_API uint64_t iovm_mem_map_translate(const struct iovm_mem_map *map, uint64_t vaddr, uint64_t *size)
{
	uint64_t g, tr, prev, have;

	if (unlikely(!map)) {
		errno = -err_hot(-EINVAL, "invalid argument: !map");
		return IOVM_ADDR_INVALID;
	}
	g = vaddr >> MM_GRANULE_SHIFT;
	tr = entry_load(map, g); /* out of range: no table, the default */
	if (!size)
		return tr;
	have = MM_GRANULE - (vaddr & (MM_GRANULE - 1));
	if (!map->ops.are_contiguous || tr == map->def) {
		*size = MIN(*size, have);
		return tr;
	}
	prev = tr;
	while (have < *size) {
		uint64_t next = entry_load(map, ++g);

		/* A granule without a translation continues nothing, whatever the callback would say. */
		if (next == map->def || !map->ops.are_contiguous(map->cb_ctx, prev, next))
			break;
		have += MM_GRANULE;
		prev = next;
	}
	*size = MIN(*size, have);
	return tr;
}
