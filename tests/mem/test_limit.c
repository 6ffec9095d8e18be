/* SPDX-License-Identifier: MIT */
/*
 * test_limit.c - mem_limit against memory the heap still holds: an
 * allocation that does not fit fails with ENOMEM, never hands out memory
 * whose pages are not all backed, and the heap stays usable afterwards.
 *
 * The heap keeps freed commits mapped ("idle") for release_delay_ms, and
 * gives them back early when the limit stands in the way of a new commit.
 * An allocation that lands on an idle commit and needs more besides must
 * not take that commit away from under itself.
 */
#include <sys/mman.h>

#include "mem/mem_util.h"

#define MiB (UINT64_C(1) << 20)
#define LIMIT (200 * MiB)
#define PG 4096

/* How the allocation over the idle commit is made. */
enum way { BY_ALLOC, BY_ZALLOC, BY_CONTIG, BY_REALLOC_SMALL, BY_REALLOC_IN_PLACE, NR_WAYS };

static const char *const way_name[] = { "alloc", "zalloc", "contig alloc", "realloc of a small block",
					"realloc growing in place" };

static struct iovm_ctx *open_limited(unsigned delay_ms)
{
	char opts[128];

	snprintf(opts, sizeof(opts), "page_size=4K,host_pa=off,mem_limit=200M,release_delay_ms=%u", delay_ms);
	return open_ctx(opts);
}

/* Every page of [p, p+len) is backed: it translates, and the bus reaches what the CPU wrote. */
static void check_backed(struct iovm_ctx *ctx, uint8_t *p, uint64_t len)
{
	for (uint64_t off = 0; off < len; off += PG) {
		struct iovm_dma_xlate x;

		CHECK_MSG(iovm_dma_xlate(ctx, p + off, &x) == 0, "page at +%#" PRIx64 " of %" PRIu64
			  " MiB is not backed", off, len / MiB);
	}
	check_translation(ctx, p);
	check_translation(ctx, p + len - 1);
}

/* A block the allocation may take: every page written, so that a missing one shows. */
static uint8_t *alloc_touched(struct iovm_ctx *ctx, uint64_t len, uint32_t flags)
{
	uint8_t *p = iovm_dma_alloc(ctx, len, PG, flags);

	CHECK_MSG(p != NULL, "%" PRIu64 " MiB under a limit of 200 MiB: %s", len / MiB, strerror(errno));
	for (uint64_t off = 0; off < len; off += PG)
		p[off] = 0xa5;
	return p;
}

/*
 * 128 MiB allocated and freed (idle, still committed), then 210 MiB asked
 * for in one of the ways: refused with ENOMEM, whatever the release delay.
 */
static void over_limit_over_an_idle_commit(enum way way, unsigned delay_ms)
{
	struct iovm_ctx *ctx = open_limited(delay_ms);
	uint8_t *small = NULL, *live = NULL, *idle, *got;

	printf("# %s, release_delay_ms=%u\n", way_name[way], delay_ms);
	if (way == BY_REALLOC_SMALL) {
		small = iovm_dma_alloc(ctx, 1000, 0, 0);
		CHECK(small != NULL);
		memset(small, 0x3c, 1000);
	}
	if (way == BY_REALLOC_IN_PLACE) {
		/* A live block just below the idle one: growing it in place runs into the idle commit. */
		live = alloc_touched(ctx, 64 * MiB, 0);
	}
	idle = alloc_touched(ctx, 128 * MiB, 0);
	if (live)
		CHECK(idle == live + 64 * MiB);
	CHECK_OK(iovm_dma_free(ctx, idle));

	errno = 0;
	switch (way) {
	case BY_ALLOC:
		got = iovm_dma_alloc(ctx, 210 * MiB, 0, 0);
		break;
	case BY_ZALLOC:
		got = iovm_dma_zalloc(ctx, 210 * MiB, 0, 0);
		break;
	case BY_CONTIG:
		got = iovm_dma_alloc(ctx, 210 * MiB, 0, IOVM_DMA_CONTIG);
		break;
	case BY_REALLOC_SMALL:
		got = iovm_dma_realloc(ctx, small, 210 * MiB, 0, 0);
		break;
	case BY_REALLOC_IN_PLACE:
	default:
		got = iovm_dma_realloc(ctx, live, 210 * MiB, 0, 0);
		break;
	}
	if (got) {
		/* Say what went wrong before failing: which pages were handed out unbacked. */
		check_backed(ctx, got, 210 * MiB);
		CHECK_MSG(got == NULL, "210 MiB handed out under a limit of 200 MiB");
	}
	CHECK_EQ(errno, ENOMEM);
	/* What was live is untouched. */
	if (small) {
		for (unsigned i = 0; i < 1000; i++)
			CHECK_EQ(small[i], 0x3c);
		CHECK_OK(iovm_dma_free(ctx, small));
	}
	if (live) {
		CHECK_EQ(iovm_dma_size(ctx, live), 64 * MiB);
		check_backed(ctx, live, 64 * MiB);
		for (uint64_t off = 0; off < 64 * MiB; off += PG)
			CHECK(live[off] == 0xa5);
		CHECK_OK(iovm_dma_free(ctx, live));
	}
	/* The heap is still usable, up to the limit: 128 MiB, backed, zeroed when asked. */
	got = iovm_dma_zalloc(ctx, 128 * MiB, 0, 0);
	CHECK(got != NULL);
	check_backed(ctx, got, 128 * MiB);
	for (uint64_t off = 0; off < 128 * MiB; off += PG)
		CHECK(got[off] == 0 && got[off + PG - 1] == 0);
	CHECK_OK(iovm_dma_free(ctx, got));
	iovm_close(ctx);
}

TEST(over_the_limit_while_an_idle_commit_is_held)
{
	static const unsigned delays[] = { 0, 600000 };

	for (unsigned d = 0; d < ARRAY_SIZE(delays); d++)
		for (unsigned w = 0; w < NR_WAYS; w++)
			over_limit_over_an_idle_commit((enum way)w, delays[d]);
}

/*
 * Around the limit, after an idle 128 MiB commit: exactly the limit, and
 * the limit less a page, fit (the idle commit makes room); a page more
 * does not.
 */
TEST(at_the_limit_and_around_it)
{
	static const unsigned delays[] = { 0, 600000 };
	static const int64_t delta[] = { 0, -PG, PG, -(int64_t)(2 * MiB) };

	for (unsigned d = 0; d < ARRAY_SIZE(delays); d++) {
		for (unsigned i = 0; i < ARRAY_SIZE(delta); i++) {
			for (int contig = 0; contig < 2; contig++) {
				struct iovm_ctx *ctx = open_limited(delays[d]);
				uint64_t len = (uint64_t)((int64_t)LIMIT + delta[i]);
				uint32_t flags = contig ? IOVM_DMA_CONTIG : 0;
				uint8_t *p;

				printf("# %+" PRId64 " bytes from the limit%s, release_delay_ms=%u\n", delta[i],
				       contig ? ", contiguous" : "", delays[d]);
				CHECK_OK(iovm_dma_free(ctx, alloc_touched(ctx, 128 * MiB, 0)));
				errno = 0;
				p = iovm_dma_zalloc(ctx, len, PG, flags);
				if (delta[i] > 0) {
					if (p)
						check_backed(ctx, p, len);
					CHECK(p == NULL);
					CHECK_EQ(errno, ENOMEM);
				} else {
					CHECK_MSG(p != NULL, "%" PRIu64 " bytes under a limit of %" PRIu64 ": %s", len,
						  LIMIT, strerror(errno));
					check_backed(ctx, p, len);
					CHECK(p[0] == 0 && p[len - 1] == 0);
					CHECK_OK(iovm_dma_free(ctx, p));
				}
				iovm_close(ctx);
			}
		}
	}
}

int main(void)
{
	test_init();
	RUN(over_the_limit_while_an_idle_commit_is_held);
	RUN(at_the_limit_and_around_it);
	return 0;
}
