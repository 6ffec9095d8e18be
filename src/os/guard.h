/* SPDX-License-Identifier: MIT */
/*
 * guard.h - memory accesses that may fault, turned into errors.
 *
 * A device reaching an application's memory (a registered buffer) may find
 * it unmapped under it: the application's munmap returns before iovm hears
 * of it. The kernel's copy_from_user() has exception tables for this; a
 * user-space device has a guard: a SIGSEGV or SIGBUS raised while a thread
 * holds one jumps back to where the guard was set, with the faulting
 * address, instead of killing the process. Every other fault goes to the
 * handler that was installed before iovm's, as if iovm's were not there.
 *
 *	struct os_guard g;
 *
 *	if (sigsetjmp(g.jmp, 0)) {
 *		... faulted at g.addr: the guard is cleared ...
 *	} else {
 *		os_guard_set(&g);
 *		... accesses ...
 *		os_guard_clear(&g);
 *	}
 *
 * The handlers are installed once per process, by the first os_guard_set().
 * Nothing the guarded code changes in the frame that set the guard may be
 * relied on after the jump unless it is volatile or lives in memory the
 * code wrote through a pointer.
 */
#ifndef IOVM_OS_GUARD_H
#define IOVM_OS_GUARD_H

#include <setjmp.h>

struct os_guard {
	sigjmp_buf jmp;
	struct os_guard *prev; /* the guard this one nests in */
	void *addr;            /* set on a fault: the address that faulted */
	int sig;               /* SIGSEGV or SIGBUS */
};

/* Install the handlers (once) and make @g the calling thread's guard. */
void os_guard_set(struct os_guard *g);

/* Drop @g, the calling thread's innermost guard. */
void os_guard_clear(struct os_guard *g);

/* The calling thread's innermost guard, or NULL. */
struct os_guard *os_guard_current(void);

#endif /* IOVM_OS_GUARD_H */
