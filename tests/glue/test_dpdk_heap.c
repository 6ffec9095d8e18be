/* SPDX-License-Identifier: MIT */
/*
 * test_dpdk_heap.c - glue/dpdk in a DPDK 22.11 program: an rte_malloc
 * external heap on iovm memory hands out iovm memory whose IOVA, as DPDK
 * gives it (rte_malloc_virt2iova(), the memseg of any interior byte,
 * mbuf->buf_iova), is iovm's PA of that byte, or its IOVA in a domain that
 * follows the heap; a software DMA engine behind that domain copies
 * between two mbufs by their buf_iova. The heap grows for an allocation
 * larger than what it holds and for a pool of mbufs, gives back idle
 * chunks only, and is not destroyed while anything is allocated on it.
 *
 * EAL runs with --no-huge (anonymous memory, no hugetlbfs, no PCI, no
 * shared config): it starts as root and unprivileged alike; where it does
 * not start, the test is skipped, saying why.
 */
#include <stdbool.h>

/* First: DPDK defines container_of only where it is not defined yet. */
#include "harness.h"

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_memory.h>
#include <rte_mempool.h>

#include <iovm.h>
#include <iovm_dpdk.h>

#define MiB ((size_t)1 << 20)
#define CHUNK (4 * MiB)

static struct iovm_ctx *ctx;

/* iovm's PA of @p: what DPDK must see without a domain. */
static uint64_t pa_of(const void *p)
{
	struct iovm_dma_xlate x;

	CHECK_OK(iovm_dma_xlate(ctx, p, &x));
	return x.pa.addr;
}

static uint64_t iova_of(const struct iovm_domain *dom, const void *p)
{
	iovm_iova_t iova;

	if (!dom)
		return pa_of(p);
	CHECK_OK(iovm_dma_iova(dom, p, &iova));
	return iova.addr;
}

/* DPDK's IOVA of any byte of its memory, through the memseg that holds it. */
static uint64_t dpdk_iova_of(const void *p)
{
	const struct rte_memseg_list *msl = rte_mem_virt2memseg_list(p);
	const struct rte_memseg *ms = msl ? rte_mem_virt2memseg(p, msl) : NULL;

	CHECK(ms != NULL);
	CHECK(ms->iova != RTE_BAD_IOVA);
	return ms->iova + (uint64_t)((uintptr_t)p - (uintptr_t)ms->addr);
}

/* Every 4 KiB and the last byte of [p, p+len) as DPDK and iovm see them. */
static void check_range(const struct iovm_domain *dom, const uint8_t *p, size_t len)
{
	for (size_t off = 0; off < len; off += 4096)
		CHECK_EQ(dpdk_iova_of(p + off), iova_of(dom, p + off));
	CHECK_EQ(dpdk_iova_of(p + len - 1), iova_of(dom, p + len - 1));
}

static struct iovm_dpdk_heap_stats stats(struct iovm_dpdk_heap *h)
{
	struct iovm_dpdk_heap_stats st;

	CHECK_OK(iovm_dpdk_heap_stats(h, &st));
	return st;
}

TEST(before_eal_init_no_heap)
{
	struct iovm_dpdk_heap *h = NULL;

	CHECK_EQ(iovm_dpdk_heap_create(ctx, NULL, "iovm-early", 0, 0, 0, &h), -ENODEV);
	CHECK(h == NULL);
}

TEST(bad_arguments)
{
	struct iovm_dpdk_heap *h = NULL, *h2 = NULL;

	CHECK_EQ(iovm_dpdk_heap_create(NULL, NULL, "x", 0, 0, 0, &h), -EINVAL);
	CHECK_EQ(iovm_dpdk_heap_create(ctx, NULL, NULL, 0, 0, 0, &h), -EINVAL);
	CHECK_EQ(iovm_dpdk_heap_create(ctx, NULL, "", 0, 0, 0, &h), -EINVAL);
	CHECK_EQ(iovm_dpdk_heap_create(ctx, NULL, "0123456789012345678901234567890123", 0, 0, 0, &h),
		 -EINVAL);
	CHECK_EQ(iovm_dpdk_heap_create(ctx, NULL, "x", 0, 0, 1u << 7, &h), -EINVAL);
	/* iovm_dma_alloc() refuses two page sizes at once: nothing is left behind. */
	CHECK_EQ(iovm_dpdk_heap_create(ctx, NULL, "iovm-bad", 0, IOVM_DMA_PAGE_4K | IOVM_DMA_PAGE_2M, 0, &h),
		 -EINVAL);
	CHECK(h == NULL);
	CHECK_EQ(rte_malloc_heap_get_socket("iovm-bad"), -1);
	CHECK_OK(iovm_dpdk_heap_create(ctx, NULL, "iovm-dup", CHUNK, 0, 0, &h));
	CHECK_EQ(iovm_dpdk_heap_create(ctx, NULL, "iovm-dup", CHUNK, 0, 0, &h2), -EEXIST);
	CHECK(h2 == NULL);
	CHECK_OK(iovm_dpdk_heap_destroy(h));
	CHECK_OK(iovm_dpdk_heap_destroy(NULL));
	CHECK_EQ(iovm_dpdk_heap_socket(NULL), -EINVAL);
	CHECK_EQ(iovm_dpdk_heap_grow(NULL, 0), -EINVAL);
	CHECK_EQ(iovm_dpdk_heap_shrink(NULL), -EINVAL);
	CHECK(iovm_dpdk_malloc(NULL, NULL, 64, 0) == NULL && rte_errno == EINVAL);
}

/*
 * rte_malloc, rte_zmalloc and a memzone on the heap: iovm memory at
 * iovm's addresses; more than the heap holds makes it grow.
 */
static void malloc_on_heap(struct iovm_domain *dom, const char *name)
{
	struct iovm_dpdk_heap *h;
	const struct rte_memzone *mz;
	uint8_t *small, *big, *z;
	int socket;

	CHECK_OK(iovm_dpdk_heap_create(ctx, dom, name, CHUNK, 0, 0, &h));
	socket = iovm_dpdk_heap_socket(h);
	CHECK(socket >= RTE_MAX_NUMA_NODES);
	CHECK_EQ(rte_malloc_heap_get_socket(name), socket);
	CHECK_EQ(rte_malloc_heap_socket_is_external(socket), 1);
	CHECK_EQ(stats(h).chunks, 1);
	CHECK_EQ(stats(h).bytes, CHUNK);
	printf("# %s: DPDK pages of %" PRIu64 " KiB\n", name, stats(h).page_size >> 10);

	small = rte_malloc_socket("glue", 1000, 64, socket);
	CHECK(small != NULL);
	CHECK_EQ((uintptr_t)small % 64, 0);
	CHECK_EQ(rte_malloc_virt2iova(small), iova_of(dom, small));
	check_range(dom, small, 1000);
	memset(small, 0x5a, 1000);

	z = rte_zmalloc_socket("glue", 64 << 10, 0, socket);
	CHECK(z != NULL);
	for (size_t i = 0; i < (64 << 10); i++)
		if (z[i])
			CHECK_MSG(false, "rte_zmalloc byte %zu is %#x", i, z[i]);
	check_range(dom, z, 64 << 10);

	mz = rte_memzone_reserve("iovm-glue-mz", 256 << 10, socket, RTE_MEMZONE_IOVA_CONTIG);
	CHECK(mz != NULL);
	CHECK_EQ(mz->iova, iova_of(dom, mz->addr));
	/* IOVA-contiguous for DPDK: contiguous for iovm too. */
	CHECK_EQ(iova_of(dom, (uint8_t *)mz->addr + mz->len - 1), mz->iova + mz->len - 1);

	/* More than a chunk in one piece: rte_malloc alone fails, the glue grows. */
	CHECK(rte_malloc_socket("glue", 2 * CHUNK, 0, socket) == NULL);
	big = iovm_dpdk_malloc(h, "glue", 2 * CHUNK, 4096);
	CHECK(big != NULL);
	CHECK_EQ(stats(h).chunks, 2);
	CHECK(stats(h).bytes >= 3 * CHUNK);
	check_range(dom, big, 2 * CHUNK);

	/* Memory in use is never removed: not by shrink, not by destroy. */
	CHECK_EQ(iovm_dpdk_heap_shrink(h), 0);
	CHECK_EQ(iovm_dpdk_heap_destroy(h), -EBUSY);
	CHECK_EQ(stats(h).chunks, 2);
	CHECK_EQ(rte_malloc_virt2iova(big), iova_of(dom, big));

	/* The big one's chunk idles: shrink gives it back, the other stays. */
	rte_free(big);
	CHECK(iovm_dpdk_heap_shrink(h) >= (int64_t)(2 * CHUNK));
	CHECK_EQ(stats(h).chunks, 1);
	CHECK_EQ(small[999], 0x5a);
	CHECK_EQ(rte_malloc_virt2iova(small), iova_of(dom, small));

	rte_free(small);
	rte_free(z);
	CHECK_OK(rte_memzone_free(mz));
	CHECK_OK(iovm_dpdk_heap_destroy(h));
	CHECK_EQ(rte_malloc_heap_get_socket(name), -1);
}

TEST(malloc_at_iovm_pa)
{
	malloc_on_heap(NULL, "iovm-pa");
}

/* The domain's IOVAs, not the PAs, where a domain follows the heap. */
static struct iovm_domain *follow_domain(void)
{
	struct iovm_domain_attr attr = { .type = IOVM_DOMAIN_MANAGED,
					 .flags = IOVM_DOMAIN_FOLLOW_HEAP };
	struct iovm_domain *dom;

	CHECK_OK(iovm_domain_create(ctx, &attr, &dom));
	return dom;
}

TEST(malloc_at_domain_iova)
{
	struct iovm_domain *dom = follow_domain();

	malloc_on_heap(dom, "iovm-dom");
	CHECK_OK(iovm_domain_destroy(dom));
}

/* One descriptor, run on this thread. */
static struct iovm_cqe run(struct iovm_queue *q, struct iovm_desc d)
{
	struct iovm_cqe cqe = { 0 };

	CHECK_OK(iovm_queue_submit(q, &d));
	CHECK_EQ(iovm_queue_process(q, 1), 1);
	CHECK_EQ(iovm_queue_reap(q, &cqe, 1), 1);
	return cqe;
}

/*
 * A pool of mbufs on the heap, larger than the heap at first: every
 * mbuf's buf_iova is iovm's address of buf_addr over the whole buffer,
 * and a device copies between two mbufs by their buf_iova.
 */
static void mbufs_on_heap(struct iovm_domain *dom, const char *name)
{
	enum { N = 4095, TAKE = 1024 };
	struct iovm_queue_attr qattr = { .depth = 16, .flags = IOVM_QUEUE_POLLED };
	static struct rte_mbuf *m[TAKE];
	struct iovm_device *dev = NULL;
	struct iovm_queue *q = NULL;
	struct iovm_dpdk_heap *h;
	struct rte_mempool *mp;
	struct iovm_cqe cqe;
	int socket;

	CHECK_OK(iovm_dpdk_heap_create(ctx, dom, name, CHUNK, 0, 0, &h));
	socket = iovm_dpdk_heap_socket(h);
	/* About 10 MiB of mbufs in a 4 MiB heap: DPDK alone runs out. */
	CHECK(rte_pktmbuf_pool_create("iovm-mbufs0", N, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, socket) ==
	      NULL);
	CHECK_EQ(rte_errno, ENOMEM);
	mp = iovm_dpdk_pktmbuf_pool_create(h, "iovm-mbufs", N, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE);
	CHECK_MSG(mp != NULL, "pool: %s", rte_strerror(rte_errno));
	CHECK(stats(h).chunks >= 2);
	CHECK_EQ(mp->socket_id, socket);
	CHECK_OK(rte_pktmbuf_alloc_bulk(mp, m, TAKE));
	for (unsigned i = 0; i < TAKE; i++) {
		CHECK_EQ(m[i]->buf_iova, iova_of(dom, m[i]->buf_addr));
		/* Contiguous for the device over the whole buffer, as DPDK promises. */
		CHECK_EQ(iova_of(dom, (uint8_t *)m[i]->buf_addr + m[i]->buf_len - 1),
			 m[i]->buf_iova + m[i]->buf_len - 1);
		CHECK_EQ(rte_pktmbuf_iova(m[i]), iova_of(dom, rte_pktmbuf_mtod(m[i], void *)));
		CHECK_EQ(rte_mempool_virt2iova(m[i]), iova_of(dom, m[i]));
	}

	if (dom) {
		char *src = rte_pktmbuf_append(m[0], 1500), *dst = rte_pktmbuf_append(m[TAKE - 1], 1500);

		CHECK(src && dst);
		memset(src, 0xc3, 1500);
		memset(dst, 0, 1500);
		CHECK_OK(iovm_device_open(ctx, "sw", &dev));
		CHECK_OK(iovm_device_attach(dev, dom, IOVM_PASID_NONE));
		CHECK_OK(iovm_queue_create(dev, &qattr, &q));
		/* The device knows nothing but the IOVAs DPDK gave the mbufs. */
		cqe = run(q, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = rte_pktmbuf_iova(m[0]),
						 .dst = rte_pktmbuf_iova(m[TAKE - 1]), .len = 1500,
						 .tag = 1 });
		CHECK_EQ(cqe.status, IOVM_STATUS_SUCCESS);
		CHECK_EQ(cqe.bytes_completed, 1500);
		CHECK(memcmp(src, dst, 1500) == 0);
		CHECK_OK(iovm_queue_destroy(q));
		CHECK_OK(iovm_device_close(dev));
	}

	CHECK_EQ(iovm_dpdk_heap_destroy(h), -EBUSY);
	rte_pktmbuf_free_bulk(m, TAKE);
	rte_mempool_free(mp);
	CHECK_OK(iovm_dpdk_heap_destroy(h));
}

TEST(mbufs_at_iovm_pa)
{
	mbufs_on_heap(NULL, "iovm-mbuf-pa");
}

TEST(mbufs_at_domain_iova_through_a_device)
{
	struct iovm_domain *dom = follow_domain();

	mbufs_on_heap(dom, "iovm-mbuf-dom");
	CHECK_OK(iovm_domain_destroy(dom));
}

/*
 * IOVM_DPDK_HOST_PA: only memory at host PAs (hugepages, see iovm_open()),
 * never emulated ones; 4 KiB pages never have one.
 */
static bool pages_4k;

TEST(host_pa_only)
{
	struct iovm_dpdk_heap *h;
	struct iovm_dma_xlate x;
	void *p;
	int ret;

	ret = iovm_dpdk_heap_create(ctx, NULL, "iovm-hpa", CHUNK, 0, IOVM_DPDK_HOST_PA, &h);
	if (pages_4k || ret) {
		CHECK_EQ(ret, -EOPNOTSUPP);
		CHECK_EQ(rte_malloc_heap_get_socket("iovm-hpa"), -1);
		return;
	}
	p = rte_malloc_socket("glue", 4096, 0, iovm_dpdk_heap_socket(h));
	CHECK(p != NULL);
	CHECK_OK(iovm_dma_xlate(ctx, p, &x));
	CHECK(x.flags & IOVM_XLATE_PA_REAL);
	CHECK_EQ(rte_malloc_virt2iova(p), x.pa.addr);
	rte_free(p);
	CHECK_OK(iovm_dpdk_heap_destroy(h));
}

/* The chunks go back to iovm: its heap holds no more than before. */
TEST(memory_goes_back_to_iovm)
{
	struct iovm_mem_stats before, after;
	struct iovm_dpdk_heap *h;

	CHECK_OK(iovm_mem_stats(ctx, &before));
	CHECK_OK(iovm_dpdk_heap_create(ctx, NULL, "iovm-back", CHUNK, 0, 0, &h));
	CHECK_OK(iovm_mem_stats(ctx, &after));
	CHECK(after.in_use >= before.in_use + CHUNK);
	CHECK_OK(iovm_dpdk_heap_destroy(h));
	CHECK_OK(iovm_mem_stats(ctx, &after));
	CHECK_EQ(after.in_use, before.in_use);
}

int main(void)
{
	/* Whatever pages iovm picks (hugepages where there are some), then 4 KiB ones. */
	static const char *const opts[] = { "", "page_size=4K" };
	char prefix[64];
	char *argv[] = { "test_glue_dpdk_heap", "--no-huge", "-m", "64", "--no-pci",
			 "--no-telemetry", "--no-shconf", prefix, "-l", "0",
			 "--log-level=lib.*:error", NULL };
	int argc = (int)(sizeof(argv) / sizeof(argv[0])) - 1;

	test_init();
	CHECK_OK(iovm_open("", &ctx));
	RUN(before_eal_init_no_heap);
	CHECK_OK(iovm_close(ctx));
	/* Its own prefix: parallel runs share nothing through EAL's files. */
	snprintf(prefix, sizeof(prefix), "--file-prefix=iovm-glue-%d", (int)getpid());
	if (rte_eal_init(argc, argv) < 0)
		SKIP("rte_eal_init(--no-huge --no-pci, uid %d) failed: %s", (int)geteuid(),
		     rte_strerror(rte_errno));
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		CHECK_OK(iovm_open(opts[i], &ctx));
		printf("# iovm_open(\"%s\")\n", opts[i]);
		pages_4k = strstr(opts[i], "4K") != NULL;
		RUN(bad_arguments);
		RUN(malloc_at_iovm_pa);
		RUN(malloc_at_domain_iova);
		RUN(mbufs_at_iovm_pa);
		RUN(mbufs_at_domain_iova_through_a_device);
		RUN(host_pa_only);
		RUN(memory_goes_back_to_iovm);
		CHECK_OK(iovm_close(ctx));
	}
	CHECK_OK(rte_eal_cleanup());
	return 0;
}
