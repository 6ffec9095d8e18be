/* SPDX-License-Identifier: MIT */
/*
 * test_attack_ctx.c - attacks ctx.h: every option's bad values refused
 * with -EINVAL and a detail that names the option, IOVM_OPTS for NULL,
 * what iovm_ctx_info() resolves, contexts that coexist without reaching
 * each other's memory (translation, free, PAs), contexts opened and
 * closed on many threads, and a forked child that opens a context of its
 * own and works while the parent's device works (taking hugepages
 * meanwhile).
 */
#include <sys/wait.h>

#include "attack.h"

TEST(open_refuses_bad_options_and_names_them)
{
	static const struct {
		const char *opts;
		const char *names; /* the detail must mention it */
	} bad[] = {
		{ "bogus=1", "bogus" },
		{ "page_size=3K", "page_size" },
		{ "page_size=", "page_size" },
		{ "page_size=2G", "page_size" },
		{ "mem_limit=abc", "mem_limit" },
		{ "mem_limit=-1", "mem_limit" },
		{ "mem_limit=1.5G", "mem_limit" },
		{ "numa_node=-2", "numa_node" },
		{ "numa_node=x", "numa_node" },
		{ "numa_node=100000", "numa_node" },
		{ "host_pa=maybe", "host_pa" },
		{ "log_level=trace", "log_level" },
		{ "log_level=5", "log_level" },
		{ "release_delay_ms=3600001", "release_delay_ms" },
		{ "release_delay_ms=-1", "release_delay_ms" },
		{ "release_delay_ms=99999999999999999999", "release_delay_ms" },
		{ "pin_budget=4K", "pin_budget" },
		{ "pin_budget=63K", "pin_budget" },
		{ "oracle=yes", "oracle" },
		{ "pool=x", "pool" },
		{ "pool=:4M", "pool" },
		{ "pool=a:4M:8K", "pool" },
		{ "pool=a:3", "pool" },
		{ "=1", "" },
		{ "page_size", "page_size" },
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct iovm_ctx *ctx = (struct iovm_ctx *)(uintptr_t)1;
		int r = iovm_open(bad[i].opts, &ctx);
		EXPECT_MSG(r == -EINVAL, "iovm_open(\"%s\"): %d", bad[i].opts, r);
		if (r == 0) {
			iovm_close(ctx);
			continue;
		}
		EXPECT_MSG(strstr(iovm_error_detail(), bad[i].names) != NULL,
			   "iovm_open(\"%s\"): the detail does not name %s: \"%s\"", bad[i].opts, bad[i].names,
			   iovm_error_detail());
	}
	/* Empty items: the header does not say; note what happens. */
	struct iovm_ctx *e;
	int er = iovm_open("oracle=on,,log_level=error,", &e);
	printf("# iovm_open(\"oracle=on,,log_level=error,\"): %d (empty items %s)\n", er,
	       er ? "refused" : "accepted");
	if (!er)
		iovm_close(e);
	CHECK_RET(iovm_open("", NULL), -EINVAL);
	CHECK_RET(iovm_close(NULL), 0);
	struct iovm_ctx_info ci;
	CHECK_RET(iovm_ctx_info(NULL, &ci), -EINVAL);
}

TEST(options_resolve_as_given)
{
	struct iovm_ctx *ctx;
	struct iovm_ctx_info ci;

	CHECK_OK(iovm_open("page_size=4K,mem_limit=123M,release_delay_ms=7,log_level=error", &ctx));
	CHECK_OK(iovm_ctx_info(ctx, &ci));
	EXPECT_EQ(ci.page_size, 4096);
	EXPECT_EQ(ci.mem_limit, 123ull << 20);
	EXPECT_EQ(ci.release_delay_ms, 7);
	EXPECT_EQ(ci.numa_node, -1);
	CHECK_RET(iovm_ctx_info(ctx, NULL), -EINVAL);
	iovm_close(ctx);
	/* NULL takes IOVM_OPTS; "" does not. */
	setenv("IOVM_OPTS", "page_size=4K,mem_limit=77M,log_level=error", 1);
	CHECK_OK(iovm_open(NULL, &ctx));
	CHECK_OK(iovm_ctx_info(ctx, &ci));
	EXPECT_EQ(ci.mem_limit, 77ull << 20);
	iovm_close(ctx);
	CHECK_OK(iovm_open("log_level=error", &ctx));
	CHECK_OK(iovm_ctx_info(ctx, &ci));
	EXPECT_MSG(ci.mem_limit != 77ull << 20, "a non-NULL options string still read IOVM_OPTS");
	CHECK(ci.page_size != 0);
	iovm_close(ctx);
	setenv("IOVM_OPTS", "mem_limit=zz", 1);
	CHECK_RET(iovm_open(NULL, &ctx), -EINVAL);
	unsetenv("IOVM_OPTS");
}

TEST(contexts_do_not_reach_each_others_memory)
{
	struct iovm_ctx *a = attack_open(NULL), *b = attack_open(NULL);
	uint8_t *pa_ = iovm_dma_alloc(a, 3u << 20, 0, 0), *pb = iovm_dma_alloc(b, 3u << 20, 0, 0);
	iovm_pa_t x, y;
	struct iovm_dma_xlate xl;

	CHECK(pa_ && pb);
	memset(pa_, 0xaa, 3u << 20);
	memset(pb, 0xbb, 3u << 20);
	CHECK_OK(iovm_dma_pa(a, pa_ + 4096, &x));
	CHECK_OK(iovm_dma_pa(b, pb + 4096, &y));
	CHECK_RET(iovm_dma_xlate(b, pa_ + 4096, &xl), -ENOENT);
	CHECK_RET(iovm_dma_xlate(a, pb + 4096, &xl), -ENOENT);
	CHECK_RET(iovm_dma_free(b, pa_), -EINVAL);
	EXPECT_EQ(iovm_dma_size(b, pa_), 0);
	void *r = iovm_dma_ptr(b, x);
	EXPECT_MSG(r == NULL || r != pa_ + 4096, "ctx b's dma_ptr of ctx a's PA leads into ctx a's memory");
	/* A domain of b cannot map a's memory by pointer. */
	struct iovm_domain *db;
	iovm_iova_t io;
	CHECK_OK(iovm_domain_create(b, NULL, &db));
	EXPECT_MSG(iovm_domain_map_ptr(db, pa_, 4096, IOVM_MAP_READ, &io) == -ENOENT,
		   "a domain of ctx b mapped ctx a's memory by pointer");
	CHECK_OK(iovm_domain_destroy(db));
	CHECK(all_bytes(pa_, 3u << 20, 0xaa));
	CHECK(all_bytes(pb, 3u << 20, 0xbb));
	CHECK_OK(iovm_dma_free(a, pa_));
	CHECK_OK(iovm_dma_free(b, pb));
	iovm_close(a);
	/* b goes on after a closed. */
	uint8_t *q = iovm_dma_alloc(b, 4096, 0, 0);
	CHECK(q != NULL);
	check_translation(b, q);
	CHECK_OK(iovm_dma_free(b, q));
	iovm_close(b);
}

static void *open_work_close(void *arg)
{
	uint64_t seed = (uintptr_t)arg;
	for (int k = 0; k < 6; k++) {
		struct iovm_ctx *ctx;
		CHECK_OK(iovm_open(k % 2 ? "page_size=4K,log_level=error,oracle=on" : "log_level=error", &ctx));
		uint8_t *p = iovm_dma_alloc(ctx, 1 + test_rand(&seed) % (4u << 20), 0, 0);
		CHECK(p != NULL);
		p[0] = 1;
		check_translation(ctx, p);
		struct iovm_domain *d;
		CHECK_OK(iovm_domain_create(ctx, &(struct iovm_domain_attr){ .flags = IOVM_DOMAIN_FOLLOW_HEAP |
						(k % 3 == 0 ? IOVM_DOMAIN_DEFERRED : 0) }, &d));
		iovm_iova_t io;
		CHECK_OK(iovm_dma_iova(d, p, &io));
		CHECK_OK(iovm_domain_destroy(d));
		CHECK_OK(iovm_dma_free(ctx, p));
		CHECK_OK(iovm_close(ctx));
	}
	return NULL;
}

TEST(contexts_open_and_close_on_many_threads)
{
	pthread_t t[6];
	for (int i = 0; i < 6; i++)
		CHECK(pthread_create(&t[i], NULL, open_work_close, (void *)(uintptr_t)(i + 1)) == 0);
	for (int i = 0; i < 6; i++)
		pthread_join(t[i], NULL);
}

/* The parent's device copies while a forked child opens its own context and takes hugepages. */
static _Atomic int pstop;
static void *parent_engine(void *arg)
{
	struct rig *r = arg;
	uint8_t *a = iovm_dma_alloc(r->ctx, 65536, 4096, 0), *b = iovm_dma_alloc(r->ctx, 65536, 4096, 0);
	uint64_t seed = 1;
	CHECK(a && b);
	while (!atomic_load(&pstop)) {
		uint8_t v = (uint8_t)test_rand(&seed);
		memset(a, v, 65536);
		struct iovm_completion c = run_desc(r, (struct iovm_desc){ .op = IOVM_OP_COPY,
			.src = iova_of(r, a), .dst = iova_of(r, b), .len = 65536 });
		CHECK_EQ(c.status, IOVM_STATUS_SUCCESS);
		CHECK(all_bytes(b, 65536, v));
	}
	iovm_dma_free(r->ctx, a);
	iovm_dma_free(r->ctx, b);
	return NULL;
}

static int child_work(void)
{
	struct iovm_ctx *ctx;
	struct rig r;
	int bad = 0;

	/* The child must not use the parent's context: it opens its own. */
	if (iovm_open("oracle=on,log_level=error", &ctx))
		return 10;
	iovm_close(ctx);
	/*
	 * Other processes may hold the machine's hugepages: the child takes
	 * what it needs first, and without it has nothing to test (77: the
	 * parent reports a skip). Its rig is built by hand, so that a queue's
	 * rings that find no hugepage skip rather than fail.
	 */
	struct iovm_domain_attr follow = { .type = IOVM_DOMAIN_MANAGED, .flags = IOVM_DOMAIN_FOLLOW_HEAP };
	struct iovm_queue_attr qa = { .depth = 256, .flags = IOVM_QUEUE_POLLED };
	if (iovm_open(getenv("ATTACK_DEBUG") ? "oracle=on,log_level=debug,page_size=2M"
					    : "oracle=on,log_level=error,page_size=2M", &r.ctx))
		return 10;
	uint8_t *big = iovm_dma_alloc(r.ctx, 16u << 20, 0, 0);
	uint8_t *room = iovm_dma_alloc(r.ctx, 8u << 20, 0, 0); /* what the copies below take, freed */
	if (!big || !room)
		return 77;
	iovm_dma_free(r.ctx, room);
	if (iovm_domain_create(r.ctx, &follow, &r.dom) || iovm_device_open(r.ctx, "sw", &r.dev) ||
	    iovm_device_attach(r.dev, r.dom, IOVM_PASID_NONE))
		return 14;
	int qr = iovm_queue_create(r.dev, &qa, &r.q);
	if (qr)
		return qr == -ENOMEM ? 77 : 15;
	r.comp = iovm_dma_zalloc(r.ctx, 4096, 4096, 0);
	if (!r.comp || iovm_dma_iova(r.dom, r.comp, &r.comp_iova))
		return 16;
	memset(big, 0x99, 16u << 20);
	/* 64 KiB buffers, then 2 MiB ones, which span heap commits (the follow-heap finding, fixed). */
	for (int k = 0; k < 220; k++) {
		size_t n = k < 200 ? 65536 : 2u << 20;
		uint8_t *a = iovm_dma_alloc(r.ctx, n, 4096, 0), *b = iovm_dma_alloc(r.ctx, n, 4096, 0);
		if (!a || !b)
			return errno == ENOMEM ? 77 : 11; /* hugepages taken meanwhile */
		memset(a, k, n);
		struct iovm_completion c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_COPY,
			.src = iova_of(&r, a), .dst = iova_of(&r, b), .len = (uint32_t)n });
		if (c.status != IOVM_STATUS_SUCCESS || !all_bytes(b, n, (uint8_t)k)) {
			if (!bad)
				fprintf(stderr, "child: copy %d: status %u, bytes done %u, byte %zu differs\n", k,
					c.status, c.bytes_completed, first_not(b, n, (uint8_t)k));
			bad++;
		}
		iovm_dma_free(r.ctx, a);
		iovm_dma_free(r.ctx, b);
	}
	if (!all_bytes(big, 16u << 20, 0x99))
		bad++;
	iovm_dma_free(r.ctx, big);
	struct iovm_domain_stats st;
	iovm_domain_stats(r.dom, &st);
	if (st.oracle_violations) {
		fprintf(stderr, "child: %llu oracle violations\n", (unsigned long long)st.oracle_violations);
		bad++;
	}
	rig_close(&r);
	return bad ? 12 : 0;
}

TEST(a_forked_child_works_on_its_own_context_beside_the_parents_device)
{
	struct rig r;
	pthread_t t;

	rig_open(&r, "oracle=on,log_level=error", NULL, IOVM_QUEUE_POLLED);
	atomic_store(&pstop, 0);
	uint8_t *mine = iovm_dma_alloc(r.ctx, 1u << 20, 0, 0);
	CHECK(mine != NULL);
	memset(mine, 0x3e, 1u << 20);
	CHECK(pthread_create(&t, NULL, parent_engine, &r) == 0);
	for (int k = 0; k < 3; k++) {
		pid_t pid = fork();
		CHECK(pid >= 0);
		if (pid == 0) {
			/* The child's copy of the parent's memory: writing it is the child's business. */
			memset(mine, 0x00, 1u << 20);
			_exit(child_work());
		}
		int status;
		CHECK(waitpid(pid, &status, 0) == pid);
		if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
			printf("# child %d: no hugepages free (other processes hold them): skipped\n", k);
			continue;
		}
		EXPECT_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d: status %#x", k, status);
	}
	atomic_store(&pstop, 1);
	pthread_join(t, NULL);
	/*
	 * Not promised either way (ctx.h says nothing of fork): the DMA heap is
	 * shared memory, so a child's writes to its "copy" reach the parent's.
	 */
	printf("# a forked child's writes to the parent's DMA heap %s the parent's memory\n",
	       all_bytes(mine, 1u << 20, 0x3e) ? "did not reach" : "reached");
	check_translation(r.ctx, mine);
	iovm_dma_free(r.ctx, mine);
	rig_close(&r);
}

/* Refused options log at error level: keep them out of the output. */
static void quiet(void *arg, enum iovm_log_level level, const char *msg)
{
	(void)arg;
	(void)level;
	(void)msg;
}

int main(void)
{
	test_init();
	iovm_log_set_handler(quiet, NULL);
	if (getenv("ATTACK_CHILD_INLINE"))
		return child_work();
	RUN(open_refuses_bad_options_and_names_them);
	RUN(options_resolve_as_given);
	RUN(contexts_do_not_reach_each_others_memory);
	RUN(contexts_open_and_close_on_many_threads);
	RUN(a_forked_child_works_on_its_own_context_beside_the_parents_device);
	return attack_status();
}
