/* SPDX-License-Identifier: MIT */
/*
 * test_badinput.c - every public call, fed what it must refuse: NULL,
 * zero, overflow, misalignment, unknown flags and options, stale handles.
 * Each row names the call and the errno it must give; nothing may crash,
 * leak (the sanitizer build checks) or succeed. check_api_coverage.sh fails
 * the suite when a public function has no row here.
 */
#include <limits.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mem_util.h"

static struct iovm_ctx *ctx;
static uint8_t *live, *freed, *page;
static const struct iovm_zone *zone;
static int stack_var;
static struct iovm_domain *dom, *idom;
static struct iovm_device *dev, *dev2;
static struct iovm_queue *q, *qfull, *qworker;
static iovm_pa_t page_pa;
static uint8_t *app, *app_ro, *app_gone; /* the application's own memory: mapped, read-only, unmapped */
static struct iovm_mr *mr;
static struct iovm_rcache *rc;
static struct iovm_guest *guest, *guest_down; /* a running guest, and one shut down */
static struct iovm_pool *pool;
static struct iovm_cbuf *cbuf;                /* non-coherent, 4 KiB */
static struct iovm_domain *s2, *ndom;        /* guest's stage 2, and a nested domain over it */
static struct iovm_mem_map *mmap_keys;       /* an SPDK-style memory map (iovm/memmap.h) */

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

/* The detail a row's call left, kept before the row cleans up after it (see check_detail()). */
static char kept_detail[512];
static bool detail_kept;

static void keep_detail(void)
{
	snprintf(kept_detail, sizeof(kept_detail), "%s", iovm_error_detail());
	detail_kept = true;
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
/* No bad input: a NULL @number is allowed, and the string is the headers'. */
B(version_null) { return !strcmp(iovm_version(NULL), IOVM_VERSION_STRING) ? -EINVAL : -1; }
/* Values outside the enums: named unknown, never NULL. */
B(status_name_bad) { return !strcmp(iovm_status_name(-1), "unknown status") ? -EINVAL : -1; }
B(fault_reason_name_bad) { return !strcmp(iovm_fault_reason_name(1 << 20), "unknown fault reason") ? -EINVAL : -1; }
B(size_parse_suffix) { uint64_t v; return iovm_size_parse("1X", &v); }

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
B(open_share_and_attach) { struct iovm_ctx *c; return iovm_open("share=a,attach=b", &c); }
B(open_bad_share_name) { struct iovm_ctx *c; return iovm_open("share=a b", &c); }
B(open_share_group) { struct iovm_ctx *c; return iovm_open("share=a,share_group=-5", &c); }
B(attach_opts_share) { struct iovm_ctx *c; return iovm_attach("badinput", "share=x", &c); }
B(share_null_ctx) { return iovm_share(NULL, "badinput", NULL); }
B(share_null_name) { return iovm_share(ctx, NULL, NULL); }
B(share_bad_name) { return iovm_share(ctx, "bad/name", NULL); }
B(share_tiny_heap) { return iovm_share(ctx, "badinput", &(struct iovm_share_params){ .heap_size = 1, .group = -1 }); }
B(share_bad_page) { return iovm_share(ctx, "badinput", &(struct iovm_share_params){ .page_size = 8192, .group = -1 }); }
B(share_bad_group) { return iovm_share(ctx, "badinput", &(struct iovm_share_params){ .group = -7 }); }
B(attach_null_name) { struct iovm_ctx *c; return iovm_attach(NULL, "", &c); }
B(attach_null_out) { return iovm_attach("badinput", "", NULL); }
B(attach_bad_name) { struct iovm_ctx *c; return iovm_attach("", "", &c); }
B(attach_nobody) { struct iovm_ctx *c; return iovm_attach("badinput-nobody-shares-this", "", &c); }
B(share_info_null_ctx) { struct iovm_share_info i; return iovm_share_info(NULL, &i); }
B(share_info_null_out) { return iovm_share_info(ctx, NULL); }
B(share_info_not_shared) { struct iovm_share_info i; return iovm_share_info(ctx, &i); }
B(share_reap_null) { return iovm_share_reap(NULL); }
B(share_reap_not_shared) { return iovm_share_reap(ctx); }
B(share_check_null) { return iovm_share_check(NULL); }
B(share_check_not_shared) { return iovm_share_check(ctx); }
B(device_serve_null_ctx) { struct iovm_device_server *d; return iovm_device_serve(NULL, "badinput", 1, &d); }
B(device_serve_null_out) { return iovm_device_serve(ctx, "badinput", 1, NULL); }
B(device_serve_workers) { struct iovm_device_server *d; return iovm_device_serve(ctx, "badinput", 65, &d); }
B(device_serve_bad_name) { struct iovm_device_server *d; return iovm_device_serve(ctx, "bad name", 1, &d); }
B(device_serve_not_shared) { struct iovm_device_server *d; return iovm_device_serve(ctx, "badinput", 1, &d); }
B(device_server_info_null) { struct iovm_device_server_info i; return iovm_device_server_info(NULL, &i); }
B(device_server_stop_null) { return iovm_device_server_stop(NULL); }
B(rqueue_open_null_ctx) { struct iovm_rqueue *rq; return iovm_rqueue_open(NULL, "badinput", 0, &rq); }
B(rqueue_open_null_out) { return iovm_rqueue_open(ctx, "badinput", 0, NULL); }
B(rqueue_open_depth) { struct iovm_rqueue *rq; return iovm_rqueue_open(ctx, "badinput", 3, &rq); }
B(rqueue_open_deep) { struct iovm_rqueue *rq; return iovm_rqueue_open(ctx, "badinput", 8192, &rq); }
B(rqueue_open_bad_name) { struct iovm_rqueue *rq; return iovm_rqueue_open(ctx, "", 0, &rq); }
B(rqueue_open_not_shared) { struct iovm_rqueue *rq; return iovm_rqueue_open(ctx, "badinput", 0, &rq); }
B(sdom_create_null_ctx) { struct iovm_domain *d; return iovm_share_domain_create(NULL, "d", NULL, &d); }
B(sdom_create_null_name) { struct iovm_domain *d; return iovm_share_domain_create(ctx, NULL, NULL, &d); }
B(sdom_create_null_out) { return iovm_share_domain_create(ctx, "d", NULL, NULL); }
B(sdom_create_long_name) { struct iovm_domain *d; return iovm_share_domain_create(ctx, "0123456789012345678901234567890123", NULL, &d); }
B(sdom_create_not_shared) { struct iovm_domain *d; return iovm_share_domain_create(ctx, "d", NULL, &d); }
B(sdom_open_null_ctx) { struct iovm_domain *d; return iovm_share_domain_open(NULL, "d", &d); }
B(sdom_open_empty_name) { struct iovm_domain *d; return iovm_share_domain_open(ctx, "", &d); }
B(sdom_open_null_out) { return iovm_share_domain_open(ctx, "d", NULL); }
B(sdom_open_not_shared) { struct iovm_domain *d; return iovm_share_domain_open(ctx, "d", &d); }
B(rqueue_pasid_null) { return iovm_rqueue_pasid(NULL) == 0 ? -EINVAL : -1; }
B(rqueue_map_null) { iovm_iova_t i; return iovm_rqueue_map(NULL, app, 4096, IOVM_MAP_READ, &i); }
B(rqueue_unmap_null) { return iovm_rqueue_unmap(NULL, IOVM_IOVA(4096), 4096); }
B(rqueue_map_mr_null) { iovm_iova_t i; return iovm_rqueue_map_mr(NULL, NULL, IOVM_MAP_READ, &i); }
B(rqueue_unmap_mr_null) { return iovm_rqueue_unmap_mr(NULL, NULL); }
B(rqueue_submit_null) { return iovm_rqueue_submit(NULL, &(struct iovm_desc){ 0 }); }
B(rqueue_reap_null) { struct iovm_cqe c; return iovm_rqueue_reap(NULL, &c, 1); }
B(rqueue_fault_handler_null) { return iovm_rqueue_set_fault_handler(NULL, NULL, NULL); }
B(rqueue_close_null) { return iovm_rqueue_close(NULL); }

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
B(pa_is_host_null_ctx) { return iovm_pa_is_host(NULL, page_pa); }
B(pa_is_host_unknown) { return iovm_pa_is_host(ctx, IOVM_PA(UINT64_MAX - 4095)); }
B(pa_is_host_zero) { return iovm_pa_is_host(ctx, IOVM_PA(0)); }
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

static int fault_fn(void *arg, struct iovm_domain *d, const struct iovm_fault *f)
{
	(void)arg;
	(void)d;
	(void)f;
	return -1;
}

B(dom_create_null_ctx) { struct iovm_domain *d; return iovm_domain_create(NULL, NULL, &d); }
B(dom_create_null_out) { return iovm_domain_create(ctx, NULL, NULL); }
B(dom_create_bad_type) { struct iovm_domain *d;
	return iovm_domain_create(ctx, &(struct iovm_domain_attr){ .type = 9 }, &d); }
B(dom_create_bad_flags) { struct iovm_domain *d;
	return iovm_domain_create(ctx, &(struct iovm_domain_attr){ .flags = 1u << 20 }, &d); }
B(dom_create_bad_bits) { struct iovm_domain *d;
	return iovm_domain_create(ctx, &(struct iovm_domain_attr){ .dma_bits = 12 }, &d); }
B(dom_create_holes_no_count) { struct iovm_domain *d; struct iovm_iova_range h = { IOVM_IOVA(0), 4096 };
	return iovm_domain_create(ctx, &(struct iovm_domain_attr){ .reserved = &h }, &d); }
B(dom_destroy_null) { return iovm_domain_destroy(NULL); }
B(dom_destroy_attached) { return iovm_domain_destroy(dom); }
B(map_null_dom) { iovm_iova_t i = IOVM_IOVA_ANY; return iovm_domain_map(NULL, &i, page_pa, 4096, 3); }
B(map_null_iova) { return iovm_domain_map(dom, NULL, page_pa, 4096, 3); }
B(map_zero_len) { iovm_iova_t i = IOVM_IOVA_ANY; return iovm_domain_map(dom, &i, page_pa, 0, 3); }
B(map_unaligned_len) { iovm_iova_t i = IOVM_IOVA_ANY; return iovm_domain_map(dom, &i, page_pa, 100, 3); }
B(map_unaligned_pa) { iovm_iova_t i = IOVM_IOVA_ANY;
	return iovm_domain_map(dom, &i, IOVM_PA(page_pa.addr + 8), 4096, 3); }
B(map_unaligned_iova) { iovm_iova_t i = IOVM_IOVA(0x1008); return iovm_domain_map(dom, &i, page_pa, 4096, 3); }
B(map_bad_perm) { iovm_iova_t i = IOVM_IOVA_ANY; return iovm_domain_map(dom, &i, page_pa, 4096, 8); }
B(map_no_perm) { iovm_iova_t i = IOVM_IOVA_ANY; return iovm_domain_map(dom, &i, page_pa, 4096, 0); }
B(map_foreign_pa) { iovm_iova_t i = IOVM_IOVA_ANY;
	return iovm_domain_map(dom, &i, IOVM_PA(UINT64_C(1) << 46), 4096, 3); }
B(map_pa_overflow) { iovm_iova_t i = IOVM_IOVA_ANY;
	return iovm_domain_map(dom, &i, IOVM_PA(UINT64_MAX - 4095), 8192, 3); }
B(map_identity) { iovm_iova_t i = IOVM_IOVA_ANY; return iovm_domain_map(idom, &i, page_pa, 4096, 3); }
B(map_overlap) { iovm_iova_t i = IOVM_IOVA(0x7000000);
	return iovm_domain_map(dom, &i, page_pa, 4096, 3) ? -1 : iovm_domain_map(dom, &i, page_pa, 4096, 3); }
B(map_beyond_mask) { iovm_iova_t i = IOVM_IOVA(UINT64_C(1) << 48); return iovm_domain_map(dom, &i, page_pa, 4096, 3); }
B(map_pages_null) { iovm_iova_t i = IOVM_IOVA_ANY; return iovm_domain_map_pages(dom, &i, NULL, 1, 3); }
B(map_pages_zero) { iovm_iova_t i = IOVM_IOVA_ANY; return iovm_domain_map_pages(dom, &i, &page_pa, 0, 3); }
B(map_pages_unaligned) { iovm_iova_t i = IOVM_IOVA_ANY; iovm_pa_t p = IOVM_PA(page_pa.addr + 1);
	return iovm_domain_map_pages(dom, &i, &p, 1, 3); }
B(map_pages_foreign) { iovm_iova_t i = IOVM_IOVA_ANY; iovm_pa_t p = IOVM_PA(UINT64_C(1) << 46);
	return iovm_domain_map_pages(dom, &i, &p, 1, 3); }
B(map_ptr_null) { iovm_iova_t i; return iovm_domain_map_ptr(dom, NULL, 4096, 3, &i); }
B(map_ptr_unaligned) { iovm_iova_t i; return iovm_domain_map_ptr(dom, page + 8, 4096, 3, &i); }
B(map_ptr_foreign) { iovm_iova_t i; static uint8_t p[8192] __attribute__((aligned(4096)));
	return iovm_domain_map_ptr(dom, p, 4096, 3, &i); }
B(map_ptr_null_out) { return iovm_domain_map_ptr(dom, page, 4096, 3, NULL); }
B(unmap_null) { return iovm_domain_unmap(NULL, IOVM_IOVA(0x1000), 4096); }
B(unmap_unaligned) { return iovm_domain_unmap(dom, IOVM_IOVA(0x1001), 4096); }
B(unmap_zero) { return iovm_domain_unmap(dom, IOVM_IOVA(0x1000), 0); }
B(unmap_overflow) { return iovm_domain_unmap(dom, IOVM_IOVA(UINT64_MAX - 4095), 8192); }
B(unmap_nothing) { return iovm_domain_unmap(dom, IOVM_IOVA(0x123000), 4096); }
B(unmap_identity) { return iovm_domain_unmap(idom, IOVM_IOVA(0x1000), 4096); }
B(flush_null) { return iovm_domain_flush(NULL); }
B(dma_iova_null_dom) { iovm_iova_t i; return iovm_dma_iova(NULL, live, &i); }
B(dma_iova_null_out) { return iovm_dma_iova(idom, live, NULL); }
B(dma_iova_foreign) { iovm_iova_t i; return iovm_dma_iova(dom, &stack_var, &i); }
B(translate_null) { iovm_pa_t p; return iovm_domain_translate(NULL, IOVM_IOVA(0), &p, NULL); }
B(translate_null_out) { return iovm_domain_translate(dom, IOVM_IOVA(0), NULL, NULL); }
B(translate_unmapped) { iovm_pa_t p; return iovm_domain_translate(dom, IOVM_IOVA(0x3000), &p, NULL); }
B(dirty_null) { bool a, d; return iovm_domain_read_dirty(NULL, IOVM_IOVA(0), 4096, false, &a, &d); }
B(dirty_null_out) { bool a; return iovm_domain_read_dirty(dom, IOVM_IOVA(0), 4096, false, &a, NULL); }
B(dirty_zero) { bool a, d; return iovm_domain_read_dirty(dom, IOVM_IOVA(0), 0, false, &a, &d); }
B(handler_null) { return iovm_domain_set_fault_handler(NULL, fault_fn, NULL); }
B(fault_pop_null) { struct iovm_fault f; return iovm_domain_fault_pop(NULL, &f); }
B(fault_pop_empty) { struct iovm_fault f; return iovm_domain_fault_pop(idom, &f); }
B(dom_stats_null) { struct iovm_domain_stats st; return iovm_domain_stats(NULL, &st); }
B(dom_stats_null_out) { return iovm_domain_stats(dom, NULL); }
B(dev_open_null_ctx) { struct iovm_device *d; return iovm_device_open(NULL, "sw", &d); }
B(dev_open_null_spec) { struct iovm_device *d; return iovm_device_open(ctx, NULL, &d); }
B(dev_open_unknown) { struct iovm_device *d; return iovm_device_open(ctx, "nic:42", &d); }
B(dev_open_null_out) { return iovm_device_open(ctx, "sw", NULL); }
B(dev_open_vfio_absent) { struct iovm_device *d; return iovm_device_open(ctx, "vfio:ffff:ff:1f.7", &d); }
B(dev_open_vfio_long) { struct iovm_device *d; return iovm_device_open(ctx, "vfio:0000:00:03.0.and.more", &d); }
B(dev_open_group_absent) { struct iovm_device *d; return iovm_device_open(ctx, "vfio-group:ffff:ff:1f.7", &d); }
B(dev_open_iommufd_absent) { struct iovm_device *d; return iovm_device_open(ctx, "vfio-iommufd:ffff:ff:1f.7", &d); }
B(dev_open_vfio_prefix) { struct iovm_device *d; return iovm_device_open(ctx, "vfio-type1:0000:00:03.0", &d); }
B(dev_open_verbs_empty) { struct iovm_device *d; return iovm_device_open(ctx, "verbs:", &d); }
B(dev_open_verbs_long) { struct iovm_device *d; return iovm_device_open(ctx, "verbs:0123456789012345678901234567890123456789012345678901234567890123", &d); }
B(dev_verbs_null) { struct iovm_device_verbs v; return iovm_device_verbs(NULL, &v); }
B(dev_verbs_null_out) { return iovm_device_verbs(dev, NULL); }
B(dev_verbs_not_verbs) { struct iovm_device_verbs v; return iovm_device_verbs(dev, &v); }
B(dev_query_null) { struct iovm_device_info i; return iovm_device_query(NULL, &i); }
B(dev_query_null_out) { return iovm_device_query(dev, NULL); }
B(dev_fault_pop_null) { struct iovm_fault f; return iovm_device_fault_pop(NULL, &f); }
B(dev_fault_pop_null_out) { return iovm_device_fault_pop(dev, NULL); }
B(dev_bar_null) { void *p; size_t l; return iovm_device_bar(NULL, 0, &p, &l); }
B(dev_bar_bad_index) { void *p; size_t l; return iovm_device_bar(dev, 6, &p, &l); }
B(dev_bar_null_out) { size_t l; return iovm_device_bar(dev, 0, NULL, &l); }
B(dev_bar_sw) { void *p; size_t l; return iovm_device_bar(dev, 0, &p, &l); }
B(dev_cfg_read_null) { uint16_t v; return iovm_device_config_read(NULL, 4, &v, 2); }
B(dev_cfg_read_len) { uint32_t v; return iovm_device_config_read(dev, 4, &v, 3); }
B(dev_cfg_read_unaligned) { uint32_t v; return iovm_device_config_read(dev, 2, &v, 4); }
B(dev_cfg_read_beyond) { uint32_t v; return iovm_device_config_read(dev, 4096, &v, 4); }
B(dev_cfg_read_null_buf) { return iovm_device_config_read(dev, 4, NULL, 2); }
B(dev_cfg_read_sw) { uint16_t v; return iovm_device_config_read(dev, 4, &v, 2); }
B(dev_cfg_write_null) { uint16_t v = 0; return iovm_device_config_write(NULL, 4, &v, 2); }
B(dev_cfg_write_len) { uint64_t v = 0; return iovm_device_config_write(dev, 0, &v, 8); }
B(dev_cfg_write_null_buf) { return iovm_device_config_write(dev, 4, NULL, 2); }
B(dev_cfg_write_sw) { uint16_t v = 6; return iovm_device_config_write(dev, 4, &v, 2); }
B(dev_msi_null) { return iovm_device_msi(NULL, 3); }
B(dev_msi_bad_fd) { return iovm_device_msi(dev, -5); }
B(dev_msi_sw) { return iovm_device_msi(dev, -1); }
B(dev_close_null) { return iovm_device_close(NULL); }
B(dev_id_null) { return iovm_device_id(NULL) ? -1 : -EINVAL; }
B(attach_null_dev) { return iovm_device_attach(NULL, dom, 0); }
B(attach_null_dom) { return iovm_device_attach(dev2, NULL, 0); }
B(attach_big_pasid) { return iovm_device_attach(dev2, dom, IOVM_PASID_MAX + 1); }
B(attach_twice) { return iovm_device_attach(dev, idom, IOVM_PASID_NONE); }
B(detach_null) { return iovm_device_detach(NULL, 0); }
B(detach_big_pasid) { return iovm_device_detach(dev, IOVM_PASID_MAX + 1); }
B(detach_unattached) { return iovm_device_detach(dev2, 7); }
B(queue_null_dev) { struct iovm_queue *x; return iovm_queue_create(NULL, NULL, &x); }
B(queue_depth_not_pow2) { struct iovm_queue *x;
	return iovm_queue_create(dev, &(struct iovm_queue_attr){ .depth = 100 }, &x); }
B(queue_depth_huge) { struct iovm_queue *x;
	return iovm_queue_create(dev, &(struct iovm_queue_attr){ .depth = 1u << 20 }, &x); }
B(queue_bad_flags) { struct iovm_queue *x;
	return iovm_queue_create(dev, &(struct iovm_queue_attr){ .flags = 1u << 3 }, &x); }
B(queue_rings_unaligned) { struct iovm_queue *x;
	return iovm_queue_create(dev, &(struct iovm_queue_attr){ .flags = IOVM_QUEUE_RINGS_AT | IOVM_QUEUE_POLLED,
								.sq_addr = 0x10040, .cq_addr = 0x20000 }, &x); }
B(queue_rings_overlap) { struct iovm_queue *x;
	return iovm_queue_create(dev, &(struct iovm_queue_attr){ .flags = IOVM_QUEUE_RINGS_AT | IOVM_QUEUE_POLLED,
								.depth = 256, .sq_addr = 0x10000, .cq_addr = 0x13000 }, &x); }
B(queue_rings_unmapped) { struct iovm_queue *x;
	return iovm_queue_create(dev, &(struct iovm_queue_attr){ .flags = IOVM_QUEUE_RINGS_AT | IOVM_QUEUE_POLLED,
								.sq_addr = 1ull << 46, .cq_addr = (1ull << 46) + 0x10000 }, &x); }
/* The application's own memory (a registration's): it may go under the engine, so it is no ring. */
B(queue_rings_app_memory) { struct iovm_queue *x; iovm_iova_t at;
	if (iovm_mr_iova(mr, app, 4096, &at))
		return 0;
	return iovm_queue_create(dev, &(struct iovm_queue_attr){ .flags = IOVM_QUEUE_RINGS_AT | IOVM_QUEUE_POLLED,
								.depth = 2, .sq_addr = at.addr, .cq_addr = 1ull << 46 }, &x); }
B(queue_cpu_polled) { struct iovm_queue *x;
	return iovm_queue_create(dev, &(struct iovm_queue_attr){ .flags = IOVM_QUEUE_CPU | IOVM_QUEUE_POLLED }, &x); }
B(queue_cpu_beyond) { struct iovm_queue *x;
	return iovm_queue_create(dev, &(struct iovm_queue_attr){ .flags = IOVM_QUEUE_CPU, .cpu = 1u << 20 }, &x); }
B(queue_no_domain) { struct iovm_queue *x; return iovm_queue_create(dev2, NULL, &x); }
B(queue_null_out) { return iovm_queue_create(dev, NULL, NULL); }
B(queue_destroy_null) { return iovm_queue_destroy(NULL); }
B(submit_null) { return iovm_queue_submit(NULL, &(struct iovm_desc){ 0 }); }
B(submit_null_desc) { return iovm_queue_submit(q, NULL); }
B(submit_full) { struct iovm_desc d = { 0 }; int ret = 0;
	for (int i = 0; i < 3 && !ret; i++) ret = iovm_queue_submit(qfull, &d);
	return ret; }
B(process_null) { return iovm_queue_process(NULL, 1); }
B(process_worker) { return iovm_queue_process(qworker, 1); }
B(reap_null) { struct iovm_cqe c; return iovm_queue_reap(NULL, &c, 1); }
B(reap_null_out) { return iovm_queue_reap(q, NULL, 1); }
B(queue_stats_null) { struct iovm_queue_stats st; return iovm_queue_stats(NULL, &st); }
B(queue_stats_null_out) { return iovm_queue_stats(q, NULL); }

struct bad_case {
	const char *id;
	const char *api; /* the public function the row exercises */
	long expect;     /* a negative errno */
	long (*fn)(void);
};

#define ROW(id, api, err) { #id, #api, -(err), bad_##id }

B(mr_reg_null_dom) { struct iovm_mr *m; return iovm_mr_reg(NULL, app, 4096, 0, &m); }
B(mr_reg_null_addr) { struct iovm_mr *m; return iovm_mr_reg(dom, NULL, 4096, 0, &m); }
B(mr_reg_zero_len) { struct iovm_mr *m; return iovm_mr_reg(dom, app, 0, 0, &m); }
B(mr_reg_null_out) { return iovm_mr_reg(dom, app, 4096, 0, NULL); }
B(mr_reg_bad_access) { struct iovm_mr *m; return iovm_mr_reg(dom, app, 4096, 1u << 10, &m); }
B(mr_reg_wraps) { struct iovm_mr *m; return iovm_mr_reg(dom, (void *)(UINTPTR_MAX - 100), 4096, 0, &m); }
B(mr_reg_unmapped) { struct iovm_mr *m; return iovm_mr_reg(dom, app_gone, 4096, 0, &m); }
B(mr_reg_write_readonly) { struct iovm_mr *m; return iovm_mr_reg(dom, app_ro, 4096, IOVM_ACCESS_LOCAL_WRITE, &m); }
B(mr_reg_identity) { struct iovm_mr *m; return iovm_mr_reg(idom, app, 4096, 0, &m); }
B(mr_dereg_null) { return iovm_mr_dereg(NULL); }
B(mr_query_null) { struct iovm_mr_info i; return iovm_mr_query(NULL, &i); }
B(mr_query_null_out) { return iovm_mr_query(mr, NULL); }
B(mr_iova_null) { iovm_iova_t i; return iovm_mr_iova(NULL, app, 1, &i); }
B(mr_iova_null_out) { return iovm_mr_iova(mr, app, 1, NULL); }
B(mr_iova_outside) { iovm_iova_t i; return iovm_mr_iova(mr, app + 4096, 1, &i); }
B(mr_iova_wraps) { iovm_iova_t i; return iovm_mr_iova(mr, app, SIZE_MAX, &i); }
B(mr_keys_null) { struct iovm_mr_keys k; return iovm_mr_keys(NULL, app, 1, &k); }
B(mr_keys_null_out) { return iovm_mr_keys(mr, app, 1, NULL); }
B(mr_keys_null_addr) { struct iovm_mr_keys k; return iovm_mr_keys(mr, NULL, 1, &k); }
B(mr_keys_zero_len) { struct iovm_mr_keys k; return iovm_mr_keys(mr, app, 0, &k); }
B(mr_keys_outside) { struct iovm_mr_keys k; return iovm_mr_keys(mr, app + 4096, 1, &k); }
B(mr_keys_wraps) { struct iovm_mr_keys k; return iovm_mr_keys(mr, app, SIZE_MAX, &k); }
B(advise_null) { return iovm_mr_advise(NULL, app, 4096, 0); }
B(advise_pinned) { return iovm_mr_advise(mr, app, 4096, 0); }
B(advise_bad_flags) { return iovm_mr_advise(mr, app, 4096, 1u << 7); }
B(advise_zero_len) { return iovm_mr_advise(mr, app, 0, 0); }
B(advise_wraps) { struct iovm_mr *m; long r;
	if (iovm_mr_reg(dom, app, 4096, IOVM_ACCESS_ON_DEMAND, &m)) return -1;
	r = iovm_mr_advise(m, app, SIZE_MAX, 0); keep_detail(); iovm_mr_dereg(m); return r; }
B(advise_outside) { struct iovm_mr *m; long r;
	if (iovm_mr_reg(dom, app, 4096, IOVM_ACCESS_ON_DEMAND, &m)) return -1;
	r = iovm_mr_advise(m, app + 4096, 4096, 0); keep_detail(); iovm_mr_dereg(m); return r; }
B(advise_write_readonly) { struct iovm_mr *m; long r;
	if (iovm_mr_reg(dom, app, 4096, IOVM_ACCESS_ON_DEMAND, &m)) return -1;
	r = iovm_mr_advise(m, app, 4096, IOVM_ADVISE_WRITE); keep_detail(); iovm_mr_dereg(m); return r; }
B(advise_unmapped) { struct iovm_mr *m; long r;
	if (iovm_mr_reg(dom, app_gone, 4096, IOVM_ACCESS_ON_DEMAND, &m)) return -1;
	r = iovm_mr_advise(m, app_gone, 4096, 0); keep_detail(); iovm_mr_dereg(m); return r; }
/* A cache's MR: held while the cache lives; put once per get; the cache's only. */
B(mr_dereg_cached) { struct iovm_rcache *c; struct iovm_mr *m; long r;
	if (iovm_rcache_create(dom, NULL, &c) || iovm_rcache_get(c, app, 4096, 0, &m)) return -1;
	r = iovm_mr_dereg(m); keep_detail(); iovm_rcache_put(c, m); iovm_rcache_destroy(c); return r; }
B(rcache_destroy_held) { struct iovm_rcache *c; struct iovm_mr *m; long r;
	if (iovm_rcache_create(dom, NULL, &c) || iovm_rcache_get(c, app, 4096, 0, &m)) return -1;
	r = iovm_rcache_destroy(c); keep_detail(); iovm_rcache_put(c, m); iovm_rcache_destroy(c); return r; }
B(rcache_get_wraps) { struct iovm_mr *m; return iovm_rcache_get(rc, app, SIZE_MAX, 0, &m); }
B(rcache_put_own_mr) { return iovm_rcache_put(rc, mr); }
B(rcache_put_twice) { struct iovm_rcache *c; struct iovm_mr *m; long r;
	if (iovm_rcache_create(dom, NULL, &c) || iovm_rcache_get(c, app, 4096, 0, &m) || iovm_rcache_put(c, m))
		return -1;
	r = iovm_rcache_put(c, m); keep_detail(); iovm_rcache_destroy(c); return r; }
B(rcache_put_other_cache) { struct iovm_rcache *c; struct iovm_mr *m; long r;
	if (iovm_rcache_create(dom, NULL, &c) || iovm_rcache_get(c, app, 4096, 0, &m)) return -1;
	r = iovm_rcache_put(rc, m); keep_detail(); iovm_rcache_put(c, m); iovm_rcache_destroy(c); return r; }
B(domain_destroy_registered) { struct iovm_domain *d; struct iovm_mr *m; long r;
	if (iovm_domain_create(ctx, NULL, &d)) return -1;
	if (iovm_mr_reg(d, app, 4096, 0, &m)) { iovm_domain_destroy(d); return -1; }
	r = iovm_domain_destroy(d); keep_detail(); iovm_mr_dereg(m); iovm_domain_destroy(d); return r; }
B(mr_reg_implicit_pinned) { struct iovm_mr *m; return iovm_mr_reg(dom, NULL, SIZE_MAX, IOVM_ACCESS_LOCAL_WRITE, &m); }
B(mr_reg_implicit_identity)
{
	struct iovm_mr *m;
	return iovm_mr_reg(idom, NULL, SIZE_MAX, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND, &m);
}
B(mr_reg_implicit_null_out) { return iovm_mr_reg(dom, NULL, SIZE_MAX, IOVM_ACCESS_ON_DEMAND, NULL); }
B(mr_reg_async_null_dom) { struct iovm_mr *m; return iovm_mr_reg_async(NULL, app, 4096, 0, 0, &m); }
B(mr_reg_async_null_addr) { struct iovm_mr *m; return iovm_mr_reg_async(dom, NULL, 4096, 0, 0, &m); }
B(mr_reg_async_zero_len) { struct iovm_mr *m; return iovm_mr_reg_async(dom, app, 0, 0, 0, &m); }
B(mr_reg_async_null_out) { return iovm_mr_reg_async(dom, app, 4096, 0, 0, NULL); }
B(mr_reg_async_on_demand) { struct iovm_mr *m; return iovm_mr_reg_async(dom, app, 4096, IOVM_ACCESS_ON_DEMAND, 0, &m); }
B(mr_reg_async_implicit) { struct iovm_mr *m;
	return iovm_mr_reg_async(dom, NULL, SIZE_MAX, IOVM_ACCESS_ON_DEMAND, 0, &m); }
B(mr_reg_async_bad_flags) { struct iovm_mr *m; return iovm_mr_reg_async(dom, app, 4096, 0, 1u << 20, &m); }
B(mr_reg_async_small_chunk) { struct iovm_mr *m;
	return iovm_mr_reg_async(dom, app, 4096, 0, IOVM_REG_CHUNK_SHIFT(12), &m); }
B(mr_reg_async_big_chunk) { struct iovm_mr *m;
	return iovm_mr_reg_async(dom, app, 4096, 0, IOVM_REG_CHUNK_SHIFT(31), &m); }
B(mr_reg_async_wraps) { struct iovm_mr *m; return iovm_mr_reg_async(dom, (void *)(UINTPTR_MAX - 100), 4096, 0, 0, &m); }
B(mr_reg_async_unmapped) { struct iovm_mr *m; return iovm_mr_reg_async(dom, app_gone, 4096, 0, 0, &m); }
B(mr_reg_async_write_readonly) { struct iovm_mr *m;
	return iovm_mr_reg_async(dom, app_ro, 4096, IOVM_ACCESS_LOCAL_WRITE, 0, &m); }
B(mr_reg_async_identity) { struct iovm_mr *m; return iovm_mr_reg_async(idom, app, 4096, 0, 0, &m); }
B(mr_wait_null) { return iovm_mr_wait(NULL, app, 4096, 0); }
B(mr_wait_zero_len) { return iovm_mr_wait(mr, app, 0, 0); }
B(mr_wait_outside) { return iovm_mr_wait(mr, app + 4096, 1, 0); }
B(mr_wait_wraps) { return iovm_mr_wait(mr, app, SIZE_MAX, -1); }
B(mr_wait_implicit) { struct iovm_mr *m; long r;
	if (iovm_mr_reg(dom, NULL, SIZE_MAX, IOVM_ACCESS_ON_DEMAND, &m)) return -EINVAL; /* no monitor: nothing to try */
	r = iovm_mr_wait(m, app, 4096, 0); keep_detail(); iovm_mr_dereg(m); return r; }
B(mr_ready_null) { return iovm_mr_ready(NULL, NULL); }
B(mr_ready_implicit) { struct iovm_mr *m; long r;
	if (iovm_mr_reg(dom, NULL, SIZE_MAX, IOVM_ACCESS_ON_DEMAND, &m)) return -EINVAL;
	r = iovm_mr_ready(m, NULL); keep_detail(); iovm_mr_dereg(m); return r; }
B(rcache_create_null_dom) { struct iovm_rcache *x; return iovm_rcache_create(NULL, NULL, &x); }
B(rcache_create_null_out) { return iovm_rcache_create(dom, NULL, NULL); }
B(rcache_destroy_null) { return iovm_rcache_destroy(NULL); }
B(rcache_get_null) { struct iovm_mr *m; return iovm_rcache_get(NULL, app, 4096, 0, &m); }
B(rcache_get_null_addr) { struct iovm_mr *m; return iovm_rcache_get(rc, NULL, 4096, 0, &m); }
B(rcache_get_zero_len) { struct iovm_mr *m; return iovm_rcache_get(rc, app, 0, 0, &m); }
B(rcache_get_null_out) { return iovm_rcache_get(rc, app, 4096, 0, NULL); }
B(rcache_get_on_demand) { struct iovm_mr *m; return iovm_rcache_get(rc, app, 4096, IOVM_ACCESS_ON_DEMAND, &m); }
B(rcache_get_kernel_va) { struct iovm_mr *m; return iovm_rcache_get(rc, (void *)(UINTPTR_MAX - 8192), 4096, 0, &m); }
B(rcache_get_unmapped) { struct iovm_mr *m; return iovm_rcache_get(rc, app_gone, 4096, 0, &m); }
B(rcache_put_null) { return iovm_rcache_put(NULL, mr); }
B(rcache_put_null_mr) { return iovm_rcache_put(rc, NULL); }
B(rcache_stats_null) { struct iovm_rcache_stats st; return iovm_rcache_stats(NULL, &st); }
B(rcache_stats_null_out) { return iovm_rcache_stats(rc, NULL); }
B(reg_stats_null) { struct iovm_reg_stats st; return iovm_reg_stats(NULL, &st); }
B(reg_stats_null_out) { return iovm_reg_stats(ctx, NULL); }

static struct iovm_guest_attr gattr(uint64_t size)
{
	return (struct iovm_guest_attr){ .size = size, .page_size = 4096, .flags = IOVM_GUEST_DIRECT_MAP };
}

B(open_pool_no_size) { struct iovm_ctx *c; return iovm_open("pool=x", &c); }
B(open_pool_twice) { struct iovm_ctx *c; return iovm_open("pool=x:4M,pool=x:4M", &c); }
B(open_pool_bad_page) { struct iovm_ctx *c; return iovm_open("pool=x:4M:3K", &c); }
B(open_pool_too_big) { struct iovm_ctx *c; return iovm_open("page_size=4K,mem_limit=64M,pool=x:1G", &c); }
B(pool_create_null_ctx) { struct iovm_pool *p; return iovm_pool_create(NULL, "p", 1 << 20, 0, 1, &p); }
B(pool_create_null_name) { struct iovm_pool *p; return iovm_pool_create(ctx, NULL, 1 << 20, 0, 1, &p); }
B(pool_create_long_name) { struct iovm_pool *p;
	return iovm_pool_create(ctx, "a-name-of-more-than-thirty-one-characters", 1 << 20, 0, 1, &p); }
B(pool_create_zero) { struct iovm_pool *p; return iovm_pool_create(ctx, "p", 0, 4096, 1, &p); }
B(pool_create_bad_page) { struct iovm_pool *p; return iovm_pool_create(ctx, "p", 1 << 20, 8192, 1, &p); }
B(pool_create_unaligned) { struct iovm_pool *p; return iovm_pool_create(ctx, "p", 4097, 4096, 1, &p); }
B(pool_create_no_ranges) { struct iovm_pool *p; return iovm_pool_create(ctx, "p", 1 << 20, 4096, 0, &p); }
B(pool_create_many_ranges) { struct iovm_pool *p;
	return iovm_pool_create(ctx, "p", 1 << 20, 4096, IOVM_POOL_MAX_RANGES + 1, &p); }
B(pool_create_null_out) { return iovm_pool_create(ctx, "p", 1 << 20, 4096, 1, NULL); }
B(pool_create_exists) { struct iovm_pool *p; return iovm_pool_create(ctx, "bad-pool", 1 << 20, 4096, 1, &p); }
B(pool_create_too_big) { struct iovm_pool *p; return iovm_pool_create(ctx, "p", UINT64_C(1) << 40, 4096, 1, &p); }
B(pool_lookup_null) { struct iovm_pool *p; return iovm_pool_lookup(NULL, "bad-pool", &p); }
B(pool_lookup_null_out) { return iovm_pool_lookup(ctx, "bad-pool", NULL); }
B(pool_lookup_missing) { struct iovm_pool *p; return iovm_pool_lookup(ctx, "no-such-pool", &p); }
B(pool_destroy_null) { return iovm_pool_destroy(NULL); }
B(pool_destroy_used) { return iovm_pool_destroy(pool); }
B(guest_create_null_ctx) { struct iovm_guest_attr a = gattr(1 << 20); struct iovm_guest *g;
	return iovm_guest_create(NULL, &a, &g); }
B(guest_create_null_attr) { struct iovm_guest *g; return iovm_guest_create(ctx, NULL, &g); }
B(guest_create_null_out) { struct iovm_guest_attr a = gattr(1 << 20); return iovm_guest_create(ctx, &a, NULL); }
B(guest_create_zero) { struct iovm_guest_attr a = gattr(0); struct iovm_guest *g;
	return iovm_guest_create(ctx, &a, &g); }
B(guest_create_unaligned) { struct iovm_guest_attr a = gattr(4097); struct iovm_guest *g;
	return iovm_guest_create(ctx, &a, &g); }
B(guest_create_bad_flags) { struct iovm_guest_attr a = gattr(1 << 20); struct iovm_guest *g;
	a.flags = 1u << 5; return iovm_guest_create(ctx, &a, &g); }
B(guest_create_bad_page) { struct iovm_guest_attr a = gattr(1 << 20); struct iovm_guest *g;
	a.page_size = 65536; return iovm_guest_create(ctx, &a, &g); }
B(guest_create_bad_chunk) { struct iovm_guest_attr a = gattr(1 << 20); struct iovm_guest *g;
	a.min_chunk = 3 << 20; return iovm_guest_create(ctx, &a, &g); }
B(guest_create_many_banks) { struct iovm_guest_attr a = gattr(1 << 20); struct iovm_guest *g;
	a.max_banks = IOVM_GUEST_MAX_BANKS + 1; return iovm_guest_create(ctx, &a, &g); }
B(guest_create_bad_placement) { struct iovm_guest_attr a = gattr(1 << 20); struct iovm_guest *g;
	a.placement = (enum iovm_guest_placement)7; return iovm_guest_create(ctx, &a, &g); }
B(guest_create_pool_missing) { struct iovm_guest_attr a = gattr(1 << 20); struct iovm_guest *g;
	a.placement = IOVM_PLACE_POOL; return iovm_guest_create(ctx, &a, &g); }
B(guest_create_auto_with_pool) { struct iovm_guest_attr a = gattr(1 << 20); struct iovm_guest *g;
	a.pool = pool; return iovm_guest_create(ctx, &a, &g); }
B(guest_create_banks_missing) { struct iovm_guest_attr a = gattr(1 << 20); struct iovm_guest *g;
	a.placement = IOVM_PLACE_BANKS; return iovm_guest_create(ctx, &a, &g); }
B(guest_create_banks_unaligned) { struct iovm_guest_attr a = gattr(0); struct iovm_guest *g;
	struct iovm_guest_bank b = { .pa = IOVM_PA(page_pa.addr + 1), .len = 4096 };
	a.placement = IOVM_PLACE_BANKS; a.banks = &b; a.nr_banks = 1; return iovm_guest_create(ctx, &a, &g); }
B(guest_create_banks_taken) { struct iovm_guest_attr a = gattr(0); struct iovm_guest *g;
	struct iovm_guest_bank b = { .pa = page_pa, .len = 4096 };
	a.placement = IOVM_PLACE_BANKS; a.banks = &b; a.nr_banks = 1; return iovm_guest_create(ctx, &a, &g); }
B(guest_create_pool_exhausted) { struct iovm_guest_attr a = gattr(16 << 20); struct iovm_guest *g;
	a.placement = IOVM_PLACE_POOL; a.pool = pool; return iovm_guest_create(ctx, &a, &g); }
B(guest_create_over_limit) { struct iovm_guest_attr a = gattr(UINT64_C(1) << 40); struct iovm_guest *g;
	return iovm_guest_create(ctx, &a, &g); }
B(guest_destroy_null) { return iovm_guest_destroy(NULL); }
B(guest_destroy_nested) { return iovm_guest_destroy(guest); }
B(guest_shutdown_null) { return iovm_guest_shutdown(NULL); }
B(guest_shutdown_down) { return iovm_guest_shutdown(guest_down); }
B(guest_start_null) { return iovm_guest_start(NULL); }
B(guest_start_running) { return iovm_guest_start(guest); }
B(guest_reboot_null) { return iovm_guest_reboot(NULL); }
B(guest_reboot_down) { return iovm_guest_reboot(guest_down); }
B(guest_info_null) { struct iovm_guest_info i; return iovm_guest_info(NULL, &i); }
B(guest_info_null_out) { return iovm_guest_info(guest, NULL); }
B(guest_banks_null) { struct iovm_guest_bank b; unsigned n; return iovm_guest_banks(NULL, &b, 1, &n); }
B(guest_banks_null_n) { struct iovm_guest_bank b; return iovm_guest_banks(guest, &b, 1, NULL); }
B(guest_banks_null_out) { unsigned n; return iovm_guest_banks(guest, NULL, 1, &n); }
B(guest_ptr_null) { return ptr_ret(iovm_guest_ptr(NULL, IOVM_GPA(0), NULL)); }
B(guest_ptr_outside) { return ptr_ret(iovm_guest_ptr(guest, IOVM_GPA(UINT64_MAX - 4095), NULL)); }
B(guest_ptr_down) { struct iovm_guest_bank b; unsigned n; iovm_guest_banks(guest_down, &b, 1, &n);
	return ptr_ret(iovm_guest_ptr(guest_down, b.gpa, NULL)); }
B(guest_stage2_null) { struct iovm_domain *d; return iovm_guest_stage2(NULL, &d); }
B(guest_stage2_null_out) { return iovm_guest_stage2(guest, NULL); }
B(assign_null) { return iovm_guest_assign(NULL, dev2, 1, 0); }
B(assign_null_dev) { return iovm_guest_assign(guest, NULL, 1, 0); }
B(assign_big_pasid) { return iovm_guest_assign(guest, dev2, IOVM_PASID_MAX + 1, 0); }
B(assign_bad_flags) { return iovm_guest_assign(guest, dev2, 1, 1u << 4); }
B(assign_identity_untrusted) { return iovm_guest_assign(guest, dev2, 1, IOVM_ASSIGN_IDENTITY); }
B(assign_taken_pasid) { return iovm_guest_assign(guest, dev, IOVM_PASID_NONE, 0); }
B(unassign_null) { return iovm_guest_unassign(NULL, dev2, 1); }
B(unassign_null_dev) { return iovm_guest_unassign(guest, NULL, 1); }
B(unassign_big_pasid) { return iovm_guest_unassign(guest, dev2, IOVM_PASID_MAX + 1); }
B(unassign_unassigned) { return iovm_guest_unassign(guest, dev2, 3); }
B(guest_dom_null) { struct iovm_domain *d; return iovm_guest_domain_create(NULL, NULL, &d); }
B(guest_dom_null_out) { return iovm_guest_domain_create(guest, NULL, NULL); }
B(guest_dom_flags) { struct iovm_domain *d;
	return iovm_guest_domain_create(guest, &(struct iovm_domain_attr){ .flags = IOVM_DOMAIN_DEFERRED }, &d); }
B(guest_dom_identity) { struct iovm_domain *d;
	return iovm_guest_domain_create(guest, &(struct iovm_domain_attr){ .type = IOVM_DOMAIN_IDENTITY }, &d); }
B(dom_create_guest_type) { struct iovm_domain *d;
	return iovm_domain_create(ctx, &(struct iovm_domain_attr){ .type = IOVM_DOMAIN_GUEST }, &d); }
B(dom_create_nested_type) { struct iovm_domain *d;
	return iovm_domain_create(ctx, &(struct iovm_domain_attr){ .type = IOVM_DOMAIN_NESTED }, &d); }
B(dom_destroy_stage2) { return iovm_domain_destroy(s2); }
B(map_nested_pa) { iovm_iova_t i = IOVM_IOVA_ANY; return iovm_domain_map(ndom, &i, page_pa, 4096, 3); }
B(map_ptr_nested) { iovm_iova_t i; return iovm_domain_map_ptr(ndom, page, 4096, 3, &i); }
B(map_gpa_null) { iovm_iova_t i = IOVM_IOVA_ANY; return iovm_domain_map_gpa(NULL, &i, IOVM_GPA(0), 4096, 3); }
B(map_gpa_null_iova) { return iovm_domain_map_gpa(ndom, NULL, IOVM_GPA(0), 4096, 3); }
B(map_gpa_unaligned) { iovm_iova_t i = IOVM_IOVA_ANY; return iovm_domain_map_gpa(ndom, &i, IOVM_GPA(1), 4096, 3); }
B(map_gpa_zero) { iovm_iova_t i = IOVM_IOVA_ANY; return iovm_domain_map_gpa(ndom, &i, IOVM_GPA(0), 0, 3); }
B(map_gpa_perm) { iovm_iova_t i = IOVM_IOVA_ANY; return iovm_domain_map_gpa(ndom, &i, IOVM_GPA(0), 4096, 4); }
B(map_gpa_beyond) { iovm_iova_t i = IOVM_IOVA_ANY;
	return iovm_domain_map_gpa(ndom, &i, IOVM_GPA(UINT64_C(1) << 48), 4096, 3); }
B(map_gpa_not_nested) { iovm_iova_t i = IOVM_IOVA_ANY; return iovm_domain_map_gpa(dom, &i, IOVM_GPA(0), 4096, 3); }
B(map_gpa_iova_unaligned) { iovm_iova_t i = IOVM_IOVA(0x1001);
	return iovm_domain_map_gpa(ndom, &i, IOVM_GPA(0), 4096, 3); }
B(cbuf_alloc_null_ctx) { struct iovm_cbuf *c; return iovm_cbuf_alloc(NULL, 4096, 0, &c); }
B(cbuf_alloc_zero) { struct iovm_cbuf *c; return iovm_cbuf_alloc(ctx, 0, 0, &c); }
B(cbuf_alloc_huge) { struct iovm_cbuf *c; return iovm_cbuf_alloc(ctx, SIZE_MAX, 0, &c); }
B(cbuf_alloc_bad_flags) { struct iovm_cbuf *c; return iovm_cbuf_alloc(ctx, 4096, 1u << 3, &c); }
B(cbuf_alloc_null_out) { return iovm_cbuf_alloc(ctx, 4096, 0, NULL); }
B(cbuf_free_null) { return iovm_cbuf_free(NULL); }
B(cbuf_ptr_null) { return ptr_ret(iovm_cbuf_ptr(NULL)); }
B(cbuf_pages_null) { iovm_pa_t p; unsigned n; return iovm_cbuf_pages(NULL, &p, 1, &n); }
B(cbuf_pages_null_n) { iovm_pa_t p; return iovm_cbuf_pages(cbuf, &p, 1, NULL); }
B(cbuf_pages_null_out) { unsigned n; return iovm_cbuf_pages(cbuf, NULL, 1, &n); }
B(sync_dev_null_ctx) { return iovm_dma_sync_for_device(NULL, live, 1); }
B(sync_dev_null_ptr) { return iovm_dma_sync_for_device(ctx, NULL, 1); }
B(sync_dev_zero) { return iovm_dma_sync_for_device(ctx, live, 0); }
B(sync_dev_wraps) { return iovm_dma_sync_for_device(ctx, live, SIZE_MAX); }
B(sync_dev_foreign) { return iovm_dma_sync_for_device(ctx, &stack_var, 4); }
B(sync_cpu_null_ctx) { return iovm_dma_sync_for_cpu(NULL, live, 1); }
B(sync_cpu_zero) { return iovm_dma_sync_for_cpu(ctx, live, 0); }
B(sync_cpu_foreign) { return iovm_dma_sync_for_cpu(ctx, &stack_var, 4); }
B(sync_cpu_past_cbuf) { return iovm_dma_sync_for_cpu(ctx, (uint8_t *)iovm_cbuf_ptr(cbuf) + 4000, 4096); }
B(map_stage2_any) { iovm_iova_t i = IOVM_IOVA_ANY; return iovm_domain_map(s2, &i, page_pa, 4096, 3); }
#define G2M IOVM_MEM_MAP_GRANULE
/* Value-returning calls: -errno when they said there was nothing (and why, in errno). */
static long u64_ret(uint64_t v)
{
	return v == IOVM_ADDR_INVALID ? -errno : 0;
}
/* 2 MiB inside the 64 MiB hole app_gone starts: unmapped. */
static void *gone_2m(void) { return (void *)(uintptr_t)align_up((uintptr_t)app_gone, G2M); }
B(mmap_alloc_null_ctx) { struct iovm_mem_map *m; return iovm_mem_map_alloc(NULL, 0, NULL, NULL, &m); }
B(mmap_alloc_null_out) { return iovm_mem_map_alloc(ctx, 0, NULL, NULL, NULL); }
B(mmap_free_null) { return iovm_mem_map_free(NULL); }
B(mmap_set_null) { return iovm_mem_map_set_translation(NULL, 0, G2M, 1); }
B(mmap_set_unaligned) { return iovm_mem_map_set_translation(mmap_keys, 4096, G2M, 1); }
B(mmap_set_odd_size) { return iovm_mem_map_set_translation(mmap_keys, G2M, 1234, 1); }
B(mmap_set_zero) { return iovm_mem_map_set_translation(mmap_keys, G2M, 0, 1); }
B(mmap_set_beyond) { return iovm_mem_map_set_translation(mmap_keys, IOVM_MEM_MAP_VA_LIMIT, G2M, 1); }
B(mmap_set_wraps) { return iovm_mem_map_set_translation(mmap_keys, G2M, UINT64_MAX - G2M + 1, 1); }
B(mmap_clear_null) { return iovm_mem_map_clear_translation(NULL, 0, G2M); }
B(mmap_clear_unaligned) { return iovm_mem_map_clear_translation(mmap_keys, 0, G2M + 1); }
B(mmap_clear_past_top) { return iovm_mem_map_clear_translation(mmap_keys, IOVM_MEM_MAP_VA_LIMIT - G2M, 2 * G2M); }
B(mmap_translate_null) { errno = 0; return u64_ret(iovm_mem_map_translate(NULL, 0, NULL)); }
B(memreg_null_ctx) { return iovm_mem_register(NULL, gone_2m(), G2M); }
B(memreg_null_addr) { return iovm_mem_register(ctx, NULL, G2M); }
B(memreg_zero) { return iovm_mem_register(ctx, gone_2m(), 0); }
B(memreg_unaligned) { return iovm_mem_register(ctx, (uint8_t *)gone_2m() + 4096, G2M); }
B(memreg_odd_len) { return iovm_mem_register(ctx, gone_2m(), G2M + 4096); }
B(memreg_wraps) { return iovm_mem_register(ctx, gone_2m(), SIZE_MAX - G2M + 1); }
B(memreg_beyond) { return iovm_mem_register(ctx, (void *)(uintptr_t)IOVM_MEM_MAP_VA_LIMIT, G2M); }
/* The last granule of user space: above what an mmap without a hint is ever given. */
B(memreg_unmapped) { return iovm_mem_register(ctx, (void *)(uintptr_t)(IOVM_MEM_MAP_VA_LIMIT - G2M), G2M); }
B(memreg_heap) { return iovm_mem_register(ctx, (void *)(uintptr_t)align_down((uintptr_t)live, G2M), G2M); }
B(memunreg_null_ctx) { return iovm_mem_unregister(NULL, gone_2m(), G2M); }
B(memunreg_unaligned) { return iovm_mem_unregister(ctx, (uint8_t *)gone_2m() + 1, G2M); }
B(memunreg_not_registered) { return iovm_mem_unregister(ctx, gone_2m(), G2M); }
B(vtophys_null_ctx) { errno = 0; return u64_ret(iovm_vtophys(NULL, live, NULL)); }
B(vtophys_stack) { errno = 0; return u64_ret(iovm_vtophys(ctx, &stack_var, NULL)); }
B(vtophys_beyond) { errno = 0;
	return u64_ret(iovm_vtophys(ctx, (void *)(uintptr_t)IOVM_MEM_MAP_VA_LIMIT, &(uint64_t){ 4096 })); }

static const struct bad_case cases[] = {
	ROW(strerror_intmin, iovm_strerror, EINVAL),
	ROW(strerror_huge, iovm_strerror, EINVAL),
	ROW(error_detail, iovm_error_detail, EINVAL),
	ROW(log_level_low, iovm_log_set_level, EINVAL),
	ROW(log_level_high, iovm_log_set_level, EINVAL),
	ROW(log_handler_null, iovm_log_set_handler, EINVAL),
	ROW(opts_help, iovm_opts_help, EINVAL),
	ROW(version_null, iovm_version, EINVAL),
	ROW(status_name_bad, iovm_status_name, EINVAL),
	ROW(fault_reason_name_bad, iovm_fault_reason_name, EINVAL),
	ROW(size_parse_suffix, iovm_size_parse, EINVAL),
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
	ROW(open_share_and_attach, iovm_open, EINVAL),
	ROW(open_bad_share_name, iovm_open, EINVAL),
	ROW(open_share_group, iovm_open, EINVAL),
	ROW(attach_opts_share, iovm_attach, EINVAL),
	ROW(share_null_ctx, iovm_share, EINVAL),
	ROW(share_null_name, iovm_share, EINVAL),
	ROW(share_bad_name, iovm_share, EINVAL),
	ROW(share_tiny_heap, iovm_share, EINVAL),
	ROW(share_bad_page, iovm_share, EINVAL),
	ROW(share_bad_group, iovm_share, EINVAL),
	ROW(attach_null_name, iovm_attach, EINVAL),
	ROW(attach_null_out, iovm_attach, EINVAL),
	ROW(attach_bad_name, iovm_attach, EINVAL),
	ROW(attach_nobody, iovm_attach, ENOENT),
	ROW(share_info_null_ctx, iovm_share_info, EINVAL),
	ROW(share_info_null_out, iovm_share_info, EINVAL),
	ROW(share_info_not_shared, iovm_share_info, ENOENT),
	ROW(share_reap_null, iovm_share_reap, EINVAL),
	ROW(share_reap_not_shared, iovm_share_reap, ENOENT),
	ROW(share_check_null, iovm_share_check, EINVAL),
	ROW(share_check_not_shared, iovm_share_check, ENOENT),
	ROW(device_serve_null_ctx, iovm_device_serve, EINVAL),
	ROW(device_serve_null_out, iovm_device_serve, EINVAL),
	ROW(device_serve_workers, iovm_device_serve, EINVAL),
	ROW(device_serve_bad_name, iovm_device_serve, EINVAL),
	ROW(device_serve_not_shared, iovm_device_serve, ENOENT),
	ROW(device_server_info_null, iovm_device_server_info, EINVAL),
	ROW(device_server_stop_null, iovm_device_server_stop, EINVAL),
	ROW(rqueue_open_null_ctx, iovm_rqueue_open, EINVAL),
	ROW(rqueue_open_null_out, iovm_rqueue_open, EINVAL),
	ROW(rqueue_open_depth, iovm_rqueue_open, EINVAL),
	ROW(rqueue_open_deep, iovm_rqueue_open, EINVAL),
	ROW(rqueue_open_bad_name, iovm_rqueue_open, EINVAL),
	ROW(rqueue_open_not_shared, iovm_rqueue_open, ENOENT),
	ROW(sdom_create_null_ctx, iovm_share_domain_create, EINVAL),
	ROW(sdom_create_null_name, iovm_share_domain_create, EINVAL),
	ROW(sdom_create_null_out, iovm_share_domain_create, EINVAL),
	ROW(sdom_create_long_name, iovm_share_domain_create, EINVAL),
	ROW(sdom_create_not_shared, iovm_share_domain_create, ENOENT),
	ROW(sdom_open_null_ctx, iovm_share_domain_open, EINVAL),
	ROW(sdom_open_empty_name, iovm_share_domain_open, EINVAL),
	ROW(sdom_open_null_out, iovm_share_domain_open, EINVAL),
	ROW(sdom_open_not_shared, iovm_share_domain_open, ENOENT),
	ROW(rqueue_map_mr_null, iovm_rqueue_map_mr, EINVAL),
	ROW(rqueue_unmap_mr_null, iovm_rqueue_unmap_mr, EINVAL),
	ROW(rqueue_pasid_null, iovm_rqueue_pasid, EINVAL),
	ROW(rqueue_map_null, iovm_rqueue_map, EINVAL),
	ROW(rqueue_unmap_null, iovm_rqueue_unmap, EINVAL),
	ROW(rqueue_submit_null, iovm_rqueue_submit, EINVAL),
	ROW(rqueue_reap_null, iovm_rqueue_reap, EINVAL),
	ROW(rqueue_fault_handler_null, iovm_rqueue_set_fault_handler, EINVAL),
	ROW(rqueue_close_null, iovm_rqueue_close, EINVAL),
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
	ROW(pa_is_host_null_ctx, iovm_pa_is_host, EINVAL),
	ROW(pa_is_host_unknown, iovm_pa_is_host, ENOENT),
	ROW(pa_is_host_zero, iovm_pa_is_host, ENOENT),
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
	ROW(dom_create_null_ctx, iovm_domain_create, EINVAL),
	ROW(dom_create_null_out, iovm_domain_create, EINVAL),
	ROW(dom_create_bad_type, iovm_domain_create, EINVAL),
	ROW(dom_create_bad_flags, iovm_domain_create, EINVAL),
	ROW(dom_create_bad_bits, iovm_domain_create, EINVAL),
	ROW(dom_create_holes_no_count, iovm_domain_create, EINVAL),
	ROW(dom_destroy_null, iovm_domain_destroy, EINVAL),
	ROW(dom_destroy_attached, iovm_domain_destroy, EBUSY),
	ROW(map_null_dom, iovm_domain_map, EINVAL),
	ROW(map_null_iova, iovm_domain_map, EINVAL),
	ROW(map_zero_len, iovm_domain_map, EINVAL),
	ROW(map_unaligned_len, iovm_domain_map, EINVAL),
	ROW(map_unaligned_pa, iovm_domain_map, EINVAL),
	ROW(map_unaligned_iova, iovm_domain_map, EINVAL),
	ROW(map_bad_perm, iovm_domain_map, EINVAL),
	ROW(map_no_perm, iovm_domain_map, EINVAL),
	ROW(map_foreign_pa, iovm_domain_map, EINVAL),
	ROW(map_pa_overflow, iovm_domain_map, EINVAL),
	ROW(map_identity, iovm_domain_map, EOPNOTSUPP),
	ROW(map_overlap, iovm_domain_map, EEXIST),
	ROW(map_beyond_mask, iovm_domain_map, EINVAL),
	ROW(map_pages_null, iovm_domain_map_pages, EINVAL),
	ROW(map_pages_zero, iovm_domain_map_pages, EINVAL),
	ROW(map_pages_unaligned, iovm_domain_map_pages, EINVAL),
	ROW(map_pages_foreign, iovm_domain_map_pages, EINVAL),
	ROW(map_ptr_null, iovm_domain_map_ptr, EINVAL),
	ROW(map_ptr_unaligned, iovm_domain_map_ptr, EINVAL),
	ROW(map_ptr_foreign, iovm_domain_map_ptr, ENOENT),
	ROW(map_ptr_null_out, iovm_domain_map_ptr, EINVAL),
	ROW(unmap_null, iovm_domain_unmap, EINVAL),
	ROW(unmap_unaligned, iovm_domain_unmap, EINVAL),
	ROW(unmap_zero, iovm_domain_unmap, EINVAL),
	ROW(unmap_overflow, iovm_domain_unmap, EINVAL),
	ROW(unmap_nothing, iovm_domain_unmap, ENOENT),
	ROW(unmap_identity, iovm_domain_unmap, EOPNOTSUPP),
	ROW(flush_null, iovm_domain_flush, EINVAL),
	ROW(dma_iova_null_dom, iovm_dma_iova, EINVAL),
	ROW(dma_iova_null_out, iovm_dma_iova, EINVAL),
	ROW(dma_iova_foreign, iovm_dma_iova, ENOENT),
	ROW(translate_null, iovm_domain_translate, EINVAL),
	ROW(translate_null_out, iovm_domain_translate, EINVAL),
	ROW(translate_unmapped, iovm_domain_translate, ENOENT),
	ROW(dirty_null, iovm_domain_read_dirty, EINVAL),
	ROW(dirty_null_out, iovm_domain_read_dirty, EINVAL),
	ROW(dirty_zero, iovm_domain_read_dirty, EINVAL),
	ROW(handler_null, iovm_domain_set_fault_handler, EINVAL),
	ROW(fault_pop_null, iovm_domain_fault_pop, EINVAL),
	ROW(fault_pop_empty, iovm_domain_fault_pop, EAGAIN),
	ROW(dom_stats_null, iovm_domain_stats, EINVAL),
	ROW(dom_stats_null_out, iovm_domain_stats, EINVAL),
	ROW(dev_open_null_ctx, iovm_device_open, EINVAL),
	ROW(dev_open_null_spec, iovm_device_open, EINVAL),
	ROW(dev_open_unknown, iovm_device_open, ENODEV),
	ROW(dev_open_null_out, iovm_device_open, EINVAL),
	ROW(dev_open_vfio_absent, iovm_device_open, ENOENT),
	ROW(dev_open_vfio_long, iovm_device_open, EINVAL),
	ROW(dev_open_group_absent, iovm_device_open, ENOENT),
	ROW(dev_open_iommufd_absent, iovm_device_open, ENOENT),
	ROW(dev_open_vfio_prefix, iovm_device_open, ENODEV),
	ROW(dev_open_verbs_empty, iovm_device_open, EINVAL),
	ROW(dev_open_verbs_long, iovm_device_open, EINVAL),
	ROW(dev_verbs_null, iovm_device_verbs, EINVAL),
	ROW(dev_verbs_null_out, iovm_device_verbs, EINVAL),
	ROW(dev_verbs_not_verbs, iovm_device_verbs, EOPNOTSUPP),
	ROW(dev_query_null, iovm_device_query, EINVAL),
	ROW(dev_query_null_out, iovm_device_query, EINVAL),
	ROW(dev_fault_pop_null, iovm_device_fault_pop, EINVAL),
	ROW(dev_fault_pop_null_out, iovm_device_fault_pop, EINVAL),
	ROW(dev_bar_null, iovm_device_bar, EINVAL),
	ROW(dev_bar_bad_index, iovm_device_bar, EINVAL),
	ROW(dev_bar_null_out, iovm_device_bar, EINVAL),
	ROW(dev_bar_sw, iovm_device_bar, EOPNOTSUPP),
	ROW(dev_cfg_read_null, iovm_device_config_read, EINVAL),
	ROW(dev_cfg_read_len, iovm_device_config_read, EINVAL),
	ROW(dev_cfg_read_unaligned, iovm_device_config_read, EINVAL),
	ROW(dev_cfg_read_beyond, iovm_device_config_read, EINVAL),
	ROW(dev_cfg_read_null_buf, iovm_device_config_read, EINVAL),
	ROW(dev_cfg_read_sw, iovm_device_config_read, EOPNOTSUPP),
	ROW(dev_cfg_write_null, iovm_device_config_write, EINVAL),
	ROW(dev_cfg_write_len, iovm_device_config_write, EINVAL),
	ROW(dev_cfg_write_null_buf, iovm_device_config_write, EINVAL),
	ROW(dev_cfg_write_sw, iovm_device_config_write, EOPNOTSUPP),
	ROW(dev_msi_null, iovm_device_msi, EINVAL),
	ROW(dev_msi_bad_fd, iovm_device_msi, EINVAL),
	ROW(dev_msi_sw, iovm_device_msi, EOPNOTSUPP),
	ROW(dev_close_null, iovm_device_close, EINVAL),
	ROW(dev_id_null, iovm_device_id, EINVAL),
	ROW(attach_null_dev, iovm_device_attach, EINVAL),
	ROW(attach_null_dom, iovm_device_attach, EINVAL),
	ROW(attach_big_pasid, iovm_device_attach, EINVAL),
	ROW(attach_twice, iovm_device_attach, EBUSY),
	ROW(detach_null, iovm_device_detach, EINVAL),
	ROW(detach_big_pasid, iovm_device_detach, EINVAL),
	ROW(detach_unattached, iovm_device_detach, ENOENT),
	ROW(queue_null_dev, iovm_queue_create, EINVAL),
	ROW(queue_depth_not_pow2, iovm_queue_create, EINVAL),
	ROW(queue_depth_huge, iovm_queue_create, EINVAL),
	ROW(queue_bad_flags, iovm_queue_create, EINVAL),
	ROW(queue_rings_unaligned, iovm_queue_create, EINVAL),
	ROW(queue_rings_overlap, iovm_queue_create, EINVAL),
	ROW(queue_rings_unmapped, iovm_queue_create, EFAULT),
	ROW(queue_rings_app_memory, iovm_queue_create, EFAULT),
	ROW(queue_cpu_polled, iovm_queue_create, EINVAL),
	ROW(queue_cpu_beyond, iovm_queue_create, EINVAL),
	ROW(queue_no_domain, iovm_queue_create, ENODEV),
	ROW(queue_null_out, iovm_queue_create, EINVAL),
	ROW(queue_destroy_null, iovm_queue_destroy, EINVAL),
	ROW(submit_null, iovm_queue_submit, EINVAL),
	ROW(submit_null_desc, iovm_queue_submit, EINVAL),
	ROW(submit_full, iovm_queue_submit, EAGAIN),
	ROW(process_null, iovm_queue_process, EINVAL),
	ROW(process_worker, iovm_queue_process, EINVAL),
	ROW(reap_null, iovm_queue_reap, EINVAL),
	ROW(reap_null_out, iovm_queue_reap, EINVAL),
	ROW(queue_stats_null, iovm_queue_stats, EINVAL),
	ROW(queue_stats_null_out, iovm_queue_stats, EINVAL),
	ROW(mr_reg_null_dom, iovm_mr_reg, EINVAL),
	ROW(mr_reg_null_addr, iovm_mr_reg, EINVAL),
	ROW(mr_reg_zero_len, iovm_mr_reg, EINVAL),
	ROW(mr_reg_null_out, iovm_mr_reg, EINVAL),
	ROW(mr_reg_bad_access, iovm_mr_reg, EINVAL),
	ROW(mr_reg_wraps, iovm_mr_reg, EINVAL),
	ROW(mr_reg_unmapped, iovm_mr_reg, EFAULT),
	ROW(mr_reg_write_readonly, iovm_mr_reg, EFAULT),
	ROW(mr_reg_identity, iovm_mr_reg, EOPNOTSUPP),
	ROW(mr_dereg_null, iovm_mr_dereg, EINVAL),
	ROW(mr_query_null, iovm_mr_query, EINVAL),
	ROW(mr_query_null_out, iovm_mr_query, EINVAL),
	ROW(mr_iova_null, iovm_mr_iova, EINVAL),
	ROW(mr_iova_null_out, iovm_mr_iova, EINVAL),
	ROW(mr_iova_outside, iovm_mr_iova, ERANGE),
	ROW(mr_iova_wraps, iovm_mr_iova, ERANGE),
	ROW(mr_keys_null, iovm_mr_keys, EINVAL),
	ROW(mr_keys_null_out, iovm_mr_keys, EINVAL),
	ROW(mr_keys_null_addr, iovm_mr_keys, EINVAL),
	ROW(mr_keys_zero_len, iovm_mr_keys, EINVAL),
	ROW(mr_keys_outside, iovm_mr_keys, ERANGE),
	ROW(mr_keys_wraps, iovm_mr_keys, ERANGE),
	ROW(advise_null, iovm_mr_advise, EINVAL),
	ROW(advise_pinned, iovm_mr_advise, EINVAL),
	ROW(advise_bad_flags, iovm_mr_advise, EINVAL),
	ROW(advise_zero_len, iovm_mr_advise, EINVAL),
	ROW(advise_wraps, iovm_mr_advise, ERANGE),
	ROW(advise_outside, iovm_mr_advise, ERANGE),
	ROW(advise_write_readonly, iovm_mr_advise, EINVAL),
	ROW(advise_unmapped, iovm_mr_advise, EFAULT),
	ROW(mr_dereg_cached, iovm_mr_dereg, EBUSY),
	ROW(domain_destroy_registered, iovm_domain_destroy, EBUSY),
	ROW(mr_reg_implicit_pinned, iovm_mr_reg, EINVAL),
	ROW(mr_reg_implicit_identity, iovm_mr_reg, EOPNOTSUPP),
	ROW(mr_reg_implicit_null_out, iovm_mr_reg, EINVAL),
	ROW(mr_reg_async_null_dom, iovm_mr_reg_async, EINVAL),
	ROW(mr_reg_async_null_addr, iovm_mr_reg_async, EINVAL),
	ROW(mr_reg_async_zero_len, iovm_mr_reg_async, EINVAL),
	ROW(mr_reg_async_null_out, iovm_mr_reg_async, EINVAL),
	ROW(mr_reg_async_on_demand, iovm_mr_reg_async, EINVAL),
	ROW(mr_reg_async_implicit, iovm_mr_reg_async, EINVAL),
	ROW(mr_reg_async_bad_flags, iovm_mr_reg_async, EINVAL),
	ROW(mr_reg_async_small_chunk, iovm_mr_reg_async, EINVAL),
	ROW(mr_reg_async_big_chunk, iovm_mr_reg_async, EINVAL),
	ROW(mr_reg_async_wraps, iovm_mr_reg_async, EINVAL),
	ROW(mr_reg_async_unmapped, iovm_mr_reg_async, EFAULT),
	ROW(mr_reg_async_write_readonly, iovm_mr_reg_async, EFAULT),
	ROW(mr_reg_async_identity, iovm_mr_reg_async, EOPNOTSUPP),
	ROW(mr_wait_null, iovm_mr_wait, EINVAL),
	ROW(mr_wait_zero_len, iovm_mr_wait, EINVAL),
	ROW(mr_wait_outside, iovm_mr_wait, ERANGE),
	ROW(mr_wait_wraps, iovm_mr_wait, ERANGE),
	ROW(mr_wait_implicit, iovm_mr_wait, EINVAL),
	ROW(mr_ready_null, iovm_mr_ready, EINVAL),
	ROW(mr_ready_implicit, iovm_mr_ready, EINVAL),
	ROW(rcache_create_null_dom, iovm_rcache_create, EINVAL),
	ROW(rcache_create_null_out, iovm_rcache_create, EINVAL),
	ROW(rcache_destroy_null, iovm_rcache_destroy, EINVAL),
	ROW(rcache_get_null, iovm_rcache_get, EINVAL),
	ROW(rcache_get_null_addr, iovm_rcache_get, EINVAL),
	ROW(rcache_get_zero_len, iovm_rcache_get, EINVAL),
	ROW(rcache_get_null_out, iovm_rcache_get, EINVAL),
	ROW(rcache_get_on_demand, iovm_rcache_get, EINVAL),
	ROW(rcache_get_kernel_va, iovm_rcache_get, EINVAL),
	ROW(rcache_get_unmapped, iovm_rcache_get, EFAULT),
	ROW(rcache_put_null, iovm_rcache_put, EINVAL),
	ROW(rcache_put_null_mr, iovm_rcache_put, EINVAL),
	ROW(rcache_put_own_mr, iovm_rcache_put, EINVAL),
	ROW(rcache_put_twice, iovm_rcache_put, EINVAL),
	ROW(rcache_put_other_cache, iovm_rcache_put, EINVAL),
	ROW(rcache_get_wraps, iovm_rcache_get, EINVAL),
	ROW(rcache_destroy_held, iovm_rcache_destroy, EBUSY),
	ROW(rcache_stats_null, iovm_rcache_stats, EINVAL),
	ROW(rcache_stats_null_out, iovm_rcache_stats, EINVAL),
	ROW(reg_stats_null, iovm_reg_stats, EINVAL),
	ROW(reg_stats_null_out, iovm_reg_stats, EINVAL),
	ROW(open_pool_no_size, iovm_open, EINVAL),
	ROW(open_pool_twice, iovm_open, EINVAL),
	ROW(open_pool_bad_page, iovm_open, EINVAL),
	ROW(open_pool_too_big, iovm_open, ENOMEM),
	ROW(pool_create_null_ctx, iovm_pool_create, EINVAL),
	ROW(pool_create_null_name, iovm_pool_create, EINVAL),
	ROW(pool_create_long_name, iovm_pool_create, EINVAL),
	ROW(pool_create_zero, iovm_pool_create, EINVAL),
	ROW(pool_create_bad_page, iovm_pool_create, EINVAL),
	ROW(pool_create_unaligned, iovm_pool_create, EINVAL),
	ROW(pool_create_no_ranges, iovm_pool_create, EINVAL),
	ROW(pool_create_many_ranges, iovm_pool_create, EINVAL),
	ROW(pool_create_null_out, iovm_pool_create, EINVAL),
	ROW(pool_create_exists, iovm_pool_create, EEXIST),
	ROW(pool_create_too_big, iovm_pool_create, ENOMEM),
	ROW(pool_lookup_null, iovm_pool_lookup, EINVAL),
	ROW(pool_lookup_null_out, iovm_pool_lookup, EINVAL),
	ROW(pool_lookup_missing, iovm_pool_lookup, ENOENT),
	ROW(pool_destroy_null, iovm_pool_destroy, EINVAL),
	ROW(pool_destroy_used, iovm_pool_destroy, EBUSY),
	ROW(guest_create_null_ctx, iovm_guest_create, EINVAL),
	ROW(guest_create_null_attr, iovm_guest_create, EINVAL),
	ROW(guest_create_null_out, iovm_guest_create, EINVAL),
	ROW(guest_create_zero, iovm_guest_create, EINVAL),
	ROW(guest_create_unaligned, iovm_guest_create, EINVAL),
	ROW(guest_create_bad_flags, iovm_guest_create, EINVAL),
	ROW(guest_create_bad_page, iovm_guest_create, EINVAL),
	ROW(guest_create_bad_chunk, iovm_guest_create, EINVAL),
	ROW(guest_create_many_banks, iovm_guest_create, EINVAL),
	ROW(guest_create_bad_placement, iovm_guest_create, EINVAL),
	ROW(guest_create_pool_missing, iovm_guest_create, EINVAL),
	ROW(guest_create_auto_with_pool, iovm_guest_create, EINVAL),
	ROW(guest_create_banks_missing, iovm_guest_create, EINVAL),
	ROW(guest_create_banks_unaligned, iovm_guest_create, EINVAL),
	ROW(guest_create_banks_taken, iovm_guest_create, EBUSY),
	ROW(guest_create_pool_exhausted, iovm_guest_create, ENOMEM),
	ROW(guest_create_over_limit, iovm_guest_create, ENOMEM),
	ROW(guest_destroy_null, iovm_guest_destroy, EINVAL),
	ROW(guest_destroy_nested, iovm_guest_destroy, EBUSY),
	ROW(guest_shutdown_null, iovm_guest_shutdown, EINVAL),
	ROW(guest_shutdown_down, iovm_guest_shutdown, EALREADY),
	ROW(guest_start_null, iovm_guest_start, EINVAL),
	ROW(guest_start_running, iovm_guest_start, EALREADY),
	ROW(guest_reboot_null, iovm_guest_reboot, EINVAL),
	ROW(guest_reboot_down, iovm_guest_reboot, EALREADY),
	ROW(guest_info_null, iovm_guest_info, EINVAL),
	ROW(guest_info_null_out, iovm_guest_info, EINVAL),
	ROW(guest_banks_null, iovm_guest_banks, EINVAL),
	ROW(guest_banks_null_n, iovm_guest_banks, EINVAL),
	ROW(guest_banks_null_out, iovm_guest_banks, EINVAL),
	ROW(guest_ptr_null, iovm_guest_ptr, EINVAL),
	ROW(guest_ptr_outside, iovm_guest_ptr, ENOENT),
	ROW(guest_ptr_down, iovm_guest_ptr, EAGAIN),
	ROW(guest_stage2_null, iovm_guest_stage2, EINVAL),
	ROW(guest_stage2_null_out, iovm_guest_stage2, EINVAL),
	ROW(assign_null, iovm_guest_assign, EINVAL),
	ROW(assign_null_dev, iovm_guest_assign, EINVAL),
	ROW(assign_big_pasid, iovm_guest_assign, EINVAL),
	ROW(assign_bad_flags, iovm_guest_assign, EINVAL),
	ROW(assign_identity_untrusted, iovm_guest_assign, EPERM),
	ROW(assign_taken_pasid, iovm_guest_assign, EBUSY),
	ROW(unassign_null, iovm_guest_unassign, EINVAL),
	ROW(unassign_null_dev, iovm_guest_unassign, EINVAL),
	ROW(unassign_big_pasid, iovm_guest_unassign, EINVAL),
	ROW(unassign_unassigned, iovm_guest_unassign, ENOENT),
	ROW(guest_dom_null, iovm_guest_domain_create, EINVAL),
	ROW(guest_dom_null_out, iovm_guest_domain_create, EINVAL),
	ROW(guest_dom_flags, iovm_guest_domain_create, EINVAL),
	ROW(guest_dom_identity, iovm_guest_domain_create, EINVAL),
	ROW(dom_create_guest_type, iovm_domain_create, EINVAL),
	ROW(dom_create_nested_type, iovm_domain_create, EINVAL),
	ROW(dom_destroy_stage2, iovm_domain_destroy, EPERM),
	ROW(map_nested_pa, iovm_domain_map, EOPNOTSUPP),
	ROW(map_ptr_nested, iovm_domain_map_ptr, EOPNOTSUPP),
	ROW(map_gpa_null, iovm_domain_map_gpa, EINVAL),
	ROW(map_gpa_null_iova, iovm_domain_map_gpa, EINVAL),
	ROW(map_gpa_unaligned, iovm_domain_map_gpa, EINVAL),
	ROW(map_gpa_zero, iovm_domain_map_gpa, EINVAL),
	ROW(map_gpa_perm, iovm_domain_map_gpa, EINVAL),
	ROW(map_gpa_beyond, iovm_domain_map_gpa, EINVAL),
	ROW(map_gpa_not_nested, iovm_domain_map_gpa, EOPNOTSUPP),
	ROW(map_gpa_iova_unaligned, iovm_domain_map_gpa, EINVAL),
	ROW(map_stage2_any, iovm_domain_map, EINVAL),
	ROW(cbuf_alloc_null_ctx, iovm_cbuf_alloc, EINVAL),
	ROW(cbuf_alloc_zero, iovm_cbuf_alloc, EINVAL),
	ROW(cbuf_alloc_huge, iovm_cbuf_alloc, EINVAL),
	ROW(cbuf_alloc_bad_flags, iovm_cbuf_alloc, EINVAL),
	ROW(cbuf_alloc_null_out, iovm_cbuf_alloc, EINVAL),
	ROW(cbuf_free_null, iovm_cbuf_free, EINVAL),
	ROW(cbuf_ptr_null, iovm_cbuf_ptr, EINVAL),
	ROW(cbuf_pages_null, iovm_cbuf_pages, EINVAL),
	ROW(cbuf_pages_null_n, iovm_cbuf_pages, EINVAL),
	ROW(cbuf_pages_null_out, iovm_cbuf_pages, EINVAL),
	ROW(sync_dev_null_ctx, iovm_dma_sync_for_device, EINVAL),
	ROW(sync_dev_null_ptr, iovm_dma_sync_for_device, EINVAL),
	ROW(sync_dev_zero, iovm_dma_sync_for_device, EINVAL),
	ROW(sync_dev_wraps, iovm_dma_sync_for_device, EINVAL),
	ROW(sync_dev_foreign, iovm_dma_sync_for_device, ENOENT),
	ROW(sync_cpu_null_ctx, iovm_dma_sync_for_cpu, EINVAL),
	ROW(sync_cpu_zero, iovm_dma_sync_for_cpu, EINVAL),
	ROW(sync_cpu_foreign, iovm_dma_sync_for_cpu, ENOENT),
	ROW(sync_cpu_past_cbuf, iovm_dma_sync_for_cpu, ENOENT),
	ROW(mmap_alloc_null_ctx, iovm_mem_map_alloc, EINVAL),
	ROW(mmap_alloc_null_out, iovm_mem_map_alloc, EINVAL),
	ROW(mmap_free_null, iovm_mem_map_free, EINVAL),
	ROW(mmap_set_null, iovm_mem_map_set_translation, EINVAL),
	ROW(mmap_set_unaligned, iovm_mem_map_set_translation, EINVAL),
	ROW(mmap_set_odd_size, iovm_mem_map_set_translation, EINVAL),
	ROW(mmap_set_zero, iovm_mem_map_set_translation, EINVAL),
	ROW(mmap_set_beyond, iovm_mem_map_set_translation, EINVAL),
	ROW(mmap_set_wraps, iovm_mem_map_set_translation, EINVAL),
	ROW(mmap_clear_null, iovm_mem_map_clear_translation, EINVAL),
	ROW(mmap_clear_unaligned, iovm_mem_map_clear_translation, EINVAL),
	ROW(mmap_clear_past_top, iovm_mem_map_clear_translation, EINVAL),
	ROW(mmap_translate_null, iovm_mem_map_translate, EINVAL),
	ROW(memreg_null_ctx, iovm_mem_register, EINVAL),
	ROW(memreg_null_addr, iovm_mem_register, EINVAL),
	ROW(memreg_zero, iovm_mem_register, EINVAL),
	ROW(memreg_unaligned, iovm_mem_register, EINVAL),
	ROW(memreg_odd_len, iovm_mem_register, EINVAL),
	ROW(memreg_wraps, iovm_mem_register, EINVAL),
	ROW(memreg_beyond, iovm_mem_register, EINVAL),
	ROW(memreg_unmapped, iovm_mem_register, EFAULT),
	ROW(memreg_heap, iovm_mem_register, EBUSY),
	ROW(memunreg_null_ctx, iovm_mem_unregister, EINVAL),
	ROW(memunreg_unaligned, iovm_mem_unregister, EINVAL),
	ROW(memunreg_not_registered, iovm_mem_unregister, EINVAL),
	ROW(vtophys_null_ctx, iovm_vtophys, EINVAL),
	ROW(vtophys_stack, iovm_vtophys, ENOENT),
	ROW(vtophys_beyond, iovm_vtophys, ENOENT),
};

static void quiet(void *arg, enum iovm_log_level level, const char *msg)
{
	(void)arg;
	(void)level;
	(void)msg;
}

/*
 * Before each row, an earlier call fails and leaves its detail: a row's
 * call must not leave it behind (issue 16, item 13), and a refused
 * argument (-EINVAL) must leave a detail that names the call.
 */
#define POISON "poison_from_an_earlier_call"

static void poison_detail(void)
{
	struct iovm_ctx *c = NULL;

	detail_kept = false;
	CHECK_EQ(iovm_open(POISON "=1", &c), -EINVAL);
	CHECK(strstr(iovm_error_detail(), POISON) != NULL);
}

/* Calls that report through their return value alone: they keep no detail. */
static bool keeps_no_detail(const char *api)
{
	static const char *const none[] = { "iovm_strerror", "iovm_error_detail", "iovm_opts_help", "iovm_version", "iovm_status_name", "iovm_fault_reason_name",
					    "iovm_uffd_feature_name", "iovm_device_id", "iovm_rqueue_pasid",
					    /* their rows: no failure */
					    "iovm_log_set_handler", "iovm_close", "iovm_sysinfo_free" };

	for (size_t i = 0; i < ARRAY_SIZE(none); i++)
		if (!strcmp(api, none[i]))
			return true;
	return false;
}

static void check_detail(const struct bad_case *c)
{
	const char *d = detail_kept ? kept_detail : iovm_error_detail();

	if (keeps_no_detail(c->api))
		return;
	if (!strcmp(c->id, "open_host_pa_unpriv") && geteuid() == 0)
		return; /* the row makes no call as root */
	CHECK_MSG(!strstr(d, POISON), "%s (%s): left an earlier call's detail: '%s'", c->id, c->api, d);
	if (c->expect == -EINVAL)
		CHECK_MSG(strstr(d, c->api) != NULL, "%s (%s): -EINVAL with detail '%s', which does not name it",
			  c->id, c->api, d);
}

TEST(every_call_refuses_bad_input)
{
	struct iovm_mem_stats before, after;

	CHECK_OK(iovm_mem_stats(ctx, &before));
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		long got;

		poison_detail();
		got = cases[i].fn();
		CHECK_MSG(got == cases[i].expect, "%s (%s): got %ld (%s), expected %ld (%s)",
			  cases[i].id, cases[i].api, got, got < 0 ? strerror((int)-got) : "success",
			  cases[i].expect, strerror((int)-cases[i].expect));
		check_detail(&cases[i]);
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
	ctx = open_ctx("page_size=4K,host_pa=off,mem_limit=256M,pool=bad-pool:8M:4K");
	live = iovm_dma_alloc(ctx, 256, 0, 0);
	freed = iovm_dma_alloc(ctx, 4096, 0, 0);
	CHECK(live && freed);
	CHECK_OK(iovm_dma_free(ctx, freed));
	CHECK_EQ(iovm_zone_reserve(ctx, "badinput-zone", 4096, 0, 0, &zone), 0);
	page = iovm_dma_alloc(ctx, 4096, 4096, 0);
	CHECK_OK(iovm_dma_pa(ctx, page, &page_pa));
	CHECK_OK(iovm_domain_create(ctx, NULL, &dom));
	CHECK_OK(iovm_domain_create(ctx, &(struct iovm_domain_attr){ .type = IOVM_DOMAIN_IDENTITY }, &idom));
	CHECK_OK(iovm_device_open(ctx, "sw", &dev));
	CHECK_OK(iovm_device_open(ctx, "sw", &dev2));
	CHECK_OK(iovm_device_attach(dev, dom, IOVM_PASID_NONE));
	CHECK_OK(iovm_queue_create(dev, &(struct iovm_queue_attr){ .depth = 4, .flags = IOVM_QUEUE_POLLED }, &q));
	CHECK_OK(iovm_queue_create(dev, &(struct iovm_queue_attr){ .depth = 2, .flags = IOVM_QUEUE_POLLED }, &qfull));
	CHECK_OK(iovm_queue_create(dev, &(struct iovm_queue_attr){ .depth = 2 }, &qworker));
	/* Before the application's memory: a hole left by its unmapped page must stay a hole. */
	CHECK_OK(iovm_pool_lookup(ctx, "bad-pool", &pool));
	{
		struct iovm_guest_attr a = gattr(4 << 20);

		CHECK_OK(iovm_guest_create(ctx, &a, &guest));
		a.placement = IOVM_PLACE_POOL;
		a.pool = pool;
		CHECK_OK(iovm_guest_create(ctx, &a, &guest_down));
		CHECK_OK(iovm_guest_shutdown(guest_down));
	}
	CHECK_OK(iovm_guest_stage2(guest, &s2));
	CHECK_OK(iovm_guest_domain_create(guest, NULL, &ndom));
	CHECK_OK(iovm_cbuf_alloc(ctx, 4096, IOVM_CBUF_NONCOHERENT, &cbuf));
	app = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(app != MAP_FAILED);
	app_ro = app + 4096;
	CHECK_OK(mprotect(app_ro, 4096, PROT_READ));
	/*
	 * Unmapped memory that stays unmapped: the lowest page of a 64 MiB
	 * hole. The kernel places mappings top-down, at the high end of the
	 * first hole that fits, so the library's own mmap()s during the test
	 * (tables, rings) fill the hole from its top, far from this page.
	 */
	app_gone = mmap(NULL, 64 << 20, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(app_gone != MAP_FAILED);
	CHECK_OK(munmap(app_gone, 64 << 20));
	CHECK_OK(iovm_mr_reg(dom, app, 4096, IOVM_ACCESS_LOCAL_WRITE, &mr));
	CHECK_OK(iovm_rcache_create(dom, NULL, &rc));
	CHECK_OK(iovm_mem_map_alloc(ctx, 0, NULL, NULL, &mmap_keys));
	RUN(every_call_refuses_bad_input);
	CHECK_OK(iovm_mem_map_free(&mmap_keys));
	CHECK_OK(iovm_cbuf_free(cbuf));
	CHECK_OK(iovm_domain_destroy(ndom));
	CHECK_OK(iovm_guest_destroy(guest));
	CHECK_OK(iovm_guest_destroy(guest_down));
	CHECK_OK(iovm_pool_destroy(pool));
	{
		struct iovm_reg_stats st;

		/* Nothing the refused registrations took is left over. */
		CHECK_OK(iovm_reg_stats(ctx, &st));
		CHECK_EQ(st.mrs, 1);
		CHECK_EQ(st.locked_bytes, 4096);
	}
	CHECK_OK(iovm_mr_dereg(mr));
	CHECK_OK(iovm_rcache_destroy(rc));
	CHECK_OK(iovm_device_close(dev2));
	CHECK_OK(iovm_device_close(dev));
	CHECK_OK(iovm_domain_destroy(dom));
	CHECK_OK(iovm_domain_destroy(idom));
	CHECK_OK(iovm_dma_free(ctx, page));
	CHECK_OK(iovm_zone_free(ctx, zone));
	CHECK_OK(iovm_dma_free(ctx, live));
	iovm_close(ctx);
	return 0;
}
