/* SPDX-License-Identifier: MIT */
/*
 * error.h - reporting an error with a sentence that says what was wrong.
 *
 * Every iovm call returns a negative errno. Where the errno alone would leave
 * the caller guessing (which option, which value), the failing function also
 * leaves a message in the calling thread's detail buffer, which
 * iovm_error_detail() returns.
 */
#ifndef IOVM_BASE_ERROR_H
#define IOVM_BASE_ERROR_H

#include "base/compiler.h"

/*
 * err_detail() - record a message for the calling thread and log it at @level.
 * Returns @err, so that a caller can write: return err_detail(-EINVAL, ...).
 */
__printf(3, 4) int err_detail(int err, int level, const char *fmt, ...);

/* Forget the calling thread's message: a public call starts with a clean slate. */
void err_clear(void);

#endif /* IOVM_BASE_ERROR_H */
