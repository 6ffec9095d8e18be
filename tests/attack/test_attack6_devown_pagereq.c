/* SPDX-License-Identifier: MIT */
/*
 * test_attack6_devown_pagereq.c - page requests on a client's own memory
 * (iovm_rqueue_set_fault_handler(), IOVM_DESC_BLOCK_ON_FAULT): a handler
 * that maps the missing page lets the descriptor finish, with exactly the
 * bytes it mapped there, in every destination; it is asked at the first
 * byte not moved, for the access that faulted; a handler that says 0 but
 * maps nothing, or refuses, or none at all, ends in the fault after the
 * bytes before it; a queue closed while the device waits on it ends the
 * wait, and the device process serves on.
 */
#include "attack6_devown.h"

#define RW (IOVM_MAP_READ | IOVM_MAP_WRITE)
#define SZ (16 * A6_PAGE)
#define HOLE (8 * A6_PAGE)

struct handler {
	int mode; /* 0: map the page, filled with fillb; 1: say 0, map nothing; 2: refuse; 3: 0, and map+unmap on q */
	struct iovm_rqueue *q;
	void *other;
	int other_ret[2];
	uint8_t fillb;
	unsigned calls;
	void *addr[64];
	uint32_t access[64];
};

static int handle(void *arg, void *addr, uint32_t access)
{
	struct handler *h = arg;
	uint8_t *page = (uint8_t *)((uintptr_t)addr & ~(uintptr_t)(A6_PAGE - 1));

	if (h->calls < 64) {
		h->addr[h->calls] = addr;
		h->access[h->calls] = access;
	}
	h->calls++;
	if (h->mode == 2)
		return -EFAULT;
	if (h->mode == 1)
		return 0;
	if (h->mode == 3) { /* the handler uses its queue: a map and an unmap of another range */
		iovm_iova_t iova = { 0 };

		h->other_ret[0] = iovm_rqueue_map(h->q, h->other, A6_PAGE, RW, &iova);
		h->other_ret[1] = h->other_ret[0] ? 0 : iovm_rqueue_unmap(h->q, iova, A6_PAGE);
	}
	CHECK(mmap(page, A6_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == page);
	memset(page, h->fillb, A6_PAGE);
	return 0;
}

struct prig {
	struct a6_cl c;
	uint8_t *h, *d, *d2;
	uint64_t ih, id, id2;
};

static void prig_open(struct prig *r, struct handler *hd)
{
	r->c = a6_client(16);
	r->h = a6_anon(SZ, PROT_READ | PROT_WRITE);
	r->d = a6_anon(SZ, PROT_READ | PROT_WRITE);
	r->d2 = a6_anon(SZ, PROT_READ | PROT_WRITE);
	r->ih = a6_map(r->c.q, r->h, SZ, RW);
	r->id = a6_map(r->c.q, r->d, SZ, RW);
	r->id2 = a6_map(r->c.q, r->d2, SZ, RW);
	CHECK_OK(iovm_rqueue_set_fault_handler(r->c.q, handle, hd));
}

static void prig_close(struct prig *r)
{
	a6_client_close(&r->c);
	munmap(r->h, SZ);
	munmap(r->d, SZ);
	munmap(r->d2, SZ);
}

static void hole(struct prig *r)
{
	CHECK(munmap(r->h + HOLE, A6_PAGE) == 0);
}

static int all(const uint8_t *p, size_t len, uint8_t b)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != b)
			return 0;
	return 1;
}

TEST(handler_maps_the_page)
{
	struct iovm_ctx *owner;
	struct child srv;
	struct handler hd = { .mode = 0 };
	struct prig r;
	struct iovm_cqe cq;
	const uint32_t before = 1000, len = before + A6_PAGE + 500;

	CHECK_EQ(iovm_rqueue_set_fault_handler(NULL, handle, &hd), -EINVAL);
	owner = a6_setup("a6prmap", &srv, 2);
	prig_open(&r, &hd);
	/* A read: the source runs into the hole; the handler maps a page of 0x5d there. */
	memset(r.h, 0x11, SZ);
	hole(&r);
	hd.fillb = 0x5d;
	cq = a6_run(r.c.q, (struct iovm_desc){ .op = IOVM_OP_COPY, .flags = IOVM_DESC_BLOCK_ON_FAULT,
					       .src = r.ih + HOLE - before, .dst = r.id, .len = len });
	CHECK_EQ(cq.status, IOVM_STATUS_SUCCESS);
	CHECK_EQ(hd.calls, 1);
	CHECK_MSG(hd.addr[0] == r.h + HOLE && hd.access[0] == IOVM_MAP_READ, "asked for %p (%u), the hole is at %p",
		  hd.addr[0], hd.access[0], (void *)(r.h + HOLE));
	CHECK(all(r.d, before, 0x11) && all(r.d + before, A6_PAGE, 0x5d) && all(r.d + before + A6_PAGE, 500, 0x11));
	/* A write: FILL runs into the hole. */
	hole(&r);
	hd.calls = 0;
	hd.fillb = 0;
	cq = a6_run(r.c.q, (struct iovm_desc){ .op = IOVM_OP_FILL, .flags = IOVM_DESC_BLOCK_ON_FAULT,
					       .dst = r.ih + HOLE - before, .len = len, .pattern = 0x6e6e6e6e6e6e6e6eull });
	CHECK_EQ(cq.status, IOVM_STATUS_SUCCESS);
	CHECK_EQ(hd.calls, 1);
	CHECK(hd.addr[0] == r.h + HOLE && hd.access[0] == IOVM_MAP_WRITE);
	CHECK(all(r.h + HOLE - before, len, 0x6e));
	/* DUALCAST whose dst2 runs into the hole: both destinations whole at the end. */
	hole(&r);
	hd.calls = 0;
	memset(r.d, 0x7a, SZ);
	cq = a6_run(r.c.q, (struct iovm_desc){ .op = IOVM_OP_DUALCAST, .flags = IOVM_DESC_BLOCK_ON_FAULT,
					       .src = r.id, .dst = r.id2 + (HOLE - before) % A6_PAGE,
					       .dst2 = r.ih + HOLE - before, .len = len });
	CHECK_EQ(cq.status, IOVM_STATUS_SUCCESS);
	CHECK_EQ(hd.calls, 1);
	CHECK(all(r.h + HOLE - before, len, 0x7a));
	CHECK(all(r.d2 + (HOLE - before) % A6_PAGE, len, 0x7a));
	/* A batch's list in the hole. */
	hole(&r);
	hd.calls = 0;
	hd.fillb = 0;
	cq = a6_run(r.c.q, (struct iovm_desc){ .op = IOVM_OP_BATCH, .flags = IOVM_DESC_BLOCK_ON_FAULT,
					       .src = r.ih + HOLE, .len = 2 });
	printf("# a batch whose list is in a hole the handler fills with NOOPs: status %u after %u, %u requests\n",
	       cq.status, cq.bytes_completed, hd.calls);
	CHECK(cq.status == IOVM_STATUS_SUCCESS || cq.status == IOVM_STATUS_PAGE_FAULT);
	prig_close(&r);
	a6_teardown(owner, &srv);
}

TEST(handler_says_yes_maps_nothing_or_refuses)
{
	struct iovm_ctx *owner;
	struct child srv;
	struct handler hd = { .mode = 1 };
	struct prig r;
	struct iovm_cqe cq;
	const uint32_t before = 3000, len = before + A6_PAGE;

	owner = a6_setup("a6prlie", &srv, 1);
	prig_open(&r, &hd);
	memset(r.d, 0x21, SZ);
	hole(&r);
	for (int mode = 1; mode <= 2; mode++) {
		hd.mode = mode;
		hd.calls = 0;
		memset(r.h, 0x22, HOLE);
		cq = a6_run(r.c.q, (struct iovm_desc){ .op = IOVM_OP_COPY, .flags = IOVM_DESC_BLOCK_ON_FAULT,
						       .src = r.id, .dst = r.ih + HOLE - before, .len = len });
		printf("# handler %s: status %u after %u bytes, %u requests\n", mode == 1 ? "says 0, maps nothing" : "refuses",
		       cq.status, cq.bytes_completed, hd.calls);
		CHECK_EQ(cq.status, IOVM_STATUS_PAGE_FAULT);
		CHECK_EQ(cq.bytes_completed, before);
		CHECK(hd.calls >= 1);
		if (mode == 2)
			CHECK_EQ(hd.calls, 1);
		CHECK(all(r.h + HOLE - before, before, 0x21));
		CHECK(all(r.h, HOLE - before, 0x22));
	}
	/* No handler: the fault, after the bytes before it. */
	CHECK_OK(iovm_rqueue_set_fault_handler(r.c.q, NULL, NULL));
	cq = a6_run(r.c.q, (struct iovm_desc){ .op = IOVM_OP_FILL, .flags = IOVM_DESC_BLOCK_ON_FAULT,
					       .dst = r.ih + HOLE - 8, .len = 16, .pattern = 1 });
	CHECK_EQ(cq.status, IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(cq.bytes_completed, 8);
	prig_close(&r);
	a6_teardown(owner, &srv);
}

/* The device waits on a page request nobody reaps: closing the queue ends the wait; others are served after. */
TEST(close_while_the_device_waits)
{
	struct iovm_ctx *owner;
	struct child srv;
	struct handler hd = { .mode = 0, .fillb = 3 };
	struct prig r;
	struct a6_cl other;
	uint8_t *o = a6_anon(A6_PAGE, PROT_READ | PROT_WRITE);
	uint64_t io;

	owner = a6_setup("a6prclose", &srv, 1);
	prig_open(&r, &hd);
	other = a6_client(8);
	io = a6_map(other.q, o, A6_PAGE, RW);
	hole(&r);
	CHECK_OK(iovm_rqueue_submit(r.c.q, &(struct iovm_desc){ .op = IOVM_OP_FILL, .flags = IOVM_DESC_BLOCK_ON_FAULT,
								 .dst = r.ih + HOLE, .len = 64, .tag = 9 }));
	usleep(20000); /* not a timing: the request is sent or not; either way the close must end it */
	prig_close(&r);
	CHECK_EQ(hd.calls, 0);
	CHECK_EQ(a6_st(other.q, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = io, .len = A6_PAGE,
						    .pattern = 0x4848484848484848ull }),
		 IOVM_STATUS_SUCCESS);
	CHECK(all(o, A6_PAGE, 0x48));
	WAIT_UNTIL(a6_server_info(&srv).clients == 1);
	a6_client_close(&other);
	munmap(o, A6_PAGE);
	a6_teardown(owner, &srv);
}

/* A client that dies while the device waits on its page request: the device process serves on. */
static void dies_waiting(int rd, int wr, void *arg)
{
	static struct handler hd = { .mode = 0, .fillb = 1 };
	struct prig r;

	(void)rd;
	(void)arg;
	prig_open(&r, &hd);
	hole(&r);
	CHECK_OK(iovm_rqueue_submit(r.c.q, &(struct iovm_desc){ .op = IOVM_OP_FILL, .flags = IOVM_DESC_BLOCK_ON_FAULT,
								 .dst = r.ih + HOLE, .len = 64 }));
	put64(wr, 1);
	pause();
}

TEST(client_dies_while_the_device_waits)
{
	struct iovm_ctx *owner;
	struct child srv, k;
	struct a6_cl other;
	uint8_t *o = a6_anon(A6_PAGE, PROT_READ | PROT_WRITE);
	uint64_t io;
	unsigned mem, sock;

	owner = a6_setup("a6prdie", &srv, 1);
	other = a6_client(8);
	io = a6_map(other.q, o, A6_PAGE, RW);
	for (int round = 0; round < 3; round++) {
		k = child_start(dies_waiting, NULL);
		CHECK_EQ(get64(k.rd), 1);
		usleep(10000);
		child_kill(&k);
		CHECK_EQ(a6_st(other.q, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = io, .len = A6_PAGE,
							    .pattern = 0x0101010101010101ull * (uint64_t)(round + 5) }),
			 IOVM_STATUS_SUCCESS);
		CHECK(all(o, A6_PAGE, (uint8_t)(round + 5)));
		WAIT_UNTIL(a6_server_info(&srv).clients == 1);
		WAIT_UNTIL((a6_fds(srv.pid, &mem, &sock), mem == 1));
	}
	a6_client_close(&other);
	munmap(o, A6_PAGE);
	a6_teardown(owner, &srv);
}

/* A handler that maps and unmaps another range of its queue, inside the reap: no deadlock with the waiting device. */
TEST(handler_uses_its_queue)
{
	struct iovm_ctx *owner;
	struct child srv;
	struct handler hd = { .mode = 3, .fillb = 0x44 };
	struct prig r;
	struct iovm_cqe cq;

	owner = a6_setup("a6prq", &srv, 1);
	prig_open(&r, &hd);
	hd.q = r.c.q;
	hd.other = a6_anon(A6_PAGE, PROT_READ | PROT_WRITE);
	hole(&r);
	cq = a6_run(r.c.q, (struct iovm_desc){ .op = IOVM_OP_COPY, .flags = IOVM_DESC_BLOCK_ON_FAULT,
					       .src = r.ih + HOLE, .dst = r.id, .len = 100 });
	printf("# a handler's map and unmap inside the reap: %d, %d; the descriptor: status %u after %u, %u requests\n",
	       hd.other_ret[0], hd.other_ret[1], cq.status, cq.bytes_completed, hd.calls);
	CHECK_EQ(hd.calls, 1);
	CHECK_OK(hd.other_ret[0]);
	CHECK_OK(hd.other_ret[1]);
	CHECK_EQ(cq.status, IOVM_STATUS_SUCCESS);
	CHECK(all(r.d, 100, 0x44));
	prig_close(&r);
	munmap(hd.other, A6_PAGE);
	a6_teardown(owner, &srv);
}

int main(void)
{
	test_init();
	RUN(handler_maps_the_page);
	RUN(handler_says_yes_maps_nothing_or_refuses);
	RUN(handler_uses_its_queue);
	RUN(close_while_the_device_waits);
	RUN(client_dies_while_the_device_waits);
	return 0;
}
