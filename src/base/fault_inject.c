/* SPDX-License-Identifier: MIT */
/*
 * fault_inject.c - the per-thread countdown behind the fi_ wrappers.
 */
#include "base/fault_inject.h"

#ifdef IOVM_DEBUG_CHECKS
__thread unsigned long fi_countdown; /* 0: disarmed; else the calls left to the failing one */
static __thread unsigned fi_kinds;
static __thread int fi_err;
static __thread unsigned long fi_seen;
static __thread bool fi_fired;
static __thread unsigned fi_kind_fired;

bool fi_hit(unsigned kind, int err)
{
	if (!(kind & fi_kinds))
		return false;
	fi_seen++;
	if (--fi_countdown)
		return false;
	fi_fired = true;
	fi_kind_fired = kind;
	errno = fi_err ? fi_err : err;
	return true;
}

void fi_arm(unsigned kinds, unsigned long nth, int err)
{
	fi_kinds = kinds;
	fi_err = err;
	fi_seen = 0;
	fi_fired = false;
	fi_kind_fired = 0;
	fi_countdown = nth;
}

bool fi_disarm(void)
{
	fi_countdown = 0;
	return fi_fired;
}

unsigned long fi_calls(void)
{
	return fi_seen;
}

unsigned fi_fired_kind(void)
{
	return fi_kind_fired;
}
#else
void fi_arm(unsigned kinds __unused, unsigned long nth __unused, int err __unused)
{
}

bool fi_disarm(void)
{
	return false;
}

unsigned long fi_calls(void)
{
	return 0;
}

unsigned fi_fired_kind(void)
{
	return 0;
}
#endif
