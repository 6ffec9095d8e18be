/* SPDX-License-Identifier: MIT */
/*
 * odp.c - on-demand registrations: pages pinned and mapped when a device
 * faults on them (or when prefetched), unpinned when the memory monitor
 * invalidates them or the pin budget needs them back.
 *
 * On-demand paging in user space is on-demand pinning. The fault path
 * follows the kernel's HMM pattern: note the fault's pages as being faulted
 * in (reg_space.odp_fills), fault them in without any lock held (the long
 * part), take the lock, and map only if no invalidation of those pages ran
 * meanwhile; else start over. An invalidation that arrives during a fault
 * thus either runs before the mapping (which sees it marked and retries)
 * or after it (and unmaps what was just mapped).
 *
 * Pins are taken and given back 64 KiB at a time (ODP_CHUNK_PAGES). Chunks
 * holding pins sit on an LRU list; past the budget, the least recently used
 * go, with a second chance for those the device accessed since they were
 * last looked at (the IO page table's accessed bits, as a CLOCK).
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>

#include <iovm/iommu.h>

#include "base/compiler.h"
#include "base/ctx.h"
#include "base/error.h"
#include "base/fault_inject.h"
#include "base/lock.h"
#include "base/log.h"
#include "iommu/iommu.h"
#include "os/vma.h"
#include "reg/reg_internal.h"

#define PG 4096u
/* Invalidations that may interrupt one fault before it gives up (a device retries). */
#define ODP_RETRIES 8

_Atomic(odp_test_hook) odp_test_between;

static uint64_t nr_chunks(const struct iovm_mr *mr)
{
	return (mr->npages + ODP_CHUNK_PAGES - 1) / ODP_CHUNK_PAGES;
}

/* The chunk array, made at the first fault: registering stays O(1). Needs reg_space.lock. */
static int chunks_get(struct iovm_mr *mr)
{
	lock_assert_held(&mr->rs->lock);
	if (mr->chunks)
		return 0;
	mr->chunks = fi_calloc(nr_chunks(mr), sizeof(*mr->chunks));
	return mr->chunks ? 0 : -ENOMEM;
}

/* Whether the device touched the chunk since it was last asked; the bits are cleared. */
static bool chunk_accessed(struct iovm_mr *mr, uint64_t c)
{
	uint64_t first = c * ODP_CHUNK_PAGES, n = MIN((uint64_t)ODP_CHUNK_PAGES, mr->npages - first);
	bool accessed = false, dirty = false;

	iovm_domain_read_dirty(mr->dom, iova_add(mr->iova, first * PG), n * PG, true, &accessed, &dirty);
	return accessed;
}

/*
 * Whether @ch was pinned for one of the latest page requests, as many as
 * the budget holds whole chunks (one at least: the option refuses less).
 * Those are what devices reach now: the pieces a running descriptor needs
 * at once, when they fit in the budget, are among them. Rounded down, so
 * that they fit: sparing them, a prefetch can always get back within the
 * budget. Needs reg_space.lock.
 */
static bool recently_asked(const struct reg_space *rs, const struct odp_chunk *ch)
{
	return ch->asked && rs->asked - ch->asked < rs->budget_pages / ODP_CHUNK_PAGES;
}

/*
 * Unpin the least recently used chunks until the budget holds, sparing
 * @keep, and the recently asked ones when @spare_asked. Needs
 * reg_space.lock.
 */
static void evict_sweep(struct reg_space *rs, struct odp_chunk *keep, bool spare_asked)
{
	/*
	 * Each chunk may be passed over once (its second chance): at most two
	 * rounds of the list, those spared going round with the rest.
	 */
	for (uint64_t look = 0, limit = 2 * rs->lru_len;
	     rs->odp_pinned > rs->budget_pages && !list_empty(&rs->lru) && look < limit; look++) {
		struct odp_chunk *ch = list_entry(rs->lru.next, struct odp_chunk, lru);
		struct iovm_mr *mr = ch->mr;
		uint64_t c = (uint64_t)(ch - mr->chunks), first = c * ODP_CHUNK_PAGES;

		list_del(&ch->lru);
		if (ch == keep || (spare_asked && recently_asked(rs, ch))) {
			list_add_tail(&rs->lru, &ch->lru);
			continue;
		}
		if (!ch->second_chance && chunk_accessed(mr, c)) {
			/* Used since last looked at: to the back, once. */
			ch->second_chance = true;
			list_add_tail(&rs->lru, &ch->lru);
			continue;
		}
		ch->linked = false;
		rs->lru_len--;
		ch->second_chance = false;
		ch->asked = 0;
		atomic_fetch_add_explicit(&rs->odp_evicted,
					  mr_drop_pages(rs, mr, first, MIN(first + ODP_CHUNK_PAGES, mr->npages) - 1),
					  memory_order_relaxed);
	}
}

/*
 * Back within the budget after pinning for a page request (@asked, @keep
 * its chunk) or a prefetch. Chunks pinned by prefetches and by older
 * requests go first; a page request then takes the least recently used of
 * the others, but a prefetch never does: it evicts its own pins instead.
 *
 * A prefetch is a hint, as rdma-core's ibv_advise_mr(): it must never make
 * a valid access fail. A device answered a page request retries the
 * access after the answer; had a prefetch unpinned the chunk in between
 * (the budget full), the device would ask again, and a prefetch looping
 * on another thread could do so every time, until the engine gave up on
 * the descriptor as stuck (as it must for sides that truly do not fit in
 * the budget, which evict each other): a fault on memory that is there,
 * within the budget. Needs reg_space.lock.
 */
static void evict(struct reg_space *rs, struct odp_chunk *keep, bool asked)
{
	lock_assert_held(&rs->lock);
	evict_sweep(rs, keep, true);
	if (asked)
		evict_sweep(rs, keep, false);
}

/* The chunk was used (@asked: for a page request): to the back of the LRU list. Needs reg_space.lock. */
static void touch(struct reg_space *rs, struct odp_chunk *ch, bool asked)
{
	lock_assert_held(&rs->lock);
	if (ch->linked)
		list_del(&ch->lru);
	else
		rs->lru_len++;
	list_add_tail(&rs->lru, &ch->lru);
	ch->linked = true;
	ch->second_chance = false;
	if (asked)
		ch->asked = ++rs->asked;
}

/*
 * Whether pages [first, last] are all in memory already (a minor fault): no
 * need to fault them in. mincore(2) walks the page table, where
 * MADV_POPULATE_* takes every page through get_user_pages: several times
 * the cost for a 64 KiB chunk. (A page made inaccessible by mprotect after
 * it was touched passes: the device's access to it is then a guarded bus
 * fault, nothing worse.)
 */
static bool resident(const struct iovm_mr *mr, uint64_t first, uint64_t last)
{
	unsigned char vec[ODP_CHUNK_PAGES];
	uint64_t n = last - first + 1;

	if (n > ODP_CHUNK_PAGES || mincore((void *)(mr->start + first * PG), n * PG, vec))
		return false;
	for (uint64_t i = 0; i < n; i++)
		if (!(vec[i] & 1))
			return false;
	return true;
}

/*
 * Whether pages [first, last] must be watched before they are pinned: the
 * registration's watch covered what was mapped then, and an event says
 * when a mapping goes; memory mapped where there was none (a hole at
 * registration, or where an event took a mapping away) is not watched yet.
 * Needs reg_space.lock.
 */
static bool needs_watch(struct reg_space *rs, struct iovm_mr *mr, uint64_t first, uint64_t last)
{
	lock_assert_held(&rs->lock);
	if (!rs->mon || !mr->watched)
		return false;
	if (!mr->chunks)
		return mr->holes;
	for (uint64_t c = first / ODP_CHUNK_PAGES; c <= last / ODP_CHUNK_PAGES; c++)
		if (mr->chunks[c].rewatch || (mr->holes && !mr->chunks[c].watched))
			return true;
	return false;
}

void odp_mappings_changed(struct iovm_mr *mr, uint64_t first, uint64_t last)
{
	lock_assert_held(&mr->rs->lock);
	if (!mr->chunks) {
		mr->holes = true; /* no chunk to mark: watch each at its first fault */
		return;
	}
	for (uint64_t c = first / ODP_CHUNK_PAGES; c <= last / ODP_CHUNK_PAGES; c++)
		mr->chunks[c].rewatch = true;
}

/*
 * Watch (start, len) of @mr before its pages are pinned: 0, or -EFAULT
 * when it cannot be. Memory whose pages can be replaced without an event
 * (a file's, shared memory's: mapped into a hole since the registration)
 * sets *@unseen: the MR is not monitored from then on; an implicit MR's
 * child refuses it instead, as the caller of a whole address space cannot
 * be told which part is not monitored. Called without reg_space.lock.
 */
static int watch_range(struct reg_space *rs, struct iovm_mr *mr, uint64_t start, uint64_t len, bool *unseen)
{
	struct os_vma_info vi;
	int ret = monitor_watch(rs->mon, start, len, -1);

	if (ret)
		return ret == -ENOMEM || ret == -EAGAIN ? ret : -EFAULT; /* the kernel short: no fault */
	ret = os_vma_range(start, start + len, &vi);
	if (ret == -ENOMEM || ret == -EMFILE || ret == -ENFILE || ret == -EAGAIN)
		return ret; /* the maps could not be read for want of a resource: not the memory's fault */
	*unseen = ret || vi.file_backed || vi.sysv_shm;
	return mr->parent && *unseen ? -EFAULT : 0;
}

/*
 * A fault in of pages [first, last] of @mr outside reg_space.lock, which
 * an invalidation of any of them marks @hit (odp_fills_hit()). The MR's
 * sequence would tell of every invalidation of the MR, anywhere in it:
 * an application that keeps discarding some of its pages would fail
 * every fault in of the others, ODP_RETRIES times in a row, on a loaded
 * machine where a fault in takes long.
 */
struct odp_filling {
	struct list_node link;   /* in reg_space.odp_fills, under its lock */
	const struct iovm_mr *mr;
	uint64_t first, last;
	bool hit;                /* under reg_space.lock */
};

void odp_fills_hit(struct reg_space *rs, const struct iovm_mr *mr, uint64_t first, uint64_t last)
{
	lock_assert_held(&rs->lock);
	for (struct list_node *n = rs->odp_fills.next; n != &rs->odp_fills; n = n->next) {
		struct odp_filling *f = container_of(n, struct odp_filling, link);

		if (f->mr == mr && first <= f->last && f->first <= last)
			f->hit = true;
	}
}

/* The HMM dance: see the file's head. */
int odp_fill(struct reg_space *rs, struct iovm_mr *mr, uint64_t first, uint64_t last, bool asked)
{
	lock_assert_held(&rs->lock);
	for (unsigned attempt = 0; attempt < ODP_RETRIES; attempt++) {
		struct odp_filling filling = { .mr = mr, .first = first, .last = last };
		bool watch = needs_watch(rs, mr, first, last), unseen = false;
		int ret;

		mr->refs++;
		list_add_tail(&rs->odp_fills, &filling.link);
		mutex_unlock(&rs->lock);
		/*
		 * Watched before it is faulted in: memory mapped into the range
		 * since the registration (where something was unmapped, or in a
		 * hole) is not watched yet, and pins on it would outlive it.
		 * Watching again what is watched is harmless.
		 */
		/* Memory the monitor cannot watch is not pinned for an MR said to be watched: a fault. */
		ret = watch ? watch_range(rs, mr, mr->start + first * PG, (last - first + 1) * PG, &unseen) : 0;
		if (!ret)
			ret = resident(mr, first, last) ? 0
							: mr_populate(mr, mr->start + first * PG, (last - first + 1) * PG);
		{
			odp_test_hook hook = atomic_load_explicit(&odp_test_between, memory_order_acquire);

			if (unlikely(hook))
				hook(mr, first, last);
		}
		mutex_lock(&rs->lock);
		list_del(&filling.link);
		if (!--mr->refs)
			pthread_cond_broadcast(&rs->idle);
		if (atomic_load_explicit(&mr->state, memory_order_acquire) == MR_GONE)
			return -ENOENT;
		if (ret)
			return ret;
		if (unseen && mr->monitored) {
			mutex_lock(&mr->lock);
			mr->monitored = false;
			mutex_unlock(&mr->lock);
		}
		/* Invalidated while faulting in: what was faulted may be gone. Again. */
		if (filling.hit) {
			atomic_fetch_add_explicit(&rs->odp_retries, 1, memory_order_relaxed);
			continue;
		}
		ret = chunks_get(mr);
		if (!ret)
			ret = mr_lock_map(rs, mr, first, last);
		if (ret)
			return ret;
		for (uint64_t c = first / ODP_CHUNK_PAGES; c <= last / ODP_CHUNK_PAGES; c++) {
			uint64_t cf = c * ODP_CHUNK_PAGES, cl = MIN(cf + ODP_CHUNK_PAGES, mr->npages) - 1;

			mr->chunks[c].mr = mr;
			/* Watched whole (not a page alone, around a hole): known watched until it changes. */
			if (watch && first <= cf && last >= cl) {
				mr->chunks[c].watched = true;
				mr->chunks[c].rewatch = false;
			}
			touch(rs, &mr->chunks[c], asked);
		}
		evict(rs, asked ? &mr->chunks[last / ODP_CHUNK_PAGES] : NULL, asked);
		return 0;
	}
	return -EAGAIN;
}

/* The on-demand MR of @dom holding @iova. Needs reg_space.lock. */
static struct iovm_mr *mr_at(struct reg_space *rs, struct iovm_domain *dom, iova_t iova)
{
	struct itree_node *n;

	lock_assert_held(&rs->lock);
	itree_for_each_in(n, &rs->by_iova, iova_val(iova), 1) {
		struct iovm_mr *mr = container_of(n, struct iovm_mr, inode);

		if (mr->dom == dom)
			return mr;
	}
	return NULL;
}

int odp_resolve(void *arg, struct iovm_domain *dom, iova_t iova, unsigned access)
{
	struct reg_space *rs = arg;
	struct iovm_mr *mr;
	uint64_t page, first, last;
	int ret;

	mutex_lock(&rs->lock);
	mr = mr_at(rs, dom, iova);
	if (!mr || !mr->on_demand || atomic_load_explicit(&mr->state, memory_order_acquire) != MR_LIVE) {
		mutex_unlock(&rs->lock);
		return -ENOENT;
	}
	if ((access & IOVM_MAP_WRITE) && !(mr->prot & IOVM_MAP_WRITE)) {
		mutex_unlock(&rs->lock);
		return -EACCES;
	}
	page = iova_diff(iova, mr->iova) / PG;
	first = align_down(page, ODP_CHUNK_PAGES);
	last = MIN(first + ODP_CHUNK_PAGES, mr->npages) - 1;
	ret = odp_fill(rs, mr, first, last, true);
	/* A hole in the window (part of it unmapped): the page alone. */
	if (ret == -EFAULT && first != last)
		ret = odp_fill(rs, mr, page, page, true);
	if (!ret)
		atomic_fetch_add_explicit(&rs->odp_faults, 1, memory_order_relaxed);
	mutex_unlock(&rs->lock);
	return ret;
}

void odp_forget(struct reg_space *rs, struct iovm_mr *mr)
{
	lock_assert_held(&rs->lock);
	/* Its LRU list: the chunks unlink themselves. */
	if (!mr->chunks)
		return;
	for (uint64_t c = 0; c < nr_chunks(mr); c++)
		if (mr->chunks[c].linked) {
			list_del(&mr->chunks[c].lru);
			mr->chunks[c].linked = false;
			rs->lru_len--;
		}
}

/*
 * Prefetch [a, a+len) of on-demand @mr (not implicit), or, when @fault,
 * resolve a mirror's page request for it (counted as a fault). Needs
 * reg_space.lock.
 */
int odp_advise(struct reg_space *rs, struct iovm_mr *mr, uintptr_t a, size_t len, bool fault)
{
	uint64_t first = (align_down(a, PG) - mr->start) / PG;
	uint64_t last = (align_up(a + len, PG) - mr->start) / PG - 1;
	int ret;

	uint64_t asked_first = first, asked_last = last;

	lock_assert_held(&rs->lock);
	/* Whole chunks, as faults would pin them. */
	first = align_down(first, ODP_CHUNK_PAGES);
	last = MIN(align_down(last, ODP_CHUNK_PAGES) + ODP_CHUNK_PAGES, mr->npages) - 1;
	ret = odp_fill(rs, mr, first, last, fault);
	/*
	 * reg.h promises -EFAULT only when part of [addr, addr+len) is not
	 * mapped: the chunk around it may reach memory that is not (an
	 * implicit child spans 64 MiB of address space), so prefetch just
	 * the pages asked for then.
	 */
	if (ret == -EFAULT && (first != asked_first || last != asked_last)) {
		first = asked_first;
		last = asked_last;
		ret = odp_fill(rs, mr, first, last, fault);
	}
	if (!ret && fault)
		atomic_fetch_add_explicit(&rs->odp_faults, 1, memory_order_relaxed);
	else if (!ret)
		atomic_fetch_add_explicit(&rs->odp_prefetched, (last - first + 1) * PG, memory_order_relaxed);
	return ret;
}

IOVM_API int iovm_mr_advise(struct iovm_mr *mr, void *addr, size_t len, uint32_t flags)
{
	uintptr_t a = (uintptr_t)addr;
	struct reg_space *rs;
	int ret;

	err_enter();
	if (!mr || !addr || !len || (flags & ~IOVM_ADVISE_WRITE))
		return err_inval("!mr || !addr || !len || (flags & ~IOVM_ADVISE_WRITE)");
	if (!mr->on_demand)
		return err_detail(-EINVAL, IOVM_LOG_DEBUG, "advise: a pinned registration is all there already");
	if ((flags & IOVM_ADVISE_WRITE) && !(mr->prot & IOVM_MAP_WRITE))
		return err_detail(-EINVAL, IOVM_LOG_DEBUG, "advise: for writing, a registration without write rights");
	/* A range past the end of the address space is not inside the MR either. */
	if (a + len < a)
		return -ERANGE;
	/* A device that pages by itself is told; iovm's own pins would serve only its software engine. */
	if (mr->be && !backend_by_children(mr) && (mr->implicit || (a >= mr->addr && a + len <= mr->addr + mr->len)))
		return backend_advise(mr, a, len, flags);
	if (mr->implicit)
		return implicit_advise(mr, a, len, flags);
	if (a < mr->addr || a + len > mr->addr + mr->len)
		return -ERANGE;
	rs = mr->rs;
	mutex_lock(&rs->lock);
	ret = odp_advise(rs, mr, a, len, false);
	mutex_unlock(&rs->lock);
	return ret == -ENOENT ? err_inval("[addr, addr+len) inside the MR and mapped") : ret;
}
