/* SPDX-License-Identifier: MIT */
/*
 * test_mp_domain_rcache.c - a registration cache in front of a shared
 * domain (iovm_rcache_create() on a view of iovm_share_domain_create()):
 * what reg.h promises of any cache, and what a shared domain adds. A hit
 * is the MR registered at the miss, whose IOVAs every process's device
 * reaches (another's through the registering process); memory taken away
 * is never served again, and the MR for the new memory reaches the new
 * bytes; each registration takes whole 2 MiB units of the domain's
 * window (mp.h), so a cache of small regions fills a small window long
 * before its own limits: a miss then evicts what is idle and registers,
 * and fails with -ENOSPC, leaking nothing, only when everything is held.
 * The cache gone, every IOVA is the domain's again.
 */
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mp_sdom.h"
#include "mp_util.h"

#define HEAP (UINT64_C(16) << 20)
#define DOM "rc-dom"
#define PG 4096u
#define UNIT (UINT64_C(2) << 20)
/* A window of 32 units: 32 registrations, however small. */
#define WINDOW (32 * UNIT)
#define REGIONS 100

static const char *g_name;

static struct iovm_rcache_stats cstats(struct iovm_rcache *c)
{
	struct iovm_rcache_stats st;

	CHECK_OK(iovm_rcache_stats(c, &st));
	return st;
}

static uint64_t iova_allocated(struct iovm_domain *dom)
{
	struct iovm_domain_stats st;

	CHECK_OK(iovm_domain_stats(dom, &st));
	return st.iova_allocated;
}

/* The IOVA of @p in @mr, which must hold it. */
static uint64_t mr_iova_of(struct iovm_mr *mr, const void *p, size_t len)
{
	iovm_iova_t iova;

	CHECK_OK(iovm_mr_iova(mr, p, len, &iova));
	return iova.addr;
}

static void pattern(uint8_t *p, size_t len, uint8_t seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 13 + seed);
}

static bool has_pattern(const uint8_t *p, size_t len, uint8_t seed)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != (uint8_t)(i * 13 + seed))
			return false;
	return true;
}

/*
 * Another process's device on the cache's MRs: each request names an
 * IOVA and a seed; it reads the page there (through the registering
 * process) and says whether the bytes were the seed's, then fills the
 * page's second half with 0xc3. A zero IOVA ends it.
 */
static void reader_child(int rd, int wr, void *arg)
{
	struct iovm_ctx *ctx = attach_ok(g_name);
	struct iovm_domain *dom;
	struct sdom_buf back;
	struct devq d;
	uint64_t iova;

	(void)arg;
	CHECK_OK(iovm_share_domain_open(ctx, DOM, &dom));
	d = devq_open(ctx, dom);
	back = sdom_buf_open(ctx, dom, PG);
	put64(wr, 1);
	while ((iova = get64(rd))) {
		uint8_t seed = (uint8_t)get64(rd), st;

		memset(back.p, 0, PG);
		st = devq_run(&d, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = iova, .dst = back.iova, .len = PG });
		put64(wr, st);
		if (st != IOVM_STATUS_SUCCESS)
			continue;
		put64(wr, has_pattern(back.p, PG, seed));
		put64(wr, devq_fill(&d, iova + PG / 2, PG / 2, 0xc3));
	}
	sdom_buf_close(ctx, dom, &back);
	devq_close(&d);
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_OK(iovm_close(ctx));
}

/* Through the child: the page at @iova read as @seed's, then half filled. */
static void child_reads(struct child *c, uint64_t iova, uint8_t seed)
{
	put64(c->wr, iova);
	put64(c->wr, seed);
	CHECK_EQ(get64(c->rd), IOVM_STATUS_SUCCESS);
	CHECK_EQ(get64(c->rd), 1);
	CHECK_EQ(get64(c->rd), IOVM_STATUS_SUCCESS);
}

TEST(cache_in_a_shared_domain)
{
	struct iovm_share_domain_params params = { .iova_size = WINDOW };
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	struct iovm_rcache *c;
	struct iovm_mr *m, *again, *held[REGIONS];
	struct sdom_buf back;
	struct child ch;
	struct devq d;
	uint64_t iovas, iova;
	uint8_t *app = mmap(NULL, REGIONS * 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int held_n = 0, ret;

	CHECK(app != MAP_FAILED);
	for (int i = 0; i < REGIONS; i++)
		pattern(app + i * 2 * PG, PG, (uint8_t)i);
	g_name = share_name("dom-rcache");
	ctx = share_ok(g_name, HEAP);
	CHECK_OK(iovm_share_domain_create(ctx, DOM, &params, &dom));
	iovas = iova_allocated(dom);
	/* The child before any registration: a fork waits for the monitor's reader, which TSan's fork holds off. */
	ch = child_start(reader_child, NULL);
	CHECK_EQ(get64(ch.rd), 1);
	d = devq_open(ctx, dom);
	back = sdom_buf_open(ctx, dom, PG);
	CHECK_OK(iovm_rcache_create(dom, NULL, &c));

	/* A miss, then a hit of the same MR; this process's device and the child's reach it. */
	CHECK_OK(iovm_rcache_get(c, app, PG, IOVM_ACCESS_LOCAL_WRITE, &m));
	CHECK_OK(iovm_rcache_get(c, app + 100, 200, IOVM_ACCESS_LOCAL_WRITE, &again));
	CHECK(again == m);
	CHECK_EQ(cstats(c).misses, 1);
	CHECK_EQ(cstats(c).hits, 1);
	iova = mr_iova_of(m, app, PG);
	CHECK(iova >= (UINT64_C(4) << 30) && iova < (UINT64_C(4) << 30) + WINDOW);
	CHECK_EQ(devq_run(&d, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = iova, .dst = back.iova, .len = PG }),
		 IOVM_STATUS_SUCCESS);
	CHECK(has_pattern(back.p, PG, 0));
	child_reads(&ch, iova, 0);
	CHECK(all_bytes(app + PG / 2, PG / 2, 0xc3));
	CHECK_OK(iovm_rcache_put(c, again));
	CHECK_OK(iovm_rcache_put(c, m));

	/* Memory taken away and mapped anew at the same address: never the old MR's pages. */
	CHECK_OK(munmap(app, PG));
	CHECK(mmap(app, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == app);
	pattern(app, PG, 0x40);
	CHECK_EQ(devq_fill(&d, iova, PG, 0x11), IOVM_STATUS_PAGE_FAULT);
	CHECK_OK(iovm_rcache_get(c, app, PG, IOVM_ACCESS_LOCAL_WRITE, &m));
	CHECK_EQ(cstats(c).misses, 2);
	iova = mr_iova_of(m, app, PG);
	child_reads(&ch, iova, 0x40);
	CHECK(has_pattern(app, PG / 2, 0x40));
	CHECK(all_bytes(app + PG / 2, PG / 2, 0xc3));
	CHECK_OK(iovm_rcache_put(c, m));
	pattern(app, PG, 0);

	/*
	 * More small regions than the window has units, each got and put in
	 * turn: the cache's own limits are far off, the window is not. Each
	 * miss past the window's end evicts what is idle and registers.
	 */
	for (int i = 0; i < REGIONS; i++) {
		uint8_t *p = app + i * 2 * PG;

		ret = iovm_rcache_get(c, p, PG, IOVM_ACCESS_LOCAL_WRITE, &m);
		CHECK_MSG(ret == 0, "get %d: %d: %s", i, ret, iovm_error_detail());
		if (i % 9 == 0) {
			child_reads(&ch, mr_iova_of(m, p, PG), (uint8_t)i);
			pattern(p, PG, (uint8_t)i);
		}
		CHECK_OK(iovm_rcache_put(c, m));
	}
	CHECK(cstats(c).regions <= WINDOW / UNIT);
	CHECK(cstats(c).evictions >= REGIONS - WINDOW / UNIT);

	/* Everything held: a miss that finds no room fails, and leaves nothing behind. */
	for (held_n = 0; held_n < REGIONS; held_n++) {
		ret = iovm_rcache_get(c, app + held_n * 2 * PG, PG, IOVM_ACCESS_LOCAL_WRITE, &held[held_n]);
		if (ret)
			break;
	}
	CHECK_EQ(ret, -ENOSPC);
	CHECK(held_n > 0 && held_n <= (int)(WINDOW / UNIT));
	CHECK_EQ(cstats(c).regions, (uint64_t)held_n);
	/* One put, and the same miss registers. */
	CHECK_OK(iovm_rcache_put(c, held[0]));
	CHECK_OK(iovm_rcache_get(c, app + held_n * 2 * PG, PG, IOVM_ACCESS_LOCAL_WRITE, &held[0]));
	for (int i = 0; i < held_n; i++)
		CHECK_OK(iovm_rcache_put(c, held[i]));

	/* The cache gone, the window is the domain's again. */
	CHECK_OK(iovm_rcache_destroy(c));
	put64(ch.wr, 0);
	child_ok(&ch);
	CHECK_EQ(iova_allocated(dom), iovas + PG);
	sdom_buf_close(ctx, dom, &back);
	CHECK_EQ(iova_allocated(dom), iovas);
	devq_close(&d);
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_OK(iovm_share_check(ctx));
	CHECK_OK(iovm_close(ctx));
	munmap(app, REGIONS * 2 * PG);
}

int main(void)
{
	RUN(cache_in_a_shared_domain);
	return 0;
}
