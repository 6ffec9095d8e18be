/* SPDX-License-Identifier: MIT */
/*
 * attack25_stopped.c - the monitor's reader stopped (test_attack25_moves):
 * a helper process ptrace()s the one thread of the library that polls the
 * userfaultfd and stops it (PTRACE_INTERRUPT: the other threads run on),
 * then the test makes a call that reg.h says does not wait for that
 * thread, and the helper resumes it when told, or after 8 s if the call
 * has not returned by then (a call that waited for the stopped thread).
 *
 * reg.h: "The calls through libc that take memory away do not wait for
 * the monitor's thread: munmap() (the application's own calls, and
 * glibc's: free() of a block it had mmapped ...), and, with IOVM_HOOKS=all
 * ..., madvise() ..., mremap(), mmap() with MAP_FIXED over registered
 * memory"; "Memory such an mremap() moved is hooked where it went (a
 * free() of a block realloc() moved): the monitor marks it for the hooks
 * as it reads the move". Each move is made, and the monitor has dealt
 * with it (a query waited for it), before the reader is stopped: the mark
 * is there, so the munmap() or free() of the moved memory must return
 * with the reader stopped. After each call, once the reader runs again,
 * what the call took is gone and memory mapped there registers whole.
 */
#include <poll.h>
#include <sys/prctl.h>
#include <sys/select.h>
#include <sys/ptrace.h>

#include "attack/attack25.h"

A25_HARNESS(stopped);

static int cmd_w = -1, ack_r = -1;
static pid_t helper;

/* The helper: stop the thread it is told, resume it when told or after 8 s. */
static void helper_main(int cmd, int ack)
{
	char c;
	int tid;

	while (read(cmd, &c, 1) == 1) {
		int st;
		struct timeval tv = { 8, 0 };
		fd_set fs;
		char reply = 'k';

		if (c == 'R')
			continue; /* a resume that came after the 8 s: the thread runs already */
		if (c != 'S' || read(cmd, &tid, sizeof(tid)) != sizeof(tid))
			break;
		if (ptrace(PTRACE_SEIZE, tid, 0, 0) || ptrace(PTRACE_INTERRUPT, tid, 0, 0) ||
		    waitpid(tid, &st, __WALL) != tid)
			reply = 'e';
		if (write(ack, &reply, 1) != 1 || reply == 'e')
			_exit(1);
		FD_ZERO(&fs);
		FD_SET(cmd, &fs);
		reply = select(cmd + 1, &fs, NULL, NULL, &tv) == 1 && read(cmd, &c, 1) == 1 && c == 'R' ? 'r' : 'T';
		ptrace(PTRACE_DETACH, tid, 0, 0);
		if (write(ack, &reply, 1) != 1)
			_exit(1);
	}
	_exit(0);
}

/* The library's thread that polls the userfaultfd: its tid, or 0. */
static int find_reader(void)
{
	for (unsigned tries = 0; tries < 200; tries++) {
		DIR *d = opendir("/proc/self/task");
		struct dirent *e;
		int found = 0;

		CHECK(d != NULL);
		while (d && !found && (e = readdir(d))) {
			char path[320], line[512], link[64];
			unsigned long nr, arg0, arg1;
			FILE *f;

			if (e->d_name[0] == '.' || atoi(e->d_name) == (int)syscall(SYS_gettid))
				continue;
			snprintf(path, sizeof(path), "/proc/self/task/%s/syscall", e->d_name);
			f = fopen(path, "re");
			if (!f)
				continue;
			if (fgets(line, sizeof(line), f) && sscanf(line, "%lu %lx %lx", &nr, &arg0, &arg1) == 3 &&
			    (nr == SYS_poll || nr == SYS_ppoll) && arg1 > 0 && arg1 < 16) {
				/* Its pollfd array is in this very process: which fds it waits on. */
				const struct pollfd *pf = (const struct pollfd *)(uintptr_t)arg0;

				for (unsigned long i = 0; i < arg1 && !found; i++) {
					ssize_t n;

					snprintf(path, sizeof(path), "/proc/self/fd/%d", pf[i].fd);
					n = readlink(path, link, sizeof(link) - 1);
					if (n > 0) {
						link[n] = 0;
						if (strstr(link, "userfaultfd"))
							found = atoi(e->d_name);
					}
				}
			}
			fclose(f);
		}
		if (d)
			closedir(d);
		if (found)
			return found;
		usleep(1000);
	}
	return 0;
}

static bool stop_reader(int tid)
{
	char c = 'S';

	CHECK(write(cmd_w, &c, 1) == 1 && write(cmd_w, &tid, sizeof(tid)) == sizeof(tid));
	CHECK(read(ack_r, &c, 1) == 1);
	return c == 'k';
}

/* Resume the reader: whether the call made meanwhile returned before the helper's 8 s ran out. */
static bool resume_reader(void)
{
	char c = 'R';

	(void)!write(cmd_w, &c, 1);
	CHECK(read(ack_r, &c, 1) == 1);
	return c == 'r';
}

static atomic_ulong t_calls, t_waited;
static const char *t_known;

/* After @what returned with the reader stopped: it did not wait for it, and (reader running) [p, p+len) is gone. */
static void after(struct a17q *a, const char *what, bool returned, struct iovm_mr *old, uint8_t *p, size_t len)
{
	const char *bad;
	uint8_t *q;
	struct iovm_mr *m;

	atomic_fetch_add(&t_calls, 1);
	if (!returned) {
		atomic_fetch_add(&t_waited, 1);
		fprintf(stderr, "# %s waited for the monitor's stopped reader (it returned only once resumed)\n", what);
		if (!t_known)
			t_known = what;
	}
	bad = a25_gone_page(a, old, p, NULL, 0, 0);
	CHECK_MSG(!bad, "%s: the old registration: %s", what, bad);
	q = a25_map_at(p, len);
	if (!q)
		return;
	a25_fill(q, len / PG, 9);
	CHECK_OK(iovm_rcache_get(RC, q, len, A25_ACC, &m));
	CHECK_MSG(m != old, "%s: a get of memory mapped there anew hit the old region", what);
	CHECK_EQ(a25_info(m).valid_pages, len / PG);
	bad = a25_kept_page(a, m, q + len - PG, 9, len / PG - 1);
	CHECK_MSG(!bad, "%s, memory mapped there anew: %s", what, bad);
	CHECK_OK(iovm_rcache_put(RC, m));
	CHECK_OK(munmap(q, len));
}

TEST(reader_stopped)
{
	struct a17q a;
	int fds1[2], fds2[2], tid;
	unsigned rounds = a25_rounds(4);
	bool all = a25_hooks_all();

	if (TEST_TSAN)
		SKIP_CASE("ThreadSanitizer and a ptrace()d thread");
	CHECK_OK(pipe(fds1));
	CHECK_OK(pipe(fds2));
	(void)prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
	helper = fork();
	CHECK(helper >= 0);
	if (helper == 0) {
		close(fds1[1]);
		close(fds2[0]);
		helper_main(fds1[0], fds2[1]);
	}
	close(fds1[0]);
	close(fds2[1]);
	cmd_w = fds1[1];
	ack_r = fds2[0];
	a17q_open(&R, &a, 64 << 10, IOVM_QUEUE_POLLED);
	tid = find_reader();
	if (!tid || !stop_reader(tid)) {
		close(cmd_w);
		waitpid(helper, NULL, 0);
		a17q_close(&R, &a);
		SKIP_CASE("%s", tid ? "cannot ptrace() the monitor's reader here" : "no thread polls a userfaultfd");
	}
	CHECK(resume_reader());
	{
		/*
		 * The control: a raw munmap(2) of registered memory goes to userfaultfd and waits for the
		 * reader ("What bypasses libc (syscall(SYS_munmap) ...) ... are still seen by userfaultfd,
		 * waiting for its thread"): it returns only once the helper gave up and resumed it.
		 */
		uint8_t *x = a25_map_at(A25_AREA(15), PG);
		struct iovm_mr *xm;

		CHECK(x != NULL);
		CHECK_OK(iovm_mr_reg(R.dom, x, PG, A25_ACC, &xm));
		CHECK(stop_reader(tid));
		CHECK_OK(syscall(SYS_munmap, x, PG));
		CHECK_MSG(!resume_reader(), "a raw munmap(2) returned with the monitor's reader stopped: the stop does not "
			  "stop the thread that reads the userfaultfd, nothing here is attacked");
		CHECK_EQ(a25_info(xm).valid_pages, 0);
		CHECK_OK(iovm_mr_dereg(xm));
	}
	for (unsigned r = 0; r < rounds; r++) {
		static const size_t lens[] = { PG, 3 * PG, A25_MB2 + PG };
		size_t len = lens[r % 3];
		uint8_t *x, *y = A25_AREA(15) + A25_MB2 * 8, *z = A25_AREA(15) + A25_MB2 * 16;
		struct iovm_mr *xm, *rm;
		bool ret;

		/* munmap() of registered memory: hooked in every mode. */
		x = a25_map_at(A25_AREA(15), len);
		CHECK(x != NULL);
		CHECK_OK(iovm_mr_reg(R.dom, x, len, A25_ACC, &xm));
		CHECK(stop_reader(tid));
		CHECK_OK(munmap(x, len));
		ret = resume_reader();
		after(&a, "munmap() of registered memory", ret, xm, x, len);
		CHECK_OK(iovm_mr_dereg(xm));

		/* A move (dealt with before the stop), then the munmap() of where it went. */
		x = a25_map_at(A25_AREA(15), len);
		CHECK(x != NULL);
		CHECK_OK(iovm_mr_reg(R.dom, x, len, A25_ACC, &xm));
		CHECK(mremap(x, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, y) == y);
		CHECK_EQ(a25_info(xm).valid_pages, 0); /* the query waited for the move's event */
		CHECK(stop_reader(tid));
		CHECK_OK(munmap(y, len));
		ret = resume_reader();
		after(&a, "munmap() of memory a move took along", ret, xm, x, len);
		CHECK_OK(iovm_mr_dereg(xm));

		/* Two moves, then the munmap(). */
		x = a25_map_at(A25_AREA(15), len);
		CHECK(x != NULL);
		CHECK_OK(iovm_mr_reg(R.dom, x, len, A25_ACC, &xm));
		CHECK(mremap(x, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, y) == y);
		CHECK(mremap(y, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, z) == z);
		CHECK_EQ(a25_info(xm).valid_pages, 0);
		CHECK(stop_reader(tid));
		CHECK_OK(munmap(z, len));
		ret = resume_reader();
		after(&a, "munmap() of memory two moves took along", ret, xm, x, len);
		CHECK_OK(iovm_mr_dereg(xm));

		/* A move that grows (as glibc's realloc() does), then the munmap() of the whole block. */
		x = a25_map_at(A25_AREA(15), len);
		CHECK(x != NULL);
		CHECK_OK(iovm_rcache_get(RC, x, len, A25_ACC, &rm));
		CHECK(mremap(x, len, len + 2 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, y) == y);
		CHECK_EQ(a25_info(rm).valid_pages, 0);
		CHECK(stop_reader(tid));
		CHECK_OK(munmap(y, len + 2 * PG));
		ret = resume_reader();
		after(&a, "munmap() of a block a move grew (moved and grown pages)", ret, rm, x, len);
		CHECK_OK(iovm_rcache_put(RC, rm));

		/* glibc: free() of a block realloc() moved. */
		if (!TEST_OWN_MALLOC) {
			uint8_t *b, *c;
			uintptr_t was;

			CHECK(mallopt(M_MMAP_THRESHOLD, 128 << 10) == 1);
			b = malloc((200u << 10) + r * 999);
			CHECK(b != NULL);
			memset(b, 1, 200u << 10);
			CHECK_OK(iovm_rcache_get(RC, b, 200u << 10, A25_ACC, &rm));
			was = (uintptr_t)b;
			c = realloc(b, (2u << 20) + r * 4096);
			CHECK(c != NULL);
			if ((uintptr_t)c != was) {
				CHECK_EQ(a25_info(rm).valid_pages, 0);
				CHECK(stop_reader(tid));
				free(c);
				ret = resume_reader();
				atomic_fetch_add(&t_calls, 1);
				if (!ret) {
					atomic_fetch_add(&t_waited, 1);
					fprintf(stderr, "# free() of a block realloc() moved waited for the stopped reader\n");
					if (!t_known)
						t_known = "free() of a block realloc() moved";
				}
			} else {
				free(c);
			}
			CHECK_OK(iovm_rcache_put(RC, rm));
		}

		/* IOVM_HOOKS=all: mremap() moving registered memory, MAP_FIXED and madvise() over it. */
		if (all) {
			x = a25_map_at(A25_AREA(15), len);
			CHECK(x != NULL);
			CHECK_OK(iovm_mr_reg(R.dom, x, len, A25_ACC, &xm));
			CHECK(stop_reader(tid));
			CHECK(mremap(x, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, y) == y);
			ret = resume_reader();
			after(&a, "hooked mremap() moving registered memory", ret, xm, x, len);
			CHECK_OK(iovm_mr_dereg(xm));
			CHECK_OK(munmap(y, len));

			x = a25_map_at(A25_AREA(15), len);
			CHECK(x != NULL);
			CHECK_OK(iovm_mr_reg(R.dom, x, len, A25_ACC, &xm));
			CHECK(stop_reader(tid));
			CHECK(mmap(x, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == x);
			ret = resume_reader();
			CHECK_OK(munmap(x, len));
			after(&a, "hooked mmap(MAP_FIXED) over registered memory", ret, xm, x, len);
			CHECK_OK(iovm_mr_dereg(xm));
		}
	}
	close(cmd_w);
	CHECK(waitpid(helper, NULL, 0) == helper);
	close(ack_r);
	printf("# [%s] calls made with the reader stopped %lu, of them waited for it %lu\n", test_current,
	       atomic_load(&t_calls), atomic_load(&t_waited));
	CHECK(atomic_load(&t_calls) > 0);
	CHECK_MSG(atomic_load(&t_waited) == 0, "%lu calls waited for the monitor's stopped reader (first: %s)",
		  atomic_load(&t_waited), t_known);
	a17q_close(&R, &a);
}

A25_CASE(reader_stopped)
