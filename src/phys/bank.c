/* SPDX-License-Identifier: MIT */
/*
 * bank.c - adding banks of memory to the physical address space, and giving
 * them back.
 *
 * Adding a bank: a range of the arena's memfd is mapped for the bus, bound
 * to the arena's NUMA node, populated (pages allocated now, with exhaustion
 * an errno and never a SIGBUS), checked for placement, its host PAs read in
 * one pagemap read, placed in the PA space, published on the bus, and its
 * frames handed to the buddy.
 *
 * Every function here needs phys_space.lock.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "base/compiler.h"
#include "base/error.h"
#include "base/epoch.h"
#include "base/fault_inject.h"
#include "base/log.h"
#include "os/memfd.h"
#include "os/numa.h"
#include "os/pagemap.h"
#include "os/populate.h"
#include "os/vaspace.h"
#include "phys/phys_internal.h"

/* Offsets of an arena's memfd: 2^46 bytes is far beyond any machine's memory. */
#define FILE_SPACE_END (UINT64_C(1) << 46)

pa_t bank_page_pa(const struct phys_bank *b, uint64_t page)
{
	if (b->arena->at_host_pa)
		return pa_make(hpa_val(b->hpa[page]));
	return pa_add(b->pa, page << b->arena->shift);
}

static int bank_slot(struct phys_space *ps, uint32_t *index)
{
	lock_assert_held(&ps->lock);
	if (ps->nr_banks == ps->cap_banks) {
		unsigned cap = ps->cap_banks ? ps->cap_banks * 2 : 64;
		struct phys_bank **banks = fi_realloc(ps->banks, cap * sizeof(*banks));

		if (!banks)
			return -ENOMEM;
		ps->banks = banks;
		ps->cap_banks = cap;
	}
	*index = ps->nr_banks;
	return 0;
}

/* Check that every page landed on the arena's node (MPOL_BIND should see to it). */
static int verify_node(struct phys_arena *a, const uint8_t *bus, uint64_t npages)
{
	for (uint64_t i = 0; i < npages; i++) {
		int node, ret = os_numa_node_of(bus + (i << a->shift), &node);

		if (ret)
			return err_detail(ret, IOVM_LOG_ERR, "cannot verify NUMA placement: %s",
					  iovm_strerror(ret));
		if (node != a->node)
			return err_detail(-ENOMEM, IOVM_LOG_ERR,
					  "page %" PRIu64 " of a bank landed on node %d, not %d", i,
					  node, a->node);
	}
	return 0;
}

static int read_host_pa(struct phys_arena *a, struct phys_bank *b)
{
	int ret;

	b->hpa = fi_malloc(b->npages * sizeof(*b->hpa));
	if (!b->hpa)
		return -ENOMEM;
	ret = os_pagemap_read(atomic_load_explicit(&b->bus, memory_order_relaxed), b->npages, a->page_size, b->hpa);
	if (ret)
		goto fail;
	if (!a->at_host_pa)
		return 0;
	for (uint64_t i = 0; i < b->npages; i++) {
		uint64_t h = hpa_val(b->hpa[i]);

		if (!hpa_valid(b->hpa[i]) || h >= PHYS_EMU_HIGH || !is_aligned(h, a->page_size)) {
			ret = err_detail(-EIO, IOVM_LOG_ERR,
					 "host PA of a hugepage is unreadable or out of range (%#" PRIx64 ")",
					 h);
			goto fail;
		}
	}
	return 0;
fail:
	free(b->hpa);
	b->hpa = NULL;
	return ret;
}

static int place_emulated(struct phys_space *ps, struct phys_arena *a, struct phys_bank *b)
{
	struct range_req q = {
		.len = b->len,
		/* Align to the bank's own size, up to 1 GiB, so that the buddy gets big blocks. */
		.align = MAX(MIN(roundup_pow2(b->len), SZ_1G), MAX(a->page_size, BUS_GRANULE)),
		.lo = 0,
		.hi = UINT64_C(1) << PHYS_PA_BITS,
	};
	uint64_t pa;

	lock_assert_held(&ps->lock);
	/* Continue the arena's last bank, so that their frames merge into larger blocks. */
	if (pa_valid(a->last_bank_end) && !ra_reserve(&ps->emu, pa_val(a->last_bank_end), b->len)) {
		b->pa = a->last_bank_end;
		return 0;
	}
	if (ra_alloc(&ps->emu, &q, &pa))
		return err_detail(-ENOMEM, IOVM_LOG_ERR, "emulated physical address space is full");
	b->pa = pa_make(pa);
	return 0;
}

static void unplace_emulated(struct phys_space *ps, struct phys_bank *b)
{
	lock_assert_held(&ps->lock);
	ra_free(&ps->emu, pa_val(b->pa), b->len);
}

/* The bus entry of each 2 MiB granule of the bank, pointing back at it. */
static int bus_publish(struct phys_space *ps, struct phys_bank *b)
{
	uint64_t granules = b->len / BUS_GRANULE;

	lock_assert_held(&ps->lock);
	/* Allocate and check every entry first: nothing is published if one fails. */
	for (uint64_t g = 0; g < granules; g++) {
		uint64_t off = g * BUS_GRANULE, page = off >> b->arena->shift;
		pa_t pa = pa_add(bank_page_pa(b, page), off - (page << b->arena->shift));
		struct bus_entry *e = radix_lookup_alloc(&ps->bus, pa_val(pa) >> BUS_SHIFT);

		if (!e)
			return -ENOMEM;
		if (atomic_load_explicit(&e->bank, memory_order_relaxed))
			return err_detail(-EEXIST, IOVM_LOG_ERR, "PA %#" PRIx64 " is already on the bus",
					  pa_val(pa));
	}
	for (uint64_t g = 0; g < granules; g++) {
		uint64_t off = g * BUS_GRANULE, page = off >> b->arena->shift;
		pa_t pa = pa_add(bank_page_pa(b, page), off - (page << b->arena->shift));
		struct bus_entry *e = radix_lookup(&ps->bus, pa_val(pa) >> BUS_SHIFT);

		/* Release: see struct bus_entry. */
		atomic_store_explicit(&e->off, off, memory_order_release);
		atomic_store_explicit(&e->bank, b, memory_order_release);
	}
	return 0;
}

static void bus_unpublish(struct phys_space *ps, struct phys_bank *b)
{
	lock_assert_held(&ps->lock);
	/* Before the entries go: a cache filled after the bump finds them gone. */
	atomic_fetch_add_explicit(&ps->bus_gen, 1, memory_order_seq_cst);
	for (uint64_t off = 0; off < b->len; off += BUS_GRANULE) {
		uint64_t page = off >> b->arena->shift;
		pa_t pa = pa_add(bank_page_pa(b, page), off - (page << b->arena->shift));
		struct bus_entry *e = radix_lookup(&ps->bus, pa_val(pa) >> BUS_SHIFT);

		if (e && atomic_load_explicit(&e->bank, memory_order_relaxed) == b)
			atomic_store_explicit(&e->bank, NULL, memory_order_release);
	}
}

static int frames_online(struct phys_arena *a, struct phys_bank *b)
{
	int ret;

	lock_assert_held(&a->space->lock);
	if (!a->at_host_pa)
		return buddy_online(a, pa_to_pfn(a, b->pa), b->npages, b->index);
	for (uint64_t i = 0; i < b->npages; i++) {
		ret = buddy_online(a, pa_to_pfn(a, bank_page_pa(b, i)), 1, b->index);
		if (ret) {
			while (i--)
				buddy_offline(a, pa_to_pfn(a, bank_page_pa(b, i)), 1);
			return ret;
		}
	}
	return 0;
}

static void frames_offline(struct phys_arena *a, struct phys_bank *b)
{
	lock_assert_held(&a->space->lock);
	if (!a->at_host_pa) {
		buddy_offline(a, pa_to_pfn(a, b->pa), b->npages);
		return;
	}
	for (uint64_t i = 0; i < b->npages; i++)
		buddy_offline(a, pa_to_pfn(a, bank_page_pa(b, i)), 1);
}

int bank_add(struct phys_arena *a, uint64_t bytes)
{
	struct phys_space *ps = a->space;
	struct range_req file_req;
	struct phys_bank *b;
	uint64_t off;
	uint8_t *bus;
	int ret;

	lock_assert_held(&a->space->lock);
	/* Banks are whole 2 MiB granules, so that the bus maps each granule to one bank. */
	bytes = align_up(bytes, MAX(a->page_size, BUS_GRANULE));
	if (!bytes || ps->total + bytes > ps->params.limit || ps->total + bytes < ps->total) {
		ps->grow_failures++;
		return err_detail(-ENOMEM, IOVM_LOG_INFO,
				  "mem_limit reached: %" PRIu64 " bytes in banks, %" PRIu64
				  " more asked, limit %" PRIu64,
				  ps->total, bytes, ps->params.limit);
	}
	b = fi_calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->arena = a;
	b->len = bytes;
	b->npages = bytes >> a->shift;
	b->pa = PA_INVALID;

	file_req = (struct range_req){ .len = bytes, .align = a->page_size, .lo = 0,
				       .hi = FILE_SPACE_END };
	ret = ra_alloc(&a->file_space, &file_req, &off);
	if (ret) {
		ret = -ENOMEM;
		goto free_bank;
	}
	b->file_off = off;
	ret = os_memfd_extend(a->fd, off + bytes);
	if (ret)
		goto free_file_range;
	bus = os_va_map_shared(bytes, a->fd, off);
	if (!bus) {
		/* A hugetlb mapping reserves its pages: ENOMEM here is an exhausted pool. */
		ret = -ENOMEM;
		goto punch;
	}
	/* Before the bank is published (bus_publish() releases): set once, read relaxed. */
	atomic_store_explicit(&b->bus, bus, memory_order_relaxed);
	if (a->node >= 0) {
		ret = os_numa_bind(bus, bytes, a->node);
		if (ret)
			goto unmap_bus;
	}
	ret = os_populate(bus, bytes, a->page_size);
	if (ret)
		goto unmap_bus;
	if (a->node >= 0) {
		ret = verify_node(a, bus, b->npages);
		if (ret)
			goto unmap_bus;
	}
	if (a->hugetlb && ps->params.read_hpa) {
		ret = read_host_pa(a, b);
		if (ret)
			goto unmap_bus;
	}
	if (!a->at_host_pa) {
		ret = place_emulated(ps, a, b);
		if (ret)
			goto free_hpa;
	}
	ret = bank_slot(ps, &b->index);
	if (ret)
		goto unplace;
	ps->banks[b->index] = b;
	ps->nr_banks++;
	ret = bus_publish(ps, b);
	if (ret)
		goto drop_slot;
	ret = frames_online(a, b);
	if (ret)
		goto unpublish;

	if (!a->at_host_pa)
		a->last_bank_end = pa_add(b->pa, bytes);
	ps->total += bytes;
	a->nr_banks++;
	ps->banks_added++;
	log_debug("bank %u: %" PRIu64 " KiB of %" PRIu64 " KiB pages at PA %#" PRIx64 "%s",
		  b->index, bytes >> 10, a->page_size >> 10, pa_val(bank_page_pa(b, 0)),
		  a->at_host_pa ? " (host PA)" : "");
	return 0;

unpublish:
	bus_unpublish(ps, b);
drop_slot:
	ps->nr_banks--;
	ps->banks[b->index] = NULL;
unplace:
	if (!a->at_host_pa)
		unplace_emulated(ps, b);
free_hpa:
	free(b->hpa);
unmap_bus:
	munmap(bus, bytes);
punch:
	os_memfd_punch(a->fd, off, bytes);
free_file_range:
	ra_free(&a->file_space, off, bytes);
free_bank:
	free(b);
	ps->grow_failures++;
	return ret;
}

int bank_release(struct phys_bank *b)
{
	struct phys_arena *a = b->arena;
	struct phys_space *ps = a->space;

	lock_assert_held(&b->arena->space->lock);
	if (b->released || b->nr_free != b->npages)
		return -EBUSY;
	frames_offline(a, b);
	bus_unpublish(ps, b);
	/* A device may be inside an access through the bus mapping: let it finish. */
	if (ps->params.epoch)
		epoch_synchronize(ps->params.epoch);
	munmap(atomic_load_explicit(&b->bus, memory_order_relaxed), b->len);
	os_memfd_punch(a->fd, b->file_off, b->len);
	ra_free(&a->file_space, b->file_off, b->len);
	if (!a->at_host_pa) {
		unplace_emulated(ps, b);
		/* The next bank of this arena goes back where this one was. */
		if (pa_eq(a->last_bank_end, pa_add(b->pa, b->len)))
			a->last_bank_end = b->pa;
	}
	/*
	 * The struct and its host PA array stay: a lock-free reader may still
	 * hold a bus entry that pointed here. They go when the space does.
	 */
	b->released = true;
	ps->total -= b->len;
	a->nr_banks--;
	ps->banks_released++;
	return 0;
}

void bank_destroy_all(struct phys_space *ps)
{
	for (unsigned i = 0; i < ps->nr_banks; i++) {
		struct phys_bank *b = ps->banks[i];

		if (!b)
			continue;
		if (!b->released)
			munmap(atomic_load_explicit(&b->bus, memory_order_relaxed), b->len);
		free(b->hpa);
		free(b);
	}
	free(ps->banks);
	ps->banks = NULL;
	ps->nr_banks = ps->cap_banks = 0;
}
