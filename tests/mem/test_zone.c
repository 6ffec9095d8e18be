/* SPDX-License-Identifier: MIT */
/*
 * test_zone.c - named zones: created zeroed and contiguous, found again by
 * name with their contents (a restarted queue's ring), refused when they
 * cannot satisfy a request, freed once.
 */
#include "mem_util.h"

static int count_zone(void *arg, const struct iovm_zone *z)
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

TEST(reserve_lookup_free)
{
	struct iovm_ctx *ctx = open_ctx("page_size=4K,host_pa=off");
	const struct iovm_zone *z, *again, *other;
	struct iovm_dma_xlate x;
	int n = 0;

	CHECK_EQ(iovm_zone_reserve(ctx, "rx-ring-0", 256 << 10, 4096, 0, &z), 0);
	CHECK_EQ(strcmp(z->name, "rx-ring-0"), 0);
	CHECK_EQ(z->len, 256 << 10);
	CHECK(is_aligned((uintptr_t)z->va, 4096));
	for (size_t i = 0; i < z->len; i++)
		CHECK(((uint8_t *)z->va)[i] == 0);
	CHECK_OK(iovm_dma_xlate(ctx, z->va, &x));
	CHECK_EQ(x.pa.addr, z->pa.addr);
	CHECK(x.contig >= z->len);
	memset(z->va, 0x77, z->len);

	/* The queue restarts: same name, same memory, contents intact. */
	CHECK_EQ(iovm_zone_reserve(ctx, "rx-ring-0", 128 << 10, 64, 0, &again), 1);
	CHECK(again == z);
	CHECK_EQ(((uint8_t *)again->va)[1000], 0x77);
	CHECK_OK(iovm_zone_lookup(ctx, "rx-ring-0", &other));
	CHECK(other == z);

	/* Too large, or more aligned, or elsewhere: refused, not resized. */
	CHECK_EQ(iovm_zone_reserve(ctx, "rx-ring-0", 512 << 10, 0, 0, &other), -EEXIST);
	CHECK_EQ(iovm_zone_reserve(ctx, "rx-ring-0", 4096, lowbit((uintptr_t)z->va) * 2, 0, &other),
		 -EEXIST);
	CHECK_EQ(iovm_zone_reserve(ctx, "rx-ring-0", 4096, 0, IOVM_DMA_NODE(0), &other), -EEXIST);

	CHECK_EQ(iovm_zone_reserve(ctx, "tx-ring-0", 4096, 0, IOVM_DMA_BOUNDARY(12), &other), 0);
	CHECK_EQ(other->pa.addr >> 12, (other->pa.addr + 4095) >> 12);
	CHECK_OK(iovm_zone_walk(ctx, count_zone, &n));
	CHECK_EQ(n, 2);
	n = 0;
	CHECK_EQ(iovm_zone_walk(ctx, stop_at_second, &n), 42);

	CHECK_OK(iovm_zone_free(ctx, z));
	CHECK_EQ(iovm_zone_free(ctx, z), -EINVAL);
	CHECK_EQ(iovm_zone_lookup(ctx, "rx-ring-0", &again), -ENOENT);
	/* A new zone of the old name is a new zone, zeroed. */
	CHECK_EQ(iovm_zone_reserve(ctx, "rx-ring-0", 4096, 0, 0, &z), 0);
	CHECK(((uint8_t *)z->va)[0] == 0);
	CHECK_OK(iovm_zone_free(ctx, z));
	CHECK_OK(iovm_zone_free(ctx, other));
	iovm_close(ctx);
}

TEST(names)
{
	struct iovm_ctx *ctx = open_ctx("page_size=4K,host_pa=off");
	const struct iovm_zone *z;
	char name[IOVM_ZONE_NAMESIZE + 1];

	memset(name, 'n', sizeof(name));
	name[IOVM_ZONE_NAMESIZE] = '\0';
	CHECK_EQ(iovm_zone_reserve(ctx, name, 64, 0, 0, &z), -EINVAL);
	name[IOVM_ZONE_NAMESIZE - 1] = '\0';
	CHECK_EQ(iovm_zone_reserve(ctx, name, 64, 0, 0, &z), 0);
	CHECK_OK(iovm_zone_free(ctx, z));
	CHECK_EQ(iovm_zone_reserve(ctx, "", 64, 0, 0, &z), -EINVAL);
	CHECK_EQ(iovm_zone_reserve(ctx, NULL, 64, 0, 0, &z), -EINVAL);
	CHECK_EQ(iovm_zone_lookup(ctx, "", &z), -EINVAL);
	iovm_close(ctx);
}

TEST(closing_frees_zones)
{
	struct iovm_ctx *ctx = open_ctx("page_size=4K,host_pa=off");
	const struct iovm_zone *z;

	/* Zones left at close are freed with the context (the leak checker watches). */
	for (int i = 0; i < 10; i++) {
		char name[16];

		snprintf(name, sizeof(name), "z%d", i);
		CHECK_EQ(iovm_zone_reserve(ctx, name, 4096 << i, 0, 0, &z), 0);
	}
	iovm_close(ctx);
}

int main(void)
{
	test_init();
	RUN(reserve_lookup_free);
	RUN(names);
	RUN(closing_frees_zones);
	return 0;
}
