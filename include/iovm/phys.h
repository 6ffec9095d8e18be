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
	bool host_pa;        /* hugepage memory is placed at its host PA (iovm_pa_is_host()) */
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

/**
 * iovm_pa_is_host() - whether a physical address iovm gave is the host's.
 * @ctx: the context
 * @pa: any PA of @ctx's memory: of the DMA heap (iovm_dma_pa()), a zone,
 *      a common buffer's page, a guest's bank, a domain's translation
 *
 * A host PA is the machine's physical address of the memory, a real bus
 * address; the others are emulated, iovm's own (see iovm_open()): those of
 * 4 KiB pages with host_pa=auto, of registered application memory and of
 * shared heaps, and all of them with host_pa=off.
 *
 * O(1), no lock.
 *
 * Thread safety: safe, lock-free.
 *
 * Return: 1 for a host PA, 0 for an emulated one; -EINVAL for a NULL @ctx;
 * -ENOENT when no memory of @ctx is at @pa.
 */
IOVM_API int iovm_pa_is_host(const struct iovm_ctx *ctx, iovm_pa_t pa);

/*
 * Reserved pools: physical memory taken out of the frame allocator for
 * direct-mapped guests (iovm/guest.h), so that what other users of memory
 * do cannot fragment it. Made at start-up (option pool=NAME:SIZE[:PAGE])
 * or at run time from free contiguous memory.
 */
struct iovm_pool;

/* The most contiguous ranges one pool may be carved in. */
#define IOVM_POOL_MAX_RANGES 64

/**
 * iovm_pool_create() - reserve physical memory for direct-mapped guests.
 * @name: unique, at most 31 characters; for iovm_pool_lookup() and statistics
 * @size: bytes, a multiple of the page size
 * @page_size: 4 KiB, 2 MiB or 1 GiB; 0: 2 MiB hugepages when the machine
 *             gives them, else 4 KiB (never with host_pa=on: see iovm_open())
 * @max_ranges: contiguous ranges it may be carved in, 1 to
 *              IOVM_POOL_MAX_RANGES; 1 asks for a single run
 * @pool: set to the pool
 *
 * The memory is found as a guest's is: the largest naturally aligned
 * blocks first, halved on failure (see iovm_guest_create()).
 *
 * Thread safety: safe.
 *
 * Return: 0; -EINVAL for a bad argument; -EEXIST when the name is taken;
 * -ENOMEM when the memory is not there in few enough ranges;
 * -EOPNOTSUPP when the kernel has no pages of @page_size, or for 4 KiB
 * pages with host_pa=on.
 */
IOVM_API int iovm_pool_create(struct iovm_ctx *ctx, const char *name, uint64_t size, uint64_t page_size,
			      unsigned max_ranges, struct iovm_pool **pool);

/**
 * iovm_pool_lookup() - a pool by name: one made at start-up, say.
 *
 * Thread safety: safe.
 *
 * Return: 0; -EINVAL; -ENOENT when there is none of that name.
 */
IOVM_API int iovm_pool_lookup(struct iovm_ctx *ctx, const char *name, struct iovm_pool **pool);

/**
 * iovm_pool_destroy() - give the pool's memory back to the frame allocator.
 *
 * Thread safety: no other call on @pool may run or follow.
 *
 * Return: 0; -EINVAL for NULL; -EBUSY while any of it is a guest's.
 */
IOVM_API int iovm_pool_destroy(struct iovm_pool *pool);

#ifdef __cplusplus
}
#endif

#endif /* IOVM_PHYS_H */
