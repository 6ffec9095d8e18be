/* SPDX-License-Identifier: MIT */
/*
 * mem.h - the DMA heap, as the context sees it: create and destroy.
 * Everything else is public (include/iovm/mem.h).
 */
#ifndef IOVM_MEM_MEM_H
#define IOVM_MEM_MEM_H

struct iovm_ctx;
struct mem_space;

/* mem_create() - the heap of @ctx; ctx->phys and ctx->cfg must be set. */
int mem_create(struct iovm_ctx *ctx, struct mem_space **out);

/* mem_destroy() - unmap everything; no call may be running on the heap. */
void mem_destroy(struct mem_space *ms);

#endif /* IOVM_MEM_MEM_H */
