/* SPDX-License-Identifier: MIT */
/*
 * attack9_mr.h - what the ninth adversarial round (test_attack9_mr_*.c)
 * shares: a device process (a child serving the share's engine), a client
 * with its own managed domain where it registers its MRs, a queue on the
 * device with some shared heap and a completion record mapped, and
 * descriptors run to completion with a deadline (a hang, not a timing).
 * Written from the public headers (iovm/mp.h, iovm/reg.h, iovm/dev.h)
 * alone: iovm_rqueue_map_mr() and iovm_rqueue_unmap_mr() under attack.
 *
 * Tests that found a broken promise run only with IOVM_ATTACK9_KNOWN=1
 * (A9_KNOWN()); otherwise they print a skip line naming the bug.
 */
#ifndef IOVM_TESTS_ATTACK9_MR_H
#define IOVM_TESTS_ATTACK9_MR_H

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>

#include "mp/mp_device.h"

#define A9_PAGE 4096ul
#define A9_K64 65536ul

/* A test that shows a known bug runs only with IOVM_ATTACK9_KNOWN=1. */
#define A9_KNOWN(bug)                                                                   \
	do {                                                                            \
		const char *_k = getenv("IOVM_ATTACK9_KNOWN");                          \
		if (!_k || strcmp(_k, "1"))                                             \
			SKIP_CASE("known bug (IOVM_ATTACK9_KNOWN=1 runs it): %s", bug); \
	} while (0)

/* RUN(), or with A9_ONLY=name set, only the test of that name. */
#define A9_RUN(name)                                                      \
	do {                                                              \
		const char *_o = getenv("A9_ONLY");                       \
		if (!_o || !strcmp(_o, #name))                            \
			RUN(name);                                        \
	} while (0)

struct a9 {
	struct iovm_ctx *owner, *ctx;
	struct child srv;
	bool srv_dead;
	struct iovm_rqueue *q;
	struct iovm_domain *dom; /* the client's own, for its MRs */
	uint8_t *heap;           /* shared heap, mapped on the device at ih */
	size_t heap_len;
	struct iovm_completion *rec;
	iovm_iova_t ih, ir;
	uint64_t tag;
};

static inline double a9_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static struct iovm_ctx *a9_diag_ctx; /* whose counters a hang prints */

static double a9_hang_s = 60; /* a descriptor not done after this hangs */

static inline double a9_deadline(void)
{
	const char *d = getenv("A9_DEADLINE");

	return d ? atof(d) : a9_hang_s;
}

/* The device process and a client of it, with @opts for the client's context. */
static inline void a9_open(struct a9 *r, const char *tag, const char *opts, size_t heap_len)
{
	struct iovm_domain_attr attr = { .type = IOVM_DOMAIN_MANAGED };
	int ret;

	memset(r, 0, sizeof(*r));
	g_share = share_name(tag);
	g_dev = share_name("a9dev");
	r->owner = share_ok(g_share, HEAP);
	r->srv = start_server();
	ret = iovm_attach(g_share, opts, &r->ctx);
	CHECK_MSG(ret == 0, "attach(%s): %s", opts, iovm_error_detail());
	a9_diag_ctx = r->ctx;
	CHECK_OK(iovm_rqueue_open(r->ctx, g_dev, 64, &r->q));
	CHECK_OK(iovm_domain_create(r->ctx, &attr, &r->dom));
	r->heap_len = heap_len ? heap_len : (1u << 20);
	r->heap = iovm_dma_zalloc(r->ctx, r->heap_len, 4096, 0);
	r->rec = iovm_dma_zalloc(r->ctx, 4096, 4096, 0);
	CHECK(r->heap && r->rec);
	CHECK_OK(iovm_rqueue_map(r->q, r->heap, r->heap_len, IOVM_MAP_READ | IOVM_MAP_WRITE, &r->ih));
	CHECK_OK(iovm_rqueue_map(r->q, r->rec, 4096, IOVM_MAP_READ | IOVM_MAP_WRITE, &r->ir));
}

/* Close what a9_open() opened; the queue when @close_q. */
static inline void a9_close(struct a9 *r, bool close_q)
{
	if (close_q)
		CHECK_OK(iovm_rqueue_close(r->q));
	CHECK_OK(iovm_domain_destroy(r->dom));
	CHECK_OK(iovm_close(r->ctx));
	if (r->srv_dead)
		child_wait(&r->srv);
	else
		stop_server(&r->srv);
	CHECK_OK(iovm_close(r->owner));
}

static inline struct iovm_reg_stats a9_stats(struct iovm_ctx *ctx)
{
	struct iovm_reg_stats st;

	CHECK_OK(iovm_reg_stats(ctx, &st));
	return st;
}

/* Reap what @q has completed (up to 8, without waiting); *@inflight counts them off. */
static inline void a9_reap_some(struct iovm_rqueue *q, int *inflight)
{
	struct iovm_cqe cqe[8];
	int n = iovm_rqueue_reap(q, cqe, 8);

	CHECK_MSG(n >= 0, "reap: %d", n);
	*inflight -= n;
}

/* Reap @q until the completion of @tag: its cqe; fail after 60 s (a hang). */
static inline struct iovm_cqe a9_wait_q(struct iovm_rqueue *q, uint64_t tag)
{
	struct iovm_cqe cqe;
	double t0 = a9_now();
	unsigned long spins = 0;

	for (;;) {
		int n = iovm_rqueue_reap(q, &cqe, 1);

		CHECK_MSG(n >= 0, "reap: %d", n);
		if (n) {
			CHECK_MSG(cqe.tag == tag, "cqe tag %#llx, waited for %#llx", (unsigned long long)cqe.tag,
				  (unsigned long long)tag);
			return cqe;
		}
		if (++spins % 64 == 0) {
			if (a9_now() - t0 >= a9_deadline()) {
				struct iovm_reg_stats st = { 0 };

				if (a9_diag_ctx)
					iovm_reg_stats(a9_diag_ctx, &st);
				printf("# hang: odp_faults %llu, retries %llu, pinned %llu, evicted %llu, budget %llu\n",
				       (unsigned long long)st.odp_faults, (unsigned long long)st.odp_fault_retries,
				       (unsigned long long)st.odp_pinned_bytes, (unsigned long long)st.odp_evicted_bytes,
				       (unsigned long long)st.pin_budget);
			}
			CHECK_MSG(a9_now() - t0 < a9_deadline(), "descriptor %#llx hangs (%.0f s)", (unsigned long long)tag,
				  a9_deadline());
			usleep(20);
		}
	}
}

/* Run @d on @q (records at @rec, @rec_iova): the record, checked against the cqe. */
static inline struct iovm_completion a9_run_q(struct iovm_rqueue *q, struct iovm_desc d, struct iovm_completion *rec,
					      uint64_t rec_iova, uint64_t tag)
{
	struct iovm_cqe cqe;

	memset(rec, 0xee, sizeof(*rec));
	d.flags |= IOVM_DESC_COMPLETION;
	d.completion = rec_iova;
	d.tag = tag;
	CHECK_OK(iovm_rqueue_submit(q, &d));
	cqe = a9_wait_q(q, tag);
	CHECK_EQ(cqe.status, __atomic_load_n(&rec->status, __ATOMIC_ACQUIRE));
	return *rec;
}

static inline struct iovm_completion a9_go(struct a9 *r, struct iovm_desc d)
{
	return a9_run_q(r->q, d, r->rec, r->ir.addr, ++r->tag);
}

/* @n pages at a multiple of 64 KiB. */
static inline uint8_t *a9_pages_64k(size_t n)
{
	size_t all = (n + 16) * A9_PAGE;
	uint8_t *raw = mmap(NULL, all, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *p;

	CHECK(raw != MAP_FAILED);
	p = (uint8_t *)(((uintptr_t)raw + A9_K64 - 1) & ~(uintptr_t)(A9_K64 - 1));
	if (p > raw)
		CHECK_OK(munmap(raw, (size_t)(p - raw)));
	if (raw + all > p + n * A9_PAGE)
		CHECK_OK(munmap(p + n * A9_PAGE, (size_t)(raw + all - (p + n * A9_PAGE))));
	return p;
}

/* 64 KiB pieces of [a, a+len) as the device cuts them. */
static inline uint64_t a9_pieces(uintptr_t a, size_t len)
{
	return (a + len - 1) / A9_K64 - a / A9_K64 + 1;
}

static inline uint64_t a9_rng(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static inline bool a9_monitor(struct a9 *r)
{
	return a9_stats(r->ctx).monitor;
}

/* First offset where @a and @b differ, or -1. */
static inline long a9_diff(const uint8_t *a, const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (a[i] != b[i])
			return (long)i;
	return -1;
}

static inline bool a9_all(const uint8_t *p, uint8_t v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return false;
	return true;
}

#endif /* IOVM_TESTS_ATTACK9_MR_H */
