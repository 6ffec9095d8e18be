/* SPDX-License-Identifier: MIT */
/*
 * iovm/iommu.h - IO address spaces: domains, their mappings, invalidation
 * and faults.
 *
 * A domain is the address space devices see. Managed domains hand out IOVAs
 * from their own allocator; identity domains pass device addresses through
 * as physical addresses; VA domains use the process's virtual addresses.
 * A domain can follow the DMA heap: it maps every page the heap commits and
 * unmaps it before the heap releases it.
 *
 * Invalidation is strict (an unmap returns once no device can use the old
 * translation) or deferred (unmaps are batched and flushed later; until the
 * flush, the pages stay pinned and the IOVAs quarantined).
 *
 * Remapping: once iovm_domain_unmap() has returned, the range it unmapped
 * can be mapped again at the same IOVA, in every kind of domain. In a
 * deferred domain a map that meets IOVAs still in quarantine flushes the
 * queue first (it waits for a grace period, as a strict unmap does), so
 * that no device keeps the old translation of an IOVA mapped anew; a map
 * at an IOVA the domain chooses (IOVM_IOVA_ANY) never gets a quarantined
 * one. After iovm_domain_flush() nothing is quarantined.
 */
#ifndef IOVM_IOMMU_H
#define IOVM_IOMMU_H

#include <iovm/base.h>

#ifdef __cplusplus
extern "C" {
#endif

struct iovm_ctx;
struct iovm_domain;

/* PASIDs are 20 bits; requests without one go to the domain attached for PASID 0. */
#define IOVM_PASID_NONE 0u
#define IOVM_PASID_MAX ((1u << 20) - 1)

enum iovm_domain_type {
	IOVM_DOMAIN_MANAGED = 0, /* IOVAs from the domain's allocator */
	IOVM_DOMAIN_IDENTITY,    /* IOVA == PA: every physical address, no table */
	IOVM_DOMAIN_VA,          /* IOVA == the process's virtual address */
	/*
	 * A guest's stage 2 (IOVA == guest physical address), made by
	 * iovm_guest_create(): devices assigned to the guest use it.
	 */
	IOVM_DOMAIN_GUEST,
	/*
	 * A guest-managed stage 1 (guest IOVA -> guest physical address) nested
	 * over a guest's stage 2, made by iovm_guest_domain_create(): the device
	 * walks both, as with Intel VT-d or Arm SMMU nesting.
	 */
	IOVM_DOMAIN_NESTED,
};

/* Domain flags. */
#define IOVM_DOMAIN_DEFERRED (1u << 0)    /* deferred invalidation: a flush queue */
#define IOVM_DOMAIN_FOLLOW_HEAP (1u << 1) /* map the DMA heap as it is committed */

struct iovm_iova_range {
	iovm_iova_t start;
	uint64_t len;
};

struct iovm_domain_attr {
	enum iovm_domain_type type;
	uint32_t flags;            /* IOVM_DOMAIN_* */
	unsigned dma_bits;         /* IOVAs below 2^dma_bits: 32 to 48; 0 means 48 */
	unsigned flush_batch;      /* deferred: unmapped ranges per flush; 0 means 256, as Linux */
	unsigned flush_timeout_us; /* deferred: longest wait for a flush; 0 means 10000, as Linux */
	unsigned fault_queue;      /* faults kept for iovm_domain_fault_pop(); 0 means 256 */
	/*
	 * Holes a managed domain never hands out, nor maps at a chosen IOVA;
	 * NULL means the x86 MSI window [0xfee00000, 0xfef00000). Rounded out
	 * to pages; they may overlap; a range may end at 2^64, not run past it.
	 */
	const struct iovm_iova_range *reserved;
	unsigned nr_reserved;
};

/**
 * iovm_domain_create() - a new IO address space.
 * @attr: what kind; NULL for a managed domain, strict, 48 bits
 * @dom: set to the domain
 *
 * Guest and nested domains come from the guest API (iovm/guest.h).
 *
 * Thread safety: safe.
 *
 * Return: 0; -EINVAL for a bad attribute (an unknown type or flag, a guest
 * or nested type, dma_bits outside 32..48, reserved ranges without a
 * count, a reserved range that is empty or runs past 2^64); -ENOMEM.
 */
IOVM_API int iovm_domain_create(struct iovm_ctx *ctx, const struct iovm_domain_attr *attr,
				struct iovm_domain **dom);

/**
 * iovm_domain_destroy() - unmap everything and free the domain.
 *
 * Thread safety: no other call on @dom may run or follow.
 *
 * Return: 0; -EINVAL for NULL; -EBUSY while a device is attached, while
 * nested domains sit over it, or while registrations (iovm_mr_reg()) or
 * registration caches (iovm_rcache_create()) use it; -EPERM for a guest's
 * stage 2 (the guest owns it: iovm_guest_destroy()).
 */
IOVM_API int iovm_domain_destroy(struct iovm_domain *dom);

/* Permissions of a mapping. */
#define IOVM_MAP_READ (1u << 0)
#define IOVM_MAP_WRITE (1u << 1)

/* Ask a managed domain to choose the IOVA. */
#define IOVM_IOVA_ANY IOVM_IOVA(IOVM_ADDR_INVALID)

/**
 * iovm_domain_map() - map physical memory.
 * @iova: in: where (page aligned), or IOVM_IOVA_ANY in a managed domain;
 *        out: where it was mapped
 * @pa: page aligned physical address of memory iovm owns: the DMA heap's,
 *       a zone's, memory registered with iovm_mem_register(); not a
 *       memory registration's (iovm_mr_reg(), iovm/reg.h), whose PAs only
 *       it maps, and which the next registration gets once it ends
 * @len: bytes, page aligned
 * @perm: IOVM_MAP_READ and/or IOVM_MAP_WRITE
 *
 * 2 MiB and 1 GiB leaves are used where alignment and length allow.
 *
 * A domain's window: IOVAs below 2^dma_bits; in managed, VA and nested
 * domains not page 0 (a NULL device address always faults), and in a
 * managed or nested domain not its reserved holes. A chosen @iova whose
 * range leaves the window, or runs past 2^64, is -EINVAL.
 * Identity domains have nothing to map (-EOPNOTSUPP); nor have nested
 * ones physical addresses (-EOPNOTSUPP: iovm_domain_map_gpa()). In a
 * guest's stage 2, @iova is the guest physical address.
 *
 * Thread safety: safe; concurrent maps of disjoint ranges take no shared lock
 * beyond the IOVA allocator's.
 *
 * Return: 0; -EINVAL for bad arguments (a range outside the window, a
 * length whose end overflows) or a PA no bank holds, or a memory
 * registration's; -EEXIST when
 * part of the range is mapped (not merely unmapped and awaiting a deferred
 * flush: see "Remapping" above); -ENOSPC when no IOVA range fits; -ENOMEM.
 */
IOVM_API int iovm_domain_map(struct iovm_domain *dom, iovm_iova_t *iova, iovm_pa_t pa, size_t len,
			     uint32_t perm);

/**
 * iovm_domain_map_gpa() - in a nested domain, map guest physical memory:
 * stage 1 of a guest's device, as the guest's IOMMU driver programs it.
 * @iova: in: where (page aligned), or IOVM_IOVA_ANY; out: where it was mapped
 * @gpa: page aligned; it need not be in the guest's stage 2 yet (a device
 *       access then faults in stage 2)
 * @len: bytes, page aligned
 * @perm: IOVM_MAP_READ and/or IOVM_MAP_WRITE; an access needs it in both stages
 *
 * Thread safety: as iovm_domain_map().
 *
 * Return: 0; -EINVAL for bad arguments; -EOPNOTSUPP when @dom is not
 * nested; -EEXIST, -ENOSPC, -ENOMEM as iovm_domain_map().
 */
IOVM_API int iovm_domain_map_gpa(struct iovm_domain *dom, iovm_iova_t *iova, iovm_gpa_t gpa, size_t len,
				 uint32_t perm);

/**
 * iovm_domain_map_pages() - map @n 4 KiB pages, scattered in physical
 * memory, at consecutive IOVAs: one page-table walk per 512 pages.
 * @iova: as for iovm_domain_map()
 *
 * Thread safety: safe.
 *
 * Return: as iovm_domain_map().
 */
IOVM_API int iovm_domain_map_pages(struct iovm_domain *dom, iovm_iova_t *iova, const iovm_pa_t *pages,
				   unsigned n, uint32_t perm);

/**
 * iovm_domain_map_ptr() - map DMA heap memory by its pointer: a managed
 * domain chooses the IOVA, a VA domain uses the pointer, an identity domain
 * the PA.
 * @ptr, @len: page aligned, in iovm memory
 * @iova: set to where it was mapped
 *
 * Thread safety: safe.
 *
 * Return: as iovm_domain_map(); -ENOENT when @ptr is not committed iovm memory.
 */
IOVM_API int iovm_domain_map_ptr(struct iovm_domain *dom, const void *ptr, size_t len, uint32_t perm,
				 iovm_iova_t *iova);

/**
 * iovm_domain_unmap() - unmap whatever is mapped in [iova, iova+len).
 *
 * Part of a larger mapping can be unmapped: huge leaves are split (Linux
 * VFIO type1 refuses this). Strict domains return once no device can use
 * the old translation; deferred ones queue the invalidation, keeping the
 * pages pinned and the IOVAs quarantined until the flush. Either way the
 * range can be mapped again at once (see "Remapping" above).
 *
 * Thread safety: safe; not concurrently with a map or another unmap of an
 * overlapping range (as with the Linux IOMMU API, the caller serializes
 * those), while devices may go on using the rest of the domain.
 *
 * Return: 0; -EINVAL for bad arguments (no length, not page aligned, a
 * range that runs past 2^64; one ending exactly at 2^64 is fine); -ENOENT
 * when nothing was mapped there (outside the window nothing ever is).
 */
IOVM_API int iovm_domain_unmap(struct iovm_domain *dom, iovm_iova_t iova, size_t len);

/**
 * iovm_domain_flush() - for a deferred domain, flush the queued
 * invalidations now; for a strict one, nothing (a shared one, strict or
 * deferred, also frees what a dead process left in flight: iovm/mp.h).
 * When it returns, no device uses a translation unmapped before the call,
 * and nothing unmapped before it is quarantined: its pages are unpinned,
 * its IOVAs free.
 *
 * Thread safety: safe.
 *
 * Return: 0, or -EINVAL.
 */
IOVM_API int iovm_domain_flush(struct iovm_domain *dom);

/**
 * iovm_dma_iova() - the IOVA of any pointer into the DMA heap, interior ones
 * too, in a domain that follows the heap (or a VA or identity domain).
 *
 * O(1), no lock.
 *
 * Thread safety: safe, lock-free.
 *
 * Return: 0; -EINVAL; -ENOENT when @ptr is not mapped in @dom.
 */
IOVM_API int iovm_dma_iova(const struct iovm_domain *dom, const void *ptr, iovm_iova_t *iova);

/**
 * iovm_domain_translate() - what the domain's IO page table maps @iova to,
 * as a device would see it (without its IOTLB); through both stages for a
 * nested domain, with the permissions both allow.
 *
 * Thread safety: safe, lock-free.
 *
 * Return: 0; -EINVAL; -ENOENT when nothing is mapped there; -EOPNOTSUPP
 * with host_pa=on where @iova maps memory that has no host PA (an MR's
 * application memory, iovm/reg.h, which devices reach by IOVA): that
 * mode hands out host PAs only.
 */
IOVM_API int iovm_domain_translate(const struct iovm_domain *dom, iovm_iova_t iova, iovm_pa_t *pa,
				   uint32_t *perm);

/**
 * iovm_domain_read_dirty() - whether devices accessed, and wrote, any page of
 * [iova, iova+len); with @clear, the bits are cleared as read, and devices
 * drop what they cached of the range: every access that begins after the
 * call returns sets them again (one under way as it returns may not).
 *
 * Thread safety: safe.
 *
 * Return: 0; -EINVAL (no length, a range that runs past 2^64);
 * -EOPNOTSUPP for an identity domain.
 */
IOVM_API int iovm_domain_read_dirty(struct iovm_domain *dom, iovm_iova_t iova, size_t len, bool clear,
				    bool *accessed, bool *dirty);

/* A DMA fault: an access the domain does not map, or does not permit. */
enum iovm_fault_reason {
	IOVM_FAULT_NOT_PRESENT = 1,
	IOVM_FAULT_PERMISSION = 2,
	IOVM_FAULT_NO_DOMAIN = 3, /* no domain attached for the PASID */
	IOVM_FAULT_BUS = 4,       /* mapped to a physical address with no memory */
};

/**
 * iovm_fault_reason_name() - the name of fault reason @reason (enum
 * iovm_fault_reason, also a completion record's fault_reason): "not
 * present", "permission"...
 *
 * Thread safety: safe; no context needed.
 *
 * Return: a static string; "unknown fault reason" for a value the enum lacks.
 */
IOVM_API const char *iovm_fault_reason_name(int reason);

/*
 * The stage of a two-stage translation that faulted. A fault in stage 2
 * goes to the stage-2 (guest) domain's queue and handler, as an IOMMU
 * reports it to the hypervisor; one in stage 1 to the nested domain's, the
 * guest's.
 */
enum iovm_fault_stage {
	IOVM_STAGE_ONLY = 0, /* a single-stage domain */
	IOVM_STAGE_1 = 1,    /* guest IOVA -> guest physical */
	IOVM_STAGE_2 = 2,    /* guest physical -> physical */
};

struct iovm_fault {
	iovm_iova_t iova;
	uint32_t pasid;
	uint32_t access; /* IOVM_MAP_READ or IOVM_MAP_WRITE */
	enum iovm_fault_reason reason;
	uint32_t device; /* the faulting device's id */
	uint64_t seq;    /* faults of the domain so far */
	enum iovm_fault_stage stage;
	iovm_gpa_t gpa;  /* stage 2: the guest physical address faulted on */
};

/*
 * A fault handler: return 0 when the fault is resolved (the access is
 * retried), a negative errno when it is not. Called on the device's thread,
 * for descriptors that ask to block on faults; it may map and unmap.
 */
typedef int (*iovm_fault_fn)(void *arg, struct iovm_domain *dom, const struct iovm_fault *f);

/**
 * iovm_domain_set_fault_handler() - install (or, with NULL, remove) the handler.
 *
 * Thread safety: safe; a handler being removed may still run once.
 *
 * Return: 0, or -EINVAL.
 */
IOVM_API int iovm_domain_set_fault_handler(struct iovm_domain *dom, iovm_fault_fn fn, void *arg);

/**
 * iovm_domain_fault_pop() - the oldest fault recorded, if any.
 *
 * The queue is bounded: faults beyond it are counted as dropped.
 *
 * Thread safety: safe.
 *
 * Return: 0; -EAGAIN when there is none; -EINVAL.
 */
IOVM_API int iovm_domain_fault_pop(struct iovm_domain *dom, struct iovm_fault *f);

struct iovm_domain_stats {
	enum iovm_domain_type type;
	uint32_t flags;
	/* The IOVA allocator (managed domains), in bytes. */
	uint64_t iova_allocated, iova_free, iova_cached, iova_largest_gap;
	unsigned iova_fragmentation; /* per mille: 1000 * (1 - largest gap / free) */
	/* The IO page table. */
	uint64_t leaves_4k, leaves_2m, leaves_1g, tables, splits;
	/* Invalidation. */
	uint64_t strict_invalidations; /* unmaps waited out */
	uint64_t flushes;              /* deferred flushes done */
	uint64_t flushed_unmaps;       /* unmaps they covered */
	uint64_t pending_unmaps;       /* queued, not yet flushed */
	/* Faults. */
	uint64_t faults, faults_dropped;
	/* The oracle (option oracle=on): device accesses checked against a shadow of the mappings. */
	uint64_t oracle_checks;
	uint64_t oracle_stale;      /* accesses through a translation awaiting its flush */
	uint64_t oracle_violations; /* accesses the shadow forbids: an iovm bug */
};

/**
 * iovm_domain_stats() - a snapshot of the domain.
 *
 * A shared domain's leaves are counted from its table's entries (a walk
 * of every table, which takes time in proportion to what is mapped), so
 * that they stay exact when a process is killed between changing an
 * entry and counting it. The walk holds nothing that other processes'
 * unmaps wait for, unless page-table pages are freed under it again and
 * again (then the last walk keeps them from being freed until it ends).
 *
 * Thread safety: safe.
 *
 * Return: 0, or -EINVAL.
 */
IOVM_API int iovm_domain_stats(struct iovm_domain *dom, struct iovm_domain_stats *st);

#ifdef __cplusplus
}
#endif

#endif /* IOVM_IOMMU_H */
