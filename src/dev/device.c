/* SPDX-License-Identifier: MIT */
/*
 * device.c - opening devices and attaching them to domains.
 *
 * "sw" is the software DMA engine: a device whose accesses all go through
 * iovm's IOMMU, the reference device for tests and benchmarks.
 * "vfio:<PCI address>" is a real PCI device through VFIO (vfio.c), by
 * iommufd where the kernel has it and by its group otherwise;
 * "vfio-group:" and "vfio-iommufd:" ask for one of the two.
 * "verbs:<name>" is an RDMA device through rdma-core (verbs.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/compiler.h"
#include "base/ctx.h"
#include "base/error.h"
#include "base/fault_inject.h"
#include "base/lock.h"
#include "base/log.h"
#include "dev/dev.h"
#include "dev/dev_internal.h"

int dev_create(struct iovm_ctx *ctx, struct dev_space **out)
{
	struct dev_space *ds = fi_calloc(1, sizeof(*ds));

	if (!ds)
		return -ENOMEM;
	ds->ctx = ctx;
	mutex_init(&ds->lock);
	list_init(&ds->devices);
	*out = ds;
	return 0;
}

void dev_destroy(struct dev_space *ds)
{
	if (!ds)
		return;
	while (!list_empty(&ds->devices))
		iovm_device_close(list_first(&ds->devices, struct iovm_device, link));
	mutex_destroy(&ds->lock);
	free(ds);
}

/* "vfio:BDF" (either interface), "vfio-group:BDF", "vfio-iommufd:BDF": the interface and the BDF. */
static bool vfio_spec(const char *spec, enum os_vfio_api *api, const char **bdf)
{
	static const struct {
		const char *prefix;
		enum os_vfio_api api;
	} kinds[] = {
		{ "vfio:", OS_VFIO_AUTO },
		{ "vfio-group:", OS_VFIO_GROUP },
		{ "vfio-iommufd:", OS_VFIO_IOMMUFD },
	};

	for (unsigned i = 0; i < ARRAY_SIZE(kinds); i++)
		if (!strncmp(spec, kinds[i].prefix, strlen(kinds[i].prefix))) {
			*api = kinds[i].api;
			*bdf = spec + strlen(kinds[i].prefix);
			return true;
		}
	return false;
}

IOVM_API const char *iovm_status_name(int status)
{
	static const char *const names[] = {
		[IOVM_STATUS_NONE] = "not completed",
		[IOVM_STATUS_SUCCESS] = "success",
		[IOVM_STATUS_PAGE_FAULT] = "page fault",
		[IOVM_STATUS_INVALID] = "invalid descriptor",
		[IOVM_STATUS_BATCH_FAIL] = "batch failed",
		[IOVM_STATUS_KEY] = "key refused",
	};

	err_enter();
	return status >= 0 && (unsigned)status < ARRAY_SIZE(names) ? names[status] : "unknown status";
}

IOVM_API int iovm_device_open(struct iovm_ctx *ctx, const char *spec, struct iovm_device **out)
{
	enum os_vfio_api api = OS_VFIO_AUTO;
	struct iovm_device *dev;
	const char *bdf = NULL, *verbs = NULL;
	int ret;

	err_enter();
	if (!ctx || !spec || !out)
		return err_inval("!ctx || !spec || !out");
	if (!strncmp(spec, "verbs:", 6))
		verbs = spec + 6;
	else if (strcmp(spec, "sw") && !vfio_spec(spec, &api, &bdf))
		return err_detail(-ENODEV, IOVM_LOG_DEBUG,
				  "unknown device '%s' (known: sw, vfio:, vfio-group:, vfio-iommufd:<PCI address>, "
				  "verbs:<RDMA device>)",
				  spec);
	if (verbs && (!*verbs || strlen(verbs) >= IOVM_VERBS_NAME_MAX))
		return err_detail(-EINVAL, IOVM_LOG_DEBUG, "verbs: a device name of 1 to %d bytes",
				  IOVM_VERBS_NAME_MAX - 1);
	dev = fi_calloc(1, sizeof(*dev));
	if (!dev)
		return -ENOMEM;
	dev->ctx = ctx;
	mutex_init(&dev->lock);
	mutex_init(&dev->fault_lock);
	list_init(&dev->queues);
	ret = iommu_client_create(ctx->iommu, &dev->client);
	if (ret)
		goto free_dev;
	if (bdf && (ret = vfio_dev_open(dev, bdf, api)))
		goto destroy_client;
	if (verbs && (ret = verbs_dev_open(dev, verbs)))
		goto destroy_client;
	mutex_lock(&ctx->dev->lock);
	list_add_tail(&ctx->dev->devices, &dev->link);
	mutex_unlock(&ctx->dev->lock);
	*out = dev;
	return 0;

destroy_client:
	iommu_client_destroy(dev->client);
free_dev:
	mutex_destroy(&dev->fault_lock);
	mutex_destroy(&dev->lock);
	free(dev);
	return ret;
}

IOVM_API int iovm_device_close(struct iovm_device *dev)
{
	err_enter();
	if (!dev)
		return err_inval("!dev");
	while (!list_empty(&dev->queues))
		iovm_queue_destroy(list_first(&dev->queues, struct iovm_queue, link));
	mutex_lock(&dev->ctx->dev->lock);
	list_del(&dev->link);
	mutex_unlock(&dev->ctx->dev->lock);
	vfio_dev_close(dev);
	verbs_dev_close(dev);
	iommu_client_destroy(dev->client);
	mutex_destroy(&dev->fault_lock);
	mutex_destroy(&dev->lock);
	free(dev);
	return 0;
}

IOVM_API uint32_t iovm_device_id(const struct iovm_device *dev)
{
	err_enter();
	return dev ? iommu_client_id(dev->client) : 0;
}

IOVM_API int iovm_device_attach(struct iovm_device *dev, struct iovm_domain *dom, uint32_t pasid)
{
	int ret;

	err_enter();
	if (!dev || !dom)
		return err_inval("!dev || !dom");
	/* Checked first: iommu_attach() would take a PASID a protection domain does not have. */
	if (dev->verbs && pasid != IOVM_PASID_NONE)
		return err_detail(-EINVAL, IOVM_LOG_DEBUG, "verbs: a protection domain has no PASIDs");
	ret = iommu_attach(dev->client, dom, pasid);
	if (ret || (!dev->vfio && !dev->verbs))
		return ret;
	/* The kernel's IOMMU translates for a real device: the domain is mirrored there. */
	if (dev->vfio)
		ret = vfio_dev_attach(dev, dom, pasid);
	/* An RDMA device translates by itself: the domain's MRs are registered there. */
	else
		ret = verbs_dev_attach(dev, dom, pasid);
	if (ret)
		iommu_detach(dev->client, pasid);
	return ret;
}

IOVM_API int iovm_device_detach(struct iovm_device *dev, uint32_t pasid)
{
	err_enter();
	if (!dev)
		return err_inval("!dev");
	if (dev->vfio)
		vfio_dev_detach(dev, pasid);
	/* Refused while the domain has MRs the device registered: their keys are in use. */
	if (dev->verbs) {
		int ret = verbs_dev_detach(dev, pasid);

		if (ret)
			return ret;
	}
	return iommu_detach(dev->client, pasid);
}

void dev_fault_report(struct iovm_device *dev, struct iovm_fault *f)
{
	if (f->reason != IOVM_FAULT_NO_DOMAIN && iommu_client_domain(dev->client, f->pasid)) {
		iommu_fault_report(dev->client, f);
		return;
	}
	mutex_lock(&dev->fault_lock);
	f->seq = ++dev->faults_seen;
	if (dev->fault_count < DEV_FAULT_LOG)
		dev->fault_log[(dev->fault_head + dev->fault_count++) % DEV_FAULT_LOG] = *f;
	else
		dev->faults_dropped++;
	mutex_unlock(&dev->fault_lock);
}

IOVM_API int iovm_device_fault_pop(struct iovm_device *dev, struct iovm_fault *f)
{
	int ret = 0;

	err_enter();
	if (!dev || !f)
		return err_inval("!dev || !f");
	mutex_lock(&dev->fault_lock);
	if (!dev->fault_count) {
		ret = -EAGAIN;
	} else {
		*f = dev->fault_log[dev->fault_head];
		dev->fault_head = (dev->fault_head + 1) % DEV_FAULT_LOG;
		dev->fault_count--;
	}
	mutex_unlock(&dev->fault_lock);
	return ret;
}

/* The device's own fault counts, for iovm_device_query(). */
void dev_fault_counts(struct iovm_device *dev, uint64_t *seen, uint64_t *dropped)
{
	mutex_lock(&dev->fault_lock);
	*seen = dev->faults_seen;
	*dropped = dev->faults_dropped;
	mutex_unlock(&dev->fault_lock);
}
