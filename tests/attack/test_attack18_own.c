/* SPDX-License-Identifier: MIT */
/*
 * test_attack18_own.c - a client's own memory mapped on the device process
 * with iovm_rqueue_map() (iovm/mp.h, "A device in another process": every
 * access walks the client's page tables; once munmap(), mremap() or
 * madvise(MADV_DONTNEED) returns, no device access reaches the pages that
 * went), attacked while descriptors are in flight:
 *  - mremap_away: the range is moved elsewhere (MREMAP_FIXED) under FILLs
 *    in flight; from the moment mremap() returns, the moved pages (now at
 *    the new address, which the device never mapped) must not change;
 *  - stable_pages: the other half of the range is unmapped, remapped,
 *    replaced, discarded and moved away and back in a tight loop while
 *    descriptors run on the half nobody touches: all of them succeed,
 *    with the bytes of a model, none hangs;
 * on one queue and two, and with busy-loop processes loading the machine.
 */
#include "attack/attack18.h"

#define NP 64
#define LEN (NP * A18_PAGE)

/* ---- mremap away under FILLs in flight ---- */

struct filler {
	struct a18_cl *c;
	uint64_t iova;
	uint32_t len;
	atomic_int stop;
	atomic_ulong done, faulted;
	pthread_t thr;
};

static void *filler_main(void *arg)
{
	struct filler *f = arg;
	unsigned inflight = 0;
	uint64_t seed = 99, tag = 0;

	while (!atomic_load(&f->stop) || inflight) {
		struct iovm_cqe cqe[8];
		int n;

		while (!atomic_load(&f->stop) && inflight < 8) {
			uint32_t off = (uint32_t)(a18_rng(&seed) % (f->len / A18_PAGE)) * (uint32_t)A18_PAGE;
			int ret = iovm_rqueue_submit(f->c->q, &(struct iovm_desc){
				.op = IOVM_OP_FILL, .dst = f->iova + off, .len = f->len - off,
				.pattern = a18_rng(&seed) | 0x0101010101010101ull, .tag = ++tag });

			CHECK(ret == 0 || ret == -EAGAIN);
			if (ret)
				break;
			inflight++;
		}
		n = iovm_rqueue_reap(f->c->q, cqe, 8);
		CHECK(n >= 0);
		for (int i = 0; i < n; i++) {
			CHECK_MSG(cqe[i].status == IOVM_STATUS_SUCCESS || cqe[i].status == IOVM_STATUS_PAGE_FAULT, "fill: %s",
				  a18_st(cqe[i].status));
			atomic_fetch_add(cqe[i].status == IOVM_STATUS_SUCCESS ? &f->done : &f->faulted, 1);
		}
		inflight -= (unsigned)n;
		if (!n)
			sched_yield();
	}
	return NULL;
}

static void do_mremap_away(const char *tag, unsigned load_n, unsigned rounds)
{
	struct child srv;
	struct iovm_ctx *owner = a18_setup(tag, &srv, 2);
	struct a18_cl c;
	struct filler f;
	struct a18_load load = { 0 };
	uint8_t *x, *y, *snap = malloc(16 * A18_PAGE);
	uint64_t seed = 5, moved_under = 0;
	const size_t len = 16 * A18_PAGE;

	CHECK(snap);
	a18_client(&c, NULL, 64, 0);
	x = a18_anon_rw(len);
	y = a18_anon_rw(len);
	memset(x, 0, len);
	memset(&f, 0, sizeof(f));
	f.c = &c;
	f.iova = 0;
	{
		iovm_iova_t v;

		CHECK_OK(iovm_rqueue_map(c.q, x, len, A18_RW, &v));
		f.iova = v.addr;
	}
	f.len = (uint32_t)len;
	if (load_n)
		a18_load_start(&load, load_n);
	CHECK(pthread_create(&f.thr, NULL, filler_main, &f) == 0);
	WAIT_UNTIL(atomic_load(&f.done) >= 1);
	for (unsigned r = 0; r < rounds; r++) {
		unsigned long before;
		void *got;
		long d;

		for (unsigned spin = (unsigned)(a18_rng(&seed) % 2000); spin; spin--)
			__asm__ volatile("" ::: "memory");
		got = mremap(x, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, y);
		CHECK(got == y);
		/* From here on no device access may reach these pages. */
		memcpy(snap, y, len);
		before = atomic_load(&f.done) + atomic_load(&f.faulted);
		/* Everything in flight at the move completes (8 in flight at most), and some after. */
		WAIT_UNTIL(atomic_load(&f.done) + atomic_load(&f.faulted) >= before + 12);
		d = a18_diff(y, snap, len);
		CHECK_MSG(d < 0, "round %u: byte %ld of the pages moved away changed after mremap() returned: %#x, was %#x", r, d,
			  y[d], snap[d]);
		if (memcmp(snap + len - 16, (uint8_t[16]){ 0 }, 16))
			moved_under++;
		/* Back where the device maps it; a fresh placeholder where it was. */
		got = mremap(y, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, x);
		CHECK(got == x);
		got = mmap(y, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		if (got != y) {
			if (got != MAP_FAILED)
				munmap(got, len);
			y = a18_anon_rw(len);
		}
		/* The device reaches it again: a fill succeeds before the next move. */
		before = atomic_load(&f.done);
		WAIT_UNTIL(atomic_load(&f.done) >= before + 2);
	}
	atomic_store(&f.stop, 1);
	CHECK(pthread_join(f.thr, NULL) == 0);
	if (load_n)
		a18_load_stop(&load);
	printf("# %s: %u moves, fills done %lu, faulted %lu (after a move)\n", tag, rounds, atomic_load(&f.done),
	       atomic_load(&f.faulted));
	/* The race happened: descriptors ran, and some met the range moved away. */
	CHECK(atomic_load(&f.done) >= rounds);
	CHECK(atomic_load(&f.faulted) >= 1);
	CHECK(moved_under >= 1);
	CHECK(a18_srv_info(&srv).descriptors >= atomic_load(&f.done) + atomic_load(&f.faulted));
	a18_client_close(&c);
	a18_stop_server(&srv);
	CHECK_OK(iovm_share_check(owner));
	CHECK_OK(iovm_close(owner));
	munmap(x, len);
	munmap(y, len);
	free(snap);
}

TEST(mremap_away)
{
	do_mremap_away("a18mrm", 0, a18_rounds(300));
}

TEST(mremap_away_loaded)
{
	do_mremap_away("a18mrml", 2, a18_rounds(150));
}

/*
 * The header: memory the client maps later at an address it took away is
 * reached there, until the range is unmapped on the device. Moved away and
 * back (mremap), unmapped and mapped anew (munmap + mmap), replaced (mmap
 * MAP_FIXED), discarded (DONTNEED): a FILL after each reaches the memory
 * that is there now.
 */
TEST(back_at_its_address)
{
	struct child srv;
	struct iovm_ctx *owner = a18_setup("a18back", &srv, 1);
	struct a18_cl c;
	const size_t len = 4 * A18_PAGE;
	uint8_t *x, *y;
	uint64_t ix;
	iovm_iova_t v;
	struct iovm_completion rec;
	void *got;
	const char *what[] = { "first", "moved away", "moved back", "unmapped", "mapped anew", "replaced MAP_FIXED",
			       "discarded" };
	unsigned failed = 0;

	a18_client(&c, NULL, 16, 0);
	x = a18_anon_rw(len);
	y = a18_anon_rw(len);
	CHECK_OK(iovm_rqueue_map(c.q, x, len, A18_RW, &v));
	ix = v.addr;
	for (unsigned step = 0; step < 7; step++) {
		uint8_t b = (uint8_t)(0x31 + step);

		switch (step) {
		case 1:
			CHECK(mremap(x, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, y) == y);
			break;
		case 2:
			CHECK(mremap(y, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, x) == x);
			break;
		case 3:
			CHECK(munmap(x, len) == 0);
			break;
		case 4:
			got = mmap(x, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
			CHECK(got == x);
			break;
		case 5:
			got = mmap(x, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
			CHECK(got == x);
			break;
		case 6:
			CHECK(madvise(x, len, MADV_DONTNEED) == 0);
			break;
		}
		rec = a18_go(&c, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = ix, .len = (uint32_t)len,
						     .pattern = 0x0101010101010101ull * b });
		printf("# %s: fill %s, %u bytes\n", what[step], a18_st(rec.status), rec.bytes_completed);
		if (step == 1 || step == 3) {
			CHECK_EQ(rec.status, IOVM_STATUS_PAGE_FAULT);
			continue;
		}
		if (rec.status != IOVM_STATUS_SUCCESS || x[len - 1] != b)
			failed |= 1u << step;
	}
	CHECK_EQ(failed & 1u, 0);
	if (failed)
		printf("# not reached again after: %s%s%s%s\n", failed & 4 ? "moved back; " : "",
		       failed & 16 ? "mapped anew; " : "", failed & 32 ? "replaced; " : "", failed & 64 ? "discarded" : "");
	if (failed) {
		a18_client_close(&c);
		a18_stop_server(&srv);
		CHECK_OK(iovm_close(owner));
		A18_KNOWN("own memory mapped again at an address the device lost is never reached there (every FILL faults), "
			  "whereas mp.h says it is reached until unmapped on the device");
		CHECK_EQ(failed, 0);
		return;
	}
	a18_client_close(&c);
	a18_stop_server(&srv);
	CHECK_OK(iovm_close(owner));
}

/* ---- descriptors on pages nobody touches while the rest of the range churns ---- */

struct orig {
	struct a18_cl c;
	uint8_t *x, *model;
	uint64_t ix;
	atomic_int stop;
	atomic_ulong churned, lost;
	bool lost_pg[NP];
};

struct osub {
	struct orig *r;
	unsigned k, nq;
	struct iovm_rqueue *q;
	struct iovm_completion *rec;
	uint8_t *heap;
	uint64_t ih, ir, ix, tag, seed;
	unsigned long steps;
	char fail[400];
	pthread_t thr;
};

static void *ochurn_main(void *arg)
{
	struct orig *r = arg;
	uint64_t seed = 31337;
	uint8_t *away = a18_anon_rw(4 * A18_PAGE);

	while (!atomic_load(&r->stop)) {
		unsigned p = NP / 2 + (unsigned)(a18_rng(&seed) % (NP / 2)), n = 1 + (unsigned)(a18_rng(&seed) % 4);
		uint8_t *at;
		void *got;
		bool lost = false;

		if (p + n > NP)
			n = NP - p;
		for (unsigned j = 0; j < n; j++)
			lost |= r->lost_pg[p + j];
		if (lost)
			continue;
		at = r->x + p * A18_PAGE;
		at[0] = (uint8_t)seed;
		switch (a18_rng(&seed) % 4) {
		case 0:
			CHECK(madvise(at, n * A18_PAGE, MADV_DONTNEED) == 0);
			break;
		case 1:
			got = mmap(at, n * A18_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
			CHECK(got == at);
			break;
		case 2:
			CHECK(munmap(at, n * A18_PAGE) == 0);
			got = mmap(at, n * A18_PAGE, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
			if (got != at) {
				if (got != MAP_FAILED)
					munmap(got, n * A18_PAGE);
				for (unsigned j = 0; j < n; j++)
					r->lost_pg[p + j] = true;
				atomic_fetch_add(&r->lost, 1);
			}
			break;
		default:
			got = mremap(at, n * A18_PAGE, n * A18_PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, away);
			CHECK(got == away);
			got = mremap(away, n * A18_PAGE, n * A18_PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, at);
			CHECK(got == at);
			got = mmap(away, 4 * A18_PAGE, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
			if (got != away) {
				if (got != MAP_FAILED)
					munmap(got, 4 * A18_PAGE);
				away = a18_anon_rw(4 * A18_PAGE);
			}
			break;
		}
		atomic_fetch_add(&r->churned, 1);
	}
	munmap(away, 4 * A18_PAGE);
	return NULL;
}

#define OFAIL(s, ...)                                                \
	do {                                                         \
		snprintf((s)->fail, sizeof((s)->fail), __VA_ARGS__); \
		return NULL;                                         \
	} while (0)

static void *osub_main(void *arg)
{
	struct osub *s = arg;
	struct orig *r = s->r;
	const size_t half = LEN / 2;
	unsigned long min_steps = a18_rounds(1500);

	while (s->steps < min_steps || atomic_load(&r->churned) < 300) {
		/* This queue's pages: every nq-th run of 4 pages of the stable half. */
		size_t unit = 4 * A18_PAGE, nunits = half / unit / s->nq;
		size_t base = ((a18_rng(&s->seed) % nunits) * s->nq + s->k) * unit;
		size_t off = base + ((a18_rng(&s->seed) % unit) & ~(size_t)7);
		size_t len = 1 + a18_rng(&s->seed) % (base + unit - off);
		struct iovm_completion rec;
		uint64_t pat = a18_rng(&s->seed);
		unsigned op = (unsigned)(a18_rng(&s->seed) % 3);
		long d;

		if (s->steps > 20 * min_steps)
			break;
		if (op == 0)
			rec = a18_run_q(s->q, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = s->ix + off, .len = (uint32_t)len,
								  .pattern = pat }, s->rec, s->ir, ++s->tag);
		else if (op == 1) {
			a18_fill_rand(s->heap, len, &s->seed);
			rec = a18_run_q(s->q, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = s->ih, .dst = s->ix + off,
								  .len = (uint32_t)len }, s->rec, s->ir, ++s->tag);
		} else {
			memset(s->heap, 0xee, len);
			rec = a18_run_q(s->q, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = s->ix + off, .dst = s->ih,
								  .len = (uint32_t)len }, s->rec, s->ir, ++s->tag);
		}
		if (rec.status != IOVM_STATUS_SUCCESS)
			OFAIL(s, "queue %u step %lu: op %u on [%#zx, +%#zx) of the untouched half: %s, reason %u at offset %#llx, %u bytes done",
			      s->k, s->steps, op, off, len, a18_st(rec.status), rec.fault_reason,
			      (unsigned long long)(rec.fault_addr - s->ix), rec.bytes_completed);
		if (op == 0)
			for (size_t i = 0; i < len; i++)
				r->model[off + i] = ((uint8_t *)&pat)[i % 8];
		else if (op == 1)
			memcpy(r->model + off, s->heap, len);
		if (op == 2) {
			d = a18_diff(s->heap, r->model + off, len);
			if (d >= 0)
				OFAIL(s, "queue %u step %lu: copy out of offset %#zx: byte %ld wrong", s->k, s->steps, off, d);
		} else {
			d = a18_diff(r->x + base, r->model + base, unit);
			if (d >= 0)
				OFAIL(s, "queue %u step %lu: op %u: byte %#zx is %#x, the model says %#x", s->k, s->steps, op,
				      base + (size_t)d, r->x[base + (size_t)d], r->model[base + (size_t)d]);
		}
		s->steps++;
	}
	return NULL;
}

static void do_stable(const char *tag, unsigned nq, unsigned load_n)
{
	struct child srv;
	struct iovm_ctx *owner = a18_setup(tag, &srv, 2);
	struct orig *r = calloc(1, sizeof(*r));
	struct osub subs[2];
	struct a18_load load = { 0 };
	pthread_t churn;
	uint64_t seed = 8, total = 0;
	iovm_iova_t v;

	CHECK(r);
	a18_client(&r->c, NULL, 64, 0);
	r->x = a18_anon_rw(LEN);
	r->model = malloc(LEN);
	CHECK(r->model);
	a18_fill_rand(r->x, LEN, &seed);
	memcpy(r->model, r->x, LEN);
	for (unsigned k = 0; k < nq; k++) {
		struct osub *s = &subs[k];

		memset(s, 0, sizeof(*s));
		s->r = r;
		s->k = k;
		s->nq = nq;
		s->seed = 0xfeed + k;
		if (!k) {
			s->q = r->c.q;
			s->rec = r->c.rec;
			s->heap = r->c.heap;
			s->ih = r->c.ih;
			s->ir = r->c.ir;
		} else {
			CHECK_OK(iovm_rqueue_open(r->c.ctx, a18_dev, 64, &s->q));
			s->heap = iovm_dma_zalloc(r->c.ctx, 64 * 1024, 4096, 0);
			s->rec = iovm_dma_zalloc(r->c.ctx, 4096, 4096, 0);
			CHECK(s->heap && s->rec);
			CHECK_OK(iovm_rqueue_map(s->q, s->heap, 64 * 1024, A18_RW, &v));
			s->ih = v.addr;
			CHECK_OK(iovm_rqueue_map(s->q, s->rec, 4096, A18_RW, &v));
			s->ir = v.addr;
		}
		CHECK_OK(iovm_rqueue_map(s->q, r->x, LEN, A18_RW, &v));
		s->ix = v.addr;
	}
	if (load_n)
		a18_load_start(&load, load_n);
	CHECK(pthread_create(&churn, NULL, ochurn_main, r) == 0);
	for (unsigned k = 0; k < nq; k++)
		CHECK(pthread_create(&subs[k].thr, NULL, osub_main, &subs[k]) == 0);
	for (unsigned k = 0; k < nq; k++)
		CHECK(pthread_join(subs[k].thr, NULL) == 0);
	atomic_store(&r->stop, 1);
	CHECK(pthread_join(churn, NULL) == 0);
	if (load_n)
		a18_load_stop(&load);
	printf("# %s: steps %lu/%lu, churned %lu (holes taken by others %lu)\n", tag, subs[0].steps,
	       nq > 1 ? subs[1].steps : 0, atomic_load(&r->churned), atomic_load(&r->lost));
	for (unsigned k = 0; k < nq; k++) {
		CHECK_MSG(!subs[k].fail[0], "%s", subs[k].fail);
		total += subs[k].tag;
	}
	CHECK(atomic_load(&r->churned) >= 300);
	CHECK(a18_srv_info(&srv).descriptors >= total);
	CHECK(a18_diff(r->x, r->model, LEN / 2) < 0);
	if (nq > 1)
		CHECK_OK(iovm_rqueue_close(subs[1].q));
	a18_client_close(&r->c);
	a18_stop_server(&srv);
	CHECK_OK(iovm_share_check(owner));
	CHECK_OK(iovm_close(owner));
	munmap(r->x, LEN);
	free(r->model);
	free(r);
}

TEST(stable_pages)
{
	do_stable("a18st1", 1, 0);
}

TEST(stable_pages_two_queues)
{
	do_stable("a18st2", 2, 0);
}

TEST(stable_pages_loaded)
{
	do_stable("a18stl", 2, 2);
}

int main(void)
{
	test_init();
	A18_RUN(back_at_its_address);
	A18_RUN(mremap_away);
	A18_RUN(stable_pages);
	A18_RUN(stable_pages_two_queues);
	A18_RUN(mremap_away_loaded);
	A18_RUN(stable_pages_loaded);
	return 0;
}
