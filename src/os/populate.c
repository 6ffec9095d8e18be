/* SPDX-License-Identifier: MIT */
/*
 * populate.c - MADV_POPULATE_WRITE, and a SIGBUS-guarded touch where it is
 * missing.
 *
 * A hugetlb page that cannot be had at fault time is a SIGBUS (DPDK catches
 * it with sigsetjmp around the first touch). MADV_POPULATE_WRITE turns the
 * same failure into -EFAULT or -ENOMEM. The fallback installs a SIGBUS
 * handler once, for the life of the process; it jumps back only into a
 * thread that is inside os_populate_touch() and hands every other SIGBUS to
 * whatever handler was there before.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>

#include "base/compiler.h"
#include "os/populate.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/*
 * Volatile: the signal handler reads it. Without it, a compiler that sees the
 * touch loop never reads it drops the store that arms the guard (clang does).
 */
static __thread sigjmp_buf *volatile sigbus_jmp;
static struct sigaction sigbus_prev;
static pthread_once_t sigbus_once = PTHREAD_ONCE_INIT;

static void sigbus_handler(int sig, siginfo_t *info, void *uctx)
{
	if (sigbus_jmp)
		siglongjmp(*sigbus_jmp, 1);
	/* Not ours: behave as if we had never been installed. */
	if (sigbus_prev.sa_flags & SA_SIGINFO) {
		sigbus_prev.sa_sigaction(sig, info, uctx);
	} else if (sigbus_prev.sa_handler == SIG_IGN) {
		return;
	} else if (sigbus_prev.sa_handler == SIG_DFL) {
		signal(sig, SIG_DFL);
		raise(sig);
	} else {
		sigbus_prev.sa_handler(sig);
	}
}

static void sigbus_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = sigbus_handler;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, &sigbus_prev);
}

/* Out of line, so that nothing of the caller's frame lives across the longjmp. */
static __noinline void touch_pages(volatile uint8_t *p, size_t len, uint64_t page_size)
{
	for (size_t off = 0; off < len; off += page_size)
		p[off] = p[off];
}

int os_populate_touch(void *addr, size_t len, uint64_t page_size)
{
	sigjmp_buf jmp;

	if (!is_pow2(page_size) || !is_aligned((uintptr_t)addr, page_size))
		return -EINVAL;
	pthread_once(&sigbus_once, sigbus_install);
	if (sigsetjmp(jmp, 1)) {
		sigbus_jmp = NULL;
		return -ENOMEM;
	}
	sigbus_jmp = &jmp;
	touch_pages(addr, len, page_size);
	sigbus_jmp = NULL;
	return 0;
}

int os_populate(void *addr, size_t len, uint64_t page_size)
{
	if (madvise(addr, len, MADV_POPULATE_WRITE) == 0)
		return 0;
	switch (errno) {
	case EINVAL: /* before Linux 5.14 */
		return os_populate_touch(addr, len, page_size);
	case EFAULT: /* SIGBUS at fault time: hugetlb pool or cgroup limit */
	case ENOMEM:
	case EHWPOISON:
		return -ENOMEM;
	default:
		return -errno;
	}
}
