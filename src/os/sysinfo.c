/* SPDX-License-Identifier: MIT */
/*
 * sysinfo.c - iovm_sysinfo_get(): one description of the machine, for
 * `iovm info` and for iovm_open() to decide what it can use.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <iovm/os.h>

#include "base/compiler.h"
#include "base/error.h"
#include "base/fault_inject.h"
#include "os/hugepage.h"
#include "os/numa.h"
#include "os/pagemap.h"
#include "os/probe.h"
#include "os/uffd.h"

static void add_pool(struct iovm_sysinfo *info, uint64_t size, int node)
{
	struct iovm_hugepage_pool *p;
	uint64_t total, free;

	if (info->nr_pools >= ARRAY_SIZE(info->pools) || os_hugepage_pool(size, node, &total, &free))
		return;
	p = &info->pools[info->nr_pools++];
	p->page_size = size;
	p->node = node;
	p->total = total;
	p->free = free;
}

IOVM_API int iovm_sysinfo_get(struct iovm_sysinfo **out)
{
	struct iovm_sysinfo *info;
	struct utsname uts;
	int n, fd, ret;

	err_enter();
	if (!out)
		return err_inval("!out");
	info = fi_calloc(1, sizeof(*info));
	if (!info)
		return -ENOMEM;

	if (!uname(&uts))
		snprintf(info->kernel, sizeof(info->kernel), "%.63s", uts.release);
	info->root = geteuid() == 0;
	info->base_page_size = os_page_size();
	info->phys_addr_bits = os_phys_addr_bits();

	n = os_numa_nodes(info->nodes, IOVM_INFO_MAX_NODES);
	info->nr_nodes = n > 0 ? (unsigned)n : 0;
	info->numa_policy = os_numa_available();
	os_probe_cpus(info);

	n = os_hugepage_sizes(info->page_sizes, IOVM_INFO_MAX_SIZES);
	info->nr_page_sizes = n > 0 ? (unsigned)n : 0;
	for (unsigned s = 0; s < info->nr_page_sizes; s++)
		add_pool(info, info->page_sizes[s], -1);
	for (unsigned s = 0; s < info->nr_page_sizes; s++)
		for (unsigned i = 0; i < info->nr_nodes; i++)
			add_pool(info, info->page_sizes[s], info->nodes[i]);

	info->pagemap = os_pagemap_probe();

	ret = os_uffd_open(&fd, info->uffd_via, sizeof(info->uffd_via));
	if (!ret) {
		close(fd);
		info->uffd = true;
		info->uffd_error = os_uffd_features(&info->uffd_features);
	} else {
		info->uffd_error = ret;
	}
	os_probe_iommu(info);
	*out = info;
	return 0;
}

IOVM_API void iovm_sysinfo_free(struct iovm_sysinfo *info)
{
	err_enter();
	free(info);
}
