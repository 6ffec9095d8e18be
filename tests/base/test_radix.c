/* SPDX-License-Identifier: MIT */
/*
 * test_radix.c - the two-level table: sparse keys, bounds, and readers
 * running while a writer publishes new tables.
 */
#include <pthread.h>
#include <stdio.h>

#include "base/radix.h"
#include "harness.h"

TEST(sparse)
{
	struct radix r;
	uint64_t *e;

	CHECK_EQ(radix_init(&r, 64, 8, 8), -EINVAL);
	CHECK_EQ(radix_init(&r, 40, 8, 8), -EINVAL); /* first level too large */
	CHECK_EQ(radix_init(&r, 20, 8, 0), -EINVAL);
	CHECK_OK(radix_init(&r, 36, 18, sizeof(uint64_t)));
	CHECK(radix_lookup(&r, 5) == NULL);
	CHECK(radix_lookup(&r, UINT64_C(1) << 36) == NULL);
	CHECK(radix_lookup_alloc(&r, UINT64_C(1) << 36) == NULL);
	e = radix_lookup_alloc(&r, 5);
	CHECK(e != NULL);
	CHECK_EQ(*e, 0);
	*e = 42;
	CHECK_EQ(*(uint64_t *)radix_lookup(&r, 5), 42);
	/* Another key in the same table shares it; one far away gets its own. */
	CHECK(radix_lookup(&r, 6) == e + 1);
	CHECK(radix_lookup(&r, UINT64_C(1) << 30) == NULL);
	e = radix_lookup_alloc(&r, (UINT64_C(1) << 36) - 1);
	CHECK(e != NULL);
	*e = 7;
	CHECK_EQ(*(uint64_t *)radix_lookup(&r, (UINT64_C(1) << 36) - 1), 7);
	radix_destroy(&r);
}

/* The process's address space, in KiB: what is mapped, whether or not the kernel merged it. */
static long long vm_size_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	long long kb = -1;
	char line[128];

	CHECK(f != NULL);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmSize: %lld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* Every second-level table goes at destroy, the first slot's and the last's too. */
TEST(destroy_unmaps_every_table)
{
	long long before, l1_kb = (8ll << (36 - 18)) >> 10, l2_kb = (8ll << 18) >> 10;
	struct radix r;

	CHECK_OK(radix_init(&r, 36, 18, sizeof(uint64_t)));
	before = vm_size_kb();
	CHECK(radix_lookup_alloc(&r, 0) != NULL);
	CHECK(radix_lookup_alloc(&r, (UINT64_C(1) << 36) - 1) != NULL);
	CHECK(radix_lookup_alloc(&r, UINT64_C(1) << 35) != NULL);
	CHECK(radix_lookup_alloc(&r, (UINT64_C(1) << 35) + 1) != NULL); /* the same table */
	CHECK_EQ(vm_size_kb(), before + 3 * l2_kb);
	radix_destroy(&r);
	CHECK(r.l1 == NULL);
	CHECK_EQ(vm_size_kb(), before - l1_kb);
	radix_destroy(&r); /* twice is harmless */
	/* An empty table has nothing to give back but its first level. */
	CHECK_OK(radix_init(&r, 20, 8, 8));
	before = vm_size_kb();
	radix_destroy(&r);
	CHECK_EQ(vm_size_kb(), before - ((8ll << 12) >> 10));
}

static struct radix shared;
static _Atomic int writer_done;

static void *reader(void *arg)
{
	uint64_t seed = (uintptr_t)arg, seen = 0;

	while (!atomic_load(&writer_done)) {
		uint64_t k = test_rand(&seed) % (UINT64_C(1) << 24);
		_Atomic uint64_t *e = radix_lookup(&shared, k);

		/* A published entry holds its key plus one, never garbage. */
		if (e) {
			uint64_t v = atomic_load_explicit(e, memory_order_acquire);

			if (v && v != k + 1) {
				fprintf(stderr, "key %lu holds %lu\n", (unsigned long)k, (unsigned long)v);
				abort();
			}
			seen += v != 0;
		}
	}
	return (void *)(uintptr_t)seen;
}

TEST(concurrent_readers)
{
	pthread_t t[2];

	CHECK_OK(radix_init(&shared, 24, 10, sizeof(uint64_t)));
	for (int i = 0; i < 2; i++)
		CHECK_EQ(pthread_create(&t[i], NULL, reader, (void *)(uintptr_t)(i + 1)), 0);
	for (uint64_t k = 0; k < (UINT64_C(1) << 24); k += 4099) {
		_Atomic uint64_t *e = radix_lookup_alloc(&shared, k);

		CHECK(e != NULL);
		atomic_store_explicit(e, k + 1, memory_order_release);
	}
	atomic_store(&writer_done, 1);
	for (int i = 0; i < 2; i++)
		CHECK_EQ(pthread_join(t[i], NULL), 0);
	for (uint64_t k = 0; k < (UINT64_C(1) << 24); k += 4099)
		CHECK_EQ(*(uint64_t *)radix_lookup(&shared, k), k + 1);
	radix_destroy(&shared);
}

int main(void)
{
	test_init();
	RUN(sparse);
	RUN(destroy_unmaps_every_table);
	RUN(concurrent_readers);
	return 0;
}
