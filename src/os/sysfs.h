/* SPDX-License-Identifier: MIT */
/*
 * sysfs.h - reading the small text files of /sys and /proc.
 */
#ifndef IOVM_OS_SYSFS_H
#define IOVM_OS_SYSFS_H

#include <stddef.h>
#include <stdint.h>

/* Read a whole small file into @buf (NUL-terminated, trailing newline cut). */
int sysfs_read(const char *path, char *buf, size_t len);

/* Read one unsigned decimal number. */
int sysfs_read_u64(const char *path, uint64_t *val);

/*
 * The first PCI device (by /sys/bus/pci/devices order) with @vendor:@device
 * IDs: its address ("0000:00:03.0") in @bdf. -ENODEV when there is none.
 * For the VM test and the VFIO benchmark, which look for QEMU's devices.
 */
int sysfs_pci_find(unsigned vendor, unsigned device, char *bdf, size_t len);

/* Write a string; for the hugepage pool counters the tests reserve. */
int sysfs_write(const char *path, const char *val);

/*
 * Parse a kernel list such as "0-3,8,10-11" (cpulist, node online): call @fn
 * for each number; returns how many there were, or -EINVAL.
 */
int sysfs_parse_list(const char *list, void (*fn)(unsigned n, void *arg), void *arg);

#endif /* IOVM_OS_SYSFS_H */
