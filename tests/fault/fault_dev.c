/* SPDX-License-Identifier: MIT */
/*
 * fault_dev.c - fault-injection scenarios of iovm/dev.h: the software engine
 * opened, attached by PASID, queues polled and with a worker thread, copies
 * run through the IOMMU and checked byte for byte, the VFIO-only calls
 * refused, and everything closed in order.
 */
#include <sched.h>

#include "fault.h"

#define RW (IOVM_MAP_READ | IOVM_MAP_WRITE)

/* Submit @d and wait for its completion ring entry: its status. */
static uint8_t run_desc(struct iovm_queue *q, bool polled, struct iovm_desc d)
{
	struct iovm_cqe cqe;
	int n = 0;

	FI_INT(iovm_queue_submit(q, &d));
	for (unsigned long spins = 0; n == 0; spins++) {
		if (polled)
			FI_INT(iovm_queue_process(q, 4));
		else
			sched_yield();
		n = (int)FI_INT(iovm_queue_reap(q, &cqe, 1));
		CHECK(spins < 10000000ul);
	}
	CHECK_EQ(cqe.tag, d.tag);
	return cqe.status;
}

/* A copy of @len bytes from @a to @b through @dom's IOVAs (a domain following the heap). */
static void copy_through(struct iovm_queue *q, bool polled, struct iovm_domain *dom, uint32_t pasid,
			 uint8_t *a, uint8_t *b, uint32_t len)
{
	iovm_iova_t src, dst;

	for (uint32_t i = 0; i < len; i++)
		a[i] = (uint8_t)(i * 7 + pasid);
	memset(b, 0, len);
	FI_INT(iovm_dma_iova(dom, a, &src));
	FI_INT(iovm_dma_iova(dom, b, &dst));
	CHECK_EQ(run_desc(q, polled,
			  (struct iovm_desc){ .op = IOVM_OP_COPY, .pasid = pasid, .src = src.addr, .dst = dst.addr,
					      .len = len, .tag = len }),
		 IOVM_STATUS_SUCCESS);
	CHECK(memcmp(a, b, len) == 0);
}

static void engine(bool polled)
{
	struct iovm_ctx *ctx = fault_open("page_size=4K,host_pa=off,oracle=on");
	struct iovm_domain_attr follow = { .type = IOVM_DOMAIN_MANAGED, .flags = IOVM_DOMAIN_FOLLOW_HEAP };
	struct iovm_queue_attr qa = { .depth = 64, .flags = polled ? IOVM_QUEUE_POLLED : 0 };
	struct iovm_domain *dom, *other;
	struct iovm_device_info info;
	struct iovm_queue_stats qs;
	struct iovm_domain_stats ds;
	struct iovm_device *dev;
	struct iovm_queue *q;
	uint8_t *a, *b, cfg[4];
	size_t len;
	void *bar;

	a = FI_PTR(iovm_dma_alloc(ctx, 64 << 10, 64, 0));
	b = FI_PTR(iovm_dma_alloc(ctx, 64 << 10, 64, 0));
	FI_INT(iovm_domain_create(ctx, &follow, &dom));
	FI_INT(iovm_device_open(ctx, "sw", &dev));
	CHECK(iovm_device_id(dev) != 0);
	FI_INT(iovm_device_query(dev, &info));
	CHECK_EQ(info.kind, IOVM_DEVICE_SW);
	{
		struct iovm_device_verbs v;

		/* Fails the same whatever fails under it: not a verbs device. */
		CHECK_EQ(iovm_device_verbs(dev, &v), -EOPNOTSUPP);
	}
	FI_INT(iovm_device_attach(dev, dom, IOVM_PASID_NONE));
	FI_INT(iovm_queue_create(dev, &qa, &q));
	copy_through(q, polled, dom, IOVM_PASID_NONE, a, b, 64 << 10);
	/* A second domain at PASID 1: the engine reaches it by the descriptor's PASID. */
	FI_INT(iovm_domain_create(ctx, &follow, &other));
	FI_INT(iovm_device_attach(dev, other, 1));
	copy_through(q, polled, other, 1, b, a, 4096);
	FI_INT(iovm_device_detach(dev, 1));
	FI_INT(iovm_domain_destroy(other));
	{
		struct iovm_fault f;

		/* No fault without an attached domain was taken: the device's own log is empty. */
		FI_EXPECT(iovm_device_fault_pop(dev, &f), -EAGAIN);
	}
	/* What only a VFIO device has. */
	FI_EXPECT(iovm_device_bar(dev, 0, &bar, &len), -EOPNOTSUPP);
	FI_EXPECT(iovm_device_config_read(dev, 0, cfg, 4), -EOPNOTSUPP);
	FI_EXPECT(iovm_device_config_write(dev, 4, cfg, 2), -EOPNOTSUPP);
	FI_EXPECT(iovm_device_msi(dev, -1), -EOPNOTSUPP);
	FI_INT(iovm_queue_stats(q, &qs));
	CHECK_EQ(qs.completed, 2);
	CHECK_EQ(qs.errors, 0);
	FI_INT(iovm_domain_stats(dom, &ds));
	CHECK_EQ(ds.oracle_violations, 0);
	FI_INT(iovm_queue_destroy(q));
	FI_INT(iovm_device_close(dev));
	FI_INT(iovm_domain_destroy(dom));
	FI_INT(iovm_dma_free(ctx, a));
	FI_INT(iovm_dma_free(ctx, b));
	CHECK_EQ(iovm_close(ctx), 0);
}

static void sc_polled(void)
{
	engine(true);
}

static void sc_worker(void)
{
	engine(false);
}

static const struct fault_scenario fault_dev_scenarios[] = {
	{ "engine, polled queue", sc_polled },
	{ "engine, worker thread", sc_worker },
	{ NULL, NULL },
};
