/* SPDX-License-Identifier: MIT */
/*
 * verbs_lib.c - rdma-core's libibverbs, loaded when a verbs device is
 * first opened, so that libiovm itself needs only libc where RDMA is
 * absent: dlopen() of libibverbs.so.1 (IOVM_VERBS_LIBRARY names another,
 * for tests), and the few exported calls the backend makes, each asked
 * for at the version rdma-core has kept them under since libibverbs 1.1.
 * The calls verbs.h defines inline (ibv_query_device_ex, ibv_advise_mr)
 * go through the device context's own operations and need no symbol.
 *
 * Loaded once and kept: a library whose device contexts may still be open
 * in another thread cannot be unloaded safely. A failed load is not kept,
 * so that installing the library later works without a restart.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>

#include "base/error.h"
#include "base/lock.h"
#include "base/log.h"
#include "dev/verbs.h"

#define VERBS_LIBRARY "libibverbs.so.1"
#define VERBS_VERSION "IBVERBS_1.1"

static struct mutex load_lock = MUTEX_INITIALIZER;
static struct verbs_lib lib;        /* filled under load_lock, then read-only */
static _Atomic bool loaded;         /* lib is complete: stored last, with release */

/* One symbol at the version rdma-core exports it under; plain dlsym() where the library has no versions (a test's). */
static void *sym(void *h, const char *name)
{
	void *p = dlvsym(h, name, VERBS_VERSION);

	return p ? p : dlsym(h, name);
}

int verbs_lib_get(const struct verbs_lib **out)
{
	const char *path = secure_getenv("IOVM_VERBS_LIBRARY");
	struct verbs_lib l;
	void *h;
	int ret = 0;

	if (atomic_load_explicit(&loaded, memory_order_acquire)) {
		*out = &lib;
		return 0;
	}
	mutex_lock(&load_lock);
	if (atomic_load_explicit(&loaded, memory_order_relaxed))
		goto done;
	if (!path || !*path)
		path = VERBS_LIBRARY;
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		ret = err_detail(-EOPNOTSUPP, IOVM_LOG_DEBUG,
				 "verbs: cannot load %s (%s): install rdma-core's libibverbs1 and ibverbs-providers", path,
				 dlerror());
		goto unlock;
	}
	l = (struct verbs_lib){
		.get_device_list = (verbs_get_device_list_fn)sym(h, "ibv_get_device_list"),
		.free_device_list = (verbs_free_device_list_fn)sym(h, "ibv_free_device_list"),
		.get_device_name = (verbs_get_device_name_fn)sym(h, "ibv_get_device_name"),
		.open_device = (verbs_open_device_fn)sym(h, "ibv_open_device"),
		.close_device = (verbs_close_device_fn)sym(h, "ibv_close_device"),
		.alloc_pd = (verbs_alloc_pd_fn)sym(h, "ibv_alloc_pd"),
		.dealloc_pd = (verbs_dealloc_pd_fn)sym(h, "ibv_dealloc_pd"),
		.reg_mr = (verbs_reg_mr_fn)sym(h, "ibv_reg_mr"),
		.dereg_mr = (verbs_dereg_mr_fn)sym(h, "ibv_dereg_mr"),
		.query_device = (verbs_query_device_fn)sym(h, "ibv_query_device"),
		/* Optional: older libraries cannot tell, and are taken as not fork-safe. */
		.is_fork_initialized = (verbs_is_fork_initialized_fn)dlsym(h, "ibv_is_fork_initialized"),
	};
	if (!l.get_device_list || !l.free_device_list || !l.get_device_name || !l.open_device || !l.close_device ||
	    !l.alloc_pd || !l.dealloc_pd || !l.reg_mr || !l.dereg_mr || !l.query_device) {
		dlclose(h);
		ret = err_detail(-EOPNOTSUPP, IOVM_LOG_DEBUG, "verbs: %s lacks calls of libibverbs 1.1", path);
		goto unlock;
	}
	lib = l;
	atomic_store_explicit(&loaded, true, memory_order_release);
	log_info("verbs: %s loaded", path);
done:
	*out = &lib;
unlock:
	mutex_unlock(&load_lock);
	return ret;
}
