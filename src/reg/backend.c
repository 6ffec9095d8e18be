/* SPDX-License-Identifier: MIT */
/*
 * backend.c - a device's own registrations behind iovm's MRs.
 *
 * A device that translates by itself (an RDMA adapter's memory translation
 * table) needs its own registration of the memory: a verbs device's
 * ibv_reg_mr() in its protection domain (src/dev/verbs.c). Its domain is
 * bound to a backend here; from then on every MR of the domain is made as
 * any MR (checked, pinned or on demand, watched by the memory monitor,
 * cached), then registered through the backend, and goes from the backend
 * before anything else of it goes. The MR is known by the device's keys.
 *
 * The device registration runs without reg_space.lock: pinning a
 * gigabyte takes the kernel a while, and the monitor's invalidator needs
 * the lock meanwhile. The MR is published by then, but nobody has it yet
 * but its maker (a cache files it only after), so no teardown can race
 * with it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "base/compiler.h"
#include "base/error.h"
#include "base/fault_inject.h"
#include "base/lock.h"
#include "base/log.h"
#include "reg/reg_internal.h"

#define PG 4096u

struct reg_backend {
	struct iovm_domain *dom;
	const struct reg_backend_ops *ops;
	void *arg;
	unsigned caps;          /* REG_BACKEND_* */
	unsigned nr_mrs;        /* under reg_space.lock: MRs registered through it, or being */
	struct list_node link;  /* in reg_space.backends, under its lock */
};

static struct reg_backend *backend_find(struct reg_space *rs, const struct iovm_domain *dom)
{
	lock_assert_held(&rs->lock);
	for (struct list_node *n = rs->backends.next; n != &rs->backends; n = n->next) {
		struct reg_backend *be = container_of(n, struct reg_backend, link);

		if (be->dom == dom)
			return be;
	}
	return NULL;
}

/* Whether @dom has an MR (an implicit one included). Needs reg_space.lock. */
static bool domain_has_mrs(struct reg_space *rs, const struct iovm_domain *dom)
{
	lock_assert_held(&rs->lock);
	for (struct itree_node *n = itree_first(&rs->mrs, 0, UINT64_MAX); n; n = itree_next(n, 0, UINT64_MAX))
		if (container_of(n, struct iovm_mr, node)->dom == dom)
			return true;
	for (struct list_node *n = rs->implicits.next; n != &rs->implicits; n = n->next)
		if (list_entry(n, struct iovm_mr, ilink)->dom == dom)
			return true;
	return false;
}

int reg_backend_bind(struct reg_space *rs, struct iovm_domain *dom, const struct reg_backend_ops *ops, void *arg,
		     unsigned caps)
{
	struct reg_backend *be = fi_calloc(1, sizeof(*be));
	int ret = 0;

	if (!be)
		return -ENOMEM;
	*be = (struct reg_backend){ .dom = dom, .ops = ops, .arg = arg, .caps = caps };
	mutex_lock(&rs->lock);
	if (backend_find(rs, dom))
		ret = err_detail(-EBUSY, IOVM_LOG_DEBUG, "the domain registers through another device already");
	else if (domain_has_mrs(rs, dom))
		ret = err_detail(-EBUSY, IOVM_LOG_DEBUG,
				 "the domain has registrations already, which the device would not have: attach it first");
	else
		list_add_tail(&rs->backends, &be->link);
	mutex_unlock(&rs->lock);
	if (ret)
		free(be);
	return ret;
}

int reg_backend_unbind(struct reg_space *rs, struct iovm_domain *dom, bool force)
{
	struct reg_backend *be;
	int ret = 0;

	mutex_lock(&rs->lock);
	be = backend_find(rs, dom);
	if (be && be->nr_mrs && !force) {
		ret = err_detail(-EBUSY, IOVM_LOG_DEBUG,
				 "%u registrations of the domain are the device's: deregister them first (a cache's too)",
				 be->nr_mrs);
	} else if (be && be->nr_mrs) {
		/* The device goes: what it registered goes from it, and the MRs stay iovm's alone. */
		for (struct itree_node *n = itree_first(&rs->mrs, 0, UINT64_MAX); n; n = itree_next(n, 0, UINT64_MAX))
			if (container_of(n, struct iovm_mr, node)->be == be)
				backend_release(rs, container_of(n, struct iovm_mr, node));
		for (struct list_node *n = rs->implicits.next; n != &rs->implicits; n = n->next)
			if (list_entry(n, struct iovm_mr, ilink)->be == be)
				backend_release(rs, list_entry(n, struct iovm_mr, ilink));
		IOVM_ASSERT(!be->nr_mrs);
	}
	if (be && !ret)
		list_del(&be->link);
	mutex_unlock(&rs->lock);
	if (!ret)
		free(be);
	return ret;
}

void backend_adopt(struct reg_space *rs, struct iovm_mr *mr)
{
	struct reg_backend *be;

	lock_assert_held(&rs->lock);
	/*
	 * An implicit MR's children are the device's business only where the
	 * parent is not: where the device registered the whole address space
	 * itself, the parent holds it all.
	 */
	if (mr->parent)
		be = mr->parent->be && !(mr->parent->be->caps & REG_BACKEND_IMPLICIT) ? (struct reg_backend *)mr->parent->be : NULL;
	else
		be = backend_find(rs, mr->dom);
	if (!be)
		return;
	mr->be = be;
	be->nr_mrs++;
}

bool backend_by_children(const struct iovm_mr *mr)
{
	return mr->implicit && mr->be && !(mr->be->caps & REG_BACKEND_IMPLICIT);
}

int backend_register(struct iovm_mr *mr)
{
	const struct reg_backend *be = mr->be;
	void *addr = mr->implicit ? NULL : (void *)mr->addr;
	size_t len = mr->implicit ? SIZE_MAX : mr->len;

	if (!be)
		return 0;
	if (backend_by_children(mr)) {
		/* Nothing on the device yet: each child is registered there as iovm makes it. */
		if (!(be->caps & REG_BACKEND_ODP))
			return err_detail(-EOPNOTSUPP, IOVM_LOG_DEBUG,
					  "registration: the device has no on-demand paging, which an implicit "
					  "registration needs (register ranges, or use a registration cache)");
		return 0;
	}
	/* A child's range ends where user space does: the device refuses the last page of the 47 bits. */
	if (mr->parent) {
		addr = (void *)mr->start;
		len = MIN(mr->end, IMR_VA_END - PG) - mr->start;
	}
	return be->ops->reg(be->arg, addr, len, mr->access, &mr->be_handle, &mr->be_lkey, &mr->be_rkey);
}

void backend_release(struct reg_space *rs, struct iovm_mr *mr)
{
	struct reg_backend *be = (struct reg_backend *)mr->be;

	lock_assert_held(&rs->lock);
	if (!be)
		return;
	/*
	 * The device lets go of the pages first: iovm's pins and window go
	 * after. On paths that cannot fail (a cache's eviction, closing) a
	 * refusal is asked again once, then logged: the device's MR is left to
	 * its context, whose close takes it down with the protection domain.
	 */
	if (mr->be_handle && be->ops->dereg(be->arg, mr->be_handle) && be->ops->dereg(be->arg, mr->be_handle))
		log_err("registration: the device refused to deregister [%#lx, +%zu): left to its close",
			(unsigned long)mr->addr, mr->len);
	mr->be_handle = NULL;
	mr->be = NULL;
	be->nr_mrs--;
}

int backend_deregister(struct reg_space *rs, struct iovm_mr *mr)
{
	int ret;

	lock_assert_held(&rs->lock);
	if (!mr->be || !mr->be_handle)
		return 0;
	ret = mr->be->ops->dereg(mr->be->arg, mr->be_handle);
	if (ret)
		return err_detail(ret, IOVM_LOG_DEBUG, "registration: the device keeps the MR (%s): it stays whole",
				  strerror(-ret));
	mr->be_handle = NULL;
	return 0;
}

int backend_advise(struct iovm_mr *mr, uintptr_t addr, size_t len, uint32_t flags)
{
	const struct reg_backend *be = mr->be;

	uintptr_t start = addr & ~(uintptr_t)4095, end = (addr + len + 4095) & ~(uintptr_t)4095;

	if (!be->ops->advise)
		return err_detail(-EOPNOTSUPP, IOVM_LOG_DEBUG, "advise: the device takes no advice");
	/* As iovm's own prefetch: a hole is -EFAULT, whatever the device would say of it (msync() finds holes). */
	if (msync((void *)start, end - start, MS_ASYNC))
		return err_detail(-EFAULT, IOVM_LOG_DEBUG, "advise: [%#lx, +%zu) is not all mapped", (unsigned long)addr,
				  len);
	return be->ops->advise(be->arg, mr->be_handle, mr->be_lkey, (void *)addr, len, flags);
}
