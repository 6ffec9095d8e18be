/* SPDX-License-Identifier: MIT */
/*
 * devwork.c - a device process's worker threads: each serves its share of
 * the clients' slots (client i: worker i % nr_workers), moving descriptors
 * from a client's submission ring to the client's engine queue, running
 * them and copying the completions back, and dozes on its eventfd when
 * none of its clients submits.
 *
 * The control thread (devsrv.c) owns the clients: it makes them, opens
 * them and tears them down. A worker only borrows one, under its lock,
 * inside a pass (srv->passes) that tells the control thread when no
 * worker can still hold the pointer of a client it took out of the array.
 * A client's ring is the client's memory: its indexes are checked against
 * the depth, never trusted, and each descriptor is copied once and run in
 * the client's PASID, whatever it says.
 */
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <iovm/dev.h>

#include "base/clock.h"
#include "mp/devproto.h"

#include "mp/devsrv.h"

/* Move what the client submitted to its engine queue, run it, copy completions back. Needs c->lock. */
static unsigned service(struct iovm_device_server *srv, struct client *c)
{
	struct dp_ring_ctl *r = c->ring;
	struct iovm_desc *sq = dp_sq(r);
	struct iovm_cqe *cq = dp_cq(r, c->depth), cqe[32];
	uint32_t head = atomic_load_explicit(&r->sq_head, memory_order_relaxed);
	uint32_t tail = atomic_load_explicit(&r->sq_tail, memory_order_acquire);
	uint32_t cq_tail = atomic_load_explicit(&r->cq_tail, memory_order_relaxed);
	uint32_t cq_head = atomic_load_explicit(&r->cq_head, memory_order_acquire);
	unsigned moved = 0;
	int n;

	/* The client's indexes are checked, never trusted: at most depth in flight, completions included. */
	if (tail - head > c->depth || cq_tail - cq_head > c->depth)
		return 0;
	while (head != tail && (cq_tail - cq_head) + c->in_engine < c->depth) {
		struct iovm_desc d;

		memcpy(&d, &sq[head & (c->depth - 1)], sizeof(d));
		d.pasid = c->pasid;
		if (iovm_queue_submit(c->q, &d))
			break;
		head++;
		c->in_engine++;
		moved++;
	}
	atomic_store_explicit(&r->sq_head, head, memory_order_release);
	if (c->in_engine)
		iovm_queue_process(c->q, c->depth);
	while ((n = iovm_queue_reap(c->q, cqe, 32)) > 0) {
		for (int i = 0; i < n; i++)
			cq[cq_tail++ & (c->depth - 1)] = cqe[i];
		c->in_engine -= (uint32_t)n;
		atomic_store_explicit(&r->cq_tail, cq_tail, memory_order_release);
		atomic_fetch_add_explicit(&srv->descriptors, (uint64_t)n, memory_order_relaxed);
		moved += (unsigned)n;
	}
	return moved;
}

/* A pass of worker @id through its clients begins (odd) or ends (even). */
static void pass_mark(struct iovm_device_server *srv, unsigned id)
{
	/* Before the pass loads a client pointer: see client_free(). */
	atomic_fetch_add_explicit(&srv->passes[id], 1, memory_order_seq_cst);
}

/* Say @on to worker @id's clients: whether it sleeps. Inside a pass. */
static bool mark_sleeping(struct iovm_device_server *srv, unsigned id, uint32_t on)
{
	bool work = false;

	for (unsigned i = id; i < MAX_CLIENTS; i += srv->nr_workers) {
		struct client *c = atomic_load_explicit(&srv->clients[i], memory_order_acquire);

		if (!c || pthread_mutex_trylock(&c->lock)) {
			work |= c != NULL; /* busy with a request or a teardown: do not sleep on it */
			continue;
		}
		if (!c->dead && c->opened) {
			atomic_store_explicit(&c->ring->sleeping, on, memory_order_relaxed);
			atomic_thread_fence(memory_order_seq_cst);
			work |= atomic_load_explicit(&c->ring->sq_tail, memory_order_relaxed) !=
					atomic_load_explicit(&c->ring->sq_head, memory_order_relaxed) ||
				c->in_engine;
		}
		pthread_mutex_unlock(&c->lock);
	}
	return work;
}

static void doze(struct iovm_device_server *srv, unsigned id)
{
	struct pollfd p = { .fd = srv->wake_fd[id], .events = POLLIN };
	uint64_t n;
	bool work;

	pass_mark(srv, id);
	work = mark_sleeping(srv, id, 1);
	pass_mark(srv, id);
	/* Marked, then looked again: a submission after the mark rings; one before it is seen here. */
	if (!work && poll(&p, 1, 100) == 1 && read(srv->wake_fd[id], &n, sizeof(n)) < 0)
		n = 0;
	pass_mark(srv, id);
	mark_sleeping(srv, id, 0);
	pass_mark(srv, id);
}

void *devwork_main(void *arg)
{
	struct devwork_arg *wa = arg;
	struct iovm_device_server *srv = wa->srv;
	unsigned id = wa->id, idle = 0;
	uint64_t idle_since = 0;

	free(wa);
	atomic_fetch_add_explicit(&srv->started, 1, memory_order_release);
	while (!atomic_load_explicit(&srv->stopping, memory_order_acquire)) {
		unsigned work = 0;

		pass_mark(srv, id);
		for (unsigned i = id; i < MAX_CLIENTS; i += srv->nr_workers) {
			struct client *c = atomic_load_explicit(&srv->clients[i], memory_order_acquire);

			if (!c || pthread_mutex_trylock(&c->lock))
				continue;
			if (!c->dead && c->opened)
				work += service(srv, c);
			pthread_mutex_unlock(&c->lock);
		}
		pass_mark(srv, id);
		if (work) {
			idle = 0;
			continue;
		}
		/*
		 * Nothing to do: spin for 200 µs (a client between two bursts
		 * submits again sooner than a wake-up would take), then sleep
		 * until a client rings (or 100 ms: a new client).
		 */
		if (!idle++) {
			idle_since = clock_now_ns();
		} else if (!(idle & 63) && clock_now_ns() - idle_since > 200 * 1000) {
			doze(srv, id);
			idle = 0;
			continue;
		}
		/*
		 * A client that shares this CPU with the worker (more busy
		 * threads than CPUs) gets it now: it has the descriptors.
		 */
		sched_yield();
	}
	return NULL;
}
