/* SPDX-License-Identifier: MIT */
/*
 * devmem.c - what a client of a device process maps in its domain there,
 * and how the device process holds it while mapped.
 *
 * Memory of the shared heap: whole pages every byte of which the client
 * holds, lent to the device process (mp_heap_lend()) so that nobody frees
 * them under the device; a block mapped twice is lent once, counted in a
 * table of loans.
 *
 * The client's own memory (its malloc()s, its stacks, what it registered
 * elsewhere): reached through the client's /proc/PID/mem, which the
 * client opened on itself and passed at open. The kernel checked that
 * open (ptrace's access mode, on itself: always granted), and every
 * pread()/pwrite() through it walks the client's page tables as they are
 * now: an unmapped page says EIO, a page not yet touched is faulted in
 * the client's address space, charged to the client. Chosen over
 * process_vm_readv(), which asks ptrace's permission at each call and is
 * refused where Yama's ptrace_scope is 1 (a device process is not its
 * clients' parent), and over memory the client would have to share with
 * us (a memfd): the client's memory stays whatever it is. The range is a
 * remote window on this process's bus (phys_window_add_remote()) mapped in
 * the client's domain, so that the engine's IOMMU checks every access as
 * it checks heap memory, and the engine moves the bytes with the file.
 *
 * All of it is the control thread's (the loan table needs no lock; the
 * share's lock guards the heap's owner and lender arrays; a client's
 * mappings change under its maps_lock, for the workers that resolve faults
 * in its mirrored registrations: devodp.c), but for page requests: a
 * worker asks the client about a hole in its own memory through its ring,
 * and waits for the answer.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <time.h>

#include <iovm/iommu.h>
#include <iovm/mem.h>

#include "base/clock.h"
#include "base/compiler.h"
#include "base/ctx.h"
#include "base/fault_inject.h"
#include "mp/devsrv.h"
#include "phys/phys.h"

/* How long a worker waits for a client's answer to a page request: it reaps far more often than this... */
#define PAGE_REQUEST_TIMEOUT_NS (UINT64_C(5) * 1000000000)
/* ...counting at most this much of each gap between two looks at the answer (clock_wait_tick()). */
#define PAGE_REQUEST_GAP_NS (UINT64_C(50) * 1000000)

/* ---- loans of the shared heap ---- */

/*
 * The loan of @grain, made when @make. Open addressing: an entry whose
 * refs fell to 0 stays (a tombstone, reused by the next insert on its
 * path) until the table grows, which keeps only live loans; nr_loans
 * counts every entry taken, so that a probe always meets an empty one.
 */
static struct loan *loan_find(struct iovm_device_server *srv, uint64_t grain, bool make)
{
	struct loan *reuse = NULL;

	if (make && (srv->nr_loans + 1) * 2 > srv->cap_loans) {
		unsigned cap = srv->cap_loans ? srv->cap_loans * 2 : 256, oldcap = srv->cap_loans;
		struct loan *old = srv->loans, *n = fi_calloc(cap, sizeof(*n));

		if (!n)
			return NULL;
		srv->loans = n;
		srv->cap_loans = cap;
		srv->nr_loans = 0;
		for (unsigned i = 0; i < oldcap; i++)
			if (old[i].grain && old[i].refs)
				*loan_find(srv, old[i].grain - 1, true) = old[i];
		free(old);
	}
	if (!srv->cap_loans)
		return NULL;
	for (unsigned i = (unsigned)((grain * 0x9e3779b97f4a7c15ull) >> 40) % srv->cap_loans;;
	     i = (i + 1) % srv->cap_loans) {
		struct loan *l = &srv->loans[i];

		if (l->grain == grain + 1)
			return l;
		if (l->grain && !l->refs && !reuse)
			reuse = l;
		if (l->grain)
			continue;
		/* Not in the table. */
		if (!make)
			return NULL;
		if (!reuse) {
			reuse = l;
			srv->nr_loans++;
		}
		reuse->grain = grain + 1;
		reuse->refs = 0;
		return reuse;
	}
}

/* Needs the share's lock. */
static void loan_put(struct iovm_device_server *srv, uint64_t block)
{
	struct loan *l = loan_find(srv, block, false);

	if (!l || !l->refs)
		return;
	if (--l->refs)
		return;
	mp_heap_give_back(&srv->s->h, block);
	/* The entry stays as a tombstone: reused by a later loan, dropped when the table grows. */
}

/* The blocks of [pa, pa+len), in turn: @fn on each block's first grain. Needs the share's lock. */
static int for_blocks(struct iovm_device_server *srv, uint64_t pa, uint64_t len,
		      int (*fn)(struct iovm_device_server *srv, uint64_t block, void *arg), void *arg)
{
	struct mp_space *s = srv->s;
	uint64_t g = (pa - pa_val(s->pa)) >> MP_GRAIN_SHIFT, end = (pa - pa_val(s->pa) + len) >> MP_GRAIN_SHIFT;

	while (g < end) {
		uint64_t first;
		unsigned order;
		int ret;

		if (mp_heap_block_of(&s->h, g, &first, &order))
			return -EACCES;
		ret = fn(srv, first, arg);
		if (ret)
			return ret;
		g = first + (UINT64_C(1) << order);
	}
	return 0;
}

/* Whether the client may map this block: its own, the share's, or one it lent us already. */
static int may_map(struct iovm_device_server *srv, uint64_t b, void *arg)
{
	struct mp_heap *h = &srv->s->h;
	const struct client *c = arg;
	uint8_t owner = h->owner[b], lender = lender_get(&h->lender[b]);

	if ((owner == c->slot || owner == MP_OWNER_KEEP) && lender == MP_LENDER_NONE)
		return 0;
	if (owner == srv->s->slot && (lender == c->slot || lender == MP_OWNER_KEEP))
		return 0;
	return -EACCES;
}

static int lend(struct iovm_device_server *srv, uint64_t b, void *arg)
{
	struct loan *l = loan_find(srv, b, true);

	(void)arg;
	if (!l)
		return -ENOMEM;
	if (!l->refs && mp_heap_lend(&srv->s->h, b, srv->s->slot))
		return -EACCES;
	l->refs++;
	return 0;
}

static int unlend(struct iovm_device_server *srv, uint64_t b, void *arg)
{
	(void)arg;
	loan_put(srv, b);
	return 0;
}

/* Check and lend every block of the range, in one hold of the lock; all or nothing. */
int devmem_borrow(struct iovm_device_server *srv, struct client *c, uint64_t pa, uint64_t len)
{
	struct mp_space *s = srv->s;
	int ret;

	if (pa < pa_val(s->pa) || pa - pa_val(s->pa) > s->heap_size || len > s->heap_size - (pa - pa_val(s->pa)))
		return -EACCES;
	ret = mp_lock(&s->h);
	if (ret)
		return ret;
	ret = for_blocks(srv, pa, len, may_map, c);
	if (!ret) {
		ret = for_blocks(srv, pa, len, lend, NULL);
		if (ret) /* only memory runs out here: give back what was lent */
			for_blocks(srv, pa, len, unlend, NULL);
	}
	mp_unlock(&s->h);
	return ret;
}

void devmem_give_back(struct iovm_device_server *srv, uint64_t pa, uint64_t len)
{
	if (mp_lock(&srv->s->h))
		return;
	for_blocks(srv, pa, len, unlend, NULL);
	mp_unlock(&srv->s->h);
}

/* ---- mappings ---- */

int devmem_add_mapping(struct client *c, const struct mapping *m)
{
	int ret = 0;

	pthread_mutex_lock(&c->maps_lock);
	if (c->nr_maps == c->cap_maps) {
		unsigned cap = c->cap_maps ? c->cap_maps * 2 : 16;
		struct mapping *n = fi_realloc(c->maps, cap * sizeof(*n));

		if (n) {
			c->maps = n;
			c->cap_maps = cap;
		} else {
			ret = -ENOMEM;
		}
	}
	if (!ret)
		c->maps[c->nr_maps++] = *m;
	pthread_mutex_unlock(&c->maps_lock);
	return ret;
}

/* DP_MAP: [a, a+b) of the shared heap, lent while mapped. */
static int map_heap(struct iovm_device_server *srv, struct client *c, const struct dp_req *r, uint64_t *iova_out)
{
	iovm_iova_t iova = IOVM_IOVA_ANY;
	int ret;

	ret = devmem_borrow(srv, c, r->a, r->b);
	if (ret)
		return ret;
	ret = iovm_domain_map(c->dom, &iova, IOVM_PA(r->a), r->b, r->perm);
	if (ret)
		goto give_back;
	ret = devmem_add_mapping(c, &(struct mapping){ .iova = iova.addr, .pa = r->a, .len = r->b });
	if (ret)
		goto unmap;
	*iova_out = iova.addr;
	return 0;

unmap:
	iovm_domain_unmap(c->dom, iova, r->b);
give_back:
	devmem_give_back(srv, r->a, r->b);
	return ret;
}

unsigned devmem_remote_maps(const struct client *c)
{
	unsigned n = 0;

	for (unsigned i = 0; i < c->nr_maps; i++)
		n += c->maps[i].remote;
	return n;
}

int devmem_window(struct iovm_device_server *srv, struct client *c, uint64_t rva, uint64_t len, pa_t *pa)
{
	if (c->mem_fd < 0)
		return -EOPNOTSUPP;
	if (devmem_remote_maps(c) >= MAX_REMOTE_MAPS)
		return -ENOSPC;
	return phys_window_add_remote(srv->ctx->phys, c->mem_fd, rva, len, pa);
}

/* DP_MAP_VA: [a, a+b) of the client's own memory, through its memory file. */
static int map_remote(struct iovm_device_server *srv, struct client *c, const struct dp_req *r, uint64_t *iova_out)
{
	struct phys_space *ps = srv->ctx->phys;
	iovm_iova_t iova = IOVM_IOVA_ANY;
	pa_t pa;
	int ret;

	ret = devmem_window(srv, c, r->a, r->b, &pa);
	if (ret)
		return ret;
	ret = iovm_domain_map(c->dom, &iova, IOVM_PA(pa_val(pa)), r->b, r->perm);
	if (ret)
		goto remove_window;
	ret = devmem_add_mapping(c, &(struct mapping){ .iova = iova.addr, .pa = pa_val(pa), .len = r->b, .remote = true });
	if (ret)
		goto unmap;
	*iova_out = iova.addr;
	return 0;

unmap:
	iovm_domain_unmap(c->dom, iova, r->b);
remove_window:
	phys_window_remove(ps, pa);
	return ret;
}

int devmem_map(struct iovm_device_server *srv, struct client *c, const struct dp_req *r, uint64_t *iova_out)
{
	if (!r->b || (r->a | r->b) & (SZ_4K - 1) || r->a + r->b < r->a || !r->perm ||
	    (r->perm & ~(uint32_t)(IOVM_MAP_READ | IOVM_MAP_WRITE)))
		return -EINVAL;
	if (r->op == DP_MAP_MR)
		return devodp_map(srv, c, r, iova_out);
	return r->op == DP_MAP_VA ? map_remote(srv, c, r, iova_out) : map_heap(srv, c, r, iova_out);
}

/* What @m held goes: the loans of its blocks, or its window. After its IOVAs are unmapped. */
static void mapping_release(struct iovm_device_server *srv, const struct mapping *m)
{
	if (m->remote)
		phys_window_remove(srv->ctx->phys, pa_make(m->pa));
	else
		devmem_give_back(srv, m->pa, m->len);
}

void devmem_unmap_all(struct iovm_device_server *srv, struct client *c)
{
	pthread_mutex_lock(&c->maps_lock);
	for (unsigned i = 0; i < c->nr_maps; i++)
		mapping_release(srv, &c->maps[i]);
	c->nr_maps = 0;
	pthread_mutex_unlock(&c->maps_lock);
}

/* Mapping @i of @c out of the array, under maps_lock for the workers that read it. */
static void maps_remove(struct client *c, unsigned i)
{
	pthread_mutex_lock(&c->maps_lock);
	c->maps[i] = c->maps[--c->nr_maps];
	pthread_mutex_unlock(&c->maps_lock);
}

int devmem_unmap(struct iovm_device_server *srv, struct client *c, const struct dp_req *r)
{
	for (unsigned i = 0; i < c->nr_maps; i++) {
		struct mapping m = c->maps[i];
		int ret;

		if (m.iova != r->a || m.len != r->b)
			continue;
		if (m.mirror) {
			maps_remove(c, i);
			devodp_unmap(srv, c, &m);
			return 0;
		}
		/* Strict: when it returns, no descriptor reaches the pages; then they go back (or the window goes). */
		ret = iovm_domain_unmap(c->dom, IOVM_IOVA(m.iova), m.len);
		if (ret)
			return ret;
		maps_remove(c, i);
		mapping_release(srv, &m);
		return 0;
	}
	return -EINVAL;
}

/* ---- page requests on the client's own memory ---- */

/*
 * A page request to the client (dev_queue_set_page_request()), from the
 * worker serving it, under the client's lock: through its ring; the client
 * answers in its reap. Bounded: a client that does not reap, that goes,
 * or a server that stops, leaves the descriptor to complete with the fault.
 */
int devmem_page_request(void *arg, uint64_t rva, unsigned access)
{
	return devmem_page_request_at(arg, rva, 0, access);
}

int devmem_page_request_at(void *arg, uint64_t rva, uint64_t iova, unsigned access)
{
	struct client *c = arg;
	struct dp_ring_ctl *r = c->ring;
	uint32_t seq = ++c->pr_seq;
	struct clock_wait cw;

	atomic_store_explicit(&r->pr_addr, rva, memory_order_relaxed);
	atomic_store_explicit(&r->pr_iova, iova, memory_order_relaxed);
	atomic_store_explicit(&r->pr_access, access, memory_order_relaxed);
	atomic_store_explicit(&r->pr_seq, seq, memory_order_release);
	clock_wait_start(&cw, clock_now_ns());
	for (unsigned spins = 0;; spins++) {
		if (atomic_load_explicit(&r->pr_done, memory_order_acquire) == seq)
			return atomic_load_explicit(&r->pr_status, memory_order_relaxed) ? -EFAULT : 0;
		if (atomic_load_explicit(&c->going, memory_order_acquire))
			return -EPIPE;
		if (spins < 1000) {
			sched_yield();
			continue;
		}
		if (clock_wait_tick(&cw, clock_now_ns(), PAGE_REQUEST_GAP_NS) > PAGE_REQUEST_TIMEOUT_NS)
			return -ETIMEDOUT;
		nanosleep(&(struct timespec){ .tv_nsec = 50 * 1000 }, NULL);
	}
}
