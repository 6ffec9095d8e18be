/* SPDX-License-Identifier: MIT */
/*
 * uffd.c - userfaultfd, opened the three ways Linux allows.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <iovm/os.h>

#include "base/compiler.h"
#include "base/error.h"
#include "base/fault_inject.h"
#include "os/uffd.h"

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif

static void set_via(char *via, size_t len, const char *how)
{
	if (via && len)
		snprintf(via, len, "%s", how);
}

/* The error to report of two ways that failed: a shortage (it may pass), else the first. */
static int telling(int err, int e)
{
	return e == EMFILE || e == ENFILE || e == ENOMEM || e == EAGAIN ? e : err;
}

int os_uffd_open(int *fd, char *via, size_t via_len)
{
	int flags = O_CLOEXEC | O_NONBLOCK, ret, dev, err;

#ifdef SYS_userfaultfd
	ret = (int)fi_syscall(SYS_userfaultfd, flags);
	if (ret >= 0) {
		set_via(via, via_len, "syscall");
		*fd = ret;
		return 0;
	}
	err = errno;
	ret = (int)fi_syscall(SYS_userfaultfd, flags | UFFD_USER_MODE_ONLY);
	if (ret >= 0) {
		set_via(via, via_len, "syscall (user-mode only)");
		*fd = ret;
		return 0;
	}
	err = telling(err, errno);
#else
	err = ENOSYS;
#endif
	dev = fi_open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev < 0)
		return -telling(err, errno);
	ret = fi_ioctl(dev, USERFAULTFD_IOC_NEW, flags);
	err = telling(err, errno);
	close(dev);
	if (ret >= 0) {
		set_via(via, via_len, "/dev/userfaultfd");
		*fd = ret;
		return 0;
	}
	return -err;
}

int os_uffd_features(uint64_t *features)
{
	struct uffdio_api api = { .api = UFFD_API, .features = 0 };
	int __autoclose fd = -1;
	int ret;

	ret = os_uffd_open(&fd, NULL, 0);
	if (ret)
		return ret;
	if (fi_ioctl(fd, UFFDIO_API, &api))
		return -errno;
	*features = api.features;
	return 0;
}

/* Bits as in linux/userfaultfd.h; newer ones are named here since the headers may be older. */
static const char *const uffd_feature_names[] = {
	"PAGEFAULT_FLAG_WP", "EVENT_FORK",     "EVENT_REMAP",        "EVENT_REMOVE",
	"MISSING_HUGETLBFS", "MISSING_SHMEM",  "EVENT_UNMAP",        "SIGBUS",
	"THREAD_ID",         "MINOR_HUGETLBFS", "MINOR_SHMEM",       "EXACT_ADDRESS",
	"WP_HUGETLBFS_SHMEM", "WP_UNPOPULATED", "POISON",            "WP_ASYNC",
	"MOVE",
};

IOVM_API const char *iovm_uffd_feature_name(unsigned bit)
{
	err_enter();
	return bit < ARRAY_SIZE(uffd_feature_names) ? uffd_feature_names[bit] : NULL;
}
