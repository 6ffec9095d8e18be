/* SPDX-License-Identifier: MIT */
/*
 * dma.c - the shared heap as a context's DMA heap: what iovm_dma_alloc(),
 * iovm_dma_free() and iovm_dma_size() do once the context is shared or
 * attached (mem routes them here, arguments checked).
 *
 * A block is held by the allocating process's slot, so that its death
 * frees it, or by the share (IOVM_DMA_KEEP).
 */
#include <errno.h>
#include <string.h>

#include "base/compiler.h"
#include "base/error.h"
#include "base/log.h"
#include "mp/mp_internal.h"

#define PAGE_FLAGS (IOVM_DMA_PAGE_4K | IOVM_DMA_PAGE_2M | IOVM_DMA_PAGE_1G)
#define NODE_FLAGS 0x00ff0000u

/* A forked child shares the parent's context struct but not its slot: it must attach. */
static int not_forked(const struct mp_space *s)
{
	if (likely(s->fork_gen == mp_fork_gen()))
		return 0;
	return err_detail(-EPERM, IOVM_LOG_DEBUG, "a forked child may not use its parent's share: attach");
}

/* Placement the shared heap cannot give: its pages are of one size, bound to no node. */
int mp_placement_check(const struct mp_space *s, uint32_t flags)
{
	uint32_t pages = flags & PAGE_FLAGS;

	if (pages && pages != (s->page_size == SZ_2M ? IOVM_DMA_PAGE_2M : IOVM_DMA_PAGE_4K))
		return err_detail(-EOPNOTSUPP, IOVM_LOG_DEBUG, "the shared heap has only %llu KiB pages",
				  (unsigned long long)(s->page_size >> 10));
	if (flags & NODE_FLAGS)
		return err_detail(-EOPNOTSUPP, IOVM_LOG_DEBUG, "the shared heap is bound to no NUMA node");
	return 0;
}

static void *mp_alloc(void *arg, size_t size, size_t align, uint32_t flags)
{
	struct mp_space *s = arg;
	uint8_t owner = flags & IOVM_DMA_KEEP ? MP_OWNER_KEEP : s->slot;
	uint64_t grain = 0;
	uint32_t seq = 0;
	unsigned order;
	int ret;

	ret = not_forked(s);
	if (!ret)
		ret = mp_placement_check(s, flags);
	if (!ret && (size > s->heap_size || align > s->heap_size))
		ret = -ENOMEM;
	/* Small blocks of this process's own come from the thread's cache, without the lock. */
	order = ret ? MP_TCACHE_ORDERS : mp_order_for(size, align);
	if (!(flags & IOVM_DMA_KEEP) && order < MP_TCACHE_ORDERS) {
		void *p = mp_tcache_alloc(s, order);

		if (p) {
			if (flags & IOVM_DMA_ZERO)
				memset(p, 0, size);
			return p;
		}
	}
	for (int pass = 0; !ret; pass++) {
		ret = mp_lock(&s->h);
		if (ret)
			break;
		ret = mp_heap_alloc(&s->h, size, align, owner, NULL, &grain);
		seq = mp_follow_seq(s);
		mp_unlock(&s->h);
		/*
		 * Out of memory: some may be a dead process's that nobody freed
		 * yet, or this process's own threads' caches. Then once more.
		 */
		if (ret != -ENOMEM || pass)
			break;
		if (mp_reap_dead(&s->h) <= 0 && !mp_tcache_drain(s))
			break;
		ret = 0;
	}
	if (ret) {
		if (ret == -ENOMEM)
			err_detail(ret, IOVM_LOG_DEBUG, "the shared heap has no free block of %zu bytes", size);
		errno = -ret;
		return NULL;
	}
	/* Its memory in every process's following domains before anyone has its address. */
	mp_follow_wait(s, seq);
	if (flags & IOVM_DMA_ZERO)
		memset(s->heap + (grain << MP_GRAIN_SHIFT), 0, size);
	return s->heap + (grain << MP_GRAIN_SHIFT);
}

/* The grain @ptr starts, or -EINVAL for a pointer no block can start at. */
static int grain_of(const struct mp_space *s, const void *ptr, uint64_t *grain)
{
	uint64_t off = (uint64_t)((const uint8_t *)ptr - s->heap);

	if (off >= s->heap_size || !is_aligned(off, MP_GRAIN))
		return err_detail(-EINVAL, IOVM_LOG_DEBUG, "%p is not a live allocation of the shared heap", ptr);
	*grain = off >> MP_GRAIN_SHIFT;
	return 0;
}

static int mp_free(void *arg, void *ptr)
{
	struct mp_space *s = arg;
	uint64_t grain = 0;
	bool due;
	int ret = not_forked(s);

	if (!ret)
		ret = grain_of(s, ptr, &grain);
	if (!ret)
		ret = mp_tcache_free(s, grain);
	if (ret <= 0) {
		if (ret == -EBUSY)
			return err_detail(ret, IOVM_LOG_DEBUG, "%p is mapped by a device in another process: unmap it first",
					  ptr);
		if (ret)
			return err_detail(ret, IOVM_LOG_DEBUG, "%p is not a live allocation of the shared heap", ptr);
		return 0;
	}
	ret = mp_lock(&s->h);
	if (ret)
		return ret;
	ret = mp_heap_free(&s->h, grain);
	due = !ret && mp_parcel_trim_due(&s->h);
	mp_unlock(&s->h);
	if (due)
		mp_parcel_trim(s);
	if (ret == -EBUSY)
		return err_detail(ret, IOVM_LOG_DEBUG, "%p is mapped by a device in another process: unmap it first", ptr);
	if (ret)
		return err_detail(ret, IOVM_LOG_DEBUG, "%p is not a live allocation of the shared heap (freed already?)",
				  ptr);
	return 0;
}

static size_t mp_size(void *arg, const void *ptr)
{
	struct mp_space *s = arg;
	unsigned order = 0;
	uint64_t grain = 0;
	uint8_t owner;
	int ret = not_forked(s);

	if (!ret)
		ret = grain_of(s, ptr, &grain);
	if (!ret)
		ret = mp_lock(&s->h);
	if (!ret) {
		ret = mp_heap_block(&s->h, grain, &order, &owner);
		if (!ret && lender_get(&s->h.lender[grain]) == MP_LENDER_CACHED)
			ret = -EINVAL; /* freed into its owner's cache */
		mp_unlock(&s->h);
		if (ret)
			ret = err_detail(-EINVAL, IOVM_LOG_DEBUG, "%p is not a live allocation of the shared heap", ptr);
	}
	if (ret) {
		errno = -ret;
		return 0;
	}
	return (size_t)(MP_GRAIN << order);
}

static bool mp_mine(void *arg, const void *ptr)
{
	struct mp_space *s = arg;
	uint64_t grain = 0;
	unsigned order;
	uint8_t owner;
	bool mine;

	if (not_forked(s) || grain_of(s, ptr, &grain) || mp_lock(&s->h))
		return false;
	mine = !mp_heap_block(&s->h, grain, &order, &owner) && owner == s->slot &&
	       lender_get(&s->h.lender[grain]) == MP_LENDER_NONE;
	mp_unlock(&s->h);
	return mine;
}

static int mp_usable(void *arg)
{
	return not_forked(arg);
}

static bool mp_committed(void *arg, uint64_t off)
{
	struct mp_space *s = arg;
	uint64_t i = off >> MP_PARCEL_SHIFT;

	return i < s->c->nparcels && __atomic_load_n(&s->h.parcel[i], __ATOMIC_ACQUIRE) == MP_PARCEL_COMMITTED;
}

static uint64_t mp_trim(void *arg, bool all)
{
	struct mp_space *s = arg;

	return not_forked(s) ? 0 : mp_parcel_trim_all(s, all);
}

static int mp_follow(void *arg)
{
	struct mp_space *s = arg;
	int ret = not_forked(s);

	return ret ? ret : mp_follow_start(s);
}

const struct mem_shared_ops mp_mem_ops = {
	.alloc = mp_alloc,
	.free = mp_free,
	.size = mp_size,
	.zone_reserve = mp_zone_reserve,
	.zone_lookup = mp_zone_lookup,
	.zone_free = mp_zone_free,
	.zone_walk = mp_zone_walk,
	.mine = mp_mine,
	.usable = mp_usable,
	.committed = mp_committed,
	.follow = mp_follow,
	.trim = mp_trim,
};
