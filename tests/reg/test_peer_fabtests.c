/* SPDX-License-Identifier: MIT */
/*
 * test_peer_fabtests.c - libfabric's fabtests mr_cache_evict scenario
 * (fabtests/unit/mr_cache_evict.c), re-expressed for iovm's registration
 * cache: a buffer is registered twice (the second time a cache hit), freed
 * while both registrations are still held, allocated again at the same
 * address, and registered a third time. The cache must not hand back the
 * stale registration: the third is a new one that reaches the new memory,
 * and the first two reach nothing. For memory from mmap (at a reused
 * address), from brk() and sbrk(), and from glibc's malloc(), at sizes
 * from one odd page to 8 MiB. fabtests tells a hit from a miss by timing;
 * here the keys tell, and DMA through the engine checks what each MR
 * reaches.
 */
#include <malloc.h>

#include "reg/test_peer_util.h"

static struct env E;
static struct iovm_rcache *C;

enum alloc_type { MMAP, BRK, SBRK, MALLOC };

static const char *const type_name[] = { "mmap", "brk", "sbrk", "malloc" };

static uint8_t *reuse_addr;

/* One outstanding allocation at a time, as fabtests': freed and allocated again at the same address. */
static uint8_t *mem_alloc(enum alloc_type type, size_t len)
{
	void *p;

	switch (type) {
	case MMAP:
		if (!reuse_addr)
			return reuse_addr = far_map(len);
		return remap_same(reuse_addr, len) ? reuse_addr : NULL;
	case BRK:
		p = sbrk(0);
		if (p == (void *)-1 || brk((uint8_t *)p + len))
			return NULL;
		return p;
	case SBRK:
		p = sbrk((intptr_t)len);
		return p == (void *)-1 ? NULL : p;
	case MALLOC:
		return malloc(len);
	}
	return NULL;
}

static void mem_free(enum alloc_type type, uint8_t *p, size_t len)
{
	switch (type) {
	case MMAP:
		CHECK(munmap(p, len) == 0);
		break;
	case BRK:
		CHECK(brk(p) == 0);
		CHECK(sbrk(0) == p);
		break;
	case SBRK:
		CHECK(sbrk(-(intptr_t)len) != (void *)-1);
		CHECK(sbrk(0) == p);
		break;
	case MALLOC:
		free(p);
		break;
	}
}

/* Whether freeing gives the memory back to the kernel (so that the next allocation is new memory). */
static bool gives_back(enum alloc_type type, const uint8_t *p)
{
	return type != MALLOC || (TEST_GLIBC_MALLOC && glibc_mmapped(p));
}

static void mr_cache_evict(enum alloc_type type, size_t len)
{
	struct iovm_mr *mr, *cached, *again;
	struct iovm_mr_info first;
	uint8_t *buf, *prev;
	bool back;
	int ret;

	reuse_addr = NULL;
	buf = mem_alloc(type, len);
	CHECK(buf != NULL);
	fill_random(buf, len, len ^ type);
	ret = iovm_rcache_get(C, buf, len, ALL_RIGHTS, &mr);
	if (ret == -ENOMEM && memlock_limited()) {
		mem_free(type, buf, len);
		printf("# %s %zu: cannot be locked (RLIMIT_MEMLOCK), not checked\n", type_name[type], len);
		return;
	}
	CHECK_OK(ret);
	first = mr_info(mr);
	CHECK_OK(iovm_rcache_get(C, buf, len, ALL_RIGHTS, &cached));
	CHECK_MSG(mr_info(cached).lkey == first.lkey, "%s %zu: the second registration was not a cache hit",
		  type_name[type], len);
	back = gives_back(type, buf);
	if (!back)
		printf("# %s %zu: a heap block, whose free() keeps the memory: no new registration due\n",
		       type_name[type], len);
	prev = addr_of(buf, 0);
	mem_free(type, buf, len);
	buf = mem_alloc(type, len);
	CHECK(buf != NULL);
	if (buf != prev) {
		CHECK_OK(iovm_rcache_put(C, mr));
		CHECK_OK(iovm_rcache_put(C, cached));
		mem_free(type, buf, len);
		printf("# %s %zu: allocated again at another address, nothing to check\n", type_name[type], len);
		return;
	}
	fill_random(buf, len, ~len ^ type);
	CHECK_OK(iovm_rcache_get(C, buf, len, ALL_RIGHTS, &again));
	if (back) {
		CHECK_MSG(mr_info(again).lkey != first.lkey,
			  "%s %zu: the cache returned the stale registration of the freed memory", type_name[type], len);
		CHECK_MSG(mr_info(mr).valid_pages == 0, "%s %zu: %llu pages of the freed memory's MR still valid",
			  type_name[type], len, (unsigned long long)mr_info(mr).valid_pages);
		keys_reach_nothing(&E, &first, buf, (uint32_t)(len < 16384 ? len : 16384));
	}
	for (size_t off = 0; off < len; off += 1u << 20)
		mr_reaches(&E, again, buf + off, (uint32_t)(len - off < 4096 ? len - off : 4096));
	mr_reaches(&E, again, buf + len - 1, 1);
	CHECK_OK(iovm_rcache_put(C, mr));
	CHECK_OK(iovm_rcache_put(C, cached));
	CHECK_OK(iovm_rcache_put(C, again));
	mem_free(type, buf, len);
}

static const size_t sizes[] = { 4121, 16384, (1u << 20) + 1, 8u << 20 };

TEST(mr_cache_evict_mmap)
{
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		mr_cache_evict(MMAP, sizes[i]);
}

/*
 * The program break moves above glibc's heap: glibc gets 64 MiB of free
 * heap first (a 16 MiB block from the heap, freed, with 64 MiB of top
 * padding kept), so that neither it nor the library (whose allocations
 * come from it) moves the break while the test does - a break the test
 * then moved back would cut the heap under glibc.
 */
static void break_aligned(void)
{
	void *volatile big; /* volatile: the compiler may not drop a malloc() it sees freed unused */
	uint8_t *p;

	if (!TEST_GLIBC_MALLOC)
		goto align; /* the sanitizer's allocator does not use the break */
	CHECK(mallopt(M_TOP_PAD, 64 << 20) == 1);
	CHECK(mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1);
	big = malloc(16u << 20);
	CHECK(big != NULL);
	free(big);
	mallopt(M_MMAP_THRESHOLD, 128 << 10);
align:
	p = sbrk(0);
	if ((uintptr_t)p & (PG - 1))
		CHECK(sbrk((intptr_t)(PG - ((uintptr_t)p & (PG - 1)))) != (void *)-1);
}

TEST(mr_cache_evict_brk)
{
	break_aligned();
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		mr_cache_evict(BRK, sizes[i]);
}

TEST(mr_cache_evict_sbrk)
{
	break_aligned();
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		mr_cache_evict(SBRK, sizes[i]);
}

/*
 * glibc's heap as a program starts with it: the mmap threshold fixed at
 * its default (else the first free() of a mapped block raises it, and the
 * next block of the size comes from the heap, at another address), the
 * top pad back at its default, and the free top the brk tests had glibc
 * take (break_aligned()) given back. A block is carved from a free top
 * large enough whatever its size: with 64 MiB of top left, even 8 MiB
 * blocks come from the heap, and their free() gives nothing back.
 */
static void malloc_defaults(void)
{
	if (!TEST_GLIBC_MALLOC)
		return;
	CHECK(mallopt(M_MMAP_THRESHOLD, 128 << 10) == 1);
	CHECK(mallopt(M_TOP_PAD, 128 << 10) == 1);
	malloc_trim(0);
}

TEST(mr_cache_evict_malloc)
{
	malloc_defaults();
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		mr_cache_evict(MALLOC, sizes[i]);
}

/*
 * The README's own promise: glibc's free() then malloc() of 8 MiB is
 * served correctly. A hundred times: get, put, free, malloc (at the same
 * address, mostly), get: never the old registration.
 */
TEST(mr_cache_evict_malloc_8m_repeated)
{
	size_t len = 8u << 20;
	unsigned same = 0;
	int ret;

	if (!TEST_GLIBC_MALLOC)
		SKIP_CASE("the sanitizer's free() keeps the memory mapped");
	malloc_defaults();
	for (unsigned i = 0; i < 100; i++) {
		uint8_t *p = malloc(len), *old;
		struct iovm_mr *mr;
		uint32_t k;

		CHECK(p != NULL && glibc_mmapped(p));
		memset(p, (int)i, len);
		ret = iovm_rcache_get(C, p, len, RW, &mr);
		if (ret == -ENOMEM && memlock_limited()) {
			free(p);
			SKIP_CASE("8 MiB and its chunk header cannot be locked (RLIMIT_MEMLOCK)");
		}
		CHECK_OK(ret);
		k = mr_info(mr).lkey;
		CHECK_OK(iovm_rcache_put(C, mr));
		old = addr_of(p, 0);
		free(p);
		p = malloc(len);
		CHECK(p != NULL);
		memset(p, (int)i + 1, len);
		CHECK_OK(iovm_rcache_get(C, p, len, RW, &mr));
		if (p == old) {
			same++;
			CHECK_MSG(mr_info(mr).lkey != k, "round %u: free()+malloc() of 8 MiB at the same address hit the "
				  "registration of the freed block", i);
		}
		mr_reaches(&E, mr, p + len - 4096, 4096);
		CHECK_OK(iovm_rcache_put(C, mr));
		free(p);
	}
	printf("# %u of 100 blocks at the address of the one freed before\n", same);
	if (!same)
		SKIP_CASE("glibc never gave the same address back");
}

int main(int argc, char **argv)
{
	const char *only = argc > 1 ? argv[1] : NULL;

	test_init();
	env_open(&E);
	CHECK_OK(iovm_rcache_create(E.r.dom, NULL, &C));
	RUN_ONLY(only, mr_cache_evict_mmap);
	RUN_ONLY(only, mr_cache_evict_brk);
	RUN_ONLY(only, mr_cache_evict_sbrk);
	RUN_ONLY(only, mr_cache_evict_malloc);
	RUN_ONLY(only, mr_cache_evict_malloc_8m_repeated);
	CHECK_OK(iovm_rcache_destroy(C));
	env_close(&E);
	return 0;
}
