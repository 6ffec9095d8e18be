/* SPDX-License-Identifier: MIT */
/*
 * mr.c - memory registrations: the application's memory checked, watched
 * by the memory monitor, put on the bus through a window, held in a
 * domain, named by keys, and taken down again; the public MR calls.
 * Their pages (valid or not, locked, mapped, invalidated) are pages.c's.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "base/compiler.h"
#include "base/ctx.h"
#include "base/error.h"
#include "base/fault_inject.h"
#include "base/lock.h"
#include "base/log.h"
#include "iommu/iommu.h"
#include "os/vma.h"
#include "phys/phys.h"
#include "reg/reg_internal.h"

#define ACCESS_ALL                                                                                   \
	(IOVM_ACCESS_LOCAL_READ | IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_REMOTE_READ | IOVM_ACCESS_REMOTE_WRITE | \
	 IOVM_ACCESS_ON_DEMAND)
#define ACCESS_WRITE (IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_REMOTE_WRITE)

#define PG 4096u

/*
 * Before a registration pins its pages: what maps them (@vi), and for a
 * pinned one whether they are there and permitted, from the process's
 * mappings (one PROCMAP_QUERY per mapping since Linux 6.11, else a read of
 * /proc/self/maps, or for a small range probes of the range that fault it
 * in: os_vma_probe()). mlock(2) then faults the pages in as it locks them:
 * one walk of the pages instead of two (populating first cost 1.9 times
 * mlock alone, this 1.1). Where the maps cannot be read the pages are
 * faulted in to know they are there, and what maps them stays unknown:
 * the MR is then not called monitored. *@known says which.
 */
static int precheck(struct iovm_mr *mr, struct os_vma_info *vi, bool *known)
{
	bool write = mr->prot & IOVM_MAP_WRITE;
	/* A pinned MR's pages are faulted in by its mlock(2): a small one's may be first, to ask them (vma.c). */
	unsigned fault = mr->on_demand ? 0 : OS_VMA_FAULT_READ | (write ? OS_VMA_FAULT_WRITE : 0);

	*known = !os_vma_probe(mr->start, mr->end, fault, vi);
	if (!*known)
		return mr->on_demand ? 0 : mr_populate(mr, mr->start, mr->end - mr->start);
	/* On demand, holes are allowed: they fault when a device reaches them. */
	if (mr->on_demand || (vi->mapped && vi->readable && (vi->writable || !write)))
		return 0;
	return err_detail(-EFAULT, IOVM_LOG_DEBUG, "registration: [%#lx, %#lx) is not all mapped and %s",
			  (unsigned long)mr->start, (unsigned long)mr->end, write ? "writable" : "readable");
}

/* Whether the monitor's start failed for want of something that may come back (descriptors, memory, threads). */
static bool start_failure_passes(int err)
{
	return err == -EMFILE || err == -ENFILE || err == -ENOMEM || err == -EAGAIN || err == -EINTR;
}

/*
 * Start the monitor with the first registration; without one, MRs are not
 * monitored (and not cached). A start that failed for a shortage is tried
 * again at each registration until it works. Needs reg_space.lock.
 */
struct reg_monitor *reg_monitor_of(struct reg_space *rs)
{
	lock_assert_held(&rs->lock);
	if (!rs->mon && !rs->mon_off) {
		int ret = monitor_start(rs, &rs->mon);

		if (ret) {
			rs->mon_off = !start_failure_passes(ret);
			if (!rs->mon_warned) {
				rs->mon_warned = true;
				log_warn("memory monitor: cannot start (%s): registrations are not monitored (nor cached) "
					 "until it does%s",
					 strerror(-ret), rs->mon_off ? "; not tried again" : "; tried again at each one");
			}
		}
	}
	return rs->mon;
}

int mr_init(struct iovm_mr *mr, struct iovm_domain *dom, uintptr_t a, size_t len, uint32_t access)
{
	/* Everything after rc: a registration cache's region owns that for the struct's whole life. */
	memset((char *)mr + offsetof(struct iovm_mr, rs), 0, sizeof(*mr) - offsetof(struct iovm_mr, rs));
	mr->rs = iommu_domain_ctx(dom)->reg;
	mr->dom = dom;
	mr->addr = a;
	mr->len = len;
	mr->start = align_down(a, PG);
	mr->end = align_up(a + len, PG);
	mr->npages = (mr->end - mr->start) / PG;
	mr->on_demand = access & IOVM_ACCESS_ON_DEMAND;
	mr->access = access | IOVM_ACCESS_LOCAL_READ;
	mr->prot = IOVM_MAP_READ | (access & ACCESS_WRITE ? IOVM_MAP_WRITE : 0);
	/*
	 * Pinned MRs lock their pages (mlock). On demand, a page's pin is its
	 * mapping in the domain, counted against the budget: locking each
	 * chunk as it faults in would split the VMA at every chunk and cost
	 * more than the rest of the fault. (The kernel may then reclaim such a
	 * page; the device, reaching it through the process's mapping, faults
	 * it back in.)
	 */
	mr->locked = !mr->on_demand;
	list_init(&mr->mirrors);
	itree_node_set(&mr->node, mr->start, mr->end - mr->start);
	mr->valid = fi_calloc((mr->npages + 63) / 64, sizeof(uint64_t));
	if (!mr->valid)
		return -ENOMEM;
	mutex_init(&mr->lock);
	return 0;
}

struct iovm_mr *mr_new(struct iovm_domain *dom, uintptr_t a, size_t len, uint32_t access)
{
	struct iovm_mr *mr = fi_calloc(1, sizeof(*mr));

	if (!mr)
		return NULL;
	if (mr_init(mr, dom, a, len, access)) {
		free(mr);
		return NULL;
	}
	return mr;
}

void mr_fini(struct iovm_mr *mr)
{
	free(mr->chunks);
	free(mr->valid);
	free(mr->taken);
	free(mr->kids);
	mr->chunks = NULL;
	mr->valid = NULL;
	mr->taken = NULL;
	mr->kids = NULL;
	mutex_destroy(&mr->lock);
}

void mr_free(struct iovm_mr *mr)
{
	if (mr->async)
		mr_async_free(mr);
	mr_fini(mr);
	/* A cache's MR lives in its region's struct, kept for the cache's life. */
	if (!mr->rc)
		free(mr);
}

int mr_publish(struct reg_space *rs, struct iovm_mr *mr, const struct os_vma_info *vi, bool keys)
{
	struct reg_monitor *mon = reg_monitor_of(rs);
	struct iovm_ctx *ctx = iommu_domain_ctx(mr->dom);
	int ret;

	lock_assert_held(&rs->lock);
	if (mr->parent) {
		/* A child of an implicit MR: mostly holes; each chunk is watched (and checked) at its first fault. */
		mr->watched = mon;
		mr->monitored = mon;
		mr->holes = true;
	} else {
		mr->watched = mon && !monitor_watch(mon, mr->start, mr->end - mr->start, vi ? vi->sysv_shm : -1);
		/*
		 * Monitored: watched, and no page of it can be replaced without
		 * an event. A file's or shared memory's pages can (a hole
		 * punched, a truncation, another process's MADV_REMOVE), as can
		 * System V shared memory's (shmdt). Events still invalidate
		 * such an MR; the cache does not keep it.
		 */
		mr->monitored = mr->watched && vi && !vi->file_backed && !vi->sysv_shm;
		/* On demand: whether the watch covered it all (msync finds holes, O(mappings)). */
		mr->holes = mr->on_demand && msync((void *)mr->start, mr->end - mr->start, MS_ASYNC);
	}
	if (iommu_domain_shared(mr->dom)) {
		/* The PA follows from the shared domain's IOVA: the same memory in every process's eyes. */
		ret = iommu_hold_shared(mr->dom, mr->start, mr->end - mr->start, &mr->iova, &mr->pa);
		if (ret)
			return ret;
		ret = phys_window_add_at(ctx->phys, (void *)mr->start, mr->end - mr->start, mr->pa);
		if (ret) {
			iommu_unhold(mr->dom, mr->iova, mr->pa, mr->end - mr->start);
			return ret;
		}
	} else {
		ret = phys_window_add(ctx->phys, (void *)mr->start, mr->end - mr->start, PHYS_WINDOW_PRIVATE, &mr->pa);
		if (ret)
			return ret;
		ret = iommu_hold(mr->dom, mr->start, mr->pa, mr->end - mr->start, &mr->iova);
		if (ret)
			goto remove_window;
	}
	/* Pinned in the background (mr_async.c): its threads lock and map the pages. */
	if (!mr->on_demand && !mr->async && (ret = mr_lock_map(rs, mr, 0, mr->npages - 1)))
		goto unmap; /* what was mapped before the failure */
	if (keys && (ret = keys_alloc(&rs->keys, mr, &mr->lkey, &mr->rkey)))
		goto unmap;
	itree_node_set(&mr->inode, iova_val(mr->iova), mr->end - mr->start);
	backend_adopt(rs, mr);
	/* A device that the foreign gate does not hold off: its invalidations are not put off (monitor.c). */
	mr->eager = mr->be || iommu_domain_mirrored(mr->dom);
	if (mr->eager)
		atomic_fetch_add_explicit(&rs->eager_mrs, 1, memory_order_seq_cst);
	itree_insert(&rs->mrs, &mr->node);
	itree_insert(&rs->by_iova, &mr->inode);
	/* The domain cannot go while the MR (and the monitor's invalidations of it) may reach it. */
	iommu_domain_use(mr->dom, 1);
	if (!mr->parent) {
		atomic_fetch_add_explicit(&rs->nr_mrs, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&rs->registered, 1, memory_order_relaxed);
	}
	return 0;

unmap:
	mr_drop_pages(rs, mr, 0, mr->npages - 1);
	/* The window before the IOVAs, as mr_unpublish() says why. */
	phys_window_remove(ctx->phys, mr->pa);
	iommu_unhold(mr->dom, mr->iova, mr->pa, mr->end - mr->start);
	return ret;
remove_window:
	phys_window_remove(ctx->phys, mr->pa);
	return ret;
}

int mr_register(struct iovm_mr *mr)
{
	struct reg_space *rs = mr->rs;
	struct os_vma_info vi;
	bool known;
	int ret;

	/*
	 * Events read before now are about memory an earlier call took away:
	 * dealt with before the MR is in the tree, where the invalidator would
	 * apply them to it. (A munmap returns once its event is read, and its
	 * invalidation follows on the invalidator's thread: memory mapped
	 * again at the same addresses and registered at once would otherwise
	 * lose its pages to the old event.)
	 */
	reg_settle(rs);
	/* Events from here on may be about this memory (see lock_map_run()). */
	mr->reg_begun = atomic_load_explicit(&rs->begun, memory_order_acquire);
	ret = precheck(mr, &vi, &known);
	if (ret)
		return ret;
	mutex_lock(&rs->lock);
	ret = mr_publish(rs, mr, known ? &vi : NULL, true);
	mutex_unlock(&rs->lock);
	if (ret || mr->async) /* an async MR's device registration follows its pages (mr_async.c) */
		return ret;
	/* The device's registration, once ours holds the pages (backend.c). */
	ret = backend_register(mr);
	if (ret) {
		mutex_lock(&rs->lock);
		mr_unpublish(rs, mr);
		mutex_unlock(&rs->lock);
	}
	return ret;
}

IOVM_API int iovm_mr_reg(struct iovm_domain *dom, void *addr, size_t len, uint32_t access,
			 struct iovm_mr **out)
{
	uintptr_t a = (uintptr_t)addr;
	struct iovm_mr *mr;
	int ret;

	err_enter();
	if (!dom || !out || (access & ~ACCESS_ALL))
		return err_inval("!dom || !out || (access & ~ACCESS_ALL)");
	/* The whole address space, as rdma-core's implicit ODP: on demand only. */
	if (!addr && len == SIZE_MAX && (access & IOVM_ACCESS_ON_DEMAND)) {
		/* Its children's IOVAs would be the shared allocator's, made as faults come. */
		if (iommu_domain_shared(dom))
			return err_detail(-EOPNOTSUPP, IOVM_LOG_DEBUG,
					  "a shared domain takes no implicit registration");
		return implicit_reg(dom, access, out);
	}
	if (!addr || !len || a + len < a || a + len > UINTPTR_MAX - PG)
		return err_inval("!addr || !len || a + len < a || a + len > UINTPTR_MAX - PG");
	mr = mr_new(dom, a, len, access);
	if (!mr)
		return -ENOMEM;
	ret = mr_register(mr);
	if (ret) {
		mr_free(mr);
		return ret;
	}
	*out = mr;
	return 0;
}

void mr_unpublish(struct reg_space *rs, struct iovm_mr *mr)
{
	struct iovm_ctx *ctx = iommu_domain_ctx(mr->dom);

	lock_assert_held(&rs->lock);
	IOVM_ASSERT(!mr->implicit);
	/* The device's registration first: it may be reaching the pages by itself. */
	backend_release(rs, mr);
	itree_remove(&rs->mrs, &mr->node);
	itree_remove(&rs->by_iova, &mr->inode);
	/* First the keys: no new device lookup finds it. */
	if (mr->lkey)
		keys_free(&rs->keys, mr->lkey);
	atomic_store_explicit(&mr->state, MR_GONE, memory_order_release);
	/* Resolvers that dropped the lock to fault pages in see it gone when they come back. */
	while (mr->refs)
		cond_wait(&rs->idle, &rs->lock);
	odp_forget(rs, mr);
	mr_drop_pages(rs, mr, 0, mr->npages - 1);
	/* Waits out every device-side section: after it, nothing holds the MR or the window. */
	phys_window_remove(ctx->phys, mr->pa);
	/*
	 * Then the IOVAs: in a shared domain another process may take them at
	 * once, and with them the PA they name; our window must be gone by
	 * then, or our devices would reach our memory there.
	 */
	iommu_unhold(mr->dom, mr->iova, mr->pa, mr->end - mr->start);
	iommu_domain_use(mr->dom, -1);
	if (mr->eager)
		atomic_fetch_sub_explicit(&rs->eager_mrs, 1, memory_order_relaxed);
	if (!mr->parent) {
		atomic_fetch_sub_explicit(&rs->nr_mrs, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&rs->deregistered, 1, memory_order_relaxed);
	}
}

void mr_teardown(struct reg_space *rs, struct iovm_mr *mr)
{
	mr_unpublish(rs, mr);
	mr_free(mr);
}

IOVM_API int iovm_mr_dereg(struct iovm_mr *mr)
{
	err_enter();
	if (!mr)
		return err_inval("!mr");
	/* A cached MR belongs to its cache: iovm_rcache_put() it. */
	if (mr->rc)
		return -EBUSY;
	/* Pinning in the background: its threads stop first (they take the locks mr_dereg() holds). */
	if (mr->async)
		mr_async_stop(mr);
	return mr_dereg(mr, true);
}

int mr_dereg(struct iovm_mr *mr, bool may_fail)
{
	struct reg_space *rs = mr->rs;
	int ret;

	mutex_lock(&rs->lock);
	if (!list_empty(&mr->mirrors)) {
		mutex_unlock(&rs->lock);
		return err_detail(-EBUSY, IOVM_LOG_DEBUG, "the MR is mapped on a device queue: unmap it there first");
	}
	/*
	 * A device that refuses (memory windows still bound to the MR) keeps it
	 * whole, as rdma-core does; an implicit MR registered there child by
	 * child keeps the children from the one refused on.
	 */
	if (may_fail && ((mr->implicit && (ret = implicit_deregister_children(rs, mr))) ||
			 (ret = backend_deregister(rs, mr)))) {
		mutex_unlock(&rs->lock);
		return ret;
	}
	if (mr->implicit)
		implicit_teardown(rs, mr);
	else
		mr_teardown(rs, mr);
	mutex_unlock(&rs->lock);
	return 0;
}

void mr_teardown_all(struct reg_space *rs)
{
	struct itree_node *n;

	mr_async_stop_all(rs);
	mutex_lock(&rs->lock);
	/* Implicit MRs first: their children are in the tree. */
	while (!list_empty(&rs->implicits))
		implicit_teardown(rs, list_entry(rs->implicits.next, struct iovm_mr, ilink));
	while ((n = itree_min(&rs->mrs)))
		mr_teardown(rs, container_of(n, struct iovm_mr, node));
	mutex_unlock(&rs->lock);
}

IOVM_API int iovm_mr_query(const struct iovm_mr *mr, struct iovm_mr_info *info)
{
	struct iovm_mr *m = (struct iovm_mr *)mr;

	err_enter();
	if (!mr || !info)
		return err_inval("!mr || !info");
	/* What a call that returned took away is invalid by now. */
	reg_settle(mr->rs);
	if (mr->implicit)
		return implicit_query(m, info);
	mutex_lock(&m->lock);
	*info = (struct iovm_mr_info){
		.addr = (void *)mr->addr,
		.len = mr->len,
		/* A device that translates by itself (backend.c) names the memory by its address. */
		.iova = mr->be ? iova_make(mr->addr) : iova_add(mr->iova, mr->addr - mr->start),
		/* A device with registrations of its own (backend.c) knows the MR by its keys. */
		/* Pinning in the background, the device's keys come once it is whole (mr_async.c): 0 until then. */
		.lkey = mr->be ? (mr_async_backend_ready(mr) ? mr->be_lkey : 0) : mr->lkey,
		.rkey = mr->be ? (mr_async_backend_ready(mr) ? mr->be_rkey : 0) : mr->rkey,
		.access = mr->access,
		.monitored = mr->monitored,
		.on_demand = mr->on_demand,
		.valid = atomic_load_explicit(&mr->state, memory_order_acquire) == MR_LIVE,
		.pages = mr->npages,
		.valid_pages = mr->nr_valid,
		.huge_leaves = iommu_hold_huge_leaves(mr->dom, mr->iova, mr->end - mr->start),
	};
	mutex_unlock(&m->lock);
	return 0;
}

IOVM_API int iovm_mr_iova(const struct iovm_mr *mr, const void *addr, size_t len, iovm_iova_t *iova)
{
	uintptr_t a = (uintptr_t)addr;

	if (!mr || !iova)
		return err_hot(-EINVAL, "invalid argument: !mr || !iova");
	/* Its children lie apart in IOVA space, made as devices reach them: by key only. */
	if (mr->implicit)
		return err_hot(-EINVAL, "invalid argument: mr->implicit");
	/* A range past the end of the address space is not inside it either. */
	if (a + len < a || a < mr->addr || a + len > mr->addr + mr->len)
		return err_hot(-ERANGE, "[%p, +%zu) is not inside the MR", addr, len);
	*iova = mr->be ? iova_make(a) : iova_add(mr->iova, a - mr->start);
	return 0;
}

IOVM_API int iovm_mr_keys(struct iovm_mr *mr, const void *addr, size_t len, struct iovm_mr_keys *keys)
{
	uintptr_t a = (uintptr_t)addr;

	err_enter();
	if (!mr || !addr || !len || !keys)
		return err_inval("!mr || !addr || !len || !keys");
	if (a + len < a)
		return -ERANGE;
	if (mr->implicit)
		return implicit_keys(mr, a, len, keys);
	if (a < mr->addr || a + len > mr->addr + mr->len)
		return -ERANGE;
	*keys = (struct iovm_mr_keys){ .lkey = mr_lkey_of(mr),
				       .rkey = mr_rkey_of(mr),
				       .addr = (void *)mr->addr,
				       .len = mr->len };
	return 0;
}
