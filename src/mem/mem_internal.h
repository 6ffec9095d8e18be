/* SPDX-License-Identifier: MIT */
/*
 * mem_internal.h - the structures the files of src/mem share.
 *
 * Layout of the virtual address space (reserved once, PROT_NONE):
 *
 *   arena: | slot 0 | slot 1 | ... | slot N-1 |      each slot 2^slot_shift bytes
 *            4K/any   4K/n0          1G/n7           slot = psz_idx * node_slots + node_slot
 *
 * A slot holds one segment list: the memory of one page size on one node.
 * A pointer's list is (ptr - arena) >> slot_shift and its page
 * (ptr - list base) >> page_shift: translation is two loads and no search.
 *
 * Locks, in the order they nest:
 *   mem_class.lock -> mem_seglist.lock -> mem_space.rev_lock -> phys_space.lock
 *   the tlscache lock -> mem_class.lock
 *   mem_space.lock -> every mem_seglist.lock (subscribing holds them all)
 *   mem_space.zone_lock -> (allocation locks)
 * Fields say which lock protects them; "lock-free" ones are read without any.
 */
#ifndef IOVM_MEM_INTERNAL_H
#define IOVM_MEM_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include <iovm/mem.h>

#include "base/addr.h"
#include "base/compiler.h"
#include "base/list.h"
#include "base/lock.h"
#include "base/radix.h"
#include "base/range_alloc.h"
#include "base/tlscache.h"
#include "mem/mem.h"

struct iovm_ctx;
struct phys_space;
struct phys_arena;

/* The fast paths of iovm_dma_alloc() and iovm_dma_free(): inline whatever the compiler's estimate. */
#define mem_fast_inline static inline __attribute__((always_inline))

/* The heap allocates virtual memory in 4 KiB units, whatever the page size. */
#define MEM_UNIT_SHIFT 12
#define MEM_UNIT (UINT64_C(1) << MEM_UNIT_SHIFT)

enum { MEM_PSZ_4K, MEM_PSZ_2M, MEM_PSZ_1G, MEM_NR_PSZ };

/* Node slot 0 is "any node"; slots 1..8 are the first eight online nodes. */
#define MEM_MAX_NODE_SLOTS 9
#define MEM_MAX_LISTS (MEM_NR_PSZ * MEM_MAX_NODE_SLOTS)
static_assert(MEM_MAX_LISTS <= IOVM_MEM_MAX_LISTS, "stats must have room for every list");
static_assert(MEM_MAX_LISTS == 27, "mem.h's MEM_SLOTS says 27 too");

/* Sizes up to 32 KiB come from slabs and thread caches; larger ones are page runs. */
#define MEM_SMALL_MAX 32768
#define MEM_NR_CLASSES 40

/* A slot is at least 1 GiB (a 1 GiB page fits) and at most 1 TiB. */
#define MEM_SLOT_SHIFT_MIN 30
#define MEM_SLOT_SHIFT_MAX 40

/*
 * The translation of one page; written under the list lock, read
 * lock-free. The addresses are atomic words, the PA's with a valid bit
 * packed in (xlate.c): integers, not pa_t and hpa_t, which they become
 * as they are read (xlate_stale_pa(), the iovm_dma_* lookups).
 */
struct mem_xlate {
	_Atomic uint64_t pa;      /* IOVM_ADDR_INVALID while not committed */
	_Atomic uint64_t hpa;     /* IOVM_ADDR_INVALID when unknown */
	_Atomic uint32_t pa_run;  /* pages from this one on, in VA order, contiguous in PA */
	_Atomic uint32_t hpa_run; /* the same in host PA; 0 when unknown */
	uint64_t pad;
};
static_assert(sizeof(struct mem_xlate) == 32, "two entries per cache line");

/* The allocator's state of one page; under mem_seglist.lock. */
/*
 * A page's state. Pages are committed in commits (the pages one allocation
 * needed at once), and a commit is released whole: a domain that follows
 * the heap into a kernel IOMMU holds each commit as one kernel entry, and
 * the kernel unmaps whole entries only, so releasing part of a commit
 * would unmap its live rest for the device until the remains were mapped
 * again. The first page of a commit, its head, keeps the commit's state.
 */
struct mem_page {
	struct list_node idle_link; /* head: in mem_seglist.idle while no page of the commit is used */
	uint64_t idle_since_ns;     /* head: since when */
	uint32_t units_used;        /* 4 KiB units of the page handed out */
	uint32_t head_dist;         /* pages back to the head of its commit (0: the head) */
	uint32_t commit_pages;      /* head: the pages of the commit */
	uint32_t live_pages;        /* head: pages of the commit with units handed out */
	uint8_t committed;
	uint8_t pad[7];
};
static_assert(sizeof(struct mem_page) == 48, "page state is sized for 48 bytes");

struct mem_seglist;

/*
 * A slab: a page run cut into objects of one size class. The fields the
 * free path reads come first and are written once, when the slab is made:
 * a free finds everything it checks in this line and the bitmap, without
 * going through the list to the class.
 */
struct mem_slab {
	uint8_t *base;
	uint32_t size;        /* the class's object size */
	uint32_t magic;       /* the class's magic (mem_class) */
	uint32_t span;        /* nobj * size: offsets at or beyond it are no object */
	uint32_t cls;         /* index in mem_seglist.classes */
	struct mem_seglist *sl;
	uint32_t nobj;
	bool cached;          /* its list is in the default set: frees go to the thread caches */
	bool zero;            /* its memory held zeroes when it was made */
	uint32_t nfree;       /* under mem_class.lock: objects not handed out */
	uint32_t bump;        /* under mem_class.lock: objects [bump, nobj) never handed out */
	void *free;           /* under mem_class.lock: returned objects, linked through their first word */
	struct list_node link; /* under mem_class.lock: in mem_class.partial */
	struct list_node all_link; /* under mem_class.lock: in mem_class.all */
	/* One bit per object, set while it is out of the slab; written under mem_class.lock. */
	_Atomic uint64_t used[];
};

struct mem_class {
	struct mutex lock;
	uint32_t size;
	uint32_t slab_size;
	uint32_t nobj;          /* objects per slab */
	uint32_t magic;         /* ceil(2^32 / size): offset * magic >> 32 divides by size exactly */
	uint32_t cache_max;     /* objects a thread cache keeps */
	struct list_node partial; /* under lock: slabs with free objects */
	struct list_node all;     /* under lock: every slab, for teardown */
	struct mem_slab *spare;   /* under lock: one empty slab kept against churn */
	uint64_t nr_slabs;        /* under lock */
} __cacheline_aligned;

/*
 * Unit map entries: a slab (bit 0 clear), or a page run's length at its
 * first unit. A slab's entry is its address, aligned to UNIT_SLAB_ALIGN,
 * with its class in bits 1-6: a free finds the thread cache's bin for
 * the object in the one load of the unit map, without waiting for a
 * second load from the slab (the next allocation's load of that bin waits
 * on the free's store to it).
 */
#define UNIT_RUN_TAG 1u
#define UNIT_SLAB_ALIGN 128
#define unit_run(nunits) (((uintptr_t)(nunits) << 1) | UNIT_RUN_TAG)
#define unit_is_run(e) ((e) & UNIT_RUN_TAG)
#define unit_run_len(e) ((uint64_t)(e) >> 1)
#define unit_slab(s) ((uintptr_t)(s) | ((uintptr_t)(s)->cls << 1))
#define unit_slab_ptr(e) ((struct mem_slab *)((e) & ~(uintptr_t)(UNIT_SLAB_ALIGN - 1)))
#define unit_slab_cls(e) ((unsigned)((e) >> 1) & (UNIT_SLAB_ALIGN / 2 - 1))
static_assert(MEM_NR_CLASSES <= UNIT_SLAB_ALIGN / 2, "a class fits in a slab's unit entry");

struct mem_seglist {
	struct mem_space *ms;
	unsigned slot;
	unsigned psz_idx;
	int node;                 /* -1: any */
	uint8_t *base;
	uint64_t len;             /* VA span */
	uint64_t len_mask;        /* len - 1: the translation's hot path masks with it */
	uint64_t page_size;
	uint64_t page_mask;       /* page_size - 1 */
	unsigned page_shift;
	uint64_t npages, nunits;
	struct phys_arena *arena;

	struct mem_xlate *xlate;  /* lock-free: per page */
	_Atomic uintptr_t *units; /* lock-free: per unit, slab or run */

	struct mutex lock;
	struct range_alloc free_units; /* under lock: free VA, in units */
	struct mem_page *pages;        /* under lock */
	uint64_t *dirty;               /* under lock: a bit per unit handed out since it was zero */
	struct list_node idle;         /* under lock: heads of idle commits, oldest first */
	uint64_t committed_pages;      /* under lock */
	uint64_t idle_pages;           /* under lock: committed pages with nothing handed out */
	uint64_t used_units;           /* under lock */
	uint64_t commits, decommits;   /* under lock */
	uint64_t page_hwm;             /* under lock: no page at or above it was ever committed */
	uint64_t next_trim_ns;         /* under lock: when the oldest idle commit is due */
	_Atomic uint64_t grow_failed_ns; /* last time the kernel refused memory; read lock-free */
	bool in_default_set;           /* on the context's default node: thread caches serve it */

	struct mem_class classes[MEM_NR_CLASSES];
};

struct mem_sub {
	struct list_node link; /* in mem_space.subs */
	iovm_mem_event_fn fn;
	void *arg;
};

struct mem_zone {
	struct iovm_zone pub;
	struct list_node link; /* in mem_space.zones, under zone_lock */
};

struct mem_tcache;

struct mem_space {
	struct iovm_ctx *ctx;
	struct phys_space *phys;
	struct tls_owner tc_owner; /* the owner of the thread caches (base/tlscache.h) */
	uintptr_t dfree_secret;    /* random: the free stamp is this XOR the object's address */
	uint8_t *arena;
	uint64_t arena_len;
	unsigned slot_shift;
	_Atomic(struct mem_seglist *) lists[MEM_MAX_LISTS]; /* lock-free; set once under lock */
	/* Each list's units, set before the list is: a free reaches its unit in two loads. */
	_Atomic uintptr_t *_Atomic slot_units[MEM_MAX_LISTS];
	uint64_t slot_mask;             /* (1 << slot_shift) - 1: an offset in the arena to one in its slot */
	/* A heap shared with other processes (mem.h), serving instead of this one; NULL: none. */
	_Atomic(const struct mem_shared *) shared;

	uint64_t page_size[MEM_NR_PSZ]; /* 0 where the kernel lacks that size */
	unsigned pref[MEM_NR_PSZ];      /* page size indices to try, in order */
	unsigned nr_pref;
	bool auto_pages;                /* page_size=auto: 4 KiB is a fallback (unless host_pa_only) */
	bool host_pa_only;              /* host_pa=on: no 4 KiB pages (page_size[MEM_PSZ_4K] is 0) */
	int node_of_slot[MEM_MAX_NODE_SLOTS];
	unsigned nr_node_slots;
	unsigned default_node_slot;
	uint64_t release_delay_ns;

	struct mutex lock;    /* list creation; subs (with every list lock) */
	struct list_node subs;
	/* The shared heap's sections the subscribers have heard committed (under lock, with every list lock). */
	uint64_t *shared_applied;
	uint64_t shared_nparcels;

	struct mutex rev_lock; /* table allocation of rev */
	struct radix rev[MEM_NR_PSZ]; /* lock-free: pa >> page_shift -> VA of the page */

	struct mutex zone_lock;
	struct list_node zones;  /* under zone_lock */
	unsigned nr_zones;       /* under zone_lock */

	/* Counters of thread caches that were given back (their thread exited). */
	_Atomic uint64_t retired_allocs, retired_frees, retired_hits;
	_Atomic uint64_t slow_allocs, slow_frees;
	_Atomic uint64_t zeroed, zero_known; /* bytes: zeroing done and zeroing spared */

	/* Common buffers (cbuf.c). */
	struct mutex cbuf_lock;
	struct list_node cbufs;     /* under cbuf_lock */
	struct radix nc_pages;      /* pa >> 12 -> struct nc_page; written under cbuf_lock, read lock-free */
	_Atomic uint64_t sync_errors; /* the oracle's: missing or misplaced syncs */
};

/* The stamp a freed small object carries in its second word. */
static inline uintptr_t dfree_key(const struct mem_space *ms, const void *obj)
{
	return ms->dfree_secret ^ (uintptr_t)obj;
}

/* A request, once the public flags are decoded. */
struct mem_req {
	uint64_t size;
	uint64_t align;
	bool contig;
	bool zero;
};

/* space.c */
struct mem_seglist *mem_list_get(struct mem_space *ms, unsigned psz_idx, unsigned node_slot);
static inline struct mem_seglist *mem_list_of(const struct mem_space *ms, const void *ptr)
{
	uint64_t off = (uint64_t)((const uint8_t *)ptr - ms->arena);

	if (off >= ms->arena_len)
		return NULL;
	return atomic_load_explicit(&ms->lists[off >> ms->slot_shift], memory_order_acquire);
}

/* seglist.c; run_alloc and run_free take the list lock. */
int run_alloc(struct mem_seglist *sl, const struct mem_req *req, bool allow_grow, void **out,
	      bool *zero);
int run_free(struct mem_seglist *sl, void *ptr);
int run_resize(struct mem_seglist *sl, void *ptr, uint64_t size);
uint64_t run_size(struct mem_seglist *sl, const void *ptr);
uint64_t seglist_trim(struct mem_seglist *sl, bool all);
uint64_t seglist_trim_locked(struct mem_seglist *sl, bool all, bool release_banks);
bool seglist_may_grow(struct mem_seglist *sl);
void seglist_destroy(struct mem_seglist *sl);
int seglist_create(struct mem_space *ms, unsigned psz_idx, unsigned node_slot,
		   struct mem_seglist **out);

/* xlate.c; the update functions need the list lock. */
void xlate_commit(struct mem_seglist *sl, uint64_t page, uint64_t n, pa_t pa);
void xlate_release(struct mem_seglist *sl, uint64_t page, uint64_t n);
pa_t xlate_stale_pa(const struct mem_seglist *sl, uint64_t page);
/* rev_set() maps PA pages to @va, all or nothing; rev_clear() forgets them. */
int rev_set(struct mem_space *ms, unsigned psz_idx, pa_t pa, uint64_t npages, uint8_t *va);
void rev_clear(struct mem_space *ms, unsigned psz_idx, pa_t pa, uint64_t npages);

/* slab.c */
void class_init(struct mem_class *c, unsigned idx);
int class_of(uint64_t size, uint64_t align);
uint32_t class_size(unsigned idx);
uint32_t class_cache_max(unsigned idx);
void *slab_alloc(struct mem_seglist *sl, unsigned cls, bool allow_grow, bool *zero);
int slab_free(struct mem_seglist *sl, struct mem_slab *s, void *obj);
int slab_refill(struct mem_seglist *sl, unsigned cls, bool allow_grow, void **head, unsigned want);
void slab_flush(const struct mem_space *ms, unsigned cls, void *head, unsigned n);
void slab_destroy_all(struct mem_seglist *sl);
struct mem_slab *slab_of(const struct mem_space *ms, const void *obj);

/* The index of @obj in @s; -EINVAL when @obj is not the start of one of its objects. */
static inline int slab_obj_index(const struct mem_slab *s, const void *obj, uint32_t *idx)
{
	uint64_t off = (uint64_t)((const uint8_t *)obj - s->base), i;

	if (unlikely(off >= s->span))
		return -EINVAL;
	/* Exact for every multiple of size below 2^32 / size * size: slabs are far smaller. */
	i = (off * s->magic) >> 32;
	if (unlikely(i * s->size != off))
		return -EINVAL;
	*idx = (uint32_t)i;
	return 0;
}

/* Whether object @idx of @s is out of the slab (with the user, or in a thread cache). Lock-free. */
static inline bool slab_is_out(const struct mem_slab *s, uint32_t idx)
{
	return atomic_load_explicit(&s->used[idx / 64], memory_order_relaxed) &
	       (UINT64_C(1) << (idx % 64));
}

/*
 * class_of() for an alignment of at most 16 (every class is a multiple of
 * 16) and 1 <= @size <= MEM_SMALL_MAX: arithmetic, no loop, for the
 * allocation fast path.
 */
static inline unsigned class_of_small(uint64_t size)
{
	unsigned lg;

	if (size <= 128)
		return (unsigned)((size - 1) >> 4);
	lg = ilog2(size - 1);
	return 8 + (lg - 7) * 4 + (unsigned)((size - 1) >> (lg - 2)) - 4;
}

/* tcache.c; the fast paths, tcache_alloc() and tcache_free(), are in mem/tcache.h. */
void tcache_register_space(struct mem_space *ms);
void tcache_destroy_all(struct mem_space *ms);
void tcache_stats(struct mem_space *ms, uint64_t *allocs, uint64_t *frees, uint64_t *hits);

/* event.c; notify needs the list lock. */
int event_notify_commit(struct mem_seglist *sl, uint8_t *va, uint64_t len);
void event_notify_release(struct mem_seglist *sl, uint8_t *va, uint64_t len);
/* Whether the calling thread runs a memory event callback: a TLS load, for the allocation fast path. */
extern __thread unsigned event_cb_depth __tls_ie;
static inline bool event_in_callback(void)
{
	return event_cb_depth != 0;
}

/*
 * mem_flags_check() - -EINVAL, with its detail, for @flags iovm_dma_alloc()
 * refuses with @size (page sizes, a boundary below the size, a node); 0 otherwise.
 */
int mem_flags_check(const struct mem_space *ms, size_t size, uint32_t flags);

/* The shared heap serving @ms, or NULL. */
static inline const struct mem_shared *mem_shared_of(const struct mem_space *ms)
{
	return atomic_load_explicit(&ms->shared, memory_order_acquire);
}

/* Whether @p points into the shared heap @sh (NULL: none). */
static inline bool mem_shared_holds(const struct mem_shared *sh, const void *p)
{
	return sh && (uintptr_t)p - (uintptr_t)sh->va < sh->len;
}

/*
 * mem_dma_alloc_huge() - @size bytes of the context's own heap, from
 * hugepages only (its page sizes but 4 KiB, on its default node), zeroed
 * with @zero: memory at its host PA in host-PA mode. NULL with errno set
 * (ENOMEM when no hugepage is to be had). mem_dma_free_own() frees it,
 * as it frees any memory of the own heap, without the public call's
 * error detail.
 */
void *mem_dma_alloc_huge(struct mem_space *ms, size_t size, size_t align, bool zero);
int mem_dma_free_own(struct mem_space *ms, void *ptr);

/* iovm_dma_alloc() inside another public call: its detail names that call. */
void *mem_dma_alloc(struct iovm_ctx *ctx, size_t size, size_t align, uint32_t flags);
void event_destroy_all(struct mem_space *ms);
/* Route to @sh (or back, NULL), telling subscribers: the old heap's release, the new one's commit. */
int event_share_set(struct mem_space *ms, const struct mem_shared *sh);

/* zone.c */
void zone_destroy_all(struct mem_space *ms);

/* cbuf.c */
int cbuf_space_init(struct mem_space *ms);
void cbuf_space_destroy(struct mem_space *ms);


#endif /* IOVM_MEM_INTERNAL_H */
