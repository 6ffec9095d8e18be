/* SPDX-License-Identifier: MIT */
/*
 * space.c - a context's registrations: their index by address, their keys,
 * the locks and watches they hold, and the memory monitor.
 */
#include <errno.h>
#include <stdlib.h>

#include "base/ctx.h"
#include "base/error.h"
#include "reg/reg_internal.h"

int reg_create(struct iovm_ctx *ctx, struct reg_space **out)
{
	struct reg_space *rs = calloc(1, sizeof(*rs));

	if (!rs)
		return -ENOMEM;
	rs->ctx = ctx;
	pthread_mutex_init(&rs->lock, NULL);
	itree_init(&rs->mrs);
	keys_init(&rs->keys);
	ranges_init(&rs->locked);
	*out = rs;
	return 0;
}

void reg_destroy(struct reg_space *rs)
{
	if (!rs)
		return;
	/* The monitor first: its invalidator works on the MRs. */
	monitor_stop(rs->mon);
	rs->mon = NULL;
	mr_teardown_all(rs);
	ranges_destroy(&rs->locked);
	keys_destroy(&rs->keys);
	pthread_mutex_destroy(&rs->lock);
	free(rs);
}

IOVM_API int iovm_reg_stats(struct iovm_ctx *ctx, struct iovm_reg_stats *st)
{
	struct reg_space *rs;

	err_clear();
	if (!ctx || !st)
		return -EINVAL;
	rs = ctx->reg;
	*st = (struct iovm_reg_stats){
		.mrs = atomic_load_explicit(&rs->nr_mrs, memory_order_relaxed),
		.registered = atomic_load_explicit(&rs->registered, memory_order_relaxed),
		.deregistered = atomic_load_explicit(&rs->deregistered, memory_order_relaxed),
		.locked_bytes = atomic_load_explicit(&rs->locked_bytes, memory_order_relaxed),
		.invalidated_pages = atomic_load_explicit(&rs->invalidated_pages, memory_order_relaxed),
	};
	pthread_mutex_lock(&rs->lock);
	if (rs->mon)
		monitor_stats(rs->mon, st);
	pthread_mutex_unlock(&rs->lock);
	return 0;
}
