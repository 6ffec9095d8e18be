/* SPDX-License-Identifier: MIT */
/*
 * probe.c - CPUs, address width, IOMMU groups and VFIO/iommufd device nodes.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/compiler.h"
#include "base/fault_inject.h"
#include "os/probe.h"
#include "os/sysfs.h"

unsigned os_phys_addr_bits(void)
{
	unsigned bits = 0;
	char line[256];
	FILE *f;

	f = fi_fopen("/proc/cpuinfo", "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		const char *p = strstr(line, "address sizes");

		if (p && sscanf(p, "address sizes : %u bits physical", &bits) == 1)
			break;
	}
	fclose(f);
	return bits;
}

void os_probe_cpus(struct iovm_sysinfo *info)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	info->nr_cpus_online = n > 0 ? (unsigned)n : 1;
	for (unsigned i = 0; i < info->nr_nodes; i++) {
		char path[96], buf[1024];
		int cnt;

		snprintf(path, sizeof(path), "/sys/devices/system/node/node%d/cpulist",
			 info->nodes[i]);
		if (sysfs_read(path, buf, sizeof(buf)))
			cnt = info->nr_nodes == 1 ? (int)info->nr_cpus_online : 0;
		else
			cnt = sysfs_parse_list(buf, NULL, NULL);
		info->node_cpus[i] = cnt > 0 ? (unsigned)cnt : 0;
	}
}

static int cmp_group(const void *a, const void *b)
{
	const struct iovm_iommu_group *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

static void probe_groups(struct iovm_sysinfo *info)
{
	struct dirent *de;
	DIR *d = opendir("/sys/kernel/iommu_groups");

	if (!d)
		return;
	while ((de = readdir(d))) {
		struct iovm_iommu_group *g;
		char path[320];
		struct dirent *dev;
		DIR *dd;
		char *end;
		unsigned long id = strtoul(de->d_name, &end, 10);

		if (end == de->d_name || *end)
			continue;
		if (info->nr_iommu_groups >= IOVM_INFO_MAX_GROUPS) {
			info->iommu_groups_truncated = true;
			continue;
		}
		g = &info->groups[info->nr_iommu_groups++];
		g->id = (unsigned)id;
		snprintf(path, sizeof(path), "/sys/kernel/iommu_groups/%s/devices", de->d_name);
		dd = opendir(path);
		if (!dd)
			continue;
		while ((dev = readdir(dd))) {
			if (dev->d_name[0] == '.' || g->nr_devices >= IOVM_INFO_MAX_GROUP_DEVICES)
				continue;
			snprintf(g->devices[g->nr_devices++], sizeof(g->devices[0]), "%.15s",
				 dev->d_name);
		}
		closedir(dd);
	}
	closedir(d);
	qsort(info->groups, info->nr_iommu_groups, sizeof(info->groups[0]), cmp_group);
}

static unsigned count_entries(const char *dir, const char *prefix, bool digits)
{
	struct dirent *de;
	unsigned n = 0;
	DIR *d = opendir(dir);

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (prefix && strncmp(de->d_name, prefix, strlen(prefix)))
			continue;
		if (digits && (de->d_name[0] < '0' || de->d_name[0] > '9'))
			continue;
		n++;
	}
	closedir(d);
	return n;
}

void os_probe_iommu(struct iovm_sysinfo *info)
{
	struct dirent *de;
	DIR *d;

	probe_groups(info);
	info->vfio = access("/dev/vfio/vfio", F_OK) == 0;
	info->iommufd = access("/dev/iommu", F_OK) == 0;
	info->nr_vfio_groups = count_entries("/dev/vfio", NULL, true);
	info->nr_vfio_cdevs = count_entries("/dev/vfio/devices", "vfio", false);
	d = opendir("/sys/bus/pci/drivers/vfio-pci");
	if (!d)
		return;
	while ((de = readdir(d))) {
		/* Bound devices appear as links named by their PCI address. */
		if (!strchr(de->d_name, ':') || info->nr_vfio_pci >= IOVM_INFO_MAX_VFIO_DEVICES)
			continue;
		snprintf(info->vfio_pci[info->nr_vfio_pci++], sizeof(info->vfio_pci[0]), "%.15s",
			 de->d_name);
	}
	closedir(d);
}
