/* SPDX-License-Identifier: MIT */
/*
 * hugepage.h - the kernel's hugepage sizes and pools.
 */
#ifndef IOVM_OS_HUGEPAGE_H
#define IOVM_OS_HUGEPAGE_H

#include <stdbool.h>
#include <stdint.h>

/* More than x86's two or arm64's four hugepage sizes is not expected. */
#define OS_MAX_HUGEPAGE_SIZES 8

/* The base page size (4 KiB on x86). */
uint64_t os_page_size(void);

/* Hugepage sizes the kernel supports, ascending; returns how many. */
int os_hugepage_sizes(uint64_t *sizes, int max);

bool os_hugepage_supported(uint64_t size);

/*
 * os_hugepage_pool() - counters of the pool of @size pages on @node, or of
 * the whole machine when @node is negative.
 */
int os_hugepage_pool(uint64_t size, int node, uint64_t *total, uint64_t *free);

/* os_hugepage_available() - free pages of @size that no mapping has reserved (free less resv). */
int os_hugepage_available(uint64_t size, uint64_t *avail);

#endif /* IOVM_OS_HUGEPAGE_H */
