/* SPDX-License-Identifier: MIT */
/*
 * test_remap.c - mapping again at a chosen IOVA what was unmapped there
 * (issue 16 item 7): in strict, deferred and nested domains, for every
 * length of 1 to 64 pages, from chosen and from automatic IOVAs, when
 * another thread unmapped it, and a 4 KiB hole cut out of a 2 MiB leaf.
 *
 * The promise (iommu.h): once iovm_domain_unmap() has returned, the range
 * can be mapped again at the same IOVA, in a deferred domain too (a map
 * that meets IOVAs still in quarantine flushes the queue first), and a
 * device then reaches the new memory, never the old.
 */
#include <pthread.h>

#include "dev/dev_util.h"

#define RW (IOVM_MAP_READ | IOVM_MAP_WRITE)
#define SZ_1M (UINT64_C(1) << 20)

static const char *opts = "page_size=4K,host_pa=off,oracle=on";

/* Map @n pages of @pa at @iova, which must be taken exactly. */
static void map_at(struct iovm_domain *dom, uint64_t iova, iovm_pa_t pa, unsigned n)
{
	iovm_iova_t at = IOVM_IOVA(iova);
	int ret = iovm_domain_map(dom, &at, pa, (size_t)n << 12, RW);

	CHECK_MSG(ret == 0, "map of %u pages at %#" PRIx64 ": %d", n, iova, ret);
	CHECK_EQ(at.addr, iova);
}

static void translates_to(struct iovm_domain *dom, uint64_t iova, uint64_t pa)
{
	iovm_pa_t got;

	CHECK_OK(iovm_domain_translate(dom, IOVM_IOVA(iova), &got, NULL));
	CHECK_EQ(got.addr, pa);
}

/* Every length, at chosen and at automatic IOVAs: map, unmap, map again at the same place. */
static void remap_lengths(struct iovm_domain *dom, iovm_pa_t pa)
{
	struct iovm_domain_stats st;

	for (unsigned n = 1; n <= 64; n++) {
		uint64_t fixed = UINT64_C(0x40000000) + (uint64_t)n * SZ_1M;
		iovm_iova_t any = IOVM_IOVA_ANY;

		map_at(dom, fixed, pa, n);
		CHECK_OK(iovm_domain_unmap(dom, IOVM_IOVA(fixed), (size_t)n << 12));
		map_at(dom, fixed, pa, n);
		translates_to(dom, fixed + ((uint64_t)(n - 1) << 12), pa.addr + ((uint64_t)(n - 1) << 12));
		CHECK_OK(iovm_domain_unmap(dom, IOVM_IOVA(fixed), (size_t)n << 12));
		/* An IOVA the domain chose, given back, then asked for by address. */
		CHECK_OK(iovm_domain_map(dom, &any, pa, (size_t)n << 12, RW));
		CHECK_OK(iovm_domain_unmap(dom, any, (size_t)n << 12));
		map_at(dom, any.addr, pa, n);
		/* And each page of it alone, unmapped and mapped again. */
		for (unsigned i = 0; i < n; i++) {
			CHECK_OK(iovm_domain_unmap(dom, IOVM_IOVA(any.addr + ((uint64_t)i << 12)), SZ_4K));
			map_at(dom, any.addr + ((uint64_t)i << 12), IOVM_PA(pa.addr + ((uint64_t)i << 12)), 1);
		}
		CHECK_OK(iovm_domain_unmap(dom, any, (size_t)n << 12));
	}
	CHECK_OK(iovm_domain_flush(dom));
	CHECK_OK(iovm_domain_stats(dom, &st));
	CHECK_EQ(st.iova_allocated, 0);
	CHECK_EQ(st.leaves_4k, 0);
}

TEST(strict_every_length)
{
	struct iovm_ctx *ctx = open_ctx(opts);
	uint8_t *buf = iovm_dma_alloc(ctx, 64 << 12, 4096, IOVM_DMA_CONTIG);
	struct iovm_domain *dom;
	iovm_pa_t pa;

	CHECK_OK(iovm_dma_pa(ctx, buf, &pa));
	CHECK_OK(iovm_domain_create(ctx, NULL, &dom));
	remap_lengths(dom, pa);
	no_violations(dom);
	CHECK_OK(iovm_domain_destroy(dom));
	iovm_dma_free(ctx, buf);
	iovm_close(ctx);
}

TEST(deferred_every_length)
{
	struct iovm_ctx *ctx = open_ctx(opts);
	struct iovm_domain_attr a = { .flags = IOVM_DOMAIN_DEFERRED, .flush_timeout_us = 1000000 };
	uint8_t *buf = iovm_dma_alloc(ctx, 64 << 12, 4096, IOVM_DMA_CONTIG);
	struct iovm_domain *dom;
	iovm_pa_t pa;

	CHECK_OK(iovm_dma_pa(ctx, buf, &pa));
	CHECK_OK(iovm_domain_create(ctx, &a, &dom));
	remap_lengths(dom, pa);
	no_violations(dom);
	CHECK_OK(iovm_domain_destroy(dom));
	iovm_dma_free(ctx, buf);
	iovm_close(ctx);
}

TEST(nested_every_length)
{
	struct iovm_ctx *ctx = open_ctx(opts);
	struct iovm_guest_attr ga = { .size = 16 << 20, .page_size = SZ_4K };
	struct iovm_domain_stats st;
	struct iovm_guest *g;
	struct iovm_domain *s1;

	CHECK_OK(iovm_guest_create(ctx, &ga, &g));
	CHECK_OK(iovm_guest_domain_create(g, NULL, &s1));
	for (unsigned n = 1; n <= 64; n++) {
		iovm_iova_t at = IOVM_IOVA(UINT64_C(0x40000000) + (uint64_t)n * SZ_1M), any = IOVM_IOVA_ANY;
		uint64_t want = at.addr;

		CHECK_OK(iovm_domain_map_gpa(s1, &at, IOVM_GPA(0x100000), (size_t)n << 12, RW));
		CHECK_OK(iovm_domain_unmap(s1, at, (size_t)n << 12));
		CHECK_OK(iovm_domain_map_gpa(s1, &at, IOVM_GPA(0x100000), (size_t)n << 12, RW));
		CHECK_EQ(at.addr, want);
		CHECK_OK(iovm_domain_unmap(s1, at, (size_t)n << 12));
		CHECK_OK(iovm_domain_map_gpa(s1, &any, IOVM_GPA(0x200000), (size_t)n << 12, RW));
		want = any.addr;
		CHECK_OK(iovm_domain_unmap(s1, any, (size_t)n << 12));
		CHECK_OK(iovm_domain_map_gpa(s1, &any, IOVM_GPA(0x200000), (size_t)n << 12, RW));
		CHECK_EQ(any.addr, want);
		CHECK_OK(iovm_domain_unmap(s1, any, (size_t)n << 12));
	}
	CHECK_OK(iovm_domain_stats(s1, &st));
	CHECK_EQ(st.iova_allocated, 0);
	no_violations(s1);
	CHECK_OK(iovm_domain_destroy(s1));
	CHECK_OK(iovm_guest_destroy(g));
	iovm_close(ctx);
}

/* Another thread unmaps (its magazine keeps the IOVA) and stays alive while we map there. */
struct unmapper {
	struct iovm_domain *dom;
	uint64_t iova;
	unsigned n;
	pthread_barrier_t *bar;
};

static void *unmap_and_wait(void *arg)
{
	struct unmapper *u = arg;

	for (unsigned n = 1; n <= 32; n++) {
		pthread_barrier_wait(u->bar);
		CHECK_OK(iovm_domain_unmap(u->dom, IOVM_IOVA(u->iova + (uint64_t)n * SZ_1M), (size_t)n << 12));
		pthread_barrier_wait(u->bar);
	}
	pthread_barrier_wait(u->bar); /* alive until the last map is done */
	return NULL;
}

static void other_thread_unmapped(const struct iovm_domain_attr *attr)
{
	struct iovm_ctx *ctx = open_ctx(opts);
	uint8_t *buf = iovm_dma_alloc(ctx, 32 << 12, 4096, IOVM_DMA_CONTIG);
	struct iovm_domain *dom;
	pthread_barrier_t bar;
	struct unmapper u;
	pthread_t t;
	iovm_pa_t pa;

	CHECK_OK(iovm_dma_pa(ctx, buf, &pa));
	CHECK_OK(iovm_domain_create(ctx, attr, &dom));
	pthread_barrier_init(&bar, NULL, 2);
	u = (struct unmapper){ .dom = dom, .iova = 0x40000000, .bar = &bar };
	CHECK_EQ(pthread_create(&t, NULL, unmap_and_wait, &u), 0);
	for (unsigned n = 1; n <= 32; n++) {
		iovm_iova_t any = IOVM_IOVA_ANY;

		map_at(dom, u.iova + (uint64_t)n * SZ_1M, pa, n);
		pthread_barrier_wait(&bar);
		pthread_barrier_wait(&bar); /* unmapped there */
		map_at(dom, u.iova + (uint64_t)n * SZ_1M, pa, n);
		CHECK_OK(iovm_domain_unmap(dom, IOVM_IOVA(u.iova + (uint64_t)n * SZ_1M), (size_t)n << 12));
		/* What the other thread cached is still handed out by our own choice too. */
		CHECK_OK(iovm_domain_map(dom, &any, pa, (size_t)n << 12, RW));
		CHECK_OK(iovm_domain_unmap(dom, any, (size_t)n << 12));
	}
	pthread_barrier_wait(&bar);
	CHECK_EQ(pthread_join(t, NULL), 0);
	pthread_barrier_destroy(&bar);
	no_violations(dom);
	CHECK_OK(iovm_domain_destroy(dom));
	iovm_dma_free(ctx, buf);
	iovm_close(ctx);
}

TEST(unmapped_by_another_thread)
{
	struct iovm_domain_attr strict = { 0 };
	struct iovm_domain_attr deferred = { .flags = IOVM_DOMAIN_DEFERRED, .flush_timeout_us = 1000000 };

	other_thread_unmapped(&strict);
	other_thread_unmapped(&deferred);
}

/* A 4 KiB hole cut out of a 2 MiB leaf, and each of its neighbours, map again. */
static void hole_in_huge_leaf(const struct iovm_domain_attr *attr)
{
	struct iovm_ctx *ctx = open_ctx(opts);
	uint8_t *buf = iovm_dma_alloc(ctx, SZ_2M, SZ_2M, IOVM_DMA_CONTIG);
	struct iovm_domain_stats st;
	struct iovm_domain *dom;
	iovm_iova_t iova = IOVM_IOVA_ANY;
	iovm_pa_t pa;

	CHECK(buf != NULL);
	CHECK_OK(iovm_dma_pa(ctx, buf, &pa));
	if (pa.addr % SZ_2M) {
		iovm_dma_free(ctx, buf);
		iovm_close(ctx);
		SKIP_CASE("the heap gave no 2 MiB aligned physical memory: no 2 MiB leaf");
	}
	CHECK_OK(iovm_domain_create(ctx, attr, &dom));
	CHECK_OK(iovm_domain_map(dom, &iova, pa, SZ_2M, RW));
	CHECK_OK(iovm_domain_stats(dom, &st));
	CHECK_EQ(st.leaves_2m, 1);
	for (uint64_t off = 0; off < SZ_2M; off += 511 * SZ_4K) {
		CHECK_OK(iovm_domain_unmap(dom, IOVM_IOVA(iova.addr + off), SZ_4K));
		CHECK_EQ(iovm_domain_translate(dom, IOVM_IOVA(iova.addr + off), &pa, NULL), -ENOENT);
		map_at(dom, iova.addr + off, IOVM_PA(pa.addr - pa.addr % SZ_2M + off), 1);
	}
	CHECK_OK(iovm_dma_pa(ctx, buf, &pa));
	for (uint64_t off = 0; off < SZ_2M; off += SZ_4K)
		translates_to(dom, iova.addr + off, pa.addr + off);
	CHECK_OK(iovm_domain_unmap(dom, iova, SZ_2M));
	CHECK_OK(iovm_domain_flush(dom));
	CHECK_OK(iovm_domain_stats(dom, &st));
	CHECK_EQ(st.iova_allocated, 0);
	CHECK_EQ(st.leaves_4k + st.leaves_2m, 0);
	no_violations(dom);
	CHECK_OK(iovm_domain_destroy(dom));
	iovm_dma_free(ctx, buf);
	iovm_close(ctx);
}

TEST(hole_in_a_2m_leaf)
{
	struct iovm_domain_attr strict = { 0 };
	struct iovm_domain_attr deferred = { .flags = IOVM_DOMAIN_DEFERRED, .flush_timeout_us = 1000000 };

	hole_in_huge_leaf(&strict);
	hole_in_huge_leaf(&deferred);
}

/*
 * Deferred, with a device: it caches the old translation, the IOVA is
 * unmapped (the entry stays until a flush) and mapped again to other
 * memory; the device must read the new memory.
 */
static void device_sees_the_new_mapping(enum iovm_domain_type type)
{
	struct iovm_domain_attr a = { .type = type, .flags = IOVM_DOMAIN_DEFERRED | IOVM_DOMAIN_FOLLOW_HEAP,
				      .flush_timeout_us = 1000000 };
	struct iovm_domain_stats st;
	uint8_t *old, *new, *dst;
	iovm_pa_t old_pa, new_pa;
	const uint64_t at = 0x40000000;
	struct rig r;

	rig_open(&r, opts, &a, IOVM_QUEUE_POLLED);
	old = iovm_dma_alloc(r.ctx, 4096, 4096, 0);
	new = iovm_dma_alloc(r.ctx, 4096, 4096, 0);
	dst = iovm_dma_zalloc(r.ctx, 4096, 4096, 0);
	memset(old, 0x11, 4096);
	memset(new, 0x22, 4096);
	CHECK_OK(iovm_dma_pa(r.ctx, old, &old_pa));
	CHECK_OK(iovm_dma_pa(r.ctx, new, &new_pa));
	for (int round = 0; round < 8; round++) {
		map_at(r.dom, at, old_pa, 1);
		CHECK_EQ(run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = at, .dst = iova_of(&r, dst),
							  .len = 64 }).status,
			 IOVM_STATUS_SUCCESS);
		CHECK_EQ(dst[0], 0x11);
		CHECK_OK(iovm_domain_unmap(r.dom, IOVM_IOVA(at), SZ_4K));
		map_at(r.dom, at, new_pa, 1);
		CHECK_EQ(run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = at, .dst = iova_of(&r, dst),
							  .len = 64 }).status,
			 IOVM_STATUS_SUCCESS);
		CHECK_EQ(dst[0], 0x22);
		CHECK_OK(iovm_domain_unmap(r.dom, IOVM_IOVA(at), SZ_4K));
	}
	CHECK_OK(iovm_domain_stats(r.dom, &st));
	CHECK(st.flushes >= 8); /* each map at the quarantined IOVA flushed first */
	rig_close(&r);
}

TEST(deferred_device_sees_the_new_mapping)
{
	device_sees_the_new_mapping(IOVM_DOMAIN_MANAGED);
	device_sees_the_new_mapping(IOVM_DOMAIN_VA);
}

int main(void)
{
	test_init();
	RUN(strict_every_length);
	RUN(deferred_every_length);
	RUN(nested_every_length);
	RUN(unmapped_by_another_thread);
	RUN(hole_in_a_2m_leaf);
	RUN(deferred_device_sees_the_new_mapping);
	return 0;
}
