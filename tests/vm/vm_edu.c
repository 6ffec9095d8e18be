/* SPDX-License-Identifier: MIT */
/*
 * vm_edu.c - runs inside the VM test's guest: QEMU's edu device, a DMA
 * engine behind an emulated Intel IOMMU, driven through iovm's VFIO
 * backend. Every address the device is given is an IOVA iovm chose, and
 * every mapping reaches the kernel's IOMMU through the domain's mirror: a
 * DMA to anything iovm did not map (never mapped, unmapped, read-only) must
 * be blocked by the IOMMU and leave memory untouched.

 */
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vm_edu.h"

int main(void)
{
	struct iovm_ctx *ctx;
	struct iovm_device *dev;
	struct iovm_domain *dom;
	struct iovm_device_info di;
	struct iovm_mr *mr;
	iovm_iova_t a, b, ro, big_iova, mr_iova;
	char spec[300];
	uint16_t cmd;
	size_t bar_len;
	uint8_t *src, *dst, *big, *app;
	uint64_t entries;

	setvbuf(stdout, NULL, _IOLBF, 0);
	MUST(find_pci(EDU_VENDOR, EDU_DEVICE, spec, sizeof(spec)));
	printf("edu at %s\n", strchr(spec, ':') + 1);
	/* 2 MiB pages: the init script reserved some. */
	MUST(iovm_open("page_size=2M,log_level=notice", &ctx));
	MUST(iovm_device_open(ctx, spec, &dev));
	MUST(iovm_device_query(dev, &di));
	CHECK(di.kind == IOVM_DEVICE_VFIO, "a VFIO device behind an IOMMU (group %d)", di.iommu_group);
	for (unsigned i = 0; i < di.nr_iova_ranges; i++)
		printf("  kernel IOVA range %u: [%#lx, %#lx]\n", i, (unsigned long)di.iova_ranges[i].start,
		       (unsigned long)di.iova_ranges[i].last);
	check_iommu_api(&di);
	MUST(iovm_domain_create(ctx, NULL, &dom));
	MUST(iovm_device_attach(dev, dom, 0));

	/* Bus mastering, then the registers. */
	MUST(iovm_device_config_read(dev, 4, &cmd, 2));
	cmd |= 0x6;
	MUST(iovm_device_config_write(dev, 4, &cmd, 2));
	MUST(iovm_device_config_read(dev, 4, &cmd, 2));
	CHECK(cmd & 0x4, "bus mastering on (command %#x)", cmd);
	MUST(iovm_device_bar(dev, 0, (void **)&bar, &bar_len));
	CHECK(rd32(0) == 0x010000ed, "BAR0 mapped (%zu bytes): edu identification %#x", bar_len, rd32(0));

	/* Heap memory at IOVAs iovm chose. */
	src = iovm_dma_alloc(ctx, 4096, 4096, 0);
	dst = iovm_dma_zalloc(ctx, 4096, 4096, 0);
	MUST(!src || !dst ? -ENOMEM : 0);
	fill(src, 4096, 1);
	MUST(iovm_domain_map_ptr(dom, src, 4096, IOVM_MAP_READ | IOVM_MAP_WRITE, &a));
	MUST(iovm_domain_map_ptr(dom, dst, 4096, IOVM_MAP_READ | IOVM_MAP_WRITE, &b));
	CHECK(in_kernel_ranges(&di, a.addr, 4096) && in_kernel_ranges(&di, b.addr, 4096),
	      "IOVAs %#lx and %#lx inside the kernel's ranges", (unsigned long)a.addr, (unsigned long)b.addr);
	CHECK(edu_copy(a.addr, b.addr, 4096) && !memcmp(src, dst, 4096), "heap to device to heap: 4 KiB round trip");

	/* Unmapped, then DMA: blocked, memory untouched. */
	MUST(iovm_domain_unmap(dom, b, 4096));
	memset(dst, 0x5a, 4096);
	edu_dma(a.addr, EDU_BUF, CHUNK, false, false);
	edu_dma(EDU_BUF, b.addr, CHUNK, true, false);
	CHECK(all(dst, 4096, 0x5a), "DMA to an unmapped IOVA is blocked: memory untouched");

	/* Read-only: the device may read, not write. */
	memset(dst, 0x22, 4096);
	MUST(iovm_domain_map_ptr(dom, dst, 4096, IOVM_MAP_READ, &ro));
	fill(src, 4096, 2);
	CHECK(edu_dma(ro.addr, EDU_BUF, CHUNK, false, false) && edu_dma(EDU_BUF, a.addr, CHUNK, true, false) &&
		      all(src, CHUNK, 0x22),
	      "the device reads a read-only mapping");
	fill(src, 4096, 3);
	edu_dma(a.addr, EDU_BUF, CHUNK, false, false);
	edu_dma(EDU_BUF, ro.addr, CHUNK, true, false);
	CHECK(all(dst, 4096, 0x22), "the device cannot write a read-only mapping");
	MUST(iovm_domain_unmap(dom, ro, 4096));

	/* 2 MiB pages: the last 4 KiB of one, and a partial unmap that splits a kernel entry. */
	big = iovm_dma_alloc(ctx, 8u << 20, 2u << 20, 0);
	MUST(big ? 0 : -ENOMEM);
	fill(big, 8u << 20, 4);
	MUST(iovm_device_query(dev, &di));
	entries = di.kernel_mappings;
	MUST(iovm_domain_map_ptr(dom, big, 8u << 20, IOVM_MAP_READ | IOVM_MAP_WRITE, &big_iova));
	MUST(iovm_device_query(dev, &di));
	printf("  8 MiB of 2 MiB pages: %lu kernel entries\n", (unsigned long)(di.kernel_mappings - entries));
	CHECK(di.kernel_mappings - entries == 1, "8 MiB of hugepages mapped at once: one kernel entry");
	CHECK(edu_copy(big_iova.addr + (2u << 20) - 4096, a.addr, 4096) &&
		      !memcmp(src, big + (2u << 20) - 4096, 4096),
	      "DMA from the last 4 KiB of a hugepage");
	MUST(iovm_domain_unmap(dom, IOVM_IOVA(big_iova.addr + (2u << 20)), 2u << 20));
	MUST(iovm_device_query(dev, &di));
	printf("  after unmapping the second hugepage: %lu entries, %lu splits\n",
	       (unsigned long)(di.kernel_mappings - entries), (unsigned long)di.kernel_splits);
	memset(big + (2u << 20), 0x77, 4096);
	memset(src, 0x99, 4096);
	edu_dma(a.addr, EDU_BUF, CHUNK, false, false);
	edu_dma(EDU_BUF, big_iova.addr + (2u << 20), CHUNK, true, false);
	CHECK(all(big + (2u << 20), 4096, 0x77), "a partial unmap blocks the part unmapped");
	CHECK(edu_copy(a.addr, big_iova.addr + (4u << 20), 4096) && all(big + (4u << 20), 4096, 0x99),
	      "and leaves the rest mapped");

	/* The application's own memory, registered. */
	app = aligned_alloc(4096, 8192);
	MUST(app ? 0 : -ENOMEM);
	memset(app, 0, 8192);
	MUST(iovm_mr_reg(dom, app, 8192, IOVM_ACCESS_LOCAL_WRITE, &mr));
	MUST(iovm_mr_iova(mr, app, 8192, &mr_iova));
	fill(src, 4096, 5);
	CHECK(edu_copy(a.addr, mr_iova.addr + 4096, 4096) && !memcmp(app + 4096, src, 4096),
	      "DMA into a registered malloc buffer at %#lx", (unsigned long)mr_iova.addr);
	MUST(iovm_mr_dereg(mr));
	memset(app, 0x44, 8192);
	edu_dma(a.addr, EDU_BUF, CHUNK, false, false);
	edu_dma(EDU_BUF, mr_iova.addr, CHUNK, true, false);
	CHECK(all(app, 8192, 0x44), "deregistered: blocked");

	/* An MSI on completion, through an eventfd. */
	{
		int efd = eventfd(0, EFD_NONBLOCK);
		struct pollfd pf = { .fd = efd, .events = POLLIN };
		uint64_t n = 0;
		int ret = iovm_device_msi(dev, efd);

		CHECK(!ret, "MSI to an eventfd (%s)", ret ? strerror(-ret) : "ok");
		edu_dma(a.addr, EDU_BUF, 64, false, true);
		ret = poll(&pf, 1, 5000);
		if (ret > 0 && read(efd, &n, sizeof(n)) != sizeof(n))
			n = 0;
		CHECK(ret > 0 && n >= 1, "the interrupt came (%lu)", (unsigned long)n);
		wr32(0x64, rd32(0x24));
		iovm_device_msi(dev, -1);
		close(efd);
	}

	kernel_report_detach(dev);
	MUST(iovm_device_query(dev, &di));
	CHECK(di.kernel_mappings == 0, "detached: nothing left in the kernel");
	MUST(iovm_device_close(dev));
	iovm_domain_destroy(dom);
	iovm_close(ctx);
	free(app);
	return vm_result();
}
