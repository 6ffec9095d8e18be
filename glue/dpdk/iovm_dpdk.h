/* SPDX-License-Identifier: MIT */
/*
 * iovm_dpdk.h - DPDK 22.11 on iovm memory: an rte_malloc external heap
 * whose memory is iovm DMA memory, with iovm's addresses as DPDK's IOVAs.
 *
 * rte_malloc_socket() and rte_memzone_reserve() on the heap's socket id,
 * and mempools made there (rte_pktmbuf_pool_create()), hand out iovm
 * memory: rte_malloc_virt2iova() and mbuf->buf_iova are iovm's PA of the
 * byte, or its IOVA in a domain the heap was given.
 *
 * The heap holds chunks of iovm memory taken with iovm_dma_alloc(): it
 * grows by a chunk when asked (iovm_dpdk_heap_grow(), or the allocating
 * helpers below when DPDK runs out) and gives back, with
 * iovm_dpdk_heap_shrink(), the chunks DPDK has nothing allocated on.
 * It does not add the pages iovm's heap commits for others: those are
 * iovm's to hand out, and two allocators on one page would hand the same
 * bytes out twice.
 *
 * Not part of libiovm: a static library, libiovm_dpdk.a (pkg-config
 * iovm-dpdk), built where DPDK is installed. rte_eal_init() must have
 * run. Primary process only: a secondary would need
 * rte_malloc_heap_memory_attach() of every chunk, which this does not do.
 */
#ifndef IOVM_DPDK_H
#define IOVM_DPDK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct iovm_ctx;
struct iovm_domain;
struct rte_mempool;
struct iovm_dpdk_heap;

/* Flags of iovm_dpdk_heap_create(). */
/*
 * Without a domain: refuse memory whose iovm PA is not the host's (see
 * iovm_open()'s host_pa), for devices that DMA without an IOMMU.
 */
#define IOVM_DPDK_HOST_PA (1u << 0)

/* The chunk size when none is given: 32 MiB. */
#define IOVM_DPDK_CHUNK_DEFAULT ((size_t)32 << 20)

/**
 * iovm_dpdk_heap_create() - an rte_malloc external heap on iovm memory.
 * @ctx: the iovm context the memory comes from
 * @dom: NULL for iovm's PAs as IOVAs; or a domain whose IOVAs DPDK is to
 *       see: one that follows the heap (IOVM_DOMAIN_FOLLOW_HEAP), a VA or
 *       an identity domain, where iovm_dma_iova() answers for any pointer
 *       into the heap. It must outlive the DPDK heap.
 * @name: the heap's name for DPDK, 1 to 31 characters, unique
 * @chunk: bytes added at each growth, rounded up to 2 MiB; 0 means
 *         IOVM_DPDK_CHUNK_DEFAULT. Each chunk is a DPDK memseg list, of
 *         which DPDK has 128 (RTE_MAX_MEMSEG_LISTS) in all.
 * @alloc_flags: iovm_dma_alloc() flags for the chunks, e.g.
 *         IOVM_DMA_PAGE_2M or IOVM_DMA_NODE(n); 0 lets iovm choose
 * @flags: IOVM_DPDK_HOST_PA, or 0
 * @heap: set to the heap
 *
 * The heap starts with one chunk. DPDK gives the heap a socket id of its
 * own (iovm_dpdk_heap_socket()): pass it to rte_malloc_socket(),
 * rte_memzone_reserve(), rte_mempool_create() and the like.
 *
 * Thread safety: safe.
 *
 * Return: 0; -EINVAL for bad arguments; -EEXIST when DPDK has a heap of
 * that name; -ENOSPC when DPDK has no room for another heap or memseg
 * list; -ENOMEM, -EOPNOTSUPP as iovm_dma_alloc(), or -EOPNOTSUPP for
 * emulated PAs with IOVM_DPDK_HOST_PA; -ENOENT when @dom does not map the
 * memory; -ENODEV when DPDK is not initialised.
 */
int iovm_dpdk_heap_create(struct iovm_ctx *ctx, struct iovm_domain *dom, const char *name,
			  size_t chunk, uint32_t alloc_flags, uint32_t flags,
			  struct iovm_dpdk_heap **heap);

/**
 * iovm_dpdk_heap_socket() - the socket id DPDK gave the heap.
 *
 * Return: the socket id (>= RTE_MAX_NUMA_NODES), or -EINVAL.
 */
int iovm_dpdk_heap_socket(const struct iovm_dpdk_heap *heap);

/**
 * iovm_dpdk_heap_grow() - add iovm memory to the heap.
 * @min: at least this many bytes in one contiguous piece (a single
 *       allocation of @min bytes fits, DPDK's headers included); 0 adds
 *       one chunk
 *
 * Thread safety: safe, also beside allocations on the heap.
 *
 * Return: the bytes added; negative errno as iovm_dpdk_heap_create().
 */
int64_t iovm_dpdk_heap_grow(struct iovm_dpdk_heap *heap, size_t min);

/**
 * iovm_dpdk_heap_shrink() - give iovm back the chunks with nothing
 * allocated on them (DPDK refuses to remove memory in use), down to none:
 * the next allocation grows the heap again.
 *
 * Thread safety: safe, also beside allocations on the heap.
 *
 * Return: the bytes given back; -EINVAL.
 */
int64_t iovm_dpdk_heap_shrink(struct iovm_dpdk_heap *heap);

/* What the heap holds. */
struct iovm_dpdk_heap_stats {
	unsigned chunks;
	uint64_t bytes;     /* of iovm memory in the heap */
	uint64_t page_size; /* DPDK's page size of the last chunk added */
	uint64_t grows, shrinks;
};

/**
 * iovm_dpdk_heap_stats() - a snapshot.
 *
 * Return: 0, or -EINVAL.
 */
int iovm_dpdk_heap_stats(struct iovm_dpdk_heap *heap, struct iovm_dpdk_heap_stats *st);

/**
 * iovm_dpdk_malloc() - rte_malloc_socket() on the heap, growing it when
 * DPDK runs out.
 * @type, @size, @align: as rte_malloc()
 *
 * Free with rte_free().
 *
 * Thread safety: safe.
 *
 * Return: the memory, or NULL with rte_errno (and errno) set.
 */
void *iovm_dpdk_malloc(struct iovm_dpdk_heap *heap, const char *type, size_t size, unsigned align);

/**
 * iovm_dpdk_pktmbuf_pool_create() - rte_pktmbuf_pool_create() on the
 * heap's socket, growing the heap when DPDK runs out.
 * @name, @n, @cache_size, @priv_size, @data_room_size: as
 *        rte_pktmbuf_pool_create()
 *
 * Free with rte_mempool_free().
 *
 * Thread safety: safe.
 *
 * Return: the pool, or NULL with rte_errno (and errno) set.
 */
struct rte_mempool *iovm_dpdk_pktmbuf_pool_create(struct iovm_dpdk_heap *heap, const char *name,
						  unsigned n, unsigned cache_size,
						  uint16_t priv_size, uint16_t data_room_size);

/**
 * iovm_dpdk_heap_destroy() - remove every chunk and destroy the DPDK heap;
 * the memory goes back to iovm.
 * @heap: NULL is a no-op
 *
 * Thread safety: no other call on @heap may run or follow (except after
 * -EBUSY).
 *
 * Return: 0; -EBUSY while anything is allocated on the heap (rte_free,
 * rte_memzone_free, rte_mempool_free it first): the chunks with nothing
 * on them are given back, the heap stays, and destroy may be called
 * again.
 */
int iovm_dpdk_heap_destroy(struct iovm_dpdk_heap *heap);

#ifdef __cplusplus
}
#endif

#endif /* IOVM_DPDK_H */
