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

int os_memfd_create(const char *name, uint64_t page_size, int *fd)
{
	unsigned flags = MFD_CLOEXEC;
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
