/* SPDX-License-Identifier: MIT */
/*
 * space.c - the physical address space: its creation, its arenas (one per
 * page size and node, each one memfd), trimming and statistics.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/compiler.h"
#include "base/ctx.h"
#include "base/error.h"
#include "base/fault_inject.h"
#include "base/lock.h"
#include "base/log.h"
#include "os/hugepage.h"
#include "os/memfd.h"
#include "phys/phys_internal.h"

#define FILE_SPACE_END (UINT64_C(1) << 46)

/* First-level entries of a frame table: 2^18 pointers (2 MiB of reserved VA). */
#define FRAME_TABLE_L1_BITS 18

int phys_create(const struct phys_params *params, struct phys_space **out)
{
	struct phys_space *ps;
	uint64_t emu_base;
	int ret;

	if (!params || !out || params->limit < SZ_2M)
		return -EINVAL;
	ps = fi_calloc(1, sizeof(*ps));
	if (!ps)
		return -ENOMEM;
	ps->params = *params;
	mutex_init(&ps->lock);
	list_init(&ps->windows);
	list_init(&ps->spare_windows);
	list_init(&ps->pools);
	ra_init(&ps->emu);
	ra_init(&ps->emu_windows);
	ra_init(&ps->emu_private);
	emu_base = params->host_pa ? PHYS_EMU_HIGH : PHYS_EMU_LOW;
	ret = ra_free(&ps->emu, emu_base, PHYS_WINDOWS_BASE - emu_base);
	/* The shared domains' registration windows' PAs (phys_window_add_at()): nobody else's, in any mode. */
	if (!ret && !params->host_pa)
		ret = ra_reserve(&ps->emu, PHYS_SHARED_REG_BASE, PHYS_SHARED_REG_SIZE);
	if (!ret)
		ret = ra_free(&ps->emu_windows, PHYS_WINDOWS_BASE, PHYS_WINDOWS_SIZE);
	if (!ret)
		ret = ra_free(&ps->emu_private, PHYS_PRIVATE_WINDOWS_BASE, PHYS_PRIVATE_WINDOWS_SIZE);
	if (ret)
		goto free_emu;
	ret = radix_init(&ps->bus, PHYS_PA_BITS - BUS_SHIFT, 9, sizeof(struct bus_entry));
	if (ret)
		goto free_emu;
	*out = ps;
	return 0;

free_emu:
	ra_destroy(&ps->emu_private);
	ra_destroy(&ps->emu_windows);
	ra_destroy(&ps->emu);
	mutex_destroy(&ps->lock);
	free(ps);
	return ret;
}

static void arena_destroy(struct phys_arena *a)
{
	radix_destroy(&a->frames);
	ra_destroy(&a->file_space);
	close(a->fd);
	free(a);
}

void phys_destroy(struct phys_space *ps)
{
	if (!ps)
		return;
	pool_destroy_all(ps);
	bank_destroy_all(ps);
	window_destroy_all(ps);
	for (unsigned i = 0; i < ps->nr_arenas; i++)
		arena_destroy(ps->arenas[i]);
	radix_destroy(&ps->bus);
	ra_destroy(&ps->emu_private);
	ra_destroy(&ps->emu_windows);
	ra_destroy(&ps->emu);
	mutex_destroy(&ps->lock);
	free(ps);
}

/* Needs phys_space.lock. */
static int arena_create(struct phys_space *ps, uint64_t page_size, int node,
			struct phys_arena **out)
{
	struct phys_arena *a;
	unsigned key_bits;
	char name[48];
	int ret;

	lock_assert_held(&ps->lock);
	/*
	 * 4 KiB pages have a host PA, but not one that stays: the kernel may
	 * migrate them (compaction, NUMA balancing, khugepaged) even while
	 * they are locked. With host_pa=on none is handed out at all.
	 */
	if (ps->params.host_pa_only && page_size == os_page_size())
		return err_detail(-EOPNOTSUPP, IOVM_LOG_DEBUG,
				  "host_pa=on: 4 KiB pages have no fixed host physical address, so none are used");
	if (ps->nr_arenas == IOVM_PHYS_MAX_ARENAS)
		return -ENOSPC;
	a = fi_calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->space = ps;
	a->page_size = page_size;
	a->shift = ilog2(page_size);
	a->node = node;
	a->hugetlb = page_size != os_page_size();
	a->at_host_pa = ps->params.host_pa && a->hugetlb;
	a->last_bank_end = PA_INVALID;
	for (unsigned o = 0; o <= PHYS_MAX_ORDER; o++)
		list_init(&a->free_area[o]);
	ra_init(&a->file_space);

	snprintf(name, sizeof(name), "iovm-%" PRIu64 "k-node%d", page_size >> 10, node);
	ret = os_memfd_create(name, page_size, &a->fd);
	if (ret)
		goto free_arena;
	ret = ra_free(&a->file_space, 0, FILE_SPACE_END);
	if (ret)
		goto close_fd;
	key_bits = PHYS_PA_BITS - a->shift;
	ret = radix_init(&a->frames, key_bits,
			 key_bits > FRAME_TABLE_L1_BITS ? key_bits - FRAME_TABLE_L1_BITS : key_bits,
			 sizeof(struct phys_frame));
	if (ret)
		goto free_file_space;
	ps->arenas[ps->nr_arenas++] = a;
	/* Once per context (and node): from here on, some of its memory has PAs a device cannot use. */
	if (ps->params.host_pa && !a->at_host_pa)
		log_warn("host-PA mode: memory of 4 KiB pages gets emulated physical addresses, not the host's "
			 "(host_pa=on refuses such memory)");
	*out = a;
	return 0;

free_file_space:
	ra_destroy(&a->file_space);
close_fd:
	close(a->fd);
free_arena:
	free(a);
	return ret;
}

int phys_arena_get(struct phys_space *ps, uint64_t page_size, int node, struct phys_arena **out)
{
	int ret = 0;

	if (!ps || !out || !is_pow2(page_size) || page_size < os_page_size() || node < -1)
		return -EINVAL;
	mutex_lock(&ps->lock);
	for (unsigned i = 0; i < ps->nr_arenas; i++) {
		if (ps->arenas[i]->page_size == page_size && ps->arenas[i]->node == node) {
			*out = ps->arenas[i];
			goto unlock;
		}
	}
	ret = arena_create(ps, page_size, node, out);
unlock:
	mutex_unlock(&ps->lock);
	return ret;
}

uint64_t phys_arena_page_size(const struct phys_arena *a)
{
	return a->page_size;
}

uint64_t phys_trim(struct phys_space *ps)
{
	uint64_t released = 0;

	mutex_lock(&ps->lock);
	for (unsigned i = 0; i < ps->nr_banks; i++) {
		struct phys_bank *b = ps->banks[i];

		if (b && !b->released && b->nr_free == b->npages && !bank_release(b))
			released += b->len;
	}
	mutex_unlock(&ps->lock);
	return released;
}

int phys_stats(struct phys_space *ps, struct iovm_phys_stats *st)
{
	struct list_node *n;

	memset(st, 0, sizeof(*st));
	mutex_lock(&ps->lock);
	st->host_pa = ps->params.host_pa;
	st->limit = ps->params.limit;
	st->total = ps->total;
	st->banks_added = ps->banks_added;
	st->banks_released = ps->banks_released;
	st->grow_failures = ps->grow_failures;
	st->nr_arenas = ps->nr_arenas;
	for (unsigned i = 0; i < ps->nr_arenas; i++) {
		struct phys_arena *a = ps->arenas[i];
		struct iovm_phys_arena_stats *as = &st->arenas[i];

		as->page_size = a->page_size;
		as->node = a->node;
		as->nr_banks = a->nr_banks;
		as->total = a->frames_total << a->shift;
		as->free = a->frames_free << a->shift;
		as->largest_free_run = buddy_largest_run(a) << a->shift;
		for (unsigned o = 0; o <= PHYS_MAX_ORDER; o++)
			as->free_blocks[o] = a->nr_free_blocks[o];
		st->free += as->free;
		st->nr_banks += a->nr_banks;
	}
	list_for_each(n, &ps->pools) {
		struct phys_pool *pool = list_entry(n, struct phys_pool, link);
		struct iovm_phys_pool_stats *p;

		if (st->nr_pools == IOVM_PHYS_MAX_POOLS)
			break;
		p = &st->pools[st->nr_pools++];
		snprintf(p->name, sizeof(p->name), "%s", pool->name);
		p->page_size = pool->arena->page_size;
		p->nr_ranges = pool->nr_ranges;
		p->total = pool->nframes << pool->arena->shift;
		p->free = pool->free.free_len << pool->arena->shift;
		p->largest_free_run = ra_largest(&pool->free) << pool->arena->shift;
	}
	mutex_unlock(&ps->lock);
	return 0;
}

IOVM_API int iovm_phys_stats(struct iovm_ctx *ctx, struct iovm_phys_stats *st)
{
	err_enter();
	if (!ctx || !st)
		return err_inval("!ctx || !st");
	return phys_stats(ctx->phys, st);
}

IOVM_API int iovm_pa_is_host(const struct iovm_ctx *ctx, iovm_pa_t pa)
{
	int ret;

	if (!ctx)
		return err_hot(-EINVAL, "invalid argument: !ctx");
	ret = phys_pa_is_host(ctx->phys, pa_make(pa.addr));
	if (ret < 0)
		return err_hot(ret, "PA %#llx is not memory of this context", (unsigned long long)pa.addr);
	return ret;
}
