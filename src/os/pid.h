/* SPDX-License-Identifier: MIT */
/*
 * pid.h - this process's ID, without a system call each time.
 */
#ifndef IOVM_OS_PID_H
#define IOVM_OS_PID_H

#include <sys/types.h>

/*
 * os_pid() - getpid(), remembered in a page the kernel wipes in a fork's
 * child (MADV_WIPEONFORK): one load, and a system call only in a new
 * child or where the kernel has no such pages (then every call is one).
 * A fork by a raw clone(2) that skips pthread_atfork() handlers is seen
 * too: the page is wiped whatever made the child. Any thread.
 */
pid_t os_pid(void);

#endif /* IOVM_OS_PID_H */
