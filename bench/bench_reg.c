/* SPDX-License-Identifier: MIT */
/*
 * bench_reg.c - `iovm bench reg`: memory registration beside its peers,
 * measured in one run:
 *  - registration cache hits and misses beside UCX's ucs_rcache (libucx-dev,
 *    when built in), both registering through iovm_mr_reg(), so that a
 *    miss compares the caches' bookkeeping, not the registration;
 *  - an on-demand minor fault of a 4 KiB page through the engine, and
 *    prefetch of a large range;
 *  - what the memory monitor adds to munmap() of registered memory, with
 *    libc's munmap() hooked and with userfaultfd alone, idle and with
 *    every CPU busy;
 *  - pinned registration beside mlock() of the same memory, on 4 KiB and on
 *    2 MiB pages; on-demand registration of the same size;
 *  - pinned registration in the background, in parallel chunks
 *    (bench_reg_async.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include <iovm.h>

#include "bench.h"
#include "reg/reg_internal.h" /* hooks_set_enabled(): the monitor with its hooks off, as before them */

#ifdef HAVE_UCX
#include <ucm/api/ucm.h>
#include <ucs/memory/rcache.h>
#endif

#define PG 4096u
#define KEEP(x) __asm__ volatile("" : : "r"(x) : "memory")

static const struct bench_args *args;
static struct iovm_ctx *ctx;
static struct iovm_domain *dom;
static struct iovm_device *dev;
static struct iovm_queue *q;

static unsigned reps(void)
{
	return args->quick ? 3 : 9;
}

static uint64_t iters(uint64_t full)
{
	return args->quick ? full / 100 + 1 : full;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "iovm bench: %s: %s (%s)\n", what, iovm_strerror(err), iovm_error_detail());
	exit(1);
}

static uint8_t *map_anon(size_t len, bool huge)
{
	uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | (huge ? MAP_HUGETLB : 0), -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* ---- the registration cache ---- */

#define CACHE_BUFS 64
#define CACHE_BUF (16 * PG)

/*
 * Misses are timed in windows of MISS_WIN consecutive registrations: each
 * side's window k registers the same pages as bare_registrations()'s
 * window k, in the same order, on the same state of the address space.
 * What a cache adds to a registration is then the median over windows of
 * the difference (a window preempted on this or that side moves one
 * difference, not the median), and a window is long enough to hold what
 * is paid once per many misses (a chunk of region structs, a pool's
 * growth).
 */
#define MISS_WIN 64
#define MAX_WINS 4096

/* The median over @nw windows of (@a[k] - @b[k]), per registration. */
static double paired_per_op(const double *a, const double *b, unsigned nw)
{
	static double d[MAX_WINS];

	for (unsigned k = 0; k < nw; k++)
		d[k] = a[k] - b[k];
	return nw ? bench_median(d, nw) / MISS_WIN : NAN;
}

/*
 * Gets and puts of @nbufs buffers (a power of two) in turn, each its own
 * region: with one, the same buffer again and again; with many, every get
 * goes through the index.
 */
static double iovm_hits(struct iovm_rcache *c, uint8_t *bufs, unsigned nbufs, uint64_t n)
{
	struct iovm_mr *mr;
	uint64_t t0;

	/* Warm: the regions are in. */
	for (unsigned b = 0; b < nbufs; b++) {
		if (iovm_rcache_get(c, bufs + b * CACHE_BUF, CACHE_BUF, IOVM_ACCESS_LOCAL_WRITE, &mr))
			die("iovm_rcache_get", -EIO);
		iovm_rcache_put(c, mr);
	}
	t0 = bench_now_ns();
	for (uint64_t i = 0; i < n; i++) {
		iovm_rcache_get(c, bufs + (i & (nbufs - 1)) * CACHE_BUF, CACHE_BUF, IOVM_ACCESS_LOCAL_WRITE, &mr);
		KEEP(mr);
		iovm_rcache_put(c, mr);
	}
	return (double)(bench_now_ns() - t0) / (double)n;
}

/*
 * Gets of @n distinct pages, 8 KiB apart (no two regions touch): each one a
 * miss that registers. Nothing is evicted (UCX 1.13 evicts lazily, past its
 * limits; iovm is given room), so both sides do the same registrations and
 * differ only in their bookkeeping.
 */
static double iovm_misses(uint8_t *pages, uint64_t n, double *win)
{
	struct iovm_rcache_attr attr = { .max_regions = n + 1, .max_bytes = SIZE_MAX };
	struct iovm_rcache *c;
	struct iovm_mr *mr;
	uint64_t t0, tw;
	int ret;

	if ((ret = iovm_rcache_create(dom, &attr, &c)))
		die("iovm_rcache_create", ret);
	t0 = tw = bench_now_ns();
	for (uint64_t i = 0; i < n; i++) {
		if ((ret = iovm_rcache_get(c, pages + i * 2 * PG, PG, IOVM_ACCESS_LOCAL_WRITE, &mr)))
			die("iovm_rcache_get", ret);
		iovm_rcache_put(c, mr);
		if ((i + 1) % MISS_WIN == 0) {
			uint64_t now = bench_now_ns();

			win[i / MISS_WIN] = (double)(now - tw);
			tw = now;
		}
	}
	t0 = bench_now_ns() - t0;
	iovm_rcache_destroy(c);
	return (double)t0 / (double)n;
}

/*
 * The same registrations as iovm_misses() with no cache at all: what a
 * miss costs beyond it is the cache's bookkeeping.
 */
static double bare_registrations(uint8_t *pages, uint64_t n, double *win)
{
	struct iovm_mr **mrs = calloc(n, sizeof(*mrs));
	uint64_t t0, tw;
	int ret;

	if (!mrs)
		die("calloc", -ENOMEM);
	t0 = tw = bench_now_ns();
	for (uint64_t i = 0; i < n; i++) {
		if ((ret = iovm_mr_reg(dom, pages + i * 2 * PG, PG, IOVM_ACCESS_LOCAL_WRITE, &mrs[i])))
			die("iovm_mr_reg", ret);
		if ((i + 1) % MISS_WIN == 0) {
			uint64_t now = bench_now_ns();

			win[i / MISS_WIN] = (double)(now - tw);
			tw = now;
		}
	}
	t0 = bench_now_ns() - t0;
	for (uint64_t i = 0; i < n; i++)
		iovm_mr_dereg(mrs[i]);
	free(mrs);
	return (double)t0 / (double)n;
}

#ifdef HAVE_UCX
/* UCX's region, and the iovm MR it stands for: both caches register alike. */
struct ucx_region {
	ucs_rcache_region_t super;
	struct iovm_mr *mr;
};

static ucs_status_t ucx_mem_reg(void *context, ucs_rcache_t *rcache, void *arg, ucs_rcache_region_t *region,
				uint16_t flags)
{
	struct ucx_region *r = (struct ucx_region *)region;

	(void)context;
	(void)rcache;
	(void)arg;
	(void)flags;
	return iovm_mr_reg(dom, (void *)region->super.start, region->super.end - region->super.start,
			   IOVM_ACCESS_LOCAL_WRITE, &r->mr)
		       ? UCS_ERR_IO_ERROR
		       : UCS_OK;
}

static void ucx_mem_dereg(void *context, ucs_rcache_t *rcache, ucs_rcache_region_t *region)
{
	(void)context;
	(void)rcache;
	iovm_mr_dereg(((struct ucx_region *)region)->mr);
}

static void ucx_dump(void *context, ucs_rcache_t *rcache, ucs_rcache_region_t *region, char *buf, size_t max)
{
	(void)context;
	(void)rcache;
	(void)region;
	snprintf(buf, max, "iovm");
}

static const ucs_rcache_ops_t ucx_ops = { .mem_reg = ucx_mem_reg, .mem_dereg = ucx_mem_dereg,
					  .dump_region = ucx_dump };

static ucs_rcache_t *ucx_cache(unsigned long max_regions)
{
	ucs_rcache_params_t p = {
		.region_struct_size = sizeof(struct ucx_region),
		.alignment = PG,
		.max_alignment = PG,
		.ucm_events = UCM_EVENT_VM_UNMAPPED,
		.ucm_event_priority = 1000,
		.ops = &ucx_ops,
		.flags = UCS_RCACHE_FLAG_NO_PFN_CHECK,
		.max_regions = max_regions,
		.max_size = SIZE_MAX,
		.max_unreleased = SIZE_MAX,
	};
	ucs_rcache_t *c;

	if (ucs_rcache_create(&p, "iovm-bench", NULL, &c) != UCS_OK)
		return NULL;
	return c;
}

static double ucx_hits(ucs_rcache_t *c, uint8_t *bufs, unsigned nbufs, uint64_t n)
{
	ucs_rcache_region_t *r;
	uint64_t t0;

	for (unsigned b = 0; b < nbufs; b++) {
		if (ucs_rcache_get(c, bufs + b * CACHE_BUF, CACHE_BUF, PROT_READ | PROT_WRITE, NULL, &r) != UCS_OK)
			return NAN;
		ucs_rcache_region_put(c, r);
	}
	t0 = bench_now_ns();
	for (uint64_t i = 0; i < n; i++) {
		ucs_rcache_get(c, bufs + (i & (nbufs - 1)) * CACHE_BUF, CACHE_BUF, PROT_READ | PROT_WRITE, NULL, &r);
		KEEP(r);
		ucs_rcache_region_put(c, r);
	}
	return (double)(bench_now_ns() - t0) / (double)n;
}

static double ucx_misses(uint8_t *pages, uint64_t n, double *win)
{
	ucs_rcache_t *c = ucx_cache(n + 1);
	ucs_rcache_region_t *r;
	uint64_t t0, tw;

	if (!c)
		return NAN;
	t0 = tw = bench_now_ns();
	for (uint64_t i = 0; i < n; i++) {
		if (ucs_rcache_get(c, pages + i * 2 * PG, PG, PROT_READ | PROT_WRITE, NULL, &r) != UCS_OK)
			return NAN;
		ucs_rcache_region_put(c, r);
		if ((i + 1) % MISS_WIN == 0) {
			uint64_t now = bench_now_ns();

			win[i / MISS_WIN] = (double)(now - tw);
			tw = now;
		}
	}
	t0 = bench_now_ns() - t0;
	ucs_rcache_destroy(c);
	return (double)t0 / (double)n;
}
#endif

static void bench_cache(void)
{
	uint64_t nmiss = iters(20000);
	uint8_t *bufs = map_anon(CACHE_BUFS * CACHE_BUF, false), *pages = map_anon(nmiss * 2 * PG, false);
	double hit[16], uhit[16], hitn[16], uhitn[16], miss[16], umiss[16], keep[16], ukeep[16];
	static double wmiss[MAX_WINS], wumiss[MAX_WINS], wbare[MAX_WINS];
	unsigned nr = reps(), nw = (unsigned)(nmiss / MISS_WIN);
	struct iovm_rcache *c;
	const char *peer = "UCX ucs_rcache 1.13";
	int ret;
#ifdef HAVE_UCX
	ucs_rcache_t *uc = args->dpdk ? ucx_cache(1024) : NULL; /* --no-dpdk: no peers at all */
#endif

	bench_progress("registration cache: hits and misses, beside UCX");
	if (nw > MAX_WINS)
		die("too many misses to time", -EINVAL);
	if (!bufs || !pages)
		die("mmap", -ENOMEM);
	memset(bufs, 1, CACHE_BUFS * CACHE_BUF);
	memset(pages, 1, nmiss * 2 * PG);
	if ((ret = iovm_rcache_create(dom, NULL, &c)))
		die("iovm_rcache_create", ret);
	for (unsigned rep = 0; rep < nr; rep++) {
		hit[rep] = iovm_hits(c, bufs, 1, iters(2000000));
		hitn[rep] = iovm_hits(c, bufs, CACHE_BUFS, iters(2000000));
		uhit[rep] = uhitn[rep] = umiss[rep] = NAN;
		/*
		 * The misses of one side run on what the other side's teardown
		 * left (the kernel's VMAs, the IOMMU's free tables): each side
		 * goes first every other run, so neither always follows.
		 */
		if (rep & 1)
			miss[rep] = iovm_misses(pages, nmiss, wmiss);
#ifdef HAVE_UCX
		if (uc) {
			uhit[rep] = ucx_hits(uc, bufs, 1, iters(2000000));
			uhitn[rep] = ucx_hits(uc, bufs, CACHE_BUFS, iters(2000000));
			umiss[rep] = ucx_misses(pages, nmiss, wumiss);
		}
#endif
		if (!(rep & 1))
			miss[rep] = iovm_misses(pages, nmiss, wmiss);
		bare_registrations(pages, nmiss, wbare);
		keep[rep] = paired_per_op(wmiss, wbare, nw);
		ukeep[rep] = isnan(umiss[rep]) ? NAN : paired_per_op(wumiss, wbare, nw);
	}
	iovm_rcache_destroy(c);
#ifdef HAVE_UCX
	if (uc)
		ucs_rcache_destroy(uc);
	else
		peer = "none (--no-dpdk: no peers)";
#else
	peer = "none (UCX not built in)";
#endif
	bench_result("rcache hit: get+put", "ns", bench_median(hit, nr), peer, bench_median(uhit, nr),
		     "<= 15 ns, <= 0.5x UCX");
	bench_result("rcache hit: 64 buffers in turn", "ns", bench_median(hitn, nr), peer, bench_median(uhitn, nr),
		     "<= 15 ns, <= 0.5x UCX");
	bench_result("rcache miss: register 4 KiB, put", "us", bench_median(miss, nr) / 1e3, peer,
		     bench_median(umiss, nr) / 1e3, "<= UCX");
	/*
	 * The miss less the same registration without a cache, measured in
	 * the same run: the median over windows of the paired difference.
	 */
	bench_result("rcache miss: bookkeeping only", "us", bench_median(keep, nr) / 1e3, peer,
		     bench_median(ukeep, nr) / 1e3, "<= UCX");
	munmap(bufs, CACHE_BUFS * CACHE_BUF);
	munmap(pages, nmiss * 2 * PG);
}

/* ---- on demand ---- */

/* Copy one page from the heap to each of @n pages of @mr that @stride apart: µs per copy. */
static double odp_copies(struct iovm_mr *mr, uint8_t *app, uint64_t heap_iova, uint64_t n, uint64_t stride)
{
	uint64_t t0 = bench_now_ns();

	for (uint64_t i = 0; i < n; i++) {
		iovm_iova_t dst;
		struct iovm_desc d;
		struct iovm_cqe cqe;

		iovm_mr_iova(mr, app + i * stride, PG, &dst);
		d = (struct iovm_desc){ .op = IOVM_OP_COPY, .src = heap_iova, .dst = dst.addr, .len = PG };
		if (iovm_queue_submit(q, &d))
			die("iovm_queue_submit", -EIO);
		iovm_queue_process(q, 1);
		if (iovm_queue_reap(q, &cqe, 1) != 1 || cqe.status != IOVM_STATUS_SUCCESS)
			die("an on-demand copy", -EIO);
	}
	return (double)(bench_now_ns() - t0) / 1e3 / (double)n;
}

static void bench_odp(void)
{
	/* One fault per 64 KiB chunk: a copy to the first page of each. */
	uint64_t chunks = iters(4096), len = chunks * 16 * PG, big = args->quick ? (64 << 20) : (1ull << 30);
	double fault[16], warm[16], pf[16];
	unsigned nr = reps();
	uint8_t *app = map_anon(len, false), *heap = iovm_dma_alloc(ctx, PG, PG, 0), *large;
	iovm_iova_t heap_iova;
	struct iovm_mr *mr;
	int ret;

	bench_progress("on demand: minor faults through the engine, prefetch");
	if (!app || !heap)
		die("memory", -ENOMEM);
	memset(app, 1, len); /* present in the process: the device's fault is a minor one */
	iovm_dma_iova(dom, heap, &heap_iova);
	for (unsigned rep = 0; rep < nr; rep++) {
		if ((ret = iovm_mr_reg(dom, app, len, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND, &mr)))
			die("iovm_mr_reg on demand", ret);
		fault[rep] = odp_copies(mr, app, heap_iova.addr, chunks, 16 * PG);
		warm[rep] = odp_copies(mr, app, heap_iova.addr, chunks, 16 * PG);
		iovm_mr_dereg(mr);
	}
	bench_result("on-demand minor fault, 4 KiB, engine", "us", bench_median(fault, nr) - bench_median(warm, nr),
		     "the same copy, mapped", bench_median(warm, nr), "<= 2 us");
	munmap(app, len);

	large = map_anon(big, false);
	if (!large)
		die("mmap", -ENOMEM);
	memset(large, 1, big);
	for (unsigned rep = 0; rep < nr; rep++) {
		uint64_t t0;

		if ((ret = iovm_mr_reg(dom, large, big, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND, &mr)))
			die("iovm_mr_reg on demand", ret);
		t0 = bench_now_ns();
		if ((ret = iovm_mr_advise(mr, large, big, IOVM_ADVISE_WRITE)))
			die("iovm_mr_advise", ret);
		pf[rep] = (double)big / (double)(bench_now_ns() - t0);
		iovm_mr_dereg(mr);
	}
	{
		char name[64], sz[16];

		snprintf(name, sizeof(name), "prefetch of %s (iovm_mr_advise)", bench_size(big, sz, sizeof(sz)));
		bench_result(name, "GB/s", bench_median(pf, nr), "none (report)", NAN, NULL);
	}
	munmap(large, big);
}

/* ---- the monitor's cost to munmap ---- */

static _Atomic bool busy_stop;

static void *busy_loop(void *arg)
{
	(void)arg;
	while (!atomic_load_explicit(&busy_stop, memory_order_relaxed))
		;
	return NULL;
}

/*
 * munmap() of 64 KiB just registered, beside a plain munmap() of as much,
 * interleaved in one run: with libc's munmap() hooked (reg/hooks.c, the
 * caller invalidates) and with the hooks off (userfaultfd alone: the
 * caller waits for the monitor's reader). @busy: a spinning thread per CPU
 * meanwhile, so that every other thread waits for a CPU.
 */
/* The medians of munmap_measure(): plain, hooked (or userfaultfd's, unhooked), userfaultfd alone; hooked or not. */
struct munmap_medians {
	double plain, reg, uffd;
	int32_t hooked;
};

static struct munmap_medians munmap_measure(bool busy)
{
	unsigned nr = reps(), n = (unsigned)iters(2000), ncpu = (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	double plain[16], reg[16], uffd[16];
	size_t len = 16 * PG;
	pthread_t spinners[64];

	if (ncpu > 64)
		ncpu = 64;
	bench_progress(busy ? "munmap of registered memory, beside plain munmap, every CPU busy"
			    : "munmap of registered memory, beside plain munmap");
	atomic_store(&busy_stop, false);
	for (unsigned i = 0; busy && i < ncpu; i++)
		if (pthread_create(&spinners[i], NULL, busy_loop, NULL))
			die("pthread_create", -EAGAIN);
	for (unsigned rep = 0; rep < nr; rep++) {
		uint64_t tp = 0, tr = 0, tu = 0;

		for (unsigned i = 0; i < 3 * n; i++) {
			uint8_t *a = map_anon(len, false), *b = map_anon(len, false);
			struct iovm_mr *mr;
			uint64_t t0, t;
			int ret;

			if (!a || !b)
				die("mmap", -ENOMEM);
			memset(a, 1, len);
			memset(b, 1, len);
			t0 = bench_now_ns();
			munmap(a, len);
			tp += bench_now_ns() - t0;
			if ((ret = iovm_mr_reg(dom, b, len, IOVM_ACCESS_LOCAL_WRITE, &mr)))
				die("iovm_mr_reg", ret);
			/* Hooked and not, in turn: the same conditions for both. */
			hooks_set_enabled(i % 2 == 0);
			t0 = bench_now_ns();
			munmap(b, len);
			t = bench_now_ns() - t0;
			hooks_set_enabled(true);
			if (i % 2 == 0)
				tr += t;
			else
				tu += t;
			iovm_mr_dereg(mr);
		}
		plain[rep] = (double)tp / 1e3 / (3 * n);
		reg[rep] = (double)tr / 1e3 / ((3 * n + 1) / 2);
		uffd[rep] = (double)tu / 1e3 / (3 * n / 2);
	}
	atomic_store(&busy_stop, true);
	for (unsigned i = 0; busy && i < ncpu; i++)
		pthread_join(spinners[i], NULL);
	return (struct munmap_medians){ .plain = bench_median(plain, nr), .reg = bench_median(reg, nr),
					.uffd = bench_median(uffd, nr),
					.hooked = (hooks_installed() & HOOK_MUNMAP) != 0 };
}

/*
 * A program linked with UCX has libc's munmap() patched by libucs as it
 * is loaded, before iovm could: measured in a process of its own (exec'd
 * with UCX_MEM_MMAP_HOOK_MODE=none, bench_reg_cover.c) then, so that the
 * rows say what iovm costs where it is the one hooking.
 */
static void bench_munmap(bool busy)
{
	struct munmap_medians m;

#ifdef HAVE_UCX
	double out[4];

	if (!bench_reg_munmap_remote(busy, args->quick, args->opts, out)) {
		m = (struct munmap_medians){ .plain = out[0], .reg = out[1], .uffd = out[2], .hooked = out[3] != 0 };
		bench_note("munmap%s: measured in a process of its own, where UCX's libucs does not patch munmap()",
			   busy ? ", CPUs busy" : "");
	} else
#endif
		m = munmap_measure(busy);
	if (!m.hooked)
		bench_note("munmap: libc's munmap() is not hooked here: both rows are userfaultfd's (another library "
			   "patched it first? UCX's libucs does as it is loaded: UCX_MEM_MMAP_HOOK_MODE=none stops it)");
	bench_result(busy ? "munmap 64 KiB, registered (monitored), CPUs busy" : "munmap 64 KiB, registered (monitored)",
		     "us", m.reg, "plain munmap", m.plain, "<= 1.5x plain munmap");
	bench_result(busy ? "munmap 64 KiB, registered, userfaultfd alone, CPUs busy"
			  : "munmap 64 KiB, registered, userfaultfd alone",
		     "us", m.uffd, "plain munmap", m.plain, NULL);
}

int bench_reg_munmap_child(int busy, int quick, const char *opts, int fd)
{
	static struct bench_args child_args;
	struct iovm_domain_attr da = { .type = IOVM_DOMAIN_MANAGED };
	struct munmap_medians m;
	double out[4];
	int ret;

	child_args.quick = quick != 0;
	child_args.opts = opts && *opts ? opts : NULL;
	args = &child_args;
	if ((ret = iovm_open(opts && *opts ? opts : "", &ctx)) || (ret = iovm_domain_create(ctx, &da, &dom)))
		return 2;
	m = munmap_measure(busy != 0);
	out[0] = m.plain;
	out[1] = m.reg;
	out[2] = m.uffd;
	out[3] = m.hooked;
	iovm_domain_destroy(dom);
	iovm_close(ctx);
	return write(fd, out, sizeof(out)) == (ssize_t)sizeof(out) ? 0 : 2;
}

/* ---- registration beside mlock ---- */

static void reg_vs_mlock(size_t len, bool huge)
{
	/* 1 GiB of 4 KiB pages takes some 90 ms to lock: 3 runs; of 2 MiB pages, 50 us: 9. */
	unsigned nr = args->quick ? 1 : huge ? 9 : 3;
	double reg[16], lock[16], odp[16];
	char name[80], sz[16];
	uint8_t *a = map_anon(len, huge);

	if (!a) {
		bench_note("registration on %s pages: no %s of them to be had", huge ? "2 MiB" : "4 KiB",
			   bench_size(len, sz, sizeof(sz)));
		return;
	}
	memset(a, 1, len); /* prefaulted: both sides lock what is there */
	for (unsigned rep = 0; rep < nr; rep++) {
		struct iovm_mr *mr;
		uint64_t t0;
		int ret;

		t0 = bench_now_ns();
		if (mlock(a, len)) {
			bench_note("registration on %s pages: mlock of %s failed: %s", huge ? "2 MiB" : "4 KiB",
				   bench_size(len, sz, sizeof(sz)), strerror(errno));
			munmap(a, len);
			return;
		}
		lock[rep] = (double)(bench_now_ns() - t0) / 1e6;
		munlock(a, len);
		t0 = bench_now_ns();
		if ((ret = iovm_mr_reg(dom, a, len, IOVM_ACCESS_LOCAL_WRITE, &mr)))
			die("iovm_mr_reg", ret);
		reg[rep] = (double)(bench_now_ns() - t0) / 1e6;
		iovm_mr_dereg(mr);
	}
	snprintf(name, sizeof(name), "pinned registration of %s, %s pages", bench_size(len, sz, sizeof(sz)),
		 huge ? "2 MiB" : "4 KiB");
	bench_result(name, "ms", bench_median(reg, nr), "mlock", bench_median(lock, nr), "<= 1.2x mlock");
	if (!huge) {
		for (unsigned rep = 0; rep < reps(); rep++) {
			struct iovm_mr *mr;
			uint64_t t0 = bench_now_ns();
			int ret = iovm_mr_reg(dom, a, len, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND, &mr);

			odp[rep] = (double)(bench_now_ns() - t0) / 1e3;
			if (ret)
				die("iovm_mr_reg on demand", ret);
			iovm_mr_dereg(mr);
		}
		snprintf(name, sizeof(name), "on-demand registration of %s", bench_size(len, sz, sizeof(sz)));
		bench_result(name, "us", bench_median(odp, reps()), "none (report)", NAN, "<= 10 us");
	}
	munmap(a, len);
}

/*
 * Bytes this process may still lock: RLIMIT_MEMLOCK less what it has locked
 * (VmLck), or SIZE_MAX for root (CAP_IPC_LOCK) or no limit.
 */
static size_t lockable_bytes(void)
{
	unsigned long long locked_kb = 0;
	struct rlimit rl;
	char line[128];
	FILE *f;

	if (geteuid() == 0 || getrlimit(RLIMIT_MEMLOCK, &rl) || rl.rlim_cur == RLIM_INFINITY)
		return SIZE_MAX;
	f = fopen("/proc/self/status", "r");
	if (f) {
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "VmLck: %llu kB", &locked_kb) == 1)
				break;
		fclose(f);
	}
	return rl.rlim_cur > (locked_kb << 10) ? rl.rlim_cur - (locked_kb << 10) : 0;
}

static void bench_registration(void)
{
	size_t len = args->quick ? (64 << 20) : (1ull << 30), room = lockable_bytes();
	char a[16], b[16];

	/*
	 * Unprivileged, RLIMIT_MEMLOCK (often 8 MiB) bounds what can be
	 * pinned: measure what fits, in whole 2 MiB pages, and say so.
	 */
	if (room < len) {
		size_t fit = (room / 2) & ~(((size_t)2 << 20) - 1);

		if (fit < ((size_t)2 << 20)) {
			bench_note("registration beside mlock: not measured, RLIMIT_MEMLOCK leaves %s to lock",
				   bench_size(room, a, sizeof(a)));
			return;
		}
		bench_note("registration beside mlock: %s instead of %s, all that RLIMIT_MEMLOCK leaves room for",
			   bench_size(fit, a, sizeof(a)), bench_size(len, b, sizeof(b)));
		len = fit;
	}
	bench_progress("pinned and on-demand registration, beside mlock");
	reg_vs_mlock(len, false);
	bench_hugepages_reserve(args->quick ? 0 : (unsigned)(len >> 21) + 64);
	reg_vs_mlock(len, true);
}

int bench_reg(const struct bench_args *a)
{
	struct iovm_domain_attr da = { .type = IOVM_DOMAIN_MANAGED, .flags = IOVM_DOMAIN_FOLLOW_HEAP };
	struct iovm_queue_attr qa = { .depth = 64, .flags = IOVM_QUEUE_POLLED };
	const char *only;
	char opts[256];
	int ret;

	args = a;
	/* Forked monitors first, from a process that has set none up. */
	bench_reg_cover(a->quick);
	/* Room to pin a whole prefetch: the budget is not what is measured. */
	snprintf(opts, sizeof(opts), "%s%spin_budget=4G", a->opts ? a->opts : "", a->opts ? "," : "");
	if ((ret = iovm_open(opts, &ctx)))
		die("iovm_open", ret);
	if ((ret = iovm_domain_create(ctx, &da, &dom)) || (ret = iovm_device_open(ctx, "sw", &dev)) ||
	    (ret = iovm_device_attach(dev, dom, IOVM_PASID_NONE)) || (ret = iovm_queue_create(dev, &qa, &q)))
		die("set-up", ret);
#ifndef HAVE_UCX
	bench_note("UCX: not built in (install libucx-dev and rebuild to compare against its rcache)");
#endif
	/*
	 * munmap first: UCX's rcache installs UCM's hooks, which patch libc's
	 * munmap() too, and whichever patches first keeps it (reg/hooks.c
	 * leaves an entry it does not know alone).
	 */
	/* IOVM_BENCH_REG=cache or =async: those rows alone, for profiling them. */
	only = getenv("IOVM_BENCH_REG");
	if (!only || !strcmp(only, "munmap")) {
		bench_munmap(false);
		bench_munmap(true);
	}
	if (!only || !strcmp(only, "cache"))
		bench_cache();
	if (!only) {
		bench_odp();
		bench_registration();
	}
	if (!only || !strcmp(only, "async"))
		bench_reg_async(a, dom, lockable_bytes());
	bench_report(a, "iovm bench reg", reps());
	iovm_queue_destroy(q);
	iovm_device_close(dev);
	iovm_domain_destroy(dom);
	iovm_close(ctx);
	return 0;
}
