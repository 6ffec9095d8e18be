/* SPDX-License-Identifier: MIT */
/*
 * attack25_storm.c - many movers beside readers of the registration
 * cache running descriptors, with fork() in the middle
 * (test_attack25_moves), on all CPUs and on one CPU with the library's
 * threads starved.
 *
 * Each mover owns registered memory and two addresses in the window, and
 * keeps taking the memory away from where it is: moves to the other
 * address (MREMAP_FIXED), a move whose destination it unmaps at once
 * before mapping fresh memory back where it was, MREMAP_DONTUNMAP then
 * munmap of the source, a shrink to one page, and a growth that may move
 * anywhere followed by a move back into the window. It publishes where
 * its memory is with a sequence count, odd while a call is under way.
 * Every op takes the memory's last page away.
 *
 * Readers take a consistent snapshot of a mover, get its last page's
 * range from the cache and read it through the device. Asserted, never
 * timing: with no call of the mover between the snapshot and the end of
 * the read, the region is valid whole and the read brings the memory's
 * own words; once a call that began after the get has returned before
 * the read, the read faults and the query counts the page invalid
 * ("once the application's call has returned no iovm_rcache_get() hits
 * what it replaced and no iovm_mr_query() calls it valid"; "devices never
 * reach the memory that replaces them", reg.h).
 */
#include "attack/attack25.h"

A25_HARNESS(storm);

#define MOVERS 4
#define READERS 3

struct mslot {
	_Atomic uint64_t seq;
	_Atomic uintptr_t addr;
	_Atomic size_t len;
	_Atomic uint32_t tag;
	uint8_t *end[2];
};

static struct mslot ms[MOVERS];
static atomic_bool st_stop;
static atomic_uint st_movers_left;
static atomic_ulong st_dontunmap_refused, st_waited, st_grow_split, st_move_split;
static bool st_one_cpu;
static atomic_ulong st_ops[5], st_reads, st_strict, st_after_fault, st_raced, st_forks, st_child_ok, st_stable,
	st_enomem, st_mover_checks;
static uint64_t st_deadline;
static const char *const st_opname[5] = { "move", "move+munmap+fresh", "dontunmap", "shrink", "grow+move back" };

/* A stable registration the children's calls on their copies must never reach. */
static uint8_t *stable;
static uint32_t stable_tag;
static struct iovm_mr *stable_mr, *stable_reg;

static const size_t st_sizes[MOVERS] = { PG, 5 * PG, 17 * PG, A25_MB2 + PG };

/*
 * Move [cur, cur+len) to @to. Registrations of parts of it (the readers'
 * of its last page) split it into several mappings, which Linux moves in
 * one call only where no userfaultfd watches them (6.17 and later; never
 * before): without IOVM_HOOKS=all the monitor does watch them, and the
 * move fails with EFAULT. Then the memory is taken away by munmap() and
 * fresh memory is mapped at @to: still a call that takes it away.
 */
static atomic_ulong st_partial, st_partial_pages;

static void move_whole(uint8_t *cur, size_t len, uint8_t *to, struct iovm_mr *held)
{
	uint8_t *p = mremap(cur, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to);

	if (p == MAP_FAILED) {
		unsigned char v;
		size_t moved = 0;

		CHECK_MSG(errno == EFAULT, "mremap() move: %s", strerror(errno));
		atomic_fetch_add(&st_move_split, 1);
		/* The kernel may have moved the first mappings before it failed: those pages left @cur. */
		for (size_t i = 0; i < len / PG; i++)
			moved += mincore(to + i * PG, PG, &v) == 0;
		if (moved) {
			atomic_fetch_add(&st_partial, 1);
			atomic_fetch_add(&st_partial_pages, moved);
			if (held) {
				struct iovm_mr_info inf = a25_info(held);

				CHECK_MSG(inf.valid_pages + moved <= inf.pages, "an mremap() that failed after moving %zu of "
					  "%zu pages away: the region over them has %llu of %llu pages valid once it returned",
					  moved, len / PG, (unsigned long long)inf.valid_pages,
					  (unsigned long long)inf.pages);
			}
		}
		CHECK_OK(munmap(cur, len));
		CHECK_OK(munmap(to, len));
		p = a25_map_at(to, len);
	}
	CHECK(p == to);
}

static void *mover(void *arg)
{
	unsigned i = (unsigned)(uintptr_t)arg;
	struct mslot *m = &ms[i];
	struct a17q a;
	uint64_t rs = 0x9e3779b97f4a7c15ull * (i + 1) + (uint64_t)getpid() * 31 + a25_now_ns();
	struct iovm_mr *held = NULL;
	unsigned at = 0, iters = a25_rounds(500);
	size_t len = atomic_load(&m->len);

	a17q_open(&R, &a, 64 << 10, IOVM_QUEUE_POLLED);
	for (unsigned it = 0; it < iters && a25_now_ns() < st_deadline && !atomic_load(&st_stop); it++) {
		uint8_t *cur = m->end[at], *to = m->end[!at], *now = NULL, *p;
		unsigned op = (unsigned)(test_rand(&rs) % 5);
		uint32_t tag = a25_tag();
		struct iovm_mr *nh;
		int ret;

		if (op == 3 && len == PG)
			op = 0;
		atomic_fetch_add_explicit(&m->seq, 1, memory_order_acq_rel); /* odd: under way */
		switch (op) {
		case 0:
			move_whole(cur, len, to, held);
			at = !at;
			break;
		case 1: /* moved memory unmapped at once where it went, fresh memory back where it was */
			move_whole(cur, len, to, held);
			CHECK_OK(munmap(to, len));
			now = a25_map_at(cur, len);
			CHECK(now == cur);
			break;
		case 2:
			p = mremap(cur, len, len, MREMAP_MAYMOVE | MREMAP_DONTUNMAP | MREMAP_FIXED, to);
			if (p == MAP_FAILED) {
				atomic_fetch_add(&st_dontunmap_refused, 1); /* split, as for move_whole(): a move instead */
				move_whole(cur, len, to, held);
			} else {
				CHECK(p == to);
				CHECK_OK(munmap(cur, len));
			}
			at = !at;
			break;
		case 3: /* the tail goes; grown back in place, fresh */
			CHECK(mremap(cur, len, PG, 0) == cur);
			CHECK(mremap(cur, PG, len, 0) == cur);
			now = cur;
			break;
		default: /* a growth that may go anywhere, then back into the window */
			p = mremap(cur, len, len + PG, MREMAP_MAYMOVE);
			if (p == MAP_FAILED) {
				/* Locks of regions (their pages, whole) split the mapping: no growth across mappings. */
				CHECK_MSG(errno == EFAULT, "mremap() growth: %s", strerror(errno));
				atomic_fetch_add(&st_grow_split, 1);
				move_whole(cur, len, to, held);
			} else {
				/* Shrunk and moved in one call; split (as move_whole() says), in two. */
				if (mremap(p, len + PG, len, MREMAP_MAYMOVE | MREMAP_FIXED, to) != to) {
					move_whole(p, len, to, NULL);
					CHECK_OK(munmap(p + len, PG));
				}
			}
			at = !at;
			break;
		}
		atomic_fetch_add(&st_ops[op], 1);
		p = m->end[at];
		a25_fill(p, len / PG, tag);
		atomic_store(&m->addr, (uintptr_t)p);
		atomic_store(&m->tag, tag);
		atomic_fetch_add_explicit(&m->seq, 1, memory_order_acq_rel); /* even: returned */
		/* The mover's own region of the memory as it was: its last page is gone. */
		if (held) {
			const char *bad = a25_gone_page(&a, held, cur + len - PG, now ? now + len - PG : NULL, tag,
							len / PG - 1);

			CHECK_MSG(!bad, "mover %u, after %s: its region of the last page before: %s", i, st_opname[op], bad);
			CHECK_OK(iovm_rcache_put(RC, held));
			held = NULL;
			atomic_fetch_add(&st_mover_checks, 1);
		}
		ret = iovm_rcache_get(RC, p + (it % 3 == 1 ? 100 : 0), len - (it % 3 == 1 ? 100 : 0), A25_ACC, &nh);
		if (ret == -ENOMEM) {
			atomic_fetch_add(&st_enomem, 1);
			continue;
		}
		CHECK_MSG(ret == 0, "mover %u: iovm_rcache_get() of its own memory: %d", i, ret);
		CHECK_EQ(a25_info(nh).valid_pages, a25_info(nh).pages);
		{
			const char *bad = a25_kept_page(&a, nh, p + len - PG, tag, len / PG - 1);

			CHECK_MSG(!bad, "mover %u, after %s, a get of where its memory is now: %s", i, st_opname[op], bad);
		}
		held = nh;
	}
	if (held)
		CHECK_OK(iovm_rcache_put(RC, held));
	a17q_close(&R, &a);
	atomic_fetch_sub(&st_movers_left, 1);
	return NULL;
}

static void *reader(void *arg)
{
	struct a17q a;
	uint64_t rs = 0xdeadbeefull * ((uintptr_t)arg + 7);

	a17q_open(&R, &a, 64 << 10, IOVM_QUEUE_POLLED);
	while (atomic_load(&st_movers_left) && !atomic_load(&st_stop)) {
		struct mslot *m = &ms[test_rand(&rs) % MOVERS];
		uint64_t s = atomic_load_explicit(&m->seq, memory_order_acquire), s_get, s_mid, s_end;
		uint8_t *addr = (uint8_t *)atomic_load(&m->addr), *last;
		size_t len = atomic_load(&m->len), off = test_rand(&rs) % 3 == 0 ? 24 : 0;
		uint32_t tag = atomic_load(&m->tag);
		struct iovm_mr *mr;
		struct iovm_mr_info inf;
		uint8_t st;
		int ret;

		if (s % 2 || atomic_load_explicit(&m->seq, memory_order_acquire) != s)
			continue;
		last = addr + len - PG;
		ret = iovm_rcache_get(RC, last + off, PG - off, A25_ACC, &mr);
		s_get = atomic_load_explicit(&m->seq, memory_order_acquire);
		if (ret) {
			CHECK_MSG(ret == -EFAULT || ret == -ENOMEM, "iovm_rcache_get(): %d", ret);
			CHECK_MSG(ret == -ENOMEM || s_get != s, "iovm_rcache_get() of memory no call took away: %d", ret);
			atomic_fetch_add(ret == -ENOMEM ? &st_enomem : &st_raced, 1);
			continue;
		}
		inf = a25_info(mr);
		if (s_get == s && atomic_load_explicit(&m->seq, memory_order_acquire) == s)
			CHECK_MSG(inf.valid_pages == inf.pages, "a get of memory no call took away: %llu of %llu pages valid",
				  (unsigned long long)inf.valid_pages, (unsigned long long)inf.pages);
		/* One read in four waits (bounded) for the mover's next call to return: the page must be gone then. */
		if (s_get == s && test_rand(&rs) % 4 == 0) {
			for (unsigned long w = 0; w < (st_one_cpu ? 2000u : 200000u) && atomic_load(&st_movers_left) &&
						  atomic_load_explicit(&m->seq, memory_order_acquire) < s + 2; w++)
				sched_yield();
			atomic_fetch_add(&st_waited, 1);
		}
		s_mid = atomic_load_explicit(&m->seq, memory_order_acquire);
		st = a25_read(&a, a25_iova(mr, last + off), 256);
		s_end = atomic_load_explicit(&m->seq, memory_order_acquire);
		atomic_fetch_add(&st_reads, 1);
		if (s_get == s && s_end == s) {
			CHECK_MSG(st == IOVM_STATUS_SUCCESS && a25_eq(a.buf, tag, len / PG - 1, (unsigned)off, 256),
				  "a device read of memory no call took away: status %u, %s", st,
				  st == IOVM_STATUS_SUCCESS ? "other bytes" : "faulted");
			atomic_fetch_add(&st_strict, 1);
		} else if (s_get == s && s_mid >= s + 2) {
			/* A call that began after the get returned before the read: the page is gone. */
			CHECK_MSG(st != IOVM_STATUS_SUCCESS, "a device read through a region whose page a returned call took "
				  "away succeeded (%s)", a25_eq(a.buf, atomic_load(&m->tag), len / PG - 1, (unsigned)off, 256)
				  ? "the new memory's bytes" : "some bytes");
			inf = a25_info(mr);
			CHECK_MSG(inf.valid_pages < inf.pages, "iovm_mr_query() counts a page valid that a returned call took away");
			atomic_fetch_add(&st_after_fault, 1);
		} else {
			atomic_fetch_add(&st_raced, 1);
		}
		CHECK_OK(iovm_rcache_put(RC, mr));
		if (st_one_cpu)
			sched_yield(); /* one CPU: the movers get their turns */
	}
	a17q_close(&R, &a);
	return NULL;
}

/* fork() in the middle: the child moves, unmaps and discards its copies, through libc's hooked calls. */
static void *forker(void *arg)
{
	struct a17q a;

	(void)arg;
	a17q_open(&R, &a, 64 << 10, IOVM_QUEUE_POLLED);
	while (atomic_load(&st_movers_left) && !atomic_load(&st_stop)) {
		pid_t pid;
		int status = 0;
		unsigned long w = 0;

		usleep(20000);
		pid = fork();
		CHECK(pid >= 0);
		if (pid == 0) {
			uint8_t *p;
			void *b;

			alarm(20);
			p = mremap(stable, 4 * PG, 4 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, A25_AREA(9));
			if (p == MAP_FAILED || munmap(p, 2 * PG) || madvise(p + 2 * PG, 2 * PG, MADV_DONTNEED))
				_exit(2);
			memset(stable + 4 * PG, 0xee, PG);
			if (madvise(stable + 4 * PG, 4 * PG, MADV_DONTNEED) || munmap(stable + 6 * PG, PG))
				_exit(3);
			for (unsigned k = 0; k < MOVERS; k++) {
				uint8_t *q = (uint8_t *)atomic_load(&ms[k].addr);

				if (!(atomic_load(&ms[k].seq) % 2))
					(void)munmap(q, atomic_load(&ms[k].len));
			}
			b = malloc(300 << 10);
			b = b ? realloc(b, 900 << 10) : NULL;
			free(b);
			_exit(0);
		}
		atomic_fetch_add(&st_forks, 1);
		while (waitpid(pid, &status, WNOHANG) == 0) {
			CHECK_MSG(++w < 30000, "a fork()ed child's calls on its own copy hang (30 s)");
			usleep(1000);
		}
		CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "a fork()ed child ended with status %#x", status);
		atomic_fetch_add(&st_child_ok, 1);
		/* "what it does to its copy never reaches the parent's registrations" (reg.h) */
		for (unsigned w2 = 0; w2 < 2; w2++) {
			struct iovm_mr *o = w2 ? stable_reg : stable_mr;
			struct iovm_mr_info inf = a25_info(o);

			CHECK_MSG(inf.valid_pages == inf.pages, "after a child's calls on its copy, the parent's %s has %llu of "
				  "%llu pages valid", w2 ? "region" : "MR", (unsigned long long)inf.valid_pages,
				  (unsigned long long)inf.pages);
			for (unsigned pg = 0; pg < 8; pg += 3) {
				const char *bad = a25_kept_page(&a, o, stable + pg * PG, stable_tag, pg);

				CHECK_MSG(!bad, "after a child's calls on its copy, page %u: %s", pg, bad);
			}
			atomic_fetch_add(&st_stable, 1);
		}
	}
	a17q_close(&R, &a);
	return NULL;
}

static void storm(bool one_cpu)
{
	pthread_t tm[MOVERS], tr[READERS], tf;
	struct iovm_reg_stats st;
	pid_t mine[1] = { (pid_t)syscall(SYS_gettid) };
	unsigned slowed = 0;

	/*
	 * Not under ThreadSanitizer: its memmove() marks the bytes read before
	 * copying, so each device read that faults on memory a move took away
	 * (the case's "after a returned call") reads to it as a read that
	 * happened, and the mover's later fill of new memory there as a race
	 * with it; the forker's fork() cannot wait for the monitor's reader;
	 * and 2 runs of 12 hung at the watchdog (not understood).
	 */
	if (TEST_TSAN)
		SKIP_CASE("ThreadSanitizer: a device read that faults reads to it as a read; fork(); see the case");

	memset(ms, 0, sizeof(ms));
	atomic_store(&st_stop, false);
	st_one_cpu = one_cpu;
	stable = a25_map_at(A25_AREA(10), 8 * PG);
	CHECK(stable != NULL);
	stable_tag = a25_tag();
	a25_fill(stable, 8, stable_tag);
	CHECK_OK(iovm_mr_reg(R.dom, stable, 8 * PG, A25_ACC, &stable_mr));
	CHECK_OK(iovm_rcache_get(RC, stable + 8, 8 * PG - 16, A25_ACC, &stable_reg));
	for (unsigned i = 0; i < MOVERS; i++) {
		size_t len = st_sizes[i];

		ms[i].end[0] = A25_AREA(11) + (uint64_t)i * (256u << 20);
		ms[i].end[1] = ms[i].end[0] + (64u << 20) + (i % 2) * PG;
		CHECK(a25_map_at(ms[i].end[0], len) == ms[i].end[0]);
		ms[i].tag = a25_tag();
		a25_fill(ms[i].end[0], len / PG, ms[i].tag);
		atomic_store(&ms[i].addr, (uintptr_t)ms[i].end[0]);
		atomic_store(&ms[i].len, len);
	}
	if (one_cpu) {
		slowed = a25_pin_all(0, mine, 1, 19);
		printf("# [%s] every thread on CPU 0, %u of the library's threads at nice 19\n", test_current, slowed);
	}
	st_deadline = a25_now_ns() + (one_cpu ? 8 : 6) * UINT64_C(1000000000);
	atomic_store(&st_movers_left, MOVERS);
	for (unsigned i = 0; i < MOVERS; i++)
		CHECK_OK(-pthread_create(&tm[i], NULL, mover, (void *)(uintptr_t)i));
	for (unsigned i = 0; i < READERS; i++)
		CHECK_OK(-pthread_create(&tr[i], NULL, reader, (void *)(uintptr_t)i));
	CHECK_OK(-pthread_create(&tf, NULL, forker, NULL));
	for (unsigned i = 0; i < MOVERS; i++)
		pthread_join(tm[i], NULL);
	for (unsigned i = 0; i < READERS; i++)
		pthread_join(tr[i], NULL);
	pthread_join(tf, NULL);
	if (one_cpu)
		a25_pin_all(-1, mine, 1, 0); /* the nice value may stay (unprivileged): this case runs last */
	CHECK_OK(iovm_reg_stats(R.ctx, &st));
	printf("# [%s] ops:", test_current);
	for (unsigned k = 0; k < 5; k++)
		printf(" %s %lu", st_opname[k], atomic_exchange(&st_ops[k], 0));
	printf(" (dontunmap refused by the kernel, a move instead: %lu; growths across split mappings, a move instead: %lu; "
	       "moves of split watched mappings, munmap and a fresh mapping instead: %lu, of them partly moved %lu, pages %lu)",
	       atomic_exchange(&st_dontunmap_refused, 0), atomic_exchange(&st_grow_split, 0),
	       atomic_exchange(&st_move_split, 0), atomic_exchange(&st_partial, 0), atomic_exchange(&st_partial_pages, 0));
	printf("\n# [%s] mover checks %lu; reader reads %lu: strict %lu, after a returned call (faulted) %lu (reads that waited for one %lu), raced %lu; "
	       "forks %lu (children clean %lu), stable checks %lu, ENOMEM %lu; monitor events %llu (remap %llu, fork %llu)\n",
	       test_current, atomic_load(&st_mover_checks), atomic_load(&st_reads), atomic_load(&st_strict),
	       atomic_load(&st_after_fault), atomic_exchange(&st_waited, 0), atomic_load(&st_raced), atomic_load(&st_forks), atomic_load(&st_child_ok),
	       atomic_load(&st_stable), atomic_load(&st_enomem), (unsigned long long)st.monitor_events,
	       (unsigned long long)st.events_remap, (unsigned long long)st.events_fork);
	/* On one CPU of a busy machine the movers may make few calls: their own checks, and reads, must have run. */
	CHECK_MSG(atomic_load(&st_mover_checks) > 0 &&
		  (one_cpu || (atomic_load(&st_strict) > 0 && atomic_load(&st_after_fault) > 0)),
		  "the storm checked nothing: nothing attacked");
	CHECK_MSG(atomic_load(&st_forks) == 0 || atomic_load(&st_stable) > 0, "no stable check after a fork");
	atomic_store(&st_mover_checks, 0);
	atomic_store(&st_reads, 0);
	atomic_store(&st_strict, 0);
	atomic_store(&st_after_fault, 0);
	atomic_store(&st_raced, 0);
	atomic_store(&st_forks, 0);
	atomic_store(&st_child_ok, 0);
	atomic_store(&st_stable, 0);
	atomic_store(&st_enomem, 0);
	for (unsigned i = 0; i < MOVERS; i++)
		CHECK_OK(munmap((void *)atomic_load(&ms[i].addr), atomic_load(&ms[i].len)));
	CHECK_OK(iovm_rcache_put(RC, stable_reg));
	CHECK_OK(iovm_mr_dereg(stable_mr));
	CHECK_OK(munmap(stable, 8 * PG));
}

TEST(movers_storm)
{
	storm(false);
}

A25_CASE(movers_storm)

TEST(movers_storm_one_cpu)
{
	storm(true);
}

A25_CASE(movers_storm_one_cpu)
