/* SPDX-License-Identifier: MIT */
/*
 * fault_iommu.c - fault-injection scenarios of iovm/iommu.h: domains of each
 * kind (managed strict and deferred, following the heap, VA, identity) and
 * their maps at chosen and at fixed IOVAs, scattered pages, unmaps (partial
 * ones split leaves), flushes, translation, dirty bits, faults and
 * statistics.
 */
#include "fault.h"

#define RW (IOVM_MAP_READ | IOVM_MAP_WRITE)

/* Issue 16 item 7: an IOVA freed into a per-thread magazine cannot be mapped again at once. */

static void check_translate(struct iovm_domain *dom, iovm_iova_t iova, uint64_t want_pa)
{
	iovm_pa_t pa;
	uint32_t perm;

	FI_INT(iovm_domain_translate(dom, iova, &pa, &perm));
	CHECK_EQ(pa.addr, want_pa);
	CHECK_EQ(perm, RW);
}

static int no_handler(void *arg __attribute__((unused)), struct iovm_domain *dom __attribute__((unused)),
		      const struct iovm_fault *f __attribute__((unused)))
{
	return -EFAULT;
}

/* Maps and unmaps of a managed domain, strict or deferred. */
static void managed(uint32_t flags)
{
	struct iovm_ctx *ctx = fault_open(FAULT_OPTS);
	struct iovm_domain_attr attr = { .type = IOVM_DOMAIN_MANAGED, .flags = flags };
	struct iovm_domain_stats st;
	struct iovm_domain *dom;
	struct iovm_cbuf *cb;
	iovm_iova_t iova, fixed, pages_iova;
	iovm_pa_t pa, pages[8], hole;
	uint32_t hole_perm;
	struct iovm_fault f;
	bool accessed, dirty;
	unsigned n;
	uint8_t *buf;

	buf = FI_PTR(iovm_dma_alloc(ctx, 4 << 20, 2 << 20, IOVM_DMA_CONTIG));
	FI_INT(iovm_dma_pa(ctx, buf, &pa));
	FI_INT(iovm_domain_create(ctx, &attr, &dom));
	/* At an IOVA the domain chooses, by pointer. */
	FI_INT(iovm_domain_map_ptr(dom, buf, 1 << 20, RW, &iova));
	check_translate(dom, IOVM_IOVA(iova.addr + 8192), pa.addr + 8192);
	/* At a fixed IOVA, by PA, with 2 MiB leaves: a failed map left nothing there (no -EEXIST). */
	fixed = IOVM_IOVA(UINT64_C(1) << 40);
	FI_INT(__extension__({
		iovm_iova_t at = fixed;
		iovm_domain_map(dom, &at, IOVM_PA(pa.addr + (2 << 20)), 2 << 20, RW);
	}));
	check_translate(dom, IOVM_IOVA(fixed.addr + 4096), pa.addr + (2 << 20) + 4096);
	/* Scattered pages at consecutive IOVAs. */
	FI_INT(iovm_cbuf_alloc(ctx, 8 * 4096, 0, &cb));
	FI_INT(iovm_cbuf_pages(cb, pages, 8, &n));
	FI_INT(__extension__({
		pages_iova = IOVM_IOVA_ANY;
		iovm_domain_map_pages(dom, &pages_iova, pages, 8, RW);
	}));
	check_translate(dom, IOVM_IOVA(pages_iova.addr + 5 * 4096), pages[5].addr);
	/* A hole cut out of the 2 MiB leaf, mapped again at the same IOVA. */
	FI_INT(iovm_domain_unmap(dom, IOVM_IOVA(fixed.addr + (1 << 20)), 4096));
	FI_INT(iovm_domain_flush(dom));
	FI_EXPECT(iovm_domain_translate(dom, IOVM_IOVA(fixed.addr + (1 << 20)), &hole, &hole_perm), -ENOENT);
	check_translate(dom, IOVM_IOVA(fixed.addr + 4096), pa.addr + (2 << 20) + 4096);
	FI_INT(iovm_domain_read_dirty(dom, fixed, 2 << 20, true, &accessed, &dirty));
	FI_INT(iovm_domain_set_fault_handler(dom, no_handler, NULL));
	FI_EXPECT(iovm_domain_fault_pop(dom, &f), -EAGAIN);
	FI_INT(iovm_domain_stats(dom, &st));
	CHECK(st.leaves_4k + st.leaves_2m >= 1);
	FI_INT(iovm_domain_unmap(dom, iova, 1 << 20));
	FI_INT(iovm_domain_unmap(dom, fixed, 2 << 20));
	FI_INT(iovm_domain_unmap(dom, pages_iova, 8 * 4096));
	FI_INT(iovm_domain_flush(dom));
	/* The IOVAs are free again: the same fixed one maps once more. */
	FI_INT(__extension__({
		iovm_iova_t at = fixed;
		iovm_domain_map(dom, &at, pa, 4096, RW);
	}));
	FI_INT(iovm_domain_unmap(dom, fixed, 4096));
	FI_INT(iovm_domain_set_fault_handler(dom, NULL, NULL));
	FI_INT(iovm_domain_destroy(dom));
	FI_INT(iovm_cbuf_free(cb));
	FI_INT(iovm_dma_free(ctx, buf));
	CHECK_EQ(iovm_close(ctx), 0);
}

static void sc_strict(void)
{
	managed(0);
}

static void sc_deferred(void)
{
	managed(IOVM_DOMAIN_DEFERRED);
}

/* A domain that follows the heap: every commit mapped through the memory events. */
static void sc_follow(void)
{
	struct iovm_ctx *ctx = fault_open(FAULT_OPTS);
	struct iovm_domain_attr attr = { .type = IOVM_DOMAIN_MANAGED, .flags = IOVM_DOMAIN_FOLLOW_HEAP };
	struct iovm_domain *dom;
	iovm_iova_t iova;
	iovm_pa_t pa;
	uint8_t *before, *after;

	before = FI_PTR(iovm_dma_alloc(ctx, 1 << 20, 4096, 0));
	FI_INT(iovm_domain_create(ctx, &attr, &dom));
	FI_INT(iovm_dma_iova(dom, before + 100, &iova));
	FI_INT(iovm_dma_pa(ctx, before + 100, &pa));
	check_translate(dom, IOVM_IOVA(iova.addr & ~UINT64_C(4095)), pa.addr & ~UINT64_C(4095));
	/* A commit the domain cannot map fails the allocation; asked again, both work. */
	after = FI_PTR(iovm_dma_alloc(ctx, 3 << 20, 4096, 0));
	FI_INT(iovm_dma_iova(dom, after + (2 << 20), &iova));
	FI_INT(iovm_dma_pa(ctx, after + (2 << 20), &pa));
	check_translate(dom, iova, pa.addr);
	FI_INT(iovm_dma_free(ctx, after));
	FI_INT(iovm_dma_trim(ctx, IOVM_TRIM_ALL));
	FI_INT(iovm_domain_destroy(dom));
	FI_INT(iovm_dma_free(ctx, before));
	CHECK_EQ(iovm_close(ctx), 0);
}

/* VA and identity domains: the pointer, or the PA, is the IOVA. */
static void sc_va_identity(void)
{
	struct iovm_ctx *ctx = fault_open(FAULT_OPTS);
	struct iovm_domain_attr va_attr = { .type = IOVM_DOMAIN_VA };
	struct iovm_domain_attr id_attr = { .type = IOVM_DOMAIN_IDENTITY };
	struct iovm_domain *va, *id;
	iovm_iova_t iova;
	iovm_pa_t pa;
	uint8_t *buf;

	buf = FI_PTR(iovm_dma_alloc(ctx, 64 << 10, 4096, 0));
	FI_INT(iovm_dma_pa(ctx, buf, &pa));
	FI_INT(iovm_domain_create(ctx, &va_attr, &va));
	FI_INT(iovm_domain_map_ptr(va, buf, 64 << 10, RW, &iova));
	CHECK_EQ(iova.addr, (uintptr_t)buf);
	check_translate(va, iova, pa.addr);
	FI_INT(iovm_domain_create(ctx, &id_attr, &id));
	FI_EXPECT(iovm_domain_map(id, &iova, pa, 4096, RW), -EOPNOTSUPP);
	check_translate(id, IOVM_IOVA(pa.addr), pa.addr);
	FI_INT(iovm_domain_unmap(va, iova, 64 << 10));
	FI_INT(iovm_domain_destroy(va));
	FI_INT(iovm_domain_destroy(id));
	FI_INT(iovm_dma_free(ctx, buf));
	CHECK_EQ(iovm_close(ctx), 0);
}

static const struct fault_scenario fault_iommu_scenarios[] = {
	{ "managed domain, strict", sc_strict },
	{ "managed domain, deferred", sc_deferred },
	{ "domain following the heap", sc_follow },
	{ "VA and identity domains", sc_va_identity },
	{ NULL, NULL },
};
