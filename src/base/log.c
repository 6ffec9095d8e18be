/* SPDX-License-Identifier: MIT */
/*
 * log.c - the process-wide log level and handler.
 *
 * A library logs rarely and never on a hot path, so a handler swap need not
 * be cheap: handler and argument are published together under a mutex, and
 * the level is an atomic read on every call.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

#include "base/error.h"
#include "base/lock.h"
#include "base/log.h"

static const char *const level_names[] = {
	[IOVM_LOG_ERR] = "error",   [IOVM_LOG_WARN] = "warning", [IOVM_LOG_NOTICE] = "notice",
	[IOVM_LOG_INFO] = "info",   [IOVM_LOG_DEBUG] = "debug",
};

static _Atomic int log_level = IOVM_LOG_WARN;

/* log_lock protects log_handler and log_handler_arg. */
static struct mutex log_lock = MUTEX_INITIALIZER;
static iovm_log_fn log_handler;
static void *log_handler_arg;

bool log_enabled(int level)
{
	return level <= atomic_load_explicit(&log_level, memory_order_relaxed);
}

void log_msg(int level, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);

	mutex_lock(&log_lock);
	if (log_handler)
		log_handler(log_handler_arg, (enum iovm_log_level)level, buf);
	else
		fprintf(stderr, "iovm: %s: %s\n", level_names[level], buf);
	mutex_unlock(&log_lock);
}

IOVM_API int iovm_log_set_level(int level)
{
	err_enter();
	if (level < IOVM_LOG_ERR || level > IOVM_LOG_DEBUG)
		return err_inval("level < IOVM_LOG_ERR || level > IOVM_LOG_DEBUG");
	atomic_store_explicit(&log_level, level, memory_order_relaxed);
	return 0;
}

IOVM_API int iovm_log_set_handler(iovm_log_fn fn, void *arg)
{
	err_enter();
	mutex_lock(&log_lock);
	log_handler = fn;
	log_handler_arg = fn ? arg : NULL;
	mutex_unlock(&log_lock);
	return 0;
}
