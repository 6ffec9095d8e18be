/* SPDX-License-Identifier: MIT */
/*
 * iommu_internal.h - the structures the files of src/iommu share.
 *
 * Locks, in the order they nest:
 *   iommu_space.lock -> iovm_domain.flush_lock -> iovm_domain.lock -> iommu_client.lock
 *   The per-thread cache registry (base/tlscache.c) comes after flush_lock:
 *   nothing under it takes flush_lock.
 *   A stage 2's lock comes before the locks of the nested domains over it.
 *   iovm_domain.fault_lock and shadow.lock are leaves.
 * The device side (iommu_access) takes none of them on its fast path: it
 * runs inside an epoch section, and writers wait for sections to end.
 *
 * Addresses: every interface inside src/iommu takes them typed (iova_t,
 * pa_t, gpa_t), and a range of them as (start, len) in bytes, half-open
 * [start, start + len): never an inclusive last address, never page
 * numbers; those are for the arithmetic inside a function (and for packed
 * words that hold an address with other bits: IOTLB tags, heap_iova).
 */
#ifndef IOVM_IOMMU_INTERNAL_H
#define IOVM_IOMMU_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include <iovm/iommu.h>

#include "base/addr.h"
#include "base/epoch.h"
#include "base/list.h"
#include "base/lock.h"
#include "base/radix.h"
#include "base/rbtree.h"
#include "base/tlscache.h"
#include "iommu/iommu.h"
#include "iommu/iotlb.h"
#include "iommu/iova.h"
#include "iommu/pgtable.h"
#include "mem/mem.h"

struct iovm_ctx;
struct iovm_mem_sub;

struct iommu_space {
	struct iovm_ctx *ctx;
	struct epoch *epoch;       /* the context's device-side sections */
	bool oracle;               /* option oracle=on: check every device access */
	_Atomic uint32_t next_client_id;
	struct mutex lock;      /* domains, the flusher */
	struct list_node domains;  /* under lock */
	pthread_cond_t flusher_cond;
	pthread_t flusher;         /* started with the first deferred domain */
	bool flusher_running;      /* under lock */
	bool flusher_stop;         /* under lock */
	_Atomic bool flusher_started; /* the thread runs: flusher_kick() returns after it */
	/* Set by the flusher while it watches a deadline: unmaps need not wake it. */
	_Atomic bool flusher_armed;
	_Atomic(iommu_resolver_fn) resolver; /* set once, before devices run */
	void *resolver_arg;
};

/* A device, as the IOMMU sees it: its domains by PASID, and its IOTLBs. */
struct iommu_client {
	struct iommu_space *is;
	uint32_t id;
	struct radix pasids;       /* pasid -> struct iovm_domain *; read lock-free */
	struct mutex lock;      /* iotlbs, and writes of pasids */
	struct list_node iotlbs;   /* under lock */
	bool hidden;               /* iommu_client_hide(): set before its first attach */
};

/* A (client, PASID) a domain is attached for. */
struct attachment {
	struct list_node link;     /* in iovm_domain.attachments, under its lock */
	struct iommu_client *client;
	uint32_t pasid;
};

/* A piece an unmap took away. */
struct unmapped {
	iova_t iova;
	pa_t pa;      /* PA_INVALID once it is known not to be pinned */
	uint64_t len;
	bool keep_iova; /* a follow-heap window's (follow.c): its flush frees no IOVA */
};

struct fault_ring {
	struct iovm_fault *slots; /* depth entries */
	unsigned depth, head, count;
};

/* The oracle's shadow: what is mapped, kept apart from the page table. */
struct shadow_range {
	struct rb_node rb;
	iova_t iova;
	uint64_t len;
	pa_t pa;      /* what the page table gives: a GPA in a nested domain's stage 1 */
	uint32_t prot;
};

/*
 * Devices check their accesses against the shadow under its lock, inside
 * their epoch section, and the monitor waits for those sections before it
 * lets a fork() go on, which holds malloc's locks meanwhile: so nothing is
 * allocated or freed under the lock. Nodes come from @spare, filled before.
 */
struct shadow {
	struct mutex lock;
	struct rb_root live;        /* under lock: mapped */
	struct rb_root pending;     /* under lock: unmapped, awaiting the flush */
	struct shadow_range *spare; /* under lock: unused nodes, linked by rb.left */
	uint64_t nspare;            /* under lock: how many */
};

struct iovm_domain {
	struct iommu_space *is;
	struct iovm_ctx *ctx;
	struct list_node link;    /* in iommu_space.domains, under its lock */
	enum iovm_domain_type type;
	uint32_t flags;
	uint64_t limit;           /* IOVAs are below it */
	/*
	 * Devices read the fields above and the page table's root at every
	 * IOTLB miss; the CPU writes the allocator and what follows at maps
	 * and unmaps: on lines of their own (the domain is line-aligned).
	 */
	struct io_pgtable pt;     /* every type but identity */
	/*
	 * A domain shared with other processes (iommu_domain_create_shared()):
	 * its IOVAs, what it may map, and the invalidation of other processes'
	 * devices are the sharer's; NULL for the process's own.
	 */
	const struct iommu_shared_ops *shared_ops;
	void *shared_arg;
	/*
	 * A shared domain's census of its leaves (iovm_domain_stats()) walks
	 * inside a section of the context's epoch, through a reader of its
	 * own, added with the domain: adding one per call would take the
	 * epoch's lock, which every invalidation holds while it waits, and a
	 * caller polling stats kept other processes' unmaps waiting for it.
	 */
	struct mutex stats_lock;
	struct epoch_reader stats_reader; /* in the epoch's list while the domain is shared; under stats_lock */
	struct iova_alloc iova __cacheline_aligned; /* managed and nested domains */
	bool has_iova;
	/*
	 * Two-stage translation. A nested domain's page table gives guest
	 * physical addresses, which @parent (a guest domain: its stage 2)
	 * translates; both fixed at creation. A guest domain lists the nested
	 * domains over it, so that an unmap in stage 2 reaches the IOTLB
	 * entries they cached through it.
	 */
	struct iovm_domain *parent;
	struct list_node children;   /* guest domains: under lock */
	struct list_node child_link; /* nested domains: in parent->children, under the parent's lock */
	bool owned;                  /* guest domains: only the guest destroys it */

	struct mutex lock;     /* attachments, the fault handler */
	struct list_node attachments; /* under lock */
	unsigned nr_attached;     /* under lock */
	unsigned nr_hidden;       /* under lock: of nr_attached, hidden clients' (iommu_client_hide()) */
	_Atomic unsigned reg_users; /* registrations and registration caches on it (iommu_domain_use()) */
	iovm_fault_fn fault_fn;   /* under lock */
	void *fault_arg;          /* under lock */
	iommu_resolver_fn resolver; /* under lock: this domain's own (iommu_domain_set_resolver()) */
	void *resolver_arg;       /* under lock */

	struct mutex fault_lock;
	struct fault_ring faults;      /* under fault_lock */
	uint64_t faults_seen, faults_dropped; /* under fault_lock */

	/* Deferred invalidation (flushq.c): a ring per unmapping thread. */
	struct mutex flush_lock;    /* flushes, and the list of rings */
	struct list_node fq_rings;     /* under flush_lock: struct fq_ring */
	struct tls_owner fq_owner;     /* each thread finds its ring through it */
	bool fq_ready;                 /* fq_owner registered */
	unsigned flush_batch;          /* entries a ring holds before its thread flushes */
	uint64_t flush_timeout_ns;

	/* Following the heap. */
	struct iovm_mem_sub *sub;
	/*
	 * Per page: IOVA + 1, or 0. A packed word (an address and a "mapped"
	 * state in one atomic load), so an integer, not an iova_t.
	 */
	_Atomic(_Atomic uint64_t *) heap_iova[MEM_SLOTS];
	uint64_t heap_iova_pages[MEM_SLOTS];
	/* Per slot: the IOVA window its pages map into (follow.c), + 1; 0: none. Under the slot's list lock. */
	uint64_t heap_window[MEM_SLOTS];
	bool heap_window_queued[MEM_SLOTS]; /* deferred unmaps of the window may await a flush; same lock */
	/*
	 * The heap shared with other processes (iovm/mp.h): one IOVA range for
	 * all of it, where each parcel is mapped while it has memory (its
	 * events). The range's base plus one (0: none yet), read lock-free by
	 * iovm_dma_iova(); written by the events, under the heap's lock.
	 */
	_Atomic uint64_t shared_iova;
	uint64_t shared_len;
	bool shared_queued;          /* a parcel of it released into the flush queue since the last flush */

	struct shadow shadow;     /* the oracle's */
	/* A shared domain's shadow (iommu_shared_ops.shadow): a word per 4 KiB page of IOVA from sshadow_base. */
	_Atomic uint32_t *sshadow;
	uint64_t sshadow_base, sshadow_pages, sshadow_pa;

	/* A mirror (mirror.c); set and cleared while no map or unmap runs. */
	const struct iommu_mirror_ops *mirror;
	void *mirror_arg;
	struct iova_range *mirror_reserved; /* IOVAs reserved because the mirror cannot map them */
	unsigned nr_mirror_reserved, cap_mirror_reserved;

	_Atomic uint64_t strict_invalidations __cacheline_aligned, flushes, flushed_unmaps;
	/* Counted before an unmap clears a PTE: a fault it causes reads the count after it (iommu_unmaps_begun()). */
	_Atomic uint64_t unmaps_begun;
	_Atomic uint64_t oracle_checks, oracle_stale, oracle_violations;
};

/* IOVA 0 stays unmapped (managed, VA and nested domains), so that a NULL device address faults. */
#define MANAGED_IOVA_BASE SZ_4K

/* Whether [start, start+len) is empty or runs past 2^64 (ending exactly at 2^64 is fine). */
static inline bool range_bad(uint64_t start, uint64_t len)
{
	return !len || len - 1 > UINT64_MAX - start;
}

/*
 * Two-stage translation reads one kind of address as another, at these
 * named places only. A nested domain's stage 1 maps IOVAs to guest
 * physical addresses, which its page table, its shadow and its walks hold
 * where a single-stage domain's hold PAs.
 */
static inline pa_t stage1_out(gpa_t gpa)
{
	return pa_make(gpa_val(gpa));
}

static inline gpa_t stage1_gpa(pa_t out)
{
	return gpa_make(pa_val(out));
}

/* client.c */
struct iovm_domain *client_domain(const struct iommu_client *c, uint32_t pasid);
/*
 * Invalidate @dom's entries in the IOTLBs of the devices attached to it;
 * for a guest domain, every entry cached through it by the nested domains
 * over it too. Takes @dom's lock.
 */
void domain_invalidate(struct iovm_domain *dom, iova_t iova, uint64_t len, bool all);

/* domain.c */
/* Any domain, a guest's stage 2 too: -EBUSY while attached or under nested domains. */
int domain_destroy(struct iovm_domain *dom);

/* map.c, unmap.c */
/* Give back IOVAs the domain's allocator gave (none in a domain without one). */
void domain_iova_give(struct iovm_domain *dom, iova_t iova, uint64_t len);
/* domain_iova_settled() - the map that took [iova, +len) is done with them (iommu_shared_ops.iova_settled()). */
void domain_iova_settled(struct iovm_domain *dom, iova_t iova, uint64_t len);
int domain_unmap(struct iovm_domain *dom, iova_t iova, uint64_t len, bool *any);
/* How to unmap: strict even in a deferred domain; keep the IOVAs allocated; not in the mirror. */
#define UNMAP_STRICT (1u << 0)
#define UNMAP_KEEP_IOVA (1u << 1)
#define UNMAP_NO_MIRROR (1u << 2)
int domain_unmap_how(struct iovm_domain *dom, iova_t iova, uint64_t len, unsigned how, bool *any);
/*
 * Free the tables a map detached (empty ones a huge leaf replaced, its
 * own on a rollback): after a grace period, as walkers may be in them.
 * No device caches their leaves: an empty table's were invalidated when
 * they were unmapped (a deferred unmap's by the flush that must come
 * before its IOVAs are mapped again).
 */
void domain_retired_free(struct iovm_domain *dom, struct pt_retired *r);
/*
 * Undo what a map just put in iovm's table, when the mirror refused it:
 * a strict unmap (a device may already have used the mapping), keeping
 * the IOVAs, not telling the mirror.
 */
void domain_undo_map(struct iovm_domain *dom, iova_t iova, uint64_t len);
/*
 * A shared domain's hold on [pa, +len) for entries about to name it, and
 * its release (iommu_shared_ops.pa_hold, .pa_put); nothing for the others.
 */
int domain_pa_hold(struct iovm_domain *dom, iova_t iova, pa_t pa, uint64_t len);
void domain_pa_put(struct iovm_domain *dom, iova_t iova, pa_t pa, uint64_t len);
/* An unmapped piece, once no device reaches it: its hold (shared domains), and its IOVAs unless @keep_iova. */
void domain_unmapped_release(struct iovm_domain *dom, iova_t iova, pa_t pa, uint64_t len, bool keep_iova);
/*
 * Map [pa, +len) at *@iova: one the domain chooses (IOVM_ADDR_INVALID) or
 * the caller's. A nested domain's @pa is a guest physical address
 * (stage1_out()).
 */
int domain_map_pa(struct iovm_domain *dom, iova_t *iova, pa_t pa, const void *where, uint64_t len,
		  unsigned prot);
/*
 * Map the process's memory [va, +len) at [iova, +len): its physically
 * contiguous runs into iovm's table, each with the largest leaves it
 * allows, and the whole range to a mirror as one (the pointer is
 * contiguous). All or nothing: on failure what it mapped is unmapped again;
 * the IOVAs stay the caller's to give back.
 */
int domain_map_va(struct iovm_domain *dom, iova_t iova, const void *va, uint64_t len, unsigned prot);

/* flushq.c */
int flushq_init(struct iovm_domain *dom);
int flushq_add(struct iovm_domain *dom, const struct unmapped *pieces, unsigned n);
void flushq_flush(struct iovm_domain *dom);
void flushq_destroy(struct iovm_domain *dom);
uint64_t flushq_deadline(struct iovm_domain *dom);
/*
 * Before mapping [iova, iova+len) in a domain without an IOVA allocator (a
 * VA domain, where the caller chooses every IOVA): if part of it awaits a
 * deferred flush, flush now, so that no device keeps the old translation
 * of an IOVA mapped anew. Managed domains need none: their allocator
 * refuses quarantined IOVAs, and a map at a chosen IOVA flushes then.
 */
void flushq_unquarantine(struct iovm_domain *dom, iova_t iova, uint64_t len);
/* Flushes, unmaps they covered, unmaps queued over all threads: one consistent snapshot. */
void flushq_stats(struct iovm_domain *dom, struct iovm_domain_stats *st);
void flusher_kick(struct iommu_space *is);

/* fault.c */
int fault_ring_init(struct fault_ring *r, unsigned depth);
void fault_record(struct iovm_domain *dom, struct iovm_fault *f);

/* follow.c */
int follow_heap(struct iovm_domain *dom);
void unfollow_heap(struct iovm_domain *dom);

/*
 * mirror.c: a batch gathers ranges as iovm's table gets them, in increasing
 * IOVA order, and hands the mirror each run contiguous in IOVA and process
 * address when the next range does not extend it. @where is the process's
 * address of the memory when the caller knows it (NULL: the bus's mapping
 * of @pa). Without a mirror, all
 * three do nothing. mirror_batch_undo() unmaps from the mirror what the
 * batch gave it (iovm's table is the caller's to unwind).
 */
struct mirror_batch {
	iova_t iova;    /* the run being gathered: [iova, +len) */
	uint64_t len;
	uint8_t *va;
	bool write;
	iova_t first;   /* what the mirror was given: [first, +given) */
	uint64_t given;
};
int mirror_batch_add(struct iovm_domain *dom, struct mirror_batch *b, iova_t iova, pa_t pa, const void *where,
		     uint64_t len, bool write);
int mirror_batch_end(struct iovm_domain *dom, struct mirror_batch *b);
void mirror_batch_undo(struct iovm_domain *dom, struct mirror_batch *b);
/* pt_map() and the mirror's map of one range, undone together on failure. */
int domain_pt_map(struct iovm_domain *dom, iova_t iova, pa_t pa, const void *where, uint64_t len, unsigned prot);
/* After pt_unmap(): the mirror's unmap of the range. */
void domain_mirror_unmap(struct iovm_domain *dom, iova_t iova, uint64_t len);
/* At a deferred flush (flush_lock held): the mirror's unmap of the pieces, merged where adjacent. */
void mirror_unmap_pieces(struct iovm_domain *dom, const struct unmapped *p, unsigned n);

/* shadow.c */
void shadow_init(struct shadow *s);
void shadow_destroy(struct shadow *s);
/*
 * Around every page-table map: shadow_map_begin() records the mapping
 * before devices can see it (false when it overlaps a live one: not
 * recorded), shadow_map_end() is told whether the map went in.
 */
bool shadow_map_begin(struct iovm_domain *dom, iova_t iova, uint64_t len, pa_t pa, uint32_t prot);
void shadow_map_end(struct iovm_domain *dom, iova_t iova, uint64_t len, pa_t pa, uint32_t prot, bool begun,
		    bool mapped);
/* The same for @n pages at consecutive IOVAs, at the PAs @pas gives. */
bool shadow_map_pages_begin(struct iovm_domain *dom, iova_t iova, const pa_t *pas, unsigned n, uint32_t prot);
void shadow_map_pages_end(struct iovm_domain *dom, iova_t iova, const pa_t *pas, unsigned n, uint32_t prot,
			  bool begun, bool mapped);
void shadow_unmap(struct iovm_domain *dom, const struct unmapped *p, bool pending);
void shadow_flushed(struct iovm_domain *dom, const struct unmapped *p);
void shadow_check(struct iovm_domain *dom, iova_t iova, uint64_t len, pa_t pa, unsigned access);
/* What the shadow maps @iova to, live: 0, or -ENOENT. */
int shadow_lookup(struct iovm_domain *dom, iova_t iova, pa_t *pa);

#endif /* IOVM_IOMMU_INTERNAL_H */
