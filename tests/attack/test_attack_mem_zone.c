/* SPDX-License-Identifier: MIT */
/*
 * test_attack_mem_zone.c - attacks the zone promises of mem.h: argument
 * checks whether or not the zone exists, idempotence (0 then 1, contents
 * intact), -EEXIST for a zone that does not satisfy the request (size,
 * alignment, boundary, page size), zeroed and contiguous at creation,
 * stale and forged handles refused, and reserve, lookup and free racing
 * on many threads.
 */
#include "attack.h"

static struct iovm_ctx *ctx;

static void check_zone_memory(const struct iovm_zone *z)
{
	iovm_pa_t pa;

	CHECK(z->va != NULL);
	CHECK(z->len >= 1);
	CHECK_EQ((uintptr_t)z->va % z->align, 0);
	CHECK_OK(iovm_dma_pa(ctx, z->va, &pa));
	CHECK_EQ(pa.addr, z->pa.addr);
	for (size_t off = 0; off < z->len; off += 4096) {
		CHECK_OK(iovm_dma_pa(ctx, (uint8_t *)z->va + off, &pa));
		EXPECT_MSG(pa.addr == z->pa.addr + off, "zone %s not contiguous at %zu", z->name, off);
	}
	CHECK_OK(iovm_dma_pa(ctx, (uint8_t *)z->va + z->len - 1, &pa));
	EXPECT_EQ(pa.addr, z->pa.addr + z->len - 1);
	CHECK(iovm_dma_ptr(ctx, z->pa) == z->va);
}

TEST(zone_reserve_refuses_bad_arguments_whether_or_not_it_exists)
{
	const struct iovm_zone *z, *z2;
	char name32[IOVM_ZONE_NAMESIZE + 1];
	char name31[IOVM_ZONE_NAMESIZE];

	memset(name32, 'n', IOVM_ZONE_NAMESIZE);
	name32[IOVM_ZONE_NAMESIZE] = 0;
	memset(name31, 'm', IOVM_ZONE_NAMESIZE - 1);
	name31[IOVM_ZONE_NAMESIZE - 1] = 0;

	CHECK_RET(iovm_zone_reserve(NULL, "a", 64, 0, 0, &z), -EINVAL);
	CHECK_RET(iovm_zone_reserve(ctx, NULL, 64, 0, 0, &z), -EINVAL);
	CHECK_RET(iovm_zone_reserve(ctx, "", 64, 0, 0, &z), -EINVAL);
	CHECK_RET(iovm_zone_reserve(ctx, name32, 64, 0, 0, &z), -EINVAL);
	CHECK_RET(iovm_zone_reserve(ctx, "a", 0, 0, 0, &z), -EINVAL);
	CHECK_RET(iovm_zone_reserve(ctx, "a", 64, 3, 0, &z), -EINVAL);
	CHECK_RET(iovm_zone_reserve(ctx, "a", 64, (size_t)1 << 31, 0, &z), -EINVAL);
	CHECK_RET(iovm_zone_reserve(ctx, "a", 64, 0, 1u << 7, &z), -EINVAL);
	CHECK_RET(iovm_zone_reserve(ctx, "a", 64, 0, IOVM_DMA_PAGE_4K | IOVM_DMA_PAGE_2M, &z), -EINVAL);
	CHECK_RET(iovm_zone_reserve(ctx, "a", 8192, 0, IOVM_DMA_BOUNDARY(12), &z), -EINVAL);
	CHECK_RET(iovm_zone_reserve(ctx, "a", 64, 0, IOVM_DMA_BOUNDARY(41), &z), -EINVAL);
	CHECK_RET(iovm_zone_reserve(ctx, "a", 64, 0, IOVM_DMA_NODE(254), &z), -EINVAL);
	CHECK_RET(iovm_zone_reserve(ctx, "a", 64, 0, 0, NULL), -EINVAL);
	CHECK_RET(iovm_zone_lookup(ctx, "a", &z), -ENOENT);
	CHECK_RET(iovm_zone_reserve(ctx, name31, 64, 0, 0, &z), 0);
	CHECK_RET(iovm_zone_lookup(ctx, name31, &z2), 0);
	CHECK(z == z2);
	CHECK_RET(iovm_zone_lookup(ctx, name32, &z2), -EINVAL);
	CHECK_RET(iovm_zone_lookup(ctx, "", &z2), -EINVAL);
	CHECK_RET(iovm_zone_lookup(ctx, NULL, &z2), -EINVAL);
	CHECK_RET(iovm_zone_lookup(NULL, name31, &z2), -EINVAL);
	CHECK_RET(iovm_zone_lookup(ctx, name31, NULL), -EINVAL);
	/* The zone exists: bad flags are still refused (not "found again"). */
	CHECK_RET(iovm_zone_reserve(ctx, name31, 64, 0, IOVM_DMA_PAGE_4K | IOVM_DMA_PAGE_2M, &z2), -EINVAL);
	CHECK_RET(iovm_zone_reserve(ctx, name31, 64, 0, 1u << 7, &z2), -EINVAL);
	CHECK_RET(iovm_zone_reserve(ctx, name31, 64, 0, IOVM_DMA_NODE(254), &z2), -EINVAL);
	CHECK_RET(iovm_zone_reserve(ctx, name31, 64, 3, 0, &z2), -EINVAL);
	CHECK_RET(iovm_zone_reserve(ctx, name31, 0, 0, 0, &z2), -EINVAL);
	CHECK_RET(iovm_zone_reserve(ctx, name31, 8192, 0, IOVM_DMA_BOUNDARY(12), &z2), -EINVAL);
	CHECK_RET(iovm_zone_free(ctx, z), 0);
}

TEST(zone_reserve_is_idempotent_and_eexist_when_unsatisfied)
{
	const struct iovm_zone *z, *z2;

	CHECK_RET(iovm_zone_reserve(ctx, "ring", 10000, 4096, 0, &z), 0);
	check_zone_memory(z);
	CHECK(z->len >= 10000);
	CHECK(all_bytes(z->va, z->len, 0));
	CHECK_EQ(z->align >= 4096, 1);
	CHECK(strcmp(z->name, "ring") == 0);
	memset(z->va, 0x77, 10000);
	CHECK_RET(iovm_zone_reserve(ctx, "ring", 10000, 4096, 0, &z2), 1);
	CHECK(z2 == z);
	CHECK(all_bytes(z->va, 10000, 0x77));
	CHECK_RET(iovm_zone_reserve(ctx, "ring", 100, 64, 0, &z2), 1);
	CHECK(z2 == z);
	CHECK_RET(iovm_zone_reserve(ctx, "ring", 100, 0, 0, &z2), 1);
	CHECK_RET(iovm_zone_reserve(ctx, "ring", z->len + 1, 4096, 0, &z2), -EEXIST);
	CHECK_RET(iovm_zone_reserve(ctx, "ring", 100, (size_t)1 << 30, 0, &z2), -EEXIST);
	/*
	 * A boundary the existing zone does not keep (a boundary smaller than
	 * the size is a bad argument, -EINVAL whether or not the zone exists).
	 */
	CHECK_RET(iovm_zone_reserve(ctx, "ring", 8192, 0, IOVM_DMA_BOUNDARY(13), &z2),
		  ((uintptr_t)z->va >> 13) != (((uintptr_t)z->va + 8191) >> 13) ? -EEXIST : 1);
	/* A page size it is not on. */
	uint32_t other = z->page_size == 4096 ? IOVM_DMA_PAGE_2M : IOVM_DMA_PAGE_4K;
	int r = iovm_zone_reserve(ctx, "ring", 100, 0, other, &z2);
	EXPECT_MSG(r == -EEXIST || r == -EOPNOTSUPP,
		   "zone on %llu-byte pages found again for a request of %s pages: %d",
		   (unsigned long long)z->page_size, other == IOVM_DMA_PAGE_4K ? "4K only" : "2M only", r);
	CHECK(all_bytes(z->va, 10000, 0x77));
	CHECK_RET(iovm_zone_free(ctx, z), 0);
}

TEST(zone_is_zeroed_at_creation_over_dirty_memory)
{
	for (int round = 0; round < 8; round++) {
		size_t sz = (size_t)4096 << round;
		uint8_t *d = iovm_dma_alloc(ctx, sz * 4, 0, 0);
		const struct iovm_zone *z;

		CHECK(d != NULL);
		memset(d, 0xff, sz * 4);
		CHECK_OK(iovm_dma_free(ctx, d));
		CHECK_RET(iovm_zone_reserve(ctx, "dirty", sz, 0, 0, &z), 0);
		EXPECT_MSG(all_bytes(z->va, z->len, 0), "zone of %zu: byte %zu not zero", sz,
			   first_not(z->va, z->len, 0));
		memset(z->va, 0xee, z->len);
		CHECK_RET(iovm_zone_free(ctx, z), 0);
	}
}

TEST(zone_boundary_and_page_flags_hold_in_va_and_pa)
{
	for (unsigned shift = 12; shift <= 21; shift++) {
		char name[16];
		const struct iovm_zone *z;
		size_t size = (size_t)1 << shift;

		snprintf(name, sizeof(name), "b%u", shift);
		CHECK_RET(iovm_zone_reserve(ctx, name, size, 0, IOVM_DMA_BOUNDARY(shift), &z), 0);
		check_zone_memory(z);
		EXPECT_EQ((uintptr_t)z->va >> shift, ((uintptr_t)z->va + size - 1) >> shift);
		EXPECT_EQ(z->pa.addr >> shift, (z->pa.addr + size - 1) >> shift);
		EXPECT_EQ(z->flags, IOVM_DMA_BOUNDARY(shift));
		CHECK_RET(iovm_zone_free(ctx, z), 0);
	}
	const struct iovm_zone *z;
	CHECK_RET(iovm_zone_reserve(ctx, "4k", 3u << 20, 0, IOVM_DMA_PAGE_4K, &z), 0);
	check_zone_memory(z);
	EXPECT_EQ(z->page_size, 4096);
	CHECK_RET(iovm_zone_free(ctx, z), 0);
}

TEST(zone_free_refuses_stale_and_forged_zones)
{
	const struct iovm_zone *z, *z2;
	struct iovm_zone forged;

	CHECK_RET(iovm_zone_reserve(ctx, "victim", 4096, 0, 0, &z), 0);
	memset(z->va, 0x31, 4096);
	forged = *z;
	CHECK_RET(iovm_zone_free(ctx, &forged), -EINVAL);
	CHECK_RET(iovm_zone_free(ctx, NULL), -EINVAL);
	CHECK_RET(iovm_zone_free(NULL, z), -EINVAL);
	/* The real one survived the forged free. */
	CHECK_RET(iovm_zone_lookup(ctx, "victim", &z2), 0);
	CHECK(z2 == z);
	CHECK(all_bytes(z->va, 4096, 0x31));
	/* A zone of another context. */
	struct iovm_ctx *other = attack_open(NULL);
	CHECK_RET(iovm_zone_free(other, z), -EINVAL);
	CHECK_RET(iovm_zone_lookup(other, "victim", &z2), -ENOENT);
	iovm_close(other);
	CHECK_RET(iovm_zone_lookup(ctx, "victim", &z2), 0);
	CHECK_RET(iovm_zone_free(ctx, z), 0);
	CHECK_RET(iovm_zone_free(ctx, z), -EINVAL);
	CHECK_RET(iovm_zone_lookup(ctx, "victim", &z2), -ENOENT);
}

static int count_zones(void *arg, const struct iovm_zone *z)
{
	(void)z;
	(*(int *)arg)++;
	return 0;
}

static int stop_at_second(void *arg, const struct iovm_zone *z)
{
	(void)z;
	return ++(*(int *)arg) == 2 ? 42 : 0;
}

TEST(zone_walk_stops_at_first_nonzero_and_counts)
{
	const struct iovm_zone *z[5];
	int n = 0;
	struct iovm_mem_stats st;

	for (int i = 0; i < 5; i++) {
		char name[16];
		snprintf(name, sizeof(name), "w%d", i);
		CHECK_RET(iovm_zone_reserve(ctx, name, 100, 0, 0, &z[i]), 0);
	}
	CHECK_OK(iovm_zone_walk(ctx, count_zones, &n));
	CHECK_EQ(n, 5);
	CHECK_OK(iovm_mem_stats(ctx, &st));
	EXPECT_EQ(st.nr_zones, 5);
	n = 0;
	CHECK_RET(iovm_zone_walk(ctx, stop_at_second, &n), 42);
	CHECK_EQ(n, 2);
	CHECK_RET(iovm_zone_walk(ctx, NULL, NULL), -EINVAL);
	CHECK_RET(iovm_zone_walk(NULL, count_zones, &n), -EINVAL);
	for (int i = 0; i < 5; i++)
		CHECK_RET(iovm_zone_free(ctx, z[i]), 0);
	n = 0;
	CHECK_OK(iovm_zone_walk(ctx, count_zones, &n));
	CHECK_EQ(n, 0);
}

/* Many threads reserving the same name: one creates, every other finds it. */
#define THREADS 8
static _Atomic int created, found, bad;
static const struct iovm_zone *seen[THREADS];
static pthread_barrier_t barrier;

static void *reserve_same(void *arg)
{
	int id = (int)(uintptr_t)arg;
	const struct iovm_zone *z;
	int r;

	pthread_barrier_wait(&barrier);
	r = iovm_zone_reserve(ctx, "shared", 65536, 4096, 0, &z);
	if (r == 0)
		atomic_fetch_add(&created, 1);
	else if (r == 1)
		atomic_fetch_add(&found, 1);
	else
		atomic_fetch_add(&bad, 1);
	seen[id] = r >= 0 ? z : NULL;
	return NULL;
}

TEST(zone_reserve_of_one_name_on_many_threads_creates_one)
{
	for (int round = 0; round < 50; round++) {
		pthread_t t[THREADS];
		const struct iovm_zone *z;

		atomic_store(&created, 0);
		atomic_store(&found, 0);
		atomic_store(&bad, 0);
		pthread_barrier_init(&barrier, NULL, THREADS);
		for (int i = 0; i < THREADS; i++)
			CHECK(pthread_create(&t[i], NULL, reserve_same, (void *)(uintptr_t)i) == 0);
		for (int i = 0; i < THREADS; i++)
			pthread_join(t[i], NULL);
		pthread_barrier_destroy(&barrier);
		CHECK_EQ(atomic_load(&bad), 0);
		CHECK_EQ(atomic_load(&created), 1);
		CHECK_EQ(atomic_load(&found), THREADS - 1);
		for (int i = 1; i < THREADS; i++)
			CHECK(seen[i] == seen[0]);
		CHECK_RET(iovm_zone_lookup(ctx, "shared", &z), 0);
		CHECK(z == seen[0]);
		CHECK_RET(iovm_zone_free(ctx, z), 0);
	}
}

/* Threads reserving, finding and freeing zones of their own names, and shared ones. */
static void *zone_churn(void *arg)
{
	int id = (int)(uintptr_t)arg;
	uint64_t seed = 1000 + id;
	const struct iovm_zone *mine[8] = { 0 };

	for (int it = 0; it < 3000; it++) {
		int k = test_rand(&seed) % 8;
		char name[24];
		const struct iovm_zone *z;

		snprintf(name, sizeof(name), "t%d.%d", id, k);
		switch (test_rand(&seed) % 4) {
		case 0:
		case 1:
			if (mine[k]) {
				CHECK_EQ(iovm_zone_reserve(ctx, name, mine[k]->len, 0, 0, &z), 1);
				CHECK(z == mine[k]);
				CHECK(all_bytes(z->va, z->len, (uint8_t)(id * 8 + k)));
			} else {
				size_t sz = 1 + test_rand(&seed) % 70000;
				CHECK_EQ(iovm_zone_reserve(ctx, name, sz, 0, 0, &z), 0);
				CHECK(all_bytes(z->va, sz, 0));
				memset(z->va, id * 8 + k, z->len);
				mine[k] = z;
			}
			break;
		case 2:
			if (mine[k]) {
				CHECK_EQ(iovm_zone_lookup(ctx, name, &z), 0);
				CHECK(z == mine[k]);
				CHECK_EQ(iovm_zone_free(ctx, z), 0);
				mine[k] = NULL;
			} else {
				CHECK_EQ(iovm_zone_lookup(ctx, name, &z), -ENOENT);
			}
			break;
		case 3:
			snprintf(name, sizeof(name), "common%d", k);
			CHECK(iovm_zone_reserve(ctx, name, 4096, 0, 0, &z) >= 0);
			CHECK(strcmp(z->name, name) == 0);
			break;
		}
	}
	for (int k = 0; k < 8; k++)
		if (mine[k]) {
			CHECK(all_bytes(mine[k]->va, mine[k]->len, (uint8_t)(id * 8 + k)));
			CHECK_EQ(iovm_zone_free(ctx, mine[k]), 0);
		}
	return NULL;
}

TEST(zone_reserve_lookup_free_race_on_many_threads)
{
	pthread_t t[THREADS];

	for (int i = 0; i < THREADS; i++)
		CHECK(pthread_create(&t[i], NULL, zone_churn, (void *)(uintptr_t)i) == 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	for (int k = 0; k < 8; k++) {
		char name[24];
		const struct iovm_zone *z;
		snprintf(name, sizeof(name), "common%d", k);
		if (iovm_zone_lookup(ctx, name, &z) == 0)
			CHECK_RET(iovm_zone_free(ctx, z), 0);
	}
	int n = 0;
	CHECK_OK(iovm_zone_walk(ctx, count_zones, &n));
	CHECK_EQ(n, 0);
}

int main(void)
{
	test_init();
	ctx = attack_open(NULL);
	RUN(zone_reserve_refuses_bad_arguments_whether_or_not_it_exists);
	RUN(zone_reserve_is_idempotent_and_eexist_when_unsatisfied);
	RUN(zone_is_zeroed_at_creation_over_dirty_memory);
	RUN(zone_boundary_and_page_flags_hold_in_va_and_pa);
	RUN(zone_free_refuses_stale_and_forged_zones);
	RUN(zone_walk_stops_at_first_nonzero_and_counts);
	RUN(zone_reserve_of_one_name_on_many_threads_creates_one);
	RUN(zone_reserve_lookup_free_race_on_many_threads);
	iovm_close(ctx);
	return attack_status();
}
