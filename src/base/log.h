/* SPDX-License-Identifier: MIT */
/*
 * log.h - iovm's log: one process-wide level and handler.
 */
#ifndef IOVM_BASE_LOG_H
#define IOVM_BASE_LOG_H

#include <stdatomic.h>

#include <iovm/base.h>

#include "base/compiler.h"

__printf(2, 3) void log_msg(int level, const char *fmt, ...);
bool log_enabled(int level);

/*
 * Held messages. A thread must not run the log handler, nor wait for the
 * log lock (held by a thread inside the handler), where waiting for malloc
 * or for the memory monitor's reader would deadlock: inside a device-side
 * section, or holding a lock devices take there. glibc's fork() holds
 * malloc's locks until the monitor's reader has read its event, the reader
 * waits for every device to leave its section, and a handler may allocate
 * (or free memory that munmap gives back, another event). Such a thread
 * holds its messages: log_msg() formats them into a fixed slot (no
 * allocation: plain conversions only, no %ls, no positional arguments, no
 * widths in the hundreds) and the last log_release() hands them to the
 * handler. A message that finds every slot taken is counted as dropped.
 *
 * log_hold() and log_release() nest, per thread; a thread-local counter and,
 * on release, a read of a line written only when messages are held.
 */
extern __thread unsigned log_hold_depth __tls_ie;
extern _Atomic unsigned log_held_pending;
void log_flush_held(void);

static inline void log_hold(void)
{
	log_hold_depth++;
}

static inline void log_release(void)
{
	if (--log_hold_depth == 0 && unlikely(atomic_load_explicit(&log_held_pending, memory_order_relaxed)))
		log_flush_held();
}

/* The level iovm_log_set_level() sets, from inside the library (a level already checked). */
void log_set_level(int level);

#define log_err(...) log_msg(IOVM_LOG_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(IOVM_LOG_WARN, __VA_ARGS__)
#define log_notice(...) log_msg(IOVM_LOG_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(IOVM_LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(IOVM_LOG_DEBUG, __VA_ARGS__)

#endif /* IOVM_BASE_LOG_H */
