/* SPDX-License-Identifier: MIT */
/*
 * rcache_model_ops.h - the operations of the registration-cache model
 * (rcache_model.h): iovm_rcache_get and _put, and what an application
 * does to its memory under the cache - munmap, mmap (MAP_FIXED over live
 * memory, or into a hole), mremap (moved, MREMAP_DONTUNMAP, shrunk),
 * madvise DONTNEED_LOCKED and DONTNEED, glibc free()+malloc() of large
 * blocks - each applied to the model as the headers promise: the memory
 * replaced is dead for every MR that held it, from the moment the call
 * returns.
 */
#ifndef IOVM_TESTS_RCACHE_MODEL_OPS_H
#define IOVM_TESTS_RCACHE_MODEL_OPS_H

#include "reg/rcache_model_check.h"

#if defined(__SANITIZE_THREAD__)
#define MODEL_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MODEL_TSAN 1
#endif
#endif
#ifndef MODEL_TSAN
#define MODEL_TSAN 0
#endif

/* ---- arenas ---- */

/* New memory in pages [first, first+n) of @a: a pattern of a new generation, in memory and shadow. */
static void arena_fresh(struct model *m, struct model_arena *a, size_t first, size_t n)
{
	for (size_t i = first; i < first + n; i++) {
		fill_random(a->shadow + i * PG, PG, ++m->gen ^ m->seed);
		memcpy(a->base + i * PG, a->shadow + i * PG, PG);
		a->state[i] = PG_MAPPED;
	}
}

/*
 * @pages of anonymous memory, 2 MiB aligned (so that 2 MiB leaves are
 * possible), between PROT_NONE guards. Far below where the kernel places
 * mappings (where the address space allows): the kernel fills the highest
 * gap first, so the holes the model makes are not taken by the library's
 * or glibc's own mmap() calls (which would make them someone else's).
 */
static void arena_init(struct model *m, struct model_arena *a, size_t pages)
{
	static _Atomic unsigned next;
	unsigned k = atomic_fetch_add(&next, 1);
	/* ThreadSanitizer takes hints inside its application ranges only. */
	void *want = MODEL_TSAN ? (void *)(0x7ec000000000ull + ((uintptr_t)(k % 16) << 32))
				: (void *)(0x3e0000000000ull + ((uintptr_t)(k % 256) << 32));

	a->pages = pages;
	a->resv_len = pages * PG + (4u << 20);
	a->resv = mmap(want, a->resv_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	CHECK(a->resv != MAP_FAILED);
	a->base = (uint8_t *)(((uintptr_t)a->resv + (2u << 20)) & ~(uintptr_t)((2u << 20) - 1));
	CHECK(mmap(a->base, pages * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
	      a->base);
	a->state = calloc(pages, 1);
	a->shadow = malloc(pages * PG);
	CHECK(a->state && a->shadow);
	arena_fresh(m, a, 0, pages);
}

/* Unmap what is ours: the guards and the pages we mapped, never what someone else mapped into a hole. */
static void arena_fini(struct model_arena *a)
{
	munmap(a->resv, (size_t)(a->base - a->resv));
	munmap(a->base + a->pages * PG, a->resv_len - (size_t)(a->base - a->resv) - a->pages * PG);
	for (size_t i = 0; i < a->pages; i++)
		if (a->state[i] == PG_MAPPED)
			munmap(a->base + i * PG, PG);
	free(a->state);
	free(a->shadow);
	memset(a, 0, sizeof(*a));
}

/* Diagnostic (RCACHE_MODEL_SETTLE_US): give the monitor time, to see what breaks beside its lateness. */
static void model_settle(struct model *m)
{
	if (m->settle_us)
		usleep(m->settle_us);
}

/* A range of pages of the own arena: mostly short, now and then long. */
static void model_pages(struct model *m, size_t max, size_t *first, size_t *n)
{
	size_t pages = m->own.pages;

	*n = 1 + (size_t)(model_u(&m->src, 4) == 0 ? model_u(&m->src, max) : model_u(&m->src, 8));
	if (*n > pages)
		*n = pages;
	*first = (size_t)model_u(&m->src, pages - *n + 1);
}

static bool arena_all(const struct model_arena *a, size_t first, size_t n, enum arena_page st)
{
	for (size_t i = first; i < first + n; i++)
		if (a->state[i] != st)
			return false;
	return true;
}

static bool arena_any(const struct model_arena *a, size_t first, size_t n, enum arena_page st)
{
	for (size_t i = first; i < first + n; i++)
		if (a->state[i] == st)
			return true;
	return false;
}

/*
 * Whether a hole of the arena was taken by someone else's mmap() (the
 * library's, glibc's, another thread's): it becomes foreign, never touched.
 */
static bool arena_hole_taken(struct model_arena *a, size_t first, size_t n)
{
	bool taken = false;
	unsigned char vec;

	for (size_t i = first; i < first + n; i++) {
		if (a->state[i] != PG_HOLE)
			continue;
		if (mincore(a->base + i * PG, PG, &vec) == 0 || errno != ENOMEM) {
			a->state[i] = PG_FOREIGN;
			taken = true;
		}
	}
	return taken;
}

/* ---- the cache ---- */

static void model_put(struct model *m, unsigned i)
{
	struct model_hold *h = &m->holds[i];
	int ret = iovm_rcache_put(m->cache, h->mr);

	model_note(m, "put %#lx+%zu key %#x: %d", (unsigned long)h->addr, h->len, h->rec->lkey, ret);
	M_CHECK(m, ret == 0, "iovm_rcache_put of a held MR: %d", ret);
	m->holds[i] = m->holds[--m->nholds];
}

/* A range to get: in the own arena, the shared one, or a malloc block; false when none fits. */
static bool model_pick_range(struct model *m, uintptr_t *addr, size_t *len, bool *expect_ok)
{
	unsigned where = (unsigned)model_u(&m->src, 10);
	size_t first, n, lo, hi;

	*expect_ok = true;
	if (where >= 7 && m->nrecs) {
		/* The range an earlier get asked for: a hit, if the cache kept it and nothing replaced it. */
		struct model_rec *rec = m->recs[model_u(&m->src, m->nrecs)];

		if (!arena_has(&m->own, rec->req_addr) || !arena_has(&m->own, rec->req_addr + rec->req_len - 1))
			return false;
		first = (pg_down(rec->req_addr) - (uintptr_t)m->own.base) / PG;
		n = (pg_up(rec->req_addr + rec->req_len) - pg_down(rec->req_addr)) / PG;
		if (arena_hole_taken(&m->own, first, n) || arena_any(&m->own, first, n, PG_FOREIGN))
			return false;
		*expect_ok = arena_all(&m->own, first, n, PG_MAPPED);
		*addr = rec->req_addr;
		*len = rec->req_len;
		return true;
	}
	if (where < 2 && m->shared) {
		n = 1 + (size_t)model_u(&m->src, m->shared->pages);
		first = (size_t)model_u(&m->src, m->shared->pages - n + 1);
		*addr = (uintptr_t)m->shared->base + first * PG + (size_t)model_u(&m->src, PG);
		*len = 1 + (size_t)model_u(&m->src, (uintptr_t)m->shared->base + (first + n) * PG - *addr);
		return true;
	}
	if (where < 4) {
		struct model_block *b = &m->blocks[model_u(&m->src, MODEL_MAX_BLOCKS)];

		if (!b->live)
			return false;
		lo = (size_t)model_u(&m->src, b->size);
		hi = lo + 1 + (size_t)model_u(&m->src, b->size - lo);
		if (model_u(&m->src, 2)) {
			lo = 0;
			hi = b->size;
		}
		*addr = (uintptr_t)b->p + lo;
		*len = hi - lo;
		return true;
	}
	model_pages(m, 256, &first, &n);
	if (arena_hole_taken(&m->own, first, n) || arena_any(&m->own, first, n, PG_FOREIGN))
		return false;
	*expect_ok = arena_all(&m->own, first, n, PG_MAPPED);
	lo = model_u(&m->src, 3) == 0 ? (size_t)model_u(&m->src, PG) : 0;
	hi = model_u(&m->src, 3) == 0 ? (size_t)model_u(&m->src, PG) : 0;
	*addr = (uintptr_t)m->own.base + first * PG + lo;
	*len = n * PG - lo - hi;
	if (!*len || *len > n * PG) {
		*len = 1;
		/* One byte on a page of the range: it is mapped if every page of the range is. */
		*expect_ok = m->own.state[(*addr - (uintptr_t)m->own.base) / PG] == PG_MAPPED;
	}
	return true;
}

static void op_get(struct model *m)
{
	uint32_t access = IOVM_ACCESS_LOCAL_READ | (uint32_t)model_u(&m->src, 8) << 1;
	struct model_rec *rec;
	struct iovm_mr_info in;
	struct iovm_mr *mr;
	uintptr_t addr, va;
	size_t len, n;
	bool expect_ok;
	int ret;

	if (!model_pick_range(m, &addr, &len, &expect_ok))
		return;
	if (m->nholds == MODEL_MAX_HOLDS)
		model_put(m, (unsigned)model_u(&m->src, m->nholds));
	ret = iovm_rcache_get(m->cache, (void *)addr, len, access, &mr);
	model_note(m, "get %#lx+%zu access %#x: %d", (unsigned long)addr, len, access, ret);
	if (!expect_ok) {
		if (ret == 0) {
			size_t first = (pg_down(addr) - (uintptr_t)m->own.base) / PG;

			CHECK_OK(iovm_mr_query(mr, &in));
			model_note(m, "  ... got MR %#lx+%zu key %#x", (unsigned long)in.addr, in.len, in.lkey);
			iovm_rcache_put(m->cache, mr);
			if (arena_hole_taken(&m->own, first, (pg_up(addr + len) - pg_down(addr)) / PG))
				return; /* someone mapped into the hole meanwhile */
		}
		M_CHECK(m, ret == -EFAULT, "get of %#lx+%zu, part of it unmapped: %d, not -EFAULT",
			(unsigned long)addr, len, ret);
		return;
	}
	if (ret == -ENOMEM && m->memlock_limited)
		return; /* RLIMIT_MEMLOCK */
	M_CHECK(m, ret == 0, "get of %#lx+%zu, all mapped: %d (%s)", (unsigned long)addr, len, ret, strerror(-ret));
	m->gets++;
	M_CHECK(m, iovm_mr_query(mr, &in) == 0, "query of a new hold failed");
	model_note(m, "  ... MR %#lx+%zu key %#x/%#x access %#x valid %llu/%llu", (unsigned long)in.addr, in.len,
		   in.lkey, in.rkey, in.access, (unsigned long long)in.valid_pages, (unsigned long long)in.pages);
	rec = rec_find(m, in.lkey);
	if (!rec) {
		rec = rec_new(m, &in, addr, len);
		m->got = true;
	} else {
		m->hits_checked++;
		M_CHECK(m, rec->addr == pg_down((uintptr_t)in.addr) && rec->iova == in.iova.addr - ((uintptr_t)in.addr - rec->addr) &&
			rec->rkey == in.rkey && rec->access == in.access,
			"the MR of key %#x changed: %p+%zu iova %#llx", in.lkey, in.addr, in.len,
			(unsigned long long)in.iova.addr);
		for (uintptr_t p = pg_down(addr); p < addr + len; p += PG)
			M_CHECK(m, p < rec->addr || p >= rec->addr + rec->pages * PG || rec->page[(p - rec->addr) / PG] != RP_DEAD,
				"the cache handed out MR %#x for %#lx+%zu, whose memory at %#lx was replaced: a stale hit",
				in.lkey, (unsigned long)addr, len, (unsigned long)p);
	}
	/* It holds the request: those pages are live for it now, whatever the model thought. */
	for (uintptr_t p = pg_down(addr); p < addr + len; p += PG)
		if (p >= rec->addr && p < rec->addr + rec->pages * PG)
			rec->page[(p - rec->addr) / PG] = RP_LIVE;
	m->holds[m->nholds++] = (struct model_hold){ .mr = mr, .rec = rec, .addr = addr, .len = len, .access = access };
	model_check_query(m, &m->holds[m->nholds - 1]);
	/* Its first and last bytes are reachable with what was asked. */
	n = len < MODEL_WINDOW ? len : MODEL_WINDOW;
	model_dma(m, rec, mr, model_u(&m->src, 2) ? DMA_IOVA : DMA_LKEY, false, addr, n);
	va = addr + len - n;
	model_dma(m, rec, mr, (access & IOVM_ACCESS_REMOTE_READ) && model_u(&m->src, 2) ? DMA_RKEY : DMA_LKEY, false, va,
		  n);
	if (access & IOVM_ACCESS_LOCAL_WRITE)
		model_dma(m, rec, mr, DMA_LKEY, true, addr, len < 64 ? len : 64);
}

static void op_put(struct model *m)
{
	if (m->nholds)
		model_put(m, (unsigned)model_u(&m->src, m->nholds));
}

/* ---- the application's memory ---- */

static void op_munmap(struct model *m)
{
	size_t first, n;

	model_pages(m, 64, &first, &n);
	for (size_t i = first; i < first + n; i++) {
		size_t j = i;

		if (m->own.state[i] != PG_MAPPED)
			continue;
		while (j < first + n && m->own.state[j] == PG_MAPPED)
			j++;
		M_CHECK(m, munmap(m->own.base + i * PG, (j - i) * PG) == 0, "munmap: %s", strerror(errno));
		model_note(m, "munmap %#lx+%zu", (unsigned long)(m->own.base + i * PG), (j - i) * PG);
		memset(m->own.state + i, PG_HOLE, j - i);
		model_kill(m, (uintptr_t)m->own.base + i * PG, (j - i) * PG, RP_DEAD);
		i = j;
	}
}

static void op_mmap(struct model *m)
{
	size_t first, n;
	int extra = model_u(&m->src, 4) == 0 ? MAP_POPULATE : 0;

	model_pages(m, 64, &first, &n);
	if (arena_any(&m->own, first, n, PG_FOREIGN))
		return;
	if (arena_all(&m->own, first, n, PG_MAPPED)) {
		uint8_t *at = m->own.base + first * PG;

		/* MAP_FIXED over live, perhaps registered, memory: new memory at the same addresses. */
		M_CHECK(m, mmap(at, n * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | extra, -1, 0) == at,
			"mmap MAP_FIXED: %s", strerror(errno));
		model_note(m, "mmap MAP_FIXED over %#lx+%zu", (unsigned long)at, n * PG);
		model_kill(m, (uintptr_t)at, n * PG, RP_DEAD);
		arena_fresh(m, &m->own, first, n);
		return;
	}
	for (size_t i = first; i < first + n; i++) {
		size_t j = i;
		uint8_t *at = m->own.base + i * PG, *got;

		if (m->own.state[i] != PG_HOLE)
			continue;
		while (j < first + n && m->own.state[j] == PG_HOLE)
			j++;
		got = mmap(at, (j - i) * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | extra,
			   -1, 0);
		model_note(m, "mmap into the hole %#lx+%zu: %s", (unsigned long)at, (j - i) * PG,
			   got == at ? "ok" : strerror(errno));
		if (got == at) {
			arena_fresh(m, &m->own, i, j - i);
		} else {
			/* Someone mapped into the hole (or an old kernel placed it elsewhere): leave it alone. */
			if (got != MAP_FAILED)
				munmap(got, (j - i) * PG);
			memset(m->own.state + i, PG_FOREIGN, j - i);
		}
		i = j;
	}
}

static bool page_mapped(const void *p)
{
	unsigned char vec;

	return mincore((void *)p, PG, &vec) == 0;
}

static bool page_zero(const uint8_t *p)
{
	for (size_t i = 0; i < PG; i += 8)
		if (*(const uint64_t *)(p + i))
			return false;
	return true;
}

/*
 * A failed mremap() may have done part of its work: the kernel unmaps the
 * destination before it looks at the source, and moves a source of several
 * mappings (registration splits them) one mapping at a time, stopping at
 * the first it cannot move. Find out, page by page, what happened.
 */
static void mremap_failed(struct model *m, size_t s, size_t d, size_t n, bool dontunmap)
{
	struct model_arena *a = &m->own;

	for (size_t i = 0; i < n; i++) {
		uint8_t *src = a->base + (s + i) * PG, *dst = a->base + (d + i) * PG;
		bool moved = !page_mapped(src) || (dontunmap && page_zero(src) && !page_zero(a->shadow + (s + i) * PG));

		if (moved) {
			model_note(m, "  ... page %#lx moved all the same", (unsigned long)src);
			model_kill(m, (uintptr_t)src, PG, RP_DEAD);
			model_kill(m, (uintptr_t)dst, PG, RP_DEAD);
			memcpy(a->shadow + (d + i) * PG, a->shadow + (s + i) * PG, PG);
			if (page_mapped(src))
				arena_fresh(m, a, s + i, 1);
			else
				a->state[s + i] = PG_HOLE;
		} else if (!page_mapped(dst)) {
			model_note(m, "  ... destination page %#lx unmapped all the same", (unsigned long)dst);
			model_kill(m, (uintptr_t)dst, PG, RP_DEAD);
			a->state[d + i] = PG_HOLE;
		}
	}
	model_compare(m, (uintptr_t)a->base + s * PG, n * PG, NULL, false, "after a failed mremap, the source");
	model_compare(m, (uintptr_t)a->base + d * PG, n * PG, NULL, false, "after a failed mremap, the destination");
}

/* Move pages over others (MREMAP_FIXED), now and then leaving the source mapped and empty (MREMAP_DONTUNMAP). */
static void op_mremap(struct model *m)
{
	size_t n = 1 + (size_t)model_u(&m->src, 4), s, d;
	bool dontunmap = model_u(&m->src, 4) == 0;
	int flags = MREMAP_MAYMOVE | MREMAP_FIXED | (dontunmap ? MREMAP_DONTUNMAP : 0);
	uint8_t *src, *dst, *tmp;

	if (n * 2 > m->own.pages)
		return;
	s = (size_t)model_u(&m->src, m->own.pages - n + 1);
	d = (size_t)model_u(&m->src, m->own.pages - n + 1);
	if ((s < d + n && d < s + n) || !arena_all(&m->own, s, n, PG_MAPPED) || !arena_all(&m->own, d, n, PG_MAPPED))
		return;
	src = m->own.base + s * PG;
	dst = m->own.base + d * PG;
	if (mremap(src, n * PG, n * PG, flags, dst) != dst) {
		model_note(m, "mremap %#lx -> %#lx, %zu pages%s: %s", (unsigned long)src, (unsigned long)dst, n,
			   dontunmap ? " DONTUNMAP" : "", strerror(errno));
		mremap_failed(m, s, d, n, dontunmap);
		return;
	}
	model_note(m, "mremap %#lx -> %#lx, %zu pages%s", (unsigned long)src, (unsigned long)dst, n,
		   dontunmap ? " DONTUNMAP" : "");
	model_kill(m, (uintptr_t)src, n * PG, RP_DEAD);
	model_kill(m, (uintptr_t)dst, n * PG, RP_DEAD);
	tmp = m->own.shadow + d * PG;
	memmove(tmp, m->own.shadow + s * PG, n * PG);
	if (dontunmap) {
		/*
		 * reg.h: the move unlocked the whole source mapping; where the
		 * monitor cannot lock it again (RLIMIT_MEMLOCK) a DONTNEED may
		 * discard pinned pages, which are then invalidated: never stale.
		 */
		m->relock_may_fail |= m->memlock_limited;
		/* The source stays mapped, empty: zero-filled on touch. */
		for (size_t i = 0; i < n * PG; i++)
			M_CHECK(m, src[i] == 0, "the source of mremap(MREMAP_DONTUNMAP) reads %#x at +%zu", src[i], i);
		arena_fresh(m, &m->own, s, n);
	} else {
		memset(m->own.state + s, PG_HOLE, n);
	}
	model_compare(m, (uintptr_t)dst, n * PG, NULL, false, "moved memory");
}

/* mremap() shrinking in place: the tail goes. */
static void op_shrink(struct model *m)
{
	size_t first, n, keep;
	uint8_t *at;

	model_pages(m, 32, &first, &n);
	if (n < 2 || !arena_all(&m->own, first, n, PG_MAPPED))
		return;
	keep = 1 + (size_t)model_u(&m->src, n - 1);
	at = m->own.base + first * PG;
	if (mremap(at, n * PG, keep * PG, 0) != at) {
		model_note(m, "mremap shrink %#lx %zu -> %zu pages: %s", (unsigned long)at, n, keep, strerror(errno));
		return;
	}
	model_note(m, "mremap shrink %#lx %zu -> %zu pages", (unsigned long)at, n, keep);
	memset(m->own.state + first + keep, PG_HOLE, n - keep);
	model_kill(m, (uintptr_t)at + keep * PG, (n - keep) * PG, RP_DEAD);
}

static void op_dontneed_locked(struct model *m)
{
	size_t first, n;
	uint8_t *at;

	model_pages(m, 32, &first, &n);
	if (!m->dontneed_locked || !arena_all(&m->own, first, n, PG_MAPPED))
		return;
	at = m->own.base + first * PG;
	if (madvise(at, n * PG, MADV_DONTNEED_LOCKED)) {
		M_CHECK(m, errno == EINVAL, "madvise(MADV_DONTNEED_LOCKED): %s", strerror(errno));
		m->dontneed_locked = false; /* Linux before 5.18 */
		return;
	}
	model_note(m, "madvise DONTNEED_LOCKED %#lx+%zu", (unsigned long)at, n * PG);
	model_kill(m, (uintptr_t)at, n * PG, RP_DEAD);
	for (size_t i = 0; i < n * PG; i += 512)
		M_CHECK(m, at[i] == 0, "a page discarded by MADV_DONTNEED_LOCKED reads %#x", at[i]);
	arena_fresh(m, &m->own, first, n);
}

/* Plain DONTNEED: the kernel refuses it on locked (registered) memory; the pages it did discard are new memory. */
static void op_dontneed(struct model *m)
{
	size_t first, n;
	uint8_t *at;
	int ret;

	model_pages(m, 32, &first, &n);
	if (!arena_all(&m->own, first, n, PG_MAPPED))
		return;
	at = m->own.base + first * PG;
	ret = madvise(at, n * PG, MADV_DONTNEED);
	model_note(m, "madvise DONTNEED %#lx+%zu: %d", (unsigned long)at, n * PG, ret ? -errno : 0);
	for (size_t i = first; i < first + n; i++) {
		uint8_t *p = m->own.base + i * PG;

		if (!memcmp(p, m->own.shadow + i * PG, PG))
			continue;
		M_CHECK(m, page_zero(p), "madvise(MADV_DONTNEED) left page %#lx neither as it was nor empty",
			(unsigned long)p);
		for (unsigned h = 0; h < m->nholds; h++) {
			struct model_rec *rec = m->holds[h].rec;

			M_CHECK(m, m->relock_may_fail || (uintptr_t)p < rec->addr ||
				(uintptr_t)p >= rec->addr + rec->pages * PG ||
				rec->page[((uintptr_t)p - rec->addr) / PG] != RP_LIVE,
				"madvise(MADV_DONTNEED) discarded page %#lx, which held MR %#x pins (locked)",
				(unsigned long)p, rec->lkey);
		}
		model_kill(m, (uintptr_t)p, PG, RP_DEAD);
		arena_fresh(m, &m->own, i, 1);
	}
}

/*
 * glibc: a block freed and another of the same size allocated, often at the
 * same address. A freed chunk glibc had mmapped is munmapped: its pages are
 * dead. A heap chunk may or may not be given back (trimmed): unknown.
 */
static void op_block(struct model *m)
{
	static const size_t sizes[] = { 96u << 10, 200u << 10, (1u << 20) + 123, 8u << 20 };
	struct model_block *b = &m->blocks[model_u(&m->src, MODEL_MAX_BLOCKS)];
	uintptr_t old = (uintptr_t)b->p; /* an address only, once freed */

	if (!m->use_malloc)
		return;
	if (b->live) {
#ifdef __GLIBC__
		size_t head = ((size_t *)b->p)[-1];
		bool mmapped = head & 2; /* glibc's IS_MMAPPED */
		uintptr_t chunk = (uintptr_t)b->p - 2 * sizeof(size_t);
#else
		size_t head = 0;
		bool mmapped = false;
		uintptr_t chunk = 0;
#endif

		free(b->p);
		b->p = NULL;
		b->live = false;
		if (mmapped)
			model_kill(m, chunk, head & ~(size_t)7, RP_DEAD);
		else
			model_kill(m, old, b->size, RP_UNKNOWN);
		model_note(m, "free %#lx (%zu bytes, %s)", (unsigned long)old, b->size, mmapped ? "mmapped" : "heap");
		if (model_u(&m->src, 4) == 0)
			return;
	} else {
		b->size = sizes[model_u(&m->src, 4)];
		free(b->shadow);
		b->shadow = malloc(b->size);
		CHECK(b->shadow != NULL);
	}
	b->p = malloc(b->size);
	CHECK(b->p != NULL);
	b->live = true;
	fill_random(b->shadow, b->size, ++m->gen ^ m->seed);
	memcpy(b->p, b->shadow, b->size);
	model_note(m, "malloc %zu: %p%s", b->size, (void *)b->p, (uintptr_t)b->p == old ? " (the same address)" : "");
}

#endif /* IOVM_TESTS_RCACHE_MODEL_OPS_H */
