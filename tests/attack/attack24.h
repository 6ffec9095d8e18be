/* SPDX-License-Identifier: MIT */
/*
 * attack24.h - what the parts of test_attack24_monitor share (the
 * program's head comment, in test_attack24_monitor.c, says what it
 * attacks and what it found): the calls that take memory away, the
 * registered regions the storm publishes, the storm's make-up, the
 * counters, the state and helpers attack24_common.c defines; and how the
 * parts' cases reach main()'s list as one program's would.
 *
 * The parts: attack24_common.c (the shared state and helpers),
 * attack24_storm.c (the storm, its fork and brk threads, its cases),
 * attack24_storm_threads.c (the storm's workers, readers and churners),
 * attack24_storm_rcache.c (the storm's registration cache users),
 * attack24_reduced.c (the one-thread reductions), attack24_remap.c
 * (memory mapped again where a call that returned took memory away).
 */
#ifndef IOVM_TESTS_ATTACK24_H
#define IOVM_TESTS_ATTACK24_H

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

enum { OP_MUNMAP, OP_FIXED, OP_MOVE, OP_SHRINK, OP_DN_LOCKED, OP_UNLOCK_DN, OP_UNLOCK_FREE, OP_REMOVE, NOPS };

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

struct targ {
	unsigned id;
	uint64_t seed;
};

/* ---- defined in attack24_common.c ---- */

extern struct rig R;
extern atomic_ulong c_iters, c_taken_pages, c_taken_faults, c_writes_faulted, c_present_ok, c_overinval,
	c_reader_reads, c_reader_gone, c_reader_present, c_reader_inflight, c_queries, c_query_gone,
	c_churn, c_odp_noise, c_rc_gets, c_rc_held_taken, c_rc_fresh, c_rc_efault, c_forks, c_child_ctx,
	c_stable_checks, c_brk, c_brk_pages, c_reg_enomem, c_reg_efault, c_rc_lost_addr, c_rc_wider, c_fresh_refused, c_relocked, c_relock_kept, c_rc_get_faulted, c_rc_old_region, c_ops[10];
extern atomic_int c_phase;
extern atomic_uint fork_epoch; /* odd while a fork() and its child run */
extern const char *opname[];
extern struct slot slots[MAXSLOTS];
extern unsigned nslots;
extern atomic_bool stop;
extern struct cfg C;
extern unsigned rc_nops; /* the rcache users' calls: munmap only (1), or all four */
extern struct iovm_rcache *RC;
extern uint8_t *noise;     /* the on-demand MR's memory */
extern size_t noise_len;
extern struct iovm_mr *noise_mr;
extern atomic_uint n_my_tids;
extern pthread_barrier_t go;

unsigned rounds(unsigned base);
void zero_counters(void);
void print_counters(FILE *f);
void pat(uint8_t *p, uint32_t tag, unsigned page);
bool pat_eq(const uint8_t *got, uint32_t tag, unsigned page, unsigned off, unsigned n);
uint32_t next_tag(void);
uint8_t read_page(struct a17q *a, const struct slot *s, unsigned i, unsigned *o, unsigned *n);
bool hooks_all(void);
bool known_on(void);
void be_nice(void);
unsigned starve_library_threads(void);
uint8_t *map_anon(size_t len, bool shared);
uint8_t *map_huge_aligned(unsigned pages);
void refill(uint8_t *p, unsigned n, uint8_t *own);
void unmap_own(uint8_t *p, unsigned n, const uint8_t *own);
void thread_begin(struct a17q *a);

/* ---- the storm's threads (attack24_storm_threads.c, attack24_storm_rcache.c) ---- */

void *worker(void *arg);
void *reader(void *arg);
void *churner(void *arg);
void *rcacher(void *arg);

/*
 * ---- one program of several files ----
 *
 * harness.h keeps its state in statics, a copy in each file: the running
 * case's name (which a failed check, a skip and print_counters() print),
 * the count of checks, whether the program failed. Each part shows main's
 * file its copy (A24_HARNESS(part), once), and gives main()'s list its
 * cases (A24_CASE(name) for each TEST(name), which is static there).
 * test_attack24_monitor.c names each case in every copy before it runs,
 * and at exit counts the parts' checks and failures in its own: the
 * program prints what it printed as one file.
 */
struct a24_harness {
	const char **current;
	_Atomic unsigned long *checks;
	volatile int *ended;
};

#define A24_HARNESS(part) \
	const struct a24_harness a24_harness_##part = { &test_current, &test_checks, &test_ended }

#define A24_CASE(name)                 \
	void a24_run_##name(void)      \
	{                              \
		RUN(name);             \
	}

extern const struct a24_harness a24_harness_common, a24_harness_storm, a24_harness_storm_threads,
	a24_harness_storm_rcache, a24_harness_reduced, a24_harness_remap;

/* attack24_reduced.c */
void a24_run_fork_then_calls(void);
void a24_run_rcache_overlap_then_calls(void);
void a24_run_rcache_over_a_plain_mr(void);
/* attack24_remap.c */
void a24_run_remap_after_return_registers_whole(void);
/* attack24_storm.c */
void a24_run_storm16_every_call(void);
void a24_run_storm32_monitor_behind(void);
void a24_run_storm_monitor_starved(void);
void a24_run_rcache_storm(void);
void a24_run_rcache_storm_unhooked(void);
void a24_run_fork_in_storm(void);
void a24_run_brk_in_storm(void);

#endif /* IOVM_TESTS_ATTACK24_H */
