/* SPDX-License-Identifier: MIT */
/*
 * test_phys.c - the physical address space: banks, the buddy allocator
 * (orders, merging, alignment, boundaries, the run scan for what buddy
 * blocks cannot give), scattered allocation, the limit, zero tracking, bank
 * release, the bus, and host PAs on hugepages (root).
 */
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/compiler.h"
#include "os/hugepage.h"
#include "os/pagemap.h"
#include "phys/phys.h"
#include "harness.h"

#define PG 4096

static struct phys_space *space(uint64_t limit, bool host_pa)
{
	struct phys_params p = { .limit = limit, .host_pa = host_pa,
				 .read_hpa = os_pagemap_probe() == 1 };
	struct phys_space *ps;

	CHECK_OK(phys_create(&p, &ps));
	return ps;
}

static struct iovm_phys_arena_stats arena_stats(struct phys_space *ps, unsigned i)
{
	struct iovm_phys_stats st;

	CHECK_OK(phys_stats(ps, &st));
	CHECK(i < st.nr_arenas);
	return st.arenas[i];
}

static pa_t alloc(struct phys_arena *a, uint64_t n, uint64_t align, uint64_t bound, bool no_grow)
{
	struct phys_req r = { .nframes = n, .align = align, .bound = bound, .no_grow = no_grow };
	pa_t pa;

	CHECK_OK(phys_alloc_contig(a, &r, &pa, NULL));
	return pa;
}

TEST(buddy_basics)
{
	struct phys_space *ps = space(64 << 20, false);
	struct phys_arena *a, *again;
	struct phys_req r = { .nframes = 1, .align = 1 };
	pa_t pa, pb;
	bool zero;

	CHECK_OK(phys_arena_get(ps, PG, -1, &a));
	CHECK_OK(phys_arena_get(ps, PG, -1, &again));
	CHECK(a == again);
	CHECK_EQ(phys_arena_get(ps, 3 * PG, -1, &again), -EINVAL);
	CHECK_EQ(phys_arena_page_size(a), PG);

	/* The first allocation adds a 2 MiB bank; fresh frames are known zero. */
	CHECK_OK(phys_alloc_contig(a, &r, &pa, &zero));
	CHECK(zero);
	CHECK(pa_val(pa) >= PHYS_EMU_LOW);
	CHECK_EQ(arena_stats(ps, 0).total, 2 << 20);
	CHECK_EQ(arena_stats(ps, 0).free, (2 << 20) - PG);

	/* 3 frames: an order-2 block with its tail given back. */
	pb = alloc(a, 3, 1, 0, true);
	CHECK_EQ(arena_stats(ps, 0).free, (2 << 20) - 4 * PG);
	CHECK_OK(phys_free(a, pb, 3, false));
	/* Freed and written: no longer known zero. */
	pb = alloc(a, 3, 1, 0, true);
	CHECK_OK(phys_free(a, pb, 3, true));

	/* Double free and freeing what was never allocated are refused. */
	CHECK_OK(phys_free(a, pa, 1, false));
	CHECK_EQ(phys_free(a, pa, 1, false), -EINVAL);
	CHECK_EQ(phys_free(a, pa_make(0x1000), 1, false), -EINVAL);
	CHECK_EQ(phys_free(a, pa_add(pa, 1), 1, false), -EINVAL);
	CHECK_EQ(phys_free(a, pa, 0, false), -EINVAL);

	/* Everything merged back into one block of the whole bank (512 frames: order 9). */
	CHECK_EQ(arena_stats(ps, 0).free_blocks[9], 1);
	for (unsigned o = 0; o < 9; o++)
		CHECK_EQ(arena_stats(ps, 0).free_blocks[o], 0);
	CHECK_EQ(arena_stats(ps, 0).largest_free_run, 2 << 20);

	r.nframes = 0;
	CHECK_EQ(phys_alloc_contig(a, &r, &pa, NULL), -EINVAL);
	r = (struct phys_req){ .nframes = 4, .align = 3 };
	CHECK_EQ(phys_alloc_contig(a, &r, &pa, NULL), -EINVAL);
	r = (struct phys_req){ .nframes = 8, .align = 1, .bound = 4 };
	CHECK_EQ(phys_alloc_contig(a, &r, &pa, NULL), -EINVAL);
	phys_destroy(ps);
}

TEST(alignment_and_boundary)
{
	struct phys_space *ps = space(64 << 20, false);
	struct phys_arena *a;
	pa_t p[64];

	CHECK_OK(phys_arena_get(ps, PG, -1, &a));
	for (int i = 0; i < 64; i++) {
		uint64_t n = 1 + (uint64_t)i % 7, align = UINT64_C(1) << (i % 5), bound = 16;

		p[i] = alloc(a, n, align, bound, false);
		CHECK(is_aligned(pa_val(p[i]), align * PG));
		CHECK_EQ(pa_val(p[i]) / (bound * PG), (pa_val(p[i]) + n * PG - 1) / (bound * PG));
	}
	for (int i = 0; i < 64; i++)
		CHECK_OK(phys_free(a, p[i], 1 + (uint64_t)i % 7, false));
	CHECK_EQ(arena_stats(ps, 0).free, arena_stats(ps, 0).total);
	phys_destroy(ps);
}

TEST(run_scan_finds_unaligned_runs)
{
	struct phys_space *ps = space(64 << 20, false);
	struct phys_arena *a;
	pa_t f[512], base, got;

	CHECK_OK(phys_arena_get(ps, PG, -1, &a));
	for (int i = 0; i < 512; i++)
		f[i] = alloc(a, 1, 1, 0, i > 0);
	base = f[0];
	for (int i = 1; i < 512; i++)
		base = pa_val(f[i]) < pa_val(base) ? f[i] : base;
	/* Free frames 5, 6, 7: buddy blocks {5} and {6,7}, no order-2 block anywhere. */
	for (int i = 0; i < 512; i++) {
		uint64_t idx = (pa_val(f[i]) - pa_val(base)) / PG;

		if (idx >= 5 && idx <= 7)
			CHECK_OK(phys_free(a, f[i], 1, false));
	}
	CHECK_EQ(arena_stats(ps, 0).free_blocks[2], 0);
	CHECK_EQ(arena_stats(ps, 0).largest_free_run, 3 * PG);
	/* The scan finds the three adjacent frames across the block boundary. */
	got = alloc(a, 3, 1, 0, true);
	CHECK_EQ(pa_val(got), pa_val(base) + 5 * PG);
	/* And nothing is left for a fourth. */
	{
		struct phys_req r = { .nframes = 1, .align = 1, .no_grow = true };
		pa_t x;

		CHECK_EQ(phys_alloc_contig(a, &r, &x, NULL), -ENOMEM);
	}
	phys_destroy(ps);
}

TEST(scattered)
{
	struct phys_space *ps = space(64 << 20, false);
	struct phys_extent ext[64];
	struct phys_arena *a;
	pa_t f[512];
	unsigned n;
	uint64_t total = 0;

	CHECK_OK(phys_arena_get(ps, PG, -1, &a));
	for (int i = 0; i < 512; i++)
		f[i] = alloc(a, 1, 1, 0, i > 0);
	/* Free every other frame: 256 free frames, no two adjacent. */
	for (int i = 0; i < 512; i += 2)
		CHECK_OK(phys_free(a, f[i], 1, false));
	CHECK_EQ(phys_alloc_scattered(a, 100, true, ext, 64, &n), -ENOMEM); /* needs 100 extents */
	CHECK_EQ(arena_stats(ps, 0).free, 256 * PG);			      /* all or nothing */
	CHECK_OK(phys_alloc_scattered(a, 60, true, ext, 64, &n));
	CHECK_EQ(n, 60);
	for (unsigned i = 0; i < n; i++)
		total += ext[i].nframes;
	CHECK_EQ(total, 60);
	/* Beyond what is free, without growing: refused; with growing: a new bank. */
	CHECK_EQ(phys_alloc_scattered(a, 300, true, ext, 64, &n), -ENOMEM);
	CHECK_OK(phys_alloc_scattered(a, 300, false, ext, 64, &n));
	total = 0;
	for (unsigned i = 0; i < n; i++)
		total += ext[i].nframes;
	CHECK_EQ(total, 300);
	CHECK_EQ(arena_stats(ps, 0).nr_banks, 2);
	CHECK_EQ(phys_alloc_scattered(a, 0, false, ext, 64, &n), -EINVAL);
	phys_destroy(ps);
}

TEST(limit_and_release)
{
	struct phys_space *ps = space(8 << 20, false);
	struct iovm_phys_stats st;
	struct phys_arena *a;
	struct phys_req r = { .nframes = 512, .align = 1 };
	pa_t p[4], x;

	CHECK_OK(phys_arena_get(ps, PG, -1, &a));
	for (int i = 0; i < 4; i++)
		CHECK_OK(phys_alloc_contig(a, &r, &p[i], NULL));
	/* 8 MiB is the limit: the fifth 2 MiB cannot be had. */
	CHECK_EQ(phys_alloc_contig(a, &r, &x, NULL), -ENOMEM);
	CHECK_OK(phys_stats(ps, &st));
	CHECK_EQ(st.total, 8 << 20);
	CHECK(st.grow_failures >= 1);
	/* Banks go back only when all their frames are free. */
	CHECK_OK(phys_free(a, p[0], 512, false));
	CHECK_OK(phys_free(a, p[1], 256, false));
	CHECK_EQ(phys_trim(ps), 2 << 20);
	CHECK_OK(phys_stats(ps, &st));
	CHECK_EQ(st.banks_released, 1);
	CHECK_EQ(st.total, 6 << 20);
	/* Its PAs left the bus. */
	CHECK(phys_bus_ptr(ps, p[0]) == NULL);
	CHECK(phys_bus_ptr(ps, p[2]) != NULL);
	/* Room again for a bank. */
	CHECK_OK(phys_alloc_contig(a, &r, &x, NULL));
	CHECK_OK(phys_stats(ps, &st));
	CHECK_EQ(st.total, 8 << 20);
	CHECK(phys_bus_ptr(ps, x) != NULL);
	phys_destroy(ps);
}

TEST(bus_and_backing)
{
	struct phys_space *ps = space(64 << 20, false);
	struct phys_backing b;
	struct phys_arena *a;
	uint8_t *bus, *map;
	pa_t pa;

	CHECK_OK(phys_arena_get(ps, PG, -1, &a));
	pa = alloc(a, 16, 1, 0, false);
	bus = phys_bus_ptr(ps, pa_add(pa, 5000));
	CHECK(bus != NULL);
	bus[0] = 0xa5;
	CHECK_OK(phys_backing(ps, pa_add(pa, 5000), &b));
	CHECK_EQ(b.page_size, PG);
	CHECK(b.len >= 16 * PG - 5000);
	/* The memfd at the backing offset is the same memory. */
	map = mmap(NULL, PG, PROT_READ, MAP_SHARED, b.fd, (off_t)align_down(b.offset, PG));
	CHECK(map != MAP_FAILED);
	CHECK_EQ(map[b.offset % PG], 0xa5);
	munmap(map, PG);
	CHECK_EQ(phys_backing(ps, pa_make(1ull << 46), &b), -ENOENT);
	CHECK(phys_bus_ptr(ps, pa_make(0)) == NULL);
	CHECK_EQ(phys_page_size(ps, pa), PG);
	CHECK_EQ(phys_page_size(ps, pa_make(0)), 0);
	phys_destroy(ps);
}

static uint64_t free_hugepages(void)
{
	uint64_t total = 0, free = 0;

	if (!os_hugepage_supported(SZ_2M) || os_hugepage_pool(SZ_2M, -1, &total, &free))
		return 0;
	return free;
}

/*
 * @n hugepage frames, or false when the pool had none to give: it is the
 * machine's, and other processes may take its free pages after the test
 * looked.
 */
static bool alloc_huge(struct phys_arena *a, uint64_t n, pa_t *pa)
{
	struct phys_req r = { .nframes = n, .align = 1 };
	int ret = phys_alloc_contig(a, &r, pa, NULL);

	if (ret == -ENOMEM)
		return false;
	CHECK_OK(ret);
	return true;
}

/* Hugepage banks, emulated PA: host PAs are recorded where pagemap shows them. */
TEST(hugepages_emulated)
{
	struct phys_space *ps;
	struct phys_arena *a;
	hpa_t h;
	pa_t pa;

	if (free_hugepages() < 4) {
		printf("# no free 2 MiB hugepages: hugepage banks not exercised here\n");
		return;
	}
	ps = space(64 << 20, false);
	CHECK_OK(phys_arena_get(ps, SZ_2M, -1, &a));
	if (!alloc_huge(a, 2, &pa)) {
		printf("# the free hugepages went to other processes: hugepage banks not exercised here\n");
		phys_destroy(ps);
		return;
	}
	CHECK(is_aligned(pa_val(pa), SZ_2M));
	CHECK_EQ(phys_page_size(ps, pa), SZ_2M);
	if (os_pagemap_probe() == 1) {
		CHECK_OK(os_pagemap_read(phys_bus_ptr(ps, pa), 1, SZ_2M, &h));
		CHECK(hpa_eq(h, phys_hpa(ps, pa)));
		CHECK(hpa_eq(hpa_add(h, 12345), phys_hpa(ps, pa_add(pa, 12345))));
	} else {
		CHECK(!hpa_valid(phys_hpa(ps, pa)));
	}
	CHECK_OK(phys_free(a, pa, 2, false));
	CHECK_EQ(phys_trim(ps), 2 * SZ_2M);
	phys_destroy(ps);
}

/* Host-PA mode: every hugepage sits at its host PA; contiguity is the machine's. */
TEST(host_pa_mode)
{
	struct iovm_phys_stats st;
	struct phys_space *ps;
	struct phys_arena *a;
	pa_t pa[8];
	hpa_t h;

	if (os_pagemap_probe() != 1 || free_hugepages() < 8) {
		printf("# host-PA mode needs root and free hugepages: not exercised here\n");
		return;
	}
	ps = space(64 << 20, true);
	CHECK_OK(phys_arena_get(ps, SZ_2M, -1, &a));
	for (int i = 0; i < 8; i++) {
		if (!alloc_huge(a, 1, &pa[i])) {
			printf("# the free hugepages went to other processes: host-PA mode not exercised here\n");
			while (i--)
				CHECK_OK(phys_free(a, pa[i], 1, false));
			phys_destroy(ps);
			return;
		}
		CHECK_OK(os_pagemap_read(phys_bus_ptr(ps, pa[i]), 1, SZ_2M, &h));
		CHECK_EQ(pa_val(pa[i]), hpa_val(h));
		CHECK(hpa_eq(phys_hpa(ps, pa[i]), h));
	}
	/* The largest run the allocator reports is one the machine really has. */
	CHECK_OK(phys_stats(ps, &st));
	CHECK(st.host_pa);
	for (int i = 0; i < 8; i++)
		CHECK_OK(phys_free(a, pa[i], 1, false));
	phys_trim(ps);
	/* 4 KiB memory in host-PA mode lives in the emulated window above every host PA. */
	CHECK_OK(phys_arena_get(ps, PG, -1, &a));
	pa[0] = alloc(a, 1, 1, 0, false);
	CHECK(pa_val(pa[0]) >= PHYS_EMU_HIGH);
	CHECK_OK(phys_free(a, pa[0], 1, false));
	phys_destroy(ps);
}

TEST(foreign_windows)
{
	struct phys_space *ps = space(64 << 20, false);
	uint8_t *buf = mmap(NULL, 8 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *aligned = (uint8_t *)align_up((uintptr_t)buf, SZ_2M);
	struct phys_backing back;
	uint8_t reach = PHYS_REACH_OWN;
	pa_t pa, pa2;

	CHECK(buf != MAP_FAILED);
	CHECK(!phys_has_windows(ps));
	/* Bad arguments. */
	CHECK_EQ(phys_window_add(ps, buf + 1, PG, 0, &pa), -EINVAL);
	CHECK_EQ(phys_window_add(ps, buf, PG + 1, 0, &pa), -EINVAL);
	CHECK_EQ(phys_window_add(ps, buf, 0, 0, &pa), -EINVAL);
	CHECK_EQ(phys_window_add(ps, NULL, PG, 0, &pa), -EINVAL);
	CHECK_EQ(phys_window_add(ps, buf, PG, 2, &pa), -EINVAL); /* an unknown flag */
	/* Three pages, 12 KiB into a granule: the PA keeps the VA's offset within 2 MiB. */
	CHECK_OK(phys_window_add(ps, aligned + 3 * PG, 3 * PG, 0, &pa));
	CHECK(phys_has_windows(ps));
	CHECK_EQ(pa_val(pa) & (SZ_2M - 1), 3 * PG);
	CHECK(phys_bus_ptr(ps, pa) == aligned + 3 * PG);
	CHECK(phys_bus_map(ps, pa_add(pa, 5000), &reach) == aligned + 3 * PG + 5000);
	CHECK_EQ(reach, PHYS_REACH_FOREIGN);
	CHECK_EQ(phys_page_size(ps, pa), (uint64_t)os_page_size());
	CHECK_EQ(phys_backing(ps, pa, &back), -ENOENT);
	/* Only the window's own bytes are on the bus, not the rest of its granule. */
	CHECK(phys_bus_ptr(ps, pa_add(pa, 3 * PG)) == NULL);
	CHECK(phys_bus_ptr(ps, pa_make(pa_val(pa) - 1)) == NULL);
	/* A 2 MiB-aligned VA gets a 2 MiB-aligned PA; windows do not overlap. */
	CHECK_EQ(phys_map_page_size(ps, pa), (uint64_t)os_page_size()); /* anyone may map it */
	/* Windows take PAs of their own, apart from the banks': a mappable one's, then a registration's. */
	CHECK(pa_val(pa) >= PHYS_WINDOWS_BASE && pa_val(pa) < PHYS_WINDOWS_BASE + PHYS_WINDOWS_SIZE);
	CHECK_OK(phys_window_add(ps, aligned + SZ_2M, SZ_2M + PG, PHYS_WINDOW_PRIVATE, &pa2));
	CHECK(pa_val(pa2) >= PHYS_PRIVATE_WINDOWS_BASE &&
	      pa_val(pa2) < PHYS_PRIVATE_WINDOWS_BASE + PHYS_PRIVATE_WINDOWS_SIZE);
	/* A registration's alone: on the bus as any window, but not for a mapping by hand. */
	CHECK_EQ(phys_page_size(ps, pa2), (uint64_t)os_page_size());
	CHECK_EQ(phys_map_page_size(ps, pa2), 0);
	CHECK_EQ(phys_map_page_size(ps, pa_add(pa2, SZ_2M)), 0);
	CHECK(is_aligned(pa_val(pa2), SZ_2M));
	CHECK(phys_bus_ptr(ps, pa_add(pa2, SZ_2M)) == aligned + 2 * SZ_2M);
	CHECK(phys_bus_ptr(ps, pa_add(pa2, SZ_2M + PG)) == NULL);
	/* Removed: off the bus; a second removal, or of a PA inside, finds nothing. */
	CHECK_EQ(phys_window_remove(ps, pa_add(pa, PG)), -ENOENT);
	CHECK_OK(phys_window_remove(ps, pa));
	CHECK(phys_bus_ptr(ps, pa) == NULL);
	CHECK_EQ(phys_window_remove(ps, pa), -ENOENT);
	CHECK_EQ(phys_window_remove(ps, PA_INVALID), -EINVAL);
	/* Many come and go: their structs and PAs are reused. */
	for (int i = 0; i < 1000; i++) {
		CHECK_OK(phys_window_add(ps, buf, PG, 0, &pa));
		CHECK(phys_bus_ptr(ps, pa) == buf);
		CHECK_OK(phys_window_remove(ps, pa));
	}
	CHECK_OK(phys_window_remove(ps, pa2));
	/* A registration's PAs, let go, come back to registrations only: never to a mappable window. */
	{
		pa_t again, mine;

		CHECK_OK(phys_window_add(ps, aligned + SZ_2M, SZ_2M + PG, 0, &again));
		CHECK(pa_val(again) / SZ_2M != pa_val(pa2) / SZ_2M);
		CHECK_OK(phys_window_add(ps, aligned + 2 * SZ_2M, PG, PHYS_WINDOW_PRIVATE, &mine));
		CHECK(pa_val(mine) >= PHYS_PRIVATE_WINDOWS_BASE);
		CHECK_OK(phys_window_remove(ps, mine));
		CHECK_OK(phys_window_remove(ps, again));
	}
	CHECK(!phys_has_windows(ps));
	munmap(buf, 8 << 20);
	phys_destroy(ps);
}

/* Another process's memory: on the bus by its memory file, never by a pointer of ours. */
TEST(remote_windows)
{
	struct phys_space *ps = space(64 << 20, false);
	uint8_t reach = PHYS_REACH_OWN;
	uint64_t rva = UINT64_C(0x7f1234560000);
	int fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
	pa_t pa, local;
	uint8_t *buf = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(fd >= 0 && buf != MAP_FAILED);
	/* Bad arguments: no file, unaligned, empty, wrapping, past any user address. */
	CHECK_EQ(phys_window_add_remote(ps, -1, rva, PG, &pa), -EINVAL);
	CHECK_EQ(phys_window_add_remote(ps, fd, rva + 1, PG, &pa), -EINVAL);
	CHECK_EQ(phys_window_add_remote(ps, fd, rva, PG - 1, &pa), -EINVAL);
	CHECK_EQ(phys_window_add_remote(ps, fd, rva, 0, &pa), -EINVAL);
	CHECK_EQ(phys_window_add_remote(ps, fd, 0, PG, &pa), -EINVAL);
	CHECK_EQ(phys_window_add_remote(ps, fd, UINT64_MAX & ~(uint64_t)(PG - 1), 2 * PG, &pa), -EINVAL);
	CHECK_EQ(phys_window_add_remote(ps, fd, UINT64_C(1) << 57, PG, &pa), -EINVAL);
	CHECK_EQ(phys_window_add_remote(NULL, fd, rva, PG, &pa), -EINVAL);
	CHECK_EQ(phys_window_add_remote(ps, fd, rva, PG, NULL), -EINVAL);
	/* Any address of the other process: its bus pointer is that address, reached by the file. */
	CHECK_OK(phys_window_add_remote(ps, fd, rva, 2 * PG, &pa));
	CHECK_EQ(pa_val(pa) & (SZ_2M - 1), rva & (SZ_2M - 1));
	CHECK(phys_bus_ptr(ps, pa) == NULL);
	CHECK(phys_bus_map(ps, pa_add(pa, 100), &reach) == (void *)(uintptr_t)(rva + 100));
	CHECK_EQ(reach, PHYS_REACH_REMOTE);
	CHECK_EQ(phys_remote_fd(ps, pa_add(pa, PG)), fd);
	CHECK_EQ(phys_remote_fd(ps, pa_add(pa, 2 * PG)), -1);
	/* Not counted as foreign memory under a guard: its accesses are system calls. */
	CHECK(!phys_has_windows(ps));
	/* A local window beside it is no remote one. */
	CHECK_OK(phys_window_add(ps, buf, PG, 0, &local));
	CHECK_EQ(phys_remote_fd(ps, local), -1);
	phys_bus_map(ps, local, &reach);
	CHECK_EQ(reach, PHYS_REACH_FOREIGN);
	CHECK_OK(phys_window_remove(ps, local));
	/* Removed: off the bus, the file still the caller's; its struct reused as no remote window. */
	CHECK_OK(phys_window_remove(ps, pa));
	CHECK_EQ(phys_remote_fd(ps, pa), -1);
	CHECK(fcntl(fd, F_GETFD) >= 0);
	CHECK_OK(phys_window_add(ps, buf, PG, 0, &local));
	CHECK_EQ(phys_remote_fd(ps, local), -1);
	CHECK(phys_bus_ptr(ps, local) == buf);
	CHECK_OK(phys_window_remove(ps, local));
	/* Left on the bus: destroying the space frees it and leaves the file alone. */
	CHECK_OK(phys_window_add_remote(ps, fd, rva, PG, &pa));
	phys_destroy(ps);
	CHECK(fcntl(fd, F_GETFD) >= 0);
	close(fd);
	munmap(buf, PG);
}

int main(void)
{
	test_init();
	RUN(buddy_basics);
	RUN(alignment_and_boundary);
	RUN(run_scan_finds_unaligned_runs);
	RUN(scattered);
	RUN(limit_and_release);
	RUN(bus_and_backing);
	RUN(remote_windows);
	RUN(hugepages_emulated);
	RUN(host_pa_mode);
	RUN(foreign_windows);
	return 0;
}
