/* SPDX-License-Identifier: MIT */
/*
 * window.c - foreign memory on the bus: an application's own buffer (malloc,
 * mmap, a framework's pool), given a range of physical addresses so that
 * IOMMU domains can map it and devices reach it like any other memory.
 *
 * A window is a bank without an arena: its bus pointer is the application's
 * VA, and no frames, no buddy, no memfd stand behind it. Its PA keeps the
 * VA's offset within 2 MiB, so that a huge page of the process (THP or
 * hugetlb) sits at a 2 MiB-aligned PA and an IOMMU can map it with a 2 MiB
 * leaf; the rest of its first and last granules is on nobody's bus.
 *
 * The application may unmap the memory under the window at any time:
 * devices reach it under a guard (os/guard.h), and keep off it while the
 * foreign gate is closed (phys_foreign_gate()).
 *
 * A remote window is the same onto another process's memory (a device
 * process serving clients): its bus pointer is the client's VA, which no
 * one dereferences here, and devices move its bytes with pread()/pwrite()
 * of the client's memory file, which says EIO where nothing is mapped.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "base/compiler.h"
#include "base/epoch.h"
#include "base/error.h"
#include "base/fault_inject.h"
#include "base/lock.h"
#include "base/log.h"
#include "os/hugepage.h"
#include "phys/phys_internal.h"

/*
 * A rewrite of window @w's fields or bus entries, which lock-free lookups
 * outside the epoch may be reading (struct phys_bank, bus_read()): seq is
 * odd from window_write_begin() to window_write_end(). Needs
 * phys_space.lock, which keeps writers one at a time.
 */
static void window_write_begin(struct phys_bank *w)
{
	atomic_store_explicit(&w->seq, atomic_load_explicit(&w->seq, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	/* The odd count ahead of every store of the rewrite: a reader that sees one of them sees it. */
	atomic_thread_fence(memory_order_release);
}

static void window_write_end(struct phys_bank *w)
{
	/* Behind every store of the rewrite: a reader that sees the even count sees them all. */
	atomic_store_explicit(&w->seq, atomic_load_explicit(&w->seq, memory_order_relaxed) + 1,
			      memory_order_release);
}

/* Needs phys_space.lock. */
static int window_publish(struct phys_space *ps, struct phys_bank *w)
{
	uint64_t first = pa_val(w->pa) >> BUS_SHIFT, n = w->len >> BUS_SHIFT;

	lock_assert_held(&ps->lock);
	for (uint64_t g = 0; g < n; g++) {
		struct bus_entry *e = radix_lookup_alloc(&ps->bus, first + g);

		if (!e)
			return -ENOMEM;
		if (atomic_load_explicit(&e->bank, memory_order_relaxed))
			return err_detail(-EEXIST, IOVM_LOG_ERR, "window PA %#" PRIx64 " is already on the bus",
					  (first + g) << BUS_SHIFT);
	}
	for (uint64_t g = 0; g < n; g++) {
		struct bus_entry *e = radix_lookup(&ps->bus, first + g);

		/* Release: see struct bus_entry. */
		atomic_store_explicit(&e->off, g << BUS_SHIFT, memory_order_release);
		atomic_store_explicit(&e->bank, w, memory_order_release);
	}
	return 0;
}

/*
 * Needs phys_space.lock. A write section: a lookup that found the window
 * before its entries went, and then reads an offset the granule's next
 * owner stored, sees the window's seq move and looks again.
 */
static void window_unpublish(struct phys_space *ps, struct phys_bank *w)
{
	uint64_t first = pa_val(w->pa) >> BUS_SHIFT, n = w->len >> BUS_SHIFT;

	lock_assert_held(&ps->lock);
	window_write_begin(w);
	/* Before the entries go: an IOTLB filled after the bump finds them gone. */
	atomic_fetch_add_explicit(&ps->bus_gen, 1, memory_order_seq_cst);
	for (uint64_t g = 0; g < n; g++) {
		struct bus_entry *e = radix_lookup(&ps->bus, first + g);

		if (e && atomic_load_explicit(&e->bank, memory_order_relaxed) == w)
			atomic_store_explicit(&e->bank, NULL, memory_order_release);
	}
	window_write_end(w);
}

/*
 * A window struct: a spare one (removed windows are kept, never freed), or
 * a new one. Needs phys_space.lock. What every window has (foreign, no
 * arena, no host PAs) is set here once, before anyone can find the struct:
 * a rewrite that stored it again would race with lookups for nothing.
 */
static struct phys_bank *window_take(struct phys_space *ps)
{
	struct phys_bank *w;

	lock_assert_held(&ps->lock);
	if (list_empty(&ps->spare_windows)) {
		w = fi_calloc(1, sizeof(*w));
		if (w)
			w->foreign = true; /* no arena, no frames: the bus treats shared windows as windows too */
		return w;
	}
	w = list_entry(ps->spare_windows.next, struct phys_bank, wlink);
	list_del(&w->wlink);
	return w;
}

/*
 * A window onto [v, v+len) of this process (@remote_fd -1) or of the
 * process whose memory file it is; at *@pa when @fixed (its granules
 * outside the emulated range), else where the emulated range has room.
 */
static int window_add(struct phys_space *ps, uint64_t v, uint64_t len, int remote_fd, bool fixed, bool private,
		      pa_t *pa)
{
	uint64_t head = v & (BUS_GRANULE - 1), span, base;
	struct range_req q = { .align = BUS_GRANULE, .hi = UINT64_C(1) << PHYS_PA_BITS };
	struct phys_bank *w;
	int ret;

	span = align_up(head + len, BUS_GRANULE);
	q.len = span;
	mutex_lock(&ps->lock);
	w = window_take(ps);
	ret = -ENOMEM;
	if (!w)
		goto unlock;
	if (fixed)
		base = pa_val(*pa) - head;
	else
		ret = ra_alloc(private ? &ps->emu_private : &ps->emu_windows, &q, &base)
			      ? err_detail(-ENOMEM, IOVM_LOG_ERR, "the windows' physical address space is full")
			      : 0;
	if (!fixed && ret)
		goto spare;
	window_write_begin(w);
	w->fixed_pa = fixed;
	w->private = private;
	atomic_store_explicit(&w->shared, false, memory_order_relaxed);
	atomic_store_explicit(&w->remote, remote_fd >= 0, memory_order_relaxed);
	w->remote_fd = remote_fd;
	w->remote_gate = NULL;
	w->released = false;
	atomic_store_explicit(&w->bus, (uint8_t *)(uintptr_t)(v - head), memory_order_relaxed);
	w->pa = pa_make(base);
	w->len = span;
	atomic_store_explicit(&w->lo, head, memory_order_relaxed);
	atomic_store_explicit(&w->hi, head + len, memory_order_relaxed);
	w->npages = len / os_page_size();
	window_write_end(w);
	ret = window_publish(ps, w);
	if (ret)
		goto free_pa;
	list_add_tail(&ps->windows, &w->wlink);
	/* Counted: memory a device reaches under a guard. Another process's is reached by system calls. */
	if (!atomic_load_explicit(&w->remote, memory_order_relaxed))
		atomic_fetch_add_explicit(&ps->nr_windows, 1, memory_order_relaxed);
	mutex_unlock(&ps->lock);
	*pa = pa_make(base + head);
	return 0;

free_pa:
	window_unpublish(ps, w);
	if (!fixed)
		ra_free(private ? &ps->emu_private : &ps->emu_windows, base, span);
spare:
	window_write_begin(w);
	atomic_store_explicit(&w->remote, false, memory_order_relaxed);
	w->fixed_pa = false;
	window_write_end(w);
	list_add(&ps->spare_windows, &w->wlink);
unlock:
	mutex_unlock(&ps->lock);
	return ret;
}

int phys_window_add(struct phys_space *ps, void *va, uint64_t len, unsigned flags, pa_t *pa)
{
	uintptr_t v = (uintptr_t)va;

	if (!ps || !va || !len || !pa || !is_aligned(v | len, os_page_size()) || v + len < v ||
	    (flags & ~PHYS_WINDOW_PRIVATE))
		return -EINVAL;
	return window_add(ps, v, len, -1, false, flags & PHYS_WINDOW_PRIVATE, pa);
}

int phys_window_add_at(struct phys_space *ps, void *va, uint64_t len, pa_t pa)
{
	uintptr_t v = (uintptr_t)va;
	uint64_t head = v & (BUS_GRANULE - 1), start = pa_val(pa) - head;

	if (!ps || !va || !len || !is_aligned(v | len, os_page_size()) || v + len < v ||
	    (pa_val(pa) & (BUS_GRANULE - 1)) != head || pa_val(pa) < PHYS_SHARED_REG_BASE ||
	    len > PHYS_SHARED_REG_SIZE || start + align_up(head + len, BUS_GRANULE) >
						 PHYS_SHARED_REG_BASE + PHYS_SHARED_REG_SIZE)
		return -EINVAL;
	return window_add(ps, v, len, -1, true, true, &pa);
}

int phys_window_add_remote(struct phys_space *ps, int mem_fd, uint64_t rva, uint64_t len, pa_t *pa)
{
	/* Any user address of a 64-bit process; the kernel says at each access whether it is mapped. */
	if (!ps || mem_fd < 0 || !rva || !len || !pa || !is_aligned(rva | len, os_page_size()) || rva + len < rva ||
	    rva + len > UINT64_C(1) << 57)
		return -EINVAL;
	return window_add(ps, rva, len, mem_fd, false, false, pa);
}

int phys_window_add_shared(struct phys_space *ps, void *va, uint64_t len, uint64_t page_size, pa_t pa)
{
	uintptr_t v = (uintptr_t)va;
	struct phys_bank *w;
	int ret;

	if (!ps || !va || !len || !is_aligned(v | len | pa_val(pa), BUS_GRANULE) || v + len < v ||
	    pa_val(pa) + len > UINT64_C(1) << PHYS_PA_BITS || !page_size)
		return -EINVAL;
	mutex_lock(&ps->lock);
	w = window_take(ps);
	ret = -ENOMEM;
	if (!w)
		goto unlock;
	ret = ra_reserve(&ps->emu, pa_val(pa), len);
	/* Out of memory for the allocator's nodes is that, not PAs taken. */
	if (ret && ret != -ENOMEM)
		ret = err_detail(-EBUSY, IOVM_LOG_ERR, "PAs %#" PRIx64 "..%#" PRIx64 " of a share are taken",
				 pa_val(pa), pa_val(pa) + len);
	if (ret)
		goto spare;
	window_write_begin(w);
	w->fixed_pa = false;
	w->private = false;
	atomic_store_explicit(&w->shared, true, memory_order_relaxed);
	atomic_store_explicit(&w->remote, false, memory_order_relaxed);
	atomic_store_explicit(&w->shared_page_size, page_size, memory_order_relaxed);
	w->released = false;
	atomic_store_explicit(&w->bus, (uint8_t *)va, memory_order_relaxed);
	w->pa = pa;
	w->len = len;
	atomic_store_explicit(&w->lo, 0, memory_order_relaxed);
	atomic_store_explicit(&w->hi, len, memory_order_relaxed);
	w->npages = len / page_size;
	window_write_end(w);
	ret = window_publish(ps, w);
	if (ret)
		goto free_pa;
	list_add_tail(&ps->windows, &w->wlink);
	mutex_unlock(&ps->lock);
	return 0;

free_pa:
	window_unpublish(ps, w);
	ra_free(&ps->emu, pa_val(pa), len);
spare:
	list_add(&ps->spare_windows, &w->wlink);
unlock:
	mutex_unlock(&ps->lock);
	return ret;
}

int phys_window_remove(struct phys_space *ps, pa_t pa)
{
	struct bus_entry *e;
	struct phys_bank *w;
	bool shared;

	if (!ps || !pa_valid(pa))
		return -EINVAL;
	mutex_lock(&ps->lock);
	e = radix_lookup(&ps->bus, pa_val(pa) >> BUS_SHIFT);
	w = e ? atomic_load_explicit(&e->bank, memory_order_relaxed) : NULL;
	if (!w || !w->foreign || !pa_eq(pa, pa_add(w->pa, atomic_load_explicit(&w->lo, memory_order_relaxed)))) {
		mutex_unlock(&ps->lock);
		return -ENOENT;
	}
	window_unpublish(ps, w);
	list_del(&w->wlink);
	shared = atomic_load_explicit(&w->shared, memory_order_relaxed);
	if (!shared && !atomic_load_explicit(&w->remote, memory_order_relaxed))
		atomic_fetch_sub_explicit(&ps->nr_windows, 1, memory_order_relaxed);
	mutex_unlock(&ps->lock);
	/* A device may be inside an access through the window: let it finish. */
	if (ps->params.epoch)
		epoch_synchronize(ps->params.epoch);
	mutex_lock(&ps->lock);
	/* A shared window's PAs are the banks' (its owner's); the others', one of the windows' ranges. */
	if (!w->fixed_pa)
		ra_free(shared ? &ps->emu : w->private ? &ps->emu_private : &ps->emu_windows, pa_val(w->pa), w->len);
	window_write_begin(w);
	w->fixed_pa = false;
	/* Nobody reads through the window any more: the caller may close its file. */
	atomic_store_explicit(&w->remote, false, memory_order_relaxed);
	w->released = true;
	window_write_end(w);
	list_add(&ps->spare_windows, &w->wlink);
	mutex_unlock(&ps->lock);
	return 0;
}

bool phys_has_windows(const struct phys_space *ps)
{
	return atomic_load_explicit(&ps->nr_windows, memory_order_relaxed) != 0;
}

_Atomic uint32_t *phys_foreign_gate(struct phys_space *ps)
{
	return &ps->foreign_gate;
}

void window_destroy_all(struct phys_space *ps)
{
	struct list_node *lists[] = { &ps->windows, &ps->spare_windows };

	for (unsigned i = 0; i < 2; i++) {
		while (!list_empty(lists[i])) {
			struct phys_bank *w = list_entry(lists[i]->next, struct phys_bank, wlink);

			list_del(&w->wlink);
			free(w);
		}
	}
}
