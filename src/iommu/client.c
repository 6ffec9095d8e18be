/* SPDX-License-Identifier: MIT */
/*
 * client.c - a device as the IOMMU sees it: its domains by PASID
 * (attach, detach), the invalidation of its IOTLBs when a domain it is
 * attached to unmaps, and its faults (reported, resolved, handled). The
 * IOTLBs themselves are iotlb.c's, the translation access.c's.
 */
#include <errno.h>
#include <stdlib.h>

#include "base/error.h"
#include "base/fault_inject.h"
#include "base/lock.h"
#include "iommu/iommu_internal.h"

#define PASID_BITS 20

int iommu_client_create(struct iommu_space *is, struct iommu_client **out)
{
	struct iommu_client *c = fi_calloc(1, sizeof(*c));
	int ret;

	if (!c)
		return -ENOMEM;
	ret = radix_init(&c->pasids, PASID_BITS, 10, sizeof(void *));
	if (ret) {
		free(c);
		return ret;
	}
	c->is = is;
	c->id = atomic_fetch_add(&is->next_client_id, 1) + 1;
	mutex_init(&c->lock);
	list_init(&c->iotlbs);
	*out = c;
	return 0;
}

void iommu_client_hide(struct iommu_client *c)
{
	c->hidden = true;
}

uint32_t iommu_client_id(const struct iommu_client *c)
{
	return c->id;
}

struct iovm_domain *client_domain(const struct iommu_client *c, uint32_t pasid)
{
	_Atomic(struct iovm_domain *) *slot = radix_lookup(&c->pasids, pasid);

	return slot ? atomic_load_explicit(slot, memory_order_acquire) : NULL;
}

struct iovm_domain *iommu_client_domain(const struct iommu_client *c, uint32_t pasid)
{
	return client_domain(c, pasid);
}

/* Invalidate @dom's entries in the IOTLBs of the devices attached to it. Needs @dom's lock. */
static void invalidate_attached(struct iovm_domain *dom, iova_t iova, uint64_t len, bool all)
{
	struct list_node *n, *m;

	lock_assert_held(&dom->lock);
	list_for_each(n, &dom->attachments) {
		struct attachment *at = list_entry(n, struct attachment, link);

		mutex_lock(&at->client->lock);
		list_for_each(m, &at->client->iotlbs)
			iotlb_invalidate(list_entry(m, struct iommu_iotlb, link), at->pasid, iova, len, all);
		mutex_unlock(&at->client->lock);
	}
}

void domain_invalidate(struct iovm_domain *dom, iova_t iova, uint64_t len, bool all)
{
	struct list_node *n;

	mutex_lock(&dom->lock);
	invalidate_attached(dom, iova, len, all);
	/*
	 * Nested entries are tagged by the stage-1 IOVA and hold the combined
	 * translation: which of them went through [iova, iova+len) of stage 2
	 * is not known without walking stage 1 backwards, so all go, as an
	 * IOMMU's stage-2 invalidation by IPA drops combined entries.
	 */
	list_for_each(n, &dom->children) {
		struct iovm_domain *child = list_entry(n, struct iovm_domain, child_link);

		mutex_lock(&child->lock);
		invalidate_attached(child, iova_make(0), 0, true);
		mutex_unlock(&child->lock);
	}
	mutex_unlock(&dom->lock);
}

int iommu_attach(struct iommu_client *c, struct iovm_domain *dom, uint32_t pasid)
{
	_Atomic(struct iovm_domain *) *slot;
	struct attachment *at;
	int ret = 0;

	if (pasid > IOVM_PASID_MAX || dom->is != c->is)
		return err_inval("pasid > IOVM_PASID_MAX || dom->is != c->is");
	at = fi_calloc(1, sizeof(*at));
	if (!at)
		return -ENOMEM;
	at->client = c;
	at->pasid = pasid;
	mutex_lock(&dom->lock);
	mutex_lock(&c->lock);
	slot = radix_lookup_alloc(&c->pasids, pasid);
	if (!slot)
		ret = -ENOMEM;
	else if (atomic_load_explicit(slot, memory_order_relaxed))
		ret = -EBUSY;
	if (!ret) {
		list_add_tail(&dom->attachments, &at->link);
		dom->nr_attached++;
		dom->nr_hidden += c->hidden;
		atomic_store_explicit(slot, dom, memory_order_release);
	}
	mutex_unlock(&c->lock);
	mutex_unlock(&dom->lock);
	if (ret)
		free(at);
	return ret;
}

int iommu_detach(struct iommu_client *c, uint32_t pasid)
{
	_Atomic(struct iovm_domain *) *slot;
	struct iovm_domain *dom;
	struct attachment *gone = NULL;
	struct list_node *n, *m;

	if (pasid > IOVM_PASID_MAX)
		return err_inval("pasid > IOVM_PASID_MAX");
	dom = client_domain(c, pasid);
	if (!dom)
		return -ENOENT;
	/* Domain lock first, as everywhere. */
	mutex_lock(&dom->lock);
	mutex_lock(&c->lock);
	slot = radix_lookup(&c->pasids, pasid);
	if (slot && atomic_load_explicit(slot, memory_order_relaxed) == dom) {
		atomic_store_explicit(slot, NULL, memory_order_release);
		list_for_each(n, &dom->attachments) {
			struct attachment *at = list_entry(n, struct attachment, link);

			if (at->client == c && at->pasid == pasid) {
				gone = at;
				list_del(n);
				dom->nr_attached--;
				dom->nr_hidden -= c->hidden;
				break;
			}
		}
		list_for_each(m, &c->iotlbs)
			iotlb_invalidate(list_entry(m, struct iommu_iotlb, link), pasid, iova_make(0), 0, true);
	}
	mutex_unlock(&c->lock);
	mutex_unlock(&dom->lock);
	if (!gone)
		return -ENOENT;
	free(gone);
	/* Requests in flight finish on the old attachment before this returns. */
	epoch_synchronize(c->is->epoch);
	return 0;
}

void iommu_client_destroy(struct iommu_client *c)
{
	if (!c)
		return;
	for (uint32_t pasid = 0;; ) {
		/* Attachments are few: find them through the domains' lists. */
		struct list_node *n;
		bool found = false;

		mutex_lock(&c->is->lock);
		list_for_each(n, &c->is->domains) {
			struct iovm_domain *dom = list_entry(n, struct iovm_domain, link);
			struct list_node *a;

			mutex_lock(&dom->lock);
			list_for_each(a, &dom->attachments) {
				struct attachment *at = list_entry(a, struct attachment, link);

				if (at->client == c) {
					pasid = at->pasid;
					found = true;
					break;
				}
			}
			mutex_unlock(&dom->lock);
			if (found)
				break;
		}
		mutex_unlock(&c->is->lock);
		if (!found)
			break;
		iommu_detach(c, pasid);
	}
	radix_destroy(&c->pasids);
	mutex_destroy(&c->lock);
	free(c);
}

/* The domain a fault belongs to: stage 2's when that stage of a nested translation faulted. */
static struct iovm_domain *fault_domain(struct iommu_client *c, const struct iovm_fault *f)
{
	struct iovm_domain *dom = client_domain(c, f->pasid);

	if (dom && dom->parent && f->stage == IOVM_STAGE_2)
		return dom->parent;
	return dom;
}

void iommu_fault_report(struct iommu_client *c, struct iovm_fault *f)
{
	struct iovm_domain *dom = fault_domain(c, f);

	if (dom)
		fault_record(dom, f);
}

void iommu_set_resolver(struct iommu_space *is, iommu_resolver_fn fn, void *arg)
{
	is->resolver_arg = arg;
	atomic_store_explicit(&is->resolver, fn, memory_order_release);
}

void iommu_domain_set_resolver(struct iovm_domain *dom, iommu_resolver_fn fn, void *arg)
{
	mutex_lock(&dom->lock);
	dom->resolver = fn;
	dom->resolver_arg = arg;
	mutex_unlock(&dom->lock);
}

int iommu_resolve(struct iommu_client *c, const struct iovm_fault *f)
{
	iommu_resolver_fn fn = atomic_load_explicit(&c->is->resolver, memory_order_acquire);
	struct iovm_domain *dom = client_domain(c, f->pasid);
	void *arg;
	int ret;

	/* On-demand registrations live in single-stage domains. */
	if (!dom || f->reason != IOVM_FAULT_NOT_PRESENT || f->stage != IOVM_STAGE_ONLY)
		return -ENOENT;
	ret = fn ? fn(c->is->resolver_arg, dom, f->iova, f->access) : -ENOENT;
	if (ret != -ENOENT)
		return ret;
	/* Not a registration of this process's: the domain's own resolver, if it has one. */
	mutex_lock(&dom->lock);
	fn = dom->resolver;
	arg = dom->resolver_arg;
	mutex_unlock(&dom->lock);
	return fn ? fn(arg, dom, f->iova, f->access) : -ENOENT;
}

int iommu_delegate(struct iommu_client *c, uint32_t pasid, iova_t iova, void *buf, uint64_t len, unsigned op,
		   uint64_t *done, unsigned *reason)
{
	struct iovm_domain *dom = client_domain(c, pasid);

	*done = 0;
	*reason = IOVM_FAULT_BUS;
	if (!dom || !dom->shared_ops || !dom->shared_ops->delegate)
		return -EFAULT;
	return dom->shared_ops->delegate(dom->shared_arg, iova, buf, len, op, done, reason);
}

uint64_t iommu_unmaps_begun(struct iommu_client *c, uint32_t pasid)
{
	struct iovm_domain *dom = client_domain(c, pasid);

	return dom ? atomic_load_explicit(&dom->unmaps_begun, memory_order_seq_cst) : 0;
}

int iommu_fault_handle(struct iommu_client *c, const struct iovm_fault *f)
{
	struct iovm_domain *dom = fault_domain(c, f);
	iovm_fault_fn fn;
	void *arg;

	if (!dom)
		return -ENOENT;
	mutex_lock(&dom->lock);
	fn = dom->fault_fn;
	arg = dom->fault_arg;
	mutex_unlock(&dom->lock);
	return fn ? fn(arg, dom, f) : -ENOENT;
}
