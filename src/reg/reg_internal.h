/* SPDX-License-Identifier: MIT */
/*
 * reg_internal.h - what the files of src/reg share.
 *
 * Locks, in the order they nest:
 *   reg_space.lock -> iovm_mr.lock -> (the IOMMU's and phys's locks)
 * The monitor's reader thread takes none of them: it only reads events
 * into the ring (monitor.c says why). Key lookups take none either.
 */
#ifndef IOVM_REG_INTERNAL_H
#define IOVM_REG_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <iovm/reg.h>

#include "base/addr.h"
#include "base/compiler.h"
#include "base/itree.h"
#include "base/list.h"
#include "base/lock.h"
#include "reg/ranges.h"
#include "reg/reg.h"

struct iovm_ctx;
struct os_vma_info;
struct reg_monitor;
struct rc_region;

/* Keys: 20 bits of slot, 11 of generation, and one that tells a remote key from a local one. */
#define KEY_REMOTE 1u
#define KEY_GEN_SHIFT 1
#define KEY_GEN_BITS 11
#define KEY_SLOT_SHIFT (KEY_GEN_SHIFT + KEY_GEN_BITS)
#define KEY_SLOTS (1u << (32 - KEY_SLOT_SHIFT))
#define KEY_CHUNK 1024u
#define KEY_CHUNKS (KEY_SLOTS / KEY_CHUNK)

struct key_slot {
	_Atomic uint32_t lkey;              /* the live local key; 0: free */
	_Atomic(struct iovm_mr *) mr;
};

/* Slots reused first in, first out: a key comes back only after 2^31 registrations. */
struct key_table {
	_Atomic(struct key_slot *) chunks[KEY_CHUNKS]; /* read lock-free */
	uint32_t *free_fifo;   /* under reg_space.lock: free slot numbers */
	uint32_t fifo_head, fifo_len, fifo_cap;
	uint32_t nr_slots;     /* under reg_space.lock: slots made so far */
	uint16_t *gen;         /* under reg_space.lock: next generation per slot */
};

enum mr_state {
	MR_LIVE = 0,
	MR_DEAD = 1,  /* every page invalidated: keys refused */
	MR_GONE = 2,  /* deregistered */
};

struct iovm_mr {
	/*
	 * The registration cache's region this MR lives in, or NULL. A cache's
	 * MRs are embedded in its region structs, which live as long as the
	 * cache: set once when the struct is made, never written again
	 * (mr_init() clears only what follows), so that a put can tell a
	 * cache's MR from the caller's own without a lock, even after the MR
	 * was deregistered.
	 */
	struct rc_region *rc;
	struct reg_space *rs;
	struct iovm_domain *dom;
	struct itree_node node;   /* (start, end - start), in reg_space.mrs, under its lock */
	uintptr_t addr;           /* as registered */
	size_t len;
	uintptr_t start, end;     /* the pages: [start, end) */
	uint64_t npages;
	uint32_t access;
	uint32_t lkey, rkey;
	pa_t pa;                  /* the window's PA of start */
	iova_t iova;              /* IOVA of start */
	unsigned prot;            /* IOVM_MAP_* of the mapping */
	bool watched;             /* registered with the monitor's userfaultfd: its events invalidate it */
	bool monitored;           /* watched, and none of its pages can be replaced without an event */
	bool locked;              /* its valid pages are counted in reg_space.locked */
	bool eager;               /* counted in reg_space.eager_mrs */
	bool on_demand;           /* pages are pinned and mapped when devices fault on them */
	bool implicit;            /* the whole address space, by key only: its children hold the pages */
	struct iovm_mr *parent;   /* a child of an implicit MR: the MR its pages are reached by */
	struct imr_table *kids;   /* implicit: the children, made as devices reach their ranges */
	struct list_node ilink;   /* implicit: in reg_space.implicits, under its lock */
	_Atomic int state;        /* enum mr_state */
	struct itree_node inode;  /* (iova, end - start), in reg_space.by_iova, under its lock */
	/* On demand (odp.c), under reg_space.lock: */
	struct odp_chunk *chunks; /* one per ODP_CHUNK_PAGES pages, made at the first fault */
	bool holes;               /* not all mapped when registered (or changed before chunks): watch chunks first */
	unsigned refs;            /* resolvers working on it without the lock */
	uint64_t reg_begun;       /* reg_space.begun when its registration began */
	struct list_node mirrors; /* struct reg_mirror: told of pages going, under reg_space.lock */
	struct mr_async *async;   /* iovm_mr_reg_async(): its pinning (mr_async.c); set before publishing */
	bool pinning;             /* under reg_space.lock: its threads still pin (not dead at 0 valid pages) */

	struct mutex lock;     /* valid, nr_valid and the domain mapping */
	uint64_t *valid;          /* under lock: a bit per page, mapped in the domain */
	/*
	 * Under lock; pinned in the background only (iovm_mr_reg_async()): a
	 * bit per page an event took away, before its chunk was pinned or
	 * after; such a page is never mapped (NULL: none). What replaced it is
	 * not the memory that was registered.
	 */
	uint64_t *taken;
	uint64_t nr_valid;        /* under lock */
	/*
	 * A seqcount: odd while an invalidation runs, moved on by each. On-demand
	 * faults and cache hits read it around what they check.
	 */
	_Atomic uint64_t seq;

	/* Set before the MR is handed out, read-only after (backend.c): */
	const struct reg_backend *be; /* the domain's backend, when it has one */
	void *be_handle;              /* the device's registration; NULL once deregistered there */
	uint32_t be_lkey, be_rkey;    /* its keys, which the MR is known by */
};

/* The keys devices know @mr by: its backend's (a verbs device's), or iovm's own. */
static inline uint32_t mr_lkey_of(const struct iovm_mr *mr)
{
	return mr->be ? mr->be_lkey : mr->lkey;
}

static inline uint32_t mr_rkey_of(const struct iovm_mr *mr)
{
	return mr->be ? mr->be_rkey : mr->rkey;
}

/*
 * On-demand pages are pinned and mapped 64 KiB at a time: the prefetch
 * window of a fault, and the unit of eviction when the pin budget is
 * reached (least recently used first, with a second chance for chunks the
 * device accessed since they were last looked at).
 */
#define ODP_CHUNK_PAGES 16

struct odp_chunk {
	struct list_node lru;     /* in reg_space.lru while any of its pages may be pinned */
	struct iovm_mr *mr;
	bool linked;              /* on the LRU list */
	bool second_chance;       /* passed over once by eviction: accessed since */
	bool watched;             /* all of it was mapped, and watched, at its last fault */
	bool rewatch;             /* its mappings changed since (an unmap, a move): watch again */
	uint64_t asked;           /* reg_space.asked at its last page request; 0: prefetched only */
};

/*
 * An implicit MR (addr NULL, length SIZE_MAX) is one key for the whole user
 * address space, made of on-demand children of 64 MiB each, created the
 * first time a device reaches their range. 64 MiB: a child costs an IOVA
 * range, a window and, at its first fault, a 2 KiB valid bitmap and a
 * 1024-entry chunk array (some 40 KiB); a program's heap, stacks and
 * mappings spread over a few hundred such ranges at most. (mlx5 makes its
 * implicit children 1 GiB: its cost is per child, ours per page.) The
 * children are found lock-free through a two-level table, as SPDK's
 * translation map: the top level by 64 GiB, the leaf by 64 MiB.
 */
#define IMR_VA_BITS 47            /* x86-64 and arm64 user space with 4-level tables */
#define IMR_CHILD_SHIFT 26        /* 64 MiB */
#define IMR_LEAF_SHIFT 10         /* children per leaf: a 8 KiB leaf covers 64 GiB */
#define IMR_TOP (1u << (IMR_VA_BITS - IMR_CHILD_SHIFT - IMR_LEAF_SHIFT))
#define IMR_LEAF (1u << IMR_LEAF_SHIFT)
#define IMR_CHILD_SIZE (UINT64_C(1) << IMR_CHILD_SHIFT)
#define IMR_VA_END (UINT64_C(1) << IMR_VA_BITS)
#define IMR_TOP_IDX(va) ((va) >> (IMR_CHILD_SHIFT + IMR_LEAF_SHIFT))
#define IMR_LEAF_IDX(va) (((va) >> IMR_CHILD_SHIFT) & (IMR_LEAF - 1))

struct imr_table {
	/* Written under reg_space.lock (release), read lock-free by devices (acquire). */
	_Atomic(_Atomic(struct iovm_mr *) *) leaf[IMR_TOP];
	uint64_t nr_children;     /* under reg_space.lock */
};

/* An event of the memory monitor, as queued for the invalidator. */
struct mon_event {
	uint8_t kind;             /* UFFD_EVENT_* */
	bool source_kept;         /* UFFD_EVENT_REMAP: the source was still mapped when read (MREMAP_DONTUNMAP) */
	uint64_t start, len;      /* the range it takes away */
};

struct reg_space {
	struct iovm_ctx *ctx;
	struct mutex lock;     /* everything below that says so */
	struct itree mrs;         /* under lock: MRs by VA */
	struct itree by_iova;     /* under lock: MRs by IOVA (of any domain) */
	pthread_cond_t idle;      /* signalled, under lock, when an MR's refs drop */
	struct list_node lru;     /* under lock: chunks of on-demand MRs that hold pins */
	uint64_t lru_len;         /* under lock: chunks on @lru */
	uint64_t budget_pages;    /* the pin_budget option, in pages */
	uint64_t odp_pinned;      /* under lock: pages pinned for on-demand MRs */
	uint64_t asked;           /* under lock: chunks pinned for page requests so far (odp_chunk.asked) */
	struct key_table keys;    /* slots under lock; lookups lock-free */
	struct ranges locked;     /* under lock: mlock counts per page */
	struct reg_monitor *mon;  /* under lock: started with the first MR */
	struct list_node caches;  /* under lock: registration caches */
	struct list_node rc_chunks; /* under lock: region structs of destroyed caches, for the next (rcache.c) */
	struct list_node implicits; /* under lock: implicit MRs (in no tree: they have no range) */
	struct list_node backends;  /* under lock: struct reg_backend, the domains bound to one */
	struct list_node odp_fills; /* under lock: struct odp_filling, faults in that left the lock (odp.c) */
	bool mon_off;             /* under lock: the monitor cannot start here (no userfaultfd, not allowed) */
	bool mon_warned;          /* under lock: a failed start was logged (once per context) */
	/*
	 * How far the monitor is (monitor.c): a get or query that finds
	 * @unsettled non-zero waits, outside every lock, until the
	 * invalidator has finished each batch of events the reader had begun
	 * by then (reg_settle()): the application's munmap (or madvise,
	 * mremap) returns only once its event is read, so after it returns no
	 * lookup sees what it replaced. @unsettled and @begun are the
	 * reader's line (one load of it per get); @finished the
	 * invalidator's.
	 */
	_Atomic uint32_t unsettled __cacheline_aligned; /* batches begun, not finished: reader +, invalidator - */
	_Atomic uint64_t begun;       /* batches the reader and hooks began (closed the gate for) */
	_Atomic uint64_t finished __cacheline_aligned; /* of those, invalidated: the invalidator's */
	_Atomic uint32_t settle_waiters; /* threads in reg_settle_wait() */
	/*
	 * MRs a device reaches without the foreign gate (a backend's, a
	 * mirrored domain's: real hardware): while any lives, the hooks wake
	 * the invalidator at once (monitor.c).
	 */
	_Atomic uint32_t eager_mrs;
	/* The monitor, for reg_kick(): set once it runs, cleared before it stops. */
	_Atomic(struct reg_monitor *) kick_mon;
	struct mutex settle_lock;     /* the waits on @settled */
	pthread_cond_t settled;       /* broadcast, under settle_lock, when @finished moves and someone waits */
	/* Counters, single-writer or under lock, read racily. */
	_Atomic uint64_t nr_mrs, registered, deregistered, locked_bytes;
	_Atomic uint64_t invalidated_pages;
	_Atomic uint64_t odp_faults, odp_evicted, odp_prefetched; /* pages, but faults */
	_Atomic uint64_t odp_retries; /* faults started over: an invalidation came in between */
};

/* keys.c; alloc and free need reg_space.lock. */
void keys_init(struct key_table *t);
void keys_destroy(struct key_table *t);
int keys_alloc(struct key_table *t, struct iovm_mr *mr, uint32_t *lkey, uint32_t *rkey);
void keys_free(struct key_table *t, uint32_t lkey);
/* Lock-free: the MR a key names, or NULL; *remote tells which of its keys it is. */
struct iovm_mr *keys_lookup(struct key_table *t, uint32_t key, bool *remote);

/* pages.c */
/*
 * Invalidate the pages of every MR in (start, len), for an event of @kind
 * (UFFD_EVENT_*, or 0 for a lost one). Needs reg_space.lock.
 */
uint64_t mr_invalidate_range(struct reg_space *rs, uint64_t start, uint64_t len, unsigned kind);
/*
 * An event kind of the hooks' (not userfaultfd's): a madvise() that lets
 * pages go failed, having maybe let some go before the mapping it refused.
 * It refuses locked pages (MADV_DONTNEED, MADV_FREE, MADV_REMOVE): the
 * pages of an MR that locks them stay; those of any other go.
 */
#define MON_EVENT_REMOVE_UNLOCKED 0x40u
/* Invalidate every page of every watched MR (a lost event). Needs reg_space.lock. */
void mr_invalidate_all(struct reg_space *rs);
/*
 * Lock again every page registrations lock (reg_space.locked): the kernel
 * unlocked some of them behind our back (mremap(MREMAP_DONTUNMAP) unlocks
 * the whole mapping it moves from). Needs reg_space.lock.
 */
void mr_relock_all(struct reg_space *rs);
/* Lock and map, or unmap and unlock, pages [first, last] of @mr. Need reg_space.lock. */
int mr_lock_map(struct reg_space *rs, struct iovm_mr *mr, uint64_t first, uint64_t last);
uint64_t mr_drop_pages(struct reg_space *rs, struct iovm_mr *mr, uint64_t first, uint64_t last);
/*
 * A chunk [first, last] of a pinned MR locked outside the locks
 * (mr_async.c): mr_pin_count() counts it in reg_space.locked before it is
 * locked; mr_pin_map() maps it after (locking it again first if @relock),
 * or uncounts it on an error; mr_pin_uncount() uncounts (and unlocks what
 * nothing else holds). Need reg_space.lock.
 */
int mr_pin_count(struct reg_space *rs, struct iovm_mr *mr, uint64_t first, uint64_t last);
int mr_pin_map(struct reg_space *rs, struct iovm_mr *mr, uint64_t first, uint64_t last, bool relock);
void mr_pin_uncount(struct reg_space *rs, struct iovm_mr *mr, uint64_t first, uint64_t last);
/* Fault (start, len) in, for writing if @mr may be written: 0 or -EFAULT. No lock needed. */
int mr_populate(const struct iovm_mr *mr, uint64_t start, uint64_t len);
/*
 * Whether every page of [addr, addr+len) is valid, read without a lock: a
 * seqcount (mr->seq, odd while an invalidation runs) tells whether it held.
 */
bool mr_pages_valid(const struct iovm_mr *mr, uint64_t addr, uint64_t len);
/* mirror.c: tell @mr's mirrors that its pages in [start, end) go. Needs reg_space.lock. */
void mirrors_drop(struct iovm_mr *mr, uintptr_t start, uintptr_t end);

/* mr.c */
/* Deregister every MR (the context closes). */
void mr_teardown_all(struct reg_space *rs);
/*
 * Deregister; needs no lock held. With @may_fail, a device that refuses
 * its registration's end (backend.c) fails it, the MR whole; without, the
 * refusal is logged and the rest goes.
 */
int mr_dereg(struct iovm_mr *mr, bool may_fail);

/* mr.c, for implicit.c */
/* The memory monitor, started with the first registration; NULL without one. Needs reg_space.lock. */
struct reg_monitor *reg_monitor_of(struct reg_space *rs);
/*
 * mr_init() - make @mr (its rc aside) an MR of [addr, addr+len), not
 * published: 0 or -ENOMEM (then @mr needs no mr_fini()). mr_new() does it
 * in a new struct; mr_fini() undoes it, mr_free() also frees the struct of
 * an MR not embedded in a cache's region. No lock needed.
 */
int mr_init(struct iovm_mr *mr, struct iovm_domain *dom, uintptr_t addr, size_t len, uint32_t access);
struct iovm_mr *mr_new(struct iovm_domain *dom, uintptr_t addr, size_t len, uint32_t access);
void mr_fini(struct iovm_mr *mr);
void mr_free(struct iovm_mr *mr);
/*
 * mr_register() - check, pin, watch and publish an MR mr_init() made, as
 * iovm_mr_reg() does, once the invalidator has dealt with the events read
 * before (reg_settle(): the caller holds no lock the invalidator takes).
 * Takes reg_space.lock. On an error @mr is as mr_init() left it.
 */
int mr_register(struct iovm_mr *mr);
/*
 * Put @mr on the bus and in @dom, pinned MRs mapped, with keys if @keys,
 * in the space's trees; @vi: its mappings, NULL when not known. Needs
 * reg_space.lock. On an error @mr is as mr_new() made it.
 */
int mr_publish(struct reg_space *rs, struct iovm_mr *mr, const struct os_vma_info *vi, bool keys);
/* Take @mr out of the space and undo all it holds, then free it. Needs reg_space.lock. */
void mr_teardown(struct reg_space *rs, struct iovm_mr *mr);
/* The same, but @mr is left as mr_init() made it. Needs reg_space.lock. */
void mr_unpublish(struct reg_space *rs, struct iovm_mr *mr);

/* mr_async.c */
/* Stop and join the threads of every MR still pinning (the context closes). No lock held. */
void mr_async_stop_all(struct reg_space *rs);
/* Stop and join @mr's pinning threads (before it is deregistered), free what it took. No lock held. */
void mr_async_stop(struct iovm_mr *mr);
void mr_async_free(struct iovm_mr *mr);
/* For the tests: called by a pinning thread before each chunk. NULL in normal use. */
typedef void (*mr_async_test_hook)(struct iovm_mr *mr, uint64_t chunk);
extern _Atomic(mr_async_test_hook) mr_async_test_chunk;
/* Lock-free: whether @mr's backend registration is made (always, but while an async one pins). */
bool mr_async_backend_ready(const struct iovm_mr *mr);
/* Whether @mr's pinning was told to stop (for the tests' hook). */
bool mr_async_cancelled(const struct iovm_mr *mr);

/* backend.c */
/* Give @mr its domain's backend, if any, as it is published. Needs reg_space.lock. */
void backend_adopt(struct reg_space *rs, struct iovm_mr *mr);
/* Register published @mr through its backend; 0 without one. No lock held. */
int backend_register(struct iovm_mr *mr);
/* Whether implicit @mr is registered on its device child by child (a device without implicit ODP). */
bool backend_by_children(const struct iovm_mr *mr);
/* Deregister it there, before the rest of it goes, whatever the device says. Needs reg_space.lock. */
void backend_release(struct reg_space *rs, struct iovm_mr *mr);
/* Deregister it there, or say why not (the MR stays the device's). Needs reg_space.lock. */
int backend_deregister(struct reg_space *rs, struct iovm_mr *mr);
/* iovm_mr_advise() of an MR with a backend. No lock held. */
int backend_advise(struct iovm_mr *mr, uintptr_t addr, size_t len, uint32_t flags);

/* implicit.c */
int implicit_reg(struct iovm_domain *dom, uint32_t access, struct iovm_mr **out);
/*
 * Deregister the children of implicit @mr from its device, where it is
 * registered there child by child, in address order; at the first the
 * device refuses, stop and return its error: the children before it are
 * gone, it and those after stay. Needs reg_space.lock.
 */
int implicit_deregister_children(struct reg_space *rs, struct iovm_mr *mr);
/* Deregister an implicit MR and its children. Needs reg_space.lock. */
void implicit_teardown(struct reg_space *rs, struct iovm_mr *mr);
/* The child holding @va, made now if need be. Needs reg_space.lock. */
int implicit_child(struct reg_space *rs, struct iovm_mr *mr, uint64_t va, struct iovm_mr **child);
/* Lock-free: the child holding @va, or NULL. */
struct iovm_mr *implicit_child_find(const struct iovm_mr *mr, uint64_t va);
int implicit_query(struct iovm_mr *mr, struct iovm_mr_info *info);
int implicit_advise(struct iovm_mr *mr, uintptr_t addr, size_t len, uint32_t flags);
/* The keys of [addr, addr+len) of implicit @mr: its own, or its child's on the device (made if need be). */
int implicit_keys(struct iovm_mr *mr, uintptr_t addr, size_t len, struct iovm_mr_keys *keys);

/* rcache.c: an invalidation of @kind hit a cached region. Lock-free. */
void rcache_count_invalidation(struct rc_region *r, unsigned kind);
/* The context closes: every cache goes, with what it keeps. */
void rcache_destroy_all(struct reg_space *rs);
/*
 * For the tests: called by a miss, cache lock held, as soon as its new
 * region can be found by lock-free lookups. NULL in normal use.
 */
typedef void (*rcache_test_hook)(struct iovm_rcache *c);
extern _Atomic(rcache_test_hook) rcache_test_published;

/* odp.c */
/*
 * For the tests: called by a fault between faulting pages in and taking the
 * lock again, where an invalidation may slip in. NULL in normal use.
 */
typedef void (*odp_test_hook)(struct iovm_mr *mr, uint64_t first, uint64_t last);
extern _Atomic(odp_test_hook) odp_test_between;
int odp_resolve(void *arg, struct iovm_domain *dom, iova_t iova, unsigned access);
/*
 * Pin and map pages [first, last] of on-demand @mr: for a device's page
 * request (@asked), or a prefetch, which never evicts what recent page
 * requests pinned (odp.c's evict()). Needs reg_space.lock, which it drops
 * while faulting the pages in. -ENOENT when the MR went meanwhile,
 * -EFAULT when the memory is not there (or cannot be watched), -EAGAIN
 * when invalidations kept interrupting.
 */
int odp_fill(struct reg_space *rs, struct iovm_mr *mr, uint64_t first, uint64_t last, bool asked);
/* An invalidation of pages [first, last] of @mr: the faults in them under way retry (odp.c). Needs reg_space.lock. */
void odp_fills_hit(struct reg_space *rs, const struct iovm_mr *mr, uint64_t first, uint64_t last);
/* Prefetch [addr, addr+len) of a (not implicit) on-demand MR. Needs reg_space.lock. */
int odp_advise(struct reg_space *rs, struct iovm_mr *mr, uintptr_t addr, size_t len, bool fault);
/* The process's mappings of pages [first, last] changed (unmapped, moved). Needs reg_space.lock. */
void odp_mappings_changed(struct iovm_mr *mr, uint64_t first, uint64_t last);
/* The MR goes: its chunks leave the LRU. Needs reg_space.lock. */
void odp_forget(struct reg_space *rs, struct iovm_mr *mr);

/* monitor.c, monitor_batch.c (monitor_test_hold and the synchronous path) */
/*
 * For the tests: called by the invalidator each time it wakes, before it
 * takes the events, so that a test can hold it while the ring overflows.
 * NULL in normal use.
 */
typedef void (*monitor_test_hook)(void);
extern _Atomic(monitor_test_hook) monitor_test_hold;
/*
 * How long a producer waits for room in a full event ring before the
 * event is dropped (every monitored registration then invalidated:
 * monitor_batch.c, ring_wait()); that long only where the invalidator
 * waits for that producer. monitor_push_wait_ns: MON_PUSH_WAIT_NS, but
 * for the tests, which hold the invalidator as long as they need, or
 * want the drop at once (0).
 */
#define MON_PUSH_WAIT_NS (UINT64_C(1000) * 1000000)
extern _Atomic uint64_t monitor_push_wait_ns;
/*
 * How long a hook waits for the reader to mark the moves it read
 * (reg_monitor.reading): far more than that takes. monitor_reading_wait_ns:
 * MON_READING_WAIT_NS, but for the tests, which hold the reader there
 * (monitor_test_reading, called between its read and its marks; NULL in
 * normal use).
 */
#define MON_READING_WAIT_NS (UINT64_C(100) * 1000000)
extern _Atomic uint64_t monitor_reading_wait_ns;
extern _Atomic(monitor_test_hook) monitor_test_reading;
int monitor_start(struct reg_space *rs, struct reg_monitor **out);
void monitor_stop(struct reg_monitor *m);
/*
 * Watch (start, len) (page aligned): 0, or an error when the kernel cannot
 * (the range is not monitored). @sysv: whether System V shared memory is in
 * there, when the caller read the maps already; -1 when not known.
 */
int monitor_watch(struct reg_monitor *m, uint64_t start, uint64_t len, int sysv);
void monitor_stats(struct reg_monitor *m, struct iovm_reg_stats *st);
/*
 * The synchronous path (hooks.c), for a call that takes (start, len) away
 * (page aligned): whether @m may watch some of it (a filter: false only
 * when it watches none); before the call, take the range out of the
 * userfaultfd and close the gate as the reader does; after it, queue the
 * event and wake the invalidator. Never allocate, take no lock the
 * application could hold.
 */
bool monitor_may_watch(struct reg_monitor *m, uint64_t start, uint64_t len);
uint64_t monitor_hook_before(struct reg_monitor *m, uint64_t start, uint64_t len);
/*
 * After the hook's call: queue the event it kept from userfaultfd (none
 * for @len 0); @gone: the range left the userfaultfd's watch for good
 * (its pages unmapped), else it was watched again; @source_kept:
 * mremap(MREMAP_DONTUNMAP)'s.
 */
void monitor_hook_push(struct reg_monitor *m, unsigned kind, uint64_t start, uint64_t len, bool gone, bool source_kept);
/* ... and let the hook's batch go to the invalidator. */
void monitor_hook_done(struct reg_monitor *m, uint64_t ticket);
/* Both: one event, its range gone from the watch. */
void monitor_hook_after(struct reg_monitor *m, uint64_t ticket, unsigned kind, uint64_t start, uint64_t len,
			bool source_kept);
/*
 * A range the hook took from userfaultfd that the call left mapped, back
 * in its watch (page by page where whole it cannot be, up to 2 MiB: the
 * pages not watched again are invalidated as unmapped, here). False: a
 * larger range not watched again, which the caller invalidates.
 */
bool monitor_hook_rewatch(struct reg_monitor *m, uint64_t start, uint64_t len);
/* Events queued by the synchronous path so far (read racily). */
uint64_t monitor_hooked(struct reg_monitor *m);

/* hooks.c: libc's calls that take memory away, patched to call the monitors first. */
#define HOOK_MUNMAP 1u
#define HOOK_MADVISE 2u
#define HOOK_MREMAP 4u
#define HOOK_MMAP 8u /* MAP_FIXED */
#define HOOK_BRK 16u
/* Patch libc once (unless IOVM_NO_HOOKS is set) and let @m's hooks run: a slot id, or -errno. */
int hooks_add(struct reg_monitor *m);
/* Stop @id's hooks, and wait until none uses its monitor. */
void hooks_del(int id);
/* HOOK_* of the functions patched. */
unsigned hooks_installed(void);
/* For tests and benchmarks: hooks off (userfaultfd alone) or on again. */
void hooks_set_enabled(bool on);
/* Wait until the invalidator finished every batch of events begun by now. Holding no lock of iovm's. */
void reg_settle_wait(struct reg_space *rs);

/*
 * reg_settle() - before a lookup that must not see memory an
 * application's call already took away: one load while the monitor is
 * idle. Holding no lock of iovm's (the invalidator takes them).
 */
static inline void reg_settle(struct reg_space *rs)
{
	if (__builtin_expect(atomic_load_explicit(&rs->unsettled, memory_order_acquire) != 0, 0))
		reg_settle_wait(rs);
}

#endif /* IOVM_REG_INTERNAL_H */
