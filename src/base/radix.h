/* SPDX-License-Identifier: MIT */
/*
 * radix.h - a two-level table from a dense integer key to a fixed-size
 * element, with lookups that take no lock.
 *
 * The layout is SPDK's memory map: the key's high bits index a first-level
 * array of pointers, its low bits a second-level table of elements. A
 * second-level table is allocated the first time a key inside it is written,
 * published with a release store, and kept until the table is destroyed, so
 * a reader that loaded its pointer can use it without any reclamation
 * scheme. Both levels are mmap'ed with MAP_NORESERVE: a sparse key space
 * costs only the pages that are touched.
 *
 * Thread safety: radix_lookup() from any thread, at any time. Writers
 * (radix_lookup_alloc() and stores into elements) are serialised by the
 * owner's lock; elements that readers see change are the owner's atomics.
 */
#ifndef IOVM_BASE_RADIX_H
#define IOVM_BASE_RADIX_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "base/compiler.h"

struct radix {
	unsigned key_bits;
	unsigned l2_bits;
	size_t elem_size;
	_Atomic(void *) *l1; /* (1 << (key_bits - l2_bits)) second-level tables */
	/*
	 * The first and last first-level slots ever written (lo > hi: none),
	 * under the owner's lock as every write is: radix_destroy() looks
	 * only there, instead of faulting in the whole first level.
	 */
	uint64_t l1_lo, l1_hi;
};

/*
 * radix_init() - an empty table for keys below 2^@key_bits.
 * @l2_bits: key bits resolved by a second-level table (its size is
 *           @elem_size << @l2_bits bytes)
 */
int radix_init(struct radix *r, unsigned key_bits, unsigned l2_bits, size_t elem_size);
void radix_destroy(struct radix *r);

/* The element for @key, or NULL when its table was never written or @key is out of range. */
static inline void *radix_lookup(const struct radix *r, uint64_t key)
{
	char *l2;

	if (unlikely(key >> r->key_bits))
		return NULL;
	l2 = atomic_load_explicit(&r->l1[key >> r->l2_bits], memory_order_acquire);
	if (!l2)
		return NULL;
	return l2 + (key & ((UINT64_C(1) << r->l2_bits) - 1)) * r->elem_size;
}

/* The element for @key, allocating its (zeroed) table; NULL when out of range or memory. */
void *radix_lookup_alloc(struct radix *r, uint64_t key);

#endif /* IOVM_BASE_RADIX_H */
