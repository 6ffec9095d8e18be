/* SPDX-License-Identifier: MIT */
/*
 * mirror.c - mirrors of a registration: another device's mapping of an
 * MR's pages, filled page request by page request once the pages are
 * pinned here, and dropped before they go (a device process serving this
 * process: src/mp/devodp.c). Fills and drops run under reg_space.lock,
 * which orders them as the pins they follow.
 *
 * The mirror's device reaches the memory by its own path (this process's
 * memory file); what a mirror adds is the registration's discipline: the
 * device maps a page only after this process pinned it within its pin
 * budget, with the memory monitor watching it, and unmaps it before the
 * pin goes, as a device of this process would.
 */
#include <errno.h>

#include <iovm/iommu.h>

#include "base/compiler.h"
#include "base/error.h"
#include "base/lock.h"
#include "base/log.h"
#include "reg/reg_internal.h"

#define PG 4096u

int reg_mirror_add(struct iovm_mr *mr, struct reg_mirror *m, struct reg_mirror_range *range)
{
	struct reg_space *rs = mr->rs;
	int ret = 0;

	/* The cache deregisters its MRs as it likes; an implicit MR has no one range. */
	if (mr->rc || mr->implicit || mr->parent)
		return err_detail(-EINVAL, IOVM_LOG_DEBUG,
				  "a registration cache's MR, or an implicit one, cannot be mirrored");
	mutex_lock(&rs->lock);
	if (atomic_load_explicit(&mr->state, memory_order_acquire) == MR_GONE)
		ret = -EINVAL;
	else
		list_add_tail(&mr->mirrors, &m->link);
	mutex_unlock(&rs->lock);
	*range = (struct reg_mirror_range){ .addr = mr->addr, .start = mr->start, .end = mr->end, .prot = mr->prot };
	return ret;
}

void reg_mirror_del(struct iovm_mr *mr, struct reg_mirror *m)
{
	mutex_lock(&mr->rs->lock);
	list_del(&m->link);
	mutex_unlock(&mr->rs->lock);
}

void mirrors_drop(struct iovm_mr *mr, uintptr_t start, uintptr_t end)
{
	lock_assert_held(&mr->rs->lock);
	for (struct list_node *n = mr->mirrors.next; n != &mr->mirrors; n = n->next) {
		struct reg_mirror *m = container_of(n, struct reg_mirror, link);

		m->drop(m, start, end);
	}
}

int reg_mirror_resolve(struct reg_mirror *m, struct iovm_mr *mr, uintptr_t start, size_t len, unsigned access)
{
	struct reg_space *rs = mr->rs;
	int ret;

	if (!len || (start | len) & (PG - 1) || start < mr->start || start + len > mr->end)
		return -EINVAL;
	if ((access & IOVM_MAP_WRITE) && !(mr->prot & IOVM_MAP_WRITE))
		return -EFAULT;
	/* What a call that returned took away is invalid by now, as for a device of ours. */
	reg_settle(rs);
	mutex_lock(&rs->lock);
	if (atomic_load_explicit(&mr->state, memory_order_acquire) != MR_LIVE)
		ret = -EFAULT;
	else if (mr->on_demand)
		ret = odp_advise(rs, mr, start, len, true);
	else
		ret = mr_pages_valid(mr, start, len) ? 0 : -EFAULT;
	/* Still under the lock: no drop of these pages can come between the pin and the fill. */
	if (!ret)
		ret = m->fill(m, start, start + len);
	mutex_unlock(&rs->lock);
	return ret == -ENOENT ? -EFAULT : ret;
}
