/* SPDX-License-Identifier: MIT */
/*
 * numa.c - mbind() and get_mempolicy() as system calls.
 */
#include <errno.h>
#include <linux/mempolicy.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/compiler.h"
#include "base/fault_inject.h"
#include "os/numa.h"
#include "os/sysfs.h"

bool os_numa_available(void)
{
	int mode;

	return syscall(SYS_get_mempolicy, &mode, NULL, 0, NULL, 0) == 0;
}

struct node_list {
	int *nodes;
	int max, n;
};

static void add_node(unsigned node, void *arg)
{
	struct node_list *l = arg;

	if (l->n < l->max)
		l->nodes[l->n++] = (int)node;
}

int os_numa_nodes(int *nodes, int max)
{
	struct node_list l = { .nodes = nodes, .max = max };
	char buf[256];

	if (max < 1)
		return -EINVAL;
	if (sysfs_read("/sys/devices/system/node/online", buf, sizeof(buf)) ||
	    sysfs_parse_list(buf, add_node, &l) <= 0) {
		nodes[0] = 0;
		return 1;
	}
	return l.n;
}

bool os_numa_node_online(int node)
{
	int nodes[64];
	int n = os_numa_nodes(nodes, ARRAY_SIZE(nodes));

	for (int i = 0; i < n; i++)
		if (nodes[i] == node)
			return true;
	return false;
}

int os_numa_bind(void *addr, size_t len, int node)
{
	unsigned long mask[OS_MAX_NODES / (8 * sizeof(unsigned long))] = { 0 };
	const size_t bits = 8 * sizeof(unsigned long);

	if (node < 0 || node >= OS_MAX_NODES)
		return -EINVAL;
	if (!os_numa_available())
		return node == 0 ? 0 : -ENODEV;
	mask[(size_t)node / bits] = 1UL << ((size_t)node % bits);
	/* maxnode counts bits and the kernel ignores the last one: pass one more. */
	if (fi_syscall(SYS_mbind, addr, len, MPOL_BIND, mask, OS_MAX_NODES + 1, MPOL_MF_STRICT))
		return -errno;
	return 0;
}

int os_numa_node_of(const void *addr, int *node)
{
	int n = -1;

	if (!os_numa_available()) {
		*node = 0;
		return 0;
	}
	if (syscall(SYS_get_mempolicy, &n, NULL, 0, addr, MPOL_F_NODE | MPOL_F_ADDR))
		return -errno;
	*node = n;
	return 0;
}
