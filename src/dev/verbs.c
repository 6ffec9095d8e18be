/* SPDX-License-Identifier: MIT */
/*
 * verbs.c - an RDMA device through rdma-core's verbs ("verbs:rxe0"): its
 * protection domain behind an iovm domain, and every MR of that domain an
 * ibv_mr of the device's too (reg/backend.c), known by the device's keys.
 *
 * The device translates by itself, with the memory translation table its
 * driver fills at ibv_reg_mr(), by the process's virtual address: an MR's
 * IOVA, as iovm_mr_query() gives it, is then that address, which work
 * requests name. The domain is a managed one, whose own IOVAs only iovm's
 * software engine would use: MRs of the same memory may overlap there, as
 * verbs lets them (a VA domain maps an address once). iovm's part is what
 * rdma-core leaves to each middleware: the checks, the memory monitor, the
 * registration cache.
 *
 * On demand: IBV_ACCESS_ON_DEMAND where the device reports ODP for RC
 * sends, receives, writes and reads; the kernel then follows the address
 * space itself. Where it does not, an on-demand registration is refused
 * (-EOPNOTSUPP), not quietly pinned: pinning would break the promise that
 * made the caller ask (memory that may be unmapped, overcommitted, larger
 * than what may be locked), and the caller can ask for a pinned MR
 * knowing what it gets. Implicit (the whole address space) is the
 * device's own implicit ODP MR where it has implicit ODP; with ODP alone,
 * iovm registers it child by child, 64 MiB on demand each
 * (reg/implicit.c, iovm_mr_keys()).
 *
 * Locks: verbs_dev.lock guards the bound domain; registrations run under
 * none of ours (ibv_reg_mr may pin for a long time), deregistrations under
 * reg_space.lock, which they never call back into.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <iovm/reg.h>

#include "base/compiler.h"
#include "base/ctx.h"
#include "base/error.h"
#include "base/fault_inject.h"
#include "base/lock.h"
#include "base/log.h"
#include "dev/dev_internal.h"
#include "dev/verbs.h"
#include "iommu/iommu.h"
#include "reg/reg.h"

/* The transport ODP must cover for the MRs a middleware posts to: RC sends, receives, writes and reads. */
#define ODP_RC_NEEDED (IBV_ODP_SUPPORT_SEND | IBV_ODP_SUPPORT_RECV | IBV_ODP_SUPPORT_WRITE | IBV_ODP_SUPPORT_READ)

/* ibv_advise_mr() takes 32-bit lengths: longer ranges go in pieces of this many bytes. */
#define ADVISE_PIECE (UINT32_C(1) << 30)

struct verbs_dev {
	const struct verbs_lib *lib;
	struct iovm_device *dev;
	struct ibv_context *context;
	struct ibv_pd *pd;
	char name[IOVM_VERBS_NAME_MAX];
	bool odp, odp_implicit;
	struct mutex lock;
	struct iovm_domain *dom;     /* under lock: the domain bound to the protection domain */
};

/*
 * The device's ODP capabilities, through its context's extended query:
 * verbs.h's ibv_query_device_ex() is inline and falls back to an exported
 * call, which would make libiovm need libibverbs at link time.
 */
static void query_odp(struct verbs_dev *vd)
{
	struct verbs_context *vctx = verbs_get_ctx(vd->context);
	struct ibv_device_attr_ex attr;

	if (!vctx || vctx->sz < sizeof(*vctx) - offsetof(struct verbs_context, query_device_ex) ||
	    !vctx->query_device_ex)
		return;
	memset(&attr, 0, sizeof(attr));
	if (vctx->query_device_ex(vd->context, NULL, &attr, sizeof(attr)))
		return;
	vd->odp = (attr.odp_caps.general_caps & IBV_ODP_SUPPORT) &&
		  (attr.odp_caps.per_transport_caps.rc_odp_caps & ODP_RC_NEEDED) == ODP_RC_NEEDED;
	vd->odp_implicit = vd->odp && (attr.odp_caps.general_caps & IBV_ODP_SUPPORT_IMPLICIT);
}

int verbs_dev_open(struct iovm_device *dev, const char *name)
{
	struct ibv_device **list, *found = NULL;
	const struct verbs_lib *lib;
	struct verbs_dev *vd;
	char seen[128] = "";
	int n = 0, ret;

	ret = verbs_lib_get(&lib);
	if (ret)
		return ret;
	list = lib->get_device_list(&n);
	if (!list)
		return err_detail(errno == ENOSYS ? -EOPNOTSUPP : -errno ? -errno : -ENODEV, IOVM_LOG_DEBUG,
				  "verbs: no RDMA devices (%s)", strerror(errno ? errno : ENODEV));
	for (int i = 0; i < n; i++) {
		const char *nm = lib->get_device_name(list[i]);

		if (nm && !strcmp(nm, name))
			found = list[i];
		else if (nm && strlen(seen) + strlen(nm) + 3 < sizeof(seen))
			strcat(strcat(seen, *seen ? ", " : ""), nm);
	}
	ret = err_detail(-ENODEV, IOVM_LOG_DEBUG, "verbs: no device '%s' (there are: %s)", name, *seen ? seen : "none");
	if (!found)
		goto free_list;
	ret = -ENOMEM;
	vd = fi_calloc(1, sizeof(*vd));
	if (!vd)
		goto free_list;
	err_clear();
	vd->lib = lib;
	vd->dev = dev;
	strcpy(vd->name, name);
	mutex_init(&vd->lock);
	vd->context = lib->open_device(found);
	if (!vd->context) {
		ret = err_detail(errno ? -errno : -ENODEV, IOVM_LOG_DEBUG, "verbs: cannot open %s: %s", name,
				 strerror(errno ? errno : ENODEV));
		goto free_vd;
	}
	vd->pd = lib->alloc_pd(vd->context);
	if (!vd->pd) {
		ret = err_detail(errno ? -errno : -ENOMEM, IOVM_LOG_DEBUG, "verbs: %s: no protection domain: %s", name,
				 strerror(errno ? errno : ENOMEM));
		goto close_context;
	}
	query_odp(vd);
	lib->free_device_list(list);
	dev->verbs = vd;
	log_info("verbs: %s open, on-demand paging %s", name,
		 vd->odp_implicit ? "with implicit" : vd->odp ? "without implicit" : "not supported");
	return 0;

close_context:
	lib->close_device(vd->context);
free_vd:
	mutex_destroy(&vd->lock);
	free(vd);
free_list:
	lib->free_device_list(list);
	return ret;
}

void verbs_dev_close(struct iovm_device *dev)
{
	struct verbs_dev *vd = dev->verbs;

	if (!vd)
		return;
	/* What the device registered goes from it first: a protection domain with MRs cannot go. */
	if (vd->dom)
		reg_backend_unbind(dev->ctx->reg, vd->dom, true);
	if (vd->lib->dealloc_pd(vd->pd))
		log_warn("verbs: %s: the protection domain would not go", vd->name);
	vd->lib->close_device(vd->context);
	mutex_destroy(&vd->lock);
	free(vd);
	dev->verbs = NULL;
}

/* ---- the registration backend (reg/backend.c) ---- */

static int verbs_reg(void *arg, void *addr, size_t len, uint32_t access, void **handle, uint32_t *lkey,
		     uint32_t *rkey)
{
	struct verbs_dev *vd = arg;
	struct ibv_mr *mr;
	int flags = 0;

	/* Verbs wants local write with remote write (the device writes the pages either way). */
	if (access & (IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_REMOTE_WRITE))
		flags |= IBV_ACCESS_LOCAL_WRITE;
	if (access & IOVM_ACCESS_REMOTE_WRITE)
		flags |= IBV_ACCESS_REMOTE_WRITE;
	if (access & IOVM_ACCESS_REMOTE_READ)
		flags |= IBV_ACCESS_REMOTE_READ;
	if (access & IOVM_ACCESS_ON_DEMAND) {
		if (!vd->odp)
			return err_detail(-EOPNOTSUPP, IOVM_LOG_DEBUG,
					  "verbs: %s has no on-demand paging for RC: register pinned", vd->name);
		if (!addr && !vd->odp_implicit)
			return err_detail(-EOPNOTSUPP, IOVM_LOG_DEBUG,
					  "verbs: %s has no implicit on-demand paging", vd->name);
		flags |= IBV_ACCESS_ON_DEMAND;
	}
	if (fi_fail(FI_SYSCALL, ENOMEM))
		return err_detail(-ENOMEM, IOVM_LOG_DEBUG, "verbs: ibv_reg_mr (injected)");
	errno = 0;
	mr = vd->lib->reg_mr(vd->pd, addr, len, flags);
	if (!mr)
		return err_detail(errno ? -errno : -ENOMEM, IOVM_LOG_DEBUG, "verbs: %s: ibv_reg_mr of %zu bytes: %s",
				  vd->name, len, strerror(errno ? errno : ENOMEM));
	*handle = mr;
	*lkey = mr->lkey;
	*rkey = mr->rkey;
	return 0;
}

static int verbs_dereg(void *arg, void *handle)
{
	struct verbs_dev *vd = arg;
	int ret = vd->lib->dereg_mr(handle);

	/* rdma-core returns a positive errno (EBUSY while memory windows are bound), the MR still valid. */
	if (ret)
		log_warn("verbs: %s: ibv_dereg_mr: %s", vd->name, strerror(ret));
	return -ret;
}

static int verbs_advise(void *arg, void *handle, uint32_t lkey, void *addr, size_t len, uint32_t flags)
{
	struct verbs_dev *vd = arg;
	struct verbs_context *vctx = verbs_get_ctx(vd->context);
	enum ibv_advise_mr_advice advice =
		flags & IOVM_ADVISE_WRITE ? IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE : IBV_ADVISE_MR_ADVICE_PREFETCH;

	(void)handle;
	if (!vctx || vctx->sz < sizeof(*vctx) - offsetof(struct verbs_context, advise_mr) || !vctx->advise_mr)
		return err_detail(-EOPNOTSUPP, IOVM_LOG_DEBUG, "verbs: %s takes no advice (ibv_advise_mr)", vd->name);
	for (size_t done = 0; done < len;) {
		struct ibv_sge sge = { .addr = (uintptr_t)addr + done, .length = (uint32_t)MIN(len - done, ADVISE_PIECE),
				       .lkey = lkey };
		/* FLUSH: back when the pages are there, as iovm's own prefetch is. */
		int ret = vctx->advise_mr(vd->pd, advice, IBV_ADVISE_MR_FLAG_FLUSH, &sge, 1);

		if (ret)
			return err_detail(-ret, IOVM_LOG_DEBUG, "verbs: %s: ibv_advise_mr: %s", vd->name, strerror(ret));
		done += sge.length;
	}
	return 0;
}

static const struct reg_backend_ops verbs_backend = {
	.reg = verbs_reg,
	.dereg = verbs_dereg,
	.advise = verbs_advise,
};

int verbs_dev_attach(struct iovm_device *dev, struct iovm_domain *dom, uint32_t pasid)
{
	struct verbs_dev *vd = dev->verbs;
	int ret;

	if (pasid != IOVM_PASID_NONE)
		return err_detail(-EINVAL, IOVM_LOG_DEBUG, "verbs: a protection domain has no PASIDs");
	if (iommu_domain_shared(dom))
		return err_detail(-EOPNOTSUPP, IOVM_LOG_DEBUG, "verbs: a shared domain cannot hold a device's MRs");
	/* The device's MRs overlap as the application likes: a VA domain holds one MR per address. */
	if (iommu_domain_type(dom) != IOVM_DOMAIN_MANAGED)
		return err_detail(-EINVAL, IOVM_LOG_DEBUG, "verbs: attach the device to a managed domain");
	mutex_lock(&vd->lock);
	ret = vd->dom ? err_detail(-EBUSY, IOVM_LOG_DEBUG, "verbs: %s is attached already", vd->name)
		      : reg_backend_bind(dev->ctx->reg, dom, &verbs_backend, vd,
					 (vd->odp ? REG_BACKEND_ODP : 0) | (vd->odp_implicit ? REG_BACKEND_IMPLICIT : 0));
	if (!ret)
		vd->dom = dom;
	mutex_unlock(&vd->lock);
	return ret;
}

int verbs_dev_detach(struct iovm_device *dev, uint32_t pasid)
{
	struct verbs_dev *vd = dev->verbs;
	int ret = 0;

	if (pasid != IOVM_PASID_NONE)
		return 0;
	mutex_lock(&vd->lock);
	if (vd->dom && !(ret = reg_backend_unbind(dev->ctx->reg, vd->dom, false)))
		vd->dom = NULL;
	mutex_unlock(&vd->lock);
	return ret;
}

IOVM_API int iovm_device_verbs(struct iovm_device *dev, struct iovm_device_verbs *info)
{
	struct verbs_dev *vd;

	err_enter();
	if (!dev || !info)
		return err_inval("!dev || !info");
	if (!(vd = dev->verbs))
		return err_detail(-EOPNOTSUPP, IOVM_LOG_DEBUG, "not a verbs device");
	*info = (struct iovm_device_verbs){ .context = vd->context, .pd = vd->pd, .odp = vd->odp,
					    .odp_implicit = vd->odp_implicit };
	/* Asked each time: the application may call ibv_fork_init() after opening. */
	if (vd->lib->is_fork_initialized) {
		enum ibv_fork_status f = vd->lib->is_fork_initialized();

		info->fork_safe = f == IBV_FORK_UNNEEDED || f == IBV_FORK_ENABLED;
	}
	strcpy(info->name, vd->name);
	return 0;
}
