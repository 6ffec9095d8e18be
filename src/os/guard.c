/* SPDX-License-Identifier: MIT */
/*
 * guard.c - SIGSEGV and SIGBUS handlers that jump back into a guarded
 * access, and hand every other fault to the handler installed before them.
 */
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <ucontext.h>

#include "base/compiler.h"
#include "os/guard.h"

/*
 * Volatile: the handler reads it, and a compiler that sees no read between
 * the store that sets a guard and the guarded accesses may otherwise sink
 * the store past them.
 */
static __thread struct os_guard *volatile current __tls_ie;
static struct sigaction prev_segv, prev_bus;
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* What would have happened without iovm's handler. */
static void chain(const struct sigaction *prev, int sig, siginfo_t *info, void *uctx)
{
	if (prev->sa_flags & SA_SIGINFO) {
		prev->sa_sigaction(sig, info, uctx);
	} else if (prev->sa_handler == SIG_DFL || prev->sa_handler == SIG_IGN) {
		/*
		 * The default: die of it. Returning re-runs the faulting
		 * instruction, which now finds the default action (an ignored
		 * SIGSEGV from a fault is fatal too).
		 */
		signal(sig, SIG_DFL);
	} else {
		prev->sa_handler(sig);
	}
}

static void handler(int sig, siginfo_t *info, void *uctx)
{
	struct os_guard *g = current;

	if (g) {
		current = g->prev;
		g->addr = info->si_addr;
		g->sig = sig;
		/*
		 * The jump keeps the handler's signal mask (sigsetjmp(.., 0)
		 * saves none, to keep a syscall off every guarded access).
		 * SA_NODEFER leaves SIGSEGV open, but whoever wraps sigaction
		 * (ThreadSanitizer blocks every signal in handlers) may block
		 * it anyway, and a later fault would then kill the process:
		 * back to the mask of the code that faulted.
		 */
		if (uctx)
			pthread_sigmask(SIG_SETMASK, &((ucontext_t *)uctx)->uc_sigmask, NULL);
		siglongjmp(g->jmp, 1);
	}
	chain(sig == SIGBUS ? &prev_bus : &prev_segv, sig, info, uctx);
}

static void install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = handler;
	/* NODEFER: the jump leaves the handler without unblocking anything. */
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &prev_segv);
	sigaction(SIGBUS, &sa, &prev_bus);
}

void os_guard_set(struct os_guard *g)
{
	pthread_once(&once, install);
	g->prev = current;
	g->addr = NULL;
	g->sig = 0;
	current = g;
}

void os_guard_clear(struct os_guard *g)
{
	current = g->prev;
}

struct os_guard *os_guard_current(void)
{
	return current;
}
