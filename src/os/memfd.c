/* SPDX-License-Identifier: MIT */
/*
 * memfd.c - memfd creation, growth and hole punching.
 *
 * The pages of a bank are allocated by populating its mapping (os_populate),
 * after mbind() has set where they must come from; a hole punched in the
 * file gives them back to the kernel (hugepages to their pool).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/memfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/compiler.h"
#include "base/fault_inject.h"
#include "os/hugepage.h"
#include "os/memfd.h"

static int memfd_open(const char *name, uint64_t page_size, unsigned flags, int *fd)
{
	int ret;

	if (!is_pow2(page_size))
		return -EINVAL;
	if (page_size != os_page_size()) {
		if (!os_hugepage_supported(page_size))
			return -EOPNOTSUPP;
		flags |= MFD_HUGETLB | (ilog2(page_size) << MFD_HUGE_SHIFT);
	}
	ret = fi_memfd_create(name, flags);
	if (ret < 0)
		return -errno;
	*fd = ret;
	return 0;
}

int os_memfd_create(const char *name, uint64_t page_size, int *fd)
{
	return memfd_open(name, page_size, MFD_CLOEXEC, fd);
}

int os_memfd_create_sealed(const char *name, uint64_t page_size, uint64_t size, int *fd)
{
	int ret, f = -1; /* set by memfd_open(); gcc -O3 cannot tell */

	if (!size || size > INT64_MAX || !is_aligned(size, page_size))
		return -EINVAL;
	ret = memfd_open(name, page_size, MFD_CLOEXEC | MFD_ALLOW_SEALING, &f);
	if (ret)
		return ret;
	if (fi_ftruncate(f, (off_t)size)) {
		ret = -errno;
		goto close_fd;
	}
	if (fcntl(f, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)) {
		ret = -errno;
		goto close_fd;
	}
	*fd = f;
	return 0;

close_fd:
	close(f);
	return ret;
}

int os_memfd_sealed_size(int fd, uint64_t *size)
{
	int seals = fcntl(fd, F_GET_SEALS);
	struct stat st;

	if (seals < 0)
		return -errno;
	if ((seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW))
		return -EPERM;
	if (fstat(fd, &st))
		return -errno;
	*size = (uint64_t)st.st_size;
	return 0;
}

int os_memfd_extend(int fd, uint64_t end)
{
	struct stat st;

	if (end > INT64_MAX)
		return -EINVAL;
	if (fstat(fd, &st))
		return -errno;
	if ((uint64_t)st.st_size < end && fi_ftruncate(fd, (off_t)end))
		return -errno;
	return 0;
}

int os_memfd_punch(int fd, uint64_t off, uint64_t len)
{
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len))
		return -errno;
	return 0;
}
