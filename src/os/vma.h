/* SPDX-License-Identifier: MIT */
/*
 * vma.h - what the process's mappings of a range are, from /proc/self/maps:
 * a query (or one read) of the mappings, not a walk of the pages.
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
	/*
	 * Some of it maps pages an object outside the mapping owns: a shared
	 * mapping, or a private one of a file (a memfd's, shared memory's)
	 * whose pages are the file's until written. Not anonymous hugetlb.
	 */
	bool file_backed;
	uint64_t page_size; /* the smallest page size of its mappings (4096 where not known) */
};

/*
 * os_vma_range() - the mappings of [start, end). 0, or -errno when the
 * maps cannot be read. Thread-safe; keeps /proc/self/maps open.
 */
int os_vma_range(uint64_t start, uint64_t end, struct os_vma_info *info);

/* For the tests: read the maps' text even where the kernel has PROCMAP_QUERY. */
void os_vma_text_only(bool on);
/* Whether queries are used (the kernel has PROCMAP_QUERY, and the text is not forced). */
bool os_vma_queries(void);

#endif /* IOVM_OS_VMA_H */
