/* SPDX-License-Identifier: MIT */
/*
 * zone.c - named zones in the shared heap, found by name from every
 * process (rte_memzone_lookup()).
 *
 * A zone is a record in the control region and a block held by the share
 * (MP_OWNER_KEEP). Making and freeing one are two changes, so they are
 * announced first in mp_ctl.zone_pending: a process killed between them
 * leaves a record that says whether the block should stay (lock.c).
 *
 * Each process returns its own struct iovm_zone for a record (the VA is
 * its own), kept in mp_space.zones by record index.
 */
#include <errno.h>
#include <string.h>

#include "base/compiler.h"
#include "base/error.h"
#include "base/log.h"
#include "mp/mp_internal.h"

/* Fill this process's view of record @i. Needs the share's lock. */
static const struct iovm_zone *view_fill(struct mp_space *s, unsigned i)
{
	const struct mp_zone_rec *r = &s->c->zones[i];
	struct iovm_zone *z = &s->zones[i];
	uint64_t off = r->grain << MP_GRAIN_SHIFT;

	pthread_mutex_lock(&s->zone_view_lock);
	memcpy(z->name, r->name, IOVM_ZONE_NAMESIZE);
	z->name[IOVM_ZONE_NAMESIZE - 1] = '\0';
	z->va = s->heap + off;
	z->pa = IOVM_PA(pa_val(s->pa) + off);
	z->hpa = IOVM_HPA(IOVM_ADDR_INVALID);
	z->len = r->len;
	z->align = r->align;
	z->page_size = s->page_size;
	z->node = -1;
	z->flags = r->flags;
	z->pa_flags = 0; /* a share's PAs are emulated */
	pthread_mutex_unlock(&s->zone_view_lock);
	return z;
}

static int find(const struct mp_ctl *c, const char *name)
{
	for (unsigned i = 0; i < MP_MAX_ZONES; i++)
		if (c->zones[i].used && !strncmp(c->zones[i].name, name, IOVM_ZONE_NAMESIZE))
			return (int)i;
	return -1;
}

static bool satisfies(const struct mp_space *s, const struct mp_zone_rec *r, size_t size, size_t align,
		      uint32_t flags)
{
	const uint32_t placement = IOVM_DMA_PAGE_4K | IOVM_DMA_PAGE_2M | IOVM_DMA_PAGE_1G | 0x00ff0000u;
	unsigned shift = (flags >> 8) & 0xff;
	uint64_t pa = pa_val(s->pa) + (r->grain << MP_GRAIN_SHIFT);

	if (r->len < size || !is_aligned(pa, align) || (flags & placement) != (r->flags & placement))
		return false;
	return !shift || align_down(pa, UINT64_C(1) << shift) == align_down(pa + size - 1, UINT64_C(1) << shift);
}

int mp_zone_reserve(void *arg, const char *name, size_t size, size_t align, uint32_t flags,
		    const struct iovm_zone **zone)
{
	struct mp_space *s = arg;
	struct mp_ctl *c = s->c;
	unsigned shift = (flags >> 8) & 0xff;
	struct mp_zone_rec *r;
	uint64_t grain;
	uint32_t seq;
	int ret, i;

	if (s->fork_gen != mp_fork_gen())
		return err_detail(-EPERM, IOVM_LOG_DEBUG, "a forked child may not use its parent's share: attach");
	ret = mp_placement_check(s, flags);
	if (ret)
		return ret;
	/* A boundary: aligned to the power of two at or above its size, a block crosses none. */
	if (shift)
		align = MAX(align, roundup_pow2(size));
	ret = mp_lock(&s->h);
	if (ret)
		return ret;
	i = find(c, name);
	if (i >= 0) {
		if (satisfies(s, &c->zones[i], size, align, flags)) {
			*zone = view_fill(s, (unsigned)i);
			ret = 1;
		} else {
			ret = err_detail(-EEXIST, IOVM_LOG_DEBUG,
					 "zone '%s' exists with %llu bytes and does not satisfy the request", name,
					 (unsigned long long)c->zones[i].len);
		}
		goto unlock;
	}
	for (i = 0; i < MP_MAX_ZONES && c->zones[i].used; i++)
		;
	if (i == MP_MAX_ZONES) {
		ret = err_detail(-ENOMEM, IOVM_LOG_DEBUG, "the share has %d zones already", MP_MAX_ZONES);
		goto unlock;
	}
	r = &c->zones[i];
	c->zone_pending = (uint32_t)i + 1;
	mp_crash_point();
	r->grain = MP_NO_GRAIN;
	mp_crash_point();
	memset(r->name, 0, sizeof(r->name));
	strncpy(r->name, name, IOVM_ZONE_NAMESIZE - 1);
	r->len = size;
	r->align = align;
	r->flags = flags;
	mp_crash_point();
	/* The record names the block before the block exists: a repair finds it either way. */
	ret = mp_heap_alloc(&s->h, size, align, MP_OWNER_KEEP, &r->grain, &grain);
	if (ret) {
		r->grain = MP_NO_GRAIN; /* a block found, then no memory to commit for it: unallocated again */
		mp_crash_point();
		c->zone_pending = 0;
		ret = err_detail(ret, IOVM_LOG_DEBUG, "the shared heap has no free block for zone '%s'", name);
		goto unlock;
	}
	memset(s->heap + (grain << MP_GRAIN_SHIFT), 0, size);
	mp_crash_point();
	atomic_signal_fence(memory_order_release);
	r->used = 1;
	mp_crash_point();
	c->nr_zones++;
	mp_crash_point();
	atomic_signal_fence(memory_order_release);
	c->zone_pending = 0;
	mp_crash_point();
	*zone = view_fill(s, (unsigned)i);
	ret = 0;
unlock:
	seq = mp_follow_seq(s);
	mp_unlock(&s->h);
	/* A zone's memory in every process's following domains before its maker has it. */
	if (ret >= 0)
		mp_follow_wait(s, seq);
	return ret;
}

int mp_zone_lookup(void *arg, const char *name, const struct iovm_zone **zone)
{
	struct mp_space *s = arg;
	int ret, i;

	if (s->fork_gen != mp_fork_gen())
		return err_detail(-EPERM, IOVM_LOG_DEBUG, "a forked child may not use its parent's share: attach");
	ret = mp_lock(&s->h);
	if (ret)
		return ret;
	i = find(s->c, name);
	if (i >= 0)
		*zone = view_fill(s, (unsigned)i);
	mp_unlock(&s->h);
	return i >= 0 ? 0 : -ENOENT;
}

int mp_zone_free(void *arg, const struct iovm_zone *zone)
{
	struct mp_space *s = arg;
	struct mp_ctl *c = s->c;
	struct mp_zone_rec *r;
	uintptr_t i;
	bool due;
	int ret;

	if (s->fork_gen != mp_fork_gen())
		return err_detail(-EPERM, IOVM_LOG_DEBUG, "a forked child may not use its parent's share: attach");
	/* Compared by address, never dereferenced before: a pointer of ours or nothing. */
	i = (uintptr_t)(zone - s->zones);
	if ((uintptr_t)zone < (uintptr_t)s->zones || i >= MP_MAX_ZONES || zone != &s->zones[i])
		return err_inval("the zone is not one of this share's");
	ret = mp_lock(&s->h);
	if (ret)
		return ret;
	r = &c->zones[i];
	/* The record may have been freed (and made again) by another process since this view was filled. */
	if (!r->used || r->grain << MP_GRAIN_SHIFT != (uint64_t)((uint8_t *)zone->va - s->heap) ||
	    strncmp(r->name, zone->name, IOVM_ZONE_NAMESIZE)) {
		mp_unlock(&s->h);
		return err_inval("the zone was freed already");
	}
	/* Mapped by a device in another process: it stays until unmapped, as any lent block. */
	if (lender_get(&s->h.lender[r->grain]) != MP_LENDER_NONE) {
		mp_unlock(&s->h);
		return err_detail(-EBUSY, IOVM_LOG_DEBUG, "zone '%.32s' is mapped by a device in another process",
				  r->name);
	}
	c->zone_pending = (uint32_t)i + 1;
	mp_crash_point();
	r->used = 0;
	mp_crash_point();
	c->nr_zones--;
	mp_crash_point();
	atomic_signal_fence(memory_order_release);
	mp_heap_free(&s->h, r->grain);
	r->grain = MP_NO_GRAIN;
	mp_crash_point();
	atomic_signal_fence(memory_order_release);
	c->zone_pending = 0;
	mp_crash_point();
	due = mp_parcel_trim_due(&s->h);
	mp_unlock(&s->h);
	if (due)
		mp_parcel_trim(s);
	return 0;
}

int mp_zone_walk(void *arg, int (*fn)(void *fn_arg, const struct iovm_zone *z), void *fn_arg)
{
	struct mp_space *s = arg;
	const struct iovm_zone *list[MP_MAX_ZONES];
	unsigned n = 0;
	int ret;

	if (s->fork_gen != mp_fork_gen())
		return err_detail(-EPERM, IOVM_LOG_DEBUG, "a forked child may not use its parent's share: attach");
	ret = mp_lock(&s->h);
	if (ret)
		return ret;
	for (unsigned i = 0; i < MP_MAX_ZONES; i++)
		if (s->c->zones[i].used)
			list[n++] = view_fill(s, i);
	mp_unlock(&s->h);
	/* Outside the lock: the callback may call iovm. */
	for (unsigned i = 0; i < n; i++) {
		ret = fn(fn_arg, list[i]);
		if (ret)
			return ret;
	}
	return 0;
}
