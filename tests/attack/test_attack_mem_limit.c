/* SPDX-License-Identifier: MIT */
/*
 * test_attack_mem_limit.c - attacks "ENOMEM when the memory is not there
 * (hugepages exhausted, mem_limit reached: never memory only partly
 * backed)" (mem.h): allocations around mem_limit, with idle memory still
 * committed, contiguous, zeroed, zones and common buffers; every success
 * must be backed on every page, and the committed bytes stay within the limit.
 */
#include "attack.h"

/* Every 4 KiB page of [p, p+n) translates, and can be written and read back. */
static int fully_backed(struct iovm_ctx *ctx, uint8_t *p, size_t n)
{
	iovm_pa_t pa;

	for (size_t off = 0; off < n; off += 4096) {
		if (iovm_dma_pa(ctx, p + off, &pa))
			return 0;
	}
	if (iovm_dma_pa(ctx, p + n - 1, &pa))
		return 0;
	memset(p, 0x5a, n);
	return p[0] == 0x5a && p[n - 1] == 0x5a;
}

static void committed_within(struct iovm_ctx *ctx, uint64_t limit)
{
	struct iovm_mem_stats st;
	struct iovm_phys_stats ps;

	CHECK_OK(iovm_mem_stats(ctx, &st));
	CHECK_OK(iovm_phys_stats(ctx, &ps));
	EXPECT_MSG(st.committed <= limit, "committed %llu > mem_limit %llu",
		   (unsigned long long)st.committed, (unsigned long long)limit);
	EXPECT_MSG(ps.total <= limit, "banks hold %llu > mem_limit %llu", (unsigned long long)ps.total,
		   (unsigned long long)limit);
}

static void around_the_limit(const char *opts, uint64_t limit, uint64_t idle)
{
	struct iovm_ctx *ctx = attack_open(opts);
	static const int64_t deltas[] = { -(int64_t)(2u << 20), -4096, -1, 0, 1, 4096, 2u << 20, 10u << 20 };
	static const uint32_t flags[] = { 0, IOVM_DMA_CONTIG, IOVM_DMA_ZERO, IOVM_DMA_ZERO | IOVM_DMA_CONTIG };

	for (unsigned f = 0; f < 4; f++)
		for (unsigned d = 0; d < sizeof(deltas) / sizeof(deltas[0]); d++) {
			size_t size = (size_t)((int64_t)limit - (int64_t)idle + deltas[d]);
			uint8_t *keep = NULL, *p;

			if (idle) {
				/* Idle memory: allocated and freed, still committed (long release delay). */
				uint8_t *t = iovm_dma_alloc(ctx, idle, 0, 0);
				CHECK_MSG(t != NULL, "%s: idle %llu: %s", opts, (unsigned long long)idle,
					  strerror(errno));
				memset(t, 1, idle);
				CHECK_OK(iovm_dma_free(ctx, t));
			}
			errno = 0;
			p = iovm_dma_alloc(ctx, size, 0, flags[f]);
			if (p) {
				EXPECT_MSG(fully_backed(ctx, p, size),
					   "%s: idle %llu, alloc %zu flags %#x: not backed on every page",
					   opts, (unsigned long long)idle, size, flags[f]);
				if (flags[f] & IOVM_DMA_ZERO)
					CHECK(1);
				committed_within(ctx, limit);
				keep = p;
			} else {
				EXPECT_MSG(errno == ENOMEM, "%s: alloc %zu flags %#x: errno %s", opts, size,
					   flags[f], strerror(errno));
			}
			/* Past the limit by any amount, with idle memory or not: ENOMEM. */
			errno = 0;
			p = iovm_dma_alloc(ctx, limit + 4096, 0, flags[f]);
			EXPECT_MSG(p == NULL && errno == ENOMEM, "%s: alloc limit+4K: %p %s", opts, p,
				   strerror(errno));
			if (p)
				iovm_dma_free(ctx, p);
			if (keep)
				CHECK_OK(iovm_dma_free(ctx, keep));
		}
	iovm_close(ctx);
}

TEST(alloc_near_mem_limit_is_backed_or_enomem_4k)
{
	around_the_limit("page_size=4K,mem_limit=64M,release_delay_ms=600000", 64u << 20, 0);
	around_the_limit("page_size=4K,mem_limit=64M,release_delay_ms=600000", 64u << 20, 40u << 20);
	around_the_limit("page_size=4K,mem_limit=64M,release_delay_ms=600000", 64u << 20, 60u << 20);
}

TEST(alloc_near_mem_limit_is_backed_or_enomem_auto)
{
	around_the_limit("mem_limit=64M,release_delay_ms=600000", 64u << 20, 0);
	around_the_limit("mem_limit=64M,release_delay_ms=600000", 64u << 20, 40u << 20);
	around_the_limit("mem_limit=66M,release_delay_ms=600000", 66u << 20, 3u << 20);
}

TEST(many_small_allocations_up_to_the_limit_are_each_backed)
{
	struct iovm_ctx *ctx = attack_open("page_size=4K,mem_limit=32M");
	enum { MAX = 8192 };
	static uint8_t *v[MAX];
	unsigned n = 0;
	uint64_t seed = 5;

	while (n < MAX) {
		size_t sz = 1 + test_rand(&seed) % 40000;
		v[n] = iovm_dma_alloc(ctx, sz, 0, test_rand(&seed) % 3 == 0 ? IOVM_DMA_ZERO : 0);
		if (!v[n]) {
			CHECK_EQ(errno, ENOMEM);
			break;
		}
		CHECK(fully_backed(ctx, v[n], sz));
		n++;
	}
	CHECK_MSG(n < MAX, "32 MiB never ran out after %u allocations", n);
	committed_within(ctx, 32u << 20);
	/* A zone and a common buffer past what is left: ENOMEM, cleanly. */
	const struct iovm_zone *z;
	struct iovm_cbuf *cb;
	CHECK_RET(iovm_zone_reserve(ctx, "big", 16u << 20, 0, 0, &z), -ENOMEM);
	CHECK_RET(iovm_cbuf_alloc(ctx, 16u << 20, 0, &cb), -ENOMEM);
	CHECK_RET(iovm_zone_lookup(ctx, "big", &z), -ENOENT);
	for (unsigned i = 0; i < n; i++)
		CHECK_OK(iovm_dma_free(ctx, v[i]));
	/* Everything free again: half the limit in one piece. */
	uint8_t *p = iovm_dma_alloc(ctx, 16u << 20, 0, 0);
	CHECK_MSG(p != NULL, "16 MiB of 32 after freeing everything: %s", strerror(errno));
	CHECK(fully_backed(ctx, p, 16u << 20));
	CHECK_OK(iovm_dma_free(ctx, p));
	iovm_close(ctx);
}

TEST(the_issue_9_reproduction_and_its_neighbours)
{
	static const char *const opts[] = {
		"page_size=4K,mem_limit=200M,release_delay_ms=600000",
		"page_size=2M,mem_limit=200M,release_delay_ms=600000",
		"mem_limit=200M,release_delay_ms=600000",
	};
	static const size_t first[] = { 128u << 20, 190u << 20, (100u << 20) + 4096 };
	static const size_t second[] = { 210u << 20, 201u << 20, (200u << 20) + 1 };

	for (unsigned o = 0; o < 3; o++)
		for (unsigned i = 0; i < 3; i++) {
			struct iovm_ctx *ctx = attack_open(opts[o]);
			uint8_t *p = iovm_dma_alloc(ctx, first[i], 0, 0);

			if (!p && errno == ENOMEM && strstr(opts[o], "2M")) {
				iovm_close(ctx);
				continue; /* hugepages short: other processes hold them */
			}
			CHECK_MSG(p != NULL, "%s: %zu: %s", opts[o], first[i], strerror(errno));
			memset(p, 3, first[i]);
			CHECK_OK(iovm_dma_free(ctx, p));
			errno = 0;
			p = iovm_dma_alloc(ctx, second[i], 0, 0);
			EXPECT_MSG(p == NULL && errno == ENOMEM, "%s: %zu after %zu: %p %s", opts[o],
				   second[i], first[i], p, strerror(errno));
			errno = 0;
			p = iovm_dma_zalloc(ctx, second[i], 0, 0);
			EXPECT_MSG(p == NULL && errno == ENOMEM, "%s: zalloc %zu after %zu: %p %s", opts[o],
				   second[i], first[i], p, strerror(errno));
			iovm_close(ctx);
		}
}

int main(void)
{
	test_init();
	RUN(alloc_near_mem_limit_is_backed_or_enomem_4k);
	RUN(alloc_near_mem_limit_is_backed_or_enomem_auto);
	RUN(many_small_allocations_up_to_the_limit_are_each_backed);
	RUN(the_issue_9_reproduction_and_its_neighbours);
	return attack_status();
}
