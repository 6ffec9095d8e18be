/* SPDX-License-Identifier: MIT */
/*
 * domain_space.c - what a shared domain's block holds, and hands out to
 * the processes' views: IOVAs (a bitmap, first fit), page-table pages (a
 * bitmap over the pool), and the count, per heap page, of the IOVA pages
 * that map it, with the heap's sum of those counts, which keeps memory
 * freed while mapped from anyone else (MP_LENDER_DOMAINS). All of it
 * under the share's lock; what each change stores, and what a holder
 * killed between two stores leaves, is said where it is done.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "base/compiler.h"
#include "base/ctx.h"
#include "base/error.h"
#include "base/log.h"
#include "iommu/iommu.h"
#include "mp/domain.h"

/* ---- the block ---- */

/*
 * Entries of the journal: room for eight flush batches of deferred unmaps
 * in flight (threads of processes), so that one seldom finds no room
 * (it is then flushed at once), and for the strict unmaps of every slot.
 */
static uint64_t journal_entries(uint32_t flags, uint32_t flush_batch)
{
	uint64_t want = flags & IOVM_DOMAIN_DEFERRED ? 8 * (uint64_t)(flush_batch ? flush_batch : 256) : 0;
	uint64_t n = SDOM_JOURNAL_MIN;

	while (n < want && n < SDOM_JOURNAL_MAX)
		n <<= 1;
	return n;
}

int sdom_layout(const struct mp_space *s, const struct iovm_share_domain_params *p, struct sdom_layout *l)
{
	uint64_t iova_size = p && p->iova_size ? p->iova_size : MAX(4 * s->heap_size, (uint64_t)SZ_1G);
	uint64_t tables = p && p->tables ? p->tables : 64 + 4 * (align_up(s->heap_size, SZ_2M) / SZ_2M);

	if (!is_aligned(iova_size, SZ_4K) || iova_size > (UINT64_C(1) << 48) - DOMAIN_IOVA_BASE)
		return err_inval("iova_size is not a multiple of 4 KiB below 2^48 - 4 GiB");
	if (tables < 4 || tables > (UINT64_C(1) << 20))
		return err_inval("tables below 4 (a walk needs one per level) or above 2^20");
	if (p && ((p->flags & ~IOVM_DOMAIN_DEFERRED) || p->flush_batch > 65536))
		return err_inval("flags other than IOVM_DOMAIN_DEFERRED, or flush_batch above 65536");
	l->flags = p ? p->flags : 0;
	l->flush_batch = p ? p->flush_batch : 0;
	l->flush_timeout_us = p ? p->flush_timeout_us : 0;
	l->iova_pages = iova_size / SZ_4K;
	l->tables = (uint32_t)tables;
	l->journal_off = align_up(sizeof(struct mp_domain_shm), CACHE_LINE_SIZE);
	l->journal_entries = journal_entries(l->flags, l->flush_batch);
	l->iova_map_off = l->journal_off + l->journal_entries * sizeof(struct sdom_piece);
	/*
	 * The oracle's shadow, a word per IOVA page, when the maker checks its
	 * devices' accesses, and it takes no more than an eighth of the heap.
	 */
	l->shadow_off = s->ctx->cfg.oracle && l->iova_pages * sizeof(uint32_t) <= s->heap_size / 8 ? l->iova_map_off : 0;
	if (l->shadow_off)
		l->iova_map_off += align_up(l->iova_pages * sizeof(uint32_t), 8);
	l->pool_map_off = l->iova_map_off + align_up(l->iova_pages, 64) / 8;
	l->refs_off = l->pool_map_off + align_up(tables, 64) / 8;
	l->heap_pages = align_up(s->heap_size, SZ_4K) / SZ_4K;
	l->pool_off = align_up(l->refs_off + l->heap_pages * sizeof(uint32_t), SZ_4K);
	l->size = l->pool_off + (uint64_t)l->tables * SZ_4K;
	return 0;
}

void sdom_view_point(struct mp_dview *v)
{
	uint8_t *base = v->s->heap + (v->grain << MP_GRAIN_SHIFT);

	v->shm = (struct mp_domain_shm *)base;
	v->iova_map = (uint64_t *)(base + v->shm->iova_map_off);
	v->pool_map = (uint64_t *)(base + v->shm->pool_map_off);
	v->refs = (uint32_t *)(void *)(base + v->shm->refs_off);
	v->journal = (struct sdom_piece *)(void *)(base + v->shm->journal_off);
	v->shadow = v->shm->shadow_off ? (_Atomic uint32_t *)(void *)(base + v->shm->shadow_off) : NULL;
	v->pool = base + v->shm->pool_off;
}

/* Whether bit @i of @map is set; set or clear it (one store: what a dead holder leaves is a bit). */
static bool bit(const uint64_t *map, uint64_t i)
{
	return map[i / 64] >> (i % 64) & 1;
}

static void bits_set(uint64_t *map, uint64_t from, uint64_t n, bool on)
{
	for (uint64_t i = from; i < from + n; i++) {
		if (on)
			map[i / 64] |= UINT64_C(1) << (i % 64);
		else
			map[i / 64] &= ~(UINT64_C(1) << (i % 64));
		mp_crash_point();
	}
}

/* The first set bit in [from, to), or @to. */
static uint64_t next_set(const uint64_t *map, uint64_t from, uint64_t to)
{
	while (from < to) {
		uint64_t w = map[from / 64] >> (from % 64);

		if (w)
			return MIN(from + (uint64_t)__builtin_ctzll(w), to);
		from = align_down(from, 64) + 64;
	}
	return to;
}

/* ---- the journal's places ---- */

/* Where the entry keyed @key (a piece's IOVA, a table's PA) may go: SDOM_PROBE places from its hash. */
static uint32_t journal_home(const struct mp_domain_shm *shm, uint64_t key)
{
	return (uint32_t)(((key >> 12) * UINT64_C(0x9e3779b97f4a7c15)) >> 32) & shm->journal_mask;
}

/* This slot's entry of [iova | pa, +len) (@flags' SDOM_TABLE alike), or NULL. Needs the lock. */
static struct sdom_piece *journal_find(struct mp_dview *v, uint64_t key, uint64_t iova, uint64_t pa, uint64_t len,
				       unsigned flags)
{
	uint32_t at = journal_home(v->shm, key);

	for (uint32_t i = 0; i < SDOM_PROBE; i++) {
		struct sdom_piece *e = &v->journal[(at + i) & v->shm->journal_mask];

		if (e->len == len && e->owner == v->s->slot && e->iova == iova && e->pa == pa &&
		    (e->flags & SDOM_TABLE) == (flags & SDOM_TABLE))
			return e;
	}
	return NULL;
}

/* Record [iova | pa, +len) in one of the first @probe places from its key's: -ENOSPC. Needs the lock. */
static int journal_add(struct mp_dview *v, uint64_t key, uint64_t iova, uint64_t pa, uint64_t len, unsigned flags,
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

/* ---- the table pool: pt_source of a view ---- */

void *sdom_table_alloc(void *arg)
{
	struct mp_dview *v = arg;
	void *t = NULL;

	if (mp_lock(&v->s->h))
		return NULL;
	for (uint64_t w = 0; w < align_up(v->shm->pool_tables, 64) / 64 && !t; w++) {
		uint64_t i;

		if (v->pool_map[w] == UINT64_MAX)
			continue;
		i = w * 64 + (uint64_t)__builtin_ctzll(~v->pool_map[w]);
		if (i >= v->shm->pool_tables)
			break;
		bits_set(v->pool_map, i, 1, true);
		t = v->pool + i * SZ_4K;
	}
	mp_unlock(&v->s->h);
	if (!t)
		err_detail(-ENOMEM, IOVM_LOG_DEBUG, "shared domain: all %u page-table pages are in use",
			   v->shm->pool_tables);
	return t;
}

/* The PA of pool page @t: the same in every process. */
static uint64_t table_pa(const struct mp_dview *v, const void *t)
{
	return pa_val(v->s->pa) + (uint64_t)((const uint8_t *)t - v->s->heap);
}

/* Pool page @i goes back. Needs the lock. */
static void table_free_locked(struct mp_dview *v, uint64_t i)
{
	if (IOVM_WARN_ON(i >= v->shm->pool_tables || !bit(v->pool_map, i)))
		return;
	bits_set(v->pool_map, i, 1, false);
}

/*
 * A detached table's pool page @i goes back, and its entry @e (NULL: not
 * recorded) with it: begun (done = 1), freed, erased; a death between is
 * settled by sdom_steps_repair() from the page's bit. Needs the lock.
 */
static void table_release_locked(struct mp_dview *v, struct sdom_piece *e, uint64_t i)
{
	if (e) {
		e->done = 1;
		mp_crash_point();
	}
	table_free_locked(v, i);
	mp_crash_point();
	if (e) {
		e->len = 0;
		mp_crash_point();
	}
}

void sdom_table_free(void *arg, void *t)
{
	struct mp_dview *v = arg;
	struct sdom_piece *e;

	if (mp_lock(&v->s->h))
		return; /* unrecoverable: the page stays taken */
	e = journal_find(v, table_pa(v, t), 0, table_pa(v, t), SZ_4K, SDOM_TABLE);
	table_release_locked(v, e, (uint64_t)((uint8_t *)t - v->pool) / SZ_4K);
	mp_unlock(&v->s->h);
}

void sdom_table_pending(void *arg, void *t)
{
	struct mp_dview *v = arg;

	if (mp_lock(&v->s->h))
		return;
	/* No room: not recorded; a death before its free leaves it taken until the domain goes. */
	(void)journal_add(v, table_pa(v, t), 0, table_pa(v, t), SZ_4K, SDOM_TABLE, SDOM_PROBE);
	mp_unlock(&v->s->h);
}

/* ---- iommu_shared_ops ---- */

/* A forked child's view is its parent's: the heap and the lock are not in the child. */
int sdom_not_forked(const struct mp_dview *v)
{
	if (v->s->fork_gen != mp_fork_gen())
		return err_detail(-EPERM, IOVM_LOG_DEBUG, "a shared domain's view from before a fork: attach, then open");
	return 0;
}

int sdom_iova_alloc(void *arg, uint64_t len, uint64_t align, iova_t *iova)
{
	struct mp_dview *v = arg;
	struct mp_domain_shm *shm = v->shm;
	uint64_t n = len / SZ_4K, a = MAX(align / SZ_4K, 1), pages;
	int ret = sdom_not_forked(v);

	if (ret)
		return ret;
	pages = shm->iova_pages;
	if (!n || n > pages)
		return err_detail(-ENOSPC, IOVM_LOG_DEBUG, "no IOVA range of %#lx bytes in the shared domain",
				  (unsigned long)len);
	ret = mp_lock(&v->s->h);
	if (ret)
		return ret;
	/*
	 * First fit, from the lowest page that may be free (every page below
	 * iova_hint is taken): IOVAs stay packed at the bottom, so that the
	 * page tables, which stay once made and come from a bounded pool,
	 * are few. A set bit met moves the candidate past it; the base is
	 * 1 GiB aligned, so an aligned page index is an aligned IOVA.
	 */
	for (uint64_t at = align_up(MIN(shm->iova_hint, pages), a); at + n <= pages;) {
		uint64_t hit = next_set(v->iova_map, at, at + n);

		if (hit == at + n) {
			bits_set(v->iova_map, at, n, true);
			if (at == shm->iova_hint)
				shm->iova_hint = at + n;
			mp_unlock(&v->s->h);
			*iova = iova_make(DOMAIN_IOVA_BASE + at * SZ_4K);
			return 0;
		}
		at = align_up(hit + 1, a);
	}
	mp_unlock(&v->s->h);
	return err_detail(-ENOSPC, IOVM_LOG_DEBUG, "no IOVA range of %#lx bytes left in the shared domain",
			  (unsigned long)len);
}

int sdom_iova_reserve(void *arg, iova_t iova, uint64_t len)
{
	struct mp_dview *v = arg;
	uint64_t at, n = len / SZ_4K;
	int ret = sdom_not_forked(v);

	if (ret)
		return ret;
	if (iova_val(iova) < DOMAIN_IOVA_BASE || (iova_val(iova) - DOMAIN_IOVA_BASE) / SZ_4K + n > v->shm->iova_pages)
		return err_detail(-EINVAL, IOVM_LOG_DEBUG, "IOVA %#lx is outside the shared domain's window",
				  (unsigned long)iova_val(iova));
	at = (iova_val(iova) - DOMAIN_IOVA_BASE) / SZ_4K;
	ret = mp_lock(&v->s->h);
	if (ret)
		return ret;
	if (next_set(v->iova_map, at, at + n) != at + n) {
		mp_unlock(&v->s->h);
		return -EEXIST;
	}
	bits_set(v->iova_map, at, n, true);
	mp_unlock(&v->s->h);
	return 0;
}

/* Needs the lock. */
static void iova_free_locked(struct mp_dview *v, iova_t iova, uint64_t len)
{
	uint64_t at = (iova_val(iova) - DOMAIN_IOVA_BASE) / SZ_4K, n = len / SZ_4K;

	if (IOVM_WARN_ON(iova_val(iova) < DOMAIN_IOVA_BASE || at + n > v->shm->iova_pages))
		return;
	IOVM_WARN_ON(next_set(v->iova_map, at, at + n) != at); /* freed whole, or a bug */
	bits_set(v->iova_map, at, n, false);
	if (at < v->shm->iova_hint)
		v->shm->iova_hint = at;
}

void sdom_iova_free(void *arg, iova_t iova, uint64_t len)
{
	struct mp_dview *v = arg;

	if (mp_lock(&v->s->h))
		return;
	iova_free_locked(v, iova, len);
	mp_unlock(&v->s->h);
}

/* Whether [pa, +len) is the shared heap's (a registration's window is not, and holds nothing). */
static bool in_heap(const struct mp_space *s, uint64_t pa, uint64_t len)
{
	return pa >= pa_val(s->pa) && pa - pa_val(s->pa) < s->heap_size && len <= s->heap_size - (pa - pa_val(s->pa));
}

/*
 * Whether [pa, +len) is in the heap and clear of every shared domain's own
 * block. Needs the lock. Free memory may be mapped, as in a private domain
 * (the heap is every process's); a domain's block is never made of memory
 * a domain maps (rec_make()).
 */
static bool pa_ok_locked(struct mp_space *s, pa_t pa, uint64_t len)
{
	uint64_t off = pa_val(pa) - pa_val(s->pa);

	if (!len || !in_heap(s, pa_val(pa), len))
		return false;
	/* Not a shared domain's block: a device that could write page tables would map anything. */
	for (unsigned i = 0; i < MP_MAX_DOMAINS; i++) {
		const struct mp_domain_rec *r = &s->c->domains[i];
		unsigned order;
		uint8_t owner;

		if (r->grain == MP_NO_GRAIN || mp_heap_block(&s->h, r->grain, &order, &owner))
			continue;
		uint64_t b = r->grain << MP_GRAIN_SHIFT, blen = MP_GRAIN << order;

		if (off + len > b && off < b + blen)
			return false;
	}
	return true;
}

/* The heap pages [*first, *last] that [pa, +len) touches. */
static void pages_of(const struct mp_space *s, pa_t pa, uint64_t len, uint64_t *first, uint64_t *last)
{
	uint64_t off = pa_val(pa) - pa_val(s->pa);

	*first = off / SZ_4K;
	*last = (off + len - 1) / SZ_4K;
}

/* A count of mp_heap.maps or of a domain's refs: changed under the lock, read without it too. */
static void count_add(uint32_t *n, int delta)
{
	__atomic_store_n(n, *n + (uint32_t)delta, __ATOMIC_RELAXED);
}

int sdom_pa_hold(void *arg, iova_t iova, pa_t pa, uint64_t len)
{
	struct mp_dview *v = arg;
	struct mp_heap *h = &v->s->h;
	uint64_t first, last, p;
	pa_t want;
	int ret = sdom_not_forked(v);

	if (ret)
		return ret;
	/*
	 * A registration's window, at the PA its IOVAs name (sdom_reg_pa()):
	 * nothing to count, the registration holds its memory. At any other
	 * IOVA it would name memory another registration may get.
	 */
	if (pa_val(pa) >= PHYS_SHARED_REG_BASE && pa_val(pa) < PHYS_SHARED_REG_BASE + PHYS_SHARED_REG_SIZE)
		return !sdom_reg_pa(v, iova, len, &want) && pa_eq(want, pa)
			       ? 0
			       : err_detail(-EINVAL, IOVM_LOG_DEBUG,
					    "PA %#" PRIx64 " is a registration's, not at IOVA %#" PRIx64 "'s",
					    pa_val(pa), iova_val(iova));
	if ((ret = mp_lock(&v->s->h)))
		return ret;
	if (!len || !pa_ok_locked(v->s, pa, len)) {
		mp_unlock(&v->s->h);
		return err_detail(-EINVAL, IOVM_LOG_DEBUG,
				  "PA [%#" PRIx64 ", +%#" PRIx64 ") is not in the shared heap, or is a shared domain's own",
				  pa_val(pa), len);
	}
	pages_of(v->s, pa, len, &first, &last);
	for (p = first; p <= last; p++) {
		if (v->refs[p] == UINT32_MAX || h->maps[p] == UINT32_MAX)
			break;
		/* The sum first: killed between, it counts one more, which the repair sets right. */
		count_add(&h->maps[p], 1);
		mp_crash_point();
		count_add(&v->refs[p], 1);
		mp_crash_point();
	}
	if (p <= last) {
		while (p-- > first) {
			count_add(&v->refs[p], -1);
			count_add(&h->maps[p], -1);
		}
		mp_unlock(&v->s->h);
		return err_detail(-ENOSPC, IOVM_LOG_DEBUG, "heap page %#" PRIx64 " is mapped 2^32 - 1 times already",
				  pa_val(pa) + (p - first) * SZ_4K);
	}
	mp_unlock(&v->s->h);
	return 0;
}

/* What the share held of heap page @p for the domains, once none maps it: freed. Needs the lock. */
static void page_unheld(struct mp_heap *h, uint64_t p)
{
	uint64_t g = p * (SZ_4K / MP_GRAIN), end = MIN(g + SZ_4K / MP_GRAIN, h->c->ngrains);

	while (g < end) {
		uint64_t first;
		unsigned order;
		bool allocated;

		if (mp_heap_block_any(h, g, &first, &order, &allocated))
			return; /* not a heap the walk can read: the repair's business */
		if (allocated && lender_get(&h->lender[first]) == MP_LENDER_DOMAINS && !mp_domains_map(h, first, order))
			mp_heap_free_held(h, first);
		g = first + (UINT64_C(1) << order);
	}
}

/* Heap page @p's hold goes: memory freed meanwhile is freed once no domain maps it. Needs the lock. */
static void put_page(struct mp_dview *v, uint64_t p)
{
	struct mp_heap *h = &v->s->h;

	if (p >= v->shm->heap_pages || IOVM_WARN_ON(!v->refs[p] || !h->maps[p]))
		return;
	/* The domain's count first: killed between, the sum counts one more, which the repair sets right. */
	count_add(&v->refs[p], -1);
	mp_crash_point();
	count_add(&h->maps[p], -1);
	mp_crash_point();
	if (!h->maps[p] && h->c->domains_held)
		page_unheld(h, p);
}

/* The hold on [pa, +len) goes. Needs the lock. */
static void put_locked(struct mp_dview *v, pa_t pa, uint64_t len)
{
	uint64_t first, last;

	if (!in_heap(v->s, pa_val(pa), len))
		return;
	pages_of(v->s, pa, len, &first, &last);
	for (uint64_t p = first; p <= last; p++)
		put_page(v, p);
}

/* ---- the journal of unmaps in flight ---- */

void sdom_pa_put(void *arg, iova_t iova, pa_t pa, uint64_t len)
{
	struct mp_dview *v = arg;

	(void)iova;
	if (!len || mp_lock(&v->s->h))
		return; /* unrecoverable: held until the domain goes */
	put_locked(v, pa, len);
	mp_unlock(&v->s->h);
}

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

	pages_of(v->s, pa, len, &first, &last);
	/* A registration's window: IOVA steps only (none when it keeps them: its unhold frees them). */
	holds = (e ? e->flags & SDOM_FOREIGN : !in_heap(v->s, pa_val(pa), len)) ? 0 : last - first + 1;
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
			put_page(v, first + k);
		else
			iova_free_locked(v, iova_add(iova, (k - holds) * SZ_4K), SZ_4K);
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
		if (e->pa < block_pa + shm->pool_off || page >= shm->pool_tables || !bit(pool_map, page)) {
			e->len = 0;
			mp_crash_point();
		}
		return;
	}
	if (k < holds) {
		taken = shm->step_page < shm->heap_pages && refs[shm->step_page] != shm->step_refs;
	} else {
		uint64_t page = (e->iova - DOMAIN_IOVA_BASE) / SZ_4K + (k - holds);

		taken = e->iova < DOMAIN_IOVA_BASE || page >= shm->iova_pages || !bit(iova_map, page);
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
	release_locked(v, journal_find(v, iova_val(iova), iova_val(iova), pa_val(pa), len, 0), iova, pa, len, free_iova);
	mp_unlock(&v->s->h);
}

int sdom_pa_pending(void *arg, iova_t iova, pa_t pa, uint64_t len, unsigned how)
{
	struct mp_dview *v = arg;
	/* A deferred piece leaves half the places to strict ones, which have no way out but to go unrecorded. */
	uint32_t probe = how & IOMMU_PENDING_DEFERRED ? SDOM_PROBE / 2 : SDOM_PROBE;
	int ret;

	if (!len || mp_lock(&v->s->h))
		return -ENOSPC;
	/* No room: not recorded; a death before its release leaves it held until the domain goes. */
	ret = journal_add(v, iova_val(iova), iova_val(iova), pa_val(pa), len,
			  (how & IOMMU_PENDING_KEEP_IOVA ? SDOM_KEEP_IOVA : 0) |
				  (in_heap(v->s, pa_val(pa), len) ? 0 : SDOM_FOREIGN),
			  probe);
	mp_unlock(&v->s->h);
	return ret;
}

void sdom_journal_orphan(struct mp_domain_shm *shm, unsigned slot)
{
	struct sdom_piece *j = (struct sdom_piece *)(void *)((uint8_t *)shm + shm->journal_off);

	for (uint32_t i = 0; i <= shm->journal_mask; i++)
		if (j[i].len && (j[i].owner & ~SDOM_CLAIMED) == slot) {
			/* The flag before the first: killed between, the next claim looks for nothing, harmlessly. */
			__atomic_store_n(&shm->orphans, 1, __ATOMIC_RELAXED);
			mp_crash_point();
			j[i].owner = SDOM_ORPHAN; /* one store: killed anywhere, each entry is the one or the other */
			mp_crash_point();
		}
	/* None left that is the slot's: whoever takes the slot next starts afresh. */
	shm->writers[slot / 64] &= ~(UINT64_C(1) << (slot % 64));
	mp_crash_point();
}

/* The shadow's words of [iova, +len): nothing mapped. The IOVAs are still taken: no other map has them. */
static void shadow_clear(struct mp_dview *v, uint64_t iova, uint64_t len)
{
	for (uint64_t off = 0; off < len; off += SZ_4K) {
		uint64_t page = (iova + off - DOMAIN_IOVA_BASE) / SZ_4K;

		if (iova + off >= DOMAIN_IOVA_BASE && page < v->shm->iova_pages)
			atomic_store_explicit(&v->shadow[page], 0, memory_order_release);
	}
}

_Atomic uint32_t *sdom_shadow(void *arg, uint64_t *base, uint64_t *pages, uint64_t *pa_base)
{
	struct mp_dview *v = arg;

	*pa_base = pa_val(v->s->pa);
	*base = DOMAIN_IOVA_BASE;
	*pages = v->shm->iova_pages;
	return v->shadow;
}

bool sdom_pa_held(void *arg, pa_t pa)
{
	struct mp_dview *v = arg;
	uint64_t off = pa_val(pa) - pa_val(v->s->pa);

	return pa_val(pa) >= pa_val(v->s->pa) && off / SZ_4K < v->shm->heap_pages &&
	       __atomic_load_n(&v->refs[off / SZ_4K], __ATOMIC_RELAXED) > 0;
}

int sdom_reg_pa(void *arg, iova_t iova, uint64_t len, pa_t *pa)
{
	struct mp_dview *v = arg;
	uint64_t off = iova_val(iova) - DOMAIN_IOVA_BASE;

	static_assert(SDOM_REG_SPAN * MP_MAX_DOMAINS <= PHYS_SHARED_REG_SIZE, "every domain's span in the region");
	if (iova_val(iova) < DOMAIN_IOVA_BASE || off >= SDOM_REG_SPAN || len > SDOM_REG_SPAN - off)
		return -ENOSPC;
	*pa = pa_make(PHYS_SHARED_REG_BASE + (uint64_t)v->rec * SDOM_REG_SPAN + off);
	return 0;
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
		__atomic_store_n(&shm->orphans, 0, __ATOMIC_RELAXED);
		mp_crash_point();
	}
	mp_unlock(&v->s->h);
	return any;
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

			/* The stats' count, once: begun first, so that a resumed release does not count it again. */
			if (!e->done) {
				e->done = 1;
				mp_crash_point();
				atomic_fetch_sub_explicit(&shm->cnt.nr_tables, 1, memory_order_relaxed);
			}
			table_release_locked(v, e, page);
			continue;
		}
		/* What the dead process's unmap had not taken out of the oracle's shadow yet: before any IOVA goes. */
		if (v->shadow && !e->done)
			shadow_clear(v, e->iova, e->len);
		/* Resumed where a claimer, or the dead process itself, was killed in its release. */
		release_locked(v, e, iova_make(e->iova), pa_make(e->pa), e->len, !(e->flags & SDOM_KEEP_IOVA));
	}
	mp_unlock(&v->s->h);
}

bool mp_domains_map(const struct mp_heap *h, uint64_t grain, unsigned order)
{
	uint64_t first = (grain << MP_GRAIN_SHIFT) / SZ_4K;
	uint64_t last = (((grain + (UINT64_C(1) << order)) << MP_GRAIN_SHIFT) - 1) / SZ_4K;

	for (uint64_t p = first; p <= last; p++)
		if (__atomic_load_n(&h->maps[p], __ATOMIC_RELAXED))
			return true;
	return false;
}

/* The refs of record @r's domain, when it is open and made; NULL otherwise. */
static const uint32_t *rec_refs(const struct mp_heap *h, const struct mp_domain_rec *r)
{
	const struct mp_domain_shm *shm;
	unsigned order;
	uint8_t owner;

	if (!h->mem || r->grain == MP_NO_GRAIN || !sdom_rec_open(r) || mp_heap_block(h, r->grain, &order, &owner))
		return NULL;
	shm = (const struct mp_domain_shm *)(h->mem + (r->grain << MP_GRAIN_SHIFT));
	if (shm->magic != DOMAIN_MAGIC || shm->heap_pages != mp_heap_pages(h->c->heap_size))
		return NULL; /* being made: maps nothing yet */
	return (const uint32_t *)(const void *)((const uint8_t *)shm + shm->refs_off);
}

/*
 * mp_heap.maps again, as the sum of the open domains' refs: after a
 * domain went (its mappings with it), or a holder died between the two
 * counts. Each page's sum is one store: a free looking without the lock
 * never sees a page mapped by a live domain as unmapped.
 */
void sdom_maps_rebuild(struct mp_heap *h)
{
	const uint32_t *refs[MP_MAX_DOMAINS];
	unsigned n = 0;

	if (!h->mem)
		return; /* a region without a heap behind it (the crash tests): no domain, counts as set */
	for (unsigned i = 0; i < MP_MAX_DOMAINS; i++)
		if ((refs[n] = rec_refs(h, &h->c->domains[i])))
			n++;
	for (uint64_t p = 0; p < mp_heap_pages(h->c->heap_size); p++) {
		uint64_t sum = 0;

		for (unsigned i = 0; i < n; i++)
			sum += refs[i][p];
		__atomic_store_n(&h->maps[p], (uint32_t)MIN(sum, UINT32_MAX), __ATOMIC_RELAXED);
	}
	mp_crash_point();
}

/* Free what the share held for domains that no domain maps now; forget the flag when none is left. */
void sdom_held_sweep(struct mp_heap *h)
{
	bool left = false;

	if (!h->c->domains_held)
		return;
	for (uint64_t g = 0; g < h->c->ngrains;) {
		uint8_t st = h->state[g];
		uint64_t next = g + (UINT64_C(1) << (st & MP_ORDER_MASK));

		if ((st & MP_ALLOCATED) && lender_get(&h->lender[g]) == MP_LENDER_DOMAINS) {
			if (mp_domains_map(h, g, st & MP_ORDER_MASK))
				left = true;
			else
				mp_heap_free_held(h, g);
		}
		g = next;
	}
	if (!left)
		h->c->domains_held = 0;
	mp_crash_point();
}

void sdom_iova_stats(void *arg, uint64_t *allocated, uint64_t *free_pages, uint64_t *largest)
{
	struct mp_dview *v = arg;
	uint64_t run = 0, pages = v->shm->iova_pages;

	*allocated = *free_pages = *largest = 0;
	if (v->s->fork_gen != mp_fork_gen() || mp_lock(&v->s->h))
		return;
	for (uint64_t i = 0; i < pages; i++) {
		if (bit(v->iova_map, i)) {
			++*allocated;
			run = 0;
		} else {
			++*free_pages;
			run++;
			*largest = MAX(*largest, run);
		}
	}
	mp_unlock(&v->s->h);
}
