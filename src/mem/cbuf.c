/* SPDX-License-Identifier: MIT */
/*
 * cbuf.c - common buffers: descriptor rings and the like, assembled from
 * page-sized pieces of physically scattered memory into one virtually
 * contiguous mapping, with the device address of every page (the "allocate
 * 4 KiB common buffers, then map them as one region" scheme of the DMA-model
 * discussion); and coherency as an attribute of such a buffer.
 *
 * A coherent buffer's mapping is its memory: the CPU and devices see the
 * same bytes. A non-coherent one models a CPU with a write-back cache that
 * devices do not snoop: the CPU works on its own copy (the cache), devices
 * on the memory. iovm_dma_sync_for_device() writes the CPU's copy back to
 * memory, iovm_dma_sync_for_cpu() refills it from memory, as cache clean
 * and invalidate do on such machines (Arm without I/O coherency, say).
 * Each 64-byte line has an owner, as Linux's DMA-API debugging tracks:
 * after a sync for the device the device owns it, after a sync for the CPU
 * the CPU does. The oracle (option oracle=on) checks every device access
 * to such a line: that the device owns it, and that the CPU did not write
 * its copy since the sync (its copy differs from memory where the device
 * has not written). A sync for the device over lines the device wrote and
 * the CPU never synced back is an error too: a write-back over DMA'd data.
 *
 * In host-PA mode the pieces are 4 KiB pieces of hugepages, at their host
 * PA: a 4 KiB page has no fixed one (ctx.h). They are one allocation of
 * the context's own heap, from hugepages only; a coherent buffer maps
 * the hugepages that hold it again, elsewhere, so that what the
 * application holds is the buffer's and never a heap pointer
 * iovm_dma_free() would take. Without a free hugepage, host_pa=on fails
 * and host_pa=auto takes emulated 4 KiB frames, as without host PAs.
 *
 * Locking: mem_space.cbuf_lock for the list of buffers and the page
 * registry's writes; the registry is read without it (radix); line states
 * are atomics, written by syncs (the buffer's owner serializes them) and
 * by devices (the device-wrote bit).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <iovm/mem.h>

#include "base/check.h"
#include "base/ctx.h"
#include "base/error.h"
#include "base/fault_inject.h"
#include "base/lock.h"
#include "base/log.h"
#include "mem/mem.h"
#include "mem/mem_internal.h"
#include "os/vaspace.h"
#include "phys/phys.h"

#define CBUF_FLAGS IOVM_CBUF_NONCOHERENT
#define LINE_SHIFT 6
#define LINE_SIZE (1u << LINE_SHIFT)
#define LINES_PER_PAGE (SZ_4K >> LINE_SHIFT)
/* Line states: who owns it, and whether the device wrote it since the CPU last synced it. */
#define LINE_DEVICE 1u
#define LINE_DEV_WROTE 2u

/* Most pages one buffer may have: 256 MiB of rings is already far more than any device takes. */
#define CBUF_MAX_PAGES 65536

struct iovm_cbuf {
	struct mem_space *ms;
	struct list_node link;   /* in mem_space.cbufs, under cbuf_lock */
	uint32_t flags;
	size_t size;
	unsigned nr_pages;
	pa_t *pages;
	uint8_t *va;             /* what the CPU sees: the frames, or its cache of them */
	uint8_t **mem;           /* the bus's pointer to each page: what devices see */
	_Atomic uint8_t *lines;  /* non-coherent: the state of each line */
	struct phys_arena *arena; /* the 4 KiB frames' arena; NULL for heap memory */
	uint8_t *heap;           /* host-PA mode: the heap memory that makes the buffer, or NULL */
	uint8_t *mirror;         /* coherent, of heap memory: the second mapping of its hugepages */
	size_t mirror_len;
};

/* A non-coherent page, by frame number, in mem_space.nc_pages. */
struct nc_page {
	struct iovm_cbuf *cb; /* NULL: none */
	uint64_t index;
};

int cbuf_space_init(struct mem_space *ms)
{
	/* 36 bits of frame number: the second level resolves 16, the first 20 (8 MiB, untouched but for its use). */
	int ret = radix_init(&ms->nc_pages, PHYS_PA_BITS - 12, 16, sizeof(struct nc_page));

	if (ret)
		return ret;
	mutex_init(&ms->cbuf_lock);
	list_init(&ms->cbufs);
	return 0;
}

static void cbuf_release(struct iovm_cbuf *cb);

void cbuf_space_destroy(struct mem_space *ms)
{
	while (!list_empty(&ms->cbufs)) {
		struct iovm_cbuf *cb = list_first(&ms->cbufs, struct iovm_cbuf, link);

		list_del(&cb->link);
		cbuf_release(cb);
	}
	radix_destroy(&ms->nc_pages);
	mutex_destroy(&ms->cbuf_lock);
}

/* Give back what a buffer holds (it is off the list and out of the registry). */
static void cbuf_release(struct iovm_cbuf *cb)
{
	if (cb->mirror)
		os_va_release(cb->mirror, cb->mirror_len);
	else if (cb->va && (cb->flags & IOVM_CBUF_NONCOHERENT))
		munmap(cb->va, cb->size);
	else if (cb->va)
		os_va_release(cb->va, cb->size);
	/* After the mirror: the hugepages it mapped may go back with the memory. */
	if (cb->heap)
		mem_dma_free_own(cb->ms, cb->heap);
	/* No arena yet: the pages were never set (an allocation before it failed). */
	for (unsigned i = 0; cb->arena && i < cb->nr_pages; i++)
		if (pa_valid(cb->pages[i]))
			phys_free(cb->arena, cb->pages[i], 1, false);
	free((void *)cb->lines);
	free(cb->mem);
	free(cb->pages);
	free(cb);
}

/* Register (or, with @cb NULL, forget) the buffer's pages as non-coherent. Needs cbuf_lock. */
static int nc_register(struct mem_space *ms, struct iovm_cbuf *owner, struct iovm_cbuf *cb)
{
	lock_assert_held(&ms->cbuf_lock);
	for (unsigned i = 0; i < owner->nr_pages; i++) {
		struct nc_page *p = radix_lookup_alloc(&ms->nc_pages, pa_val(owner->pages[i]) >> 12);

		if (!p)
			return -ENOMEM;
		p->index = i;
		__atomic_store_n(&p->cb, cb, __ATOMIC_RELEASE);
	}
	return 0;
}

/*
 * The bus's pointer to @pa, a page the buffer holds: a frame of one of the
 * context's banks, allocated to the buffer (by the arena or the heap). The
 * lookup runs outside the devices' epoch, but no window removal can meet
 * it: a bank's struct is never reused for anything, and a bank is released
 * only with every frame free (bank_release()), so neither the entry nor
 * the bank changes while the buffer holds the frame. Debug builds check
 * that @pa is a bank's (phys_backing() refuses windows).
 */
static uint8_t *page_ptr(struct mem_space *ms, pa_t pa)
{
	struct phys_backing own;

	IOVM_ASSERT(!phys_backing(ms->phys, pa, &own));
	return phys_bus_ptr(ms->phys, pa);
}

/* The pages as 4 KiB frames of the 4 KiB arena, one by one: emulated PAs. */
static int pages_from_frames(struct mem_space *ms, struct iovm_cbuf *cb)
{
	int ret = phys_arena_get(ms->phys, SZ_4K, ms->ctx->cfg.numa_node, &cb->arena);

	if (ret)
		return ret;
	/* Page by page: the pieces need not be contiguous, and after churn they are not. */
	for (unsigned i = 0; i < cb->nr_pages; i++) {
		struct phys_req req = { .nframes = 1, .align = 1 };
		bool zero;

		ret = phys_alloc_contig(cb->arena, &req, &cb->pages[i], &zero);
		if (ret)
			return ret;
		cb->mem[i] = page_ptr(ms, cb->pages[i]);
		IOVM_ASSERT(cb->mem[i]); /* an allocated frame is on the bus */
		if (!zero)
			memset(cb->mem[i], 0, SZ_4K);
	}
	return 0;
}

/* Host-PA mode: the pages as 4 KiB pieces of the heap's hugepages, zeroed; -ENOMEM when none is free. */
static int pages_from_heap(struct mem_space *ms, struct iovm_cbuf *cb)
{
	cb->heap = mem_dma_alloc_huge(ms, cb->size, SZ_4K, true);
	if (!cb->heap)
		return -ENOMEM;
	for (unsigned i = 0; i < cb->nr_pages; i++) {
		iovm_pa_t pa;
		int ret = iovm_dma_pa(ms->ctx, cb->heap + ((size_t)i << 12), &pa);

		if (ret)
			return ret;
		cb->pages[i] = pa_make(pa.addr);
		cb->mem[i] = page_ptr(ms, cb->pages[i]);
		if (!cb->mem[i])
			return -ENOENT;
	}
	return 0;
}

/*
 * The CPU's view of a coherent buffer of heap memory: the hugepages that
 * hold it, mapped again in a reservation of their own (a hugepage is
 * mapped whole or not at all).
 */
static int map_mirror(struct mem_space *ms, struct iovm_cbuf *cb)
{
	struct iovm_dma_xlate x;
	uint8_t *first, *end;
	int ret = iovm_dma_xlate(ms->ctx, cb->heap, &x);

	if (ret)
		return ret;
	first = (uint8_t *)align_down((uintptr_t)cb->heap, x.page_size);
	end = (uint8_t *)align_up((uintptr_t)cb->heap + cb->size, x.page_size);
	cb->mirror = os_va_reserve((size_t)(end - first), x.page_size);
	if (!cb->mirror)
		return -ENOMEM;
	cb->mirror_len = (size_t)(end - first);
	for (size_t off = 0; off < cb->mirror_len; off += x.page_size) {
		iovm_pa_t pa;

		ret = iovm_dma_pa(ms->ctx, first + off, &pa);
		if (!ret)
			ret = phys_map(ms->phys, pa_make(pa.addr), x.page_size, cb->mirror + off, true);
		if (ret)
			return ret;
	}
	cb->va = cb->mirror + (cb->heap - first);
	return 0;
}

IOVM_API int iovm_cbuf_alloc(struct iovm_ctx *ctx, size_t size, uint32_t flags, struct iovm_cbuf **out)
{
	struct mem_space *ms;
	struct iovm_cbuf *cb;
	int ret;

	err_enter();
	if (!ctx || !out || !size || (flags & ~CBUF_FLAGS) || size > (size_t)CBUF_MAX_PAGES << 12)
		return err_inval("!ctx || !out || !size || (flags & ~CBUF_FLAGS) || size > (size_t)CBUF_MAX_PAGES << 12");
	ms = ctx->mem;
	cb = fi_calloc(1, sizeof(*cb));
	if (!cb)
		return -ENOMEM;
	cb->ms = ms;
	cb->flags = flags;
	cb->size = align_up(size, SZ_4K);
	cb->nr_pages = (unsigned)(cb->size >> 12);
	cb->pages = fi_malloc(cb->nr_pages * sizeof(*cb->pages));
	cb->mem = fi_calloc(cb->nr_pages, sizeof(*cb->mem));
	ret = -ENOMEM;
	if (!cb->pages || !cb->mem)
		goto release;
	for (unsigned i = 0; i < cb->nr_pages; i++)
		cb->pages[i] = PA_INVALID;
	ret = -ENOMEM;
	if (ctx->host_pa) {
		ret = pages_from_heap(ms, cb);
		if (ret && cb->heap) {
			mem_dma_free_own(ms, cb->heap);
			cb->heap = NULL;
			for (unsigned i = 0; i < cb->nr_pages; i++)
				cb->pages[i] = PA_INVALID;
		}
		if (ret && ctx->host_pa_only) {
			ret = err_detail(ret, IOVM_LOG_DEBUG,
					 "host_pa=on: no free hugepage for a common buffer of %zu bytes", size);
			goto release;
		}
	}
	/* Without host PAs, or none to be had with host_pa=auto: emulated 4 KiB frames. */
	if (ret) {
		ret = pages_from_frames(ms, cb);
		if (ret)
			goto release;
	}
	ret = -ENOMEM; /* what each failure below says */
	if (flags & IOVM_CBUF_NONCOHERENT) {
		/* The CPU's cache: its own memory, in step with the frames (zeroes) to begin with. */
		cb->va = fi_mmap(NULL, cb->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (cb->va == MAP_FAILED) {
			cb->va = NULL;
			goto release;
		}
		cb->lines = fi_malloc((size_t)cb->nr_pages * LINES_PER_PAGE);
		if (!cb->lines)
			goto release;
		/* As Linux's dma_alloc_noncoherent(): the device owns it until the CPU syncs. */
		for (size_t l = 0; l < (size_t)cb->nr_pages * LINES_PER_PAGE; l++)
			atomic_init(&cb->lines[l], LINE_DEVICE);
	} else if (cb->heap) {
		ret = map_mirror(ms, cb);
		if (ret)
			goto release;
	} else {
		cb->va = os_va_reserve(cb->size, SZ_4K);
		if (!cb->va)
			goto release;
		for (unsigned i = 0; i < cb->nr_pages; i++) {
			ret = phys_map(ms->phys, cb->pages[i], SZ_4K, cb->va + ((size_t)i << 12), false);
			if (ret)
				goto release;
		}
	}
	mutex_lock(&ms->cbuf_lock);
	ret = flags & IOVM_CBUF_NONCOHERENT ? nc_register(ms, cb, cb) : 0;
	if (!ret)
		list_add_tail(&ms->cbufs, &cb->link);
	else
		nc_register(ms, cb, NULL);
	mutex_unlock(&ms->cbuf_lock);
	if (ret)
		goto release;
	*out = cb;
	return 0;

release:
	cbuf_release(cb);
	return ret;
}

IOVM_API int iovm_cbuf_free(struct iovm_cbuf *cb)
{
	struct mem_space *ms;

	err_enter();
	if (!cb)
		return err_inval("!cb");
	ms = cb->ms;
	mutex_lock(&ms->cbuf_lock);
	list_del(&cb->link);
	if (cb->flags & IOVM_CBUF_NONCOHERENT)
		nc_register(ms, cb, NULL); /* cannot fail: the pages' tables exist */
	mutex_unlock(&ms->cbuf_lock);
	cbuf_release(cb);
	return 0;
}

IOVM_API void *iovm_cbuf_ptr(const struct iovm_cbuf *cb)
{
	err_enter();
	if (!cb) {
		errno = -err_inval("!cb");
		return NULL;
	}
	return cb->va;
}

IOVM_API int iovm_cbuf_pages(const struct iovm_cbuf *cb, iovm_pa_t *pages, unsigned max, unsigned *n)
{
	err_enter();
	if (!cb || !n || (max && !pages))
		return err_inval("!cb || !n || (max && !pages)");
	for (unsigned i = 0; i < cb->nr_pages && i < max; i++)
		pages[i] = cb->pages[i];
	*n = cb->nr_pages;
	return 0;
}

/* The buffer holding [ptr, ptr+len), or NULL. Takes cbuf_lock. */
static struct iovm_cbuf *cbuf_find(struct mem_space *ms, const void *ptr, size_t len)
{
	struct iovm_cbuf *found = NULL;
	struct list_node *n;

	mutex_lock(&ms->cbuf_lock);
	list_for_each(n, &ms->cbufs) {
		struct iovm_cbuf *cb = list_entry(n, struct iovm_cbuf, link);

		if ((const uint8_t *)ptr >= cb->va && (const uint8_t *)ptr < cb->va + cb->size) {
			if ((size_t)((const uint8_t *)ptr - cb->va) + len <= cb->size)
				found = cb;
			break;
		}
	}
	mutex_unlock(&ms->cbuf_lock);
	return found;
}

static void sync_error(struct mem_space *ms, const char *what, const struct iovm_cbuf *cb, size_t off)
{
	atomic_fetch_add_explicit(&ms->sync_errors, 1, memory_order_relaxed);
	log_err("oracle: %s (non-coherent buffer %p, offset %#zx, PA %#lx)", what, (void *)cb->va, off,
		  (unsigned long)(pa_val(cb->pages[off >> 12]) + (off & (SZ_4K - 1))));
}

/*
 * The lines of [ptr, ptr+len), written back to memory (@for_device) or
 * refilled from it; -ENOENT when @ptr is no iovm memory, 0 for coherent memory.
 */
static int cbuf_sync(struct iovm_ctx *ctx, const void *ptr, size_t len, bool for_device)
{
	struct iovm_cbuf *cb;
	struct iovm_dma_xlate x;
	size_t first, last;

	err_clear();
	if (!ctx || !ptr || !len || (uintptr_t)ptr + len < (uintptr_t)ptr)
		return err_inval("!ctx || !ptr || !len || (uintptr_t)ptr + len < (uintptr_t)ptr");
	/* The DMA heap is coherent: nothing to do, as on x86, and found without a lock. */
	if (!iovm_dma_xlate(ctx, ptr, &x))
		return 0;
	cb = cbuf_find(ctx->mem, ptr, len);
	if (!cb)
		return -ENOENT;
	if (!(cb->flags & IOVM_CBUF_NONCOHERENT))
		return 0;
	/* Whole lines: a cache works in them, so a sync covers every line it touches. */
	first = ((size_t)((const uint8_t *)ptr - cb->va)) >> LINE_SHIFT;
	last = ((size_t)((const uint8_t *)ptr - cb->va) + len - 1) >> LINE_SHIFT;
	for (size_t l = first; l <= last; l++) {
		size_t off = l << LINE_SHIFT;
		uint8_t *mem = cb->mem[off >> 12] + (off & (SZ_4K - 1));
		uint8_t st = atomic_load_explicit(&cb->lines[l], memory_order_acquire);

		if (for_device) {
			if ((st & (LINE_DEVICE | LINE_DEV_WROTE)) == (LINE_DEVICE | LINE_DEV_WROTE))
				sync_error(ctx->mem, "sync for the device writes back over what the device wrote, "
						     "never synced for the CPU (iovm_dma_sync_for_cpu missing)", cb, off);
			memcpy(mem, cb->va + off, LINE_SIZE);
			atomic_store_explicit(&cb->lines[l], LINE_DEVICE, memory_order_release);
		} else {
			memcpy(cb->va + off, mem, LINE_SIZE);
			atomic_store_explicit(&cb->lines[l], 0, memory_order_release);
		}
	}
	return 0;
}

IOVM_API int iovm_dma_sync_for_device(struct iovm_ctx *ctx, const void *ptr, size_t len)
{
	err_enter();
	return cbuf_sync(ctx, ptr, len, true);
}

IOVM_API int iovm_dma_sync_for_cpu(struct iovm_ctx *ctx, const void *ptr, size_t len)
{
	err_enter();
	return cbuf_sync(ctx, ptr, len, false);
}

void mem_nc_device_access(struct mem_space *ms, pa_t start, uint64_t len, bool write)
{
	uint64_t pa = pa_val(start);

	for (uint64_t at = pa; at < pa + len;) {
		const struct nc_page *p = radix_lookup(&ms->nc_pages, at >> 12);
		uint64_t page_end = align_down(at, SZ_4K) + SZ_4K;
		struct iovm_cbuf *cb = p ? __atomic_load_n(&p->cb, __ATOMIC_ACQUIRE) : NULL;

		if (cb) {
			size_t base = (size_t)p->index << 12;

			for (uint64_t l = (at & (SZ_4K - 1)) >> LINE_SHIFT;
			     l <= ((MIN(pa + len, page_end) - 1) & (SZ_4K - 1)) >> LINE_SHIFT; l++) {
				size_t off = base + (l << LINE_SHIFT);
				uint8_t st = atomic_load_explicit(&cb->lines[off >> LINE_SHIFT], memory_order_acquire);

				if (!(st & LINE_DEVICE))
					sync_error(ms, "device access to a line the CPU owns (iovm_dma_sync_for_device "
						       "missing)", cb, off);
				else if (!(st & LINE_DEV_WROTE) &&
					 memcmp(cb->va + off, cb->mem[off >> 12] + (off & (SZ_4K - 1)), LINE_SIZE))
					sync_error(ms, "device access to a line the CPU wrote after its last sync "
						       "(iovm_dma_sync_for_device missing)", cb, off);
				if (write)
					atomic_fetch_or_explicit(&cb->lines[off >> LINE_SHIFT], LINE_DEV_WROTE,
								 memory_order_relaxed);
			}
		}
		at = page_end;
	}
}
