/* SPDX-License-Identifier: MIT */
/*
 * test_attack21_live.c - liveness of delegated access (iovm/mp.h): other
 * processes' devices, with many descriptors in flight on queues with
 * worker threads, reach a process's registration in a shared domain
 * while that process is
 *  - stopped (SIGSTOP) and continued: every descriptor completes, with
 *    success and the right bytes (the owner lives and keeps its view);
 *  - killed (SIGKILL) at a random moment, round after round: every
 *    descriptor completes (success or IOVM_STATUS_PAGE_FAULT), those
 *    submitted once the death was reaped fault, a survivor's
 *    registration keeps working with the right bytes, the dead one's
 *    entries can be unmapped by anyone, iovm_share_check() passes;
 *  - deregistering and closing its view, or closing its context with
 *    the registration live: every descriptor completes, those submitted
 *    after the call returned fault, and the owner's memory is not
 *    written after it returned.
 * A hang ends in the watchdog (alarm), a failure.
 */
#include "attack21.h"

#define HEAP (UINT64_C(32) << 20)
#define DOM "a21-live"
#define LEN (UINT64_C(64) << 10)
#define HALF (LEN / 2) /* pages below: read (the owner's pattern); above: filled by the hammers */
#define HAMMERS 3u
#define INFLIGHT 8u
#define ROUNDS 6u
#define SURV_SEED 77u
#define FTAG 0x6b

static const char *g_name;

/* What every process sees: the owners' IOVAs and where the test stands. */
struct board {
	_Atomic uint64_t iova;      /* the owner of the round */
	_Atomic uint64_t seed;      /* its pattern */
	_Atomic uint64_t surv_iova; /* the survivor's */
	_Atomic uint64_t gone;      /* rounds whose owner's end (death, dereg, close) was reaped / returned */
	_Atomic int stop;
	_Atomic uint64_t ops;
	_Atomic uint64_t late_ok;   /* successes submitted after the owner was gone: must stay 0 */
	_Atomic uint64_t cur;       /* the owner of the round: its IOVA | round << 56; 0 for none */
};

static struct board *g_board;

static uint8_t *owner_mem(uint64_t seed)
{
	uint8_t *p = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(p != MAP_FAILED);
	a21_fill(p, LEN, seed);
	return p;
}

static void wait_ops(uint64_t more)
{
	uint64_t ops = atomic_load(&g_board->ops);

	while (atomic_load(&g_board->ops) < ops + more)
		usleep(500);
}

/* ---- the hammers: descriptors in flight at once on a worker queue ---- */

struct hammer {
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	unsigned id;
	uint64_t ok, faults, surv_ok;
	_Atomic uint64_t batches;
	_Atomic bool ready; /* its queue and buffer are open */
};

/* Every hammer began a batch after now (and finished it). */
static void wait_batches(struct hammer *h)
{
	uint64_t b[HAMMERS];

	for (unsigned i = 0; i < HAMMERS; i++)
		b[i] = atomic_load(&h[i].batches);
	for (unsigned i = 0; i < HAMMERS; i++)
		while (atomic_load(&h[i].batches) < b[i] + 2)
			usleep(500);
}

struct slot {
	int what; /* 0 read owner, 1 fill owner, 2 read survivor */
	uint64_t gone_before, round, seed;
	unsigned page;
};

static void *hammer_main(void *arg)
{
	struct hammer *h = arg;
	struct sdom_wq q = sdom_wq_open(h->ctx, h->dom, 16);
	struct sdom_buf b = sdom_buf_open(h->ctx, h->dom, INFLIGHT * A21_K4);
	unsigned seed = h->id * 31u + 5;

	atomic_store(&h->ready, true);
	while (!atomic_load(&g_board->stop)) {
		struct slot sl[INFLIGHT];
		unsigned n = 0, got = 0;

		for (unsigned i = 0; i < INFLIGHT; i++) {
			uint64_t gone = atomic_load(&g_board->gone);
			uint64_t cur = atomic_load(&g_board->cur);
			uint64_t round = cur >> 56;
			uint64_t iova = cur & ((UINT64_C(1) << 56) - 1);
			uint64_t surv = atomic_load(&g_board->surv_iova);
			struct iovm_desc d = { .pasid = SDOM_PASID, .tag = i };
			unsigned page = (unsigned)rand_r(&seed) % (HALF / A21_K4);

			sl[i] = (struct slot){ .what = (int)((unsigned)rand_r(&seed) % 3), .gone_before = gone,
					       .round = round, .seed = round * 13 + 1, .page = page };
			if (sl[i].what == 2 && !surv)
				sl[i].what = 0;
			if (sl[i].what != 2 && !iova)
				sl[i].what = surv ? 2 : -1;
			memset(b.p + (size_t)i * A21_K4, 0, A21_K4);
			if (sl[i].what == 0) {
				d.op = IOVM_OP_COPY;
				d.src = iova + (uint64_t)page * A21_K4 + 3;
				d.dst = b.iova + (uint64_t)i * A21_K4;
				d.len = 4093;
			} else if (sl[i].what == 1) {
				d.op = IOVM_OP_FILL;
				d.dst = iova + HALF + (uint64_t)page * A21_K4 + 1;
				d.len = 4095;
				d.pattern = SDOM_PATTERN(FTAG);
			} else if (sl[i].what == 2) {
				d.op = IOVM_OP_COPY;
				d.src = surv + (uint64_t)page * A21_K4;
				d.dst = b.iova + (uint64_t)i * A21_K4;
				d.len = 4096;
			} else {
				d.op = IOVM_OP_NOOP;
			}
			CHECK_OK(iovm_queue_submit(q.q, &d));
			n++;
		}
		while (got < n) {
			struct iovm_cqe cqe[INFLIGHT];
			int r = iovm_queue_reap(q.q, cqe, INFLIGHT);

			CHECK(r >= 0);
			if (!r) {
				sched_yield();
				continue;
			}
			for (int j = 0; j < r; j++) {
				struct slot *s = &sl[cqe[j].tag];
				const uint8_t *bytes = b.p + cqe[j].tag * A21_K4;

				got++;
				if (s->what < 0) {
					EXPECT_EQ(cqe[j].status, IOVM_STATUS_SUCCESS);
					continue;
				}
				EXPECT_MSG(cqe[j].status == IOVM_STATUS_SUCCESS || cqe[j].status == IOVM_STATUS_PAGE_FAULT,
					   "status %u", cqe[j].status);
				if (s->what == 2) {
					EXPECT_MSG(cqe[j].status == IOVM_STATUS_SUCCESS,
						   "the survivor's registration faulted (%u) in round %llu", cqe[j].status,
						   (unsigned long long)s->round);
					if (cqe[j].status == IOVM_STATUS_SUCCESS) {
						size_t off = a21_differs(bytes, 4096, SURV_SEED, (size_t)s->page * A21_K4);

						EXPECT_MSG(off == 4096, "survivor page %u byte %zu wrong", s->page, off);
						h->surv_ok++;
					}
					continue;
				}
				if (cqe[j].status == IOVM_STATUS_SUCCESS) {
					if (s->gone_before >= s->round) {
						atomic_fetch_add(&g_board->late_ok, 1);
						EXPECT_MSG(0, "a %s of round %llu's owner succeeded, submitted after it was gone",
							   s->what ? "fill" : "read", (unsigned long long)s->round);
					}
					if (s->what == 0) {
						size_t off = a21_differs(bytes, 4093, s->seed,
									 (size_t)s->page * A21_K4 + 3);

						EXPECT_MSG(off == 4093, "owner page %u byte %zu wrong: %#x", s->page, off,
							   off < 4093 ? bytes[off] : 0);
					}
					h->ok++;
				} else {
					h->faults++;
				}
			}
		}
		atomic_fetch_add(&g_board->ops, n);
		atomic_fetch_add(&h->batches, 1);
	}
	sdom_wq_close(&q);
	sdom_buf_close(h->ctx, h->dom, &b);
	return NULL;
}

static void hammers_start(struct iovm_ctx *ctx, struct iovm_domain *dom, struct hammer *h, pthread_t *t)
{
	atomic_store(&g_board->stop, 0);
	for (unsigned i = 0; i < HAMMERS; i++) {
		h[i] = (struct hammer){ .ctx = ctx, .dom = dom, .id = i };
		CHECK_OK(pthread_create(&t[i], NULL, hammer_main, &h[i]));
	}
	/*
	 * Every buffer mapped before an owner can go: a hammer slow to start
	 * (TSan, a loaded machine) would otherwise map its buffer at IOVAs
	 * the gone owner's unmap freed, and the others' reads of the owner's
	 * IOVAs would reach it, rightly.
	 */
	for (unsigned i = 0; i < HAMMERS; i++)
		while (!atomic_load(&h[i].ready))
			usleep(500);
}

static uint64_t hammers_stop(struct hammer *h, pthread_t *t)
{
	uint64_t ok = 0;

	atomic_store(&g_board->stop, 1);
	for (unsigned i = 0; i < HAMMERS; i++) {
		CHECK_OK(pthread_join(t[i], NULL));
		ok += h[i].ok;
	}
	return ok;
}

static void board_open(void)
{
	g_board = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(g_board != MAP_FAILED);
	memset(g_board, 0, sizeof(*g_board));
}

/*
 * An owner: attaches, opens the view, and on "go" (the round number)
 * registers its memory, says where, and then does what @arg says:
 * 0 waits to be stopped/killed; 1 deregisters and closes its view; 2
 * closes its context with the registration live. Then it checks its
 * memory was not written after that returned.
 */
static void owner_child(int rd, int wr, void *arg)
{
	a21_child_begin();
	int mode = (int)(intptr_t)arg;
	struct iovm_ctx *ctx = attach_ok(g_name);
	struct iovm_domain *dom;
	struct iovm_mr *mr;
	uint64_t round = get64(rd);
	uint64_t seed = round * 13 + 1;
	uint8_t *mem = owner_mem(seed);

	a21_watchdog(250);
	CHECK_OK(iovm_share_domain_open(ctx, DOM, &dom));
	CHECK_OK(iovm_mr_reg(dom, mem, LEN, IOVM_ACCESS_LOCAL_WRITE, &mr));
	atomic_store(&g_board->seed, seed);
	atomic_store(&g_board->iova, a21_mr_iova(mr));
	atomic_store(&g_board->cur, a21_mr_iova(mr) | round << 56);
	put64(wr, 1);
	CHECK_EQ(get64(rd), 2); /* hammered a while: now end */
	if (mode == 1) {
		CHECK_OK(iovm_mr_dereg(mr));
		CHECK_OK(iovm_domain_destroy(dom));
	} else if (mode == 2) {
		CHECK_OK(iovm_close(ctx));
	}
	{
		uint8_t *snap = malloc(LEN);

		CHECK(snap != NULL);
		memcpy(snap, mem, LEN);
		atomic_store(&g_board->gone, round);
		put64(wr, 3);
		CHECK_EQ(get64(rd), 4); /* hammered after it */
		for (size_t i = 0; i < LEN; i++)
			if (snap[i] != mem[i]) {
				EXPECT_MSG(0, "owner's memory written at byte %zu after %s returned: %#x (was %#x)", i,
					   mode == 1 ? "dereg and destroy" : "iovm_close", mem[i], snap[i]);
				break;
			}
		free(snap);
	}
	if (mode == 1)
		CHECK_OK(iovm_close(ctx));
	put64(wr, 5);
	a21_child_exit();
}

static void survivor_child(int rd, int wr, void *arg)
{
	a21_child_begin();
	struct iovm_ctx *ctx = attach_ok(g_name);
	struct iovm_domain *dom;
	struct iovm_mr *mr;
	uint8_t *mem = owner_mem(SURV_SEED);

	(void)arg;
	a21_watchdog(280);
	CHECK_OK(iovm_share_domain_open(ctx, DOM, &dom));
	CHECK_OK(iovm_mr_reg(dom, mem, LEN, IOVM_ACCESS_LOCAL_READ, &mr));
	atomic_store(&g_board->surv_iova, a21_mr_iova(mr));
	put64(wr, 1);
	CHECK_EQ(get64(rd), 2);
	EXPECT_EQ(a21_differs(mem, LEN, SURV_SEED, 0), LEN);
	CHECK_OK(iovm_mr_dereg(mr));
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_OK(iovm_close(ctx));
	put64(wr, 3);
	a21_child_exit();
}

TEST(stopped_then_continued)
{
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	struct hammer h[HAMMERS];
	pthread_t t[HAMMERS];
	struct child c;
	uint64_t faults = 0;
	int st = 0;

	g_name = share_name("a21-stop");
	board_open();
	ctx = share_ok(g_name, HEAP);
	CHECK_OK(iovm_share_domain_create(ctx, DOM, NULL, &dom));
	c = child_start(owner_child, (void *)(intptr_t)1);
	put64(c.wr, 1);
	CHECK_EQ(get64(c.rd), 1);
	hammers_start(ctx, dom, h, t);
	wait_ops(50);
	for (int k = 0; k < 3; k++) {
		CHECK_OK(kill(c.pid, SIGSTOP));
		CHECK(waitpid(c.pid, &st, WUNTRACED) == c.pid && WIFSTOPPED(st));
		usleep(50000); /* descriptors wait on the stopped owner meanwhile */
		CHECK_OK(kill(c.pid, SIGCONT));
		CHECK(waitpid(c.pid, &st, WCONTINUED) == c.pid && WIFCONTINUED(st));
		wait_ops(30);
	}
	hammers_stop(h, t);
	for (unsigned i = 0; i < HAMMERS; i++)
		faults += h[i].faults;
	EXPECT_MSG(faults == 0, "%llu accesses faulted, the owner alive and registered (stopped, then continued)",
		   (unsigned long long)faults);
	put64(c.wr, 2);
	CHECK_EQ(get64(c.rd), 3);
	put64(c.wr, 4);
	CHECK_EQ(get64(c.rd), 5);
	child_ok(&c);
	CHECK_OK(iovm_domain_destroy(dom));
	EXPECT_SOUND(ctx);
	CHECK_OK(iovm_close(ctx));
	munmap(g_board, 4096);
}

TEST(killed_at_random_moments)
{
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	struct hammer h[HAMMERS];
	pthread_t t[HAMMERS];
	struct child owners[ROUNDS], surv;
	uint64_t surv_ok = 0, faults = 0, ok;
	unsigned seed = (unsigned)getpid();

	g_name = share_name("a21-kill");
	board_open();
	ctx = share_ok(g_name, HEAP);
	CHECK_OK(iovm_share_domain_create(ctx, DOM, NULL, &dom));
	/* Every child forked before any thread of the test runs. */
	surv = child_start(survivor_child, NULL);
	for (unsigned r = 0; r < ROUNDS; r++)
		owners[r] = child_start(owner_child, (void *)(intptr_t)0);
	CHECK_EQ(get64(surv.rd), 1);
	hammers_start(ctx, dom, h, t);
	for (unsigned r = 0; r < ROUNDS; r++) {
		uint64_t iova;

		put64(owners[r].wr, r + 1);
		CHECK_EQ(get64(owners[r].rd), 1);
		iova = atomic_load(&g_board->iova);
		wait_ops(1 + (unsigned)rand_r(&seed) % 120);
		usleep((unsigned)rand_r(&seed) % 3000);
		child_kill(&owners[r]);
		atomic_store(&g_board->gone, r + 1);
		wait_ops(60);
		/* The dead one's entries: anyone may unmap them. */
		{
			int ret;

			atomic_store(&g_board->cur, 0);
			wait_batches(h);
			ret = iovm_domain_unmap(dom, IOVM_IOVA(iova), LEN);
			EXPECT_MSG(ret == 0, "unmapping a dead owner's entries: %d (%s)", ret,
				   iovm_error_detail() ? iovm_error_detail() : "");
		}
		EXPECT_SOUND(ctx);
	}
	ok = hammers_stop(h, t);
	for (unsigned i = 0; i < HAMMERS; i++) {
		surv_ok += h[i].surv_ok;
		faults += h[i].faults;
	}
	printf("# owners: %llu accesses succeeded, %llu faulted; survivor: %llu\n", (unsigned long long)ok,
	       (unsigned long long)faults, (unsigned long long)surv_ok);
	CHECK(surv_ok > 0 && faults > 0);
	EXPECT_EQ(atomic_load(&g_board->late_ok), 0);
	put64(surv.wr, 2);
	CHECK_EQ(get64(surv.rd), 3);
	child_ok(&surv);
	CHECK_OK(iovm_domain_destroy(dom));
	EXPECT_SOUND(ctx);
	CHECK_OK(iovm_share_reap(ctx) >= 0 ? 0 : -1);
	CHECK_OK(iovm_close(ctx));
	munmap(g_board, 4096);
}

/* The owner ends its part (mode 1: dereg and close the view; 2: iovm_close) under fire. */
static void owner_ends(int mode, const char *what)
{
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	struct hammer h[HAMMERS];
	pthread_t t[HAMMERS];
	struct child c;

	g_name = share_name(what);
	board_open();
	ctx = share_ok(g_name, HEAP);
	CHECK_OK(iovm_share_domain_create(ctx, DOM, NULL, &dom));
	c = child_start(owner_child, (void *)(intptr_t)mode);
	put64(c.wr, 1);
	CHECK_EQ(get64(c.rd), 1);
	hammers_start(ctx, dom, h, t);
	wait_ops(80);
	put64(c.wr, 2);
	CHECK_EQ(get64(c.rd), 3); /* gone, from the owner's side */
	wait_ops(200);
	hammers_stop(h, t);
	put64(c.wr, 4);
	CHECK_EQ(get64(c.rd), 5);
	child_ok(&c);
	EXPECT_EQ(atomic_load(&g_board->late_ok), 0);
	if (mode == 2) {
		/* Its entries may be left (as a death leaves them): anyone unmaps them. */
		int ret = iovm_domain_unmap(dom, IOVM_IOVA(atomic_load(&g_board->iova)), LEN);

		EXPECT_MSG(ret == 0 || ret == -ENOENT, "unmapping a closed owner's entries: %d", ret);
	}
	CHECK_OK(iovm_domain_destroy(dom));
	EXPECT_SOUND(ctx);
	CHECK_OK(iovm_close(ctx));
	munmap(g_board, 4096);
}

TEST(owner_deregisters_and_closes_its_view)
{
	owner_ends(1, "a21-dereg");
}

TEST(owner_closes_its_context)
{
	owner_ends(2, "a21-close");
}

int main(void)
{
	a21_init();
	a21_watchdog(290);
	RUN(stopped_then_continued);
	RUN(killed_at_random_moments);
	RUN(owner_deregisters_and_closes_its_view);
	RUN(owner_closes_its_context);
	return a21_status();
}
