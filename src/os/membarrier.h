/* SPDX-License-Identifier: MIT */
/*
 * membarrier.h - asymmetric fences: a rare writer makes every thread of the
 * process execute a full memory barrier, so that frequent readers need only
 * a compiler barrier (as liburcu and folly do). Linux 4.14's
 * MEMBARRIER_CMD_PRIVATE_EXPEDITED.
 */
#ifndef IOVM_OS_MEMBARRIER_H
#define IOVM_OS_MEMBARRIER_H

#include <stdbool.h>

/*
 * os_membarrier_init() - register the process for expedited private
 * membarriers (once). False when the kernel has none: readers must then use
 * real fences.
 */
bool os_membarrier_init(void);

/* os_membarrier() - every running thread of the process passes a full barrier before this returns. */
void os_membarrier(void);

#endif /* IOVM_OS_MEMBARRIER_H */
