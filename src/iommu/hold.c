/* SPDX-License-Identifier: MIT */
/*
 * hold.c - IOVA ranges held by memory registrations (src/reg): reserved
 * for the registration's life while its pages are mapped and unmapped,
 * page by page, as the application's address space changes under it.
 *
 * The IOVA keeps the PA's offset within 2 MiB (the PA keeps the VA's, see
 * phys/window.c), so that wherever the application's memory is 2 MiB
 * aligned, a 2 MiB leaf maps it. Unmaps are strict in every domain: a
 * registration's memory belongs to the application, which may reuse it as
 * soon as iovm lets it go, and no flush queue may stand in between.
 */
#include <errno.h>

#include "base/ctx.h"
#include "base/error.h"
#include "iommu/iommu_internal.h"

bool iommu_can_hold(const struct iovm_domain *dom)
{
	return dom->type == IOVM_DOMAIN_MANAGED || dom->type == IOVM_DOMAIN_VA;
}

/* Where the held range starts within its 2 MiB: the PA's offset, kept. */
static uint64_t hold_head(pa_t pa)
{
	return pa_val(pa) & (SZ_2M - 1);
}

int iommu_hold(struct iovm_domain *dom, uint64_t va, pa_t pa, uint64_t len, iova_t *iova)
{
	uint64_t head = hold_head(pa);
	iova_t base;
	int ret;

	if (!dom || !len || !is_aligned(va | pa_val(pa) | len, SZ_4K) || !iova)
		return err_inval("!dom || !len || !is_aligned(va | pa_val(pa) | len, SZ_4K) || !iova");
	if (dom->shared_ops)
		return err_detail(-EOPNOTSUPP, IOVM_LOG_DEBUG,
				  "a shared domain's registrations take their PA from their IOVA (iommu_hold_shared())");
	switch (dom->type) {
	case IOVM_DOMAIN_MANAGED:
		ret = iova_alloc(&dom->iova, align_up(head + len, SZ_2M), SZ_2M, &base);
		if (ret)
			return err_detail(ret, IOVM_LOG_DEBUG, "no IOVA range of %lu bytes left",
					  (unsigned long)len);
		*iova = iova_add(base, head);
		return 0;
	case IOVM_DOMAIN_VA:
		/* The device sees the application's own addresses. */
		if (va + len > dom->limit || va + len < va)
			return err_detail(-ENOSPC, IOVM_LOG_DEBUG, "VA %#lx beyond the domain's DMA mask",
					  (unsigned long)va);
		*iova = iova_make(va);
		return 0;
	default:
		return err_detail(-EOPNOTSUPP, IOVM_LOG_DEBUG,
				  "an identity domain maps all memory, and could not unmap a registration's; "
				  "guest and nested domains map guest addresses");
	}
}

int iommu_hold_shared(struct iovm_domain *dom, uint64_t va, uint64_t len, iova_t *iova, pa_t *pa)
{
	uint64_t head = va & (SZ_2M - 1), span = align_up(head + len, SZ_2M);
	iova_t base;
	int ret;

	if (!dom || !dom->shared_ops || !len || !is_aligned(va | len, SZ_4K) || !iova || !pa)
		return err_inval("!dom || !dom->shared_ops || !len || !is_aligned(va | len, SZ_4K) || !iova || !pa");
	ret = dom->shared_ops->iova_alloc(dom->shared_arg, span, SZ_2M, &base);
	if (ret)
		return err_detail(ret, IOVM_LOG_DEBUG, "no IOVA range of %lu bytes left in the shared domain",
				  (unsigned long)len);
	ret = dom->shared_ops->reg_pa(dom->shared_arg, base, span, pa);
	if (ret) {
		dom->shared_ops->iova_free(dom->shared_arg, base, span);
		return err_detail(ret, IOVM_LOG_DEBUG,
				  "IOVA %#lx of the shared domain is beyond what a registration's PA can follow",
				  (unsigned long)iova_val(base));
	}
	/* Held by the registration from here on: the reg_pa() units name it. */
	domain_iova_settled(dom, base, span);
	*iova = iova_add(base, head);
	*pa = pa_add(*pa, head);
	return 0;
}

void iommu_unhold(struct iovm_domain *dom, iova_t iova, pa_t pa, uint64_t len)
{
	uint64_t head = hold_head(pa);

	if (dom->shared_ops)
		dom->shared_ops->iova_free(dom->shared_arg, iova_make(iova_val(iova) - head),
					   align_up(head + len, SZ_2M));
	else if (dom->type == IOVM_DOMAIN_MANAGED)
		iova_free(&dom->iova, iova_make(iova_val(iova) - head), align_up(head + len, SZ_2M));
}

int iommu_hold_map(struct iovm_domain *dom, iova_t iova, pa_t pa, uint64_t len, uint32_t perm)
{
	unsigned prot = (perm & IOVM_MAP_READ ? PT_PROT_READ : 0) | (perm & IOVM_MAP_WRITE ? PT_PROT_WRITE : 0);
	bool begun;
	int ret;

	if (!prot || !len || !is_aligned(iova_val(iova) | pa_val(pa) | len, SZ_4K))
		return err_inval("!prot || !len || !is_aligned(iova_val(iova) | pa_val(pa) | len, SZ_4K)");
	flushq_unquarantine(dom, iova, len);
	begun = shadow_map_begin(dom, iova, len, pa, prot);
	ret = domain_pt_map(dom, iova, pa, NULL, len, prot);
	shadow_map_end(dom, iova, len, pa, prot, begun, !ret);
	return ret;
}

void iommu_hold_unmap(struct iovm_domain *dom, iova_t iova, uint64_t len)
{
	bool any;

	domain_unmap_how(dom, iova, len, UNMAP_STRICT | UNMAP_KEEP_IOVA, &any);
}

uint64_t iommu_hold_huge_leaves(struct iovm_domain *dom, iova_t iova, uint64_t len)
{
	uint64_t n = 0, end = iova_val(iova) + len;

	for (uint64_t at = align_up(iova_val(iova), SZ_2M); at + SZ_2M <= end; at += SZ_2M) {
		struct pt_walk w;

		if (!pt_walk(&dom->pt, iova_make(at), &w) && w.shift >= 21)
			n++;
	}
	return n;
}

struct iovm_ctx *iommu_domain_ctx(const struct iovm_domain *dom)
{
	return dom->ctx;
}

enum iovm_domain_type iommu_domain_type(const struct iovm_domain *dom)
{
	return dom->type;
}

bool iommu_domain_shared(const struct iovm_domain *dom)
{
	return dom->shared_ops != NULL;
}

bool iommu_domain_mirrored(const struct iovm_domain *dom)
{
	return dom->mirror != NULL || dom->shared_ops != NULL;
}
