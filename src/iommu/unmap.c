/* SPDX-License-Identifier: MIT */
/*
 * unmap.c - unmapping and invalidation.
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

#include "base/ctx.h"
#include "base/error.h"
#include "base/fault_inject.h"
#include "base/log.h"
#include "iommu/iommu_internal.h"
#include "phys/phys.h"

/* The pieces an unmap takes away: most unmaps take one, and need no allocation. */
#define COLLECT_INLINE 8

struct collect {
	struct unmapped *p;
	unsigned n, cap;
	bool oom;
	unsigned tables; /* a shared domain's preview: the tables it found */
	uint64_t skipped; /* ... and the bytes of pieces another process releases */
	struct unmapped inline_p[COLLECT_INLINE];
};

static void collect_piece(void *arg, iova_t iova, pa_t pa, uint64_t len, iopte_t pte)
{
	struct collect *c = arg;

	(void)pte;
	if (c->n && iova_eq(iova_add(c->p[c->n - 1].iova, c->p[c->n - 1].len), iova) &&
	    pa_eq(pa_add(c->p[c->n - 1].pa, c->p[c->n - 1].len), pa)) {
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

static void count_table(void *arg, void *table, iova_t base, int level)
{
	struct collect *c = arg;

	(void)table, (void)base, (void)level;
	c->tables++;
}

/* A table a shared domain's unmap is about to detach, in its journal first (pgrecord.c). */
static void record_table(void *arg, void *table, iova_t base, int level)
{
	struct iovm_domain *dom = arg;

	dom->shared_ops->table_pending(dom->shared_arg, table, base, level);
}

/* A table a shared domain's unmap detached without a preview: recorded after, as it was found. */
static void record_detached(void *arg, void *table)
{
	struct iovm_domain *dom = arg;

	dom->shared_ops->table_pending(dom->shared_arg, table, iova_make(0), -1);
}

static uint64_t collected_bytes(const struct collect *c)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < c->n; i++)
		n += c->p[i].len;
	return n;
}

static void collect_done(struct collect *c)
{
	if (c->p != c->inline_p)
		free(c->p);
}

void domain_retired_free(struct iovm_domain *dom, struct pt_retired *r)
{
	if (!r->head)
		return;
	epoch_synchronize(dom->is->epoch);
	/* Other processes walk a shared domain's tables too. */
	if (dom->shared_ops)
		dom->shared_ops->invalidate(dom->shared_arg, iova_make(0), 0);
	pt_retired_free(&dom->pt, r);
}

void iommu_domain_clear_recorded(struct iovm_domain *dom, iova_t iova, pa_t pa, uint64_t len)
{
	pt_clear_recorded(&dom->pt, iova, pa, len);
}

void iommu_domain_detach_recorded(struct iovm_domain *dom, void *table, iova_t base, int level)
{
	pt_detach_recorded(&dom->pt, table, base, level);
}

bool iommu_domain_table_hangs(struct iovm_domain *dom, const void *table, iova_t base, int level)
{
	return pt_hangs(&dom->pt, table, base, level);
}

bool iommu_domain_maps(struct iovm_domain *dom, iova_t iova)
{
	struct pt_walk w;

	return pt_walk(&dom->pt, iova, &w) == 0;
}

void iommu_domain_invalidate(struct iovm_domain *dom, iova_t iova, uint64_t len)
{
	if (len == UINT64_MAX)
		domain_invalidate(dom, iova_make(0), 0, true);
	else if (len)
		domain_invalidate(dom, iova, len, false);
	epoch_synchronize(dom->is->epoch);
}

void domain_undo_map(struct iovm_domain *dom, iova_t iova, uint64_t len)
{
	bool any;

	domain_unmap_how(dom, iova, len, UNMAP_STRICT | UNMAP_KEEP_IOVA | UNMAP_NO_MIRROR, &any);
}

int domain_unmap(struct iovm_domain *dom, iova_t iova, uint64_t len, bool *any)
{
	return domain_unmap_how(dom, iova, len, 0, any);
}

/* A shared domain's journal entry for a piece of an unmap made @how. */
static unsigned pending_how(unsigned how, bool deferred)
{
	return (deferred ? IOMMU_PENDING_DEFERRED : 0) | (how & UNMAP_KEEP_IOVA ? IOMMU_PENDING_KEEP_IOVA : 0);
}

/*
 * A shared domain's unmap records each piece in the domain's journal before
 * the invalidation that lets it go, and a journal has room for about a
 * thousand: an unmap of more leaves than this goes in parts, each cleared,
 * recorded and invalidated before the next, so that no piece of it is ever
 * in flight unrecorded (a process killed meanwhile leaves the survivors
 * everything it had cleared).
 */
#define SHARED_UNMAP_LEAVES 256

static int unmap_in_parts(struct iovm_domain *dom, iova_t iova, uint64_t len, unsigned how, bool *any)
{
	uint64_t mid = align_down(iova_val(iova) + len / 2, SZ_2M);
	bool any_lo = false, any_hi = false;
	int ret;

	/* At a 2 MiB boundary where the range has one: a huge leaf is not split for the cut. */
	if (mid <= iova_val(iova) || mid >= iova_val(iova) + len)
		mid = iova_val(iova) + align_down(len / 2, SZ_4K);
	ret = domain_unmap_how(dom, iova, mid - iova_val(iova), how, &any_lo);
	if (!ret)
		ret = domain_unmap_how(dom, iova_make(mid), iova_val(iova) + len - mid, how, &any_hi);
	*any = any_lo || any_hi;
	return ret;
}

/*
 * A shared domain's pieces and tables, recorded before their entries are
 * cleared (pgrecord.c): a process killed anywhere in the unmap leaves each
 * of them either still mapped or recorded, and the survivor that claims
 * the record takes it out of reach, invalidates and releases it. The
 * pieces before the tables: a survivor that detaches a recorded table
 * takes its leaves out of reach with it, and they must be recorded by
 * then. Whether a piece found no room in the journal (nothing is recorded
 * where the preview could not tell; pt_unmap_prepare() leaves it nothing
 * it cannot).
 */
static bool record_first(struct iovm_domain *dom, iova_t iova, uint64_t len, unsigned how, bool deferred,
			 struct collect *c, bool *recorded)
{
	bool unrecorded = false;

	c->tables = 0;
	c->skipped = 0;
	*recorded = pt_unmap_preview(&dom->pt, iova, len, collect_piece, count_table, c);
	if (IOVM_WARN_ON(!*recorded)) {
		c->n = 0; /* collected again by the unmap, and recorded after it */
		return false;
	}
	for (unsigned i = 0; i < c->n;) {
		int ret = dom->shared_ops->pa_pending(dom->shared_arg, c->p[i].iova, c->p[i].pa, c->p[i].len,
						      pending_how(how, deferred));

		/* Another's in flight (iommu.h): cleared here all the same, released by them; not this unmap's. */
		if (ret == -EALREADY) {
			c->skipped += c->p[i].len;
			c->p[i] = c->p[--c->n];
			continue;
		}
		unrecorded |= ret != 0;
		i++;
	}
	if (c->tables)
		(void)pt_unmap_preview(&dom->pt, iova, len, NULL, record_table, dom);
	return unrecorded;
}

int domain_unmap_how(struct iovm_domain *dom, iova_t iova, uint64_t len, unsigned how, bool *any)
{
	bool deferred = (dom->flags & IOVM_DOMAIN_DEFERRED) && !(how & UNMAP_STRICT);
	struct pt_retired retired = { NULL };
	bool recorded = false, unrecorded = false;
	struct collect c;
	uint64_t gone;
	int ret = 0;

	if (dom->shared_ops && len > SZ_4K &&
	    pt_count_leaves(&dom->pt, iova, len, SHARED_UNMAP_LEAVES + 1) > SHARED_UNMAP_LEAVES)
		return unmap_in_parts(dom, iova, len, how, any);
	c.p = c.inline_p;
	c.n = 0;
	c.cap = COLLECT_INLINE;
	c.oom = false;
	c.skipped = 0;
	/* A huge leaf the range cuts is split first: one that cannot be fails the unmap whole. */
	ret = pt_unmap_prepare(&dom->pt, iova, len);
	if (ret)
		return ret;
	atomic_fetch_add_explicit(&dom->unmaps_begun, 1, memory_order_seq_cst);
	if (dom->shared_ops)
		unrecorded = record_first(dom, iova, len, how, deferred, &c, &recorded);
	gone = pt_unmap(&dom->pt, iova, len, recorded ? NULL : collect_piece, &c, &retired);
	/* More than the preview told: another process mapped into the range meanwhile, a misuse (mp.h). */
	if (recorded && !c.oom && gone != collected_bytes(&c) + c.skipped)
		log_warn("unmap of [%#llx, +%#llx): %#llx bytes unmapped, %#llx previewed: a map raced with it",
			 (unsigned long long)iova_val(iova), (unsigned long long)len, (unsigned long long)gone,
			 (unsigned long long)(collected_bytes(&c) + c.skipped));
	*any = c.n > 0 || c.skipped;
	/* Without a preview, recorded now: a death before they are freed leaves them to a survivor. */
	if (dom->shared_ops && !recorded) {
		pt_retired_each(&retired, record_detached, dom);
		for (unsigned i = 0; i < c.n; i++)
			unrecorded |= dom->shared_ops->pa_pending(dom->shared_arg, c.p[i].iova, c.p[i].pa,
								   c.p[i].len, pending_how(how, deferred)) != 0;
	}
	/* A deferred unmap leaves the mirror's mapping to the flush, as the IOTLB's. */
	if (c.n && !deferred && !(how & UNMAP_NO_MIRROR))
		domain_mirror_unmap(dom, iova, len);
	if (c.oom)
		log_warn("unmap: out of memory recording pieces: some IOVAs leak");
	if (deferred) {
		/*
		 * Devices may still cache leaves of the tables it detached, until
		 * the flush: the flush that invalidates everything frees them.
		 */
		pt_retired_give(&dom->pt, &retired);
	} else if (!c.n) {
		domain_retired_free(dom, &retired); /* empty tables: walkers only */
	}
	if (!c.n)
		return 0;
	if (deferred) {
		for (unsigned i = 0; i < c.n; i++) {
			/*
			 * What a device may still reach stays allocated until the
			 * flush: pinned, or, in a shared domain, still counted by
			 * the hold its map took (domain_unmapped_release() at the flush).
			 */
			if (!dom->shared_ops && phys_pin(dom->ctx->phys, c.p[i].pa, c.p[i].len))
				c.p[i].pa = PA_INVALID; /* not iovm's memory, or freed already */
			c.p[i].keep_iova = how & UNMAP_KEEP_IOVA;
			shadow_unmap(dom, &c.p[i], true);
		}
		ret = flushq_add(dom, c.p, c.n);
		/* No room in the journal: not left in flight unrecorded any longer than a strict unmap. */
		if (!ret && unrecorded)
			flushq_flush(dom);
		collect_done(&c);
		return ret;
	}
	domain_invalidate(dom, iova, len, false);
	epoch_synchronize(dom->is->epoch);
	/* A shared domain's: every other process's devices too, before anything is freed or reused. */
	if (dom->shared_ops)
		dom->shared_ops->invalidate(dom->shared_arg, iova, len);
	/* Its own tables only: another writer's may still be cached by a device. */
	pt_retired_free(&dom->pt, &retired);
	for (unsigned i = 0; i < c.n; i++) {
		shadow_unmap(dom, &c.p[i], false);
		/* No device of any process reaches it now: memory freed while mapped may go. */
		domain_unmapped_release(dom, c.p[i].iova, c.p[i].pa, c.p[i].len, how & UNMAP_KEEP_IOVA);
	}
	atomic_fetch_add_explicit(&dom->strict_invalidations, 1, memory_order_relaxed);
	collect_done(&c);
	return 0;
}

IOVM_API int iovm_domain_unmap(struct iovm_domain *dom, iovm_iova_t iova, size_t len)
{
	bool any;
	int ret;

	err_enter();
	if (!dom || !len || !is_aligned(iova.addr | len, SZ_4K) || range_bad(iova.addr, len))
		return err_inval("!dom || !len || !is_aligned(iova.addr | len, SZ_4K) || range_bad(iova.addr, len)");
	if (dom->type == IOVM_DOMAIN_IDENTITY)
		return -EOPNOTSUPP;
	/* Nothing is ever mapped at or above 2^48: the page table ends there. */
	len = MIN(len, (UINT64_C(1) << PT_IOVA_BITS) - MIN(iova.addr, UINT64_C(1) << PT_IOVA_BITS));
	if (!len)
		return -ENOENT;
	ret = domain_unmap(dom, iova, len, &any);
	if (ret)
		return ret;
	return any ? 0 : -ENOENT;
}

IOVM_API int iovm_domain_flush(struct iovm_domain *dom)
{
	err_enter();
	if (!dom)
		return err_inval("!dom");
	/* A shared domain's, strict too: what a dead process left in flight waits for an invalidation of everything. */
	if ((dom->flags & IOVM_DOMAIN_DEFERRED) || dom->shared_ops)
		flushq_flush(dom);
	return 0;
}

