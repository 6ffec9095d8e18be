/* SPDX-License-Identifier: MIT */
/*
 * devproto.h - what a device process and its clients say to each other:
 * requests and answers on the connection (SOCK_SEQPACKET, one message
 * each), and the queue's rings, which live in the shared heap in a block
 * of the client's, lent to the device process while it serves it.
 */
#ifndef IOVM_MP_DEVPROTO_H
#define IOVM_MP_DEVPROTO_H

#include <stdatomic.h>
#include <stdint.h>

#include <iovm/dev.h>

#include "phys/phys.h"

enum dp_op {
	/*
	 * a: the rings' PA, depth, slot: the client's slot in the share,
	 * share_id; with it, the client's /proc/self/mem (SCM_RIGHTS), or
	 * nothing where the client could not open it.
	 */
	DP_OPEN = 1,
	DP_MAP = 2,    /* a: PA of the shared heap, b: length, perm */
	DP_UNMAP = 3,  /* a: IOVA, b: length */
	DP_CLOSE = 4,  /* the queue stops and everything goes back; then the client frees its ring */
	DP_MAP_VA = 5, /* a: the client's own VA, b: length, perm: reached through its memory file */
	/*
	 * A registration of the client's (iovm_rqueue_map_mr()), mirrored: a
	 * range of its own memory, as DP_MAP_VA, but nothing mapped (a: the
	 * client's VA, b: length, perm). Its pages are mapped as the client
	 * answers page requests: it pins them, then sends DP_FILL (a: the
	 * device's IOVA of them, b: length, inside one such range, perm: what
	 * its memory allows now), then answers. DP_DROP (a: VA, b:
	 * length): the client's pages there go; the device unmaps the chunks
	 * (DP_MIRROR_CHUNK) they touch before it answers. The client sends
	 * both under its registration lock, which orders them.
	 */
	DP_MAP_MR = 6,
	DP_DROP = 7,
	DP_FILL = 8,
};

struct dp_req {
	uint32_t op;
	uint32_t slot;
	uint32_t depth;
	uint32_t perm;
	uint64_t a, b;
	uint64_t share_id;
};

struct dp_rep {
	int32_t status;  /* 0 or a negative errno */
	uint32_t pasid;  /* DP_OPEN */
	uint64_t iova;   /* DP_MAP */
};

/*
 * The rings' control words, each on a cache line of its own: the client
 * writes sq_tail and cq_head, the device process sq_head and cq_tail.
 * Then depth descriptors, then depth completion entries. The device
 * process trusts none of it: it copies each descriptor before it reads it,
 * and checks the indexes against the depth.
 */
struct dp_ring_ctl {
	_Atomic uint32_t sq_tail;
	uint8_t pad0[60];
	_Atomic uint32_t sq_head;
	uint8_t pad1[60];
	_Atomic uint32_t cq_tail;
	uint8_t pad2[60];
	_Atomic uint32_t cq_head;
	uint8_t pad3[60];
	/*
	 * Set by the device process's worker before it sleeps: a submitter that
	 * sees it after publishing sq_tail writes the worker's eventfd (passed
	 * with the answer to DP_OPEN). Both sides fence between their store and
	 * their load, so that one of them sees the other's.
	 */
	_Atomic uint32_t sleeping;
	uint8_t pad4[60];
	/*
	 * A page request: a descriptor that blocks on faults found nothing
	 * mapped at pr_addr of the client's own memory. The device process
	 * writes pr_addr, pr_iova and pr_access, then pr_seq (release), and
	 * waits; the
	 * client, in its reap, resolves it and writes pr_status (0: mapped
	 * now), then pr_done = pr_seq (release). The device process trusts
	 * neither: it counts its own requests, and waits a bounded time.
	 */
	_Atomic uint64_t pr_addr;
	_Atomic uint64_t pr_iova; /* in a mirrored registration, the IOVA that faulted (two may hold pr_addr); else 0 */
	_Atomic uint32_t pr_access;
	_Atomic uint32_t pr_seq;
	_Atomic uint32_t pr_done;
	_Atomic int32_t pr_status;
	uint8_t pad5[32];
	/*
	 * The client's foreign gate, a copy its memory monitor keeps
	 * (phys_gate_peer_add()); the device process's accesses in flight
	 * to the client's mirrored registrations, which that monitor waits
	 * out before it lets a munmap() return; and its descriptors waiting
	 * for the gate, which that monitor lets in before it closes the gate
	 * again (phys/gate.c).
	 */
	struct phys_gate_words gate;
	uint8_t pad6[48];
};
static_assert(sizeof(struct dp_ring_ctl) == 448, "seven cache lines");
static_assert(sizeof(struct iovm_desc) == 64, "a descriptor is a cache line");

static inline uint64_t dp_ring_bytes(unsigned depth)
{
	return sizeof(struct dp_ring_ctl) + (uint64_t)depth * (sizeof(struct iovm_desc) + sizeof(struct iovm_cqe));
}

static inline struct iovm_desc *dp_sq(struct dp_ring_ctl *r)
{
	return (struct iovm_desc *)(void *)(r + 1);
}

static inline struct iovm_cqe *dp_cq(struct dp_ring_ctl *r, unsigned depth)
{
	return (struct iovm_cqe *)(void *)(dp_sq(r) + depth);
}

/*
 * What one page request of a mirrored registration asks for: the range
 * cut at multiples of it from its start (the MR's first page, as the MR
 * pins them), and at its end; the client pins and fills that much (or
 * the page alone, beside a hole), and a drop unmaps whole such chunks on
 * the device.
 */
#define DP_MIRROR_CHUNK (UINT64_C(64) * 1024)

/* The abstract socket of device process @name. */
#define DP_SOCK_FMT "iovm-device/%s"

#endif /* IOVM_MP_DEVPROTO_H */
