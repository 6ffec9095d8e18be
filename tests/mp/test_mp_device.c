/* SPDX-License-Identifier: MIT */
/*
 * test_mp_device.c - a device in another process: the software engine
 * served by one process to client processes of the same share, each in a
 * domain at a PASID of its own. Copies run; a client cannot reach another
 * client's memory (not by IOVA, not by naming the other's PASID, not
 * through a batch's child, not by mapping the other's blocks); mapped
 * memory cannot be freed until unmapped, and after an unmap returns the
 * device no longer reaches it; a client's death and the device process's
 * death leave the share whole, with everything given back or freed. Then
 * 64 clients at once.
 */
#include <stdatomic.h>
#include <stdlib.h>

#include "mp_device.h"

TEST(copy_in_another_process)
{
	struct iovm_ctx *owner;
	struct child srv;
	struct cl c;
	uint8_t *a, *b;
	iovm_iova_t ia, ib;

	g_share = share_name("dev");
	g_dev = share_name("device");
	owner = share_ok(g_share, HEAP);
	srv = start_server();
	c = client_open();
	a = iovm_dma_alloc(c.ctx, 65536, 4096, 0);
	b = iovm_dma_zalloc(c.ctx, 65536, 4096, 0);
	CHECK(a && b);
	for (int i = 0; i < 65536; i++)
		a[i] = (uint8_t)(i * 13);
	CHECK_OK(iovm_rqueue_map(c.q, a, 65536, IOVM_MAP_READ, &ia));
	CHECK_OK(iovm_rqueue_map(c.q, b, 65536, IOVM_MAP_READ | IOVM_MAP_WRITE, &ib));
	CHECK_EQ(run(c.q, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = ia.addr, .dst = ib.addr, .len = 65536 }),
		 IOVM_STATUS_SUCCESS);
	CHECK(!memcmp(a, b, 65536));
	/* Read-only is read-only; and past the mapping is nothing. */
	CHECK_EQ(run(c.q, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = ia.addr, .len = 64, .pattern = 1 }),
		 IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(a[0], 0);
	CHECK_EQ(run(c.q, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = ib.addr + 65536, .len = 64 }),
		 IOVM_STATUS_PAGE_FAULT);
	/* Lent while mapped: nobody frees it; unmapped, the device no longer reaches it. */
	CHECK_EQ(iovm_dma_free(c.ctx, b), -EBUSY);
	CHECK_EQ(iovm_dma_free(owner, iovm_dma_ptr(owner, ({ iovm_pa_t pa; CHECK_OK(iovm_dma_pa(c.ctx, b, &pa)); pa; }))),
		 -EBUSY);
	CHECK_OK(iovm_rqueue_unmap(c.q, ib, 65536));
	CHECK_EQ(iovm_rqueue_unmap(c.q, ib, 65536), -EINVAL);
	CHECK_EQ(run(c.q, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = ib.addr, .len = 64, .pattern = 7 }),
		 IOVM_STATUS_PAGE_FAULT);
	CHECK_OK(iovm_dma_free(c.ctx, b));
	/* Not page aligned, not in the shared heap, not mapped. */
	CHECK_EQ(iovm_rqueue_map(c.q, a + 64, 4096, IOVM_MAP_READ, &ib), -EINVAL);
	CHECK_EQ(iovm_rqueue_map(c.q, &ib, 4096, IOVM_MAP_READ, &ib), -EINVAL);
	CHECK_EQ(iovm_rqueue_map(c.q, a, 4096, 0, &ib), -EINVAL);
	CHECK_EQ(iovm_rqueue_submit(NULL, &(struct iovm_desc){ 0 }), -EINVAL);
	CHECK_EQ(iovm_rqueue_reap(c.q, NULL, 1), -EINVAL);
	client_close(&c);
	stop_server(&srv);
	CHECK_EQ(share_info(owner).blocks, 0);
	CHECK_OK(iovm_share_check(owner));
	CHECK_OK(iovm_close(owner));
}

/* Client B, against client A's memory: A's PA and IOVA come down the pipe; A's buffer must stay 0xaa. */
static void intruder(int rd, int wr, void *arg)
{
	struct cl c = client_open();
	uint64_t a_pa = get64(rd), a_iova = get64(rd), a_pasid = get64(rd);
	uint8_t *mine = iovm_dma_zalloc(c.ctx, 8192, 4096, 0), *theirs;
	struct iovm_desc *batch = iovm_dma_zalloc(c.ctx, 4096, 4096, 0);
	iovm_iova_t im, ibatch;
	uint8_t st;

	(void)arg;
	CHECK(mine && batch);
	/* Mapping A's memory, or free memory, is refused. */
	theirs = iovm_dma_ptr(c.ctx, IOVM_PA(a_pa));
	CHECK(theirs != NULL);
	CHECK_EQ(iovm_rqueue_map(c.q, theirs, 4096, IOVM_MAP_READ, &im), -EACCES);
	CHECK_EQ(iovm_rqueue_map(c.q, mine + 8192 + 4096 * 64, 4096, IOVM_MAP_READ, &im), -EACCES);
	CHECK_OK(iovm_rqueue_map(c.q, mine, 8192, IOVM_MAP_READ | IOVM_MAP_WRITE, &im));
	CHECK_OK(iovm_rqueue_map(c.q, batch, 4096, IOVM_MAP_READ, &ibatch));
	/* A's IOVA in B's domain: B's own memory if B has something there, a fault if not; never A's. */
	st = run(c.q, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = a_iova, .len = 4096, .pattern = 0x11 });
	CHECK(st == IOVM_STATUS_SUCCESS || st == IOVM_STATUS_PAGE_FAULT);
	/* Naming A's PASID changes nothing: the queue's is used. */
	st = run(c.q, (struct iovm_desc){ .op = IOVM_OP_FILL, .pasid = (uint32_t)a_pasid, .dst = a_iova, .len = 4096,
					  .pattern = 0x22 });
	CHECK(st == IOVM_STATUS_SUCCESS || st == IOVM_STATUS_PAGE_FAULT);
	/* Nor does a batch's child naming it. */
	batch[0] = (struct iovm_desc){ .op = IOVM_OP_FILL, .pasid = (uint32_t)a_pasid, .dst = a_iova, .len = 4096,
				       .pattern = 0x33 };
	st = run(c.q, (struct iovm_desc){ .op = IOVM_OP_BATCH, .src = ibatch.addr, .len = 1 });
	CHECK(st == IOVM_STATUS_SUCCESS || st == IOVM_STATUS_BATCH_FAIL);
	put64(wr, 1);
	get64(rd);
	client_close(&c);
}

TEST(clients_are_isolated)
{
	struct iovm_ctx *owner;
	struct child srv, b;
	struct cl a;
	uint8_t *buf;
	iovm_iova_t ia;
	iovm_pa_t pa;

	g_share = share_name("iso");
	g_dev = share_name("isodev");
	owner = share_ok(g_share, HEAP);
	srv = start_server();
	a = client_open();
	buf = iovm_dma_alloc(a.ctx, 8192, 4096, 0);
	CHECK(buf != NULL);
	memset(buf, 0xaa, 8192);
	CHECK_OK(iovm_rqueue_map(a.q, buf, 8192, IOVM_MAP_READ | IOVM_MAP_WRITE, &ia));
	CHECK_OK(iovm_dma_pa(a.ctx, buf, &pa));
	b = child_start(intruder, NULL);
	put64(b.wr, pa.addr);
	put64(b.wr, ia.addr);
	put64(b.wr, iovm_rqueue_pasid(a.q));
	CHECK_EQ(get64(b.rd), 1);
	for (int i = 0; i < 8192; i++)
		CHECK_MSG(buf[i] == 0xaa, "byte %d of client A's buffer is %#x: client B reached it", i, buf[i]);
	put64(b.wr, 1);
	child_ok(&b);
	CHECK_EQ(run(a.q, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = ia.addr, .len = 8192, .pattern = 0 }),
		 IOVM_STATUS_SUCCESS);
	CHECK_EQ(buf[4000], 0);
	client_close(&a);
	stop_server(&srv);
	CHECK_OK(iovm_share_check(owner));
	CHECK_OK(iovm_close(owner));
}

/* A client that maps memory, keeps the device busy, and is killed. */
static void doomed(int rd, int wr, void *arg)
{
	struct cl c = client_open();
	uint8_t *buf = iovm_dma_alloc(c.ctx, 1 << 20, 4096, 0);
	iovm_iova_t ib;

	(void)arg;
	CHECK(buf != NULL);
	CHECK_OK(iovm_rqueue_map(c.q, buf, 1 << 20, IOVM_MAP_READ | IOVM_MAP_WRITE, &ib));
	put64(wr, 1);
	for (;;) {
		struct iovm_cqe cqe[16];
		int ret = iovm_rqueue_submit(c.q, &(struct iovm_desc){ .op = IOVM_OP_FILL, .dst = ib.addr,
									   .len = 1 << 20, .pattern = 0x77 });

		CHECK(ret == 0 || ret == -EAGAIN);
		CHECK(iovm_rqueue_reap(c.q, cqe, 16) >= 0);
	}
	(void)rd;
}

TEST(client_dies)
{
	struct iovm_share_info before;
	struct iovm_ctx *owner;
	struct child srv, d;
	uint64_t opened, torn;

	g_share = share_name("cdie");
	g_dev = share_name("cdiedev");
	owner = share_ok(g_share, HEAP);
	srv = start_server();
	before = share_info(owner);
	for (int round = 0; round < 5; round++) {
		d = child_start(doomed, NULL);
		CHECK_EQ(get64(d.rd), 1);
		usleep(2000);
		child_kill(&d);
		/*
		 * Reaped before the next fork: a fork while this process's server
		 * thread works may hand the child a sanitizer's lock it holds.
		 */
		WAIT_UNTIL(share_info(owner).processes == before.processes);
	}
	/* Everything the dead lent comes back once the device process has unmapped it: freed. */
	WAIT_UNTIL(share_info(owner).blocks == before.blocks && share_info(owner).processes == before.processes);
	put64(srv.wr, 2);
	opened = get64(srv.rd);
	torn = get64(srv.rd);
	get64(srv.rd);
	CHECK_EQ(opened, 5);
	CHECK_EQ(torn, 5);
	put64(srv.wr, 1);
	child_ok(&srv);
	CHECK_EQ(share_info(owner).heap_free, before.heap_free);
	CHECK_OK(iovm_share_check(owner));
	CHECK_OK(iovm_close(owner));
}

TEST(device_process_dies)
{
	struct iovm_ctx *owner;
	struct child srv;
	struct cl c;
	uint8_t *buf;
	iovm_iova_t ib;
	int ret;

	g_share = share_name("sdie");
	g_dev = share_name("sdiedev");
	owner = share_ok(g_share, HEAP);
	srv = start_server();
	c = client_open();
	buf = iovm_dma_alloc(c.ctx, 65536, 4096, 0);
	CHECK(buf != NULL);
	CHECK_OK(iovm_rqueue_map(c.q, buf, 65536, IOVM_MAP_READ | IOVM_MAP_WRITE, &ib));
	CHECK_EQ(run(c.q, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = ib.addr, .len = 65536, .pattern = 3 }),
		 IOVM_STATUS_SUCCESS);
	child_kill(&srv);
	/* The client hears of it; what it lent comes back to it when the owner reaps the device process. */
	CHECK_EQ(iovm_rqueue_map(c.q, buf, 4096, IOVM_MAP_READ, &ib), -EPIPE);
	ret = 0;
	for (unsigned i = 0; i < 100000 && ret >= 0; i++)
		ret = iovm_rqueue_reap(c.q, NULL, 0);
	CHECK_EQ(ret, -EPIPE);
	WAIT_UNTIL(iovm_dma_free(c.ctx, buf) == 0);
	client_close(&c);
	CHECK_EQ(share_info(owner).blocks, 0);
	CHECK_OK(iovm_share_check(owner));
	CHECK_OK(iovm_close(owner));
}

/* One of many clients: its own pattern, copied again and again. */
static void many_client(int rd, int wr, void *arg)
{
	struct cl c = client_open();
	uint8_t pat = (uint8_t)(uintptr_t)arg;
	uint8_t *a = iovm_dma_alloc(c.ctx, 4096, 4096, 0), *b = iovm_dma_zalloc(c.ctx, 4096, 4096, 0);
	iovm_iova_t ia, ib;

	CHECK(a && b);
	memset(a, pat, 4096);
	CHECK_OK(iovm_rqueue_map(c.q, a, 4096, IOVM_MAP_READ, &ia));
	CHECK_OK(iovm_rqueue_map(c.q, b, 4096, IOVM_MAP_READ | IOVM_MAP_WRITE, &ib));
	put64(wr, iovm_rqueue_pasid(c.q));
	get64(rd);
	for (int i = 0; i < 50; i++) {
		CHECK_EQ(run(c.q, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = ia.addr, .dst = ib.addr, .len = 4096 }),
			 IOVM_STATUS_SUCCESS);
		for (int j = 0; j < 4096; j++)
			CHECK(b[j] == pat);
		memset(b, 0, 4096);
	}
	client_close(&c);
	put64(wr, 1);
}

TEST(sixty_four_clients)
{
	unsigned n = TEST_ASAN || TEST_TSAN ? 16 : 64;
	struct iovm_ctx *owner;
	struct child srv;

	g_share = share_name("many");
	g_dev = share_name("manydev");
	owner = share_ok(g_share, HEAP);
	srv = start_server();
	run_clients(n, many_client);
	printf("# %u clients, each at a PASID of its own, copied their own buffers\n", n);
	stop_server(&srv);
	CHECK_EQ(share_info(owner).blocks, 0);
	CHECK_OK(iovm_share_check(owner));
	CHECK_OK(iovm_close(owner));
}

/* The device process stops while clients have queues and mappings: they hear of it; what they lent comes back. */
TEST(stop_with_clients)
{
	struct iovm_ctx *owner;
	struct child srv;
	struct cl c[3];
	uint8_t *buf[3];
	iovm_iova_t iova;

	g_share = share_name("stop");
	g_dev = share_name("stopdev");
	owner = share_ok(g_share, HEAP);
	srv = start_server();
	for (int i = 0; i < 3; i++) {
		c[i] = client_open();
		buf[i] = iovm_dma_alloc(c[i].ctx, 8192, 4096, 0);
		CHECK(buf[i] != NULL);
		CHECK_OK(iovm_rqueue_map(c[i].q, buf[i], 8192, IOVM_MAP_READ | IOVM_MAP_WRITE, &iova));
		CHECK_EQ(iovm_dma_free(c[i].ctx, buf[i]), -EBUSY);
	}
	stop_server(&srv);
	for (int i = 0; i < 3; i++) {
		int ret = 0;

		CHECK_EQ(iovm_rqueue_map(c[i].q, buf[i], 4096, IOVM_MAP_READ, &iova), -EPIPE);
		for (unsigned k = 0; k < 100000 && ret >= 0; k++)
			ret = iovm_rqueue_reap(c[i].q, NULL, 0);
		CHECK_EQ(ret, -EPIPE);
		/* Stopped, not dead: it gave back what it borrowed before it went. */
		CHECK_OK(iovm_dma_free(c[i].ctx, buf[i]));
		client_close(&c[i]);
	}
	CHECK_EQ(share_info(owner).blocks, 0);
	CHECK_OK(iovm_share_check(owner));
	CHECK_OK(iovm_close(owner));
}

/* A client of another share: the device process refuses it, whatever the names. */
TEST(another_share)
{
	struct iovm_ctx *owner, *other;
	struct iovm_rqueue *q = (struct iovm_rqueue *)1;
	struct child srv;

	g_share = share_name("xdev");
	g_dev = share_name("xdevdev");
	owner = share_ok(g_share, HEAP);
	srv = start_server();
	other = share_ok(share_name("xother"), HEAP);
	CHECK_EQ(iovm_rqueue_open(other, g_dev, 16, &q), -EXDEV);
	CHECK(q == (struct iovm_rqueue *)1);
	CHECK_EQ(share_info(other).blocks, 0);
	CHECK_EQ(iovm_rqueue_open(other, "no-such-device", 16, &q), -ENOENT);
	CHECK_OK(iovm_close(other));
	stop_server(&srv);
	CHECK_OK(iovm_close(owner));
}

int main(void)
{
	test_init();
	RUN(copy_in_another_process);
	RUN(stop_with_clients);
	RUN(another_share);
	RUN(clients_are_isolated);
	RUN(client_dies);
	RUN(device_process_dies);
	RUN(sixty_four_clients);
	return 0;
}
