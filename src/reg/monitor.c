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
 * A producer that finds the ring full wakes the invalidator and waits
 * for room, bounded (MON_PUSH_WAIT_NS: the invalidator may be waiting for
 * that producer); past the bound, events are dropped, and the invalidator
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
 *
 * This file has the monitor's userfaultfd, its reader, its start and
 * stop; monitor_batch.c the ring, the invalidator and the hooks' side.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/counter.h"
#include "base/ctx.h"
#include "base/fault_inject.h"
#include "base/log.h"
#include "os/uffd.h"
#include "os/vma.h"
#include "reg/monitor.h"

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
		mon_push(m, msg->event, msg->arg.remove.start, range_len(msg->arg.remove.start, msg->arg.remove.end), false);
		break;
	case UFFD_EVENT_REMOVE:
		counter_add(&m->removes, 1);
		mon_push(m, msg->event, msg->arg.remove.start, range_len(msg->arg.remove.start, msg->arg.remove.end), false);
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
		mon_push(m, msg->event, msg->arg.remap.from, msg->arg.remap.len,
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

	mon_in_reader = true;
	for (;;) {
		struct uffd_msg msg[READ_BATCH];
		monitor_test_hook hold;
		uint64_t ticket;
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
		ticket = mon_batch_begin(m, true);
		for (;;) {
			atomic_fetch_add_explicit(&m->reading, 1, memory_order_seq_cst);
			n = read(m->uffd, msg, sizeof(msg));
			hold = atomic_load_explicit(&monitor_test_reading, memory_order_acquire);
			if (unlikely(n > 0 && hold))
				hold();
			/*
			 * The kernel carried the watch along with a move: its
			 * destination goes into the hooks' filter before any
			 * hook may look (see reg_monitor.reading), so that a
			 * munmap() of it (glibc's free() of a block realloc()
			 * moved) is hooked. The first pages are enough for
			 * the whole block's (the filter answers for any page);
			 * a growth's new pages beyond them are not known here.
			 */
			for (ssize_t i = 0; i < n / (ssize_t)sizeof(msg[0]); i++)
				if (msg[i].event == UFFD_EVENT_REMAP)
					watchmap_mark(&m->watched, msg[i].arg.remap.to, msg[i].arg.remap.len);
			atomic_fetch_add_explicit(&m->reading, 1, memory_order_seq_cst);
			if (n <= 0)
				break;
			for (ssize_t i = 0; i < n / (ssize_t)sizeof(msg[0]); i++)
				take(m, &msg[i]);
		}
		mon_batch_queued(m, false, ticket);
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
	/* Batches are numbered on from what the context counted (a monitor started before may have begun some). */
	m->settled = atomic_load_explicit(&rs->begun, memory_order_relaxed);
	m->first_ticket = m->settled;
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
	ret = -fi_pthread_create(&m->invalidator, NULL, mon_invalidator_main, m);
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
	/* The hooks' events are the ones userfaultfd would have sent; read racily, kept from wrapping. */
	uint64_t hooked_removes = atomic_load_explicit(&m->hooked_removes, memory_order_relaxed);
	uint64_t hooked_remaps = atomic_load_explicit(&m->hooked_remaps, memory_order_relaxed);
	uint64_t hooked = atomic_load_explicit(&m->hooked, memory_order_relaxed);
	uint64_t hooked_unmaps = hooked > hooked_removes + hooked_remaps ? hooked - hooked_removes - hooked_remaps : 0;

	st->monitor = true;
	st->monitor_events = atomic_load_explicit(&m->events, memory_order_relaxed) + hooked;
	st->events_unmap = atomic_load_explicit(&m->unmaps, memory_order_relaxed) + hooked_unmaps;
	st->events_remove = atomic_load_explicit(&m->removes, memory_order_relaxed) + hooked_removes;
	st->events_remap = atomic_load_explicit(&m->remaps, memory_order_relaxed) + hooked_remaps;
	st->events_fork = atomic_load_explicit(&m->forks, memory_order_relaxed);
	st->ring_overflows = atomic_load_explicit(&m->overflows, memory_order_relaxed);
	st->generation = atomic_load_explicit(&m->generation, memory_order_relaxed);
}
