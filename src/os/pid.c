/* SPDX-License-Identifier: MIT */
/*
 * pid.c - os_pid(): this process's ID in a wipe-on-fork page.
 *
 * glibc's getpid() is a system call (it stopped caching the ID in 2.25,
 * since a cache that fork() updates misses clone(2)). The caches of
 * descriptors that must be this process's own (/proc/self/maps, the
 * pagemap, a userfaultfd: a child inherits its parent's, which describe
 * the parent) asked it on every query: one system call of four on a
 * registration's miss. The kernel wipes a MADV_WIPEONFORK page in the
 * child of any fork, so an ID remembered there is gone exactly when it
 * stops being true.
 */
#include <stdatomic.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/compiler.h"
#include "base/fault_inject.h"
#include "os/pid.h"

#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18
#endif

/* The page, NULL until made; WIPE_NONE where the kernel cannot wipe one. */
static _Atomic(_Atomic pid_t *) pid_page;
static _Atomic pid_t wipe_none; /* never read: its address marks "no page" */
#define WIPE_NONE (&wipe_none)

static _Atomic pid_t *pid_page_make(void)
{
	_Atomic pid_t *p = fi_mmap(NULL, SZ_4K, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), *old = NULL;

	if (p == MAP_FAILED)
		return NULL; /* asked again next time */
	if (madvise((void *)p, SZ_4K, MADV_WIPEONFORK)) {
		munmap((void *)p, SZ_4K);
		p = WIPE_NONE;
	}
	if (!atomic_compare_exchange_strong_explicit(&pid_page, &old, p, memory_order_acq_rel, memory_order_acquire)) {
		if (p != WIPE_NONE)
			munmap((void *)p, SZ_4K);
		p = old;
	}
	return p;
}

pid_t os_pid(void)
{
	_Atomic pid_t *p = atomic_load_explicit(&pid_page, memory_order_acquire);
	pid_t pid;

	if (unlikely(!p) && !(p = pid_page_make()))
		return getpid();
	if (unlikely(p == WIPE_NONE))
		return getpid();
	pid = atomic_load_explicit(p, memory_order_relaxed);
	if (unlikely(!pid)) {
		pid = getpid();
		atomic_store_explicit(p, pid, memory_order_relaxed);
	}
	return pid;
}
