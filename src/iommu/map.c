/* SPDX-License-Identifier: MIT */
/*
 * map.c - mapping: where a mapping goes (an IOVA the domain chooses, or
 * one the caller chose, taken from the allocator), and the maps by PA, by
 * guest physical address, by scattered pages and by pointer into the heap.
 * A map shows the mapping to the oracle's shadow before devices can use it,
 * and to a mirror after iovm's table has it.
 */
#include <errno.h>
#include <inttypes.h>

#include <iovm/mem.h>

#include "base/ctx.h"
#include "base/error.h"
#include "iommu/iommu_internal.h"
#include "phys/phys.h"

static unsigned prot_of(uint32_t perm)
{
	return (perm & IOVM_MAP_READ ? PT_PROT_READ : 0) | (perm & IOVM_MAP_WRITE ? PT_PROT_WRITE : 0);
}

static bool perm_ok(uint32_t perm)
{
	return perm && !(perm & ~(IOVM_MAP_READ | IOVM_MAP_WRITE));
}

/* The alignment to give an IOVA for [pa, pa+len): as the PA allows, up to 1 GiB, for huge leaves. */
static uint64_t iova_align(pa_t pa, uint64_t len)
{
	uint64_t a = SZ_4K;

	while (a < SZ_1G && is_aligned(pa_val(pa), a * 2) && len >= a * 2)
		a *= 2;
	return a;
}

/* Whether [iova, +len) meets a range the domain's mirror cannot map (reserved while it is set). */
static bool in_mirror_hole(struct iovm_domain *dom, iova_t iova, uint64_t len)
{
	for (unsigned i = 0; i < dom->nr_mirror_reserved; i++) {
		const struct iova_range *h = &dom->mirror_reserved[i];

		if (iova_val(iova) < iova_val(h->start) + h->len && iova_val(h->start) < iova_val(iova) + len)
			return true;
	}
	return false;
}

/* Whether [iova, +len) ends at or below the domain's DMA limit. */
static bool below_limit(const struct iovm_domain *dom, iova_t iova, uint64_t len)
{
	return iova_val(iova) + len <= dom->limit && iova_val(iova) + len >= iova_val(iova);
}

/* Where a mapping of @len bytes goes: chosen (ANY) or reserved. */
static int iova_take(struct iovm_domain *dom, iova_t *iova, uint64_t len, uint64_t align)
{
	int ret;

	if (dom->shared_ops) {
		if (!iova_valid(*iova))
			return dom->shared_ops->iova_alloc(dom->shared_arg, len, align, iova);
		if (range_bad(iova_val(*iova), len))
			return err_inval("range_bad(iova_val(*iova), len)");
		ret = dom->shared_ops->iova_reserve(dom->shared_arg, *iova, len);
		if (ret == -EEXIST && (dom->flags & IOVM_DOMAIN_DEFERRED)) {
			/* Quarantined by this process's unmap, perhaps, as below; another's stays taken. */
			flushq_flush(dom);
			ret = dom->shared_ops->iova_reserve(dom->shared_arg, *iova, len);
		}
		return ret;
	}
	if (!dom->has_iova) {
		/* A VA domain's page 0 is no process memory: kept unmapped, as a managed domain's. */
		if (!iova_valid(*iova) || (dom->type == IOVM_DOMAIN_VA && iova_val(*iova) < MANAGED_IOVA_BASE))
			return err_inval("!iova_valid(*iova) || (dom->type == IOVM_DOMAIN_VA && iova_val(*iova) < MANAGED_IOVA_BASE)");
		return 0;
	}
	if (!iova_valid(*iova))
		return iova_alloc(&dom->iova, len, align, iova);
	/* Holes are outside the window: never handed out, never mapped. */
	if (range_bad(iova_val(*iova), len) || iova_in_hole(&dom->iova, *iova, len) ||
	    in_mirror_hole(dom, *iova, len))
		return err_inval("range_bad(iova_val(*iova), len) || iova_in_hole(&dom->iova, *iova, len) || in_mirror_hole(dom, *iova, len)");
	ret = iova_reserve(&dom->iova, *iova, len);
	if (ret == -EBUSY && (dom->flags & IOVM_DOMAIN_DEFERRED)) {
		/*
		 * Quarantined, perhaps: unmapped, awaiting its flush. The caller
		 * unmapped it and wants it back: flush now rather than fail.
		 */
		flushq_flush(dom);
		ret = iova_reserve(&dom->iova, *iova, len);
	}
	if (ret == -EINVAL)
		return err_detail(ret, IOVM_LOG_DEBUG, "IOVA [%#" PRIx64 ", +%#" PRIx64 ") is outside the domain's window",
				  iova_val(*iova), len);
	return ret == -EBUSY ? -EEXIST : ret;
}

void domain_iova_give(struct iovm_domain *dom, iova_t iova, uint64_t len)
{
	if (dom->shared_ops)
		dom->shared_ops->iova_free(dom->shared_arg, iova, len);
	else if (dom->has_iova)
		iova_free(&dom->iova, iova, len);
}

void domain_iova_settled(struct iovm_domain *dom, iova_t iova, uint64_t len)
{
	if (dom->shared_ops && dom->shared_ops->iova_settled)
		dom->shared_ops->iova_settled(dom->shared_arg, iova, len);
}

int domain_map_pa(struct iovm_domain *dom, iova_t *iova, pa_t pa, const void *where, uint64_t len, unsigned prot)
{
	int ret = iova_take(dom, iova, len, iova_align(pa, len));
	bool begun;

	if (ret)
		return ret;
	if (!below_limit(dom, *iova, len)) {
		ret = err_detail(-EINVAL, IOVM_LOG_DEBUG, "IOVA [%#" PRIx64 ", +%#" PRIx64 ") is past the domain's limit",
				 iova_val(*iova), len);
		goto give;
	}
	flushq_unquarantine(dom, *iova, len);
	begun = shadow_map_begin(dom, *iova, len, pa, prot);
	ret = domain_pt_map(dom, *iova, pa, where, len, prot);
	shadow_map_end(dom, *iova, len, pa, prot, begun, !ret);
	if (ret)
		goto give;
	domain_iova_settled(dom, *iova, len);
	return 0;
give:
	domain_iova_give(dom, *iova, len);
	return ret;
}

void domain_unmapped_release(struct iovm_domain *dom, iova_t iova, pa_t pa, uint64_t len, bool keep_iova)
{
	if (dom->shared_ops)
		dom->shared_ops->pa_release(dom->shared_arg, iova, pa, len, !keep_iova);
	else if (!keep_iova)
		domain_iova_give(dom, iova, len);
}

int domain_pa_hold(struct iovm_domain *dom, iova_t iova, pa_t pa, uint64_t len)
{
	return dom->shared_ops ? dom->shared_ops->pa_hold(dom->shared_arg, iova, pa, len) : 0;
}

void domain_pa_put(struct iovm_domain *dom, iova_t iova, pa_t pa, uint64_t len)
{
	if (dom->shared_ops)
		dom->shared_ops->pa_put(dom->shared_arg, iova, pa, len);
}

/* Whether every page of [pa, pa+len) is memory iovm owns. */
static bool on_bus(struct iovm_domain *dom, pa_t pa, uint64_t len)
{
	for (uint64_t off = 0; off < len; off += SZ_2M - ((pa_val(pa) + off) & (SZ_2M - 1)))
		if (!phys_map_page_size(dom->ctx->phys, pa_add(pa, off)))
			return false;
	return true;
}

static int map_args_check(struct iovm_domain *dom, const iovm_iova_t *iova, uint64_t len, uint32_t perm)
{
	if (!dom || !iova || !len || !is_aligned(len, SZ_4K) || !perm_ok(perm))
		return err_inval("!dom || !iova || !len || !is_aligned(len, SZ_4K) || !perm_ok(perm)");
	if (iova->addr != IOVM_ADDR_INVALID && !is_aligned(iova->addr, SZ_4K))
		return err_inval("iova->addr != IOVM_ADDR_INVALID && !is_aligned(iova->addr, SZ_4K)");
	if (dom->type == IOVM_DOMAIN_IDENTITY || dom->type == IOVM_DOMAIN_NESTED)
		return -EOPNOTSUPP;
	return 0;
}

IOVM_API int iovm_domain_map(struct iovm_domain *dom, iovm_iova_t *iova, iovm_pa_t pa, size_t len,
			     uint32_t perm)
{
	iova_t where;
	int ret;

	err_enter();
	ret = map_args_check(dom, iova, len, perm);
	if (ret)
		return ret;
	if (!is_aligned(pa_val(pa), SZ_4K) || pa_val(pa) + len < pa_val(pa) || !on_bus(dom, pa, len))
		return err_inval("!is_aligned(pa_val(pa), SZ_4K) || pa_val(pa) + len < pa_val(pa) || !on_bus(dom, pa, len)");
	where = *iova;
	ret = domain_map_pa(dom, &where, pa, NULL, len, prot_of(perm));
	if (!ret)
		*iova = where;
	return ret;
}

IOVM_API int iovm_domain_map_gpa(struct iovm_domain *dom, iovm_iova_t *iova, iovm_gpa_t gpa, size_t len,
				 uint32_t perm)
{
	iova_t where;
	int ret;

	err_enter();
	if (!dom || !iova || !len || !is_aligned(len | gpa.addr, SZ_4K) || !perm_ok(perm) ||
	    gpa.addr + len < gpa.addr || gpa.addr + len > (UINT64_C(1) << PT_IOVA_BITS))
		return err_inval("!dom || !iova || !len || !is_aligned(len | gpa.addr, SZ_4K) || !perm_ok(perm) || gpa.addr + len < gpa.addr || gpa.addr + len > (UINT64_C(1) << PT_IOVA_BITS)");
	if (iova->addr != IOVM_ADDR_INVALID && !is_aligned(iova->addr, SZ_4K))
		return err_inval("iova->addr != IOVM_ADDR_INVALID && !is_aligned(iova->addr, SZ_4K)");
	if (dom->type != IOVM_DOMAIN_NESTED)
		return -EOPNOTSUPP;
	where = *iova;
	ret = domain_map_pa(dom, &where, stage1_out(gpa), NULL, len, prot_of(perm));
	if (!ret)
		*iova = where;
	return ret;
}

int iommu_stage2_map(struct iovm_domain *dom, gpa_t gpa, pa_t pa, const void *where, uint64_t len, uint32_t perm)
{
	iova_t at = iommu_stage2_iova(gpa);

	if (!dom || dom->type != IOVM_DOMAIN_GUEST || !len || !is_aligned(gpa_val(gpa) | pa_val(pa) | len, SZ_4K) ||
	    !perm_ok(perm))
		return err_inval("!dom || dom->type != IOVM_DOMAIN_GUEST || !len || !is_aligned(gpa_val(gpa) | pa_val(pa) | len, SZ_4K) || !perm_ok(perm)");
	return domain_map_pa(dom, &at, pa, where, len, prot_of(perm));
}

IOVM_API int iovm_domain_map_pages(struct iovm_domain *dom, iovm_iova_t *iova, const iovm_pa_t *pages,
				   unsigned n, uint32_t perm)
{
	uint64_t len = (uint64_t)n << 12;
	struct pt_retired retired = { NULL };
	iova_t where;
	bool begun;
	int ret;

	err_enter();
	if (!pages || !n)
		return err_inval("!pages || !n");
	ret = map_args_check(dom, iova, len, perm);
	if (ret)
		return ret;
	for (unsigned i = 0; i < n; i++)
		if (!is_aligned(pages[i].addr, SZ_4K) || !phys_map_page_size(dom->ctx->phys, pages[i]))
			return err_inval("!is_aligned(pages[i].addr, SZ_4K) || !phys_map_page_size(dom->ctx->phys, pages[i])");
	where = *iova;
	ret = iova_take(dom, &where, len, SZ_4K);
	if (ret)
		return ret;
	if (!below_limit(dom, where, len)) {
		domain_iova_give(dom, where, len);
		return err_detail(-EINVAL, IOVM_LOG_DEBUG, "IOVA [%#" PRIx64 ", +%#" PRIx64 ") is past the domain's limit",
				  iova_val(where), (uint64_t)len);
	}
	flushq_unquarantine(dom, where, len);
	for (unsigned i = 0; i < n; i++) {
		ret = domain_pa_hold(dom, iova_add(where, (uint64_t)i << 12), pages[i], SZ_4K);
		if (ret) {
			while (i-- > 0)
				domain_pa_put(dom, iova_add(where, (uint64_t)i << 12), pages[i], SZ_4K);
			domain_iova_give(dom, where, len);
			return ret;
		}
	}
	begun = shadow_map_pages_begin(dom, where, pages, n, prot_of(perm));
	ret = pt_map_pages(&dom->pt, where, pages, n, prot_of(perm), &retired);
	if (ret) {
		for (unsigned i = 0; i < n; i++)
			domain_pa_put(dom, iova_add(where, (uint64_t)i << 12), pages[i], SZ_4K);
		shadow_map_pages_end(dom, where, pages, n, prot_of(perm), begun, false);
		domain_retired_free(dom, &retired);
		domain_iova_give(dom, where, len);
		return ret;
	}
	/* The mirror gets runs contiguous in the process's address space. */
	if (dom->mirror) {
		struct mirror_batch b = { 0 };

		for (unsigned i = 0; i < n && !ret; i++)
			ret = mirror_batch_add(dom, &b, iova_add(where, (uint64_t)i << 12), pages[i], NULL, SZ_4K,
					       perm & IOVM_MAP_WRITE);
		if (!ret)
			ret = mirror_batch_end(dom, &b);
		if (ret) {
			mirror_batch_undo(dom, &b);
			domain_undo_map(dom, where, len);
			shadow_map_pages_end(dom, where, pages, n, prot_of(perm), begun, false);
			domain_iova_give(dom, where, len);
			return ret;
		}
	}
	shadow_map_pages_end(dom, where, pages, n, prot_of(perm), begun, true);
	domain_iova_settled(dom, where, len);
	*iova = where;
	return 0;
}

IOVM_API int iovm_domain_map_ptr(struct iovm_domain *dom, const void *ptr, size_t len, uint32_t perm,
				 iovm_iova_t *iova)
{
	struct iovm_dma_xlate x;
	iova_t where;
	int ret;

	err_enter();
	if (!dom || !ptr || !iova || !len || !is_aligned((uintptr_t)ptr | len, SZ_4K) || !perm_ok(perm) ||
	    range_bad((uintptr_t)ptr, len))
		return err_inval("!dom || !ptr || !iova || !len || !is_aligned((uintptr_t)ptr | len, SZ_4K) || !perm_ok(perm) || range_bad((uintptr_t)ptr, len)");
	if (dom->type == IOVM_DOMAIN_NESTED)
		return -EOPNOTSUPP;
	ret = iovm_dma_xlate(dom->ctx, ptr, &x);
	if (ret)
		return ret;
	if (dom->type == IOVM_DOMAIN_IDENTITY) {
		/* Nothing to map: the device address is the PA, if it is one range. */
		if (x.contig < len)
			return err_inval("x.contig < len");
		*iova = iova_make(pa_val(x.pa)); /* IOVA == PA */
		return 0;
	}
	/* A VA domain's IOVA is the process's address. */
	where = iova_make(dom->type == IOVM_DOMAIN_VA ? (uintptr_t)ptr : IOVM_ADDR_INVALID);
	if (x.contig >= len) {
		ret = domain_map_pa(dom, &where, x.pa, ptr, len, prot_of(perm));
		if (!ret)
			*iova = where;
		return ret;
	}
	/* Scattered in physical memory: run by run, at consecutive IOVAs. */
	ret = iova_take(dom, &where, len, iova_align(x.pa, x.contig));
	if (ret)
		return ret;
	if (!below_limit(dom, where, len)) {
		domain_iova_give(dom, where, len);
		return err_detail(-EINVAL, IOVM_LOG_DEBUG, "IOVA [%#" PRIx64 ", +%#" PRIx64 ") is past the domain's limit",
				  iova_val(where), (uint64_t)len);
	}
	ret = domain_map_va(dom, where, ptr, len, prot_of(perm));
	if (ret) {
		domain_iova_give(dom, where, len);
		return ret;
	}
	domain_iova_settled(dom, where, len);
	*iova = where;
	return 0;
}

int domain_map_va(struct iovm_domain *dom, iova_t iova, const void *va, uint64_t len, unsigned prot)
{
	struct pt_retired retired = { NULL };
	struct mirror_batch batch = { 0 };
	uint64_t done, run;
	bool begun;
	int ret = 0;

	flushq_unquarantine(dom, iova, len);
	for (done = 0; done < len; done += run) {
		struct iovm_dma_xlate x;

		ret = iovm_dma_xlate(dom->ctx, (const uint8_t *)va + done, &x);
		if (ret)
			goto unwind;
		run = MIN(x.contig, len - done);
		/* A shared domain's hold checks the PA too. */
		ret = domain_pa_hold(dom, iova_add(iova, done), x.pa, run);
		if (ret)
			goto unwind;
		begun = shadow_map_begin(dom, iova_add(iova, done), run, x.pa, prot);
		ret = pt_map(&dom->pt, iova_add(iova, done), x.pa, run, prot, true, &retired);
		shadow_map_end(dom, iova_add(iova, done), run, x.pa, prot, begun, !ret);
		if (ret) {
			domain_pa_put(dom, iova_add(iova, done), x.pa, run); /* mapped nothing */
			goto unwind;
		}
		ret = mirror_batch_add(dom, &batch, iova_add(iova, done), x.pa, (const uint8_t *)va + done, run,
				       prot & PT_PROT_WRITE);
		if (ret) {
			done += run;
			goto unwind;
		}
	}
	ret = mirror_batch_end(dom, &batch);
	if (!ret) {
		domain_retired_free(dom, &retired);
		return 0;
	}

unwind:
	mirror_batch_undo(dom, &batch);
	if (done) {
		bool any;

		domain_unmap_how(dom, iova, done, UNMAP_STRICT | UNMAP_KEEP_IOVA, &any);
	}
	return ret;
}

