/* SPDX-License-Identifier: MIT */
/*
 * space.c - the DMA heap's address space: the arena reserved at open, its
 * slots, and the segment lists created in them on first use.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "base/clock.h"
#include "base/ctx.h"
#include "base/error.h"
#include "base/fault_inject.h"
#include "base/lock.h"
#include "base/log.h"
#include "mem/mem.h"
#include "mem/mem_internal.h"
#include "os/hugepage.h"
#include "os/numa.h"
#include "os/vaspace.h"
#include "phys/phys.h"

/* First-level entries of a reverse table: 2^18 pointers (2 MiB of reserved VA). */
#define REV_L1_BITS 18

struct mem_seglist *mem_list_get(struct mem_space *ms, unsigned psz_idx, unsigned node_slot)
{
	unsigned slot = psz_idx * ms->nr_node_slots + node_slot;
	struct mem_seglist *sl = atomic_load_explicit(&ms->lists[slot], memory_order_acquire);

	if (likely(sl))
		return sl;
	if (!ms->page_size[psz_idx] || node_slot >= ms->nr_node_slots)
		return NULL;
	mutex_lock(&ms->lock);
	sl = atomic_load_explicit(&ms->lists[slot], memory_order_relaxed);
	if (!sl) {
		int ret = seglist_create(ms, psz_idx, node_slot, &sl);

		if (ret) {
			log_info("cannot create the %lu KiB list: %s",
				 (unsigned long)(ms->page_size[psz_idx] >> 10), iovm_strerror(ret));
			sl = NULL;
		} else {
			atomic_store_explicit(&ms->slot_units[slot], sl->units, memory_order_release);
			atomic_store_explicit(&ms->lists[slot], sl, memory_order_release);
		}
	}
	mutex_unlock(&ms->lock);
	return sl;
}

static unsigned psz_index(uint64_t size)
{
	return size == SZ_4K ? MEM_PSZ_4K : size == SZ_2M ? MEM_PSZ_2M : MEM_PSZ_1G;
}

int mem_create(struct iovm_ctx *ctx, struct mem_space **out)
{
	int nodes[MEM_MAX_NODE_SLOTS - 1];
	struct mem_space *ms;
	unsigned nr_slots;
	int n, ret;

	ms = fi_calloc(1, sizeof(*ms));
	if (!ms)
		return -ENOMEM;
	ms->ctx = ctx;
	ms->phys = ctx->phys;
	/* The free stamp's secret: unguessable, so that no data forges a stamp. */
	if (getrandom(&ms->dfree_secret, sizeof(ms->dfree_secret), GRND_NONBLOCK) !=
	    sizeof(ms->dfree_secret))
		ms->dfree_secret = (uintptr_t)clock_now_ns() * 0x9e3779b97f4a7c15u ^ (uintptr_t)ms;
	ms->release_delay_ns = (uint64_t)ctx->cfg.release_delay_ms * 1000000u;

	ms->page_size[MEM_PSZ_4K] = os_page_size() == SZ_4K ? SZ_4K : 0;
	ms->page_size[MEM_PSZ_2M] = os_hugepage_supported(SZ_2M) ? SZ_2M : 0;
	ms->page_size[MEM_PSZ_1G] = os_hugepage_supported(SZ_1G) ? SZ_1G : 0;
	if (!ms->page_size[MEM_PSZ_4K]) {
		ret = err_detail(-EOPNOTSUPP, IOVM_LOG_ERR, "base pages of %lu bytes are not supported",
				 (unsigned long)os_page_size());
		goto free_space;
	}
	/*
	 * Host PAs only (host_pa=on): no 4 KiB pages at all, their host PA is
	 * not fixed (ctx.h). The heap then has no 4 KiB list: no fallback, and
	 * IOVM_DMA_PAGE_4K is refused.
	 */
	ms->host_pa_only = ctx->host_pa_only;
	if (ms->host_pa_only)
		ms->page_size[MEM_PSZ_4K] = 0;
	/* auto: hugepages when the kernel has them, else 4 KiB; 4 KiB is the fallback. */
	if (ctx->cfg.page_size) {
		ms->pref[ms->nr_pref++] = psz_index(ctx->cfg.page_size);
	} else if (ms->host_pa_only) {
		ms->auto_pages = true;
		ms->pref[ms->nr_pref++] = ms->page_size[MEM_PSZ_2M] ? MEM_PSZ_2M : MEM_PSZ_1G;
	} else {
		ms->auto_pages = true;
		if (ms->page_size[MEM_PSZ_2M])
			ms->pref[ms->nr_pref++] = MEM_PSZ_2M;
		ms->pref[ms->nr_pref++] = MEM_PSZ_4K;
	}

	ms->node_of_slot[0] = -1;
	ms->nr_node_slots = 1;
	n = os_numa_nodes(nodes, MEM_MAX_NODE_SLOTS - 1);
	for (int i = 0; i < n; i++)
		ms->node_of_slot[ms->nr_node_slots++] = nodes[i];
	for (unsigned i = 1; i < ms->nr_node_slots; i++)
		if (ms->node_of_slot[i] == ctx->cfg.numa_node)
			ms->default_node_slot = i;
	if (ctx->cfg.numa_node != CONFIG_NODE_ANY && !ms->default_node_slot) {
		ret = err_detail(-EINVAL, IOVM_LOG_ERR, "numa_node=%d: node is not online",
				 ctx->cfg.numa_node);
		goto free_space;
	}

	/* A slot holds mem_limit at least, so a list can never run out of VA before memory. */
	ms->slot_shift = MIN(MAX(ilog2_up(ctx->cfg.mem_limit), MEM_SLOT_SHIFT_MIN), MEM_SLOT_SHIFT_MAX);
	ms->slot_mask = (UINT64_C(1) << ms->slot_shift) - 1;
	nr_slots = MEM_NR_PSZ * ms->nr_node_slots;
	ms->arena_len = (uint64_t)nr_slots << ms->slot_shift;
	ms->arena = os_va_reserve(ms->arena_len, SZ_1G);
	if (!ms->arena) {
		ret = err_detail(-ENOMEM, IOVM_LOG_ERR, "cannot reserve %lu GiB of address space",
				 (unsigned long)(ms->arena_len >> 30));
		goto free_space;
	}
	for (unsigned i = 0; i < MEM_NR_PSZ; i++) {
		unsigned key_bits;

		if (!ms->page_size[i])
			continue;
		key_bits = PHYS_PA_BITS - ilog2(ms->page_size[i]);
		ret = radix_init(&ms->rev[i], key_bits,
				 key_bits > REV_L1_BITS ? key_bits - REV_L1_BITS : key_bits,
				 sizeof(uintptr_t));
		if (ret)
			goto free_rev;
	}
	ret = cbuf_space_init(ms);
	if (ret)
		goto free_rev;
	mutex_init(&ms->lock);
	mutex_init(&ms->rev_lock);
	mutex_init(&ms->zone_lock);
	list_init(&ms->subs);
	list_init(&ms->zones);
	tcache_register_space(ms);
	*out = ms;
	return 0;

free_rev:
	for (unsigned i = 0; i < MEM_NR_PSZ; i++)
		radix_destroy(&ms->rev[i]);
	os_va_release(ms->arena, ms->arena_len);
free_space:
	free(ms);
	return ret;
}

int mem_share_set(struct mem_space *ms, const struct mem_shared *sh)
{
	return event_share_set(ms, sh);
}

int mem_shared_locate(const struct mem_space *ms, const void *ptr, uint64_t *off, uint64_t *len)
{
	const struct mem_shared *sh = mem_shared_of(ms);

	if (!mem_shared_holds(sh, ptr))
		return -ENOENT;
	*off = (uint64_t)((const uint8_t *)ptr - sh->va);
	*len = sh->len;
	return 0;
}

void mem_destroy(struct mem_space *ms)
{
	if (!ms)
		return;
	tcache_destroy_all(ms);
	cbuf_space_destroy(ms);
	zone_destroy_all(ms);
	event_destroy_all(ms);
	for (unsigned i = 0; i < MEM_MAX_LISTS; i++) {
		struct mem_seglist *sl = atomic_load_explicit(&ms->lists[i], memory_order_relaxed);

		if (sl)
			seglist_destroy(sl);
	}
	for (unsigned i = 0; i < MEM_NR_PSZ; i++)
		radix_destroy(&ms->rev[i]);
	/* Unmapping the reservation takes every committed page with it. */
	os_va_release(ms->arena, ms->arena_len);
	mutex_destroy(&ms->lock);
	mutex_destroy(&ms->rev_lock);
	mutex_destroy(&ms->zone_lock);
	free(ms);
}

IOVM_API int iovm_mem_stats(struct iovm_ctx *ctx, struct iovm_mem_stats *st)
{
	struct mem_space *ms;

	err_enter();
	if (!ctx || !st)
		return err_inval("!ctx || !st");
	ms = ctx->mem;
	if (mem_shared_of(ms)) {
		int ret = mem_shared_of(ms)->ops->usable(mem_shared_of(ms)->arg);

		if (ret)
			return ret;
	}
	memset(st, 0, sizeof(*st));
	for (unsigned i = 0; i < MEM_MAX_LISTS; i++) {
		struct mem_seglist *sl = atomic_load_explicit(&ms->lists[i], memory_order_acquire);
		struct iovm_mem_list_stats *ls;

		if (!sl)
			continue;
		ls = &st->lists[st->nr_lists++];
		mutex_lock(&sl->lock);
		ls->page_size = sl->page_size;
		ls->node = sl->node;
		ls->va_span = sl->len;
		ls->committed = sl->committed_pages << sl->page_shift;
		ls->idle = sl->idle_pages << sl->page_shift;
		ls->in_use = sl->used_units << MEM_UNIT_SHIFT;
		ls->commits = sl->commits;
		ls->decommits = sl->decommits;
		mutex_unlock(&sl->lock);
		st->committed += ls->committed;
		st->idle += ls->idle;
		st->in_use += ls->in_use;
		st->commits += ls->commits;
		st->decommits += ls->decommits;
	}
	tcache_stats(ms, &st->allocs, &st->frees, &st->cache_hits);
	st->allocs += atomic_load_explicit(&ms->slow_allocs, memory_order_relaxed);
	st->frees += atomic_load_explicit(&ms->slow_frees, memory_order_relaxed);
	st->zeroed = atomic_load_explicit(&ms->zeroed, memory_order_relaxed);
	st->zero_known = atomic_load_explicit(&ms->zero_known, memory_order_relaxed);
	st->oracle_sync_errors = atomic_load_explicit(&ms->sync_errors, memory_order_relaxed);
	mutex_lock(&ms->zone_lock);
	st->nr_zones = ms->nr_zones;
	mutex_unlock(&ms->zone_lock);
	return 0;
}
