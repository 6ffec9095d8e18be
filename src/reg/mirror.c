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
#include "os/vma.h"
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

/* The run of valid pages of [start, start+len) that holds @at: [*lo, *hi); false when @at's is not valid. */
static bool valid_run(const struct iovm_mr *mr, uintptr_t start, size_t len, uintptr_t at, uintptr_t *lo, uintptr_t *hi)
{
	uintptr_t a = at & ~(uintptr_t)(PG - 1);

	if (!mr_pages_valid(mr, a, PG))
		return false;
	for (*lo = a; *lo > start && mr_pages_valid(mr, *lo - PG, PG); *lo -= PG)
		;
	for (*hi = a + PG; *hi < start + len && mr_pages_valid(mr, *hi, PG); *hi += PG)
		;
	return true;
}

/* Whether [lo, hi) is mapped writable now. */
static bool run_writable(uintptr_t lo, uintptr_t hi)
{
	struct os_vma_info vi;

	return !os_vma_range(lo, hi, &vi) && vi.writable;
}

/*
 * What the fill of [*lo, *hi), pinned, may allow: the MR's protection,
 * less writing where the memory is not writable now (the device's path to
 * it, a memory file, writes whatever the protection, where a device of
 * ours would fault). A run that is not writable all through narrows to
 * the page @at alone, with its own protection: a read must not map its
 * writable neighbours read-only, since a permission fault asks nothing
 * and the device's write there would fault for good. A later mprotect()
 * is not seen (as for a pinned MR).
 *
 * Read after the pin, under the registration lock: before it, a page
 * unmapped for a moment (a munmap() and a mmap() of new memory there)
 * read as not writable, and the new page, pinned after, was mapped
 * read-only. After it, a change the reading misses is an invalidation,
 * whose drop waits for this lock and comes after the fill.
 */
static unsigned fill_perm(const struct iovm_mr *mr, uintptr_t at, uintptr_t *lo, uintptr_t *hi)
{
	unsigned perm = mr->prot;

	if (!(perm & IOVM_MAP_WRITE) || run_writable(*lo, *hi))
		return perm;
	if (*hi - *lo > PG) {
		*lo = at & ~(uintptr_t)(PG - 1);
		*hi = *lo + PG;
		if (run_writable(*lo, *hi))
			return perm;
	}
	return perm & ~(unsigned)IOVM_MAP_WRITE;
}

int reg_mirror_resolve(struct reg_mirror *m, struct iovm_mr *mr, uintptr_t start, size_t len, uintptr_t at,
		       unsigned access)
{
	struct reg_space *rs = mr->rs;
	uintptr_t lo, hi;
	unsigned perm;
	int ret;

	if (!len || (start | len) & (PG - 1) || start < mr->start || start + len > mr->end || at < start ||
	    at >= start + len)
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
	/*
	 * Still under the lock: no drop of these pages can come between the
	 * pin and the fill. Only what is still pinned, around the page asked
	 * about: the budget may have taken back part of the range at once.
	 */
	if (!ret && !valid_run(mr, start, len, at, &lo, &hi))
		ret = -EAGAIN;
	if (!ret) {
		perm = fill_perm(mr, at, &lo, &hi);
		if ((access & IOVM_MAP_WRITE) && !(perm & IOVM_MAP_WRITE))
			ret = -EFAULT;
		else
			ret = m->fill(m, lo, hi, perm);
	}
	mutex_unlock(&rs->lock);
	return ret == -ENOENT ? -EFAULT : ret;
}
