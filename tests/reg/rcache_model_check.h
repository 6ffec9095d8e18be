/* SPDX-License-Identifier: MIT */
/*
 * rcache_model_check.h - the checks of the registration-cache model
 * (rcache_model.h): DMA through the software engine by IOVA, local and
 * remote key, reads and writes, judged byte for byte against the model's
 * shadow and its page states; iovm_mr_query() of each MR held against
 * the model; a key of an MR no longer held probed; the cache's limits.
 */
#ifndef IOVM_TESTS_RCACHE_MODEL_CHECK_H
#define IOVM_TESTS_RCACHE_MODEL_CHECK_H

#include "reg/rcache_model.h"

/* ---- DMA through the engine ---- */

static void lane_open(struct model *m)
{
	struct iovm_queue_attr qa = { .depth = 64, .flags = IOVM_QUEUE_POLLED };
	iovm_iova_t io;

	CHECK_OK(iovm_queue_create(m->r->dev, &qa, &m->lane.q));
	m->lane.comp = iovm_dma_zalloc(m->r->ctx, 4096, 4096, 0);
	m->lane.scratch = iovm_dma_zalloc(m->r->ctx, MODEL_WINDOW, 4096, 0);
	CHECK(m->lane.comp && m->lane.scratch);
	CHECK_OK(iovm_dma_iova(m->r->dom, m->lane.comp, &io));
	m->lane.comp_iova = io.addr;
	CHECK_OK(iovm_dma_iova(m->r->dom, m->lane.scratch, &io));
	m->lane.scratch_iova = io.addr;
}

static void lane_close(struct model *m)
{
	CHECK_OK(iovm_queue_destroy(m->lane.q));
	iovm_dma_free(m->r->ctx, m->lane.comp);
	iovm_dma_free(m->r->ctx, m->lane.scratch);
}

static struct iovm_completion lane_run(struct model *m, struct iovm_desc d)
{
	struct iovm_cqe cqe;
	int n = 0;

	memset(m->lane.comp, 0, sizeof(*m->lane.comp));
	d.flags |= IOVM_DESC_COMPLETION;
	d.completion = m->lane.comp_iova;
	CHECK_OK(iovm_queue_submit(m->lane.q, &d));
	for (unsigned spins = 0; n == 0; spins++) {
		CHECK(iovm_queue_process(m->lane.q, 1) >= 0);
		n = iovm_queue_reap(m->lane.q, &cqe, 1);
		CHECK(n >= 0);
		CHECK(spins < 1000000u);
	}
	CHECK_EQ(cqe.status, __atomic_load_n(&m->lane.comp->status, __ATOMIC_ACQUIRE));
	return *m->lane.comp;
}

enum dma_mode { DMA_IOVA, DMA_LKEY, DMA_RKEY };

static const char *const dma_mode_name[] = { "iova", "lkey", "rkey" };

/* Whether @access lets a device do it. */
static bool dma_allowed(uint32_t access, enum dma_mode mode, bool write)
{
	switch (mode) {
	case DMA_IOVA:
		return !write || (access & (IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_REMOTE_WRITE));
	case DMA_LKEY:
		return !write || (access & IOVM_ACCESS_LOCAL_WRITE);
	case DMA_RKEY:
		return (access & (write ? IOVM_ACCESS_REMOTE_WRITE : IOVM_ACCESS_REMOTE_READ)) != 0;
	}
	return false;
}

/* The known bytes of [va, va+n) equal @ref (the memory, or the scratch buffer). */
static void model_compare(struct model *m, uintptr_t va, size_t n, const uint8_t *ref, bool ref_is_scratch,
			  const char *what)
{
	for (size_t off = 0; off < n;) {
		size_t run;
		uint8_t *sh = model_shadow(m, va + off, &run);

		if (run > n - off)
			run = n - off;
		if (sh) {
			const uint8_t *got = ref_is_scratch ? ref + off : (const uint8_t *)(va + off);

			M_CHECK(m, !memcmp(got, sh, run), "%s: bytes at %#lx (+%zu, %zu bytes) differ from the model's",
				what, (unsigned long)va, off, run);
		}
		off += run;
	}
}

/*
 * One DMA through @rec (held as @mr, or NULL for a key probe of an MR no
 * longer held) over [va, va+n), checked against the model:
 * - through a page the model calls dead, nothing succeeds, and nothing past
 *   the page before it is read or written;
 * - without the right, the key is refused and nothing is touched;
 * - a held MR reaches all its live pages; a key probe may find its MR gone;
 * - what is read is exactly the memory now, what is written lands exactly
 *   there and nowhere else the model knows.
 */
static void model_dma(struct model *m, struct model_rec *rec, struct iovm_mr *mr, enum dma_mode mode, bool write,
		      uintptr_t va, size_t n)
{
	size_t first_dead = n;
	bool unknown = false, allowed = dma_allowed(rec->access, mode, write), ok;
	struct iovm_completion c;
	struct iovm_desc d = { .op = IOVM_OP_COPY, .len = (uint32_t)n };
	uint64_t at;

	for (uintptr_t p = pg_down(va); p < va + n; p += PG) {
		uint8_t st = rec->page[(p - rec->addr) / PG];
		size_t off = p > va ? p - va : 0;

		if (st == RP_DEAD && off < first_dead)
			first_dead = off;
		if (st == RP_UNKNOWN)
			unknown = true;
	}
	/* A byte the MR may still reach is memory the model knows, or the check cannot tell. */
	for (size_t off = 0; off < n;) {
		size_t run;

		if (!model_shadow(m, va + off, &run) && rec->page[(pg_down(va + off) - rec->addr) / PG] != RP_DEAD)
			return; /* a live byte the model cannot check */
		off += run < n - off ? run : n - off;
	}
	if (write && (unknown || arena_has(m->shared, va)))
		return; /* where a write may land is not the model's to say; the shared arena is read-only */
	if (mode == DMA_IOVA) {
		iovm_iova_t io;

		CHECK(mr != NULL);
		M_CHECK(m, iovm_mr_iova(mr, (void *)va, n, &io) == 0, "iovm_mr_iova inside the MR failed");
		M_CHECK(m, io.addr == rec->iova + (va - rec->addr), "iovm_mr_iova %#llx, the MR's IOVA says %#llx",
			(unsigned long long)io.addr, (unsigned long long)(rec->iova + (va - rec->addr)));
		at = io.addr;
	} else {
		at = va;
		d.flags = IOVM_DESC_KEYED;
	}
	if (write) {
		fill_random(m->lane.scratch, n, ++m->gen ^ m->seed);
		d.src = m->lane.scratch_iova;
		d.dst = at;
		d.dst_key = mode == DMA_IOVA ? 0 : mode == DMA_LKEY ? rec->lkey : rec->rkey;
	} else {
		memset(m->lane.scratch, 0, n);
		d.src = at;
		d.dst = m->lane.scratch_iova;
		d.src_key = mode == DMA_IOVA ? 0 : mode == DMA_LKEY ? rec->lkey : rec->rkey;
	}
	c = lane_run(m, d);
	ok = c.status == IOVM_STATUS_SUCCESS;
	model_note(m, "  dma %s %s %#lx+%zu key %#x: status %u done %u", write ? "write" : "read",
		   dma_mode_name[mode], (unsigned long)va, n, rec->lkey, c.status, c.bytes_completed);
	if (ok) {
		M_CHECK(m, allowed, "a %s by %s succeeded without the right (MR access %#x)", write ? "write" : "read",
			dma_mode_name[mode], rec->access);
		M_CHECK(m, first_dead == n,
			"a %s by %s of %#lx+%zu reached a page whose memory was replaced (+%zu): a stale %s",
			write ? "write" : "read", dma_mode_name[mode], (unsigned long)va, n, first_dead,
			mode == DMA_IOVA ? "IOVA" : "key");
		M_CHECK(m, c.bytes_completed == n, "success with %u of %zu bytes", c.bytes_completed, n);
	} else {
		m->faults_seen++;
		M_CHECK(m, c.status == IOVM_STATUS_PAGE_FAULT || c.status == IOVM_STATUS_KEY,
			"DMA status %u (bytes %u)", c.status, c.bytes_completed);
		/* A held MR reaches every live page it holds with its rights. */
		M_CHECK(m, !(mr && allowed && first_dead == n && !unknown),
			"a %s by %s of %#lx+%zu through a held MR failed (status %u after %u bytes, fault at %#llx)",
			write ? "write" : "read", dma_mode_name[mode], (unsigned long)va, n, c.status,
			c.bytes_completed, (unsigned long long)c.fault_addr);
		/*
		 * dev.h: a key refused before the first byte moves nothing; one
		 * whose MR another thread deregisters (evicts) while the
		 * descriptor runs may stop it part way, as a fault does.
		 */
		if (c.status == IOVM_STATUS_KEY && !m->shared)
			M_CHECK(m, c.bytes_completed == 0, "a refused key moved %u bytes", c.bytes_completed);
		if (!allowed)
			M_CHECK(m, c.bytes_completed == 0, "a %s by %s without the right moved %u bytes",
				write ? "write" : "read", dma_mode_name[mode], c.bytes_completed);
		M_CHECK(m, c.bytes_completed <= first_dead,
			"a %s by %s of %#lx+%zu moved %u bytes, past the replaced page at +%zu",
			write ? "write" : "read", dma_mode_name[mode], (unsigned long)va, n, c.bytes_completed,
			first_dead);
		if (!mr && c.status == IOVM_STATUS_KEY)
			m->stale_refused++;
	}
	if (!write) {
		model_compare(m, va, c.bytes_completed, m->lane.scratch, true, "DMA read");
		return;
	}
	/* What was written is the model's now; and nothing else the model knows changed. */
	for (size_t off = 0; off < c.bytes_completed;) {
		size_t run;
		uint8_t *sh = model_shadow(m, va + off, &run);

		if (run > c.bytes_completed - off)
			run = c.bytes_completed - off;
		if (sh)
			memcpy(sh, m->lane.scratch + off, run);
		off += run;
	}
	model_compare(m, va, n, NULL, false, "after a DMA write, memory");
}

/* ---- checks of what the model holds ---- */

/* iovm_mr_query() of a held MR agrees with the model. */
static void model_check_query(struct model *m, struct model_hold *h)
{
	struct model_rec *rec = h->rec;
	struct iovm_mr_info in;
	uint64_t live = 0, unknown = 0;

	M_CHECK(m, iovm_mr_query(h->mr, &in) == 0, "iovm_mr_query of a held MR failed");
	M_CHECK(m, in.lkey == rec->lkey && in.rkey == rec->rkey, "keys changed: %#x/%#x, were %#x/%#x", in.lkey,
		in.rkey, rec->lkey, rec->rkey);
	M_CHECK(m, pg_down((uintptr_t)in.addr) == rec->addr && in.pages == rec->pages,
		"the MR moved: %p, %llu pages", in.addr, (unsigned long long)in.pages);
	M_CHECK(m, (uintptr_t)in.addr <= h->addr && (uintptr_t)in.addr + in.len >= h->addr + h->len,
		"MR [%p, +%zu) does not hold the request [%#lx, +%zu)", in.addr, in.len, (unsigned long)h->addr,
		h->len);
	M_CHECK(m, (in.access & h->access) == h->access && in.access == rec->access,
		"access %#x, asked %#x, was %#x", in.access, h->access, rec->access);
	M_CHECK(m, !in.on_demand && !in.implicit, "a cached MR is on demand or implicit");
	if (in.monitored && !m->monitor) {
		struct iovm_reg_stats st;

		/* The monitor starts with the first registration. */
		M_CHECK(m, iovm_reg_stats(m->r->ctx, &st) == 0, "iovm_reg_stats failed");
		m->monitor = st.monitor;
		M_CHECK(m, m->monitor, "an MR says it is monitored, iovm_reg_stats says no monitor runs");
	}
	for (size_t i = 0; i < rec->pages; i++) {
		live += rec->page[i] == RP_LIVE;
		unknown += rec->page[i] == RP_UNKNOWN;
	}
	M_CHECK(m, in.valid_pages >= live && in.valid_pages <= live + unknown,
		"iovm_mr_query: %llu valid pages; the model says %llu live, %llu unknown, %llu replaced (MR %#lx, %zu pages)",
		(unsigned long long)in.valid_pages, (unsigned long long)live, (unsigned long long)unknown,
		(unsigned long long)(rec->pages - live - unknown), (unsigned long)rec->addr, rec->pages);
	M_CHECK(m, in.valid == (in.valid_pages != 0), "valid %d with %llu valid pages", in.valid,
		(unsigned long long)in.valid_pages);
}

/* A window of at most MODEL_WINDOW bytes inside [addr, addr+len). */
static void model_window(struct model *m, uintptr_t addr, size_t len, uintptr_t *va, size_t *n)
{
	size_t max = len < MODEL_WINDOW ? len : MODEL_WINDOW;

	*n = 1 + (size_t)model_u(&m->src, max);
	if (model_u(&m->src, 4) == 0)
		*n = max;
	*va = addr + (size_t)model_u(&m->src, len - *n + 1);
}

static void model_check_hold(struct model *m, struct model_hold *h)
{
	uintptr_t va;
	size_t n;
	enum dma_mode mode = (enum dma_mode)model_u(&m->src, 3);
	bool write = model_u(&m->src, 3) == 0;

	model_check_query(m, h);
	model_window(m, h->addr, h->len, &va, &n);
	model_dma(m, h->rec, h->mr, mode, write, va, n);
}

/* A key of an MR no longer held: it reaches its live pages or nothing, never what replaced the dead ones. */
static void model_probe_key(struct model *m)
{
	struct model_rec *rec;
	uintptr_t va;
	size_t n;

	if (!m->nrecs)
		return;
	rec = m->recs[model_u(&m->src, m->nrecs)];
	if (rec_held(m, rec))
		return;
	model_window(m, rec->req_addr, rec->req_len, &va, &n);
	model_dma(m, rec, NULL, model_u(&m->src, 2) ? DMA_LKEY : DMA_RKEY, model_u(&m->src, 4) == 0, va, n);
}

/* The cache keeps within its limits, beyond what is held. */
static void model_check_limits(struct model *m)
{
	struct iovm_rcache_stats st;
	uint64_t held_bytes = 0;
	unsigned held = 0;

	M_CHECK(m, iovm_rcache_stats(m->cache, &st) == 0, "iovm_rcache_stats failed");
	for (unsigned i = 0; i < m->nholds; i++) {
		bool first = true;

		for (unsigned j = 0; j < i; j++)
			first &= m->holds[j].rec != m->holds[i].rec;
		if (first) {
			held++;
			held_bytes += m->holds[i].rec->pages * PG;
		}
	}
	if (m->shared)
		return; /* other threads hold regions too: the model cannot count them */
	if (m->max_regions)
		M_CHECK(m, st.regions <= (m->max_regions > held ? m->max_regions : held),
			"%llu regions kept, limit %zu, %u held", (unsigned long long)st.regions, m->max_regions, held);
	if (m->max_bytes)
		M_CHECK(m, st.bytes <= (m->max_bytes > held_bytes ? m->max_bytes : held_bytes),
			"%llu bytes kept, limit %zu, %llu held", (unsigned long long)st.bytes, m->max_bytes,
			(unsigned long long)held_bytes);
}

/* After every step: each hold, one stale key. */
static void model_check(struct model *m)
{
	for (unsigned i = 0; i < m->nholds; i++)
		model_check_hold(m, &m->holds[i]);
	model_probe_key(m);
}

#endif /* IOVM_TESTS_RCACHE_MODEL_CHECK_H */
