/* SPDX-License-Identifier: MIT */
/*
 * iovm/phys.h - iovm's physical address space, as statistics: its banks, the
 * frame allocator's free pages by order and largest free run, and the use of
 * each reserved pool.
 */
#ifndef IOVM_PHYS_H
#define IOVM_PHYS_H

#include <iovm/base.h>

#ifdef __cplusplus
extern "C" {
#endif

struct iovm_ctx;

/* Orders counted in the statistics: blocks of 2^0 to 2^(N-1) pages. */
#define IOVM_PHYS_ORDERS 21
/* Arenas: one per page size and NUMA node in use. */
#define IOVM_PHYS_MAX_ARENAS 16

/* One arena: the memory of one page size on one node. */
struct iovm_phys_arena_stats {
	uint64_t page_size;
	int node;                  /* -1: not bound to a node */
	unsigned nr_banks;
	uint64_t total;            /* bytes */
	uint64_t free;             /* bytes */
	uint64_t largest_free_run; /* bytes, contiguous in PA */
	uint64_t free_blocks[IOVM_PHYS_ORDERS]; /* free buddy blocks of each order */
};

/* Reserved pools reported: the first ones created. */
#define IOVM_PHYS_MAX_POOLS 16

/* A reserved pool: memory kept for one owner (direct-mapped guests). */
struct iovm_phys_pool_stats {
	char name[32];
	uint64_t page_size;
	unsigned nr_ranges;        /* contiguous ranges it was carved as */
	uint64_t total;            /* bytes */
	uint64_t free;             /* bytes */
	uint64_t largest_free_run; /* bytes */
};

struct iovm_phys_stats {
	bool host_pa;        /* hugepage memory is placed at its host PA */
	uint64_t limit;      /* mem_limit, bytes */
	uint64_t total;      /* bytes in banks */
	uint64_t free;       /* bytes free in the frame allocator */
	unsigned nr_banks;
	uint64_t banks_added;
	uint64_t banks_released;
	uint64_t grow_failures; /* a bank the kernel could not give */
	unsigned nr_arenas;
	struct iovm_phys_arena_stats arenas[IOVM_PHYS_MAX_ARENAS];
	unsigned nr_pools;
	struct iovm_phys_pool_stats pools[IOVM_PHYS_MAX_POOLS];
};

/**
 * iovm_phys_stats() - a snapshot of the physical address space.
 * @ctx: the context
 * @st: filled in
 *
 * Computing the largest free run walks every free block: call it for
 * monitoring, not on a fast path.
 *
 * Thread safety: safe; takes the physical space's lock.
 *
 * Return: 0, or -EINVAL for a NULL argument.
 */
IOVM_API int iovm_phys_stats(struct iovm_ctx *ctx, struct iovm_phys_stats *st);

#ifdef __cplusplus
}
#endif

#endif /* IOVM_PHYS_H */
