/* SPDX-License-Identifier: MIT */
/*
 * devsrv_client.c - a client of `iovm device-server`, for the command's
 * test: it attaches to the share, opens a queue on the device process,
 * maps two buffers of its own and has the device copy COPIES times from
 * one to the other (a different stretch and pattern each time), checking
 * every copy byte for byte.
 *
 *	devsrv_client SHARE DEVICE COPIES
 *
 * Prints "copies N ok" and exits 0; 1 with what failed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <iovm.h>

#define BUF (64u * 1024)

static int fail(const char *what, int err)
{
	fprintf(stderr, "devsrv_client: %s: %s: %s\n", what, iovm_strerror(err), iovm_error_detail());
	return 1;
}

/* Submit @d and wait for its completion: its status, or a negative errno. */
static int run(struct iovm_rqueue *q, const struct iovm_desc *d)
{
	struct iovm_cqe cqe;
	int ret = iovm_rqueue_submit(q, d);

	if (ret)
		return ret;
	/* Bounded: about 10 s of waiting for a device process that went quiet. */
	for (unsigned long spins = 0; spins < 1000000; spins++) {
		ret = iovm_rqueue_reap(q, &cqe, 1);
		if (ret < 0)
			return ret;
		if (ret)
			return cqe.tag == d->tag ? cqe.status : -EPROTO;
		usleep(10);
	}
	return -ETIMEDOUT;
}

static int copies(struct iovm_ctx *ctx, struct iovm_rqueue *q, unsigned n)
{
	uint8_t *src = iovm_dma_alloc(ctx, BUF, 4096, 0), *dst = iovm_dma_zalloc(ctx, BUF, 4096, 0);
	iovm_iova_t is, id;
	int ret = -ENOMEM, undo;

	if (!src || !dst) {
		fail("iovm_dma_alloc", -ENOMEM);
		goto free_bufs;
	}
	if ((ret = iovm_rqueue_map(q, src, BUF, IOVM_MAP_READ, &is))) {
		fail("iovm_rqueue_map (source)", ret);
		goto free_bufs;
	}
	if ((ret = iovm_rqueue_map(q, dst, BUF, IOVM_MAP_READ | IOVM_MAP_WRITE, &id))) {
		fail("iovm_rqueue_map (destination)", ret);
		goto unmap_src;
	}
	for (unsigned i = 0; i < n; i++) {
		uint32_t off = (i * 4099u) % (BUF / 2), len = 1 + (i * 7919u) % (BUF / 2);
		struct iovm_desc d = { .op = IOVM_OP_COPY, .src = is.addr + off, .dst = id.addr + off, .len = len,
				       .tag = i + 1 };

		for (uint32_t b = 0; b < len; b++)
			src[off + b] = (uint8_t)(i * 31 + b);
		ret = run(q, &d);
		if (ret != IOVM_STATUS_SUCCESS) {
			fprintf(stderr, "devsrv_client: copy %u: status %d\n", i, ret);
			ret = -EIO;
			goto unmap_dst;
		}
		if (memcmp(src + off, dst + off, len)) {
			fprintf(stderr, "devsrv_client: copy %u (%u bytes at %u): the destination differs\n", i,
				len, off);
			ret = -EIO;
			goto unmap_dst;
		}
	}
	ret = 0;
unmap_dst:
	if ((undo = iovm_rqueue_unmap(q, id, BUF)) && !ret)
		ret = fail("iovm_rqueue_unmap", undo);
unmap_src:
	if ((undo = iovm_rqueue_unmap(q, is, BUF)) && !ret)
		ret = fail("iovm_rqueue_unmap", undo);
free_bufs:
	iovm_dma_free(ctx, dst);
	iovm_dma_free(ctx, src);
	return ret;
}

int main(int argc, char **argv)
{
	struct iovm_rqueue *q;
	struct iovm_ctx *ctx;
	int ret, undo;
	unsigned n;

	if (argc != 4 || (n = (unsigned)atoi(argv[3])) == 0) {
		fprintf(stderr, "usage: devsrv_client SHARE DEVICE COPIES\n");
		return 2;
	}
	if ((ret = iovm_attach(argv[1], NULL, &ctx)))
		return fail("iovm_attach", ret);
	if ((ret = iovm_rqueue_open(ctx, argv[2], 64, &q))) {
		fail("iovm_rqueue_open", ret);
		iovm_close(ctx);
		return 1;
	}
	ret = copies(ctx, q, n);
	if ((undo = iovm_rqueue_close(q)) && !ret)
		ret = fail("iovm_rqueue_close", undo);
	if ((undo = iovm_close(ctx)) && !ret)
		ret = fail("iovm_close", undo);
	if (ret)
		return 1;
	printf("copies %u ok\n", n);
	return 0;
}
