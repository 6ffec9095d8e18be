/* SPDX-License-Identifier: MIT */
/*
 * test_attack14_hostpa.c - host physical addresses (host_pa, iovm/ctx.h)
 * checked against /proc/self/pagemap, read here and not through iovm: with
 * host_pa=on every PA handed out is the host's or the call fails, for every
 * kind of memory, also with the hugepage pool held by another process and
 * running dry midway; with host_pa=auto IOVM_XLATE_PA_REAL is set exactly
 * where the PA is pagemap's, and iovm_pa_is_host() agrees.
 */
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>

#include "harness.h"
#include "hugepage_util.h"
#include "mem/mem_util.h"
#include "attack/attack.h"

#define PG 4096u

static int pagemap_fd = -1;

/* The host PA of @va by pagemap, or IOVM_ADDR_INVALID. The page is touched first. */
static uint64_t host_pa_of(const void *va)
{
	uint64_t e = 0;
	uintptr_t v = (uintptr_t)va;

	(void)*(volatile const uint8_t *)va;
	if (pread(pagemap_fd, &e, 8, (off_t)(v / PG) * 8) != 8)
		return IOVM_ADDR_INVALID;
	if (!(e >> 63) || !(e & ((UINT64_C(1) << 55) - 1)))
		return IOVM_ADDR_INVALID;
	return (e & ((UINT64_C(1) << 55) - 1)) * PG + (v % PG);
}

static unsigned long pages_checked;

/*
 * [p, p+len) of host_pa=on memory: every page's PA (iovm_dma_pa(),
 * iovm_dma_xlate()) is pagemap's, flagged real, iovm_pa_is_host() 1, and
 * every contiguous run iovm_dma_xlate() claims is contiguous in pagemap.
 */
static void check_real(struct iovm_ctx *ctx, const void *p, size_t len, const char *what)
{
	const uint8_t *b = p;
	unsigned bad = 0;

	for (size_t off = 0; off < len; off = (off / PG + 1) * PG) {
		struct iovm_dma_xlate x;
		iovm_pa_t pa;
		uint64_t h = host_pa_of(b + off);

		pages_checked++;
		if (iovm_dma_xlate(ctx, b + off, &x) || iovm_dma_pa(ctx, b + off, &pa)) {
			EXPECT_MSG(0, "%s+%#zx: no translation [%s]", what, off, iovm_error_detail());
			return;
		}
		if (x.pa.addr != h || pa.addr != h || !(x.flags & IOVM_XLATE_PA_REAL) || x.hpa.addr != h ||
		    iovm_pa_is_host(ctx, x.pa) != 1) {
			if (bad++ < 3)
				EXPECT_MSG(0, "%s+%#zx: pa %#llx hpa %#llx flags %u is_host %d; pagemap %#llx", what,
					   off, (unsigned long long)x.pa.addr, (unsigned long long)x.hpa.addr,
					   x.flags, iovm_pa_is_host(ctx, x.pa), (unsigned long long)h);
		}
		/* The claimed run: sample its pages. */
		if (off == 0 && x.contig > PG) {
			size_t run = x.contig;

			if (run > len)
				run = len;
			for (size_t o = PG - (uintptr_t)b % PG; o < run; o += 97 * PG) {
				uint64_t h2 = host_pa_of(b + o);

				if (h2 != h + o && bad++ < 3)
					EXPECT_MSG(0, "%s: contig %#zx claimed, but +%#zx is at %#llx, not %#llx",
						   what, x.contig, o, (unsigned long long)h2,
						   (unsigned long long)(h + o));
			}
		}
		/* iovm_dma_ptr() goes back. */
		if (off == 0 && iovm_dma_ptr(ctx, x.pa) != b)
			EXPECT_MSG(0, "%s: iovm_dma_ptr(%#llx) != %p", what, (unsigned long long)x.pa.addr,
				   (const void *)b);
	}
	EXPECT_MSG(bad == 0, "%s: %u pages whose PA is not the host's", what, bad);
}

/* host_pa=auto: the flag says exactly whether the PA is pagemap's. */
static void check_auto(struct iovm_ctx *ctx, const void *p, size_t len, const char *what, unsigned *real,
		       unsigned *emul)
{
	const uint8_t *b = p;

	for (size_t off = 0; off < len; off = (off / PG + 1) * PG) {
		struct iovm_dma_xlate x;
		uint64_t h = host_pa_of(b + off);
		int is_real, is_host;

		if (iovm_dma_xlate(ctx, b + off, &x)) {
			EXPECT_MSG(0, "%s+%#zx: no translation", what, off);
			return;
		}
		is_real = !!(x.flags & IOVM_XLATE_PA_REAL);
		is_host = iovm_pa_is_host(ctx, x.pa);
		EXPECT_MSG(is_real == (x.pa.addr == h), "%s+%#zx: PA_REAL %d but pa %#llx, pagemap %#llx", what,
			   off, is_real, (unsigned long long)x.pa.addr, (unsigned long long)h);
		EXPECT_MSG(is_host == is_real, "%s+%#zx: iovm_pa_is_host %d, PA_REAL %d", what, off, is_host,
			   is_real);
		if (is_real)
			(*real)++;
		else
			(*emul)++;
	}
}

static struct iovm_ctx *open_on(const char *extra)
{
	struct iovm_ctx *ctx = NULL;
	char o[256];
	int r;

	snprintf(o, sizeof(o), "oracle=on,log_level=error,host_pa=on%s%s", extra ? "," : "", extra ? extra : "");
	r = iovm_open(o, &ctx);
	if (r)
		return NULL;
	return ctx;
}

TEST(on_refused_unprivileged_or_works)
{
	struct iovm_ctx *ctx = NULL;
	int r = iovm_open("log_level=error,host_pa=on", &ctx);
	struct iovm_ctx_info in;

	if (geteuid() != 0) {
		EXPECT_MSG(r == -EPERM || r == -EOPNOTSUPP, "host_pa=on unprivileged: %d", r);
		if (!r)
			iovm_close(ctx);
		return;
	}
	if (r == -EOPNOTSUPP)
		SKIP_CASE("no hugepages in the kernel");
	CHECK_OK(r);
	CHECK_OK(iovm_ctx_info(ctx, &in));
	EXPECT(in.host_pa && in.host_pa_only && !in.page_size_fallback && in.host_pa_readable);
	{
		struct iovm_ctx *c2 = NULL;

		EXPECT_EQ(iovm_open("log_level=error,host_pa=on,page_size=4K", &c2), -EINVAL);
	}
	iovm_close(ctx);
}

/*
 * base.h: a failed call's detail names the call. iovm_open() refusing
 * host_pa=on with page_size=4K named iovm_log_set_level instead, when
 * log_level was among the options (fixed: it sets the level internally).
 */
TEST(open_detail_names_open)
{
	struct iovm_ctx *c = NULL;
	const char *d;

	EXPECT_EQ(iovm_open("log_level=error,host_pa=on,page_size=4K", &c), -EINVAL);
	d = iovm_error_detail();
	EXPECT_MSG(strncmp(d, "iovm_open", 9) == 0, "detail: \"%s\"", d);
}

TEST(on_every_kind)
{
	struct iovm_ctx *ctx;
	static const size_t sizes[] = { 1, 63, 64, 4095, 4096, 4097, 65536, 300001, (1u << 20),
					(2u << 20) - 1, 2u << 20, (2u << 20) + 1, 5u << 20 };
	void *p[sizeof(sizes) / sizeof(sizes[0])];
	char what[64];

	if (hugepages_available(2u << 20, -1) < 12)
		SKIP_CASE("fewer than 12 free 2 MiB hugepages");
	ctx = open_on(NULL);
	CHECK(ctx);
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		p[i] = (i & 1) ? iovm_dma_zalloc(ctx, sizes[i], 0, 0) : iovm_dma_alloc(ctx, sizes[i], 0, 0);
		if (!p[i]) {
			EXPECT_EQ(errno, ENOMEM);
			continue;
		}
		memset(p[i], 0x11, sizes[i]);
		snprintf(what, sizeof(what), "alloc(%zu)", sizes[i]);
		check_real(ctx, p[i], sizes[i], what);
	}
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		if (p[i])
			CHECK_OK(iovm_dma_free(ctx, p[i]));
	{
		struct {
			size_t size, align;
			uint32_t flags;
		} f[] = {
			{ 3u << 20, 0, IOVM_DMA_CONTIG },
			{ 100000, 4096, IOVM_DMA_BOUNDARY(17) },
			{ 1u << 20, 0, IOVM_DMA_BOUNDARY(21) | IOVM_DMA_CONTIG },
			{ 12345, 0, IOVM_DMA_NODE(0) },
			{ 777, 0, IOVM_DMA_PAGE_2M },
			{ 1u << 21, 1u << 21, IOVM_DMA_PAGE_2M | IOVM_DMA_ZERO },
		};
		for (unsigned i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
			void *q = iovm_dma_alloc(ctx, f[i].size, f[i].align, f[i].flags);

			if (!q) {
				EXPECT_MSG(errno == ENOMEM, "flags %#x: errno %d", f[i].flags, errno);
				continue;
			}
			snprintf(what, sizeof(what), "alloc(%zu, flags %#x)", f[i].size, f[i].flags);
			check_real(ctx, q, f[i].size, what);
			if (f[i].flags & IOVM_DMA_CONTIG) {
				uint64_t h0 = host_pa_of(q);

				for (size_t o = PG - (uintptr_t)q % PG; o < f[i].size; o += PG)
					if (host_pa_of((uint8_t *)q + o) != h0 + o) {
						EXPECT_MSG(0, "CONTIG not contiguous in host memory at +%#zx", o);
						break;
					}
			}
			CHECK_OK(iovm_dma_free(ctx, q));
		}
	}
	CHECK_NULL_ERRNO(iovm_dma_alloc(ctx, 4096, 0, IOVM_DMA_PAGE_4K), EOPNOTSUPP);
	/* realloc: growth and shrink, each result rechecked. */
	{
		uint8_t *r = iovm_dma_alloc(ctx, 1000, 0, 0);
		static const size_t steps[] = { 5000, 70000, 1u << 20, 3u << 20, 4096, 100, (2u << 20) + 7, 64 };

		CHECK(r);
		memset(r, 0x3c, 1000);
		size_t have = 1000;

		for (unsigned i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
			uint8_t *n = iovm_dma_realloc(ctx, r, steps[i], 0, 0);

			if (!n) {
				EXPECT_EQ(errno, ENOMEM);
				continue;
			}
			size_t keep = have < steps[i] ? have : steps[i];

			EXPECT_MSG(all_bytes(n, keep, 0x3c), "realloc to %zu lost contents", steps[i]);
			memset(n, 0x3c, steps[i]);
			have = steps[i];
			r = n;
			snprintf(what, sizeof(what), "realloc(%zu)", steps[i]);
			check_real(ctx, r, steps[i], what);
		}
		CHECK_OK(iovm_dma_free(ctx, r));
	}
	/* Zones. */
	{
		const struct iovm_zone *z;
		static const size_t zs[] = { 64, 4096, 1u << 20, 3u << 20 };

		for (unsigned i = 0; i < 4; i++) {
			snprintf(what, sizeof(what), "a14hz%u", i);
			int r = iovm_zone_reserve(ctx, what, zs[i], i == 3 ? (1u << 21) : 0, 0, &z);

			if (r == -ENOMEM)
				continue;
			CHECK_EQ(r, 0);
			EXPECT_EQ(z->pa.addr, host_pa_of(z->va));
			EXPECT_EQ(z->hpa.addr, z->pa.addr);
			EXPECT_MSG(z->pa_flags & IOVM_XLATE_PA_REAL, "zone %s pa_flags %u", z->name, z->pa_flags);
			check_real(ctx, z->va, z->len, z->name);
			for (size_t o = PG; o < z->len; o += PG)
				if (host_pa_of((uint8_t *)z->va + o) != z->pa.addr + o) {
					EXPECT_MSG(0, "zone %s not contiguous at +%#zx", z->name, o);
					break;
				}
			CHECK_OK(iovm_zone_free(ctx, z));
		}
	}
	/* Common buffers: each page's PA is pagemap's of the CPU's view. */
	{
		static const size_t cs[] = { 4096, 10000, 1u << 20, 3u << 20 };

		for (unsigned i = 0; i < 4; i++) {
			struct iovm_cbuf *cb;
			iovm_pa_t pages[1024];
			unsigned n = 0, bad = 0;
			int r = iovm_cbuf_alloc(ctx, cs[i], i & 1 ? IOVM_CBUF_NONCOHERENT : 0, &cb);

			if (r == -ENOMEM)
				continue;
			CHECK_EQ(r, 0);
			CHECK_OK(iovm_cbuf_pages(cb, pages, 1024, &n));
			EXPECT_EQ(n, (cs[i] + PG - 1) / PG);
			uint8_t *v = iovm_cbuf_ptr(cb);

			/* A non-coherent buffer's CPU view is the CPU's own copy: only its PAs' kind is checked. */
			for (unsigned k = 0; k < n && k < 1024; k++) {
				uint64_t h = (i & 1) ? pages[k].addr : host_pa_of(v + (size_t)k * PG);

				if ((pages[k].addr != h || iovm_pa_is_host(ctx, pages[k]) != 1) && bad++ < 3)
					EXPECT_MSG(0, "cbuf(%zu) page %u: %#llx, pagemap %#llx, is_host %d", cs[i], k,
						   (unsigned long long)pages[k].addr, (unsigned long long)h,
						   iovm_pa_is_host(ctx, pages[k]));
			}
			EXPECT_EQ(bad, 0);
			CHECK_OK(iovm_cbuf_free(cb));
		}
	}
	/* Pools of 4 KiB pages and sharing refused. */
	{
		struct iovm_pool *pl;

		CHECK_RET(iovm_pool_create(ctx, "a14p4k", 1u << 20, 4096, 4, &pl), -EOPNOTSUPP);
		CHECK_RET(iovm_share(ctx, "a14share", NULL), -EOPNOTSUPP);
	}
	/* A guest: banks and its memory at host PAs. */
	if (hugepages_available(2u << 20, -1) >= 3) {
		struct iovm_guest_attr ga = { .size = 4u << 20, .flags = IOVM_GUEST_DIRECT_MAP };
		struct iovm_guest *g;
		struct iovm_guest_bank bk[8];
		unsigned nb = 0;
		int r = iovm_guest_create(ctx, &ga, &g);

		if (r != -ENOMEM) {
			CHECK_EQ(r, 0);
			CHECK_OK(iovm_guest_banks(g, bk, 8, &nb));
			CHECK(nb >= 1);
			for (unsigned i = 0; i < nb && i < 8; i++) {
				size_t l = 0;
				uint8_t *gp = iovm_guest_ptr(g, bk[i].gpa, &l);

				CHECK(gp);
				EXPECT_EQ(bk[i].gpa.addr, bk[i].pa.addr);
				EXPECT_EQ(iovm_pa_is_host(ctx, bk[i].pa), 1);
				for (size_t o = 0; o < bk[i].len; o += 61 * PG)
					EXPECT_MSG(host_pa_of(gp + o) == bk[i].pa.addr + o,
						   "guest bank %u +%#zx: pagemap %#llx, bank pa %#llx", i, o,
						   (unsigned long long)host_pa_of(gp + o),
						   (unsigned long long)(bk[i].pa.addr + o));
			}
			CHECK_OK(iovm_guest_destroy(g));
		}
		struct iovm_guest_attr g4 = { .size = 1u << 20, .page_size = 4096 };

		CHECK_RET(iovm_guest_create(ctx, &g4, &g), -EOPNOTSUPP);
	}
	iovm_close(ctx);
}

/* The pool held by another process: fail, or give memory at host PAs. */
TEST(on_pool_exhausted)
{
	struct hp_contender c;
	struct iovm_ctx *ctx;
	unsigned fails = 0, oks = 0;
	unsigned avail = (unsigned)hugepages_available(2u << 20, -1);

	if (avail < 2)
		SKIP_CASE("fewer than 2 free hugepages");
	ctx = open_on("release_delay_ms=0");
	CHECK(ctx);
	/* Hold all but one free page. */
	int r = hp_contender_start(&c, avail - 1, 0);

	if (r && c.held == 0) {
		hp_contender_stop(&c);
		iovm_close(ctx);
		SKIP_CASE("the contender got no pages");
	}
	for (int i = 0; i < 12; i++) {
		size_t sz = (size_t)(i + 1) << 20;
		void *p = iovm_dma_alloc(ctx, sz, 0, i % 2 ? IOVM_DMA_CONTIG : 0);

		if (!p) {
			EXPECT_MSG(errno == ENOMEM, "alloc(%zu) with the pool dry: errno %d", sz, errno);
			fails++;
			continue;
		}
		oks++;
		check_real(ctx, p, sz, "alloc, pool dry");
		iovm_dma_free(ctx, p);
	}
	{
		struct iovm_cbuf *cb[8];
		int n = 0;

		for (; n < 8; n++) {
			int rc = iovm_cbuf_alloc(ctx, 1u << 20, 0, &cb[n]);

			if (rc) {
				EXPECT_MSG(rc == -ENOMEM, "cbuf with the pool dry: %d", rc);
				fails++;
				break;
			}
			iovm_pa_t pages[256];
			unsigned np = 0;

			CHECK_OK(iovm_cbuf_pages(cb[n], pages, 256, &np));
			uint8_t *v = iovm_cbuf_ptr(cb[n]);

			for (unsigned k = 0; k < np; k += 17)
				EXPECT_EQ(pages[k].addr, host_pa_of(v + (size_t)k * PG));
		}
		while (n-- > 0)
			iovm_cbuf_free(cb[n]);
	}
	{
		const struct iovm_zone *z;
		int rz = iovm_zone_reserve(ctx, "a14dry", 8u << 20, 0, 0, &z);

		if (rz >= 0) {
			check_real(ctx, z->va, z->len, "zone, pool dry");
			iovm_zone_free(ctx, z);
		} else {
			EXPECT_EQ(rz, -ENOMEM);
			fails++;
		}
	}
	EXPECT_MSG(fails > 0, "with %u of %u pages held elsewhere nothing failed", c.held, avail);
	hp_contender_stop(&c);
	iovm_close(ctx);
	printf("# pool dry: %u allocations succeeded, %u failed\n", oks, fails);
}

/* The pool running dry midway: a drainer takes every free page now and then. */
TEST(on_pool_draining)
{
	struct hp_contender c;
	struct iovm_ctx *ctx;
	uint64_t seed = 1414;
	unsigned ok = 0, nomem = 0;

	if (hugepages_available(2u << 20, -1) < 6)
		SKIP_CASE("fewer than 6 free hugepages");
	ctx = open_on("release_delay_ms=0");
	CHECK(ctx);
	hp_contender_start_mode(&c, 0, 2, true);
	for (int i = 0; i < 300; i++) {
		size_t sz = 1 + test_rand(&seed) % (3u << 20);
		void *p = iovm_dma_alloc(ctx, sz, 0, 0);

		if (!p) {
			EXPECT_MSG(errno == ENOMEM, "errno %d", errno);
			nomem++;
		} else {
			ok++;
			check_real(ctx, p, sz, "alloc, pool draining");
			void *q = iovm_dma_realloc(ctx, p, sz * 2, 0, 0);

			if (q) {
				check_real(ctx, q, sz * 2, "realloc, pool draining");
				p = q;
			}
			CHECK_OK(iovm_dma_free(ctx, p));
		}
		if (i % 16 == 0)
			iovm_dma_trim(ctx, IOVM_TRIM_ALL);
	}
	hp_contender_stop(&c);
	iovm_close(ctx);
	CHECK(ok > 0);
	printf("# pool draining: %u ok, %u ENOMEM, %lu pages checked\n", ok, nomem, pages_checked);
}

/* host_pa=auto, with and without hugepages free: the flag says exactly which PA is the host's. */
TEST(auto_flag_exact)
{
	struct iovm_ctx *ctx = NULL;
	struct iovm_ctx_info in;
	unsigned real = 0, emul = 0;
	struct hp_contender c;

	CHECK_OK(iovm_open("oracle=on,log_level=error,host_pa=auto,release_delay_ms=0", &ctx));
	CHECK_OK(iovm_ctx_info(ctx, &in));
	if (!in.host_pa) {
		iovm_close(ctx);
		SKIP_CASE("host_pa=auto resolved to off here");
	}
	for (int i = 0; i < 6; i++) {
		size_t sz = (size_t)(i * 700000 + 1);
		void *p = iovm_dma_alloc(ctx, sz, 0, 0);
		void *q = iovm_dma_alloc(ctx, sz, 0, IOVM_DMA_PAGE_4K);

		CHECK(p && q);
		check_auto(ctx, p, sz, "auto alloc", &real, &emul);
		check_auto(ctx, q, sz, "auto alloc 4K", &real, &emul);
		iovm_dma_free(ctx, p);
		iovm_dma_free(ctx, q);
	}
	/* Now with the pool held: the fallback, and common buffers of 4 KiB pages. */
	unsigned avail = (unsigned)hugepages_available(2u << 20, -1);

	iovm_dma_trim(ctx, IOVM_TRIM_ALL);
	if (avail && hp_contender_start(&c, avail, 0) == 0) {
		void *p = iovm_dma_alloc(ctx, 3u << 20, 0, 0);
		struct iovm_cbuf *cb;

		if (p) {
			check_auto(ctx, p, 3u << 20, "auto alloc, pool held", &real, &emul);
			iovm_dma_free(ctx, p);
		}
		if (iovm_cbuf_alloc(ctx, 40000, 0, &cb) == 0) {
			iovm_pa_t pages[16];
			unsigned n = 0;
			uint8_t *v = iovm_cbuf_ptr(cb);

			CHECK_OK(iovm_cbuf_pages(cb, pages, 16, &n));
			for (unsigned k = 0; k < n && k < 16; k++) {
				int ih = iovm_pa_is_host(ctx, pages[k]);
				uint64_t h = host_pa_of(v + (size_t)k * PG);

				EXPECT_MSG(ih == (pages[k].addr == h), "cbuf page %u: is_host %d, pa %#llx, pagemap %#llx",
					   k, ih, (unsigned long long)pages[k].addr, (unsigned long long)h);
			}
			iovm_cbuf_free(cb);
		}
		hp_contender_stop(&c);
	} else if (avail) {
		hp_contender_stop(&c);
	}
	iovm_close(ctx);
	EXPECT(real + emul > 0);
	printf("# auto: %u real pages, %u emulated\n", real, emul);
}

int main(void)
{
	test_init();
	RUN(on_refused_unprivileged_or_works);
	RUN(open_detail_names_open);
	if (geteuid() != 0) {
		printf("# SKIP: the rest needs root (pagemap shows host PAs to root only)\n");
		return attack_status();
	}
	pagemap_fd = open("/proc/self/pagemap", O_RDONLY);
	CHECK(pagemap_fd >= 0);
	{
		struct iovm_ctx *c = open_on(NULL);

		if (!c) {
			printf("# SKIP: host_pa=on cannot be opened here: %s\n", iovm_error_detail());
			return attack_status();
		}
		iovm_close(c);
	}
	RUN(on_every_kind);
	RUN(on_pool_exhausted);
	RUN(on_pool_draining);
	RUN(auto_flag_exact);
	return attack_status();
}
