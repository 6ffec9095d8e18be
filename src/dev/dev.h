/* SPDX-License-Identifier: MIT */
/*
 * dev.h - devices, as the context sees them: a list to close at iovm_close().
 */
#ifndef IOVM_DEV_DEV_H
#define IOVM_DEV_DEV_H

#include <stdint.h>

#include "base/addr.h"

struct iovm_ctx;
struct iovm_domain;
struct dev_space;
struct iovm_queue;

int dev_create(struct iovm_ctx *ctx, struct dev_space **out);
/* Closes the devices left open. */
void dev_destroy(struct dev_space *ds);

/*
 * Page requests on another process's memory (a remote window): a
 * descriptor that asks to block on faults and finds nothing mapped at the
 * other process's address @rva asks @fn, outside its device-side section,
 * whether the page is mapped now (0: try again; else the descriptor
 * completes with the fault). Set once, before the queue runs anything.
 */
typedef int (*dev_page_request_fn)(void *arg, uint64_t rva, unsigned access);
void dev_queue_set_page_request(struct iovm_queue *q, dev_page_request_fn fn, void *arg);

/*
 * The host's transfers (xfer.c): bytes between a buffer of this process
 * and IOVAs of @dom, as this process's devices reach them (its IOMMU,
 * gate and page requests), for another process's device in a shared
 * domain (iommu_delegate()). An engine with no rings, hidden: its
 * attachment does not keep @dom from being destroyed, so close it in the
 * domain's quiesce. One thread at a time.
 */
struct dev_xfer;
int dev_xfer_open(struct iovm_ctx *ctx, struct iovm_domain *dom, struct dev_xfer **out);
void dev_xfer_close(struct dev_xfer *xf);
/*
 * dev_xfer() - @op (enum iommu_delegate_op) over [iova, +len): the bytes
 * done in *@done, 0 when all were, else -EFAULT (the reason in *@reason,
 * an IOVM_FAULT_*) or -EINVAL. Never delegates in turn: another
 * process's registration is a bus fault here. Outside any section.
 */
int dev_xfer(struct dev_xfer *xf, iova_t iova, void *buf, uint64_t len, unsigned op, uint64_t *done,
	     unsigned *reason);

/*
 * For the tests: called by the engine once it translated a completion
 * record in another process's gated memory (a mirrored MR), before it
 * counts itself in there, so that a test can let that process's munmap()
 * go by meanwhile. NULL in normal use.
 */
typedef void (*dev_test_hook)(void);
extern _Atomic(dev_test_hook) dev_test_remote_record;

#endif /* IOVM_DEV_DEV_H */
