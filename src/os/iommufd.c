/* SPDX-License-Identifier: MIT */
/*
 * iommufd.c - PCI devices through iommufd (/dev/iommu) and VFIO's device
 * cdev (/dev/vfio/devices/vfioN), the interface Linux 6.6 and later offer
 * beside the group and container (vfio.c).
 *
 * The device's cdev is bound to an iommufd, an IO address space (IOAS) is
 * allocated in it and the device attached to the IOAS; the kernel then
 * narrows the IOAS's usable ranges to what the device's IOMMU can map (the
 * MSI window becomes a hole, the address width bounds the rest), and
 * IOMMU_IOAS_MAP maps process memory at IOVAs the caller fixes. Like
 * type1, an IOAS keeps one area per map call and unmaps whole areas only;
 * unlike type1 it sets no budget on the number of areas.
 *
 * Debian 12's kernel headers (6.1) predate iommufd's VFIO binding, so the
 * part of the ABI used here is written out below, with its numbers and
 * sizes checked against the kernel's uapi documentation.
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/vfio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "base/fault_inject.h"
#include "os/vfio.h"

/* include/uapi/linux/iommufd.h */
#define OS_IOMMUFD_TYPE ';'
#define OS_IOMMU_IOAS_ALLOC _IO(OS_IOMMUFD_TYPE, 0x81)
#define OS_IOMMU_IOAS_IOVA_RANGES _IO(OS_IOMMUFD_TYPE, 0x84)
#define OS_IOMMU_IOAS_MAP _IO(OS_IOMMUFD_TYPE, 0x85)
#define OS_IOMMU_IOAS_UNMAP _IO(OS_IOMMUFD_TYPE, 0x86)
#define OS_IOMMU_IOAS_MAP_FIXED_IOVA (1u << 0)
#define OS_IOMMU_IOAS_MAP_WRITEABLE (1u << 1)
#define OS_IOMMU_IOAS_MAP_READABLE (1u << 2)

struct os_iommu_ioas_alloc {
	uint32_t size;
	uint32_t flags;
	uint32_t out_ioas_id;
};

struct os_iommu_iova_range {
	uint64_t start, last;
};

struct os_iommu_ioas_iova_ranges {
	uint32_t size;
	uint32_t ioas_id;
	uint32_t num_iovas;
	uint32_t reserved;
	uint64_t allowed_iovas;
	uint64_t out_iova_alignment;
};

struct os_iommu_ioas_map {
	uint32_t size;
	uint32_t flags;
	uint32_t ioas_id;
	uint32_t reserved;
	uint64_t user_va;
	uint64_t length;
	uint64_t iova;
};

struct os_iommu_ioas_unmap {
	uint32_t size;
	uint32_t ioas_id;
	uint64_t iova;
	uint64_t length;
};

/* include/uapi/linux/vfio.h, 6.6 and later: the cdev's binding to an iommufd. */
#define OS_VFIO_DEVICE_BIND_IOMMUFD _IO(VFIO_TYPE, VFIO_BASE + 18)
#define OS_VFIO_DEVICE_ATTACH_IOMMUFD_PT _IO(VFIO_TYPE, VFIO_BASE + 19)

struct os_vfio_device_bind_iommufd {
	uint32_t argsz;
	uint32_t flags;
	int32_t iommufd;
	uint32_t out_devid;
};

struct os_vfio_device_attach_iommufd_pt {
	uint32_t argsz;
	uint32_t flags;
	uint32_t pt_id;
};

/* The kernel checks each size against the first version of the struct: these are those sizes. */
static_assert(sizeof(struct os_iommu_ioas_alloc) == 12, "iommu_ioas_alloc");
static_assert(sizeof(struct os_iommu_ioas_iova_ranges) == 32, "iommu_ioas_iova_ranges");
static_assert(sizeof(struct os_iommu_ioas_map) == 40, "iommu_ioas_map");
static_assert(sizeof(struct os_iommu_ioas_unmap) == 24, "iommu_ioas_unmap");
static_assert(sizeof(struct os_vfio_device_bind_iommufd) == 16, "vfio_device_bind_iommufd");
static_assert(sizeof(struct os_vfio_device_attach_iommufd_pt) == 12, "vfio_device_attach_iommufd_pt");

/* The number N of @bdf's VFIO cdev, /dev/vfio/devices/vfioN; -ENOENT without one. */
static int cdev_of(const char *bdf)
{
	char path[PATH_MAX];
	struct dirent *d;
	int n = -ENOENT;
	DIR *dir;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/vfio-dev", bdf);
	dir = opendir(path);
	if (!dir)
		return -ENOENT;
	while ((d = readdir(dir)))
		if (!strncmp(d->d_name, "vfio", 4) && d->d_name[4] >= '0' && d->d_name[4] <= '9') {
			n = atoi(d->d_name + 4);
			break;
		}
	closedir(dir);
	return n;
}

bool os_iommufd_available(const char *bdf)
{
	char path[PATH_MAX];

	/* Behind an IOMMU (no-IOMMU devices have no iommu link), with a cdev, and iommufd built. */
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu", bdf);
	return !access("/dev/iommu", F_OK) && !access(path, F_OK) && cdev_of(bdf) >= 0;
}

/* The IOAS's usable IOVA ranges, now that the device narrowed them. */
static int read_ranges(struct os_vfio *v)
{
	struct os_iommu_iova_range r[OS_VFIO_MAX_RANGES];
	struct os_iommu_ioas_iova_ranges q = {
		.size = sizeof(q),
		.ioas_id = v->ioas,
		.num_iovas = OS_VFIO_MAX_RANGES,
		.allowed_iovas = (uintptr_t)r,
	};

	if (fi_ioctl(v->iommufd, OS_IOMMU_IOAS_IOVA_RANGES, &q)) {
		/* More ranges than kept: the first OS_VFIO_MAX_RANGES are enough to allocate from. */
		if (errno != EMSGSIZE)
			return -errno;
		q.num_iovas = OS_VFIO_MAX_RANGES;
	}
	v->nr_ranges = q.num_iovas < OS_VFIO_MAX_RANGES ? q.num_iovas : OS_VFIO_MAX_RANGES;
	for (unsigned i = 0; i < v->nr_ranges; i++)
		v->ranges[i] = os_vfio_range_of(r[i].start, r[i].last);
	/* iommufd says only the smallest page it maps; that is all iova_pgsizes can tell. */
	v->pgsizes = q.out_iova_alignment;
	return 0;
}

int os_iommufd_open(const char *bdf, struct os_vfio *v)
{
	struct os_vfio_device_bind_iommufd bind = { .argsz = sizeof(bind) };
	struct os_vfio_device_attach_iommufd_pt attach = { .argsz = sizeof(attach) };
	struct os_iommu_ioas_alloc alloc = { .size = sizeof(alloc) };
	char path[64];
	int n = cdev_of(bdf);

	if (n < 0)
		return n;
	v->iommufd = fi_open("/dev/iommu", O_RDWR | O_CLOEXEC);
	if (v->iommufd < 0)
		return -errno;
	snprintf(path, sizeof(path), "/dev/vfio/devices/vfio%d", n);
	v->device = fi_open(path, O_RDWR | O_CLOEXEC);
	if (v->device < 0)
		return -errno;
	/* Nothing but binding is allowed on the cdev before it is bound. */
	bind.iommufd = v->iommufd;
	if (fi_ioctl(v->device, OS_VFIO_DEVICE_BIND_IOMMUFD, &bind))
		return -errno;
	v->devid = bind.out_devid;
	if (fi_ioctl(v->iommufd, OS_IOMMU_IOAS_ALLOC, &alloc))
		return -errno;
	v->ioas = alloc.out_ioas_id;
	attach.pt_id = v->ioas;
	if (fi_ioctl(v->device, OS_VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach))
		return -errno;
	v->api = OS_VFIO_IOMMUFD;
	/* No budget on areas: dma_avail stays "not said". */
	return read_ranges(v);
}

int os_iommufd_dma_map(struct os_vfio *v, const void *vaddr, iova_t iova, uint64_t len, bool write)
{
	struct os_iommu_ioas_map m = {
		.size = sizeof(m),
		.flags = OS_IOMMU_IOAS_MAP_FIXED_IOVA | OS_IOMMU_IOAS_MAP_READABLE |
			 (write ? OS_IOMMU_IOAS_MAP_WRITEABLE : 0),
		.ioas_id = v->ioas,
		.user_va = (uintptr_t)vaddr,
		.length = len,
		.iova = iova_val(iova),
	};

	return fi_ioctl(v->iommufd, OS_IOMMU_IOAS_MAP, &m) ? -errno : 0;
}

int os_iommufd_dma_unmap(struct os_vfio *v, iova_t iova, uint64_t len)
{
	struct os_iommu_ioas_unmap u = { .size = sizeof(u), .ioas_id = v->ioas, .iova = iova_val(iova), .length = len };

	/* ENOENT: an area straddles an end of the range (iommufd splits none). */
	if (ioctl(v->iommufd, OS_IOMMU_IOAS_UNMAP, &u))
		return errno == ENOENT ? -EINVAL : -errno;
	return u.length == len ? 0 : -EINVAL;
}
