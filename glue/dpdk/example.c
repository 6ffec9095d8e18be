/* SPDX-License-Identifier: MIT */
/*
 * example.c - a DPDK application whose mbufs are iovm memory: an external
 * heap on iovm's DMA heap, a pool of mbufs on it, and the IOVA a driver
 * would put in a descriptor, which is iovm's address of the buffer.
 *
 *   cc example.c $(pkg-config --cflags --libs iovm-dpdk)
 *
 * EAL runs with --no-huge: DPDK's own memory is not used for the packets.
 * Extra EAL arguments may follow on the command line.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_mbuf.h>

#include <iovm.h>
#include <iovm_dpdk.h>

#define NB_MBUFS 8191
#define BURST 32

int main(int argc, char **argv)
{
	char *eal[32] = { argv[0], "--no-huge", "-m", "64", "--no-pci", "--no-telemetry",
			  "--no-shconf", "--log-level=lib.*:error" };
	int n = 8, ret, status = 1;
	struct iovm_dpdk_heap *heap = NULL;
	struct iovm_dpdk_heap_stats st;
	struct rte_mempool *mp = NULL;
	struct rte_mbuf *burst[BURST];
	struct iovm_ctx *ctx;

	for (int i = 1; i < argc && n < 31; i++)
		eal[n++] = argv[i];
	ret = iovm_open(NULL, &ctx);
	if (ret) {
		fprintf(stderr, "iovm_open: %s: %s\n", iovm_strerror(ret), iovm_error_detail());
		return 1;
	}
	if (rte_eal_init(n, eal) < 0) {
		fprintf(stderr, "rte_eal_init: %s\n", rte_strerror(rte_errno));
		goto close_iovm;
	}
	/*
	 * No domain: DPDK's IOVAs are iovm's PAs (host PAs for hugepages as
	 * root, see iovm_open()). With a device behind an IOMMU, pass the
	 * domain it is attached to, one that follows the heap.
	 */
	ret = iovm_dpdk_heap_create(ctx, NULL, "iovm", 0, 0, 0, &heap);
	if (ret) {
		fprintf(stderr, "iovm_dpdk_heap_create: %s\n", iovm_strerror(ret));
		goto cleanup_eal;
	}
	/* The pool grows the heap when it needs more than the heap holds. */
	mp = iovm_dpdk_pktmbuf_pool_create(heap, "rx", NB_MBUFS, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE);
	if (!mp) {
		fprintf(stderr, "mbuf pool: %s\n", rte_strerror(rte_errno));
		goto destroy_heap;
	}
	iovm_dpdk_heap_stats(heap, &st);
	printf("heap on socket %d: %u chunks, %" PRIu64 " MiB of iovm memory in DPDK pages of %" PRIu64
	       " KiB\n",
	       iovm_dpdk_heap_socket(heap), st.chunks, st.bytes >> 20, st.page_size >> 10);

	if (rte_pktmbuf_alloc_bulk(mp, burst, BURST)) {
		fprintf(stderr, "no mbufs\n");
		goto free_pool;
	}
	for (int i = 0; i < BURST; i++) {
		struct iovm_dma_xlate x;

		/* What a driver writes into an RX descriptor: DPDK's IOVA, iovm's address. */
		if (iovm_dma_xlate(ctx, rte_pktmbuf_mtod(burst[i], void *), &x) ||
		    x.pa.addr != rte_pktmbuf_iova(burst[i])) {
			fprintf(stderr, "mbuf %d: buf_iova is not iovm's PA\n", i);
			rte_pktmbuf_free_bulk(burst, BURST);
			goto free_pool;
		}
		if (i < 3)
			printf("mbuf %d: data at %p, iova %#" PRIx64 " (%s PA)\n", i,
			       rte_pktmbuf_mtod(burst[i], void *), (uint64_t)rte_pktmbuf_iova(burst[i]),
			       x.flags & IOVM_XLATE_PA_REAL ? "host" : "emulated");
	}
	rte_pktmbuf_free_bulk(burst, BURST);
	printf("%d mbufs: buf_iova is iovm's PA for every one\n", BURST);
	status = 0;
free_pool:
	rte_mempool_free(mp);
destroy_heap:
	/* Everything allocated on the heap is freed: the memory goes back to iovm. */
	ret = iovm_dpdk_heap_destroy(heap);
	if (ret) {
		fprintf(stderr, "iovm_dpdk_heap_destroy: %s\n", iovm_strerror(ret));
		status = 1;
	}
cleanup_eal:
	rte_eal_cleanup();
close_iovm:
	iovm_close(ctx);
	return status;
}
