/* SPDX-License-Identifier: MIT */
/*
 * vma.h - what the process's mappings of a range are, from /proc/self/maps:
 * a query (or one read) of the mappings, not a walk of the pages; or, for
 * a small range about to be faulted in anyway, from probes of the range.
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

/* What os_vma_probe() may do to the pages to learn about them. */
#define OS_VMA_FAULT_READ 0x1  /* fault them in for reading (mlock(2) would) */
#define OS_VMA_FAULT_WRITE 0x2 /* ... and for writing: ->writable is known */

/*
 * os_vma_probe() - os_vma_range() for a caller about to fault the pages in
 * anyway (a pinned registration, whose mlock(2) does): where the kernel
 * has no PROCMAP_QUERY, a small range is answered from the range alone
 * (MADV_POPULATE_READ/WRITE, its pagemap entries, minor-fault
 * registrations of a userfaultfd of its own), not from every mapping's
 * line of the maps' text; the answer is the text's (vma.c says the one
 * difference, which a registration does not see). Faults the range in as
 * @fault says (0: nothing, and the answer is os_vma_range()'s). Without
 * OS_VMA_FAULT_WRITE, ->writable may be false of writable memory: not
 * asked. 0, or -errno when the maps cannot be read. Thread-safe.
 */
int os_vma_probe(uint64_t start, uint64_t end, unsigned fault, struct os_vma_info *info);

/* For the tests: read the maps' text even where the kernel has PROCMAP_QUERY. */
void os_vma_text_only(bool on);
/* For the tests: act as on a kernel without PROCMAP_QUERY (the text, and os_vma_probe()'s probes). */
void os_vma_no_queries(bool on);
/* Whether queries are used (the kernel has PROCMAP_QUERY, and the text is not forced). */
bool os_vma_queries(void);

#endif /* IOVM_OS_VMA_H */
