/* SPDX-License-Identifier: MIT */
/*
 * attack5_dev.h - what the fifth adversarial round (test_attack5_dev_*.c)
 * shares: a device process (a child serving the share's engine), clients
 * (an attached context with a queue), a descriptor run to completion with
 * a deadline (a hang, not a timing), and a client's view of the heap.
 * Written from the public headers (iovm/mp.h, iovm/dev.h) and issue 17
 * alone: these tests attack promises, not the implementation.
 */
#ifndef IOVM_TESTS_ATTACK5_DEV_H
#define IOVM_TESTS_ATTACK5_DEV_H

#include <time.h>

#include "attack4_mp.h"

/* ThreadSanitizer's die_after_fork=0: mp_util.h sets it, for every test that forks from a share's owner. */

static const char *a5_share, *a5_dev;

/* A device process: a child attached to the share, serving its engine. */
struct a5_srv {
	pid_t pid;
	int rd; /* from it */
	int wr; /* to it */
};

enum { A5_SRV_STOP = 1, A5_SRV_INFO = 2, A5_SRV_STOP_HOLD = 3, A5_SRV_SECRET = 4 };

#define A5_SECRET_BYTE 0x5c
#define A5_SECRET_LEN 65536

/*
 * The device process's own secret: malloc'd memory of byte
 * A5_SECRET_BYTE, registered in a domain of the device process's context
 * (pinned, and implicitly: the whole address space under one key, where
 * userfaultfd allows). Answers va, lkey, rkey, implicit lkey (0: none).
 */
static struct iovm_domain *a5_sec_dom;
static struct iovm_mr *a5_sec_mr, *a5_sec_imp;
static uint8_t *a5_secret;

static void a5_server_secret_free(void)
{
	if (!a5_secret)
		return;
	if (a5_sec_imp)
		CHECK_OK(iovm_mr_dereg(a5_sec_imp));
	CHECK_OK(iovm_mr_dereg(a5_sec_mr));
	CHECK_OK(iovm_domain_destroy(a5_sec_dom));
	free(a5_secret);
	a5_secret = NULL;
}

static void a5_server_secret(struct iovm_ctx *ctx, int wr)
{
	struct iovm_mr_info mi, ii = { 0 };
	uint32_t all = IOVM_ACCESS_LOCAL_READ | IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_REMOTE_READ |
		       IOVM_ACCESS_REMOTE_WRITE;

	if (!a5_secret) {
		CHECK(posix_memalign((void **)&a5_secret, 4096, A5_SECRET_LEN) == 0);
		memset(a5_secret, A5_SECRET_BYTE, A5_SECRET_LEN);
		CHECK_OK(iovm_domain_create(ctx, NULL, &a5_sec_dom));
		CHECK_OK(iovm_mr_reg(a5_sec_dom, a5_secret, A5_SECRET_LEN, all, &a5_sec_mr));
		if (iovm_mr_reg(a5_sec_dom, NULL, SIZE_MAX, all | IOVM_ACCESS_ON_DEMAND, &a5_sec_imp) < 0)
			a5_sec_imp = NULL;
	}
	CHECK_OK(iovm_mr_query(a5_sec_mr, &mi));
	if (a5_sec_imp)
		CHECK_OK(iovm_mr_query(a5_sec_imp, &ii));
	put64(wr, (uint64_t)(uintptr_t)a5_secret);
	put64(wr, mi.lkey);
	put64(wr, mi.rkey);
	put64(wr, a5_sec_imp ? ii.lkey : 0);
	put64(wr, a5_sec_imp ? ii.rkey : 0);
}

static void a5_server_main(int rd, int wr, unsigned workers)
{
	struct iovm_ctx *ctx = NULL;
	struct iovm_device_server *srv = NULL;
	int ret = iovm_attach(a5_share, "oracle=on,log_level=error", &ctx);

	CHECK_MSG(ret == 0, "server attach: %s", iovm_error_detail());
	ret = iovm_device_serve(ctx, a5_dev, workers, &srv);
	CHECK_MSG(ret == 0, "iovm_device_serve: %d %s", ret, iovm_error_detail());
	put64(wr, 1);
	for (;;) {
		uint64_t cmd = get64(rd);

		if (cmd == A5_SRV_INFO) {
			struct iovm_device_server_info in;

			CHECK_OK(iovm_device_server_info(srv, &in));
			put64(wr, in.clients);
			put64(wr, in.opened);
			put64(wr, in.descriptors);
			put64(wr, in.torn_down);
			put64(wr, in.refused);
			continue;
		}
		if (cmd == A5_SRV_SECRET) {
			a5_server_secret(ctx, wr);
			continue;
		}
		CHECK_OK(iovm_device_server_stop(srv));
		put64(wr, 2);
		if (cmd == A5_SRV_STOP_HOLD)
			get64(rd); /* stopped, context still open: the test looks meanwhile */
		a5_server_secret_free();
		CHECK_OK(iovm_close(ctx));
		a4_child_exit();
	}
}

static inline struct a5_srv a5_server(unsigned workers)
{
	int up[2], down[2];
	struct a5_srv s;

	CHECK(pipe(up) == 0 && pipe(down) == 0);
	s.pid = a4_fork();
	if (!s.pid) {
		close(up[0]);
		close(down[1]);
		a5_server_main(down[0], up[1], workers);
		_exit(0);
	}
	close(up[1]);
	close(down[0]);
	s.rd = up[0];
	s.wr = down[1];
	CHECK_EQ(get64(s.rd), 1);
	return s;
}

struct a5_info {
	uint64_t clients, opened, descriptors, torn_down, refused;
};

static inline struct a5_info a5_server_info(struct a5_srv *s)
{
	struct a5_info in;

	put64(s->wr, A5_SRV_INFO);
	in.clients = get64(s->rd);
	in.opened = get64(s->rd);
	in.descriptors = get64(s->rd);
	in.torn_down = get64(s->rd);
	in.refused = get64(s->rd);
	return in;
}

/* Stop and close the device process; it must end well (within a minute). */
static inline void a5_server_end(struct a5_srv *s)
{
	int st;

	put64(s->wr, A5_SRV_STOP);
	st = a4_wait_deadline(s->pid, 60);
	EXPECT_MSG(st == 0, "device process ended with %d (1000: hung)", st);
	close(s->rd);
	close(s->wr);
}

static inline void a5_server_kill(struct a5_srv *s)
{
	a4_kill(s->pid);
	close(s->rd);
	close(s->wr);
}

struct a5_cl {
	struct iovm_ctx *ctx;
	struct iovm_rqueue *q;
};

static inline struct a5_cl a5_client(unsigned depth)
{
	struct a5_cl c;
	int ret;

	c.ctx = a4_attach(a5_share);
	ret = iovm_rqueue_open(c.ctx, a5_dev, depth, &c.q);
	CHECK_MSG(ret == 0, "iovm_rqueue_open: %d %s", ret, iovm_error_detail());
	CHECK(iovm_rqueue_pasid(c.q) != 0);
	return c;
}

static inline void a5_client_close(struct a5_cl *c)
{
	CHECK_OK(iovm_rqueue_close(c->q));
	CHECK_OK(iovm_close(c->ctx));
}

static inline uint64_t a5_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * Run @d to completion: its completion entry. Fails after 60 s (a hang).
 * A negative return of submit or reap comes back in *@err (NULL: fail).
 */
static inline struct iovm_cqe a5_run_err(struct iovm_rqueue *q, struct iovm_desc d, int *err)
{
	struct iovm_cqe cqe = { 0 };
	uint64_t start = a5_now_ms();
	int n, ret;

	d.tag = UINT64_C(0xa5a5000000000000) | (d.tag & 0xffffffff);
	while ((ret = iovm_rqueue_submit(q, &d)) == -EAGAIN) {
		CHECK_MSG(a5_now_ms() - start < 60000, "queue full for a minute");
		usleep(100);
	}
	if (ret < 0) {
		CHECK_MSG(err, "iovm_rqueue_submit: %d", ret);
		*err = ret;
		return cqe;
	}
	for (unsigned long spins = 0;; spins++) {
		n = iovm_rqueue_reap(q, &cqe, 1);
		if (n < 0) {
			CHECK_MSG(err, "iovm_rqueue_reap: %d", n);
			*err = n;
			return cqe;
		}
		if (n)
			break;
		CHECK_MSG(a5_now_ms() - start < 60000, "descriptor op %u not completed in a minute", d.op);
		if (spins % 64 == 63)
			usleep(20);
	}
	CHECK_EQ(cqe.tag, d.tag);
	if (err)
		*err = 0;
	return cqe;
}

static inline uint8_t a5_run(struct iovm_rqueue *q, struct iovm_desc d)
{
	return a5_run_err(q, d, NULL).status;
}

static inline iovm_iova_t a5_map(struct a5_cl *c, const void *p, size_t len, uint32_t perm)
{
	iovm_iova_t iova;
	int ret = iovm_rqueue_map(c->q, p, len, perm, &iova);

	CHECK_MSG(ret == 0, "iovm_rqueue_map(%zu): %d %s", len, ret, iovm_error_detail());
	return iova;
}

/* xorshift64*, seeded. */
static inline uint64_t a5_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * UINT64_C(2685821657736338717);
}

/* A fresh share with a 4 KiB-page heap and a device process on it, names unique to the run. */
static inline struct iovm_ctx *a5_setup(const char *what, uint64_t heap, unsigned workers, struct a5_srv *srv)
{
	static char share[60], dev[64];
	struct iovm_ctx *owner;

	snprintf(share, sizeof(share), "%.50s", share_name(what));
	snprintf(dev, sizeof(dev), "%s-d", share);
	a5_share = share;
	a5_dev = dev;
	owner = a4_share(a5_share, heap);
	*srv = a5_server(workers);
	return owner;
}

#endif /* IOVM_TESTS_ATTACK5_DEV_H */
