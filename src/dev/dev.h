/* SPDX-License-Identifier: MIT */
/*
 * dev.h - devices, as the context sees them: a list to close at iovm_close().
 */
#ifndef IOVM_DEV_DEV_H
#define IOVM_DEV_DEV_H

struct iovm_ctx;
struct dev_space;

int dev_create(struct iovm_ctx *ctx, struct dev_space **out);
/* Closes the devices left open. */
void dev_destroy(struct dev_space *ds);

#endif /* IOVM_DEV_DEV_H */
