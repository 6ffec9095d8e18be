/* SPDX-License-Identifier: MIT */
/*
 * test_mr_async.c - pinned registration in the background
 * (iovm_mr_reg_async()): what is usable when, through the engine; odd
 * sizes and alignments; waits from several threads; a deregistration that
 * cancels it mid-way; memory unmapped under it mid-way; RLIMIT_MEMLOCK
 * reached; chunks locked on fault and touched in, beside a writer. A hook holds the pinning thread before a chunk, so that each
 * case is where it says, whatever the machine's speed.
 */
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/capability.h>
#include <unistd.h>

#include "dev/dev_util.h"
#include "reg/reg_internal.h"
#include "reg/reg_util.h"

#define CH (64u << 10) /* chunks of IOVM_REG_CHUNK_SHIFT(16) */
#define ONE_THREAD (IOVM_REG_THREADS(1) | IOVM_REG_CHUNK_SHIFT(16))

/* 64 KiB aligned: chunk k of an MR at the start is [k*CH, (k+1)*CH). */
static uint8_t *app_map_aligned(size_t len)
{
	uint8_t *p = app_map(len + CH), *a = (uint8_t *)(((uintptr_t)p + CH - 1) & ~(uintptr_t)(CH - 1));

	if (a > p)
		munmap(p, (size_t)(a - p));
	munmap(a + len, (size_t)(p + CH - a));
	return a;
}

static uint64_t vm_locked(void)
{
	char line[128];
	unsigned long kb = 0;
	FILE *f = fopen("/proc/self/status", "re");

	CHECK(f != NULL);
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmLck: %lu kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return (uint64_t)kb << 10;
}

/* The hook: hold the pinning thread before chunk hold_at until released (or cancelled); count calls. */
#define HOLD_ALL (UINT64_MAX - 1) /* hold every chunk (until released) */
static sem_t reached;
static _Atomic bool release_hold;
static _Atomic uint64_t hold_at = UINT64_MAX, hook_calls;
static uint8_t *hole_at;     /* unmap a chunk there when the hook reaches hold_at */

static void hold_hook(struct iovm_mr *mr, uint64_t chunk)
{
	atomic_fetch_add(&hook_calls, 1);
	if (chunk != atomic_load(&hold_at) && atomic_load(&hold_at) != HOLD_ALL)
		return;
	if (hole_at)
		CHECK_OK(munmap(hole_at, CH));
	sem_post(&reached);
	while (!atomic_load(&release_hold) && !mr_async_cancelled(mr))
		sched_yield();
}

static void hook_set(uint64_t at)
{
	sem_init(&reached, 0, 0);
	atomic_store(&release_hold, false);
	atomic_store(&hold_at, at);
	atomic_store(&hook_calls, 0);
	hole_at = NULL;
	atomic_store(&mr_async_test_chunk, hold_hook);
}

static void hook_clear(void)
{
	atomic_store(&mr_async_test_chunk, NULL);
	sem_destroy(&reached);
}

/* Odd sizes and alignments: every page of the range, and only those, pinned, usable and reached by DMA. */
TEST(odd_sizes_and_alignments)
{
	static const struct { size_t off, len; unsigned threads; } cases[] = {
		{ 100, 3 * CH + 12345, 2 }, { PG - 1, 2, 1 }, { CH - 1, CH + 2, 3 }, { 0, 16 * CH, 0 }, { 4095, 1, 4 },
	};
	struct rig r;
	uint8_t *app = app_map_aligned(20 * CH), *heap;

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	heap = iovm_dma_alloc(r.ctx, 20 * CH, PG, 0);
	CHECK(heap != NULL);
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uintptr_t a = (uintptr_t)app + cases[i].off, start = a & ~(uintptr_t)(PG - 1);
		uintptr_t end = (a + cases[i].len + PG - 1) & ~(uintptr_t)(PG - 1);
		uint64_t chunks = ((end + CH - 1) / CH) - (start / CH);
		struct iovm_mr_pinning pin;
		struct iovm_mr *mr;

		fill_random(app, 20 * CH, i + 1);
		CHECK_OK(iovm_mr_reg_async(r.dom, (void *)a, cases[i].len, IOVM_ACCESS_LOCAL_WRITE,
					   IOVM_REG_THREADS(cases[i].threads) | IOVM_REG_CHUNK_SHIFT(16), &mr));
		CHECK_OK(iovm_mr_wait(mr, (void *)a, cases[i].len, -1));
		CHECK_OK(iovm_mr_ready(mr, &pin));
		CHECK_EQ(pin.bytes, end - start);
		CHECK_EQ(pin.pinned, end - start);
		CHECK_EQ(pin.prefix, end - start);
		CHECK_EQ(pin.chunks, chunks);
		CHECK_EQ(pin.chunks_done, chunks);
		CHECK(pin.done && !pin.error);
		CHECK(pin.threads >= 1 && pin.threads <= chunks);
		CHECK_EQ(mr_info(mr).valid_pages, (end - start) / PG);
		CHECK_EQ(rstats(&r).locked_bytes, end - start);
		CHECK(page_locked((void *)start) && page_locked((void *)(end - 1)));
		CHECK_EQ(dma_copy(&r, mr_iova(mr, (void *)a), iova_of(&r, heap), (uint32_t)cases[i].len),
			 IOVM_STATUS_SUCCESS);
		CHECK(!memcmp(heap, (void *)a, cases[i].len));
		CHECK_OK(iovm_mr_dereg(mr));
		CHECK_EQ(rstats(&r).locked_bytes, 0);
		CHECK(!page_locked((void *)start));
	}
	rig_close(&r);
	app_unmap(app, 20 * CH);
}

/* Usable part by part: a chunk pinned is reached; one not yet is a DMA fault, nothing touched. */
TEST(usable_part_by_part)
{
	struct rig r;
	struct iovm_mr_pinning pin;
	struct iovm_mr *mr, *sync;
	uint8_t *app = app_map_aligned(8 * CH), *heap;

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	heap = iovm_dma_zalloc(r.ctx, CH, PG, 0);
	memset(app, 0x11, 8 * CH);
	hook_set(2);
	CHECK_OK(iovm_mr_reg_async(r.dom, app, 8 * CH, IOVM_ACCESS_LOCAL_WRITE, ONE_THREAD, &mr));
	sem_wait(&reached);
	/* Chunks 0 and 1 are pinned, 2 and after are not. */
	CHECK_OK(iovm_mr_wait(mr, app, 2 * CH, 0));
	CHECK_OK(iovm_mr_wait(mr, app + CH + 5, 7, 0));
	CHECK_EQ(iovm_mr_wait(mr, app + CH, CH + 1, 0), -ETIMEDOUT);
	CHECK_EQ(iovm_mr_wait(mr, app + 5 * CH, PG, 10), -ETIMEDOUT);
	CHECK_EQ(iovm_mr_ready(mr, &pin), -EINPROGRESS);
	CHECK_EQ(pin.chunks_done, 2);
	CHECK_EQ(pin.prefix, 2 * CH);
	CHECK_EQ(pin.pinned, 2 * CH);
	CHECK(!pin.done);
	CHECK(mr_info(mr).valid);
	CHECK_EQ(mr_info(mr).valid_pages, 2 * CH / PG);
	CHECK_EQ(dma_copy(&r, mr_iova(mr, app + CH), iova_of(&r, heap), PG), IOVM_STATUS_SUCCESS);
	CHECK_EQ(heap[0], 0x11);
	memset(heap, 0x22, CH);
	CHECK_EQ(dma_copy(&r, iova_of(&r, heap), mr_iova(mr, app + 5 * CH), PG), IOVM_STATUS_PAGE_FAULT);
	CHECK_EQ(app[5 * CH], 0x11);
	/* Straddling the edge of what is pinned: a fault too. */
	CHECK_EQ(dma_copy(&r, iova_of(&r, heap), mr_iova(mr, app + 2 * CH - PG), 2 * PG), IOVM_STATUS_PAGE_FAULT);
	atomic_store(&release_hold, true);
	CHECK_OK(iovm_mr_wait(mr, app, 8 * CH, -1));
	CHECK_OK(iovm_mr_ready(mr, NULL));
	CHECK_EQ(dma_copy(&r, iova_of(&r, heap), mr_iova(mr, app + 5 * CH), PG), IOVM_STATUS_SUCCESS);
	CHECK_EQ(app[5 * CH], 0x22);
	hook_clear();
	/* An MR of iovm_mr_reg() is usable at once. */
	CHECK_OK(iovm_mr_reg(r.dom, app, 8 * CH, IOVM_ACCESS_LOCAL_WRITE, &sync));
	CHECK_OK(iovm_mr_wait(sync, app, 8 * CH, 0));
	CHECK_OK(iovm_mr_ready(sync, &pin));
	CHECK(pin.done && pin.pinned == 8 * CH && pin.prefix == 8 * CH);
	CHECK_OK(iovm_mr_dereg(sync));
	CHECK_OK(iovm_mr_dereg(mr));
	rig_close(&r);
	app_unmap(app, 8 * CH);
}

/* Deregistered mid-way: the pinning stops, and every page it locked is unlocked. */
TEST(cancel_mid_way)
{
	struct rig r;
	struct iovm_mr *mr, *other;
	uint8_t *app = app_map_aligned(16 * CH);
	uint64_t base;

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	base = vm_locked();
	/* Another MR holds chunk 1's pages: they stay locked for it. */
	CHECK_OK(iovm_mr_reg(r.dom, app + CH, CH, IOVM_ACCESS_LOCAL_WRITE, &other));
	hook_set(3);
	CHECK_OK(iovm_mr_reg_async(r.dom, app, 16 * CH, IOVM_ACCESS_LOCAL_WRITE, ONE_THREAD, &mr));
	sem_wait(&reached);
	CHECK_EQ(rstats(&r).locked_bytes, 3 * CH);
	CHECK_OK(iovm_mr_dereg(mr));
	/* Stopped at chunk 3: chunks 4 to 15 never started. */
	CHECK_EQ(atomic_load(&hook_calls), 4);
	CHECK_EQ(rstats(&r).mrs, 1);
	CHECK_EQ(rstats(&r).locked_bytes, CH);
	CHECK_EQ(vm_locked() - base, CH);
	CHECK(!page_locked(app) && page_locked(app + CH) && !page_locked(app + 2 * CH));
	CHECK_OK(iovm_mr_dereg(other));
	CHECK_EQ(vm_locked(), base);
	hook_clear();
	/* The context closed while a registration pins: its threads stop, nothing leaks. */
	hook_set(1);
	CHECK_OK(iovm_mr_reg_async(r.dom, app, 16 * CH, IOVM_ACCESS_LOCAL_WRITE, ONE_THREAD, &mr));
	sem_wait(&reached);
	CHECK_OK(iovm_queue_destroy(r.q));
	CHECK_OK(iovm_device_close(r.dev));
	CHECK_EQ(iovm_domain_destroy(r.dom), -EBUSY); /* the MR holds it */
	iovm_close(r.ctx);
	CHECK_EQ(atomic_load(&hook_calls), 2);
	CHECK_EQ(vm_locked(), base);
	hook_clear();
	app_unmap(app, 16 * CH);
}

/* Memory unmapped under the registration mid-way: -EFAULT from the waits; what was pinned stays usable. */
TEST(unmapped_hole_mid_range)
{
	struct rig r;
	struct iovm_mr_pinning pin;
	struct iovm_mr *mr;
	uint8_t *app = app_map_aligned(8 * CH), *heap;

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	heap = iovm_dma_zalloc(r.ctx, PG, PG, 0);
	memset(app, 0x33, 8 * CH);
	/* A hole already there is refused at once. */
	CHECK_OK(munmap(app + 6 * CH, CH));
	CHECK_EQ(iovm_mr_reg_async(r.dom, app, 8 * CH, IOVM_ACCESS_LOCAL_WRITE, ONE_THREAD, &mr), -EFAULT);
	CHECK(mmap(app + 6 * CH, CH, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
	      app + 6 * CH);
	/* One made while it pins, in chunk 4, before its thread gets there. */
	hook_set(3);
	hole_at = app + 4 * CH;
	atomic_store(&release_hold, true);
	CHECK_OK(iovm_mr_reg_async(r.dom, app, 8 * CH, IOVM_ACCESS_LOCAL_WRITE, ONE_THREAD, &mr));
	CHECK_EQ(iovm_mr_wait(mr, app, 8 * CH, -1), -EFAULT);
	CHECK_EQ(iovm_mr_wait(mr, app + 4 * CH, PG, 0), -EFAULT);
	CHECK_EQ(iovm_mr_wait(mr, app + 7 * CH, PG, -1), -EFAULT);
	CHECK_OK(iovm_mr_wait(mr, app, 4 * CH, -1));
	CHECK_EQ(iovm_mr_ready(mr, &pin), -EFAULT);
	CHECK_EQ(pin.error, -EFAULT);
	CHECK(pin.done);
	CHECK_EQ(pin.chunks_done, 4);
	CHECK_EQ(pin.prefix, 4 * CH);
	CHECK_EQ(rstats(&r).locked_bytes, 4 * CH);
	CHECK_EQ(dma_copy(&r, mr_iova(mr, app + 3 * CH), iova_of(&r, heap), PG), IOVM_STATUS_SUCCESS);
	CHECK_EQ(heap[0], 0x33);
	CHECK_EQ(dma_copy(&r, mr_iova(mr, app + 5 * CH), iova_of(&r, heap), PG), IOVM_STATUS_PAGE_FAULT);
	CHECK_OK(iovm_mr_dereg(mr));
	CHECK_EQ(rstats(&r).locked_bytes, 0);
	CHECK(!page_locked(app));
	hook_clear();
	rig_close(&r);
	app_unmap(app, 8 * CH);
}

/* Waits from several threads at once, on different parts, all woken as their parts are pinned. */
static struct iovm_mr *wait_mr;
static uint8_t *wait_app;
static _Atomic unsigned polled;

static void *waiter(void *arg)
{
	uintptr_t k = (uintptr_t)arg;

	/* Held before chunk 0: nothing is usable yet. */
	CHECK_EQ(iovm_mr_wait(wait_mr, wait_app + k * 3 * CH, CH, 0), -ETIMEDOUT);
	atomic_fetch_add(&polled, 1);
	CHECK_OK(iovm_mr_wait(wait_mr, wait_app + k * 3 * CH, CH, -1));
	return NULL;
}

TEST(parallel_waits)
{
	struct rig r;
	pthread_t t[4];
	uint8_t *app = app_map_aligned(12 * CH);

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	hook_set(HOLD_ALL);
	wait_app = app;
	atomic_store(&polled, 0);
	CHECK_OK(iovm_mr_reg_async(r.dom, app, 12 * CH, IOVM_ACCESS_LOCAL_WRITE,
				   IOVM_REG_THREADS(2) | IOVM_REG_CHUNK_SHIFT(16), &wait_mr));
	/* Both threads held, before chunks 0 and 1. */
	sem_wait(&reached);
	sem_wait(&reached);
	for (uintptr_t i = 0; i < 4; i++)
		CHECK(!pthread_create(&t[i], NULL, waiter, (void *)i));
	while (atomic_load(&polled) < 4)
		sched_yield();
	atomic_store(&release_hold, true);
	for (unsigned i = 0; i < 4; i++)
		CHECK(!pthread_join(t[i], NULL));
	CHECK_OK(iovm_mr_wait(wait_mr, app, 12 * CH, -1));
	CHECK_OK(iovm_mr_dereg(wait_mr));
	hook_clear();
	rig_close(&r);
	app_unmap(app, 12 * CH);
}

/* Drop CAP_IPC_LOCK, which lets root lock past RLIMIT_MEMLOCK: whether it could. */
static bool drop_ipc_lock(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d))
		return false;
	d[CAP_IPC_LOCK / 32].effective &= ~(1u << (CAP_IPC_LOCK % 32));
	return !syscall(SYS_capset, &h, d);
}

/* RLIMIT_MEMLOCK reached mid-way: -ENOMEM from the waits, and what was locked is counted and unlocked. */
TEST(lock_budget_exceeded)
{
	int status;
	pid_t pid = fork();

	CHECK(pid >= 0);
	if (!pid) {
		struct iovm_mr_pinning pin;
		struct iovm_mr *mr;
		struct rlimit rl;
		struct rig r;
		uint8_t *app = app_map_aligned(16 * CH);
		uint64_t base;

		if (geteuid() == 0 && !drop_ipc_lock())
			_exit(TEST_SKIP);
		rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
		/* Room for 4 chunks past what the context locked itself. */
		base = vm_locked();
		rl.rlim_cur = rl.rlim_max = base + 4 * CH;
		if (setrlimit(RLIMIT_MEMLOCK, &rl))
			_exit(TEST_SKIP);
		CHECK_OK(iovm_mr_reg_async(r.dom, app, 16 * CH, IOVM_ACCESS_LOCAL_WRITE, ONE_THREAD, &mr));
		CHECK_EQ(iovm_mr_wait(mr, app, 16 * CH, -1), -ENOMEM);
		CHECK_EQ(iovm_mr_ready(mr, &pin), -ENOMEM);
		CHECK(pin.done && pin.chunks_done == 4 && pin.error == -ENOMEM);
		CHECK_OK(iovm_mr_wait(mr, app, 4 * CH, 0));
		CHECK_EQ(rstats(&r).locked_bytes, 4 * CH);
		CHECK_EQ(vm_locked() - base, 4 * CH);
		CHECK_OK(iovm_mr_dereg(mr));
		CHECK_EQ(vm_locked(), base);
		rig_close(&r);
		_exit(0);
	}
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status));
	if (WEXITSTATUS(status) == TEST_SKIP)
		SKIP_CASE("CAP_IPC_LOCK cannot be dropped, or memory is locked already");
	CHECK_EQ(WEXITSTATUS(status), 0);
}

/* Whether the VMA holding @p has @flag (" lo", " lf") in /proc/self/smaps' VmFlags. */
static bool vma_flag(const void *p, const char *flag)
{
	char line[256];
	bool in = false, has = false;
	FILE *f = fopen("/proc/self/smaps", "re");

	CHECK(f != NULL);
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long s, e;

		if (sscanf(line, "%lx-%lx ", &s, &e) == 2) {
			in = (uintptr_t)p >= s && (uintptr_t)p < e;
			continue;
		}
		if (in && !strncmp(line, "VmFlags:", 8)) {
			has = strstr(line, flag) != NULL;
			break;
		}
	}
	if (f)
		fclose(f);
	return has;
}

struct bumper {
	_Atomic uint64_t *word;
	_Atomic bool stop;
	uint64_t n;
};

/* Add one to a word of registered memory until told to stop: none of them may be lost. */
static void *bump(void *arg)
{
	struct bumper *b = arg;

	while (!atomic_load(&b->stop)) {
		atomic_fetch_add_explicit(b->word, 1, memory_order_relaxed);
		b->n++;
	}
	return NULL;
}

/*
 * Pinned by two threads for writing, half of it prefaulted (each chunk
 * locked on fault, then faulted in by touching it) and half never touched
 * (mlock(2)):
 * every page ends up there and locked, the prefaulted pages as they were,
 * with a word written all along by another thread losing none of its
 * writes (the touch adds zero atomically), the fresh ones zero; DMA
 * reaches both halves; the deregistration unlocks all of it. A
 * registration for reading only, and one of shared memory, keep mlock(2).
 */
TEST(locked_on_fault_then_touched)
{
	enum { N = 16 };
	struct rig r;
	struct bumper b = { 0 };
	struct iovm_mr *mr;
	pthread_t tid;
	uint8_t *app = app_map_aligned(N * CH), *heap, *shared;
	unsigned char vec[N * CH / PG];
	uint64_t before = vm_locked();

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	heap = iovm_dma_zalloc(r.ctx, PG, PG, 0);
	memset(heap, 0x5c, PG);
	for (unsigned i = 0; i < N / 2 * CH / PG; i++)
		memset(app + i * PG, (int)(i % 251) + 1, PG);
	/* The word the touch of page 3 adds zero to. */
	b.word = (_Atomic uint64_t *)(app + 3 * PG);
	atomic_store(b.word, 0);
	CHECK_OK(pthread_create(&tid, NULL, bump, &b));
	CHECK_OK(iovm_mr_reg_async(r.dom, app, N * CH, IOVM_ACCESS_LOCAL_WRITE,
				   IOVM_REG_THREADS(2) | IOVM_REG_CHUNK_SHIFT(16), &mr));
	CHECK_OK(iovm_mr_wait(mr, app, N * CH, -1));
	atomic_store(&b.stop, true);
	CHECK_OK(pthread_join(tid, NULL));
	CHECK_EQ(atomic_load(b.word), b.n);
	CHECK_OK(mincore(app, N * CH, vec));
	for (unsigned i = 0; i < N * CH / PG; i++) {
		CHECK_MSG(vec[i] & 1, "page %u is not there", i);
		if (i == 3)
			continue;
		CHECK_MSG(app[i * PG + PG - 1] == (i < N / 2 * CH / PG ? (i % 251) + 1 : 0), "page %u changed", i);
	}
	for (unsigned k = 0; k < N; k++)
		CHECK_MSG(vma_flag(app + k * CH, " lo"), "chunk %u is not locked", k);
	/* Not vacuous: the prefaulted chunks were locked on fault (mlock2(2), Linux 4.4), the fresh by mlock(2). */
	CHECK(vma_flag(app, " lf") && vma_flag(app + (N / 2 - 1) * CH, " lf"));
	CHECK(!vma_flag(app + N / 2 * CH, " lf") && !vma_flag(app + (N - 1) * CH, " lf"));
	CHECK_EQ(vm_locked() - before, N * CH);
	CHECK_EQ(dma_copy(&r, iova_of(&r, heap), mr_iova(mr, app + (N - 1) * CH), PG), IOVM_STATUS_SUCCESS);
	CHECK_EQ(app[(N - 1) * CH + 9], 0x5c);
	CHECK_EQ(dma_copy(&r, iova_of(&r, heap), mr_iova(mr, app + PG), PG), IOVM_STATUS_SUCCESS);
	CHECK_EQ(app[PG + 9], 0x5c);
	CHECK_OK(iovm_mr_dereg(mr));
	for (unsigned k = 0; k < N; k++)
		CHECK(!vma_flag(app + k * CH, " lo") && !vma_flag(app + k * CH, " lf"));
	CHECK_EQ(vm_locked(), before);
	/* For reading only: mlock(2), not on fault. */
	CHECK_OK(iovm_mr_reg_async(r.dom, app, 2 * CH, 0, ONE_THREAD, &mr));
	CHECK_OK(iovm_mr_wait(mr, app, 2 * CH, -1));
	CHECK(vma_flag(app, " lo") && !vma_flag(app, " lf"));
	CHECK_OK(iovm_mr_dereg(mr));
	/* Shared memory, with write rights: mlock(2) too, which does not dirty its pages. */
	shared = mmap(NULL, 2 * CH, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(shared != MAP_FAILED);
	CHECK_OK(iovm_mr_reg_async(r.dom, shared, 2 * CH, IOVM_ACCESS_LOCAL_WRITE, ONE_THREAD, &mr));
	CHECK_OK(iovm_mr_wait(mr, shared, 2 * CH, -1));
	CHECK(vma_flag(shared, " lo") && !vma_flag(shared, " lf"));
	CHECK_OK(iovm_mr_dereg(mr));
	munmap(shared, 2 * CH);
	no_violations(r.dom);
	rig_close(&r);
	app_unmap(app, N * CH);
}

int main(void)
{
	test_init();
	RUN_SELECTED(odd_sizes_and_alignments);
	RUN_SELECTED(usable_part_by_part);
	RUN_SELECTED(cancel_mid_way);
	RUN_SELECTED(unmapped_hole_mid_range);
	RUN_SELECTED(parallel_waits);
	RUN_SELECTED(lock_budget_exceeded);
	RUN_SELECTED(locked_on_fault_then_touched);
	return 0;
}
