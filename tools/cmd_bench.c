/* SPDX-License-Identifier: MIT */
/*
 * cmd_bench.c - `iovm bench NAME [ARGS]`: runs the benchmark program
 * iovm-bench, which links the peers it compares against (DPDK, when
 * installed) so that the `iovm` command itself never does.
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"

#ifndef IOVM_LIBEXECDIR
#define IOVM_LIBEXECDIR "/usr/local/libexec/iovm"
#endif

int cmd_bench(int argc, char **argv)
{
	char self[PATH_MAX], path[PATH_MAX + 32];
	ssize_t n;

	if (argc < 2) {
		fprintf(stderr, "iovm bench: which benchmark?\n");
		cmd_usage(stderr, "bench");
		return 2;
	}
	/* In the build tree, next to tools/ ; installed, in libexecdir. */
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		snprintf(path, sizeof(path), "%s/../bench/iovm-bench", dirname(self));
		if (access(path, X_OK) == 0) {
			argv[0] = path;
			execv(path, argv);
		}
	}
	snprintf(path, sizeof(path), "%s/iovm-bench", IOVM_LIBEXECDIR);
	argv[0] = path;
	execv(path, argv);
	fprintf(stderr, "iovm bench: cannot run %s: %s\n", path, strerror(errno));
	return 1;
}
