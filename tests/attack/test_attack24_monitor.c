/* SPDX-License-Identifier: MIT */
/*
 * test_attack24_monitor.c - the memory monitor's promise (iovm/reg.h:
 * "registered memory follows the process's address space") under storms:
 * 8 to 32 threads take registered memory away (munmap, mmap MAP_FIXED,
 * mremap move and shrink, madvise DONTNEED_LOCKED, munlock + DONTNEED,
 * munlock + FREE, munlock + REMOVE on shared memory) in tight loops, with
 * odd offsets and lengths, ranges that straddle registered and unregistered
 * pages, and 2 MiB-aligned regions; other threads read every registration
 * through the software engine and query it at once, churn unregistered
 * memory and a large on-demand registration (events by the thousand), use
 * the registration cache, shrink brk, and fork() in the middle of it.
 * Meant to run under `taskset -c 0` too (one CPU: a monitor far behind),
 * with and without IOVM_HOOKS=all.
 *
 * What is asserted, never timing:
 *  - once a call that took pages away has returned (published with a
 *    release store), every thread's iovm_mr_query() counts them invalid,
 *    and every device access to them faults, touching nothing (the pages
 *    are filled anew with 0xa5 so that a stale registration would show);
 *  - a device read of a page nobody took away that succeeds brings
 *    exactly the page's own words;
 *  - the registration cache never hands out a region whose memory went:
 *    after the memory is mapped anew at the same address, a get reaches
 *    the new words whole;
 *  - a fork()ed child (its own calls on its copy, its own context) exits
 *    cleanly, and its calls never reach the parent's registrations;
 *  - nothing hangs (alarm() watchdogs, in the parent and in children).
 * Written from the public headers; every check is counted and printed.
 *
 * A24_ROUNDS scales the loops; IOVM_TEST=<name> runs one case;
 * IOVM_ATTACK24_KNOWN=1 runs the cases that found a broken promise;
 * A24_SEED repeats a storm's seed (printed). For diagnosis only:
 * A24_NO_FORK, A24_NO_RCACHE, A24_NO_NOISE, A24_CHILD_IDLE,
 * A24_HUGE_EVERY=n, A24_SHARED_EVERY=n change a storm's make-up.
 *
 * Found (2026-12-06), IOVM_HOOKS unset, behind IOVM_ATTACK24_KNOWN=1:
 *  - the registration cache hands out a region registered over memory
 *    that is gone: a get of memory the thread has just mapped (fresh
 *    address from mmap(NULL)) is a hit (the cache's hits +1, misses +0
 *    over the get) on a region wider than the new mapping, every page
 *    "valid"; the region then stays valid after an unhooked call on the
 *    new memory returned (mmap MAP_FIXED, madvise DONTNEED_LOCKED, mremap
 *    shrink): iovm_mr_query() counts every page valid and a device read
 *    of the replaced page succeeds (the new page's bytes); some yields
 *    later the whole region reads invalid. Seen in fork_in_storm (rcache
 *    users taking memory away by every call: 8 runs of 10) and
 *    rcache_storm_unhooked (2 of 10); never with IOVM_HOOKS=all, never
 *    when the rcache users take memory away by munmap() alone (the
 *    default run), never with plain MRs (iovm_mr_reg), and not in the
 *    one-thread reductions here (rcache_overlap_then_calls,
 *    rcache_over_a_plain_mr, fork_then_calls pass).
 *    The likeliest account (known-gaps.md): an unhooked mremap() that
 *    shrinks or moves frees its addresses before its event is queued;
 *    another thread maps there and its get hits the old region before the
 *    monitor reads the event. The region's own pages are the old memory's,
 *    and the new memory raises no event for it. reg.h now says so.
 *
 * Seen and tolerated (counted, printed), as reg.h allows them: a fresh
 * registration whose pages are refused (memory mapped into a hole another
 * thread's call is still making); remap_after_return_registers_whole
 * asks the case reg.h promises (the call returned first) exactly, and
 * passes.
 */
#include <dirent.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "attack/attack17.h"

#ifndef MADV_DONTNEED_LOCKED
#define MADV_DONTNEED_LOCKED 24
#endif
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#define A24_KNOWN(bug)                                                                   \
	do {                                                                             \
		const char *_k = getenv("IOVM_ATTACK24_KNOWN");                          \
		if (!_k || strcmp(_k, "1"))                                              \
			SKIP_CASE("known bug (IOVM_ATTACK24_KNOWN=1 runs it): %s", bug); \
	} while (0)

#define MB2 (UINT64_C(2) << 20)
#define MAXP 512 /* pages of a 2 MiB region */
#define MAXSLOTS 32
#define MAXTHREADS 64
#define BUFLEN (64u << 10)
#define ACC (IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_REMOTE_READ | IOVM_ACCESS_REMOTE_WRITE)

static struct rig R;

static unsigned rounds(unsigned base)
{
	const char *s = getenv("A24_ROUNDS");
	unsigned m = s ? (unsigned)atoi(s) : 1;

	/* Half as many under ASan, which runs the whole suite again (make check's time). */
	if (TEST_ASAN && !s)
		return base / 2 ? base / 2 : 1;
	return base * (m ? m : 1);
}

/* ---- counters, printed at the end of each case and by the watchdog ---- */

static atomic_ulong c_iters, c_taken_pages, c_taken_faults, c_writes_faulted, c_present_ok, c_overinval,
	c_reader_reads, c_reader_gone, c_reader_present, c_reader_inflight, c_queries, c_query_gone,
	c_churn, c_odp_noise, c_rc_gets, c_rc_held_taken, c_rc_fresh, c_rc_efault, c_forks, c_child_ctx,
	c_stable_checks, c_brk, c_brk_pages, c_reg_enomem, c_reg_efault, c_rc_lost_addr, c_rc_wider, c_fresh_refused, c_relocked, c_relock_kept, c_rc_get_faulted, c_rc_old_region, c_ops[10];
static atomic_int c_phase;
static atomic_uint fork_epoch; /* odd while a fork() and its child run */

static const char *opname[] = { "munmap", "mmap_fixed", "mremap_move", "mremap_shrink", "dontneed_locked",
				"munlock_dontneed", "munlock_free", "munlock_remove" };
enum { OP_MUNMAP, OP_FIXED, OP_MOVE, OP_SHRINK, OP_DN_LOCKED, OP_UNLOCK_DN, OP_UNLOCK_FREE, OP_REMOVE, NOPS };

static void zero_counters(void)
{
	atomic_ulong *all[] = { &c_iters, &c_taken_pages, &c_taken_faults, &c_writes_faulted, &c_present_ok,
				&c_overinval, &c_reader_reads, &c_reader_gone, &c_reader_present,
				&c_reader_inflight, &c_queries, &c_query_gone, &c_churn, &c_odp_noise, &c_rc_gets,
				&c_rc_held_taken, &c_rc_fresh, &c_rc_efault, &c_forks, &c_child_ctx,
				&c_stable_checks, &c_brk, &c_brk_pages, &c_reg_enomem, &c_reg_efault, &c_rc_lost_addr, &c_rc_wider, &c_fresh_refused, &c_relocked, &c_relock_kept, &c_rc_get_faulted, &c_rc_old_region };

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		atomic_store(all[i], 0);
	for (unsigned i = 0; i < 10; i++)
		atomic_store(&c_ops[i], 0);
}

static void print_counters(FILE *f)
{
	struct iovm_reg_stats st;

	fprintf(f,
		"# [%s] iterations %lu, taken pages %lu (device faulted on %lu, writes faulted %lu), present "
		"pages read back %lu (over-invalidated %lu)\n"
		"#   reader reads %lu (gone %lu, present %lu, in flight %lu), queries %lu (with gone pages %lu)\n"
		"#   churn %lu, odp noise %lu, rcache gets %lu (held over a take %lu, fresh after remap %lu, "
		"efault %lu)\n"
		"#   forks %lu (child contexts %lu), stable checks %lu, brk rounds %lu (pages %lu), reg ENOMEM %lu EFAULT %lu\n"
		"#   rcache: address lost to another thread %lu, wider regions %lu; fresh MRs with refused pages %lu, relocked %lu (kept %lu),\n"
		"#   rcache gets handing out a region with invalid pages (old region or refused) %lu, of them a "
		"region reaching beyond the new mapping (old, surely) %lu\n"
		"#   ops:",
		test_current, atomic_load(&c_iters), atomic_load(&c_taken_pages), atomic_load(&c_taken_faults),
		atomic_load(&c_writes_faulted), atomic_load(&c_present_ok), atomic_load(&c_overinval),
		atomic_load(&c_reader_reads), atomic_load(&c_reader_gone), atomic_load(&c_reader_present),
		atomic_load(&c_reader_inflight), atomic_load(&c_queries), atomic_load(&c_query_gone),
		atomic_load(&c_churn), atomic_load(&c_odp_noise), atomic_load(&c_rc_gets),
		atomic_load(&c_rc_held_taken), atomic_load(&c_rc_fresh), atomic_load(&c_rc_efault),
		atomic_load(&c_forks), atomic_load(&c_child_ctx), atomic_load(&c_stable_checks),
		atomic_load(&c_brk), atomic_load(&c_brk_pages), atomic_load(&c_reg_enomem),
		atomic_load(&c_reg_efault), atomic_load(&c_rc_lost_addr), atomic_load(&c_rc_wider),
		atomic_load(&c_fresh_refused), atomic_load(&c_relocked), atomic_load(&c_relock_kept),
		atomic_load(&c_rc_get_faulted),
		atomic_load(&c_rc_old_region));
	for (unsigned i = 0; i < NOPS; i++)
		fprintf(f, " %s %lu", opname[i], atomic_load(&c_ops[i]));
	fprintf(f, "\n");
	if (R.ctx && !iovm_reg_stats(R.ctx, &st))
		fprintf(f,
			"#   monitor %d, events %llu (unmap %llu remove %llu remap %llu fork %llu), invalidated "
			"pages %llu, ring overflows %llu\n",
			st.monitor, (unsigned long long)st.monitor_events, (unsigned long long)st.events_unmap,
			(unsigned long long)st.events_remove, (unsigned long long)st.events_remap,
			(unsigned long long)st.events_fork, (unsigned long long)st.invalidated_pages,
			(unsigned long long)st.ring_overflows);
}

static void on_alarm(int sig)
{
	(void)sig;
	fprintf(stderr, "FAIL [%s]: watchdog: no end after the alarm (phase %d): a lookup or a call hangs\n",
		test_current, atomic_load(&c_phase));
	print_counters(stderr);
	_exit(1);
}

/* ---- pages that name themselves ---- */

static inline uint64_t word(uint32_t tag, unsigned page, unsigned i)
{
	return 0x8000000000000000ull | ((uint64_t)tag << 32) | ((uint64_t)page << 12) | i;
}

static void pat(uint8_t *p, uint32_t tag, unsigned page)
{
	uint64_t *w = (uint64_t *)p;

	for (unsigned i = 0; i < PG / 8; i++)
		w[i] = word(tag, page, i);
}

/* Bytes [off, off+n) of page @page of tag @tag equal @got. */
static bool pat_eq(const uint8_t *got, uint32_t tag, unsigned page, unsigned off, unsigned n)
{
	uint64_t w[PG / 8];

	pat((uint8_t *)w, tag, page);
	return memcmp(got, (uint8_t *)w + off, n) == 0;
}

static uint32_t next_tag(void)
{
	static atomic_uint t = 1;

	return atomic_fetch_add(&t, 1) & 0x7fffffff;
}

/* ---- registered regions, published to readers ---- */

struct slot {
	_Atomic int live;
	_Atomic unsigned readers;
	struct iovm_mr *mr;
	uint8_t *map;       /* the mapping: a guard page, the MR's span, a guard page */
	unsigned map_pages;
	unsigned first;     /* the span's first page in the mapping */
	unsigned npages;    /* the span */
	unsigned off;       /* the MR starts this far into the span's first page */
	size_t len;
	uint64_t iova0;     /* IOVA of the span's first page */
	uint32_t tag;
	_Atomic uint8_t st[MAXP]; /* 0 present, 1 a call taking it in flight, 2 the call returned */
};

static struct slot slots[MAXSLOTS];
static unsigned nslots;
static atomic_bool stop;

/* Bytes of span page @i the MR holds: [*o, *o + *n) of the page. */
static void page_part(const struct slot *s, unsigned i, unsigned *o, unsigned *n)
{
	size_t start = (size_t)i * PG, end = start + PG;
	size_t ms = s->off, me = s->off + s->len;

	if (ms < start)
		ms = start;
	if (me > end)
		me = end;
	*o = (unsigned)(ms - start);
	*n = (unsigned)(me - ms);
}

/* Device read of span page @i into @a->buf (pre-filled 0x5a): its status. */
static uint8_t read_page(struct a17q *a, const struct slot *s, unsigned i, unsigned *o, unsigned *n)
{
	page_part(s, i, o, n);
	memset(a->buf, 0x5a, *n);
	return a17_copy(a, s->iova0 + (uint64_t)i * PG + *o, a->buf_iova, *n);
}

/* ---- what the workers do ---- */

struct cfg {
	unsigned workers, readers, churners, rcachers;
	unsigned iters;       /* per worker */
	unsigned max_pages;   /* of a normal region */
	unsigned huge_every;  /* one region in N is 2 MiB aligned and long (0: never) */
	unsigned shared_every;/* one region in N is MAP_SHARED|MAP_ANONYMOUS (0: never) */
	bool odp_noise;       /* a large on-demand MR the churners discard and replace under */
	bool forker, brker;
	unsigned forks;
	bool nice;            /* the storm's threads at nice -5: the monitor's thread falls behind */
	bool starve;          /* and the library's own threads at nice 19 */
};

static struct cfg C;
static unsigned rc_nops = 4; /* the rcache users' calls: munmap only (1), or all four */

static bool hooks_all(void)
{
	const char *h = getenv("IOVM_HOOKS");

	return h && !strcmp(h, "all");
}

static bool known_on(void)
{
	const char *k = getenv("IOVM_ATTACK24_KNOWN");

	return k && !strcmp(k, "1");
}
static struct iovm_rcache *RC;
static uint8_t *noise;     /* the on-demand MR's memory */
static size_t noise_len;
static struct iovm_mr *noise_mr;

static _Atomic int my_tids[MAXTHREADS + 8];
static atomic_uint n_my_tids;

static void be_nice(void)
{
	unsigned k = atomic_fetch_add(&n_my_tids, 1);

	if (k < MAXTHREADS + 8)
		atomic_store(&my_tids[k], (int)syscall(SYS_gettid));
	if (C.nice)
		(void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), -5);
}

/*
 * Every thread of the process that is not the test's (the library's: the
 * memory monitor's reader and whatever else it runs) at nice 19: under
 * taskset -c 0 and the storm's threads at nice -5, the monitor gets next
 * to no CPU and falls far behind. Returns how many threads were slowed.
 */
static unsigned starve_library_threads(void)
{
	unsigned slowed = 0;
	int self = (int)syscall(SYS_gettid);
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;

	CHECK(d != NULL);
	while (d && (e = readdir(d))) {
		int tid = atoi(e->d_name);
		bool mine = tid == self || tid == getpid();

		if (tid <= 0)
			continue;
		for (unsigned k = 0; k < atomic_load(&n_my_tids) && k < MAXTHREADS + 8; k++)
			mine |= atomic_load(&my_tids[k]) == tid;
		if (!mine && !setpriority(PRIO_PROCESS, (id_t)tid, 19))
			slowed++;
	}
	if (d)
		closedir(d);
	return slowed;
}

static uint8_t *map_anon(size_t len, bool shared)
{
	uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE, (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS,
			  -1, 0);

	CHECK(p != MAP_FAILED);
	return p;
}

/* @pages pages, with the page after the first 2 MiB aligned. */
static uint8_t *map_huge_aligned(unsigned pages)
{
	size_t want = (size_t)pages * PG;
	uint8_t *r = mmap(NULL, want + 2 * MB2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *a;

	CHECK(r != MAP_FAILED);
	a = (uint8_t *)(((uintptr_t)r + MB2 + MB2 - 1) & ~(uintptr_t)(MB2 - 1)) - PG;
	if (a > r)
		munmap(r, (size_t)(a - r));
	munmap(a + want, (size_t)(r + want + 2 * MB2 - (a + want)));
	return a;
}

/*
 * Pages [p, p + n) of a mapping, @own[i] whether page i is still ours:
 * write 0xa5 over ours, fill the holes with new memory of 0xa5 where the
 * address is still free (then ours again). A hole another thread mapped
 * meanwhile is left alone.
 */
static void refill(uint8_t *p, unsigned n, uint8_t *own)
{
	for (unsigned i = 0; i < n; i++) {
		uint8_t *a = p + (size_t)i * PG, *q;

		if (own[i]) {
			memset(a, 0xa5, PG);
			continue;
		}
		q = mmap(a, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		if (q == a) {
			memset(q, 0xa5, PG);
			own[i] = 1;
		} else if (q != MAP_FAILED) {
			munmap(q, PG);
		}
	}
}

/* Unmap the pages of [p, p + n) that are ours. */
static void unmap_own(uint8_t *p, unsigned n, const uint8_t *own)
{
	for (unsigned i = 0; i < n;) {
		unsigned j = i;

		if (!own[i]) {
			i++;
			continue;
		}
		while (j < n && own[j])
			j++;
		munmap(p + (size_t)i * PG, (size_t)(j - i) * PG);
		i = j;
	}
}


/*
 * munlock(), then madvise(@advice), which a locked page refuses (EINVAL).
 * The monitor locks every pinned MR's pages again after an event that
 * may have unlocked them (reg.h: a DONTUNMAP move's source, which the
 * churners' noise makes all the time), so a relock can come between the
 * two calls, try after try on a slow (sanitized) build. False when it
 * did 100 times running: the pages stay, as reg.h says they may.
 */
static bool unlock_advise(uint8_t *ra, size_t rl, int advice, const char *name)
{
	for (unsigned tries = 0; tries < 100; tries++) {
		CHECK_OK(munlock(ra, rl));
		if (!madvise(ra, rl, advice))
			return true;
		CHECK_MSG(errno == EINVAL, "%s after munlock: %s", name, strerror(errno));
		atomic_fetch_add(&c_relocked, 1);
		sched_yield();
	}
	return false;
}
static void worker_iter(struct a17q *a, struct slot *s, uint64_t *rng)
{
	bool huge = C.huge_every && test_rand(rng) % C.huge_every == 0;
	bool shared = !huge && C.shared_every && test_rand(rng) % C.shared_every == 0;
	unsigned np = huge ? MAXP : 1 + (unsigned)(test_rand(rng) % C.max_pages);
	unsigned mp = np + 2, op, pa, pb, taken = 0, checked = 0;
	uint8_t *map = huge ? map_huge_aligned(mp) : map_anon((size_t)mp * PG, shared);
	uint8_t *moved = NULL;
	size_t moved_len = 0;
	bool kept = false; /* a madvise() the monitor's relocks refused each time */
	unsigned off = test_rand(rng) % 3 ? (unsigned)(test_rand(rng) % PG) : 0, tail;
	uint32_t tag = next_tag();
	struct iovm_mr_info info;
	struct iovm_mr *mr;
	uint8_t own[MAXP + 2];
	int ret;

	memset(own, 1, sizeof(own));
	if (np == 1)
		tail = (unsigned)(test_rand(rng) % (PG - off));
	else
		tail = test_rand(rng) % 3 ? (unsigned)(test_rand(rng) % PG) : 0;
	for (unsigned i = 0; i < mp; i++)
		pat(map + (size_t)i * PG, tag, i);
	s->map = map;
	s->map_pages = mp;
	s->first = 1;
	s->npages = np;
	s->off = off;
	s->len = (size_t)np * PG - off - tail;
	s->tag = tag;
	ret = iovm_mr_reg(R.dom, map + PG + off, s->len, ACC, &mr);
	if (ret == -ENOMEM || ret == -EFAULT) {
		/*
		 * Memory short, or (reg.h) memory mapped into a hole another
		 * thread's raw munmap is still making: refused, never stale.
		 */
		atomic_fetch_add(ret == -EFAULT ? &c_reg_efault : &c_reg_enomem, 1);
		munmap(map, (size_t)mp * PG);
		return;
	}
	CHECK_MSG(ret == 0, "iovm_mr_reg(%u pages, off %u, len %zu, shared %d): %d", np, off, s->len, shared, ret);
	s->mr = mr;
	CHECK_OK(iovm_mr_query(mr, &info));
	CHECK_EQ(info.pages, np);
	s->iova0 = mr_iova(mr, map + PG + off) - off;
	CHECK((s->iova0 & (PG - 1)) == 0);
	if (info.valid_pages != np) {
		/*
		 * reg.h: memory mapped into a hole another thread's call is
		 * still making may have its pages refused (never stale). With
		 * 16 threads making holes, which this was cannot be told here
		 * (remap_after_return_registers_whole asks it exactly).
		 * Refused pages: the device must not reach them.
		 */
		unsigned faulted = 0;

		atomic_fetch_add(&c_fresh_refused, 1);
		for (unsigned i = 0; i < np; i++) {
			unsigned o, n;

			faulted += read_page(a, s, i, &o, &n) == IOVM_STATUS_PAGE_FAULT;
		}
		CHECK_MSG(faulted >= np - info.valid_pages,
			  "fresh MR with %llu of %u pages refused: the device reached %u of them",
			  (unsigned long long)(np - info.valid_pages), np, np - faulted);
		CHECK_OK(iovm_mr_dereg(mr));
		s->mr = NULL;
		munmap(map, (size_t)mp * PG);
		return;
	}
	for (unsigned i = 0; i < np; i++)
		atomic_store_explicit(&s->st[i], 0, memory_order_relaxed);
	atomic_store_explicit(&s->live, 1, memory_order_release);

	/* The whole MR through the device, in pieces: its own words. */
	for (unsigned i = 0; i < np; i += (huge ? 37 : 1)) {
		unsigned o, n;
		uint8_t stt = read_page(a, s, i, &o, &n);

		if (stt == IOVM_STATUS_PAGE_FAULT) {
			/*
			 * Refused after all (reg.h: memory mapped into a hole
			 * another thread's call was still making, its event
			 * read after the registration): never stale. Counted;
			 * the hole-maker is asked exactly by
			 * remap_after_return_registers_whole.
			 */
			CHECK(a17_all(a->buf, 0x5a, n));
			atomic_fetch_add(&c_fresh_refused, 1);
			atomic_store_explicit(&s->live, 0, memory_order_release);
			while (atomic_load(&s->readers))
				sched_yield();
			CHECK_OK(iovm_mr_dereg(mr));
			s->mr = NULL;
			munmap(map, (size_t)mp * PG);
			return;
		}
		CHECK_MSG(stt == IOVM_STATUS_SUCCESS, "fresh MR page %u/%u: status %u", i, np, stt);
		CHECK_MSG(pat_eq(a->buf, tag, 1 + i, o, n),
			  "fresh MR page %u/%u (off %u, part %u+%u, shared %d, huge %d): not its words (%#llx, memory %#llx)",
			  i, np, off, o, n, shared, huge, (unsigned long long)*(uint64_t *)a->buf,
			  (unsigned long long)*(uint64_t *)(map + (size_t)(1 + i) * PG + o));
	}

	/* What to take away: pages [pa, pb) of the mapping, guards included sometimes. */
	op = (unsigned)(test_rand(rng) % NOPS);
	if (op == OP_REMOVE && !shared)
		op = OP_UNLOCK_DN;
	if (op == OP_UNLOCK_FREE && shared)
		op = OP_REMOVE;
	if (op == OP_SHRINK) {
		pb = mp;
		pa = mp - 1 - (unsigned)(test_rand(rng) % (mp - 1)); /* keep the first guard */
		if (pa == 0)
			pa = 1;
	} else if (huge && test_rand(rng) % 2) {
		pa = 1; /* exactly the 2 MiB, or its aligned half */
		pb = test_rand(rng) % 2 ? mp - 1 : 1 + MAXP / 2;
	} else {
		pa = (unsigned)(test_rand(rng) % mp);
		pb = pa + 1 + (unsigned)(test_rand(rng) % (mp - pa));
		if (huge && pb - pa > 64 && test_rand(rng) % 2)
			pb = pa + 1 + (unsigned)(test_rand(rng) % 64);
	}
	if (op == OP_MOVE) { /* one mapping (the locked span) only: mremap moves no more */
		if (pa < 1)
			pa = 1;
		if (pb > np + 1)
			pb = np + 1;
		if (pb <= pa)
			pb = pa + 1;
		if (pa > np) {
			pa = np;
			pb = np + 1;
		}
	}
	for (unsigned p = pa; p < pb; p++)
		if (p >= 1 && p <= np) {
			atomic_store_explicit(&s->st[p - 1], 1, memory_order_release);
			taken++;
		}
	atomic_fetch_add(&c_ops[op], 1);
	{
		uint8_t *ra = map + (size_t)pa * PG;
		size_t rl = (size_t)(pb - pa) * PG;
		uint8_t *q;

		switch (op) {
		case OP_MUNMAP:
			CHECK_OK(munmap(ra, rl));
			break;
		case OP_FIXED:
			q = mmap(ra, rl, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
			CHECK(q == ra);
			memset(q, 0xa5, rl);
			break;
		case OP_MOVE:
			moved = mmap(NULL, rl, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			CHECK(moved != MAP_FAILED);
			moved_len = rl;
			q = mremap(ra, rl, rl, MREMAP_MAYMOVE | MREMAP_FIXED, moved);
			CHECK_MSG(q == moved, "mremap move: %s", strerror(errno));
			break;
		case OP_SHRINK:
			q = mremap(map, (size_t)mp * PG, (size_t)pa * PG, 0);
			CHECK_MSG(q == map, "mremap shrink: %s", strerror(errno));
			break;
		case OP_DN_LOCKED:
			CHECK_MSG(madvise(ra, rl, MADV_DONTNEED_LOCKED) == 0, "DONTNEED_LOCKED: %s", strerror(errno));
			break;
		case OP_UNLOCK_DN:
			kept = !unlock_advise(ra, rl, MADV_DONTNEED, "DONTNEED");
			break;
		case OP_UNLOCK_FREE:
			kept = !unlock_advise(ra, rl, MADV_FREE, "FREE");
			break;
		case OP_REMOVE:
			kept = !unlock_advise(ra, rl, MADV_REMOVE, "REMOVE");
			break;
		}
	}
	if (kept) {
		/*
		 * Locked again every time: a madvise() refused at a locked
		 * mapping may have discarded the ones before it. The pages stay
		 * in flight (either outcome, for the readers); nothing to check.
		 */
		atomic_fetch_add(&c_relock_kept, 1);
		goto retire;
	}
	for (unsigned p = pa; p < pb; p++) {
		if (p >= 1 && p <= np)
			atomic_store_explicit(&s->st[p - 1], 2, memory_order_release);
		if (op == OP_MUNMAP || op == OP_MOVE || op == OP_SHRINK)
			own[p] = 0; /* the address is free: another thread may map there now */
	}
	atomic_fetch_add(&c_iters, 1);

	/* The call returned: the query counts the pages invalid. */
	CHECK_OK(iovm_mr_query(mr, &info));
	CHECK_MSG(info.valid_pages + taken <= np && (taken < np || !info.valid),
		  "%s of pages [%u,%u) (MR %u pages, %u taken, shared %d, huge %d, off %u) returned, yet "
		  "iovm_mr_query() says %llu pages valid (valid %d): stale",
		  opname[op], pa, pb, np, taken, shared, huge, off, (unsigned long long)info.valid_pages,
		  info.valid);
	/* New memory where the old went (0xa5), then the device at every taken page: a fault, nothing touched. */
	refill(map + (size_t)pa * PG, pb - pa, own + pa);
	for (unsigned p = pa; p < pb; p++) {
		unsigned i = p - 1, o, n;
		uint8_t stt;

		if (p < 1 || p > np)
			continue;
		if (huge && taken > 32 && test_rand(rng) % (taken / 16))
			continue;
		stt = read_page(a, s, i, &o, &n);
		CHECK_MSG(stt == IOVM_STATUS_PAGE_FAULT && a17_all(a->buf, 0x5a, n),
			  "%s of pages [%u,%u) returned (MR %u pages, off %u, shared %d, huge %d); a device read "
			  "of taken page %u: status %u, %s: stale registration",
			  opname[op], pa, pb, np, off, shared, huge, i, stt,
			  a17_any(a->buf, 0xa5, n) ? "brought the new memory's bytes" :
			  pat_eq(a->buf, tag, p, o, n) ? "brought the old words" : "wrote the buffer");
		atomic_fetch_add(&c_taken_pages, 1);
		atomic_fetch_add(&c_taken_faults, 1);
		checked++;
		if (checked % 4 == 1) {
			memset(a->buf, 0x3c, n);
			stt = a17_copy(a, a->buf_iova, s->iova0 + (uint64_t)i * PG + o, n);
			/* (where another thread mapped into the hole, its memory is its own: status only) */
			CHECK_MSG(stt == IOVM_STATUS_PAGE_FAULT && (!own[p] || a17_all(map + (size_t)p * PG + o, 0xa5, n)),
				  "%s returned; a device write to taken page %u: status %u, new memory %s", opname[op],
				  i, stt, !own[p] || a17_all(map + (size_t)p * PG + o, 0xa5, n) ? "untouched" : "written");
			atomic_fetch_add(&c_writes_faulted, 1);
		}
	}
	/* Pages nobody took: their own words, or (over-invalidated, never stale) a fault. */
	for (unsigned k = 0; k < (huge ? 16u : np); k++) {
		unsigned i = huge ? (unsigned)(test_rand(rng) % np) : k, o, n;
		uint8_t stt;

		if (i + 1 >= pa && i + 1 < pb)
			continue;
		stt = read_page(a, s, i, &o, &n);
		if (stt == IOVM_STATUS_PAGE_FAULT) {
			CHECK(a17_all(a->buf, 0x5a, n));
			atomic_fetch_add(&c_overinval, 1);
			continue;
		}
		CHECK_MSG(stt == IOVM_STATUS_SUCCESS && pat_eq(a->buf, tag, i + 1, o, n),
			  "after %s of [%u,%u): untouched page %u read: status %u, %s", opname[op], pa, pb, i, stt,
			  stt == IOVM_STATUS_SUCCESS ? "not its words" : "");
		atomic_fetch_add(&c_present_ok, 1);
	}

retire:
	/* Retire: no reader left on it, then deregister and unmap all. */
	atomic_store_explicit(&s->live, 0, memory_order_release);
	while (atomic_load(&s->readers))
		sched_yield();
	CHECK_OK(iovm_mr_dereg(mr));
	s->mr = NULL;
	unmap_own(map, mp, own);
	if (moved)
		munmap(moved, moved_len);
}

struct targ {
	unsigned id;
	uint64_t seed;
};

static pthread_barrier_t go;

/* A storm thread's start: its niceness, a queue of its own, then the go with the others. */
static void thread_begin(struct a17q *a)
{
	be_nice();
	a17q_open(&R, a, BUFLEN, IOVM_QUEUE_POLLED);
	pthread_barrier_wait(&go);
}

static void *worker(void *arg)
{
	struct targ *t = arg;
	struct a17q a;
	uint64_t rng = t->seed;

	thread_begin(&a);
	for (unsigned it = 0; it < C.iters && !atomic_load(&stop); it++)
		worker_iter(&a, &slots[t->id], &rng);
	a17q_close(&R, &a);
	return NULL;
}

/* Readers: every thread's view, at once after the call returned. */
static void *reader(void *arg)
{
	struct targ *t = arg;
	struct a17q a;
	uint64_t rng = t->seed;

	thread_begin(&a);
	while (!atomic_load(&stop)) {
		struct slot *s = &slots[test_rand(&rng) % nslots];
		unsigned i, o, n;
		uint8_t st0, st1, stt;

		atomic_fetch_add(&s->readers, 1);
		if (!atomic_load_explicit(&s->live, memory_order_acquire)) {
			atomic_fetch_sub(&s->readers, 1);
			sched_yield();
			continue;
		}
		if (test_rand(&rng) % 4 == 0) {
			struct iovm_mr_info info;
			unsigned gone = 0;

			for (unsigned k = 0; k < s->npages; k++)
				gone += atomic_load_explicit(&s->st[k], memory_order_acquire) == 2;
			CHECK_OK(iovm_mr_query(s->mr, &info));
			CHECK_MSG(info.valid_pages + gone <= s->npages,
				  "reader: %u of %u pages gone (their call returned), yet iovm_mr_query() says %llu "
				  "valid: stale",
				  gone, s->npages, (unsigned long long)info.valid_pages);
			atomic_fetch_add(&c_queries, 1);
			if (gone)
				atomic_fetch_add(&c_query_gone, 1);
		}
		i = (unsigned)(test_rand(&rng) % s->npages);
		st0 = atomic_load_explicit(&s->st[i], memory_order_acquire);
		stt = read_page(&a, s, i, &o, &n);
		st1 = atomic_load_explicit(&s->st[i], memory_order_acquire);
		atomic_fetch_add(&c_reader_reads, 1);
		if (st0 == 2) {
			CHECK_MSG(stt == IOVM_STATUS_PAGE_FAULT && a17_all(a.buf, 0x5a, n),
				  "reader: page %u of a %u-page MR gone (its call returned before the read), yet a "
				  "device read: status %u%s: stale",
				  i, s->npages, stt, a17_any(a.buf, 0xa5, n) ? ", new memory's bytes" : "");
			atomic_fetch_add(&c_reader_gone, 1);
		} else if (st1 == 0) {
			if (stt == IOVM_STATUS_SUCCESS)
				CHECK_MSG(pat_eq(a.buf, s->tag, i + 1, o, n),
					  "reader: page %u of a %u-page MR nobody took: read brought other bytes "
					  "(word %#llx)",
					  i, s->npages, (unsigned long long)*(uint64_t *)a.buf);
			else
				CHECK(stt == IOVM_STATUS_PAGE_FAULT);
			atomic_fetch_add(&c_reader_present, 1);
		} else {
			atomic_fetch_add(&c_reader_inflight, 1);
		}
		atomic_fetch_sub(&s->readers, 1);
	}
	a17q_close(&R, &a);
	return NULL;
}

/* Unregistered memory churned, and (odp_noise) pages of a large on-demand MR discarded and replaced. */
static void *churner(void *arg)
{
	struct targ *t = arg;
	uint64_t rng = t->seed;

	be_nice();
	pthread_barrier_wait(&go);
	while (!atomic_load(&stop)) {
		unsigned n = 1 + (unsigned)(test_rand(&rng) % 32), k = (unsigned)(test_rand(&rng) % n);
		uint8_t *p = map_anon((size_t)n * PG, false), *q;
		void *m;

		memset(p, 1, (size_t)n * PG);
		switch (test_rand(&rng) % 6) {
		case 0:
			madvise(p + (size_t)k * PG, PG, MADV_DONTNEED);
			break;
		case 1:
			q = mremap(p, (size_t)n * PG, (size_t)(n + 8) * PG, MREMAP_MAYMOVE);
			if (q != MAP_FAILED) {
				p = q;
				n += 8;
			}
			break;
		case 2:
			mmap(p + (size_t)k * PG, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
			     -1, 0);
			break;
		case 3:
			madvise(p, (size_t)n * PG, MADV_FREE);
			break;
		case 4:
			m = malloc(256u << 10 | (unsigned)(test_rand(&rng) % 4096));
			if (m) {
				memset(m, 2, 4096);
				free(m);
			}
			break;
		default:
			syscall(SYS_munmap, p + (size_t)k * PG, (size_t)PG);
			if (k)
				munmap(p, (size_t)k * PG);
			if (k + 1 < n)
				munmap(p + (size_t)(k + 1) * PG, (size_t)(n - k - 1) * PG);
			n = 0;
			break;
		}
		if (n)
			munmap(p, (size_t)n * PG);
		atomic_fetch_add(&c_churn, 1);
		if (noise) {
			size_t np = noise_len / PG, i = test_rand(&rng) % np, c = 1 + test_rand(&rng) % 8;
			uint8_t *a;

			if (i + c > np)
				c = np - i;
			a = noise + i * PG;
			switch (test_rand(&rng) % 4) {
			case 0:
				madvise(a, c * PG, MADV_DONTNEED);
				break;
			case 1:
				mmap(a, c * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
				break;
			case 2: /* (never a munmap: another thread could map into the hole) */
				mremap(a, c * PG, c * PG, MREMAP_MAYMOVE | MREMAP_FIXED | 4 /* DONTUNMAP */,
				       noise + (test_rand(&rng) % (np - c + 1)) * PG);
				break;
			default:
				madvise(a, c * PG, MADV_FREE);
				break;
			}
			atomic_fetch_add(&c_odp_noise, 1);
		}
	}
	return NULL;
}

/*
 * Registration cache users: get, read, take the memory away while holding
 * the region or not, map it anew at the same address with new words, get
 * again: the region handed out reaches the new words whole.
 */
static void *rcacher(void *arg)
{
	struct targ *t = arg;
	struct a17q a;
	uint64_t rng = t->seed;

	thread_begin(&a);
	while (!atomic_load(&stop)) {
		unsigned np = 1 + (unsigned)(test_rand(&rng) % 12), mp = np + 2;
		uint8_t *map = map_anon((size_t)mp * PG, false), *addr;
		unsigned off = (unsigned)(test_rand(&rng) % PG), len, op = (unsigned)(test_rand(&rng) % rc_nops);
		unsigned pa, pb;
		uint32_t tag = next_tag(), tag2 = next_tag();
		struct iovm_mr *mr, *mr2;
		struct iovm_mr_info info;
		bool hold = test_rand(&rng) % 2;
		uint8_t own[16];
		unsigned e_get, e_call;
		struct iovm_mr_info at_get;
		struct iovm_rcache_stats rs0, rs1;
		int ret;

		memset(own, 1, sizeof(own));
		len = np * PG - off - (np == 1 ? (unsigned)(test_rand(&rng) % (PG - off)) : 0);
		if (!len)
			len = 1;
		addr = map + PG + off;
		for (unsigned i = 0; i < mp; i++)
			pat(map + (size_t)i * PG, tag, i);
		e_get = atomic_load(&fork_epoch);
		CHECK_OK(iovm_rcache_stats(RC, &rs0));
		ret = iovm_rcache_get(RC, addr, len, ACC, &mr);
		CHECK_OK(iovm_rcache_stats(RC, &rs1));
		if (ret == -ENOMEM || ret == -EFAULT) {
			atomic_fetch_add(ret == -EFAULT ? &c_reg_efault : &c_reg_enomem, 1);
			munmap(map, (size_t)mp * PG);
			continue;
		}
		CHECK_MSG(ret == 0, "rcache get: %d", ret);
		atomic_fetch_add(&c_rc_gets, 1);
		memset(a.buf, 0x5a, len < BUFLEN ? len : BUFLEN);
		{
			uint8_t stt = a17_copy(&a, mr_iova(mr, addr), a.buf_iova, len);

			if (stt == IOVM_STATUS_PAGE_FAULT) {
				CHECK_OK(iovm_mr_query(mr, &info));
				if ((uint8_t *)info.addr < map || (uint8_t *)info.addr + info.len > map + (size_t)mp * PG)
					atomic_fetch_add(&c_rc_old_region, 1); /* beyond the memory just mapped: an old region */
			}
			if (stt == IOVM_STATUS_PAGE_FAULT && !known_on()) {
				/*
				 * An old region, or pages refused (reg.h: a hole
				 * another call is still making): the storm cannot
				 * tell. Counted; IOVM_ATTACK24_KNOWN=1 fails on it.
				 */
				atomic_fetch_add(&c_rc_get_faulted, 1);
				CHECK_OK(iovm_rcache_put(RC, mr));
				munmap(map, (size_t)mp * PG);
				continue;
			}
			if (stt != IOVM_STATUS_SUCCESS) {
				CHECK_OK(iovm_mr_query(mr, &info));
				test_fail("rcache: a get of memory just mapped ([%p, +%u pages), asked from page 1 + %u bytes) "
					  "handed out a region (%p + %zu, %llu of %llu pages valid) the device faults on "
					  "(status %u): %s",
					  (void *)map, mp, off, info.addr, info.len, (unsigned long long)info.valid_pages,
					  (unsigned long long)info.pages, stt,
					  (uint8_t *)info.addr < map || (uint8_t *)info.addr + info.len > map + (size_t)mp * PG ?
					  "an old region (it reaches beyond the memory just mapped): its memory is gone" :
					  "an old region, or refused pages (reg.h: a hole another call is making)");
			}
			CHECK(1);
		}
		CHECK_OK(iovm_mr_query(mr, &at_get));
		CHECK_MSG(memcmp(a.buf, addr, len) == 0, "rcache: a fresh get read other bytes than the memory");
		if (!hold) {
			CHECK_OK(iovm_rcache_put(RC, mr));
			mr = NULL;
		}
		/* Take [pa, pb) away: part of it, all of it, or across its edge. */
		pa = (unsigned)(test_rand(&rng) % mp);
		pb = pa + 1 + (unsigned)(test_rand(&rng) % (mp - pa));
		if (pb <= 1 || pa > np) { /* only a guard: take the first MR page too */
			pa = 1;
			pb = 2;
		}
		e_call = atomic_load(&fork_epoch);
		switch (op) {
		case 0:
			CHECK_OK(munmap(map + (size_t)pa * PG, (size_t)(pb - pa) * PG));
			break;
		case 1:
			CHECK(mmap(map + (size_t)pa * PG, (size_t)(pb - pa) * PG, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == map + (size_t)pa * PG);
			break;
		case 2:
			CHECK_MSG(madvise(map + (size_t)pa * PG, (size_t)(pb - pa) * PG, MADV_DONTNEED_LOCKED) == 0,
				  "DONTNEED_LOCKED: %s", strerror(errno));
			break;
		default:
			if (!pa)
				pa = 1;
			pb = mp;
			CHECK(mremap(map, (size_t)mp * PG, (size_t)pa * PG, 0) == map);
			break;
		}
		if (op == 0 || op == 3)
			for (unsigned p = pa; p < pb; p++)
				own[p] = 0;
		if (mr) {
			unsigned taken = 0;

			for (unsigned p = pa; p < pb; p++)
				taken += p >= 1 && p <= np;
			CHECK_OK(iovm_mr_query(mr, &info));
			if (info.valid_pages + taken > info.pages) {
				unsigned e_now = atomic_load(&fork_epoch);
				struct iovm_mr_info later;
				uint8_t stt;

				memset(a.buf, 0x5a, PG);
				stt = a17_copy(&a, mr_iova(mr, addr) - off + (uint64_t)(pb - 2) * PG, a.buf_iova, PG);
				fprintf(stderr,
					"# our mapping [%p, +%u pages), MR asked [%p, +%u); the region held: [%p, +%zu) "
					"(%llu of %llu valid at the get, monitored %d; the cache's hits +%llu misses +%llu "
					"raced +%llu over the get), now [%p, +%zu)\n",
					(void *)map, mp, (void *)addr, len, at_get.addr, at_get.len,
					(unsigned long long)at_get.valid_pages, (unsigned long long)at_get.pages, at_get.monitored,
					(unsigned long long)(rs1.hits - rs0.hits), (unsigned long long)(rs1.misses - rs0.misses),
					(unsigned long long)(rs1.raced - rs0.raced), info.addr,
					info.len);
				print_counters(stderr);
				for (unsigned y = 0; y < 1000; y++)
					sched_yield();
				CHECK_OK(iovm_mr_query(mr, &later));
				test_fail("rcache: held region, %u of its %llu pages taken away (%s of [%u,%u) of %u, "
					  "call returned), yet %llu valid: stale. Fork epoch at get %u, at the call %u, "
					  "now %u (odd: a fork in progress); 1000 yields later %llu valid; a device "
					  "read of taken page %u right after that query: status %u (1 success, 2 fault)",
					  taken, (unsigned long long)info.pages,
					  op == 0 ? "munmap" : op == 1 ? "mmap_fixed" : op == 2 ? "dontneed_locked" :
					  "mremap_shrink", pa, pb, mp, (unsigned long long)info.valid_pages, e_get, e_call, e_now,
					  (unsigned long long)later.valid_pages, pb - 2, stt);
				/* (unreached: test_fail exits; the region, for the report, is printed below) */
			}
			CHECK(1);
			atomic_fetch_add(&c_rc_held_taken, 1);
		}
		/* Anew at the same address, new words: a get must reach them whole. */
		unmap_own(map, mp, own);
		{
			uint8_t *q = mmap(map, (size_t)mp * PG, PROT_READ | PROT_WRITE,
					  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

			if (q != map) { /* another thread took the address: nothing to compare */
				if (q != MAP_FAILED)
					munmap(q, (size_t)mp * PG);
				if (mr)
					CHECK_OK(iovm_rcache_put(RC, mr));
				atomic_fetch_add(&c_rc_lost_addr, 1);
				continue;
			}
			memset(own, 1, sizeof(own));
		}
		for (unsigned i = 0; i < mp; i++)
			pat(map + (size_t)i * PG, tag2, i);
		/* Sometimes a range that runs into a hole first: refused, never a stale hit. */
		if (test_rand(&rng) % 4 == 0) {
			/* (not unmapped: another thread could map there at once) */
			CHECK_OK(mprotect(map + (size_t)(mp - 1) * PG, PG, PROT_NONE));
			ret = iovm_rcache_get(RC, addr, (size_t)np * PG - off + PG, ACC, &mr2);
			CHECK_MSG(ret == -EFAULT, "rcache get over a page made PROT_NONE: %d (a stale region?)", ret);
			CHECK_OK(mprotect(map + (size_t)(mp - 1) * PG, PG, PROT_READ | PROT_WRITE));
			atomic_fetch_add(&c_rc_efault, 1);
		}
		ret = iovm_rcache_get(RC, addr, len, ACC, &mr2);
		CHECK_MSG(ret == 0, "rcache get anew: %d", ret);
		CHECK_OK(iovm_mr_query(mr2, &info));
		if ((uint8_t *)info.addr < map || (uint8_t *)info.addr + info.len > map + (size_t)mp * PG)
			atomic_fetch_add(&c_rc_wider, 1); /* beyond our mapping: pages outside ours may be gone */
		else if (info.valid_pages != info.pages && !known_on())
			atomic_fetch_add(&c_rc_get_faulted, 1); /* (the same: old region or refused pages) */
		else
			CHECK_MSG(info.valid && info.valid_pages == info.pages,
			  "rcache: a get of memory mapped anew handed out a region with %llu of %llu pages valid: "
			  "the old memory's region",
			  (unsigned long long)info.valid_pages, (unsigned long long)info.pages);
		memset(a.buf, 0x5a, len);
		{
			uint8_t stt = a17_copy(&a, mr_iova(mr2, addr), a.buf_iova, len);

			if (stt == IOVM_STATUS_PAGE_FAULT && !known_on())
				atomic_fetch_add(&c_rc_get_faulted, 1); /* (old region or refused: see above) */
			else
			CHECK_MSG(stt == IOVM_STATUS_SUCCESS && memcmp(a.buf, addr, len) == 0,
				  "rcache: a get after the memory was replaced (op %u, [%u,%u) of %u, hold %d) reads "
				  "status %u, %s: stale region",
				  op, pa, pb, np, hold, stt,
				  stt == IOVM_STATUS_SUCCESS ? "other bytes than the new memory's" : "a fault");
		}
		atomic_fetch_add(&c_rc_fresh, 1);
		CHECK_OK(iovm_rcache_put(RC, mr2));
		if (mr)
			CHECK_OK(iovm_rcache_put(RC, mr));
		unmap_own(map, mp, own);
	}
	a17q_close(&R, &a);
	return NULL;
}

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

/*
 * One thread, no storm: register (iovm_mr_reg, or a held rcache get),
 * fork() a child that exits at once (or that calls munmap on its copy),
 * then take part of the memory away in the parent: the query counts it,
 * the device faults there.
 */
static unsigned fork_then_one(int kind, unsigned op, int child_does)
{
	struct a17q a;
	unsigned np = 6, mp = np + 2, bad = 0;
	uint8_t *map = map_anon((size_t)mp * PG, false);
	uint32_t tag = next_tag();
	struct iovm_rcache *rc = NULL;
	struct iovm_mr *mr;
	struct iovm_mr_info info;
	uint64_t iova;
	int status;
	pid_t pid;

	a17q_open(&R, &a, BUFLEN, IOVM_QUEUE_POLLED);
	for (unsigned i = 0; i < mp; i++)
		pat(map + (size_t)i * PG, tag, i);
	if (kind) {
		CHECK_OK(iovm_rcache_create(R.dom, NULL, &rc));
		CHECK_OK(iovm_rcache_get(rc, map + PG, (size_t)np * PG, ACC, &mr));
	} else {
		CHECK_OK(iovm_mr_reg(R.dom, map + PG, (size_t)np * PG, ACC, &mr));
	}
	iova = mr_iova(mr, map + PG);
	if (child_does >= 0) {
		pid = fork();
		CHECK(pid >= 0);
		if (pid == 0) {
			alarm(20);
			if (child_does == 1)
				munmap(map, (size_t)mp * PG);
			_exit(0);
		}
		CHECK_EQ(waitpid(pid, &status, 0), pid);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	/* Pages 3 and 4 of the mapping (2 and 3 of the MR); for the shrink, 3 to the end. */
	switch (op) {
	case OP_MUNMAP:
		CHECK_OK(munmap(map + 3 * PG, 2 * PG));
		break;
	case OP_FIXED:
		CHECK(mmap(map + 3 * PG, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
			   0) == map + 3 * PG);
		break;
	case OP_DN_LOCKED:
		CHECK_OK(madvise(map + 3 * PG, 2 * PG, MADV_DONTNEED_LOCKED));
		break;
	case OP_SHRINK:
		CHECK(mremap(map, (size_t)mp * PG, 3 * PG, 0) == map);
		break;
	case OP_MOVE: {
		uint8_t *d = mmap(NULL, 2 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		CHECK(mremap(map + 3 * PG, 2 * PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, d) == d);
		munmap(d, 2 * PG);
		break;
	}
	}
	CHECK_OK(iovm_mr_query(mr, &info));
	if (info.valid_pages > np - 2)
		bad++;
	{
		uint8_t own[8] = { 1, 1, 1, 1, 1, 1, 1, 1 };

		if (op == OP_MUNMAP || op == OP_MOVE)
			own[3] = own[4] = 0;
		if (op == OP_SHRINK)
			for (unsigned i = 3; i < mp; i++)
				own[i] = 0;
		refill(map + 3 * PG, 2, own + 3);
		memset(a.buf, 0x5a, PG);
		if (a17_copy(&a, iova + 2 * PG, a.buf_iova, PG) != IOVM_STATUS_PAGE_FAULT)
			bad += 2;
		if (bad)
			printf("# %s, %s, child %s: after the call returned, query says %llu of %u valid (2 taken), "
			       "device read of a taken page %s%s\n",
			       kind ? "rcache get" : "iovm_mr_reg", opname[op],
			       child_does < 0 ? "none (no fork)" : child_does ? "munmaps its copy" : "exits at once",
			       (unsigned long long)info.valid_pages, np, bad & 2 ? "succeeded" : "faulted",
			       bad & 2 && a17_any(a.buf, 0xa5, PG) ? " with the new memory's bytes" : "");
		if (kind) {
			CHECK_OK(iovm_rcache_put(rc, mr));
			CHECK_OK(iovm_rcache_destroy(rc));
		} else {
			CHECK_OK(iovm_mr_dereg(mr));
		}
		unmap_own(map, mp, own);
	}
	a17q_close(&R, &a);
	return bad;
}

static unsigned fork_then_all(void)
{
	static const unsigned ops[] = { OP_MUNMAP, OP_FIXED, OP_DN_LOCKED, OP_SHRINK, OP_MOVE };
	unsigned bad = 0, runs = 0;

	for (int child = -1; child <= 1; child++)
		for (int kind = 0; kind < 2; kind++)
			for (unsigned k = 0; k < 5; k++) {
				bad += fork_then_one(kind, ops[k], child) != 0;
				runs++;
			}
	printf("# %u of %u (registration, call, child) combinations stale\n", bad, runs);
	return bad;
}

/*
 * The registration cache, one thread: regions that overlap (the cache may
 * hand out a region wider than asked), memory replaced under an old region
 * and mapped anew, then a call libc does not hook without IOVM_HOOKS=all
 * (MAP_FIXED, MADV_DONTNEED_LOCKED, mremap shrink) on the new memory: the
 * region held must count the pages invalid, the device must fault there.
 * Returns the scenarios found stale.
 */
static unsigned rc_overlap_one(unsigned scen, unsigned op)
{
	struct a17q a;
	struct iovm_rcache *rc;
	struct iovm_mr *m1, *m2, *mr;
	struct iovm_mr_info info, i1;
	unsigned n = 16, bad = 0;
	uint8_t *M = map_anon((size_t)n * PG, false), *t;
	uint8_t own[16];
	uint8_t stt;

	memset(own, 1, sizeof(own));
	a17q_open(&R, &a, BUFLEN, IOVM_QUEUE_POLLED);
	CHECK_OK(iovm_rcache_create(R.dom, NULL, &rc));
	memset(M, 1, (size_t)n * PG);
	if (scen >= 8) { /* [8, 16) a mapping of its own, made after the old region was registered */
		CHECK_OK(munmap(M + 8 * PG, 8 * PG));
	}
	/* An old region over pages [2, 8). */
	CHECK_OK(iovm_rcache_get(rc, M + 2 * PG + 100, 6 * PG - 200, ACC, &m1));
	CHECK_OK(iovm_rcache_put(rc, m1));
	if (scen >= 8) {
		CHECK(mmap(M + 8 * PG, 8 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
			   -1, 0) == M + 8 * PG);
		memset(M + 8 * PG, 3, 8 * PG);
	}
	if (scen >= 1 && scen < 8) { /* its memory replaced in part, mapped anew */
		uint8_t *d;

		switch (scen % 4) {
		case 1:
			CHECK_OK(munmap(M + 5 * PG, 3 * PG));
			break;
		case 2: /* moved away (mremap: userfaultfd's way without the hooks) */
			d = mmap(NULL, 3 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			CHECK(mremap(M + 5 * PG, 3 * PG, 3 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, d) == d);
			munmap(d, 3 * PG);
			break;
		case 3: /* a raw munmap */
			CHECK_OK((int)syscall(SYS_munmap, M + 5 * PG, (size_t)3 * PG));
			break;
		default: /* moved away, then the rest of it moved back? no: a mremap that grows in place fails; shrink */
			CHECK(mremap(M, 8 * PG, 5 * PG, 0) == M);
			break;
		}
		CHECK(mmap(M + 5 * PG, 3 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
			   -1, 0) == M + 5 * PG);
		memset(M + 5 * PG, 2, 3 * PG);
	}
	if (scen >= 4 && scen != 8) { /* and a second region overlapping it, then put */
		CHECK_OK(iovm_rcache_get(rc, M + 6 * PG + 1, 4 * PG, ACC, &m2));
		CHECK_OK(iovm_rcache_put(rc, m2));
	}
	/* A get over [4, 11), held. */
	CHECK_OK(iovm_rcache_get(rc, M + 4 * PG + 7, 7 * PG - 14, ACC, &mr));
	CHECK_OK(iovm_mr_query(mr, &i1));
	t = M + 9 * PG; /* page 9: taken */
	switch (op) {
	case OP_FIXED:
		CHECK(mmap(t, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == t);
		break;
	case OP_DN_LOCKED:
		CHECK_OK(madvise(t, PG, MADV_DONTNEED_LOCKED));
		break;
	case OP_SHRINK: /* the mapping that holds page 9 ends at page 10 or later: shrink it from page 9 */
		CHECK_OK(munmap(M + 12 * PG, 4 * PG));
		own[12] = own[13] = own[14] = own[15] = 0;
		CHECK(mremap(M + 8 * PG, 4 * PG, PG, 0) == M + 8 * PG);
		own[9] = own[10] = own[11] = 0;
		break;
	case OP_MUNMAP:
		CHECK_OK(munmap(t, PG));
		own[9] = 0;
		break;
	}
	CHECK_OK(iovm_mr_query(mr, &info));
	refill(t, 1, own + 9);
	memset(a.buf, 0x5a, PG);
	stt = a17_copy(&a, mr_iova(mr, M + 4 * PG + 7) - 7 + 5 * PG, a.buf_iova, PG);
	if (info.valid_pages == info.pages || stt != IOVM_STATUS_PAGE_FAULT) {
		bad = 1;
		printf("# scenario %u, %s of page 9 returned: region held [M%+ld, +%zu) (%llu of %llu valid at the "
		       "get), now %llu valid; device read of page 9: status %u%s\n",
		       scen, opname[op], (long)((uint8_t *)i1.addr - M) / (long)PG, i1.len / PG,
		       (unsigned long long)i1.valid_pages, (unsigned long long)i1.pages,
		       (unsigned long long)info.valid_pages, stt,
		       stt == IOVM_STATUS_SUCCESS ? " (reached the new page)" : "");
	}
	CHECK_OK(iovm_rcache_put(rc, mr));
	CHECK_OK(iovm_rcache_destroy(rc));
	unmap_own(M, n, own);
	a17q_close(&R, &a);
	return bad;
}

/*
 * "Memory mapped again where a call that returned took memory away
 * registers whole" (reg.h), asked exactly: a maker takes its registered
 * memory away (munmap, mremap move, mremap shrink) and, once the call
 * returned, hands the address to a taker, which maps it again
 * (MAP_FIXED_NOREPLACE), registers it and reads it through the device:
 * every page valid, every byte its own. Noise threads meanwhile register
 * memory of their own and replace and discard it (MAP_FIXED, DONTNEED_LOCKED:
 * events by the thousand, never a hole), so the monitor is behind. Nobody
 * else maps memory at an address of the kernel's choosing, so no other
 * call can be making a hole there.
 */
#define PAIRS 4

struct handoff {
	_Atomic uint64_t seq; /* odd: the address is the taker's */
	uint8_t *addr;
	unsigned pages;
	unsigned op;
	uint64_t mapped_at; /* ra_clock before the maker mapped its memory */
};

static struct handoff hand[PAIRS];
static atomic_ulong ra_ok, ra_lost, ra_refused, ra_pending, ra_noise;
static unsigned ra_iters;

/*
 * The makers' mremap()s without IOVM_HOOKS=all go through userfaultfd,
 * and so does the munmap() of memory such a move took away (the kernel
 * moves the userfaultfd's registration with it, to addresses the hooks
 * were never told of): the kernel frees their addresses, then waits for
 * the monitor to read the event. Another maker's mmap(NULL) may take those addresses in
 * between, and the event then takes that memory's pages, or its taker's
 * (reg.h: "memory mapped into a hole that another thread's call is still
 * making ... its pages are then refused"). Each such call is logged here
 * with the steps of one clock at which it began and returned, so that a
 * refusal is told apart: allowed only where one of them overlapping the
 * memory was under way between its mapping and its registration.
 */
#define RA_FREES 1024

struct ra_free {
	_Atomic uint64_t begin, end; /* clock steps; end UINT64_MAX while under way */
	_Atomic uint64_t start, len;
};

static struct ra_free ra_frees[RA_FREES];
static _Atomic uint64_t ra_nfrees, ra_clock;

static struct ra_free *ra_free_begin(const uint8_t *start, size_t len)
{
	struct ra_free *f;

	if (hooks_all())
		return NULL; /* hooked: the call deals with its own addresses before it returns */
	f = &ra_frees[atomic_fetch_add(&ra_nfrees, 1) % RA_FREES];
	atomic_store(&f->begin, UINT64_MAX);
	atomic_store(&f->end, UINT64_MAX);
	atomic_store(&f->start, (uint64_t)(uintptr_t)start);
	atomic_store(&f->len, len);
	atomic_store(&f->begin, atomic_fetch_add(&ra_clock, 1) + 1);
	return f;
}

static void ra_free_end(struct ra_free *f)
{
	if (f)
		atomic_store(&f->end, atomic_fetch_add(&ra_clock, 1) + 1);
}

/* Whether a logged call overlapping [p, p+len) was under way at some step of [from, to]. */
static bool ra_free_pending(const uint8_t *p, size_t len, uint64_t from, uint64_t to)
{
	uint64_t a = (uint64_t)(uintptr_t)p;

	for (unsigned i = 0; i < RA_FREES; i++) {
		struct ra_free *f = &ra_frees[i];
		uint64_t b = atomic_load(&f->begin), s = atomic_load(&f->start), l = atomic_load(&f->len),
			 e = atomic_load(&f->end);

		if (b == UINT64_MAX || b == 0)
			continue; /* being written, or never used (a slot reused meanwhile is newer: harmless) */
		if (s < a + len && a < s + l && b <= to && e >= from)
			return true;
	}
	return false;
}

/* The VMAs of /proc/self/smaps over [p, p+len), with their flags: why a call on it failed. */
static void print_vmas(const uint8_t *p, size_t len)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	bool in = false;

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		unsigned long s, e;

		if (sscanf(line, "%lx-%lx ", &s, &e) == 2) {
			in = s < (uintptr_t)p + len && (uintptr_t)p < e;
			if (in)
				printf("# vma %s", line);
		} else if (in && (!strncmp(line, "VmFlags", 7) || !strncmp(line, "Locked", 6))) {
			printf("#   %s", line);
		}
	}
	fclose(f);
}

static void *ra_maker(void *arg)
{
	struct targ *t = arg;
	struct handoff *h = &hand[t->id];
	uint64_t rng = t->seed;

	be_nice();
	pthread_barrier_wait(&go);
	for (unsigned it = 0; it < ra_iters; it++) {
		unsigned n = 1 + (unsigned)(test_rand(&rng) % 8), op = (unsigned)(test_rand(&rng) % 3), k;
		uint64_t mapped_at = atomic_load(&ra_clock);
		uint8_t *p = map_anon((size_t)(n + 1) * PG, false), *d = NULL, *q;
		struct ra_free *f;
		struct iovm_mr *mr;

		memset(p, 0x11, (size_t)(n + 1) * PG);
		if (iovm_mr_reg(R.dom, p, (size_t)(n + 1) * PG, ACC, &mr)) {
			munmap(p, (size_t)(n + 1) * PG);
			continue;
		}
		/* Pages [1, n+1) go; page 0 stays the maker's (and registered) until after. */
		switch (op) {
		case 0:
			CHECK_OK(munmap(p + PG, (size_t)n * PG));
			q = p;
			break;
		case 1:
			d = mmap(NULL, (size_t)n * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			CHECK(d != MAP_FAILED);
			f = ra_free_begin(p + PG, (size_t)n * PG);
			q = mremap(p + PG, (size_t)n * PG, (size_t)n * PG, MREMAP_MAYMOVE | MREMAP_FIXED, d);
			ra_free_end(f);
			q = q == d ? p : q;
			break;
		default:
			f = ra_free_begin(p + PG, (size_t)n * PG);
			q = mremap(p, (size_t)(n + 1) * PG, PG, 0);
			ra_free_end(f);
			break;
		}
		if (q != p) {
			/*
			 * An mremap() refused: its range is more than one mapping
			 * (Linux moves a registered range only whole). A
			 * registration's refused pages are unlocked, which splits
			 * the maker's mapping: allowed, as the refusal is, in a
			 * hole another call was making.
			 */
			int e = errno;
			bool pending = ra_free_pending(p, (size_t)(n + 1) * PG, mapped_at, atomic_fetch_add(&ra_clock, 1) + 1);

			if (!pending) {
				printf("# mremap %s of [%p, +%u pages) failed: the mapping now\n", op == 1 ? "move" : "shrink",
				       (void *)(p + PG), n);
				print_vmas(p, (size_t)(n + 1) * PG);
			}
			CHECK_MSG(pending, "mremap %s of %u pages: %s, and no other call was making a hole there",
				  op == 1 ? "move" : "shrink", n, q == MAP_FAILED ? strerror(e) : "elsewhere");
			atomic_fetch_add(&ra_pending, 1);
			CHECK_OK(iovm_mr_dereg(mr));
			munmap(p, (size_t)(n + 1) * PG);
			if (d)
				munmap(d, (size_t)n * PG);
			continue;
		}
		/* The call returned: the address is the taker's. */
		h->addr = p + PG;
		h->pages = n;
		h->op = op;
		h->mapped_at = mapped_at;
		atomic_fetch_add_explicit(&h->seq, 1, memory_order_release);
		for (k = 0; atomic_load_explicit(&h->seq, memory_order_acquire) & 1; k++)
			if (k % 64 == 63)
				sched_yield();
		CHECK_OK(iovm_mr_dereg(mr));
		munmap(p, PG);
		if (d) {
			/* The move took its registration along, where no hook looks: this munmap goes through userfaultfd. */
			f = ra_free_begin(d, (size_t)n * PG);
			munmap(d, (size_t)n * PG);
			ra_free_end(f);
		}
	}
	h->addr = NULL;
	atomic_fetch_add_explicit(&h->seq, 1, memory_order_release);
	return NULL;
}

static void *ra_taker(void *arg)
{
	struct targ *t = arg;
	struct handoff *h = &hand[t->id];
	struct a17q a;

	thread_begin(&a);
	for (;;) {
		uint8_t *p, *q;
		unsigned n, k;
		struct iovm_mr *mr;
		struct iovm_mr_info info;
		uint32_t tag = next_tag();
		uint8_t stt = IOVM_STATUS_SUCCESS;
		bool refused;
		int ret;

		for (k = 0; !(atomic_load_explicit(&h->seq, memory_order_acquire) & 1); k++)
			if (k % 64 == 63)
				sched_yield();
		p = h->addr;
		n = h->pages;
		if (!p)
			break;
		q = mmap(p, (size_t)n * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
			 -1, 0);
		if (q != p) {
			if (q != MAP_FAILED)
				munmap(q, (size_t)n * PG);
			atomic_fetch_add(&ra_lost, 1);
			atomic_fetch_add_explicit(&h->seq, 1, memory_order_release);
			continue;
		}
		for (unsigned i = 0; i < n; i++)
			pat(p + (size_t)i * PG, tag, i);
		ret = iovm_mr_reg(R.dom, p, (size_t)n * PG, ACC, &mr);
		CHECK_MSG(ret == 0, "re-mapped after a %s returned: iovm_mr_reg: %d",
			  h->op == 0 ? "munmap" : h->op == 1 ? "mremap move" : "mremap shrink", ret);
		CHECK_OK(iovm_mr_query(mr, &info));
		refused = info.valid_pages != n;
		for (unsigned i = 0; i < n && !refused; i++) {
			memset(a.buf, 0x5a, PG);
			stt = a17_copy(&a, mr_iova(mr, p) + (uint64_t)i * PG, a.buf_iova, PG);
			refused = stt == IOVM_STATUS_PAGE_FAULT;
			CHECK_MSG(refused || (stt == IOVM_STATUS_SUCCESS && pat_eq(a.buf, tag, i, 0, PG)),
				  "memory mapped again after a %s returned, registered whole: page %u of %u read "
				  "status %u%s",
				  h->op == 0 ? "munmap" : h->op == 1 ? "mremap move" : "mremap shrink", i, n, stt,
				  stt == IOVM_STATUS_SUCCESS ? ", not its words" : "");
		}
		if (refused) {
			/* Allowed only in a hole another maker's unhooked call was still making. */
			bool pending = ra_free_pending(p, (size_t)n * PG, h->mapped_at,
						       atomic_fetch_add(&ra_clock, 1) + 1);

			atomic_fetch_add(pending ? &ra_pending : &ra_refused, 1);
			CHECK_OK(iovm_mr_query(mr, &info));
			CHECK_MSG(pending,
				  "memory mapped again where a %s that returned took memory away: %llu of %u pages "
				  "valid now, and no other call was making a hole there (reg.h: registers whole)",
				  h->op == 0 ? "munmap" : h->op == 1 ? "mremap move" : "mremap shrink",
				  (unsigned long long)info.valid_pages, n);
		} else {
			atomic_fetch_add(&ra_ok, 1);
		}
		CHECK_OK(iovm_mr_dereg(mr));
		munmap(p, (size_t)n * PG);
		atomic_fetch_add_explicit(&h->seq, 1, memory_order_release);
	}
	a17q_close(&R, &a);
	return NULL;
}

/* Registered memory of its own, replaced and discarded in place: events, never a hole. */
static void *ra_noiser(void *arg)
{
	struct targ *t = arg;
	uint64_t rng = t->seed;
	unsigned n = 32;
	uint8_t *p = map_anon((size_t)n * PG, false);

	be_nice();
	pthread_barrier_wait(&go);
	while (!atomic_load(&stop)) {
		struct iovm_mr *mr;
		unsigned k = (unsigned)(test_rand(&rng) % n), c = 1 + (unsigned)(test_rand(&rng) % 4);

		if (k + c > n)
			c = n - k;
		memset(p, 7, (size_t)n * PG);
		if (iovm_mr_reg(R.dom, p, (size_t)n * PG, ACC, &mr))
			continue;
		for (unsigned j = 0; j < 4; j++) {
			k = (unsigned)(test_rand(&rng) % (n - c + 1));
			if (j % 2)
				CHECK(mmap(p + (size_t)k * PG, (size_t)c * PG, PROT_READ | PROT_WRITE,
					   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == p + (size_t)k * PG);
			else
				madvise(p + (size_t)k * PG, (size_t)c * PG, MADV_DONTNEED_LOCKED);
			atomic_fetch_add(&ra_noise, 1);
		}
		CHECK_OK(iovm_mr_dereg(mr));
	}
	munmap(p, (size_t)n * PG);
	return NULL;
}

static void remap_after_return(unsigned noise_threads)
{
	pthread_t th[2 * PAIRS + 16];
	struct targ ta[2 * PAIRS + 16];
	unsigned nt = 0;
	uint64_t seed = (uint64_t)getpid() * 77 + 1;

	memset(hand, 0, sizeof(hand));
	atomic_store(&ra_ok, 0);
	atomic_store(&ra_lost, 0);
	atomic_store(&ra_refused, 0);
	atomic_store(&ra_pending, 0);
	atomic_store(&ra_noise, 0);
	atomic_store(&ra_nfrees, 0);
	memset(ra_frees, 0, sizeof(ra_frees));
	atomic_store(&stop, false);
	C.nice = true;
	ra_iters = rounds(100);
	CHECK(pthread_barrier_init(&go, NULL, 2 * PAIRS + noise_threads + 1) == 0);
	for (unsigned i = 0; i < PAIRS; i++) {
		ta[nt] = (struct targ){ i, seed + nt };
		CHECK_OK(-pthread_create(&th[nt], NULL, ra_maker, &ta[nt]));
		nt++;
		ta[nt] = (struct targ){ i, seed + nt };
		CHECK_OK(-pthread_create(&th[nt], NULL, ra_taker, &ta[nt]));
		nt++;
	}
	for (unsigned i = 0; i < noise_threads; i++, nt++) {
		ta[nt] = (struct targ){ i, seed * 3 + nt };
		CHECK_OK(-pthread_create(&th[nt], NULL, ra_noiser, &ta[nt]));
	}
	pthread_barrier_wait(&go);
	for (unsigned i = 0; i < 2 * PAIRS; i++)
		pthread_join(th[i], NULL);
	atomic_store(&stop, true);
	for (unsigned i = 2 * PAIRS; i < nt; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&go);
	C.nice = false;
	printf("# re-mapped and registered whole %lu (address lost to another %lu; refused: in a hole another call "
	       "was making %lu, otherwise %lu), noise calls %lu\n",
	       atomic_load(&ra_ok), atomic_load(&ra_lost), atomic_load(&ra_pending), atomic_load(&ra_refused),
	       atomic_load(&ra_noise));
	print_counters(stdout);
	CHECK(atomic_load(&ra_ok) >= PAIRS * ra_iters / 2);
	no_violations(R.dom);
}

/*
 * A cache region that covers memory a plain MR registered too: the plain MR
 * is deregistered, then part of the memory is taken away by a call libc
 * does not hook (without IOVM_HOOKS=all) or by munmap: the region must
 * count it. @variant: 0 the region over the MR's memory only; 1 two
 * overlapping gets (a region that may be merged).
 */
static unsigned rc_shared_watch_one(unsigned variant, unsigned op, bool dereg_first)
{
	struct a17q a;
	struct iovm_rcache *rc;
	struct iovm_mr *w, *m1, *mr;
	struct iovm_mr_info info, i0;
	unsigned n = 12, bad = 0, tp = 6;
	uint8_t *M = map_anon((size_t)n * PG, false), *t = M + (size_t)tp * PG;
	uint8_t own[12];
	uint8_t stt;

	memset(own, 1, sizeof(own));
	memset(M, 1, (size_t)n * PG);
	a17q_open(&R, &a, BUFLEN, IOVM_QUEUE_POLLED);
	CHECK_OK(iovm_rcache_create(R.dom, NULL, &rc));
	CHECK_OK(iovm_mr_reg(R.dom, M + 5 * PG, 4 * PG, ACC, &w)); /* a plain MR over [5, 9) */
	if (variant) {
		CHECK_OK(iovm_rcache_get(rc, M + 7 * PG, 2 * PG, ACC, &m1));
		CHECK_OK(iovm_rcache_put(rc, m1));
	}
	CHECK_OK(iovm_rcache_get(rc, M + 2 * PG + 5, 6 * PG, ACC, &mr)); /* [2, 9) */
	CHECK_OK(iovm_mr_query(mr, &i0));
	if (dereg_first)
		CHECK_OK(iovm_mr_dereg(w));
	switch (op) {
	case OP_FIXED:
		CHECK(mmap(t, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == t);
		break;
	case OP_DN_LOCKED:
		CHECK_OK(madvise(t, PG, MADV_DONTNEED_LOCKED));
		break;
	case OP_SHRINK:
		CHECK(mremap(M, (size_t)n * PG, (size_t)tp * PG, 0) == M);
		for (unsigned i = tp; i < n; i++)
			own[i] = 0;
		break;
	default:
		CHECK_OK(munmap(t, PG));
		own[tp] = 0;
		break;
	}
	CHECK_OK(iovm_mr_query(mr, &info));
	refill(t, 1, own + tp);
	memset(a.buf, 0x5a, PG);
	stt = a17_copy(&a, mr_iova(mr, M + 2 * PG + 5) - 5 + (uint64_t)(tp - 2) * PG, a.buf_iova, PG);
	if (info.valid_pages == info.pages || stt != IOVM_STATUS_PAGE_FAULT) {
		bad = 1;
		printf("# variant %u, plain MR deregistered %s, %s of page %u returned: region held [M%+ld, +%zu pages) "
		       "(%llu valid at the get), now %llu valid; device read of page %u: status %u\n",
		       variant, dereg_first ? "before" : "after", opname[op], tp, (long)((uint8_t *)i0.addr - M) / (long)PG,
		       i0.len / PG, (unsigned long long)i0.valid_pages, (unsigned long long)info.valid_pages, tp, stt);
	}
	if (!dereg_first)
		CHECK_OK(iovm_mr_dereg(w));
	CHECK_OK(iovm_rcache_put(rc, mr));
	CHECK_OK(iovm_rcache_destroy(rc));
	unmap_own(M, n, own);
	a17q_close(&R, &a);
	return bad;
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

/* fork() once, then the calls libc does not hook (without IOVM_HOOKS=all): still seen? */
TEST(fork_then_calls)
{
	if (TEST_TSAN)
		SKIP_CASE("TSan's fork handler blocks the monitor's reader");
	alarm(60);
	CHECK_EQ(fork_then_all(), 0);
}

TEST(rcache_overlap_then_calls)
{
	static const unsigned ops[] = { OP_MUNMAP, OP_FIXED, OP_DN_LOCKED, OP_SHRINK };
	unsigned bad = 0, runs = 0;

	alarm(60);
	for (unsigned scen = 0; scen < 10; scen++)
		for (unsigned k = 0; k < 4; k++, runs++)
			bad += rc_overlap_one(scen, ops[k]);
	printf("# %u of %u scenarios stale\n", bad, runs);
	CHECK_EQ(bad, 0);
}

/*
 * Failed once (2026-12-07, a fresh make check's gcc leg on a loaded
 * machine): a registration of memory mapped where a munmap() that had
 * returned took memory away read 0 of 1 pages valid. The maker's own
 * mapping can land in a hole another maker's unhooked mremap() is still
 * making (its event not read yet), or the munmap() of memory such a
 * move took away, and that event then takes the taker's pages: the case
 * reg.h allows. Those calls are now logged (ra_free_begin()), and a
 * refusal fails the test only where none of them was under way over the
 * memory. A maker's own mremap() can fail there too: its registration's
 * refused pages were unlocked, which splits its mapping (seen: the first
 * two pages unlocked, the rest locked; EFAULT). 150 runs beside busy
 * loops: 19 with such refusals, every one in such a hole.
 */
TEST(remap_after_return_registers_whole)
{
	alarm(110);
	remap_after_return(8);
}

TEST(rcache_over_a_plain_mr)
{
	static const unsigned ops[] = { OP_MUNMAP, OP_FIXED, OP_DN_LOCKED, OP_SHRINK };
	unsigned bad = 0, runs = 0;

	alarm(60);
	for (unsigned v = 0; v < 2; v++)
		for (unsigned d = 0; d < 2; d++)
			for (unsigned k = 0; k < 4; k++, runs++)
				bad += rc_shared_watch_one(v, ops[k], d);
	printf("# %u of %u stale\n", bad, runs);
	CHECK_EQ(bad, 0);
}

int main(void)
{
	test_init();
	signal(SIGALRM, on_alarm);
	printf("# IOVM_HOOKS=%s, CPUs %ld\n", getenv("IOVM_HOOKS") ? getenv("IOVM_HOOKS") : "(unset)",
	       sysconf(_SC_NPROCESSORS_ONLN));
	rig_open(&R, REG_OPTS ",log_level=error", NULL, IOVM_QUEUE_POLLED);
	{
		/* The monitor runs (a first registration starts it): else nothing here is attacked. */
		uint8_t *p = map_anon(PG, false);
		struct iovm_mr *mr;
		struct iovm_mr_info info;
		struct iovm_reg_stats st;

		CHECK_OK(iovm_mr_reg(R.dom, p, PG, IOVM_ACCESS_LOCAL_WRITE, &mr));
		CHECK_OK(iovm_mr_query(mr, &info));
		CHECK_OK(iovm_reg_stats(R.ctx, &st));
		if (!info.monitored || !st.monitor)
			SKIP("no memory monitor here (userfaultfd)");
		CHECK_OK(iovm_mr_dereg(mr));
		munmap(p, PG);
	}
	RUN_SELECTED(fork_then_calls);
	RUN_SELECTED(rcache_overlap_then_calls);
	RUN_SELECTED(rcache_over_a_plain_mr);
	RUN_SELECTED(remap_after_return_registers_whole);
	RUN_SELECTED(storm16_every_call);
	RUN_SELECTED(storm32_monitor_behind);
	RUN_SELECTED(storm_monitor_starved);
	RUN_SELECTED(rcache_storm);
	RUN_SELECTED(rcache_storm_unhooked);
	RUN_SELECTED(fork_in_storm);
	RUN_SELECTED(brk_in_storm);
	alarm(0);
	rig_close(&R);
	return 0;
}
