/* SPDX-License-Identifier: MIT */
/*
 * domain_remote.c - another process's device reaching a registration in a
 * shared domain. A registration's pages sit at PAs its IOVAs name
 * (sdom_reg_pa()); only the registering process has a window there, so a
 * device of any other process finds nothing on its bus (iommu/access.c:
 * PHYS_REACH_DELEGATED) and asks the registering process, the owner
 * of the IOVA's 2 MiB unit, to move the bytes (sdom_delegate()). The
 * owner's server thread does it with an engine of its own attached to
 * the domain (dev_xfer()), so its own translation, foreign gate and page
 * requests decide what is reached, exactly as for its own devices: the
 * asker gets nothing the domain does not map, and nothing after the
 * owner's unmap returned.
 *
 * Why not the owner's memory file, as a device process reads its
 * clients': opening another process's /proc/PID/mem needs ptrace rights
 * that Yama denies between siblings, and a file passed over a socket
 * needs the share's owner, which may be dead; and each pair of
 * processes would need a gate of its own. A request costs two futex
 * round trips; it is the slow path by nature.
 *
 * The asker waits outside its device-side section (the dev layer leaves
 * it): the owner's engine may wait for its own gate, whose munmap() waits
 * for the asker's agent, which waits for the asker's sections. It waits
 * as long as the owner keeps the domain open and lives.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <iovm/iommu.h>

#include "base/clock.h"
#include "base/fault_inject.h"
#include "dev/dev.h"
#include "iommu/iommu.h"
#include "mp/domain.h"

/* How often a waiting asker looks whether the owner still lives. */
#define ASK_RECHECK_NS 10000000L
/* How often an idle server looks whether it is to stop. */
#define SERVER_RECHECK_NS 100000000L
/* How long an asker looks for a free cell before it gives up (a fault). */
#define CELL_WAIT_NS (UINT64_C(5) * 1000000000)
/*
 * The cells one read asks for at once, those free at that moment: one
 * ring of the owner's bell and one wait for up to 16 KiB, where a cell
 * at a time paid two futex round trips per 4 KiB. Reads only: a write
 * split over cells that the server may take in any order could land
 * bytes beyond the first that failed, which a partial completion must
 * not count and the memory must not get.
 */
#define DELEGATE_CELLS 4
static_assert(DELEGATE_CELLS <= SDOM_CELLS, "one asker leaves cells to the others");
static_assert(DELEGATE_CELLS * SDOM_CELL_DATA == IOMMU_DELEGATE_SPAN, "a span's read in one ask");

/* ---- the owner's side ---- */

/* One request, in @c, which this server holds RUNNING (@w: its word then). */
static void serve(struct mp_dview *v, struct sdom_cell *c, uint32_t w)
{
	uint64_t len = atomic_load_explicit(&c->len, memory_order_relaxed), done = 0;
	unsigned op = atomic_load_explicit(&c->op, memory_order_relaxed), reason = IOVM_FAULT_BUS;
	int ret = -EINVAL;

	if (!v->xfer && (ret = dev_xfer_open(v->s->ctx, v->dom, &v->xfer)))
		v->xfer = NULL;
	if (v->xfer && len <= SDOM_CELL_DATA)
		ret = dev_xfer(v->xfer, iova_make(atomic_load_explicit(&c->iova, memory_order_relaxed)), c->data, len,
			       op, &done, &reason);
	atomic_store_explicit(&c->done, done, memory_order_relaxed);
	atomic_store_explicit(&c->reason, reason, memory_order_relaxed);
	atomic_store_explicit(&c->ret, ret, memory_order_relaxed);
	atomic_store_explicit(&c->word, SDOM_CELL_WORD(SDOM_CELL_ANSWERED, SDOM_CELL_SLOT(w), SDOM_CELL_GEN(w)),
			      memory_order_release);
	mp_futex(&c->word, FUTEX_WAKE, INT_MAX, NULL);
}

/* The server: answers the requests asked of this process, one at a time. */
static void *server_main(void *arg)
{
	struct mp_dview *v = arg;
	_Atomic uint32_t *bell = &v->shm->bell[v->s->slot];

	atomic_store_explicit(&v->server_started, true, memory_order_release);
	while (!atomic_load_explicit(&v->server_stop, memory_order_acquire)) {
		uint32_t rung = atomic_load_explicit(bell, memory_order_acquire);
		bool any = false;

		for (unsigned i = 0; i < SDOM_CELLS; i++) {
			struct sdom_cell *c = &v->cells[i];
			uint32_t w = atomic_load_explicit(&c->word, memory_order_acquire);

			if (SDOM_CELL_STATE(w) != SDOM_CELL_ASKED ||
			    atomic_load_explicit(&c->owner, memory_order_relaxed) != v->s->slot)
				continue;
			uint32_t running = SDOM_CELL_WORD(SDOM_CELL_RUNNING, SDOM_CELL_SLOT(w), SDOM_CELL_GEN(w));

			/* Lost to an asker that gave up on it: not ours any more. */
			if (!atomic_compare_exchange_strong_explicit(&c->word, &w, running, memory_order_acq_rel,
								     memory_order_acquire))
				continue;
			/* The request's fields were written before ASKED: read after the exchange. */
			serve(v, c, running);
			any = true;
		}
		if (!any) {
			/* A bell rung since @rung wakes at once; the stop's wake can be missed: the sleep ends anyway. */
			struct timespec recheck = { 0, SERVER_RECHECK_NS };

			mp_futex(bell, FUTEX_WAIT, rung, &recheck);
		}
	}
	return NULL;
}

/* Start this view's server once: a registration's IOVAs may be asked for from now on. */
static int server_start(struct mp_dview *v)
{
	int ret = 0;

	pthread_mutex_lock(&v->server_lock);
	if (!v->server_running && !atomic_load_explicit(&v->server_stop, memory_order_relaxed)) {
		ret = -fi_pthread_create(&v->server, NULL, server_main, v);
		if (!ret) {
			v->server_running = true;
			/* As the agent: a fork() right after must not catch a thread setting itself up. */
			while (!atomic_load_explicit(&v->server_started, memory_order_acquire))
				sched_yield();
		}
	}
	pthread_mutex_unlock(&v->server_lock);
	return ret;
}

void sdom_server_stop(struct mp_dview *v)
{
	pthread_mutex_lock(&v->server_lock);
	atomic_store_explicit(&v->server_stop, true, memory_order_release);
	if (v->server_running) {
		atomic_fetch_add_explicit(&v->shm->bell[v->s->slot], 1, memory_order_release);
		mp_futex(&v->shm->bell[v->s->slot], FUTEX_WAKE, INT_MAX, NULL);
		pthread_join(v->server, NULL);
		v->server_running = false;
	}
	/* Hidden from the domain's destroy, which called us: detached here. */
	dev_xfer_close(v->xfer);
	v->xfer = NULL;
	pthread_mutex_unlock(&v->server_lock);
}

int sdom_reg_pa_own(void *arg, iova_t iova, uint64_t len, pa_t *pa)
{
	struct mp_dview *v = arg;
	uint64_t first, last;
	int ret = sdom_reg_pa(v, iova, len, pa);

	if (ret || !len)
		return ret;
	ret = server_start(v);
	if (ret)
		return ret;
	/*
	 * The units are this registration's (the allocator gave it them whole):
	 * one store each. A stale owner left by a registration that went is
	 * harmless: its process's engine finds nothing of its own there.
	 */
	first = (iova_val(iova) - DOMAIN_IOVA_BASE) >> SDOM_UNIT_SHIFT;
	last = (iova_val(iova) - DOMAIN_IOVA_BASE + len - 1) >> SDOM_UNIT_SHIFT;
	for (uint64_t u = first; u <= last; u++)
		atomic_store_explicit(&v->owners[u], (uint16_t)(v->s->slot + 1), memory_order_release);
	return 0;
}

/* ---- the asker's side ---- */

/*
 * Whether cell word @w, not this thread's, may be taken over: its asker
 * is gone (or is this process's slot before this process: a thread of
 * this process holds a cell only with its bit in cells_mine, which the
 * caller holds), and if the owner runs it, the owner is gone too.
 */
static bool cell_stale(struct mp_dview *v, struct sdom_cell *c, uint32_t w)
{
	unsigned asker = SDOM_CELL_SLOT(w);

	if (asker != v->s->slot && sdom_still_open(v, asker))
		return false;
	return SDOM_CELL_STATE(w) != SDOM_CELL_RUNNING ||
	       !sdom_still_open(v, atomic_load_explicit(&c->owner, memory_order_relaxed));
}

/* One look at every cell for one this thread may take (@stale: also one its asker left), TAKEN; or NULL. */
static struct sdom_cell *cell_grab(struct mp_dview *v, uint32_t *w, bool stale)
{
	for (unsigned i = 0; i < SDOM_CELLS; i++) {
		struct sdom_cell *c = &v->cells[i];
		uint32_t bit = UINT32_C(1) << i, old;

		/* Another thread of this process is on it. */
		if (atomic_fetch_or_explicit(&v->cells_mine, bit, memory_order_acq_rel) & bit)
			continue;
		old = atomic_load_explicit(&c->word, memory_order_acquire);
		*w = SDOM_CELL_WORD(SDOM_CELL_TAKEN, v->s->slot, SDOM_CELL_GEN(old) + 1);
		if ((SDOM_CELL_STATE(old) == SDOM_CELL_FREE || (stale && cell_stale(v, c, old))) &&
		    atomic_compare_exchange_strong_explicit(&c->word, &old, *w, memory_order_acq_rel,
							    memory_order_acquire))
			return c;
		atomic_fetch_and_explicit(&v->cells_mine, ~bit, memory_order_release);
	}
	return NULL;
}

/* A cell for this thread, TAKEN (its word in *@w), or NULL when none came free in CELL_WAIT_NS. */
static struct sdom_cell *cell_take(struct mp_dview *v, uint32_t *w)
{
	uint64_t since = clock_now_ns();

	for (unsigned round = 0;; round++) {
		struct sdom_cell *c = cell_grab(v, w, round > 0);

		if (c)
			return c;
		if (clock_now_ns() - since > CELL_WAIT_NS)
			return NULL;
		sched_yield();
	}
}

static void cell_put(struct mp_dview *v, struct sdom_cell *c, uint32_t w)
{
	atomic_store_explicit(&c->word, SDOM_CELL_WORD(SDOM_CELL_FREE, 0, SDOM_CELL_GEN(w)), memory_order_release);
	atomic_fetch_and_explicit(&v->cells_mine, ~(UINT32_C(1) << (c - v->cells)), memory_order_release);
}

/*
 * Wait for the answer to the request in @c (asked: @w). false when the
 * owner closed the domain or died first: the cell is this thread's
 * again, TAKEN, and nobody writes it.
 */
static bool answer_wait(struct mp_dview *v, struct sdom_cell *c, unsigned owner, uint32_t *w)
{
	for (;;) {
		uint32_t now = atomic_load_explicit(&c->word, memory_order_acquire);
		struct timespec recheck = { 0, ASK_RECHECK_NS };

		if (SDOM_CELL_STATE(now) == SDOM_CELL_ANSWERED) {
			*w = now;
			return true;
		}
		if (mp_futex(&c->word, FUTEX_WAIT, now, &recheck) == 0 || errno != ETIMEDOUT)
			continue;
		if (sdom_still_open(v, owner))
			continue;
		/* Its server is gone: take the cell back, unless the answer came meanwhile. */
		*w = SDOM_CELL_WORD(SDOM_CELL_TAKEN, v->s->slot, SDOM_CELL_GEN(now));
		if ((SDOM_CELL_STATE(now) == SDOM_CELL_ASKED || SDOM_CELL_STATE(now) == SDOM_CELL_RUNNING) &&
		    atomic_compare_exchange_strong_explicit(&c->word, &now, *w, memory_order_acq_rel, memory_order_acquire))
			return false;
	}
}

/* Ask @owner for what cell @c (TAKEN, word *@w) is to hold: [iova, +len), @op; ASKED after. */
static void cell_ask(struct mp_dview *v, struct sdom_cell *c, uint32_t *w, unsigned owner, unsigned op, iova_t iova,
		     const void *buf, uint64_t len)
{
	atomic_store_explicit(&c->owner, owner, memory_order_relaxed);
	atomic_store_explicit(&c->op, op, memory_order_relaxed);
	atomic_store_explicit(&c->iova, iova_val(iova), memory_order_relaxed);
	atomic_store_explicit(&c->len, len, memory_order_relaxed);
	if (op == IOMMU_DELEGATE_WRITE)
		memcpy(c->data, buf, len);
	*w = SDOM_CELL_WORD(SDOM_CELL_ASKED, v->s->slot, SDOM_CELL_GEN(*w));
	atomic_store_explicit(&c->word, *w, memory_order_release);
}

int sdom_delegate(void *arg, iova_t iova, void *buf, uint64_t len, unsigned op, uint64_t *done, unsigned *reason)
{
	struct mp_dview *v = arg;
	uint64_t off = iova_val(iova) - DOMAIN_IOVA_BASE;
	struct sdom_cell *c[DELEGATE_CELLS];
	uint32_t w[DELEGATE_CELLS];
	unsigned owner, n = 1;
	bool whole = true;
	int ret = 0;

	*done = 0;
	*reason = IOVM_FAULT_BUS;
	if (sdom_not_forked(v) || iova_val(iova) < DOMAIN_IOVA_BASE || off / SZ_4K >= v->shm->iova_pages || !len)
		return -EFAULT;
	owner = atomic_load_explicit(&v->owners[off >> SDOM_UNIT_SHIFT], memory_order_acquire);
	/* Nobody's; or this process's own, whose window went: nothing to ask. */
	if (!owner-- || owner == v->s->slot || owner >= MP_MAX_PROCS)
		return -EFAULT;
	len = MIN(len, (op == IOMMU_DELEGATE_READ ? DELEGATE_CELLS : 1) * SDOM_CELL_DATA);
	c[0] = cell_take(v, &w[0]);
	if (!c[0])
		return -EFAULT;
	/* More of a read in the cells free now; none is waited for. */
	while (n * SDOM_CELL_DATA < len && (c[n] = cell_grab(v, &w[n], false)))
		n++;
	len = MIN(len, n * SDOM_CELL_DATA);
	for (unsigned i = 0; i < n; i++)
		cell_ask(v, c[i], &w[i], owner, op, iova_add(iova, i * SDOM_CELL_DATA),
			 buf ? (const uint8_t *)buf + i * SDOM_CELL_DATA : NULL, MIN(SDOM_CELL_DATA, len - i * SDOM_CELL_DATA));
	atomic_fetch_add_explicit(&v->shm->bell[owner], 1, memory_order_release);
	mp_futex(&v->shm->bell[owner], FUTEX_WAKE, INT_MAX, NULL);
	/* Each answer, in order: what counts is the bytes up to the first that a cell did not move. */
	for (unsigned i = 0; i < n; i++) {
		uint64_t want = MIN(SDOM_CELL_DATA, len - i * SDOM_CELL_DATA), got;

		if (!answer_wait(v, c[i], owner, &w[i])) {
			cell_put(v, c[i], w[i]);
			if (whole)
				ret = -EFAULT;
			whole = false;
			continue;
		}
		got = MIN(atomic_load_explicit(&c[i]->done, memory_order_relaxed), want);
		if (whole) {
			*reason = atomic_load_explicit(&c[i]->reason, memory_order_relaxed);
			ret = atomic_load_explicit(&c[i]->ret, memory_order_relaxed) ? -EFAULT : 0;
			if (op == IOMMU_DELEGATE_READ)
				memcpy((uint8_t *)buf + i * SDOM_CELL_DATA, c[i]->data, got);
			*done += got;
			whole = !ret && got == want;
		}
		cell_put(v, c[i], w[i]);
	}
	return ret;
}
