/* SPDX-License-Identifier: MIT */
/*
 * test_attack22_everyone.c - everyone reaches everyone (iovm/mp.h,
 * delegated access), against a model of every byte.
 *
 * Four worker processes, forked before anything of iovm exists (no
 * thread to inherit), attach to the share of a coordinator (the parent)
 * and open its shared domain. Each registers its own memory into it:
 * arenas from malloc() and mmap(), regions at odd offsets and odd
 * lengths that span pages, one across a 2 MiB boundary, two regions
 * (one pinned, one on demand) over the same bytes; some pinned, some on
 * demand. The IOVAs go on a board (an anonymous MAP_SHARED mapping made
 * before the fork).
 *
 * Round after round the coordinator draws a plan: each worker's device
 * reads random sub-ranges of every other worker's regions into its own
 * DMA buffer, writes random bytes (COPY from its buffer) and FILLs into
 * them, copies from one other process's region into another's, and
 * memmoves inside one (an overlapping COPY, which runs from the end). In
 * one round no byte that anybody writes is read or written by another
 * descriptor, so a plain model (the coordinator's copy of every arena,
 * and who wrote each byte last) predicts every byte exactly. Each reader
 * checks the bytes it read (and that none landed past what its
 * completion says); at the round's end each owner checks its whole
 * arenas, bytes outside its regions included.
 *
 * In between, owners deregister regions (accesses to the old IOVAs then
 * fault, nothing written, iovm_domain_translate() finds nothing) and
 * register them again (republished: the IOVA may change), replace
 * registered memory by munmap() and mmap() at the same address (a pinned
 * registration's accesses fault, and no byte lands in the new memory;
 * an on-demand one may reach the new memory, never the old bytes) or by
 * munmap() alone, and one worker is killed with SIGKILL while the others'
 * descriptors are reaching its memory (they complete, success with the
 * right bytes or a fault), after which every access to its regions
 * faults while everything else stays exact.
 *
 * The counts of accesses that crossed processes are checked at the end:
 * the test cannot pass without them. A hang is a failure (alarm).
 * All of it twice: in a strict shared domain, then in a deferred one.
 * IOVM_ATTACK22_SEED=N chooses the plan's seed (the default is fixed).
 */
#include "attack22.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#define NW 4u      /* workers */
#define NA 5u      /* arenas per worker */
#define NR 6u      /* regions per worker */
#define AMAX (256u * 1024u)
#define MAXOPS 32u
#define SLOT (16u * 1024u)
#define MAXLEN 12000u
#define BUFLEN (MAXOPS * SLOT + 4096u)
#define RECS (MAXOPS * SLOT) /* completion records, 32 bytes each, after the slots */
#define HEAP (UINT64_C(32) << 20)
#define DOM "a22-all"
#define A1_LEN (5u * 4096u)
#define A2_LEN (6u * 4096u)  /* the 6 pages around a 2 MiB boundary */
#define A4_LEN (256u * 1024u) /* on demand, far more than the workers' pin budget */
#define WORKER_OPTS "oracle=on,pin_budget=128K"
#define BIG_LEN (UINT64_C(8) << 20)
#define SCRATCH_LEN (12u * 4096u) /* below A2, in its 2 MiB granule: registered, munmap()ped, again */
#define ACCESS (IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_REMOTE_READ | IOVM_ACCESS_REMOTE_WRITE)

enum rstate {
	RS_NONE = 0, /* not published: never targeted */
	RS_LIVE,     /* registered, its memory there: exact */
	RS_STALE,    /* deregistered, or its memory unmapped: every access faults, nothing moved */
	RS_DEAD,     /* its owner was killed and reaped: every access faults */
	RS_DYING,    /* its owner is killed during the round: success (exact) or a fault */
	RS_ODREMAP,  /* on demand, memory replaced at its address: reads only, the new bytes or a fault */
};

enum opkind { OP_READ, OP_WRITE, OP_FILL, OP_R2R, OP_MOVE };
static const char *const op_names[] = { "READ", "WRITE", "FILL", "R2R", "MOVE" };

enum expect { E_OK, E_FAULT, E_EITHER };

struct region_pub {
	uint64_t iova;  /* as registered (kept while stale) */
	uint32_t arena, base, len;
	uint32_t od;    /* on demand */
	uint32_t state; /* enum rstate, the coordinator's */
	uint32_t lazy;  /* stale by munmap(), its owner asked nothing since: translate() not asserted */
};

struct arena_pub {
	uint32_t len;
	uint32_t present; /* mapped in its owner */
	uint8_t model[AMAX];
	uint16_t who[AMAX]; /* last writer: 0 its owner; else (worker + 1) | kind << 3 | round << 6 */
	/* A writer killed with its descriptor in flight: each such byte is the model's or alt's. */
	uint8_t alt[AMAX];
	uint8_t altv[AMAX];
};

struct plan_op {
	uint8_t kind, expect;
	uint8_t so, sr, dw, dr;  /* source owner and region; destination owner and region */
	uint32_t soff, doff, len; /* offsets in the regions */
	uint64_t seed;           /* WRITE: the pattern's seed; FILL: the byte */
};

struct op_res {
	uint8_t status, result;
	uint32_t bc;
};

struct board {
	struct region_pub reg[NW][NR];
	struct arena_pub ar[NW][NA];
	struct plan_op plan[NW][MAXOPS];
	uint32_t nops[NW];
	struct op_res res[NW][MAXOPS];
	uint32_t round;
	_Atomic uint64_t cross_ok;      /* successes that reached another process's region */
	_Atomic uint64_t other_r2r_ok;  /* R2R successes between two OTHER processes' regions */
	_Atomic uint64_t move_ok;       /* overlapping COPYs inside another's region, run from the end */
	_Atomic uint64_t stale_faults;  /* expected faults on deregistered / unmapped regions */
	_Atomic uint64_t dead_faults;   /* expected faults on a dead process's regions */
	_Atomic uint64_t dying_ok, dying_fault;
	_Atomic uint64_t odremap_ok, odremap_fault;
	_Atomic uint64_t translated;    /* iovm_domain_translate() of another's pinned region */
	_Atomic uint64_t lazy_seen;     /* translations of memory munmap()ped, still there (not asserted) */
	_Atomic uint64_t bytes_checked; /* by owners at round ends */
	_Atomic uint64_t churns;        /* scratch registrations munmap()ped while others reached the owner */
	_Atomic uint64_t odp_faults, odp_evicted; /* the survivors' page requests answered, bytes evicted */
};

static struct board *B;
static const char *g_name;

/* ---------------- the worker ---------------- */

enum cmd { C_SETUP = 1, C_ROUND, C_CHECK, C_DEREG, C_REG, C_NEWMALLOC, C_REPLACE, C_REMAP, C_EXIT };
#define CMD(c, a, b) ((uint64_t)(c) | (uint64_t)(a) << 8 | (uint64_t)(b) << 16)

struct wstate {
	unsigned id;
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	struct sdom_wq q;
	struct sdom_buf buf;
	uint8_t *arena[NA];
	uint8_t *big;
	struct iovm_mr *mr[NR];
	unsigned gen;
};

static uint64_t arena_seed(unsigned w, unsigned a, unsigned gen)
{
	return 0x5eed0000u + w * 1000u + a * 100u + gen;
}

/* The owner's bytes of arena @a are its model from now on. */
static void publish_arena(struct wstate *s, unsigned a)
{
	struct arena_pub *ap = &B->ar[s->id][a];

	a22_fill(s->arena[a], ap->len, arena_seed(s->id, a, ++s->gen));
	memcpy(ap->model, s->arena[a], ap->len);
	memset(ap->who, 0, ap->len * sizeof(ap->who[0]));
	memset(ap->altv, 0, ap->len);
	ap->present = 1;
}

static void reg_region(struct wstate *s, unsigned r)
{
	struct region_pub *rp = &B->reg[s->id][r];
	uint8_t *addr = s->arena[rp->arena] + rp->base;
	struct iovm_mr_info info;
	int ret = iovm_mr_reg(s->dom, addr, rp->len, ACCESS | (rp->od ? IOVM_ACCESS_ON_DEMAND : 0), &s->mr[r]);

	CHECK_MSG(ret == 0, "worker %u: iovm_mr_reg of region %u (%u bytes, %s): %s: %s", s->id, r, rp->len,
		  rp->od ? "on demand" : "pinned", strerror(-ret), iovm_error_detail());
	CHECK_OK(iovm_mr_query(s->mr[r], &info));
	CHECK(info.addr == addr && info.len == rp->len);
	/* mp.h: the IOVA keeps the memory's offset within 2 MiB. */
	A22_EXPECT_EQ(info.iova.addr & (A22_M2 - 1), (uintptr_t)addr & (A22_M2 - 1));
	rp->iova = info.iova.addr;
}

static void worker_setup(struct wstate *s)
{
	uint8_t *p;
	unsigned w = s->id;

	/* A pin budget of two 64 KiB pieces: on-demand pages evict each other all the time. */
	{
		int ret = iovm_attach(g_name, WORKER_OPTS, &s->ctx);

		CHECK_MSG(ret == 0, "iovm_attach(%s, %s): %s: %s", g_name, WORKER_OPTS, strerror(-ret),
			  iovm_error_detail());
	}
	CHECK_OK(iovm_share_domain_open(s->ctx, DOM, &s->dom));
	s->q = sdom_wq_open(s->ctx, s->dom, 64);
	s->buf = sdom_buf_open(s->ctx, s->dom, BUFLEN);
	/* A0: malloc(); A1: 5 pages of mmap(); A2: the 6 pages around a 2 MiB boundary; A3: a small malloc(). */
	B->ar[w][0].len = 6000 + 16 * w;
	B->ar[w][1].len = A1_LEN;
	B->ar[w][2].len = A2_LEN;
	B->ar[w][3].len = 777 + 100 * w;
	B->ar[w][4].len = A4_LEN;
	s->arena[0] = malloc(B->ar[w][0].len);
	CHECK(s->arena[0]);
	s->arena[1] = mmap(NULL, A1_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(s->arena[1] != MAP_FAILED);
	p = mmap(NULL, BIG_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(p != MAP_FAILED);
	s->big = p;
	s->arena[2] = (uint8_t *)(((uintptr_t)p + 2 * A22_M2) & ~(uintptr_t)(A22_M2 - 1)) - A2_LEN / 2;
	s->arena[3] = malloc(B->ar[w][3].len);
	CHECK(s->arena[3]);
	s->arena[4] = s->arena[2] + A2_LEN / 2 + A22_M2 / 2;
	for (unsigned a = 0; a < NA; a++)
		publish_arena(s, a);
	B->reg[w][0] = (struct region_pub){ .arena = 0, .base = 13, .len = 5001, .od = 0 };
	B->reg[w][1] = (struct region_pub){ .arena = 1, .base = 4096 - 7, .len = 9000, .od = 1 };
	B->reg[w][2] = (struct region_pub){ .arena = 2, .base = 7000 + w, .len = 10003, .od = w & 1 };
	B->reg[w][3] = (struct region_pub){ .arena = 3, .base = 0, .len = B->ar[w][3].len, .od = 1 };
	B->reg[w][4] = (struct region_pub){ .arena = 1, .base = 8000, .len = 6000, .od = 0 }; /* over R1's bytes */
	B->reg[w][5] = (struct region_pub){ .arena = 4, .base = 100 + w, .len = A4_LEN - 300, .od = 1 };
	for (unsigned r = 0; r < NR; r++)
		reg_region(s, r);
}

static const char *state_name(unsigned st)
{
	static const char *const n[] = { "none", "live", "stale", "dead", "dying", "odremap" };

	return st < 6 ? n[st] : "?";
}

static uint64_t reg_iova(unsigned w, unsigned r, uint32_t off)
{
	return B->reg[w][r].iova + off;
}

static uint32_t arena_off(unsigned w, unsigned r, uint32_t off)
{
	return B->reg[w][r].base + off;
}

/*
 * Whether a fault at @at fits a range [start, start+len) of which @bc bytes
 * were done: from its start, or, @backward (a COPY run from the end), its
 * last bc bytes (within the page of the first byte not done).
 */
static bool fault_in(uint64_t at, uint64_t start, uint32_t bc, uint32_t len, bool backward)
{
	if (backward)
		return at >= start && at < ((start + len - bc + A22_K4 - 1) & ~(A22_K4 - 1));
	return at >= ((start + bc) & ~(A22_K4 - 1)) && at < start + len;
}

/*
 * One turn of churn next to the registrations the others reach: register
 * the scratch pages (pinned), munmap() them (an invalidation: the gate
 * closes on this process's devices, its engine included), map them again,
 * deregister.
 */
static void churn_once(struct wstate *s)
{
	uint8_t *sc = s->arena[2] - 64 * 4096;
	struct iovm_mr *mr;
	void *p;

	memset(sc, 0x5c, SCRATCH_LEN);
	CHECK_OK(iovm_mr_reg(s->dom, sc, SCRATCH_LEN, ACCESS, &mr));
	CHECK_OK(munmap(sc, SCRATCH_LEN));
	p = mmap(sc, SCRATCH_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	CHECK(p == sc);
	CHECK_OK(iovm_mr_dereg(mr));
	atomic_fetch_add(&B->churns, 1);
}

static void worker_round(struct wstate *s, bool churn)
{
	unsigned w = s->id, n = B->nops[w];
	struct iovm_cqe cqe[MAXOPS];
	struct iovm_completion *rec = (struct iovm_completion *)(s->buf.p + RECS);

	/* Every process sees the entries of the others' registrations (mp.h). */
	for (unsigned o = 0; o < NW; o++)
		for (unsigned r = 0; r < NR; r++) {
			struct region_pub *rp = &B->reg[o][r];
			iovm_pa_t pa;
			uint32_t perm = 0;
			int ret;

			if (o == w)
				continue;
			if (rp->state == RS_LIVE && !rp->od) {
				ret = iovm_domain_translate(s->dom, IOVM_IOVA(rp->iova), &pa, &perm);
				A22_EXPECT_MSG(ret == 0 && (perm & A22_RW) == A22_RW,
					       "round %u: worker %u translates worker %u's live pinned region %u at %#llx: %d perm %#x",
					       B->round, w, o, r, (unsigned long long)rp->iova, ret, perm);
				atomic_fetch_add(&B->translated, 1);
			} else if (rp->state == RS_STALE && rp->lazy) {
				/*
				 * munmap() returned, but the owner's invalidator may not
				 * have run yet (devices wait at its gate): the header
				 * promises devices nothing reaches, not the table.
				 */
				ret = iovm_domain_translate(s->dom, IOVM_IOVA(rp->iova), &pa, &perm);
				if (ret == 0)
					atomic_fetch_add(&B->lazy_seen, 1);
			} else if (rp->state == RS_STALE) {
				/* Deregistered, or munmap()ped and the owner's iovm_mr_query() said so. */
				ret = iovm_domain_translate(s->dom, IOVM_IOVA(rp->iova), &pa, &perm);
				A22_EXPECT_MSG(ret == -ENOENT,
					       "round %u: worker %u translates worker %u's stale region %u at %#llx: %d (perm %#x), not -ENOENT",
					       B->round, w, o, r, (unsigned long long)rp->iova, ret, perm);
			}
		}
	for (unsigned i = 0; i < n; i++) {
		struct plan_op *op = &B->plan[w][i];
		uint8_t *slot = s->buf.p + i * SLOT;
		uint64_t slot_iova = s->buf.iova + i * SLOT;
		struct iovm_desc d = { .pasid = SDOM_PASID, .flags = IOVM_DESC_COMPLETION, .len = op->len,
				       .completion = s->buf.iova + RECS + i * sizeof(*rec), .tag = i };

		memset(&rec[i], 0, sizeof(rec[i]));
		switch (op->kind) {
		case OP_READ:
			a22_fill(slot, op->len, 0xb0150000u + B->round * 64 + i); /* poison */
			d.op = IOVM_OP_COPY;
			d.src = reg_iova(op->so, op->sr, op->soff);
			d.dst = slot_iova;
			break;
		case OP_WRITE:
			a22_fill(slot, op->len, op->seed);
			d.op = IOVM_OP_COPY;
			d.src = slot_iova;
			d.dst = reg_iova(op->dw, op->dr, op->doff);
			break;
		case OP_FILL:
			d.op = IOVM_OP_FILL;
			d.pattern = UINT64_C(0x0101010101010101) * (uint8_t)op->seed;
			d.dst = reg_iova(op->dw, op->dr, op->doff);
			break;
		case OP_R2R:
		case OP_MOVE:
			d.op = IOVM_OP_COPY;
			d.src = reg_iova(op->so, op->sr, op->soff);
			d.dst = reg_iova(op->dw, op->dr, op->doff);
			break;
		}
		CHECK_OK(iovm_queue_submit(s->q.q, &d));
	}
	for (unsigned got = 0; got < n;) {
		int r = iovm_queue_reap(s->q.q, cqe + got, n - got);

		CHECK(r >= 0);
		got += (unsigned)r;
		if (churn)
			churn_once(s);
		else if (r == 0)
			sched_yield();
	}
	for (unsigned k = 0; k < n; k++) {
		unsigned i = (unsigned)cqe[k].tag;
		struct plan_op *op;
		struct iovm_completion *c;
		uint32_t bc = cqe[k].bytes_completed;
		uint8_t st = cqe[k].status;
		bool ok = st == IOVM_STATUS_SUCCESS;
		bool reads = false, writes = false;
		bool other;
		char what[200];

		CHECK(i < n);
		op = &B->plan[w][i];
		c = &rec[i];
		B->res[w][i] = (struct op_res){ .status = st, .result = c->result, .bc = bc };
		if (op->kind == OP_READ || op->kind == OP_R2R || op->kind == OP_MOVE)
			reads = true;
		if (op->kind != OP_READ)
			writes = true;
		other = (reads && op->so != w) || (writes && op->dw != w);
		snprintf(what, sizeof(what),
			 "round %u worker %u op %u %s src w%u.r%u+%u (%s) dst w%u.r%u+%u (%s) len %u", B->round, w, i,
			 op_names[op->kind], reads ? op->so : 9, reads ? op->sr : 9, op->soff,
			 reads ? state_name(B->reg[op->so][op->sr].state) : "-", writes ? op->dw : 9,
			 writes ? op->dr : 9, op->doff, writes ? state_name(B->reg[op->dw][op->dr].state) : "-",
			 op->len);
		/* The record (in our own heap) says what the ring entry says. */
		A22_EXPECT_MSG(c->status == st && c->bytes_completed == bc, "%s: record %u/%u, ring %u/%u", what,
			       c->status, c->bytes_completed, st, bc);
		switch (op->expect) {
		case E_OK:
			A22_EXPECT_MSG(ok && bc == op->len, "%s: %s (%u), %u bytes: expected success", what,
				       iovm_status_name(st), st, bc);
			break;
		case E_FAULT:
			A22_EXPECT_MSG(st == IOVM_STATUS_PAGE_FAULT && bc == 0,
				       "%s: %s (%u), %u bytes: expected a page fault, nothing moved", what,
				       iovm_status_name(st), st, bc);
			break;
		case E_EITHER:
			A22_EXPECT_MSG((ok && bc == op->len) || (st == IOVM_STATUS_PAGE_FAULT && bc < op->len),
				       "%s: %s (%u), %u bytes: expected success or a page fault", what,
				       iovm_status_name(st), st, bc);
			break;
		}
		if (st == IOVM_STATUS_PAGE_FAULT) {
			uint64_t fa = c->fault_addr;
			bool back = op->kind == OP_MOVE; /* dst above an overlapping src: from the end */
			bool in_src = reads && fault_in(fa, reg_iova(op->so, op->sr, op->soff), bc, op->len, back);
			bool in_dst = writes && fault_in(fa, reg_iova(op->dw, op->dr, op->doff), bc, op->len, back);

			A22_EXPECT_MSG(in_src || in_dst, "%s: fault at %#llx (%s), outside the ranges after %u bytes", what,
				       (unsigned long long)fa, c->fault_access == IOVM_MAP_WRITE ? "write" : "read", bc);
		}
		if (op->kind == OP_MOVE && ok)
			A22_EXPECT_MSG(c->result == 1, "%s: an overlapping COPY upwards did not run from the end (result %u)",
				       what, c->result);
		if (op->kind == OP_READ) {
			const uint8_t *slot = s->buf.p + i * SLOT;
			const struct arena_pub *ap = &B->ar[op->so][B->reg[op->so][op->sr].arena];
			uint32_t ao = arena_off(op->so, op->sr, op->soff);
			uint32_t lim = bc <= op->len ? bc : op->len;

			for (uint32_t j = 0; j < lim; j++)
				if (slot[j] != ap->model[ao + j]) {
					uint16_t who = ap->who[ao + j];

					A22_EXPECT_MSG(0,
						       "%s: byte %u read %#x, model %#x (arena byte %u, last written by %s%d, %s, round %u)",
						       what, j, slot[j], ap->model[ao + j], ao + j, who ? "worker " : "its owner",
						       who ? (who & 7) - 1 : -1, who ? op_names[(who >> 3) & 7] : "fill",
						       who >> 6);
					break;
				}
			{
				size_t off = a22_differs(slot + lim, op->len - lim, 0xb0150000u + B->round * 64 + i, lim);

				A22_EXPECT_MSG(off == op->len - lim, "%s: %u bytes completed, but byte %zu past them written",
					       what, bc, lim + off);
			}
		}
		/* Counts: what crossed processes. */
		if (ok && other)
			atomic_fetch_add(&B->cross_ok, 1);
		if (ok && op->kind == OP_R2R && op->so != w && op->dw != w && op->so != op->dw)
			atomic_fetch_add(&B->other_r2r_ok, 1);
		if (ok && op->kind == OP_MOVE && op->so != w)
			atomic_fetch_add(&B->move_ok, 1);
		if (op->expect == E_FAULT && st == IOVM_STATUS_PAGE_FAULT) {
			bool dead = (reads && B->reg[op->so][op->sr].state == RS_DEAD) ||
				    (writes && B->reg[op->dw][op->dr].state == RS_DEAD);

			atomic_fetch_add(dead ? &B->dead_faults : &B->stale_faults, 1);
		}
		if (op->expect == E_EITHER) {
			bool dying = (reads && B->reg[op->so][op->sr].state == RS_DYING) ||
				     (writes && B->reg[op->dw][op->dr].state == RS_DYING);

			if (dying)
				atomic_fetch_add(ok ? &B->dying_ok : &B->dying_fault, 1);
			else
				atomic_fetch_add(ok ? &B->odremap_ok : &B->odremap_fault, 1);
		}
	}
}

static void worker_check(struct wstate *s)
{
	for (unsigned a = 0; a < NA; a++) {
		struct arena_pub *ap = &B->ar[s->id][a];

		if (!ap->present)
			continue;
		for (uint32_t j = 0; j < ap->len; j++) {
			if (ap->altv[j]) {
				/* Written, or not yet, by a descriptor of a process killed in flight: its bytes from now on. */
				A22_EXPECT_MSG(s->arena[a][j] == ap->model[j] || s->arena[a][j] == ap->alt[j],
					       "after round %u: owner %u arena %u byte %u is %#x: neither what it was (%#x) nor what a killed writer's descriptor wrote (%#x)",
					       B->round, s->id, a, j, s->arena[a][j], ap->model[j], ap->alt[j]);
				ap->model[j] = s->arena[a][j];
				ap->altv[j] = 0;
				continue;
			}
			if (s->arena[a][j] != ap->model[j]) {
				uint16_t who = ap->who[j];
				int in = -1;

				for (unsigned r = 0; r < NR; r++)
					if (B->reg[s->id][r].arena == a && j >= B->reg[s->id][r].base &&
					    j < B->reg[s->id][r].base + B->reg[s->id][r].len)
						in = (int)r;
				A22_EXPECT_MSG(0,
					       "after round %u: owner %u arena %u byte %u (region %d) is %#x, model %#x (last written by %s%d, %s, round %u)",
					       B->round, s->id, a, j, in, s->arena[a][j], ap->model[j],
					       who ? "worker " : "its owner", who ? (who & 7) - 1 : -1,
					       who ? op_names[(who >> 3) & 7] : "fill", who >> 6);
				break;
			}
		}
		atomic_fetch_add(&B->bytes_checked, ap->len);
	}
}

/*
 * munmap() the arena's pages (A1 or A2); with @remap, mmap() new memory
 * at the same address; with @query, then ask iovm_mr_query() of the
 * regions there: none of their pages is valid (reg.h: once the call
 * returned, no iovm_mr_query() calls what it took away valid).
 */
static void worker_replace(struct wstate *s, unsigned a, bool remap, bool query)
{
	struct arena_pub *ap = &B->ar[s->id][a];

	CHECK(a == 1 || a == 2);
	CHECK_OK(munmap(s->arena[a], ap->len));
	ap->present = 0;
	for (unsigned r = 0; query && r < NR; r++) {
		struct iovm_mr_info info;

		if (B->reg[s->id][r].arena != a || !s->mr[r])
			continue;
		CHECK_OK(iovm_mr_query(s->mr[r], &info));
		A22_EXPECT_MSG(info.valid_pages == 0 && (info.on_demand || !info.valid),
			       "worker %u region %u (%s): after munmap() returned, %llu of %llu pages valid (valid %d)",
			       s->id, r, info.on_demand ? "on demand" : "pinned", (unsigned long long)info.valid_pages,
			       (unsigned long long)info.pages, info.valid);
	}
	if (remap) {
		void *p = mmap(s->arena[a], ap->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
			       -1, 0);

		CHECK(p == s->arena[a]);
		publish_arena(s, a);
	}
}

static void worker_exit(struct wstate *s)
{
	struct iovm_reg_stats rs;

	CHECK_OK(iovm_reg_stats(s->ctx, &rs));
	atomic_fetch_add(&B->odp_faults, rs.odp_faults);
	atomic_fetch_add(&B->odp_evicted, rs.odp_evicted_bytes);
	for (unsigned r = 0; r < NR; r++)
		if (s->mr[r])
			CHECK_OK(iovm_mr_dereg(s->mr[r]));
	a22_oracle_clean(s->dom);
	sdom_wq_close(&s->q);
	sdom_buf_close(s->ctx, s->dom, &s->buf);
	CHECK_OK(iovm_domain_destroy(s->dom));
	CHECK_OK(iovm_close(s->ctx));
	free(s->arena[0]);
	free(s->arena[3]);
	CHECK_OK(munmap(s->arena[1], A1_LEN));
	CHECK_OK(munmap(s->big, BIG_LEN));
}

static void worker(int rd, int wr, void *arg)
{
	struct wstate s = { .id = (unsigned)(uintptr_t)arg };
	unsigned total = 0;

	a22_watchdog(120);
	for (;;) {
		uint64_t cmd = get64(rd);
		unsigned a = (unsigned)(cmd >> 8) & 0xff, b = (unsigned)(cmd >> 16) & 0xff;
		unsigned before = atomic_load(&a22_broken);

		switch (cmd & 0xff) {
		case C_SETUP:
			worker_setup(&s);
			break;
		case C_ROUND: /* a: churn */
			worker_round(&s, a != 0);
			break;
		case C_CHECK:
			worker_check(&s);
			break;
		case C_DEREG: /* region a */
			CHECK_OK(iovm_mr_dereg(s.mr[a]));
			s.mr[a] = NULL;
			break;
		case C_REG: /* region a */
			reg_region(&s, a);
			break;
		case C_NEWMALLOC: /* arena a (0 or 3), its regions deregistered: free, malloc anew of b * 16 bytes more */
			CHECK(a == 0 || a == 3);
			free(s.arena[a]);
			B->ar[s.id][a].len += 16 * b;
			CHECK(B->ar[s.id][a].len <= AMAX);
			s.arena[a] = malloc(B->ar[s.id][a].len);
			CHECK(s.arena[a]);
			publish_arena(&s, a);
			if (a == 3)
				B->reg[s.id][3].len = B->ar[s.id][3].len;
			break;
		case C_REPLACE: /* arena a; b: 1 remap, 2 query */
			worker_replace(&s, a, b & 1, b & 2);
			break;
		case C_REMAP: { /* arena a, absent: new memory at its address */
			void *p = mmap(s.arena[a], B->ar[s.id][a].len, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

			CHECK(p == s.arena[a]);
			publish_arena(&s, a);
			break;
		}
		case C_EXIT:
			worker_exit(&s);
			break;
		default:
			CHECK_MSG(0, "unknown command %#llx", (unsigned long long)cmd);
		}
		total += atomic_load(&a22_broken) - before;
		put64(wr, atomic_load(&a22_broken) - before);
		if ((cmd & 0xff) == C_EXIT) {
			fflush(NULL);
			_exit(total ? 1 : 0);
		}
	}
}

/* ---------------- the coordinator ---------------- */

static struct child g_w[NW];
static bool g_alive[NW];
static uint64_t g_rng;

struct ival {
	uint8_t w, a;
	uint32_t lo, hi;
	bool write;
};

static struct ival g_iv[NW * MAXOPS * 2];
static unsigned g_niv;

static bool clashes(unsigned w, unsigned a, uint32_t lo, uint32_t hi, bool write)
{
	for (unsigned k = 0; k < g_niv; k++) {
		struct ival *v = &g_iv[k];

		if (v->w == w && v->a == a && lo < v->hi && v->lo < hi && (write || v->write))
			return true;
	}
	return false;
}

static void add_ival(unsigned w, unsigned a, uint32_t lo, uint32_t hi, bool write)
{
	g_iv[g_niv++] = (struct ival){ .w = (uint8_t)w, .a = (uint8_t)a, .lo = lo, .hi = hi, .write = write };
}

static uint32_t rnd(uint32_t n)
{
	return n ? (uint32_t)(test_rand(&g_rng) % n) : 0;
}

static uint8_t expect_of(unsigned st)
{
	switch (st) {
	case RS_LIVE:
		return E_OK;
	case RS_STALE:
	case RS_DEAD:
		return E_FAULT;
	default:
		return E_EITHER;
	}
}

static uint8_t combine(uint8_t a, uint8_t b)
{
	if (a == E_FAULT || b == E_FAULT)
		return E_FAULT;
	if (a == E_EITHER || b == E_EITHER)
		return E_EITHER;
	return E_OK;
}

/* A region to reach from worker @w: mostly another process's. */
static bool pick_region(unsigned w, bool for_write, unsigned *ow, unsigned *orr)
{
	for (unsigned tries = 0; tries < 50; tries++) {
		unsigned o = rnd(8) == 0 ? w : rnd(NW), r = rnd(NR);
		unsigned st = B->reg[o][r].state;

		if (st == RS_NONE || (for_write && st == RS_ODREMAP))
			continue;
		*ow = o;
		*orr = r;
		return true;
	}
	return false;
}

static uint32_t pick_len(uint32_t L)
{
	uint32_t max = L < MAXLEN ? L : MAXLEN;

	if (rnd(5) == 0)
		return 1 + rnd(max < 16 ? max : 16);
	return 1 + rnd(max);
}

static void plan_round(unsigned round, int skip)
{
	g_niv = 0;
	for (unsigned w = 0; w < NW; w++) {
		unsigned n = 0, want = 12 + rnd(MAXOPS - 11);

		B->nops[w] = 0;
		if (!g_alive[w] || (int)w == skip)
			continue;
		/* First, reads of other processes' regions in a state of their own (replaced, dying, stale), if any. */
		for (unsigned o = 0; o < NW; o++)
			for (unsigned r = 0; r < NR; r++) {
				struct region_pub *rp = &B->reg[o][r];
				struct plan_op op = { .kind = OP_READ, .so = (uint8_t)o, .sr = (uint8_t)r };
				uint32_t lo;

				if (o == w || (rp->state != RS_ODREMAP && rp->state != RS_DYING && rp->state != RS_STALE) ||
				    n >= MAXOPS / 2 || rnd(2))
					continue;
				op.len = pick_len(rp->len);
				op.soff = rnd(rp->len - op.len + 1);
				lo = rp->base + op.soff;
				if (clashes(o, rp->arena, lo, lo + op.len, false))
					continue;
				add_ival(o, rp->arena, lo, lo + op.len, false);
				op.expect = expect_of(rp->state);
				B->plan[w][n++] = op;
			}
		for (unsigned tries = 0; n < want && tries < 400; tries++) {
			struct plan_op op = { .kind = (uint8_t)rnd(100) };
			unsigned so = 0, sr = 0, dw = 0, dr = 0;

			op.kind = op.kind < 34 ? OP_READ : op.kind < 56 ? OP_WRITE : op.kind < 66 ? OP_FILL :
				  op.kind < 90 ? OP_R2R : OP_MOVE;
			if (op.kind == OP_READ || op.kind == OP_R2R) {
				if (!pick_region(w, false, &so, &sr))
					continue;
			}
			if (op.kind != OP_READ) {
				if (!pick_region(w, true, &dw, &dr))
					continue;
			}
			/* Copies between two other processes, mostly. */
			if (op.kind == OP_R2R && (so == w || dw == w || so == dw) && rnd(4) != 0)
				continue;
			if (op.kind == OP_MOVE) {
				uint32_t L = B->reg[dw][dr].len, d;

				so = dw, sr = dr;
				if (L < 3)
					continue;
				op.len = 2 + rnd((L - 1 < MAXLEN ? L - 1 : MAXLEN) - 1); /* 2 .. L-1 */
				d = 1 + rnd(op.len - 1);                                  /* overlap: d < len */
				if (op.len + d > L)
					continue;
				op.soff = rnd(L - op.len - d + 1);
				op.doff = op.soff + d;
			} else {
				uint32_t L = UINT32_MAX;

				if (op.kind == OP_READ || op.kind == OP_R2R)
					L = B->reg[so][sr].len;
				if (op.kind != OP_READ && B->reg[dw][dr].len < L)
					L = B->reg[dw][dr].len;
				op.len = pick_len(L);
				if (op.kind == OP_READ || op.kind == OP_R2R)
					op.soff = rnd(B->reg[so][sr].len - op.len + 1);
				if (op.kind != OP_READ)
					op.doff = rnd(B->reg[dw][dr].len - op.len + 1);
			}
			op.so = (uint8_t)so, op.sr = (uint8_t)sr, op.dw = (uint8_t)dw, op.dr = (uint8_t)dr;
			/* Nothing another descriptor writes is read or written by this one, and the other way. */
			{
				bool rd = op.kind == OP_READ || op.kind == OP_R2R || op.kind == OP_MOVE;
				bool wrt = op.kind != OP_READ;
				unsigned sa = B->reg[so][sr].arena, da = B->reg[dw][dr].arena;
				uint32_t slo = B->reg[so][sr].base + op.soff, dlo = B->reg[dw][dr].base + op.doff;

				if (rd && clashes(so, sa, slo, slo + op.len, false))
					continue;
				if (wrt && clashes(dw, da, dlo, dlo + op.len, true))
					continue;
				/* One descriptor's source and destination apart, but a MOVE's. */
				if (rd && wrt && op.kind != OP_MOVE && so == dw && sa == da && slo < dlo + op.len &&
				    dlo < slo + op.len)
					continue;
				if (rd)
					add_ival(so, sa, slo, slo + op.len, false);
				if (wrt)
					add_ival(dw, da, dlo, dlo + op.len, true);
				op.expect = E_OK;
				if (rd)
					op.expect = combine(op.expect, expect_of(B->reg[so][sr].state));
				if (wrt)
					op.expect = combine(op.expect, expect_of(B->reg[dw][dr].state));
			}
			op.seed = op.kind == OP_FILL ? rnd(256) : ((uint64_t)round << 40 | (uint64_t)w << 32 | n);
			B->plan[w][n++] = op;
		}
		B->nops[w] = n;
	}
}

/* What the round did, in the model: what each descriptor reports done, where its owner lives. */
static void apply_round(unsigned round, int busy_victim)
{
	static uint8_t src_copy[MAXLEN], newv[MAXLEN];

	for (unsigned w = 0; w < NW; w++)
		for (unsigned i = 0; i < B->nops[w]; i++) {
			struct plan_op *op = &B->plan[w][i];
			struct op_res *res = &B->res[w][i];
			struct region_pub *drp = &B->reg[op->dw][op->dr];
			struct arena_pub *dap;
			uint32_t bc = res->bc < op->len ? res->bc : op->len;
			uint32_t dlo;
			uint16_t who = (uint16_t)((w + 1) | (unsigned)op->kind << 3 | round << 6);

			if (op->kind == OP_READ || drp->state != RS_LIVE)
				continue;
			dap = &B->ar[op->dw][drp->arena];
			dlo = drp->base + op->doff;
			if ((int)w == busy_victim) {
				/* Killed with it in flight: each byte what it was, or what the descriptor writes. */
				const uint8_t *src = NULL;

				if (op->kind == OP_R2R || op->kind == OP_MOVE)
					src = B->ar[op->so][B->reg[op->so][op->sr].arena].model + B->reg[op->so][op->sr].base +
					      op->soff;
				for (uint32_t j = 0; j < op->len; j++)
					newv[j] = op->kind == OP_WRITE ? a22_pat(op->seed, j) :
						  op->kind == OP_FILL  ? (uint8_t)op->seed :
									 src[j];
				for (uint32_t j = 0; j < op->len; j++) {
					dap->alt[dlo + j] = newv[j];
					dap->altv[dlo + j] = 1;
				}
				continue;
			}
			switch (op->kind) {
			case OP_WRITE:
				for (uint32_t j = 0; j < bc; j++)
					dap->model[dlo + j] = a22_pat(op->seed, j);
				break;
			case OP_FILL:
				memset(dap->model + dlo, (uint8_t)op->seed, bc);
				break;
			case OP_R2R: {
				struct region_pub *srp = &B->reg[op->so][op->sr];

				memcpy(src_copy, B->ar[op->so][srp->arena].model + srp->base + op->soff, bc);
				memcpy(dap->model + dlo, src_copy, bc);
				break;
			}
			case OP_MOVE:
				/* Run from the end: its last bc bytes are done. */
				memmove(dap->model + dlo + (op->len - bc), dap->model + drp->base + op->soff + (op->len - bc),
					bc);
				break;
			}
			for (uint32_t j = 0; j < bc; j++)
				dap->who[dlo + (op->kind == OP_MOVE ? op->len - bc : 0) + j] = who;
		}
}

static void send_all(uint64_t cmd)
{
	unsigned broken = 0;

	for (unsigned w = 0; w < NW; w++)
		if (g_alive[w])
			put64(g_w[w].wr, cmd);
	for (unsigned w = 0; w < NW; w++)
		if (g_alive[w])
			broken += (unsigned)get64(g_w[w].rd);
	A22_EXPECT_MSG(broken == 0, "command %#llx: %u broken promise(s) in the workers, see above",
		       (unsigned long long)cmd, broken);
}

static void send_one(unsigned w, uint64_t cmd)
{
	uint64_t broken;

	CHECK(g_alive[w]);
	put64(g_w[w].wr, cmd);
	broken = get64(g_w[w].rd);
	A22_EXPECT_MSG(broken == 0, "command %#llx to worker %u: %llu broken promise(s), see above",
		       (unsigned long long)cmd, w, (unsigned long long)broken);
}

/*
 * A round: plan, run, model, check. @victim >= 0: killed while the others
 * run, idle (its engine serving them) or, with @busy, its own descriptors
 * in flight too.
 */
static bool g_churn;

static void round_run(unsigned round, int victim, bool busy)
{
	unsigned nops = 0, broken = 0;

	B->round = round;
	if (victim >= 0)
		for (unsigned r = 0; r < NR; r++)
			if (B->reg[victim][r].state != RS_NONE)
				B->reg[victim][r].state = RS_DYING;
	plan_round(round, busy ? -1 : victim);
	for (unsigned w = 0; w < NW; w++)
		nops += B->nops[w];
	for (unsigned w = 0; w < NW; w++)
		if (g_alive[w] && (busy || (int)w != victim))
			put64(g_w[w].wr, CMD(C_ROUND, g_churn, 0));
	if (victim >= 0) {
		/* Kill it while the others' descriptors reach its memory (its engine serves them). */
		usleep(200 + rnd(3000));
		CHECK_OK(kill(g_w[victim].pid, SIGKILL));
		CHECK_EQ(child_wait(&g_w[victim]), -SIGKILL);
		g_alive[victim] = false;
	}
	for (unsigned w = 0; w < NW; w++)
		if (g_alive[w])
			broken += (unsigned)get64(g_w[w].rd);
	A22_EXPECT_MSG(broken == 0, "round %u: %u broken promise(s) in the workers, see above", round, broken);
	if (victim >= 0)
		for (unsigned r = 0; r < NR; r++)
			if (B->reg[victim][r].state != RS_NONE)
				B->reg[victim][r].state = RS_DEAD;
	apply_round(round, busy ? victim : -1);
	send_all(CMD(C_CHECK, 0, 0));
	printf("# round %u: %u descriptors; so far %llu crossed processes, %llu between two others, %llu stale and %llu dead faults\n",
	       round, nops, (unsigned long long)atomic_load(&B->cross_ok), (unsigned long long)atomic_load(&B->other_r2r_ok),
	       (unsigned long long)atomic_load(&B->stale_faults), (unsigned long long)atomic_load(&B->dead_faults));
}

static void normal_rounds(unsigned *round, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		round_run((*round)++, -1, false);
}

static void dereg(unsigned w, unsigned r)
{
	send_one(w, CMD(C_DEREG, r, 0));
	B->reg[w][r].state = RS_STALE;
}

static void reg(unsigned w, unsigned r)
{
	send_one(w, CMD(C_REG, r, 0));
	B->reg[w][r].state = RS_LIVE;
	B->reg[w][r].lazy = 0;
}

static void scenario(bool deferred)
{
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	struct iovm_share_domain_params dp = { .flags = deferred ? IOVM_DOMAIN_DEFERRED : 0 };
	unsigned round = 0;
	const char *seed_env = getenv("IOVM_ATTACK22_SEED");
	int victim, victim2;

	g_rng = (seed_env ? strtoull(seed_env, NULL, 0) : UINT64_C(0x22a22a22)) + deferred;
	if (!g_rng)
		g_rng = 1;
	printf("# seed %#llx (IOVM_ATTACK22_SEED, +1 for the deferred domain)\n", (unsigned long long)g_rng);
	B = mmap(NULL, sizeof(*B), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(B != MAP_FAILED);
	g_name = share_name("a22-all");
	/* The workers first: nothing of iovm runs yet, no thread to inherit. */
	for (unsigned w = 0; w < NW; w++) {
		g_w[w] = child_start(worker, (void *)(uintptr_t)w);
		g_alive[w] = true;
	}
	ctx = share_ok(g_name, HEAP);
	CHECK_OK(iovm_share_domain_create(ctx, DOM, &dp, &dom));
	send_all(CMD(C_SETUP, 0, 0));
	for (unsigned w = 0; w < NW; w++)
		for (unsigned r = 0; r < NR; r++)
			B->reg[w][r].state = RS_LIVE;

	normal_rounds(&round, 4);

	/* Deregistered: the old IOVAs fault (nothing registers meanwhile). */
	dereg(0, 0); /* malloc(), pinned */
	dereg(1, 3); /* malloc(), on demand */
	dereg(2, 2); /* across 2 MiB, pinned */
	dereg(3, 1); /* mmap(), on demand, under a pinned one */
	round_run(round++, -1, false);
	reg(0, 0);                            /* the same memory */
	send_one(1, CMD(C_NEWMALLOC, 3, 21)); /* new memory, a new length */
	reg(1, 3);
	reg(2, 2);
	reg(3, 1);
	normal_rounds(&round, 3);

	/*
	 * Memory replaced under live registrations: 0 and 1 munmap() A1 and
	 * mmap() new memory there (R4 pinned: faults, nothing lands; R1 on
	 * demand: the new bytes or a fault); 2 and 3 munmap() A2 and leave a
	 * hole (R2: faults).
	 */
	for (unsigned w = 0; w < 2; w++) {
		send_one(w, CMD(C_REPLACE, 1, 1 | (w == 0 ? 2 : 0)));
		B->reg[w][4].state = RS_STALE;
		B->reg[w][4].lazy = w != 0;
		B->reg[w][1].state = RS_ODREMAP;
	}
	for (unsigned w = 2; w < 4; w++) {
		send_one(w, CMD(C_REPLACE, 2, w == 2 ? 2 : 0));
		B->reg[w][2].state = RS_STALE;
		B->reg[w][2].lazy = w != 2;
	}
	round_run(round++, -1, false);
	for (unsigned w = 0; w < 2; w++) {
		dereg(w, 1);
		dereg(w, 4);
		reg(w, 1);
		reg(w, 4);
	}
	for (unsigned w = 2; w < 4; w++) {
		dereg(w, 2);
		send_one(w, CMD(C_REMAP, 2, 0));
		reg(w, 2);
	}
	normal_rounds(&round, 2);
	/* Owners churn registered memory beside what the others reach: those accesses still succeed, exact. */
	g_churn = true;
	normal_rounds(&round, 4);
	g_churn = false;

	/* One dies, idle, while the others reach its memory; then its regions fault, the rest stays exact. */
	victim = (int)rnd(NW);
	printf("# worker %d is killed in round %u, its engine serving the others\n", victim, round);
	round_run(round++, victim, false);
	normal_rounds(&round, 3);

	/* The survivors deregister and register again after the death. */
	for (unsigned w = 0; w < NW; w++)
		if (g_alive[w])
			dereg(w, (w + round) % NR);
	round_run(round++, -1, false);
	for (unsigned w = 0; w < NW; w++)
		if (g_alive[w]) {
			unsigned r = (w + round - 1) % NR;

			if (r == 0 || r == 3)
				send_one(w, CMD(C_NEWMALLOC, B->reg[w][r].arena, 5));
			reg(w, r);
		}
	g_churn = true;
	normal_rounds(&round, 3);
	g_churn = false;

	/* Another dies with its own descriptors in flight: what it wrote is each byte old or new, nothing else. */
	do
		victim2 = (int)rnd(NW);
	while (!g_alive[victim2]);
	printf("# worker %d is killed in round %u, its descriptors in flight\n", victim2, round);
	round_run(round++, victim2, true);
	normal_rounds(&round, 3);

	/* Any process may unmap a dead process's entries (mp.h). */
	for (int v = 0; v < 2; v++) {
		int dead = v ? victim2 : victim;

		for (unsigned r = 0; r < NR; r++) {
			struct region_pub *rp = &B->reg[dead][r];
			uint64_t lo = rp->iova & ~(A22_K4 - 1), hi = (rp->iova + rp->len + A22_K4 - 1) & ~(A22_K4 - 1);
			int ret = iovm_domain_unmap(dom, IOVM_IOVA(lo), hi - lo);

			A22_EXPECT_MSG(ret == 0 || (rp->od && ret == -ENOENT),
				       "unmap of dead worker %d's region %u (%s): %d", dead, r, rp->od ? "on demand" : "pinned",
				       ret);
			rp->state = RS_NONE;
		}
	}
	normal_rounds(&round, 2);

	send_all(CMD(C_EXIT, 0, 0));
	for (unsigned w = 0; w < NW; w++)
		if (g_alive[w])
			child_ok(&g_w[w]);

	printf("# %llu descriptors crossed processes with success (%llu between two others, %llu overlapping moves), "
	       "%llu stale and %llu dead faults, while dying %llu ok / %llu faults, on demand remapped %llu ok / %llu "
	       "faults, %llu translations (%llu of munmap()ped memory still there), %llu bytes checked by owners, "
	       "%llu churns; survivors answered %llu page requests and evicted %llu bytes\n",
	       (unsigned long long)B->cross_ok, (unsigned long long)B->other_r2r_ok, (unsigned long long)B->move_ok,
	       (unsigned long long)B->stale_faults, (unsigned long long)B->dead_faults, (unsigned long long)B->dying_ok,
	       (unsigned long long)B->dying_fault, (unsigned long long)B->odremap_ok,
	       (unsigned long long)B->odremap_fault, (unsigned long long)B->translated, (unsigned long long)B->lazy_seen,
	       (unsigned long long)B->bytes_checked, (unsigned long long)B->churns, (unsigned long long)B->odp_faults,
	       (unsigned long long)B->odp_evicted);
	/* Not vacuous: it crossed processes, and every kind of fault was met. */
	CHECK(B->cross_ok >= 300);
	CHECK(B->other_r2r_ok >= 30);
	CHECK(B->move_ok >= 5);
	CHECK(B->stale_faults >= 10);
	CHECK(B->dead_faults >= 10);
	CHECK(B->dying_ok + B->dying_fault >= 3);
	CHECK(B->odremap_ok + B->odremap_fault >= 2);
	CHECK(B->translated >= 100);
	CHECK(B->bytes_checked >= 500000);
	CHECK(B->churns >= 20);
	CHECK(B->odp_faults >= 50);
	CHECK(B->odp_evicted >= 10 * 65536);
	a22_oracle_clean(dom);
	CHECK_OK(iovm_domain_destroy(dom));
	{
		int r = iovm_share_check(ctx);

		A22_EXPECT_MSG(r == 0, "iovm_share_check: %d: %s", r, iovm_error_detail());
	}
	CHECK_OK(iovm_close(ctx));
	CHECK_OK(munmap(B, sizeof(*B)));
}

TEST(everyone_reaches_everyone)
{
	scenario(false);
}

/*
 * The same in a deferred shared domain: iovm_mr_dereg() still returns once
 * no device can reach the memory (reg.h), and an munmap() still takes the
 * pages out of the shared table strictly (mp.h).
 */
TEST(everyone_reaches_everyone_deferred)
{
	scenario(true);
}

int main(void)
{
	test_init();
	signal(SIGPIPE, SIG_IGN);
	a22_watchdog(150);
	RUN(everyone_reaches_everyone);
	RUN(everyone_reaches_everyone_deferred);
	return a22_status();
}
