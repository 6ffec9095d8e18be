/* SPDX-License-Identifier: MIT */
/*
 * uffd.h - opening a userfaultfd and reading its features.
 */
#ifndef IOVM_OS_UFFD_H
#define IOVM_OS_UFFD_H

#include <stddef.h>
#include <stdint.h>

/*
 * os_uffd_open() - a new userfaultfd, by whichever way this process is
 * allowed: the system call, the system call for user-mode faults only
 * (vm.unprivileged_userfaultfd=0 without CAP_SYS_PTRACE), or /dev/userfaultfd
 * (Linux 6.1). @via, when not NULL, names the way that worked.
 */
int os_uffd_open(int *fd, char *via, size_t via_len);

/* os_uffd_features() - the features the kernel offers (a UFFDIO_API handshake). */
int os_uffd_features(uint64_t *features);

#endif /* IOVM_OS_UFFD_H */
