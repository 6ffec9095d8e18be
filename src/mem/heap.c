/* SPDX-License-Identifier: MIT */
/*
 * heap.c - the DMA heap's public calls: iovm_dma_alloc() and friends.
 *
 * A request with the context's default placement and a small size goes to
 * the calling thread's cache; anything else picks segment lists in the
 * context's order of page sizes (2 MiB, then 4 KiB, with page_size=auto)
 * on the requested node, and takes a slab object or a page run there. A
 * list whose arena the kernel recently refused to grow is tried without
 * growing first, so that a machine out of hugepages falls back to 4 KiB
 * pages without asking the kernel again on every allocation.
 */
#include <errno.h>
#include <string.h>

#include "base/ctx.h"
#include "base/error.h"
#include "mem/tcache.h"

#define DMA_FLAG_PAGES (IOVM_DMA_PAGE_4K | IOVM_DMA_PAGE_2M | IOVM_DMA_PAGE_1G)
#define DMA_FLAG_BOUNDARY_MASK 0x0000ff00u
#define DMA_FLAG_NODE_MASK 0x00ff0000u
#define DMA_FLAGS_KNOWN                                                                        \
	(IOVM_DMA_ZERO | IOVM_DMA_CONTIG | DMA_FLAG_PAGES | DMA_FLAG_BOUNDARY_MASK |          \
	 DMA_FLAG_NODE_MASK | IOVM_DMA_KEEP)
/* Alignments beyond a 1 GiB page make no sense for DMA memory. */
#define DMA_MAX_ALIGN SZ_1G
#define DMA_MAX_BOUNDARY_SHIFT 40
#define DMA_DEFAULT_ALIGN 16

struct placement {
	unsigned psz[MEM_NR_PSZ + 1]; /* page size indices, in order */
	unsigned nr_psz;
	unsigned node_slot;
};

static int node_slot_of(const struct mem_space *ms, int node, unsigned *slot)
{
	for (unsigned i = 1; i < ms->nr_node_slots; i++) {
		if (ms->node_of_slot[i] == node) {
			*slot = i;
			return 0;
		}
	}
	return -EINVAL;
}

/* Decode @flags into a request and a placement; -EINVAL or -EOPNOTSUPP on bad input. */
static int decode(const struct mem_space *ms, size_t size, size_t align, uint32_t flags,
		  struct mem_req *req, struct placement *pl)
{
	unsigned shift = (flags & DMA_FLAG_BOUNDARY_MASK) >> 8;
	unsigned node_field = (flags & DMA_FLAG_NODE_MASK) >> 16;

	/* Each IOVM_DMA_PAGE_* says "only": two of them contradict each other. */
	if (!size || (flags & ~DMA_FLAGS_KNOWN) || (align && !is_pow2(align)) ||
	    align > DMA_MAX_ALIGN || ((flags & DMA_FLAG_PAGES) && !is_pow2(flags & DMA_FLAG_PAGES)))
		return err_inval("!size || (flags & ~DMA_FLAGS_KNOWN) || (align && !is_pow2(align)) || align > DMA_MAX_ALIGN || ((flags & DMA_FLAG_PAGES) && !is_pow2(flags & DMA_FLAG_PAGES))");
	if (size > (UINT64_C(1) << ms->slot_shift))
		return -ENOMEM;
	*req = (struct mem_req){
		.size = size,
		.align = MAX(align, DMA_DEFAULT_ALIGN),
		.contig = flags & IOVM_DMA_CONTIG,
		.zero = flags & IOVM_DMA_ZERO,
	};
	if (shift) {
		if (shift > DMA_MAX_BOUNDARY_SHIFT || (UINT64_C(1) << shift) < size)
			return err_inval("shift > DMA_MAX_BOUNDARY_SHIFT || (UINT64_C(1) << shift) < size");
		/*
		 * Aligned to the power of two at or above its size, a block
		 * crosses no boundary of that size or larger, in VA or in PA
		 * (contiguous memory keeps the two in step).
		 */
		req->align = MAX(req->align, roundup_pow2(size));
		req->contig = true;
	}

	pl->node_slot = ms->default_node_slot;
	if (node_field && node_slot_of(ms, (int)node_field - 1, &pl->node_slot))
		return err_inval("node_field && node_slot_of(ms, (int)node_field - 1, &pl->node_slot)");

	pl->nr_psz = 0;
	if (!(flags & DMA_FLAG_PAGES)) {
		for (unsigned i = 0; i < ms->nr_pref; i++) {
			pl->psz[pl->nr_psz++] = ms->pref[i];
			/*
			 * With page_size=auto, contiguous memory larger than a 2 MiB
			 * page may come from a 1 GiB page before 4 KiB ones: where
			 * hugepages are scattered in host PA, a 1 GiB page is the one
			 * place a large block is physically contiguous.
			 */
			if (ms->auto_pages && ms->pref[i] == MEM_PSZ_2M && req->contig &&
			    size > SZ_2M && ms->page_size[MEM_PSZ_1G])
				pl->psz[pl->nr_psz++] = MEM_PSZ_1G;
		}
		return 0;
	}
	/* Explicit page sizes, largest first. */
	for (int i = MEM_NR_PSZ - 1; i >= 0; i--) {
		if (!(flags & (IOVM_DMA_PAGE_4K << i)))
			continue;
		if (i == MEM_PSZ_4K && ms->host_pa_only)
			return err_detail(-EOPNOTSUPP, IOVM_LOG_DEBUG,
					  "IOVM_DMA_PAGE_4K with host_pa=on: 4 KiB pages have no fixed host PA");
		if (!ms->page_size[i])
			return -EOPNOTSUPP;
		pl->psz[pl->nr_psz++] = (unsigned)i;
	}
	return 0;
}

/* Zero what is not known to be zero already, and count both. */
static void zero_fill(struct mem_space *ms, void *p, uint64_t size, bool known_zero)
{
	if (known_zero) {
		atomic_fetch_add_explicit(&ms->zero_known, size, memory_order_relaxed);
		return;
	}
	memset(p, 0, size);
	atomic_fetch_add_explicit(&ms->zeroed, size, memory_order_relaxed);
}

static void *alloc_placed(struct mem_space *ms, const struct mem_req *req,
			  const struct placement *pl)
{
	int cls = class_of(req->size, req->align);
	bool skipped = false;

	for (int pass = 0; pass < 2; pass++) {
		for (unsigned i = 0; i < pl->nr_psz; i++) {
			struct mem_seglist *sl = mem_list_get(ms, pl->psz[i], pl->node_slot);
			bool grow, zero = false;
			void *p = NULL;

			if (!sl)
				continue;
			grow = pass || seglist_may_grow(sl);
			skipped |= !grow;
			if (cls >= 0)
				p = slab_alloc(sl, (unsigned)cls, grow, &zero);
			else if (run_alloc(sl, req, grow, &p, &zero))
				p = NULL;
			if (p) {
				if (req->zero)
					zero_fill(ms, p, req->size, zero);
				return p;
			}
		}
		/* The second pass grows lists the first one spared; if none was spared, it is moot. */
		if (!skipped)
			break;
	}
	errno = -err_detail(-ENOMEM, IOVM_LOG_DEBUG, "no memory for %llu bytes (mem_limit, or the hugepage pool)",
			    (unsigned long long)req->size);
	return NULL;
}

/* From the shared heap: mem validates the arguments as for its own, the heap places them. */
static void *alloc_shared(struct mem_space *ms, const struct mem_shared *sh, size_t size, size_t align,
			  uint32_t flags)
{
	struct placement pl;
	struct mem_req req;
	int ret = decode(ms, size, align, flags, &req, &pl);

	if (ret == -EINVAL) {
		errno = EINVAL;
		return NULL;
	}
	if (event_in_callback()) {
		errno = -err_detail(-EDEADLK, IOVM_LOG_DEBUG, "called from a memory event callback");
		return NULL;
	}
	return sh->ops->alloc(sh->arg, size, align, flags);
}

void *mem_dma_alloc_own(struct iovm_ctx *ctx, size_t size, size_t align, uint32_t flags)
{
	struct placement pl;
	struct mem_req req;
	int ret = decode(ctx->mem, size, align, flags, &req, &pl);

	if (ret) {
		errno = -ret;
		return NULL;
	}
	atomic_fetch_add_explicit(&ctx->mem->slow_allocs, 1, memory_order_relaxed);
	return alloc_placed(ctx->mem, &req, &pl);
}

void *mem_dma_alloc_huge(struct mem_space *ms, size_t size, size_t align, bool zero)
{
	struct placement pl = { .nr_psz = 0, .node_slot = ms->default_node_slot };
	struct mem_req req = { .size = size, .align = MAX(align, DMA_DEFAULT_ALIGN), .zero = zero };

	if (!size || (align && !is_pow2(align)) || align > DMA_MAX_ALIGN) {
		errno = EINVAL;
		return NULL;
	}
	for (unsigned i = 0; i < ms->nr_pref; i++)
		if (ms->pref[i] != MEM_PSZ_4K)
			pl.psz[pl.nr_psz++] = ms->pref[i];
	if (!pl.nr_psz || size > (UINT64_C(1) << ms->slot_shift)) {
		errno = ENOMEM;
		return NULL;
	}
	atomic_fetch_add_explicit(&ms->slow_allocs, 1, memory_order_relaxed);
	return alloc_placed(ms, &req, &pl);
}

static __noinline void *alloc_slow(struct iovm_ctx *ctx, size_t size, size_t align, uint32_t flags)
{
	const struct mem_shared *sh;
	struct mem_space *ms;
	struct placement pl;
	struct mem_req req;
	int ret;

	if (!ctx) {
		errno = -err_inval("!ctx");
		return NULL;
	}
	ms = ctx->mem;
	sh = mem_shared_of(ms);
	if (sh)
		return alloc_shared(ms, sh, size, align, flags);
	ret = decode(ms, size, align, flags, &req, &pl);
	if (ret) {
		errno = -ret;
		return NULL;
	}
	if (event_in_callback()) {
		errno = -err_detail(-EDEADLK, IOVM_LOG_DEBUG, "called from a memory event callback");
		return NULL;
	}
	atomic_fetch_add_explicit(&ms->slow_allocs, 1, memory_order_relaxed);
	return alloc_placed(ms, &req, &pl);
}

int mem_flags_check(const struct mem_space *ms, size_t size, uint32_t flags)
{
	struct placement pl;
	struct mem_req req;
	int ret = decode(ms, size, 0, flags, &req, &pl);

	return ret == -EINVAL ? ret : 0;
}

/*
 * The fast path: default placement, small, served by the thread's cache.
 * Not from an event callback: mem.h promises EDEADLK there, thread cache
 * or not. An alignment above 16 takes class_of()'s search for a class
 * aligned enough, out of line.
 */
mem_fast_inline void *alloc_fast(struct iovm_ctx *ctx, size_t size, size_t align, uint32_t flags)
{
	unsigned cls;
	void *p;

	if (unlikely(!ctx || (flags & ~IOVM_DMA_ZERO) || size - 1 >= MEM_SMALL_MAX ||
		     align > DMA_DEFAULT_ALIGN * 4 || (align & (align - 1)) || event_in_callback() ||
		     mem_shared_of(ctx->mem)))
		return NULL;
	if (likely(align <= DMA_DEFAULT_ALIGN)) {
		cls = class_of_small(size);
	} else {
		int c = class_of(size, align);

		if (c < 0)
			return NULL;
		cls = (unsigned)c;
	}
	p = tcache_alloc(ctx->mem, cls);
	if (likely(p) && unlikely(flags & IOVM_DMA_ZERO))
		memset(p, 0, size);
	return p;
}

/* iovm_dma_alloc() without err_enter(): for the public calls built on it, whose detail names them. */
void *mem_dma_alloc(struct iovm_ctx *ctx, size_t size, size_t align, uint32_t flags)
{
	void *p = alloc_fast(ctx, size, align, flags);

	return likely(p) ? p : alloc_slow(ctx, size, align, flags);
}

IOVM_API void *iovm_dma_alloc(struct iovm_ctx *ctx, size_t size, size_t align, uint32_t flags)
{
	void *p;

	err_enter();
	p = alloc_fast(ctx, size, align, flags);
	return likely(p) ? p : alloc_slow(ctx, size, align, flags);
}

IOVM_API void *iovm_dma_zalloc(struct iovm_ctx *ctx, size_t size, size_t align, uint32_t flags)
{
	err_enter();
	return mem_dma_alloc(ctx, size, align, flags | IOVM_DMA_ZERO);
}

/* What @ptr is: a run, or a slab object and its index. */
struct dma_obj {
	struct mem_seglist *sl;
	struct mem_slab *slab; /* NULL for a run */
	uint32_t idx;
};

static int obj_lookup(struct mem_space *ms, const void *ptr, struct dma_obj *o)
{
	uint64_t off;
	uintptr_t e;

	o->sl = mem_list_of(ms, ptr);
	if (!o->sl)
		return -EINVAL;
	off = (uint64_t)((const uint8_t *)ptr - o->sl->base);
	e = atomic_load_explicit(&o->sl->units[off >> MEM_UNIT_SHIFT], memory_order_acquire);
	if (!e)
		return -EINVAL;
	if (unit_is_run(e)) {
		o->slab = NULL;
		return is_aligned(off, MEM_UNIT) ? 0 : -EINVAL;
	}
	o->slab = unit_slab_ptr(e);
	return slab_obj_index(o->slab, ptr, &o->idx);
}

/* A free that is no live slab object of the default set: a run, a slab beyond the caches, or bad. */
static __noinline int free_slow(struct mem_space *ms, void *ptr)
{
	struct dma_obj o;
	int ret = obj_lookup(ms, ptr, &o);

	if (ret)
		return ret;
	if (!o.slab) {
		/* Counted as the slab frees beyond the thread caches are: mem.h counts every call. */
		ret = run_free(o.sl, ptr);
		if (!ret)
			atomic_fetch_add_explicit(&ms->slow_frees, 1, memory_order_relaxed);
		return ret;
	}
	/* Back in its slab, or stamped as freed into a thread cache: a double free. */
	if (!slab_is_out(o.slab, o.idx) || ((uintptr_t *)ptr)[1] == dfree_key(ms, ptr))
		return -EINVAL;
	if (o.slab->cached && tcache_free(ms, ptr, o.slab->cls))
		return 0;
	atomic_fetch_add_explicit(&ms->slow_frees, 1, memory_order_relaxed);
	return slab_free(o.sl, o.slab, ptr);
}

/*
 * The fast path: a live object of a slab whose list the thread caches
 * serve goes into the calling thread's cache. Its checks are
 * obj_lookup()'s and free_slow()'s, in line: the pointer's list, its
 * unit's slab, an object's start, the slab's bit and the free stamp. The
 * bin it goes to depends on two loads only (the slot's unit map, the
 * unit's entry, which holds the class): the checks run beside the store
 * that the next allocation of the class waits for.
 */
mem_fast_inline int mem_free(struct mem_space *ms, void *ptr)
{
	uint64_t off = (uint64_t)((uint8_t *)ptr - ms->arena);
	_Atomic uintptr_t *units;
	struct mem_slab *s;
	uint32_t idx;
	uintptr_t e;

	if (unlikely(off >= ms->arena_len))
		return -EINVAL;
	units = atomic_load_explicit(&ms->slot_units[off >> ms->slot_shift], memory_order_acquire);
	if (unlikely(!units))
		return -EINVAL;
	e = atomic_load_explicit(&units[(off & ms->slot_mask) >> MEM_UNIT_SHIFT], memory_order_acquire);
	if (unlikely(!e || unit_is_run(e)))
		return free_slow(ms, ptr);
	s = unit_slab_ptr(e);
	if (unlikely(slab_obj_index(s, ptr, &idx) || !slab_is_out(s, idx) ||
		     ((uintptr_t *)ptr)[1] == dfree_key(ms, ptr) || !s->cached))
		return free_slow(ms, ptr);
	if (likely(tcache_free(ms, ptr, unit_slab_cls(e))))
		return 0;
	return free_slow(ms, ptr);
}

int mem_dma_free_own(struct mem_space *ms, void *ptr)
{
	return mem_free(ms, ptr);
}

IOVM_API int iovm_dma_free(struct iovm_ctx *ctx, void *ptr)
{
	const struct mem_shared *sh;
	int ret;

	err_enter();
	if (!ptr)
		return 0;
	if (unlikely(!ctx))
		return err_inval("!ctx");
	if (unlikely(event_in_callback()))
		return err_detail(-EDEADLK, IOVM_LOG_DEBUG, "called from a memory event callback");
	sh = mem_shared_of(ctx->mem);
	if (unlikely(mem_shared_holds(sh, ptr)))
		return sh->ops->free(sh->arg, ptr);
	ret = mem_free(ctx->mem, ptr);
	if (unlikely(ret == -EINVAL))
		return err_detail(ret, IOVM_LOG_DEBUG, "%p is not a live allocation (freed already?)", ptr);
	return ret;
}

/* The usable size of a live allocation; 0 for one that was freed. */
static uint64_t usable_size(const struct dma_obj *o, const void *ptr)
{
	if (o->slab)
		return slab_is_out(o->slab, o->idx) &&
				       ((const uintptr_t *)ptr)[1] != dfree_key(o->sl->ms, ptr)
			       ? o->sl->classes[o->slab->cls].size
			       : 0;
	return run_size(o->sl, ptr);
}

IOVM_API size_t iovm_dma_size(struct iovm_ctx *ctx, const void *ptr)
{
	const struct mem_shared *sh;
	struct dma_obj o;
	uint64_t size;

	err_enter();
	if (!ctx || !ptr) {
		errno = -err_inval("!ctx || !ptr");
		return 0;
	}
	sh = mem_shared_of(ctx->mem);
	if (mem_shared_holds(sh, ptr))
		return sh->ops->size(sh->arg, ptr);
	if (obj_lookup(ctx->mem, ptr, &o) || !(size = usable_size(&o, ptr))) {
		errno = -err_detail(-EINVAL, IOVM_LOG_DEBUG, "%p is not a live allocation", ptr);
		return 0;
	}
	return size;
}

/* Whether memory of list @sl satisfies placement @pl. */
static bool placed_in(const struct mem_seglist *sl, const struct placement *pl)
{
	if (sl->slot % sl->ms->nr_node_slots != pl->node_slot)
		return false;
	for (unsigned i = 0; i < pl->nr_psz; i++)
		if (pl->psz[i] == sl->psz_idx)
			return true;
	return false;
}

/* Memory of the shared heap, moved (its blocks are powers of two: in place when it still fits). */
static void *realloc_shared(struct iovm_ctx *ctx, void *ptr, size_t size, size_t align, uint32_t flags)
{
	const struct mem_shared *sh = mem_shared_of(ctx->mem);
	size_t old = sh->ops->size(sh->arg, ptr);
	void *p;

	if (!old)
		return NULL; /* errno and detail set */
	if (event_in_callback()) {
		errno = -err_detail(-EDEADLK, IOVM_LOG_DEBUG, "called from a memory event callback");
		return NULL;
	}
	/* In place only when it is this process's: a block kept in place would still die with another. */
	if (size <= old && is_aligned((uintptr_t)ptr, MAX(align, 1)) && sh->ops->mine(sh->arg, ptr))
		return ptr;
	p = alloc_shared(ctx->mem, sh, size, align, flags & ~IOVM_DMA_ZERO);
	if (!p)
		return NULL;
	memcpy(p, ptr, MIN(old, size));
	if ((flags & IOVM_DMA_ZERO) && size > old)
		memset((uint8_t *)p + old, 0, size - old);
	/* Lent to a device in another process (EBUSY): it cannot go, so it stays, and the move is undone. */
	if (sh->ops->free(sh->arg, ptr)) {
		int err = errno = EBUSY;

		sh->ops->free(sh->arg, p);
		errno = err;
		return NULL;
	}
	return p;
}

IOVM_API void *iovm_dma_realloc(struct iovm_ctx *ctx, void *ptr, size_t size, size_t align,
				uint32_t flags)
{
	struct placement pl;
	struct mem_req req;
	struct dma_obj o;
	uint64_t old;
	void *p;
	int ret;

	err_enter();
	if (!ptr)
		return mem_dma_alloc(ctx, size, align, flags);
	if (!ctx) {
		errno = -err_inval("!ctx");
		return NULL;
	}
	ret = decode(ctx->mem, size, align, flags, &req, &pl);
	if (ret != -EINVAL && mem_shared_holds(mem_shared_of(ctx->mem), ptr))
		return realloc_shared(ctx, ptr, size, align, flags);
	if (!ret && (obj_lookup(ctx->mem, ptr, &o) || !(old = usable_size(&o, ptr))))
		ret = err_detail(-EINVAL, IOVM_LOG_DEBUG, "%p is not a live allocation", ptr);
	if (!ret && event_in_callback())
		ret = err_detail(-EDEADLK, IOVM_LOG_DEBUG, "called from a memory event callback");
	if (ret) {
		errno = -ret;
		return NULL;
	}
	/* In place: same placement, alignment kept, and contiguity not at stake when growing. */
	if (placed_in(o.sl, &pl) && is_aligned((uintptr_t)ptr, req.align)) {
		if (size <= old && (o.slab || !run_resize(o.sl, ptr, size)))
			goto in_place;
		if (!o.slab && !req.contig && !run_resize(o.sl, ptr, size))
			goto in_place;
	}
	p = mem_dma_alloc(ctx, size, align, flags & ~IOVM_DMA_ZERO);
	if (!p)
		return NULL;
	memcpy(p, ptr, MIN(old, size));
	if (req.zero && size > old)
		memset((uint8_t *)p + old, 0, size - old);
	mem_free(ctx->mem, ptr);
	return p;

in_place:
	if (req.zero && size > old)
		memset((uint8_t *)ptr + old, 0, size - old);
	return ptr;
}

IOVM_API int64_t iovm_dma_trim(struct iovm_ctx *ctx, uint32_t flags)
{
	uint64_t released = 0;

	err_enter();
	if (!ctx || (flags & ~IOVM_TRIM_ALL))
		return err_inval("!ctx || (flags & ~IOVM_TRIM_ALL)");
	if (event_in_callback())
		return -EDEADLK;
	if (mem_shared_of(ctx->mem)) {
		int ret = mem_shared_of(ctx->mem)->ops->usable(mem_shared_of(ctx->mem)->arg);

		if (ret)
			return ret;
		/* The shared heap's free parcels: and the context's own heap, for what it held before. */
		if (mem_shared_of(ctx->mem)->ops->trim)
			released += mem_shared_of(ctx->mem)->ops->trim(mem_shared_of(ctx->mem)->arg,
									 flags & IOVM_TRIM_ALL);
	}
	for (unsigned i = 0; i < MEM_MAX_LISTS; i++) {
		struct mem_seglist *sl = atomic_load_explicit(&ctx->mem->lists[i], memory_order_acquire);

		if (sl)
			released += seglist_trim(sl, flags & IOVM_TRIM_ALL);
	}
	return (int64_t)released;
}
