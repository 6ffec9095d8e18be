/* SPDX-License-Identifier: MIT */
/*
 * engine.c - the software DMA engine's queues at work: submission, the
 * engine's run over the rings (reached only through the IOMMU, by a
 * worker thread or a polling caller), the COPY it does inline, and
 * reaping. Making and destroying queues, and their rings, is queue.c's.
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
#include "base/sanitizer.h"
#include "mem/mem.h"
#include "dev/dev_internal.h"
#include "iommu/access_hot.h"
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
	if (iommu_access_aside(q->tlb, IOVM_PASID_NONE, iova, access, &s, &f)) {
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

/*
 * Where the engine writes its next completion entry: the queue's cq_tail
 * and cq_phase, kept in registers over a run and stored back at its end.
 */
struct cq_cursor {
	uint32_t tail;
	uint8_t phase;
};

/* The completion ring's next entry, through the IOMMU, its phase last. */
static inline void ring_write_cqe(struct iovm_queue *q, struct ring_window *w, struct cq_cursor *cur, uint64_t tag,
				  uint32_t bytes, uint8_t status)
{
	iova_t iova = iova_add(q->cq_iova, (uint64_t)(cur->tail & (q->depth - 1)) * sizeof(struct iovm_cqe));
	struct iovm_cqe *e = ring_at(q, w, iova, sizeof(*e), IOVM_MAP_WRITE);

	/*
	 * The submitter keeps no more than depth descriptors unreaped, so the
	 * entry written here is one the reaper has taken (the acquire on the
	 * doorbell orders its cq_head after the reap that made room). cq_head
	 * only grows: an older value that shows room shows it truly, and the
	 * reaper's line is read only when it does not, not per descriptor.
	 */
	if (unlikely(cur->tail - q->cq_head_seen >= q->depth)) {
		q->cq_head_seen = atomic_load_explicit(&q->cq_head, memory_order_acquire);
		IOVM_WARN_ON(cur->tail - q->cq_head_seen >= q->depth);
	}
	if (!e)
		return;
	e->tag = tag;
	e->bytes_completed = bytes;
	e->status = status;
	/* Where the reaper reads it, for ThreadSanitizer: the bus may reach the ring at another address. */
	tsan_release(&q->cq[cur->tail & (q->depth - 1)].phase);
	/* The phase last: it makes the entry visible to the reaper. */
	__atomic_store_n(&e->phase, cur->phase, __ATOMIC_RELEASE);
	if ((++cur->tail & (q->depth - 1)) == 0)
		cur->phase ^= 1;
}

/*
 * What a run did, counted in the queue's counters (and the IOTLB's) at
 * once, not descriptor by descriptor: before the completion entry of the
 * last descriptor the doorbell showed, or of one run the general way, so
 * that a reaper that took every completion reads every count; and when
 * the run ends. @completed descriptors, of which @hot by copy_hot(),
 * which moved @bytes.
 */
static __noinline void counts_flush(struct iovm_queue *q, uint32_t completed, uint32_t hot, uint64_t bytes)
{
	counter_add(&q->completed, completed);
	if (hot) {
		counter_add(&q->bytes, bytes);
		/* Each hit the IOTLB for its source and its destination. */
		iommu_count_hits(q->tlb, 2 * (uint64_t)hot);
	}
}

/*
 * A descriptor the general way: copied out of the ring (so that what is
 * checked is what runs), executed; its completion entry's fields in
 * *@e. Out of line: copy_hot()'s loop keeps its registers.
 */
static __noinline void run_general(struct iovm_queue *q, const struct iovm_desc *sqe, struct iovm_cqe *e)
{
	struct iovm_completion c = { 0 };
	struct iovm_desc d;

	memcpy(&d, sqe, sizeof(d));
	engine_execute(q, &d, &c, false);
	e->tag = d.tag;
	e->bytes_completed = c.bytes_completed;
	e->status = c.status;
}

/*
 * A COPY that the IOTLB's last hits hold whole on both sides, in iovm's own
 * memory: no keys, no overlap (nor a copy down, whose record says so).
 * Read from the ring once, field by field (its tag in *@tag), translated
 * inline through @memo (the pages the run's last copies read and wrote,
 * iommu_hot_access()), one memcpy, its completion record written if it asks for one:
 * its length, for its completion entry. 0, with nothing done, nothing
 * translated or counted, for anything else: engine_execute() then runs it
 * from its own copy of the descriptor, translating afresh and faulting
 * where it must.
 */
static __inline_always uint32_t copy_hot(struct iovm_queue *q, struct iommu_hot *memo, const struct iovm_desc *sqe,
				uint64_t *tag)
{
	/* Each field read once: what is checked is what is used, whatever the submitter writes meanwhile. */
	const volatile struct iovm_desc *v = (const volatile struct iovm_desc *)sqe;
	uint8_t op = v->op, flags = v->flags;
	uint64_t src, dst, completion = 0;
	uint32_t pasid, len;
	pa_t spa, dpa;
	uint8_t *s, *d;

	if (op != IOVM_OP_COPY || (flags & ~(IOVM_DESC_BLOCK_ON_FAULT | IOVM_DESC_COMPLETION)))
		return 0;
	pasid = v->pasid;
	src = v->src;
	dst = v->dst;
	len = v->len;
	*tag = v->tag;
	/*
	 * A record misaligned is an invalid descriptor. One in the
	 * application's memory, which may vanish under the write, is written
	 * under the guard that only the general way sets.
	 */
	if (flags & IOVM_DESC_COMPLETION) {
		completion = v->completion;
		if ((completion & 31) || phys_has_windows(q->dev->ctx->phys))
			return 0;
	}
	/* A PASID beyond the tags' bits is invalid, and must not reach a tag. */
	if (pasid > IOVM_PASID_MAX || !len || (dst > src && dst - src < len))
		return 0;
	s = iommu_hot_access(q->tlb, &memo[0], pasid, src, IOVM_MAP_READ, len, &spa);
	if (!s)
		return 0;
	d = iommu_hot_access(q->tlb, &memo[1], pasid, dst, IOVM_MAP_WRITE, len, &dpa);
	/* Memory that overlaps, whatever the IOVAs say, goes leaf by leaf as the general way has it. */
	if (!d || (s < d + len && d < s + len))
		return 0;
	/* The checks stretch() makes for the oracle. */
	if (unlikely(q->oracle)) {
		mem_nc_device_access(q->mem, spa, len, false);
		mem_nc_device_access(q->mem, dpa, len, true);
	}
	engine_copy_bytes(d, s, len);
	if (flags & IOVM_DESC_COMPLETION) {
		struct iovm_completion c = { .status = IOVM_STATUS_SUCCESS, .bytes_completed = len };

		engine_write_completion(q, pasid, completion, &c);
	}
	return len;
}

unsigned engine_run(struct iovm_queue *q, unsigned budget)
{
	uint32_t head = atomic_load_explicit(&q->sq_head, memory_order_relaxed);
	struct ring_window sqw = { 0 }, cqw = { 0 };
	struct cq_cursor cur = { q->cq_tail, q->cq_phase };
	/* copy_hot()'s last pages, read and written: good for this section only. */
	struct iommu_hot memo[2] = { 0 };
	uint32_t left = q->sections_left;
	uint32_t tail = head, start = head, end = head + budget;
	/* Not yet in the counters: descriptors from @flushed, @hot of them by copy_hot(), moving @bytes. */
	uint32_t flushed = head, hot = 0;
	uint64_t bytes = 0;

	if (atomic_load_explicit(&q->broken, memory_order_relaxed))
		return 0;
	iommu_enter(q->tlb);
	while (head != end) {
		iova_t iova = iova_add(q->sq_iova, (uint64_t)(head & (q->depth - 1)) * sizeof(struct iovm_desc));
		const struct iovm_desc *sqe;
		uint32_t len, done;
		uint8_t status;
		uint64_t tag;

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
		sqe = ring_at(q, &sqw, iova, sizeof(struct iovm_desc), IOVM_MAP_READ);
		if (!sqe)
			break;
		len = copy_hot(q, memo, sqe, &tag);
		if (len) {
			hot++;
			bytes += len;
			done = len;
			status = IOVM_STATUS_SUCCESS;
		} else {
			struct iovm_cqe g;

			run_general(q, sqe, &g);
			tag = g.tag;
			done = g.bytes_completed;
			status = g.status;
		}
		if (unlikely(q->sections_left != left)) {
			/* A fault handler ran outside the section: translate the rings (and the data) afresh. */
			left = q->sections_left;
			sqw.len = cqw.len = 0;
			memo[0].e = memo[1].e = NULL;
		}
		head++;
		if (!len || head == tail) {
			counts_flush(q, head - flushed, hot, bytes);
			flushed = head;
			hot = 0;
			bytes = 0;
		}
		ring_write_cqe(q, &cqw, &cur, tag, done, status);
		/*
		 * An unmap or a flush waiting for this section waits for this
		 * descriptor only: the rings are translated afresh after.
		 */
		if (unlikely(iommu_waited_on(q->tlb)) && iommu_quiesce(q->tlb)) {
			sqw.len = cqw.len = 0;
			memo[0].e = memo[1].e = NULL;
		}
	}
	if (head != flushed)
		counts_flush(q, head - flushed, hot, bytes);
	q->cq_tail = cur.tail;
	q->cq_phase = cur.phase;
	/* The engine's own: only a later run of the queue reads it, after this one. */
	atomic_store_explicit(&q->sq_head, head, memory_order_release);
	iommu_exit(q->tlb);
	return head - start;
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
