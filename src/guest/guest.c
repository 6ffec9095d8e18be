/* SPDX-License-Identifier: MIT */
/*
 * guest.c - guests: their creation and destruction, start, shutdown and
 * reboot, and what the monitor asks of them (banks, pointers, stage 2).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <iovm/guest.h>

#include "base/compiler.h"
#include "base/ctx.h"
#include "base/error.h"
#include "base/fault_inject.h"
#include "base/lock.h"
#include "guest/guest.h"
#include "guest/guest_internal.h"
#include "iommu/iommu.h"
#include "os/vaspace.h"
#include "phys/phys.h"

#define GUEST_FLAGS (IOVM_GUEST_DIRECT_MAP | IOVM_GUEST_TRUSTED)

int guest_space_create(struct iovm_ctx *ctx, struct guest_space **out)
{
	struct guest_space *gs = fi_calloc(1, sizeof(*gs));

	if (!gs)
		return -ENOMEM;
	gs->ctx = ctx;
	mutex_init(&gs->lock);
	list_init(&gs->guests);
	*out = gs;
	return 0;
}

static int attr_check(const struct iovm_guest_attr *a)
{
	if (a->flags & ~GUEST_FLAGS)
		return err_inval("a->flags & ~GUEST_FLAGS");
	if (a->page_size && a->page_size != SZ_4K && a->page_size != SZ_2M && a->page_size != SZ_1G)
		return err_inval("a->page_size && a->page_size != SZ_4K && a->page_size != SZ_2M && a->page_size != SZ_1G");
	if (a->min_chunk && !is_pow2(a->min_chunk))
		return err_inval("a->min_chunk && !is_pow2(a->min_chunk)");
	if (a->max_banks > IOVM_GUEST_MAX_BANKS || a->below >= (UINT64_C(1) << 48))
		return err_inval("a->max_banks > IOVM_GUEST_MAX_BANKS || a->below >= (UINT64_C(1) << 48)");
	switch (a->placement) {
	case IOVM_PLACE_AUTO:
		return a->pool || a->banks || !a->size ? err_inval("AUTO placement: a size, and no pool or banks") : 0;
	case IOVM_PLACE_POOL:
		return !a->pool || a->banks || !a->size ? err_inval("POOL placement: a size and a pool, no banks") : 0;
	case IOVM_PLACE_BANKS:
		return !a->banks || !a->nr_banks ? err_inval("BANKS placement: banks and their number") : 0;
	}
	return err_inval("a->placement is none of AUTO, POOL, BANKS");
}

IOVM_API int iovm_guest_create(struct iovm_ctx *ctx, const struct iovm_guest_attr *attr,
			       struct iovm_guest **out)
{
	struct iovm_guest *g;
	int ret;

	err_enter();
	if (!ctx || !attr || !out)
		return err_inval("!ctx || !attr || !out");
	ret = attr_check(attr);
	if (ret)
		return ret;
	if (ctx->host_pa_only && attr->page_size == SZ_4K)
		return err_detail(-EOPNOTSUPP, IOVM_LOG_DEBUG,
				  "host_pa=on: a guest of 4 KiB pages would have no fixed host physical addresses");
	g = fi_calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->gs = ctx->guest;
	g->ctx = ctx;
	g->flags = attr->flags;
	g->pool = attr->pool ? phys_pool_of(attr->pool) : NULL;
	mutex_init(&g->lock);
	list_init(&g->assigned);
	ret = guest_place(g, attr);
	if (ret)
		goto free_guest;
	/* Aligned for the largest leaf its pages allow: hugetlb maps need it. */
	g->ram = os_va_reserve(g->size, phys_arena_page_size(g->arena));
	ret = -ENOMEM;
	if (!g->ram)
		goto unplace;
	ret = iommu_guest_domain_create(ctx, &g->stage2);
	if (ret)
		goto release_ram;
	ret = guest_mem_start(g);
	if (ret)
		goto destroy_stage2;
	mutex_lock(&g->gs->lock);
	list_add_tail(&g->gs->guests, &g->link);
	mutex_unlock(&g->gs->lock);
	*out = g;
	return 0;

destroy_stage2:
	iommu_guest_domain_destroy(g->stage2);
release_ram:
	os_va_release(g->ram, g->size);
unplace:
	guest_unplace(g);
	free(g->banks);
free_guest:
	mutex_destroy(&g->lock);
	free(g);
	return err_detail(ret, IOVM_LOG_DEBUG, "guest of %lu MiB: %s", (unsigned long)(attr->size >> 20),
			  strerror(-ret));
}

/* Take the guest off the space's list, then everything it holds. Its devices are unassigned. */
static void guest_free(struct iovm_guest *g)
{
	mutex_lock(&g->gs->lock);
	list_del(&g->link);
	mutex_unlock(&g->gs->lock);
	if (atomic_load(&g->running))
		guest_mem_stop(g);
	guest_unplace(g);
	os_va_release(g->ram, g->size);
	free(g->banks);
	mutex_destroy(&g->lock);
	free(g);
}

IOVM_API int iovm_guest_destroy(struct iovm_guest *g)
{
	int ret;

	err_enter();
	if (!g)
		return err_inval("!g");
	mutex_lock(&g->lock);
	ret = list_empty(&g->assigned) ? 0 : -EBUSY;
	mutex_unlock(&g->lock);
	if (ret)
		return err_detail(ret, IOVM_LOG_DEBUG, "guest: devices are still assigned to it");
	/* Refused while nested domains sit over it; then nothing else can fail. */
	ret = iommu_guest_domain_destroy(g->stage2);
	if (ret)
		return err_detail(ret, IOVM_LOG_DEBUG, "guest: nested domains still sit over its stage 2");
	g->stage2 = NULL;
	if (g->identity)
		iovm_domain_destroy(g->identity);
	/* Stage 2 is gone with its mappings: stopping unmaps nothing more. */
	guest_free(g);
	return 0;
}

/* iovm_guest_shutdown() and iovm_guest_reboot(), once the call has begun. */
static int guest_shutdown(struct iovm_guest *g)
{
	if (!g)
		return err_inval("!g");
	if (!atomic_load(&g->running))
		return -EALREADY;
	guest_mem_stop(g);
	return 0;
}

IOVM_API int iovm_guest_shutdown(struct iovm_guest *g)
{
	err_enter();
	return guest_shutdown(g);
}

IOVM_API int iovm_guest_start(struct iovm_guest *g)
{
	err_enter();
	if (!g)
		return err_inval("!g");
	if (atomic_load(&g->running))
		return -EALREADY;
	return guest_mem_start(g);
}

IOVM_API int iovm_guest_reboot(struct iovm_guest *g)
{
	int ret;

	err_enter();
	ret = guest_shutdown(g);
	if (ret)
		return ret;
	return guest_mem_start(g);
}

IOVM_API int iovm_guest_info(struct iovm_guest *g, struct iovm_guest_info *info)
{
	err_enter();
	if (!g || !info)
		return err_inval("!g || !info");
	*info = (struct iovm_guest_info){
		.size = g->size,
		.flags = g->flags,
		.page_size = phys_arena_page_size(g->arena),
		.running = atomic_load(&g->running),
		.from_pool = g->pool != NULL,
		.nr_banks = g->nr_banks,
		.ram = g->ram,
		.starts = atomic_load(&g->starts),
	};
	return 0;
}

IOVM_API int iovm_guest_banks(struct iovm_guest *g, struct iovm_guest_bank *banks, unsigned max, unsigned *n)
{
	err_enter();
	if (!g || !n || (max && !banks))
		return err_inval("!g || !n || (max && !banks)");
	for (unsigned i = 0; i < g->nr_banks && i < max; i++) {
		const struct guest_bank *b = &g->banks[i];

		banks[i] = (struct iovm_guest_bank){
			.gpa = b->gpa,
			.pa = b->pa,
			.hpa = phys_hpa(g->ctx->phys, b->pa),
			.len = b->len,
		};
	}
	*n = g->nr_banks;
	return 0;
}

IOVM_API void *iovm_guest_ptr(struct iovm_guest *g, iovm_gpa_t gpa, size_t *len)
{
	unsigned lo = 0, hi;

	err_enter();
	if (!g) {
		errno = -err_inval("!g");
		return NULL;
	}
	if (!atomic_load_explicit(&g->running, memory_order_acquire)) {
		errno = -err_detail(-EAGAIN, IOVM_LOG_DEBUG, "the guest is shut down: its memory is gone");
		return NULL;
	}
	/* Banks are few and sorted: a binary search for the last one starting at or below @gpa. */
	hi = g->nr_banks;
	while (hi - lo > 1) {
		unsigned mid = (lo + hi) / 2;

		if (gpa_val(g->banks[mid].gpa) <= gpa_val(gpa))
			lo = mid;
		else
			hi = mid;
	}
	if (gpa_val(gpa) < gpa_val(g->banks[lo].gpa) || gpa_diff(gpa, g->banks[lo].gpa) >= g->banks[lo].len) {
		errno = -err_detail(-ENOENT, IOVM_LOG_DEBUG, "GPA %#" PRIx64 " is in none of the guest's banks", gpa_val(gpa));
		return NULL;
	}
	if (len)
		*len = g->banks[lo].len - gpa_diff(gpa, g->banks[lo].gpa);
	return g->ram + g->banks[lo].ram_off + gpa_diff(gpa, g->banks[lo].gpa);
}

IOVM_API int iovm_guest_stage2(struct iovm_guest *g, struct iovm_domain **dom)
{
	err_enter();
	if (!g || !dom)
		return err_inval("!g || !dom");
	*dom = g->stage2;
	return 0;
}

void guest_space_destroy(struct guest_space *gs)
{
	if (!gs)
		return;
	while (!list_empty(&gs->guests)) {
		struct iovm_guest *g = list_first(&gs->guests, struct iovm_guest, link);

		guest_unassign_all(g);
		/*
		 * With a nested domain left over it, the stage 2 waits for the
		 * IOMMU's teardown, which follows; the memory goes now, strictly
		 * unmapped from it first.
		 */
		if (iovm_guest_destroy(g))
			guest_free(g);
	}
	mutex_destroy(&gs->lock);
	free(gs);
}
