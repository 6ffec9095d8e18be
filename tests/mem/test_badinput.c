/* SPDX-License-Identifier: MIT */
/*
 * test_badinput.c - every public call, fed what it must refuse: NULL,
 * zero, overflow, misalignment, unknown flags and options, stale handles.
 * Each row names the call and the errno it must give; nothing may crash,
 * leak (the sanitizer build checks) or succeed. check_api_coverage.sh fails
 * the suite when a public function has no row here.
 */
#include <limits.h>
#include <unistd.h>

#include "mem_util.h"

static struct iovm_ctx *ctx;
static uint8_t *live, *freed;
static const struct iovm_zone *zone;
static int stack_var;

/* Pointer results: 0 for a pointer, -errno for NULL. */
static long ptr_ret(const void *p)
{
	return p ? 0 : -errno;
}

static int walk_fn(void *arg, const struct iovm_zone *z)
{
	(void)arg;
	(void)z;
	return 0;
}

static int event_fn(void *arg, const struct iovm_mem_event *ev)
{
	(void)arg;
	(void)ev;
	return 0;
}

/* A pointer that is no zone, no subscription: compared, never dereferenced by iovm. */
static void *bogus(void)
{
	return &stack_var;
}

#define B(id) static long bad_##id(void)

B(strerror_intmin) { return strcmp(iovm_strerror(INT_MIN), "unknown error") ? -1 : -EINVAL; }
B(strerror_huge) { return strcmp(iovm_strerror(100000), "unknown error") ? -1 : -EINVAL; }
B(error_detail) { iovm_open("nonsense_key=1", &(struct iovm_ctx *){ NULL });
	return strstr(iovm_error_detail(), "nonsense_key") ? -EINVAL : -1; }
B(log_level_low) { return iovm_log_set_level(-1); }
B(log_level_high) { return iovm_log_set_level(5); }
B(log_handler_null) { return iovm_log_set_handler(NULL, NULL) == 0 ? -EINVAL : -1; }
B(opts_help) { return iovm_opts_help()[0] ? -EINVAL : -1; }

B(open_null_out) { return iovm_open("", NULL); }
B(open_unknown_key) { struct iovm_ctx *c; return iovm_open("pagesize=2M", &c); }
B(open_bad_page) { struct iovm_ctx *c; return iovm_open("page_size=3M", &c); }
B(open_bad_limit) { struct iovm_ctx *c; return iovm_open("mem_limit=1K", &c); }
B(open_limit_overflow) { struct iovm_ctx *c; return iovm_open("mem_limit=99999999T", &c); }
B(open_offline_node) { struct iovm_ctx *c; return iovm_open("numa_node=1000", &c); }
B(open_host_pa_4k) { struct iovm_ctx *c; return iovm_open("host_pa=on,page_size=4K", &c); }
B(open_host_pa_unpriv) { struct iovm_ctx *c;
	if (geteuid() == 0) return -EPERM; /* as root it may succeed: covered by other rows */
	return iovm_open("host_pa=on", &c); }
B(open_no_value) { struct iovm_ctx *c; return iovm_open("log_level", &c); }
B(close_null) { return iovm_close(NULL) == 0 ? -EINVAL : -1; }
B(ctx_info_null_ctx) { struct iovm_ctx_info i; return iovm_ctx_info(NULL, &i); }
B(ctx_info_null_out) { return iovm_ctx_info(ctx, NULL); }

B(alloc_null_ctx) { return ptr_ret(iovm_dma_alloc(NULL, 64, 0, 0)); }
B(alloc_zero) { return ptr_ret(iovm_dma_alloc(ctx, 0, 0, 0)); }
B(alloc_align_not_pow2) { return ptr_ret(iovm_dma_alloc(ctx, 64, 48, 0)); }
B(alloc_align_huge) { return ptr_ret(iovm_dma_alloc(ctx, 64, (size_t)1 << 31, 0)); }
B(alloc_unknown_flag) { return ptr_ret(iovm_dma_alloc(ctx, 64, 0, 1u << 31)); }
B(alloc_boundary_small) { return ptr_ret(iovm_dma_alloc(ctx, 8192, 0, IOVM_DMA_BOUNDARY(12))); }
B(alloc_boundary_huge) { return ptr_ret(iovm_dma_alloc(ctx, 64, 0, IOVM_DMA_BOUNDARY(60))); }
B(alloc_bad_node) { return ptr_ret(iovm_dma_alloc(ctx, 64, 0, IOVM_DMA_NODE(200))); }
B(alloc_size_max) { return ptr_ret(iovm_dma_alloc(ctx, SIZE_MAX, 0, 0)); }
B(alloc_size_max_aligned) { return ptr_ret(iovm_dma_alloc(ctx, SIZE_MAX - 4095, 4096, 0)); }
B(alloc_over_limit) { return ptr_ret(iovm_dma_alloc(ctx, (size_t)512 << 20, 0, 0)); }
B(zalloc_null_ctx) { return ptr_ret(iovm_dma_zalloc(NULL, 64, 0, 0)); }
B(zalloc_zero) { return ptr_ret(iovm_dma_zalloc(ctx, 0, 0, 0)); }
B(zalloc_unknown_flag) { return ptr_ret(iovm_dma_zalloc(ctx, 64, 0, 1u << 30)); }
B(realloc_null_ctx) { return ptr_ret(iovm_dma_realloc(NULL, live, 64, 0, 0)); }
B(realloc_zero) { return ptr_ret(iovm_dma_realloc(ctx, live, 0, 0, 0)); }
B(realloc_foreign) { return ptr_ret(iovm_dma_realloc(ctx, &stack_var, 64, 0, 0)); }
B(realloc_freed) { return ptr_ret(iovm_dma_realloc(ctx, freed, 64, 0, 0)); }
B(realloc_bad_align) { return ptr_ret(iovm_dma_realloc(ctx, live, 64, 3, 0)); }
B(realloc_bad_flags) { return ptr_ret(iovm_dma_realloc(ctx, live, 64, 0, 1u << 31)); }
B(free_null_ctx) { return iovm_dma_free(NULL, live); }
B(free_foreign) { return iovm_dma_free(ctx, &stack_var); }
B(free_interior) { return iovm_dma_free(ctx, live + 16); }
B(free_misaligned) { return iovm_dma_free(ctx, live + 1); }
B(free_twice) { return iovm_dma_free(ctx, freed); }
B(size_null_ctx) { errno = 0; return iovm_dma_size(NULL, live) ? -1 : -errno; }
B(size_null_ptr) { errno = 0; return iovm_dma_size(ctx, NULL) ? -1 : -errno; }
B(size_foreign) { errno = 0; return iovm_dma_size(ctx, &stack_var) ? -1 : -errno; }
B(trim_null_ctx) { return (long)iovm_dma_trim(NULL, 0); }
B(trim_bad_flags) { return (long)iovm_dma_trim(ctx, 0x80); }
B(xlate_null_ctx) { struct iovm_dma_xlate x; return iovm_dma_xlate(NULL, live, &x); }
B(xlate_null_out) { return iovm_dma_xlate(ctx, live, NULL); }
B(xlate_foreign) { struct iovm_dma_xlate x; return iovm_dma_xlate(ctx, &stack_var, &x); }
B(pa_null_ctx) { iovm_pa_t pa; return iovm_dma_pa(NULL, live, &pa); }
B(pa_null_out) { return iovm_dma_pa(ctx, live, NULL); }
B(pa_foreign) { iovm_pa_t pa; return iovm_dma_pa(ctx, &stack_var, &pa); }
B(ptr_null_ctx) { return ptr_ret(iovm_dma_ptr(NULL, IOVM_PA(0x200000))); }
B(ptr_unknown_pa) { return ptr_ret(iovm_dma_ptr(ctx, IOVM_PA(UINT64_MAX - 4095))); }

B(zone_null_ctx) { const struct iovm_zone *z; return iovm_zone_reserve(NULL, "z", 64, 0, 0, &z); }
B(zone_null_name) { const struct iovm_zone *z; return iovm_zone_reserve(ctx, NULL, 64, 0, 0, &z); }
B(zone_empty_name) { const struct iovm_zone *z; return iovm_zone_reserve(ctx, "", 64, 0, 0, &z); }
B(zone_long_name) { const struct iovm_zone *z;
	return iovm_zone_reserve(ctx, "0123456789012345678901234567890123456789", 64, 0, 0, &z); }
B(zone_zero_size) { const struct iovm_zone *z; return iovm_zone_reserve(ctx, "z", 0, 0, 0, &z); }
B(zone_size_max) { const struct iovm_zone *z; return iovm_zone_reserve(ctx, "z", SIZE_MAX, 0, 0, &z); }
B(zone_bad_align) { const struct iovm_zone *z; return iovm_zone_reserve(ctx, "z", 64, 96, 0, &z); }
B(zone_bad_flags) { const struct iovm_zone *z; return iovm_zone_reserve(ctx, "z", 64, 0, 1u << 31, &z); }
B(zone_null_out) { return iovm_zone_reserve(ctx, "z", 64, 0, 0, NULL); }
B(zone_exists_smaller) { const struct iovm_zone *z;
	return iovm_zone_reserve(ctx, "badinput-zone", zone->len * 2, 0, 0, &z); }
B(lookup_null_ctx) { const struct iovm_zone *z; return iovm_zone_lookup(NULL, "z", &z); }
B(lookup_null_name) { const struct iovm_zone *z; return iovm_zone_lookup(ctx, NULL, &z); }
B(lookup_null_out) { return iovm_zone_lookup(ctx, "z", NULL); }
B(lookup_missing) { const struct iovm_zone *z; return iovm_zone_lookup(ctx, "no-such-zone", &z); }
B(zone_free_null_ctx) { return iovm_zone_free(NULL, zone); }
B(zone_free_null) { return iovm_zone_free(ctx, NULL); }
B(zone_free_bogus) { return iovm_zone_free(ctx, bogus()); }
B(walk_null_ctx) { return iovm_zone_walk(NULL, walk_fn, NULL); }
B(walk_null_fn) { return iovm_zone_walk(ctx, NULL, NULL); }

B(subscribe_null_ctx) { struct iovm_mem_sub *s; return iovm_mem_event_subscribe(NULL, event_fn, NULL, &s); }
B(subscribe_null_fn) { struct iovm_mem_sub *s; return iovm_mem_event_subscribe(ctx, NULL, NULL, &s); }
B(subscribe_null_out) { return iovm_mem_event_subscribe(ctx, event_fn, NULL, NULL); }
B(unsubscribe_null_ctx) { return iovm_mem_event_unsubscribe(NULL, bogus()); }
B(unsubscribe_null) { return iovm_mem_event_unsubscribe(ctx, NULL); }
B(unsubscribe_bogus) { return iovm_mem_event_unsubscribe(ctx, bogus()); }
B(mem_stats_null_ctx) { struct iovm_mem_stats st; return iovm_mem_stats(NULL, &st); }
B(mem_stats_null_out) { return iovm_mem_stats(ctx, NULL); }
B(phys_stats_null_ctx) { struct iovm_phys_stats st; return iovm_phys_stats(NULL, &st); }
B(phys_stats_null_out) { return iovm_phys_stats(ctx, NULL); }
B(sysinfo_null) { return iovm_sysinfo_get(NULL); }
B(sysinfo_free_null) { iovm_sysinfo_free(NULL); return -EINVAL; }
B(uffd_name_unknown) { return iovm_uffd_feature_name(1000) ? -1 : -EINVAL; }

struct bad_case {
	const char *id;
	const char *api; /* the public function the row exercises */
	long expect;     /* a negative errno */
	long (*fn)(void);
};

#define ROW(id, api, err) { #id, #api, -(err), bad_##id }

static const struct bad_case cases[] = {
	ROW(strerror_intmin, iovm_strerror, EINVAL),
	ROW(strerror_huge, iovm_strerror, EINVAL),
	ROW(error_detail, iovm_error_detail, EINVAL),
	ROW(log_level_low, iovm_log_set_level, EINVAL),
	ROW(log_level_high, iovm_log_set_level, EINVAL),
	ROW(log_handler_null, iovm_log_set_handler, EINVAL),
	ROW(opts_help, iovm_opts_help, EINVAL),
	ROW(open_null_out, iovm_open, EINVAL),
	ROW(open_unknown_key, iovm_open, EINVAL),
	ROW(open_bad_page, iovm_open, EINVAL),
	ROW(open_bad_limit, iovm_open, EINVAL),
	ROW(open_limit_overflow, iovm_open, EINVAL),
	ROW(open_offline_node, iovm_open, EINVAL),
	ROW(open_host_pa_4k, iovm_open, EINVAL),
	ROW(open_host_pa_unpriv, iovm_open, EPERM),
	ROW(open_no_value, iovm_open, EINVAL),
	ROW(close_null, iovm_close, EINVAL),
	ROW(ctx_info_null_ctx, iovm_ctx_info, EINVAL),
	ROW(ctx_info_null_out, iovm_ctx_info, EINVAL),
	ROW(alloc_null_ctx, iovm_dma_alloc, EINVAL),
	ROW(alloc_zero, iovm_dma_alloc, EINVAL),
	ROW(alloc_align_not_pow2, iovm_dma_alloc, EINVAL),
	ROW(alloc_align_huge, iovm_dma_alloc, EINVAL),
	ROW(alloc_unknown_flag, iovm_dma_alloc, EINVAL),
	ROW(alloc_boundary_small, iovm_dma_alloc, EINVAL),
	ROW(alloc_boundary_huge, iovm_dma_alloc, EINVAL),
	ROW(alloc_bad_node, iovm_dma_alloc, EINVAL),
	ROW(alloc_size_max, iovm_dma_alloc, ENOMEM),
	ROW(alloc_size_max_aligned, iovm_dma_alloc, ENOMEM),
	ROW(alloc_over_limit, iovm_dma_alloc, ENOMEM),
	ROW(zalloc_null_ctx, iovm_dma_zalloc, EINVAL),
	ROW(zalloc_zero, iovm_dma_zalloc, EINVAL),
	ROW(zalloc_unknown_flag, iovm_dma_zalloc, EINVAL),
	ROW(realloc_null_ctx, iovm_dma_realloc, EINVAL),
	ROW(realloc_zero, iovm_dma_realloc, EINVAL),
	ROW(realloc_foreign, iovm_dma_realloc, EINVAL),
	ROW(realloc_freed, iovm_dma_realloc, EINVAL),
	ROW(realloc_bad_align, iovm_dma_realloc, EINVAL),
	ROW(realloc_bad_flags, iovm_dma_realloc, EINVAL),
	ROW(free_null_ctx, iovm_dma_free, EINVAL),
	ROW(free_foreign, iovm_dma_free, EINVAL),
	ROW(free_interior, iovm_dma_free, EINVAL),
	ROW(free_misaligned, iovm_dma_free, EINVAL),
	ROW(free_twice, iovm_dma_free, EINVAL),
	ROW(size_null_ctx, iovm_dma_size, EINVAL),
	ROW(size_null_ptr, iovm_dma_size, EINVAL),
	ROW(size_foreign, iovm_dma_size, EINVAL),
	ROW(trim_null_ctx, iovm_dma_trim, EINVAL),
	ROW(trim_bad_flags, iovm_dma_trim, EINVAL),
	ROW(xlate_null_ctx, iovm_dma_xlate, EINVAL),
	ROW(xlate_null_out, iovm_dma_xlate, EINVAL),
	ROW(xlate_foreign, iovm_dma_xlate, ENOENT),
	ROW(pa_null_ctx, iovm_dma_pa, EINVAL),
	ROW(pa_null_out, iovm_dma_pa, EINVAL),
	ROW(pa_foreign, iovm_dma_pa, ENOENT),
	ROW(ptr_null_ctx, iovm_dma_ptr, EINVAL),
	ROW(ptr_unknown_pa, iovm_dma_ptr, ENOENT),
	ROW(zone_null_ctx, iovm_zone_reserve, EINVAL),
	ROW(zone_null_name, iovm_zone_reserve, EINVAL),
	ROW(zone_empty_name, iovm_zone_reserve, EINVAL),
	ROW(zone_long_name, iovm_zone_reserve, EINVAL),
	ROW(zone_zero_size, iovm_zone_reserve, EINVAL),
	ROW(zone_size_max, iovm_zone_reserve, ENOMEM),
	ROW(zone_bad_align, iovm_zone_reserve, EINVAL),
	ROW(zone_bad_flags, iovm_zone_reserve, EINVAL),
	ROW(zone_null_out, iovm_zone_reserve, EINVAL),
	ROW(zone_exists_smaller, iovm_zone_reserve, EEXIST),
	ROW(lookup_null_ctx, iovm_zone_lookup, EINVAL),
	ROW(lookup_null_name, iovm_zone_lookup, EINVAL),
	ROW(lookup_null_out, iovm_zone_lookup, EINVAL),
	ROW(lookup_missing, iovm_zone_lookup, ENOENT),
	ROW(zone_free_null_ctx, iovm_zone_free, EINVAL),
	ROW(zone_free_null, iovm_zone_free, EINVAL),
	ROW(zone_free_bogus, iovm_zone_free, EINVAL),
	ROW(walk_null_ctx, iovm_zone_walk, EINVAL),
	ROW(walk_null_fn, iovm_zone_walk, EINVAL),
	ROW(subscribe_null_ctx, iovm_mem_event_subscribe, EINVAL),
	ROW(subscribe_null_fn, iovm_mem_event_subscribe, EINVAL),
	ROW(subscribe_null_out, iovm_mem_event_subscribe, EINVAL),
	ROW(unsubscribe_null_ctx, iovm_mem_event_unsubscribe, EINVAL),
	ROW(unsubscribe_null, iovm_mem_event_unsubscribe, EINVAL),
	ROW(unsubscribe_bogus, iovm_mem_event_unsubscribe, EINVAL),
	ROW(mem_stats_null_ctx, iovm_mem_stats, EINVAL),
	ROW(mem_stats_null_out, iovm_mem_stats, EINVAL),
	ROW(phys_stats_null_ctx, iovm_phys_stats, EINVAL),
	ROW(phys_stats_null_out, iovm_phys_stats, EINVAL),
	ROW(sysinfo_null, iovm_sysinfo_get, EINVAL),
	ROW(sysinfo_free_null, iovm_sysinfo_free, EINVAL),
	ROW(uffd_name_unknown, iovm_uffd_feature_name, EINVAL),
};

static void quiet(void *arg, enum iovm_log_level level, const char *msg)
{
	(void)arg;
	(void)level;
	(void)msg;
}

TEST(every_call_refuses_bad_input)
{
	struct iovm_mem_stats before, after;

	CHECK_OK(iovm_mem_stats(ctx, &before));
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		long got = cases[i].fn();

		CHECK_MSG(got == cases[i].expect, "%s (%s): got %ld (%s), expected %ld (%s)",
			  cases[i].id, cases[i].api, got, got < 0 ? strerror((int)-got) : "success",
			  cases[i].expect, strerror((int)-cases[i].expect));
		iovm_log_set_handler(quiet, NULL); /* a row may restore the default handler */
	}
	/* Nothing the refused calls did is left over. */
	CHECK_OK(iovm_mem_stats(ctx, &after));
	CHECK_EQ(after.in_use, before.in_use);
	CHECK_EQ(after.nr_zones, before.nr_zones);
	/* The context still works. */
	CHECK(iovm_dma_free(ctx, iovm_dma_alloc(ctx, 100, 0, 0)) == 0);
	printf("# %zu bad-input rows\n", ARRAY_SIZE(cases));
}

int main(void)
{
	test_init();
	iovm_log_set_handler(quiet, NULL);
	ctx = open_ctx("page_size=4K,host_pa=off,mem_limit=256M");
	live = iovm_dma_alloc(ctx, 256, 0, 0);
	freed = iovm_dma_alloc(ctx, 4096, 0, 0);
	CHECK(live && freed);
	CHECK_OK(iovm_dma_free(ctx, freed));
	CHECK_EQ(iovm_zone_reserve(ctx, "badinput-zone", 4096, 0, 0, &zone), 0);
	RUN(every_call_refuses_bad_input);
	CHECK_OK(iovm_zone_free(ctx, zone));
	CHECK_OK(iovm_dma_free(ctx, live));
	iovm_close(ctx);
	return 0;
}
