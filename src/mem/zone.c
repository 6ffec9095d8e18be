/* SPDX-License-Identifier: MIT */
/*
 * zone.c - named zones: physically contiguous, zeroed buffers for
 * descriptor rings and other common buffers, found again by name.
 *
 * Reserving is idempotent, unlike rte_memzone_reserve(), which fails with
 * EEXIST: a queue that restarts asks for its ring again and gets the same
 * memory back. A zone's name is the key; a request the existing zone cannot
 * satisfy (too small, misaligned, elsewhere) is refused, not resized.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/ctx.h"
#include "base/error.h"
#include "base/fault_inject.h"
#include "base/lock.h"
#include "base/log.h"
#include "mem/mem_internal.h"

/* Zones default to cache-line alignment, as DPDK's memzones do. */
#define ZONE_DEFAULT_ALIGN 64

/* Needs zone_lock. */
static struct mem_zone *zone_find(struct mem_space *ms, const char *name)
{
	struct list_node *n;

	lock_assert_held(&ms->zone_lock);
	list_for_each(n, &ms->zones) {
		struct mem_zone *z = list_entry(n, struct mem_zone, link);

		if (!strcmp(z->pub.name, name))
			return z;
	}
	return NULL;
}

static int name_check(const char *name)
{
	size_t len;

	if (!name)
		return err_inval("!name");
	len = strnlen(name, IOVM_ZONE_NAMESIZE);
	if (!len || len == IOVM_ZONE_NAMESIZE)
		return err_detail(-EINVAL, IOVM_LOG_DEBUG, "zone name must be 1 to %d characters",
				  IOVM_ZONE_NAMESIZE - 1);
	return 0;
}

/* Placement bits of the flags: what must match for an existing zone to do. */
#define ZONE_PLACEMENT_FLAGS (IOVM_DMA_PAGE_4K | IOVM_DMA_PAGE_2M | IOVM_DMA_PAGE_1G | 0x00ff0000u)

static bool zone_satisfies(const struct mem_zone *z, size_t size, size_t align, uint32_t flags)
{
	unsigned shift = (flags >> 8) & 0xff;

	if (z->pub.len < size || !is_aligned((uintptr_t)z->pub.va, align))
		return false;
	if ((flags & ZONE_PLACEMENT_FLAGS) != (z->pub.flags & ZONE_PLACEMENT_FLAGS))
		return false;
	/* Physical and virtual offsets in a page agree: checking the PA checks both. */
	if (shift && align_down(pa_val(z->pub.pa), UINT64_C(1) << shift) !=
			     align_down(pa_val(z->pub.pa) + size - 1, UINT64_C(1) << shift))
		return false;
	return true;
}

IOVM_API int iovm_zone_reserve(struct iovm_ctx *ctx, const char *name, size_t size, size_t align,
			       uint32_t flags, const struct iovm_zone **out)
{
	const uint32_t allowed = ZONE_PLACEMENT_FLAGS | 0x0000ff00u | IOVM_DMA_ZERO | IOVM_DMA_CONTIG | IOVM_DMA_KEEP;
	const struct mem_shared *sh;
	struct iovm_dma_xlate x;
	struct mem_space *ms;
	struct mem_zone *z;
	void *mem;
	int ret;

	err_enter();
	const uint32_t pages = flags & (IOVM_DMA_PAGE_4K | IOVM_DMA_PAGE_2M | IOVM_DMA_PAGE_1G);

	/* Before the name is looked up: an existing zone does not make conflicting pages valid. */
	if (!ctx || !out || !size || (flags & ~allowed) || (align && !is_pow2(align)) ||
	    (pages && !is_pow2(pages)))
		return err_inval("!ctx || !out || !size || (flags & ~allowed) || (align && !is_pow2(align)) || (pages && !is_pow2(pages))");
	ret = name_check(name);
	if (ret)
		return ret;
	if (event_in_callback())
		return -EDEADLK;
	ms = ctx->mem;
	/* Every flag iovm_dma_alloc() refuses, before the lookup: mem.h says whether or not the zone exists. */
	ret = mem_flags_check(ms, size, flags);
	if (ret)
		return ret;
	align = align ? align : ZONE_DEFAULT_ALIGN;
	/* A zone is always zeroed, contiguous, and kept (it belongs to a share, not to a process). */
	flags &= ~(IOVM_DMA_ZERO | IOVM_DMA_CONTIG | IOVM_DMA_KEEP);
	sh = mem_shared_of(ms);
	if (sh)
		return sh->ops->zone_reserve(sh->arg, name, size, align, flags, out);

	mutex_lock(&ms->zone_lock);
	z = zone_find(ms, name);
	if (z) {
		ret = zone_satisfies(z, size, align, flags) ? 1 : -EEXIST;
		if (ret == 1)
			*out = &z->pub;
		else
			err_detail(-EEXIST, IOVM_LOG_DEBUG,
				   "zone '%s' exists with %zu bytes and does not satisfy the request",
				   name, z->pub.len);
		goto unlock;
	}
	z = fi_calloc(1, sizeof(*z));
	if (!z) {
		ret = -ENOMEM;
		goto unlock;
	}
	mem = mem_dma_alloc(ctx, size, align, flags | IOVM_DMA_CONTIG | IOVM_DMA_ZERO);
	if (!mem) {
		ret = -errno;
		free(z);
		goto unlock;
	}
	iovm_dma_xlate(ctx, mem, &x);
	strcpy(z->pub.name, name);
	z->pub.va = mem;
	z->pub.pa = x.pa;
	z->pub.hpa = x.hpa_contig >= size ? x.hpa : IOVM_HPA(IOVM_ADDR_INVALID);
	z->pub.len = size;
	z->pub.align = align;
	z->pub.page_size = x.page_size;
	z->pub.node = x.node;
	z->pub.flags = flags;
	z->pub.pa_flags = x.flags & IOVM_XLATE_PA_REAL;
	list_add_tail(&ms->zones, &z->link);
	ms->nr_zones++;
	*out = &z->pub;
	ret = 0;
unlock:
	mutex_unlock(&ms->zone_lock);
	return ret;
}

IOVM_API int iovm_zone_lookup(struct iovm_ctx *ctx, const char *name, const struct iovm_zone **out)
{
	const struct mem_shared *sh;
	struct mem_zone *z;
	int ret;

	err_enter();
	if (!ctx || !out)
		return err_inval("!ctx || !out");
	ret = name_check(name);
	if (ret)
		return ret;
	sh = mem_shared_of(ctx->mem);
	if (sh)
		return sh->ops->zone_lookup(sh->arg, name, out);
	mutex_lock(&ctx->mem->zone_lock);
	z = zone_find(ctx->mem, name);
	if (z)
		*out = &z->pub;
	mutex_unlock(&ctx->mem->zone_lock);
	return z ? 0 : -ENOENT;
}

IOVM_API int iovm_zone_free(struct iovm_ctx *ctx, const struct iovm_zone *zone)
{
	const struct mem_shared *sh;
	struct mem_space *ms;
	struct list_node *n;
	struct mem_zone *z = NULL;

	err_enter();
	if (!ctx || !zone)
		return err_inval("!ctx || !zone");
	if (event_in_callback())
		return -EDEADLK;
	ms = ctx->mem;
	sh = mem_shared_of(ms);
	if (sh)
		return sh->ops->zone_free(sh->arg, zone);
	mutex_lock(&ms->zone_lock);
	/* Compared by address, never dereferenced: a stale zone pointer is refused safely. */
	list_for_each(n, &ms->zones) {
		if (&list_entry(n, struct mem_zone, link)->pub == zone) {
			z = list_entry(n, struct mem_zone, link);
			list_del(n);
			ms->nr_zones--;
			break;
		}
	}
	mutex_unlock(&ms->zone_lock);
	if (!z)
		return err_inval("!z");
	iovm_dma_free(ctx, z->pub.va);
	free(z);
	return 0;
}

IOVM_API int iovm_zone_walk(struct iovm_ctx *ctx, int (*fn)(void *arg, const struct iovm_zone *z),
			    void *arg)
{
	const struct mem_shared *sh;
	struct list_node *n;
	int ret = 0;

	err_enter();
	if (!ctx || !fn)
		return err_inval("!ctx || !fn");
	sh = mem_shared_of(ctx->mem);
	if (sh)
		return sh->ops->zone_walk(sh->arg, fn, arg);
	mutex_lock(&ctx->mem->zone_lock);
	list_for_each(n, &ctx->mem->zones) {
		ret = fn(arg, &list_entry(n, struct mem_zone, link)->pub);
		if (ret)
			break;
	}
	mutex_unlock(&ctx->mem->zone_lock);
	return ret;
}

void zone_destroy_all(struct mem_space *ms)
{
	struct list_node *n, *t;

	list_for_each_safe(n, t, &ms->zones) {
		list_del(n);
		free(list_entry(n, struct mem_zone, link));
	}
	ms->nr_zones = 0;
}
