/* SPDX-License-Identifier: MIT */
/*
 * hugepage.c - hugepage sizes and pool counters from sysfs.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/compiler.h"
#include "os/hugepage.h"
#include "os/sysfs.h"

#define HUGEPAGES_DIR "/sys/kernel/mm/hugepages"

uint64_t os_page_size(void)
{
	long sz = sysconf(_SC_PAGESIZE);

	return sz > 0 ? (uint64_t)sz : SZ_4K;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int os_hugepage_sizes(uint64_t *sizes, int max)
{
	struct dirent *de;
	DIR *d;
	int n = 0;

	d = opendir(HUGEPAGES_DIR);
	if (!d)
		return 0; /* a kernel without hugetlbfs has none */
	while ((de = readdir(d)) && n < max) {
		unsigned long long kb;

		if (sscanf(de->d_name, "hugepages-%llukB", &kb) == 1)
			sizes[n++] = (uint64_t)kb << 10;
	}
	closedir(d);
	qsort(sizes, (size_t)n, sizeof(*sizes), cmp_u64);
	return n;
}

bool os_hugepage_supported(uint64_t size)
{
	uint64_t sizes[OS_MAX_HUGEPAGE_SIZES];
	int n = os_hugepage_sizes(sizes, OS_MAX_HUGEPAGE_SIZES);

	for (int i = 0; i < n; i++)
		if (sizes[i] == size)
			return true;
	return false;
}

int os_hugepage_pool(uint64_t size, int node, uint64_t *total, uint64_t *free)
{
	char dir[128], path[192];
	int ret;

	if (node < 0)
		snprintf(dir, sizeof(dir), HUGEPAGES_DIR "/hugepages-%" PRIu64 "kB", size >> 10);
	else
		snprintf(dir, sizeof(dir),
			 "/sys/devices/system/node/node%d/hugepages/hugepages-%" PRIu64 "kB", node,
			 size >> 10);
	snprintf(path, sizeof(path), "%s/nr_hugepages", dir);
	ret = sysfs_read_u64(path, total);
	if (ret)
		return ret;
	snprintf(path, sizeof(path), "%s/free_hugepages", dir);
	return sysfs_read_u64(path, free);
}

int os_hugepage_available(uint64_t size, uint64_t *avail)
{
	char path[192];
	uint64_t total, free, resv = 0;
	int ret = os_hugepage_pool(size, -1, &total, &free);

	if (ret)
		return ret;
	snprintf(path, sizeof(path), HUGEPAGES_DIR "/hugepages-%" PRIu64 "kB/resv_hugepages", size >> 10);
	(void)sysfs_read_u64(path, &resv); /* absent: none reserved */
	*avail = free > resv ? free - resv : 0;
	return 0;
}
