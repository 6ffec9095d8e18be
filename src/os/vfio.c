/* SPDX-License-Identifier: MIT */
/*
 * vfio.c - PCI devices through VFIO's group and container interface
 * (type1v2), the one every kernel since 3.x has; and its no-IOMMU mode.
 * Binding to vfio-pci, regions, config space and interrupts serve the
 * iommufd path too (iommufd.c): they need only the device's fd.
 *
 * A container's IOMMU says which IOVAs it can map (the CAP_IOVA_RANGE
 * capability: on x86 the MSI window at 0xfee00000 is a hole, and the
 * address width bounds the rest) and how many mappings it will still take
 * (CAP_DMA_AVAIL: the dma_entry_limit parameter, 65535 by default). Each
 * VFIO_IOMMU_MAP_DMA is one entry however large, which is why the layer
 * above coalesces.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/vfio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/fault_inject.h"
#include "os/vfio.h"

static int write_str(const char *path, const char *s)
{
	int fd = fi_open(path, O_WRONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, s, strlen(s)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

/* The driver @bdf is bound to, in @name; "" when none. */
static int driver_of(const char *bdf, char *name, size_t len)
{
	char path[PATH_MAX], link[PATH_MAX];
	ssize_t n;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver", bdf);
	n = readlink(path, link, sizeof(link) - 1);
	name[0] = 0;
	if (n < 0)
		return errno == ENOENT ? 0 : -errno;
	link[n] = 0;
	{
		const char *base = strrchr(link, '/') ? strrchr(link, '/') + 1 : link;
		size_t bl = strlen(base);

		if (bl >= len)
			return -ENAMETOOLONG;
		memcpy(name, base, bl + 1);
	}
	return 0;
}

int os_vfio_bind(const char *bdf)
{
	char path[PATH_MAX], drv[64];
	int ret;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s", bdf);
	if (access(path, F_OK))
		return -ENOENT;
	ret = driver_of(bdf, drv, sizeof(drv));
	if (ret)
		return ret;
	if (!strcmp(drv, "vfio-pci"))
		return 0;
	if (drv[0]) {
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver/unbind", bdf);
		if ((ret = write_str(path, bdf)))
			return ret;
	}
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver_override", bdf);
	if ((ret = write_str(path, "vfio-pci")))
		return ret;
	/* vfio-pci may not be loaded: probing then binds nothing, which is told below. */
	write_str("/sys/bus/pci/drivers_probe", bdf);
	ret = driver_of(bdf, drv, sizeof(drv));
	if (ret)
		return ret;
	return strcmp(drv, "vfio-pci") ? -ENODEV : 0;
}

static int group_of(const char *bdf)
{
	char path[PATH_MAX], link[PATH_MAX];
	ssize_t n;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group", bdf);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return -errno;
	link[n] = 0;
	return atoi(strrchr(link, '/') ? strrchr(link, '/') + 1 : link);
}

/* The container's IOMMU information: page sizes, usable ranges, mappings left. */
static int read_iommu_info(struct os_vfio *v)
{
	struct vfio_iommu_type1_info *info;
	size_t size = sizeof(*info);
	int ret = 0;

	info = fi_calloc(1, size);
	if (!info)
		return -ENOMEM;
	info->argsz = (uint32_t)size;
	if (fi_ioctl(v->container, VFIO_IOMMU_GET_INFO, info))
		goto fail;
	if (info->argsz > size) {
		/* The capabilities follow: ask again with room for them. */
		struct vfio_iommu_type1_info *bigger;

		size = info->argsz;
		bigger = fi_realloc(info, size);
		if (!bigger) {
			ret = -ENOMEM;
			goto out;
		}
		info = bigger;
		memset(info, 0, size);
		info->argsz = (uint32_t)size;
		if (fi_ioctl(v->container, VFIO_IOMMU_GET_INFO, info))
			goto fail;
	}
	v->pgsizes = info->iova_pgsizes;
	v->dma_avail = -1;
	if ((info->flags & VFIO_IOMMU_INFO_CAPS) && info->cap_offset) {
		for (uint32_t off = info->cap_offset; off && off + sizeof(struct vfio_info_cap_header) <= size;) {
			struct vfio_info_cap_header *h = (void *)((char *)info + off);

			if (h->id == VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
				struct vfio_iommu_type1_info_cap_iova_range *r = (void *)h;

				/* The kernel's ranges are inclusive ("end" is the last byte). */
				for (uint32_t i = 0; i < r->nr_iovas && v->nr_ranges < OS_VFIO_MAX_RANGES; i++)
					v->ranges[v->nr_ranges++] =
						os_vfio_range_of(r->iova_ranges[i].start, r->iova_ranges[i].end);
			} else if (h->id == VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL) {
				v->dma_avail = ((struct vfio_iommu_type1_info_dma_avail *)h)->avail;
			}
			off = h->next;
		}
	}
	goto out;
fail:
	ret = -errno;
out:
	free(info);
	return ret;
}

/* The device's regions and interrupts, and where its config space is. */
static int device_info(struct os_vfio *v)
{
	struct vfio_device_info di = { .argsz = sizeof(di) };
	struct vfio_region_info cfg = { .argsz = sizeof(cfg), .index = VFIO_PCI_CONFIG_REGION_INDEX };

	if (fi_ioctl(v->device, VFIO_DEVICE_GET_INFO, &di) || fi_ioctl(v->device, VFIO_DEVICE_GET_REGION_INFO, &cfg))
		return -errno;
	v->nr_regions = di.num_regions;
	v->nr_irqs = di.num_irqs;
	v->cfg_off = cfg.offset;
	return 0;
}

int os_vfio_open(const char *bdf, enum os_vfio_api api, struct os_vfio *v)
{
	struct vfio_group_status st = { .argsz = sizeof(st) };
	char path[64];
	int ret;

	*v = (struct os_vfio){ .api = OS_VFIO_GROUP, .container = -1, .group = -1, .device = -1, .iommufd = -1,
			       .dma_avail = -1 };
	if (strlen(bdf) >= sizeof(v->bdf) || api > OS_VFIO_IOMMUFD)
		return -EINVAL;
	snprintf(v->bdf, sizeof(v->bdf), "%s", bdf);
	ret = os_vfio_bind(bdf);
	if (ret)
		return ret;
	v->group_no = group_of(bdf);
	if (v->group_no < 0)
		return v->group_no;
	if (api == OS_VFIO_IOMMUFD || (api == OS_VFIO_AUTO && os_iommufd_available(bdf))) {
		ret = os_iommufd_open(bdf, v);
		if (!ret)
			ret = device_info(v);
		if (ret)
			os_vfio_close(v);
		return ret;
	}
	snprintf(path, sizeof(path), "/dev/vfio/%d", v->group_no);
	v->group = fi_open(path, O_RDWR | O_CLOEXEC);
	if (v->group < 0 && errno == ENOENT) {
		/* No IOMMU for it: vfio's unsafe no-IOMMU mode, when enabled, names the group so. */
		snprintf(path, sizeof(path), "/dev/vfio/noiommu-%d", v->group_no);
		v->group = fi_open(path, O_RDWR | O_CLOEXEC);
		v->noiommu = v->group >= 0;
	}
	if (v->group < 0)
		return -errno;
	v->container = fi_open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
	ret = -errno;
	if (v->container < 0)
		goto close;
	ret = -EOPNOTSUPP;
	if (fi_ioctl(v->container, VFIO_GET_API_VERSION) != VFIO_API_VERSION)
		goto close;
	if (fi_ioctl(v->group, VFIO_GROUP_GET_STATUS, &st))
		goto errno_close;
	/* Every device of the group must be bound to VFIO (or to nothing). */
	ret = -EBUSY;
	if (!(st.flags & VFIO_GROUP_FLAGS_VIABLE))
		goto close;
	if (fi_ioctl(v->group, VFIO_GROUP_SET_CONTAINER, &v->container))
		goto errno_close;
	if (fi_ioctl(v->container, VFIO_SET_IOMMU, v->noiommu ? VFIO_NOIOMMU_IOMMU : VFIO_TYPE1v2_IOMMU))
		goto errno_close;
	if (!v->noiommu && (ret = read_iommu_info(v)))
		goto close;
	v->device = fi_ioctl(v->group, VFIO_GROUP_GET_DEVICE_FD, bdf);
	if (v->device < 0)
		goto errno_close;
	if ((ret = device_info(v)))
		goto close;
	return 0;

errno_close:
	ret = -errno;
close:
	os_vfio_close(v);
	return ret;
}

void os_vfio_close(struct os_vfio *v)
{
	if (v->device >= 0)
		close(v->device);
	/* The group leaves the container when closed; the container's mappings go with it. */
	if (v->group >= 0)
		close(v->group);
	if (v->container >= 0)
		close(v->container);
	/* Closing the iommufd frees its IOAS and every mapping in it. */
	if (v->iommufd >= 0)
		close(v->iommufd);
	v->device = v->group = v->container = v->iommufd = -1;
}

int os_vfio_dma_map(struct os_vfio *v, const void *vaddr, iova_t iova, uint64_t len, bool write)
{
	struct vfio_iommu_type1_dma_map m = {
		.argsz = sizeof(m),
		.flags = VFIO_DMA_MAP_FLAG_READ | (write ? VFIO_DMA_MAP_FLAG_WRITE : 0),
		.vaddr = (uintptr_t)vaddr,
		.iova = iova_val(iova),
		.size = len,
	};

	if (v->noiommu)
		return -EOPNOTSUPP;
	if (v->api == OS_VFIO_IOMMUFD)
		return os_iommufd_dma_map(v, vaddr, iova, len, write);
	return fi_ioctl(v->container, VFIO_IOMMU_MAP_DMA, &m) ? -errno : 0;
}

int os_vfio_dma_unmap(struct os_vfio *v, iova_t iova, uint64_t len)
{
	struct vfio_iommu_type1_dma_unmap u = { .argsz = sizeof(u), .iova = iova_val(iova), .size = len };

	if (v->noiommu)
		return -EOPNOTSUPP;
	if (v->api == OS_VFIO_IOMMUFD)
		return os_iommufd_dma_unmap(v, iova, len);
	if (ioctl(v->container, VFIO_IOMMU_UNMAP_DMA, &u))
		return -errno;
	/* The kernel unmaps whole mappings only: anything else is the caller's error. */
	return u.size == len ? 0 : -EINVAL;
}

int os_vfio_region(struct os_vfio *v, unsigned index, uint64_t *size, uint64_t *offset, bool *mmappable)
{
	struct vfio_region_info r = { .argsz = sizeof(r), .index = index };

	if (index >= v->nr_regions)
		return -EINVAL;
	if (fi_ioctl(v->device, VFIO_DEVICE_GET_REGION_INFO, &r))
		return -errno;
	*size = r.size;
	*offset = r.offset;
	*mmappable = r.flags & VFIO_REGION_INFO_FLAG_MMAP;
	return 0;
}

int os_vfio_region_map(struct os_vfio *v, unsigned index, void **ptr, uint64_t *len)
{
	uint64_t size = 0, offset = 0; /* set by os_vfio_region(); gcc -O3 cannot tell */
	bool mmappable = false;
	void *p;
	int ret = os_vfio_region(v, index, &size, &offset, &mmappable);

	if (ret)
		return ret;
	if (!size)
		return -ENOENT;
	if (!mmappable)
		return -EOPNOTSUPP;
	p = fi_mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, v->device, (off_t)offset);
	if (p == MAP_FAILED)
		return -errno;
	*ptr = p;
	*len = size;
	return 0;
}

int os_vfio_config_read(struct os_vfio *v, unsigned off, void *buf, unsigned len)
{
	ssize_t n = pread(v->device, buf, len, (off_t)(v->cfg_off + off));

	return n == (ssize_t)len ? 0 : n < 0 ? -errno : -EIO;
}

int os_vfio_config_write(struct os_vfio *v, unsigned off, const void *buf, unsigned len)
{
	ssize_t n = pwrite(v->device, buf, len, (off_t)(v->cfg_off + off));

	return n == (ssize_t)len ? 0 : n < 0 ? -errno : -EIO;
}

int os_vfio_msi(struct os_vfio *v, int eventfd)
{
	char buf[sizeof(struct vfio_irq_set) + sizeof(int32_t)];
	struct vfio_irq_set *set = (struct vfio_irq_set *)buf;
	struct vfio_irq_info ii = { .argsz = sizeof(ii), .index = VFIO_PCI_MSI_IRQ_INDEX };
	int32_t fd = eventfd;

	/* MSI if the device has it, else MSI-X. */
	if (fi_ioctl(v->device, VFIO_DEVICE_GET_IRQ_INFO, &ii) || !ii.count) {
		ii = (struct vfio_irq_info){ .argsz = sizeof(ii), .index = VFIO_PCI_MSIX_IRQ_INDEX };
		if (fi_ioctl(v->device, VFIO_DEVICE_GET_IRQ_INFO, &ii) || !ii.count)
			return -EOPNOTSUPP;
	}
	*set = (struct vfio_irq_set){ .argsz = sizeof(buf), .index = ii.index, .start = 0, .count = 1,
				      .flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER };
	if (eventfd < 0) {
		/* count 0 with DATA_NONE disables the index. */
		set->argsz = sizeof(*set);
		set->count = 0;
		set->flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER;
	} else {
		memcpy(set->data, &fd, sizeof(fd));
	}
	return fi_ioctl(v->device, VFIO_DEVICE_SET_IRQS, set) ? -errno : 0;
}
