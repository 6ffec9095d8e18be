/* SPDX-License-Identifier: MIT */
/*
 * memmap_space.c - the context's registry of memory for DMA, in 2 MiB
 * granules, which SPDK-style maps hear of (include/iovm/memmap.h): the
 * DMA heap, followed through its memory events, and the application's
 * registrations (memreg.c).
 *
 * The heap commits and releases pages of 4 KiB, 2 MiB or 1 GiB; maps deal
 * in granules. A granule is the heap's while any of its pages is
 * committed: each entry counts its committed 4 KiB units, and a map hears
 * of a granule when its count leaves zero and before it returns there. As
 * the pages of one commit are all new, only its first and last granule
 * can have had pages before: the granules a commit adds (or a release
 * takes) are one run, told in one call.
 *
 * The registry is SPDK's two-level layout (base/radix.h), and notes where
 * each registration, and each run a commit added, begins (MMG_START): a
 * map made later hears of the memory in those pieces, as SPDK's does.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include <iovm/mem.h>

#include "base/ctx.h"
#include "base/error.h"
#include "base/fault_inject.h"
#include "base/log.h"
#include "mem/memmap.h"
#include "phys/phys.h"

#define L2_ENTRIES (UINT64_C(1) << MM_L2_BITS)
#define NONE UINT64_MAX

/* Bytes of [va, end) inside granule @g. */
static uint64_t overlap(uint64_t va, uint64_t end, uint64_t g)
{
	uint64_t lo = MAX(va, g << MM_GRANULE_SHIFT), hi = MIN(end, (g + 1) << MM_GRANULE_SHIFT);

	return hi > lo ? hi - lo : 0;
}

int mm_granules_prepare(struct memmap_space *mm, uint64_t g0, uint64_t g1)
{
	lock_assert_held(&mm->lock);
	/* One element per second-level table makes the table: the rest of it comes along. */
	for (uint64_t t = g0 >> MM_L2_BITS; t <= (g1 - 1) >> MM_L2_BITS; t++)
		if (!radix_lookup_alloc(&mm->granules, t << MM_L2_BITS))
			return -ENOMEM;
	return 0;
}

/* Pages [va, end) were committed into the heap. Needs memmap_space.lock. */
static int heap_commit(struct memmap_space *mm, uint64_t va, uint64_t end)
{
	uint64_t g0 = va >> MM_GRANULE_SHIFT, g1 = ((end - 1) >> MM_GRANULE_SHIFT) + 1;
	uint64_t n0 = NONE, n1 = 0;
	int ret;

	lock_assert_held(&mm->lock);
	ret = mm_granules_prepare(mm, g0, g1);
	if (ret)
		return ret;
	for (uint64_t g = g0; g < g1; g++) {
		if (mm_granule(mm, g)->heap_units)
			continue;
		if (n0 == NONE)
			n0 = g;
		n1 = g + 1;
	}
	/* Told before the registry changes: a refusal leaves nothing to undo. */
	if (n0 != NONE) {
		ret = mm_notify_all(mm, IOVM_MEM_MAP_NOTIFY_REGISTER, n0 << MM_GRANULE_SHIFT,
				    (n1 - n0) << MM_GRANULE_SHIFT);
		if (ret)
			return ret;
	}
	for (uint64_t g = g0; g < g1; g++) {
		struct mm_granule *e = mm_granule(mm, g);

		e->heap_units += (uint32_t)(overlap(va, end, g) >> 12);
		if (g >= n0 && g < n1)
			atomic_store_explicit(&e->word, MMG_HEAP | (g == n0 ? MMG_START : 0), memory_order_release);
	}
	return 0;
}

/* Pages [va, end) of the heap are about to be released. Needs memmap_space.lock. */
static void heap_release(struct memmap_space *mm, uint64_t va, uint64_t end)
{
	uint64_t g0 = va >> MM_GRANULE_SHIFT, g1 = ((end - 1) >> MM_GRANULE_SHIFT) + 1;
	uint64_t z0 = NONE, z1 = 0;

	lock_assert_held(&mm->lock);
	for (uint64_t g = g0; g < g1; g++) {
		struct mm_granule *e = mm_granule(mm, g);

		/* Committed pages were counted at their commit: an entry without them is a heap bug. */
		if (!e || e->heap_units < overlap(va, end, g) >> 12) {
			log_err("memmap: release of %#" PRIx64 "..%#" PRIx64 " that was never committed", va, end);
			continue;
		}
		if (e->heap_units != overlap(va, end, g) >> 12)
			continue;
		if (z0 == NONE)
			z0 = g;
		z1 = g + 1;
	}
	/* While the pages are still there: a map drops what it made of them first. */
	if (z0 != NONE)
		mm_notify_all(mm, IOVM_MEM_MAP_NOTIFY_UNREGISTER, z0 << MM_GRANULE_SHIFT,
			      (z1 - z0) << MM_GRANULE_SHIFT);
	for (uint64_t g = g0; g < g1; g++) {
		struct mm_granule *e = mm_granule(mm, g);

		if (!e || e->heap_units < overlap(va, end, g) >> 12)
			continue;
		e->heap_units -= (uint32_t)(overlap(va, end, g) >> 12);
		if (!e->heap_units)
			atomic_store_explicit(&e->word, 0, memory_order_release);
	}
}

/* The heap's memory events: runs on the committing thread, under the heap's lock. */
static int on_heap_event(void *arg, const struct iovm_mem_event *ev)
{
	struct memmap_space *mm = arg;
	uint64_t va = (uintptr_t)ev->va, end = va + ev->len;

	if (!ev->len)
		return 0;
	/* The heap's reservation is an ordinary mmap: never above 2^47, so never here. */
	if (end > IOVM_MEM_MAP_VA_LIMIT || end < va)
		return ev->type == IOVM_MEM_EVENT_COMMIT ? -ERANGE : 0;
	mutex_lock(&mm->lock);
	if (ev->type == IOVM_MEM_EVENT_COMMIT) {
		int ret = heap_commit(mm, va, end);

		mutex_unlock(&mm->lock);
		return ret;
	}
	heap_release(mm, va, end);
	mutex_unlock(&mm->lock);
	return 0;
}

/* Tell @map of granules [from, to) as one range. */
static int walk_emit(struct iovm_mem_map *map, enum iovm_mem_map_notify_action action, uint64_t from,
		     uint64_t to, uint64_t *failed)
{
	int ret = mm_notify(map, action, from << MM_GRANULE_SHIFT, (to - from) << MM_GRANULE_SHIFT);

	if (ret && action == IOVM_MEM_MAP_NOTIFY_REGISTER) {
		if (failed)
			*failed = from;
		return ret;
	}
	return 0;
}

int mm_walk(struct memmap_space *mm, struct iovm_mem_map *map, enum iovm_mem_map_notify_action action,
	    uint64_t stop, uint64_t *failed)
{
	const struct radix *r = &mm->granules;
	uint64_t run = NONE, kind = 0;
	int ret;

	lock_assert_held(&mm->lock);
	if (r->l1_lo > r->l1_hi)
		return 0;
	/* Only tables ever written: the registry spans little of the first level. */
	for (uint64_t t = r->l1_lo; t <= r->l1_hi; t++) {
		struct mm_granule *tab = atomic_load_explicit(&r->l1[t], memory_order_relaxed);

		for (uint64_t j = 0; j < L2_ENTRIES; j++) {
			uint64_t g = (t << MM_L2_BITS) | j;
			uint64_t w = tab ? atomic_load_explicit(&tab[j].word, memory_order_relaxed) : 0;
			uint64_t k = w & (MMG_REG | MMG_HEAP);

			if (run != NONE && (g >= stop || k != kind || (w & MMG_START))) {
				ret = walk_emit(map, action, run, g, failed);
				if (ret)
					return ret;
				run = NONE;
			}
			if (g >= stop)
				return 0;
			if (k && run == NONE) {
				run = g;
				kind = k;
			}
			if (!tab && run == NONE)
				break; /* a table never written holds nothing */
		}
	}
	if (run != NONE)
		return walk_emit(map, action, run, (r->l1_hi + 1) << MM_L2_BITS, failed);
	return 0;
}

int mm_notify_all(struct memmap_space *mm, enum iovm_mem_map_notify_action action, uint64_t va, uint64_t len)
{
	struct list_node *n, *m;

	lock_assert_held(&mm->lock);
	list_for_each(n, &mm->maps) {
		int ret = mm_notify(list_entry(n, struct iovm_mem_map, link), action, va, len);

		if (!ret || action == IOVM_MEM_MAP_NOTIFY_UNREGISTER)
			continue;
		for (m = mm->maps.next; m != n; m = m->next)
			mm_notify(list_entry(m, struct iovm_mem_map, link), IOVM_MEM_MAP_NOTIFY_UNREGISTER, va, len);
		return ret;
	}
	return 0;
}

struct memmap_space *memmap_space_peek(const struct iovm_ctx *ctx)
{
	return atomic_load_explicit(&ctx->memmap, memory_order_acquire);
}

/* Serialises the making of registries: once per context, rarely taken. */
static struct mutex create_lock = MUTEX_INITIALIZER;

struct memmap_space *memmap_space_get(struct iovm_ctx *ctx, bool create, const char *api, int *err)
{
	struct memmap_space *mm = memmap_space_peek(ctx);
	int ret;

	if (mm || !create)
		return mm;
	mutex_lock(&create_lock);
	mm = atomic_load_explicit(&ctx->memmap, memory_order_relaxed);
	if (mm)
		goto unlock;
	mm = fi_calloc(1, sizeof(*mm));
	ret = -ENOMEM;
	if (!mm)
		goto fail;
	mm->ctx = ctx;
	mutex_init(&mm->lock);
	list_init(&mm->maps);
	ret = radix_init(&mm->granules, MM_KEY_BITS, MM_L2_BITS, sizeof(struct mm_granule));
	if (ret)
		goto free_mm;
	/* The heap's history comes first, as COMMIT events, while no map can hear of it yet. */
	ret = iovm_mem_event_subscribe(ctx, on_heap_event, mm, &mm->sub);
	err_begin(api); /* the subscription is ours, not the caller's: its detail names the call */
	if (ret) {
		err_detail(ret, IOVM_LOG_ERR, "cannot follow the DMA heap: %s", iovm_strerror(ret));
		goto destroy_radix;
	}
	atomic_store_explicit(&ctx->memmap, mm, memory_order_release);
unlock:
	mutex_unlock(&create_lock);
	return mm;

destroy_radix:
	radix_destroy(&mm->granules);
free_mm:
	mutex_destroy(&mm->lock);
	free(mm);
fail:
	mutex_unlock(&create_lock);
	*err = ret;
	return NULL;
}

void memmap_destroy(struct iovm_ctx *ctx)
{
	struct memmap_space *mm = atomic_load_explicit(&ctx->memmap, memory_order_relaxed);
	const struct radix *r;
	struct list_node *n, *t;

	if (!mm)
		return;
	iovm_mem_event_unsubscribe(ctx, mm->sub);
	list_for_each_safe(n, t, &mm->maps) {
		list_del(n);
		mm_map_destroy(list_entry(n, struct iovm_mem_map, link));
	}
	/* Registrations the application left: off the bus, as iovm_mem_unregister() would. */
	r = &mm->granules;
	for (uint64_t i = r->l1_lo; r->l1_lo <= r->l1_hi && i <= r->l1_hi; i++) {
		struct mm_granule *tab = atomic_load_explicit(&r->l1[i], memory_order_relaxed);

		for (uint64_t j = 0; tab && j < L2_ENTRIES; j++) {
			uint64_t w = atomic_load_explicit(&tab[j].word, memory_order_relaxed);

			if ((w & MMG_REG) && (w & MMG_START))
				phys_window_remove(ctx->phys, pa_make(w & ~MMG_FLAGS));
		}
	}
	radix_destroy(&mm->granules);
	mutex_destroy(&mm->lock);
	atomic_store_explicit(&ctx->memmap, NULL, memory_order_relaxed);
	free(mm);
}
