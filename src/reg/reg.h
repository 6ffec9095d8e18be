/* SPDX-License-Identifier: MIT */
/*
 * reg.h - memory registration, as the layers above it and the context use it.
 */
#ifndef IOVM_REG_REG_H
#define IOVM_REG_REG_H

#include <stdbool.h>
#include <stdint.h>

#include "base/addr.h"

struct iovm_ctx;
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

#endif /* IOVM_REG_REG_H */
