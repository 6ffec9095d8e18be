/* SPDX-License-Identifier: MIT */
/*
 * vma.c - a range's mappings: by the PROCMAP_QUERY ioctl of
 * /proc/self/maps where the kernel has it (6.11 on), one query per mapping
 * and no text; else by reading the maps' text, every mapping of the
 * process formatted and parsed (some 15 us for a small process).
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "base/fault_inject.h"
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

void os_vma_text_only(bool on)
{
	atomic_store(&text_only, on);
}

static int maps_get(void)
{
	pid_t pid = getpid();
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
	    !atomic_load_explicit(&text_only, memory_order_relaxed)) {
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
	return !atomic_load(&no_query) && !atomic_load(&text_only);
}
