/* SPDX-License-Identifier: MIT */
/*
 * vma.c - a range's mappings, read from /proc/self/maps.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "os/vma.h"

int os_vma_range(uint64_t start, uint64_t end, struct os_vma_info *info)
{
	char line[512];
	uint64_t covered = start;
	FILE *f = fopen("/proc/self/maps", "re");

	*info = (struct os_vma_info){ .readable = true, .writable = true };
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		unsigned long s, e;
		char perms[5] = "";
		int path = 0;

		if (sscanf(line, "%lx-%lx %4s %*s %*s %*s %n", &s, &e, perms, &path) < 3)
			continue;
		if (e <= start)
			continue;
		if (s >= end)
			break;
		/* Mappings are listed in address order: a gap before this one is a hole. */
		if (s > covered)
			break;
		covered = e;
		info->readable &= perms[0] == 'r';
		info->writable &= perms[1] == 'w';
		if (path && !strncmp(line + path, "/SYSV", 5))
			info->sysv_shm = true;
		if (covered >= end)
			break;
	}
	fclose(f);
	info->mapped = covered >= end;
	if (!info->mapped)
		info->readable = info->writable = false;
	return 0;
}
