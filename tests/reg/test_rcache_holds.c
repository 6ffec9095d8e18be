/* SPDX-License-Identifier: MIT */
/*
 * test_rcache_holds.c - what the registration cache owes its holders: a
 * region found by a lock-free hit the instant it is published is a region
 * whose MR the cache keeps (a put of such a hit must not deregister it),
 * and a put is accepted exactly once per get: the caller's own MR, an MR
 * of another cache, a second put of one get (on the same thread or
 * another), a put of a region invalidated while held and of memory the
 * cache does not keep are each refused or accepted as a count of gets
 * says, with no side effect when refused.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <unistd.h>

#include "reg/reg_internal.h"
#include "reg/reg_util.h"

static struct iovm_rcache_stats cstats(struct iovm_rcache *c)
{
	struct iovm_rcache_stats st;

	CHECK_OK(iovm_rcache_stats(c, &st));
	return st;
}

/* ---- a hit on a region the instant it is published ---- */

static struct iovm_rcache *hook_cache;
static uint8_t *hook_addr;
static atomic_int hook_runs;
static struct iovm_mr *hook_mr;
static int hook_get_ret = 1, hook_put_ret = 1;

static void *hit_and_put(void *arg)
{
	struct iovm_mr *m;

	(void)arg;
	hook_get_ret = iovm_rcache_get(hook_cache, hook_addr, 4 * PG, 0, &m);
	if (!hook_get_ret) {
		hook_mr = m;
		hook_put_ret = iovm_rcache_put(hook_cache, m);
	}
	return NULL;
}

/* The miss's region is findable now: another thread hits it, and puts it back, before the miss returns. */
static void published(struct iovm_rcache *c)
{
	pthread_t tid;

	if (c != hook_cache || atomic_fetch_add(&hook_runs, 1))
		return;
	if (pthread_create(&tid, NULL, hit_and_put, NULL) == 0)
		pthread_join(tid, NULL);
}

TEST(hit_on_a_region_just_published)
{
	struct rig r;
	struct iovm_mr *m;
	uint8_t *app = app_map(4 * PG), *heap;

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	heap = iovm_dma_alloc(r.ctx, PG, PG, 0);
	memset(heap, 0x5c, PG);
	CHECK_OK(iovm_rcache_create(r.dom, NULL, &hook_cache));
	hook_addr = app;
	rcache_test_published = published;
	CHECK_OK(iovm_rcache_get(hook_cache, app, 4 * PG, IOVM_ACCESS_LOCAL_WRITE, &m));
	rcache_test_published = NULL;
	CHECK_EQ(atomic_load(&hook_runs), 1);
	/* The other thread's hit found the region, and its put was a put, not a deregistration. */
	CHECK_OK(hook_get_ret);
	CHECK(hook_mr == m);
	CHECK_OK(hook_put_ret);
	CHECK_EQ(rstats(&r).mrs, 1);
	CHECK(mr_info(m).valid);
	CHECK_EQ(dma_copy(&r, iova_of(&r, heap), mr_iova(m, app + PG), PG), IOVM_STATUS_SUCCESS);
	CHECK_EQ(app[PG], 0x5c);
	CHECK_OK(iovm_rcache_put(hook_cache, m));
	/* No hold leaked: the cache goes. */
	CHECK_OK(iovm_rcache_destroy(hook_cache));
	CHECK_EQ(rstats(&r).mrs, 0);
	no_violations(r.dom);
	rig_close(&r);
	app_unmap(app, 4 * PG);
}

/* ---- a put over the limits while a miss registers ---- */

static struct iovm_rcache *limit_cache;
static uint8_t *limit_addr;
static atomic_int limit_runs;
static int limit_get_ret = 1, limit_put_ret = 1;

static void *hit_and_put_over_limits(void *arg)
{
	struct iovm_mr *m;

	(void)arg;
	limit_get_ret = iovm_rcache_get(limit_cache, limit_addr, PG, 0, &m);
	if (!limit_get_ret)
		limit_put_ret = iovm_rcache_put(limit_cache, m);
	return NULL;
}

/* A miss holds the cache's lock here: another thread's put must not wait for it. */
static void registering(struct iovm_rcache *c)
{
	pthread_t tid;

	if (c != limit_cache || atomic_fetch_add(&limit_runs, 1))
		return;
	if (pthread_create(&tid, NULL, hit_and_put_over_limits, NULL) == 0)
		pthread_join(tid, NULL);
}

/*
 * The cache holds more than its limit, every region held, and a miss is
 * registering (a real device takes milliseconds there, under the cache's
 * lock). Another thread hits a region and puts it, its last hold of it:
 * the put returns without the lock (waiting for it here would never end,
 * as the miss waits for that thread), and the region, still held by this
 * thread, stays. The put that lets go of it at last evicts it.
 */
TEST(put_over_the_limits_never_waits_for_a_miss)
{
	struct rig r;
	struct iovm_mr *a, *b, *n;
	uint8_t *app = app_map(16 * PG);

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	CHECK_OK(iovm_rcache_create(r.dom, &(struct iovm_rcache_attr){ .max_regions = 1 }, &limit_cache));
	CHECK_OK(iovm_rcache_get(limit_cache, app, PG, 0, &a));
	CHECK_OK(iovm_rcache_get(limit_cache, app + 4 * PG, PG, 0, &b));
	CHECK_EQ(cstats(limit_cache).regions, 2); /* both held: over the limit */
	limit_addr = app + 4 * PG;
	rcache_test_published = registering;
	CHECK_OK(iovm_rcache_get(limit_cache, app + 8 * PG, PG, 0, &n));
	rcache_test_published = NULL;
	CHECK_EQ(atomic_load(&limit_runs), 1);
	CHECK_OK(limit_get_ret);
	CHECK_OK(limit_put_ret);
	/* Nothing was idle: all three held here still. */
	CHECK_EQ(cstats(limit_cache).regions, 3);
	CHECK_EQ(cstats(limit_cache).evictions, 0);
	/* b's last hold goes, then a's: each goes at its put; n, held, stays. */
	CHECK_OK(iovm_rcache_put(limit_cache, b));
	CHECK_EQ(cstats(limit_cache).regions, 2);
	CHECK_OK(iovm_rcache_put(limit_cache, a));
	CHECK_EQ(cstats(limit_cache).regions, 1);
	CHECK_EQ(cstats(limit_cache).evictions, 2);
	CHECK(mr_info(n).valid);
	CHECK_OK(iovm_rcache_put(limit_cache, n));
	CHECK_EQ(cstats(limit_cache).regions, 1); /* within the limit: kept */
	CHECK_OK(iovm_rcache_destroy(limit_cache));
	CHECK_EQ(rstats(&r).mrs, 0);
	no_violations(r.dom);
	rig_close(&r);
	app_unmap(app, 16 * PG);
}

/* ---- many threads on the same new regions ---- */

enum { NEW_THREADS = 4, NEW_ROUNDS = 400, NEW_SLOTS = 8 };

struct newreg {
	struct iovm_rcache *c;
	uint8_t *base;
	pthread_barrier_t *start;
	uint64_t seed;
	unsigned gets;
};

/*
 * Every round all threads get the same range, which no region holds yet
 * (the cache keeps two regions and the ranges go round eight slots), then
 * get it again and put both: the first of them registers, the others hit
 * it while it is being filed, under the lock or not.
 */
static void *new_regions(void *arg)
{
	struct newreg *w = arg;

	pthread_barrier_wait(w->start);
	for (unsigned round = 0; round < NEW_ROUNDS; round++) {
		uint8_t *p = w->base + (round % NEW_SLOTS) * 4 * PG;
		struct iovm_mr *m1, *m2;

		CHECK_OK(iovm_rcache_get(w->c, p, 4 * PG, 0, &m1));
		CHECK_OK(iovm_rcache_get(w->c, p + PG, PG, 0, &m2));
		CHECK_OK(iovm_rcache_put(w->c, m2));
		CHECK_OK(iovm_rcache_put(w->c, m1));
		w->gets += 2;
	}
	return NULL;
}

TEST(concurrent_gets_of_new_regions)
{
	struct rig r;
	struct iovm_rcache *c;
	struct newreg w[NEW_THREADS];
	pthread_t tid[NEW_THREADS];
	pthread_barrier_t start;
	uint8_t *app = app_map(NEW_SLOTS * 4 * PG);
	uint64_t gets = 0;

	memset(app, 1, NEW_SLOTS * 4 * PG);
	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	CHECK_OK(iovm_rcache_create(r.dom, &(struct iovm_rcache_attr){ .max_regions = 2 }, &c));
	pthread_barrier_init(&start, NULL, NEW_THREADS);
	for (int i = 0; i < NEW_THREADS; i++) {
		w[i] = (struct newreg){ .c = c, .base = app, .start = &start, .seed = (uint64_t)i + 1 };
		CHECK_OK(pthread_create(&tid[i], NULL, new_regions, &w[i]));
	}
	for (int i = 0; i < NEW_THREADS; i++) {
		CHECK_OK(pthread_join(tid[i], NULL));
		gets += w[i].gets;
	}
	pthread_barrier_destroy(&start);
	CHECK_EQ(cstats(c).hits + cstats(c).misses, gets);
	CHECK(cstats(c).regions <= 2);
	/* Every hold was given back: the cache goes, and with it every MR. */
	CHECK_OK(iovm_rcache_destroy(c));
	CHECK_EQ(rstats(&r).mrs, 0);
	no_violations(r.dom);
	rig_close(&r);
	app_unmap(app, NEW_SLOTS * 4 * PG);
}

/* ---- puts the cache must refuse ---- */

TEST(put_of_the_callers_own_mr)
{
	struct rig r;
	struct iovm_rcache *c;
	struct iovm_mr *own;
	uint8_t *app = app_map(4 * PG), *heap;

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	heap = iovm_dma_alloc(r.ctx, PG, PG, 0);
	memset(heap, 0x21, PG);
	CHECK_OK(iovm_rcache_create(r.dom, NULL, &c));
	CHECK_OK(iovm_mr_reg(r.dom, app, 4 * PG, IOVM_ACCESS_LOCAL_WRITE, &own));
	CHECK_EQ(iovm_rcache_put(c, own), -EINVAL);
	/* Untouched: registered, valid, and DMA reaches it. */
	CHECK_EQ(rstats(&r).mrs, 1);
	CHECK(mr_info(own).valid);
	CHECK_EQ(dma_copy(&r, iova_of(&r, heap), mr_iova(own, app), PG), IOVM_STATUS_SUCCESS);
	CHECK_EQ(app[0], 0x21);
	CHECK_OK(iovm_mr_dereg(own));
	CHECK_OK(iovm_rcache_destroy(c));
	rig_close(&r);
	app_unmap(app, 4 * PG);
}

TEST(put_into_another_cache)
{
	struct rig r;
	struct iovm_rcache *c1, *c2;
	struct iovm_mr *m, *again;
	uint8_t *app = app_map(4 * PG);

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	CHECK_OK(iovm_rcache_create(r.dom, NULL, &c1));
	CHECK_OK(iovm_rcache_create(r.dom, NULL, &c2));
	CHECK_OK(iovm_rcache_get(c1, app, 4 * PG, 0, &m));
	CHECK_EQ(iovm_rcache_put(c2, m), -EINVAL);
	/* Still held in its own cache, and still kept by it. */
	CHECK_EQ(iovm_rcache_destroy(c1), -EBUSY);
	CHECK(mr_info(m).valid);
	CHECK_OK(iovm_rcache_get(c1, app, PG, 0, &again));
	CHECK(again == m);
	CHECK_OK(iovm_rcache_put(c1, again));
	CHECK_OK(iovm_rcache_put(c1, m));
	CHECK_OK(iovm_rcache_destroy(c2));
	CHECK_OK(iovm_rcache_destroy(c1));
	CHECK_EQ(rstats(&r).mrs, 0);
	rig_close(&r);
	app_unmap(app, 4 * PG);
}

TEST(a_get_put_twice)
{
	struct rig r;
	struct iovm_rcache *c;
	struct iovm_mr *m, *m2, *again;
	uint8_t *app = app_map(4 * PG);

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	CHECK_OK(iovm_rcache_create(r.dom, &(struct iovm_rcache_attr){ .max_regions = 1 }, &c));
	CHECK_OK(iovm_rcache_get(c, app, 4 * PG, 0, &m));
	CHECK_OK(iovm_rcache_put(c, m));
	CHECK_EQ(iovm_rcache_put(c, m), -EINVAL);
	/* No side effect: kept, a hit again, and held by that hit. */
	CHECK_EQ(cstats(c).regions, 1);
	CHECK_OK(iovm_rcache_get(c, app, 4 * PG, 0, &again));
	CHECK(again == m);
	CHECK_EQ(cstats(c).hits, 1);
	CHECK_EQ(iovm_rcache_destroy(c), -EBUSY);
	/* Two gets, three puts: the third is refused. */
	CHECK_OK(iovm_rcache_get(c, app, PG, 0, &m2));
	CHECK_OK(iovm_rcache_put(c, m2));
	CHECK_OK(iovm_rcache_put(c, again));
	CHECK_EQ(iovm_rcache_put(c, m), -EINVAL);
	CHECK_OK(iovm_rcache_destroy(c));
	CHECK_EQ(rstats(&r).mrs, 0);
	rig_close(&r);
	app_unmap(app, 4 * PG);
}

struct putter {
	struct iovm_rcache *c;
	struct iovm_mr *mr;
	int ret[2];
};

static void *put_twice_there(void *arg)
{
	struct putter *p = arg;

	p->ret[0] = iovm_rcache_put(p->c, p->mr);
	p->ret[1] = iovm_rcache_put(p->c, p->mr);
	return NULL;
}

TEST(a_get_put_twice_across_threads)
{
	struct rig r;
	struct iovm_rcache *c;
	struct putter p;
	pthread_t tid;
	struct iovm_mr *m, *again;
	uint8_t *app = app_map(4 * PG);

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	CHECK_OK(iovm_rcache_create(r.dom, NULL, &c));
	/* Got here (a miss), then a hit here too: two holds on this thread. */
	CHECK_OK(iovm_rcache_get(c, app, 4 * PG, 0, &m));
	CHECK_OK(iovm_rcache_put(c, m));
	CHECK_OK(iovm_rcache_get(c, app, 4 * PG, 0, &m));
	/* Put twice on another thread: once is the get's, the second is refused. */
	p = (struct putter){ .c = c, .mr = m };
	CHECK_OK(pthread_create(&tid, NULL, put_twice_there, &p));
	CHECK_OK(pthread_join(tid, NULL));
	CHECK_OK(p.ret[0]);
	CHECK_EQ(p.ret[1], -EINVAL);
	/* And here, where the get was: nothing is held any more. */
	CHECK_EQ(iovm_rcache_put(c, m), -EINVAL);
	CHECK_EQ(cstats(c).regions, 1);
	/* The counts still work: a hit, put here, and the cache goes. */
	CHECK_OK(iovm_rcache_get(c, app, 4 * PG, 0, &again));
	CHECK(again == m);
	CHECK_OK(iovm_rcache_put(c, again));
	CHECK_EQ(iovm_rcache_put(c, again), -EINVAL);
	CHECK_OK(iovm_rcache_destroy(c));
	rig_close(&r);
	app_unmap(app, 4 * PG);
}

TEST(put_of_a_region_taken_away_while_held)
{
	struct rig r;
	struct iovm_rcache *c;
	struct iovm_mr *m, *other;
	uint8_t *app = app_map(8 * PG);

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	CHECK_OK(iovm_rcache_create(r.dom, NULL, &c));
	CHECK_OK(iovm_rcache_get(c, app, 4 * PG, 0, &m));
	/* Its memory replaced while held: the hold is still real, the put accepted once. */
	CHECK(mmap(app, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == app);
	CHECK(!mr_info(m).valid);
	CHECK_OK(iovm_rcache_put(c, m));
	CHECK_EQ(iovm_rcache_put(c, m), -EINVAL);
	/* A miss over it retires the dead region; a put of its MR now is refused as well. */
	CHECK_OK(iovm_rcache_get(c, app, 4 * PG, 0, &other));
	CHECK_EQ(iovm_rcache_put(c, m == other ? other : m), m == other ? 0 : -EINVAL);
	if (m != other)
		CHECK_OK(iovm_rcache_put(c, other));
	CHECK_OK(iovm_rcache_destroy(c));
	CHECK_EQ(rstats(&r).mrs, 0);
	rig_close(&r);
	app_unmap(app, 8 * PG);
}

TEST(put_twice_of_memory_the_cache_does_not_keep)
{
	struct rig r;
	struct iovm_rcache *c;
	struct iovm_mr *m;
	int fd = open("/proc/self/exe", O_RDONLY);
	uint8_t *file = mmap(NULL, PG, PROT_READ, MAP_PRIVATE, fd, 0);

	CHECK(fd >= 0 && file != MAP_FAILED);
	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	CHECK_OK(iovm_rcache_create(r.dom, NULL, &c));
	CHECK_OK(iovm_rcache_get(c, file, PG, 0, &m));
	CHECK_EQ(cstats(c).uncached, 1);
	/* Held: the cache cannot go yet. */
	CHECK_EQ(iovm_rcache_destroy(c), -EBUSY);
	CHECK_OK(iovm_rcache_put(c, m));
	CHECK_EQ(rstats(&r).mrs, 0);
	CHECK_EQ(iovm_rcache_put(c, m), -EINVAL);
	CHECK_OK(iovm_rcache_destroy(c));
	rig_close(&r);
	munmap(file, PG);
	close(fd);
}

int main(void)
{
	test_init();
	RUN_SELECTED(hit_on_a_region_just_published);
	RUN_SELECTED(put_over_the_limits_never_waits_for_a_miss);
	RUN_SELECTED(concurrent_gets_of_new_regions);
	RUN_SELECTED(put_of_the_callers_own_mr);
	RUN_SELECTED(put_into_another_cache);
	RUN_SELECTED(a_get_put_twice);
	RUN_SELECTED(a_get_put_twice_across_threads);
	RUN_SELECTED(put_of_a_region_taken_away_while_held);
	RUN_SELECTED(put_twice_of_memory_the_cache_does_not_keep);
	return 0;
}
