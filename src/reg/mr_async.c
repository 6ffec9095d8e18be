/* SPDX-License-Identifier: MIT */
/*
 * mr_async.c - pinned registration in the background (iovm_mr_reg_async()):
 * the MR published at once with no page mapped, its range cut into chunks
 * that threads of its own lock (mlock(2), which faults them in) in
 * parallel, outside every lock, and map in the domain under
 * reg_space.lock; the waits for a part (iovm_mr_wait()), how far it is
 * (iovm_mr_ready()), and the cancel of a deregistration. The pages
 * themselves (counted locks, valid bits, mappings) are pages.c's.
 *
 * A chunk's pages are counted in reg_space.locked before its thread locks
 * them, so that no other registration's end unlocks them meanwhile; an
 * event of the memory monitor that hits the MR between the lock and the
 * map (mr->seq moved) has the chunk locked again under the lock, where
 * memory unmapped meanwhile fails as for iovm_mr_reg(); a chunk with pages
 * an event took away (mr->taken) is never mapped, and fails the same way:
 * what replaced them is not the memory that was registered.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "base/compiler.h"
#include "base/error.h"
#include "base/fault_inject.h"
#include "base/lock.h"
#include "base/log.h"
#include "os/populate.h"
#include "reg/reg_internal.h"

#define PG 4096u
#define ACCESS_PINNED                                                                                \
	(IOVM_ACCESS_LOCAL_READ | IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_REMOTE_READ | IOVM_ACCESS_REMOTE_WRITE)
#define FLAGS_ALL 0x3fffu
#define CHUNK_SHIFT_DEFAULT 25 /* 32 MiB: some 100 ms of pinning each on a slow machine */
#define THREADS_DEFAULT_MAX 8
#define NICE_MORE 5 /* the pinning threads' nice above the caller's */

_Atomic(mr_async_test_hook) mr_async_test_chunk;

struct mr_async {
	struct iovm_mr *mr;
	uintptr_t base;            /* the MR's start, down to a chunk boundary */
	unsigned shift;            /* chunks of 2^shift bytes, aligned in the address space */
	uint32_t nchunks;
	uint32_t planned;          /* threads to start */
	uint32_t nthreads;         /* started: joined by mr_async_stop() */
	pthread_t *threads;
	_Atomic uint32_t next;     /* the next chunk a thread takes */
	_Atomic bool cancel;       /* the MR goes: take no more chunks */
	_Atomic bool joined;       /* the threads were joined (by the thread that stops them) */
	_Atomic int error;         /* the first error: no more chunks are taken */
	_Atomic uint64_t *done;    /* a bit per chunk, set (release) once pinned and mapped; read lock-free */
	_Atomic uint32_t ndone;
	_Atomic uint64_t pinned;   /* pages pinned and mapped */
	_Atomic bool usable;       /* with a backend: its registration is made (the whole MR is usable) */
	_Atomic bool finished;     /* every thread is through: nothing more will be pinned */
	struct mutex lock;         /* running, and the waits on @cond */
	uint32_t running;          /* under lock: threads not through yet */
	pthread_cond_t cond;       /* broadcast under lock as a chunk is done and when the pinning ends */
};

/* Pages [*first, *last] of chunk @k. */
static void chunk_pages(const struct mr_async *as, uint64_t k, uint64_t *first, uint64_t *last)
{
	const struct iovm_mr *mr = as->mr;
	uintptr_t s = as->base + (k << as->shift), e = s + ((uintptr_t)1 << as->shift);

	s = MAX(s, mr->start);
	e = MIN(e, mr->end);
	*first = (s - mr->start) / PG;
	*last = (e - mr->start) / PG - 1;
}

static uint64_t chunk_of_page(const struct mr_async *as, uint64_t page)
{
	return (as->mr->start + page * PG - as->base) >> as->shift;
}

static bool chunk_done(const struct mr_async *as, uint64_t k)
{
	return atomic_load_explicit(&as->done[k / 64], memory_order_acquire) & (UINT64_C(1) << (k % 64));
}

/* Whether chunks [c0, c1] are usable by devices. Lock-free. */
static bool chunks_usable(const struct mr_async *as, uint64_t c0, uint64_t c1)
{
	/* A device with its own registration has none until every chunk is pinned. */
	if (as->mr->be)
		return atomic_load_explicit(&as->usable, memory_order_acquire);
	for (uint64_t k = c0; k <= c1; k++)
		if (!chunk_done(as, k))
			return false;
	return true;
}

/* What stopped the pinning short, once it is finished. */
static int stop_error(const struct mr_async *as)
{
	int err = atomic_load_explicit(&as->error, memory_order_acquire);

	return err ? err : -ECANCELED;
}

/*
 * Whether memory [start, start+len) has pages already, judged by its
 * first and last: faulted in by touching, fresh memory costs a third more
 * CPU than mlock(2) faulting it in (a fault taken from user space per
 * page), which a machine with no CPU to spare pays in time.
 */
static bool chunk_has_pages(uint64_t start, uint64_t len)
{
	unsigned char first = 0, last = 0;

	if (mincore((void *)start, PG, &first) || mincore((void *)(start + len - PG), PG, &last))
		return true; /* not all mapped: the touch finds out */
	return (first | last) & 1;
}

/*
 * Lock [start, start+len) of @mr outside the locks, in parallel with the
 * other threads' chunks of the same mapping: 0, or an error (the caller
 * then locks it again under the lock, where errors are told apart).
 *
 * mlock(2) of a chunk does its work in two parts: it marks the chunk's
 * mapping locked and locks the pages there, holding the process's
 * mmap_lock for writing, then faults in the rest (walking the pages there
 * too) holding it for reading. Each thread's first part waited for the
 * other's second: two threads took turns (1.1 times one mlock of the
 * whole range). Where the chunk has pages already, it is locked on fault
 * instead (MLOCK_ONFAULT: the first part alone, still one thread at a
 * time) and faulted in by touching each page, which takes no mmap_lock
 * and faults nothing in that is there: no second walk, no turns.
 *
 * Fresh memory keeps mlock (chunk_has_pages()). A write touch breaks
 * copy-on-write as mlock does in a writable private mapping, but would
 * dirty a shared one's pages, which mlock only reads: only memory known
 * to be private and anonymous (monitored: see mr_publish()) registered
 * with write rights is touched.
 */
static int lock_chunk(struct iovm_mr *mr, uint64_t start, uint64_t len)
{
	int ret;

	if (!mr->monitored || !(mr->access & (IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_REMOTE_WRITE)) ||
	    !chunk_has_pages(start, len))
		return os_mlock((void *)start, len);
	ret = os_mlock_onfault((void *)start, len);
	if (ret == -ENOSYS || ret == -EINVAL) /* before Linux 4.4 */
		return os_mlock((void *)start, len);
	return ret ? ret : os_populate_touched((void *)start, len, true);
}

/* Lock chunk @k outside the locks, then map it under reg_space.lock. */
static int pin_chunk(struct mr_async *as, uint64_t k)
{
	struct iovm_mr *mr = as->mr;
	struct reg_space *rs = mr->rs;
	uint64_t first, last, seq;
	int ret, locked;

	chunk_pages(as, k, &first, &last);
	mutex_lock(&rs->lock);
	ret = mr_pin_count(rs, mr, first, last);
	seq = atomic_load_explicit(&mr->seq, memory_order_acquire);
	mutex_unlock(&rs->lock);
	if (ret)
		return ret;
	/* The long part, in parallel: faulting the pages in and locking them. */
	locked = lock_chunk(mr, mr->start + first * PG, (last - first + 1) * PG);
	mutex_lock(&rs->lock);
	ret = mr_pin_map(rs, mr, first, last, locked || atomic_load_explicit(&mr->seq, memory_order_acquire) != seq);
	mutex_unlock(&rs->lock);
	if (!ret)
		atomic_fetch_add_explicit(&as->pinned, last - first + 1, memory_order_relaxed);
	return ret;
}

/* The last thread through: the device's registration, then the waiters told. */
static void pin_finish(struct mr_async *as)
{
	struct iovm_mr *mr = as->mr;
	struct reg_space *rs = mr->rs;
	bool whole = atomic_load_explicit(&as->ndone, memory_order_acquire) == as->nchunks;
	int ret;

	/* One device registration of the whole range, as iovm_mr_reg() makes (backend.c). */
	if (whole && mr->be) {
		ret = backend_register(mr);
		if (ret)
			atomic_store_explicit(&as->error, ret, memory_order_release);
		else
			atomic_store_explicit(&as->usable, true, memory_order_release);
	}
	mutex_lock(&rs->lock);
	mr->pinning = false;
	/* A pinned MR with no page left (none pinned, or all invalidated) is dead, as pages.c has it. */
	if (!__atomic_load_n(&mr->nr_valid, __ATOMIC_RELAXED))
		atomic_store_explicit(&mr->state, MR_DEAD, memory_order_release);
	mutex_unlock(&rs->lock);
	mutex_lock(&as->lock);
	atomic_store_explicit(&as->finished, true, memory_order_release);
	pthread_cond_broadcast(&as->cond);
	mutex_unlock(&as->lock);
}

/* One of the threads through: the last finishes the registration. */
static void pin_leave(struct mr_async *as, uint32_t n)
{
	bool last;

	mutex_lock(&as->lock);
	as->running -= n;
	last = !as->running;
	mutex_unlock(&as->lock);
	if (last)
		pin_finish(as);
}

/*
 * The calling thread in the background: the application's threads (its
 * start-up, a copy) go first where CPUs are short. A nice value is per
 * thread on Linux; where it cannot be had, the thread pins at the
 * caller's.
 */
static void background(void)
{
	id_t tid = (id_t)syscall(SYS_gettid);
	int nice;

	errno = 0;
	nice = getpriority(PRIO_PROCESS, tid);
	if (!errno)
		(void)setpriority(PRIO_PROCESS, tid, MIN(nice + NICE_MORE, 19));
}

static void *pin_thread(void *arg)
{
	struct mr_async *as = arg;

	background();
	for (;;) {
		mr_async_test_hook hook;
		uint32_t k;
		int ret, none = 0;

		if (atomic_load_explicit(&as->cancel, memory_order_acquire) ||
		    atomic_load_explicit(&as->error, memory_order_acquire))
			break;
		k = atomic_fetch_add_explicit(&as->next, 1, memory_order_relaxed);
		if (k >= as->nchunks)
			break;
		hook = atomic_load_explicit(&mr_async_test_chunk, memory_order_acquire);
		if (hook) {
			hook(as->mr, k);
			if (atomic_load_explicit(&as->cancel, memory_order_acquire))
				break;
		}
		ret = pin_chunk(as, k);
		if (ret) {
			atomic_compare_exchange_strong_explicit(&as->error, &none, ret, memory_order_acq_rel,
								memory_order_acquire);
			break;
		}
		atomic_fetch_or_explicit(&as->done[k / 64], UINT64_C(1) << (k % 64), memory_order_release);
		atomic_fetch_add_explicit(&as->ndone, 1, memory_order_acq_rel);
		mutex_lock(&as->lock);
		pthread_cond_broadcast(&as->cond);
		mutex_unlock(&as->lock);
	}
	pin_leave(as, 1);
	return NULL;
}

static struct mr_async *async_new(struct iovm_mr *mr, unsigned shift, unsigned threads)
{
	struct mr_async *as = fi_calloc(1, sizeof(*as));
	pthread_condattr_t ca;
	long cpus;

	if (!as)
		return NULL;
	as->mr = mr;
	as->shift = shift ? shift : CHUNK_SHIFT_DEFAULT;
	as->base = mr->start & ~(((uintptr_t)1 << as->shift) - 1);
	as->nchunks = (uint32_t)((mr->end - 1 - as->base) >> as->shift) + 1;
	if (!threads) {
		cpus = sysconf(_SC_NPROCESSORS_ONLN);
		threads = cpus < 1 ? 1 : cpus > THREADS_DEFAULT_MAX ? THREADS_DEFAULT_MAX : (unsigned)cpus;
	}
	as->planned = MIN(threads, as->nchunks);
	as->done = fi_calloc((as->nchunks + 63) / 64, sizeof(*as->done));
	as->threads = fi_calloc(as->planned, sizeof(*as->threads));
	if (!as->done || !as->threads) {
		free(as->done);
		free(as->threads);
		free(as);
		return NULL;
	}
	mutex_init(&as->lock);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&as->cond, &ca);
	pthread_condattr_destroy(&ca);
	return as;
}

void mr_async_free(struct iovm_mr *mr)
{
	struct mr_async *as = mr->async;

	mr_async_stop(mr);
	pthread_cond_destroy(&as->cond);
	mutex_destroy(&as->lock);
	free((void *)as->done);
	free(as->threads);
	free(as);
	mr->async = NULL;
}

void mr_async_stop(struct iovm_mr *mr)
{
	struct mr_async *as = mr->async;

	if (atomic_load_explicit(&as->joined, memory_order_acquire))
		return;
	atomic_store_explicit(&as->cancel, true, memory_order_release);
	for (uint32_t i = 0; i < as->nthreads; i++)
		pthread_join(as->threads[i], NULL);
	atomic_store_explicit(&as->joined, true, memory_order_release);
}

void mr_async_stop_all(struct reg_space *rs)
{
	for (;;) {
		struct iovm_mr *found = NULL;
		struct itree_node *n;

		mutex_lock(&rs->lock);
		itree_for_each_node(n, &rs->mrs) {
			struct iovm_mr *mr = container_of(n, struct iovm_mr, node);

			if (mr->async && !atomic_load_explicit(&mr->async->joined, memory_order_acquire)) {
				found = mr;
				break;
			}
		}
		mutex_unlock(&rs->lock);
		if (!found)
			return;
		/* Its threads take reg_space.lock: joined without it. */
		mr_async_stop(found);
	}
}

bool mr_async_backend_ready(const struct iovm_mr *mr)
{
	return !mr->async || atomic_load_explicit(&mr->async->usable, memory_order_acquire);
}

bool mr_async_cancelled(const struct iovm_mr *mr)
{
	return mr->async && atomic_load_explicit(&mr->async->cancel, memory_order_acquire);
}

IOVM_API int iovm_mr_reg_async(struct iovm_domain *dom, void *addr, size_t len, uint32_t access, uint32_t flags,
			       struct iovm_mr **out)
{
	unsigned shift = (flags >> 8) & 0x3fu, started = 0;
	uintptr_t a = (uintptr_t)addr;
	pthread_attr_t attr;
	bool batch;
	struct mr_async *as;
	struct iovm_mr *mr;
	int ret = 0;

	err_enter();
	if (!dom || !out || (access & ~ACCESS_PINNED))
		return err_inval("!dom || !out || (access & ~ACCESS_PINNED) (on demand has nothing to pin)");
	if ((flags & ~FLAGS_ALL) || (shift && (shift < 16 || shift > 30)))
		return err_inval("unknown flags, or a chunk shift out of [16, 30]");
	if (!addr || !len || a + len < a || a + len > UINTPTR_MAX - PG)
		return err_inval("!addr || !len || a + len < a || a + len > UINTPTR_MAX - PG");
	mr = mr_new(dom, a, len, access);
	if (!mr)
		return -ENOMEM;
	mr->taken = fi_calloc((mr->npages + 63) / 64, sizeof(uint64_t));
	as = mr->taken ? async_new(mr, shift, flags & 0xffu) : NULL;
	if (!as) {
		mr_free(mr); /* and its taken bits */
		return -ENOMEM;
	}
	mr->async = as;
	mr->pinning = true;
	/* Checked, watched, keyed and mapped nowhere yet (mr.c); the threads pin. */
	ret = mr_register(mr);
	if (ret) {
		mr_free(mr);
		return ret;
	}
	as->running = as->planned;
	/* SCHED_BATCH: a pinning thread that wakes does not preempt the caller (nor the application's threads). */
	batch = !pthread_attr_init(&attr);
	if (batch && (pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED) ||
		      pthread_attr_setschedpolicy(&attr, SCHED_BATCH) ||
		      pthread_attr_setschedparam(&attr, &(struct sched_param){ .sched_priority = 0 }))) {
		pthread_attr_destroy(&attr);
		batch = false;
	}
	for (; started < as->planned; started++) {
		ret = fi_pthread_create(&as->threads[started], batch ? &attr : NULL, pin_thread, as);
		/* Where SCHED_BATCH is refused (a seccomp policy, a cgroup), at the caller's policy. */
		if (ret == EPERM && batch) {
			pthread_attr_destroy(&attr);
			batch = false;
			ret = fi_pthread_create(&as->threads[started], NULL, pin_thread, as);
		}
		if (ret)
			break;
	}
	if (batch)
		pthread_attr_destroy(&attr);
	as->nthreads = started;
	if (!started) {
		mutex_lock(&mr->rs->lock);
		mr_unpublish(mr->rs, mr);
		mutex_unlock(&mr->rs->lock);
		mr_free(mr);
		return err_detail(-EAGAIN, IOVM_LOG_DEBUG, "registration: no pinning thread could start");
	}
	/* Fewer threads pin it all, more slowly. */
	if (started < as->planned)
		pin_leave(as, as->planned - started);
	*out = mr;
	return 0;
}

/* The chunks of [addr, addr+len) of @mr, checked as iovm_mr_iova() checks a range. */
static int range_chunks(const struct iovm_mr *mr, const void *addr, size_t len, uint64_t *c0, uint64_t *c1)
{
	uintptr_t a = (uintptr_t)addr;

	if (a + len < a || a < mr->addr || a + len > mr->addr + mr->len)
		return err_detail(-ERANGE, IOVM_LOG_DEBUG, "[%p, +%zu) is not inside the MR", addr, len);
	if (mr->async) {
		*c0 = chunk_of_page(mr->async, (a - mr->start) / PG);
		*c1 = chunk_of_page(mr->async, (a + len - 1 - mr->start) / PG);
	}
	return 0;
}

IOVM_API int iovm_mr_wait(struct iovm_mr *mr, const void *addr, size_t len, int timeout_ms)
{
	struct timespec deadline;
	struct mr_async *as;
	uint64_t c0 = 0, c1 = 0;
	int ret;

	err_enter();
	if (!mr || !len || mr->implicit)
		return err_inval("!mr || !len || mr->implicit");
	ret = range_chunks(mr, addr, len, &c0, &c1);
	if (ret || !mr->async)
		return ret;
	as = mr->async;
	if (chunks_usable(as, c0, c1))
		return 0;
	if (timeout_ms > 0) {
		clock_gettime(CLOCK_MONOTONIC, &deadline);
		deadline.tv_sec += timeout_ms / 1000;
		deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
		if (deadline.tv_nsec >= 1000000000) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000;
		}
	}
	mutex_lock(&as->lock);
	while (!chunks_usable(as, c0, c1) && !atomic_load_explicit(&as->finished, memory_order_acquire)) {
		if (!timeout_ms || (timeout_ms > 0 && cond_timedwait(&as->cond, &as->lock, &deadline) == ETIMEDOUT))
			break;
		if (timeout_ms < 0)
			cond_wait(&as->cond, &as->lock);
	}
	mutex_unlock(&as->lock);
	if (chunks_usable(as, c0, c1))
		return 0;
	return atomic_load_explicit(&as->finished, memory_order_acquire) ? stop_error(as) : -ETIMEDOUT;
}

IOVM_API int iovm_mr_ready(const struct iovm_mr *mr, struct iovm_mr_pinning *p)
{
	const struct mr_async *as;
	uint64_t bytes, prefix_chunks = 0;
	bool whole, finished;

	err_enter();
	if (!mr || mr->implicit)
		return err_inval("!mr || mr->implicit");
	bytes = (uint64_t)(mr->end - mr->start);
	as = mr->async;
	if (!as) {
		if (p)
			*p = (struct iovm_mr_pinning){ .bytes = bytes, .pinned = mr->on_demand ? 0 : bytes,
						       .prefix = bytes, .chunks = 1, .chunks_done = 1, .done = true };
		return 0;
	}
	/* Finished first: a pinning seen finished has every bit it will ever have. */
	finished = atomic_load_explicit(&as->finished, memory_order_acquire);
	whole = chunks_usable(as, 0, as->nchunks - 1);
	if (p) {
		if (!mr->be || whole)
			while (prefix_chunks < as->nchunks && chunk_done(as, prefix_chunks))
				prefix_chunks++;
		*p = (struct iovm_mr_pinning){
			.bytes = bytes,
			.pinned = atomic_load_explicit(&as->pinned, memory_order_relaxed) * PG,
			.prefix = MIN(bytes, prefix_chunks ? (as->base + (prefix_chunks << as->shift)) - mr->start : 0),
			.chunks = as->nchunks,
			.chunks_done = atomic_load_explicit(&as->ndone, memory_order_relaxed),
			.threads = as->nthreads,
			.error = atomic_load_explicit(&as->error, memory_order_acquire),
			.done = finished || whole,
		};
	}
	if (whole)
		return 0;
	return finished ? stop_error(as) : -EINPROGRESS;
}
