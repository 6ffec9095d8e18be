/* SPDX-License-Identifier: MIT */
/*
 * memmap.h - what the files of SPDK's memory maps on iovm share
 * (include/iovm/memmap.h): the context's registry of memory for DMA, in
 * 2 MiB granules, and the maps that hear of it.
 *
 *  memmap_space.c  the registry; following the DMA heap; walking it
 *  memmap.c        the maps: their table, notify calls, alloc and free
 *  memreg.c        iovm_mem_register(), iovm_mem_unregister(), iovm_vtophys()
 *
 * The registry exists from the first call that needs it (a map, a
 * registration): a context that never uses maps does not pay for a
 * subscription to the heap's events.
 *
 * Locks, in the order they are taken: the heap's (its events run under
 * them), memmap_space.lock, then a map's own lock. Notify callbacks run
 * under memmap_space.lock and count as memory event callbacks
 * (event_cb_depth), so that a call from one into the heap or back into
 * the registry is refused with -EDEADLK instead of hanging.
 */
#ifndef IOVM_MEM_MEMMAP_H
#define IOVM_MEM_MEMMAP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <iovm/memmap.h>

#include "base/list.h"
#include "base/lock.h"
#include "base/radix.h"

struct iovm_ctx;
struct iovm_mem_sub;

#define MM_GRANULE_SHIFT 21
#define MM_GRANULE IOVM_MEM_MAP_GRANULE
#define MM_VA_BITS 48
/* Granule numbers below 2^27; a second-level table covers 1 GiB, as SPDK's. */
#define MM_KEY_BITS (MM_VA_BITS - MM_GRANULE_SHIFT)
#define MM_L2_BITS 9

/* A granule's word in the registry: flags in the low bits, a registration's PA above. */
#define MMG_REG UINT64_C(1)   /* registered by iovm_mem_register(); the word holds its PA */
#define MMG_HEAP UINT64_C(2)  /* holds committed pages of the DMA heap */
#define MMG_START UINT64_C(4) /* a registration, or the granules a heap commit added, begins here */
#define MMG_FLAGS (MM_GRANULE - 1)

struct mm_granule {
	_Atomic uint64_t word;  /* written under memmap_space.lock, read without (iovm_vtophys()) */
	uint32_t heap_units;    /* 4 KiB units of heap pages committed in it; under memmap_space.lock */
	uint32_t unused;
};

struct memmap_space {
	struct iovm_ctx *ctx;
	/*
	 * Protects the registry's words and heap_units (writers), the list
	 * of maps, and serialises every notify call: a map hears of each
	 * change once, in order.
	 */
	struct mutex lock;
	struct radix granules;      /* struct mm_granule, by granule number */
	struct list_node maps;      /* every live map (struct iovm_mem_map.link) */
	struct iovm_mem_sub *sub;   /* the DMA heap's events */
};

struct iovm_mem_map {
	struct memmap_space *mm;
	uint64_t def;               /* the default translation */
	struct iovm_mem_map_ops ops;
	void *cb_ctx;
	/* Serialises writers of @table; lookups take nothing. */
	struct mutex lock;
	/* _Atomic uint64_t per granule: the translation XOR @def, so a zeroed table is all default. */
	struct radix table;
	struct list_node link;      /* in memmap_space.maps, under its lock */
};

/*
 * memmap_space_get() - @ctx's registry; made (and subscribed to the heap)
 * when @create and there is none yet. NULL: none, or for @create, -errno
 * in *@err. @api names the public call, whose detail the subscription
 * would otherwise take. Thread safety: safe.
 */
struct memmap_space *memmap_space_get(struct iovm_ctx *ctx, bool create, const char *api, int *err);

/* memmap_space_peek() - @ctx's registry or NULL, lock-free. */
struct memmap_space *memmap_space_peek(const struct iovm_ctx *ctx);

/* memmap_destroy() - the context goes: maps freed unheard, registrations off the bus. */
void memmap_destroy(struct iovm_ctx *ctx);

/* The registry's entry of granule @g, or NULL when never written (lock-free). */
static inline struct mm_granule *mm_granule(const struct memmap_space *mm, uint64_t g)
{
	return radix_lookup(&mm->granules, g);
}

/* Make the registry's tables for granules [g0, g1): all or nothing. Needs memmap_space.lock. */
int mm_granules_prepare(struct memmap_space *mm, uint64_t g0, uint64_t g1);

/*
 * mm_walk() - tell @map's notify of every range in the registry, in
 * address order and in the pieces registered, as @action; stop before
 * granule @stop. For REGISTER, the first refusal stops it: its error, and
 * in *@failed the granule it was at. Needs memmap_space.lock.
 */
int mm_walk(struct memmap_space *mm, struct iovm_mem_map *map, enum iovm_mem_map_notify_action action,
	    uint64_t stop, uint64_t *failed);

/*
 * mm_notify_all() - tell every map of [va, va+len). For REGISTER, a
 * refusal takes it back from the maps before the one that refused (those
 * after it never heard) and is returned. Needs memmap_space.lock.
 */
int mm_notify_all(struct memmap_space *mm, enum iovm_mem_map_notify_action action, uint64_t va, uint64_t len);

/* mm_notify() - one call of @map's notify (none without one), as a memory event callback. */
int mm_notify(struct iovm_mem_map *map, enum iovm_mem_map_notify_action action, uint64_t va, uint64_t len);

/* mm_map_destroy() - free @map's memory; it is off every list. */
void mm_map_destroy(struct iovm_mem_map *map);

#endif /* IOVM_MEM_MEMMAP_H */
