/* SPDX-License-Identifier: MIT */
/*
 * domain_maps.c - a shared domain's maps in flight: the IOVAs a map took
 * (domain_space.c's allocator) until it is done with them. A process
 * killed in the middle of a map leaves what it mapped, and the IOVAs it
 * had taken for the rest; without a record, nobody could tell them from
 * IOVAs another process's map is about to fill, and they stayed taken
 * until the domain went. Each map records its range in its slot's row
 * (struct sdom_mapping) before it sets the IOVAs' bits, and erases it
 * once it mapped them (iommu_shared_ops.iova_settled()) or gave them
 * back. The reap of a dead process makes its rows' entries orphans; the
 * next claim takes them, and after its invalidation of everything gives
 * back each page of their ranges that translates nothing and that
 * nothing else holds: an unmap's record in the journal (a deferred unmap
 * queued, a strict one being posted: theirs to give back), another map
 * in flight (the page given back by a survivor's unmap and taken again),
 * a registration's unit (its window is untranslated by design). All of
 * it under the share's lock, but a live map's erase of its own entry.
 */
#include <stdlib.h>

#include "base/compiler.h"
#include "base/fault_inject.h"
#include "base/log.h"
#include "iommu/iommu.h"
#include "mp/domain.h"

/* Entry fields that a process reads while another stores them, one store each: atomic. */
static uint64_t entry_len(const struct sdom_mapping *e)
{
	return __atomic_load_n(&e->len, __ATOMIC_ACQUIRE);
}

static unsigned entry_owner(const struct sdom_mapping *e)
{
	return __atomic_load_n(&e->owner, __ATOMIC_RELAXED);
}

/* Read by a thread erasing its own entry while another of its process records one: atomic too. */
static uint64_t entry_iova(const struct sdom_mapping *e)
{
	return __atomic_load_n(&e->iova, __ATOMIC_RELAXED);
}

void sdom_map_record_locked(struct mp_dview *v, uint64_t iova, uint64_t len)
{
	struct sdom_mapping *row = v->shm->maps[v->s->slot];

	for (unsigned i = 0; i < SDOM_MAPS_PER_SLOT; i++) {
		struct sdom_mapping *e = &row[i];

		/* Left by the slot's dead predecessor, unclaimed yet: not this process's. */
		if (entry_len(e))
			continue;
		__atomic_store_n(&e->iova, iova, __ATOMIC_RELAXED);
		__atomic_store_n(&e->owner, (uint16_t)v->s->slot, __ATOMIC_RELAXED);
		mp_crash_point();
		__atomic_store_n(&e->len, len, __ATOMIC_RELEASE); /* the commit */
		mp_crash_point();
		return;
	}
	/* More maps at once than the row holds: this one goes unrecorded. */
	log_debug("shared domain: %u maps in flight in one process, one unrecorded", SDOM_MAPS_PER_SLOT);
}

/* This process's entry of [iova, +len), or NULL. */
static struct sdom_mapping *own_entry(struct mp_dview *v, uint64_t iova, uint64_t len)
{
	struct sdom_mapping *row = v->shm->maps[v->s->slot];

	for (unsigned i = 0; i < SDOM_MAPS_PER_SLOT; i++)
		if (entry_len(&row[i]) == len && entry_owner(&row[i]) == v->s->slot && entry_iova(&row[i]) == iova)
			return &row[i];
	return NULL;
}

void sdom_map_erase(struct mp_dview *v, uint64_t iova, uint64_t len)
{
	struct sdom_mapping *e = own_entry(v, iova, len);

	if (e) {
		__atomic_store_n(&e->len, 0, __ATOMIC_RELEASE);
		mp_crash_point();
	}
}

void sdom_iova_settled(void *arg, iova_t iova, uint64_t len)
{
	sdom_map_erase(arg, iova_val(iova), len);
}

bool sdom_maps_orphan(struct mp_domain_shm *shm, unsigned slot)
{
	bool any = false;

	for (unsigned r = 0; r < MP_MAX_PROCS; r++)
		for (unsigned i = 0; i < SDOM_MAPS_PER_SLOT; i++) {
			struct sdom_mapping *e = &shm->maps[r][i];

			if (!entry_len(e) || (entry_owner(e) & ~SDOM_CLAIMED) != slot)
				continue;
			if (!any) {
				/* The flag before the first: killed between, the next claim looks for nothing. */
				__atomic_store_n(&shm->orphans, 1, __ATOMIC_RELAXED);
				mp_crash_point();
				any = true;
			}
			__atomic_store_n(&e->owner, (uint16_t)SDOM_ORPHAN, __ATOMIC_RELAXED);
			mp_crash_point();
		}
	return any;
}

bool sdom_maps_claim(struct mp_dview *v)
{
	bool any = false;

	for (unsigned r = 0; r < MP_MAX_PROCS; r++)
		for (unsigned i = 0; i < SDOM_MAPS_PER_SLOT; i++) {
			struct sdom_mapping *e = &v->shm->maps[r][i];

			if (entry_len(e) && entry_owner(e) == SDOM_ORPHAN) {
				/* Killed after this store, this slot's reap makes it an orphan again. */
				__atomic_store_n(&e->owner, (uint16_t)(v->s->slot | SDOM_CLAIMED), __ATOMIC_RELAXED);
				mp_crash_point();
				any = true;
			}
		}
	return any;
}

/* What else may hold IOVAs of a dead map's range: at most this many ranges are looked at. */
#define HOLDS_MAX 256u

struct holds {
	unsigned n;
	bool overflow;
	uint64_t start[HOLDS_MAX], end[HOLDS_MAX];
};

static void holds_add(struct holds *h, uint64_t start, uint64_t len, uint64_t lo, uint64_t hi)
{
	if (start >= hi || start + len <= lo)
		return;
	if (h->n == HOLDS_MAX) {
		h->overflow = true;
		return;
	}
	h->start[h->n] = start;
	h->end[h->n++] = start + len;
}

/*
 * The ranges in [lo, hi) that something but @self holds: an unmap's record
 * in the journal (a deferred unmap queued, a strict one being posted:
 * theirs to give back), another map in flight (a page a survivor's unmap
 * gave back and another map took again).
 */
static void holds_find(struct mp_dview *v, const struct sdom_mapping *self, uint64_t lo, uint64_t hi,
		       struct holds *h)
{
	h->n = 0;
	h->overflow = false;
	for (unsigned r = 0; r < MP_MAX_PROCS; r++)
		for (unsigned i = 0; i < SDOM_MAPS_PER_SLOT; i++) {
			const struct sdom_mapping *e = &v->shm->maps[r][i];
			uint64_t len = entry_len(e);

			if (e != self && len)
				holds_add(h, entry_iova(e), len, lo, hi);
		}
	for (uint32_t i = 0; i <= v->shm->journal_mask; i++) {
		const struct sdom_piece *p = &v->journal[i];

		if (p->len && !(p->flags & SDOM_TABLE))
			holds_add(h, p->iova, p->len, lo, hi);
	}
}

static bool held(const struct mp_dview *v, const struct holds *h, uint64_t iova)
{
	/* A registration's window is untranslated by design: its units name it. */
	if (atomic_load_explicit(&v->owners[(iova - DOMAIN_IOVA_BASE) >> SDOM_UNIT_SHIFT], memory_order_relaxed))
		return true;
	for (unsigned i = 0; i < h->n; i++)
		if (iova >= h->start[i] && iova < h->end[i])
			return true;
	return false;
}

/*
 * The pages of @e's range that are taken, translate nothing and are held
 * by nothing else: given back, a run at a time. Killed midway, the next
 * claimer finds the pages given back clear.
 */
static void give_back_untranslated(struct mp_dview *v, const struct sdom_mapping *e)
{
	uint64_t lo = MAX(entry_iova(e), DOMAIN_IOVA_BASE);
	uint64_t hi = MIN(entry_iova(e) + entry_len(e), DOMAIN_IOVA_BASE + v->shm->iova_pages * SZ_4K);
	uint64_t run = 0, given = 0;
	struct holds *h = fi_malloc(sizeof(*h));

	if (!h)
		return; /* no memory to look: the range stays taken */
	holds_find(v, e, lo, hi, h);
	if (h->overflow) {
		log_debug("shared domain: a dead process's map overlaps more than %u other ranges: left taken",
			  HOLDS_MAX);
		free(h);
		return;
	}
	for (uint64_t at = lo; at <= hi; at += SZ_4K) {
		bool give = at < hi && sdom_bit(v->iova_map, (at - DOMAIN_IOVA_BASE) / SZ_4K) &&
			    !iommu_domain_maps(v->dom, iova_make(at)) && !held(v, h, at);

		if (give) {
			run += SZ_4K;
			continue;
		}
		if (run) {
			/* What the dead map told the oracle it was mapping there: never mapped. */
			if (v->shadow)
				sdom_shadow_clear(v, at - run, run);
			sdom_iova_free_locked(v, iova_make(at - run), run);
			given += run;
			run = 0;
		}
	}
	free(h);
	if (given)
		log_debug("shared domain: %#llx bytes of IOVA a dead process's map took given back",
			  (unsigned long long)given);
}

void sdom_maps_release(struct mp_dview *v)
{
	unsigned mine = v->s->slot | SDOM_CLAIMED;

	for (unsigned r = 0; r < MP_MAX_PROCS; r++)
		for (unsigned i = 0; i < SDOM_MAPS_PER_SLOT; i++) {
			struct sdom_mapping *e = &v->shm->maps[r][i];

			if (!entry_len(e) || entry_owner(e) != mine)
				continue;
			give_back_untranslated(v, e);
			__atomic_store_n(&e->len, 0, __ATOMIC_RELEASE);
			mp_crash_point();
		}
}
