/* SPDX-License-Identifier: MIT */
/*
 * monitor.h - what the memory monitor's two files share: the monitor
 * itself (monitor.c: its userfaultfd, its reader thread, its start and
 * stop) and its event ring with the batches producers queue there
 * (monitor_batch.c: the ring, the invalidator thread, the hooks' side,
 * lookups waiting for a batch). monitor.c's first comment says how they
 * work together.
 */
#ifndef IOVM_REG_MONITOR_H
#define IOVM_REG_MONITOR_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "reg/reg_internal.h"
#include "reg/watchmap.h"

/* Events the ring holds, 128 KiB: past 4096 waiting, producers wait for room (ring_wait()). */
#define RING_SIZE 4096
/* Messages read per read(2). */
#define READ_BATCH 16
/*
 * Batches a ticket's slot can tell apart: more than the batches that can
 * be begun and not yet queued at once (the reader's, and one per thread
 * inside a hooked call: two for an mremap() with MREMAP_FIXED). Hooks
 * that run more than this ahead of an invalidator short of CPU write
 * over slots it has not read: it then counts (invalidate_batches()).
 */
#define TICKETS 4096
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
	_Atomic uint64_t batches_read; /* by the reader and hooks: gate closings whose events are queued */
	uint64_t batches_done;         /* the invalidator's */
	/*
	 * Batches are numbered as they begin (reg_space.begun), and queued in
	 * any order: a hook's may be queued before the reader's long one that
	 * began first. Slot t % TICKETS holds t once batch t is queued; the
	 * invalidator's @settled is the last batch up to which all are
	 * invalidated, what lookups wait for (reg_space.finished).
	 */
	_Atomic uint64_t queued[TICKETS];
	uint64_t settled;              /* the invalidator's */
	uint64_t first_ticket;         /* reg_space.begun when this monitor started: tickets after it are ours */
	/*
	 * The invalidator's scan stopped at a slot a later ticket wrote over:
	 * only counts settle it now, once no batch is between its begin and
	 * its queuing. Hooks hold their next batch back meanwhile (bounded).
	 */
	_Atomic bool tickets_behind;
	_Atomic bool overflow;
	_Atomic bool parked;           /* the invalidator sleeps with no timer: a hook's batch must wake it */
	/*
	 * Hooks between their gate closing and their queuing, any thread: a
	 * munmap() under way there may wait for the reader to read its event.
	 */
	_Atomic uint32_t hooks_closing;
	/* Producers waiting for room in a full ring: the invalidator takes what is queued, counted or not. */
	_Atomic uint32_t push_waiting;
	/*
	 * The reader's: odd from before each read(2) of the userfaultfd until
	 * the destinations of the moves it read are in the hooks' filter
	 * (@watched). The read lets the mover go on; a hook that finds its
	 * range unwatched while this is odd waits for it to move on
	 * (monitor_may_watch()): the munmap() of memory just moved is then
	 * hooked, not left to userfaultfd.
	 */
	_Atomic uint32_t reading;
	_Atomic uint32_t reading_waiters; /* hooks waiting for it now (for the tests) */

	/* Counters: written by one thread each, read racily. */
	_Atomic uint64_t events, unmaps, removes, remaps, forks, overflows, generation;
	_Atomic uint64_t hooked;       /* events queued by hooks, any thread */
	_Atomic uint64_t hooked_removes, hooked_remaps; /* ... of them, madvise()'s and mremap()'s moves */

	struct watchmap watched;       /* for the hooks: pages monitor_watch() watched (watchmap.c) */
	int hook_id;                   /* hooks.c's slot, or negative */
};

static_assert((RING_SIZE & (RING_SIZE - 1)) == 0, "the ring indexes by mask");

/* monitor_batch.c */
/* Reader or hook: queue (start, len), or note that an event was lost. */
void mon_push(struct reg_monitor *m, uint8_t kind, uint64_t start, uint64_t len, bool source_kept);
/* Reader or hook: a batch begins; lookups wait for it, devices keep off. Its number. */
uint64_t mon_batch_begin(struct reg_monitor *m, bool reader);
/* Batch @ticket's events are queued: the invalidator may take it (@lazy: a hook's, which may not wake it). */
void mon_batch_queued(struct reg_monitor *m, bool lazy, uint64_t ticket);
/* Set on the reader's thread: its hooks never wait for its own marks (monitor_may_watch()). */
extern __thread bool mon_in_reader __tls_ie;
/* The invalidator thread's body. */
void *mon_invalidator_main(void *arg);

#endif
