/* SPDX-License-Identifier: MIT */
/*
 * dev_internal.h - the structures the files of src/dev share.
 */
#ifndef IOVM_DEV_INTERNAL_H
#define IOVM_DEV_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include <iovm/dev.h>

#include "base/list.h"
#include "iommu/iommu.h"

struct dev_space {
	struct iovm_ctx *ctx;
	pthread_mutex_t lock;     /* devices */
	struct list_node devices; /* under lock */
};

struct iovm_device {
	struct iovm_ctx *ctx;
	struct list_node link;        /* in dev_space.devices, under its lock */
	struct iommu_client *client;
	pthread_mutex_t lock;         /* queues */
	struct list_node queues;      /* under lock */
};

struct iovm_queue {
	struct iovm_device *dev;
	struct list_node link;        /* in iovm_device.queues, under its lock */
	struct iommu_iotlb *tlb;
	unsigned depth;
	uint32_t flags;

	/* The rings, in DMA memory: the CPU's pointers and the device's IOVAs. */
	struct iovm_desc *sq;
	struct iovm_cqe *cq;
	uint64_t sq_iova, cq_iova;
	bool rings_mapped;            /* mapped by us: unmapped at destroy */

	/* Doorbells: as the registers of a device, in host memory. */
	_Atomic uint32_t sq_tail;     /* written by the submitter */
	_Atomic uint32_t sq_head;     /* written by the engine */
	_Atomic uint32_t cq_head;     /* written by the reaper */
	uint32_t cq_tail;             /* the engine's */
	uint8_t cq_phase;             /* the engine's: the phase it writes */
	uint32_t reap_head;           /* the reaper's */
	uint8_t reap_phase;           /* the reaper's: the phase it expects */
	_Atomic bool broken;          /* the engine could not reach its rings */

	/* The worker, or the one polling caller. */
	pthread_t worker;
	bool has_worker;
	_Atomic bool stop;
	_Atomic bool sleeping;
	pthread_mutex_t wake_lock;
	pthread_cond_t wake;
	_Atomic bool busy;

	/* Counters: written by the engine (and submitter), read racily. */
	_Atomic uint64_t submitted, completed, bytes, faults, fault_retries, errors, ring_faults;
};

/* engine.c: run the descriptors the submission ring holds, up to @budget. */
unsigned engine_run(struct iovm_queue *q, unsigned budget);

/* ops.c: execute one descriptor (inside a device-side section). */
void engine_execute(struct iovm_queue *q, const struct iovm_desc *d, struct iovm_completion *c,
		    bool in_batch);

/* crc32c.c */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

#endif /* IOVM_DEV_INTERNAL_H */
