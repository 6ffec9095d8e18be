/* SPDX-License-Identifier: MIT */
/*
 * crash.h - crash points: places where a process may die between two
 * stores that other processes read (a shared heap's, a shared domain's
 * table and its counts). A test sets crash_countdown in a child process,
 * which then exits (_exit(CRASH_EXIT)) at the n-th point it passes, in
 * whatever thread passes it, holding whatever it holds; walking n = 1, 2,
 * ... tries every store a kill -9 can come after (tests/mp/test_mp_crash.c,
 * test_mp_domain_held.c). Only with debug checks; nothing otherwise.
 */
#ifndef IOVM_BASE_CRASH_H
#define IOVM_BASE_CRASH_H

#include "base/compiler.h"

#define CRASH_EXIT 99

#ifdef IOVM_DEBUG_CHECKS
extern unsigned long crash_countdown; /* 0: off; else the points left to the fatal one */
void crash_now(void) __attribute__((noreturn));
#define crash_point()                                                                     \
	do {                                                                              \
		if (__builtin_expect(crash_countdown != 0, 0) && !--crash_countdown)      \
			crash_now();                                                      \
	} while (0)
#else
#define crash_point() do { } while (0)
#endif

#endif /* IOVM_BASE_CRASH_H */
