/* SPDX-License-Identifier: MIT */
/*
 * event.c - memory events: subscribers hear of every page range committed
 * into the heap and of every range about to be released (an IOMMU domain
 * that follows the heap maps and unmaps on them).
 *
 * The subscriber list changes only while its changer holds every segment
 * list's lock, and is walked by a committer holding one of them: a walk
 * never sees it change. Callbacks run with that list lock held; a callback
 * that calls back into the allocator would deadlock, so a thread-local
 * depth counter makes such calls fail with -EDEADLK instead.
 */
#include <errno.h>
#include <stdlib.h>

#include "base/ctx.h"
#include "base/error.h"
#include "base/fault_inject.h"
#include "base/lock.h"
#include "base/log.h"
#include "mem/mem_internal.h"

__thread unsigned event_cb_depth __tls_ie;

static int call(struct mem_sub *sub, const struct iovm_mem_event *ev)
{
	int ret;

	event_cb_depth++;
	ret = sub->fn(sub->arg, ev);
	event_cb_depth--;
	return ret;
}

static struct iovm_mem_event make_event(const struct mem_seglist *sl, enum iovm_mem_event_type t,
					uint8_t *va, uint64_t len)
{
	return (struct iovm_mem_event){
		.type = t, .va = va, .len = len, .page_size = sl->page_size, .node = sl->node,
	};
}

int event_notify_commit(struct mem_seglist *sl, uint8_t *va, uint64_t len)
{
	struct iovm_mem_event ev = make_event(sl, IOVM_MEM_EVENT_COMMIT, va, len);
	struct iovm_mem_event rel = make_event(sl, IOVM_MEM_EVENT_RELEASE, va, len);
	struct list_node *n, *m;
	int ret;

	lock_assert_held(&sl->lock);
	list_for_each(n, &sl->ms->subs) {
		ret = call(list_entry(n, struct mem_sub, link), &ev);
		if (!ret)
			continue;
		if (ret > 0)
			ret = -EIO; /* a callback's error must be a negative errno */
		/* Those that accepted the commit hear of its undoing. */
		for (m = sl->ms->subs.next; m != n; m = m->next)
			call(list_entry(m, struct mem_sub, link), &rel);
		return ret;
	}
	return 0;
}

void event_notify_release(struct mem_seglist *sl, uint8_t *va, uint64_t len)
{
	struct iovm_mem_event ev = make_event(sl, IOVM_MEM_EVENT_RELEASE, va, len);
	struct list_node *n;

	lock_assert_held(&sl->lock);
	list_for_each(n, &sl->ms->subs)
		call(list_entry(n, struct mem_sub, link), &ev);
}

/* Take every list's lock, in slot order. Needs mem_space.lock. */
static void lock_all(struct mem_space *ms, bool lock)
{
	lock_assert_held(&ms->lock);
	for (unsigned i = 0; i < MEM_MAX_LISTS; i++) {
		struct mem_seglist *sl = atomic_load_explicit(&ms->lists[i], memory_order_acquire);

		if (!sl)
			continue;
		if (lock)
			mutex_lock(&sl->lock);
		else
			mutex_unlock(&sl->lock);
	}
}

/*
 * Send @type for every commit, up to (not including) the one at list
 * @stop_list, page @stop_page. Needs every list lock.
 * Returns the first error of a COMMIT, with where it stopped.
 */
static int replay(struct mem_space *ms, struct mem_sub *sub, enum iovm_mem_event_type type,
		  unsigned stop_list, uint64_t stop_page, unsigned *fail_list, uint64_t *fail_page)
{
	lock_assert_held(&ms->lock);
	for (unsigned i = 0; i < MEM_MAX_LISTS; i++) {
		struct mem_seglist *sl = atomic_load_explicit(&ms->lists[i], memory_order_relaxed);
		uint64_t p = 0;

		if (!sl)
			continue;
		lock_assert_held(&sl->lock);
		while (p < sl->page_hwm) {
			struct iovm_mem_event ev;
			uint64_t q;
			int ret;

			if (i == stop_list && p >= stop_page)
				return 0;
			if (!sl->pages[p].committed) {
				p++;
				continue;
			}
			/* Commit by commit: a subscriber that mirrors into a kernel IOMMU makes each one entry. */
			q = p - sl->pages[p].head_dist + sl->pages[p - sl->pages[p].head_dist].commit_pages;
			if (i == stop_list && q > stop_page)
				q = stop_page;
			ev = make_event(sl, type, sl->base + (p << sl->page_shift),
					(q - p) << sl->page_shift);
			ret = call(sub, &ev);
			if (ret && type == IOVM_MEM_EVENT_COMMIT) {
				*fail_list = i;
				*fail_page = p;
				return ret > 0 ? -EIO : ret;
			}
			p = q;
		}
	}
	return 0;
}

/* The shared heap's whole range, as one commit (it is mapped whole, once). */
static struct iovm_mem_event shared_event(const struct mem_shared *sh, enum iovm_mem_event_type t)
{
	return (struct iovm_mem_event){
		.type = t, .va = sh->va, .len = sh->len, .page_size = sh->page_size, .node = -1,
	};
}

static bool applied(const struct mem_space *ms, uint64_t i)
{
	return ms->shared_applied[i / 64] >> (i % 64) & 1;
}

static void applied_set(struct mem_space *ms, uint64_t i, bool on)
{
	if (on)
		ms->shared_applied[i / 64] |= UINT64_C(1) << (i % 64);
	else
		ms->shared_applied[i / 64] &= ~(UINT64_C(1) << (i % 64));
}

/* Section @i of the shared heap as an event. */
static struct iovm_mem_event parcel_event(const struct mem_shared *sh, enum iovm_mem_event_type t, uint64_t i)
{
	struct iovm_mem_event ev = shared_event(sh, t);

	ev.va = sh->va + i * sh->parcel_size;
	ev.len = sh->parcel_size;
	return ev;
}

/*
 * Section @i's commit to every subscriber; those that took it hear of its
 * undoing when one refuses. Needs every list lock.
 */
static int parcel_commit_all(struct mem_space *ms, const struct mem_shared *sh, uint64_t i)
{
	struct iovm_mem_event ev = parcel_event(sh, IOVM_MEM_EVENT_COMMIT, i);
	struct iovm_mem_event rel = parcel_event(sh, IOVM_MEM_EVENT_RELEASE, i);
	struct list_node *n, *m;
	int ret;

	list_for_each(n, &ms->subs) {
		ret = call(list_entry(n, struct mem_sub, link), &ev);
		if (!ret)
			continue;
		for (m = ms->subs.next; m != n; m = m->next)
			call(list_entry(m, struct mem_sub, link), &rel);
		return ret > 0 ? -EIO : ret;
	}
	return 0;
}

static void parcel_release_all(struct mem_space *ms, const struct mem_shared *sh, uint64_t i)
{
	struct iovm_mem_event rel = parcel_event(sh, IOVM_MEM_EVENT_RELEASE, i);
	struct list_node *n;

	list_for_each(n, &ms->subs)
		call(list_entry(n, struct mem_sub, link), &rel);
}

/* The subscribers brought to the parcels' states. Needs every list lock. */
static void shared_sync_locked(struct mem_space *ms, const struct mem_shared *sh)
{
	for (uint64_t i = 0; i < ms->shared_nparcels; i++) {
		bool want = sh->ops->committed(sh->arg, i * sh->parcel_size);

		if (want == applied(ms, i))
			continue;
		if (!want) {
			/* Before its memory goes: a domain that maps it unmaps it first. */
			parcel_release_all(ms, sh, i);
			applied_set(ms, i, false);
		} else if (!parcel_commit_all(ms, sh, i)) {
			applied_set(ms, i, true);
		} else {
			/* Tried again at the next change: a device of this process does not reach it meanwhile. */
			log_warn("a memory-event subscriber refused 2 MiB of the shared heap: %s", iovm_error_detail());
		}
	}
}

void mem_shared_sync(struct mem_space *ms)
{
	const struct mem_shared *sh;

	mutex_lock(&ms->lock);
	lock_all(ms, true);
	sh = mem_shared_of(ms);
	if (sh && ms->shared_applied)
		shared_sync_locked(ms, sh);
	lock_all(ms, false);
	mutex_unlock(&ms->lock);
}

int event_share_set(struct mem_space *ms, const struct mem_shared *sh)
{
	const struct mem_shared *old = mem_shared_of(ms);
	uint64_t *map = NULL, nparcels = 0;
	int ret = 0;

	if (sh) {
		nparcels = sh->len / sh->parcel_size;
		map = fi_calloc((nparcels + 63) / 64, sizeof(*map));
		if (!map)
			return -ENOMEM;
	}
	mutex_lock(&ms->lock);
	lock_all(ms, true);
	if (old) {
		/* Before the routing goes: a domain that maps it unmaps it first. */
		for (uint64_t i = 0; i < ms->shared_nparcels; i++)
			if (applied(ms, i))
				parcel_release_all(ms, old, i);
		free(ms->shared_applied);
		ms->shared_applied = NULL;
		ms->shared_nparcels = 0;
	}
	/* Routed before the commits: a subscriber locates the range it hears of (mem_shared_locate()). */
	atomic_store_explicit(&ms->shared, sh, memory_order_release);
	if (sh) {
		ms->shared_applied = map;
		ms->shared_nparcels = nparcels;
		for (uint64_t i = 0; i < nparcels && !ret; i++)
			if (sh->ops->committed(sh->arg, i * sh->parcel_size)) {
				ret = parcel_commit_all(ms, sh, i);
				if (!ret)
					applied_set(ms, i, true);
			}
		if (ret) {
			for (uint64_t i = 0; i < nparcels; i++)
				if (applied(ms, i))
					parcel_release_all(ms, sh, i);
			free(ms->shared_applied);
			ms->shared_applied = NULL;
			ms->shared_nparcels = 0;
			atomic_store_explicit(&ms->shared, NULL, memory_order_release);
		}
	}
	lock_all(ms, false);
	mutex_unlock(&ms->lock);
	return ret;
}

IOVM_API int iovm_mem_event_subscribe(struct iovm_ctx *ctx, iovm_mem_event_fn fn, void *arg,
				      struct iovm_mem_sub **out)
{
	const struct mem_shared *sh;
	struct mem_space *ms;
	struct mem_sub *sub;
	unsigned fail_list = MEM_MAX_LISTS;
	uint64_t fail_page = 0, i = 0;
	int ret;

	err_enter();
	if (!ctx || !fn || !out)
		return err_inval("!ctx || !fn || !out");
	if (event_in_callback())
		return -EDEADLK;
	ms = ctx->mem;
	sub = fi_calloc(1, sizeof(*sub));
	if (!sub)
		return -ENOMEM;
	sub->fn = fn;
	sub->arg = arg;

	mutex_lock(&ms->lock);
	lock_all(ms, true);
	ret = replay(ms, sub, IOVM_MEM_EVENT_COMMIT, MEM_MAX_LISTS, 0, &fail_list, &fail_page);
	sh = mem_shared_of(ms);
	if (!ret && sh && ms->shared_applied) {
		/* The parcels the others heard of: the new one hears of the same. */
		for (i = 0; i < ms->shared_nparcels && !ret; i++) {
			struct iovm_mem_event ev = parcel_event(sh, IOVM_MEM_EVENT_COMMIT, i);

			if (applied(ms, i) && (ret = call(sub, &ev)) > 0)
				ret = -EIO;
		}
		if (ret) {
			struct iovm_mem_event rel;

			/* Section i - 1 refused: those before it are undone. */
			for (uint64_t k = 0; k + 1 < i; k++)
				if (applied(ms, k)) {
					rel = parcel_event(sh, IOVM_MEM_EVENT_RELEASE, k);
					call(sub, &rel);
				}
		}
	}
	if (ret) {
		replay(ms, sub, IOVM_MEM_EVENT_RELEASE, fail_list, fail_page, NULL, NULL);
		free(sub);
		sub = NULL;
	} else {
		list_add_tail(&ms->subs, &sub->link);
	}
	lock_all(ms, false);
	mutex_unlock(&ms->lock);
	if (!sub)
		return ret;
	/* The shared heap's later changes, from every process: this one follows them from now on. */
	if (sh && sh->ops->follow && (ret = sh->ops->follow(sh->arg))) {
		iovm_mem_event_unsubscribe(ctx, (struct iovm_mem_sub *)sub);
		return ret;
	}
	if (sh)
		mem_shared_sync(ms);
	*out = (struct iovm_mem_sub *)sub;
	return 0;
}

IOVM_API int iovm_mem_event_unsubscribe(struct iovm_ctx *ctx, struct iovm_mem_sub *handle)
{
	struct mem_sub *sub = (struct mem_sub *)handle;
	struct list_node *n;
	struct mem_space *ms;
	int ret = -EINVAL;

	err_enter();
	if (!ctx || !sub)
		return err_inval("!ctx || !sub");
	if (event_in_callback())
		return -EDEADLK;
	ms = ctx->mem;
	mutex_lock(&ms->lock);
	lock_all(ms, true);
	list_for_each(n, &ms->subs) {
		if (n == &sub->link) {
			list_del(n);
			ret = 0;
			break;
		}
	}
	lock_all(ms, false);
	mutex_unlock(&ms->lock);
	if (ret)
		return err_inval("the handle is not one of this context's subscriptions");
	free(sub);
	return 0;
}

void event_destroy_all(struct mem_space *ms)
{
	struct list_node *n, *t;

	list_for_each_safe(n, t, &ms->subs) {
		list_del(n);
		free(list_entry(n, struct mem_sub, link));
	}
	free(ms->shared_applied);
	ms->shared_applied = NULL;
}
