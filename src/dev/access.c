/* SPDX-License-Identifier: MIT */
/*
 * access.c - how the software engine reaches the memory a descriptor
 * names: every byte through iommu_access(), span by span (a span ends
 * where the leaf, or the bus granule, does); keyed ranges through their
 * keys first. An access the domain does not map or permit stops the
 * descriptor there, with the bytes done and the faulting IOVA in the
 * completion. A descriptor that asks to block on faults instead leaves the
 * device-side section, lets the domain's fault handler resolve the fault,
 * comes back, translates its spans afresh (the handler may have remapped
 * anything) and goes on. Faults on on-demand registrations are page
 * requests the registration layer answers, whatever the descriptor asks.
 */
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/counter.h"
#include "base/ctx.h"
#include "base/fault_inject.h"
#include "base/log.h"
#include "dev/exec.h"
#include "mem/mem.h"
#include "reg/reg.h"

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
	x->c->fault_addr = iova_val(f->iova);
	x->c->fault_access = (uint8_t)f->access;
	x->c->fault_reason = (uint8_t)f->reason;
	counter_add(&x->q->faults, 1);
}

/*
 * The memory monitor closes the foreign gate while it invalidates what an
 * application's munmap (or madvise, or mremap) hit: leave the device-side
 * section, so that it can finish, and come back once the gate is open.
 * Whatever was translated before is suspect afterwards.
 */
void gate_wait(struct iovm_queue *q)
{
	iommu_exit(q->tlb);
	q->sections_left++;
	for (unsigned spins = 0; atomic_load_explicit(q->foreign_gate, memory_order_acquire); spins++) {
		/* The invalidator may be putting a hook's batch off: we wait for it (again now and then). */
		if (spins % 4096 == 0)
			reg_kick(q->dev->ctx->reg);
		if (spins > 64)
			sched_yield();
	}
	iommu_enter(q->tlb);
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
		counter_add(&x->q->errors, 1);
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
int key_check(struct exec *x, uint32_t key, uint64_t va, uint64_t len, unsigned access)
{
	struct reg_space *rs = x->q->dev->ctx->reg;
	uint64_t at = va, end = va + len;
	unsigned tries = 0;

	if (!(x->d->flags & IOVM_DESC_KEYED) || !key)
		return 0;
	for (;;) {
		struct iovm_domain *dom = iommu_client_domain(x->q->dev->client, x->pasid);
		uint64_t contig;
		iova_t iova;
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
		counter_add(&x->q->errors, 1);
		return -EFAULT;
	}
}

/*
 * Another process's memory went (unmapped there, or the process is gone):
 * a bus fault at @iova, as foreign memory that vanished under an access.
 */
static void remote_fault(struct exec *x, iova_t iova, unsigned access, const char *why, int err)
{
	/* Which of the ways a bus fault comes about: the completion cannot say, a debug log can. */
	log_debug("device: bus fault at %#llx (%s) of PASID %u: %s (%s)", (unsigned long long)iova_val(iova),
		  access & IOVM_MAP_WRITE ? "write" : "read", x->pasid, why, err ? strerror(err) : "-");
	x->c->status = IOVM_STATUS_PAGE_FAULT;
	x->c->fault_reason = IOVM_FAULT_BUS;
	x->c->fault_access = (uint8_t)access;
	x->c->fault_addr = iova_val(iova);
	counter_add(&x->q->faults, 1);
	counter_add(&x->q->bus_faults, 1);
}

/*
 * Whether a fault at @iova may be resolved once more (@unmaps: the
 * domain's iommu_unmaps_begun() now; constant where unmaps are not seen).
 * Back at the address resolved last with nothing unmapped since, the
 * answer did not hold: stuck, RESOLVE_STUCK times in a row at most. Taken
 * back by an unmap in between (the owner discarded the page, or a pin
 * budget evicted it, before the device got to it: on a loaded machine the
 * device may wait long to run after the answer), it is a race, not the
 * resolver's failure: asked again, within RESOLVE_IDLE.
 */
static bool resolve_allowed(struct exec *x, iova_t iova, uint64_t unmaps)
{
	if (iova_eq(iova, x->last_resolved) && unmaps == x->resolved_unmaps)
		x->stuck++;
	else
		x->stuck = 0;
	return x->stuck < RESOLVE_STUCK && x->resolved_idle < RESOLVE_IDLE;
}

/* The fault at @iova resolved (@unmaps: as resolve_allowed()'s, read before it was asked). */
static void resolve_done(struct exec *x, iova_t iova, uint64_t unmaps)
{
	x->resolved_idle++;
	x->last_resolved = iova;
	x->resolved_unmaps = unmaps;
	counter_add(&x->q->page_requests, 1);
}

/*
 * Nothing is mapped at @rva of the other process. A descriptor that asks
 * to block on faults asks the queue's page request hook, outside its
 * section (the other process answers when it can): -EAGAIN when the page
 * is there now, to be translated afresh; else the fault completes it.
 * Bounded as the resolver of local faults is: as many requests as the
 * descriptor needs, but RESOLVE_STUCK in a row at one address, and
 * RESOLVE_IDLE between two stretches that moved bytes. (A count of all
 * its requests failed a copy that simply needed many, each page taken
 * back by the owner's discards or its pin budget before the device used
 * it: a loaded machine, where the device waits long to run, saw it.)
 */
static int remote_missing(struct exec *x, struct side *s, uint64_t rva, unsigned access, int err)
{
	struct iovm_queue *q = x->q;
	int ret;

	if (!(x->d->flags & IOVM_DESC_BLOCK_ON_FAULT) || !q->page_request || !resolve_allowed(x, s->iova, 0)) {
		remote_fault(x, s->iova, access, "nothing mapped there, no page request", err);
		return -EFAULT;
	}
	/* The answer may come from a thread the monitor's yield would wait for: no longer waiting. */
	gate_unwait(x);
	iommu_exit(q->tlb);
	q->sections_left++;
	ret = q->page_request(q->page_request_arg, rva, access);
	iommu_enter(q->tlb);
	if (ret) {
		remote_fault(x, s->iova, access, "page request refused", -ret);
		return -EFAULT;
	}
	resolve_done(x, s->iova, 0);
	return -EAGAIN;
}

/*
 * A span of another process's memory (@span->ptr is its address there):
 * the side works in its bounce buffer, filled from the memory file if it
 * reads. The memory file says EIO where nothing is mapped and reads
 * nothing once the process is gone: a fault at the first byte not read,
 * or a page request (remote_missing()), which may ask for the span again
 * (-EAGAIN). A side that only writes has its page's first byte read, so
 * that a hole is found before the stretch moves a byte anywhere (only the
 * other process unmapping the page in between is found at the pwrite()),
 * unless the operation can count a partial write-back (write_exact).
 * Inside the section: the window, and so its file, stays while it lasts.
 */
static int remote_span(struct exec *x, struct side *s, const struct iommu_span *span)
{
	uint64_t want = MIN(span->len, REMOTE_BOUNCE), got = 0, rva = (uint64_t)(uintptr_t)span->ptr;
	int fd = phys_remote_fd(x->q->dev->ctx->phys, span->pa);
	uint8_t *bounce;

	if (s->key)
		want = MIN(want, s->keyed);
	if (!x->q->bounce)
		x->q->bounce = fi_malloc(REMOTE_SIDES * REMOTE_BOUNCE);
	if (fd < 0 || !x->q->bounce) {
		remote_fault(x, s->iova, s->access, fd < 0 ? "no memory file" : "no bounce buffer", fd < 0 ? -fd : ENOMEM);
		return -EFAULT;
	}
	bounce = x->q->bounce + (size_t)s->slot * REMOTE_BOUNCE;
	if (!(s->access & IOVM_MAP_READ) && !x->write_exact) {
		uint8_t probe;
		ssize_t r;

		/*
		 * A side that only writes: is the page there? Up to the page's
		 * end, the next page probed in its own span. Else the operation
		 * would do the stretch (into the other destinations, into its
		 * CRC) and only the pwrite() would find the hole, too late.
		 */
		want = MIN(want, SZ_4K - (rva & (SZ_4K - 1)));
		r = pread(fd, &probe, 1, (off_t)rva);
		if (r != 1)
			return remote_missing(x, s, rva, IOVM_MAP_WRITE, r < 0 ? errno : 0);
	}
	if (s->access & IOVM_MAP_READ) {
		int err = 0;

		while (got < want) {
			ssize_t r = pread(fd, bounce + got, want - got, (off_t)(rva + got));

			if (r > 0) {
				got += (uint64_t)r;
			} else if (r < 0 && errno == EINTR) {
				continue;
			} else {
				err = r < 0 ? errno : 0; /* 0: the process is gone */
				break;
			}
		}
		if (!got)
			return remote_missing(x, s, rva, IOVM_MAP_READ, err);
		want = got;
	}
	s->rfd = fd;
	s->rva = rva;
	s->ptr = bounce;
	s->pa = span->pa;
	s->avail = want;
	return 0;
}

/*
 * Out of the section to have another process move bytes of its
 * registration (iommu_delegate()): a descriptor waiting for a gate counts
 * itself out first, as for a page request, since that process's answer
 * may wait for an invalidation that waits for this section.
 */
static int delegate(struct exec *x, iova_t iova, void *buf, uint64_t len, unsigned op, uint64_t *done,
		    unsigned *reason)
{
	int ret;

	gate_release(x);
	gate_unwait(x);
	iommu_exit(x->q->tlb);
	x->q->sections_left++;
	ret = iommu_delegate(x->q->dev->client, x->pasid, iova, buf, len, op, done, reason);
	iommu_enter(x->q->tlb);
	return ret;
}

/* A fault at @iova in another process's registration, for @reason (an IOVM_FAULT_*). */
static void delegated_fault(struct exec *x, iova_t iova, unsigned access, unsigned reason)
{
	remote_fault(x, iova, access, "delegated", 0);
	x->c->fault_reason = (uint8_t)reason;
}

/*
 * A span of another process's registration in a shared domain: the side
 * works in its bounce buffer, which that process fills (a side that
 * reads) or takes back (stretch_done(), remote_write()). A side that
 * only writes has its page probed for a write first, as remote_span()
 * does, unless the operation counts a partial write-back. Each ask
 * leaves the section: every other side is translated again after it,
 * while the bytes in a delegated side's buffer stay (what the other
 * process's memory held at that moment).
 */
static int delegated_span(struct exec *x, struct side *s, const struct iommu_span *span)
{
	uint64_t want = MIN(span->len, REMOTE_BOUNCE), got = 0;
	unsigned reason;
	uint8_t *bounce;
	int ret = 0;

	if (s->key)
		want = MIN(want, s->keyed);
	if (!x->q->bounce)
		x->q->bounce = fi_malloc(REMOTE_SIDES * REMOTE_BOUNCE);
	if (x->host || !x->q->bounce) {
		remote_fault(x, s->iova, s->access, x->host ? "delegated, host access" : "no bounce buffer", 0);
		return -EFAULT;
	}
	bounce = x->q->bounce + (size_t)s->slot * REMOTE_BOUNCE;
	if (s->access & IOVM_MAP_READ)
		ret = delegate(x, s->iova, bounce, want, IOMMU_DELEGATE_READ, &got, &reason);
	else if (!x->write_exact) {
		want = MIN(want, SZ_4K - (iova_val(s->iova) & (SZ_4K - 1)));
		ret = delegate(x, s->iova, NULL, want, IOMMU_DELEGATE_PROBE, &got, &reason);
	} else {
		/* What gets written is found at the write-back, which counts the bytes it wrote. */
		got = want;
	}
	sides_forget_local(x);
	if (!got) {
		delegated_fault(x, s->iova, s->access & IOVM_MAP_READ ? IOVM_MAP_READ : IOVM_MAP_WRITE,
				ret ? reason : IOVM_FAULT_BUS);
		return -EFAULT;
	}
	s->rfd = SIDE_DELEGATED;
	s->rva = 0;
	s->ptr = bounce;
	s->pa = span->pa;
	s->avail = got;
	return 0;
}

/* stretch_done(): the @n bytes the operation wrote in @s's bounce buffer, to the other process. */
int remote_write(struct exec *x, struct side *s, uint64_t n)
{
	uint64_t put = 0;
	int err = 0;

	if (s->rfd == SIDE_DELEGATED) {
		unsigned reason = IOVM_FAULT_BUS;

		/* The other process answers for less than a bounce buffer at a time: ask until all is written. */
		while (put < n) {
			uint64_t got = 0;
			int ret = delegate(x, iova_add(s->iova, put), s->ptr + put, n - put, IOMMU_DELEGATE_WRITE, &got,
					   &reason);

			put += got;
			if (ret || !got)
				break;
		}
		if (put == n)
			return 0;
		x->partial = x->write_exact ? put : 0;
		delegated_fault(x, iova_add(s->iova, put), IOVM_MAP_WRITE, reason);
		return -EFAULT;
	}

	while (put < n) {
		ssize_t r = pwrite(s->rfd, s->ptr + put, n - put, (off_t)(s->rva + put));

		if (r > 0) {
			put += (uint64_t)r;
		} else if (!(r < 0 && errno == EINTR)) {
			err = r < 0 ? errno : 0;
			break;
		}
	}
	if (put == n)
		return 0;
	/* The bytes before the hole are written: counted where nothing else was done past them. */
	x->partial = x->write_exact ? put : 0;
	remote_fault(x, iova_add(s->iova, put), IOVM_MAP_WRITE, "write-back short", err);
	return -EFAULT;
}

/*
 * A fault not present at @f->iova of a shared domain, in another
 * process's registration: that process probes the page, which brings an
 * on-demand page in (its own monitor and pin budget answer). Outside
 * the section. 0 once the page is there; -ENOENT otherwise.
 */
static int delegated_resolve(struct exec *x, const struct iovm_fault *f)
{
	unsigned op = f->access & IOVM_MAP_WRITE ? IOMMU_DELEGATE_PROBE : IOMMU_DELEGATE_PROBE_READ, reason;
	uint64_t done;

	return iommu_delegate(x->q->dev->client, x->pasid, f->iova, NULL, 1, op, &done, &reason) ? -ENOENT : 0;
}

/*
 * Make @s->avail non-zero: a page-contiguous run of up to @want bytes
 * where the domain maps one. On a fault: block on it if asked (and a
 * handler resolves it), else complete with it. -EFAULT when the operation
 * stops.
 */
static int side_span(struct exec *x, struct side *s, uint64_t want)
{
	for (;;) {
		struct iommu_span span;
		struct iovm_fault f;

		/* A keyed side asks its key first, and again after the device left its section. */
		if (s->key && !s->keyed && side_key(x, s))
			return -EFAULT;
		if (x->leaves)
			want = 0;
		if (!iommu_access_run(x->q->tlb, x->pasid, s->iova, s->access, s->key ? MIN(want, s->keyed) : want,
				      &span, &f)) {
			if (unlikely(!gate_open(x->q, &span))) {
				gate_wait(x->q);
				sides_forget(x);
				continue;
			}
			if (unlikely(span.reach == PHYS_REACH_DELEGATED))
				return delegated_span(x, s, &span);
			if (unlikely(span.reach == PHYS_REACH_REMOTE)) {
				int ret = remote_span(x, s, &span);

				if (ret != -EAGAIN)
					return ret;
				/* Asked and answered, outside the section: everything afresh. */
				sides_forget(x);
				continue;
			}
			s->rfd = -1;
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
		/* Read before asking: an unmap from here on, even before the answer comes, took the page back. */
		uint64_t unmaps = f.reason == IOVM_FAULT_NOT_PRESENT ? iommu_unmaps_begun(x->q->dev->client, x->pasid) : 0;

		bool allowed = f.reason == IOVM_FAULT_NOT_PRESENT && resolve_allowed(x, f.iova, unmaps);

		if (f.reason == IOVM_FAULT_NOT_PRESENT && !allowed)
			log_debug("device: fault at %#llx of PASID %u: resolved %u times in a row, %u since bytes moved: given up",
				  (unsigned long long)iova_val(f.iova), x->pasid, x->stuck, x->resolved_idle);
		if (allowed) {
			int ret;

			/* A page request's answer may come from a thread the monitor's yield would wait for. */
			gate_unwait(x);
			iommu_exit(x->q->tlb);
			x->q->sections_left++;
			ret = iommu_resolve(x->q->dev->client, &f);
			/* Not ours: maybe another process's on-demand registration, whose page request that process makes. */
			if (ret == -ENOENT && !x->host)
				ret = delegated_resolve(x, &f);
			iommu_enter(x->q->tlb);
			if (!ret) {
				resolve_done(x, f.iova, unmaps);
				sides_forget(x);
				continue;
			}
			log_debug("device: fault at %#llx of PASID %u: page request refused (%s)",
				  (unsigned long long)iova_val(f.iova), x->pasid, strerror(-ret));
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
		counter_add(&x->q->fault_retries, 1);
		/* What was translated before may be gone: every span afresh. */
		sides_forget(x);
	}
}

/*
 * How long a closed gate of another process keeps a descriptor out of its
 * memory before it faults, while its owner opens it not once: a process
 * that died or stopped with it closed, or one of its calls stuck...
 */
#define REMOTE_GATE_TIMEOUT_NS (UINT64_C(5) * 1000000000)
/* ...and at most, however often it opens: the words are the client's to write, and trusted for nothing... */
#define REMOTE_GATE_LIMIT_NS (UINT64_C(60) * 1000000000)
/* ...counting at most this much of each gap between two looks at it (clock_wait_tick()). */
#define REMOTE_GATE_GAP_NS (UINT64_C(50) * 1000000)

/*
 * Whether @w's gate opened (was seen open: it may be closed again by
 * the return, and the caller waits again). An owner that opens it and closes it again,
 * over and over (threads that discard memory in a loop), is alive and
 * moving: each opening (the gate at 0, if only for a moment) starts the
 * timeout afresh, and its closers hold off for a waiting descriptor
 * (phys_gate_yield()), so that it gets in.
 * A timeout counted across openings faulted descriptors on memory nobody
 * took away, when the closers' hold-off ran out before the device, short
 * of CPU, looked again (attack18's churn on a loaded machine).
 */
bool remote_gate_wait(struct iovm_queue *q, struct phys_gate_words *w)
{
	uint32_t opened = atomic_load_explicit(&w->opened, memory_order_acquire), openings = 0;
	struct clock_wait since_open, all;
	bool open = false;

	clock_wait_start(&since_open, clock_now_ns());
	all = since_open;
	iommu_exit(q->tlb);
	q->sections_left++;
	for (;;) {
		/*
		 * Seen open: what the caller waited for, whether or not it is
		 * closed again by the time it looks (the caller tries to get
		 * in, and waits again). Read once more after the loop, a gate
		 * closed again in between faulted a descriptor that had
		 * waited not a millisecond: "0 ms in all, 1 openings"
		 * (attack18's pinned churn).
		 */
		if (!atomic_load_explicit(&w->gate, memory_order_acquire)) {
			open = true;
			break;
		}
		uint32_t now_opened = atomic_load_explicit(&w->opened, memory_order_acquire);
		uint64_t now = clock_now_ns();

		if (clock_wait_tick(&all, now, REMOTE_GATE_GAP_NS) >= REMOTE_GATE_LIMIT_NS)
			break;
		if (now_opened != opened) {
			openings += now_opened - opened;
			opened = now_opened;
			clock_wait_start(&since_open, now);
		} else if (clock_wait_tick(&since_open, now, REMOTE_GATE_GAP_NS) >= REMOTE_GATE_TIMEOUT_NS) {
			break;
		}
		sched_yield();
	}
	iommu_enter(q->tlb);
	/* Which bound ran out, and how the owner moved meanwhile: a hook stuck with it closed, or closers never done. */
	if (!open)
		log_debug("device: gate closed at %u: %llu ms waited since its last opening, %llu ms in all, %u openings",
			  atomic_load_explicit(&w->gate, memory_order_relaxed),
			  (unsigned long long)(since_open.waited / 1000000), (unsigned long long)(all.waited / 1000000),
			  openings);
	return open;
}

/*
 * Sides in another process's memory whose owner's memory monitor is
 * letting a munmap() go (phys/gate.c): its count is held from here to
 * the stretch's write-back, so that its monitor waits for this access;
 * a gate found closed sends the descriptor out of its section until it
 * opens, then every side is translated afresh (the invalidation it
 * waited for may have taken the mapping away). 0, -EAGAIN (translate
 * again), or -EFAULT when the gate stayed closed.
 */
static int remote_gates(struct exec *x)
{
	for (unsigned i = 0; i < x->nr_sides; i++) {
		struct side *s = x->sides[i];
		struct phys_gate_words *w;

		if (likely(s->rfd < 0) || !(w = phys_remote_gate(x->q->dev->ctx->phys, s->pa)))
			continue;
		if (x->gate_busy == w)
			continue;
		if (likely(phys_gate_enter(w))) {
			gate_release(x); /* one process per descriptor: never two held */
			x->gate_busy = w;
			/* Counted in: its monitor may close the gate again. */
			gate_unwait(x);
			continue;
		}
		gate_release(x);
		/*
		 * Waiting, until a stretch gets in: the monitor holds off closing
		 * the gate again meanwhile, or an application that keeps
		 * unmapping would keep it closed (phys_gate_yield()).
		 */
		if (x->gate_waiting != w) {
			gate_unwait(x);
			phys_gate_wait_begin(w);
			x->gate_waiting = w;
		}
		if (!remote_gate_wait(x->q, w)) {
			gate_unwait(x);
			remote_fault(x, s->iova, s->access, "the owner's gate stayed closed", 0);
			return -EFAULT;
		}
		sides_forget(x);
		return -EAGAIN;
	}
	return 0;
}

/*
 * Whether a stretch of @m bytes may have gone past a 4 KiB page of some
 * side (where a leaf may end) while a side it writes overlaps another
 * side. Leaf by leaf, such an operation reads what it wrote a leaf
 * before; in one run it would not. Those descriptors keep the leaf order.
 */
static bool runs_overlap(const struct exec *x, uint64_t m)
{
	bool crosses = false;

	for (unsigned i = 0; i < x->nr_sides; i++)
		crosses |= m > SZ_4K - (iova_val(x->sides[i]->iova) & (SZ_4K - 1));
	if (!crosses)
		return false;
	for (unsigned i = 0; i < x->nr_sides; i++)
		for (unsigned j = i + 1; j < x->nr_sides; j++) {
			const struct side *a = x->sides[i], *b = x->sides[j];

			if (((a->access | b->access) & IOVM_MAP_WRITE) && a->ptr < b->ptr + m && b->ptr < a->ptr + m)
				return true;
		}
	return false;
}

/* The next stretch every side can take, at most @left; -EFAULT on a fault. */
int stretch(struct exec *x, uint64_t left, uint64_t *n)
{
	uint64_t m = left;
	unsigned i;
	int ret;

	/* The last stretch's hold on another process's memory, if it did not write back. */
	gate_release(x);
again:
	/*
	 * Translate the sides that need it. A fault handler may reset every span
	 * while one side is translated: start over then. It ends, since a
	 * descriptor's handler calls are bounded.
	 */
	i = 0;
	while (i < x->nr_sides) {
		if (x->sides[i]->avail) {
			i++;
			continue;
		}
		if (side_span(x, x->sides[i], left))
			return -EFAULT;
		i = 0;
	}
	ret = remote_gates(x);
	if (unlikely(ret == -EAGAIN))
		goto again;
	if (ret)
		return ret;
	/* Every side translated: bytes move, whatever the faults resolved to get here. */
	x->resolved_idle = 0;
	for (i = 0; i < x->nr_sides; i++)
		m = MIN(m, x->sides[i]->avail);
	if (unlikely(x->nr_sides > 1 && !x->leaves && runs_overlap(x, m))) {
		x->leaves = true;
		/* Translated again, maybe through page requests: not inside the other process's memory meanwhile. */
		gate_release(x);
		sides_forget(x);
		goto again;
	}
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

/* Read @n bytes at @addr (through @key) of the descriptor's domain into @buf (lists, batches). */
int read_dev(struct exec *x, uint32_t key, uint64_t addr, void *buf, uint64_t n)
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
	/* In @buf now: out of the other process's memory (a batch's children run next, and may wait for its gate). */
	gate_release(x);
	x->nr_sides = 0;
	return 0;
}
