/* SPDX-License-Identifier: MIT */
/*
 * ops.c - what the software DMA engine does with a descriptor, after Intel
 * DSA: copy, fill, compare, compare with a pattern, CRC-32C, copy with CRC,
 * dualcast, gather, scatter, batches.
 *
 * Every byte goes through iommu_access(): the engine walks each range span
 * by span (a span ends where the leaf, or the bus granule, does), and an
 * access the domain does not map or permit stops the descriptor there, with
 * the bytes done and the faulting IOVA in the completion. A descriptor that
 * asks to block on faults instead leaves the device-side section, lets the
 * domain's fault handler resolve the fault, comes back, translates its spans
 * afresh (the handler may have remapped anything) and goes on.
 */
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <string.h>

#include "base/ctx.h"
#include "dev/dev_internal.h"
#include "mem/mem.h"
#include "os/guard.h"
#include "phys/phys.h"
#include "reg/reg.h"

/* A handler that claims to resolve a fault and does not gets this many tries. */
#define FAULT_RETRIES 16
/* The resolver, as many as a descriptor needs, but this many times in a row at one address. */
#define RESOLVE_STUCK 8
/* Scatter/gather lists and batches are bounded, as hardware bounds them. */
#define MAX_SG 4096
#define MAX_BATCH 1024

/*
 * One range an operation reads or writes, and the span of it translated
 * now. A keyed descriptor's range is a key and a virtual address: the key
 * gives the IOVA, and how far it holds (to the end of the registration, or
 * of the child of an implicit one, where the key is asked again).
 */
struct side {
	uint64_t iova;
	unsigned access;
	uint8_t *ptr;
	uint64_t pa;     /* of ptr: for the oracle's coherency checks */
	uint64_t avail;  /* bytes at ptr; 0: translate again */
	uint32_t key;    /* 0: iova is the address */
	uint64_t va;     /* keyed: the next byte's virtual address */
	uint64_t va_end; /* keyed: where the range ends */
	uint64_t keyed;  /* keyed: bytes from va that iova holds for; 0: ask the key */
};

struct exec {
	struct iovm_queue *q;
	const struct iovm_desc *d;
	struct iovm_completion *c;
	uint32_t pasid;
	struct side *sides[3];
	unsigned nr_sides;
	unsigned retries;
	unsigned stuck;         /* resolved faults in a row at last_resolved */
	uint64_t last_resolved;
	uint64_t done;          /* bytes done, for a fault that jumps out of an operation */
	/*
	 * The stretch the operation under way works on, copied out of the
	 * sides (which may live in frames a fault jumps past): where a bus
	 * fault in foreign memory happened, as an IOVA.
	 */
	struct {
		uint64_t iova;
		uint8_t *ptr;
		unsigned access;
	} cur[3];
	uint64_t cur_len;
	unsigned cur_n;
	bool completing;        /* writing the completion record */
};

static void exec_init(struct exec *x, struct iovm_queue *q, const struct iovm_desc *d,
		      struct iovm_completion *c)
{
	/*
	 * Field by field: a compound literal zeroes the whole struct, cur[]
	 * included, which compilers do with a rep stos whose start-up costs
	 * more than a small descriptor's copy. cur[] is read only below cur_n.
	 */
	x->q = q;
	x->d = d;
	x->c = c;
	x->pasid = d->pasid;
	x->nr_sides = 0;
	x->retries = 0;
	x->stuck = 0;
	x->last_resolved = 0;
	x->done = 0;
	x->cur_len = 0;
	x->cur_n = 0;
	x->completing = false;
}

/* A side for [addr, addr+len): an IOVA, or an address through @key in a keyed descriptor. */
static void side_init(struct exec *x, struct side *s, uint32_t key, uint64_t addr, uint64_t len, unsigned access)
{
	*s = (struct side){ .iova = addr, .access = access };
	if ((x->d->flags & IOVM_DESC_KEYED) && key) {
		s->key = key;
		s->va = addr;
		s->va_end = addr + len;
	}
	x->sides[x->nr_sides++] = s;
}

/*
 * The device left its section (to wait, to have a fault resolved): what it
 * translated may have gone meanwhile, spans and keys alike. Ask again.
 */
static void sides_forget(struct exec *x)
{
	for (unsigned i = 0; i < x->nr_sides; i++) {
		x->sides[i]->avail = 0;
		x->sides[i]->keyed = 0;
	}
}

static void fault_complete(struct exec *x, const struct iovm_fault *f)
{
	x->c->status = IOVM_STATUS_PAGE_FAULT;
	x->c->fault_addr = f->iova.addr;
	x->c->fault_access = (uint8_t)f->access;
	x->c->fault_reason = (uint8_t)f->reason;
	count_add(&x->q->faults, 1);
}

/*
 * The memory monitor closes the foreign gate while it invalidates what an
 * application's munmap (or madvise, or mremap) hit: leave the device-side
 * section, so that it can finish, and come back once the gate is open.
 * Whatever was translated before is suspect afterwards.
 */
static void gate_wait(struct iovm_queue *q)
{
	iommu_exit(q->tlb);
	q->sections_left++;
	for (unsigned spins = 0; atomic_load_explicit(q->foreign_gate, memory_order_acquire); spins++)
		if (spins > 64)
			sched_yield();
	iommu_enter(q->tlb);
}

/* Whether the span may be used: not foreign memory while the gate is closed. */
static inline bool gate_open(struct iovm_queue *q, const struct iommu_span *span)
{
	return !span->foreign || !atomic_load_explicit(q->foreign_gate, memory_order_seq_cst);
}

/*
 * The IOVA of a keyed side's next byte, through its key. An implicit
 * registration makes its children as devices reach them: outside the
 * section, as a page request. A key refused completes the descriptor
 * (IOVM_STATUS_KEY): -EFAULT.
 */
static int side_key(struct exec *x, struct side *s)
{
	struct iovm_domain *dom = iommu_client_domain(x->q->dev->client, x->pasid);
	struct reg_space *rs = x->q->dev->ctx->reg;

	for (unsigned tries = 0;; tries++) {
		int ret = dom ? reg_key_iova(rs, s->key, s->va, s->va_end - s->va, s->access, dom, &s->iova,
					     &s->keyed)
			      : -ENOKEY;

		if (!ret)
			return 0;
		if (ret == -EAGAIN && tries < RESOLVE_STUCK) {
			iommu_exit(x->q->tlb);
			x->q->sections_left++;
			ret = reg_key_grow(rs, s->key, s->va);
			iommu_enter(x->q->tlb);
			sides_forget(x);
			if (!ret)
				continue;
		}
		x->c->status = IOVM_STATUS_KEY;
		count_add(&x->q->errors, 1);
		return -EFAULT;
	}
}

/*
 * Whether @key grants @access over the whole of [va, va+len), before the
 * descriptor moves a byte: the key is known, live, of the descriptor's
 * domain, has the right, and its registration holds the range. An
 * implicit registration's children that hold the range are made here (a
 * page request, outside the section), so that running the descriptor
 * finds them. 0 (also for an IOVA: no key, or a descriptor not keyed), or
 * -EFAULT with the descriptor completed IOVM_STATUS_KEY.
 */
static int key_check(struct exec *x, uint32_t key, uint64_t va, uint64_t len, unsigned access)
{
	struct reg_space *rs = x->q->dev->ctx->reg;
	uint64_t at = va, end = va + len;
	unsigned tries = 0;

	if (!(x->d->flags & IOVM_DESC_KEYED) || !key)
		return 0;
	for (;;) {
		struct iovm_domain *dom = iommu_client_domain(x->q->dev->client, x->pasid);
		uint64_t iova, contig;
		/* end - at: the bytes left, also where va + len wrapped (the key refuses that). */
		int ret = dom ? reg_key_iova(rs, key, at, end - at, access, dom, &iova, &contig) : -ENOKEY;

		if (!ret) {
			/* An implicit registration's child ends before the range: the next one. */
			if (contig >= end - at)
				return 0;
			at += contig;
			tries = 0;
			continue;
		}
		if (ret == -EAGAIN && tries++ < RESOLVE_STUCK) {
			iommu_exit(x->q->tlb);
			x->q->sections_left++;
			ret = reg_key_grow(rs, key, at);
			iommu_enter(x->q->tlb);
			sides_forget(x);
			if (!ret)
				continue;
		}
		x->c->status = IOVM_STATUS_KEY;
		count_add(&x->q->errors, 1);
		return -EFAULT;
	}
}

/*
 * Make @s->avail non-zero. On a fault: block on it if asked (and a handler
 * resolves it), else complete with it. -EFAULT when the operation stops.
 */
static int side_span(struct exec *x, struct side *s)
{
	for (;;) {
		struct iommu_span span;
		struct iovm_fault f;

		/* A keyed side asks its key first, and again after the device left its section. */
		if (s->key && !s->keyed && side_key(x, s))
			return -EFAULT;
		if (!iommu_access(x->q->tlb, x->pasid, s->iova, s->access, &span, &f)) {
			if (unlikely(!gate_open(x->q, &span))) {
				gate_wait(x->q);
				sides_forget(x);
				continue;
			}
			s->ptr = span.ptr;
			s->pa = span.pa;
			s->avail = s->key ? MIN(span.len, s->keyed) : span.len;
			return 0;
		}
		/*
		 * On-demand memory: a page request the registration layer may
		 * answer, whatever the descriptor asks. It may map and unmap:
		 * outside the section. A fault that comes back at once at the
		 * same address, resolved each time, is given up on.
		 */
		if (f.reason == IOVM_FAULT_NOT_PRESENT && x->stuck < RESOLVE_STUCK) {
			int ret;

			iommu_exit(x->q->tlb);
			x->q->sections_left++;
			ret = iommu_resolve(x->q->dev->client, &f);
			iommu_enter(x->q->tlb);
			if (!ret) {
				x->stuck = f.iova.addr == x->last_resolved ? x->stuck + 1 : 0;
				x->last_resolved = f.iova.addr;
				count_add(&x->q->page_requests, 1);
				sides_forget(x);
				continue;
			}
		}
		dev_fault_report(x->q->dev, &f);
		if (!(x->d->flags & IOVM_DESC_BLOCK_ON_FAULT) || x->retries >= FAULT_RETRIES) {
			fault_complete(x, &f);
			return -EFAULT;
		}
		/* The handler may map and unmap: it runs outside the section. */
		iommu_exit(x->q->tlb);
		x->q->sections_left++;
		int ret = iommu_fault_handle(x->q->dev->client, &f);
		iommu_enter(x->q->tlb);
		x->retries++;
		if (ret) {
			fault_complete(x, &f);
			return -EFAULT;
		}
		count_add(&x->q->fault_retries, 1);
		/* What was translated before may be gone: every span afresh. */
		sides_forget(x);
	}
}

static void side_advance(struct side *s, uint64_t n)
{
	if (s->key) {
		s->va += n;
		s->keyed -= n;
	}
	s->iova += n;
	s->ptr += n;
	s->pa += n;
	s->avail -= n;
}

/* The next stretch every side can take, at most @left; -EFAULT on a fault. */
static int stretch(struct exec *x, uint64_t left, uint64_t *n)
{
	uint64_t m = left;
	unsigned i = 0;

	/*
	 * Translate the sides that need it. A fault handler may reset every span
	 * while one side is translated: start over then. It ends, since a
	 * descriptor's handler calls are bounded.
	 */
	while (i < x->nr_sides) {
		if (x->sides[i]->avail) {
			i++;
			continue;
		}
		if (side_span(x, x->sides[i]))
			return -EFAULT;
		i = 0;
	}
	for (i = 0; i < x->nr_sides; i++)
		m = MIN(m, x->sides[i]->avail);
	*n = m;
	/* The bytes this stretch touches, checked for the syncs non-coherent memory needs. */
	if (unlikely(x->q->oracle))
		for (i = 0; i < x->nr_sides; i++)
			mem_nc_device_access(x->q->mem, x->sides[i]->pa, m, x->sides[i]->access & IOVM_MAP_WRITE);
	for (i = 0; i < x->nr_sides; i++) {
		x->cur[i].iova = x->sides[i]->iova;
		x->cur[i].ptr = x->sides[i]->ptr;
		x->cur[i].access = x->sides[i]->access;
	}
	x->cur_n = x->nr_sides;
	x->cur_len = m;
	return 0;
}

static void pattern_fill(uint8_t *p, uint64_t n, uint64_t pattern, uint64_t at)
{
	for (uint64_t i = 0; i < n; i++)
		p[i] = (uint8_t)(pattern >> (8 * ((at + i) % 8)));
}

/* The first offset where @p differs from the pattern, or @n. */
static uint64_t pattern_diff(const uint8_t *p, uint64_t n, uint64_t pattern, uint64_t at)
{
	for (uint64_t i = 0; i < n; i++)
		if (p[i] != (uint8_t)(pattern >> (8 * ((at + i) % 8))))
			return i;
	return n;
}

static uint64_t mem_diff(const uint8_t *a, const uint8_t *b, uint64_t n)
{
	if (!memcmp(a, b, n))
		return n;
	for (uint64_t i = 0; i < n; i++)
		if (a[i] != b[i])
			return i;
	return n;
}

/* The data operations over contiguous ranges. */
static void run_linear(struct exec *x)
{
	const struct iovm_desc *d = x->d;
	struct side src, dst, dst2;
	uint64_t done = 0, n;
	uint32_t crc = d->crc_seed;
	bool reads = d->op != IOVM_OP_FILL, writes = d->op == IOVM_OP_COPY || d->op == IOVM_OP_FILL ||
						d->op == IOVM_OP_COPY_CRC || d->op == IOVM_OP_DUALCAST;
	bool has_dst = writes || d->op == IOVM_OP_COMPARE;
	unsigned dst_access = d->op == IOVM_OP_COMPARE ? IOVM_MAP_READ : IOVM_MAP_WRITE;

	/* Every key first: a refused one touches nothing (dev.h). */
	if ((reads && key_check(x, d->src_key, d->src, d->len, IOVM_MAP_READ)) ||
	    (has_dst && key_check(x, d->dst_key, d->dst, d->len, dst_access)))
		goto out;
	if (reads)
		side_init(x, &src, d->src_key, d->src, d->len, IOVM_MAP_READ);
	if (has_dst)
		side_init(x, &dst, d->dst_key, d->dst, d->len, dst_access);
	if (d->op == IOVM_OP_DUALCAST)
		side_init(x, &dst2, 0, d->dst2, d->len, IOVM_MAP_WRITE);

	while (done < d->len) {
		x->done = done;
		if (stretch(x, d->len - done, &n))
			break;
		switch (d->op) {
		case IOVM_OP_COPY:
			memmove(dst.ptr, src.ptr, n);
			break;
		case IOVM_OP_FILL:
			pattern_fill(dst.ptr, n, d->pattern, done);
			break;
		case IOVM_OP_COMPARE:
		case IOVM_OP_COMPARE_PATTERN: {
			uint64_t at = d->op == IOVM_OP_COMPARE ? mem_diff(src.ptr, dst.ptr, n)
							       : pattern_diff(src.ptr, n, d->pattern, done);

			if (at < n) {
				x->c->result = 1;
				x->c->mismatch = done + at;
				done += at;
				goto out;
			}
			break;
		}
		case IOVM_OP_CRC32C:
			crc = crc32c(crc, src.ptr, n);
			break;
		case IOVM_OP_COPY_CRC:
			crc = crc32c(crc, src.ptr, n);
			memmove(dst.ptr, src.ptr, n);
			break;
		case IOVM_OP_DUALCAST:
			memmove(dst.ptr, src.ptr, n);
			memmove(dst2.ptr, src.ptr, n);
			break;
		}
		for (unsigned i = 0; i < x->nr_sides; i++)
			side_advance(x->sides[i], n);
		done += n;
	}
out:
	x->c->bytes_completed = (uint32_t)done;
	x->c->crc = crc;
	if (!x->c->status)
		x->c->status = IOVM_STATUS_SUCCESS;
	count_add(&x->q->bytes, done);
}

/* Read @n bytes at @addr (through @key) of the descriptor's domain into @buf (lists, batches). */
static int read_dev(struct exec *x, uint32_t key, uint64_t addr, void *buf, uint64_t n)
{
	struct side s;
	uint64_t got = 0;

	x->nr_sides = 0;
	side_init(x, &s, key, addr, n, IOVM_MAP_READ);
	while (got < n) {
		uint64_t m;

		if (stretch(x, n - got, &m))
			return -EFAULT;
		memcpy((uint8_t *)buf + got, s.ptr, m);
		side_advance(&s, m);
		got += m;
	}
	x->nr_sides = 0;
	return 0;
}

/*
 * Before a scatter or gather moves its first byte: the keys of the list
 * and of the contiguous side over their whole ranges, then each entry in
 * order (lengths that overrun the descriptor's: IOVM_STATUS_INVALID; its
 * key), then the lengths' total, which must be the descriptor's. 0, or
 * -EFAULT with the descriptor completed (KEY, INVALID, or a fault reading
 * the list).
 */
static int sg_check(struct exec *x, uint32_t list_key, uint64_t list, uint32_t linear_key, uint64_t linear,
		    bool gather)
{
	const struct iovm_desc *d = x->d;
	struct iovm_sge sge[64];
	uint64_t total = 0;

	if (key_check(x, list_key, list, (uint64_t)d->sg_count * sizeof(sge[0]), IOVM_MAP_READ) ||
	    key_check(x, linear_key, linear, d->len, gather ? IOVM_MAP_WRITE : IOVM_MAP_READ))
		return -EFAULT;
	for (unsigned base = 0; base < d->sg_count; base += 64) {
		unsigned cnt = MIN(64u, d->sg_count - base);

		if (read_dev(x, list_key, list + (uint64_t)base * sizeof(sge[0]), sge, cnt * sizeof(sge[0])))
			return -EFAULT;
		for (unsigned i = 0; i < cnt; i++) {
			total += sge[i].len;
			if (total > d->len) {
				x->c->status = IOVM_STATUS_INVALID;
				return -EFAULT;
			}
			if (key_check(x, sge[i].key, sge[i].iova, sge[i].len, gather ? IOVM_MAP_READ : IOVM_MAP_WRITE))
				return -EFAULT;
		}
	}
	if (total != d->len) {
		x->c->status = IOVM_STATUS_INVALID;
		return -EFAULT;
	}
	return 0;
}

/* GATHER (list -> contiguous) and SCATTER (contiguous -> list). */
static void run_sg(struct exec *x)
{
	const struct iovm_desc *d = x->d;
	bool gather = d->op == IOVM_OP_GATHER;
	uint64_t list = gather ? d->src : d->dst, linear = gather ? d->dst : d->src, done = 0, total = 0;
	uint32_t list_key = gather ? d->src_key : d->dst_key, linear_key = gather ? d->dst_key : d->src_key;
	struct iovm_sge sge[64];
	struct side lin, ent;

	if (sg_check(x, list_key, list, linear_key, linear, gather))
		goto out;
	for (unsigned base = 0; base < d->sg_count; base += 64) {
		unsigned cnt = MIN(64u, d->sg_count - base);

		if (read_dev(x, list_key, list + (uint64_t)base * sizeof(sge[0]), sge, cnt * sizeof(sge[0])))
			goto out;
		for (unsigned i = 0; i < cnt; i++) {
			uint64_t left = sge[i].len, n;

			total += left;
			if (total > d->len) {
				x->c->status = IOVM_STATUS_INVALID;
				goto out;
			}
			x->nr_sides = 0;
			side_init(x, &lin, linear_key, linear + done, left, gather ? IOVM_MAP_WRITE : IOVM_MAP_READ);
			side_init(x, &ent, sge[i].key, sge[i].iova, left, gather ? IOVM_MAP_READ : IOVM_MAP_WRITE);
			while (left) {
				x->done = done;
				if (stretch(x, left, &n))
					goto out;
				if (gather)
					memmove(lin.ptr, ent.ptr, n);
				else
					memmove(ent.ptr, lin.ptr, n);
				side_advance(&lin, n);
				side_advance(&ent, n);
				left -= n;
				done += n;
			}
		}
	}
	if (total != d->len && !x->c->status)
		x->c->status = IOVM_STATUS_INVALID;
out:
	x->c->bytes_completed = (uint32_t)done;
	if (!x->c->status)
		x->c->status = IOVM_STATUS_SUCCESS;
	count_add(&x->q->bytes, done);
}

/* Write a completion record through the IOMMU, its status last. */
static void write_completion(struct iovm_queue *q, const struct iovm_desc *d,
			     const struct iovm_completion *c)
{
	struct iommu_span s;
	struct iovm_fault f;
	struct iovm_completion *rec;

	for (;;) {
		if (iommu_access(q->tlb, d->pasid, d->completion, IOVM_MAP_WRITE, &s, &f)) {
			dev_fault_report(q->dev, &f);
			count_add(&q->faults, 1);
			return;
		}
		if (s.len < sizeof(*rec)) {
			count_add(&q->faults, 1);
			return;
		}
		if (likely(gate_open(q, &s)))
			break;
		gate_wait(q);
	}
	/* A record is a device write like any other: in non-coherent memory, its lines must be the device's. */
	if (unlikely(q->oracle))
		mem_nc_device_access(q->mem, s.pa, sizeof(*rec), true);
	rec = (struct iovm_completion *)s.ptr;
	memcpy((uint8_t *)rec + 1, (const uint8_t *)c + 1, sizeof(*rec) - 1);
	__atomic_store_n(&rec->status, c->status, __ATOMIC_RELEASE);
}

static void run_batch(struct exec *x)
{
	const struct iovm_desc *d = x->d;
	unsigned ok = 0;

	/* The list's key over the whole list, before any child runs. */
	if (key_check(x, d->src_key, d->src, (uint64_t)d->len * sizeof(struct iovm_desc), IOVM_MAP_READ))
		goto out;
	for (uint32_t i = 0; i < d->len; i++) {
		struct iovm_completion cc = { 0 };
		struct iovm_desc child;

		if (read_dev(x, d->src_key, d->src + (uint64_t)i * sizeof(child), &child, sizeof(child)))
			goto out;
		engine_execute(x->q, &child, &cc, true);
		if (cc.status == IOVM_STATUS_SUCCESS)
			ok++;
	}
out:
	x->c->bytes_completed = ok; /* a batch counts descriptors */
	if (!x->c->status)
		x->c->status = ok == d->len ? IOVM_STATUS_SUCCESS : IOVM_STATUS_BATCH_FAIL;
}

static bool valid(const struct iovm_desc *d, bool in_batch)
{
	if (d->flags & ~(IOVM_DESC_COMPLETION | IOVM_DESC_BLOCK_ON_FAULT | IOVM_DESC_KEYED) ||
	    d->pasid > IOVM_PASID_MAX)
		return false;
	/* DUALCAST's second destination is where the keys would be. */
	if ((d->flags & IOVM_DESC_KEYED) && d->op == IOVM_OP_DUALCAST)
		return false;
	/* A completion record is 32 bytes, 32-byte aligned, as DSA's. */
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
		return d->sg_count && d->sg_count <= MAX_SG && !((d->op == IOVM_OP_GATHER ? d->src : d->dst) & 7);
	case IOVM_OP_BATCH:
		return !in_batch && d->len && d->len <= MAX_BATCH && !(d->src & 63);
	default:
		return false;
	}
}

static void execute(struct exec *x, bool in_batch)
{
	const struct iovm_desc *d = x->d;

	if (!valid(d, in_batch)) {
		x->c->status = IOVM_STATUS_INVALID;
		count_add(&x->q->errors, 1);
	} else if (d->op == IOVM_OP_NOOP) {
		x->c->status = IOVM_STATUS_SUCCESS;
	} else if (d->op == IOVM_OP_GATHER || d->op == IOVM_OP_SCATTER) {
		run_sg(x);
	} else if (d->op == IOVM_OP_BATCH) {
		run_batch(x);
	} else {
		run_linear(x);
	}
	if (d->flags & IOVM_DESC_COMPLETION && !(x->c->status == IOVM_STATUS_INVALID && (d->completion & 31))) {
		x->completing = true;
		write_completion(x->q, d, x->c);
	}
}

/*
 * Foreign memory vanished under an access (the application unmapped it
 * before the monitor could say so): a bus fault at the IOVA that reached
 * it, with the bytes done before the stretch under way.
 */
static void bus_fault(struct exec *x, const void *addr)
{
	uint64_t iova = 0;
	unsigned access = IOVM_MAP_READ;

	for (unsigned i = 0; i < x->cur_n; i++) {
		const uint8_t *p = x->cur[i].ptr;

		if ((const uint8_t *)addr >= p && (const uint8_t *)addr < p + x->cur_len) {
			iova = x->cur[i].iova + (uint64_t)((const uint8_t *)addr - p);
			access = x->cur[i].access;
			break;
		}
	}
	x->c->status = IOVM_STATUS_PAGE_FAULT;
	x->c->fault_reason = IOVM_FAULT_BUS;
	x->c->fault_access = (uint8_t)access;
	x->c->fault_addr = iova;
	x->c->bytes_completed = (uint32_t)x->done;
	count_add(&x->q->faults, 1);
	count_add(&x->q->bus_faults, 1);
}

/* execute() under a guard: a fault in foreign memory completes the descriptor, not the process. */
static void execute_guarded(struct exec *x, bool in_batch)
{
	struct os_guard g;

	if (sigsetjmp(g.jmp, 0)) {
		bool completing = x->completing;

		bus_fault(x, g.addr);
		/* The record may be where the fault was: then there is none. */
		if (!completing && (x->d->flags & IOVM_DESC_COMPLETION))
			write_completion(x->q, x->d, x->c);
		return;
	}
	os_guard_set(&g);
	execute(x, in_batch);
	os_guard_clear(&g);
}

void engine_execute(struct iovm_queue *q, const struct iovm_desc *d, struct iovm_completion *c,
		    bool in_batch)
{
	struct exec x;

	exec_init(&x, q, d, c);
	/* Only foreign memory can vanish: without any on the bus, no guard to pay for. */
	if (phys_has_windows(q->dev->ctx->phys))
		execute_guarded(&x, in_batch);
	else
		execute(&x, in_batch);
}
