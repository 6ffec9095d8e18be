/* SPDX-License-Identifier: MIT */
/*
 * domain.c - IO address spaces: creation, mapping and unmapping, strict
 * invalidation, and what devices see through them.
 *
 * A strict unmap clears the PTEs, invalidates the IOTLBs of every device
 * attached, then waits for a grace period: when it returns, no device access
 * uses the old translation, and the tables it detached can be freed. A
 * deferred unmap clears the PTEs, pins the pages and quarantines the IOVAs,
 * and leaves the rest to the flush queue (flushq.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <iovm/dev.h>
#include <iovm/mem.h>

#include "base/ctx.h"
#include "base/error.h"
#include "base/fault_inject.h"
#include "base/lock.h"
#include "base/log.h"
#include "iommu/iommu_internal.h"
#include "phys/phys.h"

#define DOMAIN_FLAGS (IOVM_DOMAIN_DEFERRED | IOVM_DOMAIN_FOLLOW_HEAP)
/* Linux's flush queue: 256 entries, 10 ms. */
#define DEFAULT_FLUSH_BATCH 256
#define DEFAULT_FLUSH_TIMEOUT_US 10000
#define DEFAULT_FAULT_QUEUE 256
/* IOVA 0 stays unmapped in managed domains, so that a NULL device address faults. */
#define MANAGED_IOVA_BASE SZ_4K

/* The x86 MSI window: writes there are interrupts, never memory. */
static const struct iova_range msi_window = { 0xfee00000, 0xfef00000 };

static int attr_check(const struct iovm_domain_attr *a)
{
	if (a->type > IOVM_DOMAIN_VA || (a->flags & ~DOMAIN_FLAGS))
		return -EINVAL;
	if (a->dma_bits && (a->dma_bits < 32 || a->dma_bits > PT_IOVA_BITS))
		return -EINVAL;
	if (!a->reserved != !a->nr_reserved)
		return -EINVAL;
	if (a->fault_queue > 65536 || a->flush_batch > 65536)
		return -EINVAL;
	return 0;
}

/*
 * A domain of @type: the public types, a guest's stage 2, or a stage 1
 * nested over @parent. @attr is checked.
 */
static int domain_create(struct iovm_ctx *ctx, const struct iovm_domain_attr *attr, enum iovm_domain_type type,
			 struct iovm_domain *parent, struct iovm_domain **out)
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
	shadow_init(&dom->shadow);
	ret = fault_ring_init(&dom->faults, attr->fault_queue ? attr->fault_queue : DEFAULT_FAULT_QUEUE);
	if (ret)
		goto free_dom;
	if (dom->type != IOVM_DOMAIN_IDENTITY) {
		ret = pt_init(&dom->pt);
		if (ret)
			goto free_faults;
	}
	if ((dom->flags & IOVM_DOMAIN_DEFERRED) && flushq_init(dom)) {
		ret = -ENOMEM;
		goto free_pt;
	}
	if (dom->type == IOVM_DOMAIN_MANAGED || dom->type == IOVM_DOMAIN_NESTED) {
		nr_holes = attr->reserved ? attr->nr_reserved : 1;
		holes = fi_calloc(nr_holes, sizeof(*holes));
		ret = -ENOMEM;
		if (!holes)
			goto free_pt;
		for (unsigned i = 0; i < nr_holes; i++)
			holes[i] = attr->reserved
					   ? (struct iova_range){ attr->reserved[i].start.addr,
								  attr->reserved[i].start.addr + attr->reserved[i].len }
					   : msi_window;
		ret = iova_init(&dom->iova, MANAGED_IOVA_BASE, dom->limit, holes, nr_holes);
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
	if (dom->type != IOVM_DOMAIN_IDENTITY)
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

	err_clear();
	if (!ctx || !out)
		return -EINVAL;
	attr = attr ? attr : &defaults;
	ret = attr_check(attr);
	if (ret)
		return ret;
	return domain_create(ctx, attr, attr->type, NULL, out);
}

int iommu_guest_domain_create(struct iovm_ctx *ctx, struct iovm_domain **out)
{
	static const struct iovm_domain_attr stage2 = { .type = IOVM_DOMAIN_GUEST };
	int ret = domain_create(ctx, &stage2, IOVM_DOMAIN_GUEST, NULL, out);

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
		return -EINVAL;
	return domain_create(stage2->ctx, attr, IOVM_DOMAIN_NESTED, stage2, out);
}

int domain_destroy(struct iovm_domain *dom)
{
	struct iommu_space *is = dom->is;

	mutex_lock(&dom->lock);
	if (dom->nr_attached || !list_empty(&dom->children) ||
	    atomic_load_explicit(&dom->reg_users, memory_order_acquire)) {
		mutex_unlock(&dom->lock);
		return -EBUSY;
	}
	mutex_unlock(&dom->lock);
	if (dom->parent) {
		mutex_lock(&dom->parent->lock);
		list_del(&dom->child_link);
		mutex_unlock(&dom->parent->lock);
	}
	if (dom->sub)
		unfollow_heap(dom);
	/* Pending unmaps give their pins and IOVAs back. */
	flushq_destroy(dom);
	mutex_lock(&is->lock);
	list_del(&dom->link);
	mutex_unlock(&is->lock);
	if (dom->type != IOVM_DOMAIN_IDENTITY)
		pt_destroy(&dom->pt);
	if (dom->has_iova)
		iova_destroy(&dom->iova);
	shadow_destroy(&dom->shadow);
	free(dom->mirror_reserved);
	free(dom->faults.slots);
	mutex_destroy(&dom->lock);
	mutex_destroy(&dom->fault_lock);
	mutex_destroy(&dom->flush_lock);
	free(dom);
	return 0;
}

void iommu_domain_use(struct iovm_domain *dom, int delta)
{
	atomic_fetch_add_explicit(&dom->reg_users, (unsigned)delta, memory_order_acq_rel);
}

IOVM_API int iovm_domain_destroy(struct iovm_domain *dom)
{
	err_clear();
	if (!dom)
		return -EINVAL;
	if (dom->owned)
		return -EPERM;
	return domain_destroy(dom);
}

int iommu_guest_domain_destroy(struct iovm_domain *dom)
{
	return domain_destroy(dom);
}

static unsigned prot_of(uint32_t perm)
{
	return (perm & IOVM_MAP_READ ? PT_PROT_READ : 0) | (perm & IOVM_MAP_WRITE ? PT_PROT_WRITE : 0);
}

static bool perm_ok(uint32_t perm)
{
	return perm && !(perm & ~(IOVM_MAP_READ | IOVM_MAP_WRITE));
}

/* The alignment to give an IOVA for [pa, pa+len): as the PA allows, up to 1 GiB, for huge leaves. */
static uint64_t iova_align_pages(uint64_t pa, uint64_t len)
{
	uint64_t a = SZ_4K;

	while (a < SZ_1G && is_aligned(pa, a * 2) && len >= a * 2)
		a *= 2;
	return a >> 12;
}

/* Where a mapping of @len bytes goes: chosen (ANY) or reserved. */
static int iova_take(struct iovm_domain *dom, uint64_t *iova, uint64_t len, uint64_t align_pages)
{
	uint64_t pfn;
	int ret;

	if (!dom->has_iova)
		return *iova == IOVM_ADDR_INVALID ? -EINVAL : 0;
	if (*iova == IOVM_ADDR_INVALID) {
		ret = iova_alloc(&dom->iova, len >> 12, align_pages, &pfn);
		if (ret)
			return ret;
		*iova = pfn << 12;
		return 0;
	}
	ret = iova_reserve(&dom->iova, *iova >> 12, len >> 12);
	return ret == -EBUSY ? -EEXIST : ret;
}

static void iova_give(struct iovm_domain *dom, uint64_t iova, uint64_t len)
{
	if (dom->has_iova)
		iova_free(&dom->iova, iova >> 12, len >> 12);
}

int domain_map_pa(struct iovm_domain *dom, uint64_t *iova, uint64_t pa, const void *where, uint64_t len,
		  unsigned prot)
{
	int ret = iova_take(dom, iova, len, iova_align_pages(pa, len));
	bool begun;

	if (ret)
		return ret;
	if (*iova + len > dom->limit || *iova + len < *iova) {
		ret = -EINVAL;
		goto give;
	}
	begun = shadow_map_begin(dom, *iova, len, pa, prot);
	ret = domain_pt_map(dom, *iova, pa, where, len, prot);
	shadow_map_end(dom, *iova, len, pa, prot, begun, !ret);
	if (ret)
		goto give;
	return 0;
give:
	iova_give(dom, *iova, len);
	return ret;
}

/* Whether every page of [pa, pa+len) is memory iovm owns. */
static bool on_bus(struct iovm_domain *dom, uint64_t pa, uint64_t len)
{
	for (uint64_t off = 0; off < len; off += SZ_2M - ((pa + off) & (SZ_2M - 1)))
		if (!phys_page_size(dom->ctx->phys, pa_make(pa + off)))
			return false;
	return true;
}

static int map_args_check(struct iovm_domain *dom, const iovm_iova_t *iova, uint64_t len, uint32_t perm)
{
	if (!dom || !iova || !len || !is_aligned(len, SZ_4K) || !perm_ok(perm))
		return -EINVAL;
	if (iova->addr != IOVM_ADDR_INVALID && !is_aligned(iova->addr, SZ_4K))
		return -EINVAL;
	if (dom->type == IOVM_DOMAIN_IDENTITY || dom->type == IOVM_DOMAIN_NESTED)
		return -EOPNOTSUPP;
	return 0;
}

IOVM_API int iovm_domain_map(struct iovm_domain *dom, iovm_iova_t *iova, iovm_pa_t pa, size_t len,
			     uint32_t perm)
{
	uint64_t where;
	int ret;

	err_clear();
	ret = map_args_check(dom, iova, len, perm);
	if (ret)
		return ret;
	if (!is_aligned(pa.addr, SZ_4K) || pa.addr + len < pa.addr || !on_bus(dom, pa.addr, len))
		return -EINVAL;
	where = iova->addr;
	ret = domain_map_pa(dom, &where, pa.addr, NULL, len, prot_of(perm));
	if (!ret)
		iova->addr = where;
	return ret;
}

IOVM_API int iovm_domain_map_gpa(struct iovm_domain *dom, iovm_iova_t *iova, iovm_gpa_t gpa, size_t len,
				 uint32_t perm)
{
	uint64_t where;
	int ret;

	err_clear();
	if (!dom || !iova || !len || !is_aligned(len | gpa.addr, SZ_4K) || !perm_ok(perm) ||
	    gpa.addr + len < gpa.addr || gpa.addr + len > (UINT64_C(1) << PT_IOVA_BITS))
		return -EINVAL;
	if (iova->addr != IOVM_ADDR_INVALID && !is_aligned(iova->addr, SZ_4K))
		return -EINVAL;
	if (dom->type != IOVM_DOMAIN_NESTED)
		return -EOPNOTSUPP;
	where = iova->addr;
	ret = domain_map_pa(dom, &where, gpa.addr, NULL, len, prot_of(perm));
	if (!ret)
		iova->addr = where;
	return ret;
}

int iommu_stage2_map(struct iovm_domain *dom, uint64_t gpa, uint64_t pa, const void *where, uint64_t len,
		     uint32_t perm)
{
	if (!dom || dom->type != IOVM_DOMAIN_GUEST || !len || !is_aligned(gpa | pa | len, SZ_4K) || !perm_ok(perm))
		return -EINVAL;
	return domain_map_pa(dom, &gpa, pa, where, len, prot_of(perm));
}

IOVM_API int iovm_domain_map_pages(struct iovm_domain *dom, iovm_iova_t *iova, const iovm_pa_t *pages,
				   unsigned n, uint32_t perm)
{
	uint64_t where, len = (uint64_t)n << 12;
	bool begun;
	int ret;

	err_clear();
	if (!pages || !n)
		return -EINVAL;
	ret = map_args_check(dom, iova, len, perm);
	if (ret)
		return ret;
	for (unsigned i = 0; i < n; i++)
		if (!is_aligned(pages[i].addr, SZ_4K) || !phys_page_size(dom->ctx->phys, pages[i]))
			return -EINVAL;
	where = iova->addr;
	ret = iova_take(dom, &where, len, 1);
	if (ret)
		return ret;
	if (where + len > dom->limit || where + len < where) {
		iova_give(dom, where, len);
		return -EINVAL;
	}
	static_assert(sizeof(iovm_pa_t) == sizeof(uint64_t), "pages are read as plain PAs");
	begun = shadow_map_pages_begin(dom, where, (const uint64_t *)pages, n, prot_of(perm));
	ret = pt_map_pages(&dom->pt, where, (const uint64_t *)pages, n, prot_of(perm));
	if (ret) {
		shadow_map_pages_end(dom, where, (const uint64_t *)pages, n, prot_of(perm), begun, false);
		iova_give(dom, where, len);
		return ret;
	}
	/* The mirror gets runs contiguous in the process's address space. */
	if (dom->mirror) {
		struct mirror_batch b = { 0 };

		for (unsigned i = 0; i < n && !ret; i++)
			ret = mirror_batch_add(dom, &b, where + ((uint64_t)i << 12), pages[i].addr, NULL, SZ_4K,
					       perm & IOVM_MAP_WRITE);
		if (!ret)
			ret = mirror_batch_end(dom, &b);
		if (ret) {
			mirror_batch_undo(dom, &b);
			pt_unmap(&dom->pt, where, len, NULL, NULL);
			pt_reclaim(&dom->pt);
			shadow_map_pages_end(dom, where, (const uint64_t *)pages, n, prot_of(perm), begun, false);
			iova_give(dom, where, len);
			return ret;
		}
	}
	shadow_map_pages_end(dom, where, (const uint64_t *)pages, n, prot_of(perm), begun, true);
	iova->addr = where;
	return 0;
}

IOVM_API int iovm_domain_map_ptr(struct iovm_domain *dom, const void *ptr, size_t len, uint32_t perm,
				 iovm_iova_t *iova)
{
	struct iovm_dma_xlate x;
	uint64_t where;
	int ret;

	err_clear();
	if (!dom || !ptr || !iova || !len || !is_aligned((uintptr_t)ptr | len, SZ_4K) || !perm_ok(perm))
		return -EINVAL;
	if (dom->type == IOVM_DOMAIN_NESTED)
		return -EOPNOTSUPP;
	ret = iovm_dma_xlate(dom->ctx, ptr, &x);
	if (ret)
		return ret;
	if (dom->type == IOVM_DOMAIN_IDENTITY) {
		/* Nothing to map: the device address is the PA, if it is one range. */
		if (x.contig < len)
			return -EINVAL;
		*iova = IOVM_IOVA(x.pa.addr);
		return 0;
	}
	where = dom->type == IOVM_DOMAIN_VA ? (uintptr_t)ptr : IOVM_ADDR_INVALID;
	if (x.contig >= len) {
		ret = domain_map_pa(dom, &where, x.pa.addr, ptr, len, prot_of(perm));
		if (!ret)
			*iova = IOVM_IOVA(where);
		return ret;
	}
	/* Scattered in physical memory: run by run, at consecutive IOVAs. */
	ret = iova_take(dom, &where, len, iova_align_pages(x.pa.addr, x.contig));
	if (ret)
		return ret;
	if (where + len > dom->limit || where + len < where) {
		iova_give(dom, where, len);
		return -EINVAL;
	}
	ret = domain_map_va(dom, where, ptr, len, prot_of(perm));
	if (ret) {
		iova_give(dom, where, len);
		return ret;
	}
	*iova = IOVM_IOVA(where);
	return 0;
}

int domain_map_va(struct iovm_domain *dom, uint64_t iova, const void *va, uint64_t len, unsigned prot)
{
	struct mirror_batch batch = { 0 };
	uint64_t done, run;
	bool begun;
	int ret = 0;

	for (done = 0; done < len; done += run) {
		struct iovm_dma_xlate x;

		ret = iovm_dma_xlate(dom->ctx, (const uint8_t *)va + done, &x);
		if (ret)
			goto unwind;
		run = MIN(x.contig, len - done);
		begun = shadow_map_begin(dom, iova + done, run, x.pa.addr, prot);
		ret = pt_map(&dom->pt, iova + done, x.pa.addr, run, prot, true);
		shadow_map_end(dom, iova + done, run, x.pa.addr, prot, begun, !ret);
		if (ret)
			goto unwind;
		ret = mirror_batch_add(dom, &batch, iova + done, x.pa.addr, (const uint8_t *)va + done, run,
				       prot & PT_PROT_WRITE);
		if (ret) {
			done += run;
			goto unwind;
		}
	}
	ret = mirror_batch_end(dom, &batch);
	if (!ret)
		return 0;

unwind:
	mirror_batch_undo(dom, &batch);
	if (done) {
		bool any;

		domain_unmap_how(dom, iova, done, UNMAP_STRICT | UNMAP_KEEP_IOVA, &any);
	}
	return ret;
}

/* The pieces an unmap takes away: most unmaps take one, and need no allocation. */
#define COLLECT_INLINE 8

struct collect {
	struct unmapped *p;
	unsigned n, cap;
	bool oom;
	struct unmapped inline_p[COLLECT_INLINE];
};

static void collect_piece(void *arg, uint64_t iova, uint64_t pa, uint64_t len, iopte_t pte)
{
	struct collect *c = arg;

	(void)pte;
	if (c->n && c->p[c->n - 1].iova + c->p[c->n - 1].len == iova &&
	    c->p[c->n - 1].pa + c->p[c->n - 1].len == pa) {
		c->p[c->n - 1].len += len;
		return;
	}
	if (c->n == c->cap) {
		unsigned cap = c->cap * 2;
		struct unmapped *p = c->p == c->inline_p ? fi_malloc(cap * sizeof(*p))
							 : fi_realloc(c->p, cap * sizeof(*p));

		if (!p) {
			/* Unmapped all the same; what cannot be recorded is not pinned or freed. */
			c->oom = true;
			return;
		}
		if (c->p == c->inline_p)
			memcpy(p, c->inline_p, sizeof(c->inline_p));
		c->p = p;
		c->cap = cap;
	}
	c->p[c->n++] = (struct unmapped){ .iova = iova, .pa = pa, .len = len };
}

static void collect_done(struct collect *c)
{
	if (c->p != c->inline_p)
		free(c->p);
}

int domain_unmap(struct iovm_domain *dom, uint64_t iova, uint64_t len, bool *any)
{
	return domain_unmap_how(dom, iova, len, 0, any);
}

int domain_unmap_how(struct iovm_domain *dom, uint64_t iova, uint64_t len, unsigned how, bool *any)
{
	struct collect c;
	int ret = 0;

	c.p = c.inline_p;
	c.n = 0;
	c.cap = COLLECT_INLINE;
	c.oom = false;
	pt_unmap(&dom->pt, iova, len, collect_piece, &c);
	*any = c.n > 0;
	/* A deferred unmap leaves the mirror's mapping to the flush, as the IOTLB's. */
	if (c.n && !((dom->flags & IOVM_DOMAIN_DEFERRED) && !(how & UNMAP_STRICT)))
		domain_mirror_unmap(dom, iova, len);
	if (c.oom)
		log_warn("unmap: out of memory recording pieces: some IOVAs leak");
	if (!c.n)
		return 0;
	if ((dom->flags & IOVM_DOMAIN_DEFERRED) && !(how & UNMAP_STRICT)) {
		for (unsigned i = 0; i < c.n; i++) {
			/* What a device may still reach stays allocated until the flush. */
			if (phys_pin(dom->ctx->phys, pa_make(c.p[i].pa), c.p[i].len))
				c.p[i].pa = IOVM_ADDR_INVALID; /* not iovm's memory, or freed already */
			shadow_unmap(dom, &c.p[i], true);
		}
		ret = flushq_add(dom, c.p, c.n);
		collect_done(&c);
		return ret;
	}
	domain_invalidate(dom, iova, len, false);
	epoch_synchronize(dom->is->epoch);
	pt_reclaim(&dom->pt);
	for (unsigned i = 0; i < c.n; i++) {
		shadow_unmap(dom, &c.p[i], false);
		if (!(how & UNMAP_KEEP_IOVA))
			iova_give(dom, c.p[i].iova, c.p[i].len);
	}
	atomic_fetch_add_explicit(&dom->strict_invalidations, 1, memory_order_relaxed);
	collect_done(&c);
	return 0;
}

IOVM_API int iovm_domain_unmap(struct iovm_domain *dom, iovm_iova_t iova, size_t len)
{
	bool any;
	int ret;

	err_clear();
	if (!dom || !len || !is_aligned(iova.addr | len, SZ_4K) || iova.addr + len < iova.addr)
		return -EINVAL;
	if (dom->type == IOVM_DOMAIN_IDENTITY)
		return -EOPNOTSUPP;
	ret = domain_unmap(dom, iova.addr, len, &any);
	if (ret)
		return ret;
	return any ? 0 : -ENOENT;
}

IOVM_API int iovm_domain_flush(struct iovm_domain *dom)
{
	err_clear();
	if (!dom)
		return -EINVAL;
	if (dom->flags & IOVM_DOMAIN_DEFERRED)
		flushq_flush(dom);
	return 0;
}

IOVM_API int iovm_domain_translate(const struct iovm_domain *dom, iovm_iova_t iova, iovm_pa_t *pa,
				   uint32_t *perm)
{
	struct pt_walk w;

	if (!dom || !pa)
		return -EINVAL;
	if (dom->type == IOVM_DOMAIN_IDENTITY) {
		if (iova.addr >= dom->limit || !phys_page_size(dom->ctx->phys, pa_make(iova.addr)))
			return -ENOENT;
		*pa = IOVM_PA(iova.addr);
		if (perm)
			*perm = IOVM_MAP_READ | IOVM_MAP_WRITE;
		return 0;
	}
	if (pt_walk(&dom->pt, iova.addr, &w))
		return -ENOENT;
	if (dom->parent) {
		struct pt_walk w2;

		if (pt_walk(&dom->parent->pt, w.pa, &w2))
			return -ENOENT;
		w.pa = w2.pa;
		w.prot &= w2.prot;
	}
	*pa = IOVM_PA(w.pa);
	if (perm)
		*perm = (w.prot & PT_PROT_READ ? IOVM_MAP_READ : 0) | (w.prot & PT_PROT_WRITE ? IOVM_MAP_WRITE : 0);
	return 0;
}

IOVM_API int iovm_domain_read_dirty(struct iovm_domain *dom, iovm_iova_t iova, size_t len, bool clear,
				    bool *accessed, bool *dirty)
{
	err_clear();
	if (!dom || !accessed || !dirty || !len || iova.addr + len < iova.addr)
		return -EINVAL;
	if (dom->type == IOVM_DOMAIN_IDENTITY)
		return -EOPNOTSUPP;
	pt_read_ad(&dom->pt, iova.addr, len, clear, accessed, dirty);
	return 0;
}

IOVM_API int iovm_domain_stats(struct iovm_domain *dom, struct iovm_domain_stats *st)
{
	err_clear();
	if (!dom || !st)
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	st->type = dom->type;
	st->flags = dom->flags;
	if (dom->has_iova) {
		struct iova_stats is;

		iova_stats(&dom->iova, &is);
		st->iova_allocated = is.allocated << 12;
		st->iova_free = is.free << 12;
		st->iova_cached = is.cached << 12;
		st->iova_largest_gap = is.largest << 12;
		st->iova_fragmentation = is.free ? (unsigned)(1000 - is.largest * 1000 / is.free) : 0;
	}
	if (dom->type != IOVM_DOMAIN_IDENTITY) {
		st->leaves_4k = atomic_load(&dom->pt.leaves[0]);
		st->leaves_2m = atomic_load(&dom->pt.leaves[1]);
		st->leaves_1g = atomic_load(&dom->pt.leaves[2]);
		st->tables = atomic_load(&dom->pt.nr_tables);
		st->splits = atomic_load(&dom->pt.splits);
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
