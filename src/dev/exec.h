/* SPDX-License-Identifier: MIT */
/*
 * exec.h - one descriptor under way in the software engine: the ranges it
 * reads and writes ("sides"), and how they are reached (access.c: through
 * the IOMMU span by span, through keys, with faults completed or put to the
 * domain's handler), shared by the operations (ops.c).
 */
#ifndef IOVM_DEV_EXEC_H
#define IOVM_DEV_EXEC_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "dev/dev_internal.h"
#include "phys/phys.h"

/* A handler that claims to resolve a fault and does not gets this many tries. */
#define FAULT_RETRIES 16
/* The resolver, as many as a descriptor needs, but this many times in a row at one address. */
#define RESOLVE_STUCK 8
/*
 * ... and this many times between two stretches: sides whose faults undo
 * each other (a pin budget too small for what one descriptor needs at
 * once evicts one side's pages to resolve the other's) would go on for
 * ever; the descriptor completes with the fault instead.
 */
#define RESOLVE_IDLE 64

/*
 * One range an operation reads or writes, and the span of it translated
 * now. A keyed descriptor's range is a key and a virtual address: the key
 * gives the IOVA, and how far it holds (to the end of the registration, or
 * of the child of an implicit one, where the key is asked again).
 */
struct side {
	iova_t iova;
	unsigned access;
	uint8_t *ptr;
	pa_t pa;         /* of ptr: for the oracle's coherency checks */
	uint64_t avail;  /* bytes at ptr; 0: translate again */
	uint32_t key;    /* 0: iova is the address */
	uint64_t va;     /* keyed: the next byte's virtual address */
	uint64_t va_end; /* keyed: where the range ends */
	uint64_t keyed;  /* keyed: bytes from va that iova holds for; 0: ask the key */
	/*
	 * Another process's memory: ptr is in the queue's bounce buffer of
	 * the side's slot, which holds avail bytes read from rva of the memory
	 * file rfd (a side that only writes reads nothing); stretch_done()
	 * writes what the operation wrote there.
	 */
	int rfd;         /* -1: ptr is memory of this process; SIDE_DELEGATED: another's, moved by it */
	uint64_t rva;
	uint8_t slot;    /* its index in exec.sides: which of the queue's bounce buffers is its */
};

/*
 * A side's rfd for another process's registration in a shared domain
 * (PHYS_REACH_DELEGATED): its bounce buffer is filled and written back
 * by that process (iommu_delegate()), outside the section.
 */
#define SIDE_DELEGATED (-2)

struct exec {
	struct iovm_queue *q;
	const struct iovm_desc *d;
	struct iovm_completion *c;
	uint32_t pasid;
	struct side *sides[3];
	unsigned nr_sides;
	unsigned retries;
	unsigned stuck;         /* faults back at last_resolved, in a row, with nothing unmapped since */
	unsigned resolved_idle; /* resolved faults since the last stretch every side could take */
	/*
	 * The access count of the other process whose memory this stretch
	 * reaches (phys/gate.c), held from the gate's check, once every side
	 * is translated, to the stretch's write-back; NULL: none held.
	 */
	struct phys_gate_words *gate_busy;
	/* The other process's words where this descriptor counts itself waiting for its gate; NULL: not waiting. */
	struct phys_gate_words *gate_waiting;
	iova_t last_resolved;
	uint64_t resolved_unmaps; /* iommu_unmaps_begun() when last_resolved was resolved */
	uint64_t done;          /* bytes done, for a fault that jumps out of an operation */
	/*
	 * The stretch the operation under way works on, copied out of the
	 * sides (which may live in frames a fault jumps past): where a bus
	 * fault in foreign memory happened, as an IOVA.
	 */
	struct {
		iova_t iova;
		uint8_t *ptr;
		unsigned access;
	} cur[3];
	uint64_t cur_len;
	unsigned cur_n;
	bool completing;        /* writing the completion record */
	/*
	 * One destination and nothing derived from its bytes (COPY and FILL
	 * from the start, GATHER, SCATTER; not blocking on faults): a
	 * write-back to another process that fails counts the bytes it wrote
	 * (partial), so a side that only writes there is not probed first.
	 */
	/*
	 * Sides are translated a leaf at a time, not in page-contiguous
	 * runs: a stretch found them overlapping, where doing it in one
	 * piece rather than leaf by leaf would change what is read.
	 */
	bool leaves;
	/* The host's transfer (xfer.c), for another process: never delegated on, or it would ask itself round. */
	bool host;
	bool write_exact;
	uint64_t partial;
};

static_assert(sizeof(((struct exec *)0)->sides) / sizeof(struct side *) == REMOTE_SIDES,
	      "a bounce buffer per side a descriptor may have");

static inline void exec_init(struct exec *x, struct iovm_queue *q, const struct iovm_desc *d,
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
	x->resolved_idle = 0;
	x->gate_busy = NULL;
	x->gate_waiting = NULL;
	x->last_resolved = iova_make(0);
	x->resolved_unmaps = 0;
	x->done = 0;
	x->cur_len = 0;
	x->cur_n = 0;
	x->completing = false;
	x->leaves = false;
	x->host = false;
	x->write_exact = false;
	x->partial = 0;
}

/*
 * A side for [addr, addr+len), as a descriptor gives it (its wire format
 * is plain integers): an IOVA, or a virtual address through @key in a
 * keyed descriptor, whose IOVA the key gives.
 */
static inline void side_init(struct exec *x, struct side *s, uint32_t key, uint64_t addr, uint64_t len,
			     unsigned access)
{
	/*
	 * Field by field, as exec_init(): a compound literal is a rep stos,
	 * and the loads of the side that follow (stretch()) cannot be
	 * forwarded from it: they wait for it to retire.
	 */
	s->iova = iova_make(addr);
	s->access = access;
	s->ptr = NULL;
	s->pa = pa_make(0);
	s->avail = 0;
	s->key = 0;
	s->va = 0;
	s->va_end = 0;
	s->keyed = 0;
	s->rfd = -1;
	s->rva = 0;
	s->slot = (uint8_t)x->nr_sides;
	if ((x->d->flags & IOVM_DESC_KEYED) && key) {
		s->key = key;
		s->va = addr;
		s->va_end = addr + len;
	}
	x->sides[x->nr_sides++] = s;
}

static inline void side_advance(struct side *s, uint64_t n)
{
	if (s->key) {
		s->va += n;
		s->keyed -= n;
	}
	s->iova = iova_add(s->iova, n);
	s->rva += n;
	s->ptr += n;
	s->pa = pa_add(s->pa, n);
	s->avail -= n;
}

/* Whether the span may be used: not foreign memory while the gate is closed. */
static inline bool gate_open(struct iovm_queue *q, const struct iommu_span *span)
{
	return span->reach != PHYS_REACH_FOREIGN || !atomic_load_explicit(q->foreign_gate, memory_order_seq_cst);
}

/*
 * access.c. key_check(): whether @key grants @access over all of [va,
 * va+len) (0), or the descriptor completed IOVM_STATUS_KEY (-EFAULT).
 * stretch(): translate every side that needs it; the bytes all can take
 * next, at most @left, in *@n; -EFAULT when a fault completed the
 * descriptor. read_dev(): @n bytes at @addr (through @key) into @buf, as
 * the engine reads lists and batches. gate_wait(): out of the section
 * until the memory monitor opens the foreign gate.
 */
int key_check(struct exec *x, uint32_t key, uint64_t va, uint64_t len, unsigned access);
int stretch(struct exec *x, uint64_t left, uint64_t *n);
int remote_write(struct exec *x, struct side *s, uint64_t n);
int read_dev(struct exec *x, uint32_t key, uint64_t addr, void *buf, uint64_t n);
void gate_wait(struct iovm_queue *q);
/*
 * remote_gate_wait(): out of the section until another process's closed
 * gate (phys/gate.c) opens, at most 5 s of its looking during which the
 * owner opened it not once, 60 s in all (a stretch off the CPU counts
 * 50 ms: clock_wait_tick()): true when it opened (whatever was
 * translated before is suspect), false when it stayed closed.
 */
bool remote_gate_wait(struct iovm_queue *q, struct phys_gate_words *w);

/*
 * The operation did @n bytes of the stretch: what it wrote into another
 * process's memory goes there, and every side moves on. A fault there
 * completes the descriptor: -EFAULT, the stretch not counted done but for
 * x->partial bytes (write_exact). Without write_exact it comes only of the
 * other process unmapping the page since remote_span() found it there;
 * the stretch's bytes may then be in the other destinations, as a write
 * racing one's own munmap lands or not.
 */
/* The other process's access count, if held: this process is out of its memory. */
static inline void gate_release(struct exec *x)
{
	if (unlikely(x->gate_busy)) {
		phys_gate_leave(x->gate_busy);
		x->gate_busy = NULL;
	}
}

/* No longer waiting for the other process's gate: in, or given up (phys_gate_yield() waits for it). */
static inline void gate_unwait(struct exec *x)
{
	if (unlikely(x->gate_waiting)) {
		phys_gate_wait_end(x->gate_waiting);
		x->gate_waiting = NULL;
	}
}

/*
 * The device left its section to have another process move bytes
 * (iommu_delegate()): what it translated may have gone meanwhile, spans
 * and keys alike, but not the bytes in a delegated side's buffer, which
 * are what that process's memory held when it answered.
 */
static inline void sides_forget_local(struct exec *x)
{
	for (unsigned i = 0; i < x->nr_sides; i++)
		if (x->sides[i]->rfd != SIDE_DELEGATED) {
			x->sides[i]->avail = 0;
			x->sides[i]->keyed = 0;
		}
}

static inline int stretch_done(struct exec *x, uint64_t n)
{
	bool left = false;
	int ret = 0;

	/*
	 * Memory files first, under the gate's hold; then delegated sides,
	 * whose write-back leaves the section (and lets the hold go).
	 */
	for (unsigned i = 0; i < 2 * x->nr_sides && !ret; i++) {
		struct side *s = x->sides[i % x->nr_sides];

		if (likely(s->rfd == -1) || !(s->access & IOVM_MAP_WRITE) || (s->rfd == SIDE_DELEGATED) != (i >= x->nr_sides))
			continue;
		left |= s->rfd == SIDE_DELEGATED;
		if (remote_write(x, s, n))
			ret = -EFAULT;
	}
	if (ret) {
		gate_release(x);
		return ret;
	}
	for (unsigned i = 0; i < x->nr_sides; i++) {
		side_advance(x->sides[i], n);
		/* A delegated write-back left the section: nothing translated before holds, its own buffer neither. */
		if (unlikely(left)) {
			x->sides[i]->avail = 0;
			x->sides[i]->keyed = 0;
		}
		/*
		 * What is left in a gated side's bounce buffer was read under
		 * this hold: once it is let go, the owner's munmap() may return
		 * and its memory change, so the next stretch reads afresh.
		 */
		if (unlikely(x->gate_busy) && x->sides[i]->rfd >= 0)
			x->sides[i]->avail = 0;
	}
	gate_release(x);
	return 0;
}

#endif /* IOVM_DEV_EXEC_H */
