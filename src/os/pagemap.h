/* SPDX-License-Identifier: MIT */
/*
 * pagemap.h - host physical addresses from /proc/self/pagemap.
 */
#ifndef IOVM_OS_PAGEMAP_H
#define IOVM_OS_PAGEMAP_H

#include <stddef.h>
#include <stdint.h>

#include "base/addr.h"

/*
 * os_pagemap_probe() - 1 when pagemap shows page frame numbers (root, or
 * CAP_SYS_ADMIN), 0 when it is readable but hides them, -errno when it
 * cannot be read at all.
 */
int os_pagemap_probe(void);

/*
 * os_pagemap_read() - the host PA of each of the @npages pages of
 * @page_size from @addr, in one read. A page that is not present, or whose
 * frame the kernel hides, gets HPA_INVALID.
 */
int os_pagemap_read(const void *addr, size_t npages, uint64_t page_size, hpa_t *hpa);

#endif /* IOVM_OS_PAGEMAP_H */
