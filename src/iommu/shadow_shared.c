/* SPDX-License-Identifier: MIT */
/*
 * shadow_shared.c - the oracle of a domain shared between processes: one
 * word per 4 KiB page of its IOVA window, in the domain's block, which
 * every process that has the domain open maps and changes. A private
 * domain's tree under a lock (shadow.c) would see only its own process's
 * maps and unmaps; here every process records into, and checks its
 * devices' accesses against, the same words.
 *
 * A word (32 bits) says what its IOVA page maps: the page of the shared
 * heap, the permission, and whether it is live or unmapped and awaiting
 * its flush (a deferred unmap's). A shared domain maps heap memory only. Each
 * change is one atomic store per page, made by the process that maps or
 * unmaps, in the same order against the page table as shadow.c's: a map
 * records before its PTEs are stored, an unmap clears after no device can
 * reach the page, a deferred one marks it pending at once and clears it at
 * the flush. Two processes never change one page at once: the shared IOVA
 * allocator gives a page to one map at a time, and keeps it taken until
 * its unmap's release. A process killed in between leaves its words as they
 * were: the page's IOVA stays taken with them, or the journal's release of
 * its unmap clears them (domain_space.c).
 */
#include <inttypes.h>

#include "base/compiler.h"
#include "iommu/shadow.h"

#define SSH_PROT 3u           /* PT_PROT_READ | PT_PROT_WRITE */
#define SSH_LIVE 4u           /* mapped */
#define SSH_PENDING 8u        /* unmapped, awaiting its flush */
#define SSH_PAGE_SHIFT 4      /* above: the heap page, from the heap's first */
#define SSH_PA UINT32_C(0xfffffff0)

static_assert((PT_PROT_READ | PT_PROT_WRITE) == SSH_PROT, "the permission fits below the state bits");

/* The word of the page at @iova; NULL outside the window. */
static _Atomic uint32_t *word(const struct iovm_domain *dom, uint64_t iova)
{
	uint64_t page;

	if (iova < dom->sshadow_base)
		return NULL;
	page = (iova - dom->sshadow_base) >> 12;
	return page < dom->sshadow_pages ? &dom->sshadow[page] : NULL;
}

/* The bits of a word that name the page at @pa (outside the heap: a page no map records). */
static uint32_t page_bits(const struct iovm_domain *dom, pa_t pa)
{
	uint64_t page = (pa_val(pa) - dom->sshadow_pa) >> 12;

	return pa_val(pa) < dom->sshadow_pa || page >= (UINT64_C(1) << 28) ? SSH_PA : (uint32_t)page << SSH_PAGE_SHIFT;
}

static uint32_t live_word(const struct iovm_domain *dom, const struct shadow_pieces *p, uint64_t i)
{
	return page_bits(dom, shadow_piece_pa(p, i)) | (p->prot & SSH_PROT) | SSH_LIVE;
}

/* Take back the first @n pages this map recorded: each only if it still says what the map stored. */
static void unrecord(struct iovm_domain *dom, const struct shadow_pieces *p, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		_Atomic uint32_t *w = word(dom, iova_val(p->iova) + (i << 12));
		uint32_t want = live_word(dom, p, i);

		if (w)
			atomic_compare_exchange_strong_explicit(w, &want, 0, memory_order_release, memory_order_relaxed);
	}
}

bool sshadow_map_begin(struct iovm_domain *dom, const struct shadow_pieces *p)
{
	for (uint64_t i = 0; i < p->n; i++) {
		_Atomic uint32_t *w = word(dom, iova_val(p->iova) + (i << 12));
		uint32_t none = 0;

		/* Outside the window, or over a page recorded: the map must fail; recorded nothing. */
		if (!w || !atomic_compare_exchange_strong_explicit(w, &none, live_word(dom, p, i), memory_order_release,
								   memory_order_relaxed)) {
			unrecord(dom, p, i);
			return false;
		}
	}
	return true;
}

void sshadow_map_end(struct iovm_domain *dom, const struct shadow_pieces *p, bool begun, bool mapped)
{
	if (begun == mapped)
		return;
	if (begun) {
		unrecord(dom, p, p->n); /* never mapped */
		return;
	}
	/* Mapped over what the shadow says is mapped, or pending: the table should have refused. */
	shadow_violation(dom, "mapped over a live or pending mapping (shared)", p->iova, shadow_piece_pa(p, 0));
	for (uint64_t i = 0; i < p->n; i++) {
		_Atomic uint32_t *w = word(dom, iova_val(p->iova) + (i << 12));

		if (w)
			atomic_store_explicit(w, live_word(dom, p, i), memory_order_release);
	}
}

void sshadow_unmap(struct iovm_domain *dom, const struct unmapped *p, bool pending)
{
	bool wrong = false;

	for (uint64_t off = 0; off < p->len; off += SZ_4K) {
		_Atomic uint32_t *w = word(dom, iova_val(p->iova) + off);
		uint32_t old = w ? atomic_load_explicit(w, memory_order_relaxed) : 0;

		if (!(old & SSH_LIVE) || (old & SSH_PA) != page_bits(dom, pa_add(p->pa, off)))
			wrong = true;
		if (w)
			atomic_store_explicit(w, pending ? (old & ~SSH_LIVE) | SSH_PENDING : 0, memory_order_release);
	}
	if (wrong)
		shadow_violation(dom, "unmapped what the shadow does not map (shared)", p->iova, p->pa);
}

void sshadow_flushed(struct iovm_domain *dom, const struct unmapped *p)
{
	for (uint64_t off = 0; off < p->len; off += SZ_4K) {
		_Atomic uint32_t *w = word(dom, iova_val(p->iova) + off);
		uint32_t old = w ? atomic_load_explicit(w, memory_order_relaxed) : 0;

		if (old & SSH_PENDING)
			atomic_compare_exchange_strong_explicit(w, &old, 0, memory_order_release, memory_order_relaxed);
	}
}

void sshadow_check(struct iovm_domain *dom, iova_t iova, uint64_t len, pa_t pa, unsigned prot)
{
	uint64_t first = align_down(iova_val(iova), SZ_4K), last = align_down(iova_val(iova) + MAX(len, 1) - 1, SZ_4K);
	uint64_t base = pa_val(pa) - (iova_val(iova) - first); /* the PA of the first page */
	bool stale = false;

	for (uint64_t at = first; at <= last; at += SZ_4K) {
		_Atomic uint32_t *w = word(dom, at);
		uint32_t e = w ? atomic_load_explicit(w, memory_order_acquire) : 0;
		pa_t here = pa_make(base + (at - first));

		if (!(e & (SSH_LIVE | SSH_PENDING))) {
			shadow_violation(dom, at == first ? "access to an IOVA that is not mapped (shared)"
							  : "translation reaches past the mapping (shared)",
					 iova_make(at), here);
			return;
		}
		if ((e & SSH_PA) != page_bits(dom, here)) {
			shadow_violation(dom, "translated to another PA than mapped (shared)", iova_make(at), here);
			return;
		}
		if ((e & prot) != prot) {
			shadow_violation(dom, "access the mapping does not permit (shared)", iova_make(at), here);
			return;
		}
		if (e & SSH_PENDING) {
			stale = true;
			/* A stale translation: inside the deferred window, and only to memory a mapping still holds. */
			if (!dom->shared_ops->pa_held(dom->shared_arg, here)) {
				shadow_violation(dom, "stale access to a page no longer held (shared)", iova_make(at), here);
				return;
			}
		}
	}
	if (stale)
		atomic_fetch_add_explicit(&dom->oracle_stale, 1, memory_order_relaxed);
}
