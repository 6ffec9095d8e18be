/* SPDX-License-Identifier: MIT */
/*
 * attack18.h - what the eighteenth adversarial round (test_attack18_*.c)
 * shares: a device process (a child serving the share's engine, oracle
 * on, answering its counters), clients with an own managed domain for
 * their MRs, a shared-heap scratch and completion records mapped on the
 * device, descriptors run to completion with a deadline (a hang, not a
 * timing), churn threads that keep discarding registered memory, and
 * busy-loop processes that load the machine. Written from the public
 * headers (iovm/mp.h, iovm/reg.h, iovm/dev.h) alone.
 *
 * Tests that found a broken promise run only with IOVM_ATTACK18_KNOWN=1
 * (A18_KNOWN()); otherwise they print a skip line naming the bug.
 * A18_ROUNDS=n runs the loops n times longer (a quarter as long under
 * ASan and TSan); A18_ONLY=name runs one test.
 */
#ifndef IOVM_TESTS_ATTACK18_H
#define IOVM_TESTS_ATTACK18_H

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>

#include "mp/mp_util.h"
#include "attack/devsrv_child.h"

#ifndef MADV_DONTNEED_LOCKED
#define MADV_DONTNEED_LOCKED 24
#endif

#define A18_PAGE 4096ul
#define A18_K64 65536ul
#define A18_HEAP (UINT64_C(64) << 20)
#define A18_RW (IOVM_MAP_READ | IOVM_MAP_WRITE)

#define A18_KNOWN(bug)                                                                   \
	do {                                                                             \
		const char *_k = getenv("IOVM_ATTACK18_KNOWN");                          \
		if (!_k || strcmp(_k, "1"))                                              \
			SKIP_CASE("known bug (IOVM_ATTACK18_KNOWN=1 runs it): %s", bug); \
	} while (0)

#define A18_RUN(name)                                   \
	do {                                            \
		const char *_o = getenv("A18_ONLY");    \
		if (!_o || !strcmp(_o, #name))          \
			RUN(name);                      \
	} while (0)

static inline unsigned a18_rounds(unsigned base)
{
	const char *s = getenv("A18_ROUNDS");
	unsigned m = s ? (unsigned)atoi(s) : 1;

	/* A quarter under the sanitizers, which run the whole suite again at a third of the speed. */
	if (TEST_ASAN || TEST_TSAN)
		base = (base + 3) / 4;
	return base * (m ? m : 1);
}

static inline double a18_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline uint64_t a18_rng(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* ---- the device process ---- */

static const char *a18_share, *a18_dev;

static inline struct iovm_device_server_info a18_srv_info(struct child *srv)
{
	return devsrv_info(srv);
}

/* A fresh share (owned by this process) and a device process for it. */
static inline struct iovm_ctx *a18_setup(const char *what, struct child *srv, unsigned workers)
{
	static char devs[8][64];
	static unsigned n;
	struct iovm_ctx *owner;

	a18_share = share_name(what);
	snprintf(devs[n % 8], 64, "%s-d", a18_share);
	a18_dev = devs[n++ % 8];
	owner = share_ok(a18_share, A18_HEAP);
	/* A descriptor that faults where the test expects none: the device process says which way it faulted. */
	devsrv_fault_reasons = true;
	*srv = devsrv_start(a18_share, a18_dev, workers);
	return owner;
}

static inline void a18_stop_server(struct child *srv)
{
	devsrv_stop(srv);
}

/* ---- a client ---- */

#define A18_RECS 64 /* completion records per client, one per tag slot */

struct a18_cl {
	struct iovm_ctx *ctx;
	struct iovm_rqueue *q;
	struct iovm_domain *dom; /* the client's own, for its MRs */
	uint8_t *heap;           /* shared heap scratch, mapped at ih */
	size_t heap_len;
	struct iovm_completion *rec; /* A18_RECS records, mapped at ir */
	uint64_t ih, ir;
	uint64_t tag;
};

static inline void a18_client(struct a18_cl *c, const char *opts, unsigned depth, size_t heap_len)
{
	struct iovm_domain_attr attr = { .type = IOVM_DOMAIN_MANAGED };
	iovm_iova_t v;
	int ret;

	memset(c, 0, sizeof(*c));
	ret = iovm_attach(a18_share, opts ? opts : "oracle=on", &c->ctx);
	CHECK_MSG(ret == 0, "attach(%s): %s", opts ? opts : "oracle=on", iovm_error_detail());
	ret = iovm_rqueue_open(c->ctx, a18_dev, depth, &c->q);
	CHECK_MSG(ret == 0, "rqueue_open: %d %s", ret, iovm_error_detail());
	CHECK_OK(iovm_domain_create(c->ctx, &attr, &c->dom));
	c->heap_len = heap_len ? heap_len : (1u << 20);
	c->heap = iovm_dma_zalloc(c->ctx, c->heap_len, 4096, 0);
	c->rec = iovm_dma_zalloc(c->ctx, 4096, 4096, 0);
	CHECK(c->heap && c->rec);
	CHECK_OK(iovm_rqueue_map(c->q, c->heap, c->heap_len, A18_RW, &v));
	c->ih = v.addr;
	CHECK_OK(iovm_rqueue_map(c->q, c->rec, 4096, A18_RW, &v));
	c->ir = v.addr;
}

static inline void a18_client_close(struct a18_cl *c)
{
	CHECK_OK(iovm_rqueue_close(c->q));
	CHECK_OK(iovm_domain_destroy(c->dom));
	CHECK_OK(iovm_close(c->ctx));
}

static inline struct iovm_reg_stats a18_reg(struct iovm_ctx *ctx)
{
	struct iovm_reg_stats st;

	CHECK_OK(iovm_reg_stats(ctx, &st));
	return st;
}

/* Reap @q until the completion of @tag (nothing else in flight); fail after 60 s: a hang. */
static inline struct iovm_cqe a18_wait(struct iovm_rqueue *q, uint64_t tag)
{
	struct iovm_cqe cqe;
	double t0 = a18_now();

	for (unsigned long spins = 1;; spins++) {
		int n = iovm_rqueue_reap(q, &cqe, 1);

		CHECK_MSG(n >= 0, "reap: %d", n);
		if (n) {
			CHECK_MSG(cqe.tag == tag, "cqe tag %#llx, waited for %#llx", (unsigned long long)cqe.tag,
				  (unsigned long long)tag);
			return cqe;
		}
		if (spins % 64 == 0) {
			CHECK_MSG(a18_now() - t0 < 60, "descriptor %#llx hangs (a minute)", (unsigned long long)tag);
			usleep(20);
		}
	}
}

/* Run @d on queue @q with its record @rec (the device sees it at @rec_iova): the record, checked against the cqe. */
static inline struct iovm_completion a18_run_q(struct iovm_rqueue *q, struct iovm_desc d, struct iovm_completion *rec,
					       uint64_t rec_iova, uint64_t tag)
{
	struct iovm_cqe cqe;
	struct iovm_completion out;

	memset(rec, 0, sizeof(*rec));
	d.flags |= IOVM_DESC_COMPLETION;
	d.completion = rec_iova;
	d.tag = tag;
	CHECK_OK(iovm_rqueue_submit(q, &d));
	cqe = a18_wait(q, tag);
	memcpy(&out, rec, sizeof(out));
	CHECK_EQ(cqe.status, out.status);
	CHECK_EQ(cqe.bytes_completed, out.bytes_completed);
	return out;
}

static inline struct iovm_completion a18_go(struct a18_cl *c, struct iovm_desc d)
{
	return a18_run_q(c->q, d, c->rec, c->ir, ++c->tag);
}

/* @n pages at a multiple of 64 KiB. */
static inline uint8_t *a18_pages_64k(size_t n)
{
	size_t all = (n + 16) * A18_PAGE;
	uint8_t *raw = mmap(NULL, all, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *p;

	CHECK(raw != MAP_FAILED);
	p = (uint8_t *)(((uintptr_t)raw + A18_K64 - 1) & ~(uintptr_t)(A18_K64 - 1));
	if (p > raw)
		CHECK(munmap(raw, (size_t)(p - raw)) == 0);
	if (raw + all > p + n * A18_PAGE)
		CHECK(munmap(p + n * A18_PAGE, (size_t)(raw + all - (p + n * A18_PAGE))) == 0);
	return p;
}

static inline uint8_t *a18_anon_rw(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(p != MAP_FAILED);
	return p;
}

static inline void a18_fill_rand(uint8_t *p, size_t len, uint64_t *seed)
{
	for (size_t i = 0; i < len; i += 8) {
		uint64_t r = a18_rng(seed);

		memcpy(p + i, &r, len - i < 8 ? len - i : 8);
	}
}

static inline long a18_diff(const uint8_t *a, const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (a[i] != b[i])
			return (long)i;
	return -1;
}

static inline const char *a18_st(uint8_t s)
{
	return iovm_status_name(s);
}

/* ---- load: busy-loop processes that die with the test ---- */

struct a18_load {
	unsigned n;
	pid_t pid[8];
};

static inline void a18_load_start(struct a18_load *l, unsigned n)
{
	pid_t parent = getpid();

	l->n = n;
	for (unsigned i = 0; i < n; i++) {
		fflush(NULL);
		l->pid[i] = fork();
		CHECK(l->pid[i] >= 0);
		if (!l->pid[i]) {
			volatile uint64_t x = 0;

			if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
				_exit(1);
			for (;;)
				x++;
		}
	}
}

static inline void a18_load_stop(struct a18_load *l)
{
	for (unsigned i = 0; i < l->n; i++) {
		int st;

		kill(l->pid[i], SIGKILL);
		while (waitpid(l->pid[i], &st, 0) < 0 && errno == EINTR)
			;
	}
	l->n = 0;
}

#endif /* IOVM_TESTS_ATTACK18_H */
