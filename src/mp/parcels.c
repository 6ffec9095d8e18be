/* SPDX-License-Identifier: MIT */
/*
 * parcels.c - the shared heap's memory, committed as it is used and
 * given back once free, and every process's memory-event subscribers
 * (a domain that follows the heap) kept in step with it.
 *
 * The heap's memfd is mapped in every process without a reservation
 * (MAP_NORESERVE): its size is address and PA space, not memory. Memory
 * comes by parcels of 2 MiB: an allocation that meets a parcel with
 * none commits it (fallocate(): hugepages are taken then, or the
 * allocation fails), under the share's lock, before anyone has the
 * block's address. Once more than MP_TRIM_KEEP committed parcels are
 * free, a free trims: it takes a free block that holds some (owner
 * MP_OWNER_KEEP, lender MP_LENDER_TRIM), marks them RELEASING, and, with
 * the lock let go, waits until every follower has unmapped them; then it
 * punches the holes and frees the block. One trim at a time (mp_ctl.trimmer).
 *
 * Followers. Each change of a parcel's state bumps mp_ctl.heap_seq. A
 * process whose context has memory-event subscribers follows: its thread
 * (mp_follow_start()) wakes on heap_seq, brings its subscribers to the
 * parcels' states (mem_shared_sync(): a commit event for each parcel
 * newly committed, a release for each that is no longer), and answers in
 * heap_ack. Whoever changed a parcel waits, in mp_follow_wait(), after
 * its own subscribers are in step, for every live follower to answer: an
 * allocation returns once every process's following domains map its
 * memory, and a trim punches nothing a following domain still maps.
 *
 * Crashes. A commit is fallocate(), then the state's one store: killed
 * between, the next commit of the parcel allocates nothing twice. A dead
 * trimmer's block (mp_parcel_forget_slot(), from its reap) is freed with
 * its parcels UNCOMMITTED: followers unmap them at their next look, and
 * the next commit finds whatever memory is still there. The repair after
 * a death under the lock commits what an allocated block lacks.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "base/compiler.h"
#include "base/ctx.h"
#include "base/error.h"
#include "base/fault_inject.h"
#include "base/log.h"
#include "mem/mem.h"
#include "mp/mp_internal.h"

/* How long a waiter sleeps before it looks whether a silent follower still lives; a follower, whether to stop. */
#define FOLLOW_RECHECK_NS 10000000L
#define FOLLOWER_IDLE_NS 100000000L

static uint8_t parcel_get(const struct mp_heap *h, uint64_t i)
{
	return __atomic_load_n(&h->parcel[i], __ATOMIC_ACQUIRE);
}

/* A parcel's new state, and the change told: one store each. Needs the lock. */
static void parcel_set(struct mp_heap *h, uint64_t i, uint8_t st)
{
	__atomic_store_n(&h->parcel[i], st, __ATOMIC_RELEASE);
	mp_crash_point();
	atomic_fetch_add_explicit(&h->c->heap_seq, 1, memory_order_acq_rel);
}

/* The parcels the block at @grain of @order meets: [*first, *last]. */
static void block_parcels(uint64_t grain, unsigned order, uint64_t *first, uint64_t *last)
{
	*first = (grain << MP_GRAIN_SHIFT) >> MP_PARCEL_SHIFT;
	*last = (((grain + (UINT64_C(1) << order)) << MP_GRAIN_SHIFT) - 1) >> MP_PARCEL_SHIFT;
}

int mp_parcel_commit(struct mp_heap *h, uint64_t grain, unsigned order)
{
	uint64_t first, last;

	block_parcels(grain, order, &first, &last);
	if (h->fd < 0)
		return 0; /* a region without memory behind it (the crash tests) */
	for (uint64_t i = first; i <= last && i < h->c->nparcels; i++) {
		uint8_t st = parcel_get(h, i);

		if (st == MP_PARCEL_COMMITTED)
			continue;
		/* A RELEASING parcel is inside the trim's block: no allocation reaches it. */
		if (IOVM_WARN_ON(st != MP_PARCEL_UNCOMMITTED))
			return -EINVAL;
		if (fi_fallocate(h->fd, 0, (off_t)(i << MP_PARCEL_SHIFT), (off_t)MP_PARCEL))
			return err_detail(-ENOMEM, IOVM_LOG_DEBUG, "the shared heap: no memory for a parcel of 2 MiB (%s)",
					  strerror(errno));
		mp_crash_point();
		parcel_set(h, i, MP_PARCEL_COMMITTED);
		h->c->committed_parcels++;
		h->c->commits++;
	}
	return 0;
}

/* ---- followers ---- */

/* Whether slot @i follows and lives: one to wait for. Takes the lock (the slot's record is under it). */
static bool follower_live(struct mp_heap *h, unsigned i)
{
	const struct mp_ctl *c = h->c;
	bool live;

	if (!atomic_load_explicit(&c->heap_follows[i], memory_order_acquire) || mp_lock(h))
		return false;
	live = c->slots[i].state == MP_SLOT_LIVE && !mp_slot_exited(&c->slots[i]);
	mp_unlock(h);
	return live;
}

/* This process's subscribers brought to the parcels' states; the heap_seq they are at. */
static uint32_t follow_apply(struct mp_space *s)
{
	uint32_t seq;

	pthread_mutex_lock(&s->follow_lock);
	/* Read first: what the sync sees is at least this recent. */
	seq = atomic_load_explicit(&s->c->heap_seq, memory_order_acquire);
	if (seq != s->followed_seq) {
		mem_shared_sync(s->ctx->mem);
		s->followed_seq = seq;
	}
	if (atomic_load_explicit(&s->c->heap_follows[s->slot], memory_order_relaxed)) {
		atomic_store_explicit(&s->c->heap_ack[s->slot], seq, memory_order_release);
		mp_futex(&s->c->heap_ack[s->slot], FUTEX_WAKE, INT_MAX, NULL);
	}
	pthread_mutex_unlock(&s->follow_lock);
	return seq;
}

uint32_t mp_follow_seq(const struct mp_space *s)
{
	return atomic_load_explicit(&s->c->heap_seq, memory_order_acquire);
}

void mp_follow_wait(struct mp_space *s, uint32_t seq)
{
	struct mp_ctl *c = s->c;

	/* Waited for already, by this process: nothing changed since. */
	if (seq == atomic_load_explicit(&s->waited_seq, memory_order_acquire))
		return;
	follow_apply(s);
	mp_futex(&c->heap_seq, FUTEX_WAKE, INT_MAX, NULL);
	for (unsigned i = 0; i < MP_MAX_PROCS; i++) {
		if (i == s->slot)
			continue;
		for (;;) {
			uint32_t a = atomic_load_explicit(&c->heap_ack[i], memory_order_acquire);
			struct timespec recheck = { 0, FOLLOW_RECHECK_NS };

			if ((int32_t)(a - seq) >= 0 || !follower_live(&s->h, i))
				break;
			mp_futex(&c->heap_ack[i], FUTEX_WAIT, a, &recheck);
		}
	}
	atomic_store_explicit(&s->waited_seq, seq, memory_order_release);
}

static void *follower_main(void *arg)
{
	struct mp_space *s = arg;
	struct mp_ctl *c = s->c;

	while (!atomic_load_explicit(&s->follower_stop, memory_order_acquire)) {
		uint32_t seq = atomic_load_explicit(&c->heap_seq, memory_order_acquire);
		struct timespec idle = { 0, FOLLOWER_IDLE_NS };

		if (seq != atomic_load_explicit(&c->heap_ack[s->slot], memory_order_relaxed)) {
			follow_apply(s);
			continue;
		}
		mp_futex(&c->heap_seq, FUTEX_WAIT, seq, &idle);
	}
	return NULL;
}

int mp_follow_start(struct mp_space *s)
{
	int ret;

	if (s->follower_running)
		return 0;
	atomic_store_explicit(&s->follower_stop, false, memory_order_relaxed);
	/* Answering before the thread runs: an answer given now covers everything before it. */
	atomic_store_explicit(&s->c->heap_ack[s->slot], s->followed_seq, memory_order_relaxed);
	atomic_store_explicit(&s->c->heap_follows[s->slot], 1, memory_order_release);
	ret = -fi_pthread_create(&s->follower, NULL, follower_main, s);
	if (ret) {
		atomic_store_explicit(&s->c->heap_follows[s->slot], 0, memory_order_release);
		return err_detail(ret, IOVM_LOG_ERR, "cannot start the thread that follows the shared heap");
	}
	s->follower_running = true;
	/* What changed before it answered. */
	follow_apply(s);
	return 0;
}

void mp_follow_stop(struct mp_space *s)
{
	if (!s->follower_running)
		return;
	/* Not waited for any more: then the thread goes. */
	atomic_store_explicit(&s->c->heap_follows[s->slot], 0, memory_order_release);
	atomic_store_explicit(&s->follower_stop, true, memory_order_release);
	atomic_fetch_add_explicit(&s->c->heap_seq, 0, memory_order_acq_rel);
	mp_futex(&s->c->heap_seq, FUTEX_WAKE, INT_MAX, NULL);
	pthread_join(s->follower, NULL);
	s->follower_running = false;
}

/* ---- trimming ---- */

/* Committed parcels of [first, last]. */
static uint64_t committed_in(const struct mp_heap *h, uint64_t first, uint64_t last)
{
	uint64_t n = 0;

	for (uint64_t i = first; i <= last && i < h->c->nparcels; i++)
		n += parcel_get(h, i) == MP_PARCEL_COMMITTED;
	return n;
}

/*
 * A free block worth trimming: whole parcels, of which committed ones,
 * while more than @keep committed parcels are free. Needs the lock.
 */
static bool trim_pick(struct mp_heap *h, uint64_t keep, uint64_t *grain, unsigned *order)
{
	struct mp_ctl *c = h->c;
	uint64_t free_committed = 0, best = MP_NO_GRAIN;
	unsigned best_order = 0;

	for (unsigned o = MP_PARCEL_ORDER; o <= MP_MAX_ORDER; o++) {
		for (uint64_t e = c->free_head[o]; e; e = h->next[e - 1]) {
			uint64_t first, last, n;

			block_parcels(e - 1, o, &first, &last);
			n = committed_in(h, first, last);
			free_committed += n;
			if (n && best == MP_NO_GRAIN) {
				best = e - 1;
				best_order = o;
			}
		}
	}
	if (best == MP_NO_GRAIN || free_committed <= keep)
		return false;
	*grain = best;
	*order = best_order;
	return true;
}

/* One trim, past @keep free committed parcels: the parcels it gave back. */
static uint64_t trim_once(struct mp_space *s, uint64_t keep)
{
	struct mp_heap *h = &s->h;
	struct mp_ctl *c = s->c;
	uint64_t grain, first, last, given = 0;
	unsigned order;
	uint32_t seq;

	if (h->fd < 0 || mp_lock(h))
		return 0;
	if (c->trimmer || !trim_pick(h, keep, &grain, &order)) {
		mp_unlock(h);
		return 0;
	}
	/* Named before it is taken: a death anywhere after leaves a trim its reap ends. */
	c->trim_grain = grain;
	mp_crash_point();
	c->trimmer = (uint32_t)s->slot + 1;
	mp_crash_point();
	if (mp_heap_take(h, grain, order, MP_OWNER_KEEP, MP_LENDER_TRIM)) {
		c->trimmer = 0;
		c->trim_grain = MP_NO_GRAIN;
		mp_unlock(h);
		return 0;
	}
	block_parcels(grain, order, &first, &last);
	for (uint64_t i = first; i <= last; i++)
		if (parcel_get(h, i) == MP_PARCEL_COMMITTED)
			parcel_set(h, i, MP_PARCEL_RELEASING);
	seq = mp_follow_seq(s);
	mp_unlock(h);

	/* Every follower unmaps them (this process's first), then the holes. */
	mp_follow_wait(s, seq);
	for (uint64_t i = first; i <= last; i++)
		if (parcel_get(h, i) == MP_PARCEL_RELEASING &&
		    fi_fallocate(h->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)(i << MP_PARCEL_SHIFT), (off_t)MP_PARCEL))
			log_warn("shared heap %s: cannot give back a parcel: %s", s->name, strerror(errno));

	if (mp_lock(h))
		return 0; /* unrecoverable: the trim stays, its memory with it */
	for (uint64_t i = first; i <= last; i++)
		if (parcel_get(h, i) == MP_PARCEL_RELEASING) {
			parcel_set(h, i, MP_PARCEL_UNCOMMITTED);
			c->committed_parcels--;
			c->releases++;
			given++;
		}
	lender_set(&h->lender[grain], MP_LENDER_NONE);
	mp_crash_point();
	mp_heap_free(h, grain);
	c->trimmer = 0;
	mp_crash_point();
	c->trim_grain = MP_NO_GRAIN;
	mp_unlock(h);
	return given;
}

bool mp_parcel_trim_due(const struct mp_heap *h)
{
	const struct mp_ctl *c = h->c;
	uint64_t used = (c->ngrains - c->free_grains) << MP_GRAIN_SHIFT;

	/*
	 * Free committed parcels are at most the committed bytes no block
	 * holds: with no more than MP_TRIM_KEEP parcels of those, no trim
	 * could pick one, and the free need not look (trim_pick() walks the
	 * free lists of parcel-sized blocks).
	 */
	return h->fd >= 0 && !c->trimmer && (c->committed_parcels << MP_PARCEL_SHIFT) > used &&
	       (c->committed_parcels << MP_PARCEL_SHIFT) - used > (uint64_t)MP_TRIM_KEEP << MP_PARCEL_SHIFT;
}

void mp_parcel_trim(struct mp_space *s)
{
	(void)trim_once(s, MP_TRIM_KEEP);
}

uint64_t mp_parcel_trim_all(struct mp_space *s, bool all)
{
	uint64_t given = 0, n;

	/* This thread's cached small blocks first: they keep parcels from being free. */
	mp_tcache_drain(s);
	while ((n = trim_once(s, all ? 0 : MP_TRIM_KEEP)))
		given += n;
	return given << MP_PARCEL_SHIFT;
}

/*
 * The trim's block, whether its trim is under way (lender MP_LENDER_TRIM)
 * or ending (MP_LENDER_NONE: its free began): its order; false when it is
 * no longer allocated (never taken, or freed).
 */
static bool trim_block(const struct mp_heap *h, unsigned *order, bool *ending)
{
	uint64_t g = h->c->trim_grain;
	uint8_t owner, l;

	if (g == MP_NO_GRAIN || mp_heap_block(h, g, order, &owner) || owner != MP_OWNER_KEEP)
		return false;
	l = lender_get(&h->lender[g]);
	*ending = l == MP_LENDER_NONE;
	return l == MP_LENDER_TRIM || l == MP_LENDER_NONE;
}

/* A trim whose process died: its block freed, its parcels without memory as far as anyone knows. */
static void trim_end(struct mp_heap *h)
{
	struct mp_ctl *c = h->c;
	uint64_t g = c->trim_grain, first, last;
	unsigned order;
	bool ending;

	if (trim_block(h, &order, &ending)) {
		block_parcels(g, order, &first, &last);
		for (uint64_t i = first; i <= last && i < c->nparcels; i++)
			if (parcel_get(h, i) == MP_PARCEL_RELEASING) {
				/* Whether the hole was punched is not known: the next commit allocates what is missing. */
				parcel_set(h, i, MP_PARCEL_UNCOMMITTED);
				c->committed_parcels--;
			}
		lender_set(&h->lender[g], MP_LENDER_NONE);
		mp_crash_point();
		mp_heap_free(h, g);
	}
	c->trimmer = 0;
	mp_crash_point();
	c->trim_grain = MP_NO_GRAIN;
}

void mp_parcel_forget_slot(struct mp_heap *h, unsigned i)
{
	struct mp_ctl *c = h->c;

	atomic_store_explicit(&c->heap_follows[i], 0, memory_order_release);
	if (c->trimmer == i + 1)
		trim_end(h);
}

void mp_parcel_repair(struct mp_heap *h)
{
	struct mp_ctl *c = h->c;

	/*
	 * The trimmer died under the lock: in its end (its block's free begun),
	 * finished now; named but never taken, or freed already, only the
	 * names go. One under way (waiting, punching) is its reap's to end.
	 */
	if (c->trimmer) {
		unsigned order;
		bool ending = false;

		if (!trim_block(h, &order, &ending) || ending)
			trim_end(h);
	}
	if (h->fd < 0)
		return;
	/* The count, from the states: a death between a state's store and the count's. */
	c->committed_parcels = 0;
	for (uint64_t i = 0; i < c->nparcels; i++)
		c->committed_parcels += parcel_get(h, i) != MP_PARCEL_UNCOMMITTED;
	/* Allocated blocks have memory: a death between the block and its commit is finished here. */
	for (uint64_t g = 0; g < c->ngrains;) {
		uint8_t st = h->state[g];
		unsigned order = st & MP_ORDER_MASK;

		if ((st & MP_ALLOCATED) && lender_get(&h->lender[g]) != MP_LENDER_TRIM && mp_parcel_commit(h, g, order))
			log_warn("shared heap: an allocated block lacks memory the kernel will not give");
		g += UINT64_C(1) << order;
	}
}
