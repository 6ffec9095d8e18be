/* SPDX-License-Identifier: MIT */
/*
 * attack24_storm.c - the storm (test_attack24_monitor): registrations
 * nobody takes away, fork() and brk shrinks in the middle, storm() that
 * starts every thread and checks what they did, and the storm's cases.
 * The threads are attack24_storm_threads.c's and
 * attack24_storm_rcache.c's.
 */
#include "attack/attack24.h"

A24_HARNESS(storm);

/* ---- stable registrations nobody takes away (fork: the child's calls must not reach them) ---- */

#define NSTABLE 4
static struct slot stable[NSTABLE];

static void stable_open(void)
{
	for (unsigned k = 0; k < NSTABLE; k++) {
		struct slot *s = &stable[k];

		s->npages = 3 + k;
		s->map_pages = s->npages + 2;
		s->map = map_anon((size_t)s->map_pages * PG, false);
		s->first = 1;
		s->off = k * 100;
		s->len = (size_t)s->npages * PG - s->off;
		s->tag = next_tag();
		for (unsigned i = 0; i < s->map_pages; i++)
			pat(s->map + (size_t)i * PG, s->tag, i);
		CHECK_OK(iovm_mr_reg(R.dom, s->map + PG + s->off, s->len, ACC, &s->mr));
		s->iova0 = mr_iova(s->mr, s->map + PG + s->off) - s->off;
	}
}

static void stable_check(struct a17q *a, const char *when)
{
	struct iovm_reg_stats st;

	CHECK_OK(iovm_reg_stats(R.ctx, &st));
	for (unsigned k = 0; k < NSTABLE; k++) {
		struct slot *s = &stable[k];
		struct iovm_mr_info info;

		CHECK_OK(iovm_mr_query(s->mr, &info));
		if (st.ring_overflows == 0)
			CHECK_MSG(info.valid_pages == s->npages,
				  "%s: a stable MR nobody in this process touched has %llu of %u pages valid "
				  "(no ring overflow)",
				  when, (unsigned long long)info.valid_pages, s->npages);
		for (unsigned i = 0; i < s->npages; i++) {
			unsigned o, n;
			uint8_t stt = read_page(a, s, i, &o, &n);

			if (stt == IOVM_STATUS_PAGE_FAULT && st.ring_overflows)
				continue;
			CHECK_MSG(stt == IOVM_STATUS_SUCCESS && pat_eq(a->buf, s->tag, 1 + i, o, n),
				  "%s: stable MR %u page %u: status %u, %s", when, k, i, stt,
				  stt == IOVM_STATUS_SUCCESS ? "not its words" : "");
		}
		atomic_fetch_add(&c_stable_checks, 1);
	}
}

static void stable_close(void)
{
	for (unsigned k = 0; k < NSTABLE; k++) {
		CHECK_OK(iovm_mr_dereg(stable[k].mr));
		munmap(stable[k].map, (size_t)stable[k].map_pages * PG);
	}
}

/* ---- fork in the middle ---- */

static int child_body(unsigned n)
{
	/* The child's calls on its copies: of live slots and of the stable MRs. */
	alarm(20);
	if (getenv("A24_CHILD_IDLE")) /* (diagnosis: a child that does nothing) */
		return 0;
	for (unsigned k = 0; k < NSTABLE; k++) {
		struct slot *s = &stable[k];

		switch ((n + k) % 4) {
		case 0:
			munmap(s->map + PG, PG);
			break;
		case 1:
			madvise(s->map + PG, (size_t)s->npages * PG, MADV_DONTNEED_LOCKED);
			break;
		case 2:
			mmap(s->map + PG, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
			break;
		default:
			if (mremap(s->map, (size_t)s->map_pages * PG, PG, 0) == MAP_FAILED)
				return 4;
			break;
		}
	}
	for (unsigned k = 0; k < nslots; k++) {
		struct slot *s = &slots[k];

		if (atomic_load(&s->live) && s->map)
			munmap(s->map, (size_t)s->map_pages * PG);
	}
	/*
	 * Under AddressSanitizer nothing that allocates: gcc 12's fork() takes
	 * none of its allocator's locks, and the storm's threads allocate all
	 * along, so a child may inherit one held and wait for ever
	 * (tests/mp/mp_util.h's fork_when_threads_rest(), which a storm never
	 * satisfies). The gcc and clang legs run the rest.
	 */
	if (TEST_ASAN)
		return 0;
	free(malloc(1u << 20));
	if (n % 4 == 0) { /* a context of its own: it may */
		struct iovm_ctx *ctx;
		struct iovm_domain *dom;
		struct iovm_domain_attr da = { .type = IOVM_DOMAIN_MANAGED };
		struct iovm_mr *mr;
		struct iovm_mr_info info;
		uint8_t *p = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED)
			return 5;
		if (iovm_open(REG_OPTS ",log_level=error", &ctx))
			return 6;
		if (iovm_domain_create(ctx, &da, &dom))
			return 7;
		if (iovm_mr_reg(dom, p, 4 * PG, IOVM_ACCESS_LOCAL_WRITE, &mr))
			return 8;
		if (munmap(p + PG, PG))
			return 9;
		if (iovm_mr_query(mr, &info) || (info.monitored && info.valid_pages != 3))
			return 10;
		if (iovm_mr_dereg(mr) || iovm_domain_destroy(dom))
			return 11;
		iovm_close(ctx);
		return 0;
	}
	return 0;
}

static void *forker(void *arg)
{
	struct targ *t = arg;
	struct a17q a;

	(void)t;
	a17q_open(&R, &a, BUFLEN, IOVM_QUEUE_POLLED);
	pthread_barrier_wait(&go);
	for (unsigned n = 0; n < C.forks && !atomic_load(&stop); n++) {
		int status = 0;
		pid_t pid;

		for (unsigned y = 0; y < 50; y++)
			sched_yield();
		atomic_fetch_add(&fork_epoch, 1);
		pid = fork();
		CHECK(pid >= 0);
		if (pid == 0)
			_exit(child_body(n));
		CHECK_EQ(waitpid(pid, &status, 0), pid);
		atomic_fetch_add(&fork_epoch, 1);
		CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			  "fork %u: the child %s %d (SIGALRM: it hung; a code: the step that failed)", n,
			  WIFEXITED(status) ? "exited" : "was killed by signal",
			  WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
		atomic_fetch_add(&c_forks, 1);
		if (n % 4 == 0 && !TEST_ASAN)
			atomic_fetch_add(&c_child_ctx, 1);
		stable_check(&a, "after a child's calls on its copy");
	}
	a17q_close(&R, &a);
	return NULL;
}

/* ---- brk shrink ---- */

static void *brker(void *arg)
{
	struct targ *t = arg;
	struct a17q a;
	uint64_t rng = t->seed;
	uint8_t *base;

	a17q_open(&R, &a, BUFLEN, IOVM_QUEUE_POLLED);
	pthread_barrier_wait(&go);
	base = sbrk(0);
	CHECK(base != (void *)-1);
	if ((uintptr_t)base & (PG - 1)) {
		CHECK(sbrk((intptr_t)(PG - ((uintptr_t)base & (PG - 1)))) != (void *)-1);
		base = sbrk(0);
	}
	for (unsigned it = 0; it < C.iters * 2 && !atomic_load(&stop); it++) {
		unsigned np = 1 + (unsigned)(test_rand(&rng) % 24), k = 1 + (unsigned)(test_rand(&rng) % np);
		unsigned off = (unsigned)(test_rand(&rng) % 512), reg_np = np, taken;
		uint32_t tag = next_tag();
		struct iovm_mr *mr;
		struct iovm_mr_info info;

		CHECK_MSG(sbrk(0) == base, "brk moved under the test (another brk user): skip would hide it");
		CHECK(sbrk((intptr_t)np * PG) == base);
		for (unsigned i = 0; i < np; i++)
			pat(base + (size_t)i * PG, tag, i);
		CHECK_OK(iovm_mr_reg(R.dom, base + off, (size_t)reg_np * PG - off, ACC, &mr));
		{
			uint64_t iova0 = mr_iova(mr, base + off) - off;

			memset(a.buf, 0x5a, PG);
			CHECK_EQ(a17_copy(&a, iova0 + off, a.buf_iova, PG - off), IOVM_STATUS_SUCCESS);
			CHECK(pat_eq(a.buf, tag, 0, off, PG - off));
			/* Shrink by k pages: the top k go. */
			CHECK(sbrk(-(intptr_t)k * PG) != (void *)-1);
			taken = k;
			CHECK_OK(iovm_mr_query(mr, &info));
			CHECK_MSG(info.valid_pages + taken <= np,
				  "brk shrunk by %u of the MR's %u pages (returned), yet %llu valid: stale", k, np,
				  (unsigned long long)info.valid_pages);
			/* Grown again: fresh pages at the same addresses. */
			CHECK(sbrk((intptr_t)k * PG) != (void *)-1);
			memset(base + (size_t)(np - k) * PG, 0xa5, (size_t)k * PG);
			for (unsigned i = np - k; i < np; i++) {
				unsigned o = i ? 0 : off;
				uint8_t stt;

				memset(a.buf, 0x5a, PG);
				stt = a17_copy(&a, iova0 + (uint64_t)i * PG + o, a.buf_iova, PG - o);
				CHECK_MSG(stt == IOVM_STATUS_PAGE_FAULT && a17_all(a.buf, 0x5a, PG - o),
					  "brk shrink of %u pages returned, brk grown again: a device read of taken page "
					  "%u: status %u%s: stale",
					  k, i, stt, a17_any(a.buf, 0xa5, PG - o) ? ", the new pages' bytes" : "");
				atomic_fetch_add(&c_brk_pages, 1);
			}
			for (unsigned i = 0; i < np - k; i++) {
				unsigned o = i ? 0 : off;
				uint8_t stt;

				stt = a17_copy(&a, iova0 + (uint64_t)i * PG + o, a.buf_iova, PG - o);
				if (stt == IOVM_STATUS_PAGE_FAULT) {
					atomic_fetch_add(&c_overinval, 1);
					continue;
				}
				CHECK_MSG(stt == IOVM_STATUS_SUCCESS && pat_eq(a.buf, tag, i, o, PG - o),
					  "brk: untouched page %u: status %u", i, stt);
			}
		}
		CHECK_OK(iovm_mr_dereg(mr));
		CHECK(sbrk(-(intptr_t)np * PG) != (void *)-1);
		atomic_fetch_add(&c_brk, 1);
	}
	a17q_close(&R, &a);
	return NULL;
}

/* ---- the storm ---- */

static void storm(const struct cfg *cfg)
{
	pthread_t th[MAXTHREADS];
	struct targ ta[MAXTHREADS];
	unsigned nt = 0, nworkers;
	uint64_t seed = (uint64_t)getpid() * 1000003 + (uint64_t)cfg->workers * 131 + cfg->iters;
	const char *se = getenv("A24_SEED");
	struct a17q a;

	/*
	 * Under ThreadSanitizer storm32_monitor_behind hung once (2026-12-06):
	 * ten threads in the kernel waiting for the monitor's reader to read
	 * their events, the reader not reading; not seen in other builds, the
	 * cause not found yet (the sanitizer's runtime, whose own system calls
	 * take the userfaultfd way while it holds its locks, is suspected).
	 * A24_TSAN=1 runs them.
	 */
	if (TEST_TSAN && !getenv("A24_TSAN"))
		SKIP_CASE("ThreadSanitizer: a storm hung once, cause not found (A24_TSAN=1 runs it)");

	if (se)
		seed = strtoull(se, NULL, 0);
	C = *cfg;
	if (getenv("A24_NO_RCACHE")) /* (diagnosis) */
		C.rcachers = 0;
	if (getenv("A24_NO_FORK"))
		C.forker = false;
	if (getenv("A24_HUGE_EVERY"))
		C.huge_every = (unsigned)atoi(getenv("A24_HUGE_EVERY"));
	if (getenv("A24_SHARED_EVERY"))
		C.shared_every = (unsigned)atoi(getenv("A24_SHARED_EVERY"));
	if (getenv("A24_NO_NOISE"))
		C.odp_noise = false;
	printf("# seed %#llx (A24_SEED=%#llx repeats it)\n", (unsigned long long)seed, (unsigned long long)seed);
	zero_counters();
	atomic_store(&stop, false);
	atomic_store(&n_my_tids, 0);
	nslots = C.workers;
	CHECK(nslots <= MAXSLOTS);
	memset(slots, 0, sizeof(slots));
	if (C.odp_noise) {
		noise_len = 16u << 20;
		noise = map_anon(noise_len, false);
		memset(noise, 3, noise_len);
		CHECK_OK(iovm_mr_reg(R.dom, noise, noise_len, IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_ON_DEMAND,
				     &noise_mr));
	}
	if (C.rcachers) {
		struct iovm_rcache_attr ra = { .max_regions = 24 };

		CHECK_OK(iovm_rcache_create(R.dom, &ra, &RC));
	}
	stable_open();
	nworkers = C.workers;
	CHECK(pthread_barrier_init(&go, NULL,
				   C.workers + C.readers + C.churners + C.rcachers + C.forker + C.brker + 1) == 0);
	for (unsigned i = 0; i < C.workers; i++, nt++) {
		ta[nt] = (struct targ){ nt, seed * 7919 + nt * 104729 + 1 };
		ta[nt].id = i;
		CHECK_OK(-pthread_create(&th[nt], NULL, worker, &ta[nt]));
	}
	{
		unsigned first_other = nt;

		for (unsigned i = 0; i < C.readers; i++, nt++) {
			ta[nt] = (struct targ){ nt, seed * 31 + nt * 7 + 1 };
			CHECK_OK(-pthread_create(&th[nt], NULL, reader, &ta[nt]));
		}
		for (unsigned i = 0; i < C.churners; i++, nt++) {
			ta[nt] = (struct targ){ nt, seed * 37 + nt * 11 + 1 };
			CHECK_OK(-pthread_create(&th[nt], NULL, churner, &ta[nt]));
		}
		for (unsigned i = 0; i < C.rcachers; i++, nt++) {
			ta[nt] = (struct targ){ nt, seed * 41 + nt * 13 + 1 };
			CHECK_OK(-pthread_create(&th[nt], NULL, rcacher, &ta[nt]));
		}
		if (C.forker) {
			ta[nt] = (struct targ){ nt, seed + 5 };
			CHECK_OK(-pthread_create(&th[nt], NULL, forker, &ta[nt]));
			nt++;
		}
		if (C.brker) {
			ta[nt] = (struct targ){ nt, seed + 9 };
			CHECK_OK(-pthread_create(&th[nt], NULL, brker, &ta[nt]));
			nt++;
		}
		atomic_store(&c_phase, 1);
		pthread_barrier_wait(&go);
		if (C.starve) {
			unsigned slowed = starve_library_threads();

			printf("# %u thread(s) not the test's set to nice 19\n", slowed);
			CHECK(slowed >= 1);
		}
		/* Workers (and the forker and brk thread) end by their counts; then the rest stop. */
		for (unsigned i = 0; i < nworkers; i++)
			pthread_join(th[i], NULL);
		atomic_store(&c_phase, 2);
		if (C.forker || C.brker)
			for (unsigned i = nt - C.forker - C.brker; i < nt; i++)
				pthread_join(th[i], NULL);
		atomic_store(&stop, true);
		atomic_store(&c_phase, 3);
		for (unsigned i = first_other; i < nt - C.forker - C.brker; i++)
			pthread_join(th[i], NULL);
	}
	atomic_store(&c_phase, 4);
	pthread_barrier_destroy(&go);
	a17q_open(&R, &a, BUFLEN, IOVM_QUEUE_POLLED);
	stable_check(&a, "after the storm");
	a17q_close(&R, &a);
	stable_close();
	if (RC) {
		CHECK_OK(iovm_rcache_destroy(RC));
		RC = NULL;
	}
	if (noise) {
		CHECK_OK(iovm_mr_dereg(noise_mr));
		munmap(noise, noise_len);
		noise = NULL;
	}
	no_violations(R.dom);
	print_counters(stdout);
	/* Nothing vacuous: the storm did what it says. */
	CHECK_MSG(atomic_load(&c_iters) + atomic_load(&c_reg_enomem) + atomic_load(&c_reg_efault) +
				  atomic_load(&c_fresh_refused) + atomic_load(&c_relock_kept) >=
			  C.workers * C.iters,
		  "only %lu of %u take-aways ran", atomic_load(&c_iters), C.workers * C.iters);
	CHECK(atomic_load(&c_taken_faults) > 0);
	if (C.readers)
		CHECK(atomic_load(&c_reader_gone) > 0 && atomic_load(&c_reader_present) > 0 &&
		      atomic_load(&c_queries) > 0);
	if (C.rcachers)
		CHECK(atomic_load(&c_rc_fresh) > 0);
	if (C.forker)
		CHECK(atomic_load(&c_forks) == C.forks);
	if (C.brker)
		CHECK(atomic_load(&c_brk) > 0);
}

/* ---- the cases ---- */

/* 16 threads take pinned memory away by every call, readers and queries at once, unregistered churn. */
TEST(storm16_every_call)
{
	alarm(110);
	storm(&(struct cfg){ .workers = 16, .readers = 4, .churners = 2, .iters = rounds(50), .max_pages = 12,
			     .huge_every = 12, .shared_every = 6 });
}

/* 32 threads, small odd regions, a large on-demand MR churned under (thousands of events), nice -5. */
TEST(storm32_monitor_behind)
{
	alarm(110);
	storm(&(struct cfg){ .workers = 24, .readers = 4, .churners = 4, .iters = rounds(60), .max_pages = 3,
			     .shared_every = 8, .odp_noise = true, .nice = true });
}

/*
 * The same with the library's own threads (the monitor's) at nice 19:
 * under taskset -c 0 the monitor gets next to no CPU, and every lookup
 * that finds it with events in hand waits for it. Nothing may hang or go
 * stale; it takes long (20 to 80 s here, against 1 s), so it runs only
 * with A24_STARVE=1.
 */
TEST(storm_monitor_starved)
{
	if (!getenv("A24_STARVE"))
		SKIP_CASE("slow: A24_STARVE=1 runs it");
	alarm(300);
	storm(&(struct cfg){ .workers = 24, .readers = 4, .churners = 4, .iters = rounds(30), .max_pages = 3,
			     .shared_every = 8, .odp_noise = true, .nice = true, .starve = true });
}

/*
 * The registration cache under the storm. Without IOVM_HOOKS=all the
 * rcache users take memory away by munmap() only (hooked by default): the
 * calls that go the userfaultfd way are rcache_storm_unhooked's, which
 * found them stale.
 */
TEST(rcache_storm)
{
	alarm(110);
	rc_nops = hooks_all() ? 4 : 1;
	printf("# rcache users' calls: %s\n", rc_nops == 4 ? "munmap, MAP_FIXED, DONTNEED_LOCKED, mremap shrink" :
								"munmap only");
	storm(&(struct cfg){ .workers = 8, .readers = 2, .churners = 2, .rcachers = 6, .iters = rounds(80),
			     .max_pages = 8, .odp_noise = true });
	rc_nops = 4;
}

/*
 * BROKEN (IOVM_HOOKS unset): a cache region held, or put back, over memory
 * that an unhooked call (mmap MAP_FIXED, madvise DONTNEED_LOCKED, mremap
 * shrink: the userfaultfd way) took away stays valid after the call
 * returned: iovm_mr_query() counts every page valid and the device reaches
 * the new page; a get of memory mapped anew at the same address hands out
 * the old region (a hit, every page valid). Some yields later the region
 * is all invalid (late, not lost). With IOVM_HOOKS=all it passes: there it
 * is rcache_storm itself, and skipped.
 */
TEST(rcache_storm_unhooked)
{
	if (hooks_all())
		SKIP_CASE("IOVM_HOOKS=all: rcache_storm ran these calls");
	A24_KNOWN("rcache regions stay valid after an unhooked MAP_FIXED / madvise(DONTNEED_LOCKED) / mremap "
		  "shrink returned (device reaches the new page); gets hand out the old region");
	alarm(110);
	rc_nops = 4;
	storm(&(struct cfg){ .workers = 8, .readers = 2, .churners = 2, .rcachers = 6, .iters = rounds(80),
			     .max_pages = 8, .odp_noise = true });
}

/*
 * fork() in the middle: the child's calls, the child's own context; the
 * parent goes on. Two rcache users take their memory away by munmap()
 * only, unless IOVM_HOOKS=all or IOVM_ATTACK24_KNOWN=1: with every call
 * and the hooks off, the broken promise of the head of this file shows
 * in most runs.
 */
TEST(fork_in_storm)
{
	if (TEST_TSAN)
		SKIP_CASE("TSan's fork handler blocks the monitor's reader");
	alarm(110);
	rc_nops = hooks_all() || known_on() ? 4 : 1;
	printf("# rcache users' calls: %s\n", rc_nops == 4 ? "munmap, MAP_FIXED, DONTNEED_LOCKED, mremap shrink" :
								"munmap only (the others: IOVM_ATTACK24_KNOWN=1)");
	storm(&(struct cfg){ .workers = 8, .readers = 3, .churners = 2, .rcachers = 2, .iters = rounds(40),
			     .max_pages = 8, .huge_every = 16, .shared_every = 8, .odp_noise = true, .forker = true,
			     .forks = rounds(10) });
	rc_nops = 4;
}

/* brk shrink (the main heap's end) under the storm. */
TEST(brk_in_storm)
{
	if (TEST_OWN_MALLOC)
		SKIP_CASE("a sanitizer's malloc");
	/* The main arena keeps a large top it never trims or grows while the test moves brk. */
	mallopt(M_TRIM_THRESHOLD, 1 << 30);
	mallopt(M_TOP_PAD, 64 << 20);
	mallopt(M_MMAP_THRESHOLD, 4 << 20);
	free(malloc(1 << 20));
	mallopt(M_TOP_PAD, 0);
	alarm(110);
	storm(&(struct cfg){ .workers = 8, .readers = 3, .churners = 2, .iters = rounds(80), .max_pages = 6,
			     .brker = true });
}

/* main()'s list runs these (test_attack24_monitor.c). */
A24_CASE(storm16_every_call)
A24_CASE(storm32_monitor_behind)
A24_CASE(storm_monitor_starved)
A24_CASE(rcache_storm)
A24_CASE(rcache_storm_unhooked)
A24_CASE(fork_in_storm)
A24_CASE(brk_in_storm)
