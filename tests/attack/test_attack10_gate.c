/* SPDX-License-Identifier: MIT */
/*
 * test_attack10_gate.c - the gate of an MR mapped on a device process
 * (iovm/mp.h, iovm_rqueue_map_mr(): "from the moment such a call
 * [munmap(), mremap(), madvise()] returns, no device access through @mr
 * lands anywhere: neither in the old pages nor in memory mapped anew at
 * their addresses").
 *
 * How a stray access is told from a legitimate one: page requests are
 * answered only in iovm_rqueue_reap(). The client's reaper holds a lock
 * around each reap; a racer thread takes that lock, replaces a page of the
 * MR (munmap + mmap, mmap MAP_FIXED, mremap MREMAP_FIXED over it,
 * MADV_DONTNEED or MADV_DONTNEED_LOCKED), writes a marker unique to the
 * round into the new page once the call returned (zeros for DONTNEED), and
 * keeps the lock for a few milliseconds while dozens of descriptors
 * (COPY, FILL, DUALCAST, SCATTER, GATHER, COMPARE, with completion records
 * in the shared heap) are in flight over the MR. No page request can be
 * answered meanwhile, so any device access to the new page in that window
 * went through the old mapping: the new page must keep its marker, and no
 * destination in the heap may receive it. A pinned MR never takes new
 * pages at all: its replaced pages keep their markers to the end.
 * Variants: on-demand, pinned, two MRs over the same memory (one pinned,
 * one on demand), two queues, two client processes on one device process.
 */
#include "attack/attack10.h"

#define NP 256            /* pages of the memory under the MRs: 16 pieces */
#define SLOTS 32          /* heap destination slots, 16 KiB each */
#define SLOT (16 * 1024)
#define LISTS (512 * 1024) /* heap offset of the scatter/gather lists */
#define MARK 0xc0de000000000000ull
#define MIN_OK 100        /* descriptors completed, at least, for a race to count as tried */

enum { OP_MUNMAP = 1, OP_FIXED = 2, OP_MREMAP = 4, OP_DONTNEED = 8, OP_DONTNEED_LOCKED = 16 };

struct gcfg {
	const char *tag;
	uint32_t access[2]; /* the MRs' access; [1] 0: one MR */
	unsigned nq;        /* queues: 1 or 2 */
	unsigned ops;       /* OP_* the racer uses */
	double seconds;
	uint64_t seed;
};

struct gres {
	uint64_t windows, wrote_new, read_new, dontneed_dirty, pinned_final_bad;
	uint64_t descs, faults, ok;
	double max_call_s;
};

struct grig {
	const struct gcfg *cfg;
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	struct iovm_rqueue *q[2];
	uint8_t *heap;
	struct iovm_completion *rec;
	iovm_iova_t ih[2], ir[2];
	uint8_t *app;
	struct iovm_mr *mr[2];
	size_t mr_off[2], mr_np[2]; /* pages from app, pages */
	iovm_iova_t io[2][2];       /* [queue][mr] */
	unsigned nmr;
	bool all_pinned;
	pthread_mutex_t mx;
	_Atomic int want, stop;
	uint64_t inflight[2];
	uint64_t busy[2]; /* per queue: slots (records, lists) of descriptors in flight */
	struct gres res;
	uint64_t *page_mark; /* pinned: the marker each replaced page must keep (0: not replaced, 1: zeros) */
};

static uint64_t tagseq;
static struct iovm_desc sent[128];

static void reap_some(struct grig *g, unsigned qi)
{
	struct iovm_cqe cqe[16];
	int n = iovm_rqueue_reap(g->q[qi], cqe, 16);

	CHECK_MSG(n >= 0, "reap: %d", n);
	for (int i = 0; i < n; i++) {
		g->inflight[qi]--;
		g->busy[qi] &= ~(1ull << (cqe[i].tag & 63));
		if (cqe[i].status == IOVM_STATUS_PAGE_FAULT) {
			unsigned rs = (unsigned)(((cqe[i].tag >> 7) & 1) * 64 + (cqe[i].tag & 63));
			struct iovm_completion *c = (struct iovm_completion *)((uint8_t *)g->rec + rs * 32);

			if (!g->all_pinned && g->res.faults < 5)
				printf("# %s: on-demand descriptor op %u faulted: bytes %u of %u, fault at %#llx (reason %u, access %u)\n",
				       g->cfg->tag, sent[rs].op, c->bytes_completed, sent[rs].len,
				       (unsigned long long)c->fault_addr, c->fault_reason, c->fault_access);
			g->res.faults++;
		}
		else if (cqe[i].status == IOVM_STATUS_SUCCESS)
			g->res.ok++;
		else {
			unsigned rs = (unsigned)(((cqe[i].tag >> 7) & 1) * 64 + (cqe[i].tag & 63));
			struct iovm_sge *l = (struct iovm_sge *)(g->heap + LISTS + (size_t)rs * 64);
			struct iovm_completion *c = (struct iovm_completion *)((uint8_t *)g->rec + rs * 32);

			printf("# list %#llx+%u %#llx+%u %#llx+%u; mr iovas %#llx %#llx / %#llx %#llx; rec status %u fault %#llx reason %u\n",
			       (unsigned long long)l[0].iova, l[0].len, (unsigned long long)l[1].iova, l[1].len,
			       (unsigned long long)l[2].iova, l[2].len, (unsigned long long)g->io[0][0].addr,
			       (unsigned long long)g->io[0][1].addr, (unsigned long long)g->io[1][0].addr,
			       (unsigned long long)g->io[1][1].addr, c->status, (unsigned long long)c->fault_addr, c->fault_reason);
		}
		if (cqe[i].status != IOVM_STATUS_SUCCESS && cqe[i].status != IOVM_STATUS_PAGE_FAULT)
			CHECK_MSG(cqe[i].status == IOVM_STATUS_SUCCESS, "descriptor status %u (queue %u, tag %#llx, ok so far %llu): op %u len %u src %#llx dst %#llx dst2 %#llx sg %u",
				  cqe[i].status, qi, (unsigned long long)cqe[i].tag, (unsigned long long)g->res.ok, sent[((cqe[i].tag >> 7) & 1) * 64 + (cqe[i].tag & 63)].op, sent[((cqe[i].tag >> 7) & 1) * 64 + (cqe[i].tag & 63)].len,
				  (unsigned long long)sent[((cqe[i].tag >> 7) & 1) * 64 + (cqe[i].tag & 63)].src, (unsigned long long)sent[((cqe[i].tag >> 7) & 1) * 64 + (cqe[i].tag & 63)].dst,
				  (unsigned long long)sent[((cqe[i].tag >> 7) & 1) * 64 + (cqe[i].tag & 63)].dst2, sent[((cqe[i].tag >> 7) & 1) * 64 + (cqe[i].tag & 63)].sg_count);
	}
}

/* A random range of MR @k: its IOVA on queue @qi, at most @maxlen bytes. */
static uint64_t pick(struct grig *g, uint64_t *s, unsigned qi, unsigned k, uint32_t *len)
{
	size_t span = g->mr_np[k] * A9_PAGE;
	uint32_t l = (uint32_t)(1 + a9_rng(s) % (SLOT / 3));
	size_t off = a9_rng(s) % (span - l);

	*len = l;
	return g->io[qi][k].addr + off;
}

static void submit_one(struct grig *g, uint64_t *s, unsigned qi)
{
	unsigned k = (unsigned)(a9_rng(s) % g->nmr), k2 = (unsigned)(a9_rng(s) % g->nmr);
	unsigned fs = (unsigned)__builtin_ctzll(~g->busy[qi]);
	uint64_t tag = (++tagseq << 8) | ((uint64_t)qi << 7) | fs;
	unsigned slot = (unsigned)(tagseq % SLOTS), rs = qi * 64 + fs;
	uint64_t hslot = g->ih[qi].addr + (uint64_t)slot * SLOT;
	struct iovm_sge *list = (struct iovm_sge *)(g->heap + LISTS + (size_t)rs * 64);
	uint64_t list_iova = g->ih[qi].addr + LISTS + (uint64_t)rs * 64;
	struct iovm_desc d = { .tag = tag, .flags = IOVM_DESC_COMPLETION, .completion = g->ir[qi].addr + rs * 32 };
	uint32_t len, l2;
	int ret;

	switch (a9_rng(s) % 7) {
	case 0:
		d.op = IOVM_OP_FILL;
		d.dst = pick(g, s, qi, k, &d.len);
		d.pattern = 0x0101010101010101ull * (0x40 + a9_rng(s) % 16);
		break;
	case 1:
		d.op = IOVM_OP_COPY;
		d.src = pick(g, s, qi, k, &d.len);
		d.dst = hslot;
		break;
	case 2:
		d.op = IOVM_OP_COPY;
		d.dst = pick(g, s, qi, k, &d.len);
		d.src = hslot;
		break;
	case 3:
		d.op = IOVM_OP_DUALCAST;
		d.dst = pick(g, s, qi, k, &len);
		d.dst2 = pick(g, s, qi, k2, &l2);
		d.len = len < l2 ? len : l2;
		d.src = hslot;
		break;
	case 4:
	case 5: {
		uint32_t total = 0;

		for (unsigned e = 0; e < 3; e++) {
			list[e].iova = pick(g, s, qi, (unsigned)(a9_rng(s) % g->nmr), &list[e].len);
			list[e].key = 0;
			total += list[e].len;
		}
		d.op = (a9_rng(s) & 1) ? IOVM_OP_SCATTER : IOVM_OP_GATHER;
		d.sg_count = 3;
		d.src = d.op == IOVM_OP_GATHER ? list_iova : hslot;
		d.dst = d.op == IOVM_OP_GATHER ? hslot : list_iova;
		d.len = total;
		break;
	}
	default:
		d.op = IOVM_OP_COMPARE;
		d.src = pick(g, s, qi, k, &d.len);
		d.dst = hslot;
		break;
	}
	sent[rs] = d;
	ret = iovm_rqueue_submit(g->q[qi], &d);
	if (ret == -EAGAIN)
		return;
	CHECK_OK(ret);
	g->busy[qi] |= 1ull << fs;
	g->inflight[qi]++;
	g->res.descs++;
}

static uint64_t mark_of(uint64_t round)
{
	return MARK | (round & 0xffffffffffull);
}

static void fill_mark(uint8_t *p, size_t len, uint64_t m)
{
	for (size_t i = 0; i < len; i += 8)
		memcpy(p + i, &m, 8);
}

static bool all_mark(const uint8_t *p, size_t len, uint64_t m)
{
	for (size_t i = 0; i < len; i += 8)
		if (memcmp(p + i, &m, 8))
			return false;
	return true;
}

/* Whether the heap's destinations hold @m (or, @any, any marker) in an 8-byte word at any byte offset. */
static long heap_at = -1;

static bool heap_has(const uint8_t *h, uint64_t m, bool any)
{
	for (size_t i = 0; i + 8 <= SLOTS * SLOT; i++) {
		uint64_t w;

		if (h[i] != (uint8_t)m && !any)
			continue;
		memcpy(&w, h + i, 8);
		if (any ? (w >> 40) == (MARK >> 40) : w == m) {
			heap_at = (long)i;
			return true;
		}
	}
	return false;
}

static void *racer(void *arg)
{
	struct grig *g = arg;
	uint64_t s = g->cfg->seed * 7 + 1, round = 0;
	unsigned ops[8], nops = 0;

	for (unsigned b = 1; b <= OP_DONTNEED_LOCKED; b <<= 1)
		if (g->cfg->ops & b)
			ops[nops++] = b;
	while (!atomic_load(&g->stop)) {
		if (!nops) {
			usleep(1000);
			continue;
		}
		unsigned op = ops[a9_rng(&s) % nops];
		size_t npg = 1 + a9_rng(&s) % 2, pg = a9_rng(&s) % (NP - npg);
		uint8_t *p = g->app + pg * A9_PAGE;
		size_t len = npg * A9_PAGE;
		uint64_t m = mark_of(++round);
		uint8_t *spare = NULL;
		double t0, dt;

		usleep((useconds_t)(200 + a9_rng(&s) % 2000));
		if (op == OP_MREMAP) {
			spare = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			CHECK(spare != MAP_FAILED);
			/* not the marker: the device may read the moved page until mremap() returns */
			fill_mark(spare, len, 0xbeef000000000000ull | round);
		}
		atomic_store(&g->want, 1);
		pthread_mutex_lock(&g->mx);
		atomic_store(&g->want, 0);
		memset(g->heap, 0, SLOTS * SLOT);
		t0 = a9_now();
		switch (op) {
		case OP_MUNMAP:
			CHECK_OK(munmap(p, len));
			dt = a9_now() - t0;
			CHECK(mmap(p, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) == p);
			break;
		case OP_FIXED:
			CHECK(mmap(p, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == p);
			dt = a9_now() - t0;
			break;
		case OP_MREMAP:
			CHECK(mremap(spare, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, p) == p);
			dt = a9_now() - t0;
			break;
		case OP_DONTNEED:
			CHECK_OK(madvise(p, len, MADV_DONTNEED));
			dt = a9_now() - t0;
			break;
		default:
			CHECK_OK(madvise(p, len, MADV_DONTNEED_LOCKED));
			dt = a9_now() - t0;
			break;
		}
		if (dt > g->res.max_call_s)
			g->res.max_call_s = dt;
		/* what landed while the call ran may stay in the new page: start over from here */
		if (op == OP_DONTNEED || op == OP_DONTNEED_LOCKED)
			memset(p, 0, len);
		else
			fill_mark(p, len, m);
		uint64_t f0 = a9_stats(g->ctx).odp_faults;

		usleep(4000); /* descriptors in flight go on; no page request is answered */
		g->res.windows++;
		if (op == OP_DONTNEED || op == OP_DONTNEED_LOCKED) {
			if (!a9_all(p, 0, len)) {
				g->res.dontneed_dirty++;
				if (g->res.dontneed_dirty < 4)
					printf("# %s round %llu: page %zu after madvise: device wrote %#x at +%ld\n", g->cfg->tag,
					       (unsigned long long)round, pg, p[a9_diff(p, (uint8_t[A9_PAGE * 2]){ 0 }, len)],
					       a9_diff(p, (uint8_t[A9_PAGE * 2]){ 0 }, len));
			}
		} else if (!all_mark(p, len, m)) {
			g->res.wrote_new++;
			if (g->res.wrote_new < 4)
				printf("# %s round %llu op %u: new page %zu written by the device after the call returned\n",
				       g->cfg->tag, (unsigned long long)round, op, pg);
		}
		if (heap_has(g->heap, m, false)) {
			g->res.read_new++;
			if (g->res.read_new < 4)
				printf("# %s round %llu op %u page %zu+%zu: the new page's marker %#llx read by the device: heap +%#lx "
				       "(odp_faults answered in the window, no reaper running: %llu)\n",
				       g->cfg->tag, (unsigned long long)round, op, pg, npg, (unsigned long long)m,
				       (unsigned long)heap_at, (unsigned long long)(a9_stats(g->ctx).odp_faults - f0));
		}
		if (g->all_pinned) {
			for (size_t i = 0; i < npg; i++)
				g->page_mark[pg + i] = (op == OP_DONTNEED_LOCKED) ? 1 : m;
			if (heap_has(g->heap, 0, true)) {
				g->res.read_new++;
				printf("# %s round %llu: a pinned MR's device read some new page's marker\n", g->cfg->tag,
				       (unsigned long long)round);
			}
		}
		pthread_mutex_unlock(&g->mx);
	}
	return NULL;
}

/* One client: attach, map, race for cfg->seconds, unmap, close. */
static struct gres gate_client(const struct gcfg *cfg)
{
	struct iovm_domain_attr attr = { .type = IOVM_DOMAIN_MANAGED };
	struct grig *g = calloc(1, sizeof(*g));
	uint64_t s = cfg->seed;
	pthread_t th;
	struct gres res;
	int ret;

	CHECK(g);
	g->cfg = cfg;
	g->page_mark = calloc(NP, sizeof(uint64_t));
	pthread_mutex_init(&g->mx, NULL);
	ret = iovm_attach(g_share, "", &g->ctx);
	CHECK_MSG(ret == 0, "attach: %s", iovm_error_detail());
	a9_diag_ctx = g->ctx;
	CHECK_OK(iovm_domain_create(g->ctx, &attr, &g->dom));
	g->heap = iovm_dma_zalloc(g->ctx, 1 << 20, 4096, 0);
	g->rec = iovm_dma_zalloc(g->ctx, 4096, 4096, 0);
	CHECK(g->heap && g->rec);
	g->app = a9_pages_64k(NP);
	memset(g->app, 0x21, NP * A9_PAGE);
	g->nmr = cfg->access[1] ? 2 : 1;
	g->mr_off[0] = 0;
	g->mr_np[0] = NP;
	g->mr_off[1] = 3;
	g->mr_np[1] = NP - 5;
	g->all_pinned = true;
	for (unsigned k = 0; k < g->nmr; k++) {
		CHECK_OK(iovm_mr_reg(g->dom, g->app + g->mr_off[k] * A9_PAGE, g->mr_np[k] * A9_PAGE, cfg->access[k], &g->mr[k]));
		if (cfg->access[k] & IOVM_ACCESS_ON_DEMAND)
			g->all_pinned = false;
	}
	if (!a9_stats(g->ctx).monitor) {
		printf("# SKIP-CLIENT: no memory monitor (userfaultfd)\n");
		memset(&res, 0, sizeof(res));
		res.windows = UINT64_MAX;
		for (unsigned k = 0; k < g->nmr; k++)
			CHECK_OK(iovm_mr_dereg(g->mr[k]));
		CHECK_OK(iovm_domain_destroy(g->dom));
		CHECK_OK(iovm_close(g->ctx));
		return res;
	}
	for (unsigned qi = 0; qi < cfg->nq; qi++) {
		CHECK_OK(iovm_rqueue_open(g->ctx, g_dev, 64, &g->q[qi]));
		CHECK_OK(iovm_rqueue_map(g->q[qi], g->heap, 1 << 20, RW, &g->ih[qi]));
		CHECK_OK(iovm_rqueue_map(g->q[qi], g->rec, 4096, RW, &g->ir[qi]));
		for (unsigned k = 0; k < g->nmr; k++)
			CHECK_OK(iovm_rqueue_map_mr(g->q[qi], g->mr[k], RW, &g->io[qi][k]));
	}
	CHECK_OK(pthread_create(&th, NULL, racer, g));
	double t0 = a9_now(), last_progress = a9_now();
	uint64_t done_before = 0;

	/*
	 * For cfg->seconds, and on until enough descriptors completed for the
	 * race to have been tried (check_res()): a loaded machine runs fewer
	 * in the time. Never past 12 times as long: the checks then say what
	 * was too little.
	 */
	while (a9_now() - t0 < cfg->seconds || (g->res.ok <= MIN_OK && a9_now() - t0 < 12 * cfg->seconds)) {
		while (atomic_load(&g->want))
			sched_yield();
		pthread_mutex_lock(&g->mx);
		for (unsigned qi = 0; qi < cfg->nq; qi++) {
			while (g->inflight[qi] < 24)
				submit_one(g, &s, qi);
			reap_some(g, qi);
		}
		pthread_mutex_unlock(&g->mx);
		if (g->res.ok + g->res.faults != done_before) {
			done_before = g->res.ok + g->res.faults;
			last_progress = a9_now();
		}
		CHECK_MSG(a9_now() - last_progress < 60, "%s: no descriptor completed for 60 s (a hang)", cfg->tag);
	}
	atomic_store(&g->stop, 1);
	pthread_join(th, NULL);
	/* drain, with a deadline */
	last_progress = a9_now();
	for (unsigned qi = 0; qi < cfg->nq; qi++)
		while (g->inflight[qi]) {
			uint64_t before = g->inflight[qi];

			reap_some(g, qi);
			if (g->inflight[qi] != before)
				last_progress = a9_now();
			CHECK_MSG(a9_now() - last_progress < 60, "%s: %llu descriptors hang", cfg->tag,
				  (unsigned long long)g->inflight[qi]);
			usleep(50);
		}
	if (g->all_pinned) {
		for (size_t pg = 0; pg < NP; pg++) {
			uint8_t *p = g->app + pg * A9_PAGE;

			if (g->page_mark[pg] == 1 ? !a9_all(p, 0, A9_PAGE)
						  : g->page_mark[pg] && !all_mark(p, A9_PAGE, g->page_mark[pg]))
				g->res.pinned_final_bad++;
		}
	}
	for (unsigned qi = 0; qi < cfg->nq; qi++) {
		for (unsigned k = 0; k < g->nmr; k++)
			CHECK_OK(iovm_rqueue_unmap_mr(g->q[qi], g->mr[k]));
		CHECK_OK(iovm_rqueue_close(g->q[qi]));
	}
	for (unsigned k = 0; k < g->nmr; k++)
		CHECK_OK(iovm_mr_dereg(g->mr[k]));
	CHECK_OK(iovm_domain_destroy(g->dom));
	CHECK_OK(iovm_close(g->ctx));
	CHECK_OK(munmap(g->app, NP * A9_PAGE));
	res = g->res;
	printf("# %s (pid %d): %llu windows, %llu descriptors (%llu ok, %llu faulted); new memory written %llu, "
	       "marker read %llu, dontneed pages dirtied %llu, pinned pages changed at the end %llu; longest call %.3f s\n",
	       cfg->tag, (int)getpid(), (unsigned long long)res.windows, (unsigned long long)res.descs,
	       (unsigned long long)res.ok, (unsigned long long)res.faults, (unsigned long long)res.wrote_new,
	       (unsigned long long)res.read_new, (unsigned long long)res.dontneed_dirty,
	       (unsigned long long)res.pinned_final_bad, res.max_call_s);
	free(g->page_mark);
	free(g);
	return res;
}

static bool strict_read;

static void check_res(struct gres res)
{
	CHECK(res.windows > 10);
	CHECK(res.ok > MIN_OK);
	CHECK_EQ(res.wrote_new, 0);
	if (strict_read)
		CHECK_EQ(res.read_new, 0);
	else if (res.read_new)
		printf("# known bug, not asserted here (gate_stale_read asserts it with IOVM_ATTACK10_KNOWN=1): the device "
		       "read memory mapped anew after the call returned, %llu times\n", (unsigned long long)res.read_new);
	CHECK_EQ(res.dontneed_dirty, 0);
	CHECK_EQ(res.pinned_final_bad, 0);
}

static void with_device(const char *tag, void (*body)(void *), void *arg)
{
	struct iovm_ctx *owner;
	struct child srv;

	g_share = share_name(tag);
	g_dev = share_name("a10dev");
	owner = share_ok(g_share, HEAP);
	srv = start_server();
	body(arg);
	stop_server(&srv);
	CHECK_OK(iovm_close(owner));
}

static bool skipped;

static void one_client(void *arg)
{
	struct gres res = gate_client(arg);

	if (res.windows == UINT64_MAX) {
		skipped = true;
		return;
	}
	check_res(res);
}

static void run_one(struct gcfg cfg)
{
	if (getenv("A10_NQ"))
		cfg.nq = (unsigned)atoi(getenv("A10_NQ"));
	/* Half as long under the sanitizers, which run the whole suite again (on until MIN_OK all the same). */
	if (TEST_ASAN || TEST_TSAN)
		cfg.seconds /= 2;
	if (getenv("A10_SECS"))
		cfg.seconds = atof(getenv("A10_SECS"));
	if (getenv("A10_OPS"))
		cfg.ops = (unsigned)atoi(getenv("A10_OPS"));
	if (getenv("A10_NOMR2"))
		cfg.access[1] = 0;
	with_device(cfg.tag, one_client, &cfg);
}

TEST(gate_odp)
{
	run_one((struct gcfg){ .tag = "a10godp", .access = { ODPW }, .nq = 1,
			       .ops = OP_MUNMAP | OP_FIXED | OP_MREMAP | OP_DONTNEED, .seconds = 5, .seed = 1 });
}

TEST(gate_pinned)
{
	if (skipped)
		SKIP_CASE("no memory monitor");
	run_one((struct gcfg){ .tag = "a10gpin", .access = { IOVM_ACCESS_LOCAL_WRITE }, .nq = 1,
			       .ops = OP_MUNMAP | OP_FIXED | OP_MREMAP | OP_DONTNEED_LOCKED, .seconds = 5, .seed = 2 });
}

TEST(gate_two_mrs_two_queues)
{
	if (skipped)
		SKIP_CASE("no memory monitor");
	/* one pinned MR and one on-demand MR over the same memory, each mapped on two queues */
	run_one((struct gcfg){ .tag = "a10g2", .access = { IOVM_ACCESS_LOCAL_WRITE, ODPW }, .nq = 2,
			       .ops = OP_MUNMAP | OP_FIXED | OP_MREMAP | OP_DONTNEED_LOCKED, .seconds = 5, .seed = 3 });
}

TEST(gate_two_odp_mrs_two_queues)
{
	if (skipped)
		SKIP_CASE("no memory monitor");
	run_one((struct gcfg){ .tag = "a10g2o", .access = { ODPW, ODPW }, .nq = 2,
			       .ops = OP_MUNMAP | OP_FIXED | OP_MREMAP | OP_DONTNEED, .seconds = 5, .seed = 4 });
}

/*
 * The known bug, asserted: with one pinned and one on-demand MR over the
 * same memory, each on two queues, now and then a descriptor reads the
 * marker of memory mapped anew (mmap MAP_FIXED, munmap + mmap) after the
 * call returned, while no page request was answered (the reaper held off).
 */
static _Atomic int spin_stop;

static void *spinner(void *arg)
{
	(void)arg;
	while (!atomic_load(&spin_stop))
		;
	return NULL;
}

TEST(gate_stale_read)
{
	A10_KNOWN("the gate lets a device read through an MR's old mapping reach memory mapped anew after munmap()/mmap(MAP_FIXED) returned");
	pthread_t spin[2];

	strict_read = true;
	/* CPU pressure (2 spinners) widens the race: seen without it too, rarely */
	for (int i = 0; i < 2; i++)
		CHECK_OK(pthread_create(&spin[i], NULL, spinner, NULL));
	run_one((struct gcfg){ .tag = "a10gstale", .access = { IOVM_ACCESS_LOCAL_WRITE, ODPW }, .nq = 2,
			       .ops = OP_MUNMAP | OP_FIXED, .seconds = 40, .seed = 7 });
	atomic_store(&spin_stop, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(spin[i], NULL);
	strict_read = false;
}

static void client_proc(int rd, int wr, void *arg)
{
	struct gcfg *cfg = arg;
	struct gres res;

	get64(rd);
	res = gate_client(cfg);
	put64(wr, res.windows);
	put64(wr, res.ok);
	put64(wr, res.wrote_new);
	put64(wr, res.read_new);
	put64(wr, res.dontneed_dirty);
	put64(wr, res.pinned_final_bad);
}

static void two_procs(void *arg)
{
	struct gcfg *cfgs = arg;
	struct child c[2];

	for (int i = 0; i < 2; i++)
		c[i] = child_start(client_proc, &cfgs[i]);
	for (int i = 0; i < 2; i++)
		put64(c[i].wr, 1);
	for (int i = 0; i < 2; i++) {
		struct gres res = { 0 };

		res.windows = get64(c[i].rd);
		res.ok = get64(c[i].rd);
		res.wrote_new = get64(c[i].rd);
		res.read_new = get64(c[i].rd);
		res.dontneed_dirty = get64(c[i].rd);
		res.pinned_final_bad = get64(c[i].rd);
		child_ok(&c[i]);
		if (res.windows == UINT64_MAX) {
			skipped = true;
			continue;
		}
		check_res(res);
	}
}

TEST(gate_two_client_processes)
{
	struct gcfg cfgs[2] = {
		{ .tag = "a10gp1", .access = { ODPW }, .nq = 2, .ops = OP_MUNMAP | OP_FIXED | OP_MREMAP | OP_DONTNEED,
		  .seconds = 5, .seed = 5 },
		{ .tag = "a10gp2", .access = { IOVM_ACCESS_LOCAL_WRITE }, .nq = 1,
		  .ops = OP_MUNMAP | OP_FIXED | OP_MREMAP | OP_DONTNEED_LOCKED, .seconds = 5, .seed = 6 },
	};

	if (skipped)
		SKIP_CASE("no memory monitor");
	with_device("a10gprocs", two_procs, cfgs);
}

/* Control: one client, two queues, the heap and an MR mapped on both; plain descriptors on each. */
static void two_queues_body(void *arg)
{
	struct iovm_domain_attr attr = { .type = IOVM_DOMAIN_MANAGED };
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	struct iovm_rqueue *q[2];
	struct iovm_mr *mr;
	uint8_t *heap, *app = a9_pages_64k(16);
	struct iovm_completion *rec;
	iovm_iova_t ih[2], ir[2], io[2];
	bool with_mr = arg != NULL;

	CHECK_OK(iovm_attach(g_share, "", &ctx));
	CHECK_OK(iovm_domain_create(ctx, &attr, &dom));
	heap = iovm_dma_zalloc(ctx, 1 << 20, 4096, 0);
	rec = iovm_dma_zalloc(ctx, 4096, 4096, 0);
	CHECK(heap && rec);
	memset(app, 0x21, 16 * A9_PAGE);
	CHECK_OK(iovm_mr_reg(dom, app, 16 * A9_PAGE, ODPW, &mr));
	for (int i = 0; i < 2; i++) {
		CHECK_OK(iovm_rqueue_open(ctx, g_dev, 64, &q[i]));
		CHECK_OK(iovm_rqueue_map(q[i], heap, 1 << 20, RW, &ih[i]));
		CHECK_OK(iovm_rqueue_map(q[i], rec, 4096, RW, &ir[i]));
		if (with_mr)
			CHECK_OK(iovm_rqueue_map_mr(q[i], mr, RW, &io[i]));
		printf("# queue %d: pasid %u heap %#llx rec %#llx\n", i, iovm_rqueue_pasid(q[i]), (unsigned long long)ih[i].addr,
		       (unsigned long long)ir[i].addr);
	}
	for (int round = 0; round < 4; round++)
		for (int i = 0; i < 2; i++) {
			struct iovm_completion c = a9_run_q(q[i], (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = ih[i].addr + 4096,
										    .len = 4096, .pattern = 0x4242424242424242ull },
							    rec + i * 64, ir[i].addr + i * 64 * 32, 0x100 + round * 2 + i);

			if (c.status != IOVM_STATUS_SUCCESS)
				a10_report(c, i ? "queue 1" : "queue 0");
			CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
			if (with_mr) {
				c = a9_run_q(q[i], (struct iovm_desc){ .op = IOVM_OP_COPY, .src = io[i].addr, .dst = ih[i].addr,
								       .len = 4096 },
					     rec + i * 64, ir[i].addr + i * 64 * 32, 0x200 + round * 2 + i);
				if (c.status != IOVM_STATUS_SUCCESS)
					a10_report(c, i ? "mr queue 1" : "mr queue 0");
				CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
			}
		}
	for (int i = 0; i < 2; i++) {
		if (with_mr)
			CHECK_OK(iovm_rqueue_unmap_mr(q[i], mr));
		CHECK_OK(iovm_rqueue_close(q[i]));
	}
	CHECK_OK(iovm_mr_dereg(mr));
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_OK(iovm_close(ctx));
	CHECK_OK(munmap(app, 16 * A9_PAGE));
}

/*
 * Control: one client, two queues, descriptors in flight on both at once
 * (fills of the shared heap only, records in the heap): every one must
 * succeed.
 */
static void two_queues_concurrent_body(void *arg)
{
	struct iovm_ctx *ctx;
	struct iovm_rqueue *q[2];
	uint8_t *heap;
	struct iovm_completion *rec;
	iovm_iova_t ih[2], ir[2];
	uint64_t inflight[2] = { 0 }, busy[2] = { 0 }, done = 0, bad = 0, seq = 0;
	unsigned use_rec = arg != NULL;
	double t0 = a9_now();

	CHECK_OK(iovm_attach(g_share, "", &ctx));
	heap = iovm_dma_zalloc(ctx, 1 << 20, 4096, 0);
	rec = iovm_dma_zalloc(ctx, 4096, 4096, 0);
	CHECK(heap && rec);
	for (int i = 0; i < 2; i++) {
		CHECK_OK(iovm_rqueue_open(ctx, g_dev, 64, &q[i]));
		CHECK_OK(iovm_rqueue_map(q[i], heap, 1 << 20, RW, &ih[i]));
		CHECK_OK(iovm_rqueue_map(q[i], rec, 4096, RW, &ir[i]));
	}
	while (done < 20000) {
		for (unsigned i = 0; i < 2; i++) {
			struct iovm_cqe cqe[16];
			int n;

			while (inflight[i] < 24) {
				unsigned fs = (unsigned)__builtin_ctzll(~busy[i]);
				uint64_t sq = ++seq;
				struct iovm_desc d = { .op = IOVM_OP_FILL, .dst = ih[i].addr + i * 65536 + fs * 1024, .len = 1024,
						       .pattern = sq, .tag = (sq << 8) | (i << 7) | fs };

				if (use_rec) {
					d.flags = IOVM_DESC_COMPLETION;
					d.completion = ir[i].addr + (i * 64 + fs) * 32;
				}
				CHECK_OK(iovm_rqueue_submit(q[i], &d));
				busy[i] |= 1ull << fs;
				inflight[i]++;
			}
			n = iovm_rqueue_reap(q[i], cqe, 16);
			CHECK(n >= 0);
			for (int k = 0; k < n; k++) {
				if (cqe[k].status != IOVM_STATUS_SUCCESS && bad++ < 3)
					printf("# queue %u tag %#llx: status %u after %llu done\n", i, (unsigned long long)cqe[k].tag,
					       cqe[k].status, (unsigned long long)done);
				busy[i] &= ~(1ull << (cqe[k].tag & 63));
				inflight[i]--;
				done++;
			}
			CHECK_MSG(a9_now() - t0 < 60, "two queues: hang");
		}
	}
	printf("# two queues%s: %llu descriptors, %llu not successful\n", use_rec ? " with records" : "",
	       (unsigned long long)done, (unsigned long long)bad);
	CHECK_EQ(bad, 0);
	for (int i = 0; i < 2; i++) {
		while (inflight[i]) {
			struct iovm_cqe cqe[16];
			int n = iovm_rqueue_reap(q[i], cqe, 16);

			CHECK(n >= 0);
			inflight[i] -= (unsigned)n;
		}
		CHECK_OK(iovm_rqueue_close(q[i]));
	}
	CHECK_OK(iovm_close(ctx));
}

TEST(two_queues_concurrent)
{
	with_device("a10twoqc", two_queues_concurrent_body, NULL);
}

TEST(two_queues_concurrent_records)
{
	with_device("a10twoqr", two_queues_concurrent_body, "");
}

TEST(two_queues_plain)
{
	with_device("a10twoq", two_queues_body, NULL);
}

TEST(two_queues_mr)
{
	with_device("a10twoqm", two_queues_body, "");
}

int main(void)
{
	test_init();
	A10_RUN(two_queues_concurrent);
	A10_RUN(two_queues_concurrent_records);
	A10_RUN(two_queues_plain);
	A10_RUN(two_queues_mr);
	A10_RUN(gate_odp);
	if (skipped)
		SKIP("no memory monitor (userfaultfd): invalidations are not seen");
	A10_RUN(gate_pinned);
	A10_RUN(gate_two_mrs_two_queues);
	A10_RUN(gate_two_odp_mrs_two_queues);
	A10_RUN(gate_two_client_processes);
	A10_RUN(gate_stale_read);
	return 0;
}
