/* SPDX-License-Identifier: MIT */
/*
 * vm_common.h - what the guest-side tests of the VM test share: checks that
 * print as they go (the console is the only output a guest has), a fatal
 * MUST, BAR0 accessors, a clock, test patterns, and finding a PCI device by
 * its IDs.
 *
 * Each test ends by printing "RESULT: PASS" or "RESULT: FAIL", which
 * vm_test.sh counts on the host side.
 */
#ifndef IOVM_VM_COMMON_H
#define IOVM_VM_COMMON_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <iovm.h>

#include "os/sysfs.h"

static int failures, checks;

/* BAR0 of the device under test, mapped by iovm_device_bar(). */
static volatile uint8_t *bar;

static inline uint32_t rd32(unsigned off)
{
	return *(volatile uint32_t *)(bar + off);
}

static inline void wr32(unsigned off, uint32_t v)
{
	*(volatile uint32_t *)(bar + off) = v;
}

static inline uint64_t rd64(unsigned off)
{
	return *(volatile uint64_t *)(bar + off);
}

static inline void wr64(unsigned off, uint64_t v)
{
	*(volatile uint64_t *)(bar + off) = v;
}

#define CHECK(cond, ...)                                                                               \
	do {                                                                                           \
		checks++;                                                                              \
		if (cond) {                                                                            \
			printf("  ok: ");                                                              \
		} else {                                                                               \
			failures++;                                                                    \
			printf("  FAIL (%s:%d): ", __FILE__, __LINE__);                                \
		}                                                                                      \
		printf(__VA_ARGS__);                                                                   \
		printf("\n");                                                                          \
		fflush(stdout);                                                                        \
	} while (0)

#define MUST(call)                                                                                     \
	do {                                                                                           \
		int ret_ = (call);                                                                     \
		if (ret_ < 0) {                                                                        \
			printf("FATAL: %s: %s (%s)\nRESULT: FAIL\n", #call, strerror(-ret_),            \
			       iovm_error_detail());                                                     \
			exit(1);                                                                       \
		}                                                                                      \
	} while (0)

static inline int vm_result(void)
{
	printf("%d checks, %d failed\nRESULT: %s\n", checks, failures, failures ? "FAIL" : "PASS");
	return failures ? 1 : 0;
}

static inline double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* A reproducible byte pattern: the host side can compute it too. */
static inline void fill(uint8_t *p, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)(seed >> 16);
	}
}

static inline bool all(const uint8_t *p, size_t n, uint8_t v)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return false;
	return true;
}

/*
 * The kernel interface the test asks for: IOVM_VM_VFIO, set by the guest's
 * init from the test's name ("edu+iommufd" runs vm_edu with
 * IOVM_VM_VFIO=vfio-iommufd), is the device spec's prefix; "vfio" (either)
 * when unset.
 */
static inline const char *vfio_prefix(void)
{
	const char *p = getenv("IOVM_VM_VFIO");

	return p && *p ? p : "vfio";
}

/* Whether the device went through the interface the test asked for, and what the kernel said of it. */
static inline void check_iommu_api(const struct iovm_device_info *di)
{
	const char *want = vfio_prefix();
	bool fd = di->iommu_api == IOVM_IOMMU_API_IOMMUFD;

	printf("  through %s\n", fd ? "iommufd (IOMMU_IOAS_MAP)" : "the VFIO group (VFIO_IOMMU_MAP_DMA)");
	if (!strcmp(want, "vfio-iommufd"))
		CHECK(fd, "iommufd, as asked (api %d)", (int)di->iommu_api);
	else if (!strcmp(want, "vfio-group"))
		CHECK(di->iommu_api == IOVM_IOMMU_API_GROUP, "the VFIO group, as asked (api %d)", (int)di->iommu_api);
	/* type1 tells its budget of entries (65535 by default); iommufd has none. */
	CHECK(di->nr_iova_ranges >= 1 && (fd ? di->dma_avail == -1 : di->dma_avail > 0),
	      "the kernel reports %u IOVA ranges and %ld mappings left", di->nr_iova_ranges, (long)di->dma_avail);
}

/* "<prefix>:<BDF>" of the first PCI device with these IDs. */
static inline int find_pci(unsigned vendor, unsigned device, char *spec, size_t len)
{
	char bdf[256];

	if (sysfs_pci_find(vendor, device, bdf, sizeof(bdf)))
		return -ENODEV;
	snprintf(spec, len, "%s:%s", vfio_prefix(), bdf);
	return 0;
}

/* What the device's domain left in the kernel's IOMMU, then detached. */
static inline void kernel_report_detach(struct iovm_device *dev)
{
	struct iovm_device_info di;

	MUST(iovm_device_query(dev, &di));
	printf("  kernel: %lu entries, %lu maps, %lu unmaps, %lu splits\n", (unsigned long)di.kernel_mappings,
	       (unsigned long)di.kernel_maps, (unsigned long)di.kernel_unmaps, (unsigned long)di.kernel_splits);
	MUST(iovm_device_detach(dev, 0));
}

/* The smallest dma_bits that covers every IOVA range the kernel reports. */
static inline unsigned kernel_dma_bits(const struct iovm_device_info *di)
{
	uint64_t last = 0;
	unsigned bits = 32;

	for (unsigned i = 0; i < di->nr_iova_ranges; i++)
		if (di->iova_ranges[i].last > last)
			last = di->iova_ranges[i].last;
	while (bits < 48 && last >> bits)
		bits++;
	return bits;
}

static inline bool in_kernel_ranges(const struct iovm_device_info *di, uint64_t iova, uint64_t len)
{
	for (unsigned i = 0; i < di->nr_iova_ranges; i++)
		if (iova >= di->iova_ranges[i].start && iova + len - 1 <= di->iova_ranges[i].last)
			return true;
	return di->nr_iova_ranges == 0;
}

#endif
