/* SPDX-License-Identifier: MIT */
/*
 * iovm_dpdk.c - an rte_malloc external heap made of chunks of iovm DMA
 * memory (see iovm_dpdk.h for why chunks and not the pages iovm commits).
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <iovm.h>

#include "iovm_dpdk.h"

#define SZ_2M ((size_t)2 << 20)
#define SZ_4K ((size_t)4096)
/* Room for DPDK's element headers and alignment beside what a caller asks for. */
#define HEAP_SLACK ((size_t)64 << 10)
/* DPDK's RTE_HEAP_NAME_MAX_LEN, which no installed header defines. */
#define HEAP_NAME_MAX 32
/* Growths tried before an allocation gives up: others may take what one adds. */
#define ALLOC_TRIES 4

struct chunk {
	struct chunk *next;
	void *va;
	size_t len;
	size_t page_size; /* DPDK's: one IOVA per page of this size */
};

struct iovm_dpdk_heap {
	struct iovm_ctx *ctx;
	struct iovm_domain *dom;
	char name[HEAP_NAME_MAX];
	int socket;
	size_t chunk_size;
	uint32_t alloc_flags, flags;
	/*
	 * Protects the chunk list and the counters. DPDK's own heap lock
	 * is taken inside it (memory add and remove), never the other way
	 * round: nothing here runs from a DPDK callback.
	 */
	pthread_mutex_t lock;
	struct chunk *chunks;
	unsigned nr_chunks;
	uint64_t bytes, grows, shrinks;
	uint64_t last_page_size;
};

static size_t round_up(size_t v, size_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/* The address DPDK is to see for @p: the domain's IOVA, or iovm's PA. */
static int device_addr(const struct iovm_dpdk_heap *h, const void *p, uint64_t *addr)
{
	struct iovm_dma_xlate x;
	iovm_iova_t iova;
	int ret;

	if (h->dom) {
		ret = iovm_dma_iova(h->dom, p, &iova);
		*addr = iova.addr;
		return ret;
	}
	ret = iovm_dma_xlate(h->ctx, p, &x);
	if (ret)
		return ret;
	if ((h->flags & IOVM_DPDK_HOST_PA) && !(x.flags & IOVM_XLATE_PA_REAL))
		return -EOPNOTSUPP;
	*addr = x.pa.addr;
	return 0;
}

/*
 * Fill @iovas with one address per page of @pg bytes, each page
 * contiguous in device addresses from its first byte to its last.
 * Return: 0; 1 when a page is not contiguous (try a smaller @pg); or a
 * negative errno.
 */
static int page_addrs(const struct iovm_dpdk_heap *h, uint8_t *va, size_t len, size_t pg,
		      rte_iova_t *iovas)
{
	for (size_t i = 0; i < len / pg; i++) {
		uint64_t first, last;
		int ret = device_addr(h, va + i * pg, &first);

		if (!ret)
			ret = device_addr(h, va + i * pg + pg - 1, &last);
		if (ret)
			return ret;
		if (last != first + pg - 1)
			return 1;
		iovas[i] = first;
	}
	return 0;
}

/* DPDK's errno for a failed heap call, as a negative errno of ours. */
static int dpdk_err(void)
{
	int e = rte_errno;

	return e > 0 && e < RTE_MIN_ERRNO ? -e : -EIO;
}

/* Takes @len bytes of iovm memory and adds them to the DPDK heap. Needs h->lock. */
static int chunk_add(struct iovm_dpdk_heap *h, size_t len)
{
	struct iovm_dma_xlate x;
	struct chunk *c;
	rte_iova_t *iovas;
	size_t pg;
	int ret;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	/*
	 * Zeroed: DPDK takes external memory as clean (rte_zmalloc does not
	 * clear it again), and iovm skips pages it knows are fresh.
	 */
	c->va = iovm_dma_alloc(h->ctx, len, SZ_2M, h->alloc_flags | IOVM_DMA_ZERO);
	if (!c->va) {
		ret = -errno;
		goto free_chunk;
	}
	c->len = len;
	ret = iovm_dma_xlate(h->ctx, c->va, &x);
	if (ret)
		goto free_mem;
	/*
	 * DPDK's pages: iovm's page size, as far as the chunk's alignment
	 * allows (a 1 GiB page holds 2 MiB-aligned chunks), and smaller
	 * still where a domain maps a page in pieces.
	 */
	pg = x.page_size;
	while (pg > SZ_4K && (((uintptr_t)c->va | len) & (pg - 1)))
		pg >>= 1;
	iovas = malloc(len / SZ_4K * sizeof(*iovas));
	if (!iovas) {
		ret = -ENOMEM;
		goto free_mem;
	}
	while ((ret = page_addrs(h, c->va, len, pg, iovas)) == 1 && pg > SZ_4K)
		pg >>= 1;
	if (ret == 1)
		ret = -EIO; /* a 4 KiB page in pieces: nothing iovm makes */
	if (ret)
		goto free_iovas;
	c->page_size = pg;
	/* DPDK copies the IOVAs into its memsegs. */
	if (rte_malloc_heap_memory_add(h->name, c->va, len, iovas, (unsigned)(len / pg), pg)) {
		ret = dpdk_err();
		goto free_iovas;
	}
	free(iovas);
	c->next = h->chunks;
	h->chunks = c;
	h->nr_chunks++;
	h->bytes += len;
	h->grows++;
	h->last_page_size = pg;
	return 0;

free_iovas:
	free(iovas);
free_mem:
	iovm_dma_free(h->ctx, c->va);
free_chunk:
	free(c);
	return ret;
}

/*
 * Gives iovm back every chunk with nothing allocated on it: DPDK's
 * remove is what tells, as it refuses a chunk in use. Needs h->lock.
 * Return: the bytes; *busy says whether a chunk stayed.
 */
static int64_t chunks_remove(struct iovm_dpdk_heap *h, bool *busy)
{
	struct chunk **pc = &h->chunks;
	int64_t freed = 0;

	*busy = false;
	while (*pc) {
		struct chunk *c = *pc;

		if (rte_malloc_heap_memory_remove(h->name, c->va, c->len)) {
			*busy = true;
			pc = &c->next;
			continue;
		}
		*pc = c->next;
		h->nr_chunks--;
		h->bytes -= c->len;
		h->shrinks++;
		freed += (int64_t)c->len;
		iovm_dma_free(h->ctx, c->va);
		free(c);
	}
	return freed;
}

int iovm_dpdk_heap_create(struct iovm_ctx *ctx, struct iovm_domain *dom, const char *name,
			  size_t chunk, uint32_t alloc_flags, uint32_t flags,
			  struct iovm_dpdk_heap **heap)
{
	struct iovm_dpdk_heap *h;
	size_t n;
	int ret;

	if (!ctx || !name || !heap || (flags & ~IOVM_DPDK_HOST_PA))
		return -EINVAL;
	n = strlen(name);
	if (n == 0 || n >= HEAP_NAME_MAX)
		return -EINVAL;
	if (chunk > ((size_t)1 << 40))
		return -EINVAL;
	/* Before rte_eal_init() DPDK has no memory config to add a heap to. */
	if (rte_eal_iova_mode() == RTE_IOVA_DC)
		return -ENODEV;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->ctx = ctx;
	h->dom = dom;
	memcpy(h->name, name, n + 1);
	h->chunk_size = round_up(chunk ? chunk : IOVM_DPDK_CHUNK_DEFAULT, SZ_2M);
	h->alloc_flags = alloc_flags;
	h->flags = flags;
	pthread_mutex_init(&h->lock, NULL);
	if (rte_malloc_heap_create(name)) {
		ret = dpdk_err();
		goto free_heap;
	}
	h->socket = rte_malloc_heap_get_socket(name);
	if (h->socket < 0) {
		ret = dpdk_err();
		goto destroy_heap;
	}
	pthread_mutex_lock(&h->lock);
	ret = chunk_add(h, h->chunk_size);
	pthread_mutex_unlock(&h->lock);
	if (ret)
		goto destroy_heap;
	*heap = h;
	return 0;

destroy_heap:
	rte_malloc_heap_destroy(name);
free_heap:
	pthread_mutex_destroy(&h->lock);
	free(h);
	return ret;
}

int iovm_dpdk_heap_socket(const struct iovm_dpdk_heap *heap)
{
	return heap ? heap->socket : -EINVAL;
}

int64_t iovm_dpdk_heap_grow(struct iovm_dpdk_heap *heap, size_t min)
{
	size_t len;
	int ret;

	if (!heap || min > ((size_t)1 << 40))
		return -EINVAL;
	len = heap->chunk_size;
	if (min && round_up(min + HEAP_SLACK, SZ_2M) > len)
		len = round_up(min + HEAP_SLACK, SZ_2M);
	pthread_mutex_lock(&heap->lock);
	ret = chunk_add(heap, len);
	pthread_mutex_unlock(&heap->lock);
	return ret ? ret : (int64_t)len;
}

int64_t iovm_dpdk_heap_shrink(struct iovm_dpdk_heap *heap)
{
	int64_t freed;
	bool busy;

	if (!heap)
		return -EINVAL;
	pthread_mutex_lock(&heap->lock);
	freed = chunks_remove(heap, &busy);
	pthread_mutex_unlock(&heap->lock);
	return freed;
}

int iovm_dpdk_heap_stats(struct iovm_dpdk_heap *heap, struct iovm_dpdk_heap_stats *st)
{
	if (!heap || !st)
		return -EINVAL;
	pthread_mutex_lock(&heap->lock);
	st->chunks = heap->nr_chunks;
	st->bytes = heap->bytes;
	st->page_size = heap->last_page_size;
	st->grows = heap->grows;
	st->shrinks = heap->shrinks;
	pthread_mutex_unlock(&heap->lock);
	return 0;
}

/* Sets rte_errno and errno alike, for callers that read either. */
static void set_errno(int e)
{
	rte_errno = e;
	errno = e;
}

void *iovm_dpdk_malloc(struct iovm_dpdk_heap *heap, const char *type, size_t size, unsigned align)
{
	void *p;

	if (!heap || size == 0 || (align & (align - 1))) {
		set_errno(EINVAL);
		return NULL;
	}
	for (int i = 0; i < ALLOC_TRIES; i++) {
		int64_t ret;

		p = rte_malloc_socket(type, size, align, heap->socket);
		if (p)
			return p;
		/* DPDK says nothing more precise than NULL: out of room. */
		ret = iovm_dpdk_heap_grow(heap, size + align);
		if (ret < 0) {
			set_errno((int)-ret);
			return NULL;
		}
	}
	set_errno(ENOMEM);
	return NULL;
}

/* About what a pool of @n mbufs takes from the heap: objects, ring, header and caches. */
static size_t pool_bytes(const struct iovm_dpdk_heap *h, unsigned n, uint16_t priv_size,
			 uint16_t data_room_size)
{
	struct rte_mempool_objsz sz;
	uint32_t elt = (uint32_t)(sizeof(struct rte_mbuf) + priv_size + data_room_size);
	size_t obj = rte_mempool_calc_obj_size(elt, 0, &sz);
	size_t pg = h->last_page_size ? h->last_page_size : SZ_4K;
	size_t objs;

	/* Objects do not cross DPDK pages unless the pages are contiguous: count whole pages. */
	if (obj <= pg)
		objs = ((size_t)n + pg / obj - 1) / (pg / obj) * pg;
	else
		objs = (size_t)n * obj;
	return objs + (size_t)n * 2 * sizeof(void *) +
	       (RTE_MAX_LCORE + 1) * sizeof(struct rte_mempool_cache) + SZ_2M;
}

struct rte_mempool *iovm_dpdk_pktmbuf_pool_create(struct iovm_dpdk_heap *heap, const char *name,
						  unsigned n, unsigned cache_size,
						  uint16_t priv_size, uint16_t data_room_size)
{
	struct rte_mempool *mp;
	size_t need;

	if (!heap || !name) {
		set_errno(EINVAL);
		return NULL;
	}
	pthread_mutex_lock(&heap->lock);
	need = pool_bytes(heap, n, priv_size, data_room_size);
	pthread_mutex_unlock(&heap->lock);
	for (int i = 0; i < ALLOC_TRIES; i++) {
		int64_t ret;

		mp = rte_pktmbuf_pool_create(name, n, cache_size, priv_size, data_room_size,
					     heap->socket);
		if (mp || rte_errno != ENOMEM)
			break;
		/*
		 * A pool spreads over several memzones, so chunks of the
		 * chunk size do; grow by what it needs, not all in one piece.
		 */
		ret = iovm_dpdk_heap_grow(heap, need > heap->chunk_size ? need - HEAP_SLACK : 0);
		if (ret < 0) {
			set_errno((int)-ret);
			return NULL;
		}
	}
	if (!mp)
		set_errno(rte_errno);
	return mp;
}

int iovm_dpdk_heap_destroy(struct iovm_dpdk_heap *heap)
{
	bool busy;

	if (!heap)
		return 0;
	pthread_mutex_lock(&heap->lock);
	chunks_remove(heap, &busy);
	pthread_mutex_unlock(&heap->lock);
	if (busy)
		return -EBUSY;
	/* Empty of memory now: DPDK refuses only a heap with memory in it. */
	if (rte_malloc_heap_destroy(heap->name))
		return dpdk_err();
	pthread_mutex_destroy(&heap->lock);
	free(heap);
	return 0;
}
