/* SPDX-License-Identifier: MIT */
/*
 * round.h - what the tests of an attack round share, whichever round:
 * known bugs that run only when asked, and a watchdog that turns a hang
 * into a failure that says so.
 */
#ifndef IOVM_TESTS_ATTACK_ROUND_H
#define IOVM_TESTS_ATTACK_ROUND_H

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

/* Whether known bugs are to fail (@env set to 1); when not, say so and go on. */
static inline bool round_known(const char *env, const char *bug)
{
	const char *k = getenv(env);

	if (k && !strcmp(k, "1"))
		return true;
	printf("# skip %s: known bug (%s=1 runs it): %s\n", test_current, env, bug);
	return false;
}

/* A hang is a failure: SIGALRM says where, and ends the process with 3. */
static void round_on_alarm(int sig)
{
	static const char msg[] = "FAIL: hang: the alarm went off (a descriptor or call never returned)\n";

	(void)sig;
	(void)!write(2, msg, sizeof(msg) - 1);
	_exit(3);
}

static inline void round_watchdog(unsigned seconds)
{
	signal(SIGALRM, round_on_alarm);
	alarm(seconds);
}

#endif /* IOVM_TESTS_ATTACK_ROUND_H */
