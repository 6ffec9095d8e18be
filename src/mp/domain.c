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
 *   [ struct mp_domain_shm | journal | (shadow) | IOVA bitmap | pool bitmap | pending words | page refs |
 *     table pool ]
 *     ^ 4 KiB aligned
 *
 * The page tables are pages of the pool, so that the domain, and whatever
 * a dead process left allocated in it, goes with one free of the block.
 * A table entry names the next table by its PA: each process adds its own
 * heap's VA less the heap's PA (the view's pt_source.delta).
 *
 * What the block holds and hands out is domain_space.c's: IOVAs, table
 * pages, and the page refs, which count, for each 4 KiB page of the heap,
 * the IOVA pages of this domain that map it: taken before the entries are
 * written, dropped after the unmap's invalidation. A free of a block that
 * any domain counts a page of hands it to the share instead
 * (MP_LENDER_DOMAINS, heap.c), whoever frees it, the reap of a dead
 * process included: a device keeps writing where the domain says, and
 * that memory is given to nobody else until the last unmap of its pages,
 * or the end of the domain, frees it. This file: the records, the views,
 * and the invalidations they post to each other.
 *
 * Locking. The share's lock guards the record, the IOVA bitmap, the pool
 * bitmap and the page refs (each change is one store of a bit or a count,
 * so that a holder that dies leaves at worst a bit set or a count too
 * high, for nothing: leaked until the domain goes). A pool page's pending
 * word says, from its take until its table hangs, who took it for where
 * (SDOM_PEND_*, domain.h): a page a dead process took and never hung is
 * the next claim's to free.
 * The domain's inval_lock, robust too, orders the strict unmaps that are
 * posted to other processes: one at a time, its range in inval_iova and
 * inval_len, its number in inval_seq. Each view's agent thread waits on
 * inval_seq (a futex in shared memory), invalidates what its process's
 * devices cached, waits for their sections, and answers in its slot's ack
 * word. The poster holds inval_lock, never the share's lock, while it
 * waits: an agent's work takes no lock of the share. What a process that
 * dies with unmaps in flight leaves (entries cleared, memory and IOVAs
 * still held for devices that may cache them: a strict unmap's being
 * posted, a deferred one's queued for its flush) the journal names; the
 * reap makes those entries orphans, and the next poster, or the next
 * flush of any process, posts an invalidation of everything and frees
 * them.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
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
#include "base/sanitizer.h"
#include "iommu/iommu.h"
#include "iommu/pgtable.h"
#include "mp/domain.h"
#include "mp/mp_internal.h"

/* How long a poster sleeps before it looks whether a silent process still lives. */
#define ACK_RECHECK_NS 10000000L
/* How long an idle agent sleeps before it looks whether its view is closing. */
#define AGENT_RECHECK_NS 100000000L

static bool name_ok(const char *name)
{
	size_t n = name ? strnlen(name, IOVM_ZONE_NAMESIZE) : 0;

	return n && n < IOVM_ZONE_NAMESIZE;
}

static bool rec_has(const struct mp_domain_rec *r, unsigned slot)
{
	return r->views[slot / 64] >> (slot % 64) & 1;
}

static int find(const struct mp_ctl *c, const char *name)
{
	for (unsigned i = 0; i < MP_MAX_DOMAINS; i++)
		if (sdom_rec_open(&c->domains[i]) && !strncmp(c->domains[i].name, name, IOVM_ZONE_NAMESIZE))
			return (int)i;
	return -1;
}

void mp_domains_forget_slot(struct mp_heap *h, unsigned slot)
{
	for (unsigned i = 0; i < MP_MAX_DOMAINS; i++) {
		struct mp_domain_rec *r = &h->c->domains[i];

		r->views[slot / 64] &= ~(UINT64_C(1) << (slot % 64));
		mp_crash_point();
		/* Its unmaps in flight, left to the next invalidation of everything. */
		if (h->mem && r->grain != MP_NO_GRAIN) {
			struct mp_domain_shm *shm = (struct mp_domain_shm *)(h->mem + (r->grain << MP_GRAIN_SHIFT));
			unsigned order;
			uint8_t owner;

			if (!mp_heap_block(h, r->grain, &order, &owner) && shm->magic == DOMAIN_MAGIC)
				sdom_journal_orphan(shm, slot);
		}
	}
}

void mp_domains_tidy(struct mp_heap *h)
{
	bool gone = false;

	for (unsigned i = 0; i < MP_MAX_DOMAINS; i++) {
		struct mp_domain_rec *r = &h->c->domains[i];
		unsigned order;
		uint8_t owner;

		if (sdom_rec_open(r) || r->grain == MP_NO_GRAIN)
			continue;
		if (!gone) {
			/* Its mappings go with it: before its block, so that no free keeps memory for it. */
			sdom_maps_rebuild(h);
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
		sdom_held_sweep(h);
}

void mp_domains_repair(struct mp_heap *h)
{
	/* The dead holder's step first: it reads the counts as that process left them. */
	sdom_steps_repair(h);
	sdom_maps_rebuild(h);
	mp_domains_tidy(h);
	sdom_held_sweep(h);
}

/*
 * Whether slot @i still has the domain open, in a process that lives (a
 * zombie does not: its devices are gone). The record's bit, under the
 * lock: the reap of a dead process clears it, so that a process that
 * takes the slot afterwards is not waited for unless it opens the domain.
 */
bool sdom_still_open(struct mp_dview *v, unsigned i)
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
	bool orphans;

	if (mp_lock_plain(&shm->inval_lock))
		return; /* not recoverable: nothing can be posted any more */
	/*
	 * Pieces of a dead process's unmap: recorded, their entries cleared
	 * or (killed in between) cleared here, so that an invalidation of
	 * everything posted now reaches whatever any device still caches of
	 * them. This process's
	 * devices first, then every other's; then they are released.
	 */
	orphans = sdom_orphans_claim(v);
	/* What they recorded and did not clear: out of the table before the invalidation that lets it go. */
	if (orphans)
		sdom_orphans_unreach(v);
	if (orphans && len != UINT64_MAX) {
		iommu_domain_invalidate(v->dom, iova_make(0), UINT64_MAX);
		iova = iova_make(0);
		len = UINT64_MAX;
	}
	atomic_store_explicit(&shm->inval_iova, iova_val(iova), memory_order_relaxed);
	atomic_store_explicit(&shm->inval_len, len, memory_order_relaxed);
	seq = atomic_fetch_add_explicit(&shm->inval_seq, 1, memory_order_acq_rel) + 1;
	mp_futex(&shm->inval_seq, FUTEX_WAKE, INT_MAX, NULL);
	for (unsigned i = 0; i < MP_MAX_PROCS; i++) {
		if (i == v->s->slot)
			continue;
		for (;;) {
			uint32_t a = atomic_load_explicit(&shm->ack[i], memory_order_acquire);
			struct timespec recheck = { 0, ACK_RECHECK_NS };

			if (!atomic_load_explicit(&shm->listening[i], memory_order_acquire) || (int32_t)(a - seq) >= 0)
				break;
			if (!sdom_still_open(v, i))
				break;
			mp_futex(&shm->ack[i], FUTEX_WAIT, a, &recheck);
		}
	}
	if (orphans)
		sdom_orphans_release(v);
	pthread_mutex_unlock(&shm->inval_lock);
}

/* The view's agent: answers other processes' unmaps for this process's devices. */
static void *agent_main(void *arg)
{
	struct mp_dview *v = arg;
	struct mp_domain_shm *shm = v->shm;
	unsigned slot = v->s->slot;

	atomic_store_explicit(&v->agent_started, true, memory_order_release);
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

			mp_futex(&shm->inval_seq, FUTEX_WAIT, seq, &recheck);
			continue;
		}
		/* One posted at a time: the range is the one numbered @seq until this answer. */
		iommu_domain_invalidate(v->dom, iova_make(atomic_load_explicit(&shm->inval_iova, memory_order_relaxed)),
					atomic_load_explicit(&shm->inval_len, memory_order_relaxed));
		v->seen = seq;
		/* This process's walks before are over: a table the answer lets another process free may come back here. */
		tsan_release(&v->walks_over);
		atomic_store_explicit(&shm->ack[slot], seq, memory_order_release);
		mp_futex(&shm->ack[slot], FUTEX_WAKE, INT_MAX, NULL);
	}
	return NULL;
}

static void agent_stop(struct mp_dview *v)
{
	if (!v->agent_running)
		return;
	atomic_store_explicit(&v->agent_stop, true, memory_order_release);
	/* Every process's agents wake, look, and sleep again: rare, and harmless. */
	mp_futex(&v->shm->inval_seq, FUTEX_WAKE, INT_MAX, NULL);
	pthread_join(v->agent, NULL);
	v->agent_running = false;
}

static void quiesce(void *arg)
{
	struct mp_dview *v = arg;

	if (!v->live || v->s->fork_gen != mp_fork_gen())
		return;
	/* Its answers first: a request it runs may wait for an invalidation the agent answers. */
	sdom_server_stop(v);
	agent_stop(v);
	atomic_store_explicit(&v->shm->listening[v->s->slot], 0, memory_order_release);
	mp_futex(&v->shm->ack[v->s->slot], FUTEX_WAKE, INT_MAX, NULL);
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
	pthread_mutex_destroy(&v->server_lock);
	free(v);
}

static const struct iommu_shared_ops shared_ops = {
	.iova_alloc = sdom_iova_alloc,
	.iova_reserve = sdom_iova_reserve,
	.iova_free = sdom_iova_free,
	.iova_settled = sdom_iova_settled,
	.pa_hold = sdom_pa_hold,
	.pa_put = sdom_pa_put,
	.pa_release = sdom_pa_release,
	.pa_pending = sdom_pa_pending,
	.table_pending = sdom_table_pending,
	.orphans = sdom_orphans_waiting,
	.shadow = sdom_shadow,
	.pa_held = sdom_pa_held,
	.reg_pa = sdom_reg_pa_own,
	.delegate = sdom_delegate,
	.iova_stats = sdom_iova_stats,
	.tables_used = sdom_tables_used,
	.invalidate = invalidate,
	.quiesce = quiesce,
	.release = release,
};

/* ---- making and opening ---- */

/*
 * The view of record @rec (this process's bit set in it by the caller):
 * its iommu domain, then its agent, listening. On failure this process
 * leaves the record (the last one out frees the domain).
 */
static int view_open(struct mp_space *s, unsigned rec, uint64_t grain, struct iovm_domain **out)
{
	struct mp_dview *v = fi_calloc(1, sizeof(*v)), undo = { .s = s, .rec = rec, .grain = grain };
	struct iovm_domain_attr how;
	uint64_t root;
	int ret;

	if (!v) {
		ret = -ENOMEM;
		goto leave;
	}
	v->s = s;
	v->rec = rec;
	v->grain = grain;
	pthread_mutex_init(&v->server_lock, NULL);
	sdom_view_point(v);
	v->src = (struct pt_source){ .alloc = sdom_table_alloc, .free = sdom_table_free, .hung = sdom_table_hung,
				     .unhang = sdom_table_unhang, .arg = v,
				     .delta = (uintptr_t)s->heap - pa_val(s->pa), .pages_lo = v->pool,
				     .pages_hi = v->pool + (size_t)v->shm->pool_tables * SZ_4K };
	root = v->shm->root_pa;
	how = (struct iovm_domain_attr){ .type = IOVM_DOMAIN_MANAGED, .flags = v->shm->flags,
					 .flush_batch = v->shm->flush_batch,
					 .flush_timeout_us = v->shm->flush_timeout_us };
	ret = iommu_domain_create_shared(s->ctx, DOMAIN_IOVA_BASE + v->shm->iova_pages * SZ_4K, &shared_ops, v,
					 &v->src, &v->shm->cnt, &root, &how, &v->dom);
	if (ret)
		goto free_view;
	/* From the number now: what was posted before, this process's devices never saw. */
	v->seen = atomic_load_explicit(&v->shm->inval_seq, memory_order_acquire);
	atomic_store_explicit(&v->shm->ack[s->slot], v->seen, memory_order_release);
	ret = -fi_pthread_create(&v->agent, NULL, agent_main, v);
	if (ret)
		goto destroy_domain;
	v->agent_running = true;
	/* Returns once the agent runs: a fork() right after must not catch a thread setting itself up. */
	while (!atomic_load_explicit(&v->agent_started, memory_order_acquire))
		sched_yield();
	atomic_store_explicit(&v->shm->listening[s->slot], 1, memory_order_release);
	v->live = true;
	*out = v->dom;
	return 0;

destroy_domain:
	/* Not live: its release frees @v only. */
	iovm_domain_destroy(v->dom);
	goto leave;
free_view:
	pthread_mutex_destroy(&v->server_lock);
	free(v);
leave:
	if (!mp_lock(&s->h)) {
		rec_leave(&undo);
		mp_unlock(&s->h);
	}
	return ret;
}

/* Blocks a domain may not have before one it may: more are looked at only on a heap mostly mapped. */
#define BLOCK_TRIES 32

/*
 * A block of @size bytes for a domain's own, held by this process until
 * the record takes it, of memory no domain maps: free memory may be
 * mapped, and a device writing through such a mapping would rewrite the
 * new domain's tables. Mapped candidates are set aside while looking, then
 * given back as they were. -ENOMEM. Needs the lock.
 */
static int block_unmapped(struct mp_space *s, uint64_t size, uint64_t *grain)
{
	uint64_t aside[BLOCK_TRIES];
	unsigned n = 0, order;
	uint8_t owner;
	int ret;

	for (;;) {
		ret = mp_heap_alloc(&s->h, size, SZ_4K, s->slot, NULL, grain);
		if (ret)
			break;
		if (mp_heap_block(&s->h, *grain, &order, &owner) || !mp_domains_map(&s->h, *grain, order))
			break;
		if (n == BLOCK_TRIES) {
			mp_heap_unalloc(&s->h, *grain);
			ret = err_detail(-ENOMEM, IOVM_LOG_DEBUG,
					 "the shared heap's free memory is mapped in shared domains: no block for a domain");
			break;
		}
		aside[n++] = *grain;
	}
	while (n--)
		mp_heap_unalloc(&s->h, aside[n]);
	return ret;
}

/* The record's block, made and initialized; this process's bit, set last, commits it. Needs the lock. */
static int rec_make(struct mp_space *s, unsigned rec, const char *name, const struct sdom_layout *l)
{
	struct mp_domain_rec *r = &s->c->domains[rec];
	struct mp_domain_shm *shm;
	uint64_t grain;
	uint8_t *base;
	int ret;

	memset(r->name, 0, sizeof(r->name));
	strncpy(r->name, name, IOVM_ZONE_NAMESIZE - 1);
	mp_crash_point();
	ret = block_unmapped(s, l->size, &grain);
	if (ret)
		return ret;
	/*
	 * The record names the block, then the share takes it: killed between,
	 * the block is this process's, freed by its reap; the tidy frees the
	 * block of a record nobody opened only once it is the share's.
	 */
	r->grain = grain;
	mp_crash_point();
	s->h.owner[grain] = MP_OWNER_KEEP;
	mp_crash_point();
	base = s->heap + (grain << MP_GRAIN_SHIFT);
	memset(base, 0, l->pool_off + SZ_4K); /* the head, the journal, both bitmaps, the pending words, the refs, the root */
	shm = (struct mp_domain_shm *)base;
	shm->iova_pages = l->iova_pages;
	shm->flags = l->flags;
	shm->flush_batch = l->flush_batch;
	shm->flush_timeout_us = l->flush_timeout_us;
	shm->journal_off = l->journal_off;
	shm->owners_off = l->owners_off;
	shm->cells_off = l->cells_off;
	shm->shadow_off = l->shadow_off;
	shm->journal_mask = (uint32_t)(l->journal_entries - 1);
	shm->iova_map_off = l->iova_map_off;
	shm->pool_map_off = l->pool_map_off;
	shm->pend_off = l->pend_off;
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
	struct sdom_layout l = { 0 };
	struct mp_space *s;
	int ret, rec = -1;
	uint64_t grain;

	err_enter();
	if (!dom || !name_ok(name))
		return err_inval("!dom || name is not 1 to IOVM_ZONE_NAMESIZE-1 characters");
	ret = mp_space_of(ctx, &s);
	if (ret)
		return ret;
	ret = sdom_layout(s, params, &l);
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
			if (!sdom_rec_open(&s->c->domains[rec]) && s->c->domains[rec].grain == MP_NO_GRAIN)
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
	return view_open(s, (unsigned)rec, grain, dom);
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
	return view_open(s, (unsigned)rec, grain, dom);
}
