/* SPDX-License-Identifier: MIT */
/*
 * epoch.h - grace periods: a writer waits until every reader that might
 * still see what it removed has left its read-side section.
 *
 * Readers are the device side (engine threads walking IO page tables and
 * IOTLBs); writers are unmaps and flushes. A reader announces the epoch it
 * entered with a sequentially consistent store, then reads. A writer
 * removes (clears a PTE, invalidates an IOTLB entry), then bumps the epoch
 * and waits for every reader still inside an older one. A reader that
 * entered later must see the removal: its announcing store and the writer's
 * scan are both sequentially consistent, so one of them sees the other.
 *
 * Read-side sections are short: one descriptor's worth of accesses, or
 * several descriptors' when no writer waits (a reader that runs many asks
 * epoch_waited_on() between two of them). So a writer spins, yielding,
 * rather than sleeping.
 */
#ifndef IOVM_BASE_EPOCH_H
#define IOVM_BASE_EPOCH_H

#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdint.h>

#include "base/compiler.h"
#include "base/list.h"
#include "base/lock.h"

struct epoch {
	_Atomic uint64_t now;   /* starts at 1; 0 in a reader means "outside" */
	struct mutex lock;   /* protects readers (the list, not their epochs) */
	struct list_node readers;
	uint64_t syncs;         /* under lock: grace periods waited for */
};

struct epoch_reader {
	_Atomic uint64_t in;    /* epoch entered, or 0 */
	struct list_node link;  /* in epoch.readers, under epoch.lock */
} __cacheline_aligned;

void epoch_init(struct epoch *e);
void epoch_destroy(struct epoch *e);
void epoch_reader_add(struct epoch *e, struct epoch_reader *r);
void epoch_reader_del(struct epoch *e, struct epoch_reader *r);

static inline void epoch_enter(struct epoch *e, struct epoch_reader *r)
{
	atomic_store_explicit(&r->in, atomic_load_explicit(&e->now, memory_order_relaxed),
			      memory_order_seq_cst);
}

static inline void epoch_exit(struct epoch_reader *r)
{
	atomic_store_explicit(&r->in, 0, memory_order_release);
}

/*
 * epoch_waited_on() - whether a writer may be waiting for @r: the epoch moved
 * since @r entered. A reader that runs long sections (many descriptors)
 * asks between two units of work, and if so leaves and enters again,
 * dropping what it read before: a writer then waits for one unit, not the
 * whole section. A relaxed load of a line that only writers' bumps take
 * away.
 */
static inline bool epoch_waited_on(const struct epoch *e, const struct epoch_reader *r)
{
	return atomic_load_explicit(&e->now, memory_order_relaxed) !=
	       atomic_load_explicit(&r->in, memory_order_relaxed);
}

/* epoch_synchronize() - return once no reader is inside a section begun before the call. */
void epoch_synchronize(struct epoch *e);

#endif /* IOVM_BASE_EPOCH_H */
