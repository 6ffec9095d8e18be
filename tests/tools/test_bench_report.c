/* SPDX-License-Identifier: MIT */
/*
 * test_bench_report.c - the benchmarks' report (bench/bench.c) from the
 * inside: every target form the benchmarks write is checked (met, missed,
 * unchecked), the peer's state is told from the row (measured, failed,
 * not built, not run, none), the lead reads the same way for times and
 * rates, the JSON says all of it, and the chart (where gnuplot is
 * installed) draws every state with its own label. Rows of every
 * benchmark, bench vfio's too, which needs a device to run.
 */
#include "bench.c"

static int failures;

#define CHECK(cond, ...)                                                   \
	do {                                                               \
		if (!(cond)) {                                             \
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
			fprintf(stderr, __VA_ARGS__);                      \
			fprintf(stderr, "\n");                             \
			failures++;                                        \
		}                                                          \
	} while (0)

static void reset(void)
{
	nr_results = 0;
	nr_notes = 0;
}

static const struct result *last(void)
{
	return &results[nr_results - 1];
}

/* One row, and what its target must come to: 1 met, 0 missed, -1 unchecked, -2 none. */
static void met_case(const char *unit, double iovm, const char *peer, double pv, const char *target, int want)
{
	int got;

	reset();
	bench_result("row", unit, iovm, peer, pv, target);
	got = target_met(last());
	CHECK(got == want, "target '%s' (%s) with iovm %g, peer '%s' %g: %d, want %d", target ? target : "(null)",
	      unit, iovm, peer, pv, got, want);
}

static void targets(void)
{
	/* Every form the benchmarks write, as each writes it. */
	met_case("ns", 7.3, "gap tree under its lock", 41, "<= 20 ns", 1);
	met_case("ns", 25, "gap tree under its lock", 41, "<= 20 ns", 0);
	met_case("ns", NAN, "gap tree under its lock", 41, "<= 20 ns", 0); /* iovm failed */
	met_case("x", 2.0, "independent work (the machine)", 2.0, ">= 1.8x", 1);
	met_case("x", 1.5, "independent work (the machine)", 2.0, ">= 1.8x", 0);
	met_case("ns", 302, "256 single-page maps", 2800, "<= 400 ns", 1);
	met_case("ns", 10.9, "none (no software peer)", NAN, "<= 60 ns", 1);
	met_case("Mdesc/s", 17, "none (DPDK not built in)", NAN, ">= 10 Mdesc/s", 1);
	met_case("Mdesc/s", 5, "DPDK dma_skeleton (no IOMMU)", NAN, ">= 10 Mdesc/s", 0);
	met_case("GB/s", 52.8, "memcpy, same buffers", 57.3, ">= 0.9x memcpy", 1);
	met_case("GB/s", 40, "memcpy, same buffers", 57.3, ">= 0.9x memcpy", 0);
	met_case("GB/s", 40, "memcpy, same buffers", NAN, ">= 0.9x memcpy", -1);
	met_case("kIO/s", 248, "strict invalidation", 46, ">= 3x strict", 1);
	met_case("kIO/s", 100, "strict invalidation", 46, ">= 3x strict", 0);
	met_case("us/pair", 0.138, "rte_malloc+rte_free", 152, "iovm <= 5 us", 1);
	met_case("ns/pair", 4000, "none (DPDK not built in)", NAN, "iovm <= 5 us", 1);
	met_case("ns/pair", 6000, "none (DPDK not built in)", NAN, "iovm <= 5 us", 0);
	met_case("ns/pair", 10, "rte_malloc+rte_free", 50, "ratio <= 0.33", 1);
	met_case("ns/pair", 20, "rte_malloc+rte_free", 50, "ratio <= 0.33", 0);
	met_case("ns/pair", 10, "none (DPDK not built in)", NAN, "ratio <= 0.33", -1);
	met_case("ns/lookup", 2.86, "none (DPDK not built in)", NAN, "iovm <= 3 ns", 1);
	met_case("ns/lookup", 1.7, "rte_mem_virt2memseg", 4.2, "iovm <= 3 ns, ratio <= 0.5", 1);
	met_case("ns/lookup", 2.5, "rte_mem_virt2memseg", 4.2, "iovm <= 3 ns, ratio <= 0.5", 0);
	met_case("ms", 82, "none (DPDK not built in)", NAN, "iovm succeeds", 1);
	met_case("ms", NAN, "rte_memzone_reserve(IOVA_CONTIG)", 3, "iovm succeeds", 0);
	met_case("ns", 10, "UCX ucs_rcache 1.13", 30, "<= 15 ns, <= 0.5x UCX", 1);
	met_case("ns", 10, "UCX ucs_rcache 1.13", 15, "<= 15 ns, <= 0.5x UCX", 0);
	met_case("ns", 20, "none (UCX not built in)", NAN, "<= 15 ns, <= 0.5x UCX", 0);
	met_case("ns", 10, "none (UCX not built in)", NAN, "<= 15 ns, <= 0.5x UCX", -1);
	met_case("us", 60, "UCX ucs_rcache 1.13", 70, "<= UCX", 1);
	met_case("us", 80, "UCX ucs_rcache 1.13", 70, "<= UCX", 0);
	met_case("us", 1.33, "the same copy, mapped", 0.18, "<= 2 us", 1);
	met_case("ms", 16.8, "mlock", 17.1, "<= 1.2x mlock", 1);
	met_case("ms", 30, "mlock", 17.1, "<= 1.2x mlock", 0);
	met_case("us", 2.9, "none (report)", NAN, "<= 10 us", 1);
	met_case("%", 100, "plain buddy", 54, ">= 100%", 1);
	met_case("%", 99, "plain buddy", 54, ">= 100%", 0);
	met_case("entries", 3, "one per hugepage (DPDK)", 512, "ratio < 1", 1);
	met_case("entries", 512, "one per hugepage (DPDK)", 512, "ratio < 1", 0);
	met_case("us", 507, "DPDK secondary rte_eal_init", 6000, "ratio <= 0.1", 1);
	met_case("ns", 10, "peer", 40, "<= 1/3 of peer", 1);
	met_case("ns", 20, "peer", 40, "<= 1/3 of peer", 0);
	/* No target; and targets that say nothing checkable, which must show as unchecked, never as met. */
	met_case("ns", 10, "iovm's table alone", 8, "report", -2);
	met_case("ns", 10, "iovm's table alone", 8, NULL, -2);
	met_case("ns", 10, "peer", 8, "fast", -1);
	met_case("ns", 10, "peer", 8, "<= 5 GB", -1);
	met_case("ns", 10, "peer", 8, "iovm <= 0.5x peer", -1);
	met_case("ns", 10, "peer", 8, "<=", -1);
}

static void states(void)
{
	static const struct {
		const char *peer;
		double pv;
		enum peer_state want;
	} cases[] = {
		{ "glibc malloc+free", 8, PEER_MEASURED },
		{ "memcpy, same buffers", NAN, PEER_FAILED },
		{ "none (DPDK not built in)", NAN, PEER_NOT_BUILT },
		{ "none (UCX not built in)", NAN, PEER_NOT_BUILT },
		{ "none (--no-dpdk)", NAN, PEER_NOT_RUN },
		{ "none (--no-dpdk: no peers)", NAN, PEER_NOT_RUN },
		{ "none", NAN, PEER_NONE },
		{ "none (report)", NAN, PEER_NONE },
		{ "none (no software peer)", NAN, PEER_NONE },
		{ "none (DPDK cannot reclaim)", NAN, PEER_NONE },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		reset();
		bench_result("row", "ns", 1, cases[i].peer, cases[i].pv, NULL);
		CHECK(peer_state(last()) == cases[i].want, "peer '%s': state %s, want %s", cases[i].peer,
		      peer_state_name[peer_state(last())], peer_state_name[cases[i].want]);
	}
}

static void leads(void)
{
	static const struct {
		const char *unit;
		double iovm, peer, lead;
		const char *target;
		double target_lead; /* NAN: no tick */
	} cases[] = {
		{ "ns", 10, 40, 4, "<= 20 ns", 2 },
		{ "ns/pair", 10, 40, 4, "ratio <= 0.25", 4 },
		{ "GB/s", 50, 100, 0.5, ">= 0.9x memcpy", 0.9 },
		{ "Mops/s", 300, 30, 10, NULL, NAN },
		{ "x", 1.8, 2, 0.9, ">= 1.8x", 0.9 },
		{ "%", 100, 50, 2, ">= 100%", 2 },
		{ "banks", 1, 1.5, 1.5, NULL, NAN },
		{ "ns", 10, 60, 6, "<= 15 ns, <= 0.5x UCX", 4 },
		{ "ms", 1, 2, 2, "iovm succeeds", NAN },
		{ "ms", 16.8, 17.1, 17.1 / 16.8, "<= 1.2x mlock", 1 / 1.2 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		double l, t;

		reset();
		bench_result("row", cases[i].unit, cases[i].iovm, "peer", cases[i].peer, cases[i].target);
		l = lead(last());
		t = target_lead(last());
		CHECK(fabs(l - cases[i].lead) < 1e-9, "%s: %g vs %g: lead %g, want %g", cases[i].unit, cases[i].iovm,
		      cases[i].peer, l, cases[i].lead);
		CHECK(isnan(cases[i].target_lead) ? isnan(t) : fabs(t - cases[i].target_lead) < 1e-9,
		      "%s: target '%s': at lead %g, want %g", cases[i].unit, cases[i].target, t, cases[i].target_lead);
	}
}

/* A run of every state: what the table, the JSON and the chart are checked on. */
static void every_state(void)
{
	reset();
	bench_result("leads by 4", "ns", 10, "glibc malloc+free", 40, "ratio <= 0.5");
	bench_result("trails by 2", "GB/s", 50, "memcpy, same buffers", 100, ">= 0.9x memcpy");
	bench_result("leads by 20", "Mops/s", 200, "gap tree under its lock", 10, NULL);
	bench_result("peer failed row", "ns", 10, "rte_malloc+rte_free", NAN, "ratio <= 0.33");
	bench_result("iovm failed row", "ms", NAN, "rte_memzone_reserve(IOVA_CONTIG)", 5, "iovm succeeds");
	bench_result("not built row", "ns/lookup", 2.9, "none (DPDK not built in)", NAN, "iovm <= 3 ns");
	bench_result("not run row", "us", 500, "none (--no-dpdk)", NAN, "ratio <= 0.1");
	bench_result("peer at zero", "%", 100, "plain buddy", 0, NULL);
	bench_result("peer below zero", "us", 285, "a cost less its baseline", -6.75, "ratio <= 1");
	bench_result("kernel entries for 1 GiB of heap", "entries", 2, "one per hugepage (DPDK)", 512, "ratio < 1");
	bench_result("map 4 KiB, VFIO device's domain", "ns", 900, "iovm's table alone", 11, "report");
	bench_result("alone row", "ns", 10.7, "none (no software peer)", NAN, "<= 60 ns");
	bench_result("alone failed", "Mdesc/s", NAN, "none", NAN, "iovm succeeds");
	bench_unbuilt("unbuilt row", "ns", "not built yet");
}

static void table(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	every_state();
	bench_print_table(f, "test", 1);
	fclose(f);
	CHECK(strstr(buf, "ratio <= 0.5: met"), "table: no met target:\n%s", buf);
	CHECK(strstr(buf, ">= 0.9x memcpy: MISSED"), "table: no missed target:\n%s", buf);
	CHECK(strstr(buf, "ratio <= 0.33: unchecked"), "table: no unchecked target:\n%s", buf);
	CHECK(strstr(buf, "not built  "), "table: the peer not built is not said:\n%s", buf);
	CHECK(strstr(buf, "not run  "), "table: the peer not run is not said:\n%s", buf);
	CHECK(strstr(buf, "failed  "), "table: the failed peer is not said:\n%s", buf);
	CHECK(!strstr(buf, "report"), "table: 'report' shown as a target:\n%s", buf);
	/* Every row with a target says what became of it. */
	for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
		if (strstr(line, "<=") || strstr(line, ">=") || strstr(line, "succeeds") || strstr(line, " < 1"))
			CHECK(strstr(line, ": met") || strstr(line, ": MISSED") || strstr(line, ": unchecked"),
			      "table: a target without its outcome: %s", line);
	free(buf);
}

/*
 * The writer (tools/json.c) puts each member on a line of its own: fold
 * @buf back to one line per row, members separated by ", ", so that a row
 * reads as one string.
 */
static void fold_json(char *buf)
{
	char *in = buf, *out = buf;

	while (*in) {
		if (*in == '\n') {
			while (*++in == ' ')
				;
			if (out > buf && out[-1] == ',')
				*out++ = ' ';
			continue;
		}
		*out++ = *in++;
	}
	*out = '\0';
}

static void json(void)
{
	char *buf = NULL, *row;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	unsigned rows = 0;

	every_state();
	bench_write_json(f);
	fclose(f);
	fold_json(buf);
	for (row = strstr(buf, "{\"name\""); row; row = strstr(row + 1, "{\"name\"")) {
		char *end = strchr(row, '}');

		*end = '\0';
		CHECK(strstr(row, "\"met\": "), "JSON row without met: %s", row);
		CHECK(strstr(row, "\"target\": "), "JSON row without target: %s", row);
		CHECK(strstr(row, "\"peer_status\": "), "JSON row without peer_status: %s", row);
		CHECK(strstr(row, "\"better\": "), "JSON row without better: %s", row);
		if (strstr(row, "\"not built row\""))
			CHECK(strstr(row, "\"peer\": null, \"peer_status\": \"not built\", \"peer_note\": \"DPDK not built in\"") &&
				      strstr(row, "\"met\": true"),
			      "JSON: the peer not built: %s", row);
		if (strstr(row, "\"not run row\""))
			CHECK(strstr(row, "\"peer\": null, \"peer_status\": \"not run\"") && strstr(row, "\"met\": null"),
			      "JSON: the peer not run: %s", row);
		if (strstr(row, "\"peer failed row\""))
			CHECK(strstr(row, "\"peer\": \"rte_malloc+rte_free\", \"peer_status\": \"failed\", \"peer_value\": null"),
			      "JSON: the failed peer: %s", row);
		if (strstr(row, "\"iovm failed row\""))
			CHECK(strstr(row, "\"iovm\": null") && strstr(row, "\"met\": false"), "JSON: iovm failed: %s", row);
		if (strstr(row, "\"leads by 4\""))
			CHECK(strstr(row, "\"ratio\": 0.25, \"lead\": 4, \"better\": \"lower\", \"target\": \"ratio <= 0.5\", \"met\": true"),
			      "JSON: a lead: %s", row);
		if (strstr(row, "\"trails by 2\""))
			CHECK(strstr(row, "\"lead\": 0.5, \"better\": \"higher\"") && strstr(row, "\"met\": false"),
			      "JSON: a rate that trails: %s", row);
		if (strstr(row, "\"peer below zero\""))
			CHECK(strstr(row, "\"ratio\": null, \"lead\": null") && strstr(row, "\"met\": null"),
			      "JSON: a peer below zero read as a lead: %s", row);
		if (strstr(row, "\"peer at zero\""))
			CHECK(strstr(row, "\"ratio\": null, \"lead\": null"), "JSON: a lead of infinity: %s", row);
		if (strstr(row, "VFIO device"))
			CHECK(strstr(row, "\"iovm's table alone\"") && strstr(row, "\"target\": null, \"met\": null"),
			      "JSON: a row reported without a target: %s", row);
		if (strstr(row, "\"unbuilt row\""))
			CHECK(strstr(row, "\"status\": \"not built yet\""), "JSON: a row not built: %s", row);
		rows++;
		*end = '}';
	}
	CHECK(rows == nr_results, "JSON: %u rows of %u", rows, nr_results);
	free(buf);
}

/* The ratio panel's order: bars by lead, largest first, then the rows without a bar, grouped by why. */
static void order(void)
{
	static struct plot_row rows[MAX_RESULTS];
	unsigned n;

	every_state();
	n = plot_rows(rows);
	/* Not on the panel: no peer at all ("alone row", "alone failed"), not built yet, below zero. */
	CHECK(n == nr_results - 4, "%u rows on the ratio panel, want %u", n, nr_results - 4);
	for (unsigned i = 0; i + 1 < n; i++) {
		/* The bars (leads and trails alike) are one group, sorted by lead; then each state's group. */
		int a = rows[i].cls <= PC_TRAILS ? 0 : (int)rows[i].cls, b = rows[i + 1].cls <= PC_TRAILS ? 0 : (int)rows[i + 1].cls;

		CHECK(a <= b, "panel row %u (%s) before %u (%s)", i, rows[i].r->name, i + 1, rows[i + 1].r->name);
		if (!a && !b)
			CHECK(rows[i].lead >= rows[i + 1].lead, "panel: lead %g above %g", rows[i].lead, rows[i + 1].lead);
	}
	CHECK(!strcmp(rows[0].r->name, "peer at zero"), "panel: on top '%s', not the infinite lead", rows[0].r->name);
	for (unsigned i = 0; i < n; i++) {
		const char *name = rows[i].r->name;

		if (!strcmp(name, "not built row"))
			CHECK(rows[i].cls == PC_PEER_NOT_BUILT && isnan(rows[i].target), "panel: not built row");
		if (!strcmp(name, "not run row"))
			CHECK(rows[i].cls == PC_PEER_NOT_RUN, "panel: not run row");
		if (!strcmp(name, "peer failed row"))
			CHECK(rows[i].cls == PC_PEER_FAILED, "panel: peer failed row");
		if (!strcmp(name, "iovm failed row"))
			CHECK(rows[i].cls == PC_IOVM_FAILED, "panel: iovm failed row");
		if (!strcmp(name, "trails by 2"))
			CHECK(rows[i].cls == PC_TRAILS && fabs(rows[i].target - 0.9) < 1e-9 && rows[i].met == 0,
			      "panel: trails by 2");
	}
}

/* XML's entities in @s back to their characters, in place: the chart's text as written. */
static void unescape(char *s)
{
	static const struct { const char *ent; char c; } ents[] = {
		{ "&lt;", '<' }, { "&gt;", '>' }, { "&amp;", '&' }, { "&apos;", '\'' }, { "&quot;", '"' },
	};
	char *out = s;

	while (*s) {
		size_t i;

		for (i = 0; i < sizeof(ents) / sizeof(ents[0]); i++)
			if (!strncmp(s, ents[i].ent, strlen(ents[i].ent)))
				break;
		if (i < sizeof(ents) / sizeof(ents[0])) {
			*out++ = ents[i].c;
			s += strlen(ents[i].ent);
		} else {
			*out++ = *s++;
		}
	}
	*out = '\0';
}

/* The chart itself, where gnuplot is installed: every state drawn with its own words. */
static void chart(void)
{
	static const char *const want[] = {
		"peer not built", "peer not run", "peer failed", "iovm failed", "iovm leads (right of 1x)",
		"iovm trails (left of 1x)", "target (met)", "target (MISSED)", "4.00x", "0.50x", "1x",
		"leads by 4", "vs glibc malloc+free", "(DPDK not built in)", "(--no-dpdk)",
		"iovm 10.00 vs peer 40.00 ns", "target ratio <= 0.5: met", "target >= 0.9x memcpy: MISSED",
		"Rows with no peer to compare against", "alone row: 10.70 ns (no software peer); target <= 60 ns: met",
		"alone failed: failed; target iovm succeeds: MISSED", "unbuilt row: not built yet",
		"map 4 KiB, VFIO device", "kernel entries for 1 GiB of heap",
	};
	char path[] = "/tmp/iovm-test-chart-XXXXXX", *svg;
	int fd = mkstemp(path), ret;
	struct stat st;
	FILE *f;

	if (system("command -v gnuplot >/dev/null 2>&1")) {
		printf("# skip: the chart: gnuplot is not installed\n");
		close(fd);
		unlink(path);
		return;
	}
	close(fd);
	every_state();
	ret = bench_plot(path, "test chart");
	CHECK(!ret, "bench_plot: %s", strerror(-ret));
	if (ret || stat(path, &st) || !(svg = calloc(1, (size_t)st.st_size + 1)) || !(f = fopen(path, "r"))) {
		unlink(path);
		return;
	}
	if (fread(svg, 1, (size_t)st.st_size, f) != (size_t)st.st_size)
		CHECK(0, "cannot read the chart");
	fclose(f);
	unescape(svg);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		CHECK(strstr(svg, want[i]), "the chart lacks '%s'", want[i]);
	/* A peer's figure of 0 is no bar of zero length, nor a row left out: the bar runs to the axis' edge. */
	CHECK(strstr(svg, "infinite: a figure is 0"), "the chart lacks the infinite lead");
	free(svg);
	unlink(path);
}

int main(void)
{
	targets();
	states();
	leads();
	table();
	json();
	order();
	chart();
	if (failures) {
		fprintf(stderr, "%d failures\n", failures);
		return 1;
	}
	printf("# bench report: all checks passed\n");
	return 0;
}
