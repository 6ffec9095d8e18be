/* SPDX-License-Identifier: MIT */
/*
 * test_after_return.c - once the call that changed the memory has
 * returned, no get hits what it replaced and no query calls it valid.
 *
 * Each way to take memory away (munmap, mremap away from it and onto it,
 * mmap MAP_FIXED over it, madvise(MADV_DONTNEED_LOCKED), a brk shrink and
 * glibc's free() then malloc() of 8 MiB at the same address) runs many
 * rounds of: get the range (a miss, then a hit: it is cached), hold it,
 * take the memory away, and at once query the held MR and get the range
 * again. The monitor's invalidator runs on a thread of its own: a get or
 * query that does not wait for it sees the old region for a while. Not
 * one round may. The same again with the whole process on one CPU, where
 * the invalidator runs only when the test's thread gives the CPU up.
 */
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

#include "reg/reg_util.h"

#define LEN (16 * PG)
#define ROUNDS 200

struct stale {
	struct rig r;
	struct iovm_rcache *c;
	uint8_t *a;          /* where the memory is */
	uint8_t *spare;      /* LEN elsewhere, for mremap */
	unsigned stale_gets, stale_queries, rounds;
};

static uint64_t hits(struct iovm_rcache *c)
{
	struct iovm_rcache_stats st;

	CHECK_OK(iovm_rcache_stats(c, &st));
	return st.hits;
}

/* Fresh memory at @p (anywhere when NULL), over the test's own mapping there: MAP_FIXED. */
static uint8_t *map_at(uint8_t *p, size_t len)
{
	uint8_t *q = mmap(p, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | (p ? MAP_FIXED : 0), -1, 0);

	CHECK(q != MAP_FAILED && (!p || q == p));
	memset(q, 0x11, len);
	return q;
}

/*
 * Fresh memory in the hole at *@p the test just made, or, where another
 * thread's allocation took the hole meanwhile (a sanitizer's allocator
 * does), anywhere: never MAP_FIXED, a hole is anyone's. Whether it is at
 * *@p again.
 */
static bool map_hole(uint8_t **p, size_t len)
{
	uint8_t *q = mmap(*p, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

	if (q == *p) {
		memset(q, 0x11, len);
		return true;
	}
	if (q != MAP_FAILED)
		munmap(q, len);
	*p = map_at(NULL, len);
	return false;
}

/* Replace [a, a+LEN) in one of the ways; whether the memory is at a again (it may have had to go elsewhere). */
typedef bool (*take_away_fn)(struct stale *s);

static bool by_munmap(struct stale *s)
{
	CHECK_OK(munmap(s->a, LEN));
	/* Mapped again by the test after the call returned: the get must not find the old region there. */
	return map_hole(&s->a, LEN);
}

static bool by_mremap_away(struct stale *s)
{
	CHECK(mremap(s->a, LEN, LEN, MREMAP_MAYMOVE | MREMAP_FIXED, s->spare) == s->spare);
	/* Where it went is a spare again. */
	map_at(s->spare, LEN);
	return map_hole(&s->a, LEN);
}

static bool by_mremap_onto(struct stale *s)
{
	CHECK(mremap(s->spare, LEN, LEN, MREMAP_MAYMOVE | MREMAP_FIXED, s->a) == s->a);
	map_hole(&s->spare, LEN);
	return true;
}

static bool by_map_fixed(struct stale *s)
{
	map_at(s->a, LEN);
	return true;
}

static bool by_madvise(struct stale *s)
{
	CHECK_OK(madvise(s->a, LEN, MADV_DONTNEED_LOCKED));
	return true;
}

/* One round: cached, held, taken away, then asked about at once. */
static void one_round(struct stale *s, take_away_fn take_away)
{
	struct iovm_mr *held, *m, *again;
	uint64_t before;
	bool here;

	CHECK_OK(iovm_rcache_get(s->c, s->a, LEN, IOVM_ACCESS_LOCAL_WRITE, &held));
	CHECK_OK(iovm_rcache_get(s->c, s->a, LEN, IOVM_ACCESS_LOCAL_WRITE, &m));
	CHECK(m == held);
	CHECK_OK(iovm_rcache_put(s->c, m));
	here = take_away(s);
	/* Held across it: the query reads the old MR, whose every page is gone. */
	if (mr_info(held).valid_pages)
		s->stale_queries++;
	/* The memory at the old address again (else elsewhere: nothing to get there this round). */
	if (here) {
		before = hits(s->c);
		CHECK_OK(iovm_rcache_get(s->c, s->a, LEN, IOVM_ACCESS_LOCAL_WRITE, &again));
		if (hits(s->c) != before)
			s->stale_gets++;
		CHECK_OK(iovm_rcache_put(s->c, again));
		s->rounds++;
	}
	CHECK_OK(iovm_rcache_put(s->c, held));
}

static void run_rounds(const char *what, take_away_fn take_away)
{
	struct stale s = { 0 };

	rig_open(&s.r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	CHECK_OK(iovm_rcache_create(s.r.dom, NULL, &s.c));
	s.a = map_at(NULL, LEN);
	s.spare = map_at(NULL, LEN);
	for (unsigned i = 0; i < ROUNDS; i++)
		one_round(&s, take_away);
	CHECK_MSG(!s.stale_gets, "%s: %u of %u gets right after it returned hit the memory it replaced", what,
		  s.stale_gets, s.rounds);
	CHECK_MSG(!s.stale_queries, "%s: %u of %u queries right after it returned called replaced pages valid", what,
		  s.stale_queries, ROUNDS);
	/* Not vacuous: most rounds had the memory back where it was (a hole is seldom taken). */
	CHECK_MSG(s.rounds > ROUNDS / 2, "%s: the memory came back at its address in %u rounds of %u", what, s.rounds,
		  ROUNDS);
	CHECK_OK(iovm_rcache_destroy(s.c));
	no_violations(s.r.dom);
	rig_close(&s.r);
	app_unmap(s.a, LEN);
	app_unmap(s.spare, LEN);
}

TEST(munmap)
{
	run_rounds("munmap", by_munmap);
}

TEST(mremap_away)
{
	run_rounds("mremap away", by_mremap_away);
}

TEST(mremap_onto)
{
	run_rounds("mremap onto", by_mremap_onto);
}

TEST(mmap_fixed_over)
{
	run_rounds("mmap MAP_FIXED", by_map_fixed);
}

TEST(madvise_dontneed_locked)
{
	run_rounds("madvise(MADV_DONTNEED_LOCKED)", by_madvise);
}

/*
 * The other way round: an event is about the memory its call took away,
 * never about a registration made after that call returned. Each round
 * registers the memory mapped again in the hole the last round's munmap
 * left, at once (the invalidator may not have dealt with that munmap
 * yet), and asks whether all of it is valid: the old event must not
 * invalidate the new registration. (UCX's scenario of registering,
 * unmapping and mapping again met this: 1 run in 40 of test_peer_ucm.)
 */
static void run_register_after(const char *what)
{
	struct rig r;
	uint8_t *a = map_at(NULL, LEN);
	unsigned invalidated = 0, rounds = 0;

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	for (unsigned i = 0; i < ROUNDS; i++) {
		struct iovm_mr *mr;
		uint64_t valid;

		CHECK_OK(iovm_mr_reg(r.dom, a, LEN, IOVM_ACCESS_LOCAL_WRITE, &mr));
		/* The query waits for every event read before it: the last round's munmap's is dealt with. */
		valid = mr_info(mr).valid_pages;
		if (valid != LEN / PG && !invalidated++)
			printf("# round %u: %llu of %u pages valid\n", i, (unsigned long long)valid, LEN / PG);
		CHECK_OK(iovm_mr_dereg(mr));
		CHECK_OK(munmap(a, LEN));
		rounds += map_hole(&a, LEN);
	}
	CHECK_MSG(!invalidated, "%s: %u of %u registrations made after the munmap returned were invalidated by it",
		  what, invalidated, ROUNDS);
	CHECK_MSG(rounds > ROUNDS / 2, "%s: the memory came back at its address in %u rounds of %u", what, rounds,
		  ROUNDS);
	no_violations(r.dom);
	rig_close(&r);
	app_unmap(a, LEN);
}

TEST(register_after_munmap)
{
	run_register_after("munmap, then a registration of new memory there");
}

/* The test's threads and the library's (made after, they inherit it) on one CPU. */
static bool on_one_cpu(cpu_set_t *old)
{
	cpu_set_t one;

	if (sched_getaffinity(0, sizeof(*old), old))
		return false;
	CPU_ZERO(&one);
	for (int i = 0; i < CPU_SETSIZE; i++)
		if (CPU_ISSET(i, old)) {
			CPU_SET(i, &one);
			break;
		}
	return sched_setaffinity(0, sizeof(one), &one) == 0;
}

TEST(on_one_cpu)
{
	cpu_set_t old;

	if (!on_one_cpu(&old))
		SKIP_CASE("cannot set this thread's CPU affinity");
	run_rounds("munmap, one CPU", by_munmap);
	run_rounds("mmap MAP_FIXED, one CPU", by_map_fixed);
	run_rounds("madvise, one CPU", by_madvise);
	run_register_after("munmap, then a registration there, one CPU");
	CHECK_OK(sched_setaffinity(0, sizeof(old), &old));
}

/*
 * glibc's free() of a large block unmaps it (or, at the top of the brk
 * heap with trimming at once, shrinks the heap), and the next malloc() of
 * the size maps it again, most often at the same address. For the brk
 * heap, the blocks come from the main thread's arena, and the cache is
 * used by a helper thread, whose own allocations come from another arena
 * and so never land above the block.
 */
struct heap_job {
	struct stale *s;
	pthread_barrier_t step;
	uint8_t *inside;     /* set by the main thread before each step */
	bool again;          /* the step is the get after free() and malloc() */
	bool helper;         /* the gets are the helper's */
	bool stop;
};

static void heap_get(struct heap_job *j)
{
	struct stale *s = j->s;
	struct iovm_mr *m;
	uint64_t before = hits(s->c);

	CHECK_OK(iovm_rcache_get(s->c, j->inside, LEN, IOVM_ACCESS_LOCAL_WRITE, &m));
	if (j->again) {
		s->rounds++;
		if (hits(s->c) != before)
			s->stale_gets++;
	}
	CHECK_OK(iovm_rcache_put(s->c, m));
}

static void *heap_helper(void *arg)
{
	struct heap_job *j = arg;

	for (;;) {
		pthread_barrier_wait(&j->step);
		if (j->stop)
			return NULL;
		heap_get(j);
		pthread_barrier_wait(&j->step);
	}
}

/* The get of a step: on the helper for the brk heap, else at once, here. */
static void heap_step(struct heap_job *j, uint8_t *inside, bool again)
{
	j->inside = inside;
	j->again = again;
	if (!j->helper) {
		heap_get(j);
		return;
	}
	pthread_barrier_wait(&j->step);
	pthread_barrier_wait(&j->step);
}

static void heap_case(const char *what, size_t len, bool brk)
{
	struct stale s = { 0 };
	struct heap_job j = { .s = &s, .helper = brk };
	pthread_t tid;

	rig_open(&s.r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	CHECK_OK(iovm_rcache_create(s.r.dom, NULL, &s.c));
	pthread_barrier_init(&j.step, NULL, 2);
	if (j.helper)
		CHECK_OK(pthread_create(&tid, NULL, heap_helper, &j));
	if (brk) {
		/* The main arena, at the top of the brk heap, trimmed at once when freed. */
		CHECK_EQ(mallopt(M_MMAP_THRESHOLD, 32 << 20), 1);
		CHECK_EQ(mallopt(M_TRIM_THRESHOLD, 0), 1);
	} else {
		/*
		 * Mapped, and unmapped at free(), every time: a fixed threshold.
		 * (glibc's own moves up past a block freed, and serves the next
		 * from the heap, where nothing is unmapped.)
		 */
		CHECK_EQ(mallopt(M_MMAP_THRESHOLD, 128 << 10), 1);
	}
	for (unsigned i = 0; i < ROUNDS; i++) {
		uint8_t *block = malloc(len), *inside;

		CHECK(block != NULL);
		/* Away from the block's start: the part a shrink of the heap takes first is its end. */
		inside = (uint8_t *)align_up((uintptr_t)block + len / 2, PG);
		memset(block, 1, len);
		heap_step(&j, inside, false);
		free(block);
		block = malloc(len);
		CHECK(block != NULL);
		/* At once: a get is the next thing such a program does with its new buffer. */
		if ((uint8_t *)align_up((uintptr_t)block + len / 2, PG) == inside)
			heap_step(&j, inside, true);
		memset(block, 2, len);
		free(block);
	}
	if (j.helper) {
		j.stop = true;
		pthread_barrier_wait(&j.step);
		CHECK_OK(pthread_join(tid, NULL));
	}
	pthread_barrier_destroy(&j.step);
	if (brk) {
		mallopt(M_MMAP_THRESHOLD, 128 << 10);
		mallopt(M_TRIM_THRESHOLD, 128 << 10);
	}
	CHECK_MSG(s.rounds > ROUNDS / 2, "%s: the memory came back at the same address %u times in %u", what,
		  s.rounds, ROUNDS);
	CHECK_MSG(!s.stale_gets, "%s: %u of %u gets hit the freed block", what, s.stale_gets, s.rounds);
	CHECK_OK(iovm_rcache_destroy(s.c));
	no_violations(s.r.dom);
	rig_close(&s.r);
}

TEST(glibc_free_then_malloc)
{
	if (TEST_OWN_MALLOC)
		SKIP_CASE("the sanitizer's free() keeps blocks mapped");
	heap_case("free() then malloc() of 8 MiB", 8 << 20, false);
}

TEST(brk_shrink_then_grow)
{
	if (TEST_OWN_MALLOC)
		SKIP_CASE("the sanitizer's malloc does not use the brk heap");
	heap_case("brk shrink, then grow", 4 << 20, true);
}

int main(void)
{
	test_init();
	RUN_SELECTED(munmap);
	RUN_SELECTED(mremap_away);
	RUN_SELECTED(mremap_onto);
	RUN_SELECTED(mmap_fixed_over);
	RUN_SELECTED(madvise_dontneed_locked);
	RUN_SELECTED(register_after_munmap);
	RUN_SELECTED(glibc_free_then_malloc);
	RUN_SELECTED(brk_shrink_then_grow);
	RUN_SELECTED(on_one_cpu);
	return 0;
}
