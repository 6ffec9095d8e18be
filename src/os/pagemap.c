/* SPDX-License-Identifier: MIT */
/*
 * pagemap.c - bulk reads of /proc/self/pagemap.
 *
 * pagemap has one 64-bit entry per base page: bit 63 present, bits 0-54
 * the frame number (zero unless the reader has CAP_SYS_ADMIN). A hugepage
 * has an entry for each of its base pages; the first one gives its base.
 * One pread() covers a whole bank, so the cost is paid once per bank, never
 * per lookup (DPDK reads pagemap on every rte_mem_virt2phy()).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/compiler.h"
#include "base/fault_inject.h"
#include "os/hugepage.h"
#include "os/pagemap.h"

#define PM_PRESENT (UINT64_C(1) << 63)
#define PM_PFN_MASK ((UINT64_C(1) << 55) - 1)

static int pagemap_pread(int fd, uint64_t *ent, size_t n, uint64_t first_vpn)
{
	size_t want = n * sizeof(*ent), got = 0;

	while (got < want) {
		ssize_t r = pread(fd, (char *)ent + got, want - got,
				  (off_t)(first_vpn * sizeof(*ent) + got));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		got += (size_t)r;
	}
	return 0;
}

int os_pagemap_read(const void *addr, size_t npages, uint64_t page_size, hpa_t *hpa)
{
	uint64_t base = os_page_size(), stride, n;
	uint64_t __autofree *ent = NULL;
	int __autoclose fd = -1;
	int ret;

	if (!npages || !is_pow2(page_size) || page_size < base ||
	    !is_aligned((uintptr_t)addr, page_size))
		return -EINVAL;
	stride = page_size / base;
	if (npages > SIZE_MAX / sizeof(uint64_t) / stride)
		return -EOVERFLOW;
	n = npages * stride;
	ent = fi_malloc(n * sizeof(*ent));
	if (!ent)
		return -ENOMEM;
	fd = fi_open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = pagemap_pread(fd, ent, n, (uintptr_t)addr / base);
	if (ret)
		return ret;
	for (size_t i = 0; i < npages; i++) {
		uint64_t e = ent[i * stride];

		if ((e & PM_PRESENT) && (e & PM_PFN_MASK))
			hpa[i] = hpa_make((e & PM_PFN_MASK) * base);
		else
			hpa[i] = HPA_INVALID;
	}
	return 0;
}

int os_pagemap_probe(void)
{
	/* Contexts open on many threads at once (ctx.h): the write that faults the page in is atomic. */
	static _Atomic uint64_t probe_word;
	hpa_t hpa = HPA_INVALID; /* set by the read; gcc -O3 cannot tell */
	uint64_t base = os_page_size();
	const void *page = (const void *)align_down((uintptr_t)&probe_word, base);
	int ret;

	atomic_fetch_add_explicit(&probe_word, 1, memory_order_relaxed); /* make sure the page is present */
	ret = os_pagemap_read(page, 1, base, &hpa);
	if (ret)
		return ret;
	return hpa_valid(hpa) ? 1 : 0;
}
