/* SPDX-License-Identifier: MIT */
/*
 * attack6_devown.h - what the sixth adversarial round (test_attack6_*.c)
 * shares: a device process (a child serving the share's engine, with the
 * oracle on, answering its counters and its pid's open files), a client
 * (an attached context with a queue), descriptors run to completion with
 * a deadline (a hang, not a timing), and helpers for a client's own
 * memory (anonymous, memfd, file, stack) mapped with iovm_rqueue_map().
 * Written from the public headers (iovm/mp.h, iovm/dev.h) alone: these
 * tests attack promises, not the implementation.
 */
#ifndef IOVM_TESTS_ATTACK6_DEVOWN_H
#define IOVM_TESTS_ATTACK6_DEVOWN_H

#include <dirent.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>

#include "mp/mp_util.h"
#include "attack/devsrv_child.h"

#define A6_HEAP (UINT64_C(64) << 20)
#define A6_PAGE 4096ul

static const char *a6_share, *a6_dev;

static inline struct child a6_start_server(unsigned workers)
{
	return devsrv_start(a6_share, a6_dev, workers);
}

static inline struct iovm_device_server_info a6_server_info(struct child *srv)
{
	return devsrv_info(srv);
}

static inline void a6_stop_server(struct child *srv)
{
	devsrv_stop(srv);
}

/* A fresh share and device process for one test. */
static inline struct iovm_ctx *a6_setup(const char *what, struct child *srv, unsigned workers)
{
	struct iovm_ctx *owner;
	char dev[64];
	static char devs[8][64];
	static unsigned n;

	a6_share = share_name(what);
	snprintf(dev, sizeof(dev), "%s-d", a6_share);
	strcpy(devs[n % 8], dev);
	a6_dev = devs[n++ % 8];
	owner = share_ok(a6_share, A6_HEAP);
	*srv = a6_start_server(workers);
	return owner;
}

static inline void a6_teardown(struct iovm_ctx *owner, struct child *srv)
{
	a6_stop_server(srv);
	CHECK_OK(iovm_share_check(owner));
	CHECK_OK(iovm_close(owner));
}

struct a6_cl {
	struct iovm_ctx *ctx;
	struct iovm_rqueue *q;
};

static inline struct a6_cl a6_client(unsigned depth)
{
	struct a6_cl c;
	int ret;

	c.ctx = attach_ok(a6_share);
	ret = iovm_rqueue_open(c.ctx, a6_dev, depth, &c.q);
	CHECK_MSG(ret == 0, "rqueue_open: %d %s", ret, iovm_error_detail());
	return c;
}

static inline void a6_client_close(struct a6_cl *c)
{
	CHECK_OK(iovm_rqueue_close(c->q));
	CHECK_OK(iovm_close(c->ctx));
}

/* Map @len bytes at @p: the IOVA, or fail the test. */
static inline uint64_t a6_map(struct iovm_rqueue *q, const void *p, size_t len, uint32_t perm)
{
	iovm_iova_t iova = { 0 };
	int ret = iovm_rqueue_map(q, p, len, perm, &iova);

	CHECK_MSG(ret == 0, "rqueue_map(%p, %zu, %u): %d (%s) %s", p, len, perm, ret, strerror(-ret),
		  iovm_error_detail());
	return iova.addr;
}

static inline double a6_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Reap one completion, waiting (a minute at most: a hang, not a timing). */
static inline struct iovm_cqe a6_reap1(struct iovm_rqueue *q)
{
	struct iovm_cqe cqe;
	double until = a6_now() + 60;
	int n;

	for (unsigned spins = 0;; spins++) {
		n = iovm_rqueue_reap(q, &cqe, 1);
		CHECK_MSG(n >= 0, "reap: %d", n);
		if (n)
			return cqe;
		if (spins % 64 == 63) {
			CHECK_MSG(a6_now() < until, "a descriptor did not complete in a minute");
			usleep(20);
		}
	}
}

/* Run @d to completion: its completion ring entry. */
static inline struct iovm_cqe a6_run(struct iovm_rqueue *q, struct iovm_desc d)
{
	struct iovm_cqe cqe;

	d.tag = 0xa6a6;
	CHECK_OK(iovm_rqueue_submit(q, &d));
	cqe = a6_reap1(q);
	CHECK_EQ(cqe.tag, 0xa6a6);
	return cqe;
}

static inline uint8_t a6_st(struct iovm_rqueue *q, struct iovm_desc d)
{
	return a6_run(q, d).status;
}

/* Anonymous private pages. */
static inline uint8_t *a6_anon(size_t len, int prot)
{
	void *p = mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(p != MAP_FAILED);
	return p;
}

/* A memfd of @len bytes, and its shared mapping. */
static inline uint8_t *a6_memfd(size_t len, int *fd_out)
{
	int fd = memfd_create("a6", MFD_CLOEXEC);
	void *p;

	CHECK(fd >= 0);
	CHECK(ftruncate(fd, (off_t)len) == 0);
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(p != MAP_FAILED);
	if (fd_out)
		*fd_out = fd;
	else
		close(fd);
	return p;
}

static inline void a6_fill_rand(uint8_t *p, size_t len, uint64_t *seed)
{
	for (size_t i = 0; i < len; i += 8) {
		uint64_t r = test_rand(seed);

		memcpy(p + i, &r, len - i < 8 ? len - i : 8);
	}
}

/*
 * The device process's open files that concern clients: links to some
 * process's memory file ("/proc/N/mem"), and sockets.
 */
static inline void a6_fds(pid_t pid, unsigned *mem, unsigned *sockets)
{
	char dir[64], path[320], link[256];
	struct dirent *de;
	DIR *d;

	*mem = *sockets = 0;
	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	d = opendir(dir);
	CHECK(d != NULL);
	while ((de = readdir(d))) {
		ssize_t n;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = 0;
		if (!strncmp(link, "/proc/", 6) && strstr(link, "/mem"))
			(*mem)++;
		else if (!strncmp(link, "socket:", 7))
			(*sockets)++;
	}
	closedir(d);
}

/* Lines of /proc/PID/maps. */
static inline unsigned a6_maps(pid_t pid)
{
	char path[64], line[512];
	unsigned n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "r");
	CHECK(f != NULL);
	while (fgets(line, sizeof(line), f))
		n++;
	fclose(f);
	return n;
}

#endif /* IOVM_TESTS_ATTACK6_DEVOWN_H */
