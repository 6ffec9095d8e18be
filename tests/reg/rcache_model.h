/* SPDX-License-Identifier: MIT */
/*
 * rcache_model.h - a plain reference model of the registration cache and
 * the memory monitor, written from include/iovm/reg.h and the README
 * alone: what memory is live, what each MR handed out may still reach,
 * and the bytes the memory holds. The checks after every step live here;
 * the operations that change the memory are in rcache_model_ops.h.
 *
 * The model keeps, per MR it ever saw (by its lkey: keys are never
 * reused), the state of each of its 4 KiB pages: live (the MR must reach
 * the page's current memory), dead (the memory it registered was replaced:
 * no device access through the MR, by IOVA or by key, may succeed there,
 * ever again), or unknown (the model cannot tell, say glibc's free() of a
 * heap chunk that may or may not have given the page back). Every MR held
 * is checked after each step with iovm_mr_query() and with DMA through the
 * software engine (by IOVA, by local and by remote key, reads and writes),
 * byte for byte against the model's shadow of the memory; keys of MRs no
 * longer held are probed too: a stale key must never reach new memory.
 *
 * Driven by a random generator (test_rcache_model.c) or by a fuzzer's
 * bytes (tests/fuzz/fuzz_rcache.c): both go through struct model_src.
 */
#ifndef IOVM_TESTS_RCACHE_MODEL_H
#define IOVM_TESTS_RCACHE_MODEL_H

#include <stdarg.h>
#include <sys/resource.h>

#include "reg/reg_util.h"

#define MODEL_MAX_HOLDS 12
#define MODEL_MAX_BLOCKS 3
#define MODEL_MAX_RECS 1024
#define MODEL_TRACE 64
#define MODEL_WINDOW (16u << 10) /* the most one DMA check moves */

/* Where the model's choices come from: a seeded generator, or a fuzzer's input. */
struct model_src {
	uint64_t rng;        /* 0: read from data */
	const uint8_t *data;
	size_t len, pos;
	bool end;            /* the input ran out */
};

static inline uint64_t model_u(struct model_src *s, uint64_t bound)
{
	uint64_t v = 0;

	if (bound <= 1)
		return 0;
	if (s->rng) {
		v = test_rand(&s->rng);
	} else {
		for (uint64_t b = bound - 1; b; b >>= 8) {
			if (s->pos >= s->len) {
				s->end = true;
				break;
			}
			v = v << 8 | s->data[s->pos++];
		}
	}
	return v % bound;
}

/* A page of an arena, as the process has it. */
enum arena_page {
	PG_MAPPED = 0, /* ours, read-write; its bytes are in the shadow */
	PG_HOLE,       /* unmapped by us */
	PG_FOREIGN,    /* a hole someone else mapped into: never touched again */
};

/* An arena: pages of anonymous memory inside a reservation whose ends stay PROT_NONE. */
struct model_arena {
	uint8_t *resv;
	size_t resv_len;
	uint8_t *base;
	size_t pages;
	uint8_t *state;  /* enum arena_page, per page */
	uint8_t *shadow; /* pages * PG bytes */
};

/* A glibc malloc() block of the model. */
struct model_block {
	uint8_t *p;
	size_t size;
	uint8_t *shadow;
	bool live;
};

/* A page of an MR, as the model knows it. */
enum rec_page {
	RP_LIVE = 0,    /* the MR reaches the page's current memory */
	RP_DEAD = 1,    /* the memory it registered was replaced: nothing may reach the page again */
	RP_UNKNOWN = 2, /* the model cannot tell */
};

/* What the model knows of one MR it was handed, by lkey. */
struct model_rec {
	uint32_t lkey, rkey, access;
	uintptr_t addr; /* page-aligned span of the MR */
	size_t pages;
	uint64_t iova;  /* of addr */
	uintptr_t req_addr; /* the first request it served: what key probes use */
	size_t req_len;
	uint8_t *page;  /* enum rec_page, per page */
};

struct model_hold {
	struct iovm_mr *mr;
	struct model_rec *rec;
	uintptr_t addr;
	size_t len;
	uint32_t access;
};

/* A queue of the engine for one thread: DMA checks run on it. */
struct model_lane {
	struct iovm_queue *q;
	struct iovm_completion *comp;
	uint64_t comp_iova;
	uint8_t *scratch;
	uint64_t scratch_iova;
};

struct model {
	struct rig *r;
	struct iovm_rcache *cache;
	struct model_lane lane;
	struct model_src src;
	uint64_t seed;
	unsigned id;            /* thread number, for messages */
	unsigned long step;
	uint64_t gen;           /* pattern generations written */
	bool monitor;           /* the context runs a memory monitor */
	bool memlock_limited;   /* a finite RLIMIT_MEMLOCK: -ENOMEM is a possible answer */
	bool fuzz;              /* fail with abort(), for libFuzzer */
	bool use_malloc;        /* glibc's free()+malloc() (not under ASan: its free() never unmaps) */
	bool use_fork;
	bool dontneed_locked;   /* the kernel has MADV_DONTNEED_LOCKED */
	unsigned settle_us;     /* diagnostic: wait after each change (RCACHE_MODEL_SETTLE_US) */
	bool verbose;           /* diagnostic: print every step as it runs (RCACHE_MODEL_TRACE) */
	size_t max_regions, max_bytes;
	struct model_arena own;
	const struct model_arena *shared; /* read-only, shared by threads; may be NULL */
	struct model_block blocks[MODEL_MAX_BLOCKS];
	struct model_hold holds[MODEL_MAX_HOLDS];
	unsigned nholds;
	struct model_rec *recs[MODEL_MAX_RECS];
	unsigned nrecs;
	unsigned forks, max_forks;
	char trace[MODEL_TRACE][112];
	unsigned ntrace;
	unsigned long gets, hits_checked, faults_seen, stale_refused;
	bool got;               /* the step's get registered anew: the cache had to make room */
};

/* Remember what the step did: printed when a check fails. */
static void __attribute__((format(printf, 2, 3))) model_note(struct model *m, const char *fmt, ...)
{
	va_list ap;
	char *line = m->trace[m->ntrace++ % MODEL_TRACE];
	int n = snprintf(line, sizeof(m->trace[0]), "t%u step %lu: ", m->id, m->step);

	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(m->trace[0]) - (size_t)n, fmt, ap);
	va_end(ap);
	if (m->verbose)
		fprintf(stderr, "%s\n", line);
}

static void __attribute__((noreturn, format(printf, 4, 5)))
model_failf(struct model *m, const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	unsigned first = m->ntrace > MODEL_TRACE ? m->ntrace - MODEL_TRACE : 0;

	fprintf(stderr, "model: the last steps (thread %u, seed %#llx):\n", m->id,
		(unsigned long long)m->seed);
	for (unsigned i = first; i < m->ntrace; i++)
		fprintf(stderr, "  %s\n", m->trace[i % MODEL_TRACE]);
	fprintf(stderr, "FAIL %s:%d [%s] thread %u step %lu seed %#llx: ", file, line, test_current, m->id,
		m->step, (unsigned long long)m->seed);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	if (m->fuzz)
		abort();
	test_ended = 1;
	exit(1);
}

#define M_CHECK(m, cond, ...)                                              \
	do {                                                               \
		if (!(cond))                                               \
			model_failf((m), __FILE__, __LINE__, __VA_ARGS__); \
		atomic_fetch_add_explicit(&test_checks, 1, memory_order_relaxed); \
	} while (0)

static inline uintptr_t pg_down(uintptr_t a)
{
	return a & ~(uintptr_t)(PG - 1);
}

static inline uintptr_t pg_up(uintptr_t a)
{
	return (a + PG - 1) & ~(uintptr_t)(PG - 1);
}

/* ---- what the model knows of the memory ---- */

static bool arena_has(const struct model_arena *a, uintptr_t va)
{
	return a && a->base && va >= (uintptr_t)a->base && va < (uintptr_t)a->base + a->pages * PG;
}

/*
 * The shadow of the byte at @va, and how many bytes after it (to its
 * page's end, at most) the shadow holds; NULL where the model does not know
 * the memory (a hole, someone else's memory, a freed block).
 */
static uint8_t *model_shadow(struct model *m, uintptr_t va, size_t *run)
{
	size_t off;

	*run = PG - (va & (PG - 1));
	if (arena_has(&m->own, va)) {
		off = va - (uintptr_t)m->own.base;
		return m->own.state[off / PG] == PG_MAPPED ? m->own.shadow + off : NULL;
	}
	if (arena_has(m->shared, va)) {
		off = va - (uintptr_t)m->shared->base;
		return m->shared->shadow + off;
	}
	for (unsigned i = 0; i < MODEL_MAX_BLOCKS; i++) {
		struct model_block *b = &m->blocks[i];

		if (b->live && va >= (uintptr_t)b->p && va < (uintptr_t)b->p + b->size) {
			off = va - (uintptr_t)b->p;
			if (*run > b->size - off)
				*run = b->size - off;
			return b->shadow + off;
		}
	}
	return NULL;
}

/* Whether the whole page at @va (4 KiB aligned) is memory the model knows and owns. */
static bool model_page_known(struct model *m, uintptr_t va)
{
	size_t run;

	return model_shadow(m, va, &run) && run == PG;
}

/* ---- MRs the model was handed ---- */

static struct model_rec *rec_find(struct model *m, uint32_t lkey)
{
	for (unsigned i = 0; i < m->nrecs; i++)
		if (m->recs[i]->lkey == lkey)
			return m->recs[i];
	return NULL;
}

static bool rec_held(struct model *m, const struct model_rec *rec)
{
	for (unsigned i = 0; i < m->nholds; i++)
		if (m->holds[i].rec == rec)
			return true;
	return false;
}

static void rec_free(struct model_rec *rec)
{
	free(rec->page);
	free(rec);
}

/* Forget a record no longer held, to stay within MODEL_MAX_RECS. */
static void rec_forget_one(struct model *m)
{
	unsigned start = (unsigned)model_u(&m->src, m->nrecs);

	for (unsigned k = 0; k < m->nrecs; k++) {
		unsigned i = (start + k) % m->nrecs;

		if (!rec_held(m, m->recs[i])) {
			rec_free(m->recs[i]);
			m->recs[i] = m->recs[--m->nrecs];
			return;
		}
	}
}

/* A record for an MR seen for the first time: registered by this get. */
static struct model_rec *rec_new(struct model *m, const struct iovm_mr_info *in, uintptr_t req, size_t len)
{
	struct model_rec *rec = calloc(1, sizeof(*rec));

	CHECK(rec != NULL);
	rec->lkey = in->lkey;
	rec->rkey = in->rkey;
	rec->access = in->access;
	rec->addr = pg_down((uintptr_t)in->addr);
	rec->pages = (pg_up((uintptr_t)in->addr + in->len) - rec->addr) / PG;
	rec->iova = in->iova.addr - ((uintptr_t)in->addr - rec->addr);
	rec->req_addr = req;
	rec->req_len = len;
	rec->page = malloc(rec->pages);
	CHECK(rec->page != NULL);
	/* Pages the model owns are live (mapped, or the registration would have failed); the rest unknown. */
	for (size_t i = 0; i < rec->pages; i++)
		rec->page[i] = model_page_known(m, rec->addr + i * PG) ? RP_LIVE : RP_UNKNOWN;
	if (m->nrecs == MODEL_MAX_RECS)
		rec_forget_one(m);
	m->recs[m->nrecs++] = rec;
	return rec;
}

/*
 * The memory of [va, va+len) was replaced (@state RP_DEAD) or may have been
 * (RP_UNKNOWN): so it is for every MR the model knows.
 */
static void model_kill(struct model *m, uintptr_t va, size_t len, enum rec_page state)
{
	uintptr_t lo = pg_down(va), hi = pg_up(va + len);

	for (unsigned i = 0; i < m->nrecs; i++) {
		struct model_rec *rec = m->recs[i];
		uintptr_t end = rec->addr + rec->pages * PG;

		if (hi <= rec->addr || lo >= end)
			continue;
		for (uintptr_t p = lo > rec->addr ? lo : rec->addr; p < hi && p < end; p += PG) {
			uint8_t *s = &rec->page[(p - rec->addr) / PG];

			if (state == RP_DEAD || *s == RP_LIVE)
				*s = (uint8_t)state;
		}
	}
}

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
		if (c.status == IOVM_STATUS_KEY)
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

#endif /* IOVM_TESTS_RCACHE_MODEL_H */
