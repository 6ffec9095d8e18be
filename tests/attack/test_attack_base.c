/* SPDX-License-Identifier: MIT */
/*
 * test_attack_base.c - attacks base.h and os.h: iovm_size_parse() on
 * every edge of its grammar, iovm_strerror() on any int, the error
 * detail (empty at each call's start, naming the call that failed, per
 * thread, kept by hot-path successes), log levels and handlers under
 * threads, and the system description.
 */
#include "attack.h"

struct size_case {
	const char *s;
	int ok;
	uint64_t v;
};

TEST(size_parse_accepts_its_grammar_and_nothing_else)
{
	static const struct size_case cases[] = {
		{ "0", 1, 0 },
		{ "4096", 1, 4096 },
		{ "64K", 1, 64ull << 10 },
		{ "64k", 1, 64ull << 10 },
		{ "2M", 1, 2ull << 20 },
		{ "2m", 1, 2ull << 20 },
		{ "2MiB", 1, 2ull << 20 },
		{ "2MB", 1, 2ull << 20 },
		{ "1T", 1, 1ull << 40 },
		{ "1t", 1, 1ull << 40 },
		{ "1G", 1, 1ull << 30 },
		{ "0x10", 1, 16 },
		{ "0x10K", 1, 16ull << 10 },
		{ "0x1f", 1, 31 },
		{ "18446744073709551615", 1, UINT64_MAX },
		{ "16777215T", 1, 16777215ull << 40 },
		{ "17179869183G", 1, 17179869183ull << 30 },
		{ "0xffffffffffffffff", 1, UINT64_MAX },
		{ "", 0, 0 },
		{ "K", 0, 0 },
		{ "0x", 0, 0 },
		{ "0xK", 0, 0 },
		{ "-1", 0, 0 },
		{ "-0", 0, 0 },
		{ "+1", 0, 0 },
		{ " 1", 0, 0 },
		{ "\t1", 0, 0 },
		{ "1 ", 0, 0 },
		{ "1 K", 0, 0 },
		{ "1K ", 0, 0 },
		{ "1.5G", 0, 0 },
		{ "1E", 0, 0 },
		{ "1P", 0, 0 },
		{ "1KK", 0, 0 },
		{ "1Ki", 0, 0 },
		{ "1KiBB", 0, 0 },
		{ "1iB", 0, 0 },
		{ "18446744073709551616", 0, 0 },
		{ "99999999999999999999999", 0, 0 },
		{ "16777216T", 0, 0 },
		{ "17179869184G", 0, 0 },
		{ "0x10000000000000000", 0, 0 },
		{ "0x1000000000000000K", 0, 0 },
		{ "1\n", 0, 0 },
		{ "12abc", 0, 0 },
	};
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t v = 0xdeadbeef;
		int r = iovm_size_parse(cases[i].s, &v);
		if (cases[i].ok)
			EXPECT_MSG(r == 0 && v == cases[i].v, "\"%s\": %d, %llu (expected %llu)", cases[i].s, r,
				   (unsigned long long)v, (unsigned long long)cases[i].v);
		else
			EXPECT_MSG(r == -EINVAL, "\"%s\": %d, %llu (expected -EINVAL)", cases[i].s, r,
				   (unsigned long long)v);
	}
	uint64_t v;
	CHECK_RET(iovm_size_parse(NULL, &v), -EINVAL);
	CHECK_RET(iovm_size_parse("1", NULL), -EINVAL);
}

TEST(strerror_answers_any_int)
{
	static const int v[] = { 0, 1, -1, -22, 22, -4095, -4096, -100000, 100000, INT32_MAX, INT32_MIN,
				 INT32_MIN + 1 };
	for (unsigned i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		const char *s = iovm_strerror(v[i]);
		CHECK_MSG(s != NULL, "iovm_strerror(%d) is NULL", v[i]);
		CHECK(strlen(s) < 1000);
	}
	CHECK(strcmp(iovm_strerror(-EINVAL), iovm_strerror(EINVAL)) == 0);
}

TEST(log_level_range_and_handler)
{
	CHECK_RET(iovm_log_set_level(-1), -EINVAL);
	CHECK_RET(iovm_log_set_level(5), -EINVAL);
	CHECK_RET(iovm_log_set_level(INT32_MAX), -EINVAL);
	CHECK_RET(iovm_log_set_level(INT32_MIN), -EINVAL);
	for (int l = 0; l <= 4; l++)
		CHECK_RET(iovm_log_set_level(l), 0);
	CHECK_RET(iovm_log_set_handler(NULL, NULL), 0);
	CHECK(iovm_opts_help() != NULL && strstr(iovm_opts_help(), "page_size"));
	iovm_log_set_level(IOVM_LOG_ERR);
}

static _Atomic unsigned long logged;
static void silent_log(void *arg, enum iovm_log_level level, const char *msg)
{
	(void)arg;
	(void)level;
	(void)msg;
}

static void count_log(void *arg, enum iovm_log_level level, const char *msg)
{
	(void)arg;
	CHECK(level <= IOVM_LOG_DEBUG && msg != NULL && !strchr(msg, '\n'));
	atomic_fetch_add(&logged, 1);
}

static void *log_spammer(void *arg)
{
	struct iovm_ctx *ctx = arg;
	for (int i = 0; i < 2000; i++) {
		errno = 0;
		void *p = iovm_dma_alloc(ctx, 0, 0, 0); /* logs at debug */
		CHECK(p == NULL);
	}
	return NULL;
}

TEST(log_handler_called_concurrently_and_removed)
{
	struct iovm_ctx *ctx = attack_open(NULL);
	pthread_t t[4];

	CHECK_OK(iovm_log_set_handler(count_log, NULL));
	CHECK_OK(iovm_log_set_level(IOVM_LOG_DEBUG));
	for (int i = 0; i < 4; i++)
		CHECK(pthread_create(&t[i], NULL, log_spammer, ctx) == 0);
	/* Swap the handler and the level while they log. */
	for (int i = 0; i < 200; i++) {
		CHECK_OK(iovm_log_set_handler(i % 2 ? silent_log : count_log, NULL));
		CHECK_OK(iovm_log_set_level(i % 5));
	}
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	CHECK_OK(iovm_log_set_level(IOVM_LOG_ERR));
	CHECK_OK(iovm_log_set_handler(NULL, NULL));
	unsigned long n = atomic_load(&logged);
	log_spammer(ctx);
	EXPECT_MSG(atomic_load(&logged) == n, "a removed handler was still called");
	iovm_close(ctx);
}

TEST(error_detail_belongs_to_the_last_call)
{
	struct iovm_ctx *ctx = attack_open(NULL);
	void *p;
	struct iovm_domain *d;
	iovm_pa_t pa;

	/* A failure, then a success: the success starts empty. */
	p = iovm_dma_alloc(ctx, 0, 0, 0);
	CHECK(p == NULL && strstr(iovm_error_detail(), "iovm_dma_alloc"));
	p = iovm_dma_alloc(ctx, 64, 0, 0);
	CHECK(p != NULL);
	EXPECT_MSG(!strcmp(iovm_error_detail(), ""), "after a success: \"%s\"", iovm_error_detail());
	/* A failure in another layer names that call, not the earlier one. */
	CHECK(iovm_dma_alloc(ctx, 0, 0, 0) == NULL);
	CHECK_RET(iovm_domain_create(ctx, &(struct iovm_domain_attr){ .type = 99 }, &d), -EINVAL);
	EXPECT_MSG(!strstr(iovm_error_detail(), "iovm_dma_alloc"),
		   "iovm_domain_create failed, the detail is the earlier call's: \"%s\"", iovm_error_detail());
	/* A hot-path success keeps it; a hot-path failure sets it. */
	CHECK(iovm_dma_alloc(ctx, 0, 0, 0) == NULL);
	char before[512];
	snprintf(before, sizeof(before), "%s", iovm_error_detail());
	CHECK_OK(iovm_dma_pa(ctx, p, &pa));
	EXPECT_MSG(!strcmp(before, iovm_error_detail()), "iovm_dma_pa's success changed the detail");
	CHECK_RET(iovm_dma_pa(ctx, &pa, &pa), -ENOENT);
	EXPECT_MSG(strstr(iovm_error_detail(), "iovm_dma_pa") != NULL,
		   "iovm_dma_pa failed, detail: \"%s\"", iovm_error_detail());
	/* Each failing call of another layer after a mem failure: its own name or nothing. */
	static const char *const names[] = { "iovm_domain_map", "iovm_device_open", "iovm_guest_create",
					     "iovm_pool_create", "iovm_queue_submit" };
	struct iovm_domain *dom;
	struct iovm_device *dev;
	struct iovm_guest *g;
	struct iovm_pool *pool;
	iovm_iova_t io = IOVM_IOVA(1);
	CHECK_OK(iovm_domain_create(ctx, NULL, &dom));
	for (unsigned i = 0; i < 5; i++) {
		CHECK(iovm_dma_alloc(ctx, 0, 0, 0) == NULL); /* leaves "iovm_dma_alloc: ..." */
		int r;
		switch (i) {
		case 0: r = iovm_domain_map(dom, &io, pa, 4096, 3); break;
		case 1: r = iovm_device_open(ctx, "nope", &dev); break;
		case 2: r = iovm_guest_create(ctx, &(struct iovm_guest_attr){ .size = 1 }, &g); break;
		case 3: r = iovm_pool_create(ctx, "", 4096, 4096, 1, &pool); break;
		default: r = iovm_queue_submit(NULL, NULL); break;
		}
		CHECK(r < 0);
		EXPECT_MSG(!strstr(iovm_error_detail(), "iovm_dma_alloc"),
			   "%s failed (%d): the detail still names an earlier call: \"%s\"", names[i], r,
			   iovm_error_detail());
	}
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_OK(iovm_dma_free(ctx, p));
	iovm_close(ctx);
}

static const char *other_thread_detail;
static char other_buf[256];
static void *fail_elsewhere(void *arg)
{
	struct iovm_ctx *ctx = arg;
	snprintf(other_buf, sizeof(other_buf), "%s", iovm_error_detail());
	other_thread_detail = other_buf;
	CHECK(iovm_dma_alloc(ctx, 64, 3, 0) == NULL);
	return NULL;
}

TEST(error_detail_is_per_thread)
{
	struct iovm_ctx *ctx = attack_open(NULL);
	pthread_t t;

	CHECK(iovm_dma_alloc(ctx, 0, 0, 0) == NULL);
	char mine[512];
	snprintf(mine, sizeof(mine), "%s", iovm_error_detail());
	CHECK(pthread_create(&t, NULL, fail_elsewhere, ctx) == 0);
	pthread_join(t, NULL);
	EXPECT_MSG(!strcmp(other_thread_detail, ""), "a new thread starts with \"%s\"", other_thread_detail);
	EXPECT_MSG(!strcmp(mine, iovm_error_detail()), "another thread's failure changed this one's detail");
	iovm_close(ctx);
}

TEST(sysinfo_is_consistent)
{
	struct iovm_sysinfo *si;

	CHECK_RET(iovm_sysinfo_get(NULL), -EINVAL);
	CHECK_OK(iovm_sysinfo_get(&si));
	CHECK_EQ(si->base_page_size, (uint64_t)sysconf(_SC_PAGESIZE));
	CHECK_EQ(si->nr_cpus_online, (unsigned)sysconf(_SC_NPROCESSORS_ONLN));
	CHECK_EQ(si->root, geteuid() == 0);
	CHECK(si->nr_page_sizes <= IOVM_INFO_MAX_SIZES);
	CHECK(si->nr_nodes >= 1 && si->nr_nodes <= IOVM_INFO_MAX_NODES);
	CHECK(si->nr_pools <= IOVM_INFO_MAX_SIZES * (IOVM_INFO_MAX_NODES + 1));
	for (unsigned i = 0; i < si->nr_pools; i++)
		CHECK(si->pools[i].free <= si->pools[i].total);
	CHECK(si->nr_iommu_groups <= IOVM_INFO_MAX_GROUPS);
	CHECK(si->nr_vfio_pci <= IOVM_INFO_MAX_VFIO_DEVICES);
	CHECK(memchr(si->kernel, 0, sizeof(si->kernel)) != NULL);
	CHECK(memchr(si->uffd_via, 0, sizeof(si->uffd_via)) != NULL);
	if (si->root)
		EXPECT_EQ(si->pagemap, 1);
	if (!si->uffd)
		CHECK(si->uffd_error < 0);
	iovm_sysinfo_free(si);
	iovm_sysinfo_free(NULL);
	for (unsigned b = 0; b < 64; b++) {
		const char *n = iovm_uffd_feature_name(b);
		CHECK(n == NULL || strlen(n) > 0);
	}
	CHECK(iovm_uffd_feature_name(64) == NULL);
	CHECK(iovm_uffd_feature_name(1000) == NULL);
	CHECK(iovm_uffd_feature_name(UINT32_MAX) == NULL);
}

int main(void)
{
	test_init();
	iovm_log_set_level(IOVM_LOG_ERR);
	RUN(size_parse_accepts_its_grammar_and_nothing_else);
	RUN(strerror_answers_any_int);
	RUN(log_level_range_and_handler);
	RUN(log_handler_called_concurrently_and_removed);
	RUN(error_detail_belongs_to_the_last_call);
	RUN(error_detail_is_per_thread);
	RUN(sysinfo_is_consistent);
	return attack_status();
}
