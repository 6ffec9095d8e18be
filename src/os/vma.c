/* SPDX-License-Identifier: MIT */
/*
 * vma.c - a range's mappings: by the PROCMAP_QUERY ioctl of
 * /proc/self/maps where the kernel has it (6.11 on), one query per mapping
 * and no text; else by reading the maps' text, every mapping of the
 * process formatted and parsed (some 15 us for a small process, and as
 * many times more as it has mappings: 600 us at 500, which a process's
 * mlock(2)ed registrations reach, each splitting its mapping in three).
 * os_vma_probe(), for a small range about to be faulted in anyway, asks
 * the range itself instead where the kernel has no query: the text only
 * when the probes find something other than private anonymous memory.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/fault_inject.h"
#include "base/log.h"
#include "os/pid.h"
#include "os/uffd.h"
#include "os/vma.h"

/* The uapi of linux/fs.h (6.11); Debian 12's headers predate it. */
struct os_procmap_query {
	uint64_t size;
	uint64_t query_flags;
	uint64_t query_addr;
	uint64_t vma_start, vma_end;
	uint64_t vma_flags;
	uint64_t vma_page_size;
	uint64_t vma_offset;
	uint64_t inode;
	uint32_t dev_major, dev_minor;
	uint32_t vma_name_size, build_id_size;
	uint64_t vma_name_addr, build_id_addr;
};

static_assert(sizeof(struct os_procmap_query) == 104, "the kernel's struct procmap_query");

#define OS_PROCMAP_QUERY _IOWR('f', 17, struct os_procmap_query)
#define OS_PROCMAP_READABLE 0x01
#define OS_PROCMAP_WRITABLE 0x02
#define OS_PROCMAP_SHARED 0x08
#define OS_PROCMAP_COVERING_OR_NEXT 0x10

/*
 * The maps file, opened once per process: an open costs as much as the
 * queries. A child after fork(2) inherits the parent's, which describes
 * the parent's mappings: it opens its own.
 */
static _Atomic int maps_fd = -1;
static _Atomic pid_t maps_pid;
static atomic_bool no_query;   /* the kernel has no PROCMAP_QUERY */
static atomic_bool text_only;  /* the tests want the text read */
static atomic_bool fake_old;   /* the tests want the kernel taken for one without PROCMAP_QUERY */

void os_vma_text_only(bool on)
{
	atomic_store(&text_only, on);
}

void os_vma_no_queries(bool on)
{
	atomic_store(&fake_old, on);
}

static int maps_get(void)
{
	pid_t pid = os_pid();
	int fd = atomic_load_explicit(&maps_fd, memory_order_acquire), old, nfd;

	if (fd >= 0 && atomic_load_explicit(&maps_pid, memory_order_relaxed) == pid)
		return fd;
	nfd = fi_open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (nfd < 0)
		return -errno;
	old = fd;
	atomic_store_explicit(&maps_pid, pid, memory_order_relaxed);
	if (!atomic_compare_exchange_strong_explicit(&maps_fd, &old, nfd, memory_order_acq_rel,
						     memory_order_acquire)) {
		/* Another thread opened one first: use it. */
		close(nfd);
		return old;
	}
	if (fd >= 0)
		close(fd); /* the parent's, inherited */
	return nfd;
}

/* By PROCMAP_QUERY: 0, or -ENOTTY when the kernel has none. */
static int query_range(uint64_t start, uint64_t end, struct os_vma_info *info)
{
	char name[4160];
	uint64_t covered = start;
	int fd = maps_get();

	if (fd < 0)
		return fd;
	while (covered < end) {
		struct os_procmap_query q = { .size = sizeof(q), .query_flags = OS_PROCMAP_COVERING_OR_NEXT,
					      .query_addr = covered, .vma_name_size = sizeof(name),
					      .vma_name_addr = (uintptr_t)name };

		if (fi_ioctl(fd, OS_PROCMAP_QUERY, &q)) {
			if (errno == ENOENT)
				break; /* nothing at or after it */
			return errno == ENOTTY || errno == EINVAL ? -ENOTTY : -errno;
		}
		if (q.vma_start > covered)
			break; /* a hole */
		info->readable &= !!(q.vma_flags & OS_PROCMAP_READABLE);
		info->writable &= !!(q.vma_flags & OS_PROCMAP_WRITABLE);
		if (q.vma_page_size && (!info->page_size || q.vma_page_size < info->page_size))
			info->page_size = q.vma_page_size;
		if (q.vma_name_size && !strncmp(name, "/SYSV", 5))
			info->sysv_shm = true;
		if ((q.vma_flags & OS_PROCMAP_SHARED) ||
		    (q.inode && !(q.vma_name_size && !strncmp(name, "/anon_hugepage", 14))))
			info->file_backed = true;
		covered = q.vma_end;
	}
	info->mapped = covered >= end;
	return 0;
}

/* By the text of the maps. */
static int read_range(uint64_t start, uint64_t end, struct os_vma_info *info)
{
	char line[512];
	uint64_t covered = start;
	FILE *f = fi_fopen("/proc/self/maps", "re");

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		unsigned long s, e, inode = 0;
		char perms[5] = "";
		int path = 0;

		if (sscanf(line, "%lx-%lx %4s %*s %*s %lu %n", &s, &e, perms, &inode, &path) < 3)
			continue;
		if (e <= start)
			continue;
		if (s >= end)
			break;
		/* Mappings are listed in address order: a gap before this one is a hole. */
		if (s > covered)
			break;
		covered = e;
		info->readable &= perms[0] == 'r';
		info->writable &= perms[1] == 'w';
		if (path && !strncmp(line + path, "/SYSV", 5))
			info->sysv_shm = true;
		if (perms[3] == 's' || (inode && !(path && !strncmp(line + path, "/anon_hugepage", 14))))
			info->file_backed = true;
		if (covered >= end)
			break;
	}
	fclose(f);
	info->mapped = covered >= end;
	info->page_size = 4096; /* not in the text */
	return 0;
}

int os_vma_range(uint64_t start, uint64_t end, struct os_vma_info *info)
{
	int ret = -ENOTTY;

	*info = (struct os_vma_info){ .readable = true, .writable = true };
	if (!atomic_load_explicit(&no_query, memory_order_relaxed) &&
	    !atomic_load_explicit(&text_only, memory_order_relaxed) &&
	    !atomic_load_explicit(&fake_old, memory_order_relaxed)) {
		ret = query_range(start, end, info);
		if (ret == -ENOTTY) {
			atomic_store_explicit(&no_query, true, memory_order_relaxed);
			*info = (struct os_vma_info){ .readable = true, .writable = true };
		}
	}
	if (ret == -ENOTTY)
		ret = read_range(start, end, info);
	if (ret)
		return ret;
	if (!info->mapped)
		info->readable = info->writable = false;
	if (!info->page_size)
		info->page_size = 4096;
	return 0;
}

bool os_vma_queries(void)
{
	struct os_vma_info vi;

	/* One query tells whether the kernel has them. */
	if (!atomic_load(&no_query))
		os_vma_range((uintptr_t)&vi, (uintptr_t)&vi + 1, &vi);
	return !atomic_load(&no_query) && !atomic_load(&text_only) && !atomic_load(&fake_old);
}

/*
 * The probes. Pinning a range faults it in (mlock(2) does, for writing
 * where the mapping is private and writable): faulting it in first is
 * what the pin would do, a walk of a few pages, where a read of the maps'
 * text formats every mapping the process has (and a listing of
 * /proc/self/map_files, tried too, walks them all: a quarter of the
 * text's time on rxe's guest). What they tell, each page alone:
 *  - MADV_POPULATE_READ (Linux 5.14): every page mapped and readable
 *    (-ENOMEM: a hole; -EFAULT or -EINVAL: not readable, a PFN or IO
 *    mapping), MADV_POPULATE_WRITE likewise writable;
 *  - the pagemap entry of each page, present now: PM_FILE marks a page
 *    of a file or of shared memory (a memfd's, shmem's, System V's, a
 *    shared anonymous mapping's, a private file mapping's not copied);
 *  - what a private mapping's copied pages do not say, whether the
 *    mapping is a file's, userfaultfd does for the files that matter: it
 *    registers minor faults of shmem (a memfd, tmpfs, System V) and of
 *    hugetlbfs only, refusing anything else with -EINVAL before it
 *    changes anything. A probe userfaultfd of its own asks for each page,
 *    and for the 2 MiB and 1 GiB around it (a hugetlb mapping takes its
 *    own page size's alignment only); anything but -EINVAL, a success
 *    undone at once included, is "maybe".
 * Anything but readable (and writable) private anonymous memory is told
 * by the text, exactly, with one difference: a private mapping of a
 * regular file whose pages in the range were all written is told as
 * anonymous; userfaultfd refuses to watch it, so a registration of it is
 * not monitored either way.
 */
#define PROBE_MAX_PAGES 16u
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#define MADV_POPULATE_WRITE 23
#endif
#define PM_PRESENT (UINT64_C(1) << 63)
#define PM_SWAP (UINT64_C(1) << 62)
#define PM_FILE (UINT64_C(1) << 61)

static atomic_int probes;         /* 0 not known yet, 1 the kernel has MADV_POPULATE_*, -1 not */
static atomic_bool no_probe_uffd; /* none to be had: no userfaultfd, or no minor faults of shmem */
static _Atomic int pagemap_fd = -1, probe_uffd = -1;
static _Atomic pid_t pagemap_pid, probe_uffd_pid;

static bool probes_work(void)
{
	static char page[4096] __attribute__((aligned(4096)));
	int ok = atomic_load_explicit(&probes, memory_order_relaxed);

	if (!ok) {
		ok = madvise(page, sizeof(page), MADV_POPULATE_READ) && errno == EINVAL ? -1 : 1;
		atomic_store_explicit(&probes, ok, memory_order_relaxed);
	}
	return ok > 0;
}

/*
 * A descriptor of this process's, opened once (@open_fd), as maps_get()'s;
 * a child's is its own: an inherited userfaultfd would probe the parent.
 */
static int fd_get(_Atomic int *slot, _Atomic pid_t *owner, int (*open_fd)(void))
{
	pid_t pid = os_pid();
	int fd = atomic_load_explicit(slot, memory_order_acquire), old, nfd;

	if (fd >= 0 && atomic_load_explicit(owner, memory_order_relaxed) == pid)
		return fd;
	nfd = open_fd();
	if (nfd < 0)
		return nfd;
	old = fd;
	atomic_store_explicit(owner, pid, memory_order_relaxed);
	if (!atomic_compare_exchange_strong_explicit(slot, &old, nfd, memory_order_acq_rel, memory_order_acquire)) {
		close(nfd);
		return old;
	}
	if (fd >= 0)
		close(fd);
	return nfd;
}

static int open_pagemap(void)
{
	int fd = fi_open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

static int open_probe_uffd(void)
{
	struct uffdio_api api = { .api = UFFD_API };
	int fd, ret = os_uffd_open(&fd, NULL, 0);

	if (ret) {
		if (ret != -EMFILE && ret != -ENFILE && ret != -ENOMEM && ret != -EAGAIN)
			atomic_store_explicit(&no_probe_uffd, true, memory_order_relaxed);
		return ret;
	}
	if (fi_ioctl(fd, UFFDIO_API, &api) || !(api.features & UFFD_FEATURE_MINOR_SHMEM) ||
	    !(api.features & UFFD_FEATURE_MINOR_HUGETLBFS)) {
		close(fd);
		atomic_store_explicit(&no_probe_uffd, true, memory_order_relaxed);
		return -EOPNOTSUPP;
	}
	return fd;
}

/* Whether the mapping of the page at @a may be shmem's or hugetlbfs's: 0 it is neither, 1 maybe. */
static int maybe_shmem(int uffd, uint64_t a)
{
	static const uint64_t sizes[] = { 4096, UINT64_C(2) << 20, UINT64_C(1) << 30 };

	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct uffdio_register r = { .range = { .start = a & ~(sizes[i] - 1), .len = sizes[i] },
					     .mode = UFFDIO_REGISTER_MODE_MINOR };

		if (!fi_ioctl(uffd, UFFDIO_REGISTER, &r)) {
			struct uffdio_range u = r.range;
			int tries = 0;

			/*
			 * Undone at once: nobody reads this userfaultfd, and a
			 * minor fault there would wait for it. Only a private
			 * mapping of shmem or hugetlbfs whose every page is
			 * copied gets here (the pagemap tells the others).
			 */
			while (ioctl(uffd, UFFDIO_UNREGISTER, &u) && errno != EINVAL && ++tries < 100)
				sched_yield();
			if (tries == 100)
				log_err("memory probe: [%#llx, +%#llx) stays registered for minor faults: %s",
					(unsigned long long)u.start, (unsigned long long)u.len, strerror(errno));
			return 1;
		}
		if (errno != EINVAL)
			return 1;
	}
	return 0;
}

int os_vma_probe(uint64_t start, uint64_t end, unsigned fault, struct os_vma_info *info)
{
	uint64_t ents[PROBE_MAX_PAGES];
	size_t n = (size_t)((end - start) / 4096), len = n * sizeof(ents[0]);
	void *p = (void *)(uintptr_t)start;
	int fd, uffd;

	/* Where the kernel answers a query, or the text is wanted, or the range is large: the maps. */
	if (!fault || !n || ((start | end) & 4095) || n > PROBE_MAX_PAGES ||
	    atomic_load_explicit(&text_only, memory_order_relaxed) ||
	    (!atomic_load_explicit(&no_query, memory_order_relaxed) &&
	     !atomic_load_explicit(&fake_old, memory_order_relaxed)) ||
	    atomic_load_explicit(&no_probe_uffd, memory_order_relaxed) || !probes_work())
		return os_vma_range(start, end, info);
	if (fi_madvise(p, end - start, MADV_POPULATE_READ))
		return os_vma_range(start, end, info);
	fd = fd_get(&pagemap_fd, &pagemap_pid, open_pagemap);
	if (fd < 0 || pread(fd, ents, len, (off_t)(start / 4096 * sizeof(ents[0]))) != (ssize_t)len)
		return os_vma_range(start, end, info);
	for (size_t i = 0; i < n; i++)
		if ((ents[i] & PM_FILE) || !(ents[i] & (PM_PRESENT | PM_SWAP)))
			return os_vma_range(start, end, info);
	uffd = fd_get(&probe_uffd, &probe_uffd_pid, open_probe_uffd);
	if (uffd < 0)
		return os_vma_range(start, end, info);
	for (size_t i = 0; i < n; i++)
		if (maybe_shmem(uffd, start + i * 4096))
			return os_vma_range(start, end, info);
	if ((fault & OS_VMA_FAULT_WRITE) && fi_madvise(p, end - start, MADV_POPULATE_WRITE))
		return os_vma_range(start, end, info);
	*info = (struct os_vma_info){ .mapped = true, .readable = true, .writable = fault & OS_VMA_FAULT_WRITE,
				      .page_size = 4096 };
	return 0;
}
