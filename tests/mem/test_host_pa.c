/* SPDX-License-Identifier: MIT */
/*
 * test_host_pa.c - "real addresses or fail": with host_pa=on every PA iovm
 * hands out is the host physical address of the memory, or the call that
 * would have handed it out fails; with host_pa=auto, emulated PAs are
 * flagged so (IOVM_XLATE_PA_REAL, iovm_pa_is_host(), zones' pa_flags) and
 * the log says so; the flag agrees with the kernel for every page.
 *
 * The kernel is asked independently of iovm: this file reads
 * /proc/self/pagemap itself. Every kind of allocation is tried (small and
 * large, zeroed, grown by realloc, contiguous, 4 KiB pages only, bounded,
 * 2 MiB pages only, zones, coherent and non-coherent common buffers,
 * pools and guests, shares), each page of each result checked, while the
 * hugepage pool is as found, exhausted (a child process holds every free
 * hugepage) and nearly exhausted (it leaves three), so that it runs dry
 * in the middle of the kinds.
 *
 * Host PAs need root (pagemap shows PFNs to CAP_SYS_ADMIN only): without
 * it the host-PA cases skip saying so, and what is checked is that
 * host_pa=on is refused and that nothing claims a host PA. The pool is
 * the machine's: others take and give back pages while this runs, which
 * the promise must survive (it is checked per result, not per count). It
 * takes every free hugepage for a while, so it runs alone in the suite.
 */
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "os/pagemap.h"
#include "mem_util.h"
#include "hugepage_util.h"

/* What a context promises, from the options it was opened with. */
enum mode { MODE_ON, MODE_AUTO, MODE_OFF };

static const char *const mode_name[] = { "host_pa=on", "host_pa=auto", "host_pa=off" };

static int pagemap_fd = -1;

/*
 * The host PA of the byte at @va as the kernel reports it, read here
 * without iovm's code; 0 when the page is not present or its frame is
 * hidden (not root).
 */
static uint64_t kernel_pa(const void *va)
{
	uint64_t e = 0;
	uintptr_t v = (uintptr_t)va;

	/* Present before asked: a read faults it in, as the device would need it to be. */
	(void)*(const volatile uint8_t *)va;
	CHECK_EQ(pread(pagemap_fd, &e, sizeof(e), (off_t)(v >> 12) * 8), (ssize_t)sizeof(e));
	if (!(e & (UINT64_C(1) << 63)) || !(e & ((UINT64_C(1) << 55) - 1)))
		return 0;
	return ((e & ((UINT64_C(1) << 55) - 1)) << 12) | (v & 4095);
}

static bool pagemap_shows_frames(void)
{
	static uint8_t probe[4096] __attribute__((aligned(4096)));

	probe[0] = 1;
	return kernel_pa(probe) != 0;
}

/* What one run saw. */
struct tally {
	unsigned real, emulated, failed;
	bool warned; /* the log said some memory is emulated */
};

static struct tally *log_tally;

static void on_log(void *arg, enum iovm_log_level level, const char *msg)
{
	(void)arg;
	if (level <= IOVM_LOG_WARN && strstr(msg, "emulated") && log_tally)
		log_tally->warned = true;
}

/*
 * Check every 4 KiB page of [p, p+len) of the DMA heap: the translation's
 * flag, iovm_pa_is_host(), and the kernel agree; with host_pa=on every
 * page is the host's; each claimed contiguous run is contiguous on the
 * machine where it is real.
 */
static void check_heap(struct iovm_ctx *ctx, enum mode m, const char *what, const uint8_t *p, size_t len,
		       struct tally *t)
{
	bool any_real = false, any_emulated = false, runs_on = false;
	uint64_t prev_page = 0;

	for (const uint8_t *q = p; q < p + len; q = (const uint8_t *)align_down((uintptr_t)q, 4096) + 4096) {
		struct iovm_dma_xlate x;
		iovm_pa_t pa;
		uint64_t k = kernel_pa(q);
		bool real;

		CHECK_OK(iovm_dma_xlate(ctx, q, &x));
		CHECK_OK(iovm_dma_pa(ctx, q, &pa));
		CHECK_EQ(pa.addr, x.pa.addr);
		CHECK_EQ(x.flags & ~IOVM_XLATE_PA_REAL, 0u);
		real = x.flags & IOVM_XLATE_PA_REAL;
		CHECK_EQ(iovm_pa_is_host(ctx, x.pa), real ? 1 : 0);
		any_real |= real;
		any_emulated |= !real;
		if (m == MODE_ON)
			CHECK_MSG(real, "%s: %s handed out emulated PA %#" PRIx64 " at %p", mode_name[m], what,
				  x.pa.addr, (const void *)q);
		if (m == MODE_OFF)
			CHECK_MSG(!real, "%s: %s claims a host PA", mode_name[m], what);
		if (real) {
			/* The promise itself: the address a device gets is where the memory is. */
			CHECK_MSG(x.pa.addr == k, "%s: %s at %p: pa %#" PRIx64 ", the kernel says %#" PRIx64,
				  mode_name[m], what, (const void *)q, x.pa.addr, k);
			CHECK_EQ(x.hpa.addr, x.pa.addr);
			CHECK_EQ(x.hpa_contig, x.contig);
			CHECK(x.page_size > 4096);
		} else if (m != MODE_OFF) {
			/* Emulated in host-PA mode: above any host address, never mistaken for one. */
			CHECK_MSG(k == 0 || x.pa.addr != k, "%s: %s: emulated PA equals the host's", mode_name[m],
				  what);
		}
		/*
		 * The previous page said its PA runs on into this one: so it must,
		 * and where it is real the kernel has just confirmed this page's PA,
		 * so the run is contiguous on the machine.
		 */
		if (runs_on)
			CHECK_MSG((x.pa.addr & ~UINT64_C(4095)) == prev_page + 4096,
				  "%s: %s: the contiguous run claimed ends early at %p", mode_name[m], what,
				  (const void *)q);
		prev_page = x.pa.addr & ~UINT64_C(4095);
		runs_on = x.contig > 4096 - ((uintptr_t)q & 4095);
	}
	/* Each allocation is on one segment list: all real or all emulated. */
	CHECK_MSG(!(any_real && any_emulated), "%s: %s mixes host and emulated PAs", mode_name[m], what);
	if (any_real)
		t->real++;
	else
		t->emulated++;
}

/* A failed allocation: with host_pa=on for want of hugepages (or 4 KiB pages asked); else only where allowed. */
static void check_failed(enum mode m, const char *what, int err, bool may_fail_anyway, struct tally *t)
{
	CHECK_MSG(m == MODE_ON || may_fail_anyway, "%s: %s failed: %s", mode_name[m], what, strerror(err));
	CHECK_MSG(err == ENOMEM, "%s: %s failed with %s, not ENOMEM", mode_name[m], what, strerror(err));
	t->failed++;
}

/* One heap allocation, checked; NULL when it failed (as allowed). */
static uint8_t *try_alloc(struct iovm_ctx *ctx, enum mode m, const char *what, size_t size, size_t align,
			  uint32_t flags, bool may_fail_anyway, struct tally *t)
{
	uint8_t *p;

	errno = 0;
	p = iovm_dma_alloc(ctx, size, align, flags);
	if (!p) {
		check_failed(m, what, errno, may_fail_anyway, t);
		return NULL;
	}
	if (flags & IOVM_DMA_ZERO)
		for (size_t i = 0; i < size; i += 997)
			CHECK_EQ(p[i], 0);
	if (flags & IOVM_DMA_CONTIG) {
		struct iovm_dma_xlate x;

		/* Claimed contiguous to the end: check_heap() holds each page to the claim. */
		CHECK_OK(iovm_dma_xlate(ctx, p, &x));
		CHECK(x.contig >= size);
	}
	check_heap(ctx, m, what, p, size, t);
	return p;
}

static void try_zone(struct iovm_ctx *ctx, enum mode m, struct tally *t)
{
	const struct iovm_zone *z;
	int ret = iovm_zone_reserve(ctx, "host-pa-ring", 64 << 10, 4096, 0, &z);

	if (ret < 0) {
		check_failed(m, "zone", -ret, false, t);
		return;
	}
	CHECK_EQ(ret, 0);
	check_heap(ctx, m, "zone", z->va, z->len, t);
	{
		struct iovm_dma_xlate x;

		CHECK_OK(iovm_dma_xlate(ctx, z->va, &x));
		CHECK_EQ(z->pa.addr, x.pa.addr);
		CHECK_EQ(z->pa_flags, x.flags);
		if (z->pa_flags & IOVM_XLATE_PA_REAL)
			CHECK_EQ(z->hpa.addr, z->pa.addr);
	}
	CHECK_OK(iovm_zone_free(ctx, z));
	/* A zone of 4 KiB pages: what host_pa=on refuses outright. */
	ret = iovm_zone_reserve(ctx, "host-pa-4k", 8192, 0, IOVM_DMA_PAGE_4K, &z);
	if (m == MODE_ON) {
		CHECK_EQ(ret, -EOPNOTSUPP);
		return;
	}
	CHECK_EQ(ret, 0);
	check_heap(ctx, m, "zone of 4 KiB pages", z->va, z->len, t);
	CHECK_EQ(z->pa_flags, 0u);
	CHECK_OK(iovm_zone_free(ctx, z));
}

/*
 * A common buffer: all its pages host PAs or all emulated, as
 * iovm_pa_is_host() says; real ones are where the CPU's mapping (or, for
 * a non-coherent one, the heap's) has them.
 */
static void try_cbuf(struct iovm_ctx *ctx, enum mode m, uint32_t flags, struct tally *t)
{
	const char *what = flags ? "non-coherent common buffer" : "coherent common buffer";
	iovm_pa_t pages[8];
	struct iovm_cbuf *cb;
	unsigned n, real = 0;
	uint8_t *va;
	int ret = iovm_cbuf_alloc(ctx, 5 * 4096 + 100, flags, &cb);

	if (ret) {
		check_failed(m, what, -ret, false, t);
		return;
	}
	va = iovm_cbuf_ptr(cb);
	CHECK(va != NULL);
	CHECK_OK(iovm_cbuf_pages(cb, pages, 8, &n));
	CHECK_EQ(n, 6u);
	for (unsigned i = 0; i < n; i++) {
		int host = iovm_pa_is_host(ctx, pages[i]);

		CHECK(host == 0 || host == 1);
		real += (unsigned)host;
		CHECK_EQ(va[i * 4096], 0);
		if (!host)
			continue;
		if (!flags) {
			CHECK_MSG(kernel_pa(va + i * 4096) == pages[i].addr, "%s page %u: pa %#" PRIx64 ", kernel %#" PRIx64,
				  what, i, pages[i].addr, kernel_pa(va + i * 4096));
		} else {
			/* The device's side of a non-coherent buffer is heap memory: found by its PA. */
			uint8_t *mem = iovm_dma_ptr(ctx, pages[i]);

			CHECK(mem != NULL);
			CHECK_EQ(kernel_pa(mem), pages[i].addr);
		}
	}
	CHECK_MSG(real == 0 || real == n, "%s: %u of %u pages are host PAs", what, real, n);
	if (m == MODE_ON)
		CHECK_MSG(real == n, "%s: %s has emulated pages", mode_name[m], what);
	if (m == MODE_OFF)
		CHECK_EQ(real, 0u);
	/* Usable either way: a sync of the buffer, and the bytes the CPU wrote stay. */
	memset(va, 0x3c, 4096);
	CHECK_OK(iovm_dma_sync_for_device(ctx, va, 4096));
	CHECK_OK(iovm_dma_sync_for_cpu(ctx, va, 4096));
	CHECK_EQ(va[4095], 0x3c);
	if (real)
		t->real++;
	else
		t->emulated++;
	CHECK_OK(iovm_cbuf_free(cb));
}

/* Pools and guests: hugepages at their host PA, or refused. */
static void try_guest(struct iovm_ctx *ctx, enum mode m, struct tally *t)
{
	struct iovm_guest_attr a = { .size = 4 << 20, .placement = IOVM_PLACE_AUTO };
	struct iovm_guest_bank banks[IOVM_GUEST_MAX_BANKS];
	struct iovm_guest *g;
	struct iovm_pool *pool;
	unsigned n, real = 0;
	int ret;

	/* 4 KiB pages asked by name: refused with host_pa=on, emulated otherwise. */
	ret = iovm_pool_create(ctx, "host-pa-4k", 1 << 20, 4096, 1, &pool);
	if (m == MODE_ON) {
		CHECK_EQ(ret, -EOPNOTSUPP);
	} else {
		CHECK_OK(ret);
		CHECK_OK(iovm_pool_destroy(pool));
	}
	a.page_size = 4096;
	ret = iovm_guest_create(ctx, &a, &g);
	if (m == MODE_ON) {
		CHECK_EQ(ret, -EOPNOTSUPP);
	} else {
		CHECK_OK(ret);
		CHECK_OK(iovm_guest_banks(g, banks, IOVM_GUEST_MAX_BANKS, &n));
		for (unsigned i = 0; i < n; i++)
			CHECK_EQ(iovm_pa_is_host(ctx, banks[i].pa), 0);
		CHECK_OK(iovm_guest_destroy(g));
	}
	/* Whatever pages the machine has: with host_pa=on hugepages or nothing. */
	ret = iovm_pool_create(ctx, "host-pa-any", 2 << 20, 0, 1, &pool);
	if (ret) {
		check_failed(m, "pool", -ret, false, t);
	} else {
		CHECK_OK(iovm_pool_destroy(pool));
	}
	a.page_size = 0;
	ret = iovm_guest_create(ctx, &a, &g);
	if (ret) {
		check_failed(m, "guest", -ret, false, t);
		return;
	}
	CHECK_OK(iovm_guest_banks(g, banks, IOVM_GUEST_MAX_BANKS, &n));
	for (unsigned i = 0; i < n; i++) {
		int host = iovm_pa_is_host(ctx, banks[i].pa);

		CHECK(host == 0 || host == 1);
		real += (unsigned)host;
		if (m == MODE_ON)
			CHECK_MSG(host == 1, "%s: a guest bank at emulated PA %#" PRIx64, mode_name[m], banks[i].pa.addr);
		if (!host)
			continue;
		for (uint64_t off = 0; off < banks[i].len; off += 4096) {
			uint8_t *ram = iovm_guest_ptr(g, IOVM_GPA(banks[i].gpa.addr + off), NULL);

			CHECK(ram != NULL);
			CHECK_EQ(kernel_pa(ram), banks[i].pa.addr + off);
		}
	}
	if (real)
		t->real++;
	else
		t->emulated++;
	CHECK_OK(iovm_guest_destroy(g));
}

/*
 * Shares: host_pa=on refuses to make or join one; elsewhere what the
 * shared heap hands out is emulated, and says so. Last: from here on
 * the context's allocations come from the share.
 */
static void try_share(struct iovm_ctx *ctx, enum mode m, struct tally *t)
{
	struct iovm_share_params sp = { .heap_size = 4 << 20, .group = -1 };
	char name[32];
	uint8_t *p;

	snprintf(name, sizeof(name), "hostpa%d", (int)getpid());
	if (m == MODE_ON) {
		struct iovm_ctx *other;

		CHECK_EQ(iovm_share(ctx, name, &sp), -EOPNOTSUPP);
		CHECK_EQ(iovm_attach(name, "host_pa=on", &other), -EOPNOTSUPP);
		return;
	}
	CHECK_OK(iovm_share(ctx, name, &sp));
	p = iovm_dma_alloc(ctx, 64 << 10, 0, 0);
	CHECK(p != NULL);
	check_heap(ctx, m, "shared heap", p, 64 << 10, t);
	CHECK_OK(iovm_dma_free(ctx, p));
	{
		const struct iovm_zone *z;

		CHECK_EQ(iovm_zone_reserve(ctx, "host-pa-shared", 8192, 0, 0, &z), 0);
		CHECK_EQ(z->pa_flags, 0u);
		CHECK_EQ(iovm_pa_is_host(ctx, z->pa), 0);
		CHECK_OK(iovm_zone_free(ctx, z));
	}
}

/* Every kind of allocation in a context opened with @m's options; what it saw. */
static struct tally run_kinds(enum mode m, const char *label)
{
	char opts[96];
	struct iovm_ctx_info ci;
	struct iovm_ctx *ctx;
	struct tally t = { 0 };
	uint8_t *small, *mid, *big, *zeroed, *grown, *contig, *page4k, *bounded, *page2m;

	snprintf(opts, sizeof(opts), "%s,release_delay_ms=0", mode_name[m]);
	log_tally = &t;
	CHECK_OK(iovm_log_set_handler(on_log, NULL));
	ctx = open_ctx(opts);
	CHECK_OK(iovm_ctx_info(ctx, &ci));
	CHECK_EQ(ci.host_pa_only, m == MODE_ON);
	if (m == MODE_ON) {
		CHECK(ci.host_pa);
		CHECK(!ci.page_size_fallback);
	}
	if (m == MODE_OFF)
		CHECK(!ci.host_pa);

	small = try_alloc(ctx, m, "64 B", 64, 0, 0, false, &t);
	mid = try_alloc(ctx, m, "64 KiB", 64 << 10, 4096, 0, false, &t);
	big = try_alloc(ctx, m, "4 MiB", 4 << 20, 0, 0, false, &t);
	zeroed = try_alloc(ctx, m, "zeroed 100 KiB", 100 << 10, 0, IOVM_DMA_ZERO, false, &t);
	contig = try_alloc(ctx, m, "contiguous 4 MiB", 4 << 20, 0, IOVM_DMA_CONTIG, false, &t);
	bounded = try_alloc(ctx, m, "32 KiB within 64 KiB", 32 << 10, 0, IOVM_DMA_BOUNDARY(16), false, &t);
	/* 2 MiB pages only: any mode may run out of them. */
	page2m = try_alloc(ctx, m, "2 MiB pages only", 64 << 10, 0, IOVM_DMA_PAGE_2M, true, &t);
	/* 4 KiB pages only: host_pa=on refuses them whatever the pool holds. */
	errno = 0;
	page4k = iovm_dma_alloc(ctx, 8192, 0, IOVM_DMA_PAGE_4K);
	if (m == MODE_ON) {
		CHECK(page4k == NULL);
		CHECK_EQ(errno, EOPNOTSUPP);
	} else {
		CHECK(page4k != NULL);
		struct iovm_dma_xlate x;

		check_heap(ctx, m, "4 KiB pages only", page4k, 8192, &t);
		/* 4 KiB pages are never the host's, in any mode. */
		CHECK_OK(iovm_dma_xlate(ctx, page4k, &x));
		CHECK_EQ(x.flags, 0u);
	}
	/* Grown by realloc, past what it was: the new memory is held to the promise too. */
	grown = try_alloc(ctx, m, "100 B to grow", 100, 0, 0, false, &t);
	if (grown) {
		uint8_t *g2;

		memset(grown, 0x77, 100);
		errno = 0;
		g2 = iovm_dma_realloc(ctx, grown, 3 << 20, 0, IOVM_DMA_ZERO);
		if (!g2) {
			check_failed(m, "realloc to 3 MiB", errno, false, &t);
			CHECK_EQ(grown[99], 0x77); /* untouched on failure */
		} else {
			CHECK_EQ(g2[99], 0x77);
			CHECK_EQ(g2[(3 << 20) - 1], 0);
			check_heap(ctx, m, "realloc to 3 MiB", g2, 3 << 20, &t);
			grown = g2;
		}
	}
	try_zone(ctx, m, &t);
	try_cbuf(ctx, m, 0, &t);
	try_cbuf(ctx, m, IOVM_CBUF_NONCOHERENT, &t);
	try_guest(ctx, m, &t);

	/* host_pa=auto as root: whatever came out emulated, the log said so. */
	if (m == MODE_AUTO && ci.host_pa && t.emulated)
		CHECK_MSG(t.warned, "host_pa=auto handed out emulated PAs and the log did not say so");
	if (!ci.host_pa)
		CHECK_EQ(t.real, 0u);
	printf("# %s, %s: %u results at host PAs, %u emulated, %u refused\n", mode_name[m], label, t.real,
	       t.emulated, t.failed);
	fflush(stdout);

	CHECK_OK(iovm_dma_free(ctx, small));
	CHECK_OK(iovm_dma_free(ctx, mid));
	CHECK_OK(iovm_dma_free(ctx, big));
	CHECK_OK(iovm_dma_free(ctx, zeroed));
	CHECK_OK(iovm_dma_free(ctx, contig));
	CHECK_OK(iovm_dma_free(ctx, bounded));
	CHECK_OK(iovm_dma_free(ctx, page2m));
	CHECK_OK(iovm_dma_free(ctx, page4k));
	CHECK_OK(iovm_dma_free(ctx, grown));
	try_share(ctx, m, &t);
	CHECK_OK(iovm_close(ctx));
	CHECK_OK(iovm_log_set_handler(NULL, NULL));
	log_tally = NULL;
	return t;
}

/*
 * A child process that takes free 2 MiB pages one by one until @leave are
 * left (or none is to be had: others may take some meanwhile), and holds
 * them until it is killed; how many it holds in @held. Its pid, or -1
 * when the pool was that dry already.
 */
static pid_t hold_pool(unsigned leave, unsigned *held)
{
	uint32_t got = 0;
	pid_t parent = getpid(), pid;
	int fds[2];

	*held = 0;
	if (hugepages_available(SZ_2M, -1) <= leave)
		return -1;
	CHECK_OK(pipe(fds));
	fflush(NULL);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(fds[0]);
		while (getppid() == parent && hugepages_available(SZ_2M, -1) > leave && hp_take(1))
			got++;
		if (write(fds[1], &got, sizeof(got)) != sizeof(got))
			_exit(1);
		close(fds[1]);
		for (;;)
			pause();
	}
	close(fds[1]);
	CHECK_EQ(read(fds[0], &got, sizeof(got)), (ssize_t)sizeof(got));
	close(fds[0]);
	*held = got;
	return pid;
}

static void release_pool(pid_t pid)
{
	int status;

	if (pid <= 0)
		return;
	CHECK_OK(kill(pid, SIGKILL));
	CHECK_EQ(waitpid(pid, &status, 0), pid);
}

TEST(unprivileged_nothing_claims_host_pa)
{
	struct iovm_ctx *ctx;

	if (pagemap_shows_frames())
		SKIP_CASE("run as root: the host-PA cases cover it (run unprivileged to check this one)");
	CHECK_OK(iovm_log_set_handler(on_log, NULL)); /* the refusal is logged: not on the test's stderr */
	CHECK_EQ(iovm_open("host_pa=on", &ctx), -EPERM);
	CHECK_OK(iovm_log_set_handler(NULL, NULL));
	run_kinds(MODE_AUTO, "unprivileged");
	run_kinds(MODE_OFF, "unprivileged");
}

TEST(host_pa_off_never_real)
{
	run_kinds(MODE_OFF, "pool as found");
}

TEST(host_pa_on_pool_as_found)
{
	if (!pagemap_shows_frames())
		SKIP_CASE("pagemap hides host physical addresses (needs root): host_pa=on cannot open");
	if (!os_hugepage_supported(SZ_2M))
		SKIP_CASE("no 2 MiB hugepages in this kernel");
	run_kinds(MODE_ON, "pool as found");
	run_kinds(MODE_AUTO, "pool as found");
}

TEST(host_pa_on_pool_exhausted)
{
	struct tally t;
	unsigned held;
	pid_t holder;

	if (!pagemap_shows_frames())
		SKIP_CASE("pagemap hides host physical addresses (needs root): host_pa=on cannot open");
	if (!os_hugepage_supported(SZ_2M))
		SKIP_CASE("no 2 MiB hugepages in this kernel");
	holder = hold_pool(0, &held);
	printf("# another process holds %u hugepages; %" PRIu64 " free now\n", held,
	       hugepages_available(SZ_2M, -1));
	t = run_kinds(MODE_ON, "pool exhausted");
	/* What came (pages others gave back meanwhile) was real; the rest failed. */
	CHECK_EQ(t.emulated, 0u);
	t = run_kinds(MODE_AUTO, "pool exhausted");
	/* host_pa=auto fails for want of hugepages only where they were asked by name (IOVM_DMA_PAGE_2M). */
	CHECK(t.failed <= 1);
	release_pool(holder);
}

TEST(host_pa_on_pool_runs_dry_midway)
{
	struct tally t;
	unsigned held;
	pid_t holder;

	if (!pagemap_shows_frames())
		SKIP_CASE("pagemap hides host physical addresses (needs root): host_pa=on cannot open");
	if (hugepages_available(SZ_2M, -1) < 4)
		SKIP_CASE("fewer than 4 free 2 MiB hugepages at the moment");
	holder = hold_pool(3, &held);
	printf("# another process holds %u hugepages; %" PRIu64 " free now\n", held,
	       hugepages_available(SZ_2M, -1));
	t = run_kinds(MODE_ON, "3 hugepages left");
	CHECK_EQ(t.emulated, 0u);
	release_pool(holder);
	holder = hold_pool(3, &held);
	run_kinds(MODE_AUTO, "3 hugepages left");
	release_pool(holder);
}

/*
 * host_pa=on: an MR's IOVA maps application memory of 4 KiB pages, which
 * has no host PA: iovm_domain_translate() refuses to hand a PA out for
 * it, while the heap's memory mapped in the same domain translates to its
 * host PA.
 */
TEST(host_pa_on_registration_has_no_pa)
{
	struct iovm_domain_attr attr = { .type = IOVM_DOMAIN_MANAGED };
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	struct iovm_mr *mr;
	struct iovm_mr_info info;
	iovm_iova_t iova;
	iovm_pa_t pa, heap_pa;
	uint32_t perm;
	void *app, *heap;

	if (!pagemap_shows_frames())
		SKIP_CASE("pagemap hides host physical addresses (needs root): host_pa=on cannot open");
	if (!os_hugepage_supported(SZ_2M) || hugepages_available(SZ_2M, -1) < 1)
		SKIP_CASE("no free 2 MiB hugepage at the moment");
	CHECK_OK(iovm_open("host_pa=on", &ctx));
	CHECK_OK(iovm_domain_create(ctx, &attr, &dom));
	app = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(app != MAP_FAILED);
	memset(app, 1, 4 * 4096);
	CHECK_OK(iovm_mr_reg(dom, app, 4 * 4096, IOVM_ACCESS_LOCAL_WRITE, &mr));
	CHECK_OK(iovm_mr_query(mr, &info));
	CHECK_EQ(iovm_domain_translate(dom, info.iova, &pa, &perm), -EOPNOTSUPP);
	CHECK(strstr(iovm_error_detail(), "host PA"));
	/* The heap's memory in the same domain: its host PA. */
	heap = iovm_dma_alloc(ctx, 4096, 4096, 0);
	if (heap) {
		CHECK_OK(iovm_dma_pa(ctx, heap, &heap_pa));
		CHECK_OK(iovm_domain_map_ptr(dom, heap, 4096, IOVM_MAP_READ, &iova));
		CHECK_OK(iovm_domain_translate(dom, iova, &pa, &perm));
		CHECK_EQ(pa.addr, heap_pa.addr);
		CHECK_EQ(iovm_pa_is_host(ctx, pa), 1);
		CHECK_OK(iovm_domain_unmap(dom, iova, 4096));
		iovm_dma_free(ctx, heap);
	}
	CHECK_OK(iovm_mr_dereg(mr));
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_OK(iovm_close(ctx));
	munmap(app, 4 * 4096);
}

int main(void)
{
	test_init();
	pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (pagemap_fd < 0)
		SKIP("no /proc/self/pagemap: %s", strerror(errno));
	RUN(unprivileged_nothing_claims_host_pa);
	RUN(host_pa_off_never_real);
	RUN(host_pa_on_pool_as_found);
	RUN(host_pa_on_pool_exhausted);
	RUN(host_pa_on_pool_runs_dry_midway);
	RUN(host_pa_on_registration_has_no_pa);
	close(pagemap_fd);
	return 0;
}
