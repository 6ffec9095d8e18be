/* SPDX-License-Identifier: MIT */
/*
 * devcli_mr.c - a client's registrations mirrored on a device process
 * (iovm_rqueue_map_mr()): the device maps their pages only as this
 * process answers its page requests through the registration (pinned
 * within the pin budget, watched by the memory monitor, then filled on
 * the device: DP_FILL), and unmaps them before the registration lets them
 * go (DP_DROP, answered once the device unmapped them). Fills and drops
 * are sent under the registration's lock, which orders them. The device
 * side: devodp.c.
 *
 * Locks, in the order taken: mirror_lock (the reaper answering a page
 * request), the registration's (reg_mirror_resolve()), req_lock (a fill
 * or a drop sent from under the registration's lock). Nothing takes them
 * the other way: a map or an unmap takes each alone.
 */
#include <errno.h>
#include <stdlib.h>

#include <iovm/mp.h>
#include <iovm/reg.h>

#include "base/compiler.h"
#include "base/error.h"
#include "base/fault_inject.h"
#include "base/log.h"
#include "mp/devcli.h"
#include "mp/mp.h"
#include "mp/mp_internal.h"
#include "reg/reg.h"

struct rq_mirror {
	struct reg_mirror m;
	struct iovm_rqueue *q;   /* NULL in a forked child: nothing to tell */
	struct iovm_mr *mr;
	uintptr_t start, end;    /* the MR's pages */
	uint64_t iova;           /* the device's IOVA of start; under mirror_lock, 0 until the device answers */
};

/* The registration pinned [start, end) for a page request: the device maps it before the answer. */
static int mirror_fill(struct reg_mirror *m, uintptr_t start, uintptr_t end, unsigned perm)
{
	struct rq_mirror *mi = container_of(m, struct rq_mirror, m);
	struct dp_req r = { .op = DP_FILL, .a = mi->iova + (start - mi->start), .b = end - start, .perm = perm };
	struct dp_rep rep;

	if (!mi->q || mi->q->fork_gen != mp_fork_gen())
		return -EFAULT;
	return rq_request(mi->q, &r, -1, &rep) ? -EFAULT : 0;
}

/* The registration's pages in [start, end) go: the device unmaps them first. */
static void mirror_drop(struct reg_mirror *m, uintptr_t start, uintptr_t end)
{
	struct rq_mirror *mi = container_of(m, struct rq_mirror, m);
	struct dp_req r = { .op = DP_DROP, .a = start, .b = end - start };
	struct dp_rep rep;
	int ret;

	if (!mi->q || mi->q->fork_gen != mp_fork_gen())
		return;
	/* A device process gone, or a queue closed, maps nothing any more. */
	ret = rq_request(mi->q, &r, -1, &rep);
	if (ret && ret != -EPIPE && ret != -EINVAL)
		log_debug("device queue: the device process did not drop %#lx+%#lx: %d", (unsigned long)start,
			  (unsigned long)(end - start), ret);
}

/* The mirror of @mr on @q, or NULL. Under mirror_lock. */
static unsigned mirror_find(const struct iovm_rqueue *q, const struct iovm_mr *mr)
{
	unsigned i = 0;

	while (i < q->nr_mirrors && q->mirrors[i]->mr != mr)
		i++;
	return i;
}

static int mirror_insert(struct iovm_rqueue *q, struct rq_mirror *mi)
{
	int ret = 0;

	pthread_mutex_lock(&q->mirror_lock);
	if (mirror_find(q, mi->mr) < q->nr_mirrors) {
		ret = -EEXIST;
	} else if (q->nr_mirrors == q->cap_mirrors) {
		unsigned cap = q->cap_mirrors ? q->cap_mirrors * 2 : 8;
		struct rq_mirror **n = fi_realloc(q->mirrors, cap * sizeof(*n));

		if (n) {
			q->mirrors = n;
			q->cap_mirrors = cap;
		} else {
			ret = -ENOMEM;
		}
	}
	if (!ret)
		q->mirrors[q->nr_mirrors++] = mi;
	pthread_mutex_unlock(&q->mirror_lock);
	return ret;
}

/* Out of the array: after it, no page request is answered through it. */
static struct rq_mirror *mirror_take(struct iovm_rqueue *q, const struct iovm_mr *mr)
{
	struct rq_mirror *mi = NULL;
	unsigned i;

	pthread_mutex_lock(&q->mirror_lock);
	i = mirror_find(q, mr);
	if (i < q->nr_mirrors) {
		mi = q->mirrors[i];
		q->mirrors[i] = q->mirrors[--q->nr_mirrors];
	}
	pthread_mutex_unlock(&q->mirror_lock);
	return mi;
}

IOVM_API int iovm_rqueue_map_mr(struct iovm_rqueue *q, struct iovm_mr *mr, uint32_t perm, iovm_iova_t *iova)
{
	struct dp_req r = { .op = DP_MAP_MR, .perm = perm };
	struct reg_mirror_range range;
	uintptr_t heap;
	struct rq_mirror *mi;
	struct dp_rep rep;
	int ret;

	err_enter();
	if (!q || !mr || !iova || !perm || (perm & ~(uint32_t)(IOVM_MAP_READ | IOVM_MAP_WRITE)))
		return err_inval("!q || !mr || !iova || bad perm");
	ret = rq_not_forked(q);
	if (ret)
		return ret;
	mi = fi_calloc(1, sizeof(*mi));
	if (!mi)
		return -ENOMEM;
	mi->m.fill = mirror_fill;
	mi->m.drop = mirror_drop;
	mi->q = q;
	mi->mr = mr;
	/* Mirrored before the device maps anything: a drop from now on reaches it. */
	ret = reg_mirror_add(mr, &mi->m, &range);
	if (ret)
		goto free_mirror;
	mi->start = range.start;
	mi->end = range.end;
	ret = -EACCES;
	if (perm & ~range.prot) {
		err_detail(ret, IOVM_LOG_DEBUG, "the registration does not grant the device %s",
			   perm & IOVM_MAP_WRITE ? "writes" : "reads");
		goto unmirror;
	}
	heap = (uintptr_t)q->s->heap;
	if (mi->start < heap + q->s->heap_size && heap < mi->end) {
		ret = err_inval("a registration of the shared heap: map its memory with iovm_rqueue_map()");
		goto unmirror;
	}
	ret = mirror_insert(q, mi);
	if (ret) {
		if (ret == -EEXIST)
			err_detail(ret, IOVM_LOG_DEBUG, "the registration is mapped on this queue already");
		goto unmirror;
	}
	r.a = mi->start;
	r.b = mi->end - mi->start;
	ret = rq_request(q, &r, -1, &rep);
	if (ret) {
		if (ret == -EOPNOTSUPP)
			err_detail(ret, IOVM_LOG_DEBUG, "the device process cannot reach this process's own memory");
		goto take;
	}
	/* In the array already (the device may ask at once): the reaper reads it under the lock. */
	pthread_mutex_lock(&q->mirror_lock);
	mi->iova = rep.iova;
	pthread_mutex_unlock(&q->mirror_lock);
	*iova = IOVM_IOVA(rep.iova + (range.addr - mi->start));
	return 0;

take:
	mirror_take(q, mr);
unmirror:
	reg_mirror_del(mr, &mi->m);
free_mirror:
	free(mi);
	return ret;
}

IOVM_API int iovm_rqueue_unmap_mr(struct iovm_rqueue *q, struct iovm_mr *mr)
{
	struct dp_req r = { .op = DP_UNMAP };
	struct rq_mirror *mi;
	struct dp_rep rep;
	int ret;

	err_enter();
	if (!q || !mr)
		return err_inval("!q || !mr");
	ret = rq_not_forked(q);
	if (ret)
		return ret;
	mi = mirror_take(q, mr);
	if (!mi)
		return err_inval("the registration is not mapped on this queue");
	r.a = mi->iova;
	r.b = mi->end - mi->start;
	/* Strict on the device: when it answers, no descriptor reaches the pages. Gone: nothing does. */
	ret = rq_request(q, &r, -1, &rep);
	reg_mirror_del(mr, &mi->m);
	free(mi);
	return ret == -EPIPE ? 0 : ret;
}

bool rq_mirror_answer(struct iovm_rqueue *q, uint64_t addr, uint64_t iova, uint32_t access, int *status)
{
	bool found = false;

	pthread_mutex_lock(&q->mirror_lock);
	for (unsigned i = 0; i < q->nr_mirrors; i++) {
		struct rq_mirror *mi = q->mirrors[i];
		uint64_t lo, hi;

		/* Two MRs may hold one address: the device says which it faulted in (unknown yet: by address). */
		if (addr < mi->start || addr >= mi->end ||
		    (iova && mi->iova && (iova < mi->iova || iova - mi->iova != addr - mi->start)))
			continue;
		/* The chunk around it, cut from the MR's first page as the MR pins them (DP_MIRROR_CHUNK). */
		lo = mi->start + align_down(addr - mi->start, DP_MIRROR_CHUNK);
		hi = MIN((uint64_t)mi->end, lo + DP_MIRROR_CHUNK);
		*status = reg_mirror_resolve(&mi->m, mi->mr, lo, hi - lo, addr, access);
		/* A hole in the chunk: the page alone, as a fault of our own device would. */
		if (*status == -EFAULT && hi - lo > SZ_4K)
			*status = reg_mirror_resolve(&mi->m, mi->mr, align_down(addr, SZ_4K), SZ_4K, addr, access);
		/*
		 * Taken back at once (the pin budget, an invalidation): the
		 * device asks again, as many times as its engine lets a
		 * descriptor that makes no progress.
		 */
		if (*status == -EAGAIN)
			*status = 0;
		found = true;
		break;
	}
	pthread_mutex_unlock(&q->mirror_lock);
	return found;
}

void rq_mirrors_close(struct iovm_rqueue *q)
{
	bool forked = q->fork_gen != mp_fork_gen();

	for (unsigned i = 0; i < q->nr_mirrors; i++) {
		struct rq_mirror *mi = q->mirrors[i];

		/*
		 * A forked child's registrations are its parent's copies, whose
		 * locks a thread of the parent may have held at the fork: its
		 * mirrors stay, telling nothing.
		 */
		if (forked) {
			mi->q = NULL;
			continue;
		}
		reg_mirror_del(mi->mr, &mi->m);
		free(mi);
	}
	free(q->mirrors);
	q->mirrors = NULL;
	q->nr_mirrors = q->cap_mirrors = 0;
}
