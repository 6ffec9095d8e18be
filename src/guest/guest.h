/* SPDX-License-Identifier: MIT */
/*
 * guest.h - the guest layer, as the context creates and destroys it.
 */
#ifndef IOVM_GUEST_GUEST_H
#define IOVM_GUEST_GUEST_H

struct iovm_ctx;
struct guest_space;

int guest_space_create(struct iovm_ctx *ctx, struct guest_space **out);
/* Destroys the guests left (unassigning their devices first). */
void guest_space_destroy(struct guest_space *gs);

#endif /* IOVM_GUEST_GUEST_H */
