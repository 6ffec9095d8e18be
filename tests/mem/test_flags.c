/* SPDX-License-Identifier: MIT */
/*
 * test_flags.c - every combination of mem.h's allocation flags, through
 * every call that takes them (iovm_dma_alloc, _zalloc, _realloc,
 * iovm_zone_reserve), against what the header promises: each
 * IOVM_DMA_PAGE_* says "only", so two of them conflict (EINVAL); unknown
 * bits are refused; a page size the kernel lacks is EOPNOTSUPP; what is
 * accepted is placed as asked (page size, contiguity, zeroes).
 */
#include "mem_util.h"

#define PAGE_FLAGS (IOVM_DMA_PAGE_4K | IOVM_DMA_PAGE_2M | IOVM_DMA_PAGE_1G)
#define DEFINED (IOVM_DMA_ZERO | IOVM_DMA_CONTIG | PAGE_FLAGS | IOVM_DMA_KEEP)
/* With the boundary (bits 8-15) and node (bits 16-23) fields. */
#define KNOWN (DEFINED | 0x00ffff00u)

enum call { CALL_ALLOC, CALL_ZALLOC, CALL_REALLOC, CALL_ZONE, NR_CALLS };
static const char *const call_name[] = { "alloc", "zalloc", "realloc", "zone_reserve" };

/* The page size the single page flag of @flags names (0 for none). */
static uint64_t page_of(uint32_t flags)
{
	switch (flags & PAGE_FLAGS) {
	case IOVM_DMA_PAGE_4K:
		return SZ_4K;
	case IOVM_DMA_PAGE_2M:
		return SZ_2M;
	case IOVM_DMA_PAGE_1G:
		return SZ_1G;
	default:
		return 0;
	}
}

/* -errno, or 0 and the memory in *@p (a zone's in *@z). */
static int call(struct iovm_ctx *ctx, enum call c, size_t size, uint32_t flags, void **p,
		const struct iovm_zone **z)
{
	void *old;
	int ret;

	errno = 0;
	*p = NULL;
	switch (c) {
	case CALL_ALLOC:
		*p = iovm_dma_alloc(ctx, size, 0, flags);
		break;
	case CALL_ZALLOC:
		*p = iovm_dma_zalloc(ctx, size, 0, flags);
		break;
	case CALL_REALLOC:
		old = iovm_dma_alloc(ctx, 64, 0, 0);
		CHECK(old != NULL);
		memset(old, 0x77, 64);
		*p = iovm_dma_realloc(ctx, old, size, 0, flags);
		if (!*p) {
			/* Untouched on failure. */
			CHECK_EQ(((uint8_t *)old)[63], 0x77);
			ret = errno;
			CHECK_OK(iovm_dma_free(ctx, old));
			errno = ret;
		} else {
			CHECK_EQ(((uint8_t *)*p)[0], 0x77);
			CHECK_EQ(((uint8_t *)*p)[63], 0x77);
		}
		break;
	case CALL_ZONE:
	default:
		ret = iovm_zone_reserve(ctx, "flags", size, 0, flags, z);
		if (ret < 0)
			return ret;
		CHECK_EQ(ret, 0);
		*p = (*z)->va;
		return 0;
	}
	if (!*p) {
		CHECK_MSG(errno != 0, "%s returned NULL with errno 0", call_name[c]);
		return -errno;
	}
	return 0;
}

static void release(struct iovm_ctx *ctx, enum call c, void *p, const struct iovm_zone *z)
{
	if (c == CALL_ZONE)
		CHECK_OK(iovm_zone_free(ctx, z));
	else
		CHECK_OK(iovm_dma_free(ctx, p));
}

/* One call with one set of flags, checked against the header. */
static void try_flags(struct iovm_ctx *ctx, enum call c, size_t size, uint32_t flags)
{
	unsigned pages = (unsigned)__builtin_popcount(flags & PAGE_FLAGS);
	const struct iovm_zone *z = NULL;
	uint64_t want_page = page_of(flags);
	void *p;
	int ret = call(ctx, c, size, flags, &p, &z);

	if (flags & ~KNOWN || pages > 1) {
		if (!ret)
			release(ctx, c, p, z);
		CHECK_MSG(ret == -EINVAL, "%s(%zu, flags %#x): %d, not -EINVAL (conflicting or unknown flags)",
			  call_name[c], size, flags, ret);
		return;
	}
	if (want_page > SZ_4K && !os_hugepage_supported(want_page)) {
		CHECK_MSG(ret == -EOPNOTSUPP, "%s(%zu, flags %#x): %d, not -EOPNOTSUPP (no such page size)",
			  call_name[c], size, flags, ret);
		return;
	}
	/* Hugepages may be taken by others: "only" means no fallback, so ENOMEM. */
	if (ret == -ENOMEM && want_page > SZ_4K)
		return;
	CHECK_MSG(ret == 0, "%s(%zu, flags %#x): %s", call_name[c], size, flags, strerror(-ret));

	struct iovm_dma_xlate x;

	CHECK_OK(iovm_dma_xlate(ctx, p, &x));
	if (want_page)
		CHECK_EQ(x.page_size, want_page);
	if ((flags & IOVM_DMA_CONTIG) || c == CALL_ZONE)
		CHECK_MSG(x.contig >= size, "%s(%zu, flags %#x): contiguous over %zu bytes only", call_name[c],
			  size, flags, x.contig);
	if ((flags & IOVM_DMA_ZERO) || c == CALL_ZALLOC || c == CALL_ZONE) {
		/* The realloc'ed block keeps its 64 bytes; what it grew by is zero. */
		size_t from = c == CALL_REALLOC ? 64 : 0;

		for (size_t i = from; i < size; i++)
			if (((uint8_t *)p)[i]) {
				CHECK_MSG(0, "%s(%zu, flags %#x): byte %zu is not zero", call_name[c], size, flags,
					  i);
				break;
			}
	}
	memset(p, 0x5a, size);
	release(ctx, c, p, z);
}

TEST(every_combination_of_the_defined_flags)
{
	struct iovm_ctx *ctx = open_ctx("host_pa=off,mem_limit=1G,page_size=4K");
	static const size_t sizes[] = { 100, 5000, 3 << 20 };

	for (unsigned c = 0; c < NR_CALLS; c++)
		for (size_t s = 0; s < ARRAY_SIZE(sizes); s++)
			for (uint32_t flags = 0; flags <= DEFINED; flags++) {
				if (flags & ~DEFINED)
					continue;
				/* 1 GiB pages: a 1 GiB page per call is too much to ask of a shared machine. */
				if ((flags & IOVM_DMA_PAGE_1G) && __builtin_popcount(flags & PAGE_FLAGS) == 1 &&
				    os_hugepage_supported(SZ_1G))
					continue;
				try_flags(ctx, (enum call)c, sizes[s], flags);
				/* With a boundary and a node: the fields next to the bits change nothing of the above. */
				if (sizes[s] <= 5000)
					try_flags(ctx, (enum call)c, sizes[s], flags | IOVM_DMA_BOUNDARY(13) |
									       IOVM_DMA_NODE(0));
			}
	iovm_close(ctx);
}

TEST(unknown_bits_are_refused)
{
	struct iovm_ctx *ctx = open_ctx("host_pa=off,mem_limit=1G,page_size=4K");

	/* Bits 5-7 and 24-31 mean nothing; 8-15 are the boundary, 16-23 the node. */
	for (unsigned bit = 0; bit < 32; bit++) {
		uint32_t flags = UINT32_C(1) << bit;

		if (bit < 5 || (bit >= 8 && bit < 24))
			continue;
		for (unsigned c = 0; c < NR_CALLS; c++)
			try_flags(ctx, (enum call)c, 100, flags);
	}
	iovm_close(ctx);
}

/* The zone's own rule: ZERO and CONTIG are what a zone always is; the rest as for the heap. */
TEST(zone_with_conflicting_pages_is_refused_even_when_it_exists)
{
	struct iovm_ctx *ctx = open_ctx("host_pa=off,mem_limit=1G,page_size=4K");
	const struct iovm_zone *z, *again;

	CHECK_EQ(iovm_zone_reserve(ctx, "ring", 4096, 0, IOVM_DMA_PAGE_4K, &z), 0);
	CHECK_EQ(iovm_zone_reserve(ctx, "ring", 4096, 0, IOVM_DMA_PAGE_4K | IOVM_DMA_PAGE_2M, &again), -EINVAL);
	CHECK_EQ(iovm_zone_reserve(ctx, "ring", 4096, 0, IOVM_DMA_PAGE_4K, &again), 1);
	CHECK(again == z);
	CHECK_OK(iovm_zone_free(ctx, z));
	iovm_close(ctx);
}

int main(void)
{
	test_init();
	RUN(every_combination_of_the_defined_flags);
	RUN(unknown_bits_are_refused);
	RUN(zone_with_conflicting_pages_is_refused_even_when_it_exists);
	return 0;
}
