/* SPDX-License-Identifier: MIT */
/*
 * devsrv.c - a device process: the software engine served to client
 * processes of the same share, each in a domain of its own at a PASID of
 * its own (iovm/mp.h). This file owns the server and its clients' life:
 * the public calls that start and stop it, the socket, and the control
 * thread that accepts clients, answers their requests and tears them down.
 *
 * One control thread accepts clients and answers their requests (open,
 * map, unmap, close) one at a time: it alone changes what clients have
 * mapped and what is lent, so the loan counts need no lock. Worker
 * threads (devwork.c) move descriptors from each client's submission ring
 * (in the shared heap, in a block of the client's lent to this process)
 * to an engine queue of the client's, run them, and copy the completions
 * back.
 *
 * Isolation: a client's descriptors run in its PASID, whatever they say;
 * its domain maps only whole pages the client holds (checked and lent
 * under the share's lock, in one hold); its ring is read by copying each
 * descriptor once, with the indexes checked against the depth.
 *
 * Lifetime: a client that dies or goes is torn down by the control thread
 * (on the connection's end): its queue stops, under the client's lock so
 * that no worker is inside it, its domain goes (strict: no access after),
 * and what it lent goes back (freed, when its owner died).
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <iovm/dev.h>
#include <iovm/iommu.h>
#include <iovm/mem.h>
#include <iovm/mp.h>

#include "base/compiler.h"
#include "base/ctx.h"
#include "base/error.h"
#include "base/fault_inject.h"
#include "base/log.h"
#include "dev/dev.h"
#include "iommu/iommu.h"
#include "mp/devproto.h"
#include "mp/mp.h"
#include "mp/mp_internal.h"

#include "mp/devsrv.h"

/* ---- clients ---- */

/* Stop the client's queue, drop its domain, give back what it lent. Idempotent. */
static void client_teardown(struct iovm_device_server *srv, struct client *c)
{
	/* A worker waiting for the client's answer to a page request stops waiting. */
	atomic_store_explicit(&c->going, true, memory_order_release);
	/* Under the lock: a worker inside the queue finishes its pass first, and skips it after. */
	pthread_mutex_lock(&c->lock);
	c->dead = true;
	pthread_mutex_unlock(&c->lock);
	if (c->q)
		iovm_queue_destroy(c->q);
	c->q = NULL;
	if (c->dom) {
		iovm_device_detach(srv->dev, c->pasid);
		/* Strict: once it returns, no access through the client's domain. */
		iovm_domain_destroy(c->dom);
	}
	c->dom = NULL;
	devmem_unmap_all(srv, c);
	if (c->ring)
		devmem_give_back(srv, c->ring_pa, c->ring_len);
	c->ring = NULL;
}

/* Whether every worker that was in a pass when @c left the array has finished it. */
static bool passes_over(struct iovm_device_server *srv, const struct client *c)
{
	for (unsigned w = 0; w < srv->nr_workers; w++)
		if ((c->passes_seen[w] & 1) &&
		    atomic_load_explicit(&srv->passes[w], memory_order_acquire) == c->passes_seen[w])
			return false;
	return true;
}

/* What was left of @c once no worker holds its pointer. */
static void client_release(struct iovm_device_server *srv, struct client *c)
{
	mp_fd_close(c->conn);
	/* After its windows went (teardown): nobody reads through it any more. */
	mp_fd_close(c->mem_fd);
	free(c->maps);
	pthread_mutex_destroy(&c->maps_lock);
	pthread_mutex_destroy(&c->lock);
	free(c);
	atomic_fetch_sub_explicit(&srv->nr_clients, 1, memory_order_release);
}

/* Release the clients whose passes are over; whether some still wait. */
static bool freeing_reap(struct iovm_device_server *srv)
{
	for (struct client **p = &srv->freeing; *p;) {
		struct client *c = *p;

		if (!passes_over(srv, c)) {
			p = &c->next_free;
			continue;
		}
		*p = c->next_free;
		client_release(srv, c);
	}
	return srv->freeing != NULL;
}

/* Client @i goes: out of the array, torn down now, released once no worker's pass holds it. */
static void client_free(struct iovm_device_server *srv, unsigned i)
{
	struct client *c = atomic_load_explicit(&srv->clients[i], memory_order_relaxed);

	atomic_store_explicit(&srv->clients[i], NULL, memory_order_release);
	/* Against the worker's: it counts its pass, then loads; we clear, then read its count. */
	atomic_thread_fence(memory_order_seq_cst);
	for (unsigned w = 0; w < srv->nr_workers; w++)
		c->passes_seen[w] = atomic_load_explicit(&srv->passes[w], memory_order_relaxed);
	if (c->opened && !c->closed)
		atomic_fetch_add_explicit(&srv->torn_down, 1, memory_order_relaxed);
	client_teardown(srv, c);
	c->next_free = srv->freeing;
	srv->freeing = c;
	freeing_reap(srv);
}

static int reply_fd(struct client *c, int status, uint32_t pasid, uint64_t iova, int fd)
{
	struct dp_rep rep = { .status = status, .pasid = pasid, .iova = iova };

	return mp_send_fds(c->conn, &rep, sizeof(rep), &fd, fd >= 0) == (ssize_t)sizeof(rep) ? 0 : -EPIPE;
}

static int reply(struct client *c, int status, uint32_t pasid, uint64_t iova)
{
	return reply_fd(c, status, pasid, iova, -1);
}

static bool pasid_used(struct iovm_device_server *srv, uint32_t pasid)
{
	for (unsigned i = 0; i < MAX_CLIENTS; i++) {
		struct client *c = atomic_load_explicit(&srv->clients[i], memory_order_relaxed);

		if (c && c->opened && c->pasid == pasid)
			return true;
	}
	return false;
}

static int do_open(struct iovm_device_server *srv, struct client *c, const struct dp_req *r)
{
	struct iovm_domain_attr attr = { .type = IOVM_DOMAIN_MANAGED };
	struct iovm_queue_attr qa = { .flags = IOVM_QUEUE_POLLED };
	struct mp_space *s = srv->s;
	bool ok;
	int ret;

	if (c->opened)
		return -EINVAL;
	if (r->share_id != s->c->share_id)
		return -EXDEV;
	if (r->depth < 2 || r->depth > MAX_DEPTH || (r->depth & (r->depth - 1)) || r->slot >= MP_MAX_PROCS)
		return -EINVAL;
	/* The slot it names is its own: the kernel's pid for the connection says so. */
	ret = mp_lock(&s->h);
	if (ret)
		return ret;
	ok = s->c->slots[r->slot].state == MP_SLOT_LIVE && s->c->slots[r->slot].pid == c->pid;
	mp_unlock(&s->h);
	if (!ok)
		return -EACCES;
	c->slot = (uint8_t)r->slot;
	c->depth = r->depth;
	c->ring_len = align_up(dp_ring_bytes(r->depth), SZ_4K);
	if (r->a & (SZ_4K - 1))
		return -EINVAL;
	ret = devmem_borrow(srv, c, r->a, c->ring_len);
	if (ret)
		return ret;
	c->ring_pa = r->a;
	c->ring = iovm_dma_ptr(srv->ctx, IOVM_PA(r->a));
	if (!c->ring) {
		devmem_give_back(srv, c->ring_pa, c->ring_len);
		return -EFAULT;
	}
	do
		c->pasid = srv->next_pasid = srv->next_pasid % IOVM_PASID_MAX + 1;
	while (pasid_used(srv, c->pasid));
	ret = iovm_domain_create(srv->ctx, &attr, &c->dom);
	if (ret)
		goto fail;
	/* Faults in the client's mirrored registrations: page requests to the client. */
	iommu_domain_set_resolver(c->dom, devodp_resolve, c);
	ret = iovm_device_attach(srv->dev, c->dom, c->pasid);
	if (ret)
		goto fail;
	qa.depth = r->depth;
	ret = iovm_queue_create(srv->dev, &qa, &c->q);
	if (ret)
		goto fail;
	dev_queue_set_page_request(c->q, devmem_page_request, c);
	c->opened = true;
	atomic_fetch_add_explicit(&srv->opened, 1, memory_order_relaxed);
	return 0;

fail:
	/* client_free() undoes what was made: the domain, the loan of the ring. */
	return ret;
}

/* Wake worker @id if it dozes (its eventfd; a count already there rings as well). */
static void ring_worker(struct iovm_device_server *srv, unsigned id)
{
	uint64_t one = 1;

	if (srv->wake_fd[id] >= 0 && write(srv->wake_fd[id], &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_debug("device server: cannot ring worker %u: %s", id, strerror(errno));
}

/* One request of @c; false when the client is to go (closed, dead, or speaking nonsense). */
static bool serve_request(struct iovm_device_server *srv, unsigned idx, struct client *c)
{
	struct dp_req r;
	uint64_t iova = 0;
	int fd = -1, ret;
	ssize_t n = mp_recv_fd(c->conn, &r, sizeof(r), MSG_DONTWAIT, &fd);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return true;
	/* A descriptor comes only with DP_OPEN, and once: anything else is nonsense. */
	if (n != (ssize_t)sizeof(r) || (fd >= 0 && (r.op != DP_OPEN || c->opened || c->mem_fd >= 0))) {
		mp_fd_close(fd);
		return false;
	}
	switch (r.op) {
	case DP_OPEN:
		c->mem_fd = fd;
		/* Under the client's lock: a worker reads what opening sets (ring, queue, opened). */
		pthread_mutex_lock(&c->lock);
		ret = do_open(srv, c, &r);
		pthread_mutex_unlock(&c->lock);
		if (!ret) {
			/*
			 * Ring the worker: dozing, it marked the clients it had
			 * asleep, not this one, whose first submissions would
			 * not ring and wait for its 100 ms poll.
			 */
			ring_worker(srv, idx % srv->nr_workers);
			/* With the eventfd of the worker that serves this slot of the array. */
			reply_fd(c, 0, c->pasid, 0, srv->wake_fd[idx % srv->nr_workers]);
			return true;
		}
		break;
	case DP_MAP:
	case DP_MAP_VA:
	case DP_MAP_MR:
		ret = c->opened && !c->closed ? devmem_map(srv, c, &r, &iova) : -EINVAL;
		break;
	case DP_UNMAP:
		ret = c->opened && !c->closed ? devmem_unmap(srv, c, &r) : -EINVAL;
		break;
	case DP_DROP:
		ret = c->opened && !c->closed ? devodp_drop(c, &r) : -EINVAL;
		break;
	case DP_FILL:
		ret = c->opened && !c->closed ? devodp_fill(c, &r) : -EINVAL;
		break;
	case DP_CLOSE:
		/* Torn down before the answer: then the client may free its ring. */
		client_teardown(srv, c);
		c->closed = true;
		ret = 0;
		break;
	default:
		return false;
	}
	if (ret)
		atomic_fetch_add_explicit(&srv->refused, 1, memory_order_relaxed);
	return reply(c, ret, 0, iova) == 0 && (r.op != DP_OPEN || !ret);
}

static void accept_client(struct iovm_device_server *srv)
{
	struct ucred cred;
	struct client *c;
	int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	mp_fd_own(fd);
	if (mp_peer_allowed(srv->s->c, fd, &cred)) {
		struct dp_rep rep = { .status = -EACCES };

		send(fd, &rep, sizeof(rep), MSG_NOSIGNAL);
		mp_fd_close(fd);
		return;
	}
	for (unsigned i = 0; i < MAX_CLIENTS; i++) {
		if (atomic_load_explicit(&srv->clients[i], memory_order_relaxed))
			continue;
		c = calloc(1, sizeof(*c));
		if (!c)
			break;
		pthread_mutex_init(&c->lock, NULL);
		pthread_mutex_init(&c->maps_lock, NULL);
		c->conn = fd;
		c->mem_fd = -1;
		c->pid = cred.pid;
		atomic_fetch_add_explicit(&srv->nr_clients, 1, memory_order_relaxed);
		atomic_store_explicit(&srv->clients[i], c, memory_order_release);
		return;
	}
	mp_fd_close(fd);
}

static void *ctl_main(void *arg)
{
	struct iovm_device_server *srv = arg;
	struct pollfd pfd[2 + MAX_CLIENTS];
	unsigned idx[MAX_CLIENTS];

	atomic_fetch_add_explicit(&srv->started, 1, memory_order_release);
	for (;;) {
		unsigned n = 0;

		pfd[n++] = (struct pollfd){ .fd = srv->stop_fd, .events = POLLIN };
		pfd[n++] = (struct pollfd){ .fd = srv->listen_fd, .events = POLLIN };
		for (unsigned i = 0; i < MAX_CLIENTS; i++) {
			struct client *c = atomic_load_explicit(&srv->clients[i], memory_order_relaxed);

			if (!c)
				continue;
			idx[n - 2] = i;
			pfd[n++] = (struct pollfd){ .fd = c->conn, .events = POLLIN };
		}
		/* Clients waiting for the workers' passes: looked at again within a millisecond. */
		if (poll(pfd, n, freeing_reap(srv) ? 1 : -1) < 0 && errno != EINTR)
			break;
		if (pfd[0].revents)
			break;
		for (unsigned k = 2; k < n; k++) {
			unsigned i = idx[k - 2];
			struct client *c = atomic_load_explicit(&srv->clients[i], memory_order_relaxed);

			if (!pfd[k].revents || serve_request(srv, i, c))
				continue;
			/* Closed, or dead: its queue, its domain and its loans go. */
			client_free(srv, i);
		}
		if (pfd[1].revents)
			accept_client(srv);
	}
	for (unsigned i = 0; i < MAX_CLIENTS; i++) {
		struct client *c = atomic_load_explicit(&srv->clients[i], memory_order_relaxed);

		if (c) {
			c->closed = true; /* the server stops: not a client's death */
			client_free(srv, i);
		}
	}
	/* The workers run until the control thread is gone: their passes end. */
	while (freeing_reap(srv))
		usleep(100);
	return NULL;
}

/* Ring every worker: one dozing sees stopping now, not at the end of its 100 ms poll. */
static void wake_workers(struct iovm_device_server *srv)
{
	for (unsigned i = 0; i < srv->nr_workers; i++)
		ring_worker(srv, i);
}

/* ---- the public calls ---- */

IOVM_API int iovm_device_serve(struct iovm_ctx *ctx, const char *name, unsigned workers,
			       struct iovm_device_server **out)
{
	struct iovm_domain_attr attr = { .type = IOVM_DOMAIN_MANAGED };
	struct iovm_device_server *srv;
	struct sockaddr_un sun;
	unsigned len;
	int ret;

	err_enter();
	if (!ctx || !out || workers > MAX_WORKERS)
		return err_inval("!ctx || !out || workers > 64");
	ret = mp_name_check(name);
	if (ret)
		return ret;
	if (!ctx->mp)
		return err_detail(-ENOENT, IOVM_LOG_DEBUG, "the context is neither shared nor attached");
	srv = fi_calloc(1, sizeof(*srv));
	if (!srv)
		return -ENOMEM;
	srv->ctx = ctx;
	srv->s = ctx->mp;
	srv->fork_gen = mp_fork_gen();
	srv->listen_fd = srv->stop_fd = -1;
	srv->nr_workers = workers ? workers : 1;
	for (unsigned i = 0; i < MAX_WORKERS; i++)
		srv->wake_fd[i] = -1;
	for (unsigned i = 0; i < srv->nr_workers; i++) {
		srv->wake_fd[i] = fi_eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (srv->wake_fd[i] < 0) {
			ret = -errno;
			goto free_srv;
		}
		mp_fd_own(srv->wake_fd[i]);
	}
	ret = iovm_device_open(ctx, "sw", &srv->dev);
	if (ret)
		goto free_srv;
	ret = iovm_domain_create(ctx, &attr, &srv->none_dom);
	if (ret)
		goto close_dev;
	ret = iovm_device_attach(srv->dev, srv->none_dom, IOVM_PASID_NONE);
	if (ret)
		goto destroy_dom;
	ret = mp_sock_addr_fmt(DP_SOCK_FMT, name, &sun, &len);
	if (ret)
		goto destroy_dom;
	srv->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (srv->listen_fd < 0) {
		ret = -errno;
		goto destroy_dom;
	}
	mp_fd_own(srv->listen_fd);
	if (bind(srv->listen_fd, (struct sockaddr *)&sun, len) || listen(srv->listen_fd, 64)) {
		ret = errno == EADDRINUSE ? err_detail(-EEXIST, IOVM_LOG_DEBUG, "a device server named '%s' exists", name)
					  : -errno;
		goto close_listen;
	}
	srv->stop_fd = fi_eventfd(0, EFD_CLOEXEC);
	if (srv->stop_fd < 0) {
		ret = -errno;
		goto close_listen;
	}
	mp_fd_own(srv->stop_fd);
	for (unsigned i = 0; i < srv->nr_workers; i++) {
		struct devwork_arg *wa = fi_calloc(1, sizeof(*wa));

		if (wa) {
			wa->srv = srv;
			wa->id = i;
		}
		ret = wa ? -fi_pthread_create(&srv->workers[i], NULL, devwork_main, wa) : -ENOMEM;
		if (ret) {
			free(wa);
			srv->nr_workers = i;
			goto stop_workers;
		}
	}
	ret = -fi_pthread_create(&srv->ctl, NULL, ctl_main, srv);
	if (ret)
		goto stop_workers;
	/* Once every thread runs: a fork() right after must not catch one setting itself up. */
	while (atomic_load_explicit(&srv->started, memory_order_acquire) != srv->nr_workers + 1)
		sched_yield();
	*out = srv;
	return 0;

stop_workers:
	atomic_store(&srv->stopping, true);
	wake_workers(srv);
	for (unsigned i = 0; i < srv->nr_workers; i++)
		pthread_join(srv->workers[i], NULL);
	mp_fd_close(srv->stop_fd);
close_listen:
	mp_fd_close(srv->listen_fd);
destroy_dom:
	iovm_device_detach(srv->dev, IOVM_PASID_NONE);
	iovm_domain_destroy(srv->none_dom);
close_dev:
	iovm_device_close(srv->dev);
free_srv:
	for (unsigned i = 0; i < MAX_WORKERS; i++)
		mp_fd_close(srv->wake_fd[i]);
	free(srv);
	return ret;
}

IOVM_API int iovm_device_server_info(struct iovm_device_server *srv, struct iovm_device_server_info *info)
{
	err_enter();
	if (!srv || !info)
		return err_inval("!srv || !info");
	memset(info, 0, sizeof(*info));
	info->clients = atomic_load_explicit(&srv->nr_clients, memory_order_acquire);
	info->opened = atomic_load_explicit(&srv->opened, memory_order_relaxed);
	info->descriptors = atomic_load_explicit(&srv->descriptors, memory_order_relaxed);
	info->torn_down = atomic_load_explicit(&srv->torn_down, memory_order_relaxed);
	info->refused = atomic_load_explicit(&srv->refused, memory_order_relaxed);
	return 0;
}

IOVM_API int iovm_device_server_stop(struct iovm_device_server *srv)
{
	uint64_t one = 1;

	err_enter();
	if (!srv)
		return err_inval("!srv");
	if (srv->fork_gen != mp_fork_gen()) {
		/* A forked child: the threads are the parent's, the descriptors closed at the fork. */
		return err_detail(-EPERM, IOVM_LOG_DEBUG, "a forked child may not stop its parent's device server");
	}
	if (write(srv->stop_fd, &one, sizeof(one)) != sizeof(one))
		log_err("device server: cannot stop the control thread");
	pthread_join(srv->ctl, NULL);
	atomic_store_explicit(&srv->stopping, true, memory_order_release);
	wake_workers(srv);
	for (unsigned i = 0; i < srv->nr_workers; i++)
		pthread_join(srv->workers[i], NULL);
	mp_fd_close(srv->stop_fd);
	mp_fd_close(srv->listen_fd);
	iovm_device_detach(srv->dev, IOVM_PASID_NONE);
	iovm_domain_destroy(srv->none_dom);
	iovm_device_close(srv->dev);
	free(srv->loans);
	for (unsigned i = 0; i < MAX_WORKERS; i++)
		mp_fd_close(srv->wake_fd[i]);
	free(srv);
	return 0;
}
