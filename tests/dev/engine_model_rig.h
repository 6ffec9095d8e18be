/* SPDX-License-Identifier: MIT */
/*
 * engine_model_rig.h - the real side of the engine model (engine_model.h):
 * the context, the data domain (a VA domain following the heap, attached
 * at PASID 0 and EM_PASID) with its window, records page and
 * registrations, the fault handler blocking descriptors meet, and
 * em_step(), which runs a descriptor through the model and the engine
 * and compares every byte and field.
 */
#ifndef IOVM_TESTS_ENGINE_MODEL_RIG_H
#define IOVM_TESTS_ENGINE_MODEL_RIG_H

#include "dev/engine_model.h"

#define em_fail(m, ...) (snprintf((m)->why, sizeof((m)->why), __VA_ARGS__), -1)

/* The handler the blocking descriptors meet: maps a resolvable window page read-write. */
static inline int em_handler(void *arg, struct iovm_domain *dom, const struct iovm_fault *f)
{
	struct em *m = arg;
	uint64_t page = f->iova.addr & ~(uint64_t)(EM_PG - 1);
	iovm_iova_t at = IOVM_IOVA(page);
	unsigned i;

	if (f->reason != IOVM_FAULT_NOT_PRESENT || page < EM_WIN || page >= EM_WIN + EM_PAGES * EM_PG)
		return -EACCES;
	i = (unsigned)((page - EM_WIN) / EM_PG);
	if (!m->resolvable[i])
		return -EACCES;
	if (iovm_domain_map(dom, &at, IOVM_PA(m->back_pa.addr + (i + 1) * EM_PG), EM_PG,
			    IOVM_MAP_READ | IOVM_MAP_WRITE))
		return -EIO;
	if (m->nres_real < EM_MAX_FAULTS)
		m->res_real[m->nres_real++] = page;
	return 0;
}

/* Make window page @i's real mapping @perm (the model's is set by the caller). */
static inline void em_map_page(struct em *m, unsigned i, unsigned perm)
{
	iovm_iova_t at = IOVM_IOVA(EM_WIN + i * EM_PG);
	iovm_pa_t pa;
	uint32_t old;

	if (!iovm_domain_translate(m->dom, at, &pa, &old))
		CHECK_OK(iovm_domain_unmap(m->dom, at, EM_PG));
	if (perm)
		CHECK_OK(iovm_domain_map(m->dom, &at, IOVM_PA(m->back_pa.addr + (i + 1) * EM_PG), EM_PG, perm));
}

static inline void em_set_page(struct em *m, unsigned i, unsigned perm, bool resolvable)
{
	em_map_page(m, i, perm);
	m->perm[i] = (uint8_t)perm;
	m->resolvable[i] = resolvable;
}

static inline void em_open(struct em *m)
{
	struct iovm_domain_attr va = { .type = IOVM_DOMAIN_VA, .flags = IOVM_DOMAIN_FOLLOW_HEAP };
	static const uint32_t access[EM_NR_MR] = {
		IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_REMOTE_READ | IOVM_ACCESS_REMOTE_WRITE,
		IOVM_ACCESS_REMOTE_READ, /* local read only, and remote read */
		IOVM_ACCESS_LOCAL_WRITE,
	};
	struct iovm_mr *gone;
	struct iovm_mr_info info;
	struct iovm_dma_xlate x;
	iovm_iova_t at = IOVM_IOVA(EM_REC);

	memset(m, 0, sizeof(*m));
	rig_open(&m->r, "page_size=4K,host_pa=off,oracle=on", &va, IOVM_QUEUE_POLLED);
	m->dom = m->r.dom;
	CHECK_OK(iovm_device_attach(m->r.dev, m->dom, EM_PASID));
	CHECK_OK(iovm_domain_create(m->r.ctx, NULL, &m->other));
	CHECK_OK(iovm_domain_set_fault_handler(m->dom, em_handler, m));
	m->back = iovm_dma_alloc(m->r.ctx, (EM_PAGES + 2) * EM_PG, EM_PG, IOVM_DMA_CONTIG);
	m->back_sh = malloc((EM_PAGES + 2) * EM_PG);
	m->rec = iovm_dma_zalloc(m->r.ctx, EM_PG, EM_PG, 0);
	m->rec_sh = calloc(1, EM_PG);
	m->app = mmap(NULL, (EM_APP_PAGES + 2) * EM_PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	m->app_sh = malloc((EM_APP_PAGES + 2) * EM_PG);
	CHECK(m->back && m->back_sh && m->rec && m->rec_sh && m->app != MAP_FAILED && m->app_sh);
	CHECK_OK(iovm_dma_xlate(m->r.ctx, m->back, &x));
	m->back_pa = x.pa;
	for (size_t i = 0; i < (EM_PAGES + 2) * EM_PG; i++)
		m->back[i] = m->back_sh[i] = (uint8_t)(i * 131 + 7);
	for (size_t i = 0; i < (EM_APP_PAGES + 2) * EM_PG; i++)
		m->app[i] = m->app_sh[i] = (uint8_t)(i * 71 + 3);
	CHECK_OK(iovm_dma_xlate(m->r.ctx, m->rec, &x));
	CHECK_OK(iovm_domain_map(m->dom, &at, x.pa, EM_PG, IOVM_MAP_READ | IOVM_MAP_WRITE));
	for (unsigned i = 0; i < EM_NR_MR; i++) {
		uint8_t *p = m->app + EM_PG + i * (EM_APP_PAGES / EM_NR_MR) * EM_PG;

		CHECK_OK(iovm_mr_reg(m->dom, p, (EM_APP_PAGES / EM_NR_MR) * EM_PG, access[i], &m->mr[i].mr));
		CHECK_OK(iovm_mr_query(m->mr[i].mr, &info));
		m->mr[i] = (struct em_mr){ .mr = m->mr[i].mr, .lkey = info.lkey, .rkey = info.rkey,
					   .access = access[i], .addr = (uintptr_t)p, .len = info.len };
		CHECK_EQ(info.iova.addr, (uintptr_t)p); /* a VA domain */
	}
	/* A key that was good once, for memory of its own (a VA domain maps each address once). */
	{
		uint8_t *once = mmap(NULL, EM_PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		CHECK(once != MAP_FAILED);
		CHECK_OK(iovm_mr_reg(m->dom, once, EM_PG, IOVM_ACCESS_LOCAL_WRITE, &gone));
		CHECK_OK(iovm_mr_query(gone, &info));
		m->stale_key = info.lkey;
		CHECK_OK(iovm_mr_dereg(gone));
		munmap(once, EM_PG);
	}
	CHECK_OK(iovm_mr_reg(m->other, m->app + EM_PG, EM_PG, IOVM_ACCESS_LOCAL_WRITE, &m->foreign));
	CHECK_OK(iovm_mr_query(m->foreign, &info));
	m->foreign_key = info.lkey;
}

static inline void em_close(struct em *m)
{
	no_violations(m->dom);
	CHECK_OK(iovm_mr_dereg(m->foreign));
	CHECK_OK(iovm_domain_destroy(m->other));
	for (unsigned i = 0; i < EM_NR_MR; i++)
		CHECK_OK(iovm_mr_dereg(m->mr[i].mr));
	CHECK_OK(iovm_device_detach(m->r.dev, EM_PASID));
	rig_close(&m->r);
	munmap(m->app, (EM_APP_PAGES + 2) * EM_PG);
	free(m->app_sh);
	free(m->back_sh);
	free(m->rec_sh);
}

/* CPU stores into the window (a list, a batch, new data): memory and shadow alike. */
static inline void em_cpu_write(struct em *m, uint64_t win_off, const void *p, size_t n)
{
	if (win_off > EM_PAGES * EM_PG || n > EM_PAGES * EM_PG - win_off)
		return;
	memcpy(m->back + EM_PG + win_off, p, n);
	memcpy(m->back_sh + EM_PG + win_off, p, n);
}

static inline int em_cmp_bytes(struct em *m, const char *what, const uint8_t *real, const uint8_t *sh, size_t n, long base)
{
	if (!memcmp(real, sh, n))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (real[i] != sh[i])
			return em_fail(m, "%s: byte %+ld is %#x, the model says %#x", what, base + (long)i, real[i], sh[i]);
	return 0;
}

static inline int em_cmp_fault(struct em *m, const char *what, unsigned k, const struct iovm_fault *got,
			const struct iovm_fault *want)
{
	if (got->iova.addr != want->iova.addr || got->access != want->access || got->reason != want->reason ||
	    got->pasid != want->pasid)
		return em_fail(m, "%s fault %u: iova %#" PRIx64 " access %u reason %u pasid %u; the model says %#" PRIx64
			       " %u %u %u", what, k, got->iova.addr, got->access, got->reason, got->pasid,
			       want->iova.addr, want->access, want->reason, want->pasid);
	return 0;
}

/*
 * Run @d through the model and the engine; 0 when they agree in every
 * byte and field, -1 with m->why otherwise; 1 when the descriptor reached
 * memory the model does not shadow (the heap at its own addresses), whose
 * bytes and faults it cannot predict.
 */
static inline int em_step(struct em *m, const struct iovm_desc *d)
{
	struct iovm_completion want = { 0 };
	struct iovm_domain_stats st;
	struct iovm_fault f;
	struct iovm_cqe cqe;
	int n;

	m->npf = m->ndf = m->nres_pred = m->nres_real = 0;
	m->unmodeled = false;
	em_execute(m, d, &want, false);
	CHECK_OK(iovm_queue_submit(m->r.q, d));
	CHECK_EQ(iovm_queue_process(m->r.q, 1), 1);
	n = iovm_queue_reap(m->r.q, &cqe, 1);
	if (n != 1)
		return em_fail(m, "no completion (%d)", n);
	if (m->unmodeled) {
		/* Resynchronise: what the engine did is the truth now; its faults are dropped. */
		struct iovm_fault drop;

		memcpy(m->back_sh, m->back, (EM_PAGES + 2) * EM_PG);
		memcpy(m->app_sh, m->app, (EM_APP_PAGES + 2) * EM_PG);
		memcpy(m->rec_sh, m->rec, EM_PG);
		while (!iovm_domain_fault_pop(m->dom, &drop) || !iovm_device_fault_pop(m->r.dev, &drop))
			;
		for (unsigned i = 0; i < EM_PAGES; i++) {
			iovm_pa_t pa;
			uint32_t perm = 0;

			m->perm[i] = iovm_domain_translate(m->dom, IOVM_IOVA(EM_WIN + i * EM_PG), &pa, &perm) ? 0
												   : (uint8_t)perm;
		}
		return 1;
	}
	if (cqe.status != want.status || cqe.bytes_completed != want.bytes_completed || cqe.tag != d->tag)
		return em_fail(m, "completion: status %u, %u bytes; the model says status %u, %u bytes", cqe.status,
			       cqe.bytes_completed, want.status, want.bytes_completed);
	if (em_cmp_bytes(m, "records", m->rec, m->rec_sh, EM_PG, 0) ||
	    em_cmp_bytes(m, "window", m->back, m->back_sh, (EM_PAGES + 2) * EM_PG, -(long)EM_PG) ||
	    em_cmp_bytes(m, "application memory", m->app, m->app_sh, (EM_APP_PAGES + 2) * EM_PG, -(long)EM_PG))
		return -1;
	for (unsigned k = 0; k < m->npf; k++) {
		if (iovm_domain_fault_pop(m->dom, &f))
			return em_fail(m, "the domain recorded %u faults; the model says %u", k, m->npf);
		if (em_cmp_fault(m, "domain", k, &f, &m->pf[k]))
			return -1;
	}
	if (!iovm_domain_fault_pop(m->dom, &f))
		return em_fail(m, "the domain recorded more than the model's %u faults (%#" PRIx64 ")", m->npf,
			       f.iova.addr);
	for (unsigned k = 0; k < m->ndf; k++) {
		if (iovm_device_fault_pop(m->r.dev, &f))
			return em_fail(m, "the device recorded %u faults; the model says %u", k, m->ndf);
		if (em_cmp_fault(m, "device", k, &f, &m->df[k]))
			return -1;
	}
	if (!iovm_device_fault_pop(m->r.dev, &f))
		return em_fail(m, "the device recorded more than the model's %u faults", m->ndf);
	if (m->nres_real != m->nres_pred)
		return em_fail(m, "the handler mapped %u pages; the model says %u", m->nres_real, m->nres_pred);
	for (unsigned k = 0; k < m->nres_pred; k++)
		if (m->res_real[k] != m->res_pred[k])
			return em_fail(m, "the handler mapped %#" PRIx64 "; the model says %#" PRIx64, m->res_real[k],
				       m->res_pred[k]);
	CHECK_OK(iovm_domain_stats(m->dom, &st));
	if (st.oracle_violations)
		return em_fail(m, "%" PRIu64 " oracle violations", st.oracle_violations);
	return 0;
}

static inline void em_print_desc(FILE *out, const struct iovm_desc *d);

/* A batch's children or a list's entries, as the window holds them now. */
static inline void em_print_lists(struct em *m, FILE *out, const struct iovm_desc *d)
{
	uint64_t list = d->op == IOVM_OP_SCATTER ? d->dst : d->src;

	if (list < EM_WIN || list >= EM_WIN + EM_PAGES * EM_PG)
		return;
	if (d->op == IOVM_OP_BATCH) {
		for (uint32_t i = 0; i < d->len && list + (i + 1) * 64 <= EM_WIN + EM_PAGES * EM_PG; i++) {
			struct iovm_desc c;

			memcpy(&c, m->back + EM_PG + (list - EM_WIN) + i * 64, sizeof(c));
			fprintf(out, "  child %u:", i);
			em_print_desc(out, &c);
		}
	} else if (d->op == IOVM_OP_GATHER || d->op == IOVM_OP_SCATTER) {
		for (uint32_t i = 0; i < d->sg_count && list + (i + 1) * 16 <= EM_WIN + EM_PAGES * EM_PG; i++) {
			struct iovm_sge e;

			memcpy(&e, m->back + EM_PG + (list - EM_WIN) + i * 16, sizeof(e));
			fprintf(out, "  entry %u: %#" PRIx64 " len %u key %#x\n", i, e.iova, e.len, e.key);
		}
	}
}

static inline void em_print_desc(FILE *out, const struct iovm_desc *d)
{
	fprintf(out, "  op %u flags %#x pasid %u sg_count %u len %u src %#" PRIx64 " dst %#" PRIx64
		" completion %#" PRIx64 " src_key %#x dst_key %#x pattern %#" PRIx64 " crc_seed %#x\n",
		d->op, d->flags, d->pasid, d->sg_count, d->len, d->src, d->dst, d->completion, d->src_key,
		d->dst_key, d->pattern, d->crc_seed);
}

#endif /* IOVM_TESTS_ENGINE_MODEL_RIG_H */
