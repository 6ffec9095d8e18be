/* SPDX-License-Identifier: MIT */
/*
 * spdk_port.c - a driver written against SPDK's env layer, ported to iovm
 * by renaming: spdk_ becomes iovm_, SPDK_ becomes IOVM_, and each call is
 * given the context (and returns an errno where SPDK's returned nothing).
 *
 *   SPDK                                    iovm (iovm/memmap.h, iovm/mem.h)
 *   spdk_mem_map_alloc(dflt, &ops, cb)      iovm_mem_map_alloc(ctx, dflt, &ops, cb, &map)
 *   spdk_mem_map_free(&map)                 iovm_mem_map_free(&map)
 *   spdk_mem_map_set_translation(...)       iovm_mem_map_set_translation(...)
 *   spdk_mem_map_clear_translation(...)     iovm_mem_map_clear_translation(...)
 *   spdk_mem_map_translate(map, va, &len)   iovm_mem_map_translate(map, va, &len)
 *   spdk_mem_register(va, len)              iovm_mem_register(ctx, va, len)
 *   spdk_mem_unregister(va, len)            iovm_mem_unregister(ctx, va, len)
 *   spdk_vtophys(buf, &len)                 iovm_vtophys(ctx, buf, &len)
 *   SPDK_VTOPHYS_ERROR                      IOVM_VTOPHYS_ERROR
 *   spdk_dma_zmalloc(len, align, NULL)      iovm_dma_zalloc(ctx, len, align, 0)
 *   spdk_dma_free(buf)                      iovm_dma_free(ctx, buf)
 *   are_contiguous(tr1, tr2)                are_contiguous(cb_ctx, tr1, tr2)
 *
 * The driver keeps, as SPDK's RDMA transport keeps its memory keys, a map
 * from every 2 MiB of DMA memory to the region it belongs to; it builds
 * its descriptors as SPDK's NVMe driver builds PRP lists, one per
 * physically contiguous piece that spdk_vtophys() reports; and a device
 * without an IOMMU (iovm's software DMA engine in an identity domain)
 * moves the data.
 *
 *   cc spdk_port.c $(pkg-config --cflags --libs iovm)
 */
/* MAP_ANONYMOUS, which -std=c17 alone hides. */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include <iovm.h>

#define GRANULE IOVM_MEM_MAP_GRANULE
#define APP_LEN (4 * GRANULE)
#define IO_LEN (3 * GRANULE)  /* crosses the application buffer's granules */
#define NO_REGION 0

struct driver {
	struct iovm_ctx *ctx;
	struct iovm_mem_map *regions;
	uint64_t next_region;
	struct iovm_queue *q;
};

/* The notify callback, unchanged from SPDK but for its name: tag each region as it appears. */
static int region_notify(void *cb_ctx, struct iovm_mem_map *map, enum iovm_mem_map_notify_action action,
			 void *vaddr, size_t size)
{
	struct driver *drv = cb_ctx;

	switch (action) {
	case IOVM_MEM_MAP_NOTIFY_REGISTER:
		return iovm_mem_map_set_translation(map, (uint64_t)(uintptr_t)vaddr, size, ++drv->next_region);
	case IOVM_MEM_MAP_NOTIFY_UNREGISTER:
		return iovm_mem_map_clear_translation(map, (uint64_t)(uintptr_t)vaddr, size);
	}
	return -EINVAL;
}

/* One region goes on while the tag stays the same. */
static int same_region(void *cb_ctx, uint64_t tr1, uint64_t tr2)
{
	(void)cb_ctx;
	return tr1 == tr2;
}

static const struct iovm_mem_map_ops region_ops = {
	.notify = region_notify,
	.are_contiguous = same_region,
};

/* Copy @len bytes from @src to @dst by DMA, one descriptor per physically contiguous piece of both. */
static int dma_copy(struct driver *drv, uint8_t *dst, const uint8_t *src, uint64_t len)
{
	uint64_t done = 0;
	unsigned pieces = 0;

	while (done < len) {
		uint64_t slen = len - done, dlen = len - done, n;
		uint64_t spa = iovm_vtophys(drv->ctx, src + done, &slen);
		uint64_t dpa = iovm_vtophys(drv->ctx, dst + done, &dlen);
		struct iovm_desc d;
		struct iovm_cqe cqe;
		int ret;

		if (spa == IOVM_VTOPHYS_ERROR || dpa == IOVM_VTOPHYS_ERROR)
			return -EFAULT;
		n = slen < dlen ? slen : dlen;
		d = (struct iovm_desc){ .op = IOVM_OP_COPY, .src = spa, .dst = dpa, .len = (uint32_t)n, .tag = pieces };
		ret = iovm_queue_submit(drv->q, &d);
		if (ret)
			return ret;
		if (iovm_queue_process(drv->q, 1) != 1 || iovm_queue_reap(drv->q, &cqe, 1) != 1 ||
		    cqe.status != IOVM_STATUS_SUCCESS)
			return -EIO;
		done += n;
		pieces++;
	}
	printf("copied %" PRIu64 " bytes in %u descriptor(s)\n", len, pieces);
	return 0;
}

int main(void)
{
	struct iovm_domain_attr attr = { .type = IOVM_DOMAIN_IDENTITY };
	struct iovm_queue_attr qattr = { .depth = 16, .flags = IOVM_QUEUE_POLLED };
	struct driver drv = { 0 };
	struct iovm_domain *dom = NULL;
	struct iovm_device *dev = NULL;
	uint8_t *raw = MAP_FAILED, *app = NULL, *payload = NULL;
	uint64_t region, len;
	int ret, status = 1;

	ret = iovm_open(NULL, &drv.ctx);
	if (ret) {
		fprintf(stderr, "iovm_open: %s: %s\n", iovm_strerror(ret), iovm_error_detail());
		return 1;
	}
	if ((ret = iovm_domain_create(drv.ctx, &attr, &dom)) || (ret = iovm_device_open(drv.ctx, "sw", &dev)) ||
	    (ret = iovm_device_attach(dev, dom, IOVM_PASID_NONE)) || (ret = iovm_queue_create(dev, &qattr, &drv.q))) {
		fprintf(stderr, "device: %s: %s\n", iovm_strerror(ret), iovm_error_detail());
		goto out;
	}
	/* spdk_mem_map_alloc(): told at once of the DMA memory there is, later of every change. */
	ret = iovm_mem_map_alloc(drv.ctx, NO_REGION, &region_ops, &drv, &drv.regions);
	if (ret) {
		fprintf(stderr, "map: %s: %s\n", iovm_strerror(ret), iovm_error_detail());
		goto out;
	}

	/* spdk_dma_zmalloc(): the heap's new memory is a region the map hears of before it returns. */
	payload = iovm_dma_zalloc(drv.ctx, IO_LEN, 4096, 0);
	if (!payload) {
		perror("iovm_dma_zalloc");
		goto out;
	}
	for (uint64_t i = 0; i < IO_LEN; i++)
		payload[i] = (uint8_t)(i * 7);

	/* spdk_mem_register(): the application's own memory, 2 MiB aligned, as SPDK wants it. */
	raw = mmap(NULL, APP_LEN + GRANULE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED) {
		perror("mmap");
		goto out;
	}
	app = (uint8_t *)(((uintptr_t)raw + GRANULE - 1) & ~(uintptr_t)(GRANULE - 1));
	ret = iovm_mem_register(drv.ctx, app, APP_LEN);
	if (ret) {
		fprintf(stderr, "register: %s: %s\n", iovm_strerror(ret), iovm_error_detail());
		app = NULL;
		goto out;
	}
	/* spdk_mem_map_translate(): its region, and how far the region goes from there. */
	len = APP_LEN;
	region = iovm_mem_map_translate(drv.regions, (uint64_t)(uintptr_t)app + 100, &len);
	printf("application buffer: region %" PRIu64 ", %" PRIu64 " bytes on from byte 100\n", region, len);
	if (region == NO_REGION || len != APP_LEN - 100)
		goto out;

	/* The I/O: the device copies the payload into the application's buffer. */
	ret = dma_copy(&drv, app + 4096, payload, IO_LEN);
	if (ret || memcmp(app + 4096, payload, IO_LEN)) {
		fprintf(stderr, "copy: %s\n", ret ? iovm_strerror(ret) : "data differ");
		goto out;
	}
	status = 0;
out:
	/* spdk_mem_unregister(), spdk_mem_map_free(): the map hears the region go, then goes itself. */
	if (app && iovm_mem_unregister(drv.ctx, app, APP_LEN))
		status = 1;
	if (app && iovm_mem_map_translate(drv.regions, (uint64_t)(uintptr_t)app, NULL) != NO_REGION)
		status = 1;
	if (raw != MAP_FAILED)
		munmap(raw, APP_LEN + GRANULE);
	if (payload)
		iovm_dma_free(drv.ctx, payload);
	iovm_mem_map_free(&drv.regions);
	if (drv.q)
		iovm_queue_destroy(drv.q);
	if (dev)
		iovm_device_close(dev);
	if (dom)
		iovm_domain_destroy(dom);
	iovm_close(drv.ctx);
	return status;
}
