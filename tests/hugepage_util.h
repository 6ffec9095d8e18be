/* SPDX-License-Identifier: MIT */
/*
 * hugepage_util.h - what the tests that use hugepages share: how many pages
 * can be had at this moment, how many this process holds, and a second
 * process that takes pages while a test runs.
 *
 * The machine's pool is not the test's: other processes take and give back
 * pages at any time. A test asks what is available right before it needs
 * it, skips a case (saying why) when too few are, and checks what it owns
 * (its own process's hugetlb pages) rather than the pool's counters, which
 * others move.
 */
#ifndef IOVM_TESTS_HUGEPAGE_UTIL_H
#define IOVM_TESTS_HUGEPAGE_UTIL_H

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static inline bool hp_read_u64(const char *path, uint64_t *v)
{
	FILE *f = fopen(path, "r");
	bool ok;

	if (!f)
		return false;
	ok = fscanf(f, "%" SCNu64, v) == 1;
	fclose(f);
	return ok;
}

/*
 * hugepages_available() - pages of @size (bytes) that an allocation could
 * get right now, on @node (negative: anywhere). Free pages that a mapping
 * has reserved but not touched yet (HugePages_Rsvd) are not to be had; the
 * kernel counts reservations machine-wide only, so per node they are
 * subtracted from that node's free pages as a whole.
 */
static inline uint64_t hugepages_available(uint64_t size, int node)
{
	char dir[160], path[224];
	uint64_t free = 0, resv = 0;

	snprintf(dir, sizeof(dir), "/sys/kernel/mm/hugepages/hugepages-%" PRIu64 "kB", size >> 10);
	snprintf(path, sizeof(path), "%s/resv_hugepages", dir);
	if (!hp_read_u64(path, &resv))
		resv = 0;
	if (node >= 0)
		snprintf(dir, sizeof(dir), "/sys/devices/system/node/node%d/hugepages/hugepages-%" PRIu64 "kB",
			 node, size >> 10);
	snprintf(path, sizeof(path), "%s/free_hugepages", dir);
	if (!hp_read_u64(path, &free))
		return 0;
	return free > resv ? free - resv : 0;
}

/* hugepages_held_kb() - hugetlb memory this process maps (HugetlbPages), in KiB; -1 if unknown. */
static inline long long hugepages_held_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long long kb = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "HugetlbPages: %lld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/*
 * A contender: a child process that holds @hold 2 MiB pages for as long as
 * it lives, and takes @churn more and gives them back every millisecond or
 * so, as another application would; with @drain, every eighth time it
 * takes every page free instead. It dies with its parent.
 */
struct hp_contender {
	pid_t pid;
	unsigned held; /* pages it holds for sure */
};

static inline void hp_nap_us(long us)
{
	struct timespec ts = { 0, us * 1000 };

	nanosleep(&ts, NULL);
}

static inline void *hp_take(unsigned pages)
{
	size_t len = (size_t)pages << 21;
	void *p;

	if (!pages)
		return NULL;
	/* MAP_HUGETLB reserves at mmap: no SIGBUS at the touch, only a failed mmap. */
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	/* A byte per page faults it in: the pages are taken in microseconds, in any build. */
	for (size_t off = 0; off < len; off += 2u << 20)
		((volatile char *)p)[off] = 0x5a;
	return p;
}

static inline __attribute__((noreturn)) void hp_contender_main(int ready_fd, pid_t parent, unsigned hold,
							   unsigned churn, bool drain)
{
	void *held = hp_take(hold);
	unsigned char got = held ? (unsigned char)hold : 0;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (write(ready_fd, &got, 1) != 1)
		_exit(1);
	close(ready_fd);
	for (unsigned round = 1; getppid() == parent; round++) {
		unsigned n = churn;
		void *p;

		/* Draining: now and then every free page, for a moment, as a hungry application would. */
		if (drain && round % 8 == 0)
			n = (unsigned)hugepages_available(2u << 20, -1);
		p = hp_take(n);
		hp_nap_us(1000);
		if (p)
			munmap(p, (size_t)n << 21);
		hp_nap_us(1000);
	}
	_exit(0);
}

/*
 * hp_contender_start() - fork the contender; 0 once it holds its pages,
 * -EAGAIN when @hold could not be had (it runs anyway, churning), -errno
 * when it could not be started.
 */
static inline int hp_contender_start_mode(struct hp_contender *c, unsigned hold, unsigned churn, bool drain)
{
	pid_t parent = getpid();
	unsigned char got = 0;
	int fds[2];

	c->pid = -1;
	c->held = 0;
	if (pipe(fds))
		return -errno;
	fflush(NULL);
	c->pid = fork();
	if (c->pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return -errno;
	}
	if (c->pid == 0) {
		close(fds[0]);
		hp_contender_main(fds[1], parent, hold, churn, drain);
	}
	close(fds[1]);
	if (read(fds[0], &got, 1) != 1)
		got = 0;
	close(fds[0]);
	c->held = got;
	return got == hold ? 0 : -EAGAIN;
}

static inline int hp_contender_start(struct hp_contender *c, unsigned hold, unsigned churn)
{
	return hp_contender_start_mode(c, hold, churn, false);
}

/* hp_contender_stop() - end it; whether it was still alive (it never died of anything but our kill). */
static inline bool hp_contender_stop(struct hp_contender *c)
{
	int status = 0;
	bool alive;

	if (c->pid <= 0)
		return false;
	alive = kill(c->pid, SIGKILL) == 0;
	if (waitpid(c->pid, &status, 0) != c->pid)
		alive = false;
	c->pid = -1;
	return alive && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

#endif /* IOVM_TESTS_HUGEPAGE_UTIL_H */
