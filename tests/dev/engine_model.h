/* SPDX-License-Identifier: MIT */
/*
 * engine_model.h - a reference model of the software DMA engine, for the
 * model-based test (test_engine_model.c) and the descriptor-stream fuzzer
 * (tests/fuzz/fuzz_engine.c); engine_model_rig.h runs the real engine
 * beside it, engine_model_gen.h makes the descriptors.
 *
 * The model keeps a byte-exact shadow of every byte a descriptor could
 * reach (a window of pages at fixed IOVAs in a VA domain, each unmapped,
 * read-only, write-only or read-write, with a canary page either side;
 * the application's memory behind three registrations; the page of
 * completion records) and of the domain's mappings. For a descriptor it
 * predicts, from dev.h's rules alone run byte for byte on the shadow,
 * the completion (status, bytes, fault, CRC, compare result), the faults
 * the domain and the device record, and the pages a blocking
 * descriptor's fault handler maps; then the engine runs the descriptor,
 * and every byte and every field must agree.
 *
 * What the model follows, as dev.h states it: a descriptor's keys are all
 * checked before a byte moves; bytes move in order (COPY with dst above
 * an overlapping src: from the end, as memmove); a fault stops the
 * descriptor where the first byte it cannot reach is, with every byte
 * before it done; a blocking descriptor's handler is asked at most 16
 * times. Where dev.h leaves the order open (which of two sides that both
 * fault at one place is reported), the model takes the engine's: the
 * sides in the order src, dst, dst2 (a list's contiguous side before its
 * entry), the memory translated a page at a time.
 */
#ifndef IOVM_TESTS_ENGINE_MODEL_H
#define IOVM_TESTS_ENGINE_MODEL_H

#include <stdarg.h>
#include <stdio.h>
#include <sys/mman.h>

#include "dev/crc32c_ref.h"
#include "dev/dev_util.h"

#define EM_PG 4096u
#define EM_PAGES 24                     /* the window */
#define EM_WIN UINT64_C(0x40000000)     /* its IOVA */
#define EM_REC UINT64_C(0x50000000)     /* the records page's IOVA */
#define EM_WILD UINT64_C(0x60000000)    /* nothing is ever mapped here */
#define EM_APP_PAGES 12                 /* the application's memory, 3 MRs of 4 pages */
#define EM_NR_MR 3
#define EM_PASID 1u                     /* the data domain (at PASID 0 too) */
#define EM_BAD_PASID 2u                 /* never attached */
#define EM_MAX_FAULTS 4096
#define EM_RETRIES 16                   /* handler calls per descriptor, as the engine's */
#define EM_MAX_SG 4096
#define EM_MAX_BATCH 1024

struct em_mr {
	struct iovm_mr *mr;
	uint32_t lkey, rkey, access;
	uint64_t addr, len;
};

struct em {
	struct rig r;              /* context, the data domain, the device, a polled queue */
	struct iovm_domain *dom;   /* the data domain: a VA domain following the heap, at PASID 0 and EM_PASID */
	struct iovm_domain *other; /* another domain, for a key that is not the data domain's */
	uint8_t *back, *back_sh;   /* the window's memory and its shadow: canary, EM_PAGES, canary */
	iovm_pa_t back_pa;
	uint8_t perm[EM_PAGES];    /* model: IOVM_MAP_* of each window page, 0: unmapped */
	bool resolvable[EM_PAGES]; /* the handler maps it (read-write) on a not-present fault */
	uint8_t *app, *app_sh;     /* guard page, EM_APP_PAGES, guard page */
	struct em_mr mr[EM_NR_MR];
	uint32_t stale_key, foreign_key;
	struct iovm_mr *foreign;   /* an MR of the other domain */
	uint8_t *rec, *rec_sh;     /* the records page, its shadow */
	/* What the model predicts for the descriptor under way, and what the engine did. */
	struct iovm_fault pf[EM_MAX_FAULTS], df[EM_MAX_FAULTS];
	unsigned npf, ndf;
	uint64_t res_pred[EM_MAX_FAULTS], res_real[EM_MAX_FAULTS];
	unsigned nres_pred, nres_real;
	bool unmodeled;            /* the descriptor reached heap memory the model does not shadow */
	char why[512];             /* the first disagreement */
};

/* The PASIDs the data domain answers. */
static inline bool em_attached(uint32_t pasid)
{
	return pasid == IOVM_PASID_NONE || pasid == EM_PASID;
}

/* ---- the domain's mappings, as the model sees them ---- */

/* The shadow byte at @iova, and whether the domain maps it with @access; NULL when unmapped. */
static inline uint8_t *em_shadow(struct em *m, uint64_t iova, unsigned *perm)
{
	if (iova >= EM_WIN && iova < EM_WIN + EM_PAGES * EM_PG) {
		unsigned i = (unsigned)((iova - EM_WIN) / EM_PG);

		*perm = m->perm[i];
		return m->perm[i] ? m->back_sh + EM_PG + (iova - EM_WIN) : NULL;
	}
	if (iova >= EM_REC && iova < EM_REC + EM_PG) {
		*perm = IOVM_MAP_READ | IOVM_MAP_WRITE;
		return m->rec_sh + (iova - EM_REC);
	}
	/* A VA domain maps a registration at its addresses. */
	for (unsigned i = 0; i < EM_NR_MR; i++)
		if (iova >= m->mr[i].addr && iova < m->mr[i].addr + m->mr[i].len) {
			*perm = IOVM_MAP_READ |
				(m->mr[i].access & (IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_REMOTE_WRITE) ? IOVM_MAP_WRITE : 0);
			return m->app_sh + (iova - (uint64_t)(uintptr_t)m->app);
		}
	/*
	 * The heap, mapped at its addresses (the rings, the window's memory
	 * seen a second way): no descriptor of the model's aims there, but
	 * garbage read as a descriptor may. Then the step proves nothing.
	 */
	{
		iovm_pa_t pa;
		uint32_t p;

		if (!iovm_domain_translate(m->dom, IOVM_IOVA(iova & ~(uint64_t)(EM_PG - 1)), &pa, &p))
			m->unmodeled = true;
	}
	*perm = 0;
	return NULL;
}

/* ---- one descriptor's execution, in the model ---- */

struct em_side {
	uint64_t addr;   /* IOVA, or with a key the application's address */
	uint32_t key;
	unsigned access;
	uint64_t avail;  /* bytes translated at addr; 0: translate again */
	uint8_t *sh;     /* the shadow at addr */
};

struct em_exec {
	struct em *m;
	const struct iovm_desc *d;
	struct iovm_completion *c;
	struct em_side *sides[3];
	unsigned nr_sides, retries;
};

static inline void em_fault_record(struct em *m, uint32_t pasid, uint64_t iova, unsigned access, unsigned reason)
{
	struct iovm_fault f = { .iova = IOVM_IOVA(iova), .pasid = pasid, .access = access,
				.reason = (enum iovm_fault_reason)reason };

	if (reason == IOVM_FAULT_NO_DOMAIN) {
		if (m->ndf < EM_MAX_FAULTS)
			m->df[m->ndf++] = f;
	} else if (m->npf < EM_MAX_FAULTS) {
		m->pf[m->npf++] = f;
	}
}

/* The MR @key names in the data domain, and whether it is a remote key; NULL for any other. */
static inline struct em_mr *em_key(struct em *m, uint32_t key, bool *remote)
{
	for (unsigned i = 0; i < EM_NR_MR; i++) {
		if (key == m->mr[i].lkey || key == m->mr[i].rkey) {
			*remote = key == m->mr[i].rkey;
			return &m->mr[i];
		}
	}
	return NULL;
}

/* dev.h's key rule for one range: 0, or the descriptor completes IOVM_STATUS_KEY. */
static inline int em_key_check(struct em_exec *x, uint32_t key, uint64_t va, uint64_t len, unsigned access)
{
	bool remote = false;
	struct em_mr *mr;
	uint32_t need;

	if (!(x->d->flags & IOVM_DESC_KEYED) || !key)
		return 0;
	mr = em_attached(x->d->pasid) ? em_key(x->m, key, &remote) : NULL;
	if (mr) {
		if (access & IOVM_MAP_WRITE)
			need = remote ? IOVM_ACCESS_REMOTE_WRITE : IOVM_ACCESS_LOCAL_WRITE;
		else
			need = remote ? IOVM_ACCESS_REMOTE_READ : IOVM_ACCESS_LOCAL_READ;
		if ((mr->access | IOVM_ACCESS_LOCAL_READ) & need && va + len >= va && va >= mr->addr &&
		    va + len <= mr->addr + mr->len)
			return 0;
	}
	x->c->status = IOVM_STATUS_KEY;
	return -1;
}

static inline void em_side_init(struct em_exec *x, struct em_side *s, uint32_t key, uint64_t addr, unsigned access)
{
	*s = (struct em_side){ .addr = addr, .access = access,
			       .key = (x->d->flags & IOVM_DESC_KEYED) ? key : 0 };
	x->sides[x->nr_sides++] = s;
}

static inline void em_forget(struct em_exec *x)
{
	for (unsigned i = 0; i < x->nr_sides; i++)
		x->sides[i]->avail = 0;
}

static inline void em_fault_complete(struct em_exec *x, uint64_t iova, unsigned access, unsigned reason)
{
	x->c->status = IOVM_STATUS_PAGE_FAULT;
	x->c->fault_addr = iova;
	x->c->fault_access = (uint8_t)access;
	x->c->fault_reason = (uint8_t)reason;
}

/*
 * Translate one side at its address, a page at a time: a fault is
 * recorded, then (blocking, within the retries) put to the handler, which
 * maps a resolvable window page read-write. -1 when the descriptor stops.
 */
static inline int em_translate(struct em_exec *x, struct em_side *s)
{
	struct em *m = x->m;

	for (;;) {
		unsigned perm = 0, reason;
		uint8_t *sh = em_attached(x->d->pasid) ? em_shadow(m, s->addr, &perm) : NULL;

		if (sh && (perm & s->access) == s->access) {
			s->sh = sh;
			s->avail = EM_PG - (s->addr & (EM_PG - 1));
			return 0;
		}
		reason = !em_attached(x->d->pasid) ? IOVM_FAULT_NO_DOMAIN
			 : sh			 ? IOVM_FAULT_PERMISSION
						 : IOVM_FAULT_NOT_PRESENT;
		em_fault_record(m, x->d->pasid, s->addr, s->access, reason);
		if (!(x->d->flags & IOVM_DESC_BLOCK_ON_FAULT) || x->retries >= EM_RETRIES) {
			em_fault_complete(x, s->addr, s->access, reason);
			return -1;
		}
		x->retries++;
		if (reason == IOVM_FAULT_NOT_PRESENT && s->addr >= EM_WIN && s->addr < EM_WIN + EM_PAGES * EM_PG &&
		    m->resolvable[(s->addr - EM_WIN) / EM_PG]) {
			m->perm[(s->addr - EM_WIN) / EM_PG] = IOVM_MAP_READ | IOVM_MAP_WRITE;
			if (m->nres_pred < EM_MAX_FAULTS)
				m->res_pred[m->nres_pred++] = s->addr & ~(uint64_t)(EM_PG - 1);
			em_forget(x);
			continue;
		}
		em_fault_complete(x, s->addr, s->access, reason);
		return -1;
	}
}

/* The next stretch all sides can take (at most @left): each translated, in order. */
static inline int em_stretch(struct em_exec *x, uint64_t left, uint64_t *n)
{
	unsigned i = 0;

	while (i < x->nr_sides) {
		if (x->sides[i]->avail) {
			i++;
			continue;
		}
		if (em_translate(x, x->sides[i]))
			return -1;
		i = 0;
	}
	*n = left;
	for (i = 0; i < x->nr_sides; i++)
		*n = MIN(*n, x->sides[i]->avail);
	return 0;
}

static inline void em_advance(struct em_exec *x, uint64_t n)
{
	for (unsigned i = 0; i < x->nr_sides; i++) {
		x->sides[i]->addr += n;
		x->sides[i]->sh += n;
		x->sides[i]->avail -= n;
	}
}

static inline uint8_t em_pattern(uint64_t pattern, uint64_t at)
{
	return (uint8_t)(pattern >> (8 * (at % 8)));
}

/* Whether COPY runs from the end: dst above src and inside it, in one address space. */
static inline bool em_copy_down(const struct iovm_desc *d)
{
	bool keyed = d->flags & IOVM_DESC_KEYED;

	if (d->op != IOVM_OP_COPY || (keyed && !d->src_key != !d->dst_key))
		return false;
	return d->dst > d->src && d->dst - d->src < d->len;
}

/* COPY with dst above an overlapping src: a page-bounded piece at a time, from the end. */
static inline void em_copy_down_run(struct em_exec *x)
{
	const struct iovm_desc *d = x->d;
	uint64_t done = 0;

	x->c->result = 1;
	while (done < d->len) {
		uint64_t end = d->len - done;
		uint64_t n = MIN(end, MIN(((d->src + end - 1) & (EM_PG - 1)) + 1, ((d->dst + end - 1) & (EM_PG - 1)) + 1));
		struct em_side src, dst;
		uint64_t got;

		x->nr_sides = 0;
		em_side_init(x, &src, d->src_key, d->src + end - n, IOVM_MAP_READ);
		em_side_init(x, &dst, d->dst_key, d->dst + end - n, IOVM_MAP_WRITE);
		if (em_stretch(x, n, &got))
			break;
		memmove(dst.sh, src.sh, n);
		done += n;
	}
	x->c->bytes_completed = (uint32_t)done;
}

static inline void em_linear(struct em_exec *x)
{
	const struct iovm_desc *d = x->d;
	bool reads = d->op != IOVM_OP_FILL;
	bool writes = d->op == IOVM_OP_COPY || d->op == IOVM_OP_FILL || d->op == IOVM_OP_COPY_CRC ||
		      d->op == IOVM_OP_DUALCAST;
	bool has_dst = writes || d->op == IOVM_OP_COMPARE;
	bool crc_op = d->op == IOVM_OP_CRC32C || d->op == IOVM_OP_COPY_CRC;
	unsigned dst_access = d->op == IOVM_OP_COMPARE ? IOVM_MAP_READ : IOVM_MAP_WRITE;
	struct em_side src, dst, dst2;
	uint32_t crc = d->crc_seed;
	uint64_t done = 0, n;

	if (crc_op)
		x->c->crc = crc;
	if ((reads && em_key_check(x, d->src_key, d->src, d->len, IOVM_MAP_READ)) ||
	    (has_dst && em_key_check(x, d->dst_key, d->dst, d->len, dst_access)))
		return;
	if (em_copy_down(d)) {
		em_copy_down_run(x);
		goto out;
	}
	if (reads)
		em_side_init(x, &src, d->src_key, d->src, IOVM_MAP_READ);
	if (has_dst)
		em_side_init(x, &dst, d->dst_key, d->dst, dst_access);
	if (d->op == IOVM_OP_DUALCAST)
		em_side_init(x, &dst2, 0, d->dst2, IOVM_MAP_WRITE);
	while (done < d->len) {
		if (em_stretch(x, d->len - done, &n))
			break;
		switch (d->op) {
		case IOVM_OP_COPY:
			memmove(dst.sh, src.sh, n);
			break;
		case IOVM_OP_FILL:
			for (uint64_t i = 0; i < n; i++)
				dst.sh[i] = em_pattern(d->pattern, done + i);
			break;
		case IOVM_OP_COMPARE:
		case IOVM_OP_COMPARE_PATTERN:
			for (uint64_t i = 0; i < n; i++) {
				uint8_t want = d->op == IOVM_OP_COMPARE ? dst.sh[i] : em_pattern(d->pattern, done + i);

				if (src.sh[i] != want) {
					x->c->result = 1;
					x->c->mismatch = done + i;
					x->c->bytes_completed = (uint32_t)(done + i);
					return;
				}
			}
			break;
		case IOVM_OP_CRC32C:
			crc = crc32c_ref(crc, src.sh, n);
			break;
		case IOVM_OP_COPY_CRC:
			crc = crc32c_ref(crc, src.sh, n);
			memmove(dst.sh, src.sh, n);
			break;
		case IOVM_OP_DUALCAST:
			memmove(dst.sh, src.sh, n);
			memmove(dst2.sh, src.sh, n);
			break;
		}
		em_advance(x, n);
		done += n;
	}
out:
	if (!em_copy_down(d))
		x->c->bytes_completed = (uint32_t)done;
	if (crc_op)
		x->c->crc = crc;
}

/* Read @n bytes at @addr (through @key) into @buf, as a list or a batch is read. */
static inline int em_read(struct em_exec *x, uint32_t key, uint64_t addr, void *buf, uint64_t n)
{
	struct em_side s;
	uint64_t got = 0, k;

	x->nr_sides = 0;
	em_side_init(x, &s, key, addr, IOVM_MAP_READ);
	while (got < n) {
		if (em_stretch(x, n - got, &k))
			return -1;
		memcpy((uint8_t *)buf + got, s.sh, k);
		em_advance(x, k);
		got += k;
	}
	x->nr_sides = 0;
	return 0;
}

static inline void em_sg(struct em_exec *x)
{
	const struct iovm_desc *d = x->d;
	bool gather = d->op == IOVM_OP_GATHER;
	uint64_t list = gather ? d->src : d->dst, linear = gather ? d->dst : d->src, total = 0, done = 0, n;
	uint32_t list_key = gather ? d->src_key : d->dst_key, linear_key = gather ? d->dst_key : d->src_key;
	static struct iovm_sge sge[EM_MAX_SG];
	struct em_side lin, ent;

	/* Before a byte moves: the two keys, the list (its reading may fault), its entries' keys and total. */
	if (em_key_check(x, list_key, list, (uint64_t)d->sg_count * sizeof(sge[0]), IOVM_MAP_READ) ||
	    em_key_check(x, linear_key, linear, d->len, gather ? IOVM_MAP_WRITE : IOVM_MAP_READ))
		return;
	for (unsigned base = 0; base < d->sg_count; base += 64) {
		unsigned cnt = MIN(64u, d->sg_count - base);

		if (em_read(x, list_key, list + (uint64_t)base * sizeof(sge[0]), &sge[base], cnt * sizeof(sge[0])))
			return;
		for (unsigned i = base; i < base + cnt; i++) {
			total += sge[i].len;
			if (total > d->len) {
				x->c->status = IOVM_STATUS_INVALID;
				return;
			}
			if (em_key_check(x, sge[i].key, sge[i].iova, sge[i].len,
					 gather ? IOVM_MAP_READ : IOVM_MAP_WRITE))
				return;
		}
	}
	if (total != d->len) {
		x->c->status = IOVM_STATUS_INVALID;
		return;
	}
	/* The run reads the list again, 64 entries at a time, between the entries' data. */
	for (unsigned base = 0; base < d->sg_count; base += 64) {
		unsigned cnt = MIN(64u, d->sg_count - base);

		if (em_read(x, list_key, list + (uint64_t)base * sizeof(sge[0]), &sge[base], cnt * sizeof(sge[0])))
			goto out;
		for (unsigned i = base; i < base + cnt; i++) {
			uint64_t left = sge[i].len;

			x->nr_sides = 0;
			em_side_init(x, &lin, linear_key, linear + done, gather ? IOVM_MAP_WRITE : IOVM_MAP_READ);
			em_side_init(x, &ent, sge[i].key, sge[i].iova, gather ? IOVM_MAP_READ : IOVM_MAP_WRITE);
			while (left) {
				if (em_stretch(x, left, &n))
					goto out;
				if (gather)
					memmove(lin.sh, ent.sh, n);
				else
					memmove(ent.sh, lin.sh, n);
				em_advance(x, n);
				left -= n;
				done += n;
			}
		}
	}
out:
	x->c->bytes_completed = (uint32_t)done;
}

static inline bool em_valid(const struct iovm_desc *d, bool in_batch)
{
	if (d->flags & ~(IOVM_DESC_COMPLETION | IOVM_DESC_BLOCK_ON_FAULT | IOVM_DESC_KEYED) ||
	    d->pasid > IOVM_PASID_MAX)
		return false;
	if ((d->flags & IOVM_DESC_KEYED) && d->op == IOVM_OP_DUALCAST)
		return false;
	if ((d->flags & IOVM_DESC_COMPLETION) && (d->completion & 31))
		return false;
	switch (d->op) {
	case IOVM_OP_NOOP:
	case IOVM_OP_COPY:
	case IOVM_OP_FILL:
	case IOVM_OP_COMPARE:
	case IOVM_OP_COMPARE_PATTERN:
	case IOVM_OP_CRC32C:
	case IOVM_OP_COPY_CRC:
	case IOVM_OP_DUALCAST:
		return true;
	case IOVM_OP_GATHER:
	case IOVM_OP_SCATTER:
		return d->sg_count && d->sg_count <= EM_MAX_SG && !((d->op == IOVM_OP_GATHER ? d->src : d->dst) & 7);
	case IOVM_OP_BATCH:
		return !in_batch && d->len && d->len <= EM_MAX_BATCH && !(d->src & 63);
	default:
		return false;
	}
}

static inline void em_execute(struct em *m, const struct iovm_desc *d, struct iovm_completion *c, bool in_batch);

static inline void em_batch(struct em_exec *x)
{
	const struct iovm_desc *d = x->d;
	unsigned ok = 0;

	if (em_key_check(x, d->src_key, d->src, (uint64_t)d->len * sizeof(struct iovm_desc), IOVM_MAP_READ))
		return;
	for (uint32_t i = 0; i < d->len; i++) {
		struct iovm_completion cc = { 0 };
		struct iovm_desc child;

		if (em_read(x, d->src_key, d->src + (uint64_t)i * sizeof(child), &child, sizeof(child)))
			break;
		/* Children run in the batch's address space (dev.h). */
		child.pasid = d->pasid;
		em_execute(x->m, &child, &cc, true);
		if (cc.status == IOVM_STATUS_SUCCESS)
			ok++;
	}
	x->c->bytes_completed = ok;
	if (!x->c->status)
		x->c->status = ok == d->len ? IOVM_STATUS_SUCCESS : IOVM_STATUS_BATCH_FAIL;
}

/* The record, written through the domain as the engine writes it: a fault if it cannot be. */
static inline void em_write_record(struct em *m, const struct iovm_desc *d, const struct iovm_completion *c)
{
	unsigned perm = 0;
	uint8_t *sh = em_attached(d->pasid) ? em_shadow(m, d->completion, &perm) : NULL;

	if (!sh || !(perm & IOVM_MAP_WRITE)) {
		em_fault_record(m, d->pasid, d->completion, IOVM_MAP_WRITE,
				!em_attached(d->pasid) ? IOVM_FAULT_NO_DOMAIN
				: sh		     ? IOVM_FAULT_PERMISSION
						     : IOVM_FAULT_NOT_PRESENT);
		return;
	}
	/* Records are 32-byte aligned: never across a page. */
	memcpy(sh, c, sizeof(*c));
}

static inline void em_execute(struct em *m, const struct iovm_desc *d, struct iovm_completion *c, bool in_batch)
{
	struct em_exec x = { .m = m, .d = d, .c = c };

	if (!em_valid(d, in_batch))
		c->status = IOVM_STATUS_INVALID;
	else if (d->op == IOVM_OP_NOOP)
		c->status = IOVM_STATUS_SUCCESS;
	else if (d->op == IOVM_OP_GATHER || d->op == IOVM_OP_SCATTER)
		em_sg(&x);
	else if (d->op == IOVM_OP_BATCH)
		em_batch(&x);
	else
		em_linear(&x);
	if (!c->status)
		c->status = IOVM_STATUS_SUCCESS;
	if ((d->flags & IOVM_DESC_COMPLETION) && !(d->completion & 31))
		em_write_record(m, d, c);
}

#endif /* IOVM_TESTS_ENGINE_MODEL_H */
