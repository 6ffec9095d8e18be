/* SPDX-License-Identifier: MIT */
/*
 * check.h - assertions on iovm's own invariants: IOVM_ASSERT() for what must
 * never be false (the process stops: going on would corrupt memory a device
 * reaches), IOVM_WARN_ON() for what should never be true but can be
 * survived (logged once per place, counted, and the tests fail on any).
 *
 * They check the library, never its caller: bad input is an error return
 * (DESIGN.md rule 5), not an assertion. With the debug_checks build option
 * off both compile to nothing but the evaluation of IOVM_WARN_ON's
 * condition, which callers branch on.
 */
#ifndef IOVM_BASE_CHECK_H
#define IOVM_BASE_CHECK_H

#include <stdatomic.h>
#include <stdbool.h>

#include "base/compiler.h"

__attribute__((noreturn, cold)) void check_assert_failed(const char *file, int line, const char *cond);
__attribute__((cold)) void check_warn(_Atomic bool *once, const char *file, int line, const char *cond);
/* IOVM_WARN_ON()s that fired in this process: the test harness fails on any. */
unsigned long check_warnings(void);

#ifdef IOVM_DEBUG_CHECKS
#define IOVM_ASSERT(cond)                                               \
	do {                                                            \
		if (unlikely(!(cond)))                                  \
			check_assert_failed(__FILE__, __LINE__, #cond); \
	} while (0)

#define IOVM_WARN_ON(cond)                                                  \
	({                                                                  \
		static _Atomic bool __warned;                               \
		bool __c = !!(cond);                                        \
		if (unlikely(__c))                                          \
			check_warn(&__warned, __FILE__, __LINE__, #cond);   \
		__c;                                                        \
	})
#else
#define IOVM_ASSERT(cond) ((void)sizeof(!(cond)))
/* Still evaluated (a caller may branch on it); a statement expression, so that a bare use warns not. */
#define IOVM_WARN_ON(cond) ({ bool __c = !!(cond); __c; })
#endif

#endif /* IOVM_BASE_CHECK_H */
