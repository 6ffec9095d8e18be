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
#include "base/sanitizer.h"
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
	l->cells_off = align_up(sizeof(struct mp_domain_shm), CACHE_LINE_SIZE);
	l->owners_off = l->cells_off + SDOM_CELLS * sizeof(struct sdom_cell);
	l->journal_off = align_up(l->owners_off + sizeof(uint16_t) * align_up(l->iova_pages, SZ_2M / SZ_4K) /
							    (SZ_2M / SZ_4K),
				  CACHE_LINE_SIZE);
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
	l->pend_off = l->pool_map_off + align_up(tables, 64) / 8;
	l->refs_off = l->pend_off + tables * sizeof(uint64_t);
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
	v->pend = (_Atomic uint64_t *)(void *)(base + v->shm->pend_off);
	v->refs = (uint32_t *)(void *)(base + v->shm->refs_off);
	v->journal = (struct sdom_piece *)(void *)(base + v->shm->journal_off);
	v->shadow = v->shm->shadow_off ? (_Atomic uint32_t *)(void *)(base + v->shm->shadow_off) : NULL;
	v->pool = base + v->shm->pool_off;
	v->owners = (_Atomic uint16_t *)(void *)(base + v->shm->owners_off);
	v->cells = (struct sdom_cell *)(void *)(base + v->shm->cells_off);
}

/* Set or clear @n bits of @map from @from (one store each: what a dead holder leaves is a bit). */
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

/* ---- the table pool: pt_source of a view ---- */

/*
 * A page for a table of entries of @level that is to hang where it spans
 * @base from: its pending word first, then its bit, so that a process
 * killed between leaves a word that a claim finds with its bit clear.
 */
void *sdom_table_alloc(void *arg, iova_t base, int level, uint64_t *cookie)
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
		if (level < PT_LEVELS - 1) {
			uint64_t pend = atomic_load_explicit(&v->pend[i], memory_order_relaxed);

			pend = SDOM_PEND_WORD(SDOM_PEND_GEN(pend) + 1, v->s->slot, level, iova_val(base));
			atomic_store_explicit(&v->pend[i], pend, memory_order_relaxed);
			mp_crash_point();
			*cookie = pend;
		}
		bits_set(v->pool_map, i, 1, true);
		t = v->pool + i * SZ_4K;
	}
	mp_unlock(&v->s->h);
	if (!t)
		err_detail(-ENOMEM, IOVM_LOG_DEBUG, "shared domain: all %u page-table pages are in use",
			   v->shm->pool_tables);
	else
		/* Freed by another process after this one's agent answered: this process's walks of it are over. */
		tsan_acquire(&v->walks_over);
	return t;
}

/* The PA of pool page @t: the same in every process. */
static uint64_t table_pa(const struct mp_dview *v, const void *t)
{
	return pa_val(v->s->pa) + (uint64_t)((const uint8_t *)t - v->s->heap);
}

/*
 * Pool page @i goes back, counted first: a census walking without a
 * section (pt_census_racy()) that may have read the page learns that it
 * went before anyone can take it again. Needs the lock.
 */
static void table_free_locked(struct mp_dview *v, uint64_t i)
{
	if (IOVM_WARN_ON(i >= v->shm->pool_tables || !sdom_bit(v->pool_map, i)))
		return;
	atomic_fetch_add_explicit(&v->shm->cnt.frees, 1, memory_order_seq_cst);
	bits_set(v->pool_map, i, 1, false);
	/* After the bit: killed between, a claim finds the word with its bit clear, and clears it. */
	sdom_table_unpend_locked(v, v->pool + i * SZ_4K);
	mp_crash_point();
}

/* Pool page @t's index. */
static uint64_t table_index(const struct mp_dview *v, const void *t)
{
	return (uint64_t)((const uint8_t *)t - v->pool) / SZ_4K;
}

void sdom_table_unpend_locked(struct mp_dview *v, void *t)
{
	atomic_fetch_and_explicit(&v->pend[table_index(v, t)], SDOM_PEND_KEEP(UINT64_MAX), memory_order_seq_cst);
}

void sdom_table_hung(void *arg, void *t, uint64_t cookie)
{
	struct mp_dview *v = arg;

	/* Unhung meanwhile (detached, and perhaps taken again): no longer this take's word. */
	atomic_compare_exchange_strong_explicit(&v->pend[table_index(v, t)], &cookie, SDOM_PEND_KEEP(cookie),
						memory_order_release, memory_order_relaxed);
}

/*
 * Before the table leaves the tree: recorded in the journal, unless a
 * record names it already (an unmap's, which records before it clears; a
 * dead process's, which a survivor detaches), so that a process killed
 * between the detach and the free leaves it to a survivor, who detaches
 * it if it still hangs and frees it after its invalidation of everything
 * (a huge leaf that replaces an emptied table, which no unmap recorded).
 * And its pending word cleared: a survivor that then finds it hanging
 * nowhere must not take it for one its dead taker never hung. Both
 * before the detaching store: a claim that reads the entry after that
 * store reads them too (the lock's release).
 */
void sdom_table_unhang(void *arg, void *t, iova_t base, int level)
{
	struct mp_dview *v = arg;

	if (mp_lock(&v->s->h))
		return; /* unrecoverable: no claim runs any more either */
	if (!sdom_journal_names_table(v, table_pa(v, t)))
		(void)sdom_journal_add(v, table_pa(v, t), iova_val(base), table_pa(v, t), SZ_4K,
				       SDOM_TABLE | SDOM_TABLE_LEVEL(level), SDOM_PROBE);
	sdom_table_unpend_locked(v, t);
	mp_crash_point();
	mp_unlock(&v->s->h);
}

/* The table count kept beside the pool (pt_counters.nr_tables), one less, never below 0: informative only. */
static void count_tables_sub(struct mp_dview *v)
{
	uint64_t n = atomic_load_explicit(&v->shm->cnt.nr_tables, memory_order_relaxed);

	while (n && !atomic_compare_exchange_weak_explicit(&v->shm->cnt.nr_tables, &n, n - 1, memory_order_relaxed,
							   memory_order_relaxed))
		;
}

void sdom_tables_unreach(struct mp_dview *v)
{
	unsigned mine = v->s->slot | SDOM_CLAIMED;

	for (uint64_t i = 0; i < v->shm->pool_tables; i++) {
		uint64_t w = atomic_load_explicit(&v->pend[i], memory_order_acquire);
		void *t = v->pool + i * SZ_4K;

		if (!(w & SDOM_PEND_TAKEN) || SDOM_PEND_OWNER(w) != mine)
			continue;
		/*
		 * Taken for good only with its bit, and then either hanging where
		 * it was taken for (its taker died before saying so: it stays) or
		 * nowhere: it never hung, as a detacher clears the word before it
		 * detaches. Nothing ever reached it; nothing can now.
		 */
		if (sdom_bit(v->pool_map, i) && !iommu_domain_table_hangs(v->dom, t, iova_make(SDOM_PEND_BASE(w)),
									   SDOM_PEND_LEVEL(w)) &&
		    atomic_load_explicit(&v->pend[i], memory_order_seq_cst) == w) {
			count_tables_sub(v);
			table_free_locked(v, i);
			continue;
		}
		atomic_compare_exchange_strong_explicit(&v->pend[i], &w, SDOM_PEND_KEEP(w), memory_order_relaxed,
							memory_order_relaxed);
		mp_crash_point();
	}
}

/*
 * A detached table's pool page @i goes back, and its entry @e (NULL: not
 * recorded) with it: begun (done = 1), freed, erased; a death between is
 * settled by sdom_steps_repair() from the page's bit. Needs the lock.
 */
void sdom_table_release_locked(struct mp_dview *v, struct sdom_piece *e, uint64_t i)
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
	e = sdom_journal_find(v, table_pa(v, t), 0, table_pa(v, t), SZ_4K, SDOM_TABLE);
	sdom_table_release_locked(v, e, table_index(v, t));
	mp_unlock(&v->s->h);
}

void sdom_table_pending(void *arg, void *t, iova_t base, int level)
{
	struct mp_dview *v = arg;

	if (mp_lock(&v->s->h))
		return;
	/*
	 * Once (an unmap whose preview failed records what it detached after:
	 * none of it was). No room: not recorded; a death before its free
	 * leaves it taken until the domain goes.
	 */
	if (!sdom_journal_find(v, table_pa(v, t), 0, table_pa(v, t), SZ_4K, SDOM_TABLE) &&
	    !sdom_journal_take_table(v, table_pa(v, t)))
		(void)sdom_journal_add(v, table_pa(v, t), iova_val(base), table_pa(v, t), SZ_4K,
				       SDOM_TABLE | SDOM_TABLE_LEVEL(level), SDOM_PROBE);
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
			sdom_map_record_locked(v, DOMAIN_IOVA_BASE + at * SZ_4K, len);
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
	sdom_map_record_locked(v, iova_val(iova), len);
	bits_set(v->iova_map, at, n, true);
	mp_unlock(&v->s->h);
	return 0;
}

/* Needs the lock. */
void sdom_iova_free_locked(struct mp_dview *v, iova_t iova, uint64_t len)
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
	sdom_iova_free_locked(v, iova, len);
	/* After the bits: killed between, a claim finds them clear. A registration's, or an unmap's: none. */
	sdom_map_erase(v, iova_val(iova), len);
	mp_unlock(&v->s->h);
}

/* Whether [pa, +len) is the shared heap's (a registration's window is not, and holds nothing). */
bool sdom_in_heap(const struct mp_space *s, uint64_t pa, uint64_t len)
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

	if (!len || !sdom_in_heap(s, pa_val(pa), len))
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
void sdom_pages_of(const struct mp_space *s, pa_t pa, uint64_t len, uint64_t *first, uint64_t *last)
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
	sdom_pages_of(v->s, pa, len, &first, &last);
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
void sdom_put_page_locked(struct mp_dview *v, uint64_t p)
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

	if (!sdom_in_heap(v->s, pa_val(pa), len))
		return;
	sdom_pages_of(v->s, pa, len, &first, &last);
	for (uint64_t p = first; p <= last; p++)
		sdom_put_page_locked(v, p);
}

void sdom_pa_put(void *arg, iova_t iova, pa_t pa, uint64_t len)
{
	struct mp_dview *v = arg;

	(void)iova;
	if (!len || mp_lock(&v->s->h))
		return; /* unrecoverable: held until the domain goes */
	put_locked(v, pa, len);
	mp_unlock(&v->s->h);
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

uint64_t sdom_tables_used(void *arg)
{
	struct mp_dview *v = arg;
	uint64_t n = 0, words = align_up(v->shm->pool_tables, 64) / 64;

	if (v->s->fork_gen != mp_fork_gen() || mp_lock(&v->s->h))
		return 0;
	/* The bits past pool_tables are never set (sdom_table_alloc() stops there). */
	for (uint64_t w = 0; w < words; w++)
		n += (uint64_t)__builtin_popcountll(v->pool_map[w]);
	mp_unlock(&v->s->h);
	return n;
}

void sdom_iova_stats(void *arg, uint64_t *allocated, uint64_t *free_pages, uint64_t *largest)
{
	struct mp_dview *v = arg;
	uint64_t run = 0, pages = v->shm->iova_pages;

	*allocated = *free_pages = *largest = 0;
	if (v->s->fork_gen != mp_fork_gen() || mp_lock(&v->s->h))
		return;
	/*
	 * A word at a time, under the share's lock that every map and unmap
	 * takes: a bit at a time, a 512 GiB window's 2^27 bits held the other
	 * processes for a quarter of a second. An empty or full word is one
	 * step; a mixed one, whose bits are where the allocations are, bit
	 * by bit.
	 */
	for (uint64_t w = 0; w * 64 < pages; w++) {
		unsigned nbits = (unsigned)MIN(64, pages - w * 64);
		uint64_t word = v->iova_map[w], mask = nbits == 64 ? ~UINT64_C(0) : (UINT64_C(1) << nbits) - 1;

		word &= mask;
		if (!word) {
			*free_pages += nbits;
			run += nbits;
			*largest = MAX(*largest, run);
			continue;
		}
		unsigned taken = (unsigned)__builtin_popcountll(word);

		*allocated += taken;
		*free_pages += nbits - taken;
		for (unsigned b = 0; b < nbits; b++) {
			if (word >> b & 1) {
				run = 0;
			} else {
				run++;
				*largest = MAX(*largest, run);
			}
		}
	}
	mp_unlock(&v->s->h);
}
