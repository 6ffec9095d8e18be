/* SPDX-License-Identifier: MIT */
/*
 * attack25_race.c - moves raced by other threads (test_attack25_moves):
 * the munmap() of a move's destination from another thread right after
 * the move returned, with a taker mapping into the hole it makes; many
 * movers beside readers of the registration cache running descriptors,
 * with fork() in the middle, on all CPUs and on one with the library's
 * threads starved.
 */
#include <dirent.h>

#include "attack/attack25.h"

A25_HARNESS(race);

/* ---- a move, then the munmap() of its destination elsewhere, and a taker in the hole ---- */

static struct {
	_Atomic uint64_t seq;     /* bumped when a destination is published */
	uint8_t *dst;
	size_t len;
	const char *kind;         /* how the memory got there */
	bool nbr;                 /* a page mapped before dst goes with it */
	uint32_t ylkey;           /* the mover's cached region over the moved memory (0: none) */
	iovm_iova_t yiova;
	_Atomic int unmapped;     /* the munmap() of dst returned */
	_Atomic uint64_t unmap_ns;/* how long it took */
	_Atomic int taker_done, unmapper_done;
	atomic_bool stop;
} H;

static atomic_ulong h_early_old, h_early_refused, h_rc_checked, h_rounds, h_taken, h_in_hole, h_refused, h_refused_slow, h_whole, h_dev_ok;

static void *unmapper(void *arg)
{
	uint64_t seen = 0;

	(void)arg;
	while (!atomic_load(&H.stop)) {
		uint64_t s = atomic_load_explicit(&H.seq, memory_order_acquire), t0;

		if (s == seen) {
			sched_yield();
			continue;
		}
		seen = s;
		t0 = a25_now_ns();
		/* With a page of unregistered memory before it, never watched, in the same call: or not. */
		CHECK_OK(H.nbr ? munmap(H.dst - PG, H.len + PG) : munmap(H.dst, H.len));
		atomic_store(&H.unmap_ns, a25_now_ns() - t0);
		atomic_store_explicit(&H.unmapped, 1, memory_order_release);
		atomic_store(&H.unmapper_done, 1);
	}
	return NULL;
}

static void *taker(void *arg)
{
	struct a17q a;
	uint64_t seen = 0;

	(void)arg;
	a17q_open(&R, &a, 64 << 10, IOVM_QUEUE_POLLED);
	while (!atomic_load(&H.stop)) {
		uint64_t s = atomic_load_explicit(&H.seq, memory_order_acquire);
		uint8_t *q = NULL;
		size_t n;
		uint32_t tag = a25_tag();
		struct iovm_mr *pl, *rm;
		struct iovm_mr_info inf;
		struct iovm_mr *early;
		bool hole = false, during = false;
		int ret;

		if (s == seen) {
			sched_yield();
			continue;
		}
		seen = s;
		n = H.len / PG;
		/* Into the hole as soon as it opens, before or after the munmap() returns. */
		for (unsigned long spin = 0; !q && spin < 50000000ul; spin++) {
			hole = !atomic_load_explicit(&H.unmapped, memory_order_acquire);
			q = a25_map_at(H.dst, H.len);
			if (!q && !hole && spin > 1000)
				break; /* unmapped, yet not free: someone else's */
		}
		if (q) {
			atomic_fetch_add(&h_taken, 1);
			if (hole)
				atomic_fetch_add(&h_in_hole, 1);
			a25_fill(q, n, tag);
			/* Every other round a get first, maybe while the munmap() is still under way. */
			early = NULL;
			if (seen % 2 == 0) {
				during = !atomic_load_explicit(&H.unmapped, memory_order_acquire);
				ret = iovm_rcache_get(RC, q, H.len, A25_ACC, &early);
				CHECK_MSG(ret == 0, "iovm_rcache_get() of memory mapped into the hole: %d", ret);
			}
			ret = iovm_mr_reg(R.dom, q, H.len, A25_ACC, &pl);
			CHECK_MSG(ret == 0, "iovm_mr_reg() of memory mapped where a moved block went: %d", ret);
			/* A late event of the munmap() would take its pages after the registration: look once it returned. */
			while (!atomic_load(&H.unmapped))
				sched_yield();
			inf = a25_info(pl);
			if (inf.valid_pages != inf.pages) {
				char pages[256] = "";
				size_t o = 0;

				for (size_t pg = 0; pg < n && o < sizeof(pages) - 16; pg++)
					if (a25_read(&a, a25_iova(pl, q + pg * PG), 64) != IOVM_STATUS_SUCCESS)
						o += (size_t)snprintf(pages + o, sizeof(pages) - o, " %zu", pg);
				/* Refused: allowed only where the munmap() fell back to userfaultfd (100 ms without the mark). */
				if (atomic_load(&H.unmap_ns) >= 90000000u) {
					atomic_fetch_add(&h_refused_slow, 1);
				} else {
					atomic_fetch_add(&h_refused, 1);
					fprintf(stderr, "# refused (%s): %llu of %llu pages valid (refused:%s), mapped %s the "
						"munmap() returned, which took %llu us\n", H.kind,
						(unsigned long long)inf.valid_pages, (unsigned long long)inf.pages, pages,
						hole ? "before" : "after", (unsigned long long)atomic_load(&H.unmap_ns) / 1000);
				}
			} else {
				atomic_fetch_add(&h_whole, 1);
			}
			/* Never stale: the device reaches this memory's bytes, or faults. */
			if (a25_read(&a, a25_iova(pl, q + (n - 1) * PG), PG) == IOVM_STATUS_SUCCESS) {
				CHECK_MSG(a25_eq(a.buf, tag, n - 1, 0, PG), "a device read of memory mapped into the hole "
					  "brought other bytes");
				atomic_fetch_add(&h_dev_ok, 1);
			}
			ret = iovm_rcache_get(RC, q, H.len, A25_ACC, &rm);
			CHECK_MSG(ret == 0, "iovm_rcache_get(): %d", ret);
			/* The region the mover left in the cache over the moved memory there is never a hit now. */
			if (H.ylkey) {
				struct iovm_mr_info ri = a25_info(rm);

				CHECK_MSG(ri.lkey != H.ylkey || ri.iova.addr != H.yiova.addr, "iovm_rcache_get() of memory mapped where a "
					  "moved block was unmapped (the munmap() returned) hit the region of the moved block");
				atomic_fetch_add(&h_rc_checked, 1);
			}
			if (a25_read(&a, a25_iova(rm, q), PG) == IOVM_STATUS_SUCCESS)
				CHECK_MSG(a25_eq(a.buf, tag, 0, 0, PG), "a device read through the cache's region of memory "
					  "mapped into the hole brought other bytes");
			CHECK_OK(iovm_rcache_put(RC, rm));
			if (early) {
				struct iovm_mr_info ei = a25_info(early);

				if (H.ylkey && ei.lkey == H.ylkey && ei.iova.addr == H.yiova.addr) {
					/* The old region, got in the hole: once the munmap() returned, gone whole. */
					atomic_fetch_add(&h_early_old, 1);
					CHECK_MSG(during, "iovm_rcache_get() after the munmap() of a moved block returned hit "
						  "the block's region");
					CHECK_MSG(ei.valid_pages == 0, "a region of a moved block, got while its munmap() was "
						  "under way, has %llu of %llu pages valid after it returned",
						  (unsigned long long)ei.valid_pages, (unsigned long long)ei.pages);
					CHECK_MSG(a25_read(&a, a25_iova(early, q), 64) == IOVM_STATUS_PAGE_FAULT,
						  "a device read through the old region after the munmap() returned did not "
						  "fault");
				} else if (ei.valid_pages == ei.pages) {
					if (a25_read(&a, a25_iova(early, q + (n - 1) * PG), PG) == IOVM_STATUS_SUCCESS)
						CHECK_MSG(a25_eq(a.buf, tag, n - 1, 0, PG), "a device read through a get made "
							  "in the hole brought other bytes");
				} else {
					atomic_fetch_add(&h_early_refused, 1);
				}
				CHECK_OK(iovm_rcache_put(RC, early));
			}
			CHECK_OK(iovm_mr_dereg(pl));
			CHECK_OK(munmap(q, H.len));
		}
		atomic_store(&H.taker_done, 1);
	}
	a17q_close(&R, &a);
	return NULL;
}

/*
 * "Memory such an mremap() moved is hooked where it went ...: the monitor
 * marks it for the hooks as it reads the move, and a munmap() that comes
 * first waits for the mark (100 ms at most: a monitor kept off the CPU
 * longer leaves that call to userfaultfd, slower, as correct)" and
 * "memory mapped into a hole that another thread's call is still making
 * (its event not yet read by the monitor: a raw munmap, and without
 * IOVM_HOOKS=all an mremap() that shrinks or moves ...) may be [refused]"
 * (reg.h): a munmap() through libc of memory a move took along is none of
 * those, so memory a taker maps into its hole, before or after it
 * returns, registers whole, unless that munmap() took the 100 ms of the
 * fallback (then counted, not failed). The mover's MR at the source is
 * gone once the move returned; nothing the device reads is stale.
 */
/* Registered memory replaced page by page (mmap MAP_FIXED) without a pause: the monitor has events in hand. */
static atomic_ulong h_noise;

static void *noiser(void *arg)
{
	uint8_t *n = a25_map_at(A25_AREA(14), 64 * PG);
	struct iovm_mr *mr = NULL;

	(void)arg;
	CHECK(n != NULL);
	for (unsigned long k = 0; !atomic_load(&H.stop); k++) {
		if (k % 64 == 0) {
			if (mr)
				CHECK_OK(iovm_mr_dereg(mr));
			CHECK_OK(iovm_mr_reg(R.dom, n, 64 * PG, A25_ACC, &mr));
		}
		CHECK(mmap(n + (k % 64) * PG, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
		      n + (k % 64) * PG);
		n[(k % 64) * PG] = 1;
		atomic_fetch_add(&h_noise, 1);
	}
	if (mr)
		CHECK_OK(iovm_mr_dereg(mr));
	CHECK_OK(munmap(n, 64 * PG));
	return NULL;
}

static const char *const h_kinds[4] = { "move", "move and grow", "two moves", "grow anywhere, move back" };

static void elsewhere(bool starve, bool noisy)
{
	struct a17q a;
	pthread_t tu, tt, tn;
	unsigned rounds = a25_rounds(starve ? 60 : 160);
	static const size_t sizes[] = { PG, 3 * PG, 17 * PG, A25_MB2 + PG, 2 * PG };
	pid_t mine[1] = { (pid_t)syscall(SYS_gettid) };

	memset(&H, 0, sizeof(H));
	if (starve)
		printf("# [%s] every thread on CPU 0, %u of the library's threads at nice 19\n", test_current,
		       a25_pin_all(0, mine, 1, 19));
	a17q_open(&R, &a, 64 << 10, IOVM_QUEUE_POLLED);
	CHECK_OK(-pthread_create(&tu, NULL, unmapper, NULL));
	CHECK_OK(-pthread_create(&tt, NULL, taker, NULL));
	if (noisy)
		CHECK_OK(-pthread_create(&tn, NULL, noiser, NULL));
	for (unsigned r = 0; r < rounds; r++) {
		size_t len = sizes[r % 5], ylen = len;
		unsigned kind = (r / 5) % 4;
		uint8_t *x = a25_map_at(A25_AREA(6) + (r % 8) * A25_MB2 * 2, len), *guard = NULL, *z;
		uint8_t *y = A25_AREA(7) + (r % 8) * A25_MB2 * 2 + (r % 3) * PG;
		uint8_t *mid = A25_AREA(8) + (r % 8) * A25_MB2 * 2 + PG;
		uint32_t tag = a25_tag();
		struct iovm_mr *xm, *xr = NULL;
		const char *bad;

		CHECK(x != NULL);
		a25_fill(x, len / PG, tag);
		CHECK_OK(iovm_mr_reg(R.dom, x + (r % 7 == 1 ? 8 : 0), len - (r % 7 == 1 ? 8 : 0), A25_ACC, &xm));
		if (r % 2)
			CHECK_OK(iovm_rcache_get(RC, x, len, A25_ACC, &xr));
		atomic_store(&H.unmapped, 0);
		atomic_store(&H.taker_done, 0);
		atomic_store(&H.unmapper_done, 0);
		switch (kind) {
		case 0:
			CHECK(mremap(x, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, y) == y);
			break;
		case 1: /* the event names the old length: the two pages it grew are watched, unnamed */
			ylen = len + 2 * PG;
			CHECK(mremap(x, len, ylen, MREMAP_MAYMOVE | MREMAP_FIXED, y) == y);
			break;
		case 2:
			CHECK(mremap(x, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, mid) == mid);
			CHECK(mremap(mid, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, y) == y);
			break;
		default: /* as realloc(): a growth that must move (a guard page after it), then where we want it */
			guard = a25_map_at(x + len, PG);
			ylen = len + PG;
			z = mremap(x, len, ylen, MREMAP_MAYMOVE);
			CHECK(z != MAP_FAILED);
			CHECK(mremap(z, ylen, ylen, MREMAP_MAYMOVE | MREMAP_FIXED, y) == y);
			break;
		}
		H.ylkey = 0;
		if (r % 3 == 2) {
			/* A region of the moved memory where it went, idle in the cache when the munmap() comes. */
			struct iovm_mr *yr;
			struct iovm_mr_info yi;

			CHECK_OK(iovm_rcache_get(RC, y, ylen, A25_ACC, &yr));
			yi = a25_info(yr);
			CHECK_EQ(yi.valid_pages, yi.pages);
			H.ylkey = yi.lkey;
			H.yiova = yi.iova;
			CHECK_OK(iovm_rcache_put(RC, yr));
		}
		H.nbr = r % 4 == 3 && a25_map_at(y - PG, PG);
		H.kind = h_kinds[kind];
		H.dst = y;
		H.len = ylen;
		atomic_store_explicit(&H.seq, r + 1, memory_order_release); /* the unmapper goes at once */
		bad = a25_gone_page(&a, xm, x + (r % 7 == 1 ? 8 : 0), NULL, 0, 0);
		CHECK_MSG(!bad, "round %u (%s), the source's MR after the move: %s", r, h_kinds[kind], bad);
		if (xr) {
			bad = a25_gone_page(&a, xr, x, NULL, 0, 0);
			CHECK_MSG(!bad, "round %u (%s), the source's region after the move: %s", r, h_kinds[kind], bad);
			CHECK_EQ(a25_info(xr).valid_pages, 0);
			CHECK_OK(iovm_rcache_put(RC, xr));
		}
		CHECK_EQ(a25_info(xm).valid_pages, 0);
		CHECK_OK(iovm_mr_dereg(xm));
		for (unsigned long w = 0; !atomic_load(&H.taker_done) || !atomic_load(&H.unmapper_done); w++) {
			CHECK_MSG(w < 50000000ul, "round %u: the unmapper or the taker never finished", r);
			sched_yield();
		}
		if (guard)
			CHECK_OK(munmap(guard, PG));
		atomic_fetch_add(&h_rounds, 1);
	}
	atomic_store(&H.stop, true);
	pthread_join(tu, NULL);
	pthread_join(tt, NULL);
	if (noisy) {
		pthread_join(tn, NULL);
		printf("# [%s] noise: registered pages replaced %lu\n", test_current, atomic_exchange(&h_noise, 0));
	}
	if (starve)
		a25_pin_all(-1, mine, 1, 0); /* the nice value may stay (unprivileged) */
	printf("# [%s] rounds %lu, taken %lu (mapped before the munmap() returned %lu), whole %lu, refused %lu "
	       "(after a munmap() of 90 ms or more %lu), device reads of the new memory %lu, gets checked against an old "
	       "region %lu; early gets: the old region %lu, refused pages %lu\n",
	       test_current, atomic_exchange(&h_rounds, 0), atomic_load(&h_taken), atomic_exchange(&h_in_hole, 0),
	       atomic_exchange(&h_whole, 0), atomic_load(&h_refused), atomic_exchange(&h_refused_slow, 0),
	       atomic_exchange(&h_dev_ok, 0), atomic_exchange(&h_rc_checked, 0), atomic_exchange(&h_early_old, 0),
	       atomic_exchange(&h_early_refused, 0));
	CHECK_MSG(atomic_exchange(&h_taken, 0) > 0, "the taker never got the address: nothing attacked");
	CHECK_MSG(atomic_load(&h_refused) == 0, "%lu registrations of memory mapped where a moved block went were "
		  "refused after a munmap() that did not take the 100 ms fallback", atomic_load(&h_refused));
	a17q_close(&R, &a);
}

TEST(move_then_munmap_elsewhere)
{
	elsewhere(false, false);
}

A25_CASE(move_then_munmap_elsewhere)

/* The same on CPU 0 with the library's threads at nice 19: the monitor reads moves late. */
TEST(move_then_munmap_starved)
{
	elsewhere(true, false);
}

A25_CASE(move_then_munmap_starved)

/* The same beside a thread that keeps replacing registered pages: the monitor always has events in hand. */
TEST(move_then_munmap_noisy)
{
	elsewhere(false, true);
}

A25_CASE(move_then_munmap_noisy)

/*
 * fork() right after a move, before the monitor may have marked where the
 * memory went; the child unmaps its copy there at once (and frees a block
 * realloc() moved): "after fork() a child's hooks leave its memory alone
 * (registrations are the parent's)", and what the child does to its copy
 * never reaches the parent's registrations (reg.h). The child's calls
 * return (no wait for a mark its process will never make beyond the
 * bounded one), it exits cleanly, and the parent's memory where it went
 * is whole: a get registers it and the device reads its bytes; the
 * parent's MR at the source is gone.
 */
TEST(fork_after_move)
{
	struct a17q a;
	unsigned rounds = a25_rounds(30), forks = 0;

	if (TEST_TSAN)
		SKIP_CASE("ThreadSanitizer's fork() cannot wait for the memory monitor's reader");
	a17q_open(&R, &a, 64 << 10, IOVM_QUEUE_POLLED);
	for (unsigned r = 0; r < rounds; r++) {
		size_t len = r % 3 == 2 ? A25_MB2 + PG : (1 + r % 5) * PG;
		uint8_t *x = a25_map_at(A25_AREA(12), len), *y = A25_AREA(12) + A25_MB2 * 4 + (r % 2) * PG;
		uint32_t tag = a25_tag();
		struct iovm_mr *xm, *ym;
		int status = 0;
		pid_t pid;
		const char *bad;

		CHECK(x != NULL);
		a25_fill(x, len / PG, tag);
		CHECK_OK(iovm_mr_reg(R.dom, x, len, A25_ACC, &xm));
		CHECK(mremap(x, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, y) == y);
		pid = fork();
		CHECK(pid >= 0);
		if (pid == 0) {
			void *b;

			alarm(10);
			if (munmap(y, len))
				_exit(2);
			if (mmap(y, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
				_exit(3);
			memset(y, 0xee, len);
			b = malloc(300 << 10);
			b = b ? realloc(b, 1200 << 10) : NULL;
			free(b);
			if (munmap(y, len))
				_exit(4);
			_exit(0);
		}
		forks++;
		for (unsigned long w = 0; waitpid(pid, &status, WNOHANG) == 0; w++) {
			CHECK_MSG(w < 30000, "a fork()ed child's munmap() of moved memory hangs (30 s)");
			usleep(1000);
		}
		CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child ended with status %#x", status);
		bad = a25_gone_page(&a, xm, x, NULL, 0, 0);
		CHECK_MSG(!bad, "round %u, the parent's MR at the source: %s", r, bad);
		CHECK_OK(iovm_rcache_get(RC, y, len, A25_ACC, &ym));
		CHECK_EQ(a25_info(ym).valid_pages, a25_info(ym).pages);
		bad = a25_kept_page(&a, ym, y + len - PG, tag, len / PG - 1);
		CHECK_MSG(!bad, "round %u, the parent's memory where it went, after the child unmapped its copy: %s", r, bad);
		CHECK_OK(iovm_rcache_put(RC, ym));
		CHECK_OK(iovm_mr_dereg(xm));
		CHECK_OK(munmap(y, len));
	}
	printf("# [%s] forks right after a move %u\n", test_current, forks);
	CHECK(forks > 0);
	a17q_close(&R, &a);
}

A25_CASE(fork_after_move)
