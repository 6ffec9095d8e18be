/* SPDX-License-Identifier: MIT */
/*
 * queue.c - the software DMA engine's queues made and destroyed: their
 * rings (in DMA memory, mapped in the device's domain, or where the
 * caller placed them: a guest's memory, at the guest's addresses), their
 * IOTLB, their worker thread; and their counters. What runs on them is
 * engine.c's.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <iovm/mem.h>

#include "base/counter.h"
#include "base/ctx.h"
#include "base/error.h"
#include "base/fault_inject.h"
#include "base/lock.h"
#include "base/log.h"
#include "mem/mem.h"
#include "dev/dev_internal.h"
#include "os/membarrier.h"
#include "phys/phys.h"

#define DEFAULT_DEPTH 256
#define MAX_DEPTH 65536

/*
 * Whether @cpu exists. The calling thread's own affinity does not matter (a
 * driver thread pinned elsewhere may start a worker for another CPU); the
 * kernel refuses, at thread creation, a CPU the process's cpuset excludes.
 */
static bool cpu_allowed(unsigned cpu)
{
	long n = sysconf(_SC_NPROCESSORS_CONF);

	return cpu < CPU_SETSIZE && n > 0 && cpu < (unsigned long)n;
}

/* The queue's worker thread, on @cpu alone when it is not -1. */
static int worker_start(struct iovm_queue *q, int cpu)
{
	pthread_attr_t attr;
	cpu_set_t one;
	int ret;

	ret = -pthread_attr_init(&attr);
	if (ret)
		return ret;
	if (cpu >= 0) {
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		ret = -pthread_attr_setaffinity_np(&attr, sizeof(one), &one);
	}
	if (!ret)
		ret = -fi_pthread_create(&q->worker, &attr, engine_worker, q);
	pthread_attr_destroy(&attr);
	if (ret && cpu >= 0)
		return err_detail(ret, IOVM_LOG_DEBUG, "queue worker on CPU %d: %s", cpu, strerror(-ret));
	return ret;
}

/* The device address of a ring: the heap's mapping in the domain, or one made here. */
static int ring_iova(struct iovm_queue *q, struct iovm_domain *dom, void *ring, size_t len, iova_t *iova)
{
	int ret;

	if (!iovm_dma_iova(dom, ring, iova))
		return 0;
	ret = iovm_domain_map_ptr(dom, ring, align_up(len, SZ_4K), IOVM_MAP_READ | IOVM_MAP_WRITE, iova);
	if (ret)
		return ret;
	q->rings_mapped = true;
	return 0;
}

/*
 * A ring the caller placed at device address @addr (IOVM_QUEUE_RINGS_AT),
 * found through @dom as the engine will find it: every page mapped for
 * reading and writing, in iovm's memory, at consecutive PAs and bus
 * pointers. Pinned, so that its frames are not handed out again while the
 * queue lives, whatever happens to the mapping; its PA in @pa, the CPU's
 * pointer in @ptr.
 */
static int ring_given(struct iovm_queue *q, struct iovm_domain *dom, iova_t at, size_t len, pa_t *pa, void **ptr)
{
	struct phys_space *ps = q->dev->ctx->phys;
	unsigned long addr = (unsigned long)iova_val(at);
	uint8_t *first = NULL;
	pa_t pa0 = pa_make(0);
	int ret;

	for (size_t off = 0; off < len; off += SZ_4K) {
		pa_t page;
		uint32_t perm;
		uint8_t reach = PHYS_REACH_OWN;
		uint8_t *p;

		if (iovm_domain_translate(dom, iova_add(at, off), &page, &perm) ||
		    (perm & (IOVM_MAP_READ | IOVM_MAP_WRITE)) != (IOVM_MAP_READ | IOVM_MAP_WRITE))
			return err_detail(-EFAULT, IOVM_LOG_DEBUG, "ring at %#lx: %#lx is not mapped read-write",
					  addr, addr + off);
		/*
		 * Outside the devices' epoch, and nothing holds the memory yet
		 * (the pin comes after): the window at @page may be removed
		 * meanwhile (a registration ending, a client going) and its
		 * struct reused for another; the checked read answers for one
		 * window, never with one's pointer and another's reach.
		 */
		p = phys_bus_map_outside(ps, page, &reach);
		/* The application's memory may go under the engine: rings are iovm's, as its own rings are. */
		if (!p || reach != PHYS_REACH_OWN)
			return err_detail(-EFAULT, IOVM_LOG_DEBUG, "ring at %#lx: %#lx is not iovm's memory",
					  addr, addr + off);
		if (!off) {
			first = p;
			pa0 = page;
		} else if (!pa_eq(page, pa_add(pa0, off)) || p != first + off) {
			return err_detail(-EFAULT, IOVM_LOG_DEBUG, "ring at %#lx: not physically contiguous", addr);
		}
	}
	ret = phys_pin(ps, pa0, len);
	if (ret)
		return err_detail(-EFAULT, IOVM_LOG_DEBUG, "ring at %#lx: its memory is not allocated", addr);
	*pa = pa0;
	*ptr = first;
	return 0;
}

/* Both rings where the caller put them: checked, pinned, the completion ring zeroed. */
static int rings_given(struct iovm_queue *q, struct iovm_domain *dom, const struct iovm_queue_attr *attr,
		       size_t sq_len, size_t cq_len)
{
	void *sq, *cq;
	int ret;

	/* By last byte: a ring may end at 2^64 (then it is not mapped: -EFAULT, not -EINVAL). */
	if ((attr->sq_addr | attr->cq_addr) & (SZ_4K - 1) || attr->sq_addr + (sq_len - 1) < attr->sq_addr ||
	    attr->cq_addr + (cq_len - 1) < attr->cq_addr ||
	    (attr->sq_addr <= attr->cq_addr + (cq_len - 1) && attr->cq_addr <= attr->sq_addr + (sq_len - 1)))
		return err_detail(-EINVAL, IOVM_LOG_DEBUG, "rings at %#lx and %#lx: unaligned or overlapping",
				  (unsigned long)attr->sq_addr, (unsigned long)attr->cq_addr);
	/* The attribute's device addresses: IOVAs of the queue's domain. */
	ret = ring_given(q, dom, iova_make(attr->sq_addr), sq_len, &q->sq_pa, &sq);
	if (ret)
		return ret;
	ret = ring_given(q, dom, iova_make(attr->cq_addr), cq_len, &q->cq_pa, &cq);
	if (ret) {
		phys_unpin(q->dev->ctx->phys, q->sq_pa, sq_len);
		return ret;
	}
	q->rings_given = true;
	q->sq = sq;
	q->cq = cq;
	q->sq_iova = iova_make(attr->sq_addr);
	q->cq_iova = iova_make(attr->cq_addr);
	/* Phase 0 everywhere: the engine's first pass writes 1. */
	memset(q->cq, 0, cq_len);
	return 0;
}

static void rings_free(struct iovm_queue *q, struct iovm_domain *dom)
{
	size_t sq_len = align_up((uint64_t)q->depth * sizeof(struct iovm_desc), SZ_4K);
	size_t cq_len = align_up((uint64_t)q->depth * sizeof(struct iovm_cqe), SZ_4K);

	if (q->rings_given) {
		phys_unpin(q->dev->ctx->phys, q->sq_pa, sq_len);
		phys_unpin(q->dev->ctx->phys, q->cq_pa, cq_len);
		return;
	}
	if (q->rings_mapped && dom) {
		if (iova_val(q->sq_iova))
			iovm_domain_unmap(dom, q->sq_iova, sq_len);
		if (iova_val(q->cq_iova))
			iovm_domain_unmap(dom, q->cq_iova, cq_len);
	}
	iovm_dma_free(q->dev->ctx, q->sq);
	iovm_dma_free(q->dev->ctx, q->cq);
}

IOVM_API int iovm_queue_create(struct iovm_device *dev, const struct iovm_queue_attr *attr,
			       struct iovm_queue **out)
{
	unsigned depth = attr && attr->depth ? attr->depth : DEFAULT_DEPTH;
	uint32_t flags = attr ? attr->flags : 0;
	struct iovm_domain *dom;
	struct iovm_queue *q;
	size_t sq_len, cq_len;
	int ret;

	err_enter();
	if (!dev || !out || !is_pow2(depth) || depth < 2 || depth > MAX_DEPTH ||
	    (flags & ~(IOVM_QUEUE_POLLED | IOVM_QUEUE_CPU | IOVM_QUEUE_RINGS_AT)))
		return err_inval("!dev || !out || !is_pow2(depth) || depth < 2 || depth > MAX_DEPTH || (flags & ~(IOVM_QUEUE_POLLED | IOVM_QUEUE_CPU | IOVM_QUEUE_RINGS_AT))");
	/* A real device has its own queues, in its own registers. */
	if (dev->vfio || dev->verbs)
		return err_detail(-EOPNOTSUPP, IOVM_LOG_DEBUG, "queues are the software engine's");
	if ((flags & IOVM_QUEUE_CPU) && ((flags & IOVM_QUEUE_POLLED) || !cpu_allowed(attr->cpu)))
		return err_detail(-EINVAL, IOVM_LOG_DEBUG, "queue worker CPU %u: no such CPU", attr->cpu);
	dom = iommu_client_domain(dev->client, IOVM_PASID_NONE);
	if (!dom)
		return err_detail(-ENODEV, IOVM_LOG_DEBUG,
				  "a queue needs a domain attached for IOVM_PASID_NONE, for its rings");
	/* Aligned: its writers' groups are on cache lines of their own. */
	q = fi_aligned_alloc(CACHE_LINE_SIZE, align_up(sizeof(*q), CACHE_LINE_SIZE));
	if (!q)
		return -ENOMEM;
	memset(q, 0, sizeof(*q));
	q->dev = dev;
	q->foreign_gate = phys_foreign_gate(dev->ctx->phys);
	q->mem = dev->ctx->mem;
	q->oracle = dev->ctx->cfg.oracle;
	q->depth = depth;
	q->flags = flags;
	q->cq_phase = 1;
	q->reap_phase = 1;
	mutex_init(&q->wake_lock);
	pthread_cond_init(&q->wake, NULL);
	sq_len = (size_t)depth * sizeof(struct iovm_desc);
	cq_len = (size_t)depth * sizeof(struct iovm_cqe);
	if (flags & IOVM_QUEUE_RINGS_AT) {
		ret = rings_given(q, dom, attr, align_up(sq_len, SZ_4K), align_up(cq_len, SZ_4K));
		if (ret)
			goto free_queue;
	} else {
		ret = -ENOMEM;
		/* Rings in DMA memory, contiguous, each in pages of its own. */
		/* The context's own memory, also when it is shared: no other process may free a queue's rings. */
		q->sq = mem_dma_alloc_own(dev->ctx, align_up(sq_len, SZ_4K), SZ_4K, IOVM_DMA_CONTIG | IOVM_DMA_ZERO);
		q->cq = mem_dma_alloc_own(dev->ctx, align_up(cq_len, SZ_4K), SZ_4K, IOVM_DMA_CONTIG | IOVM_DMA_ZERO);
		if (!q->sq || !q->cq)
			goto free_rings;
		ret = ring_iova(q, dom, q->sq, sq_len, &q->sq_iova);
		if (ret)
			goto free_rings;
		ret = ring_iova(q, dom, q->cq, cq_len, &q->cq_iova);
		if (ret)
			goto free_rings;
	}
	ret = iommu_iotlb_create(dev->client, &q->tlb);
	if (ret)
		goto free_rings;
	if (!(flags & IOVM_QUEUE_POLLED)) {
		/* Read by the worker: set before it starts. A failed membarrier later costs a nap, no more. */
		q->light_doorbell = os_membarrier_init();
		ret = worker_start(q, flags & IOVM_QUEUE_CPU ? (int)attr->cpu : -1);
		if (ret)
			goto free_tlb;
		q->has_worker = true;
	}
	mutex_lock(&dev->lock);
	list_add_tail(&dev->queues, &q->link);
	mutex_unlock(&dev->lock);
	*out = q;
	return 0;

free_tlb:
	iommu_iotlb_destroy(q->tlb);
free_rings:
	rings_free(q, dom);
free_queue:
	pthread_cond_destroy(&q->wake);
	mutex_destroy(&q->wake_lock);
	free(q);
	return ret;
}

IOVM_API int iovm_queue_destroy(struct iovm_queue *q)
{
	err_enter();
	if (!q)
		return err_inval("!q");
	if (q->has_worker) {
		atomic_store_explicit(&q->stop, true, memory_order_release);
		mutex_lock(&q->wake_lock);
		pthread_cond_signal(&q->wake);
		mutex_unlock(&q->wake_lock);
		pthread_join(q->worker, NULL);
	}
	mutex_lock(&q->dev->lock);
	list_del(&q->link);
	mutex_unlock(&q->dev->lock);
	iommu_iotlb_destroy(q->tlb);
	rings_free(q, iommu_client_domain(q->dev->client, IOVM_PASID_NONE));
	pthread_cond_destroy(&q->wake);
	mutex_destroy(&q->wake_lock);
	free(q->bounce);
	free(q);
	return 0;
}

IOVM_API int iovm_queue_stats(struct iovm_queue *q, struct iovm_queue_stats *st)
{
	err_enter();
	if (!q || !st)
		return err_inval("!q || !st");
	*st = (struct iovm_queue_stats){
		.submitted = atomic_load(&q->submitted),
		.completed = atomic_load(&q->completed),
		.bytes = atomic_load(&q->bytes),
		.faults = atomic_load(&q->faults),
		.fault_retries = atomic_load(&q->fault_retries),
		.errors = atomic_load(&q->errors),
		.ring_faults = atomic_load(&q->ring_faults),
		.bus_faults = atomic_load(&q->bus_faults),
		.page_requests = atomic_load(&q->page_requests),
	};
	iommu_iotlb_counters(q->tlb, &st->iotlb_hits, &st->iotlb_misses);
	return 0;
}

void dev_queue_set_page_request(struct iovm_queue *q, dev_page_request_fn fn, void *arg)
{
	q->page_request = fn;
	q->page_request_arg = arg;
}
