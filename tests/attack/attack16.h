/* SPDX-License-Identifier: MIT */
/*
 * attack16.h - what the sixteenth round's tests share: the shared heap's
 * parcels (issue 17, iovm/mp.h), attacked from the public headers alone.
 * A follower (a domain with IOVM_DOMAIN_FOLLOW_HEAP, the software engine
 * attached to it) on any context, a device copy through it, patterns
 * that name their block, and a subscriber that counts parcels.
 */
#ifndef IOVM_TESTS_ATTACK16_H
#define IOVM_TESTS_ATTACK16_H

#include <signal.h>
#include <stdlib.h>

#include <iovm.h>

#include "dev/dev_util.h"
#include "mp/mp_util.h"

#define A16_MIB (UINT64_C(1) << 20)
#define A16_PARCEL (UINT64_C(2) << 20)

/* The usual rig (dev_util.h) on a context already shared or attached. */
static inline void a16_follow(struct rig *r, struct iovm_ctx *ctx)
{
	struct iovm_domain_attr follow = { .type = IOVM_DOMAIN_MANAGED, .flags = IOVM_DOMAIN_FOLLOW_HEAP };
	struct iovm_queue_attr qa = { .depth = 16 };

	memset(r, 0, sizeof(*r));
	r->ctx = ctx;
	CHECK_OK(iovm_domain_create(ctx, &follow, &r->dom));
	CHECK_OK(iovm_device_open(ctx, "sw", &r->dev));
	CHECK_OK(iovm_device_attach(r->dev, r->dom, IOVM_PASID_NONE));
	CHECK_OK(iovm_queue_create(r->dev, &qa, &r->q));
	r->comp = iovm_dma_zalloc(ctx, 4096, 4096, 0);
	CHECK(r->comp != NULL);
	CHECK_OK(iovm_dma_iova(r->dom, r->comp, &r->comp_iova));
}

/* Undo a16_follow(), the context stays open. */
static inline void a16_unfollow(struct rig *r)
{
	no_violations(r->dom);
	CHECK_OK(iovm_queue_destroy(r->q));
	CHECK_OK(iovm_device_close(r->dev));
	CHECK_OK(iovm_domain_destroy(r->dom));
	CHECK_OK(iovm_dma_free(r->ctx, r->comp));
}

/* Copy @len bytes from IOVA @src to IOVA @dst on the rig's device: the completion. */
static inline struct iovm_completion a16_copy(struct rig *r, uint64_t src, uint64_t dst, uint32_t len)
{
	return run_desc(r, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = src, .dst = dst, .len = len });
}

/* The IOVA of @p in the rig's following domain: it must be mapped already. */
static inline uint64_t a16_iova(struct rig *r, const void *p)
{
	iovm_iova_t i;
	int ret = iovm_dma_iova(r->dom, p, &i);

	CHECK_MSG(ret == 0, "a following domain does not map %p (heap offset unknown): %s", p, strerror(-ret));
	return i.addr;
}

static inline uint64_t a16_word(uint64_t seed, uint64_t i)
{
	return (seed * UINT64_C(0x9E3779B97F4A7C15)) ^ (i * UINT64_C(0xD6E8FEB86659FD93)) ^ (i >> 7);
}

static inline void a16_fill(void *p, size_t len, uint64_t seed)
{
	uint64_t *w = p;

	for (size_t i = 0; i < len / 8; i++)
		w[i] = a16_word(seed, i);
}

/* The first word of [p, p+len) that is not the pattern of @seed starting at word @first; -1 when none. */
static inline long a16_bad(const void *p, size_t len, uint64_t seed, uint64_t first)
{
	const uint64_t *w = p;

	for (size_t i = 0; i < len / 8; i++)
		if (w[i] != a16_word(seed, first + i))
			return (long)i;
	return -1;
}

/* A subscriber that counts what it hears. */
struct a16_count {
	_Atomic uint64_t commits, releases, committed, released;
	_Atomic int bad; /* an event not in whole 2 MiB parcels */
	/*
	 * The shared heap's VAs (a16_count_heap()): events of the process's
	 * own memory, outside it, are not counted (in 4 KiB pages where the
	 * machine has no hugepages, they are not in parcels).
	 */
	uintptr_t heap_lo, heap_hi;
};

static inline int a16_count_fn(void *arg, const struct iovm_mem_event *ev)
{
	struct a16_count *c = arg;

	if ((uintptr_t)ev->va < c->heap_lo || (uintptr_t)ev->va >= c->heap_hi)
		return 0;
	if (ev->len % A16_PARCEL || (uintptr_t)ev->va % A16_PARCEL)
		c->bad = 1;
	if (ev->type == IOVM_MEM_EVENT_COMMIT) {
		c->commits++;
		c->committed += ev->len;
	} else {
		c->releases++;
		c->released += ev->len;
	}
	return 0;
}

/* A watchdog: a test that hangs dies saying which. */
static inline void a16_alarm(int sig)
{
	(void)sig;
	static const char m[] = "attack16: a test hung (watchdog)\n";
	if (write(2, m, sizeof(m) - 1) < 0) {
	}
	_exit(3);
}

static inline void a16_watchdog(unsigned s)
{
	signal(SIGALRM, a16_alarm);
	alarm(s);
}

#endif /* IOVM_TESTS_ATTACK16_H */
