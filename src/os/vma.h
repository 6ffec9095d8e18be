/* SPDX-License-Identifier: MIT */
/*
 * vma.h - what the process's mappings of a range are, from /proc/self/maps:
 * one read of the mappings, not a walk of the pages.
 */
#ifndef IOVM_OS_VMA_H
#define IOVM_OS_VMA_H

#include <stdbool.h>
#include <stdint.h>

struct os_vma_info {
	bool mapped;    /* every byte of the range is in a mapping */
	bool readable;  /* ... a readable one */
	bool writable;  /* ... a writable one */
	bool sysv_shm;  /* some of it is System V shared memory */
};

/* os_vma_range() - the mappings of [start, end). 0, or -errno when the maps cannot be read. */
int os_vma_range(uint64_t start, uint64_t end, struct os_vma_info *info);

#endif /* IOVM_OS_VMA_H */
