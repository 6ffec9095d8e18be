/* SPDX-License-Identifier: MIT */
/*
 * test_attack_mem_threads.c - attacks "Thread safety: safe; from any
 * thread, not only the allocating one" (mem.h): producers allocate,
 * consumers on other threads check and free, while others allocate
 * and free on their own and trim; no two live allocations may share a
 * byte (each is stamped with its owner's pattern and checked before it is
 * freed), every allocation translates, and the statistics add up at the end.
 */
#include "attack.h"

static struct iovm_ctx *ctx;

/*
 * Allocations per producer (each churn thread makes 1.5 times as many
 * calls): 5000 keep make check's four builds within seconds (TSan ran
 * out of its 60 s at 20000); ATTACK_MEM_THREADS_STEPS asks for more.
 */
static int steps;

#define RING 1024
struct msg {
	uint8_t *p;
	size_t n;
	uint8_t tag;
};
static struct msg ring[RING];
static _Atomic unsigned head, tail;
static pthread_mutex_t ring_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int producers_left;
static _Atomic unsigned long overlaps, handed;

static int push(struct msg m)
{
	int ok = 0;
	pthread_mutex_lock(&ring_lock);
	if (atomic_load(&head) - atomic_load(&tail) < RING) {
		ring[atomic_load(&head) % RING] = m;
		atomic_fetch_add(&head, 1);
		ok = 1;
	}
	pthread_mutex_unlock(&ring_lock);
	return ok;
}

static int pop(struct msg *m)
{
	int ok = 0;
	pthread_mutex_lock(&ring_lock);
	if (atomic_load(&tail) != atomic_load(&head)) {
		*m = ring[atomic_load(&tail) % RING];
		atomic_fetch_add(&tail, 1);
		ok = 1;
	}
	pthread_mutex_unlock(&ring_lock);
	return ok;
}

static void *producer(void *arg)
{
	uint64_t seed = (uintptr_t)arg;
	for (int i = 0; i < steps; i++) {
		struct msg m;
		m.n = 1 + test_rand(&seed) % (test_rand(&seed) % 8 ? 4096 : 300000);
		m.tag = (uint8_t)(1 + test_rand(&seed) % 254);
		uint32_t fl = test_rand(&seed) % 5 == 0 ? IOVM_DMA_ZERO : 0;
		m.p = iovm_dma_alloc(ctx, m.n, (size_t)1 << (test_rand(&seed) % 13), fl);
		CHECK(m.p != NULL);
		if (fl)
			CHECK(all_bytes(m.p, m.n, 0));
		memset(m.p, m.tag, m.n);
		iovm_pa_t pa;
		CHECK_OK(iovm_dma_pa(ctx, m.p + m.n - 1, &pa));
		while (!push(m))
			sched_yield();
		atomic_fetch_add(&handed, 1);
	}
	atomic_fetch_sub(&producers_left, 1);
	return NULL;
}

static void *consumer(void *arg)
{
	(void)arg;
	struct msg m;
	for (;;) {
		if (!pop(&m)) {
			if (!atomic_load(&producers_left) && atomic_load(&tail) == atomic_load(&head))
				break;
			sched_yield();
			continue;
		}
		if (!all_bytes(m.p, m.n, m.tag))
			atomic_fetch_add(&overlaps, 1);
		CHECK(iovm_dma_size(ctx, m.p) >= m.n);
		CHECK_OK(iovm_dma_free(ctx, m.p));
	}
	return NULL;
}

static void *local_churn(void *arg)
{
	uint64_t seed = (uintptr_t)arg;
	struct msg own[32] = { 0 };
	for (int i = 0; i < steps * 3 / 2; i++) {
		int k = test_rand(&seed) % 32;
		if (own[k].p) {
			if (!all_bytes(own[k].p, own[k].n, own[k].tag))
				atomic_fetch_add(&overlaps, 1);
			CHECK_OK(iovm_dma_free(ctx, own[k].p));
			own[k].p = NULL;
		} else {
			own[k].n = 1 + test_rand(&seed) % 70000;
			own[k].tag = (uint8_t)(1 + test_rand(&seed) % 254);
			own[k].p = iovm_dma_realloc(ctx, NULL, own[k].n, 0, 0);
			CHECK(own[k].p != NULL);
			memset(own[k].p, own[k].tag, own[k].n);
		}
		if (i % 1000 == 0)
			CHECK(iovm_dma_trim(ctx, i % 2000 ? 0 : IOVM_TRIM_ALL) >= 0);
	}
	for (int k = 0; k < 32; k++)
		if (own[k].p) {
			if (!all_bytes(own[k].p, own[k].n, own[k].tag))
				atomic_fetch_add(&overlaps, 1);
			CHECK_OK(iovm_dma_free(ctx, own[k].p));
		}
	return NULL;
}

TEST(memory_freed_on_other_threads_never_overlaps_live_memory)
{
	pthread_t t[6];
	struct iovm_mem_stats st;

	atomic_store(&producers_left, 2);
	atomic_store(&handed, 0);
	atomic_store(&head, 0);
	atomic_store(&tail, 0);
	CHECK(pthread_create(&t[0], NULL, producer, (void *)(uintptr_t)1) == 0);
	CHECK(pthread_create(&t[1], NULL, producer, (void *)(uintptr_t)2) == 0);
	CHECK(pthread_create(&t[2], NULL, consumer, NULL) == 0);
	CHECK(pthread_create(&t[3], NULL, consumer, NULL) == 0);
	CHECK(pthread_create(&t[4], NULL, local_churn, (void *)(uintptr_t)3) == 0);
	CHECK(pthread_create(&t[5], NULL, local_churn, (void *)(uintptr_t)4) == 0);
	for (int i = 0; i < 6; i++)
		pthread_join(t[i], NULL);
	EXPECT_MSG(atomic_load(&overlaps) == 0, "%lu allocations were overwritten while live",
		   atomic_load(&overlaps));
	CHECK_EQ(atomic_load(&handed), 2 * (unsigned long)steps);
	CHECK_OK(iovm_mem_stats(ctx, &st));
	/* Counters of calls; "may lag by a few operations": every thread is joined, allow 64. */
	EXPECT_MSG(st.allocs <= st.frees + 64 && st.frees <= st.allocs + 64,
		   "every allocation was freed: allocs %llu, frees %llu", (unsigned long long)st.allocs,
		   (unsigned long long)st.frees);
	CHECK(iovm_dma_trim(ctx, IOVM_TRIM_ALL) >= 0);
	CHECK_OK(iovm_mem_stats(ctx, &st));
	printf("# after trim: committed %llu, idle %llu\n", (unsigned long long)st.committed,
	       (unsigned long long)st.idle);
}

/* The counters on one thread, no race: each call counts. */
TEST(stats_count_every_free_call)
{
	static const size_t sizes[] = { 64, 4096, 32768, 40000, 100000, 3u << 20 };
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct iovm_mem_stats a, b;
		CHECK_OK(iovm_mem_stats(ctx, &a));
		void *p = iovm_dma_alloc(ctx, sizes[i], 0, 0);
		CHECK(p != NULL);
		CHECK_OK(iovm_dma_free(ctx, p));
		CHECK_OK(iovm_mem_stats(ctx, &b));
		EXPECT_MSG(b.allocs - a.allocs == 1 && b.frees - a.frees == 1,
			   "one alloc and one free of %zu bytes counted as %llu allocs, %llu frees", sizes[i],
			   (unsigned long long)(b.allocs - a.allocs), (unsigned long long)(b.frees - a.frees));
	}
}

int main(void)
{
	const char *env = getenv("ATTACK_MEM_THREADS_STEPS");

	test_init();
	steps = env && atoi(env) > 0 ? atoi(env) : 5000;
	printf("# %d allocations per producer (ATTACK_MEM_THREADS_STEPS)\n", steps);
	ctx = attack_open(NULL);
	RUN(stats_count_every_free_call);
	RUN(memory_freed_on_other_threads_never_overlaps_live_memory);
	iovm_close(ctx);
	ctx = attack_open("page_size=4K");
	RUN(memory_freed_on_other_threads_never_overlaps_live_memory);
	iovm_close(ctx);
	return attack_status();
}
