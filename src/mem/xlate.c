/* SPDX-License-Identifier: MIT */
/*
 * xlate.c - pointer to physical address and back, in O(1) without a lock.
 *
 * Forward: the pointer's slot gives its segment list, its offset in the list
 * gives a page, and the page's entry holds the PA (SPDK's two-level map does
 * the same with 2 MiB granules; DPDK in PA mode reads pagemap per call).
 * Each entry also says for how many pages the PA stays contiguous, so the
 * contiguous length of any pointer is one load too.
 *
 * Reverse: a table per page size from PA page to the virtual address of the
 * page in the heap, written at commit.
 *
 * Entries are written under the list lock (commit, release) and read by
 * anyone. The PA word carries a valid bit and is stored last with release
 * semantics, so a reader that sees it valid sees the rest of the entry.
 */
#include <errno.h>

#include "base/ctx.h"
#include "base/error.h"
#include "base/lock.h"
#include "mem/mem.h"
#include "mem/mem_internal.h"
#include "phys/phys.h"

/*
 * PAs of pages are page aligned: bit 0 of the word is free to say
 * "valid", bit 1 "a host PA" (iovm_dma_xlate()'s IOVM_XLATE_PA_REAL).
 */
#define XLATE_VALID UINT64_C(1)
#define XLATE_HOST UINT64_C(2)
#define XLATE_BITS (XLATE_VALID | XLATE_HOST)

#if UINTPTR_MAX == UINT64_MAX
/* flags took the tail padding: programs built against the older header still pass room enough. */
static_assert(sizeof(struct iovm_dma_xlate) == 48, "struct iovm_dma_xlate keeps its size");
#endif

static inline uint64_t xlate_pa(const struct mem_xlate *e)
{
	return atomic_load_explicit(&e->pa, memory_order_acquire);
}

/* pa_run of @page, from its successor: runs are computed back to front. */
static void run_update(struct mem_seglist *sl, uint64_t page)
{
	struct mem_xlate *e = &sl->xlate[page];
	uint64_t pa = xlate_pa(e) & ~XLATE_BITS;
	uint64_t hpa = atomic_load_explicit(&e->hpa, memory_order_relaxed);
	uint32_t run = 1, hrun = hpa != IOVM_ADDR_INVALID ? 1 : 0;

	lock_assert_held(&sl->lock);
	if (page + 1 < sl->npages) {
		struct mem_xlate *n = &sl->xlate[page + 1];
		uint64_t npa = xlate_pa(n), nhpa = atomic_load_explicit(&n->hpa, memory_order_relaxed);
		uint32_t nrun = atomic_load_explicit(&n->pa_run, memory_order_relaxed);
		uint32_t nhrun = atomic_load_explicit(&n->hpa_run, memory_order_relaxed);

		if ((npa & XLATE_VALID) && (npa & ~XLATE_BITS) == pa + sl->page_size && nrun < UINT32_MAX)
			run = nrun + 1;
		if (hrun && (npa & XLATE_VALID) && nhpa != IOVM_ADDR_INVALID &&
		    nhpa == hpa + sl->page_size && nhrun && nhrun < UINT32_MAX)
			hrun = nhrun + 1;
	}
	atomic_store_explicit(&e->pa_run, run, memory_order_relaxed);
	atomic_store_explicit(&e->hpa_run, hrun, memory_order_relaxed);
}

void xlate_commit(struct mem_seglist *sl, uint64_t page, uint64_t n, pa_t pa)
{
	struct phys_space *ps = sl->ms->phys;
	/* A list's pages all come from its arena: host PAs, or none of them. */
	uint64_t bits = XLATE_VALID | (phys_arena_at_host_pa(sl->arena) ? XLATE_HOST : 0);

	lock_assert_held(&sl->lock);
	for (uint64_t i = 0; i < n; i++) {
		struct mem_xlate *e = &sl->xlate[page + i];
		pa_t p = pa_add(pa, i << sl->page_shift);
		hpa_t h = phys_hpa(ps, p);

		atomic_store_explicit(&e->hpa, hpa_val(h), memory_order_relaxed);
		atomic_store_explicit(&e->pa, pa_val(p) | bits, memory_order_release);
	}
	for (uint64_t i = n; i--;)
		run_update(sl, page + i);
	/* Earlier pages whose run now reaches into the new ones grow. */
	for (uint64_t p = page; p--;) {
		uint32_t before = atomic_load_explicit(&sl->xlate[p].pa_run, memory_order_relaxed);
		uint32_t hbefore = atomic_load_explicit(&sl->xlate[p].hpa_run, memory_order_relaxed);

		if (!(xlate_pa(&sl->xlate[p]) & XLATE_VALID))
			break;
		run_update(sl, p);
		if (atomic_load_explicit(&sl->xlate[p].pa_run, memory_order_relaxed) == before &&
		    atomic_load_explicit(&sl->xlate[p].hpa_run, memory_order_relaxed) == hbefore)
			break;
	}
}

void xlate_release(struct mem_seglist *sl, uint64_t page, uint64_t n)
{
	lock_assert_held(&sl->lock);
	/* Runs of earlier pages must stop short of the released ones first. */
	for (uint64_t p = page; p--;) {
		struct mem_xlate *e = &sl->xlate[p];
		uint64_t dist = page - p;
		uint32_t run = atomic_load_explicit(&e->pa_run, memory_order_relaxed);
		uint32_t hrun = atomic_load_explicit(&e->hpa_run, memory_order_relaxed);

		if (!(xlate_pa(e) & XLATE_VALID) || (run <= dist && hrun <= dist))
			break;
		if (run > dist)
			atomic_store_explicit(&e->pa_run, (uint32_t)dist, memory_order_relaxed);
		if (hrun > dist)
			atomic_store_explicit(&e->hpa_run, (uint32_t)dist, memory_order_relaxed);
	}
	for (uint64_t i = 0; i < n; i++) {
		struct mem_xlate *e = &sl->xlate[page + i];

		/* The PA bits stay: the release path reads them to free the frames. */
		atomic_store_explicit(&e->pa, xlate_pa(e) & ~XLATE_BITS, memory_order_release);
		atomic_store_explicit(&e->pa_run, 0, memory_order_relaxed);
		atomic_store_explicit(&e->hpa_run, 0, memory_order_relaxed);
	}
}

/* The PA of a page whose entry was just invalidated (the release path). */
pa_t xlate_stale_pa(const struct mem_seglist *sl, uint64_t page)
{
	return pa_make(xlate_pa(&sl->xlate[page]) & ~XLATE_BITS);
}

void rev_clear(struct mem_space *ms, unsigned psz_idx, pa_t pa, uint64_t npages)
{
	unsigned shift = ilog2(ms->page_size[psz_idx]);

	/* Lookups, never allocations: clearing cannot fail. */
	for (uint64_t i = 0; i < npages; i++) {
		_Atomic uintptr_t *slot = radix_lookup(&ms->rev[psz_idx], (pa_val(pa) >> shift) + i);

		if (slot)
			atomic_store_explicit(slot, 0, memory_order_release);
	}
}

int rev_set(struct mem_space *ms, unsigned psz_idx, pa_t pa, uint64_t npages, uint8_t *va)
{
	unsigned shift = ilog2(ms->page_size[psz_idx]);
	struct radix *r = &ms->rev[psz_idx];
	int ret = 0;

	mutex_lock(&ms->rev_lock);
	for (uint64_t i = 0; i < npages; i++) {
		_Atomic uintptr_t *slot = radix_lookup_alloc(r, (pa_val(pa) >> shift) + i);

		if (!slot) {
			ret = -ENOMEM;
			break;
		}
		atomic_store_explicit(slot, (uintptr_t)(va + (i << shift)), memory_order_release);
	}
	mutex_unlock(&ms->rev_lock);
	if (ret)
		rev_clear(ms, psz_idx, pa, npages);
	return ret;
}

/*
 * The committed page entry of @ptr: its list, @ptr's offset in the list and
 * the entry's PA word (valid bit set), or NULL when @ptr is not in a
 * committed page.
 */
static inline const struct mem_xlate *xlate_lookup(const struct iovm_ctx *ctx, const void *ptr,
						   const struct mem_seglist **slp, uint64_t *loff,
						   uint64_t *pa_word)
{
	const struct mem_space *ms = ctx->mem;
	uint64_t off = (uint64_t)((const uint8_t *)ptr - ms->arena);
	const struct mem_seglist *sl;
	const struct mem_xlate *e;

	if (unlikely(off >= ms->arena_len))
		return NULL;
	sl = atomic_load_explicit(&ms->lists[off >> ms->slot_shift], memory_order_acquire);
	if (unlikely(!sl))
		return NULL;
	*loff = off & sl->len_mask;
	e = &sl->xlate[*loff >> sl->page_shift];
	*pa_word = xlate_pa(e);
	if (unlikely(!(*pa_word & XLATE_VALID)))
		return NULL;
	*slp = sl;
	return e;
}

IOVM_API int iovm_dma_pa(const struct iovm_ctx *ctx, const void *ptr, iovm_pa_t *pa)
{
	const struct mem_seglist *sl;
	uint64_t loff, v;

	if (unlikely(!ctx || !pa))
		return err_hot(-EINVAL, "invalid argument: !ctx || !pa");
	if (unlikely(!xlate_lookup(ctx, ptr, &sl, &loff, &v))) {
		const struct mem_shared *sh = mem_shared_of(ctx->mem);

		if (mem_shared_holds(sh, ptr)) {
			*pa = IOVM_PA(pa_val(sh->pa) + (uint64_t)((const uint8_t *)ptr - sh->va));
			return 0;
		}
		return err_hot(-ENOENT, "%p is not in iovm's DMA memory", ptr);
	}
	*pa = IOVM_PA((v & ~XLATE_BITS) + (loff & sl->page_mask));
	return 0;
}

IOVM_API int iovm_dma_xlate(const struct iovm_ctx *ctx, const void *ptr, struct iovm_dma_xlate *x)
{
	const struct mem_seglist *sl;
	const struct mem_xlate *e;
	uint64_t loff, v, in_page, hpa;
	uint32_t run, hrun;

	if (unlikely(!ctx || !x))
		return err_hot(-EINVAL, "invalid argument: !ctx || !x");
	e = xlate_lookup(ctx, ptr, &sl, &loff, &v);
	if (unlikely(!e)) {
		const struct mem_shared *sh = mem_shared_of(ctx->mem);

		if (mem_shared_holds(sh, ptr)) {
			uint64_t off = (uint64_t)((const uint8_t *)ptr - sh->va);

			/* One memfd range on the bus: contiguous to its end; its host PAs unread. */
			x->pa = IOVM_PA(pa_val(sh->pa) + off);
			x->hpa = IOVM_HPA(IOVM_ADDR_INVALID);
			x->contig = sh->len - off;
			x->hpa_contig = 0;
			x->page_size = sh->page_size;
			x->node = -1;
			x->flags = 0; /* a share's PAs are emulated, the same in every process */
			return 0;
		}
		return err_hot(-ENOENT, "%p is not in iovm's DMA memory", ptr);
	}
	hpa = atomic_load_explicit(&e->hpa, memory_order_relaxed);
	run = atomic_load_explicit(&e->pa_run, memory_order_relaxed);
	hrun = atomic_load_explicit(&e->hpa_run, memory_order_relaxed);
	in_page = loff & sl->page_mask;

	x->pa = IOVM_PA((v & ~XLATE_BITS) + in_page);
	x->hpa = IOVM_HPA(hpa != IOVM_ADDR_INVALID ? hpa + in_page : IOVM_ADDR_INVALID);
	x->contig = ((uint64_t)MAX(run, 1u) << sl->page_shift) - in_page;
	x->hpa_contig = hrun ? ((uint64_t)hrun << sl->page_shift) - in_page : 0;
	x->page_size = sl->page_size;
	x->node = sl->node;
	x->flags = (v & XLATE_HOST) ? IOVM_XLATE_PA_REAL : 0;
	return 0;
}

int mem_locate(const struct mem_space *ms, const void *ptr, struct mem_where *w)
{
	uint64_t off = (uint64_t)((const uint8_t *)ptr - ms->arena);
	const struct mem_seglist *sl;

	if (off >= ms->arena_len)
		return -ENOENT;
	sl = atomic_load_explicit(&ms->lists[off >> ms->slot_shift], memory_order_acquire);
	if (!sl)
		return -ENOENT;
	w->slot = sl->slot;
	w->page = (off & sl->len_mask) >> sl->page_shift;
	w->page_shift = sl->page_shift;
	return 0;
}

uint64_t mem_slot_pages(const struct mem_space *ms, unsigned page_shift)
{
	return (UINT64_C(1) << ms->slot_shift) >> page_shift;
}

IOVM_API void *iovm_dma_ptr(const struct iovm_ctx *ctx, iovm_pa_t pa)
{
	const struct mem_space *ms;
	_Atomic uintptr_t *slot;
	uint64_t psz;
	uintptr_t va;

	if (!ctx) {
		errno = -err_hot(-EINVAL, "invalid argument: !ctx");
		return NULL;
	}
	ms = ctx->mem;
	{
		const struct mem_shared *sh = mem_shared_of(ms);

		if (sh && pa.addr - pa_val(sh->pa) < sh->len)
			return sh->va + (pa.addr - pa_val(sh->pa));
	}
	psz = phys_page_size(ms->phys, pa);
	for (unsigned i = 0; psz && i < MEM_NR_PSZ; i++) {
		if (ms->page_size[i] != psz)
			continue;
		slot = radix_lookup(&ms->rev[i], pa.addr >> ilog2(psz));
		va = slot ? atomic_load_explicit(slot, memory_order_acquire) : 0;
		if (va)
			return (void *)(va + (pa.addr & (psz - 1)));
	}
	errno = -err_hot(-ENOENT, "PA %#llx is not mapped in this process", (unsigned long long)pa.addr);
	return NULL;
}
