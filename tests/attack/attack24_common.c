/* SPDX-License-Identifier: MIT */
/*
 * attack24_common.c - what the parts of test_attack24_monitor share
 * (attack24.h declares it): the rig, the counters and their printing,
 * pages that name themselves, the storm's published regions and make-up,
 * the storm threads' niceness and start, and the mappings the cases make
 * and take apart.
 */
#include "attack/attack24.h"

A24_HARNESS(common);

struct rig R;

unsigned rounds(unsigned base)
{
	const char *s = getenv("A24_ROUNDS");
	unsigned m = s ? (unsigned)atoi(s) : 1;

	/* Half as many under ASan, which runs the whole suite again (make check's time). */
	if (TEST_ASAN && !s)
		return base / 2 ? base / 2 : 1;
	return base * (m ? m : 1);
}

/* ---- counters, printed at the end of each case and by the watchdog ---- */

atomic_ulong c_iters, c_taken_pages, c_taken_faults, c_writes_faulted, c_present_ok, c_overinval,
	c_reader_reads, c_reader_gone, c_reader_present, c_reader_inflight, c_queries, c_query_gone,
	c_churn, c_odp_noise, c_rc_gets, c_rc_held_taken, c_rc_fresh, c_rc_efault, c_forks, c_child_ctx,
	c_stable_checks, c_brk, c_brk_pages, c_reg_enomem, c_reg_efault, c_rc_lost_addr, c_rc_wider, c_fresh_refused, c_relocked, c_relock_kept, c_rc_get_faulted, c_rc_old_region, c_ops[10];
atomic_int c_phase;
atomic_uint fork_epoch; /* odd while a fork() and its child run */

const char *opname[] = { "munmap", "mmap_fixed", "mremap_move", "mremap_shrink", "dontneed_locked",
				"munlock_dontneed", "munlock_free", "munlock_remove" };

void zero_counters(void)
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

void print_counters(FILE *f)
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

/* ---- pages that name themselves ---- */

static inline uint64_t word(uint32_t tag, unsigned page, unsigned i)
{
	return 0x8000000000000000ull | ((uint64_t)tag << 32) | ((uint64_t)page << 12) | i;
}

void pat(uint8_t *p, uint32_t tag, unsigned page)
{
	uint64_t *w = (uint64_t *)p;

	for (unsigned i = 0; i < PG / 8; i++)
		w[i] = word(tag, page, i);
}

/* Bytes [off, off+n) of page @page of tag @tag equal @got. */
bool pat_eq(const uint8_t *got, uint32_t tag, unsigned page, unsigned off, unsigned n)
{
	uint64_t w[PG / 8];

	pat((uint8_t *)w, tag, page);
	return memcmp(got, (uint8_t *)w + off, n) == 0;
}

uint32_t next_tag(void)
{
	static atomic_uint t = 1;

	return atomic_fetch_add(&t, 1) & 0x7fffffff;
}

/* ---- registered regions, published to readers ---- */

struct slot slots[MAXSLOTS];
unsigned nslots;
atomic_bool stop;

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
uint8_t read_page(struct a17q *a, const struct slot *s, unsigned i, unsigned *o, unsigned *n)
{
	page_part(s, i, o, n);
	memset(a->buf, 0x5a, *n);
	return a17_copy(a, s->iova0 + (uint64_t)i * PG + *o, a->buf_iova, *n);
}

/* ---- what the workers do ---- */

struct cfg C;
unsigned rc_nops = 4; /* the rcache users' calls: munmap only (1), or all four */

bool hooks_all(void)
{
	const char *h = getenv("IOVM_HOOKS");

	return h && !strcmp(h, "all");
}

bool known_on(void)
{
	const char *k = getenv("IOVM_ATTACK24_KNOWN");

	return k && !strcmp(k, "1");
}
struct iovm_rcache *RC;
uint8_t *noise;     /* the on-demand MR's memory */
size_t noise_len;
struct iovm_mr *noise_mr;

static _Atomic int my_tids[MAXTHREADS + 8];
atomic_uint n_my_tids;

void be_nice(void)
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
unsigned starve_library_threads(void)
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

uint8_t *map_anon(size_t len, bool shared)
{
	uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE, (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS,
			  -1, 0);

	CHECK(p != MAP_FAILED);
	return p;
}

/* @pages pages, with the page after the first 2 MiB aligned. */
uint8_t *map_huge_aligned(unsigned pages)
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
void refill(uint8_t *p, unsigned n, uint8_t *own)
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
void unmap_own(uint8_t *p, unsigned n, const uint8_t *own)
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

pthread_barrier_t go;

/* A storm thread's start: its niceness, a queue of its own, then the go with the others. */
void thread_begin(struct a17q *a)
{
	be_nice();
	a17q_open(&R, a, BUFLEN, IOVM_QUEUE_POLLED);
	pthread_barrier_wait(&go);
}
