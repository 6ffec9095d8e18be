/* SPDX-License-Identifier: MIT */
/*
 * bench_mp_dpdk.c - the peer of `iovm bench mp`: DPDK 22.11's
 * multi-process, a primary and secondaries (--proc-type=secondary) started
 * in the same run and measured as iovm's processes are.
 *
 * DPDK's multi-process shares hugetlbfs files (--no-huge memory is
 * anonymous: a secondary cannot map it), and its runtime files live in
 * /var/run/dpdk/PREFIX. So the measurement runs in a process of its own
 * with a private mount namespace: a tmpfs on /run for the runtime files, a
 * hugetlbfs of a capped size in it for the pages, and a file prefix unique
 * to the run. When that process and its children end, the namespace goes
 * and everything DPDK left with it, even after a crash: nothing is left in
 * the machine's /run, /dev/hugepages or hugepage pool.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "bench_mp.h"

#ifdef HAVE_DPDK
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_malloc.h>
#include <rte_memory.h>
#include <rte_memzone.h>

#define KEEP(x) __asm__ volatile("" : : "r"(x) : "memory")

/* The primary's memory (-m, in MiB, kept for its life) and the hugetlbfs cap. */
#define DPDK_MEM_MB 32
#define STRINGIFY(x) #x
#define STR(x) STRINGIFY(x)
#define HUGE_MOUNT_MB 96
#define HUGE_DIR "/run/iovm-bench-huge"

static const struct mp_cfg *cfg;
static char file_prefix[64];

static int eal_start(bool primary, char *why, size_t len)
{
	char prefix_arg[96], *argv[16];
	int argc = 0;

	snprintf(prefix_arg, sizeof(prefix_arg), "--file-prefix=%s", file_prefix);
	argv[argc++] = primary ? "iovm-bench-primary" : "iovm-bench-secondary";
	argv[argc++] = primary ? "--proc-type=primary" : "--proc-type=secondary";
	argv[argc++] = prefix_arg;
	argv[argc++] = "--no-pci";
	argv[argc++] = "--no-telemetry";
	argv[argc++] = "--log-level=lib.*:error";
	argv[argc++] = "-l";
	argv[argc++] = "0";
	if (primary) {
		argv[argc++] = "--iova-mode=pa";
		argv[argc++] = "--huge-dir=" HUGE_DIR;
		argv[argc++] = "-m";
		argv[argc++] = STR(DPDK_MEM_MB);
	}
	argv[argc] = NULL;
	if (rte_eal_init(argc, argv) < 0) {
		snprintf(why, len, "rte_eal_init(%s): %s", argv[1], rte_strerror(rte_errno));
		return -1;
	}
	return 0;
}

/* ---- the primary ---- */

struct ready {
	int err;
	char why[128];
};

static void primary_main(int rd, int wr, void *arg)
{
	struct ready r = { 0 };
	char c;

	(void)arg;
	if (eal_start(true, r.why, sizeof(r.why))) {
		r.err = 1;
		mp_put(wr, &r, sizeof(r));
		return;
	}
	for (unsigned i = 0; i < MP_ZONES && !r.err; i++) {
		char name[32];

		snprintf(name, sizeof(name), "bench-z%u", i);
		if (!rte_memzone_reserve(name, 4096, SOCKET_ID_ANY, 0)) {
			r.err = 1;
			snprintf(r.why, sizeof(r.why), "rte_memzone_reserve: %s", rte_strerror(rte_errno));
		}
	}
	mp_put(wr, &r, sizeof(r));
	while (read(rd, &c, 1) > 0 || errno == EINTR) /* until the driver closes the pipe */
		;
	rte_eal_cleanup();
}

/* ---- secondaries ---- */

struct attach_done {
	uint64_t t; /* when the first allocation had its IOVA; 0 when it failed */
	char why[128];
};

static void attach_main(int rd, int wr, void *arg)
{
	struct attach_done done = { 0 };
	void *p;

	(void)rd;
	(void)arg;
	if (eal_start(false, done.why, sizeof(done.why))) {
		mp_put(wr, &done, sizeof(done));
		return;
	}
	p = rte_malloc(NULL, 64, 0);
	if (p && rte_malloc_virt2iova(p) != RTE_BAD_IOVA)
		done.t = bench_now_ns();
	else
		snprintf(done.why, sizeof(done.why), "rte_malloc in the secondary failed");
	mp_put(wr, &done, sizeof(done));
	rte_free(p);
	rte_eal_cleanup();
}

static double attach_us(char *why, size_t len)
{
	double v[32];
	unsigned ok = 0;

	for (unsigned r = 0; r < cfg->reps + 1; r++) { /* the first warms up */
		struct attach_done done = { 0 };
		struct mp_child c;
		uint64_t t0 = bench_now_ns();

		if (mp_child_start(&c, attach_main, NULL))
			break;
		if (mp_get(c.rd, &done, sizeof(done)))
			snprintf(done.why, sizeof(done.why), "the secondary died");
		mp_child_wait(&c);
		if (!done.t) {
			snprintf(why, len, "%s", done.why);
			return NAN;
		}
		if (r)
			v[ok++] = (double)(done.t - t0) / 1e3;
	}
	return ok ? bench_median(v, ok) : NAN;
}

static double pairs(size_t size, uint64_t n)
{
	uint64_t t0 = bench_now_ns();

	for (uint64_t i = 0; i < n; i++) {
		void *p = rte_malloc(NULL, size, 0);

		KEEP(p);
		rte_free(p);
	}
	return (double)(bench_now_ns() - t0) / (double)n;
}

static double lookups(size_t size, uint64_t n)
{
	char names[MP_ZONES][32];
	uint64_t t0, sum = 0;

	(void)size;
	for (unsigned i = 0; i < MP_ZONES; i++)
		snprintf(names[i], sizeof(names[i]), "bench-z%u", i);
	t0 = bench_now_ns();
	for (uint64_t i = 0; i < n; i++) {
		const struct rte_memzone *mz = rte_memzone_lookup(names[i % MP_ZONES]);

		if (!mz)
			return NAN;
		sum += mz->iova;
	}
	KEEP(sum);
	return (double)(bench_now_ns() - t0) / (double)n;
}

static double median_of(double (*fn)(size_t, uint64_t), size_t size, uint64_t n)
{
	double v[32];

	fn(size, n / 10 + 1); /* warm-up */
	for (unsigned r = 0; r < cfg->reps; r++)
		v[r] = fn(size, n);
	return bench_median(v, cfg->reps);
}

static void ops_main(int rd, int wr, void *arg)
{
	struct mp_ops ops = { NAN, NAN, NAN, "" };

	(void)rd;
	(void)arg;
	if (eal_start(false, ops.why, sizeof(ops.why))) {
		mp_put(wr, &ops, sizeof(ops));
		return;
	}
	ops.pair64_ns = median_of(pairs, 64, mp_iters(cfg, 2000000));
	ops.pair4k_ns = median_of(pairs, 4096, mp_iters(cfg, 2000000));
	ops.lookup_ns = median_of(lookups, 0, mp_iters(cfg, 2000000));
	mp_put(wr, &ops, sizeof(ops));
	rte_eal_cleanup();
}

/* ---- the driver, in its own mount namespace ---- */

static int private_mounts(char *why, size_t len)
{
	char opts[64];

	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) {
		snprintf(why, len, "no private mount namespace: %s", strerror(errno));
		return -1;
	}
	if (mount("iovm-bench", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=16m")) {
		snprintf(why, len, "tmpfs on /run: %s", strerror(errno));
		return -1;
	}
	snprintf(opts, sizeof(opts), "pagesize=2M,size=%uM", HUGE_MOUNT_MB);
	if (mkdir(HUGE_DIR, 0700) || mount("iovm-bench", HUGE_DIR, "hugetlbfs", MS_NOSUID | MS_NODEV, opts)) {
		snprintf(why, len, "hugetlbfs on %s: %s", HUGE_DIR, strerror(errno));
		return -1;
	}
	return 0;
}

static void driver_main(int rd, int wr, void *arg)
{
	struct mp_figures fig = { .attach_us = NAN, .ops = { NAN, NAN, NAN, "" } };
	struct ready ready = { 0 };
	struct mp_child primary, ops;

	(void)rd;
	(void)arg;
	if (private_mounts(fig.why, sizeof(fig.why)))
		goto report;
	if (mp_child_start(&primary, primary_main, NULL)) {
		snprintf(fig.why, sizeof(fig.why), "fork: %s", strerror(errno));
		goto report;
	}
	if (mp_get(primary.rd, &ready, sizeof(ready)) || ready.err) {
		snprintf(fig.why, sizeof(fig.why), "primary: %s", ready.err ? ready.why : "died");
		goto stop_primary;
	}
	bench_progress("DPDK: secondary attach");
	fig.attach_us = attach_us(fig.ops.why, sizeof(fig.ops.why));
	bench_progress("DPDK: rte_malloc+rte_free and rte_memzone_lookup in a secondary");
	if (mp_child_start(&ops, ops_main, NULL) == 0) {
		char why[sizeof(fig.ops.why)];

		snprintf(why, sizeof(why), "%s", fig.ops.why);
		if (mp_get(ops.rd, &fig.ops, sizeof(fig.ops)))
			snprintf(fig.ops.why, sizeof(fig.ops.why), "the secondary died");
		else if (why[0])
			snprintf(fig.ops.why, sizeof(fig.ops.why), "%s", why);
		mp_child_wait(&ops);
	}
stop_primary:
	mp_child_wait(&primary);
report:
	mp_put(wr, &fig, sizeof(fig));
}

static long read_sys_long(const char *path)
{
	FILE *f = fopen(path, "re");
	long v = -1;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

void mp_dpdk_measure(const struct mp_cfg *c, struct mp_figures *out)
{
	const char *sys = "/sys/kernel/mm/hugepages/hugepages-2048kB";
	long free_pages, resv;
	char path[128];
	struct mp_child driver;

	*out = (struct mp_figures){ .attach_us = NAN, .ops = { NAN, NAN, NAN, "" } };
	cfg = c;
	if (!c->dpdk) {
		snprintf(out->why, sizeof(out->why), "not run (--no-dpdk)");
		return;
	}
	if (geteuid() != 0) {
		snprintf(out->why, sizeof(out->why),
			 "not run: its multi-process needs a hugetlbfs mount and PA mode, so root");
		return;
	}
	snprintf(path, sizeof(path), "%s/free_hugepages", sys);
	free_pages = read_sys_long(path);
	snprintf(path, sizeof(path), "%s/resv_hugepages", sys);
	resv = read_sys_long(path);
	if (free_pages - (resv > 0 ? resv : 0) < DPDK_MEM_MB / 2 + 8) {
		snprintf(out->why, sizeof(out->why),
			 "not run: its multi-process needs 2 MiB hugepages (--no-huge memory is not shared), %ld free",
			 free_pages - (resv > 0 ? resv : 0));
		return;
	}
	snprintf(file_prefix, sizeof(file_prefix), "iovm-bench-mp-%d", (int)getpid());
	if (mp_child_start(&driver, driver_main, NULL)) {
		snprintf(out->why, sizeof(out->why), "fork: %s", strerror(errno));
		return;
	}
	if (mp_get(driver.rd, out, sizeof(*out)))
		snprintf(out->why, sizeof(out->why), "its driver process died");
	mp_child_wait(&driver);
	bench_note("DPDK: primary with -m %d --iova-mode=pa on a private hugetlbfs; secondaries forked like iovm's",
		   DPDK_MEM_MB);
}

#else /* !HAVE_DPDK */

void mp_dpdk_measure(const struct mp_cfg *c, struct mp_figures *out)
{
	*out = (struct mp_figures){ .attach_us = NAN, .ops = { NAN, NAN, NAN, "" } };
	snprintf(out->why, sizeof(out->why), c->dpdk ? "not built in (install libdpdk-dev and rebuild)"
						      : "not run (--no-dpdk)");
}

#endif /* HAVE_DPDK */
