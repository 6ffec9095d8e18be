/* SPDX-License-Identifier: MIT */
/*
 * test_guest.c - guests end to end through the software engine: direct-
 * mapped guests placed automatically, from pools and at named banks; DMA
 * with guest addresses through stage 2 and without translation; identity
 * refused to untrusted guests; nested translation with faults attributed
 * to the stage that faulted; reboot on the same banks; pool exhaustion.
 *
 * The device's PASID 0 is the monitor's (its rings live in the heap); the
 * guest gets PASID 1, nested domains PASID 2.
 */
#include <pthread.h>
#include <sched.h>

#include "dev/dev_util.h"
#include "os/pagemap.h"

static const char *opts = "page_size=4K,host_pa=off,oracle=on";

#define GUEST_PASID 1
#define NESTED_PASID 2

/* Run @d (no completion record) on the rig's polled queue: its status. */
static uint8_t run(struct rig *r, struct iovm_desc d)
{
	return run_polled(r->q, d);
}

static uint8_t copy(struct rig *r, uint32_t pasid, uint64_t src, uint64_t dst, uint32_t len)
{
	return run(r, (struct iovm_desc){ .op = IOVM_OP_COPY, .pasid = pasid, .src = src, .dst = dst, .len = len });
}

static struct iovm_guest *guest_new(struct iovm_ctx *ctx, uint64_t size, uint32_t flags)
{
	struct iovm_guest_attr a = { .size = size, .flags = flags, .page_size = SZ_4K };
	struct iovm_guest *g = NULL;

	CHECK_OK(iovm_guest_create(ctx, &a, &g));
	return g;
}

static uint8_t *gptr(struct iovm_guest *g, uint64_t gpa)
{
	size_t len;
	uint8_t *p = iovm_guest_ptr(g, IOVM_GPA(gpa), &len);

	CHECK(p != NULL);
	CHECK(len >= 1);
	return p;
}

/* The fault the domain recorded last (and the only one). */
static struct iovm_fault one_fault(struct iovm_domain *dom)
{
	struct iovm_fault f, none;

	CHECK_OK(iovm_domain_fault_pop(dom, &f));
	CHECK_EQ(iovm_domain_fault_pop(dom, &none), -EAGAIN);
	return f;
}

static void no_fault(struct iovm_domain *dom)
{
	struct iovm_fault f;

	CHECK_EQ(iovm_domain_fault_pop(dom, &f), -EAGAIN);
}

/* The end of a nested test: no oracle violation in either stage, then stage 1, the guest, the rig. */
static void nested_close(struct rig *r, struct iovm_domain *s1, struct iovm_domain *s2, struct iovm_guest *g)
{
	no_violations(s1);
	no_violations(s2);
	CHECK_OK(iovm_device_detach(r->dev, NESTED_PASID));
	CHECK_OK(iovm_domain_destroy(s1));
	CHECK_OK(iovm_guest_destroy(g));
	rig_close(r);
}

TEST(direct_map_placement)
{
	struct iovm_ctx *ctx = open_ctx(opts);
	struct iovm_guest_bank banks[IOVM_GUEST_MAX_BANKS];
	struct iovm_guest *g = guest_new(ctx, 32 << 20, IOVM_GUEST_DIRECT_MAP);
	struct iovm_guest_info info;
	uint64_t sum = 0;
	unsigned n;

	CHECK_OK(iovm_guest_info(g, &info));
	CHECK(info.running);
	CHECK(!info.from_pool);
	CHECK_EQ(info.size, 32 << 20);
	CHECK_EQ(info.page_size, SZ_4K);
	CHECK_EQ(info.starts, 1);
	CHECK_OK(iovm_guest_banks(g, banks, IOVM_GUEST_MAX_BANKS, &n));
	CHECK_EQ(n, info.nr_banks);
	CHECK(n >= 1 && n <= 8); /* the direct-map default */
	for (unsigned i = 0; i < n; i++) {
		uint8_t *p = gptr(g, banks[i].gpa.addr), *bus;

		CHECK_EQ(banks[i].gpa.addr, banks[i].pa.addr); /* 1:1 */
		CHECK(i == 0 || banks[i].gpa.addr > banks[i - 1].gpa.addr + banks[i - 1].len); /* merged */
		sum += banks[i].len;
		/* Guest RAM in the process is the memory at that physical address. */
		bus = phys_bus_ptr(ctx->phys, pa_make(banks[i].pa.addr));
		CHECK(bus != NULL);
		CHECK_EQ(p[0], 0);
		p[0] = (uint8_t)(0x40 + i);
		CHECK_EQ(bus[0], 0x40 + i);
	}
	CHECK_EQ(sum, 32 << 20);
	/* Outside its banks: no guest memory. */
	errno = 0;
	CHECK(iovm_guest_ptr(g, IOVM_GPA(banks[n - 1].gpa.addr + banks[n - 1].len), NULL) == NULL);
	CHECK_EQ(errno, ENOENT);
	CHECK_OK(iovm_guest_destroy(g));
	iovm_close(ctx);
}

/* The halving fallback: with no run large enough left, the guest comes in several banks, or not at all. */
TEST(halving_when_fragmented)
{
	struct iovm_ctx *ctx = open_ctx("page_size=4K,host_pa=off,oracle=on,mem_limit=40M");
	struct iovm_guest_bank banks[IOVM_GUEST_MAX_BANKS];
	struct iovm_guest_attr a = { .size = 16 << 20, .flags = IOVM_GUEST_DIRECT_MAP, .page_size = SZ_4K,
				     .min_chunk = 1 << 20, .max_banks = 1 };
	struct iovm_guest *hole[8], *g;
	struct iovm_phys_stats st;
	uint64_t sum = 0;
	unsigned n;

	/* Guests side by side, every other one gone: the free memory is in runs between taken ones. */
	for (int i = 0; i < 8; i++)
		hole[i] = guest_new(ctx, 4 << 20, IOVM_GUEST_DIRECT_MAP);
	for (int i = 0; i < 8; i += 2)
		CHECK_OK(iovm_guest_destroy(hole[i]));
	CHECK_OK(iovm_phys_stats(ctx, &st));
	CHECK_EQ(st.nr_arenas, 1);
	CHECK(st.arenas[0].largest_free_run < (16 << 20));
	CHECK(st.limit - st.total + st.free >= (16 << 20));
	/* One bank cannot be had: a clean error. */
	CHECK_EQ(iovm_guest_create(ctx, &a, &g), -ENOMEM);
	/* Up to 8: halved until the blocks fit the runs, merged where adjacent. */
	a.max_banks = 8;
	CHECK_OK(iovm_guest_create(ctx, &a, &g));
	CHECK_OK(iovm_guest_banks(g, banks, IOVM_GUEST_MAX_BANKS, &n));
	CHECK(n >= 2 && n <= 8);
	for (unsigned i = 0; i < n; i++) {
		CHECK(banks[i].len >= (1 << 20));
		CHECK(i == 0 || banks[i].gpa.addr > banks[i - 1].gpa.addr + banks[i - 1].len);
		sum += banks[i].len;
	}
	CHECK_EQ(sum, 16 << 20);
	CHECK_OK(iovm_guest_destroy(g));
	for (int i = 1; i < 8; i += 2)
		CHECK_OK(iovm_guest_destroy(hole[i]));
	iovm_close(ctx);
}

TEST(stage2_dma_with_guest_addresses)
{
	struct iovm_guest_bank banks[IOVM_GUEST_MAX_BANKS];
	struct iovm_domain *s2;
	struct iovm_fault f;
	struct rig r;
	iovm_pa_t host_pa;
	uint64_t a, b;
	unsigned n;

	rig_open(&r, opts, NULL, IOVM_QUEUE_POLLED);
	{
		struct iovm_guest *g = guest_new(r.ctx, 8 << 20, IOVM_GUEST_DIRECT_MAP);

		CHECK_OK(iovm_guest_stage2(g, &s2));
		CHECK_EQ(iovm_domain_destroy(s2), -EPERM); /* the guest's */
		CHECK_OK(iovm_guest_banks(g, banks, IOVM_GUEST_MAX_BANKS, &n));
		a = banks[0].gpa.addr;
		b = banks[n - 1].gpa.addr + banks[n - 1].len - SZ_4K;
		CHECK_OK(iovm_guest_assign(g, r.dev, GUEST_PASID, 0));
		CHECK_EQ(iovm_guest_assign(g, r.dev, GUEST_PASID, 0), -EBUSY);
		memset(gptr(g, a), 0xa5, SZ_4K);
		CHECK_EQ(copy(&r, GUEST_PASID, a, b, SZ_4K), IOVM_STATUS_SUCCESS);
		CHECK_EQ(gptr(g, b)[0], 0xa5);
		CHECK_EQ(gptr(g, b)[SZ_4K - 1], 0xa5);
		no_fault(s2);
		/* The monitor's own memory (the completion record's page) is not the guest's: stage 2 faults. */
		CHECK_OK(iovm_dma_pa(r.ctx, r.comp, &host_pa));
		CHECK_EQ(copy(&r, GUEST_PASID, host_pa.addr, b, 64), IOVM_STATUS_PAGE_FAULT);
		f = one_fault(s2);
		CHECK_EQ(f.stage, IOVM_STAGE_2);
		CHECK_EQ(f.reason, IOVM_FAULT_NOT_PRESENT);
		CHECK_EQ(f.gpa.addr, host_pa.addr);
		CHECK_EQ(f.pasid, GUEST_PASID);
		CHECK_EQ(gptr(g, b)[0], 0xa5); /* nothing written */
		/* While it is assigned the guest stays. */
		CHECK_EQ(iovm_guest_destroy(g), -EBUSY);
		/* Shut down, the device reaches nothing of it. */
		CHECK_OK(iovm_guest_shutdown(g));
		CHECK_EQ(iovm_guest_shutdown(g), -EALREADY);
		errno = 0;
		CHECK(iovm_guest_ptr(g, IOVM_GPA(a), NULL) == NULL);
		CHECK_EQ(errno, EAGAIN);
		CHECK_EQ(copy(&r, GUEST_PASID, a, b, 64), IOVM_STATUS_PAGE_FAULT);
		CHECK_EQ(one_fault(s2).stage, IOVM_STAGE_2);
		CHECK_OK(iovm_guest_start(g));
		CHECK_EQ(iovm_guest_start(g), -EALREADY);
		CHECK_EQ(copy(&r, GUEST_PASID, a, b, 64), IOVM_STATUS_SUCCESS);
		no_violations(s2);
		CHECK_OK(iovm_guest_unassign(g, r.dev, GUEST_PASID));
		CHECK_EQ(iovm_guest_unassign(g, r.dev, GUEST_PASID), -ENOENT);
		CHECK_OK(iovm_guest_destroy(g));
	}
	CHECK_EQ(iovm_domain_fault_pop(r.dom, &f), -EAGAIN);
	rig_close(&r);
}

TEST(identity_only_for_trusted_direct_map)
{
	struct iovm_guest_bank bank;
	struct iovm_guest *untrusted, *not_dm, *trusted;
	iovm_pa_t host_pa;
	struct rig r;
	unsigned n;

	rig_open(&r, opts, NULL, IOVM_QUEUE_POLLED);
	untrusted = guest_new(r.ctx, 4 << 20, IOVM_GUEST_DIRECT_MAP);
	not_dm = guest_new(r.ctx, 4 << 20, IOVM_GUEST_TRUSTED);
	trusted = guest_new(r.ctx, 4 << 20, IOVM_GUEST_DIRECT_MAP | IOVM_GUEST_TRUSTED);
	CHECK_EQ(iovm_guest_assign(untrusted, r.dev, GUEST_PASID, IOVM_ASSIGN_IDENTITY), -EPERM);
	CHECK_EQ(iovm_guest_assign(not_dm, r.dev, GUEST_PASID, IOVM_ASSIGN_IDENTITY), -EPERM);
	CHECK_OK(iovm_guest_assign(trusted, r.dev, GUEST_PASID, IOVM_ASSIGN_IDENTITY));
	CHECK_OK(iovm_guest_banks(trusted, &bank, 1, &n));
	/* Guest addresses go to the bus untranslated: they are physical. */
	gptr(trusted, bank.gpa.addr)[5] = 0x77;
	CHECK_EQ(copy(&r, GUEST_PASID, bank.gpa.addr, bank.gpa.addr + SZ_4K, 64), IOVM_STATUS_SUCCESS);
	CHECK_EQ(gptr(trusted, bank.gpa.addr + SZ_4K)[5], 0x77);
	/* What trust means: the device reaches the monitor's memory too. */
	CHECK_OK(iovm_dma_pa(r.ctx, r.comp, &host_pa));
	CHECK_EQ(copy(&r, GUEST_PASID, host_pa.addr, bank.gpa.addr, 64), IOVM_STATUS_SUCCESS);
	CHECK_OK(iovm_guest_unassign(trusted, r.dev, GUEST_PASID));
	/* The untrusted one gets its stage 2 instead, and is confined to it. */
	CHECK_OK(iovm_guest_assign(untrusted, r.dev, GUEST_PASID, 0));
	CHECK_EQ(copy(&r, GUEST_PASID, host_pa.addr, bank.gpa.addr, 64), IOVM_STATUS_PAGE_FAULT);
	CHECK_OK(iovm_guest_unassign(untrusted, r.dev, GUEST_PASID));
	CHECK_OK(iovm_guest_destroy(untrusted));
	CHECK_OK(iovm_guest_destroy(not_dm));
	CHECK_OK(iovm_guest_destroy(trusted));
	rig_close(&r);
}

TEST(nested_translation_and_fault_stages)
{
	struct iovm_guest *g;
	struct iovm_domain *s1, *s2;
	struct iovm_fault f;
	iovm_iova_t x = IOVM_IOVA_ANY, y = IOVM_IOVA(0x100000), z = IOVM_IOVA(0x200000), v = IOVM_IOVA(0x300000);
	iovm_pa_t pa, host_pa;
	uint32_t perm;
	struct rig r;
	const uint64_t g_rw = 0x10000, g_ro = 0x20000, g_far = 64 << 20, g_ro2 = 128 << 20;

	rig_open(&r, opts, NULL, IOVM_QUEUE_POLLED);
	/* Not direct-mapped: its guest physical addresses start at 0. */
	g = guest_new(r.ctx, 16 << 20, 0);
	CHECK_OK(iovm_guest_stage2(g, &s2));
	CHECK_OK(iovm_guest_domain_create(g, NULL, &s1));
	CHECK_EQ(iovm_domain_map(s1, &x, IOVM_PA(0x200000), SZ_4K, IOVM_MAP_READ), -EOPNOTSUPP);
	CHECK_OK(iovm_domain_map_gpa(s1, &x, IOVM_GPA(g_rw), SZ_4K, IOVM_MAP_READ | IOVM_MAP_WRITE));
	CHECK_OK(iovm_domain_map_gpa(s1, &y, IOVM_GPA(g_ro), SZ_4K, IOVM_MAP_READ));
	CHECK_OK(iovm_domain_map_gpa(s1, &z, IOVM_GPA(g_far), SZ_4K, IOVM_MAP_READ | IOVM_MAP_WRITE));
	/* Stage 2 read-only at g_ro2: the monitor maps one of its own pages there. */
	CHECK_OK(iovm_dma_pa(r.ctx, r.comp, &host_pa));
	{
		iovm_iova_t at = IOVM_IOVA(g_ro2);

		CHECK_OK(iovm_domain_map(s2, &at, host_pa, SZ_4K, IOVM_MAP_READ));
	}
	CHECK_OK(iovm_domain_map_gpa(s1, &v, IOVM_GPA(g_ro2), SZ_4K, IOVM_MAP_READ | IOVM_MAP_WRITE));
	CHECK_OK(iovm_device_attach(r.dev, s1, NESTED_PASID));
	CHECK_EQ(iovm_guest_destroy(g), -EBUSY); /* the nested domain sits over it */

	/* Both stages: guest IOVA -> guest physical -> physical. */
	CHECK_OK(iovm_domain_translate(s1, x, &pa, &perm));
	{
		struct iovm_guest_bank bank;
		unsigned n;

		CHECK_OK(iovm_guest_banks(g, &bank, 1, &n));
		CHECK_EQ(bank.gpa.addr, 0);
		CHECK(bank.len > g_rw);
		CHECK_EQ(pa.addr, bank.pa.addr + g_rw);
	}
	CHECK_EQ(perm, IOVM_MAP_READ | IOVM_MAP_WRITE);
	memset(gptr(g, g_ro), 0x3c, SZ_4K);
	CHECK_EQ(copy(&r, NESTED_PASID, y.addr, x.addr, SZ_4K), IOVM_STATUS_SUCCESS);
	CHECK_EQ(gptr(g, g_rw)[100], 0x3c);
	no_fault(s1);
	no_fault(s2);

	/* Stage 1, permission: y is read-only in the guest's table. */
	CHECK_EQ(copy(&r, NESTED_PASID, x.addr, y.addr, 64), IOVM_STATUS_PAGE_FAULT);
	f = one_fault(s1);
	CHECK_EQ(f.stage, IOVM_STAGE_1);
	CHECK_EQ(f.reason, IOVM_FAULT_PERMISSION);
	CHECK_EQ(f.iova.addr, y.addr);
	no_fault(s2);
	/* Stage 1, not present. */
	CHECK_EQ(copy(&r, NESTED_PASID, 0x900000, x.addr, 64), IOVM_STATUS_PAGE_FAULT);
	f = one_fault(s1);
	CHECK_EQ(f.stage, IOVM_STAGE_1);
	CHECK_EQ(f.reason, IOVM_FAULT_NOT_PRESENT);
	/* Stage 2, not present: g_far is beyond the guest's memory. Reported to stage 2, the hypervisor's. */
	CHECK_EQ(copy(&r, NESTED_PASID, z.addr, x.addr, 64), IOVM_STATUS_PAGE_FAULT);
	f = one_fault(s2);
	CHECK_EQ(f.stage, IOVM_STAGE_2);
	CHECK_EQ(f.reason, IOVM_FAULT_NOT_PRESENT);
	CHECK_EQ(f.iova.addr, z.addr);
	CHECK_EQ(f.gpa.addr, g_far);
	no_fault(s1);
	/* Stage 2, permission: stage 1 allows the write, stage 2 does not. */
	CHECK_EQ(copy(&r, NESTED_PASID, x.addr, v.addr, 64), IOVM_STATUS_PAGE_FAULT);
	f = one_fault(s2);
	CHECK_EQ(f.stage, IOVM_STAGE_2);
	CHECK_EQ(f.reason, IOVM_FAULT_PERMISSION);
	CHECK_EQ(f.gpa.addr, g_ro2);
	CHECK_OK(iovm_domain_translate(s1, v, &pa, &perm));
	CHECK_EQ(perm, IOVM_MAP_READ);
	/* ...while reading through both works. */
	CHECK_EQ(copy(&r, NESTED_PASID, v.addr, x.addr, 64), IOVM_STATUS_SUCCESS);

	/*
	 * An unmap in stage 2 reaches what the IOTLB cached through stage 1:
	 * x was just used, and once the guest is down the same access faults
	 * in stage 2 instead of reaching its old page.
	 */
	CHECK_EQ(copy(&r, NESTED_PASID, y.addr, x.addr, 64), IOVM_STATUS_SUCCESS);
	CHECK_OK(iovm_guest_shutdown(g));
	CHECK_EQ(copy(&r, NESTED_PASID, y.addr, x.addr, 64), IOVM_STATUS_PAGE_FAULT);
	f = one_fault(s2);
	CHECK_EQ(f.stage, IOVM_STAGE_2);
	CHECK_EQ(f.gpa.addr, g_ro);
	no_fault(s1);
	CHECK_OK(iovm_guest_start(g));
	CHECK_EQ(copy(&r, NESTED_PASID, y.addr, x.addr, 64), IOVM_STATUS_SUCCESS);
	/* An unmap in stage 1 likewise. */
	CHECK_OK(iovm_domain_unmap(s1, x, SZ_4K));
	CHECK_EQ(copy(&r, NESTED_PASID, y.addr, x.addr, 64), IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(one_fault(s1).stage, IOVM_STAGE_1);

	nested_close(&r, s1, s2, g);
}

TEST(reboot_on_the_same_banks)
{
	struct iovm_ctx *ctx = open_ctx(opts);
	struct iovm_guest_bank before[IOVM_GUEST_MAX_BANKS], after[IOVM_GUEST_MAX_BANKS];
	struct iovm_guest_attr same = { .placement = IOVM_PLACE_BANKS, .page_size = SZ_4K,
					.flags = IOVM_GUEST_DIRECT_MAP };
	struct iovm_guest *g = guest_new(ctx, 8 << 20, IOVM_GUEST_DIRECT_MAP), *thief;
	struct iovm_guest_info info;
	unsigned n, m;

	CHECK_OK(iovm_guest_banks(g, before, IOVM_GUEST_MAX_BANKS, &n));
	gptr(g, before[0].gpa.addr)[0] = 1;
	CHECK_OK(iovm_guest_reboot(g));
	CHECK_OK(iovm_guest_banks(g, after, IOVM_GUEST_MAX_BANKS, &m));
	CHECK_EQ(m, n);
	CHECK(!memcmp(before, after, n * sizeof(before[0])));
	CHECK_EQ(gptr(g, before[0].gpa.addr)[0], 0); /* a new boot sees zeroes */
	CHECK_OK(iovm_guest_info(g, &info));
	CHECK_EQ(info.starts, 2);

	/* From the buddy: while it is down, another may take its banks, and its start fails cleanly. */
	CHECK_OK(iovm_guest_shutdown(g));
	same.banks = before;
	same.nr_banks = n;
	CHECK_OK(iovm_guest_create(ctx, &same, &thief));
	CHECK_EQ(iovm_guest_start(g), -EBUSY);
	CHECK_OK(iovm_guest_info(g, &info));
	CHECK(!info.running);
	CHECK_OK(iovm_guest_destroy(thief));
	CHECK_OK(iovm_guest_start(g));
	CHECK_OK(iovm_guest_destroy(g));
	iovm_close(ctx);
}

TEST(pools)
{
	struct iovm_ctx *ctx = open_ctx("page_size=4K,host_pa=off,oracle=on,pool=guests:16M:4K");
	struct iovm_guest_bank banks[IOVM_GUEST_MAX_BANKS];
	struct iovm_guest_attr a = { .size = 8 << 20, .flags = IOVM_GUEST_DIRECT_MAP, .placement = IOVM_PLACE_POOL };
	struct iovm_guest *g1, *g2, *g3;
	struct iovm_pool *pool, *other;
	struct iovm_phys_stats st;
	unsigned n;

	CHECK_OK(iovm_pool_lookup(ctx, "guests", &pool));
	CHECK_EQ(iovm_pool_lookup(ctx, "nope", &other), -ENOENT);
	CHECK_EQ(iovm_pool_create(ctx, "guests", 4 << 20, SZ_4K, 1, &other), -EEXIST);
	CHECK_OK(iovm_phys_stats(ctx, &st));
	CHECK_EQ(st.nr_pools, 1);
	CHECK_EQ(st.pools[0].total, 16 << 20);
	CHECK_EQ(st.pools[0].free, 16 << 20);
	a.pool = pool;
	CHECK_OK(iovm_guest_create(ctx, &a, &g1));
	CHECK_OK(iovm_guest_banks(g1, banks, IOVM_GUEST_MAX_BANKS, &n));
	CHECK_OK(iovm_phys_stats(ctx, &st));
	CHECK_EQ(st.pools[0].free, 8 << 20);
	/* Down, its banks stay reserved for it: nobody else gets them, from the pool or the buddy. */
	CHECK_OK(iovm_guest_shutdown(g1));
	{
		struct iovm_guest_attr steal = { .placement = IOVM_PLACE_BANKS, .banks = banks, .nr_banks = n,
						 .pool = pool, .flags = IOVM_GUEST_DIRECT_MAP };

		CHECK_EQ(iovm_guest_create(ctx, &steal, &g3), -EBUSY);
		steal.pool = NULL;
		CHECK(iovm_guest_create(ctx, &steal, &g3) < 0);
	}
	CHECK_OK(iovm_guest_create(ctx, &a, &g2));
	/* Exhausted: a clean error, nothing taken. */
	CHECK_EQ(iovm_guest_create(ctx, &a, &g3), -ENOMEM);
	CHECK_OK(iovm_phys_stats(ctx, &st));
	CHECK_EQ(st.pools[0].free, 0);
	CHECK_OK(iovm_guest_start(g1));
	CHECK_EQ(iovm_pool_destroy(pool), -EBUSY);
	CHECK_OK(iovm_guest_destroy(g1));
	CHECK_OK(iovm_guest_destroy(g2));
	CHECK_OK(iovm_phys_stats(ctx, &st));
	CHECK_EQ(st.pools[0].free, 16 << 20);

	/* A pool made at run time; a guest of another page size is refused. */
	CHECK_OK(iovm_pool_create(ctx, "late", 8 << 20, SZ_4K, 1, &other));
	a.pool = other;
	a.page_size = SZ_2M;
	CHECK_EQ(iovm_guest_create(ctx, &a, &g3), -EINVAL);
	a.page_size = 0;
	CHECK_OK(iovm_guest_create(ctx, &a, &g3));
	CHECK_OK(iovm_guest_banks(g3, banks, IOVM_GUEST_MAX_BANKS, &n));
	CHECK_EQ(n, 1); /* the pool is one range, and the guest takes all of it */
	CHECK_OK(iovm_guest_destroy(g3));
	CHECK_OK(iovm_pool_destroy(other));
	CHECK_OK(iovm_pool_destroy(pool));
	CHECK_EQ(iovm_pool_lookup(ctx, "guests", &pool), -ENOENT);
	iovm_close(ctx);
}

TEST(named_banks)
{
	struct iovm_ctx *ctx = open_ctx(opts);
	struct iovm_guest *g = guest_new(ctx, 4 << 20, IOVM_GUEST_DIRECT_MAP), *h;
	struct iovm_guest_bank bank, two[2];
	struct iovm_guest_attr a = { .placement = IOVM_PLACE_BANKS, .flags = IOVM_GUEST_DIRECT_MAP };
	unsigned n;

	CHECK_OK(iovm_guest_banks(g, &bank, 1, &n));
	CHECK_OK(iovm_guest_destroy(g));
	/* The administrator names half of that memory, as two banks in reverse order. */
	two[0] = (struct iovm_guest_bank){ .pa = IOVM_PA(bank.pa.addr + (1 << 20)), .len = 1 << 20 };
	two[1] = (struct iovm_guest_bank){ .pa = bank.pa, .len = 1 << 20 };
	a.banks = two;
	a.nr_banks = 2;
	CHECK_OK(iovm_guest_create(ctx, &a, &h));
	CHECK_OK(iovm_guest_banks(h, two, 2, &n));
	CHECK_EQ(n, 2);
	CHECK_EQ(two[0].gpa.addr, bank.pa.addr);
	CHECK_EQ(two[1].gpa.addr, bank.pa.addr + (1 << 20));
	/* Taken: named again, it is busy. */
	CHECK_EQ(iovm_guest_create(ctx, &a, &g), -EBUSY);
	CHECK_OK(iovm_guest_destroy(h));
	/* Overlapping banks, a size that is not their sum, memory iovm does not have. */
	two[0] = (struct iovm_guest_bank){ .pa = bank.pa, .len = 2 << 20 };
	two[1] = (struct iovm_guest_bank){ .pa = IOVM_PA(bank.pa.addr + (1 << 20)), .len = 1 << 20 };
	CHECK_EQ(iovm_guest_create(ctx, &a, &g), -EINVAL);
	a.nr_banks = 1;
	a.size = 4 << 20;
	CHECK_EQ(iovm_guest_create(ctx, &a, &g), -EINVAL);
	a.size = 0;
	two[0].pa = IOVM_PA(UINT64_C(1) << 46);
	CHECK_EQ(iovm_guest_create(ctx, &a, &g), -ENOENT);
	iovm_close(ctx);
}

/* Host-PA mode on real hugepages: guest physical == host physical, checked against the kernel's pagemap. */
TEST(host_pa_direct_map)
{
	struct iovm_guest_attr a = { .size = 8 << 20, .flags = IOVM_GUEST_DIRECT_MAP, .page_size = SZ_2M };
	struct iovm_guest_bank banks[IOVM_GUEST_MAX_BANKS];
	struct iovm_ctx *ctx = NULL;
	struct iovm_guest *g;
	unsigned n;
	int ret;

	if (free_hugepages_2m() < 8)
		SKIP_CASE("fewer than 8 free 2 MiB hugepages (reserved by make check as root)");
	if (os_pagemap_probe() != 1)
		SKIP_CASE("pagemap hides host physical addresses (needs root)");
	CHECK_OK(iovm_open("page_size=2M,host_pa=on,oracle=on", &ctx));
	ret = iovm_guest_create(ctx, &a, &g);
	if (ret == -ENOMEM) {
		/* The pool is the machine's: its free pages went elsewhere, or none are adjacent enough. */
		iovm_close(ctx);
		SKIP_CASE("8 MiB of hugepages in few enough contiguous runs were not to be had");
	}
	CHECK_OK(ret);
	CHECK_OK(iovm_guest_banks(g, banks, IOVM_GUEST_MAX_BANKS, &n));
	for (unsigned i = 0; i < n; i++) {
		CHECK_EQ(banks[i].gpa.addr, banks[i].pa.addr);
		CHECK_EQ(banks[i].hpa.addr, banks[i].pa.addr);
		/* Each bank is a physically contiguous run of hugepages, as the kernel sees it. */
		for (uint64_t off = 0; off < banks[i].len; off += SZ_2M) {
			hpa_t h;

			CHECK_OK(os_pagemap_read(gptr(g, banks[i].gpa.addr + off), 1, SZ_2M, &h));
			CHECK_EQ(hpa_val(h), banks[i].gpa.addr + off);
		}
	}
	CHECK_OK(iovm_guest_destroy(g));
	iovm_close(ctx);
}

struct churn {
	struct rig *r;
	uint64_t src, dst;
	_Atomic bool stop;
	_Atomic unsigned ok, faulted;
};

/* Copies through the nested domain, one at a time, on the engine's worker, until told to stop. */
static void *dma_loop(void *arg)
{
	struct churn *c = arg;

	while (!atomic_load(&c->stop)) {
		struct iovm_desc d = { .op = IOVM_OP_COPY, .pasid = NESTED_PASID, .src = c->src, .dst = c->dst,
				       .len = 8192 };
		struct iovm_cqe cqe;
		int n = 0;

		CHECK_OK(iovm_queue_submit(c->r->q, &d));
		while (n == 0)
			n = iovm_queue_reap(c->r->q, &cqe, 1);
		CHECK_EQ(n, 1);
		if (cqe.status == IOVM_STATUS_SUCCESS)
			c->ok++;
		else if (cqe.status == IOVM_STATUS_PAGE_FAULT)
			c->faulted++;
		else
			CHECK_MSG(false, "status %u", cqe.status);
	}
	return NULL;
}

/*
 * Strict invalidation through two stages under concurrent DMA: the guest
 * goes down and up while the engine copies through its nested domain. Every
 * copy either succeeds or faults in stage 2, and the oracle sees no access
 * through a translation either stage no longer has.
 */
TEST(nested_invalidation_under_dma)
{
	struct iovm_domain *s1, *s2;
	iovm_iova_t x = IOVM_IOVA_ANY, y = IOVM_IOVA_ANY;
	struct iovm_fault f;
	struct churn c = { 0 };
	struct iovm_guest *g;
	pthread_t t;
	struct rig r;

	rig_open(&r, opts, NULL, 0); /* a worker thread runs the queue */
	g = guest_new(r.ctx, 4 << 20, 0);
	CHECK_OK(iovm_guest_stage2(g, &s2));
	CHECK_OK(iovm_guest_domain_create(g, NULL, &s1));
	CHECK_OK(iovm_domain_map_gpa(s1, &x, IOVM_GPA(0x100000), 8192, IOVM_MAP_READ | IOVM_MAP_WRITE));
	CHECK_OK(iovm_domain_map_gpa(s1, &y, IOVM_GPA(0x200000), 8192, IOVM_MAP_READ));
	CHECK_OK(iovm_device_attach(r.dev, s1, NESTED_PASID));
	{
		struct iovm_desc d = { .op = IOVM_OP_COPY, .pasid = NESTED_PASID, .src = y.addr, .dst = x.addr,
				       .len = 8192 };
		struct iovm_cqe cqe;
		int n = 0;

		CHECK_OK(iovm_queue_submit(r.q, &d));
		while (n == 0)
			n = iovm_queue_reap(r.q, &cqe, 1);
		CHECK_EQ(cqe.status, IOVM_STATUS_SUCCESS);
	}
	c.r = &r;
	c.src = y.addr;
	c.dst = x.addr;
	CHECK_OK(pthread_create(&t, NULL, dma_loop, &c));
	for (int i = 0; i < 300; i++) {
		unsigned before = atomic_load(&c.ok);

		CHECK_OK(iovm_guest_shutdown(g));
		CHECK_OK(iovm_guest_start(g));
		/* Up long enough for copies to go through (bounded: no timing is asserted). */
		for (unsigned spins = 0; atomic_load(&c.ok) == before && spins < 100000; spins++)
			sched_yield();
	}
	atomic_store(&c.stop, true);
	CHECK_OK(pthread_join(t, NULL));
	printf("# %u copies succeeded, %u faulted in stage 2\n", atomic_load(&c.ok), atomic_load(&c.faulted));
	CHECK(atomic_load(&c.ok) > 0);
	while (!iovm_domain_fault_pop(s2, &f)) {
		CHECK_EQ(f.stage, IOVM_STAGE_2);
		CHECK_EQ(f.reason, IOVM_FAULT_NOT_PRESENT);
	}
	no_fault(s1);
	nested_close(&r, s1, s2, g);
}

/*
 * A guest's device with its queue in the guest's memory, as a guest driver
 * sets it up: the rings at guest addresses, fetched and written by the
 * engine through the guest's translation (stage 2, then a guest-managed
 * stage 1 over it), never through the monitor's. What the rings must be is
 * checked, and the queue pins their memory, so that a guest shut down
 * under it leaves the engine with ring faults and the submitter with
 * memory nobody else was given.
 */
TEST(queue_rings_in_guest_memory)
{
	enum { DEPTH = 16 };
	const uint64_t sq = 0x10000, cq = 0x20000, src = 0x40000, dst = 0x80000;
	struct iovm_queue_attr qa = { .depth = DEPTH, .flags = IOVM_QUEUE_POLLED | IOVM_QUEUE_RINGS_AT };
	struct iovm_queue_stats st;
	struct iovm_device *dev;
	struct iovm_domain *s1, *s2;
	struct iovm_queue *q;
	struct iovm_guest *g;
	struct rig r;

	rig_open(&r, opts, NULL, IOVM_QUEUE_POLLED);
	g = guest_new(r.ctx, 8 << 20, 0);
	CHECK_OK(iovm_guest_stage2(g, &s2));
	CHECK_OK(iovm_device_open(r.ctx, "sw", &dev));
	/* Nothing attached at PASID 0 yet: nowhere to find rings. */
	qa.sq_addr = sq;
	qa.cq_addr = cq;
	CHECK_EQ(iovm_queue_create(dev, &qa, &q), -ENODEV);
	CHECK_OK(iovm_guest_assign(g, dev, IOVM_PASID_NONE, 0));

	/* What the rings must be. */
	qa.sq_addr = sq + 64;
	CHECK_EQ(iovm_queue_create(dev, &qa, &q), -EINVAL); /* not 4 KiB aligned */
	qa.sq_addr = cq;
	CHECK_EQ(iovm_queue_create(dev, &qa, &q), -EINVAL); /* the same page as the completion ring */
	qa.sq_addr = 64 << 20;
	CHECK_EQ(iovm_queue_create(dev, &qa, &q), -EFAULT); /* beyond the guest's memory */
	qa.sq_addr = (8 << 20) - SZ_4K;
	qa.depth = 256;
	CHECK_EQ(iovm_queue_create(dev, &qa, &q), -EFAULT); /* 16 KiB from the last page: runs off the end */
	qa.depth = DEPTH;
	qa.sq_addr = sq;

	/* Rings in guest memory, descriptors with guest physical addresses. */
	memset(gptr(g, cq), 0xff, SZ_4K); /* whatever was there: the queue zeroes its completion ring */
	CHECK_OK(iovm_queue_create(dev, &qa, &q));
	CHECK_EQ(gptr(g, cq)[0], 0);
	for (int i = 0; i < 3 * DEPTH; i++) {
		struct iovm_desc d = { .op = IOVM_OP_COPY, .src = src, .dst = dst, .len = 256, .tag = 1000u + (unsigned)i };
		const struct iovm_desc *in_ring = (const struct iovm_desc *)gptr(g, sq) + i % DEPTH;
		const struct iovm_cqe *done = (const struct iovm_cqe *)gptr(g, cq) + i % DEPTH;

		memset(gptr(g, src), i, 256);
		CHECK_EQ(run_polled(q, d), IOVM_STATUS_SUCCESS);
		CHECK_EQ(gptr(g, dst)[255], (uint8_t)i);
		/* The guest sees its ring as the device does: the descriptor it was given, the entry it wrote. */
		CHECK_EQ(in_ring->tag, d.tag);
		CHECK_EQ(done->tag, d.tag);
		CHECK_EQ(done->status, IOVM_STATUS_SUCCESS);
	}
	no_violations(s2);
	no_fault(s2);
	/* The monitor's domain never saw an access: the device reached only the guest. */
	CHECK_EQ(iovm_domain_fault_pop(r.dom, &(struct iovm_fault){ 0 }), -EAGAIN);

	/*
	 * Shut down under the queue: the engine faults on its rings in stage
	 * 2 (the queue is broken, as a device that lost its memory), and the
	 * frames under the rings, pinned, are not the allocator's meanwhile.
	 */
	CHECK_OK(iovm_guest_shutdown(g));
	{
		struct iovm_desc d = { .op = IOVM_OP_COPY, .src = src, .dst = dst, .len = 64 };

		CHECK_OK(iovm_queue_submit(q, &d));
		iovm_queue_process(q, 1);
		CHECK_EQ(iovm_queue_reap(q, &(struct iovm_cqe){ 0 }, 1), 0);
	}
	CHECK_OK(iovm_queue_stats(q, &st));
	CHECK(st.ring_faults >= 1);
	CHECK_EQ(one_fault(s2).stage, IOVM_STAGE_2);
	/* Its frames came from the buddy and went back to it, but the ring's are held: no start on them. */
	CHECK_EQ(iovm_guest_start(g), -EBUSY);
	CHECK_OK(iovm_queue_destroy(q));
	CHECK_OK(iovm_guest_start(g));

	/* Through a guest-managed stage 1: the rings at guest IOVAs, over guest physical memory. */
	CHECK_OK(iovm_guest_unassign(g, dev, IOVM_PASID_NONE));
	CHECK_OK(iovm_guest_domain_create(g, NULL, &s1));
	{
		iovm_iova_t at = IOVM_IOVA(0x7000000);

		CHECK_OK(iovm_domain_map_gpa(s1, &at, IOVM_GPA(sq), SZ_4K, IOVM_MAP_READ | IOVM_MAP_WRITE));
		at = IOVM_IOVA(0x7001000);
		CHECK_OK(iovm_domain_map_gpa(s1, &at, IOVM_GPA(cq), SZ_4K, IOVM_MAP_READ | IOVM_MAP_WRITE));
		at = IOVM_IOVA(0x100000);
		CHECK_OK(iovm_domain_map_gpa(s1, &at, IOVM_GPA(src), SZ_4K, IOVM_MAP_READ));
		at = IOVM_IOVA(0x200000);
		CHECK_OK(iovm_domain_map_gpa(s1, &at, IOVM_GPA(dst), SZ_4K, IOVM_MAP_READ | IOVM_MAP_WRITE));
		/* Read-only at stage 1: no ring. */
		at = IOVM_IOVA(0x7002000);
		CHECK_OK(iovm_domain_map_gpa(s1, &at, IOVM_GPA(sq + SZ_4K), SZ_4K, IOVM_MAP_READ));
	}
	CHECK_OK(iovm_device_attach(dev, s1, IOVM_PASID_NONE));
	qa.sq_addr = 0x7002000;
	qa.cq_addr = 0x7001000;
	CHECK_EQ(iovm_queue_create(dev, &qa, &q), -EFAULT);
	qa.sq_addr = 0x7000000;
	CHECK_OK(iovm_queue_create(dev, &qa, &q));
	memset(gptr(g, src), 0x6b, 128);
	CHECK_EQ(run_polled(q, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = 0x100000, .dst = 0x200000, .len = 128 }),
		 IOVM_STATUS_SUCCESS);
	CHECK_EQ(gptr(g, dst)[127], 0x6b);
	/* The guest physical address of the destination is no address in stage 1: a stage-1 fault. */
	CHECK_EQ(run_polled(q, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = 0x100000, .dst = dst, .len = 128 }),
		 IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(one_fault(s1).stage, IOVM_STAGE_1);
	no_violations(s1);
	CHECK_OK(iovm_queue_destroy(q));
	CHECK_OK(iovm_device_detach(dev, IOVM_PASID_NONE));
	CHECK_OK(iovm_domain_destroy(s1));
	CHECK_OK(iovm_device_close(dev));
	CHECK_OK(iovm_guest_destroy(g));
	rig_close(&r);
}

int main(void)
{
	test_init();
	RUN(direct_map_placement);
	RUN(halving_when_fragmented);
	RUN(stage2_dma_with_guest_addresses);
	RUN(identity_only_for_trusted_direct_map);
	RUN(nested_translation_and_fault_stages);
	RUN(nested_invalidation_under_dma);
	RUN(reboot_on_the_same_banks);
	RUN(pools);
	RUN(named_banks);
	RUN(host_pa_direct_map);
	RUN(queue_rings_in_guest_memory);
	return 0;
}
