/* SPDX-License-Identifier: MIT */
/*
 * reg.h - memory registration, as the layers above it and the context use it.
 */
#ifndef IOVM_REG_REG_H
#define IOVM_REG_REG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/addr.h"
#include "base/list.h"

struct iovm_ctx;
struct iovm_mr;
struct reg_space;

struct iovm_domain;

int reg_create(struct iovm_ctx *ctx, struct reg_space **out);
/* Deregisters what is left and stops the monitor. No device may be running. */
void reg_destroy(struct reg_space *rs);

/*
 * reg_key_iova() - the IOVA, in @dom, of @va in the registration @key
 * names, for an @access (IOVM_MAP_READ or IOVM_MAP_WRITE) that a local key
 * must hold as a local right, a remote key as a remote one, over [va,
 * va+len), which must lie in the registration. *@contig: how many bytes
 * from @va the IOVA holds for (an implicit registration's children are
 * apart in IOVA space). Lock-free, for devices inside their device-side
 * sections (MRs go only after a grace period). -ENOKEY for an unknown or
 * stale key (its MR deregistered, or a pinned MR whose every page was
 * invalidated), -EXDEV for an MR of another domain, -EACCES without the
 * right, -ERANGE outside the MR, -EAGAIN where an implicit MR has no child
 * yet: reg_key_grow() it, outside the section, and ask again.
 */
int reg_key_iova(struct reg_space *rs, uint32_t key, uint64_t va, uint64_t len, unsigned access,
		 const struct iovm_domain *dom, iova_t *iova, uint64_t *contig);

/*
 * reg_key_grow() - make the child of the implicit MR @key names that holds
 * @va. Takes the registration locks: never inside a device-side section.
 * 0, -ENOKEY, -ENOMEM, -ENOSPC.
 */
int reg_key_grow(struct reg_space *rs, uint32_t key, uint64_t va);

/*
 * Mirrors of an MR: another device's mapping of the MR's pages (a device
 * process's, iovm_rqueue_map_mr()), made page request by page request
 * (reg_mirror_resolve()), which must go before the pages here do.
 *
 * @fill maps [start, end) of the process's addresses on the mirror's
 * device, once they are pinned here, with @perm (IOVM_MAP_*: what the MR
 * grants and the memory's protection allows now: a device that reaches
 * the memory by another path than the process's page tables, as a
 * process's memory file does, must not write a read-only page); @drop
 * unmaps them there, before the
 * pages go here (the pin budget evicts them, the memory monitor
 * invalidates them, the MR ends). Both run under the registration's lock,
 * which orders them: a drop that follows a fill undoes it. They may
 * block, but never call into registration.
 */
struct reg_mirror {
	int (*fill)(struct reg_mirror *m, uintptr_t start, uintptr_t end, unsigned perm);
	void (*drop)(struct reg_mirror *m, uintptr_t start, uintptr_t end);
	struct list_node link; /* in the MR's mirrors, under reg_space.lock */
};

/* What a mirror of an MR mirrors. */
struct reg_mirror_range {
	uintptr_t addr;         /* as registered */
	uintptr_t start, end;   /* its pages */
	unsigned prot;          /* IOVM_MAP_* it grants */
};

/*
 * reg_mirror_add() - @mr is mirrored by @m until reg_mirror_del(); it
 * cannot be deregistered meanwhile (-EBUSY). *@range: what it mirrors.
 * -EINVAL for an implicit MR (or its child), a registration cache's, or
 * one deregistered.
 */
int reg_mirror_add(struct iovm_mr *mr, struct reg_mirror *m, struct reg_mirror_range *range);
void reg_mirror_del(struct iovm_mr *mr, struct reg_mirror *m);

/*
 * reg_mirror_resolve() - mirror @m's page request for [start, start+len)
 * of @mr (inside it, page aligned) for @access: an on-demand MR pins and
 * maps the pages, within the pin budget, as a fault of its own device
 * would (counted as one); a pinned MR's must still be valid. Then, under
 * the same hold of the lock, @m's fill of the pages still pinned (the pin
 * budget may have taken some back) that hold the one at @at. 0 when they
 * are there and filled; -EFAULT when not (unmapped, or without the rights
 * @access needs, the MR's or the memory's protection), -ENOMEM, -EAGAIN
 * when invalidations kept overtaking it, or what the fill said.
 */
int reg_mirror_resolve(struct reg_mirror *m, struct iovm_mr *mr, uintptr_t start, size_t len, uintptr_t at,
		       unsigned access);

/*
 * A device's own registrations behind iovm's (a verbs device's protection
 * domain: src/dev/verbs.c). A domain bound to a backend has every MR
 * registered there too, after iovm has it (pinned, watched, mapped), and
 * deregistered there first when it goes; the MR then names itself by the
 * device's keys (iovm_mr_query()).
 *
 * @reg registers [addr, addr+len) (addr NULL and len SIZE_MAX: the whole
 * address space, implicitly, on demand) with @access (IOVM_ACCESS_*) and
 * sets the device's handle and keys; a negative errno otherwise. Called
 * without reg_space.lock (a device's registration may take long: it pins
 * gigabytes). @dereg undoes it, or says why it cannot (a negative errno:
 * the registration stays); called under reg_space.lock, it must not call
 * into registration. @advise (may be NULL: -EOPNOTSUPP) prefetches
 * [addr, addr+len) of an on-demand MR, with IOVM_ADVISE_* @flags; called
 * without the lock.
 *
 * The device's paging, given at binding (REG_BACKEND_*): without
 * REG_BACKEND_ODP an on-demand registration is @reg's to refuse; without
 * REG_BACKEND_IMPLICIT, an implicit MR is registered on the device child
 * by child, each child's 64 MiB on demand, as iovm makes them.
 */
struct reg_backend_ops {
	int (*reg)(void *arg, void *addr, size_t len, uint32_t access, void **handle, uint32_t *lkey,
		   uint32_t *rkey);
	int (*dereg)(void *arg, void *handle);
	int (*advise)(void *arg, void *handle, uint32_t lkey, void *addr, size_t len, uint32_t flags);
};

/*
 * reg_backend_bind() - register @dom's MRs through @ops too, from now on;
 * @caps: REG_BACKEND_*.
 * -EBUSY when @dom has MRs already (they would lack the device's) or a
 * backend; -ENOMEM.
 */
#define REG_BACKEND_ODP (1u << 0)      /* the device pages on demand */
#define REG_BACKEND_IMPLICIT (1u << 1) /* ... and registers the whole address space under one key */
int reg_backend_bind(struct reg_space *rs, struct iovm_domain *dom, const struct reg_backend_ops *ops, void *arg,
		     unsigned caps);
/*
 * reg_backend_unbind() - undo it. -EBUSY while @dom has MRs through it (a
 * cache's included), unless @force: then they are deregistered from the
 * backend first and stay iovm's alone (the device goes). 0 also when @dom
 * was not bound.
 */
int reg_backend_unbind(struct reg_space *rs, struct iovm_domain *dom, bool force);

/*
 * reg_kick() - someone waits for the batches begun (a device at the closed
 * gate, a lookup): wake the invalidator, which puts off the hooks'
 * batches otherwise (monitor.c). Lock-free; any thread.
 */
void reg_kick(struct reg_space *rs);

#endif /* IOVM_REG_REG_H */
