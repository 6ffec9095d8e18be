/* SPDX-License-Identifier: MIT */
/*
 * test_hugepages.c - the heap on hugepages: 2 MiB (and 1 GiB when one is
 * free) pages used as asked, exhaustion of the pool a clean ENOMEM with the
 * heap still working afterwards, NUMA placement verified, and in host-PA
 * mode contiguous blocks that are contiguous on the machine.
 *
 * The pool is the machine's, not this test's: other processes take and
 * give back pages while it runs. Every case asks what is available at the
 * moment it needs pages (tests/hugepage_util.h), skips saying why when too
 * few are, and checks what this process holds rather than the pool's
 * counters. The cases run twice: alone, then while a second process holds
 * some pages and takes and gives back others every millisecond; they must
 * pass or skip both times. It takes every free hugepage for a while, so it
 * runs alone in the suite.
 */
#include <unistd.h>

#include "os/numa.h"
#include "os/pagemap.h"
#include "mem_util.h"
#include "hugepage_util.h"

/* Pages that come and go under a case may make it retry this often before it gives up. */
#define RETRIES 50

/*
 * How a case knows what it holds: the kernel's count of this process's
 * hugetlb memory, which others' pages do not move. At least @pages (the
 * heap maps its banks more than once: for the CPU and for the bus), and
 * none when @pages is 0.
 */
static void check_held(long long pages)
{
	long long kb = hugepages_held_kb();

	if (kb < 0)
		return; /* a kernel without HugetlbPages in /proc/self/status (before 4.4) */
	if (pages)
		CHECK_MSG(kb >= pages * 2048, "%lld KiB of hugetlb memory mapped, %lld pages expected", kb, pages);
	else
		CHECK_MSG(kb == 0, "%lld KiB of hugetlb memory still mapped", kb);
}

TEST(exhaustion_is_clean)
{
	struct iovm_ctx *ctx;
	struct iovm_phys_stats ps;
	static void *m[8192];
	unsigned n = 0, tries;

	if (hugepages_available(SZ_2M, -1) < 4)
		SKIP_CASE("fewer than 4 free 2 MiB hugepages at the moment");
	ctx = open_ctx("page_size=2M,host_pa=off,release_delay_ms=0");
	/* 2 MiB pages only: no fallback, so the pool running dry is an error. */
	while (n < 8192) {
		errno = 0;
		m[n] = iovm_dma_alloc(ctx, 2 << 20, 0, IOVM_DMA_PAGE_2M);
		if (!m[n])
			break;
		memset(m[n], (int)n, 64);
		n++;
	}
	CHECK_MSG(n < 8192, "16 GiB of hugepages and still no end: the test cannot exhaust this pool");
	CHECK_EQ(errno, ENOMEM);
	if (n == 0) {
		iovm_close(ctx);
		SKIP_CASE("the free hugepages were taken by another process before the first allocation");
	}
	/* Each allocation is one hugepage of this process; the pool ran dry, not anything else. */
	check_held(n);
	CHECK_OK(iovm_phys_stats(ctx, &ps));
	CHECK(ps.grow_failures >= 1);
	CHECK_EQ(ps.total, (uint64_t)n << 21);
	/* The heap still works, and holds what it held. */
	for (unsigned i = 0; i < n; i++) {
		CHECK_EQ(((uint8_t *)m[i])[63], (uint8_t)i);
		CHECK_OK(iovm_dma_free(ctx, m[i]));
	}
	CHECK(iovm_dma_trim(ctx, IOVM_TRIM_ALL) >= 0);
	CHECK_OK(iovm_phys_stats(ctx, &ps));
	CHECK_EQ(ps.total, 0);
	/* Given back: this process holds no hugepage any more. */
	check_held(0);
	/*
	 * And the heap takes pages again once there are some: an exhaustion
	 * does not stick. Another process may take each page first.
	 */
	for (tries = 0; tries < RETRIES; tries++) {
		if (hugepages_available(SZ_2M, -1) >= 1) {
			m[0] = iovm_dma_alloc(ctx, 2 << 20, 0, IOVM_DMA_PAGE_2M);
			if (m[0])
				break;
			CHECK_EQ(errno, ENOMEM);
		}
		hp_nap_us(2000);
	}
	if (tries == RETRIES) {
		iovm_close(ctx);
		SKIP_CASE("no 2 MiB hugepage stayed free long enough to be taken again");
	}
	check_held(1);
	CHECK_OK(iovm_dma_free(ctx, m[0]));
	iovm_close(ctx);
	check_held(0);
}

TEST(auto_falls_back_to_4k)
{
	struct iovm_ctx *hog = open_ctx("page_size=2M,host_pa=off");
	struct iovm_ctx *ctx = open_ctx("host_pa=off");
	static void *h[8192];
	struct iovm_dma_xlate x;
	unsigned n = 0, tries;
	void *m = NULL;

	/*
	 * Another user takes every hugepage, and page_size=auto then gives
	 * 4 KiB pages rather than failing. Pages that others give back in
	 * the meantime go to the hog, and the allocation is asked again.
	 */
	for (tries = 0; tries < RETRIES; tries++) {
		while (n < 8192 && (h[n] = iovm_dma_alloc(hog, 2 << 20, 0, 0)))
			n++;
		m = iovm_dma_alloc(ctx, 3 << 20, 0, 0);
		CHECK(m != NULL);
		CHECK_OK(iovm_dma_xlate(ctx, m, &x));
		if (x.page_size == 4096)
			break;
		/* A hugepage was given back between the hog's last try and ours. */
		CHECK_EQ(x.page_size, SZ_2M);
		CHECK_OK(iovm_dma_free(ctx, m));
		CHECK(iovm_dma_trim(ctx, IOVM_TRIM_ALL) >= 0);
		m = NULL;
	}
	for (unsigned i = 0; i < n; i++)
		CHECK_OK(iovm_dma_free(hog, h[i]));
	iovm_close(hog);
	if (!m) {
		iovm_close(ctx);
		SKIP_CASE("hugepages kept being given back faster than a second context could take them");
	}
	CHECK_EQ(x.page_size, 4096);
	CHECK_OK(iovm_dma_free(ctx, m));
	iovm_close(ctx);
}

TEST(numa_placement)
{
	int nodes[8], nn = os_numa_nodes(nodes, 8), node;
	char opts[64];
	struct iovm_ctx *ctx;
	uint8_t *m;

	CHECK(nn >= 1);
	/* On hugepages when the node has some free, on 4 KiB pages otherwise: the node holds either way. */
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
	struct iovm_ctx *ctx;
	struct iovm_dma_xlate x;
	uint8_t *m;

	if (!os_hugepage_supported(SZ_1G))
		SKIP_CASE("no 1 GiB hugepages in this kernel");
	if (hugepages_available(SZ_1G, -1) < 1)
		SKIP_CASE("no free 1 GiB hugepage at the moment");
	ctx = open_ctx("host_pa=off");
	m = iovm_dma_alloc(ctx, 256 << 20, 0, IOVM_DMA_PAGE_1G | IOVM_DMA_CONTIG);
	if (!m) {
		/* Only another process taking the page first excuses a failure. */
		CHECK_EQ(errno, ENOMEM);
		CHECK_MSG(hugepages_available(SZ_1G, -1) == 0,
			  "a 1 GiB page is free, yet the heap could not have it");
		iovm_close(ctx);
		SKIP_CASE("the free 1 GiB page was taken by another process first");
	}
	CHECK_OK(iovm_dma_xlate(ctx, m, &x));
	CHECK_EQ(x.page_size, SZ_1G);
	CHECK(x.contig >= (256 << 20));
	check_translation(ctx, m + (200 << 20));
	check_held(512);
	CHECK_OK(iovm_dma_free(ctx, m));
	iovm_close(ctx);
	check_held(0);
}

TEST(host_pa_contiguity_is_real)
{
	struct iovm_dma_xlate x;
	struct iovm_ctx *ctx;
	hpa_t h[4];
	uint8_t *m;

	if (geteuid() != 0)
		SKIP_CASE("host-PA mode needs root");
	if (hugepages_available(SZ_2M, -1) < 4)
		SKIP_CASE("fewer than 4 free 2 MiB hugepages at the moment");
	ctx = open_ctx("page_size=2M,host_pa=on");
	m = iovm_dma_alloc(ctx, 8 << 20, 0, IOVM_DMA_CONTIG);
	if (!m) {
		/* Possible: the machine may have no 4 adjacent free hugepages. Then say so. */
		CHECK_EQ(errno, ENOMEM);
		iovm_close(ctx);
		SKIP_CASE("no 4 physically adjacent free hugepages to be had here");
	}
	CHECK_OK(iovm_dma_xlate(ctx, m, &x));
	CHECK_EQ(x.pa.addr, x.hpa.addr);
	CHECK(x.hpa_contig >= (8 << 20));
	/* The machine agrees: four hugepages, adjacent in physical memory. */
	CHECK_OK(os_pagemap_read(m, 4, 2 << 20, h));
	for (int i = 0; i < 4; i++)
		CHECK_EQ(hpa_val(h[i]), x.pa.addr + ((uint64_t)i << 21));
	CHECK_OK(iovm_dma_free(ctx, m));
	iovm_close(ctx);
}

static void run_cases(void)
{
	RUN(exhaustion_is_clean);
	RUN(auto_falls_back_to_4k);
	RUN(numa_placement);
	RUN(gigabyte_page);
	RUN(host_pa_contiguity_is_real);
}

int main(void)
{
	struct hp_contender c;
	int ret;

	test_init();
	if (!os_hugepage_supported(SZ_2M))
		SKIP("no 2 MiB hugepages in this kernel");
	printf("# alone\n");
	run_cases();
	/*
	 * Again while another process holds 3 pages and takes 2 more and
	 * gives them back every millisecond: the pool moves under every case.
	 */
	ret = hp_contender_start(&c, 3, 2);
	CHECK(ret == 0 || ret == -EAGAIN);
	printf("# while another process holds %u hugepages and takes 2 more, on and off\n", c.held);
	run_cases();
	/* It lived through it all, so the pages it held stayed held. */
	CHECK_MSG(hp_contender_stop(&c), "the contending process died");
	return 0;
}
