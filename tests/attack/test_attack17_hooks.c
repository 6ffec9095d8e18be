/* SPDX-License-Identifier: MIT */
/*
 * test_attack17_hooks.c - issue 20's hooked munmap() where hooks hurt:
 * munmap() of registered memory from a signal handler that interrupts a
 * hooked munmap() of the same thread; fork() while threads storm
 * munmap()/mmap() over registered memory (the child's munmap of its copy
 * and the parent's devices); a context closed while another thread
 * munmaps its registered memory, with a second context whose promise must
 * hold throughout. Written from iovm/reg.h alone.
 */
#include <signal.h>
#include <sys/wait.h>

#include "attack/attack17.h"

#define LEN (4 * PG)
#define NB 64

/* Regions registered up front, taken away by a handler or a thread. */
struct slot {
	uint8_t *p;
	struct iovm_mr *mr;
	uint64_t iova;
	atomic_bool gone;
};

static struct slot slots[NB];
static atomic_uint next_slot;
static atomic_uint handler_runs;

static void slots_reg(struct rig *r)
{
	for (unsigned i = 0; i < NB; i++) {
		slots[i].p = app_map(LEN);
		memset(slots[i].p, 0x11, LEN);
		CHECK_OK(iovm_mr_reg(r->dom, slots[i].p, LEN, IOVM_ACCESS_LOCAL_WRITE, &slots[i].mr));
		slots[i].iova = mr_iova(slots[i].mr, slots[i].p);
		atomic_store(&slots[i].gone, false);
	}
	atomic_store(&next_slot, 0);
}

static void on_usr1(int sig)
{
	unsigned i = atomic_fetch_add(&next_slot, 1);
	int e = errno;

	(void)sig;
	atomic_fetch_add(&handler_runs, 1);
	if (i < NB && munmap(slots[i].p, LEN) == 0)
		atomic_store(&slots[i].gone, true);
	errno = e;
}

static atomic_bool kicker_stop;

static void *kicker(void *arg)
{
	pthread_t target = *(pthread_t *)arg;

	while (!atomic_load(&kicker_stop)) {
		pthread_kill(target, SIGUSR1);
		usleep(50);
	}
	return NULL;
}

TEST(munmap_in_signal_handler)
{
	struct rig r;
	struct a17q a;
	struct sigaction sa = { .sa_handler = on_usr1 }, old;
	pthread_t self = pthread_self(), k;
	unsigned rounds = 0;

	A17_KNOWN("munmap() of registered memory in a signal handler that interrupts a device access of the same "
		  "thread (polled queue) deadlocks (signal_munmap_during_device)");

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	a17q_open(&r, &a, PG, IOVM_QUEUE_POLLED);
	slots_reg(&r);
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	CHECK_OK(sigaction(SIGUSR1, &sa, &old));
	atomic_store(&kicker_stop, false);
	CHECK_OK(-pthread_create(&k, NULL, kicker, &self));
	/* This thread in hooked munmap() of registered memory, again and again, while signals come. */
	while (atomic_load(&next_slot) < NB && rounds < 100000) {
		uint8_t *p = app_map(LEN);
		struct iovm_mr *mr;
		uint64_t iova;
		const char *bad;

		CHECK_OK(iovm_mr_reg(r.dom, p, LEN, IOVM_ACCESS_LOCAL_WRITE, &mr));
		iova = mr_iova(mr, p);
		CHECK_OK(munmap(p, LEN));
		bad = a17_after_gone(&a, p, LEN, iova);
		CHECK_MSG(!bad, "main round %u: %s", rounds, bad);
		CHECK_OK(iovm_mr_dereg(mr));
		rounds++;
	}
	atomic_store(&kicker_stop, true);
	pthread_join(k, NULL);
	CHECK_OK(sigaction(SIGUSR1, &old, NULL));
	printf("# %u handler runs over %u rounds\n", atomic_load(&handler_runs), rounds);
	for (unsigned i = 0; i < NB; i++) {
		if (atomic_load(&slots[i].gone)) {
			const char *bad = a17_after_gone(&a, slots[i].p, LEN, slots[i].iova);

			CHECK_MSG(!bad, "slot %u unmapped in the handler: %s", i, bad);
			CHECK_EQ(mr_info(slots[i].mr).valid_pages, 0);
		} else {
			app_unmap(slots[i].p, LEN);
		}
		CHECK_OK(iovm_mr_dereg(slots[i].mr));
	}
	a17q_close(&r, &a);
	rig_close(&r);
}

/*
 * The smallest form: this thread runs device copies of registered memory
 * on a polled queue (the device's access runs in this thread) while
 * SIGUSR1 comes; the handler munmap()s other registered memory. Every
 * munmap() must return: a watchdog fails the test when nothing moves for
 * 5 s (seen: the handler's hooked munmap() waits for the interrupted
 * device access to finish, which waits for the handler).
 */
static atomic_ulong progress;

static void *watchdog(void *arg)
{
	unsigned long last = ~0ul;
	unsigned still = 0;

	(void)arg;
	for (;;) {
		unsigned long now = atomic_load(&progress);

		if (now == ~0ul)
			return NULL;
		still = now == last ? still + 1 : 0;
		last = now;
		if (still >= 50) {
			fprintf(stderr,
				"FAIL [signal_munmap_during_device]: no progress for 5 s after %lu copies and %u handler "
				"munmaps: a munmap() in a signal handler that interrupted a device copy never returns\n",
				now, atomic_load(&handler_runs));
			_exit(1);
		}
		usleep(100000);
	}
}

TEST(signal_munmap_during_device)
{
	struct rig r;
	struct a17q a;
	struct sigaction sa = { .sa_handler = on_usr1 }, old;
	pthread_t self = pthread_self(), k, w;
	uint8_t *p = app_map(64 * PG);
	struct iovm_mr *mr;
	uint64_t iova;

	A17_KNOWN("munmap() of registered memory in a signal handler that interrupts a device access of the same "
		  "thread (polled queue) deadlocks");
	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	a17q_open(&r, &a, 64 * PG, IOVM_QUEUE_POLLED);
	slots_reg(&r);
	atomic_store(&handler_runs, 0);
	memset(p, 0x11, 64 * PG);
	CHECK_OK(iovm_mr_reg(r.dom, p, 64 * PG, IOVM_ACCESS_LOCAL_WRITE, &mr));
	iova = mr_iova(mr, p);
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	CHECK_OK(sigaction(SIGUSR1, &sa, &old));
	atomic_store(&progress, 0);
	CHECK_OK(-pthread_create(&w, NULL, watchdog, NULL));
	atomic_store(&kicker_stop, false);
	CHECK_OK(-pthread_create(&k, NULL, kicker, &self));
	while (atomic_load(&next_slot) < NB) {
		CHECK_EQ(a17_copy(&a, iova, a.buf_iova, 64 * PG), IOVM_STATUS_SUCCESS);
		atomic_fetch_add(&progress, 1);
	}
	atomic_store(&kicker_stop, true);
	pthread_join(k, NULL);
	atomic_store(&progress, ~0ul);
	pthread_join(w, NULL);
	CHECK_OK(sigaction(SIGUSR1, &old, NULL));
	for (unsigned i = 0; i < NB; i++) {
		const char *bad = a17_after_gone(&a, slots[i].p, LEN, slots[i].iova);

		CHECK_MSG(!bad, "slot %u unmapped in the handler: %s", i, bad);
		CHECK_OK(iovm_mr_dereg(slots[i].mr));
	}
	CHECK_OK(iovm_mr_dereg(mr));
	app_unmap(p, 64 * PG);
	a17q_close(&r, &a);
	rig_close(&r);
}

/* Threads replacing registered memory and checking the device, until told. */
struct storm {
	struct rig *r;
	struct a17q a;
	atomic_bool *stop;
	unsigned rounds;
	char bad[160];
};

static void *storm_main(void *arg)
{
	struct storm *s = arg;

	while (!atomic_load(s->stop)) {
		uint8_t *p = app_map(LEN);
		struct iovm_mr *mr;
		uint64_t iova;
		const char *bad;

		memset(p, 0x11, LEN);
		CHECK_OK(iovm_mr_reg(s->r->dom, p, LEN, IOVM_ACCESS_LOCAL_WRITE, &mr));
		iova = mr_iova(mr, p);
		CHECK_OK(munmap(p, LEN));
		bad = a17_after_gone(&s->a, p, LEN, iova);
		if (bad && !s->bad[0])
			snprintf(s->bad, sizeof(s->bad), "round %u: %s", s->rounds, bad);
		CHECK_OK(iovm_mr_dereg(mr));
		s->rounds++;
	}
	return NULL;
}

TEST(fork_during_munmap_storm)
{
	struct rig r;
	struct storm s[2];
	pthread_t th[2];
	atomic_bool stop = false;
	unsigned forks = a17_rounds(20);

	if (TEST_TSAN)
		SKIP_CASE("fork() while the monitor watches cannot run under TSan (known-gaps.md)");
	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	slots_reg(&r);
	for (unsigned i = 0; i < 2; i++) {
		memset(&s[i], 0, sizeof(s[i]));
		s[i].r = &r;
		s[i].stop = &stop;
		a17q_open(&r, &s[i].a, PG, IOVM_QUEUE_POLLED);
		CHECK_OK(-pthread_create(&th[i], NULL, storm_main, &s[i]));
	}
	for (unsigned f = 0; f < forks; f++) {
		pid_t pid = fork();
		int status = 0;

		CHECK(pid >= 0);
		if (pid == 0) {
			/* The child: its copies of registered memory, unmapped and written; glibc's free of a big block. */
			for (unsigned i = 0; i < NB; i += 4) {
				if (munmap(slots[i].p, LEN))
					_exit(2);
				if (mmap(slots[i].p, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
					 -1, 0) == MAP_FAILED)
					_exit(3);
				memset(slots[i].p, 0x99, LEN);
			}
			for (unsigned i = 1; i < NB; i += 4)
				if (slots[i].p[0] != 0x11)
					_exit(4);
			free(malloc(1 << 20));
			_exit(0);
		}
		for (unsigned w = 0; w < 20000 && waitpid(pid, &status, WNOHANG) == 0; w++)
			usleep(1000);
		if (waitpid(pid, &status, WNOHANG) == 0) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			CHECK_MSG(0, "fork %u: the child hangs (20 s)", f);
		}
		CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "fork %u: child status %#x", f, status);
	}
	atomic_store(&stop, true);
	for (unsigned i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		CHECK_MSG(!s[i].bad[0], "storm thread %u: %s", i, s[i].bad);
		CHECK(s[i].rounds > 0);
		a17q_close(&r, &s[i].a);
	}
	/* The children's unmaps reached none of the parent's registrations. */
	for (unsigned i = 0; i < NB; i++) {
		CHECK_EQ(mr_info(slots[i].mr).valid_pages, LEN / PG);
		CHECK_OK(iovm_mr_dereg(slots[i].mr));
		app_unmap(slots[i].p, LEN);
	}
	rig_close(&r);
}

/* A thread unmapping context X's registered memory while X closes. */
static void *unmapper(void *arg)
{
	(void)arg;
	for (unsigned i = 0; i < NB; i++) {
		CHECK_OK(munmap(slots[i].p, LEN));
		atomic_store(&slots[i].gone, true);
		if (i % 8 == 0)
			sched_yield();
	}
	return NULL;
}

TEST(close_under_munmap)
{
	struct rig y;
	struct storm s;
	pthread_t ty;
	atomic_bool stop = false;

	/* Context Y: its promise must hold while X comes and goes. */
	rig_open(&y, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	memset(&s, 0, sizeof(s));
	s.r = &y;
	s.stop = &stop;
	a17q_open(&y, &s.a, PG, IOVM_QUEUE_POLLED);
	CHECK_OK(-pthread_create(&ty, NULL, storm_main, &s));
	for (unsigned round = 0; round < a17_rounds(15); round++) {
		struct rig x;
		pthread_t tu;

		rig_open(&x, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
		slots_reg(&x);
		CHECK_OK(-pthread_create(&tu, NULL, unmapper, NULL));
		if (round & 1)
			usleep(50 * (round % 5));
		/* X closes with its MRs registered and its memory going. */
		CHECK_OK(iovm_close(x.ctx));
		pthread_join(tu, NULL);
		/* Memory mapped there since is the application's own: nothing of X reaches it. */
		for (unsigned i = 0; i < NB; i++) {
			uint8_t *q = mmap(slots[i].p, LEN, PROT_READ | PROT_WRITE,
					  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

			if (q == slots[i].p) {
				memset(q, 0x3c, LEN);
				CHECK(a17_all(q, 0x3c, LEN));
				munmap(q, LEN);
			} else if (q != MAP_FAILED) {
				munmap(q, LEN);
			}
		}
	}
	atomic_store(&stop, true);
	pthread_join(ty, NULL);
	CHECK_MSG(!s.bad[0], "context Y while X closed: %s", s.bad);
	CHECK(s.rounds > 0);
	printf("# close_under_munmap: Y ran %u rounds\n", s.rounds);
	a17q_close(&y, &s.a);
	rig_close(&y);
}

int main(void)
{
	test_init();
	alarm(100);
	RUN_SELECTED(munmap_in_signal_handler);
	RUN_SELECTED(signal_munmap_during_device);
	RUN_SELECTED(fork_during_munmap_storm);
	RUN_SELECTED(close_under_munmap);
	return 0;
}
