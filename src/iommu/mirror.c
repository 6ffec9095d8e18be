/* SPDX-License-Identifier: MIT */
/*
 * mirror.c - a managed domain mirrored into an IOMMU outside iovm: every
 * mapping iovm's page table gets, the mirror gets too (a real device
 * attached through VFIO translates with the kernel's IOMMU, not iovm's
 * table); every range unmapped, the mirror unmaps.
 *
 * iovm's table stays the reference: IOVAs come from iovm's allocator,
 * inside the ranges the other IOMMU can map (the rest is reserved while the
 * mirror is set), and the oracle, statistics and translations read iovm's
 * table as for any domain.
 */
#include <errno.h>

#include "base/compiler.h"
#include "base/log.h"
#include "iommu/iommu_internal.h"

int domain_pt_map(struct iovm_domain *dom, uint64_t iova, uint64_t pa, uint64_t len, unsigned prot)
{
	int ret = pt_map(&dom->pt, iova, pa, len, prot, true);

	if (ret || !dom->mirror)
		return ret;
	ret = dom->mirror->map(dom->mirror_arg, iova, pa, len, prot & PT_PROT_WRITE);
	if (ret) {
		/* Not mapped for the device: not mapped at all. Nothing walked it yet. */
		pt_unmap(&dom->pt, iova, len, NULL, NULL);
		pt_reclaim(&dom->pt);
	}
	return ret;
}

void domain_mirror_unmap(struct iovm_domain *dom, uint64_t iova, uint64_t len)
{
	if (dom->mirror)
		dom->mirror->unmap(dom->mirror_arg, iova, len);
}

struct replay {
	struct iovm_domain *dom;
	uint64_t done_end; /* for the unwinding: runs up to here are mirrored */
	uint64_t first;
	bool any;
};

static int replay_one(void *arg, uint64_t iova, uint64_t pa, uint64_t len, unsigned prot)
{
	struct replay *r = arg;
	int ret = r->dom->mirror->map(r->dom->mirror_arg, iova, pa, len, prot & PT_PROT_WRITE);

	if (ret)
		return ret;
	if (!r->any)
		r->first = iova;
	r->any = true;
	r->done_end = iova + len;
	return 0;
}

static void unreserve(struct iovm_domain *dom)
{
	for (unsigned i = 0; i < dom->nr_mirror_reserved; i++) {
		const struct iova_range *h = &dom->mirror_reserved[i];

		iova_free(&dom->iova, h->start >> 12, (h->end - h->start) >> 12);
	}
	dom->nr_mirror_reserved = 0;
}

/* Reserve [start, end) of the domain's IOVA space, clipped to it. */
static int reserve_hole(struct iovm_domain *dom, uint64_t start, uint64_t end)
{
	int ret;

	start = align_up(start, SZ_4K);
	end = MIN(align_down(end, SZ_4K), dom->limit);
	if (start >= end)
		return 0;
	if (dom->nr_mirror_reserved == MIRROR_MAX_HOLES)
		return -E2BIG;
	ret = iova_reserve(&dom->iova, start >> 12, (end - start) >> 12);
	if (ret)
		return ret == -EBUSY ? -EBUSY : ret;
	dom->mirror_reserved[dom->nr_mirror_reserved++] = (struct iova_range){ .start = start, .end = end };
	return 0;
}

int iommu_domain_mirror(struct iovm_domain *dom, const struct iommu_mirror_ops *ops, void *arg,
			const struct iommu_iova_range *usable, unsigned nr_usable)
{
	struct replay r = { .dom = dom };
	uint64_t at = 0;
	int ret = 0;

	if (!dom || !ops || !ops->map || !ops->unmap || (nr_usable && !usable))
		return -EINVAL;
	if (dom->type != IOVM_DOMAIN_MANAGED)
		return -EOPNOTSUPP;
	if (dom->mirror)
		return -EBUSY;
	/* The holes between the usable ranges (in order), and above the last. */
	for (unsigned i = 0; i < nr_usable && !ret; i++) {
		if (usable[i].start < at || usable[i].last < usable[i].start) {
			ret = -EINVAL;
			break;
		}
		ret = reserve_hole(dom, at, usable[i].start);
		at = usable[i].last + 1;
		if (!at)
			break; /* up to 2^64 */
	}
	if (!ret && nr_usable && at)
		ret = reserve_hole(dom, at, dom->limit);
	if (ret) {
		unreserve(dom);
		return ret == -EBUSY ? -EBUSY : ret;
	}
	dom->mirror = ops;
	dom->mirror_arg = arg;
	ret = pt_for_each(&dom->pt, replay_one, &r);
	if (ret) {
		if (r.any)
			ops->unmap(arg, r.first, r.done_end - r.first);
		dom->mirror = NULL;
		dom->mirror_arg = NULL;
		unreserve(dom);
	}
	return ret;
}

void iommu_domain_unmirror(struct iovm_domain *dom)
{
	if (!dom || !dom->mirror)
		return;
	dom->mirror = NULL;
	dom->mirror_arg = NULL;
	unreserve(dom);
}
