/* SPDX-License-Identifier: MIT */
/*
 * test_xlate.c - translation: every interior pointer of every allocation
 * translates to the PA the bus reaches the same memory at, and back; the
 * contiguous lengths are true; host PAs agree with pagemap (root); what is
 * not iovm memory, or no longer committed, does not translate.
 */
#include <unistd.h>

#include "os/pagemap.h"
#include "mem_util.h"

static void walk(struct iovm_ctx *ctx, uint8_t *m, size_t size, uint64_t *seed)
{
	for (int i = 0; i < 64; i++) {
		size_t off = test_rand(seed) % size;
		struct iovm_dma_xlate x, y;

		check_translation(ctx, m + off);
		CHECK_OK(iovm_dma_xlate(ctx, m + off, &x));
		/* The contiguous length never overstates: its last byte is where it says. */
		if (off + x.contig <= size && x.contig > 1) {
			CHECK_OK(iovm_dma_xlate(ctx, m + off + x.contig - 1, &y));
			CHECK_EQ(y.pa.addr, x.pa.addr + x.contig - 1);
		}
	}
}

/*
 * @max_contig: the largest contiguous request to make. In host-PA mode with
 * 2 MiB pages only, a block larger than a page needs hugepages the machine
 * happens to have adjacent, which it may not.
 */
static void exercise(const char *opts, size_t max_contig)
{
	struct iovm_ctx *ctx = open_ctx(opts);
	static const size_t sizes[] = { 16, 700, 4096, 12288, 100000, 3 << 20, 9 << 20 };
	uint64_t seed = 99;
	uint8_t *m[ARRAY_SIZE(sizes) * 2];

	for (size_t i = 0; i < ARRAY_SIZE(m); i++) {
		size_t size = sizes[i % ARRAY_SIZE(sizes)];

		bool contig = (i & 1) && size <= max_contig;

		m[i] = iovm_dma_alloc(ctx, size, 0, contig ? IOVM_DMA_CONTIG : 0);
		/* Hugepages only: other processes may have taken the pool's pages since the test looked. */
		if (!m[i] && errno == ENOMEM && strstr(opts, "page_size=2M")) {
			printf("# %s: the free hugepages went to other processes: not exercised\n", opts);
			while (i--)
				CHECK_OK(iovm_dma_free(ctx, m[i]));
			iovm_close(ctx);
			return;
		}
		CHECK_MSG(m[i] != NULL, "%s: %zu bytes%s: %s", opts, size, contig ? " contiguous" : "",
			  strerror(errno));
		memset(m[i], (int)i, size);
		walk(ctx, m[i], size, &seed);
	}
	for (size_t i = 0; i < ARRAY_SIZE(m); i++)
		CHECK_OK(iovm_dma_free(ctx, m[i]));
	iovm_close(ctx);
}

TEST(interior_pointers_4k)
{
	exercise("page_size=4K,host_pa=off", SIZE_MAX);
}

TEST(interior_pointers_hugepages)
{
	if (free_hugepages_2m() < 16) {
		printf("# fewer than 16 free 2 MiB hugepages: 4 KiB pages stand in\n");
		exercise("host_pa=off", SIZE_MAX);
		return;
	}
	exercise("page_size=2M,host_pa=off", SIZE_MAX);
	if (geteuid() == 0)
		exercise("page_size=2M,host_pa=on", 2 << 20);
}

TEST(not_iovm_memory)
{
	struct iovm_ctx *ctx = open_ctx("page_size=4K,host_pa=off,release_delay_ms=0");
	struct iovm_dma_xlate x;
	iovm_pa_t pa;
	int local;
	uint8_t *m;

	CHECK_EQ(iovm_dma_xlate(ctx, &local, &x), -ENOENT);
	CHECK_EQ(iovm_dma_pa(ctx, &local, &pa), -ENOENT);
	CHECK_EQ(iovm_dma_pa(ctx, NULL, &pa), -ENOENT);
	errno = 0;
	CHECK(iovm_dma_ptr(ctx, IOVM_PA(0)) == NULL);
	CHECK_EQ(errno, ENOENT);
	CHECK(iovm_dma_ptr(ctx, IOVM_PA(UINT64_MAX)) == NULL);
	/* A page given back no longer translates, either way. */
	m = iovm_dma_alloc(ctx, 1 << 20, 0, 0);
	CHECK(m != NULL);
	CHECK_OK(iovm_dma_pa(ctx, m, &pa));
	CHECK_OK(iovm_dma_free(ctx, m));
	iovm_dma_trim(ctx, IOVM_TRIM_ALL);
	CHECK_EQ(iovm_dma_pa(ctx, m, &pa), -ENOENT);
	CHECK(iovm_dma_ptr(ctx, pa) == NULL);
	iovm_close(ctx);
}

TEST(host_pa_matches_pagemap)
{
	struct iovm_ctx *ctx;
	struct iovm_ctx_info info;
	uint8_t *m;

	if (geteuid() != 0 || free_hugepages_2m() < 8) {
		printf("# needs root and free hugepages: host PAs not checked here\n");
		return;
	}
	ctx = open_ctx("page_size=2M,host_pa=off");
	CHECK_OK(iovm_ctx_info(ctx, &info));
	CHECK(info.host_pa_readable);
	m = iovm_dma_alloc(ctx, 6 << 20, 0, 0);
	if (!m && errno == ENOMEM) {
		printf("# the free hugepages went to other processes: host PAs not checked here\n");
		iovm_close(ctx);
		return;
	}
	CHECK(m != NULL);
	for (size_t off = 0; off < (6 << 20); off += (1 << 20) + 4097) {
		struct iovm_dma_xlate x;
		hpa_t h;

		CHECK_OK(iovm_dma_xlate(ctx, m + off, &x));
		/* pagemap of the heap's own mapping, read afresh. */
		CHECK_OK(os_pagemap_read(m + align_down(off, 2 << 20), 1, 2 << 20, &h));
		CHECK_EQ(x.hpa.addr, hpa_val(h) + (off & ((2 << 20) - 1)));
		CHECK(x.hpa_contig >= 1 && x.hpa_contig <= x.contig);
		if (x.hpa_contig > (2 << 20) - (off & ((2 << 20) - 1))) {
			hpa_t next;

			CHECK_OK(os_pagemap_read(m + align_down(off, 2 << 20) + (2 << 20), 1, 2 << 20, &next));
			CHECK_EQ(hpa_val(next), hpa_val(h) + (2 << 20));
		}
	}
	CHECK_OK(iovm_dma_free(ctx, m));
	iovm_close(ctx);
}

int main(void)
{
	test_init();
	RUN(interior_pointers_4k);
	RUN(interior_pointers_hugepages);
	RUN(not_iovm_memory);
	RUN(host_pa_matches_pagemap);
	return 0;
}
