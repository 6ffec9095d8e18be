/* SPDX-License-Identifier: MIT */
/*
 * monitor_batch.c - the memory monitor's event ring and its batches:
 * producers (the reader, monitor.c; libc's munmap() through the hooks,
 * hooks.c) close the gate, queue events and count a batch; the
 * invalidator thread takes the batches, invalidates what they cover and
 * opens the gate; lookups wait for the batches begun before them
 * (reg_settle_wait()). monitor.c's first comment says why it is so.
 */
#include <errno.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/compiler.h"
#include "base/counter.h"
#include "base/epoch.h"
#include "base/lock.h"
#include "os/patch.h"
#include "phys/phys.h"
#include "reg/monitor.h"

_Atomic(monitor_test_hook) monitor_test_hold;

/*
 * Set on the invalidator while it invalidates: a munmap() it makes then
 * (free() of a block glibc had mapped) begins a batch in its hook, whose
 * yield must not wait for a gate only this thread opens.
 */
static __thread bool opening_gate __tls_ie;

_Atomic uint64_t monitor_push_wait_ns = MON_PUSH_WAIT_NS;

static void mon_wake(struct reg_monitor *m);

/*
 * The ring is full: whether to wait for the invalidator to make room
 * (after a sched_yield(), the invalidator woken), or to drop the event.
 * An event dropped invalidates every monitored registration, a pinned
 * one's pages included, which no event touched: a stream of unmaps from
 * several threads on a loaded machine filled the ring now and then, and
 * attack18's pinned MR died under descriptors on pages nobody discarded.
 * So a producer waits, bounded: the invalidator may itself wait for this
 * producer (its own munmap() waiting for the reader to read the event;
 * a malloc arena lock the hook's caller holds), and never makes room
 * for its own events (it frees the ring only after its pass). Once an
 * event is lost the rest may go too: everything is invalidated anyway.
 */
static bool ring_wait(struct reg_monitor *m, uint64_t *since)
{
	uint64_t now, wait = atomic_load_explicit(&monitor_push_wait_ns, memory_order_relaxed);

	if (opening_gate || !wait || atomic_load_explicit(&m->overflow, memory_order_acquire))
		return false;
	now = clock_now_ns();
	if (!*since) {
		*since = now;
		/* Before the wake-up (seq_cst): an invalidator that finds nothing pending sees it. */
		atomic_fetch_add_explicit(&m->push_waiting, 1, memory_order_seq_cst);
		mon_wake(m);
	} else if (now - *since >= wait) {
		return false;
	}
	sched_yield();
	return true;
}

void mon_push(struct reg_monitor *m, uint8_t kind, uint64_t start, uint64_t len, bool source_kept)
{
	uint64_t tail = atomic_load_explicit(&m->tail, memory_order_relaxed), since = 0;
	bool room = true;

	for (;;) {
		if (tail - atomic_load_explicit(&m->head, memory_order_acquire) >= RING_SIZE) {
			room = ring_wait(m, &since);
			if (!room)
				break;
			tail = atomic_load_explicit(&m->tail, memory_order_relaxed);
		} else if (atomic_compare_exchange_weak_explicit(&m->tail, &tail, tail + 1, memory_order_acq_rel,
								 memory_order_relaxed)) {
			break;
		}
	}
	if (since)
		atomic_fetch_sub_explicit(&m->push_waiting, 1, memory_order_release);
	if (!room) {
		atomic_store_explicit(&m->overflow, true, memory_order_release);
		return;
	}
	m->ring[tail & (RING_SIZE - 1)] =
		(struct mon_event){ .kind = kind, .source_kept = source_kept, .start = start, .len = len };
	atomic_store_explicit(&m->ready[tail & (RING_SIZE - 1)], tail + 1, memory_order_release);
}

/* The reader's yield stops once a hook closed the gate: that hook's munmap() may wait for the reader. */
static bool hook_closing(void *arg)
{
	struct reg_monitor *m = arg;

	return atomic_load_explicit(&m->hooks_closing, memory_order_seq_cst) != 0;
}

/*
 * The tickets' slots were overrun (invalidate_batches()): a hook's next
 * batch waits, holding nothing, until the invalidator settled by counting,
 * which it can only once no batch is between begin and queued. Without
 * the wait, threads that discard memory in a loop could keep lookups
 * waiting as long as they go on. Bounded as a wait for room in the ring
 * is (the invalidator may wait for this very caller).
 */
static void tickets_wait(struct reg_monitor *m)
{
	uint64_t wait = atomic_load_explicit(&monitor_push_wait_ns, memory_order_relaxed), since = clock_now_ns(),
		 woke = 0;

	while (atomic_load_explicit(&m->tickets_behind, memory_order_acquire)) {
		uint64_t now = clock_now_ns();

		if (now - since >= wait)
			return;
		if (now - woke >= 1000000) {
			mon_wake(m);
			woke = now;
		}
		sched_yield();
	}
}

uint64_t mon_batch_begin(struct reg_monitor *m, bool reader)
{
	uint64_t ticket;

	if (unlikely(atomic_load_explicit(&m->tickets_behind, memory_order_relaxed)) && !reader && !opening_gate)
		tickets_wait(m);

	/*
	 * A device of another process waiting for the gate gets in first
	 * (fairness, phys/gate.c), but never at the price of a wait for a
	 * gate the caller keeps closed: the invalidator's own, or, for the
	 * reader, a hook's whose munmap() raised an event only the reader
	 * reads (a range it could not take out of the userfaultfd). Seen
	 * in attack18's churn: the reader waited out the whole yield for a
	 * gate that hook held, and the device waited with it.
	 */
	if (!opening_gate)
		phys_gate_yield(m->ps, reader ? hook_closing : NULL, m);
	/* A hook's, counted until queued, before the gate closes (seq_cst): a reader that sees it closed sees the count. */
	if (!reader)
		atomic_fetch_add_explicit(&m->hooks_closing, 1, memory_order_seq_cst);
	ticket = atomic_fetch_add_explicit(&m->rs->begun, 1, memory_order_relaxed) + 1;
	atomic_fetch_add_explicit(&m->rs->unsettled, 1, memory_order_seq_cst);
	phys_gate_close(m->ps);
	epoch_synchronize(m->epoch);
	/* And devices of other processes, which reach our memory by its addresses too. */
	phys_gate_wait_peers(m->ps);
	return ticket;
}

static void mon_wake(struct reg_monitor *m)
{
	uint64_t one = 1;

	if (os_raw_syscall6(SYS_write, m->wake_fd, (long)&one, sizeof(one), 0, 0, 0) < 0) {
		/* An eventfd write fails only on overflow of its counter: the invalidator is awake anyway. */
	}
}

/*
 * Its events are queued: the invalidator may take it. The reader wakes it
 * always (@lazy false); a hook (@lazy) only when it is parked, when the
 * ring fills, or when a device the gate does not hold off may reach
 * registered memory (another process's, through a gate copy; real
 * hardware behind a backend or a mirrored domain): those do not wait
 * for the invalidator as ours do, and must not reach the old pages
 * longer than a wake-up takes.
 */
void mon_batch_queued(struct reg_monitor *m, bool lazy, uint64_t ticket)
{
	/* After its events (release), before the count: a batch counted has its slot set. */
	atomic_store_explicit(&m->queued[ticket & (TICKETS - 1)], ticket, memory_order_release);
	atomic_fetch_add_explicit(&m->batches_read, 1, memory_order_seq_cst);
	/* After the count (seq_cst): an invalidator that parked after this load sees the batch. */
	if (!lazy || atomic_load_explicit(&m->parked, memory_order_seq_cst) ||
	    atomic_load_explicit(&m->tail, memory_order_relaxed) - atomic_load_explicit(&m->head, memory_order_relaxed) >=
		    RING_SIZE / 2 ||
	    atomic_load_explicit(&m->rs->eager_mrs, memory_order_relaxed) || phys_gate_has_peers(m->ps))
		mon_wake(m);
}

void reg_kick(struct reg_space *rs)
{
	struct reg_monitor *m = atomic_load_explicit(&rs->kick_mon, memory_order_acquire);

	/* A batch begun, maybe not yet queued: the invalidator takes it then, at its timer at the latest. */
	if (m && atomic_load_explicit(&rs->unsettled, memory_order_seq_cst))
		mon_wake(m);
}

/* Invalidator: the batches queued by now, invalidated; the gate opened for them, lookups let go. */
static void invalidate_batches(struct reg_monitor *m)
{
	struct reg_space *rs = m->rs;
	uint64_t seen, settled, head, tail;
	bool relock;

	opening_gate = true;
	{
		monitor_test_hook hook = atomic_load_explicit(&monitor_test_hold, memory_order_acquire);

		if (unlikely(hook))
			hook();
	}
	/* The batches counted here have their events in the ring (the reader counted after queuing). */
	seen = atomic_load_explicit(&m->batches_read, memory_order_acquire);
	/*
	 * How far every batch is queued, in the order they began: lookups
	 * wait for the batches begun before them, and a later one queued
	 * first (a hook's, beside the reader's) says nothing of an earlier
	 * one's events. Their slots were set before their events are looked
	 * for below.
	 */
	settled = m->settled;
	while (atomic_load_explicit(&m->queued[(settled + 1) & (TICKETS - 1)], memory_order_acquire) == settled + 1)
		settled++;
	/*
	 * A slot can be written over before it is read: hooks that ran more
	 * than TICKETS batches ahead (a thread discarding memory in a loop
	 * while this one waits for the CPU), or a batch queued so late that
	 * its slot's next ticket was queued first. The scan then stops short
	 * for good, and every lookup after waits for ever. Counts settle it
	 * instead: each batch counted in @seen began before it was counted
	 * (its ticket is at most @begun read after @seen), so when they are
	 * as many as the tickets begun, every one of those is queued.
	 */
	{
		uint64_t begun = atomic_load_explicit(&rs->begun, memory_order_seq_cst);

		if (settled < begun && seen == begun - m->first_ticket)
			settled = begun;
	}
	atomic_store_explicit(&m->tickets_behind,
			      atomic_load_explicit(&m->queued[(settled + 1) & (TICKETS - 1)], memory_order_relaxed) >
				      settled + 1,
			      memory_order_release);
	head = atomic_load_explicit(&m->head, memory_order_relaxed);
	tail = atomic_load_explicit(&m->tail, memory_order_acquire);
	mutex_lock(&rs->lock);
	relock = false;
	for (; head != tail; head++) {
		const struct mon_event *e = &m->ring[head & (RING_SIZE - 1)];
		unsigned spins = 0;

		/* Claimed before the batch was counted: its producer is a few stores from done. */
		while (atomic_load_explicit(&m->ready[head & (RING_SIZE - 1)], memory_order_acquire) != head + 1)
			if (++spins > 64)
				sched_yield();

		mr_invalidate_range(rs, e->start, e->len, e->kind);
		relock |= e->source_kept;
	}
	atomic_store_explicit(&m->head, head, memory_order_release);
	if (atomic_exchange_explicit(&m->overflow, false, memory_order_acq_rel)) {
		mr_invalidate_all(rs);
		counter_add(&m->overflows, 1);
		counter_add(&m->generation, 1);
		relock = true; /* a lost event may have been a DONTUNMAP move */
	}
	/*
	 * Pages a pinned MR holds are locked again before the gate opens
	 * and before lookups waiting for these batches go on: a
	 * madvise(MADV_DONTNEED) from then on is refused. (Every locked
	 * piece: which of them shared the unlocked mapping is not
	 * known. A DONTUNMAP move is rare; mlock() of locked pages only
	 * walks them.)
	 */
	if (relock)
		mr_relock_all(rs);
	mutex_unlock(&rs->lock);
	/* Every event of those batches is dealt with: devices may go back, lookups go on. */
	m->settled = settled;
	atomic_store_explicit(&rs->finished, settled, memory_order_seq_cst);
	atomic_fetch_sub_explicit(&rs->unsettled, (uint32_t)(seen - m->batches_done), memory_order_seq_cst);
	phys_gate_open(m->ps, (uint32_t)(seen - m->batches_done));
	m->batches_done = seen;
	opening_gate = false;
	/* Seen after @finished moved (both seq_cst): a waiter counted before it looked, or saw it move. */
	if (atomic_load_explicit(&rs->settle_waiters, memory_order_seq_cst)) {
		mutex_lock(&rs->settle_lock);
		pthread_cond_broadcast(&rs->settled);
		mutex_unlock(&rs->settle_lock);
	}
}

/* Batches queued, or a producer waiting for room (its batch, maybe the reader's long one, not counted yet). */
static bool batches_pending(struct reg_monitor *m)
{
	return atomic_load_explicit(&m->batches_read, memory_order_seq_cst) != m->batches_done ||
	       atomic_load_explicit(&m->push_waiting, memory_order_seq_cst);
}

void *mon_invalidator_main(void *arg)
{
	struct reg_monitor *m = arg;
	struct pollfd fds[2] = { { .fd = m->wake_fd, .events = POLLIN }, { .fd = m->inv_stop_fd, .events = POLLIN } };
	bool linger = false;

	/*
	 * A normal thread, not SCHED_BATCH: the gate a batch closed stays
	 * closed, and every device waits, until this thread has run. As a
	 * batch thread it let the munmap() that woke it return sooner, but on
	 * busy CPUs it ran late and devices stalled for it (attack10_gate:
	 * 140 times fewer descriptors done).
	 *
	 * After a batch it lingers, on a timer of LINGER_MS, before it parks:
	 * the hooks' batches meanwhile wake nobody (their munmap() returns
	 * without a wake-up, the dearest part of it), and are taken at the
	 * timer, or at once when a lookup or a device waits for them
	 * (monitor_kick()). Parked, it is woken by the next hook.
	 */
	for (;;) {
		uint64_t val;
		int n;

		if (!linger) {
			/* Parked, then a last look: a hook that queued before it saw it parked, or is seen here (seq_cst). */
			atomic_store_explicit(&m->parked, true, memory_order_seq_cst);
			if (batches_pending(m)) {
				atomic_store_explicit(&m->parked, false, memory_order_relaxed);
				invalidate_batches(m);
				linger = true;
				continue;
			}
		}
		n = poll(fds, 2, linger ? LINGER_MS : -1);
		atomic_store_explicit(&m->parked, false, memory_order_relaxed);
		if (n < 0 && errno != EINTR)
			break;
		if (n > 0 && fds[1].revents) {
			/* What is queued is dealt with: the gate opens, nobody waits for ever. */
			if (batches_pending(m))
				invalidate_batches(m);
			break;
		}
		if (n > 0 && (fds[0].revents & POLLIN) && read(m->wake_fd, &val, sizeof(val)) < 0) {
			/* Drained by a kick's read racing ours: nothing lost, the batches are counted. */
		}
		if (batches_pending(m)) {
			invalidate_batches(m);
			linger = true;
		} else if (!n) {
			linger = false; /* a whole LINGER_MS without a batch: park */
		}
	}
	return NULL;
}

__thread bool mon_in_reader __tls_ie;

_Atomic uint64_t monitor_reading_wait_ns = MON_READING_WAIT_NS;
_Atomic(monitor_test_hook) monitor_test_reading;

bool monitor_may_watch(struct reg_monitor *m, uint64_t start, uint64_t len)
{
	uint64_t since = 0, wait;
	uint32_t r = atomic_load_explicit(&m->reading, memory_order_seq_cst);
	unsigned spins = 0;

	/* Tested after the load: a mark the count's value stands for is seen. */
	if (watchmap_any(&m->watched, start, len))
		return true;
	/*
	 * Not watched as far as the filter knows, and the reader is not
	 * between a read and the marking of what it moved: that stands (an
	 * even count comes after the marks of every read before it, and a
	 * read that let this caller go on began before the caller looked).
	 * The reader's own thread (a signal handler's munmap()) does not wait
	 * for itself, nor does the invalidator (its own blocks, never moved
	 * memory; devices wait for its gate meanwhile).
	 */
	if (!(r & 1) || mon_in_reader || opening_gate)
		return false;
	/* The read may have let this very caller go on (its mremap() just returned): wait for the marks. */
	wait = atomic_load_explicit(&monitor_reading_wait_ns, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->reading_waiters, 1, memory_order_relaxed);
	while (atomic_load_explicit(&m->reading, memory_order_seq_cst) == r) {
		if (++spins < 64)
			continue;
		if (!since) {
			since = clock_now_ns();
		} else if (clock_now_ns() - since >= wait) {
			break; /* the reader is short of CPU: userfaultfd sees the call, as without the mark */
		}
		sched_yield();
	}
	atomic_fetch_sub_explicit(&m->reading_waiters, 1, memory_order_relaxed);
	return watchmap_any(&m->watched, start, len);
}

uint64_t monitor_hook_before(struct reg_monitor *m, uint64_t start, uint64_t len)
{
	struct uffdio_range r = { .start = start, .len = len };

	/*
	 * Out of the userfaultfd's watch: the call raises no event and waits
	 * for no read. It fails for a range with no VMA we could have
	 * registered: then any part still registered raises its event, as
	 * before (invalidated twice: harmless).
	 */
	os_raw_syscall6(SYS_ioctl, m->uffd, (long)UFFDIO_UNREGISTER, (long)&r, 0, 0, 0);
	return mon_batch_begin(m, false);
}

void monitor_hook_push(struct reg_monitor *m, unsigned kind, uint64_t start, uint64_t len, bool gone, bool source_kept)
{
	if (!len)
		return;
	atomic_fetch_add_explicit(&m->hooked, 1, memory_order_relaxed);
	if (kind == UFFD_EVENT_REMOVE || kind == MON_EVENT_REMOVE_UNLOCKED)
		atomic_fetch_add_explicit(&m->hooked_removes, 1, memory_order_relaxed);
	else if (kind == UFFD_EVENT_REMAP)
		atomic_fetch_add_explicit(&m->hooked_remaps, 1, memory_order_relaxed);
	/* Gone from the userfaultfd: the next change there is none of ours (until registered again). */
	if (gone)
		watchmap_clear(&m->watched, start, len);
	mon_push(m, (uint8_t)kind, start, len, source_kept);
}

void monitor_hook_done(struct reg_monitor *m, uint64_t ticket)
{
	mon_batch_queued(m, true, ticket);
	atomic_fetch_sub_explicit(&m->hooks_closing, 1, memory_order_release);
}

void monitor_hook_after(struct reg_monitor *m, uint64_t ticket, unsigned kind, uint64_t start, uint64_t len,
			bool source_kept)
{
	monitor_hook_push(m, kind, start, len, true, source_kept);
	monitor_hook_done(m, ticket);
}

static bool rewatch(struct reg_monitor *m, uint64_t start, uint64_t len)
{
	struct uffdio_register r = { .range = { .start = start, .len = len }, .mode = UFFDIO_REGISTER_MODE_WP };

	/* As monitor_watch(), less the maps' read a hook cannot afford: a System V segment was never watched. */
	return !os_raw_syscall6(SYS_ioctl, m->uffd, (long)UFFDIO_REGISTER, (long)&r, 0, 0, 0);
}

bool monitor_hook_rewatch(struct reg_monitor *m, uint64_t start, uint64_t len)
{
	uint64_t bad = 0, bad_len = 0;

	if (rewatch(m, start, len))
		return true;
	/*
	 * A hole, or a mapping userfaultfd refuses (another userfaultfd's),
	 * in the range: the rest, page by page, up to 2 MiB, and only the
	 * pages not watched again are invalidated, in runs: an mremap()
	 * refused beside another userfaultfd's range leaves this one's MRs
	 * whole. A larger range is not watched again (false: the caller
	 * invalidates it).
	 */
	if (len > (UINT64_C(2) << 20))
		return false;
	for (uint64_t a = start; a < start + len; a += 4096) {
		if (rewatch(m, a, 4096))
			continue;
		if (bad_len && bad + bad_len == a) {
			bad_len += 4096;
			continue;
		}
		monitor_hook_push(m, UFFD_EVENT_UNMAP, bad, bad_len, false, false);
		bad = a;
		bad_len = 4096;
	}
	monitor_hook_push(m, UFFD_EVENT_UNMAP, bad, bad_len, false, false);
	return true;
}

uint64_t monitor_hooked(struct reg_monitor *m)
{
	return atomic_load_explicit(&m->hooked, memory_order_relaxed);
}

void reg_settle_wait(struct reg_space *rs)
{
	/*
	 * The batches begun by now: the one of any call that returned before
	 * this lookup began is among them. Not "until nothing is unsettled",
	 * which a stream of events could put off for ever.
	 */
	uint64_t want = atomic_load_explicit(&rs->begun, memory_order_acquire);

	lock_assert_not_held(&rs->lock);
	if (atomic_load_explicit(&rs->finished, memory_order_acquire) >= want)
		return;
	/* A hook's batch may wait for the invalidator's timer: not this lookup. */
	reg_kick(rs);
	mutex_lock(&rs->settle_lock);
	atomic_fetch_add_explicit(&rs->settle_waiters, 1, memory_order_seq_cst);
	while (atomic_load_explicit(&rs->finished, memory_order_seq_cst) < want)
		cond_wait(&rs->settled, &rs->settle_lock);
	atomic_fetch_sub_explicit(&rs->settle_waiters, 1, memory_order_relaxed);
	mutex_unlock(&rs->settle_lock);
}
