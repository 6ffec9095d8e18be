/* SPDX-License-Identifier: MIT */
/*
 * test_hugepages.c - the heap on hugepages: 2 MiB (and 1 GiB when one is
 * free) pages used as asked, exhaustion of the pool a clean ENOMEM with the
 * heap still working afterwards, NUMA placement verified, and in host-PA
 * mode contiguous blocks that are contiguous on the machine. It takes every
 * free hugepage for a while, so it runs alone.
 */
#include <unistd.h>

#include "os/numa.h"
#include "os/pagemap.h"
#include "mem_util.h"

TEST(exhaustion_is_clean)
{
	struct iovm_ctx *ctx = open_ctx("page_size=2M,host_pa=off,release_delay_ms=0");
	struct iovm_phys_stats ps;
	uint64_t free_before = free_hugepages_2m();
	void *m[4096];
	unsigned n = 0;

	/* 2 MiB pages only: no fallback, so the pool running dry is an error. */
	while (n < 4096) {
		m[n] = iovm_dma_alloc(ctx, 2 << 20, 0, IOVM_DMA_PAGE_2M);
		if (!m[n])
			break;
		memset(m[n], (int)n, 64);
		n++;
	}
	CHECK_EQ(errno, ENOMEM);
	CHECK(n + 2 >= free_before); /* all that was free, give or take the others' pages */
	CHECK_OK(iovm_phys_stats(ctx, &ps));
	CHECK(ps.grow_failures >= 1);
	/* The heap still works: small memory comes from pages it holds, or fails cleanly. */
	for (unsigned i = 0; i < n; i++) {
		CHECK_EQ(((uint8_t *)m[i])[63], (uint8_t)i);
		CHECK_OK(iovm_dma_free(ctx, m[i]));
	}
	CHECK(iovm_dma_trim(ctx, IOVM_TRIM_ALL) >= 0);
	CHECK_OK(iovm_phys_stats(ctx, &ps));
	CHECK_EQ(ps.total, 0);
	/* Given back: the machine's pool is whole again, and the heap can take it again. */
	CHECK(free_hugepages_2m() + 2 >= free_before);
	m[0] = iovm_dma_alloc(ctx, 2 << 20, 0, IOVM_DMA_PAGE_2M);
	CHECK(m[0] != NULL);
	CHECK_OK(iovm_dma_free(ctx, m[0]));
	iovm_close(ctx);
}

TEST(auto_falls_back_to_4k)
{
	struct iovm_ctx *hog = open_ctx("page_size=2M,host_pa=off");
	struct iovm_ctx *ctx = open_ctx("host_pa=off");
	struct iovm_dma_xlate x;
	void *h[4096], *m;
	unsigned n = 0;

	/* Another user takes every hugepage... */
	while (n < 4096 && (h[n] = iovm_dma_alloc(hog, 2 << 20, 0, 0)))
		n++;
	/* ...and page_size=auto gives 4 KiB pages rather than failing. */
	m = iovm_dma_alloc(ctx, 3 << 20, 0, 0);
	CHECK(m != NULL);
	CHECK_OK(iovm_dma_xlate(ctx, m, &x));
	CHECK_EQ(x.page_size, 4096);
	CHECK_OK(iovm_dma_free(ctx, m));
	for (unsigned i = 0; i < n; i++)
		CHECK_OK(iovm_dma_free(hog, h[i]));
	iovm_close(hog);
	iovm_close(ctx);
}

TEST(numa_placement)
{
	int nodes[8], nn = os_numa_nodes(nodes, 8), node;
	char opts[64];
	struct iovm_ctx *ctx;
	uint8_t *m;

	snprintf(opts, sizeof(opts), "numa_node=%d,host_pa=off", nodes[nn - 1]);
	ctx = open_ctx(opts);
	m = iovm_dma_alloc(ctx, 4 << 20, 0, 0);
	CHECK(m != NULL);
	for (size_t off = 0; off < (4 << 20); off += 1 << 20) {
		struct iovm_dma_xlate x;

		CHECK_OK(iovm_dma_xlate(ctx, m + off, &x));
		CHECK_EQ(x.node, nodes[nn - 1]);
		CHECK_OK(os_numa_node_of(m + off, &node));
		CHECK_EQ(node, nodes[nn - 1]);
	}
	CHECK_OK(iovm_dma_free(ctx, m));
	iovm_close(ctx);
}

TEST(gigabyte_page)
{
	struct iovm_ctx *ctx = open_ctx("host_pa=off");
	struct iovm_dma_xlate x;
	uint64_t total = 0, free = 0;
	uint8_t *m;

	if (!os_hugepage_supported(SZ_1G) || os_hugepage_pool(SZ_1G, -1, &total, &free) || !free) {
		printf("# no free 1 GiB page: not exercised here\n");
		iovm_close(ctx);
		return;
	}
	m = iovm_dma_alloc(ctx, 256 << 20, 0, IOVM_DMA_PAGE_1G | IOVM_DMA_CONTIG);
	CHECK(m != NULL);
	CHECK_OK(iovm_dma_xlate(ctx, m, &x));
	CHECK_EQ(x.page_size, SZ_1G);
	CHECK(x.contig >= (256 << 20));
	check_translation(ctx, m + (200 << 20));
	CHECK_OK(iovm_dma_free(ctx, m));
	iovm_close(ctx);
}

TEST(host_pa_contiguity_is_real)
{
	struct iovm_ctx *ctx;
	uint8_t *m;

	if (geteuid() != 0) {
		printf("# host-PA mode needs root: not exercised here\n");
		return;
	}
	ctx = open_ctx("page_size=2M,host_pa=on");
	m = iovm_dma_alloc(ctx, 8 << 20, 0, IOVM_DMA_CONTIG);
	if (!m) {
		/* Possible: the machine may have no 4 adjacent free hugepages. Then say so. */
		CHECK_EQ(errno, ENOMEM);
		printf("# no 4 physically adjacent hugepages to be had here\n");
	} else {
		struct iovm_dma_xlate x;
		hpa_t h[4];

		CHECK_OK(iovm_dma_xlate(ctx, m, &x));
		CHECK_EQ(x.pa.addr, x.hpa.addr);
		CHECK(x.hpa_contig >= (8 << 20));
		/* The machine agrees: four hugepages, adjacent in physical memory. */
		CHECK_OK(os_pagemap_read(m, 4, 2 << 20, h));
		for (int i = 0; i < 4; i++)
			CHECK_EQ(hpa_val(h[i]), x.pa.addr + ((uint64_t)i << 21));
		CHECK_OK(iovm_dma_free(ctx, m));
	}
	iovm_close(ctx);
}

int main(void)
{
	test_init();
	if (free_hugepages_2m() < 16)
		SKIP("fewer than 16 free 2 MiB hugepages (reserved by make check as root)");
	RUN(exhaustion_is_clean);
	RUN(auto_falls_back_to_4k);
	RUN(numa_placement);
	RUN(gigabyte_page);
	RUN(host_pa_contiguity_is_real);
	return 0;
}
