/* SPDX-License-Identifier: MIT */
/*
 * fault.c - a domain's fault queue (bounded: the rest is counted as dropped)
 * and its fault handler.
 */
#include <errno.h>
#include <stdlib.h>

#include "base/error.h"
#include "base/fault_inject.h"
#include "base/lock.h"
#include "iommu/iommu_internal.h"

IOVM_API const char *iovm_fault_reason_name(int reason)
{
	static const char *const names[] = {
		[IOVM_FAULT_NOT_PRESENT] = "not present",
		[IOVM_FAULT_PERMISSION] = "permission",
		[IOVM_FAULT_NO_DOMAIN] = "no domain for the PASID",
		[IOVM_FAULT_BUS] = "no memory at the physical address",
	};

	err_enter();
	return reason > 0 && (unsigned)reason < ARRAY_SIZE(names) && names[reason] ? names[reason]
										      : "unknown fault reason";
}

int fault_ring_init(struct fault_ring *r, unsigned depth)
{
	r->slots = fi_calloc(depth, sizeof(*r->slots));
	if (!r->slots)
		return -ENOMEM;
	r->depth = depth;
	r->head = r->count = 0;
	return 0;
}

void fault_record(struct iovm_domain *dom, struct iovm_fault *f)
{
	struct fault_ring *r = &dom->faults;

	mutex_lock(&dom->fault_lock);
	f->seq = ++dom->faults_seen;
	if (r->count < r->depth)
		r->slots[(r->head + r->count++) % r->depth] = *f;
	else
		dom->faults_dropped++;
	mutex_unlock(&dom->fault_lock);
}

IOVM_API int iovm_domain_fault_pop(struct iovm_domain *dom, struct iovm_fault *f)
{
	struct fault_ring *r;
	int ret = 0;

	err_enter();
	if (!dom || !f)
		return err_inval("!dom || !f");
	r = &dom->faults;
	mutex_lock(&dom->fault_lock);
	if (!r->count) {
		ret = -EAGAIN;
	} else {
		*f = r->slots[r->head];
		r->head = (r->head + 1) % r->depth;
		r->count--;
	}
	mutex_unlock(&dom->fault_lock);
	return ret;
}

IOVM_API int iovm_domain_set_fault_handler(struct iovm_domain *dom, iovm_fault_fn fn, void *arg)
{
	err_enter();
	if (!dom)
		return err_inval("!dom");
	mutex_lock(&dom->lock);
	dom->fault_fn = fn;
	dom->fault_arg = fn ? arg : NULL;
	mutex_unlock(&dom->lock);
	return 0;
}
