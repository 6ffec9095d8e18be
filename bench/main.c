/* SPDX-License-Identifier: MIT */
/*
 * main.c - iovm-bench, which `iovm bench NAME` runs: the benchmarks, each
 * beside its peers, measured in one run.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "../tools/output.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: iovm bench mem|iommu|reg|vfio|placement|mp|rdma [--json] [--json-out FILE] [--plot FILE.svg] [--quick]\n"
		"                                     [--no-dpdk] [--opts IOVM_OPTIONS] [--hugepages N]\n"
		"  --hugepages N  have N free 2 MiB hugepages for the run (as root: added to the pool,\n"
		"                 taken back at exit as far as free); 0 leaves the pool alone\n");
}


static int run_bench(int argc, char **argv)
{
	struct bench_args args = { .dpdk = true };
	int (*run)(const struct bench_args *) = NULL;
	int ret;

	/* Not for people: one monitor of bench reg's coverage table, exec'd in a process of its own. */
	if (argc == 5 && !strcmp(argv[1], BENCH_REG_COVER_CHILD))
		return bench_reg_cover_child(atoi(argv[2]), (unsigned)atoi(argv[3]), atoi(argv[4]));
	if (argc == 6 && !strcmp(argv[1], BENCH_REG_MUNMAP_CHILD))
		return bench_reg_munmap_child(atoi(argv[2]), atoi(argv[3]), argv[4], atoi(argv[5]));

	if (argc >= 2 && !strcmp(argv[1], "mem"))
		run = bench_mem;
	else if (argc >= 2 && !strcmp(argv[1], "iommu"))
		run = bench_iommu;
	else if (argc >= 2 && !strcmp(argv[1], "reg"))
		run = bench_reg;
	else if (argc >= 2 && !strcmp(argv[1], "vfio"))
		run = bench_vfio;
	else if (argc >= 2 && !strcmp(argv[1], "placement"))
		run = bench_placement;
	else if (argc >= 2 && !strcmp(argv[1], "mp"))
		run = bench_mp;
	else if (argc >= 2 && !strcmp(argv[1], "rdma"))
		run = bench_rdma;
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		usage(stdout);
		return 0;
	}
	if (!run) {
		if (argc >= 2)
			fprintf(stderr, "iovm bench: unknown benchmark '%s'\n", argv[1]);
		usage(stderr);
		return 2;
	}
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			args.json = true;
		else if (!strcmp(argv[i], "--json-out") && i + 1 < argc)
			args.json_out = argv[++i];
		else if (!strcmp(argv[i], "--plot") && i + 1 < argc)
			args.plot = argv[++i];
		else if (!strcmp(argv[i], "--quick"))
			args.quick = true;
		else if (!strcmp(argv[i], "--no-dpdk"))
			args.dpdk = false;
		else if (!strcmp(argv[i], "--opts") && i + 1 < argc)
			args.opts = argv[++i];
		else if (!strcmp(argv[i], "--hugepages") && i + 1 < argc) {
			char *end;
			long nr;

			errno = 0;
			nr = strtol(argv[++i], &end, 10);
			if (errno || end == argv[i] || *end || nr < 0 || nr > 1000000) {
				fprintf(stderr, "iovm bench: --hugepages '%s' is not a number of pages\n", argv[i]);
				return 2;
			}
			bench_hugepages_set(nr);
		}
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "iovm bench: unknown or incomplete argument '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (args.json) {
		/* JSON alone on the real stdout: the table, notes and anything else printed go to stderr. */
		fflush(stdout);
		args.json_fd = dup(1);
		if (args.json_fd < 0 || dup2(2, 1) < 0) {
			perror("iovm bench: --json");
			return 1;
		}
	}
	ret = run(&args);
	return ret ? ret : bench_output_failed() ? 1 : 0;
}

int main(int argc, char **argv)
{
	return output_finish("iovm bench", run_bench(argc, argv));
}
