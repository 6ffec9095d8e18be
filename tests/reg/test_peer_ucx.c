/* SPDX-License-Identifier: MIT */
/*
 * test_peer_ucx.c - the scenarios of UCX's registration-cache tests
 * (test/gtest/ucs/test_rcache.cc: basic, get_unmapped, merge, merge_inv,
 * release_inuse, the protection-change cases, shared_region, register
 * failure, the limits by count and size, statistics) and its fork test
 * (test/gtest/uct/test_md.cc), re-expressed for iovm_rcache_get/put.
 *
 * Where UCX checks its own region structures, these check what iovm
 * promises instead: an MR handed out holds its range with its rights and
 * reaches the memory there now (DMA through the engine, by IOVA and by
 * key), and an MR whose memory was replaced reaches nothing.
 */
#include <malloc.h>
#include <pthread.h>

#include "base/fault_inject.h"
#include "reg/test_peer_util.h"

static struct env E;

static struct iovm_rcache *cache_new(size_t max_regions, size_t max_bytes)
{
	struct iovm_rcache_attr attr = { .max_regions = max_regions, .max_bytes = max_bytes };
	struct iovm_rcache *c;

	CHECK_OK(iovm_rcache_create(E.r.dom, &attr, &c));
	return c;
}

static void cache_end(struct iovm_rcache *c)
{
	CHECK_OK(iovm_rcache_destroy(c));
	CHECK_EQ(rstats(&E.r).mrs, 0);
}

/* The MR holds [p, p+n) with @access. */
static void holds(struct iovm_mr *mr, const void *p, size_t n, uint32_t access)
{
	struct iovm_mr_info in = mr_info(mr);

	CHECK((uintptr_t)in.addr <= (uintptr_t)p && (uintptr_t)in.addr + in.len >= (uintptr_t)p + n);
	CHECK_EQ(in.access & access, access);
	CHECK(in.valid);
}

/* basic: a malloc'ed megabyte, got, reached, put. */
TEST(ucx_basic)
{
	struct iovm_rcache *c = cache_new(0, 0);
	uint8_t *p = malloc(1 << 20);
	struct iovm_mr *mr;

	CHECK(p != NULL);
	fill_random(p, 1 << 20, 1);
	CHECK_OK(iovm_rcache_get(c, p, 1 << 20, RW, &mr));
	holds(mr, p, 1 << 20, RW);
	mr_reaches(&E, mr, p, 4096);
	mr_reaches(&E, mr, p + (1 << 20) - 4096, 4096);
	CHECK_OK(iovm_rcache_put(c, mr));
	free(p);
	cache_end(c);
}

/*
 * get_unmapped: the same memory twice is one registration; once it is
 * unmapped and mapped again at the same address, the next get is a new
 * registration that reaches the new memory.
 */
TEST(ucx_get_unmapped)
{
	struct iovm_rcache *c = cache_new(0, 0);
	size_t len = 1 << 20;
	uint8_t *p = far_map(len);
	uint32_t k1, k2;
	struct iovm_mr *mr;

	fill_random(p, len, 2);
	k1 = get_put(c, p, len, RW);
	CHECK_EQ(get_put(c, p, len, RW), k1);
	app_unmap(p, len);
	CHECK(remap_same(p, len));
	fill_random(p, len, 3);
	CHECK_OK(iovm_rcache_get(c, p, len, RW, &mr));
	k2 = mr_info(mr).lkey;
	CHECK_MSG(k2 != k1, "the get after munmap+mmap hit the registration of the old memory");
	mr_reaches(&E, mr, p, 8192);
	CHECK_OK(iovm_rcache_put(c, mr));
	app_unmap(p, len);
	cache_end(c);
}

/*
 * The same with glibc: a large block freed (munmapped) and allocated
 * again. UCX checks a new registration only where the memory changed (its
 * physical address): a block glibc carved from its heap stays mapped
 * after free(), the same memory, and a hit on it is right. glibc's mmap
 * threshold is fixed at its default first (ucx_basic's free() of a mapped
 * megabyte raised it: the next megabyte came from the heap).
 */
TEST(ucx_get_unmapped_malloc)
{
	struct iovm_rcache *c;
	size_t len = 1 << 20;
	uint8_t *p, *q;
	uint32_t k1;
	struct iovm_mr *mr;
	bool back;

	if (!TEST_GLIBC_MALLOC)
		SKIP_CASE("the sanitizer's free() keeps the memory mapped");
	CHECK(mallopt(M_MMAP_THRESHOLD, 128 << 10) == 1);
	c = cache_new(0, 0);
	p = malloc(len);
	CHECK(p != NULL);
	back = glibc_mmapped(p);
	if (!back)
		printf("# glibc put the block on its heap: its free() keeps the memory, a hit on it is right\n");
	fill_random(p, len, 4);
	k1 = get_put(c, p, len, RW);
	CHECK_EQ(get_put(c, p, len, RW), k1);
	free(p);
	q = malloc(len);
	CHECK(q != NULL);
	fill_random(q, len, 5);
	CHECK_OK(iovm_rcache_get(c, q, len, RW, &mr));
	if (q == p && back)
		CHECK_MSG(mr_info(mr).lkey != k1, "free()+malloc() at the same address hit the old registration");
	mr_reaches(&E, mr, q, 8192);
	mr_reaches(&E, mr, q + len - 8192, 8192);
	CHECK_OK(iovm_rcache_put(c, mr));
	free(q);
	cache_end(c);
}

/*
 * merge: region1 and region2 apart, region3 over both. Whatever the cache
 * makes of them, each get holds its range, and the MRs held meanwhile stay
 * whole: a merge never takes pages from an MR still held.
 */
TEST(ucx_merge)
{
	struct iovm_rcache *c = cache_new(0, 0);
	size_t s1 = 256 * PG, s2 = 512 * PG, pad = 64 * PG, len = s1 + pad + s2;
	uint8_t *mem = app_map(len);
	struct iovm_mr *r1, *r1b, *r2, *r3;

	fill_random(mem, len, 6);
	CHECK_OK(iovm_rcache_get(c, mem, s1, RW, &r1));
	CHECK_OK(iovm_rcache_get(c, mem, s1, RW, &r1b));
	CHECK_EQ(mr_info(r1b).lkey, mr_info(r1).lkey);
	CHECK_OK(iovm_rcache_put(c, r1b));
	CHECK_OK(iovm_rcache_get(c, mem + s1 + pad, s2, RW, &r2));
	CHECK_OK(iovm_rcache_get(c, mem + pad, s1 + s2 - pad, RW, &r3));
	holds(r3, mem + pad, s1 + s2 - pad, RW);
	CHECK_OK(iovm_rcache_get(c, mem, s1, RW, &r1b));
	holds(r1b, mem, s1, RW);
	for (struct iovm_mr **m = (struct iovm_mr *[]){ r1, r2, r3, r1b, NULL }; *m; m++)
		CHECK_EQ(mr_info(*m).valid_pages, mr_info(*m).pages);
	mr_reaches(&E, r1, mem + s1 - 4096, 4096);
	mr_reaches(&E, r2, mem + s1 + pad, 4096);
	mr_reaches(&E, r3, mem + s1, 8192);
	mr_reaches(&E, r1b, mem, 4096);
	CHECK_OK(iovm_rcache_put(c, r1b));
	CHECK_OK(iovm_rcache_put(c, r1));
	CHECK_OK(iovm_rcache_put(c, r2));
	CHECK_OK(iovm_rcache_put(c, r3));
	app_unmap(mem, len);
	cache_end(c);
}

/* merge_inv: a region overlapping one no longer held; both gets are served, nothing stale. */
TEST(ucx_merge_inv)
{
	struct iovm_rcache *c = cache_new(0, 0);
	size_t s1 = 64 * PG, s2 = 128 * PG, pad = 16 * PG;
	uint8_t *mem = app_map(pad + s2);
	struct iovm_mr *mr;

	fill_random(mem, pad + s2, 7);
	get_put(c, mem, s1, RW);
	CHECK_OK(iovm_rcache_get(c, mem + pad, s2, RW, &mr));
	holds(mr, mem + pad, s2, RW);
	mr_reaches(&E, mr, mem + pad + s2 - 4096, 4096);
	CHECK_OK(iovm_rcache_put(c, mr));
	CHECK_OK(iovm_rcache_get(c, mem, s1, RW, &mr));
	mr_reaches(&E, mr, mem, 4096);
	CHECK_OK(iovm_rcache_put(c, mr));
	app_unmap(mem, pad + s2);
	cache_end(c);
}

/*
 * release_inuse: memory unmapped while its MR is held, new memory mapped at
 * the same address. The next get is a new registration; the held one
 * reaches nothing any more - not the new memory - and putting it back
 * after its memory is gone is fine.
 */
TEST(ucx_release_inuse)
{
	struct iovm_rcache *c = cache_new(0, 0);
	size_t len = 1 << 20;
	uint8_t *p = far_map(len);
	struct iovm_mr *r1, *r2;
	struct iovm_mr_info i1;

	fill_random(p, len, 8);
	CHECK_OK(iovm_rcache_get(c, p, len, ALL_RIGHTS, &r1));
	i1 = mr_info(r1);
	app_unmap(p, len);
	CHECK(remap_same(p, len));
	fill_random(p, len, 9);
	CHECK_OK(iovm_rcache_get(c, p, len, ALL_RIGHTS, &r2));
	CHECK_MSG(mr_info(r2).lkey != i1.lkey, "a get after munmap+mmap returned the MR of the old memory");
	mr_reaches(&E, r2, p, 4096);
	CHECK_OK(iovm_rcache_put(c, r2));
	CHECK_EQ(mr_info(r1).valid_pages, 0);
	CHECK(!mr_info(r1).valid);
	keys_reach_nothing(&E, &i1, p, 4096);
	app_unmap(p, len);
	CHECK_OK(iovm_rcache_put(c, r1));
	CHECK_EQ(iovm_rcache_get(c, p, len, RW, &r1), -EFAULT);
	cache_end(c);
}

/*
 * merge_with_unwritable: read-only memory got for reading; part of it made
 * writable and got for writing: the second MR has the write right and
 * holds its range, the first still reaches its pages.
 */
TEST(ucx_merge_with_unwritable)
{
	struct iovm_rcache *c = cache_new(0, 0);
	size_t s1 = 10 * PG, s2 = 8 * PG;
	uint8_t *mem = app_map(s1 + s2);
	struct iovm_mr *r1, *r2;

	fill_random(mem, s1 + s2, 10);
	CHECK(mprotect(mem, s1 + s2, PROT_READ) == 0);
	CHECK_OK(iovm_rcache_get(c, mem, s1 + s2 / 2, IOVM_ACCESS_LOCAL_READ, &r1));
	CHECK(mprotect(mem + s1, s2, PROT_READ | PROT_WRITE) == 0);
	CHECK_OK(iovm_rcache_get(c, mem + s1, s2, RW, &r2));
	holds(r2, mem + s1, s2, RW);
	CHECK_EQ(env_write(&E, (uintptr_t)mem + s1, mr_info(r2).lkey, 4096, 0x5c).status, IOVM_STATUS_SUCCESS);
	CHECK_EQ(mem[s1 + 100], 0x5c);
	mr_reaches(&E, r1, mem, 4096);
	CHECK_OK(iovm_rcache_put(c, r1));
	CHECK_OK(iovm_rcache_put(c, r2));
	app_unmap(mem, s1 + s2);
	cache_end(c);
}

/* merge_merge_unwritable: part of a cached read-write region made read-only, then got for reading. */
TEST(ucx_merge_merge_unwritable)
{
	struct iovm_rcache *c = cache_new(0, 0);
	size_t s1 = 10 * PG, s2 = 8 * PG;
	uint8_t *mem = app_map(s1 + s2);
	struct iovm_mr *r1, *r2;

	fill_random(mem, s1 + s2, 11);
	CHECK_OK(iovm_rcache_get(c, mem, s1 + s2 / 2, RW, &r1));
	CHECK(mprotect(mem + s1, s2, PROT_READ) == 0);
	CHECK_OK(iovm_rcache_get(c, mem + s1, s2, IOVM_ACCESS_LOCAL_READ, &r2));
	holds(r2, mem + s1, s2, IOVM_ACCESS_LOCAL_READ);
	mr_reaches(&E, r2, mem + s1 + s2 - 4096, 4096);
	CHECK_OK(iovm_rcache_put(c, r1));
	CHECK_OK(iovm_rcache_put(c, r2));
	app_unmap(mem, s1 + s2);
	cache_end(c);
}

/* merge_expand_prot: a read region, then a write request over part of it and beyond. */
TEST(ucx_merge_expand_prot)
{
	struct iovm_rcache *c = cache_new(0, 0);
	size_t s1 = 10 * PG, s2 = 8 * PG;
	uint8_t *mem = app_map(s1 + s2);
	struct iovm_mr *r1, *r2;

	fill_random(mem, s1 + s2, 12);
	CHECK_OK(iovm_rcache_get(c, mem, s1 + s2 / 2, IOVM_ACCESS_LOCAL_READ, &r1));
	CHECK_OK(iovm_rcache_get(c, mem + s1, s2, RW, &r2));
	holds(r2, mem + s1, s2, RW);
	CHECK_EQ(env_write(&E, (uintptr_t)mem + s1 + s2 - 64, mr_info(r2).lkey, 64, 0x3d).status,
		 IOVM_STATUS_SUCCESS);
	CHECK_EQ(mem[s1 + s2 - 1], 0x3d);
	mr_reaches(&E, r1, mem, 4096);
	CHECK_OK(iovm_rcache_put(c, r1));
	CHECK_OK(iovm_rcache_put(c, r2));
	app_unmap(mem, s1 + s2);
	cache_end(c);
}

/* merge_invalid_prot: a cached region's first page made read-only; a get beside it is served read-write. */
TEST(ucx_merge_invalid_prot)
{
	struct iovm_rcache *c = cache_new(0, 0);
	size_t s1 = 10 * PG, s2 = 8 * PG;
	uint8_t *mem = app_map(s1 + s2);
	struct iovm_mr *mr;

	fill_random(mem, s1 + s2, 13);
	get_put(c, mem, s1, RW);
	CHECK(mprotect(mem, PG, PROT_READ) == 0);
	CHECK_OK(iovm_rcache_get(c, mem + s1 - 1024, s2, RW, &mr));
	holds(mr, mem + s1 - 1024, s2, RW);
	CHECK_EQ(env_write(&E, (uintptr_t)mem + s1 - 1024, mr_info(mr).lkey, 2048, 0x4e).status, IOVM_STATUS_SUCCESS);
	CHECK_EQ(mem[s1], 0x4e);
	CHECK_OK(iovm_rcache_put(c, mr));
	app_unmap(mem, s1 + s2);
	cache_end(c);
}

/*
 * merge_invalid_prot_slow: a region cached read-write, then all its memory
 * made read-only: a get for writing that overlaps it fails as a
 * registration would (-EFAULT), rather than hand out write access to
 * memory the application made read-only. (UCX's test stops there.) A get
 * all within the old region is a hit with the rights it was registered
 * with, which mprotect() does not change (reg.h): the device's write
 * through it faults and lands nowhere.
 */
TEST(ucx_merge_invalid_prot_slow)
{
	struct iovm_rcache *c = cache_new(0, 0);
	size_t s1 = 10 * PG, s2 = 8 * PG;
	uint8_t *mem = app_map(s1 + s2);
	struct iovm_mr *mr;
	int ret;

	get_put(c, mem, s1, RW);
	CHECK(mprotect(mem, s1, PROT_READ) == 0);
	ret = iovm_rcache_get(c, mem + s1 - 1024, s2, RW, &mr);
	if (ret == 0)
		iovm_rcache_put(c, mr);
	CHECK_MSG(ret == -EFAULT, "a get for writing of partly read-only memory: %d, not -EFAULT", ret);
	/* All within the old region, now read-only: a hit, whose write right reaches nothing. */
	CHECK_OK(iovm_rcache_get(c, mem + PG, 2 * PG, RW, &mr));
	CHECK_EQ(env_write(&E, (uintptr_t)mem + PG, mr_info(mr).lkey, 64, 0x6f).status, IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(mem[PG], 0);
	CHECK_OK(iovm_rcache_put(c, mr));
	app_unmap(mem, s1 + s2);
	cache_end(c);
}

struct shared_arg {
	struct iovm_rcache *c;
	uint8_t *mem;
	size_t len;
	_Atomic unsigned failures;
};

static void *shared_region_thread(void *arg)
{
	struct shared_arg *a = arg;

	for (unsigned i = 0; i < 300; i++) {
		size_t part = a->len * 2 / 3;
		uint8_t *p = i & 1 ? a->mem + a->len - part : a->mem;
		struct iovm_mr *mr;
		struct iovm_mr_info in;

		if (iovm_rcache_get(a->c, p, part, RW, &mr)) {
			a->failures++;
			continue;
		}
		if (iovm_mr_query(mr, &in) || (uintptr_t)in.addr > (uintptr_t)p ||
		    (uintptr_t)in.addr + in.len < (uintptr_t)p + part || in.valid_pages != in.pages)
			a->failures++;
		if (iovm_rcache_put(a->c, mr))
			a->failures++;
	}
	return NULL;
}

/* shared_region: threads get and put overlapping two-thirds of one buffer at once. */
TEST(ucx_shared_region)
{
	struct shared_arg a = { .c = cache_new(0, 0), .len = 1 << 20 };
	pthread_t t[4];
	struct iovm_mr *mr;

	a.mem = app_map(a.len);
	fill_random(a.mem, a.len, 14);
	for (unsigned i = 0; i < 4; i++)
		CHECK(pthread_create(&t[i], NULL, shared_region_thread, &a) == 0);
	for (unsigned i = 0; i < 4; i++)
		CHECK(pthread_join(t[i], NULL) == 0);
	CHECK_EQ(a.failures, 0);
	CHECK_OK(iovm_rcache_get(a.c, a.mem, a.len, RW, &mr));
	mr_reaches(&E, mr, a.mem + a.len / 2, 8192);
	CHECK_OK(iovm_rcache_put(a.c, mr));
	app_unmap(a.mem, a.len);
	cache_end(a.c);
}

/*
 * register_failure: a get whose registration fails (each allocation and
 * system call of it failing in turn) returns an error, leaves nothing
 * registered or held, and the cache works afterwards.
 */
TEST(ucx_register_failure)
{
	struct iovm_rcache *c = cache_new(0, 0);
	size_t len = 64 * PG;
	uint8_t *p = app_map(len);
	unsigned long n, failed = 0;
	struct iovm_mr *mr;

	fill_random(p, len, 15);
	for (n = 1; n < 500; n++) {
		int ret;
		bool fired;

		fi_arm(FI_ALL, n, 0);
		ret = iovm_rcache_get(c, p, len, RW, &mr);
		fired = fi_disarm();
		if (ret == 0) {
			holds(mr, p, len, RW);
			CHECK_OK(iovm_rcache_put(c, mr));
			/* Start from an empty cache each time, or later gets only hit. */
			CHECK_OK(iovm_rcache_destroy(c));
			c = cache_new(0, 0);
		} else {
			CHECK_MSG(fired, "the get failed (%d) with no failure injected", ret);
			failed++;
		}
		/* The cache was empty: a failed get leaves nothing registered. */
		CHECK_EQ(rstats(&E.r).mrs, 0);
		if (!fired)
			break;
	}
	if (n == 1) {
		/* The cache goes first: a cache left on the domain makes the rig's domain destroy -EBUSY. */
		cache_end(c);
		app_unmap(p, len);
		SKIP_CASE("fault injection is off (debug_checks=false)");
	}
	printf("# %lu failure points, %lu gets failed cleanly\n", n - 1, failed);
	CHECK_OK(iovm_rcache_get(c, p, len, RW, &mr));
	mr_reaches(&E, mr, p, 4096);
	CHECK_OK(iovm_rcache_put(c, mr));
	cache_end(c);
	app_unmap(p, len);
	/* A get that swallowed a failure must not have left the oracle's shadow behind the page table. */
	no_violations(E.r.dom);
}

/* Three one-page buffers apart from each other: each its own region. */
static uint8_t *three_pages(void)
{
	uint8_t *m = app_map(6 * PG);

	CHECK(munmap(m + PG, PG) == 0 && munmap(m + 3 * PG, PG) == 0 && munmap(m + 5 * PG, PG) == 0);
	fill_random(m, PG, 16);
	fill_random(m + 2 * PG, PG, 17);
	fill_random(m + 4 * PG, PG, 18);
	return m;
}

static void three_pages_free(uint8_t *m)
{
	munmap(m, PG);
	munmap(m + 2 * PG, PG);
	munmap(m + 4 * PG, PG);
}

/* with_limit, by_count: two regions at most; the least recently used goes. */
TEST(ucx_limit_by_count)
{
	struct iovm_rcache *c = cache_new(2, 0);
	uint8_t *m = three_pages(), *p1 = m, *p2 = m + 2 * PG, *p3 = m + 4 * PG;
	uint32_t k1, k2, k3;

	k1 = get_put(c, p1, 32, RW);
	CHECK_EQ(cstats(c).regions, 1);
	k2 = get_put(c, p2, 32, RW);
	CHECK_EQ(cstats(c).regions, 2);
	k3 = get_put(c, p3, 32, RW);
	CHECK_EQ(cstats(c).regions, 2);
	CHECK(cstats(c).evictions >= 1);
	CHECK_EQ(get_put(c, p2, 32, RW), k2);
	CHECK_EQ(get_put(c, p3, 32, RW), k3);
	CHECK(get_put(c, p1, 32, RW) != k1);
	CHECK_EQ(cstats(c).regions, 2);
	three_pages_free(m);
	cache_end(c);
}

/* by_size: room for one page: the second region pushes the first out. */
TEST(ucx_limit_by_size)
{
	struct iovm_rcache *c = cache_new(0, 6000);
	uint8_t *m = three_pages();

	get_put(c, m, 600, RW);
	CHECK_EQ(cstats(c).regions, 1);
	get_put(c, m + 2 * PG, 600, RW);
	CHECK_EQ(cstats(c).regions, 1);
	CHECK(cstats(c).bytes <= 6000);
	three_pages_free(m);
	cache_end(c);
}

/*
 * by_size_inuse: a held region is never evicted, whatever the limit. UCX
 * keeps the second, idle region past the limit until its next miss; iovm
 * lets it go at its put, the cache being over its limit (reg.h): what
 * max_bytes bounds is pinned memory.
 */
TEST(ucx_limit_by_size_inuse)
{
	struct iovm_rcache *c = cache_new(0, 6000);
	uint8_t *m = three_pages();
	struct iovm_mr *r1;

	CHECK_OK(iovm_rcache_get(c, m, 600, RW, &r1));
	CHECK_EQ(cstats(c).regions, 1);
	get_put(c, m + 2 * PG, 600, RW);
	CHECK_EQ(cstats(c).regions, 1);
	CHECK_EQ(cstats(c).evictions, 1);
	CHECK(mr_info(r1).valid);
	mr_reaches(&E, r1, m, 600);
	CHECK_OK(iovm_rcache_put(c, r1));
	three_pages_free(m);
	cache_end(c);
}

/* stats: a miss, a hit, and an unmap that invalidates. */
TEST(ucx_stats)
{
	struct iovm_rcache *c = cache_new(0, 0);
	uint8_t *p = app_map(1 << 20), *q;
	struct iovm_mr *r1, *r2;
	struct iovm_rcache_stats st;

	CHECK_OK(iovm_rcache_get(c, p, 4096, RW, &r1));
	st = cstats(c);
	CHECK_EQ(st.misses, 1);
	CHECK_EQ(st.hits, 0);
	CHECK_OK(iovm_rcache_get(c, p, 4096, RW, &r2));
	st = cstats(c);
	CHECK_EQ(st.misses, 1);
	CHECK_EQ(st.hits, 1);
	CHECK_OK(iovm_rcache_put(c, r1));
	CHECK_OK(iovm_rcache_put(c, r2));
	CHECK_EQ(cstats(c).regions, 1);
	get_put(c, p, 1 << 20, RW);
	app_unmap(p, 1 << 20);
	q = app_map(1 << 20);
	get_put(c, q, 1 << 20, RW);
	st = cstats(c);
	CHECK(st.invalidations_unmap >= 1);
	CHECK_EQ(st.misses, 3);
	app_unmap(q, 1 << 20);
	cache_end(c);
}

static uint8_t *fork_page;

static void fork_child(void *arg)
{
	(void)arg;
	/* The child touches its copy: it must see the parent's bytes, and change only its own. */
	for (unsigned i = 0; i < 100; i++)
		if (fork_page[i] != 42)
			_exit(2);
	memset(fork_page, 7, PG);
}

/* test_md's fork: a registered page, a child that writes its copy; the parent's registration is untouched. */
TEST(ucx_fork)
{
	struct iovm_rcache *c;
	struct iovm_mr *r1, *r2;

	SKIP_FORK_UNDER_TSAN();
	c = cache_new(0, 0);

	fork_page = app_map(PG);
	memset(fork_page, 42, 100);
	CHECK_OK(iovm_rcache_get(c, fork_page, 100, RW, &r1));
	CHECK_EQ(in_child(fork_child, NULL), 0);
	CHECK_EQ(fork_page[0], 42);
	memset(fork_page, 43, 100);
	CHECK_OK(iovm_rcache_get(c, fork_page, 100, RW, &r2));
	CHECK_EQ(mr_info(r2).lkey, mr_info(r1).lkey);
	CHECK_EQ(mr_info(r1).valid_pages, 1);
	mr_reaches(&E, r1, fork_page, 100);
	CHECK_OK(iovm_rcache_put(c, r1));
	CHECK_OK(iovm_rcache_put(c, r2));
	app_unmap(fork_page, PG);
	cache_end(c);
}

int main(int argc, char **argv)
{
	const char *only = argc > 1 ? argv[1] : NULL;

	test_init();
	env_open(&E);
	RUN_ONLY(only, ucx_basic);
	RUN_ONLY(only, ucx_get_unmapped);
	RUN_ONLY(only, ucx_get_unmapped_malloc);
	RUN_ONLY(only, ucx_merge);
	RUN_ONLY(only, ucx_merge_inv);
	RUN_ONLY(only, ucx_release_inuse);
	RUN_ONLY(only, ucx_merge_with_unwritable);
	RUN_ONLY(only, ucx_merge_merge_unwritable);
	RUN_ONLY(only, ucx_merge_expand_prot);
	RUN_ONLY(only, ucx_merge_invalid_prot);
	RUN_ONLY(only, ucx_merge_invalid_prot_slow);
	RUN_ONLY(only, ucx_shared_region);
	RUN_ONLY(only, ucx_register_failure);
	RUN_ONLY(only, ucx_limit_by_count);
	RUN_ONLY(only, ucx_limit_by_size);
	RUN_ONLY(only, ucx_limit_by_size_inuse);
	RUN_ONLY(only, ucx_stats);
	RUN_ONLY(only, ucx_fork);
	env_close(&E);
	return 0;
}
