/* SPDX-License-Identifier: MIT */
/*
 * fault_mp.c - fault-injection scenarios of iovm/mp.h: sharing a context,
 * attaching a second one to it (in the same process: the owner's server
 * thread answers), allocating in one and freeing in the other, zones, and
 * the calls on a share. A failed share or attach leaves no socket, memfd
 * or mapping behind, and asked again it succeeds.
 */
#include <stdio.h>
#include <unistd.h>

#include "fault.h"

static void sc_share(void)
{
	struct iovm_share_params p = { .heap_size = 4 << 20, .page_size = 4096, .group = -1 };
	struct iovm_ctx *owner = fault_open(FAULT_OPTS), *att = NULL;
	const struct iovm_zone *z, *z2;
	struct iovm_share_info info;
	char name[64];
	iovm_pa_t pa;
	void *a, *b;

	snprintf(name, sizeof(name), "fault-share-%d", (int)getpid());
	FI_INT(iovm_share(owner, name, &p));
	FI_INT(iovm_attach(name, FAULT_OPTS, &att));
	a = FI_PTR(iovm_dma_alloc(att, 4096, 0, 0));
	b = FI_PTR(iovm_dma_zalloc(owner, 100, 0, IOVM_DMA_KEEP));
	CHECK_EQ(((uint8_t *)b)[99], 0);
	FI_INT(iovm_dma_pa(att, a, &pa));
	FI_INT(iovm_dma_free(owner, iovm_dma_ptr(owner, pa)));
	CHECK_EQ(FI_INT(iovm_zone_reserve(att, "fault-zone", 8192, 0, 0, &z)), 0);
	CHECK_EQ(FI_INT(iovm_zone_lookup(owner, "fault-zone", &z2)), 0);
	CHECK_EQ(z->pa.addr, z2->pa.addr);
	FI_INT(iovm_share_info(owner, &info));
	CHECK_EQ(info.processes, 2);
	CHECK_EQ(info.zones, 1);
	FI_INT(iovm_share_check(att));
	CHECK_EQ(FI_INT(iovm_share_reap(owner)), 0);
	FI_INT(iovm_zone_free(owner, z2));
	FI_INT(iovm_dma_pa(owner, b, &pa));
	FI_INT(iovm_dma_free(att, iovm_dma_ptr(att, pa)));
	CHECK_EQ(iovm_close(att), 0);
	FI_INT(iovm_share_info(owner, &info));
	CHECK_EQ(info.blocks, 0);
	CHECK_EQ(info.processes, 1);
	CHECK_EQ(iovm_close(owner), 0);
}

/*
 * A shared domain made by the owner, opened by the attached context (in
 * this process, a view and an agent of its own), mapped through one,
 * translated and unmapped through the other; a device of the owner's on
 * it; then a deferred one, unmapped and flushed. Nothing left of it after.
 */
static void sc_share_domain(void)
{
	struct iovm_share_params p = { .heap_size = 4 << 20, .page_size = 4096, .group = -1 };
	struct iovm_queue_attr qa = { .depth = 4, .flags = IOVM_QUEUE_POLLED };
	struct iovm_ctx *owner = fault_open(FAULT_OPTS), *att = NULL;
	struct iovm_domain *d1, *d2, *rings;
	struct iovm_share_info info;
	struct iovm_device *dev;
	struct iovm_queue *q;
	iovm_iova_t iova = IOVM_IOVA(IOVM_ADDR_INVALID);
	iovm_pa_t pa, seen;
	char name[64];
	uint8_t *a;

	snprintf(name, sizeof(name), "fault-sdom-%d", (int)getpid());
	FI_INT(iovm_share(owner, name, &p));
	FI_INT(iovm_attach(name, FAULT_OPTS, &att));
	FI_INT(iovm_share_domain_create(owner, "fault-dom", NULL, &d1));
	FI_INT(iovm_share_domain_open(att, "fault-dom", &d2));
	a = FI_PTR(iovm_dma_zalloc(att, 8192, 4096, 0));
	FI_INT(iovm_domain_map_ptr(d2, a, 8192, IOVM_MAP_READ | IOVM_MAP_WRITE, &iova));
	FI_INT(iovm_dma_pa(att, a, &pa));
	FI_INT(iovm_domain_translate(d1, iova, &seen, NULL));
	CHECK_EQ(seen.addr, pa.addr);
	FI_INT(iovm_device_open(owner, "sw", &dev));
	FI_INT(iovm_domain_create(owner, NULL, &rings));
	FI_INT(iovm_device_attach(dev, rings, IOVM_PASID_NONE));
	FI_INT(iovm_device_attach(dev, d1, 1));
	FI_INT(iovm_queue_create(dev, &qa, &q));
	FI_INT(iovm_queue_submit(q, &(struct iovm_desc){ .op = IOVM_OP_FILL, .dst = iova.addr, .len = 8192,
							 .pattern = 0x5a5a5a5a5a5a5a5aull, .pasid = 1 }));
	FI_INT(iovm_queue_process(q, 1));
	CHECK_EQ(a[8191], 0x5a);
	FI_INT(iovm_domain_unmap(d1, iova, 8192));
	CHECK_EQ(iovm_domain_translate(d2, iova, &seen, NULL), -ENOENT);
	CHECK_EQ(iovm_queue_destroy(q), 0);
	CHECK_EQ(iovm_device_close(dev), 0);
	CHECK_EQ(iovm_domain_destroy(rings), 0);
	CHECK_EQ(iovm_domain_destroy(d2), 0);
	CHECK_EQ(iovm_domain_destroy(d1), 0);
	/* Deferred: the unmap queues in a ring of this thread's, the flush posts to the other view. */
	FI_INT(iovm_share_domain_create(owner, "fault-def",
					&(struct iovm_share_domain_params){ .flags = IOVM_DOMAIN_DEFERRED }, &d1));
	FI_INT(iovm_share_domain_open(att, "fault-def", &d2));
	iova = IOVM_IOVA(IOVM_ADDR_INVALID);
	FI_INT(iovm_domain_map_ptr(d2, a, 8192, IOVM_MAP_READ | IOVM_MAP_WRITE, &iova));
	FI_INT(iovm_domain_unmap(d1, iova, 8192));
	FI_INT(iovm_domain_flush(d1));
	CHECK_EQ(iovm_domain_translate(d2, iova, &seen, NULL), -ENOENT);
	CHECK_EQ(iovm_domain_destroy(d2), 0);
	CHECK_EQ(iovm_domain_destroy(d1), 0);
	FI_INT(iovm_dma_free(owner, iovm_dma_ptr(owner, pa)));
	CHECK_EQ(iovm_close(att), 0);
	FI_INT(iovm_share_info(owner, &info));
	CHECK_EQ(info.blocks, 0);
	CHECK_EQ(iovm_close(owner), 0);
}

/* A device server and a client's queue on it, both in this process (the server's threads answer). */
static void sc_device(void)
{
	struct iovm_share_params p = { .heap_size = 4 << 20, .page_size = 4096, .group = -1 };
	struct iovm_ctx *owner = fault_open(FAULT_OPTS), *cl = NULL;
	struct iovm_device_server_info info;
	struct iovm_device_server *srv;
	struct iovm_rqueue *q;
	static uint8_t own[8192] __attribute__((aligned(4096)));
	iovm_iova_t ia, ib, io;
	char name[64];
	uint8_t *a, *b;
	struct iovm_cqe cqe;
	int n = 0;

	snprintf(name, sizeof(name), "fault-device-%d", (int)getpid());
	FI_INT(iovm_share(owner, name, &p));
	FI_INT(iovm_device_serve(owner, name, 1, &srv));
	FI_INT(iovm_attach(name, FAULT_OPTS, &cl));
	FI_INT(iovm_rqueue_open(cl, name, 16, &q));
	CHECK(iovm_rqueue_pasid(q) != 0);
	FI_INT(iovm_rqueue_set_fault_handler(q, NULL, NULL));
	a = FI_PTR(iovm_dma_alloc(cl, 8192, 4096, 0));
	b = FI_PTR(iovm_dma_zalloc(cl, 8192, 4096, 0));
	memset(a, 0x3d, 8192);
	FI_INT(iovm_rqueue_map(q, a, 8192, IOVM_MAP_READ, &ia));
	FI_INT(iovm_rqueue_map(q, b, 8192, IOVM_MAP_READ | IOVM_MAP_WRITE, &ib));
	FI_INT(iovm_rqueue_submit(q, &(struct iovm_desc){ .op = IOVM_OP_COPY, .src = ia.addr, .dst = ib.addr,
							   .len = 8192, .tag = 9 }));
	for (unsigned long spins = 0; !n; spins++) {
		n = FI_INT(iovm_rqueue_reap(q, &cqe, 1));
		CHECK(spins < 1000000000ul);
		if (!n)
			usleep(1);
	}
	CHECK_EQ(cqe.status, IOVM_STATUS_SUCCESS);
	CHECK_EQ(cqe.tag, 9);
	CHECK_EQ(b[8191], 0x3d);
	/* Memory of this process's own, which the device reaches through the process's memory file. */
	memset(own, 0, sizeof(own));
	FI_INT(iovm_rqueue_map(q, own, sizeof(own), IOVM_MAP_READ | IOVM_MAP_WRITE, &io));
	FI_INT(iovm_rqueue_submit(q, &(struct iovm_desc){ .op = IOVM_OP_COPY, .src = ia.addr, .dst = io.addr,
							   .len = 8192, .tag = 10 }));
	for (unsigned long spins = 0, got = 0; !got; spins++) {
		got = (unsigned long)FI_INT(iovm_rqueue_reap(q, &cqe, 1));
		CHECK(spins < 1000000000ul);
		if (!got)
			usleep(1);
	}
	CHECK_EQ(cqe.status, IOVM_STATUS_SUCCESS);
	CHECK_EQ(own[8191], 0x3d);
	FI_INT(iovm_rqueue_unmap(q, io, sizeof(own)));
	/*
	 * The same memory as an on-demand registration of this process's: the
	 * device's page requests are answered in this thread's reap, by the
	 * registration. A fault injected there answers no: the copy faults
	 * once, and goes through when asked again.
	 */
	{
		struct iovm_domain_attr attr = { .type = IOVM_DOMAIN_MANAGED };
		struct iovm_domain *rd = NULL;
		struct iovm_mr *mr = NULL;
		iovm_iova_t im;

		FI_INT(iovm_domain_create(cl, &attr, &rd));
		FI_INT(iovm_mr_reg(rd, own, sizeof(own), IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND, &mr));
		FI_INT(iovm_rqueue_map_mr(q, mr, IOVM_MAP_READ | IOVM_MAP_WRITE, &im));
		memset(own, 0, sizeof(own));
		for (unsigned tries = 0;; tries++) {
			unsigned long got = 0;

			FI_INT(iovm_rqueue_submit(q, &(struct iovm_desc){ .op = IOVM_OP_COPY, .src = ia.addr,
									   .dst = im.addr, .len = 8192, .tag = 11 }));
			for (unsigned long spins = 0; !got; spins++) {
				got = (unsigned long)FI_INT(iovm_rqueue_reap(q, &cqe, 1));
				CHECK(spins < 1000000000ul);
				if (!got)
					usleep(1);
			}
			CHECK(tries < 2);
			if (cqe.status == IOVM_STATUS_SUCCESS)
				break;
			CHECK_EQ(cqe.status, IOVM_STATUS_PAGE_FAULT);
		}
		CHECK_EQ(own[8191], 0x3d);
		CHECK_EQ(iovm_mr_dereg(mr), -EBUSY);
		FI_INT(iovm_rqueue_unmap_mr(q, mr));
		FI_INT(iovm_mr_dereg(mr));
		CHECK_EQ(iovm_domain_destroy(rd), 0);
	}
	FI_INT(iovm_rqueue_unmap(q, ib, 8192));
	FI_INT(iovm_rqueue_unmap(q, ia, 8192));
	FI_INT(iovm_dma_free(cl, a));
	FI_INT(iovm_dma_free(cl, b));
	FI_INT(iovm_device_server_info(srv, &info));
	CHECK_EQ(info.opened, 1);
	FI_INT(iovm_rqueue_close(q));
	CHECK_EQ(iovm_close(cl), 0);
	FI_INT(iovm_device_server_stop(srv));
	CHECK_EQ(iovm_close(owner), 0);
}

/*
 * Delegated access (mp.h): the owner's memory, registered pinned and on
 * demand in a shared domain; the attached context's device reads and
 * writes it through the owner's server thread (src/mp/domain_remote.c),
 * which the first registration starts. A failure there is the
 * registration's; a failure in the asking thread is a fault of the
 * descriptor, and the copy asked again goes through.
 */
static void sc_delegated(void)
{
	struct iovm_share_params p = { .heap_size = 4 << 20, .page_size = 4096, .group = -1 };
	struct iovm_queue_attr qa = { .depth = 4, .flags = IOVM_QUEUE_POLLED };
	struct iovm_ctx *owner = fault_open(FAULT_OPTS), *att = NULL;
	struct iovm_domain *d1, *d2, *rings;
	static uint8_t own[3 * 4096] __attribute__((aligned(4096)));
	struct iovm_mr *mr[2];
	struct iovm_mr_info mi;
	struct iovm_device *dev;
	struct iovm_queue *q;
	iovm_iova_t bi = IOVM_IOVA(IOVM_ADDR_INVALID);
	char name[64];
	uint8_t *b;

	snprintf(name, sizeof(name), "fault-deleg-%d", (int)getpid());
	FI_INT(iovm_share(owner, name, &p));
	FI_INT(iovm_attach(name, FAULT_OPTS, &att));
	FI_INT(iovm_share_domain_create(owner, "fault-deleg", NULL, &d1));
	FI_INT(iovm_share_domain_open(att, "fault-deleg", &d2));
	FI_INT(iovm_mr_reg(d1, own, 4096 + 100, IOVM_ACCESS_LOCAL_WRITE, &mr[0]));
	FI_INT(iovm_mr_reg(d1, own + 2 * 4096, 4096, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND, &mr[1]));
	b = FI_PTR(iovm_dma_zalloc(att, 8192, 4096, 0));
	FI_INT(iovm_domain_map_ptr(d2, b, 8192, IOVM_MAP_READ | IOVM_MAP_WRITE, &bi));
	FI_INT(iovm_device_open(att, "sw", &dev));
	FI_INT(iovm_domain_create(att, NULL, &rings));
	FI_INT(iovm_device_attach(dev, rings, IOVM_PASID_NONE));
	FI_INT(iovm_device_attach(dev, d2, 1));
	FI_INT(iovm_queue_create(dev, &qa, &q));
	for (unsigned k = 0; k < 2; k++) {
		FI_INT(iovm_mr_query(mr[k], &mi));
		memset(k ? own + 2 * 4096 : own, 0x40 + k, 4096);
		memset(b, 0, 8192);
		/* Read: the owner's bytes arrive; then written: they land in the owner's memory. */
		for (unsigned pass = 0; pass < 2; pass++) {
			struct iovm_desc d = { .op = IOVM_OP_COPY, .len = 4096, .pasid = 1, .tag = pass };
			struct iovm_cqe cqe;
			unsigned tries = 0;

			d.src = pass ? bi.addr + 4096 : mi.iova.addr;
			d.dst = pass ? mi.iova.addr : bi.addr;
			if (pass)
				memset(b + 4096, 0x60 + k, 4096);
			for (;; tries++) {
				CHECK(tries < 3);
				FI_INT(iovm_queue_submit(q, &d));
				FI_INT(iovm_queue_process(q, 1));
				CHECK_EQ(FI_INT(iovm_queue_reap(q, &cqe, 1)), 1);
				if (cqe.status == IOVM_STATUS_SUCCESS)
					break;
				CHECK_MSG(cqe.status == IOVM_STATUS_PAGE_FAULT, "status %d", cqe.status);
			}
		}
		CHECK_EQ(b[4095], 0x40 + k);
		CHECK_EQ((k ? own + 2 * 4096 : own)[4095], 0x60 + k);
	}
	/* A completion record in the owner's registration: the owner writes it, status last. */
	{
		struct iovm_completion *rec = (struct iovm_completion *)(own + 4096 + 32);
		struct iovm_cqe cqe;

		FI_INT(iovm_mr_query(mr[0], &mi));
		/* A failure on the way leaves it unwritten (counted as a fault): the next one is. */
		memset(rec, 0, sizeof(*rec));
		for (unsigned tries = 0; !__atomic_load_n(&rec->status, __ATOMIC_ACQUIRE); tries++) {
			CHECK(tries < 2);
			FI_INT(iovm_queue_submit(q, &(struct iovm_desc){ .op = IOVM_OP_NOOP, .pasid = 1,
									 .flags = IOVM_DESC_COMPLETION,
									 .completion = mi.iova.addr + 4096 + 32 }));
			FI_INT(iovm_queue_process(q, 1));
			CHECK_EQ(FI_INT(iovm_queue_reap(q, &cqe, 1)), 1);
			CHECK_EQ(cqe.status, IOVM_STATUS_SUCCESS);
		}
		CHECK_EQ(rec->status, IOVM_STATUS_SUCCESS);
	}
	CHECK_EQ(iovm_queue_destroy(q), 0);
	CHECK_EQ(iovm_device_close(dev), 0);
	CHECK_EQ(iovm_domain_destroy(rings), 0);
	FI_INT(iovm_domain_unmap(d2, bi, 8192));
	FI_INT(iovm_dma_free(att, b));
	FI_INT(iovm_mr_dereg(mr[1]));
	FI_INT(iovm_mr_dereg(mr[0]));
	CHECK_EQ(iovm_domain_destroy(d2), 0);
	CHECK_EQ(iovm_domain_destroy(d1), 0);
	CHECK_EQ(iovm_close(att), 0);
	CHECK_EQ(iovm_close(owner), 0);
}

/*
 * The shared heap's parcels (src/mp/parcels.c): a context that follows the
 * heap (its follower thread), a commit the owner makes and the follower
 * maps, a free that trims (holes punched), iovm_dma_trim() of the rest.
 */
static void sc_share_parcels(void)
{
	struct iovm_share_params p = { .heap_size = 16 << 20, .page_size = 4096, .group = -1 };
	struct iovm_domain_attr follow = { .type = IOVM_DOMAIN_MANAGED, .flags = IOVM_DOMAIN_FOLLOW_HEAP };
	struct iovm_ctx *owner = fault_open(FAULT_OPTS), *att = NULL;
	struct iovm_domain *dom;
	struct iovm_share_info info;
	iovm_iova_t iova;
	iovm_pa_t pa;
	uint8_t *a;
	char name[64];

	snprintf(name, sizeof(name), "fault-parcels-%d", (int)getpid());
	FI_INT(iovm_share(owner, name, &p));
	FI_INT(iovm_attach(name, FAULT_OPTS, &att));
	FI_INT(iovm_domain_create(att, &follow, &dom));
	a = FI_PTR(iovm_dma_alloc(owner, 8 << 20, 0, 0));
	a[(8 << 20) - 1] = 1;
	/* The attached context follows: its domain maps what the owner committed. */
	FI_INT(iovm_dma_pa(owner, a, &pa));
	FI_INT(iovm_dma_iova(dom, iovm_dma_ptr(att, pa), &iova));
	FI_INT(iovm_dma_free(owner, a));
	CHECK(FI_INT(iovm_dma_trim(owner, IOVM_TRIM_ALL)) >= 0);
	FI_INT(iovm_share_info(owner, &info));
	CHECK_EQ(info.blocks, 0);
	FI_INT(iovm_domain_destroy(dom));
	CHECK_EQ(iovm_close(att), 0);
	CHECK_EQ(iovm_close(owner), 0);
}

static const struct fault_scenario fault_mp_scenarios[] = {
	{ "share and attach", sc_share },
	{ "shared heap parcels, followed and trimmed", sc_share_parcels },
	{ "device server", sc_device },
	{ "shared domain", sc_share_domain },
	{ "delegated access", sc_delegated },
	{ NULL, NULL },
};
