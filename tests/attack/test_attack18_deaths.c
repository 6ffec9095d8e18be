/* SPDX-License-Identifier: MIT */
/*
 * test_attack18_deaths.c - kill -9 in the middle of churn (iovm/mp.h, "A
 * device in another process"):
 *  - device_killed_under_churn: the device process dies while a client has
 *    descriptors in flight over an on-demand MR and its own memory, a
 *    thread discards pages of both, and another maps and unmaps ranges:
 *    every call then fails with -EPIPE or, where the header says so,
 *    returns 0; none hangs; munmap() of the MR's memory returns; the
 *    client closes cleanly;
 *  - device_stopped_then_killed_under_munmap: the device process is
 *    stopped (SIGSTOP) while the client munmap()s pages of an MR whose
 *    pieces the device has mapped (the munmap waits for the device's
 *    answer), then killed: the munmap returns, the rest fails with -EPIPE;
 *  - clients_killed_mid_churn: clients are killed one after another while
 *    their descriptors and page requests run and their memory churns; a
 *    surviving client's descriptors on memory nobody took away all
 *    succeed with the model's bytes, and the device process counts the
 *    dead torn down and ends with no client.
 */
#include <poll.h>

#include "attack/attack18.h"

#define NPG 128 /* 8 pieces */
#define MLEN (NPG * A18_PAGE)

/* ---- the device process killed under churn ---- */

struct drig {
	struct a18_cl c;
	uint8_t *m, *x;
	struct iovm_mr *mr;
	uint64_t im, ix;
	atomic_int stop, dead;
	atomic_ulong done, faulted, other, churned, maps, submit_epipe, reap_epipe, map_epipe;
};

static void *d_submit(void *arg)
{
	struct drig *r = arg;
	uint64_t seed = 3, tag = 0;
	unsigned inflight = 0;
	double t0 = 0;

	for (;;) {
		struct iovm_cqe cqe[16];
		int n;

		if (!atomic_load(&r->stop)) {
			while (inflight < 16) {
				bool mr = a18_rng(&seed) & 1;
				uint64_t base = mr ? r->im : r->ix;
				uint64_t off = (a18_rng(&seed) % (mr ? NPG : 16)) * A18_PAGE;
				int ret = iovm_rqueue_submit(r->c.q, &(struct iovm_desc){
					.op = IOVM_OP_FILL, .dst = base + off, .len = A18_PAGE, .pattern = seed, .tag = ++tag });

				if (ret == -EPIPE) {
					atomic_fetch_add(&r->submit_epipe, 1);
					break;
				}
				CHECK_MSG(ret == 0 || ret == -EAGAIN, "submit: %d", ret);
				if (ret)
					break;
				inflight++;
			}
		}
		n = iovm_rqueue_reap(r->c.q, cqe, 16);
		if (n == -EPIPE) {
			atomic_fetch_add(&r->reap_epipe, 1);
			break;
		}
		CHECK_MSG(n >= 0, "reap: %d", n);
		for (int i = 0; i < n; i++)
			atomic_fetch_add(cqe[i].status == IOVM_STATUS_SUCCESS      ? &r->done
					 : cqe[i].status == IOVM_STATUS_PAGE_FAULT ? &r->faulted
										   : &r->other,
					 1);
		inflight -= (unsigned)n;
		if (atomic_load(&r->stop) && !inflight)
			break;
		if (!n) {
			if (atomic_load(&r->dead)) {
				if (t0 == 0)
					t0 = a18_now();
				CHECK_MSG(a18_now() - t0 < 60, "a minute after the device died, reap neither completes nor says -EPIPE");
			}
			usleep(20);
		}
	}
	return NULL;
}

static void *d_churn(void *arg)
{
	struct drig *r = arg;
	uint64_t seed = 11;

	while (!atomic_load(&r->stop)) {
		unsigned p = (unsigned)(a18_rng(&seed) % NPG);

		r->m[p * A18_PAGE] = 1;
		CHECK(madvise(r->m + p * A18_PAGE, A18_PAGE, MADV_DONTNEED) == 0);
		p = (unsigned)(a18_rng(&seed) % 16);
		CHECK(madvise(r->x + p * A18_PAGE, A18_PAGE, MADV_DONTNEED) == 0);
		atomic_fetch_add(&r->churned, 1);
	}
	return NULL;
}

static void *d_mapper(void *arg)
{
	struct drig *r = arg;
	uint8_t *y = a18_anon_rw(8 * A18_PAGE);

	while (!atomic_load(&r->stop)) {
		iovm_iova_t v;
		int ret = iovm_rqueue_map(r->c.q, y, 8 * A18_PAGE, A18_RW, &v);

		if (ret == -EPIPE) {
			atomic_fetch_add(&r->map_epipe, 1);
			break;
		}
		CHECK_MSG(ret == 0, "map: %d", ret);
		ret = iovm_rqueue_unmap(r->c.q, v, 8 * A18_PAGE);
		if (ret == -EPIPE) {
			atomic_fetch_add(&r->map_epipe, 1);
			break;
		}
		CHECK_MSG(ret == 0, "unmap: %d", ret);
		atomic_fetch_add(&r->maps, 1);
	}
	munmap(y, 8 * A18_PAGE);
	return NULL;
}

TEST(device_killed_under_churn)
{
	struct child srv;
	struct iovm_ctx *owner = a18_setup("a18dk", &srv, 2);
	struct drig *r = calloc(1, sizeof(*r));
	pthread_t ts, tc, tm;
	iovm_iova_t v;
	struct iovm_mr *mr2;
	uint8_t *z;

	CHECK(r);
	a18_client(&r->c, "oracle=on,pin_budget=16M", 64, 0);
	r->m = a18_pages_64k(NPG);
	r->x = a18_anon_rw(16 * A18_PAGE);
	z = a18_pages_64k(16);
	memset(r->m, 7, MLEN);
	CHECK_OK(iovm_mr_reg(r->c.dom, r->m, MLEN, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND, &r->mr));
	CHECK_OK(iovm_mr_reg(r->c.dom, z, 16 * A18_PAGE, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND, &mr2));
	CHECK_OK(iovm_rqueue_map_mr(r->c.q, r->mr, A18_RW, &v));
	r->im = v.addr;
	CHECK_OK(iovm_rqueue_map(r->c.q, r->x, 16 * A18_PAGE, A18_RW, &v));
	r->ix = v.addr;
	CHECK(pthread_create(&ts, NULL, d_submit, r) == 0);
	CHECK(pthread_create(&tc, NULL, d_churn, r) == 0);
	CHECK(pthread_create(&tm, NULL, d_mapper, r) == 0);
	WAIT_UNTIL(atomic_load(&r->done) >= 300 && atomic_load(&r->churned) >= 100 && atomic_load(&r->maps) >= 20);
	kill(srv.pid, SIGKILL);
	CHECK_EQ(child_wait(&srv), -SIGKILL);
	atomic_store(&r->dead, 1);
	/* The mapper meets -EPIPE; the submitter drains and meets -EPIPE. */
	CHECK(pthread_join(tm, NULL) == 0);
	CHECK(pthread_join(ts, NULL) == 0);
	atomic_store(&r->stop, 1);
	CHECK(pthread_join(tc, NULL) == 0);
	printf("# done %lu, faulted %lu, other %lu; submit -EPIPE %lu, reap -EPIPE %lu, map -EPIPE %lu; churned %lu, maps %lu\n",
	       atomic_load(&r->done), atomic_load(&r->faulted), atomic_load(&r->other), atomic_load(&r->submit_epipe),
	       atomic_load(&r->reap_epipe), atomic_load(&r->map_epipe), atomic_load(&r->churned), atomic_load(&r->maps));
	CHECK_EQ(atomic_load(&r->map_epipe), 1);
	CHECK_EQ(atomic_load(&r->reap_epipe), 1);
	/* Every call now: -EPIPE, or 0 where the header says so. */
	{
		struct iovm_cqe cqe;
		int again = iovm_rqueue_reap(r->c.q, &cqe, 1), sub, after;

		sub = iovm_rqueue_submit(r->c.q, &(struct iovm_desc){ .op = IOVM_OP_NOOP });
		after = iovm_rqueue_reap(r->c.q, &cqe, 1);
		printf("# after the first -EPIPE: reap %d, submit %d, reap %d\n", again, sub, after);
		CHECK_EQ(sub, -EPIPE);
		/* Fixed 2026-12-06: reap said 0 again after its first -EPIPE. */
		CHECK_EQ(again, -EPIPE);
		CHECK_EQ(after, -EPIPE);
	}
	CHECK_EQ(iovm_rqueue_map(r->c.q, r->x, A18_PAGE, A18_RW, &v), -EPIPE);
	CHECK_EQ(iovm_rqueue_map_mr(r->c.q, mr2, A18_RW, &v), -EPIPE);
	CHECK_EQ(iovm_rqueue_unmap(r->c.q, IOVM_IOVA(r->ix), 16 * A18_PAGE), -EPIPE);
	/* munmap() of memory the dead device had mapped returns. */
	CHECK(munmap(r->m + 8 * A18_PAGE, 8 * A18_PAGE) == 0);
	CHECK(madvise(r->m, 8 * A18_PAGE, MADV_DONTNEED) == 0);
	CHECK_EQ(iovm_rqueue_unmap_mr(r->c.q, r->mr), 0);
	CHECK_OK(iovm_mr_dereg(r->mr));
	CHECK_OK(iovm_mr_dereg(mr2));
	CHECK_OK(iovm_rqueue_close(r->c.q));
	CHECK_OK(iovm_domain_destroy(r->c.dom));
	CHECK_OK(iovm_close(r->c.ctx));
	CHECK_OK(iovm_share_check(owner));
	CHECK_OK(iovm_close(owner));
	munmap(r->m, MLEN);
	munmap(r->x, 16 * A18_PAGE);
	munmap(z, 16 * A18_PAGE);
	free(r);
}

/* ---- the device process stopped, then killed, while the client munmap()s ---- */

struct unm {
	uint8_t *at;
	size_t len;
	atomic_int returned;
};

static void *unm_main(void *arg)
{
	struct unm *u = arg;

	CHECK(munmap(u->at, u->len) == 0);
	atomic_store(&u->returned, 1);
	return NULL;
}

TEST(device_stopped_then_killed_under_munmap)
{
	struct child srv;
	struct iovm_ctx *owner = a18_setup("a18stop", &srv, 1);
	struct a18_cl c;
	struct iovm_mr *mr;
	struct iovm_completion rec;
	struct unm u;
	pthread_t t;
	iovm_iova_t v;
	uint8_t *m;
	bool before_kill;

	a18_client(&c, "oracle=on,pin_budget=16M", 16, 0);
	m = a18_pages_64k(NPG);
	CHECK_OK(iovm_mr_reg(c.dom, m, MLEN, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND, &mr));
	CHECK_OK(iovm_rqueue_map_mr(c.q, mr, A18_RW, &v));
	/* The device maps every piece. */
	rec = a18_go(&c, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = v.addr, .len = MLEN, .pattern = 0x4242424242424242ull });
	CHECK_EQ(rec.status, IOVM_STATUS_SUCCESS);
	CHECK_EQ(m[MLEN - 1], 0x42);
	CHECK(a18_reg(c.ctx).odp_faults >= NPG / 16);
	kill(srv.pid, SIGSTOP);
	u.at = m + 20 * A18_PAGE;
	u.len = 4 * A18_PAGE;
	atomic_store(&u.returned, 0);
	CHECK(pthread_create(&t, NULL, unm_main, &u) == 0);
	usleep(300 * 1000); /* a chance to block on the stopped device: not asserted */
	before_kill = atomic_load(&u.returned);
	kill(srv.pid, SIGKILL);
	CHECK_EQ(child_wait(&srv), -SIGKILL);
	WAIT_UNTIL(atomic_load(&u.returned));
	CHECK(pthread_join(t, NULL) == 0);
	printf("# munmap returned %s the device process was killed\n", before_kill ? "before" : "after");
	{
		/*
		 * Submit right after the device process was reaped: mp.h says -EPIPE; it
		 * may say 0 (the ring is shared memory). Then reap must come to -EPIPE.
		 */
		int sub = iovm_rqueue_submit(c.q, &(struct iovm_desc){ .op = IOVM_OP_NOOP });
		struct iovm_cqe cqe;
		int n;

		CHECK(sub == 0 || sub == -EPIPE);
		if (sub == 0) {
			printf("# skip part of %s: known bug (IOVM_ATTACK18_KNOWN=1 checks it): submit says 0 after the device "
			       "process was killed and reaped\n", test_current);
			if (getenv("IOVM_ATTACK18_KNOWN") && !strcmp(getenv("IOVM_ATTACK18_KNOWN"), "1"))
				CHECK_EQ(sub, -EPIPE);
		}
		for (unsigned spins = 0; (n = iovm_rqueue_reap(c.q, &cqe, 1)) != -EPIPE; spins++) {
			CHECK_MSG(n >= 0, "reap: %d", n);
			CHECK_MSG(spins < 600000, "reap never says -EPIPE after the device process died");
			usleep(100);
		}
		CHECK_EQ(iovm_rqueue_submit(c.q, &(struct iovm_desc){ .op = IOVM_OP_NOOP }), -EPIPE);
	}
	CHECK_EQ(iovm_rqueue_map(c.q, m, A18_PAGE, A18_RW, &v), -EPIPE);
	CHECK(madvise(m, 16 * A18_PAGE, MADV_DONTNEED) == 0);
	CHECK_EQ(iovm_rqueue_unmap_mr(c.q, mr), 0);
	CHECK_OK(iovm_mr_dereg(mr));
	a18_client_close(&c);
	CHECK_OK(iovm_share_check(owner));
	CHECK_OK(iovm_close(owner));
	munmap(m, MLEN);
}

/*
 * The device process stopped (SIGSTOP) in the middle of FILLs over an
 * on-demand MR; the client munmap()s a piece under them and maps new
 * memory there (a sentinel in it); the device process continues. No page
 * request is answered for a while (nobody reaps): whatever lands in the
 * new memory then went through a translation made before the munmap()
 * returned. The header: from the moment munmap() returns, no device access
 * through the MR lands anywhere, neither in the old pages nor in memory
 * mapped anew at their addresses.
 */
struct stopper {
	uint8_t *at;
	size_t len;
	atomic_int returned;
};

static void *stopper_munmap(void *arg)
{
	struct stopper *u = arg;

	CHECK(munmap(u->at, u->len) == 0);
	atomic_store(&u->returned, 1);
	return NULL;
}

static void do_stopped_mid_fill(const char *tag_s, bool pinned)
{
	struct child srv;
	struct iovm_ctx *owner = a18_setup(tag_s, &srv, 1);
	struct a18_cl c;
	struct iovm_mr *mr;
	struct iovm_completion rec;
	iovm_iova_t v;
	uint8_t *m;
	uint64_t seed = 21, tag = 100;
	unsigned rounds = a18_rounds(20), while_stopped = 0, stale = 0, raced = 0;
	const size_t piece = A18_K64;

	a18_client(&c, "oracle=on,pin_budget=16M", 64, 0);
	m = a18_pages_64k(NPG);
	CHECK_OK(iovm_mr_reg(c.dom, m, MLEN, IOVM_ACCESS_LOCAL_WRITE | (pinned ? 0 : IOVM_ACCESS_ON_DEMAND), &mr));
	CHECK_OK(iovm_rqueue_map_mr(c.q, mr, A18_RW, &v));
	for (unsigned r = 0; r < rounds; r++) {
		if (pinned && r) {
			/* A pinned MR never takes new pages: register anew over the memory there now. */
			CHECK_OK(iovm_rqueue_unmap_mr(c.q, mr));
			CHECK_OK(iovm_mr_dereg(mr));
			CHECK_OK(iovm_mr_reg(c.dom, m, MLEN, IOVM_ACCESS_LOCAL_WRITE, &mr));
			CHECK_OK(iovm_rqueue_map_mr(c.q, mr, A18_RW, &v));
		}
		struct stopper u = { .at = m + 2 * piece, .len = piece };
		unsigned inflight = 0;
		pthread_t t;
		void *got;
		bool bad = false;

		/* Every piece mapped on the device. */
		rec = a18_go(&c, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = v.addr, .len = MLEN, .pattern = 0x1111111111111111ull });
		CHECK_EQ(rec.status, IOVM_STATUS_SUCCESS);
		for (unsigned i = 0; i < 8; i++, inflight++)
			CHECK_OK(iovm_rqueue_submit(c.q, &(struct iovm_desc){ .op = IOVM_OP_FILL, .dst = v.addr + piece,
									    .len = (uint32_t)(3 * piece),
									    .pattern = 0xababababababababull, .tag = ++tag }));
		for (unsigned spin = (unsigned)(a18_rng(&seed) % 3000); spin; spin--) {
			struct iovm_cqe cqe;
			int n = iovm_rqueue_reap(c.q, &cqe, 1);

			CHECK(n >= 0);
			inflight -= (unsigned)n;
		}
		kill(srv.pid, SIGSTOP);
		raced += inflight > 0;
		atomic_store(&u.returned, 0);
		CHECK(pthread_create(&t, NULL, stopper_munmap, &u) == 0);
		for (unsigned ms = 0; ms < 200 && !atomic_load(&u.returned); ms++)
			usleep(1000);
		if (atomic_load(&u.returned))
			while_stopped++;
		got = NULL;
		if (atomic_load(&u.returned)) {
			got = mmap(u.at, piece, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
			CHECK(got == u.at);
			memset(u.at, 0x5e, piece);
		}
		kill(srv.pid, SIGCONT);
		CHECK(pthread_join(t, NULL) == 0);
		if (!got) {
			got = mmap(u.at, piece, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
			CHECK(got == u.at);
			memset(u.at, 0x5e, piece);
		}
		/* Nobody answers page requests for a while: the device runs on what it had. */
		usleep(100 * 1000);
		for (size_t i = 0; i < piece; i++)
			bad |= u.at[i] != 0x5e;
		stale += bad;
		/* Drain: the page requests are answered now, and the new memory may be written (on demand only). */
		while (inflight) {
			struct iovm_cqe cqe;
			int n = iovm_rqueue_reap(c.q, &cqe, 1);

			CHECK(n >= 0);
			if (n)
				CHECK(cqe.status == IOVM_STATUS_SUCCESS || cqe.status == IOVM_STATUS_PAGE_FAULT);
			inflight -= (unsigned)n;
			if (!n)
				usleep(20);
		}
		if (pinned) {
			bad = false;
			for (size_t i = 0; i < piece; i++)
				bad |= u.at[i] != 0x5e;
			CHECK_MSG(!bad, "round %u: a pinned MR's descriptors wrote the memory mapped anew", r);
			rec = a18_go(&c, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = v.addr + 2 * piece, .len = 8,
							     .pattern = 1 });
			CHECK_EQ(rec.status, IOVM_STATUS_PAGE_FAULT);
			CHECK_EQ(u.at[0], 0x5e);
		}
	}
	printf("# %u rounds: munmap returned while the device process was stopped in %u; new memory written before any "
	       "page request was answered in %u\n", rounds, while_stopped, stale);
	if (!pinned)
		CHECK(a18_reg(c.ctx).odp_faults >= rounds);
	printf("# descriptors in flight when the device process stopped: %u rounds of %u\n", raced, rounds);
	CHECK(raced >= 1);
	if (stale) {
		CHECK_OK(iovm_rqueue_unmap_mr(c.q, mr));
		CHECK_OK(iovm_mr_dereg(mr));
		a18_client_close(&c);
		a18_stop_server(&srv);
		CHECK_OK(iovm_close(owner));
		A18_KNOWN("a device process stopped mid-descriptor writes, once continued, memory mapped anew where the "
			  "client's munmap() of the MR had returned");
		CHECK_EQ(stale, 0);
		return;
	}
	CHECK_OK(iovm_rqueue_unmap_mr(c.q, mr));
	CHECK_OK(iovm_mr_dereg(mr));
	a18_client_close(&c);
	a18_stop_server(&srv);
	CHECK_OK(iovm_share_check(owner));
	CHECK_OK(iovm_close(owner));
	munmap(m, MLEN);
}

TEST(device_stopped_mid_fill_munmap_then_continues)
{
	do_stopped_mid_fill("a18stc", false);
}

TEST(device_stopped_mid_fill_munmap_then_continues_pinned)
{
	do_stopped_mid_fill("a18stp", true);
}

/* ---- clients killed mid-churn beside a survivor ---- */

struct kcl {
	uint8_t *m, *model;
	atomic_int stop;
	atomic_ulong churned;
};

static void *k_churn(void *arg)
{
	struct kcl *k = arg;
	uint64_t seed = 17;

	while (!atomic_load(&k->stop)) {
		/* Pieces 4 to 7: never named by the checked descriptors. */
		unsigned p = 64 + (unsigned)(a18_rng(&seed) % 64);

		k->m[p * A18_PAGE] = 9;
		CHECK(madvise(k->m + p * A18_PAGE, A18_PAGE, MADV_DONTNEED) == 0);
		atomic_fetch_add(&k->churned, 1);
	}
	return NULL;
}

static void churn_client(int rd, int wr, void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	struct a18_cl c;
	struct kcl k = { 0 };
	struct iovm_mr *mr;
	iovm_iova_t v;
	pthread_t t;
	uint64_t seed = 0x77 + id, im;
	unsigned long steps = 0, touch_ok = 0;
	bool said = false;

	a18_client(&c, "oracle=on,pin_budget=16M", 64, 0);
	k.m = a18_pages_64k(NPG);
	k.model = malloc(MLEN);
	CHECK(k.model);
	a18_fill_rand(k.m, MLEN, &seed);
	memcpy(k.model, k.m, MLEN);
	CHECK_OK(iovm_mr_reg(c.dom, k.m, MLEN, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND, &mr));
	CHECK_OK(iovm_rqueue_map_mr(c.q, mr, A18_RW, &v));
	im = v.addr;
	CHECK(pthread_create(&t, NULL, k_churn, &k) == 0);
	for (;;) {
		size_t off = (a18_rng(&seed) % (64 * A18_PAGE - 8)) & ~(size_t)7;
		size_t len = 1 + a18_rng(&seed) % (64 * A18_PAGE - off < 16384 ? 64 * A18_PAGE - off : 16384);
		struct iovm_completion rec;
		uint64_t pat = a18_rng(&seed);
		long d;

		if (steps % 4 == 3) {
			/* The device on the churned pieces too: faults allowed there. */
			rec = a18_go(&c, (struct iovm_desc){ .op = IOVM_OP_FILL, .len = A18_PAGE, .pattern = pat,
							     .dst = im + (64 + a18_rng(&seed) % 64) * A18_PAGE });
			CHECK(rec.status == IOVM_STATUS_SUCCESS || rec.status == IOVM_STATUS_PAGE_FAULT);
			touch_ok += rec.status == IOVM_STATUS_SUCCESS;
		} else if (a18_rng(&seed) & 1) {
			rec = a18_go(&c, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = im + off, .len = (uint32_t)len,
							     .pattern = pat });
			CHECK_MSG(rec.status == IOVM_STATUS_SUCCESS, "client %u step %lu: fill of untouched [%#zx, +%#zx): %s, reason %u",
				  id, steps, off, len, a18_st(rec.status), rec.fault_reason);
			for (size_t i = 0; i < len; i++)
				k.model[off + i] = ((uint8_t *)&pat)[i % 8];
			d = a18_diff(k.m + off, k.model + off, len);
			CHECK_MSG(d < 0, "client %u step %lu: byte %ld after a fill", id, steps, d);
		} else {
			memset(c.heap, 0xee, len);
			rec = a18_go(&c, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = im + off, .dst = c.ih, .len = (uint32_t)len });
			CHECK_MSG(rec.status == IOVM_STATUS_SUCCESS, "client %u step %lu: copy of untouched [%#zx, +%#zx): %s, reason %u",
				  id, steps, off, len, a18_st(rec.status), rec.fault_reason);
			d = a18_diff(c.heap, k.model + off, len);
			CHECK_MSG(d < 0, "client %u step %lu: byte %ld of a copy", id, steps, d);
		}
		steps++;
		if (steps == 200 && !said) {
			put64(wr, 200);
			said = true;
		}
		/* Both sides' counts, not the time they take: descriptors may outrun the churn. */
		if (steps % 16 == 0 && steps >= 1500 && atomic_load(&k.churned) >= 100) {
			struct pollfd pfd = { .fd = rd, .events = POLLIN };

			if (poll(&pfd, 1, 0) == 1)
				break;
		}
	}
	CHECK_EQ(get64(rd), 1);
	atomic_store(&k.stop, 1);
	CHECK(pthread_join(t, NULL) == 0);
	put64(wr, steps);
	put64(wr, atomic_load(&k.churned));
	put64(wr, touch_ok);
	CHECK_OK(iovm_rqueue_unmap_mr(c.q, mr));
	CHECK_OK(iovm_mr_dereg(mr));
	a18_client_close(&c);
}

static void do_clients_killed(const char *tag, unsigned load_n, unsigned kills)
{
	struct child srv;
	struct iovm_ctx *owner = a18_setup(tag, &srv, 2);
	struct child survivor, victim;
	struct a18_load load = { 0 };
	struct iovm_device_server_info info;
	unsigned long steps, churned;

	if (load_n)
		a18_load_start(&load, load_n);
	survivor = child_start(churn_client, (void *)0);
	CHECK_EQ(get64(survivor.rd), 200);
	if (getenv("A18_KILLS"))
		kills = (unsigned)atoi(getenv("A18_KILLS"));
	for (unsigned i = 0; i < kills; i++) {
		victim = child_start(churn_client, (void *)(uintptr_t)(i + 1));
		CHECK_EQ(get64(victim.rd), 200);
		child_kill(&victim);
	}
	put64(survivor.wr, 1);
	steps = get64(survivor.rd);
	churned = get64(survivor.rd);
	printf("# %s: survivor ran %lu descriptors (%lu on churned pieces succeeded), churned %lu; ", tag, steps,
	       (unsigned long)get64(survivor.rd), churned);
	child_ok(&survivor);
	if (load_n)
		a18_load_stop(&load);
	WAIT_UNTIL(a18_srv_info(&srv).clients == 0);
	info = a18_srv_info(&srv);
	printf("server: %llu opened, %llu torn down, %llu descriptors\n", (unsigned long long)info.opened,
	       (unsigned long long)info.torn_down, (unsigned long long)info.descriptors);
	CHECK(steps >= 1500);
	CHECK(churned >= 100);
	CHECK_EQ(info.opened, kills + 1);
	CHECK_EQ(info.torn_down, kills);
	if (!kills)
		printf("# no client killed: the churn alone\n");
	CHECK(info.descriptors >= steps + kills * 200);
	CHECK(kills == 0 || info.torn_down == kills);
	a18_stop_server(&srv);
	CHECK_OK(iovm_share_check(owner));
	CHECK_OK(iovm_close(owner));
}

/*
 * Broken (round 18): the survivor's descriptors on memory nobody took away
 * fault now and then (IOVM_STATUS_PAGE_FAULT, IOVM_FAULT_BUS) after other
 * clients were killed: 3 runs in 8 with MALLOC_PERTURB_=142 (as meson
 * sets it), none in 8 without, none in 8 without the kills.
 */
#define KILL_BUG "a client killed with kill -9 makes another client's descriptors on memory never taken away fault (bus)"

TEST(survivor_alone_churn)
{
	do_clients_killed("a18ck0", 0, 0);
}

TEST(clients_killed_mid_churn)
{
	A18_KNOWN(KILL_BUG);
	do_clients_killed("a18ck", 0, 4);
}

TEST(clients_killed_mid_churn_loaded)
{
	A18_KNOWN(KILL_BUG);
	do_clients_killed("a18ckl", 2, 4);
}

int main(void)
{
	test_init();
	A18_RUN(device_killed_under_churn);
	A18_RUN(device_stopped_then_killed_under_munmap);
	A18_RUN(device_stopped_mid_fill_munmap_then_continues);
	A18_RUN(device_stopped_mid_fill_munmap_then_continues_pinned);
	A18_RUN(survivor_alone_churn);
	A18_RUN(clients_killed_mid_churn);
	A18_RUN(clients_killed_mid_churn_loaded);
	return 0;
}
