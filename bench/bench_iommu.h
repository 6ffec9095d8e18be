/* SPDX-License-Identifier: MIT */
/*
 * bench_iommu.h - what the two files of `iovm bench iommu` share:
 * bench_iommu.c (the IOVA allocator, the page tables, the run) and
 * bench_engine.c (the engine's rows and map per I/O).
 */
#ifndef IOVM_BENCH_IOMMU_H
#define IOVM_BENCH_IOMMU_H

#include <stdint.h>

#include "bench.h"

/* Keeps a value computed: the compiler may not drop the work behind it. */
#define KEEP(x) __asm__ volatile("" : : "r"(x) : "memory")

/* The run's arguments and context, set by bench_iommu() before any row. */
extern const struct bench_args *iommu_args;
extern struct iovm_ctx *iommu_ctx;

/* Timings of each row: the median is reported. */
unsigned iommu_reps(void);
/* @full iterations, or a hundredth of them with --quick. */
uint64_t iommu_iters(uint64_t full);
/* The @n-th CPU the process may run on, or -1 when it has fewer than two. */
int iommu_nth_cpu(unsigned n);
/* The dmadev rows' peer: DPDK's skeleton, or why it is not there. */
const char *iommu_dpdk_peer(void);

/* bench_engine.c */
void bench_engine(void);
void bench_map_per_io(void);

#endif
