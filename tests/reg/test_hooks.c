/* SPDX-License-Identifier: MIT */
/*
 * test_hooks.c - the memory monitor's synchronous path (src/reg/hooks.c):
 * libc's munmap() patched to invalidate in the calling thread, with
 * userfaultfd still the backstop, attacked where hooks hurt UCX and
 * libfabric users: glibc's free() (an internal call, not the PLT), a raw
 * syscall, a hook reentered from a signal handler that mallocs and maps,
 * dlopen() storms, a context closed under hooks in flight, and fork.
 *
 * madvise(), mremap(), mmap(MAP_FIXED) and brk() are hooked the same way:
 * each is seen in the calling thread, and a range it leaves mapped stays
 * watched by userfaultfd (a raw munmap() there is still seen).
 *
 * Which path saw a change is told by the monitor's counters: hooked
 * (monitor_hooked()) or read from userfaultfd (the rest of monitor_events).
 */
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/ctx.h"
#include "reg/reg_internal.h"
#include "reg/reg_util.h"

#define NPAGES 16

struct case_ {
	struct rig r;
	uint8_t *heap;
	uint8_t *app;
	struct iovm_mr *mr;
	uint64_t iova;
};

static void setup(struct case_ *t, uint8_t *app)
{
	rig_open(&t->r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	t->heap = iovm_dma_alloc(t->r.ctx, NPAGES * PG, PG, 0);
	CHECK(t->heap != NULL);
	fill_random(t->heap, NPAGES * PG, 7);
	t->app = app;
	CHECK_OK(iovm_mr_reg(t->r.dom, app, NPAGES * PG, IOVM_ACCESS_LOCAL_WRITE, &t->mr));
	t->iova = mr_iova(t->mr, app);
}

static void teardown(struct case_ *t)
{
	CHECK_OK(iovm_mr_dereg(t->mr));
	rig_close(&t->r);
}

/* Unmaps seen by the hooks, and by userfaultfd, so far. */
static uint64_t hooked(struct rig *r)
{
	return monitor_hooked(r->ctx->reg->mon);
}

/* Events read from userfaultfd, of any kind: the monitor's events less the hooks'. */
static uint64_t by_uffd(struct rig *r)
{
	return rstats(r).monitor_events - hooked(r);
}

/*
 * Pages [first, first+n) unreachable, and memory mapped there since
 * untouched: whether that memory is ours (to unmap at the end).
 */
static bool check_gone(struct case_ *t, unsigned first, unsigned n)
{
	uint8_t *p = t->app + (size_t)first * PG;
	uint8_t *q = mmap(p, n * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

	/*
	 * Taken meanwhile by another thread's mapping (the monitor's own,
	 * under a sanitizer whose allocator maps as it goes): that is the new
	 * memory then, not ours to fill; the device must still fault.
	 */
	if (q != p)
		q = NULL;
	if (q)
		memset(q, 0xa5, n * PG);
	for (unsigned i = 0; i < n; i++) {
		uint8_t st = dma_copy(&t->r, iova_of(&t->r, t->heap), t->iova + (uint64_t)(first + i) * PG, PG);

		CHECK_MSG(st == IOVM_STATUS_PAGE_FAULT, "page %u still reachable", first + i);
	}
	for (size_t i = 0; q && i < n * PG; i++)
		if (q[i] != 0xa5) {
			CHECK_MSG(0, "byte %zu of the new memory changed", i);
			break;
		}
	no_violations(t->r.dom);
	return q != NULL;
}

static void need_hooks(void)
{
	if (!(hooks_installed() & HOOK_MUNMAP))
		SKIP("libc's munmap() is not hooked here (not x86-64, an unknown entry, or IOVM_NO_HOOKS)");
}

TEST(munmap_is_hooked)
{
	struct case_ t;
	uint64_t h, u;
	bool ours;

	setup(&t, app_map(NPAGES * PG));
	h = hooked(&t.r);
	u = by_uffd(&t.r);
	CHECK_OK(munmap(t.app + 4 * PG, 4 * PG));
	CHECK_EQ(hooked(&t.r), h + 1);
	CHECK_EQ(mr_info(t.mr).valid_pages, (uint64_t)NPAGES - 4);
	CHECK_EQ(by_uffd(&t.r), u); /* out of userfaultfd's watch before the call: no round trip */
	ours = check_gone(&t, 4, 4);
	/* The rest of the registration still works. */
	CHECK_EQ(dma_copy(&t.r, iova_of(&t.r, t.heap), t.iova + PG, PG), IOVM_STATUS_SUCCESS);
	CHECK(!memcmp(t.app + PG, t.heap, PG));
	teardown(&t);
	app_unmap(t.app, 4 * PG);
	app_unmap(t.app + 8 * PG, (NPAGES - 8) * PG);
	if (ours)
		app_unmap(t.app + 4 * PG, 4 * PG);
}

/*
 * A device straight after the hooked munmap(), no lookup in between: the
 * hook woke nobody unless the invalidator was parked (monitor.c), so the
 * device finds the gate closed, and must get the invalidation done (it
 * kicks the invalidator) rather than reach memory mapped there since. Half
 * the rounds let the invalidator park first (its linger is 1 ms), so the
 * hook's own wake is taken too.
 */
TEST(device_right_after_hooked_munmap)
{
	struct case_ t;
	uint64_t h;

	setup(&t, app_map(NPAGES * PG));
	h = hooked(&t.r);
	for (unsigned round = 0; round < 40; round++) {
		uint8_t *p = app_map(4 * PG), *q;
		struct iovm_mr *mr;
		uint64_t iova;

		CHECK_OK(iovm_mr_reg(t.r.dom, p, 4 * PG, IOVM_ACCESS_LOCAL_WRITE, &mr));
		iova = mr_iova(mr, p);
		CHECK_EQ(dma_copy(&t.r, iova_of(&t.r, t.heap), iova, PG), IOVM_STATUS_SUCCESS);
		if (round & 1)
			usleep(3000);
		CHECK_OK(munmap(p, 4 * PG));
		q = mmap(p, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		if (q != MAP_FAILED && q != p) {
			munmap(q, 4 * PG);
			q = MAP_FAILED;
		}
		if (q != MAP_FAILED)
			memset(q, 0xa5, 4 * PG);
		for (unsigned i = 0; i < 4; i++)
			CHECK_MSG(dma_copy(&t.r, iova_of(&t.r, t.heap), iova + (uint64_t)i * PG, PG) ==
					  IOVM_STATUS_PAGE_FAULT,
				  "round %u: page %u still reachable", round, i);
		for (size_t i = 0; q != MAP_FAILED && i < 4 * PG; i++)
			if (q[i] != 0xa5) {
				CHECK_MSG(0, "round %u: byte %zu of the new memory changed", round, i);
				break;
			}
		CHECK_OK(iovm_mr_dereg(mr));
		if (q != MAP_FAILED)
			app_unmap(q, 4 * PG);
	}
	CHECK_EQ(hooked(&t.r), h + 40);
	no_violations(t.r.dom);
	teardown(&t);
	app_unmap(t.app, NPAGES * PG);
}

/* A macro: the skip returns from the test. */
#define NEED_HOOK(bit, name)                                                   \
	do {                                                                   \
		if (!(hooks_installed() & (bit)))                              \
			SKIP_CASE("libc's %s() is not hooked here", name);     \
	} while (0)

/* Page @i reached by the device (a copy from the heap into it): whether it was. */
static bool reached(struct case_ *t, unsigned i)
{
	return dma_copy(&t->r, iova_of(&t->r, t->heap), t->iova + (uint64_t)i * PG, PG) == IOVM_STATUS_SUCCESS;
}

/*
 * A raw munmap() of page @i, which only userfaultfd can see: seen there
 * (the hook that went before left the range in its watch), the page gone.
 */
static void still_watched(struct case_ *t, unsigned i)
{
	uint64_t u = by_uffd(&t->r), valid = mr_info(t->mr).valid_pages;

	CHECK_OK((int)syscall(SYS_munmap, t->app + (size_t)i * PG, (size_t)PG));
	CHECK_EQ(mr_info(t->mr).valid_pages, valid - 1);
	CHECK_EQ(by_uffd(&t->r), u + 1);
	CHECK(!reached(t, i));
}

/*
 * madvise() of registered memory, in the calling thread. Locked (pinned)
 * pages: MADV_DONTNEED is refused and changes nothing, the range still
 * watched; MADV_DONTNEED_LOCKED lets them go, and the MR with them.
 */
TEST(madvise_is_hooked)
{
	struct case_ t;
	uint64_t h, u;

	NEED_HOOK(HOOK_MADVISE, "madvise");
	setup(&t, app_map(NPAGES * PG));
	h = hooked(&t.r);
	u = by_uffd(&t.r);
	CHECK_EQ(madvise(t.app + 4 * PG, 4 * PG, MADV_DONTNEED), -1);
	CHECK_EQ(errno, EINVAL);
	CHECK_EQ(hooked(&t.r), h + 1);
	CHECK_EQ(mr_info(t.mr).valid_pages, (uint64_t)NPAGES);
	CHECK(reached(&t, 4) && reached(&t, 7));
	CHECK_EQ(by_uffd(&t.r), u);
	still_watched(&t, 5);

	h = hooked(&t.r);
	u = by_uffd(&t.r);
	CHECK_OK(madvise(t.app + 8 * PG, 4 * PG, MADV_DONTNEED_LOCKED));
	CHECK_EQ(hooked(&t.r), h + 1);
	CHECK_EQ(by_uffd(&t.r), u); /* no round trip */
	CHECK_EQ(mr_info(t.mr).valid_pages, (uint64_t)NPAGES - 5);
	memset(t.app + 8 * PG, 0x3c, 4 * PG);
	for (unsigned i = 8; i < 12; i++)
		CHECK_MSG(!reached(&t, i), "page %u still reachable", i);
	for (size_t i = 0; i < 4 * PG; i++)
		if (t.app[8 * PG + i] != 0x3c)
			CHECK_MSG(0, "byte %zu of the new pages changed", i);
	CHECK(reached(&t, 12));
	teardown(&t);
	app_unmap(t.app, 5 * PG);
	app_unmap(t.app + 6 * PG, (NPAGES - 6) * PG);
}

/* An on-demand MR follows madvise(MADV_DONTNEED): the device then finds the new (zero) pages. */
TEST(madvise_of_on_demand_memory_is_hooked)
{
	struct case_ t;
	uint8_t *app = app_map(NPAGES * PG);
	uint64_t h, u;

	NEED_HOOK(HOOK_MADVISE, "madvise");
	rig_open(&t.r, REG_OPTS, NULL, IOVM_QUEUE_POLLED);
	t.heap = iovm_dma_alloc(t.r.ctx, NPAGES * PG, PG, 0);
	CHECK(t.heap != NULL);
	t.app = app;
	memset(app, 0x11, NPAGES * PG);
	CHECK_OK(iovm_mr_reg(t.r.dom, app, NPAGES * PG, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND, &t.mr));
	t.iova = mr_iova(t.mr, app);
	/* Faulted in by the device: the old pages are the MR's. */
	CHECK_EQ(dma_copy(&t.r, t.iova, iova_of(&t.r, t.heap), NPAGES * PG), IOVM_STATUS_SUCCESS);
	h = hooked(&t.r);
	u = by_uffd(&t.r);
	CHECK_OK(madvise(app + 2 * PG, 4 * PG, MADV_DONTNEED));
	CHECK_EQ(hooked(&t.r), h + 1);
	CHECK_EQ(by_uffd(&t.r), u);
	memset(t.heap, 0xee, NPAGES * PG);
	CHECK_EQ(dma_copy(&t.r, t.iova, iova_of(&t.r, t.heap), NPAGES * PG), IOVM_STATUS_SUCCESS);
	for (size_t i = 0; i < NPAGES * PG; i++) {
		uint8_t want = i >= 2 * PG && i < 6 * PG ? 0 : 0x11;

		if (t.heap[i] != want) {
			CHECK_MSG(0, "byte %zu: %#x, not %#x", i, t.heap[i], want);
			break;
		}
	}
	still_watched(&t, 3);
	teardown(&t);
	app_unmap(app, 3 * PG);
	app_unmap(app + 4 * PG, (NPAGES - 4) * PG);
}

/* mmap(MAP_FIXED) over registered memory: in the calling thread, the new memory never reached. */
TEST(mmap_fixed_is_hooked)
{
	struct case_ t;
	uint64_t h, u;
	uint8_t *p;

	NEED_HOOK(HOOK_MMAP, "mmap");
	setup(&t, app_map(NPAGES * PG));
	h = hooked(&t.r);
	u = by_uffd(&t.r);
	p = mmap(t.app + 4 * PG, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	CHECK(p == t.app + 4 * PG);
	CHECK_EQ(hooked(&t.r), h + 1);
	CHECK_EQ(by_uffd(&t.r), u);
	CHECK_EQ(mr_info(t.mr).valid_pages, (uint64_t)NPAGES - 4);
	memset(p, 0xa5, 4 * PG);
	for (unsigned i = 4; i < 8; i++)
		CHECK_MSG(!reached(&t, i), "page %u still reachable", i);
	for (size_t i = 0; i < 4 * PG; i++)
		if (p[i] != 0xa5)
			CHECK_MSG(0, "byte %zu of the new memory changed", i);
	/* Not over anything: MAP_FIXED_NOREPLACE and plain mmap() pass straight through. */
	h = hooked(&t.r);
	CHECK(mmap(t.app + 6 * PG, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) ==
	      MAP_FAILED);
	CHECK_EQ(errno, EEXIST);
	/* An offset of no whole page is refused, as glibc refuses it. */
	CHECK(mmap(NULL, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 100) == MAP_FAILED);
	CHECK_EQ(errno, EINVAL);
	CHECK_EQ(hooked(&t.r), h);
	teardown(&t);
	app_unmap(t.app, NPAGES * PG);
}

/*
 * mremap() of registered memory, in the calling thread: a move, a shrink
 * in place, and one that could have moved and stayed, whose pages are
 * kept, and watched still.
 */
TEST(mremap_is_hooked)
{
	struct case_ t;
	uint8_t *dst = app_map(4 * PG), *p;
	uint64_t h, u, remaps;

	NEED_HOOK(HOOK_MREMAP, "mremap");
	setup(&t, app_map(NPAGES * PG));
	h = hooked(&t.r);
	u = by_uffd(&t.r);
	remaps = rstats(&t.r).events_remap;
	p = mremap(t.app + 12 * PG, 4 * PG, 4 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
	CHECK(p == dst);
	CHECK(hooked(&t.r) >= h + 1); /* the move; the destination's unmap too where it counts as watched */
	CHECK_EQ(by_uffd(&t.r), u);
	CHECK_EQ(rstats(&t.r).events_remap, remaps + 1);
	CHECK_EQ(mr_info(t.mr).valid_pages, (uint64_t)NPAGES - 4);
	for (unsigned i = 12; i < 16; i++)
		CHECK(!reached(&t, i));
	/* Shrunk where it lies, moving allowed: pages 8-11 go, 0-7 stay, and stay watched. */
	h = hooked(&t.r);
	p = mremap(t.app, 12 * PG, 8 * PG, MREMAP_MAYMOVE);
	CHECK(p == t.app);
	CHECK_EQ(hooked(&t.r), h + 1);
	CHECK_EQ(by_uffd(&t.r), u);
	CHECK_EQ(mr_info(t.mr).valid_pages, 8);
	CHECK(reached(&t, 0) && reached(&t, 7) && !reached(&t, 8));
	still_watched(&t, 6);
	/* Shrunk, moving not allowed: pages 4 and 5 go (6 went before). */
	h = hooked(&t.r);
	CHECK(mremap(t.app, 6 * PG, 4 * PG, 0) == t.app);
	CHECK_EQ(hooked(&t.r), h + 1);
	CHECK_EQ(mr_info(t.mr).valid_pages, 5);
	CHECK(reached(&t, 3) && !reached(&t, 4) && reached(&t, 7));
	/* A call the kernel refuses leaves the range as it was, and watched. */
	CHECK(mremap(t.app + 1, PG, PG, MREMAP_MAYMOVE) == MAP_FAILED);
	CHECK(mremap(t.app, 2 * PG, 2 * PG, MREMAP_FIXED | MREMAP_MAYMOVE, t.app + PG) == MAP_FAILED);
	CHECK_EQ(mr_info(t.mr).valid_pages, 5);
	still_watched(&t, 2);
	teardown(&t);
	app_unmap(t.app, 2 * PG);
	app_unmap(t.app + 3 * PG, PG);
	app_unmap(t.app + 7 * PG, PG);
	app_unmap(dst, 4 * PG);
}

/* sbrk() shrinking the break over registered memory: in the calling thread. */
TEST(sbrk_is_hooked)
{
	struct case_ t;
	uint8_t *b0, *base;
	uint64_t h, u;

	NEED_HOOK(HOOK_BRK, "brk");
	if (TEST_OWN_MALLOC)
		SKIP_CASE("a sanitizer's malloc: the break is left alone");
	b0 = sbrk(0);
	base = (uint8_t *)(((uintptr_t)b0 + PG - 1) & ~(uintptr_t)(PG - 1));
	CHECK(sbrk((intptr_t)(base - b0) + NPAGES * PG) == b0);
	memset(base, 0x42, NPAGES * PG);
	setup(&t, base);
	if (sbrk(0) != base + NPAGES * PG) {
		/* Another thread's malloc moved the break meanwhile: not ours to lower. */
		teardown(&t);
		SKIP_CASE("the break moved under the test");
	}
	h = hooked(&t.r);
	u = by_uffd(&t.r);
	CHECK(sbrk(-8 * (intptr_t)PG) == base + NPAGES * PG);
	CHECK_EQ(hooked(&t.r), h + 1);
	CHECK_EQ(by_uffd(&t.r), u);
	CHECK_EQ(mr_info(t.mr).valid_pages, NPAGES - 8);
	CHECK(reached(&t, 7) && !reached(&t, 8));
	CHECK(sbrk(0) == base + (NPAGES - 8) * PG); /* glibc's own idea of the break followed */
	teardown(&t);
	CHECK(sbrk(-(intptr_t)(base + (NPAGES - 8) * PG - b0)) == base + (NPAGES - 8) * PG);
	CHECK(sbrk(0) == b0);
}

TEST(raw_syscall_is_caught_by_userfaultfd)
{
	struct case_ t;
	uint64_t h, u;
	bool ours;

	setup(&t, app_map(NPAGES * PG));
	h = hooked(&t.r);
	u = by_uffd(&t.r);
	CHECK_OK((int)syscall(SYS_munmap, t.app, (size_t)NPAGES * PG));
	/* A query settles the reader's batch first: the counter is bumped after the read lets us go. */
	CHECK(!mr_info(t.mr).valid);
	CHECK_EQ(hooked(&t.r), h);
	CHECK_EQ(by_uffd(&t.r), u + 1);
	ours = check_gone(&t, 0, NPAGES);
	teardown(&t);
	if (ours)
		app_unmap(t.app, NPAGES * PG);
}

TEST(glibc_free_is_hooked)
{
	struct case_ t;
	uint8_t *block, *inside;
	uint64_t h, u;
	bool ours;

	if (TEST_OWN_MALLOC)
		SKIP_CASE("the sanitizer's free() keeps blocks mapped, and unmaps by raw syscalls");
	/*
	 * 8 MiB: above glibc's mmap threshold, fixed here (free() of an
	 * mmapped chunk raises it otherwise), and above any free chunk of
	 * its heaps.
	 */
	mallopt(M_MMAP_THRESHOLD, 128 << 10);
	block = malloc(8 << 20);
	CHECK(block != NULL);
	/* glibc's chunk header: IS_MMAPPED (2) in the size word, so that free() unmaps it. */
	{
		size_t head;

		memcpy(&head, (uint8_t *)(uintptr_t)((uintptr_t)block - sizeof(head)), sizeof(head));
		CHECK(head & 2);
	}
	inside = (uint8_t *)align_up((uintptr_t)block, PG);
	memset(block, 1, 8 << 20);
	setup(&t, inside);
	h = hooked(&t.r);
	u = by_uffd(&t.r);
	free(block);
	/* Seen in free()'s own thread, before it returned. */
	CHECK_EQ(hooked(&t.r), h + 1);
	CHECK(!mr_info(t.mr).valid);
	CHECK_EQ(by_uffd(&t.r), u);
	ours = check_gone(&t, 0, NPAGES);
	teardown(&t);
	if (ours)
		app_unmap(inside, NPAGES * PG);
}

/* ---- a hook reentered: a signal handler that maps, unmaps and mallocs ---- */

#define NBUF 48

static uint8_t *watched_area; /* 2 MiB, its first pages registered: in the hooks' filter */
static _Atomic unsigned handled;

static void handler(int sig)
{
	uint8_t *p = watched_area + (1 << 20);
	int saved = errno;

	(void)sig;
	/* Memory the hooks must look at (in a watched granule), mapped and unmapped in the handler. */
	if (mmap(p, 16 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == p)
		munmap(p, 16 * PG);
	if (!TEST_OWN_MALLOC) {
		/* The main thread is never inside malloc: a large block, freed by munmap(). */
		void *b = malloc(256 << 10);

		free(b);
	}
	atomic_fetch_add(&handled, 1);
	errno = saved;
}

static _Atomic bool stop_kicking;

static void *kicker(void *arg)
{
	pthread_t main_thread = *(pthread_t *)arg;

	while (!atomic_load(&stop_kicking)) {
		pthread_kill(main_thread, SIGUSR1);
		usleep(50);
	}
	return NULL;
}

TEST(hook_reentered_from_a_signal_handler)
{
	struct case_ t;
	struct iovm_mr *mrs[NBUF];
	uint8_t *bufs[NBUF];
	struct sigaction sa = { .sa_handler = handler }, old;
	pthread_t self = pthread_self(), tid;
	uint64_t h;

	watched_area = app_map(2 << 20);
	setup(&t, watched_area);
	mallopt(M_MMAP_THRESHOLD, 128 << 10);
	for (unsigned i = 0; i < NBUF; i++) {
		bufs[i] = app_map(4 * PG);
		CHECK_OK(iovm_mr_reg(t.r.dom, bufs[i], 4 * PG, IOVM_ACCESS_LOCAL_WRITE, &mrs[i]));
	}
	h = hooked(&t.r);
	sigemptyset(&sa.sa_mask);
	CHECK_OK(sigaction(SIGUSR1, &sa, &old));
	atomic_store(&stop_kicking, false);
	CHECK_OK(pthread_create(&tid, NULL, kicker, &self));
	/* Only munmap() here: the handler may malloc. */
	for (unsigned i = 0; i < NBUF; i++) {
		uint8_t *p = watched_area + (512 << 10);

		munmap(bufs[i], 4 * PG);
		/* More time inside the hooks, for the signals to land in. */
		for (unsigned j = 0; j < 20; j++)
			if (mmap(p, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == p)
				munmap(p, 4 * PG);
	}
	/* The kicker may not have run yet on a busy machine: one handler at least. */
	while (!atomic_load(&handled))
		sched_yield();
	atomic_store(&stop_kicking, true);
	pthread_join(tid, NULL);
	CHECK_OK(sigaction(SIGUSR1, &old, NULL));
	CHECK(atomic_load(&handled) > 0);
	CHECK(hooked(&t.r) >= h + NBUF);
	for (unsigned i = 0; i < NBUF; i++) {
		CHECK(!mr_info(mrs[i]).valid);
		CHECK_OK(iovm_mr_dereg(mrs[i]));
	}
	teardown(&t);
	app_unmap(watched_area, 2 << 20);
}

/* ---- dlopen() storms beside unmaps of registered memory ---- */

static const char *const libs[] = { "libresolv.so.2", "libutil.so.1", "libanl.so.1", "libm.so.6", "libz.so.1" };
static _Atomic bool stop_loading;
static _Atomic unsigned loads;

static void *loader(void *arg)
{
	unsigned i = (unsigned)(uintptr_t)arg;

	while (!atomic_load(&stop_loading)) {
		void *h = dlopen(libs[i++ % (sizeof(libs) / sizeof(libs[0]))], RTLD_NOW | RTLD_LOCAL);

		if (h) {
			dlclose(h);
			atomic_fetch_add(&loads, 1);
		}
	}
	return NULL;
}

struct unmapper {
	struct case_ *t;
	unsigned dead;
};

static void *unmapper(void *arg)
{
	struct unmapper *u = arg;

	for (unsigned i = 0; i < 100; i++) {
		uint8_t *p = app_map(4 * PG);
		struct iovm_mr *mr;

		CHECK_OK(iovm_mr_reg(u->t->r.dom, p, 4 * PG, IOVM_ACCESS_LOCAL_WRITE, &mr));
		munmap(p, 4 * PG);
		u->dead += !mr_info(mr).valid;
		CHECK_OK(iovm_mr_dereg(mr));
	}
	return NULL;
}

TEST(dlopen_while_unmapping)
{
	struct case_ t;
	struct unmapper u[2] = { { .t = &t }, { .t = &t } };
	pthread_t ld[3], um[2];

	setup(&t, app_map(NPAGES * PG));
	atomic_store(&stop_loading, false);
	for (unsigned i = 0; i < 3; i++)
		CHECK_OK(pthread_create(&ld[i], NULL, loader, (void *)(uintptr_t)i));
	for (unsigned i = 0; i < 2; i++)
		CHECK_OK(pthread_create(&um[i], NULL, unmapper, &u[i]));
	for (unsigned i = 0; i < 2; i++)
		pthread_join(um[i], NULL);
	atomic_store(&stop_loading, true);
	for (unsigned i = 0; i < 3; i++)
		pthread_join(ld[i], NULL);
	CHECK(atomic_load(&loads) > 0);
	CHECK_EQ(u[0].dead + u[1].dead, 200u);
	teardown(&t);
	app_unmap(t.app, NPAGES * PG);
}

/* ---- a context closed, and fork(), while other threads are inside munmap() ---- */

static _Atomic bool stop_churn;
static _Atomic uint64_t churned;

#define CHURN_THREADS 3
#define CHURN_BUFS 150

/* Registered memory per thread, each unmapped in turn by its thread: every munmap() a hook's. */
static uint8_t *churn_bufs[CHURN_THREADS][CHURN_BUFS];
static struct iovm_mr *churn_mrs[CHURN_THREADS][CHURN_BUFS];
static unsigned churn_n;

static void churn_prepare(struct case_ *t, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		for (unsigned j = 0; j < CHURN_BUFS; j++) {
			churn_bufs[i][j] = app_map(4 * PG);
			CHECK_OK(iovm_mr_reg(t->r.dom, churn_bufs[i][j], 4 * PG, IOVM_ACCESS_LOCAL_WRITE,
					     &churn_mrs[i][j]));
		}
	churn_n = n;
}

/*
 * Deregistered while their memory goes: the monitor still watches it (its
 * userfaultfd keeps every range until it stops), and hooks still come.
 */
static void churn_dereg(void)
{
	for (unsigned i = 0; i < churn_n; i++)
		for (unsigned j = 0; j < CHURN_BUFS; j++)
			CHECK_OK(iovm_mr_dereg(churn_mrs[i][j]));
}

static void *churn(void *arg)
{
	unsigned i = (unsigned)(uintptr_t)arg;
	uint8_t *p = NULL;

	for (unsigned j = 0; j < CHURN_BUFS; j++) {
		munmap(churn_bufs[i][j], 4 * PG);
		atomic_fetch_add(&churned, 1);
		sched_yield();
	}
	/* Then plain maps and unmaps, until told. */
	while (!atomic_load(&stop_churn)) {
		p = mmap(NULL, 16 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			break;
		p[0] = 1;
		munmap(p, 16 * PG);
		atomic_fetch_add(&churned, 1);
	}
	return NULL;
}

static void churn_start(pthread_t *tid, unsigned n)
{
	atomic_store(&stop_churn, false);
	for (unsigned i = 0; i < n; i++)
		CHECK_OK(pthread_create(&tid[i], NULL, churn, (void *)(uintptr_t)i));
}

static void churn_stop(pthread_t *tid, unsigned n)
{
	atomic_store(&stop_churn, true);
	for (unsigned i = 0; i < n; i++)
		pthread_join(tid[i], NULL);
}

/* Churned at least @n more times since @since: the threads are running, inside munmap() at times. */
static void churn_wait(uint64_t since, uint64_t n)
{
	while (atomic_load(&churned) < since + n)
		sched_yield();
}

TEST(context_closed_while_unmapping)
{
	for (unsigned round = 0; round < 5; round++) {
		struct case_ t;
		pthread_t tid[CHURN_THREADS];
		uint64_t h;

		watched_area = app_map(2 << 20);
		setup(&t, watched_area);
		churn_prepare(&t, CHURN_THREADS);
		churn_start(tid, CHURN_THREADS);
		churn_wait(atomic_load(&churned), 20);
		h = hooked(&t.r);
		CHECK(h > 0);
		/* Closed with hooks in flight: it waits for those using its monitor. */
		churn_dereg();
		teardown(&t);
		churn_wait(atomic_load(&churned), 50);
		churn_stop(tid, CHURN_THREADS);
		app_unmap(watched_area, 2 << 20);
	}
}

TEST(fork_while_unmapping)
{
	struct case_ t;
	pthread_t tid[2];

	if (TEST_TSAN)
		SKIP_CASE("ThreadSanitizer's fork() in a threaded process is its own test");
	watched_area = app_map(2 << 20);
	setup(&t, watched_area);
	churn_prepare(&t, 2);
	churn_start(tid, 2);
	for (unsigned i = 0; i < 6; i++) {
		bool raw = i & 1;
		int status;
		pid_t pid;

		churn_wait(atomic_load(&churned), 10);
		/* A raw fork runs no atfork handler: the hooks tell the child by its pid. */
		pid = raw ? (pid_t)syscall(SYS_fork) : fork();
		CHECK(pid >= 0);
		if (!pid) {
			/* The parent's registrations, and a big block: unmapped by the child's own hooks. */
			alarm(10);
			munmap(watched_area, NPAGES * PG);
			if (!raw) {
				void *b = malloc(1 << 20);

				free(b);
			}
			_exit(0);
		}
		CHECK_EQ(waitpid(pid, &status, 0), pid);
		CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %u: status %#x", i, status);
	}
	churn_stop(tid, 2);
	churn_dereg();
	/* The parent's memory is the parent's: still registered, still reachable. */
	CHECK(mr_info(t.mr).valid);
	CHECK_EQ(dma_copy(&t.r, iova_of(&t.r, t.heap), t.iova, PG), IOVM_STATUS_SUCCESS);
	teardown(&t);
	app_unmap(watched_area, 2 << 20);
}

int main(void)
{
	/* Every hook, before the first monitor installs them (reg/hooks.c: the rest are opt-in). */
	setenv("IOVM_HOOKS", "all", 1);
	test_init();
	if (getenv("IOVM_NO_HOOKS"))
		SKIP("IOVM_NO_HOOKS is set");
	{
		/* The monitor (and the hooks) start with the first registration. */
		struct case_ t;

		setup(&t, app_map(NPAGES * PG));
		teardown(&t);
		need_hooks();
	}
	RUN_SELECTED(munmap_is_hooked);
	RUN_SELECTED(device_right_after_hooked_munmap);
	RUN_SELECTED(madvise_is_hooked);
	RUN_SELECTED(madvise_of_on_demand_memory_is_hooked);
	RUN_SELECTED(mmap_fixed_is_hooked);
	RUN_SELECTED(mremap_is_hooked);
	RUN_SELECTED(sbrk_is_hooked);
	RUN_SELECTED(raw_syscall_is_caught_by_userfaultfd);
	RUN_SELECTED(glibc_free_is_hooked);
	RUN_SELECTED(hook_reentered_from_a_signal_handler);
	RUN_SELECTED(dlopen_while_unmapping);
	RUN_SELECTED(context_closed_while_unmapping);
	RUN_SELECTED(fork_while_unmapping);
	return 0;
}
