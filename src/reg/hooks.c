/* SPDX-License-Identifier: MIT */
/*
 * hooks.c - the memory monitor's synchronous path: libc's munmap(),
 * patched at its entry (os/patch.c) to come here first, so that the
 * thread that unmaps registered memory does the monitor's reader's part
 * itself, and never waits for the reader thread to be scheduled.
 *
 * For each live monitor (one per context) whose watched ranges may meet
 * the call's (a filter of 2 MiB granules, watchmap.c), before the system
 * call: take the range out of the monitor's userfaultfd (so the call
 * raises no event and waits for no read), close the foreign gate and wait
 * for devices inside an access, as the reader does; after it, queue the
 * event the kernel would have sent for the invalidator, which
 * invalidates and opens the gate (woken only if parked:
 * monitor_batch.c's mon_batch_queued(); whoever waits for the gate or a
 * lookup kicks it). The guarantee is the reader's: no
 * device access reaches what replaces the memory once the call returns,
 * and no lookup begun after it sees what it took away.
 *
 * Caught: every call of libc's munmap(), from the application (through
 * the PLT or a pointer) and from inside libc (glibc's free() of a chunk
 * it had mmapped, its heap trimming of a thread arena). Not caught, and
 * left to userfaultfd as before (the backstop: a range taken out of its
 * watch was invalidated here): raw syscall(SYS_munmap), the dynamic
 * loader's own unmaps, sanitizers' allocators, mremap(), madvise(), brk(),
 * and munmap() of a libc this could not patch (not x86-64, an entry it
 * does not know: nothing is written then).
 *
 * The hook never allocates, never takes a lock the application could hold
 * (glibc unmaps a thread arena's heap with that arena locked): only the
 * gate's spin lock and the epoch's lock, which their holders keep across
 * no allocation and no call out. Signals are blocked across it (a handler
 * that unmapped memory would otherwise find those locks taken by the
 * thread it interrupted). A context closing waits, before its monitor
 * goes, for hooks still using it (hooks_del()). After fork() the child's
 * hooks see no monitor (they belong to the parent).
 */
#include <errno.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/log.h"
#include "os/patch.h"
#include "os/pid.h"
#include "reg/reg_internal.h"

#define HOOK_SLOTS 16
#define PAGE 4096ul

struct hook_slot {
	_Atomic(struct reg_monitor *) mon;
	_Atomic uint32_t users;   /* hooks inside, using mon */
	_Atomic long pid;         /* the process mon belongs to */
};

static struct hook_slot slots[HOOK_SLOTS];
static _Atomic bool hooks_off;
static _Atomic unsigned hooks_mask;
static pthread_once_t hooks_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER; /* hooks_add/del only */

struct held {
	struct hook_slot *s;
	struct reg_monitor *m;
};

/* The monitors that may watch [start, start+len), each held (users) until leave(). */
static unsigned enter(uint64_t start, uint64_t len, struct held *h)
{
	unsigned n = 0;
	long pid = 0;

	if (atomic_load_explicit(&hooks_off, memory_order_relaxed))
		return 0;
	for (unsigned i = 0; i < HOOK_SLOTS; i++) {
		struct hook_slot *s = &slots[i];
		struct reg_monitor *m;

		if (!atomic_load_explicit(&s->mon, memory_order_relaxed))
			continue;
		atomic_fetch_add_explicit(&s->users, 1, memory_order_seq_cst);
		m = atomic_load_explicit(&s->mon, memory_order_seq_cst);
		/*
		 * A child of fork() (a raw one too) must not touch its parent's
		 * monitor. os_pid(): a load, not a system call per munmap(); its
		 * page exists by now (hooks_add() asked first), so nothing here
		 * maps or unmaps.
		 */
		if (m && !pid)
			pid = os_pid();
		if (m && atomic_load_explicit(&s->pid, memory_order_relaxed) == pid && monitor_may_watch(m, start, len)) {
			h[n++] = (struct held){ .s = s, .m = m };
			continue;
		}
		atomic_fetch_sub_explicit(&s->users, 1, memory_order_release);
	}
	return n;
}

static void leave(struct held *h, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		atomic_fetch_sub_explicit(&h[i].s->users, 1, memory_order_release);
}

/* Every signal that can wait: a synchronous fault cannot be blocked, and the hook raises none. */
static void block_signals(sigset_t *old)
{
	sigset_t all;

	sigfillset(&all);
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGBUS);
	sigdelset(&all, SIGILL);
	sigdelset(&all, SIGFPE);
	sigdelset(&all, SIGTRAP);
	os_raw_syscall6(SYS_rt_sigprocmask, SIG_BLOCK, (long)&all, (long)old, 8, 0, 0);
}

static void restore_signals(const sigset_t *old)
{
	os_raw_syscall6(SYS_rt_sigprocmask, SIG_SETMASK, (long)old, 0, 8, 0, 0);
}

/* What libc's munmap() runs, with its arguments and its caller. */
static int hook_munmap(void *addr, size_t len)
{
	uint64_t start = (uintptr_t)addr, plen = (len + PAGE - 1) & ~(PAGE - 1);
	struct held h[HOOK_SLOTS];
	uint64_t ticket[HOOK_SLOTS];
	unsigned n = 0;
	sigset_t old;
	long ret;

	/* One the kernel refuses (unaligned, empty, wrapping) changes nothing: not ours. */
	if (!(start & (PAGE - 1)) && plen && start + plen > start)
		n = enter(start, plen, h);
	if (n) {
		block_signals(&old);
		for (unsigned i = 0; i < n; i++)
			ticket[i] = monitor_hook_before(h[i].m, start, plen);
	}
	ret = os_raw_syscall6(SYS_munmap, (long)addr, (long)len, 0, 0, 0, 0);
	if (n) {
		/* Queued failed or not: the range left userfaultfd's watch. */
		for (unsigned i = 0; i < n; i++)
			monitor_hook_after(h[i].m, ticket[i], UFFD_EVENT_UNMAP, start, plen);
		restore_signals(&old);
		leave(h, n);
	}
	if (ret < 0) {
		errno = (int)-ret;
		return -1;
	}
	return 0;
}

static void forked_child(void)
{
	/* The child has none of its parent's threads: no monitor of its own yet. */
	for (unsigned i = 0; i < HOOK_SLOTS; i++) {
		atomic_store_explicit(&slots[i].mon, NULL, memory_order_relaxed);
		atomic_store_explicit(&slots[i].users, 0, memory_order_relaxed);
	}
	pthread_mutex_init(&slots_lock, NULL);
}

static void install(void)
{
	int ret;

	if (getenv("IOVM_NO_HOOKS"))
		return;
	pthread_atfork(NULL, NULL, forked_child);
	ret = os_patch_libc("munmap", (void *)hook_munmap);
	if (ret)
		log_debug("memory monitor: munmap() not hooked (%d): userfaultfd alone sees it", ret);
	else
		atomic_fetch_or_explicit(&hooks_mask, HOOK_MUNMAP, memory_order_release);
}

int hooks_add(struct reg_monitor *m)
{
	int id = -ENOSPC;

	pthread_once(&hooks_once, install);
	if (!atomic_load_explicit(&hooks_mask, memory_order_acquire))
		return -EOPNOTSUPP;
	pthread_mutex_lock(&slots_lock);
	for (int i = 0; i < HOOK_SLOTS; i++) {
		if (atomic_load_explicit(&slots[i].mon, memory_order_relaxed))
			continue;
		/* A slot given back may still have hooks leaving it: they hold no monitor of ours. */
		atomic_store_explicit(&slots[i].pid, os_pid(), memory_order_relaxed);
		atomic_store_explicit(&slots[i].mon, m, memory_order_seq_cst);
		id = i;
		break;
	}
	pthread_mutex_unlock(&slots_lock);
	return id;
}

void hooks_del(int id)
{
	if (id < 0 || id >= HOOK_SLOTS)
		return;
	pthread_mutex_lock(&slots_lock);
	atomic_store_explicit(&slots[id].mon, NULL, memory_order_seq_cst);
	/* A hook that counted itself in before the store saw the monitor; after, none does. */
	while (atomic_load_explicit(&slots[id].users, memory_order_seq_cst))
		sched_yield();
	pthread_mutex_unlock(&slots_lock);
}

unsigned hooks_installed(void)
{
	return atomic_load_explicit(&hooks_mask, memory_order_acquire);
}

void hooks_set_enabled(bool on)
{
	atomic_store_explicit(&hooks_off, !on, memory_order_seq_cst);
}
