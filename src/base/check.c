/* SPDX-License-Identifier: MIT */
/*
 * check.c - what a failed IOVM_ASSERT() or IOVM_WARN_ON() does.
 */
#include <stdio.h>
#include <stdlib.h>

#include "base/check.h"
#include "base/log.h"

static _Atomic unsigned long warnings;

void check_assert_failed(const char *file, int line, const char *cond)
{
	log_err("BUG at %s:%d: %s", file, line, cond);
	/* The handler may drop it: say it on stderr too, then stop. */
	fprintf(stderr, "iovm: BUG at %s:%d: %s\n", file, line, cond);
	abort();
}

void check_warn(_Atomic bool *once, const char *file, int line, const char *cond)
{
	atomic_fetch_add_explicit(&warnings, 1, memory_order_relaxed);
	if (!atomic_exchange_explicit(once, true, memory_order_relaxed))
		log_warn("WARNING at %s:%d: %s", file, line, cond);
}

unsigned long check_warnings(void)
{
	return atomic_load_explicit(&warnings, memory_order_relaxed);
}
