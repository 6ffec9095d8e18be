/* SPDX-License-Identifier: MIT */
/*
 * output.c - the end of every run of the iovm command and of iovm-bench:
 * stdout checked (output.h).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "output.h"

int output_finish(const char *prog, int status)
{
	bool failed = false;
	int err = 0;

	errno = 0;
	if (fflush(stdout)) {
		err = errno;
		failed = true;
	}
	if (ferror(stdout))
		failed = true;
	if (fclose(stdout) && !failed) {
		err = errno;
		failed = true;
	}
	if (!failed)
		return status;
	if (err)
		fprintf(stderr, "%s: cannot write the output: %s\n", prog, strerror(err));
	else
		fprintf(stderr, "%s: cannot write the output\n", prog);
	return status ? status : 1;
}
