/* SPDX-License-Identifier: MIT */
/*
 * monitor.c - the memory monitor: userfaultfd's UNMAP, REMOVE, REMAP and
 * FORK events for registered memory, and the invalidation they call for.
 *
 * Registered ranges are registered with one userfaultfd in write-protect
 * mode, and no page is ever write-protected: no fault is ever delivered,
 * only the events of the address space changing. The application's munmap
 * (or madvise, mremap, brk, fork) does not return before the event has
 * been read; for munmap and mremap the memory is gone by then, for madvise
 * it goes right after.
 *
 * Two threads:
 *  - the reader closes the foreign gate (devices keep off the application's
 *    memory; devices of other processes too: phys/gate.c), waits for
 *    devices inside an access to leave, reads the
 *    events, which lets the application go on, and queues them in a
 *    preallocated ring. It never allocates and never takes a lock the
 *    application could hold: glibc's free() calls munmap, and its heap
 *    trimming calls brk, with a malloc arena locked; a reader that called
 *    malloc could wait for that lock while that thread waits for the read.
 *  - the invalidator takes events from the ring and invalidates the pages
 *    of the MRs they cover (unmapping them from their domains, strictly),
 *    then opens the gate again. It may allocate: the reader keeps reading
 *    whatever it waits for.
 * On overflow of the ring, events are dropped, and the invalidator
 * invalidates every monitored MR and bumps a generation: still correct.
 * A device that finds the gate closed leaves its device-side section and
 * waits; one inside an access when the reader closed the gate is waited
 * for; one that reached memory already unmapped takes a guarded fault
 * (os/guard.h): no device access ever reaches what replaces the memory.
 *
 * The synchronous path (hooks.c): libc's munmap() does the reader's part
 * in the calling thread (monitor_hook_before/after()), with the range
 * taken out of the userfaultfd first, so that it raises no event; the
 * ring then has several producers (a slot is claimed, filled, then marked
 * ready), and the invalidator waits for the slots claimed before a batch
 * was counted. Which pages may be watched is kept, for the hooks, in a
 * watchmap (watchmap.c) set by monitor_watch() and cleared by the hooks'
 * unmaps.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/compiler.h"
#include "base/counter.h"
#include "base/ctx.h"
#include "base/epoch.h"
#include "base/fault_inject.h"
#include "base/lock.h"
#include "base/log.h"
#include "os/patch.h"
#include "os/uffd.h"
#include "os/vma.h"
#include "phys/phys.h"
#include "reg/reg_internal.h"
#include "reg/watchmap.h"

/* Events the ring holds: a burst of 4096 unmaps without loss, 128 KiB. */
#define RING_SIZE 4096
/* Messages read per read(2). */
#define READ_BATCH 16
/* How long the invalidator stays awake after a batch, for the hooks' next ones (invalidator_main()). */
#define LINGER_MS 1

struct reg_monitor {
	struct reg_space *rs;
	struct epoch *epoch;
	struct phys_space *ps;   /* its foreign gate (phys_gate_close()) */
	int uffd;
	int wake_fd;   /* eventfd: the reader tells the invalidator */
	int stop_fd;   /* eventfd: the reader stops */
	int inv_stop_fd; /* eventfd: the invalidator stops */
	bool fork_events;
	pthread_t reader, invalidator;

	/* The ring: producers (the reader, hooks) claim at tail, the invalidator consumes at head. */
	struct mon_event ring[RING_SIZE];
	_Atomic uint64_t ready[RING_SIZE]; /* slot i holds event n once it reads n + 1 */
	_Atomic uint64_t tail;         /* claimed by producers */
	_Atomic uint64_t head;         /* written by the invalidator */
	_Atomic uint64_t batches_read; /* by the reader: gate closings whose events are queued */
	uint64_t batches_done;         /* the invalidator's */
	_Atomic bool overflow;
	_Atomic bool parked;           /* the invalidator sleeps with no timer: a hook's batch must wake it */

	/* Counters: written by one thread each, read racily. */
	_Atomic uint64_t events, unmaps, removes, remaps, forks, overflows, generation;
	_Atomic uint64_t hooked;       /* events queued by hooks, any thread */

	struct watchmap watched;       /* for the hooks: pages monitor_watch() watched (watchmap.c) */
	int hook_id;                   /* hooks.c's slot, or negative */
};

static_assert((RING_SIZE & (RING_SIZE - 1)) == 0, "the ring indexes by mask");

_Atomic(monitor_test_hook) monitor_test_hold;

/* Reader or hook: queue (start, len), or note that an event was lost. */
static void push(struct reg_monitor *m, uint8_t kind, uint64_t start, uint64_t len, bool source_kept)
{
	uint64_t tail = atomic_load_explicit(&m->tail, memory_order_relaxed);

	do {
		if (tail - atomic_load_explicit(&m->head, memory_order_acquire) >= RING_SIZE) {
			atomic_store_explicit(&m->overflow, true, memory_order_release);
			return;
		}
	} while (!atomic_compare_exchange_weak_explicit(&m->tail, &tail, tail + 1, memory_order_acq_rel,
							memory_order_relaxed));
	m->ring[tail & (RING_SIZE - 1)] =
		(struct mon_event){ .kind = kind, .source_kept = source_kept, .start = start, .len = len };
	atomic_store_explicit(&m->ready[tail & (RING_SIZE - 1)], tail + 1, memory_order_release);
}

/* Reader or hook: a batch begins; lookups wait for it, devices keep off. */
static void batch_begin(struct reg_monitor *m)
{
	/* A device of another process waiting for the gate gets in first (fairness, phys/gate.c). */
	phys_gate_yield(m->ps);
	atomic_fetch_add_explicit(&m->rs->begun, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->rs->unsettled, 1, memory_order_seq_cst);
	phys_gate_close(m->ps);
	epoch_synchronize(m->epoch);
	/* And devices of other processes, which reach our memory by its addresses too. */
	phys_gate_wait_peers(m->ps);
}

static void wake(struct reg_monitor *m)
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
static void batch_queued(struct reg_monitor *m, bool lazy)
{
	atomic_fetch_add_explicit(&m->batches_read, 1, memory_order_seq_cst);
	/* After the count (seq_cst): an invalidator that parked after this load sees the batch. */
	if (!lazy || atomic_load_explicit(&m->parked, memory_order_seq_cst) ||
	    atomic_load_explicit(&m->tail, memory_order_relaxed) - atomic_load_explicit(&m->head, memory_order_relaxed) >=
		    RING_SIZE / 2 ||
	    atomic_load_explicit(&m->rs->eager_mrs, memory_order_relaxed) || phys_gate_has_peers(m->ps))
		wake(m);
}

void reg_kick(struct reg_space *rs)
{
	struct reg_monitor *m = atomic_load_explicit(&rs->kick_mon, memory_order_acquire);

	/* A batch begun, maybe not yet queued: the invalidator takes it then, at its timer at the latest. */
	if (m && atomic_load_explicit(&rs->unsettled, memory_order_seq_cst))
		wake(m);
}

/* The bytes of the kernel's [start, end): none for an empty or reversed one. */
static uint64_t range_len(uint64_t start, uint64_t end)
{
	return end > start ? end - start : 0;
}

/* Reader: one message. */
static void take(struct reg_monitor *m, const struct uffd_msg *msg)
{
	counter_add(&m->events, 1);
	switch (msg->event) {
	case UFFD_EVENT_UNMAP:
		counter_add(&m->unmaps, 1);
		push(m, msg->event, msg->arg.remove.start, range_len(msg->arg.remove.start, msg->arg.remove.end), false);
		break;
	case UFFD_EVENT_REMOVE:
		counter_add(&m->removes, 1);
		push(m, msg->event, msg->arg.remove.start, range_len(msg->arg.remove.start, msg->arg.remove.end), false);
		break;
	case UFFD_EVENT_REMAP:
		/*
		 * The old range is gone; the new one is not registered (the
		 * kernel moves no registration we rely on). A source still
		 * mapped is MREMAP_DONTUNMAP's, which unlocks the whole
		 * mapping it moved from, pages that did not move included:
		 * the invalidator locks them again (mr_relock_all()). Asked
		 * now, while the application has barely gone on: a source it
		 * unmaps at once is missed (reg.h says so).
		 */
		counter_add(&m->remaps, 1);
		push(m, msg->event, msg->arg.remap.from, msg->arg.remap.len,
		     !msync((void *)(uintptr_t)msg->arg.remap.from, msg->arg.remap.len, MS_ASYNC));
		break;
	case UFFD_EVENT_FORK:
		/* The child's copy of the registrations: not ours to watch (see reg.h on fork). */
		counter_add(&m->forks, 1);
		close((int)msg->arg.fork.ufd);
		break;
	default:
		/* No page is write-protected: no fault can come. Nothing else is asked for. */
		break;
	}
}

static void *reader_main(void *arg)
{
	struct reg_monitor *m = arg;
	struct pollfd fds[2] = { { .fd = m->uffd, .events = POLLIN }, { .fd = m->stop_fd, .events = POLLIN } };

	for (;;) {
		struct uffd_msg msg[READ_BATCH];
		ssize_t n;

		if (poll(fds, 2, -1) < 0 && errno != EINTR)
			break;
		if (fds[1].revents)
			break;
		if (!(fds[0].revents & POLLIN))
			continue;
		/*
		 * Lookups wait for this batch (reg_settle()), and devices keep
		 * off the application's memory, before the application may go
		 * on: its call returns once the events are read.
		 */
		batch_begin(m);
		while ((n = read(m->uffd, msg, sizeof(msg))) > 0)
			for (ssize_t i = 0; i < n / (ssize_t)sizeof(msg[0]); i++)
				take(m, &msg[i]);
		batch_queued(m, false);
	}
	/*
	 * The reader closes the userfaultfd itself, last: that unregisters
	 * every range it watched and lets go whoever waits for an event to be
	 * read. Its own exit may unmap memory in a watched range (a sanitizer's
	 * per-thread state, next to memory a device reached): with the
	 * userfaultfd still open, that munmap would wait for a read that
	 * could never come.
	 */
	close(m->uffd);
	return NULL;
}

/* Invalidator: the batches queued by now, invalidated; the gate opened for them, lookups let go. */
static void invalidate_batches(struct reg_monitor *m)
{
	struct reg_space *rs = m->rs;
	uint64_t seen, head, tail;
	bool relock;

	{
		monitor_test_hook hook = atomic_load_explicit(&monitor_test_hold, memory_order_acquire);

		if (unlikely(hook))
			hook();
	}
	/* The batches counted here have their events in the ring (the reader counted after queuing). */
	seen = atomic_load_explicit(&m->batches_read, memory_order_acquire);
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
	atomic_store_explicit(&rs->finished, seen, memory_order_seq_cst);
	atomic_fetch_sub_explicit(&rs->unsettled, (uint32_t)(seen - m->batches_done), memory_order_seq_cst);
	phys_gate_open(m->ps, (uint32_t)(seen - m->batches_done));
	m->batches_done = seen;
	/* Seen after @finished moved (both seq_cst): a waiter counted before it looked, or saw it move. */
	if (atomic_load_explicit(&rs->settle_waiters, memory_order_seq_cst)) {
		mutex_lock(&rs->settle_lock);
		pthread_cond_broadcast(&rs->settled);
		mutex_unlock(&rs->settle_lock);
	}
}

static bool batches_pending(struct reg_monitor *m)
{
	return atomic_load_explicit(&m->batches_read, memory_order_seq_cst) != m->batches_done;
}

static void *invalidator_main(void *arg)
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

/* The features asked for, FORK last: it needs privileges some kernels ask for. */
static int api_handshake(int uffd, bool *fork_events)
{
	uint64_t want = UFFD_FEATURE_EVENT_UNMAP | UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_REMAP |
			UFFD_FEATURE_PAGEFAULT_FLAG_WP;
	struct uffdio_api api = { .api = UFFD_API, .features = want | UFFD_FEATURE_EVENT_FORK };
	uint64_t have;
	int ret;

	/*
	 * Which of the optional ones the kernel has (a handshake costs a file
	 * descriptor: its failure may be a shortage, tried again later).
	 */
	ret = os_uffd_features(&have);
	if (ret)
		return ret;
	if ((have & want) != want)
		return -EOPNOTSUPP;
	api.features |= have & UFFD_FEATURE_WP_HUGETLBFS_SHMEM;
	if (!(have & UFFD_FEATURE_EVENT_FORK))
		api.features &= ~(uint64_t)UFFD_FEATURE_EVENT_FORK;
	*fork_events = api.features & UFFD_FEATURE_EVENT_FORK;
	if (fi_ioctl(uffd, UFFDIO_API, &api))
		return -errno;
	return 0;
}

int monitor_start(struct reg_space *rs, struct reg_monitor **out)
{
	struct reg_monitor *m = fi_calloc(1, sizeof(*m));
	int ret;

	if (!m)
		return -ENOMEM;
	m->rs = rs;
	m->epoch = &rs->ctx->epoch;
	m->ps = rs->ctx->phys;
	m->wake_fd = m->stop_fd = m->inv_stop_fd = -1;
	m->hook_id = -1;
	watchmap_init(&m->watched);
	ret = os_uffd_open(&m->uffd, NULL, 0);
	if (ret)
		goto free_m;
	ret = api_handshake(m->uffd, &m->fork_events);
	if (ret) {
		/* FORK may need privileges: try once more without it, on a fresh descriptor. */
		close(m->uffd);
		ret = os_uffd_open(&m->uffd, NULL, 0);
		if (ret)
			goto free_m;
		{
			struct uffdio_api api = { .api = UFFD_API,
						  .features = UFFD_FEATURE_EVENT_UNMAP | UFFD_FEATURE_EVENT_REMOVE |
							      UFFD_FEATURE_EVENT_REMAP | UFFD_FEATURE_PAGEFAULT_FLAG_WP };

			ret = fi_ioctl(m->uffd, UFFDIO_API, &api) ? -errno : 0;
		}
		if (ret)
			goto close_uffd;
	}
	m->wake_fd = fi_eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	m->stop_fd = fi_eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	m->inv_stop_fd = fi_eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ret = -errno;
	if (m->wake_fd < 0 || m->stop_fd < 0 || m->inv_stop_fd < 0)
		goto close_fds;
	ret = -fi_pthread_create(&m->reader, NULL, reader_main, m);
	if (ret)
		goto close_fds;
	ret = -fi_pthread_create(&m->invalidator, NULL, invalidator_main, m);
	if (ret)
		goto stop_reader;
	atomic_store_explicit(&rs->kick_mon, m, memory_order_release);
	/* Without hooks (no libc patched, no slot free), userfaultfd alone sees everything. */
	m->hook_id = hooks_add(m);
	*out = m;
	return 0;

stop_reader: {
	uint64_t one = 1;

	/* It closes the userfaultfd as it goes. */
	if (write(m->stop_fd, &one, sizeof(one)) == sizeof(one))
		pthread_join(m->reader, NULL);
	m->uffd = -1;
}
close_fds:
	if (m->wake_fd >= 0)
		close(m->wake_fd);
	if (m->stop_fd >= 0)
		close(m->stop_fd);
	if (m->inv_stop_fd >= 0)
		close(m->inv_stop_fd);
close_uffd:
	if (m->uffd >= 0)
		close(m->uffd);
free_m:
	watchmap_fini(&m->watched);
	free(m);
	return ret;
}

void monitor_stop(struct reg_monitor *m)
{
	uint64_t one = 1;

	if (!m)
		return;
	/* No hook is inside with @m once this returns, and none enters. */
	hooks_del(m->hook_id);
	atomic_store_explicit(&m->rs->kick_mon, NULL, memory_order_release);
	/*
	 * The invalidator first: it may free memory, and glibc's (or a
	 * sanitizer's) allocator may unmap some that lies in a watched range;
	 * its munmap then waits for the reader to read the event. A reader
	 * gone before it would leave it waiting for ever.
	 */
	if (write(m->inv_stop_fd, &one, sizeof(one)) != sizeof(one))
		log_warn("monitor: cannot stop its invalidator");
	pthread_join(m->invalidator, NULL);
	if (write(m->stop_fd, &one, sizeof(one)) != sizeof(one))
		log_warn("monitor: cannot stop its reader");
	pthread_join(m->reader, NULL);
	/* The reader closed the userfaultfd: every range it watched is unregistered. */
	close(m->wake_fd);
	close(m->stop_fd);
	close(m->inv_stop_fd);
	watchmap_fini(&m->watched);
	free(m);
}

bool monitor_may_watch(struct reg_monitor *m, uint64_t start, uint64_t len)
{
	return watchmap_any(&m->watched, start, len);
}

void monitor_hook_before(struct reg_monitor *m, uint64_t start, uint64_t len)
{
	struct uffdio_range r = { .start = start, .len = len };

	/*
	 * Out of the userfaultfd's watch: the call raises no event and waits
	 * for no read. It fails for a range with no VMA we could have
	 * registered: then any part still registered raises its event, as
	 * before (invalidated twice: harmless).
	 */
	os_raw_syscall6(SYS_ioctl, m->uffd, (long)UFFDIO_UNREGISTER, (long)&r, 0, 0, 0);
	batch_begin(m);
}

void monitor_hook_after(struct reg_monitor *m, unsigned kind, uint64_t start, uint64_t len)
{
	atomic_fetch_add_explicit(&m->hooked, 1, memory_order_relaxed);
	/* Gone from the userfaultfd: the next unmap there is none of ours (until registered again). */
	watchmap_clear(&m->watched, start, len);
	push(m, (uint8_t)kind, start, len, false);
	batch_queued(m, true);
}

uint64_t monitor_hooked(struct reg_monitor *m)
{
	return atomic_load_explicit(&m->hooked, memory_order_relaxed);
}

int monitor_watch(struct reg_monitor *m, uint64_t start, uint64_t len, int sysv)
{
	struct uffdio_register r = { .range = { .start = start, .len = len },
				     .mode = UFFDIO_REGISTER_MODE_WP };

	/*
	 * Registered again for every MR (the kernel takes it, for the same
	 * userfaultfd), and never unregistered before the monitor stops: as
	 * libfabric found, overlapping registrations cannot each undo it.
	 */
	/* In the hooks' filter first: a hook that misses it leaves the event to userfaultfd. */
	watchmap_set(&m->watched, start, len);
	if (fi_ioctl(m->uffd, UFFDIO_REGISTER, &r))
		return -errno; /* a file's private mapping, a PFN map, another userfaultfd's range */
	/*
	 * No UFFDIO_ZEROPAGE: a hugetlb VMA is in there, maybe System V shared
	 * memory, whose shmdt(2) tells userfaultfd nothing. (Cannot tell: not
	 * watched.)
	 */
	if (!(r.ioctls & ((uint64_t)1 << _UFFDIO_ZEROPAGE))) {
		struct os_vma_info vi;

		if (sysv < 0)
			sysv = os_vma_range(start, start + len, &vi) || vi.sysv_shm;
		if (sysv)
			return -EOPNOTSUPP;
	}
	return 0;
}

void monitor_stats(struct reg_monitor *m, struct iovm_reg_stats *st)
{
	st->monitor = true;
	/* The hooks' events are the ones userfaultfd would have sent (only unmaps, so far). */
	st->monitor_events = atomic_load_explicit(&m->events, memory_order_relaxed) +
			     atomic_load_explicit(&m->hooked, memory_order_relaxed);
	st->events_unmap = atomic_load_explicit(&m->unmaps, memory_order_relaxed) +
			   atomic_load_explicit(&m->hooked, memory_order_relaxed);
	st->events_remove = atomic_load_explicit(&m->removes, memory_order_relaxed);
	st->events_remap = atomic_load_explicit(&m->remaps, memory_order_relaxed);
	st->events_fork = atomic_load_explicit(&m->forks, memory_order_relaxed);
	st->ring_overflows = atomic_load_explicit(&m->overflows, memory_order_relaxed);
	st->generation = atomic_load_explicit(&m->generation, memory_order_relaxed);
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
