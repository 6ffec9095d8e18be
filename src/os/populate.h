/* SPDX-License-Identifier: MIT */
/*
 * populate.h - faulting pages in without ever dying of SIGBUS; locking them.
 */
#ifndef IOVM_OS_POPULATE_H
#define IOVM_OS_POPULATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * os_populate() - fault in [addr, addr+len) for writing. A page the kernel
 * cannot provide (hugepages exhausted, a hugetlb cgroup limit hit at first
 * touch) gives -ENOMEM; the process never sees SIGBUS.
 */
int os_populate(void *addr, size_t len, uint64_t page_size);

/*
 * os_populate_touch() - the fallback for kernels before 5.14, which lack
 * MADV_POPULATE_WRITE: touch one byte per page with SIGBUS caught. Exposed
 * so that the tests exercise it on any kernel.
 */
int os_populate_touch(void *addr, size_t len, uint64_t page_size);

/*
 * os_populate_range() - fault in [addr, addr+len) of any mapping (the
 * application's), for writing when @write, without changing a byte:
 * -EFAULT when part of it is not mapped, not accessible (PROT_NONE, a PFN
 * or I/O mapping) or, for @write, not writable; -ENOMEM when memory runs
 * short faulting it in (-EAGAIN if the kernel keeps saying it is, briefly);
 * 0 otherwise. On kernels
 * before 5.14, without MADV_POPULATE_*, pages are touched under a guard
 * (a write touch adds zero atomically, so concurrent writers lose nothing).
 */
int os_populate_range(void *addr, size_t len, bool write);

/*
 * os_mlock(), os_munlock() - mlock(2) and munlock(2), by system call:
 * sanitizers replace the libc calls with ones that do nothing, and a
 * registration's locks must be real under them too. 0, or -errno.
 */
int os_mlock(const void *addr, size_t len);
int os_munlock(const void *addr, size_t len);

/*
 * os_mlock_onfault() - mlock2(2) with MLOCK_ONFAULT: the pages there are
 * locked now, the others as they fault in; none is faulted in. 0, or
 * -errno (-ENOSYS or -EINVAL where the kernel has no mlock2 or flag,
 * before Linux 4.4).
 */
int os_mlock_onfault(const void *addr, size_t len);

/*
 * os_populate_touched() - fault in [addr, addr+len) (4 KiB aligned) by
 * touching a byte of each page from user space, for writing (adding zero,
 * atomically: concurrent writers lose nothing) when @write: the faults
 * take the mapping's own lock, not the process's mmap_lock, so threads
 * populating parts of one mapping do not wait for each other, nor for an
 * mlock(2) of another part, as MADV_POPULATE_* and mlock's own faulting in
 * do. -EFAULT when a page is not there to have (unmapped, not permitted,
 * SIGBUS), 0 otherwise.
 */
int os_populate_touched(void *addr, size_t len, bool write);

#endif /* IOVM_OS_POPULATE_H */
