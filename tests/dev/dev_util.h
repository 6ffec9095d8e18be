/* SPDX-License-Identifier: MIT */
/*
 * dev_util.h - what the IOMMU and engine tests share: a context with the
 * oracle on, a domain, a software engine with a polled queue, and running
 * one descriptor to completion.
 */
#ifndef IOVM_TESTS_DEV_UTIL_H
#define IOVM_TESTS_DEV_UTIL_H

#include <iovm.h>

#include "mem/mem_util.h"

struct rig {
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	struct iovm_device *dev;
	struct iovm_queue *q;
	struct iovm_completion *comp; /* a completion record in DMA memory */
	iovm_iova_t comp_iova;
};

static inline void rig_open(struct rig *r, const char *opts, const struct iovm_domain_attr *attr,
			    uint32_t qflags)
{
	struct iovm_domain_attr follow = { .type = IOVM_DOMAIN_MANAGED, .flags = IOVM_DOMAIN_FOLLOW_HEAP };
	struct iovm_queue_attr qa = { .depth = 256, .flags = qflags };

	r->ctx = open_ctx(opts);
	CHECK_OK(iovm_domain_create(r->ctx, attr ? attr : &follow, &r->dom));
	CHECK_OK(iovm_device_open(r->ctx, "sw", &r->dev));
	CHECK_OK(iovm_device_attach(r->dev, r->dom, IOVM_PASID_NONE));
	CHECK_OK(iovm_queue_create(r->dev, &qa, &r->q));
	r->comp = iovm_dma_zalloc(r->ctx, 4096, 4096, 0);
	CHECK(r->comp != NULL);
	if (iovm_dma_iova(r->dom, r->comp, &r->comp_iova))
		CHECK_OK(iovm_domain_map_ptr(r->dom, r->comp, 4096, IOVM_MAP_READ | IOVM_MAP_WRITE,
					     &r->comp_iova));
}

/* The oracle saw nothing wrong, in any domain the test names. */
static inline void no_violations(struct iovm_domain *dom)
{
	struct iovm_domain_stats st;

	CHECK_OK(iovm_domain_stats(dom, &st));
	CHECK_MSG(st.oracle_violations == 0, "%lu oracle violations",
		  (unsigned long)st.oracle_violations);
}

static inline void rig_close(struct rig *r)
{
	no_violations(r->dom);
	CHECK_OK(iovm_queue_destroy(r->q));
	CHECK_OK(iovm_device_close(r->dev));
	CHECK_OK(iovm_domain_destroy(r->dom));
	iovm_close(r->ctx);
}

/* Submit @d with a completion record, run it (polled or by the worker), return the record. */
/* Run @d on polled queue @q, with no completion record: its completion ring entry's status. */
static inline uint8_t run_polled(struct iovm_queue *q, struct iovm_desc d)
{
	struct iovm_cqe cqe;
	int n = 0;

	CHECK_OK(iovm_queue_submit(q, &d));
	for (unsigned spins = 0; n == 0; spins++) {
		CHECK(iovm_queue_process(q, 1) >= 0);
		n = iovm_queue_reap(q, &cqe, 1);
		CHECK(n >= 0);
		CHECK(spins < 1000000u);
	}
	return cqe.status;
}

static inline struct iovm_completion run_desc(struct rig *r, struct iovm_desc d)
{
	struct iovm_cqe cqe;
	int n = 0;

	memset(r->comp, 0, sizeof(*r->comp));
	d.flags |= IOVM_DESC_COMPLETION;
	d.completion = r->comp_iova.addr;
	CHECK_OK(iovm_queue_submit(r->q, &d));
	for (unsigned spins = 0; n == 0; spins++) {
		if (iovm_queue_process(r->q, 1) == -EINVAL && spins % 1024 == 0)
			usleep(10); /* a worker runs it */
		n = iovm_queue_reap(r->q, &cqe, 1);
		CHECK(n >= 0);
		CHECK(spins < 100000000u);
	}
	CHECK_EQ(cqe.status, __atomic_load_n(&r->comp->status, __ATOMIC_ACQUIRE));
	CHECK_EQ(cqe.tag, d.tag);
	return *r->comp;
}

static inline uint64_t iova_of(struct rig *r, const void *p)
{
	iovm_iova_t i;

	CHECK_OK(iovm_dma_iova(r->dom, p, &i));
	return i.addr;
}

#endif /* IOVM_TESTS_DEV_UTIL_H */
