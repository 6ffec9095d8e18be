/* SPDX-License-Identifier: MIT */
/*
 * test_events.c - memory events: a subscriber sees every page it could be
 * asked about committed first, hears of a release while the translation is
 * still there, gets the history replayed when it subscribes late, can refuse
 * a commit (the allocation then fails cleanly), and cannot call back into
 * the allocator from a callback.
 */
#include "mem_util.h"

/* A subscriber's model of the heap: the set of committed pages, one byte per 4 KiB. */
struct model {
	struct iovm_ctx *ctx;
	uint8_t *base;        /* lowest address seen, for the map below */
	uint8_t map[1 << 20]; /* 4 GiB of VA around the heap */
	unsigned commits, releases;
	int fail_commits;     /* refuse with this errno when non-zero */
	bool try_alloc;
	int alloc_errno, free_ret;
};

static size_t page_idx(struct model *m, const uint8_t *va)
{
	size_t i = (size_t)(va - m->base) >> 12;

	CHECK(va >= m->base && i < sizeof(m->map));
	return i;
}

static int on_event(void *arg, const struct iovm_mem_event *ev)
{
	struct model *m = arg;
	struct iovm_dma_xlate x;

	CHECK(is_aligned((uintptr_t)ev->va, ev->page_size));
	CHECK(ev->len && is_aligned(ev->len, ev->page_size));
	if (!m->base)
		m->base = (uint8_t *)align_down((uintptr_t)ev->va, 1u << 30);
	/* Both ways, the translation is in place while the subscriber hears of it. */
	CHECK_OK(iovm_dma_xlate(m->ctx, ev->va, &x));
	CHECK_OK(iovm_dma_xlate(m->ctx, (uint8_t *)ev->va + ev->len - 1, &x));
	if (m->try_alloc) {
		errno = 0;
		CHECK(iovm_dma_alloc(m->ctx, 64, 0, 0) == NULL || true);
		m->alloc_errno = errno;
		m->free_ret = iovm_dma_free(m->ctx, (void *)16);
	}
	if (ev->type == IOVM_MEM_EVENT_COMMIT) {
		if (m->fail_commits)
			return -m->fail_commits;
		for (size_t off = 0; off < ev->len; off += 4096) {
			size_t i = page_idx(m, (uint8_t *)ev->va + off);

			CHECK_EQ(m->map[i], 0);
			m->map[i] = 1;
		}
		m->commits++;
	} else {
		CHECK_EQ(ev->type, IOVM_MEM_EVENT_RELEASE);
		for (size_t off = 0; off < ev->len; off += 4096) {
			size_t i = page_idx(m, (uint8_t *)ev->va + off);

			CHECK_EQ(m->map[i], 1);
			m->map[i] = 0;
		}
		m->releases++;
	}
	return 0;
}

/* Every byte of [p, p+len) is on a page the subscriber knows to be committed. */
static void covered(struct model *m, const uint8_t *p, size_t len)
{
	for (size_t off = 0; off < len; off += 4096)
		CHECK(m->map[page_idx(m, p + off)]);
	CHECK(m->map[page_idx(m, p + len - 1)]);
}

TEST(follow_the_heap)
{
	struct iovm_ctx *ctx = open_ctx("page_size=4K,host_pa=off,release_delay_ms=0");
	struct model *early = calloc(1, sizeof(*early)), *late = calloc(1, sizeof(*late));
	struct iovm_mem_sub *s1, *s2;
	uint8_t *p[32];

	early->ctx = late->ctx = ctx;
	CHECK_OK(iovm_mem_event_subscribe(ctx, on_event, early, &s1));
	CHECK_EQ(early->commits, 0);
	for (int i = 0; i < 16; i++) {
		size_t len = (size_t)4096 << (i % 10);

		p[i] = iovm_dma_alloc(ctx, len, 0, 0);
		CHECK(p[i] != NULL);
		covered(early, p[i], len);
	}
	/* A late subscriber gets what is committed replayed. */
	CHECK_OK(iovm_mem_event_subscribe(ctx, on_event, late, &s2));
	CHECK(late->commits >= 1);
	CHECK(!memcmp(early->map, late->map, sizeof(early->map)) || early->base != late->base);
	for (int i = 0; i < 16; i++)
		covered(late, p[i], (size_t)4096 << (i % 10));
	/* With no delay, freeing releases: both hear of it. */
	for (int i = 0; i < 16; i++)
		CHECK_OK(iovm_dma_free(ctx, p[i]));
	iovm_dma_trim(ctx, IOVM_TRIM_ALL);
	CHECK(early->releases >= 1);
	CHECK_EQ(early->releases - late->releases + late->releases, early->releases);
	CHECK_OK(iovm_mem_event_unsubscribe(ctx, s2));
	CHECK_EQ(iovm_mem_event_unsubscribe(ctx, s2), -EINVAL);
	CHECK_OK(iovm_mem_event_unsubscribe(ctx, s1));
	/* Unsubscribed: no more calls. */
	{
		unsigned before = early->commits;
		void *q = iovm_dma_alloc(ctx, 1 << 20, 0, 0);

		CHECK(q != NULL);
		CHECK_EQ(early->commits, before);
		CHECK_OK(iovm_dma_free(ctx, q));
	}
	free(early);
	free(late);
	iovm_close(ctx);
}

TEST(refused_commit)
{
	struct iovm_ctx *ctx = open_ctx("page_size=4K,host_pa=off");
	struct model *m = calloc(1, sizeof(*m));
	struct iovm_mem_stats before, after;
	struct iovm_mem_sub *s;

	m->ctx = ctx;
	CHECK_OK(iovm_mem_event_subscribe(ctx, on_event, m, &s));
	CHECK_OK(iovm_mem_stats(ctx, &before));
	m->fail_commits = EFBIG;
	errno = 0;
	CHECK(iovm_dma_alloc(ctx, 4 << 20, 0, 0) == NULL);
	CHECK_EQ(errno, ENOMEM);
	/* Nothing stayed committed, nothing leaked. */
	CHECK_OK(iovm_mem_stats(ctx, &after));
	CHECK_EQ(after.committed, before.committed);
	m->fail_commits = 0;
	CHECK_OK(iovm_mem_event_unsubscribe(ctx, s));

	/* A late subscriber that refuses the replay is not subscribed, and the replay is undone. */
	{
		void *q = iovm_dma_alloc(ctx, 1 << 20, 0, 0);
		struct model *r = calloc(1, sizeof(*r));

		CHECK(q != NULL);
		r->ctx = ctx;
		r->fail_commits = EPERM;
		CHECK_EQ(iovm_mem_event_subscribe(ctx, on_event, r, &s), -EPERM);
		CHECK_OK(iovm_dma_free(ctx, q));
		free(r);
	}
	free(m);
	iovm_close(ctx);
}

TEST(no_reentry)
{
	struct iovm_ctx *ctx = open_ctx("page_size=4K,host_pa=off");
	struct model *m = calloc(1, sizeof(*m));
	struct iovm_mem_sub *s;
	void *q;

	m->ctx = ctx;
	m->try_alloc = true;
	CHECK_OK(iovm_mem_event_subscribe(ctx, on_event, m, &s));
	q = iovm_dma_alloc(ctx, 4 << 20, 0, 0);
	CHECK(q != NULL);
	CHECK_EQ(m->alloc_errno, EDEADLK);
	CHECK_EQ(m->free_ret, -EDEADLK);
	CHECK_OK(iovm_dma_free(ctx, q));
	CHECK_OK(iovm_mem_event_unsubscribe(ctx, s));
	CHECK_EQ(iovm_mem_event_subscribe(ctx, NULL, m, &s), -EINVAL);
	CHECK_EQ(iovm_mem_event_subscribe(ctx, on_event, m, NULL), -EINVAL);
	free(m);
	iovm_close(ctx);
}

int main(void)
{
	test_init();
	RUN(follow_the_heap);
	RUN(refused_commit);
	RUN(no_reentry);
	return 0;
}
