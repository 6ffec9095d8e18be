/* SPDX-License-Identifier: MIT */
/*
 * devcli.c - a client's queue on a device process (iovm/mp.h): requests on
 * a connection, descriptors and completions through rings in a block of
 * the shared heap the client allocates and the device process borrows.
 *
 * The rings are the client's memory lent to the device process, not the
 * device process's: if the device process dies, the share gives them back
 * and the client's writes into them never land in memory someone else
 * was given; if the client dies, they go back to nobody and are freed.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <iovm/mem.h>
#include <iovm/mp.h>

#include "base/compiler.h"
#include "base/ctx.h"
#include "base/error.h"
#include "base/fault_inject.h"
#include "base/log.h"
#include "mp/devcli.h"
#include "mp/devproto.h"
#include "mp/mp.h"
#include "mp/mp_internal.h"
#include "os/vma.h"
#include "phys/phys.h"

/* How long the device process may take to answer a request; it answers at once unless stuck. */
#define REQUEST_TIMEOUT_S 30
/* Empty reaps between two looks at whether the device process is still there. */
#define LIVENESS_EVERY 256

int rq_not_forked(const struct iovm_rqueue *q)
{
	if (likely(q->fork_gen == mp_fork_gen()))
		return 0;
	return err_hot(-EPERM, "a forked child may not use its parent's queue");
}

/* Whether the connection has ended (the device process is gone). */
static bool conn_gone(struct iovm_rqueue *q)
{
	struct pollfd p = { .fd = q->conn, .events = POLLIN };

	if (atomic_load_explicit(&q->gone, memory_order_relaxed))
		return true;
	if (poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR))) {
		atomic_store_explicit(&q->gone, true, memory_order_relaxed);
		return true;
	}
	return false;
}

/* One request and its answer; @fd (-1: none) goes with the request. */
int rq_request(struct iovm_rqueue *q, const struct dp_req *r, int fd, struct dp_rep *rep)
{
	int got = -1;
	ssize_t n;

	pthread_mutex_lock(&q->req_lock);
	n = mp_send_fds(q->conn, r, sizeof(*r), &fd, fd >= 0);
	if (n == (ssize_t)sizeof(*r))
		n = mp_recv_fd(q->conn, rep, sizeof(*rep), 0, &got);
	pthread_mutex_unlock(&q->req_lock);
	/* The answer to DP_OPEN brings the worker's eventfd; nothing else brings a descriptor. */
	if (got >= 0) {
		if (r->op == DP_OPEN && q->wake_fd < 0 && n == (ssize_t)sizeof(*rep))
			q->wake_fd = got;
		else
			mp_fd_close(got);
	}
	if (n != (ssize_t)sizeof(*rep)) {
		atomic_store_explicit(&q->gone, true, memory_order_relaxed);
		return err_detail(-EPIPE, IOVM_LOG_DEBUG, "the device process is gone");
	}
	return rep->status;
}

/* Whether the device process is still there: a monitor waiting for its accesses stops waiting when not. */
static bool device_alive(void *arg)
{
	return !conn_gone(arg);
}

IOVM_API int iovm_rqueue_open(struct iovm_ctx *ctx, const char *name, unsigned depth, struct iovm_rqueue **out)
{
	struct timeval tv = { .tv_sec = REQUEST_TIMEOUT_S };
	struct dp_req r = { .op = DP_OPEN };
	struct sockaddr_un sun;
	struct iovm_rqueue *q;
	struct dp_rep rep;
	iovm_pa_t pa;
	unsigned len;
	int ret, mem_fd;

	err_enter();
	depth = depth ? depth : 256;
	if (!ctx || !out || depth < 2 || depth > 4096 || (depth & (depth - 1)))
		return err_inval("!ctx || !out || depth is not a power of two, 2 to 4096");
	ret = mp_name_check(name);
	if (ret)
		return ret;
	if (!ctx->mp)
		return err_detail(-ENOENT, IOVM_LOG_DEBUG, "the context is neither shared nor attached");
	if (ctx->mp->fork_gen != mp_fork_gen())
		return err_detail(-EPERM, IOVM_LOG_DEBUG, "a forked child may not use its parent's share: attach");
	ret = mp_sock_addr_fmt(DP_SOCK_FMT, name, &sun, &len);
	if (ret)
		return ret;
	q = fi_calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->ctx = ctx;
	q->s = ctx->mp;
	q->depth = depth;
	q->fork_gen = ctx->mp->fork_gen;
	q->wake_fd = -1;
	q->gate_peer = -1;
	pthread_mutex_init(&q->req_lock, NULL);
	pthread_mutex_init(&q->mirror_lock, NULL);
	q->conn = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (q->conn < 0) {
		ret = -errno;
		goto free_q;
	}
	mp_fd_own(q->conn);
	if (connect(q->conn, (struct sockaddr *)&sun, len)) {
		ret = errno == ECONNREFUSED || errno == ENOENT
			      ? err_detail(-ENOENT, IOVM_LOG_DEBUG, "no device process is named '%s'", name)
			      : -errno;
		goto close_conn;
	}
	setsockopt(q->conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	q->ring = iovm_dma_zalloc(ctx, align_up(dp_ring_bytes(depth), SZ_4K), SZ_4K, 0);
	if (!q->ring) {
		ret = -errno;
		goto close_conn;
	}
	ret = iovm_dma_pa(ctx, q->ring, &pa);
	if (ret)
		goto free_ring;
	/* Our memory monitor's gate, for the device's accesses to our mirrored registrations. */
	q->gate_peer = phys_gate_peer_add(ctx->phys, &q->ring->gate, device_alive, q);
	if (q->gate_peer < 0) {
		ret = err_detail(-ENOSPC, IOVM_LOG_DEBUG, "this process has too many device queues open");
		goto free_ring;
	}
	r.a = pa.addr;
	r.depth = depth;
	r.slot = q->s->slot;
	r.share_id = q->s->c->share_id;
	/*
	 * This process's memory file, for the device process to reach its own
	 * memory (iovm_rqueue_map() of memory outside the heap): opened here,
	 * where the kernel checks the access (on itself: granted), and passed.
	 * Without it (no /proc, or a hardened one), only the shared heap is reached.
	 */
	mem_fd = fi_open("/proc/self/mem", O_RDWR | O_CLOEXEC);
	if (mem_fd < 0 && errno != ENOENT && errno != EACCES && errno != EPERM) {
		/* Out of descriptors, say: the queue would quietly lack what it has elsewhere. */
		ret = err_detail(-errno, IOVM_LOG_DEBUG, "cannot open /proc/self/mem: %s", strerror(errno));
		goto free_ring;
	}
	ret = rq_request(q, &r, mem_fd, &rep);
	if (mem_fd >= 0)
		close(mem_fd);
	if (ret == -EXDEV)
		ret = err_detail(ret, IOVM_LOG_DEBUG, "device process '%s' serves another share", name);
	else if (ret == -EACCES)
		ret = err_detail(ret, IOVM_LOG_DEBUG, "device process '%s' does not let this process in", name);
	if (ret)
		goto free_ring;
	q->pasid = rep.pasid;
	*out = q;
	return 0;

free_ring:
	/* The device process gave the ring back (or never took it) before it answered. */
	phys_gate_peer_del(ctx->phys, q->gate_peer);
	iovm_dma_free(ctx, q->ring);
	mp_fd_close(q->wake_fd);
close_conn:
	mp_fd_close(q->conn);
free_q:
	pthread_mutex_destroy(&q->mirror_lock);
	pthread_mutex_destroy(&q->req_lock);
	free(q);
	return ret;
}

IOVM_API uint32_t iovm_rqueue_pasid(const struct iovm_rqueue *q)
{
	return q ? q->pasid : 0;
}

/*
 * Memory of this process's own, outside the shared heap: none of it in the
 * heap, every byte mapped, readable, and writable if the device is to
 * write. The device reaches it through this process's memory file, which
 * would write read-only pages as a debugger does: the rights are checked
 * here, as a registration checks them, when the range is mapped.
 */
static int own_memory_check(const struct iovm_rqueue *q, const void *ptr, size_t len, uint32_t perm)
{
	uintptr_t start = (uintptr_t)ptr, heap = (uintptr_t)q->s->heap;
	struct os_vma_info vi;
	int ret;

	if (start < heap + q->s->heap_size && heap < start + len)
		return err_inval("the range is partly in the shared heap");
	ret = os_vma_range(start, start + len, &vi);
	if (ret)
		return err_detail(ret, IOVM_LOG_DEBUG, "cannot read this process's mappings");
	if (!vi.mapped || !vi.readable || (!vi.writable && (perm & IOVM_MAP_WRITE)))
		return err_detail(-EFAULT, IOVM_LOG_DEBUG, "%p+%zu is not all mapped and %s", ptr, len,
				  perm & IOVM_MAP_WRITE ? "writable" : "readable");
	return 0;
}

IOVM_API int iovm_rqueue_map(struct iovm_rqueue *q, const void *ptr, size_t len, uint32_t perm, iovm_iova_t *iova)
{
	struct dp_req r = { .op = DP_MAP, .perm = perm };
	struct dp_rep rep;
	uint64_t off;
	int ret;

	err_enter();
	if (!q || !ptr || !len || !iova || !is_aligned((uintptr_t)ptr | len, SZ_4K) || !perm ||
	    (perm & ~(uint32_t)(IOVM_MAP_READ | IOVM_MAP_WRITE)))
		return err_inval("!q || !ptr || !len || !iova || unaligned || bad perm");
	ret = rq_not_forked(q);
	if (ret)
		return ret;
	if ((uintptr_t)ptr + len < (uintptr_t)ptr)
		return err_inval("the range wraps");
	off = (uint64_t)((const uint8_t *)ptr - q->s->heap);
	if (off < q->s->heap_size && len <= q->s->heap_size - off) {
		r.a = pa_val(q->s->pa) + off;
	} else {
		ret = own_memory_check(q, ptr, len, perm);
		if (ret)
			return ret;
		r.op = DP_MAP_VA;
		r.a = (uintptr_t)ptr;
	}
	r.b = len;
	ret = rq_request(q, &r, -1, &rep);
	if (ret == -EOPNOTSUPP)
		return err_detail(ret, IOVM_LOG_DEBUG, "the device process cannot reach this process's own memory");
	if (ret == -EACCES)
		return err_detail(ret, IOVM_LOG_DEBUG, "%p+%zu: a byte of those pages is not this process's to map",
				  ptr, len);
	if (ret)
		return ret;
	*iova = IOVM_IOVA(rep.iova);
	return 0;
}

IOVM_API int iovm_rqueue_unmap(struct iovm_rqueue *q, iovm_iova_t iova, size_t len)
{
	struct dp_req r = { .op = DP_UNMAP, .a = iova.addr, .b = len };
	struct dp_rep rep;
	int ret;

	err_enter();
	if (!q || !len)
		return err_inval("!q || !len");
	ret = rq_not_forked(q);
	if (ret)
		return ret;
	ret = rq_request(q, &r, -1, &rep);
	if (ret == -EINVAL)
		return err_inval("nothing was mapped at that IOVA with that length");
	return ret;
}

IOVM_API int iovm_rqueue_submit(struct iovm_rqueue *q, const struct iovm_desc *d)
{
	struct iovm_desc *sq;

	if (unlikely(!q || !d))
		return err_hot(-EINVAL, "invalid argument: !q || !d");
	if (unlikely(q->fork_gen != mp_fork_gen()))
		return rq_not_forked(q);
	/* In flight: submitted and not reaped. Every completion has its place in the ring. */
	if (unlikely(q->sq_tail - atomic_load_explicit(&q->reaped, memory_order_acquire) >= q->depth)) {
		if (conn_gone(q))
			return err_hot(-EPIPE, "the device process is gone");
		return -EAGAIN;
	}
	if (unlikely(atomic_load_explicit(&q->gone, memory_order_relaxed)))
		return err_hot(-EPIPE, "the device process is gone");
	sq = dp_sq(q->ring);
	sq[q->sq_tail & (q->depth - 1)] = *d;
	q->sq_tail++;
	atomic_store_explicit(&q->ring->sq_tail, q->sq_tail, memory_order_release);
	/* The worker marks itself asleep, then looks: one of the two sees the other's store. */
	atomic_thread_fence(memory_order_seq_cst);
	if (unlikely(atomic_load_explicit(&q->ring->sleeping, memory_order_relaxed)) && q->wake_fd >= 0) {
		uint64_t one = 1;

		if (write(q->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			log_debug("device queue: cannot ring the worker: %s", strerror(errno));
	}
	return 0;
}

/*
 * The device process asks about a page of this process's own memory (a
 * descriptor that blocks on faults found nothing mapped there): the
 * handler says whether it is mapped now; without one, it is not.
 */
static __noinline void page_request_answer(struct iovm_rqueue *q)
{
	struct dp_ring_ctl *r = q->ring;
	uint32_t seq = atomic_load_explicit(&r->pr_seq, memory_order_acquire);
	uint64_t addr = atomic_load_explicit(&r->pr_addr, memory_order_relaxed);
	uint32_t access = atomic_load_explicit(&r->pr_access, memory_order_relaxed);
	int status = -EFAULT;

	if (access != IOVM_MAP_READ && access != IOVM_MAP_WRITE)
		status = -EFAULT;
	else if (rq_mirror_answer(q, addr, atomic_load_explicit(&r->pr_iova, memory_order_relaxed), access, &status))
		; /* a registration's page: its own answer, whatever the handler */
	else if (q->fault_fn && q->fault_fn(q->fault_arg, (void *)(uintptr_t)addr, access) >= 0)
		status = 0;
	atomic_store_explicit(&r->pr_status, status ? -EFAULT : 0, memory_order_relaxed);
	atomic_store_explicit(&r->pr_done, seq, memory_order_release);
	q->pr_answered = seq;
}

IOVM_API int iovm_rqueue_set_fault_handler(struct iovm_rqueue *q, iovm_rqueue_fault_fn fn, void *arg)
{
	err_enter();
	if (!q)
		return err_inval("!q");
	q->fault_fn = fn;
	q->fault_arg = arg;
	return 0;
}

IOVM_API int iovm_rqueue_reap(struct iovm_rqueue *q, struct iovm_cqe *cqe, unsigned max)
{
	struct iovm_cqe *cq;
	uint32_t tail;
	unsigned n = 0;

	if (unlikely(!q || (!cqe && max)))
		return err_hot(-EINVAL, "invalid argument: !q || !cqe");
	if (unlikely(q->fork_gen != mp_fork_gen()))
		return rq_not_forked(q);
	if (unlikely(atomic_load_explicit(&q->ring->pr_seq, memory_order_relaxed) != q->pr_answered))
		page_request_answer(q);
	cq = dp_cq(q->ring, q->depth);
	tail = atomic_load_explicit(&q->ring->cq_tail, memory_order_acquire);
	/* The device process's index, checked: never more than was submitted. */
	if (tail - q->cq_head > q->depth)
		tail = q->cq_head;
	while (q->cq_head != tail && n < max)
		cqe[n++] = cq[q->cq_head++ & (q->depth - 1)];
	if (n) {
		atomic_store_explicit(&q->ring->cq_head, q->cq_head, memory_order_release);
		atomic_store_explicit(&q->reaped, q->cq_head, memory_order_release);
		q->empty_reaps = 0;
		return (int)n;
	}
	/* Once found gone, at every call (the header's promise), not at every LIVENESS_EVERY-th. */
	if (unlikely(atomic_load_explicit(&q->gone, memory_order_relaxed)) ||
	    (++q->empty_reaps % LIVENESS_EVERY == 0 && conn_gone(q)))
		return err_hot(-EPIPE, "the device process is gone");
	return 0;
}

IOVM_API int iovm_rqueue_close(struct iovm_rqueue *q)
{
	struct dp_req r = { .op = DP_CLOSE };
	struct dp_rep rep;

	err_enter();
	if (!q)
		return err_inval("!q");
	if (q->fork_gen != mp_fork_gen()) {
		/* A forked child: its connection was closed at the fork; the queue is the parent's. */
		rq_mirrors_close(q);
		pthread_mutex_destroy(&q->mirror_lock);
		pthread_mutex_destroy(&q->req_lock);
		free(q);
		return 0;
	}
	/*
	 * The device process stops the queue and gives the ring back before
	 * it answers. Without an answer (it is gone), the share gave it back
	 * when it died, or will: then the free below may be refused (EBUSY),
	 * and the ring goes when this process leaves the share.
	 */
	rq_request(q, &r, -1, &rep);
	/* The device process unmapped everything: the registrations are unmirrored, the gate copy goes. */
	rq_mirrors_close(q);
	phys_gate_peer_del(q->ctx->phys, q->gate_peer);
	if (iovm_dma_free(q->ctx, q->ring))
		log_debug("device queue: its ring is still lent; it goes when this process leaves the share");
	mp_fd_close(q->wake_fd);
	mp_fd_close(q->conn);
	pthread_mutex_destroy(&q->mirror_lock);
	pthread_mutex_destroy(&q->req_lock);
	free(q);
	return 0;
}
