/* SPDX-License-Identifier: MIT */
/*
 * memfd.h - the files that back iovm's physical memory: memfd, hugetlb or
 * shmem.
 *
 * A memfd can be mapped twice (the bus mapping and the heap mapping of the
 * same pages) and shared with another process by fd and offset.
 */
#ifndef IOVM_OS_MEMFD_H
#define IOVM_OS_MEMFD_H

#include <stdint.h>

/*
 * os_memfd_create() - a memfd of @page_size pages: hugetlb for a hugepage
 * size, shmem for the base page size. -EOPNOTSUPP when the kernel has no
 * hugetlb pages of that size.
 */
int os_memfd_create(const char *name, uint64_t page_size, int *fd);

/*
 * os_memfd_create_sealed() - os_memfd_create() of @size bytes whose size is
 * sealed: nobody it is shared with can shrink it (every other mapping of
 * it would fault) or grow it.
 */
int os_memfd_create_sealed(const char *name, uint64_t page_size, uint64_t size, int *fd);

/*
 * os_memfd_sealed_size() - the size of a memfd received from another
 * process; -EPERM when its size is not sealed (the sender could shrink it
 * under us).
 */
int os_memfd_sealed_size(int fd, uint64_t *size);

/*
 * os_memfd_extend() - make the file at least @end bytes long. Pages are
 * allocated when a mapping of them is populated, not here.
 */
int os_memfd_extend(int fd, uint64_t end);

/* os_memfd_punch() - give the pages of [off, off+len) back to the kernel. */
int os_memfd_punch(int fd, uint64_t off, uint64_t len);

#endif /* IOVM_OS_MEMFD_H */
