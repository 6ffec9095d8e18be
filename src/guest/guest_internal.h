/* SPDX-License-Identifier: MIT */
/*
 * guest_internal.h - the structures the files of src/guest share.
 *
 * Locks, in the order they nest: guest_space.lock -> iovm_guest.lock ->
 * the lower layers' locks. A guest's memory (its banks, RAM mapping and
 * stage 2's contents) changes only in create, start, shutdown and
 * destroy, which the caller serializes per guest.
 */
#ifndef IOVM_GUEST_INTERNAL_H
#define IOVM_GUEST_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include <iovm/guest.h>

#include "base/addr.h"
#include "base/list.h"
#include "base/lock.h"

struct phys_arena;
struct phys_pool;

struct guest_space {
	struct iovm_ctx *ctx;
	struct mutex lock;    /* guests */
	struct list_node guests; /* under lock */
};

/* A bank: guest physical [gpa, +len) is physical [pa, +len), reached at ram + ram_off. */
struct guest_bank {
	gpa_t gpa;
	pa_t pa;
	uint64_t len;
	uint64_t ram_off;
};

/* A device assigned to the guest. */
struct guest_assignment {
	struct list_node link; /* in iovm_guest.assigned, under its lock */
	struct iovm_device *dev;
	uint32_t pasid;
};

struct iovm_guest {
	struct guest_space *gs;
	struct iovm_ctx *ctx;
	struct list_node link;       /* in guest_space.guests, under its lock */
	uint32_t flags;              /* IOVM_GUEST_* */
	uint64_t size;
	struct phys_arena *arena;    /* where its frames are */
	struct phys_pool *pool;      /* the pool they are reserved in, or NULL: the buddy's */
	/* Fixed at creation, sorted by gpa: read without a lock. */
	struct guest_bank *banks;
	unsigned nr_banks;
	struct iovm_domain *stage2;  /* fixed at creation */
	uint8_t *ram;                /* a reservation of size bytes; banks committed while running */
	bool has_frames;             /* it holds its frames: running, or from a pool, or not yet started */
	_Atomic bool running;        /* written by create, start and shutdown (serialized by the caller) */
	_Atomic uint64_t starts;

	struct mutex lock;        /* what follows */
	struct list_node assigned;   /* under lock */
	struct iovm_domain *identity; /* under lock: made for the first identity assignment */
};

/*
 * memory.c: the frames, the process's mapping and stage 2. The caller
 * serializes them per guest. guest_place() takes the frames; a stop gives
 * the buddy's back (a pool's stay the guest's), a start takes them again;
 * guest_unplace() gives back whatever the guest still holds.
 */
int guest_place(struct iovm_guest *g, const struct iovm_guest_attr *attr);
int guest_mem_start(struct iovm_guest *g);
void guest_mem_stop(struct iovm_guest *g);
void guest_unplace(struct iovm_guest *g);

/* assign.c: devices back, and the identity domain gone, before the guest goes. Needs nothing held. */
void guest_unassign_all(struct iovm_guest *g);

#endif /* IOVM_GUEST_INTERNAL_H */
