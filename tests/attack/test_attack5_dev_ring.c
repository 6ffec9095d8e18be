/* SPDX-License-Identifier: MIT */
/*
 * test_attack5_dev_ring.c - attack: a malicious client's rings. The rings
 * are in the shared heap, which every process maps writable: a client
 * finds its own (the cache lines its traffic changes) and scribbles them
 * (indices, slots, anything there) while submitting; it submits past the
 * depth; it frees the blocks its rings live in. Promise (iovm/mp.h,
 * issue 17): the device process keeps serving the others, a descriptor
 * of one client never reaches another's memory, and the share stays
 * whole (iovm_share_check()); the bad client's memory comes back when it
 * dies. Seeded (IOVM_SEED).
 */
#include "attack5_dev.h"

#define HEAP (UINT64_C(16) << 20)
#define DEPTH 8

/* What the bad client found: the lines of the heap its traffic changed. */
struct found {
	unsigned lines;
	uint64_t lo, hi;      /* offsets in the heap */
	unsigned frees_ok;    /* iovm_dma_free()s of its ring's blocks that succeeded */
	unsigned eagain_at;   /* submits accepted before -EAGAIN */
	_Atomic int scribbling;
	_Atomic uint64_t iterations;
};

static struct found *g_found;
static uint64_t g_seed;

static void bad_client(int free_rings)
{
	struct iovm_ctx *ctx = a4_attach(a5_share);
	struct iovm_share_info in = share_info(ctx);
	uint8_t *heap = in.heap_va, *s1 = malloc(in.heap_size);
	struct iovm_rqueue *q;
	static uint64_t line_off[65536];
	unsigned nlines = 0;
	uint64_t seed = g_seed;
	struct iovm_cqe cqe[DEPTH];

	CHECK(s1 != NULL);
	CHECK_OK(iovm_rqueue_open(ctx, a5_dev, DEPTH, &q));
	/* Past the depth, without reaping: -EAGAIN, and nothing runs over. */
	unsigned n = 0;
	int ret;

	while ((ret = iovm_rqueue_submit(q, &(struct iovm_desc){ .op = IOVM_OP_NOOP, .tag = n })) == 0 && n < 10 * DEPTH)
		n++;
	g_found->eagain_at = n;
	EXPECT_MSG(ret == -EAGAIN && n == DEPTH, "submits past depth %u: %u accepted, then %d", DEPTH, n, ret);
	for (unsigned got = 0; got < n;) {
		int r = iovm_rqueue_reap(q, cqe, DEPTH);

		CHECK(r >= 0);
		got += (unsigned)r;
	}
	memcpy(s1, heap, in.heap_size);
	for (unsigned i = 0; i < 5 * DEPTH; i++) {
		CHECK_EQ(a5_run(q, (struct iovm_desc){ .op = IOVM_OP_NOOP, .tag = 0x77770000u + i }),
			 IOVM_STATUS_SUCCESS);
	}
	for (uint64_t off = 0; off < in.heap_size; off += 64)
		if (memcmp(s1 + off, heap + off, 64) && nlines < 65536)
			line_off[nlines++] = off;
	free(s1);
	g_found->lines = nlines;
	g_found->lo = nlines ? line_off[0] : 0;
	g_found->hi = nlines ? line_off[nlines - 1] + 64 : 0;
	CHECK_MSG(nlines > 0, "the queue's traffic changed no line of the shared heap");
	if (free_rings) {
		/* Free every block that starts near the lines: the ring's. */
		uint64_t from = g_found->lo > 16384 ? (g_found->lo - 16384) & ~63ull : 0;

		for (uint64_t off = from; off < g_found->hi; off += 64) {
			if (iovm_dma_free(ctx, heap + off) == 0)
				g_found->frees_ok++;
		}
	}
	atomic_store(&g_found->scribbling, 1);
	if (free_rings) {
		/* Honest traffic on the freed rings: do completions land in memory now someone else's? */
		for (uint64_t it = 0;; it++) {
			iovm_rqueue_submit(q, &(struct iovm_desc){ .op = IOVM_OP_NOOP, .tag = 0xbad0000000000000ull | it });
			iovm_rqueue_reap(q, cqe, DEPTH);
			atomic_store(&g_found->iterations, it);
		}
	}
	/* Scribble and submit until killed. */
	for (uint64_t it = 0;; it++) {
		uint64_t r = a5_rand(&seed);
		uint8_t *p = heap + line_off[r % nlines] + ((r >> 32) % 8) * 8;
		uint64_t vals[] = { 0, ~0ull, DEPTH, DEPTH - 1, DEPTH + 1, 1ull << 31, 1ull << 32, a5_rand(&seed),
				    (uint64_t)-DEPTH, 0x7fffffff };

		if (r & (1u << 20))
			memcpy(p, &vals[(r >> 8) % 10], (r & 1) ? 4 : 8);
		else
			((uint8_t *)p)[(r >> 40) % 8] = (uint8_t)(r >> 48);
		iovm_rqueue_submit(q, &(struct iovm_desc){ .op = (uint8_t)(r % 12), .src = r, .dst = r >> 3,
							   .len = (uint32_t)(r >> 20) % 65536, .tag = it });
		iovm_rqueue_reap(q, cqe, DEPTH);
		atomic_store(&g_found->iterations, it);
	}
}

/* The good client (the test process) copies and checks, many times. */
static void good_work(struct a5_cl *g, unsigned times)
{
	uint8_t *a = iovm_dma_alloc(g->ctx, 65536, 4096, 0), *b = iovm_dma_zalloc(g->ctx, 65536, 4096, 0);
	iovm_iova_t ia, ib;

	CHECK(a && b);
	a4_fill(a, 65536, 5);
	ia = a5_map(g, a, 65536, IOVM_MAP_READ);
	ib = a5_map(g, b, 65536, IOVM_MAP_READ | IOVM_MAP_WRITE);
	for (unsigned i = 0; i < times; i++) {
		memset(b, 0, 65536);
		uint8_t st = a5_run(g->q, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = ia.addr, .dst = ib.addr,
							      .len = 65536 });

		EXPECT_MSG(st == IOVM_STATUS_SUCCESS, "good client's copy %u: status %u", i, st);
		EXPECT_MSG(a4_bad(b, 65536, 5) == 65536, "good client's copy %u wrong at byte %zu", i,
			   a4_bad(b, 65536, 5));
		CHECK(a4_bad(a, 65536, 5) == 65536);
	}
	CHECK_OK(iovm_rqueue_unmap(g->q, ia, 65536));
	CHECK_OK(iovm_rqueue_unmap(g->q, ib, 65536));
	CHECK_OK(iovm_dma_free(g->ctx, a));
	CHECK_OK(iovm_dma_free(g->ctx, b));
}

static void scenario(int free_rings)
{
	struct a5_srv srv;
	struct iovm_ctx *owner = a5_setup(free_rings ? "ringfree" : "ring", HEAP, 2, &srv);
	struct a5_cl g = a5_client(16);
	pid_t pid;
	int st;

	g_found = a4_shared(sizeof(*g_found));
	g_seed = a4_seed();
	pid = a4_fork();
	if (!pid) {
		bad_client(free_rings);
		a4_child_exit();
	}
	/* Wait for the scribbling (or for the bad client's end: its own checks failed). */
	for (unsigned ms = 0; !atomic_load(&g_found->scribbling); ms++) {
		CHECK_MSG(ms < 60000, "the bad client never started scribbling");
		if (waitpid(pid, &st, WNOHANG) == pid) {
			a4_untrack(pid);
			CHECK_MSG(0, "the bad client ended (%d) before scribbling", st);
		}
		usleep(1000);
	}
	printf("# bad client: %u lines of ring [%#llx, %#llx), %u ring blocks freed, depth %u took %u\n",
	       g_found->lines, (unsigned long long)g_found->lo, (unsigned long long)g_found->hi, g_found->frees_ok,
	       DEPTH, g_found->eagain_at);
	if (free_rings)
		EXPECT_MSG(g_found->frees_ok == 0,
			   "a client freed %u block(s) holding its own queue's rings while the device process uses them",
			   g_found->frees_ok);
	if (free_rings && g_found->frees_ok) {
		/* Take the freed pages: does the device write the bad client's completions into them? */
		struct iovm_share_info hi = share_info(g.ctx);
		uint8_t *heap = hi.heap_va;
		void *mine[4096];
		unsigned nm = 0, hits = 0;

		for (unsigned i = 0; i < 4096; i++) {
			uint8_t *p = iovm_dma_zalloc(g.ctx, 64, 64, 0);

			if (!p)
				break;
			mine[nm++] = p;
		}
		for (unsigned i = 0; i < 512; i++) {
			uint8_t *p = iovm_dma_zalloc(g.ctx, 4096, 4096, 0);

			if (!p)
				break;
			if (nm < 4096)
				mine[nm++] = p;
		}
		uint64_t it = atomic_load(&g_found->iterations);

		WAIT_UNTIL(atomic_load(&g_found->iterations) > it + 2000);
		for (unsigned i = 0; i < nm; i++) {
			uint64_t off = (uint64_t)((uint8_t *)mine[i] - heap);
			size_t sz = iovm_dma_size(g.ctx, mine[i]);

			for (size_t k = 0; k + 8 <= sz; k += 8) {
				uint64_t v;

				memcpy(&v, (uint8_t *)mine[i] + k, 8);
				/* A tag at 56 of 64 may be the bad client's own submission (its CPU): not counted. */
				if ((v >> 48) != 0xbad0 || (off + k) % 64 == 56)
					continue;
				if (hits++ == 0)
					EXPECT_MSG(0, "the device wrote the bad client's completion entry (tag %#llx) into the good "
						   "client's new allocation at heap offset %#llx: the freed ring's memory",
						   (unsigned long long)v, (unsigned long long)(off + k));
			}
		}
		printf("# %u allocations over the freed rings, %u completion tags found in them\n", nm, hits);
		for (unsigned i = 0; i < nm; i++)
			CHECK_OK(iovm_dma_free(g.ctx, mine[i]));
	}
	good_work(&g, 300);
	{
		uint64_t it = atomic_load(&g_found->iterations);

		/* Not a timing: the scribbler must make progress at all while the good client works. */
		WAIT_UNTIL(atomic_load(&g_found->iterations) > it + 1000 || waitpid(pid, NULL, WNOHANG) == pid);
	}
	good_work(&g, 100);
	/* The device process is alive and answers. */
	CHECK_MSG(kill(srv.pid, 0) == 0, "the device process died");
	struct a5_info in = a5_server_info(&srv);

	printf("# device process: %llu clients, %llu descriptors, %llu refused; scribbler ran %llu iterations\n",
	       (unsigned long long)in.clients, (unsigned long long)in.descriptors, (unsigned long long)in.refused,
	       (unsigned long long)atomic_load(&g_found->iterations));
	CHECK_RET(iovm_share_check(owner), 0);
	/* The bad client dies; its memory comes back; the good one still works; a new one opens. */
	kill(pid, SIGKILL);
	st = a4_wait_deadline(pid, 60);
	EXPECT_MSG(st == -SIGKILL, "the bad client ended with %d (it crashed in its own calls)", st);
	good_work(&g, 20);
	a5_client_close(&g);
	{
		struct a5_cl n = a5_client(16);

		good_work(&n, 5);
		a5_client_close(&n);
	}
	a5_server_end(&srv);
	a4_settled(owner, 1, 0, UINT64_MAX);
	CHECK_OK(iovm_close(owner));
}

TEST(scribbled_rings)
{
	scenario(0);
}

TEST(freed_rings)
{
	scenario(1);
}

int main(void)
{
	a4_init();
	RUN(scribbled_rings);
	RUN(freed_rings);
	return attack_status();
}
