/* SPDX-License-Identifier: MIT */
/*
 * bus.c - from a physical address to the memory behind it, without a lock.
 *
 * The bus table resolves 2 MiB granules of PA to (bank, offset in bank); a
 * bank's bus mapping then gives the pointer, and its memfd the offset to map
 * elsewhere. A granule's entry is published after its offset (release) and
 * read bank first (acquire), so a reader never sees a half-written entry.
 *
 * Two kinds of readers. The devices look up inside the epoch
 * (bus_lookup()): a bank or window they find is not released or reused
 * before they leave it, so they read its fields as they are. Everyone
 * else (the map calls, a domain's translate and its mirror, guest banks,
 * the pin path, a queue's rings) may find a window that is being removed
 * and its struct rewritten as another meanwhile (window.c): they read
 * through bus_read(), which checks the window's seq and looks again
 * rather than answer with a mix of two windows.
 */
#include <errno.h>
#include <sched.h>

#include "base/compiler.h"
#include "os/hugepage.h"
#include "os/vaspace.h"
#include "phys/phys_internal.h"

/*
 * The bank or window at @pa, and @pa's offset in it, for the devices
 * (inside the epoch) and for callers that hold what they look up (a bank
 * of theirs, a window their registration keeps). The relaxed loads cost
 * what plain ones do: nothing rewrites the fields under such a reader.
 */
static struct phys_bank *bus_lookup(struct phys_space *ps, pa_t pa, uint64_t *bank_off)
{
	struct bus_entry *e = radix_lookup(&ps->bus, pa_val(pa) >> BUS_SHIFT);
	struct phys_bank *b;

	if (!e)
		return NULL;
	b = atomic_load_explicit(&e->bank, memory_order_acquire);
	if (!b)
		return NULL;
	*bank_off = atomic_load_explicit(&e->off, memory_order_relaxed) + (pa_val(pa) & (BUS_GRANULE - 1));
	if (unlikely(b->foreign) && (*bank_off < atomic_load_explicit(&b->lo, memory_order_relaxed) ||
				     *bank_off >= atomic_load_explicit(&b->hi, memory_order_relaxed)))
		return NULL;
	return b;
}

/* What bus_read() found at a PA: one bank's or window's fields, never a mix of two. */
struct bus_view {
	struct phys_arena *arena; /* NULL: a window */
	bool foreign;
	bool shared;
	bool remote;
	uint64_t shared_page_size;
	uint8_t *ptr; /* the bus's pointer to the PA (a remote window's: the other process's VA) */
};

/*
 * The bank or window at @pa, copied into @v, for a caller outside the
 * devices' epoch: false when none is there. A seqcount read (struct
 * phys_bank): the window's seq, even, then the entry still pointing at
 * it (so that seq is the count of the window published here, not of one
 * the struct was before), then its fields, then seq unchanged. A bank's
 * fields read here never change, nor its seq; its granule's offset does
 * when the bank goes and another takes the granule, which the entry's
 * second look catches.
 */
static bool bus_read(struct phys_space *ps, pa_t pa, struct bus_view *v)
{
	struct bus_entry *e = radix_lookup(&ps->bus, pa_val(pa) >> BUS_SHIFT);

	if (!e)
		return false;
	for (unsigned tries = 0;; tries++) {
		struct phys_bank *b = atomic_load_explicit(&e->bank, memory_order_acquire);
		uint64_t off;
		uint32_t seq;
		bool in;

		if (!b)
			return false;
		/* A writer holds phys_space.lock for a few stores: spin, then let it run. */
		if (tries > 64)
			sched_yield();
		seq = atomic_load_explicit(&b->seq, memory_order_acquire);
		if ((seq & 1) || atomic_load_explicit(&e->bank, memory_order_acquire) != b)
			continue;
		/*
		 * Acquire: an offset the granule's next owner stored comes with
		 * this window's seq bump, or with the NULL entry this bank's
		 * release left (bus_unpublish() stores it before anyone
		 * publishes the granule again).
		 */
		off = atomic_load_explicit(&e->off, memory_order_acquire) + (pa_val(pa) & (BUS_GRANULE - 1));
		/* Set when the struct was made: a bank stays a bank, a window a window. */
		v->arena = b->arena;
		v->foreign = b->foreign;
		if (!b->foreign) {
			/* The bank still here after the offset: the offset is its own. */
			if (atomic_load_explicit(&e->bank, memory_order_acquire) != b)
				continue;
			v->shared = v->remote = false;
			v->ptr = atomic_load_explicit(&b->bus, memory_order_relaxed) + off;
			return true;
		}
		in = off >= atomic_load_explicit(&b->lo, memory_order_relaxed) &&
		     off < atomic_load_explicit(&b->hi, memory_order_relaxed);
		v->shared = atomic_load_explicit(&b->shared, memory_order_relaxed);
		v->remote = atomic_load_explicit(&b->remote, memory_order_relaxed);
		v->shared_page_size = atomic_load_explicit(&b->shared_page_size, memory_order_relaxed);
		v->ptr = atomic_load_explicit(&b->bus, memory_order_relaxed) + off;
		/* The field loads ahead of the second look at seq: a rewrite they saw any of shows in it. */
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&b->seq, memory_order_relaxed) == seq)
			return in;
	}
}

/* How the CPU reaches what bus_lookup() or bus_read() found (enum phys_reach). */
static uint8_t reach_of(bool foreign, bool shared, bool remote)
{
	if (remote)
		return PHYS_REACH_REMOTE;
	return foreign && !shared ? PHYS_REACH_FOREIGN : PHYS_REACH_OWN;
}

bool bus_shared(struct phys_space *ps, pa_t pa)
{
	struct bus_view v;

	return bus_read(ps, pa, &v) && v.shared;
}

struct phys_frame *bus_frame(struct phys_space *ps, pa_t pa, struct phys_arena **a)
{
	uint64_t off;
	struct phys_bank *b = bus_lookup(ps, pa, &off);

	if (!b || b->foreign)
		return NULL;
	*a = b->arena;
	return frame_at(b->arena, pa_val(pa) >> b->arena->shift);
}

const _Atomic uint32_t *phys_bus_gen(const struct phys_space *ps)
{
	return &ps->bus_gen;
}

void *phys_bus_ptr(struct phys_space *ps, pa_t pa)
{
	struct bus_view v;

	/* Outside the epoch (the mirror's map calls, common buffers): the window may be going. */
	return bus_read(ps, pa, &v) && !v.remote ? v.ptr : NULL;
}

void *phys_bus_map(struct phys_space *ps, pa_t pa, uint8_t *reach)
{
	uint64_t off;
	struct phys_bank *b = bus_lookup(ps, pa, &off);

	/* The devices' path, inside the epoch: what it found is not rewritten before it leaves. */
	if (!b)
		return NULL;
	*reach = reach_of(b->foreign, atomic_load_explicit(&b->shared, memory_order_relaxed),
			  atomic_load_explicit(&b->remote, memory_order_relaxed));
	return atomic_load_explicit(&b->bus, memory_order_relaxed) + off;
}

void *phys_bus_map_outside(struct phys_space *ps, pa_t pa, uint8_t *reach)
{
	struct bus_view v;

	if (!bus_read(ps, pa, &v))
		return NULL;
	*reach = reach_of(v.foreign, v.shared, v.remote);
	return v.ptr;
}

int phys_remote_fd(struct phys_space *ps, pa_t pa)
{
	uint64_t off;
	struct phys_bank *b = bus_lookup(ps, pa, &off);

	return b && atomic_load_explicit(&b->remote, memory_order_relaxed) ? b->remote_fd : -1;
}

int phys_window_gate(struct phys_space *ps, pa_t pa, struct phys_gate_words *w)
{
	uint64_t off;
	struct phys_bank *b = bus_lookup(ps, pa, &off);

	if (!b || !atomic_load_explicit(&b->remote, memory_order_relaxed) || !w)
		return -EINVAL;
	/* Before devices map the window: set once, read without a lock. */
	b->remote_gate = w;
	return 0;
}

struct phys_gate_words *phys_remote_gate(struct phys_space *ps, pa_t pa)
{
	uint64_t off;
	struct phys_bank *b = bus_lookup(ps, pa, &off);

	return b && atomic_load_explicit(&b->remote, memory_order_relaxed) ? b->remote_gate : NULL;
}

bool phys_arena_at_host_pa(const struct phys_arena *a)
{
	return a->at_host_pa;
}

int phys_pa_is_host(struct phys_space *ps, pa_t pa)
{
	struct bus_view v;

	if (!bus_read(ps, pa, &v))
		return -ENOENT;
	/* Windows have no arena of their own: the application's memory, a share's, another process's. */
	return v.arena && v.arena->at_host_pa;
}

hpa_t phys_hpa(struct phys_space *ps, pa_t pa)
{
	uint64_t off, page;
	struct phys_bank *b = bus_lookup(ps, pa, &off);

	if (!b || !b->hpa)
		return HPA_INVALID;
	page = off >> b->arena->shift;
	if (!hpa_valid(b->hpa[page]))
		return HPA_INVALID;
	return hpa_add(b->hpa[page], off & (b->arena->page_size - 1));
}

uint64_t phys_page_size(struct phys_space *ps, pa_t pa)
{
	struct bus_view v;

	/* Outside the epoch (the map calls, translate, guest banks): the window may be going. */
	if (!bus_read(ps, pa, &v))
		return 0;
	if (v.shared)
		return v.shared_page_size;
	return v.arena ? v.arena->page_size : os_page_size();
}

uint64_t phys_map_page_size(struct phys_space *ps, pa_t pa)
{
	uint64_t v = pa_val(pa);

	/*
	 * By the PA alone, not by the window found there: a registration's
	 * PAs are its ranges' for good, whichever window holds them this
	 * instant, while a flag of the window would answer for one instant
	 * only. (In host-PA mode too: no host has memory at 2^46 and up,
	 * PHYS_EMU_HIGH says.) phys_page_size() then reads the window found
	 * against its seq (bus_read()).
	 */
	if (v - PHYS_PRIVATE_WINDOWS_BASE < PHYS_PRIVATE_WINDOWS_SIZE || v - PHYS_SHARED_REG_BASE < PHYS_SHARED_REG_SIZE)
		return 0;
	return phys_page_size(ps, pa);
}

int phys_backing(struct phys_space *ps, pa_t pa, struct phys_backing *out)
{
	uint64_t off, page;
	struct phys_bank *b = bus_lookup(ps, pa, &off);

	if (!b || b->foreign)
		return -ENOENT; /* foreign memory: the application's mapping, no memfd of ours */
	page = off >> b->arena->shift;
	out->fd = b->arena->fd;
	out->offset = b->file_off + off;
	out->page_size = b->arena->page_size;
	out->node = b->arena->node;
	out->hpa = phys_hpa(ps, pa);
	/*
	 * How far the memfd stays consecutive with the PA: to the end of the
	 * bank for an emulated bank; page by page for hugepages at their host
	 * PA, which are in the file in allocation order, not in PA order.
	 */
	out->len = b->len - off;
	if (b->arena->at_host_pa) {
		uint64_t n = 1;

		while (page + n < b->npages &&
		       pa_eq(bank_page_pa(b, page + n), pa_add(bank_page_pa(b, page), n << b->arena->shift)))
			n++;
		out->len = ((page + n) << b->arena->shift) - off;
	}
	return 0;
}

int phys_map(struct phys_space *ps, pa_t pa, uint64_t len, void *va, bool populate)
{
	uint64_t done = 0;
	int ret;

	while (done < len) {
		struct phys_backing b;
		uint64_t piece;

		ret = phys_backing(ps, pa_add(pa, done), &b);
		if (ret)
			goto unmap;
		piece = MIN(b.len, len - done);
		ret = os_va_commit((uint8_t *)va + done, piece, b.fd, b.offset, populate);
		if (ret)
			goto unmap;
		done += piece;
	}
	return 0;
unmap:
	if (done)
		os_va_decommit(va, done);
	return ret;
}

unsigned phys_page_sizes(const struct phys_space *ps, uint64_t want, uint64_t sizes[2])
{
	unsigned n = 0;

	if (want) {
		sizes[0] = want;
		return 1;
	}
	if (os_hugepage_supported(SZ_2M))
		sizes[n++] = SZ_2M;
	/* Host PAs only: no 4 KiB fallback, but a kernel without 2 MiB pages may have 1 GiB ones. */
	if (ps->params.host_pa_only) {
		if (!n && os_hugepage_supported(SZ_1G))
			sizes[n++] = SZ_1G;
		return n;
	}
	sizes[n++] = SZ_4K;
	return n;
}
