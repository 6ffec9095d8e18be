/* SPDX-License-Identifier: MIT */
/*
 * memreg.c - the application's own memory as memory for DMA, as SPDK's
 * spdk_mem_register() makes it (include/iovm/memmap.h), and iovm_vtophys().
 *
 * A registration puts the memory on iovm's bus as a window
 * (phys_window_add()): physical addresses of its own, contiguous over the
 * registration, 2 MiB aligned as its virtual address is, through which
 * devices reach it. The registry keeps each granule's physical address in
 * its word, so that translating registered memory is one table load, as
 * translating the heap's is (xlate.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <sys/mman.h>

#include "base/ctx.h"
#include "base/error.h"
#include "base/log.h"
#include "mem/mem_internal.h"
#include "mem/memmap.h"
#include "phys/phys.h"

/* The checks iovm_mem_register() and iovm_mem_unregister() share. */
static int reg_args(const struct iovm_ctx *ctx, const void *vaddr, size_t len)
{
	uint64_t v = (uintptr_t)vaddr;

	if (!ctx || !vaddr)
		return err_inval("!ctx || !vaddr");
	if (!len)
		return err_inval("len 0");
	if ((v | len) & (MM_GRANULE - 1))
		return err_detail(-EINVAL, IOVM_LOG_DEBUG,
				  "invalid argument: vaddr %p and len %#zx must be multiples of 2 MiB", vaddr, len);
	if (v >= IOVM_MEM_MAP_VA_LIMIT || len > IOVM_MEM_MAP_VA_LIMIT - v)
		return err_detail(-EINVAL, IOVM_LOG_DEBUG,
				  "invalid argument: %p + %#zx is not below 2^48, the end of user space", vaddr, len);
	if (event_in_callback())
		return err_detail(-EDEADLK, IOVM_LOG_DEBUG, "called from a memory event or map notify callback");
	return 0;
}

/* Whether [v, v+len) meets the DMA heap's reservation or the shared heap mapped here. */
static bool meets_heap(const struct iovm_ctx *ctx, uint64_t v, uint64_t len)
{
	const struct mem_space *ms = ctx->mem;
	const struct mem_shared *sh = mem_shared_of(ms);
	uint64_t a = (uintptr_t)ms->arena;

	if (v < a + ms->arena_len && a < v + len)
		return true;
	return sh && v < (uintptr_t)sh->va + sh->len && (uintptr_t)sh->va < v + len;
}

IOVM_API int iovm_mem_register(struct iovm_ctx *ctx, void *vaddr, size_t len)
{
	uint64_t v = (uintptr_t)vaddr, g0, g1;
	struct memmap_space *mm;
	pa_t pa;
	int ret;

	err_enter();
	ret = reg_args(ctx, vaddr, len);
	if (ret)
		return ret;
	if (meets_heap(ctx, v, len))
		return err_detail(-EBUSY, IOVM_LOG_DEBUG,
				  "%p + %#zx is iovm's DMA heap, which every map hears of by itself", vaddr, len);
	/* msync() checks the mapping, and does nothing else with MS_ASYNC. */
	if (msync(vaddr, len, MS_ASYNC))
		return err_detail(-EFAULT, IOVM_LOG_DEBUG, "%p + %#zx is not all mapped", vaddr, len);
	mm = memmap_space_get(ctx, true, __func__, &ret);
	if (!mm)
		return ret;
	g0 = v >> MM_GRANULE_SHIFT;
	g1 = (v + len) >> MM_GRANULE_SHIFT;

	mutex_lock(&mm->lock);
	ret = mm_granules_prepare(mm, g0, g1);
	if (ret)
		goto unlock;
	for (uint64_t g = g0; g < g1; g++) {
		if (atomic_load_explicit(&mm_granule(mm, g)->word, memory_order_relaxed)) {
			ret = err_detail(-EBUSY, IOVM_LOG_DEBUG, "%#" PRIx64 " is registered already",
					 g << MM_GRANULE_SHIFT);
			goto unlock;
		}
	}
	ret = phys_window_add(ctx->phys, vaddr, len, 0, &pa);
	if (ret)
		goto unlock;
	/* Translated before the maps hear of it: a notify may ask iovm_vtophys() where it is. */
	for (uint64_t g = g0; g < g1; g++)
		atomic_store_explicit(&mm_granule(mm, g)->word,
				      (pa_val(pa) + ((g - g0) << MM_GRANULE_SHIFT)) | MMG_REG | (g == g0 ? MMG_START : 0),
				      memory_order_release);
	ret = mm_notify_all(mm, IOVM_MEM_MAP_NOTIFY_REGISTER, v, len);
	if (ret) {
		for (uint64_t g = g0; g < g1; g++)
			atomic_store_explicit(&mm_granule(mm, g)->word, 0, memory_order_release);
		phys_window_remove(ctx->phys, pa);
		err_detail(ret, IOVM_LOG_DEBUG, "a map's notify refused %p + %#zx: %s", vaddr, len, iovm_strerror(ret));
	}
unlock:
	mutex_unlock(&mm->lock);
	return ret;
}

IOVM_API int iovm_mem_unregister(struct iovm_ctx *ctx, void *vaddr, size_t len)
{
	uint64_t v = (uintptr_t)vaddr, g0, g1, w;
	struct memmap_space *mm;
	struct mm_granule *e;
	int ret;

	err_enter();
	ret = reg_args(ctx, vaddr, len);
	if (ret)
		return ret;
	mm = memmap_space_peek(ctx);
	if (!mm)
		return err_inval("nothing is registered");
	g0 = v >> MM_GRANULE_SHIFT;
	g1 = (v + len) >> MM_GRANULE_SHIFT;

	mutex_lock(&mm->lock);
	for (uint64_t g = g0; g < g1; g++) {
		e = mm_granule(mm, g);
		if (!e || !(atomic_load_explicit(&e->word, memory_order_relaxed) & MMG_REG)) {
			ret = err_detail(-EINVAL, IOVM_LOG_DEBUG, "invalid argument: %#" PRIx64 " is not registered",
					 g << MM_GRANULE_SHIFT);
			goto unlock;
		}
	}
	/* Whole registrations only: it begins where one does, and the next granule begins one or none. */
	w = atomic_load_explicit(&mm_granule(mm, g0)->word, memory_order_relaxed);
	e = mm_granule(mm, g1);
	if (!(w & MMG_START) ||
	    (e && (atomic_load_explicit(&e->word, memory_order_relaxed) & (MMG_REG | MMG_START)) == MMG_REG)) {
		ret = err_detail(-ERANGE, IOVM_LOG_DEBUG, "%p + %#zx is part of a registration, not whole ones",
				 vaddr, len);
		goto unlock;
	}
	/* Registration by registration: each map hears of each, then it stops translating, then leaves the bus. */
	for (uint64_t g = g0, h; g < g1; g = h) {
		w = atomic_load_explicit(&mm_granule(mm, g)->word, memory_order_relaxed);
		for (h = g + 1; h < g1; h++)
			if (atomic_load_explicit(&mm_granule(mm, h)->word, memory_order_relaxed) & MMG_START)
				break;
		mm_notify_all(mm, IOVM_MEM_MAP_NOTIFY_UNREGISTER, g << MM_GRANULE_SHIFT, (h - g) << MM_GRANULE_SHIFT);
		for (uint64_t k = g; k < h; k++)
			atomic_store_explicit(&mm_granule(mm, k)->word, 0, memory_order_release);
		/* Returns once no device is inside an access through it (it waits out their sections). */
		phys_window_remove(ctx->phys, pa_make(w & ~MMG_FLAGS));
	}
unlock:
	mutex_unlock(&mm->lock);
	return ret;
}

IOVM_API uint64_t iovm_vtophys(const struct iovm_ctx *ctx, const void *vaddr, uint64_t *size)
{
	uint64_t v = (uintptr_t)vaddr, w, pa, have;
	const struct memmap_space *mm;
	struct iovm_dma_xlate x;
	struct mm_granule *e;

	if (unlikely(!ctx)) {
		errno = -err_hot(-EINVAL, "invalid argument: !ctx");
		return IOVM_VTOPHYS_ERROR;
	}
	/* Registered memory first: the heap's lookup fails with a detail of its own, the registry's says nothing. */
	mm = memmap_space_peek(ctx);
	e = mm ? mm_granule(mm, v >> MM_GRANULE_SHIFT) : NULL;
	w = e ? atomic_load_explicit(&e->word, memory_order_acquire) : 0;
	if (w & MMG_REG) {
		pa = (w & ~MMG_FLAGS) + (v & (MM_GRANULE - 1));
		if (!size)
			return pa;
		/* A registration is contiguous to its end; two that happen to be adjacent on the bus are too. */
		have = MM_GRANULE - (v & (MM_GRANULE - 1));
		for (uint64_t g = (v >> MM_GRANULE_SHIFT) + 1; have < *size; g++) {
			uint64_t next;

			e = mm_granule(mm, g);
			next = e ? atomic_load_explicit(&e->word, memory_order_acquire) : 0;
			if (!(next & MMG_REG) || (next & ~MMG_FLAGS) != (w & ~MMG_FLAGS) + MM_GRANULE)
				break;
			w = next;
			have += MM_GRANULE;
		}
		*size = MIN(*size, have);
		return pa;
	}
	if (iovm_dma_xlate(ctx, vaddr, &x)) {
		errno = -err_hot(-ENOENT, "%p is neither DMA memory nor registered (iovm_mem_register())", vaddr);
		return IOVM_VTOPHYS_ERROR;
	}
	if (size)
		*size = MIN(*size, (uint64_t)x.contig);
	return x.pa.addr;
}
