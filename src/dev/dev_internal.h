/* SPDX-License-Identifier: MIT */
/*
 * dev_internal.h - the structures the files of src/dev share.
 */
#ifndef IOVM_DEV_INTERNAL_H
#define IOVM_DEV_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include <iovm/dev.h>

#include "base/addr.h"
#include "base/list.h"

struct mem_space;
#include "base/lock.h"
#include "dev/dev.h"
#include "iommu/iommu.h"
#include "os/vfio.h"

struct dev_space {
	struct iovm_ctx *ctx;
	struct mutex lock;     /* devices */
	struct list_node devices; /* under lock */
};

/* Faults a device's own log keeps (iovm_device_fault_pop()); beyond, counted as dropped. */
#define DEV_FAULT_LOG 64

struct iovm_device {
	struct iovm_ctx *ctx;
	struct list_node link;        /* in dev_space.devices, under its lock */
	struct iommu_client *client;
	struct mutex lock;         /* queues */
	struct list_node queues;      /* under lock */
	struct vfio_dev *vfio;        /* a real device (vfio.c); NULL for the software engine */
	struct verbs_dev *verbs;      /* an RDMA device (verbs.c); NULL otherwise */
	/*
	 * Faults no domain can take: requests with a PASID that has nothing
	 * attached, as an IOMMU records a request whose PASID entry is not
	 * present in its own fault log, against the requester. A ring.
	 */
	struct mutex fault_lock;
	struct iovm_fault fault_log[DEV_FAULT_LOG]; /* under fault_lock */
	unsigned fault_head, fault_count;           /* under fault_lock */
	uint64_t faults_seen, faults_dropped;       /* under fault_lock */
};

/*
 * device.c: report a fault the device took: to the domain attached for its
 * PASID (its stage's, nested), or, with none attached, to the device's own
 * log. Called inside a device-side section, so the attachment it sees
 * stays until the fault is recorded (a detach waits for the section).
 */
void dev_fault_report(struct iovm_device *dev, struct iovm_fault *f);
void dev_fault_counts(struct iovm_device *dev, uint64_t *seen, uint64_t *dropped);

/* vfio.c: the device behind "vfio:<PCI address>", through the interface @api names. */
struct vfio_dev;
int vfio_dev_open(struct iovm_device *dev, const char *bdf, enum os_vfio_api api);
void vfio_dev_close(struct iovm_device *dev);
int vfio_dev_attach(struct iovm_device *dev, struct iovm_domain *dom, uint32_t pasid);
int vfio_dev_detach(struct iovm_device *dev, uint32_t pasid);

/*
 * verbs.c: the device behind "verbs:<name>", its protection domain bound to
 * one VA domain. Without rdma-core's headers at build time, open says
 * -EOPNOTSUPP (verbs_none.c).
 */
struct verbs_dev;
int verbs_dev_open(struct iovm_device *dev, const char *name);
void verbs_dev_close(struct iovm_device *dev);
int verbs_dev_attach(struct iovm_device *dev, struct iovm_domain *dom, uint32_t pasid);
int verbs_dev_detach(struct iovm_device *dev, uint32_t pasid);

/*
 * A queue's fields are grouped by who writes them, each group on its own
 * cache lines, as a device keeps its doorbell registers apart: a submitter,
 * an engine and a reaper on different CPUs then move only the lines they
 * must (the rings, and the doorbell the other side reads).
 */
/*
 * Another process's memory (PHYS_REACH_REMOTE) moves through a buffer of
 * this many bytes per side, one pread() or pwrite() of its memory file
 * each: the engine never dereferences a pointer there.
 */
#define REMOTE_BOUNCE 16384
#define REMOTE_SIDES 3
static_assert(REMOTE_BOUNCE >= IOMMU_DELEGATE_SPAN, "a delegated span in one ask");

struct iovm_queue {
	/* Set at creation, read-only after. */
	struct iovm_device *dev;
	struct list_node link;        /* in iovm_device.queues, under its lock */
	struct iommu_iotlb *tlb;
	_Atomic uint32_t *foreign_gate; /* phys_foreign_gate() of the context */
	struct mem_space *mem;        /* with the oracle: non-coherent buffers are checked */
	bool oracle;
	unsigned depth;
	uint32_t flags;
	/* The rings, in DMA memory or where the caller put them: the CPU's pointers and the device's IOVAs. */
	struct iovm_desc *sq;
	struct iovm_cqe *cq;
	iova_t sq_iova, cq_iova;
	bool rings_mapped;            /* mapped by us: unmapped at destroy */
	bool rings_given;             /* IOVM_QUEUE_RINGS_AT: the caller's, pinned at sq_pa and cq_pa */
	pa_t sq_pa, cq_pa;
	bool has_worker;
	/*
	 * The worker's sleep handshake is an asymmetric Dekker: the sleeper
	 * stores "sleeping" and forces a barrier on every thread
	 * (membarrier(2)), so a submitter needs only a compiler barrier between
	 * its doorbell store and its load of "sleeping". False where the kernel
	 * has no expedited membarrier: both sides fence then.
	 */
	bool light_doorbell;
	pthread_t worker;
	dev_page_request_fn page_request; /* set before the queue runs: remote windows' page requests */
	void *page_request_arg;
	/*
	 * The engine's (whoever runs the queue): REMOTE_SIDES buffers of
	 * REMOTE_BOUNCE bytes, made at the first access to another process's
	 * memory, one per side of the descriptor under way (a batch's child
	 * runs while its parent has none).
	 */
	uint8_t *bounce;

	/* The submitter's. */
	_Atomic uint32_t sq_tail __cacheline_aligned; /* the doorbell */
	_Atomic uint64_t submitted;

	/* The engine's: the worker's, or the one polling caller's. */
	_Atomic uint32_t sq_head __cacheline_aligned;
	uint32_t cq_tail;
	uint32_t cq_head_seen;        /* cq_head when it last looked: the reaper's line, read when it must */
	uint8_t cq_phase;             /* the phase it writes */
	_Atomic bool broken;          /* the engine could not reach its rings */
	_Atomic bool busy;            /* a polling caller is running it */
	uint32_t sections_left;       /* times a descriptor left its section for a fault handler */
	/* Counters, read racily by iovm_queue_stats(). */
	_Atomic uint64_t completed, bytes, faults, fault_retries, errors, ring_faults, bus_faults;
	_Atomic uint64_t page_requests; /* faults the resolver answered (on-demand memory) */

	/* The reaper's. */
	_Atomic uint32_t cq_head __cacheline_aligned; /* read by the submitter: ring room */
	uint32_t reap_head;
	uint8_t reap_phase;           /* the phase it expects */

	/* Sleep and wake-up: written when the worker sleeps or stops, read at every submit. */
	_Atomic bool sleeping __cacheline_aligned;
	_Atomic bool stop;
	struct mutex wake_lock;
	pthread_cond_t wake;
};

/* engine.c: run the descriptors the submission ring holds, up to @budget. */
unsigned engine_run(struct iovm_queue *q, unsigned budget);
/* engine.c: a queue's worker thread (queue.c starts it), running it until q->stop. */
void *engine_worker(void *arg);

/* ops.c: execute one descriptor (inside a device-side section). */
void engine_execute(struct iovm_queue *q, const struct iovm_desc *d, struct iovm_completion *c,
		    bool in_batch);

/*
 * ops.c: write a descriptor's completion record at IOVA @completion of
 * @pasid's domain, through the IOMMU, its status last (inside a
 * device-side section, which it may leave and enter again, as a fault
 * handler does: q->sections_left counts it).
 */
/* copy.c: @len bytes from @src to @dst, which do not overlap: a hot COPY's (vector loads and stores where it pays). */
void engine_copy_bytes(void *dst, const void *src, uint32_t len);
void engine_write_completion(struct iovm_queue *q, uint32_t pasid, uint64_t completion,
			     const struct iovm_completion *c);

/* crc32c.c */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

#endif /* IOVM_DEV_INTERNAL_H */
