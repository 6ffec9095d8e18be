/* SPDX-License-Identifier: MIT */
/*
 * iommu_copy.c - a device behind an IOMMU, on iovm's software platform: a
 * domain that follows the DMA heap, a software DMA engine attached to it,
 * a copy by IOVA through a queue, and what happens when the device reaches
 * for memory the domain no longer maps.
 *
 *   cc iommu_copy.c $(pkg-config --cflags --libs iovm)
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <iovm.h>

#define LEN 4096

/* Submit one descriptor, run it on this thread (a polled queue), and return its completion. */
static int run(struct iovm_queue *q, struct iovm_desc d, struct iovm_cqe *cqe)
{
	int ret = iovm_queue_submit(q, &d);

	if (ret)
		return ret;
	if (iovm_queue_process(q, 1) != 1)
		return -1;
	return iovm_queue_reap(q, cqe, 1) == 1 ? 0 : -1;
}

int main(void)
{
	struct iovm_domain_attr attr = { .type = IOVM_DOMAIN_MANAGED, .flags = IOVM_DOMAIN_FOLLOW_HEAP };
	struct iovm_queue_attr qattr = { .depth = 64, .flags = IOVM_QUEUE_POLLED };
	iovm_iova_t src_iova, dst_iova, lone_iova;
	struct iovm_domain *dom = NULL;
	struct iovm_device *dev = NULL;
	struct iovm_queue *q = NULL;
	uint8_t *src, *dst, *lone;
	struct iovm_fault fault;
	struct iovm_ctx *ctx;
	struct iovm_cqe cqe;
	iovm_pa_t lone_pa;
	int ret, status = 1;

	ret = iovm_open(NULL, &ctx);
	if (ret) {
		fprintf(stderr, "iovm_open: %s: %s\n", iovm_strerror(ret), iovm_error_detail());
		return 1;
	}
	/* The domain maps every heap page as it is committed: no map call per buffer. */
	if ((ret = iovm_domain_create(ctx, &attr, &dom)) || (ret = iovm_device_open(ctx, "sw", &dev)) ||
	    (ret = iovm_device_attach(dev, dom, IOVM_PASID_NONE)) || (ret = iovm_queue_create(dev, &qattr, &q))) {
		fprintf(stderr, "set-up: %s: %s\n", iovm_strerror(ret), iovm_error_detail());
		goto out;
	}
	src = iovm_dma_alloc(ctx, LEN, 64, 0);
	dst = iovm_dma_zalloc(ctx, LEN, 64, 0);
	if (!src || !dst || iovm_dma_iova(dom, src, &src_iova) || iovm_dma_iova(dom, dst, &dst_iova)) {
		fprintf(stderr, "buffers: %s\n", iovm_error_detail());
		goto out;
	}
	memset(src, 0xab, LEN);
	printf("source at IOVA %#" PRIx64 ", destination at IOVA %#" PRIx64 "\n", src_iova.addr,
	       dst_iova.addr);

	/* The engine reads and writes through the IOMMU, as hardware would. */
	ret = run(q, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = src_iova.addr, .dst = dst_iova.addr,
					 .len = LEN, .tag = 1 },
		  &cqe);
	if (ret || cqe.status != IOVM_STATUS_SUCCESS || memcmp(src, dst, LEN)) {
		fprintf(stderr, "copy failed: %d, status %u\n", ret, cqe.status);
		goto out;
	}
	printf("copied %u bytes through the IOMMU\n", cqe.bytes_completed);

	/* An explicit, read-only mapping, then unmapped: the device faults, memory is untouched. */
	lone = iovm_dma_alloc(ctx, 4096, 4096, 0);
	if (!lone || iovm_dma_pa(ctx, lone, &lone_pa)) {
		fprintf(stderr, "buffer: %s\n", iovm_error_detail());
		goto out;
	}
	memset(lone, 0x11, 4096);
	lone_iova = IOVM_IOVA_ANY;
	if ((ret = iovm_domain_map(dom, &lone_iova, lone_pa, 4096, IOVM_MAP_READ))) {
		fprintf(stderr, "map: %s\n", iovm_strerror(ret));
		goto out;
	}
	ret = run(q, (struct iovm_desc){ .op = IOVM_OP_FILL, .dst = lone_iova.addr, .len = 64, .tag = 2 }, &cqe);
	if (ret || cqe.status != IOVM_STATUS_PAGE_FAULT || lone[0] != 0x11) {
		fprintf(stderr, "a write to a read-only mapping was not refused\n");
		goto out;
	}
	if (iovm_domain_fault_pop(dom, &fault) == 0)
		printf("write to read-only IOVA %#" PRIx64 ": fault, reason %u (permission)\n", fault.iova.addr,
		       fault.reason);
	iovm_domain_unmap(dom, lone_iova, 4096);
	ret = run(q, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = lone_iova.addr, .dst = dst_iova.addr,
					 .len = 64, .tag = 3 },
		  &cqe);
	if (ret || cqe.status != IOVM_STATUS_PAGE_FAULT) {
		fprintf(stderr, "a read after unmap was not refused\n");
		goto out;
	}
	printf("read after unmap: fault, %u bytes done\n", cqe.bytes_completed);
	iovm_dma_free(ctx, lone);
	iovm_dma_free(ctx, src);
	iovm_dma_free(ctx, dst);
	status = 0;
out:
	if (q)
		iovm_queue_destroy(q);
	if (dev)
		iovm_device_close(dev);
	if (dom)
		iovm_domain_destroy(dom);
	iovm_close(ctx);
	return status;
}
