/* SPDX-License-Identifier: MIT */
/*
 * cmd_demo.c - `iovm demo`: the main path of DMA memory, saying what happens
 * at each step: open, allocate and translate, a contiguous buffer, small
 * buffers from the thread cache, a descriptor ring zone found again after a
 * restart, free, give back, close.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <iovm.h>

#include "cmd.h"

static unsigned step;

static void say(const char *title)
{
	printf("\n%u. %s\n", ++step, title);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void show_addr(struct iovm_ctx *ctx, const char *what, const void *p)
{
	struct iovm_dma_xlate x;
	char a[32], b[32];
	int ret = iovm_dma_xlate(ctx, p, &x);

	if (ret) {
		printf("   %-10s %p: no translation (%s)\n", what, p, iovm_strerror(ret));
		return;
	}
	printf("   %-10s va %p -> pa %#" PRIx64, what, p, x.pa.addr);
	/* The flag, not hpa == pa, says whether a device may be given this address. */
	if (x.flags & IOVM_XLATE_PA_REAL)
		printf(" = host physical address");
	else if (x.hpa.addr != IOVM_ADDR_INVALID)
		printf(" emulated; the memory is at host pa %#" PRIx64, x.hpa.addr);
	else if (x.page_size == 4096)
		printf(" emulated (4 KiB pages have no fixed host address)");
	else
		printf(" emulated (host address hidden)");
	printf("\n   %-10s contiguous for %s from here (%s pages%s)\n", "",
	       fmt_size(x.contig, a, sizeof(a)), fmt_size(x.page_size, b, sizeof(b)),
	       x.node >= 0 ? ", on a bound node" : "");
}

static void show_stats(struct iovm_ctx *ctx)
{
	struct iovm_mem_stats st;
	struct iovm_phys_stats ps;
	char a[32], b[32], c[32], d[32];
	uint64_t largest = 0;

	iovm_mem_stats(ctx, &st);
	iovm_phys_stats(ctx, &ps);
	for (unsigned i = 0; i < ps.nr_arenas; i++)
		if (ps.arenas[i].largest_free_run > largest)
			largest = ps.arenas[i].largest_free_run;
	printf("   heap: %s committed, %s of it idle, %s in use; %" PRIu64 " commits, %" PRIu64
	       " releases\n",
	       fmt_size(st.committed, a, sizeof(a)), fmt_size(st.idle, b, sizeof(b)),
	       fmt_size(st.in_use, c, sizeof(c)), st.commits, st.decommits);
	printf("   physical: %u bank%s, %s, %s free; largest free run %s\n", ps.nr_banks,
	       ps.nr_banks == 1 ? "" : "s", fmt_size(ps.total, a, sizeof(a)),
	       fmt_size(ps.free, b, sizeof(b)),
	       fmt_size(largest, d, sizeof(d)));
}

int cmd_demo(int argc, char **argv)
{
	const char *opts = argc > 1 ? argv[1] : NULL;
	const struct iovm_zone *ring, *again;
	struct iovm_ctx_info ci;
	struct iovm_ctx *ctx;
	uint8_t *buf, *big;
	char a[32], b[32];
	uint64_t t0, t1;
	int ret, status = 0;

	/* One argument at most, the options: "key=value,...", never an option of the command. */
	if (argc > 2 || (opts && opts[0] == '-')) {
		fprintf(stderr, "iovm demo: unknown or extra argument '%s'\n", argc > 2 ? argv[2] : opts);
		cmd_usage(stderr, "demo");
		return 2;
	}
	printf("iovm demo: DMA memory for a user-space driver, step by step.\n");

	say("Open a context (iovm_open)");
	printf("   options: %s\n", opts ? opts : getenv("IOVM_OPTS") ? getenv("IOVM_OPTS") : "(defaults)");
	ret = iovm_open(opts, &ctx);
	if (ret) {
		printf("   failed\n");
		fprintf(stderr, "iovm demo: iovm_open: %s: %s\n", iovm_strerror(ret), iovm_error_detail());
		return 1;
	}
	iovm_ctx_info(ctx, &ci);
	printf("   pages of %s%s; at most %s of memory\n", fmt_size(ci.page_size, a, sizeof(a)),
	       ci.page_size_fallback ? ", 4 KiB ones when hugepages run out" : "",
	       fmt_size(ci.mem_limit, b, sizeof(b)));
	if (ci.host_pa_only)
		printf("   host-PA mode on (host_pa=on): every device address is the machine's physical\n"
		       "   address, or the allocation fails; hugepages only, 4 KiB pages have no fixed one.\n");
	else if (ci.host_pa)
		printf("   host-PA mode on for hugepages: their device addresses are the machine's physical\n"
		       "   addresses; 4 KiB pages get iovm's emulated ones (each address below says which).\n");
	else
		printf("   host-PA mode off: device addresses are iovm's emulated physical addresses.\n");
	if (!ci.host_pa_readable)
		printf("   Host physical addresses are hidden from this user (pagemap needs root):\n"
		       "   device addresses below are iovm's own, for its software platform.\n");
	{
		struct iovm_sysinfo *si;
		uint64_t free_huge = 0;

		if (!iovm_sysinfo_get(&si)) {
			for (unsigned i = 0; i < si->nr_pools; i++)
				if (si->pools[i].node < 0 && si->pools[i].page_size == ci.page_size)
					free_huge = si->pools[i].free;
			if (ci.page_size > 4096 && !free_huge)
				printf("   No free %s hugepages here: %s\n"
				       "   (as root: echo 256 > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages).\n",
				       fmt_size(ci.page_size, a, sizeof(a)),
				       ci.page_size_fallback ? "memory will be 4 KiB pages" : "allocations will fail");
			iovm_sysinfo_free(si);
		}
	}
	printf("   Only address space is reserved so far; memory is committed as it is needed.\n");

	say("Allocate a 64 KiB DMA buffer (iovm_dma_alloc) and look at its device address");
	buf = iovm_dma_alloc(ctx, 64 << 10, 4096, 0);
	if (!buf) {
		printf("   failed\n");
		fprintf(stderr, "iovm demo: iovm_dma_alloc of 64 KiB: %s%s\n", strerror(errno),
			ci.host_pa_only && errno == ENOMEM
				? " (host_pa=on: no free hugepage, and an emulated address is no answer)"
				: "");
		status = 1;
		goto close;
	}
	show_addr(ctx, "buffer", buf);
	show_addr(ctx, "buf+1000", buf + 1000);
	{
		struct iovm_dma_xlate x;

		iovm_dma_xlate(ctx, buf + 1000, &x);
		printf("   The reverse: pa %#" PRIx64 " is mapped at %p (iovm_dma_ptr).\n", x.pa.addr,
		       iovm_dma_ptr(ctx, x.pa));
	}
	printf("   Translation is two table loads: no lock, no system call.\n");

	say("Allocate 4 MiB that a device without scatter-gather can take (IOVM_DMA_CONTIG)");
	big = iovm_dma_alloc(ctx, 4 << 20, 0, IOVM_DMA_CONTIG);
	if (big) {
		show_addr(ctx, "buffer", big);
	} else {
		printf("   not available here: %s\n", strerror(errno));
	}

	say("Small buffers come from a per-thread cache");
	t0 = now_ns();
	for (int i = 0; i < 100000; i++)
		iovm_dma_free(ctx, iovm_dma_alloc(ctx, 64, 0, 0));
	t1 = now_ns();
	printf("   100000 x (alloc 64 B + free): %.1f ns per pair, no lock taken\n",
	       (double)(t1 - t0) / 100000);

	say("Reserve a descriptor ring in a named zone (iovm_zone_reserve)");
	ret = iovm_zone_reserve(ctx, "demo-rx-ring", 64 << 10, 4096, 0, &ring);
	if (ret < 0) {
		printf("   failed: %s\n", iovm_strerror(ret));
	} else {
		printf("   zone '%s': %s, zeroed, physically contiguous\n", ring->name,
		       fmt_size(ring->len, a, sizeof(a)));
		show_addr(ctx, "ring", ring->va);
		memset(ring->va, 0xd5, 128);
		printf("   The queue writes descriptors, then restarts and asks for its ring again:\n");
		ret = iovm_zone_reserve(ctx, "demo-rx-ring", 64 << 10, 4096, 0, &again);
		printf("   %s the same zone (%s), first byte still %#x\n",
		       ret == 1 ? "found" : "got", again == ring ? "same memory" : "other memory",
		       ((uint8_t *)again->va)[0]);
	}
	show_stats(ctx);

	say("Free it all; freed pages stay committed for a while, then go back");
	if (ret >= 0)
		iovm_zone_free(ctx, ring);
	iovm_dma_free(ctx, big);
	iovm_dma_free(ctx, buf);
	show_stats(ctx);
	printf("   A buffer freed and allocated again soon reuses its mapped pages (hysteresis).\n");
	printf("   iovm_dma_trim(IOVM_TRIM_ALL) gives them back now: %s released\n",
	       fmt_size((uint64_t)iovm_dma_trim(ctx, IOVM_TRIM_ALL), a, sizeof(a)));
	show_stats(ctx);

close:
	say("Close the context (iovm_close): all memory goes back to the kernel");
	iovm_close(ctx);
	if (!status)
		printf("\ndone.\n");
	return status;
}
