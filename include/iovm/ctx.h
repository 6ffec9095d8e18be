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
 * Thread safety: safe; several contexts may coexist in a process.
 *
 * Return: 0; -EINVAL for a bad option or argument; -EOPNOTSUPP for a page
 * size the kernel lacks; -EPERM for host_pa=on where host physical
 * addresses cannot be read; -ENOMEM.
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

/* The configuration a context resolved its options to. */
struct iovm_ctx_info {
	uint64_t page_size;      /* preferred; 0 never: auto is resolved */
	bool page_size_fallback; /* 4 KiB pages when hugepages run out */
	uint64_t mem_limit;
	int numa_node;           /* -1: any */
	bool host_pa;            /* host-PA mode */
	bool host_pa_readable;   /* pagemap shows host PAs (root) */
	uint32_t release_delay_ms;
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
