/* SPDX-License-Identifier: MIT */
/*
 * vaspace.c - PROT_NONE reservations and MAP_FIXED commits.
 *
 * A reservation is private, anonymous, PROT_NONE and MAP_NORESERVE: it costs
 * one VMA, no memory and no overcommit charge. Committing replaces part of it
 * with a shared mapping of the memfd (MAP_FIXED is safe here: the range is
 * ours); decommitting puts the reservation back the same way, so no other
 * mmap() in the process can take the hole in between.
 */
#include <errno.h>
#include <sys/mman.h>

#include "base/compiler.h"
#include "base/fault_inject.h"
#include "os/vaspace.h"

#define RESERVE_PROT PROT_NONE
#define RESERVE_FLAGS (MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE)

void *os_va_reserve(size_t len, size_t align)
{
	size_t span;
	uint8_t *p, *aligned;

	if (!len || !is_pow2(align) || len + align < len)
		return NULL;
	span = len + align;
	p = fi_mmap(NULL, span, RESERVE_PROT, RESERVE_FLAGS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	aligned = (uint8_t *)align_up((uintptr_t)p, align);
	if (aligned > p)
		munmap(p, (size_t)(aligned - p));
	if (aligned + len < p + span)
		munmap(aligned + len, (size_t)(p + span - (aligned + len)));
	return aligned;
}

void os_va_release(void *addr, size_t len)
{
	if (addr)
		munmap(addr, len);
}

int os_va_commit(void *addr, size_t len, int fd, uint64_t off, bool populate)
{
	int flags = MAP_SHARED | MAP_FIXED | (populate ? MAP_POPULATE : 0);
	void *p = fi_mmap(addr, len, PROT_READ | PROT_WRITE, flags, fd, (off_t)off);

	if (p == MAP_FAILED)
		return -errno;
	return 0;
}

int os_va_commit_sparse(void *addr, size_t len, int fd, uint64_t off)
{
	void *p = fi_mmap(addr, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED | MAP_NORESERVE, fd, (off_t)off);

	return p == MAP_FAILED ? -errno : 0;
}

int os_va_decommit(void *addr, size_t len)
{
	void *p = mmap(addr, len, RESERVE_PROT, RESERVE_FLAGS | MAP_FIXED, -1, 0);

	return p == MAP_FAILED ? -errno : 0;
}

void *os_va_map_shared(size_t len, int fd, uint64_t off)
{
	void *p = fi_mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)off);

	return p == MAP_FAILED ? NULL : p;
}
