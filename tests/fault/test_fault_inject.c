/* SPDX-License-Identifier: MIT */
/*
 * test_fault_inject.c - every scenario of tests/fault/ with a failure
 * injected at each point it reaches, in turn, for each kind of failure.
 *
 * For each scenario: a run with nothing injected, the reference for what
 * the process holds (file descriptors, mappings); then, per pass (every
 * kind at once, each kind alone, errno variants), runs with the n-th call
 * of the pass's kinds failing, n = 1, 2, ... until a run ends without the
 * failure having fired. After each run, nothing the library took may be
 * left: the same file descriptors and as many mappings as the reference
 * (mappings not under sanitizers, whose runtimes map memory of their own).
 * fault.h says what each call must do when it meets the failure.
 *
 *	IOVM_FAULT_ONLY=NAME   the scenarios whose name contains NAME (A|B: A or B)
 *	IOVM_FAULT_PASSES=N    the first N passes only
 *	IOVM_FAULT_VERBOSE=1   say which call met each failure
 *	IOVM_FAULT_FROM=N      start at the N-th point (to look at one in a debugger)
 */
#include <dirent.h>
#include <malloc.h>
#include <stdlib.h>

#include "base/compiler.h"
#include "fault.h"

/*
 * The scenarios, one file per layer, built into this program: the harness
 * keeps its counts per translation unit.
 */
#include "fault_base.c"
#include "fault_mem.c"
#include "fault_iommu.c"
#include "fault_dev.c"
#include "fault_reg.c"
#include "fault_guest.c"
#include "fault_mp.c"

struct fi_pass {
	const char *name;
	unsigned kinds;
	int err; /* 0: each call's usual errno */
};

static const struct fi_pass passes[] = {
	{ "every kind", FI_ALL, 0 },
	{ "allocations", FI_ALLOC, 0 },
	{ "mmap", FI_MMAP, 0 },
	{ "system calls", FI_SYSCALL, 0 },
	{ "threads", FI_THREAD, 0 },
	/* Calls that make a file descriptor fail with EMFILE in the passes above; ENOMEM too, here. */
	{ "system calls, ENOMEM", FI_SYSCALL, ENOMEM },
	/* mmap (locked memory) and system calls (madvise, userfaultfd's ioctls) may say "again". */
	{ "mmap and syscalls, EAGAIN", FI_MMAP | FI_SYSCALL, EAGAIN },
};

/* The run going on. */
static struct {
	const struct fi_pass *pass;
	unsigned met; /* calls that met the failure and returned it */
} run;

static char where[256]; /* test_current: scenario, pass and n */
static bool verbose;     /* IOVM_FAULT_VERBOSE: every failed call */
static unsigned long first_n = 1; /* IOVM_FAULT_FROM: the first point tried (to debug one) */

/*
 * What a call may say when the failure met it: the injected errno, or the
 * one the failed kind of call means (ENOSPC only where a file could not
 * grow: no IOVA range "full" for want of a malloc), or ENOMEM, which any
 * resource running out may be reported as.
 */
static bool errno_ok(int err)
{
	unsigned kind = fi_fired_kind();

	if (-err == ENOMEM || (run.pass && run.pass->err && -err == run.pass->err))
		return true;
	switch (kind) {
	case FI_THREAD:
		return -err == EAGAIN;
	case FI_SYSCALL:
		return -err == EMFILE || -err == ENFILE || -err == ENOSPC || -err == EAGAIN;
	default:
		return false;
	}
}

void fault_met(const char *call, int err, const char *file, int line)
{
	bool fired = fi_disarm();

	if (!fired)
		test_fail("%s:%d: %s failed with %d (%s), and no failure was injected", file, line, call, err,
			  strerror(-err));
	if (err == -999)
		test_fail("%s:%d: %s returned NULL without setting errno", file, line, call);
	if (!errno_ok(err))
		test_fail("%s:%d: %s failed with %d (%s): not what running out of a resource says (kind %u failed)",
			  file, line, call, err, strerror(-err), fi_fired_kind());
	run.met++;
	if (verbose)
		printf("# %s: %s:%d: %s failed cleanly: %d (%s)\n", where, file, line, call, err, strerror(-err));
}

void fault_quiet_log(void *arg __attribute__((unused)), enum iovm_log_level level __attribute__((unused)),
		     const char *msg __attribute__((unused)))
{
}

static unsigned long total_known;

void fault_known(const char *call, int err, const char *why, const char *file, int line)
{
	if (!total_known++ || verbose)
		printf("# KNOWN BUG (%s): %s: %s:%d: %s, asked again, gave %d (%s)\n", why, where, file, line, call,
		       err, strerror(-err));
}

bool fault_reference_run(void)
{
	return run.pass == NULL;
}

/* ---- what the process holds ---- */

#define MAX_FDS 256

struct holdings {
	unsigned nr_fds;
	int fds[MAX_FDS];
	unsigned maps;
	char map_text[64 << 10]; /* /proc/self/maps, to say what is left over */
};

/*
 * Whether mappings can be compared: a sanitizer's runtime maps memory of
 * its own as the process runs (allocator regions by size class, a
 * quarantine, per-thread state kept for threads that ended), whoever
 * allocates. There the plain and clang builds, which run the same
 * scenarios, check the mappings, and LeakSanitizer the heap.
 */
#if TEST_ASAN || TEST_TSAN
#define CHECK_MAPS 0
#else
#define CHECK_MAPS 1
#endif

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

static void holdings(struct holdings *h)
{
	DIR *d = opendir("/proc/self/fd");
	char line[512];
	struct dirent *e;
	FILE *f;

	CHECK(d != NULL);
	h->nr_fds = 0;
	while ((e = readdir(d))) {
		int fd = atoi(e->d_name);

		if (e->d_name[0] == '.' || fd == dirfd(d))
			continue;
		CHECK(h->nr_fds < MAX_FDS);
		h->fds[h->nr_fds++] = fd;
	}
	closedir(d);
	qsort(h->fds, h->nr_fds, sizeof(int), cmp_int);
	h->maps = 0;
	h->map_text[0] = '\0';
	f = fopen("/proc/self/maps", "r");
	CHECK(f != NULL);
	for (size_t i = 0; fgets(line, sizeof(line), f);) {
		size_t n = strlen(line);

		h->maps++;
		if (i + n < sizeof(h->map_text)) {
			memcpy(h->map_text + i, line, n + 1);
			i += n;
		}
	}
	fclose(f);
}

/* The lines of @now's maps that @ref lacks. */
static void print_new_maps(const struct holdings *ref, const struct holdings *now)
{
	const char *line = now->map_text;

	while (*line) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		char buf[512];

		snprintf(buf, sizeof(buf), "%.*s", (int)MIN(len, sizeof(buf) - 1), line);
		if (!strstr(ref->map_text, buf))
			fprintf(stderr, "  new: %s\n", buf);
		line += len + (end != NULL);
	}
}

static void check_holdings(const struct holdings *ref)
{
	static struct holdings now;

	holdings(&now);
	for (unsigned i = 0; i < now.nr_fds; i++) {
		bool known = false;

		for (unsigned j = 0; j < ref->nr_fds; j++)
			known |= now.fds[i] == ref->fds[j];
		if (!known) {
			char path[64], target[256];
			ssize_t n;

			snprintf(path, sizeof(path), "/proc/self/fd/%d", now.fds[i]);
			n = readlink(path, target, sizeof(target) - 1);
			target[n > 0 ? n : 0] = '\0';
			test_fail("file descriptor %d (%s) left open after iovm_close()", now.fds[i], target);
		}
	}
	CHECK_MSG(now.nr_fds == ref->nr_fds, "%u file descriptors after iovm_close(), %u before", now.nr_fds,
		  ref->nr_fds);
	if (!CHECK_MAPS)
		return;
	if (now.maps != ref->maps)
		print_new_maps(ref, &now);
	CHECK_MSG(now.maps == ref->maps, "%u mappings after iovm_close(), %u before", now.maps, ref->maps);
}

/* ---- the runner ---- */

static unsigned long total_points, total_met, total_absorbed;

static void run_scenario(const struct fault_scenario *s, unsigned nr_passes)
{
	static struct holdings ref;

	/* Nothing injected: the scenario works, and what it leaves is the reference. */
	snprintf(where, sizeof(where), "%s, nothing injected", s->name);
	test_current = where;
	run.pass = NULL;
	s->run();
	s->run(); /* the second time, whatever the first made once per process is there */
	holdings(&ref);
	for (unsigned p = 0; p < nr_passes; p++) {
		unsigned long n, met = 0, absorbed = 0;

		run.pass = &passes[p];
		for (n = first_n;; n++) {
			bool fired;

			snprintf(where, sizeof(where), "%s, %s, n=%lu", s->name, passes[p].name, n);
			run.met = 0;
			fi_arm(passes[p].kinds, n, passes[p].err);
			s->run();
			fired = fi_disarm();
			check_holdings(&ref);
			if (!fired)
				break;
			/* Fired and met by a call, or absorbed: the library went on without it. */
			met += run.met;
			absorbed += run.met == 0;
			CHECK_MSG(n < 100000, "a scenario that never ends");
		}
		printf("# %-28s %-22s %4lu points: %4lu failed calls, %4lu absorbed\n", s->name, passes[p].name,
		       n - 1, met, absorbed);
		total_points += n - 1;
		total_met += met;
		total_absorbed += absorbed;
	}
}

/* Whether @name contains one of the '|'-separated parts of @only. */
static bool chosen(const char *name, const char *only)
{
	while (only) {
		const char *bar = strchr(only, '|');
		size_t n = bar ? (size_t)(bar - only) : strlen(only);

		for (const char *at = name; *at; at++)
			if (!strncmp(at, only, n))
				return true;
		only = bar ? bar + 1 : NULL;
	}
	return false;
}

int main(void)
{
	const struct fault_scenario *const lists[] = {
		fault_base_scenarios, fault_mem_scenarios, fault_iommu_scenarios,
		fault_dev_scenarios,  fault_reg_scenarios, fault_guest_scenarios, fault_mp_scenarios,
	};
	const char *only = getenv("IOVM_FAULT_ONLY"), *np = getenv("IOVM_FAULT_PASSES");
	unsigned nr_passes = sizeof(passes) / sizeof(passes[0]);

	test_init();
	verbose = getenv("IOVM_FAULT_VERBOSE") != NULL;
	if (getenv("IOVM_FAULT_FROM"))
		first_n = strtoul(getenv("IOVM_FAULT_FROM"), NULL, 10);
#ifndef IOVM_DEBUG_CHECKS
	SKIP("built without debug_checks: no fault-injection hooks");
#endif
	/* Refused options and injected failures are logged: counted, not printed. */
	iovm_log_set_handler(fault_quiet_log, NULL);
	/* One malloc arena: threads' arenas would come and go as mappings, unrelated to iovm. */
	mallopt(M_ARENA_MAX, 1);
	if (np && atoi(np) > 0 && (unsigned)atoi(np) < nr_passes)
		nr_passes = (unsigned)atoi(np);
	for (unsigned l = 0; l < sizeof(lists) / sizeof(lists[0]); l++) {
		for (const struct fault_scenario *s = lists[l]; s->name; s++) {
			if (only && !chosen(s->name, only))
				continue;
			run_scenario(s, nr_passes);
			printf("ok - %s\n", s->name);
		}
	}
	printf("# %lu injection points in all: %lu failed a call cleanly, %lu were absorbed\n", total_points,
	       total_met, total_absorbed);
	if (total_known)
		printf("# %lu retries met a known bug filed elsewhere (KNOWN BUG above)\n", total_known);
	CHECK(total_points > 0);
	return 0;
}
