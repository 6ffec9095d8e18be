/* SPDX-License-Identifier: MIT */
/*
 * rcache_model.h - a plain reference model of the registration cache and
 * the memory monitor, written from include/iovm/reg.h and the README
 * alone: what memory is live, what each MR handed out may still reach,
 * and the bytes the memory holds. The checks are in rcache_model_check.h,
 * the operations in rcache_model_ops.h, fork and the step in
 * rcache_model_run.h.
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
	bool relock_may_fail;   /* memlock_limited, and an MREMAP_DONTUNMAP unlocked pages the monitor must lock again */
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

#endif /* IOVM_TESTS_RCACHE_MODEL_H */
