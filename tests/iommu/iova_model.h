/* SPDX-License-Identifier: MIT */
/*
 * iova_model.h - the IOVA allocator against a plain model (sorted maps of
 * allocated, quarantined and reserved pages), one operation at a time on
 * one of four threads (so that per-thread magazines, depots and stealing
 * come into play), everything checked after every step. The operations
 * come from a byte stream: test_iova_model.c feeds it from a seeded
 * generator, fuzz_iova.c from libFuzzer.
 *
 * Subjects:
 *  - the allocator itself (iova_*): a small window with holes, so that it
 *    runs full; dynamic allocations of any size and alignment, frees of
 *    whole allocations or parts, reservations at chosen pages, threads
 *    that exit (their magazines go back) and come anew;
 *  - a managed domain with a 32-bit DMA mask and reserved holes, strict
 *    or deferred, through the public API: maps at automatic and chosen
 *    IOVAs, partial unmaps, flushes; in a deferred domain, unmapped IOVAs
 *    stay quarantined until a flush (the domain's batch and timeout are
 *    set beyond the test's reach, so that only the model's flushes
 *    happen), and a map at a chosen quarantined IOVA flushes first.
 *
 * Checked: no overlap with anything allocated, mapped or quarantined; no
 * IOVA outside the window or in a hole; alignment; every range the model
 * says is free can be taken at once by a reservation (iova_reserve(), or
 * a map at that IOVA), also when it sits in another thread's magazine;
 * an allocation fails only when a reservation sweep proves nothing fits;
 * the allocator's and the domain's counters equal the model's.
 *
 * The includer defines MODEL_FAIL(fmt, ...) (not returning).
 */
#ifndef IOVM_TESTS_IOVA_MODEL_H
#define IOVM_TESTS_IOVA_MODEL_H

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>

#include <iovm.h>

#include "iommu/extent_model.h"
#include "iommu/iova.h"

enum ivm_kind { IVM_RAW, IVM_STRICT, IVM_DEFERRED, IVM_KINDS };

#define IVM_THREADS 4                       /* thread 0 is the caller's */
#define IVM_RAW_BASE 16                     /* the raw window: pages [16, 16 + 4096) */
#define IVM_RAW_PAGES 4096
#define IVM_DOM_LIMIT (UINT64_C(1) << 20)   /* a 32-bit mask, in pages */
#define IVM_MAX_MAP 512                     /* pages one map takes: the buffer's 2 MiB */

static const struct iova_range ivm_raw_holes[] = {
	{ { (IVM_RAW_BASE + 1000) << 12 }, 100 << 12 },
	{ { (IVM_RAW_BASE + 1050) << 12 }, 250 << 12 },  /* overlaps the first */
	{ { (IVM_RAW_BASE + 4000) << 12 }, 1000 << 12 }, /* runs past the limit */
};
static const struct iovm_iova_range ivm_dom_holes[] = {
	{ { 0x10000000 }, 0x100000 },
	{ { 0xfee00000 }, 0x100000 },        /* the MSI window, kept by hand: a list replaces it */
	{ { 0xfffff000 }, 0x1000 },          /* the mask's last page */
};

/* A thread that runs what it is handed, one call at a time. */
struct ivm_thread {
	pthread_t t;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	void (*fn)(void *arg);
	void *arg;
	bool busy, stop;
};

struct ivm {
	enum ivm_kind kind;
	struct iova_alloc a;          /* IVM_RAW */
	struct iovm_domain *dom;      /* the others */
	uint64_t buf_pa;
	struct extents used;          /* allocated (raw) or mapped (domains) */
	struct extents quarantine;    /* deferred: unmapped, awaiting the flush */
	struct extents holes;         /* reserved: never handed out */
	uint64_t lo, hi;              /* the window, pages [lo, hi) */
	uint64_t pending_unmaps;      /* deferred: unmaps since the last flush */
	struct ivm_thread th[IVM_THREADS];
	const uint8_t *data;
	size_t size, pos;
	uint64_t step, checks;
	char what[200];
};

#define IVM_FAIL(v, fmt, ...) MODEL_FAIL("step %" PRIu64 " (%s): " fmt, (v)->step, (v)->what, ##__VA_ARGS__)
#define IVM_CHECK(v, cond, fmt, ...)                                \
	do {                                                        \
		(v)->checks++;                                      \
		if (!(cond))                                        \
			IVM_FAIL(v, "%s: " fmt, #cond, ##__VA_ARGS__); \
	} while (0)

static inline uint64_t ivm_take(struct ivm *v, unsigned n)
{
	uint64_t x = 0;

	for (unsigned i = 0; i < n; i++, v->pos++)
		x |= (uint64_t)(v->pos < v->size ? v->data[v->pos] : 0) << (8 * i);
	return x;
}

static void *ivm_thread_main(void *arg)
{
	struct ivm_thread *t = arg;

	pthread_mutex_lock(&t->lock);
	for (;;) {
		while (!t->busy && !t->stop)
			pthread_cond_wait(&t->cond, &t->lock);
		if (t->busy) {
			pthread_mutex_unlock(&t->lock);
			t->fn(t->arg);
			pthread_mutex_lock(&t->lock);
			t->busy = false;
			pthread_cond_broadcast(&t->cond);
		} else {
			break;
		}
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

static inline void ivm_thread_start(struct ivm *v, unsigned i)
{
	struct ivm_thread *t = &v->th[i];

	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cond, NULL);
	t->busy = t->stop = false;
	if (pthread_create(&t->t, NULL, ivm_thread_main, t))
		IVM_FAIL(v, "pthread_create");
}

/* The thread exits: what its caches hold goes back (the allocator's thread-exit hook). */
static inline void ivm_thread_stop(struct ivm_thread *t)
{
	pthread_mutex_lock(&t->lock);
	t->stop = true;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
	pthread_join(t->t, NULL);
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->lock);
}

/* Run @fn(@arg) on thread @i (0: here) and wait for it. */
static inline void ivm_on(struct ivm *v, unsigned i, void (*fn)(void *), void *arg)
{
	struct ivm_thread *t = &v->th[i];

	if (!i) {
		fn(arg);
		return;
	}
	pthread_mutex_lock(&t->lock);
	t->fn = fn;
	t->arg = arg;
	t->busy = true;
	pthread_cond_broadcast(&t->cond);
	while (t->busy)
		pthread_cond_wait(&t->cond, &t->lock);
	pthread_mutex_unlock(&t->lock);
}

/* One call, as a thread runs it. */
struct ivm_call {
	struct ivm *v;
	int op; /* 0 alloc/map-any, 1 reserve/map-at, 2 free/unmap */
	uint64_t page, n, align;
	int ret;
};

static void ivm_call_fn(void *arg)
{
	struct ivm_call *c = arg;
	struct ivm *v = c->v;

	if (v->kind == IVM_RAW) {
		/* The model counts pages; the allocator takes bytes. */
		iova_t at = iova_make(c->page << 12);

		if (c->op == 0) {
			c->ret = iova_alloc(&v->a, c->n << 12, c->align << 12, &at);
			c->page = iova_val(at) >> 12;
		} else if (c->op == 1) {
			c->ret = iova_reserve(&v->a, at, c->n << 12);
		} else {
			c->ret = iova_free(&v->a, at, c->n << 12);
		}
		return;
	}
	if (c->op == 2) {
		c->ret = iovm_domain_unmap(v->dom, IOVM_IOVA(c->page << 12), c->n << 12);
	} else {
		iovm_iova_t at = c->op == 0 ? IOVM_IOVA_ANY : IOVM_IOVA(c->page << 12);

		c->ret = iovm_domain_map(v->dom, &at, IOVM_PA(v->buf_pa), c->n << 12, IOVM_MAP_READ);
		if (!c->ret)
			c->page = at.addr >> 12;
	}
}

static inline int ivm_do(struct ivm *v, unsigned thread, struct ivm_call *c)
{
	c->v = v;
	ivm_on(v, thread, ivm_call_fn, c);
	return c->ret;
}

static inline int ivm_open(struct ivm *v, enum ivm_kind kind, struct iovm_ctx *ctx, uint64_t buf_pa)
{
	int ret;

	memset(v, 0, sizeof(*v));
	v->kind = kind;
	v->buf_pa = buf_pa;
	ext_init(&v->used);
	ext_init(&v->quarantine);
	ext_init(&v->holes);
	if (kind == IVM_RAW) {
		v->lo = IVM_RAW_BASE;
		v->hi = IVM_RAW_BASE + IVM_RAW_PAGES;
		ret = iova_init(&v->a, iova_make(v->lo << 12), (v->hi - v->lo) << 12, ivm_raw_holes,
				sizeof(ivm_raw_holes) / sizeof(ivm_raw_holes[0]));
		ext_add(&v->holes, IVM_RAW_BASE + 1000, 300, 0, 0);
		ext_add(&v->holes, IVM_RAW_BASE + 4000, 96, 0, 0);
	} else {
		struct iovm_domain_attr a = {
			.flags = kind == IVM_DEFERRED ? IOVM_DOMAIN_DEFERRED : 0,
			.dma_bits = 32,
			.flush_batch = 65536,           /* no flush but the model's */
			.flush_timeout_us = 600000000,
			.reserved = ivm_dom_holes,
			.nr_reserved = sizeof(ivm_dom_holes) / sizeof(ivm_dom_holes[0]),
		};

		v->lo = 1; /* page 0 is never handed out */
		v->hi = IVM_DOM_LIMIT;
		ret = iovm_domain_create(ctx, &a, &v->dom);
		for (unsigned i = 0; i < sizeof(ivm_dom_holes) / sizeof(ivm_dom_holes[0]); i++)
			ext_add(&v->holes, ivm_dom_holes[i].start.addr >> 12, ivm_dom_holes[i].len >> 12, 0, 0);
	}
	for (unsigned i = 1; !ret && i < IVM_THREADS; i++)
		ivm_thread_start(v, i);
	return ret;
}

static inline void ivm_close(struct ivm *v)
{
	for (unsigned i = 1; i < IVM_THREADS; i++)
		ivm_thread_stop(&v->th[i]);
	if (v->kind == IVM_RAW)
		iova_destroy(&v->a);
	else if (iovm_domain_destroy(v->dom))
		IVM_FAIL(v, "domain destroy");
	ext_free(&v->used);
	ext_free(&v->quarantine);
	ext_free(&v->holes);
}

/* Whether [page, +n) is free in the model: in the window, in no hole, not used or quarantined. */
static inline bool ivm_free(const struct ivm *v, uint64_t page, uint64_t n)
{
	return page >= v->lo && page + n <= v->hi && !ext_count(&v->holes, page, n) && !ext_count(&v->used, page, n) &&
	       !ext_count(&v->quarantine, page, n);
}

/* What an allocation of [page, +n) must be: free, aligned. */
static inline void ivm_check_new(struct ivm *v, uint64_t page, uint64_t n, uint64_t align)
{
	IVM_CHECK(v, page >= v->lo && page + n <= v->hi, "%#" PRIx64 " +%" PRIu64 " outside the window", page, n);
	IVM_CHECK(v, !ext_count(&v->holes, page, n), "%#" PRIx64 " in a hole", page);
	IVM_CHECK(v, !ext_count(&v->used, page, n), "%#" PRIx64 " handed out twice", page);
	IVM_CHECK(v, !ext_count(&v->quarantine, page, n), "%#" PRIx64 " out of quarantine before its flush", page);
	IVM_CHECK(v, !align || page % align == 0, "%#" PRIx64 " not aligned to %" PRIu64, page, align);
}

static inline void ivm_flushed(struct ivm *v)
{
	ext_free(&v->quarantine);
	v->pending_unmaps = 0;
}

/* The first free run of the model that fits @n pages aligned to @align, from @from: its page or 0. */
static inline uint64_t ivm_find_free(const struct ivm *v, uint64_t from, uint64_t n, uint64_t align)
{
	uint64_t p = align_up(MAX(from, v->lo), align);

	while (p + n <= v->hi) {
		const struct extents *xs[3] = { &v->holes, &v->used, &v->quarantine };
		uint64_t next = 0;

		for (unsigned k = 0; k < 3; k++)
			for (size_t i = ext_find(xs[k], p); i < xs[k]->nr && xs[k]->e[i].page < p + n; i++)
				next = MAX(next, xs[k]->e[i].page + xs[k]->e[i].n);
		if (!next)
			return p;
		p = align_up(next, align);
	}
	return 0;
}

static inline void ivm_alloc(struct ivm *v, unsigned thread)
{
	unsigned cls = (unsigned)ivm_take(v, 1) % 4;
	uint64_t n = cls < 2 ? UINT64_C(1) << (ivm_take(v, 1) % 6) : 1 + ivm_take(v, 2) % (cls == 2 ? 40 : 600);
	uint64_t align = v->kind == IVM_RAW ? UINT64_C(1) << (ivm_take(v, 1) % 8) : 0;
	struct ivm_call c = { .op = 0, .n = MIN(n, (uint64_t)IVM_MAX_MAP), .align = align };
	int ret;

	snprintf(v->what, sizeof(v->what), "thread %u: %s %" PRIu64 " pages, align %" PRIu64, thread,
		 v->kind == IVM_RAW ? "alloc" : "map anywhere", c.n, align);
	ret = ivm_do(v, thread, &c);
	if (!ret) {
		ivm_check_new(v, c.page, c.n, align);
		ext_add(&v->used, c.page, c.n, 0, 0);
		return;
	}
	IVM_CHECK(v, ret == -ENOSPC, "returned %d", ret);
	/* Full: only if no free range fits, cached or not. A reservation proves it. */
	{
		uint64_t p = ivm_find_free(v, v->lo, c.n, align ? align : 1);

		if (p) {
			struct ivm_call r = { .op = 1, .page = p, .n = c.n };

			IVM_CHECK(v, ivm_do(v, thread, &r) == 0, "-ENOSPC, yet %#" PRIx64 " +%" PRIu64 " is free (%d)",
				  p, c.n, r.ret);
			ext_add(&v->used, p, c.n, 0, 0);
		}
	}
}

/* The expected result of taking [page, +n) at a chosen place. */
static inline int ivm_want_at(struct ivm *v, uint64_t page, uint64_t n)
{
	if (page < v->lo || page + n > v->hi)
		return -EINVAL;
	if (ext_count(&v->holes, page, n))
		return v->kind == IVM_RAW ? -EBUSY : -EINVAL;
	if (ext_count(&v->used, page, n))
		return v->kind == IVM_RAW ? -EBUSY : -EEXIST;
	return 0;
}

static inline void ivm_reserve(struct ivm *v, unsigned thread)
{
	unsigned how = (unsigned)ivm_take(v, 1) % 5;
	struct ivm_call c = { .op = 1, .n = 1 + ivm_take(v, 2) % 64 };
	int want, ret;

	if (how == 0 && v->used.nr) {
		const struct extent *e = &v->used.e[ivm_take(v, 2) % v->used.nr];

		c.page = e->page + ivm_take(v, 2) % e->n; /* overlaps something taken */
	} else if (how == 1 && v->quarantine.nr) {
		const struct extent *e = &v->quarantine.e[ivm_take(v, 2) % v->quarantine.nr];

		c.page = e->page + ivm_take(v, 2) % e->n;
		c.n = MIN(c.n, e->page + e->n - c.page);
	} else if (how == 2) {
		uint64_t p = ivm_find_free(v, v->lo + ivm_take(v, 3) % (v->hi - v->lo), c.n, 1);

		c.page = p ? p : v->lo;
	} else if (how == 3) {
		static const uint64_t edges[] = { 0, 1, IVM_RAW_BASE - 1, IVM_RAW_BASE + IVM_RAW_PAGES - 1,
						  IVM_DOM_LIMIT - 1, IVM_DOM_LIMIT, UINT64_C(1) << 40 };

		c.page = edges[ivm_take(v, 1) % (sizeof(edges) / sizeof(edges[0]))];
	} else {
		c.page = v->lo + ivm_take(v, 3) % (v->hi - v->lo);
	}
	c.n = MIN(c.n, (uint64_t)IVM_MAX_MAP);
	snprintf(v->what, sizeof(v->what), "thread %u: %s %#" PRIx64 " +%" PRIu64, thread,
		 v->kind == IVM_RAW ? "reserve" : "map at", c.page, c.n);
	want = ivm_want_at(v, c.page, c.n);
	/* A deferred domain flushes when the range is taken (mapped or quarantined), then retries. */
	if (v->kind == IVM_DEFERRED && want != -EINVAL &&
	    (ext_count(&v->used, c.page, c.n) || ext_count(&v->quarantine, c.page, c.n)))
		ivm_flushed(v);
	ret = ivm_do(v, thread, &c);
	IVM_CHECK(v, ret == want, "returned %d, want %d", ret, want);
	if (!ret)
		ext_add(&v->used, c.page, c.n, 0, 0);
}

static inline void ivm_release(struct ivm *v, unsigned thread)
{
	struct ivm_call c = { .op = 2 };
	uint64_t mapped;
	int ret;

	if (v->used.nr && ivm_take(v, 1) % 8) {
		const struct extent *e = &v->used.e[ivm_take(v, 2) % v->used.nr];
		bool whole = ivm_take(v, 1) & 1;

		c.page = whole ? e->page : e->page + ivm_take(v, 2) % e->n;
		c.n = whole ? e->n : 1 + ivm_take(v, 2) % (e->page + e->n - c.page);
	} else if (v->kind == IVM_RAW) {
		return; /* a free of what was not allocated is the caller's bug, not a case */
	} else {
		c.page = v->lo + ivm_take(v, 3) % (v->hi - v->lo);
		c.n = 1 + ivm_take(v, 2) % 64;
	}
	snprintf(v->what, sizeof(v->what), "thread %u: %s %#" PRIx64 " +%" PRIu64, thread,
		 v->kind == IVM_RAW ? "free" : "unmap", c.page, c.n);
	mapped = ext_count(&v->used, c.page, c.n);
	ret = ivm_do(v, thread, &c);
	IVM_CHECK(v, ret == (mapped || v->kind == IVM_RAW ? 0 : -ENOENT), "returned %d", ret);
	if (v->kind == IVM_DEFERRED && mapped) {
		/* What was mapped goes to quarantine, piece by piece. */
		for (size_t i = ext_find(&v->used, c.page); i < v->used.nr && v->used.e[i].page < c.page + c.n; i++) {
			uint64_t s = MAX(v->used.e[i].page, c.page);
			uint64_t e = MIN(v->used.e[i].page + v->used.e[i].n, c.page + c.n);

			ext_add(&v->quarantine, s, e - s, 0, 0);
		}
		v->pending_unmaps++;
	}
	ext_remove(&v->used, c.page, c.n);
}

static inline void ivm_flush(struct ivm *v)
{
	snprintf(v->what, sizeof(v->what), "flush");
	if (v->kind == IVM_RAW)
		return;
	IVM_CHECK(v, iovm_domain_flush(v->dom) == 0, "flush");
	ivm_flushed(v);
}

/* A thread exits, and another takes its place: its magazines and queue go back. */
static inline void ivm_respawn(struct ivm *v)
{
	unsigned i = 1 + (unsigned)ivm_take(v, 1) % (IVM_THREADS - 1);

	snprintf(v->what, sizeof(v->what), "thread %u exits", i);
	ivm_thread_stop(&v->th[i]);
	ivm_thread_start(v, i);
}

/*
 * Every free range of the model, taken by reservations (on a thread of
 * the stream's choice), then given back: what a magazine or a depot
 * holds must come too.
 */
static inline void ivm_sweep(struct ivm *v, unsigned thread)
{
	struct extents took;
	uint64_t p = v->lo;

	if (v->kind != IVM_RAW)
		return; /* a 4 GiB window: the raw allocator sweeps its small one */
	snprintf(v->what, sizeof(v->what), "thread %u: reserve all that is free", thread);
	ext_init(&took);
	while ((p = ivm_find_free(v, p, 1, 1))) {
		uint64_t n = 1;
		struct ivm_call c = { .op = 1, .page = p };

		while (ivm_free(v, p + n, 1))
			n++;
		c.n = n;
		IVM_CHECK(v, ivm_do(v, thread, &c) == 0, "%#" PRIx64 " +%" PRIu64 " free, not reservable (%d)", p, n,
			  c.ret);
		ext_add(&v->used, p, n, 0, 0);
		ext_add(&took, p, n, 0, 0);
		p += n;
	}
	{
		struct iova_stats st;

		iova_stats(&v->a, &st);
		IVM_CHECK(v, st.free == 0 && st.cached == 0, "free %" PRIu64 ", cached %" PRIu64 " after the sweep",
			  st.free, st.cached);
	}
	for (size_t i = 0; i < took.nr; i++) {
		struct ivm_call c = { .op = 2, .page = took.e[i].page, .n = took.e[i].n };

		IVM_CHECK(v, ivm_do(v, thread, &c) == 0, "free");
		ext_remove(&v->used, took.e[i].page, took.e[i].n);
	}
	ext_free(&took);
}

static inline void ivm_check_all(struct ivm *v)
{
	if (v->kind == IVM_RAW) {
		struct iova_stats st;

		iova_stats(&v->a, &st);
		IVM_CHECK(v, st.allocated == ext_total(&v->used), "allocated %" PRIu64 ", model %" PRIu64, st.allocated,
			  ext_total(&v->used));
		IVM_CHECK(v, st.free + st.cached + st.allocated == v->a.capacity, "free %" PRIu64 " cached %" PRIu64,
			  st.free, st.cached);
		IVM_CHECK(v, v->a.capacity == v->hi - v->lo - ext_total(&v->holes), "capacity %" PRIu64,
			  v->a.capacity);
		return;
	}
	{
		struct iovm_domain_stats st;

		IVM_CHECK(v, iovm_domain_stats(v->dom, &st) == 0, "stats");
		IVM_CHECK(v, st.iova_allocated == (ext_total(&v->used) + ext_total(&v->quarantine)) << 12,
			  "allocated %#" PRIx64 ", model %#" PRIx64 " mapped + %#" PRIx64 " quarantined",
			  st.iova_allocated, ext_total(&v->used) << 12, ext_total(&v->quarantine) << 12);
		IVM_CHECK(v, st.pending_unmaps == v->pending_unmaps, "pending %" PRIu64 ", model %" PRIu64,
			  st.pending_unmaps, v->pending_unmaps);
		IVM_CHECK(v, st.oracle_violations == 0, "oracle");
	}
}

static inline void ivm_run(struct ivm *v, const uint8_t *data, size_t size, uint64_t max_steps)
{
	v->data = data;
	v->size = size;
	v->pos = 0;
	for (v->step = 0; v->pos < size && v->step < max_steps; v->step++) {
		unsigned op = (unsigned)ivm_take(v, 1) % 16, thread = (unsigned)ivm_take(v, 1) % IVM_THREADS;

		if (op < 6)
			ivm_alloc(v, thread);
		else if (op < 9)
			ivm_reserve(v, thread);
		else if (op < 13)
			ivm_release(v, thread);
		else if (op == 13)
			ivm_flush(v);
		else if (op == 14)
			ivm_respawn(v);
		else
			ivm_sweep(v, thread);
		ivm_check_all(v);
	}
}

#endif /* IOVM_TESTS_IOVA_MODEL_H */
