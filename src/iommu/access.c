/* SPDX-License-Identifier: MIT */
/*
 * access.c - the translation every device access goes through
 * (iommu_access()): the IOTLB first, then a walk of the domain's page
 * table (both stages of a nested domain), the permission check, the
 * accessed and dirty bits, a fill; or a fault, described for the caller to
 * report. With the oracle on, each access is checked against the shadow.
 * iommu_access_run(): the same, leaf after leaf, for a page-contiguous run.
 * iommu_access_aside(): the same, leaving the IOTLB's last hits alone.
 */
#include <errno.h>

#include "base/lock.h"
#include "base/counter.h"
#include "iommu/iommu_internal.h"
#include "iommu/access_hot.h"
#include "phys/phys.h"

static int fault(struct iovm_domain *dom, struct iommu_iotlb *t, uint32_t pasid, iova_t iova, unsigned access,
		 enum iovm_fault_reason reason, struct iovm_fault *f)
{
	*f = (struct iovm_fault){
		.iova = iova,
		.pasid = pasid,
		.access = access,
		.reason = reason,
		.device = t->client->id,
		.gpa = IOVM_GPA(IOVM_ADDR_INVALID),
	};
	/* A device assigned to a guest through its stage 2 faults there: its IOVAs are guest physical. */
	if (dom && dom->type == IOVM_DOMAIN_GUEST) {
		f->stage = IOVM_STAGE_2;
		f->gpa = iommu_stage2_gpa(iova);
	} else if (dom && dom->type == IOVM_DOMAIN_NESTED) {
		f->stage = IOVM_STAGE_1;
	}
	return -EFAULT;
}

/* A fault in stage 2 of a nested translation, at guest physical @gpa. */
static int fault_stage2(struct iovm_domain *dom, struct iommu_iotlb *t, uint32_t pasid, iova_t iova, gpa_t gpa,
			unsigned access, enum iovm_fault_reason reason, struct iovm_fault *f)
{
	fault(dom, t, pasid, iova, access, reason, f);
	f->stage = IOVM_STAGE_2;
	f->gpa = gpa;
	return -EFAULT;
}

/* What an access reaches, from the page it falls in: at most to the end of the bus granule. */
static void span_set(struct iommu_span *s, uint8_t *page_ptr, uint8_t reach, pa_t page_pa, uint64_t off,
		     unsigned shift)
{
	pa_t pa = pa_add(page_pa, off);

	s->ptr = page_ptr + off;
	s->pa = pa;
	s->reach = reach;
	/* Within a 2 MiB granule the bus maps one bank, contiguously. */
	s->len = MIN((UINT64_C(1) << shift) - off, SZ_2M - (pa_val(pa) & (SZ_2M - 1)));
}

/*
 * The IOTLB-hit path: a tag compare, the bus generation, the permission; no
 * page-table walk, no domain or bus lookup. Anything unusual goes the slow
 * way. Returns 0, or -EAGAIN for the slow way.
 */
static inline int access_cached(struct iommu_iotlb *t, uint32_t pasid, iova_t iova, unsigned access,
				struct iommu_span *s)
{
	struct iotlb_entry *e;
	unsigned shift;

	/* Beyond the page table's reach: no tag can name it, and the walk faults. */
	if (unlikely(iova_val(iova) >> PT_IOVA_BITS))
		return -EAGAIN;
	e = iotlb_lookup_last(t, iova, pasid, access);
	if (!e || e->bus_gen != atomic_load_explicit(t->bus_gen, memory_order_acquire) ||
	    (access & e->prot) != access)
		return -EAGAIN;
	shift = e >= t->huge ? IOTLB_HUGE_SHIFT : 12;
	if ((access & IOVM_MAP_WRITE) && !e->dirty) {
		pt_mark(e->ptep, e->pte & ~PTE_DIRTY, true);
		e->dirty = 1;
	}
	counter_add(&t->hits, 1);
	span_set(s, e->ptr, e->reach, e->pa, iova_val(iova) & ((UINT64_C(1) << shift) - 1), shift);
	return 0;
}

/*
 * The oracle: the access checked against iovm's shadows of what is mapped,
 * in both stages for a nested domain. The IOTLB keeps no guest physical
 * address, so stage 1's shadow gives it: not the page table, which an
 * unmap may already have cleared while this access legitimately finishes
 * inside its section.
 */
static void oracle_check(struct iovm_domain *dom, iova_t iova, const struct iommu_span *s, unsigned access)
{
	pa_t out;

	if (dom->shared_ops && !dom->sshadow)
		return; /* made without the oracle: no shadow (shadow.c) */
	if (!dom->parent) {
		shadow_check(dom, iova, s->len, s->pa, access);
		return;
	}
	/* Stage 1's shadow gives a guest physical address, which is stage 2's IOVA. */
	if (shadow_lookup(dom, iova, &out)) {
		shadow_check(dom, iova, s->len, PA_INVALID, access); /* reports it */
		return;
	}
	shadow_check(dom, iova, s->len, out, access);
	shadow_check(dom->parent, iommu_stage2_iova(stage1_gpa(out)), s->len, s->pa, access);
}

/*
 * The second stage of a nested translation: @w1 walked stage 1 of @dom to
 * a guest physical address, with the permission. The IOTLB entry holds the
 * combined translation, at the smaller of the two leaves.
 */
static int access_nested(struct iommu_iotlb *t, struct iovm_domain *dom, uint32_t pasid, iova_t iova,
			 unsigned access, const struct pt_walk *w1, struct iommu_span *s, struct iovm_fault *f)
{
	bool write = access & IOVM_MAP_WRITE;
	uint8_t reach = PHYS_REACH_OWN;
	gpa_t gpa = stage1_gpa(w1->pa);
	struct pt_walk w2, w;
	struct iotlb_entry *e;
	uint8_t *page_ptr;
	uint64_t off;
	pa_t page_pa;
	unsigned shift;
	uint32_t gen;

	if (pt_walk(&dom->parent->pt, iommu_stage2_iova(gpa), &w2))
		return fault_stage2(dom, t, pasid, iova, gpa, access, IOVM_FAULT_NOT_PRESENT, f);
	if ((access & w2.prot) != access)
		return fault_stage2(dom, t, pasid, iova, gpa, access, IOVM_FAULT_PERMISSION, f);
	pt_mark(w1->ptep, w1->pte, write);
	pt_mark(w2.ptep, w2.pte, write);
	/*
	 * A stage-1 leaf maps a block aligned to its size onto one aligned
	 * alike, so the iova's block of the smaller size lies within one
	 * stage-2 leaf: contiguous in PA.
	 */
	shift = MIN(MIN(w1->shift, w2.shift), (unsigned)IOTLB_HUGE_SHIFT);
	off = iova_val(iova) & ((UINT64_C(1) << shift) - 1);
	page_pa = pa_make(pa_val(w2.pa) - off);
	gen = atomic_load_explicit(t->bus_gen, memory_order_acquire);
	page_ptr = phys_bus_map(t->phys, page_pa, &reach);
	if (unlikely(!page_ptr))
		return fault_stage2(dom, t, pasid, iova, gpa, access, IOVM_FAULT_BUS, f);
	/*
	 * Both stages' permissions; a read leaves write out, so that the
	 * first write walks again and sets the dirty bit of both stages.
	 */
	w = *w1;
	w.prot = w1->prot & w2.prot & (write ? ~0u : ~(unsigned)PT_PROT_WRITE);
	e = iotlb_fill(t, iova, shift, pasid, &w, page_pa, page_ptr, reach, gen, write);
	/*
	 * iotlb_fill() checked stage 1 still holds; stage 2 likewise. An
	 * unmap in stage 2 clears its PTE, then invalidates every nested
	 * entry: either this read sees the clear, or that sees the entry.
	 */
	if ((atomic_load_explicit(w2.ptep, memory_order_seq_cst) ^ w2.pte) & ~(PTE_ACCESSED | PTE_DIRTY))
		atomic_store_explicit(&e->tag, 0, memory_order_relaxed);
	span_set(s, page_ptr, reach, page_pa, off, shift);
	if (unlikely(t->oracle))
		oracle_check(dom, iova, s, access);
	return 0;
}

/*
 * Whether @pa, which no window of this process holds, is another
 * process's registration in the shared domain @dom, which that process
 * reaches for us (iommu_delegate()).
 */
static bool delegated(const struct iovm_domain *dom, pa_t pa)
{
	return dom->shared_ops && dom->shared_ops->delegate && pa_val(pa) - PHYS_SHARED_REG_BASE < PHYS_SHARED_REG_SIZE;
}

/*
 * A span of another process's registration: no pointer, and no IOTLB
 * entry (each access walks again, and asks that process): it is the
 * slow path by nature, and an entry would outlive that process's unmap
 * on nothing but its invalidation. To the leaf's end, and on over the
 * leaves after it that continue it (the same registration's next PAs,
 * the access allowed), up to IOMMU_DELEGATE_SPAN: each ask costs a
 * round trip to that process, whose engine translates every byte again
 * through its own view, so the walk here only sizes the ask.
 */
static __noinline int span_delegated(struct iommu_iotlb *t, struct iovm_domain *dom, iova_t iova,
				     struct iommu_span *s, pa_t page_pa, uint64_t off, unsigned shift, unsigned access)
{
	uint64_t chunk = SZ_2M - ((pa_val(page_pa) + off) & (SZ_2M - 1));

	s->ptr = NULL;
	s->pa = pa_add(page_pa, off);
	s->reach = PHYS_REACH_DELEGATED;
	s->len = MIN((UINT64_C(1) << shift) - off, chunk);
	while (s->len < MIN((uint64_t)IOMMU_DELEGATE_SPAN, chunk)) {
		iova_t next = iova_add(iova, s->len);
		struct pt_walk w;

		if (pt_walk(&dom->pt, next, &w) || (access & w.prot) != access || !pa_eq(w.pa, pa_add(s->pa, s->len)))
			break;
		s->len += (UINT64_C(1) << w.shift) - (iova_val(next) & ((UINT64_C(1) << w.shift) - 1));
	}
	s->len = MIN(s->len, chunk);
	if (unlikely(t->oracle))
		oracle_check(dom, iova, s, access);
	return 0;
}

/*
 * iommu_access() past the IOTLB: a walk and a fill, a fault, or an identity
 * domain. Out of line, so that a hit pays for none of its stack frame.
 */
static __noinline int access_miss(struct iommu_iotlb *t, uint32_t pasid, iova_t iova, unsigned access,
				  struct iommu_span *s, struct iovm_fault *f)
{
	struct iovm_domain *dom;
	bool write = access & IOVM_MAP_WRITE;
	uint8_t reach = PHYS_REACH_OWN;
	uint64_t off;
	pa_t page_pa;
	uint8_t *page_ptr;
	uint32_t gen;
	unsigned shift;
	struct pt_walk w;

	dom = client_domain(t->client, pasid);
	if (unlikely(!dom))
		return fault(NULL, t, pasid, iova, access, IOVM_FAULT_NO_DOMAIN, f);
	if (dom->type == IOVM_DOMAIN_IDENTITY) {
		/* IOVA == PA. */
		pa_t pa = pa_make(iova_val(iova));

		if (iova_val(iova) >= dom->limit)
			return fault(dom, t, pasid, iova, access, IOVM_FAULT_NOT_PRESENT, f);
		/* The bus resolves 2 MiB granules: memory stays contiguous to the granule's end. */
		page_ptr = phys_bus_map(t->phys, pa, &reach);
		if (unlikely(!page_ptr))
			return fault(dom, t, pasid, iova, access, IOVM_FAULT_BUS, f);
		span_set(s, page_ptr, reach, pa, 0, 21);
		return 0;
	}
	counter_add(&t->misses, 1);
	if (pt_walk(&dom->pt, iova, &w))
		return fault(dom, t, pasid, iova, access, IOVM_FAULT_NOT_PRESENT, f);
	if ((access & w.prot) != access)
		return fault(dom, t, pasid, iova, access, IOVM_FAULT_PERMISSION, f);
	if (unlikely(dom->parent))
		return access_nested(t, dom, pasid, iova, access, &w, s, f);
	pt_mark(w.ptep, w.pte, write);
	/* A 1 GiB leaf is cached in 2 MiB pieces, the huge entries' size. */
	shift = MIN(w.shift, (unsigned)IOTLB_HUGE_SHIFT);
	off = iova_val(iova) & ((UINT64_C(1) << shift) - 1);
	page_pa = pa_make(pa_val(w.pa) - off);
	/* The generation before the lookup: a bump in between makes the entry stale, not wrong. */
	gen = atomic_load_explicit(t->bus_gen, memory_order_acquire);
	page_ptr = phys_bus_map(t->phys, page_pa, &reach);
	if (unlikely(!page_ptr)) {
		if (delegated(dom, page_pa))
			return span_delegated(t, dom, iova, s, page_pa, off, shift, access);
		return fault(dom, t, pasid, iova, access, IOVM_FAULT_BUS, f);
	}
	iotlb_fill(t, iova, shift, pasid, &w, page_pa, page_ptr, reach, gen, write);
	span_set(s, page_ptr, reach, page_pa, off, shift);
	if (unlikely(t->oracle))
		oracle_check(dom, iova, s, access);
	return 0;
}

/* iommu_access(), inline in it and in iommu_access_run(): a hit is a few loads and compares. */
static inline int access_one(struct iommu_iotlb *t, uint32_t pasid, iova_t iova, unsigned access,
			     struct iommu_span *s, struct iovm_fault *f)
{
	if (unlikely(access_cached(t, pasid, iova, access, s)))
		return access_miss(t, pasid, iova, access, s, f);
	if (unlikely(t->oracle)) {
		struct iovm_domain *dom = client_domain(t->client, pasid);

		if (dom)
			oracle_check(dom, iova, s, access);
	}
	return 0;
}

int iommu_access(struct iommu_iotlb *t, uint32_t pasid, iova_t iova, unsigned access, struct iommu_span *s,
		 struct iovm_fault *f)
{
	return access_one(t, pasid, iova, access, s, f);
}

void iommu_hot_oracle(struct iommu_iotlb *t, uint32_t pasid, uint64_t iova, unsigned access, uint64_t len, pa_t pa)
{
	struct iovm_domain *dom = client_domain(t->client, pasid);
	struct iommu_span s = { .len = len, .pa = pa, .reach = PHYS_REACH_OWN };

	if (dom)
		oracle_check(dom, iova_make(iova), &s, access);
}

int iommu_access_aside(struct iommu_iotlb *t, uint32_t pasid, iova_t iova, unsigned access, struct iommu_span *s,
		       struct iovm_fault *f)
{
	struct iotlb_entry *last[2] = { t->last[0], t->last[1] };
	unsigned shift[2] = { t->last_shift[0], t->last_shift[1] };
	int ret = access_one(t, pasid, iova, access, s, f);

	/* Hints only: one whose entry was refilled meanwhile misses on its tag. */
	t->last[0] = last[0];
	t->last[1] = last[1];
	t->last_shift[0] = shift[0];
	t->last_shift[1] = shift[1];
	return ret;
}

int iommu_access_run(struct iommu_iotlb *t, uint32_t pasid, iova_t iova, unsigned access, uint64_t want,
		     struct iommu_span *s, struct iovm_fault *f)
{
	int ret = access_one(t, pasid, iova, access, s, f);

	if (ret || s->reach != PHYS_REACH_OWN)
		return ret;
	while (s->len < want) {
		uint64_t next = iova_val(iova) + s->len;
		struct iommu_span n;
		struct iovm_fault nf;

		/* Not past 2^64: the run would go on at IOVA 0. */
		if (next < iova_val(iova) ||
		    access_one(t, pasid, iova_make(next), access, &n, &nf) || n.reach != PHYS_REACH_OWN ||
		    n.ptr != s->ptr + s->len || !pa_eq(n.pa, pa_add(s->pa, s->len)))
			break;
		s->len += n.len;
	}
	return 0;
}
