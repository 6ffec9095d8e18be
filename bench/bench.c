/* SPDX-License-Identifier: MIT */
/*
 * bench.c - results, their table, JSON and chart; hugepages for the run.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "../tools/json.h"

#define MAX_RESULTS 64
#define MAX_NOTES 32

struct result {
	char name[64];
	char unit[16];
	double iovm;
	char peer[48];
	double peer_value;
	char target[40];
	char unbuilt[24]; /* why the row has no figure: not built yet; "" when it has one */
};

static struct result results[MAX_RESULTS];
static unsigned nr_results;
static char notes[MAX_NOTES][160];
static unsigned nr_notes;

uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

double bench_median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void bench_result(const char *name, const char *unit, double iovm, const char *peer,
		  double peer_value, const char *target)
{
	struct result *r;

	if (nr_results == MAX_RESULTS)
		return;
	r = &results[nr_results++];
	snprintf(r->name, sizeof(r->name), "%s", name);
	snprintf(r->unit, sizeof(r->unit), "%s", unit);
	snprintf(r->peer, sizeof(r->peer), "%s", peer);
	/* "report": a figure reported for what it is, held to no target. */
	snprintf(r->target, sizeof(r->target), "%s", target && strcmp(target, "report") ? target : "");
	r->iovm = iovm;
	r->peer_value = peer_value;
}

void bench_unbuilt(const char *name, const char *unit, const char *why)
{
	bench_result(name, unit, NAN, "none", NAN, why);
	if (nr_results && !strcmp(results[nr_results - 1].name, name))
		snprintf(results[nr_results - 1].unbuilt, sizeof(results[0].unbuilt), "%s", why);
}

void bench_note(const char *fmt, ...)
{
	va_list ap;

	if (nr_notes == MAX_NOTES)
		return;
	va_start(ap, fmt);
	vsnprintf(notes[nr_notes++], sizeof(notes[0]), fmt, ap);
	va_end(ap);
}

void bench_progress(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "[bench] ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " ...\n");
}

static double ratio(const struct result *r)
{
	/* A figure below zero is a difference lost in noise (a cost less a baseline): no ratio to read. */
	if (isnan(r->iovm) || isnan(r->peer_value) || r->peer_value <= 0 || r->iovm < 0)
		return NAN;
	return r->iovm / r->peer_value;
}

/* Rows measured as rates (GB/s, Mops/s...): higher is better. */
static bool rate_unit(const char *unit)
{
	return strstr(unit, "/s") != NULL;
}

/* Whether a higher figure is better: rates, speed-ups (x) and shares (%); otherwise (times, counts) lower is. */
static bool higher_better(const char *unit)
{
	return rate_unit(unit) || !strcmp(unit, "x") || !strcmp(unit, "%");
}

/*
 * How far iovm leads the peer, the same way round for every row: the
 * peer's figure over iovm's where lower is better (times), iovm's over the
 * peer's where higher is (rates); above 1 iovm leads. NAN without both
 * figures; 0 or infinity where one of them is 0.
 */
static double lead(const struct result *r)
{
	/* As ratio(): a figure below zero has no lead to read. */
	if (isnan(r->iovm) || isnan(r->peer_value) || r->iovm < 0 || r->peer_value < 0)
		return NAN;
	if (r->iovm == 0 && r->peer_value == 0)
		return 1;
	return higher_better(r->unit) ? r->iovm / r->peer_value : r->peer_value / r->iovm;
}

enum peer_state { PEER_MEASURED, PEER_FAILED, PEER_NOT_BUILT, PEER_NOT_RUN, PEER_NONE };

static const char *const peer_state_name[] = {
	[PEER_MEASURED] = "measured",
	[PEER_FAILED] = "failed",
	[PEER_NOT_BUILT] = "not built",
	[PEER_NOT_RUN] = "not run",
	[PEER_NONE] = "none",
};

/* What became of a row's peer: the convention of bench_result()'s @peer (bench.h). */
static enum peer_state peer_state(const struct result *r)
{
	if (strncmp(r->peer, "none", 4))
		return isnan(r->peer_value) ? PEER_FAILED : PEER_MEASURED;
	if (strstr(r->peer, "not built"))
		return PEER_NOT_BUILT;
	if (strstr(r->peer, "not run") || strstr(r->peer, "--no-"))
		return PEER_NOT_RUN;
	return PEER_NONE;
}

/* The reason in a peer "none (REASON)", into @buf; "" when there is none. */
static const char *peer_reason(const struct result *r, char *buf, size_t len)
{
	const char *open = strchr(r->peer, '(');
	size_t n;

	buf[0] = '\0';
	if (!open)
		return buf;
	n = strlen(open + 1);
	if (n && open[n] == ')')
		n--;
	/* "none (report)": a figure reported alone, no reason to give. */
	if (n != 6 || strncmp(open + 1, "report", 6))
		snprintf(buf, len, "%.*s", (int)n, open + 1);
	return buf;
}

/* A target's clause, in the row's terms. */
struct clause {
	enum { C_SUCCEEDS, C_IOVM, C_RATIO } what;
	bool upper;  /* "<=" or "<": the figure at most @x; else at least */
	bool strict; /* "<" or ">" */
	double x;    /* in the row's unit (C_IOVM) or iovm / peer (C_RATIO) */
};

#define MAX_CLAUSES 4

/* Nanoseconds in a time unit ("ns", "us", "ms", "s", what follows a '/' aside); 0 for any other unit. */
static double time_scale(const char *unit)
{
	static const struct { const char *name; double ns; } units[] = {
		{ "ns", 1 }, { "us", 1e3 }, { "ms", 1e6 }, { "s", 1e9 },
	};
	size_t n = strcspn(unit, "/");

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (n == strlen(units[i].name) && !strncmp(unit, units[i].name, n))
			return units[i].ns;
	return 0;
}

/* One clause of a target (see bench_result() in bench.h): 0, or -1 when it says nothing checkable. */
static int parse_clause(const struct result *r, char *s, struct clause *c)
{
	char *save = NULL, *tok[8], *end, *suffix;
	unsigned n = 0, i = 0;
	int subject = -1; /* C_IOVM, C_RATIO, or -1: none given */
	double x;

	for (char *t = strtok_r(s, " ", &save); t && n < 8; t = strtok_r(NULL, " ", &save))
		tok[n++] = t;
	if (n == 2 && !strcmp(tok[0], "iovm") && !strcmp(tok[1], "succeeds")) {
		c->what = C_SUCCEEDS;
		return 0;
	}
	if (i < n && !strcmp(tok[i], "iovm"))
		subject = C_IOVM, i++;
	else if (i < n && !strcmp(tok[i], "ratio"))
		subject = C_RATIO, i++;
	if (i == n)
		return -1;
	if (!strcmp(tok[i], "<=") || !strcmp(tok[i], "<"))
		c->upper = true;
	else if (!strcmp(tok[i], ">=") || !strcmp(tok[i], ">"))
		c->upper = false;
	else
		return -1;
	c->strict = !tok[i][1];
	if (++i == n)
		return -1;
	/* "<= UCX": at most the peer's figure. */
	if ((tok[i][0] < '0' || tok[i][0] > '9') && tok[i][0] != '.') {
		if (subject == C_IOVM)
			return -1;
		c->what = C_RATIO;
		c->x = 1;
		return 0;
	}
	errno = 0;
	x = strtod(tok[i], &end);
	if (errno || end == tok[i] || !isfinite(x))
		return -1;
	if (*end == '/') { /* "1/3" */
		char *den = end + 1;
		double d = strtod(den, &end);

		if (end == den || !(d > 0))
			return -1;
		x /= d;
	}
	/* The unit, written on the number ("0.5x", "100%") or after it ("20 ns"). */
	suffix = *end ? end : i + 1 < n ? tok[++i] : "";
	i++;
	if (subject == C_RATIO) {
		if (*suffix && strcmp(suffix, "x") && strcmp(suffix, "of"))
			return -1;
		c->what = C_RATIO;
	} else if (!strcmp(suffix, "of") || (!strcmp(suffix, "x") && (i < n || strcmp(r->unit, "x")))) {
		/* "<= 1/3 of peer", "<= 0.5x UCX": against the peer (but ">= 1.8x" of a speed-up is its figure). */
		if (subject == C_IOVM)
			return -1;
		c->what = C_RATIO;
	} else {
		double from = time_scale(suffix), to = time_scale(r->unit);

		c->what = C_IOVM;
		if (from && to)
			x = x * from / to;
		else if (*suffix && strcmp(suffix, r->unit))
			return -1; /* a unit that is not the row's */
		if (i < n)
			return -1;
	}
	c->x = x;
	return 0;
}

/* A row's target as clauses: how many (0: no target), or -1 when a clause is not understood. */
static int parse_target(const struct result *r, struct clause *c)
{
	char buf[sizeof(r->target)], *save = NULL;
	int n = 0;

	if (r->unbuilt[0] || !r->target[0])
		return 0;
	snprintf(buf, sizeof(buf), "%s", r->target);
	for (char *s = strtok_r(buf, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
		if (n == MAX_CLAUSES || parse_clause(r, s, &c[n]))
			return -1;
		n++;
	}
	return n;
}

/* Whether @r meets one clause of its target: 1 met, 0 missed, -1 not checked (a figure it needs is missing). */
static int clause_met(const struct result *r, const struct clause *c)
{
	double v = c->what == C_RATIO ? ratio(r) : r->iovm;

	if (isnan(r->iovm))
		return 0; /* iovm did not succeed: no target is met */
	if (c->what == C_SUCCEEDS)
		return 1;
	if (isnan(v))
		return -1;
	return c->upper ? (c->strict ? v < c->x : v <= c->x) : (c->strict ? v > c->x : v >= c->x);
}

/*
 * Whether @r meets its target: 1 met, 0 missed (a clause missed, or iovm
 * failed), -1 not checked (a figure a clause needs is missing, or a clause
 * is not understood), -2 no target.
 */
static int target_met(const struct result *r)
{
	struct clause c[MAX_CLAUSES];
	int n = parse_target(r, c), met = 1;

	if (!n)
		return -2;
	if (n < 0)
		return -1;
	for (int i = 0; i < n; i++) {
		int m = clause_met(r, &c[i]);

		if (!m)
			return 0;
		if (m < 0)
			met = -1;
	}
	return met;
}

/* The table's and the chart's word for target_met(). */
static const char *met_word(int met)
{
	return met == 1 ? "met" : met == 0 ? "MISSED" : met == -1 ? "unchecked" : "";
}

/*
 * The target and whether it is met, for people: "ratio <= 0.33: met"; ""
 * without a target. One partly checked says so by clause: "<= 15 ns: met,
 * <= 0.5x UCX: unchecked".
 */
static const char *target_text(const struct result *r, char *buf, size_t len)
{
	struct clause c[MAX_CLAUSES];
	int n = parse_target(r, c), met = target_met(r), i = 0;
	char copy[sizeof(r->target)], *save = NULL;
	size_t at = 0;

	buf[0] = '\0';
	if (met == -2)
		return buf;
	if (met != -1 || n <= 1) {
		snprintf(buf, len, "%s: %s", r->target, met_word(met));
		return buf;
	}
	snprintf(copy, sizeof(copy), "%s", r->target);
	for (char *s = strtok_r(copy, ",", &save); s && i < n && at < len; s = strtok_r(NULL, ",", &save), i++) {
		while (*s == ' ')
			s++;
		at += (size_t)snprintf(buf + at, len - at, "%s%s: %s", i ? ", " : "", s, met_word(clause_met(r, &c[i])));
	}
	return buf;
}

static void fmt_value(char *buf, size_t len, double v)
{
	if (isnan(v))
		snprintf(buf, len, "-");
	else if (isinf(v))
		snprintf(buf, len, "%s", v > 0 ? "inf" : "-inf");
	else if (fabs(v) >= 100)
		snprintf(buf, len, "%.0f", v);
	else if (fabs(v) >= 1)
		snprintf(buf, len, "%.2f", v);
	else
		snprintf(buf, len, "%.3g", v);
}

void bench_print_table(FILE *f, const char *title, unsigned reps)
{
	fprintf(f, "\n%s: median of %u runs each, peers measured in the same run\n\n", title, reps);
	fprintf(f, "%-44s %-10s %10s  %-34s %10s %8s  %s\n", "measure", "unit", "iovm", "peer",
		"peer", "ratio", "target");
	for (unsigned i = 0; i < nr_results; i++) {
		const struct result *r = &results[i];
		enum peer_state ps = peer_state(r);
		char a[32], b[32], c[32], t[128];

		fmt_value(a, sizeof(a), r->iovm);
		fmt_value(b, sizeof(b), r->peer_value);
		fmt_value(c, sizeof(c), ratio(r));
		if (isnan(r->iovm))
			snprintf(a, sizeof(a), "%s", r->unbuilt[0] ? "-" : "failed");
		if (ps == PEER_FAILED)
			snprintf(b, sizeof(b), "failed");
		else if (ps == PEER_NOT_BUILT)
			snprintf(b, sizeof(b), "not built");
		else if (ps == PEER_NOT_RUN)
			snprintf(b, sizeof(b), "not run");
		if (r->unbuilt[0])
			snprintf(t, sizeof(t), "%s", r->unbuilt);
		else
			target_text(r, t, sizeof(t));
		fprintf(f, "%-44s %-10s %10s  %-34s %10s %8s  %s\n", r->name, r->unit, a, r->peer, b, c, t);
	}
	if (nr_notes)
		fprintf(f, "\n");
	for (unsigned i = 0; i < nr_notes; i++)
		fprintf(f, "note: %s\n", notes[i]);
	fprintf(f, "\nratio = iovm / peer: for times (ns, us, ms) and counts below 1 is better for iovm;"
		   " for rates (/s), speed-ups (x) and shares (%%) above 1 is.\n"
		   "A target is met, MISSED, or unchecked (a figure it needs is missing).\n");
}

/* The results as a JSON array of objects, one per row, through tools/json.c's writer. */
void bench_write_json(FILE *f)
{
	struct json j;

	json_init(&j, f);
	json_begin(&j, NULL, '[');
	for (unsigned i = 0; i < nr_results; i++) {
		const struct result *r = &results[i];
		enum peer_state ps = peer_state(r);
		int met = target_met(r);
		char why[48];

		json_begin(&j, NULL, '{');
		json_str(&j, "name", r->name);
		json_str(&j, "unit", r->unit);
		json_double(&j, "iovm", r->iovm);
		if (ps == PEER_MEASURED || ps == PEER_FAILED)
			json_str(&j, "peer", r->peer);
		else
			json_null(&j, "peer");
		json_str(&j, "peer_status", peer_state_name[ps]);
		if (ps != PEER_MEASURED && ps != PEER_FAILED && peer_reason(r, why, sizeof(why))[0])
			json_str(&j, "peer_note", why);
		json_double(&j, "peer_value", r->peer_value);
		json_double(&j, "ratio", ratio(r));
		json_double(&j, "lead", lead(r));
		json_str(&j, "better", higher_better(r->unit) ? "higher" : "lower");
		if (met == -2)
			json_null(&j, "target");
		else
			json_str(&j, "target", r->target);
		if (met == 0 || met == 1)
			json_bool(&j, "met", met == 1);
		else
			json_null(&j, "met");
		if (r->unbuilt[0])
			json_str(&j, "status", r->unbuilt);
		json_end(&j, '}');
	}
	json_end(&j, ']');
}

/* Whether @fd is a regular file: only such an output is removed when it fails (a device or a pipe is not ours). */
static bool regular_fd(int fd)
{
	struct stat st;

	return !fstat(fd, &st) && S_ISREG(st.st_mode);
}

/* All of @len bytes to @fd: 0, or -errno (a full disk: -ENOSPC). */
static int write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int bench_write_json_file(const char *path)
{
	FILE *f = fopen(path, "w");
	bool regular;
	int err = 0;

	if (!f)
		return -errno;
	regular = regular_fd(fileno(f));
	bench_write_json(f);
	/* A full disk shows at the flush, with its errno. */
	if (fflush(f))
		err = -errno;
	else if (ferror(f))
		err = -EIO;
	if (fclose(f) && !err)
		err = -errno;
	if (err) {
		/* Half written: removed, if it is a file of its own (a device or a pipe is left alone). */
		if (regular)
			unlink(path);
		return err;
	}
	fprintf(stderr, "[bench] JSON written to %s\n", path);
	return 0;
}

static bool output_failed;

void bench_output_fail(const char *what, int err)
{
	fprintf(stderr, "[bench] %s: %s\n", what,
		err == -ENOPKG ? "gnuplot is not installed (apt-get install gnuplot-nox)" : strerror(-err));
	output_failed = true;
}

bool bench_output_failed(void)
{
	return output_failed;
}

int bench_gnuplot_open(const char *path, struct bench_gnuplot *g)
{
	int in[2], img[2], err;

	g->script = NULL;
	/*
	 * A gnuplot that is not installed exits at once, closing the script's
	 * pipe: writing the script then raises SIGPIPE, which would kill the
	 * run (its exit status, 127, is what says so). Blocked until the close.
	 */
	{
		sigset_t pipe_only;

		sigemptyset(&pipe_only);
		sigaddset(&pipe_only, SIGPIPE);
		pthread_sigmask(SIG_BLOCK, &pipe_only, &g->mask);
	}
	g->out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (g->out < 0) {
		err = -errno;
		pthread_sigmask(SIG_SETMASK, &g->mask, NULL);
		return err;
	}
	g->regular = regular_fd(g->out);
	if (pipe2(in, O_CLOEXEC)) {
		err = -errno;
		goto close_out;
	}
	if (pipe2(img, O_CLOEXEC)) {
		err = -errno;
		goto close_in;
	}
	g->pid = fork();
	if (g->pid == 0) {
		/* The child: the script on stdin, the image on stdout, nothing else open, the old mask. */
		pthread_sigmask(SIG_SETMASK, &g->mask, NULL);
		if (dup2(in[0], 0) < 0 || dup2(img[1], 1) < 0)
			_exit(126);
		execlp("gnuplot", "gnuplot", (char *)NULL);
		_exit(errno == ENOENT ? 127 : 126);
	}
	err = -errno;
	close(in[0]);
	close(img[1]);
	g->image = img[0];
	if (g->pid < 0) {
		close(in[1]);
		close(img[0]);
		goto close_out;
	}
	g->script = fdopen(in[1], "w");
	if (!g->script) {
		err = -errno;
		close(in[1]);
		bench_gnuplot_close(g, path);
		return err;
	}
	return 0;

close_in:
	close(in[0]);
	close(in[1]);
close_out:
	close(g->out);
	if (g->regular)
		unlink(path);
	pthread_sigmask(SIG_SETMASK, &g->mask, NULL);
	return err;
}

int bench_gnuplot_close(struct bench_gnuplot *g, const char *path)
{
	char buf[65536];
	int st, err = 0;
	ssize_t n;

	/*
	 * The script is a few lines: all of it is in the pipe before gnuplot
	 * writes a byte, so writing it all first cannot wait on its output.
	 */
	if (g->script)
		fclose(g->script);
	/* The SIGPIPE of a gnuplot gone, if any, taken: its exit status says what happened. */
	{
		const struct timespec now = { 0, 0 };
		sigset_t pipe_only;

		sigemptyset(&pipe_only);
		sigaddset(&pipe_only, SIGPIPE);
		while (sigtimedwait(&pipe_only, NULL, &now) == SIGPIPE)
			;
		pthread_sigmask(SIG_SETMASK, &g->mask, NULL);
	}
	/* The image, copied here: a write that fails (a full disk) is seen, where gnuplot's would not be. */
	while ((n = read(g->image, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = err ? err : -errno;
			break;
		}
		if (!err)
			err = write_all(g->out, buf, (size_t)n);
	}
	close(g->image);
	while (waitpid(g->pid, &st, 0) < 0)
		if (errno != EINTR) {
			err = err ? err : -errno;
			break;
		}
	if (!(WIFEXITED(st) && !WEXITSTATUS(st)))
		err = WIFEXITED(st) && WEXITSTATUS(st) == 127 ? -ENOPKG : -EIO;
	if (close(g->out) && !err)
		err = -errno;
	if (err && g->regular)
		unlink(path);
	return err;
}

/* ---- the chart ---- */

/*
 * Text for gnuplot's command language: single-quoted, where only '' is
 * special and no substitution (`command`, @macro) happens; control
 * characters become spaces.
 */
static void gp_quote(FILE *f, const char *s)
{
	fputc('\'', f);
	for (; *s; s++) {
		if (*s == '\'')
			fputs("''", f);
		else if ((unsigned char)*s < 0x20)
			fputc(' ', f);
		else
			fputc(*s, f);
	}
	fputc('\'', f);
}

/* Text for a data file: double-quoted, where gnuplot reads \n as a line break; no quote or backslash of ours. */
static void gp_data_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '\n')
			fputs("\\n", f);
		else if (*s == '"')
			fputc('\'', f);
		else if (*s == '\\' || (unsigned char)*s < 0x20)
			fputc(' ', f);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

/* How a row shows on the ratio panel: a bar, or a word where the bar would be. */
enum plot_class { PC_LEADS, PC_TRAILS, PC_IOVM_FAILED, PC_PEER_FAILED, PC_PEER_NOT_RUN, PC_PEER_NOT_BUILT, NR_PC };

static const struct {
	const char *colour;
	const char *legend;
} plot_classes[NR_PC] = {
	[PC_LEADS] = { "#2a7ab9", "iovm leads (right of 1x)" },
	[PC_TRAILS] = { "#e07b24", "iovm trails (left of 1x)" },
	[PC_IOVM_FAILED] = { "#b03030", "iovm failed" },
	[PC_PEER_FAILED] = { "#b8860b", "peer failed" },
	[PC_PEER_NOT_RUN] = { "#7d4fa0", "peer not run" },
	[PC_PEER_NOT_BUILT] = { "#808080", "peer not built" },
};

struct plot_row {
	const struct result *r;
	enum plot_class cls;
	double lead;   /* lead(), or NAN */
	double target; /* the lead the target asks for at least, or NAN */
	int met;
};

/*
 * The lead that @r's target asks for, on the chart's axis: the clause that
 * asks most of those that bound the lead from below. A clause on iovm's
 * own figure moves with the peer's figure (20 ns against a peer's 40 ns is
 * a lead of 2); a clause that bounds it from above, or "iovm succeeds",
 * has no place on the axis. NAN when none has.
 */
static double target_lead(const struct result *r)
{
	struct clause c[MAX_CLAUSES];
	int n = parse_target(r, c);
	bool hb = higher_better(r->unit);
	double t = NAN;

	for (int i = 0; i < n; i++) {
		double v;

		if (c[i].what == C_SUCCEEDS || c[i].x <= 0)
			continue;
		/* A bound from below on the lead: at most, where lower is better; at least, where higher is. */
		if (c[i].upper == hb)
			continue;
		if (c[i].what == C_RATIO)
			v = hb ? c[i].x : 1 / c[i].x;
		else if (isnan(r->peer_value) || r->peer_value <= 0)
			continue;
		else
			v = hb ? c[i].x / r->peer_value : r->peer_value / c[i].x;
		if (isnan(t) || v > t)
			t = v;
	}
	return t;
}

static int cmp_rows(const void *a, const void *b)
{
	const struct plot_row *x = a, *y = b;

	/* Bars first, the largest lead on top; then the rows without a bar, by why. */
	if (x->cls != y->cls && (x->cls > PC_TRAILS || y->cls > PC_TRAILS))
		return x->cls < y->cls ? -1 : 1;
	if (x->cls <= PC_TRAILS)
		return x->lead > y->lead ? -1 : x->lead < y->lead;
	return 0;
}

/* The ratio panel's rows, sorted, into @rows; the rest (no peer at all, or not built yet) are left for the list. */
static unsigned plot_rows(struct plot_row *rows)
{
	unsigned n = 0;

	for (unsigned i = 0; i < nr_results; i++) {
		const struct result *r = &results[i];
		enum peer_state ps = peer_state(r);
		struct plot_row *p = &rows[n];

		if (r->unbuilt[0] || ps == PEER_NONE)
			continue;
		/* Both measured, and still no lead: a figure below zero (lead()), nothing to draw. */
		if (ps == PEER_MEASURED && !isnan(r->iovm) && isnan(lead(r)))
			continue;
		p->r = r;
		p->lead = lead(r);
		p->target = target_lead(r);
		p->met = target_met(r);
		if (ps == PEER_NOT_BUILT)
			p->cls = PC_PEER_NOT_BUILT;
		else if (ps == PEER_NOT_RUN)
			p->cls = PC_PEER_NOT_RUN;
		else if (isnan(r->iovm))
			p->cls = PC_IOVM_FAILED;
		else if (ps == PEER_FAILED)
			p->cls = PC_PEER_FAILED;
		else
			p->cls = p->lead >= 1 ? PC_LEADS : PC_TRAILS;
		/* A target on the lead axis only where there is a lead. */
		if (p->cls > PC_TRAILS)
			p->target = NAN;
		n++;
	}
	/* A stable order among equals: the benchmark's. */
	for (unsigned i = 1; i < n; i++)
		for (unsigned j = i; j > 0 && cmp_rows(&rows[j - 1], &rows[j]) > 0; j--) {
			struct plot_row t = rows[j];

			rows[j] = rows[j - 1];
			rows[j - 1] = t;
		}
	return n;
}

/* "38x", "3.84x", "0.58x", "0.0036x": two decimals, two significant figures below 0.1. */
static void fmt_lead(char *buf, size_t len, double v)
{
	if (v >= 10)
		snprintf(buf, len, "%.0fx", v);
	else if (v >= 0.1)
		snprintf(buf, len, "%.2fx", v);
	else
		snprintf(buf, len, "%.2gx", v);
}

/*
 * A row's figures, into @fig ("14.3 vs 55 ns/pair", or with no peer "10.7
 * ns (why)"), and its target, into @tgt ("target ratio <= 0.33: met", or
 * "" without one).
 */
static void row_detail(const struct result *r, bool with_peer, char *fig, size_t flen, char *tgt, size_t tlen)
{
	char a[32], b[32], why[48];
	int met = target_met(r);
	enum peer_state ps = peer_state(r);

	fmt_value(a, sizeof(a), r->iovm);
	fmt_value(b, sizeof(b), r->peer_value);
	if (isnan(r->iovm))
		snprintf(a, sizeof(a), "%s", r->unbuilt[0] ? r->unbuilt : "failed");
	peer_reason(r, why, sizeof(why));
	if (!with_peer)
		snprintf(fig, flen, "%s%s%s%s%s%s", a, isnan(r->iovm) ? "" : " ", isnan(r->iovm) ? "" : r->unit,
			 why[0] ? " (" : "", why, why[0] ? ")" : "");
	else if (ps == PEER_MEASURED && !isnan(r->iovm))
		snprintf(fig, flen, "iovm %s vs peer %s %s", a, b, r->unit);
	else if (ps == PEER_MEASURED)
		snprintf(fig, flen, "iovm failed, peer %s %s", b, r->unit);
	else
		snprintf(fig, flen, "iovm %s%s%s, peer %s", a, isnan(r->iovm) ? "" : " ", isnan(r->iovm) ? "" : r->unit,
			 peer_state_name[ps]);
	if (met == -2) {
		tgt[0] = '\0';
	} else {
		char t[128];

		snprintf(tgt, tlen, "target %s", target_text(r, t, sizeof(t)));
	}
}

/* The x range: decades around every lead, target and 1, at most 1e-4 to 1e4 (bars beyond stop at the edge). */
static void plot_range(const struct plot_row *rows, unsigned n, double *lo, double *hi)
{
	double a = 1, b = 1;

	for (unsigned i = 0; i < n; i++) {
		double v[2] = { rows[i].lead, rows[i].target };

		for (int k = 0; k < 2; k++)
			if (isfinite(v[k]) && v[k] > 0) {
				a = fmin(a, v[k]);
				b = fmax(b, v[k]);
			}
	}
	*lo = fmax(1e-4, pow(10, floor(log10(a / 1.5))));
	*hi = fmin(1e4, pow(10, ceil(log10(b * 3))));
	if (*lo > 0.1)
		*lo = 0.1;
	if (*hi < 10)
		*hi = 10;
}

/* The rows not on the ratio panel: iovm alone (no peer), or not built yet. */
static unsigned plot_list_rows(void)
{
	unsigned n = 0;

	for (unsigned i = 0; i < nr_results; i++)
		n += results[i].unbuilt[0] || peer_state(&results[i]) == PEER_NONE;
	return n;
}

static const struct bench_panels *own_panels;

void bench_plot_panels(const struct bench_panels *p)
{
	own_panels = p;
}

int bench_plot(const char *svg, const char *title)
{
	char data[] = "/tmp/iovm-bench-XXXXXX", fig[128], tgt[96], line[300];
	static struct plot_row rows[MAX_RESULTS];
	unsigned n = plot_rows(rows), nl = plot_list_rows(), width = 1400, height, ratio_h, list_h, head = 40;
	bool present[NR_PC] = { false }, markers[3] = { false }; /* the targets drawn: unchecked, missed, met */
	struct bench_gnuplot g;
	double lo, hi, y0;
	FILE *f, *gp;
	int fd, ret;

	if (!n && !nl && !own_panels)
		return -ENODATA;
	fd = mkstemp(data);
	f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f) {
		ret = -errno;
		if (fd >= 0) {
			close(fd);
			unlink(data);
		}
		return ret;
	}
	plot_range(rows, n, &lo, &hi);
	/*
	 * One line a row, y counting down from the top: 1 y, 2-3 the bar's
	 * ends, 4 the class, 5 where its label goes, 6 the target's lead, 7
	 * whether met, 8 the row's name and peer, 9 the label, 10 whether the
	 * label goes over the bar.
	 */
	for (unsigned i = 0; i < n; i++) {
		const struct plot_row *p = &rows[i];
		double y = n - 1 - i, l = fmin(hi, fmax(lo, p->lead)), t = p->target;
		char name[160], label[96], why[48];

		present[p->cls] = true;
		if (p->cls <= PC_TRAILS && (isinf(p->lead) || p->lead == 0)) {
			/* A figure of 0: a lead without end, the bar to the axis' edge. */
			snprintf(label, sizeof(label), "%s: a figure is 0", p->lead ? "infinite" : "0x");
		} else if (p->cls <= PC_TRAILS) {
			fmt_lead(label, sizeof(label), p->lead);
			if (p->lead > hi || p->lead < lo) /* beyond the axis: the bar stops at its edge */
				snprintf(label + strlen(label), sizeof(label) - strlen(label), " (off the axis)");
		} else {
			snprintf(label, sizeof(label), "%s", plot_classes[p->cls].legend);
		}
		/* The row's name; under it its peer, or why there is none. */
		if (p->cls == PC_PEER_NOT_BUILT || p->cls == PC_PEER_NOT_RUN)
			snprintf(name, sizeof(name), "%s\n(%s)", p->r->name, peer_reason(p->r, why, sizeof(why)));
		else
			snprintf(name, sizeof(name), "%s\nvs %s", p->r->name, p->r->peer);
		fprintf(f, "%g ", y);
		if (p->cls <= PC_TRAILS)
			fprintf(f, "%g %g ", fmin(1, l), fmax(1, l));
		else
			fprintf(f, "NaN NaN ");
		/* The label at the bar's end; at 1x for a bar that trails, or, in white, over one beyond the axis. */
		fprintf(f, "%d %g ", p->cls, p->cls == PC_LEADS && p->lead <= hi ? l : 1);
		if (isfinite(t))
			markers[p->met + 1] = true;
		if (isfinite(t))
			fprintf(f, "%g ", fmin(hi, fmax(lo, t)));
		else
			fprintf(f, "NaN ");
		fprintf(f, "%d ", p->met);
		gp_data_str(f, name);
		fputc(' ', f);
		gp_data_str(f, label);
		fprintf(f, " %d\n", p->cls == PC_LEADS && p->lead > hi);
	}
	if (fflush(f) || ferror(f)) {
		ret = errno ? -errno : -EIO;
		fclose(f);
		unlink(data);
		return ret;
	}
	fclose(f);

	ret = bench_gnuplot_open(svg, &g);
	if (ret) {
		unlink(data);
		return ret;
	}
	gp = g.script;
	/* Heights in pixels: the title, 44 a row and 150 for the axis and key, 18 a line of the list. */
	ratio_h = n ? 40 + 44 * n + 150 : 0;
	list_h = nl ? 40 + 18 * nl : 0;
	height = head + ratio_h + list_h + (own_panels ? own_panels->height : 0);
	/* SVG by default; PNG when the name says so. */
	fprintf(gp, "set terminal %s size %u,%u font 'sans,10' background rgb 'white'\n",
		strlen(svg) > 4 && !strcmp(svg + strlen(svg) - 4, ".png") ? "pngcairo" : "svg", width, height);
	fprintf(gp, "set termoption noenhanced\nset multiplot title ");
	gp_quote(gp, title);
	fprintf(gp, " font 'sans,12'\n");
#define SY(px) (1 - (double)(px) / height) /* a height from the top, in pixels, as a screen coordinate */
	y0 = head;
	if (n) {
		fprintf(gp,
			"set lmargin at screen 0.25\nset rmargin at screen 0.68\n"
			"set tmargin at screen %g\nset bmargin at screen %g\n"
			"set title 'Each row: iovm against the peer measured in the same run (sorted by lead)' font 'sans,10'\n"
			"set logscale x\nset xrange [%g:%g]\nset yrange [-0.6:%g]\n"
			"set format x '%%gx'\nset mxtics 10\nset grid xtics lc rgb '#dddddd'\n"
			"set xlabel 'lead of iovm = peer''s figure / iovm''s, for rates and shares iovm''s / peer''s: "
			"right of 1x iovm leads, left of it iovm trails'\n"
			"set ytics scale 0 font 'sans,9'\n"
			"set key at screen 0.5, screen %g center top horizontal maxrows 2 samplen 1.5 font 'sans,9'\n"
			"set arrow 1 from 1, graph 0 to 1, graph 1 nohead lw 2 lc rgb 'black' front\n"
			"set style fill solid 0.85 noborder\n",
			SY(y0 + 40), SY(y0 + ratio_h - 110), lo, hi, n - 0.4, SY(y0 + ratio_h - 50));
		/* Between the bars and the rows without one, a line. */
		for (unsigned i = 0; i + 1 < n; i++)
			if (rows[i].cls <= PC_TRAILS && rows[i + 1].cls > PC_TRAILS)
				fprintf(gp,
					"set arrow 2 from graph 0, first %g to graph 1, first %g nohead dt 2 lc rgb '#999999'\n",
					n - 1.5 - i, n - 1.5 - i);
		/* Each row's figures and target, right of the panel. */
		for (unsigned i = 0; i < n; i++) {
			row_detail(rows[i].r, true, fig, sizeof(fig), tgt, sizeof(tgt));
			fprintf(gp, "set label %u ", 10 + 2 * i);
			gp_quote(gp, fig);
			fprintf(gp, " at graph 1.01, first %u left font 'sans,8' offset 0,%s tc rgb '#333333'\n", n - 1 - i,
				tgt[0] ? "0.55" : "0");
			if (!tgt[0])
				continue;
			fprintf(gp, "set label %u ", 11 + 2 * i);
			gp_quote(gp, tgt);
			fprintf(gp, " at graph 1.01, first %u left font 'sans,8' offset 0,-0.55 tc rgb '%s'\n", n - 1 - i,
				rows[i].met == 0 ? "#c0392b" : rows[i].met == 1 ? "#1e7b34" : "#666666");
		}
		fprintf(gp, "plot '%s' using (1):1:ytic(8) with points ps 0 notitle", data);
		for (int c = PC_LEADS; c <= PC_TRAILS; c++)
			fprintf(gp,
				", '' using (($4)==%d ? sqrt(($2)*($3)) : NaN):1:2:3:(($1)-0.32):(($1)+0.32) "
				"with boxxyerror lc rgb '%s' %s '%s'",
				c, plot_classes[c].colour, present[c] ? "title" : "notitle", plot_classes[c].legend);
		fprintf(gp,
			", '' using (($4)<=%d && ($10)==0 ? ($5) : NaN):1:(stringcolumn(9)) with labels left offset 0.6,0 "
			"font 'sans,9' notitle"
			", '' using (($10)==1 ? ($5) : NaN):1:(stringcolumn(9)) with labels left offset 0.6,0 "
			"font 'sans,9' tc rgb 'white' notitle",
			PC_TRAILS);
		/* The word where a bar would be: beside 1x, on the side with more room. */
		for (int c = PC_IOVM_FAILED; c < NR_PC; c++)
			if (present[c])
				fprintf(gp,
					", '' using (($4)==%d ? 1 : NaN):1:(stringcolumn(9)) with labels %s offset %s,0 "
					"font 'sans,9' tc rgb '%s' notitle, NaN with boxes lc rgb '%s' title '%s'",
					c, lo * hi < 1 ? "right" : "left", lo * hi < 1 ? "-0.6" : "0.6", plot_classes[c].colour,
					plot_classes[c].colour, plot_classes[c].legend);
		/* The targets: a tick across the row where the lead would meet it. */
		for (int m = 1; m >= -1; m--)
			if (markers[m + 1])
				fprintf(gp,
					", '' using (($7)==%d ? ($6) : NaN):(($1)-0.42):(0):(0.84) with vectors nohead lw 3 "
					"lc rgb '%s' title 'target (%s)'",
					m, m == 1 ? "#1e7b34" : m == 0 ? "#c0392b" : "#888888", met_word(m));
		fprintf(gp, "\n");
		fprintf(gp, "unset arrow\nunset label\nunset logscale x\nunset title\nunset xlabel\nunset key\nunset grid\n");
		y0 += ratio_h;
	}
	if (nl) {
		unsigned k = 0;

		/* The list: text only, on an empty plot. */
		fprintf(gp,
			"set lmargin at screen 0.02\nset rmargin at screen 0.98\n"
			"set tmargin at screen %g\nset bmargin at screen %g\n"
			"unset border\nunset xtics\nunset ytics\nunset x2tics\nunset y2tics\n"
			"set xrange [0:1]\nset yrange [0:1]\nset label 1 ",
			SY(y0), SY(y0 + list_h));
		gp_quote(gp, n ? "Rows with no peer to compare against (not on the lead axis): iovm's own figures"
			       : "No row has a peer to compare against: iovm's own figures");
		fprintf(gp, " at screen 0.02, screen %g left font 'sans,10'\n", SY(y0 + 20));
		for (unsigned i = 0; i < nr_results; i++) {
			const struct result *r = &results[i];
			int met = target_met(r);

			if (!r->unbuilt[0] && peer_state(r) != PEER_NONE)
				continue;
			row_detail(r, false, fig, sizeof(fig), tgt, sizeof(tgt));
			snprintf(line, sizeof(line), "%.63s: %.127s%s%.95s", r->name, fig, tgt[0] ? "; " : "", tgt);
			fprintf(gp, "set label %u ", 2 + k);
			gp_quote(gp, line);
			fprintf(gp, " at screen 0.03, screen %g left font 'sans,9' tc rgb '%s'\n", SY(y0 + 42 + 18 * k),
				met == 0 ? "#c0392b" : r->unbuilt[0] ? "#808080" : "#333333");
			k++;
		}
		fprintf(gp, "plot NaN notitle\n");
		y0 += list_h;
	}
	if (own_panels) {
		/* A clean slate for them: the settings above are the common panels' own. */
		fprintf(gp, "reset\nset termoption noenhanced\n");
		own_panels->draw(gp, SY(y0), SY(y0 + own_panels->height), own_panels->arg);
	}
#undef SY
	fprintf(gp, "unset multiplot\n");
	ret = bench_gnuplot_close(&g, svg);
	unlink(data);
	if (!ret)
		fprintf(stderr, "[bench] chart written to %s\n", svg);
	return ret;
}

const char *bench_size(uint64_t bytes, char *buf, unsigned len)
{
	if (bytes >= (1u << 30) && !(bytes % (1u << 30)))
		snprintf(buf, len, "%llu GiB", (unsigned long long)(bytes >> 30));
	else if (bytes >= (1u << 20) && !(bytes % (1u << 20)))
		snprintf(buf, len, "%llu MiB", (unsigned long long)(bytes >> 20));
	else
		snprintf(buf, len, "%llu KiB", (unsigned long long)(bytes >> 10));
	return buf;
}

void bench_report(const struct bench_args *args, const char *title, unsigned reps)
{
	char chart_title[128];
	int ret;

	bench_print_table(stdout, title, reps);
	if (args->json) {
		FILE *f = fdopen(dup(args->json_fd), "w");

		if (f) {
			int err = 0;

			bench_write_json(f);
			/* A full device or a closed pipe shows at the flush, with its errno. */
			if (fflush(f))
				err = errno ? -errno : -EIO;
			else if (ferror(f))
				err = -EIO;
			if (fclose(f) && !err)
				err = -errno;
			if (err)
				bench_output_fail("--json: cannot write the JSON", err);
		} else {
			bench_output_fail("--json", -errno);
		}
	}
	if (args->json_out && (ret = bench_write_json_file(args->json_out)))
		bench_output_fail(args->json_out, ret);
	if (args->plot) {
		snprintf(chart_title, sizeof(chart_title), "%s: iovm beside its peers", title);
		ret = bench_plot(args->plot, chart_title);
		if (ret)
			bench_output_fail(args->plot, ret);
	}
}

/* ---- hugepages for the run ---- */

/*
 * The pool is the machine's: other processes hold its pages, and others may
 * resize it while a benchmark runs. So a run adds what it needs to what the
 * pool holds, remembers how many it added, and at exit takes back at most
 * those, and only as many as are free then; it never sets the pool to a
 * remembered size. scripts/hugepages.sh does the same, under the same lock
 * (flock), so that two of iovm's resizes never interleave their
 * read-modify-write of nr_hugepages.
 */
static long hp_added;         /* pages this run added to the 2 MiB pool, not yet taken back */
static long hp_override = -1; /* --hugepages N: the run's own figure instead of each benchmark's */
static char hp_nr[256], hp_free[256], hp_resv[256];

/*
 * The pool's files: /sys/kernel/mm/hugepages, or IOVM_HUGEPAGES_SYSFS (a
 * pretend one, for the tests, which then need no root). False when neither
 * is to be written.
 */
static bool hp_paths(void)
{
	const char *dir = getenv("IOVM_HUGEPAGES_SYSFS");

	if (!dir) {
		if (geteuid() != 0)
			return false;
		dir = "/sys/kernel/mm/hugepages";
	}
	snprintf(hp_nr, sizeof(hp_nr), "%s/hugepages-2048kB/nr_hugepages", dir);
	snprintf(hp_free, sizeof(hp_free), "%s/hugepages-2048kB/free_hugepages", dir);
	snprintf(hp_resv, sizeof(hp_resv), "%s/hugepages-2048kB/resv_hugepages", dir);
	return true;
}

void bench_hugepages_set(long nr)
{
	hp_override = nr;
}

/* Plain system calls: the release also runs from a signal handler. */
static long read_long(const char *path)
{
	char buf[32];
	long v = -1;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n > 0) {
		buf[n] = '\0';
		v = 0;
		for (char *c = buf; *c >= '0' && *c <= '9'; c++)
			v = v * 10 + (*c - '0');
	}
	return v;
}

static void write_long(const char *path, long v)
{
	char buf[32];
	int fd = open(path, O_WRONLY | O_CLOEXEC), i = (int)sizeof(buf);

	if (fd < 0)
		return;
	buf[--i] = '\n';
	do {
		buf[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v && i > 0);
	if (write(fd, buf + i, sizeof(buf) - (size_t)i) < 0) {
		/* the kernel refused: the pool stays as it is */
	}
	close(fd);
}

/* The lock scripts/hugepages.sh takes too; -1 when there is none to be had (then unlocked). */
static int hp_lock(void)
{
	const char *path = getenv("IOVM_HUGEPAGES_LOCK");
	int fd;

	if (!path)
		path = access("/run/lock", W_OK) == 0 ? "/run/lock/iovm-hugepages.lock" : "/tmp/iovm-hugepages.lock";
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd >= 0)
		flock(fd, LOCK_EX);
	return fd;
}

static void hp_unlock(int fd)
{
	if (fd >= 0)
		close(fd); /* drops the flock */
}

/* Pages an allocation could have now: free, less those reserved by untouched mappings. */
static long hp_available(void)
{
	long free = read_long(hp_free), resv = read_long(hp_resv);

	if (free < 0)
		return -1;
	if (resv < 0)
		resv = 0; /* a kernel without the file */
	return free > resv ? free - resv : 0;
}

static void hugepages_give_back(void)
{
	long now, avail, take;
	int lock;

	if (hp_added <= 0)
		return;
	lock = hp_lock();
	now = read_long(hp_nr);
	avail = hp_available();
	take = hp_added;
	if (take > avail)
		take = avail; /* the rest is in use by others: theirs now */
	if (take > now)
		take = now;
	if (take > 0)
		write_long(hp_nr, now - take);
	hp_added = 0;
	hp_unlock(lock);
}

static void on_signal(int sig)
{
	hugepages_give_back();
	signal(sig, SIG_DFL);
	raise(sig);
}

void bench_hugepages_reserve(unsigned nr)
{
	long before, after, avail, want;
	static bool hooked;
	int lock;

	if (hp_override >= 0)
		nr = (unsigned)hp_override;
	if (!nr || !hp_paths())
		return;
	lock = hp_lock();
	before = read_long(hp_nr);
	avail = hp_available();
	if (before < 0 || avail < 0 || avail >= (long)nr) {
		hp_unlock(lock);
		return;
	}
	want = (long)nr - avail;
	write_long(hp_nr, before + want);
	after = read_long(hp_nr);
	hp_unlock(lock);
	if (after > before) {
		hp_added += after - before < want ? after - before : want;
		if (!hooked) {
			hooked = true;
			atexit(hugepages_give_back);
			signal(SIGINT, on_signal);
			signal(SIGTERM, on_signal);
		}
	}
	bench_note("hugepages: %ld added to the 2 MiB pool (%ld -> %ld) for this run, taken back at exit as far as free",
		   after > before ? after - before : 0, before, after);
}
