/* SPDX-License-Identifier: MIT */
/*
 * vm_rdma.h - what the RDMA VM test's files share (vm_rdma.c owns the
 * endpoints, their lockstep and the single-threaded cases; vm_rdma_mt.c
 * the registration cache under threads): an endpoint, its connection to
 * the peer's, and iovm's device in front of it.
 */
#ifndef IOVM_VM_RDMA_H
#define IOVM_VM_RDMA_H

#include <stdint.h>

#include <infiniband/verbs.h>

#include <iovm.h>

#define BUF_LEN 8192
#define CQ_TIMEOUT 30.0 /* seconds: TCG is slow, a retry storm slower */

enum side { SIDE_A, SIDE_B };

/* What ep_connect() tells the peer. */
struct ep_info {
	uint32_t qpn, psn;
	union ibv_gid gid;
	uint64_t addr; /* one buffer the peer may target, */
	uint32_t rkey; /* with its rkey */
	uint32_t len;
};

/* One endpoint: a process, its device, and its end of the pipes to the other. */
struct ep {
	enum side side;
	const char *name; /* "A" or "B" in messages */
	int in, out;      /* pipes from and to the peer */
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	uint8_t port;
	int gid_index;
	union ibv_gid gid;
	enum ibv_mtu mtu;
	struct ibv_qp *qp;   /* the case's QP, from ep_connect() */
	struct ep_info peer; /* what the peer told ep_connect() */
	const char *devname; /* the RDMA device, for iovm's "verbs:" */
};

/*
 * The endpoint's device opened again through iovm ("verbs:NAME"), bound to
 * a managed domain: its MRs are iovm's, and the case's QPs must be in the
 * protection domain iovm opened, so the endpoint's context, PD and CQ are
 * swapped for iovm's while the case runs.
 */
struct iovm_ep {
	struct iovm_ctx *ctx;
	struct iovm_device *dev;
	struct iovm_domain *dom;
	struct ibv_context *own_ctx;
	struct ibv_pd *own_pd;
	struct ibv_cq *own_cq;
};

int ep_exchange(struct ep *ep, const void *mine, void *theirs, size_t n);
int ep_sync(struct ep *ep);
int ep_connect(struct ep *ep, uint64_t addr, uint32_t rkey, uint32_t len);
const char *status_str(int st);
int iovm_ep_open(struct ep *ep, struct iovm_ep *ie);
void iovm_ep_close(struct ep *ep, struct iovm_ep *ie);
struct ibv_mr iovm_keys(struct iovm_mr *mr);

/*
 * The registration cache under four threads (vm_rdma_mt.c): its CHECKs
 * are counted apart (vm_common.h's counters are each file's own) and
 * added to *checks and *failures.
 */
int case_iovm_cache_threads(struct ep *ep, int *checks, int *failures);

#endif
