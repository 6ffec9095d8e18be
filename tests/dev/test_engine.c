/* SPDX-License-Identifier: MIT */
/*
 * test_engine.c - the software DMA engine: every operation against the
 * CPU's own result, completion records and the completion ring, a worker
 * thread, faults (not present, permission, no domain), blocking on a fault
 * that a handler resolves, PASID separation, one domain shared by two
 * devices (zero-copy), and an engine that cannot reach its own rings.
 */
#include "dev/crc32c_ref.h"
#include "dev/dev_util.h"

#define RW (IOVM_MAP_READ | IOVM_MAP_WRITE)

static const char *opts = "page_size=4K,host_pa=off,oracle=on";

static void fill_random(uint8_t *p, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(test_rand(&seed) >> 56);
}

TEST(operations)
{
	struct rig r;
	size_t n = 3 * 4096 + 123; /* spans pages at uneven offsets */
	uint8_t *a, *b, *c2, *exp;
	struct iovm_completion c;

	rig_open(&r, opts, NULL, IOVM_QUEUE_POLLED);
	a = iovm_dma_alloc(r.ctx, n + 100, 0, 0);
	b = iovm_dma_alloc(r.ctx, n + 100, 0, 0);
	c2 = iovm_dma_alloc(r.ctx, n + 100, 0, 0);
	exp = malloc(n);
	fill_random(a, n, 1);

	c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = iova_of(&r, a + 7),
					     .dst = iova_of(&r, b + 3), .len = (uint32_t)(n - 7), .tag = 1 });
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	CHECK_EQ(c.bytes_completed, n - 7);
	CHECK(!memcmp(a + 7, b + 3, n - 7));

	c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = iova_of(&r, b), .len = (uint32_t)n,
					     .pattern = 0x0102030405060708ull });
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	for (size_t i = 0; i < n; i++)
		CHECK_EQ(b[i], (uint8_t)(0x0102030405060708ull >> (8 * (i % 8))));

	memcpy(b, a, n);
	c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_COMPARE, .src = iova_of(&r, a),
					     .dst = iova_of(&r, b), .len = (uint32_t)n });
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	CHECK_EQ(c.result, 0);
	b[5000] ^= 1;
	c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_COMPARE, .src = iova_of(&r, a),
					     .dst = iova_of(&r, b), .len = (uint32_t)n });
	CHECK_EQ(c.result, 1);
	CHECK_EQ(c.mismatch, 5000);

	memset(b, 0xcd, n);
	c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_COMPARE_PATTERN, .src = iova_of(&r, b),
					     .len = (uint32_t)n, .pattern = 0xcdcdcdcdcdcdcdcdull });
	CHECK_EQ(c.result, 0);
	b[n - 1] = 0;
	c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_COMPARE_PATTERN, .src = iova_of(&r, b),
					     .len = (uint32_t)n, .pattern = 0xcdcdcdcdcdcdcdcdull });
	CHECK_EQ(c.result, 1);
	CHECK_EQ(c.mismatch, n - 1);

	/* CRC-32C: the standard check value, then a long buffer against a bitwise reference. */
	memcpy(b, "123456789", 9);
	c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_CRC32C, .src = iova_of(&r, b), .len = 9 });
	CHECK_EQ(c.crc, 0xe3069283u);
	c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_CRC32C, .src = iova_of(&r, a), .len = (uint32_t)n,
					     .crc_seed = 0x1234 });
	CHECK_EQ(c.crc, crc32c_ref(0x1234, a, n));

	c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_COPY_CRC, .src = iova_of(&r, a),
					     .dst = iova_of(&r, b), .len = (uint32_t)n });
	CHECK_EQ(c.crc, crc32c_ref(0, a, n));
	CHECK(!memcmp(a, b, n));

	memset(b, 0, n);
	c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_DUALCAST, .src = iova_of(&r, a),
					     .dst = iova_of(&r, b), .dst2 = iova_of(&r, c2), .len = (uint32_t)n });
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	CHECK(!memcmp(a, b, n) && !memcmp(a, c2, n));

	CHECK_EQ(run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_NOOP }).status, IOVM_STATUS_SUCCESS);
	CHECK_EQ(run_desc(&r, (struct iovm_desc){ .op = 99 }).status, IOVM_STATUS_INVALID);
	CHECK_EQ(run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .flags = 0x80 }).status,
		 IOVM_STATUS_INVALID);
	free(exp);
	rig_close(&r);
}

TEST(gather_scatter_batch)
{
	struct rig r;
	uint8_t *pieces = NULL, *lin, *back;
	struct iovm_sge *sg;
	struct iovm_desc *batch;
	struct iovm_completion c;
	uint32_t total = 0;

	rig_open(&r, opts, NULL, IOVM_QUEUE_POLLED);
	pieces = iovm_dma_alloc(r.ctx, 64 << 10, 0, 0);
	lin = iovm_dma_zalloc(r.ctx, 64 << 10, 0, 0);
	back = iovm_dma_zalloc(r.ctx, 64 << 10, 0, 0);
	sg = iovm_dma_alloc(r.ctx, 16 * sizeof(*sg), 64, 0);
	fill_random(pieces, 64 << 10, 3);
	for (int i = 0; i < 16; i++) {
		sg[i] = (struct iovm_sge){ .iova = iova_of(&r, pieces + i * 4000 + 11), .len = 1000 + (uint32_t)i * 100 };
		total += sg[i].len;
	}
	c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_GATHER, .src = iova_of(&r, sg), .sg_count = 16,
					     .dst = iova_of(&r, lin), .len = total });
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	CHECK_EQ(c.bytes_completed, total);
	for (uint32_t i = 0, off = 0; i < 16; off += sg[i].len, i++)
		CHECK(!memcmp(lin + off, pieces + i * 4000 + 11, sg[i].len));
	/* Scatter it back to other places, then compare. */
	for (int i = 0; i < 16; i++)
		sg[i].iova = iova_of(&r, back + i * 4000 + 5);
	c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_SCATTER, .src = iova_of(&r, lin), .sg_count = 16,
					     .dst = iova_of(&r, sg), .len = total });
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	for (uint32_t i = 0, off = 0; i < 16; off += sg[i].len, i++)
		CHECK(!memcmp(back + i * 4000 + 5, lin + off, sg[i].len));
	/* A list that does not add up to len is invalid. */
	CHECK_EQ(run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_GATHER, .src = iova_of(&r, sg), .sg_count = 16,
						  .dst = iova_of(&r, lin), .len = total - 1 })
			 .status,
		 IOVM_STATUS_INVALID);

	/* A batch of three: a fill, a copy, and one that faults. */
	batch = iovm_dma_zalloc(r.ctx, 4 * sizeof(*batch), 64, 0);
	batch[0] = (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = iova_of(&r, lin), .len = 4096, .pattern = 0x1111111111111111ull };
	batch[1] = (struct iovm_desc){ .op = IOVM_OP_COPY, .src = iova_of(&r, lin), .dst = iova_of(&r, back), .len = 4096 };
	c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_BATCH, .src = iova_of(&r, batch), .len = 2 });
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	CHECK_EQ(c.bytes_completed, 2);
	CHECK_EQ(back[4095], 0x11);
	batch[2] = (struct iovm_desc){ .op = IOVM_OP_COPY, .src = 0x1000, .dst = iova_of(&r, back), .len = 64 };
	c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_BATCH, .src = iova_of(&r, batch), .len = 3 });
	CHECK_EQ(c.status, IOVM_STATUS_BATCH_FAIL);
	CHECK_EQ(c.bytes_completed, 2);
	batch[0].op = IOVM_OP_BATCH; /* no nesting */
	c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_BATCH, .src = iova_of(&r, batch), .len = 1 });
	CHECK_EQ(c.status, IOVM_STATUS_BATCH_FAIL);
	rig_close(&r);
}

TEST(worker_thread)
{
	struct rig r;
	uint8_t *src, *dst;
	struct iovm_cqe cqe[64];
	unsigned reaped = 0, sent = 0;

	rig_open(&r, opts, NULL, 0);
	src = iovm_dma_alloc(r.ctx, 1 << 20, 0, 0);
	dst = iovm_dma_zalloc(r.ctx, 1 << 20, 0, 0);
	fill_random(src, 1 << 20, 9);
	/* 4096 copies of 256 bytes, more than the ring holds, reaped as they come. */
	while (reaped < 4096) {
		while (sent < 4096) {
			struct iovm_desc d = { .op = IOVM_OP_COPY, .src = iova_of(&r, src + sent * 256),
					       .dst = iova_of(&r, dst + sent * 256), .len = 256, .tag = sent };

			if (iovm_queue_submit(r.q, &d) == -EAGAIN)
				break;
			sent++;
		}
		int n = iovm_queue_reap(r.q, cqe, 64);

		CHECK(n >= 0);
		for (int i = 0; i < n; i++) {
			CHECK_EQ(cqe[i].status, IOVM_STATUS_SUCCESS);
			CHECK_EQ(cqe[i].tag, reaped + (unsigned)i); /* in order */
		}
		reaped += (unsigned)n;
		if (!n)
			sched_yield();
	}
	CHECK(!memcmp(src, dst, 1 << 20));
	CHECK_EQ(iovm_queue_process(r.q, 1), -EINVAL); /* it has a worker */
	{
		struct iovm_queue_stats st;

		CHECK_OK(iovm_queue_stats(r.q, &st));
		CHECK_EQ(st.completed, 4096);
		CHECK_EQ(st.bytes, 4096 * 256);
		CHECK(st.iotlb_hits > st.iotlb_misses);
	}
	/* A worker pinned to a CPU, as a DPDK lcore is, runs the same. */
	{
		struct iovm_queue *unpinned = r.q;
		unsigned cpu = 0;
		cpu_set_t cpus;

		CHECK_OK(sched_getaffinity(0, sizeof(cpus), &cpus));
		while (!CPU_ISSET(cpu, &cpus))
			cpu++;
		CHECK_OK(iovm_queue_create(r.dev, &(struct iovm_queue_attr){ .flags = IOVM_QUEUE_CPU, .cpu = cpu },
					   &r.q));
		memset(dst, 0, 4096);
		CHECK_EQ(run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = iova_of(&r, src),
							  .dst = iova_of(&r, dst), .len = 4096 })
				 .status,
			 IOVM_STATUS_SUCCESS);
		CHECK(!memcmp(src, dst, 4096));
		CHECK_OK(iovm_queue_destroy(r.q));
		r.q = unpinned;
	}
	rig_close(&r);
}

TEST(faults)
{
	struct rig r;
	uint8_t *ro, *buf;
	iovm_iova_t ro_iova;
	struct iovm_dma_xlate x;
	struct iovm_completion c;
	struct iovm_domain_attr plain = { 0 };

	rig_open(&r, opts, &plain, IOVM_QUEUE_POLLED);
	/* At an address of its own, with nothing mapped after it. */
	ro_iova = IOVM_IOVA(0x10000000);
	ro = iovm_dma_alloc(r.ctx, 8192, 4096, IOVM_DMA_CONTIG);
	buf = iovm_dma_alloc(r.ctx, 8192, 4096, IOVM_DMA_CONTIG);
	memset(ro, 0x77, 8192);
	CHECK_OK(iovm_dma_xlate(r.ctx, ro, &x));
	CHECK_OK(iovm_domain_map(r.dom, &ro_iova, x.pa, 8192, IOVM_MAP_READ));
	/* Writing a read-only mapping: a permission fault, nothing written. */
	c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = ro_iova.addr, .len = 100 });
	CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(c.fault_reason, IOVM_FAULT_PERMISSION);
	CHECK_EQ(c.fault_access, IOVM_MAP_WRITE);
	CHECK_EQ(c.bytes_completed, 0);
	CHECK_EQ(ro[0], 0x77);
	/* Running off the end of a mapping: bytes done up to it, then a fault at its end. */
	c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_COMPARE_PATTERN, .src = ro_iova.addr + 8000,
					     .len = 500, .pattern = 0x7777777777777777ull });
	CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(c.bytes_completed, 192);
	CHECK_EQ(c.fault_addr, ro_iova.addr + 8192);
	/* A PASID with no domain: no completion record either (it would be in that PASID). */
	{
		struct iovm_desc d = { .op = IOVM_OP_FILL, .pasid = 5, .dst = 0x1000, .len = 1, .tag = 55,
				       .flags = IOVM_DESC_COMPLETION, .completion = 0x2000 };
		struct iovm_cqe cqe;

		CHECK_OK(iovm_queue_submit(r.q, &d));
		CHECK_EQ(iovm_queue_process(r.q, 1), 1);
		CHECK_EQ(iovm_queue_reap(r.q, &cqe, 1), 1);
		CHECK_EQ(cqe.tag, 55);
		CHECK_EQ(cqe.status, IOVM_STATUS_PAGE_FAULT);
	}
	(void)buf;
	rig_close(&r);
}

/* A fault handler that maps what faulted, like on-demand paging will. */
struct resolver {
	struct iovm_ctx *ctx;
	uint8_t *backing;
	uint64_t iova;
	unsigned calls;
	bool refuse;
};

static int resolve(void *arg, struct iovm_domain *dom, const struct iovm_fault *f)
{
	struct resolver *rs = arg;
	iovm_iova_t where = IOVM_IOVA(align_down(f->iova.addr, 4096));
	iovm_pa_t pa;

	rs->calls++;
	if (rs->refuse)
		return -EPERM;
	CHECK_OK(iovm_dma_pa(rs->ctx, rs->backing + (where.addr - rs->iova), &pa));
	return iovm_domain_map(dom, &where, pa, 4096, IOVM_MAP_READ | IOVM_MAP_WRITE);
}

TEST(block_on_fault)
{
	struct rig r;
	struct resolver rs = { 0 };
	struct iovm_domain_attr plain = { 0 };
	struct iovm_completion c;
	uint8_t *src;
	iovm_iova_t src_iova = IOVM_IOVA_ANY;

	rig_open(&r, opts, &plain, IOVM_QUEUE_POLLED);
	src = iovm_dma_alloc(r.ctx, 4096, 4096, 0);
	memset(src, 0x42, 4096);
	CHECK_OK(iovm_domain_map_ptr(r.dom, src, 4096, IOVM_MAP_READ, &src_iova));
	rs.ctx = r.ctx;
	rs.backing = iovm_dma_zalloc(r.ctx, 4 * 4096, 4096, 0);
	rs.iova = 0x7000000;
	CHECK_OK(iovm_domain_set_fault_handler(r.dom, resolve, &rs));
	/* Four pages never mapped: each write faults, the handler maps it, the engine goes on. */
	for (int i = 0; i < 4; i++) {
		c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .flags = IOVM_DESC_BLOCK_ON_FAULT,
						     .src = src_iova.addr, .dst = rs.iova + (uint64_t)i * 4096,
						     .len = 4096 });
		CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
		CHECK_EQ(rs.backing[(uint64_t)i * 4096 + 4095], 0x42);
	}
	CHECK_EQ(rs.calls, 4);
	/* Without the flag, no waiting: the fault completes the descriptor. */
	c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = src_iova.addr, .dst = 0x9000000,
					     .len = 64 });
	CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(rs.calls, 4);
	/* A handler that cannot resolve: a fault after all. */
	rs.refuse = true;
	c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .flags = IOVM_DESC_BLOCK_ON_FAULT,
					     .src = src_iova.addr, .dst = 0x9000000, .len = 64 });
	CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(rs.calls, 5);
	{
		struct iovm_queue_stats st;

		CHECK_OK(iovm_queue_stats(r.q, &st));
		CHECK_EQ(st.fault_retries, 4);
	}
	CHECK_OK(iovm_domain_set_fault_handler(r.dom, NULL, NULL));
	rig_close(&r);
}

TEST(pasid_separation)
{
	struct rig r;
	struct iovm_domain *d1, *d2;
	uint8_t *m1, *m2, *src;
	iovm_iova_t at = IOVM_IOVA(0x5000000), src_iova;
	struct iovm_dma_xlate x1, x2;
	struct iovm_completion c;

	rig_open(&r, opts, NULL, IOVM_QUEUE_POLLED);
	CHECK_OK(iovm_domain_create(r.ctx, NULL, &d1));
	CHECK_OK(iovm_domain_create(r.ctx, NULL, &d2));
	CHECK_OK(iovm_device_attach(r.dev, d1, 1));
	CHECK_OK(iovm_device_attach(r.dev, d2, 2));
	CHECK_EQ(iovm_device_attach(r.dev, d2, 1), -EBUSY);
	m1 = iovm_dma_zalloc(r.ctx, 4096, 4096, 0);
	m2 = iovm_dma_zalloc(r.ctx, 4096, 4096, 0);
	src = iovm_dma_alloc(r.ctx, 4096, 4096, 0);
	memset(src, 0x99, 4096);
	src_iova = IOVM_IOVA(iova_of(&r, src));
	CHECK_OK(iovm_dma_xlate(r.ctx, m1, &x1));
	CHECK_OK(iovm_dma_xlate(r.ctx, m2, &x2));
	/* The same IOVA in both, to different memory. */
	CHECK_OK(iovm_domain_map(d1, &at, x1.pa, 4096, RW));
	CHECK_OK(iovm_domain_map(d2, &at, x2.pa, 4096, IOVM_MAP_READ));
	/* Completion records are in the descriptor's PASID: the rig's record, at the same IOVA in each. */
	{
		struct iovm_dma_xlate xc;
		iovm_iova_t ci = r.comp_iova;

		CHECK_OK(iovm_dma_xlate(r.ctx, r.comp, &xc));
		CHECK_OK(iovm_domain_map(d1, &ci, xc.pa, 4096, RW));
		ci = r.comp_iova;
		CHECK_OK(iovm_domain_map(d2, &ci, xc.pa, 4096, RW));
	}
	/* PASID 1 writes m1 only (reading from the heap domain's IOVA fails there: separate spaces). */
	c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_FILL, .pasid = 1, .dst = at.addr, .len = 64,
					     .pattern = 0xabababababababab });
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	CHECK_EQ(m1[0], 0xab);
	CHECK_EQ(m2[0], 0);
	/* PASID 2 may only read. */
	c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_FILL, .pasid = 2, .dst = at.addr, .len = 64 });
	CHECK_EQ(c.fault_reason, IOVM_FAULT_PERMISSION);
	c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .pasid = 1, .src = src_iova.addr,
					     .dst = at.addr, .len = 64 });
	CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT); /* src is the heap domain's IOVA, not d1's */
	/* Detached: nothing there any more. */
	CHECK_OK(iovm_device_detach(r.dev, 1));
	CHECK_EQ(iovm_device_detach(r.dev, 1), -ENOENT);
	{
		struct iovm_fault f;

		while (iovm_domain_fault_pop(d1, &f) == 0)
			;
		CHECK_OK(iovm_queue_submit(r.q, &(struct iovm_desc){ .op = IOVM_OP_FILL, .pasid = 1,
								    .dst = at.addr, .len = 64 }));
		CHECK_EQ(iovm_queue_process(r.q, 1), 1);
		/* No domain for PASID 1 now: the fault is no domain's, so d1 records none. */
		CHECK_EQ(iovm_domain_fault_pop(d1, &f), -EAGAIN);
		CHECK_EQ(iovm_queue_reap(r.q, &(struct iovm_cqe){ 0 }, 1), 1);
	}
	CHECK_EQ(iovm_domain_destroy(d2), -EBUSY);
	CHECK_OK(iovm_device_detach(r.dev, 2));
	no_violations(d1);
	no_violations(d2);
	CHECK_OK(iovm_domain_destroy(d1));
	CHECK_OK(iovm_domain_destroy(d2));
	rig_close(&r);
}

TEST(shared_domain_zero_copy)
{
	struct rig rx;
	struct iovm_device *tx_dev;
	struct iovm_queue *tx_q;
	struct iovm_queue_attr qa = { .depth = 16, .flags = IOVM_QUEUE_POLLED };
	uint8_t *wire_in, *pkt, *wire_out;
	struct iovm_cqe cqe;

	rig_open(&rx, opts, NULL, IOVM_QUEUE_POLLED);
	CHECK_OK(iovm_device_open(rx.ctx, "sw", &tx_dev));
	CHECK_OK(iovm_device_attach(tx_dev, rx.dom, IOVM_PASID_NONE));
	CHECK_OK(iovm_queue_create(tx_dev, &qa, &tx_q));
	wire_in = iovm_dma_alloc(rx.ctx, 2048, 64, 0);
	pkt = iovm_dma_zalloc(rx.ctx, 2048, 64, 0);
	wire_out = iovm_dma_zalloc(rx.ctx, 2048, 64, 0);
	fill_random(wire_in, 2048, 5);
	/* One device receives into the buffer, the other transmits it: no copy by the CPU. */
	CHECK_EQ(run_desc(&rx, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = iova_of(&rx, wire_in),
						   .dst = iova_of(&rx, pkt), .len = 2048 })
			 .status,
		 IOVM_STATUS_SUCCESS);
	CHECK_OK(iovm_queue_submit(tx_q, &(struct iovm_desc){ .op = IOVM_OP_COPY, .src = iova_of(&rx, pkt),
							     .dst = iova_of(&rx, wire_out), .len = 2048 }));
	CHECK_EQ(iovm_queue_process(tx_q, 4), 1);
	CHECK_EQ(iovm_queue_reap(tx_q, &cqe, 1), 1);
	CHECK_EQ(cqe.status, IOVM_STATUS_SUCCESS);
	CHECK(!memcmp(wire_in, wire_out, 2048));
	CHECK(iovm_device_id(tx_dev) != iovm_device_id(rx.dev));
	CHECK_OK(iovm_queue_destroy(tx_q));
	CHECK_OK(iovm_device_close(tx_dev));
	rig_close(&rx);
}

TEST(unreachable_rings)
{
	struct iovm_ctx *ctx = open_ctx(opts);
	struct iovm_domain *dom;
	struct iovm_device *dev;
	struct iovm_queue *q;
	struct iovm_queue_attr qa = { .depth = 8, .flags = IOVM_QUEUE_POLLED };
	struct iovm_queue_stats st;
	struct iovm_desc d = { .op = IOVM_OP_NOOP };

	CHECK_OK(iovm_domain_create(ctx, NULL, &dom));
	CHECK_OK(iovm_device_open(ctx, "sw", &dev));
	CHECK_EQ(iovm_queue_create(dev, &qa, &q), -ENODEV); /* nothing attached for its rings */
	CHECK_OK(iovm_device_attach(dev, dom, IOVM_PASID_NONE));
	CHECK_OK(iovm_queue_create(dev, &qa, &q));
	/* Somebody unmaps everything, rings included: the engine stops, it does not crash. */
	CHECK_OK(iovm_domain_unmap(dom, IOVM_IOVA(0), 1ull << 48));
	CHECK_OK(iovm_queue_submit(q, &d));
	CHECK_EQ(iovm_queue_process(q, 4), 0);
	CHECK_OK(iovm_queue_stats(q, &st));
	CHECK_EQ(st.ring_faults, 1);
	CHECK_OK(iovm_device_close(dev));
	no_violations(dom);
	CHECK_OK(iovm_domain_destroy(dom));
	iovm_close(ctx);
}

/*
 * Memory freed and given back to the kernel under a mapping that still
 * names it (the caller's bug): the engine's IOTLB had cached where that
 * memory was; the next access must fault on the bus, not touch the hole.
 */
TEST(memory_gone_under_a_mapping)
{
	struct iovm_domain_attr plain = { 0 };
	struct iovm_phys_stats before, after;
	struct iovm_completion c;
	iovm_iova_t iova = IOVM_IOVA(0x20000000);
	struct iovm_dma_xlate x;
	struct rig r;
	uint8_t *buf;

	rig_open(&r, "page_size=4K,host_pa=off,oracle=on,release_delay_ms=0", &plain, IOVM_QUEUE_POLLED);
	/* Large enough for banks of its own, which a trim gives back. */
	buf = iovm_dma_alloc(r.ctx, 16 << 20, 2 << 20, IOVM_DMA_CONTIG);
	CHECK(buf != NULL);
	CHECK_OK(iovm_dma_xlate(r.ctx, buf, &x));
	CHECK_OK(iovm_domain_map(r.dom, &iova, x.pa, 4096, IOVM_MAP_READ | IOVM_MAP_WRITE));
	c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = iova.addr, .len = 64, .pattern = 1 });
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	CHECK_OK(iovm_phys_stats(r.ctx, &before));
	CHECK_OK(iovm_dma_free(r.ctx, buf));
	iovm_dma_trim(r.ctx, IOVM_TRIM_ALL);
	CHECK_OK(iovm_phys_stats(r.ctx, &after));
	CHECK_MSG(after.banks_released > before.banks_released, "no bank was given back: the test proves nothing");
	c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = iova.addr, .len = 64, .pattern = 2 });
	CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(c.fault_reason, IOVM_FAULT_BUS);
	CHECK_EQ(c.bytes_completed, 0);
	CHECK_OK(iovm_domain_unmap(r.dom, iova, 4096));
	rig_close(&r);
}

int main(void)
{
	test_init();
	RUN(operations);
	RUN(gather_scatter_batch);
	RUN(worker_thread);
	RUN(faults);
	RUN(block_on_fault);
	RUN(pasid_separation);
	RUN(shared_domain_zero_copy);
	RUN(unreachable_rings);
	RUN(memory_gone_under_a_mapping);
	return 0;
}
