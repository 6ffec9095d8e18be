/* SPDX-License-Identifier: MIT */
/*
 * populate.c - MADV_POPULATE_WRITE, and a SIGBUS-guarded touch where it is
 * missing.
 *
 * A hugetlb page that cannot be had at fault time is a SIGBUS (DPDK catches
 * it with sigsetjmp around the first touch). MADV_POPULATE_WRITE turns the
 * same failure into -EFAULT or -ENOMEM. The fallback touches the pages
 * under a guard (os/guard.h), which turns the SIGBUS into an error.
 */
#include <errno.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/compiler.h"
#include "os/guard.h"
#include "os/populate.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

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

int os_mlock(const void *addr, size_t len)
{
	return syscall(SYS_mlock, addr, len) ? -errno : 0;
}

int os_munlock(const void *addr, size_t len)
{
	return syscall(SYS_munlock, addr, len) ? -errno : 0;
}
