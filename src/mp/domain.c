/* SPDX-License-Identifier: MIT */
/*
 * domain.c - shared domains (iovm/mp.h): one IO address space that every
 * process of a share opens by name, each through a view of its own (an
 * iovm_domain of the iommu layer whose page table is the shared one).
 *
 * Where things are. A record in the control region (struct
 * mp_domain_rec) names the domain and one block of the heap, held by the
 * share, which holds everything the processes have in common:
 *
 *   [ struct mp_domain_shm | IOVA bitmap | pool bitmap | page refs | table pool ]
 *                                                                  ^ 4 KiB aligned
 *
 * The page tables are pages of the pool, so that the domain, and whatever
 * a dead process left allocated in it, goes with one free of the block.
 * A table entry names the next table by its PA: each process adds its own
 * heap's VA less the heap's PA (the view's pt_source.delta).
 *
 * Memory mapped. The page refs count, for each 4 KiB page of the heap, the
 * IOVA pages of this domain that map it: taken before the entries are
 * written, dropped after the unmap's invalidation. A free of a block that
 * any domain counts a page of hands it to the share instead
 * (MP_LENDER_DOMAINS, heap.c), whoever frees it, the reap of a dead
 * process included: a device keeps writing where the domain says, and
 * that memory is given to nobody else until the last unmap of its pages,
 * or the end of the domain, frees it here.
 *
 * Locking. The share's lock guards the record, the IOVA bitmap, the pool
 * bitmap and the page refs (each change is one store of a bit, so a holder that dies
 * leaves a bit set for nothing at worst: leaked until the domain goes).
 * The domain's inval_lock, robust too, orders the strict unmaps that are
 * posted to other processes: one at a time, its range in inval_iova and
 * inval_len, its number in inval_seq. Each view's agent thread waits on
 * inval_seq (a futex in shared memory), invalidates what its process's
 * devices cached, waits for their sections, and answers in its slot's ack
 * word. The poster holds inval_lock, never the share's lock, while it
 * waits: an agent's work takes no lock of the share.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <iovm/iommu.h>
#include <iovm/mp.h>

#include "base/compiler.h"
#include "base/ctx.h"
#include "base/error.h"
#include "base/fault_inject.h"
#include "base/log.h"
#include "iommu/iommu.h"
#include "iommu/pgtable.h"
#include "mp/mp_internal.h"

#define DOMAIN_MAGIC UINT64_C(0x6d6f642d6d766f69) /* "iovm-dom" */
/* Shared IOVAs start above 4 GiB: clear of the MSI window and of 32-bit DMA masks' surprises. */
#define DOMAIN_IOVA_BASE (UINT64_C(4) << 30)
/* How long a poster sleeps before it looks whether a silent process still lives. */
#define ACK_RECHECK_NS 10000000L
/* How long an idle agent sleeps before it looks whether its view is closing. */
#define AGENT_RECHECK_NS 100000000L

/* The block's head, in shared memory: no pointers. */
struct mp_domain_shm {
	uint64_t magic;
	uint64_t iova_pages;      /* 4 KiB pages from DOMAIN_IOVA_BASE */
	uint64_t iova_hint;       /* under the share's lock: every page below it is taken */
	uint64_t iova_map_off;    /* from the block's start: uint64_t[iova_pages / 64] */
	uint64_t pool_map_off;    /* uint64_t[pool_tables / 64] */
	uint64_t refs_off;        /* uint32_t[heap_pages]: this domain's mappings of each heap page */
	uint64_t heap_pages;
	uint64_t pool_off;        /* the first table, 4 KiB aligned */
	uint32_t pool_tables;
	uint32_t unused;
	uint64_t root_pa;
	struct pt_counters cnt;
	pthread_mutex_t inval_lock;         /* robust, process-shared */
	_Atomic uint32_t inval_seq;         /* futex: the last unmap posted */
	uint32_t unused2;
	_Atomic uint64_t inval_iova, inval_len; /* its range: written under inval_lock before inval_seq */
	_Atomic uint32_t ack[MP_MAX_PROCS];     /* futex each: the last inval_seq a slot's agent answered */
	_Atomic uint8_t listening[MP_MAX_PROCS]; /* a slot's view answers invalidations */
};

static_assert(sizeof(struct mp_domain_shm) % 8 == 0, "the bitmaps after it are word-aligned");

/* This process's view: the shared domain's iommu_shared_ops argument. */
struct mp_dview {
	struct mp_space *s;
	unsigned rec;              /* index in mp_ctl.domains */
	uint64_t grain;            /* the block's first grain, as the record said when opened */
	struct mp_domain_shm *shm;
	uint64_t *iova_map, *pool_map;
	uint32_t *refs;
	uint8_t *pool;
	struct pt_source src;
	struct iovm_domain *dom;
	pthread_t agent;
	bool agent_running;
	_Atomic bool agent_stop;
	uint32_t seen;             /* the agent's: the last inval_seq handled */
	bool live;                 /* opened whole: its release leaves the record */
};

static long futex(_Atomic uint32_t *word, int op, uint32_t val, const struct timespec *timeout)
{
	return syscall(SYS_futex, (uint32_t *)word, op, val, timeout, NULL, 0);
}

static bool name_ok(const char *name)
{
	size_t n = name ? strnlen(name, IOVM_ZONE_NAMESIZE) : 0;

	return n && n < IOVM_ZONE_NAMESIZE;
}

static bool rec_open(const struct mp_domain_rec *r)
{
	for (unsigned i = 0; i < MP_MAX_PROCS / 64; i++)
		if (r->views[i])
			return true;
	return false;
}

static bool rec_has(const struct mp_domain_rec *r, unsigned slot)
{
	return r->views[slot / 64] >> (slot % 64) & 1;
}

static int find(const struct mp_ctl *c, const char *name)
{
	for (unsigned i = 0; i < MP_MAX_DOMAINS; i++)
		if (rec_open(&c->domains[i]) && !strncmp(c->domains[i].name, name, IOVM_ZONE_NAMESIZE))
			return (int)i;
	return -1;
}

void mp_domains_forget_slot(struct mp_heap *h, unsigned slot)
{
	for (unsigned i = 0; i < MP_MAX_DOMAINS; i++) {
		h->c->domains[i].views[slot / 64] &= ~(UINT64_C(1) << (slot % 64));
		mp_crash_point();
	}
}

static void held_sweep(struct mp_heap *h);
static void maps_rebuild(struct mp_heap *h);

void mp_domains_tidy(struct mp_heap *h)
{
	bool gone = false;

	for (unsigned i = 0; i < MP_MAX_DOMAINS; i++) {
		struct mp_domain_rec *r = &h->c->domains[i];
		unsigned order;
		uint8_t owner;

		if (rec_open(r) || r->grain == MP_NO_GRAIN)
			continue;
		if (!gone) {
			/* Its mappings go with it: before its block, so that no free keeps memory for it. */
			maps_rebuild(h);
			gone = true;
		}
		if (!mp_heap_block(h, r->grain, &order, &owner) && owner == MP_OWNER_KEEP)
			mp_heap_free(h, r->grain);
		mp_crash_point();
		r->grain = MP_NO_GRAIN;
		mp_crash_point();
	}
	/* What the domains just gone held for the dead or the freed. */
	if (gone)
		held_sweep(h);
}

void mp_domains_repair(struct mp_heap *h)
{
	maps_rebuild(h);
	mp_domains_tidy(h);
	held_sweep(h);
}

/* ---- the block ---- */

struct block_layout {
	uint64_t iova_pages, iova_map_off, pool_map_off, refs_off, heap_pages, pool_off, size;
	uint32_t tables;
};

static int layout_of(const struct mp_space *s, const struct iovm_share_domain_params *p, struct block_layout *l)
{
	uint64_t iova_size = p && p->iova_size ? p->iova_size : MAX(4 * s->heap_size, (uint64_t)SZ_1G);
	uint64_t tables = p && p->tables ? p->tables : 64 + 4 * (align_up(s->heap_size, SZ_2M) / SZ_2M);

	if (!is_aligned(iova_size, SZ_4K) || iova_size > (UINT64_C(1) << 48) - DOMAIN_IOVA_BASE)
		return err_inval("iova_size is not a multiple of 4 KiB below 2^48 - 4 GiB");
	if (tables < 4 || tables > (UINT64_C(1) << 20))
		return err_inval("tables below 4 (a walk needs one per level) or above 2^20");
	l->iova_pages = align_up(iova_size / SZ_4K, 64);
	l->tables = (uint32_t)tables;
	l->iova_map_off = sizeof(struct mp_domain_shm);
	l->pool_map_off = l->iova_map_off + l->iova_pages / 8;
	l->refs_off = l->pool_map_off + align_up(tables, 64) / 8;
	l->heap_pages = align_up(s->heap_size, SZ_4K) / SZ_4K;
	l->pool_off = align_up(l->refs_off + l->heap_pages * sizeof(uint32_t), SZ_4K);
	l->size = l->pool_off + (uint64_t)l->tables * SZ_4K;
	return 0;
}

static void view_point(struct mp_dview *v)
{
	uint8_t *base = v->s->heap + (v->grain << MP_GRAIN_SHIFT);

	v->shm = (struct mp_domain_shm *)base;
	v->iova_map = (uint64_t *)(base + v->shm->iova_map_off);
	v->pool_map = (uint64_t *)(base + v->shm->pool_map_off);
	v->refs = (uint32_t *)(void *)(base + v->shm->refs_off);
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

/* ---- the table pool: pt_source of a view ---- */

static void *table_alloc(void *arg)
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

static void table_free(void *arg, void *t)
{
	struct mp_dview *v = arg;
	uint64_t i = (uint64_t)((uint8_t *)t - v->pool) / SZ_4K;

	if (mp_lock(&v->s->h))
		return; /* unrecoverable: the page stays taken */
	if (IOVM_WARN_ON(i >= v->shm->pool_tables || !bit(v->pool_map, i)))
		goto unlock;
	bits_set(v->pool_map, i, 1, false);
unlock:
	mp_unlock(&v->s->h);
}

/* ---- iommu_shared_ops ---- */

/* A forked child's view is its parent's: the heap and the lock are not in the child. */
static int not_forked(const struct mp_dview *v)
{
	if (v->s->fork_gen != mp_fork_gen())
		return err_detail(-EPERM, IOVM_LOG_DEBUG, "a shared domain's view from before a fork: attach, then open");
	return 0;
}

static int iova_alloc(void *arg, uint64_t len, uint64_t align, iova_t *iova)
{
	struct mp_dview *v = arg;
	struct mp_domain_shm *shm = v->shm;
	uint64_t n = len / SZ_4K, a = MAX(align / SZ_4K, 1), pages;
	int ret = not_forked(v);

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

static int iova_reserve(void *arg, iova_t iova, uint64_t len)
{
	struct mp_dview *v = arg;
	uint64_t at, n = len / SZ_4K;
	int ret = not_forked(v);

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

static void iova_free(void *arg, iova_t iova, uint64_t len)
{
	struct mp_dview *v = arg;
	uint64_t at = (iova_val(iova) - DOMAIN_IOVA_BASE) / SZ_4K, n = len / SZ_4K;

	if (IOVM_WARN_ON(iova_val(iova) < DOMAIN_IOVA_BASE || at + n > v->shm->iova_pages))
		return;
	if (mp_lock(&v->s->h))
		return;
	IOVM_WARN_ON(next_set(v->iova_map, at, at + n) != at); /* freed whole, or a bug */
	bits_set(v->iova_map, at, n, false);
	if (at < v->shm->iova_hint)
		v->shm->iova_hint = at;
	mp_unlock(&v->s->h);
}

/* Whether [pa, +len) is in the heap and clear of every shared domain's own block. Needs the lock. */
static bool pa_ok_locked(struct mp_space *s, pa_t pa, uint64_t len)
{
	uint64_t off = pa_val(pa) - pa_val(s->pa);

	if (pa_val(pa) < pa_val(s->pa) || off >= s->heap_size || len > s->heap_size - off)
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

static int pa_check(void *arg, pa_t pa, uint64_t len)
{
	struct mp_dview *v = arg;
	int ret = not_forked(v);
	bool ok;

	if (ret || (ret = mp_lock(&v->s->h)))
		return ret;
	ok = pa_ok_locked(v->s, pa, len);
	mp_unlock(&v->s->h);
	if (!ok)
		return err_detail(-EINVAL, IOVM_LOG_DEBUG,
				  "PA [%#" PRIx64 ", +%#" PRIx64 ") is not in the shared heap, or is a shared domain's own",
				  pa_val(pa), len);
	return 0;
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

static int pa_hold(void *arg, pa_t pa, uint64_t len)
{
	struct mp_dview *v = arg;
	struct mp_heap *h = &v->s->h;
	uint64_t first, last, p;
	int ret = not_forked(v);

	if (ret || (ret = mp_lock(&v->s->h)))
		return ret;
	if (!len || !pa_ok_locked(v->s, pa, len)) {
		mp_unlock(&v->s->h);
		return err_detail(-EINVAL, IOVM_LOG_DEBUG,
				  "PA [%#" PRIx64 ", +%#" PRIx64 ") is not shared heap a shared domain may map", pa_val(pa),
				  len);
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

static void pa_put(void *arg, pa_t pa, uint64_t len)
{
	struct mp_dview *v = arg;
	struct mp_heap *h = &v->s->h;
	uint64_t first, last;

	if (!len || mp_lock(h))
		return; /* unrecoverable: held until the domain goes */
	pages_of(v->s, pa, len, &first, &last);
	for (uint64_t p = first; p <= last && p < v->shm->heap_pages; p++) {
		if (IOVM_WARN_ON(!v->refs[p] || !h->maps[p]))
			continue;
		count_add(&v->refs[p], -1);
		mp_crash_point();
		count_add(&h->maps[p], -1);
		mp_crash_point();
		if (!h->maps[p] && h->c->domains_held)
			page_unheld(h, p);
	}
	mp_unlock(h);
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

	if (!h->mem || r->grain == MP_NO_GRAIN || !rec_open(r) || mp_heap_block(h, r->grain, &order, &owner))
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
static void maps_rebuild(struct mp_heap *h)
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
static void held_sweep(struct mp_heap *h)
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

static void iova_stats_of(void *arg, uint64_t *allocated, uint64_t *free_pages, uint64_t *largest)
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

/*
 * Whether slot @i still has the domain open, in a process that lives (a
 * zombie does not: its devices are gone). The record's bit, under the
 * lock: the reap of a dead process clears it, so that a process that
 * takes the slot afterwards is not waited for unless it opens the domain.
 */
static bool still_open(struct mp_dview *v, unsigned i)
{
	struct mp_ctl *c = v->s->c;
	uint64_t start, now;
	bool open, zombie;
	pid_t pid;

	if (mp_lock(&v->s->h))
		return false;
	open = rec_has(&c->domains[v->rec], i) && c->slots[i].state == MP_SLOT_LIVE;
	pid = c->slots[i].pid;
	start = c->slots[i].start_time;
	mp_unlock(&v->s->h);
	return open && !mp_proc_start(pid, &now, &zombie) && now == start && !zombie;
}

static void invalidate(void *arg, iova_t iova, uint64_t len)
{
	struct mp_dview *v = arg;
	struct mp_domain_shm *shm = v->shm;
	uint32_t seq;

	if (mp_lock_plain(&shm->inval_lock))
		return; /* not recoverable: nothing can be posted any more */
	atomic_store_explicit(&shm->inval_iova, iova_val(iova), memory_order_relaxed);
	atomic_store_explicit(&shm->inval_len, len, memory_order_relaxed);
	seq = atomic_fetch_add_explicit(&shm->inval_seq, 1, memory_order_acq_rel) + 1;
	futex(&shm->inval_seq, FUTEX_WAKE, INT_MAX, NULL);
	for (unsigned i = 0; i < MP_MAX_PROCS; i++) {
		if (i == v->s->slot)
			continue;
		for (;;) {
			uint32_t a = atomic_load_explicit(&shm->ack[i], memory_order_acquire);
			struct timespec recheck = { 0, ACK_RECHECK_NS };

			if (!atomic_load_explicit(&shm->listening[i], memory_order_acquire) || (int32_t)(a - seq) >= 0)
				break;
			if (!still_open(v, i))
				break;
			futex(&shm->ack[i], FUTEX_WAIT, a, &recheck);
		}
	}
	pthread_mutex_unlock(&shm->inval_lock);
}

/* The view's agent: answers other processes' unmaps for this process's devices. */
static void *agent_main(void *arg)
{
	struct mp_dview *v = arg;
	struct mp_domain_shm *shm = v->shm;
	unsigned slot = v->s->slot;

	while (!atomic_load_explicit(&v->agent_stop, memory_order_acquire)) {
		uint32_t seq = atomic_load_explicit(&shm->inval_seq, memory_order_acquire);

		if (seq == v->seen) {
			/*
			 * The stop's wake can come between the look at agent_stop
			 * and this wait, which only compares inval_seq (shared with
			 * every process, so not bumped for one view's stop): the
			 * sleep ends by itself, and the stop is seen then.
			 */
			struct timespec recheck = { 0, AGENT_RECHECK_NS };

			futex(&shm->inval_seq, FUTEX_WAIT, seq, &recheck);
			continue;
		}
		/* One posted at a time: the range is the one numbered @seq until this answer. */
		iommu_domain_invalidate(v->dom, iova_make(atomic_load_explicit(&shm->inval_iova, memory_order_relaxed)),
					atomic_load_explicit(&shm->inval_len, memory_order_relaxed));
		v->seen = seq;
		atomic_store_explicit(&shm->ack[slot], seq, memory_order_release);
		futex(&shm->ack[slot], FUTEX_WAKE, INT_MAX, NULL);
	}
	return NULL;
}

static void agent_stop(struct mp_dview *v)
{
	if (!v->agent_running)
		return;
	atomic_store_explicit(&v->agent_stop, true, memory_order_release);
	/* Every process's agents wake, look, and sleep again: rare, and harmless. */
	futex(&v->shm->inval_seq, FUTEX_WAKE, INT_MAX, NULL);
	pthread_join(v->agent, NULL);
	v->agent_running = false;
}

static void quiesce(void *arg)
{
	struct mp_dview *v = arg;

	if (!v->live || v->s->fork_gen != mp_fork_gen())
		return;
	agent_stop(v);
	atomic_store_explicit(&v->shm->listening[v->s->slot], 0, memory_order_release);
	futex(&v->shm->ack[v->s->slot], FUTEX_WAKE, INT_MAX, NULL);
}

/* This process lets go of the record: the last one out frees the block. Needs the share's lock. */
static void rec_leave(struct mp_dview *v)
{
	struct mp_domain_rec *r = &v->s->c->domains[v->rec];

	if (r->grain != v->grain || !rec_has(r, v->s->slot))
		return; /* reaped already (this process was taken for dead) */
	r->views[v->s->slot / 64] &= ~(UINT64_C(1) << (v->s->slot % 64));
	mp_crash_point();
	mp_domains_tidy(&v->s->h);
}

static void release(void *arg)
{
	struct mp_dview *v = arg;

	/* A forked child has neither the heap nor the parent's slot: nothing shared to give back. */
	if (v->live && v->s->fork_gen == mp_fork_gen()) {
		quiesce(v);
		if (!mp_lock(&v->s->h)) {
			rec_leave(v);
			mp_unlock(&v->s->h);
		}
	}
	free(v);
}

static const struct iommu_shared_ops shared_ops = {
	.iova_alloc = iova_alloc,
	.iova_reserve = iova_reserve,
	.iova_free = iova_free,
	.pa_check = pa_check,
	.pa_hold = pa_hold,
	.pa_put = pa_put,
	.iova_stats = iova_stats_of,
	.invalidate = invalidate,
	.quiesce = quiesce,
	.release = release,
};

/* ---- making and opening ---- */

/*
 * The view of record @rec (this process's bit set in it by the caller):
 * its iommu domain, then its agent, listening. On failure the caller
 * leaves the record.
 */
static int view_open(struct mp_space *s, unsigned rec, uint64_t grain, struct iovm_domain **out)
{
	struct mp_dview *v = fi_calloc(1, sizeof(*v));
	uint64_t root;
	int ret;

	if (!v)
		return -ENOMEM;
	v->s = s;
	v->rec = rec;
	v->grain = grain;
	view_point(v);
	v->src = (struct pt_source){ .alloc = table_alloc, .free = table_free, .arg = v,
				     .delta = (uintptr_t)s->heap - pa_val(s->pa) };
	root = v->shm->root_pa;
	ret = iommu_domain_create_shared(s->ctx, DOMAIN_IOVA_BASE + v->shm->iova_pages * SZ_4K, &shared_ops, v,
					 &v->src, &v->shm->cnt, &root, &v->dom);
	if (ret)
		goto free_view;
	/* From the number now: what was posted before, this process's devices never saw. */
	v->seen = atomic_load_explicit(&v->shm->inval_seq, memory_order_acquire);
	atomic_store_explicit(&v->shm->ack[s->slot], v->seen, memory_order_release);
	ret = -fi_pthread_create(&v->agent, NULL, agent_main, v);
	if (ret)
		goto destroy_domain;
	v->agent_running = true;
	atomic_store_explicit(&v->shm->listening[s->slot], 1, memory_order_release);
	v->live = true;
	*out = v->dom;
	return 0;

destroy_domain:
	/* Not live: its release frees @v only, and the caller leaves the record. */
	iovm_domain_destroy(v->dom);
	return ret;
free_view:
	free(v);
	return ret;
}

/* The record's block, made and initialized; this process's bit, set last, commits it. Needs the lock. */
static int rec_make(struct mp_space *s, unsigned rec, const char *name, const struct block_layout *l)
{
	struct mp_domain_rec *r = &s->c->domains[rec];
	struct mp_domain_shm *shm;
	uint64_t grain;
	uint8_t *base;
	int ret;

	memset(r->name, 0, sizeof(r->name));
	strncpy(r->name, name, IOVM_ZONE_NAMESIZE - 1);
	mp_crash_point();
	/* The record names the block before the block exists: the tidy finds it either way. */
	ret = mp_heap_alloc(&s->h, l->size, SZ_4K, MP_OWNER_KEEP, &r->grain, &grain);
	if (ret)
		return ret;
	base = s->heap + (grain << MP_GRAIN_SHIFT);
	memset(base, 0, l->pool_off + SZ_4K); /* the head, both bitmaps, the refs, the root */
	shm = (struct mp_domain_shm *)base;
	shm->iova_pages = l->iova_pages;
	shm->iova_map_off = l->iova_map_off;
	shm->pool_map_off = l->pool_map_off;
	shm->refs_off = l->refs_off;
	shm->heap_pages = l->heap_pages;
	shm->pool_off = l->pool_off;
	shm->pool_tables = l->tables;
	/* The root is the pool's first page, made here so that every view opens an existing table. */
	((uint64_t *)(base + l->pool_map_off))[0] = 1;
	shm->root_pa = pa_val(s->pa) + (grain << MP_GRAIN_SHIFT) + l->pool_off;
	atomic_store_explicit(&shm->cnt.nr_tables, 1, memory_order_relaxed);
	ret = mp_lock_init(&shm->inval_lock);
	if (ret) {
		mp_heap_free(&s->h, grain);
		r->grain = MP_NO_GRAIN;
		return ret;
	}
	shm->magic = DOMAIN_MAGIC;
	mp_crash_point();
	atomic_signal_fence(memory_order_release);
	r->views[s->slot / 64] |= UINT64_C(1) << (s->slot % 64);
	mp_crash_point();
	return 0;
}

IOVM_API int iovm_share_domain_create(struct iovm_ctx *ctx, const char *name,
				      const struct iovm_share_domain_params *params, struct iovm_domain **dom)
{
	struct block_layout l = { 0 };
	struct mp_space *s;
	int ret, rec = -1;
	uint64_t grain;

	err_enter();
	if (!dom || !name_ok(name))
		return err_inval("!dom || name is not 1 to IOVM_ZONE_NAMESIZE-1 characters");
	ret = mp_space_of(ctx, &s);
	if (ret)
		return ret;
	ret = layout_of(s, params, &l);
	if (ret)
		return ret;
	for (int pass = 0; pass < 2; pass++) {
		ret = mp_lock(&s->h);
		if (ret)
			return ret;
		if (find(s->c, name) >= 0) {
			mp_unlock(&s->h);
			return err_detail(-EEXIST, IOVM_LOG_DEBUG, "the share has a domain '%s' already", name);
		}
		for (rec = 0; rec < MP_MAX_DOMAINS; rec++)
			if (!rec_open(&s->c->domains[rec]) && s->c->domains[rec].grain == MP_NO_GRAIN)
				break;
		if (rec == MP_MAX_DOMAINS) {
			mp_unlock(&s->h);
			return err_detail(-ENOSPC, IOVM_LOG_DEBUG, "the share has %d domains already", MP_MAX_DOMAINS);
		}
		ret = rec_make(s, (unsigned)rec, name, &l);
		grain = s->c->domains[rec].grain;
		mp_unlock(&s->h);
		if (ret != -ENOMEM || pass)
			break;
		/* The memory of dead processes first, as an allocation does. */
		mp_reap_dead(&s->h);
	}
	if (ret)
		return err_detail(ret, IOVM_LOG_DEBUG, "no room in the shared heap for domain '%s' (%#lx bytes)", name,
				  (unsigned long)l.size);
	ret = view_open(s, (unsigned)rec, grain, dom);
	if (ret) {
		struct mp_dview undo = { .s = s, .rec = (unsigned)rec, .grain = grain };

		if (!mp_lock(&s->h)) {
			rec_leave(&undo);
			mp_unlock(&s->h);
		}
	}
	return ret;
}

IOVM_API int iovm_share_domain_open(struct iovm_ctx *ctx, const char *name, struct iovm_domain **dom)
{
	struct mp_space *s;
	uint64_t grain;
	int ret, rec;

	err_enter();
	if (!dom || !name_ok(name))
		return err_inval("!dom || name is not 1 to IOVM_ZONE_NAMESIZE-1 characters");
	ret = mp_space_of(ctx, &s);
	if (ret)
		return ret;
	ret = mp_lock(&s->h);
	if (ret)
		return ret;
	rec = find(s->c, name);
	if (rec < 0) {
		mp_unlock(&s->h);
		return err_detail(-ENOENT, IOVM_LOG_DEBUG, "the share has no domain '%s'", name);
	}
	if (rec_has(&s->c->domains[rec], s->slot)) {
		mp_unlock(&s->h);
		return err_detail(-EBUSY, IOVM_LOG_DEBUG, "this process has domain '%s' open already", name);
	}
	s->c->domains[rec].views[s->slot / 64] |= UINT64_C(1) << (s->slot % 64);
	mp_crash_point();
	grain = s->c->domains[rec].grain;
	mp_unlock(&s->h);
	ret = view_open(s, (unsigned)rec, grain, dom);
	if (ret) {
		struct mp_dview undo = { .s = s, .rec = (unsigned)rec, .grain = grain };

		if (!mp_lock(&s->h)) {
			rec_leave(&undo);
			mp_unlock(&s->h);
		}
	}
	return ret;
}
