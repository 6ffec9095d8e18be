/* SPDX-License-Identifier: MIT */
/*
 * test_memmap.c - SPDK's memory maps on iovm (iovm/memmap.h), tried with
 * the scenarios of SPDK's test/env/memory/memory_ut.c (written from what
 * those tests check, not from their code), and with what iovm adds: real
 * memory under registrations, the DMA heap as a source of registrations,
 * devices reaching registered memory, lookups racing registrations.
 *
 *  memory_ut alloc_free:    a map is told of what is registered; a map
 *                           whose notify fails on the fifth region leaves
 *                           none of the four before it behind.
 *  memory_ut translation:   set and clear at odd sizes and unaligned
 *                           addresses (refused), overlapping sets, the
 *                           contiguous length with and without
 *                           are_contiguous, the last granule of user
 *                           space and past it.
 *  memory_ut registration:  unregistered, odd-sized and unaligned ranges
 *                           refused; overlapping registration -EBUSY;
 *                           part of a registration -ERANGE.
 *  memory_ut adjacent:      a map made later hears of adjacent
 *                           registrations in the pieces registered, and
 *                           of one unregistration of them all piece by
 *                           piece.
 * And: the heap's commits and releases in granules; a notify that refuses
 * a commit fails the allocation; calls from a notify that would deadlock;
 * many maps; lookups from many threads while others register and
 * allocate; a device copying into registered memory by its vtophys
 * address, and by the IOVA a notify mapped it at in an IOMMU domain (SPDK's
 * VFIO path); maps and registrations left at iovm_close().
 */
#include <pthread.h>
#include <sys/mman.h>

#include "mem_util.h"

#define G IOVM_MEM_MAP_GRANULE
#define MiB (UINT64_C(1) << 20)
#define DEF UINT64_C(0xDEADBEEF0BADF00D)

#define OPTS "page_size=4K,host_pa=off,mem_limit=256M,release_delay_ms=600000"

/* ---- the application's own memory: 2 MiB aligned, mapped, never touched ---- */

static uint8_t *app_map(size_t granules)
{
	size_t len = granules * G;
	uint8_t *p = mmap(NULL, len + G, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	uint8_t *a;

	CHECK(p != MAP_FAILED);
	a = (uint8_t *)align_up((uintptr_t)p, G);
	if (a > p)
		munmap(p, (size_t)(a - p));
	if (a + len < p + len + G)
		munmap(a + len, (size_t)(p + len + G - (a + len)));
	return a;
}

static void app_unmap(uint8_t *a, size_t granules)
{
	CHECK_OK(munmap(a, granules * G));
}

/* ---- a notify that keeps what it heard, per granule ---- */

#define SET_SLOTS (1u << 16)

struct rec_event {
	int action;
	uint64_t va, len;
};

struct recorder {
	/* Open addressing, no deletion: granule + 1 -> announced (1) or not (0). */
	uint64_t key[SET_SLOTS];
	uint8_t on[SET_SLOTS];
	/*
	 * Events, and granules on now, inside [lo, hi) (everywhere when hi is
	 * 0): a test on its own memory need not know what the heap holds.
	 */
	uint64_t lo, hi;
	unsigned n;
	struct rec_event ev[1024];
	uint64_t announced;
	uint64_t fail_va;             /* refuse a REGISTER that covers this address (0: none) */
	int fail_err;
	struct iovm_mem_map *key_map; /* when set: the notify sets (and clears) va + 1 there */
};

static uint8_t *rec_slot(struct recorder *r, uint64_t g)
{
	uint64_t h = (g * UINT64_C(0x9E3779B97F4A7C15)) >> 48;

	while (r->key[h] && r->key[h] != g + 1)
		h = (h + 1) & (SET_SLOTS - 1);
	if (!r->key[h])
		r->key[h] = g + 1;
	return &r->on[h];
}

static bool rec_on(struct recorder *r, const void *va)
{
	return *rec_slot(r, (uintptr_t)va / G);
}

static struct recorder *recorder_new(void)
{
	struct recorder *r = calloc(1, sizeof(*r));

	CHECK(r != NULL);
	return r;
}

/* Count only what happens in [p, p + granules * G). */
static struct recorder *recorder_on(const uint8_t *p, size_t granules)
{
	struct recorder *r = recorder_new();

	r->lo = (uintptr_t)p;
	r->hi = (uintptr_t)p + granules * G;
	return r;
}

static bool rec_counts(const struct recorder *r, uint64_t va)
{
	return !r->hi || (va >= r->lo && va < r->hi);
}

static int rec_notify(void *cb_ctx, struct iovm_mem_map *map, enum iovm_mem_map_notify_action action, void *vaddr,
		      size_t size)
{
	struct recorder *r = cb_ctx;
	uint64_t va = (uintptr_t)vaddr;

	CHECK(map != NULL);
	/* Whole granules, as SPDK's test insists. */
	CHECK_MSG(is_aligned(va, G) && size && is_aligned(size, G), "%#llx + %#zx", (unsigned long long)va, size);
	if (action == IOVM_MEM_MAP_NOTIFY_REGISTER && r->fail_va - va < size)
		return r->fail_err;
	for (uint64_t g = va / G; g < (va + size) / G; g++) {
		uint8_t *s = rec_slot(r, g);

		if (action == IOVM_MEM_MAP_NOTIFY_REGISTER) {
			CHECK_MSG(!*s, "granule %#llx announced twice", (unsigned long long)(g * G));
			*s = 1;
			r->announced += rec_counts(r, g * G);
		} else {
			CHECK_MSG(*s, "granule %#llx withdrawn unannounced", (unsigned long long)(g * G));
			*s = 0;
			r->announced -= rec_counts(r, g * G);
		}
	}
	if (r->key_map) {
		if (action == IOVM_MEM_MAP_NOTIFY_UNREGISTER)
			CHECK_OK(iovm_mem_map_clear_translation(r->key_map, va, size));
		for (uint64_t g = va; action == IOVM_MEM_MAP_NOTIFY_REGISTER && g < va + size; g += G)
			CHECK_OK(iovm_mem_map_set_translation(r->key_map, g, G, g + 1));
	}
	if (rec_counts(r, va) && r->n < ARRAY_SIZE(r->ev))
		r->ev[r->n++] = (struct rec_event){ action, va, size };
	return 0;
}

static const struct iovm_mem_map_ops rec_ops = { .notify = rec_notify };

static int same(void *cb_ctx, uint64_t a, uint64_t b)
{
	(void)cb_ctx;
	return a == b;
}

static int next_granule(void *cb_ctx, uint64_t a, uint64_t b)
{
	(void)cb_ctx;
	return b == a + G;
}

static int always(void *cb_ctx, uint64_t a, uint64_t b)
{
	(void)cb_ctx;
	(void)a;
	(void)b;
	return 1;
}

static int quiet_notify(void *cb_ctx, struct iovm_mem_map *map, enum iovm_mem_map_notify_action action, void *vaddr,
			size_t size)
{
	(void)cb_ctx, (void)map, (void)action, (void)vaddr, (void)size;
	return 0;
}

/* ---- memory_ut: alloc and free ---- */

TEST(alloc_free_and_a_failed_alloc_leaves_nothing)
{
	struct iovm_ctx *ctx = open_ctx(OPTS);
	uint8_t *app = app_map(10);
	struct recorder *r = recorder_on(app, 10), *bad = recorder_on(app, 10);
	struct iovm_mem_map *map = NULL, *keys = NULL, *failed = NULL;

	CHECK_OK(iovm_mem_map_alloc(ctx, DEF, &rec_ops, r, &map));
	CHECK(map != NULL);
	CHECK_OK(iovm_mem_map_free(&map));
	CHECK(map == NULL);
	CHECK_OK(iovm_mem_map_free(&map)); /* NULL: nothing to do, as SPDK */
	CHECK_OK(iovm_mem_map_alloc(ctx, DEF, NULL, NULL, &keys));

	/* Five regions, a granule apart; the new map refuses the fifth. */
	for (int i = 0; i < 5; i++)
		CHECK_OK(iovm_mem_register(ctx, app + 2 * i * G, G));
	bad->key_map = keys;
	bad->fail_va = (uintptr_t)(app + 8 * G);
	bad->fail_err = -EPERM; /* SPDK's test returns -1 */
	CHECK_EQ(iovm_mem_map_alloc(ctx, DEF, &rec_ops, bad, &failed), -EPERM);
	CHECK(failed == NULL);
	CHECK(strstr(iovm_error_detail(), "iovm_mem_map_alloc") != NULL);
	/* It heard of four, set them, and took each back: no translation is left behind. */
	CHECK_EQ(bad->announced, 0);
	CHECK_EQ(bad->n, 8);
	for (int i = 0; i < 4; i++) {
		uint64_t size = G;

		CHECK_EQ(iovm_mem_map_translate(keys, (uintptr_t)(app + 2 * i * G), &size), DEF);
		CHECK_EQ(bad->ev[i].action, IOVM_MEM_MAP_NOTIFY_REGISTER);
		CHECK_EQ(bad->ev[i].va, (uintptr_t)(app + 2 * i * G));
		CHECK_EQ(bad->ev[4 + i].action, IOVM_MEM_MAP_NOTIFY_UNREGISTER);
	}
	/* A map that accepts hears of all five, in address order. */
	CHECK_OK(iovm_mem_map_alloc(ctx, DEF, &rec_ops, r, &map));
	CHECK_EQ(r->announced, 5);
	for (int i = 0; i < 5; i++)
		CHECK(rec_on(r, app + 2 * i * G));
	for (int i = 0; i < 5; i++)
		CHECK_OK(iovm_mem_unregister(ctx, app + 2 * i * G, G));
	CHECK_EQ(r->announced, 0);
	CHECK_OK(iovm_mem_map_free(&map));
	CHECK_OK(iovm_mem_map_free(&keys));
	app_unmap(app, 10);
	free(r);
	free(bad);
	iovm_close(ctx);
}

/* ---- memory_ut: translation ---- */

TEST(translation_at_odd_sizes_boundaries_and_edges)
{
	struct iovm_ctx *ctx = open_ctx(OPTS);
	struct iovm_mem_map_ops ops = { .notify = quiet_notify, .are_contiguous = same };
	const uint64_t top = IOVM_MEM_MAP_VA_LIMIT - G; /* SPDK's 0xffffffe00000 */
	struct iovm_mem_map *map;
	uint64_t size;

	CHECK_EQ(top, UINT64_C(0xffffffe00000));
	CHECK_OK(iovm_mem_map_alloc(ctx, DEF, &ops, NULL, &map));
	CHECK_EQ(iovm_mem_map_translate(map, 10, NULL), DEF);

	/* Whole granules only, as SPDK refuses. */
	CHECK_EQ(iovm_mem_map_set_translation(map, G, 1234, G), -EINVAL);
	CHECK_EQ(iovm_mem_map_set_translation(map, 1234, G, G), -EINVAL);
	CHECK_EQ(iovm_mem_map_set_translation(map, G, G + 4096, G), -EINVAL);
	CHECK_EQ(iovm_mem_map_clear_translation(map, G + 4096, G), -EINVAL);
	CHECK_EQ(iovm_mem_map_set_translation(map, G, 0, G), -EINVAL); /* SPDK does nothing; iovm refuses */
	CHECK_EQ(iovm_mem_map_clear_translation(map, 0, 0), -EINVAL);

	CHECK_OK(iovm_mem_map_set_translation(map, G, G, G));
	/* Over the one before it: every granule the same value, not value plus offset. */
	CHECK_OK(iovm_mem_map_set_translation(map, 0, 3 * G, 0));
	size = 3 * G;
	CHECK_EQ(iovm_mem_map_translate(map, 0, &size), 0);
	CHECK_EQ(size, 3 * G);
	size = 3 * G;
	CHECK_EQ(iovm_mem_map_translate(map, 4096, &size), 0);
	CHECK_EQ(size, 3 * G - 4096);
	/* Asked for less: never more than asked. */
	size = 5000;
	CHECK_EQ(iovm_mem_map_translate(map, 4096, &size), 0);
	CHECK_EQ(size, 5000);
	size = 0;
	CHECK_EQ(iovm_mem_map_translate(map, 0, &size), 0);
	CHECK_EQ(size, 0);

	/* The middle cleared: the run stops at it. */
	CHECK_OK(iovm_mem_map_clear_translation(map, G, G));
	CHECK_EQ(iovm_mem_map_translate(map, 0, NULL), 0);
	size = 3 * G;
	CHECK_EQ(iovm_mem_map_translate(map, 0, &size), 0);
	CHECK_EQ(size, G);
	size = 3 * G;
	CHECK_EQ(iovm_mem_map_translate(map, G, &size), DEF);
	CHECK_EQ(size, G);
	CHECK_EQ(iovm_mem_map_translate(map, G, NULL), DEF);
	CHECK_EQ(iovm_mem_map_translate(map, 2 * G, NULL), 0);
	CHECK_OK(iovm_mem_map_clear_translation(map, 0, G));
	CHECK_EQ(iovm_mem_map_translate(map, 0, NULL), DEF);
	CHECK_OK(iovm_mem_map_clear_translation(map, 2 * G, G));
	CHECK_EQ(iovm_mem_map_translate(map, 2 * G, NULL), DEF);
	/* Clearing what was never set: nothing to do, nothing refused. */
	CHECK_OK(iovm_mem_map_clear_translation(map, 100 * G, 1000 * G));

	/* The last granule of user space, and past it. */
	CHECK_OK(iovm_mem_map_set_translation(map, top, G, 0x1234));
	CHECK_EQ(iovm_mem_map_translate(map, top, NULL), 0x1234);
	size = 4 * G;
	CHECK_EQ(iovm_mem_map_translate(map, top + G - 1, &size), 0x1234);
	CHECK_EQ(size, 1);
	size = 4 * G; /* the run may not go past the end of the table */
	CHECK_EQ(iovm_mem_map_translate(map, top, &size), 0x1234);
	CHECK_EQ(size, G);
	CHECK_EQ(iovm_mem_map_set_translation(map, IOVM_MEM_MAP_VA_LIMIT, G, 0x5678), -EINVAL);
	CHECK_EQ(iovm_mem_map_set_translation(map, top, 2 * G, 0x123123), -EINVAL);
	CHECK_EQ(iovm_mem_map_translate(map, top, NULL), 0x1234); /* all or nothing */
	/* Ranges whose end wraps around 2^64. */
	CHECK_EQ(iovm_mem_map_set_translation(map, UINT64_MAX - G + 1, G, 1), -EINVAL);
	CHECK_EQ(iovm_mem_map_set_translation(map, G, UINT64_MAX - G + 1, 1), -EINVAL);
	CHECK_EQ(iovm_mem_map_clear_translation(map, top, UINT64_MAX - G + 1), -EINVAL);
	/* Past the end there is no translation: the default, for the rest of its granule. */
	size = 4 * G;
	CHECK_EQ(iovm_mem_map_translate(map, IOVM_MEM_MAP_VA_LIMIT, &size), DEF);
	CHECK_EQ(size, G);
	size = 4 * G;
	CHECK_EQ(iovm_mem_map_translate(map, UINT64_MAX, &size), DEF);
	CHECK_EQ(size, 1);
	CHECK_OK(iovm_mem_map_free(&map));

	/* Without are_contiguous: one granule at most. */
	ops.are_contiguous = NULL;
	CHECK_OK(iovm_mem_map_alloc(ctx, DEF, &ops, NULL, &map));
	CHECK_OK(iovm_mem_map_set_translation(map, 0, 3 * G, 0));
	size = 3 * G;
	CHECK_EQ(iovm_mem_map_translate(map, 0, &size), 0);
	CHECK_EQ(size, G);
	CHECK_OK(iovm_mem_map_clear_translation(map, 0, 3 * G));
	CHECK_OK(iovm_mem_map_free(&map));

	/* IOVA style: each granule its own value, contiguous when it follows on. */
	ops.are_contiguous = next_granule;
	CHECK_OK(iovm_mem_map_alloc(ctx, DEF, &ops, NULL, &map));
	for (uint64_t i = 0; i < 4; i++)
		CHECK_OK(iovm_mem_map_set_translation(map, (64 + i) * G, G, 0x40000000 + i * G));
	CHECK_OK(iovm_mem_map_set_translation(map, 68 * G, G, 0x90000000)); /* not the next one */
	size = 100 * G;
	CHECK_EQ(iovm_mem_map_translate(map, 64 * G + 12345, &size), 0x40000000);
	CHECK_EQ(size, 4 * G - 12345);
	/* Across a second-level table (1 GiB): the run goes on. */
	for (uint64_t i = 0; i < 4; i++)
		CHECK_OK(iovm_mem_map_set_translation(map, (510 + i) * G, G, 0x80000000 + i * G));
	size = 100 * G;
	CHECK_EQ(iovm_mem_map_translate(map, 510 * G, &size), 0x80000000);
	CHECK_EQ(size, 4 * G);
	CHECK_OK(iovm_mem_map_free(&map));

	/* A callback that says yes to anything never carries a run into a granule without a translation. */
	ops.are_contiguous = always;
	CHECK_OK(iovm_mem_map_alloc(ctx, DEF, &ops, NULL, &map));
	CHECK_OK(iovm_mem_map_set_translation(map, 0, 2 * G, 7));
	size = 10 * G;
	CHECK_EQ(iovm_mem_map_translate(map, 0, &size), 7);
	CHECK_EQ(size, 2 * G);
	/* A default of 0 (SPDK's registration map): zero is the default, not a value. */
	CHECK_OK(iovm_mem_map_free(&map));
	CHECK_OK(iovm_mem_map_alloc(ctx, 0, &ops, NULL, &map));
	CHECK_EQ(iovm_mem_map_translate(map, 5 * G, NULL), 0);
	CHECK_OK(iovm_mem_map_set_translation(map, 5 * G, G, DEF));
	CHECK_EQ(iovm_mem_map_translate(map, 5 * G, NULL), DEF);
	CHECK_OK(iovm_mem_map_set_translation(map, 5 * G, G, 0));
	size = 3 * G;
	CHECK_EQ(iovm_mem_map_translate(map, 5 * G, &size), 0);
	CHECK_EQ(size, G);
	CHECK_OK(iovm_mem_map_free(&map));

	/* NULL: refused, with a detail. */
	errno = 0;
	size = 77;
	CHECK_EQ(iovm_mem_map_translate(NULL, 0, &size), IOVM_ADDR_INVALID);
	CHECK_EQ(errno, EINVAL);
	CHECK_EQ(size, 77);
	CHECK(strstr(iovm_error_detail(), "iovm_mem_map_translate") != NULL);
	CHECK_EQ(iovm_mem_map_set_translation(NULL, 0, G, 1), -EINVAL);
	CHECK_EQ(iovm_mem_map_clear_translation(NULL, 0, G), -EINVAL);
	CHECK_EQ(iovm_mem_map_free(NULL), -EINVAL);
	CHECK_EQ(iovm_mem_map_alloc(NULL, DEF, &ops, NULL, &map), -EINVAL);
	CHECK_EQ(iovm_mem_map_alloc(ctx, DEF, &ops, NULL, NULL), -EINVAL);
	iovm_close(ctx);
}

/* ---- memory_ut: registration ---- */

TEST(registration_overlaps_and_parts_are_refused)
{
	struct iovm_ctx *ctx = open_ctx(OPTS);
	uint8_t *app = app_map(4), *heap;
	struct recorder *r = recorder_on(app, 4);
	struct iovm_mem_map *map;
	uint64_t size, pa;
	unsigned n;

	CHECK_OK(iovm_mem_map_alloc(ctx, DEF, &rec_ops, r, &map));
	n = r->n;
	/* Never registered, odd sizes, unaligned. */
	CHECK_EQ(iovm_mem_unregister(ctx, app + G, G), -EINVAL);
	CHECK_EQ(iovm_mem_register(ctx, app + G, 1234), -EINVAL);
	CHECK_EQ(iovm_mem_register(ctx, app + 1234, G), -EINVAL);
	CHECK_EQ(iovm_mem_register(ctx, app, 0), -EINVAL);
	CHECK_EQ(iovm_mem_register(ctx, NULL, G), -EINVAL);
	CHECK_EQ(iovm_mem_register(NULL, app, G), -EINVAL);
	CHECK_EQ(r->n, n);

	CHECK_OK(iovm_mem_register(ctx, app + G, G));
	CHECK_EQ(r->n, n + 1);
	CHECK_EQ(r->ev[n].va, (uintptr_t)(app + G));
	CHECK_EQ(r->ev[n].len, G);
	/* Registered memory has a physical address, contiguous to the registration's end. */
	size = 4 * G;
	pa = iovm_vtophys(ctx, app + G + 100, &size);
	CHECK(pa != IOVM_VTOPHYS_ERROR);
	CHECK_EQ(size, G - 100);
	CHECK_EQ(pa % G, 100);
	/* ...through which the bus reaches the application's memory itself. */
	CHECK(phys_bus_ptr(ctx->phys, IOVM_PA(pa)) == app + G + 100);

	/* Overlapping: refused, and nobody hears of it. */
	CHECK_EQ(iovm_mem_register(ctx, app, 3 * G), -EBUSY);
	CHECK_EQ(r->n, n + 1);
	CHECK_OK(iovm_mem_unregister(ctx, app + G, G));
	CHECK_EQ(r->n, n + 2);
	CHECK_EQ(r->ev[n + 1].action, IOVM_MEM_MAP_NOTIFY_UNREGISTER);
	errno = 0;
	CHECK_EQ(iovm_vtophys(ctx, app + G, NULL), IOVM_VTOPHYS_ERROR);
	CHECK_EQ(errno, ENOENT);
	/* Its physical address left the bus with it. */
	CHECK(phys_bus_ptr(ctx->phys, IOVM_PA(pa)) == NULL);

	CHECK_OK(iovm_mem_register(ctx, app, 3 * G));
	size = UINT64_MAX;
	pa = iovm_vtophys(ctx, app, &size);
	CHECK_EQ(size, 3 * G);
	CHECK_EQ(iovm_vtophys(ctx, app + 2 * G + 5, NULL), pa + 2 * G + 5);
	/* Part of a registration: the middle, the first granule, the last; and past its end. */
	CHECK_EQ(iovm_mem_unregister(ctx, app + G, G), -ERANGE);
	CHECK_EQ(iovm_mem_unregister(ctx, app, G), -ERANGE);
	CHECK_EQ(iovm_mem_unregister(ctx, app + 2 * G, G), -ERANGE);
	CHECK_EQ(iovm_mem_unregister(ctx, app, 4 * G), -EINVAL);
	CHECK_EQ(r->announced, 3);
	CHECK_EQ(iovm_vtophys(ctx, app + G, NULL), pa + G); /* all still there */
	CHECK_OK(iovm_mem_unregister(ctx, app, 3 * G));
	CHECK_EQ(r->announced, 0);
	CHECK_EQ(iovm_vtophys(ctx, app, NULL), IOVM_VTOPHYS_ERROR);

	/* What is not mapped, or iovm's own heap, or past user space, cannot be registered. */
	app_unmap(app + 3 * G, 1);
	CHECK_EQ(iovm_mem_register(ctx, app + 2 * G, 2 * G), -EFAULT);
	CHECK_EQ(iovm_mem_register(ctx, (void *)(uintptr_t)(IOVM_MEM_MAP_VA_LIMIT - G), G), -EFAULT);
	CHECK_EQ(iovm_mem_register(ctx, (void *)(uintptr_t)IOVM_MEM_MAP_VA_LIMIT, G), -EINVAL);
	CHECK_EQ(iovm_mem_register(ctx, app, SIZE_MAX - G + 1), -EINVAL);
	CHECK_EQ(iovm_mem_unregister(ctx, app, SIZE_MAX - G + 1), -EINVAL);
	heap = iovm_dma_alloc(ctx, G, G, 0);
	CHECK(heap != NULL);
	CHECK_EQ(iovm_mem_register(ctx, heap, G), -EBUSY);
	CHECK_EQ(iovm_mem_unregister(ctx, heap, G), -EINVAL); /* announced by the heap, not registered */
	CHECK_OK(iovm_dma_free(ctx, heap));
	CHECK_OK(iovm_mem_map_free(&map));
	app_unmap(app, 3);
	free(r);
	iovm_close(ctx);
}

/* ---- memory_ut: adjacent registrations ---- */

TEST(adjacent_registrations_keep_their_pieces)
{
	static const unsigned chunks[] = { 2, 1, 3, 2, 1, 1 };
	struct iovm_ctx *ctx = open_ctx(OPTS);
	uint8_t *app = app_map(10), *at;
	struct recorder *r = recorder_on(app, 10), *late = recorder_on(app, 10);
	struct iovm_mem_map *map, *newmap;
	unsigned n;

	CHECK_OK(iovm_mem_map_alloc(ctx, DEF, &rec_ops, r, &map));
	for (int round = 0; round < 2; round++) {
		at = app;
		for (size_t i = 0; i < ARRAY_SIZE(chunks); i++) {
			CHECK_OK(iovm_mem_register(ctx, at, chunks[i] * G));
			at += chunks[i] * G;
		}
		/* A map made now hears of them as registered: piece by piece, in order. */
		CHECK_OK(iovm_mem_map_alloc(ctx, DEF, &rec_ops, late, &newmap));
		CHECK_EQ(late->n, ARRAY_SIZE(chunks));
		at = app;
		for (size_t i = 0; i < ARRAY_SIZE(chunks); i++) {
			CHECK_EQ(late->ev[i].va, (uintptr_t)at);
			CHECK_EQ(late->ev[i].len, chunks[i] * G);
			at += chunks[i] * G;
		}
		/* Freed, it hears them withdrawn the same way. */
		CHECK_OK(iovm_mem_map_free(&newmap));
		CHECK_EQ(late->n, 2 * ARRAY_SIZE(chunks));
		CHECK_EQ(late->announced, 0);
		for (size_t i = 0; i < ARRAY_SIZE(chunks); i++)
			CHECK_EQ(late->ev[ARRAY_SIZE(chunks) + i].len, chunks[i] * G);
		late->n = 0;

		n = r->n;
		if (round == 0) {
			at = app;
			for (size_t i = 0; i < ARRAY_SIZE(chunks); i++) {
				CHECK_OK(iovm_mem_unregister(ctx, at, chunks[i] * G));
				at += chunks[i] * G;
			}
		} else {
			/* All of them in one call: each map hears of each piece. */
			CHECK_OK(iovm_mem_unregister(ctx, app, (size_t)(at - app)));
		}
		CHECK_EQ(r->n, n + ARRAY_SIZE(chunks));
		at = app;
		for (size_t i = 0; i < ARRAY_SIZE(chunks); i++) {
			CHECK_EQ(r->ev[n + i].action, IOVM_MEM_MAP_NOTIFY_UNREGISTER);
			CHECK_EQ(r->ev[n + i].va, (uintptr_t)at);
			CHECK_EQ(r->ev[n + i].len, chunks[i] * G);
			at += chunks[i] * G;
		}
		CHECK_EQ(r->announced, 0);
	}
	/* Two adjacent ones, unregistered with a piece of a third: refused whole. */
	CHECK_OK(iovm_mem_register(ctx, app, 2 * G));
	CHECK_OK(iovm_mem_register(ctx, app + 2 * G, 2 * G));
	CHECK_EQ(iovm_mem_unregister(ctx, app, 3 * G), -ERANGE);
	CHECK_EQ(iovm_mem_unregister(ctx, app + G, 3 * G), -ERANGE);
	CHECK_OK(iovm_mem_unregister(ctx, app, 4 * G));
	CHECK_OK(iovm_mem_map_free(&map));
	app_unmap(app, 10);
	free(r);
	free(late);
	iovm_close(ctx);
}

/* ---- the DMA heap ---- */

/* Every granule of [p, p+len) is announced to @r. */
static bool covers(struct recorder *r, const void *p, size_t len)
{
	for (uintptr_t a = align_down((uintptr_t)p, G); a < (uintptr_t)p + len; a += G)
		if (!rec_on(r, (void *)a))
			return false;
	return true;
}

TEST(the_heap_is_announced_in_granules)
{
	struct iovm_ctx *ctx = open_ctx(OPTS);
	struct recorder *r = recorder_new(), *late = recorder_new();
	struct iovm_mem_map *map, *keys, *newmap;
	uint8_t *before, *a, *b, *big;
	unsigned n;

	CHECK_OK(iovm_mem_map_alloc(ctx, DEF, NULL, NULL, &keys));
	r->key_map = keys;
	before = iovm_dma_alloc(ctx, 64 << 10, 4096, 0);
	CHECK(before != NULL);
	/* Made after: told of what the heap holds already. */
	CHECK_OK(iovm_mem_map_alloc(ctx, DEF, &rec_ops, r, &map));
	CHECK(covers(r, before, 64 << 10));
	CHECK_EQ(iovm_mem_map_translate(keys, (uintptr_t)before, NULL), align_down((uintptr_t)before, G) + 1);

	/* Two allocations in one granule: announced once, before the first returned. */
	a = iovm_dma_alloc(ctx, 64 << 10, 4096, 0);
	n = r->n;
	b = iovm_dma_alloc(ctx, 64 << 10, 4096, 0);
	CHECK(a && b);
	CHECK(covers(r, a, 64 << 10) && covers(r, b, 64 << 10));
	if (align_down((uintptr_t)a, G) == align_down((uintptr_t)b, G))
		CHECK_EQ(r->n, n);
	/* Large: every granule of it, and its translation set while the allocation was made. */
	big = iovm_dma_alloc(ctx, 9 * MiB, 0, 0);
	CHECK(big != NULL);
	CHECK(covers(r, big, 9 * MiB));
	for (uint64_t off = 0; off < 9 * MiB; off += G)
		CHECK_EQ(iovm_mem_map_translate(keys, (uintptr_t)big + off, NULL),
			 align_down((uintptr_t)big + off, G) + 1);
	/* vtophys agrees with the heap's translation. */
	{
		struct iovm_dma_xlate x;
		uint64_t size = UINT64_MAX;

		CHECK_OK(iovm_dma_xlate(ctx, big + 12345, &x));
		CHECK_EQ(iovm_vtophys(ctx, big + 12345, &size), x.pa.addr);
		CHECK_EQ(size, x.contig);
		size = 10;
		CHECK_EQ(iovm_vtophys(ctx, big + 12345, &size), x.pa.addr);
		CHECK_EQ(size, 10);
	}
	/* A late map hears of the same granules. */
	CHECK_OK(iovm_mem_map_alloc(ctx, DEF, &rec_ops, late, &newmap));
	CHECK_EQ(late->announced, r->announced);
	CHECK(covers(late, big, 9 * MiB));
	CHECK_OK(iovm_mem_map_free(&newmap));
	CHECK_EQ(late->announced, 0);

	/* Freed and given back: withdrawn, and the translations with them. */
	CHECK_OK(iovm_dma_free(ctx, big));
	CHECK_OK(iovm_dma_free(ctx, a));
	CHECK_OK(iovm_dma_free(ctx, b));
	CHECK_OK(iovm_dma_free(ctx, before));
	CHECK(iovm_dma_trim(ctx, IOVM_TRIM_ALL) >= 0);
	/* What the thread caches keep committed may stay: every granule still on holds a committed page. */
	for (size_t i = 0; i < SET_SLOTS; i++) {
		bool some = false;

		if (!r->key[i] || !r->on[i])
			continue;
		for (uint64_t off = 0; off < G && !some; off += 4096) {
			struct iovm_dma_xlate x;

			some = !iovm_dma_xlate(ctx, (void *)(uintptr_t)((r->key[i] - 1) * G + off), &x);
		}
		CHECK_MSG(some, "granule %#llx still on, with no page committed",
			  (unsigned long long)((r->key[i] - 1) * G));
	}
	CHECK(!covers(r, big + 4 * G, G));
	CHECK_EQ(iovm_mem_map_translate(keys, (uintptr_t)big + 4 * G, NULL), DEF);
	CHECK_OK(iovm_mem_map_free(&map));
	CHECK_EQ(r->announced, 0);
	CHECK_OK(iovm_mem_map_free(&keys));
	free(r);
	free(late);
	iovm_close(ctx);
}

/* With 2 MiB pages, SPDK's vtophys map: each granule's PA, contiguous where the heap's PAs are. */
static int pa_notify(void *cb_ctx, struct iovm_mem_map *map, enum iovm_mem_map_notify_action action, void *vaddr,
		     size_t size)
{
	struct iovm_ctx *ctx = cb_ctx;

	for (size_t off = 0; off < size; off += G) {
		uint64_t va = (uintptr_t)vaddr + off, pa;

		if (action == IOVM_MEM_MAP_NOTIFY_UNREGISTER) {
			CHECK_OK(iovm_mem_map_clear_translation(map, va, G));
			continue;
		}
		pa = iovm_vtophys(ctx, (void *)(uintptr_t)va, NULL);
		CHECK(pa != IOVM_VTOPHYS_ERROR);
		CHECK_OK(iovm_mem_map_set_translation(map, va, G, pa));
	}
	return 0;
}

TEST(a_vtophys_map_of_hugepages)
{
	struct iovm_mem_map_ops ops = { .notify = pa_notify, .are_contiguous = next_granule };
	struct iovm_mem_map *map;
	struct iovm_ctx *ctx;
	uint8_t *p;

	if (!os_hugepage_supported(SZ_2M) || free_hugepages_2m() < 8)
		SKIP_CASE("8 free 2 MiB hugepages are not there now");
	ctx = open_ctx("page_size=2M,host_pa=off,mem_limit=64M,release_delay_ms=600000");
	p = iovm_dma_alloc(ctx, 4 * MiB, G, IOVM_DMA_CONTIG);
	if (!p) {
		iovm_close(ctx);
		SKIP_CASE("other processes took the hugepages");
	}
	CHECK_OK(iovm_mem_map_alloc(ctx, IOVM_VTOPHYS_ERROR, &ops, ctx, &map));
	for (uint64_t off = 0; off < 4 * MiB; off += 4093) {
		uint64_t size = 4 * MiB - off, want = size;
		uint64_t tr = iovm_mem_map_translate(map, (uintptr_t)p + off, &size);

		/* SPDK's vtophys: the granule's PA plus the offset in it, contiguous over the buffer. */
		CHECK_EQ(tr + ((uintptr_t)p + off) % G, iovm_vtophys(ctx, p + off, NULL));
		CHECK_EQ(size, want);
	}
	CHECK_OK(iovm_dma_free(ctx, p));
	CHECK(iovm_dma_trim(ctx, IOVM_TRIM_ALL) >= 0);
	CHECK_EQ(iovm_mem_map_translate(map, (uintptr_t)p, NULL), IOVM_VTOPHYS_ERROR);
	CHECK_OK(iovm_mem_map_free(&map));
	iovm_close(ctx);
}

TEST(a_refused_commit_fails_the_allocation)
{
	struct iovm_ctx *ctx = open_ctx(OPTS);
	struct recorder *first = recorder_new(), *refuser = recorder_new();
	struct iovm_mem_map *m1, *m2;
	uint8_t *p, *q;

	CHECK_OK(iovm_mem_map_alloc(ctx, DEF, &rec_ops, first, &m1));
	CHECK_OK(iovm_mem_map_alloc(ctx, DEF, &rec_ops, refuser, &m2));
	/* Find where the next fresh granule will be, then refuse it. */
	p = iovm_dma_alloc(ctx, 4 * MiB, G, 0);
	CHECK(p != NULL);
	CHECK_OK(iovm_dma_free(ctx, p));
	CHECK(iovm_dma_trim(ctx, IOVM_TRIM_ALL) >= 0);
	CHECK(!rec_on(refuser, p));
	refuser->fail_va = (uintptr_t)p;
	refuser->fail_err = -ENOSPC;
	errno = 0;
	q = iovm_dma_alloc(ctx, 4 * MiB, G, 0);
	if (q) {
		/* Placed elsewhere this time: nothing to refuse. */
		printf("# the allocation went elsewhere: the refusal was not met\n");
		CHECK(q != p);
		CHECK_OK(iovm_dma_free(ctx, q));
	} else {
		/* The map before the refuser heard it withdrawn; neither holds it. */
		CHECK_EQ(errno, ENOMEM);
		CHECK(!rec_on(first, p));
		CHECK(!rec_on(refuser, p));
	}
	CHECK_EQ(first->announced, refuser->announced);
	refuser->fail_va = 0;
	q = iovm_dma_alloc(ctx, 4 * MiB, G, 0);
	CHECK(q != NULL);
	CHECK(covers(first, q, 4 * MiB) && covers(refuser, q, 4 * MiB));
	CHECK_OK(iovm_dma_free(ctx, q));
	CHECK_OK(iovm_mem_map_free(&m2));
	CHECK_OK(iovm_mem_map_free(&m1));
	free(first);
	free(refuser);
	iovm_close(ctx);
}

/* ---- what a notify may not do ---- */

static int no_event(void *arg, const struct iovm_mem_event *ev)
{
	(void)arg;
	(void)ev;
	return 0;
}

struct reentry {
	struct iovm_ctx *ctx;
	uint8_t *app;
	struct iovm_mem_map *other;
	unsigned calls;
};

static int reentering_notify(void *cb_ctx, struct iovm_mem_map *map, enum iovm_mem_map_notify_action action,
			     void *vaddr, size_t size)
{
	struct reentry *re = cb_ctx;
	struct iovm_mem_map *m = NULL;
	struct iovm_mem_sub *sub;
	void *p;

	(void)map;
	if (action != IOVM_MEM_MAP_NOTIFY_REGISTER || vaddr != re->app)
		return 0;
	re->calls++;
	/* These would wait for a lock this thread holds: refused. */
	errno = 0;
	p = iovm_dma_alloc(re->ctx, 100, 0, 0);
	CHECK(p == NULL && errno == EDEADLK);
	CHECK_EQ(iovm_mem_register(re->ctx, re->app + G, G), -EDEADLK);
	CHECK_EQ(iovm_mem_unregister(re->ctx, re->app, size), -EDEADLK);
	CHECK_EQ(iovm_mem_map_alloc(re->ctx, DEF, NULL, NULL, &m), -EDEADLK);
	CHECK_EQ(iovm_mem_map_free(&re->other), -EDEADLK);
	CHECK_EQ(iovm_mem_event_subscribe(re->ctx, no_event, NULL, &sub), -EDEADLK);
	/* These may: translations of any map, and of memory. */
	CHECK(iovm_vtophys(re->ctx, vaddr, NULL) != IOVM_VTOPHYS_ERROR);
	CHECK_OK(iovm_mem_map_set_translation(re->other, (uintptr_t)vaddr, size, 42));
	CHECK_EQ(iovm_mem_map_translate(re->other, (uintptr_t)vaddr, NULL), 42);
	CHECK_OK(iovm_mem_map_clear_translation(re->other, (uintptr_t)vaddr, size));
	return 0;
}

TEST(a_notify_may_translate_but_not_allocate_or_register)
{
	struct iovm_ctx *ctx = open_ctx(OPTS);
	struct iovm_mem_map_ops ops = { .notify = reentering_notify };
	struct reentry re = { .ctx = ctx, .app = app_map(2) };
	struct iovm_mem_map *map;

	CHECK_OK(iovm_mem_map_alloc(ctx, DEF, NULL, NULL, &re.other));
	CHECK_OK(iovm_mem_map_alloc(ctx, DEF, &ops, &re, &map));
	CHECK_OK(iovm_mem_register(ctx, re.app, G));
	CHECK_EQ(re.calls, 1);
	/* Its error detail names the call, not what the callback called. */
	CHECK_EQ(iovm_mem_register(ctx, re.app, G), -EBUSY);
	CHECK(strstr(iovm_error_detail(), "iovm_mem_register") != NULL);
	CHECK_OK(iovm_mem_unregister(ctx, re.app, G));
	CHECK_OK(iovm_mem_map_free(&map));
	CHECK_OK(iovm_mem_map_free(&re.other));
	app_unmap(re.app, 2);
	iovm_close(ctx);
}

/* ---- many maps ---- */

TEST(many_maps_hear_the_same)
{
	enum { NMAPS = 48 };
	struct iovm_ctx *ctx = open_ctx(OPTS);
	struct recorder *r[NMAPS];
	struct iovm_mem_map *m[NMAPS];
	uint8_t *app = app_map(16);

	for (int i = 0; i < NMAPS; i++) {
		r[i] = recorder_on(app, 16);
		CHECK_OK(iovm_mem_map_alloc(ctx, (uint64_t)i, &rec_ops, r[i], &m[i]));
		if (i == NMAPS / 2)
			CHECK_OK(iovm_mem_register(ctx, app, 4 * G));
	}
	CHECK_OK(iovm_mem_register(ctx, app + 8 * G, 8 * G));
	for (int i = 0; i < NMAPS; i++) {
		CHECK(covers(r[i], app, 4 * G) && covers(r[i], app + 8 * G, 8 * G));
		CHECK_EQ(iovm_mem_map_translate(m[i], (uintptr_t)app, NULL), (uint64_t)i); /* its own default */
	}
	/* Half of them go; the rest hear what follows, the others nothing. */
	for (int i = 0; i < NMAPS; i += 2) {
		CHECK_OK(iovm_mem_map_free(&m[i]));
		CHECK_EQ(r[i]->announced, 0);
	}
	CHECK_OK(iovm_mem_unregister(ctx, app, 4 * G));
	for (int i = 0; i < NMAPS; i++) {
		CHECK(!covers(r[i], app, G));
		CHECK_EQ(r[i]->announced, i % 2 ? 8 : 0);
	}
	/* The rest are left to iovm_close(), with the registration: freed there (the sanitizers check). */
	for (int i = 0; i < NMAPS; i++)
		free(r[i]);
	iovm_close(ctx);
	app_unmap(app, 16);
}

/* ---- lookups racing registrations and the heap ---- */

#define READERS 3
#define SLOTS 8

struct race {
	struct iovm_ctx *ctx;
	struct iovm_mem_map *map;
	uint8_t *app;
	_Atomic bool stop;
	_Atomic unsigned long lookups, hits;
};

/* The map's value for a granule: its address, + 1 (so 0, the default, is never one). */
static int key_notify(void *cb_ctx, struct iovm_mem_map *map, enum iovm_mem_map_notify_action action, void *vaddr,
		      size_t size)
{
	(void)cb_ctx;
	for (size_t off = 0; off < size; off += G) {
		uint64_t va = (uintptr_t)vaddr + off;

		if (action == IOVM_MEM_MAP_NOTIFY_REGISTER)
			CHECK_OK(iovm_mem_map_set_translation(map, va, G, va + 1));
		else
			CHECK_OK(iovm_mem_map_clear_translation(map, va, G));
	}
	return 0;
}

static void *reader(void *arg)
{
	struct race *rc = arg;
	uint64_t seed = (uintptr_t)&seed | 1;

	while (!atomic_load_explicit(&rc->stop, memory_order_relaxed)) {
		uint64_t off = test_rand(&seed) % (SLOTS * 2 * G);
		uint8_t *va = rc->app + off;
		uint64_t want = 1 + test_rand(&seed) % (4 * G), size = want;
		uint64_t tr = iovm_mem_map_translate(rc->map, (uintptr_t)va, &size);
		uint64_t psize = want, pa = iovm_vtophys(rc->ctx, va, &psize);

		/* Either no translation, or this granule's own: never another's, never torn. */
		CHECK_MSG(tr == 0 || tr == align_down((uintptr_t)va, G) + 1, "%p translates to %#llx", (void *)va,
			  (unsigned long long)tr);
		CHECK(size >= 1 && size <= want);
		if (tr)
			CHECK(size >= MIN(want, G - off % G));
		if (pa != IOVM_VTOPHYS_ERROR) {
			/* Registered memory sits at its VA's offset in a granule of the bus. */
			CHECK_EQ(pa % G, off % G);
			CHECK(psize >= 1 && psize <= want);
			atomic_fetch_add_explicit(&rc->hits, 1, memory_order_relaxed);
		}
		atomic_fetch_add_explicit(&rc->lookups, 1, memory_order_relaxed);
	}
	return NULL;
}

/* Allocations and frees, each commit and release a notify of the map. */
static void *heap_churn(void *arg)
{
	struct race *rc = arg;
	uint64_t seed = 99;
	void *live[16] = { 0 };

	while (!atomic_load_explicit(&rc->stop, memory_order_relaxed)) {
		unsigned i = (unsigned)(test_rand(&seed) % ARRAY_SIZE(live));

		if (live[i]) {
			CHECK_OK(iovm_dma_free(rc->ctx, live[i]));
			live[i] = NULL;
		} else {
			live[i] = iovm_dma_alloc(rc->ctx, 1 + test_rand(&seed) % (3 * MiB), 0, 0);
			CHECK(live[i] != NULL);
			CHECK_EQ(iovm_mem_map_translate(rc->map, (uintptr_t)live[i], NULL),
				 align_down((uintptr_t)live[i], G) + 1);
		}
	}
	for (size_t i = 0; i < ARRAY_SIZE(live); i++)
		CHECK_OK(iovm_dma_free(rc->ctx, live[i]));
	return NULL;
}

TEST(lookups_race_registrations_without_a_lock)
{
	struct iovm_ctx *ctx = open_ctx("page_size=4K,host_pa=off,mem_limit=256M,release_delay_ms=0");
	struct iovm_mem_map_ops ops = { .notify = key_notify, .are_contiguous = next_granule };
	struct race rc = { .ctx = ctx, .app = app_map(SLOTS * 2) };
	pthread_t th[READERS + 1];
	bool reg[SLOTS] = { 0 };
	uint64_t seed = 5;
	unsigned rounds = TEST_TSAN ? 1500 : 6000;

	CHECK_OK(iovm_mem_map_alloc(ctx, 0, &ops, NULL, &rc.map));
	for (int i = 0; i < READERS; i++)
		CHECK_EQ(pthread_create(&th[i], NULL, reader, &rc), 0);
	CHECK_EQ(pthread_create(&th[READERS], NULL, heap_churn, &rc), 0);
	/*
	 * Registrations of 1 or 2 granules at even slots, made and undone at
	 * random: at least @rounds of them, and on until the readers have
	 * looked often, and found registered memory often (on a loaded
	 * machine they may start late).
	 */
	for (unsigned step = 0; step < rounds || atomic_load(&rc.lookups) < 2000 || atomic_load(&rc.hits) < 200;
	     step++) {
		unsigned s = (unsigned)(test_rand(&seed) % SLOTS);
		uint8_t *va = rc.app + s * 2 * G;
		size_t len = (s % 2 + 1) * G;

		if (reg[s]) {
			CHECK_OK(iovm_mem_unregister(ctx, va, len));
		} else {
			CHECK_OK(iovm_mem_register(ctx, va, len));
			CHECK_EQ(iovm_mem_map_translate(rc.map, (uintptr_t)va, NULL), (uintptr_t)va + 1);
		}
		reg[s] = !reg[s];
	}
	atomic_store(&rc.stop, true);
	for (int i = 0; i < READERS + 1; i++)
		CHECK_EQ(pthread_join(th[i], NULL), 0);
	printf("# %lu lookups, %lu in registered memory\n", atomic_load(&rc.lookups), atomic_load(&rc.hits));
	for (unsigned s = 0; s < SLOTS; s++)
		if (reg[s])
			CHECK_OK(iovm_mem_unregister(ctx, rc.app + s * 2 * G, (s % 2 + 1) * G));
	CHECK_OK(iovm_mem_map_free(&rc.map));
	app_unmap(rc.app, SLOTS * 2);
	iovm_close(ctx);
}

/* ---- a device reaches registered memory by its vtophys address ---- */

static int run_one(struct iovm_queue *q, struct iovm_desc d, struct iovm_cqe *cqe)
{
	int ret = iovm_queue_submit(q, &d);

	if (ret)
		return ret;
	if (iovm_queue_process(q, 1) != 1)
		return -EIO;
	return iovm_queue_reap(q, cqe, 1) == 1 ? 0 : -EIO;
}

TEST(a_device_copies_into_registered_memory)
{
	struct iovm_ctx *ctx = open_ctx(OPTS);
	struct iovm_domain_attr attr = { .type = IOVM_DOMAIN_IDENTITY };
	struct iovm_queue_attr qattr = { .depth = 8, .flags = IOVM_QUEUE_POLLED };
	uint8_t *app = app_map(2), *src;
	struct iovm_domain *dom;
	struct iovm_device *dev;
	struct iovm_queue *q;
	struct iovm_cqe cqe;
	uint64_t spa, dpa, size = 8192;

	CHECK_OK(iovm_domain_create(ctx, &attr, &dom));
	CHECK_OK(iovm_device_open(ctx, "sw", &dev));
	CHECK_OK(iovm_device_attach(dev, dom, IOVM_PASID_NONE));
	CHECK_OK(iovm_queue_create(dev, &qattr, &q));
	src = iovm_dma_alloc(ctx, 8192, 4096, IOVM_DMA_CONTIG);
	CHECK(src != NULL);
	memset(src, 0x5c, 8192);
	CHECK_OK(iovm_mem_register(ctx, app, 2 * G));
	spa = iovm_vtophys(ctx, src, &size);
	CHECK_EQ(size, 8192);
	dpa = iovm_vtophys(ctx, app + G - 4096, &size);
	CHECK(spa != IOVM_VTOPHYS_ERROR && dpa != IOVM_VTOPHYS_ERROR);
	/* Across the granule boundary of the registration: one contiguous run of the bus. */
	CHECK_OK(run_one(q, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = spa, .dst = dpa, .len = 8192, .tag = 1 },
			 &cqe));
	CHECK_EQ(cqe.status, IOVM_STATUS_SUCCESS);
	CHECK(memcmp(app + G - 4096, src, 8192) == 0);
	/* Unregistered: the device reaches nothing there any more, and writes nothing. */
	CHECK_OK(iovm_mem_unregister(ctx, app, 2 * G));
	memset(src, 0x77, 8192);
	CHECK_OK(run_one(q, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = spa, .dst = dpa, .len = 8192, .tag = 2 },
			 &cqe));
	CHECK(cqe.status != IOVM_STATUS_SUCCESS);
	CHECK_EQ(app[G - 4096], 0x5c);
	CHECK_OK(iovm_dma_free(ctx, src));
	CHECK_OK(iovm_queue_destroy(q));
	CHECK_OK(iovm_device_close(dev));
	CHECK_OK(iovm_domain_destroy(dom));
	app_unmap(app, 2);
	iovm_close(ctx);
}

/*
 * SPDK's VFIO path: the notify maps each registered range into the IOMMU
 * domain (at an IOVA of the domain's choosing) and keeps the IOVA as the
 * translation; the device copies by IOVA; unregistration unmaps first.
 */
struct iommu_map_ctx {
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	uint64_t mapped;
};

static int iommu_notify(void *cb_ctx, struct iovm_mem_map *map, enum iovm_mem_map_notify_action action, void *vaddr,
			size_t size)
{
	struct iommu_map_ctx *im = cb_ctx;
	uint64_t va = (uintptr_t)vaddr, len = size, pa;
	iovm_iova_t iova = IOVM_IOVA_ANY;

	if (action == IOVM_MEM_MAP_NOTIFY_UNREGISTER) {
		uint64_t tr = iovm_mem_map_translate(map, va, NULL);

		if (tr == IOVM_ADDR_INVALID)
			return 0;
		CHECK_OK(iovm_domain_unmap(im->dom, IOVM_IOVA(tr), size));
		CHECK_OK(iovm_mem_map_clear_translation(map, va, size));
		im->mapped -= size;
		return 0;
	}
	/* The heap's granules: the domain follows the heap by itself where a driver wants that. */
	pa = iovm_vtophys(im->ctx, vaddr, &len);
	if (pa == IOVM_VTOPHYS_ERROR || len < size)
		return 0;
	CHECK_EQ(pa % G, 0);
	CHECK_OK(iovm_domain_map(im->dom, &iova, IOVM_PA(pa), size, IOVM_MAP_READ | IOVM_MAP_WRITE));
	for (uint64_t off = 0; off < size; off += G)
		CHECK_OK(iovm_mem_map_set_translation(map, va + off, G, iova.addr + off));
	im->mapped += size;
	return 0;
}

TEST(a_notify_maps_registrations_into_an_iommu)
{
	struct iovm_ctx *ctx = open_ctx(OPTS);
	struct iovm_domain_attr attr = { .type = IOVM_DOMAIN_MANAGED, .flags = IOVM_DOMAIN_FOLLOW_HEAP };
	struct iovm_queue_attr qattr = { .depth = 8, .flags = IOVM_QUEUE_POLLED };
	struct iovm_mem_map_ops ops = { .notify = iommu_notify, .are_contiguous = next_granule };
	struct iommu_map_ctx im = { .ctx = ctx };
	uint8_t *app = app_map(3), *src;
	struct iovm_mem_map *map;
	struct iovm_device *dev;
	struct iovm_queue *q;
	struct iovm_cqe cqe;
	iovm_iova_t siova;
	uint64_t diova, size = 2 * G;

	CHECK_OK(iovm_domain_create(ctx, &attr, &im.dom));
	CHECK_OK(iovm_device_open(ctx, "sw", &dev));
	CHECK_OK(iovm_device_attach(dev, im.dom, IOVM_PASID_NONE));
	CHECK_OK(iovm_queue_create(dev, &qattr, &q));
	CHECK_OK(iovm_mem_map_alloc(ctx, IOVM_ADDR_INVALID, &ops, &im, &map));
	CHECK_OK(iovm_mem_register(ctx, app, 3 * G));
	CHECK_EQ(im.mapped, 3 * G);
	src = iovm_dma_alloc(ctx, 8192, 4096, 0);
	CHECK(src != NULL);
	memset(src, 0x3e, 8192);
	CHECK_OK(iovm_dma_iova(im.dom, src, &siova));
	/* Across granules of the registration: one IOVA run, as are_contiguous says. */
	diova = iovm_mem_map_translate(map, (uintptr_t)app + G - 4096, &size);
	CHECK(diova != IOVM_ADDR_INVALID);
	CHECK_EQ(size, 2 * G);
	CHECK_OK(run_one(q, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = siova.addr,
						 .dst = diova + G - 4096, .len = 8192, .tag = 1 },
			 &cqe));
	CHECK_EQ(cqe.status, IOVM_STATUS_SUCCESS);
	CHECK(memcmp(app + G - 4096, src, 8192) == 0);
	/* Unregistered: unmapped from the domain before it left, and the device faults there. */
	CHECK_OK(iovm_mem_unregister(ctx, app, 3 * G));
	CHECK_EQ(im.mapped, 0);
	CHECK_OK(run_one(q, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = siova.addr,
						 .dst = diova + G - 4096, .len = 8192, .tag = 2 },
			 &cqe));
	CHECK_EQ(cqe.status, IOVM_STATUS_PAGE_FAULT);
	CHECK_OK(iovm_dma_free(ctx, src));
	CHECK_OK(iovm_mem_map_free(&map));
	CHECK_OK(iovm_queue_destroy(q));
	CHECK_OK(iovm_device_close(dev));
	CHECK_OK(iovm_domain_destroy(im.dom));
	app_unmap(app, 3);
	iovm_close(ctx);
}

TEST(vtophys_edges)
{
	struct iovm_ctx *ctx = open_ctx(OPTS);
	static const uint64_t outside[] = { 0, 4096, UINT64_C(0xffffffe00000), UINT64_C(1) << 48, UINT64_MAX };
	uint64_t size;
	int x;

	errno = 0;
	CHECK_EQ(iovm_vtophys(NULL, &x, NULL), IOVM_VTOPHYS_ERROR);
	CHECK_EQ(errno, EINVAL);
	/* Before any map or registration, and after. */
	for (int round = 0; round < 2; round++) {
		struct iovm_mem_map *map;

		for (size_t i = 0; i < ARRAY_SIZE(outside); i++) {
			size = 123;
			errno = 0;
			CHECK_EQ(iovm_vtophys(ctx, (void *)(uintptr_t)outside[i], &size), IOVM_VTOPHYS_ERROR);
			CHECK_EQ(errno, ENOENT);
			CHECK_EQ(size, 123);
		}
		CHECK_EQ(iovm_vtophys(ctx, &x, NULL), IOVM_VTOPHYS_ERROR);
		CHECK(strstr(iovm_error_detail(), "iovm_vtophys") != NULL);
		if (round == 0)
			CHECK_OK(iovm_mem_map_alloc(ctx, DEF, NULL, NULL, &map));
	}
	iovm_close(ctx);
}

int main(void)
{
	test_init();
	RUN(alloc_free_and_a_failed_alloc_leaves_nothing);
	RUN(translation_at_odd_sizes_boundaries_and_edges);
	RUN(registration_overlaps_and_parts_are_refused);
	RUN(adjacent_registrations_keep_their_pieces);
	RUN(the_heap_is_announced_in_granules);
	RUN(a_vtophys_map_of_hugepages);
	RUN(a_refused_commit_fails_the_allocation);
	RUN(a_notify_may_translate_but_not_allocate_or_register);
	RUN(many_maps_hear_the_same);
	RUN(lookups_race_registrations_without_a_lock);
	RUN(a_device_copies_into_registered_memory);
	RUN(a_notify_maps_registrations_into_an_iommu);
	RUN(vtophys_edges);
	return 0;
}
