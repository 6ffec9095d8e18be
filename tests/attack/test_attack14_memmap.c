/* SPDX-License-Identifier: MIT */
/*
 * test_attack14_memmap.c - SPDK's memory maps (iovm/memmap.h) attacked
 * from the header alone: what a new map hears of memory already there,
 * registrations and their refusals, the edges of the address space,
 * contiguous lengths, what a notify callback may call, lock-free lookups
 * while others register, many maps, maps freed while the heap moves.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include "harness.h"
#include "mem/mem_util.h"
#include "attack/attack.h"

#define G IOVM_MEM_MAP_GRANULE
#define DEF UINT64_C(0xdead0000)

/* A log of one map's notifications, and the granules it holds now. */
#define MAXEV 4096
struct evlog {
	pthread_mutex_t lock;
	unsigned n;
	struct {
		int action;
		uint64_t va, size;
	} ev[MAXEV];
	int refuse;                  /* return this for REGISTER */
	uint64_t refuse_va;          /* ...only for ranges starting here (0: all) */
	int set_tr;                  /* set the translation to the granule's own address */
	struct iovm_ctx *ctx;
	_Atomic int after_free;      /* set when free returned: no call may come after */
	_Atomic unsigned late;       /* calls that came after */
	_Atomic unsigned bad;        /* a range not whole granules */
	_Atomic unsigned vtophys_bad; /* vtophys failed inside UNREGISTER */
	int check_vtophys;
	/* Net REGISTERs per granule, over every event (the log keeps MAXEV). */
	struct {
		uint64_t va;
		int net;
	} gran[8192];
};

static void gran_add(struct evlog *l, uint64_t va, uint64_t size, int d)
{
	for (uint64_t a = va; a < va + size; a += G) {
		unsigned h = (unsigned)((a / G) * 2654435761u) % 8192;

		while (l->gran[h].va && l->gran[h].va != a)
			h = (h + 1) % 8192;
		l->gran[h].va = a;
		l->gran[h].net += d;
	}
}

static int log_notify(void *cb_ctx, struct iovm_mem_map *map, enum iovm_mem_map_notify_action action,
		      void *vaddr, size_t size)
{
	struct evlog *l = cb_ctx;
	uint64_t va = (uint64_t)(uintptr_t)vaddr;

	if (atomic_load(&l->after_free))
		atomic_fetch_add(&l->late, 1);
	if (va % G || size % G || !size)
		atomic_fetch_add(&l->bad, 1);
	if (l->check_vtophys && l->ctx) {
		uint64_t pa = iovm_vtophys(l->ctx, vaddr, NULL);

		if (pa == IOVM_VTOPHYS_ERROR)
			atomic_fetch_add(&l->vtophys_bad, 1);
	}
	if (action == IOVM_MEM_MAP_NOTIFY_REGISTER && l->refuse && (!l->refuse_va || l->refuse_va == va))
		return l->refuse;
	if (l->set_tr) {
		for (uint64_t a = va; a < va + size; a += G) {
			if (action == IOVM_MEM_MAP_NOTIFY_REGISTER)
				iovm_mem_map_set_translation(map, a, G, a);
			else
				iovm_mem_map_clear_translation(map, a, G);
		}
	}
	pthread_mutex_lock(&l->lock);
	gran_add(l, va, size, action == IOVM_MEM_MAP_NOTIFY_REGISTER ? 1 : -1);
	if (l->n < MAXEV) {
		l->ev[l->n].action = action;
		l->ev[l->n].va = va;
		l->ev[l->n].size = size;
	}
	l->n++;
	pthread_mutex_unlock(&l->lock);
	return 0;
}

static void evlog_init(struct evlog *l, struct iovm_ctx *ctx)
{
	memset(l, 0, sizeof(*l));
	pthread_mutex_init(&l->lock, NULL);
	l->ctx = ctx;
}

/* Net registrations covering granule @va: REGISTERs minus UNREGISTERs. */
static int evlog_net(struct evlog *l, uint64_t va)
{
	int net = 0;
	uint64_t a = va & ~(G - 1);

	pthread_mutex_lock(&l->lock);
	for (unsigned h = (unsigned)((a / G) * 2654435761u) % 8192; l->gran[h].va; h = (h + 1) % 8192)
		if (l->gran[h].va == a) {
			net = l->gran[h].net;
			break;
		}
	pthread_mutex_unlock(&l->lock);
	return net;
}

/* Every granule heard of as often REGISTERed as UNREGISTERed. */
static int evlog_balanced(struct evlog *l)
{
	int ok = 1;

	pthread_mutex_lock(&l->lock);
	for (unsigned i = 0; i < 8192; i++)
		if (l->gran[i].va && l->gran[i].net) {
			if (ok)
				fprintf(stderr, "# granule %#llx: net %d\n", (unsigned long long)l->gran[i].va,
					l->gran[i].net);
			ok = 0;
		}
	pthread_mutex_unlock(&l->lock);
	return ok;
}

static const struct iovm_mem_map_ops log_ops = { .notify = log_notify };

/* @n granules of private anonymous memory, granule aligned, touched. */
static void *granules(size_t n)
{
	size_t len = (n + 1) * G;
	uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *a;

	CHECK(p != MAP_FAILED);
	a = (uint8_t *)(((uintptr_t)p + G - 1) & ~(uintptr_t)(G - 1));
	if (a > p)
		munmap(p, (size_t)(a - p));
	if (p + len > a + n * G)
		munmap(a + n * G, (size_t)(p + len - (a + n * G)));
	memset(a, 0x5a, n * G);
	return a;
}

/* A heap granule, committed, that a map must have heard of. */
TEST(alloc_hears_heap_and_registrations)
{
	struct iovm_ctx *ctx = attack_open("page_size=4K");
	struct evlog *l = calloc(1, sizeof(*l));
	struct iovm_mem_map *map = NULL;
	void *ptrs[16];
	void *app = granules(3);

	evlog_init(l, ctx);
	for (int i = 0; i < 16; i++) {
		ptrs[i] = iovm_dma_alloc(ctx, (size_t)(i + 1) * 100000, 4096, 0);
		CHECK(ptrs[i]);
	}
	CHECK_OK(iovm_mem_register(ctx, app, 3 * G));
	CHECK_OK(iovm_mem_map_alloc(ctx, DEF, &log_ops, l, &map));
	EXPECT_EQ(atomic_load(&l->bad), 0);
	/* In address order, each granule once. */
	for (unsigned i = 1; i < l->n && i < MAXEV; i++)
		EXPECT_MSG(l->ev[i].va >= l->ev[i - 1].va + l->ev[i - 1].size,
			   "replay not in address order or overlapping: %#llx+%#llx then %#llx",
			   (unsigned long long)l->ev[i - 1].va, (unsigned long long)l->ev[i - 1].size,
			   (unsigned long long)l->ev[i].va);
	for (int i = 0; i < 16; i++) {
		size_t sz = iovm_dma_size(ctx, ptrs[i]);

		for (uint64_t a = (uintptr_t)ptrs[i] & ~(G - 1); a < (uintptr_t)ptrs[i] + sz; a += G)
			EXPECT_MSG(evlog_net(l, a) == 1, "heap granule %#llx of alloc %d heard %d times",
				   (unsigned long long)a, i, evlog_net(l, a));
	}
	/* The registration as one piece. */
	{
		int found = 0;

		for (unsigned i = 0; i < l->n; i++)
			if (l->ev[i].va == (uintptr_t)app && l->ev[i].size == 3 * G &&
			    l->ev[i].action == IOVM_MEM_MAP_NOTIFY_REGISTER)
				found++;
		EXPECT_EQ(found, 1);
	}
	CHECK_OK(iovm_mem_map_free(&map));
	EXPECT(map == NULL);
	EXPECT(evlog_balanced(l));
	for (int i = 0; i < 16; i++)
		CHECK_OK(iovm_dma_free(ctx, ptrs[i]));
	CHECK_OK(iovm_mem_unregister(ctx, app, 3 * G));
	EXPECT_EQ(atomic_load(&l->late), 0);
	iovm_close(ctx);
	munmap(app, 3 * G);
	free(l);
}

/* Every allocation returns on memory its map already translates (heard before it returns). */
TEST(heap_announced_before_alloc_returns)
{
	struct iovm_ctx *ctx = attack_open("page_size=4K,release_delay_ms=0");
	struct evlog *l = calloc(1, sizeof(*l));
	struct iovm_mem_map *map = NULL;
	uint64_t seed = 14;

	evlog_init(l, ctx);
	l->set_tr = 1;
	l->check_vtophys = 1;
	CHECK_OK(iovm_mem_map_alloc(ctx, DEF, &log_ops, l, &map));
	for (int round = 0; round < 200; round++) {
		size_t sz = 1 + test_rand(&seed) % (5u << 20);
		uint32_t fl = round % 3 == 0 ? IOVM_DMA_CONTIG : 0;
		void *p = iovm_dma_alloc(ctx, sz, 4096, fl);

		CHECK(p);
		for (uint64_t a = (uintptr_t)p & ~(G - 1); a < (uintptr_t)p + sz; a += G) {
			uint64_t tr = iovm_mem_map_translate(map, a + 5, NULL);

			EXPECT_MSG(tr == a, "granule %#llx of a fresh alloc of %zu translates to %#llx",
				   (unsigned long long)a, sz, (unsigned long long)tr);
		}
		if (round % 4 == 0) {
			void *q = iovm_dma_realloc(ctx, p, sz * 3 + 1, 4096, 0);

			CHECK(q);
			p = q;
			for (uint64_t a = (uintptr_t)p & ~(G - 1); a < (uintptr_t)p + sz * 3 + 1; a += G)
				EXPECT_EQ(iovm_mem_map_translate(map, a, NULL), a);
		}
		CHECK_OK(iovm_dma_free(ctx, p));
		if (round % 10 == 0)
			CHECK(iovm_dma_trim(ctx, IOVM_TRIM_ALL) >= 0);
	}
	{
		const struct iovm_zone *z;

		CHECK(iovm_zone_reserve(ctx, "a14z", 3 << 20, 4096, 0, &z) == 0);
		for (uint64_t a = (uintptr_t)z->va & ~(G - 1); a < (uintptr_t)z->va + z->len; a += G)
			EXPECT_EQ(iovm_mem_map_translate(map, a, NULL), a);
		CHECK_OK(iovm_zone_free(ctx, z));
	}
	CHECK(iovm_dma_trim(ctx, IOVM_TRIM_ALL) >= 0);
	EXPECT_EQ(atomic_load(&l->vtophys_bad), 0);
	EXPECT_EQ(atomic_load(&l->bad), 0);
	CHECK_OK(iovm_mem_map_free(&map));
	EXPECT(evlog_balanced(l));
	iovm_close(ctx);
	free(l);
}

TEST(register_refusals)
{
	struct iovm_ctx *ctx = attack_open("page_size=4K");
	uint8_t *a = granules(6);
	void *heap = iovm_dma_alloc(ctx, 4096, 4096, 0);
	uint64_t hg = (uintptr_t)heap & ~(G - 1);

	CHECK(heap);
	CHECK_RET(iovm_mem_register(NULL, a, G), -EINVAL);
	CHECK_RET(iovm_mem_register(ctx, NULL, G), -EINVAL);
	CHECK_RET(iovm_mem_register(ctx, a, 0), -EINVAL);
	CHECK_RET(iovm_mem_register(ctx, a + 4096, G), -EINVAL);
	CHECK_RET(iovm_mem_register(ctx, a, G + 4096), -EINVAL);
	CHECK_RET(iovm_mem_register(ctx, (void *)(uintptr_t)hg, G), -EBUSY);
	/* Wrapping lengths and ranges past 2^48. */
	CHECK_RET(iovm_mem_register(ctx, a, (size_t)0 - G), -EINVAL);
	CHECK_RET(iovm_mem_register(ctx, (void *)(uintptr_t)(IOVM_MEM_MAP_VA_LIMIT - G), 2 * G), -EINVAL);
	CHECK_RET(iovm_mem_register(ctx, (void *)(uintptr_t)IOVM_MEM_MAP_VA_LIMIT, G), -EINVAL);

	CHECK_OK(iovm_mem_register(ctx, a + G, 2 * G));
	CHECK_RET(iovm_mem_register(ctx, a + G, 2 * G), -EBUSY);
	CHECK_RET(iovm_mem_register(ctx, a, 2 * G), -EBUSY);
	CHECK_RET(iovm_mem_register(ctx, a + 2 * G, 2 * G), -EBUSY);
	CHECK_RET(iovm_mem_register(ctx, a, 4 * G), -EBUSY);
	CHECK_OK(iovm_mem_register(ctx, a + 3 * G, G));
	CHECK_OK(iovm_mem_register(ctx, a, G));
	/* Partial: -ERANGE; memory not registered: -EINVAL. */
	CHECK_RET(iovm_mem_unregister(ctx, a + G, G), -ERANGE);
	CHECK_RET(iovm_mem_unregister(ctx, a + 2 * G, G), -ERANGE);
	CHECK_RET(iovm_mem_unregister(ctx, a + 4 * G, G), -EINVAL);
	CHECK_RET(iovm_mem_unregister(ctx, a + 3 * G, 2 * G), -EINVAL);
	CHECK_RET(iovm_mem_unregister(ctx, a + 4096, G), -EINVAL);
	CHECK_RET(iovm_mem_unregister(ctx, a, 0), -EINVAL);
	CHECK_RET(iovm_mem_unregister(ctx, (void *)(uintptr_t)hg, G), -EINVAL);
	/* All still registered after the refusals. */
	for (int i = 0; i < 4; i++)
		EXPECT_MSG(iovm_vtophys(ctx, a + (size_t)i * G + 7, NULL) != IOVM_VTOPHYS_ERROR,
			   "granule %d lost its PA after refused unregisters", i);
	/* Whole adjacent registrations at once. */
	CHECK_OK(iovm_mem_unregister(ctx, a, 4 * G));
	for (int i = 0; i < 4; i++) {
		uint64_t sz = 77;

		errno = 0;
		EXPECT_EQ(iovm_vtophys(ctx, a + (size_t)i * G, &sz), IOVM_VTOPHYS_ERROR);
		EXPECT_EQ(errno, ENOENT);
		EXPECT_EQ(sz, 77);
	}
	/* Part of it not mapped: -EFAULT, and nothing left of it. */
	CHECK(munmap(a + 4 * G, G) == 0);
	CHECK_RET(iovm_mem_register(ctx, a + 3 * G, 3 * G), -EFAULT);
	EXPECT_EQ(iovm_vtophys(ctx, a + 3 * G, NULL), IOVM_VTOPHYS_ERROR);
	CHECK_OK(iovm_mem_register(ctx, a + 3 * G, G));
	CHECK_OK(iovm_mem_unregister(ctx, a + 3 * G, G));
	CHECK_OK(iovm_dma_free(ctx, heap));
	iovm_close(ctx);
	munmap(a, 4 * G);
	munmap(a + 5 * G, G);
}

/* vtophys of a registration: contiguous over all of it, 2 MiB aligned, emulated. */
TEST(vtophys_registered)
{
	struct iovm_ctx *ctx = attack_open("page_size=4K");
	uint8_t *a = granules(5);
	uint64_t pa0, sz;

	CHECK_OK(iovm_mem_register(ctx, a, 3 * G));
	CHECK_OK(iovm_mem_register(ctx, a + 3 * G, 2 * G));
	pa0 = iovm_vtophys(ctx, a, NULL);
	CHECK(pa0 != IOVM_VTOPHYS_ERROR);
	EXPECT_EQ(pa0 % G, 0);
	for (uint64_t off = 0; off < 3 * G; off += 12345) {
		sz = UINT64_MAX;
		EXPECT_EQ(iovm_vtophys(ctx, a + off, &sz), pa0 + off);
		EXPECT_MSG(sz >= 3 * G - off, "contiguous from +%#llx: %#llx < %#llx",
			   (unsigned long long)off, (unsigned long long)sz, (unsigned long long)(3 * G - off));
		sz = 100;
		iovm_vtophys(ctx, a + off, &sz);
		EXPECT_EQ(sz, 100);
	}
	{
		uint64_t pa1 = iovm_vtophys(ctx, a + 3 * G, NULL);

		EXPECT_EQ(pa1 % G, 0);
		EXPECT(pa1 + 2 * G <= pa0 || pa1 >= pa0 + 3 * G);
		EXPECT_EQ(iovm_pa_is_host(ctx, IOVM_PA(pa0 + 5)), 0);
		EXPECT_EQ(iovm_pa_is_host(ctx, IOVM_PA(pa1 + G)), 0);
	}
	errno = 0;
	EXPECT_EQ(iovm_vtophys(NULL, a, NULL), IOVM_VTOPHYS_ERROR);
	EXPECT_EQ(errno, EINVAL);
	errno = 0;
	sz = 9;
	EXPECT_EQ(iovm_vtophys(ctx, (void *)(uintptr_t)(IOVM_MEM_MAP_VA_LIMIT + 5), &sz), IOVM_VTOPHYS_ERROR);
	EXPECT_EQ(errno, ENOENT);
	EXPECT_EQ(sz, 9);
	errno = 0;
	EXPECT_EQ(iovm_vtophys(ctx, (void *)UINTPTR_MAX, NULL), IOVM_VTOPHYS_ERROR);
	EXPECT_EQ(errno, ENOENT);
	errno = 0;
	EXPECT_EQ(iovm_vtophys(ctx, NULL, NULL), IOVM_VTOPHYS_ERROR);
	EXPECT_EQ(errno, ENOENT);
	/* The heap: vtophys agrees with iovm_dma_xlate(), and its contig. */
	{
		uint8_t *h = iovm_dma_alloc(ctx, 300000, 64, 0);
		struct iovm_dma_xlate x;

		CHECK(h);
		CHECK_OK(iovm_dma_xlate(ctx, h + 1000, &x));
		sz = UINT64_MAX;
		EXPECT_EQ(iovm_vtophys(ctx, h + 1000, &sz), x.pa.addr);
		EXPECT_EQ(sz, x.contig);
		CHECK_OK(iovm_dma_free(ctx, h));
	}
	CHECK_OK(iovm_mem_unregister(ctx, a, 5 * G));
	iovm_close(ctx);
	munmap(a, 5 * G);
}

/* A refused registration is undone whole: the maps that took it hear it go. */
TEST(notify_refuses)
{
	struct iovm_ctx *ctx = attack_open("page_size=4K");
	struct evlog *l1 = calloc(1, sizeof(*l1)), *l2 = calloc(1, sizeof(*l2)), *l3 = calloc(1, sizeof(*l3));
	struct iovm_mem_map *m1 = NULL, *m2 = NULL, *m3 = NULL;
	uint8_t *a = granules(2);

	evlog_init(l1, ctx);
	evlog_init(l2, ctx);
	evlog_init(l3, ctx);
	CHECK_OK(iovm_mem_map_alloc(ctx, DEF, &log_ops, l1, &m1));
	CHECK_OK(iovm_mem_map_alloc(ctx, DEF, &log_ops, l2, &m2));
	CHECK_OK(iovm_mem_map_alloc(ctx, DEF, &log_ops, l3, &m3));
	l2->refuse = -ENOSPC;
	l2->refuse_va = (uintptr_t)a;
	CHECK_RET(iovm_mem_register(ctx, a, 2 * G), -ENOSPC);
	EXPECT_EQ(evlog_net(l1, (uintptr_t)a), 0);
	EXPECT_EQ(evlog_net(l2, (uintptr_t)a), 0);
	EXPECT_EQ(evlog_net(l3, (uintptr_t)a), 0);
	EXPECT_EQ(iovm_vtophys(ctx, a, NULL), IOVM_VTOPHYS_ERROR);
	CHECK_RET(iovm_mem_unregister(ctx, a, 2 * G), -EINVAL);
	/* A positive refusal counts as -EIO. */
	l2->refuse = 7;
	CHECK_RET(iovm_mem_register(ctx, a, 2 * G), -EIO);
	EXPECT_EQ(evlog_net(l1, (uintptr_t)a + G), 0);
	l2->refuse = 0;
	CHECK_OK(iovm_mem_register(ctx, a, 2 * G));
	EXPECT_EQ(evlog_net(l2, (uintptr_t)a + G), 1);
	/* A map refusing at creation is not made, and what it took is withdrawn. */
	{
		struct evlog *l4 = calloc(1, sizeof(*l4));
		struct iovm_mem_map *m4 = (void *)0x1;

		evlog_init(l4, ctx);
		l4->refuse = -EPERM;
		l4->refuse_va = (uintptr_t)a;
		/* Something before it in address order for it to accept first. */
		void *h = iovm_dma_alloc(ctx, 4096, 0, 0);

		CHECK(h);
		CHECK_RET(iovm_mem_map_alloc(ctx, DEF, &log_ops, l4, &m4), -EPERM);
		EXPECT(evlog_balanced(l4));
		CHECK_OK(iovm_dma_free(ctx, h));
		free(l4);
	}
	/* The heap's commit refused: the allocation fails. */
	{
		l3->refuse = -ENOMEM;
		l3->refuse_va = 0;
		CHECK(iovm_dma_trim(ctx, IOVM_TRIM_ALL) >= 0);
		errno = 0;
		void *big = iovm_dma_alloc(ctx, 8u << 20, 4096, 0);

		EXPECT_MSG(big == NULL, "an allocation whose commit a map refused succeeded");
		if (big)
			iovm_dma_free(ctx, big);
		l3->refuse = 0;
	}
	CHECK_OK(iovm_mem_unregister(ctx, a, 2 * G));
	CHECK_OK(iovm_mem_map_free(&m1));
	CHECK_OK(iovm_mem_map_free(&m2));
	CHECK_OK(iovm_mem_map_free(&m3));
	EXPECT(evlog_balanced(l1));
	EXPECT(evlog_balanced(l2));
	EXPECT(evlog_balanced(l3));
	CHECK_RET(iovm_mem_map_free(NULL), -EINVAL);
	{
		struct iovm_mem_map *none = NULL;

		CHECK_RET(iovm_mem_map_free(&none), 0);
	}
	iovm_close(ctx);
	munmap(a, 2 * G);
	free(l1);
	free(l2);
	free(l3);
}

/* Edges of the address space. */
static int contig_iova(void *c, uint64_t t1, uint64_t t2)
{
	(void)c;
	return t2 == t1 + G;
}

static int contig_always(void *c, uint64_t t1, uint64_t t2)
{
	(void)c;
	(void)t1;
	(void)t2;
	return 1;
}

TEST(set_translate_edges)
{
	struct iovm_ctx *ctx = attack_open("page_size=4K");
	struct iovm_mem_map_ops ops = { .are_contiguous = contig_iova };
	struct iovm_mem_map *m = NULL;
	const uint64_t L = IOVM_MEM_MAP_VA_LIMIT;
	uint64_t sz;

	CHECK_OK(iovm_mem_map_alloc(ctx, DEF, &ops, NULL, &m));
	CHECK_RET(iovm_mem_map_set_translation(NULL, G, G, 1), -EINVAL);
	CHECK_RET(iovm_mem_map_set_translation(m, G, 0, 1), -EINVAL);
	CHECK_RET(iovm_mem_map_set_translation(m, G + 1, G, 1), -EINVAL);
	CHECK_RET(iovm_mem_map_set_translation(m, G, G + 4096, 1), -EINVAL);
	CHECK_RET(iovm_mem_map_set_translation(m, L, G, 1), -EINVAL);
	CHECK_RET(iovm_mem_map_set_translation(m, L - G, 2 * G, 1), -EINVAL);
	CHECK_RET(iovm_mem_map_set_translation(m, G, UINT64_MAX & ~(G - 1), 1), -EINVAL);
	CHECK_RET(iovm_mem_map_set_translation(m, UINT64_MAX & ~(G - 1), G, 1), -EINVAL);
	CHECK_RET(iovm_mem_map_set_translation(m, L - G, (UINT64_MAX & ~(G - 1)) - (L - 2 * G), 1), -EINVAL);
	CHECK_RET(iovm_mem_map_clear_translation(m, L - G, 2 * G), -EINVAL);
	CHECK_RET(iovm_mem_map_clear_translation(m, G, 0), -EINVAL);
	CHECK_RET(iovm_mem_map_clear_translation(NULL, G, G), -EINVAL);
	/* No refused call left anything. */
	EXPECT_EQ(iovm_mem_map_translate(m, G, NULL), DEF);
	EXPECT_EQ(iovm_mem_map_translate(m, L - G, NULL), DEF);

	/* The last granule; and address 0. */
	CHECK_OK(iovm_mem_map_set_translation(m, L - G, G, 0x1234));
	CHECK_OK(iovm_mem_map_set_translation(m, 0, G, 0x4321));
	EXPECT_EQ(iovm_mem_map_translate(m, L - 1, NULL), 0x1234);
	EXPECT_EQ(iovm_mem_map_translate(m, 0, NULL), 0x4321);
	EXPECT_EQ(iovm_mem_map_translate(m, G - 1, NULL), 0x4321);
	EXPECT_EQ(iovm_mem_map_translate(m, G, NULL), DEF);
	sz = 10 * G;
	EXPECT_EQ(iovm_mem_map_translate(m, L - G + 5, &sz), 0x1234);
	EXPECT_EQ(sz, G - 5);
	sz = 10 * G;
	EXPECT_EQ(iovm_mem_map_translate(m, L, &sz), DEF);
	EXPECT_EQ(sz, G);
	sz = 10 * G;
	EXPECT_EQ(iovm_mem_map_translate(m, L + 7, &sz), DEF);
	EXPECT_EQ(sz, G - 7);
	sz = 100;
	EXPECT_EQ(iovm_mem_map_translate(m, UINT64_MAX - 5, &sz), DEF);
	EXPECT_EQ(sz, 6);
	sz = UINT64_MAX;
	EXPECT_EQ(iovm_mem_map_translate(m, UINT64_MAX, &sz), DEF);
	EXPECT_EQ(sz, 1);
	/* Unset memory below the limit: default, cut to the granule. */
	sz = 5 * G;
	EXPECT_EQ(iovm_mem_map_translate(m, 7 * G + 3, &sz), DEF);
	EXPECT_EQ(sz, G - 3);
	/* Size 0 stays 0. */
	sz = 0;
	EXPECT_EQ(iovm_mem_map_translate(m, L - G, &sz), 0x1234);
	EXPECT_EQ(sz, 0);
	/* NULL map: invalid, errno EINVAL, size untouched. */
	sz = 42;
	errno = 0;
	EXPECT_EQ(iovm_mem_map_translate(NULL, G, &sz), IOVM_ADDR_INVALID);
	EXPECT_EQ(errno, EINVAL);
	EXPECT_EQ(sz, 42);

	/* Contiguous runs: IOVA style over 3 granules, then a break. */
	uint64_t A = 64 * G;

	CHECK_OK(iovm_mem_map_set_translation(m, A, G, 0x100000000ull));
	CHECK_OK(iovm_mem_map_set_translation(m, A + G, G, 0x100000000ull + G));
	CHECK_OK(iovm_mem_map_set_translation(m, A + 2 * G, G, 0x100000000ull + 2 * G));
	CHECK_OK(iovm_mem_map_set_translation(m, A + 3 * G, G, 0x100000000ull + 2 * G)); /* not contiguous */
	sz = UINT64_MAX;
	EXPECT_EQ(iovm_mem_map_translate(m, A + 100, &sz), 0x100000000ull);
	EXPECT_EQ(sz, 3 * G - 100);
	sz = 2 * G;
	EXPECT_EQ(iovm_mem_map_translate(m, A + 100, &sz), 0x100000000ull);
	EXPECT_EQ(sz, 2 * G);
	sz = UINT64_MAX - 3;
	EXPECT_EQ(iovm_mem_map_translate(m, A + G + 1, &sz), 0x100000000ull + G);
	EXPECT_EQ(sz, 2 * G - 1);
	/* Clearing the middle breaks the run. */
	CHECK_OK(iovm_mem_map_clear_translation(m, A + G, G));
	sz = UINT64_MAX;
	EXPECT_EQ(iovm_mem_map_translate(m, A, &sz), 0x100000000ull);
	EXPECT_EQ(sz, G);
	CHECK_OK(iovm_mem_map_free(&m));

	/* are_contiguous always yes: never into a granule with the default. */
	ops.are_contiguous = contig_always;
	CHECK_OK(iovm_mem_map_alloc(ctx, DEF, &ops, NULL, &m));
	CHECK_OK(iovm_mem_map_set_translation(m, L - 3 * G, 3 * G, 77));
	sz = UINT64_MAX;
	EXPECT_EQ(iovm_mem_map_translate(m, L - 3 * G, &sz), 77);
	EXPECT_MSG(sz == 3 * G, "run to the top of the map: %#llx, expected %#llx", (unsigned long long)sz,
		   (unsigned long long)(3 * G));
	CHECK_OK(iovm_mem_map_set_translation(m, A, 2 * G, 5));
	sz = UINT64_MAX;
	EXPECT_EQ(iovm_mem_map_translate(m, A, &sz), 5);
	EXPECT_EQ(sz, 2 * G);
	/* A translation set to the default's own value is a default granule. */
	CHECK_OK(iovm_mem_map_set_translation(m, A + 2 * G, G, DEF));
	sz = UINT64_MAX;
	EXPECT_EQ(iovm_mem_map_translate(m, A + G, &sz), 5);
	EXPECT_EQ(sz, G);
	/* Set over a big span (1 GiB boundaries crossed), all-or-nothing. */
	CHECK_OK(iovm_mem_map_set_translation(m, (1ull << 30) - G, 3ull << 30, 9));
	sz = UINT64_MAX;
	EXPECT_EQ(iovm_mem_map_translate(m, (1ull << 30) - G, &sz), 9);
	EXPECT_EQ(sz, 3ull << 30);
	CHECK_OK(iovm_mem_map_clear_translation(m, 1ull << 30, 1ull << 30));
	EXPECT_EQ(iovm_mem_map_translate(m, (1ull << 30) + 5 * G, NULL), DEF);
	EXPECT_EQ(iovm_mem_map_translate(m, (2ull << 30), NULL), 9);
	CHECK_OK(iovm_mem_map_free(&m));
	iovm_close(ctx);
}

/* What a notify callback may call, and what it may not. */
struct inside {
	struct iovm_ctx *ctx;
	struct iovm_mem_map *other;
	uint8_t *spare;
	int ran;
	int reg, unreg, alloc_ret, free_ret, dma_errno, dfree, set_other, set_self, tr_self, vtophys_ok,
		xlate, mfree, trim, zone;
};

static int inside_notify(void *cb_ctx, struct iovm_mem_map *map, enum iovm_mem_map_notify_action action,
			 void *vaddr, size_t size)
{
	struct inside *s = cb_ctx;
	struct iovm_mem_map *m2 = NULL;
	struct iovm_dma_xlate x;
	const struct iovm_zone *z;
	void *p;

	if (action != IOVM_MEM_MAP_NOTIFY_REGISTER || s->ran || vaddr != (void *)(s->spare + G))
		return 0;
	s->ran = 1;
	s->reg = iovm_mem_register(s->ctx, s->spare + 4 * G, G);
	s->unreg = iovm_mem_unregister(s->ctx, s->spare, G);
	s->alloc_ret = iovm_mem_map_alloc(s->ctx, 0, NULL, NULL, &m2);
	errno = 0;
	p = iovm_dma_alloc(s->ctx, 64, 0, 0);
	s->dma_errno = p ? 0 : errno;
	s->dfree = p ? iovm_dma_free(s->ctx, p) : 0;
	s->mfree = iovm_mem_map_free(&s->other);
	s->trim = (int)iovm_dma_trim(s->ctx, IOVM_TRIM_ALL);
	s->zone = iovm_zone_reserve(s->ctx, "a14inside", 4096, 0, 0, &z);
	s->set_other = iovm_mem_map_set_translation(s->other ? s->other : map, 10 * G, G, 3);
	s->set_self = iovm_mem_map_set_translation(map, (uintptr_t)vaddr, size, 11);
	s->tr_self = iovm_mem_map_translate(map, (uintptr_t)vaddr, NULL) == 11;
	s->vtophys_ok = iovm_vtophys(s->ctx, vaddr, NULL) != IOVM_VTOPHYS_ERROR;
	s->xlate = iovm_dma_xlate(s->ctx, vaddr, &x);
	return 0;
}

TEST(notify_may_and_may_not)
{
	struct iovm_ctx *ctx = attack_open("page_size=4K");
	struct inside s = { .ctx = ctx };
	struct iovm_mem_map_ops ops = { .notify = inside_notify };
	struct iovm_mem_map *m = NULL;
	void *heap = iovm_dma_alloc(ctx, 64, 0, 0);

	CHECK(heap);
	s.spare = granules(5);
	CHECK_OK(iovm_mem_register(ctx, s.spare, G));
	CHECK_OK(iovm_mem_map_alloc(ctx, DEF, NULL, NULL, &s.other));
	CHECK_OK(iovm_mem_map_alloc(ctx, DEF, &ops, &s, &m));
	CHECK_OK(iovm_mem_register(ctx, s.spare + G, 2 * G));
	CHECK(s.ran);
	EXPECT_EQ(s.reg, -EDEADLK);
	EXPECT_EQ(s.unreg, -EDEADLK);
	EXPECT_EQ(s.alloc_ret, -EDEADLK);
	EXPECT_EQ(s.dma_errno, EDEADLK);
	EXPECT_EQ(s.mfree, -EDEADLK);
	EXPECT_MSG(s.trim == -EDEADLK, "iovm_dma_trim() from a notify: %d", s.trim);
	EXPECT_MSG(s.zone == -EDEADLK, "iovm_zone_reserve() from a notify: %d", s.zone);
	EXPECT_EQ(s.set_other, 0);
	EXPECT_EQ(s.set_self, 0);
	EXPECT(s.tr_self);
	EXPECT(s.vtophys_ok);
	EXPECT_EQ(s.xlate, -ENOENT);
	EXPECT(s.other != NULL);
	/* Nothing the refused calls would have done happened. */
	EXPECT_EQ(iovm_vtophys(ctx, s.spare + 4 * G, NULL), IOVM_VTOPHYS_ERROR);
	EXPECT(iovm_vtophys(ctx, s.spare, NULL) != IOVM_VTOPHYS_ERROR);
	EXPECT_EQ(iovm_mem_map_translate(m, (uintptr_t)s.spare + 2 * G, NULL), 11);
	EXPECT_EQ(iovm_mem_map_translate(s.other, 10 * G, NULL), 3);
	/* Free from the heap's own notify (commit). */
	CHECK_OK(iovm_mem_map_free(&m));
	CHECK_OK(iovm_mem_map_free(&s.other));
	CHECK_OK(iovm_mem_unregister(ctx, s.spare, 3 * G));
	CHECK_OK(iovm_dma_free(ctx, heap));
	iovm_close(ctx);
	munmap(s.spare, 5 * G);
}

/* Lock-free lookups while other threads register and unregister. */
struct race {
	struct iovm_ctx *ctx;
	struct iovm_mem_map *map;
	uint8_t *stable, *churn;
	_Atomic int stop;
	_Atomic unsigned long bad, looks, regs;
};

static void *race_reader(void *arg)
{
	struct race *r = arg;

	while (!atomic_load(&r->stop)) {
		uint64_t sz = 4 * G;
		uint64_t t = iovm_mem_map_translate(r->map, (uintptr_t)r->stable + G + 3, &sz);
		uint64_t c = iovm_mem_map_translate(r->map, (uintptr_t)r->churn + 5, NULL);
		uint64_t pa = iovm_vtophys(r->ctx, r->stable + 12345, NULL);

		if (t != (uintptr_t)r->stable + G || sz != G - 3)
			atomic_fetch_add(&r->bad, 1);
		if (c != DEF && c != (uintptr_t)r->churn)
			atomic_fetch_add(&r->bad, 1);
		if (pa == IOVM_VTOPHYS_ERROR)
			atomic_fetch_add(&r->bad, 1);
		atomic_fetch_add(&r->looks, 1);
	}
	return NULL;
}

static void *race_writer(void *arg)
{
	struct race *r = arg;

	for (int i = 0; i < 3000 && !atomic_load(&r->stop); i++) {
		if (iovm_mem_register(r->ctx, r->churn, 2 * G) == 0) {
			atomic_fetch_add(&r->regs, 1);
			iovm_mem_unregister(r->ctx, r->churn, 2 * G);
		}
	}
	return NULL;
}

TEST(translate_while_registering)
{
	struct iovm_ctx *ctx = attack_open("page_size=4K");
	struct evlog *l = calloc(1, sizeof(*l));
	struct race r = { .ctx = ctx };
	pthread_t rd[2], wr;

	evlog_init(l, ctx);
	l->set_tr = 1;
	r.stable = granules(3);
	r.churn = granules(2);
	CHECK_OK(iovm_mem_map_alloc(ctx, DEF, &log_ops, l, &r.map));
	CHECK_OK(iovm_mem_register(ctx, r.stable, 3 * G));
	CHECK(pthread_create(&rd[0], NULL, race_reader, &r) == 0);
	CHECK(pthread_create(&rd[1], NULL, race_reader, &r) == 0);
	CHECK(pthread_create(&wr, NULL, race_writer, &r) == 0);
	pthread_join(wr, NULL);
	atomic_store(&r.stop, 1);
	pthread_join(rd[0], NULL);
	pthread_join(rd[1], NULL);
	EXPECT(atomic_load(&r.regs) > 0);
	EXPECT(atomic_load(&r.looks) > 0);
	EXPECT_MSG(atomic_load(&r.bad) == 0, "%lu wrong lookups of %lu", atomic_load(&r.bad),
		   atomic_load(&r.looks));
	CHECK_OK(iovm_mem_unregister(ctx, r.stable, 3 * G));
	CHECK_OK(iovm_mem_map_free(&r.map));
	EXPECT(evlog_balanced(l));
	iovm_close(ctx);
	munmap(r.stable, 3 * G);
	munmap(r.churn, 2 * G);
	free(l);
}

/* Many maps, made and freed while another thread makes the heap come and go. */
struct churn {
	struct iovm_ctx *ctx;
	_Atomic int stop;
};

static void *heap_churn(void *arg)
{
	struct churn *c = arg;
	uint64_t seed = 99;

	while (!atomic_load(&c->stop)) {
		void *p = iovm_dma_alloc(c->ctx, 1 + test_rand(&seed) % (6u << 20), 4096, 0);

		if (p)
			iovm_dma_free(c->ctx, p);
		iovm_dma_trim(c->ctx, IOVM_TRIM_ALL);
	}
	return NULL;
}

TEST(many_maps_heap_moving)
{
	struct iovm_ctx *ctx = attack_open("page_size=4K,release_delay_ms=0");
	enum { NM = 48 };
	struct evlog *l = calloc(NM, sizeof(*l));
	struct iovm_mem_map *m[NM] = { 0 };
	struct churn c = { .ctx = ctx };
	pthread_t t;
	uint8_t *a = granules(2);

	CHECK(pthread_create(&t, NULL, heap_churn, &c) == 0);
	for (int round = 0; round < 6; round++) {
		for (int i = 0; i < NM; i++) {
			evlog_init(&l[i], ctx);
			l[i].check_vtophys = 1;
			CHECK_OK(iovm_mem_map_alloc(ctx, DEF, &log_ops, &l[i], &m[i]));
		}
		CHECK_OK(iovm_mem_register(ctx, a, 2 * G));
		for (int i = 0; i < NM; i++)
			EXPECT_EQ(evlog_net(&l[i], (uintptr_t)a + G), 1);
		CHECK_OK(iovm_mem_unregister(ctx, a, 2 * G));
		for (int i = 0; i < NM; i++) {
			CHECK_OK(iovm_mem_map_free(&m[i]));
			atomic_store(&l[i].after_free, 1);
		}
		/* The heap keeps moving: no freed map may hear of it. */
		usleep(2000);
		for (int i = 0; i < NM; i++) {
			EXPECT_EQ(atomic_load(&l[i].late), 0);
			EXPECT_EQ(atomic_load(&l[i].bad), 0);
			EXPECT_EQ(atomic_load(&l[i].vtophys_bad), 0);
			EXPECT_MSG(evlog_balanced(&l[i]), "map %d of round %d unbalanced (%u events)", i,
				   round, l[i].n);
		}
	}
	atomic_store(&c.stop, 1);
	pthread_join(t, NULL);
	/* Maps left at close are freed without a word. */
	evlog_init(&l[0], ctx);
	CHECK_OK(iovm_mem_map_alloc(ctx, DEF, &log_ops, &l[0], &m[0]));
	{
		unsigned before = l[0].n;

		iovm_close(ctx);
		EXPECT_EQ(l[0].n, before);
	}
	munmap(a, 2 * G);
	free(l);
}

/* Unregistering several adjacent registrations: one UNREGISTER per registration, as registered. */
TEST(unregister_pieces)
{
	struct iovm_ctx *ctx = attack_open("page_size=4K");
	struct evlog *l = calloc(1, sizeof(*l));
	struct iovm_mem_map *m = NULL;
	uint8_t *a = granules(4);

	evlog_init(l, ctx);
	l->check_vtophys = 1;
	CHECK_OK(iovm_mem_map_alloc(ctx, DEF, &log_ops, l, &m));
	CHECK_OK(iovm_mem_register(ctx, a, G));
	CHECK_OK(iovm_mem_register(ctx, a + G, 3 * G));
	l->n = 0;
	CHECK_OK(iovm_mem_unregister(ctx, a, 4 * G));
	EXPECT_EQ(l->n, 2);
	if (l->n == 2) {
		int got_a = 0, got_b = 0;

		for (int i = 0; i < 2; i++) {
			EXPECT_EQ(l->ev[i].action, IOVM_MEM_MAP_NOTIFY_UNREGISTER);
			got_a += l->ev[i].va == (uintptr_t)a && l->ev[i].size == G;
			got_b += l->ev[i].va == (uintptr_t)a + G && l->ev[i].size == 3 * G;
		}
		EXPECT(got_a == 1 && got_b == 1);
	}
	EXPECT_EQ(atomic_load(&l->vtophys_bad), 0);
	CHECK_OK(iovm_mem_map_free(&m));
	iovm_close(ctx);
	munmap(a, 4 * G);
	free(l);
}

/* Registration at the top of user space (x86-64: 2^47). */
TEST(register_top_of_user_space)
{
	struct iovm_ctx *ctx = attack_open("page_size=4K");
	uint64_t top = UINT64_C(1) << 47;
	void *want = (void *)(uintptr_t)(top - 2 * G);
	void *p = mmap(want, G, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	uint64_t sz = UINT64_MAX;

	if (p == MAP_FAILED || p != want) {
		if (p != MAP_FAILED)
			munmap(p, G);
		iovm_close(ctx);
		SKIP_CASE("cannot map at %p", want);
	}
	memset(p, 1, G);
	CHECK_OK(iovm_mem_register(ctx, p, G));
	EXPECT(iovm_vtophys(ctx, (uint8_t *)p + G - 1, &sz) != IOVM_VTOPHYS_ERROR);
	EXPECT_EQ(sz, 1);
	CHECK_OK(iovm_mem_unregister(ctx, p, G));
	munmap(p, G);
	iovm_close(ctx);
}

int main(void)
{
	test_init();
	RUN(alloc_hears_heap_and_registrations);
	RUN(heap_announced_before_alloc_returns);
	RUN(register_refusals);
	RUN(vtophys_registered);
	RUN(notify_refuses);
	RUN(set_translate_edges);
	RUN(notify_may_and_may_not);
	RUN(translate_while_registering);
	RUN(many_maps_heap_moving);
	RUN(unregister_pieces);
	RUN(register_top_of_user_space);
	return attack_status();
}
