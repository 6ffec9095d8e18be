/* SPDX-License-Identifier: MIT */
/*
 * test_device_faults.c - faults no domain can take: a request with a PASID
 * that has nothing attached goes to the device's own fault log
 * (iovm_device_fault_pop()), as VT-d logs a request whose PASID entry is
 * not present, bounded, with what overflows counted.
 */
#include "dev/dev_util.h"

#define RW (IOVM_MAP_READ | IOVM_MAP_WRITE)

static const char *opts = "page_size=4K,host_pa=off,oracle=on";

/*
 * A request with a PASID that has nothing attached (never, or no longer)
 * faults with IOVM_FAULT_NO_DOMAIN; no domain records it, the one that
 * was attached included; the device's own log does, bounded, with the
 * overflow counted.
 */
TEST(unattached_pasid_faults_go_to_the_device_log)
{
	struct rig r;
	struct iovm_domain *d1;
	struct iovm_device_info info;
	struct iovm_completion c;
	struct iovm_fault f;
	uint8_t *m;
	iovm_iova_t at = IOVM_IOVA(0x7000000);
	struct iovm_dma_xlate x;

	rig_open(&r, opts, NULL, IOVM_QUEUE_POLLED);
	CHECK_OK(iovm_domain_create(r.ctx, NULL, &d1));
	CHECK_OK(iovm_device_attach(r.dev, d1, 1));
	m = iovm_dma_zalloc(r.ctx, 4096, 4096, 0);
	CHECK_OK(iovm_dma_xlate(r.ctx, m, &x));
	CHECK_OK(iovm_domain_map(d1, &at, x.pa, 4096, RW));
	{
		iovm_iova_t ci = r.comp_iova;
		struct iovm_dma_xlate xc;

		CHECK_OK(iovm_dma_xlate(r.ctx, r.comp, &xc));
		CHECK_OK(iovm_domain_map(d1, &ci, xc.pa, 4096, RW));
	}
	/* Attached: a fault in d1 goes to d1, not to the device's log. */
	c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_FILL, .pasid = 1, .dst = at.addr + 4096, .len = 8 });
	CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(c.fault_reason, IOVM_FAULT_NOT_PRESENT);
	CHECK_OK(iovm_domain_fault_pop(d1, &f));
	CHECK_EQ(iovm_device_fault_pop(r.dev, &f), -EAGAIN);

	/* Detached: a copy through PASID 1 faults, and the device's log has it. */
	CHECK_OK(iovm_device_detach(r.dev, 1));
	CHECK_OK(iovm_queue_submit(r.q, &(struct iovm_desc){ .op = IOVM_OP_COPY, .pasid = 1, .src = at.addr,
							    .dst = at.addr + 64, .len = 64, .tag = 7 }));
	CHECK_EQ(iovm_queue_process(r.q, 1), 1);
	{
		struct iovm_cqe cqe;

		CHECK_EQ(iovm_queue_reap(r.q, &cqe, 1), 1);
		CHECK_EQ(cqe.status, IOVM_STATUS_PAGE_FAULT);
		CHECK_EQ(cqe.tag, 7);
	}
	CHECK_EQ(iovm_domain_fault_pop(d1, &f), -EAGAIN);
	CHECK_OK(iovm_device_fault_pop(r.dev, &f));
	CHECK_EQ(f.reason, IOVM_FAULT_NO_DOMAIN);
	CHECK_EQ(f.pasid, 1);
	CHECK_EQ(f.iova.addr, at.addr);
	CHECK_EQ(f.access, IOVM_MAP_READ);
	CHECK_EQ(f.device, iovm_device_id(r.dev));
	CHECK_EQ(f.seq, 1);
	CHECK_EQ(iovm_device_fault_pop(r.dev, &f), -EAGAIN);
	/* A PASID never attached: the same. */
	CHECK_EQ(run_polled(r.q, (struct iovm_desc){ .op = IOVM_OP_FILL, .pasid = 9, .dst = 0x1000, .len = 8 }),
		 IOVM_STATUS_PAGE_FAULT);
	CHECK_OK(iovm_device_fault_pop(r.dev, &f));
	CHECK_EQ(f.pasid, 9);
	CHECK_EQ(f.access, IOVM_MAP_WRITE);
	CHECK_EQ(f.seq, 2);
	/* Bounded: 64 kept, in order, the rest counted. */
	for (unsigned i = 0; i < 100; i++)
		CHECK_EQ(run_polled(r.q, (struct iovm_desc){ .op = IOVM_OP_FILL, .pasid = 1, .dst = 0x1000 + i * 8,
							     .len = 8 }),
			 IOVM_STATUS_PAGE_FAULT);
	CHECK_OK(iovm_device_query(r.dev, &info));
	CHECK_EQ(info.unattached_faults, 102);
	CHECK_EQ(info.unattached_faults_dropped, 36);
	for (unsigned i = 0; i < 64; i++) {
		CHECK_OK(iovm_device_fault_pop(r.dev, &f));
		CHECK_EQ(f.iova.addr, 0x1000 + i * 8);
		CHECK_EQ(f.seq, 3 + i);
	}
	CHECK_EQ(iovm_device_fault_pop(r.dev, &f), -EAGAIN);
	no_violations(d1);
	CHECK_OK(iovm_domain_destroy(d1));
	rig_close(&r);
}

int main(void)
{
	test_init();
	RUN(unattached_pasid_faults_go_to_the_device_log);
	return 0;
}
