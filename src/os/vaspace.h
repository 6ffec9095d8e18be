/* SPDX-License-Identifier: MIT */
/*
 * vaspace.h - reserving virtual address space once and committing pages of a
 * memfd into it.
 */
#ifndef IOVM_OS_VASPACE_H
#define IOVM_OS_VASPACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * os_va_reserve() - reserve @len bytes of address space aligned to @align
 * (a power of two), inaccessible and without backing.
 */
void *os_va_reserve(size_t len, size_t align);

void os_va_release(void *addr, size_t len);

/*
 * os_va_commit() - map [off, off+len) of @fd at @addr, inside a reservation,
 * read-write and shared; @populate also fills the page tables now.
 */
int os_va_commit(void *addr, size_t len, int fd, uint64_t off, bool populate);

/*
 * os_va_commit_sparse() - os_va_commit() without reserving memory for it
 * (MAP_NORESERVE): the file's pages are allocated elsewhere (fallocate()),
 * and a page that is not there is SIGBUS, or a fresh page, when touched.
 */
int os_va_commit_sparse(void *addr, size_t len, int fd, uint64_t off);

/* os_va_decommit() - put [addr, addr+len) back to reserved, dropping the mapping. */
int os_va_decommit(void *addr, size_t len);

/* os_va_map_shared() - a new shared mapping of @fd anywhere, for the bus. */
void *os_va_map_shared(size_t len, int fd, uint64_t off);

#endif /* IOVM_OS_VASPACE_H */
