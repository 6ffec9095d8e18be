/* SPDX-License-Identifier: MIT */
/*
 * shadow.c - the oracle: a record of what each domain maps, kept apart from
 * its page table, against which every device access is checked when the
 * context runs with oracle=on (the tests do).
 *
 * An access must fall in a live mapping, to the PA the shadow says, with
 * the permission it says. An access through a translation whose unmap is
 * awaiting a deferred flush is "stale": allowed, counted, and only if its
 * pages are still pinned (never reused). Anything else is a violation: the
 * page table or an IOTLB disagrees with what was asked, an iovm bug.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "base/ctx.h"
#include "base/lock.h"
#include "base/log.h"
#include "iommu/iommu_internal.h"
#include "iommu/shadow.h"
#include "phys/phys.h"

/* The first violations are logged in full; then only counted. */
#define VIOLATIONS_LOGGED 10

#define range_of(n) rb_entry(n, struct shadow_range, rb)

void shadow_init(struct shadow *s)
{
	mutex_init(&s->lock);
	rb_root_init(&s->live, NULL);
	rb_root_init(&s->pending, NULL);
	s->spare = NULL;
	s->nspare = 0;
}

static void drop_all(struct rb_root *t)
{
	struct rb_node *n;

	while ((n = t->root)) {
		rb_erase(t, n);
		free(range_of(n));
	}
}

void shadow_destroy(struct shadow *s)
{
	drop_all(&s->live);
	drop_all(&s->pending);
	while (s->spare) {
		struct shadow_range *r = s->spare;

		s->spare = range_of(r->rb.left);
		free(r);
	}
	mutex_destroy(&s->lock);
}

/*
 * The lock, with this thread's log messages held (log.h) while it is held:
 * devices wait for it inside their sections, so its holder must not wait
 * for the log handler (which may allocate) or for the log lock either. A
 * violation found under it is logged once it is dropped.
 */
static void shadow_lock(struct shadow *s)
{
	log_hold();
	mutex_lock(&s->lock);
}

static void shadow_unlock(struct shadow *s)
{
	mutex_unlock(&s->lock);
	log_release();
}

#define spare_next(r) ((r)->rb.left ? range_of((r)->rb.left) : NULL)

/*
 * With the lock held, make sure @need nodes are spare, allocating any
 * missing with the lock dropped. False if malloc failed: an insert then
 * records nothing and the oracle reports accesses there, loud, not wrong.
 */
static bool reserve(struct shadow *s, uint64_t need)
{
	lock_assert_held(&s->lock);
	while (s->nspare < need) {
		uint64_t want = need - s->nspare, got = 0;
		struct shadow_range *chain = NULL, *last = NULL;

		mutex_unlock(&s->lock);
		for (; got < want; got++) {
			/*
			 * Not a fault-injection point: the shadow is the tests'
			 * instrument, not a resource of the call being tested.
			 */
			struct shadow_range *r = malloc(sizeof(*r));

			if (!r)
				break;
			r->rb.left = chain ? &chain->rb : NULL;
			if (!chain)
				last = r;
			chain = r;
		}
		mutex_lock(&s->lock);
		if (chain) {
			last->rb.left = s->spare ? &s->spare->rb : NULL;
			s->spare = chain;
			s->nspare += got;
		}
		if (got < want)
			return false;
	}
	return true;
}

/* A node back to the spares: free() may wait for malloc's locks too. */
static void unuse(struct shadow *s, struct shadow_range *r)
{
	r->rb.left = s->spare ? &s->spare->rb : NULL;
	s->spare = r;
	s->nspare++;
}

/* The range with the largest start <= @iova. */
static struct shadow_range *find_le(struct rb_root *t, iova_t iova)
{
	struct rb_node *n = t->root;
	struct shadow_range *best = NULL;

	while (n) {
		if (iova_val(range_of(n)->iova) <= iova_val(iova)) {
			best = range_of(n);
			n = n->right;
		} else {
			n = n->left;
		}
	}
	return best;
}

static struct shadow_range *containing(struct rb_root *t, iova_t iova)
{
	struct shadow_range *r = find_le(t, iova);

	return r && iova_diff(iova, r->iova) < r->len ? r : NULL;
}

static void insert(struct shadow *s, struct rb_root *t, iova_t iova, uint64_t len, pa_t pa, uint32_t prot)
{
	struct rb_node **link = &t->root, *parent = NULL;
	struct shadow_range *r = s->spare;

	lock_assert_held(&s->lock);
	if (!r)
		return; /* reserve() failed: the oracle then reports accesses here */
	s->spare = spare_next(r);
	s->nspare--;
	*r = (struct shadow_range){ .iova = iova, .len = len, .pa = pa, .prot = prot };
	while (*link) {
		parent = *link;
		link = iova_val(iova) < iova_val(range_of(parent)->iova) ? &parent->left : &parent->right;
	}
	rb_insert(t, &r->rb, parent, link);
}

/*
 * Take [iova, iova+len) out of @t, keeping what sticks out of it: at most
 * CARVE_NODES new nodes. Returns the bytes taken.
 */
#define CARVE_NODES 2
static uint64_t carve(struct shadow *s, struct rb_root *t, iova_t at, uint64_t len)
{
	uint64_t iova = iova_val(at), end = iova + len, taken = 0;

	for (;;) {
		struct shadow_range *r = find_le(t, iova_make(end - 1)), keep;
		uint64_t ks, ke;

		if (!r || iova_val(r->iova) + r->len <= iova)
			return taken;
		keep = *r;
		ks = iova_val(keep.iova);
		ke = ks + keep.len;
		rb_erase(t, &r->rb);
		unuse(s, r);
		taken += MIN(end, ke) - MAX(iova, ks);
		if (ks < iova)
			insert(s, t, keep.iova, iova - ks, keep.pa, keep.prot);
		if (ke > end)
			insert(s, t, iova_make(end), ke - end, pa_add(keep.pa, end - ks), keep.prot);
	}
}

void shadow_violation(struct iovm_domain *dom, const char *what, iova_t iova, pa_t pa)
{
	uint64_t n = atomic_fetch_add_explicit(&dom->oracle_violations, 1, memory_order_relaxed);

	if (n < VIOLATIONS_LOGGED)
		log_err("oracle: %s at IOVA %#" PRIx64 " (PA %#" PRIx64 ")", what, iova_val(iova), pa_val(pa));
}

/*
 * A map is recorded before the page table shows it to devices, and taken
 * back if the map fails: a device may use a mapping from the moment its
 * PTE is stored, before the map returns (a guest's stage 2 made again
 * under DMA that never stopped), and its access must find the record. A
 * range that overlaps a live mapping is not recorded at the start: the map
 * should fail; if it does not, that is the violation, found at the end.
 * The pieces of a map: struct shadow_pieces (shadow.h).
 */

/* The nodes insert_pieces() may take: one per page at most. */
static uint64_t pieces_nodes(const struct shadow_pieces *p)
{
	return p->pas ? p->n : 1;
}

/* Record each run of consecutive PAs. Needs the shadow's lock. */
static void insert_pieces(struct shadow *s, const struct shadow_pieces *p)
{
	lock_assert_held(&s->lock);
	if (!p->pas) {
		insert(s, &s->live, p->iova, (uint64_t)p->n << 12, p->pa, p->prot);
		return;
	}
	for (uint64_t i = 0, k; i < p->n; i += k) {
		for (k = 1; i + k < p->n && pa_eq(p->pas[i + k], pa_add(p->pas[i], k << 12)); k++)
			;
		insert(s, &s->live, iova_add(p->iova, i << 12), k << 12, p->pas[i], p->prot);
	}
}

/*
 * A domain shared with other processes keeps its shadow in memory they all
 * map (shadow_shared.c), when its maker ran with the oracle on: another
 * process's maps and unmaps would not reach this process's tree. One
 * without: no shadow, no checks.
 */
static bool oracle_on(const struct iovm_domain *dom)
{
	return dom->is->oracle && !dom->shared_ops;
}

/*
 * Whether a shared domain's maps and unmaps go into its shadow: whenever it
 * has one, whatever this process's own option, since other processes'
 * devices check against it (this one's checks follow its option).
 */
static bool sshadow_on(const struct iovm_domain *dom)
{
	return dom->sshadow != NULL;
}

static bool map_begin(struct iovm_domain *dom, const struct shadow_pieces *p)
{
	struct shadow *s = &dom->shadow;
	uint64_t end = iova_val(p->iova) + (p->n << 12);
	struct shadow_range *r;
	bool clear;

	if (sshadow_on(dom))
		return sshadow_map_begin(dom, p);
	if (!oracle_on(dom))
		return true;
	shadow_lock(s);
	reserve(s, pieces_nodes(p));
	r = find_le(&s->live, iova_make(end - 1));
	clear = !r || iova_val(r->iova) + r->len <= iova_val(p->iova);
	if (clear)
		insert_pieces(s, p);
	shadow_unlock(s);
	return clear;
}

static void map_end(struct iovm_domain *dom, const struct shadow_pieces *p, bool begun, bool mapped)
{
	struct shadow *s = &dom->shadow;

	if (sshadow_on(dom)) {
		sshadow_map_end(dom, p, begun, mapped);
		return;
	}
	if (!oracle_on(dom) || begun == mapped)
		return;
	shadow_lock(s);
	reserve(s, CARVE_NODES + pieces_nodes(p));
	/* Begun and not mapped: it never was. Mapped, not begun: over a live mapping, which it replaces. */
	carve(s, &s->live, p->iova, p->n << 12);
	if (mapped) {
		shadow_violation(dom, "mapped over a live mapping", p->iova, p->pas ? p->pas[0] : p->pa);
		insert_pieces(s, p);
	}
	shadow_unlock(s);
}

bool shadow_map_begin(struct iovm_domain *dom, iova_t iova, uint64_t len, pa_t pa, uint32_t prot)
{
	return map_begin(dom, &(struct shadow_pieces){ .iova = iova, .pa = pa, .n = len >> 12, .prot = prot });
}

void shadow_map_end(struct iovm_domain *dom, iova_t iova, uint64_t len, pa_t pa, uint32_t prot, bool begun,
		    bool mapped)
{
	map_end(dom, &(struct shadow_pieces){ .iova = iova, .pa = pa, .n = len >> 12, .prot = prot }, begun,
		mapped);
}

bool shadow_map_pages_begin(struct iovm_domain *dom, iova_t iova, const pa_t *pas, unsigned n, uint32_t prot)
{
	return map_begin(dom, &(struct shadow_pieces){ .iova = iova, .pas = pas, .n = n, .prot = prot });
}

void shadow_map_pages_end(struct iovm_domain *dom, iova_t iova, const pa_t *pas, unsigned n, uint32_t prot,
			  bool begun, bool mapped)
{
	map_end(dom, &(struct shadow_pieces){ .iova = iova, .pas = pas, .n = n, .prot = prot }, begun, mapped);
}

void shadow_unmap(struct iovm_domain *dom, const struct unmapped *p, bool pending)
{
	struct shadow *s = &dom->shadow;
	struct shadow_range *r;
	uint32_t prot = 0;

	if (sshadow_on(dom)) {
		sshadow_unmap(dom, p, pending);
		return;
	}
	if (!oracle_on(dom))
		return;
	shadow_lock(s);
	reserve(s, 2 * CARVE_NODES + 1);
	r = containing(&s->live, p->iova);
	if (!r || !pa_eq(pa_add(r->pa, iova_diff(p->iova, r->iova)), p->pa))
		shadow_violation(dom, "unmapped what the shadow does not map", p->iova, p->pa);
	if (r)
		prot = r->prot; /* carve() takes r back */
	if (carve(s, &s->live, p->iova, p->len) != p->len)
		shadow_violation(dom, "unmapped more than the shadow maps", p->iova, p->pa);
	if (pending) {
		carve(s, &s->pending, p->iova, p->len);
		insert(s, &s->pending, p->iova, p->len, p->pa, prot);
	}
	shadow_unlock(s);
}

void shadow_flushed(struct iovm_domain *dom, const struct unmapped *p)
{
	struct shadow *s = &dom->shadow;

	if (sshadow_on(dom)) {
		sshadow_flushed(dom, p);
		return;
	}
	if (!oracle_on(dom))
		return;
	shadow_lock(s);
	reserve(s, CARVE_NODES);
	carve(s, &s->pending, p->iova, p->len);
	shadow_unlock(s);
}

int shadow_lookup(struct iovm_domain *dom, iova_t iova, pa_t *pa)
{
	struct shadow *s = &dom->shadow;
	struct shadow_range *r;
	int ret = -ENOENT;

	shadow_lock(s);
	r = containing(&s->live, iova);
	if (r) {
		*pa = pa_add(r->pa, iova_diff(iova, r->iova));
		ret = 0;
	}
	shadow_unlock(s);
	return ret;
}

void shadow_check(struct iovm_domain *dom, iova_t iova, uint64_t len, pa_t pa, unsigned access)
{
	struct shadow *s = &dom->shadow;
	struct shadow_range *r;
	unsigned prot = (access & 1 ? PT_PROT_READ : 0) | (access & 2 ? PT_PROT_WRITE : 0);

	atomic_fetch_add_explicit(&dom->oracle_checks, 1, memory_order_relaxed);
	if (dom->shared_ops) {
		sshadow_check(dom, iova, len, pa, prot);
		return;
	}
	shadow_lock(s);
	r = containing(&s->live, iova);
	if (r) {
		if (!pa_eq(pa_add(r->pa, iova_diff(iova, r->iova)), pa))
			shadow_violation(dom, "translated to another PA than mapped", iova, pa);
		else if ((r->prot & prot) != prot)
			shadow_violation(dom, "access the mapping does not permit", iova, pa);
		else if (iova_diff(iova, r->iova) + len > r->len && !containing(&s->live, iova_add(r->iova, r->len)))
			shadow_violation(dom, "translation reaches past the mapping", iova, pa);
		shadow_unlock(s);
		return;
	}
	r = containing(&s->pending, iova);
	shadow_unlock(s);
	if (!r) {
		shadow_violation(dom, "access to an IOVA that is not mapped", iova, pa);
		return;
	}
	/* A stale translation: inside the deferred window, and only to pages nobody else has. */
	atomic_fetch_add_explicit(&dom->oracle_stale, 1, memory_order_relaxed);
	if (!pa_eq(pa_add(r->pa, iova_diff(iova, r->iova)), pa))
		shadow_violation(dom, "stale translation to another PA than was mapped", iova, pa);
	else if (!phys_pinned(dom->ctx->phys, pa_make(align_down(pa_val(pa), SZ_4K)), SZ_4K))
		shadow_violation(dom, "stale access to a page no longer pinned (reused)", iova, pa);
}
