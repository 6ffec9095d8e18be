/* SPDX-License-Identifier: MIT */
/*
 * attack4_mp.h - what the fourth adversarial round (test_attack4_mp_*.c)
 * shares: children that die with the test (PR_SET_PDEATHSIG, and every
 * child killed and reaped at exit whatever path the test took), a page of
 * memory shared with the children for their rendezvous, descriptor and
 * mapping counts, and the share's settled accounting. Written from the
 * public headers (iovm/mp.h, iovm/mem.h) and issue 17 alone.
 */
#ifndef IOVM_TESTS_ATTACK4_MP_H
#define IOVM_TESTS_ATTACK4_MP_H

#include <dirent.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "attack.h"
#include "mp/mp_util.h"

#define A4_MAX_KIDS 512

static pid_t a4_main_pid;
static pid_t a4_kids[A4_MAX_KIDS];

/* At exit of the test process (not of a child): kill and reap every child left. */
static void a4_reap_all(void)
{
	if (getpid() != a4_main_pid)
		return;
	for (unsigned i = 0; i < A4_MAX_KIDS; i++) {
		if (a4_kids[i] <= 0)
			continue;
		kill(a4_kids[i], SIGKILL);
		while (waitpid(a4_kids[i], NULL, 0) < 0 && errno == EINTR)
			;
		a4_kids[i] = 0;
	}
}

static inline void a4_init(void)
{
	test_init();
	a4_main_pid = getpid();
	atexit(a4_reap_all);
	signal(SIGPIPE, SIG_IGN);
}

static inline void a4_track(pid_t pid)
{
	for (unsigned i = 0; i < A4_MAX_KIDS; i++)
		if (a4_kids[i] <= 0) {
			a4_kids[i] = pid;
			return;
		}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	CHECK_MSG(0, "more than %d children", A4_MAX_KIDS);
}

static inline void a4_untrack(pid_t pid)
{
	for (unsigned i = 0; i < A4_MAX_KIDS; i++)
		if (a4_kids[i] == pid)
			a4_kids[i] = 0;
}

/*
 * fork() for a child that dies when its parent does. In the child, a
 * soft check that failed makes it exit 1 (a4_child_exit()).
 */
static inline pid_t a4_fork(void)
{
	pid_t parent = getpid(), pid;

	fflush(NULL);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(99);
		/* A grandchild is its own parent's business, not the test's. */
		memset(a4_kids, 0, sizeof(a4_kids));
		/* What the parent found broken is the parent's to report. */
		atomic_store(&attack_broken, 0);
		return 0;
	}
	if (getpid() == a4_main_pid)
		a4_track(pid);
	return pid;
}

/* The end of a child: 1 when a soft check failed in it, else 0. */
static inline _Noreturn void a4_child_exit(void)
{
	fflush(NULL);
	_exit(atomic_load(&attack_broken) ? 1 : 0);
}

/* Wait for @pid: 0 when it ended well, its exit status, or -signal. */
static inline int a4_wait(pid_t pid)
{
	int st = 0;
	pid_t r;

	while ((r = waitpid(pid, &st, 0)) < 0 && errno == EINTR)
		;
	CHECK_MSG(r == pid, "waitpid(%d): %s", (int)pid, strerror(errno));
	a4_untrack(pid);
	if (WIFSIGNALED(st))
		return -WTERMSIG(st);
	return WEXITSTATUS(st);
}

/* Wait for @pid, failing after @sec seconds (a hang, not a timing): then kill it. */
static inline int a4_wait_deadline(pid_t pid, unsigned sec)
{
	for (unsigned ms = 0; ms < sec * 1000u; ms++) {
		int st = 0;
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid) {
			a4_untrack(pid);
			return WIFSIGNALED(st) ? -WTERMSIG(st) : WEXITSTATUS(st);
		}
		usleep(1000);
	}
	kill(pid, SIGKILL);
	a4_wait(pid);
	return 1000; /* hung */
}

static inline void a4_kill(pid_t pid)
{
	kill(pid, SIGKILL);
	int st = a4_wait(pid);

	/* It may have ended by itself first: only a crash is wrong. */
	CHECK_MSG(st == -SIGKILL || st == 0, "child %d ended with %d", (int)pid, st);
}

/* Memory shared with the children, made before they are forked. */
static inline void *a4_shared(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	CHECK(p != MAP_FAILED);
	memset(p, 0, len);
	return p;
}

/* Open file descriptors of this process. */
static inline int a4_fd_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	CHECK(d != NULL);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own */
}

/* Lines of /proc/self/maps, and of them those that map a memfd. */
static inline int a4_map_count(int *memfd_maps)
{
	char line[512];
	int n = 0, m = 0;
	FILE *f = fopen("/proc/self/maps", "r");

	CHECK(f != NULL);
	while (fgets(line, sizeof(line), f)) {
		n++;
		if (strstr(line, "memfd:") || strstr(line, "/dev/shm") || strstr(line, "hugepages"))
			m++;
	}
	fclose(f);
	if (memfd_maps)
		*memfd_maps = m;
	return n;
}

/* Descriptors of this process that are memfds or sockets, by their link. */
static inline int a4_fd_kinds(int *memfds, int *sockets)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	char path[300], link[300];
	int n = 0;

	*memfds = *sockets = 0;
	CHECK(d != NULL);
	while ((e = readdir(d))) {
		ssize_t l;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		l = readlink(path, link, sizeof(link) - 1);
		if (l < 0)
			continue;
		link[l] = 0;
		n++;
		if (strstr(link, "memfd:"))
			(*memfds)++;
		if (!strncmp(link, "socket:", 7))
			(*sockets)++;
	}
	closedir(d);
	return n;
}

/* Entries in @dir whose name contains @needle (0 when @dir is missing). */
static inline int a4_dir_matches(const char *dir, const char *needle)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.' && (!needle || strstr(e->d_name, needle)))
			n++;
	closedir(d);
	return n;
}

/*
 * The share's structure is sound, and once every process other than
 * @procs has gone, its memory is back: @blocks live and @free_bytes
 * free (UINT64_MAX: any). A dead process's memory may wait for a reap when no owner
 * lives, so this reaps while it waits.
 */
static inline void a4_settled(struct iovm_ctx *ctx, unsigned procs, uint64_t blocks, uint64_t free_bytes)
{
	struct iovm_share_info in;
	unsigned ms = 0;

	for (;;) {
		CHECK_OK(iovm_share_info(ctx, &in));
		if (in.processes == procs && in.blocks == blocks && (free_bytes == UINT64_MAX || in.heap_free == free_bytes))
			break;
		if (ms++ > 10000) {
			EXPECT_MSG(0, "after 10 s: processes %u blocks %llu heap_free %llu, expected %u %llu %llu",
				   in.processes, (unsigned long long)in.blocks,
				   (unsigned long long)in.heap_free, procs, (unsigned long long)blocks,
				   (unsigned long long)free_bytes);
			break;
		}
		if (ms % 50 == 0)
			iovm_share_reap(ctx);
		usleep(1000);
	}
	CHECK_RET(iovm_share_check(ctx), 0);
}

/* A share with a 4 KiB-page heap of @size bytes (no hugepages: other tests hold them). */
static inline struct iovm_ctx *a4_share(const char *name, uint64_t size)
{
	struct iovm_share_params p = { .heap_size = size, .page_size = 4096, .group = -1 };
	struct iovm_ctx *ctx = NULL;
	int ret;

	CHECK_OK(iovm_open("log_level=error", &ctx));
	ret = iovm_share(ctx, name, &p);
	CHECK_MSG(ret == 0, "iovm_share(%s): %s: %s", name, strerror(-ret), iovm_error_detail());
	return ctx;
}

static inline struct iovm_ctx *a4_attach(const char *name)
{
	struct iovm_ctx *ctx = NULL;
	int ret = iovm_attach(name, "log_level=error", &ctx);

	CHECK_MSG(ret == 0, "iovm_attach(%s): %s: %s", name, strerror(-ret), iovm_error_detail());
	return ctx;
}

static inline uint64_t a4_pa(struct iovm_ctx *ctx, const void *p)
{
	iovm_pa_t pa;

	CHECK_OK(iovm_dma_pa(ctx, p, &pa));
	return pa.addr;
}

static inline void *a4_ptr(struct iovm_ctx *ctx, uint64_t pa)
{
	void *p = iovm_dma_ptr(ctx, IOVM_PA(pa));

	CHECK_MSG(p != NULL, "iovm_dma_ptr(%#llx): %s", (unsigned long long)pa, strerror(errno));
	return p;
}

/* The seed of a test's randomness: IOVM_SEED, or a fixed one; printed. */
static inline uint64_t a4_seed(void)
{
	const char *s = getenv("IOVM_SEED");
	uint64_t seed = s ? strtoull(s, NULL, 0) : UINT64_C(0x5eed0004);

	if (!seed)
		seed = 1;
	printf("# seed %#llx (IOVM_SEED=...)\n", (unsigned long long)seed);
	return seed;
}

/* A pattern byte for a block: who made it and which it is. */
static inline uint8_t a4_pat(uint64_t tag, size_t i)
{
	return (uint8_t)(tag * 131 + i * 7 + (i >> 8));
}

static inline void a4_fill(void *p, size_t n, uint64_t tag)
{
	uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		b[i] = a4_pat(tag, i);
}

/* The first byte of [p, p+n) that does not hold @tag's pattern, or n. */
static inline size_t a4_bad(const void *p, size_t n, uint64_t tag)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i] != a4_pat(tag, i))
			return i;
	return n;
}

#endif /* IOVM_TESTS_ATTACK4_MP_H */
