/* SPDX-License-Identifier: MIT */
/*
 * bench_vfio.c - `iovm bench vfio`: what a real device's domain costs,
 * where every mapping is mirrored into the kernel's IOMMU through VFIO
 * (the VM test runs it in its guest, behind an emulated Intel IOMMU):
 *  - map and unmap of 4 KiB and 2 MiB through a VFIO device's domain,
 *    beside the same calls on a domain that only has iovm's own table;
 *  - the kernel entries 1 GiB of heap takes, mapped at once (iovm gathers
 *    it into runs contiguous in IOVA and process address) beside one entry
 *    per hugepage (what DPDK's VFIO code does), and the time each takes;
 *  - map and unmap per I/O, deferred invalidation beside strict: strict
 *    unmaps each buffer from the kernel at once, deferred unmaps the
 *    batch when it flushes;
 *  - where the kernel has both interfaces, map and unmap through iommufd
 *    (IOMMU_IOAS_MAP) beside the VFIO group (VFIO_IOMMU_MAP_DMA).
 *
 * The device: IOVM_BENCH_DEVICE ("vfio:0000:00:03.0"), else the first of
 * QEMU's edu or NVMe devices found. Without one the benchmark says so on
 * stderr and exits 1.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <iovm.h>

#include "bench.h"
#include "os/sysfs.h"

#define SZ_2M (UINT64_C(2) << 20)
#define HEAP_BYTES (UINT64_C(1) << 30)

static const struct bench_args *args;
static struct iovm_ctx *ctx;
static struct iovm_device *dev;
static unsigned dma_bits;

static unsigned reps(void)
{
	return args->quick ? 3 : 7;
}

static uint64_t iters(uint64_t n)
{
	return args->quick ? n / 20 : n;
}

static void die(const char *what, int ret)
{
	fprintf(stderr, "iovm bench vfio: %s: %s (%s)\n", what, iovm_strerror(ret), iovm_error_detail());
	exit(1);
}

/* QEMU's edu (1234:11e8) or NVMe (1b36:0010): devices the VM test gives its guest. */
static int find_device(char *spec, size_t len)
{
	static const unsigned ids[][2] = { { 0x1234, 0x11e8 }, { 0x1b36, 0x0010 } };
	const char *env = getenv("IOVM_BENCH_DEVICE");

	if (env) {
		snprintf(spec, len, "%s", env);
		return 0;
	}
	for (unsigned k = 0; k < 2; k++) {
		char bdf[256];

		if (!sysfs_pci_find(ids[k][0], ids[k][1], bdf, sizeof(bdf))) {
			snprintf(spec, len, "vfio:%s", bdf);
			return 0;
		}
	}
	return -ENODEV;
}

/* A managed domain, with the device attached or not (iovm's table alone). */
static struct iovm_domain *domain(uint32_t flags, bool with_device)
{
	struct iovm_domain_attr attr = { .type = IOVM_DOMAIN_MANAGED, .flags = flags, .dma_bits = dma_bits };
	struct iovm_domain *dom;
	int ret = iovm_domain_create(ctx, &attr, &dom);

	if (ret)
		die("iovm_domain_create", ret);
	if (with_device && (ret = iovm_device_attach(dev, dom, 0)))
		die("iovm_device_attach", ret);
	return dom;
}

static void domain_done(struct iovm_domain *dom, bool with_device)
{
	if (with_device)
		iovm_device_detach(dev, 0);
	iovm_domain_destroy(dom);
}

static uint64_t kernel_entries(void)
{
	struct iovm_device_info di;
	int ret = iovm_device_query(dev, &di);

	if (ret)
		die("iovm_device_query", ret);
	return di.kernel_mappings;
}

/* Median ns of one map and of one unmap of @len at @buf, @count times a repetition. */
static void map_unmap(bool with_device, void *buf, uint64_t len, uint64_t count, double *map_ns, double *unmap_ns)
{
	struct iovm_domain *dom = domain(0, with_device);
	double m[16], u[16];
	unsigned nr = reps();

	for (unsigned rep = 0; rep <= nr; rep++) {
		uint64_t tm = 0, tu = 0;

		for (uint64_t i = 0; i < count; i++) {
			iovm_iova_t iova;
			uint64_t t0 = bench_now_ns(), t1;
			int ret = iovm_domain_map_ptr(dom, buf, len, IOVM_MAP_READ | IOVM_MAP_WRITE, &iova);

			t1 = bench_now_ns();
			if (ret)
				die("iovm_domain_map_ptr", ret);
			if ((ret = iovm_domain_unmap(dom, iova, len)))
				die("iovm_domain_unmap", ret);
			tm += t1 - t0;
			tu += bench_now_ns() - t1;
		}
		if (rep) { /* the first is the warm-up */
			m[rep - 1] = (double)tm / (double)count;
			u[rep - 1] = (double)tu / (double)count;
		}
	}
	*map_ns = bench_median(m, nr);
	*unmap_ns = bench_median(u, nr);
	domain_done(dom, with_device);
}

static void bench_map_unmap(void)
{
	static const struct { uint64_t len; const char *name; } sizes[] = { { 4096, "4 KiB" }, { SZ_2M, "2 MiB" } };
	void *buf = iovm_dma_alloc(ctx, SZ_2M, SZ_2M, 0);

	if (!buf)
		die("iovm_dma_alloc", -ENOMEM);
	for (unsigned i = 0; i < 2; i++) {
		double vm, vu, tm, tu;
		char row[96];

		bench_progress("map and unmap %s: through VFIO, and iovm's table alone", sizes[i].name);
		map_unmap(true, buf, sizes[i].len, iters(2000), &vm, &vu);
		map_unmap(false, buf, sizes[i].len, iters(20000), &tm, &tu);
		snprintf(row, sizeof(row), "map %s, VFIO device's domain", sizes[i].name);
		bench_result(row, "ns", vm, "iovm's table alone", tm, "report");
		snprintf(row, sizeof(row), "unmap %s, strict, VFIO device's domain", sizes[i].name);
		bench_result(row, "ns", vu, "iovm's table alone", tu, "report");
	}
	iovm_dma_free(ctx, buf);
}

/*
 * 1 GiB of heap in the kernel: mapped at once, and one hugepage at a time.
 * Less when the machine has fewer hugepages (the row says how much).
 */
static void bench_entries(void)
{
	uint64_t bytes = HEAP_BYTES, pages, e0, at_once, per_page;
	struct iovm_domain *dom = domain(0, true);
	double t_once[16], t_page[16];
	unsigned nr = args->quick ? 1 : 3;
	char row[96], size[32];
	uint8_t *heap;

	while (!(heap = iovm_dma_alloc(ctx, bytes, SZ_2M, 0)) && bytes > 16 * SZ_2M)
		bytes /= 2;
	if (!heap)
		die("iovm_dma_alloc", -ENOMEM);
	pages = bytes / SZ_2M;
	bench_progress("%s of heap into the kernel: at once, and a hugepage at a time",
		       bench_size(bytes, size, sizeof(size)));
	iovm_iova_t *per = calloc(pages, sizeof(*per));

	if (!per)
		die("calloc", -ENOMEM);
	at_once = per_page = 0;
	for (unsigned rep = 0; rep < nr; rep++) {
		iovm_iova_t iova;
		uint64_t t0;
		int ret;

		e0 = kernel_entries();
		t0 = bench_now_ns();
		if ((ret = iovm_domain_map_ptr(dom, heap, bytes, IOVM_MAP_READ | IOVM_MAP_WRITE, &iova)))
			die("iovm_domain_map_ptr", ret);
		t_once[rep] = (double)(bench_now_ns() - t0) / 1e6;
		at_once = kernel_entries() - e0;
		if ((ret = iovm_domain_unmap(dom, iova, bytes)))
			die("iovm_domain_unmap", ret);

		e0 = kernel_entries();
		t0 = bench_now_ns();
		for (uint64_t p = 0; p < pages; p++)
			if ((ret = iovm_domain_map_ptr(dom, heap + p * SZ_2M, SZ_2M, IOVM_MAP_READ | IOVM_MAP_WRITE,
						       &per[p])))
				die("iovm_domain_map_ptr", ret);
		t_page[rep] = (double)(bench_now_ns() - t0) / 1e6;
		per_page = kernel_entries() - e0;
		for (uint64_t p = 0; p < pages; p++)
			iovm_domain_unmap(dom, per[p], SZ_2M);
	}
	snprintf(row, sizeof(row), "kernel entries for %s of heap", size);
	bench_result(row, "entries", (double)at_once, "one per hugepage (DPDK)", (double)per_page, "ratio < 1");
	snprintf(row, sizeof(row), "map %s of heap into the kernel", size);
	bench_result(row, "ms", bench_median(t_once, nr), "a hugepage at a time", bench_median(t_page, nr), "report");
	bench_note("at the kernel's default budget of 65535 entries: %.0f GiB of heap mapped as iovm maps it, "
		   "%.0f GiB one hugepage at a time",
		   65535.0 * (double)bytes / (double)(at_once ? at_once : 1) / (double)(UINT64_C(1) << 30),
		   65535.0 * (double)bytes / (double)(per_page ? per_page : 1) / (double)(UINT64_C(1) << 30));
	free(per);
	iovm_dma_free(ctx, heap);
	domain_done(dom, true);
}

/* Map and unmap a 4 KiB buffer per I/O (the device is not asked to move it): kIO/s. */
static double map_per_io(uint32_t flags, uint64_t count, struct iovm_domain_stats *st, uint64_t *kernel_unmaps)
{
	struct iovm_device_info di0, di1;
	struct iovm_domain *dom = domain(flags, true);
	uint8_t *bufs = iovm_dma_alloc(ctx, 64 * 4096, 4096, 0);
	double v[16];
	unsigned nr = reps();

	if (!bufs)
		die("iovm_dma_alloc", -ENOMEM);
	iovm_device_query(dev, &di0);
	for (unsigned rep = 0; rep <= nr; rep++) {
		uint64_t t0 = bench_now_ns();

		for (uint64_t i = 0; i < count; i++) {
			iovm_iova_t iova;
			int ret = iovm_domain_map_ptr(dom, bufs + (i % 64) * 4096, 4096, IOVM_MAP_READ, &iova);

			if (ret)
				die("iovm_domain_map_ptr", ret);
			if ((ret = iovm_domain_unmap(dom, iova, 4096)))
				die("iovm_domain_unmap", ret);
		}
		if (rep)
			v[rep - 1] = (double)count / ((double)(bench_now_ns() - t0) / 1e9) / 1e3;
	}
	iovm_domain_flush(dom);
	iovm_domain_stats(dom, st);
	iovm_device_query(dev, &di1);
	*kernel_unmaps = di1.kernel_unmaps - di0.kernel_unmaps;
	iovm_dma_free(ctx, bufs);
	domain_done(dom, true);
	return bench_median(v, nr);
}

static void bench_map_per_io(void)
{
	struct iovm_domain_stats strict_st, deferred_st;
	uint64_t count = iters(4000), strict_calls, deferred_calls;
	double strict, deferred;

	bench_progress("map per I/O through VFIO: strict and deferred invalidation");
	strict = map_per_io(0, count, &strict_st, &strict_calls);
	deferred = map_per_io(IOVM_DOMAIN_DEFERRED, count, &deferred_st, &deferred_calls);
	bench_result("map, unmap per I/O through VFIO: deferred", "kIO/s", deferred, "strict invalidation", strict,
		     ">= 3x strict");
	bench_note("map per I/O through VFIO: deferred: %" PRIu64 " flushes covered %" PRIu64
		   " unmaps in %" PRIu64 " UNMAP_DMA calls (strict: %" PRIu64 ")",
		   deferred_st.flushes, deferred_st.flushed_unmaps, deferred_calls, strict_calls);
}

/*
 * The same map and unmap through each kernel interface, where the kernel
 * has both: iommufd's IOMMU_IOAS_MAP beside the group's VFIO_IOMMU_MAP_DMA.
 * Reopens the device (global @dev) through each in turn.
 */
static void bench_interfaces(const char *bdf)
{
	static const char *const prefix[2] = { "vfio-iommufd", "vfio-group" };
	double map4k[2], unmap4k[2], map2m[2], unmap2m[2];
	void *buf = iovm_dma_alloc(ctx, SZ_2M, SZ_2M, 0);
	char spec[320];
	int ret;

	if (!buf)
		die("iovm_dma_alloc", -ENOMEM);
	for (unsigned i = 0; i < 2; i++) {
		iovm_device_close(dev);
		dev = NULL;
		snprintf(spec, sizeof(spec), "%s:%s", prefix[i], bdf);
		if ((ret = iovm_device_open(ctx, spec, &dev))) {
			bench_note("%s: %s: no comparison of the kernel's interfaces", spec, iovm_strerror(ret));
			break;
		}
		bench_progress("map and unmap through %s", prefix[i]);
		map_unmap(true, buf, 4096, iters(2000), &map4k[i], &unmap4k[i]);
		map_unmap(true, buf, SZ_2M, iters(2000), &map2m[i], &unmap2m[i]);
		if (i == 1) {
			bench_result("map 4 KiB through iommufd", "ns", map4k[0], "the VFIO group (type1)", map4k[1],
				     "report");
			bench_result("unmap 4 KiB through iommufd", "ns", unmap4k[0], "the VFIO group (type1)",
				     unmap4k[1], "report");
			bench_result("map 2 MiB through iommufd", "ns", map2m[0], "the VFIO group (type1)", map2m[1],
				     "report");
			bench_result("unmap 2 MiB through iommufd", "ns", unmap2m[0], "the VFIO group (type1)",
				     unmap2m[1], "report");
		}
	}
	iovm_dma_free(ctx, buf);
}

int bench_vfio(const struct bench_args *a)
{
	struct iovm_device_info di;
	char spec[300];
	uint64_t last = 0;
	int ret;

	args = a;
	if (find_device(spec, sizeof(spec))) {
		fprintf(stderr, "iovm bench vfio: no device to assign (set IOVM_BENCH_DEVICE=vfio:BDF); `make vm-bench` "
			"runs this benchmark in a VM with QEMU's devices\n");
		return 1;
	}
	bench_hugepages_reserve(args->quick ? 32 : 520);
	ret = iovm_open(args->opts ? args->opts : "page_size=2M", &ctx);
	if (ret)
		die("iovm_open", ret);
	if ((ret = iovm_device_open(ctx, spec, &dev)))
		die(spec, ret);
	if ((ret = iovm_device_query(dev, &di)))
		die("iovm_device_query", ret);
	if (di.kind != IOVM_DEVICE_VFIO) {
		fprintf(stderr, "iovm bench vfio: %s is not behind an IOMMU\n", spec);
		iovm_device_close(dev);
		iovm_close(ctx);
		return 1;
	}
	/* Domains whose IOVAs the kernel can map from the start. */
	for (unsigned i = 0; i < di.nr_iova_ranges; i++)
		if (di.iova_ranges[i].last > last)
			last = di.iova_ranges[i].last;
	for (dma_bits = 32; dma_bits < 48 && last >> dma_bits;)
		dma_bits++;
	if (di.dma_avail < 0)
		bench_note("device %s through iommufd, which sets no budget on mappings", spec);
	else
		bench_note("device %s through the VFIO group; the kernel allows %" PRId64 " more mappings", spec,
			   (int64_t)di.dma_avail);
	bench_map_unmap();
	bench_entries();
	bench_map_per_io();
	/* A device named "vfio:" (either interface) is measured through both, where the kernel has both. */
	if (!strncmp(spec, "vfio:", 5))
		bench_interfaces(spec + 5);
	bench_report(args, "iovm bench vfio", reps());
	if (dev)
		iovm_device_close(dev);
	iovm_close(ctx);
	return 0;
}
