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

/* The slots a heap may use, and the pages a slot spans at a page shift. */
#define MEM_SLOTS 27
uint64_t mem_slot_pages(const struct mem_space *ms, unsigned page_shift);

#endif /* IOVM_MEM_MEM_H */
