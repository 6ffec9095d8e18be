/* SPDX-License-Identifier: MIT */
/*
 * bench_rdma_parts.c - `iovm bench rdma`'s rows "miss, in parts": what a
 * registration cache's miss on an RDMA device is made of, each part timed
 * alone on fresh 4 KiB pages in the same run, beside the device's bare
 * ibv_reg_mr() of as much. The miss's own rows (bench_rdma.c) say that
 * iovm's costs more than its peers' on Soft-RoCE under TCG; these say
 * which of its steps does: the probe of the pages (os_vma_probe(): one
 * PROCMAP_QUERY since Linux 6.11, a handful of calls before), their
 * mlock(2), the monitor's userfaultfd registration, iovm's own
 * registration without a device, and with it.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <math.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <iovm.h>

#include "bench.h"
#include "bench_rdma_parts.h"
#include "os/uffd.h"
#include "os/vma.h"

#define PG 4096u

/* Fresh pages 8 KiB apart, written (as the miss rows' are): each a mapping of its own once locked. */
static uint8_t *fresh(uint64_t n)
{
	uint8_t *p = mmap(NULL, n * 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	for (uint64_t i = 0; i < n * 2; i++)
		p[i * PG] = 1;
	return p;
}

static double probe_ns(uint8_t *p, uint64_t n)
{
	struct os_vma_info vi;
	uint64_t t0 = bench_now_ns();

	for (uint64_t i = 0; i < n; i++) {
		uint64_t a = (uintptr_t)(p + i * 2 * PG);

		if (os_vma_probe(a, a + PG, OS_VMA_FAULT_READ | OS_VMA_FAULT_WRITE, &vi))
			return NAN;
	}
	return (double)(bench_now_ns() - t0) / (double)n;
}

static double mlock_ns(uint8_t *p, uint64_t n)
{
	uint64_t t0 = bench_now_ns(), t;

	for (uint64_t i = 0; i < n; i++)
		if (mlock(p + i * 2 * PG, PG))
			return NAN;
	t = bench_now_ns() - t0;
	munlock(p, n * 2 * PG);
	return (double)t / (double)n;
}

/* The monitor's registration (reg/monitor.c: write-protect mode), on a userfaultfd of its own. */
static double uffd_ns(uint8_t *p, uint64_t n)
{
	struct uffdio_api api = { .api = UFFD_API, .features = 0 };
	uint64_t t0, t;
	int fd;

	if (os_uffd_open(&fd, NULL, 0))
		return NAN;
	if (ioctl(fd, UFFDIO_API, &api)) {
		close(fd);
		return NAN;
	}
	t0 = bench_now_ns();
	for (uint64_t i = 0; i < n; i++) {
		struct uffdio_register r = { .range = { .start = (uintptr_t)(p + i * 2 * PG), .len = PG },
					     .mode = UFFDIO_REGISTER_MODE_WP };

		if (ioctl(fd, UFFDIO_REGISTER, &r)) {
			close(fd);
			return NAN;
		}
	}
	t = bench_now_ns() - t0;
	close(fd); /* unregisters all of it */
	return (double)t / (double)n;
}

/* iovm_mr_reg() of each page in @dom, no cache: ns each (the deregistrations after, not timed). */
static double mr_reg_ns(struct iovm_domain *dom, uint8_t *p, uint64_t n)
{
	struct iovm_mr **mrs = calloc(n, sizeof(*mrs));
	uint64_t t0, t;
	double ret = NAN;

	if (!mrs)
		return NAN;
	t0 = bench_now_ns();
	for (uint64_t i = 0; i < n; i++)
		if (iovm_mr_reg(dom, p + i * 2 * PG, PG, IOVM_ACCESS_LOCAL_WRITE, &mrs[i]))
			goto dereg;
	t = bench_now_ns() - t0;
	ret = (double)t / (double)n;
dereg:
	for (uint64_t i = 0; i < n && mrs[i]; i++)
		iovm_mr_dereg(mrs[i]);
	free(mrs);
	return ret;
}

void rdma_miss_parts(struct iovm_ctx *ctx, struct iovm_domain *vdom, unsigned nr, uint64_t n,
		     double (*bare)(void *arg, uint8_t *pages, uint64_t n), void *arg)
{
	double probe[16], lock[16], uffd[16], sw[16], verbs[16], dev[16];
	const char *peer = "ibv_reg_mr of 4 KiB";
	struct iovm_domain *sdom;
	int ret;

	if (nr > 16)
		nr = 16;
	bench_progress("rdma: a registration miss, in parts");
	/* A domain of the same context with no device: iovm's own registration, translated by its IOMMU. */
	if ((ret = iovm_domain_create(ctx, NULL, &sdom))) {
		bench_note("miss, in parts: no domain without a device: %d", ret);
		return;
	}
	for (unsigned r = 0; r < nr; r++) {
		uint8_t *p[6];

		for (unsigned i = 0; i < 6; i++)
			p[i] = fresh(n);
		probe[r] = lock[r] = uffd[r] = sw[r] = verbs[r] = dev[r] = NAN;
		if (p[0] && p[1] && p[2] && p[3] && p[4] && p[5]) {
			dev[r] = bare(arg, p[0], n);
			probe[r] = probe_ns(p[1], n);
			lock[r] = mlock_ns(p[2], n);
			uffd[r] = uffd_ns(p[3], n);
			sw[r] = mr_reg_ns(sdom, p[4], n);
			verbs[r] = mr_reg_ns(vdom, p[5], n);
		}
		for (unsigned i = 0; i < 6; i++)
			if (p[i])
				munmap(p[i], n * 2 * PG);
	}
	iovm_domain_destroy(sdom);
	bench_result(os_vma_queries() ? "miss, in parts: the probe (PROCMAP_QUERY)" : "miss, in parts: the probes",
		     "us", bench_median(probe, nr) / 1e3, peer, bench_median(dev, nr) / 1e3, "report");
	bench_result("miss, in parts: mlock of the page", "us", bench_median(lock, nr) / 1e3, peer,
		     bench_median(dev, nr) / 1e3, "report");
	bench_result("miss, in parts: userfaultfd registration", "us", bench_median(uffd, nr) / 1e3, peer,
		     bench_median(dev, nr) / 1e3, "report");
	bench_result("miss, in parts: iovm_mr_reg, no device", "us", bench_median(sw, nr) / 1e3, peer,
		     bench_median(dev, nr) / 1e3, "report");
	bench_result("miss, in parts: iovm_mr_reg on the device", "us", bench_median(verbs, nr) / 1e3, peer,
		     bench_median(dev, nr) / 1e3, "report");
}
