/* SPDX-License-Identifier: MIT */
/*
 * test_attack26_stats.c - iovm_domain_stats() of a shared domain
 * (iovm/iommu.h, iovm/mp.h), attacked from the public headers alone.
 *
 * Promised: the call is thread safe, and a shared domain's leaves are
 * counted from its table's entries (a walk of every table), so that they
 * stay exact when a process is killed between changing an entry and
 * counting it.
 *
 * Attacked here:
 *  - stats hammered from threads of the owner (A) while two other
 *    processes (B, C) map and unmap at random in regions of their own:
 *    4 KiB runs, 2 MiB leaves (2 MiB aligned heap memory at 2 MiB aligned
 *    IOVAs), 4 MiB pairs, partial unmaps that split a 2 MiB leaf, unmaps
 *    of whole 2 MiB slots and whole 1 GiB aligned ranges (which detach
 *    whole page tables), regions across a 1 GiB boundary, strict and
 *    IOVM_DOMAIN_DEFERRED with flushes: no call fails or hangs, no
 *    snapshot counts more leaves than could exist; once they stop, the
 *    counts equal what iovm_domain_translate() finds in the window, and
 *    after every process unmapped and flushed, zero;
 *  - the same with a 1 GiB leaf (free heap memory at a 1 GiB aligned PA)
 *    split and remapped by one process;
 *  - B and C killed (SIGKILL) at random moments mid map/unmap while A
 *    polls: after the reap, the counts equal the table's (page by page
 *    through iovm_domain_translate()); the survivor's unmap of the whole
 *    window and flush leave zero leaves and iovm_share_check() == 0;
 *  - everything on one CPU (sched_setaffinity).
 *
 * A walk tells the size of a leaf by its layout: 2 MiB and 1 GiB leaves
 * are mapped read-write with PAs consecutive from an aligned base, 4 KiB
 * runs read-only, from a 256 KiB buffer (never a whole 2 MiB slot). With
 * nobody killed that tells every leaf's size exactly; a process killed
 * mid-split may leave 512 4 KiB leaves that look like a 2 MiB one, so
 * there the walk checks the pages exactly and the sizes as bounds.
 *
 * A26_ROUNDS=n multiplies the kill rounds; A26_SEED=s fixes the seed.
 */
#include <pthread.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include <iovm.h>

#include "mp/mp_util.h"

#define K4 UINT64_C(4096)
#define M2 (UINT64_C(2) << 20)
#define G1 (UINT64_C(1) << 30)
#define WIN (UINT64_C(4) << 30)      /* the window: [4 GiB, 8 GiB) */
#define WIN_SIZE (UINT64_C(4) << 30)
#define SLOTS 16                        /* a region of 32 MiB ... */
#define R0 (UINT64_C(5) * G1 - 16 * M2) /* ... across the 1 GiB boundary at 5 GiB */
#define R1 (UINT64_C(7) * G1 - 16 * M2) /* ... across 7 GiB */
#define RGIG (UINT64_C(6) * G1)         /* the 1 GiB leaf's region: [6 GiB, 7 GiB) */
#define SMALL_PAGES 64
#define TABLES 2048
#define HEAP_SMALL (UINT64_C(128) << 20)
#define HEAP_GIG (UINT64_C(3) << 30)
#define DOM "a26-dom"
#define PG_PER_2M 512u
#define PG_PER_1G (512u * 512u)

static const char *g_name;
static uint64_t g_seed;

/* ---------------------------------------------------------------- watchdog */

static void hung(int sig)
{
	static const char msg[] = "FAIL: the watchdog fired: a call hung (see the last 'ok' above)\n";

	(void)sig;
	if (write(2, msg, sizeof(msg) - 1) < 0)
		_exit(2);
	_exit(3);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void nap_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* ---------------------------------------------------------------- workers */

struct wcfg {
	uint64_t base;   /* the region's first IOVA */
	unsigned slots;  /* 2 MiB slots in it */
	bool gig;        /* the 1 GiB region: a 1 GiB leaf now and then */
	bool deferred;
	uint64_t small_pa; /* SMALL_PAGES pages: 4 KiB runs, read-only */
	uint64_t big_pa[4]; /* 2 MiB each, 2 MiB aligned */
	uint64_t big4_pa;   /* 4 MiB, 2 MiB aligned */
	uint64_t gig_pa;    /* 1 GiB aligned, 1 GiB of the heap */
	uint64_t seed;
	bool poll_only; /* no maps: iovm_domain_stats() back to back, until killed */
};

enum { CMD_STOP = 1, CMD_CLEAN, CMD_CLOSE };

static void w_die(const char *what, uint64_t iova, uint64_t len, int ret)
{
	fprintf(stderr, "FAIL worker %d: %s at IOVA %#llx len %#llx: %d (%s): %s\n", (int)getpid(), what,
		(unsigned long long)iova, (unsigned long long)len, ret, strerror(-ret), iovm_error_detail());
	_exit(20);
}

static void w_map(struct iovm_domain *dom, uint64_t at, uint64_t pa, uint64_t len, uint32_t perm)
{
	iovm_iova_t iova = IOVM_IOVA(at);
	int ret = iovm_domain_map(dom, &iova, IOVM_PA(pa), len, perm);

	if (ret && ret != -EEXIST)
		w_die("map", at, len, ret);
	if (!ret && iova.addr != at)
		w_die("map at a fixed IOVA went elsewhere", iova.addr, len, 0);
}

static void w_unmap(struct iovm_domain *dom, uint64_t at, uint64_t len)
{
	int ret = iovm_domain_unmap(dom, IOVM_IOVA(at), len);

	if (ret && ret != -ENOENT)
		w_die("unmap", at, len, ret);
}

/* The 1 GiB aligned ranges the region touches (each touches no other worker's region). */
static void w_gig_range(const struct wcfg *w, uint64_t pick, uint64_t *at)
{
	if (w->gig) {
		*at = w->base;
		return;
	}
	*at = (w->base & ~(G1 - 1)) + (pick & 1) * G1;
}

static void w_op(struct iovm_domain *dom, const struct wcfg *w, uint64_t *seed)
{
	uint64_t npages = (uint64_t)w->slots * PG_PER_2M;
	uint64_t r = test_rand(seed) % 100, x = test_rand(seed), y = test_rand(seed);
	const uint32_t rw = IOVM_MAP_READ | IOVM_MAP_WRITE;

	if (r < 28) { /* a run of 4 KiB pages, read-only */
		uint64_t n = 1 + x % 64, p = (x >> 8) % (npages - n + 1), off = y % (SMALL_PAGES - n + 1);

		w_map(dom, w->base + p * K4, w->small_pa + off * K4, n * K4, IOVM_MAP_READ);
	} else if (r < 44) { /* a 2 MiB leaf */
		uint64_t s = x % w->slots;
		uint64_t pa = w->gig ? w->gig_pa + ((s + 1) % 510) * M2 : w->big_pa[y % 4];

		w_map(dom, w->base + s * M2, pa, M2, rw);
	} else if (r < 48) { /* two 2 MiB leaves */
		uint64_t s = x % (w->slots - 1);
		uint64_t pa = w->gig ? w->gig_pa + ((s + 1) % 510) * M2 : w->big4_pa;

		w_map(dom, w->base + s * M2, pa, 2 * M2, rw);
	} else if (r < 51 && w->gig) { /* the 1 GiB leaf */
		w_map(dom, w->base, w->gig_pa, G1, rw);
	} else if (r < 68) { /* a partial unmap: it splits what it cuts */
		uint64_t n = 1 + x % (w->gig ? 1500 : 700), p = (x >> 16) % npages;

		if (p + n > npages)
			n = npages - p;
		w_unmap(dom, w->base + p * K4, n * K4);
	} else if (r < 76) { /* a few pages inside one slot: a split of a 2 MiB leaf */
		uint64_t s = x % w->slots, p = (x >> 16) % (PG_PER_2M - 4), n = 1 + y % 4;

		w_unmap(dom, w->base + s * M2 + p * K4, n * K4);
	} else if (r < 84) { /* whole slots: their tables go */
		uint64_t n = 1 + y % 3, s = x % (w->slots - n + 1);

		w_unmap(dom, w->base + s * M2, n * M2);
	} else if (r < 86) { /* the whole region */
		w_unmap(dom, w->base, (uint64_t)w->slots * M2);
	} else if (r < 88) { /* a whole 1 GiB aligned range: its directory goes */
		uint64_t at;

		w_gig_range(w, x, &at);
		w_unmap(dom, at, G1);
	} else if (r < 94) {
		int ret = iovm_domain_flush(dom);

		if (ret)
			w_die("flush", 0, 0, ret);
	} else { /* a page or two across a slot boundary */
		uint64_t s = 1 + x % (w->slots - 1);

		w_unmap(dom, w->base + s * M2 - K4 * (1 + y % 2), K4 * (1 + (y >> 8) % 3));
	}
}

static bool said(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, 0) == 1;
}

static uint64_t view_leaves(struct iovm_domain *dom)
{
	struct iovm_domain_stats st;

	CHECK_OK(iovm_domain_stats(dom, &st));
	return st.leaves_4k + st.leaves_2m + st.leaves_1g;
}

static void worker_main(int rd, int wr, void *arg)
{
	const struct wcfg *w = arg;
	struct iovm_ctx *ctx = attach_ok(g_name);
	struct iovm_domain *dom;
	uint64_t seed = w->seed | 1, ops = 0;
	int ret = iovm_share_domain_open(ctx, DOM, &dom);

	CHECK_MSG(ret == 0, "iovm_share_domain_open: %s: %s", strerror(-ret), iovm_error_detail());
	put64(wr, (uint64_t)getpid());
	CHECK_EQ(get64(rd), 0); /* go */
	while (w->poll_only) {
		struct iovm_domain_stats st;

		CHECK_OK(iovm_domain_stats(dom, &st));
	}
	for (;;) {
		w_op(dom, w, &seed);
		if (++ops % 8 == 0 && said(rd))
			break;
	}
	CHECK_EQ(get64(rd), CMD_STOP);
	CHECK_OK(iovm_domain_flush(dom));
	put64(wr, ops);
	CHECK_EQ(get64(rd), CMD_CLEAN);
	w_unmap(dom, w->base, (uint64_t)w->slots * M2);
	CHECK_OK(iovm_domain_flush(dom));
	put64(wr, view_leaves(dom));
	CHECK_EQ(get64(rd), CMD_CLOSE);
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_OK(iovm_close(ctx));
	put64(wr, 0);
	_exit(0);
}

/* ---------------------------------------------------------------- the poller */

struct poller {
	struct iovm_domain *dom;
	pthread_t th;
	atomic_bool stop;
	uint64_t max_4k, max_2m, max_1g, max_pages; /* what could exist */
	uint64_t polls, max_ns, peak_pages, peak_2m, peak_1g;
	unsigned pause_us; /* between polls (A26_POLL_US); 0: 5 to 45 us at random */
	bool tight;        /* no pause at all */
	uint64_t seed;
	char err[512];
};

static void *poll_main(void *arg)
{
	struct poller *p = arg;

	while (!atomic_load(&p->stop) && !p->err[0]) {
		struct iovm_domain_stats st;
		uint64_t t0 = now_ns(), dt, pages;
		int ret;

		memset(&st, 0xa5, sizeof(st));
		ret = iovm_domain_stats(p->dom, &st);
		dt = now_ns() - t0;
		__atomic_fetch_add(&p->polls, 1, __ATOMIC_RELAXED);
		if (dt > p->max_ns)
			p->max_ns = dt;
		if (ret) {
			snprintf(p->err, sizeof(p->err), "iovm_domain_stats: %d (%s)", ret, strerror(-ret));
			break;
		}
		pages = st.leaves_4k + st.leaves_2m * PG_PER_2M + st.leaves_1g * PG_PER_1G;
		if (st.leaves_4k > p->max_4k || st.leaves_2m > p->max_2m || st.leaves_1g > p->max_1g ||
		    pages > p->max_pages || st.tables > TABLES)
			snprintf(p->err, sizeof(p->err),
				 "implausible snapshot (poll %llu): leaves_4k %llu (max %llu), leaves_2m %llu (max %llu), "
				 "leaves_1g %llu (max %llu), %llu pages in all (max %llu), tables %llu (pool %u)",
				 (unsigned long long)p->polls, (unsigned long long)st.leaves_4k,
				 (unsigned long long)p->max_4k, (unsigned long long)st.leaves_2m,
				 (unsigned long long)p->max_2m, (unsigned long long)st.leaves_1g,
				 (unsigned long long)p->max_1g, (unsigned long long)pages,
				 (unsigned long long)p->max_pages, (unsigned long long)st.tables, TABLES);
		if (pages > p->peak_pages)
			p->peak_pages = pages;
		if (!p->tight)
			usleep(p->pause_us ? p->pause_us : 5 + (unsigned)(test_rand(&p->seed) % 40));
		if (st.leaves_2m > p->peak_2m)
			p->peak_2m = st.leaves_2m;
		if (st.leaves_1g > p->peak_1g)
			p->peak_1g = st.leaves_1g;
	}
	return NULL;
}

static void poll_start(struct poller *p, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		atomic_store(&p[i].stop, false);
		CHECK_EQ(pthread_create(&p[i].th, NULL, poll_main, &p[i]), 0);
	}
	/* Each has polled once before anyone starts (a kill at 0 ms must still meet a poller). */
	for (unsigned i = 0; i < n; i++)
		WAIT_UNTIL(__atomic_load_n(&p[i].polls, __ATOMIC_RELAXED) > 0 || p[i].err[0]);
}

static void poll_stop(struct poller *p, unsigned n, const char *what)
{
	for (unsigned i = 0; i < n; i++)
		atomic_store(&p[i].stop, true);
	for (unsigned i = 0; i < n; i++) {
		CHECK_EQ(pthread_join(p[i].th, NULL), 0);
		CHECK_MSG(!p[i].err[0], "%s: poller %u: %s", what, i, p[i].err);
		CHECK_MSG(p[i].polls > 0, "%s: poller %u never polled", what, i);
	}
}

/* ---------------------------------------------------------------- the walk */

struct walk {
	uint64_t pages;  /* 4 KiB pages that translate */
	uint64_t full2m; /* slots read-write, PAs consecutive from a 2 MiB aligned base */
	uint64_t full1g; /* 1 GiB ranges all of whose slots are, consecutive from a 1 GiB aligned base */
};

/* One 2 MiB slot: pages that translate; whether it is laid out as a 2 MiB leaf; its first PA. */
static unsigned walk_slot(struct iovm_domain *dom, uint64_t at, bool *full, uint64_t *pa0)
{
	unsigned n = 0;

	*full = true;
	for (unsigned i = 0; i < PG_PER_2M; i++) {
		iovm_pa_t pa;
		uint32_t perm = 0;
		int ret = iovm_domain_translate(dom, IOVM_IOVA(at + i * K4), &pa, &perm);

		CHECK_MSG(ret == 0 || ret == -ENOENT, "translate %#llx: %d", (unsigned long long)(at + i * K4), ret);
		if (ret) {
			*full = false;
			continue;
		}
		n++;
		if (i == 0)
			*pa0 = pa.addr;
		if (perm != (IOVM_MAP_READ | IOVM_MAP_WRITE) || (i == 0 && pa.addr % M2) ||
		    (i && pa.addr != *pa0 + i * K4))
			*full = false;
	}
	return n;
}

static void walk_region(struct iovm_domain *dom, uint64_t base, unsigned slots, struct walk *wk)
{
	bool gig_ok = slots == PG_PER_2M && base % G1 == 0;
	uint64_t gpa0 = 0;

	for (unsigned s = 0; s < slots; s++) {
		bool full;
		uint64_t pa0 = 0;

		wk->pages += walk_slot(dom, base + s * M2, &full, &pa0);
		wk->full2m += full;
		if (s == 0)
			gpa0 = pa0;
		if (!full || (s == 0 && pa0 % G1) || pa0 != gpa0 + s * M2)
			gig_ok = false;
	}
	wk->full1g += gig_ok;
}

static struct walk walk_all(struct iovm_domain *dom, bool gig)
{
	struct walk wk = { 0 };

	walk_region(dom, R0, SLOTS, &wk);
	if (gig)
		walk_region(dom, RGIG, PG_PER_2M, &wk);
	else
		walk_region(dom, R1, SLOTS, &wk);
	/* Nothing anywhere else: a sample of the rest of the window, a page per 2 MiB. */
	for (uint64_t at = WIN; at < WIN + WIN_SIZE; at += M2) {
		iovm_pa_t pa;
		bool mine = (at >= R0 && at < R0 + SLOTS * M2) || (gig && at >= RGIG && at < RGIG + G1) ||
			    (!gig && at >= R1 && at < R1 + SLOTS * M2);

		if (!mine)
			CHECK_MSG(iovm_domain_translate(dom, IOVM_IOVA(at), &pa, NULL) == -ENOENT,
				  "IOVA %#llx translates, outside every region", (unsigned long long)at);
	}
	return wk;
}

static struct iovm_domain_stats stats(struct iovm_domain *dom)
{
	struct iovm_domain_stats st;

	CHECK_OK(iovm_domain_stats(dom, &st));
	return st;
}

/*
 * The stats against the walk. @exact: nobody was killed, so every
 * leaf's size is known from the layout.
 */
static bool stats_match_walk(struct iovm_domain *dom, bool gig, bool exact, const char *when)
{
	struct walk wk = walk_all(dom, gig);
	struct iovm_domain_stats st = stats(dom);
	uint64_t pages = st.leaves_4k + st.leaves_2m * PG_PER_2M + st.leaves_1g * PG_PER_1G;
	uint64_t want_2m = wk.full2m - wk.full1g * PG_PER_2M;

	CHECK_MSG(pages == wk.pages,
		  "%s: stats count leaves_4k %llu + leaves_2m %llu + leaves_1g %llu = %llu pages; the table "
		  "translates %llu (laid out as 2 MiB leaves: %llu slots, as 1 GiB: %llu)",
		  when, (unsigned long long)st.leaves_4k, (unsigned long long)st.leaves_2m,
		  (unsigned long long)st.leaves_1g, (unsigned long long)pages, (unsigned long long)wk.pages,
		  (unsigned long long)wk.full2m, (unsigned long long)wk.full1g);
	CHECK_MSG(st.leaves_1g <= wk.full1g && st.leaves_2m <= wk.full2m - st.leaves_1g * PG_PER_2M,
		  "%s: stats count %llu 2 MiB and %llu 1 GiB leaves; only %llu slots (%llu 1 GiB ranges) are laid "
		  "out as such", when, (unsigned long long)st.leaves_2m, (unsigned long long)st.leaves_1g,
		  (unsigned long long)wk.full2m, (unsigned long long)wk.full1g);
	if (exact)
		CHECK_MSG(st.leaves_1g == wk.full1g && st.leaves_2m == want_2m,
			  "%s: stats count %llu 2 MiB and %llu 1 GiB leaves; the walk finds %llu and %llu",
			  when, (unsigned long long)st.leaves_2m, (unsigned long long)st.leaves_1g,
			  (unsigned long long)want_2m, (unsigned long long)wk.full1g);
	return st.leaves_1g != wk.full1g || st.leaves_2m != want_2m;
}

/* ---------------------------------------------------------------- a round */

struct rig {
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	void *small, *big[4], *big4;
	struct wcfg w[2];
	struct child c[2];
	bool gig, deferred;
	uint64_t heap;
};

static void rig_up(struct rig *r, bool deferred, bool gig)
{
	struct iovm_share_params sp = { .heap_size = gig ? HEAP_GIG : HEAP_SMALL, .group = -1, .page_size = K4 };
	struct iovm_share_domain_params dp = { .iova_size = WIN_SIZE, .tables = TABLES,
					       .flags = deferred ? IOVM_DOMAIN_DEFERRED : 0,
					       .flush_batch = 32, .flush_timeout_us = 2000 };
	struct iovm_share_info info;
	uint64_t small_pa, big4_pa, gig_pa = 0;
	int ret;

	memset(r, 0, sizeof(*r));
	r->gig = gig;
	r->deferred = deferred;
	r->heap = sp.heap_size;
	g_name = share_name("a26");
	CHECK_OK(iovm_open("oracle=on", &r->ctx));
	ret = iovm_share(r->ctx, g_name, &sp);
	CHECK_MSG(ret == 0, "iovm_share(%s): %s: %s", g_name, strerror(-ret), iovm_error_detail());
	ret = iovm_share_domain_create(r->ctx, DOM, &dp, &r->dom);
	CHECK_MSG(ret == 0, "iovm_share_domain_create: %s: %s", strerror(-ret), iovm_error_detail());
	r->small = iovm_dma_alloc(r->ctx, SMALL_PAGES * K4, K4, 0);
	CHECK(r->small != NULL);
	for (int i = 0; i < 4; i++) {
		r->big[i] = iovm_dma_alloc(r->ctx, M2, M2, 0);
		CHECK(r->big[i] != NULL);
	}
	r->big4 = iovm_dma_alloc(r->ctx, 2 * M2, M2, 0);
	CHECK(r->big4 != NULL);
	{
		iovm_pa_t pa;

		CHECK_OK(iovm_dma_pa(r->ctx, r->small, &pa));
		small_pa = pa.addr;
		CHECK_OK(iovm_dma_pa(r->ctx, r->big4, &pa));
		big4_pa = pa.addr;
		CHECK_EQ(big4_pa % M2, 0);
	}
	info = share_info(r->ctx);
	if (gig) {
		/* The second GiB of the heap at least: the domain's block and the buffers are in the first. */
		gig_pa = (info.heap_pa.addr + G1 + G1 - 1) & ~(G1 - 1);
		CHECK_MSG(gig_pa + G1 <= info.heap_pa.addr + info.heap_size,
			  "no 1 GiB aligned GiB in a heap of %llu at PA %#llx", (unsigned long long)info.heap_size,
			  (unsigned long long)info.heap_pa.addr);
	}
	for (int k = 0; k < 2; k++) {
		struct wcfg *w = &r->w[k];

		w->deferred = deferred;
		w->small_pa = small_pa;
		w->big4_pa = big4_pa;
		w->gig_pa = gig_pa;
		for (int i = 0; i < 4; i++) {
			iovm_pa_t pa;

			CHECK_OK(iovm_dma_pa(r->ctx, r->big[i], &pa));
			CHECK_EQ(pa.addr % M2, 0);
			w->big_pa[i] = pa.addr;
		}
		w->seed = test_rand(&g_seed);
	}
	r->w[0].base = R0;
	r->w[0].slots = SLOTS;
	if (gig) {
		r->w[1].base = RGIG;
		r->w[1].slots = PG_PER_2M;
		r->w[1].gig = true;
	} else {
		r->w[1].base = R1;
		r->w[1].slots = SLOTS;
	}
}

static void rig_pollers(struct rig *r, struct poller *p, unsigned n)
{
	uint64_t slots = r->w[0].slots + r->w[1].slots;

	for (unsigned i = 0; i < n; i++) {
		memset(&p[i], 0, sizeof(p[i]));
		p[i].dom = r->dom;
		p[i].max_pages = slots * PG_PER_2M;
		p[i].max_4k = p[i].max_pages;
		p[i].max_2m = slots;
		p[i].max_1g = r->gig ? 1 : 0;
		p[i].pause_us = getenv("A26_POLL_US") ? (unsigned)atoi(getenv("A26_POLL_US")) : 0;
		p[i].seed = test_rand(&g_seed) | 1;
	}
}

static void rig_start(struct rig *r)
{
	for (int k = 0; k < 2; k++) {
		r->c[k] = child_start(worker_main, &r->w[k]);
		CHECK_EQ(get64(r->c[k].rd), r->c[k].pid);
	}
}

static void rig_go(struct rig *r)
{
	for (int k = 0; k < 2; k++)
		put64(r->c[k].wr, 0);
}

/* The survivor (A) takes what is left: the whole window, a flush; nothing is left. */
static void rig_down(struct rig *r, const char *when)
{
	struct iovm_domain_stats st;
	struct walk wk;
	int ret;

	ret = iovm_domain_unmap(r->dom, IOVM_IOVA(WIN), WIN_SIZE);
	CHECK_MSG(ret == 0 || ret == -ENOENT, "%s: the survivor's unmap of the window: %d (%s)", when, ret,
		  iovm_error_detail());
	CHECK_OK(iovm_domain_flush(r->dom));
	wk = walk_all(r->dom, r->gig);
	CHECK_MSG(wk.pages == 0, "%s: %llu pages translate after the survivor's unmap of the window", when,
		  (unsigned long long)wk.pages);
	st = stats(r->dom);
	CHECK_MSG(st.leaves_4k + st.leaves_2m + st.leaves_1g == 0,
		  "%s: after the survivor's unmap of the whole window and a flush: leaves_4k %llu, leaves_2m %llu, "
		  "leaves_1g %llu (tables %llu, iova_allocated %llu, pending %llu)",
		  when, (unsigned long long)st.leaves_4k, (unsigned long long)st.leaves_2m,
		  (unsigned long long)st.leaves_1g, (unsigned long long)st.tables,
		  (unsigned long long)st.iova_allocated, (unsigned long long)st.pending_unmaps);
	CHECK_EQ(st.pending_unmaps, 0);
	ret = iovm_share_check(r->ctx);
	CHECK_MSG(ret == 0, "%s: iovm_share_check: %d: %s", when, ret, iovm_error_detail());
	CHECK_OK(iovm_domain_destroy(r->dom));
	CHECK_OK(iovm_dma_free(r->ctx, r->small));
	for (int i = 0; i < 4; i++)
		CHECK_OK(iovm_dma_free(r->ctx, r->big[i]));
	CHECK_OK(iovm_dma_free(r->ctx, r->big4));
	ret = iovm_share_check(r->ctx);
	CHECK_MSG(ret == 0, "%s: iovm_share_check after the domain went: %d: %s", when, ret, iovm_error_detail());
	CHECK_MSG(share_info(r->ctx).domain_held == 0, "%s: %llu bytes held after the domain went", when,
		  (unsigned long long)share_info(r->ctx).domain_held);
	CHECK_OK(iovm_close(r->ctx));
}

/* The 1 GiB leaf is one: A maps it, the stats and the walk say so, A unmaps it. */
static void one_gig_leaf(struct rig *r)
{
	iovm_iova_t at = IOVM_IOVA(RGIG);
	struct iovm_domain_stats st;
	int ret = iovm_domain_map(r->dom, &at, IOVM_PA(r->w[1].gig_pa), G1, IOVM_MAP_READ | IOVM_MAP_WRITE);

	CHECK_MSG(ret == 0, "map 1 GiB of free heap at PA %#llx: %d: %s", (unsigned long long)r->w[1].gig_pa, ret,
		  iovm_error_detail());
	st = stats(r->dom);
	CHECK_MSG(st.leaves_1g == 1 && st.leaves_2m == 0 && st.leaves_4k == 0,
		  "1 GiB at a 1 GiB aligned IOVA and PA: leaves_1g %llu, leaves_2m %llu, leaves_4k %llu",
		  (unsigned long long)st.leaves_1g, (unsigned long long)st.leaves_2m, (unsigned long long)st.leaves_4k);
	stats_match_walk(r->dom, true, true, "one 1 GiB leaf");
	/* One page out of it: 511 2 MiB leaves and 511 4 KiB ones. */
	CHECK_OK(iovm_domain_unmap(r->dom, IOVM_IOVA(RGIG + 300 * M2 + 7 * K4), K4));
	st = stats(r->dom);
	CHECK_MSG(st.leaves_1g == 0 && st.leaves_2m == 511 && st.leaves_4k == 511,
		  "1 GiB leaf less one page: leaves_1g %llu, leaves_2m %llu, leaves_4k %llu",
		  (unsigned long long)st.leaves_1g, (unsigned long long)st.leaves_2m, (unsigned long long)st.leaves_4k);
	stats_match_walk(r->dom, true, true, "a 1 GiB leaf less a page");
	CHECK_OK(iovm_domain_unmap(r->dom, IOVM_IOVA(RGIG), G1));
	CHECK_OK(iovm_domain_flush(r->dom));
	st = stats(r->dom);
	CHECK_EQ(st.leaves_4k + st.leaves_2m + st.leaves_1g, 0);
}

/*
 * B and C run for @ms while @npoll threads of A poll; then they stop,
 * flush, and the stats must equal the walk exactly; then they unmap their
 * regions and flush: zero, from every view.
 */
static uint64_t hammer_ex(bool deferred, bool gig, unsigned ms, unsigned npoll, bool tight, const char *what)
{
	struct poller p[3];
	uint64_t ops[2], peak = 0, max_ns = 0, polls = 0;
	struct rig r;
	char when[128];

	memset(p, 0, sizeof(p));
	if (getenv("A26_NPOLL"))
		npoll = (unsigned)atoi(getenv("A26_NPOLL"));
	snprintf(when, sizeof(when), "%s (%s%s, %u pollers)", what, deferred ? "deferred" : "strict", gig ? ", 1 GiB" : "",
		 npoll);
	rig_up(&r, deferred, gig);
	if (gig)
		one_gig_leaf(&r);
	rig_pollers(&r, p, npoll);
	for (unsigned i = 0; i < npoll; i++)
		p[i].tight = tight || getenv("A26_TIGHT");
	rig_start(&r);
	poll_start(p, npoll);
	rig_go(&r);
	nap_ms(ms);
	for (int k = 0; k < 2; k++)
		put64(r.c[k].wr, CMD_STOP);
	for (int k = 0; k < 2; k++)
		ops[k] = get64(r.c[k].rd);
	poll_stop(p, npoll, when);
	for (unsigned i = 0; i < npoll; i++) {
		polls += p[i].polls;
		peak = p[i].peak_pages > peak ? p[i].peak_pages : peak;
		max_ns = p[i].max_ns > max_ns ? p[i].max_ns : max_ns;
	}
	printf("# %s: %llu + %llu ops, %llu polls (slowest %.1f ms), peak %llu pages, 2 MiB %llu, 1 GiB %llu\n",
	       when, (unsigned long long)ops[0], (unsigned long long)ops[1], (unsigned long long)polls,
	       max_ns / 1e6, (unsigned long long)peak, (unsigned long long)p[0].peak_2m,
	       (unsigned long long)p[0].peak_1g);
	CHECK(ops[0] > 0 && ops[1] > 0);
	stats_match_walk(r.dom, gig, true, when);
	/* Everything unmapped by its mapper, every process flushed: zero, in every view. */
	for (int k = 0; k < 2; k++)
		put64(r.c[k].wr, CMD_CLEAN);
	for (int k = 0; k < 2; k++) {
		uint64_t left = get64(r.c[k].rd);

		/* The other may not have unmapped yet: only the last answer must see nothing. */
		(void)left;
	}
	{
		struct iovm_domain_stats st = stats(r.dom);

		CHECK_MSG(st.leaves_4k + st.leaves_2m + st.leaves_1g == 0,
			  "%s: every process unmapped its region and flushed: leaves_4k %llu, leaves_2m %llu, "
			  "leaves_1g %llu", when, (unsigned long long)st.leaves_4k,
			  (unsigned long long)st.leaves_2m, (unsigned long long)st.leaves_1g);
	}
	CHECK_EQ(walk_all(r.dom, gig).pages, 0);
	for (int k = 0; k < 2; k++) {
		put64(r.c[k].wr, CMD_CLOSE);
		CHECK_EQ(get64(r.c[k].rd), 0);
		child_ok(&r.c[k]);
	}
	WAIT_UNTIL(share_info(r.ctx).processes == 1);
	rig_down(&r, when);
	return ops[0] + ops[1];
}

static void hammer(bool deferred, bool gig, unsigned ms, unsigned npoll, const char *what)
{
	(void)hammer_ex(deferred, gig, ms, npoll, false, what);
}

/*
 * B and C killed at random moments (each within @ms of the start) while
 * A polls; after the reap the stats equal the walk; the survivor's
 * unmap of the window and flush leave nothing.
 */
static void killed(bool deferred, bool gig, unsigned ms, const char *what, unsigned round, unsigned *ambiguous)
{
	struct poller p[1];
	struct rig r;
	char when[160];
	unsigned t0, t1;
	int ret;

	t0 = 1 + (unsigned)(test_rand(&g_seed) % ms);
	t1 = (unsigned)(test_rand(&g_seed) % ms);
	snprintf(when, sizeof(when), "%s round %u (%s%s, kills at %u and %u ms more)", what, round,
		 deferred ? "deferred" : "strict", gig ? ", 1 GiB" : "", t0, t1);
	rig_up(&r, deferred, gig);
	rig_pollers(&r, p, 1);
	rig_start(&r);
	poll_start(p, 1);
	rig_go(&r);
	nap_ms(t0);
	CHECK_OK(kill(r.c[0].pid, SIGKILL));
	nap_ms(t1);
	CHECK_OK(kill(r.c[1].pid, SIGKILL));
	for (int k = 0; k < 2; k++) {
		ret = child_wait(&r.c[k]);
		CHECK_MSG(ret == -SIGKILL, "%s: worker %d ended with %d, not killed", when, k, ret);
	}
	WAIT_UNTIL(share_info(r.ctx).processes == 1);
	poll_stop(p, 1, when);
	ret = iovm_share_check(r.ctx);
	CHECK_MSG(ret == 0, "%s: iovm_share_check after the deaths: %d: %s", when, ret, iovm_error_detail());
	/* Before anyone touches the domain: the stats count what the table holds. */
	*ambiguous += stats_match_walk(r.dom, gig, false, when);
	/* A flush (reaps what they left in flight): still what the table holds. */
	CHECK_OK(iovm_domain_flush(r.dom));
	stats_match_walk(r.dom, gig, false, when);
	rig_down(&r, when);
}

/*
 * A process that calls iovm_domain_stats() back to back (D) killed at a
 * random moment while B maps and unmaps: B goes on (nobody waits for the
 * dead walker), and the stats are exact once B stops.
 */
static void killed_poller(bool deferred, unsigned ms, unsigned round)
{
	struct poller p[1];
	uint64_t ops;
	struct rig r;
	char when[160];
	unsigned t0;
	int ret;

	t0 = 1 + (unsigned)(test_rand(&g_seed) % ms);
	snprintf(when, sizeof(when), "poller killed round %u (%s, at %u ms)", round, deferred ? "deferred" : "strict",
		 t0);
	rig_up(&r, deferred, false);
	r.w[1].poll_only = true;
	rig_pollers(&r, p, 1);
	rig_start(&r);
	poll_start(p, 1);
	rig_go(&r);
	nap_ms(t0);
	CHECK_OK(kill(r.c[1].pid, SIGKILL));
	ret = child_wait(&r.c[1]);
	CHECK_MSG(ret == -SIGKILL, "%s: the polling process ended with %d, not killed", when, ret);
	WAIT_UNTIL(share_info(r.ctx).processes == 2);
	nap_ms(50);
	/* B answers only between two of its ops: it was not left waiting on the dead. */
	put64(r.c[0].wr, CMD_STOP);
	ops = get64(r.c[0].rd);
	poll_stop(p, 1, when);
	CHECK(ops > 0);
	ret = iovm_share_check(r.ctx);
	CHECK_MSG(ret == 0, "%s: iovm_share_check after the death: %d: %s", when, ret, iovm_error_detail());
	stats_match_walk(r.dom, false, true, when);
	put64(r.c[0].wr, CMD_CLEAN);
	(void)get64(r.c[0].rd);
	CHECK_EQ(walk_all(r.dom, false).pages, 0);
	CHECK_EQ(stats(r.dom).leaves_4k + stats(r.dom).leaves_2m, 0);
	put64(r.c[0].wr, CMD_CLOSE);
	CHECK_EQ(get64(r.c[0].rd), 0);
	child_ok(&r.c[0]);
	WAIT_UNTIL(share_info(r.ctx).processes == 1);
	rig_down(&r, when);
}

static unsigned rounds(unsigned n)
{
	const char *e = getenv("A26_ROUNDS");

	return n * (e && atoi(e) > 0 ? (unsigned)atoi(e) : 1);
}

/* ---------------------------------------------------------------- cases */

TEST(stats_hammered_while_two_processes_churn)
{
	hammer(false, false, 1500, 2, "hammered");
	hammer(true, false, 1500, 2, "hammered");
}

TEST(stats_hammered_with_a_1g_leaf_split_and_remapped)
{
	hammer(false, true, 1500, 1, "1 GiB");
	hammer(true, true, 1500, 1, "1 GiB");
}

TEST(killed_mid_map_unmap_strict)
{
	unsigned amb = 0, n = rounds(6);

	for (unsigned i = 0; i < n; i++)
		killed(false, false, 60, "killed", i, &amb);
	printf("# %u of %u rounds left leaves whose size the layout cannot tell\n", amb, n);
}

TEST(killed_mid_map_unmap_deferred)
{
	unsigned amb = 0, n = rounds(6);

	for (unsigned i = 0; i < n; i++)
		killed(true, false, 60, "killed", i, &amb);
	printf("# %u of %u rounds left leaves whose size the layout cannot tell\n", amb, n);
}

TEST(killed_mid_map_unmap_1g)
{
	unsigned amb = 0, n = rounds(2);

	for (unsigned i = 0; i < n; i++) {
		killed(false, true, 80, "killed", i, &amb);
		killed(true, true, 80, "killed", i, &amb);
	}
	printf("# %u of %u rounds left leaves whose size the layout cannot tell\n", amb, 2 * n);
}

TEST(polling_process_killed)
{
	unsigned n = rounds(3);

	for (unsigned i = 0; i < n; i++) {
		killed_poller(false, 50, i);
		killed_poller(true, 50, i);
	}
}

TEST(one_cpu)
{
	cpu_set_t old, one;
	unsigned amb = 0, n = rounds(2);

	CHECK_EQ(sched_getaffinity(0, sizeof(old), &old), 0);
	CPU_ZERO(&one);
	CPU_SET(0, &one);
	if (sched_setaffinity(0, sizeof(one), &one))
		SKIP_CASE("sched_setaffinity: %s", strerror(errno));
	hammer(false, false, 1000, 1, "one CPU");
	hammer(true, false, 1000, 2, "one CPU");
	for (unsigned i = 0; i < n; i++) {
		killed(false, false, 40, "one CPU", i, &amb);
		killed(true, false, 40, "one CPU", i, &amb);
	}
	CHECK_EQ(sched_setaffinity(0, sizeof(old), &old), 0);
}

/*
 * A thread that calls iovm_domain_stats() back to back: the other
 * processes' maps and unmaps should go on at a fair share of their pace,
 * not stop. (Seen: 16 to 48 ops in 1.5 s against some 40000 with no
 * poller, on 2 CPUs; two such pollers wait up to 3 s for one call. Since
 * 2026-12-07 the count walks without an epoch section, and strict unmaps
 * no longer wait for it: 13% to 31% of the pace with no poller, in 7 runs
 * beside other work.) Runs only with IOVM_ATTACK26_KNOWN=1: its check is
 * a ratio of two rates, which the machine's load moves.
 */
TEST(tight_poller_starves_other_processes)
{
	uint64_t free_ops, polled_ops;

	if (!getenv("IOVM_ATTACK26_KNOWN"))
		SKIP_CASE("known starvation: IOVM_ATTACK26_KNOWN=1 runs it");
	free_ops = hammer_ex(false, false, 1500, 0, true, "no poller");
	polled_ops = hammer_ex(false, false, 1500, 1, true, "one tight poller");
	printf("# %llu ops with no poller, %llu with one back-to-back poller\n", (unsigned long long)free_ops,
	       (unsigned long long)polled_ops);
	CHECK_MSG(polled_ops * 10 >= free_ops,
		  "a thread calling iovm_domain_stats() back to back starves the other processes: %llu map/unmap "
		  "ops in 1.5 s, against %llu with nobody polling", (unsigned long long)polled_ops,
		  (unsigned long long)free_ops);
}

int main(void)
{
	const char *s = getenv("A26_SEED");

	test_init();
	g_seed = s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
	g_seed |= 1;
	printf("# seed %#llx (A26_SEED)\n", (unsigned long long)g_seed);
	signal(SIGALRM, hung);
	alarm(280);
	RUN(stats_hammered_while_two_processes_churn);
	if (getenv("A26_ONLY_HAMMER"))
		return 0;
	RUN(stats_hammered_with_a_1g_leaf_split_and_remapped);
	RUN(killed_mid_map_unmap_strict);
	RUN(killed_mid_map_unmap_deferred);
	RUN(killed_mid_map_unmap_1g);
	RUN(polling_process_killed);
	RUN(one_cpu);
	RUN(tight_poller_starves_other_processes);
	return 0;
}
