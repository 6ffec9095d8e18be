/* SPDX-License-Identifier: MIT */
/*
 * test_attack20_mrpa.c - attacks iovm/iommu.h's promise that a memory
 * registration's PAs (iovm_mr_reg(), any flavour) are refused by
 * iovm_domain_map() and iovm_domain_map_pages() with -EINVAL and nothing
 * is mapped. Every PA of a registration the public API reveals
 * (iovm_domain_translate() of its IOVA; iovm_vtophys(), iovm_dma_xlate()
 * and iovm_dma_ptr() must reveal none) is handed to the map calls of
 * every kind of domain (managed at a chosen IOVA and at any, deferred,
 * following the heap, VA, identity, a guest's stage 2) at its first and
 * last page, whole, spanning into and out of it, and beside a heap page
 * in map_pages(); and to iovm_guest_create() as a named bank, which must
 * neither succeed nor zero the registration's memory. Flavours: pinned
 * (4 KiB and 2 MiB leaves), async, on demand, implicit, cached (rcache),
 * in a VA domain, in a deferred domain after its dereg (quarantined), and
 * registered again and again at the same address.
 */
#include "attack20.h"

#define NPG 16u
#define FIXED_MANAGED (UINT64_C(8) << 30)
#define FIXED_VA (UINT64_C(1) << 40)
#define FIXED_GPA (UINT64_C(1) << 30)

struct env {
	struct rig r;                /* managed, follows the heap, polled queue */
	struct iovm_domain *other;   /* managed, strict, empty */
	struct iovm_domain *def;     /* managed, deferred */
	struct iovm_domain *va;      /* VA */
	struct iovm_domain *ident;   /* identity */
	struct iovm_guest *g;
	struct iovm_domain *s2;      /* the guest's stage 2 */
	uint8_t *heap;               /* a heap page put beside a registration's in map_pages() */
	iovm_pa_t heap_pa;
	unsigned attempts;           /* map calls made with a registration's PA */
	unsigned mapped;             /* of them, ones that mapped it: the broken promise */
};

static void env_open(struct env *e)
{
	struct iovm_domain_attr def = { .type = IOVM_DOMAIN_MANAGED, .flags = IOVM_DOMAIN_DEFERRED };
	struct iovm_domain_attr va = { .type = IOVM_DOMAIN_VA };
	struct iovm_domain_attr id = { .type = IOVM_DOMAIN_IDENTITY };
	struct iovm_guest_attr ga = { .size = 16 * PG, .page_size = PG, .placement = IOVM_PLACE_AUTO };

	memset(e, 0, sizeof(*e));
	rig_open(&e->r, "oracle=on,log_level=error," A20_OPTS, NULL, IOVM_QUEUE_POLLED);
	CHECK_OK(iovm_domain_create(e->r.ctx, NULL, &e->other));
	CHECK_OK(iovm_domain_create(e->r.ctx, &def, &e->def));
	CHECK_OK(iovm_domain_create(e->r.ctx, &va, &e->va));
	CHECK_OK(iovm_domain_create(e->r.ctx, &id, &e->ident));
	CHECK_OK(iovm_guest_create(e->r.ctx, &ga, &e->g));
	CHECK_OK(iovm_guest_stage2(e->g, &e->s2));
	e->heap = iovm_dma_zalloc(e->r.ctx, PG, PG, 0);
	CHECK(e->heap != NULL);
	CHECK_OK(iovm_dma_pa(e->r.ctx, e->heap, &e->heap_pa));
}

static void env_close(struct env *e)
{
	/* The attack happened: many map calls were made with registrations' PAs. */
	CHECK_MSG(e->attempts >= 20, "only %u map attempts", e->attempts);
	EXPECT_MSG(e->mapped == 0, "%u of %u map calls mapped a registration's PA", e->mapped, e->attempts);
	check_domain_clean(e->other);
	check_domain_clean(e->def);
	check_domain_clean(e->va);
	check_domain_clean(e->s2);
	CHECK_OK(iovm_dma_free(e->r.ctx, e->heap));
	CHECK_OK(iovm_guest_destroy(e->g));
	CHECK_OK(iovm_domain_destroy(e->ident));
	CHECK_OK(iovm_domain_destroy(e->va));
	CHECK_OK(iovm_domain_destroy(e->def));
	CHECK_OK(iovm_domain_destroy(e->other));
	rig_close(&e->r);
}

/* One map call of [pa, pa+len) at @fixed (or any) in @dom: refused, nothing mapped. */
static void map_refused(struct env *e, struct iovm_domain *dom, const char *dname, uint64_t fixed, bool any,
			uint64_t pa, size_t len, const char *what)
{
	uint64_t before = a20_leaves(dom);
	iovm_iova_t at = any ? IOVM_IOVA_ANY : IOVM_IOVA(fixed);
	iovm_pa_t got;
	int ret;

	e->attempts++;
	ret = iovm_domain_map(dom, &at, IOVM_PA(pa), len, A20_RW);
	if (ret == 0) {
		e->mapped++;
		fprintf(stderr, "# %s: %s: iovm_domain_map(%s, pa %#llx, len %zu) mapped it at %#llx\n", test_current,
			what, dname, (unsigned long long)pa, len, (unsigned long long)at.addr);
		CHECK_OK(iovm_domain_unmap(dom, at, len));
	}
	EXPECT_MSG(ret == -EINVAL, "%s: iovm_domain_map(%s, %s, pa %#llx, len %zu): %d, expected -EINVAL [%s]", what,
		   dname, any ? "any" : "fixed", (unsigned long long)pa, len, ret, iovm_error_detail());
	if (!any)
		EXPECT_EQ(iovm_domain_translate(dom, IOVM_IOVA(fixed), &got, NULL), -ENOENT);
	EXPECT_EQ(a20_leaves(dom), before);
}

/* map_pages() with the heap page first, then the registration's: refused whole. */
static void pages_refused(struct env *e, struct iovm_domain *dom, const char *dname, uint64_t fixed,
			  const uint64_t *pas, unsigned n, const char *what)
{
	iovm_pa_t pages[8];
	uint64_t before = a20_leaves(dom);
	iovm_iova_t at = IOVM_IOVA(fixed);
	iovm_pa_t got;
	int ret;

	CHECK(n + 1 <= 8);
	pages[0] = e->heap_pa;
	for (unsigned i = 0; i < n; i++)
		pages[i + 1] = IOVM_PA(pas[i]);
	e->attempts++;
	ret = iovm_domain_map_pages(dom, &at, pages, n + 1, A20_RW);
	if (ret == 0) {
		e->mapped++;
		CHECK_OK(iovm_domain_unmap(dom, at, (size_t)(n + 1) * PG));
	}
	EXPECT_MSG(ret == -EINVAL, "%s: iovm_domain_map_pages(%s, heap + %u registration pages from %#llx): %d [%s]",
		   what, dname, n, (unsigned long long)pas[0], ret, iovm_error_detail());
	/* Nothing mapped: not even the heap page before them. */
	EXPECT_EQ(iovm_domain_translate(dom, IOVM_IOVA(fixed), &got, NULL), -ENOENT);
	EXPECT_EQ(a20_leaves(dom), before);
}

/* Every map call of every domain, with [pa, pa+len). */
static void everywhere(struct env *e, uint64_t pa, size_t len, const char *what)
{
	iovm_iova_t at = IOVM_IOVA(FIXED_MANAGED);

	map_refused(e, e->r.dom, "follow-heap", FIXED_MANAGED, false, pa, len, what);
	map_refused(e, e->r.dom, "follow-heap", 0, true, pa, len, what);
	map_refused(e, e->other, "managed", FIXED_MANAGED, false, pa, len, what);
	map_refused(e, e->other, "managed", 0, true, pa, len, what);
	map_refused(e, e->def, "deferred", FIXED_MANAGED, false, pa, len, what);
	map_refused(e, e->def, "deferred", 0, true, pa, len, what);
	map_refused(e, e->va, "va", FIXED_VA, false, pa, len, what);
	map_refused(e, e->s2, "stage2", FIXED_GPA, false, pa, len, what);
	/* An identity domain has nothing to map. */
	CHECK_RET(iovm_domain_map(e->ident, &at, IOVM_PA(pa), len, A20_RW), -EOPNOTSUPP);
}

/*
 * Attack the registration whose IOVA in @mrdom is @iova, of @len bytes at
 * @app (content seeded @seed): every PA it reveals, in every domain.
 */
static void attack_mr(struct env *e, struct iovm_domain *mrdom, uint64_t iova, uint8_t *app, size_t len, uint64_t seed)
{
	size_t np = len / PG;
	uint64_t first = a20_xlate(mrdom, iova), last = a20_xlate(mrdom, iova + len - PG);
	uint64_t mid = a20_xlate(mrdom, iova + (np / 2) * PG);
	uint64_t pas[3] = { first, mid, last };
	struct iovm_dma_xlate x;
	uint64_t sz = PG;

	/* No other call names a registration's memory by PA. */
	errno = 0;
	EXPECT_EQ(iovm_vtophys(e->r.ctx, app, &sz), IOVM_VTOPHYS_ERROR);
	EXPECT_EQ(errno, ENOENT);
	EXPECT_EQ(iovm_dma_xlate(e->r.ctx, app, &x), -ENOENT);
	errno = 0;
	EXPECT(iovm_dma_ptr(e->r.ctx, IOVM_PA(first)) == NULL);
	EXPECT_EQ(errno, ENOENT);

	everywhere(e, first, PG, "first page");
	everywhere(e, last, PG, "last page");
	everywhere(e, mid, PG, "middle page");
	if (last == first + len - PG)
		everywhere(e, first, len, "whole");
	everywhere(e, first - PG, 2 * PG, "spanning into it");
	everywhere(e, last, 2 * PG, "spanning out of it");
	everywhere(e, first & ~(uint64_t)((2u << 20) - 1), 2u << 20, "its 2 MiB");
	pages_refused(e, e->other, "managed", FIXED_MANAGED, pas, 3, "map_pages");
	pages_refused(e, e->r.dom, "follow-heap", FIXED_MANAGED, pas, 1, "map_pages");
	pages_refused(e, e->va, "va", FIXED_VA, pas, 3, "map_pages");
	pages_refused(e, e->s2, "stage2", FIXED_GPA, pas + 2, 1, "map_pages");

	/* A guest's bank named at the registration's PA: not memory iovm may give a guest. */
	{
		struct iovm_guest_bank b = { .pa = IOVM_PA(first), .len = PG };
		struct iovm_guest_attr ga = { .page_size = PG, .placement = IOVM_PLACE_BANKS, .banks = &b,
					      .nr_banks = 1 };
		struct iovm_guest *g = NULL;
		int ret = iovm_guest_create(e->r.ctx, &ga, &g);

		e->attempts++;
		if (ret == 0) {
			e->mapped++;
			CHECK_OK(iovm_guest_destroy(g));
		}
		EXPECT_MSG(ret < 0, "iovm_guest_create(bank at a registration's PA %#llx): %d", (unsigned long long)first,
			   ret);
	}
	/* Nothing of it was touched (a guest's banks are zeroed). */
	EXPECT_MSG(a20_same(app, len, seed), "the registration's memory changed at %zu", first_not(app, len, 0));
}

static uint8_t *app_seeded(size_t len, uint64_t seed)
{
	uint8_t *p = app_map(len);

	a20_fill(p, len, seed);
	return p;
}

TEST(pinned)
{
	struct env e;
	struct iovm_mr *mr;
	uint8_t *app = app_seeded(NPG * PG, 1);

	env_open(&e);
	CHECK_OK(iovm_mr_reg(e.r.dom, app, NPG * PG, IOVM_ACCESS_LOCAL_WRITE, &mr));
	attack_mr(&e, e.r.dom, mr_iova(mr, app), app, NPG * PG, 1);
	/* The registration still works, and is the only way to its memory. */
	CHECK_EQ(dma_copy(&e.r, mr_iova(mr, app), iova_of(&e.r, e.heap), PG), IOVM_STATUS_SUCCESS);
	CHECK(!memcmp(e.heap, app, PG));
	CHECK_OK(iovm_mr_dereg(mr));
	env_close(&e);
	app_unmap(app, NPG * PG);
}

TEST(pinned_2m_leaves)
{
	struct env e;
	struct iovm_mr *mr;
	size_t len = 4u << 20;
	uint8_t *app = a20_map_aligned(len);

	a20_fill(app, len, 2);
	env_open(&e);
	CHECK_OK(iovm_mr_reg(e.r.dom, app, len, IOVM_ACCESS_LOCAL_WRITE, &mr));
	if (mr_info(mr).huge_leaves == 0)
		printf("# %s: no 2 MiB leaves (the kernel gave no THP): 4 KiB ones attacked\n", test_current);
	attack_mr(&e, e.r.dom, mr_iova(mr, app), app, len, 2);
	CHECK_OK(iovm_mr_dereg(mr));
	env_close(&e);
}

TEST(va_domain)
{
	struct env e;
	struct iovm_mr *mr;
	uint8_t *app = app_seeded(NPG * PG, 3);

	env_open(&e);
	CHECK_OK(iovm_mr_reg(e.va, app, NPG * PG, IOVM_ACCESS_LOCAL_WRITE, &mr));
	CHECK_EQ(mr_iova(mr, app), (uintptr_t)app);
	attack_mr(&e, e.va, (uintptr_t)app, app, NPG * PG, 3);
	CHECK_OK(iovm_mr_dereg(mr));
	env_close(&e);
	app_unmap(app, NPG * PG);
}

TEST(async)
{
	struct env e;
	struct iovm_mr *mr;
	size_t len = 64 * PG;
	uint8_t *app = app_seeded(len, 4);

	env_open(&e);
	CHECK_OK(iovm_mr_reg_async(e.r.dom, app, len, IOVM_ACCESS_LOCAL_WRITE, IOVM_REG_THREADS(2) | IOVM_REG_CHUNK_SHIFT(16),
				   &mr));
	CHECK_OK(iovm_mr_wait(mr, app, len, -1));
	attack_mr(&e, e.r.dom, mr_iova(mr, app), app, len, 4);
	CHECK_OK(iovm_mr_dereg(mr));
	env_close(&e);
	app_unmap(app, len);
}

TEST(on_demand)
{
	struct env e;
	struct iovm_mr *mr;
	size_t len = 32 * PG;
	uint8_t *app = app_seeded(len, 5);

	env_open(&e);
	CHECK_OK(iovm_mr_reg(e.r.dom, app, len, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND, &mr));
	/* Its first page faults in by a device access, the rest by a prefetch. */
	CHECK_EQ(dma_copy(&e.r, mr_iova(mr, app), iova_of(&e.r, e.heap), 64), IOVM_STATUS_SUCCESS);
	CHECK_OK(iovm_mr_advise(mr, app, len, 0));
	attack_mr(&e, e.r.dom, mr_iova(mr, app), app, len, 5);
	CHECK_OK(iovm_mr_dereg(mr));
	env_close(&e);
	app_unmap(app, len);
}

TEST(implicit)
{
	struct env e;
	struct iovm_mr *mr;
	size_t len = 16 * PG;
	uint8_t *app = app_seeded(len, 6);
	iovm_pa_t pa;
	int ret;

	env_open(&e);
	ret = iovm_mr_reg(e.va, NULL, SIZE_MAX, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND, &mr);
	if (ret == -EOPNOTSUPP) {
		env_close(&e);
		SKIP_CASE("no memory monitor: no implicit registration");
	}
	CHECK_OK(ret);
	CHECK_OK(iovm_mr_advise(mr, app, len, 0));
	CHECK(mr_info(mr).children >= 1);
	/* In a VA domain, a child's pages sit at their own VA. */
	ret = iovm_domain_translate(e.va, IOVM_IOVA((uintptr_t)app), &pa, NULL);
	if (ret == 0)
		attack_mr(&e, e.va, (uintptr_t)app, app, len, 6);
	else
		printf("# %s: the implicit child is not at its VA in the VA domain (%d): nothing to learn\n",
		       test_current, ret);
	CHECK_OK(iovm_mr_dereg(mr));
	if (ret)
		e.attempts = 20; /* nothing revealed: no PA to try */
	env_close(&e);
	app_unmap(app, len);
}

TEST(rcache)
{
	struct env e;
	struct iovm_rcache *c;
	struct iovm_mr *mr, *mr2;
	size_t len = NPG * PG;
	uint8_t *app = app_seeded(len, 7);

	env_open(&e);
	CHECK_OK(iovm_rcache_create(e.r.dom, NULL, &c));
	CHECK_OK(iovm_rcache_get(c, app, len, IOVM_ACCESS_LOCAL_WRITE, &mr));
	CHECK_OK(iovm_rcache_put(c, mr));
	/* Kept by the cache, held by nobody: still a registration. */
	attack_mr(&e, e.r.dom, mr_iova(mr, app), app, len, 7);
	CHECK_OK(iovm_rcache_get(c, app, len, IOVM_ACCESS_LOCAL_WRITE, &mr2));
	CHECK(mr2 == mr);
	CHECK_OK(iovm_rcache_put(c, mr2));
	CHECK_OK(iovm_rcache_destroy(c));
	env_close(&e);
	app_unmap(app, len);
}

/* A deferred domain's registration, deregistered: its PAs wait for the flush. */
TEST(deferred_quarantine)
{
	struct env e;
	struct iovm_mr *mr;
	size_t len = NPG * PG;
	uint8_t *app = app_seeded(len, 8);
	uint64_t first, last, iova;

	env_open(&e);
	CHECK_OK(iovm_mr_reg(e.def, app, len, IOVM_ACCESS_LOCAL_WRITE, &mr));
	iova = mr_iova(mr, app);
	first = a20_xlate(e.def, iova);
	last = a20_xlate(e.def, iova + len - PG);
	attack_mr(&e, e.def, iova, app, len, 8);
	CHECK_OK(iovm_mr_dereg(mr));
	everywhere(&e, first, PG, "deregistered, awaiting the flush");
	everywhere(&e, last, PG, "deregistered, awaiting the flush");
	CHECK_OK(iovm_domain_flush(e.def));
	everywhere(&e, first, PG, "deregistered, flushed");
	EXPECT(a20_same(app, len, 8));
	env_close(&e);
	app_unmap(app, len);
}

/* The same address registered again and again: each PA refused, also the last one's once it ended. */
TEST(reregistered)
{
	struct env e;
	size_t len = NPG * PG;
	uint8_t *app = app_seeded(len, 9);
	uint64_t old = 0;
	unsigned same = 0;

	env_open(&e);
	for (int i = 0; i < 40; i++) {
		struct iovm_mr *mr;
		struct iovm_domain *d = (i & 1) ? e.other : e.r.dom;
		uint64_t pa;

		CHECK_OK(iovm_mr_reg(d, app, len, IOVM_ACCESS_LOCAL_WRITE, &mr));
		pa = a20_xlate(d, mr_iova(mr, app));
		if (pa == old)
			same++;
		if (i % 8 == 0)
			attack_mr(&e, d, mr_iova(mr, app), app, len, 9);
		else
			map_refused(&e, e.va, "va", FIXED_VA, false, pa, PG, "registered again");
		CHECK_OK(iovm_mr_dereg(mr));
		/* Ended: its PA is no bank's either. */
		map_refused(&e, e.other, "managed", 0, true, pa, PG, "deregistered");
		old = pa;
	}
	printf("# %s: %u of 40 registrations got the PA of the one before\n", test_current, same);
	env_close(&e);
	app_unmap(app, len);
}

int main(void)
{
	test_init();
	RUN(pinned);
	RUN(pinned_2m_leaves);
	RUN(va_domain);
	RUN(async);
	RUN(on_demand);
	RUN(implicit);
	RUN(rcache);
	RUN(deferred_quarantine);
	RUN(reregistered);
	return attack_status();
}
