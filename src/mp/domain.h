/* SPDX-License-Identifier: MIT */
/*
 * domain.h - a shared domain's block and a process's view of it, between
 * domain.c (records, views, invalidations across processes),
 * domain_space.c (what the block holds: the IOVA allocator, the table
 * pool, the counts of mapped heap pages) and domain_journal.c (the unmaps
 * in flight that still hold them). See domain.c for the design.
 */
#ifndef IOVM_MP_DOMAIN_H
#define IOVM_MP_DOMAIN_H

#include <pthread.h>

#include "base/addr.h"
#include "iommu/pgtable.h"
#include "mp/mp_internal.h"
#include "phys/phys.h"

#define DOMAIN_MAGIC UINT64_C(0x6d6f642d6d766f69) /* "iovm-dom" */
/* Shared IOVAs start above 4 GiB: clear of the MSI window and of 32-bit DMA masks' surprises. */
#define DOMAIN_IOVA_BASE (UINT64_C(4) << 30)

/*
 * The journal of unmaps in flight: entries a process is about to clear, or
 * cleared, whose invalidation is still to come (a strict unmap's, being
 * posted, or a deferred unmap's, at its flush), and the memory they
 * named. Recorded before the clear (iommu/pgrecord.c), so that a death in
 * between leaves nothing cleared unrecorded. One table
 * for every process, sized from the flush batch, an entry at most
 * SDOM_PROBE places after the hash of its IOVA.
 */
#define SDOM_JOURNAL_MIN 1024u
#define SDOM_JOURNAL_MAX 16384u
#define SDOM_PROBE 64u
/* owner: a slot; a slot | SDOM_CLAIMED (an orphan that slot is invalidating); SDOM_ORPHAN. */
#define SDOM_CLAIMED 0x100u
#define SDOM_ORPHAN 0xffffu
/*
 * flags: the unmap keeps its IOVAs (a map's undo: the mapper frees them); a
 * detached table (pa: its page; iova: where its span starts; its entries'
 * level + 1 in SDOM_TABLE_LEVEL's bits, 0 if recorded once detached).
 */
#define SDOM_KEEP_IOVA 1u
#define SDOM_TABLE 2u
#define SDOM_TABLE_LEVEL(level) ((unsigned)((level) + 1) << 8)
#define SDOM_TABLE_LEVEL_OF(flags) ((int)((flags) >> 8 & 0xfu) - 1)
/* A piece of a registration's window (not the heap's): its release has no hold to put back. */
#define SDOM_FOREIGN 4u
/*
 * A registration's window in a shared domain sits at a PA its IOVA names
 * (sdom_reg_pa()): domain record i's registrations at
 * PHYS_SHARED_REG_BASE + i * SDOM_REG_SPAN + (IOVA - DOMAIN_IOVA_BASE),
 * which no process allocates otherwise. A PA stays one registration's for
 * as long as its IOVAs are taken, which the IOVA allocator gives to one
 * map at a time and keeps taken until the unmap's invalidation reached
 * every process: no device of any process reaches another registration,
 * or another process's memory, through a stale entry.
 */
#define SDOM_REG_SPAN (PHYS_SHARED_REG_SIZE / MP_MAX_DOMAINS)

/*
 * Another process's device reaching a registration (domain_remote.c):
 * its process asks the registering one, the owner of the IOVA's 2 MiB
 * unit, in one of SDOM_CELLS cells of the block, and the owner's server
 * thread moves up to SDOM_CELL_DATA bytes between the cell and the
 * registration with its own engine. A cell's word is its state, its
 * requester's slot and a generation, changed by compare-and-swap only, so
 * that of two processes reclaiming a dead one's cell one wins.
 */
#define SDOM_CELLS 16u
#define SDOM_CELL_DATA 4096u
#define SDOM_UNIT_SHIFT 21
enum sdom_cell_state {
	SDOM_CELL_FREE,
	SDOM_CELL_TAKEN,    /* the requester fills it in */
	SDOM_CELL_ASKED,    /* for the owner's server */
	SDOM_CELL_RUNNING,  /* the owner moves the bytes */
	SDOM_CELL_ANSWERED, /* for the requester */
};
#define SDOM_CELL_WORD(state, slot, gen) ((uint32_t)(state) | (uint32_t)(slot) << 4 | (uint32_t)(gen) << 12)
#define SDOM_CELL_STATE(w) ((w) & 0xfu)
#define SDOM_CELL_SLOT(w) ((w) >> 4 & 0xffu)
#define SDOM_CELL_GEN(w) ((w) >> 12)
static_assert(MP_MAX_PROCS <= 256, "a slot in the cell word's 8 bits");

struct sdom_cell {
	_Atomic uint32_t word;   /* futex: SDOM_CELL_WORD() */
	_Atomic uint32_t owner;  /* the slot asked */
	_Atomic uint32_t op;     /* enum iommu_delegate_op */
	_Atomic uint32_t reason; /* the answer's IOVM_FAULT_* */
	_Atomic uint64_t iova, len;
	_Atomic uint64_t done;   /* the answer's bytes */
	_Atomic int32_t ret;     /* the answer's 0 or -errno */
	uint8_t rsvd[20];
	uint8_t data[SDOM_CELL_DATA];
};
static_assert(sizeof(struct sdom_cell) == 64 + SDOM_CELL_DATA, "a cell's head on a cache line of its own");

/*
 * A pool page's pending word: from the take of the page until its table
 * hangs where it was taken for (or goes back), SDOM_PEND_TAKEN, the
 * taker's slot (SDOM_ORPHAN once its process is reaped, then the
 * claimer's slot | SDOM_CLAIMED), where the table is to hang (the IOVA
 * page its span starts at, its entries' level) and a generation, kept
 * across takes, that tells one take of the page from the next. Taken and
 * given back under the share's lock; hung (a compare-and-swap of the
 * taker's word) and unhung (whoever is about to detach it) without. A
 * survivor frees a dead process's page that is still taken and hangs
 * nowhere (sdom_orphans_unreach()): a table that hung and was detached
 * since was unhung first, so it is never freed twice.
 */
#define SDOM_PEND_TAKEN (UINT64_C(1) << 63)
#define SDOM_PEND_GEN(w) ((w) >> 56 & 0x7fu)
#define SDOM_PEND_OWNER(w) ((unsigned)((w) >> 40 & 0xffffu))
#define SDOM_PEND_LEVEL(w) ((int)((w) >> 36 & 0xfu))
#define SDOM_PEND_BASE(w) (((w) & ((UINT64_C(1) << 36) - 1)) << 12)
#define SDOM_PEND_KEEP(w) ((w) & (UINT64_C(0x7f) << 56)) /* the generation alone: not taken */
#define SDOM_PEND_WORD(gen, owner, level, base)                                                      \
	(SDOM_PEND_TAKEN | (uint64_t)((gen) & 0x7fu) << 56 | (uint64_t)(owner) << 40 |              \
	 (uint64_t)(level) << 36 | (base) >> 12)
#define SDOM_PEND_REOWN(w, owner) (((w) & ~(UINT64_C(0xffff) << 40)) | (uint64_t)(owner) << 40)
static_assert(PT_IOVA_BITS - 12 <= 36, "a table's base page in 36 bits of its pending word");

/*
 * A map in flight: the IOVAs it took (recorded under the share's lock
 * before their bits are set) until it is done with them: mapped (erased
 * by its process, one store), or given back. A survivor frees what a dead
 * process's map took and did not map (sdom_maps_release()). A row of
 * them per slot, for as many threads of a process mapping at once; a map
 * that finds its row full goes unrecorded (its IOVAs, killed midway, stay
 * taken until the domain goes).
 */
#define SDOM_MAPS_PER_SLOT 8u
struct sdom_mapping {
	uint64_t iova, len; /* len 0: none */
	uint16_t owner;     /* the row's slot; SDOM_ORPHAN once reaped; a claimer's slot | SDOM_CLAIMED */
	uint16_t rsvd[3];
};
static_assert(sizeof(struct sdom_mapping) == 24, "three words");

/* A piece of an unmap: its IOVAs, and the memory its entries named. len 0: an empty entry. */
struct sdom_piece {
	uint64_t iova, pa, len;
	uint16_t owner, flags;
	uint32_t done; /* half-steps of its release: 2k, k steps taken; 2k + 1, step k begun (release_locked()) */
};

static_assert(MP_MAX_PROCS < SDOM_CLAIMED, "slot numbers leave the claimed bit clear");
static_assert(sizeof(struct sdom_piece) == 32, "two entries to a cache line");

/* The block's head, in shared memory: no pointers. */
struct mp_domain_shm {
	uint64_t magic;
	uint64_t iova_pages;      /* 4 KiB pages from DOMAIN_IOVA_BASE */
	uint64_t iova_hint;       /* under the share's lock: every page below it is taken */
	uint64_t iova_map_off;    /* from the block's start: uint64_t[iova_pages / 64, rounded up] */
	uint64_t pool_map_off;    /* uint64_t[pool_tables / 64] */
	uint64_t refs_off;        /* uint32_t[heap_pages]: this domain's mappings of each heap page */
	uint64_t heap_pages;
	uint64_t pool_off;        /* the first table, 4 KiB aligned */
	uint32_t pool_tables;
	uint32_t flags;           /* IOVM_DOMAIN_DEFERRED or 0: every view's */
	uint32_t flush_batch, flush_timeout_us; /* deferred: each view's queue (0: the iommu layer's defaults) */
	uint64_t root_pa;
	struct pt_counters cnt;
	pthread_mutex_t inval_lock;         /* robust, process-shared */
	_Atomic uint32_t inval_seq;         /* futex: the last unmap posted */
	uint32_t step_page;       /* under the share's lock: the heap page of the hold step being taken */
	_Atomic uint64_t inval_iova, inval_len; /* its range: written under inval_lock before inval_seq */
	_Atomic uint32_t ack[MP_MAX_PROCS];     /* futex each: the last inval_seq a slot's agent answered */
	_Atomic uint8_t listening[MP_MAX_PROCS]; /* a slot's view answers invalidations */
	/*
	 * Under the share's lock. Each unmap records its pieces here after
	 * clearing their entries and erases each as it puts the piece's hold
	 * back: one store each way (len), so that an entry is there exactly
	 * while its hold is. The reap marks a dead slot's entries orphans, in
	 * place; the next poster of an invalidation claims them, makes it one
	 * of everything, and then releases them.
	 */
	uint64_t shadow_off;      /* the oracle's (iommu/shadow_shared.c): uint32_t[iova_pages]; 0: none */
	uint64_t journal_off;     /* struct sdom_piece[journal_mask + 1] */
	uint32_t journal_mask;    /* entries less one: a power of two less one */
	uint32_t orphans;         /* set before a reap marks orphans; cleared by a claim that took them all */
	uint32_t step_refs;       /* under the share's lock: that page's refs before the step */
	/* Slots that recorded entries since their last reap: whose death a claim looks for (bits, one store each). */
	uint64_t writers[MP_MAX_PROCS / 64];
	uint64_t owners_off;      /* _Atomic uint16_t[units of 2 MiB of IOVA]: the registering slot + 1; 0: none */
	uint64_t cells_off;       /* struct sdom_cell[SDOM_CELLS] */
	_Atomic uint32_t bell[MP_MAX_PROCS]; /* futex each: requests were asked of that slot's server */
	uint64_t pend_off;        /* _Atomic uint64_t[pool_tables]: each pool page's pending word (SDOM_PEND_*) */
	/* Under the share's lock, but the erase of a done map's own entry (one store): maps in flight, by slot. */
	struct sdom_mapping maps[MP_MAX_PROCS][SDOM_MAPS_PER_SLOT];
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
	struct sdom_piece *journal;
	_Atomic uint32_t *shadow;  /* NULL: none */
	uint8_t *pool;
	_Atomic uint64_t *pend;    /* the pool pages' pending words */
	struct pt_source src;
	struct iovm_domain *dom;
	pthread_t agent;
	bool agent_running;
	_Atomic bool agent_stop;
	_Atomic bool agent_started; /* the agent runs: view_open() returns after it */
	uint32_t seen;             /* the agent's: the last inval_seq handled */
	char walks_over;           /* ThreadSanitizer's only: released by the agent's answers (sanitizer.h) */
	_Atomic uint16_t *owners;
	struct sdom_cell *cells;
	/* The server (domain_remote.c): started by the first registration, stopped by quiesce(). */
	pthread_mutex_t server_lock; /* starting and stopping it */
	pthread_t server;
	bool server_running;         /* under server_lock */
	_Atomic bool server_stop;
	_Atomic bool server_started;
	struct dev_xfer *xfer;       /* the server's */
	_Atomic uint32_t cells_mine; /* a bit per cell a thread of this process holds or is taking */
	bool live;                 /* opened whole: its release leaves the record */
};

/* Where each part of a domain's block goes, for a heap and the domain's parameters. */
struct sdom_layout {
	uint64_t owners_off, cells_off;
	uint64_t journal_off, journal_entries, shadow_off;
	uint64_t iova_pages, iova_map_off, pool_map_off, pend_off, refs_off, heap_pages, pool_off, size;
	uint32_t tables;
	uint32_t flags, flush_batch, flush_timeout_us;
};

/* Whether a process has record @r's domain open. Needs the share's lock. */
static inline bool sdom_rec_open(const struct mp_domain_rec *r)
{
	for (unsigned i = 0; i < MP_MAX_PROCS / 64; i++)
		if (r->views[i])
			return true;
	return false;
}

/* ---- domain.c ---- */

/* sdom_still_open() - whether slot @i's process has @v's domain open and lives. Takes the lock. */
bool sdom_still_open(struct mp_dview *v, unsigned i);

/* ---- domain_remote.c ---- */

/* sdom_reg_pa_own() - the view's reg_pa(): sdom_reg_pa(), the units this process's, its server started. */
int sdom_reg_pa_own(void *arg, iova_t iova, uint64_t len, pa_t *pa);
/* sdom_delegate() - the view's delegate() (iommu/iommu.h): a request to the unit's owner, and its answer. */
int sdom_delegate(void *arg, iova_t iova, void *buf, uint64_t len, unsigned op, uint64_t *done, unsigned *reason);
/* sdom_server_stop() - no more answers from this process (quiesce): the server joined, its engine closed. */
void sdom_server_stop(struct mp_dview *v);

/* ---- domain_space.c ---- */

/* sdom_layout() - the layout for @s's heap and @p (NULL: the defaults); -EINVAL. */
int sdom_layout(const struct mp_space *s, const struct iovm_share_domain_params *p, struct sdom_layout *l);
/* sdom_view_point() - @v's pointers into the block at v->grain. */
void sdom_view_point(struct mp_dview *v);
/* sdom_not_forked() - -EPERM in a forked child: the heap and the lock are not there. */
int sdom_not_forked(const struct mp_dview *v);
/* The view's pt_source: a page of the table pool, under the share's lock. */
void *sdom_table_alloc(void *arg, iova_t base, int level, uint64_t *cookie);
void sdom_table_free(void *arg, void *t);
void sdom_table_hung(void *arg, void *t, uint64_t cookie);
void sdom_table_unhang(void *arg, void *t, iova_t base, int level);
void sdom_table_pending(void *arg, void *t, iova_t base, int level);
/*
 * sdom_journal_take_table() - a dead process's record of the table at
 * @table_pa, which its unmap had not detached yet, made this slot's: the
 * survivor's unmap that detaches it now frees it once. Whether there was
 * one. Needs the lock.
 */
bool sdom_journal_take_table(struct mp_dview *v, uint64_t table_pa);
/* The view's iommu_shared_ops (iommu/iommu.h) that the block answers; @arg is the view. */
int sdom_iova_alloc(void *arg, uint64_t len, uint64_t align, iova_t *iova);
int sdom_iova_reserve(void *arg, iova_t iova, uint64_t len);
void sdom_iova_free(void *arg, iova_t iova, uint64_t len);
void sdom_iova_settled(void *arg, iova_t iova, uint64_t len);
void sdom_iova_stats(void *arg, uint64_t *allocated, uint64_t *free_pages, uint64_t *largest);
uint64_t sdom_tables_used(void *arg);
int sdom_pa_hold(void *arg, iova_t iova, pa_t pa, uint64_t len);
void sdom_pa_put(void *arg, iova_t iova, pa_t pa, uint64_t len);
void sdom_pa_release(void *arg, iova_t iova, pa_t pa, uint64_t len, bool free_iova);
int sdom_pa_pending(void *arg, iova_t iova, pa_t pa, uint64_t len, unsigned how);
bool sdom_orphans_waiting(void *arg);
_Atomic uint32_t *sdom_shadow(void *arg, uint64_t *base, uint64_t *pages, uint64_t *pa_base);
bool sdom_pa_held(void *arg, pa_t pa);
int sdom_reg_pa(void *arg, iova_t iova, uint64_t len, pa_t *pa);
/* sdom_orphans_claim() - this slot's now, the orphans that wait: whether there were any. */
bool sdom_orphans_claim(struct mp_dview *v);
/*
 * sdom_orphans_unreach() - before the invalidation of everything: what the
 * claimed orphans recorded and their process had not cleared yet, taken
 * out of the table (iommu_domain_clear_recorded()).
 */
void sdom_orphans_unreach(struct mp_dview *v);
/* sdom_orphans_release() - after an invalidation of everything posted since the claim: free them. */
void sdom_orphans_release(struct mp_dview *v);
/* sdom_journal_orphan() - slot @slot died: its unmaps in flight, and its claims, become orphans. Needs the lock. */
void sdom_journal_orphan(struct mp_domain_shm *shm, unsigned slot);
/* sdom_maps_rebuild() - mp_heap.maps as the sum of the open domains' counts. Needs the lock. */
void sdom_maps_rebuild(struct mp_heap *h);
/* sdom_steps_repair() - settle the release step a dead lock holder was taking. Needs the lock, first. */
void sdom_steps_repair(struct mp_heap *h);
/* sdom_held_sweep() - free the blocks held for domains that none maps now. Needs the lock. */
void sdom_held_sweep(struct mp_heap *h);

/*
 * Between domain_space.c (the block's IOVAs, tables and holds) and
 * domain_journal.c (the unmaps in flight that still hold them). All need
 * the share's lock.
 */
static inline bool sdom_bit(const uint64_t *map, uint64_t i)
{
	return map[i / 64] >> (i % 64) & 1;
}
/* sdom_in_heap() - whether [pa, +len) is the heap's (else a registration's window). */
bool sdom_in_heap(const struct mp_space *s, uint64_t pa, uint64_t len);
/* sdom_pages_of() - the heap pages [*first, *last] that [pa, +len) touches. */
void sdom_pages_of(const struct mp_space *s, pa_t pa, uint64_t len, uint64_t *first, uint64_t *last);
/* sdom_put_page_locked() - heap page @p's hold goes (memory freed meanwhile is freed once none maps it). */
void sdom_put_page_locked(struct mp_dview *v, uint64_t p);
/* sdom_iova_free_locked() - [iova, +len) back to the allocator. */
void sdom_iova_free_locked(struct mp_dview *v, iova_t iova, uint64_t len);
/*
 * sdom_tables_unreach() - the pool pages that this slot claimed from dead
 * processes (their pending words): freed where they hang nowhere, left
 * where they hang. Needs the lock, and this view's table (@v->dom).
 */
void sdom_tables_unreach(struct mp_dview *v);
/* sdom_table_unpend_locked() - pool page @t's pending word cleared: its table is a record's to free. */
void sdom_table_unpend_locked(struct mp_dview *v, void *t);
/*
 * sdom_shadow_clear() - the oracle's shadow words of [iova, +len) (if it has
 * one): nothing mapped, nothing pending. Before those IOVAs go back.
 */
void sdom_shadow_clear(struct mp_dview *v, uint64_t iova, uint64_t len);

/* ---- domain_maps.c ---- */
/* sdom_map_record_locked() - this process's map takes [iova, +len): recorded, before the bits. Needs the lock. */
void sdom_map_record_locked(struct mp_dview *v, uint64_t iova, uint64_t len);
/* sdom_map_erase() - this process's map is done with [iova, +len): its record goes (one store; no lock needed). */
void sdom_map_erase(struct mp_dview *v, uint64_t iova, uint64_t len);
/*
 * sdom_maps_orphan() - slot @slot died: its maps in flight, and its claims
 * of others', become orphans. Whether it had any. Needs the lock.
 */
bool sdom_maps_orphan(struct mp_domain_shm *shm, unsigned slot);
/* sdom_maps_claim() - the orphan maps in flight, this slot's now: whether there were any. Needs the lock. */
bool sdom_maps_claim(struct mp_dview *v);
/*
 * sdom_maps_release() - after an invalidation of everything: of each map
 * in flight this slot claimed, the IOVAs that translate nothing and that
 * nothing else holds (an unmap's record, another map in flight, a
 * registration's unit) go back; the entry is erased. Needs the lock.
 */
void sdom_maps_release(struct mp_dview *v);
/* sdom_table_release_locked() - pool table @i freed, then its entry @e (NULL: none) erased. */
void sdom_table_release_locked(struct mp_dview *v, struct sdom_piece *e, uint64_t i);
/* sdom_journal_find() - this slot's entry of [iova | pa, +len) (@flags' SDOM_TABLE alike), or NULL. */
struct sdom_piece *sdom_journal_find(struct mp_dview *v, uint64_t key, uint64_t iova, uint64_t pa, uint64_t len,
				     unsigned flags);
/* sdom_journal_names_table() - whether any process's entry (claimed, orphaned too) names the table at @table_pa. */
bool sdom_journal_names_table(struct mp_dview *v, uint64_t table_pa);
/* sdom_journal_add() - record [iova | pa, +len) in one of @probe places from @key's: 0 or -ENOSPC. */
int sdom_journal_add(struct mp_dview *v, uint64_t key, uint64_t iova, uint64_t pa, uint64_t len, unsigned flags,
		     uint32_t probe);

#endif /* IOVM_MP_DOMAIN_H */
