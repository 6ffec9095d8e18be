/* SPDX-License-Identifier: MIT */
/*
 * fault_mem.c - fault-injection scenarios of iovm/mem.h and phys.h: the DMA
 * heap (alloc, zalloc, realloc, free, trim, translation), zones, common
 * buffers and their syncs, memory events, and the statistics; and SPDK's
 * memory maps, registration and vtophys (iovm/memmap.h).
 */
#include <sys/mman.h>

#include "fault.h"

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static void check_xlate(struct iovm_ctx *ctx, void *p)
{
	struct iovm_dma_xlate x;
	iovm_pa_t pa;

	FI_INT(iovm_dma_xlate(ctx, p, &x));
	FI_INT(iovm_dma_pa(ctx, p, &pa));
	CHECK_EQ(pa.addr, x.pa.addr);
	CHECK(iovm_dma_ptr(ctx, pa) == p);
	/* The two agree on whether the PA is the host's. */
	CHECK_EQ(FI_INT(iovm_pa_is_host(ctx, pa)), (x.flags & IOVM_XLATE_PA_REAL) ? 1 : 0);
}

static void sc_dma(void)
{
	struct iovm_ctx *ctx = fault_open(FAULT_OPTS);
	struct iovm_mem_stats ms;
	struct iovm_phys_stats ps;
	uint8_t *small, *big, *zeroed, *contig, *bounded;

	small = FI_PTR(iovm_dma_alloc(ctx, 100, 0, 0));
	memset(small, 0xab, 100);
	big = FI_PTR(iovm_dma_alloc(ctx, 1 << 20, 4096, 0));
	memset(big, 0xcd, 1 << 20);
	zeroed = FI_PTR(iovm_dma_zalloc(ctx, 64 << 10, 64, 0));
	CHECK(all_zero(zeroed, 64 << 10));
	contig = FI_PTR(iovm_dma_alloc(ctx, 256 << 10, 4096, IOVM_DMA_CONTIG));
	bounded = FI_PTR(iovm_dma_alloc(ctx, 2048, 64, IOVM_DMA_BOUNDARY(12)));
	CHECK(((uintptr_t)bounded >> 12) == (((uintptr_t)bounded + 2047) >> 12));
	/* Grown in place or moved: the contents come along. */
	small = FI_PTR(iovm_dma_realloc(ctx, small, 64 << 10, 0, 0));
	CHECK_EQ(small[99], 0xab);
	CHECK(iovm_dma_size(ctx, small) >= (64 << 10));
	big = FI_PTR(iovm_dma_realloc(ctx, big, 3 << 20, 4096, 0));
	CHECK_EQ(big[(1 << 20) - 1], 0xcd);
	check_xlate(ctx, small);
	check_xlate(ctx, big + (2 << 20));
	check_xlate(ctx, contig);
	FI_INT(iovm_mem_stats(ctx, &ms));
	CHECK(ms.in_use >= (3 << 20));
	FI_INT(iovm_phys_stats(ctx, &ps));
	CHECK(ps.total >= (3 << 20));
	FI_INT(iovm_dma_free(ctx, small));
	FI_INT(iovm_dma_free(ctx, big));
	FI_INT(iovm_dma_free(ctx, zeroed));
	FI_INT(iovm_dma_free(ctx, contig));
	FI_INT(iovm_dma_free(ctx, bounded));
	FI_INT(iovm_dma_trim(ctx, IOVM_TRIM_ALL));
	FI_INT(iovm_mem_stats(ctx, &ms));
	CHECK_MSG(ms.in_use <= (256 << 10), "%llu bytes in use after every free (more than the thread caches hold)",
		  (unsigned long long)ms.in_use);
	CHECK_EQ(iovm_close(ctx), 0);
}

static int count_zone(void *arg, const struct iovm_zone *z)
{
	(*(unsigned *)arg)++;
	CHECK(z->len >= 1);
	return 0;
}

static void sc_zone(void)
{
	struct iovm_ctx *ctx = fault_open(FAULT_OPTS);
	const struct iovm_zone *z, *again, *found;
	unsigned n = 0;

	/* Made once: a call that failed made nothing, so asked again it creates (0), not finds (1). */
	CHECK_EQ(FI_INT(iovm_zone_reserve(ctx, "rxq0", 64 << 10, 4096, 0, &z)), 0);
	CHECK(all_zero(z->va, 64 << 10));
	memset(z->va, 0x5a, 64 << 10);
	CHECK_EQ(FI_INT(iovm_zone_reserve(ctx, "txq0", 8192, 0, IOVM_DMA_BOUNDARY(16), &again)), 0);
	CHECK_EQ(FI_INT(iovm_zone_reserve(ctx, "rxq0", 32 << 10, 4096, 0, &found)), 1);
	CHECK(found == z);
	CHECK_EQ(((uint8_t *)found->va)[100], 0x5a);
	FI_INT(iovm_zone_lookup(ctx, "txq0", &found));
	CHECK(found == again);
	FI_INT(iovm_zone_walk(ctx, count_zone, &n));
	CHECK_EQ(n, 2);
	FI_INT(iovm_zone_free(ctx, z));
	FI_EXPECT(iovm_zone_lookup(ctx, "rxq0", &found), -ENOENT);
	FI_INT(iovm_zone_free(ctx, again));
	CHECK_EQ(iovm_close(ctx), 0);
}

static void cbuf_scenario(const char *opts)
{
	struct iovm_ctx *ctx = fault_open(opts);
	struct iovm_cbuf *cb, *nc;
	iovm_pa_t pages[16];
	unsigned n;
	uint8_t *p;

	FI_INT(iovm_cbuf_alloc(ctx, 64 << 10, 0, &cb));
	p = iovm_cbuf_ptr(cb);
	CHECK(p != NULL && all_zero(p, 64 << 10));
	FI_INT(iovm_cbuf_pages(cb, pages, 16, &n));
	CHECK_EQ(n, 16);
	FI_INT(iovm_cbuf_alloc(ctx, 10000, IOVM_CBUF_NONCOHERENT, &nc));
	p = iovm_cbuf_ptr(nc);
	memset(p, 7, 10000);
	FI_INT(iovm_dma_sync_for_device(ctx, p, 10000));
	FI_INT(iovm_dma_sync_for_cpu(ctx, p, 10000));
	CHECK_EQ(p[9999], 7);
	FI_INT(iovm_cbuf_pages(nc, pages, 16, &n));
	CHECK_EQ(n, 3);
	FI_INT(iovm_cbuf_free(nc));
	FI_INT(iovm_cbuf_free(cb));
	CHECK_EQ(iovm_close(ctx), 0);
}

static void sc_cbuf(void)
{
	cbuf_scenario("page_size=4K,host_pa=off,oracle=on");
}

/*
 * As root, where hugepages are free: buffers cut from the heap's
 * hugepages, mapped a second time (the host-PA path). Otherwise, or once
 * the pool runs dry, emulated frames: host_pa=auto never fails for want
 * of hugepages, so others' use of the pool cannot fail the scenario.
 */
static void sc_cbuf_host_pa(void)
{
	cbuf_scenario("host_pa=auto,oracle=on");
}

/* What a subscriber sees: committed bytes, as the events say. */
static int64_t event_bytes;

static int on_event(void *arg __attribute__((unused)), const struct iovm_mem_event *ev)
{
	event_bytes += ev->type == IOVM_MEM_EVENT_COMMIT ? (int64_t)ev->len : -(int64_t)ev->len;
	return 0;
}

static void sc_events(void)
{
	struct iovm_ctx *ctx = fault_open(FAULT_OPTS);
	struct iovm_mem_stats ms;
	struct iovm_mem_sub *sub;
	void *before, *after;

	before = FI_PTR(iovm_dma_alloc(ctx, 1 << 20, 4096, 0));
	event_bytes = 0;
	/* Replayed: what is committed now. A failed subscription took back what it replayed. */
	FI_INT(iovm_mem_event_subscribe(ctx, on_event, NULL, &sub));
	FI_INT(iovm_mem_stats(ctx, &ms));
	CHECK_EQ(event_bytes, (int64_t)ms.committed);
	after = FI_PTR(iovm_dma_alloc(ctx, 4 << 20, 4096, 0));
	FI_INT(iovm_mem_stats(ctx, &ms));
	CHECK_EQ(event_bytes, (int64_t)ms.committed);
	FI_INT(iovm_dma_free(ctx, after));
	FI_INT(iovm_dma_trim(ctx, IOVM_TRIM_ALL));
	FI_INT(iovm_mem_stats(ctx, &ms));
	CHECK_EQ(event_bytes, (int64_t)ms.committed);
	FI_INT(iovm_mem_event_unsubscribe(ctx, sub));
	FI_INT(iovm_dma_free(ctx, before));
	CHECK_EQ(iovm_close(ctx), 0);
}

#define MM_G IOVM_MEM_MAP_GRANULE

/*
 * A driver's map: each granule translates to its own address. Setting a
 * translation may need a table, so under injection the notify refuses
 * with -ENOMEM, and the registration, the allocation or the map that
 * needed it fails whole.
 */
static int memmap_notify(void *cb_ctx, struct iovm_mem_map *map, enum iovm_mem_map_notify_action action, void *vaddr,
			 size_t size)
{
	uint64_t va = (uintptr_t)vaddr;

	(void)cb_ctx;
	if (action == IOVM_MEM_MAP_NOTIFY_UNREGISTER)
		return iovm_mem_map_clear_translation(map, va, size);
	for (uint64_t g = va; g < va + size; g += MM_G) {
		int ret = iovm_mem_map_set_translation(map, g, MM_G, g);

		if (ret)
			return ret;
	}
	return 0;
}

static void sc_memmap(void)
{
	struct iovm_ctx *ctx = fault_open(FAULT_OPTS);
	struct iovm_mem_map_ops ops = { .notify = memmap_notify };
	struct iovm_mem_map *map = NULL, *plain = NULL;
	uint8_t *raw, *app, *buf, *more;
	uint64_t size, g;

	/* The application's memory: 4 granules, 2 MiB aligned (the test's own mapping, never injected). */
	raw = mmap(NULL, 5 * MM_G, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	CHECK(raw != MAP_FAILED);
	app = (uint8_t *)align_up((uintptr_t)raw, MM_G);
	buf = FI_PTR(iovm_dma_alloc(ctx, 1 << 20, 4096, 0));
	/* Told of the heap as it is; a failed map took back what it was told. */
	FI_INT(iovm_mem_map_alloc(ctx, 0, &ops, NULL, &map));
	g = align_down((uintptr_t)buf, MM_G);
	CHECK_EQ(iovm_mem_map_translate(map, g, NULL), g);
	/* A commit the map hears of: refused under injection, and the allocation with it. */
	more = FI_PTR(iovm_dma_alloc(ctx, 4 << 20, MM_G, 0));
	CHECK_EQ(iovm_mem_map_translate(map, (uintptr_t)more + MM_G, NULL), (uintptr_t)more + MM_G);
	FI_INT(iovm_mem_register(ctx, app, 2 * MM_G));
	CHECK_EQ(iovm_mem_map_translate(map, (uintptr_t)app + MM_G, NULL), (uintptr_t)app + MM_G);
	size = UINT64_MAX;
	CHECK(iovm_vtophys(ctx, app + 5, &size) != IOVM_VTOPHYS_ERROR);
	CHECK_EQ(size, 2 * MM_G - 5);
	FI_INT(iovm_mem_map_alloc(ctx, 7, NULL, NULL, &plain));
	FI_INT(iovm_mem_map_set_translation(plain, (uintptr_t)app, 4 * MM_G, 9));
	CHECK_EQ(iovm_mem_map_translate(plain, (uintptr_t)app + 3 * MM_G, NULL), 9);
	FI_INT(iovm_mem_map_clear_translation(plain, (uintptr_t)app, MM_G));
	CHECK_EQ(iovm_mem_map_translate(plain, (uintptr_t)app, NULL), 7);
	FI_INT(iovm_mem_unregister(ctx, app, 2 * MM_G));
	CHECK_EQ(iovm_mem_map_translate(map, (uintptr_t)app, NULL), 0);
	CHECK_EQ(iovm_vtophys(ctx, app, NULL), IOVM_VTOPHYS_ERROR);
	FI_INT(iovm_mem_map_free(&plain));
	FI_INT(iovm_dma_free(ctx, more));
	FI_INT(iovm_mem_map_free(&map));
	FI_INT(iovm_dma_free(ctx, buf));
	/* One left to iovm_close(), with a registration: both go there. */
	FI_INT(iovm_mem_map_alloc(ctx, 0, &ops, NULL, &map));
	FI_INT(iovm_mem_register(ctx, app + 2 * MM_G, MM_G));
	CHECK_EQ(iovm_close(ctx), 0);
	CHECK_OK(munmap(raw, 5 * MM_G));
}

static const struct fault_scenario fault_mem_scenarios[] = {
	{ "dma heap", sc_dma },
	{ "zones", sc_zone },
	{ "common buffers", sc_cbuf },
	{ "common buffers, host-PA mode", sc_cbuf_host_pa },
	{ "memory events", sc_events },
	{ "memory maps", sc_memmap },
	{ NULL, NULL },
};
