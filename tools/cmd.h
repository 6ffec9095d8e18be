/* SPDX-License-Identifier: MIT */
/*
 * cmd.h - the subcommands of `iovm`.
 */
#ifndef IOVM_TOOLS_CMD_H
#define IOVM_TOOLS_CMD_H

#include <stdint.h>
#include <stdio.h>

int cmd_info(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_stat(int argc, char **argv);
int cmd_devsrv(int argc, char **argv);

/*
 * A command's usage and what it does, as `iovm COMMAND --help` prints it
 * on stdout; on stderr after a bad command line (exit status 2).
 */
void cmd_usage(FILE *f, const char *name);

/* "2 MiB", "4 KiB", "1.5 GiB": for people. */
const char *fmt_size(uint64_t bytes, char *buf, unsigned len);

#endif /* IOVM_TOOLS_CMD_H */
