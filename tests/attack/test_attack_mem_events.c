/* SPDX-License-Identifier: MIT */
/*
 * test_attack_mem_events.c - attacks the memory event promises of mem.h:
 * committed memory replayed at subscribe, every event in whole pages, a
 * page committed once before any allocation on it returns, a RELEASE that
 * covers whole commits and comes while the pages still translate, a
 * failed COMMIT undone for every subscriber, a failed replay released
 * back, and no call after unsubscribe returns, under threads.
 */
#include "attack.h"

static struct iovm_ctx *ctx;

/* A subscriber's view: the commits it holds, as [va, va+len) ranges. */
#define MAXR 4096
struct view {
	uintptr_t va[MAXR];
	size_t len[MAXR];
	int n;
	int fail_commit_at; /* fail the Nth commit (1-based), 0 never */
	int fail_all;       /* and every one after it */
	int commits, releases;
	int errors;
	char why[256];
	pthread_mutex_t lock;
};

static void view_init(struct view *v)
{
	memset(v, 0, sizeof(*v));
	pthread_mutex_init(&v->lock, NULL);
}

static void view_error(struct view *v, const char *fmt, uintptr_t a, size_t b)
{
	if (!v->errors++)
		snprintf(v->why, sizeof(v->why), fmt, (void *)a, b);
}

static int on_event(void *arg, const struct iovm_mem_event *ev)
{
	struct view *v = arg;
	uintptr_t va = (uintptr_t)ev->va;
	int ret = 0;

	pthread_mutex_lock(&v->lock);
	if (!ev->page_size || va % ev->page_size || ev->len == 0 || ev->len % ev->page_size)
		view_error(v, "event not in whole pages: %p + %zu", va, ev->len);
	if (ev->type == IOVM_MEM_EVENT_COMMIT) {
		v->commits++;
		for (int i = 0; i < v->n; i++)
			if (va < v->va[i] + v->len[i] && v->va[i] < va + ev->len)
				view_error(v, "COMMIT of %p + %zu overlaps a live commit", va, ev->len);
		if (v->fail_commit_at && (v->commits == v->fail_commit_at ||
					  (v->fail_all && v->commits > v->fail_commit_at))) {
			ret = -ENOSPC;
		} else if (v->n < MAXR) {
			v->va[v->n] = va;
			v->len[v->n] = ev->len;
			v->n++;
		}
	} else if (ev->type == IOVM_MEM_EVENT_RELEASE) {
		size_t covered = 0;
		struct iovm_dma_xlate x;

		v->releases++;
		/* Before the pages are unmapped: they still translate. */
		if (iovm_dma_xlate(ctx, ev->va, &x) ||
		    iovm_dma_xlate(ctx, (uint8_t *)ev->va + ev->len - 1, &x))
			view_error(v, "RELEASE of %p + %zu: no longer translated", va, ev->len);
		/* Whole commits, one or several adjacent: never part of one. */
		for (int i = 0; i < v->n;) {
			if (v->va[i] < va + ev->len && va < v->va[i] + v->len[i]) {
				if (v->va[i] < va || v->va[i] + v->len[i] > va + ev->len)
					view_error(v, "RELEASE of %p + %zu cuts a commit", va, ev->len);
				covered += v->len[i];
				v->va[i] = v->va[v->n - 1];
				v->len[i] = v->len[v->n - 1];
				v->n--;
			} else {
				i++;
			}
		}
		if (covered != ev->len)
			view_error(v, "RELEASE of %p + %zu covers what was never committed", va, ev->len);
	} else {
		view_error(v, "unknown event type at %p (%zu)", va, ev->type);
	}
	pthread_mutex_unlock(&v->lock);
	return ret;
}

static size_t view_bytes(struct view *v)
{
	size_t s = 0;

	for (int i = 0; i < v->n; i++)
		s += v->len[i];
	return s;
}

/* Every page of [p, p+n) is inside a commit the view holds. */
static int view_covers(struct view *v, const void *p, size_t n)
{
	for (uintptr_t a = (uintptr_t)p & ~(uintptr_t)4095; a < (uintptr_t)p + n; a += 4096) {
		int in = 0;
		for (int i = 0; i < v->n && !in; i++)
			in = a >= v->va[i] && a < v->va[i] + v->len[i];
		if (!in)
			return 0;
	}
	return 1;
}

static uint64_t committed(void)
{
	struct iovm_mem_stats st;

	CHECK_OK(iovm_mem_stats(ctx, &st));
	return st.committed;
}

static struct view va, vb;

TEST(replay_covers_committed_memory_and_events_balance)
{
	struct iovm_mem_sub *sa, *sb;
	void *p[64] = { 0 };
	uint64_t seed = 3;

	view_init(&va);
	view_init(&vb);
	for (int i = 0; i < 16; i++) {
		p[i] = iovm_dma_alloc(ctx, (size_t)1 << (10 + i % 13), 0, 0);
		CHECK(p[i] != NULL);
	}
	CHECK_OK(iovm_mem_event_subscribe(ctx, on_event, &va, &sa));
	EXPECT_MSG(view_bytes(&va) == committed(), "replayed %zu bytes, %llu committed",
		   view_bytes(&va), (unsigned long long)committed());
	for (int i = 0; i < 16; i++)
		EXPECT_MSG(view_covers(&va, p[i], (size_t)1 << (10 + i % 13)),
			   "allocation %d not covered by the replay", i);
	CHECK_OK(iovm_mem_event_subscribe(ctx, on_event, &vb, &sb));
	for (int round = 0; round < 400; round++) {
		int i = test_rand(&seed) % 64;
		if (i < 16)
			continue;
		if (p[i]) {
			CHECK_OK(iovm_dma_free(ctx, p[i]));
			p[i] = NULL;
		} else {
			size_t sz = (size_t)1 << (test_rand(&seed) % 24);
			uint32_t fl = test_rand(&seed) % 3 == 0 ? IOVM_DMA_PAGE_4K : 0;
			p[i] = iovm_dma_alloc(ctx, sz, 0, fl);
			CHECK(p[i] != NULL);
			/* Committed before the allocation returned, announced to both. */
			EXPECT_MSG(view_covers(&va, p[i], sz) && view_covers(&vb, p[i], sz),
				   "allocation of %zu returned on pages never announced", sz);
		}
		if (round % 50 == 0)
			CHECK(iovm_dma_trim(ctx, IOVM_TRIM_ALL) >= 0);
	}
	for (int i = 16; i < 64; i++)
		if (p[i])
			CHECK_OK(iovm_dma_free(ctx, p[i]));
	CHECK(iovm_dma_trim(ctx, IOVM_TRIM_ALL) >= 0);
	EXPECT_MSG(view_bytes(&va) == committed() && view_bytes(&vb) == committed(),
		   "after trim: views %zu/%zu, committed %llu", view_bytes(&va), view_bytes(&vb),
		   (unsigned long long)committed());
	CHECK_OK(iovm_mem_event_unsubscribe(ctx, sa));
	CHECK_OK(iovm_mem_event_unsubscribe(ctx, sb));
	EXPECT_MSG(!va.errors, "subscriber a: %d errors, first: %s", va.errors, va.why);
	EXPECT_MSG(!vb.errors, "subscriber b: %d errors, first: %s", vb.errors, vb.why);
	CHECK(va.commits > 0 && va.releases > 0);
	for (int i = 0; i < 16; i++)
		CHECK_OK(iovm_dma_free(ctx, p[i]));
	CHECK(iovm_dma_trim(ctx, IOVM_TRIM_ALL) >= 0);
}

TEST(failed_commit_is_undone_for_every_subscriber)
{
	struct iovm_mem_sub *sa, *sb;

	CHECK(iovm_dma_trim(ctx, IOVM_TRIM_ALL) >= 0);
	view_init(&va);
	view_init(&vb);
	CHECK_OK(iovm_mem_event_subscribe(ctx, on_event, &va, &sa));
	CHECK_OK(iovm_mem_event_subscribe(ctx, on_event, &vb, &sb));
	/* b refuses its next commit: after a's own. Whichever runs first. */
	vb.fail_commit_at = vb.commits + 1;
	vb.fail_all = 1;
	uint64_t before = committed();
	errno = 0;
	void *p = iovm_dma_alloc(ctx, 8u << 20, 0, 0);
	EXPECT_MSG(p == NULL, "allocation succeeded although a COMMIT callback failed");
	if (p)
		iovm_dma_free(ctx, p);
	EXPECT_MSG(committed() == before, "committed %llu after the failed commit, %llu before",
		   (unsigned long long)committed(), (unsigned long long)before);
	EXPECT_MSG(view_bytes(&va) == committed(), "a holds %zu after the undone commit, %llu committed",
		   view_bytes(&va), (unsigned long long)committed());
	EXPECT_MSG(view_bytes(&vb) == committed(), "b holds %zu, %llu committed", view_bytes(&vb),
		   (unsigned long long)committed());
	printf("# b refused %d commits\n", vb.commits - vb.fail_commit_at + 1);
	vb.fail_all = 0;
	vb.fail_commit_at = 0;
	/* And the heap works after it. */
	p = iovm_dma_alloc(ctx, 8u << 20, 0, 0);
	CHECK(p != NULL);
	EXPECT(view_covers(&va, p, 8u << 20) && view_covers(&vb, p, 8u << 20));
	CHECK_OK(iovm_dma_free(ctx, p));
	CHECK_OK(iovm_mem_event_unsubscribe(ctx, sa));
	CHECK_OK(iovm_mem_event_unsubscribe(ctx, sb));
	EXPECT_MSG(!va.errors, "a: %s", va.why);
	EXPECT_MSG(!vb.errors, "b: %s", vb.why);
	CHECK(iovm_dma_trim(ctx, IOVM_TRIM_ALL) >= 0);
}

TEST(failed_replay_releases_what_was_accepted_and_fails)
{
	struct iovm_mem_sub *s = (struct iovm_mem_sub *)(uintptr_t)1;
	void *p[6];

	for (int i = 0; i < 6; i++) {
		p[i] = iovm_dma_alloc(ctx, (3u << 20) + 4096 * i, 0, i % 2 ? IOVM_DMA_PAGE_4K : 0);
		CHECK(p[i] != NULL);
	}
	view_init(&va);
	va.fail_commit_at = 3;
	CHECK_RET(iovm_mem_event_subscribe(ctx, on_event, &va, &s), -ENOSPC);
	EXPECT_MSG(va.n == 0, "after the failed replay the subscriber still holds %d commits", va.n);
	EXPECT_MSG(!va.errors, "%s", va.why);
	int calls = va.commits + va.releases;
	for (int i = 0; i < 6; i++)
		CHECK_OK(iovm_dma_free(ctx, p[i]));
	CHECK(iovm_dma_trim(ctx, IOVM_TRIM_ALL) >= 0);
	EXPECT_MSG(va.commits + va.releases == calls, "a failed subscription is still called");
}

TEST(unsubscribe_refuses_unknown_and_twice)
{
	struct iovm_mem_sub *s;

	view_init(&va);
	CHECK_RET(iovm_mem_event_subscribe(NULL, on_event, &va, &s), -EINVAL);
	CHECK_RET(iovm_mem_event_subscribe(ctx, NULL, &va, &s), -EINVAL);
	CHECK_RET(iovm_mem_event_subscribe(ctx, on_event, &va, NULL), -EINVAL);
	CHECK_OK(iovm_mem_event_subscribe(ctx, on_event, &va, &s));
	CHECK_RET(iovm_mem_event_unsubscribe(ctx, NULL), -EINVAL);
	CHECK_RET(iovm_mem_event_unsubscribe(NULL, s), -EINVAL);
	struct iovm_ctx *other = attack_open(NULL);
	CHECK_RET(iovm_mem_event_unsubscribe(other, s), -EINVAL);
	iovm_close(other);
	CHECK_OK(iovm_mem_event_unsubscribe(ctx, s));
	CHECK_RET(iovm_mem_event_unsubscribe(ctx, s), -EINVAL);
}

/* Once unsubscribe returns, the callback is not running and will not run. */
static _Atomic int late;  /* calls that came after */
static _Atomic int inside;
static _Atomic int stop_churn;

static int watch_late(void *arg, const struct iovm_mem_event *ev)
{
	(void)ev;
	atomic_fetch_add(&inside, 1);
	if (atomic_load((_Atomic int *)arg))
		atomic_fetch_add(&late, 1);
	usleep(20);
	if (atomic_load((_Atomic int *)arg))
		atomic_fetch_add(&late, 1);
	atomic_fetch_sub(&inside, 1);
	return 0;
}

static void *event_churn(void *arg)
{
	uint64_t seed = (uintptr_t)arg;

	while (!atomic_load(&stop_churn)) {
		void *p = iovm_dma_alloc(ctx, (size_t)(2 + test_rand(&seed) % 6) << 20, 0,
					 test_rand(&seed) % 2 ? IOVM_DMA_PAGE_4K : 0);
		if (p)
			iovm_dma_free(ctx, p);
		iovm_dma_trim(ctx, IOVM_TRIM_ALL);
	}
	return NULL;
}

TEST(no_callback_runs_after_unsubscribe_returns)
{
	pthread_t t[2];
	static _Atomic int flags[200];

	atomic_store(&stop_churn, 0);
	for (int i = 0; i < 2; i++)
		CHECK(pthread_create(&t[i], NULL, event_churn, (void *)(uintptr_t)(i + 1)) == 0);
	for (int round = 0; round < 200; round++) {
		struct iovm_mem_sub *s;
		CHECK_OK(iovm_mem_event_subscribe(ctx, watch_late, &flags[round], &s));
		usleep(100);
		CHECK_OK(iovm_mem_event_unsubscribe(ctx, s));
		atomic_store(&flags[round], 1);
	}
	atomic_store(&stop_churn, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	EXPECT_MSG(atomic_load(&late) == 0, "%d callback calls after unsubscribe returned",
		   atomic_load(&late));
}

int main(void)
{
	test_init();
	ctx = attack_open("release_delay_ms=600000");
	RUN(replay_covers_committed_memory_and_events_balance);
	RUN(failed_commit_is_undone_for_every_subscriber);
	RUN(failed_replay_releases_what_was_accepted_and_fails);
	RUN(unsubscribe_refuses_unknown_and_twice);
	RUN(no_callback_runs_after_unsubscribe_returns);
	iovm_close(ctx);
	return attack_status();
}
