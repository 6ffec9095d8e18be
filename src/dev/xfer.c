/* SPDX-License-Identifier: MIT */
/*
 * xfer.c - the host's transfers: bytes between a buffer of the process
 * and an IOVA of a domain, moved by the software engine's own machinery
 * (access.c: the IOMMU, the foreign gate, page requests, the guard), for
 * a process that reaches memory on another's behalf. A shared domain's
 * view answers other processes' devices with it (iommu_delegate()): what
 * they get is what a device of this process would, no more.
 *
 * An engine without rings: a device of its own, hidden from the
 * application (not in the context's list, its attachment not counted by
 * iovm_domain_destroy()), attached at IOVM_PASID_NONE, and a bare queue
 * for its IOTLB and bounce buffers. One thread at a time.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/compiler.h"
#include "base/ctx.h"
#include "base/fault_inject.h"
#include "base/lock.h"
#include "base/sanitizer.h"
#include "dev/dev.h"
#include "dev/exec.h"
#include "os/guard.h"

/*
 * The bytes move as a device's DMA would, and the sanitizers are told so.
 * ThreadSanitizer: the application that gave the memory learns of them
 * from another process (a pipe, a completion there), which it cannot
 * see, so that it would take the copy for a race with the application's
 * own loads and stores; the copy is not recorded. AddressSanitizer: a
 * device reaches whole pages of a registration, also the bytes of a page
 * past the end of a malloc() block, which it poisons; the copy is not
 * checked (a loop it does not instrument, which compilers do not turn
 * back into a memcpy() it intercepts).
 */
#ifdef IOVM_ASAN
static __no_sanitize_address void unchecked_copy(void *dst, const void *src, uint64_t n)
{
	volatile uint8_t *d = dst;
	const volatile uint8_t *s = src;

	for (uint64_t i = 0; i < n; i++)
		d[i] = s[i];
}
#else
#define unchecked_copy memcpy
#endif

static void dma_copy(void *dst, const void *src, uint64_t n)
{
	tsan_ignore_begin();
	unchecked_copy(dst, src, n);
	tsan_ignore_end();
}

struct dev_xfer {
	struct iovm_device dev;
	struct iovm_queue *q;
};

int dev_xfer_open(struct iovm_ctx *ctx, struct iovm_domain *dom, struct dev_xfer **out)
{
	struct dev_xfer *xf = fi_calloc(1, sizeof(*xf));
	struct iovm_queue *q;
	int ret;

	if (!xf)
		return -ENOMEM;
	xf->dev.ctx = ctx;
	mutex_init(&xf->dev.lock);
	mutex_init(&xf->dev.fault_lock);
	list_init(&xf->dev.queues);
	ret = iommu_client_create(ctx->iommu, &xf->dev.client);
	if (ret)
		goto free_xfer;
	iommu_client_hide(xf->dev.client);
	ret = iommu_attach(xf->dev.client, dom, IOVM_PASID_NONE);
	if (ret)
		goto destroy_client;
	/* Aligned as queue.c's: its groups on cache lines of their own. */
	q = fi_aligned_alloc(CACHE_LINE_SIZE, align_up(sizeof(*q), CACHE_LINE_SIZE));
	ret = -ENOMEM;
	if (!q)
		goto detach;
	memset(q, 0, sizeof(*q));
	q->dev = &xf->dev;
	q->foreign_gate = phys_foreign_gate(ctx->phys);
	q->mem = ctx->mem;
	q->oracle = ctx->cfg.oracle;
	ret = iommu_iotlb_create(xf->dev.client, &q->tlb);
	if (ret)
		goto free_queue;
	xf->q = q;
	*out = xf;
	return 0;

free_queue:
	free(q);
detach:
	iommu_detach(xf->dev.client, IOVM_PASID_NONE);
destroy_client:
	iommu_client_destroy(xf->dev.client);
free_xfer:
	mutex_destroy(&xf->dev.fault_lock);
	mutex_destroy(&xf->dev.lock);
	free(xf);
	return ret;
}

void dev_xfer_close(struct dev_xfer *xf)
{
	if (!xf)
		return;
	iommu_iotlb_destroy(xf->q->tlb);
	free(xf->q->bounce);
	free(xf->q);
	iommu_detach(xf->dev.client, IOVM_PASID_NONE);
	iommu_client_destroy(xf->dev.client);
	mutex_destroy(&xf->dev.fault_lock);
	mutex_destroy(&xf->dev.lock);
	free(xf);
}

/* The transfer itself, in the section; *@done grows with each stretch. */
static void xfer_run(struct exec *x, iova_t iova, uint8_t *buf, uint64_t len, unsigned op, volatile uint64_t *done)
{
	unsigned access = op == IOMMU_DELEGATE_READ || op == IOMMU_DELEGATE_PROBE_READ ? IOVM_MAP_READ : IOVM_MAP_WRITE;
	bool probe = op == IOMMU_DELEGATE_PROBE || op == IOMMU_DELEGATE_PROBE_READ;
	struct side s;
	uint64_t n;

	x->write_exact = op == IOMMU_DELEGATE_WRITE;
	side_init(x, &s, 0, iova_val(iova), len, access);
	while (*done < len) {
		x->done = *done;
		if (stretch(x, len - *done, &n))
			return;
		if (probe) {
			*done = len;
			return;
		}
		if (op == IOMMU_DELEGATE_READ)
			dma_copy(buf + *done, s.ptr, n);
		else
			dma_copy(s.ptr, buf + *done, n);
		if (stretch_done(x, n))
			return;
		*done += n;
	}
}

int dev_xfer(struct dev_xfer *xf, iova_t iova, void *buf, uint64_t len, unsigned op, uint64_t *done,
	     unsigned *reason)
{
	static const struct iovm_desc d = { .op = IOVM_OP_COPY, .pasid = IOVM_PASID_NONE };
	struct iovm_completion c = { 0 };
	volatile uint64_t moved = 0;
	struct os_guard g;
	struct exec x;

	*done = 0;
	*reason = IOVM_FAULT_BUS;
	if (!xf || op < IOMMU_DELEGATE_READ || op > IOMMU_DELEGATE_PROBE_READ ||
	    (!buf && (op == IOMMU_DELEGATE_READ || op == IOMMU_DELEGATE_WRITE)) || !len ||
	    iova_val(iova) + len < iova_val(iova))
		return -EINVAL;
	exec_init(&x, xf->q, &d, &c);
	x.host = true;
	iommu_enter(xf->q->tlb);
	/* The application's memory may vanish under the copy: a bus fault then, as a device's. */
	if (sigsetjmp(g.jmp, 0)) {
		c.status = IOVM_STATUS_PAGE_FAULT;
		c.fault_reason = IOVM_FAULT_BUS;
	} else {
		os_guard_set(&g);
		xfer_run(&x, iova, buf, len, op, &moved);
		os_guard_clear(&g);
	}
	gate_release(&x);
	gate_unwait(&x);
	iommu_exit(xf->q->tlb);
	*done = moved;
	if (*done == len)
		return 0;
	if (c.status == IOVM_STATUS_PAGE_FAULT)
		*reason = c.fault_reason;
	return -EFAULT;
}
