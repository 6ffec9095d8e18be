/* SPDX-License-Identifier: MIT */
/*
 * cmd.h - the subcommands of `iovm`.
 */
#ifndef IOVM_TOOLS_CMD_H
#define IOVM_TOOLS_CMD_H

#include <stdint.h>

int cmd_info(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_stat(int argc, char **argv);
int cmd_devsrv(int argc, char **argv);

/* "2 MiB", "4 KiB", "1.5 GiB": for people. */
const char *fmt_size(uint64_t bytes, char *buf, unsigned len);

#endif /* IOVM_TOOLS_CMD_H */
