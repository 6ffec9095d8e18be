/* SPDX-License-Identifier: MIT */
/*
 * vm_noiommu.c - runs inside the VM test's second guest, which has no
 * IOMMU: VFIO's no-IOMMU mode (vfio.enable_unsafe_noiommu_mode=1), as on
 * machines without one. Nothing translates for the device: it is given
 * host physical addresses of hugepage memory, which iovm reads from
 * pagemap (host_pa=on), and there is no domain to attach.
 *
 * Checked: the device opens as a no-IOMMU VFIO device; attaching a domain
 * is refused; QEMU's edu device copies from one iovm zone to another and
 * from heap memory, at the host physical addresses iovm reports.
 */
#include "vm_edu.h"

int main(void)
{
	struct iovm_ctx *ctx;
	struct iovm_device *dev;
	struct iovm_domain *dom;
	struct iovm_device_info di;
	struct iovm_dma_xlate x;
	const struct iovm_zone *za, *zb;
	char spec[300];
	size_t bar_len;
	uint16_t cmd;
	uint8_t *heap;

	setvbuf(stdout, NULL, _IOLBF, 0);
	MUST(find_pci(EDU_VENDOR, EDU_DEVICE, spec, sizeof(spec)));
	printf("edu at %s, no IOMMU\n", spec + 5);
	MUST(iovm_open("page_size=2M,host_pa=on,log_level=notice", &ctx));
	MUST(iovm_device_open(ctx, spec, &dev));
	MUST(iovm_device_query(dev, &di));
	CHECK(di.kind == IOVM_DEVICE_VFIO_NOIOMMU, "a no-IOMMU VFIO device (kind %d)", (int)di.kind);
	MUST(iovm_domain_create(ctx, NULL, &dom));
	CHECK(iovm_device_attach(dev, dom, 0) < 0, "attaching a domain is refused: nothing would translate");
	MUST(iovm_device_config_read(dev, 4, &cmd, 2));
	cmd |= 0x6;
	MUST(iovm_device_config_write(dev, 4, &cmd, 2));
	MUST(iovm_device_bar(dev, 0, (void **)&bar, &bar_len));
	CHECK(*(volatile uint32_t *)bar == 0x010000ed, "BAR0 mapped: edu identification");

	/* Zones: physically contiguous, their host physical addresses known. */
	MUST(iovm_zone_reserve(ctx, "noiommu.a", 4096, 4096, 0, &za));
	MUST(iovm_zone_reserve(ctx, "noiommu.b", 4096, 4096, 0, &zb));
	CHECK(za->hpa.addr != IOVM_ADDR_INVALID && zb->hpa.addr != IOVM_ADDR_INVALID,
	      "zones at host physical %#lx and %#lx", (unsigned long)za->hpa.addr, (unsigned long)zb->hpa.addr);
	fill(za->va, 4096, 11);
	CHECK(edu_copy(za->hpa.addr, zb->hpa.addr, 4096) && !memcmp(za->va, zb->va, 4096),
	      "zone to device to zone at host physical addresses");

	/* Heap memory on a hugepage: its host physical address from iovm_dma_xlate(). */
	heap = iovm_dma_alloc(ctx, 8192, 4096, 0);
	MUST(heap ? 0 : -ENOMEM);
	MUST(iovm_dma_xlate(ctx, heap, &x));
	CHECK(x.hpa.addr != IOVM_ADDR_INVALID && x.hpa_contig >= 8192 && x.page_size == (2u << 20),
	      "heap memory on a 2 MiB page at host physical %#lx", (unsigned long)x.hpa.addr);
	memset(heap, 0, 8192);
	CHECK(edu_copy(za->hpa.addr, x.hpa.addr + 4096, 4096) && !memcmp(heap + 4096, za->va, 4096) &&
		      all(heap, 4096, 0),
	      "the device writes the heap where iovm said, and nowhere else");

	iovm_dma_free(ctx, heap);
	MUST(iovm_device_close(dev));
	iovm_domain_destroy(dom);
	iovm_close(ctx);
	return vm_result();
}
