/* SPDX-License-Identifier: MIT */
/*
 * test_attack10_live.c - liveness of the gate (iovm/mp.h,
 * iovm_rqueue_map_mr(): "the device waits while it is closed (at most 5
 * s, then the descriptor faults)"; the memory monitor "waits for the
 * device's accesses in flight" before it lets a munmap() return): no
 * munmap() of registered memory, no client call and no descriptor may hang
 * when the device process is killed mid-descriptor, when the device waits
 * on a page request the client does not answer, or when unmap_mr() and
 * close race with munmap(). Every such call runs under a watchdog.
 */
#include "attack/attack10.h"

#define NP 64

static bool monitor_or_skip(struct a9 *r)
{
	return a9_monitor(r);
}

/*
 * The device killed (kill -9) while a batch of fills over the MR runs;
 * then the client unmaps the MR's memory: munmap() returns, the queue's
 * calls return, nothing hangs. On demand and pinned.
 */
static void killed_mid_descriptor(const char *tag, uint32_t access)
{
	struct a9 r;
	struct iovm_mr *mr;
	const size_t len = 4u << 20;
	uint8_t *app = a9_pages_64k(len / A9_PAGE);
	struct iovm_desc *list;
	struct iovm_cqe cqe;
	iovm_iova_t io;
	int n;

	a9_open(&r, tag, "", 0);
	memset(app, 0x21, len);
	CHECK_OK(iovm_mr_reg(r.dom, app, len, access, &mr));
	if (!monitor_or_skip(&r)) {
		CHECK_OK(iovm_mr_dereg(mr));
		a9_close(&r, true);
		SKIP_CASE("no memory monitor (userfaultfd)");
	}
	CHECK_OK(iovm_rqueue_map_mr(r.q, mr, RW, &io));
	list = (struct iovm_desc *)r.heap;
	for (unsigned i = 0; i < 512; i++)
		list[i] = (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = io.addr + (i % 4) * (len / 4), .len = (uint32_t)(len / 4),
					      .pattern = 0x4444444444444444ull };
	CHECK_OK(iovm_rqueue_submit(r.q, &(struct iovm_desc){ .op = IOVM_OP_BATCH, .src = r.ih.addr, .len = 512, .tag = 7 }));
	a10_watch(60, "waiting for the batch's first bytes");
	while (app[0] != 0x44 && app[len / 4] != 0x44) {
		n = iovm_rqueue_reap(r.q, &cqe, 1);
		CHECK(n >= 0);
		if (n)
			break;
	}
	kill(r.srv.pid, SIGKILL);
	a10_watch(60, "munmap() of an MR's memory right after the device was killed mid-batch");
	CHECK_OK(munmap(app, len / 2));
	a10_watch(60, "reap after the device died");
	for (;;) {
		n = iovm_rqueue_reap(r.q, &cqe, 1);
		if (n == -EPIPE)
			break;
		CHECK_MSG(n >= 0, "reap: %d", n);
		usleep(100);
	}
	a10_watch(60, "unmap_mr/dereg/munmap/close after the device died");
	CHECK_EQ(iovm_rqueue_unmap_mr(r.q, mr), 0);
	CHECK_OK(iovm_mr_dereg(mr));
	CHECK_OK(munmap(app + len / 2, len / 2));
	CHECK_EQ(child_wait(&r.srv), -SIGKILL);
	r.srv_dead = true;
	a9_close(&r, true);
	a10_watch(0, "");
}

TEST(killed_mid_descriptor_odp)
{
	killed_mid_descriptor("a10kmo", ODPW);
}

TEST(killed_mid_descriptor_pinned)
{
	killed_mid_descriptor("a10kmp", IOVM_ACCESS_LOCAL_WRITE);
}

/*
 * The device waits on a page request (a piece never touched) that the
 * client does not answer (it does not reap); meanwhile the client munmaps
 * pages of a piece the device mapped before, then of the piece asked for.
 * Each munmap() returns (the device waits at most 5 s on anything), and
 * the descriptor completes. Then the same with the device killed while it
 * waits.
 */
static void stalled_request(const char *tag, bool kill_it)
{
	struct a9 r;
	struct iovm_mr *mr;
	uint8_t *app = a9_pages_64k(NP);
	struct iovm_completion c;
	struct iovm_cqe cqe;
	iovm_iova_t io;
	double t0;
	int n;

	a9_open(&r, tag, "", 0);
	memset(app, 0x21, NP * A9_PAGE);
	CHECK_OK(iovm_mr_reg(r.dom, app, NP * A9_PAGE, ODPW, &mr));
	if (!monitor_or_skip(&r)) {
		CHECK_OK(iovm_mr_dereg(mr));
		a9_close(&r, true);
		SKIP_CASE("no memory monitor (userfaultfd)");
	}
	CHECK_OK(iovm_rqueue_map_mr(r.q, mr, RW, &io));
	/* piece 0 mapped on the device */
	c = a9_go(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = io.addr, .dst = r.ih.addr, .len = 16 * A9_PAGE });
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	/* a fill of piece 2: a page request nobody answers */
	memset(r.rec, 0, sizeof(*r.rec));
	CHECK_OK(iovm_rqueue_submit(r.q, &(struct iovm_desc){ .op = IOVM_OP_FILL, .flags = IOVM_DESC_COMPLETION,
							      .completion = r.ir.addr, .dst = io.addr + 32 * A9_PAGE,
							      .len = 16 * A9_PAGE, .pattern = 0x4444444444444444ull, .tag = 5 }));
	usleep(100000);
	if (kill_it)
		kill(r.srv.pid, SIGKILL);
	t0 = a9_now();
	a10_watch(60, "munmap() of a mapped piece while the device waits on an unanswered page request");
	CHECK_OK(munmap(app + 3 * A9_PAGE, A9_PAGE));
	a10_watch(60, "munmap() of the piece the device's unanswered page request is for");
	CHECK_OK(munmap(app + 33 * A9_PAGE, A9_PAGE));
	a10_watch(0, "");
	printf("# %s: the two munmap() calls took %.3f s\n", tag, a9_now() - t0);
	CHECK(mmap(app + 3 * A9_PAGE, A9_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) ==
	      app + 3 * A9_PAGE);
	CHECK(mmap(app + 33 * A9_PAGE, A9_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) ==
	      app + 33 * A9_PAGE);
	memset(app + 3 * A9_PAGE, 0xcd, A9_PAGE);
	memset(app + 33 * A9_PAGE, 0xcd, A9_PAGE);
	a10_watch(60, "reaping the descriptor that waited on the page request");
	if (kill_it) {
		do {
			n = iovm_rqueue_reap(r.q, &cqe, 1);
			CHECK(n >= 0 || n == -EPIPE);
			if (n == 0)
				usleep(1000);
		} while (n != -EPIPE);
	} else {
		cqe = a9_wait_q(r.q, 5);
		printf("# %s: the stalled fill completed with status %u, bytes %u\n", tag, cqe.status, cqe.bytes_completed);
		CHECK(cqe.status == IOVM_STATUS_SUCCESS || cqe.status == IOVM_STATUS_PAGE_FAULT);
		/* whatever it did, the new page at 33 got none of it once munmap returned; 3 was never in its range */
		CHECK(a9_all(app + 3 * A9_PAGE, 0xcd, A9_PAGE));
		/* the queue still works, and reaches the new memory through a new page request */
		c = a9_go(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = io.addr + 3 * A9_PAGE, .dst = r.ih.addr, .len = A9_PAGE });
		CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
		CHECK(a9_all(r.heap, 0xcd, A9_PAGE));
	}
	a10_watch(60, "teardown");
	CHECK_EQ(iovm_rqueue_unmap_mr(r.q, mr), 0);
	CHECK_OK(iovm_mr_dereg(mr));
	if (kill_it) {
		CHECK_EQ(child_wait(&r.srv), -SIGKILL);
		r.srv_dead = true;
	}
	a9_close(&r, true);
	a10_watch(0, "");
	CHECK_OK(munmap(app, NP * A9_PAGE));
}

TEST(munmap_while_request_unanswered)
{
	stalled_request("a10stall", false);
}

TEST(munmap_while_request_unanswered_killed)
{
	stalled_request("a10stallk", true);
}

/*
 * A thread replaces pages of the MR (munmap + mmap) in a loop; the main
 * thread keeps descriptors in flight and reaps; a third thread unmaps and
 * maps the MR again on the queue, over and over; in the end the queue is
 * closed with descriptors in flight and munmaps still going. Nothing may
 * hang, and after each unmap_mr() returns the memory it wrote
 * afterwards keeps its marker until the MR is mapped again.
 */
struct churn {
	struct a9 *r;
	struct iovm_mr *mr;
	uint8_t *app;
	_Atomic int stop;
	_Atomic uint64_t io;     /* the MR's IOVA, 0 while unmapped */
	unsigned long replaced, remaps, stray;
	pthread_mutex_t mx;      /* the marker window against the reaper */
};

static void *replacer(void *arg)
{
	struct churn *x = arg;
	uint64_t s = 17;

	while (!atomic_load(&x->stop)) {
		/* not pages 40..47, where the remapper writes its marker */
		uint8_t *p = x->app + (a9_rng(&s) % 40) * A9_PAGE;

		/*
		 * Replaced in one call: between a munmap() and a mmap() of
		 * the hole, another thread's mapping (the sanitizer's, the
		 * library's) may take it.
		 */
		CHECK(mmap(p, A9_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == p);
		x->replaced++;
		usleep(200);
	}
	return NULL;
}

static void *remapper(void *arg)
{
	struct churn *x = arg;
	iovm_iova_t io;

	while (!atomic_load(&x->stop)) {
		usleep(3000);
		pthread_mutex_lock(&x->mx);
		atomic_store(&x->io, 0);
		CHECK_OK(iovm_rqueue_unmap_mr(x->r->q, x->mr));
		/* unmapped: nothing of the queue may land in the MR's memory now */
		memset(x->app + 40 * A9_PAGE, 0xcd, 8 * A9_PAGE);
		pthread_mutex_unlock(&x->mx);
		usleep(2000);
		pthread_mutex_lock(&x->mx);
		if (!a9_all(x->app + 40 * A9_PAGE, 0xcd, 8 * A9_PAGE))
			x->stray++;
		pthread_mutex_unlock(&x->mx);
		CHECK_OK(iovm_rqueue_map_mr(x->r->q, x->mr, RW, &io));
		atomic_store(&x->io, io.addr);
		x->remaps++;
	}
	return NULL;
}

TEST(unmap_mr_and_close_race_munmap)
{
	struct a9 r;
	struct churn x = { 0 };
	uint8_t *app = a9_pages_64k(NP);
	pthread_t t1, t2;
	iovm_iova_t io;
	uint64_t tag = 0, s = 3, inflight = 0;
	double t0;

	a9_open(&r, "a10churn", "", 0);
	memset(app, 0x21, NP * A9_PAGE);
	x = (struct churn){ .r = &r, .app = app };
	pthread_mutex_init(&x.mx, NULL);
	CHECK_OK(iovm_mr_reg(r.dom, app, NP * A9_PAGE, ODPW, &x.mr));
	if (!monitor_or_skip(&r)) {
		CHECK_OK(iovm_mr_dereg(x.mr));
		a9_close(&r, true);
		SKIP_CASE("no memory monitor (userfaultfd)");
	}
	CHECK_OK(iovm_rqueue_map_mr(r.q, x.mr, RW, &io));
	atomic_store(&x.io, io.addr);
	CHECK_OK(pthread_create(&t1, NULL, replacer, &x));
	CHECK_OK(pthread_create(&t2, NULL, remapper, &x));
	t0 = a9_now();
	a10_watch(90, "descriptors over an MR while it is unmapped/mapped on the queue and its pages replaced");
	while (a9_now() - t0 < 8) {
		uint64_t base = atomic_load(&x.io);
		struct iovm_cqe cqe[16];
		int n;

		if (base && inflight < 32) {
			struct iovm_desc d = { .tag = ++tag };

			if (a9_rng(&s) & 1)
				d = (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = base + (a9_rng(&s) % (NP - 2)) * A9_PAGE,
							.len = 2 * A9_PAGE, .pattern = 0x4444444444444444ull, .tag = tag };
			else
				d = (struct iovm_desc){ .op = IOVM_OP_COPY, .src = base + (a9_rng(&s) % (NP - 2)) * A9_PAGE,
							.dst = r.ih.addr, .len = 2 * A9_PAGE, .tag = tag };
			if (iovm_rqueue_submit(r.q, &d) == 0)
				inflight++;
		}
		pthread_mutex_lock(&x.mx);
		n = iovm_rqueue_reap(r.q, cqe, 16);
		pthread_mutex_unlock(&x.mx);
		CHECK(n >= 0);
		inflight -= (uint64_t)n;
	}
	atomic_store(&x.stop, 1);
	pthread_join(t2, NULL);
	/* Both seen to stop before the flag goes back: a replacer that missed it would never end. */
	pthread_join(t1, NULL);
	/* close with descriptors in flight while pages are still being replaced */
	atomic_store(&x.stop, 0);
	CHECK_OK(pthread_create(&t1, NULL, replacer, &x));
	for (unsigned i = 0; i < 16; i++)
		iovm_rqueue_submit(r.q, &(struct iovm_desc){ .op = IOVM_OP_FILL, .dst = io.addr, .len = NP * A9_PAGE, .tag = 1000 + i });
	a10_watch(60, "iovm_rqueue_close() racing munmap() with descriptors in flight");
	CHECK_OK(iovm_rqueue_close(r.q));
	atomic_store(&x.stop, 1);
	pthread_join(t1, NULL);
	a10_watch(0, "");
	printf("# churn: %lu pages replaced, %lu unmap/map cycles, %lu strays after unmap_mr\n", x.replaced, x.remaps, x.stray);
	CHECK(x.remaps > 10);
	CHECK_EQ(x.stray, 0);
	/* the MR is no longer mapped anywhere: dereg works */
	CHECK_OK(iovm_mr_dereg(x.mr));
	a9_close(&r, false);
	CHECK_OK(munmap(app, NP * A9_PAGE));
}

/*
 * The device process killed while a thread of the client replaces pages
 * of two mapped MRs (munmap + mmap) in a loop and the main thread keeps
 * descriptors in flight: the replacing thread's munmap() calls keep
 * returning (no more than 60 s for any).
 */
static _Atomic double last_munmap;

static void *replacer2(void *arg)
{
	struct churn *x = arg;
	uint64_t s = 29;

	while (!atomic_load(&x->stop)) {
		uint8_t *p = x->app + (a9_rng(&s) % NP) * A9_PAGE;

		/* In one call, as in replacer(): a hole could be another thread's before we map it again. */
		CHECK(mmap(p, A9_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == p);
		atomic_store(&last_munmap, a9_now());
		x->replaced++;
		usleep(100);
	}
	return NULL;
}

TEST(killed_during_munmap_storm)
{
	struct a9 r;
	struct churn x = { 0 };
	struct iovm_mr *m2;
	uint8_t *app = a9_pages_64k(NP);
	pthread_t t1;
	iovm_iova_t io, i2;
	uint64_t tag = 0, s = 5, inflight = 0;
	double t0;
	bool killed = false;

	a9_open(&r, "a10kstorm", "", 0);
	memset(app, 0x21, NP * A9_PAGE);
	x = (struct churn){ .r = &r, .app = app };
	CHECK_OK(iovm_mr_reg(r.dom, app, NP * A9_PAGE, ODPW, &x.mr));
	CHECK_OK(iovm_mr_reg(r.dom, app + A9_PAGE, (NP - 2) * A9_PAGE, IOVM_ACCESS_LOCAL_WRITE, &m2));
	if (!monitor_or_skip(&r)) {
		CHECK_OK(iovm_mr_dereg(x.mr));
		CHECK_OK(iovm_mr_dereg(m2));
		a9_close(&r, true);
		SKIP_CASE("no memory monitor (userfaultfd)");
	}
	CHECK_OK(iovm_rqueue_map_mr(r.q, x.mr, RW, &io));
	CHECK_OK(iovm_rqueue_map_mr(r.q, m2, RW, &i2));
	atomic_store(&last_munmap, a9_now());
	CHECK_OK(pthread_create(&t1, NULL, replacer2, &x));
	t0 = a9_now();
	while (a9_now() - t0 < 6) {
		struct iovm_cqe cqe[16];
		int n;

		if (!killed && a9_now() - t0 > 2) {
			kill(r.srv.pid, SIGKILL);
			killed = true;
		}
		if (inflight < 32) {
			uint64_t base = (a9_rng(&s) & 1) ? io.addr : i2.addr;
			struct iovm_desc d = { .op = IOVM_OP_FILL, .dst = base + (a9_rng(&s) % (NP - 4)) * A9_PAGE,
					       .len = 2 * A9_PAGE, .pattern = 0x4444444444444444ull, .tag = ++tag };
			int ret = iovm_rqueue_submit(r.q, &d);

			CHECK(ret == 0 || ret == -EAGAIN || (killed && ret == -EPIPE));
			if (!ret)
				inflight++;
		}
		n = iovm_rqueue_reap(r.q, cqe, 16);
		CHECK(n >= 0 || (killed && n == -EPIPE));
		if (n > 0)
			inflight -= (uint64_t)n;
		CHECK_MSG(a9_now() - atomic_load(&last_munmap) < 60, "a munmap() of registered memory hangs since the device died");
		if (n <= 0)
			usleep(100);
	}
	atomic_store(&x.stop, 1);
	a10_watch(60, "joining the thread that munmaps registered memory");
	pthread_join(t1, NULL);
	a10_watch(60, "teardown after the device died");
	printf("# storm: %lu pages replaced; the device was killed after 2 s\n", x.replaced);
	CHECK(x.replaced > 100);
	CHECK_EQ(iovm_rqueue_unmap_mr(r.q, x.mr), 0);
	CHECK_EQ(iovm_rqueue_unmap_mr(r.q, m2), 0);
	CHECK_OK(iovm_mr_dereg(x.mr));
	CHECK_OK(iovm_mr_dereg(m2));
	CHECK_EQ(child_wait(&r.srv), -SIGKILL);
	r.srv_dead = true;
	a9_close(&r, true);
	a10_watch(0, "");
	CHECK_OK(munmap(app, NP * A9_PAGE));
}

int main(void)
{
	test_init();
	A10_RUN(killed_mid_descriptor_odp);
	A10_RUN(killed_mid_descriptor_pinned);
	A10_RUN(munmap_while_request_unanswered);
	A10_RUN(munmap_while_request_unanswered_killed);
	A10_RUN(unmap_mr_and_close_race_munmap);
	A10_RUN(killed_during_munmap_storm);
	return 0;
}
