/* SPDX-License-Identifier: MIT */
/*
 * phys_internal.h - the structures the files of src/phys share.
 *
 * Locking: one mutex, phys_space.lock, protects every field below that does
 * not say otherwise. The bus table and the banks it points to are read
 * without it.
 */
#ifndef IOVM_PHYS_INTERNAL_H
#define IOVM_PHYS_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "base/list.h"
#include "base/lock.h"
#include "base/radix.h"
#include "base/range_alloc.h"
#include "phys/phys.h"

/*
 * Buddy blocks go up to 2^20 frames: 4 GiB of 4 KiB pages, 2 TiB of 2 MiB
 * pages. Larger contiguous requests go through the run scan.
 */
#define PHYS_MAX_ORDER 20
static_assert(PHYS_MAX_ORDER < IOVM_PHYS_ORDERS, "stats must cover every order");

#define BUS_SHIFT PHYS_BUS_SHIFT
#define BUS_GRANULE PHYS_BUS_GRANULE

enum frame_state {
	FRAME_ABSENT = 0, /* no bank holds it (a zeroed radix entry reads so) */
	FRAME_FREE_HEAD,  /* first frame of a free block of 2^order frames */
	FRAME_FREE_TAIL,  /* inside a free block */
	FRAME_USED,
};

/* One per frame of an arena, in the arena's frame table (Linux's struct page). */
struct phys_frame {
	struct list_node link; /* in free_area[order] while FREE_HEAD */
	uint64_t pfn;          /* its own frame number: free lists lead to frames, scans need PAs */
	uint8_t state;         /* enum frame_state */
	uint8_t order;         /* while FREE_HEAD */
	uint8_t zero;          /* holds zeroes: never written since the bank was populated */
	uint8_t unused;
	uint32_t bank;         /* index in phys_space.banks */
	/*
	 * Pins (deferred unmaps awaiting their flush), taken and dropped
	 * without the lock: the count times PIN_ONE, plus PIN_NONE whenever
	 * the frame may not be pinned: not allocated, or freed while pinned
	 * (a zombie: it goes to the buddy when its last pin does).
	 */
	_Atomic uint32_t pinref;
	uint32_t pool;         /* the pool (phys_pool.id) that holds it, while USED; 0: none */
};
static_assert(sizeof(struct phys_frame) == 40, "frame tables are sized for 40-byte frames");
#define PIN_NONE 1u
#define PIN_ONE 2u

struct phys_bank {
	struct phys_arena *arena;
	uint32_t index;
	uint64_t file_off;  /* where the bank starts in the arena's memfd */
	uint64_t len;       /* bytes */
	uint64_t npages;
	/*
	 * The bus's mapping of the bank (MAP_SHARED), or a window's memory.
	 * Atomic for windows' sake: window_add() rewrites it in a reused
	 * struct while bus_read() may read it (see below). A bank's is set
	 * before the bank is published and never changes.
	 */
	_Atomic(uint8_t *) bus;
	pa_t pa;            /* emulated banks: PA of the first page; host-PA banks: PA_INVALID */
	hpa_t *hpa;         /* host PA of each page, or NULL when unknown */
	uint64_t nr_free;   /* frames of this bank free in the buddy */
	bool released;      /* given back; the struct stays for lock-free readers */
	/*
	 * A window (window.c): the process's own memory put on the bus, at VA
	 * bus, from PA pa, with no arena and no frames. Only the bytes [lo, hi)
	 * from bus are the application's: the rest of the first and last
	 * granules is nobody's. foreign (and arena, hpa) are set once, when
	 * the struct is made: a window's struct is only ever another window.
	 *
	 * A removed window's struct is reused for the next one (window_take()),
	 * and lookups outside the devices' epoch may be reading it meanwhile.
	 * So a window's fields are rewritten, under phys_space.lock, only
	 * inside a write section of seq (odd while it lasts; its bus entries'
	 * removal is one too), and the fields such a lookup reads (lo, hi,
	 * shared, shared_page_size, remote, bus) are atomics, read against
	 * seq by bus_read() (bus.c). Devices read them plainly (relaxed) under the
	 * epoch, which phys_window_remove() waits out before reuse. A bank's
	 * seq stays 0: a bank's struct is never reused.
	 */
	bool foreign;
	bool fixed_pa;      /* at a PA its caller chose (phys_window_add_at()): not the emulated range's */
	bool private;       /* its registration's alone (PHYS_WINDOW_PRIVATE): its PAs are PHYS_PRIVATE_WINDOWS_*'s */
	_Atomic uint32_t seq; /* odd while a rewrite is under way; bumped under phys_space.lock */
	_Atomic uint64_t lo, hi;
	/*
	 * A shared window (phys_window_add_shared()): another process's memfd,
	 * mapped for as long as the window is on the bus, so not foreign to a
	 * device: reached without a guard, and pinned for as long as it lives.
	 */
	_Atomic bool shared;
	_Atomic uint64_t shared_page_size;
	/*
	 * A remote window (phys_window_add_remote()): bus is another process's
	 * VA, never dereferenced here; remote_fd its memory file, owned by
	 * the window (meaningless in every other bank). remote is atomic as
	 * the fields above are: bus_read() reads it against seq.
	 */
	_Atomic bool remote;
	int remote_fd;
	/* A remote window's owner's gate copy and the counts of our accesses it looks at (gate.c), or NULL. */
	struct phys_gate_words *remote_gate;
	struct list_node wlink; /* in phys_space.windows or .spare_windows, under its lock */
};

/* A device of another process that reaches this process's memory (gate.c): what it reads and counts. */
#define PHYS_GATE_PEERS 256

struct phys_gate_peer {
	struct phys_gate_words *w; /* gate kept equal to foreign_gate; NULL: a free entry */
	bool (*alive)(void *arg);
	void *arg;
};

/* The memory of one page size on one node, in one memfd. */
struct phys_arena {
	struct phys_space *space;
	uint64_t page_size;
	unsigned shift;     /* log2(page_size) */
	int node;           /* -1: unbound */
	bool hugetlb;
	bool at_host_pa;    /* frames sit at their host PA */
	int fd;
	struct range_alloc file_space; /* free offsets of the memfd, bytes */
	struct radix frames;           /* pfn (pa >> shift) -> struct phys_frame */
	struct list_node free_area[PHYS_MAX_ORDER + 1];
	uint64_t nr_free_blocks[PHYS_MAX_ORDER + 1];
	uint64_t frames_total;
	uint64_t frames_free;
	unsigned nr_banks;  /* live banks */
	pa_t last_bank_end; /* emulated: where the next bank would continue the last one */
};

/* One 2 MiB granule of PA, in the bus table. */
struct bus_entry {
	_Atomic(struct phys_bank *) bank; /* NULL: no memory here; published last */
	/*
	 * Offset of the granule in its bank. Stored (release) under
	 * phys_space.lock before bank, and rewritten when the granule goes to
	 * another bank or window while a lookup may still hold the old one:
	 * bus_read() loads it with acquire, so that a new owner's offset
	 * brings the old window's seq bump with it.
	 */
	_Atomic uint64_t off;
};

struct phys_space {
	struct mutex lock;
	struct phys_params params;  /* params.epoch: readers of the bus, waited out at bank release */
	uint64_t total;          /* bytes in live banks */
	struct range_alloc emu;  /* free emulated PA of banks */
	struct range_alloc emu_windows, emu_private; /* free PA of windows (phys.h's PHYS_WINDOWS_BASE) */
	struct radix bus;        /* pa >> BUS_SHIFT -> struct bus_entry; read lock-free */
	/* Bumped when a granule leaves the bus: caches of bus pointers check it. */
	_Atomic uint32_t bus_gen;
	struct phys_arena *arenas[IOVM_PHYS_MAX_ARENAS];
	unsigned nr_arenas;
	struct phys_bank **banks; /* by index; released banks stay until destroy */
	unsigned nr_banks, cap_banks;
	uint64_t banks_added, banks_released, grow_failures;
	/*
	 * Windows onto foreign memory, under lock. Removed ones are kept for
	 * reuse, never freed before the space: a lock-free reader of the bus
	 * may still hold one.
	 */
	struct list_node windows, spare_windows;
	struct list_node pools;   /* reserved pools (pool.c), under lock */
	uint32_t next_pool_id;    /* under lock; ids start at 1 */
	_Atomic uint64_t nr_windows;
	_Atomic uint32_t foreign_gate; /* non-zero: devices keep off foreign memory */
	/*
	 * Devices of other processes that reach this process's memory (gate.c):
	 * copies of the gate they read, and their accesses in flight. Under
	 * gate_lock, a spin lock held only across a few stores: the memory
	 * monitor's reader takes it, and takes no lock an application thread
	 * could hold while it waits for that reader.
	 */
	atomic_flag gate_lock;
	struct phys_gate_peer gate_peers[PHYS_GATE_PEERS];
	_Atomic uint32_t nr_gate_peers; /* entries of gate_peers in use: written under gate_lock */
};

/* Ranges one pool may hold: a pool is carved in few, large blocks. */
#define PHYS_POOL_MAX_RANGES 64

/* A reserved pool (pool.c): frames taken out of an arena's buddy for one owner. */
struct phys_pool {
	struct phys_arena *arena;
	uint32_t id;                 /* phys_frame.pool of its frames */
	char name[32];
	struct phys_range ranges[PHYS_POOL_MAX_RANGES]; /* what it holds, by PA */
	unsigned nr_ranges;
	uint64_t nframes;
	struct range_alloc free;     /* under phys_space.lock: its free frame numbers */
	struct list_node link;       /* in phys_space.pools, under its lock */
};

/* pool.c: whether @pool holds all of @r (a pool's ranges are fixed: no lock). */
bool pool_holds(const struct phys_pool *pool, struct phys_range r);

/* place.c: whether a placement request is well formed for @a. */
bool placement_ok(const struct phys_arena *a, uint64_t nframes, const struct phys_placement *pl);
/* place.c; needs phys_space.lock. phys_alloc_banks() under the lock, its arguments checked. */
int place_banks(struct phys_arena *a, struct phys_pool *pool, uint64_t nframes, const struct phys_placement *pl,
		struct phys_range *banks, unsigned *nr_banks);

/* bank.c; all need phys_space.lock. */
int bank_add(struct phys_arena *a, uint64_t bytes);
int bank_release(struct phys_bank *b);
void bank_destroy_all(struct phys_space *ps);
pa_t bank_page_pa(const struct phys_bank *b, uint64_t page);

/* bus.c: the frame at @pa and its arena, without the lock; NULL off the bus or for foreign memory. */
struct phys_frame *bus_frame(struct phys_space *ps, pa_t pa, struct phys_arena **a);
/* Whether @pa is in a shared window (always pinned). Lock-free, outside the epoch too. */
bool bus_shared(struct phys_space *ps, pa_t pa);

/* window.c */
void window_destroy_all(struct phys_space *ps);

/* pool.c */
void pool_destroy_all(struct phys_space *ps);

/* buddy.c; all need phys_space.lock. */
struct phys_frame *frame_at(struct phys_arena *a, uint64_t pfn);
int buddy_online(struct phys_arena *a, uint64_t pfn, uint64_t n, uint32_t bank);
int buddy_offline(struct phys_arena *a, uint64_t pfn, uint64_t n);
uint64_t buddy_largest_run(struct phys_arena *a);
/* phys_alloc_contig() under the lock, its request checked. */
int buddy_alloc_contig(struct phys_arena *a, const struct phys_req *req, pa_t *pa, bool *zero);
/* Allocate exactly [pfn, pfn+n): -ENOENT where no bank holds a frame, -EBUSY where one is not free. */
int buddy_alloc_at(struct phys_arena *a, uint64_t pfn, uint64_t n, bool *zero);
/* Give the allocated, unpinned frames [pfn, pfn+n) back to the buddy (a pool's, when it goes). */
void buddy_free_block(struct phys_arena *a, uint64_t pfn, uint64_t n);

static inline uint64_t pa_to_pfn(const struct phys_arena *a, pa_t pa)
{
	return pa_val(pa) >> a->shift;
}

static inline pa_t pfn_to_pa(const struct phys_arena *a, uint64_t pfn)
{
	return pa_make(pfn << a->shift);
}

#endif /* IOVM_PHYS_INTERNAL_H */
