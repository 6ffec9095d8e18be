/* SPDX-License-Identifier: MIT */
/*
 * phys.h - the physical address space of iovm's platform: what the layers
 * above it use.
 *
 * Physical memory is made of banks. A bank is a range of an arena's memfd
 * (hugetlb 2 MiB or 1 GiB pages, or 4 KiB shmem), mapped once for the bus
 * and placed in the physical address space:
 *  - emulated PA: a bank occupies a contiguous range of an address space
 *    iovm owns, as RAM banks do on a board;
 *  - host-PA mode: each hugepage sits at its host physical address (read
 *    from pagemap), so "physically contiguous" means contiguous on the
 *    machine. Non-hugepage memory then lives in an emulated window above
 *    any host address (PHYS_EMU_HIGH), except with host_pa=on
 *    (params.host_pa_only), where there is none: 4 KiB arenas are refused.
 * A buddy allocator hands out frames (pages of the arena's size); the bus
 * turns a PA into a pointer to its memory, without a lock.
 */
#ifndef IOVM_PHYS_PHYS_H
#define IOVM_PHYS_PHYS_H

#include <assert.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <iovm/phys.h>

#include "base/addr.h"
#include "base/config.h"

struct phys_space;
struct phys_arena;

/* PAs are below 2^48: four-level paging's reach, and the bus table's key range. */
#define PHYS_PA_BITS 48
/* Emulated PAs start above zero so that a zero PA is always a bug. */
#define PHYS_EMU_LOW SZ_2M
/* In host-PA mode, emulated PAs live above every host PA (x86 has at most 46 bits today). */
#define PHYS_EMU_HIGH (UINT64_C(1) << 47)
/*
 * PAs no process allocates (out of the emulated range in every mode): a
 * share's domains put the windows of the registrations they map here, at
 * PAs the domain's IOVAs name (mp/domain_space.c), so that a PA one
 * process's registration has means nothing else in any process.
 */
#define PHYS_SHARED_REG_BASE (UINT64_C(1) << 46)
#define PHYS_SHARED_REG_SIZE (UINT64_C(1) << 46)
static_assert(PHYS_SHARED_REG_BASE + PHYS_SHARED_REG_SIZE <= PHYS_EMU_HIGH, "below host-PA mode's emulated PAs");
/*
 * Windows' PAs, in every mode apart from the banks' and from each other:
 * those a caller may map by hand (iovm_mem_register()'s, a device
 * process's remote windows), then a registration's alone
 * (PHYS_WINDOW_PRIVATE). A mapping made by hand that outlives its
 * memory's window so reaches at most another such window later, never
 * the heap nor a registration (attack20's memreg).
 */
#define PHYS_WINDOWS_BASE ((UINT64_C(1) << PHYS_PA_BITS) - (UINT64_C(1) << 45))
#define PHYS_WINDOWS_SIZE (UINT64_C(1) << 44)
#define PHYS_PRIVATE_WINDOWS_BASE (PHYS_WINDOWS_BASE + PHYS_WINDOWS_SIZE)
#define PHYS_PRIVATE_WINDOWS_SIZE (UINT64_C(1) << 44)
static_assert(PHYS_PRIVATE_WINDOWS_BASE + PHYS_PRIVATE_WINDOWS_SIZE == UINT64_C(1) << PHYS_PA_BITS,
	      "the windows' ranges end the PA space");

struct epoch;

struct phys_params {
	uint64_t limit;   /* bytes the space may hold */
	bool host_pa;     /* place hugepages at their host PA */
	/*
	 * host_pa=on: no memory off the host's PAs. Arenas of 4 KiB pages are
	 * refused (-EOPNOTSUPP): their host PA is not fixed (see ctx.h).
	 */
	bool host_pa_only;
	bool read_hpa;    /* read host PAs of hugepages (pagemap shows them) */
	/*
	 * Readers of the bus (device engines), or NULL: a released bank's bus
	 * mapping goes only after they have left the sections they were in.
	 */
	struct epoch *epoch;
};

int phys_create(const struct phys_params *params, struct phys_space **out);
void phys_destroy(struct phys_space *ps);

/*
 * phys_arena_get() - the arena of @page_size pages on @node (-1: unbound),
 * created on first use. -EOPNOTSUPP when the kernel has no such pages.
 * Thread safety: safe.
 */
int phys_arena_get(struct phys_space *ps, uint64_t page_size, int node, struct phys_arena **out);

uint64_t phys_arena_page_size(const struct phys_arena *a);

/* A request for frames, in units of the arena's page size. */
struct phys_req {
	uint64_t nframes;
	uint64_t align; /* frames, power of two */
	uint64_t bound; /* frames, power of two; 0: none */
	uint64_t limit; /* frames: the block ends at or below frame number @limit; 0: none */
	bool no_grow;   /* do not add a bank to satisfy it */
};

/*
 * phys_alloc_contig() - @req->nframes frames contiguous in PA; @zero tells
 * whether all of them are known to hold zeroes. Adds a bank when the free
 * frames cannot satisfy it, within the limit. -ENOMEM when impossible.
 * Thread safety: safe.
 */
int phys_alloc_contig(struct phys_arena *a, const struct phys_req *req, pa_t *pa, bool *zero);

struct phys_extent {
	pa_t pa;
	uint64_t nframes;
	bool zero;
};

/*
 * phys_alloc_scattered() - @nframes frames in at most @max extents, largest
 * blocks first, adding banks unless @no_grow. All or nothing: -ENOMEM when
 * the frames are not there or need more than @max extents.
 * Thread safety: safe.
 */
int phys_alloc_scattered(struct phys_arena *a, uint64_t nframes, bool no_grow,
			 struct phys_extent *ext, unsigned max, unsigned *n);

/*
 * phys_free() - give back frames; @zero when the caller knows they still hold
 * zeroes. -EINVAL when any of them is not allocated.
 * Thread safety: safe.
 */
int phys_free(struct phys_arena *a, pa_t pa, uint64_t nframes, bool zero);

/*
 * phys_alloc_at() - allocate exactly the frames [pa, pa + nframes): an
 * administrator names where a guest's memory must be. -ENOENT where no bank
 * holds one of them, -EBUSY where one is not free.
 * Thread safety: safe.
 */
int phys_alloc_at(struct phys_arena *a, pa_t pa, uint64_t nframes, bool *zero);

/* ---- placement (place.c) and reserved pools (pool.c) ---- */

/* A range of physical memory: [pa, pa + len). */
struct phys_range {
	pa_t pa;
	uint64_t len; /* bytes */
};

struct phys_pool;

/*
 * How phys_alloc_banks() places memory: Xen's allocate_memory_11. Blocks of
 * the largest order first; on failure halve, down to @min_chunk; first
 * below @below (a 32-bit DMA mask), then anywhere; adjacent blocks merge
 * into one bank; at most @max_banks banks.
 */
struct phys_placement {
	uint64_t min_chunk;  /* frames, power of two: the smallest block tried */
	uint64_t below;      /* frames: try below this frame number first; 0: no preference */
	unsigned max_banks;  /* banks the result may have */
	bool no_grow;        /* do not add banks to the arena (from a pool, never) */
};

/*
 * phys_alloc_banks() - @nframes frames as at most @pl->max_banks banks,
 * sorted by PA, into @banks (room for max_banks), their number in
 * @nr_banks: from @pool when given, else from @a's buddy. All or nothing:
 * -ENOMEM when the memory is not there in few enough banks.
 * Thread safety: safe.
 */
int phys_alloc_banks(struct phys_arena *a, struct phys_pool *pool, uint64_t nframes,
		     const struct phys_placement *pl, struct phys_range *banks, unsigned *nr_banks);
/* phys_free_banks() - give back what phys_alloc_banks() (or phys_pool_alloc_at()) gave. */
int phys_free_banks(struct phys_arena *a, struct phys_pool *pool, const struct phys_range *banks, unsigned n);

/*
 * phys_pool_create() - reserve @nframes of @a's frames for one owner: they
 * leave the buddy (nothing else allocates them) for a pool of their own,
 * placed as @pl says (max_banks 1: one contiguous range). @name is for
 * statistics. -ENOMEM when the memory is not there.
 * Thread safety: safe.
 */
int phys_pool_create(struct phys_arena *a, const char *name, uint64_t nframes, const struct phys_placement *pl,
		     struct phys_pool **out);
/* phys_pool_lookup() - the pool named @name; -ENOENT. */
int phys_pool_lookup(struct phys_space *ps, const char *name, struct phys_pool **out);
/* phys_pool_destroy() - the pool's frames back to the buddy; -EBUSY while any is allocated. */
int phys_pool_destroy(struct phys_pool *pool);
/* phys_pool_alloc_at() - exactly [pa, pa + nframes) of the pool; -ENOENT outside it, -EBUSY taken. */
int phys_pool_alloc_at(struct phys_pool *pool, pa_t pa, uint64_t nframes);
struct phys_arena *phys_pool_arena(const struct phys_pool *pool);
/* The pool behind a public handle: iovm_pool is phys_pool under another name. */
static inline struct phys_pool *phys_pool_of(struct iovm_pool *p)
{
	return (struct phys_pool *)(void *)p;
}



/*
 * phys_pin() - pin the frames of [pa, pa+len): freeing one then only marks
 * it, and it goes back to the allocator when its last pin does (a deferred
 * unmap pins what a device may still reach until the flush). -EINVAL when a
 * frame is not allocated. phys_unpin() undoes it.
 * Thread safety: safe.
 */
int phys_pin(struct phys_space *ps, pa_t pa, uint64_t len);
void phys_unpin(struct phys_space *ps, pa_t pa, uint64_t len);
/*
 * phys_unpin_many() - phys_unpin() for @n ranges: the i-th is the PA at
 * @pa and the length at @len, each advanced by i * @stride bytes (the
 * fields of an array of structs); a PA of PA_INVALID is skipped. A
 * deferred flush gives back hundreds.
 */
void phys_unpin_many(struct phys_space *ps, const pa_t *pa, const uint64_t *len, size_t stride, unsigned n);

/*
 * phys_pinned() - whether every frame of [pa, pa+len) is pinned (so not
 * reused, though it may have been freed: it waits for its last unpin).
 * Takes no lock.
 */
bool phys_pinned(struct phys_space *ps, pa_t pa, uint64_t len);

/*
 * phys_trim() - give banks whose every frame is free back to the kernel
 * (hugepages to the machine's pool). Returns the bytes released.
 * Thread safety: safe.
 */
uint64_t phys_trim(struct phys_space *ps);

/* What backs a PA: the memfd and offset to map, and how far that stays true. */
struct phys_backing {
	int fd;
	uint64_t offset;  /* in the memfd */
	uint64_t len;     /* bytes from pa that are consecutive in the memfd */
	hpa_t hpa;        /* host PA of pa, or HPA_INVALID */
	uint64_t page_size;
	int node;         /* -1: not bound */
};

/* phys_backing() - what backs @pa; -ENOENT for a PA no bank holds. Lock-free. */
int phys_backing(struct phys_space *ps, pa_t pa, struct phys_backing *b);

/*
 * phys_map() - map the memory [pa, pa+len) at @va, inside a reservation
 * (os_va_reserve()): one shared mapping per piece consecutive in a memfd;
 * @populate fills the page tables now. All or nothing. Lock-free.
 */
int phys_map(struct phys_space *ps, pa_t pa, uint64_t len, void *va, bool populate);

/*
 * phys_page_sizes() - the page sizes to try, in order, for @want (4 KiB,
 * 2 MiB or 1 GiB; 0: 2 MiB hugepages when the kernel has them, then
 * 4 KiB, unless @ps takes host PAs only). Fills @sizes, returns how many
 * (0: none to try).
 */
unsigned phys_page_sizes(const struct phys_space *ps, uint64_t want, uint64_t sizes[2]);

/*
 * The bus resolves PAs in 2 MiB granules: the smallest hugepage, and a
 * bank's alignment. Inside one granule, the bus's pointers are contiguous.
 */
#define PHYS_BUS_SHIFT 21
#define PHYS_BUS_GRANULE (UINT64_C(1) << PHYS_BUS_SHIFT)

/*
 * phys_bus_ptr() - the bus's pointer to @pa's memory, or NULL. Lock-free,
 * and safe outside the devices' epoch: a window that goes meanwhile, its
 * struct reused for another, answers as it was or not at all, never with
 * a mix of the two.
 */
void *phys_bus_ptr(struct phys_space *ps, pa_t pa);

/* How the CPU reaches the memory at a PA (phys_bus_map()). */
enum phys_reach {
	/* iovm's memory, or a share's: plain loads and stores. */
	PHYS_REACH_OWN = 0,
	/*
	 * The application's memory (a window), which may vanish under a
	 * device: under a guard, and not while the foreign gate is closed.
	 */
	PHYS_REACH_FOREIGN = 1,
	/*
	 * Another process's memory (phys_window_add_remote()): the pointer is
	 * its virtual address there, never dereferenced here; the bytes move
	 * with pread()/pwrite() of phys_remote_fd().
	 */
	PHYS_REACH_REMOTE = 2,
	/*
	 * Another process's registration in a shared domain, at a PA of
	 * [PHYS_SHARED_REG_BASE, +PHYS_SHARED_REG_SIZE) this process has no
	 * window for: no pointer at all; the registering process's own engine
	 * moves the bytes (iommu_delegate()). Never on the bus: the IOMMU
	 * says so for such a PA of a shared domain that can delegate.
	 */
	PHYS_REACH_DELEGATED = 3,
};

/*
 * phys_bus_map() - the bus's pointer to @pa's memory, or NULL, and in
 * *@reach how the CPU reaches it (enum phys_reach). Lock-free. Only
 * inside the devices' epoch (iommu_access()), which a window's removal
 * waits out before its struct is reused: the window's fields are read
 * as they are, with no check: the devices' miss path pays nothing for it.
 */
void *phys_bus_map(struct phys_space *ps, pa_t pa, uint8_t *reach);

/*
 * phys_bus_map_outside() - phys_bus_map() for a caller outside the
 * devices' epoch (a queue's rings, found through their domain): a window
 * that goes meanwhile, its struct reused for another, answers as it was
 * or not at all, never with one window's pointer and another's reach.
 * Lock-free; a few more loads than phys_bus_map(), and a retry when a
 * window is rewritten under it.
 */
void *phys_bus_map_outside(struct phys_space *ps, pa_t pa, uint8_t *reach);

/*
 * phys_remote_fd() - the memory file of the process whose memory @pa is
 * (a window phys_window_add_remote() made), or -1. The file stays open
 * until the window is removed. Lock-free.
 */
int phys_remote_fd(struct phys_space *ps, pa_t pa);

/*
 * A window whose PAs only its registration maps: a memory registration's
 * (reg/), which maps and unmaps them itself and whose PAs the next
 * registration gets once it ends. phys_map_page_size() does not know them,
 * so that the public map calls refuse them: a mapping made by hand would
 * outlive the registration and reach the next one's memory.
 */
#define PHYS_WINDOW_PRIVATE 1u

/*
 * phys_window_add() - put the application's memory [va, va+len) (page
 * aligned) on the bus, at a PA of its own, returned in @pa, whose offset
 * within 2 MiB is the VA's. @flags: 0 or PHYS_WINDOW_PRIVATE. Nothing is
 * pinned: see reg/ for that.
 * Thread safety: safe.
 */
int phys_window_add(struct phys_space *ps, void *va, uint64_t len, unsigned flags, pa_t *pa);

/*
 * phys_window_add_at() - as phys_window_add(), PHYS_WINDOW_PRIVATE, at
 * exactly @pa, which keeps the VA's offset within 2 MiB and lies in
 * [PHYS_SHARED_REG_BASE, +PHYS_SHARED_REG_SIZE): the caller chose it (a
 * shared domain, from the IOVA it maps it at). -EINVAL for a PA that is
 * not so; -EEXIST when a window is there already.
 * Thread safety: safe.
 */
int phys_window_add_at(struct phys_space *ps, void *va, uint64_t len, pa_t pa);

/*
 * phys_window_remove() - take the window at @pa (as phys_window_add() gave
 * it) off the bus; returns once no device can be inside an access through
 * it. -ENOENT when there is no such window.
 * Thread safety: safe.
 */
int phys_window_remove(struct phys_space *ps, pa_t pa);

/*
 * phys_window_add_shared() - put memory shared between processes (a memfd
 * mapped at @va for @len bytes, both multiples of 2 MiB) on the bus at
 * exactly @pa, where every process of the share puts it. Unlike an
 * application's memory it cannot vanish under a device while on the bus,
 * and phys_pin() of it always succeeds. Remove it with
 * phys_window_remove(). -EBUSY when the PAs are taken.
 * Thread safety: safe.
 */
int phys_window_add_shared(struct phys_space *ps, void *va, uint64_t len, uint64_t page_size, pa_t pa);

/*
 * phys_window_add_remote() - put [rva, rva+len) (page aligned) of another
 * process's memory on the bus, at a PA of its own returned in @pa, as
 * phys_window_add() does for this process's memory. @mem_fd is that
 * process's /proc/PID/mem, which it opened and passed: the kernel checked
 * the access when it was opened, and the file holds that process's
 * address space, not its pid, so a pid used again reaches nobody. It
 * stays the caller's, open until the window is removed. Devices reach the
 * memory only through the file (PHYS_REACH_REMOTE); phys_bus_ptr() gives
 * NULL. Remove it with phys_window_remove().
 * Thread safety: safe.
 */
int phys_window_add_remote(struct phys_space *ps, int mem_fd, uint64_t rva, uint64_t len, pa_t *pa);

/* phys_has_windows() - whether any foreign memory (not shared windows) is on the bus. Lock-free. */
bool phys_has_windows(const struct phys_space *ps);

/*
 * phys_foreign_gate() - while non-zero, devices keep off foreign memory: the
 * memory monitor closes it (increments) before it lets an application's
 * munmap go on, and opens it once the registrations it hit are invalidated.
 * A device that finds it closed leaves its device-side section and waits.
 */
_Atomic uint32_t *phys_foreign_gate(struct phys_space *ps);

/*
 * The words one device process and the memory's owner share for the
 * foreign gate (gate.c), in memory both map.
 */
struct phys_gate_words {
	_Atomic uint32_t gate;    /* the owner's copy of its foreign gate */
	_Atomic uint32_t busy;    /* the device's accesses in flight (each from before it looks at the copy) */
	_Atomic uint32_t waiting; /* the device's descriptors held off by a closed gate, until one gets in */
	_Atomic uint32_t opened;  /* the owner's openings of the gate, counted: it is alive and moving */
};

/*
 * The foreign gate for devices of other processes (gate.c). A device
 * process reaching this process's memory through its memory file (a
 * remote window there) cannot read the gate: it reads a copy in memory
 * both share (@w->gate), and counts its accesses in flight in @w->busy.
 *
 * phys_gate_peer_add() - keep @w->gate equal to the gate from now on;
 * @alive(@arg) says whether the other process still runs, so that one
 * that died inside an access is not waited for. Its id, or -ENOSPC.
 * phys_gate_peer_del() - forget it: after it, nothing of it is touched.
 * phys_gate_close(), phys_gate_open() - the memory monitor's: the gate
 * and its copies, by 1 and by @n.
 * phys_gate_wait_peers() - after the gate closed: until no peer is
 * inside an access (or alive).
 * phys_gate_yield() - before the gate closes again: while a peer's
 * descriptor waits for it to open, until that one got in, for at most
 * PHYS_GATE_YIELD_OPEN_NS once the gate is open, PHYS_GATE_YIELD_MAX_NS
 * in all, or until @stop(@arg) (NULL: none) says the gate may be kept
 * closed by someone who waits for the caller. Never from the thread that
 * opens the gate (it would wait for itself). Fairness only: an
 * application that keeps unmapping would otherwise keep the gate closed,
 * each of its calls closing it again before the last one's invalidation
 * opened it, and a device that waits would fault at its timeout. Nothing
 * is unsafe without it: a device stays out while the gate is closed.
 * Thread safety: safe; none takes a lock an application thread may hold
 * while it waits for the memory monitor, nor allocates.
 */
int phys_gate_peer_add(struct phys_space *ps, struct phys_gate_words *w, bool (*alive)(void *arg), void *arg);
void phys_gate_peer_del(struct phys_space *ps, int id);
void phys_gate_close(struct phys_space *ps);
void phys_gate_open(struct phys_space *ps, uint32_t n);
void phys_gate_wait_peers(struct phys_space *ps);
void phys_gate_yield(struct phys_space *ps, bool (*stop)(void *arg), void *arg);
/* phys_gate_has_peers() - whether any peer is added now (lock-free, never blocks). */
bool phys_gate_has_peers(struct phys_space *ps);

/*
 * The other side: a remote window's gate words, given by its owner
 * (phys_window_gate()), which phys_remote_gate() reads back for the
 * window at @pa (NULL: none, the window is not gated).
 */
int phys_window_gate(struct phys_space *ps, pa_t pa, struct phys_gate_words *w);
struct phys_gate_words *phys_remote_gate(struct phys_space *ps, pa_t pa);

/*
 * The device's side of @w, for each access to the owner's memory:
 * phys_gate_enter() counts the access in @w->busy, then looks at the
 * gate: true when it is open, the count then held until phys_gate_leave();
 * false, with nothing held, when it is closed. Counted before looked at,
 * as the owner's monitor closes the gate before it looks at the count
 * (Dekker: both seq_cst), so either the monitor waits for this access or
 * this access sees the gate closed. phys_gate_wait_begin() and
 * phys_gate_wait_end() bracket a wait for a closed gate to open: the
 * owner's phys_gate_yield() lets such a waiter in before it closes the
 * gate again. Lock-free, never block.
 */
static inline bool phys_gate_enter(struct phys_gate_words *w)
{
	atomic_fetch_add_explicit(&w->busy, 1, memory_order_seq_cst);
	if (atomic_load_explicit(&w->gate, memory_order_seq_cst) == 0)
		return true;
	atomic_fetch_sub_explicit(&w->busy, 1, memory_order_release);
	return false;
}

static inline void phys_gate_leave(struct phys_gate_words *w)
{
	atomic_fetch_sub_explicit(&w->busy, 1, memory_order_release);
}

static inline void phys_gate_wait_begin(struct phys_gate_words *w)
{
	atomic_fetch_add_explicit(&w->waiting, 1, memory_order_seq_cst);
}

static inline void phys_gate_wait_end(struct phys_gate_words *w)
{
	atomic_fetch_sub_explicit(&w->waiting, 1, memory_order_release);
}

/*
 * phys_bus_gen() - a counter bumped whenever memory leaves the bus. A cache
 * of bus pointers (an IOTLB) notes it when it fills an entry, reads it
 * before phys_bus_ptr(), and trusts the entry only while it has not moved.
 * Memory leaves only after a grace period of the device-side epoch, so a
 * pointer checked inside a section stays good until the section ends.
 */
const _Atomic uint32_t *phys_bus_gen(const struct phys_space *ps);

/*
 * phys_arena_at_host_pa() - whether @a's frames sit at their host PA
 * (host-PA mode, hugepages): their PA is then a host PA.
 */
bool phys_arena_at_host_pa(const struct phys_arena *a);

/*
 * phys_pa_is_host() - 1 when @pa is a host PA (memory of a host-PA
 * arena), 0 when it is emulated (other arenas, windows onto foreign or
 * shared memory), -ENOENT when no memory is there. Lock-free.
 */
int phys_pa_is_host(struct phys_space *ps, pa_t pa);

/* phys_hpa() - the host PA of @pa, or HPA_INVALID. Lock-free. */
hpa_t phys_hpa(struct phys_space *ps, pa_t pa);

/* phys_page_size() - the page size of the bank holding @pa, or 0. Lock-free. */
uint64_t phys_page_size(struct phys_space *ps, pa_t pa);
/*
 * phys_map_page_size() - as phys_page_size(), but 0 in a window only its
 * registration maps (PHYS_WINDOW_PRIVATE, phys_window_add_at()): what a
 * caller may map by hand. Decided by the PA's range, so that a window
 * coming or going meanwhile never turns a registration's PA mappable.
 * Lock-free.
 */
uint64_t phys_map_page_size(struct phys_space *ps, pa_t pa);

int phys_stats(struct phys_space *ps, struct iovm_phys_stats *st);


#endif /* IOVM_PHYS_PHYS_H */
