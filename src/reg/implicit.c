/* SPDX-License-Identifier: MIT */
/*
 * implicit.c - implicit on-demand registrations: one key for the whole
 * user address space (rdma-core's ibv_reg_mr(pd, NULL, SIZE_MAX,
 * IBV_ACCESS_ON_DEMAND)), made of on-demand children created the first
 * time a device reaches their 64 MiB of address space.
 *
 * Registering costs a key and an empty table. A keyed access through the
 * key finds its child lock-free (reg_key_iova); where there is none yet,
 * the device leaves its section and asks for one (reg_key_grow), as it
 * would make a page request. A child is an ordinary on-demand MR without
 * keys: its faults, its pins, its place on the LRU and its invalidations
 * are those of any on-demand MR. Its chunks are watched by the memory
 * monitor as they fault in (a child is mostly holes when made), and memory
 * the monitor cannot watch is refused (a fault), since the caller cannot
 * be told which of a whole address space is not watched.
 *
 * Children live as long as their parent: deregistering it retires the key,
 * then each child, then waits out the devices that may still read the
 * table.
 *
 * A device that translates by itself (backend.c) holds the whole address
 * space under its own one key where it can (a verbs device with implicit
 * ODP). Where it pages on demand but not implicitly, each child is
 * registered on the device as iovm makes it, 64 MiB on demand, before the
 * child is in the table: iovm_mr_keys() gives the child's keys for a
 * range, making the child first if need be. That registration runs under
 * reg_space.lock, unlike a range's: an on-demand registration pins
 * nothing, so it is quick, and two callers asking for one child must not
 * both make it.
 */
#include <errno.h>
#include <stdlib.h>

#include "base/compiler.h"
#include "base/ctx.h"
#include "base/epoch.h"
#include "base/error.h"
#include "base/fault_inject.h"
#include "base/lock.h"
#include "base/log.h"
#include "iommu/iommu.h"
#include "reg/reg_internal.h"

#define PG 4096u

static_assert(IMR_VA_BITS == IMR_CHILD_SHIFT + IMR_LEAF_SHIFT + 11, "IMR_TOP is 2048 entries, 16 KiB");

int implicit_reg(struct iovm_domain *dom, uint32_t access, struct iovm_mr **out)
{
	struct reg_space *rs = iommu_domain_ctx(dom)->reg;
	struct iovm_mr *mr;
	int ret;

	if (!iommu_can_hold(dom))
		return err_detail(-EOPNOTSUPP, IOVM_LOG_DEBUG,
				  "an identity domain maps all memory, and could not unmap a registration's");
	mr = fi_calloc(1, sizeof(*mr));
	if (!mr)
		return -ENOMEM;
	mr->rs = rs;
	mr->dom = dom;
	mr->addr = 0;
	mr->len = SIZE_MAX;
	/* Page 0 is never mapped (mmap_min_addr); the end is where user space ends. */
	mr->start = PG;
	mr->end = IMR_VA_END;
	mr->npages = (mr->end - mr->start) / PG;
	mr->implicit = true;
	mr->on_demand = true;
	list_init(&mr->mirrors); /* never mirrored (no one range), but deregistration looks */
	mr->access = access | IOVM_ACCESS_LOCAL_READ;
	mr->prot = IOVM_MAP_READ | (access & (IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_REMOTE_WRITE) ? IOVM_MAP_WRITE : 0);
	mutex_init(&mr->lock);
	mr->kids = fi_calloc(1, sizeof(*mr->kids));
	ret = -ENOMEM;
	if (!mr->kids)
		goto free_mr;

	mutex_lock(&rs->lock);
	/* Without the monitor, the pins of a whole address space could outlive its memory. */
	ret = err_detail(-EOPNOTSUPP, IOVM_LOG_DEBUG,
			 "registration: an implicit registration needs the memory monitor (userfaultfd)");
	if (!reg_monitor_of(rs))
		goto unlock;
	mr->watched = true;
	mr->monitored = true;
	ret = keys_alloc(&rs->keys, mr, &mr->lkey, &mr->rkey);
	if (ret)
		goto unlock;
	err_clear();
	list_add_tail(&rs->implicits, &mr->ilink);
	iommu_domain_use(dom, 1);
	atomic_fetch_add_explicit(&rs->nr_mrs, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&rs->registered, 1, memory_order_relaxed);
	backend_adopt(rs, mr);
	mutex_unlock(&rs->lock);
	/* A device with its own implicit registration (backend.c) holds the whole address space too. */
	ret = backend_register(mr);
	if (ret) {
		mutex_lock(&rs->lock);
		implicit_teardown(rs, mr);
		mutex_unlock(&rs->lock);
		return ret;
	}
	*out = mr;
	return 0;

unlock:
	mutex_unlock(&rs->lock);
free_mr:
	mr_free(mr);
	return ret;
}

struct iovm_mr *implicit_child_find(const struct iovm_mr *mr, uint64_t va)
{
	_Atomic(struct iovm_mr *) *leaf;

	if (va >= IMR_VA_END)
		return NULL;
	leaf = atomic_load_explicit(&mr->kids->leaf[IMR_TOP_IDX(va)], memory_order_acquire);
	return leaf ? atomic_load_explicit(&leaf[IMR_LEAF_IDX(va)], memory_order_acquire) : NULL;
}

int implicit_child(struct reg_space *rs, struct iovm_mr *mr, uint64_t va, struct iovm_mr **out)
{
	uint64_t start = align_down(va, IMR_CHILD_SIZE), end = start + IMR_CHILD_SIZE;
	_Atomic(struct iovm_mr *) *leaf;
	struct iovm_mr *child;
	int ret;

	lock_assert_held(&rs->lock);
	if (va < mr->start || va >= mr->end)
		return -ERANGE;
	leaf = atomic_load_explicit(&mr->kids->leaf[IMR_TOP_IDX(va)], memory_order_relaxed);
	if (!leaf) {
		leaf = fi_calloc(IMR_LEAF, sizeof(*leaf));
		if (!leaf)
			return -ENOMEM;
		atomic_store_explicit(&mr->kids->leaf[IMR_TOP_IDX(va)], leaf, memory_order_release);
	}
	child = atomic_load_explicit(&leaf[IMR_LEAF_IDX(va)], memory_order_relaxed);
	if (child) {
		*out = child;
		return 0;
	}
	child = mr_new(mr->dom, MAX(start, mr->start), end - MAX(start, mr->start), mr->access);
	if (!child)
		return -ENOMEM;
	child->parent = mr;
	ret = mr_publish(rs, child, NULL, false);
	if (ret) {
		mr_free(child);
		return ret;
	}
	/* The device's registration of the child, when the parent has none of its own (see above). */
	ret = backend_register(child);
	if (ret) {
		mr_teardown(rs, child);
		return ret;
	}
	/* Published whole: a device that finds it finds its IOVA and window in place. */
	atomic_store_explicit(&leaf[IMR_LEAF_IDX(va)], child, memory_order_release);
	mr->kids->nr_children++;
	*out = child;
	return 0;
}

int reg_key_grow(struct reg_space *rs, uint32_t key, uint64_t va)
{
	struct iovm_mr *mr, *child;
	bool remote;
	int ret = -ENOKEY;

	mutex_lock(&rs->lock);
	mr = keys_lookup(&rs->keys, key, &remote);
	if (mr && mr->implicit && atomic_load_explicit(&mr->state, memory_order_acquire) == MR_LIVE)
		ret = implicit_child(rs, mr, va, &child);
	mutex_unlock(&rs->lock);
	return ret;
}

int implicit_deregister_children(struct reg_space *rs, struct iovm_mr *mr)
{
	lock_assert_held(&rs->lock);
	if (!backend_by_children(mr))
		return 0;
	for (unsigned t = 0; t < IMR_TOP; t++) {
		_Atomic(struct iovm_mr *) *leaf = atomic_load_explicit(&mr->kids->leaf[t], memory_order_relaxed);

		for (unsigned i = 0; leaf && i < IMR_LEAF; i++) {
			struct iovm_mr *child = atomic_load_explicit(&leaf[i], memory_order_relaxed);
			int ret;

			if (!child)
				continue;
			ret = backend_deregister(rs, child);
			if (ret)
				return ret;
			/* Gone from the device: gone from the table too, so that no ask finds its retired keys. */
			atomic_store_explicit(&leaf[i], NULL, memory_order_release);
			mr->kids->nr_children--;
			mr_teardown(rs, child);
		}
	}
	return 0;
}

void implicit_teardown(struct reg_space *rs, struct iovm_mr *mr)
{
	lock_assert_held(&rs->lock);
	IOVM_ASSERT(mr->implicit);
	/* The device's own registration first: it reaches the pages by itself. */
	backend_release(rs, mr);
	/* The keys first: no device finds the table afresh. */
	keys_free(&rs->keys, mr->lkey);
	atomic_store_explicit(&mr->state, MR_GONE, memory_order_release);
	for (unsigned t = 0; t < IMR_TOP; t++) {
		_Atomic(struct iovm_mr *) *leaf = atomic_load_explicit(&mr->kids->leaf[t], memory_order_relaxed);

		if (!leaf)
			continue;
		for (unsigned i = 0; i < IMR_LEAF; i++) {
			struct iovm_mr *child = atomic_load_explicit(&leaf[i], memory_order_relaxed);

			if (!child)
				continue;
			/* Out of the table, then gone (mr_teardown waits out the devices). */
			atomic_store_explicit(&leaf[i], NULL, memory_order_relaxed);
			mr_teardown(rs, child);
		}
	}
	/* A device may still be reading the table through a key it looked up before. */
	epoch_synchronize(&rs->ctx->epoch);
	for (unsigned t = 0; t < IMR_TOP; t++)
		free(atomic_load_explicit(&mr->kids->leaf[t], memory_order_relaxed));
	list_del(&mr->ilink);
	iommu_domain_use(mr->dom, -1);
	atomic_fetch_sub_explicit(&rs->nr_mrs, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&rs->deregistered, 1, memory_order_relaxed);
	mr_free(mr);
}

int implicit_query(struct iovm_mr *mr, struct iovm_mr_info *info)
{
	struct reg_space *rs = mr->rs;
	uint64_t valid = 0, huge = 0;

	mutex_lock(&rs->lock);
	for (unsigned t = 0; t < IMR_TOP; t++) {
		_Atomic(struct iovm_mr *) *leaf = atomic_load_explicit(&mr->kids->leaf[t], memory_order_relaxed);

		for (unsigned i = 0; leaf && i < IMR_LEAF; i++) {
			struct iovm_mr *child = atomic_load_explicit(&leaf[i], memory_order_relaxed);

			if (!child)
				continue;
			mutex_lock(&child->lock);
			valid += child->nr_valid;
			huge += iommu_hold_huge_leaves(child->dom, child->iova, child->end - child->start);
			mutex_unlock(&child->lock);
		}
	}
	*info = (struct iovm_mr_info){
		.addr = NULL,
		.len = SIZE_MAX,
		.iova = IOVM_IOVA(0),
		/* A device registered child by child has no key for it all: iovm_mr_keys() gives a child's. */
		.lkey = backend_by_children(mr) ? 0 : mr_lkey_of(mr),
		.rkey = backend_by_children(mr) ? 0 : mr_rkey_of(mr),
		.access = mr->access,
		.monitored = true,
		.on_demand = true,
		.implicit = true,
		.valid = atomic_load_explicit(&mr->state, memory_order_acquire) == MR_LIVE,
		.pages = mr->npages,
		.valid_pages = valid,
		.huge_leaves = huge,
		.children = mr->kids->nr_children,
	};
	mutex_unlock(&rs->lock);
	return 0;
}

int implicit_advise(struct iovm_mr *mr, uintptr_t a, size_t len, uint32_t flags)
{
	struct reg_space *rs = mr->rs;
	int ret = 0;

	if (a < mr->start || a + len > mr->end)
		return -ERANGE;
	if (backend_by_children(mr)) {
		/* The device pages each child itself: advice goes to the children's registrations there. */
		for (uintptr_t at = a; at < a + len && !ret;) {
			uintptr_t next = MIN(align_down(at, IMR_CHILD_SIZE) + IMR_CHILD_SIZE, a + len);
			struct iovm_mr *child;

			mutex_lock(&rs->lock);
			ret = implicit_child(rs, mr, at, &child);
			mutex_unlock(&rs->lock);
			/* The child lives as long as the parent, which the caller keeps registered. */
			if (!ret)
				ret = backend_advise(child, at, next - at, flags);
			at = next;
		}
		return ret;
	}
	/* Child by child: each prefetch is an on-demand MR's, written as the parent may be. */
	mutex_lock(&rs->lock);
	for (uintptr_t at = a; at < a + len && !ret;) {
		uintptr_t next = MIN(align_down(at, IMR_CHILD_SIZE) + IMR_CHILD_SIZE, a + len);
		struct iovm_mr *child;

		ret = implicit_child(rs, mr, at, &child);
		if (!ret)
			ret = odp_advise(rs, child, at, next - at, false);
		at = next;
	}
	mutex_unlock(&rs->lock);
	return ret == -ENOENT ? err_inval("[addr, addr+len) mapped") : ret;
}

int implicit_keys(struct iovm_mr *mr, uintptr_t a, size_t len, struct iovm_mr_keys *keys)
{
	struct reg_space *rs = mr->rs;
	struct iovm_mr *child;
	int ret;

	if (a < mr->start || a + len > mr->end)
		return -ERANGE;
	if (!backend_by_children(mr)) {
		*keys = (struct iovm_mr_keys){ .lkey = mr_lkey_of(mr),
					       .rkey = mr_rkey_of(mr),
					       .addr = (void *)mr->start,
					       .len = mr->end - mr->start };
		return 0;
	}
	/* The device's children end where user space does (backend_register()): past it, no key reaches. */
	if (a + len > IMR_VA_END - PG)
		return err_detail(-ERANGE, IOVM_LOG_DEBUG, "keys: [%#lx, +%zu) runs past the end of user space",
				  (unsigned long)a, len);
	if (align_down(a, IMR_CHILD_SIZE) != align_down(a + len - 1, IMR_CHILD_SIZE))
		return err_detail(-ERANGE, IOVM_LOG_DEBUG,
				  "keys: [%#lx, +%zu) crosses a 64 MiB boundary, between two of the device's registrations",
				  (unsigned long)a, len);
	/* Found lock-free once made: a child is in the table only with its device registration in place. */
	child = implicit_child_find(mr, a);
	if (!child) {
		mutex_lock(&rs->lock);
		ret = atomic_load_explicit(&mr->state, memory_order_acquire) == MR_LIVE ? implicit_child(rs, mr, a, &child)
											: -EINVAL;
		mutex_unlock(&rs->lock);
		if (ret)
			return ret;
	}
	*keys = (struct iovm_mr_keys){ .lkey = child->be_lkey,
				       .rkey = child->be_rkey,
				       .addr = (void *)child->start,
				       .len = MIN(child->end, IMR_VA_END - PG) - child->start };
	return 0;
}
