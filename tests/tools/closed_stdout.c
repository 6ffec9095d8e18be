/* SPDX-License-Identifier: MIT */
/*
 * closed_stdout.c - `closed_stdout CMD [ARG...]` runs CMD with its stdout a
 * pipe whose reader is gone and SIGPIPE ignored, so that every write to
 * stdout fails with EPIPE: a closed pipe without a race on when the reader
 * leaves. Exits with CMD's status (125: the pipe could not be made, 127:
 * CMD could not be run).
 */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int p[2];

	if (argc < 2) {
		fprintf(stderr, "usage: closed_stdout CMD [ARG...]\n");
		return 2;
	}
	if (pipe(p) || close(p[0]) || dup2(p[1], 1) < 0) {
		perror("closed_stdout: pipe");
		return 125;
	}
	close(p[1]);
	/* Ignored, it stays ignored across exec: the write fails with EPIPE instead of killing CMD. */
	signal(SIGPIPE, SIG_IGN);
	execvp(argv[1], argv + 1);
	perror(argv[1]);
	return 127;
}
