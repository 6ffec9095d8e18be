/* SPDX-License-Identifier: MIT */
/*
 * memory.c - a guest's memory: where its frames come from (a pool, named
 * banks, or the halving fallback over the buddy), the process's mapping of
 * them (as a monitor maps guest RAM), and its stage 2.
 *
 * A guest's banks are fixed when it is created: a reboot must come back on
 * the same ones, since a direct-mapped guest's firmware tables name them.
 * While it is stopped, frames from a pool stay reserved for it; frames from
 * the buddy go back, and the next start takes the same frames again, which
 * fails if another user of memory took them meanwhile (as a Xen domain's
 * re-creation does when the heap gave its memory away).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <iovm/guest.h>

#include "base/compiler.h"
#include "base/ctx.h"
#include "base/error.h"
#include "base/fault_inject.h"
#include "base/log.h"
#include "guest/guest_internal.h"
#include "iommu/iommu.h"
#include "os/vaspace.h"
#include "phys/phys.h"

/* Defaults of the halving fallback. */
#define DM_MIN_CHUNK SZ_2M /* a direct-mapped guest's banks are worth describing only from 2 MiB */
#define DM_MAX_BANKS 8     /* NR_MEM_BANKS when the Xen 1:1 discussion took place */
#define MAX_BANKS IOVM_GUEST_MAX_BANKS

static uint64_t range_end(const struct phys_range *r)
{
	return pa_val(r->pa) + r->len;
}

/* Sorts ranges by PA: named banks come in any order. */
static int range_cmp(const void *a, const void *b)
{
	uint64_t x = pa_val(((const struct phys_range *)a)->pa), y = pa_val(((const struct phys_range *)b)->pa);

	return x < y ? -1 : x > y;
}

/* Give back ranges taken from the pool or the buddy. */
static void ranges_free(struct iovm_guest *g, const struct phys_range *r, unsigned n)
{
	if (n && phys_free_banks(g->arena, g->pool, r, n))
		log_warn("guest: frames could not be given back");
}

/* Take exactly the ranges @r (sorted, disjoint) from the pool or the buddy: all or nothing. */
static int ranges_take(struct iovm_guest *g, const struct phys_range *r, unsigned n)
{
	uint64_t shift = (uint64_t)__builtin_ctzll(phys_arena_page_size(g->arena));
	int ret = 0;
	unsigned i;

	for (i = 0; i < n && !ret; i++) {
		bool zero;

		ret = g->pool ? phys_pool_alloc_at(g->pool, r[i].pa, r[i].len >> shift)
			      : phys_alloc_at(g->arena, r[i].pa, r[i].len >> shift, &zero);
	}
	if (ret)
		ranges_free(g, r, i - 1);
	return ret;
}

/* The halving fallback, from the pool or the buddy, in pages of one size: 2 MiB then 4 KiB when automatic. */
static int place_auto(struct iovm_guest *g, const struct iovm_guest_attr *attr, struct phys_range *r,
		      unsigned *n)
{
	bool dm = attr->flags & IOVM_GUEST_DIRECT_MAP;
	struct phys_arena *pool_arena = g->pool ? phys_pool_arena(g->pool) : NULL;
	uint64_t sizes[2];
	unsigned nr_sizes;
	int ret = -ENOMEM;

	if (pool_arena) {
		if (attr->page_size && attr->page_size != phys_arena_page_size(pool_arena))
			return err_inval("attr->page_size && attr->page_size != phys_arena_page_size(pool_arena)");
		sizes[0] = phys_arena_page_size(pool_arena);
		nr_sizes = 1;
	} else {
		nr_sizes = phys_page_sizes(g->ctx->phys, attr->page_size, sizes);
	}
	for (unsigned i = 0; i < nr_sizes; i++) {
		uint64_t page = sizes[i], chunk = attr->min_chunk ? attr->min_chunk : dm ? DM_MIN_CHUNK : page;
		unsigned shift = (unsigned)__builtin_ctzll(page);
		struct phys_placement pl = {
			.min_chunk = MAX(chunk, page) >> shift,
			.below = attr->below >> shift,
			.max_banks = attr->max_banks ? attr->max_banks : dm ? DM_MAX_BANKS : MAX_BANKS,
		};
		struct phys_arena *a = pool_arena;

		if (!is_aligned(attr->size, page))
			return err_inval("!is_aligned(attr->size, page)");
		if (!a && phys_arena_get(g->ctx->phys, page, g->ctx->cfg.numa_node, &a))
			continue; /* no such pages here: the next size */
		ret = phys_alloc_banks(a, g->pool, attr->size >> shift, &pl, r, n);
		if (!ret) {
			g->arena = a;
			return 0;
		}
		if (ret != -ENOMEM)
			break;
	}
	return ret;
}

/* Exactly the banks the administrator named. */
static int place_named(struct iovm_guest *g, const struct iovm_guest_attr *attr, struct phys_range *r,
		       unsigned *n)
{
	uint64_t page = attr->page_size, sum = 0;
	int ret;

	if (!attr->banks || !attr->nr_banks || attr->nr_banks > MAX_BANKS)
		return err_inval("!attr->banks || !attr->nr_banks || attr->nr_banks > MAX_BANKS");
	if (g->pool)
		page = phys_arena_page_size(phys_pool_arena(g->pool));
	else if (!page)
		page = phys_page_size(g->ctx->phys, attr->banks[0].pa);
	if (!page)
		return -ENOENT;
	if (attr->page_size && attr->page_size != page)
		return err_inval("attr->page_size && attr->page_size != page");
	for (unsigned i = 0; i < attr->nr_banks; i++) {
		const struct iovm_guest_bank *b = &attr->banks[i];

		if (!b->len || !is_aligned(pa_val(b->pa) | b->len, page) || pa_val(b->pa) + b->len < pa_val(b->pa))
			return err_inval("a bank's PA or length is not page aligned, or wraps past 2^64");
		r[i] = (struct phys_range){ .pa = b->pa, .len = b->len };
		sum += b->len;
	}
	qsort(r, attr->nr_banks, sizeof(*r), range_cmp);
	for (unsigned i = 1; i < attr->nr_banks; i++)
		if (pa_val(r[i].pa) < range_end(&r[i - 1]))
			return err_inval("banks that do not overlap");
	if (attr->size && attr->size != sum)
		return err_inval("attr->size && attr->size != sum");
	/* guest.h: -ENOENT for a bank that is not memory iovm has (past the physical space too). */
	for (unsigned i = 0; i < attr->nr_banks; i++)
		if (!phys_page_size(g->ctx->phys, r[i].pa))
			return -ENOENT;
	if (g->pool) {
		g->arena = phys_pool_arena(g->pool);
	} else {
		ret = phys_arena_get(g->ctx->phys, page, g->ctx->cfg.numa_node, &g->arena);
		if (ret)
			return ret;
	}
	*n = attr->nr_banks;
	return ranges_take(g, r, *n);
}

int guest_place(struct iovm_guest *g, const struct iovm_guest_attr *attr)
{
	struct phys_range *r = fi_calloc(MAX_BANKS, sizeof(*r));
	gpa_t gpa = gpa_make(0);
	unsigned n = 0;
	int ret;

	if (!r)
		return -ENOMEM;
	ret = attr->placement == IOVM_PLACE_BANKS ? place_named(g, attr, r, &n) : place_auto(g, attr, r, &n);
	if (ret)
		goto free_ranges;
	g->banks = fi_calloc(n, sizeof(*g->banks));
	ret = -ENOMEM;
	if (!g->banks)
		goto give_frames;
	g->nr_banks = n;
	g->size = 0;
	for (unsigned i = 0; i < n; i++) {
		/* Sorted by PA, so by guest physical address too, in both layouts. */
		g->banks[i] = (struct guest_bank){
			/* A direct-mapped guest's memory is at its host PA: the one place a GPA is a PA. */
			.gpa = g->flags & IOVM_GUEST_DIRECT_MAP ? gpa_make(pa_val(r[i].pa)) : gpa,
			.pa = r[i].pa,
			.len = r[i].len,
			.ram_off = g->size,
		};
		gpa = gpa_add(gpa, r[i].len);
		g->size += r[i].len;
	}
	free(r);
	g->has_frames = true;
	return 0;

give_frames:
	ranges_free(g, r, n);
free_ranges:
	free(r);
	return ret;
}

static struct phys_range bank_range(const struct guest_bank *b)
{
	return (struct phys_range){ .pa = b->pa, .len = b->len };
}


/*
 * Unmap the first @n banks from stage 2: strictly, so no device reaches
 * them when this returns. Nothing when the guest's destroy took stage 2
 * away already (no device was attached to it).
 */
static void stage2_clear(struct iovm_guest *g, unsigned n)
{
	for (unsigned i = 0; g->stage2 && i < n; i++)
		iovm_domain_unmap(g->stage2, iommu_stage2_iova(g->banks[i].gpa), g->banks[i].len);
}

/* Take the guest's frames again, or give them back. */
static int frames(struct iovm_guest *g, bool take)
{
	struct phys_range *r;
	int ret = 0;

	if (g->has_frames == take)
		return 0;
	if (!take) {
		/* Bank by bank, from the stack: giving back must not need memory, or it leaks. */
		for (unsigned i = 0; i < g->nr_banks; i++) {
			struct phys_range one = bank_range(&g->banks[i]);

			ranges_free(g, &one, 1);
		}
		g->has_frames = false;
		return 0;
	}
	r = fi_calloc(g->nr_banks, sizeof(*r));
	if (!r)
		return -ENOMEM;
	for (unsigned i = 0; i < g->nr_banks; i++)
		r[i] = bank_range(&g->banks[i]);
	ret = ranges_take(g, r, g->nr_banks);
	free(r);
	if (!ret)
		g->has_frames = true;
	return ret;
}

void guest_unplace(struct iovm_guest *g)
{
	frames(g, false);
}

int guest_mem_start(struct iovm_guest *g)
{
	unsigned mapped = 0;
	int ret;

	ret = frames(g, true);
	if (ret)
		/* -ENOENT: the kernel has the memory back. Either way someone else has it. */
		return ret == -ENOENT ? -EBUSY : ret;
	for (unsigned i = 0; i < g->nr_banks; i++) {
		/* Each bank at its place in the RAM reservation, as a monitor maps guest RAM. */
		ret = phys_map(g->ctx->phys, g->banks[i].pa, g->banks[i].len, g->ram + g->banks[i].ram_off, false);
		if (ret)
			goto unmap_ram;
	}
	/* A new start of the guest sees none of the last one's memory. */
	memset(g->ram, 0, g->size);
	for (; mapped < g->nr_banks; mapped++) {
		const struct guest_bank *b = &g->banks[mapped];

		ret = iommu_stage2_map(g->stage2, b->gpa, b->pa, g->ram + b->ram_off, b->len,
				       IOVM_MAP_READ | IOVM_MAP_WRITE);
		if (ret)
			goto clear_stage2;
	}
	atomic_store_explicit(&g->running, true, memory_order_release);
	atomic_fetch_add_explicit(&g->starts, 1, memory_order_relaxed);
	return 0;

clear_stage2:
	stage2_clear(g, mapped);
unmap_ram:
	os_va_decommit(g->ram, g->size);
	if (!g->pool)
		frames(g, false); /* as a stop leaves them */
	return ret;
}

void guest_mem_stop(struct iovm_guest *g)
{
	atomic_store_explicit(&g->running, false, memory_order_release);
	stage2_clear(g, g->nr_banks);
	os_va_decommit(g->ram, g->size);
	if (!g->pool)
		frames(g, false);
}
