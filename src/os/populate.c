/* SPDX-License-Identifier: MIT */
/*
 * populate.c - MADV_POPULATE_WRITE, and a SIGBUS-guarded touch where it is
 * missing or where threads populate one mapping in parallel; mlock.
 *
 * A hugetlb page that cannot be had at fault time is a SIGBUS (DPDK catches
 * it with sigsetjmp around the first touch). MADV_POPULATE_WRITE turns the
 * same failure into -EFAULT or -ENOMEM. The fallback touches the pages
 * under a guard (os/guard.h), which turns the SIGBUS into an error.
 */
#include <errno.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/compiler.h"
#include "base/fault_inject.h"
#include "os/guard.h"
#include "os/populate.h"

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
/* MLOCK_ONFAULT (Linux 4.4), which older C libraries do not name. */
#define MLOCK_ONFAULT_FLAG 1

/* Out of line, so that nothing of the caller's frame lives across the longjmp. */
static __noinline void touch_pages(volatile uint8_t *p, size_t len, uint64_t page_size)
{
	for (size_t off = 0; off < len; off += page_size)
		p[off] = p[off];
}

int os_populate_touch(void *addr, size_t len, uint64_t page_size)
{
	struct os_guard g;

	if (!is_pow2(page_size) || !is_aligned((uintptr_t)addr, page_size))
		return -EINVAL;
	if (sigsetjmp(g.jmp, 0))
		return -ENOMEM; /* SIGBUS: no page to be had */
	os_guard_set(&g);
	touch_pages(addr, len, page_size);
	os_guard_clear(&g);
	return 0;
}

int os_populate(void *addr, size_t len, uint64_t page_size)
{
	if (fi_madvise(addr, len, MADV_POPULATE_WRITE) == 0)
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

/* Whether the kernel has MADV_POPULATE_* (5.14): asked once, of a page of our own stack. */
static bool populate_supported(void)
{
	static _Atomic int known; /* 0: not asked yet, 1: yes, 2: no */
	int k = atomic_load_explicit(&known, memory_order_relaxed);
	uint8_t probe[2 * 4096];

	if (!k) {
		void *page = (void *)align_up((uintptr_t)probe, 4096);

		k = fi_madvise(page, 4096, MADV_POPULATE_READ) && errno == EINVAL ? 2 : 1;
		atomic_store_explicit(&known, k, memory_order_relaxed);
	}
	return k == 1;
}

/*
 * Whole pages: a registration's unit, whatever the application allocated
 * in them (ASan's redzones around a malloc() block included).
 */
static __noinline __no_sanitize_address void touch_range(volatile uint8_t *p, size_t len, bool write)
{
	for (size_t off = 0; off < len; off += 4096) {
		if (write)
			__atomic_fetch_add(&p[off], 0, __ATOMIC_RELAXED);
		else
			(void)p[off];
	}
}

int os_populate_range(void *addr, size_t len, bool write)
{
	struct os_guard g;
	int tries = 0, ret;

	/* EAGAIN: a kernel resource was briefly unavailable (madvise(2)); again, a few times. */
	while ((ret = fi_madvise(addr, len, write ? MADV_POPULATE_WRITE : MADV_POPULATE_READ)) &&
	       (errno == EAGAIN || errno == EINTR) && ++tries < 8)
		;
	if (!ret)
		return 0;
	if (errno == EAGAIN || errno == EINTR)
		return -EAGAIN;
	/*
	 * ENOMEM is the range not all mapped, or memory short while faulting
	 * in: msync() tells them apart (ENOMEM only for the first; MS_ASYNC
	 * does nothing to the memory), so that a caller short of memory is
	 * not told its buffer is not there.
	 */
	if (errno == ENOMEM)
		return msync((void *)align_down((uintptr_t)addr, 4096), len + ((uintptr_t)addr & 4095), MS_ASYNC)
			       ? -EFAULT
			       : -ENOMEM;
	if (errno != EINVAL || populate_supported())
		return -EFAULT; /* inaccessible or not writable (EINVAL), SIGBUS (EFAULT) */
	if (sigsetjmp(g.jmp, 0))
		return -EFAULT;
	os_guard_set(&g);
	touch_range(addr, len, write);
	os_guard_clear(&g);
	return 0;
}

int os_mlock(const void *addr, size_t len)
{
	/*
	 * An injected failure says EAGAIN, whatever errno the test asked for:
	 * memory short while locking is EAGAIN from mlock(2); its ENOMEM means
	 * "not all mapped" or "past RLIMIT_MEMLOCK", which no shortage causes.
	 */
	if (fi_fail(FI_SYSCALL, EAGAIN))
		return -EAGAIN;
	return syscall(SYS_mlock, addr, len) ? -errno : 0;
}

int os_munlock(const void *addr, size_t len)
{
	return syscall(SYS_munlock, addr, len) ? -errno : 0;
}

int os_mlock_onfault(const void *addr, size_t len)
{
	/* As os_mlock(): an injected failure is memory short. */
	if (fi_fail(FI_SYSCALL, EAGAIN))
		return -EAGAIN;
#ifdef SYS_mlock2
	return syscall(SYS_mlock2, addr, len, MLOCK_ONFAULT_FLAG) ? -errno : 0;
#else
	(void)addr;
	(void)len;
	return -ENOSYS;
#endif
}

int os_populate_touched(void *addr, size_t len, bool write)
{
	struct os_guard g;

	if (!is_aligned((uintptr_t)addr, 4096))
		return -EINVAL;
	if (sigsetjmp(g.jmp, 0))
		return -EFAULT; /* SIGSEGV or SIGBUS: unmapped, not permitted, or no page to be had */
	os_guard_set(&g);
	touch_range(addr, len, write);
	os_guard_clear(&g);
	return 0;
}
