/* SPDX-License-Identifier: MIT */
/*
 * error.h - reporting an error with a sentence that says what was wrong.
 *
 * Every iovm call returns a negative errno. A failing call also leaves a
 * sentence in the calling thread's detail buffer, which iovm_error_detail()
 * returns: which public call failed, and why (which argument, which option,
 * which address).
 *
 * A public call begins with err_enter(): the last call's detail is gone
 * and the next one names this call. A -EINVAL return says which check
 * failed, with err_inval(). The few calls of the hot paths (translation,
 * the registration cache, queue submission) skip err_enter(), which would
 * cost them two thread-local stores; each of their failures sets its
 * detail with err_hot() instead, so that no failing call leaves an earlier
 * call's detail behind.
 */
#ifndef IOVM_BASE_ERROR_H
#define IOVM_BASE_ERROR_H

#include <errno.h>

#include <iovm/base.h>

#include "base/compiler.h"

/* The public call the calling thread is in, as its detail names it; NULL before the first. */
extern __thread const char *err_api __tls_ie;
/* The detail; "" when the last call left none. */
extern __thread char err_detail_buf[] __tls_ie;

/*
 * err_detail() - record a message for the calling thread, prefixed with the
 * public call it is in, and log it at @level. Returns @err, so that a caller
 * can write: return err_detail(-EINVAL, ...).
 */
__printf(3, 4) int err_detail(int err, int level, const char *fmt, ...);

/* A public call begins: forget the last detail; the next one names @api. */
static inline void err_begin(const char *api)
{
	err_api = api;
	err_detail_buf[0] = '\0';
}

#define err_enter() err_begin(__func__)

/* An argument failed the check @what (its C expression, or a sentence): -EINVAL. */
#define err_inval(what) err_detail(-EINVAL, IOVM_LOG_DEBUG, "invalid argument: %s", what)

/* @ret, and when it is a -EINVAL that left no detail (from deep inside), the check @what. */
static inline int err_inval_unsaid(int ret, const char *what)
{
	return ret == -EINVAL && !err_detail_buf[0] ? err_inval(what) : ret;
}

/* A failure of a hot-path public call, which skipped err_enter(). */
#define err_hot(err, ...) (err_begin(__func__), err_detail(err, IOVM_LOG_DEBUG, __VA_ARGS__))

/* Forget the calling thread's message (inside a call, once an error was dealt with). */
void err_clear(void);

#endif /* IOVM_BASE_ERROR_H */
