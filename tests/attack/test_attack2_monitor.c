/* SPDX-License-Identifier: MIT */
/*
 * test_attack2_monitor.c - attacks on reg.h's monitor promise, from the
 * header and README alone: "once the application's call has returned no
 * iovm_rcache_get() hits what it replaced and no iovm_mr_query() calls it
 * valid", and devices never reach it through an old key. Partial ranges,
 * page edges, munmap, MAP_FIXED, MADV_DONTNEED_LOCKED, mremap shrink, grow,
 * move and DONTUNMAP, glibc free(), fork with a child touching its copy,
 * and threads doing it at once; in loops.
 */
#include "attack2.h"

#include <errno.h>
#include <malloc.h>
#include <sys/resource.h>
#include <sys/wait.h>

#ifndef MADV_DONTNEED_LOCKED
#define MADV_DONTNEED_LOCKED 24
#endif
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

static struct rig R;
static struct iovm_mr *SRC_MR;
static uint8_t *SRC; /* 16 pages of 0x5c, registered read-only */

static uint32_t skey(void)
{
	return mr_info(SRC_MR).lkey;
}

static uint64_t valid_pages(struct iovm_mr *mr)
{
	return mr_info(mr).valid_pages;
}

/* A device write through @key at @dst: must not land. */
static void write_refused(uint8_t *dst, uint32_t key, size_t len, uint8_t was, const char *what)
{
	struct iovm_completion c = kcopy(&R, dst, key, SRC, skey(), (uint32_t)len);

	EXPECT_MSG(c.status != IOVM_STATUS_SUCCESS, "%s: a device write through the old key landed", what);
	EXPECT_MSG(all_bytes(dst, len, was), "%s: the new memory changed under an old key", what);
}

/*
 * Map [at, at+len) again after the test made it a hole. Another thread's
 * mmap() (iovm's, a sanitizer's) may have taken the hole meanwhile: then
 * it is not the test's to replace, and the round is lost (its memory left
 * mapped, not unmapped from under its new owner).
 */
static bool take_back(void *at, size_t len)
{
	void *p = mmap(at, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

	if (p == at)
		return true;
	CHECK(p == MAP_FAILED && errno == EEXIST);
	return false;
}

/* Lost rounds are not failures; all of them lost would test nothing. */
static void rounds_lost(const char *name, unsigned lost, unsigned rounds)
{
	if (lost)
		printf("# %s: %u of %u rounds lost to another mapping in a hole\n", name, lost, rounds);
	CHECK_MSG(lost < rounds, "%s: every round lost its hole to another mapping", name);
}

/*
 * munmap of one page at a time, at each edge and in the middle, then
 * mmap at the same address: the old MR says the page is invalid the moment
 * munmap returns, a write through its key does not reach the new page, and
 * the rest of the MR stays valid and usable.
 */
TEST(munmap_partial_loop)
{
	enum { N = 5, ROUNDS = 60 };
	unsigned lost = 0;

	for (unsigned i = 0; i < ROUNDS; i++) {
		uint8_t *p = anon(N * PG);
		struct iovm_mr *mr;
		unsigned hole = i % N;
		uint32_t acc = IOVM_ACCESS_LOCAL_WRITE | (i & 1 ? IOVM_ACCESS_ON_DEMAND : 0);
		uint32_t key;

		memset(p, 0x10, N * PG);
		/* Odd edges: start 1 byte in, end 1 byte short. */
		CHECK_OK(iovm_mr_reg(R.dom, p + 1, N * PG - 2, acc, &mr));
		if (acc & IOVM_ACCESS_ON_DEMAND)
			CHECK_OK(iovm_mr_advise(mr, p + 1, N * PG - 2, IOVM_ADVISE_WRITE));
		EXPECT_EQ(valid_pages(mr), N);
		key = mr_info(mr).lkey;
		CHECK_OK(munmap(p + hole * PG, PG));
		EXPECT_MSG(valid_pages(mr) == N - 1, "round %u: %llu valid pages after munmap of one",
			   i, (unsigned long long)valid_pages(mr));
		if (!take_back(p + hole * PG, PG)) {
			CHECK_OK(iovm_mr_dereg(mr));
			lost++;
			continue;
		}
		memset(p + hole * PG, 0x77, PG);
		EXPECT(valid_pages(mr) == N - 1);
		/*
		 * Pinned only: an on-demand MR follows the address space, and
		 * faults in what is mapped into its hole later (reg.h: "for an
		 * on-demand MR, also when memory mapped into one of its holes
		 * since first faults in").
		 */
		if (!(acc & IOVM_ACCESS_ON_DEMAND))
			write_refused(p + hole * PG + (hole ? 0 : 1), key, 64, 0x77, "munmap+mmap");
		/* The other pages stay usable through the key. */
		{
			unsigned other = (hole + 1) % N;
			struct iovm_completion c = kcopy(&R, p + other * PG + 8, key, SRC, skey(), 64);

			EXPECT_EQ(c.status, IOVM_STATUS_SUCCESS);
			EXPECT(all_bytes(p + other * PG + 8, 64, 0x5c));
		}
		/* The new memory registers whole. */
		{
			struct iovm_mr *m2;

			CHECK_OK(iovm_mr_reg(R.dom, p + hole * PG, PG, IOVM_ACCESS_LOCAL_WRITE, &m2));
			EXPECT_EQ(valid_pages(m2), 1);
			CHECK_OK(iovm_mr_dereg(m2));
		}
		CHECK_OK(iovm_mr_dereg(mr));
		munmap(p, N * PG);
	}
	rounds_lost("munmap_partial_loop", lost, ROUNDS);
}

/* mmap MAP_FIXED over the middle, and MADV_DONTNEED_LOCKED of a page. */
TEST(map_fixed_and_dontneed_locked)
{
	for (unsigned i = 0; i < 40; i++) {
		uint8_t *p = anon(4 * PG);
		struct iovm_mr *mr;
		uint32_t key;

		memset(p, 0x10, 4 * PG);
		CHECK_OK(iovm_mr_reg(R.dom, p, 4 * PG, IOVM_ACCESS_LOCAL_WRITE, &mr));
		key = mr_info(mr).lkey;
		CHECK(mmap(p + PG, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
			   -1, 0) == p + PG);
		EXPECT_MSG(valid_pages(mr) == 3, "round %u: MAP_FIXED: %llu valid", i,
			   (unsigned long long)valid_pages(mr));
		write_refused(p + PG, key, 128, 0, "MAP_FIXED");
		/* A locked range refuses plain DONTNEED; DONTNEED_LOCKED discards and invalidates. */
		EXPECT(madvise(p + 3 * PG, PG, MADV_DONTNEED) != 0);
		if (madvise(p + 3 * PG, PG, MADV_DONTNEED_LOCKED) == 0) {
			EXPECT_MSG(valid_pages(mr) == 2, "round %u: DONTNEED_LOCKED: %llu valid", i,
				   (unsigned long long)valid_pages(mr));
			write_refused(p + 3 * PG + 100, key, 64, 0, "DONTNEED_LOCKED");
		}
		EXPECT(all_bytes(p, PG, 0x10));
		CHECK_OK(iovm_mr_dereg(mr));
		munmap(p, 4 * PG);
	}
}

/*
 * mremap: shrink takes the tail away; a move (MAYMOVE|FIXED) takes all;
 * DONTUNMAP of part takes the moved pages away (the source is new, empty
 * memory) and keeps the rest valid and locked.
 */
TEST(mremap_kinds)
{
	unsigned lost = 0;

	for (unsigned i = 0; i < 20; i++) {
		uint8_t *p = anon(8 * PG), *q;
		struct iovm_mr *mr;
		uint32_t key;

		memset(p, 0x10, 8 * PG);
		CHECK_OK(iovm_mr_reg(R.dom, p, 8 * PG, IOVM_ACCESS_LOCAL_WRITE, &mr));
		key = mr_info(mr).lkey;
		/* shrink to 5 pages */
		CHECK(mremap(p, 8 * PG, 5 * PG, 0) == p);
		EXPECT_MSG(valid_pages(mr) == 5, "shrink: %llu valid", (unsigned long long)valid_pages(mr));
		if (!take_back(p + 5 * PG, 3 * PG)) {
			CHECK_OK(iovm_mr_dereg(mr));
			lost++;
			continue;
		}
		write_refused(p + 6 * PG, key, 64, 0, "mremap shrink");
		/* grow in place again, if the kernel can: the grown part is new memory */
		CHECK_OK(munmap(p + 5 * PG, 3 * PG));
		if (mremap(p, 5 * PG, 8 * PG, 0) == p) {
			EXPECT(valid_pages(mr) == 5);
			write_refused(p + 7 * PG, key, 64, 0, "mremap grow");
		} else if (!take_back(p + 5 * PG, 3 * PG)) {
			CHECK_OK(iovm_mr_dereg(mr));
			lost++;
			continue;
		}
		/* DONTUNMAP of pages 1..2 */
		q = anon(2 * PG);
		if (mremap(p + PG, 2 * PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, q) == q) {
			EXPECT(all_bytes(q, 2 * PG, 0x10));
			EXPECT_MSG(valid_pages(mr) == 3, "DONTUNMAP: %llu valid",
				   (unsigned long long)valid_pages(mr));
			write_refused(p + PG + 8, key, 64, 0, "DONTUNMAP source");
			EXPECT(all_bytes(q, 2 * PG, 0x10));
			/* Page 0 and 3, 4 are still locked: DONTNEED is refused. */
			EXPECT(madvise(p + 3 * PG, PG, MADV_DONTNEED) != 0);
			{
				struct iovm_completion c = kcopy(&R, p + 4 * PG, key, SRC, skey(), 64);

				EXPECT_EQ(c.status, IOVM_STATUS_SUCCESS);
				EXPECT(all_bytes(p + 4 * PG, 64, 0x5c));
			}
		}
		munmap(q, 2 * PG);
		/* move page 0 away (a vma of its own or not: one page moves) */
		{
			uint64_t v = valid_pages(mr);

			q = anon(PG);
			CHECK(mremap(p, PG, PG, MREMAP_MAYMOVE | MREMAP_FIXED, q) == q);
			EXPECT_MSG(valid_pages(mr) == v - 1, "move: %llu valid of %llu",
				   (unsigned long long)valid_pages(mr), (unsigned long long)v);
			if (!take_back(p, PG)) {
				CHECK_OK(iovm_mr_dereg(mr));
				munmap(q, PG);
				lost++;
				continue;
			}
			write_refused(p, key, 64, 0, "mremap move");
		}
		CHECK_OK(iovm_mr_dereg(mr));
		munmap(q, PG);
		munmap(p, 8 * PG);
	}
	rounds_lost("mremap_kinds", lost, 20);
}

/*
 * README: glibc's free() of a large block is served: free()+malloc() of 8
 * MiB, the cache never hands back the old region for the new block's
 * memory: a keyed read through what the get gives sees the new bytes.
 */
TEST(free_malloc_rcache)
{
	struct iovm_rcache *rc;
	struct iovm_rcache_stats a, b;
	const size_t SZ = 8u << 20;

	struct rlimit lim;

	if (TEST_ASAN)
		SKIP_CASE("AddressSanitizer's free() does not unmap");
	/* The get locks the block beside the test's other registrations (root: not counted, CAP_IPC_LOCK). */
	if (geteuid() != 0 && !getrlimit(RLIMIT_MEMLOCK, &lim) && lim.rlim_cur != RLIM_INFINITY &&
	    lim.rlim_cur < 2 * SZ)
		SKIP_CASE("RLIMIT_MEMLOCK below 16 MiB: an 8 MiB block cannot be locked beside the rest");
	/* A fixed threshold: glibc then unmaps every free()d 8 MiB block. */
	CHECK(mallopt(M_MMAP_THRESHOLD, 1 << 20) == 1);
	CHECK_OK(iovm_rcache_create(R.dom, NULL, &rc));
	for (unsigned i = 0; i < 30; i++) {
		uint8_t *m = malloc(SZ), *n;
		struct iovm_mr *mr;

		CHECK(m != NULL);
		memset(m, 0x21, SZ);
		CHECK_OK(iovm_rcache_get(rc, m, SZ, IOVM_ACCESS_LOCAL_WRITE, &mr));
		CHECK_OK(iovm_rcache_put(rc, mr));
		free(m);
		n = malloc(SZ);
		CHECK(n != NULL);
		memset(n, 0x42, SZ);
		CHECK_OK(iovm_rcache_stats(rc, &a));
		CHECK_OK(iovm_rcache_get(rc, n, SZ, IOVM_ACCESS_LOCAL_WRITE, &mr));
		CHECK_OK(iovm_rcache_stats(rc, &b));
		if (n == m)
			EXPECT_MSG(b.hits == a.hits, "round %u: free+malloc at the same address hit", i);
		{
			struct iovm_completion c = kcopy(&R, n + SZ - 64, mr_info(mr).lkey, SRC, skey(), 64);

			EXPECT_EQ(c.status, IOVM_STATUS_SUCCESS);
			EXPECT(all_bytes(n + SZ - 64, 64, 0x5c));
			memset(n + SZ - 64, 0x42, 64);
			c = kcopy(&R, SRC + PG, mr_info(SRC_MR).lkey, n + SZ - 64, mr_info(mr).lkey, 64);
			EXPECT_EQ(c.status, IOVM_STATUS_SUCCESS);
			EXPECT_MSG(all_bytes(SRC + PG, 64, 0x42), "round %u: the device read old memory", i);
		}
		CHECK_OK(iovm_rcache_put(rc, mr));
		free(n);
	}
	CHECK_OK(iovm_rcache_destroy(rc));
}

/*
 * reg.h: "what it [a child] does to its copy never reaches the parent's
 * registrations". The child writes, discards and unmaps its copy; the
 * parent's MR stays valid, whole, and its device reads the parent's bytes.
 */
TEST(fork_child_touches)
{
	uint8_t *p, *dst;
	struct iovm_mr *mr, *odp;
	struct iovm_mr *dmr;

	if (TEST_TSAN)
		SKIP_CASE("ThreadSanitizer's fork() deadlocks with the monitor's fork event");
	p = anon(8 * PG);
	dst = anon(PG);
	memset(p, 0x66, 8 * PG);
	CHECK_OK(iovm_mr_reg(R.dom, p, 4 * PG, IOVM_ACCESS_LOCAL_WRITE, &mr));
	CHECK_OK(iovm_mr_reg(R.dom, p + 4 * PG, 4 * PG, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND,
			     &odp));
	CHECK_OK(iovm_mr_advise(odp, p + 4 * PG, 4 * PG, IOVM_ADVISE_WRITE));
	CHECK_OK(iovm_mr_reg(R.dom, dst, PG, IOVM_ACCESS_LOCAL_WRITE, &dmr));
	for (unsigned i = 0; i < 4; i++) {
		pid_t pid = fork();
		int st;

		CHECK(pid >= 0);
		if (pid == 0) {
			memset(p, 0x99, 8 * PG);
			madvise(p + 5 * PG, PG, MADV_DONTNEED);
			madvise(p, PG, MADV_DONTNEED_LOCKED);
			mremap(p + 2 * PG, PG, PG, 0);
			munmap(p + PG, PG);
			munmap(p + 6 * PG, 2 * PG);
			_exit(0);
		}
		CHECK_EQ(waitpid(pid, &st, 0), pid);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		EXPECT_MSG(valid_pages(mr) == 4, "fork %u: pinned MR %llu valid", i,
			   (unsigned long long)valid_pages(mr));
		EXPECT(all_bytes(p, 8 * PG, 0x66));
		for (unsigned pg = 0; pg < 8; pg++) {
			struct iovm_completion c;

			memset(dst, 0, 64);
			c = kcopy(&R, dst, mr_info(dmr).lkey, p + pg * PG + 7,
				  pg < 4 ? mr_info(mr).lkey : mr_info(odp).lkey, 64);
			EXPECT_EQ(c.status, IOVM_STATUS_SUCCESS);
			EXPECT_MSG(all_bytes(dst, 64, 0x66), "fork %u: page %u reads the child's bytes", i, pg);
		}
	}
	CHECK_OK(iovm_mr_dereg(mr));
	CHECK_OK(iovm_mr_dereg(odp));
	CHECK_OK(iovm_mr_dereg(dmr));
	munmap(p, 8 * PG);
	munmap(dst, PG);
}

/*
 * Threads, each on its own memory, at once: each thread's own returned
 * munmap is waited for (README: "A thread's own returned call is always
 * waited for"): its query and its cache's get never see the replaced page
 * as valid or hit it.
 *
 * Each thread maps inside a reservation of its own: with mmap(NULL) the
 * hole one thread left could hold another thread's new memory, mapped,
 * cached and unmapped again between this thread's get (a true hit then)
 * and its mincore() (which then finds the hole): a race of the test, not
 * a stale hit. A one-page hole inside a reservation takes no other
 * thread's three pages.
 */
#define SLOT_PAGES 4
#define SLOTS 16
static struct iovm_rcache *TRC;
static _Atomic unsigned thread_fail;

static void *unmapper(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	uint8_t *res = mmap(NULL, SLOTS * SLOT_PAGES * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (res == MAP_FAILED) {
		atomic_fetch_add(&thread_fail, 1);
		return NULL;
	}
	bool used[SLOTS] = { false }, lost[SLOTS] = { false };

	for (unsigned i = 0; i < 150; i++) {
		unsigned slot = i % SLOTS;
		/*
		 * A slot's first use replaces the reservation; after that its
		 * pages were unmapped, and something else (iovm's own mmap()s)
		 * may have landed there: not ours to replace, the slot is lost.
		 */
		uint8_t *p = lost[slot] ? MAP_FAILED :
			mmap(res + slot * SLOT_PAGES * PG, 3 * PG, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | (used[slot] ? MAP_FIXED_NOREPLACE : MAP_FIXED), -1, 0);

		if (p != MAP_FAILED && p != res + slot * SLOT_PAGES * PG) {
			munmap(p, 3 * PG); /* an old kernel's hint: not where asked */
			p = MAP_FAILED;
		}
		if (p == MAP_FAILED)
			lost[slot] = true;
		used[slot] = true;
		struct iovm_mr *mr, *got;
		struct iovm_mr_info in;
		unsigned pg = (i + seed) % 3;

		if (p == MAP_FAILED)
			continue;
		memset(p, 1, 3 * PG);
		int rr = iovm_mr_reg(R.dom, p, 3 * PG, IOVM_ACCESS_LOCAL_WRITE, &mr);

		if (rr) {
			fprintf(stderr, "thread %u: iovm_mr_reg of fresh memory: %d [%s]\n", seed, rr,
				iovm_error_detail());
			atomic_fetch_add(&thread_fail, 1);
			break;
		}
		if (iovm_rcache_get(TRC, p, 3 * PG, IOVM_ACCESS_LOCAL_WRITE, &got) == 0)
			iovm_rcache_put(TRC, got);
		munmap(p + pg * PG, PG);
		/*
		 * At most 2: README's limit lets another thread's munmap, not
		 * yet read, mark pages of a registration made in its hole
		 * invalid (refused, never stale); never 3.
		 */
		if (iovm_mr_query(mr, &in) || in.valid_pages > 2) {
			fprintf(stderr, "thread %u round %u: %llu valid pages after munmap\n", seed, i,
				(unsigned long long)in.valid_pages);
			atomic_fetch_add(&thread_fail, 1);
		}
		/* The hole: a get over it is no hit (the memory is gone: -EFAULT). */
		{
			int r = iovm_rcache_get(TRC, p + pg * PG, PG, IOVM_ACCESS_LOCAL_WRITE, &got);

			unsigned char vec;

			/* Unless another thread (or iovm itself) mapped a page there meanwhile. */
			if (r == 0 && mincore(p + pg * PG, PG, &vec) != 0) {
				struct iovm_mr_info gi;

				iovm_mr_query(got, &gi);
				fprintf(stderr, "thread %u round %u: get of unmapped page %p succeeded: MR "
					"[%p +%zu) valid %d pages %llu/%llu\n", seed, i, (void *)(p + pg * PG),
					gi.addr, gi.len, gi.valid, (unsigned long long)gi.valid_pages,
					(unsigned long long)gi.pages);
				atomic_fetch_add(&thread_fail, 1);
				iovm_rcache_put(TRC, got);
			} else if (r == 0) {
				iovm_rcache_put(TRC, got);
			} else if (r != -EFAULT) {
				fprintf(stderr, "thread %u: get of unmapped page: %d\n", seed, r);
				atomic_fetch_add(&thread_fail, 1);
			}
		}
		iovm_mr_dereg(mr);
		/* Unmap only what is this thread's: iovm may have mapped a page into the hole. */
		for (unsigned k = 0; k < 3; k++)
			if (k != pg)
				munmap(p + k * PG, PG);
	}
	/* What is left of the reservation: slots never used, and each slot's fourth page. */
	for (unsigned k = 0; k < SLOTS; k++)
		munmap(res + (k * SLOT_PAGES + (used[k] ? 3 : 0)) * PG, (used[k] ? 1 : SLOT_PAGES) * PG);
	return NULL;
}

TEST(threads_unmap)
{
	pthread_t t[3];

	CHECK_OK(iovm_rcache_create(R.dom, NULL, &TRC));
	for (unsigned i = 0; i < 3; i++)
		CHECK_EQ(pthread_create(&t[i], NULL, unmapper, (void *)(uintptr_t)i), 0);
	for (unsigned i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	EXPECT_EQ(atomic_load(&thread_fail), 0);
	CHECK_OK(iovm_rcache_destroy(TRC));
}

int main(void)
{
	test_init();
	rig2_open(&R);
	SRC = anon(16 * PG);
	memset(SRC, 0x5c, 16 * PG);
	CHECK_OK(iovm_mr_reg(R.dom, SRC, 16 * PG, IOVM_ACCESS_LOCAL_WRITE, &SRC_MR));
	if (!monitor_runs(R.ctx))
		SKIP("no memory monitor (userfaultfd unavailable): nothing to attack");
	RUN(munmap_partial_loop);
	RUN(map_fixed_and_dontneed_locked);
	RUN(mremap_kinds);
	RUN(free_malloc_rcache);
	RUN(fork_child_touches);
	RUN(threads_unmap);
	CHECK_OK(iovm_mr_dereg(SRC_MR));
	rig_close(&R);
	return attack_status();
}
