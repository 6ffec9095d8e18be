/* SPDX-License-Identifier: MIT */
/*
 * iovm/os.h - what this machine offers for DMA memory: page sizes and
 * hugepage pools per NUMA node, host physical addresses, userfaultfd, IOMMU
 * groups, VFIO and iommufd, CPUs. `iovm info` prints it.
 */
#ifndef IOVM_OS_H
#define IOVM_OS_H

#include <iovm/base.h>

#ifdef __cplusplus
extern "C" {
#endif

#define IOVM_INFO_MAX_SIZES 8
#define IOVM_INFO_MAX_NODES 64
#define IOVM_INFO_MAX_GROUPS 64
#define IOVM_INFO_MAX_GROUP_DEVICES 8
#define IOVM_INFO_MAX_VFIO_DEVICES 32

struct iovm_hugepage_pool {
	uint64_t page_size;
	int node; /* -1: the whole machine */
	uint64_t total;
	uint64_t free;
};

struct iovm_iommu_group {
	unsigned id;
	unsigned nr_devices;
	char devices[IOVM_INFO_MAX_GROUP_DEVICES][16]; /* PCI addresses, "0000:00:03.0" */
};

struct iovm_sysinfo {
	char kernel[64];          /* uname release */
	bool root;                /* effective uid 0 */
	uint64_t base_page_size;  /* 4 KiB on x86 */
	unsigned phys_addr_bits;  /* host physical address width, 0 if unknown */

	unsigned nr_cpus_online;
	unsigned nr_nodes;
	int nodes[IOVM_INFO_MAX_NODES];
	unsigned node_cpus[IOVM_INFO_MAX_NODES]; /* CPUs of each node */
	bool numa_policy;                        /* mbind/get_mempolicy work */

	unsigned nr_page_sizes; /* hugepage sizes the kernel supports */
	uint64_t page_sizes[IOVM_INFO_MAX_SIZES];
	unsigned nr_pools; /* one per size for the machine, then per size and node */
	struct iovm_hugepage_pool pools[IOVM_INFO_MAX_SIZES * (IOVM_INFO_MAX_NODES + 1)];

	int pagemap;         /* 1: host PAs readable, 0: hidden (not root), <0: -errno */

	bool uffd;           /* a userfaultfd can be opened */
	char uffd_via[32];   /* "syscall", "syscall (user-mode only)", "/dev/userfaultfd" */
	uint64_t uffd_features;
	int uffd_error;      /* -errno when !uffd */

	unsigned nr_iommu_groups;
	bool iommu_groups_truncated;
	struct iovm_iommu_group groups[IOVM_INFO_MAX_GROUPS];

	bool vfio;           /* /dev/vfio/vfio */
	bool iommufd;        /* /dev/iommu */
	unsigned nr_vfio_groups;   /* /dev/vfio/N */
	unsigned nr_vfio_cdevs;    /* /dev/vfio/devices/vfioX */
	unsigned nr_vfio_pci;      /* devices bound to vfio-pci */
	char vfio_pci[IOVM_INFO_MAX_VFIO_DEVICES][16];
};

/**
 * iovm_sysinfo_get() - read what the machine offers.
 * @info: set to a new description, freed with iovm_sysinfo_free()
 *
 * Works unprivileged: what needs root is reported as unavailable.
 *
 * Thread safety: safe.
 *
 * Return: 0, -EINVAL for a NULL @info, -ENOMEM.
 */
IOVM_API int iovm_sysinfo_get(struct iovm_sysinfo **info);

/**
 * iovm_sysinfo_free() - free what iovm_sysinfo_get() returned; NULL is a no-op.
 *
 * Thread safety: no other call on @info may run or follow.
 */
IOVM_API void iovm_sysinfo_free(struct iovm_sysinfo *info);

/**
 * iovm_uffd_feature_name() - the name of userfaultfd feature bit @bit
 * ("EVENT_UNMAP"), as iovm_sysinfo.uffd_features has them.
 *
 * Thread safety: safe; no context needed.
 *
 * Return: a static string; NULL for an unknown bit.
 */
IOVM_API const char *iovm_uffd_feature_name(unsigned bit);

#ifdef __cplusplus
}
#endif

#endif /* IOVM_OS_H */
