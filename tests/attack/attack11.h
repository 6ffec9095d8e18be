/* SPDX-License-Identifier: MIT */
/*
 * attack11.h - what the eleventh round's tests share: the journal of a
 * shared domain's unmaps in flight (iovm/mp.h), attacked from the public
 * headers alone. A share with one shared domain, children that attach and
 * open it, the shared counts read back exactly, and a watchdog that names
 * the test that hung.
 */
#ifndef IOVM_TESTS_ATTACK11_H
#define IOVM_TESTS_ATTACK11_H

#include <poll.h>
#include <signal.h>
#include <stdlib.h>

#include <iovm.h>

#include "mp/mp_sdom.h"
#include "mp/mp_util.h"

#define A11_HEAP (UINT64_C(16) << 20)
#define A11_DOM "a11-dom"
#define A11_PAGE UINT64_C(4096)
#define A11_NEVER (600u * 1000u * 1000u) /* a flush timeout no test reaches */

static const char *g_name;

static inline struct iovm_domain_stats a11_stats(struct iovm_domain *dom)
{
	struct iovm_domain_stats st;

	CHECK_OK(iovm_domain_stats(dom, &st));
	return st;
}

static inline uint64_t a11_iova(struct iovm_domain *dom)
{
	return a11_stats(dom).iova_allocated;
}

static inline uint64_t a11_leaves(struct iovm_domain *dom)
{
	struct iovm_domain_stats st = a11_stats(dom);

	return st.leaves_4k + st.leaves_2m * 512 + st.leaves_1g * 512 * 512;
}

static inline uint64_t a11_pending(struct iovm_domain *dom)
{
	return a11_stats(dom).pending_unmaps;
}

static inline uint64_t a11_held(struct iovm_ctx *ctx)
{
	return share_info(ctx).domain_held;
}

static inline struct iovm_share_domain_params a11_params(uint32_t flags, uint32_t batch, uint32_t timeout_us)
{
	return (struct iovm_share_domain_params){ .flags = flags, .flush_batch = batch,
						  .flush_timeout_us = timeout_us };
}

/* A share named @name of 4 KiB pages, whatever hugepages the machine has free: the tests count in 4 KiB pages. */
static inline struct iovm_ctx *a11_share_4k(const char *name)
{
	struct iovm_share_params sp = { .heap_size = A11_HEAP, .group = -1, .page_size = A11_PAGE };
	struct iovm_ctx *ctx = NULL;
	int ret;

	CHECK_OK(iovm_open("oracle=on", &ctx));
	ret = iovm_share(ctx, name, &sp);
	CHECK_MSG(ret == 0, "iovm_share(%s): %s: %s", name, strerror(-ret), iovm_error_detail());
	CHECK_EQ(share_info(ctx).page_size, A11_PAGE);
	return ctx;
}

/* The owner: a share named anew, and its shared domain. */
static inline struct iovm_ctx *a11_share(const char *what, const struct iovm_share_domain_params *p,
					 struct iovm_domain **dom)
{
	struct iovm_ctx *ctx;
	int ret;

	g_name = share_name(what);
	ctx = a11_share_4k(g_name);
	ret = iovm_share_domain_create(ctx, A11_DOM, p, dom);
	CHECK_MSG(ret == 0, "iovm_share_domain_create: %s: %s", strerror(-ret), iovm_error_detail());
	return ctx;
}

/* A child: attached, the domain opened. */
static inline struct iovm_ctx *a11_attach(struct iovm_domain **dom)
{
	struct iovm_ctx *ctx = attach_ok(g_name);
	int ret = iovm_share_domain_open(ctx, A11_DOM, dom);

	CHECK_MSG(ret == 0, "iovm_share_domain_open: %s: %s", strerror(-ret), iovm_error_detail());
	return ctx;
}

/* Whether the other process said something (without waiting). */
static inline bool a11_said(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, 0) == 1;
}

/* Sleep @ms, for a state to be reached that no check depends on reaching. */
static inline void a11_nap(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static void a11_hung(int sig)
{
	static const char msg[] = "FAIL: the watchdog fired: a call hung (see the last 'ok' above)\n";

	(void)sig;
	if (write(2, msg, sizeof(msg) - 1) < 0)
		_exit(2);
	_exit(3);
}

/* Fail (not hang) when the test runs past @s seconds. */
static inline void a11_watchdog(unsigned s)
{
	signal(SIGALRM, a11_hung);
	alarm(s);
}

/* The owner waits for the reap of every dead process: @n attached are left. */
static inline void a11_reaped(struct iovm_ctx *ctx, unsigned n)
{
	WAIT_UNTIL(share_info(ctx).processes == n);
}

/* Print (up to 8 of) the pages mapped in [from, to), as the table translates them; their count. */
static inline unsigned a11_dump_mapped(struct iovm_domain *dom, uint64_t from, uint64_t to)
{
	unsigned n = 0;

	for (uint64_t at = from; at < to; at += A11_PAGE) {
		iovm_pa_t pa;
		uint32_t perm;

		if (iovm_domain_translate(dom, IOVM_IOVA(at), &pa, &perm))
			continue;
		if (n++ < 8)
			printf("#   mapped: IOVA %#llx -> PA %#llx (perm %u)\n", (unsigned long long)at,
			       (unsigned long long)pa.addr, perm);
	}
	return n;
}

/* Map the page at PA @pa at an IOVA the domain chooses; the IOVA. */
static inline uint64_t a11_map_pa(struct iovm_domain *dom, uint64_t pa, uint64_t len)
{
	iovm_iova_t iova = IOVM_IOVA_ANY;
	int ret = iovm_domain_map(dom, &iova, IOVM_PA(pa), len, IOVM_MAP_READ | IOVM_MAP_WRITE);

	CHECK_MSG(ret == 0, "iovm_domain_map(pa %#llx, %llu): %s: %s", (unsigned long long)pa,
		  (unsigned long long)len, strerror(-ret), iovm_error_detail());
	return iova.addr;
}

static inline uint64_t a11_pa(struct iovm_ctx *ctx, const void *p)
{
	iovm_pa_t pa;

	CHECK_OK(iovm_dma_pa(ctx, p, &pa));
	return pa.addr;
}

/*
 * An agent: a child that attaches, opens the domain and runs what the
 * parent asks, one command of four words at a time, answering one word.
 */
enum {
	A11_MAP = 1,    /* pa, len: map at an IOVA the domain chooses; the IOVA */
	A11_MAP_AT,     /* pa, len, iova: map there; the return value */
	A11_UNMAP,      /* iova, len: the return value */
	A11_FLUSH,      /* the return value */
	A11_PENDING,    /* this view's pending_unmaps */
	A11_QUEUE,      /* pa, len, n: n times map at any IOVA and unmap; the pending unmaps after */
	A11_FILL,       /* iova, len, tag: a fill by this process's device; its status */
	A11_ALLOC,      /* len: an allocation of this process's; its PA */
	A11_FREE,       /* pa: iovm_dma_free(); the return value */
	A11_IOVA,       /* the domain's iova_allocated, as this view sees it */
	A11_MAP_RUN,    /* pa, iova, n: map the page at pa at n fixed IOVAs from iova on; 0 */
	A11_UNMAP_RUN,  /* iova, n: unmap them one page at a time; 0 */
	A11_STORM,      /* pa, pages, seed: map a random page at any IOVA and unmap it, a flush now and then; for ever */
	A11_CLOSE,      /* close the view and the context, and exit */
	A11_CLOSE_CTX,  /* close the context with the view open, and exit */
};

static void a11_agent_main(int rd, int wr, void *arg)
{
	struct iovm_domain *dom;
	struct iovm_ctx *ctx = a11_attach(&dom);
	bool have_dev = false;
	struct devq d;

	(void)arg;
	put64(wr, (uint64_t)getpid());
	for (;;) {
		uint64_t op = get64(rd), a = get64(rd), b = get64(rd), c = get64(rd), r = 0;

		switch (op) {
		case A11_MAP:
			r = a11_map_pa(dom, a, b);
			break;
		case A11_MAP_AT: {
			iovm_iova_t iova = IOVM_IOVA(c);

			r = (uint64_t)(int64_t)iovm_domain_map(dom, &iova, IOVM_PA(a), b, IOVM_MAP_READ | IOVM_MAP_WRITE);
			break;
		}
		case A11_UNMAP:
			r = (uint64_t)(int64_t)iovm_domain_unmap(dom, IOVM_IOVA(a), b);
			break;
		case A11_FLUSH:
			r = (uint64_t)(int64_t)iovm_domain_flush(dom);
			break;
		case A11_PENDING:
			r = a11_pending(dom);
			break;
		case A11_QUEUE:
			for (uint64_t i = 0; i < c; i++) {
				uint64_t iova = a11_map_pa(dom, a, b);

				CHECK_OK(iovm_domain_unmap(dom, IOVM_IOVA(iova), b));
			}
			r = a11_pending(dom);
			break;
		case A11_FILL:
			if (!have_dev) {
				d = devq_open(ctx, dom);
				have_dev = true;
			}
			r = devq_fill(&d, a, b, (uint8_t)c);
			break;
		case A11_ALLOC: {
			void *p = iovm_dma_alloc(ctx, a, 4096, 0);

			CHECK(p != NULL);
			r = a11_pa(ctx, p);
			break;
		}
		case A11_FREE:
			r = (uint64_t)(int64_t)iovm_dma_free(ctx, iovm_dma_ptr(ctx, IOVM_PA(a)));
			break;
		case A11_IOVA:
			r = a11_iova(dom);
			break;
		case A11_MAP_RUN:
			for (uint64_t i = 0; i < c; i++) {
				iovm_iova_t iova = IOVM_IOVA(b + i * A11_PAGE);
				int ret = iovm_domain_map(dom, &iova, IOVM_PA(a), A11_PAGE, IOVM_MAP_READ | IOVM_MAP_WRITE);

				CHECK_MSG(ret == 0, "map at %#llx: %d", (unsigned long long)iova.addr, ret);
			}
			break;
		case A11_UNMAP_RUN:
			for (uint64_t i = 0; i < b; i++)
				CHECK_OK(iovm_domain_unmap(dom, IOVM_IOVA(a + i * A11_PAGE), A11_PAGE));
			break;
		case A11_STORM:
			for (uint64_t seed = c | 1, i = 0;; i++) {
				uint64_t x = test_rand(&seed), len = A11_PAGE * (1 + x % 2);
				uint64_t iova = a11_map_pa(dom, a + ((x >> 8) % (b - 1)) * A11_PAGE, len);

				CHECK_OK(iovm_domain_unmap(dom, IOVM_IOVA(iova), len));
				if (x % 13 == 0)
					CHECK_OK(iovm_domain_flush(dom));
			}
			break;
		case A11_CLOSE:
			if (have_dev)
				devq_close(&d);
			CHECK_OK(iovm_domain_destroy(dom));
			CHECK_OK(iovm_close(ctx));
			put64(wr, 0);
			_exit(0);
		case A11_CLOSE_CTX:
			if (have_dev)
				devq_close(&d);
			CHECK_OK(iovm_close(ctx));
			put64(wr, 0);
			_exit(0);
		default:
			CHECK_MSG(0, "unknown command %llu", (unsigned long long)op);
		}
		put64(wr, r);
	}
}

static inline struct child a11_agent(void)
{
	struct child c = child_start(a11_agent_main, NULL);

	CHECK_EQ(get64(c.rd), c.pid);
	return c;
}

/* Send a command without waiting for its answer. */
static inline void a11_send(struct child *c, uint64_t op, uint64_t a, uint64_t b, uint64_t d)
{
	put64(c->wr, op);
	put64(c->wr, a);
	put64(c->wr, b);
	put64(c->wr, d);
}

static inline uint64_t a11_cmd(struct child *c, uint64_t op, uint64_t a, uint64_t b, uint64_t d)
{
	a11_send(c, op, a, b, d);
	return get64(c->rd);
}

static inline void a11_agent_close(struct child *c)
{
	CHECK_EQ(a11_cmd(c, A11_CLOSE, 0, 0, 0), 0);
	child_ok(c);
}

/* Stop a child (SIGSTOP) and wait until it is stopped. */
static inline void a11_stop(struct child *c)
{
	int st;

	CHECK_OK(kill(c->pid, SIGSTOP));
	CHECK_EQ(waitpid(c->pid, &st, WUNTRACED), c->pid);
	CHECK(WIFSTOPPED(st));
}

static inline void a11_cont(struct child *c)
{
	CHECK_OK(kill(c->pid, SIGCONT));
}

/* The end of every test: the domain gone with its last view, the heap whole and sound. */
static inline void a11_end(struct iovm_ctx *ctx, struct iovm_domain *dom)
{
	struct iovm_share_info info;

	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_MSG(iovm_share_check(ctx) == 0, "iovm_share_check: %s", iovm_error_detail());
	info = share_info(ctx);
	CHECK_EQ(info.domain_held, 0);
	CHECK_MSG(info.heap_free == info.heap_size, "%llu bytes of the heap not free after the domain went",
		  (unsigned long long)(info.heap_size - info.heap_free));
	CHECK_OK(iovm_close(ctx));
}

#endif /* IOVM_TESTS_ATTACK11_H */
