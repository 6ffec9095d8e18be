/* SPDX-License-Identifier: MIT */
/*
 * radix.c - allocation and teardown of the two-level table.
 */
#include <errno.h>
#include <sys/mman.h>

#include "base/fault_inject.h"
#include "base/radix.h"

static void *map_zeroed(size_t len)
{
	void *p = fi_mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		       -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static size_t l1_bytes(const struct radix *r)
{
	return sizeof(void *) << (r->key_bits - r->l2_bits);
}

static size_t l2_bytes(const struct radix *r)
{
	return r->elem_size << r->l2_bits;
}

int radix_init(struct radix *r, unsigned key_bits, unsigned l2_bits, size_t elem_size)
{
	/* A first level above 2^26 pointers (512 MiB of VA) means a wrong split. */
	if (!elem_size || l2_bits > key_bits || key_bits - l2_bits > 26 || key_bits > 63)
		return -EINVAL;
	r->key_bits = key_bits;
	r->l2_bits = l2_bits;
	r->elem_size = elem_size;
	r->l1_lo = UINT64_MAX;
	r->l1_hi = 0;
	r->l1 = map_zeroed(l1_bytes(r));
	return r->l1 ? 0 : -ENOMEM;
}

void radix_destroy(struct radix *r)
{
	if (!r->l1)
		return;
	for (uint64_t i = r->l1_lo; i <= r->l1_hi; i++) {
		void *l2 = atomic_load_explicit(&r->l1[i], memory_order_relaxed);

		if (l2)
			munmap(l2, l2_bytes(r));
	}
	munmap((void *)r->l1, l1_bytes(r));
	r->l1 = NULL;
}

void *radix_lookup_alloc(struct radix *r, uint64_t key)
{
	uint64_t i = key >> r->l2_bits;
	char *l2;

	if (key >> r->key_bits)
		return NULL;
	l2 = atomic_load_explicit(&r->l1[i], memory_order_relaxed);
	if (!l2) {
		l2 = map_zeroed(l2_bytes(r));
		if (!l2)
			return NULL;
		atomic_store_explicit(&r->l1[i], l2, memory_order_release);
		if (i < r->l1_lo)
			r->l1_lo = i;
		if (i > r->l1_hi)
			r->l1_hi = i;
	}
	return l2 + (key & ((UINT64_C(1) << r->l2_bits) - 1)) * r->elem_size;
}
