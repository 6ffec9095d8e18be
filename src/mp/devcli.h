/* SPDX-License-Identifier: MIT */
/*
 * devcli.h - a client's queue on a device process (devcli.c), shared with
 * its mirrored registrations (devcli_mr.c).
 */
#ifndef IOVM_MP_DEVCLI_H
#define IOVM_MP_DEVCLI_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <iovm/mp.h>

#include "mp/devproto.h"

struct rq_mirror;

struct iovm_rqueue {
	struct iovm_ctx *ctx;
	struct mp_space *s;
	int conn;
	pthread_mutex_t req_lock; /* one request at a time on the connection */
	struct dp_ring_ctl *ring;
	unsigned depth;
	uint32_t pasid;
	uint32_t sq_tail;         /* the submitter's */
	uint32_t cq_head;         /* the reaper's */
	_Atomic uint32_t reaped;  /* cq_head, for the submitter's count of what is in flight */
	unsigned empty_reaps;     /* the reaper's */
	_Atomic bool gone;        /* the device process is gone */
	unsigned fork_gen;        /* mp_fork_gen() at open: a forked child has none of it */
	int wake_fd;              /* the worker's eventfd: written when it sleeps (dp_ring_ctl.sleeping) */
	/* Page requests: answered by the reaper, with the handler set before. */
	iovm_rqueue_fault_fn fault_fn;
	void *fault_arg;
	uint32_t pr_answered;     /* the reaper's: the last request answered */
	int gate_peer;            /* phys_gate_peer_add()'s: the ring's copy of the foreign gate */
	/*
	 * Registrations mirrored on the device (devcli_mr.c): the array, and
	 * each entry's MR, under mirror_lock, which the reaper holds while it
	 * answers a page request in one of them.
	 */
	pthread_mutex_t mirror_lock;
	struct rq_mirror **mirrors;
	unsigned nr_mirrors, cap_mirrors;
};


/* -EPERM in a forked child: the queue is its parent's. */
int rq_not_forked(const struct iovm_rqueue *q);
/* One request and its answer; @fd (-1: none) goes with the request. -EPIPE when the device process is gone. */
int rq_request(struct iovm_rqueue *q, const struct dp_req *r, int fd, struct dp_rep *rep);
/*
 * devcli_mr.c. rq_mirror_answer(): a page request at @addr in a mirrored
 * registration (the one the device's @iova is in; 0: any that holds
 * @addr), answered through it into *@status; false when there is none. rq_mirrors_close(): after DP_CLOSE, the mirrors go.
 */
bool rq_mirror_answer(struct iovm_rqueue *q, uint64_t addr, uint64_t iova, uint32_t access, int *status);
void rq_mirrors_close(struct iovm_rqueue *q);

#endif /* IOVM_MP_DEVCLI_H */
