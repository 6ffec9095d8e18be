/* SPDX-License-Identifier: MIT */
/*
 * bench_mp.h - what the two halves of `iovm bench mp` share: child
 * processes run from a function with a pipe each way, the figures a side
 * measures, and the loops' sizes. bench_mp.c drives the run and measures
 * iovm; bench_mp_dpdk.c measures DPDK's primary and secondaries;
 * bench_mp_dev.c, iovm's device process and its clients; bench_mp_sdom.c,
 * shared domains; bench_mp_mr.c, a client's registration on the device.
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

/*
 * Each side (iovm, DPDK) answers commands, one timing each, so that the
 * run alternates between them and a change of the machine's load hits
 * both alike.
 */
enum mp_op {
	MP_ATTACH = 1, /* spawn a process until its first alloc+translation; us */
	MP_PAIR64,     /* @n alloc+free of 64 B in a second process; ns per pair */
	MP_PAIR4K,     /* the same, 4 KiB */
	MP_LOOKUP,     /* @n zone lookups by name in a second process; ns per lookup */
};

struct mp_cmd {
	uint32_t op;
	uint64_t n;
};

struct mp_reply {
	double v;      /* NAN when it failed */
	char why[128]; /* what failed */
};

/* Answer commands from @rd on @wr with @run until @rd ends. */
void mp_serve(int rd, int wr, void (*run)(const struct mp_cmd *cmd, struct mp_reply *reply));
/* Ask @side; a dead side's reply is NAN. */
void mp_call(struct mp_child *side, uint32_t op, uint64_t n, struct mp_reply *reply);

/* The loops' lengths: full or quick. */
uint64_t mp_iters(const struct mp_cfg *cfg, uint64_t full);

/*
 * mp_dpdk_start() - start DPDK's side: a process with a primary, which
 * answers mp_call(). Return: 0, or -1 with @why saying why there is none.
 */
int mp_dpdk_start(const struct mp_cfg *cfg, struct mp_child *side, char *why, size_t len);
/* Stop it: the primary, its secondaries, and everything they left. */
void mp_dpdk_stop(struct mp_child *side);

/*
 * mp_dev_bench() - the device-process rows (bench_mp_dev.c): N client
 * processes of the share @share into one device process, beside the same
 * engine in one process. Forks only: the caller holds no context.
 */
void mp_dev_bench(const struct mp_cfg *cfg, const char *share);

/*
 * mp_sdom_bench() - the shared-domain rows (bench_mp_sdom.c): map+unmap in
 * a domain two processes of @share have open, beside a private domain.
 * Forks only: the caller holds no context.
 */
void mp_sdom_bench(const struct mp_cfg *cfg, const char *share);

/*
 * mp_mr_bench() - the mirrored-registration row (bench_mp_mr.c): a page
 * request of a device process answered by a client's on-demand MR, beside
 * the same MR's first touch by a device of the client's own. Forks only.
 */
void mp_mr_bench(const struct mp_cfg *cfg, const char *share);

#endif /* IOVM_BENCH_MP_H */
