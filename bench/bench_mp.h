/* SPDX-License-Identifier: MIT */
/*
 * bench_mp.h - what the two halves of `iovm bench mp` share: child
 * processes run from a function with a pipe each way, the figures a side
 * measures, and the loops' sizes. bench_mp.c drives the run and measures
 * iovm; bench_mp_dpdk.c measures DPDK's primary and secondaries.
 */
#ifndef IOVM_BENCH_MP_H
#define IOVM_BENCH_MP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Zones (memzones) each side reserves; lookups cycle through their names. */
#define MP_ZONES 16
/* Allocations the process killed in the recovery rounds holds. */
#define MP_DOOMED_BLOCKS 1000

struct mp_cfg {
	bool quick;
	bool dpdk;
	const char *opts; /* iovm options */
	unsigned reps;    /* repetitions of each timing; the median is reported */
};

/* A child process and a pipe each way. */
struct mp_child {
	pid_t pid;
	int rd; /* from the child */
	int wr; /* to the child */
};

/*
 * mp_child_start() - run @fn(@rd, @wr, @arg) in a child, which then
 * _exit(0)s. The caller must be single-threaded: the child runs library
 * code. Return: 0 or -errno.
 */
int mp_child_start(struct mp_child *c, void (*fn)(int rd, int wr, void *arg), void *arg);
/* Wait for the child; its exit status, or -signal when killed. */
int mp_child_wait(struct mp_child *c);

/* Whole messages over a pipe. Return: 0, -EPIPE at end of file, or -errno. */
int mp_put(int fd, const void *buf, size_t len);
int mp_get(int fd, void *buf, size_t len);

/* What a second process measured: medians, NAN where not measured. */
struct mp_ops {
	double pair64_ns;
	double pair4k_ns;
	double lookup_ns;
	char why[128]; /* "" when measured; else what failed */
};

/* What a side measured in the run. */
struct mp_figures {
	double attach_us; /* spawn to first alloc+translation, median */
	struct mp_ops ops;
	char why[160]; /* "" when the side ran; else why not (for the table) */
};

/* The loops' lengths: full or quick. */
uint64_t mp_iters(const struct mp_cfg *cfg, uint64_t full);

/* Fill @out with DPDK's figures, or say in @out->why why there are none. */
void mp_dpdk_measure(const struct mp_cfg *cfg, struct mp_figures *out);

#endif /* IOVM_BENCH_MP_H */
