/* SPDX-License-Identifier: MIT */
/*
 * test_attack18_churn.c - an MR mapped on a device process
 * (iovm_rqueue_map_mr(), iovm/mp.h) whose descriptors run on pages the
 * application never takes away, while the application keeps discarding
 * OTHER memory: pages of the same MR, in the same 64 KiB pieces as the
 * descriptors' pages or in other pieces (madvise DONTNEED in a loop, or
 * DONTNEED_LOCKED for a pinned MR), and unrelated registered memory from
 * several threads (mmap MAP_FIXED over it, DONTNEED, munmap then a new
 * mapping, malloc'd blocks registered and freed). Promise: every such
 * descriptor completes successfully (it never faults: none of its memory
 * went), no descriptor hangs, and the bytes are those of a plain model.
 * Variants: one and two queues, a 128 KiB pin budget, a pinned MR, two
 * busy-loop processes loading the machine.
 */
#include <malloc.h>

#include "attack/attack18.h"
#include "base/ctx.h"
#include "phys/phys.h"
#include "reg/reg_internal.h"

#define NPC 8                 /* pieces of the MR */
#define NPG (NPC * 16)        /* its pages */
#define MLEN (NPG * A18_PAGE)
#define UNIT (4 * A18_PAGE)   /* descriptors work inside runs of 4 stable pages */
#define NUNR 3                /* threads churning unrelated registered memory */
#define UPG 32                /* pages of each unrelated region */

enum { L_SAME = 1, L_OTHER = 2 }; /* churn pages: in the stable pages' pieces, or in other pieces */

struct ccfg {
	const char *tag;
	const char *opts;
	bool pinned;
	unsigned layout;   /* L_* */
	bool churn_mr;     /* discard the MR's churn pages */
	bool unrelated;    /* churn unrelated registered memory */
	unsigned nq;       /* submitting threads, each with a queue: 1 or 2 */
	unsigned load;     /* busy-loop processes */
	bool gather;       /* descriptors over three units at once */
	unsigned steps;    /* per submitter */
	unsigned umode;    /* with unrelated: 1 the region threads only, 2 the malloc thread only, 3 both */
	bool nocross;      /* descriptors within one piece only */
	unsigned pause;    /* spins between two calls of the unrelated churn threads */
	bool toucher;      /* a third queue keeps the device on the churned memory (faults allowed there) */
};

struct sub;

struct crig {
	const struct ccfg *cfg;
	struct a18_cl c;
	uint8_t *m;          /* the MR's memory */
	struct iovm_mr *mr;
	uint8_t *model;      /* what the stable pages must hold */
	bool stable[NPG];
	unsigned churn[NPG], nchurn;
	unsigned units[2][NPG], nunits[2];
	atomic_int stop;
	atomic_ulong churned, unr_ops, unr_lost, malloc_ops;
	struct {
		uint8_t *p;
		struct iovm_mr *mr;
		bool lost[UPG];
		uint64_t seed;
		pthread_t thr;
		struct crig *r;
	} unr[NUNR];
	pthread_t churn_thr, malloc_thr, touch_thr;
	/* The toucher's queue: the MR and the unrelated regions mapped, FILLs of churned pages. */
	struct iovm_rqueue *tq;
	struct iovm_completion *trec;
	uint64_t tir, tim, tiu[NUNR];
	atomic_ulong touched, touched_ok;
};

struct sub {
	struct crig *r;
	unsigned k;
	struct iovm_rqueue *q;
	struct iovm_completion *rec;
	uint8_t *heap;
	uint64_t ih, ir, im, tag, seed;
	unsigned long steps, faults;
	char fail[512];
	pthread_t thr;
};

#define HSRC 0
#define HDST (64 * 1024)
#define HLIST (128 * 1024)
#define HCMP (192 * 1024)
#define HLEN (256 * 1024)

static void *churn_main(void *arg)
{
	struct crig *r = arg;
	uint64_t seed = 0x5a5a1234ull;

	while (!atomic_load(&r->stop)) {
		unsigned p = r->churn[a18_rng(&seed) % r->nchurn];
		unsigned run = 1;

		while (run < 4 && p + run < NPG && !r->stable[p + run] && (a18_rng(&seed) & 1))
			run++;
		if (a18_rng(&seed) & 1)
			for (unsigned i = 0; i < run; i++)
				r->m[(p + i) * A18_PAGE + (a18_rng(&seed) % A18_PAGE)] = (uint8_t)seed;
		CHECK_MSG(madvise(r->m + p * A18_PAGE, run * A18_PAGE, r->cfg->pinned ? MADV_DONTNEED_LOCKED : MADV_DONTNEED) == 0,
			  "madvise: %s", strerror(errno));
		atomic_fetch_add(&r->churned, 1);
	}
	return NULL;
}

static void *unr_main(void *arg)
{
	struct crig *r = *(struct crig **)arg;
	unsigned i = (unsigned)(((uint8_t *)arg - (uint8_t *)&r->unr[0]) / sizeof(r->unr[0]));
	uint8_t *base = r->unr[i].p;
	uint64_t *seed = &r->unr[i].seed;

	while (!atomic_load(&r->stop) && (r->cfg->umode & 1)) {
		unsigned p = (unsigned)(a18_rng(seed) % UPG), n = 1 + (unsigned)(a18_rng(seed) % 4);
		unsigned op = (unsigned)(a18_rng(seed) % 3);
		bool lost = false;

		if (p + n > UPG)
			n = UPG - p;
		for (unsigned j = 0; j < n; j++)
			lost |= r->unr[i].lost[p + j];
		if (lost)
			continue;
		for (volatile unsigned spin = r->cfg->pause; spin; spin--)
			;
		for (unsigned j = 0; j < n; j++)
			base[(p + j) * A18_PAGE] = (uint8_t)*seed;
		if (op == 0) {
			void *q = mmap(base + p * A18_PAGE, n * A18_PAGE, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);

			CHECK(q == base + p * A18_PAGE);
		} else if (op == 1) {
			CHECK(madvise(base + p * A18_PAGE, n * A18_PAGE, MADV_DONTNEED) == 0);
		} else {
			void *q;

			CHECK(munmap(base + p * A18_PAGE, n * A18_PAGE) == 0);
			q = mmap(base + p * A18_PAGE, n * A18_PAGE, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
			if (q != base + p * A18_PAGE) {
				/* Another thread's mmap() took the hole: leave those pages alone from now on. */
				if (q != MAP_FAILED)
					munmap(q, n * A18_PAGE);
				for (unsigned j = 0; j < n; j++)
					r->unr[i].lost[p + j] = true;
				atomic_fetch_add(&r->unr_lost, 1);
			}
		}
		atomic_fetch_add(&r->unr_ops, 1);
	}
	return NULL;
}

/* malloc()'d blocks big enough for glibc to mmap: registered (pinned or on demand), freed while registered, deregistered. */
static void *malloc_main(void *arg)
{
	struct crig *r = arg;
	uint64_t seed = 77;

	while (!atomic_load(&r->stop) && (r->cfg->umode & 2)) {
		size_t len = (1u << 20) + (a18_rng(&seed) % 16) * A18_PAGE;
		uint8_t *b = malloc(len);
		uint8_t *pg;
		struct iovm_mr *mr;
		bool odp = a18_rng(&seed) & 1;

		CHECK(b);
		pg = (uint8_t *)(((uintptr_t)b + A18_PAGE - 1) & ~(uintptr_t)(A18_PAGE - 1));
		memset(b, 1, len);
		CHECK_OK(iovm_mr_reg(r->c.dom, pg, 64 * A18_PAGE,
				     IOVM_ACCESS_LOCAL_WRITE | (odp ? IOVM_ACCESS_ON_DEMAND : 0), &mr));
		free(b);
		CHECK_OK(iovm_mr_dereg(mr));
		atomic_fetch_add(&r->malloc_ops, 1);
	}
	return NULL;
}

static void *touch_main(void *arg)
{
	struct crig *r = arg;
	uint64_t seed = 0xabcdef12ull, tag = 0;

	while (!atomic_load(&r->stop)) {
		struct iovm_completion rec;
		struct iovm_desc d = { .op = IOVM_OP_FILL, .pattern = a18_rng(&seed) };

		if (r->cfg->churn_mr && (!r->cfg->unrelated || (a18_rng(&seed) & 1))) {
			unsigned p = r->churn[a18_rng(&seed) % r->nchurn];

			d.dst = r->tim + p * A18_PAGE;
			d.len = A18_PAGE;
		} else {
			unsigned i = (unsigned)(a18_rng(&seed) % NUNR);

			d.dst = r->tiu[i] + (a18_rng(&seed) % UPG) * A18_PAGE;
			d.len = A18_PAGE;
		}
		rec = a18_run_q(r->tq, d, r->trec, r->tir, ++tag);
		CHECK_MSG(rec.status == IOVM_STATUS_SUCCESS || rec.status == IOVM_STATUS_PAGE_FAULT, "toucher: %s",
			  a18_st(rec.status));
		atomic_fetch_add(&r->touched, 1);
		if (rec.status == IOVM_STATUS_SUCCESS)
			atomic_fetch_add(&r->touched_ok, 1);
	}
	return NULL;
}

#define FAILF(s, ...)                                                       \
	do {                                                                \
		snprintf((s)->fail, sizeof((s)->fail), __VA_ARGS__);        \
		return false;                                               \
	} while (0)

static struct iovm_completion sub_run(struct sub *s, struct iovm_desc d)
{
	return a18_run_q(s->q, d, s->rec, s->ir, ++s->tag);
}

static bool sub_ok(struct sub *s, const struct iovm_completion *rec, const char *what, size_t off, size_t len)
{
	if (rec->status != IOVM_STATUS_SUCCESS) {
		struct iovm_ctx *ctx = s->r->c.ctx;
		/* The client's side of the gate (the device's says why it faulted): closed now, batches in flight. */
		uint32_t gate = atomic_load(phys_foreign_gate(ctx->phys)), unsettled = atomic_load(&ctx->reg->unsettled);
		uint64_t begun = atomic_load(&ctx->reg->begun);
		struct iovm_reg_stats st = a18_reg(ctx);

		s->faults++;
		FAILF(s, "queue %u step %lu: %s of [%#zx, +%#zx) of stable pages: %s, reason %u at %#llx (MR offset %#llx), "
			 "%u bytes done; odp_faults %llu retries %llu evicted %llu, churned %lu; gate %u, batches %llu "
			 "begun, %u unsettled",
		      s->k, s->steps, what, off, len, a18_st(rec->status), rec->fault_reason,
		      (unsigned long long)rec->fault_addr, (unsigned long long)(rec->fault_addr - s->im),
		      rec->bytes_completed, (unsigned long long)st.odp_faults, (unsigned long long)st.odp_fault_retries,
		      (unsigned long long)st.odp_evicted_bytes, atomic_load(&s->r->churned), gate,
		      (unsigned long long)begun, unsettled);
	}
	return true;
}

static bool check_model(struct sub *s, size_t off, size_t len, const char *what)
{
	long d = a18_diff(s->r->m + off, s->r->model + off, len);

	if (d >= 0)
		FAILF(s, "queue %u step %lu: after %s, byte %#zx of the MR is %#x, the model says %#x", s->k, s->steps, what,
		      off + (size_t)d, s->r->m[off + (size_t)d], s->r->model[off + (size_t)d]);
	return true;
}

static bool sub_step(struct sub *s)
{
	struct crig *r = s->r;
	unsigned nu = r->nunits[s->k];
	size_t base = r->units[s->k][a18_rng(&s->seed) % nu] * A18_PAGE;
	size_t off = base + ((a18_rng(&s->seed) % UNIT) & ~(size_t)7);
	size_t len = 1 + a18_rng(&s->seed) % (base + UNIT - off);
	unsigned op = (unsigned)(a18_rng(&s->seed) % 6);
	struct iovm_completion rec;

	if (op == 5 && !r->cfg->gather)
		op = 3;
	if (op == 3 && r->cfg->nocross)
		op = 0;
	switch (op) {
	case 0: { /* FILL */
		uint64_t pat = a18_rng(&s->seed);

		rec = sub_run(s, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = s->im + off, .len = (uint32_t)len,
						     .pattern = pat });
		if (!sub_ok(s, &rec, "fill", off, len))
			return false;
		for (size_t i = 0; i < len; i++)
			r->model[off + i] = ((uint8_t *)&pat)[i % 8];
		return check_model(s, base, UNIT, "fill");
	}
	case 1: /* COPY heap -> MR */
		a18_fill_rand(s->heap + HSRC, len, &s->seed);
		rec = sub_run(s, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = s->ih + HSRC, .dst = s->im + off,
						     .len = (uint32_t)len });
		if (!sub_ok(s, &rec, "copy in", off, len))
			return false;
		memcpy(r->model + off, s->heap + HSRC, len);
		return check_model(s, base, UNIT, "copy in");
	case 2: { /* COPY MR -> heap */
		long d;

		memset(s->heap + HDST, 0xee, len);
		rec = sub_run(s, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = s->im + off, .dst = s->ih + HDST,
						     .len = (uint32_t)len });
		if (!sub_ok(s, &rec, "copy out", off, len))
			return false;
		d = a18_diff(s->heap + HDST, r->model + off, len);
		if (d >= 0)
			FAILF(s, "queue %u step %lu: copy out of MR offset %#zx: byte %ld is %#x, the model says %#x", s->k,
			      s->steps, off, d, s->heap[HDST + d], r->model[off + (size_t)d]);
		return true;
	}
	case 3: { /* COPY MR unit -> another unit of this queue's */
		size_t b2 = r->units[s->k][a18_rng(&s->seed) % nu] * A18_PAGE;
		size_t l2 = len < UNIT ? len : UNIT;
		size_t o2;

		if (b2 == base)
			return true;
		o2 = b2 + (a18_rng(&s->seed) % (UNIT - l2 + 1));
		rec = sub_run(s, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = s->im + off, .dst = s->im + o2,
						     .len = (uint32_t)l2 });
		if (!sub_ok(s, &rec, "copy within", off, l2))
			return false;
		memcpy(r->model + o2, r->model + off, l2);
		return check_model(s, b2, UNIT, "copy within");
	}
	case 4: { /* COMPARE MR against the model, equal or with one byte flipped */
		bool flip = a18_rng(&s->seed) & 1;
		size_t at = a18_rng(&s->seed) % len;

		memcpy(s->heap + HCMP, r->model + off, len);
		if (flip)
			s->heap[HCMP + at] ^= 0x5a;
		rec = sub_run(s, (struct iovm_desc){ .op = IOVM_OP_COMPARE, .src = s->im + off, .dst = s->ih + HCMP,
						     .len = (uint32_t)len });
		if (!sub_ok(s, &rec, "compare", off, len))
			return false;
		if (rec.result != (flip ? 1 : 0) || (flip && rec.mismatch != at))
			FAILF(s, "queue %u step %lu: compare of MR offset %#zx (+%zu): result %u mismatch %llu, want %u at %zu",
			      s->k, s->steps, off, len, rec.result, (unsigned long long)rec.mismatch, flip, at);
		return true;
	}
	default: { /* GATHER from three units */
		struct iovm_sge *sg = (struct iovm_sge *)(s->heap + HLIST);
		size_t offs[3], lens[3], tot = 0;
		long d;

		for (unsigned i = 0; i < 3; i++) {
			size_t b = r->units[s->k][a18_rng(&s->seed) % nu] * A18_PAGE;

			offs[i] = b + a18_rng(&s->seed) % UNIT;
			lens[i] = 1 + a18_rng(&s->seed) % (b + UNIT - offs[i]);
			sg[i] = (struct iovm_sge){ .iova = s->im + offs[i], .len = (uint32_t)lens[i] };
			tot += lens[i];
		}
		memset(s->heap + HDST, 0xee, tot);
		rec = sub_run(s, (struct iovm_desc){ .op = IOVM_OP_GATHER, .src = s->ih + HLIST, .dst = s->ih + HDST,
						     .sg_count = 3, .len = (uint32_t)tot });
		if (!sub_ok(s, &rec, "gather", offs[0], tot))
			return false;
		tot = 0;
		for (unsigned i = 0; i < 3; i++) {
			d = a18_diff(s->heap + HDST + tot, r->model + offs[i], lens[i]);
			if (d >= 0)
				FAILF(s, "queue %u step %lu: gather entry %u (MR offset %#zx): byte %ld wrong", s->k, s->steps, i,
				      offs[i], d);
			tot += lens[i];
		}
		return true;
	}
	}
}

static void *sub_main(void *arg)
{
	struct sub *s = arg;

	/* At least the steps asked, and on until the churn has had time to happen a few hundred times. */
	while (s->steps < s->r->cfg->steps || (s->r->cfg->churn_mr && atomic_load(&s->r->churned) < 300) ||
	       (s->r->cfg->unrelated && (s->r->cfg->umode & 1) && atomic_load(&s->r->unr_ops) < 300) ||
	       (s->r->cfg->unrelated && (s->r->cfg->umode & 2) && atomic_load(&s->r->malloc_ops) < 20) ||
	       (s->r->cfg->toucher && atomic_load(&s->r->touched) < 50)) {
		if (!sub_step(s))
			return NULL;
		s->steps++;
		if (s->steps > 20ul * s->r->cfg->steps)
			break;
	}
	return NULL;
}

static void run_churn(const struct ccfg *cfg)
{
	struct child srv;
	struct iovm_ctx *owner = a18_setup(cfg->tag, &srv, 2);
	struct crig *r = calloc(1, sizeof(*r));
	struct sub subs[2];
	struct iovm_reg_stats st0, st1;
	struct iovm_device_server_info info;
	struct a18_load load = { 0 };
	iovm_iova_t v;
	uint64_t seed = 0xc0ffee;
	unsigned long total = 0;

	CHECK(r);
	r->cfg = cfg;
	a18_client(&r->c, cfg->opts, 64, HLEN);
	r->m = a18_pages_64k(NPG);
	r->model = malloc(MLEN);
	CHECK(r->model);
	a18_fill_rand(r->m, MLEN, &seed);
	memcpy(r->model, r->m, MLEN);
	for (unsigned p = 0; p < NPG; p++) {
		unsigned piece = p / 16, in = p % 16;

		r->stable[p] = cfg->layout == L_SAME ? in < 8 : piece < NPC / 2;
		if (!r->stable[p])
			r->churn[r->nchurn++] = p;
	}
	for (unsigned p = 0; p < NPG; p += 4) {
		unsigned k = (p / 4) % cfg->nq;

		if (r->stable[p])
			r->units[k][r->nunits[k]++] = p;
	}
	CHECK_OK(iovm_mr_reg(r->c.dom, r->m, MLEN,
			     IOVM_ACCESS_LOCAL_WRITE | (cfg->pinned ? 0 : IOVM_ACCESS_ON_DEMAND), &r->mr));
	if (!a18_reg(r->c.ctx).monitor) {
		CHECK_OK(iovm_mr_dereg(r->mr));
		a18_client_close(&r->c);
		a18_stop_server(&srv);
		CHECK_OK(iovm_close(owner));
		SKIP_CASE("no memory monitor (userfaultfd) here");
	}
	for (unsigned k = 0; k < cfg->nq; k++) {
		struct sub *s = &subs[k];

		memset(s, 0, sizeof(*s));
		s->r = r;
		s->k = k;
		s->seed = 0x1234567ull * (k + 3);
		if (k == 0) {
			s->q = r->c.q;
			s->rec = r->c.rec;
			s->heap = r->c.heap;
			s->ih = r->c.ih;
			s->ir = r->c.ir;
		} else {
			CHECK_OK(iovm_rqueue_open(r->c.ctx, a18_dev, 64, &s->q));
			s->heap = iovm_dma_zalloc(r->c.ctx, HLEN, 4096, 0);
			s->rec = iovm_dma_zalloc(r->c.ctx, 4096, 4096, 0);
			CHECK(s->heap && s->rec);
			CHECK_OK(iovm_rqueue_map(s->q, s->heap, HLEN, A18_RW, &v));
			s->ih = v.addr;
			CHECK_OK(iovm_rqueue_map(s->q, s->rec, 4096, A18_RW, &v));
			s->ir = v.addr;
		}
		CHECK_OK(iovm_rqueue_map_mr(s->q, r->mr, A18_RW, &v));
		s->im = v.addr;
	}
	if (cfg->unrelated) {
		for (unsigned i = 0; i < NUNR; i++) {
			struct iovm_completion rec;

			r->unr[i].r = r;
			r->unr[i].seed = 0x9e3779b9ull * (i + 1);
			r->unr[i].p = a18_pages_64k(UPG);
			memset(r->unr[i].p, 0x11, UPG * A18_PAGE);
			CHECK_OK(iovm_mr_reg(r->c.dom, r->unr[i].p, UPG * A18_PAGE,
					     IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND, &r->unr[i].mr));
			/* On the device too, its pieces asked for once: the churn then unmaps them there. */
			CHECK_OK(iovm_rqueue_map_mr(r->c.q, r->unr[i].mr, A18_RW, &v));
			rec = a18_go(&r->c, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = v.addr, .len = UPG * A18_PAGE,
								.pattern = 0x2222222222222222ull });
			CHECK_EQ(rec.status, IOVM_STATUS_SUCCESS);
			CHECK_EQ(r->unr[i].p[5 * A18_PAGE + 7], 0x22);
		}
	}
	if (cfg->toucher) {
		CHECK_OK(iovm_rqueue_open(r->c.ctx, a18_dev, 64, &r->tq));
		r->trec = iovm_dma_zalloc(r->c.ctx, 4096, 4096, 0);
		CHECK(r->trec);
		CHECK_OK(iovm_rqueue_map(r->tq, r->trec, 4096, A18_RW, &v));
		r->tir = v.addr;
		CHECK_OK(iovm_rqueue_map_mr(r->tq, r->mr, A18_RW, &v));
		r->tim = v.addr;
		if (cfg->unrelated)
			for (unsigned i = 0; i < NUNR; i++) {
				CHECK_OK(iovm_rqueue_map_mr(r->tq, r->unr[i].mr, A18_RW, &v));
				r->tiu[i] = v.addr;
			}
	}
	st0 = a18_reg(r->c.ctx);
	if (cfg->load)
		a18_load_start(&load, cfg->load);
	if (cfg->churn_mr)
		CHECK(pthread_create(&r->churn_thr, NULL, churn_main, r) == 0);
	if (cfg->unrelated) {
		for (unsigned i = 0; i < NUNR; i++)
			CHECK(pthread_create(&r->unr[i].thr, NULL, unr_main, &r->unr[i].r) == 0);
		CHECK(pthread_create(&r->malloc_thr, NULL, malloc_main, r) == 0);
	}
	if (cfg->toucher)
		CHECK(pthread_create(&r->touch_thr, NULL, touch_main, r) == 0);
	for (unsigned k = 0; k < cfg->nq; k++)
		CHECK(pthread_create(&subs[k].thr, NULL, sub_main, &subs[k]) == 0);
	for (unsigned k = 0; k < cfg->nq; k++)
		CHECK(pthread_join(subs[k].thr, NULL) == 0);
	atomic_store(&r->stop, 1);
	if (cfg->churn_mr)
		CHECK(pthread_join(r->churn_thr, NULL) == 0);
	if (cfg->unrelated) {
		for (unsigned i = 0; i < NUNR; i++)
			CHECK(pthread_join(r->unr[i].thr, NULL) == 0);
		CHECK(pthread_join(r->malloc_thr, NULL) == 0);
	}
	if (cfg->toucher)
		CHECK(pthread_join(r->touch_thr, NULL) == 0);
	if (cfg->load)
		a18_load_stop(&load);
	st1 = a18_reg(r->c.ctx);
	printf("# %s: steps %lu/%lu, churned %lu, unrelated ops %lu (lost %lu), malloc %lu, odp_faults +%llu, retries +%llu, "
	       "invalidated +%llu, events +%llu, evicted +%llu, budget %llu\n",
	       cfg->tag, subs[0].steps, cfg->nq > 1 ? subs[1].steps : 0, atomic_load(&r->churned), atomic_load(&r->unr_ops),
	       atomic_load(&r->unr_lost), atomic_load(&r->malloc_ops),
	       (unsigned long long)(st1.odp_faults - st0.odp_faults),
	       (unsigned long long)(st1.odp_fault_retries - st0.odp_fault_retries),
	       (unsigned long long)(st1.invalidated_pages - st0.invalidated_pages),
	       (unsigned long long)(st1.monitor_events - st0.monitor_events),
	       (unsigned long long)(st1.odp_evicted_bytes - st0.odp_evicted_bytes), (unsigned long long)st1.pin_budget);
	for (unsigned k = 0; k < cfg->nq; k++) {
		CHECK_MSG(subs[k].fail[0] == 0, "%s", subs[k].fail);
		CHECK(subs[k].steps >= cfg->steps);
		total += subs[k].tag; /* descriptors run */
	}
	/* The churn happened, and reached the device: pieces were asked for again after their invalidation. */
	if (cfg->churn_mr) {
		CHECK(atomic_load(&r->churned) >= 300);
		CHECK(st1.invalidated_pages > st0.invalidated_pages);
	}
	if (cfg->unrelated) {
		CHECK(atomic_load(&r->unr_ops) >= 300 || !(cfg->umode & 1));
		CHECK(atomic_load(&r->malloc_ops) >= 20 || !(cfg->umode & 2));
	}
	/* ASan's allocator gives malloc()'s memory back by its own means: no event of a malloc churn alone. */
	CHECK(st1.monitor_events > st0.monitor_events || (TEST_ASAN && cfg->unrelated && cfg->umode == 2));
	if (!cfg->pinned)
		CHECK(st1.odp_faults > st0.odp_faults);
	if (cfg->toucher) {
		printf("# toucher: %lu descriptors on churned memory, %lu succeeded\n", atomic_load(&r->touched),
		       atomic_load(&r->touched_ok));
		CHECK(atomic_load(&r->touched) >= 50);
		CHECK(atomic_load(&r->touched_ok) >= 1);
	}
	/* Every stable page as the model says. */
	for (unsigned p = 0; p < NPG; p++) {
		long d;

		if (!r->stable[p])
			continue;
		d = a18_diff(r->m + p * A18_PAGE, r->model + p * A18_PAGE, A18_PAGE);
		CHECK_MSG(d < 0, "stable page %u byte %ld: %#x, the model says %#x", p, d, r->m[p * A18_PAGE + d],
			  r->model[p * A18_PAGE + d]);
	}
	info = a18_srv_info(&srv);
	printf("# server: descriptors %llu, opened %llu, clients %u, total steps %lu\n", (unsigned long long)info.descriptors, (unsigned long long)info.opened, info.clients, total);
	CHECK(info.descriptors >= total);
	/* Tear down: MRs off the queues, deregistered, queues closed. */
	for (unsigned k = 0; k < cfg->nq; k++)
		CHECK_OK(iovm_rqueue_unmap_mr(subs[k].q, r->mr));
	if (cfg->toucher)
		CHECK_OK(iovm_rqueue_close(r->tq)); /* unmaps its MRs */
	if (cfg->unrelated)
		for (unsigned i = 0; i < NUNR; i++) {
			CHECK_OK(iovm_rqueue_unmap_mr(r->c.q, r->unr[i].mr));
			CHECK_OK(iovm_mr_dereg(r->unr[i].mr));
			munmap(r->unr[i].p, UPG * A18_PAGE);
		}
	CHECK_OK(iovm_mr_dereg(r->mr));
	if (cfg->nq > 1)
		CHECK_OK(iovm_rqueue_close(subs[1].q));
	a18_client_close(&r->c);
	a18_stop_server(&srv);
	CHECK_OK(iovm_share_check(owner));
	CHECK_OK(iovm_close(owner));
	munmap(r->m, MLEN);
	free(r->model);
	free(r);
}

/*
 * Broken (round 18): discarding pages of an on-demand MR makes descriptors
 * on OTHER pages of the same 64 KiB pieces, which nobody took away, fault
 * (IOVM_STATUS_PAGE_FAULT, IOVM_FAULT_NOT_PRESENT at a page never discarded).
 */
/* Fixed (devodp.c: a drop unmaps the pages let go, not their chunk): descriptors on pages never discarded faulted while other pages of their 64 KiB piece were discarded in a loop. */

TEST(same_piece_dontneed_odp)
{
	run_churn(&(struct ccfg){ .tag = "a18same", .opts = "oracle=on,pin_budget=16M", .layout = L_SAME,
				  .churn_mr = true, .nq = 2, .gather = true, .steps = a18_rounds(1500) });
}

TEST(same_piece_one_piece_descriptors_odp)
{
	run_churn(&(struct ccfg){ .tag = "a18same1", .opts = "oracle=on,pin_budget=16M", .layout = L_SAME,
				  .churn_mr = true, .nq = 2, .gather = false, .nocross = true,
				  .steps = a18_rounds(3000) });
}

TEST(same_piece_budget_128k)
{
	run_churn(&(struct ccfg){ .tag = "a18b128", .opts = "oracle=on,pin_budget=128K", .layout = L_SAME,
				  .churn_mr = true, .nq = 1, .gather = false, .steps = a18_rounds(1500) });
}

TEST(other_pieces_dontneed_odp)
{
	run_churn(&(struct ccfg){ .tag = "a18other", .opts = "oracle=on,pin_budget=16M", .layout = L_OTHER,
				  .churn_mr = true, .nq = 2, .gather = true, .toucher = true,
				  .steps = a18_rounds(1000) });
}

/*
 * Broken, rarely: a gather of stable pages faulted (bus, 0 bytes done) in
 * two fresh make checks on 2026-12-06, once beside another test's
 * spinning threads, once in the ASan leg on a quiet machine. Thought to
 * be the gate's timeout: see unrelated_all_odp. Off the flag since
 * 2026-12-07, with the three below (see there).
 */
TEST(unrelated_threads_odp)
{
	run_churn(&(struct ccfg){ .tag = "a18unr", .opts = "oracle=on,pin_budget=16M", .layout = L_SAME,
				  .unrelated = true, .umode = 1, .nq = 2, .gather = true, .toucher = true,
				  .steps = a18_rounds(1000) });
}

TEST(unrelated_malloc_odp)
{
	run_churn(&(struct ccfg){ .tag = "a18mal", .opts = "oracle=on,pin_budget=16M", .layout = L_SAME,
				  .unrelated = true, .umode = 2, .nq = 2, .gather = true, .toucher = true,
				  .steps = a18_rounds(1000) });
}

/*
 * Broken in round 18, fixed 2026-12-06: with both kinds of unrelated churn
 * at once (threads replacing and discarding other MRs' memory that the
 * device reaches, and a thread registering malloc()'d blocks and freeing
 * them registered), a descriptor on the MR nobody touches faulted now and
 * then with IOVM_FAULT_BUS, 0 bytes done (one run in six to one in ten).
 * The client's gate kept the device out for its 5 s: each unmapping
 * thread held off closing it for a waiting device 20 ms from its call,
 * less than the batches before took to open, so one of them always
 * closed it again. Still broken after that fix, rarer: once in a run of
 * the whole test, 0 bytes done. A device off the CPU for seconds timed
 * its gate out on waking (fixed: such a stall counts 50 ms of the 5 s).
 * Passed 100 runs of 100 since (five churns each, beside two busy loops,
 * 2026-12-05/06), and came out of the flag. Two churns here, five with
 * A18_ROUNDS.
 *
 * Broken again: CI's ASan leg, 2026-12-06, a gather of stable pages
 * faulted (bus) with 14612 of 17232 bytes done. The likeliest cause, as
 * in the faults above: the device timed its wait for the client's gate
 * out while the client's threads kept closing it, each of their
 * hold-offs for a waiting device (50 ms from the gate's opening) over
 * before the device, short of CPU under ASan, looked again. Since
 * then the timeout runs only while the owner opens the gate not once
 * (dev/access.c, remote_gate_wait()), and the device process says at
 * debug level why it faults (DEVSRV_DEBUG=1 here). Off the flag since
 * 2026-12-07: the whole binary with the flag passed 78 runs of 78 after
 * the fixes (12; 12 gcc and 6 ASan beside a make check; 40 gcc and 8
 * ASan on a machine at a load average of 12-23), and 18 of 18 with
 * IOVM_HOOKS=all.
 */
TEST(unrelated_all_odp)
{
	unsigned churns = getenv("A18_ROUNDS") ? 5 : 2;

	for (unsigned i = 0; i < churns; i++)
		run_churn(&(struct ccfg){ .tag = "a18all", .opts = "oracle=on,pin_budget=16M", .layout = L_SAME,
					  .unrelated = true, .umode = 3, .nq = 2, .gather = true, .toucher = true,
					  .pause = 400 + i * 400, .steps = a18_rounds(1500) });
}

/*
 * Broken again, 2026-12-06: in the gcc leg of a fresh make check, a fill
 * of stable pages faulted (bus, 0 bytes done) at step 60, the whole
 * test 2.37 s old: not the gate's 5 s timeout, so one of the device's
 * other ways to a bus fault (its memory file's read or write, a window
 * gone). Behind the flag with the other churn cases of its family; the
 * device process now prints why it faults (devsrv_fault_reasons).
 *
 * Broken, rarely: once in a clang leg of a fresh make check (2026-12-06),
 * a copy within stable pages faulted (not present, 0 bytes done) while
 * pages of other pieces were discarded; 16 runs of 16 passed beside two
 * busy loops right after. The monitor's event ring overflowed, which
 * invalidates every registration: the pinned MR died (fixed: producers
 * wait for room). Passed 100 runs of 100 since, beside two busy loops.
 */
TEST(pinned_other_pieces_locked)
{
	A18_KNOWN("a fill of a pinned MR's stable pages faults (bus, 0 bytes done) while pages of other pieces are "
		  "discarded (2026-12-06, a fresh make check's gcc leg, 2 s into the test: no gate timeout)");
	run_churn(&(struct ccfg){ .tag = "a18pino", .opts = "oracle=on", .pinned = true, .layout = L_OTHER,
				  .churn_mr = true, .unrelated = true, .umode = 1, .nq = 2, .gather = true,
				  .toucher = true, .steps = a18_rounds(700) });
}

/*
 * The same bug with a pinned MR (its churned pages discarded with
 * MADV_DONTNEED_LOCKED): rarer; CI's ASan leg saw it, fixed with it.
 * Broken still: once in a suite run after that fix, a copy out of stable
 * pages moved the bytes up to a page boundary, then faulted (bus) at the
 * next stable page of its unit, the gate not in question (1464 bytes
 * done). Found since: not present, 0 bytes done, after an overflow of
 * the monitor's event ring killed the MR, and bus, 0 bytes done, after
 * the device timed out a gate on waking from seconds off the CPU (both
 * fixed); the 1464 bytes not reproduced. Passed 100 runs of 100 since,
 * beside two busy loops.
 */
/*
 * Found, 2026-12-06 (a soak of the whole binary, 2 runs of 40): the
 * device faulted a copy with "gate closed at 1: 0 ms waited since its
 * last opening, 0 ms in all, 1 openings". Its wait had seen the gate
 * open, and then read it once more, closed again by then: a fault after
 * no wait at all. Fixed in dev/access.c (remote_gate_wait() answers what
 * it saw). Off the flag since 2026-12-07, as unrelated_all_odp.
 */
TEST(pinned_same_piece_locked)
{
	run_churn(&(struct ccfg){ .tag = "a18pin", .opts = "oracle=on", .pinned = true, .layout = L_SAME,
				  .churn_mr = true, .unrelated = true, .umode = 3, .nq = 2, .gather = true,
				  .toucher = true, .steps = a18_rounds(1000) });
}

/*
 * The bus fault of unrelated_all_odp, without the malloc() thread: seen once
 * with two more busy loops outside the test (4 on 2 CPUs). Fixed with it;
 * passed 100 runs of 100 since, beside two busy loops. Off the flag since
 * 2026-12-07, as unrelated_all_odp.
 */
TEST(everything_loaded_odp)
{
	run_churn(&(struct ccfg){ .tag = "a18load", .opts = "oracle=on,pin_budget=16M", .layout = L_OTHER,
				  .churn_mr = true, .unrelated = true, .umode = 1, .nq = 2, .load = 2, .gather = true,
				  .toucher = true, .steps = a18_rounds(600) });
}

TEST(same_piece_loaded_odp)
{
	run_churn(&(struct ccfg){ .tag = "a18sload", .opts = "oracle=on,pin_budget=16M", .layout = L_SAME,
				  .churn_mr = true, .unrelated = true, .umode = 3, .nq = 2, .load = 2, .gather = true,
				  .toucher = true, .steps = a18_rounds(600) });
}

int main(void)
{
	test_init();
	/* Twelve cases of churn, each minutes long under TSan (past the test's timeout): the other legs run them. */
	if (TEST_TSAN)
		SKIP("under ThreadSanitizer the churn cases take longer than the test's 180 s");
	/* A fixed threshold: glibc's free() of these blocks always unmaps them (no dynamic raise). */
	mallopt(M_MMAP_THRESHOLD, 256 * 1024);
	A18_RUN(other_pieces_dontneed_odp);
	A18_RUN(unrelated_threads_odp);
	A18_RUN(unrelated_malloc_odp);
	A18_RUN(pinned_other_pieces_locked);
	A18_RUN(everything_loaded_odp);
	A18_RUN(same_piece_dontneed_odp);
	A18_RUN(same_piece_one_piece_descriptors_odp);
	A18_RUN(same_piece_budget_128k);
	A18_RUN(same_piece_loaded_odp);
	A18_RUN(unrelated_all_odp);
	A18_RUN(pinned_same_piece_locked);
	return 0;
}
