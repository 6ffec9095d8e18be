/* SPDX-License-Identifier: MIT */
/*
 * iovm/mem.h - DMA memory for drivers: the DMA heap, named zones for
 * descriptor rings and other common buffers, translation of any pointer to
 * its physical address in O(1), and events when memory is committed or
 * released.
 *
 * All of it lives in one range of virtual addresses reserved at
 * iovm_open(); pages are committed into it on demand and given back once
 * they have stayed free for release_delay_ms.
 */
#ifndef IOVM_MEM_H
#define IOVM_MEM_H

#include <iovm/base.h>

#ifdef __cplusplus
extern "C" {
#endif

struct iovm_ctx;

/* Flags of iovm_dma_alloc(). */
#define IOVM_DMA_ZERO (1u << 0)   /* zeroed, as iovm_dma_zalloc() */
#define IOVM_DMA_CONTIG (1u << 1) /* physically contiguous */
#define IOVM_DMA_PAGE_4K (1u << 2) /* only 4 KiB pages */
#define IOVM_DMA_PAGE_2M (1u << 3) /* only 2 MiB hugepages */
#define IOVM_DMA_PAGE_1G (1u << 4) /* only 1 GiB hugepages */
/* Must not cross a multiple of 2^shift (1..40), in virtual and physical address. */
#define IOVM_DMA_BOUNDARY(shift) ((uint32_t)(shift) << 8)
/* On NUMA node n (0..254); without it, the context's numa_node. */
#define IOVM_DMA_NODE(n) ((uint32_t)((n) + 1) << 16)
/*
 * In a shared heap (iovm/mp.h): the memory belongs to the share, not to
 * the allocating process, and survives its death. Elsewhere it changes
 * nothing.
 */
#define IOVM_DMA_KEEP (1u << 5)

/**
 * iovm_dma_alloc() - allocate DMA memory.
 * @ctx: the context
 * @size: bytes, at least 1
 * @align: alignment, a power of two; 0 means 16
 * @flags: IOVM_DMA_* flags
 *
 * Memory comes from hugepages when the context's page size allows it and
 * they are available, from 4 KiB pages otherwise; with host_pa=on, from
 * hugepages only, at their host PA (see iovm_open()). Small sizes are
 * served from a per-thread cache.
 *
 * Thread safety: safe.
 *
 * Return: the memory, or NULL with errno set: EINVAL for a zero size, an
 * alignment that is not a power of two or above 1 GiB, unknown bits, more
 * than one IOVM_DMA_PAGE_* flag (each says "only"), a boundary smaller than
 * the size or above 2^40, a node that is not online; EOPNOTSUPP for an
 * IOVM_DMA_PAGE_* size the kernel has no pages of, and for
 * IOVM_DMA_PAGE_4K with host_pa=on; ENOMEM when the memory is not there
 * (hugepages exhausted, with host_pa=on or a hugepage page size; mem_limit
 * reached: never memory only partly backed); EDEADLK when called from a
 * memory event callback.
 */
IOVM_API void *iovm_dma_alloc(struct iovm_ctx *ctx, size_t size, size_t align, uint32_t flags);

/**
 * iovm_dma_zalloc() - allocate zeroed DMA memory.
 * @ctx, @size, @align, @flags: as iovm_dma_alloc()
 *
 * Memory known to hold zeroes (pages fresh from the kernel) is not zeroed
 * again. Otherwise as iovm_dma_alloc().
 *
 * Thread safety: safe.
 *
 * Return: as iovm_dma_alloc().
 */
IOVM_API void *iovm_dma_zalloc(struct iovm_ctx *ctx, size_t size, size_t align, uint32_t flags);

/**
 * iovm_dma_realloc() - resize DMA memory, in place when possible.
 * @ptr: memory from iovm_dma_alloc(), or NULL to allocate
 * @size: the new size, at least 1
 * @align, @flags: for the new memory, as iovm_dma_alloc()
 *
 * The contents up to the smaller of the two sizes are kept.
 *
 * Thread safety: safe.
 *
 * Return: the memory, or NULL with errno set (as iovm_dma_alloc(); EINVAL
 * for a @ptr that iovm did not allocate; EBUSY, in a shared heap, for
 * memory a device in another process maps); @ptr is untouched on failure.
 */
IOVM_API void *iovm_dma_realloc(struct iovm_ctx *ctx, void *ptr, size_t size, size_t align,
				uint32_t flags);

/**
 * iovm_dma_free() - free DMA memory.
 * @ptr: memory from iovm_dma_alloc(); NULL is a no-op
 *
 * Freed pages stay committed for release_delay_ms, then go back.
 *
 * Thread safety: safe; from any thread, not only the allocating one.
 *
 * Return: 0; -EINVAL for a pointer iovm did not allocate or one already
 * freed; -EDEADLK from a memory event callback; -EBUSY, in a shared heap,
 * for memory a device in another process maps (iovm/mp.h).
 */
IOVM_API int iovm_dma_free(struct iovm_ctx *ctx, void *ptr);

/**
 * iovm_dma_size() - the usable size of an allocation, at least what was asked.
 *
 * Thread safety: safe.
 *
 * Return: the size, or 0 with errno EINVAL for a pointer iovm did not allocate.
 */
IOVM_API size_t iovm_dma_size(struct iovm_ctx *ctx, const void *ptr);

/* Flags of iovm_dma_trim(). */
#define IOVM_TRIM_ALL (1u << 0) /* release every free page now, whatever its age */

/**
 * iovm_dma_trim() - give free pages back, and banks whose pages are all free.
 *
 * Without IOVM_TRIM_ALL, only pages free for release_delay_ms go. The heap
 * also trims by itself as memory is freed. Pages go back in whole commits
 * (what the heap committed at once: the pages, huge or 4 KiB, one
 * allocation was missing): a free page of a commit that still holds live
 * memory, an allocation that shares the commit's first or last page
 * among it, stays until the rest of that commit is free. In a shared heap
 * (iovm/mp.h): the calling thread's cached small blocks go back first,
 * then every free 2 MiB parcel (without IOVM_TRIM_ALL, all but two), as
 * any process's trim does: followers unmap it before it goes.
 *
 * Thread safety: safe.
 *
 * Return: the bytes of pages decommitted; -EINVAL; -EDEADLK from a memory
 * event callback.
 */
IOVM_API int64_t iovm_dma_trim(struct iovm_ctx *ctx, uint32_t flags);

/*
 * iovm_dma_xlate() flags: @pa is the host physical address of the byte,
 * a real bus address a device without an IOMMU can be given (then hpa ==
 * pa and hpa_contig == contig). Without it, @pa is emulated: iovm's own,
 * for its software platform (see iovm_open()).
 */
#define IOVM_XLATE_PA_REAL (1u << 0)

/* The translation of a pointer. */
struct iovm_dma_xlate {
	iovm_pa_t pa;        /* physical address */
	iovm_hpa_t hpa;      /* host physical address, IOVM_ADDR_INVALID when unknown */
	size_t contig;       /* bytes from the pointer over which pa stays contiguous */
	size_t hpa_contig;   /* the same for hpa; 0 when unknown */
	uint64_t page_size;
	int node;            /* -1: not bound to a node */
	uint32_t flags;      /* IOVM_XLATE_PA_REAL, or 0 */
};

/**
 * iovm_dma_xlate() - translate a pointer into iovm memory, interior pointers
 * included.
 *
 * O(1): two table loads, no lock, no system call.
 *
 * Whether @x->pa is a host PA (IOVM_XLATE_PA_REAL) holds for the whole
 * page and its contiguous run: always with host_pa=on, never with
 * host_pa=off, for hugepage memory only with host_pa=auto. @x->hpa may be
 * known where @x->pa is emulated (hugepages read by root with
 * host_pa=off): it is then where the memory is, not an address iovm gives
 * devices.
 *
 * Thread safety: safe, lock-free.
 *
 * Return: 0; -EINVAL for a NULL @ctx or @x; -ENOENT for a pointer outside
 * iovm memory (NULL too) or into a page not committed.
 */
IOVM_API int iovm_dma_xlate(const struct iovm_ctx *ctx, const void *ptr, struct iovm_dma_xlate *x);

/**
 * iovm_dma_pa() - the physical address of a pointer into iovm memory.
 *
 * The fast path of iovm_dma_xlate(), for the data path. It does not say
 * whether the PA is the host's: with host_pa=on it always is; otherwise
 * iovm_dma_xlate() or iovm_pa_is_host() says.
 *
 * Thread safety: safe, lock-free.
 *
 * Return: 0, -EINVAL, or -ENOENT as iovm_dma_xlate().
 */
IOVM_API int iovm_dma_pa(const struct iovm_ctx *ctx, const void *ptr, iovm_pa_t *pa);

/**
 * iovm_dma_ptr() - the pointer at which a physical address is mapped in the
 * DMA heap: the reverse of iovm_dma_pa().
 *
 * Thread safety: safe, lock-free.
 *
 * Return: the pointer, or NULL with errno ENOENT when no committed page
 * holds @pa (EINVAL for a NULL @ctx).
 */
IOVM_API void *iovm_dma_ptr(const struct iovm_ctx *ctx, iovm_pa_t pa);

/* Zones: named, physically contiguous, for descriptor rings and other common buffers. */
#define IOVM_ZONE_NAMESIZE 32

struct iovm_zone {
	char name[IOVM_ZONE_NAMESIZE];
	void *va;
	iovm_pa_t pa;
	iovm_hpa_t hpa;     /* IOVM_ADDR_INVALID when unknown */
	size_t len;
	size_t align;
	uint64_t page_size;
	int node;
	uint32_t flags;     /* as reserved */
	uint32_t pa_flags;  /* IOVM_XLATE_PA_REAL when pa is a host PA, as iovm_dma_xlate() says */
};

/**
 * iovm_zone_reserve() - reserve a named zone, or find it again.
 * @ctx: the context
 * @name: 1 to IOVM_ZONE_NAMESIZE-1 characters
 * @size: bytes, at least 1
 * @align: a power of two; 0 means a cache line (64)
 * @flags: IOVM_DMA_BOUNDARY, IOVM_DMA_NODE and IOVM_DMA_PAGE_* (the zone is
 *         always zeroed at creation and physically contiguous, and in a
 *         shared heap always kept: IOVM_DMA_ZERO, _CONTIG and _KEEP are
 *         accepted and change nothing)
 * @zone: set to the zone
 *
 * Reserving is idempotent: a restarted queue that reserves its ring again
 * gets the zone it had, contents intact, if it is at least as large and as
 * aligned as asked.
 *
 * Thread safety: safe.
 *
 * Return: 0 when the zone was created, 1 when it existed; -EINVAL for bad
 * arguments (flags as iovm_dma_alloc() refuses them, whether or not the
 * zone exists); -EEXIST when a zone of that name exists but does not
 * satisfy the request; -EOPNOTSUPP, -ENOMEM, -EDEADLK as iovm_dma_alloc().
 */
IOVM_API int iovm_zone_reserve(struct iovm_ctx *ctx, const char *name, size_t size, size_t align,
			       uint32_t flags, const struct iovm_zone **zone);

/**
 * iovm_zone_lookup() - find a zone by name.
 *
 * Thread safety: safe.
 *
 * Return: 0; -EINVAL for bad arguments; -ENOENT when there is none.
 */
IOVM_API int iovm_zone_lookup(struct iovm_ctx *ctx, const char *name, const struct iovm_zone **zone);

/**
 * iovm_zone_free() - free a zone and its memory.
 *
 * Thread safety: safe; the zone must not be used afterwards.
 *
 * Return: 0; -EINVAL for a zone that is not (or no longer) reserved;
 * -EBUSY, in a shared heap, while a device in another process maps it
 * (iovm/mp.h); -EDEADLK from a memory event callback.
 */
IOVM_API int iovm_zone_free(struct iovm_ctx *ctx, const struct iovm_zone *zone);

/**
 * iovm_zone_walk() - call @fn for each zone; stops at the first non-zero return.
 *
 * Thread safety: safe; @fn runs with the zone lock held and must not
 * reserve or free zones.
 *
 * Return: 0, what @fn returned, or -EINVAL.
 */
IOVM_API int iovm_zone_walk(struct iovm_ctx *ctx, int (*fn)(void *arg, const struct iovm_zone *z),
			    void *arg);

/*
 * Common buffers: rings and tables a driver shares with a device, made of
 * 4 KiB pieces of physically scattered memory mapped as one virtually
 * contiguous region, with the physical address of every page (map them
 * into a domain with iovm_domain_map_pages()).
 */
struct iovm_cbuf;

/*
 * Not cache coherent: the CPU works on its own copy, as with a write-back
 * cache devices do not snoop. Devices see the CPU's writes only after
 * iovm_dma_sync_for_device(), the CPU sees theirs only after
 * iovm_dma_sync_for_cpu(). The device owns the buffer when it is made.
 */
#define IOVM_CBUF_NONCOHERENT (1u << 0)

/**
 * iovm_cbuf_alloc() - a zeroed common buffer of @size bytes (rounded up to
 * 4 KiB pages), mapped into the process.
 * @flags: IOVM_CBUF_NONCOHERENT, or 0 for a coherent buffer
 *
 * In host-PA mode the pages are 4 KiB pieces of hugepages, at their host
 * PA, taken from the DMA heap; with host_pa=auto, when no hugepage is
 * free, 4 KiB pages with emulated PAs (see iovm_open()).
 *
 * Thread safety: safe.
 *
 * Return: 0; -EINVAL for bad arguments (more than 256 MiB); -ENOMEM (with
 * host_pa=on, also when no hugepage is free).
 */
IOVM_API int iovm_cbuf_alloc(struct iovm_ctx *ctx, size_t size, uint32_t flags, struct iovm_cbuf **cb);

/**
 * iovm_cbuf_free() - give the buffer back. Unmap it from domains first.
 *
 * Thread safety: no other call on @cb may run or follow.
 *
 * Return: 0, or -EINVAL.
 */
IOVM_API int iovm_cbuf_free(struct iovm_cbuf *cb);

/**
 * iovm_cbuf_ptr() - where the CPU reaches the buffer: one contiguous range.
 *
 * Thread safety: safe.
 *
 * Return: the pointer, or NULL with errno EINVAL.
 */
IOVM_API void *iovm_cbuf_ptr(const struct iovm_cbuf *cb);

/**
 * iovm_cbuf_pages() - the physical address of each 4 KiB page, in order.
 * @pages: room for @max
 * @n: set to the number of pages (only @max are filled)
 *
 * All host PAs or all emulated (iovm_pa_is_host() of any of them says);
 * with host_pa=on, host PAs.
 *
 * Thread safety: safe.
 *
 * Return: 0, or -EINVAL.
 */
IOVM_API int iovm_cbuf_pages(const struct iovm_cbuf *cb, iovm_pa_t *pages, unsigned max, unsigned *n);

/**
 * iovm_dma_sync_for_device() - hand [ptr, ptr+len) of a buffer to devices:
 * for a non-coherent buffer, the CPU's writes to the 64-byte lines it
 * touches reach memory (a cache clean). For coherent memory (the DMA heap,
 * coherent buffers), nothing.
 *
 * Thread safety: safe; not concurrently with the CPU writing the range.
 *
 * Return: 0; -EINVAL; -ENOENT when @ptr is not iovm memory.
 */
IOVM_API int iovm_dma_sync_for_device(struct iovm_ctx *ctx, const void *ptr, size_t len);

/**
 * iovm_dma_sync_for_cpu() - hand [ptr, ptr+len) back to the CPU: for a
 * non-coherent buffer, the CPU's copy of the lines it touches is refilled
 * from memory, so it sees what devices wrote (a cache invalidate).
 *
 * Thread safety: safe; not while a device accesses the range.
 *
 * Return: as iovm_dma_sync_for_device().
 */
IOVM_API int iovm_dma_sync_for_cpu(struct iovm_ctx *ctx, const void *ptr, size_t len);

/* Memory events: pages committed into the heap, or about to be released. */
enum iovm_mem_event_type {
	IOVM_MEM_EVENT_COMMIT = 1,
	IOVM_MEM_EVENT_RELEASE = 2,
};

struct iovm_mem_event {
	enum iovm_mem_event_type type;
	void *va;           /* page aligned */
	size_t len;         /* whole pages */
	uint64_t page_size;
	int node;
};

/*
 * A subscriber. For COMMIT it may fail (a negative errno): the commit is
 * undone and the allocation that needed it fails. RELEASE comes before the
 * pages are unmapped, so translations taken from them can be dropped first.
 * Events are in whole pages of their page_size; a page is announced once
 * (COMMIT) before any allocation on it returns, and released once; a
 * RELEASE covers whole commits, one or several adjacent ones given back
 * together, never part of one.
 * Callbacks run on the allocating thread with the heap's lock held: they
 * may translate (iovm_dma_xlate), but must not allocate or free.
 *
 * A shared heap (iovm/mp.h) is committed and released by parcels of 2
 * MiB, by any process of the share: this process's subscribers hear of
 * each, on a thread the share starts in this process once it has one, or
 * on the thread of this process's own allocation or free; the allocation
 * or free that caused it returns after they heard. A COMMIT refused there
 * fails nothing in the process that committed: the parcel stays unmapped
 * for this process's subscribers, and is offered again at the next change.
 */
typedef int (*iovm_mem_event_fn)(void *arg, const struct iovm_mem_event *ev);

struct iovm_mem_sub;

/**
 * iovm_mem_event_subscribe() - call @fn for every commit and release.
 * @sub: set to the subscription
 *
 * Memory already committed is replayed to @fn as COMMIT events before this
 * returns; if @fn fails on one, the ones it accepted are released to it
 * again and the subscription fails with its error.
 *
 * Thread safety: safe.
 *
 * Return: 0, -EINVAL, -ENOMEM, or @fn's error; -EDEADLK from a memory
 * event callback.
 */
IOVM_API int iovm_mem_event_subscribe(struct iovm_ctx *ctx, iovm_mem_event_fn fn, void *arg,
				      struct iovm_mem_sub **sub);

/**
 * iovm_mem_event_unsubscribe() - stop the calls; no RELEASE is replayed.
 *
 * Thread safety: safe; once it returns, the subscription's callback is
 * not running and will not run.
 *
 * Return: 0; -EINVAL for an unknown subscription; -EDEADLK from a memory
 * event callback.
 */
IOVM_API int iovm_mem_event_unsubscribe(struct iovm_ctx *ctx, struct iovm_mem_sub *sub);

/* One segment list: the memory of one page size on one node. */
struct iovm_mem_list_stats {
	uint64_t page_size;
	int node;
	uint64_t va_span;   /* bytes of virtual address space reserved */
	uint64_t committed; /* bytes of pages committed */
	uint64_t idle;      /* committed bytes with nothing allocated, waiting to be released */
	uint64_t in_use;    /* bytes handed out (rounded to 4 KiB units) */
	uint64_t commits;   /* page ranges mapped */
	uint64_t decommits; /* page ranges unmapped */
};

#define IOVM_MEM_MAX_LISTS 27

struct iovm_mem_stats {
	uint64_t committed, idle, in_use;
	uint64_t commits, decommits;
	uint64_t allocs, frees;      /* calls, counted per thread */
	uint64_t cache_hits;         /* allocations served by a per-thread cache */
	uint64_t zeroed;             /* bytes zeroed for zeroed allocations beyond the thread caches */
	uint64_t zero_known;         /* bytes such allocations did not zero: known to hold zeroes */
	unsigned nr_zones;
	/* The oracle (option oracle=on): device accesses to non-coherent buffers without the syncs they need. */
	uint64_t oracle_sync_errors;
	unsigned nr_lists;
	struct iovm_mem_list_stats lists[IOVM_MEM_MAX_LISTS];
};

/**
 * iovm_mem_stats() - a snapshot of the DMA heap.
 *
 * Thread safety: safe; per-thread counters are read without synchronising,
 * so they may lag by a few operations.
 *
 * Return: 0, or -EINVAL.
 */
IOVM_API int iovm_mem_stats(struct iovm_ctx *ctx, struct iovm_mem_stats *st);

#ifdef __cplusplus
}
#endif

#endif /* IOVM_MEM_H */
