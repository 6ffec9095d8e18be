/* SPDX-License-Identifier: MIT */
/*
 * iovm/dev.h - devices: attached to domains, one per PASID; and the software
 * DMA engine, a device whose descriptors follow Intel DSA.
 *
 * An engine queue has a submission ring and a completion ring in DMA memory,
 * mapped in the device's domain: the engine fetches each descriptor and
 * writes each completion through the IOMMU, as hardware does. Every address
 * in a descriptor is an IOVA of the domain its PASID names.
 */
#ifndef IOVM_DEV_H
#define IOVM_DEV_H

#include <iovm/base.h>
#include <iovm/iommu.h>

#ifdef __cplusplus
extern "C" {
#endif

struct iovm_ctx;
struct iovm_domain;
struct iovm_device;
struct iovm_queue;

/**
 * iovm_device_open() - open a device.
 * @spec: "sw" for a software DMA engine; "vfio:dddd:bb:dd.f" for a PCI
 *        device through VFIO (bound to vfio-pci if it is not; root);
 *        "vfio-group:" or "vfio-iommufd:" before the address to choose the
 *        kernel interface; "verbs:NAME" for the RDMA device NAME through
 *        rdma-core's verbs (as ibv_devices lists it: "verbs:rxe0")
 * @dev: set to the device
 *
 * "vfio:" takes iommufd (/dev/iommu and the device's VFIO cdev: Linux 6.6
 * and later, built with IOMMUFD and VFIO_DEVICE_CDEV) where the kernel has
 * it for the device, and the group otherwise: a VFIO device's cdev is bound
 * to an iommufd IO address space of its own, or its group is put in a
 * container of its own (type1v2). Attached
 * to a managed domain, the domain's mappings are mirrored into the kernel's
 * IOMMU, at IOVAs iovm chooses inside the ranges the kernel reports. Where
 * vfio runs in its unsafe no-IOMMU mode, the device uses host physical
 * addresses (iovm_dma_xlate()'s hpa) and cannot be attached.
 *
 * "verbs:" loads rdma-core's libibverbs.so.1 at the first such call
 * (libiovm does not link it) and opens the device with a protection
 * domain of its own (iovm_device_verbs() gives both, for the caller's
 * queue pairs). Attached, at IOVM_PASID_NONE, to one managed domain
 * that has no registrations yet, every registration of
 * that domain (iovm_mr_reg(), iovm_rcache_get(), implicit ones) is also
 * the device's (ibv_reg_mr() in its protection domain, after iovm checked
 * and pinned the memory, and deregistered from the device before anything
 * else of it goes): iovm_mr_query() and iovm_mr_iova() give the device's
 * lkey, rkey and IOVA, which is the virtual address, as work requests
 * name it; MRs may overlap, as verbs lets them.
 * IOVM_ACCESS_REMOTE_WRITE brings local write with it, as verbs needs.
 * IOVM_ACCESS_ON_DEMAND is IBV_ACCESS_ON_DEMAND where the device reports
 * on-demand paging for RC sends, receives, writes and reads (an implicit
 * registration is the device's implicit ODP MR where it has implicit ODP,
 * else registered child by child: iovm_mr_keys()); where it does not, such a
 * registration fails with -EOPNOTSUPP rather than quietly pinning memory
 * the caller asked not to pin. iovm_mr_advise() of such an MR is
 * ibv_advise_mr() (prefetch, flushed). A verbs device has no queues of
 * iovm's (-EOPNOTSUPP): post to the queue pairs you make on its
 * protection domain. Detaching it is -EBUSY while the domain has MRs
 * (a cache's included); closing it deregisters them from the device
 * first, and they stay iovm's alone. A device that refuses a
 * deregistration (rdma-core's EBUSY while memory windows are bound)
 * makes iovm_mr_dereg() fail with its error, the MR whole (an implicit
 * MR registered child by child, in address order, keeps the child
 * refused and those after it; the children before it are gone, and made
 * anew, with new keys, when asked); where the
 * call cannot fail (a cache's eviction or destroy, closing) the refusal
 * is asked again once, then logged, and the device's MR is left to the
 * device's close, which takes it down with the protection domain.
 *
 * Thread safety: safe.
 *
 * Return: 0; -EINVAL for a bad argument; -ENODEV for an unknown @spec, a
 * device vfio-pci does not take, or no RDMA device NAME (the detail lists
 * those there are); -EOPNOTSUPP for "verbs:" where libibverbs cannot be
 * loaded (the detail says what to install) or libiovm was built without
 * rdma-core's headers; -ENOENT for no such PCI device, or for
 * "vfio-iommufd:" where the kernel or the device has no iommufd; -EBUSY
 * when its group is not viable (another device of it has a driver);
 * -EACCES, -EPERM without privileges; -ENOMEM.
 */
IOVM_API int iovm_device_open(struct iovm_ctx *ctx, const char *spec, struct iovm_device **dev);

/**
 * iovm_device_close() - stop the device's queues, detach it, free it.
 *
 * Thread safety: no other call on @dev or its queues may run or follow;
 * for a verbs device, no call on the MRs of its domain may run meanwhile
 * (they lose the device's registrations).
 *
 * Return: 0, or -EINVAL.
 */
IOVM_API int iovm_device_close(struct iovm_device *dev);

/**
 * iovm_device_id() - the device's id, as faults report it
 * (struct iovm_fault.device).
 *
 * Thread safety: safe.
 *
 * Return: the id; 0 for a NULL @dev.
 */
IOVM_API uint32_t iovm_device_id(const struct iovm_device *dev);

/**
 * iovm_device_attach() - make @dom the device's address space for @pasid.
 *
 * Several devices may share a domain; a device may reach several domains by
 * PASID.
 *
 * Thread safety: safe; requests in flight finish on the old attachment.
 *
 * Return: 0; -EINVAL for bad arguments (a PASID beyond IOVM_PASID_MAX, a
 * domain of another context); -EBUSY when @pasid is attached already.
 */
IOVM_API int iovm_device_attach(struct iovm_device *dev, struct iovm_domain *dom, uint32_t pasid);

/**
 * iovm_device_detach() - detach whatever domain @pasid names.
 *
 * Returns once no request of the device can use the old attachment. From
 * then on a request with @pasid faults with IOVM_FAULT_NO_DOMAIN (its
 * descriptor completes IOVM_STATUS_PAGE_FAULT), and the fault goes to the
 * device's own fault log, not to the domain that was attached: as Intel's
 * VT-d records a request whose PASID-table entry is not present in the
 * remapping unit's fault log, against the requester, since no domain is
 * reached any more.
 *
 * Thread safety: safe.
 *
 * Return: 0; -EINVAL; -ENOENT when nothing is attached for @pasid.
 */
IOVM_API int iovm_device_detach(struct iovm_device *dev, uint32_t pasid);

/**
 * iovm_device_fault_pop() - the oldest fault the device took that no
 * domain could take: a request with a PASID that has nothing attached
 * (IOVM_FAULT_NO_DOMAIN; .seq counts the device's such faults). Faults in
 * an attached domain go to that domain (iovm_domain_fault_pop()). The log
 * keeps 64; beyond, faults are counted as dropped (iovm_device_query()).
 *
 * Thread safety: safe.
 *
 * Return: 0; -EAGAIN when there is none; -EINVAL.
 */
IOVM_API int iovm_device_fault_pop(struct iovm_device *dev, struct iovm_fault *f);

/* What a device is (iovm_device_query()). */
enum iovm_device_kind {
	IOVM_DEVICE_SW = 0,            /* the software DMA engine */
	IOVM_DEVICE_VFIO = 1,          /* a PCI device behind the kernel's IOMMU */
	IOVM_DEVICE_VFIO_NOIOMMU = 2,  /* a PCI device with no IOMMU: host physical addresses */
	IOVM_DEVICE_VERBS = 3,         /* an RDMA device through rdma-core's verbs */
};

#define IOVM_DEVICE_MAX_RANGES 16

/* How a VFIO device's mappings reach the kernel's IOMMU. */
enum iovm_iommu_api {
	IOVM_IOMMU_API_NONE = 0,       /* the software engine: iovm's own IOMMU */
	IOVM_IOMMU_API_GROUP = 1,      /* VFIO group and type1v2 container (VFIO_IOMMU_MAP_DMA) */
	IOVM_IOMMU_API_IOMMUFD = 2,    /* iommufd IOAS and VFIO cdev (IOMMU_IOAS_MAP) */
};

struct iovm_device_info {
	enum iovm_device_kind kind;
	enum iovm_iommu_api iommu_api;
	int iommu_group;               /* -1 for the software engine */
	uint64_t iova_pgsizes;         /* page sizes the kernel's IOMMU maps (iommufd: the smallest) */
	unsigned nr_iova_ranges;       /* IOVA ranges the kernel's IOMMU can map */
	struct {
		uint64_t start, last;  /* inclusive */
	} iova_ranges[IOVM_DEVICE_MAX_RANGES];
	int64_t dma_avail;             /* kernel mapping entries still available; -1: not said */
	uint64_t kernel_mappings;      /* entries the mirror holds now */
	uint64_t kernel_maps, kernel_unmaps; /* MAP_DMA and UNMAP_DMA calls made */
	uint64_t kernel_splits;        /* entries mapped again around a partial unmap */
	/* Faults with no domain to go to (iovm_device_fault_pop()): seen, and lost to a full log. */
	uint64_t unattached_faults, unattached_faults_dropped;
};

/**
 * iovm_device_query() - what @dev is, and for a VFIO device what the
 * kernel's IOMMU offers and holds.
 *
 * Thread safety: safe.
 *
 * Return: 0, or -EINVAL.
 */
IOVM_API int iovm_device_query(struct iovm_device *dev, struct iovm_device_info *info);

#define IOVM_VERBS_NAME_MAX 64

/* An RDMA device's verbs objects (iovm_device_verbs()). */
struct iovm_device_verbs {
	void *context;                 /* struct ibv_context *: the device, opened */
	void *pd;                      /* struct ibv_pd *: its protection domain, which the MRs are in */
	bool odp;                      /* on-demand paging for RC sends, receives, writes and reads */
	bool odp_implicit;             /* and implicit: one key for the whole address space */
	/*
	 * fork() leaves the MRs intact: the kernel copies pinned pages for the
	 * child (Linux 5.13 and later: rdma-core's IBV_FORK_UNNEEDED), or the
	 * application called ibv_fork_init() (RDMAV_FORK_SAFE=1) before its
	 * first registration. iovm never calls ibv_fork_init() itself: it makes
	 * registered memory absent in children, which is the application's
	 * choice to make.
	 */
	bool fork_safe;
	char name[IOVM_VERBS_NAME_MAX];
};

/**
 * iovm_device_verbs() - the verbs objects of a "verbs:" device, for the
 * caller's completion queues and queue pairs, which must be made in the
 * same protection domain as the MRs. They are the device's: do not close
 * or deallocate them; they live until iovm_device_close().
 *
 * Thread safety: safe.
 *
 * Return: 0; -EINVAL for NULL; -EOPNOTSUPP for a device that is not a
 * verbs device.
 */
IOVM_API int iovm_device_verbs(struct iovm_device *dev, struct iovm_device_verbs *info);

/**
 * iovm_device_bar() - map PCI BAR @bar of a VFIO device (once; later calls
 * give the same mapping, which lasts until the device is closed).
 *
 * Thread safety: safe.
 *
 * Return: 0; -EINVAL; -EOPNOTSUPP for the software engine or a BAR that
 * cannot be mmapped; -ENOENT for a BAR the device lacks.
 */
IOVM_API int iovm_device_bar(struct iovm_device *dev, unsigned bar, void **ptr, size_t *len);

/**
 * iovm_device_config_read() - read @len (1, 2 or 4, aligned) bytes of a
 * VFIO device's PCI config space at @off.
 *
 * Thread safety: safe.
 *
 * Return: 0; -EINVAL; -EOPNOTSUPP for the software engine; -EIO.
 */
IOVM_API int iovm_device_config_read(struct iovm_device *dev, unsigned off, void *buf, unsigned len);

/**
 * iovm_device_config_write() - write config space, as iovm_device_config_read()
 * reads it (bus mastering: bit 2 of the command register at 4).
 *
 * Thread safety: safe.
 *
 * Return: as iovm_device_config_read().
 */
IOVM_API int iovm_device_config_write(struct iovm_device *dev, unsigned off, const void *buf, unsigned len);

/**
 * iovm_device_msi() - signal @eventfd on the device's interrupt (MSI vector
 * 0, or MSI-X vector 0 where it has no MSI); -1 turns it off.
 *
 * Thread safety: safe.
 *
 * Return: 0; -EINVAL; -EOPNOTSUPP for the software engine or a device
 * without MSI; -errno of the kernel.
 */
IOVM_API int iovm_device_msi(struct iovm_device *dev, int eventfd);

/*
 * Descriptor operations, after Intel DSA. Ranges of one descriptor should
 * not overlap, except COPY's: a COPY whose dst lies above an overlapping
 * src (both IOVAs, or both keyed) runs from the end, as memmove does
 * (DSA's memory move: result 1, its direction bit). Where a destination of
 * another operation overlaps a source, what it receives is unspecified,
 * though never outside its range. GATHER and SCATTER take 1 to 4096
 * entries in an 8-byte aligned list; BATCH 1 to 1024 descriptors in a
 * 64-byte aligned list, none of them a batch. A descriptor that breaks
 * these, or has an unknown op or flag, a PASID beyond IOVM_PASID_MAX or a
 * completion record not 32-byte aligned, completes IOVM_STATUS_INVALID
 * (with no record where the record is misaligned).
 */
enum iovm_op {
	IOVM_OP_NOOP = 0,
	IOVM_OP_COPY = 1,        /* src -> dst, len bytes (overlapping: as memmove) */
	IOVM_OP_FILL = 2,        /* the 8-byte pattern -> dst, len bytes */
	IOVM_OP_COMPARE = 3,     /* src against dst: result 0 equal, 1 different */
	IOVM_OP_COMPARE_PATTERN = 4, /* src against the pattern */
	IOVM_OP_CRC32C = 5,      /* CRC-32C of src, from crc_seed */
	IOVM_OP_COPY_CRC = 6,    /* COPY and CRC32C at once */
	IOVM_OP_DUALCAST = 7,    /* src -> dst and dst2 */
	IOVM_OP_GATHER = 8,      /* src: sg_count struct iovm_sge entries -> dst */
	IOVM_OP_SCATTER = 9,     /* src -> dst: sg_count struct iovm_sge entries */
	IOVM_OP_BATCH = 10,      /* src: len descriptors, run in order */
};

/* Descriptor flags. */
#define IOVM_DESC_COMPLETION (1u << 0)    /* write a completion record at .completion */
#define IOVM_DESC_BLOCK_ON_FAULT (1u << 1) /* on a fault, wait for the fault handler */
/*
 * Keyed addressing, as RDMA's: src and dst (and scatter/gather entries) are
 * the application's virtual addresses, in the registrations that src_key
 * and dst_key (and each entry's key) name; a key of 0 leaves its address an
 * IOVA. A local key grants the MR's local rights, a remote key its remote
 * ones. DUALCAST cannot be keyed (dst2 holds the keys): IOVM_STATUS_INVALID.
 *
 * One rule for every descriptor, however many ranges it names: all its
 * keys are checked before its first byte moves, each over the whole range
 * it covers: src_key (a batch's list, a gather's list, or the source),
 * then dst_key, then each scatter/gather entry's key in list order (with
 * the list's lengths, which must add up to len: IOVM_STATUS_INVALID
 * otherwise, also before a byte moves). A key that is unknown, stale (its
 * MR deregistered or dead), of another domain, without the right, or for
 * a range its MR does not hold completes the descriptor with
 * IOVM_STATUS_KEY, bytes_completed 0, nothing written. An implicit
 * registration's children that the ranges need are made by the check.
 * A batch's children are descriptors of their own: each is checked when
 * its turn comes, a refused child touches nothing and the batch goes on
 * (IOVM_STATUS_BATCH_FAIL at the end); a bad key for the batch's list
 * runs no child.
 *
 * Only a registration deregistered (or wholly invalidated) while the
 * descriptor runs can stop it part way with IOVM_STATUS_KEY; then, as for
 * a page fault, bytes_completed says how far it got.
 */
#define IOVM_DESC_KEYED (1u << 2)

/*
 * The keys share dst2's place in an anonymous struct: standard C11; in C++
 * an extension g++ and clang++ both take, said here so that -pedantic does
 * not complain of it.
 */
#if defined(__cplusplus) && defined(__clang__)
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wnested-anon-types"
#pragma clang diagnostic ignored "-Wgnu-anonymous-struct"
#endif
struct iovm_desc {
	uint8_t op;           /* enum iovm_op */
	uint8_t flags;        /* IOVM_DESC_* */
	uint16_t sg_count;    /* GATHER and SCATTER */
	uint32_t pasid;       /* the domain of every address below; a batch's children run in the batch's */
	uint64_t src;         /* IOVA */
	uint64_t dst;         /* IOVA */
	uint64_t completion;  /* IOVA of a struct iovm_completion */
	uint32_t len;         /* bytes; BATCH: descriptors */
	uint32_t crc_seed;
	uint64_t pattern;     /* FILL, COMPARE_PATTERN */
	union {
		uint64_t dst2;    /* DUALCAST */
		__extension__ struct {
			uint32_t src_key; /* IOVM_DESC_KEYED: the MR of src, or 0 */
			uint32_t dst_key; /* IOVM_DESC_KEYED: the MR of dst, or 0 */
		};
	};
	uint64_t tag;         /* returned in the completion ring entry */
};
#if defined(__cplusplus) && defined(__clang__)
#pragma clang diagnostic pop
#endif

/* A scatter/gather list entry. */
struct iovm_sge {
	uint64_t iova;        /* or, in a keyed descriptor, a virtual address of the MR key names */
	uint32_t len;
	uint32_t key;         /* IOVM_DESC_KEYED: the entry's MR, or 0 for an IOVA */
};

/* Completion status. */
enum iovm_status {
	IOVM_STATUS_NONE = 0,      /* not completed yet */
	IOVM_STATUS_SUCCESS = 1,
	/*
	 * Stopped at fault_addr after bytes_completed: the bytes before it are
	 * done, in every destination (both of DUALCAST), and no byte after.
	 * In a scatter or gather, bytes count in list order: the entries
	 * before the faulting one are whole. A COPY that ran from the end
	 * (result 1) has its last bytes_completed bytes done. A fault on a
	 * list (a scatter's or a gather's) before any data moved completes
	 * with bytes_completed 0. A batch counts descriptors, not bytes: a
	 * fault on its list completes it with bytes_completed the number of
	 * children that ran before the fault (each with its own record).
	 */
	IOVM_STATUS_PAGE_FAULT = 2,
	IOVM_STATUS_INVALID = 3,    /* a bad descriptor */
	IOVM_STATUS_BATCH_FAIL = 4, /* a descriptor of the batch did not succeed */
	IOVM_STATUS_KEY = 5,        /* a key refused (IOVM_DESC_KEYED): see there */
};

/**
 * iovm_status_name() - the name of completion status @status (enum
 * iovm_status), for logs and messages: "success", "page fault"...
 *
 * Thread safety: safe; no context needed.
 *
 * Return: a static string; "unknown status" for a value the enum lacks.
 */
IOVM_API const char *iovm_status_name(int status);

struct iovm_completion {
	uint8_t status;           /* enum iovm_status; written last */
	uint8_t result;           /* COMPARE: 0 equal, 1 different; COPY: 1 when it ran from the end */
	uint8_t fault_access;     /* IOVM_MAP_READ or IOVM_MAP_WRITE of the fault */
	uint8_t fault_reason;     /* enum iovm_fault_reason */
	uint32_t bytes_completed;
	uint64_t fault_addr;      /* the IOVA that faulted */
	uint32_t crc;             /* CRC32C, COPY_CRC: of the bytes done, from crc_seed; 0 for the rest */
	uint32_t rsvd;
	uint64_t mismatch;        /* COMPARE: offset of the first difference */
};

/* An entry of the completion ring. */
struct iovm_cqe {
	uint64_t tag;             /* the descriptor's */
	uint32_t bytes_completed;
	uint8_t status;           /* enum iovm_status */
	uint8_t phase;            /* flips each time the ring wraps */
	uint16_t rsvd;
};

/* Queue flags. */
#define IOVM_QUEUE_POLLED (1u << 0) /* no worker thread: iovm_queue_process() runs it */
#define IOVM_QUEUE_CPU (1u << 1)    /* the worker runs on .cpu only (as a DPDK lcore) */
#define IOVM_QUEUE_RINGS_AT (1u << 2) /* the rings are where .sq_addr and .cq_addr say, not iovm's */

struct iovm_queue_attr {
	unsigned depth; /* a power of two, 2 to 65536; 0 means 256 */
	uint32_t flags; /* IOVM_QUEUE_* */
	unsigned cpu;   /* with IOVM_QUEUE_CPU: a CPU the process's cpuset allows */
	/*
	 * With IOVM_QUEUE_RINGS_AT: the device addresses of the submission ring
	 * (depth descriptors) and the completion ring (depth entries) in the
	 * domain attached for IOVM_PASID_NONE, as a driver programs a device's
	 * queue registers. For a device assigned to a guest they are the
	 * guest's addresses: its physical ones through stage 2, or its IOVAs
	 * through a nested stage 1, and the rings are in the guest's memory.
	 * Each ring is 4 KiB aligned, mapped for reading and writing, in
	 * memory iovm allocated (not the application's own), and contiguous
	 * in physical memory (as NVMe's CAP.CQR asks); the two do not overlap.
	 */
	uint64_t sq_addr, cq_addr;
};

/**
 * iovm_queue_create() - a queue of the device's engine, with its rings in DMA
 * memory, mapped in the domain attached for IOVM_PASID_NONE.
 *
 * With IOVM_QUEUE_RINGS_AT the rings are the caller's memory (a guest's, say),
 * found through the domain as the device finds them: the completion ring is
 * zeroed here, and the rings' frames stay pinned until the queue is
 * destroyed, so that memory freed under the queue (a guest shut down) is
 * not handed out again while iovm_queue_submit() still writes there. The
 * domain's mapping of the rings must not change while this call runs.
 *
 * Thread safety: safe.
 *
 * Return: 0; -EINVAL for bad attributes (IOVM_QUEUE_CPU with a polled queue,
 * a CPU the machine lacks or the process's cpuset excludes; rings that are
 * not 4 KiB aligned, or overlap); -EFAULT when a ring is not all mapped for
 * reading and writing, not iovm's memory, or not physically contiguous;
 * -ENODEV when nothing is attached for IOVM_PASID_NONE; -ENOMEM.
 */
IOVM_API int iovm_queue_create(struct iovm_device *dev, const struct iovm_queue_attr *attr,
			       struct iovm_queue **q);

/**
 * iovm_queue_destroy() - stop the queue (descriptors not fetched are not
 * run), unmap and free its rings.
 *
 * Thread safety: no other call on @q may run or follow.
 *
 * Return: 0, or -EINVAL.
 */
IOVM_API int iovm_queue_destroy(struct iovm_queue *q);

/**
 * iovm_queue_submit() - put a descriptor in the submission ring and ring the
 * doorbell.
 *
 * Thread safety: one submitter at a time per queue.
 *
 * Return: 0; -EINVAL; -EAGAIN when the ring is full: depth descriptors
 * submitted and not yet reaped (a completion not reaped holds its slot).
 */
IOVM_API int iovm_queue_submit(struct iovm_queue *q, const struct iovm_desc *d);

/**
 * iovm_queue_process() - run up to @budget descriptors on the calling thread
 * (queues created with IOVM_QUEUE_POLLED).
 *
 * Thread safety: one caller at a time per queue.
 *
 * Return: descriptors run; -EINVAL for a queue with a worker; -EBUSY when
 * another thread is running it.
 */
IOVM_API int iovm_queue_process(struct iovm_queue *q, unsigned budget);

/**
 * iovm_queue_reap() - take up to @max entries from the completion ring.
 *
 * Thread safety: one reaper at a time per queue.
 *
 * Return: entries taken (0 when none); -EINVAL.
 */
IOVM_API int iovm_queue_reap(struct iovm_queue *q, struct iovm_cqe *cqe, unsigned max);

struct iovm_queue_stats {
	uint64_t submitted, completed;
	uint64_t bytes;           /* moved or read */
	uint64_t faults;          /* descriptors that faulted */
	uint64_t fault_retries;   /* faults a handler resolved */
	uint64_t errors;          /* invalid descriptors */
	uint64_t iotlb_hits, iotlb_misses;
	uint64_t ring_faults;     /* the engine could not reach its own rings */
	uint64_t bus_faults;      /* application memory that vanished under an access */
	uint64_t page_requests;   /* faults on on-demand memory, answered: the access went on */
};

/**
 * iovm_queue_stats() - counters of the queue.
 *
 * Thread safety: safe; read while the engine runs, they may lag a little.
 *
 * Return: 0, or -EINVAL.
 */
IOVM_API int iovm_queue_stats(struct iovm_queue *q, struct iovm_queue_stats *st);

#ifdef __cplusplus
}
#endif

#endif /* IOVM_DEV_H */
