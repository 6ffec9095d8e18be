/* SPDX-License-Identifier: MIT */
/*
 * devsrv.h - a device process's state (devsrv.c), shared with its worker
 * threads (devwork.c) and with what handles its clients' mappings
 * (devmem.c, devodp.c).
 */
#ifndef IOVM_MP_DEVSRV_H
#define IOVM_MP_DEVSRV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "mp/devproto.h"
#include "mp/mp_internal.h"

#define MAX_CLIENTS 256
#define MAX_WORKERS 64
#define MAX_DEPTH 4096
/* Ranges of its own memory one client may have mapped at once: each is a window on the bus. */
#define MAX_REMOTE_MAPS 4096

/*
 * What a client mapped in its domain: a range of the shared heap (its
 * blocks lent to this process), or a range of the client's own memory,
 * reached through its memory file (a remote window at pa).
 */
struct mapping {
	uint64_t iova, pa, len;
	bool remote;
	/* A mirrored registration (DP_MAP_MR, remote too): */
	bool mirror;
	uint32_t perm;
	uint64_t rva;            /* the client's VA of iova */
};

struct client {
	pthread_mutex_t lock;    /* a worker inside the client's queue holds it; teardown takes it */
	int conn;
	pid_t pid;
	bool opened;
	bool closed;             /* closed by the client (DP_CLOSE): torn down, the connection stays to answer */
	bool dead;               /* under lock: workers skip it */
	_Atomic bool going;      /* set before teardown takes the lock: a worker waiting on a page request gives up */
	uint32_t pr_seq;         /* page requests asked: the worker's, under lock */
	uint8_t slot;            /* the client's slot in the share */
	uint32_t pasid;
	unsigned depth;
	struct iovm_domain *dom;
	struct iovm_queue *q;    /* the engine's, polled */
	struct dp_ring_ctl *ring;
	uint64_t ring_pa, ring_len;
	uint32_t in_engine;      /* under lock: submitted to the engine, not yet reaped */
	/* Out of the array, torn down, waiting for the workers' passes (the control thread's): */
	struct client *next_free;
	uint64_t passes_seen[MAX_WORKERS];
	int mem_fd;              /* the client's /proc/PID/mem, passed at open; -1: none */
	/*
	 * What the client mapped: changed by the control thread under
	 * maps_lock, read by it without; a worker resolving a fault in a
	 * mirrored registration (devodp.c) reads it under maps_lock.
	 */
	pthread_mutex_t maps_lock;
	struct mapping *maps;
	unsigned nr_maps, cap_maps;
};

/* A block lent to this process, and how many mappings hold it: the control thread's. */
struct loan {
	uint64_t grain; /* + 1; 0: empty slot */
	uint32_t refs;
};

struct iovm_device_server {
	int wake_fd[MAX_WORKERS];      /* eventfds: a client wakes its worker (client i: worker i % nr) */
	struct iovm_ctx *ctx;
	struct mp_space *s;
	struct iovm_device *dev;
	struct iovm_domain *none_dom; /* PASID_NONE: the engine queues' own rings */
	int listen_fd, stop_fd;
	pthread_t ctl;
	pthread_t workers[MAX_WORKERS];
	unsigned nr_workers;
	_Atomic bool stopping;
	_Atomic(struct client *) clients[MAX_CLIENTS]; /* set and cleared by the control thread */
	/*
	 * Each worker's passes through the clients, odd while in one. A
	 * client out of the array is freed once every worker that was in a
	 * pass then has finished it: then none still holds its pointer. The
	 * control thread never waits for that (a worker's pass may wait on a
	 * client's page request, whose answer may need the control thread):
	 * it keeps such clients on freeing and looks again.
	 */
	_Atomic uint64_t passes[MAX_WORKERS];
	struct client *freeing;        /* the control thread's */
	struct loan *loans;            /* open addressing; the control thread's */
	unsigned cap_loans, nr_loans;
	uint32_t next_pasid;           /* the control thread's */
	_Atomic uint64_t opened, descriptors, torn_down, refused;
	/* Clients accepted and not yet freed: one going counts until what it held has gone back. */
	_Atomic unsigned nr_clients;
	unsigned fork_gen;             /* at serve: a forked child has no threads of it */
	_Atomic unsigned started;      /* threads running: iovm_device_serve() returns once all are */
};

/* What a worker thread starts with: its server and its number (devwork_main()). */
struct devwork_arg {
	struct iovm_device_server *srv;
	unsigned id;
};

/*
 * devwork_main() - worker @arg->id (a struct devwork_arg, which it frees)
 * serving its clients' rings until srv->stopping. devwork.c.
 */
void *devwork_main(void *arg);

/*
 * devmem.c, all the control thread's. devmem_borrow(): check that every
 * block of [pa, pa+len) is @c's to map and lend it to this process, all or
 * nothing (-EACCES). devmem_give_back(): the loans of [pa, pa+len) go.
 * devmem_map(), devmem_unmap(): DP_MAP, DP_MAP_VA and DP_UNMAP.
 * devmem_unmap_all(): after the client's domain went, everything it
 * mapped goes back.
 */
int devmem_borrow(struct iovm_device_server *srv, struct client *c, uint64_t pa, uint64_t len);
void devmem_give_back(struct iovm_device_server *srv, uint64_t pa, uint64_t len);
int devmem_map(struct iovm_device_server *srv, struct client *c, const struct dp_req *r, uint64_t *iova);
int devmem_unmap(struct iovm_device_server *srv, struct client *c, const struct dp_req *r);
void devmem_unmap_all(struct iovm_device_server *srv, struct client *c);
/*
 * devmem.c: add @m to @c's mappings (takes maps_lock); how many of them
 * are windows on its memory file; a new such window on [rva, rva+len) at
 * *@pa (-EOPNOTSUPP without the file, -ENOSPC past MAX_REMOTE_MAPS).
 */
int devmem_add_mapping(struct client *c, const struct mapping *m);
unsigned devmem_remote_maps(const struct client *c);
int devmem_window(struct iovm_device_server *srv, struct client *c, uint64_t rva, uint64_t len, pa_t *pa);
/*
 * devodp.c. devodp_map(): DP_MAP_MR, from devmem_map(). devodp_fill(),
 * devodp_drop(): DP_FILL, DP_DROP. devodp_unmap(): a mirror's mapping @m
 * goes (DP_UNMAP), out of the array already. devodp_resolve(): the
 * resolver of @c's domain (iommu_domain_set_resolver()), on a worker,
 * outside its section.
 */
int devodp_map(struct iovm_device_server *srv, struct client *c, const struct dp_req *r, uint64_t *iova);
int devodp_fill(struct client *c, const struct dp_req *r);
int devodp_drop(struct client *c, const struct dp_req *r);
void devodp_unmap(struct iovm_device_server *srv, struct client *c, const struct mapping *m);
int devodp_resolve(void *arg, struct iovm_domain *dom, iova_t iova, unsigned access);
/*
 * devmem_page_request() - a page request to client @arg about @rva of its
 * own memory (dev_queue_set_page_request()); from the worker serving it,
 * under its lock. 0 when the client mapped the page; else the fault.
 */
int devmem_page_request(void *arg, uint64_t rva, unsigned access);
/* The same about @iova of a mirrored registration: the client answers through that one. */
int devmem_page_request_at(void *arg, uint64_t rva, uint64_t iova, unsigned access);

#endif /* IOVM_MP_DEVSRV_H */
