/* SPDX-License-Identifier: MIT */
/*
 * test_watchmap_threads.c - the watchmap's lock-free readers
 * (src/reg/watchmap.h): several threads call watchmap_any() while one
 * thread sets and clears pages and makes new leaves below and above the
 * others, and one thread (the only one, as the header asks) marks, the
 * two racing to make the same fresh leaf once a round. No timing is
 * asserted: rounds are handed over by counters, and every thread's
 * checks are counted and must have run.
 *
 * The region: leaves REGION..REGION+2, each 64-page word of it split in
 * four slots of 16 pages: readers' (set before the threads start, never
 * cleared), never set, the writer's (set and cleared), the marker's
 * (marked, never cleared). Words are shared on purpose: a set, a clear
 * and a mark of one word run at once on different threads.
 *
 * Catches: a clear or mark that rewrites the whole 64-bit word
 * (load/modify/store instead of an atomic and/or), losing another
 * thread's bit (a reader's page missed, a writer's clear undone; the
 * lockstep phase makes that race likely, not certain); a leaf
 * published before it is zeroed, or a spare handed back dirty (a never
 * set page seen); any() trusting a [lo, hi) or a top entry torn while a
 * leaf is made below lo or above hi; a mark lost when the writer made its
 * leaf first (the spare given back and the mark dropped); spares leaked
 * or freed twice when the race is lost (ASan at fini); data races (TSan).
 */
#include <pthread.h>
#include <sched.h>

#include "harness.h"

#define WM_FAIL(fmt, ...) test_fail(fmt, ##__VA_ARGS__)

#include "reg/watchmap_model.h"

#define P WM_PAGE
#define L WM_LEAF
#define READERS 3
#define ROUNDS 64
#define REGION 200u                             /* leaves [200, 203) */
#define WORDS (3 * WM_LEAF_PAGES / 64)          /* 1536 */
#define DOWN(r) (REGION - 1 - (r))              /* leaves made below lo, one a round */
#define FRESH(r) (400u + (r))                   /* leaves made above hi, raced for */
#define UNTOUCHED_LO 210u                       /* [210, 400): never a page */
#define HOT 205u                                /* a leaf where writer and marker go in lockstep */
#define HOT_WORDS 512u
#define LOCKSTEPS (HOT_WORDS * 16)

static struct watchmap wm;
static _Atomic bool done;
static _Atomic uint64_t reader_rounds[READERS];
static uint16_t writer_bits[WORDS];            /* the writer's own model of its slots */
static uint16_t marker_bits[WORDS];
static pthread_barrier_t race;
static _Atomic unsigned arrived;                /* the lockstep: both threads at step i before either acts */
static _Atomic bool quiet;                      /* readers yield meanwhile: the two need both cores */

static uint64_t word_page(uint64_t leaf_base, uint64_t word, uint64_t slot)
{
	return leaf_base * L + (word * 64 + slot) * P;
}

static uint64_t region(uint64_t word, uint64_t slot)
{
	return word_page(REGION, word, slot);
}

/* A positive where nothing was set, unless `all` (read after: it is sticky) says every page may be. */
#define NEG(n, start, len, why)                                                                   \
	do {                                                                                      \
		if (watchmap_any(&wm, start, len) && !atomic_load(&wm.all))                       \
			test_fail("%s: watchmap_any(%#" PRIx64 ", %#" PRIx64 ") true, never set", why, \
				  (uint64_t)(start), (uint64_t)(len));                            \
		(n)++;                                                                            \
	} while (0)

#define POS(n, start, len, why)                                                                   \
	do {                                                                                      \
		if (!watchmap_any(&wm, start, len))                                               \
			test_fail("%s: watchmap_any(%#" PRIx64 ", %#" PRIx64 ") false, set before", why, \
				  (uint64_t)(start), (uint64_t)(len));                            \
		(n)++;                                                                            \
	} while (0)

/*
 * Writer and marker meet before each of LOCKSTEPS steps (spinning, then
 * yielding), then act on the same 64-bit word at once: the writer clears
 * a page of its slot it set just before, the marker marks a new page of
 * its slot. A clear or mark that is not one atomic read-modify-write
 * loses the other's bit now and then; at the end each word of HOT must
 * hold exactly every marker page and no writer page.
 */
static void lockstep(unsigned i, unsigned skew)
{
	unsigned spins = 0;

	atomic_fetch_add(&arrived, 1);
	while (atomic_load(&arrived) < 2 * (i + 1))
		if (++spins > 1000)
			sched_yield();
	/* Then a few loads more or less on each side: the two calls meet at varied points. */
	for (unsigned k = 0; k < skew; k++)
		(void)atomic_load_explicit(&arrived, memory_order_relaxed);
}

static void *reader(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	uint64_t rng = 0x5eed + id, n = 0;

	while (!atomic_load(&done)) {
		if (atomic_load(&quiet)) {
			sched_yield();
			continue;
		}
		for (unsigned k = 0; k < 32; k++) {
			uint64_t w = test_rand(&rng) % WORDS, s = test_rand(&rng) % 16;

			POS(n, region(w, s), P, "a reader's page");
			POS(n, region(w, s) + test_rand(&rng) % P, 1, "a byte of a reader's page");
			POS(n, region(w, 10), 10 * P, "reader pages and never-set ones");
			NEG(n, region(w, 16 + s), P, "a never-set page");
			NEG(n, region(w, 16), 16 * P, "the never-set slot");
			if (w + 1 < WORDS)
				POS(n, region(w, 48), 32 * P, "the marker's slot and the next reader slot");
		}
		/* Whole spans, across leaves being made below lo and above hi. */
		POS(n, 0, WM_TOP, "the whole map");
		POS(n, (REGION - ROUNDS - 1) * L, (ROUNDS + 2) * L, "the region and the leaves made below it");
		NEG(n, UNTOUCHED_LO * L, (FRESH(0) - UNTOUCHED_LO) * L, "leaves between the region and the fresh ones");
		NEG(n, (uint64_t)FRESH(ROUNDS) * L, WM_TOP - (uint64_t)FRESH(ROUNDS) * L, "everything above the fresh leaves");
		NEG(n, 0, (uint64_t)DOWN(ROUNDS) * L, "everything below the leaves made below");
		for (unsigned r = 0; r < ROUNDS; r += 7) {
			NEG(n, word_page(FRESH(r), r % 512, 16), 16 * P, "a never-set slot of a fresh leaf");
			NEG(n, word_page(DOWN(r), r % 512, 0), 32 * P, "a never-set slot of a leaf made below");
		}
		atomic_fetch_add(&reader_rounds[id], 1);
	}
	atomic_fetch_add(&test_checks, n);
	return NULL;
}

static void writer_check(uint64_t w, uint64_t *n)
{
	for (unsigned s = 0; s < 16; s++) {
		if (writer_bits[w] >> s & 1)
			POS(*n, region(w, 32 + s), P, "a writer's page set");
		else
			NEG(*n, region(w, 32 + s), P, "a writer's page cleared");
	}
}

static void *writer(void *arg)
{
	uint64_t rng = 0x3717, n = 0, seen[READERS];

	(void)arg;
	for (unsigned r = 0; r < ROUNDS; r++) {
		for (unsigned i = 0; i < READERS; i++)
			seen[i] = atomic_load(&reader_rounds[i]);
		for (unsigned i = 0; i < 60; i++) {
			uint64_t w = test_rand(&rng) % WORDS, s = test_rand(&rng) % 16, c = 1 + test_rand(&rng) % (16 - s);
			uint16_t bits = (uint16_t)(((1u << c) - 1) << s);

			if (test_rand(&rng) % 2 || i == 59) { /* the last one a set: the spares are made again */
				watchmap_set(&wm, region(w, 32 + s), c * P);
				writer_bits[w] |= bits;
			} else {
				watchmap_clear(&wm, region(w, 32 + s), c * P);
				writer_bits[w] &= (uint16_t)~bits;
			}
			writer_check(w, &n);
		}
		/* A leaf below lo, then the race with the marker for a fresh one above hi. */
		watchmap_set(&wm, word_page(DOWN(r), r % 512, 40), P);
		POS(n, word_page(DOWN(r), r % 512, 40), P, "a page set in a leaf made below");
		if (wm_spares(&wm) == 0)
			test_fail("no spare after a set(): the race could drop the marker's mark legitimately");
		pthread_barrier_wait(&race);
		watchmap_set(&wm, word_page(FRESH(r), r % 512, 32 + r % 16), P);
		pthread_barrier_wait(&race);
		POS(n, word_page(FRESH(r), r % 512, 32 + r % 16), P, "the writer's page of the raced leaf");
		POS(n, word_page(FRESH(r), r % 512, 48 + r % 16), P, "the marker's page of the raced leaf (a spare was held)");
		NEG(n, word_page(FRESH(r), r % 512, 16), 16 * P, "the never-set slot of the raced leaf");
		/* Every reader has run a round while this one went on: they overlapped. */
		for (unsigned i = 0; i < READERS; i++)
			while (atomic_load(&reader_rounds[i]) <= seen[i])
				sched_yield();
	}
	atomic_store(&quiet, true);
	for (unsigned i = 0; i < LOCKSTEPS; i++) {
		uint64_t page = word_page(HOT, i % HOT_WORDS, 32 + i / HOT_WORDS);

		watchmap_set(&wm, page, P);
		lockstep(i, i * 7 % 61);
		watchmap_clear(&wm, page, P);
	}
	atomic_fetch_add(&test_checks, n);
	return NULL;
}

static void *marker(void *arg)
{
	uint64_t rng = 0x4a4a, n = 0;

	(void)arg;
	for (unsigned r = 0; r < ROUNDS; r++) {
		for (unsigned i = 0; i < 40; i++) {
			uint64_t w = test_rand(&rng) % WORDS, s = test_rand(&rng) % 16, c = 1 + test_rand(&rng) % (16 - s);

			watchmap_mark(&wm, region(w, 48 + s), c * P);
			marker_bits[w] |= (uint16_t)(((1u << c) - 1) << s);
			POS(n, region(w, 48 + s), c * P, "a page marked in a made leaf");
			POS(n, region(w, 48 + s + c - 1), P, "the last page marked in a made leaf");
		}
		pthread_barrier_wait(&race);
		watchmap_mark(&wm, word_page(FRESH(r), r % 512, 48 + r % 16), P);
		pthread_barrier_wait(&race);
	}
	for (unsigned i = 0; i < LOCKSTEPS; i++) {
		lockstep(i, i * 13 % 67);
		watchmap_mark(&wm, word_page(HOT, i % HOT_WORDS, 48 + i / HOT_WORDS), P);
	}
	atomic_fetch_add(&test_checks, n);
	return NULL;
}

TEST(threads)
{
	pthread_t rd[READERS], wr, mk;
	uint64_t n = 0;

	watchmap_init(&wm);
	for (uint64_t w = 0; w < WORDS; w++)
		watchmap_set(&wm, region(w, 0), 16 * P);
	watchmap_set(&wm, word_page(HOT, HOT_WORDS, 0), P); /* the hot leaf made */
	CHECK(pthread_barrier_init(&race, NULL, 2) == 0);
	for (unsigned i = 0; i < READERS; i++)
		CHECK(pthread_create(&rd[i], NULL, reader, (void *)(uintptr_t)i) == 0);
	/* Every reader running before the writers start. */
	for (unsigned i = 0; i < READERS; i++)
		while (atomic_load(&reader_rounds[i]) == 0)
			sched_yield();
	CHECK(pthread_create(&wr, NULL, writer, NULL) == 0);
	CHECK(pthread_create(&mk, NULL, marker, NULL) == 0);
	CHECK(pthread_join(wr, NULL) == 0);
	CHECK(pthread_join(mk, NULL) == 0);
	atomic_store(&done, true);
	for (unsigned i = 0; i < READERS; i++) {
		CHECK(pthread_join(rd[i], NULL) == 0);
		/* Each writer round waited for one of this reader's, which started before: no vacuous pass. */
		CHECK_MSG(atomic_load(&reader_rounds[i]) > ROUNDS, "reader %u ran %" PRIu64 " rounds", i,
			  atomic_load(&reader_rounds[i]));
	}
	pthread_barrier_destroy(&race);

	/* Once they are all done: every slot as its owner left it, `all` never needed. */
	CHECK_MSG(!wm_map_all(&wm), "`all` was set: the negative checks proved nothing");
	for (uint64_t w = 0; w < WORDS; w++) {
		POS(n, region(w, 0), 16 * P, "a reader's slot at the end");
		NEG(n, region(w, 16), 16 * P, "a never-set slot at the end");
		writer_check(w, &n);
		for (unsigned s = 0; s < 16; s++)
			if (marker_bits[w] >> s & 1)
				POS(n, region(w, 48 + s), P, "a marker's page at the end");
			else
				NEG(n, region(w, 48 + s), P, "a marker's slot never marked, at the end");
	}
	for (uint64_t w = 0; w < HOT_WORDS; w++) {
		NEG(n, word_page(HOT, w, 0), 48 * P, "a hot word's writer slot, cleared in lockstep with marks");
		POS(n, word_page(HOT, w, 48), P, "a hot word's first marker page");
		for (unsigned s = 0; s < 16; s++)
			POS(n, word_page(HOT, w, 48 + s), P, "a hot word's marker page, marked in lockstep with clears");
	}
	for (unsigned r = 0; r < ROUNDS; r++) {
		CHECK(wm_leaf_made(&wm, FRESH(r)) && wm_leaf_made(&wm, DOWN(r)));
		POS(n, word_page(FRESH(r), r % 512, 48 + r % 16), P, "a marker's page of a raced leaf at the end");
	}
	CHECK(atomic_load(&wm.lo) <= DOWN(ROUNDS - 1) && atomic_load(&wm.hi) > FRESH(ROUNDS - 1));
	CHECK(wm_spares(&wm) <= WM_SPARES + 1);
	atomic_fetch_add(&test_checks, n);
	printf("# reader rounds: %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", atomic_load(&reader_rounds[0]),
	       atomic_load(&reader_rounds[1]), atomic_load(&reader_rounds[2]));
	watchmap_fini(&wm);
}

int main(void)
{
	test_init();
	RUN(threads);
	return 0;
}
