/* SPDX-License-Identifier: MIT */
/*
 * reg.h - memory registration, as the layers above it and the context use it.
 */
#ifndef IOVM_REG_REG_H
#define IOVM_REG_REG_H

#include <stdbool.h>
#include <stdint.h>

struct iovm_ctx;
struct reg_space;

int reg_create(struct iovm_ctx *ctx, struct reg_space **out);
/* Deregisters what is left and stops the monitor. No device may be running. */
void reg_destroy(struct reg_space *rs);

#endif /* IOVM_REG_REG_H */
