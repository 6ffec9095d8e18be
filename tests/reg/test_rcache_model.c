/* SPDX-License-Identifier: MIT */
/*
 * test_rcache_model.c - the registration cache and the memory monitor
 * against a plain reference model (rcache_model.h): random sequences of
 * get, put, munmap, mmap, mremap, madvise, glibc free()+malloc() and fork,
 * every MR held checked after each step by query and by DMA; on one
 * thread, then on 2 to 4 threads sharing the cache.
 *
 *   RCACHE_MODEL_SEED=0x...     replay a seed (printed at the start)
 *   RCACHE_MODEL_STEPS=N        steps per thread (default 2000, 600 per thread)
 *   RCACHE_MODEL_SETTLE_US=N    diagnostic: sleep after each change of the
 *                               memory, to see what else breaks beside a
 *                               late monitor (issue 16 item 5)
 *   RCACHE_MODEL_TRACE=1        diagnostic: print every step as it runs
 */
#include <pthread.h>
#include <time.h>

#include "reg/rcache_model_run.h"

static uint64_t seed_base;

static unsigned long env_steps(unsigned long dflt)
{
	const char *s = getenv("RCACHE_MODEL_STEPS");

	return s ? strtoul(s, NULL, 0) : dflt;
}

/* Limits of the cache, from the seed: the defaults, or small ones that make it evict. */
static struct iovm_rcache_attr model_attr(uint64_t seed)
{
	static const size_t regions[] = { 0, 16, 64 }, bytes[] = { 0, 1u << 20, 8u << 20 };

	return (struct iovm_rcache_attr){ .max_regions = regions[seed % 3], .max_bytes = bytes[(seed / 3) % 3] };
}

/* Everything given back: the cache goes, and with it every registration it kept. */
static void cache_done(struct rig *r, struct iovm_rcache *cache)
{
	struct iovm_reg_stats st;
	int ret = iovm_rcache_destroy(cache);

	CHECK_MSG(ret == 0, "iovm_rcache_destroy with nothing held: %d", ret);
	CHECK_OK(iovm_reg_stats(r->ctx, &st));
	CHECK_MSG(st.mrs == 0, "%llu MRs still registered after the cache was destroyed", (unsigned long long)st.mrs);
}

static void model_report(const struct model *m)
{
	printf("# thread %u: %lu steps, %lu gets (%lu hits checked), %lu DMA refusals, %lu stale keys refused, %u forks\n",
	       m->id, m->step, m->gets, m->hits_checked, m->faults_seen, m->stale_refused, m->forks);
}

TEST(model_one_thread)
{
	struct rig r;
	struct model *m = calloc(1, sizeof(*m));
	uint64_t seed = seed_base;
	struct iovm_rcache_attr attr = model_attr(seed);
	unsigned long steps = env_steps(2000);
	struct iovm_rcache *cache;

	CHECK(m != NULL);
	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	CHECK_OK(iovm_rcache_create(r.dom, &attr, &cache));
	m->seed = seed;
	m->src.rng = seed | 1;
	m->use_fork = true;
	m->max_regions = attr.max_regions;
	m->max_bytes = attr.max_bytes;
	model_init(m, &r, cache, 0, 1024, NULL);
	printf("# seed %#llx: max_regions %zu, max_bytes %zu, %lu steps, monitor %d\n", (unsigned long long)seed,
	       attr.max_regions, attr.max_bytes, steps, m->monitor);
	for (unsigned long i = 0; i < steps; i++)
		model_step(m);
	model_report(m);
	model_fini(m);
	cache_done(&r, cache);
	rig_close(&r);
	free(m);
}

struct worker {
	pthread_t thread;
	struct model m;
	unsigned long steps;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	for (unsigned long i = 0; i < w->steps; i++)
		model_step(&w->m);
	return NULL;
}

/*
 * Threads share the cache and a read-only arena, each with its own arena,
 * malloc blocks and queue: each models what it alone changes, and all of
 * them get and put the shared memory's regions at once.
 */
TEST(model_threads)
{
	uint64_t seed = seed_base ^ 0x7468726561647321ull;
	unsigned nthreads = 2 + (unsigned)(seed % 3);
	struct iovm_rcache_attr attr = model_attr(seed / 7);
	struct model_arena shared = { 0 };
	struct model *setup = calloc(1, sizeof(*setup));
	struct worker *w = calloc(nthreads, sizeof(*w));
	struct iovm_rcache *cache;
	struct rig r;

	CHECK(setup && w);
	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	CHECK_OK(iovm_rcache_create(r.dom, &attr, &cache));
	setup->seed = seed;
	arena_init(setup, &shared, 64);
	printf("# seed %#llx: %u threads, max_regions %zu, max_bytes %zu\n", (unsigned long long)seed, nthreads,
	       attr.max_regions, attr.max_bytes);
	for (unsigned i = 0; i < nthreads; i++) {
		struct model *m = &w[i].m;

		m->seed = seed + i;
		m->src.rng = (seed + 0x9e3779b97f4a7c15ull * (i + 1)) | 1;
		m->use_fork = i == 0;
		m->max_regions = attr.max_regions;
		m->max_bytes = attr.max_bytes;
		model_init(m, &r, cache, i, 256, &shared);
		w[i].steps = env_steps(600);
	}
	for (unsigned i = 0; i < nthreads; i++)
		CHECK(pthread_create(&w[i].thread, NULL, worker_main, &w[i]) == 0);
	for (unsigned i = 0; i < nthreads; i++) {
		CHECK(pthread_join(w[i].thread, NULL) == 0);
		model_report(&w[i].m);
	}
	/* The shared memory was only read. */
	CHECK(!memcmp(shared.base, shared.shadow, shared.pages * PG));
	for (unsigned i = 0; i < nthreads; i++)
		model_fini(&w[i].m);
	cache_done(&r, cache);
	arena_fini(&shared);
	rig_close(&r);
	free(w);
	free(setup);
}

int main(void)
{
	const char *s = getenv("RCACHE_MODEL_SEED");
	struct timespec ts;

	test_init();
	clock_gettime(CLOCK_REALTIME, &ts);
	seed_base = s ? strtoull(s, NULL, 0) : (uint64_t)ts.tv_sec * 1000000007ull ^ (uint64_t)ts.tv_nsec;
	printf("# RCACHE_MODEL_SEED=%#llx\n", (unsigned long long)seed_base);
	RUN(model_one_thread);
	RUN(model_threads);
	return 0;
}
