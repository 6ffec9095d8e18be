/* SPDX-License-Identifier: MIT */
/*
 * bench_reg_async.c - the rows of `iovm bench reg` for pinned registration
 * of large memory in the background (iovm_mr_reg_async()), beside one
 * mlock(2) of the whole range and one single-threaded pin of it
 * (iovm_mr_reg(), which pins as ibv_reg_mr() does: the pages faulted in
 * and locked in one pass), all in GB/s of memory made usable; how soon the
 * call returns and the first chunk is usable; and what the pinning costs a
 * thread copying memory meanwhile. On 1 GiB, prefaulted and fresh, and on
 * the largest memory this machine holds comfortably (a quarter of
 * MemAvailable, at most 4 GiB), prefaulted.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <iovm.h>

#include "bench.h"

#define GIB (1ull << 30)
#define MIN(a, b) ((a) < (b) ? (a) : (b))

static const struct bench_args *args;
static struct iovm_domain *dom;

static double gbps(size_t len, uint64_t ns)
{
	return (double)len / (double)ns; /* bytes per ns is GB/s */
}

static void fail(const char *what, int err)
{
	fprintf(stderr, "iovm bench: %s: %s (%s)\n", what, iovm_strerror(err), iovm_error_detail());
	exit(1);
}

/* Registered in the background, until all of it is usable: ns; the call's return and the first chunk's in *ret_ns, *first_ns. */
static uint64_t async_pin(uint8_t *a, size_t len, uint32_t flags, uint64_t *ret_ns, uint64_t *first_ns)
{
	struct iovm_mr *mr;
	uint64_t t0 = bench_now_ns(), t;
	int ret = iovm_mr_reg_async(dom, a, len, IOVM_ACCESS_LOCAL_WRITE, flags, &mr);

	if (ret)
		fail("iovm_mr_reg_async", ret);
	if (ret_ns)
		*ret_ns = bench_now_ns() - t0;
	if ((ret = iovm_mr_wait(mr, a, 4096, -1)))
		fail("iovm_mr_wait", ret);
	if (first_ns)
		*first_ns = bench_now_ns() - t0;
	if ((ret = iovm_mr_wait(mr, a, len, -1)))
		fail("iovm_mr_wait", ret);
	t = bench_now_ns() - t0;
	iovm_mr_dereg(mr);
	return t;
}

static uint64_t one_mlock(uint8_t *a, size_t len)
{
	uint64_t t0 = bench_now_ns(), t;

	if (mlock(a, len))
		fail("mlock", -errno);
	t = bench_now_ns() - t0;
	munlock(a, len);
	return t;
}

static uint64_t sync_pin(uint8_t *a, size_t len)
{
	struct iovm_mr *mr;
	uint64_t t0 = bench_now_ns(), t;
	int ret = iovm_mr_reg(dom, a, len, IOVM_ACCESS_LOCAL_WRITE, &mr);

	if (ret)
		fail("iovm_mr_reg", ret);
	t = bench_now_ns() - t0;
	iovm_mr_dereg(mr);
	return t;
}

/*
 * CPU time the process has used (all its threads, those gone included),
 * in ms, and the times threads other than the calling one waited (gave up
 * their CPU: a lock, a sleep): what a way costs whatever the machine's
 * load, and whether its threads wait for each other.
 */
struct cpu_mark {
	double ms;
	long waits;
};

static struct cpu_mark cpu_now(void)
{
	struct rusage all, self;

	getrusage(RUSAGE_SELF, &all);
	getrusage(RUSAGE_THREAD, &self);
	return (struct cpu_mark){ .ms = (double)(all.ru_utime.tv_sec + all.ru_stime.tv_sec) * 1e3 +
					(double)(all.ru_utime.tv_usec + all.ru_stime.tv_usec) / 1e3,
				  .waits = all.ru_nvcsw - self.ru_nvcsw };
}

/* Fresh memory for each way (@fresh), or the same, prefaulted: [a, a+len) to use. */
static uint8_t *next_memory(uint8_t *a, size_t len, bool fresh)
{
	if (!fresh)
		return a;
	munmap(a, len);
	a = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (a == MAP_FAILED)
		fail("mmap", -errno);
	return a;
}

/*
 * The three ways on @len bytes of 4 KiB pages, interleaved, @nr times:
 * medians. Prefaulted (the memory of loaded weights), or @fresh, never
 * touched (a pool allocated at start-up), which each way faults in.
 */
static void pin_rows(size_t len, unsigned nr, bool fresh)
{
	const char *kind = fresh ? " fresh" : "";
	double as[16], lk[16], sy[16], ret_us[16], first_ms[16], as_cpu[16], lk_cpu[16], as_waits[16];
	char name[120], sz[16];
	uint8_t *a = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	if (a == MAP_FAILED) {
		bench_note("async registration of %s: no memory for it", bench_size(len, sz, sizeof(sz)));
		return;
	}
	bench_size(len, sz, sizeof(sz));
	bench_progress("pinned registration of %s%s: in the background, one mlock, iovm_mr_reg", sz, kind);
	if (!fresh)
		memset(a, 1, len); /* prefaulted: every way locks what is there */
	for (unsigned rep = 0; rep < nr; rep++) {
		uint64_t r, f;

		struct cpu_mark c0, c1;

		a = next_memory(a, len, fresh);
		c0 = cpu_now();
		as[rep] = gbps(len, async_pin(a, len, 0, &r, &f));
		c1 = cpu_now();
		as_cpu[rep] = c1.ms - c0.ms;
		as_waits[rep] = (double)(c1.waits - c0.waits);
		ret_us[rep] = (double)r / 1e3;
		first_ms[rep] = (double)f / 1e6;
		a = next_memory(a, len, fresh);
		c0 = cpu_now();
		lk[rep] = gbps(len, one_mlock(a, len));
		lk_cpu[rep] = cpu_now().ms - c0.ms;
		a = next_memory(a, len, fresh);
		sy[rep] = gbps(len, sync_pin(a, len));
	}
	/* Load moves the rates (the threads run at nice +5 beside others); CPU time far less. */
	bench_note("async reg %s%s: %.0f ms of CPU (one mlock: %.0f ms); its threads waited %.0f times (medians)", sz,
		   kind, bench_median(as_cpu, nr), bench_median(lk_cpu, nr), bench_median(as_waits, nr));
	snprintf(name, sizeof(name), "async reg %s%s, %ld threads, vs mlock", sz, kind, MIN(cpus, 8L));
	bench_result(name, "GB/s", bench_median(as, nr), "one mlock", bench_median(lk, nr), ">= 1.5x one mlock");
	snprintf(name, sizeof(name), "async reg %s%s, vs 1-thread pin", sz, kind);
	bench_result(name, "GB/s", bench_median(as, nr), "iovm_mr_reg", bench_median(sy, nr), ">= 1.5x iovm_mr_reg");
	snprintf(name, sizeof(name), "async reg %s%s: call returns", sz, kind);
	bench_result(name, "ms", bench_median(ret_us, nr) / 1e3, "iovm_mr_reg", 1e3 * (double)len / 1e9 / bench_median(sy, nr),
		     "<= 1 ms");
	snprintf(name, sizeof(name), "async reg %s%s: first chunk usable", sz, kind);
	bench_result(name, "ms", bench_median(first_ms, nr), "iovm_mr_reg", 1e3 * (double)len / 1e9 / bench_median(sy, nr),
		     "<= 1/10 of peer");
	munmap(a, len);
}

/* memcpy of @buf's halves into each other, @n times or (n 0) until @mr is whole: GB/s copied. */
static double copy_rate(uint8_t *buf, size_t half, unsigned n, struct iovm_mr *mr)
{
	uint64_t t0 = bench_now_ns(), bytes = 0;

	for (unsigned i = 0; n ? i < n : iovm_mr_ready(mr, NULL) == -EINPROGRESS; i++) {
		memcpy(buf + (i & 1 ? 0 : half), buf + (i & 1 ? half : 0), half);
		bytes += half;
	}
	return gbps(bytes, bench_now_ns() - t0);
}

/* A thread copying 16 MiB at a time, alone and while @len bytes are pinned in the background by @threads. */
static void copy_rows(size_t len, unsigned nr)
{
	static const unsigned threads[] = { 0, 1 };
	size_t half = 16u << 20;
	double alone[16], beside[2][16];
	char name[120], sz[16];
	uint8_t *a = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *buf = mmap(NULL, 2 * half, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	if (a == MAP_FAILED || buf == MAP_FAILED) {
		bench_note("memcpy beside async registration: no memory for it");
		goto unmap;
	}
	bench_size(len, sz, sizeof(sz));
	bench_progress("memcpy alone and beside async registration of %s", sz);
	memset(a, 1, len);
	memset(buf, 2, 2 * half);
	for (unsigned rep = 0; rep < nr; rep++) {
		alone[rep] = copy_rate(buf, half, 32, NULL);
		for (unsigned t = 0; t < 2; t++) {
			struct iovm_mr *mr;
			int ret = iovm_mr_reg_async(dom, a, len, IOVM_ACCESS_LOCAL_WRITE, IOVM_REG_THREADS(threads[t]), &mr);

			if (ret)
				fail("iovm_mr_reg_async", ret);
			beside[t][rep] = copy_rate(buf, half, 0, mr);
			iovm_mr_dereg(mr);
		}
	}
	for (unsigned t = 0; t < 2; t++) {
		snprintf(name, sizeof(name), "memcpy during async reg %s, %ld thread%s", sz,
			 threads[t] ? (long)threads[t] : MIN(cpus, 8L), (threads[t] ? threads[t] : cpus) > 1 ? "s" : "");
		bench_result(name, "GB/s", bench_median(beside[t], nr), "memcpy alone", bench_median(alone, nr),
			     ">= 1/2 of peer");
	}
unmap:
	if (a != MAP_FAILED)
		munmap(a, len);
	if (buf != MAP_FAILED)
		munmap(buf, 2 * half);
}

/* A quarter of MemAvailable, whole GiB, at most 4 GiB: 0 when that is not above 1 GiB. */
static size_t largest_comfortable(void)
{
	unsigned long long kb = 0;
	char line[128];
	FILE *f = fopen("/proc/meminfo", "r");
	size_t len;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
			break;
	fclose(f);
	len = (size_t)((kb << 10) / 4) & ~(size_t)(GIB - 1);
	len = len > 4 * GIB ? 4 * GIB : len;
	return len > GIB ? len : 0;
}

void bench_reg_async(const struct bench_args *a, struct iovm_domain *d, size_t room)
{
	size_t one = a->quick ? (64u << 20) : GIB, big = a->quick ? 0 : largest_comfortable();
	unsigned nr = a->quick ? 1 : 3;
	char s1[16], s2[16];

	args = a;
	dom = d;
	if (room < one) {
		bench_note("async registration: not measured, RLIMIT_MEMLOCK leaves %s to lock",
			   bench_size(room, s1, sizeof(s1)));
		return;
	}
	pin_rows(one, nr, false);
	pin_rows(one, nr, true);
	copy_rows(one, nr);
	if (big && big <= room) {
		bench_note("async registration: the largest size is %s, a quarter of MemAvailable (at most 4 GiB)",
			   bench_size(big, s2, sizeof(s2)));
		pin_rows(big, nr, false);
	} else if (!a->quick) {
		bench_note("async registration: no size above %s measured (MemAvailable / 4, or RLIMIT_MEMLOCK)",
			   bench_size(one, s1, sizeof(s1)));
	}
}
