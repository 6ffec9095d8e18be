/* SPDX-License-Identifier: MIT */
/*
 * follow.c - a domain that follows the DMA heap: every range the heap
 * commits is mapped as it is committed (a VA-contiguous range gets one
 * contiguous IOVA range), and unmapped before the heap releases it.
 *
 * For iovm_dma_iova() to be O(1) without a lock, a managed domain keeps, per
 * segment list of the heap, a table parallel to the list's pages: the IOVA
 * of each page (plus one; zero means not mapped). Tables are made the first
 * time a list commits, published with a release store, and kept until the
 * domain goes. A VA domain needs none (IOVA == VA), an identity domain
 * neither (IOVA == PA).
 *
 * The heap may hand out one allocation across two commits (it grows a
 * list by committing the pages after what it committed before), and a
 * device access that starts at iovm_dma_iova(buf) runs over the whole
 * buffer: IOVA must be as contiguous as VA. So a managed domain reserves,
 * at a slot's first commit, an IOVA window as long as the slot, and maps
 * each page at the window's base plus the page's offset in the slot: any
 * VA-contiguous range is IOVA-contiguous. The window is kept until the
 * domain goes: a release unmaps and keeps the window's IOVAs, in a
 * deferred domain through the flush queue as any unmap; a commit into a
 * window with such unmaps queued flushes first, so that no device keeps
 * the old translation of an IOVA mapped anew (iommu.h). Where the
 * window does not fit (a small dma_bits), each commit gets an IOVA range
 * of its own, as before: only a range committed at once is contiguous.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>

#include <iovm/mem.h>

#include "base/ctx.h"
#include "base/error.h"
#include "base/fault_inject.h"
#include "base/log.h"
#include "iommu/iommu_internal.h"

static _Atomic uint64_t *heap_table(struct iovm_domain *dom, const struct mem_where *w, bool make)
{
	_Atomic uint64_t *t = atomic_load_explicit(&dom->heap_iova[w->slot], memory_order_acquire);
	uint64_t pages;

	if (t || !make)
		return t;
	/* Made under the heap list's lock (commit events hold it): no race for a slot. */
	pages = mem_slot_pages(dom->ctx->mem, w->page_shift);
	t = fi_mmap(NULL, pages * sizeof(*t), PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (t == MAP_FAILED)
		return NULL;
	dom->heap_iova_pages[w->slot] = pages;
	atomic_store_explicit(&dom->heap_iova[w->slot], t, memory_order_release);
	return t;
}

/* The IOVA of @w's page in its slot's window, reserved at the slot's first commit; false without one. */
static bool window_iova(struct iovm_domain *dom, const struct mem_where *w, iova_t *iova)
{
	iova_t base;

	if (!dom->heap_window[w->slot]) {
		if (iova_alloc(&dom->iova, mem_slot_pages(dom->ctx->mem, 12) << 12, UINT64_C(1) << w->page_shift, &base))
			return false; /* tried again at the next commit: the space may have room then */
		dom->heap_window[w->slot] = iova_val(base) + 1;
	}
	*iova = iova_make(dom->heap_window[w->slot] - 1 + (w->page << w->page_shift));
	return true;
}

/* Whether @iova lies in the window of @w's slot. */
static bool in_window(const struct iovm_domain *dom, const struct mem_where *w, uint64_t iova)
{
	uint64_t base = dom->heap_window[w->slot] - 1;

	return dom->heap_window[w->slot] && iova - base < mem_slot_pages(dom->ctx->mem, 12) << 12;
}

/*
 * The shared heap (iovm/mp.h): one IOVA range for its whole length, taken
 * at its first commit, where each parcel is mapped as it gets memory
 * (at the range's base plus its offset) and unmapped before it loses it.
 */
static int shared_commit(struct iovm_domain *dom, const struct iovm_mem_event *ev, uint64_t off, uint64_t len)
{
	uint64_t e = atomic_load_explicit(&dom->shared_iova, memory_order_relaxed);
	iova_t iova;
	int ret;

	if (!e) {
		ret = iova_alloc(&dom->iova, len, MAX(ev->page_size, SZ_2M), &iova);
		if (ret)
			return ret;
		dom->shared_len = len;
		e = iova_val(iova) + 1;
		atomic_store_explicit(&dom->shared_iova, e, memory_order_release);
	}
	/* A parcel released before may still be in the flush queue at these IOVAs: flushed first. */
	if (dom->shared_queued) {
		flushq_flush(dom);
		dom->shared_queued = false;
	}
	return domain_map_va(dom, iova_make(e - 1 + off), ev->va, ev->len, PT_PROT_READ | PT_PROT_WRITE);
}

static void shared_release(struct iovm_domain *dom, const struct iovm_mem_event *ev)
{
	uint64_t e = atomic_load_explicit(&dom->shared_iova, memory_order_acquire), off, len;
	bool any;

	/* The range keeps its IOVAs (the domain's end frees them, once): the parcel may come back. */
	if (e && !mem_shared_locate(dom->ctx->mem, ev->va, &off, &len)) {
		domain_unmap_how(dom, iova_make(e - 1 + off), ev->len, UNMAP_KEEP_IOVA, &any);
		if (dom->flags & IOVM_DOMAIN_DEFERRED)
			dom->shared_queued = true;
	}
}

static int on_commit(struct iovm_domain *dom, const struct iovm_mem_event *ev)
{
	uint64_t shared_off, shared_len;
	bool windowed = false;
	iova_t iova;
	struct mem_where w;
	_Atomic uint64_t *t = NULL;
	int ret;

	if (dom->type == IOVM_DOMAIN_IDENTITY)
		return 0;
	if (dom->type == IOVM_DOMAIN_MANAGED && !mem_shared_locate(dom->ctx->mem, ev->va, &shared_off, &shared_len))
		return shared_commit(dom, ev, shared_off, shared_len);
	if (dom->type == IOVM_DOMAIN_MANAGED) {
		ret = mem_locate(dom->ctx->mem, ev->va, &w);
		if (ret)
			return ret;
		t = heap_table(dom, &w, true);
		if (!t)
			return -ENOMEM;
		windowed = window_iova(dom, &w, &iova);
		if (windowed && dom->heap_window_queued[w.slot]) {
			flushq_flush(dom);
			dom->heap_window_queued[w.slot] = false;
		}
		if (!windowed) {
			/* One IOVA range for the range: aligned to the page size, for huge leaves. */
			ret = iova_alloc(&dom->iova, ev->len, ev->page_size, &iova);
			if (ret)
				return ret;
		}
	} else {
		iova = iova_make((uintptr_t)ev->va); /* a VA domain: the process's address */
	}
	ret = domain_map_va(dom, iova, ev->va, ev->len, PT_PROT_READ | PT_PROT_WRITE);
	if (ret) {
		if (dom->type == IOVM_DOMAIN_MANAGED && !windowed)
			iova_free(&dom->iova, iova, ev->len);
		return ret;
	}
	if (t)
		for (uint64_t i = 0; i < ev->len >> w.page_shift; i++)
			atomic_store_explicit(&t[w.page + i], iova_val(iova) + (i << w.page_shift) + 1,
					      memory_order_release);
	return 0;
}

/* Unmap a run of released pages, keeping the IOVAs in the slot's window. */
static void release_run(struct iovm_domain *dom, const struct mem_where *w, uint64_t iova, uint64_t len)
{
	bool any;

	if (in_window(dom, w, iova)) {
		domain_unmap_how(dom, iova_make(iova), len, UNMAP_KEEP_IOVA, &any);
		if (dom->flags & IOVM_DOMAIN_DEFERRED)
			dom->heap_window_queued[w->slot] = true;
	} else {
		domain_unmap(dom, iova_make(iova), len, &any);
	}
}

static void on_release(struct iovm_domain *dom, const struct iovm_mem_event *ev)
{
	uint64_t run_iova = 0, run_len = 0;
	struct mem_where w;
	_Atomic uint64_t *t;
	bool any;

	if (dom->type == IOVM_DOMAIN_IDENTITY)
		return;
	if (dom->type == IOVM_DOMAIN_VA) {
		domain_unmap(dom, iova_make((uintptr_t)ev->va), ev->len, &any);
		return;
	}
	if (mem_locate(dom->ctx->mem, ev->va, &w)) {
		shared_release(dom, ev);
		return;
	}
	if (!(t = heap_table(dom, &w, false)))
		return;
	/* Pages released together may come from several commits: unmap runs of IOVA. */
	for (uint64_t i = 0; i < ev->len >> w.page_shift; i++) {
		uint64_t e = atomic_exchange_explicit(&t[w.page + i], 0, memory_order_acq_rel);
		uint64_t page = UINT64_C(1) << w.page_shift;

		if (!e)
			continue;
		if (run_len && run_iova + run_len == e - 1 &&
		    in_window(dom, &w, run_iova) == in_window(dom, &w, e - 1)) {
			run_len += page;
			continue;
		}
		if (run_len)
			release_run(dom, &w, run_iova, run_len);
		run_iova = e - 1;
		run_len = page;
	}
	if (run_len)
		release_run(dom, &w, run_iova, run_len);
}

static int on_event(void *arg, const struct iovm_mem_event *ev)
{
	struct iovm_domain *dom = arg;

	if (ev->type == IOVM_MEM_EVENT_COMMIT)
		return on_commit(dom, ev);
	on_release(dom, ev);
	return 0;
}

static void drop_heap_tables(struct iovm_domain *dom)
{
	uint64_t e = atomic_exchange_explicit(&dom->shared_iova, 0, memory_order_relaxed);

	/* Its mapping went with the release the replay sent, or goes with the domain: the IOVAs go here. */
	if (e)
		iova_free(&dom->iova, iova_make(e - 1), dom->shared_len);
	for (unsigned i = 0; i < MEM_SLOTS; i++) {
		_Atomic uint64_t *t = atomic_load_explicit(&dom->heap_iova[i], memory_order_relaxed);

		if (t)
			munmap((void *)t, dom->heap_iova_pages[i] * sizeof(*t));
		atomic_store_explicit(&dom->heap_iova[i], NULL, memory_order_relaxed);
		if (dom->heap_window[i])
			iova_free(&dom->iova, iova_make(dom->heap_window[i] - 1), mem_slot_pages(dom->ctx->mem, 12) << 12);
		dom->heap_window[i] = 0;
		dom->heap_window_queued[i] = false;
	}
}

int follow_heap(struct iovm_domain *dom)
{
	int ret = iovm_mem_event_subscribe(dom->ctx, on_event, dom, &dom->sub);

	/* The replay made tables for what it mapped, and took its mappings back: the tables go too. */
	if (ret)
		drop_heap_tables(dom);
	return ret;
}

void unfollow_heap(struct iovm_domain *dom)
{
	iovm_mem_event_unsubscribe(dom->ctx, dom->sub);
	dom->sub = NULL;
	drop_heap_tables(dom);
}

IOVM_API int iovm_dma_iova(const struct iovm_domain *dom, const void *ptr, iovm_iova_t *iova)
{
	_Atomic uint64_t *t;
	struct mem_where w;
	struct pt_walk pw;
	iovm_pa_t pa;
	uint64_t e;

	if (unlikely(!dom || !iova))
		return err_hot(-EINVAL, "invalid argument: !dom || !iova");
	switch (dom->type) {
	case IOVM_DOMAIN_IDENTITY:
		if (iovm_dma_pa(dom->ctx, ptr, &pa))
			return err_hot(-ENOENT, "%p is not in the DMA heap", ptr);
		*iova = IOVM_IOVA(pa.addr);
		return 0;
	case IOVM_DOMAIN_VA:
		/*
		 * Mapped where the heap is committed, if the domain follows the
		 * heap; else where the caller mapped it (iovm_domain_map_ptr()),
		 * as the page table says: iommu.h promises -ENOENT only for a
		 * pointer not mapped in @dom.
		 */
		if (iovm_dma_pa(dom->ctx, ptr, &pa))
			return err_hot(-ENOENT, "%p is not in the DMA heap", ptr);
		if (!dom->sub && (pt_walk(&dom->pt, iova_make((uintptr_t)ptr), &pw) || pa_val(pw.pa) != pa.addr))
			return err_hot(-ENOENT, "%p is not mapped in the domain", ptr);
		*iova = IOVM_IOVA((uintptr_t)ptr);
		return 0;
	case IOVM_DOMAIN_MANAGED:
		break;
	case IOVM_DOMAIN_GUEST:
	case IOVM_DOMAIN_NESTED:
		/* Guest addresses: the heap is not the guest's memory. */
		return err_hot(-ENOENT, "a guest or nested domain maps no heap memory");
	}
	if (unlikely(mem_locate(dom->ctx->mem, ptr, &w))) {
		uint64_t off, len;

		e = atomic_load_explicit(&dom->shared_iova, memory_order_acquire);
		if (e && !mem_shared_locate(dom->ctx->mem, ptr, &off, &len)) {
			*iova = IOVM_IOVA(e - 1 + off);
			return 0;
		}
		return err_hot(-ENOENT, "%p is not in the DMA heap", ptr);
	}
	t = atomic_load_explicit(&dom->heap_iova[w.slot], memory_order_acquire);
	if (unlikely(!t))
		return err_hot(-ENOENT, "%p: the domain does not follow the heap there", ptr);
	e = atomic_load_explicit(&t[w.page], memory_order_acquire);
	if (unlikely(!e))
		return err_hot(-ENOENT, "%p: the domain does not map that page", ptr);
	*iova = IOVM_IOVA(e - 1 + ((uintptr_t)ptr & ((UINT64_C(1) << w.page_shift) - 1)));
	return 0;
}
