/* SPDX-License-Identifier: MIT */
/*
 * counter.h - statistics counters that one thread writes and any thread
 * may read (iovm_domain_stats(), iovm_queue_stats(), iovm_reg_stats(),
 * iovm_rcache_stats()): the one helper every layer counts with.
 *
 * The writer adds with a relaxed load and a relaxed store, not a locked
 * read-modify-write: it is the only writer (the counter's owner thread, or
 * whoever holds the lock that guards it), so no update is lost, and a
 * locked instruction would cost the hot path a drain of its store buffer.
 * Readers load relaxed: a counter orders nothing, and a snapshot of several
 * is only as consistent as the caller's lock makes it.
 */
#ifndef IOVM_BASE_COUNTER_H
#define IOVM_BASE_COUNTER_H

#include <stdatomic.h>
#include <stdint.h>

/* Add @n (which may be negative, as two's complement) to a counter with a single writer. */
static inline void counter_add(_Atomic uint64_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n, memory_order_relaxed);
}

static inline uint64_t counter_read(const _Atomic uint64_t *c)
{
	return atomic_load_explicit((_Atomic uint64_t *)c, memory_order_relaxed);
}

#endif /* IOVM_BASE_COUNTER_H */
