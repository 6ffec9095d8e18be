/* SPDX-License-Identifier: MIT */
/*
 * attack25.h - what the parts of test_attack25_moves share (the program's
 * head comment, in test_attack25_moves.c, says what it attacks and what
 * it found): the rig, a window of the address space nobody else maps in,
 * pages that name themselves, device reads and writes through one queue
 * per thread, the checks every case makes once a call that took memory
 * away has returned, and how the parts' cases reach main()'s list.
 *
 * The parts: attack25_single.c (one thread: realloc chains, mremap
 * chains, moves back and forth, moves onto registered memory),
 * attack25_edges.c (MREMAP_DONTUNMAP, shrinks and growths, the address
 * space's edges), attack25_race.c (a move and the munmap() of its
 * destination in another thread, a taker mapping into the hole),
 * attack25_storm.c (many movers beside readers of the registration cache,
 * fork and one CPU), attack25_stopped.c (calls made while the monitor's
 * reader is stopped by ptrace()), attack25_foreign.c (a move refused
 * beside another userfaultfd's registration).
 */
#ifndef IOVM_TESTS_ATTACK25_H
#define IOVM_TESTS_ATTACK25_H

#include <dirent.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "attack/attack17.h"

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#define A25_KNOWN(bug)                                                                   \
	do {                                                                             \
		const char *_k = getenv("IOVM_ATTACK25_KNOWN");                          \
		if (!_k || strcmp(_k, "1"))                                              \
			SKIP_CASE("known bug (IOVM_ATTACK25_KNOWN=1 runs it): %s", bug); \
	} while (0)

#define A25_MB2 (UINT64_C(2) << 20)
#define A25_ACC (IOVM_ACCESS_LOCAL_WRITE | IOVM_ACCESS_REMOTE_READ | IOVM_ACCESS_REMOTE_WRITE)
/*
 * Far below where the kernel puts mmap(NULL) (top down from the stack):
 * nobody else maps here. From 16 TiB, above AddressSanitizer's shadow;
 * under ThreadSanitizer, whose shadow starts at 1 TiB, in the 512 GiB of
 * application memory it leaves at the bottom (its 18 areas take 72 GiB).
 */
#if TEST_TSAN
#define A25_WINDOW UINT64_C(0x004000000000)
#else
#define A25_WINDOW UINT64_C(0x100000000000)
#endif
#define A25_AREA(n) ((uint8_t *)(uintptr_t)(A25_WINDOW + (uint64_t)(n) * (UINT64_C(1) << 32)))

extern struct rig R;
extern struct iovm_rcache *RC;

/* ---- the environment ---- */

static inline bool a25_hooks_all(void)
{
	const char *h = getenv("IOVM_HOOKS");

	return h && !strcmp(h, "all");
}

static inline unsigned a25_rounds(unsigned base)
{
	const char *s = getenv("A25_ROUNDS");
	unsigned m = s ? (unsigned)atoi(s) : 1;

	if (TEST_ASAN && !s)
		return base / 2 ? base / 2 : 1;
	return base * (m ? m : 1);
}

static inline uint64_t a25_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Every thread of the process on CPU @cpu (-1: all CPUs); the library's threads (not @mine) at nice @nice. */
static inline unsigned a25_pin_all(int cpu, const pid_t *mine, unsigned nmine, int nice)
{
	cpu_set_t set;
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	unsigned n = 0;

	CPU_ZERO(&set);
	for (int c = 0; c < CPU_SETSIZE && c < 1024; c++)
		if (cpu < 0 ? c < sysconf(_SC_NPROCESSORS_CONF) : c == cpu)
			CPU_SET(c, &set);
	CHECK(d != NULL);
	while (d && (e = readdir(d))) {
		pid_t tid = (pid_t)atoi(e->d_name);
		bool ours = false;

		if (tid <= 0)
			continue;
		for (unsigned k = 0; k < nmine; k++)
			ours |= mine[k] == tid;
		(void)sched_setaffinity(tid, sizeof(set), &set);
		if (!ours && !setpriority(PRIO_PROCESS, (id_t)tid, nice))
			n++;
	}
	if (d)
		closedir(d);
	return n;
}

/* ---- mappings ---- */

/* [p, p+len) mapped fresh, private and anonymous, exactly there (NULL if taken). */
static inline uint8_t *a25_map_at(void *p, size_t len)
{
	uint8_t *q = mmap(p, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

	if (q == MAP_FAILED)
		return NULL;
	if (q != p) { /* a kernel without MAP_FIXED_NOREPLACE took it as a hint */
		munmap(q, len);
		return NULL;
	}
	return q;
}

/* ---- pages that name themselves: word i of page @page of tag @tag ---- */

static inline uint64_t a25_word(uint32_t tag, uint64_t page, unsigned i)
{
	return 0x8000000000000000ull | ((uint64_t)tag << 32) | ((page & 0xfffff) << 9) | i;
}

static inline void a25_fill(uint8_t *p, size_t npages, uint32_t tag)
{
	for (size_t pg = 0; pg < npages; pg++) {
		uint64_t *w = (uint64_t *)(p + pg * PG);

		for (unsigned i = 0; i < PG / 8; i++)
			w[i] = a25_word(tag, pg, i);
	}
}

/* Bytes [off, off+n) of a page of tag @tag, page @page, equal @got. */
static inline bool a25_eq(const uint8_t *got, uint32_t tag, uint64_t page, unsigned off, unsigned n)
{
	uint64_t w[PG / 8];

	for (unsigned i = 0; i < PG / 8; i++)
		w[i] = a25_word(tag, page, i);
	return memcmp(got, (uint8_t *)w + off, n) == 0;
}

static inline uint32_t a25_tag(void)
{
	static atomic_uint t = 1;

	return atomic_fetch_add(&t, 1) & 0x7fffffff;
}

/* ---- the device ---- */

/* Device read of @n bytes at @iova into @a->buf (filled 0x5a first): its status. */
static inline uint8_t a25_read(struct a17q *a, uint64_t iova, unsigned n)
{
	memset(a->buf, 0x5a, n);
	return a17_copy(a, iova, a->buf_iova, n);
}

/* Device write of @n bytes of 0xd7 to @iova: its status. */
static inline uint8_t a25_write(struct a17q *a, uint64_t iova, unsigned n)
{
	memset(a->buf, 0xd7, n);
	return a17_copy(a, a->buf_iova, iova, n);
}

static inline uint64_t a25_iova(struct iovm_mr *mr, const void *p)
{
	iovm_iova_t iova;

	CHECK_OK(iovm_mr_iova(mr, p, 1, &iova));
	return iova.addr;
}

/*
 * The page of @mr holding @p (inside @mr, at least 128 bytes before the
 * page's end) was taken away by a call that returned; the memory that
 * replaced it (if any: @now, the page's start, which the caller filled
 * with tag @tag as page @pg, or NULL) is at the same address. "No
 * iovm_mr_query() calls it valid" and "devices never reach the memory
 * that replaces them" (reg.h): a read and a write through the old IOVA
 * must fault, touching nothing. What went wrong, or NULL.
 */
static inline const char *a25_gone_page(struct a17q *a, struct iovm_mr *mr, const uint8_t *p, const uint8_t *now,
					uint32_t tag, uint64_t pg)
{
	struct iovm_mr_info inf;
	uint64_t iova = a25_iova(mr, p);
	unsigned off = (unsigned)((uintptr_t)p & (PG - 1));
	uint8_t st;

	CHECK_OK(iovm_mr_query(mr, &inf));
	if (inf.valid_pages == inf.pages)
		return "iovm_mr_query() counts every page valid after the call returned";
	st = a25_read(a, iova, 64);
	if (st == IOVM_STATUS_SUCCESS)
		return now && a25_eq(a->buf, tag, pg, off, 64) ? "a device read of the old IOVA brought the new memory's bytes"
							       : "a device read of the old IOVA succeeded";
	if (st != IOVM_STATUS_PAGE_FAULT)
		return "a device read of the old IOVA ended neither done nor faulted";
	if (a25_write(a, iova + 64, 64) != IOVM_STATUS_PAGE_FAULT)
		return "a device write to the old IOVA did not fault";
	if (now && !a25_eq(now + off + 64, tag, pg, off + 64, 64))
		return "the device wrote in the new memory";
	return NULL;
}

/* [p, p+n) of @mr (within one page) is untouched memory of tag @tag, page @pg: valid, read back whole. */
static inline const char *a25_kept_n(struct a17q *a, struct iovm_mr *mr, const uint8_t *p, unsigned n, uint32_t tag,
				     uint64_t pg)
{
	unsigned off = (unsigned)((uintptr_t)p & (PG - 1));

	if (a25_read(a, a25_iova(mr, p), n) != IOVM_STATUS_SUCCESS)
		return "a device read of a page nobody took away faulted";
	if (!a25_eq(a->buf, tag, pg, off, n))
		return "a device read of a page nobody took away brought other bytes";
	return NULL;
}

/* The page of @mr holding @p, from @p to the page's end (inside @mr): as a25_kept_n(). */
static inline const char *a25_kept_page(struct a17q *a, struct iovm_mr *mr, const uint8_t *p, uint32_t tag,
					uint64_t pg)
{
	return a25_kept_n(a, mr, p, PG - (unsigned)((uintptr_t)p & (PG - 1)), tag, pg);
}

static inline struct iovm_mr_info a25_info(struct iovm_mr *mr)
{
	struct iovm_mr_info inf;

	CHECK_OK(iovm_mr_query(mr, &inf));
	return inf;
}

static inline struct iovm_rcache_stats a25_rstats(void)
{
	struct iovm_rcache_stats st;

	CHECK_OK(iovm_rcache_stats(RC, &st));
	return st;
}

/*
 * ---- one program of several files (as attack24's) ----
 *
 * harness.h keeps its state in statics, a copy in each file: each part
 * shows main's file its copy (A25_HARNESS(part)) and gives main()'s list
 * its cases (A25_CASE(name) for each TEST(name)); main's file names each
 * case in every copy before it runs, and at exit counts the parts' checks
 * and failures in its own.
 */
struct a25_harness {
	const char **current;
	_Atomic unsigned long *checks;
	volatile int *ended;
};

#define A25_HARNESS(part) \
	const struct a25_harness a25_harness_##part = { &test_current, &test_checks, &test_ended }

#define A25_CASE(name)            \
	void a25_run_##name(void) \
	{                         \
		RUN(name);        \
	}

extern const struct a25_harness a25_harness_single, a25_harness_edges, a25_harness_race, a25_harness_storm,
	a25_harness_stopped, a25_harness_foreign;

/* attack25_single.c, attack25_edges.c */
void a25_run_realloc_chain_then_free(void);
void a25_run_mremap_chain_then_munmap(void);
void a25_run_back_and_forth(void);
void a25_run_move_onto_registered(void);
void a25_run_dontunmap(void);
void a25_run_shrink_grow_tail(void);
void a25_run_edges(void);
void a25_run_calls_that_take_nothing(void);
void a25_run_move_of_two_mappings(void);
/* attack25_race.c, attack25_storm.c */
void a25_run_move_then_munmap_elsewhere(void);
void a25_run_move_then_munmap_starved(void);
void a25_run_move_then_munmap_noisy(void);
void a25_run_fork_after_move(void);
/* attack25_stopped.c */
void a25_run_reader_stopped(void);
/* attack25_foreign.c */
void a25_run_failed_move_beside_foreign_uffd(void);
void a25_run_movers_storm(void);
void a25_run_movers_storm_one_cpu(void);

#endif /* IOVM_TESTS_ATTACK25_H */
