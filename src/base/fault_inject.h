/* SPDX-License-Identifier: MIT */
/*
 * fault_inject.h - the library's allocations and system calls, each of which
 * a test can make fail.
 *
 * Every call of the library that can fail for want of a resource goes
 * through an fi_ wrapper: memory (fi_malloc, fi_calloc, fi_realloc,
 * fi_aligned_alloc), address space (fi_mmap), system calls (fi_ioctl,
 * fi_open, fi_fopen, fi_eventfd, fi_memfd_create, fi_ftruncate,
 * fi_fallocate, fi_madvise, fi_syscall) and threads (fi_pthread_create). A
 * test arms the calling thread with fi_arm(kinds, n): the n-th call of
 * those kinds that thread makes from then on fails as the resource running
 * out would (NULL, MAP_FAILED or -1 with errno, or an error number), once.
 * Counting per thread keeps it deterministic while the library's own
 * threads (workers, the monitor, the flusher) run: a test walks n = 1, 2,
 * ... over a public call until the call no longer reaches the n-th point,
 * and checks at each that the call failed cleanly, leaked nothing and left
 * its objects usable.
 *
 * Disarmed, a wrapper costs one thread-local load. With the debug_checks
 * build option off it is the plain call.
 */
#ifndef IOVM_BASE_FAULT_INJECT_H
#define IOVM_BASE_FAULT_INJECT_H

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/compiler.h"

enum fi_kind {
	FI_ALLOC = 1u << 0,   /* malloc, calloc, realloc, aligned_alloc: ENOMEM */
	FI_MMAP = 1u << 1,    /* mmap: ENOMEM */
	FI_SYSCALL = 1u << 2, /* ioctl, open, fopen, eventfd, memfd, ftruncate, fallocate, madvise, syscall */
	FI_THREAD = 1u << 3,  /* pthread_create: EAGAIN */
	FI_ALL = FI_ALLOC | FI_MMAP | FI_SYSCALL | FI_THREAD,
};

/*
 * fi_arm() - make the calling thread's @nth call (1 for the next) of a kind
 * in @kinds fail, with @err (a positive errno; 0 for the kind's usual one:
 * ENOMEM, and EMFILE for calls that make a file descriptor). @nth 0
 * disarms.
 */
void fi_arm(unsigned kinds, unsigned long nth, int err);
/* fi_disarm() - stop; whether the armed failure happened. */
bool fi_disarm(void);
/* fi_calls() - calls of the armed kinds this thread made since fi_arm(). */
unsigned long fi_calls(void);
/* fi_fired_kind() - the kind of the call that failed (an enum fi_kind), or 0 when none did. */
unsigned fi_fired_kind(void);

#ifdef IOVM_DEBUG_CHECKS
extern __thread unsigned long fi_countdown;
/* Out of line: counts the call, and says whether it fails; sets errno if so. */
bool fi_hit(unsigned kind, int err);

static inline bool fi_fail(unsigned kind, int err)
{
	return unlikely(fi_countdown) && fi_hit(kind, err);
}
#else
static inline bool fi_fail(unsigned kind __unused, int err __unused)
{
	return false;
}
#endif

static inline void *fi_malloc(size_t n)
{
	return fi_fail(FI_ALLOC, ENOMEM) ? NULL : malloc(n);
}

static inline void *fi_calloc(size_t n, size_t size)
{
	return fi_fail(FI_ALLOC, ENOMEM) ? NULL : calloc(n, size);
}

static inline void *fi_realloc(void *p, size_t n)
{
	return fi_fail(FI_ALLOC, ENOMEM) ? NULL : realloc(p, n);
}

static inline void *fi_aligned_alloc(size_t align, size_t n)
{
	return fi_fail(FI_ALLOC, ENOMEM) ? NULL : aligned_alloc(align, n);
}

static inline void *fi_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return fi_fail(FI_MMAP, ENOMEM) ? MAP_FAILED : mmap(addr, len, prot, flags, fd, off);
}

static inline int fi_madvise(void *addr, size_t len, int advice)
{
	return fi_fail(FI_SYSCALL, ENOMEM) ? -1 : madvise(addr, len, advice);
}

static inline int fi_eventfd(unsigned initval, int flags)
{
	return fi_fail(FI_SYSCALL, EMFILE) ? -1 : eventfd(initval, flags);
}

static inline int fi_memfd_create(const char *name, unsigned flags)
{
	return fi_fail(FI_SYSCALL, EMFILE) ? -1 : memfd_create(name, flags);
}

static inline int fi_ftruncate(int fd, off_t len)
{
	return fi_fail(FI_SYSCALL, ENOSPC) ? -1 : ftruncate(fd, len);
}

static inline int fi_fallocate(int fd, int mode, off_t off, off_t len)
{
	return fi_fail(FI_SYSCALL, ENOSPC) ? -1 : fallocate(fd, mode, off, len);
}

static inline FILE *fi_fopen(const char *path, const char *mode)
{
	return fi_fail(FI_SYSCALL, EMFILE) ? NULL : fopen(path, mode);
}

static inline int fi_pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
	/* pthread_create() returns its error rather than setting errno. */
	if (fi_fail(FI_THREAD, EAGAIN))
		return errno;
	return pthread_create(t, attr, fn, arg);
}

/* Variadic in libc: macros, so that the arguments pass through untouched. */
#define fi_open(...) (fi_fail(FI_SYSCALL, EMFILE) ? -1 : open(__VA_ARGS__))
#define fi_ioctl(...) (fi_fail(FI_SYSCALL, ENOMEM) ? -1 : ioctl(__VA_ARGS__))
#define fi_syscall(...) (fi_fail(FI_SYSCALL, ENOMEM) ? -1L : syscall(__VA_ARGS__))

#endif /* IOVM_BASE_FAULT_INJECT_H */
