/* SPDX-License-Identifier: MIT */
/*
 * crash.c - the countdown behind crash_point() (base/crash.h).
 */
#include <unistd.h>

#include "base/crash.h"

#ifdef IOVM_DEBUG_CHECKS
unsigned long crash_countdown;

void crash_now(void)
{
	_exit(CRASH_EXIT);
}
#endif
