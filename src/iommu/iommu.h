/* SPDX-License-Identifier: MIT */
/*
 * iommu.h - the software IOMMU, as the layers above it use it: the context
 * creates its IOMMU space; a device is an IOMMU client with IOTLBs, and
 * reaches memory only through iommu_access().
 */
#ifndef IOVM_IOMMU_IOMMU_H
#define IOVM_IOMMU_IOMMU_H

#include <stdbool.h>
#include <stdint.h>

#include <iovm/iommu.h>

#include "base/addr.h"

struct iovm_ctx;
struct iommu_space;
struct iommu_client;
struct iommu_iotlb;
struct epoch;

/* @epoch: the context's device-side sections. */
int iommu_create(struct iovm_ctx *ctx, struct epoch *epoch, bool oracle, struct iommu_space **out);
/* Stops the flusher and destroys the domains left. */
void iommu_destroy(struct iommu_space *is);

/* A device's side of the IOMMU; it embeds a client. */
int iommu_client_create(struct iommu_space *is, struct iommu_client **out);
/* Detaches every domain. No access may be running. */
/*
 * iommu_client_hide() - @c is the domain's own, not the application's (a
 * shared domain's engine that answers other processes' accesses): its
 * attachment does not keep iovm_domain_destroy() from going on; the
 * domain's quiesce() detaches it. Before its first attach.
 */
void iommu_client_hide(struct iommu_client *c);
void iommu_client_destroy(struct iommu_client *c);
uint32_t iommu_client_id(const struct iommu_client *c);
int iommu_attach(struct iommu_client *c, struct iovm_domain *dom, uint32_t pasid);
int iommu_detach(struct iommu_client *c, uint32_t pasid);
struct iovm_domain *iommu_client_domain(const struct iommu_client *c, uint32_t pasid);

/* An IOTLB: one per engine thread (queue), with its device-side epoch record. */
int iommu_iotlb_create(struct iommu_client *c, struct iommu_iotlb **out);
void iommu_iotlb_destroy(struct iommu_iotlb *t);
void iommu_iotlb_counters(const struct iommu_iotlb *t, uint64_t *hits, uint64_t *misses);

/*
 * Device-side sections: every iommu_access(), and every use of the memory it
 * returns, happens between iommu_enter() and iommu_exit(). Writers (unmaps,
 * flushes, bank releases) wait for sections that began before them.
 */
void iommu_enter(struct iommu_iotlb *t);
void iommu_exit(struct iommu_iotlb *t);
/*
 * iommu_quiesce() - inside a section, between two units of work (two
 * descriptors): when a writer waits, leave the section and enter again, so
 * that it waits for one unit rather than the whole section. Returns true
 * when it did: nothing translated before may be used again.
 */
bool iommu_quiesce(struct iommu_iotlb *t);

/* A translated stretch of memory. */
struct iommu_span {
	uint8_t *ptr;  /* where the CPU reaches it */
	uint64_t len;  /* bytes from ptr within one leaf (and one bank) */
	pa_t pa;
	/*
	 * enum phys_reach (phys_bus_map()). The application's memory
	 * (PHYS_REACH_FOREIGN) may be unmapped under the device: reach it under
	 * a guard, and not while the foreign gate is closed. Another process's
	 * (PHYS_REACH_REMOTE): ptr is its VA, reached through its memory file.
	 * Another process's registration in a shared domain
	 * (PHYS_REACH_DELEGATED): ptr is NULL; iommu_delegate() moves bytes.
	 */
	uint8_t reach;
};

/*
 * iommu_access() - translate @iova of @pasid's domain for an @access
 * (IOVM_MAP_READ or IOVM_MAP_WRITE), through the IOTLB, setting the leaf's
 * accessed and dirty bits. On a fault, fills @f and returns -EFAULT; the
 * caller reports it (iommu_fault_report()) unless it gets it resolved.
 */
int iommu_access(struct iommu_iotlb *t, uint32_t pasid, iova_t iova, unsigned access, struct iommu_span *s,
		 struct iovm_fault *f);

/*
 * iommu_access_aside() - iommu_access() that leaves the IOTLB's last hits
 * (which iommu_access_hot() looks at) as they were: for the engine's own
 * rings, translated once per section between the data's accesses, which
 * would otherwise find the hints on the rings' pages.
 */
int iommu_access_aside(struct iommu_iotlb *t, uint32_t pasid, iova_t iova, unsigned access, struct iommu_span *s,
		       struct iovm_fault *f);

/*
 * iommu_access_run() - iommu_access(), then, while the span is shorter
 * than @want, the leaves that follow it as long as they continue it in
 * iovm's own memory (PHYS_REACH_OWN) at consecutive PAs and CPU pointers:
 * one span for a page-contiguous run, copied in one piece. A following
 * leaf that faults or does not continue the run ends it unreported (the
 * caller's next access there finds the fault, at its exact IOVA). Each
 * leaf is translated, checked and marked as iommu_access() does it.
 */
int iommu_access_run(struct iommu_iotlb *t, uint32_t pasid, iova_t iova, unsigned access, uint64_t want,
		     struct iommu_span *s, struct iovm_fault *f);

/* iommu_fault_report() - record a fault in its domain's fault queue and counters. */
void iommu_fault_report(struct iommu_client *c, struct iovm_fault *f);

/*
 * A resolver: the layer above that maps what devices fault on, on demand
 * (on-demand registrations), as a device's page request is answered. It
 * returns 0 when the fault is resolved (the access is retried), -ENOENT
 * when the address is not its to resolve, another error when it is and
 * cannot be. Called outside device-side sections.
 */
typedef int (*iommu_resolver_fn)(void *arg, struct iovm_domain *dom, iova_t iova, unsigned access);

/* Set once, before any device runs. */
void iommu_set_resolver(struct iommu_space *is, iommu_resolver_fn fn, void *arg);

/*
 * iommu_domain_set_resolver() - a resolver of @dom's own (NULL: none), asked
 * about not-present faults in @dom that the space's resolver says are not
 * its (-ENOENT): a device process's mirror of a client's registrations.
 * Set before devices fault in @dom, or under its traffic: under its lock.
 */
void iommu_domain_set_resolver(struct iovm_domain *dom, iommu_resolver_fn fn, void *arg);
/*
 * The most one delegated span asks for: a span of another process's
 * registration runs past its leaf over the leaves after it that map the
 * same registration on (span_delegated()), so that one ask moves up to
 * this many bytes where a page at a time paid a round trip per 4 KiB.
 */
#define IOMMU_DELEGATE_SPAN 16384u

/* iommu_delegate()'s operations. */
enum iommu_delegate_op {
	IOMMU_DELEGATE_READ = 1,  /* @len bytes at @iova into @buf */
	IOMMU_DELEGATE_WRITE = 2, /* @len bytes of @buf to @iova */
	IOMMU_DELEGATE_PROBE = 3, /* whether @iova's page is there to be written: no byte moves */
	IOMMU_DELEGATE_PROBE_READ = 4, /* ... to be read */
};

/*
 * iommu_delegate() - move bytes of another process's registration in
 * @pasid's shared domain (a span iommu_access() said is
 * PHYS_REACH_DELEGATED): that process's engine does it, through its
 * own translation, gate and page requests (a probe of a page not
 * present is its page request: an on-demand registration's first
 * touch), and answers. Outside a
 * section: the answer may wait for that process's invalidations, which
 * wait for this process's sections. The bytes done (*@done, at most
 * @len; a read or write stops at the first it cannot do), then 0, or
 * -EFAULT with nothing more (the memory went, the process is gone or did
 * not answer, or it faulted: *@reason, an IOVM_FAULT_*). Bytes read are a
 * snapshot of that moment.
 */
int iommu_delegate(struct iommu_client *c, uint32_t pasid, iova_t iova, void *buf, uint64_t len, unsigned op,
		   uint64_t *done, unsigned *reason);

/* iommu_resolve() - a not-present fault to the resolvers (the space's, then the domain's). Outside a section. */
int iommu_resolve(struct iommu_client *c, const struct iovm_fault *f);
/*
 * iommu_unmaps_begun() - how many unmaps began in @pasid's domain so far
 * (0: none attached). A fault resolved, then back at the same address
 * with this count unchanged, was not resolved (the resolver said so, and
 * mapped nothing that stayed); with it changed, an unmap took the page
 * back in between (its owner's invalidation, a pin budget). Lock-free.
 */
uint64_t iommu_unmaps_begun(struct iommu_client *c, uint32_t pasid);

/*
 * iommu_fault_handle() - ask @f's domain's fault handler to resolve it.
 * Call outside a section: the handler may map and unmap. 0 when resolved.
 */
int iommu_fault_handle(struct iommu_client *c, const struct iovm_fault *f);

/*
 * Registrations (src/reg): IOVA ranges held while pages come and go.
 *
 * iommu_hold() reserves the IOVAs for [pa, pa+len) of the application's
 * memory at @va: chosen, congruent to @pa modulo 2 MiB, in a managed domain;
 * @va itself in a VA domain; -EOPNOTSUPP in an identity domain.
 * iommu_hold_map() maps pages inside it; iommu_hold_unmap() unmaps them,
 * strictly in every domain, keeping the IOVAs; iommu_unhold() gives the
 * range back, once nothing in it is mapped.
 */
int iommu_hold(struct iovm_domain *dom, uint64_t va, pa_t pa, uint64_t len, iova_t *iova);
/*
 * iommu_hold_shared() - iommu_hold() in a shared domain, where the PA
 * follows from the IOVA: the IOVAs, congruent to @va modulo 2 MiB, and
 * the PA (*@pa, with the same offset) at which the caller puts the
 * memory's window (phys_window_add_at()) before it maps any of it.
 * iommu_unhold() gives both back.
 */
int iommu_hold_shared(struct iovm_domain *dom, uint64_t va, uint64_t len, iova_t *iova, pa_t *pa);
/* A registration or registration cache starts (+1) or stops (-1) using @dom: destroy refuses while any does. */
void iommu_domain_use(struct iovm_domain *dom, int delta);
void iommu_unhold(struct iovm_domain *dom, iova_t iova, pa_t pa, uint64_t len);
int iommu_hold_map(struct iovm_domain *dom, iova_t iova, pa_t pa, uint64_t len, uint32_t perm);
void iommu_hold_unmap(struct iovm_domain *dom, iova_t iova, uint64_t len);
/* How many 2 MiB leaves map [iova, iova+len). */
uint64_t iommu_hold_huge_leaves(struct iovm_domain *dom, iova_t iova, uint64_t len);
/*
 * A mirror of a managed domain's mappings in an IOMMU outside iovm (the
 * kernel's, through VFIO): told of each mapping after iovm's page table
 * has it, and of each range unmapped. A map the mirror refuses fails, and
 * is undone in iovm's table too.
 */
/* iommu_shared_ops.pa_pending()'s @how. */
#define IOMMU_PENDING_DEFERRED (1u << 0)  /* queued for a flush, not posted at once */
#define IOMMU_PENDING_KEEP_IOVA (1u << 1) /* the unmap frees no IOVA: a map's undo */

/*
 * A domain shared with other processes (the shared domains of iovm/mp.h):
 * its page table's pages are in memory every process maps, and every
 * process that opened it walks it. What only the sharer can do, it does
 * through these:
 */
struct iommu_shared_ops {
	/* An IOVA range for @len bytes aligned to @align (ANY), or the one at @iova (-EEXIST: taken; -EINVAL: outside). */
	int (*iova_alloc)(void *arg, uint64_t len, uint64_t align, iova_t *iova);
	int (*iova_reserve)(void *arg, iova_t iova, uint64_t len);
	void (*iova_free)(void *arg, iova_t iova, uint64_t len);
	/*
	 * Optional: the map that took [iova, +len) by iova_alloc() or
	 * iova_reserve() is done with them: mapped (an unmap gives them back),
	 * or a registration's window set up. Until then a source shared with
	 * other processes records them, so that a survivor of this process
	 * gives back what it took and never mapped. A map that fails gives
	 * them back by iova_free() instead.
	 */
	void (*iova_settled)(void *arg, iova_t iova, uint64_t len);
	/*
	 * Before entries at [iova, +len) naming [pa, +len) are written:
	 * whether it is memory every process has at that PA (-EINVAL if not;
	 * -EPERM in a forked child): the shared heap, or a registration's
	 * window at the PA reg_pa() gives for @iova; and for the heap's, a
	 * count of the mapping, so that the memory outlives a free while
	 * mapped. Each hold is put back: by pa_put() for a map
	 * that fails, at once; for a mapping, by the unmap's pa_release(),
	 * after its invalidation. Another process's device would reach its own memory,
	 * or none, at a PA of this process's own.
	 */
	int (*pa_hold)(void *arg, iova_t iova, pa_t pa, uint64_t len);
	void (*pa_put)(void *arg, iova_t iova, pa_t pa, uint64_t len);
	/* After an unmap's invalidation: the holds on [pa, +len), its pa_pending() record, and its IOVAs if @free_iova. */
	void (*pa_release)(void *arg, iova_t iova, pa_t pa, uint64_t len, bool free_iova);
	/*
	 * An unmap is about to clear the entries of [iova, +len), which name
	 * [pa, +len), and the invalidation that lets them go is still to come
	 * (a strict unmap's, posted next; a deferred one's, at its flush):
	 * recorded until the pa_release(), so that if this process dies first,
	 * a survivor clears what is still mapped of it
	 * (iommu_domain_clear_recorded()), then releases it (and its IOVAs,
	 * unless IOMMU_PENDING_KEEP_IOVA) once an invalidation of everything
	 * has reached every process. -ENOSPC: not recorded (a deferred unmap
	 * is then flushed at once). The same piece recorded by a dead
	 * process that had not cleared it yet is taken over (0); one that a
	 * live process records or releases is -EALREADY: the unmap clears it
	 * and leaves its release to them.
	 */
	int (*pa_pending)(void *arg, iova_t iova, pa_t pa, uint64_t len, unsigned how);
	/*
	 * A table of the view's pt_source that an unmap is about to detach
	 * (spanning from @base, entries of @level), to be freed once no
	 * device can reach it (after a strict unmap's invalidation, or a
	 * flush's): recorded, as pa_pending()'s pieces, until it is freed.
	 */
	void (*table_pending)(void *arg, void *table, iova_t base, int level);
	/* Whether a dead process left unmaps in flight: a flush with nothing queued invalidates for them. */
	bool (*orphans)(void *arg);
	/*
	 * The oracle's shadow (shadow_shared.c), NULL if the domain has none: a
	 * word per 4 KiB page of IOVA from *@base, *@pages of them, in memory
	 * every process maps, naming pages from the PA *@pa_base. Asked once,
	 * as the view is made.
	 */
	_Atomic uint32_t *(*shadow)(void *arg, uint64_t *base, uint64_t *pages, uint64_t *pa_base);
	/* Whether some mapping of the domain still holds heap page @pa: a stale access may reach only that. */
	bool (*pa_held)(void *arg, pa_t pa);
	/*
	 * Where a registration that holds [iova, +len) (2 MiB aligned, from
	 * iova_alloc()) puts its window: a PA that means that memory and
	 * nothing else in every process, for as long as the IOVAs are taken
	 * (iommu_hold_shared()). -ENOSPC beyond what the domain can name.
	 */
	int (*reg_pa)(void *arg, iova_t iova, uint64_t len, pa_t *pa);
	/*
	 * Another process's registration at @iova (its PA in the
	 * registrations' range, no window here): the bytes moved by that
	 * process (iommu_delegate(), which says what the arguments mean).
	 * NULL: such an access is a bus fault.
	 */
	int (*delegate)(void *arg, iova_t iova, void *buf, uint64_t len, unsigned op, uint64_t *done,
			unsigned *reason);
	/* The IOVA allocator's counts, in 4 KiB pages: allocated, free, the largest free run. */
	void (*iova_stats)(void *arg, uint64_t *allocated, uint64_t *free_pages, uint64_t *largest);
	/*
	 * The page-table pages taken from the source now, attached or
	 * detached and not yet freed: what the stats say, from the pages
	 * themselves (a count kept beside them would be one off where a
	 * process died between a page and its count).
	 */
	uint64_t (*tables_used)(void *arg);
	/*
	 * After this process's devices let go of [iova, +len) (a strict unmap):
	 * every other process's devices too, before it returns; @len 0: only
	 * their walks that began before (tables detached, no leaf); @len
	 * UINT64_MAX: everything they cache (a deferred domain's flush).
	 */
	void (*invalidate)(void *arg, iova_t iova, uint64_t len);
	/*
	 * At destroy, once nothing is attached and before the view goes: this
	 * process stops answering other processes' invalidations.
	 */
	void (*quiesce)(void *arg);
	/* After the view is torn down: the view's hold on the domain goes (the last one's: its tables). */
	void (*release)(void *arg);
};

struct pt_source;
struct pt_counters;

/*
 * iommu_domain_create_shared() - this process's view of a managed domain
 * shared with others: its page table's pages come from @src, its
 * counters are at @cnt, its root at *@root_off (0: made, and returned
 * there). IOVAs below @limit. Of @attr only flags (IOVM_DOMAIN_DEFERRED:
 * this view's unmaps wait in its own flush queue, each flush posted to
 * every other process), flush_batch and flush_timeout_us count.
 */
int iommu_domain_create_shared(struct iovm_ctx *ctx, uint64_t limit, const struct iommu_shared_ops *ops, void *arg,
			       const struct pt_source *src, struct pt_counters *cnt, uint64_t *root_off,
			       const struct iovm_domain_attr *attr, struct iovm_domain **out);

/*
 * iommu_domain_invalidate() - what a strict unmap does for this process's
 * devices, for another process's unmap of a shared domain: their IOTLBs
 * forget [iova, +len), then every device-side section that began before
 * ends. Outside any section.
 */
void iommu_domain_invalidate(struct iovm_domain *dom, iova_t iova, uint64_t len);

/*
 * iommu_domain_clear_recorded() and iommu_domain_detach_recorded() - a
 * shared domain's unmap records what it will clear before it clears it
 * (iommu_shared_ops.pa_pending(), .table_pending()); a process killed
 * between may leave a recorded leaf in place, or a recorded table still
 * reachable. The survivor that claims the record takes them out of
 * reach with these (pt_clear_recorded(), pt_detach_recorded()) before its
 * invalidation of everything, and then releases them. Idempotent.
 */
void iommu_domain_clear_recorded(struct iovm_domain *dom, iova_t iova, pa_t pa, uint64_t len);
void iommu_domain_detach_recorded(struct iovm_domain *dom, void *table, iova_t base, int level);

/*
 * iommu_domain_table_hangs() - whether @table, which a process killed
 * since took from the view's pt_source for where it spans @base with
 * entries of @level, hangs there (pt_hangs()). The caller keeps tables
 * from being freed meanwhile (the source's lock).
 */
bool iommu_domain_table_hangs(struct iovm_domain *dom, const void *table, iova_t base, int level);

/* iommu_domain_maps() - whether @iova translates in the view's table; the caller keeps tables from being freed. */
bool iommu_domain_maps(struct iovm_domain *dom, iova_t iova);

struct iommu_mirror_ops {
	/* [iova, +len) to the process's memory at [va, +len), in order. */
	int (*map)(void *arg, iova_t iova, void *va, uint64_t len, bool write);
	void (*unmap)(void *arg, iova_t iova, uint64_t len);
};

/* [start, start + len), len > 0; it may end at 2^64 (start + len wraps to 0). */
struct iommu_iova_range {
	iova_t start;
	uint64_t len;
};

/*
 * iommu_domain_mirror() - mirror @dom's mappings through @ops: those made
 * already first; only IOVAs inside @usable (in increasing order, apart) are
 * given out from then on (the rest is reserved). -EBUSY when a mirror is
 * set, or when a mapping lies outside @usable. No map or unmap may run
 * meanwhile.
 */
int iommu_domain_mirror(struct iovm_domain *dom, const struct iommu_mirror_ops *ops, void *arg,
			const struct iommu_iova_range *usable, unsigned nr_usable);
/* iommu_domain_unmirror() - stop mirroring (the mirror's own mappings are its to drop). */
void iommu_domain_unmirror(struct iovm_domain *dom);

/*
 * Guests (src/guest). iommu_guest_domain_create() makes a guest's stage 2:
 * IOVAs are guest physical addresses (iommu_stage2_iova() says which),
 * mapped with iommu_stage2_map() and unmapped with iovm_domain_unmap(),
 * always strictly; iovm_domain_destroy()
 * refuses it, iommu_guest_domain_destroy() is the guest's (-EBUSY while
 * attached or under nested domains). A nested domain
 * over it is made with iommu_nested_domain_create(): @attr as for
 * iovm_domain_create(), managed, without flags.
 */
int iommu_guest_domain_create(struct iovm_ctx *ctx, struct iovm_domain **out);
int iommu_guest_domain_destroy(struct iovm_domain *dom);
int iommu_stage2_map(struct iovm_domain *dom, gpa_t gpa, pa_t pa, const void *where, uint64_t len,
		     uint32_t perm);

/* The IOVA of stage 2 that is guest physical address @gpa, and back: the only place one is the other. */
static inline iova_t iommu_stage2_iova(gpa_t gpa)
{
	return iova_make(gpa_val(gpa));
}

static inline gpa_t iommu_stage2_gpa(iova_t iova)
{
	return gpa_make(iova_val(iova));
}
int iommu_nested_domain_create(struct iovm_domain *stage2, const struct iovm_domain_attr *attr,
			       struct iovm_domain **out);

/* Whether iommu_hold() can give @dom's IOVAs for memory (not in an identity domain). */
bool iommu_can_hold(const struct iovm_domain *dom);
/* The context of the domain. */
struct iovm_ctx *iommu_domain_ctx(const struct iovm_domain *dom);
/* What kind of domain @dom is. */
enum iovm_domain_type iommu_domain_type(const struct iovm_domain *dom);
/* Whether @dom is a view of a domain shared with other processes (iommu_domain_create_shared()). */
bool iommu_domain_shared(const struct iovm_domain *dom);
/* Whether devices outside this process's gate reach @dom: mirrored (VFIO) or shared. */
bool iommu_domain_mirrored(const struct iovm_domain *dom);

#endif /* IOVM_IOMMU_IOMMU_H */
