/* SPDX-License-Identifier: MIT */
/*
 * devodp.c - a client's registrations mirrored on the device process
 * (iovm_rqueue_map_mr()): a range of the client's own memory, reached as
 * DP_MAP_VA's through its memory file, whose IOVAs are held but mapped
 * only chunk by chunk (DP_MIRROR_CHUNK), each after the client answered a
 * page request for it: the client pinned it, within its pin budget, with
 * its memory monitor watching. When the client's pages go (its budget
 * evicts them, its monitor invalidates them), it says so (DP_DROP) before
 * it unpins them, and the chunks they touch are unmapped, strictly,
 * before the answer. This is rdma-core's on-demand paging with the roles
 * of the kernel's HMM played by the client.
 *
 * The resolver runs on the worker serving the client, outside its
 * device-side section; the control thread maps, drops and unmaps. Both
 * under the client's maps_lock, which the resolver drops while it waits
 * for the client's answer: a drop meanwhile that touches the chunk asked
 * for (pending_dropped) makes it ask again, as an HMM fault that an
 * invalidation overtook starts over.
 */
#include <errno.h>

#include <iovm/iommu.h>

#include "base/compiler.h"
#include "base/ctx.h"
#include "iommu/iommu.h"
#include "mp/devsrv.h"
#include "phys/phys.h"

/* The mirror's mapping of @c holding @rva, or NULL. Under maps_lock. */
static struct mapping *mirror_at_iova(struct client *c, uint64_t iova)
{
	for (unsigned i = 0; i < c->nr_maps; i++) {
		struct mapping *m = &c->maps[i];

		if (m->mirror && iova - m->iova < m->len)
			return m;
	}
	return NULL;
}

/* DP_MAP_MR: the IOVAs held, the window made; no page mapped yet. */
int devodp_map(struct iovm_device_server *srv, struct client *c, const struct dp_req *r, uint64_t *iova_out)
{
	struct phys_space *ps = srv->ctx->phys;
	iova_t iova;
	pa_t pa;
	int ret;

	if (c->mem_fd < 0)
		return -EOPNOTSUPP;
	if (devmem_remote_maps(c) >= MAX_REMOTE_MAPS)
		return -ENOSPC;
	ret = phys_window_add_remote(ps, c->mem_fd, r->a, r->b, &pa);
	if (ret)
		return ret;
	ret = iommu_hold(c->dom, r->a, pa, r->b, &iova);
	if (ret)
		goto remove_window;
	ret = devmem_add_mapping(c, &(struct mapping){ .iova = iova_val(iova), .pa = pa_val(pa), .len = r->b,
						       .remote = true, .mirror = true, .perm = r->perm, .rva = r->a });
	if (ret)
		goto unhold;
	*iova_out = iova_val(iova);
	return 0;

unhold:
	iommu_unhold(c->dom, iova, pa, r->b);
remove_window:
	phys_window_remove(ps, pa);
	return ret;
}

/* [*lo, *hi): the chunks of @m that [a, a+len) touches, cut at @m's ends; false when none. */
static bool chunks_touched(const struct mapping *m, uint64_t a, uint64_t len, uint64_t *lo, uint64_t *hi)
{
	uint64_t end = m->rva + m->len;

	if (a >= end || a + len <= m->rva || a + len < a)
		return false;
	*lo = MAX(m->rva, align_down(a, DP_MIRROR_CHUNK));
	*hi = MIN(end, align_up(a + len, DP_MIRROR_CHUNK));
	return true;
}

int devodp_drop(struct client *c, const struct dp_req *r)
{
	pthread_mutex_lock(&c->maps_lock);
	for (unsigned i = 0; i < c->nr_maps; i++) {
		const struct mapping *m = &c->maps[i];
		uint64_t lo, hi;

		if (!m->mirror || !chunks_touched(m, r->a, r->b, &lo, &hi))
			continue;
		if (lo < c->pending_hi && c->pending_lo < hi)
			c->pending_dropped = true;
		/* Strict: once it returns, no device access reaches them through these IOVAs. */
		iommu_hold_unmap(c->dom, iova_make(m->iova + (lo - m->rva)), hi - lo);
	}
	pthread_mutex_unlock(&c->maps_lock);
	return 0;
}

void devodp_unmap(struct iovm_device_server *srv, struct client *c, const struct mapping *m)
{
	pthread_mutex_lock(&c->maps_lock);
	if (m->rva < c->pending_hi && c->pending_lo < m->rva + m->len)
		c->pending_dropped = true;
	pthread_mutex_unlock(&c->maps_lock);
	iommu_hold_unmap(c->dom, iova_make(m->iova), m->len);
	iommu_unhold(c->dom, iova_make(m->iova), pa_make(m->pa), m->len);
	phys_window_remove(srv->ctx->phys, pa_make(m->pa));
}

int devodp_resolve(void *arg, struct iovm_domain *dom, iova_t iova, unsigned access)
{
	struct client *c = arg;
	struct mapping *m;
	uint64_t rva, lo = 0, hi = 0, off;
	uint32_t perm;
	int ret;

	pthread_mutex_lock(&c->maps_lock);
	m = mirror_at_iova(c, iova_val(iova));
	if (!m || dom != c->dom) {
		pthread_mutex_unlock(&c->maps_lock);
		return -ENOENT;
	}
	/* Not present, and not allowed either: no use asking the client. */
	if (access & ~m->perm) {
		pthread_mutex_unlock(&c->maps_lock);
		return -EACCES;
	}
	rva = m->rva + (iova_val(iova) - m->iova);
	chunks_touched(m, rva, 1, &lo, &hi);
	c->pending_lo = lo;
	c->pending_hi = hi;
	c->pending_dropped = false;
	pthread_mutex_unlock(&c->maps_lock);

	ret = devmem_page_request(c, rva, access);
	if (ret == DP_PR_PAGE_ONLY) {
		lo = align_down(rva, SZ_4K);
		hi = lo + SZ_4K;
		ret = 0;
	}

	pthread_mutex_lock(&c->maps_lock);
	m = mirror_at_iova(c, iova_val(iova));
	if (!ret && m && !c->pending_dropped) {
		off = lo - m->rva;
		perm = m->perm;
		ret = iommu_hold_map(dom, iova_make(m->iova + off), pa_make(m->pa + off), hi - lo, perm);
		/* Pages of it mapped one by one before (a hole beside them then): the others, one by one. */
		if (ret == -EEXIST) {
			ret = 0;
			for (uint64_t at = 0; !ret && at < hi - lo; at += SZ_4K) {
				ret = iommu_hold_map(dom, iova_make(m->iova + off + at), pa_make(m->pa + off + at),
						     SZ_4K, perm);
				ret = ret == -EEXIST ? 0 : ret;
			}
		}
	}
	/* Dropped (or gone) while the client answered: 0, and the access faults again and asks afresh. */
	c->pending_lo = c->pending_hi = 0;
	pthread_mutex_unlock(&c->maps_lock);
	return ret == -ETIMEDOUT || ret == -EPIPE ? -EFAULT : ret;
}
