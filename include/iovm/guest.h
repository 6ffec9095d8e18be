/* SPDX-License-Identifier: MIT */
/*
 * iovm/guest.h - guest memory, as a virtual machine monitor holds it: RAM
 * placed in physical memory, mapped into the process, and a stage-2 table
 * (guest physical -> physical) through which the guest's devices reach it.
 *
 * A direct-mapped guest (Xen's 1:1 domains) sees its memory at the
 * physical addresses it occupies: guest physical == physical, so a device
 * without an IOMMU can be given to it. Its memory must then come in few,
 * large contiguous banks, which is hard once the machine's memory is
 * fragmented: the placement policies below (a reserved pool, named banks,
 * or the halving fallback) answer that.
 */
#ifndef IOVM_GUEST_H
#define IOVM_GUEST_H

#include <iovm/base.h>
#include <iovm/iommu.h>

#ifdef __cplusplus
extern "C" {
#endif

struct iovm_ctx;
struct iovm_guest;
struct iovm_pool;
struct iovm_device;

/* Guest flags. */
#define IOVM_GUEST_DIRECT_MAP (1u << 0) /* guest physical == physical */
#define IOVM_GUEST_TRUSTED (1u << 1)    /* its devices may go without translation (identity) */

/* The most banks a guest may have: its firmware tables describe each. */
#define IOVM_GUEST_MAX_BANKS 256

/* Where a guest's memory comes from. */
enum iovm_guest_placement {
	/*
	 * The halving fallback of Xen's allocate_memory_11: blocks of the
	 * largest order first, halved on failure down to min_chunk, below
	 * `below` first, adjacent blocks merged, at most max_banks banks.
	 */
	IOVM_PLACE_AUTO = 0,
	IOVM_PLACE_POOL,  /* the same, inside a reserved pool */
	IOVM_PLACE_BANKS, /* exactly the banks given (inside the pool, when one is given) */
};

/* A bank of guest memory: [gpa, gpa+len) is [pa, pa+len). */
struct iovm_guest_bank {
	iovm_gpa_t gpa;
	iovm_pa_t pa;
	iovm_hpa_t hpa; /* host PA of pa, or IOVM_ADDR_INVALID where the OS does not reveal it */
	uint64_t len;   /* bytes */
};

struct iovm_guest_attr {
	uint64_t size;      /* bytes, a multiple of the page size; 0 with BANKS: their sum */
	uint32_t flags;     /* IOVM_GUEST_* */
	uint64_t page_size; /* 4 KiB, 2 MiB, 1 GiB; 0: the pool's, else 2 MiB when the machine has them, else 4 KiB */
	enum iovm_guest_placement placement;
	struct iovm_pool *pool;                /* POOL; optional with BANKS */
	const struct iovm_guest_bank *banks;   /* BANKS: pa and len of each (gpa and hpa are ignored) */
	unsigned nr_banks;
	/* AUTO and POOL; 0 for the defaults. */
	uint64_t min_chunk; /* bytes, power of two: the smallest block tried; default 2 MiB (direct map), a page */
	uint64_t below;     /* bytes: look below this address first (a 32-bit DMA mask: 4 GiB); 0: no preference */
	unsigned max_banks; /* default 8 for a direct-mapped guest (NR_MEM_BANKS of the Xen discussion), else 256 */
};

/**
 * iovm_guest_create() - place a guest's memory, map it into the process,
 * build its stage 2, and start it.
 * @attr: its size, flags and placement
 * @guest: set to the guest
 *
 * A direct-mapped guest's banks sit at guest physical == physical; with
 * host-PA mode on real hugepages those are host physical addresses, and
 * its banks are physically contiguous hugepage runs. Other guests see
 * their banks one after another from guest physical 0. The memory is
 * zeroed. All or nothing.
 *
 * With host_pa=on every bank is hugepages at their host PA (page_size 0
 * tries no 4 KiB pages); with host_pa=auto, banks of 4 KiB pages have
 * emulated PAs (iovm_pa_is_host() says).
 *
 * Thread safety: safe.
 *
 * Return: 0; -EINVAL for a bad attribute (banks not page aligned, a size
 * that is not their sum, a pool of another page size); -EOPNOTSUPP for
 * 4 KiB pages with host_pa=on; -ENOMEM when the memory is not there in few
 * enough banks (a pool exhausted, say); -EBUSY when a named bank is taken;
 * -ENOENT when it is not memory iovm has.
 */
IOVM_API int iovm_guest_create(struct iovm_ctx *ctx, const struct iovm_guest_attr *attr,
			       struct iovm_guest **guest);

/**
 * iovm_guest_destroy() - stop the guest and give its memory back.
 *
 * Thread safety: no other call on @guest may run or follow.
 *
 * Return: 0; -EINVAL for NULL; -EBUSY while a device is assigned to it or a
 * nested domain sits over its stage 2.
 */
IOVM_API int iovm_guest_destroy(struct iovm_guest *guest);

/**
 * iovm_guest_shutdown() - stop the guest: its memory leaves the process
 * and its stage 2 (devices assigned through it fault from then on).
 * Memory from a pool stays reserved for the guest; memory from the frame
 * allocator goes back to it, and others may take it meanwhile, as when
 * Xen destroys a domain that its toolstack will create again.
 *
 * Thread safety: not concurrently with another call on @guest.
 *
 * Return: 0; -EINVAL; -EALREADY when it is not running.
 */
IOVM_API int iovm_guest_shutdown(struct iovm_guest *guest);

/**
 * iovm_guest_start() - start a stopped guest again on the same banks,
 * zeroed. Always succeeds for a guest whose memory is a pool's.
 *
 * Thread safety: not concurrently with another call on @guest.
 *
 * Return: 0; -EINVAL; -EALREADY when it is running; -EBUSY when another
 * user of memory took part of its banks meanwhile; -ENOMEM.
 */
IOVM_API int iovm_guest_start(struct iovm_guest *guest);

/**
 * iovm_guest_reboot() - iovm_guest_shutdown(), then iovm_guest_start().
 *
 * Thread safety: not concurrently with another call on @guest.
 *
 * Return: 0; -EINVAL; -EALREADY when it is not running (as
 * iovm_guest_shutdown(): nothing happens); otherwise as
 * iovm_guest_start(), and the guest stays stopped when that fails.
 */
IOVM_API int iovm_guest_reboot(struct iovm_guest *guest);

struct iovm_guest_info {
	uint64_t size;
	uint32_t flags;
	uint64_t page_size;
	bool running;
	bool from_pool;
	unsigned nr_banks;
	void *ram;        /* where the process reaches guest physical memory: bank after bank */
	uint64_t starts;  /* creations and starts that succeeded */
};

/**
 * iovm_guest_info() - the guest's shape and state.
 *
 * Thread safety: safe.
 *
 * Return: 0, or -EINVAL.
 */
IOVM_API int iovm_guest_info(struct iovm_guest *guest, struct iovm_guest_info *info);

/**
 * iovm_guest_banks() - the guest's banks, by guest physical address.
 * @banks: room for @max
 * @n: set to the number of banks (which may exceed @max: only @max are filled)
 *
 * Thread safety: safe.
 *
 * Return: 0, or -EINVAL.
 */
IOVM_API int iovm_guest_banks(struct iovm_guest *guest, struct iovm_guest_bank *banks, unsigned max,
			      unsigned *n);

/**
 * iovm_guest_ptr() - where the process reaches guest physical @gpa, as a
 * device emulator in the monitor does.
 * @len: set to the bytes contiguous from there (to the end of the bank); may be NULL
 *
 * Thread safety: safe while the guest runs.
 *
 * Return: the pointer; NULL with errno EINVAL, ENOENT (not guest memory)
 * or EAGAIN (the guest is stopped).
 */
IOVM_API void *iovm_guest_ptr(struct iovm_guest *guest, iovm_gpa_t gpa, size_t *len);

/**
 * iovm_guest_stage2() - the guest's stage 2, a guest domain: IOVAs are
 * guest physical addresses. The guest owns it: iovm_domain_destroy()
 * refuses it. The monitor may map more into it (iovm_domain_map(), at a
 * guest physical address) and translate through it.
 *
 * Thread safety: safe.
 *
 * Return: 0, or -EINVAL.
 */
IOVM_API int iovm_guest_stage2(struct iovm_guest *guest, struct iovm_domain **dom);

/* Assignment flags. */
#define IOVM_ASSIGN_IDENTITY (1u << 0) /* no translation: device addresses are physical */

/**
 * iovm_guest_assign() - give a device to the guest: from then on it DMAs
 * with guest physical addresses, through the guest's stage 2; with
 * IOVM_ASSIGN_IDENTITY, without translation (only for a trusted
 * direct-mapped guest: such a device reaches all of memory).
 * @pasid: the PASID the device's requests carry (IOVM_PASID_NONE: none)
 *
 * Thread safety: safe.
 *
 * Return: 0; -EINVAL; -EPERM for identity assignment to a guest that is
 * not both direct-mapped and trusted; -EBUSY when the device has a domain
 * at @pasid; -EOPNOTSUPP for a real (VFIO) device.
 */
IOVM_API int iovm_guest_assign(struct iovm_guest *guest, struct iovm_device *dev, uint32_t pasid,
			       uint32_t flags);

/**
 * iovm_guest_unassign() - take the device back.
 *
 * Thread safety: safe.
 *
 * Return: 0; -EINVAL; -ENOENT when it was not assigned to the guest at @pasid.
 */
IOVM_API int iovm_guest_unassign(struct iovm_guest *guest, struct iovm_device *dev, uint32_t pasid);

/**
 * iovm_guest_domain_create() - a stage-1 domain the guest manages (guest
 * IOVA -> guest physical, mapped with iovm_domain_map_gpa()), nested over
 * its stage 2: a device attached to it (iovm_device_attach()) walks both,
 * and a fault is reported by the stage that faulted: stage 1's to this
 * domain, stage 2's to the guest's stage 2 (struct iovm_fault.stage).
 * @attr: NULL, or a managed domain's attributes, without flags (nested
 *        domains are strict)
 *
 * Destroy it with iovm_domain_destroy(), before the guest.
 *
 * Thread safety: safe.
 *
 * Return: 0; -EINVAL; -ENOMEM.
 */
IOVM_API int iovm_guest_domain_create(struct iovm_guest *guest, const struct iovm_domain_attr *attr,
				      struct iovm_domain **dom);

#ifdef __cplusplus
}
#endif

#endif /* IOVM_GUEST_H */
