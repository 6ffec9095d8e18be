/* SPDX-License-Identifier: MIT */
/*
 * bench_rdma_parts.h - `iovm bench rdma`'s rows that time a registration
 * miss's parts alone (bench_rdma_parts.c).
 */
#ifndef IOVM_BENCH_RDMA_PARTS_H
#define IOVM_BENCH_RDMA_PARTS_H

#include <stdint.h>

struct iovm_ctx;
struct iovm_domain;

/*
 * rdma_miss_parts() - rows for the parts of a miss on @vdom, the domain of
 * an RDMA device in @ctx: each timed on @n fresh pages, median of @nr runs,
 * beside @bare(@arg, pages, n), the device's own registration of each page
 * (ns each).
 */
void rdma_miss_parts(struct iovm_ctx *ctx, struct iovm_domain *vdom, unsigned nr, uint64_t n,
		     double (*bare)(void *arg, uint8_t *pages, uint64_t n), void *arg);

#endif /* IOVM_BENCH_RDMA_PARTS_H */
