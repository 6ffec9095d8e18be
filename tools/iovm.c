/* SPDX-License-Identifier: MIT */
/*
 * iovm.c - the `iovm` command: info, demo, bench, stat, device-server.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <iovm.h>

#include "cmd.h"
#include "output.h"

/*
 * The commands. Exit status, for all of them: 0 done, 1 a call failed (why
 * on stderr) or the output could not be written, 2 a bad command line (the
 * usage on stderr). COMMAND --help prints the usage on stdout and exits 0.
 */
static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
	const char *args;
} cmds[] = {
	{ "info", cmd_info, "what this machine offers for DMA memory [--json]", "[--json]" },
	{ "demo", cmd_demo, "a guided run of the main path, step by step", "[IOVM_OPTIONS]" },
	{ "bench", cmd_bench, "benchmarks beside their peers: bench mem|iommu|reg|vfio|placement|mp|rdma [--json] [--quick] [--plot F]",
	  "mem|iommu|reg|vfio|placement|mp|rdma [--json] [--json-out FILE] [--plot FILE.svg] [--quick]\n"
	  "                  [--no-dpdk] [--opts IOVM_OPTIONS] [--hugepages N]" },
	{ "stat", cmd_stat, "open a context, allocate as told, print its statistics [--json]", "[--json] [SIZE...]" },
	{ "device-server", cmd_devsrv, "serve the software DMA engine to a share's processes: NAME --share SHARE [--own SIZE]",
	  "NAME --share SHARE [--own SIZE] [--workers N] [--stats SECONDS]" },
};

/* Whether the command line asks for help: --help or -h after the command. */
static bool wants_help(int argc, char **argv)
{
	for (int i = 2; i < argc; i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return true;
	return false;
}

const char *fmt_size(uint64_t bytes, char *buf, unsigned len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	unsigned u = 0;
	double v = (double)bytes;

	while (v >= 1024 && u < 4 && (bytes % 1024 == 0 || v >= 10240)) {
		v /= 1024;
		bytes /= 1024;
		u++;
	}
	if (v == (double)(uint64_t)v)
		snprintf(buf, len, "%llu %s", (unsigned long long)v, units[u]);
	else
		snprintf(buf, len, "%.1f %s", v, units[u]);
	return buf;
}

void cmd_usage(FILE *f, const char *name)
{
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(cmds[i].name, name))
			fprintf(f, "usage: iovm %s %s\n\n%s\n", cmds[i].name, cmds[i].args, cmds[i].help);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: iovm COMMAND [ARGS] | --version | --help\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(f, "  %-13s %s\n", cmds[i].name, cmds[i].help);
	fprintf(f, "\noptions (IOVM_OPTS=\"key=value,...\"):\n%s", iovm_opts_help());
}


static int run(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
	    !strcmp(argv[1], "help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
		if (argc > 2) {
			fprintf(stderr, "iovm: %s takes no argument, not '%s'\n", argv[1], argv[2]);
			return 2;
		}
		/* The command's headers, and the library it runs with: they differ when a shared library was swapped. */
		printf("iovm %s (library %s)\n", IOVM_VERSION_STRING, iovm_version(NULL));
		return 0;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(argv[1], cmds[i].name))
			continue;
		if (wants_help(argc, argv)) {
			cmd_usage(stdout, cmds[i].name);
			return 0;
		}
		return cmds[i].fn(argc - 1, argv + 1);
	}
	fprintf(stderr, "iovm: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return 2;
}

int main(int argc, char **argv)
{
	return output_finish("iovm", run(argc, argv));
}
