/* SPDX-License-Identifier: MIT */
/*
 * test_monitor_fork.c - fork() while devices translate and registrations
 * come and go, the memory monitor watching.
 *
 * glibc's fork() takes every malloc arena's lock, then the kernel makes it
 * wait until the monitor's reader has read the FORK event; the reader
 * first waits for the devices inside an access to leave it (its epoch).
 * So nothing a device waits for inside an access may be held by a thread
 * that waits for malloc: that thread waits for fork(), fork() for the
 * reader, the reader for the device. (issue 16: the rcache model hung
 * under load, until meson killed it at 300 s.) The same holds for a
 * free() that gives back heap memory a registration watches: it waits for
 * the reader too.
 *
 * Three threads: devices copying through a registration on their own
 * queues (each access checked by the oracle), one registering and
 * deregistering (each map and unmap recorded by the oracle), and the main
 * thread forking children that exit at once. Every fork must return.
 *
 * Logging counts too: a device that logs inside an access (the oracle
 * reporting a missing sync of a non-coherent buffer) called the handler
 * there, and a handler that allocates, as most do, waited for fork()'s
 * malloc locks; likewise for the log lock, held by a thread in the
 * handler. The second case has devices log on every copy while the main
 * thread forks.
 */
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include <iovm/mem.h>

#include "reg/test_peer_util.h"

#define FORKS 300
#define DEVICES 2
#define STUCK_SECONDS 60 /* no fork returned for this long: the process is stuck, not slow */

static struct rig r;
static uint8_t *app, *churn;
static _Atomic bool stop;
static _Atomic unsigned long forks_done, copies, regs;

struct device {
	pthread_t tid;
	struct iovm_queue *q;
	uint8_t *dst;
	uint64_t dst_iova, src_iova;
};

static void *device_main(void *arg)
{
	struct device *d = arg;

	while (!atomic_load(&stop)) {
		struct iovm_desc desc = { .op = IOVM_OP_COPY, .src = d->src_iova, .dst = d->dst_iova, .len = 4 * PG };
		struct iovm_cqe cqe;
		int n;

		CHECK_OK(iovm_queue_submit(d->q, &desc));
		while ((n = iovm_queue_reap(d->q, &cqe, 1)) == 0)
			iovm_queue_process(d->q, 1);
		CHECK_EQ(n, 1);
		CHECK_EQ(cqe.status, IOVM_STATUS_SUCCESS);
		atomic_fetch_add(&copies, 1);
	}
	return NULL;
}

/* Registrations made and taken down: the oracle's record changes with each. */
static void *churn_main(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		struct iovm_mr *mr;

		CHECK_OK(iovm_mr_reg(r.dom, churn, 16 * PG, IOVM_ACCESS_LOCAL_WRITE, &mr));
		CHECK_OK(iovm_mr_dereg(mr));
		atomic_fetch_add(&regs, 1);
	}
	return NULL;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* No fork returned for STUCK_SECONDS: say where we are, and fail. */
static void *watchdog_main(void *arg)
{
	unsigned long last = 0;
	double since = now_s();

	(void)arg;
	while (!atomic_load(&stop)) {
		unsigned long now = atomic_load(&forks_done);

		if (now != last) {
			last = now;
			since = now_s();
		}
		if (now_s() - since > STUCK_SECONDS) {
			fprintf(stderr, "FAIL: fork() %lu has not returned for %u s (%lu copies, %lu registrations "
				"so far): a deadlock\n", now + 1, STUCK_SECONDS, atomic_load(&copies), atomic_load(&regs));
			_exit(1);
		}
		sleep(1);
	}
	return NULL;
}

TEST(fork_while_devices_translate_and_registrations_change)
{
	struct iovm_queue_attr qa = { .depth = 8, .flags = IOVM_QUEUE_POLLED };
	struct device dev[DEVICES];
	pthread_t churner, watchdog;
	struct iovm_mr *mr;
	iovm_iova_t io;

	/* Its only case: a skipped case would leave the program with no check, which fails it. */
	if (TEST_TSAN)
		SKIP("ThreadSanitizer's fork() deadlocks with the monitor's fork event");
	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	app = app_map(4 * PG);
	churn = app_map(16 * PG);
	memset(app, 7, 4 * PG);
	memset(churn, 8, 16 * PG);
	CHECK_OK(iovm_mr_reg(r.dom, app, 4 * PG, IOVM_ACCESS_LOCAL_WRITE, &mr));
	for (unsigned i = 0; i < DEVICES; i++) {
		CHECK_OK(iovm_queue_create(r.dev, &qa, &dev[i].q));
		dev[i].dst = iovm_dma_alloc(r.ctx, 4 * PG, PG, 0);
		CHECK(dev[i].dst != NULL);
		CHECK_OK(iovm_dma_iova(r.dom, dev[i].dst, &io));
		dev[i].dst_iova = io.addr;
		CHECK_OK(iovm_mr_iova(mr, app, 4 * PG, &io));
		dev[i].src_iova = io.addr;
	}
	CHECK_OK(pthread_create(&watchdog, NULL, watchdog_main, NULL));
	for (unsigned i = 0; i < DEVICES; i++)
		CHECK_OK(pthread_create(&dev[i].tid, NULL, device_main, &dev[i]));
	CHECK_OK(pthread_create(&churner, NULL, churn_main, NULL));
	/* FORKS, and on until devices and the churner both ran meanwhile (a loaded machine may starve them). */
	for (unsigned i = 0; i < FORKS || !atomic_load(&copies) || !atomic_load(&regs); i++) {
		int status;
		pid_t pid = fork();

		CHECK(i < 100 * FORKS);
		CHECK(pid >= 0);
		if (pid == 0)
			_exit(0);
		CHECK(waitpid(pid, &status, 0) == pid);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		atomic_fetch_add(&forks_done, 1);
	}
	atomic_store(&stop, true);
	for (unsigned i = 0; i < DEVICES; i++)
		CHECK_OK(pthread_join(dev[i].tid, NULL));
	CHECK_OK(pthread_join(churner, NULL));
	CHECK_OK(pthread_join(watchdog, NULL));
	printf("# %lu forks, %lu copies, %lu registrations meanwhile\n", atomic_load(&forks_done), atomic_load(&copies),
	       atomic_load(&regs));
	CHECK(atomic_load(&copies) > 0 && atomic_load(&regs) > 0);
	for (unsigned i = 0; i < DEVICES; i++) {
		CHECK(!memcmp(dev[i].dst, app, 4 * PG));
		CHECK_OK(iovm_queue_destroy(dev[i].q));
		iovm_dma_free(r.ctx, dev[i].dst);
	}
	CHECK_OK(iovm_mr_dereg(mr));
	rig_close(&r);
	app_unmap(app, 4 * PG);
	app_unmap(churn, 16 * PG);
}

/*
 * A log handler as most are: it formats into a heap buffer, too large for
 * malloc's per-thread cache, so that it takes an arena lock (fork() holds
 * them all).
 */
static _Atomic unsigned long logged;
static void allocating_log(void *arg, enum iovm_log_level level, const char *msg)
{
	char *line = malloc(4096);

	(void)arg;
	if (line) {
		snprintf(line, 4096, "[%d] %s", (int)level, msg);
		atomic_fetch_add(&logged, line[0] == '[');
		free(line);
	}
}

/* Copies from a non-coherent buffer the CPU never syncs: the oracle logs each, inside the access. */
static void *logging_device_main(void *arg)
{
	struct device *d = arg;

	while (!atomic_load(&stop)) {
		struct iovm_desc desc = { .op = IOVM_OP_COPY, .src = d->src_iova, .dst = d->dst_iova, .len = 64 };
		struct iovm_cqe cqe;
		int n;

		CHECK_OK(iovm_queue_submit(d->q, &desc));
		while ((n = iovm_queue_reap(d->q, &cqe, 1)) == 0)
			iovm_queue_process(d->q, 1);
		CHECK_EQ(n, 1);
		CHECK_EQ(cqe.status, IOVM_STATUS_SUCCESS);
		atomic_fetch_add(&copies, 1);
	}
	return NULL;
}

TEST(fork_while_devices_log_inside_an_access)
{
	struct iovm_queue_attr qa = { .depth = 8, .flags = IOVM_QUEUE_POLLED };
	struct device dev[DEVICES];
	struct iovm_mem_stats ms;
	struct iovm_reg_stats rst;
	iovm_iova_t src = IOVM_IOVA_ANY, io;
	struct iovm_cbuf *cb;
	pthread_t watchdog;
	struct iovm_mr *mr;
	iovm_pa_t page;
	unsigned n;

	SKIP_FORK_UNDER_TSAN();
	atomic_store(&stop, false);
	atomic_store(&forks_done, 0);
	atomic_store(&copies, 0);
	atomic_store(&regs, 0);
	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	/* A registration: the monitor runs, and fork() waits for its reader. */
	app = app_map(4 * PG);
	memset(app, 7, 4 * PG);
	CHECK_OK(iovm_mr_reg(r.dom, app, 4 * PG, IOVM_ACCESS_LOCAL_WRITE, &mr));
	CHECK_OK(iovm_cbuf_alloc(r.ctx, PG, IOVM_CBUF_NONCOHERENT, &cb));
	CHECK_OK(iovm_cbuf_pages(cb, &page, 1, &n));
	CHECK_OK(iovm_domain_map_pages(r.dom, &src, &page, 1, IOVM_MAP_READ | IOVM_MAP_WRITE));
	/* The CPU takes the buffer's lines and never hands them back: every device read is an error. */
	CHECK_OK(iovm_dma_sync_for_cpu(r.ctx, iovm_cbuf_ptr(cb), PG));
	iovm_log_set_handler(allocating_log, NULL);
	for (unsigned i = 0; i < DEVICES; i++) {
		CHECK_OK(iovm_queue_create(r.dev, &qa, &dev[i].q));
		dev[i].dst = iovm_dma_alloc(r.ctx, PG, PG, 0);
		CHECK(dev[i].dst != NULL);
		CHECK_OK(iovm_dma_iova(r.dom, dev[i].dst, &io));
		dev[i].dst_iova = io.addr;
		dev[i].src_iova = src.addr;
	}
	CHECK_OK(pthread_create(&watchdog, NULL, watchdog_main, NULL));
	for (unsigned i = 0; i < DEVICES; i++)
		CHECK_OK(pthread_create(&dev[i].tid, NULL, logging_device_main, &dev[i]));
	for (unsigned i = 0; i < FORKS; i++) {
		int status;
		pid_t pid = fork();

		CHECK(pid >= 0);
		if (pid == 0)
			_exit(0);
		CHECK(waitpid(pid, &status, 0) == pid);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		atomic_fetch_add(&forks_done, 1);
	}
	atomic_store(&stop, true);
	for (unsigned i = 0; i < DEVICES; i++)
		CHECK_OK(pthread_join(dev[i].tid, NULL));
	CHECK_OK(pthread_join(watchdog, NULL));
	iovm_log_set_handler(NULL, NULL);
	CHECK_OK(iovm_mem_stats(r.ctx, &ms));
	CHECK_OK(iovm_reg_stats(r.ctx, &rst));
	printf("# %d forks (%lu fork events), %lu copies, %lu sync errors, %lu messages through the handler\n",
	       FORKS, (unsigned long)rst.events_fork, atomic_load(&copies), (unsigned long)ms.oracle_sync_errors,
	       atomic_load(&logged));
	CHECK(atomic_load(&copies) > 0);
	CHECK(ms.oracle_sync_errors >= atomic_load(&copies));
	CHECK(atomic_load(&logged) > 0);
	for (unsigned i = 0; i < DEVICES; i++) {
		CHECK_OK(iovm_queue_destroy(dev[i].q));
		iovm_dma_free(r.ctx, dev[i].dst);
	}
	CHECK_OK(iovm_domain_unmap(r.dom, src, PG));
	CHECK_OK(iovm_cbuf_free(cb));
	CHECK_OK(iovm_mr_dereg(mr));
	rig_close(&r);
	app_unmap(app, 4 * PG);
	if (!rst.events_fork)
		SKIP_CASE("no fork events (the kernel refused them): fork() did not wait for the monitor");
}

int main(void)
{
	test_init();
	/* Every case forks: skipped whole, not as a program that checked nothing. */
	if (TEST_TSAN)
		SKIP("ThreadSanitizer's fork() deadlocks with the monitor's fork event");
	RUN(fork_while_devices_translate_and_registrations_change);
	RUN(fork_while_devices_log_inside_an_access);
	return 0;
}
