/* SPDX-License-Identifier: MIT */
/*
 * shadow.h - between shadow.c (the oracle of a process's own domains, a
 * tree under a lock) and shadow_shared.c (the oracle of a shared domain, a
 * word per IOVA page in memory every process maps).
 */
#ifndef IOVM_IOMMU_SHADOW_H
#define IOVM_IOMMU_SHADOW_H

#include "iommu/iommu_internal.h"

/* The pieces of a map: @n pages at consecutive IOVAs from @iova, at the PAs @pas gives; or, with @pas NULL, from @pa. */
struct shadow_pieces {
	iova_t iova;
	pa_t pa;
	const pa_t *pas;
	uint64_t n;
	uint32_t prot;
};

static inline pa_t shadow_piece_pa(const struct shadow_pieces *p, uint64_t i)
{
	return p->pas ? p->pas[i] : pa_add(p->pa, i << 12);
}

/* shadow.c: count a violation, and log the first ones. */
void shadow_violation(struct iovm_domain *dom, const char *what, iova_t iova, pa_t pa);

/* shadow_shared.c: the same calls as shadow.c's, for a domain with a shared shadow (dom->sshadow). */
bool sshadow_map_begin(struct iovm_domain *dom, const struct shadow_pieces *p);
void sshadow_map_end(struct iovm_domain *dom, const struct shadow_pieces *p, bool begun, bool mapped);
void sshadow_unmap(struct iovm_domain *dom, const struct unmapped *p, bool pending);
void sshadow_flushed(struct iovm_domain *dom, const struct unmapped *p);
void sshadow_check(struct iovm_domain *dom, iova_t iova, uint64_t len, pa_t pa, unsigned prot);

#endif /* IOVM_IOMMU_SHADOW_H */
