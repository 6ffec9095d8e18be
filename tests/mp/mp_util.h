/* SPDX-License-Identifier: MIT */
/*
 * mp_util.h - what the multi-process tests share: a child process run
 * from a function, a pipe each way to talk to it, and a unique share name.
 *
 * A child ends with _exit(): the parent's atexit check is the parent's.
 * A failed CHECK in a child exits 1, which the parent's child_wait() sees.
 */
#ifndef IOVM_TESTS_MP_UTIL_H
#define IOVM_TESTS_MP_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <iovm.h>

#include "base/crash.h" /* CRASH_EXIT */
#include "harness.h"

#if TEST_TSAN
/*
 * Children are forked from a test that has threads (a share's server),
 * and some start threads of their own (a device process, an engine queue's
 * worker): ThreadSanitizer refuses that unless told that the test knows.
 * A child takes no lock its parent's threads could hold at the fork: it
 * uses nothing of the parent's iovm context, and attaches afresh.
 */
const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
	return "die_after_fork=0";
}
#endif

struct child {
	pid_t pid;
	int rd; /* from the child */
	int wr; /* to the child */
};

/*
 * Whether every thread of this process but the caller sleeps (state S in
 * /proc/self/task/TID/stat): none is inside a call that holds a lock.
 */
static inline bool threads_rest(void)
{
	pid_t self = (pid_t)syscall(SYS_gettid);
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	bool rest = true;

	if (!d)
		return true;
	while (rest && (e = readdir(d))) {
		char path[64], buf[512], *p;
		int tid = atoi(e->d_name);
		FILE *f;

		if (tid <= 0 || tid == self)
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
		f = fopen(path, "r");
		if (!f)
			continue; /* gone */
		p = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
		fclose(f);
		rest = !p || (p[1] == ' ' && p[2] == 'S');
	}
	closedir(d);
	return rest;
}

/*
 * Before a fork, under AddressSanitizer: gcc 12's fork() takes none of its
 * allocator's locks, so a child forked while another thread of the parent
 * allocates inherits that lock held, and its first thread to allocate
 * waits for ever. (CI, 2026-12-06: test_mp_share's child, forked just
 * after its parent's domains started their threads, hung with its queue's
 * worker in pthread_getattr_np()'s free(); here 1 run in 4 beside two busy
 * loops.) The library's threads allocate as they start and now and then
 * after: wait until all sleep, seen twice in a row, 200 ms at most (a test
 * whose threads spin through its forks pays that per fork). A thread may
 * still wake between the look and the fork, which child_exec() does not
 * mind.
 */
static inline void fork_when_threads_rest(void)
{
	if (!TEST_ASAN)
		return;
	for (unsigned i = 0, calm = 0; i < 400 && calm < 2; i++) {
		calm = threads_rest() ? calm + 1 : 0;
		if (calm < 2)
			usleep(500);
	}
}

/*
 * Fork a child that dies with its parent (a test that fails leaves no
 * child behind, looping until killed): 0 in the child, with @c's pipes
 * the child's ends (c->rd from the parent, c->wr to it); the pid in the
 * parent, with the parent's ends.
 */
static inline pid_t child_fork(struct child *c)
{
	int up[2], down[2];
	pid_t parent = getpid();

	CHECK(pipe(up) == 0);
	CHECK(pipe(down) == 0);
	fflush(NULL);
	fork_when_threads_rest();
	c->pid = fork();
	CHECK(c->pid >= 0);
	if (!c->pid) {
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
			_exit(1);
		close(up[0]);
		close(down[1]);
		c->rd = down[0];
		c->wr = up[1];
		return 0;
	}
	close(up[1]);
	close(down[0]);
	c->rd = up[0];
	c->wr = down[1];
	return c->pid;
}

/* Run @fn(@rd, @wr, @arg) in a child process. */
static inline struct child child_start(void (*fn)(int rd, int wr, void *arg), void *arg)
{
	struct child c;

	if (!child_fork(&c)) {
		fn(c.rd, c.wr, arg);
		_exit(0);
	}
	return c;
}

/*
 * Run this program again in a child, as `PROGRAM --child ROLE RD WR ARG`
 * (child_exec_role() reads it back): for a child forked while threads of
 * the parent run. A forked child inherits every lock as some other thread
 * held it at the fork; glibc's malloc takes care of its own, but not every
 * allocator does (AddressSanitizer's, in gcc 12, leaves one held now and
 * then, and the child's first thread to allocate hangs). Exec starts over.
 */
static inline struct child child_exec(const char *role, uint64_t arg)
{
	struct child c;

	if (!child_fork(&c)) {
		char rd[16], wr[16], a[24];

		snprintf(rd, sizeof(rd), "%d", c.rd);
		snprintf(wr, sizeof(wr), "%d", c.wr);
		snprintf(a, sizeof(a), "%llu", (unsigned long long)arg);
		execl("/proc/self/exe", "child", "--child", role, rd, wr, a, (char *)NULL);
		_exit(127);
	}
	return c;
}

/* In main(): whether this process is a child_exec() child of @role; its pipes and argument. */
static inline bool child_exec_role(int argc, char **argv, const char *role, int *rd, int *wr, uint64_t *arg)
{
	if (argc != 6 || strcmp(argv[1], "--child") || strcmp(argv[2], role))
		return false;
	*rd = atoi(argv[3]);
	*wr = atoi(argv[4]);
	*arg = strtoull(argv[5], NULL, 10);
	return true;
}

static inline void put64(int fd, uint64_t v)
{
	CHECK(write(fd, &v, sizeof(v)) == (ssize_t)sizeof(v));
}

static inline uint64_t get64(int fd)
{
	uint64_t v = 0;
	ssize_t n;

	do
		n = read(fd, &v, sizeof(v));
	while (n < 0 && errno == EINTR);
	CHECK_MSG(n == (ssize_t)sizeof(v), "read from the other process: %zd", n);
	return v;
}

/* The child's exit status: 0 when it ended well; -signal when killed. */
static inline int child_wait(struct child *c)
{
	int st = 0;

	while (waitpid(c->pid, &st, 0) < 0 && errno == EINTR)
		;
	close(c->rd);
	close(c->wr);
	if (WIFSIGNALED(st))
		return -WTERMSIG(st);
	return WEXITSTATUS(st);
}

static inline void child_ok(struct child *c)
{
	int st = child_wait(c);

	CHECK_MSG(st == 0, "child %d ended with %d", (int)c->pid, st);
}

static inline void child_kill(struct child *c)
{
	kill(c->pid, SIGKILL);
	CHECK_EQ(child_wait(c), -SIGKILL);
}

/*
 * Tell child @c, armed with a crash countdown at point @n, to go: true
 * when it says it lived through its calls (its word in *@said; then it
 * is killed), false when it died at the point, as it must then
 * (_exit(CRASH_EXIT), base/crash.h).
 */
static inline bool child_go_lives(struct child *c, unsigned long n, uint64_t *said)
{
	int ret;

	put64(c->wr, 1);
	if (read(c->rd, said, sizeof(*said)) == (ssize_t)sizeof(*said)) {
		child_kill(c);
		return true;
	}
	ret = child_wait(c);
	CHECK_MSG(ret == CRASH_EXIT, "point %lu: the child ended with %d", n, ret);
	return false;
}

/* A share name no other test run uses. */
static inline const char *share_name(const char *what)
{
	static char buf[4][64];
	static unsigned n;
	char *b = buf[n++ % 4];

	snprintf(b, 64, "t-%s-%d-%u", what, (int)getpid(), n);
	return b;
}

/* Wait (for a hang, not a timing) until @cond holds; fail after a minute. */
#define WAIT_UNTIL(cond)                                                              \
	do {                                                                          \
		unsigned _ms = 0;                                                     \
		while (!(cond)) {                                                     \
			CHECK_MSG(_ms < 60000, "waited a minute for %s", #cond);      \
			usleep(1000);                                                 \
			_ms++;                                                        \
		}                                                                     \
	} while (0)

static inline struct iovm_ctx *attach_ok(const char *name)
{
	struct iovm_ctx *ctx = NULL;
	/* The oracle on: shared domains are made with its shadow, and every device access is checked. */
	int ret = iovm_attach(name, "oracle=on", &ctx);

	CHECK_MSG(ret == 0, "iovm_attach(%s): %s: %s", name, strerror(-ret), iovm_error_detail());
	return ctx;
}

/*
 * A share on 4 KiB pages: the tests that use it are not about hugepages,
 * and must pass while other processes drain the machine's pool, where a
 * share on 2 MiB pages fails its allocations with ENOMEM, as mp.h says
 * (attack16, test_mp_parcels and the hugepage tests make theirs on 2 MiB).
 */
static inline struct iovm_ctx *share_ok(const char *name, uint64_t size)
{
	struct iovm_share_params p = { .heap_size = size, .page_size = 4096, .group = -1 };
	struct iovm_ctx *ctx = NULL;
	int ret;

	CHECK_OK(iovm_open("oracle=on", &ctx));
	ret = iovm_share(ctx, name, &p);
	CHECK_MSG(ret == 0, "iovm_share(%s): %s: %s", name, strerror(-ret), iovm_error_detail());
	return ctx;
}

static inline struct iovm_share_info share_info(struct iovm_ctx *ctx)
{
	struct iovm_share_info info;

	CHECK_OK(iovm_share_info(ctx, &info));
	return info;
}

#endif /* IOVM_TESTS_MP_UTIL_H */
