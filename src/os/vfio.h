/* SPDX-License-Identifier: MIT */
/*
 * vfio.h - a PCI device through Linux VFIO: bound to vfio-pci, then either
 * its group in a type1v2 container (or in no-IOMMU mode; vfio.c) or its
 * cdev bound to an iommufd IO address space (iommufd.c); its IOMMU's
 * usable IOVA ranges and mapping budget, DMA mappings, regions (BARs,
 * config space) and MSI through an eventfd. The OS layer: no iovm object
 * in here.
 */
#ifndef IOVM_OS_VFIO_H
#define IOVM_OS_VFIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/addr.h"

/* Usable IOVA ranges a container reports: a handful on every IOMMU seen. */
#define OS_VFIO_MAX_RANGES 16

/* [start, start + len), len > 0; it may end at 2^64 (start + len wraps to 0). */
struct os_vfio_range {
	iova_t start;
	uint64_t len;
};

/*
 * A range as the kernel says it, inclusive [start, last], as iovm says
 * ranges. The whole space, [0, 2^64 - 1], has no length in 64 bits: it
 * loses its last page, which no domain reaches (IOVAs end at 2^48).
 */
static inline struct os_vfio_range os_vfio_range_of(uint64_t start, uint64_t last)
{
	uint64_t len = last - start + 1;

	return (struct os_vfio_range){ .start = iova_make(start), .len = len ? len : UINT64_MAX - 0xfff };
}

/* How the device's DMA mappings reach the kernel. */
enum os_vfio_api {
	OS_VFIO_AUTO,      /* iommufd where the kernel and device have it, else the group */
	OS_VFIO_GROUP,     /* the group in a type1v2 (or no-IOMMU) container */
	OS_VFIO_IOMMUFD,   /* the device's cdev in an iommufd IOAS */
};

struct os_vfio {
	enum os_vfio_api api;      /* GROUP or IOMMUFD once open */
	int container, group, device;
	int iommufd;               /* -1 in GROUP mode */
	uint32_t ioas, devid;      /* IOMMUFD mode: the IO address space, the device's bond */
	int group_no;
	bool noiommu;              /* no IOMMU: device addresses are host physical addresses */
	char bdf[16];              /* dddd:bb:dd.f */
	uint64_t pgsizes;          /* IOVA page sizes the IOMMU maps */
	struct os_vfio_range ranges[OS_VFIO_MAX_RANGES];
	unsigned nr_ranges;        /* 0: the kernel said nothing (take all of 0..2^48) */
	int64_t dma_avail;         /* mappings the container may still make; -1: not said */
	uint64_t cfg_off;          /* the config space region's offset in the device file */
	unsigned nr_regions, nr_irqs;
};

/*
 * os_vfio_bind() - bind PCI device @bdf to vfio-pci (driver_override, then
 * drivers_probe), unless it is bound already. 0, -ENOENT without such a
 * device, -errno of sysfs otherwise.
 */
int os_vfio_bind(const char *bdf);

/*
 * os_vfio_open() - bind @bdf; in GROUP mode open its group, put it in a new
 * type1v2 container (or a no-IOMMU one where the kernel has no IOMMU for it
 * and allows that) and open the device; in IOMMUFD mode bind its cdev to a
 * new iommufd and attach it to an IOAS of its own. Either way read the
 * IOMMU's usable ranges. AUTO takes IOMMUFD where os_iommufd_available().
 */
int os_vfio_open(const char *bdf, enum os_vfio_api api, struct os_vfio *v);
void os_vfio_close(struct os_vfio *v);

/* iommufd.c: whether @bdf (bound to vfio-pci) can go through iommufd. */
bool os_iommufd_available(const char *bdf);
/* iommufd.c: the IOMMUFD half of os_vfio_open(); @v's fds are closed by os_vfio_close() on failure. */
int os_iommufd_open(const char *bdf, struct os_vfio *v);
int os_iommufd_dma_map(struct os_vfio *v, const void *vaddr, iova_t iova, uint64_t len, bool write);
int os_iommufd_dma_unmap(struct os_vfio *v, iova_t iova, uint64_t len);

/* os_vfio_dma_map() - map [vaddr, +len) of the process at @iova; the kernel pins the pages. */
int os_vfio_dma_map(struct os_vfio *v, const void *vaddr, iova_t iova, uint64_t len, bool write);
/* os_vfio_dma_unmap() - unmap [iova, +len), which must cover whole mappings. */
int os_vfio_dma_unmap(struct os_vfio *v, iova_t iova, uint64_t len);

/* os_vfio_region() - a region's size, offset in the device file and whether it may be mmapped. */
int os_vfio_region(struct os_vfio *v, unsigned index, uint64_t *size, uint64_t *offset, bool *mmappable);
/* os_vfio_region_map() - mmap region @index (a BAR) whole. */
int os_vfio_region_map(struct os_vfio *v, unsigned index, void **ptr, uint64_t *len);

/* Config space: @len of 1, 2 or 4 bytes at @off. */
int os_vfio_config_read(struct os_vfio *v, unsigned off, void *buf, unsigned len);
int os_vfio_config_write(struct os_vfio *v, unsigned off, const void *buf, unsigned len);

/*
 * os_vfio_msi() - deliver the device's MSI vector 0 (MSI-X where it has
 * only that) to @eventfd; -1 turns it off.
 */
int os_vfio_msi(struct os_vfio *v, int eventfd);

#endif /* IOVM_OS_VFIO_H */
