/* SPDX-License-Identifier: MIT */
/*
 * iovm/ctx.h - opening and closing iovm: the context every other call takes.
 */
#ifndef IOVM_CTX_H
#define IOVM_CTX_H

#include <iovm/base.h>

#ifdef __cplusplus
extern "C" {
#endif

struct iovm_ctx;

/**
 * iovm_open() - create a context: a physical address space and a DMA heap.
 * @opts: "key=value,..." options (see iovm_opts_help()); NULL takes them
 *        from the IOVM_OPTS environment variable, "" uses the defaults
 * @ctx: set to the new context
 *
 * Options: page_size (auto|4K|2M|1G), mem_limit (bytes, K/M/G/T), numa_node
 * (any|N), host_pa (auto|on|off), log_level (error|warn|notice|info|debug),
 * release_delay_ms; share=NAME (with share_size, share_group) to share the
 * context's DMA heap as iovm_share() does, or attach=NAME to open it on
 * another process's share as iovm_attach() does (iovm/mp.h), not both. An
 * unknown key or a malformed value fails with -EINVAL, and
 * iovm_error_detail() names it; errors of iovm_share() and iovm_attach()
 * for the share options.
 *
 * Nothing is allocated from the kernel yet but address space: memory comes
 * as the heap needs it.
 *
 * Physical addresses (host_pa): a PA iovm hands out is either the host's
 * (the machine's physical address of the memory, which a device without
 * an IOMMU can be given) or emulated (iovm's own, meaningful to its
 * software platform only). Only hugepages get host PAs: the kernel moves
 * a hugetlb page only when told to (memory hot-removal, move_pages(2),
 * making gigantic or CMA pages, a memory error), as DPDK's IOVA-as-PA
 * mode assumes too; 4 KiB pages have no fixed host PA: compaction, NUMA
 * balancing and khugepaged migrate them at any time, locked (mlock) or
 * not, and only a kernel pin (a driver's) would hold them.
 *  - host_pa=on: every PA handed out is a host PA, or the call fails. No
 *    4 KiB pages are used: no fallback to them when hugepages run out
 *    (-ENOMEM instead); IOVM_DMA_PAGE_4K, pools or guests of 4 KiB pages
 *    and sharing a heap (iovm/mp.h) fail with -EOPNOTSUPP; common buffers
 *    are made of 4 KiB pieces of hugepages.
 *  - host_pa=auto: host-PA mode where pagemap shows host PAs (root) and
 *    the kernel has hugepages. Hugepage memory then has host PAs; memory of
 *    4 KiB pages (the fallback, IOVM_DMA_PAGE_4K, common buffers when no
 *    hugepage is free, pools and guests of 4 KiB pages) and shared heaps
 *    have emulated ones, with a warning in the log the first time.
 *    iovm_dma_xlate() says which translation is a host PA
 *    (IOVM_XLATE_PA_REAL), iovm_pa_is_host() which PA is.
 *  - host_pa=off: every PA is emulated.
 *
 * Thread safety: safe; several contexts may coexist in a process.
 *
 * Return: 0; -EINVAL for a bad option or argument (host_pa=on with
 * page_size=4K, say); -EOPNOTSUPP for a page size the kernel lacks (or
 * host_pa=on with share=, attach= or a pool of 4 KiB pages); -EPERM for
 * host_pa=on where host physical addresses cannot be read; -ENOMEM.
 */
IOVM_API int iovm_open(const char *opts, struct iovm_ctx **ctx);

/**
 * iovm_close() - destroy a context and give all its memory back.
 * @ctx: the context; NULL is a no-op
 *
 * Every pointer into its memory becomes invalid.
 *
 * Thread safety: no other call on @ctx may run or follow.
 *
 * Return: 0.
 */
IOVM_API int iovm_close(struct iovm_ctx *ctx);

/*
 * The configuration a context resolved its options to. Which PAs are
 * the host's (see iovm_open()): none without host_pa; with host_pa and
 * host_pa_only, all; with host_pa alone, those of hugepages, and 4 KiB
 * pages (page_size_fallback says whether the heap falls back to them)
 * have emulated ones.
 */
struct iovm_ctx_info {
	uint64_t page_size;      /* preferred; 0 never: auto is resolved */
	bool page_size_fallback; /* 4 KiB pages when hugepages run out; never with host_pa_only */
	uint64_t mem_limit;
	int numa_node;           /* -1: any */
	bool host_pa;            /* host-PA mode: hugepage memory is at its host PA */
	bool host_pa_readable;   /* pagemap shows host PAs (root) */
	uint32_t release_delay_ms;
	bool host_pa_only;       /* host_pa=on: every PA is a host PA, or the call fails */
};

/**
 * iovm_ctx_info() - what iovm_open() resolved the options to.
 *
 * Thread safety: safe.
 *
 * Return: 0, or -EINVAL.
 */
IOVM_API int iovm_ctx_info(const struct iovm_ctx *ctx, struct iovm_ctx_info *info);

#ifdef __cplusplus
}
#endif

#endif /* IOVM_CTX_H */
