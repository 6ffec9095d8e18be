/* SPDX-License-Identifier: MIT */
/*
 * fault_reg.c - fault-injection scenarios of iovm/reg.h: pinned, on-demand
 * and implicit registrations of the application's own memory, queried,
 * translated, prefetched and deregistered; the registration cache's misses,
 * hits and puts; the statistics.
 */
#include <sys/mman.h>

#include "fault.h"

#define LEN (256u << 10)

/*
 * The application's memory: not iovm's, and not counted by the injection
 * (the test's own mmap). 64 KiB aligned: an on-demand prefetch pins whole
 * 64 KiB chunks, and one reaching past the mapping fails with -EFAULT
 * (reported apart).
 */
static uint8_t *app_map(size_t len)
{
	size_t pad = 64 << 10;
	uint8_t *p = mmap(NULL, len + pad, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), *a;

	CHECK(p != MAP_FAILED);
	a = (uint8_t *)(((uintptr_t)p + pad - 1) & ~(uintptr_t)(pad - 1));
	if (a > p)
		munmap(p, (size_t)(a - p));
	if (a + len < p + len + pad)
		munmap(a + len, (size_t)(p + len + pad - (a + len)));
	memset(a, 0x3c, len);
	return a;
}

/* @mr holds [p, p+len): its IOVA translates to what the heap... to memory the domain maps. */
static void check_mr(struct iovm_domain *dom, struct iovm_mr *mr, uint8_t *p, size_t len, bool on_demand)
{
	struct iovm_mr_info info;
	iovm_iova_t iova;
	iovm_pa_t pa;
	uint32_t perm;

	FI_INT(iovm_mr_query(mr, &info));
	CHECK(info.addr == p);
	CHECK_EQ(info.len, len);
	CHECK_EQ(info.on_demand, on_demand);
	CHECK(info.lkey != 0);
	FI_INT(iovm_mr_iova(mr, p + 4096, 4096, &iova));
	CHECK_EQ(iova.addr, info.iova.addr + 4096);
	{
		struct iovm_mr_keys keys;

		FI_INT(iovm_mr_keys(mr, p + 4096, 4096, &keys));
		CHECK(keys.lkey == info.lkey && keys.rkey == info.rkey && keys.addr == p && keys.len == len);
	}
	if (!on_demand)
		FI_INT(iovm_domain_translate(dom, iova, &pa, &perm));
}

static int have_monitor = -1; /* this machine gives iovm a memory monitor (userfaultfd) */

static void sc_mr(void)
{
	struct iovm_ctx *ctx = fault_open("page_size=4K,host_pa=off,pin_budget=64M");
	struct iovm_domain_attr attr = { .type = IOVM_DOMAIN_MANAGED };
	struct iovm_mr *pinned, *odp, *implicit, *async;
	struct iovm_reg_stats rs;
	struct iovm_domain *dom;
	uint8_t *p = app_map(LEN), *q = app_map(LEN);
	int ret;

	implicit = NULL;

	FI_INT(iovm_domain_create(ctx, &attr, &dom));
	FI_INT(iovm_mr_reg(dom, p, LEN, IOVM_ACCESS_LOCAL_WRITE, &pinned));
	check_mr(dom, pinned, p, LEN, false);
	FI_INT(iovm_mr_reg(dom, p, LEN, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND, &odp));
	check_mr(dom, odp, p, LEN, true);
	FI_INT(iovm_mr_advise(odp, p + 8192, 64 << 10, IOVM_ADVISE_WRITE));
	FI_EXPECT(iovm_mr_advise(pinned, p, 4096, 0), -EINVAL);
	/*
	 * The whole address space, under one key: needs the memory monitor.
	 * Whether this machine has one, the run with nothing injected says;
	 * after that, a failure injected anywhere must not lose it.
	 */
	if (fault_reference_run() && have_monitor < 0) {
		ret = iovm_mr_reg(dom, NULL, SIZE_MAX, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND, &implicit);
		CHECK(ret == 0 || ret == -EOPNOTSUPP);
		have_monitor = ret == 0;
		if (!have_monitor)
			printf("# no memory monitor here: implicit registrations not exercised\n");
	} else if (have_monitor) {
		ret = iovm_mr_reg(dom, NULL, SIZE_MAX, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND, &implicit);
		if (ret < 0) {
			/* A monitor that could not start is tried again at the next registration. */
			fault_met("iovm_mr_reg(implicit)", ret, __FILE__, __LINE__);
			FI_INT(iovm_mr_reg(dom, NULL, SIZE_MAX, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND,
					   &implicit));
		}
	}
	if (implicit) {
		struct iovm_mr_keys keys;
		struct iovm_mr_info info;

		FI_INT(iovm_mr_advise(implicit, q, 64 << 10, IOVM_ADVISE_WRITE));
		/* iovm's own engine: the implicit MR's one key, for all of user space. */
		FI_INT(iovm_mr_keys(implicit, q, 4096, &keys));
		FI_INT(iovm_mr_query(implicit, &info));
		CHECK(keys.lkey == info.lkey && keys.lkey != 0 && (uintptr_t)keys.addr <= (uintptr_t)q);
	}
	/* Pinned in the background: a thread that cannot start leaves the others to pin it all. */
	FI_INT(iovm_mr_reg_async(dom, q, LEN, IOVM_ACCESS_LOCAL_WRITE, IOVM_REG_THREADS(2) | IOVM_REG_CHUNK_SHIFT(16),
				 &async));
	FI_INT(iovm_mr_wait(async, q, LEN, -1));
	FI_INT(iovm_mr_ready(async, NULL));
	check_mr(dom, async, q, LEN, false);
	FI_INT(iovm_reg_stats(ctx, &rs));
	CHECK(rs.mrs >= 2);
	if (implicit)
		FI_INT(iovm_mr_dereg(implicit));
	FI_INT(iovm_mr_dereg(async));
	FI_INT(iovm_mr_dereg(odp));
	FI_INT(iovm_mr_dereg(pinned));
	FI_INT(iovm_reg_stats(ctx, &rs));
	CHECK_EQ(rs.mrs, 0);
	CHECK_EQ(rs.locked_bytes, 0);
	FI_INT(iovm_domain_destroy(dom));
	CHECK_EQ(iovm_close(ctx), 0);
	munmap(p, LEN);
	munmap(q, LEN);
}

static void sc_rcache(void)
{
	struct iovm_ctx *ctx = fault_open("page_size=4K,host_pa=off");
	struct iovm_domain_attr attr = { .type = IOVM_DOMAIN_MANAGED };
	struct iovm_rcache_attr ca = { .max_regions = 4 };
	struct iovm_mr *m1, *m2, *m3;
	struct iovm_rcache_stats cs;
	struct iovm_rcache *cache;
	struct iovm_domain *dom;
	uint8_t *p = app_map(LEN);

	FI_INT(iovm_domain_create(ctx, &attr, &dom));
	FI_INT(iovm_rcache_create(dom, &ca, &cache));
	FI_INT(iovm_rcache_get(cache, p, 64 << 10, IOVM_ACCESS_LOCAL_WRITE, &m1));
	check_mr(dom, m1, p, 64 << 10, false);
	FI_INT(iovm_rcache_put(cache, m1));
	/* The same memory again: found (or, if the first miss's region was not kept, registered). */
	FI_INT(iovm_rcache_get(cache, p + 4096, 8192, IOVM_ACCESS_LOCAL_WRITE, &m2));
	FI_INT(iovm_rcache_get(cache, p + (128 << 10), 64 << 10, IOVM_ACCESS_LOCAL_WRITE, &m3));
	FI_INT(iovm_rcache_put(cache, m2));
	FI_INT(iovm_rcache_put(cache, m3));
	FI_INT(iovm_rcache_stats(cache, &cs));
	CHECK(cs.hits + cs.misses >= 3);
	FI_INT(iovm_rcache_destroy(cache));
	FI_INT(iovm_domain_destroy(dom));
	CHECK_EQ(iovm_close(ctx), 0);
	munmap(p, LEN);
}

static const struct fault_scenario fault_reg_scenarios[] = {
	{ "registrations", sc_mr },
	{ "registration cache", sc_rcache },
	{ NULL, NULL },
};
