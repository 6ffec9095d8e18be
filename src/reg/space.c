/* SPDX-License-Identifier: MIT */
/*
 * space.c - a context's registrations: their index by address, their keys,
 * the locks and watches they hold, and the memory monitor.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/ctx.h"
#include "base/error.h"
#include "base/fault_inject.h"
#include "base/lock.h"
#include "iommu/iommu.h"
#include "reg/reg_internal.h"

int reg_create(struct iovm_ctx *ctx, struct reg_space **out)
{
	/* Aligned: the monitor's progress counters have cache lines of their own. */
	struct reg_space *rs = fi_aligned_alloc(_Alignof(struct reg_space), sizeof(*rs));

	if (!rs)
		return -ENOMEM;
	memset(rs, 0, sizeof(*rs));
	rs->ctx = ctx;
	mutex_init(&rs->settle_lock);
	pthread_cond_init(&rs->settled, NULL);
	mutex_init(&rs->lock);
	pthread_cond_init(&rs->idle, NULL);
	itree_init(&rs->mrs);
	itree_init(&rs->by_iova);
	list_init(&rs->lru);
	list_init(&rs->caches);
	list_init(&rs->rc_chunks);
	list_init(&rs->implicits);
	list_init(&rs->odp_fills);
	list_init(&rs->backends);
	rs->budget_pages = ctx->cfg.pin_budget / 4096;
	keys_init(&rs->keys);
	ranges_init(&rs->locked);
	/* Device faults on on-demand registrations come here. */
	iommu_set_resolver(ctx->iommu, odp_resolve, rs);
	*out = rs;
	return 0;
}

void reg_destroy(struct reg_space *rs)
{
	if (!rs)
		return;
	iommu_set_resolver(rs->ctx->iommu, NULL, NULL);
	rcache_destroy_all(rs);
	/* The monitor first: its invalidator works on the MRs. */
	monitor_stop(rs->mon);
	rs->mon = NULL;
	mr_teardown_all(rs);
	ranges_destroy(&rs->locked);
	keys_destroy(&rs->keys);
	pthread_cond_destroy(&rs->idle);
	pthread_cond_destroy(&rs->settled);
	mutex_destroy(&rs->settle_lock);
	mutex_destroy(&rs->lock);
	free(rs);
}

IOVM_API int iovm_reg_stats(struct iovm_ctx *ctx, struct iovm_reg_stats *st)
{
	struct reg_space *rs;

	err_enter();
	if (!ctx || !st)
		return err_inval("!ctx || !st");
	rs = ctx->reg;
	*st = (struct iovm_reg_stats){
		.mrs = atomic_load_explicit(&rs->nr_mrs, memory_order_relaxed),
		.registered = atomic_load_explicit(&rs->registered, memory_order_relaxed),
		.deregistered = atomic_load_explicit(&rs->deregistered, memory_order_relaxed),
		.locked_bytes = atomic_load_explicit(&rs->locked_bytes, memory_order_relaxed),
		.invalidated_pages = atomic_load_explicit(&rs->invalidated_pages, memory_order_relaxed),
		.odp_faults = atomic_load_explicit(&rs->odp_faults, memory_order_relaxed),
		.odp_fault_retries = atomic_load_explicit(&rs->odp_retries, memory_order_relaxed),
		.odp_evicted_bytes = atomic_load_explicit(&rs->odp_evicted, memory_order_relaxed) * 4096,
		.odp_prefetched_bytes = atomic_load_explicit(&rs->odp_prefetched, memory_order_relaxed),
		.pin_budget = rs->budget_pages * 4096,
	};
	mutex_lock(&rs->lock);
	st->odp_pinned_bytes = rs->odp_pinned * 4096;
	if (rs->mon)
		monitor_stats(rs->mon, st);
	mutex_unlock(&rs->lock);
	return 0;
}
