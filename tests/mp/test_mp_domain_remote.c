/* SPDX-License-Identifier: MIT */
/*
 * test_mp_domain_remote.c - a device of one process reaching another
 * process's registration in a shared domain (mp.h: the registering
 * process moves the bytes with its own engine). What each promise is
 * tried against:
 *  - the owner's munmap() and deregistration: the other device faults
 *    there from then on, the rest stays reachable, and no byte ever
 *    lands in, or comes from, the memory mapped anew at that address;
 *  - the owner stopped, then killed, with a request waiting: the request
 *    ends with a fault, nothing hangs;
 *  - churn: the owner replaces pages while the other device reads and
 *    fills them, round after round (a model: a page is its old bytes
 *    until replaced, and unreachable after).
 */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mp_sdom.h"
#include "mp_util.h"

#define HEAP (UINT64_C(16) << 20)
#define DOM "remote-dom"
#define PAGES 16u
#define LEN ((uint64_t)PAGES * 4096)
#define FRESH 0xee /* the bytes of memory mapped anew over a registered page */
#define TAG 0x77   /* what the other process's device fills */

static const char *g_name;

static uint8_t old_byte(size_t i, uint8_t seed)
{
	return (uint8_t)(i * 13 + seed);
}

static uint8_t *app_map(uint8_t seed)
{
	uint8_t *p = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(p != MAP_FAILED);
	for (size_t i = 0; i < LEN; i++)
		p[i] = old_byte(i, seed);
	return p;
}

static uint64_t mr_iova(struct iovm_mr *mr)
{
	struct iovm_mr_info info;

	CHECK_OK(iovm_mr_query(mr, &info));
	return info.iova.addr;
}

/* Page @k of the registration replaced: unmapped, and fresh memory of FRESH bytes there. */
static void replace_page(uint8_t *app, unsigned k)
{
	CHECK_OK(munmap(app + (size_t)k * 4096, 4096));
	CHECK(mmap(app + (size_t)k * 4096, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
		   0) == app + (size_t)k * 4096);
	memset(app + (size_t)k * 4096, FRESH, 4096);
}

/* LEN bytes of the shared heap mapped in @dom, zeroed: at *@iova. */
static uint8_t *back_open(struct iovm_ctx *ctx, struct iovm_domain *dom, uint64_t *iova)
{
	uint8_t *back = iovm_dma_alloc(ctx, LEN, 4096, 0);
	iovm_iova_t at = IOVM_IOVA(IOVM_ADDR_INVALID);

	CHECK(back != NULL);
	memset(back, 0, LEN);
	CHECK_OK(iovm_domain_map_ptr(dom, back, LEN, IOVM_MAP_READ | IOVM_MAP_WRITE, &at));
	*iova = at.addr;
	return back;
}

static uint8_t copy(struct devq *d, uint64_t src, uint64_t dst, uint64_t len)
{
	return devq_run(d, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = src, .dst = dst, .len = (uint32_t)len });
}

/* The asking process's side: its context, its view, a device on it and LEN bytes of heap mapped there. */
struct asker_side {
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	struct devq d;
	uint8_t *back;
	uint64_t back_iova;
};

static struct asker_side asker_open(void)
{
	struct asker_side a = { .ctx = attach_ok(g_name) };

	CHECK_OK(iovm_share_domain_open(a.ctx, DOM, &a.dom));
	a.d = devq_open(a.ctx, a.dom);
	a.back = back_open(a.ctx, a.dom, &a.back_iova);
	return a;
}

static void asker_close(struct asker_side *a)
{
	devq_close(&a->d);
	CHECK_OK(iovm_domain_unmap(a->dom, IOVM_IOVA(a->back_iova), LEN));
	CHECK_OK(iovm_dma_free(a->ctx, a->back));
	CHECK_OK(iovm_domain_destroy(a->dom));
	CHECK_OK(iovm_close(a->ctx));
}

/* ---- the owner's unmap and deregistration ---- */

/* The other process: told the owner's IOVA, then what to try after each of the owner's steps. */
static void unmap_child(int rd, int wr, void *arg)
{
	struct asker_side a = asker_open();
	uint64_t theirs;

	(void)arg;
	theirs = get64(rd);
	/* Whole, odd-sized and unaligned, both ways. */
	CHECK_EQ(copy(&a.d, theirs, a.back_iova, LEN), IOVM_STATUS_SUCCESS);
	for (size_t i = 0; i < LEN; i++)
		CHECK(a.back[i] == old_byte(i, 5));
	CHECK_EQ(devq_fill(&a.d, theirs + 5 * 4096 + 100, 3 * 4096 - 200, TAG), IOVM_STATUS_SUCCESS);
	put64(wr, 1);
	/* Page 2 replaced by the owner: a fault there, the bytes next to it still there. */
	CHECK_EQ(get64(rd), 2);
	memset(a.back, 0, LEN);
	CHECK_EQ(copy(&a.d, theirs + 2 * 4096, a.back_iova, 4096), IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(devq_fill(&a.d, theirs + 2 * 4096, 4096, TAG), IOVM_STATUS_PAGE_FAULT);
	CHECK(all_bytes(a.back, LEN, 0));
	CHECK_EQ(copy(&a.d, theirs + 3 * 4096, a.back_iova, 4096), IOVM_STATUS_SUCCESS);
	for (size_t i = 0; i < 4096; i++)
		CHECK(a.back[i] == old_byte(3 * 4096 + i, 5));
	/* A copy that runs into the hole stops there, with what came before it. */
	CHECK_EQ(copy(&a.d, theirs + 4096, a.back_iova, 2 * 4096), IOVM_STATUS_PAGE_FAULT);
	/*
	 * Longer, from page 0: a read asks the owner for as many pages at
	 * once as the leaves run on (up to four), here the two before the
	 * hole. They land; nothing from after the hole does.
	 */
	memset(a.back, 0, LEN);
	CHECK_EQ(copy(&a.d, theirs, a.back_iova, 6 * 4096), IOVM_STATUS_PAGE_FAULT);
	for (size_t i = 0; i < 2 * 4096; i++)
		CHECK(a.back[i] == old_byte(i, 5));
	CHECK(all_bytes(a.back + 2 * 4096, LEN - 2 * 4096, 0));
	put64(wr, 3);
	/* Deregistered: nothing reached any more. */
	CHECK_EQ(get64(rd), 4);
	memset(a.back, 0, LEN);
	CHECK(copy(&a.d, theirs + 3 * 4096, a.back_iova, 4096) != IOVM_STATUS_SUCCESS);
	CHECK(devq_fill(&a.d, theirs + 4 * 4096, 4096, TAG) != IOVM_STATUS_SUCCESS);
	CHECK(all_bytes(a.back, LEN, 0));
	put64(wr, 5);
	asker_close(&a);
}

TEST(follows_the_owners_unmaps)
{
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	struct iovm_mr *mr;
	uint8_t *app = app_map(5);
	struct child c;

	g_name = share_name("dom-remote");
	ctx = share_ok(g_name, HEAP);
	CHECK_OK(iovm_share_domain_create(ctx, DOM, NULL, &dom));
	c = child_start(unmap_child, NULL);
	CHECK_OK(iovm_mr_reg(dom, app, LEN, IOVM_ACCESS_LOCAL_WRITE, &mr));
	put64(c.wr, mr_iova(mr));
	CHECK_EQ(get64(c.rd), 1);
	for (size_t i = 5 * 4096 + 100; i < 8 * 4096 - 100; i++)
		CHECK(app[i] == TAG);
	CHECK(app[5 * 4096 + 99] == old_byte(5 * 4096 + 99, 5) && app[8 * 4096 - 100] == old_byte(8 * 4096 - 100, 5));
	replace_page(app, 2);
	put64(c.wr, 2);
	CHECK_EQ(get64(c.rd), 3);
	CHECK(all_bytes(app + 2 * 4096, 4096, FRESH));
	CHECK_OK(iovm_mr_dereg(mr));
	put64(c.wr, 4);
	CHECK_EQ(get64(c.rd), 5);
	child_ok(&c);
	CHECK(all_bytes(app + 2 * 4096, 4096, FRESH));
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_OK(iovm_share_check(ctx));
	CHECK_OK(iovm_close(ctx));
	munmap(app, LEN);
}

/* ---- the owner stopped, then killed, with a request waiting ---- */

static void doomed_child(int rd, int wr, void *arg)
{
	struct iovm_ctx *ctx = attach_ok(g_name);
	struct iovm_domain *dom;
	struct iovm_mr *mr;
	uint8_t *mine = app_map(9);

	(void)arg;
	CHECK_OK(iovm_share_domain_open(ctx, DOM, &dom));
	CHECK_OK(iovm_mr_reg(dom, mine, LEN, IOVM_ACCESS_LOCAL_WRITE, &mr));
	put64(wr, mr_iova(mr));
	get64(rd); /* stopped, then killed, here */
	_exit(1);
}

struct asker {
	struct devq *d;
	uint64_t src, dst;
	_Atomic int asking;
	uint8_t status;
};

static void *ask(void *arg)
{
	struct asker *a = arg;

	atomic_store(&a->asking, 1);
	a->status = copy(a->d, a->src, a->dst, LEN);
	return NULL;
}

TEST(owner_killed_with_a_request_waiting)
{
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	struct asker a = { 0 };
	uint64_t theirs, back_iova;
	pthread_t t;
	uint8_t *back;
	struct child c;
	struct devq d;

	g_name = share_name("dom-remote-kill");
	ctx = share_ok(g_name, HEAP);
	CHECK_OK(iovm_share_domain_create(ctx, DOM, NULL, &dom));
	c = child_start(doomed_child, NULL);
	theirs = get64(c.rd);
	d = devq_open(ctx, dom);
	back = back_open(ctx, dom, &back_iova);
	/* Alive: the bytes. */
	CHECK_EQ(copy(&d, theirs, back_iova, LEN), IOVM_STATUS_SUCCESS);
	CHECK(back[LEN - 1] == old_byte(LEN - 1, 9));
	memset(back, 0, LEN);
	/* Stopped: the request waits (its server cannot answer); killed: it ends, with a fault. */
	CHECK_OK(kill(c.pid, SIGSTOP));
	{
		int st = 0;

		/* Reported once every thread of it stopped: its server too. */
		CHECK(waitpid(c.pid, &st, WUNTRACED) == c.pid && WIFSTOPPED(st));
	}
	a = (struct asker){ .d = &d, .src = theirs, .dst = back_iova };
	CHECK_OK(pthread_create(&t, NULL, ask, &a));
	while (!atomic_load(&a.asking))
		sched_yield();
	usleep(20000); /* most likely waiting by now; either way the answer must be a fault */
	child_kill(&c);
	CHECK_OK(pthread_join(t, NULL));
	CHECK_EQ(a.status, IOVM_STATUS_PAGE_FAULT);
	CHECK(all_bytes(back, LEN, 0));
	/* And afterwards at once, with nobody to ask. */
	CHECK_EQ(copy(&d, theirs, back_iova, 4096), IOVM_STATUS_PAGE_FAULT);
	devq_close(&d);
	CHECK_OK(iovm_domain_unmap(dom, IOVM_IOVA(back_iova), LEN));
	CHECK_OK(iovm_dma_free(ctx, back));
	CHECK_OK(iovm_domain_unmap(dom, IOVM_IOVA(theirs), LEN));
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_OK(iovm_share_check(ctx));
	CHECK_OK(iovm_close(ctx));
}

/* ---- an on-demand registration, first touched by another process's device ---- */

static void odp_child(int rd, int wr, void *arg)
{
	struct asker_side a = asker_open();
	struct iovm_queue_stats st;
	uint64_t theirs;

	(void)arg;
	theirs = get64(rd);
	/* Nothing is mapped yet: each page comes by the owner's page request. */
	CHECK_EQ(copy(&a.d, theirs + 4096 + 7, a.back_iova, 3 * 4096), IOVM_STATUS_SUCCESS);
	for (size_t i = 0; i < 3 * 4096; i++)
		CHECK(a.back[i] == old_byte(4096 + 7 + i, 11));
	CHECK_EQ(devq_fill(&a.d, theirs + 8 * 4096, 2 * 4096, TAG), IOVM_STATUS_SUCCESS);
	CHECK_OK(iovm_queue_stats(a.d.q, &st));
	CHECK(st.page_requests > 0);
	put64(wr, 1);
	CHECK_EQ(get64(rd), 2);
	/* Discarded by the owner (MADV_DONTNEED): asked for again, its bytes now zero. */
	CHECK_EQ(copy(&a.d, theirs + 4096, a.back_iova, 4096), IOVM_STATUS_SUCCESS);
	CHECK(all_bytes(a.back, 4096, 0));
	put64(wr, 3);
	asker_close(&a);
}

TEST(on_demand_first_touch_by_another_process)
{
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	struct iovm_mr *mr;
	struct iovm_mr_info info;
	uint8_t *app = app_map(11);
	struct child c;

	g_name = share_name("dom-remote-odp");
	ctx = share_ok(g_name, HEAP);
	CHECK_OK(iovm_share_domain_create(ctx, DOM, NULL, &dom));
	c = child_start(odp_child, NULL);
	CHECK_OK(iovm_mr_reg(dom, app, LEN, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND, &mr));
	CHECK_OK(iovm_mr_query(mr, &info));
	CHECK_EQ(info.valid_pages, 0);
	put64(c.wr, info.iova.addr);
	CHECK_EQ(get64(c.rd), 1);
	CHECK(all_bytes(app + 8 * 4096, 2 * 4096, TAG));
	CHECK(app[8 * 4096 - 1] == old_byte(8 * 4096 - 1, 11) && app[10 * 4096] == old_byte(10 * 4096, 11));
	CHECK_OK(iovm_mr_query(mr, &info));
	CHECK(info.valid_pages >= 5);
	CHECK_OK(madvise(app + 4096, 4096, MADV_DONTNEED));
	put64(c.wr, 2);
	CHECK_EQ(get64(c.rd), 3);
	child_ok(&c);
	CHECK_OK(iovm_mr_dereg(mr));
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_OK(iovm_share_check(ctx));
	CHECK_OK(iovm_close(ctx));
	munmap(app, LEN);
}

/* ---- churn, against a model ---- */

#define ROUNDS 12u
#define OPS 160u

/*
 * The other process, each round: reads and fills random pages of the
 * owner's registration. A read that succeeds must give the page's old
 * bytes: the fresh ones would be memory the registration never held.
 * Reports its successes and faults.
 */
static void churn_child(int rd, int wr, void *arg)
{
	struct asker_side a = asker_open();
	uint64_t ok = 0, faults = 0;

	(void)arg;
	srand((unsigned)getpid());
	for (unsigned r = 0; r < ROUNDS; r++) {
		uint64_t theirs = get64(rd);
		uint8_t seed = (uint8_t)get64(rd);

		for (unsigned i = 0; i < OPS; i++) {
			unsigned k = (unsigned)rand() % PAGES;
			uint8_t st;

			if (i % 3 == 2) {
				st = devq_fill(&a.d, theirs + (uint64_t)k * 4096, 4096, TAG);
			} else {
				memset(a.back, 0, 4096);
				st = copy(&a.d, theirs + (uint64_t)k * 4096, a.back_iova, 4096);
				if (st == IOVM_STATUS_SUCCESS)
					for (size_t j = 0; j < 4096; j++)
						CHECK_MSG(a.back[j] == old_byte((size_t)k * 4096 + j, seed) || a.back[j] == TAG,
							  "round %u page %u byte %zu: %#x", r, k, j, a.back[j]);
			}
			CHECK(st == IOVM_STATUS_SUCCESS || st == IOVM_STATUS_PAGE_FAULT);
			if (st == IOVM_STATUS_SUCCESS)
				ok++;
			else
				faults++;
		}
		put64(wr, r);
	}
	put64(wr, ok);
	put64(wr, faults);
	asker_close(&a);
}

struct replacer {
	uint8_t *app;
	_Atomic bool stop;
	bool replaced[PAGES];
};

static void *replacer_main(void *arg)
{
	struct replacer *rp = arg;

	for (unsigned n = 0; n < PAGES / 2 && !atomic_load(&rp->stop); n++) {
		unsigned k = (unsigned)rand() % PAGES;

		if (!rp->replaced[k]) {
			replace_page(rp->app, k);
			rp->replaced[k] = true;
		}
		usleep(500);
	}
	return NULL;
}

TEST(churn_never_reaches_fresh_memory)
{
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	uint64_t ok, faults;
	struct child c;

	g_name = share_name("dom-remote-churn");
	ctx = share_ok(g_name, HEAP);
	CHECK_OK(iovm_share_domain_create(ctx, DOM, NULL, &dom));
	c = child_start(churn_child, NULL);
	for (unsigned r = 0; r < ROUNDS; r++) {
		uint8_t seed = (uint8_t)(r * 29 + 1);
		uint8_t *app = app_map(seed);
		struct replacer rp = { .app = app };
		struct iovm_mr *mr;
		pthread_t t;

		CHECK_OK(iovm_mr_reg(dom, app, LEN, IOVM_ACCESS_LOCAL_WRITE, &mr));
		put64(c.wr, mr_iova(mr));
		put64(c.wr, seed);
		CHECK_OK(pthread_create(&t, NULL, replacer_main, &rp));
		CHECK_EQ(get64(c.rd), r);
		atomic_store(&rp.stop, true);
		CHECK_OK(pthread_join(t, NULL));
		/* The model: a fresh page has its own bytes only; a kept one, its old bytes or the fills. */
		for (unsigned k = 0; k < PAGES; k++)
			for (size_t j = 0; j < 4096; j++) {
				uint8_t b = app[(size_t)k * 4096 + j];

				if (rp.replaced[k])
					CHECK_MSG(b == FRESH, "round %u: fresh page %u byte %zu is %#x", r, k, j, b);
				else
					CHECK(b == old_byte((size_t)k * 4096 + j, seed) || b == TAG);
			}
		CHECK_OK(iovm_mr_dereg(mr));
		munmap(app, LEN);
	}
	ok = get64(c.rd);
	faults = get64(c.rd);
	child_ok(&c);
	printf("# %llu accesses reached the registration, %llu faulted\n", (unsigned long long)ok,
	       (unsigned long long)faults);
	CHECK(ok > 0);
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_OK(iovm_share_check(ctx));
	CHECK_OK(iovm_close(ctx));
}

int main(void)
{
	RUN(follows_the_owners_unmaps);
	RUN(owner_killed_with_a_request_waiting);
	RUN(on_demand_first_touch_by_another_process);
	RUN(churn_never_reaches_fresh_memory);
	return 0;
}
