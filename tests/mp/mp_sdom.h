/* SPDX-License-Identifier: MIT */
/*
 * mp_sdom.h - what the shared-domain tests have in common: a software
 * device of this process whose queue's rings are in a domain of the
 * process's own (at IOVM_PASID_NONE) and which reaches the shared domain
 * at PASID SDOM_PASID, where every descriptor goes.
 */
#ifndef IOVM_TESTS_MP_SDOM_H
#define IOVM_TESTS_MP_SDOM_H

#include <sched.h>

#include <iovm.h>

#include "dev/dev_util.h"

#define SDOM_PASID 1
#define SDOM_PATTERN(tag) (UINT64_C(0x0101010101010101) * (uint8_t)(tag))

struct devq {
	struct iovm_domain *shared;
	struct iovm_device *dev;
	struct iovm_domain *rings;
	struct iovm_queue *q;
};

static inline struct devq devq_open(struct iovm_ctx *ctx, struct iovm_domain *dom)
{
	struct iovm_queue_attr qa = { .depth = 16, .flags = IOVM_QUEUE_POLLED };
	struct devq d = { .shared = dom };

	CHECK_OK(iovm_device_open(ctx, "sw", &d.dev));
	CHECK_OK(iovm_domain_create(ctx, NULL, &d.rings));
	CHECK_OK(iovm_device_attach(d.dev, d.rings, IOVM_PASID_NONE));
	CHECK_OK(iovm_device_attach(d.dev, dom, SDOM_PASID));
	CHECK_OK(iovm_queue_create(d.dev, &qa, &d.q));
	return d;
}

/* Whether the oracle found nothing wrong in this process's accesses to the shared domain (checked: iovm_domain_stats). */
static inline void devq_oracle_clean(struct devq *d)
{
	struct iovm_domain_stats st;

	CHECK_OK(iovm_domain_stats(d->shared, &st));
	CHECK_MSG(st.oracle_violations == 0, "the oracle saw %llu violations in %llu checks",
		  (unsigned long long)st.oracle_violations, (unsigned long long)st.oracle_checks);
}

static inline void devq_close(struct devq *d)
{
	devq_oracle_clean(d);
	CHECK_OK(iovm_queue_destroy(d->q));
	CHECK_OK(iovm_device_close(d->dev));
	CHECK_OK(iovm_domain_destroy(d->rings));
}

/* One descriptor in the shared domain, polled to its end: its status. */
static inline uint8_t devq_run(struct devq *d, struct iovm_desc desc)
{
	desc.pasid = SDOM_PASID;
	return run_polled(d->q, desc);
}

static inline uint8_t devq_fill(struct devq *d, uint64_t iova, uint64_t len, uint8_t tag)
{
	return devq_run(d, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = iova, .len = len,
					       .pattern = SDOM_PATTERN(tag) });
}

static inline bool all_bytes(const uint8_t *p, size_t len, uint8_t v)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != v)
			return false;
	return true;
}

/* Map @len bytes of the shared heap at @buf at the IOVA @iova asks (the heap is one PA range). */
static inline int map_at(struct iovm_ctx *ctx, struct iovm_domain *dom, void *buf, size_t len, iovm_iova_t *iova)
{
	struct iovm_dma_xlate x;

	CHECK_OK(iovm_dma_xlate(ctx, buf, &x));
	CHECK(x.contig >= len);
	return iovm_domain_map(dom, iova, x.pa, len, IOVM_MAP_READ | IOVM_MAP_WRITE);
}

/* Shared-heap memory of this process, zeroed, mapped read-write in the shared domain @dom: a buffer of its devices. */
struct sdom_buf {
	uint8_t *p;
	uint64_t iova;
	size_t len;
};

static inline struct sdom_buf sdom_buf_open(struct iovm_ctx *ctx, struct iovm_domain *dom, size_t len)
{
	struct sdom_buf b = { .len = len };
	iovm_iova_t at = IOVM_IOVA(IOVM_ADDR_INVALID);

	b.p = iovm_dma_alloc(ctx, len, 4096, 0);
	CHECK(b.p != NULL);
	memset(b.p, 0, len);
	CHECK_OK(iovm_domain_map_ptr(dom, b.p, len, IOVM_MAP_READ | IOVM_MAP_WRITE, &at));
	b.iova = at.addr;
	return b;
}

static inline void sdom_buf_close(struct iovm_ctx *ctx, struct iovm_domain *dom, struct sdom_buf *b)
{
	CHECK_OK(iovm_domain_unmap(dom, IOVM_IOVA(b->iova), b->len));
	CHECK_OK(iovm_dma_free(ctx, b->p));
}

/*
 * The same device with a worker thread (not polled): its rings in a domain
 * of the process's own at IOVM_PASID_NONE, the shared domain at SDOM_PASID.
 */
struct sdom_wq {
	struct iovm_device *dev;
	struct iovm_domain *rings;
	struct iovm_queue *q;
	unsigned depth;
};

static inline struct sdom_wq sdom_wq_open(struct iovm_ctx *ctx, struct iovm_domain *shared, unsigned depth)
{
	struct iovm_queue_attr qa = { .depth = depth };
	struct sdom_wq d = { .depth = depth };

	CHECK_OK(iovm_device_open(ctx, "sw", &d.dev));
	CHECK_OK(iovm_domain_create(ctx, NULL, &d.rings));
	CHECK_OK(iovm_device_attach(d.dev, d.rings, IOVM_PASID_NONE));
	CHECK_OK(iovm_device_attach(d.dev, shared, SDOM_PASID));
	CHECK_OK(iovm_queue_create(d.dev, &qa, &d.q));
	return d;
}

static inline void sdom_wq_close(struct sdom_wq *d)
{
	CHECK_OK(iovm_queue_destroy(d->q));
	CHECK_OK(iovm_device_close(d->dev));
	CHECK_OK(iovm_domain_destroy(d->rings));
}

/* Reap @n completions of @d into @cqe (spinning; a hang ends in the test's watchdog). */
static inline void sdom_wq_reap(struct sdom_wq *d, struct iovm_cqe *cqe, unsigned n)
{
	unsigned got = 0;

	while (got < n) {
		int r = iovm_queue_reap(d->q, cqe + got, n - got);

		CHECK(r >= 0);
		if (r == 0)
			sched_yield();
		got += (unsigned)r;
	}
}

/* One descriptor in the shared domain, to its end: its completion ring entry. */
static inline struct iovm_cqe sdom_wq_run(struct sdom_wq *d, struct iovm_desc desc)
{
	struct iovm_cqe cqe;

	desc.pasid = SDOM_PASID;
	CHECK_OK(iovm_queue_submit(d->q, &desc));
	sdom_wq_reap(d, &cqe, 1);
	CHECK_EQ(cqe.tag, desc.tag);
	return cqe;
}

#endif /* IOVM_TESTS_MP_SDOM_H */
