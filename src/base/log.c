/* SPDX-License-Identifier: MIT */
/*
 * log.c - the process-wide log level and handler.
 *
 * A library logs rarely and never on a hot path, so a handler swap need not
 * be cheap: handler and argument are published together under a mutex, and
 * the level is an atomic read on every call.
 *
 * A thread that may not wait here (log.h: log_hold()) leaves its messages
 * in a fixed set of slots, claimed lock-free; whoever next takes the lock
 * hands them to the handler first, in the order they were held.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

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

#define HELD_SLOTS 16
#define HELD_LEN 256

enum { HELD_FREE, HELD_FILLING, HELD_READY };

struct held_msg {
	_Atomic int state; /* HELD_*: FREE -> FILLING by a holder, READY, FREE again under log_lock */
	int level;         /* the filler's, then read under log_lock after READY */
	uint64_t ticket;   /* likewise: the order messages were held in */
	char text[HELD_LEN];
};

static struct held_msg held[HELD_SLOTS];
static _Atomic uint64_t held_tickets;
static _Atomic unsigned long held_dropped;
/* Messages claimed and not yet handed over: counted before they are READY. */
_Atomic unsigned log_held_pending;
__thread unsigned log_hold_depth __tls_ie;

/* A holder: keep @text for later, in a free slot, or count it as dropped. Never waits. */
static void held_push(int level, const char *text)
{
	for (unsigned i = 0; i < HELD_SLOTS; i++) {
		struct held_msg *m = &held[i];
		int expect = HELD_FREE;
		size_t len;

		if (!atomic_compare_exchange_strong_explicit(&m->state, &expect, HELD_FILLING, memory_order_acquire,
							     memory_order_relaxed))
			continue;
		m->level = level;
		m->ticket = atomic_fetch_add_explicit(&held_tickets, 1, memory_order_relaxed);
		len = strnlen(text, HELD_LEN - 1); /* a longer message is cut */
		memcpy(m->text, text, len);
		m->text[len] = '\0';
		atomic_fetch_add_explicit(&log_held_pending, 1, memory_order_relaxed);
		atomic_store_explicit(&m->state, HELD_READY, memory_order_release);
		return;
	}
	atomic_fetch_add_explicit(&held_dropped, 1, memory_order_relaxed);
}

static void emit(int level, const char *text)
{
	lock_assert_held(&log_lock);
	if (log_handler)
		log_handler(log_handler_arg, (enum iovm_log_level)level, text);
	else
		fprintf(stderr, "iovm: %s: %s\n", level_names[level], text);
}

/* Hand every held message to the handler, oldest first. Needs log_lock. */
static void held_drain(void)
{
	unsigned long dropped;

	lock_assert_held(&log_lock);
	for (;;) {
		struct held_msg *oldest = NULL;

		for (unsigned i = 0; i < HELD_SLOTS; i++) {
			struct held_msg *m = &held[i];

			if (atomic_load_explicit(&m->state, memory_order_acquire) == HELD_READY &&
			    (!oldest || m->ticket < oldest->ticket))
				oldest = m;
		}
		if (!oldest)
			break;
		emit(oldest->level, oldest->text);
		atomic_store_explicit(&oldest->state, HELD_FREE, memory_order_release);
		atomic_fetch_sub_explicit(&log_held_pending, 1, memory_order_relaxed);
	}
	dropped = atomic_exchange_explicit(&held_dropped, 0, memory_order_relaxed);
	if (dropped) {
		char buf[96];

		snprintf(buf, sizeof(buf), "%lu messages dropped (logged where no thread may wait)", dropped);
		emit(IOVM_LOG_WARN, buf);
	}
}

void log_flush_held(void)
{
	if (log_hold_depth)
		return;
	mutex_lock(&log_lock);
	held_drain();
	mutex_unlock(&log_lock);
}

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

	if (log_hold_depth) {
		held_push(level, buf);
		return;
	}
	mutex_lock(&log_lock);
	held_drain();
	emit(level, buf);
	mutex_unlock(&log_lock);
}

void log_set_level(int level)
{
	atomic_store_explicit(&log_level, level, memory_order_relaxed);
}

IOVM_API int iovm_log_set_level(int level)
{
	err_enter();
	if (level < IOVM_LOG_ERR || level > IOVM_LOG_DEBUG)
		return err_inval("level < IOVM_LOG_ERR || level > IOVM_LOG_DEBUG");
	log_set_level(level);
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
