/* SPDX-License-Identifier: MIT */
/*
 * bench.h - what every benchmark of iovm shares: timing, medians, the result
 * table with its peer and ratio, JSON, a gnuplot chart, progress, notes, and
 * hugepages reserved for the run.
 */
#ifndef IOVM_BENCH_H
#define IOVM_BENCH_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

uint64_t bench_now_ns(void);
double bench_median(double *v, unsigned n);

/*
 * bench_result() - one row: iovm's figure and the peer's, measured in this
 * run, in @unit; which way is better follows from it: higher for rates
 * ("/s"), speed-ups ("x") and shares ("%"), lower for everything else
 * (times, counts). NAN means "did not succeed".
 *
 * @peer names the peer; a row without a peer figure says why in a peer of
 * the form "none (WHY)": "none (X not built in)" is a peer not built,
 * "none (--no-...)" or "none (... not run)" a peer not run, any other
 * "none..." a row that has no peer at all. A named peer with a NAN figure
 * failed.
 *
 * @target, if any, is the goal the row is held to: clauses joined by
 * commas, each met for the row to be: "iovm succeeds"; "[iovm] OP X
 * [UNIT]", iovm's own figure (a time UNIT converted to the row's: "<= 20
 * ns", "iovm <= 5 us", ">= 100%"; a speed-up's ">= 1.8x"); "ratio OP X",
 * "OP Xx PEER", "OP X/Y of peer" or "OP PEER", iovm's figure over the
 * peer's ("<= 0.5x UCX", "<= 1/3 of peer", "<= UCX"). OP is <=, <, >= or
 * >. "report" or NULL: none.
 */
void bench_result(const char *name, const char *unit, double iovm, const char *peer,
		  double peer_value, const char *target);

/*
 * bench_unbuilt() - a row for something not built yet: the table says
 * @why where the target goes, the JSON has null and "status": @why, the
 * chart leaves it out.
 */
void bench_unbuilt(const char *name, const char *unit, const char *why);

/* A line worth keeping with the results (printed under the table). */
void bench_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Progress on stderr while a long measurement runs. */
void bench_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

void bench_print_table(FILE *f, const char *title, unsigned reps);
/*
 * JSON: a list of rows, each {name, unit, iovm, peer (null where there
 * is none to name), peer_status ("measured", "failed", "not built", "not
 * run" or "none"), peer_note (why there is no peer, where given),
 * peer_value, ratio (iovm / peer), lead (the chart's: above 1 iovm
 * leads), better ("lower" or "higher"), target (null: none), met (true,
 * false, or null: not checked, or no target)}, and status where the row
 * is not built; a figure that is missing is null.
 */
void bench_write_json(FILE *f);
int bench_write_json_file(const char *path);
/*
 * The chart, an SVG (a PNG when the name ends in .png) through gnuplot:
 * every row with a peer as iovm's lead over it, on one log axis (the
 * peer's figure over iovm's where lower is better, iovm's over the
 * peer's where higher is: above 1 iovm leads), sorted by lead, a line at
 * 1, each row's target a tick where the lead would meet it; a row whose
 * peer was not built, not run or failed, or where iovm failed, says so in
 * place of its bar. Rows with no peer at all are listed under it with
 * their own figures, then the benchmark's own panels, if any. 0, or a
 * negative errno.
 */
int bench_plot(const char *svg, const char *title);

/*
 * A benchmark's own panels, drawn under the common ones: @draw writes
 * gnuplot commands for the band of the image between the screen
 * coordinates @top and @bottom, @height pixels tall. Registered before
 * bench_report(); NULL: none.
 */
struct bench_panels {
	unsigned height;
	void (*draw)(FILE *gp, double top, double bottom, void *arg);
	void *arg;
};
void bench_plot_panels(const struct bench_panels *p);
/*
 * A gnuplot run: its script written to @script; its image, which it writes
 * to its standard output, copied by bench_gnuplot_close() into the file
 * @path names, opened here. gnuplot never sees the name, so that no name
 * can reach its command language (a quote and a newline in a name would
 * run commands), and no shell runs either.
 */
struct bench_gnuplot {
	FILE *script; /* gnuplot's standard input */
	pid_t pid;
	int image;    /* gnuplot's standard output */
	int out;      /* the file asked for */
	bool regular; /* a regular file: removed when the chart fails; anything else is not ours to remove */
	sigset_t mask; /* the thread's signal mask before: SIGPIPE is blocked while the script is written */
};

/* 0, or a negative errno (the file cannot be made). */
int bench_gnuplot_open(const char *path, struct bench_gnuplot *g);
/*
 * End the script, copy the image, wait: 0; -ENOPKG: gnuplot is not
 * installed; -EIO: it failed; the errno of a write that failed (-ENOSPC).
 */
int bench_gnuplot_close(struct bench_gnuplot *g, const char *path);
/* An output the arguments asked for (--json, --json-out, --plot) failed: said on stderr; the exit status is 1. */
void bench_output_fail(const char *what, int err);
bool bench_output_failed(void);

/*
 * Add pages to the machine's 2 MiB pool so that @nr are free, for this run
 * (root only); at exit, take back at most the pages added, and only those
 * free then. Never sets the pool to a remembered size: others use it too.
 */
void bench_hugepages_reserve(unsigned nr);
/* --hugepages N: what every later bench_hugepages_reserve() asks instead of its own figure. */
void bench_hugepages_set(long nr);

const char *bench_size(uint64_t bytes, char *buf, unsigned len);

/* What every benchmark takes from the command line. */
struct bench_args {
	bool json;            /* the JSON list alone on stdout; the table goes to stderr */
	int json_fd;          /* --json: the real standard output (main.c sends stdout to stderr meanwhile) */
	const char *json_out; /* and/or into a file */
	const char *plot;     /* an SVG (or .png) chart */
	bool quick;           /* fewer iterations: for the test suite */
	bool dpdk;            /* compare against the peers built in (DPDK, UCX) */
	const char *opts;     /* iovm options */
};

/* The table, then the JSON and the chart the arguments ask for. */
void bench_report(const struct bench_args *args, const char *title, unsigned reps);

int bench_mem(const struct bench_args *args);
int bench_iommu(const struct bench_args *args);
int bench_reg(const struct bench_args *args);
/* The event-coverage table of the memory monitors (bench_reg_cover.c): before any context is opened. */
void bench_reg_cover(bool quick);
/* The child's side: monitor @mon, @reps munmaps timed, its answers written to @fd; the exit status. */
#define BENCH_REG_COVER_CHILD "reg-cover-child"
int bench_reg_cover_child(int mon, unsigned reps, int fd);
/*
 * bench reg's munmap rows in an exec'd process without UCX's munmap patch
 * (bench_reg_cover.c): plain, monitored, userfaultfd alone (us), hooked;
 * 0, or -1 when no answer came. The child's side: bench_reg_munmap_child().
 */
#define BENCH_REG_MUNMAP_CHILD "reg-munmap-child"
int bench_reg_munmap_remote(bool busy, bool quick, const char *opts, double out[4]);
int bench_reg_munmap_child(int busy, int quick, const char *opts, int fd);
/* bench_reg_async.c: the rows of background registration, in @dom, within @room bytes lockable. */
struct iovm_domain;
void bench_reg_async(const struct bench_args *args, struct iovm_domain *dom, size_t room);
int bench_vfio(const struct bench_args *args);
int bench_placement(const struct bench_args *args);
int bench_mp(const struct bench_args *args);
int bench_rdma(const struct bench_args *args);

#endif /* IOVM_BENCH_H */
