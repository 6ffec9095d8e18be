/* SPDX-License-Identifier: MIT */
/*
 * domain.c - IO address spaces: their attributes, creation and
 * destruction (guests' stage 2 and nested stage 1 too), and what they hold
 * (translation as a device sees it, accessed and dirty bits, statistics).
 * Mapping is map.c's, unmapping and invalidation unmap.c's.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/ctx.h"
#include "base/error.h"
#include "base/fault_inject.h"
#include "base/lock.h"
#include "iommu/iommu_internal.h"
#include "phys/phys.h"

#define DOMAIN_FLAGS (IOVM_DOMAIN_DEFERRED | IOVM_DOMAIN_FOLLOW_HEAP)
/* Linux's flush queue: 256 entries, 10 ms. */
#define DEFAULT_FLUSH_BATCH 256
#define DEFAULT_FLUSH_TIMEOUT_US 10000
#define DEFAULT_FAULT_QUEUE 256

/* The x86 MSI window: writes there are interrupts, never memory. */
static const struct iova_range msi_window = { { 0xfee00000 }, 0x100000 };

static int attr_check(const struct iovm_domain_attr *a)
{
	if (a->type > IOVM_DOMAIN_VA || (a->flags & ~DOMAIN_FLAGS))
		return err_inval("a->type > IOVM_DOMAIN_VA || (a->flags & ~DOMAIN_FLAGS)");
	if (a->dma_bits && (a->dma_bits < 32 || a->dma_bits > PT_IOVA_BITS))
		return err_inval("a->dma_bits && (a->dma_bits < 32 || a->dma_bits > PT_IOVA_BITS)");
	if (!a->reserved != !a->nr_reserved)
		return err_inval("!a->reserved != !a->nr_reserved");
	for (unsigned i = 0; i < a->nr_reserved; i++)
		if (range_bad(a->reserved[i].start.addr, a->reserved[i].len))
			return err_inval("range_bad(a->reserved[i].start.addr, a->reserved[i].len)");
	if (a->fault_queue > 65536 || a->flush_batch > 65536)
		return err_inval("a->fault_queue > 65536 || a->flush_batch > 65536");
	return 0;
}

/* A reserved range as the allocator takes it (it clips what runs past its window). */
static struct iova_range hole_of(const struct iovm_iova_range *r)
{
	return (struct iova_range){ r->start, r->len };
}

/* What a shared domain's view is made with (iommu_domain_create_shared()). */
struct shared_args {
	const struct iommu_shared_ops *ops;
	void *arg;
	const struct pt_source *src;
	struct pt_counters *cnt;
	uint64_t *root_off;
};

/*
 * A domain of @type: the public types, a guest's stage 2, or a stage 1
 * nested over @parent; a view of a shared domain with @sh. @attr is checked.
 */
static int domain_create(struct iovm_ctx *ctx, const struct iovm_domain_attr *attr, enum iovm_domain_type type,
			 struct iovm_domain *parent, const struct shared_args *sh, struct iovm_domain **out)
{
	struct iommu_space *is = ctx->iommu;
	struct iovm_domain *dom;
	struct iova_range *holes = NULL;
	unsigned nr_holes;
	int ret;

	dom = fi_aligned_alloc(CACHE_LINE_SIZE, align_up(sizeof(*dom), CACHE_LINE_SIZE));
	if (!dom)
		return -ENOMEM;
	memset(dom, 0, sizeof(*dom));
	dom->is = is;
	dom->ctx = ctx;
	dom->type = type;
	dom->flags = attr->flags;
	dom->limit = UINT64_C(1) << (attr->dma_bits ? attr->dma_bits : PT_IOVA_BITS);
	dom->flush_batch = attr->flush_batch ? attr->flush_batch : DEFAULT_FLUSH_BATCH;
	dom->flush_timeout_ns =
		(uint64_t)(attr->flush_timeout_us ? attr->flush_timeout_us : DEFAULT_FLUSH_TIMEOUT_US) * 1000;
	mutex_init(&dom->lock);
	mutex_init(&dom->fault_lock);
	mutex_init(&dom->flush_lock);
	list_init(&dom->attachments);
	list_init(&dom->children);
	list_init(&dom->fq_rings); /* empty in every domain; only deferred ones fill it */
	shadow_init(&dom->shadow);
	ret = fault_ring_init(&dom->faults, attr->fault_queue ? attr->fault_queue : DEFAULT_FAULT_QUEUE);
	if (ret)
		goto free_dom;
	if (sh) {
		dom->shared_ops = sh->ops;
		dom->shared_arg = sh->arg;
		dom->sshadow = sh->ops->shadow(sh->arg, &dom->sshadow_base, &dom->sshadow_pages,
						 &dom->sshadow_pa);
		ret = pt_init_shared(&dom->pt, sh->src, sh->cnt, sh->root_off);
		if (ret)
			goto free_faults;
		mutex_init(&dom->stats_lock);
		epoch_reader_add(is->epoch, &dom->stats_reader);
	} else if (dom->type != IOVM_DOMAIN_IDENTITY) {
		ret = pt_init(&dom->pt);
		if (ret)
			goto free_faults;
	}
	if ((dom->flags & IOVM_DOMAIN_DEFERRED) && flushq_init(dom)) {
		ret = -ENOMEM;
		goto free_pt;
	}
	if (!sh && (dom->type == IOVM_DOMAIN_MANAGED || dom->type == IOVM_DOMAIN_NESTED)) {
		nr_holes = attr->reserved ? attr->nr_reserved : 1;
		holes = fi_calloc(nr_holes, sizeof(*holes));
		ret = -ENOMEM;
		if (!holes)
			goto free_pt;
		for (unsigned i = 0; i < nr_holes; i++)
			holes[i] = attr->reserved ? hole_of(&attr->reserved[i]) : msi_window;
		ret = iova_init(&dom->iova, iova_make(MANAGED_IOVA_BASE), dom->limit - MANAGED_IOVA_BASE, holes,
				nr_holes);
		free(holes);
		if (ret)
			goto free_pt;
		dom->has_iova = true;
	}
	if (parent) {
		dom->parent = parent;
		mutex_lock(&parent->lock);
		list_add_tail(&parent->children, &dom->child_link);
		mutex_unlock(&parent->lock);
	}
	mutex_lock(&is->lock);
	list_add_tail(&is->domains, &dom->link);
	mutex_unlock(&is->lock);
	if (dom->flags & IOVM_DOMAIN_FOLLOW_HEAP) {
		ret = follow_heap(dom);
		if (ret) {
			mutex_lock(&is->lock);
			list_del(&dom->link);
			mutex_unlock(&is->lock);
			goto free_iova;
		}
	}
	if (dom->flags & IOVM_DOMAIN_DEFERRED)
		flusher_kick(is);
	*out = dom;
	return 0;

free_iova:
	if (dom->has_iova)
		iova_destroy(&dom->iova);
free_pt:
	flushq_destroy(dom);
	if (sh) {
		epoch_reader_del(is->epoch, &dom->stats_reader);
		mutex_destroy(&dom->stats_lock);
		pt_view_close(&dom->pt); /* the caller frees a root it made */
	} else if (dom->type != IOVM_DOMAIN_IDENTITY)
		pt_destroy(&dom->pt);
free_faults:
	free(dom->faults.slots);
free_dom:
	shadow_destroy(&dom->shadow);
	free(dom);
	return ret;
}

IOVM_API int iovm_domain_create(struct iovm_ctx *ctx, const struct iovm_domain_attr *attr,
				struct iovm_domain **out)
{
	static const struct iovm_domain_attr defaults = { .type = IOVM_DOMAIN_MANAGED };
	int ret;

	err_enter();
	if (!ctx || !out)
		return err_inval("!ctx || !out");
	attr = attr ? attr : &defaults;
	ret = attr_check(attr);
	if (ret)
		return ret;
	return domain_create(ctx, attr, attr->type, NULL, NULL, out);
}

int iommu_guest_domain_create(struct iovm_ctx *ctx, struct iovm_domain **out)
{
	static const struct iovm_domain_attr stage2 = { .type = IOVM_DOMAIN_GUEST };
	int ret = domain_create(ctx, &stage2, IOVM_DOMAIN_GUEST, NULL, NULL, out);

	if (!ret)
		(*out)->owned = true;
	return ret;
}

int iommu_nested_domain_create(struct iovm_domain *stage2, const struct iovm_domain_attr *attr,
			       struct iovm_domain **out)
{
	static const struct iovm_domain_attr defaults = { .type = IOVM_DOMAIN_MANAGED };
	int ret;

	attr = attr ? attr : &defaults;
	ret = attr_check(attr);
	if (ret)
		return ret;
	/*
	 * A deferred stage 1 would pin guest physical addresses, which are not
	 * frames; following the heap maps host memory, not the guest's.
	 */
	if (!stage2 || stage2->type != IOVM_DOMAIN_GUEST || attr->type != IOVM_DOMAIN_MANAGED || attr->flags)
		return err_inval("!stage2 || stage2->type != IOVM_DOMAIN_GUEST || attr->type != IOVM_DOMAIN_MANAGED || attr->flags");
	return domain_create(stage2->ctx, attr, IOVM_DOMAIN_NESTED, stage2, NULL, out);
}

int iommu_domain_create_shared(struct iovm_ctx *ctx, uint64_t limit, const struct iommu_shared_ops *ops, void *arg,
			       const struct pt_source *src, struct pt_counters *cnt, uint64_t *root_off,
			       const struct iovm_domain_attr *how, struct iovm_domain **out)
{
	const struct shared_args sh = { .ops = ops, .arg = arg, .src = src, .cnt = cnt, .root_off = root_off };
	struct iovm_domain_attr attr = { .type = IOVM_DOMAIN_MANAGED };
	int ret;

	if (!ctx || !ops || !src || !cnt || !root_off || !out || limit > (UINT64_C(1) << PT_IOVA_BITS) ||
	    limit < (UINT64_C(4) << 30) || (how && (how->flags & ~IOVM_DOMAIN_DEFERRED)))
		return err_inval("!ctx || !ops || !src || !cnt || !root_off || !out || limit > 2^48 || limit < 4 GiB || flags other than DEFERRED");
	if (how) {
		attr.flags = how->flags;
		attr.flush_batch = how->flush_batch;
		attr.flush_timeout_us = how->flush_timeout_us;
	}
	ret = domain_create(ctx, &attr, IOVM_DOMAIN_MANAGED, NULL, &sh, out);
	if (!ret)
		(*out)->limit = limit;
	return ret;
}

int domain_destroy(struct iovm_domain *dom)
{
	struct iommu_space *is = dom->is;

	mutex_lock(&dom->lock);
	if (dom->nr_attached - dom->nr_hidden || !list_empty(&dom->children) ||
	    atomic_load_explicit(&dom->reg_users, memory_order_acquire)) {
		mutex_unlock(&dom->lock);
		return -EBUSY;
	}
	mutex_unlock(&dom->lock);
	/* No device of this process walks it now: others' invalidations need no answer from here. */
	if (dom->shared_ops)
		dom->shared_ops->quiesce(dom->shared_arg);
	if (dom->parent) {
		mutex_lock(&dom->parent->lock);
		list_del(&dom->child_link);
		mutex_unlock(&dom->parent->lock);
	}
	if (dom->sub)
		unfollow_heap(dom);
	/*
	 * Off the context's list first: the flusher walks it under the space
	 * lock, and must not look at a flush queue being torn down.
	 */
	mutex_lock(&is->lock);
	list_del(&dom->link);
	mutex_unlock(&is->lock);
	/* Pending unmaps give their pins and IOVAs back. */
	flushq_destroy(dom);
	if (dom->shared_ops) {
		/* Other processes may walk on: the tables go with the last view's release, all at once. */
		epoch_reader_del(is->epoch, &dom->stats_reader);
		mutex_destroy(&dom->stats_lock);
		pt_view_close(&dom->pt);
	} else if (dom->type != IOVM_DOMAIN_IDENTITY) {
		pt_destroy(&dom->pt);
	}
	if (dom->has_iova)
		iova_destroy(&dom->iova);
	shadow_destroy(&dom->shadow);
	free(dom->mirror_reserved);
	free(dom->faults.slots);
	mutex_destroy(&dom->lock);
	mutex_destroy(&dom->fault_lock);
	mutex_destroy(&dom->flush_lock);
	if (dom->shared_ops)
		dom->shared_ops->release(dom->shared_arg);
	free(dom);
	return 0;
}

void iommu_domain_use(struct iovm_domain *dom, int delta)
{
	atomic_fetch_add_explicit(&dom->reg_users, (unsigned)delta, memory_order_acq_rel);
}

IOVM_API int iovm_domain_destroy(struct iovm_domain *dom)
{
	int ret;

	err_enter();
	if (!dom)
		return err_inval("!dom");
	if (dom->owned)
		return err_detail(-EPERM, IOVM_LOG_DEBUG, "a guest's stage 2: iovm_guest_destroy() owns it");
	/* base.h: a failed call names itself in the detail, -EBUSY too. */
	ret = domain_destroy(dom);
	if (ret == -EBUSY)
		return err_detail(-EBUSY, IOVM_LOG_DEBUG,
				  "devices attached, nested domains over it, or registrations or caches use it");
	return ret;
}

int iommu_guest_domain_destroy(struct iovm_domain *dom)
{
	return domain_destroy(dom);
}

IOVM_API int iovm_domain_translate(const struct iovm_domain *dom, iovm_iova_t iova, iovm_pa_t *pa,
				   uint32_t *perm)
{
	struct pt_walk w;

	err_enter();
	if (!dom || !pa)
		return err_inval("!dom || !pa");
	if (dom->type == IOVM_DOMAIN_IDENTITY) {
		pa_t same = pa_make(iova_val(iova)); /* IOVA == PA */

		if (iova_val(iova) >= dom->limit || !phys_page_size(dom->ctx->phys, same))
			return -ENOENT;
		*pa = same;
		if (perm)
			*perm = IOVM_MAP_READ | IOVM_MAP_WRITE;
		return 0;
	}
	if (pt_walk(&dom->pt, iova, &w))
		return -ENOENT;
	if (dom->parent) {
		struct pt_walk w2;

		if (pt_walk(&dom->parent->pt, iommu_stage2_iova(stage1_gpa(w.pa)), &w2))
			return -ENOENT;
		w.pa = w2.pa;
		w.prot &= w2.prot;
	}
	/*
	 * host_pa=on promises host PAs or a failure: a registration's window
	 * (application memory of 4 KiB pages) has PAs of iovm's own, which a
	 * device is never given; it reaches that memory by IOVA.
	 */
	if (dom->ctx->host_pa_only && phys_pa_is_host(dom->ctx->phys, w.pa) != 1)
		return err_detail(-EOPNOTSUPP, IOVM_LOG_DEBUG,
				  "host_pa=on: IOVA %#llx maps memory without a host PA (a registration's): reach it by IOVA",
				  (unsigned long long)iova_val(iova));
	*pa = w.pa;
	if (perm)
		*perm = (w.prot & PT_PROT_READ ? IOVM_MAP_READ : 0) | (w.prot & PT_PROT_WRITE ? IOVM_MAP_WRITE : 0);
	return 0;
}

IOVM_API int iovm_domain_read_dirty(struct iovm_domain *dom, iovm_iova_t iova, size_t len, bool clear,
				    bool *accessed, bool *dirty)
{
	err_enter();
	if (!dom || !accessed || !dirty || range_bad(iova.addr, len))
		return err_inval("!dom || !accessed || !dirty || range_bad(iova.addr, len)");
	if (dom->type == IOVM_DOMAIN_IDENTITY)
		return -EOPNOTSUPP;
	pt_read_ad(&dom->pt, iova, len, clear, accessed, dirty);
	/*
	 * Bits cleared: devices drop what they cached of the range and leave
	 * the accesses under way, so that every access after the return walks
	 * again and sets them again (an IOTLB entry remembers that it set
	 * them; a migration that clears and reads in rounds would miss the
	 * writes of every round but the first). iommufd's GET_DIRTY_BITMAP
	 * flushes the IOTLB the same way.
	 */
	if (clear && (*accessed || *dirty)) {
		iommu_domain_invalidate(dom, iova_make(iova.addr), len);
		if (dom->shared_ops)
			dom->shared_ops->invalidate(dom->shared_arg, iova_make(iova.addr), len);
	}
	return 0;
}

/* Walks of a shared domain's table that iovm_domain_stats() tries before it walks inside a section. */
#define CENSUS_RACY_TRIES 4

IOVM_API int iovm_domain_stats(struct iovm_domain *dom, struct iovm_domain_stats *st)
{
	err_enter();
	if (!dom || !st)
		return err_inval("!dom || !st");
	memset(st, 0, sizeof(*st));
	st->type = dom->type;
	st->flags = dom->flags;
	if (dom->shared_ops) {
		uint64_t allocated, free_pages, largest;

		dom->shared_ops->iova_stats(dom->shared_arg, &allocated, &free_pages, &largest);
		st->iova_allocated = allocated << 12;
		st->iova_free = free_pages << 12;
		st->iova_largest_gap = largest << 12;
		st->iova_fragmentation = free_pages ? (unsigned)(1000 - largest * 1000 / free_pages) : 0;
	} else if (dom->has_iova) {
		struct iova_stats is;

		iova_stats(&dom->iova, &is);
		st->iova_allocated = is.allocated << 12;
		st->iova_free = is.free << 12;
		st->iova_cached = is.cached << 12;
		st->iova_largest_gap = is.largest << 12;
		st->iova_fragmentation = is.free ? (unsigned)(1000 - is.largest * 1000 / is.free) : 0;
	}
	if (dom->shared_ops) {
		struct pt_census c;

		/*
		 * Leaves counted from the entries (pt_census()): the counters
		 * of a table that other processes change may be off by one a
		 * killed process left. A section of the epoch keeps tables from going
		 * under the walk: another process frees one only after this
		 * one's agent waited for the sections (domain.c of mp).
		 */
		unsigned tries = 0;

		/*
		 * First without the section: a section makes every other
		 * process's strict unmap wait for the walk, and a caller polling
		 * back to back starved them. A walk a free raced with is not
		 * believed (pt_census_racy()); after a few, the section.
		 */
		while (tries < CENSUS_RACY_TRIES && !pt_census_racy(&dom->pt, &c))
			tries++;
		if (tries == CENSUS_RACY_TRIES) {
			mutex_lock(&dom->stats_lock);
			epoch_enter(dom->is->epoch, &dom->stats_reader);
			pt_census(&dom->pt, &c);
			epoch_exit(&dom->stats_reader);
			mutex_unlock(&dom->stats_lock);
		}
		st->leaves_4k = c.leaves[0];
		st->leaves_2m = c.leaves[1];
		st->leaves_1g = c.leaves[2];
		/* Tables detached and not yet freed count too: the pages the source has out. */
		st->tables = dom->shared_ops->tables_used(dom->shared_arg);
		st->splits = atomic_load(&dom->pt.cnt->splits);
	} else if (dom->type != IOVM_DOMAIN_IDENTITY) {
		st->leaves_4k = atomic_load(&dom->pt.cnt->leaves[0]);
		st->leaves_2m = atomic_load(&dom->pt.cnt->leaves[1]);
		st->leaves_1g = atomic_load(&dom->pt.cnt->leaves[2]);
		st->tables = atomic_load(&dom->pt.cnt->nr_tables);
		st->splits = atomic_load(&dom->pt.cnt->splits);
	}
	st->strict_invalidations = atomic_load(&dom->strict_invalidations);
	flushq_stats(dom, st);
	mutex_lock(&dom->fault_lock);
	st->faults = dom->faults_seen;
	st->faults_dropped = dom->faults_dropped;
	mutex_unlock(&dom->fault_lock);
	st->oracle_checks = atomic_load(&dom->oracle_checks);
	st->oracle_stale = atomic_load(&dom->oracle_stale);
	st->oracle_violations = atomic_load(&dom->oracle_violations);
	return 0;
}
