/* SPDX-License-Identifier: MIT */
/*
 * verbs.h - the verbs backend's own declarations: libibverbs's calls as
 * loaded at run time (verbs_lib.c), and the device (verbs.c).
 */
#ifndef IOVM_DEV_VERBS_H
#define IOVM_DEV_VERBS_H

#include <infiniband/verbs.h>

typedef struct ibv_device **(*verbs_get_device_list_fn)(int *num);
typedef void (*verbs_free_device_list_fn)(struct ibv_device **list);
typedef const char *(*verbs_get_device_name_fn)(struct ibv_device *device);
typedef struct ibv_context *(*verbs_open_device_fn)(struct ibv_device *device);
typedef int (*verbs_close_device_fn)(struct ibv_context *context);
typedef struct ibv_pd *(*verbs_alloc_pd_fn)(struct ibv_context *context);
typedef int (*verbs_dealloc_pd_fn)(struct ibv_pd *pd);
typedef struct ibv_mr *(*verbs_reg_mr_fn)(struct ibv_pd *pd, void *addr, size_t length, int access);
typedef int (*verbs_dereg_mr_fn)(struct ibv_mr *mr);
typedef int (*verbs_query_device_fn)(struct ibv_context *context, struct ibv_device_attr *attr);
typedef enum ibv_fork_status (*verbs_is_fork_initialized_fn)(void);

/* libibverbs's exported calls the backend makes; all set once loaded. */
struct verbs_lib {
	verbs_get_device_list_fn get_device_list;
	verbs_free_device_list_fn free_device_list;
	verbs_get_device_name_fn get_device_name;
	verbs_open_device_fn open_device;
	verbs_close_device_fn close_device;
	verbs_alloc_pd_fn alloc_pd;
	verbs_dealloc_pd_fn dealloc_pd;
	verbs_reg_mr_fn reg_mr;
	verbs_dereg_mr_fn dereg_mr;
	verbs_query_device_fn query_device;
	verbs_is_fork_initialized_fn is_fork_initialized; /* NULL before rdma-core 35 (IBVERBS_1.13) */
};

/*
 * verbs_lib_get() - libibverbs, loaded at the first call. Thread-safe.
 * -EOPNOTSUPP (with a detail saying what to install) where it cannot be.
 */
int verbs_lib_get(const struct verbs_lib **lib);

#endif /* IOVM_DEV_VERBS_H */
