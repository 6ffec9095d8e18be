/* SPDX-License-Identifier: MIT */
/*
 * hugepage_contender.c - run a program while another process uses the
 * machine's hugepages: it holds HOLD 2 MiB pages throughout, and takes
 * CHURN more and gives them back every millisecond or so.
 *
 *	hugepage_contender HOLD CHURN PROGRAM [ARGS...]
 *	hugepage_contender HOLD CHURN --drain PROGRAM [ARGS...]
 *
 * With --drain, every eighth time it takes every free page instead, for a
 * millisecond: pages a test saw free are gone when it asks.
 *
 * Exits as PROGRAM did (128 + the signal if one killed it), or 125 when the
 * contender died or could not be started.
 */
#include <errno.h>
#include <stdlib.h>

#include "hugepage_util.h"

int main(int argc, char **argv)
{
	struct hp_contender c;
	int status, ret, prog = 3;
	bool drain = false;
	pid_t pid;

	if (argc >= 4 && !strcmp(argv[3], "--drain")) {
		drain = true;
		prog = 4;
	}
	if (argc < prog + 1) {
		fprintf(stderr, "usage: hugepage_contender HOLD CHURN [--drain] PROGRAM [ARGS...]\n");
		return 125;
	}
	ret = hp_contender_start_mode(&c, (unsigned)atoi(argv[1]), (unsigned)atoi(argv[2]), drain);
	if (ret && ret != -EAGAIN) {
		fprintf(stderr, "hugepage_contender: %s\n", strerror(-ret));
		return 125;
	}
	fprintf(stderr, "hugepage_contender: holds %u hugepages, churns %s%s\n", c.held, argv[2],
		drain ? ", drains the pool now and then" : "");
	pid = fork();
	if (pid < 0)
		return 125;
	if (pid == 0) {
		execvp(argv[prog], argv + prog);
		fprintf(stderr, "hugepage_contender: %s: %s\n", argv[prog], strerror(errno));
		_exit(127);
	}
	if (waitpid(pid, &status, 0) != pid)
		return 125;
	if (!hp_contender_stop(&c)) {
		fprintf(stderr, "hugepage_contender: the contending process died\n");
		return 125;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
