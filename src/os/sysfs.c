/* SPDX-License-Identifier: MIT */
/*
 * sysfs.c - small-file helpers.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/compiler.h"
#include "base/fault_inject.h"
#include "os/sysfs.h"

int sysfs_read(const char *path, char *buf, size_t len)
{
	int __autoclose fd = -1;
	ssize_t n;

	if (!len)
		return -EINVAL;
	fd = fi_open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	return 0;
}

int sysfs_read_u64(const char *path, uint64_t *val)
{
	char buf[64], *end;
	int ret = sysfs_read(path, buf, sizeof(buf));

	if (ret)
		return ret;
	errno = 0;
	*val = strtoull(buf, &end, 10);
	if (errno || end == buf)
		return -EINVAL;
	return 0;
}

/* A PCI device's ID attribute ("0x1234"), or 0 when it cannot be read. */
static unsigned pci_id(const char *bdf, const char *attr)
{
	char path[320], buf[16];

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/%s", bdf, attr);
	return sysfs_read(path, buf, sizeof(buf)) ? 0 : (unsigned)strtoul(buf, NULL, 16);
}

int sysfs_pci_find(unsigned vendor, unsigned device, char *bdf, size_t len)
{
	DIR *d = opendir("/sys/bus/pci/devices");
	struct dirent *e;
	int ret = -ENODEV;

	while (d && (e = readdir(d))) {
		if (e->d_name[0] != '.' && pci_id(e->d_name, "vendor") == vendor &&
		    pci_id(e->d_name, "device") == device) {
			snprintf(bdf, len, "%s", e->d_name);
			ret = 0;
			break;
		}
	}
	if (d)
		closedir(d);
	return ret;
}

int sysfs_write(const char *path, const char *val)
{
	int __autoclose fd = -1;
	size_t len = strlen(val);

	fd = fi_open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, val, len) != (ssize_t)len)
		return -errno ? -errno : -EIO;
	return 0;
}

int sysfs_parse_list(const char *list, void (*fn)(unsigned n, void *arg), void *arg)
{
	const char *p = list;
	int count = 0;

	while (*p) {
		unsigned long lo, hi;
		char *end;

		lo = strtoul(p, &end, 10);
		if (end == p)
			return -EINVAL;
		hi = lo;
		p = end;
		if (*p == '-') {
			hi = strtoul(p + 1, &end, 10);
			if (end == p + 1 || hi < lo)
				return -EINVAL;
			p = end;
		}
		for (unsigned long n = lo; n <= hi; n++, count++)
			if (fn)
				fn((unsigned)n, arg);
		if (*p == ',')
			p++;
		else if (*p)
			return -EINVAL;
	}
	return count;
}
