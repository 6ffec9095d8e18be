/* SPDX-License-Identifier: MIT */
/*
 * mem.h - the DMA heap, as the context sees it: create and destroy.
 * Everything else is public (include/iovm/mem.h).
 */
#ifndef IOVM_MEM_MEM_H
#define IOVM_MEM_MEM_H

#include <stdbool.h>
#include <stdint.h>

#include "base/addr.h"

struct iovm_ctx;
struct mem_space;

/* mem_create() - the heap of @ctx; ctx->phys and ctx->cfg must be set. */
int mem_create(struct iovm_ctx *ctx, struct mem_space **out);

/* mem_destroy() - unmap everything; no call may be running on the heap. */
void mem_destroy(struct mem_space *ms);

/*
 * Where a pointer lies in the heap, for layers that keep tables parallel to
 * it (a domain's IOVA of each page): the slot of its segment list, the page
 * in the list, the page's shift. O(1), lock-free; -ENOENT outside the heap.
 */
struct mem_where {
	unsigned slot;
	uint64_t page;
	unsigned page_shift;
};

int mem_locate(const struct mem_space *ms, const void *ptr, struct mem_where *w);

/*
 * mem_nc_device_access() - for the oracle: a device reads (or writes) the
 * memory [pa, pa+len). Where it is a non-coherent buffer's, check that the
 * device owns every line and that the CPU did not write its copy since it
 * synced it; report and count what is wrong. Lock-free.
 */
void mem_nc_device_access(struct mem_space *ms, pa_t pa, uint64_t len, bool write);

/*
 * A heap shared with other processes (src/mp): once set, it serves the
 * context's DMA allocations and zones instead of the context's own heap.
 * Its memory is one range, mapped at @va in this process and on the bus at
 * @pa. The callbacks validate nothing mem has validated already (flags,
 * names); they set errno or return a negative errno, with a detail.
 */
struct iovm_zone;

struct mem_shared_ops {
	void *(*alloc)(void *arg, size_t size, size_t align, uint32_t flags);
	int (*free)(void *arg, void *ptr);
	size_t (*size)(void *arg, const void *ptr);
	int (*zone_reserve)(void *arg, const char *name, size_t size, size_t align, uint32_t flags,
			    const struct iovm_zone **zone);
	int (*zone_lookup)(void *arg, const char *name, const struct iovm_zone **zone);
	int (*zone_free)(void *arg, const struct iovm_zone *zone);
	int (*zone_walk)(void *arg, int (*fn)(void *fn_arg, const struct iovm_zone *z), void *fn_arg);
	/* Whether @ptr is a live block this process holds (realloc may keep it in place). */
	bool (*mine)(void *arg, const void *ptr);
	/* 0, or -EPERM (with a detail) in a forked child, which may not use the context. */
	int (*usable)(void *arg);
	/* Whether the parcel at @off has memory behind it now (lock-free). */
	bool (*committed)(void *arg, uint64_t off);
	/* This process has memory-event subscribers now: follow the parcels' changes (mem_shared_sync()). */
	int (*follow)(void *arg);
	/* iovm_dma_trim(): give free memory back to the kernel (@all: every free parcel); the bytes. */
	uint64_t (*trim)(void *arg, bool all);
};

/*
 * The shared heap is committed by parcels of @parcel_size bytes: subscribers
 * hear of each as it gets memory, and of its release before it goes.
 */
struct mem_shared {
	const struct mem_shared_ops *ops;
	void *arg;
	uint8_t *va;
	uint64_t len;
	pa_t pa;
	uint64_t page_size;
	uint64_t parcel_size;
};

/*
 * mem_share_set() - route @ms's allocations and zones to @sh, or back to its
 * own heap (NULL). Memory event subscribers hear of each parcel of the
 * shared heap that has memory now as a commit (and of its release before
 * the routing goes); a subscriber that refuses one fails it. Later changes
 * come through mem_shared_sync(). @sh must outlive the routing. No other
 * call on the context may run meanwhile.
 */
int mem_share_set(struct mem_space *ms, const struct mem_shared *sh);

/*
 * mem_dma_alloc_own() - iovm_dma_alloc() from the context's own heap, also
 * when it is shared: for the library's own memory (an engine queue's
 * rings), which another process of a share could otherwise free under it.
 * Freed with iovm_dma_free(). Errors as iovm_dma_alloc(), in errno.
 */
void *mem_dma_alloc_own(struct iovm_ctx *ctx, size_t size, size_t align, uint32_t flags);

/*
 * mem_shared_sync() - tell the subscribers of every parcel of the shared
 * heap whose memory came or went since they last heard (ops->committed()).
 * Takes the context's event locks: not from a memory-event callback.
 */
void mem_shared_sync(struct mem_space *ms);

/* mem_shared_locate() - where @ptr is in the shared heap, and its length; -ENOENT outside it. Lock-free. */
int mem_shared_locate(const struct mem_space *ms, const void *ptr, uint64_t *off, uint64_t *len);

/* The slots a heap may use, and the pages a slot spans at a page shift. */
#define MEM_SLOTS 27
uint64_t mem_slot_pages(const struct mem_space *ms, unsigned page_shift);

#endif /* IOVM_MEM_MEM_H */
