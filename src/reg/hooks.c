/* SPDX-License-Identifier: MIT */
/*
 * hooks.c - the memory monitor's synchronous path: libc's calls that take
 * memory away (munmap(), madvise() that discards, mremap(), mmap() with
 * MAP_FIXED, brk()), patched at their entries (os/patch.c) to come here
 * first, so that the thread that changes registered memory does the
 * monitor's reader's part itself, and never waits for the reader thread
 * to be scheduled.
 *
 * For each live monitor (one per context) whose watched ranges may meet
 * the call's (a page filter, watchmap.c), before the system call: take
 * the range out of the monitor's userfaultfd (so the call raises no event
 * and waits for no read), close the foreign gate and wait for devices
 * inside an access, as the reader does; after it, queue the event the
 * kernel would have sent for the invalidator, which invalidates and opens
 * the gate (woken only if parked: monitor_batch.c's mon_batch_queued();
 * whoever waits for the gate or a lookup kicks it). A range the call left
 * mapped (madvise(), an mremap() that stayed) goes back into the
 * userfaultfd's watch first; one that cannot is invalidated as unmapped.
 * The guarantee is the reader's: no device access reaches what replaces
 * the memory once the call returns, and no lookup begun after it sees
 * what it took away.
 *
 * Caught: every call of those entries, from the application (through the
 * PLT or a pointer) and from inside libc (glibc's free() of a chunk it had
 * mmapped, its heap trimming: munmap() and madvise() of a thread arena,
 * sbrk() of the main one, which calls brk()). Not caught, and left to
 * userfaultfd as before (the backstop: a range taken out of its watch was
 * invalidated here): raw system calls, the dynamic loader's own calls,
 * sanitizers' allocators, and the calls of a libc this could not patch
 * (not x86-64, an entry it does not know: nothing is written then).
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
#include <dlfcn.h>
#include <errno.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/log.h"
#include "base/sanitizer.h"
#include "os/patch.h"
#include "os/pid.h"
#include "reg/reg_internal.h"

#define HOOK_SLOTS 16
#define PAGE 4096ul
/* Linux 5.18 and 5.7: older headers lack them. */
#define IOVM_MADV_DONTNEED_LOCKED 24
#define IOVM_MREMAP_DONTUNMAP 4
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

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

/* ---- the calls ---- */

/* A range a call may take away, and the monitors that may watch it, each held until hooked_end(). */
struct hooked {
	struct held h[HOOK_SLOTS];
	uint64_t ticket[HOOK_SLOTS];
	unsigned n;
	uint64_t start, len;
};

static uint64_t page_up(uint64_t len)
{
	return (len + PAGE - 1) & ~(PAGE - 1);
}

/* The monitors of [start, start+len): none for a range the kernel refuses (unaligned, empty, wrapping). */
static unsigned hooked_enter(struct hooked *c, uint64_t start, uint64_t len)
{
	c->start = start;
	c->len = len;
	c->n = 0;
	if (!(start & (PAGE - 1)) && len && start + len > start)
		c->n = enter(start, len, c->h);
	return c->n;
}

/* Before the call, signals blocked: out of each userfaultfd's watch, the gate closed, devices out. */
static void hooked_before(struct hooked *c)
{
	for (unsigned i = 0; i < c->n; i++)
		c->ticket[i] = monitor_hook_before(c->h[i].m, c->start, c->len);
}

/*
 * After the call, whatever it returned: [start, start+len) as event @kind
 * for each monitor (len 0: none). A call that failed may still have
 * changed part of the range (madvise() stops at the first mapping it
 * refuses, mmap(MAP_FIXED) may have unmapped): what it named is
 * invalidated all the same, as an event would have said too much rather
 * than too little.
 */
static void hooked_end(struct hooked *c, unsigned kind, uint64_t start, uint64_t len, bool source_kept)
{
	for (unsigned i = 0; i < c->n; i++)
		monitor_hook_after(c->h[i].m, c->ticket[i], kind, start, len, source_kept);
	leave(c->h, c->n);
}

/*
 * After a call that left [start, start+len) of the range mapped (madvise(),
 * an mremap() that could have moved it and did not): back in each
 * userfaultfd's watch, with event @kind for it (0: none); where it cannot
 * all be watched again, the whole range is invalidated as an unmap, as
 * nothing would tell of its next change. [gone, gone+gone_len): unmapped.
 */
static void hooked_kept(struct hooked *c, uint64_t start, uint64_t len, unsigned kind, uint64_t gone, uint64_t gone_len)
{
	for (unsigned i = 0; i < c->n; i++) {
		struct reg_monitor *m = c->h[i].m;

		if (monitor_hook_rewatch(m, start, len)) {
			if (kind)
				monitor_hook_push(m, kind, start, len, false, false);
		} else {
			monitor_hook_push(m, UFFD_EVENT_UNMAP, start, len, false, false);
		}
		monitor_hook_push(m, UFFD_EVENT_UNMAP, gone, gone_len, true, false);
		monitor_hook_done(m, c->ticket[i]);
	}
	leave(c->h, c->n);
}

static long sys_ret(long ret)
{
	if (ret < 0 && ret > -4096) {
		errno = (int)-ret;
		return -1;
	}
	return ret;
}

/* What libc's munmap() runs, with its arguments and its caller. */
static int hook_munmap(void *addr, size_t len)
{
	struct hooked c;
	sigset_t old;
	long ret;

	if (hooked_enter(&c, (uintptr_t)addr, page_up(len))) {
		block_signals(&old);
		hooked_before(&c);
	}
	ret = os_raw_syscall6(SYS_munmap, (long)addr, (long)len, 0, 0, 0, 0);
	if (c.n) {
		hooked_end(&c, UFFD_EVENT_UNMAP, c.start, c.len, false);
		restore_signals(&old);
	}
	return (int)sys_ret(ret);
}

/* madvise(): the advice that lets pages go (their next touch finds new ones) is a removal. */
/* Runs of pages a refused madvise() may have let go: at most this many are told apart. */
#define MADV_RUNS 8

struct run {
	uint64_t start, len;
};

/*
 * After a madvise() the kernel refused at a mapping it will not discard
 * (locked pages, a PFN map): the pages it let go before that one are not
 * in core now. Their runs in *@runs (*@n of them): true when told
 * exactly, false when unknown (a hole, more than MADV_RUNS runs).
 */
static bool discarded_runs(uint64_t start, uint64_t len, struct run *runs, unsigned *n)
{
	unsigned char vec[256];

	*n = 0;
	for (uint64_t off = 0; off < len; off += sizeof(vec) * PAGE) {
		uint64_t chunk = len - off < sizeof(vec) * PAGE ? len - off : sizeof(vec) * PAGE;

		if (os_raw_syscall6(SYS_mincore, (long)(start + off), (long)chunk, (long)vec, 0, 0, 0))
			return false;
		for (uint64_t i = 0; i < chunk / PAGE; i++) {
			uint64_t a = start + off + i * PAGE;

			if (vec[i] & 1)
				continue;
			if (*n && runs[*n - 1].start + runs[*n - 1].len == a) {
				runs[*n - 1].len += PAGE;
				continue;
			}
			if (*n == MADV_RUNS)
				return false;
			runs[(*n)++] = (struct run){ .start = a, .len = PAGE };
		}
	}
	return true;
}

/*
 * madvise(): the advice that lets pages go (their next touch finds new
 * ones) is a removal; the range stays mapped, and watched. Refused at a
 * mapping it will not discard, it may have let the pages before it go:
 * those not in core now are removed, and so is every page of an MR that
 * does not lock its own (what the kernel refuses to discard is locked).
 */
static int hook_madvise(void *addr, size_t len, int advice)
{
	struct run runs[MADV_RUNS];
	struct hooked c = { .n = 0 };
	unsigned nr = 0;
	bool told;
	sigset_t old;
	long ret;

	if ((advice == MADV_DONTNEED || advice == MADV_FREE || advice == MADV_REMOVE ||
	     advice == IOVM_MADV_DONTNEED_LOCKED) &&
	    hooked_enter(&c, (uintptr_t)addr, page_up(len))) {
		block_signals(&old);
		hooked_before(&c);
	}
	ret = os_raw_syscall6(SYS_madvise, (long)addr, (long)len, advice, 0, 0, 0);
	if (!c.n)
		return (int)sys_ret(ret);
	/* -ENOMEM: holes, every mapping done; -EINVAL: stopped at one it refused. */
	told = ret == -EINVAL && advice != IOVM_MADV_DONTNEED_LOCKED && discarded_runs(c.start, c.len, runs, &nr);
	for (unsigned i = 0; i < c.n; i++) {
		struct reg_monitor *m = c.h[i].m;

		if (!monitor_hook_rewatch(m, c.start, c.len)) {
			monitor_hook_push(m, UFFD_EVENT_UNMAP, c.start, c.len, false, false);
		} else if (!told) {
			monitor_hook_push(m, UFFD_EVENT_REMOVE, c.start, c.len, false, false);
		} else {
			monitor_hook_push(m, MON_EVENT_REMOVE_UNLOCKED, c.start, c.len, false, false);
			for (unsigned k = 0; k < nr; k++)
				monitor_hook_push(m, UFFD_EVENT_REMOVE, runs[k].start, runs[k].len, false, false);
		}
		monitor_hook_done(m, c.ticket[i]);
	}
	leave(c.h, c.n);
	restore_signals(&old);
	return (int)sys_ret(ret);
}

/* mmap(): with MAP_FIXED, over whatever was mapped there (MAP_FIXED_NOREPLACE replaces nothing). */
static void *hook_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	struct hooked c = { .n = 0 };
	sigset_t old;
	long ret;

	/* As glibc's: an offset not of whole pages is refused before the kernel is asked. */
	if (off & (off_t)(PAGE - 1)) {
		errno = EINVAL;
		return MAP_FAILED;
	}
	if ((flags & MAP_FIXED) && !(flags & MAP_FIXED_NOREPLACE) && hooked_enter(&c, (uintptr_t)addr, page_up(len))) {
		block_signals(&old);
		hooked_before(&c);
	}
	ret = os_raw_syscall6(SYS_mmap, (long)addr, (long)len, prot, flags, fd, (long)off);
	if (c.n) {
		hooked_end(&c, UFFD_EVENT_UNMAP, c.start, c.len, false);
		restore_signals(&old);
	}
	return sys_ret(ret) == -1 ? MAP_FAILED : (void *)ret;
}

/*
 * mremap(): the pages it moves leave the old range (all of it, when it
 * may move: whether it does is known only after), a shrink in place
 * drops the tail, and MREMAP_FIXED unmaps what was at the new address.
 * A range that could have moved and did not is watched again.
 */
static void *hook_mremap(void *old_addr, size_t old_size, size_t new_size, int flags, ...)
{
	uint64_t from = (uintptr_t)old_addr, olen = page_up(old_size), nlen = page_up(new_size);
	bool may_move = flags & (MREMAP_MAYMOVE | MREMAP_FIXED | IOVM_MREMAP_DONTUNMAP);
	struct hooked src = { .n = 0 }, dst = { .n = 0 };
	void *new_addr = NULL;
	sigset_t old;
	long ret;

	if (flags & MREMAP_FIXED) {
		va_list ap;

		va_start(ap, flags);
		new_addr = va_arg(ap, void *);
		va_end(ap);
		hooked_enter(&dst, (uintptr_t)new_addr, nlen);
	}
	if (may_move)
		hooked_enter(&src, from, olen);
	else if (nlen < olen)
		hooked_enter(&src, from + nlen, olen - nlen);
	if (src.n || dst.n) {
		block_signals(&old);
		hooked_before(&src);
		hooked_before(&dst);
	}
	ret = os_raw_syscall6(SYS_mremap, (long)old_addr, (long)old_size, (long)new_size, flags, (long)new_addr, 0);
	if (src.n || dst.n) {
		bool failed = ret < 0 && ret > -4096;

		if (!may_move || (!failed && (uint64_t)ret != from && !(flags & IOVM_MREMAP_DONTUNMAP)))
			hooked_end(&src, may_move ? UFFD_EVENT_REMAP : UFFD_EVENT_UNMAP, src.start, src.len, false);
		else if (!failed && (uint64_t)ret != from)
			hooked_end(&src, UFFD_EVENT_REMAP, src.start, src.len, true); /* moved, the source left mapped */
		else if (failed)
			hooked_kept(&src, src.start, src.len, 0, 0, 0);
		else if (nlen < olen)
			hooked_kept(&src, from, nlen, 0, from + nlen, olen - nlen); /* shrunk in place */
		else
			hooked_kept(&src, from, olen, 0, 0, 0); /* grown in place */
		/* Refused: the destination may have been unmapped before, or not: what is mapped stays watched. */
		if (failed)
			hooked_kept(&dst, dst.start, dst.len, 0, 0, 0);
		else
			hooked_end(&dst, UFFD_EVENT_UNMAP, dst.start, dst.len, false);
		restore_signals(&old);
	}
	return sys_ret(ret) == -1 ? MAP_FAILED : (void *)ret;
}

/* glibc's break, which its brk() keeps and sbrk() reads: found when brk() is patched. */
static void **libc_curbrk;
/*
 * The break when brk() was patched: the hook takes only what lies above it
 * (a break set below the heap's start is refused, and leaves everything
 * below as it was). What a shrink below it takes away is left to
 * userfaultfd, which still watches it.
 */
static uint64_t brk_floor;

/* brk() (sbrk() calls it): a break set lower unmaps what was above it. */
static int hook_brk(void *addr)
{
	uint64_t want = (uintptr_t)addr, cur, top, from;
	struct hooked c = { .n = 0 };
	sigset_t old;
	long got;

	cur = (uintptr_t)*libc_curbrk;
	if (!cur)
		cur = (uint64_t)os_raw_syscall6(SYS_brk, 0, 0, 0, 0, 0, 0);
	top = page_up(cur);
	from = page_up(want) > brk_floor ? page_up(want) : brk_floor;
	if (want && from < top && hooked_enter(&c, from, top - from)) {
		block_signals(&old);
		hooked_before(&c);
	}
	got = os_raw_syscall6(SYS_brk, (long)addr, 0, 0, 0, 0, 0);
	*libc_curbrk = (void *)got;
	if (c.n) {
		/* What lies below the break the kernel kept stays (all of it, for a break it refused). */
		uint64_t kept_end = page_up((uint64_t)got);

		kept_end = kept_end < c.start ? c.start : kept_end > top ? top : kept_end;
		hooked_kept(&c, c.start, kept_end - c.start, 0, kept_end, top - kept_end);
		restore_signals(&old);
	}
	/* As glibc's: the kernel answers with the break it kept; short of the one asked is a failure. */
	if ((uint64_t)got < want) {
		errno = ENOMEM;
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

/*
 * mmap()'s trampoline has a window of 64 KiB (os/patch.c), taken at load,
 * before a DMA heap or anything else can fill it; a page kept either way.
 */
/*
 * madvise(), mremap(), mmap(MAP_FIXED) and brk() are hooked only with
 * IOVM_HOOKS=all. With them on, attack18's unrelated_threads_odp saw a
 * device process give up at the client's closed gate (a bus fault) in
 * about one make check in three, and attack10's gate_stale_read read
 * memory an mmap(MAP_FIXED) had put in, 2 runs in 22. A device's gate
 * wait that faulted after seeing the gate open (fixed 2026-12-06,
 * dev/access.c) is the likeliest cause of the first and may be of the
 * second: on again by default once soaks say so. munmap() is always hooked.
 */
static bool hooks_all(void)
{
	const char *v = getenv("IOVM_HOOKS");

	return v && !strcmp(v, "all") && !getenv("IOVM_NO_HOOKS");
}

/* Reserved whatever IOVM_HOOKS says: it may be set after the library is loaded, before a monitor starts. */
__attribute__((constructor)) static void hooks_reserve(void)
{
	if (!getenv("IOVM_NO_HOOKS"))
		(void)os_patch_reserve("mmap");
}

static void patch(const char *name, void *hook, unsigned bit)
{
	int ret = os_patch_libc(name, hook);

	if (ret)
		log_debug("memory monitor: %s() not hooked (%d): userfaultfd alone sees it", name, ret);
	else
		atomic_fetch_or_explicit(&hooks_mask, bit, memory_order_release);
}

static void install(void)
{
	void *libc;

	if (getenv("IOVM_NO_HOOKS"))
		return;
	pthread_atfork(NULL, NULL, forked_child);
	patch("munmap", (void *)hook_munmap, HOOK_MUNMAP);
	if (!hooks_all())
		return;
#ifndef IOVM_TSAN
	/*
	 * Not under ThreadSanitizer: an exiting thread's glibc discards its
	 * stack with madvise() after the sanitizer let go of the thread,
	 * and the hook's instrumented code would find no thread there.
	 */
	patch("madvise", (void *)hook_madvise, HOOK_MADVISE);
#else
	(void)hook_madvise;	/* kept compiled: the TSan build checks it too */
#endif
	patch("mremap", (void *)hook_mremap, HOOK_MREMAP);
	patch("mmap", (void *)hook_mmap, HOOK_MMAP);
	/* brk() keeps glibc's own copy of the break, which sbrk() reads: without it, left alone. */
	libc = dlopen("libc.so.6", RTLD_NOLOAD | RTLD_LAZY);
	if (libc) {
		libc_curbrk = dlsym(libc, "__curbrk");
		dlclose(libc);
	}
	if (libc_curbrk) {
		brk_floor = page_up((uint64_t)os_raw_syscall6(SYS_brk, 0, 0, 0, 0, 0, 0));
		patch("brk", (void *)hook_brk, HOOK_BRK);
	}
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
