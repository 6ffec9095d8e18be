/* SPDX-License-Identifier: MIT */
/*
 * assign.c - devices given to a guest, and the stage-1 domains the guest
 * manages over its stage 2.
 *
 * A device assigned to a guest uses guest physical addresses. Through the
 * guest's stage 2, it reaches the guest's memory and nothing else. Without
 * translation (identity), its addresses go to the bus as they are: right
 * for a direct-mapped guest, whose guest physical addresses are physical,
 * and safe only when the guest is trusted, since nothing then stops the
 * device from reaching all of memory. That is the choice the Xen 1:1
 * discussion leaves to the administrator; here it is a flag the guest is
 * created with.
 */
#include <errno.h>
#include <stdlib.h>

#include <iovm/dev.h>
#include <iovm/guest.h>

#include "base/error.h"
#include "base/fault_inject.h"
#include "base/lock.h"
#include "guest/guest_internal.h"
#include "iommu/iommu.h"

#define ASSIGN_FLAGS IOVM_ASSIGN_IDENTITY

/* The guest's identity domain, made on first use. Needs the guest's lock. */
static int identity_domain(struct iovm_guest *g, struct iovm_domain **out)
{
	static const struct iovm_domain_attr identity = { .type = IOVM_DOMAIN_IDENTITY };
	int ret = 0;

	lock_assert_held(&g->lock);
	if (!g->identity)
		ret = iovm_domain_create(g->ctx, &identity, &g->identity);
	*out = g->identity;
	return ret;
}

IOVM_API int iovm_guest_assign(struct iovm_guest *g, struct iovm_device *dev, uint32_t pasid, uint32_t flags)
{
	struct guest_assignment *as;
	struct iovm_domain *dom;
	int ret;

	err_enter();
	if (!g || !dev || pasid > IOVM_PASID_MAX || (flags & ~ASSIGN_FLAGS))
		return err_inval("!g || !dev || pasid > IOVM_PASID_MAX || (flags & ~ASSIGN_FLAGS)");
	if ((flags & IOVM_ASSIGN_IDENTITY) &&
	    (g->flags & (IOVM_GUEST_DIRECT_MAP | IOVM_GUEST_TRUSTED)) != (IOVM_GUEST_DIRECT_MAP | IOVM_GUEST_TRUSTED))
		return err_detail(-EPERM, IOVM_LOG_DEBUG,
				  "guest: identity assignment needs a direct-mapped, trusted guest: "
				  "the device would reach all of memory");
	as = fi_calloc(1, sizeof(*as));
	if (!as)
		return -ENOMEM;
	as->dev = dev;
	as->pasid = pasid;
	mutex_lock(&g->lock);
	dom = g->stage2;
	ret = flags & IOVM_ASSIGN_IDENTITY ? identity_domain(g, &dom) : 0;
	if (!ret)
		ret = iovm_device_attach(dev, dom, pasid);
	if (!ret)
		list_add_tail(&g->assigned, &as->link);
	mutex_unlock(&g->lock);
	if (ret)
		free(as);
	return ret;
}

/* The assignment of @dev at @pasid, or NULL. Needs the guest's lock. */
static struct guest_assignment *assignment_find(struct iovm_guest *g, struct iovm_device *dev, uint32_t pasid)
{
	struct list_node *n;

	lock_assert_held(&g->lock);
	list_for_each(n, &g->assigned) {
		struct guest_assignment *as = list_entry(n, struct guest_assignment, link);

		if (as->dev == dev && as->pasid == pasid)
			return as;
	}
	return NULL;
}

IOVM_API int iovm_guest_unassign(struct iovm_guest *g, struct iovm_device *dev, uint32_t pasid)
{
	struct guest_assignment *as;

	err_enter();
	if (!g || !dev || pasid > IOVM_PASID_MAX)
		return err_inval("!g || !dev || pasid > IOVM_PASID_MAX");
	mutex_lock(&g->lock);
	as = assignment_find(g, dev, pasid);
	if (as) {
		list_del(&as->link);
		iovm_device_detach(dev, pasid);
	}
	mutex_unlock(&g->lock);
	if (!as)
		return -ENOENT;
	free(as);
	return 0;
}

void guest_unassign_all(struct iovm_guest *g)
{
	mutex_lock(&g->lock);
	while (!list_empty(&g->assigned)) {
		struct guest_assignment *as = list_first(&g->assigned, struct guest_assignment, link);

		list_del(&as->link);
		iovm_device_detach(as->dev, as->pasid);
		free(as);
	}
	mutex_unlock(&g->lock);
}

IOVM_API int iovm_guest_domain_create(struct iovm_guest *g, const struct iovm_domain_attr *attr,
				      struct iovm_domain **dom)
{
	err_enter();
	if (!g || !dom)
		return err_inval("!g || !dom");
	return iommu_nested_domain_create(g->stage2, attr, dom);
}
