/* SPDX-License-Identifier: MIT */
/*
 * gate.c - the foreign gate's copies for devices of other processes.
 *
 * The memory monitor closes the foreign gate before it lets an
 * application's munmap() (or madvise, mremap) return, waits for the
 * devices inside an access, and opens it once the registrations the event
 * hit are invalidated (reg/monitor.c). A device process reaching this
 * process's memory through its memory file has no view of the gate nor of
 * our epoch: each such peer gets a copy of the gate in memory both share,
 * kept equal to it under gate_lock, and counts its accesses in flight in a
 * word of the same memory, from before it looks at the copy until the
 * access ends. The reader, once the gate and every copy are closed, waits
 * until no count is up: the two sides each store, fence and load, so that
 * at least one sees the other's store (Dekker), and no access that looked
 * at an open gate is left running when the munmap returns.
 *
 * gate_lock is a spin lock: the monitor's reader must never wait for a
 * lock an application thread holds (it could be that thread's munmap the
 * reader lets go), and it is held only across stores and the wait for
 * peers' accesses, which take microseconds and wait for nothing of ours.
 */
#include <errno.h>
#include <sched.h>

#include "base/clock.h"
#include "phys/phys_internal.h"

/*
 * How long the reader lets a device that waits for the gate get in before
 * it closes it again: counted from when the gate is seen open (the
 * batches before done), for the device's process to be scheduled...
 */
#define PHYS_GATE_YIELD_OPEN_NS (UINT64_C(50) * 1000000)
/*
 * ...and at most, in all, the batches before included: a thread whose
 * call the invalidator waits for (one that holds the registration lock)
 * would otherwise wait for a gate that cannot open.
 */
#define PHYS_GATE_YIELD_MAX_NS (UINT64_C(500) * 1000000)
/* How long a peer's accesses may keep the reader before its liveness is asked again. */
#define PEER_RECHECK_NS (UINT64_C(1000) * 1000)

static void gate_lock(struct phys_space *ps)
{
	while (atomic_flag_test_and_set_explicit(&ps->gate_lock, memory_order_acquire))
		sched_yield();
}

static void gate_unlock(struct phys_space *ps)
{
	atomic_flag_clear_explicit(&ps->gate_lock, memory_order_release);
}

int phys_gate_peer_add(struct phys_space *ps, struct phys_gate_words *w, bool (*alive)(void *arg), void *arg)
{
	int id = -ENOSPC;

	gate_lock(ps);
	for (int i = 0; i < PHYS_GATE_PEERS; i++) {
		struct phys_gate_peer *p = &ps->gate_peers[i];

		if (p->w)
			continue;
		/* Equal from now on: copied and published under the lock every change takes. */
		atomic_store_explicit(&w->gate, atomic_load_explicit(&ps->foreign_gate, memory_order_relaxed),
				      memory_order_seq_cst);
		*p = (struct phys_gate_peer){ .w = w, .alive = alive, .arg = arg };
		atomic_fetch_add_explicit(&ps->nr_gate_peers, 1, memory_order_seq_cst);
		id = i;
		break;
	}
	gate_unlock(ps);
	return id;
}

void phys_gate_peer_del(struct phys_space *ps, int id)
{
	if (id < 0 || id >= PHYS_GATE_PEERS)
		return;
	gate_lock(ps);
	if (ps->gate_peers[id].w)
		atomic_fetch_sub_explicit(&ps->nr_gate_peers, 1, memory_order_relaxed);
	ps->gate_peers[id] = (struct phys_gate_peer){ 0 };
	gate_unlock(ps);
}

bool phys_gate_has_peers(struct phys_space *ps)
{
	return atomic_load_explicit(&ps->nr_gate_peers, memory_order_seq_cst) != 0;
}

void phys_gate_close(struct phys_space *ps)
{
	gate_lock(ps);
	atomic_fetch_add_explicit(&ps->foreign_gate, 1, memory_order_seq_cst);
	for (int i = 0; i < PHYS_GATE_PEERS; i++)
		if (ps->gate_peers[i].w)
			atomic_fetch_add_explicit(&ps->gate_peers[i].w->gate, 1, memory_order_seq_cst);
	gate_unlock(ps);
}

void phys_gate_open(struct phys_space *ps, uint32_t n)
{
	gate_lock(ps);
	atomic_fetch_sub_explicit(&ps->foreign_gate, n, memory_order_seq_cst);
	for (int i = 0; i < PHYS_GATE_PEERS; i++)
		if (ps->gate_peers[i].w) {
			/*
			 * Open, truly (not one batch of several settled, which a
			 * hook stuck with the gate closed would let go on for
			 * ever): progress, which a device that waits counts on.
			 */
			if (atomic_fetch_sub_explicit(&ps->gate_peers[i].w->gate, n, memory_order_seq_cst) == n && n)
				atomic_fetch_add_explicit(&ps->gate_peers[i].w->opened, 1, memory_order_release);
		}
	gate_unlock(ps);
}

void phys_gate_wait_peers(struct phys_space *ps)
{
	/* Under the lock: a peer cannot go (and its words be freed) while we read them. */
	gate_lock(ps);
	for (int i = 0; i < PHYS_GATE_PEERS; i++) {
		struct phys_gate_peer *p = &ps->gate_peers[i];
		uint64_t since = 0;

		if (!p->w)
			continue;
		for (unsigned spins = 0; atomic_load_explicit(&p->w->busy, memory_order_seq_cst); spins++) {
			if (spins < 64)
				continue;
			if (!since) {
				since = clock_now_ns();
			} else if (clock_now_ns() - since > PEER_RECHECK_NS) {
				/* A peer that died inside an access never counts it out. */
				if (p->alive && !p->alive(p->arg))
					break;
				since = clock_now_ns();
			}
			sched_yield();
		}
	}
	gate_unlock(ps);
}

void phys_gate_yield(struct phys_space *ps, bool (*stop)(void *arg), void *arg)
{
	uint64_t since = 0, open_since = 0;

	/*
	 * The gate opens when the invalidator is done with the batches before
	 * (phys_gate_open() takes the lock: it is not held across the wait);
	 * a waiting descriptor then counts itself busy and, seeing it open,
	 * stops waiting. Its time counts from the gate's opening, not from
	 * our call: under a stream of unmaps from several threads the
	 * batches before may take longer than the device's chance, and a
	 * bound counted from the call let every closer give up before the
	 * gate ever opened, keeping the device out until its timeout
	 * (attack18's churn, a bus fault). Bounded: a peer that waits for
	 * something else, or died, delays the application's call no longer
	 * than PHYS_GATE_YIELD_MAX_NS; and @stop ends it once the gate may be
	 * kept closed by someone who waits for the caller.
	 */
	while (phys_gate_has_peers(ps)) {
		bool waits = false;
		uint64_t now;

		/* Under the lock, as phys_gate_wait_peers(): no peer's words go while read. */
		gate_lock(ps);
		for (int i = 0; i < PHYS_GATE_PEERS && !waits; i++) {
			struct phys_gate_peer *p = &ps->gate_peers[i];

			/* A peer that died waiting never counts itself out. */
			waits = p->w && atomic_load_explicit(&p->w->waiting, memory_order_seq_cst) &&
				(!p->alive || p->alive(p->arg));
		}
		gate_unlock(ps);
		if (!waits)
			return;
		now = clock_now_ns();
		if (!since)
			since = now;
		if (!open_since && !atomic_load_explicit(&ps->foreign_gate, memory_order_seq_cst))
			open_since = now;
		if ((open_since && now - open_since > PHYS_GATE_YIELD_OPEN_NS) || now - since > PHYS_GATE_YIELD_MAX_NS)
			return;
		if (stop && stop(arg))
			return;
		sched_yield();
	}
}
