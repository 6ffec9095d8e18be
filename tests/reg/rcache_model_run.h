/* SPDX-License-Identifier: MIT */
/*
 * rcache_model_run.h - the registration-cache model's fork (the child
 * changes its copy of the memory every way it can; the parent's memory
 * and registrations must not notice), its setup and teardown, and one
 * step: an operation chosen by the source (rcache_model_ops.h), then
 * every check (rcache_model_check.h).
 */
#ifndef IOVM_TESTS_RCACHE_MODEL_RUN_H
#define IOVM_TESTS_RCACHE_MODEL_RUN_H

#include <signal.h>
#include <sys/wait.h>

#include "reg/rcache_model_ops.h"

#define MODEL_MAX_FORKS 6

/* ---- fork ---- */

static void child_segv(int sig, siginfo_t *si, void *uc)
{
	char msg[96];
	int n = snprintf(msg, sizeof(msg), "fork child: signal %d at %p\n", sig, si->si_addr);

	(void)uc;
	if (write(2, msg, (size_t)n) < 0)
		_exit(6);
	_exit(5);
}

/* In the child: its copy is the parent's memory; then it changes it every way it can. */
static void __attribute__((noreturn)) model_child(struct model *m)
{
	struct model_arena *a = &m->own;
	struct sigaction sa = { .sa_sigaction = child_segv, .sa_flags = SA_SIGINFO };

	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);

	for (size_t i = 0; i < a->pages; i++)
		if (a->state[i] == PG_MAPPED && memcmp(a->base + i * PG, a->shadow + i * PG, PG))
			_exit(2);
	for (size_t i = 0; i < a->pages; i++) {
		uint8_t *p = a->base + i * PG;

		if (a->state[i] != PG_MAPPED)
			continue;
		switch (model_u(&m->src, 5)) {
		case 0:
			if (munmap(p, PG))
				_exit(3);
			break;
		case 1:
			if (mmap(p, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != p)
				_exit(4);
			p[0] = 1;
			break;
		case 2:
			madvise(p, PG, MADV_DONTNEED_LOCKED);
			break;
		case 3:
			madvise(p, PG, MADV_DONTNEED);
			break;
		default:
			memset(p, 0xc5, PG);
			break;
		}
	}
	for (unsigned i = 0; i < MODEL_MAX_BLOCKS; i++)
		if (m->blocks[i].live)
			memset(m->blocks[i].p, 0x3c, m->blocks[i].size);
	_exit(0);
}

static void op_fork(struct model *m)
{
	int status = 0;
	pid_t pid;

	/* Not under ThreadSanitizer: its fork() deadlocks with the monitor's fork event (test_peer_util.h). */
	if (!m->use_fork || m->forks >= m->max_forks || MODEL_TSAN)
		return;
	m->forks++;
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		model_child(m);
	model_note(m, "fork: child %d", (int)pid);
	for (unsigned ms = 0;; ms++) {
		pid_t w = waitpid(pid, &status, WNOHANG);

		if (w == pid)
			break;
		CHECK(w == 0);
		if (ms == 20000) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			M_CHECK(m, false, "the child of fork() hung for 20 s changing its copy of registered memory");
		}
		usleep(1000);
	}
	M_CHECK(m, WIFEXITED(status) && WEXITSTATUS(status) == 0,
		"the child of fork() %s %d (2: its copy differs from the parent's memory; 3, 4: munmap, mmap failed; 5: a fault, see above)",
		WIFEXITED(status) ? "exited with" : "died of signal",
		WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	/* What the child did reached neither the parent's memory nor its registrations. */
	for (size_t i = 0; i < m->own.pages; i++)
		if (m->own.state[i] == PG_MAPPED)
			model_compare(m, (uintptr_t)m->own.base + i * PG, PG, NULL, false, "after the child's changes, memory");
}

/* ---- the model's life ---- */

static void model_init(struct model *m, struct rig *r, struct iovm_rcache *cache, unsigned id, size_t pages,
		       const struct model_arena *shared)
{
	struct iovm_reg_stats st;
	struct rlimit rl;
	const char *settle = getenv("RCACHE_MODEL_SETTLE_US");

	m->r = r;
	m->cache = cache;
	m->id = id;
	m->shared = shared;
	CHECK_OK(iovm_reg_stats(r->ctx, &st));
	m->monitor = st.monitor;
	m->memlock_limited = !getrlimit(RLIMIT_MEMLOCK, &rl) && rl.rlim_cur != RLIM_INFINITY && geteuid() != 0;
	m->use_malloc = !TEST_ASAN && !MODEL_TSAN;
	m->dontneed_locked = true;
	m->settle_us = settle ? (unsigned)atoi(settle) : 0;
	m->verbose = getenv("RCACHE_MODEL_TRACE") != NULL;
	if (!m->max_forks)
		m->max_forks = MODEL_MAX_FORKS;
	arena_init(m, &m->own, pages);
	lane_open(m);
}

/* Give back everything held, forget the records, free the memory. */
static void model_fini(struct model *m)
{
	while (m->nholds)
		model_put(m, m->nholds - 1);
	for (unsigned i = 0; i < m->nrecs; i++)
		rec_free(m->recs[i]);
	m->nrecs = 0;
	for (unsigned i = 0; i < MODEL_MAX_BLOCKS; i++) {
		if (m->blocks[i].live)
			free(m->blocks[i].p);
		free(m->blocks[i].shadow);
		memset(&m->blocks[i], 0, sizeof(m->blocks[i]));
	}
	arena_fini(&m->own);
	lane_close(m);
}

/* One operation chosen by the source, then every check. */
static void model_step(struct model *m)
{
	unsigned op = (unsigned)model_u(&m->src, 100);

	m->step++;
	m->got = false;
	if (op < 34)
		op_get(m);
	else if (op < 52)
		op_put(m);
	else if (op < 60)
		op_munmap(m);
	else if (op < 70)
		op_mmap(m);
	else if (op < 76)
		op_mremap(m);
	else if (op < 79)
		op_shrink(m);
	else if (op < 85)
		op_dontneed_locked(m);
	else if (op < 90)
		op_dontneed(m);
	else if (op < 98)
		op_block(m);
	else if (op == 99)
		op_fork(m);
	if (op >= 52)
		model_settle(m); /* after what changes the memory */
	if (m->got)
		model_check_limits(m);
	model_check(m);
}

#endif /* IOVM_TESTS_RCACHE_MODEL_RUN_H */
