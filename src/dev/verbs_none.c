/* SPDX-License-Identifier: MIT */
/*
 * verbs_none.c - the verbs backend where libiovm was built without
 * rdma-core's headers (libibverbs-dev): "verbs:" devices are refused,
 * saying why, and nothing else changes.
 */
#include <errno.h>

#include "base/error.h"
#include "base/log.h"
#include "dev/dev_internal.h"

int verbs_dev_open(struct iovm_device *dev, const char *name)
{
	(void)dev;
	return err_detail(-EOPNOTSUPP, IOVM_LOG_DEBUG,
			  "verbs: libiovm was built without rdma-core's headers (libibverbs-dev): no device '%s'", name);
}

void verbs_dev_close(struct iovm_device *dev)
{
	(void)dev;
}

int verbs_dev_attach(struct iovm_device *dev, struct iovm_domain *dom, uint32_t pasid)
{
	(void)dev, (void)dom, (void)pasid;
	return -EOPNOTSUPP;
}

int verbs_dev_detach(struct iovm_device *dev, uint32_t pasid)
{
	(void)dev, (void)pasid;
	return 0;
}

IOVM_API int iovm_device_verbs(struct iovm_device *dev, struct iovm_device_verbs *info)
{
	err_enter();
	if (!dev || !info)
		return err_inval("!dev || !info");
	return err_detail(-EOPNOTSUPP, IOVM_LOG_DEBUG, "not a verbs device (built without verbs)");
}
