/* SPDX-License-Identifier: MIT */
/*
 * test_rcache.c - the registration cache: hits and misses, DMA through
 * what it gives, invalidation of only the pages taken away, the case UCX
 * 1.13 gets wrong (glibc's free() of a large block, then a malloc at the
 * same address), eviction by count and by bytes with held regions spared,
 * memory the monitor cannot watch, destruction while held, an index of
 * crowded memory and regions of every size, its lists walked without a
 * lock while evictions move region structs between them, and a thread's
 * working set of buffers past its hints and its table of holds; region
 * structs of a destroyed cache living again in the next ones.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <unistd.h>

#include "reg/reg_util.h"

static struct iovm_rcache_stats cstats(struct iovm_rcache *c)
{
	struct iovm_rcache_stats st;

	CHECK_OK(iovm_rcache_stats(c, &st));
	return st;
}

TEST(hits_and_misses)
{
	struct rig r;
	struct iovm_rcache *c;
	struct iovm_mr *m1, *m2, *m3;
	uint8_t *app = app_map(16 * PG), *heap;

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	heap = iovm_dma_alloc(r.ctx, 16 * PG, PG, 0);
	CHECK_OK(iovm_rcache_create(r.dom, NULL, &c));
	CHECK_OK(iovm_rcache_get(c, app, 16 * PG, IOVM_ACCESS_LOCAL_WRITE, &m1));
	CHECK_EQ(cstats(c).misses, 1);
	CHECK_EQ(cstats(c).hits, 0);
	CHECK_OK(iovm_rcache_put(c, m1));
	/* The same range, and a part of it: hits, on the same MR. */
	CHECK_OK(iovm_rcache_get(c, app, 16 * PG, IOVM_ACCESS_LOCAL_WRITE, &m2));
	CHECK_OK(iovm_rcache_get(c, app + 5 * PG + 7, 100, 0, &m3));
	CHECK(m2 == m1 && m3 == m1);
	CHECK_EQ(cstats(c).hits, 2);
	/* A cached MR is the cache's: it cannot be deregistered behind its back. */
	CHECK_EQ(iovm_mr_dereg(m2), -EBUSY);
	/* More rights than the region has: a miss, a new region. */
	CHECK_OK(iovm_rcache_put(c, m3));
	CHECK_OK(iovm_rcache_get(c, app, PG, IOVM_ACCESS_REMOTE_WRITE, &m3));
	CHECK(m3 != m1);
	CHECK_EQ(cstats(c).misses, 2);
	/* DMA through what the cache gave. */
	fill_random(heap, 16 * PG, 5);
	CHECK_EQ(dma_copy(&r, iova_of(&r, heap), mr_iova(m2, app), 16 * PG), IOVM_STATUS_SUCCESS);
	CHECK(!memcmp(app, heap, 16 * PG));
	CHECK_OK(iovm_rcache_put(c, m2));
	/* Still held: destruction waits. */
	CHECK_EQ(iovm_rcache_destroy(c), -EBUSY);
	CHECK_OK(iovm_rcache_put(c, m3));
	CHECK_EQ(cstats(c).regions, 2);
	CHECK_OK(iovm_rcache_destroy(c));
	no_violations(r.dom);
	rig_close(&r);
	app_unmap(app, 16 * PG);
}

TEST(only_the_pages_taken_away)
{
	struct rig r;
	struct iovm_rcache *c;
	struct iovm_mr *m, *again;
	uint8_t *app = app_map(16 * PG), *heap;

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	heap = iovm_dma_alloc(r.ctx, PG, PG, 0);
	memset(heap, 0x3e, PG);
	CHECK_OK(iovm_rcache_create(r.dom, NULL, &c));
	CHECK_OK(iovm_rcache_get(c, app, 16 * PG, IOVM_ACCESS_LOCAL_WRITE, &m));
	CHECK_OK(iovm_rcache_put(c, m));
	/* Four pages in the middle replaced. */
	CHECK(mmap(app + 8 * PG, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
	      app + 8 * PG);
	memset(app + 8 * PG, 0x11, 4 * PG);
	/*
	 * Once the monitor has invalidated them (a lookup racing with the
	 * invalidation is no hit), the rest of the region is still a hit: the
	 * invalidation took its pages only.
	 */
	for (unsigned spins = 0;; spins++) {
		struct iovm_reg_stats st;

		CHECK_OK(iovm_reg_stats(r.ctx, &st));
		if (st.invalidated_pages >= 4)
			break;
		CHECK(spins < 100000);
		usleep(10);
	}
	CHECK_OK(iovm_rcache_get(c, app, 8 * PG, IOVM_ACCESS_LOCAL_WRITE, &again));
	CHECK(again == m);
	CHECK_EQ(cstats(c).hits, 1);
	CHECK_OK(iovm_rcache_put(c, again));
	CHECK(cstats(c).invalidations_unmap >= 1);
	/* The replaced pages: a miss, a new registration of the new memory, never the old one. */
	CHECK_OK(iovm_rcache_get(c, app + 8 * PG, 4 * PG, IOVM_ACCESS_LOCAL_WRITE, &again));
	CHECK(again != m);
	CHECK_EQ(dma_copy(&r, iova_of(&r, heap), mr_iova(again, app + 8 * PG), PG), IOVM_STATUS_SUCCESS);
	CHECK_EQ(app[8 * PG], 0x3e);
	CHECK_OK(iovm_rcache_put(c, again));
	CHECK_OK(iovm_rcache_destroy(c));
	no_violations(r.dom);
	rig_close(&r);
	app_unmap(app, 16 * PG);
}

TEST(free_then_malloc_at_the_same_address)
{
	struct rig r;
	struct iovm_rcache *c;
	struct iovm_mr *m, *m2;
	uint8_t *a, *b, *heap;
	int ret;

	if (TEST_ASAN)
		SKIP_CASE("AddressSanitizer's free() keeps blocks mapped");
	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	heap = iovm_dma_alloc(r.ctx, PG, PG, 0);
	memset(heap, 0x77, PG);
	CHECK_OK(iovm_rcache_create(r.dom, NULL, &c));
	/* 8 MiB: glibc maps it, and unmaps it at free(). */
	a = malloc(8 << 20);
	CHECK(a != NULL);
	memset(a, 1, 8 << 20);
	ret = iovm_rcache_get(c, a, 8 << 20, IOVM_ACCESS_LOCAL_WRITE, &m);
	if (ret == -ENOMEM) {
		CHECK_OK(iovm_rcache_destroy(c));
		rig_close(&r);
		free(a);
		SKIP_CASE("8 MiB cannot be locked (RLIMIT_MEMLOCK)");
	}
	CHECK_OK(ret);
	CHECK_OK(iovm_rcache_put(c, m));
	free(a);
	b = malloc(8 << 20);
	CHECK(b != NULL);
	memset(b, 2, 8 << 20);
	/* Whether or not b is where a was, the cache gives a registration of b's memory. */
	CHECK_OK(iovm_rcache_get(c, b, 8 << 20, IOVM_ACCESS_LOCAL_WRITE, &m2));
	CHECK_EQ(dma_copy(&r, iova_of(&r, heap), mr_iova(m2, b + 4096), PG), IOVM_STATUS_SUCCESS);
	CHECK_EQ(b[4096], 0x77);
	if (b == a)
		CHECK_EQ(cstats(c).misses, 2);
	CHECK_OK(iovm_rcache_put(c, m2));
	CHECK_OK(iovm_rcache_destroy(c));
	free(b);
	no_violations(r.dom);
	rig_close(&r);
}

TEST(eviction)
{
	struct rig r;
	struct iovm_rcache *c;
	struct iovm_mr *m[8], *held;
	uint8_t *app = app_map(64 * PG);

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	CHECK_OK(iovm_rcache_create(r.dom, &(struct iovm_rcache_attr){ .max_regions = 4 }, &c));
	CHECK_OK(iovm_rcache_get(c, app, PG, 0, &held)); /* the oldest, but held all along */
	for (int i = 1; i < 8; i++) {
		CHECK_OK(iovm_rcache_get(c, app + i * 8 * PG, PG, 0, &m[i]));
		CHECK_OK(iovm_rcache_put(c, m[i]));
		CHECK(cstats(c).regions <= 4);
	}
	CHECK_EQ(cstats(c).evictions, 4);
	/* The held one survived; the first idle ones went, the last ones stay. */
	CHECK_OK(iovm_rcache_get(c, app, PG, 0, &m[0]));
	CHECK(m[0] == held);
	CHECK_OK(iovm_rcache_put(c, m[0]));
	CHECK_OK(iovm_rcache_put(c, held));
	CHECK_OK(iovm_rcache_get(c, app + 7 * 8 * PG, PG, 0, &m[7]));
	CHECK_EQ(cstats(c).misses, 8);
	CHECK_OK(iovm_rcache_put(c, m[7]));
	CHECK_OK(iovm_rcache_destroy(c));
	/* By bytes: 16 KiB kept at most. */
	CHECK_OK(iovm_rcache_create(r.dom, &(struct iovm_rcache_attr){ .max_bytes = 4 * PG }, &c));
	for (int i = 0; i < 8; i++) {
		CHECK_OK(iovm_rcache_get(c, app + i * 8 * PG, 2 * PG, 0, &m[i]));
		CHECK_OK(iovm_rcache_put(c, m[i]));
		CHECK(cstats(c).bytes <= 4 * PG);
	}
	CHECK_OK(iovm_rcache_destroy(c));
	rig_close(&r);
	app_unmap(app, 64 * PG);
}

TEST(unwatchable_memory_is_not_kept)
{
	struct rig r;
	struct iovm_rcache *c;
	struct iovm_mr *m, *m2;
	struct iovm_reg_stats st;
	int fd = open("/proc/self/exe", O_RDONLY);
	uint8_t *file = mmap(NULL, PG, PROT_READ, MAP_PRIVATE, fd, 0);

	CHECK(fd >= 0 && file != MAP_FAILED);
	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	CHECK_OK(iovm_rcache_create(r.dom, NULL, &c));
	CHECK_OK(iovm_rcache_get(c, file, PG, 0, &m));
	CHECK_EQ(cstats(c).uncached, 1);
	CHECK_EQ(cstats(c).regions, 0);
	CHECK_OK(iovm_rcache_put(c, m));
	/* Put back: deregistered. */
	CHECK_OK(iovm_reg_stats(r.ctx, &st));
	CHECK_EQ(st.mrs, 0);
	CHECK_OK(iovm_rcache_get(c, file, PG, 0, &m2));
	CHECK_EQ(cstats(c).uncached, 2);
	CHECK_EQ(cstats(c).hits, 0);
	CHECK_OK(iovm_rcache_put(c, m2));
	CHECK_OK(iovm_rcache_destroy(c));
	rig_close(&r);
	munmap(file, PG);
	close(fd);
}

TEST(held_region_taken_away)
{
	struct rig r;
	struct iovm_rcache *c;
	struct iovm_mr *m;
	uint8_t *app = app_map(4 * PG), *heap;

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	heap = iovm_dma_alloc(r.ctx, PG, PG, 0);
	CHECK_OK(iovm_rcache_create(r.dom, &(struct iovm_rcache_attr){ .max_regions = 1 }, &c));
	CHECK_OK(iovm_rcache_get(c, app, 4 * PG, IOVM_ACCESS_LOCAL_WRITE, &m));
	/* Its memory goes while it is held: the device faults, and the put still works. */
	CHECK(mmap(app, 4 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == app);
	CHECK_EQ(dma_copy(&r, iova_of(&r, heap), mr_iova(m, app), PG), IOVM_STATUS_PAGE_FAULT);
	CHECK_OK(iovm_rcache_put(c, m));
	CHECK_OK(iovm_rcache_destroy(c));
	no_violations(r.dom);
	rig_close(&r);
	app_unmap(app, 4 * PG);
}

struct xthread {
	struct iovm_rcache *c;
	uint8_t *addr;
	struct iovm_mr *mr;
};

static void *get_there(void *arg)
{
	struct xthread *x = arg;

	CHECK_OK(iovm_rcache_get(x->c, x->addr, 4 * PG, 0, &x->mr));
	return NULL;
}

static void *put_there(void *arg)
{
	struct xthread *x = arg;

	CHECK_OK(iovm_rcache_put(x->c, x->mr));
	return NULL;
}

/* Holds counted on one thread and undone on another, or outliving their thread, balance. */
TEST(gets_and_puts_on_other_threads)
{
	struct rig r;
	struct iovm_rcache *c;
	struct xthread x;
	pthread_t tid;
	uint8_t *app = app_map(16 * PG);

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	CHECK_OK(iovm_rcache_create(r.dom, &(struct iovm_rcache_attr){ .max_regions = 1 }, &c));
	x = (struct xthread){ .c = c, .addr = app };
	/* Got here, put on a thread of its own. */
	CHECK_OK(iovm_rcache_get(c, app, 4 * PG, 0, &x.mr));
	CHECK_OK(pthread_create(&tid, NULL, put_there, &x));
	CHECK_OK(pthread_join(tid, NULL));
	/* Got on a thread that exits holding it, put here. */
	CHECK_OK(pthread_create(&tid, NULL, get_there, &x));
	CHECK_OK(pthread_join(tid, NULL));
	CHECK_EQ(iovm_rcache_destroy(c), -EBUSY); /* held still */
	CHECK_OK(iovm_rcache_put(c, x.mr));
	/* Idle now: evicted by the next region, as the limit is one. */
	{
		struct iovm_mr *m;

		CHECK_OK(iovm_rcache_get(c, app + 8 * PG, PG, 0, &m));
		CHECK_OK(iovm_rcache_put(c, m));
		CHECK_EQ(cstats(c).evictions, 1);
		/* And the struct lives again for another region: its old holds do not count. */
		CHECK_OK(iovm_rcache_get(c, app, 4 * PG, 0, &m));
		CHECK_OK(iovm_rcache_put(c, m));
		CHECK_EQ(cstats(c).evictions, 2);
	}
	CHECK_OK(iovm_rcache_destroy(c));
	rig_close(&r);
	app_unmap(app, 16 * PG);
}

/*
 * Regions held beyond the limits stay while held, and go at the put that
 * leaves them idle (reg.h), on the get's thread (no lock) and on another
 * (under the cache's lock) alike: the cache is within its limits after
 * each put, not only after the next miss.
 */
TEST(held_past_the_limits_go_at_their_put)
{
	struct rig r;
	struct iovm_rcache *c;
	struct iovm_mr *m[6];
	uint8_t *app = app_map(64 * PG);

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	for (int by_bytes = 0; by_bytes < 2; by_bytes++) {
		struct iovm_rcache_attr ra = by_bytes ? (struct iovm_rcache_attr){ .max_bytes = 2 * PG }
						      : (struct iovm_rcache_attr){ .max_regions = 2 };

		CHECK_OK(iovm_rcache_create(r.dom, &ra, &c));
		for (int i = 0; i < 6; i++)
			CHECK_OK(iovm_rcache_get(c, app + i * 8 * PG, PG, 0, &m[i]));
		/* All six held: kept, past the limit, since none may go. */
		CHECK_EQ(cstats(c).regions, 6);
		for (int i = 0; i < 6; i++) {
			if (i % 2) {
				struct xthread x = { .c = c, .mr = m[i] };
				pthread_t tid;

				CHECK_OK(pthread_create(&tid, NULL, put_there, &x));
				CHECK_OK(pthread_join(tid, NULL));
			} else {
				CHECK_OK(iovm_rcache_put(c, m[i]));
			}
			/* What is idle goes while the cache is over its limits; the held ones stay. */
			CHECK_EQ(cstats(c).regions, (uint64_t)MAX(2, 5 - i));
		}
		CHECK(cstats(c).evictions >= 4);
		CHECK_OK(iovm_rcache_destroy(c));
	}
	rig_close(&r);
	app_unmap(app, 64 * PG);
}

/* Whether @m covers [p, p+len): an MR handed out for a range must. */
static bool mr_covers(struct iovm_mr *m, const void *p, size_t len)
{
	iovm_iova_t iova;

	return iovm_mr_iova(m, p, len, &iova) == 0;
}

/*
 * The index with many regions close together and of many sizes: hundreds
 * of pages in a few MiB (thousands of buffers in one heap arena look like
 * this), regions across the edge of two buckets, larger regions over the
 * small ones. Every one is found again, and what is found covers the range.
 */
TEST(crowded_memory_and_every_size)
{
	enum { SMALL = 512, SPAN = 4 << 20 };
	struct rig r;
	struct iovm_rcache *c;
	struct iovm_mr *m, *big, *edge, *whole;
	static struct iovm_mr *small[SMALL];
	uint8_t *app = app_map(SPAN + (64 << 10)), *heap, *base, *p;
	uint64_t hits;

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	heap = iovm_dma_alloc(r.ctx, 64 * PG, PG, 0);
	CHECK(heap != NULL);
	CHECK_OK(iovm_rcache_create(r.dom, &(struct iovm_rcache_attr){ .max_regions = 4 * SMALL }, &c));
	/* 64 KiB-aligned, so that bucket edges (16 KiB and up) fall where the test says. */
	base = (uint8_t *)align_up((uintptr_t)app, 64 << 10);
	fill_random(base, SPAN, 9);
	/* A page in every other one over 4 MiB: misses, then hits on the same MRs. */
	for (int i = 0; i < SMALL; i++) {
		CHECK_OK(iovm_rcache_get(c, base + i * 2 * PG, PG, IOVM_ACCESS_LOCAL_WRITE, &small[i]));
		CHECK_OK(iovm_rcache_put(c, small[i]));
	}
	CHECK_EQ(cstats(c).misses, SMALL);
	for (int i = 0; i < SMALL; i++) {
		CHECK_OK(iovm_rcache_get(c, base + i * 2 * PG + 100, 50, 0, &m));
		CHECK_MSG(m == small[i], "page %d found another MR", i);
		CHECK_OK(iovm_rcache_put(c, m));
	}
	CHECK_EQ(cstats(c).hits, SMALL);
	CHECK_EQ(cstats(c).misses, SMALL);
	/* 12 KiB from 4 KiB before a 16 KiB edge: across it, found from both sides. */
	p = base + 3 * PG;
	CHECK_OK(iovm_rcache_get(c, p, 3 * PG, IOVM_ACCESS_LOCAL_WRITE, &edge));
	CHECK_OK(iovm_rcache_put(c, edge));
	CHECK_OK(iovm_rcache_get(c, p + 2 * PG, PG, IOVM_ACCESS_LOCAL_WRITE, &m));
	CHECK(m == edge);
	CHECK_OK(iovm_rcache_put(c, m));
	CHECK_OK(iovm_rcache_get(c, p, 2 * PG, IOVM_ACCESS_LOCAL_WRITE, &m));
	CHECK(m == edge);
	CHECK_OK(iovm_rcache_put(c, m));
	/* 3 MiB over the small ones (and across a 2 MiB edge): no small region holds it, so a new one. */
	hits = cstats(c).hits;
	CHECK_OK(iovm_rcache_get(c, base + PG, 3 << 20, IOVM_ACCESS_LOCAL_WRITE, &big));
	CHECK(mr_covers(big, base + PG, 3 << 20));
	CHECK_OK(iovm_rcache_put(c, big));
	/* Anything inside it is a hit now, on a region that covers it. */
	for (uint64_t off = PG; off + 64 * PG <= (3u << 20); off += 61 * PG) {
		CHECK_OK(iovm_rcache_get(c, base + off, 64 * PG, IOVM_ACCESS_LOCAL_WRITE, &m));
		CHECK(mr_covers(m, base + off, 64 * PG));
		/* DMA through it: the oracle checks every page. */
		CHECK_EQ(dma_copy(&r, mr_iova(m, base + off), iova_of(&r, heap), 64 * PG), IOVM_STATUS_SUCCESS);
		CHECK(!memcmp(heap, base + off, 64 * PG));
		CHECK_OK(iovm_rcache_put(c, m));
	}
	CHECK_EQ(cstats(c).misses, SMALL + 2);
	CHECK(cstats(c).hits > hits);
	/* A range longer than any region: a miss, whatever lies under it. */
	CHECK_OK(iovm_rcache_get(c, base, SPAN, 0, &whole));
	CHECK_EQ(cstats(c).misses, SMALL + 3);
	CHECK(mr_covers(whole, base, SPAN));
	CHECK_OK(iovm_rcache_put(c, whole));
	/*
	 * Pages taken away: every region over them (small, across the edge, 3 MiB, 4 MiB) has
	 * them invalid, so a get there misses; a page beside them still hits.
	 */
	CHECK(mmap(base, 8 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == base);
	/* The monitor's thread invalidates: wait until it has, in every region over them. */
	for (unsigned spins = 0; mr_info(small[1]).valid_pages || mr_info(edge).valid_pages ||
				 mr_info(big).valid_pages != (3u << 20) / PG - 7 || mr_info(whole).valid_pages != SPAN / PG - 8;
	     spins++) {
		CHECK(spins < 100000);
		usleep(10);
	}
	hits = cstats(c).hits;
	CHECK_OK(iovm_rcache_get(c, base + 2 * PG, PG, 0, &m));
	CHECK_EQ(cstats(c).misses, SMALL + 4);
	CHECK(mr_covers(m, base + 2 * PG, PG));
	CHECK_OK(iovm_rcache_put(c, m));
	CHECK_OK(iovm_rcache_get(c, base + 8 * PG, PG, 0, &m));
	CHECK_EQ(cstats(c).hits, hits + 1);
	CHECK(mr_covers(m, base + 8 * PG, PG));
	CHECK_OK(iovm_rcache_put(c, m));
	CHECK_OK(iovm_rcache_destroy(c));
	no_violations(r.dom);
	rig_close(&r);
	app_unmap(app, SPAN + (64 << 10));
}

struct churn {
	struct iovm_rcache *c;
	uint8_t *base;
	uint64_t seed, gets;
};

/* Gets of ranges of 4 to 32 KiB here and there: with room for 8 regions, most gets evict. */
static void *churn_gets(void *arg)
{
	struct churn *w = arg;

	for (int i = 0; i < 20000; i++) {
		uint64_t pg = test_rand(&w->seed) % 240, n = 1 + test_rand(&w->seed) % 8;
		uint8_t *p = w->base + pg * PG + test_rand(&w->seed) % 64;
		struct iovm_mr *m;

		CHECK_OK(iovm_rcache_get(w->c, p, n * PG - 64, 0, &m));
		CHECK_MSG(mr_covers(m, p, n * PG - 64), "a get was given an MR that does not cover its range");
		CHECK_OK(iovm_rcache_put(w->c, m));
		w->gets++;
	}
	return NULL;
}

/*
 * Region structs move from bucket to bucket and level to level while other
 * threads walk the lists without a lock: every get still gets an MR that
 * covers its range (a struct that left a list while a reader stood on it
 * must not lead to a wrong one), and the counts add up.
 */
TEST(lists_under_churn)
{
	enum { THREADS = 3 };
	struct rig r;
	struct iovm_rcache *c;
	struct churn w[THREADS];
	pthread_t tid[THREADS];
	uint8_t *app = app_map(256 * PG);
	struct iovm_rcache_stats st;
	uint64_t gets = 0;

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	CHECK_OK(iovm_rcache_create(r.dom, &(struct iovm_rcache_attr){ .max_regions = 8 }, &c));
	memset(app, 1, 256 * PG);
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct churn){ .c = c, .base = app, .seed = 77 + (uint64_t)i };
		CHECK_OK(pthread_create(&tid[i], NULL, churn_gets, &w[i]));
	}
	for (int i = 0; i < THREADS; i++) {
		CHECK_OK(pthread_join(tid[i], NULL));
		gets += w[i].gets;
	}
	st = cstats(c);
	CHECK_EQ(gets, (uint64_t)THREADS * 20000);
	CHECK_EQ(st.hits + st.misses, gets);
	CHECK(st.evictions > 0 && st.hits > 0);
	CHECK(st.regions <= 8);
	CHECK_OK(iovm_rcache_destroy(c));
	no_violations(r.dom);
	rig_close(&r);
	app_unmap(app, 256 * PG);
}

struct flipper {
	uint8_t *p;
	size_t len;
	atomic_bool stop;
	_Atomic bool lost; /* another mapping took the hole: the flips stopped */
	_Atomic unsigned flips;
};

/* Unmap and map again, as fast as it goes, until told to stop (or another mapping took the hole). */
static void *flip(void *arg)
{
	struct flipper *f = arg;

	while (!atomic_load(&f->stop)) {
		munmap(f->p, f->len);
		if (mmap(f->p, f->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1,
			 0) != f->p) {
			f->lost = true;
			break;
		}
		f->flips++;
	}
	return NULL;
}

/*
 * A get whose memory goes while it registers fails with -EFAULT, as a get
 * of unmapped memory does: not -ENOMEM. Five times over, each with a new
 * context, whose first registration (it starts the monitor) is the
 * longest; a new cache every 64 gets, its region structs the last one's.
 */
TEST(get_under_a_concurrent_munmap)
{
	struct flipper f = { .len = 64 * PG };
	unsigned ok = 0, fault = 0;

	/*
	 * Far from where mmap() places what it is not told where to: the hole
	 * the flips open is not taken by another thread's allocation. (Under
	 * ThreadSanitizer, which keeps that address, anywhere.)
	 */
	f.p = TEST_TSAN ? MAP_FAILED
			: mmap((void *)(UINT64_C(0x3f) << 40), f.len, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (f.p == MAP_FAILED)
		f.p = app_map(f.len);
	for (unsigned round = 0; round < 5 && !atomic_load(&f.lost); round++) {
		struct rig r;
		struct iovm_rcache *c;
		pthread_t tid;

		rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
		CHECK_OK(iovm_rcache_create(r.dom, &(struct iovm_rcache_attr){ .max_regions = 1 }, &c));
		atomic_store(&f.stop, false);
		atomic_store(&f.flips, 0);
		CHECK_OK(pthread_create(&tid, NULL, flip, &f));
		/* Gets until the memory went and came back 200 times under them, 256 at least (or the flips stopped). */
		for (unsigned i = 0; (atomic_load(&f.flips) < 200 || i < 256) && !atomic_load(&f.lost) && i < 10000000; i++) {
			struct iovm_mr *m;
			int ret = iovm_rcache_get(c, f.p, f.len, IOVM_ACCESS_LOCAL_WRITE, &m);

			if (!ret) {
				ok++;
				CHECK(mr_info(m).addr == f.p && mr_info(m).len == f.len);
				CHECK_OK(iovm_rcache_put(c, m));
			} else {
				CHECK_MSG(ret == -EFAULT, "round %u, get %u under a munmap: %d (%s): %s", round, i,
					  ret, strerror(-ret), iovm_error_detail());
				fault++;
			}
			/* A new cache now and then, on the region structs of the one before (chunk_new()). */
			if (i % 64 == 63) {
				CHECK_OK(iovm_rcache_destroy(c));
				CHECK_OK(iovm_rcache_create(r.dom, &(struct iovm_rcache_attr){ .max_regions = 1 }, &c));
			}
		}
		atomic_store(&f.stop, true);
		CHECK_OK(pthread_join(tid, NULL));
		CHECK_OK(iovm_rcache_destroy(c));
		rig_close(&r);
		CHECK(atomic_load(&f.lost) || atomic_load(&f.flips) >= 200);
	}
	printf("# %u gets, %u of them -EFAULT\n", ok + fault, fault);
	if (atomic_load(&f.lost))
		SKIP_CASE("another mapping took the hole");
	app_unmap(f.p, f.len);
}

/*
 * Region structs outlive their cache: a destroyed cache's are kept for the
 * context's next caches (rcache.c, chunk_new()). Two caches living at once
 * on structs of a third, destroyed, one: neither finds what the old one
 * registered (every get a miss, also of the very ranges it had), no two
 * live MRs share a struct, each MR is its own range's and reaches its own
 * memory, one cache's MR is refused by the other, and memory replaced
 * since the old cache registered it is reached new.
 */
TEST(structs_of_a_destroyed_cache_live_again)
{
	enum { NB = 70, STRIDE = 2 * PG }; /* past one chunk of 64 structs */
	struct rig r;
	struct iovm_rcache *a, *b, *c;
	static struct iovm_mr *ma[NB], *mb[NB], *mc[NB];
	uint8_t *app = app_map(NB * STRIDE), *other = app_map(NB * STRIDE), *heap;
	unsigned reused = 0;

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	heap = iovm_dma_alloc(r.ctx, PG, PG, 0);
	CHECK(heap != NULL);
	memset(heap, 0x6b, PG);
	CHECK_OK(iovm_rcache_create(r.dom, NULL, &a));
	for (int i = 0; i < NB; i++) {
		CHECK_OK(iovm_rcache_get(a, app + i * STRIDE, PG, IOVM_ACCESS_LOCAL_WRITE, &ma[i]));
		CHECK_OK(iovm_rcache_put(a, ma[i]));
	}
	CHECK_OK(iovm_rcache_destroy(a));
	/* The first buffer's memory replaced after the old cache registered it. */
	CHECK(mmap(app, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == app);
	CHECK_OK(iovm_rcache_create(r.dom, NULL, &b));
	CHECK_OK(iovm_rcache_create(r.dom, NULL, &c));
	for (int i = 0; i < NB; i++) {
		CHECK_OK(iovm_rcache_get(b, app + i * STRIDE, PG, IOVM_ACCESS_LOCAL_WRITE, &mb[i]));
		CHECK_OK(iovm_rcache_get(c, other + i * STRIDE, PG, IOVM_ACCESS_LOCAL_WRITE, &mc[i]));
	}
	CHECK_EQ(cstats(b).misses, NB);
	CHECK_EQ(cstats(c).misses, NB);
	CHECK_EQ(cstats(b).hits + cstats(c).hits, 0);
	for (int i = 0; i < NB; i++) {
		struct iovm_mr_info ib = mr_info(mb[i]), ic = mr_info(mc[i]);

		for (int j = 0; j < NB; j++) {
			CHECK_MSG(mb[i] != mc[j], "two live MRs share a struct: b[%d], c[%d]", i, j);
			CHECK(j == i || (mb[i] != mb[j] && mc[i] != mc[j]));
			reused += mb[i] == ma[j] || mc[i] == ma[j];
		}
		CHECK(ib.addr == app + i * STRIDE && ib.len == PG && ib.valid && ib.valid_pages == 1);
		CHECK(ic.addr == other + i * STRIDE && ic.len == PG && ic.valid && ic.valid_pages == 1);
		CHECK(ib.lkey != ic.lkey);
	}
	/* Not vacuous: the new caches run on the old one's structs. */
	CHECK_EQ(reused, NB);
	/* Each reaches its own memory: the new memory of the first buffer, and the other cache's. */
	CHECK_EQ(dma_copy(&r, iova_of(&r, heap), mr_iova(mb[0], app), PG), IOVM_STATUS_SUCCESS);
	CHECK_EQ(app[0], 0x6b);
	CHECK_EQ(dma_copy(&r, iova_of(&r, heap), mr_iova(mc[NB - 1], other + (NB - 1) * STRIDE), PG),
		 IOVM_STATUS_SUCCESS);
	CHECK_EQ(other[(NB - 1) * STRIDE + PG - 1], 0x6b);
	CHECK_EQ(app[(NB - 1) * STRIDE], 0);
	/* One cache's MR is not the other's to take back. */
	CHECK_EQ(iovm_rcache_put(c, mb[0]), -EINVAL);
	CHECK_EQ(iovm_rcache_put(b, mc[0]), -EINVAL);
	/* Memory taken from one cache's region leaves the other's alone. */
	CHECK_OK(munmap(app + STRIDE, PG));
	CHECK_EQ(mr_info(mb[1]).valid_pages, 0);
	CHECK_EQ(mr_info(mc[1]).valid_pages, 1);
	for (int i = 0; i < NB; i++) {
		CHECK_OK(iovm_rcache_put(b, mb[i]));
		CHECK_OK(iovm_rcache_put(c, mc[i]));
	}
	CHECK_OK(iovm_rcache_destroy(b));
	CHECK_OK(iovm_rcache_destroy(c));
	no_violations(r.dom);
	rig_close(&r);
	app_unmap(app, NB * STRIDE);
	app_unmap(other, NB * STRIDE);
}

/*
 * A thread's working set: more buffers than its hints have slots and its
 * table of holds has entries, got and put in turn, then all held at once.
 * Each is found again on its own MR; the holds past the table balance (the
 * cache stays busy until the last put, and a put too many is refused);
 * and no hint serves memory that was replaced since it was set.
 */
TEST(a_working_set_of_buffers)
{
	enum { NB = 136, STRIDE = 8 * PG, LEN = 4 * PG };
	struct rig r;
	struct iovm_rcache *c;
	static struct iovm_mr *m[NB];
	struct iovm_mr *again;
	uint8_t *app = app_map(NB * STRIDE), *heap;
	uint64_t hits, misses;

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	heap = iovm_dma_alloc(r.ctx, PG, PG, 0);
	CHECK(heap != NULL);
	memset(heap, 0x5a, PG);
	CHECK_OK(iovm_rcache_create(r.dom, NULL, &c));
	for (int i = 0; i < NB; i++) {
		CHECK_OK(iovm_rcache_get(c, app + i * STRIDE, LEN, IOVM_ACCESS_LOCAL_WRITE, &m[i]));
		CHECK_OK(iovm_rcache_put(c, m[i]));
	}
	/* In turn, twice, by a part of each: hits, each on its buffer's MR. */
	for (int round = 0; round < 2; round++)
		for (int i = 0; i < NB; i++) {
			CHECK_OK(iovm_rcache_get(c, app + i * STRIDE + 100, LEN - 200, 0, &again));
			CHECK_MSG(again == m[i], "buffer %d found another MR", i);
			CHECK_OK(iovm_rcache_put(c, again));
		}
	CHECK_EQ(cstats(c).hits, 2 * NB);
	CHECK_EQ(cstats(c).misses, NB);
	/* All held at once. */
	for (int i = 0; i < NB; i++) {
		CHECK_OK(iovm_rcache_get(c, app + i * STRIDE, LEN, 0, &again));
		CHECK(again == m[i]);
	}
	CHECK_EQ(iovm_rcache_destroy(c), -EBUSY);
	for (int i = NB - 1; i >= 0; i--)
		CHECK_OK(iovm_rcache_put(c, m[i]));
	CHECK_EQ(iovm_rcache_put(c, m[0]), -EINVAL);
	CHECK_EQ(iovm_rcache_put(c, m[NB - 1]), -EINVAL);
	/*
	 * Every third buffer's memory replaced: once the mmap() returned,
	 * those miss and register the new memory; the rest still hit.
	 */
	for (int i = 0; i < NB; i += 3) {
		CHECK(mmap(app + i * STRIDE, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
			   0) == app + i * STRIDE);
		memset(app + i * STRIDE, 0, LEN);
	}
	hits = cstats(c).hits;
	misses = cstats(c).misses;
	for (int i = 0; i < NB; i++) {
		CHECK_OK(iovm_rcache_get(c, app + i * STRIDE, LEN, IOVM_ACCESS_LOCAL_WRITE, &again));
		if (i % 3) {
			CHECK_MSG(again == m[i], "buffer %d found another MR", i);
		} else {
			/* A new registration (counted below; its struct may be the old one's, reused). */
			CHECK_EQ(dma_copy(&r, iova_of(&r, heap), mr_iova(again, app + i * STRIDE + PG), PG),
				 IOVM_STATUS_SUCCESS);
			CHECK_EQ(app[i * STRIDE + PG], 0x5a);
		}
		CHECK_OK(iovm_rcache_put(c, again));
	}
	CHECK_EQ(cstats(c).misses - misses, (NB + 2) / 3);
	CHECK_EQ(cstats(c).hits - hits, NB - (NB + 2) / 3);
	CHECK_OK(iovm_rcache_destroy(c));
	no_violations(r.dom);
	rig_close(&r);
	app_unmap(app, NB * STRIDE);
}

int main(void)
{
	test_init();
	RUN(hits_and_misses);
	RUN(only_the_pages_taken_away);
	RUN(free_then_malloc_at_the_same_address);
	RUN(eviction);
	RUN(unwatchable_memory_is_not_kept);
	RUN(held_region_taken_away);
	RUN(gets_and_puts_on_other_threads);
	RUN(held_past_the_limits_go_at_their_put);
	RUN(crowded_memory_and_every_size);
	RUN(lists_under_churn);
	RUN(get_under_a_concurrent_munmap);
	RUN(a_working_set_of_buffers);
	RUN(structs_of_a_destroyed_cache_live_again);
	return 0;
}
