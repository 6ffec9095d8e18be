/* SPDX-License-Identifier: MIT */
/*
 * test_attack20_race.c - attacks, under concurrency and in shared
 * domains, iovm/iommu.h's promise that a memory registration's PAs are
 * refused by iovm_domain_map() and _map_pages() (-EINVAL, nothing
 * mapped), and memmap.h's that memory registered with
 * iovm_mem_register() stays mappable by hand:
 *  - churn: threads register and deregister MRs (pinned in a managed and
 *    a VA domain, async) and publish each PA they learn; mapper threads
 *    map every published PA, at once and after the MR ended, into a
 *    domain of their own; in other rounds, beside the registrar, a
 *    thread registers memory as SPDK does, maps its vtophys() PA by
 *    hand (which must always work), unmaps and unregisters it (not
 *    beside the mappers: a later iovm_mem_register() window may cover
 *    an ended MR's PA, which is then fair game);
 *  - shared_domain: an MR in a shared domain (iovm/mp.h), its PAs handed
 *    to the shared domain's and a private domain's map calls (first,
 *    last, spanning, map_pages beside heap memory), also after
 *    deregistration and registration again at the same address.
 */
#include <stdatomic.h>

#include "attack20.h"
#include "mp/mp_util.h"

#define ROUNDS 400
#define NPUB 64

static _Atomic uint64_t pub[NPUB];
static _Atomic unsigned pub_n;
static _Atomic int stop;
static _Atomic unsigned tried, mapped_bad, regs, spdk_rounds;

struct churn {
	struct rig r;
	struct iovm_domain *va;
	struct iovm_domain *maps[2];
	uint8_t *app[3];
};

static void publish(uint64_t pa)
{
	atomic_store(&pub[atomic_fetch_add(&pub_n, 1) % NPUB], pa);
}

static void *registrar(void *arg)
{
	struct churn *c = arg;

	for (unsigned i = 0; i < ROUNDS; i++) {
		struct iovm_mr *mr;
		unsigned k = i % 3;
		struct iovm_domain *d = k == 1 ? c->va : c->r.dom;
		size_t len = 8 * PG;

		if (k == 2) {
			CHECK_OK(iovm_mr_reg_async(d, c->app[k], len, IOVM_ACCESS_LOCAL_WRITE, IOVM_REG_THREADS(1), &mr));
			CHECK_OK(iovm_mr_wait(mr, c->app[k], len, -1));
		} else {
			CHECK_OK(iovm_mr_reg(d, c->app[k], len, IOVM_ACCESS_LOCAL_WRITE, &mr));
		}
		publish(a20_xlate(d, mr_iova(mr, c->app[k])));
		publish(a20_xlate(d, mr_iova(mr, c->app[k]) + len - PG));
		sched_yield();
		CHECK_OK(iovm_mr_dereg(mr));
		atomic_fetch_add(&regs, 1);
	}
	return NULL;
}

static void *mapper(void *arg)
{
	struct churn *c = ((void **)arg)[0];
	struct iovm_domain *dom = ((void **)arg)[1];

	while (!atomic_load(&stop)) {
		unsigned n = atomic_load(&pub_n);

		for (unsigned i = 0; i < NPUB && i < n; i++) {
			uint64_t pa = atomic_load(&pub[i]);
			iovm_iova_t at = IOVM_IOVA_ANY;
			iovm_pa_t pages[2] = { IOVM_PA(pa), IOVM_PA(pa) };
			int ret;

			if (!pa)
				continue;
			atomic_fetch_add(&tried, 2);
			ret = iovm_domain_map(dom, &at, IOVM_PA(pa), PG, IOVM_MAP_READ);
			/* Heap memory that came to that PA since would be fair game: not so far. */
			if (ret == 0) {
				if (!iovm_dma_ptr(c->r.ctx, IOVM_PA(pa))) {
					atomic_fetch_add(&mapped_bad, 1);
					fprintf(stderr, "# mapped a registration's PA %#llx\n", (unsigned long long)pa);
				}
				CHECK_OK(iovm_domain_unmap(dom, at, PG));
			} else {
				EXPECT_MSG(ret == -EINVAL, "iovm_domain_map(%#llx): %d", (unsigned long long)pa, ret);
			}
			at = IOVM_IOVA_ANY;
			ret = iovm_domain_map_pages(dom, &at, pages, 2, IOVM_MAP_READ);
			if (ret == 0) {
				if (!iovm_dma_ptr(c->r.ctx, IOVM_PA(pa)))
					atomic_fetch_add(&mapped_bad, 1);
				CHECK_OK(iovm_domain_unmap(dom, at, 2 * PG));
			}
		}
	}
	return NULL;
}

/* SPDK's way, alongside: register, vtophys, map by hand (always works), device read, unmap, unregister. */
static void *spdk(void *arg)
{
	struct churn *c = arg;
	uint8_t *al = a20_map_aligned(2u << 20);
	struct iovm_domain *own;

	CHECK_OK(iovm_domain_create(c->r.ctx, NULL, &own));
	a20_fill(al, 2u << 20, 51);
	while (!atomic_load(&stop)) {
		uint64_t pa;
		iovm_iova_t at = IOVM_IOVA_ANY;
		int ret;

		CHECK_OK(iovm_mem_register(c->r.ctx, al, 2u << 20));
		pa = iovm_vtophys(c->r.ctx, al + 5 * PG, NULL);
		CHECK(pa != IOVM_VTOPHYS_ERROR);
		ret = iovm_domain_map(own, &at, IOVM_PA(pa), 3 * PG, A20_RW);
		EXPECT_MSG(ret == 0, "iovm_domain_map of iovm_mem_register() memory at %#llx: %d [%s]",
			   (unsigned long long)pa, ret, iovm_error_detail());
		if (ret == 0) {
			iovm_pa_t got;

			CHECK_OK(iovm_domain_translate(own, IOVM_IOVA(at.addr + PG), &got, NULL));
			CHECK_EQ(got.addr, pa + PG);
			CHECK_OK(iovm_domain_unmap(own, at, 3 * PG));
		}
		CHECK_OK(iovm_mem_unregister(c->r.ctx, al, 2u << 20));
		atomic_fetch_add(&spdk_rounds, 1);
	}
	CHECK_OK(iovm_domain_destroy(own));
	return NULL;
}

/* One round of churn: the registrar with the mappers (@with_mappers) or with SPDK's flow. */
static void churn_phase(struct churn *c, bool with_mappers)
{
	pthread_t reg, m[2], s;
	void *args[2][2];

	atomic_store(&stop, 0);
	atomic_store(&regs, 0);
	if (with_mappers) {
		for (int i = 0; i < 2; i++) {
			args[i][0] = c;
			args[i][1] = c->maps[i];
			CHECK_EQ(pthread_create(&m[i], NULL, mapper, args[i]), 0);
		}
	} else {
		CHECK_EQ(pthread_create(&s, NULL, spdk, c), 0);
	}
	CHECK_EQ(pthread_create(&reg, NULL, registrar, c), 0);
	pthread_join(reg, NULL);
	atomic_store(&stop, 1);
	if (with_mappers) {
		for (int i = 0; i < 2; i++)
			pthread_join(m[i], NULL);
	} else {
		pthread_join(s, NULL);
	}
	CHECK_EQ(atomic_load(&regs), ROUNDS);
}

/*
 * The mappers and SPDK's flow run in turns, not together: an MR's PA that
 * a later iovm_mem_register() window covers is that memory's, and fair
 * game for a hand mapping.
 */
TEST(churn)
{
	struct churn c;
	struct iovm_domain_attr vattr = { .type = IOVM_DOMAIN_VA };

	rig_open(&c.r, "oracle=on,log_level=error," A20_OPTS, NULL, IOVM_QUEUE_POLLED);
	CHECK_OK(iovm_domain_create(c.r.ctx, &vattr, &c.va));
	for (int i = 0; i < 2; i++)
		CHECK_OK(iovm_domain_create(c.r.ctx, NULL, &c.maps[i]));
	for (int i = 0; i < 3; i++)
		c.app[i] = app_map(8 * PG);
	churn_phase(&c, true);
	churn_phase(&c, false);
	churn_phase(&c, true);
	printf("# %s: %u map attempts of registrations' PAs, %u SPDK rounds\n", test_current, atomic_load(&tried),
	       atomic_load(&spdk_rounds));
	CHECK(atomic_load(&tried) > 0);
	CHECK(atomic_load(&spdk_rounds) > 0);
	EXPECT_MSG(atomic_load(&mapped_bad) == 0, "%u map calls mapped a registration's PA", atomic_load(&mapped_bad));
	for (int i = 0; i < 2; i++) {
		CHECK_EQ(a20_leaves(c.maps[i]), 0);
		CHECK_OK(iovm_domain_destroy(c.maps[i]));
	}
	for (int i = 0; i < 3; i++)
		app_unmap(c.app[i], 8 * PG);
	CHECK_OK(iovm_domain_destroy(c.va));
	rig_close(&c.r);
}

static void sdom_refused(struct iovm_domain *dom, uint64_t pa, size_t len, const char *what, unsigned *n)
{
	iovm_iova_t at = IOVM_IOVA_ANY;
	uint64_t before = a20_leaves(dom);
	int ret = iovm_domain_map(dom, &at, IOVM_PA(pa), len, A20_RW);

	(*n)++;
	EXPECT_MSG(ret == -EINVAL, "%s: iovm_domain_map(pa %#llx, len %zu): %d [%s]", what, (unsigned long long)pa, len,
		   ret, iovm_error_detail());
	if (ret == 0)
		CHECK_OK(iovm_domain_unmap(dom, at, len));
	EXPECT_EQ(a20_leaves(dom), before);
}

TEST(shared_domain)
{
	const char *name = share_name("a20");
	struct iovm_ctx *ctx = share_ok(name, UINT64_C(32) << 20);
	struct iovm_domain *sd, *priv;
	uint8_t *app = app_map(16 * PG), *heap;
	iovm_pa_t hpa;
	unsigned n = 0;
	uint64_t old = 0;

	a20_fill(app, 16 * PG, 61);
	CHECK_OK(iovm_share_domain_create(ctx, "a20", NULL, &sd));
	CHECK_OK(iovm_domain_create(ctx, NULL, &priv));
	heap = iovm_dma_zalloc(ctx, PG, PG, 0);
	CHECK(heap != NULL);
	CHECK_OK(iovm_dma_pa(ctx, heap, &hpa));
	for (int round = 0; round < 3; round++) {
		struct iovm_mr *mr;
		struct iovm_domain *ds[2] = { sd, priv };
		uint64_t first, last, iova;

		CHECK_OK(iovm_mr_reg(sd, app, 16 * PG, IOVM_ACCESS_LOCAL_WRITE, &mr));
		iova = mr_iova(mr, app);
		first = a20_xlate(sd, iova);
		last = a20_xlate(sd, iova + 15 * PG);
		printf("# %s: round %d: PA %#llx (before: %#llx)\n", test_current, round, (unsigned long long)first,
		       (unsigned long long)old);
		for (int d = 0; d < 2; d++) {
			iovm_pa_t pages[3] = { hpa, IOVM_PA(first), IOVM_PA(last) };
			iovm_iova_t at = IOVM_IOVA_ANY;
			uint64_t before = a20_leaves(ds[d]);
			int ret;

			sdom_refused(ds[d], first, PG, "first page", &n);
			sdom_refused(ds[d], last, PG, "last page", &n);
			sdom_refused(ds[d], first, 16 * PG, "whole", &n);
			sdom_refused(ds[d], first - PG, 2 * PG, "spanning into it", &n);
			sdom_refused(ds[d], last, 2 * PG, "spanning out of it", &n);
			sdom_refused(ds[d], first & ~(uint64_t)((2u << 20) - 1), 2u << 20, "its 2 MiB", &n);
			if (old)
				sdom_refused(ds[d], old, PG, "the previous registration's", &n);
			ret = iovm_domain_map_pages(ds[d], &at, pages, 3, A20_RW);
			n++;
			EXPECT_MSG(ret == -EINVAL, "iovm_domain_map_pages(heap, %#llx, %#llx): %d", (unsigned long long)first,
				   (unsigned long long)last, ret);
			if (ret == 0)
				CHECK_OK(iovm_domain_unmap(ds[d], at, 3 * PG));
			EXPECT_EQ(a20_leaves(ds[d]), before);
		}
		CHECK_OK(iovm_mr_dereg(mr));
		/* Ended: its PA is nobody's. */
		sdom_refused(sd, first, PG, "deregistered", &n);
		sdom_refused(priv, first, PG, "deregistered", &n);
		old = first;
	}
	CHECK(n >= 40);
	EXPECT(a20_same(app, 16 * PG, 61));
	CHECK_OK(iovm_dma_free(ctx, heap));
	CHECK_OK(iovm_domain_destroy(priv));
	check_domain_clean(sd);
	CHECK_OK(iovm_domain_destroy(sd));
	CHECK_OK(iovm_share_check(ctx));
	CHECK_OK(iovm_close(ctx));
	app_unmap(app, 16 * PG);
}

int main(void)
{
	test_init();
	RUN(churn);
	RUN(shared_domain);
	return attack_status();
}
