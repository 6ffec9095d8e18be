/* SPDX-License-Identifier: MIT */
/*
 * bench.c - results, their table, JSON and chart; hugepages for the run.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define MAX_RESULTS 64
#define MAX_NOTES 32

struct result {
	char name[64];
	char unit[16];
	double iovm;
	char peer[48];
	double peer_value;
	char target[40];
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
	snprintf(r->target, sizeof(r->target), "%s", target ? target : "");
	r->iovm = iovm;
	r->peer_value = peer_value;
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
	if (isnan(r->iovm) || isnan(r->peer_value) || r->peer_value == 0)
		return NAN;
	return r->iovm / r->peer_value;
}

static void fmt_value(char *buf, size_t len, double v)
{
	if (isnan(v))
		snprintf(buf, len, "-");
	else if (v >= 100)
		snprintf(buf, len, "%.0f", v);
	else if (v >= 1)
		snprintf(buf, len, "%.2f", v);
	else
		snprintf(buf, len, "%.3f", v);
}

void bench_print_table(FILE *f, const char *title, unsigned reps)
{
	fprintf(f, "\n%s: median of %u runs each, peers measured in the same run\n\n", title, reps);
	fprintf(f, "%-44s %-10s %10s  %-34s %10s %8s  %s\n", "measure", "unit", "iovm", "peer",
		"peer", "ratio", "target");
	for (unsigned i = 0; i < nr_results; i++) {
		const struct result *r = &results[i];
		char a[32], b[32], c[32];

		fmt_value(a, sizeof(a), r->iovm);
		fmt_value(b, sizeof(b), r->peer_value);
		fmt_value(c, sizeof(c), ratio(r));
		if (isnan(r->iovm))
			snprintf(a, sizeof(a), "failed");
		if (isnan(r->peer_value) && strncmp(r->peer, "none", 4))
			snprintf(b, sizeof(b), "failed");
		fprintf(f, "%-44s %-10s %10s  %-34s %10s %8s  %s\n", r->name, r->unit, a, r->peer, b, c,
			r->target);
	}
	if (nr_notes)
		fprintf(f, "\n");
	for (unsigned i = 0; i < nr_notes; i++)
		fprintf(f, "note: %s\n", notes[i]);
	fprintf(f, "\nratio = iovm / peer: below 1, iovm is faster.\n");
}

static void json_num(FILE *f, double v)
{
	if (isnan(v))
		fprintf(f, "null");
	else
		fprintf(f, "%.6g", v);
}

void bench_write_json(FILE *f)
{
	fprintf(f, "[\n");
	for (unsigned i = 0; i < nr_results; i++) {
		const struct result *r = &results[i];

		fprintf(f, "  {\"name\": \"%s\", \"unit\": \"%s\", \"iovm\": ", r->name, r->unit);
		json_num(f, r->iovm);
		fprintf(f, ", \"peer\": \"%s\", \"peer_value\": ", r->peer);
		json_num(f, r->peer_value);
		fprintf(f, ", \"ratio\": ");
		json_num(f, ratio(r));
		fprintf(f, "}%s\n", i + 1 < nr_results ? "," : "");
	}
	fprintf(f, "]\n");
}

int bench_write_json_file(const char *path)
{
	FILE *f = fopen(path, "w");

	if (!f) {
		fprintf(stderr, "bench: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	bench_write_json(f);
	fclose(f);
	fprintf(stderr, "[bench] JSON written to %s\n", path);
	return 0;
}

/* Each row in nanoseconds, so that one log axis holds them all. */
static double to_ns(const char *unit, double v)
{
	if (!strncmp(unit, "us", 2))
		return v * 1e3;
	if (!strncmp(unit, "ms", 2))
		return v * 1e6;
	return v;
}

int bench_plot(const char *svg, const char *title)
{
	char dat[] = "/tmp/iovm-bench-XXXXXX";
	FILE *f, *gp;
	int fd;

	if (system("command -v gnuplot >/dev/null 2>&1")) {
		fprintf(stderr, "[bench] gnuplot is not installed: no chart (apt-get install gnuplot-nox)\n");
		return -ENOENT;
	}
	fd = mkstemp(dat);
	if (fd < 0 || !(f = fdopen(fd, "w")))
		return -errno;
	for (unsigned i = 0; i < nr_results; i++) {
		const struct result *r = &results[i];

		fprintf(f, "\"%s\\n(%s)\" %g %g\n", r->name, r->peer,
			isnan(r->iovm) ? 0 : to_ns(r->unit, r->iovm),
			isnan(r->peer_value) ? 0 : to_ns(r->unit, r->peer_value));
	}
	fclose(f);
	gp = popen("gnuplot", "w");
	if (!gp) {
		unlink(dat);
		return -errno;
	}
	/* SVG by default; PNG when the name says so. */
	fprintf(gp, "%s\n",
		strlen(svg) > 4 && !strcmp(svg + strlen(svg) - 4, ".png")
			? "set terminal pngcairo size 1200,700 font 'sans,10' background rgb 'white'"
			: "set terminal svg size 1200,700 font 'sans,11' background rgb 'white'");
	fprintf(gp,
		"set output '%s'\n"
		"set title '%s'\n"
		"set style data histograms\n"
		"set style histogram clustered gap 1\n"
		"set style fill solid 0.8 border -1\n"
		"set logscale y\n"
		"set ylabel 'time, ns (log scale; a missing bar did not succeed)'\n"
		"set xtics rotate by -25 font 'sans,9'\n"
		"set key top left\n"
		"set grid ytics\n"
		"plot '%s' using 2:xtic(1) title 'iovm' lc rgb '#2a7ab9', '' using 3 title 'peer' lc rgb '#d9822b'\n",
		svg, title, dat);
	pclose(gp);
	unlink(dat);
	fprintf(stderr, "[bench] chart written to %s\n", svg);
	return 0;
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

/* ---- hugepages for the run ---- */

#define NR_HUGEPAGES_2M "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"
#define FREE_HUGEPAGES_2M "/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages"

static long saved_nr = -1;

static long read_long(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static void write_long(const char *path, long v)
{
	FILE *f = fopen(path, "w");

	if (f) {
		fprintf(f, "%ld\n", v);
		fclose(f);
	}
}

static void hugepages_restore(void)
{
	if (saved_nr >= 0)
		write_long(NR_HUGEPAGES_2M, saved_nr);
	saved_nr = -1;
}

static void on_signal(int sig)
{
	hugepages_restore();
	signal(sig, SIG_DFL);
	raise(sig);
}

void bench_hugepages_reserve(unsigned nr)
{
	long total = read_long(NR_HUGEPAGES_2M), free = read_long(FREE_HUGEPAGES_2M);

	if (!nr || geteuid() != 0 || total < 0 || free >= (long)nr)
		return;
	saved_nr = total;
	atexit(hugepages_restore);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	write_long(NR_HUGEPAGES_2M, total + ((long)nr - free));
	bench_note("hugepages: 2 MiB pool grown from %ld to %ld for this run, restored at exit", total,
		   read_long(NR_HUGEPAGES_2M));
}
