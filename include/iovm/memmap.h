/* SPDX-License-Identifier: MIT */
/**
 * DOC: iovm/memmap.h - SPDK's memory maps, on iovm
 *
 * The calls of SPDK's env layer (spdk_mem_map_*, spdk_mem_register(),
 * spdk_vtophys()) with its semantics, so that a driver written for SPDK
 * ports by renaming spdk_ to iovm_ (and SPDK_ to IOVM_), giving each call
 * the context it runs in:
 *
 *  - a memory map holds, per 2 MiB of virtual address space, one 64-bit
 *    value the driver chose (an IOVA, a key of an RDMA registration...),
 *    or the map's default; iovm_mem_map_translate() finds it in O(1)
 *    without a lock;
 *  - a map's notify callback hears of all memory that may take part in
 *    DMA: at creation, of what is there already; then of each change. That
 *    memory is the DMA heap (iovm/mem.h) as pages are committed into it and
 *    before they are released, zones included, and the application's own
 *    memory registered with iovm_mem_register();
 *  - iovm_vtophys() gives the physical address of either.
 *
 * The granule is 2 MiB (IOVM_MEM_MAP_GRANULE), as SPDK's VALUE_2MB: maps
 * keep one value per granule, translations are set and cleared in whole
 * granules, registrations are made of whole granules, and notifications
 * cover whole granules. A granule of the DMA heap is announced
 * (IOVM_MEM_MAP_NOTIFY_REGISTER) when the first of its pages is committed
 * and withdrawn (IOVM_MEM_MAP_NOTIFY_UNREGISTER) before the last of them is
 * released: with 4 KiB pages (page_size=4K) a granule may be announced
 * while only part of it is backed, and its pages are not contiguous in
 * physical memory, so a map of physical addresses wants 2 MiB or 1 GiB
 * pages, as SPDK wants hugepages; a map of keys works with any.
 *
 * Addresses: user space below 2^48 (IOVM_MEM_MAP_VA_LIMIT), as SPDK's
 * 256 TiB map. Above it there is nothing to set, register or translate.
 *
 * Differences from SPDK, beyond the context argument:
 *  - every call that can fail returns a negative errno, with a detail
 *    (iovm_error_detail()); a size of 0 is refused (-EINVAL) where SPDK
 *    does nothing;
 *  - are_contiguous() is given the map's cb_ctx as its first argument;
 *  - a registration that a map's notify refuses is undone whole: the maps
 *    that accepted it hear of its unregistration, and iovm_mem_register()
 *    returns the error (SPDK leaves it half made);
 *  - iovm_mem_map_free() returns 0 or -EINVAL;
 *  - notify callbacks run with iovm's locks held: they may set, clear and
 *    translate (any map), and call iovm_vtophys() or iovm_dma_xlate(), but
 *    not register, unregister, allocate or free maps or DMA memory: those
 *    calls return -EDEADLK (NULL and errno EDEADLK) there.
 */
#ifndef IOVM_MEMMAP_H
#define IOVM_MEMMAP_H

#include <stddef.h>
#include <stdint.h>

#include <iovm/base.h>

#ifdef __cplusplus
extern "C" {
#endif

struct iovm_ctx;
struct iovm_mem_map;

/* What a map keeps one value for: SPDK's VALUE_2MB. */
#define IOVM_MEM_MAP_GRANULE (UINT64_C(1) << 21)
/* Addresses at and above it are outside every map (SPDK's 256 TiB). */
#define IOVM_MEM_MAP_VA_LIMIT (UINT64_C(1) << 48)
/* What iovm_vtophys() returns for an address without a physical address: SPDK_VTOPHYS_ERROR. */
#define IOVM_VTOPHYS_ERROR IOVM_ADDR_INVALID

enum iovm_mem_map_notify_action {
	IOVM_MEM_MAP_NOTIFY_REGISTER = 0,
	IOVM_MEM_MAP_NOTIFY_UNREGISTER = 1,
};

/*
 * A map's notify callback: [vaddr, vaddr+size), whole granules, became
 * memory for DMA (REGISTER) or is about to stop being so (UNREGISTER: it is
 * still mapped, and still has its physical address). Its return value
 * counts for REGISTER only: a negative errno refuses the memory (the
 * registration, or the DMA heap's commit, fails, and the maps that
 * accepted it hear of its UNREGISTER); a positive value counts as -EIO.
 * Ranges come as they were registered: a map hears of a registration in
 * one piece, and unregistration in the pieces registered; a commit of the
 * heap in the granules it added (adjacent pieces are not merged).
 */
typedef int (*iovm_mem_map_notify_cb)(void *cb_ctx, struct iovm_mem_map *map,
				      enum iovm_mem_map_notify_action action, void *vaddr, size_t size);

/*
 * Whether @tr2, the translation of a granule, continues @tr1, the
 * translation of the granule before it: non-zero if so. An IOVA map says
 * tr2 == tr1 + IOVM_MEM_MAP_GRANULE; a map of keys, tr2 == tr1. Called by
 * iovm_mem_map_translate() on its caller's thread, without a lock.
 */
typedef int (*iovm_mem_map_contiguous_cb)(void *cb_ctx, uint64_t tr1, uint64_t tr2);

struct iovm_mem_map_ops {
	iovm_mem_map_notify_cb notify;               /* NULL: a map nobody tells anything */
	iovm_mem_map_contiguous_cb are_contiguous;   /* NULL: no translation continues another */
};

/**
 * iovm_mem_map_alloc() - a new map, told of all memory for DMA there is.
 * @ctx: the context
 * @default_translation: what addresses without a translation translate to
 * @ops: the callbacks (copied), or NULL for none
 * @cb_ctx: passed to the callbacks
 * @map: set to the map
 *
 * Before it returns, @ops->notify hears IOVM_MEM_MAP_NOTIFY_REGISTER for
 * every range registered or committed now, in address order; from then on,
 * of every change, until iovm_mem_map_free(). When it refuses a range, the
 * ranges it accepted are withdrawn from it again (UNREGISTER), and the map
 * is not made.
 *
 * Thread safety: safe; registrations and heap commits of other threads
 * wait for it, so none is missed or told twice.
 *
 * Return: 0; -EINVAL for a NULL @ctx or @map; -ENOMEM; -EDEADLK from a
 * callback (see above); the error of @ops->notify.
 */
IOVM_API int iovm_mem_map_alloc(struct iovm_ctx *ctx, uint64_t default_translation,
				const struct iovm_mem_map_ops *ops, void *cb_ctx, struct iovm_mem_map **map);

/**
 * iovm_mem_map_free() - free a map; *@map becomes NULL.
 * @map: where the map is; *@map NULL is a no-op
 *
 * The map's notify hears IOVM_MEM_MAP_NOTIFY_UNREGISTER for every range it
 * holds, as SPDK's does, and never again once this returns. Maps still
 * there at iovm_close() are freed there, without a word to their notify.
 *
 * Thread safety: safe against registrations and heap changes; no other
 * call on the map may run or follow.
 *
 * Return: 0; -EINVAL for a NULL @map; -EDEADLK from a callback.
 */
IOVM_API int iovm_mem_map_free(struct iovm_mem_map **map);

/**
 * iovm_mem_map_set_translation() - translate [vaddr, vaddr+size) to
 * @translation, every granule of it the same value (as SPDK: not
 * @translation plus the offset).
 * @vaddr, @size: multiples of IOVM_MEM_MAP_GRANULE, @size at least one,
 *                the range below IOVM_MEM_MAP_VA_LIMIT
 *
 * All or nothing. Any range may be set, registered or not.
 *
 * Thread safety: safe, also from a notify callback; lookups running
 * meanwhile find each granule's old value or its new one.
 *
 * Return: 0; -EINVAL for a NULL @map or a range as above; -ENOMEM.
 */
IOVM_API int iovm_mem_map_set_translation(struct iovm_mem_map *map, uint64_t vaddr, uint64_t size,
					  uint64_t translation);

/**
 * iovm_mem_map_clear_translation() - give [vaddr, vaddr+size) the default
 * translation again.
 *
 * Thread safety: as iovm_mem_map_set_translation().
 *
 * Return: as iovm_mem_map_set_translation().
 */
IOVM_API int iovm_mem_map_clear_translation(struct iovm_mem_map *map, uint64_t vaddr, uint64_t size);

/**
 * iovm_mem_map_translate() - the translation of the granule holding @vaddr.
 * @size: NULL, or the bytes from @vaddr the caller wants: it becomes how
 *        many of those the translation covers. That is the rest of the
 *        granule, and further, granule by granule, while the map's
 *        are_contiguous() says the next one continues it (never into a
 *        granule with the default translation); it never grows.
 *
 * O(1) (with @size, one lookup per granule the answer spans), no lock, no
 * system call; writes nothing shared.
 *
 * Thread safety: safe, lock-free, concurrently with everything but
 * iovm_mem_map_free() of @map.
 *
 * Return: the translation; the default translation for an address
 * without one (above IOVM_MEM_MAP_VA_LIMIT included; @size is cut to the
 * rest of its granule); IOVM_ADDR_INVALID with errno EINVAL for a NULL
 * @map (*@size untouched).
 */
IOVM_API uint64_t iovm_mem_map_translate(const struct iovm_mem_map *map, uint64_t vaddr, uint64_t *size);

/**
 * iovm_mem_register() - make [vaddr, vaddr+len) of the application's memory
 * (hugepages it mapped itself, a framework's pool) memory for DMA, as
 * spdk_mem_register() does.
 * @vaddr, @len: multiples of IOVM_MEM_MAP_GRANULE, @len at least one, the
 *               range mapped and below IOVM_MEM_MAP_VA_LIMIT
 *
 * The memory goes on iovm's bus: it gets physical addresses of its own,
 * contiguous over the whole registration and 2 MiB aligned, through
 * which iovm's devices reach it (an identity domain maps them; see
 * iovm/iommu.h), and iovm_vtophys() translates it. Every map hears of it
 * (IOVM_MEM_MAP_NOTIFY_REGISTER, the whole range at once). It is neither
 * pinned nor watched: as with SPDK, the application keeps the memory
 * mapped, at the same address, until iovm_mem_unregister() has returned
 * (for memory that follows munmap and friends, see iovm/reg.h).
 *
 * Thread safety: safe.
 *
 * Return: 0; -EINVAL for a NULL @ctx or @vaddr, or a range as above;
 * -EFAULT when part of it is not mapped; -EBUSY when part of it is
 * registered already, or is iovm's DMA heap (which every map hears of by
 * itself); -ENOMEM when memory or physical addresses run out;
 * -EDEADLK from a callback; the error of a map's notify, which refused it
 * (nothing of it is left then).
 */
IOVM_API int iovm_mem_register(struct iovm_ctx *ctx, void *vaddr, size_t len);

/**
 * iovm_mem_unregister() - undo iovm_mem_register(): every map hears of it
 * (IOVM_MEM_MAP_NOTIFY_UNREGISTER, once per registration, while it still
 * translates), then it leaves the bus; when this returns, no device of
 * iovm reaches it any more. Its physical addresses may then be given to
 * memory registered later this way (never to the DMA heap, nor to a
 * memory registration of iovm/reg.h): unmap what you mapped of it by hand
 * (iovm_domain_map()) first, as a map's notify callback does, or such a
 * mapping reaches that memory.
 * @vaddr, @len: whole registrations, one or several adjacent ones
 *
 * Thread safety: safe.
 *
 * Return: 0; -EINVAL for a NULL @ctx or @vaddr, a range not granule
 * aligned, or one with memory not registered; -ERANGE for part of a
 * registration (SPDK's answer); -EDEADLK from a callback.
 */
IOVM_API int iovm_mem_unregister(struct iovm_ctx *ctx, void *vaddr, size_t len);

/**
 * iovm_vtophys() - the physical address of @vaddr, as spdk_vtophys():
 * memory of the DMA heap (zones included; iovm_dma_xlate() says more about
 * it) or registered with iovm_mem_register().
 * @size: NULL, or the bytes from @vaddr the caller wants: it becomes how
 *        many of those are contiguous in physical memory from @vaddr (it
 *        never grows)
 *
 * The address is iovm's physical address (iovm/base.h): the host's in
 * host-PA mode, an emulated one otherwise. It is what a device with no
 * IOMMU, or in an identity domain, is given; in a managed domain a device
 * wants the IOVA (iovm_dma_iova(), iovm_mr_iova()) instead.
 *
 * O(1) (with @size and registered memory, one lookup per granule the
 * answer spans), no lock, no system call.
 *
 * Thread safety: safe, lock-free.
 *
 * Return: the address; IOVM_VTOPHYS_ERROR with errno ENOENT for memory
 * that is neither (*@size untouched), EINVAL for a NULL @ctx.
 */
IOVM_API uint64_t iovm_vtophys(const struct iovm_ctx *ctx, const void *vaddr, uint64_t *size);

#ifdef __cplusplus
}
#endif

#endif /* IOVM_MEMMAP_H */
