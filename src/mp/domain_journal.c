/* SPDX-License-Identifier: MIT */
/*
 * domain_journal.c - a shared domain's journal of unmaps in flight: the
 * pieces a process cleared from the IO page table whose invalidation has
 * not yet reached every process, and what they named (heap pages held,
 * IOVAs taken, a detached table). An entry is there exactly while its
 * hold is (domain.h): recorded before the invalidation is posted,
 * released step by step after it, each step counted in the entry so that
 * a release killed at any instruction is resumed once and only once. The
 * reap of a dead process makes its entries orphans; the next poster of
 * an invalidation claims them, makes it an invalidation of everything,
 * and releases them. All of it under the share's lock; the holds and
 * IOVAs themselves are domain_space.c's.
 */
#include <errno.h>

#include "base/compiler.h"
#include "base/error.h"
#include "iommu/iommu.h"
#include "mp/domain.h"

/* ---- places ---- */

/* Where the entry keyed @key (a piece's IOVA, a table's PA) may go: SDOM_PROBE places from its hash. */
static uint32_t journal_home(const struct mp_domain_shm *shm, uint64_t key)
{
	return (uint32_t)(((key >> 12) * UINT64_C(0x9e3779b97f4a7c15)) >> 32) & shm->journal_mask;
}

/* This slot's entry of [iova | pa, +len) (@flags' SDOM_TABLE alike; a table's by @pa), or NULL. Needs the lock. */
struct sdom_piece *sdom_journal_find(struct mp_dview *v, uint64_t key, uint64_t iova, uint64_t pa, uint64_t len,
				       unsigned flags)
{
	uint32_t at = journal_home(v->shm, key);

	for (uint32_t i = 0; i < SDOM_PROBE; i++) {
		struct sdom_piece *e = &v->journal[(at + i) & v->shm->journal_mask];

		/* A table is its page: @iova is where a preview saw it, which its free does not know. */
		if (e->len == len && e->owner == v->s->slot && e->pa == pa &&
		    (e->flags & SDOM_TABLE) == (flags & SDOM_TABLE) && ((flags & SDOM_TABLE) || e->iova == iova))
			return e;
	}
	return NULL;
}

bool sdom_journal_names_table(struct mp_dview *v, uint64_t table_pa)
{
	uint32_t at = journal_home(v->shm, table_pa);

	for (uint32_t i = 0; i < SDOM_PROBE; i++) {
		const struct sdom_piece *e = &v->journal[(at + i) & v->shm->journal_mask];

		if (e->len && (e->flags & SDOM_TABLE) && e->pa == table_pa)
			return true;
	}
	return false;
}

/* Record [iova | pa, +len) in one of the first @probe places from its key's: -ENOSPC. Needs the lock. */
int sdom_journal_add(struct mp_dview *v, uint64_t key, uint64_t iova, uint64_t pa, uint64_t len, unsigned flags,
		       uint32_t probe)
{
	uint32_t at = journal_home(v->shm, key);

	for (uint32_t i = 0; i < probe; i++) {
		struct sdom_piece *e = &v->journal[(at + i) & v->shm->journal_mask];

		if (e->len)
			continue;
		v->shm->writers[v->s->slot / 64] |= UINT64_C(1) << (v->s->slot % 64);
		e->iova = iova;
		e->pa = pa;
		e->owner = (uint16_t)v->s->slot;
		e->flags = (uint16_t)flags;
		e->done = 0;
		mp_crash_point();
		e->len = len; /* the commit */
		mp_crash_point();
		return 0;
	}
	return -ENOSPC;
}

/* ---- releases, resumed by whoever claims an entry ---- */

/*
 * An unmapped piece goes: its heap pages' holds, then its IOVA pages (when
 * @free_iova), a step each. Its journal entry @e (NULL: not recorded)
 * counts half-steps, so that a release killed anywhere is resumed by
 * whoever claims the entry and takes every step exactly once: done = 2k
 * says k steps are taken; done = 2k + 1 says step k has begun and may be
 * taken. Only the lock's holder is ever inside a step, and the lock's
 * next taker settles it before anything else changes the counts
 * (sdom_steps_repair()): an IOVA step is taken when its page's bit is
 * clear; a hold step when the page's refs differ from the witness stored
 * before it. The entry goes last. Needs the lock.
 */
static void release_locked(struct mp_dview *v, struct sdom_piece *e, iova_t iova, pa_t pa, uint64_t len,
			   bool free_iova)
{
	uint64_t first, last, holds, steps;

	sdom_pages_of(v->s, pa, len, &first, &last);
	/* A registration's window: IOVA steps only (none when it keeps them: its unhold frees them). */
	holds = (e ? e->flags & SDOM_FOREIGN : !sdom_in_heap(v->s, pa_val(pa), len)) ? 0 : last - first + 1;
	steps = holds + (free_iova ? len / SZ_4K : 0);
	/* A step left begun (no repair could settle it) counts as taken: held or taken until the domain goes, never twice. */
	for (uint64_t k = e ? (e->done + 1) / 2 : 0; k < steps; k++) {
		if (e) {
			if (k < holds) {
				v->shm->step_page = (uint32_t)(first + k);
				v->shm->step_refs = v->refs[first + k];
				mp_crash_point();
			}
			e->done = (uint32_t)(2 * k + 1);
			mp_crash_point();
		}
		if (k < holds)
			sdom_put_page_locked(v, first + k);
		else
			sdom_iova_free_locked(v, iova_add(iova, (k - holds) * SZ_4K), SZ_4K);
		if (e) {
			e->done = (uint32_t)(2 * k + 2);
			mp_crash_point();
		}
	}
	if (e) {
		e->len = 0;
		mp_crash_point();
	}
}

/*
 * The step @e has begun, taken or not: its half-step made whole either way
 * (a table's: erased once freed). @block_pa: the domain's block. Needs the lock.
 */
static void step_settle(struct mp_domain_shm *shm, struct sdom_piece *e, uint64_t block_pa)
{
	const uint64_t *iova_map = (const uint64_t *)(const void *)((const uint8_t *)shm + shm->iova_map_off);
	const uint64_t *pool_map = (const uint64_t *)(const void *)((const uint8_t *)shm + shm->pool_map_off);
	const uint32_t *refs = (const uint32_t *)(const void *)((const uint8_t *)shm + shm->refs_off);
	uint64_t k = e->done / 2, holds = e->flags & SDOM_FOREIGN ? 0 : ((e->pa & (SZ_4K - 1)) + e->len - 1) / SZ_4K + 1;
	bool taken;

	if (e->flags & SDOM_TABLE) {
		uint64_t page = (e->pa - block_pa - shm->pool_off) / SZ_4K;

		/* Freed: the entry's erasure was all that was left. Not yet: begun it stays, and is resumed. */
		if (e->pa < block_pa + shm->pool_off || page >= shm->pool_tables || !sdom_bit(pool_map, page)) {
			e->len = 0;
			mp_crash_point();
		}
		return;
	}
	if (k < holds) {
		taken = shm->step_page < shm->heap_pages && refs[shm->step_page] != shm->step_refs;
	} else {
		uint64_t page = (e->iova - DOMAIN_IOVA_BASE) / SZ_4K + (k - holds);

		taken = e->iova < DOMAIN_IOVA_BASE || page >= shm->iova_pages || !sdom_bit(iova_map, page);
	}
	e->done = (uint32_t)(2 * k + (taken ? 2 : 0));
	mp_crash_point();
}

void sdom_steps_repair(struct mp_heap *h)
{
	if (!h->mem)
		return;
	for (unsigned i = 0; i < MP_MAX_DOMAINS; i++) {
		const struct mp_domain_rec *r = &h->c->domains[i];
		struct mp_domain_shm *shm;
		struct sdom_piece *j;
		unsigned order;
		uint8_t owner;

		if (r->grain == MP_NO_GRAIN || mp_heap_block(h, r->grain, &order, &owner))
			continue;
		shm = (struct mp_domain_shm *)(void *)(h->mem + (r->grain << MP_GRAIN_SHIFT));
		if (shm->magic != DOMAIN_MAGIC || shm->heap_pages != mp_heap_pages(h->c->heap_size))
			continue;
		j = (struct sdom_piece *)(void *)((uint8_t *)shm + shm->journal_off);
		for (uint32_t e = 0; e <= shm->journal_mask; e++)
			if (j[e].len && (j[e].done & 1))
				step_settle(shm, &j[e], h->c->heap_pa + (r->grain << MP_GRAIN_SHIFT));
	}
}

void sdom_pa_release(void *arg, iova_t iova, pa_t pa, uint64_t len, bool free_iova)
{
	struct mp_dview *v = arg;

	if (!len || mp_lock(&v->s->h))
		return; /* unrecoverable: held until the domain goes */
	release_locked(v, sdom_journal_find(v, iova_val(iova), iova_val(iova), pa_val(pa), len, 0), iova, pa, len, free_iova);
	mp_unlock(&v->s->h);
}

/*
 * The record of the same piece by another process, not yet released
 * (its release begun means the piece was cleared, which no preview then
 * finds), or NULL. Needs the lock.
 */
static struct sdom_piece *journal_other(struct mp_dview *v, uint64_t iova, uint64_t pa, uint64_t len)
{
	uint32_t at = journal_home(v->shm, iova);

	for (uint32_t i = 0; i < SDOM_PROBE; i++) {
		struct sdom_piece *e = &v->journal[(at + i) & v->shm->journal_mask];

		if (e->len == len && e->iova == iova && e->pa == pa && !(e->flags & SDOM_TABLE) &&
		    e->owner != v->s->slot && !e->done)
			return e;
	}
	return NULL;
}

/* The record of a dead process's slot (or an orphan's), not claimed by a live one: whether it may be taken over. */
static bool owner_gone(struct mp_dview *v, const struct sdom_piece *e)
{
	return e->owner == SDOM_ORPHAN || (e->owner < MP_MAX_PROCS && mp_slot_exited(&v->s->c->slots[e->owner]));
}

/* A dead process's record @e made this slot's, @flags its own: one store of the owner, the slot marked a writer first. */
static void journal_take(struct mp_dview *v, struct sdom_piece *e, unsigned flags)
{
	v->shm->writers[v->s->slot / 64] |= UINT64_C(1) << (v->s->slot % 64);
	e->flags = (uint16_t)flags;
	mp_crash_point();
	e->owner = (uint16_t)v->s->slot; /* killed after, this slot's reap makes it an orphan again */
	mp_crash_point();
}

bool sdom_journal_take_table(struct mp_dview *v, uint64_t table_pa)
{
	uint32_t at = journal_home(v->shm, table_pa);

	for (uint32_t i = 0; i < SDOM_PROBE; i++) {
		struct sdom_piece *e = &v->journal[(at + i) & v->shm->journal_mask];

		/* The same table, recorded by a dead unmap that had not detached it yet: this unmap's now. */
		if (e->len && e->pa == table_pa && (e->flags & SDOM_TABLE) && !e->done && e->owner != v->s->slot &&
		    owner_gone(v, e)) {
			journal_take(v, e, e->flags);
			return true;
		}
	}
	return false;
}

int sdom_pa_pending(void *arg, iova_t iova, pa_t pa, uint64_t len, unsigned how)
{
	struct mp_dview *v = arg;
	/* A deferred piece leaves half the places to strict ones, which have no way out but to go unrecorded. */
	uint32_t probe = how & IOMMU_PENDING_DEFERRED ? SDOM_PROBE / 2 : SDOM_PROBE;
	unsigned flags = (how & IOMMU_PENDING_KEEP_IOVA ? SDOM_KEEP_IOVA : 0) |
			 (sdom_in_heap(v->s, pa_val(pa), len) ? 0 : SDOM_FOREIGN);
	struct sdom_piece *e;
	int ret;

	if (!len || mp_lock(&v->s->h))
		return -ENOSPC;
	/*
	 * A piece still mapped that a dead process's unmap recorded before it
	 * could clear it (a survivor unmapping what the dead left, before any
	 * claim): taken over, so that it is released once, by this unmap. One
	 * a live claimer holds, or a live process records (two unmaps of one
	 * range at once, a misuse), is theirs to release: -EALREADY.
	 */
	e = journal_other(v, iova_val(iova), pa_val(pa), len);
	if (e && owner_gone(v, e)) {
		journal_take(v, e, flags);
		mp_unlock(&v->s->h);
		return 0;
	}
	if (e) {
		mp_unlock(&v->s->h);
		return -EALREADY;
	}
	/* No room: not recorded; a death before its release leaves it held until the domain goes. */
	ret = sdom_journal_add(v, iova_val(iova), iova_val(iova), pa_val(pa), len, flags, probe);
	mp_unlock(&v->s->h);
	return ret;
}

void sdom_journal_orphan(struct mp_domain_shm *shm, unsigned slot)
{
	struct sdom_piece *j = (struct sdom_piece *)(void *)((uint8_t *)shm + shm->journal_off);
	_Atomic uint64_t *pend = (_Atomic uint64_t *)(void *)((uint8_t *)shm + shm->pend_off);

	/* Pool pages it took and had not said hung: compare-and-swap, as a detacher may clear the word meanwhile. */
	for (uint32_t i = 0; i < shm->pool_tables; i++) {
		uint64_t w = atomic_load_explicit(&pend[i], memory_order_relaxed);

		if (!(w & SDOM_PEND_TAKEN) || (SDOM_PEND_OWNER(w) & ~SDOM_CLAIMED) != slot)
			continue;
		__atomic_store_n(&shm->orphans, 1, __ATOMIC_RELAXED);
		mp_crash_point();
		atomic_compare_exchange_strong_explicit(&pend[i], &w, SDOM_PEND_REOWN(w, SDOM_ORPHAN),
							memory_order_relaxed, memory_order_relaxed);
		mp_crash_point();
	}
	for (uint32_t i = 0; i <= shm->journal_mask; i++)
		if (j[i].len && (j[i].owner & ~SDOM_CLAIMED) == slot) {
			/* The flag before the first: killed between, the next claim looks for nothing, harmlessly. */
			__atomic_store_n(&shm->orphans, 1, __ATOMIC_RELAXED);
			mp_crash_point();
			j[i].owner = SDOM_ORPHAN; /* one store: killed anywhere, each entry is the one or the other */
			mp_crash_point();
		}
	/* Its maps in flight, and its claims of others': the next claim gives back what they took and did not map. */
	(void)sdom_maps_orphan(shm, slot);
	/* None left that is the slot's: whoever takes the slot next starts afresh. */
	shm->writers[slot / 64] &= ~(UINT64_C(1) << (slot % 64));
	mp_crash_point();
}

/* The shadow's words of [iova, +len): nothing mapped. The IOVAs are still taken: no other map has them. */
void sdom_shadow_clear(struct mp_dview *v, uint64_t iova, uint64_t len)
{
	for (uint64_t off = 0; off < len; off += SZ_4K) {
		uint64_t page = (iova + off - DOMAIN_IOVA_BASE) / SZ_4K;

		if (iova + off >= DOMAIN_IOVA_BASE && page < v->shm->iova_pages)
			atomic_store_explicit(&v->shadow[page], 0, memory_order_release);
	}
}

/*
 * Whether a process that recorded entries died and was not reaped yet (its
 * entries are still its own: the reap makes them orphans). Needs the lock.
 * A flush asks this, and every claim (each strict unmap) looks the same
 * way: one kill(pid, 0) per slot that recorded since its last reap, not a
 * read of /proc.
 */
static bool dead_writer(struct mp_dview *v)
{
	for (unsigned i = 0; i < MP_MAX_PROCS; i++)
		if (i != v->s->slot && (v->shm->writers[i / 64] >> (i % 64) & 1) && mp_slot_exited(&v->s->c->slots[i]))
			return true;
	return false;
}

bool sdom_orphans_waiting(void *arg)
{
	struct mp_dview *v = arg;
	bool any;

	if (__atomic_load_n(&v->shm->orphans, __ATOMIC_RELAXED))
		return true;
	if (mp_lock(&v->s->h))
		return false;
	any = dead_writer(v);
	mp_unlock(&v->s->h);
	return any;
}

bool sdom_orphans_claim(struct mp_dview *v)
{
	struct mp_domain_shm *shm = v->shm;
	bool any = false;

	if (mp_lock(&v->s->h))
		return false;
	/*
	 * A writer that died and was not reaped yet (the owner's watch is not
	 * instant, and a share without an owner reaps when asked): reaped now,
	 * so that this invalidation of everything frees what it left.
	 */
	for (unsigned i = 0; i < MP_MAX_PROCS; i++)
		if (i != v->s->slot && (shm->writers[i / 64] >> (i % 64) & 1) && mp_slot_exited(&v->s->c->slots[i]))
			mp_reap_slot(&v->s->h, i); /* sdom_journal_orphan() sets shm->orphans */
	if (shm->orphans) {
		for (uint32_t i = 0; i <= shm->journal_mask; i++)
			if (v->journal[i].len && v->journal[i].owner == SDOM_ORPHAN) {
				/* Killed after this store, this slot's reap makes it an orphan again. */
				v->journal[i].owner = (uint16_t)(v->s->slot | SDOM_CLAIMED);
				mp_crash_point();
				any = true;
			}
		for (uint32_t i = 0; i < shm->pool_tables; i++) {
			uint64_t w = atomic_load_explicit(&v->pend[i], memory_order_relaxed);

			if ((w & SDOM_PEND_TAKEN) && SDOM_PEND_OWNER(w) == SDOM_ORPHAN &&
			    atomic_compare_exchange_strong_explicit(&v->pend[i], &w,
								    SDOM_PEND_REOWN(w, v->s->slot | SDOM_CLAIMED),
								    memory_order_relaxed, memory_order_relaxed)) {
				mp_crash_point();
				any = true;
			}
		}
		any |= sdom_maps_claim(v);
		__atomic_store_n(&shm->orphans, 0, __ATOMIC_RELAXED);
		mp_crash_point();
	}
	mp_unlock(&v->s->h);
	return any;
}

/* Pool page of the table entry @e names, or NULL if none does. */
static void *entry_table(const struct mp_dview *v, const struct sdom_piece *e)
{
	uint64_t off = pa_val(v->s->pa) + (uint64_t)(v->pool - v->s->heap);
	uint64_t page = (e->pa - off) / SZ_4K;

	return e->pa >= off && page < v->shm->pool_tables ? v->pool + page * SZ_4K : NULL;
}

void sdom_orphans_unreach(struct mp_dview *v)
{
	if (mp_lock(&v->s->h))
		return;
	/* Tables first: one that hangs is left, before a record's detach below takes it out of reach. */
	sdom_tables_unreach(v);
	for (uint32_t i = 0; i <= v->shm->journal_mask; i++) {
		const struct sdom_piece *e = &v->journal[i];
		void *t;

		/* A release begun followed an invalidation, which followed the clear. */
		if (!e->len || e->owner != (v->s->slot | SDOM_CLAIMED) || e->done)
			continue;
		if (!(e->flags & SDOM_TABLE))
			iommu_domain_clear_recorded(v->dom, iova_make(e->iova), pa_make(e->pa), e->len);
		else if ((t = entry_table(v, e)) && SDOM_TABLE_LEVEL_OF(e->flags) >= 0) {
			iommu_domain_detach_recorded(v->dom, t, iova_make(e->iova), SDOM_TABLE_LEVEL_OF(e->flags));
			/* Out of the tree, this record's to free: no claim of a pending word may take it too. */
			sdom_table_unpend_locked(v, t);
		}
	}
	mp_unlock(&v->s->h);
}

void sdom_orphans_release(struct mp_dview *v)
{
	struct mp_domain_shm *shm = v->shm;

	if (mp_lock(&v->s->h))
		return;
	for (uint32_t i = 0; i <= shm->journal_mask; i++) {
		struct sdom_piece *e = &v->journal[i];

		if (!e->len || e->owner != (v->s->slot | SDOM_CLAIMED))
			continue;
		if (e->flags & SDOM_TABLE) {
			uint64_t page = (e->pa - pa_val(v->s->pa) - (uint64_t)(v->pool - v->s->heap)) / SZ_4K;

			/*
			 * The table's counter, at most once: begun first, so that a
			 * resumed release does not count it again (a kill between
			 * leaves it one high; the stats count the pool's pages).
			 */
			if (!e->done) {
				e->done = 1;
				mp_crash_point();
				atomic_fetch_sub_explicit(&shm->cnt.nr_tables, 1, memory_order_relaxed);
			}
			sdom_table_release_locked(v, e, page);
			continue;
		}
		/* What the dead process's unmap had not taken out of the oracle's shadow yet: before any IOVA goes. */
		if (v->shadow && !e->done)
			sdom_shadow_clear(v, e->iova, e->len);
		/* Resumed where a claimer, or the dead process itself, was killed in its release. */
		release_locked(v, e, iova_make(e->iova), pa_make(e->pa), e->len, !(e->flags & SDOM_KEEP_IOVA));
	}
	/* After: a dead map's undo kept its IOVAs for the map to give back, which its record now does. */
	sdom_maps_release(v);
	mp_unlock(&v->s->h);
}
