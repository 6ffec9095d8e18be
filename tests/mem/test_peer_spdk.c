/* SPDX-License-Identifier: MIT */
/*
 * test_peer_spdk.c - the scenarios of SPDK's test/env suite, re-expressed
 * for iovm's memory API (written from what those tests check, not from
 * their code):
 *
 *  vtophys:       malloc'ed memory and addresses outside user space have
 *                 no translation; DMA memory of every size from 1 byte up
 *                 has one, and contiguous memory is contiguous over its
 *                 whole length; interior pointers translate to base + offset;
 *                 freed memory translates until it is given back, then not.
 *  memory_ut:     the translation map follows the heap in whole pages of
 *                 the list's page size (2 MiB with hugepages), each page
 *                 announced once and released once; a late subscriber is
 *                 replayed the history in the chunks it was committed in;
 *                 a subscriber that fails on the replay leaves nothing
 *                 behind; contiguity queries from interior pointers;
 *                 memory never registered has no translation.
 *  mem_callbacks: every allocation lies inside memory announced before it
 *                 returned; a release is announced while its translation
 *                 still holds, and covers whole announced commits.
 *
 * SPDK's memory maps themselves (spdk_mem_map_*() with a default value,
 * notify and contiguity callbacks; spdk_mem_register() of memory iovm did
 * not allocate, so that it has a physical translation; unregistering part
 * of a registration, -ERANGE) have their iovm counterparts in
 * iovm/memmap.h, and memory_ut's scenarios for them are in
 * test_memmap.c. This file keeps to the heap's own translation and
 * events, which those maps are built on.
 */
#include <sys/mman.h>

#include "mem_util.h"

#define MiB (UINT64_C(1) << 20)

/* ---- vtophys ---- */

TEST(vtophys_of_malloc_and_non_user_addresses_fails)
{
	struct iovm_ctx *ctx = open_ctx("page_size=4K,host_pa=off,mem_limit=256M");
	static const uint64_t outside[] = { UINT64_C(0x0000800000000000), UINT64_C(0xffffffe00000),
					    UINT64_C(0x1000000000000), UINT64_MAX & ~UINT64_C(4095), 4096 };
	struct iovm_dma_xlate x;
	iovm_pa_t pa;

	/* 1 byte to 1 GiB, doubling: none of it is iovm's. */
	for (unsigned i = 0; i < 31; i++) {
		void *p = malloc((size_t)1 << i);

		if (!p)
			continue;
		CHECK_EQ(iovm_dma_xlate(ctx, p, &x), -ENOENT);
		CHECK_EQ(iovm_dma_pa(ctx, p, &pa), -ENOENT);
		free(p);
	}
	for (size_t i = 0; i < ARRAY_SIZE(outside); i++) {
		CHECK_EQ(iovm_dma_xlate(ctx, (void *)(uintptr_t)outside[i], &x), -ENOENT);
		CHECK_EQ(iovm_dma_pa(ctx, (void *)(uintptr_t)outside[i], &pa), -ENOENT);
	}
	/* Nor does a physical address no page holds lead anywhere. */
	errno = 0;
	CHECK(iovm_dma_ptr(ctx, IOVM_PA(UINT64_C(1) << 50)) == NULL);
	CHECK_EQ(errno, ENOENT);
	iovm_close(ctx);
}

TEST(vtophys_of_dma_memory_of_every_size)
{
	struct iovm_ctx *ctx = open_ctx("page_size=4K,host_pa=off,mem_limit=256M");

	/* 1 byte to 64 MiB, doubling, 512-byte aligned, zeroed: as SPDK's loop does (to what fits). */
	for (unsigned i = 0; i <= 26; i++) {
		size_t len = (size_t)1 << i;

		for (int contig = 0; contig < 2; contig++) {
			uint8_t *p = iovm_dma_zalloc(ctx, len, 512, contig ? IOVM_DMA_CONTIG : 0);
			struct iovm_dma_xlate x, last;

			CHECK_MSG(p != NULL, "%zu bytes: %s", len, strerror(errno));
			CHECK_OK(iovm_dma_xlate(ctx, p, &x));
			CHECK_OK(iovm_dma_xlate(ctx, p + len - 1, &last));
			/* vtophys_and_len: physically contiguous memory is so over its whole length. */
			if (contig) {
				CHECK_MSG(x.contig >= len, "%zu contiguous bytes, xlate says %zu", len, x.contig);
				CHECK_EQ(last.pa.addr, x.pa.addr + len - 1);
			}
			check_translation(ctx, p);
			check_translation(ctx, p + len - 1);
			CHECK_OK(iovm_dma_free(ctx, p));
		}
	}
	iovm_close(ctx);
}

TEST(vtophys_of_interior_pointers)
{
	struct iovm_ctx *ctx = open_ctx("page_size=4K,host_pa=off,mem_limit=256M");
	size_t len = 3 * MiB + 12345;
	uint8_t *p = iovm_dma_alloc(ctx, len, 0, IOVM_DMA_CONTIG);
	struct iovm_dma_xlate base;

	CHECK(p != NULL);
	CHECK_OK(iovm_dma_xlate(ctx, p, &base));
	for (size_t off = 0; off < len; off += 4093) {
		struct iovm_dma_xlate x;

		CHECK_OK(iovm_dma_xlate(ctx, p + off, &x));
		CHECK_EQ(x.pa.addr, base.pa.addr + off);
		/* SPDK's mapping_length from an unaligned address: what is left of the contiguous run. */
		CHECK_EQ(x.contig, base.contig - off);
		CHECK(iovm_dma_ptr(ctx, x.pa) == p + off);
	}
	CHECK_OK(iovm_dma_free(ctx, p));
	iovm_close(ctx);
}

TEST(vtophys_of_freed_memory)
{
	/* A long release delay: freed memory stays committed until it is trimmed. */
	struct iovm_ctx *ctx = open_ctx("page_size=4K,host_pa=off,mem_limit=256M,release_delay_ms=600000");
	size_t len = 8 * MiB;
	uint8_t *p = iovm_dma_alloc(ctx, len, 0, 0);
	struct iovm_dma_xlate x;
	iovm_pa_t pa;

	CHECK(p != NULL);
	CHECK_OK(iovm_dma_pa(ctx, p + len / 2, &pa));
	CHECK_OK(iovm_dma_free(ctx, p));
	/* mem.h: freed pages stay committed for release_delay_ms: still translated, the same way. */
	CHECK_OK(iovm_dma_xlate(ctx, p + len / 2, &x));
	CHECK_EQ(x.pa.addr, pa.addr);
	/* Given back: neither way translates any more. */
	CHECK(iovm_dma_trim(ctx, IOVM_TRIM_ALL) >= (int64_t)len);
	CHECK_EQ(iovm_dma_xlate(ctx, p, &x), -ENOENT);
	CHECK_EQ(iovm_dma_xlate(ctx, p + len / 2, &x), -ENOENT);
	CHECK_EQ(iovm_dma_pa(ctx, p + len - 1, &pa), -ENOENT);
	errno = 0;
	CHECK(iovm_dma_ptr(ctx, x.pa) == NULL);
	iovm_close(ctx);
}

/* ---- the translation map and its callbacks (memory_ut, mem_callbacks) ---- */

/* A subscriber's record: events in order, and the pages announced, by VA. */
struct rec_event {
	enum iovm_mem_event_type type;
	uint8_t *va;
	size_t len;
};

struct recorder {
	struct iovm_ctx *ctx;
	uint64_t page_size;      /* of the list under test; events of other lists are ignored */
	struct rec_event ev[4096];
	unsigned n;
	uint8_t *lo;             /* the 4 GiB of VA the page bitmap covers */
	uint8_t pages[1 << 20];  /* 1 per 4 KiB unit announced and not released */
	unsigned fail_at;        /* fail the fail_at-th COMMIT (1-based), 0: never */
	unsigned commits;
};

static size_t unit_of(struct recorder *r, const uint8_t *va)
{
	size_t i = (size_t)(va - r->lo) >> 12;

	CHECK(va >= r->lo && i < sizeof(r->pages));
	return i;
}

static int record(void *arg, const struct iovm_mem_event *e)
{
	struct recorder *r = arg;
	struct iovm_dma_xlate x;

	if (e->page_size != r->page_size)
		return 0;
	/* Whole pages of the list's size: 2 MiB boundaries with hugepages, as SPDK's map insists. */
	CHECK(is_aligned((uintptr_t)e->va, e->page_size) && e->len && is_aligned(e->len, e->page_size));
	/* Both ways the translation is there while the subscriber hears of it. */
	CHECK_OK(iovm_dma_xlate(r->ctx, e->va, &x));
	CHECK_OK(iovm_dma_xlate(r->ctx, (uint8_t *)e->va + e->len - 1, &x));
	if (e->type == IOVM_MEM_EVENT_COMMIT && r->fail_at && ++r->commits == r->fail_at)
		return -ENOSPC;
	if (!r->lo)
		r->lo = (uint8_t *)align_down((uintptr_t)e->va, UINT64_C(1) << 30);
	for (size_t off = 0; off < e->len; off += 4096) {
		size_t i = unit_of(r, (uint8_t *)e->va + off);

		/* memory_ut: a page is never announced twice, nor released unannounced. */
		CHECK_EQ(r->pages[i], e->type == IOVM_MEM_EVENT_COMMIT ? 0 : 1);
		r->pages[i] = e->type == IOVM_MEM_EVENT_COMMIT;
	}
	CHECK(r->n < ARRAY_SIZE(r->ev));
	r->ev[r->n++] = (struct rec_event){ .type = e->type, .va = e->va, .len = e->len };
	return 0;
}

/* Whether [p, p+len) lies in pages announced and not released. */
static bool announced(struct recorder *r, const uint8_t *p, size_t len)
{
	if (!r->lo)
		return false;
	for (uintptr_t a = align_down((uintptr_t)p, 4096); a < (uintptr_t)p + len; a += 4096)
		if (!r->pages[unit_of(r, (const uint8_t *)a)])
			return false;
	return true;
}

/* Every page the recorder holds is committed, and every committed page it should know of it holds. */
static void pages_agree(struct recorder *r, uint8_t *lo, size_t span)
{
	for (size_t off = 0; off < span; off += r->page_size) {
		struct iovm_dma_xlate x;
		bool committed = !iovm_dma_xlate(r->ctx, lo + off, &x);

		CHECK_EQ(committed, announced(r, lo + off, 4096));
	}
}

static struct recorder *recorder_new(struct iovm_ctx *ctx, uint64_t page_size)
{
	struct recorder *r = calloc(1, sizeof(*r));

	CHECK(r != NULL);
	r->ctx = ctx;
	r->page_size = page_size;
	return r;
}

/*
 * mem_callbacks: buffers of 3 MiB, 64 bytes and 4 MiB, each inside memory
 * announced before the allocation returned; freed; then 8 MiB. Every
 * release is announced while translated, covers whole commits announced
 * before, and the subscriber's map agrees with the heap throughout.
 */
static void callbacks_follow_the_heap(const char *opts, uint64_t page_size)
{
	struct iovm_ctx *ctx = open_ctx(opts);
	struct recorder *r = recorder_new(ctx, page_size);
	static const size_t lens[] = { 3 * MiB, 64, 4 * MiB };
	struct iovm_mem_sub *sub;
	void *buf[ARRAY_SIZE(lens)], *big;
	uint32_t flags = page_size == SZ_2M ? IOVM_DMA_PAGE_2M : IOVM_DMA_PAGE_4K;

	CHECK_OK(iovm_mem_event_subscribe(ctx, record, r, &sub));
	for (size_t i = 0; i < ARRAY_SIZE(lens); i++) {
		buf[i] = iovm_dma_alloc(ctx, lens[i], 0, flags);
		if (!buf[i] && page_size == SZ_2M && errno == ENOMEM) {
			/* Other processes hold the hugepages: the 4 KiB run says the same. */
			printf("# skip 2 MiB pages: %zu bytes of hugepages not available now\n", lens[i]);
			while (i--)
				CHECK_OK(iovm_dma_free(ctx, buf[i]));
			goto out;
		}
		CHECK(buf[i] != NULL);
		CHECK_MSG(announced(r, buf[i], lens[i]), "%zu bytes at %p not announced before they were handed out",
			  lens[i], buf[i]);
	}
	for (size_t i = 0; i < ARRAY_SIZE(lens); i++)
		CHECK_OK(iovm_dma_free(ctx, buf[i]));
	big = iovm_dma_alloc(ctx, 8 * MiB, 0, flags);
	if (big) {
		CHECK(announced(r, big, 8 * MiB));
		CHECK_OK(iovm_dma_free(ctx, big));
	} else {
		CHECK(page_size == SZ_2M && errno == ENOMEM);
	}
	CHECK(iovm_dma_trim(ctx, IOVM_TRIM_ALL) >= 0);
	/* Each release covers whole commits, in the order of events: a union of earlier announcements. */
	for (unsigned i = 0; i < r->n; i++) {
		uint8_t *at, *end;

		if (r->ev[i].type != IOVM_MEM_EVENT_RELEASE)
			continue;
		at = r->ev[i].va;
		end = at + r->ev[i].len;
		while (at < end) {
			unsigned j;

			for (j = 0; j < i; j++)
				if (r->ev[j].type == IOVM_MEM_EVENT_COMMIT && r->ev[j].va == at &&
				    r->ev[j].va + r->ev[j].len <= end)
					break;
			CHECK_MSG(j < i, "release %u [%p, %p) cuts a commit at %p", i, r->ev[i].va, end, at);
			at += r->ev[j].len;
		}
	}
	pages_agree(r, r->lo ? r->lo : (uint8_t *)buf[0], 1u << 30);
out:
	CHECK_OK(iovm_mem_event_unsubscribe(ctx, sub));
	free(r);
	iovm_close(ctx);
}

TEST(callbacks_follow_the_heap_4k)
{
	callbacks_follow_the_heap("page_size=4K,host_pa=off,mem_limit=256M,release_delay_ms=600000", SZ_4K);
}

TEST(callbacks_follow_the_heap_2m)
{
	if (!os_hugepage_supported(SZ_2M))
		SKIP_CASE("the kernel has no 2 MiB hugepages");
	callbacks_follow_the_heap("page_size=2M,host_pa=off,mem_limit=256M,release_delay_ms=600000", SZ_2M);
}

/*
 * memory_ut's adjacent registrations: chunks of 2, 1, 3, 2, 1 and 1 units
 * committed one after another at adjacent addresses are replayed to a
 * late subscriber in those chunks, not merged, and in address order.
 */
TEST(replay_in_the_chunks_committed)
{
	static const unsigned chunks[] = { 2, 1, 3, 2, 1, 1 };
	const size_t unit = 64 << 10; /* past the thread caches' sizes: each is a run of its own */
	struct iovm_ctx *ctx = open_ctx("page_size=4K,host_pa=off,mem_limit=256M,release_delay_ms=600000");
	struct recorder *r = recorder_new(ctx, SZ_4K);
	struct iovm_mem_sub *sub;
	uint8_t *p[ARRAY_SIZE(chunks)];
	unsigned first = 0;

	for (size_t i = 0; i < ARRAY_SIZE(chunks); i++) {
		p[i] = iovm_dma_alloc(ctx, chunks[i] * unit, 4096, 0);
		CHECK(p[i] != NULL);
		if (i)
			CHECK(p[i] == p[i - 1] + chunks[i - 1] * unit);
	}
	CHECK_OK(iovm_mem_event_subscribe(ctx, record, r, &sub));
	while (first < r->n && r->ev[first].va != p[0])
		first++;
	CHECK(first + ARRAY_SIZE(chunks) <= r->n);
	for (size_t i = 0; i < ARRAY_SIZE(chunks); i++) {
		CHECK_EQ(r->ev[first + i].type, IOVM_MEM_EVENT_COMMIT);
		CHECK(r->ev[first + i].va == p[i]);
		CHECK_EQ(r->ev[first + i].len, chunks[i] * unit);
	}
	CHECK_OK(iovm_mem_event_unsubscribe(ctx, sub));
	for (size_t i = 0; i < ARRAY_SIZE(chunks); i++)
		CHECK_OK(iovm_dma_free(ctx, p[i]));
	free(r);
	iovm_close(ctx);
}

/*
 * memory_ut's failed map: a subscriber that fails on the fifth replayed
 * commit gets the four it accepted released again, and the subscription
 * fails with its error; nothing of it is left (a later commit reaches it
 * not), and a new subscriber sees the whole history.
 */
TEST(failed_replay_leaves_nothing_behind)
{
	const size_t unit = 64 << 10;
	struct iovm_ctx *ctx = open_ctx("page_size=4K,host_pa=off,mem_limit=256M,release_delay_ms=600000");
	struct recorder *r = recorder_new(ctx, SZ_4K), *again = recorder_new(ctx, SZ_4K);
	struct iovm_mem_sub *sub = NULL;
	uint8_t *p[6];
	unsigned commits = 0, releases = 0;

	/* Six commits, apart from each other (a hole between each). */
	for (size_t i = 0; i < 11; i++) {
		uint8_t *q = iovm_dma_alloc(ctx, unit, 4096, 0);

		CHECK(q != NULL);
		if (i % 2 == 0)
			p[i / 2] = q;
		else
			CHECK_OK(iovm_dma_free(ctx, q)); /* idle, still committed: a sixth...and more commits */
	}
	r->fail_at = 5;
	CHECK_EQ(iovm_mem_event_subscribe(ctx, record, r, &sub), -ENOSPC);
	for (unsigned i = 0; i < r->n; i++) {
		if (r->ev[i].type == IOVM_MEM_EVENT_COMMIT) {
			CHECK_EQ(releases, 0); /* every release after the last commit */
			commits++;
		} else {
			releases++;
		}
	}
	CHECK_EQ(commits, 4);
	CHECK_EQ(releases, 4);
	for (size_t i = 0; i < ARRAY_SIZE(r->pages); i++)
		if (r->pages[i])
			CHECK_MSG(0, "unit %zu still announced after the failed subscription", i);
	/* No call reaches the failed subscriber any more. */
	{
		unsigned n = r->n;
		uint8_t *q = iovm_dma_alloc(ctx, 8 * unit, 4096, 0);

		CHECK(q != NULL);
		CHECK_EQ(r->n, n);
		CHECK_OK(iovm_dma_free(ctx, q));
	}
	/* A subscriber that accepts sees every commit, the six allocations among them. */
	CHECK_OK(iovm_mem_event_subscribe(ctx, record, again, &sub));
	for (size_t i = 0; i < ARRAY_SIZE(p); i++)
		CHECK(announced(again, p[i], unit));
	CHECK_OK(iovm_mem_event_unsubscribe(ctx, sub));
	for (size_t i = 0; i < ARRAY_SIZE(p); i++)
		CHECK_OK(iovm_dma_free(ctx, p[i]));
	free(r);
	free(again);
	iovm_close(ctx);
}

/*
 * memory_ut's bit array under churn: random allocations and frees of
 * random sizes, trims now and then; every event keeps the subscriber's
 * page map exact (no page announced twice or released unannounced), and
 * at every checkpoint its map is the heap's committed set.
 */
TEST(translation_map_under_churn)
{
	struct iovm_ctx *ctx = open_ctx("page_size=4K,host_pa=off,mem_limit=256M,release_delay_ms=0");
	struct recorder *r = recorder_new(ctx, SZ_4K);
	struct iovm_mem_sub *sub;
	void *live[64] = { 0 };
	uint64_t seed = 7;

	CHECK_OK(iovm_mem_event_subscribe(ctx, record, r, &sub));
	for (unsigned step = 0; step < 2000; step++) {
		unsigned i = (unsigned)(test_rand(&seed) % ARRAY_SIZE(live));

		if (live[i]) {
			CHECK_OK(iovm_dma_free(ctx, live[i]));
			live[i] = NULL;
		} else {
			size_t len = 1 + test_rand(&seed) % (test_rand(&seed) % 4 ? 100000 : 3 * MiB);

			live[i] = iovm_dma_alloc(ctx, len, 0, test_rand(&seed) % 5 ? 0 : IOVM_DMA_CONTIG);
			CHECK(live[i] != NULL);
			CHECK(announced(r, live[i], len));
		}
		if (step % 500 == 499) {
			CHECK(iovm_dma_trim(ctx, step % 1000 == 999 ? IOVM_TRIM_ALL : 0) >= 0);
			pages_agree(r, r->lo, 1u << 30);
		}
	}
	for (size_t i = 0; i < ARRAY_SIZE(live); i++)
		CHECK_OK(iovm_dma_free(ctx, live[i]));
	CHECK(iovm_dma_trim(ctx, IOVM_TRIM_ALL) >= 0);
	pages_agree(r, r->lo, 1u << 30);
	CHECK_OK(iovm_mem_event_unsubscribe(ctx, sub));
	free(r);
	iovm_close(ctx);
}

int main(void)
{
	test_init();
	RUN(vtophys_of_malloc_and_non_user_addresses_fails);
	RUN(vtophys_of_dma_memory_of_every_size);
	RUN(vtophys_of_interior_pointers);
	RUN(vtophys_of_freed_memory);
	RUN(callbacks_follow_the_heap_4k);
	RUN(callbacks_follow_the_heap_2m);
	RUN(replay_in_the_chunks_committed);
	RUN(failed_replay_leaves_nothing_behind);
	RUN(translation_map_under_churn);
	return 0;
}
