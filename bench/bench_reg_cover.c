/* SPDX-License-Identifier: MIT */
/*
 * bench_reg_cover.c - which changes of the address space each memory
 * monitor sees, side by side (issue 20's event-coverage table):
 *
 *   iovm      libc's calls hooked, userfaultfd behind them (the default)
 *   uffd      iovm with IOVM_NO_HOOKS=1: userfaultfd alone, the mechanism
 *             of libfabric's uffd monitor (FI_MR_CACHE_MONITOR=uffd)
 *   UCM       UCX's memory hooks (UCM_EVENT_VM_UNMAPPED), what UCX's
 *             rcache follows
 *
 * Each monitor runs in a process of its own, a fresh exec of this program,
 * so that none patches libc under another: UCX's libucs patches libc's
 * munmap() as it is loaded, whatever the program asks of it, and iovm
 * leaves an entry it does not know alone; the iovm children are run with
 * UCX_MEM_MMAP_HOOK_MODE=none, which keeps libucs off it. For each event a fresh
 * 64 KiB region is made, watched (an iovm MR; for UCM, the range its
 * handler is asked to report), changed, and asked about: iovm's MR says
 * whether pages are invalid (iovm_mr_query() waits for what the monitor
 * has still to read), UCM's handler whether it was called on the range
 * before the call returned. The same child times munmap() of a watched
 * 64 KiB beside a plain one, so that each monitor's cost is measured in
 * the conditions it was tried in.
 */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <iovm.h>

#include "bench.h"
#include "base/ctx.h"          /* the context's monitor, */
#include "reg/reg_internal.h"  /* and monitor_hooked(): which path saw an unmap */

#ifdef HAVE_UCX
#include <ucm/api/ucm.h>
#endif

#define CPG 4096u
#define REGION (16 * CPG)
#define COVER_TIMEOUT_MS 60000

enum monitor { MON_IOVM, MON_UFFD, MON_UCM, MON_COUNT };

static const char *const mon_name[MON_COUNT] = { "iovm", "uffd", "UCM" };

/* What a monitor made of one event. */
enum seen {
	MISSED,
	SEEN_CALLER,   /* before the call returned, in the calling thread */
	SEEN_THREAD,   /* by the monitor's thread, waited for before the next call */
	NOT_TRIED,     /* the region could not be made or watched here */
	UNMONITORED,   /* iovm says so of this memory when it registers it (iovm/reg.h) */
	REFUSED,       /* the call failed: nothing changed, nothing to see */
};

/* A watched region, and what the event left of it to ask about. */
struct watched {
	uint8_t *p;   /* the region as made */
	size_t len;
	bool refused; /* the change's call failed */
};

struct event {
	const char *name;
	/* Make the region (NULL: an anonymous mapping, touched), before the watch. */
	uint8_t *(*make)(struct watched *w);
	/* Change it; the region's memory is gone or replaced afterwards. */
	void (*change)(struct watched *w);
	/* Give back what is left (NULL: munmap of the region, which may be gone). */
	void (*cleanup)(struct watched *w);
};

static uint8_t *make_anon(struct watched *w)
{
	uint8_t *p = mmap(NULL, w->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	memset(p, 0x5a, w->len);
	return p;
}

static void ev_munmap(struct watched *w)
{
	munmap(w->p, w->len);
}

static void ev_raw_munmap(struct watched *w)
{
	syscall(SYS_munmap, w->p, w->len);
}

static void ev_mremap_move(struct watched *w)
{
	void *to = mmap(NULL, w->len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (to == MAP_FAILED || mremap(w->p, w->len, w->len, MREMAP_MAYMOVE | MREMAP_FIXED, to) == MAP_FAILED) {
		w->refused = true;
		return;
	}
	munmap(to, w->len);
}

static void ev_mremap_shrink(struct watched *w)
{
	if (mremap(w->p, w->len, w->len / 2, 0) == MAP_FAILED) {
		w->refused = true;
	}
}

static void ev_dontneed(struct watched *w)
{
	w->refused = madvise(w->p, w->len, MADV_DONTNEED) != 0;
}

static void ev_free(struct watched *w)
{
	w->refused = madvise(w->p, w->len, MADV_FREE) != 0;
}

static void ev_map_fixed(struct watched *w)
{
	if (mmap(w->p, w->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED) {
		w->refused = true;
	}
}

/* glibc's free() of a block it mmapped itself: its own munmap, not the application's. */
static uint8_t *make_malloc(struct watched *w)
{
	uint8_t *p;

	w->len = 8u << 20;
	p = malloc(w->len);
	if (p)
		memset(p, 0x5a, w->len);
	return p;
}

/*
 * Only when free() gave the block back to the kernel is there anything to
 * see: a sanitizer's allocator keeps it in quarantine, and glibc's mmap
 * threshold may have put it in an arena. Still mapped: nothing changed.
 */
static void ev_malloc_free(struct watched *w)
{
	free(w->p);
	w->refused = msync(w->p, w->len, MS_ASYNC) == 0;
}

static void cleanup_none(struct watched *w)
{
	(void)w;
}

static uint8_t *make_shm(struct watched *w)
{
	int id = shmget(IPC_PRIVATE, w->len, IPC_CREAT | 0600);
	void *p;

	if (id < 0)
		return NULL;
	p = shmat(id, NULL, 0);
	shmctl(id, IPC_RMID, NULL); /* goes with the last detach */
	if (p == (void *)-1)
		return NULL;
	memset(p, 0x5a, w->len);
	return p;
}

static void ev_shmdt(struct watched *w)
{
	w->refused = shmdt(w->p) != 0;
}

/*
 * The program break moved down over memory of ours: tried only where
 * nothing took the break meanwhile (malloc's arena grows there too).
 */
static uint8_t *make_brk(struct watched *w)
{
	void *p = sbrk((intptr_t)w->len);

	if (p == (void *)-1)
		return NULL;
	memset(p, 0x5a, w->len);
	return p;
}

static void ev_brk(struct watched *w)
{
	if (sbrk(0) != w->p + w->len) {
		w->refused = true; /* the break moved meanwhile: not tried */
		return;
	}
	(void)sbrk(-(intptr_t)w->len);
}

static const struct event events[] = {
	{ "munmap()", NULL, ev_munmap, cleanup_none },
	{ "free() of glibc's own mmapped block", make_malloc, ev_malloc_free, cleanup_none },
	{ "syscall(SYS_munmap)", NULL, ev_raw_munmap, cleanup_none },
	{ "mremap() moving it", NULL, ev_mremap_move, NULL },
	{ "mremap() shrinking it", NULL, ev_mremap_shrink, NULL },
	{ "mmap(MAP_FIXED) over it", NULL, ev_map_fixed, NULL },
	{ "madvise(MADV_DONTNEED)", NULL, ev_dontneed, NULL },
	{ "madvise(MADV_FREE)", NULL, ev_free, NULL },
	{ "shmdt()", make_shm, ev_shmdt, cleanup_none },
	{ "sbrk() shrinking the break", make_brk, ev_brk, cleanup_none },
};
#define NEVENTS (sizeof(events) / sizeof(events[0]))

/* What a child sends back. */
struct cover_result {
	int32_t status;            /* 0, or the negative errno that stopped it */
	uint8_t seen[NEVENTS];     /* enum seen */
	double munmap_us, plain_us; /* medians, each over the same repetitions */
};

/* ---- the monitors ---- */

struct watch_ops {
	int (*start)(void);
	/* Watch @w: on demand where the monitor has a choice (followed, not locked), else as it can. */
	int (*watch)(struct watched *w, bool on_demand);
	/* What the monitor made of the change; then forget the range. */
	enum seen (*seen)(struct watched *w);
	void (*stop)(void);
};

static struct iovm_ctx *cctx;
static struct iovm_domain *cdom;
static struct iovm_mr *cmr;

static int iovm_start(void)
{
	struct iovm_domain_attr da = { .type = IOVM_DOMAIN_MANAGED };
	int ret = iovm_open("page_size=4K,host_pa=off,pin_budget=1G", &cctx);

	if (ret)
		return ret;
	return iovm_domain_create(cctx, &da, &cdom);
}

static uint64_t hooked_before;

/*
 * On demand, every page faulted in: a pinned registration is locked, and
 * Linux refuses madvise(MADV_DONTNEED) and MADV_FREE on locked memory.
 */
static int iovm_watch(struct watched *w, bool on_demand)
{
	int ret = iovm_mr_reg(cdom, w->p, w->len, IOVM_ACCESS_LOCAL_WRITE | (on_demand ? IOVM_ACCESS_ON_DEMAND : 0),
			      &cmr);

	if (!ret && on_demand && (ret = iovm_mr_advise(cmr, w->p, w->len, IOVM_ADVISE_WRITE))) {
		iovm_mr_dereg(cmr);
		cmr = NULL;
	}
	hooked_before = cctx->reg && cctx->reg->mon ? monitor_hooked(cctx->reg->mon) : 0;
	return ret;
}

static enum seen iovm_seen(struct watched *w)
{
	struct iovm_mr_info info;
	enum seen seen = MISSED;

	(void)w;
	if (iovm_mr_query(cmr, &info))
		seen = NOT_TRIED;
	else if (!info.monitored)
		seen = UNMONITORED;
	else if (info.valid_pages < info.pages)
		seen = monitor_hooked(cctx->reg->mon) != hooked_before ? SEEN_CALLER : SEEN_THREAD;
	iovm_mr_dereg(cmr);
	cmr = NULL;
	return seen;
}

static void iovm_stop(void)
{
	iovm_domain_destroy(cdom);
	iovm_close(cctx);
}

static const struct watch_ops iovm_ops = { iovm_start, iovm_watch, iovm_seen, iovm_stop };

#ifdef HAVE_UCX
static uint8_t *ucm_lo, *ucm_hi;
static atomic_bool ucm_hit;

static void ucm_cb(ucm_event_type_t type, ucm_event_t *ev, void *arg)
{
	uint8_t *a = ev->vm_unmapped.address;

	(void)type;
	(void)arg;
	if (a < ucm_hi && ucm_lo < a + ev->vm_unmapped.size)
		atomic_store(&ucm_hit, true);
}

static int ucm_start(void)
{
	return ucm_set_event_handler(UCM_EVENT_VM_UNMAPPED, 1000, ucm_cb, NULL) == UCS_OK ? 0 : -EIO;
}

static int ucm_watch(struct watched *w, bool on_demand)
{
	(void)on_demand;
	atomic_store(&ucm_hit, false);
	ucm_lo = w->p;
	ucm_hi = w->p + w->len;
	return 0;
}

/* UCM's handlers run inside the hooked call, before it returns. */
static enum seen ucm_seen(struct watched *w)
{
	(void)w;
	ucm_lo = ucm_hi = NULL;
	return atomic_load(&ucm_hit) ? SEEN_CALLER : MISSED;
}

static void ucm_stop(void)
{
	ucm_unset_event_handler(UCM_EVENT_VM_UNMAPPED, ucm_cb, NULL);
}

static const struct watch_ops ucm_ops = { ucm_start, ucm_watch, ucm_seen, ucm_stop };
#endif

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* munmap() of a watched 64 KiB and of a plain one, in turn: medians in microseconds. */
static void time_munmap(const struct watch_ops *ops, unsigned reps, struct cover_result *r)
{
	double *mon = calloc(reps, sizeof(double)), *plain = calloc(reps, sizeof(double));
	unsigned n = 0;

	r->munmap_us = r->plain_us = NAN;
	if (!mon || !plain)
		goto free_samples;
	for (unsigned i = 0; i < reps + reps / 10; i++) {
		struct watched w = { .len = REGION }, u = { .len = REGION };
		uint64_t t0, t1, t2;

		w.p = make_anon(&w);
		u.p = make_anon(&u);
		if (!w.p || !u.p || ops->watch(&w, false))
			goto free_samples;
		t0 = bench_now_ns();
		munmap(w.p, w.len);
		t1 = bench_now_ns();
		munmap(u.p, u.len);
		t2 = bench_now_ns();
		(void)ops->seen(&w);
		if (i < reps / 10)
			continue; /* warm-up */
		mon[n] = (double)(t1 - t0) / 1e3;
		plain[n++] = (double)(t2 - t1) / 1e3;
	}
	qsort(mon, n, sizeof(double), cmp_double);
	qsort(plain, n, sizeof(double), cmp_double);
	r->munmap_us = mon[n / 2];
	r->plain_us = plain[n / 2];
free_samples:
	free(mon);
	free(plain);
}

int bench_reg_cover_child(int mon, unsigned reps, int wr)
{
	struct cover_result r = { 0 };
	const struct watch_ops *ops = &iovm_ops;
	enum monitor m = (enum monitor)mon;

	if (mon < 0 || mon >= MON_COUNT || !reps || reps > 100000)
		return 2;
#ifdef HAVE_UCX
	if (m == MON_UCM)
		ops = &ucm_ops;
#else
	if (m == MON_UCM)
		return 2;
#endif
	r.status = ops->start();
	for (unsigned e = 0; !r.status && e < NEVENTS; e++) {
		struct watched w = { .len = REGION };

		w.p = events[e].make ? events[e].make(&w) : make_anon(&w);
		if (!w.p || ops->watch(&w, true)) {
			r.seen[e] = NOT_TRIED;
			continue;
		}
		events[e].change(&w);
		r.seen[e] = ops->seen(&w);
		/* A call that failed changed nothing: what a monitor said of it does not count either way. */
		if (w.refused && r.seen[e] != UNMONITORED)
			r.seen[e] = REFUSED;
		if (events[e].cleanup)
			events[e].cleanup(&w);
		else
			munmap(w.p, w.len);
	}
	if (!r.status)
		time_munmap(ops, reps, &r);
	if (!r.status)
		ops->stop();
	return write(wr, &r, sizeof(r)) == (ssize_t)sizeof(r) ? 0 : 2;
}

/*
 * This program again, exec'd as `iovm-bench ARGS... FD` (main.c's hidden
 * commands), with UCX's libucs kept off munmap() (@ucm_off) and iovm's
 * hooks off (@no_hooks): @len bytes of its answer on the pipe FD into
 * @out. 0; -1 when none came within @timeout_ms (the child is killed: a
 * monitor that hangs, as UCM's hooks are reported to, fails the row, not
 * the bench).
 */
static int exec_self(const char *const args[], bool ucm_off, bool no_hooks, void *out, size_t len, int timeout_ms)
{
	struct pollfd pfd;
	int fds[2], st, ret = -1;
	pid_t pid;

	if (pipe(fds))
		return -1;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		const char *argv[8] = { "iovm-bench" };
		unsigned n = 1;
		char fd[16];

		close(fds[0]);
		snprintf(fd, sizeof(fd), "%d", fds[1]);
		while (*args && n < 6)
			argv[n++] = *args++;
		argv[n++] = fd;
		argv[n] = NULL;
		if (ucm_off)
			setenv("UCX_MEM_MMAP_HOOK_MODE", "none", 1);
		if (no_hooks)
			setenv("IOVM_NO_HOOKS", "1", 1);
		execv("/proc/self/exe", (char *const *)argv);
		_exit(127);
	}
	close(fds[1]);
	pfd = (struct pollfd){ .fd = fds[0], .events = POLLIN };
	if (poll(&pfd, 1, timeout_ms) == 1 && read(fds[0], out, len) == (ssize_t)len)
		ret = 0;
	else
		kill(pid, SIGKILL);
	close(fds[0]);
	waitpid(pid, &st, 0);
	return ret;
}

/* One monitor in a child of its own: its answers, or a status saying why none came. */
static struct cover_result child_cover(enum monitor m, unsigned reps)
{
	struct cover_result r = { .status = -ECHILD };
	char mon[16], nrep[16];
	const char *args[] = { BENCH_REG_COVER_CHILD, mon, nrep, NULL };

	snprintf(mon, sizeof(mon), "%d", (int)m);
	snprintf(nrep, sizeof(nrep), "%u", reps);
	if (exec_self(args, m != MON_UCM, m == MON_UFFD, &r, sizeof(r), COVER_TIMEOUT_MS))
		r.status = -ETIMEDOUT;
	return r;
}

int bench_reg_munmap_remote(bool busy, bool quick, const char *opts, double out[4])
{
	char b[4], q[4];
	const char *args[] = { BENCH_REG_MUNMAP_CHILD, b, q, opts ? opts : "", NULL };

	snprintf(b, sizeof(b), "%d", busy);
	snprintf(q, sizeof(q), "%d", quick);
	/* Minutes at most: a full run is seconds. */
	return exec_self(args, true, false, out, 4 * sizeof(double), 10 * COVER_TIMEOUT_MS);
}

static unsigned seen_count(const struct cover_result *r, unsigned *tried)
{
	unsigned n = 0;

	*tried = 0;
	for (unsigned e = 0; e < NEVENTS; e++) {
		*tried += r->seen[e] != NOT_TRIED && r->seen[e] != REFUSED;
		n += r->seen[e] == SEEN_CALLER || r->seen[e] == SEEN_THREAD;
	}
	return n;
}

static const char *mark(const struct cover_result *r, unsigned e)
{
	static const char *const what[] = { [MISSED] = "MISSED", [SEEN_CALLER] = "in caller",
					    [SEEN_THREAD] = "by thread", [NOT_TRIED] = "not tried",
					    [UNMONITORED] = "unmonitored", [REFUSED] = "call failed" };

	if (r->status)
		return "-";
	return r->seen[e] < sizeof(what) / sizeof(what[0]) ? what[r->seen[e]] : "?";
}

void bench_reg_cover(bool quick)
{
	struct cover_result res[MON_COUNT];
	unsigned reps = quick ? 50 : 400, tried[MON_COUNT], seen[MON_COUNT];

	bench_progress("event coverage: iovm, userfaultfd alone, UCM, each in a process of its own");
	for (unsigned m = 0; m < MON_COUNT; m++) {
#ifndef HAVE_UCX
		if (m == MON_UCM) {
			res[m] = (struct cover_result){ .status = -ENOSYS };
			continue;
		}
#endif
		res[m] = child_cover((enum monitor)m, reps);
	}
	bench_note("event coverage of a watched region (iovm: an on-demand MR, faulted in): seen in the caller,");
	bench_note("before the call returned, or by the monitor's thread, waited for by the next lookup; unmonitored:");
	bench_note("iovm said so when it registered the memory (iovm/reg.h); MISSED counts against a monitor:");
	bench_note("  %-38s %-10s %-10s %-10s", "event", mon_name[0], mon_name[1], mon_name[2]);
	for (unsigned e = 0; e < NEVENTS; e++)
		bench_note("  %-38s %-10s %-10s %-10s", events[e].name, mark(&res[0], e), mark(&res[1], e),
			   mark(&res[2], e));
	for (unsigned m = 0; m < MON_COUNT; m++) {
		seen[m] = seen_count(&res[m], &tried[m]);
		if (res[m].status)
			bench_note("  %s: no answers (%s)", mon_name[m],
				   res[m].status == -ENOSYS ? "UCX not built in" : strerror(-res[m].status));
	}
	bench_result("events seen, of those tried: iovm (hooks + userfaultfd)", "%",
		     res[MON_IOVM].status || !tried[MON_IOVM] ? NAN : 100.0 * seen[MON_IOVM] / tried[MON_IOVM],
		     res[MON_UCM].status == -ENOSYS ? "none (UCX not built in)" : "UCX UCM hooks",
		     res[MON_UCM].status || !tried[MON_UCM] ? NAN : 100.0 * seen[MON_UCM] / tried[MON_UCM], ">= UCM");
	bench_result("events seen, of those tried: userfaultfd alone (libfabric's uffd monitor's way)", "%",
		     res[MON_UFFD].status || !tried[MON_UFFD] ? NAN : 100.0 * seen[MON_UFFD] / tried[MON_UFFD],
		     res[MON_UCM].status == -ENOSYS ? "none (UCX not built in)" : "UCX UCM hooks",
		     res[MON_UCM].status || !tried[MON_UCM] ? NAN : 100.0 * seen[MON_UCM] / tried[MON_UCM], "report");
	/* Each monitor's munmap cost, over a plain munmap timed beside it in the same process. */
	for (unsigned m = 0; m < MON_COUNT; m++) {
		char name[96];

		snprintf(name, sizeof(name), "munmap 64 KiB watched by %s, in a process of its own", mon_name[m]);
		if (m == MON_UCM && res[m].status == -ENOSYS)
			bench_result(name, "us", NAN, "none (UCX not built in)", NAN, "report");
		else
			bench_result(name, "us", res[m].status ? NAN : res[m].munmap_us, "plain munmap, same process",
				     res[m].status ? NAN : res[m].plain_us, "report");
	}
}
