/* SPDX-License-Identifier: MIT */
/*
 * vfio.c - a real PCI device through VFIO ("vfio:0000:00:03.0"): its
 * domain is an iovm managed domain whose mappings are mirrored into the
 * kernel's IOMMU (VFIO_IOMMU_MAP_DMA or IOMMU_IOAS_MAP of the memory's
 * process address), at IOVAs iovm's allocator picks inside the ranges the
 * kernel reports.
 *
 * The kernel's type1 IOMMU keeps one entry per MAP_DMA, however large, up
 * to a budget (65535 by default), and unmaps only whole entries; an
 * iommufd IOAS keeps one area per IOMMU_IOAS_MAP, without a budget, and
 * unmaps whole areas only too. So each
 * run the domain hands over (contiguous in IOVA and in the process's
 * address space: a heap commit, a buffer mapped at once, a registration,
 * however scattered physically) is one entry; the mirror keeps its own
 * index of them, and does a partial unmap by unmapping the entries it cuts
 * and mapping their remains again. Entries are never merged after the
 * fact: merging means unmapping a live entry, and a device's DMA through it
 * would fault in between.
 *
 * Locks: vfio_dev.lock protects the index; it nests inside whatever the
 * domain's map and unmap paths hold.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/compiler.h"
#include "base/ctx.h"
#include "base/error.h"
#include "base/fault_inject.h"
#include "base/itree.h"
#include "base/lock.h"
#include "base/log.h"
#include "dev/dev_internal.h"
#include "iommu/iommu.h"
#include "os/vfio.h"
#include "phys/phys.h"

/* A mapping the kernel holds: [entry_start(), + entry_len()) of IOVA, from @va. */
struct kentry {
	struct itree_node node;
	uintptr_t va;
	bool write;
};

struct vfio_dev {
	struct os_vfio os;
	struct iovm_device *dev;
	struct iovm_domain *dom;     /* attached (PASID 0 only) */
	struct mutex lock;
	struct itree entries;        /* under lock */
	uint64_t nr_entries;         /* under lock */
	uint64_t maps, unmaps, splits; /* under lock: kernel calls */
	void *bars[6];               /* mmapped on first use; under lock */
	uint64_t bar_len[6];
};

static iova_t entry_start(const struct kentry *e)
{
	return iova_make(e->node.start);
}

static uint64_t entry_len(const struct kentry *e)
{
	return itree_node_len(&e->node);
}

/* Where @e ends, exclusive: IOVAs stay below 2^48, so it never wraps. */
static uint64_t entry_end(const struct kentry *e)
{
	return e->node.start + entry_len(e);
}

/* Map [iova, +len) from @va in the kernel, and index it. Needs lock. */
static int kmap(struct vfio_dev *v, iova_t iova, uintptr_t va, uint64_t len, bool write)
{
	struct kentry *e = fi_calloc(1, sizeof(*e));
	int ret;

	lock_assert_held(&v->lock);
	if (!e)
		return -ENOMEM;
	ret = os_vfio_dma_map(&v->os, (void *)va, iova, len, write);
	if (ret) {
		free(e);
		return err_detail(ret, IOVM_LOG_DEBUG, "vfio: MAP_DMA of %#lx bytes at IOVA %#lx: %s",
				  (unsigned long)len, (unsigned long)iova_val(iova), strerror(-ret));
	}
	itree_node_set(&e->node, iova_val(iova), len);
	e->va = va;
	e->write = write;
	itree_insert(&v->entries, &e->node);
	v->nr_entries++;
	v->maps++;
	return 0;
}

/* Forget @e, which the kernel no longer holds. Needs lock. */
static void forget(struct vfio_dev *v, struct kentry *e)
{
	lock_assert_held(&v->lock);
	itree_remove(&v->entries, &e->node);
	v->nr_entries--;
	free(e);
}

/* Unmap and forget @e. Needs lock. */
static void kunmap(struct vfio_dev *v, struct kentry *e)
{
	int ret = os_vfio_dma_unmap(&v->os, entry_start(e), entry_len(e));

	lock_assert_held(&v->lock);
	if (ret)
		log_warn("vfio: UNMAP_DMA at IOVA %#lx: %s", (unsigned long)e->node.start, strerror(-ret));
	v->unmaps++;
	forget(v, e);
}

/* The mirror's map: one entry (iovm's side gathers runs contiguous in the process's address space). */
static int mirror_map(void *arg, iova_t iova, void *va, uint64_t len, bool write)
{
	struct vfio_dev *v = arg;
	int ret;

	mutex_lock(&v->lock);
	ret = kmap(v, iova, (uintptr_t)va, len, write);
	mutex_unlock(&v->lock);
	return ret;
}

/*
 * The mirror's unmap: entries the range cuts are unmapped alone and their
 * remains mapped again; those wholly inside go in one UNMAP_DMA (type1
 * takes any range that cuts no entry), which is what a deferred flush of
 * many adjacent ranges saves.
 */
static void mirror_unmap(void *arg, iova_t start, uint64_t len)
{
	struct vfio_dev *v = arg;
	/* The range's bounds, for the arithmetic of cutting entries: below 2^48, no wrap. */
	uint64_t iova = iova_val(start), end = iova + len;
	struct itree_node *n;
	int ret;

	mutex_lock(&v->lock);
	for (int edge = 0; edge < 2; edge++) {
		uint64_t at = edge ? end - 1 : iova;
		struct kentry e;

		n = itree_first_in(&v->entries, at, 1);
		if (!n || (n->start >= iova && entry_end(container_of(n, struct kentry, node)) <= end))
			continue;
		e = *container_of(n, struct kentry, node);
		kunmap(v, container_of(n, struct kentry, node));
		/*
		 * Type1 unmaps whole entries only: the parts outside the range go
		 * back as entries of their own. Between the two calls they are
		 * unmapped for the device: a DMA to them then faults. A partial
		 * unmap is thus safe only while the device leaves the rest of
		 * the entry alone. The heap never asks for one: it gives memory
		 * back in whole commits, each of which is one entry.
		 */
		if (e.node.start < iova) {
			v->splits++;
			kmap(v, entry_start(&e), e.va, iova - e.node.start, e.write);
		}
		if (entry_end(&e) > end) {
			v->splits++;
			kmap(v, iova_make(end), e.va + (end - e.node.start), entry_end(&e) - end, e.write);
		}
	}
	if (itree_first_in(&v->entries, iova, len)) {
		ret = os_vfio_dma_unmap(&v->os, start, len);
		if (ret)
			log_warn("vfio: UNMAP_DMA of %#lx bytes at %#lx: %s", (unsigned long)len, (unsigned long)iova,
				 strerror(-ret));
		v->unmaps++;
		while ((n = itree_first_in(&v->entries, iova, len)))
			forget(v, container_of(n, struct kentry, node));
	}
	mutex_unlock(&v->lock);
}

static const struct iommu_mirror_ops vfio_mirror = {
	.map = mirror_map,
	.unmap = mirror_unmap,
};

int vfio_dev_open(struct iovm_device *dev, const char *bdf, enum os_vfio_api api)
{
	struct vfio_dev *v = fi_calloc(1, sizeof(*v));
	int ret;

	if (!v)
		return -ENOMEM;
	ret = os_vfio_open(bdf, api, &v->os);
	if (ret) {
		free(v);
		return err_detail(ret, IOVM_LOG_NOTICE, "vfio: cannot open %s%s: %s", bdf,
				  api == OS_VFIO_IOMMUFD ? " through iommufd" : "", strerror(-ret));
	}
	v->dev = dev;
	mutex_init(&v->lock);
	itree_init(&v->entries);
	dev->vfio = v;
	return 0;
}

static void drop_all(struct vfio_dev *v)
{
	struct itree_node *n;

	mutex_lock(&v->lock);
	while ((n = itree_min(&v->entries)))
		kunmap(v, container_of(n, struct kentry, node));
	mutex_unlock(&v->lock);
}

int vfio_dev_attach(struct iovm_device *dev, struct iovm_domain *dom, uint32_t pasid)
{
	struct vfio_dev *v = dev->vfio;
	struct iommu_iova_range usable[OS_VFIO_MAX_RANGES];
	int ret;

	if (pasid)
		return err_detail(-EOPNOTSUPP, IOVM_LOG_DEBUG, "vfio: a device's PASIDs are not supported");
	if (v->dom)
		return -EBUSY;
	if (v->os.noiommu)
		return err_detail(-EOPNOTSUPP, IOVM_LOG_DEBUG,
				  "vfio: no IOMMU: the device uses host physical addresses, not a domain");
	for (unsigned i = 0; i < v->os.nr_ranges; i++)
		usable[i] = (struct iommu_iova_range){ .start = v->os.ranges[i].start, .len = v->os.ranges[i].len };
	ret = iommu_domain_mirror(dom, &vfio_mirror, v, usable, v->os.nr_ranges);
	if (ret) {
		drop_all(v);
		return err_detail(ret, IOVM_LOG_DEBUG, "vfio: the domain cannot be mirrored into the kernel: %s",
				  strerror(-ret));
	}
	v->dom = dom;
	return 0;
}

int vfio_dev_detach(struct iovm_device *dev, uint32_t pasid)
{
	struct vfio_dev *v = dev->vfio;

	if (pasid || !v->dom)
		return -ENOENT;
	iommu_domain_unmirror(v->dom);
	drop_all(v);
	v->dom = NULL;
	return 0;
}

void vfio_dev_close(struct iovm_device *dev)
{
	struct vfio_dev *v = dev->vfio;

	if (!v)
		return;
	if (v->dom)
		vfio_dev_detach(dev, 0);
	for (unsigned i = 0; i < 6; i++)
		if (v->bars[i])
			munmap(v->bars[i], v->bar_len[i]);
	os_vfio_close(&v->os);
	mutex_destroy(&v->lock);
	free(v);
	dev->vfio = NULL;
}

IOVM_API int iovm_device_bar(struct iovm_device *dev, unsigned bar, void **ptr, size_t *len)
{
	struct vfio_dev *v;
	int ret = 0;

	err_enter();
	if (!dev || bar >= 6 || !ptr || !len)
		return err_inval("!dev || bar >= 6 || !ptr || !len");
	if (!(v = dev->vfio))
		return -EOPNOTSUPP;
	mutex_lock(&v->lock);
	if (!v->bars[bar])
		ret = os_vfio_region_map(&v->os, bar, &v->bars[bar], &v->bar_len[bar]);
	if (!ret) {
		*ptr = v->bars[bar];
		*len = v->bar_len[bar];
	}
	mutex_unlock(&v->lock);
	return ret;
}

static bool config_args_ok(unsigned off, unsigned len)
{
	return (len == 1 || len == 2 || len == 4) && off % len == 0 && off < 4096;
}

IOVM_API int iovm_device_config_read(struct iovm_device *dev, unsigned off, void *buf, unsigned len)
{
	err_enter();
	if (!dev || !buf || !config_args_ok(off, len))
		return err_inval("!dev || !buf || !config_args_ok(off, len)");
	if (!dev->vfio)
		return -EOPNOTSUPP;
	return os_vfio_config_read(&dev->vfio->os, off, buf, len);
}

IOVM_API int iovm_device_config_write(struct iovm_device *dev, unsigned off, const void *buf, unsigned len)
{
	err_enter();
	if (!dev || !buf || !config_args_ok(off, len))
		return err_inval("!dev || !buf || !config_args_ok(off, len)");
	if (!dev->vfio)
		return -EOPNOTSUPP;
	return os_vfio_config_write(&dev->vfio->os, off, buf, len);
}

IOVM_API int iovm_device_msi(struct iovm_device *dev, int eventfd)
{
	err_enter();
	if (!dev || eventfd < -1)
		return err_inval("!dev || eventfd < -1");
	if (!dev->vfio)
		return -EOPNOTSUPP;
	return os_vfio_msi(&dev->vfio->os, eventfd);
}

IOVM_API int iovm_device_query(struct iovm_device *dev, struct iovm_device_info *info)
{
	struct vfio_dev *v;

	err_enter();
	if (!dev || !info)
		return err_inval("!dev || !info");
	*info = (struct iovm_device_info){ .kind = IOVM_DEVICE_SW, .iommu_group = -1, .dma_avail = -1 };
	dev_fault_counts(dev, &info->unattached_faults, &info->unattached_faults_dropped);
	if (dev->verbs)
		info->kind = IOVM_DEVICE_VERBS;
	if (!(v = dev->vfio))
		return 0;
	info->kind = v->os.noiommu ? IOVM_DEVICE_VFIO_NOIOMMU : IOVM_DEVICE_VFIO;
	info->iommu_api = v->os.api == OS_VFIO_IOMMUFD ? IOVM_IOMMU_API_IOMMUFD : IOVM_IOMMU_API_GROUP;
	info->iommu_group = v->os.group_no;
	info->iova_pgsizes = v->os.pgsizes;
	info->nr_iova_ranges = MIN(v->os.nr_ranges, IOVM_DEVICE_MAX_RANGES);
	/* The public structure says ranges inclusive, as the kernel does. */
	for (unsigned i = 0; i < info->nr_iova_ranges; i++) {
		info->iova_ranges[i].start = iova_val(v->os.ranges[i].start);
		info->iova_ranges[i].last = iova_val(v->os.ranges[i].start) + (v->os.ranges[i].len - 1);
	}
	mutex_lock(&v->lock);
	info->kernel_mappings = v->nr_entries;
	/* What the kernel said at open, less what the mirror took since. */
	info->dma_avail = v->os.dma_avail < 0 ? -1 : v->os.dma_avail - (int64_t)v->nr_entries;
	info->kernel_maps = v->maps;
	info->kernel_unmaps = v->unmaps;
	info->kernel_splits = v->splits;
	mutex_unlock(&v->lock);
	return 0;
}
