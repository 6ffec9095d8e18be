/* SPDX-License-Identifier: MIT */
/*
 * mp_device.h - what the device-process tests share: a share of HEAP
 * bytes, a device process serving it (a child, with the oracle on), a
 * client's context and queue, a descriptor run to its completion (or to
 * its completion record), and pages of the client's own memory.
 */
#ifndef IOVM_TESTS_MP_DEVICE_H
#define IOVM_TESTS_MP_DEVICE_H

#include <sys/mman.h>

#include "mp_util.h"

#define HEAP (UINT64_C(64) << 20)

static const char *g_share, *g_dev;
/* Set before the server starts: the device process prints why each of its descriptors faulted (its debug lines). */
static bool g_fault_reasons;

/* The device's own debug lines ("device: ..."), not the rest of the library's: why it faulted. */
static inline void server_log(void *arg, enum iovm_log_level level, const char *msg)
{
	(void)arg;
	if (level != IOVM_LOG_DEBUG || strstr(msg, "device: "))
		fprintf(stderr, "server: %s\n", msg);
}

static inline void server(int rd, int wr, void *arg)
{
	struct iovm_ctx *ctx = NULL;
	struct iovm_device_server *srv;
	int ret;

	(void)arg;
	/* To see why the device faulted (its bus faults say so at debug level): DEVSRV_DEBUG=1. */
	if (getenv("DEVSRV_DEBUG"))
		iovm_log_set_level(IOVM_LOG_DEBUG);
	else if (g_fault_reasons) {
		iovm_log_set_handler(server_log, NULL);
		iovm_log_set_level(IOVM_LOG_DEBUG);
	}
	ret = iovm_attach(g_share, "oracle=on", &ctx);
	CHECK_MSG(ret == 0, "attach: %s", iovm_error_detail());
	CHECK_OK(iovm_device_serve(ctx, g_dev, 2, &srv));
	put64(wr, 1);
	if (get64(rd) == 2) {
		struct iovm_device_server_info info;

		CHECK_OK(iovm_device_server_info(srv, &info));
		put64(wr, info.opened);
		put64(wr, info.torn_down);
		put64(wr, info.descriptors);
		get64(rd);
	}
	CHECK_OK(iovm_device_server_stop(srv));
	CHECK_OK(iovm_close(ctx));
}

struct cl {
	struct iovm_ctx *ctx;
	struct iovm_rqueue *q;
};

static inline struct cl client_open(void)
{
	struct cl c;
	int ret;

	c.ctx = attach_ok(g_share);
	ret = iovm_rqueue_open(c.ctx, g_dev, 64, &c.q);
	CHECK_MSG(ret == 0, "rqueue_open: %s", iovm_error_detail());
	CHECK(iovm_rqueue_pasid(c.q) != 0);
	return c;
}

static inline void client_close(struct cl *c)
{
	CHECK_OK(iovm_rqueue_close(c->q));
	CHECK_OK(iovm_close(c->ctx));
}

/* Run @d to completion: its status. */
static inline uint8_t run(struct iovm_rqueue *q, struct iovm_desc d)
{
	struct iovm_cqe cqe;
	int n = 0;

	d.tag = 0x5eed;
	CHECK_OK(iovm_rqueue_submit(q, &d));
	for (unsigned long spins = 0; !n; spins++) {
		n = iovm_rqueue_reap(q, &cqe, 1);
		CHECK_MSG(n >= 0, "reap: %d", n);
		CHECK(spins < 2000000000ul);
		if (!n && spins % 64 == 63)
			usleep(10);
	}
	CHECK_EQ(cqe.tag, 0x5eed);
	if (cqe.status != IOVM_STATUS_SUCCESS)
		printf("# pid %d: descriptor op %u, %u bytes: status %u after %u bytes\n", (int)getpid(), d.op, d.len,
		       cqe.status, cqe.bytes_completed);
	return cqe.status;
}

static inline struct child start_server(void)
{
	struct child srv = child_start(server, NULL);

	CHECK_EQ(get64(srv.rd), 1);
	return srv;
}

static inline void stop_server(struct child *srv)
{
	put64(srv->wr, 1);
	child_ok(srv);
}

/* Run @d with its completion record at @rec (which the device sees at @rec_iova): the record. */
static inline struct iovm_completion run_rec(struct iovm_rqueue *q, struct iovm_desc d, struct iovm_completion *rec,
				      uint64_t rec_iova)
{
	memset(rec, 0xee, sizeof(*rec));
	d.flags |= IOVM_DESC_COMPLETION;
	d.completion = rec_iova;
	CHECK_EQ(run(q, d), __atomic_load_n(&rec->status, __ATOMIC_ACQUIRE));
	return *rec;
}

static inline uint8_t *own_pages(size_t n)
{
	uint8_t *p = mmap(NULL, n * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(p != MAP_FAILED);
	return p;
}

/*
 * Clients 1 to @n, each a process running @fn(rd, wr, (void *)i) that
 * says its queue's PASID, waits for the word to go, and says 1 when done:
 * their PASIDs all differ, and each ends cleanly.
 */
static inline void run_clients(unsigned n, void (*fn)(int rd, int wr, void *arg))
{
	static struct child c[64];
	static uint64_t pasid[64];

	CHECK(n <= 64);
	for (unsigned i = 0; i < n; i++) {
		c[i] = child_start(fn, (void *)(uintptr_t)(i + 1));
		pasid[i] = get64(c[i].rd);
		for (unsigned j = 0; j < i; j++)
			CHECK(pasid[j] != pasid[i]);
	}
	for (unsigned i = 0; i < n; i++)
		put64(c[i].wr, 1);
	for (unsigned i = 0; i < n; i++) {
		CHECK_EQ(get64(c[i].rd), 1);
		child_ok(&c[i]);
	}
}

#endif /* IOVM_TESTS_MP_DEVICE_H */
