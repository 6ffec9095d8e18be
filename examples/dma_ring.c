/* SPDX-License-Identifier: MIT */
/*
 * dma_ring.c - the shape of a user-space driver's receive path on iovm:
 * a descriptor ring in a named zone, packet buffers from the DMA heap, the
 * device addresses a NIC would be given, and the way back from the address
 * a completion reports to the buffer it names.
 *
 *   cc dma_ring.c $(pkg-config --cflags --libs iovm)
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <iovm.h>

#define RING_SIZE 256
#define BUF_SIZE 2048

struct rx_desc {
	uint64_t buf_addr; /* device address of the packet buffer */
	uint32_t len;
	uint32_t flags;
};

int main(void)
{
	const struct iovm_zone *ring_zone;
	void *bufs[RING_SIZE];
	struct rx_desc *ring;
	struct iovm_ctx *ctx;
	int ret;

	ret = iovm_open(NULL, &ctx);
	if (ret) {
		fprintf(stderr, "iovm_open: %s: %s\n", iovm_strerror(ret), iovm_error_detail());
		return 1;
	}
	/* The ring: contiguous, so the device takes one base address. */
	ret = iovm_zone_reserve(ctx, "rxq0-ring", RING_SIZE * sizeof(*ring), 4096, 0, &ring_zone);
	if (ret < 0) {
		fprintf(stderr, "zone: %s\n", iovm_strerror(ret));
		return 1;
	}
	ring = ring_zone->va;
	/* Buffers that never cross a 4 KiB boundary, as many NICs require. */
	for (int i = 0; i < RING_SIZE; i++) {
		iovm_pa_t pa;

		bufs[i] = iovm_dma_alloc(ctx, BUF_SIZE, 64, IOVM_DMA_BOUNDARY(12));
		if (!bufs[i] || iovm_dma_pa(ctx, bufs[i], &pa)) {
			fprintf(stderr, "buffer %d: %s\n", i, strerror(errno));
			return 1;
		}
		ring[i].buf_addr = pa.addr;
		ring[i].len = BUF_SIZE;
	}
	printf("ring at device address %#" PRIx64 ", %d buffers\n", ring_zone->pa.addr, RING_SIZE);

	/* A completion names a device address: find the buffer, as the driver would. */
	for (int i = 0; i < RING_SIZE; i++) {
		void *buf = iovm_dma_ptr(ctx, IOVM_PA(ring[i].buf_addr));

		if (buf != bufs[i]) {
			fprintf(stderr, "descriptor %d: %#" PRIx64 " leads to %p, not %p\n", i,
				ring[i].buf_addr, buf, bufs[i]);
			return 1;
		}
	}
	printf("every completion address leads back to its buffer\n");

	for (int i = 0; i < RING_SIZE; i++)
		iovm_dma_free(ctx, bufs[i]);
	iovm_zone_free(ctx, ring_zone);
	iovm_close(ctx);
	return 0;
}
