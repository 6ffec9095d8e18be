/* SPDX-License-Identifier: MIT */
/*
 * devodp.c - a client's registrations mirrored on the device process
 * (iovm_rqueue_map_mr()): a range of the client's own memory, reached as
 * DP_MAP_VA's is, through its memory file, whose IOVAs are held but whose
 * pages are mapped only as the client answers page requests. This is
 * rdma-core's on-demand paging with the kernel's HMM played by the client:
 *
 * - A fault in the range (the resolver, on the worker serving the client,
 *   outside its section) asks the client about the address and waits.
 * - The client pins the chunk around it (DP_MIRROR_CHUNK, cut from the
 *   MR's first page) within its pin budget, with its memory monitor
 *   watching, and, still holding its registration lock, has the control
 *   thread map what is still pinned of it (DP_FILL), writable only where
 *   its memory is now; then it answers, and the access is tried again.
 * - When the client's pages go (its budget evicts them, its monitor
 *   invalidates them), it has the control thread unmap the chunks they
 *   touch (DP_DROP), strictly, before it unpins them, again under its
 *   registration lock. So fills and drops reach us in the order of the
 *   pins they follow: a drop after a fill undoes it; none can come
 *   between a pin and its fill.
 *
 * The control thread changes the mappings under the client's maps_lock;
 * the resolver reads them under it.
 */
#include <errno.h>

#include <iovm/iommu.h>

#include "base/compiler.h"
#include "base/ctx.h"
#include "iommu/iommu.h"
#include "mp/devsrv.h"
#include "phys/phys.h"

/* The mirror's mapping of @c holding [iova, iova+len), or NULL. Under maps_lock. */
static struct mapping *mirror_at(struct client *c, uint64_t iova, uint64_t len)
{
	for (unsigned i = 0; i < c->nr_maps; i++) {
		struct mapping *m = &c->maps[i];

		if (m->mirror && iova - m->iova < m->len && len <= m->len - (iova - m->iova))
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

	ret = devmem_window(srv, c, r->a, r->b, &pa);
	if (ret)
		return ret;
	/* The client's monitor waits for our accesses before its munmap() returns (phys/gate.c). */
	ret = phys_window_gate(ps, pa, &c->ring->gate);
	if (ret)
		goto remove_window;
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

int devodp_fill(struct client *c, const struct dp_req *r)
{
	struct mapping *m;
	uint64_t off;
	uint32_t perm;
	int ret;

	if (!r->b || (r->a | r->b) & (SZ_4K - 1) || !r->perm || (r->perm & ~(uint32_t)(IOVM_MAP_READ | IOVM_MAP_WRITE)))
		return -EINVAL;
	pthread_mutex_lock(&c->maps_lock);
	m = mirror_at(c, r->a, r->b);
	if (!m) {
		pthread_mutex_unlock(&c->maps_lock);
		return -EINVAL;
	}
	off = r->a - m->iova;
	/* What the client's memory allows now (a read-only page), within what the mapping was given. */
	perm = m->perm & r->perm;
	if (!perm) {
		pthread_mutex_unlock(&c->maps_lock);
		return -EACCES;
	}
	ret = iommu_hold_map(c->dom, iova_make(m->iova + off), pa_make(m->pa + off), r->b, perm);
	/* Pages of it mapped before (one by one, beside a hole then): the others, one by one. */
	if (ret == -EEXIST) {
		ret = 0;
		for (uint64_t at = 0; !ret && at < r->b; at += SZ_4K) {
			ret = iommu_hold_map(c->dom, iova_make(m->iova + off + at), pa_make(m->pa + off + at), SZ_4K,
					     perm);
			ret = ret == -EEXIST ? 0 : ret;
		}
	}
	pthread_mutex_unlock(&c->maps_lock);
	return ret;
}

int devodp_drop(struct client *c, const struct dp_req *r)
{
	pthread_mutex_lock(&c->maps_lock);
	for (unsigned i = 0; i < c->nr_maps; i++) {
		const struct mapping *m = &c->maps[i];
		uint64_t end = m->rva + m->len, lo, hi;

		if (!m->mirror || r->a >= end || r->a + r->b <= m->rva || r->a + r->b < r->a)
			continue;
		/*
		 * The pages the client let go, no more: the rest of their chunk
		 * is still pinned there (a fill maps only pinned pages, and a
		 * drop follows every unpin), and a descriptor on it must not
		 * ask again because a neighbour was discarded.
		 */
		lo = MAX(m->rva, align_down(r->a, SZ_4K));
		hi = MIN(end, align_up(r->a + r->b, SZ_4K));
		/* Strict: once it returns, no device access reaches them through these IOVAs. */
		iommu_hold_unmap(c->dom, iova_make(m->iova + (lo - m->rva)), hi - lo);
	}
	pthread_mutex_unlock(&c->maps_lock);
	return 0;
}

void devodp_unmap(struct iovm_device_server *srv, struct client *c, const struct mapping *m)
{
	iommu_hold_unmap(c->dom, iova_make(m->iova), m->len);
	iommu_unhold(c->dom, iova_make(m->iova), pa_make(m->pa), m->len);
	phys_window_remove(srv->ctx->phys, pa_make(m->pa));
}

int devodp_resolve(void *arg, struct iovm_domain *dom, iova_t iova, unsigned access)
{
	struct client *c = arg;
	const struct mapping *m;
	uint64_t rva;
	uint32_t perm;

	if (dom != c->dom)
		return -ENOENT;
	pthread_mutex_lock(&c->maps_lock);
	m = mirror_at(c, iova_val(iova), 1);
	rva = m ? m->rva + (iova_val(iova) - m->iova) : 0;
	perm = m ? m->perm : 0;
	pthread_mutex_unlock(&c->maps_lock);
	if (!m)
		return -ENOENT;
	/* Not present, and not allowed either: no use asking the client. */
	if (access & ~perm)
		return -EACCES;
	/* The client fills what it pinned (DP_FILL) before it answers: yes means mapped now. */
	return devmem_page_request_at(c, rva, iova_val(iova), access) ? -EFAULT : 0;
}
