/* SPDX-License-Identifier: MIT */
/*
 * mirror.c - a managed domain mirrored into an IOMMU outside iovm: every
 * mapping iovm's page table gets, the mirror gets too (a real device
 * attached through VFIO translates with the kernel's IOMMU, not iovm's
 * table); every range unmapped, the mirror unmaps.
 *
 * The mirror is told process addresses, as VFIO maps them, not bus
 * addresses: what is contiguous in IOVA and in the process's address space
 * goes over as one range, however scattered its pages are physically. A
 * kernel that keeps one entry per range (type1: 65535 of them) then holds
 * a gigabyte of 2 MiB pages mapped at once as one entry, not 512. The
 * address is the caller's where it has one (the heap's pointer, which is
 * contiguous where the memory is), else the bus's own mapping of the PA
 * (contiguous only as far as the PAs are).
 *
 * iovm's table stays the reference: IOVAs come from iovm's allocator,
 * inside the ranges the other IOMMU can map (the rest is reserved while the
 * mirror is set), and the oracle, statistics and translations read iovm's
 * table as for any domain.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <iovm/mem.h>

#include "base/compiler.h"
#include "base/ctx.h"
#include "base/error.h"
#include "base/fault_inject.h"
#include "base/lock.h"
#include "base/log.h"
#include "iommu/iommu_internal.h"
#include "phys/phys.h"

/*
 * Hand the gathered run to the mirror. Callers add in increasing IOVA
 * order, so what the mirror holds from this batch is [first, +given).
 */
static int batch_flush(struct iovm_domain *dom, struct mirror_batch *b)
{
	int ret;

	if (!b->len)
		return 0;
	ret = dom->mirror->map(dom->mirror_arg, b->iova, b->va, b->len, b->write);
	if (ret)
		return ret;
	if (!b->given)
		b->first = b->iova;
	b->given = iova_diff(b->iova, b->first) + b->len;
	b->len = 0;
	return 0;
}

/* Extend the run with [iova, +len) at @va, or hand the run over and start another. */
static int batch_extend(struct iovm_domain *dom, struct mirror_batch *b, iova_t iova, uint8_t *va, uint64_t len,
			bool write)
{
	int ret;

	if (b->len && iova_eq(iova_add(b->iova, b->len), iova) && b->va + b->len == va && b->write == write) {
		b->len += len;
		return 0;
	}
	ret = batch_flush(dom, b);
	if (ret)
		return ret;
	*b = (struct mirror_batch){ .iova = iova, .va = va, .len = len, .write = write, .first = b->first,
				    .given = b->given };
	return 0;
}

int mirror_batch_add(struct iovm_domain *dom, struct mirror_batch *b, iova_t iova, pa_t pa, const void *where,
		     uint64_t len, bool write)
{
	struct phys_space *ps = dom->ctx->phys;

	if (!dom->mirror)
		return 0;
	if (where) {
		/* The caller's own address for the memory: one step. */
		return batch_extend(dom, b, iova, (uint8_t *)where, len, write);
	}
	while (len) {
		struct iovm_dma_xlate x;
		uint64_t step;
		uint8_t *va = iovm_dma_ptr(dom->ctx, pa);
		int ret;

		if (va && !iovm_dma_xlate(dom->ctx, va, &x) && pa_eq(x.pa, pa) && x.contig >= SZ_4K) {
			/* Heap memory: at the heap's address, as far as it maps these PAs in order. */
			step = MIN(x.contig, len);
		} else {
			/*
			 * Other memory (registered, a zone's pool): the bus's own
			 * mapping of it, contiguous within a granule, not across.
			 * Outside the devices' epoch, and the PA is not always
			 * held: the public map calls name any PA (a share's, a
			 * memory registration's), and a replay reads PAs off the
			 * table while their windows may be going. phys_bus_ptr()
			 * reads the window against its seq: a removal meanwhile,
			 * its struct reused, gives the VA as it was or NULL
			 * (-EFAULT), never another window's memory for the
			 * mirror to map.
			 */
			step = MIN(PHYS_BUS_GRANULE - (pa_val(pa) & (PHYS_BUS_GRANULE - 1)), len);
			va = phys_bus_ptr(ps, pa);
		}
		if (!va)
			return err_detail(-EFAULT, IOVM_LOG_DEBUG, "mirror: PA %#lx is not memory of this process",
					  (unsigned long)pa_val(pa));
		ret = batch_extend(dom, b, iova, va, step, write);
		if (ret)
			return ret;
		iova = iova_add(iova, step);
		pa = pa_add(pa, step);
		len -= step;
	}
	return 0;
}

int mirror_batch_end(struct iovm_domain *dom, struct mirror_batch *b)
{
	return dom->mirror ? batch_flush(dom, b) : 0;
}

void mirror_batch_undo(struct iovm_domain *dom, struct mirror_batch *b)
{
	if (dom->mirror && b->given)
		dom->mirror->unmap(dom->mirror_arg, b->first, b->given);
	*b = (struct mirror_batch){ 0 };
}

int domain_pt_map(struct iovm_domain *dom, iova_t iova, pa_t pa, const void *where, uint64_t len, unsigned prot)
{
	struct pt_retired retired = { NULL };
	struct mirror_batch b = { 0 };
	int ret = domain_pa_hold(dom, iova, pa, len);

	if (ret)
		return ret;
	ret = pt_map(&dom->pt, iova, pa, len, prot, true, &retired);
	if (ret) {
		domain_pa_put(dom, iova, pa, len); /* mapped nothing */
	} else if (dom->mirror) {
		ret = mirror_batch_add(dom, &b, iova, pa, where, len, prot & PT_PROT_WRITE);
		if (!ret)
			ret = mirror_batch_end(dom, &b);
		if (ret) {
			/* Not mapped for the device: not mapped at all. */
			mirror_batch_undo(dom, &b);
			domain_undo_map(dom, iova, len);
		}
	}
	domain_retired_free(dom, &retired);
	return ret;
}

void domain_mirror_unmap(struct iovm_domain *dom, iova_t iova, uint64_t len)
{
	if (dom->mirror)
		dom->mirror->unmap(dom->mirror_arg, iova, len);
}

static int by_iova(const void *a, const void *b)
{
	uint64_t x = iova_val(((const struct unmapped *)a)->iova), y = iova_val(((const struct unmapped *)b)->iova);

	return x < y ? -1 : x > y;
}

void mirror_unmap_pieces(struct iovm_domain *dom, const struct unmapped *p, unsigned n)
{
	struct unmapped *s;

	lock_assert_held(&dom->flush_lock);
	if (!dom->mirror || !n)
		return;
	s = fi_malloc(n * sizeof(*s));
	if (!s) {
		/* Unmapped all the same, a call each. */
		for (unsigned i = 0; i < n; i++)
			dom->mirror->unmap(dom->mirror_arg, p[i].iova, p[i].len);
		return;
	}
	memcpy(s, p, n * sizeof(*s));
	qsort(s, n, sizeof(*s), by_iova);
	for (unsigned i = 0, j; i < n; i = j) {
		uint64_t len = s[i].len;

		for (j = i + 1; j < n && iova_eq(s[j].iova, iova_add(s[i].iova, len)); j++)
			len += s[j].len;
		dom->mirror->unmap(dom->mirror_arg, s[i].iova, len);
	}
	free(s);
}

struct replay {
	struct iovm_domain *dom;
	struct mirror_batch batch;
};

static int replay_one(void *arg, iova_t iova, pa_t pa, uint64_t len, unsigned prot)
{
	struct replay *r = arg;

	return mirror_batch_add(r->dom, &r->batch, iova, pa, NULL, len, prot & PT_PROT_WRITE);
}

static void unreserve(struct iovm_domain *dom)
{
	for (unsigned i = 0; i < dom->nr_mirror_reserved; i++)
		iova_free(&dom->iova, dom->mirror_reserved[i].start, dom->mirror_reserved[i].len);
	free(dom->mirror_reserved);
	dom->mirror_reserved = NULL;
	dom->nr_mirror_reserved = dom->cap_mirror_reserved = 0;
}

static int note_reserved(struct iovm_domain *dom, iova_t start, uint64_t len)
{
	if (dom->nr_mirror_reserved == dom->cap_mirror_reserved) {
		unsigned cap = dom->cap_mirror_reserved ? 2 * dom->cap_mirror_reserved : 8;
		struct iova_range *r = fi_realloc(dom->mirror_reserved, cap * sizeof(*r));

		if (!r)
			return -ENOMEM;
		dom->mirror_reserved = r;
		dom->cap_mirror_reserved = cap;
	}
	dom->mirror_reserved[dom->nr_mirror_reserved++] = (struct iova_range){ .start = start, .len = len };
	return 0;
}

/*
 * Reserve what is free of [start, +len) (page aligned). Parts taken already
 * are holes of the domain's own (the MSI window, which the kernel leaves
 * out too) or IOVAs in quarantine or a magazine, and stay as they are; a
 * part that is mapped is an error: the mirror could not map it.
 */
static int reserve_free(struct iovm_domain *dom, iova_t start, uint64_t len)
{
	struct pt_walk w;
	uint64_t half;
	int ret;

	if (!len)
		return 0;
	ret = iova_reserve(&dom->iova, start, len);
	if (ret != -EBUSY)
		return ret ? ret : note_reserved(dom, start, len);
	if (len == SZ_4K)
		return pt_walk(&dom->pt, start, &w) ? 0 : -EBUSY;
	half = align_down(len / 2, SZ_4K);
	ret = reserve_free(dom, start, half);
	return ret ? ret : reserve_free(dom, iova_add(start, half), len - half);
}

/*
 * Reserve the IOVAs from @start up to @end (exclusive) of the domain's
 * space, clipped to the window its allocator gives: the gap between two
 * usable ranges, as bounds (a gap's length is a difference of them).
 */
static int reserve_hole(struct iovm_domain *dom, uint64_t start, uint64_t end)
{
	uint64_t win = iova_val(iova_window_start(&dom->iova)), win_end = win + iova_window_len(&dom->iova);

	start = MAX(align_up(start, SZ_4K), win);
	end = MIN(align_down(end, SZ_4K), win_end);
	return start < end ? reserve_free(dom, iova_make(start), end - start) : 0;
}

int iommu_domain_mirror(struct iovm_domain *dom, const struct iommu_mirror_ops *ops, void *arg,
			const struct iommu_iova_range *usable, unsigned nr_usable)
{
	struct replay r = { .dom = dom };
	uint64_t at = 0; /* where the next hole starts; 0 past the first range: 2^64, nothing left */
	int ret = 0;

	if (!dom || !ops || !ops->map || !ops->unmap || (nr_usable && !usable))
		return err_inval("!dom || !ops || !ops->map || !ops->unmap || (nr_usable && !usable)");
	if (dom->type != IOVM_DOMAIN_MANAGED || dom->shared_ops)
		return -EOPNOTSUPP;
	if (dom->mirror)
		return -EBUSY;
	/* The holes between the usable ranges (in order), and above the last. */
	for (unsigned i = 0; i < nr_usable && !ret; i++) {
		uint64_t start = iova_val(usable[i].start), len = usable[i].len;

		if (start < at || range_bad(start, len)) {
			ret = err_inval("usable ranges in order, none empty or overlapping");
			break;
		}
		ret = reserve_hole(dom, at, start);
		at = start + len;
		if (!at)
			break; /* up to 2^64 */
	}
	if (!ret && nr_usable && at)
		ret = reserve_hole(dom, at, dom->limit);
	if (ret) {
		unreserve(dom);
		return ret;
	}
	/* Ranges queued for a deferred flush before now were never the mirror's. */
	flushq_flush(dom);
	mutex_lock(&dom->flush_lock);
	dom->mirror = ops;
	dom->mirror_arg = arg;
	mutex_unlock(&dom->flush_lock);
	ret = pt_for_each(&dom->pt, replay_one, &r);
	if (!ret)
		ret = mirror_batch_end(dom, &r.batch);
	if (ret) {
		mirror_batch_undo(dom, &r.batch);
		mutex_lock(&dom->flush_lock);
		dom->mirror = NULL;
		dom->mirror_arg = NULL;
		mutex_unlock(&dom->flush_lock);
		unreserve(dom);
	}
	return ret;
}

void iommu_domain_unmirror(struct iovm_domain *dom)
{
	if (!dom || !dom->mirror)
		return;
	/* What a deferred unmap left to the flush goes from the mirror first; the flusher may be at it. */
	flushq_flush(dom);
	mutex_lock(&dom->flush_lock);
	dom->mirror = NULL;
	dom->mirror_arg = NULL;
	mutex_unlock(&dom->flush_lock);
	unreserve(dom);
}
