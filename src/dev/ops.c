/* SPDX-License-Identifier: MIT */
/*
 * ops.c - what the software DMA engine does with a descriptor, after Intel
 * DSA: copy, fill, compare, compare with a pattern, CRC-32C, copy with CRC,
 * dualcast, gather, scatter, batches; the checks before a byte moves (the
 * descriptor's validity, its keys), the completion record, and bus faults
 * in foreign memory. How each byte is reached is access.c's.
 */
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <string.h>
#include <unistd.h>

#include "base/counter.h"
#include "base/ctx.h"
#include "dev/exec.h"
#include "mem/mem.h"
#include "os/guard.h"
#include "phys/phys.h"

/* Scatter/gather lists and batches are bounded, as hardware bounds them. */
#define MAX_SG 4096
#define MAX_BATCH 1024

/*
 * The pattern's 8 bytes as they fall from byte @at of the operation on: a
 * word stored or compared every 8 bytes, not a byte at a time.
 */
static void pattern_word(uint8_t w[8], uint64_t pattern, uint64_t at)
{
	for (unsigned j = 0; j < 8; j++)
		w[j] = (uint8_t)(pattern >> (8 * ((at + j) % 8)));
}

static void pattern_fill(uint8_t *p, uint64_t n, uint64_t pattern, uint64_t at)
{
	uint8_t w[8];
	uint64_t i = 0;

	pattern_word(w, pattern, at);
	for (; i + 8 <= n; i += 8)
		memcpy(p + i, w, 8);
	for (; i < n; i++)
		p[i] = w[i % 8];
}

/* The first offset where @p differs from the pattern, or @n. */
static uint64_t pattern_diff(const uint8_t *p, uint64_t n, uint64_t pattern, uint64_t at)
{
	uint8_t w[8];
	uint64_t i = 0;

	pattern_word(w, pattern, at);
	while (i + 8 <= n && !memcmp(p + i, w, 8))
		i += 8;
	for (; i < n; i++)
		if (p[i] != w[i % 8])
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

/*
 * Whether a COPY runs from the end: its dst lies above its src and inside
 * it, in one address space (both IOVAs, or both keyed: the process's).
 */
static bool copy_down(const struct iovm_desc *d)
{
	bool keyed = d->flags & IOVM_DESC_KEYED;

	if (d->op != IOVM_OP_COPY || (keyed && !d->src_key != !d->dst_key))
		return false;
	return d->dst > d->src && d->dst - d->src < d->len;
}

/*
 * COPY with dst above an overlapping src, as memmove and DSA's memory
 * move do it: from the end, so that no source byte is overwritten before
 * it is read; a piece at a time, each inside one 4 KiB page of either
 * side (a span never ends inside one). result 1 says so (DSA's direction
 * bit); a fault leaves the last bytes_completed bytes done.
 */
static uint64_t run_copy_down(struct exec *x)
{
	const struct iovm_desc *d = x->d;
	uint64_t done = 0;

	x->c->result = 1;
	while (done < d->len) {
		uint64_t end = d->len - done, got;
		uint64_t n = MIN(end, MIN(((d->src + end - 1) & (SZ_4K - 1)) + 1, ((d->dst + end - 1) & (SZ_4K - 1)) + 1));
		struct side src, dst;

		x->nr_sides = 0;
		side_init(x, &src, d->src_key, d->src + end - n, n, IOVM_MAP_READ);
		side_init(x, &dst, d->dst_key, d->dst + end - n, n, IOVM_MAP_WRITE);
		x->done = done;
		if (stretch(x, n, &got))
			break;
		IOVM_ASSERT(got == n);
		memmove(dst.ptr, src.ptr, n);
		if (stretch_done(x, n))
			break;
		done += n;
	}
	x->nr_sides = 0;
	return done;
}

/*
 * A COPY whose source and destination each lie whole in one translated
 * run of iovm's own memory: translated once each, one memmove, no
 * stretches. False, with nothing moved, when anything else holds (keys, a
 * fault, a shorter run, memory of the application or of another process,
 * a copy down, overlapping memory): the general way then translates
 * afresh and does it, with its faults at their exact IOVAs.
 */
static bool copy_whole(struct exec *x)
{
	const struct iovm_desc *d = x->d;
	struct iommu_span src, dst;
	struct iovm_fault f;

	if (d->op != IOVM_OP_COPY || (d->flags & IOVM_DESC_KEYED) || !d->len || copy_down(d))
		return false;
	if (iommu_access_run(x->q->tlb, x->pasid, iova_make(d->src), IOVM_MAP_READ, d->len, &src, &f) ||
	    src.reach != PHYS_REACH_OWN || src.len < d->len)
		return false;
	if (iommu_access_run(x->q->tlb, x->pasid, iova_make(d->dst), IOVM_MAP_WRITE, d->len, &dst, &f) ||
	    dst.reach != PHYS_REACH_OWN || dst.len < d->len)
		return false;
	/*
	 * Overlapping memory (whatever the IOVAs say: two may reach one
	 * page) is copied in the order the general way has: leaf by leaf,
	 * or from the end for a copy down.
	 */
	if (src.ptr < dst.ptr + d->len && dst.ptr < src.ptr + d->len)
		return false;
	/* The checks stretch() makes for the oracle. */
	if (unlikely(x->q->oracle)) {
		mem_nc_device_access(x->q->mem, src.pa, d->len, false);
		mem_nc_device_access(x->q->mem, dst.pa, d->len, true);
	}
	memmove(dst.ptr, src.ptr, d->len);
	return true;
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
	if (copy_down(d)) {
		done = run_copy_down(x);
		goto out;
	}
	x->write_exact = (d->op == IOVM_OP_COPY || d->op == IOVM_OP_FILL) && !(d->flags & IOVM_DESC_BLOCK_ON_FAULT);
	if (reads)
		side_init(x, &src, d->src_key, d->src, d->len, IOVM_MAP_READ);
	if (has_dst)
		side_init(x, &dst, d->dst_key, d->dst, d->len, dst_access);
	if (d->op == IOVM_OP_DUALCAST)
		side_init(x, &dst2, 0, d->dst2, d->len, IOVM_MAP_WRITE);

	while (done < d->len) {
		uint32_t crc_before = crc;

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
		if (stretch_done(x, n)) {
			/* Not done but what write_exact counts: nor in the CRC, which covers the bytes done. */
			crc = crc_before;
			done += x->partial;
			break;
		}
		done += n;
	}
out:
	x->c->bytes_completed = (uint32_t)done;
	/* The CRC of the bytes done, for the operations that have one; 0 for the rest. */
	if (d->op == IOVM_OP_CRC32C || d->op == IOVM_OP_COPY_CRC)
		x->c->crc = crc;
	if (!x->c->status)
		x->c->status = IOVM_STATUS_SUCCESS;
	counter_add(&x->q->bytes, done);
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
	x->write_exact = !(d->flags & IOVM_DESC_BLOCK_ON_FAULT);
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
				if (stretch_done(x, n)) {
					done += x->partial;
					goto out;
				}
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
	counter_add(&x->q->bytes, done);
}

/*
 * A completion record in another process's memory: through its memory
 * file, the status last, as the record is written in memory of ours. A
 * record that cannot be written (the memory went) is a fault counted.
 */
static void remote_completion(struct iovm_queue *q, const struct iommu_span *s, const struct iovm_completion *c)
{
	int fd = phys_remote_fd(q->dev->ctx->phys, s->pa);
	off_t at = (off_t)(uintptr_t)s->ptr;
	static_assert(offsetof(struct iovm_completion, status) == 0, "the status is the record's first byte");

	if (fd < 0 || pwrite(fd, (const uint8_t *)c + 1, sizeof(*c) - 1, at + 1) != (ssize_t)sizeof(*c) - 1 ||
	    pwrite(fd, &c->status, 1, at) != 1)
		counter_add(&q->faults, 1);
}

/*
 * A record in another process's registration of a shared domain: that
 * process writes it (iommu_delegate()), the body first and the status
 * after, so that its application, which polls the status, never sees a
 * status before the rest. Out of the section, as any delegated access:
 * the answer may wait for that process's invalidation, which waits for
 * this process's sections. Not written (the memory went, or its process
 * did): counted as a fault, like a record whose IOVA does not translate.
 */
static void delegated_completion(struct iovm_queue *q, uint32_t pasid, uint64_t completion,
				 const struct iovm_completion *c)
{
	struct iovm_completion rec = *c;
	uint64_t done = 0;
	unsigned reason;
	int ret;
	static_assert(offsetof(struct iovm_completion, status) == 0, "the status is the record's first byte");

	iommu_exit(q->tlb);
	q->sections_left++;
	ret = iommu_delegate(q->dev->client, pasid, iova_make(completion + 1), (uint8_t *)&rec + 1,
			     sizeof(rec) - 1, IOMMU_DELEGATE_WRITE, &done, &reason);
	if (!ret && done == sizeof(rec) - 1)
		ret = iommu_delegate(q->dev->client, pasid, iova_make(completion), &rec.status, 1,
				     IOMMU_DELEGATE_WRITE, &done, &reason);
	iommu_enter(q->tlb);
	if (ret || done != 1)
		counter_add(&q->faults, 1);
}

/*
 * A record's page not present: a page request, as for a descriptor's data
 * (access.c): this process's on-demand registration, or failing that
 * another process's, which that process probes. Outside the section. 0
 * once the page is there.
 */
static int record_resolve(struct iovm_queue *q, uint32_t pasid, struct iovm_fault *f)
{
	uint64_t done;
	unsigned reason;
	int ret;

	iommu_exit(q->tlb);
	q->sections_left++;
	ret = iommu_resolve(q->dev->client, f);
	if (ret == -ENOENT)
		ret = iommu_delegate(q->dev->client, pasid, f->iova, NULL, 1, IOMMU_DELEGATE_PROBE, &done, &reason);
	iommu_enter(q->tlb);
	return ret;
}

_Atomic(dev_test_hook) dev_test_remote_record;

/* Write a completion record at @completion of @pasid's domain, through the IOMMU, its status last. */
void engine_write_completion(struct iovm_queue *q, uint32_t pasid, uint64_t completion,
			     const struct iovm_completion *c)
{
	struct phys_gate_words *held = NULL, *waiting = NULL, *w;
	struct iommu_span s;
	struct iovm_fault f;
	struct iovm_completion *rec;
	unsigned pass;

	for (pass = 0;; pass++) {
		/* The descriptor's address, as the device reads it: an IOVA of its PASID's domain. */
		if (iommu_access(q->tlb, pasid, iova_make(completion), IOVM_MAP_WRITE, &s, &f)) {
			/*
			 * On-demand memory not there when the record comes to be
			 * written: asked for once, as a descriptor's data would be.
			 * Not a page that went while the record waited for a gate:
			 * what is mapped there now is memory the application put in
			 * after its call returned, which the record must not reach.
			 */
			if (f.reason == IOVM_FAULT_NOT_PRESENT && pass == 0 && !record_resolve(q, pasid, &f))
				continue;
			dev_fault_report(q->dev, &f);
			goto fault;
		}
		if (s.len < sizeof(*rec))
			goto fault;
		if (unlikely(s.reach == PHYS_REACH_DELEGATED)) {
			if (waiting)
				phys_gate_wait_end(waiting);
			delegated_completion(q, pasid, completion, c);
			return;
		}
		/*
		 * A record in another process's registration (a mirrored MR) is a
		 * write through it like a stretch's: its monitor waits only for
		 * accesses counted in its busy word, so count before looking at
		 * the gate (phys_gate_enter()). Uncounted, the pwrite()
		 * could land after the owner's munmap() returned, in memory
		 * mapped anew there: the translation stays good until the
		 * owner's invalidation unmaps it, which comes after that return.
		 */
		if (unlikely(s.reach == PHYS_REACH_REMOTE) && (w = phys_remote_gate(q->dev->ctx->phys, s.pa))) {
			dev_test_hook hook = atomic_load_explicit(&dev_test_remote_record, memory_order_acquire);

			if (unlikely(hook))
				hook();
			if (likely(phys_gate_enter(w))) {
				held = w;
				break;
			}
			/* Waiting: its monitor lets us in before it closes the gate again (phys_gate_yield()). */
			if (!waiting) {
				waiting = w;
				phys_gate_wait_begin(w);
			}
			/* Its invalidation may unmap the record's page: translated afresh once it is done. */
			if (remote_gate_wait(q, w))
				continue;
			goto fault;
		}
		if (likely(gate_open(q, &s)))
			break;
		gate_wait(q);
	}
	if (unlikely(waiting))
		phys_gate_wait_end(waiting);
	if (unlikely(s.reach == PHYS_REACH_REMOTE)) {
		remote_completion(q, &s, c);
		if (held)
			phys_gate_leave(held);
		return;
	}
	/* A record is a device write like any other: in non-coherent memory, its lines must be the device's. */
	if (unlikely(q->oracle))
		mem_nc_device_access(q->mem, s.pa, sizeof(*rec), true);
	rec = (struct iovm_completion *)s.ptr;
	memcpy((uint8_t *)rec + 1, (const uint8_t *)c + 1, sizeof(*rec) - 1);
	__atomic_store_n(&rec->status, c->status, __ATOMIC_RELEASE);
	return;

fault:
	if (waiting)
		phys_gate_wait_end(waiting);
	counter_add(&q->faults, 1);
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
		/*
		 * In the batch's address space, whatever the child says: a
		 * submitter confined to one PASID (a client of a device process)
		 * must not reach another's memory through a child it wrote.
		 */
		child.pasid = d->pasid;
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
		counter_add(&x->q->errors, 1);
	} else if (d->op == IOVM_OP_COPY && copy_whole(x)) {
		/* run_linear()'s end, for what it would have done. */
		x->c->bytes_completed = d->len;
		x->c->status = IOVM_STATUS_SUCCESS;
		counter_add(&x->q->bytes, d->len);
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
		/*
		 * The data moved: let go of another process's count (read_dev()
		 * keeps it), or a record there would wait for a gate whose
		 * monitor waits for that count.
		 */
		gate_release(x);
		x->completing = true;
		engine_write_completion(x->q, d->pasid, d->completion, x->c);
	}
}

/*
 * Foreign memory vanished under an access (the application unmapped it
 * before the monitor could say so): a bus fault at the IOVA that reached
 * it, with the bytes done before the stretch under way.
 */
static void bus_fault(struct exec *x, const void *addr)
{
	iova_t iova = iova_make(0);
	unsigned access = IOVM_MAP_READ;

	for (unsigned i = 0; i < x->cur_n; i++) {
		const uint8_t *p = x->cur[i].ptr;

		if ((const uint8_t *)addr >= p && (const uint8_t *)addr < p + x->cur_len) {
			iova = iova_add(x->cur[i].iova, (uint64_t)((const uint8_t *)addr - p));
			access = x->cur[i].access;
			break;
		}
	}
	x->c->status = IOVM_STATUS_PAGE_FAULT;
	x->c->fault_reason = IOVM_FAULT_BUS;
	x->c->fault_access = (uint8_t)access;
	x->c->fault_addr = iova_val(iova);
	x->c->bytes_completed = (uint32_t)x->done;
	counter_add(&x->q->faults, 1);
	counter_add(&x->q->bus_faults, 1);
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
			engine_write_completion(x->q, x->d->pasid, x->d->completion, x->c);
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
	/* However it ended (a fault, a mismatch), it is out of the other process's memory now. */
	gate_release(&x);
	gate_unwait(&x);
}
