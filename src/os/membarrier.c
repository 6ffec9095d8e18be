/* SPDX-License-Identifier: MIT */
/*
 * membarrier.c - expedited private membarriers.
 */
#include <linux/membarrier.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "os/membarrier.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static bool available;

static void init(void)
{
	long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);

	available = cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
		    !syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0);
}

bool os_membarrier_init(void)
{
	pthread_once(&once, init);
	return available;
}

void os_membarrier(void)
{
	if (!available || syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0))
		atomic_thread_fence(memory_order_seq_cst); /* readers fence for themselves then */
}
