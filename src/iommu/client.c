/* SPDX-License-Identifier: MIT */
/*
 * client.c - the device side of the IOMMU: a device's domains by PASID, its
 * IOTLBs, and the translation every device access goes through.
 *
 * An IOTLB is four-way set associative: 256 entries for 4 KiB leaves, 64 for
 * 2 MiB and 1 GiB ones (cached at 2 MiB granularity). Only its owner fills it; any
 * writer invalidates entries by clearing their tags. A fill can race with an
 * unmap that cleared the PTE just after the walk read it: the owner stores
 * the entry, then reads the PTE again, and drops the entry if it changed.
 * Either that second read sees the clear, or the unmap's invalidation,
 * which comes after the clear, sees the entry.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/ctx.h"
#include "base/fault_inject.h"
#include "base/lock.h"
#include "base/log.h"
#include "iommu/iommu_internal.h"
#include "phys/phys.h"

#define PASID_BITS 20
#define TAG_VALID UINT64_C(1)

/*
 * A tag keeps the page number of an IOVA below 2^PT_IOVA_BITS whole: IOVAs
 * at or above it never reach a tag (access_cached() sends them to a walk,
 * which faults), so no two IOVAs share one.
 */
static_assert(PT_IOVA_BITS - 12 + PASID_BITS + 1 <= 64, "a tag holds a 4 KiB page number, a PASID, a valid bit");

static uint64_t make_tag(uint64_t iova, unsigned shift, uint32_t pasid)
{
	return ((iova >> shift) << (PASID_BITS + 1)) | ((uint64_t)pasid << 1) | TAG_VALID;
}

static uint32_t tag_pasid(uint64_t tag)
{
	return (uint32_t)(tag >> 1) & ((1u << PASID_BITS) - 1);
}

static uint64_t tag_page(uint64_t tag)
{
	return tag >> (PASID_BITS + 1);
}

/* The first entry of the set a page (at @shift granularity) of @pasid belongs to. */
static unsigned set_base(uint64_t iova, unsigned shift, uint32_t pasid, unsigned entries)
{
	unsigned sets_bits = ilog2(entries / IOTLB_WAYS);
	uint64_t key = (iova >> shift) ^ ((uint64_t)pasid << 40);

	/* Multiplicative hashing spreads strided pages over the sets. */
	return (unsigned)((key * UINT64_C(0x9e3779b97f4a7c15)) >> (64 - sets_bits)) * IOTLB_WAYS;
}

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

/*
 * Clear the entries of @pasid in [iova, iova+len), or all of them. Needs the client lock.
 *
 * Plain stores, then one full fence: a locked store per entry would wait,
 * each in turn, for a line the device's thread last wrote (a flush clears
 * most of the IOTLB); the fence orders every clear before the grace period
 * that follows. A clear racing with a fill of the same entry at most
 * drops a good entry, as before: the filler checks its leaf after its tag.
 */
static void iotlb_invalidate(struct iommu_iotlb *t, uint32_t pasid, uint64_t iova, uint64_t len,
			     bool all)
{
	uint64_t first = all ? 0 : iova >> 12, last = all ? UINT64_MAX : (iova + len - 1) >> 12;

	if (all || len / SZ_4K >= IOTLB_SMALL) {
		/* Large ranges: look at every entry. */
		for (unsigned i = 0; i < IOTLB_SMALL; i++) {
			struct iotlb_entry *e = &t->small[i];
			uint64_t tag = atomic_load_explicit(&e->tag, memory_order_relaxed);

			if ((tag & TAG_VALID) && tag_pasid(tag) == pasid && tag_page(tag) >= first &&
			    tag_page(tag) <= last)
				atomic_store_explicit(&e->tag, 0, memory_order_relaxed);
		}
	} else {
		/* Small ranges: only the sets their pages hash to. */
		for (uint64_t p = first; p <= last; p++) {
			struct iotlb_entry *e = &t->small[set_base(p << 12, 12, pasid, IOTLB_SMALL)];

			for (unsigned w = 0; w < IOTLB_WAYS; w++)
				if (atomic_load_explicit(&e[w].tag, memory_order_relaxed) ==
				    make_tag(p << 12, 12, pasid))
					atomic_store_explicit(&e[w].tag, 0, memory_order_relaxed);
		}
	}
	/* Huge entries cover 2 MiB: any that overlaps goes. */
	for (unsigned i = 0; i < IOTLB_HUGE; i++) {
		struct iotlb_entry *e = &t->huge[i];
		uint64_t tag = atomic_load_explicit(&e->tag, memory_order_relaxed);

		if ((tag & TAG_VALID) && tag_pasid(tag) == pasid &&
		    tag_page(tag) >= first >> (IOTLB_HUGE_SHIFT - 12) &&
		    tag_page(tag) <= last >> (IOTLB_HUGE_SHIFT - 12))
			atomic_store_explicit(&e->tag, 0, memory_order_relaxed);
	}
	atomic_thread_fence(memory_order_seq_cst);
}

/* Invalidate @dom's entries in the IOTLBs of the devices attached to it. Needs @dom's lock. */
static void invalidate_attached(struct iovm_domain *dom, uint64_t iova, uint64_t len, bool all)
{
	struct list_node *n, *m;

	list_for_each(n, &dom->attachments) {
		struct attachment *at = list_entry(n, struct attachment, link);

		mutex_lock(&at->client->lock);
		list_for_each(m, &at->client->iotlbs)
			iotlb_invalidate(list_entry(m, struct iommu_iotlb, link), at->pasid, iova, len, all);
		mutex_unlock(&at->client->lock);
	}
}

void domain_invalidate(struct iovm_domain *dom, uint64_t iova, uint64_t len, bool all)
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
		invalidate_attached(child, 0, 0, true);
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
		return -EINVAL;
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
		return -EINVAL;
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
				break;
			}
		}
		list_for_each(m, &c->iotlbs)
			iotlb_invalidate(list_entry(m, struct iommu_iotlb, link), pasid, 0, 0, true);
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

int iommu_iotlb_create(struct iommu_client *c, struct iommu_iotlb **out)
{
	struct iommu_iotlb *t = fi_aligned_alloc(CACHE_LINE_SIZE, align_up(sizeof(*t), CACHE_LINE_SIZE));

	if (!t)
		return -ENOMEM;
	memset(t, 0, sizeof(*t));
	t->client = c;
	t->phys = c->is->ctx->phys;
	t->bus_gen = phys_bus_gen(t->phys);
	t->oracle = c->is->oracle;
	epoch_reader_add(c->is->epoch, &t->reader);
	mutex_lock(&c->lock);
	list_add(&c->iotlbs, &t->link);
	mutex_unlock(&c->lock);
	*out = t;
	return 0;
}

void iommu_iotlb_destroy(struct iommu_iotlb *t)
{
	if (!t)
		return;
	mutex_lock(&t->client->lock);
	list_del(&t->link);
	mutex_unlock(&t->client->lock);
	epoch_reader_del(t->client->is->epoch, &t->reader);
	free(t);
}

void iommu_iotlb_counters(const struct iommu_iotlb *t, uint64_t *hits, uint64_t *misses)
{
	*hits = t->hits;
	*misses = t->misses;
}

void iommu_enter(struct iommu_iotlb *t)
{
	epoch_enter(t->client->is->epoch, &t->reader);
}

void iommu_exit(struct iommu_iotlb *t)
{
	epoch_exit(&t->reader);
}

bool iommu_quiesce(struct iommu_iotlb *t)
{
	struct epoch *e = t->client->is->epoch;

	if (likely(!epoch_waited_on(e, &t->reader)))
		return false;
	epoch_exit(&t->reader);
	epoch_enter(e, &t->reader);
	return true;
}

static int fault(struct iovm_domain *dom, struct iommu_iotlb *t, uint32_t pasid, uint64_t iova,
		 unsigned access, enum iovm_fault_reason reason, struct iovm_fault *f)
{
	*f = (struct iovm_fault){
		.iova = IOVM_IOVA(iova),
		.pasid = pasid,
		.access = access,
		.reason = reason,
		.device = t->client->id,
		.gpa = IOVM_GPA(IOVM_ADDR_INVALID),
	};
	/* A device assigned to a guest through its stage 2 faults there: its IOVAs are guest physical. */
	if (dom && dom->type == IOVM_DOMAIN_GUEST) {
		f->stage = IOVM_STAGE_2;
		f->gpa = IOVM_GPA(iova);
	} else if (dom && dom->type == IOVM_DOMAIN_NESTED) {
		f->stage = IOVM_STAGE_1;
	}
	return -EFAULT;
}

/* A fault in stage 2 of a nested translation, at guest physical @gpa. */
static int fault_stage2(struct iovm_domain *dom, struct iommu_iotlb *t, uint32_t pasid, uint64_t iova,
			uint64_t gpa, unsigned access, enum iovm_fault_reason reason, struct iovm_fault *f)
{
	fault(dom, t, pasid, iova, access, reason, f);
	f->stage = IOVM_STAGE_2;
	f->gpa = IOVM_GPA(gpa);
	return -EFAULT;
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

int iommu_resolve(struct iommu_client *c, const struct iovm_fault *f)
{
	iommu_resolver_fn fn = atomic_load_explicit(&c->is->resolver, memory_order_acquire);
	struct iovm_domain *dom = client_domain(c, f->pasid);

	/* On-demand registrations live in single-stage domains. */
	if (!fn || !dom || f->reason != IOVM_FAULT_NOT_PRESENT || f->stage != IOVM_STAGE_ONLY)
		return -ENOENT;
	return fn(c->is->resolver_arg, dom, f->iova.addr, f->access);
}

/* Fill an IOTLB entry from a walk, then check the walk still holds. */
static void iotlb_fill(struct iotlb_entry *e, uint64_t tag, const struct pt_walk *w, uint64_t page_pa,
		       uint8_t *page_ptr, bool foreign, uint32_t bus_gen, bool write)
{
	e->pa = page_pa;
	e->ptr = page_ptr;
	e->foreign = foreign;
	e->prot = (uint8_t)w->prot;
	e->ptep = w->ptep;
	e->pte = w->pte;
	e->bus_gen = bus_gen;
	e->dirty = write;
	atomic_store_explicit(&e->tag, tag, memory_order_seq_cst);
	if ((atomic_load_explicit(w->ptep, memory_order_seq_cst) ^ w->pte) &
	    ~(PTE_ACCESSED | PTE_DIRTY))
		atomic_store_explicit(&e->tag, 0, memory_order_relaxed);
}

/* The entry holding @iova's translation, or NULL: its 4 KiB set, then its 2 MiB one. */
static inline struct iotlb_entry *lookup(struct iommu_iotlb *t, uint64_t iova, uint32_t pasid)
{
	uint64_t tag = make_tag(iova, 12, pasid);
	struct iotlb_entry *e = &t->small[set_base(iova, 12, pasid, IOTLB_SMALL)];

	for (unsigned w = 0; w < IOTLB_WAYS; w++)
		if (atomic_load_explicit(&e[w].tag, memory_order_acquire) == tag)
			return &e[w];
	tag = make_tag(iova, IOTLB_HUGE_SHIFT, pasid);
	e = &t->huge[set_base(iova, IOTLB_HUGE_SHIFT, pasid, IOTLB_HUGE)];
	for (unsigned w = 0; w < IOTLB_WAYS; w++)
		if (atomic_load_explicit(&e[w].tag, memory_order_acquire) == tag)
			return &e[w];
	return NULL;
}

/* What an access reaches, from the page it falls in: at most to the end of the bus granule. */
static void span_set(struct iommu_span *s, uint8_t *page_ptr, bool foreign, uint64_t page_pa,
		     uint64_t off, unsigned shift)
{
	uint64_t pa = page_pa + off;

	s->ptr = page_ptr + off;
	s->pa = pa;
	s->foreign = foreign;
	/* Within a 2 MiB granule the bus maps one bank, contiguously. */
	s->len = MIN((UINT64_C(1) << shift) - off, SZ_2M - (pa & (SZ_2M - 1)));
}

/*
 * The IOTLB-hit path: a tag compare, the bus generation, the permission; no
 * page-table walk, no domain or bus lookup. Anything unusual goes the slow
 * way. Returns 0, or -EAGAIN for the slow way.
 */
static inline int access_cached(struct iommu_iotlb *t, uint32_t pasid, uint64_t iova, unsigned access,
				struct iommu_span *s)
{
	struct iotlb_entry *e;
	unsigned shift;

	/* Beyond the page table's reach: no tag can name it, and the walk faults. */
	if (unlikely(iova >> PT_IOVA_BITS))
		return -EAGAIN;
	e = lookup(t, iova, pasid);
	if (!e || e->bus_gen != atomic_load_explicit(t->bus_gen, memory_order_acquire) ||
	    (access & e->prot) != access)
		return -EAGAIN;
	shift = e >= t->huge ? IOTLB_HUGE_SHIFT : 12;
	if ((access & IOVM_MAP_WRITE) && !e->dirty) {
		pt_mark(e->ptep, e->pte & ~PTE_DIRTY, true);
		e->dirty = 1;
	}
	t->hits++;
	span_set(s, e->ptr, e->foreign, e->pa, iova & ((UINT64_C(1) << shift) - 1), shift);
	return 0;
}

/*
 * The oracle: the access checked against iovm's shadows of what is mapped,
 * in both stages for a nested domain. The IOTLB keeps no guest physical
 * address, so stage 1's shadow gives it: not the page table, which an
 * unmap may already have cleared while this access legitimately finishes
 * inside its section.
 */
static void oracle_check(struct iovm_domain *dom, uint64_t iova, const struct iommu_span *s, unsigned access)
{
	uint64_t gpa;

	if (!dom->parent) {
		shadow_check(dom, iova, s->len, s->pa, access);
		return;
	}
	if (shadow_lookup(dom, iova, &gpa)) {
		shadow_check(dom, iova, s->len, IOVM_ADDR_INVALID, access); /* reports it */
		return;
	}
	shadow_check(dom, iova, s->len, gpa, access);
	shadow_check(dom->parent, gpa, s->len, s->pa, access);
}

/*
 * The second stage of a nested translation: @w1 walked stage 1 of @dom to
 * a guest physical address, with the permission. The IOTLB entry holds the
 * combined translation, at the smaller of the two leaves.
 */
static int access_nested(struct iommu_iotlb *t, struct iovm_domain *dom, uint32_t pasid, uint64_t iova,
			 unsigned access, const struct pt_walk *w1, struct iommu_span *s, struct iovm_fault *f)
{
	bool write = access & IOVM_MAP_WRITE, foreign = false;
	uint64_t gpa = w1->pa, off, page_pa;
	struct pt_walk w2, w;
	struct iotlb_entry *e;
	uint8_t *page_ptr;
	unsigned shift;
	uint32_t gen;

	if (pt_walk(&dom->parent->pt, gpa, &w2))
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
	off = iova & ((UINT64_C(1) << shift) - 1);
	page_pa = w2.pa - off;
	gen = atomic_load_explicit(t->bus_gen, memory_order_acquire);
	page_ptr = phys_bus_map(t->phys, pa_make(page_pa), &foreign);
	if (unlikely(!page_ptr))
		return fault_stage2(dom, t, pasid, iova, gpa, access, IOVM_FAULT_BUS, f);
	/*
	 * Both stages' permissions; a read leaves write out, so that the
	 * first write walks again and sets the dirty bit of both stages.
	 */
	w = *w1;
	w.prot = w1->prot & w2.prot & (write ? ~0u : ~(unsigned)PT_PROT_WRITE);
	e = shift == 12 ? &t->small[set_base(iova, 12, pasid, IOTLB_SMALL)]
			: &t->huge[set_base(iova, IOTLB_HUGE_SHIFT, pasid, IOTLB_HUGE)];
	e += t->victim++ % IOTLB_WAYS;
	iotlb_fill(e, make_tag(iova, shift, pasid), &w, page_pa, page_ptr, foreign, gen, write);
	/*
	 * iotlb_fill() checked stage 1 still holds; stage 2 likewise. An
	 * unmap in stage 2 clears its PTE, then invalidates every nested
	 * entry: either this read sees the clear, or that sees the entry.
	 */
	if ((atomic_load_explicit(w2.ptep, memory_order_seq_cst) ^ w2.pte) & ~(PTE_ACCESSED | PTE_DIRTY))
		atomic_store_explicit(&e->tag, 0, memory_order_relaxed);
	span_set(s, page_ptr, foreign, page_pa, off, shift);
	if (unlikely(t->oracle))
		oracle_check(dom, iova, s, access);
	return 0;
}

/*
 * iommu_access() past the IOTLB: a walk and a fill, a fault, or an identity
 * domain. Out of line, so that a hit pays for none of its stack frame.
 */
static __noinline int access_miss(struct iommu_iotlb *t, uint32_t pasid, uint64_t iova, unsigned access,
				  struct iommu_span *s, struct iovm_fault *f)
{
	struct iovm_domain *dom;
	bool write = access & IOVM_MAP_WRITE, foreign = false;
	uint64_t page_pa, off;
	uint8_t *page_ptr;
	uint32_t gen;
	unsigned shift;
	struct pt_walk w;

	dom = client_domain(t->client, pasid);
	if (unlikely(!dom))
		return fault(NULL, t, pasid, iova, access, IOVM_FAULT_NO_DOMAIN, f);
	if (dom->type == IOVM_DOMAIN_IDENTITY) {
		if (iova >= dom->limit)
			return fault(dom, t, pasid, iova, access, IOVM_FAULT_NOT_PRESENT, f);
		/* The bus resolves 2 MiB granules: memory stays contiguous to the granule's end. */
		page_ptr = phys_bus_map(t->phys, pa_make(iova), &foreign);
		if (unlikely(!page_ptr))
			return fault(dom, t, pasid, iova, access, IOVM_FAULT_BUS, f);
		span_set(s, page_ptr, foreign, iova, 0, 21);
		return 0;
	}
	t->misses++;
	if (pt_walk(&dom->pt, iova, &w))
		return fault(dom, t, pasid, iova, access, IOVM_FAULT_NOT_PRESENT, f);
	if ((access & w.prot) != access)
		return fault(dom, t, pasid, iova, access, IOVM_FAULT_PERMISSION, f);
	if (unlikely(dom->parent))
		return access_nested(t, dom, pasid, iova, access, &w, s, f);
	pt_mark(w.ptep, w.pte, write);
	/* A 1 GiB leaf is cached in 2 MiB pieces, the huge entries' size. */
	shift = MIN(w.shift, (unsigned)IOTLB_HUGE_SHIFT);
	off = iova & ((UINT64_C(1) << shift) - 1);
	page_pa = w.pa - off;
	/* The generation before the lookup: a bump in between makes the entry stale, not wrong. */
	gen = atomic_load_explicit(t->bus_gen, memory_order_acquire);
	page_ptr = phys_bus_map(t->phys, pa_make(page_pa), &foreign);
	if (unlikely(!page_ptr))
		return fault(dom, t, pasid, iova, access, IOVM_FAULT_BUS, f);
	{
		struct iotlb_entry *e = shift == 12
						? &t->small[set_base(iova, 12, pasid, IOTLB_SMALL)]
						: &t->huge[set_base(iova, IOTLB_HUGE_SHIFT, pasid, IOTLB_HUGE)];

		e += t->victim++ % IOTLB_WAYS;
		iotlb_fill(e, make_tag(iova, shift, pasid), &w, page_pa, page_ptr, foreign, gen, write);
	}
	span_set(s, page_ptr, foreign, page_pa, off, shift);
	if (unlikely(t->oracle))
		oracle_check(dom, iova, s, access);
	return 0;
}

int iommu_access(struct iommu_iotlb *t, uint32_t pasid, uint64_t iova, unsigned access,
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
