/* SPDX-License-Identifier: MIT */
/*
 * numa.h - NUMA nodes and memory policy, through the raw system calls (the
 * library needs no libnuma).
 */
#ifndef IOVM_OS_NUMA_H
#define IOVM_OS_NUMA_H

#include <stdbool.h>
#include <stddef.h>

/* Linux's MAX_NUMNODES on distribution kernels is 1024. */
#define OS_MAX_NODES 1024

/* Whether the kernel has NUMA memory policy (get_mempolicy works). */
bool os_numa_available(void);

/* Online nodes, ascending; returns how many (at least 1: node 0 without NUMA). */
int os_numa_nodes(int *nodes, int max);

bool os_numa_node_online(int node);

/* Bind the pages of [addr, addr+len) to @node, before they are faulted in. */
int os_numa_bind(void *addr, size_t len, int node);

/* The node that holds the (present) page at @addr. */
int os_numa_node_of(const void *addr, int *node);

#endif /* IOVM_OS_NUMA_H */
