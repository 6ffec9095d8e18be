/* SPDX-License-Identifier: MIT */
/*
 * test_window_race.c - the lock-free page-size lookups (phys_page_size(),
 * phys_map_page_size()) against windows that come and go, their structs
 * reused (phys/window.c keeps removed windows and hands them out again).
 *
 * The lookups run outside the devices' epoch (the map calls, a domain's
 * translate, guest banks), so nothing keeps the window they found from
 * being removed and rewritten as another while they read it. One struct
 * is made to play three windows in turn, at PAs of their own and of page
 * sizes of their own: two shared windows (2 MiB, 64 KiB) and an
 * application's window (the base page size). A reader then asks at each
 * window's PA: an answer other than that window's page size or 0 (no
 * memory there) mixes two windows.
 */
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/compiler.h"
#include "os/hugepage.h"
#include "phys/phys.h"
#include "harness.h"

/* The shared windows' PAs: emulated PAs no bank holds in a space with no arena. */
#define PA_A (UINT64_C(1) << 30)
#define PA_B (UINT64_C(2) << 30)
#define SIZE_A SZ_2M
#define SIZE_B SZ_64K

struct race {
	struct phys_space *ps;
	_Atomic uint64_t w_pa;   /* the application's window's PA, once it has one */
	_Atomic bool started, stop;
	_Atomic uint64_t lookups;
	_Atomic uint64_t found;  /* answers that found a window */
	/*
	 * Answers that differ from the last one at the same PA: the writer
	 * moved between two lookups. The writer goes on until there were
	 * enough, so that the two ran interleaved, not one after the other.
	 */
	_Atomic uint64_t flips;
};

/* What phys_page_size() may say at @pa: @size, or 0 while no window is there. @last: its last answer. */
static void check_at(struct race *r, uint64_t pa, uint64_t size, uint64_t *last)
{
	uint64_t got = phys_page_size(r->ps, pa_make(pa));
	uint64_t map = phys_map_page_size(r->ps, pa_make(pa));

	CHECK_MSG(got == 0 || got == size, "PA %#" PRIx64 ": page size %#" PRIx64 ", neither %#" PRIx64 " nor 0",
		  pa, got, size);
	CHECK_MSG(map == 0 || map == size, "PA %#" PRIx64 ": map page size %#" PRIx64 ", neither %#" PRIx64 " nor 0",
		  pa, map, size);
	atomic_fetch_add_explicit(&r->found, (got != 0) + (map != 0), memory_order_relaxed);
	if (got != *last)
		atomic_fetch_add_explicit(&r->flips, 1, memory_order_relaxed);
	*last = got;
	atomic_fetch_add_explicit(&r->lookups, 2, memory_order_relaxed);
}

static void *reader_main(void *arg)
{
	struct race *r = arg;
	uint64_t last[5] = { 0 };
	unsigned n = 0;

	atomic_store(&r->started, true);
	/* At least one round, however quick the writer: every reader asserts something. */
	do {
		uint64_t w = atomic_load(&r->w_pa);

		check_at(r, PA_A, SIZE_A, &last[0]);
		check_at(r, PA_A + SIZE_A - SZ_4K, SIZE_A, &last[1]);
		check_at(r, PA_B, SIZE_B, &last[2]);
		check_at(r, PA_B + (SZ_2M / 2), SIZE_B, &last[3]);
		if (w)
			check_at(r, w, os_page_size(), &last[4]);
		/* On a busy machine the writer may share this CPU: let it move now and then. */
		if (!(++n & 63))
			sched_yield();
	} while (!atomic_load(&r->stop));
	return NULL;
}

TEST(page_size_vs_reuse)
{
	struct phys_params p = { .limit = 64ull << 20 };
	/* Rounds of the writer, and flips the reader saw, at least: the two interleave, however scheduled. */
	unsigned rounds = TEST_TSAN ? 10000 : 30000;
	uint64_t min_flips = TEST_TSAN ? 300 : 1000;
	struct race r = { 0 };
	pthread_t reader;
	uint8_t *mem, *va;

	CHECK_OK(phys_create(&p, &r.ps));
	/* Never touched: the windows only name it. 2 MiB-aligned, so every window starts its granule. */
	mem = mmap(NULL, 2 * SZ_2M, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	CHECK(mem != MAP_FAILED);
	va = (uint8_t *)align_up((uintptr_t)mem, SZ_2M);
	CHECK_OK(pthread_create(&reader, NULL, reader_main, &r));
	while (!atomic_load(&r.started))
		sched_yield();
	for (unsigned i = 0; i < rounds || atomic_load_explicit(&r.flips, memory_order_relaxed) < min_flips; i++) {
		pa_t w;

		/*
		 * One window at a time: each removal hands its struct to the
		 * next add. A, then the application's, then B, then the
		 * application's again: the reader's struct turns from any of
		 * them into any other.
		 */
		CHECK_OK(phys_window_add_shared(r.ps, va, SZ_2M, SIZE_A, pa_make(PA_A)));
		CHECK_EQ(phys_page_size(r.ps, pa_make(PA_A)), SIZE_A);
		CHECK_OK(phys_window_remove(r.ps, pa_make(PA_A)));
		CHECK_OK(phys_window_add(r.ps, va, SZ_2M, 0, &w));
		CHECK_EQ(phys_page_size(r.ps, w), os_page_size());
		atomic_store(&r.w_pa, pa_val(w));
		CHECK_OK(phys_window_remove(r.ps, w));
		CHECK_OK(phys_window_add_shared(r.ps, va, SZ_2M, SIZE_B, pa_make(PA_B)));
		CHECK_EQ(phys_map_page_size(r.ps, pa_make(PA_B + (SZ_2M / 2))), SIZE_B);
		CHECK_OK(phys_window_remove(r.ps, pa_make(PA_B)));
		CHECK_OK(phys_window_add(r.ps, va, SZ_2M, 0, &w));
		atomic_store(&r.w_pa, pa_val(w));
		CHECK_OK(phys_window_remove(r.ps, w));
		/* Gone: nothing answers at their PAs any more. */
		CHECK_EQ(phys_page_size(r.ps, pa_make(PA_A)), 0);
		CHECK_EQ(phys_page_size(r.ps, w), 0);
	}
	atomic_store(&r.stop, true);
	CHECK_OK(pthread_join(reader, NULL));
	CHECK(atomic_load(&r.flips) >= min_flips);
	printf("# %" PRIu64 " lookups, %" PRIu64 " found a window, %" PRIu64 " changed answers\n",
	       atomic_load(&r.lookups), atomic_load(&r.found), atomic_load(&r.flips));
	munmap(mem, 2 * SZ_2M);
	phys_destroy(r.ps);
}

/*
 * The pointer lookups outside the epoch (phys_bus_ptr(): the mirror's map
 * calls, common buffers; phys_bus_map_outside(): a queue's rings), against
 * the same reuse. One struct plays four windows in turn, each onto memory
 * of its own so that a pointer says whose it is: a share at PA_A (va[0]),
 * an application's window (va[1]), a share at PA_B (va[2]), and another
 * process's memory (RVA, a remote window). At a window's PA a lookup may
 * answer that window's pointer with its reach, or nothing: a pointer into
 * another window's memory, or one window's pointer with another's reach,
 * mixes two.
 */
#define RVA (UINT64_C(0x7e0000000000)) /* another process's VA: never dereferenced */

struct ptr_race {
	struct phys_space *ps;
	uint8_t *va[3];
	/* Where the application's and the remote window were last put: the same PA, often (first fit). */
	_Atomic uint64_t app_pa, remote_pa;
	_Atomic bool started, stop;
	_Atomic uint64_t lookups, found, flips;
};

/* A window that may be at a PA: its memory, and how the CPU reaches it. */
struct ptr_want {
	uintptr_t va;
	uint8_t reach;
};

/* Whether @got (with @reach) is @pa of one of the @n windows in @w. */
static bool ptr_ok(const struct ptr_want *w, unsigned n, uint64_t pa, uintptr_t got, uint8_t reach)
{
	for (unsigned i = 0; i < n; i++)
		if (got == w[i].va + (pa & (SZ_2M - 1)) && reach == w[i].reach)
			return true;
	return false;
}

/*
 * One lookup of each kind at @pa: nothing, or one of the @n windows in @w
 * (the application's and the remote window often take turns at one PA).
 */
static void ptr_check(struct ptr_race *r, uint64_t pa, const struct ptr_want *w, unsigned n, uintptr_t *last)
{
	uint8_t got_reach = 0xff;
	uintptr_t ptr = (uintptr_t)phys_bus_ptr(r->ps, pa_make(pa));
	uintptr_t map = (uintptr_t)phys_bus_map_outside(r->ps, pa_make(pa), &got_reach);

	/* phys_bus_ptr() says no reach: any but a remote window's (another process's memory: NULL). */
	CHECK_MSG(!ptr || ptr_ok(w, n, pa, ptr, PHYS_REACH_OWN) || ptr_ok(w, n, pa, ptr, PHYS_REACH_FOREIGN),
		  "PA %#" PRIx64 ": bus pointer %#lx is no window's there", pa, (unsigned long)ptr);
	CHECK_MSG(!map || ptr_ok(w, n, pa, map, got_reach), "PA %#" PRIx64 ": mapped %#lx reach %u: no window's there",
		  pa, (unsigned long)map, (unsigned)got_reach);
	atomic_fetch_add_explicit(&r->found, (ptr != 0) + (map != 0), memory_order_relaxed);
	if (map != *last)
		atomic_fetch_add_explicit(&r->flips, 1, memory_order_relaxed);
	*last = map;
	atomic_fetch_add_explicit(&r->lookups, 2, memory_order_relaxed);
}

static void *ptr_reader_main(void *arg)
{
	struct ptr_race *r = arg;
	uintptr_t last[6] = { 0 };
	unsigned n = 0;
	const struct ptr_want a = { (uintptr_t)r->va[0], PHYS_REACH_OWN }, b = { (uintptr_t)r->va[2], PHYS_REACH_OWN };
	const struct ptr_want either[2] = { { (uintptr_t)r->va[1], PHYS_REACH_FOREIGN }, { RVA, PHYS_REACH_REMOTE } };

	atomic_store(&r->started, true);
	do {
		uint64_t app = atomic_load(&r->app_pa), remote = atomic_load(&r->remote_pa);

		ptr_check(r, PA_A, &a, 1, &last[0]);
		ptr_check(r, PA_A + SZ_2M - SZ_4K, &a, 1, &last[1]);
		ptr_check(r, PA_B + SZ_2M / 2, &b, 1, &last[2]);
		if (app)
			ptr_check(r, app, either, 2, &last[3]);
		if (remote) {
			ptr_check(r, remote, either, 2, &last[4]);
			ptr_check(r, remote + SZ_64K, either, 2, &last[5]);
		}
		if (!(++n & 63))
			sched_yield();
	} while (!atomic_load(&r->stop));
	return NULL;
}

TEST(bus_ptr_vs_reuse)
{
	struct phys_params p = { .limit = 64ull << 20 };
	unsigned rounds = TEST_TSAN ? 5000 : 20000;
	uint64_t min_flips = TEST_TSAN ? 300 : 1000;
	struct ptr_race r = { 0 };
	pthread_t reader;
	uint8_t *mem;
	int fd;

	CHECK_OK(phys_create(&p, &r.ps));
	/* Never touched: the windows only name it. 2 MiB-aligned, so every window starts its granule. */
	mem = mmap(NULL, 4 * SZ_2M, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	CHECK(mem != MAP_FAILED);
	for (unsigned i = 0; i < 3; i++)
		r.va[i] = (uint8_t *)align_up((uintptr_t)mem, SZ_2M) + i * SZ_2M;
	/* The remote window's file: never read here, only held while the window is on the bus. */
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	CHECK_OK(pthread_create(&reader, NULL, ptr_reader_main, &r));
	while (!atomic_load(&r.started))
		sched_yield();
	for (unsigned i = 0; i < rounds || atomic_load_explicit(&r.flips, memory_order_relaxed) < min_flips; i++) {
		uint8_t reach;
		pa_t w;

		/* One window at a time, each removal handing its struct to the next add. */
		CHECK_OK(phys_window_add_shared(r.ps, r.va[0], SZ_2M, SIZE_A, pa_make(PA_A)));
		CHECK(phys_bus_ptr(r.ps, pa_make(PA_A)) == r.va[0]);
		CHECK_OK(phys_window_remove(r.ps, pa_make(PA_A)));
		CHECK_OK(phys_window_add(r.ps, r.va[1], SZ_2M, 0, &w));
		CHECK(phys_bus_map_outside(r.ps, w, &reach) == r.va[1] && reach == PHYS_REACH_FOREIGN);
		atomic_store(&r.app_pa, pa_val(w));
		CHECK_OK(phys_window_remove(r.ps, w));
		CHECK_OK(phys_window_add_shared(r.ps, r.va[2], SZ_2M, SIZE_B, pa_make(PA_B)));
		CHECK_OK(phys_window_remove(r.ps, pa_make(PA_B)));
		CHECK_OK(phys_window_add_remote(r.ps, fd, RVA, SZ_2M, &w));
		CHECK(phys_bus_ptr(r.ps, w) == NULL);
		CHECK(phys_bus_map_outside(r.ps, w, &reach) == (void *)(uintptr_t)RVA && reach == PHYS_REACH_REMOTE);
		atomic_store(&r.remote_pa, pa_val(w));
		CHECK_OK(phys_window_remove(r.ps, w));
		/* Gone: nothing answers at their PAs any more. */
		CHECK(phys_bus_ptr(r.ps, pa_make(PA_A)) == NULL);
		CHECK(phys_bus_map_outside(r.ps, w, &reach) == NULL);
	}
	atomic_store(&r.stop, true);
	CHECK_OK(pthread_join(reader, NULL));
	CHECK(atomic_load(&r.flips) >= min_flips);
	printf("# %" PRIu64 " lookups, %" PRIu64 " found a window, %" PRIu64 " changed answers\n",
	       atomic_load(&r.lookups), atomic_load(&r.found), atomic_load(&r.flips));
	close(fd);
	munmap(mem, 4 * SZ_2M);
	phys_destroy(r.ps);
}

int main(void)
{
	test_init();
	RUN(page_size_vs_reuse);
	RUN(bus_ptr_vs_reuse);
	return 0;
}
