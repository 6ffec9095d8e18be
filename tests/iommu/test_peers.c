/* SPDX-License-Identifier: MIT */
/*
 * test_peers.c - scenarios of peers' own IOMMU test suites, re-expressed
 * for iovm from what they test (no code taken):
 *
 *  - Linux io-pgtable selftests (arm_lpae_run_tests): every page size
 *    mapped and translated, mapping over an existing entry refused, a
 *    small page unmapped out of a block and mapped again, every block
 *    unmapped whole and mapped again with other permissions;
 *  - generic_pt KUnit: every page size once (leaf counts per size), a
 *    region mapped in pieces of each smaller size then whole (a table
 *    giving way to a huge leaf), a small page unmapped at the start of a
 *    larger one;
 *  - the iommufd selftest (IOAS): maps at chosen and automatic IOVAs,
 *    unmap of nothing, over-maps, unmap of everything, unmaps that cut
 *    areas, automatic IOVAs aligned and clear of reserved ranges, a
 *    mapping copied to another address space, a domain destroyed with
 *    mappings or with a device, unmapping what a device is using.
 *
 * Where iovm's promise differs from the peer's, the test says so and
 * checks iovm's (iommu.h). Scenarios iovm has no capability for are in
 * the "known gaps" list of the README.
 */
#include <pthread.h>

#include "dev/dev_util.h"
#include "iommu/iommu_internal.h"
#include "iommu/pgtable.h"

#define RW (IOVM_MAP_READ | IOVM_MAP_WRITE)
#define PTRW (PT_PROT_READ | PT_PROT_WRITE)

static const char *opts = "page_size=4K,host_pa=off,oracle=on";

static const uint64_t sizes[3] = { SZ_4K, SZ_2M, SZ_1G };

static void walks_to(struct io_pgtable *pt, uint64_t iova, uint64_t pa, unsigned prot)
{
	struct pt_walk w;

	CHECK_MSG(pt_walk(pt, IOVM_IOVA(iova), &w) == 0, "%#" PRIx64 " not mapped", iova);
	CHECK_EQ(pa_val(w.pa), pa);
	CHECK_EQ(w.prot, prot);
}

static void walks_nowhere(struct io_pgtable *pt, uint64_t iova)
{
	struct pt_walk w;

	CHECK_EQ(pt_walk(pt, IOVM_IOVA(iova), &w), -ENOENT);
}

/* io-pgtable: the whole selftest sequence on the bare page table, with PA == IOVA. */
TEST(lpae_selftest_sequence)
{
	struct io_pgtable pt;

	CHECK_OK(pt_init(&pt));
	walks_nowhere(&pt, 42);
	/* Every page size, each at its own gigabyte: mapped, refused over, translated. */
	for (unsigned i = 0; i < 3; i++) {
		uint64_t iova = (uint64_t)(i + 1) << 30;

		CHECK_OK(pt_map(&pt, IOVM_IOVA(iova), IOVM_PA(iova), sizes[i], PTRW, true, NULL));
		CHECK_EQ(pt_map(&pt, IOVM_IOVA(iova), IOVM_PA(iova + sizes[i]), sizes[i], PT_PROT_READ, true, NULL), -EEXIST);
		walks_to(&pt, iova + 42, iova + 42, PTRW);
		CHECK_EQ(pt.cnt->leaves[i], 1);
	}
	/* The smallest page out of the 2 MiB block, then mapped again elsewhere. */
	CHECK_EQ(pt_unmap(&pt, IOVM_IOVA((UINT64_C(2) << 30) + SZ_4K), SZ_4K, NULL, NULL, NULL), SZ_4K);
	walks_nowhere(&pt, (UINT64_C(2) << 30) + SZ_4K);
	CHECK_OK(pt_map(&pt, IOVM_IOVA((UINT64_C(2) << 30) + SZ_4K), IOVM_PA(SZ_4K), SZ_4K, PT_PROT_READ, true, NULL));
	walks_to(&pt, (UINT64_C(2) << 30) + SZ_4K + 42, SZ_4K + 42, PT_PROT_READ);
	walks_to(&pt, (UINT64_C(2) << 30) + 2 * SZ_4K + 42, (UINT64_C(2) << 30) + 2 * SZ_4K + 42, PTRW);
	/* Every block unmapped whole (the split one too), gone, mapped again write-only. */
	for (unsigned i = 0; i < 3; i++) {
		uint64_t iova = (uint64_t)(i + 1) << 30;

		CHECK_EQ(pt_unmap(&pt, IOVM_IOVA(iova), sizes[i], NULL, NULL, NULL), sizes[i]);
		walks_nowhere(&pt, iova + 42);
		CHECK_OK(pt_map(&pt, IOVM_IOVA(iova), IOVM_PA(iova), sizes[i], PT_PROT_WRITE, true, NULL));
		walks_to(&pt, iova + 42, iova + 42, PT_PROT_WRITE);
	}
	CHECK_EQ(pt.cnt->leaves[0] + pt.cnt->leaves[1] + pt.cnt->leaves[2], 3); /* one leaf each, the split one whole again */
	pt_destroy(&pt);
}

/* The same through a strict domain's public API, for the sizes a heap buffer can hold. */
TEST(lpae_selftest_through_the_domain)
{
	struct iovm_ctx *ctx = open_ctx(opts);
	uint8_t *buf = iovm_dma_alloc(ctx, 2 * SZ_2M, SZ_2M, IOVM_DMA_CONTIG);
	struct iovm_domain_stats st;
	struct iovm_domain *dom;
	iovm_pa_t pa, got;
	uint32_t perm;

	CHECK_OK(iovm_dma_pa(ctx, buf, &pa));
	if (pa.addr % SZ_2M)
		SKIP_CASE("no 2 MiB aligned physical memory for a block");
	CHECK_OK(iovm_domain_create(ctx, NULL, &dom));
	for (unsigned i = 0; i < 2; i++) {
		iovm_iova_t at = IOVM_IOVA((uint64_t)(i + 1) << 30), again = at;
		iovm_pa_t p = IOVM_PA(pa.addr + i * SZ_2M);

		CHECK_OK(iovm_domain_map(dom, &at, p, sizes[i], RW));
		CHECK_EQ(iovm_domain_map(dom, &again, IOVM_PA(pa.addr), sizes[i], IOVM_MAP_READ), -EEXIST);
		CHECK_OK(iovm_domain_translate(dom, IOVM_IOVA(at.addr + 42), &got, &perm));
		CHECK_EQ(got.addr, p.addr + 42);
		CHECK_EQ(perm, RW);
	}
	CHECK_OK(iovm_domain_stats(dom, &st));
	CHECK_EQ(st.leaves_4k, 1);
	CHECK_EQ(st.leaves_2m, 1);
	{
		iovm_iova_t hole = IOVM_IOVA((UINT64_C(2) << 30) + SZ_4K);

		CHECK_OK(iovm_domain_unmap(dom, hole, SZ_4K));
		CHECK_EQ(iovm_domain_translate(dom, hole, &got, NULL), -ENOENT);
		CHECK_OK(iovm_domain_map(dom, &hole, pa, SZ_4K, IOVM_MAP_READ));
		CHECK_OK(iovm_domain_translate(dom, IOVM_IOVA(hole.addr + 42), &got, &perm));
		CHECK_EQ(got.addr, pa.addr + 42);
		CHECK_EQ(perm, IOVM_MAP_READ);
	}
	for (unsigned i = 0; i < 2; i++) {
		iovm_iova_t at = IOVM_IOVA((uint64_t)(i + 1) << 30);
		iovm_pa_t p = IOVM_PA(pa.addr + i * SZ_2M);

		CHECK_OK(iovm_domain_unmap(dom, at, sizes[i]));
		CHECK_EQ(iovm_domain_translate(dom, IOVM_IOVA(at.addr + 42), &got, NULL), -ENOENT);
		CHECK_OK(iovm_domain_map(dom, &at, p, sizes[i], IOVM_MAP_WRITE));
		CHECK_OK(iovm_domain_translate(dom, IOVM_IOVA(at.addr + 42), &got, &perm));
		CHECK_EQ(perm, IOVM_MAP_WRITE);
	}
	CHECK_OK(iovm_domain_stats(dom, &st));
	CHECK_EQ(st.leaves_4k, 1);
	CHECK_EQ(st.leaves_2m, 1); /* the split block is one leaf again */
	no_violations(dom);
	CHECK_OK(iovm_domain_destroy(dom));
	iovm_dma_free(ctx, buf);
	iovm_close(ctx);
}

/* generic_pt: one mapping of every size, each translated page by page (the gigabyte sampled). */
TEST(gpt_map_every_size_once)
{
	struct io_pgtable pt;
	uint64_t at = 256 * SZ_4K, pa = UINT64_C(7) << 30;
	uint64_t where[3];

	CHECK_OK(pt_init(&pt));
	for (unsigned i = 0; i < 3; i++) {
		at = align_up(at, sizes[i]);
		where[i] = at;
		CHECK_OK(pt_map(&pt, IOVM_IOVA(at), IOVM_PA(pa), sizes[i], PTRW, true, NULL));
		for (uint64_t off = 0; off < sizes[i]; off += sizes[i] > SZ_2M ? SZ_2M + SZ_4K : SZ_4K)
			walks_to(&pt, at + off, pa + off, PTRW);
		at += sizes[i];
	}
	for (unsigned i = 0; i < 3; i++)
		CHECK_EQ(pt.cnt->leaves[i], 1);
	for (unsigned i = 0; i < 3; i++)
		CHECK_EQ(pt_unmap(&pt, IOVM_IOVA(where[i]), sizes[i], NULL, NULL, NULL), sizes[i]);
	CHECK_EQ(pt.cnt->leaves[0] + pt.cnt->leaves[1] + pt.cnt->leaves[2], 0);
	pt_destroy(&pt);
}

/*
 * generic_pt: a gigabyte mapped in pieces of each smaller size (all
 * leaves of that size), unmapped whole; then a table a partial unmap
 * left empty gives way to a huge leaf, as iommu.h promises.
 */
TEST(gpt_region_in_pieces_then_whole)
{
	struct io_pgtable pt;
	const uint64_t at = UINT64_C(4) << 30, pa = UINT64_C(12) << 30;

	CHECK_OK(pt_init(&pt));
	for (unsigned i = 0; i < 3; i++) {
		for (uint64_t off = 0; off < SZ_1G; off += sizes[i])
			CHECK_OK(pt_map(&pt, IOVM_IOVA(at + off), IOVM_PA(pa + off), sizes[i], PTRW, true, NULL));
		CHECK_EQ(pt.cnt->leaves[i], SZ_1G / sizes[i]);
		walks_to(&pt, at + SZ_1G - 1, pa + SZ_1G - 1, PTRW);
		CHECK_EQ(pt_unmap(&pt, IOVM_IOVA(at), SZ_1G, NULL, NULL, NULL), SZ_1G);
		CHECK_EQ(pt.cnt->leaves[0] + pt.cnt->leaves[1] + pt.cnt->leaves[2], 0);
	}
	/* A page mapped and unmapped in each 2 MiB of the gigabyte: tables left, empty. */
	for (uint64_t off = 0; off < SZ_1G; off += SZ_2M * 64) {
		CHECK_OK(pt_map(&pt, IOVM_IOVA(at + off + SZ_4K), IOVM_PA(pa), SZ_4K, PTRW, true, NULL));
		CHECK_EQ(pt_unmap(&pt, IOVM_IOVA(at + off + SZ_4K), SZ_4K, NULL, NULL, NULL), SZ_4K);
	}
	CHECK_OK(pt_map(&pt, IOVM_IOVA(at), IOVM_PA(pa), SZ_1G, PTRW, true, NULL));
	CHECK_EQ(pt.cnt->leaves[2], 1);
	CHECK_EQ(pt_unmap(&pt, IOVM_IOVA(at), SZ_1G, NULL, NULL, NULL), SZ_1G);
	pt_reclaim(&pt);
	CHECK_EQ(pt.cnt->nr_tables, 2); /* the root and the table of its 512 GiB: the empty ones went */
	pt_destroy(&pt);
}

/*
 * generic_pt: unmapping a small page at the start of a larger one. There
 * it unmaps the larger one whole; iovm splits (iommu.h: part of a larger
 * mapping can be unmapped) and unmaps the small page only.
 */
TEST(gpt_small_unmap_at_a_large_start)
{
	struct io_pgtable pt;
	const uint64_t at = UINT64_C(8) << 30, pa = UINT64_C(3) << 30;

	CHECK_OK(pt_init(&pt));
	for (unsigned small = 0; small < 3; small++) {
		for (unsigned large = small + 1; large < 3; large++) {
			CHECK_OK(pt_map(&pt, IOVM_IOVA(at), IOVM_PA(pa), sizes[large], PTRW, true, NULL));
			CHECK_EQ(pt_unmap(&pt, IOVM_IOVA(at), sizes[small], NULL, NULL, NULL), sizes[small]);
			walks_nowhere(&pt, at);
			walks_to(&pt, at + sizes[small], pa + sizes[small], PTRW);
			walks_to(&pt, at + sizes[large] - 1, pa + sizes[large] - 1, PTRW);
			CHECK_EQ(pt_unmap(&pt, IOVM_IOVA(at), sizes[large], NULL, NULL, NULL), sizes[large] - sizes[small]);
		}
	}
	pt_destroy(&pt);
}

struct ioas {
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	uint8_t *buf;
	iovm_pa_t pa;
};

static void ioas_open(struct ioas *s, const struct iovm_domain_attr *attr)
{
	s->ctx = open_ctx(opts);
	s->buf = iovm_dma_alloc(s->ctx, 64 * SZ_4K, SZ_2M, IOVM_DMA_CONTIG);
	CHECK(s->buf != NULL);
	CHECK_OK(iovm_dma_pa(s->ctx, s->buf, &s->pa));
	CHECK_OK(iovm_domain_create(s->ctx, attr, &s->dom));
}

static void ioas_close(struct ioas *s)
{
	no_violations(s->dom);
	CHECK_OK(iovm_domain_destroy(s->dom));
	iovm_dma_free(s->ctx, s->buf);
	iovm_close(s->ctx);
}

static int map_at(struct ioas *s, uint64_t iova, uint64_t pages)
{
	iovm_iova_t at = IOVM_IOVA(iova);

	return iovm_domain_map(s->dom, &at, s->pa, pages * SZ_4K, RW);
}

/* The largest unmap there is: [0, 2^64 - 4 KiB). */
#define ALL (SIZE_MAX & ~(size_t)(SZ_4K - 1))

/* iommufd "area": unmaps of nothing, pages at chosen IOVAs, over-maps, unmap of everything. */
TEST(ioas_areas)
{
	const uint64_t base = 0x100000000;
	struct iovm_domain_stats st;
	struct ioas s;

	ioas_open(&s, NULL);
	for (unsigned i = 0; i < 10; i++)
		CHECK_EQ(iovm_domain_unmap(s.dom, IOVM_IOVA(base + i * SZ_4K), SZ_4K), -ENOENT);
	for (unsigned i = 0; i < 10; i++)
		CHECK_OK(map_at(&s, base + i * SZ_4K, 1));
	for (unsigned i = 0; i < 10; i++)
		CHECK_OK(iovm_domain_unmap(s.dom, IOVM_IOVA(base + i * SZ_4K), SZ_4K));
	/* Two pages at 16; one of them unmapped: iommufd refuses to cut an area, iovm cuts it. */
	CHECK_OK(map_at(&s, base + 16 * SZ_4K, 2));
	CHECK_OK(iovm_domain_unmap(s.dom, IOVM_IOVA(base + 16 * SZ_4K), SZ_4K));
	CHECK_OK(map_at(&s, base + 16 * SZ_4K, 1)); /* and mapped again at once */
	/* Over-maps: any overlap with pages 16-17 is refused. */
	CHECK_EQ(map_at(&s, base + 16 * SZ_4K, 2), -EEXIST);
	CHECK_EQ(map_at(&s, base + 16 * SZ_4K, 1), -EEXIST);
	CHECK_EQ(map_at(&s, base + 17 * SZ_4K, 1), -EEXIST);
	CHECK_EQ(map_at(&s, base + 15 * SZ_4K, 2), -EEXIST);
	CHECK_EQ(map_at(&s, base + 15 * SZ_4K, 3), -EEXIST);
	/* Everything, in one call; on an empty domain iommufd succeeds, iovm says nothing was there. */
	CHECK_OK(iovm_domain_unmap(s.dom, IOVM_IOVA(0), ALL));
	CHECK_OK(iovm_domain_stats(s.dom, &st));
	CHECK_EQ(st.iova_allocated, 0);
	CHECK_EQ(st.leaves_4k, 0);
	CHECK_EQ(iovm_domain_unmap(s.dom, IOVM_IOVA(0), ALL), -ENOENT);
	ioas_close(&s);
}

/* iommufd "unmap_fully_contained_areas": iovm unmaps what a range covers, cutting areas at its ends. */
TEST(ioas_unmap_cuts_and_contains)
{
	const uint64_t base = 0x100000000 + 4 * SZ_4K;
	struct iovm_domain_stats st;
	iovm_pa_t got;
	struct ioas s;

	ioas_open(&s, NULL);
	for (unsigned i = 0; i < 4; i++)
		CHECK_OK(map_at(&s, base + i * 16 * SZ_4K, 8));
	/* Half of the first area, with 4 pages before it that nothing maps. */
	CHECK_OK(iovm_domain_unmap(s.dom, IOVM_IOVA(base - 4 * SZ_4K), 8 * SZ_4K));
	CHECK_EQ(iovm_domain_translate(s.dom, IOVM_IOVA(base + 3 * SZ_4K), &got, NULL), -ENOENT);
	CHECK_OK(iovm_domain_translate(s.dom, IOVM_IOVA(base + 4 * SZ_4K), &got, NULL));
	/* Half of the last one, running past its end. */
	CHECK_OK(iovm_domain_unmap(s.dom, IOVM_IOVA(base + 3 * 16 * SZ_4K + 4 * SZ_4K), 8 * SZ_4K));
	/* A range holding the rest whole. */
	CHECK_OK(iovm_domain_stats(s.dom, &st));
	CHECK_EQ(st.iova_allocated, 24 * SZ_4K);
	CHECK_OK(iovm_domain_unmap(s.dom, IOVM_IOVA(base - 4 * SZ_4K), 3 * 16 * SZ_4K + 12 * SZ_4K));
	CHECK_OK(iovm_domain_stats(s.dom, &st));
	CHECK_EQ(st.iova_allocated, 0);
	ioas_close(&s);
}

/* iommufd "area_auto_iova": automatic IOVAs, aligned to their length's lowest set bit, clear of holes. */
TEST(ioas_auto_iovas)
{
	const struct iovm_iova_range hole = { IOVM_IOVA(4 * SZ_4K), 100 * SZ_4K };
	struct iovm_domain_attr a = { .reserved = &hole, .nr_reserved = 1, .dma_bits = 32 };
	iovm_iova_t iova[10];
	struct ioas s;

	ioas_open(&s, NULL);
	for (unsigned i = 0; i < 10; i++) {
		iova[i] = IOVM_IOVA_ANY;
		CHECK_OK(iovm_domain_map(s.dom, &iova[i], s.pa, SZ_4K, RW));
	}
	for (unsigned i = 0; i < 10; i++)
		CHECK_OK(iovm_domain_unmap(s.dom, iova[i], SZ_4K));
	for (unsigned i = 0; i < 10; i++) {
		uint64_t len = (i + 1) * SZ_4K;

		iova[i] = IOVM_IOVA_ANY;
		CHECK_OK(iovm_domain_map(s.dom, &iova[i], s.pa, len, RW));
		CHECK_EQ(iova[i].addr % (len & -len), 0);
	}
	for (unsigned i = 0; i < 10; i++)
		CHECK_OK(iovm_domain_unmap(s.dom, iova[i], (i + 1) * SZ_4K));
	ioas_close(&s);
	/* A small window with a hole low in it: filled, nothing lands in the hole. */
	ioas_open(&s, &a);
	for (unsigned round = 0; round < 2; round++) {
		uint64_t n = 0;
		iovm_iova_t at;

		for (;;) {
			at = IOVM_IOVA_ANY;
			if (iovm_domain_map(s.dom, &at, s.pa, 32 * SZ_4K, RW))
				break;
			CHECK(at.addr + 32 * SZ_4K <= hole.start.addr || at.addr >= hole.start.addr + hole.len);
			CHECK(at.addr >= SZ_4K && at.addr + 32 * SZ_4K <= (UINT64_C(1) << 32));
			CHECK_EQ(at.addr % (32 * SZ_4K), 0);
			n++;
		}
		CHECK(n > 1000);
		CHECK_OK(iovm_domain_unmap(s.dom, IOVM_IOVA(0), ALL));
	}
	ioas_close(&s);
}

/*
 * iommufd "copy_area": a mapping copied within an address space and to
 * another. iovm has no copy call: what a domain maps is read back
 * (translate) and mapped again where wanted; a device then reads the same
 * memory through each.
 */
TEST(ioas_copy_by_translation)
{
	struct iovm_domain_attr attr = { .flags = IOVM_DOMAIN_FOLLOW_HEAP };
	struct iovm_domain *other;
	iovm_iova_t src = IOVM_IOVA(0x200000000), copy = IOVM_IOVA(0x200000000 + SZ_4K), far = IOVM_IOVA(SZ_4K);
	uint8_t *data, *out;
	iovm_pa_t pa;
	uint32_t perm;
	struct rig r;

	rig_open(&r, opts, &attr, IOVM_QUEUE_POLLED);
	data = iovm_dma_alloc(r.ctx, SZ_4K, SZ_4K, 0);
	out = iovm_dma_zalloc(r.ctx, SZ_4K, SZ_4K, 0);
	memset(data, 0x6b, SZ_4K);
	CHECK_OK(iovm_dma_pa(r.ctx, data, &pa));
	CHECK_OK(iovm_domain_map(r.dom, &src, pa, SZ_4K, IOVM_MAP_READ));
	CHECK_OK(iovm_domain_translate(r.dom, src, &pa, &perm));
	CHECK_OK(iovm_domain_map(r.dom, &copy, pa, SZ_4K, perm));
	CHECK_OK(iovm_domain_create(r.ctx, NULL, &other));
	CHECK_OK(iovm_domain_map(other, &far, pa, SZ_4K, perm));
	CHECK_EQ(run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = copy.addr, .dst = iova_of(&r, out),
						  .len = SZ_4K }).status,
		 IOVM_STATUS_SUCCESS);
	CHECK_EQ(out[SZ_4K - 1], 0x6b);
	/* The copy is a mapping of its own: unmapping the source leaves it. */
	CHECK_OK(iovm_domain_unmap(r.dom, src, SZ_4K));
	memset(out, 0, SZ_4K);
	CHECK_EQ(run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = copy.addr, .dst = iova_of(&r, out),
						  .len = SZ_4K }).status,
		 IOVM_STATUS_SUCCESS);
	CHECK_EQ(out[0], 0x6b);
	CHECK_EQ(run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = src.addr, .dst = iova_of(&r, out),
						  .len = SZ_4K }).status,
		 IOVM_STATUS_PAGE_FAULT);
	CHECK_OK(iovm_domain_unmap(r.dom, copy, SZ_4K));
	no_violations(other);
	CHECK_OK(iovm_domain_destroy(other));
	rig_close(&r);
}

/* iommufd "ioas_destroy"/"ioas_area_destroy": busy while a device uses it; with mappings only, it goes. */
TEST(ioas_destroy_with_areas_or_a_device)
{
	struct iovm_device *dev;
	struct ioas s;

	ioas_open(&s, NULL);
	for (unsigned i = 0; i < 10; i++)
		CHECK_OK(map_at(&s, 0x100000000 + i * SZ_4K, 1));
	CHECK_OK(iovm_device_open(s.ctx, "sw", &dev));
	CHECK_OK(iovm_device_attach(dev, s.dom, 3));
	CHECK_EQ(iovm_domain_destroy(s.dom), -EBUSY);
	CHECK_OK(iovm_device_detach(dev, 3));
	CHECK_OK(iovm_device_close(dev));
	ioas_close(&s); /* mappings and all */
}

/*
 * iommufd "access" tests: unmapping what a device is using. A worker runs
 * copies from a range while it is unmapped: each copy reads the old data
 * or faults, none reads anything else (the oracle), and once the unmap has
 * returned every copy faults.
 */
struct copier {
	struct rig *r;
	uint64_t src, dst;
	_Atomic bool stop;
	_Atomic unsigned ok, faults;
};

static void *copy_loop(void *arg)
{
	struct copier *c = arg;
	struct iovm_cqe cqe;

	while (!atomic_load(&c->stop)) {
		struct iovm_desc d = { .op = IOVM_OP_COPY, .src = c->src, .dst = c->dst, .len = 2 * SZ_4K };

		if (iovm_queue_submit(c->r->q, &d))
			continue;
		while (iovm_queue_reap(c->r->q, &cqe, 1) != 1)
			sched_yield();
		if (cqe.status == IOVM_STATUS_SUCCESS)
			atomic_fetch_add(&c->ok, 1);
		else
			atomic_fetch_add(&c->faults, 1);
	}
	return NULL;
}

TEST(ioas_unmap_in_use)
{
	struct iovm_domain_attr attr = { .flags = IOVM_DOMAIN_FOLLOW_HEAP };
	struct copier c = { 0 };
	iovm_iova_t at = IOVM_IOVA(0x300000000);
	uint8_t *data, *out;
	pthread_t t;
	iovm_pa_t pa;
	struct rig r;

	rig_open(&r, opts, &attr, 0);
	data = iovm_dma_alloc(r.ctx, 2 * SZ_4K, SZ_4K, IOVM_DMA_CONTIG);
	out = iovm_dma_zalloc(r.ctx, 2 * SZ_4K, SZ_4K, 0);
	memset(data, 0x3d, 2 * SZ_4K);
	CHECK_OK(iovm_dma_pa(r.ctx, data, &pa));
	c = (struct copier){ .r = &r, .src = at.addr, .dst = iova_of(&r, out) };
	for (int round = 0; round < 20; round++) {
		unsigned faults;

		CHECK_OK(iovm_domain_map(r.dom, &at, pa, 2 * SZ_4K, IOVM_MAP_READ));
		atomic_store(&c.stop, false);
		CHECK_EQ(pthread_create(&t, NULL, copy_loop, &c), 0);
		while (atomic_load(&c.ok) <= (unsigned)round)
			sched_yield(); /* at least one copy read it */
		CHECK_OK(iovm_domain_unmap(r.dom, at, 2 * SZ_4K));
		faults = atomic_load(&c.faults);
		while (atomic_load(&c.faults) < faults + 2)
			sched_yield(); /* copies submitted after the unmap fault */
		atomic_store(&c.stop, true);
		CHECK_EQ(pthread_join(t, NULL), 0);
		CHECK_EQ(out[0], 0x3d);
	}
	CHECK(atomic_load(&c.ok) >= 20);
	rig_close(&r); /* no oracle violation: nothing read but the mapped data */
}

int main(void)
{
	test_init();
	RUN(lpae_selftest_sequence);
	RUN(lpae_selftest_through_the_domain);
	RUN(gpt_map_every_size_once);
	RUN(gpt_region_in_pieces_then_whole);
	RUN(gpt_small_unmap_at_a_large_start);
	RUN(ioas_areas);
	RUN(ioas_unmap_cuts_and_contains);
	RUN(ioas_auto_iovas);
	RUN(ioas_copy_by_translation);
	RUN(ioas_destroy_with_areas_or_a_device);
	RUN(ioas_unmap_in_use);
	return 0;
}
