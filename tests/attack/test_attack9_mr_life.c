/* SPDX-License-Identifier: MIT */
/*
 * test_attack9_mr_life.c - the life of an MR mapped on a device queue
 * (iovm/mp.h, iovm_rqueue_map_mr(), iovm_rqueue_unmap_mr()): every
 * refusal; unmap and close while a long batch of fills runs over the MR
 * (on return, nothing more is written); two queues of one client mapping
 * one MR; another client cannot reach it; the device process killed
 * (unmap says 0, dereg works, nothing hangs); a client that does not reap
 * (the page request times out into a fault, no hang); a forked child.
 */
#include "attack/attack9_mr.h"

#define ODPW (IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND)

TEST(refusals)
{
	struct a9 r;
	struct iovm_mr *ro, *rw, *imp = NULL, *heapmr = NULL, *cached = NULL;
	struct iovm_rqueue *q2;
	struct iovm_rcache *rc;
	uint8_t *app = a9_pages_64k(32);
	iovm_iova_t io;
	int ret;

	a9_open(&r, "a9refuse", "", 0);
	CHECK_OK(iovm_mr_reg(r.dom, app, 16 * 4096, IOVM_ACCESS_ON_DEMAND, &ro));
	CHECK_OK(iovm_mr_reg(r.dom, app + 16 * 4096, 16 * 4096, ODPW, &rw));
	CHECK_EQ(iovm_rqueue_map_mr(NULL, rw, IOVM_MAP_READ, &io), -EINVAL);
	CHECK_EQ(iovm_rqueue_map_mr(r.q, NULL, IOVM_MAP_READ, &io), -EINVAL);
	CHECK_EQ(iovm_rqueue_map_mr(r.q, rw, 0, &io), -EINVAL);
	CHECK_EQ(iovm_rqueue_map_mr(r.q, rw, 0x80, &io), -EINVAL);
	CHECK_EQ(iovm_rqueue_map_mr(r.q, ro, IOVM_MAP_WRITE, &io), -EACCES);
	CHECK_EQ(iovm_rqueue_unmap_mr(NULL, rw), -EINVAL);
	CHECK_EQ(iovm_rqueue_unmap_mr(r.q, NULL), -EINVAL);
	CHECK_EQ(iovm_rqueue_unmap_mr(r.q, rw), -EINVAL);
	/* MR over the shared heap's memory */
	ret = iovm_mr_reg(r.dom, r.heap, 65536, IOVM_ACCESS_ON_DEMAND, &heapmr);
	if (!ret) {
		CHECK_EQ(iovm_rqueue_map_mr(r.q, heapmr, IOVM_MAP_READ, &io), -EINVAL);
		CHECK_OK(iovm_mr_dereg(heapmr));
	}
	/* implicit */
	ret = iovm_mr_reg(r.dom, NULL, SIZE_MAX, IOVM_ACCESS_ON_DEMAND, &imp);
	if (!ret) {
		CHECK_EQ(iovm_rqueue_map_mr(r.q, imp, IOVM_MAP_READ, &io), -EINVAL);
		CHECK_OK(iovm_mr_dereg(imp));
	}
	/* a registration cache's */
	CHECK_OK(iovm_rcache_create(r.dom, NULL, &rc));
	CHECK_OK(iovm_rcache_get(rc, app, 4096, IOVM_ACCESS_LOCAL_WRITE, &cached));
	CHECK_EQ(iovm_rqueue_map_mr(r.q, cached, IOVM_MAP_READ, &io), -EINVAL);
	CHECK_OK(iovm_rcache_put(rc, cached));
	CHECK_OK(iovm_rcache_destroy(rc));
	/* once per queue; a second queue may map it too; unmap on the wrong queue */
	CHECK_OK(iovm_rqueue_map_mr(r.q, rw, IOVM_MAP_READ | IOVM_MAP_WRITE, &io));
	CHECK_EQ(iovm_rqueue_map_mr(r.q, rw, IOVM_MAP_READ, &io), -EEXIST);
	CHECK_OK(iovm_rqueue_open(r.ctx, g_dev, 16, &q2));
	CHECK_EQ(iovm_rqueue_unmap_mr(q2, rw), -EINVAL);
	CHECK_OK(iovm_rqueue_map_mr(q2, rw, IOVM_MAP_READ, &io));
	CHECK_OK(iovm_rqueue_unmap_mr(r.q, rw));
	CHECK_EQ(iovm_mr_dereg(rw), -EBUSY);
	CHECK_OK(iovm_rqueue_unmap_mr(q2, rw));
	CHECK_OK(iovm_mr_dereg(rw));
	CHECK_OK(iovm_mr_dereg(ro));
	CHECK_OK(iovm_rqueue_close(q2));
	a9_close(&r, true);
	CHECK_OK(munmap(app, 32 * 4096));
}

/* -ENOSPC at 4096 ranges of own memory, map_mr and map together; one freed, one more fits. */
TEST(enospc_4096_ranges)
{
	struct a9 r;
	enum { N = 4096 };
	struct iovm_mr **mrs = calloc(N + 1, sizeof(*mrs));
	uint8_t *app = a9_pages_64k(N + 1);
	iovm_iova_t io, own;
	unsigned mapped = 0;
	int ret = 0;

	CHECK(mrs);
	a9_open(&r, "a9nospc", "", 0);
	/* one range of plain own memory */
	CHECK_OK(iovm_rqueue_map(r.q, app + N * 4096, 4096, IOVM_MAP_READ, &own));
	for (unsigned i = 0; i < N; i++) {
		CHECK_OK(iovm_mr_reg(r.dom, app + i * 4096, 4096, IOVM_ACCESS_ON_DEMAND, &mrs[i]));
		ret = iovm_rqueue_map_mr(r.q, mrs[i], IOVM_MAP_READ, &io);
		if (ret)
			break;
		mapped++;
	}
	printf("# mapped %u MRs beside one own range, then %d\n", mapped, ret);
	CHECK_EQ(ret, -ENOSPC);
	CHECK_EQ(mapped, N - 1);
	CHECK_OK(iovm_rqueue_unmap_mr(r.q, mrs[0]));
	CHECK_OK(iovm_rqueue_map_mr(r.q, mrs[mapped], IOVM_MAP_READ, &io));
	CHECK_OK(iovm_rqueue_close(r.q));
	for (unsigned i = 0; i <= mapped; i++)
		CHECK_OK(iovm_mr_dereg(mrs[i]));
	a9_close(&r, false);
	CHECK_OK(munmap(app, (N + 1) * 4096));
	free(mrs);
}

/*
 * A batch of 512 fills over a 4 MiB MR runs; unmap_mr from another thread
 * (while the main thread reaps, answering the page requests). Once unmap
 * returned, the client writes its own marker: nothing of the batch after
 * that may land.
 */
struct unmapper {
	struct iovm_rqueue *q;
	struct iovm_mr *mr;
	uint8_t *app;
	size_t len;
	_Atomic int go, done;
	int ret;
};

static void *unmapper_fn(void *arg)
{
	struct unmapper *u = arg;

	while (!atomic_load(&u->go))
		sched_yield();
	u->ret = iovm_rqueue_unmap_mr(u->q, u->mr);
	memset(u->app, 0xcd, u->len);
	atomic_store(&u->done, 1);
	return NULL;
}

static void unmap_or_close_in_flight(bool close_q)
{
	struct a9 r;
	struct iovm_mr *mr;
	const size_t len = 4u << 20;
	uint8_t *app = a9_pages_64k(len / 4096);
	struct iovm_desc *list;
	struct unmapper u = { 0 };
	pthread_t th;
	iovm_iova_t io;
	struct iovm_cqe cqe;
	int n = 0;

	a9_open(&r, close_q ? "a9closefl" : "a9unmapfl", "", 0);
	memset(app, 0x21, len);
	CHECK_OK(iovm_mr_reg(r.dom, app, len, ODPW, &mr));
	CHECK_OK(iovm_rqueue_map_mr(r.q, mr, IOVM_MAP_READ | IOVM_MAP_WRITE, &io));
	list = (struct iovm_desc *)r.heap;
	for (unsigned i = 0; i < 512; i++)
		list[i] = (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = io.addr + (i % 4) * (len / 4), .len = (uint32_t)(len / 4),
					      .pattern = 0x4444444444444444ull };
	u = (struct unmapper){ .q = r.q, .mr = mr, .app = app, .len = len };
	CHECK_OK(iovm_rqueue_submit(r.q, &(struct iovm_desc){ .op = IOVM_OP_BATCH, .src = r.ih.addr, .len = 512, .tag = 7 }));
	/* reap until the first fill has landed, then let the other thread go */
	while (app[0] != 0x44) {
		n = iovm_rqueue_reap(r.q, &cqe, 1);
		CHECK(n >= 0);
		if (n)
			break;
	}
	if (!close_q) {
		CHECK_OK(pthread_create(&th, NULL, unmapper_fn, &u));
		atomic_store(&u.go, 1);
		double t0 = a9_now();
		while (!n) {
			n = iovm_rqueue_reap(r.q, &cqe, 1);
			CHECK(n >= 0);
			CHECK_MSG(a9_now() - t0 < 60, "the batch hangs");
			if (!n)
				usleep(50);
		}
		pthread_join(th, NULL);
		CHECK_OK(u.ret);
		printf("# batch: status %u, children done %u\n", cqe.status, cqe.bytes_completed);
	} else {
		CHECK_OK(iovm_rqueue_close(r.q));
		memset(app, 0xcd, len);
		usleep(200000); /* a chance for a stray write to land: not what is asserted */
	}
	CHECK(a9_all(app, 0xcd, len));
	CHECK_OK(iovm_mr_dereg(mr));
	a9_close(&r, !close_q);
	CHECK_OK(munmap(app, len));
}

TEST(unmap_mr_in_flight)
{
	unmap_or_close_in_flight(false);
}

TEST(close_in_flight)
{
	unmap_or_close_in_flight(true);
}

/* Another client of the device, with the first's IOVAs: it reaches nothing of the first's MR. */
static void other_client(int rd, int wr, void *arg)
{
	struct cl c = client_open();
	uint8_t *heap = iovm_dma_zalloc(c.ctx, 65536, 4096, 0);
	struct iovm_completion *rec = iovm_dma_zalloc(c.ctx, 4096, 4096, 0);
	iovm_iova_t ih, ir;
	uint64_t io = get64(rd);
	unsigned faults = 0;

	(void)arg;
	CHECK(heap && rec);
	CHECK_OK(iovm_rqueue_map(c.q, heap, 65536, IOVM_MAP_READ | IOVM_MAP_WRITE, &ih));
	CHECK_OK(iovm_rqueue_map(c.q, rec, 4096, IOVM_MAP_READ | IOVM_MAP_WRITE, &ir));
	for (unsigned k = 0; k < 16; k++) {
		struct iovm_completion x;

		x = a9_run_q(c.q, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = io + k * 4096, .len = 4096, .pattern = 0 },
			     rec, ir.addr, 100 + k);
		faults += x.status == IOVM_STATUS_PAGE_FAULT;
		x = a9_run_q(c.q, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = io + k * 4096, .dst = ih.addr, .len = 4096 },
			     rec, ir.addr, 200 + k);
		faults += x.status == IOVM_STATUS_PAGE_FAULT;
	}
	put64(wr, faults);
	put64(wr, !a9_all(heap, 0, 65536));
	get64(rd);
	client_close(&c);
}

TEST(isolation_other_client)
{
	struct a9 r;
	struct iovm_mr *mr;
	uint8_t *app = a9_pages_64k(16);
	struct iovm_completion c;
	struct child other;
	iovm_iova_t io;

	if (TEST_TSAN)
		SKIP_CASE("ThreadSanitizer's fork() deadlocks with the memory monitor's fork event");
	a9_open(&r, "a9iso", "", 0);
	memset(app, 0x21, 16 * 4096);
	CHECK_OK(iovm_mr_reg(r.dom, app, 16 * 4096, ODPW, &mr));
	CHECK_OK(iovm_rqueue_map_mr(r.q, mr, IOVM_MAP_READ | IOVM_MAP_WRITE, &io));
	c = a9_go(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = io.addr, .dst = r.ih.addr, .len = 16 * 4096 });
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	other = child_start(other_client, NULL);
	put64(other.wr, io.addr);
	CHECK_EQ(get64(other.rd), 32);
	CHECK_EQ(get64(other.rd), 0);
	put64(other.wr, 1);
	child_ok(&other);
	CHECK(a9_all(app, 0x21, 16 * 4096));
	CHECK_OK(iovm_rqueue_unmap_mr(r.q, mr));
	CHECK_OK(iovm_mr_dereg(mr));
	a9_close(&r, true);
	CHECK_OK(munmap(app, 16 * 4096));
}

/* The device process killed with MRs mapped: unmap says 0, dereg works, map says -EPIPE, nothing hangs. */
TEST(device_killed)
{
	struct a9 r;
	struct iovm_mr *m1, *m2, *m3;
	uint8_t *app = a9_pages_64k(48);
	struct iovm_completion c;
	iovm_iova_t io, i2;

	a9_open(&r, "a9kill", "", 0);
	CHECK_OK(iovm_mr_reg(r.dom, app, 16 * 4096, ODPW, &m1));
	CHECK_OK(iovm_mr_reg(r.dom, app + 16 * 4096, 16 * 4096, IOVM_ACCESS_LOCAL_WRITE, &m2));
	CHECK_OK(iovm_mr_reg(r.dom, app + 32 * 4096, 16 * 4096, ODPW, &m3));
	CHECK_OK(iovm_rqueue_map_mr(r.q, m1, IOVM_MAP_READ | IOVM_MAP_WRITE, &io));
	CHECK_OK(iovm_rqueue_map_mr(r.q, m2, IOVM_MAP_READ | IOVM_MAP_WRITE, &i2));
	c = a9_go(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = io.addr, .dst = i2.addr, .len = 16 * 4096 });
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	kill(r.srv.pid, SIGKILL);
	CHECK_EQ(child_wait(&r.srv), -SIGKILL);
	r.srv_dead = true;
	CHECK_EQ(iovm_rqueue_map_mr(r.q, m3, IOVM_MAP_READ, &io), -EPIPE);
	CHECK_EQ(iovm_rqueue_unmap_mr(r.q, m1), 0);
	CHECK_OK(iovm_mr_dereg(m1));
	CHECK_EQ(iovm_rqueue_unmap_mr(r.q, m2), 0);
	CHECK_OK(iovm_mr_dereg(m2));
	CHECK_OK(iovm_mr_dereg(m3));
	/* page evictions and invalidations with the device gone do not hang */
	CHECK_OK(munmap(app, 48 * 4096));
	CHECK_OK(iovm_rqueue_close(r.q));
	CHECK_OK(iovm_domain_destroy(r.dom));
	CHECK_OK(iovm_close(r.ctx));
	CHECK_OK(iovm_close(r.owner));
}

/* The device killed with an MR mapped that the client then munmaps: the invalidation does not wait forever. */
TEST(device_killed_then_munmap)
{
	struct a9 r;
	struct iovm_mr *m1;
	uint8_t *app = a9_pages_64k(16);
	struct iovm_completion c;
	iovm_iova_t io;

	a9_open(&r, "a9kill2", "", 0);
	CHECK_OK(iovm_mr_reg(r.dom, app, 16 * 4096, ODPW, &m1));
	CHECK_OK(iovm_rqueue_map_mr(r.q, m1, IOVM_MAP_READ | IOVM_MAP_WRITE, &io));
	c = a9_go(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = io.addr, .dst = r.ih.addr, .len = 16 * 4096 });
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	kill(r.srv.pid, SIGKILL);
	CHECK_EQ(child_wait(&r.srv), -SIGKILL);
	r.srv_dead = true;
	CHECK_OK(munmap(app, 8 * 4096));
	struct iovm_mr_info info;
	CHECK_OK(iovm_mr_query(m1, &info)); /* waits for the monitor: which waited for the dead device? */
	CHECK_EQ(iovm_rqueue_unmap_mr(r.q, m1), 0);
	CHECK_OK(iovm_mr_dereg(m1));
	CHECK_OK(munmap(app + 8 * 4096, 8 * 4096));
	CHECK_OK(iovm_rqueue_close(r.q));
	CHECK_OK(iovm_domain_destroy(r.dom));
	CHECK_OK(iovm_close(r.ctx));
	CHECK_OK(iovm_close(r.owner));
}

/*
 * A client that does not reap while its descriptor needs a page request:
 * the device waits up to 5 s, then completes the descriptor with the
 * fault. We wait 12 s before reaping at all: the completion must be there,
 * a fault, with nothing written.
 */
TEST(no_reaper_times_out)
{
	struct a9 r;
	struct iovm_mr *mr;
	uint8_t *app = a9_pages_64k(16);
	struct iovm_cqe cqe;
	iovm_iova_t io;
	int n;

	a9_open(&r, "a9noreap", "", 0);
	memset(app, 0x21, 16 * 4096);
	CHECK_OK(iovm_mr_reg(r.dom, app, 16 * 4096, ODPW, &mr));
	CHECK_OK(iovm_rqueue_map_mr(r.q, mr, IOVM_MAP_READ | IOVM_MAP_WRITE, &io));
	CHECK_OK(iovm_rqueue_submit(r.q, &(struct iovm_desc){ .op = IOVM_OP_FILL, .dst = io.addr, .len = 4096, .tag = 9 }));
	sleep(12);
	n = iovm_rqueue_reap(r.q, &cqe, 1);
	CHECK_EQ(n, 1);
	CHECK_EQ(cqe.tag, 9);
	CHECK_EQ(cqe.status, IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(cqe.bytes_completed, 0);
	CHECK(a9_all(app, 0x21, 16 * 4096));
	CHECK_OK(iovm_rqueue_unmap_mr(r.q, mr));
	CHECK_OK(iovm_mr_dereg(mr));
	a9_close(&r, true);
	CHECK_OK(munmap(app, 16 * 4096));
}

/* A forked child may not use the parent's queue for the MR; the parent goes on. */
TEST(fork_child)
{
	struct a9 r;
	struct iovm_mr *mr, *m2;
	uint8_t *app = a9_pages_64k(32);
	struct iovm_completion c;
	iovm_iova_t io;
	pid_t pid;
	int st;

	if (TEST_TSAN)
		SKIP_CASE("ThreadSanitizer's fork() deadlocks with the memory monitor's fork event");
	a9_open(&r, "a9fork", "", 0);
	memset(app, 0x21, 32 * 4096);
	CHECK_OK(iovm_mr_reg(r.dom, app, 16 * 4096, ODPW, &mr));
	CHECK_OK(iovm_mr_reg(r.dom, app + 16 * 4096, 16 * 4096, ODPW, &m2));
	CHECK_OK(iovm_rqueue_map_mr(r.q, mr, IOVM_MAP_READ | IOVM_MAP_WRITE, &io));
	fflush(NULL);
	pid = fork();
	CHECK(pid >= 0);
	if (!pid) {
		iovm_iova_t x;
		int a = iovm_rqueue_map_mr(r.q, m2, IOVM_MAP_READ, &x);
		int b = iovm_rqueue_unmap_mr(r.q, mr);

		_exit((a == -EPERM ? 0 : 1) | (b == -EPERM ? 0 : 2) | (b == 0 ? 4 : 0));
	}
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK(WIFEXITED(st));
	printf("# child: map_mr %s, unmap_mr %s\n", WEXITSTATUS(st) & 1 ? "not -EPERM" : "-EPERM",
	       WEXITSTATUS(st) & 2 ? "not -EPERM" : "-EPERM");
	/* the parent's mapping works whatever the child did */
	c = a9_go(&r, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = io.addr, .len = 16 * 4096, .pattern = 0 });
	CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
	CHECK(a9_all(app, 0, 16 * 4096));
	CHECK_EQ(WEXITSTATUS(st), 0);
	CHECK_OK(iovm_rqueue_unmap_mr(r.q, mr));
	CHECK_OK(iovm_mr_dereg(mr));
	CHECK_OK(iovm_mr_dereg(m2));
	a9_close(&r, true);
	CHECK_OK(munmap(app, 32 * 4096));
}

int main(void)
{
	test_init();
	A9_RUN(refusals);
	A9_RUN(enospc_4096_ranges);
	A9_RUN(unmap_mr_in_flight);
	A9_RUN(close_in_flight);
	A9_RUN(isolation_other_client);
	A9_RUN(device_killed);
	A9_RUN(device_killed_then_munmap);
	A9_RUN(fork_child);
	A9_RUN(no_reaper_times_out);
	return 0;
}
