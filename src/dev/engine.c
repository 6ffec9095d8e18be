/* SPDX-License-Identifier: MIT */
/*
 * engine.c - the software DMA engine's queues at work: submission, the
 * engine's run over the rings (reached only through the IOMMU, by a
 * worker thread or a polling caller), and reaping. Making and destroying
 * queues, and their rings, is queue.c's.
 *
 * Submission ring: depth descriptors of 64 bytes; the submitter writes one
 * and moves the tail (a doorbell in host memory, as a device register would
 * be); the engine fetches it through the IOMMU and moves the head.
 * Completion ring: depth entries of 16 bytes with a phase bit, as NVMe's:
 * the engine writes an entry through the IOMMU, its phase last; the reaper
 * takes entries while their phase is the one it expects, and flips its
 * expectation each time round. The submitter never has more descriptors
 * outstanding (submitted, not reaped) than the depth, so the completion ring
 * cannot overflow.
 */
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/counter.h"
#include "base/ctx.h"
#include "base/error.h"
#include "base/lock.h"
#include "base/log.h"
#include "mem/mem.h"
#include "dev/dev_internal.h"
#include "os/membarrier.h"
#include "phys/phys.h"

/* A worker polls this many times before it sleeps: short, on machines of two cores. */
#define WORKER_SPINS 200
/* A sleeping worker wakes at least this often, whatever happens to doorbells. */
#define WORKER_NAP_NS (50 * 1000 * 1000)
/* Descriptors run in one device-side section. */
#define SECTION_BUDGET 64

/*
 * A stretch of a ring translated once in a section: descriptors are fetched
 * and completions written through it, as hardware fetches descriptors in
 * bursts. Good until the section ends or is left (a fault handler).
 */
struct ring_window {
	iova_t iova;   /* of ptr */
	uint8_t *ptr;
	uint64_t len;  /* 0: nothing translated */
};

/* ring_at() past its window: translate the ring afresh there, or break the queue. */
static __noinline void *ring_map(struct iovm_queue *q, struct ring_window *w, iova_t iova, size_t size,
				 unsigned access)
{
	struct iommu_span s;
	struct iovm_fault f;

	/* Rings are iovm's own memory: one the application could unmap is no ring. */
	if (iommu_access(q->tlb, IOVM_PASID_NONE, iova, access, &s, &f)) {
		dev_fault_report(q->dev, &f);
		s.len = 0;
	}
	if (s.len < size || s.reach != PHYS_REACH_OWN) {
		atomic_store_explicit(&q->broken, true, memory_order_relaxed);
		counter_add(&q->ring_faults, 1);
		return NULL;
	}
	*w = (struct ring_window){ .iova = iova, .ptr = s.ptr, .len = s.len };
	return s.ptr;
}

/* The CPU's pointer to @size bytes of a ring at @iova, or NULL: the queue is broken. */
static inline void *ring_at(struct iovm_queue *q, struct ring_window *w, iova_t iova, size_t size,
			    unsigned access)
{
	/* Unsigned: an IOVA below the window wraps to a large offset. */
	uint64_t off = iova_diff(iova, w->iova);

	if (likely(off < w->len && off + size <= w->len))
		return w->ptr + off;
	return ring_map(q, w, iova, size, access);
}

static void ring_write_cqe(struct iovm_queue *q, struct ring_window *w, const struct iovm_desc *d,
			   const struct iovm_completion *c)
{
	iova_t iova = iova_add(q->cq_iova, (uint64_t)(q->cq_tail & (q->depth - 1)) * sizeof(struct iovm_cqe));
	struct iovm_cqe *e = ring_at(q, w, iova, sizeof(*e), IOVM_MAP_WRITE);

	/*
	 * The submitter keeps no more than depth descriptors unreaped, so the
	 * entry written here is one the reaper has taken (the acquire on the
	 * doorbell orders its cq_head after the reap that made room). cq_head
	 * only grows: an older value that shows room shows it truly, and the
	 * reaper's line is read only when it does not, not per descriptor.
	 */
	if (unlikely(q->cq_tail - q->cq_head_seen >= q->depth)) {
		q->cq_head_seen = atomic_load_explicit(&q->cq_head, memory_order_acquire);
		IOVM_WARN_ON(q->cq_tail - q->cq_head_seen >= q->depth);
	}
	if (!e)
		return;
	e->tag = d->tag;
	e->bytes_completed = c->bytes_completed;
	e->status = c->status;
	/* The phase last: it makes the entry visible to the reaper. */
	__atomic_store_n(&e->phase, q->cq_phase, __ATOMIC_RELEASE);
	if ((++q->cq_tail & (q->depth - 1)) == 0)
		q->cq_phase ^= 1;
}

unsigned engine_run(struct iovm_queue *q, unsigned budget)
{
	uint32_t head = atomic_load_explicit(&q->sq_head, memory_order_relaxed);
	struct ring_window sqw = { 0 }, cqw = { 0 };
	uint32_t left = q->sections_left;
	uint32_t tail = head;
	unsigned done = 0;

	if (atomic_load_explicit(&q->broken, memory_order_relaxed))
		return 0;
	iommu_enter(q->tlb);
	while (done < budget) {
		iova_t iova = iova_add(q->sq_iova, (uint64_t)(head & (q->depth - 1)) * sizeof(struct iovm_desc));
		struct iovm_completion c = { 0 };
		struct iovm_desc d;
		const void *sqe;

		/*
		 * The doorbell read again only once the descriptors it showed
		 * are done: the submitter's line is not pulled over per
		 * descriptor, and its acquire orders every one it showed.
		 */
		if (head == tail) {
			tail = atomic_load_explicit(&q->sq_tail, memory_order_acquire);
			if (head == tail)
				break;
			/* The doorbell is never more than a ring ahead of the engine. */
			IOVM_WARN_ON(tail - head > q->depth);
		}
		/* Fetched through the IOMMU, as hardware fetches its descriptors. */
		sqe = ring_at(q, &sqw, iova, sizeof(d), IOVM_MAP_READ);
		if (!sqe)
			break;
		memcpy(&d, sqe, sizeof(d));
		engine_execute(q, &d, &c, false);
		if (q->sections_left != left) {
			/* A fault handler ran outside the section: translate the rings afresh. */
			left = q->sections_left;
			sqw.len = cqw.len = 0;
		}
		ring_write_cqe(q, &cqw, &d, &c);
		atomic_store_explicit(&q->sq_head, ++head, memory_order_release);
		counter_add(&q->completed, 1);
		done++;
		/*
		 * An unmap or a flush waiting for this section waits for this
		 * descriptor only: the rings are translated afresh after.
		 */
		if (iommu_quiesce(q->tlb))
			sqw.len = cqw.len = 0;
	}
	iommu_exit(q->tlb);
	return done;
}

void *engine_worker(void *arg)
{
	struct iovm_queue *q = arg;
	unsigned idle = 0;

	while (!atomic_load_explicit(&q->stop, memory_order_acquire)) {
		struct timespec ts;

		if (engine_run(q, SECTION_BUDGET)) {
			idle = 0;
			continue;
		}
		if (++idle < WORKER_SPINS) {
			sched_yield();
			continue;
		}
		mutex_lock(&q->wake_lock);
		atomic_store_explicit(&q->sleeping, true, memory_order_seq_cst);
		/*
		 * Checked after saying so: a submitter either sees us asleep or we
		 * see its tail. Its side of the handshake may be a compiler
		 * barrier only: the membarrier makes it a full one, here, once per
		 * sleep rather than once per doorbell.
		 */
		if (q->light_doorbell)
			os_membarrier();
		if (atomic_load_explicit(&q->sq_tail, memory_order_seq_cst) ==
			    atomic_load_explicit(&q->sq_head, memory_order_relaxed) &&
		    !atomic_load_explicit(&q->stop, memory_order_relaxed)) {
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_nsec += WORKER_NAP_NS;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			cond_timedwait(&q->wake, &q->wake_lock, &ts);
		}
		atomic_store_explicit(&q->sleeping, false, memory_order_relaxed);
		mutex_unlock(&q->wake_lock);
		idle = 0;
	}
	return NULL;
}

/*
 * Copy a descriptor into the ring field by field. A caller most often
 * builds it on its stack just before (zeroed, then its fields stored):
 * a wider load would span several of those stores, still in flight, and
 * wait for all of them to reach the cache, where a load of one field is
 * forwarded from the store that holds it. Volatile, so that the compiler
 * keeps the loads as they are written.
 */
static inline void desc_put(struct iovm_desc *e, const struct iovm_desc *d)
{
	const volatile struct iovm_desc *v = (const volatile struct iovm_desc *)d;
	/* The small fields gathered into the words they share, stored whole: fewer stores. */
	struct {
		uint8_t op, flags;
		uint16_t sg_count;
		uint32_t pasid;
	} head = { v->op, v->flags, v->sg_count, v->pasid };
	struct {
		uint32_t len, crc_seed;
	} mid = { v->len, v->crc_seed };
	static_assert(sizeof(head) == offsetof(struct iovm_desc, src) &&
			      sizeof(mid) == offsetof(struct iovm_desc, pattern) - offsetof(struct iovm_desc, len),
		      "the words the small fields share");

	memcpy(e, &head, sizeof(head));
	e->src = v->src;
	e->dst = v->dst;
	e->completion = v->completion;
	memcpy(&e->len, &mid, sizeof(mid));
	e->pattern = v->pattern;
	e->dst2 = v->dst2;
	e->tag = v->tag;
}

/* iovm_queue_submit()'s ring full: back-pressure, not a mistake, out of its way. */
static __noinline int submit_full(void)
{
	/* A poller retries at once. No sentence to format, only no earlier call's detail left behind. */
	err_enter();
	return -EAGAIN;
}

/* iovm_queue_submit() found the worker asleep: wake it, out of the submitter's way. */
static __noinline void submit_wake(struct iovm_queue *q)
{
	mutex_lock(&q->wake_lock);
	pthread_cond_signal(&q->wake);
	mutex_unlock(&q->wake_lock);
}

IOVM_API int iovm_queue_submit(struct iovm_queue *q, const struct iovm_desc *d)
{
	uint32_t tail;

	if (unlikely(!q || !d))
		return err_hot(-EINVAL, "invalid argument: !q || !d");
	tail = atomic_load_explicit(&q->sq_tail, memory_order_relaxed);
	/* Outstanding until reaped: the completion ring always has room for what runs. */
	if (unlikely(tail - atomic_load_explicit(&q->cq_head, memory_order_acquire) >= q->depth))
		return submit_full();
	desc_put(&q->sq[tail & (q->depth - 1)], d);
	/*
	 * A worker's sleep is a store-load handshake with this store: seq_cst,
	 * unless the worker's membarrier stands in for our fence (a locked
	 * instruction here would wait for every store before it, the cache
	 * misses of the descriptor and of a map's PTEs included).
	 */
	if (q->has_worker && !q->light_doorbell)
		atomic_store_explicit(&q->sq_tail, tail + 1, memory_order_seq_cst);
	else
		atomic_store_explicit(&q->sq_tail, tail + 1, memory_order_release);
	counter_add(&q->submitted, 1);
	atomic_signal_fence(memory_order_seq_cst);
	if (q->has_worker && unlikely(atomic_load_explicit(&q->sleeping, memory_order_seq_cst)))
		submit_wake(q);
	return 0;
}

IOVM_API int iovm_queue_process(struct iovm_queue *q, unsigned budget)
{
	unsigned done = 0;
	bool idle = false;

	/* A hot call: base.h has it leave the detail alone when it succeeds, and set it when it fails. */
	if (!q || q->has_worker)
		return err_hot(-EINVAL, "invalid argument: !q || q->has_worker");
	if (!atomic_compare_exchange_strong(&q->busy, &idle, true))
		return err_hot(-EBUSY, "another thread processes the queue");
	while (done < budget) {
		unsigned n = engine_run(q, MIN(budget - done, SECTION_BUDGET));

		if (!n)
			break;
		done += n;
	}
	atomic_store_explicit(&q->busy, false, memory_order_release);
	return (int)done;
}

IOVM_API int iovm_queue_reap(struct iovm_queue *q, struct iovm_cqe *cqe, unsigned max)
{
	uint32_t head;
	uint8_t phase;
	unsigned n = 0;

	if (unlikely(!q || (!cqe && max)))
		return err_hot(-EINVAL, "invalid argument: !q || (!cqe && max)");
	/* In registers while entries are copied out: the caller's array is not the queue. */
	head = q->reap_head;
	phase = q->reap_phase;
	while (n < max) {
		struct iovm_cqe *e = &q->cq[head & (q->depth - 1)];

		if (__atomic_load_n(&e->phase, __ATOMIC_ACQUIRE) != phase)
			break;
		cqe[n++] = *e;
		if ((++head & (q->depth - 1)) == 0)
			phase ^= 1;
	}
	if (n) {
		q->reap_head = head;
		q->reap_phase = phase;
		atomic_store_explicit(&q->cq_head, head, memory_order_release);
	}
	return (int)n;
}
