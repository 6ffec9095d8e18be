/* SPDX-License-Identifier: MIT */
/*
 * test_monitor.c - registered memory follows the address space: each way
 * the application can take memory away, followed by DMA through the engine
 * to where it was. The device must fault there, never reach what replaced
 * it, and the rest of the registration must keep working; the oracle
 * counts no violation.
 *
 * Each test registers 16 pages, takes some away, then checks:
 *  - DMA to a page taken away faults, and memory placed there since is
 *    untouched;
 *  - DMA to a page left works.
 */
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/ctx.h"
#include "base/fault_inject.h"
#include "reg/monitor.h"
#include "reg/reg_internal.h"
#include "reg/reg_util.h"

#define NPAGES 16

struct case_ {
	struct rig r;
	uint8_t *heap;  /* DMA heap memory: the other side of every copy */
	uint8_t *app;   /* the registered memory */
	struct iovm_mr *mr;
	uint64_t iova;  /* of app */
};

static void setup_rig(struct case_ *t)
{
	rig_open(&t->r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	t->heap = iovm_dma_alloc(t->r.ctx, NPAGES * PG, PG, 0);
	CHECK(t->heap != NULL);
	fill_random(t->heap, NPAGES * PG, 7);
}

static void setup_mr(struct case_ *t, uint8_t *app, uint32_t access)
{
	t->app = app;
	CHECK_OK(iovm_mr_reg(t->r.dom, app, NPAGES * PG, access, &t->mr));
	t->iova = mr_iova(t->mr, app);
}

static void setup(struct case_ *t, uint8_t *app, uint32_t access)
{
	setup_rig(t);
	setup_mr(t, app, access);
}

static void teardown(struct case_ *t)
{
	CHECK_OK(iovm_mr_dereg(t->mr));
	rig_close(&t->r);
}

/* DMA into page @i of the registration: the status. */
static uint8_t write_page(struct case_ *t, unsigned i)
{
	return dma_copy(&t->r, iova_of(&t->r, t->heap), t->iova + (uint64_t)i * PG, PG);
}

#define NONE_ALIVE (~0u)

/* Pages [first, first+n) are gone for the device; page @alive (unless NONE_ALIVE) still works. */
static void check_gone(struct case_ *t, unsigned first, unsigned n, unsigned alive)
{
	for (unsigned i = first; i < first + n; i++)
		CHECK_MSG(write_page(t, i) == IOVM_STATUS_PAGE_FAULT, "page %u still reachable", i);
	if (alive != NONE_ALIVE) {
		CHECK_EQ(write_page(t, alive), IOVM_STATUS_SUCCESS);
		CHECK(!memcmp(t->app + (size_t)alive * PG, t->heap, PG));
	}
	no_violations(t->r.dom);
}

/* Map fresh memory at [p, p+len) and fill it with @byte: what must stay untouched. */
static void replace(uint8_t *p, size_t len, uint8_t byte)
{
	uint8_t *q = mmap(p, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

	CHECK(q == p);
	memset(q, byte, len);
}

static void untouched(const uint8_t *p, size_t len, uint8_t byte)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != byte) {
			CHECK_MSG(0, "byte %zu of the new memory changed", i);
			return;
		}
	CHECK(1);
}

TEST(munmap)
{
	struct case_ t;
	struct iovm_reg_stats st;

	setup(&t, app_map(NPAGES * PG), IOVM_ACCESS_LOCAL_WRITE);
	CHECK_OK(munmap(t.app + 4 * PG, 4 * PG));
	replace(t.app + 4 * PG, 4 * PG, 0xa5);
	check_gone(&t, 4, 4, 1);
	untouched(t.app + 4 * PG, 4 * PG, 0xa5);
	CHECK_OK(iovm_reg_stats(t.r.ctx, &st));
	CHECK(st.events_unmap >= 1);
	CHECK(st.invalidated_pages >= 4);
	teardown(&t);
	app_unmap(t.app, NPAGES * PG);
}

static void *unmap_thread(void *p)
{
	munmap(p, 4 * PG);
	return NULL;
}

TEST(munmap_from_another_thread)
{
	struct case_ t;
	pthread_t tid;

	setup(&t, app_map(NPAGES * PG), IOVM_ACCESS_LOCAL_WRITE);
	CHECK_OK(pthread_create(&tid, NULL, unmap_thread, t.app + 8 * PG));
	CHECK_OK(pthread_join(tid, NULL));
	replace(t.app + 8 * PG, 4 * PG, 0x3c);
	check_gone(&t, 8, 4, 0);
	untouched(t.app + 8 * PG, 4 * PG, 0x3c);
	teardown(&t);
	app_unmap(t.app, NPAGES * PG);
}

TEST(mremap)
{
	struct case_ t;
	uint8_t *elsewhere = app_map(4 * PG), *moved;

	setup(&t, app_map(NPAGES * PG), IOVM_ACCESS_LOCAL_WRITE);
	/* Moved away: the old range is gone, and the device does not follow to the new one. */
	memset(t.app + 12 * PG, 0x11, 4 * PG);
	moved = mremap(t.app + 12 * PG, 4 * PG, 4 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, elsewhere);
	CHECK(moved == elsewhere);
	replace(t.app + 12 * PG, 4 * PG, 0x22);
	check_gone(&t, 12, 4, 2);
	untouched(t.app + 12 * PG, 4 * PG, 0x22);
	untouched(moved, 4 * PG, 0x11);
	teardown(&t);
	app_unmap(t.app, NPAGES * PG);
	app_unmap(moved, 4 * PG);
}

/* munmap() hooked and mremap() not (the default): else the case is undone, @dst unmapped too. */
static bool only_munmap_hooked(struct case_ *t, uint8_t *dst)
{
	if ((hooks_installed() & HOOK_MUNMAP) && !(hooks_installed() & HOOK_MREMAP))
		return true;
	teardown(t);
	app_unmap(t->app, NPAGES * PG);
	app_unmap(dst, 4 * PG);
	return false;
}

/*
 * Memory a move took along: without IOVM_HOOKS=all mremap() goes through
 * userfaultfd, and the kernel carries the watch to the destination. The
 * reader puts that destination into the hooks' filter before the mover
 * can look, so that its munmap() (glibc's free() of a block realloc()
 * moved) is hooked: no round trip through userfaultfd, and no moment in
 * which the addresses are free while their event waits to be read.
 * Twice: a move of part of an MR, then a realloc()-like growth that
 * moves the rest, unmapped whole.
 */
TEST(munmap_of_moved_memory_is_hooked)
{
	struct case_ t;
	uint8_t *dst = app_map(4 * PG), *moved;
	uint64_t h, u, remaps;

	setup(&t, app_map(NPAGES * PG), IOVM_ACCESS_LOCAL_WRITE);
	if (!only_munmap_hooked(&t, dst))
		SKIP_CASE("needs munmap() hooked and mremap() not (IOVM_HOOKS unset, x86-64)");
	remaps = rstats(&t.r).events_remap;
	moved = mremap(t.app + 12 * PG, 4 * PG, 4 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
	CHECK(moved == dst);
	CHECK_EQ(mr_info(t.mr).valid_pages, NPAGES - 4); /* settles the reader's batches: the move is counted */
	check_gone(&t, 12, 4, 1);
	CHECK_EQ(rstats(&t.r).events_remap, remaps + 1);
	h = monitor_hooked(t.r.ctx->reg->mon);
	u = rstats(&t.r).monitor_events - h;
	CHECK_OK(munmap(moved, 4 * PG));
	CHECK(!mr_info(t.mr).valid || mr_info(t.mr).valid_pages == NPAGES - 4);
	CHECK_EQ(monitor_hooked(t.r.ctx->reg->mon), h + 1);
	CHECK_EQ(rstats(&t.r).monitor_events - monitor_hooked(t.r.ctx->reg->mon), u);
	/* Grown and moved (what realloc() of an mmapped block does), then freed whole. */
	replace(t.app + 12 * PG, PG, 0); /* no growth in place */
	moved = mremap(t.app, 12 * PG, 64 * PG, MREMAP_MAYMOVE);
	CHECK(moved != MAP_FAILED && moved != t.app);
	app_unmap(t.app + 12 * PG, PG);
	if (moved != t.app) {
		/*
		 * A move raises the old range's unmap too, counted by the
		 * reader after the read lets the mover go: settled first.
		 */
		CHECK(!mr_info(t.mr).valid);
		check_gone(&t, 0, 12, NONE_ALIVE);
		h = monitor_hooked(t.r.ctx->reg->mon);
		u = rstats(&t.r).monitor_events - h;
		memset(moved + 60 * PG, 1, PG); /* the grown pages too */
		CHECK_OK(munmap(moved, 64 * PG));
		CHECK(!mr_info(t.mr).valid);
		CHECK_EQ(monitor_hooked(t.r.ctx->reg->mon), h + 1);
		CHECK_EQ(rstats(&t.r).monitor_events - monitor_hooked(t.r.ctx->reg->mon), u);
	}
	teardown(&t);
}

static struct reg_monitor *held_mon;
static atomic_bool saw_waiter;

/* The reader, between a read and its marks: held until a hook waits for them (10 s at most). */
static void hold_reader(void)
{
	for (unsigned i = 0; i < 10000 && !atomic_load(&held_mon->reading_waiters); i++)
		usleep(1000);
	if (atomic_load(&held_mon->reading_waiters))
		atomic_store(&saw_waiter, true);
}

/*
 * The mover's munmap() right after its mremap() returned, while the
 * reader, which the read let it go, has not marked the destination yet:
 * the hook waits for the mark and handles the call (the reader held
 * there until a hook waits). MREMAP_DONTUNMAP: a move that raises no
 * unmap of its source, so that its one event's read is what lets the
 * mover go.
 */
TEST(munmap_right_after_a_move_waits_for_the_mark)
{
	struct case_ t;
	uint8_t *dst = app_map(4 * PG), *moved;
	uint64_t h, u, remaps;

	setup(&t, app_map(NPAGES * PG), IOVM_ACCESS_LOCAL_WRITE);
	if (!only_munmap_hooked(&t, dst))
		SKIP_CASE("needs munmap() hooked and mremap() not (IOVM_HOOKS unset, x86-64)");
	held_mon = t.r.ctx->reg->mon;
	atomic_store(&saw_waiter, false);
	atomic_store(&monitor_reading_wait_ns, UINT64_C(20) * 1000000000);
	CHECK(mr_info(t.mr).valid);
	h = monitor_hooked(held_mon);
	u = rstats(&t.r).monitor_events - h;
	remaps = rstats(&t.r).events_remap;
	atomic_store(&monitor_test_reading, hold_reader);
	moved = mremap(t.app + 12 * PG, 4 * PG, 4 * PG, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, dst);
	if (moved == MAP_FAILED) {
		atomic_store(&monitor_test_reading, NULL);
		CHECK_EQ(errno, EINVAL); /* a kernel before 5.7 */
		teardown(&t);
		app_unmap(t.app, NPAGES * PG);
		app_unmap(dst, 4 * PG);
		SKIP_CASE("no MREMAP_DONTUNMAP here");
	}
	CHECK(moved == dst);
	CHECK_OK(munmap(moved, 4 * PG));
	atomic_store(&monitor_test_reading, NULL);
	atomic_store(&monitor_reading_wait_ns, MON_READING_WAIT_NS);
	CHECK(atomic_load(&saw_waiter));
	CHECK_EQ(mr_info(t.mr).valid_pages, NPAGES - 4); /* settled: every count below is final */
	CHECK_EQ(rstats(&t.r).events_remap, remaps + 1);
	CHECK_EQ(monitor_hooked(held_mon), h + 1);
	CHECK_EQ(rstats(&t.r).monitor_events - monitor_hooked(held_mon), u + 1); /* the move's event only */
	teardown(&t);
	app_unmap(t.app, NPAGES * PG);
}

TEST(mremap_fixed_destination)
{
	struct case_ t;
	uint8_t *src = app_map(4 * PG), *moved;

	setup(&t, app_map(NPAGES * PG), IOVM_ACCESS_LOCAL_WRITE);
	/* Something else moved onto registered memory: what was there is gone. */
	memset(src, 0x44, 4 * PG);
	moved = mremap(src, 4 * PG, 4 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, t.app + 4 * PG);
	CHECK(moved == t.app + 4 * PG);
	check_gone(&t, 4, 4, 0);
	untouched(t.app + 4 * PG, 4 * PG, 0x44);
	teardown(&t);
	app_unmap(t.app, NPAGES * PG);
}

TEST(mmap_fixed_over)
{
	struct case_ t;
	uint8_t *q;

	setup(&t, app_map(NPAGES * PG), IOVM_ACCESS_LOCAL_WRITE);
	q = mmap(t.app, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	CHECK(q == t.app);
	memset(q, 0x55, 2 * PG);
	check_gone(&t, 0, 2, 5);
	untouched(t.app, 2 * PG, 0x55);
	teardown(&t);
	app_unmap(t.app, NPAGES * PG);
}

TEST(madvise_on_locked_memory)
{
	struct case_ t;

	setup(&t, app_map(NPAGES * PG), IOVM_ACCESS_LOCAL_WRITE);
	/* Pinned memory is locked: the kernel refuses DONTNEED and FREE, and nothing changes. */
	CHECK_EQ(madvise(t.app, PG, MADV_DONTNEED), -1);
	CHECK_EQ(madvise(t.app + PG, PG, MADV_FREE), -1);
	CHECK_EQ(write_page(&t, 0), IOVM_STATUS_SUCCESS);
	CHECK_EQ(write_page(&t, 1), IOVM_STATUS_SUCCESS);
	/* DONTNEED_LOCKED discards it: invalidated; the page the application sees next is a new one. */
	CHECK_OK(madvise(t.app + 6 * PG, 2 * PG, MADV_DONTNEED_LOCKED));
	memset(t.app + 6 * PG, 0x66, 2 * PG);
	check_gone(&t, 6, 2, 3);
	untouched(t.app + 6 * PG, 2 * PG, 0x66);
	teardown(&t);
	app_unmap(t.app, NPAGES * PG);
}

TEST(madvise_remove_shared)
{
	struct case_ t;
	int fd = memfd_create("iovm-test", MFD_CLOEXEC);
	uint8_t *p;

	CHECK(fd >= 0);
	CHECK_OK(ftruncate(fd, NPAGES * PG));
	p = mmap(NULL, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(p != MAP_FAILED);
	setup(&t, p, IOVM_ACCESS_LOCAL_WRITE);
	{
		struct iovm_mr_info info;

		/*
		 * Not monitored: the file's pages can be punched out without an
		 * event (test_unseen.c). Still watched: the events there are
		 * invalidate it, below.
		 */
		CHECK_OK(iovm_mr_query(t.mr, &info));
		CHECK(!info.monitored);
	}
	/* Locked: the kernel will not punch it out of the file; nothing changes. */
	CHECK_EQ(madvise(p + 10 * PG, 2 * PG, MADV_REMOVE), -1);
	CHECK_EQ(write_page(&t, 10), IOVM_STATUS_SUCCESS);
	/* Dropped from the mapping: the pages the device had are gone for it. */
	CHECK_OK(madvise(p + 10 * PG, 2 * PG, MADV_DONTNEED_LOCKED));
	memset(p + 10 * PG, 0x77, 2 * PG);
	check_gone(&t, 10, 2, 0);
	untouched(p + 10 * PG, 2 * PG, 0x77);
	teardown(&t);
	munmap(p, NPAGES * PG);
	close(fd);
}

TEST(glibc_free_of_a_large_block)
{
	struct case_ t;
	uint8_t *block, *inside;

	if (TEST_ASAN)
		SKIP_CASE("AddressSanitizer's free() keeps blocks mapped");
	/* 8 MiB: far above glibc's mmap threshold, so free() unmaps it. */
	block = malloc(8 << 20);
	CHECK(block != NULL);
	inside = (uint8_t *)align_up((uintptr_t)block, PG);
	memset(block, 1, 8 << 20);
	setup(&t, inside, IOVM_ACCESS_LOCAL_WRITE);
	free(block);
	/* Whatever takes the address next is not the device's. */
	check_gone(&t, 0, NPAGES, NONE_ALIVE);
	teardown(&t);
}

struct reg_job {
	struct case_ *t;
	uint8_t *app;
};

static void *register_elsewhere(void *arg)
{
	struct reg_job *j = arg;

	setup_mr(j->t, j->app, IOVM_ACCESS_LOCAL_WRITE);
	return NULL;
}

TEST(brk_shrink)
{
	struct case_ t;
	struct reg_job job;
	uint8_t *block, *top;
	pthread_t tid;

	if (TEST_OWN_MALLOC)
		SKIP_CASE("the sanitizer's malloc does not use the brk heap");
	/*
	 * A block from the main arena, at the top of the brk heap, trimmed at
	 * once when freed. The registration is made on another thread, whose
	 * allocations come from another arena: nothing of iovm's lands above
	 * the block to keep the heap from shrinking.
	 */
	setup_rig(&t);
	CHECK_EQ(mallopt(M_MMAP_THRESHOLD, 32 << 20), 1);
	CHECK_EQ(mallopt(M_TRIM_THRESHOLD, 0), 1);
	block = malloc(4 << 20);
	CHECK(block != NULL);
	memset(block, 1, 4 << 20);
	job = (struct reg_job){ .t = &t, .app = (uint8_t *)align_up((uintptr_t)block + (2 << 20), PG) };
	top = sbrk(0);
	CHECK(job.app + NPAGES * PG <= top);
	CHECK_OK(pthread_create(&tid, NULL, register_elsewhere, &job));
	CHECK_OK(pthread_join(tid, NULL));
	free(block);
	malloc_trim(0);
	CHECK_MSG((uint8_t *)sbrk(0) < job.app, "the heap did not shrink below the registration");
	check_gone(&t, 0, NPAGES, NONE_ALIVE);
	teardown(&t);
	mallopt(M_MMAP_THRESHOLD, 128 << 10);
	mallopt(M_TRIM_THRESHOLD, 128 << 10);
}

TEST(fork)
{
	struct case_ t;
	pid_t pid;
	int status;

	/*
	 * fork() waits for the monitor's reader to read its FORK event; under
	 * ThreadSanitizer the forking thread holds the sanitizer's own locks
	 * meanwhile, and the reader, whose system calls it intercepts, waits
	 * for them. (The reader takes no lock of its own, nor glibc's.)
	 */
	if (TEST_TSAN)
		SKIP_CASE("ThreadSanitizer holds its locks across fork(), which waits for the monitor's reader");
	setup(&t, app_map(NPAGES * PG), IOVM_ACCESS_LOCAL_WRITE);
	memset(t.app, 0x10, NPAGES * PG);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		/* The child's copy: whatever it does stays in the child. */
		memset(t.app, 0x20, NPAGES * PG);
		munmap(t.app, 4 * PG);
		_exit(0);
	}
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* The parent's registration is whole, and reads the parent's memory. */
	for (unsigned i = 0; i < NPAGES; i++)
		CHECK_EQ(dma_copy(&t.r, t.iova + (uint64_t)i * PG, iova_of(&t.r, t.heap), PG), IOVM_STATUS_SUCCESS);
	untouched(t.heap, PG, 0x10);
	{
		struct iovm_reg_stats st;

		CHECK_OK(iovm_reg_stats(t.r.ctx, &st));
		CHECK_EQ(st.invalidated_pages, 0);
	}
	teardown(&t);
	app_unmap(t.app, NPAGES * PG);
}

/*
 * shmdt() leaves a hole that another thread's mmap() (an allocator's, a
 * sanitizer's) may fill before the test holds it with a placeholder: then
 * the device would find memory. Up to this many tries for a hole kept.
 */
#define SHM_TRIES 20

TEST(sysv_shm_is_not_monitored)
{
	for (unsigned attempt = 0; attempt < SHM_TRIES; attempt++) {
		struct case_ t;
		struct iovm_mr_info info;
		int id = shmget(IPC_PRIVATE, NPAGES * PG, IPC_CREAT | 0600);
		uint8_t *p = shmat(id, NULL, 0);

		CHECK(id >= 0 && p != (void *)-1);
		shmctl(id, IPC_RMID, NULL);
		setup(&t, p, IOVM_ACCESS_LOCAL_WRITE);
		CHECK_OK(iovm_mr_query(t.mr, &info));
		/* shmdt(2) tells userfaultfd nothing: such memory is registered, but not monitored. */
		CHECK(!info.monitored);
		CHECK_EQ(write_page(&t, 0), IOVM_STATUS_SUCCESS);
		CHECK_OK(shmdt(p));
		/*
		 * The hole is held with an inaccessible placeholder, which faults
		 * as the hole does. Filled meanwhile by someone else: not ours to
		 * unmap; try again elsewhere.
		 */
		if (mmap(p, NPAGES * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) != p) {
			teardown(&t);
			continue;
		}
		/* Gone under the device: a bus fault, not a crash. */
		{
			struct iovm_completion c = run_desc(&t.r, (struct iovm_desc){
				.op = IOVM_OP_COPY, .src = iova_of(&t.r, t.heap), .dst = t.iova + 3 * PG, .len = PG });

			CHECK_EQ(c.status, IOVM_STATUS_PAGE_FAULT);
			CHECK_EQ(c.fault_reason, IOVM_FAULT_BUS);
			/* Where the copy touched first: within the page. */
			CHECK(c.fault_addr >= t.iova + 3 * PG && c.fault_addr < t.iova + 4 * PG);
			CHECK_EQ(c.bytes_completed, 0);
		}
		teardown(&t);
		munmap(p, NPAGES * PG);
		return;
	}
	CHECK_MSG(false, "the hole shmdt() left was filled by another mapping in each of %u tries", SHM_TRIES);
}

/* The invalidator, held while the events pile up. */
static atomic_bool hold_invalidator;
static atomic_uint invalidator_held;

static void invalidator_hold(void)
{
	atomic_fetch_add(&invalidator_held, 1);
	while (atomic_load(&hold_invalidator))
		usleep(100);
}

/*
 * More events than the ring holds while the invalidator cannot take them
 * (the producers' wait for room cut short, as when it runs out): the
 * reader drops what does not fit, and the invalidator, once it runs,
 * invalidates every monitored registration and bumps the generation. Still
 * correct: a pinned MR the events never touched is dead (its keys refused),
 * an on-demand one faults its pages in again, and no device access reaches
 * memory taken away.
 */
#define FLOOD 5000 /* more than the ring's 4096 */

TEST(ring_overflow)
{
	struct rig r;
	struct iovm_mr *pinned, *odp;
	struct iovm_mr_info info;
	uint8_t *heap, *quiet = app_map(4 * PG), *flood = app_map((FLOOD + 1) * (size_t)PG);
	struct iovm_reg_stats before;

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	heap = iovm_dma_alloc(r.ctx, 4 * PG, PG, 0);
	fill_random(heap, 4 * PG, 31);
	CHECK_OK(iovm_mr_reg(r.dom, quiet, 4 * PG, IOVM_ACCESS_LOCAL_WRITE, &pinned));
	CHECK_OK(iovm_mr_reg(r.dom, flood, (FLOOD + 1) * (size_t)PG, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND,
			     &odp));
	CHECK_OK(iovm_mr_query(pinned, &info));
	CHECK(info.monitored && info.valid);
	CHECK_EQ(dma_copy(&r, iova_of(&r, heap), mr_iova(odp, flood), 4 * PG), IOVM_STATUS_SUCCESS);
	before = rstats(&r);
	CHECK_EQ(before.ring_overflows, 0);

	/* Dropped at once, not after the wait for room that a held invalidator would never end. */
	monitor_push_wait_ns = 0;
	atomic_store(&hold_invalidator, true);
	monitor_test_hold = invalidator_hold;
	/* The first event wakes the invalidator, which is held; then the flood, a page at a time. */
	CHECK_OK(madvise(flood + (size_t)FLOOD * PG, PG, MADV_DONTNEED));
	for (unsigned spins = 0; !atomic_load(&invalidator_held); spins++) {
		CHECK(spins < 100000);
		usleep(10);
	}
	for (unsigned i = 0; i < FLOOD; i++)
		CHECK_OK(madvise(flood + (size_t)i * PG, PG, MADV_DONTNEED));
	/*
	 * Every event read (each madvise waited for the read; the reader counts
	 * a batch just after it), none dealt with yet.
	 */
	for (unsigned spins = 0; rstats(&r).events_remove - before.events_remove < FLOOD + 1; spins++) {
		CHECK(spins < 100000);
		usleep(10);
	}
	CHECK_EQ(rstats(&r).ring_overflows, 0);
	atomic_store(&hold_invalidator, false);
	for (unsigned spins = 0; rstats(&r).ring_overflows == 0; spins++) {
		CHECK(spins < 1000000);
		usleep(10);
	}
	monitor_test_hold = NULL;
	monitor_push_wait_ns = MON_PUSH_WAIT_NS;
	CHECK_EQ(rstats(&r).ring_overflows, 1);
	CHECK_EQ(rstats(&r).generation, before.generation + 1);
	/* The quiet one was invalidated all the same: dead, its pages unmapped, its keys refused. */
	CHECK_OK(iovm_mr_query(pinned, &info));
	CHECK(!info.valid);
	CHECK_EQ(info.valid_pages, 0);
	CHECK_EQ(run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .flags = IOVM_DESC_KEYED, .src = iova_of(&r, heap),
						  .dst = (uintptr_t)quiet, .len = 8, .dst_key = info.lkey })
			 .status,
		 IOVM_STATUS_KEY);
	/* The on-demand one faults its (discarded, now zero) pages back in. */
	CHECK_EQ(dma_copy(&r, mr_iova(odp, flood), iova_of(&r, heap), PG), IOVM_STATUS_SUCCESS);
	CHECK_EQ(heap[0], 0);
	no_violations(r.dom);
	CHECK_OK(iovm_mr_dereg(pinned));
	CHECK_OK(iovm_mr_dereg(odp));
	rig_close(&r);
	app_unmap(quiet, 4 * PG);
	app_unmap(flood, (FLOOD + 1) * (size_t)PG);
}

struct flood_job {
	uint8_t *p;
	unsigned n;
};

static void *flood_main(void *arg)
{
	const struct flood_job *j = arg;

	for (unsigned i = 0; i < j->n; i++)
		CHECK_OK(madvise(j->p + (size_t)i * PG, PG, MADV_DONTNEED));
	return NULL;
}

/*
 * More events than the ring holds while the invalidator is late (held
 * here; on a loaded machine, not scheduled while several threads unmap):
 * the reader waits for room instead of dropping events, so nothing is
 * lost and a pinned MR the events never touched stays whole. It died,
 * invalidated with everything on the overflow, under attack18's churn:
 * descriptors on its pages, which nobody discarded, faulted.
 */
TEST(ring_full_waits_for_the_invalidator)
{
	struct rig r;
	struct iovm_mr *pinned, *odp;
	struct iovm_mr_info info;
	uint8_t *heap, *quiet = app_map(4 * PG), *flood = app_map((FLOOD + 1) * (size_t)PG);
	struct flood_job job = { .p = flood, .n = FLOOD };
	struct iovm_reg_stats before;
	struct reg_monitor *mon;
	pthread_t tid;

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	heap = iovm_dma_alloc(r.ctx, 4 * PG, PG, 0);
	fill_random(heap, 4 * PG, 37);
	CHECK_OK(iovm_mr_reg(r.dom, quiet, 4 * PG, IOVM_ACCESS_LOCAL_WRITE, &pinned));
	CHECK_OK(iovm_mr_reg(r.dom, flood, (FLOOD + 1) * (size_t)PG, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND,
			     &odp));
	CHECK_EQ(dma_copy(&r, iova_of(&r, heap), mr_iova(odp, flood), 4 * PG), IOVM_STATUS_SUCCESS);
	before = rstats(&r);
	/* However long the invalidator is held: the test lets it go once the ring is full. */
	monitor_push_wait_ns = UINT64_MAX;
	atomic_store(&hold_invalidator, true);
	atomic_store(&invalidator_held, 0);
	monitor_test_hold = invalidator_hold;
	CHECK_OK(madvise(flood + (size_t)FLOOD * PG, PG, MADV_DONTNEED));
	for (unsigned spins = 0; !atomic_load(&invalidator_held); spins++) {
		CHECK(spins < 100000);
		usleep(10);
	}
	/* Each madvise() waits for its event's read: the flood from a thread, which the full ring holds up. */
	CHECK_OK(pthread_create(&tid, NULL, flood_main, &job));
	/* The ring full (4096 events queued), and one more read: waiting for room (or, dropped, an overflow). */
	mon = r.ctx->reg->mon;
	while (!atomic_load(&mon->push_waiting) && !atomic_load(&mon->overflow))
		usleep(10);
	atomic_store(&hold_invalidator, false);
	CHECK_OK(pthread_join(tid, NULL));
	monitor_test_hold = NULL;
	monitor_push_wait_ns = MON_PUSH_WAIT_NS;
	/* A fault on the on-demand MR waits for every batch begun: all of the flood invalidated by then. */
	CHECK_EQ(dma_copy(&r, mr_iova(odp, flood), iova_of(&r, heap), PG), IOVM_STATUS_SUCCESS);
	CHECK_EQ(heap[0], 0);
	CHECK_EQ(rstats(&r).events_remove - before.events_remove, FLOOD + 1);
	CHECK_EQ(rstats(&r).ring_overflows, 0);
	CHECK_EQ(rstats(&r).generation, before.generation);
	/* The quiet one untouched: valid, and a keyed descriptor writes it. */
	CHECK_OK(iovm_mr_query(pinned, &info));
	CHECK(info.valid);
	CHECK_EQ(info.valid_pages, 4);
	CHECK_EQ(run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .flags = IOVM_DESC_KEYED, .src = iova_of(&r, heap),
						  .dst = (uintptr_t)quiet, .len = 8, .dst_key = info.lkey })
			 .status,
		 IOVM_STATUS_SUCCESS);
	no_violations(r.dom);
	CHECK_OK(iovm_mr_dereg(pinned));
	CHECK_OK(iovm_mr_dereg(odp));
	rig_close(&r);
	app_unmap(quiet, 4 * PG);
	app_unmap(flood, (FLOOD + 1) * (size_t)PG);
}

/*
 * More batches begun than the tickets' window holds (reg/monitor.h's
 * TICKETS) while the invalidator cannot run: munmap()s of registered
 * pages one by one, each a batch of its own, from a thread that never
 * waits for the invalidator. A ticket's slot is written over before the
 * invalidator read it; once it runs, lookups must still go on (they
 * waited for ever: attack23's fork_during_madvise_and_mremap).
 */
#define OVERRUN (TICKETS + 300)

static void overrun_hung(int sig)
{
	(void)sig;
	static const char msg[] = "FAIL [tickets_overrun]: hung: a lookup waits for ever after the tickets overran\n";

	if (write(2, msg, sizeof(msg) - 1) < 0) {
		/* exiting anyway */
	}
	_exit(1);
}

TEST(tickets_overrun)
{
	struct rig r;
	struct iovm_mr *odp, *later;
	uint8_t *heap, *pages = app_map(OVERRUN * (size_t)PG), *fresh = app_map(4 * PG);
	struct iovm_reg_stats before;
	uint64_t begun0;

	rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	heap = iovm_dma_alloc(r.ctx, 4 * PG, PG, 0);
	CHECK_OK(iovm_mr_reg(r.dom, pages, OVERRUN * (size_t)PG, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND,
			     &odp));
	CHECK_EQ(dma_copy(&r, mr_iova(odp, pages), iova_of(&r, heap), PG), IOVM_STATUS_SUCCESS);
	before = rstats(&r);
	begun0 = atomic_load(&r.ctx->reg->begun);
	/* Dropped when the ring is full: the invalidator is held until the test lets it go. */
	monitor_push_wait_ns = 0;
	atomic_store(&hold_invalidator, true);
	atomic_store(&invalidator_held, 0);
	monitor_test_hold = invalidator_hold;
	CHECK_OK(munmap(pages, PG));
	for (unsigned spins = 0; !atomic_load(&invalidator_held); spins++) {
		CHECK(spins < 100000);
		usleep(10);
	}
	for (unsigned i = 1; i < OVERRUN; i++)
		CHECK_OK(munmap(pages + (size_t)i * PG, PG));
	/* As many batches as calls, past the window. */
	CHECK(atomic_load(&r.ctx->reg->begun) - begun0 >= OVERRUN);
	signal(SIGALRM, overrun_hung);
	alarm(120);
	atomic_store(&hold_invalidator, false);
	/* A registration waits for every batch begun before it to be invalidated. */
	CHECK_OK(iovm_mr_reg(r.dom, fresh, 4 * PG, IOVM_ACCESS_LOCAL_WRITE, &later));
	alarm(0);
	monitor_test_hold = NULL;
	monitor_push_wait_ns = MON_PUSH_WAIT_NS;
	CHECK(rstats(&r).monitor_events > before.monitor_events);
	/* All of it gone: the MR holds no page, and a device reaches none. */
	CHECK_EQ(dma_copy(&r, mr_iova(odp, pages + 7 * PG), iova_of(&r, heap), PG), IOVM_STATUS_PAGE_FAULT);
	no_violations(r.dom);
	CHECK_OK(iovm_mr_dereg(later));
	CHECK_OK(iovm_mr_dereg(odp));
	rig_close(&r);
	app_unmap(fresh, 4 * PG);
}

/* Warnings that name the memory monitor, by the log handler. */
static atomic_uint monitor_warnings;

static void count_warnings(void *arg, enum iovm_log_level level, const char *msg)
{
	(void)arg;
	if (level == IOVM_LOG_WARN && strstr(msg, "monitor"))
		atomic_fetch_add(&monitor_warnings, 1);
}

/*
 * The monitor cannot start at the first registration (a system call of
 * its start fails, as with a transient EMFILE): that registration is
 * unmonitored and says so, a warning says it once, and the next
 * registration starts the monitor and is monitored (its memory replaced,
 * it is invalidated).
 */
TEST(monitor_start_failure_is_retried)
{
	uint8_t *a, *b;
	unsigned hit_start = 0;

#ifndef IOVM_DEBUG_CHECKS
	SKIP_CASE("fault injection is off (debug_checks=false): no failure can stop the monitor's start");
#endif
	a = app_map(4 * PG);
	b = app_map(4 * PG);
	iovm_log_set_handler(count_warnings, NULL);
	for (unsigned long n = 1;; n++) {
		struct rig r;
		struct iovm_mr *ma, *mb, *mc;
		int ret;
		bool fired;

		rig_open(&r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
		atomic_store(&monitor_warnings, 0);
		fi_arm(FI_SYSCALL, n, EMFILE);
		ret = iovm_mr_reg(r.dom, a, 4 * PG, IOVM_ACCESS_LOCAL_WRITE, &ma);
		fired = fi_disarm();
		if (ret) {
			/* Failed cleanly: nothing left registered. */
			CHECK(fired);
			CHECK_EQ(rstats(&r).mrs, 0);
			rig_close(&r);
			continue;
		}
		if (!rstats(&r).monitor) {
			/* The start failed: unmonitored, and said so, once. */
			hit_start++;
			CHECK(fired);
			CHECK(!mr_info(ma).monitored);
			CHECK_EQ(atomic_load(&monitor_warnings), 1);
			/* Tried again, and started. */
			CHECK_OK(iovm_mr_reg(r.dom, b, 4 * PG, IOVM_ACCESS_LOCAL_WRITE, &mb));
			CHECK(rstats(&r).monitor);
			CHECK(mr_info(mb).monitored);
			CHECK(mr_info(mb).valid);
			CHECK(mmap(b, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == b);
			CHECK(!mr_info(mb).valid);
			/* The first stays unmonitored (its events were never seen); a third is monitored. */
			CHECK(!mr_info(ma).monitored);
			CHECK_OK(iovm_mr_reg(r.dom, a, PG, 0, &mc));
			CHECK(mr_info(mc).monitored);
			CHECK_EQ(atomic_load(&monitor_warnings), 1);
			CHECK_OK(iovm_mr_dereg(mc));
			CHECK_OK(iovm_mr_dereg(mb));
		}
		CHECK_OK(iovm_mr_dereg(ma));
		rig_close(&r);
		/* Past the registration's last system call: every failure point was tried. */
		if (!fired)
			break;
	}
	iovm_log_set_handler(NULL, NULL);
	CHECK_MSG(hit_start > 0, "no failure point stopped the monitor's start");
	app_unmap(a, 4 * PG);
	app_unmap(b, 4 * PG);
}

int main(void)
{
	test_init();
	RUN(munmap);
	RUN(munmap_from_another_thread);
	RUN(mremap);
	RUN(munmap_of_moved_memory_is_hooked);
	RUN(munmap_right_after_a_move_waits_for_the_mark);
	RUN(mremap_fixed_destination);
	RUN(mmap_fixed_over);
	RUN(madvise_on_locked_memory);
	RUN(madvise_remove_shared);
	RUN(glibc_free_of_a_large_block);
	RUN(brk_shrink);
	RUN(fork);
	RUN(sysv_shm_is_not_monitored);
	RUN(ring_overflow);
	RUN(ring_full_waits_for_the_invalidator);
	RUN(tickets_overrun);
	RUN(monitor_start_failure_is_retried);
	return 0;
}
