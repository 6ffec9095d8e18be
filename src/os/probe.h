/* SPDX-License-Identifier: MIT */
/*
 * probe.h - what the sysinfo needs from the rest of the machine: CPUs, the
 * physical address width, IOMMU groups, VFIO and iommufd.
 */
#ifndef IOVM_OS_PROBE_H
#define IOVM_OS_PROBE_H

#include <iovm/os.h>

/* Host physical address bits ("address sizes" of /proc/cpuinfo), 0 if unknown. */
unsigned os_phys_addr_bits(void);

void os_probe_cpus(struct iovm_sysinfo *info);
void os_probe_iommu(struct iovm_sysinfo *info);

#endif /* IOVM_OS_PROBE_H */
