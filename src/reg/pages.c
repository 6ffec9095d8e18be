/* SPDX-License-Identifier: MIT */
/*
 * pages.c - a registration's pages: valid (locked, for a pinned MR, and
 * mapped in its domain) or invalid, a bit each; locked with counts, so
 * that overlapping MRs lock and unlock each page once (reg_space.locked);
 * and invalidated page by page when the monitor sees the application take
 * memory away.
 *
 * The monitor invalidates the pages an event covers, not the whole MR, so
 * that the rest stays usable (the registration cache relies on it). Once
 * no page of a pinned MR is valid the MR is dead, and its keys are
 * refused.
 */
#include <errno.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include "base/compiler.h"
#include "base/error.h"
#include "base/fault_inject.h"
#include "base/lock.h"
#include "base/log.h"
#include "iommu/iommu.h"
#include "os/populate.h"
#include "reg/reg_internal.h"

#define PG 4096u

/*
 * The valid bits are written under the MR's lock and read without it by
 * cache hits (mr_pages_valid()): stored whole, relaxed (the seqcount
 * orders them), so a reader sees each word old or new.
 */
static void word_set(uint64_t *w, uint64_t mask, bool v)
{
	__atomic_store_n(w, v ? *w | mask : *w & ~mask, __ATOMIC_RELAXED);
}

/* Set (or clear) the bits of pages [first, last]: the whole words between a store each (1 GiB is 4096). */
static void pages_set(struct iovm_mr *mr, uint64_t first, uint64_t last, bool v)
{
	uint64_t fw = first / 64, lw = last / 64;
	uint64_t head = ~UINT64_C(0) << (first % 64), tail = ~UINT64_C(0) >> (63 - last % 64);

	if (fw == lw) {
		word_set(&mr->valid[fw], head & tail, v);
		return;
	}
	word_set(&mr->valid[fw], head, v);
	for (uint64_t w = fw + 1; w < lw; w++)
		__atomic_store_n(&mr->valid[w], v ? ~UINT64_C(0) : 0, __ATOMIC_RELAXED);
	word_set(&mr->valid[lw], tail, v);
}

/* The first page in [from, last] whose bit is @v, or last + 1: a word at a time. */
static uint64_t pages_find(const struct iovm_mr *mr, uint64_t from, uint64_t last, bool v)
{
	uint64_t skip = v ? 0 : ~UINT64_C(0), w = from / 64, wlast = last / 64, word;

	if (from > last)
		return last + 1;
	word = (mr->valid[w] ^ skip) & (~UINT64_C(0) << (from % 64));

	/* The words with nothing to find go by at a load and a compare each. */
	while (!word) {
		if (++w > wlast)
			return last + 1;
		word = mr->valid[w] ^ skip;
	}
	return MIN(w * 64 + (uint64_t)__builtin_ctzll(word), last + 1);
}

/* Pieces no registration locks any more: unlocked, and counted in *@arg (bytes). */
static int do_munlock(void *arg, uint64_t start, uint64_t end)
{
	uint64_t *bytes = arg;

	/* The memory may be gone already (that is why it is unlocked): nothing to undo then. */
	os_munlock((void *)(uintptr_t)start, end - start);
	*bytes += end - start;
	return 0;
}

/* Pieces no registration locked before: counted in *@arg (bytes), as the kernel counts VmLck. */
static int count_locked(void *arg, uint64_t start, uint64_t end)
{
	uint64_t *bytes = arg;

	*bytes += end - start;
	return 0;
}

/*
 * Whether locking @len bytes more goes past RLIMIT_MEMLOCK, from what the
 * kernel counts locked (VmLck): when it cannot be read, yes.
 */
static bool past_lock_limit(uint64_t len)
{
	struct rlimit rl;
	unsigned long kb = 0;
	char line[128];
	bool found = false;
	FILE *f;

	if (getrlimit(RLIMIT_MEMLOCK, &rl) || rl.rlim_cur == RLIM_INFINITY)
		return false;
	f = fi_fopen("/proc/self/status", "re");
	if (!f)
		return true;
	while (!found && fgets(line, sizeof(line), f))
		found = sscanf(line, "VmLck: %lu kB", &kb) == 1;
	fclose(f);
	return !found || ((uint64_t)kb << 10) + len > rl.rlim_cur;
}

/*
 * mlock(2) [start, start+len): 0, -EFAULT when the memory is not
 * there, -ENOMEM when it cannot be locked. mlock says ENOMEM for memory
 * not mapped as for the limit. Not mapped now, or within the limit: the
 * memory went under the registration (unmapped, and perhaps mapped again),
 * not there to have. (Within the limit, the kernel short of memory would say ENOMEM
 * too: rare, and then not told apart.)
 */
static int lock_pages(uint64_t start, uint64_t len)
{
	int ret = os_mlock((void *)start, len);

	if (!ret)
		return 0;
	if (ret == -EAGAIN) /* memory short while faulting the pages in (mlock's own ENOMEM is not that) */
		return err_detail(-ENOMEM, IOVM_LOG_DEBUG, "registration: mlock of %lu bytes: memory short",
				  (unsigned long)len);
	/*
	 * Past the limit, the limit is the answer, though a monitor batch
	 * began since the registration did: other threads' munmaps begin
	 * batches all the time, and a registration of memory that stayed put
	 * got -EFAULT for them (the rcache model's threads, unprivileged).
	 * Memory mapped again meanwhile and past the limit could not be
	 * locked either: -ENOMEM is true of it too.
	 */
	if (msync((void *)start, len, MS_ASYNC) || !past_lock_limit(len))
		return err_detail(-EFAULT, IOVM_LOG_DEBUG, "registration: [%#lx, %#lx) changed while it was locked",
				  (unsigned long)start, (unsigned long)(start + len));
	return err_detail(-ENOMEM, IOVM_LOG_DEBUG, "registration: mlock of %lu bytes: %s (RLIMIT_MEMLOCK)",
			  (unsigned long)len, strerror(-ret));
}

/*
 * Fault in (start, len) of @mr, for writing if it may be written: -EFAULT
 * when the pages are not there to have, -ENOMEM (or -EAGAIN) when memory
 * is short.
 */
int mr_populate(const struct iovm_mr *mr, uint64_t start, uint64_t len)
{
	bool write = mr->prot & IOVM_MAP_WRITE;
	int ret = os_populate_range((void *)start, len, write);

	if (ret != -EFAULT)
		return ret; /* 0, or memory short: not the caller's buffer's fault */
	return err_detail(-EFAULT, IOVM_LOG_DEBUG, "registration: [%#lx, %#lx) is not all mapped and %s",
			  (unsigned long)start, (unsigned long)(start + len), write ? "writable" : "readable");
}

/*
 * Lock and map the run [i, j] of invalid pages. The lock is counted per page
 * (mlock is idempotent and munlock is not counted: always lock, count to know
 * when to unlock).
 */
static int lock_map_run(struct reg_space *rs, struct iovm_mr *mr, uint64_t i, uint64_t j)
{
	uint64_t start = mr->start + i * PG, len = (j - i + 1) * PG, newly = 0, undone = 0;
	int ret;

	lock_assert_held(&rs->lock);
	lock_assert_held(&mr->lock);
	if (mr->locked) {
		ret = ranges_add(&rs->locked, start, start + len, count_locked, NULL, &newly);
		if (ret)
			return ret;
		ret = lock_pages(start, len);
		if (ret) {
			ranges_remove(&rs->locked, start, start + len, do_munlock, &undone);
			IOVM_WARN_ON(undone != newly);
			return ret;
		}
	}
	ret = iommu_hold_map(mr->dom, iova_add(mr->iova, i * PG), pa_add(mr->pa, i * PG), len, mr->prot);
	if (ret) {
		if (mr->locked) {
			ranges_remove(&rs->locked, start, start + len, do_munlock, &undone);
			IOVM_WARN_ON(undone != newly);
		}
		return ret;
	}
	pages_set(mr, i, j, true);
	__atomic_store_n(&mr->nr_valid, mr->nr_valid + (j - i + 1), __ATOMIC_RELAXED);
	if (mr->on_demand)
		rs->odp_pinned += j - i + 1;
	atomic_fetch_add_explicit(&rs->locked_bytes, newly, memory_order_relaxed);
	return 0;
}

int mr_lock_map(struct reg_space *rs, struct iovm_mr *mr, uint64_t first, uint64_t last)
{
	int ret = 0;

	lock_assert_held(&rs->lock);
	mutex_lock(&mr->lock);
	for (uint64_t i = pages_find(mr, first, last, false); i <= last && !ret;) {
		uint64_t j = pages_find(mr, i, last, true) - 1;

		ret = lock_map_run(rs, mr, i, j);
		i = pages_find(mr, j + 1, last, false);
	}
	mutex_unlock(&mr->lock);
	return ret;
}

/*
 * A chunk pinned outside the locks (mr_async.c): counted first, so that no
 * other registration's end unlocks its pages while its thread locks them.
 */
int mr_pin_count(struct reg_space *rs, struct iovm_mr *mr, uint64_t first, uint64_t last)
{
	uint64_t newly = 0;
	int ret;

	lock_assert_held(&rs->lock);
	ret = ranges_add(&rs->locked, mr->start + first * PG, mr->start + (last + 1) * PG, count_locked, NULL, &newly);
	if (!ret)
		atomic_fetch_add_explicit(&rs->locked_bytes, newly, memory_order_relaxed);
	return ret;
}

void mr_pin_uncount(struct reg_space *rs, struct iovm_mr *mr, uint64_t first, uint64_t last)
{
	uint64_t unlocked = 0;

	lock_assert_held(&rs->lock);
	ranges_remove(&rs->locked, mr->start + first * PG, mr->start + (last + 1) * PG, do_munlock, &unlocked);
	atomic_fetch_sub_explicit(&rs->locked_bytes, unlocked, memory_order_relaxed);
}

static bool taken(const struct iovm_mr *mr, uint64_t i)
{
	return mr->taken && (mr->taken[i / 64] >> (i % 64) & 1);
}

/* The end of the run from @i whose pages are all taken, or all not, up to @last. */
static uint64_t taken_run(const struct iovm_mr *mr, uint64_t i, uint64_t last)
{
	bool t = taken(mr, i);

	while (i < last && taken(mr, i + 1) == t)
		i++;
	return i;
}

/* Map [first, last] locked, @relock: locked again first. Needs mr->lock and reg_space.lock. */
static int pin_map_run(struct iovm_mr *mr, uint64_t first, uint64_t last, bool relock)
{
	uint64_t start = mr->start + first * PG, len = (last - first + 1) * PG;
	int ret = 0;

	/* Locked outside the lock: again, where that failed or an event hit the MR meanwhile. */
	if (relock)
		ret = lock_pages(start, len);
	if (!ret)
		ret = iommu_hold_map(mr->dom, iova_add(mr->iova, first * PG), pa_add(mr->pa, first * PG), len,
				     mr->prot);
	if (!ret) {
		pages_set(mr, first, last, true);
		__atomic_store_n(&mr->nr_valid, mr->nr_valid + (last - first + 1), __ATOMIC_RELAXED);
	}
	return ret;
}

int mr_pin_map(struct reg_space *rs, struct iovm_mr *mr, uint64_t first, uint64_t last, bool relock)
{
	int ret = 0;

	lock_assert_held(&rs->lock);
	mutex_lock(&mr->lock);
	/*
	 * Pages an event took away while the chunk was pinned outside the
	 * lock (or before) are not mapped: their addresses hold other memory
	 * now, or none, which the chunk's thread may have locked (that lock
	 * goes). The pinning fails there, as for memory unmapped mid-way.
	 */
	if (taken_run(mr, first, last) != last || taken(mr, first)) {
		mr_pin_uncount(rs, mr, first, last);
		ret = -EFAULT;
	} else if ((ret = pin_map_run(mr, first, last, relock))) {
		mr_pin_uncount(rs, mr, first, last);
	}
	mutex_unlock(&mr->lock);
	return ret;
}

/* Unlock and unmap the valid pages of [first, last] page indices. Needs mr->lock and reg_space.lock. */
static uint64_t drop_pages(struct reg_space *rs, struct iovm_mr *mr, uint64_t first, uint64_t last)
{
	uint64_t dropped = 0, unlocked = 0;

	lock_assert_held(&rs->lock);
	lock_assert_held(&mr->lock);
	for (uint64_t i = pages_find(mr, first, last, true); i <= last; i = pages_find(mr, i, last, true)) {
		uint64_t j = pages_find(mr, i, last, false) - 1;

		pages_set(mr, i, j, false);
		/* The mirrors' devices first: a page request there finds the pages invalid now. */
		mirrors_drop(mr, mr->start + i * PG, mr->start + (j + 1) * PG);
		iommu_hold_unmap(mr->dom, iova_add(mr->iova, i * PG), (j - i + 1) * PG);
		if (mr->locked)
			ranges_remove(&rs->locked, mr->start + i * PG, mr->start + (j + 1) * PG, do_munlock,
				      &unlocked);
		dropped += j - i + 1;
		i = j + 1;
	}
	IOVM_ASSERT(dropped <= mr->nr_valid);
	__atomic_store_n(&mr->nr_valid, mr->nr_valid - dropped, __ATOMIC_RELAXED);
	if (mr->on_demand) {
		IOVM_ASSERT(dropped <= rs->odp_pinned);
		rs->odp_pinned -= dropped;
	}
	IOVM_WARN_ON(unlocked > atomic_load_explicit(&rs->locked_bytes, memory_order_relaxed));
	atomic_fetch_sub_explicit(&rs->locked_bytes, unlocked, memory_order_relaxed);
	return dropped;
}

uint64_t mr_drop_pages(struct reg_space *rs, struct iovm_mr *mr, uint64_t first, uint64_t last)
{
	uint64_t n;

	lock_assert_held(&rs->lock);
	mutex_lock(&mr->lock);
	n = drop_pages(rs, mr, first, last);
	mutex_unlock(&mr->lock);
	return n;
}

uint64_t mr_invalidate_range(struct reg_space *rs, uint64_t start, uint64_t len, unsigned kind)
{
	uint64_t end = start + len, pages = 0; /* user addresses: far from 2^64 */
	struct itree_node *n;

	lock_assert_held(&rs->lock);
	if (!len)
		return 0;
	itree_for_each_in(n, &rs->mrs, start, len) {
		struct iovm_mr *mr = container_of(n, struct iovm_mr, node);
		uint64_t s = MAX(start, mr->start), e = MIN(end, mr->end);

		/* Locked under reg_space.lock, which is held: the kernel refused to let its pages go. */
		if (kind == MON_EVENT_REMOVE_UNLOCKED && mr->locked)
			continue;
		mutex_lock(&mr->lock);
		/* Odd while the pages go: a lock-free reader of the valid bits knows to look again. */
		atomic_fetch_add_explicit(&mr->seq, 1, memory_order_seq_cst);
		pages += drop_pages(rs, mr, (s - mr->start) / PG, (align_up(e, PG) - mr->start) / PG - 1);
		/* Pinned in the background: pages not pinned yet are never to be (mr_pin_map()). */
		if (mr->taken)
			for (uint64_t i = (s - mr->start) / PG; i <= (align_up(e, PG) - mr->start) / PG - 1; i++)
				mr->taken[i / 64] |= UINT64_C(1) << (i % 64);
		if (mr->on_demand)
			odp_fills_hit(rs, mr, (s - mr->start) / PG, (align_up(e, PG) - mr->start) / PG - 1);
		if (mr->on_demand && (kind == UFFD_EVENT_UNMAP || kind == UFFD_EVENT_REMAP || !kind))
			odp_mappings_changed(mr, (s - mr->start) / PG, (align_up(e, PG) - mr->start) / PG - 1);
		atomic_fetch_add_explicit(&mr->seq, 1, memory_order_release);
		if (mr->rc)
			rcache_count_invalidation(mr->rc, kind);
		/* A pinned MR with nothing left is dead; an on-demand one faults its pages in again. */
		if (!mr->nr_valid && !mr->on_demand && !mr->pinning)
			atomic_store_explicit(&mr->state, MR_DEAD, memory_order_release);
		mutex_unlock(&mr->lock);
	}
	atomic_fetch_add_explicit(&rs->invalidated_pages, pages, memory_order_relaxed);
	return pages;
}

void mr_invalidate_all(struct reg_space *rs)
{
	struct itree_node *n;

	lock_assert_held(&rs->lock);
	itree_for_each_node(n, &rs->mrs) {
		struct iovm_mr *mr = container_of(n, struct iovm_mr, node);

		if (mr->watched)
			mr_invalidate_range(rs, mr->start, mr->end - mr->start, 0);
	}
}

/* A piece of reg_space.locked: locked again. */
static int do_mlock(void *arg, uint64_t start, uint64_t end)
{
	unsigned *failed = arg;

	/*
	 * A piece unmapped or replaced meanwhile fails, or locks the new
	 * memory until that event's invalidation unlocks it: either way its
	 * event comes.
	 */
	if (os_mlock((void *)(uintptr_t)start, end - start))
		(*failed)++;
	return 0;
}

void mr_relock_all(struct reg_space *rs)
{
	unsigned failed = 0;

	lock_assert_held(&rs->lock);
	ranges_for_each(&rs->locked, do_mlock, &failed);
	if (failed)
		log_debug("registration: %u locked pieces could not be locked again", failed);
}

bool mr_pages_valid(const struct iovm_mr *mr, uint64_t addr, uint64_t len)
{
	uint64_t first = (addr - mr->start) / PG, last = (addr + len - 1 - mr->start) / PG;

	for (uint64_t i = first; i <= last;) {
		uint64_t word = __atomic_load_n(&mr->valid[i / 64], __ATOMIC_RELAXED);
		unsigned bit = i % 64, n = (unsigned)MIN(64 - bit, last - i + 1);
		uint64_t want = (n == 64 ? ~UINT64_C(0) : (UINT64_C(1) << n) - 1) << bit;

		if ((word & want) != want)
			return false;
		i += n;
	}
	return true;
}
