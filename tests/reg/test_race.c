/* SPDX-License-Identifier: MIT */
/*
 * test_race.c - registered memory taken away while devices write into it.
 *
 * Two threads get slots of a buffer from the registration cache and have
 * the engine write into them, 10^5 times between them; a third replaces
 * slots under them, round after round, by mmap MAP_FIXED, by mremap of
 * fresh memory onto them, and by madvise(MADV_DONTNEED_LOCKED).
 *
 * Every write is tagged with the slot's generation, read before and after
 * the get (a get that a replacement overlapped is discarded): so a write
 * carries the generation of the memory its MR was made for. The mutator
 * moves a slot's generation before replacing it, wipes from the new memory
 * the old tags that got there while the replacing call ran, and before the
 * next replacement scans the slot: a word older than the slot's generation
 * is a device write that reached memory put there after its MR was taken
 * away. There must be none, and the oracle must count no violation.
 *
 * What the software platform cannot promise: the device reaches the
 * application's memory through the application's own mapping, and the
 * kernel replaces a mapping before userfaultfd says so. A write already in
 * flight in that interval (microseconds, inside the replacing call) lands
 * in the new memory, where on hardware it would land in the old pinned
 * pages. Once the call has returned, no write through the old registration
 * lands anywhere: that is what is checked, and the in-call ones are counted.
 */
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include "reg/reg_util.h"

#define SLOTS 32
#define SLOT_PAGES 4
#define SLOT_BYTES (SLOT_PAGES * PG)
#define ITERATIONS 100000 /* DMA writes, both threads together */
#define MIN_MUTATIONS 128 /* replacements the writes must overlap, however the threads are scheduled */

static struct rig r;
static struct iovm_rcache *cache;
static uint8_t *buf;
static _Atomic uint64_t gen[SLOTS];
static _Atomic uint64_t done_writes, faults, discarded;
static _Atomic bool stop;
static uint64_t stale_words, during_call;
static _Atomic uint64_t mutations; /* written by the mutator, read by the writers */

/*
 * A tag in a word, with a check: a copy in progress may have stored some of
 * a word's bytes and not the others (fast string stores are not ordered),
 * and such a torn word is no tag.
 */
#define TAG_CHECK UINT64_C(0x5a5aa5a5)

static uint64_t tag_word(uint64_t g)
{
	return (g ^ TAG_CHECK) << 32 | g;
}

/* The generation a word was written with: 0 for none (zero, or torn). */
static uint64_t word_tag(uint64_t w)
{
	uint64_t g = w & 0xffffffffu;

	return w && (w >> 32) == (g ^ TAG_CHECK) ? g : 0;
}

struct writer {
	struct iovm_queue *q;
	uint64_t *src; /* DMA memory: the tag, repeated */
	uint64_t seed;
	pthread_t tid;
};

/* Run one descriptor on the writer's own polled queue: its status. */
static uint8_t run(struct iovm_queue *q, struct iovm_desc d)
{
	struct iovm_cqe cqe;
	int n;

	if (iovm_queue_submit(q, &d))
		return 0;
	while ((n = iovm_queue_reap(q, &cqe, 1)) == 0)
		iovm_queue_process(q, 1);
	return n == 1 ? cqe.status : 0;
}

static void *writer_main(void *arg)
{
	struct writer *w = arg;

	while (atomic_load(&done_writes) < ITERATIONS || atomic_load(&mutations) < MIN_MUTATIONS) {
		unsigned s = (unsigned)(test_rand(&w->seed) % SLOTS);
		uint64_t g1 = atomic_load(&gen[s]), g2;
		struct iovm_mr *mr;
		iovm_iova_t dst, src;
		uint8_t status;

		if (iovm_rcache_get(cache, buf + s * SLOT_BYTES, SLOT_BYTES, IOVM_ACCESS_LOCAL_WRITE, &mr)) {
			atomic_fetch_add(&discarded, 1); /* caught between a replacement's unmap and map */
			continue;
		}
		g2 = atomic_load(&gen[s]);
		if (g1 != g2) {
			atomic_fetch_add(&discarded, 1);
			iovm_rcache_put(cache, mr);
			continue;
		}
		for (unsigned i = 0; i < SLOT_BYTES / 8; i++)
			w->src[i] = tag_word(g1);
		CHECK_OK(iovm_mr_iova(mr, buf + s * SLOT_BYTES, SLOT_BYTES, &dst));
		CHECK_OK(iovm_dma_iova(r.dom, w->src, &src));
		status = run(w->q, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = src.addr, .dst = dst.addr,
						       .len = SLOT_BYTES });
		if (status == IOVM_STATUS_PAGE_FAULT)
			atomic_fetch_add(&faults, 1);
		else if (status != IOVM_STATUS_SUCCESS)
			CHECK_MSG(0, "a write completed with status %u", status);
		iovm_rcache_put(cache, mr);
		atomic_fetch_add(&done_writes, 1);
	}
	return NULL;
}

/* Words of slot @s older than its generation: device writes that outlived their memory. */
static void scan(unsigned s)
{
	const uint64_t *p = (const uint64_t *)(buf + s * SLOT_BYTES);
	uint64_t g = atomic_load(&gen[s]);

	for (unsigned i = 0; i < SLOT_BYTES / 8; i++)
		if (word_tag(p[i]) && word_tag(p[i]) < g)
			stale_words++;
}

static void replace(unsigned s, unsigned how)
{
	uint8_t *slot = buf + s * SLOT_BYTES, *fresh;

	switch (how) {
	case 0: /* new memory mapped over it */
		CHECK(mmap(slot, SLOT_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
			   0) == slot);
		break;
	case 1:
		/*
		 * Fresh memory moved onto it. Wherever the kernel puts it: the
		 * hole a move leaves is anyone's (a thread's allocator may map
		 * into it at once), never to be mapped over MAP_FIXED again.
		 */
		fresh = mmap(NULL, SLOT_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		CHECK(fresh != MAP_FAILED);
		CHECK(mremap(fresh, SLOT_BYTES, SLOT_BYTES, MREMAP_MAYMOVE | MREMAP_FIXED, slot) == slot);
		break;
	default: /* its pages discarded: fresh zero pages next time they are touched */
		CHECK_OK(madvise(slot, SLOT_BYTES, MADV_DONTNEED_LOCKED));
		break;
	}
}

static void *mutator_main(void *arg)
{
	uint64_t seed = 99;
	(void)arg;

	while (!atomic_load(&stop)) {
		unsigned s = (unsigned)(test_rand(&seed) % SLOTS);

		scan(s);
		/* The generation moves first: a get that overlaps the replacement sees it. */
		atomic_fetch_add(&gen[s], 1);
		replace(s, (unsigned)(mutations % 3));
		/*
		 * Writes in flight while the call itself ran may have reached the
		 * new memory (see the note at the top): counted, then wiped. From
		 * the call's return on, none may.
		 */
		{
			uint64_t *p = (uint64_t *)(buf + s * SLOT_BYTES), g = atomic_load(&gen[s]);

			for (unsigned i = 0; i < SLOT_BYTES / 8; i++)
				if (word_tag(p[i]) && word_tag(p[i]) < g) {
					during_call++;
					p[i] = 0;
				}
		}
		mutations++;
		if (mutations % 64 == 0)
			usleep(50); /* let the writers reach the new memory too */
	}
	for (unsigned s = 0; s < SLOTS; s++)
		scan(s);
	return NULL;
}

TEST(writers_and_a_mutator)
{
	struct iovm_queue_attr qa = { .depth = 8, .flags = IOVM_QUEUE_POLLED };
	struct writer w[2];
	pthread_t mut;
	struct iovm_rcache_stats cs;
	struct iovm_reg_stats rs;

	/*
	 * The mutator reads the slots while the engine copies into them: that
	 * is how it catches a write through a stale registration, and a race
	 * by design, on memory no lock or atomic can guard (the device's
	 * writes are the engine's copies).
	 */
	if (TEST_TSAN)
		SKIP("it reads memory the engine writes at the same time, by design");
	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	buf = app_map(SLOTS * SLOT_BYTES);
	for (unsigned s = 0; s < SLOTS; s++)
		atomic_store(&gen[s], 1);
	CHECK_OK(iovm_rcache_create(r.dom, NULL, &cache));
	for (unsigned i = 0; i < 2; i++) {
		w[i].seed = i + 1;
		CHECK_OK(iovm_queue_create(r.dev, &qa, &w[i].q));
		w[i].src = iovm_dma_alloc(r.ctx, SLOT_BYTES, PG, 0);
		CHECK(w[i].src != NULL);
	}
	CHECK_OK(pthread_create(&mut, NULL, mutator_main, NULL));
	for (unsigned i = 0; i < 2; i++)
		CHECK_OK(pthread_create(&w[i].tid, NULL, writer_main, &w[i]));
	for (unsigned i = 0; i < 2; i++)
		CHECK_OK(pthread_join(w[i].tid, NULL));
	atomic_store(&stop, true);
	CHECK_OK(pthread_join(mut, NULL));

	CHECK_OK(iovm_rcache_stats(cache, &cs));
	CHECK_OK(iovm_reg_stats(r.ctx, &rs));
	printf("# %lu writes (%lu faulted, %lu gets discarded), %lu replacements; cache: %lu hits, %lu misses, "
	       "%lu raced; monitor: %lu events, %lu pages invalidated\n",
	       (unsigned long)atomic_load(&done_writes), (unsigned long)atomic_load(&faults),
	       (unsigned long)atomic_load(&discarded), (unsigned long)mutations, (unsigned long)cs.hits,
	       (unsigned long)cs.misses, (unsigned long)cs.raced, (unsigned long)rs.monitor_events,
	       (unsigned long)rs.invalidated_pages);
	printf("# %lu words reached the new memory while the replacing call ran; none after it returned: %s\n",
	       (unsigned long)during_call, stale_words ? "FAILED" : "ok");
	CHECK(atomic_load(&done_writes) >= ITERATIONS);
	CHECK(atomic_load(&mutations) >= MIN_MUTATIONS);
	CHECK(rs.invalidated_pages > 0);
	CHECK_MSG(stale_words == 0, "%lu words written through a stale registration", (unsigned long)stale_words);
	no_violations(r.dom);
	for (unsigned i = 0; i < 2; i++)
		CHECK_OK(iovm_queue_destroy(w[i].q));
	CHECK_OK(iovm_rcache_destroy(cache));
	rig_close(&r);
	app_unmap(buf, SLOTS * SLOT_BYTES);
}

int main(void)
{
	test_init();
	RUN(writers_and_a_mutator);
	return 0;
}
