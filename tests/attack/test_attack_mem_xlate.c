/* SPDX-License-Identifier: MIT */
/*
 * test_attack_mem_xlate.c - attacks the translation promises of mem.h:
 * iovm_dma_xlate(), iovm_dma_pa() and iovm_dma_ptr() agree with one
 * another on every page and interior pointer, never overstate contig or
 * hpa_contig, say hpa as the kernel's pagemap does, refuse what is not
 * (or no longer) committed iovm memory, and stay right, lock-free, while
 * other threads allocate, free and trim.
 */
#include <fcntl.h>

#include "attack.h"

static struct iovm_ctx *ctx;
static int pagemap_fd = -1;

/* The host PA of @va from /proc/self/pagemap, or UINT64_MAX. */
static uint64_t pagemap_hpa(const void *va)
{
	uint64_t e;
	uintptr_t v = (uintptr_t)va;

	if (pagemap_fd < 0)
		return UINT64_MAX;
	if (pread(pagemap_fd, &e, 8, (off_t)(v / 4096 * 8)) != 8)
		return UINT64_MAX;
	if (!(e >> 63) || !(e & ((1ull << 55) - 1)))
		return UINT64_MAX;
	return (e & ((1ull << 55) - 1)) * 4096 + (v & 4095);
}

static void check_one(const uint8_t *p)
{
	struct iovm_dma_xlate x;
	iovm_pa_t pa, pa_end;

	CHECK_OK(iovm_dma_xlate(ctx, p, &x));
	CHECK_OK(iovm_dma_pa(ctx, p, &pa));
	CHECK_EQ(pa.addr, x.pa.addr);
	CHECK(x.contig >= 1);
	CHECK(x.page_size == 4096 || x.page_size == (2u << 20) || x.page_size == (1u << 30));
	/* contig never runs past the page... unless the next pages follow in PA: check its end. */
	CHECK_OK(iovm_dma_pa(ctx, p + x.contig - 1, &pa_end));
	CHECK_MSG(pa_end.addr == x.pa.addr + x.contig - 1,
		  "%p: contig %zu, but the PA of its last byte is %#llx, not %#llx", (void *)p, x.contig,
		  (unsigned long long)pa_end.addr, (unsigned long long)(x.pa.addr + x.contig - 1));
	/* Within the page, contig reaches at least the page's end. */
	CHECK(x.contig >= x.page_size - ((uintptr_t)p & (x.page_size - 1)));
	CHECK(iovm_dma_ptr(ctx, x.pa) == p);
	/* The reverse of any byte of the run. */
	CHECK(iovm_dma_ptr(ctx, IOVM_PA(x.pa.addr + x.contig - 1)) == p + x.contig - 1);
	if (x.hpa.addr != IOVM_ADDR_INVALID) {
		uint64_t h = pagemap_hpa(p);
		if (h != UINT64_MAX)
			CHECK_MSG(h == x.hpa.addr, "%p: hpa %#llx, pagemap %#llx", (void *)p,
				  (unsigned long long)x.hpa.addr, (unsigned long long)h);
		CHECK(x.hpa_contig >= 1);
		h = pagemap_hpa(p + x.hpa_contig - 1);
		if (h != UINT64_MAX)
			CHECK_MSG(h == x.hpa.addr + x.hpa_contig - 1,
				  "%p: hpa_contig %zu overstates: pagemap of its last byte %#llx", (void *)p,
				  x.hpa_contig, (unsigned long long)h);
	} else {
		CHECK_EQ(x.hpa_contig, 0);
	}
}

TEST(xlate_pa_ptr_agree_on_every_page_and_interior_pointer)
{
	static const struct {
		size_t size;
		uint32_t flags;
	} cases[] = {
		{ 1, 0 }, { 100, 0 }, { 4096, 0 }, { 10000, IOVM_DMA_PAGE_4K }, { 70000, 0 },
		{ 3u << 20, 0 }, { 5u << 20, IOVM_DMA_CONTIG }, { 1u << 20, IOVM_DMA_PAGE_4K },
		{ 9u << 20, IOVM_DMA_PAGE_4K | IOVM_DMA_CONTIG }, { 4u << 20, IOVM_DMA_PAGE_2M },
	};
	uint64_t seed = 0x1234;

	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t *p = iovm_dma_alloc(ctx, cases[i].size, 0, cases[i].flags);

		if (!p && (cases[i].flags & IOVM_DMA_PAGE_2M))
			continue; /* no hugepages now: other processes may hold them */
		CHECK_MSG(p != NULL, "alloc %zu: %s", cases[i].size, strerror(errno));
		memset(p, 0x61, cases[i].size);
		check_one(p);
		check_one(p + cases[i].size - 1);
		for (size_t off = 0; off < cases[i].size; off += 4096)
			check_one(p + off);
		for (int k = 0; k < 200; k++)
			check_one(p + test_rand(&seed) % cases[i].size);
		CHECK_OK(iovm_dma_free(ctx, p));
	}
}

TEST(xlate_refuses_null_and_foreign_pointers)
{
	struct iovm_dma_xlate x;
	iovm_pa_t pa;
	int local;
	void *m = malloc(100);
	uint8_t *p = iovm_dma_alloc(ctx, 64, 0, 0);

	CHECK(p && m);
	CHECK_RET(iovm_dma_xlate(NULL, p, &x), -EINVAL);
	/* A NULL pointer is one outside iovm memory (mem.h): -ENOENT, as tests/mem pins it. */
	CHECK_RET(iovm_dma_xlate(ctx, NULL, &x), -ENOENT);
	CHECK_RET(iovm_dma_xlate(ctx, p, NULL), -EINVAL);
	CHECK_RET(iovm_dma_pa(NULL, p, &pa), -EINVAL);
	CHECK_RET(iovm_dma_pa(ctx, NULL, &pa), -ENOENT);
	CHECK_RET(iovm_dma_pa(ctx, p, NULL), -EINVAL);
	CHECK_RET(iovm_dma_xlate(ctx, &local, &x), -ENOENT);
	CHECK_RET(iovm_dma_xlate(ctx, m, &x), -ENOENT);
	CHECK_RET(iovm_dma_pa(ctx, m, &pa), -ENOENT);
	CHECK_RET(iovm_dma_xlate(ctx, (void *)(uintptr_t)1, &x), -ENOENT);
	CHECK_RET(iovm_dma_xlate(ctx, (void *)(uintptr_t)4096, &x), -ENOENT);
	CHECK_RET(iovm_dma_xlate(ctx, (void *)UINTPTR_MAX, &x), -ENOENT);
	CHECK_RET(iovm_dma_xlate(ctx, (void *)(UINTPTR_MAX - 4095), &x), -ENOENT);
	CHECK_RET(iovm_dma_xlate(ctx, (void *)(uintptr_t)(1ull << 47), &x), -ENOENT);
	CHECK_RET(iovm_dma_xlate(ctx, (void *)(uintptr_t)(1ull << 56), &x), -ENOENT);
	CHECK_RET(iovm_dma_pa(ctx, (void *)(uintptr_t)(1ull << 63), &pa), -ENOENT);
	CHECK_OK(iovm_dma_free(ctx, p));
	free(m);
}

/*
 * The two cases of released memory run in a context of their own: pages
 * go back in whole commits (mem.h), and in the shared one a commit an
 * earlier case left with live memory in it (on 4 KiB pages, where
 * hugepages ran out) may take this allocation's pages in.
 */
TEST(dma_ptr_refuses_pas_no_committed_page_holds)
{
	struct iovm_ctx *own = attack_open(NULL);
	struct iovm_phys_stats ps;
	uint64_t top = 0;

	CHECK_OK(iovm_phys_stats(own, &ps));
	errno = 0;
	CHECK(iovm_dma_ptr(NULL, IOVM_PA(0)) == NULL);
	CHECK_EQ(errno, EINVAL);
	CHECK_NULL_ERRNO(iovm_dma_ptr(own, IOVM_PA(UINT64_MAX)), ENOENT);
	CHECK_NULL_ERRNO(iovm_dma_ptr(own, IOVM_PA(UINT64_MAX - 4095)), ENOENT);
	CHECK_NULL_ERRNO(iovm_dma_ptr(own, IOVM_PA(1ull << 63)), ENOENT);
	CHECK_NULL_ERRNO(iovm_dma_ptr(own, IOVM_PA(1ull << 52)), ENOENT);
	/* The PA of the middle of a large allocation (its page is its own, even a 2 MiB one). */
	uint8_t *p = iovm_dma_alloc(own, 6u << 20, 0, 0);
	iovm_pa_t pa;
	CHECK(p != NULL);
	CHECK_OK(iovm_dma_pa(own, p + (3u << 20), &pa));
	top = pa.addr;
	CHECK(iovm_dma_ptr(own, IOVM_PA(top)) == p + (3u << 20));
	CHECK_OK(iovm_dma_free(own, p));
	CHECK(iovm_dma_trim(own, IOVM_TRIM_ALL) >= 0);
	/* Released: no committed page holds it any more. */
	errno = 0;
	void *q = iovm_dma_ptr(own, IOVM_PA(top));
	EXPECT_MSG(q == NULL && errno == ENOENT, "PA %#llx of a released page: %p errno %d",
		  (unsigned long long)top, q, errno);
	CHECK_OK(iovm_close(own));
}

TEST(xlate_of_released_memory_is_enoent)
{
	struct iovm_ctx *own = attack_open(NULL);
	struct iovm_dma_xlate x;
	uint8_t *p = iovm_dma_alloc(own, 6u << 20, 0, 0);
	iovm_pa_t pa;

	CHECK(p != NULL);
	memset(p, 1, 6u << 20);
	CHECK_OK(iovm_dma_pa(own, p + (3u << 20), &pa));
	CHECK_OK(iovm_dma_free(own, p));
	CHECK(iovm_dma_trim(own, IOVM_TRIM_ALL) >= 0);
	/* Only pages the allocation had to itself: its ends may share a page with others. */
	CHECK_RET(iovm_dma_xlate(own, p + (2u << 20), &x), -ENOENT);
	CHECK_RET(iovm_dma_xlate(own, p + (3u << 20), &x), -ENOENT);
	CHECK_RET(iovm_dma_pa(own, p + (4u << 20) - 1, &pa), -ENOENT);
	CHECK_OK(iovm_close(own));
}

TEST(xlate_of_a_common_buffer_agrees_with_its_pages)
{
	struct iovm_cbuf *cb;
	iovm_pa_t pages[64];
	unsigned n;
	uint8_t *v;
	int ok = 0;

	CHECK_OK(iovm_cbuf_alloc(ctx, 64 * 4096, 0, &cb));
	v = iovm_cbuf_ptr(cb);
	CHECK(v != NULL);
	CHECK(all_bytes(v, 64 * 4096, 0));
	CHECK_OK(iovm_cbuf_pages(cb, pages, 64, &n));
	CHECK_EQ(n, 64);
	for (unsigned i = 0; i < 64; i++) {
		struct iovm_dma_xlate x;
		int r = iovm_dma_xlate(ctx, v + i * 4096 + 5, &x);
		if (r == -ENOENT)
			continue; /* not promised: a cbuf is not the DMA heap */
		CHECK_OK(r);
		ok++;
		EXPECT_MSG(x.pa.addr == pages[i].addr + 5, "cbuf page %u: xlate %#llx, pages %#llx", i,
			  (unsigned long long)x.pa.addr, (unsigned long long)pages[i].addr);
		CHECK(x.contig >= 1 && x.contig <= 4096 - 5 + (i + 1 < 64 && pages[i + 1].addr ==
							       pages[i].addr + 4096 ? 1u << 30 : 0));
	}
	/* Every page distinct. */
	for (unsigned i = 0; i < 64; i++)
		for (unsigned j = i + 1; j < 64; j++)
			CHECK(pages[i].addr != pages[j].addr);
	printf("# %d of 64 cbuf pages translate through iovm_dma_xlate\n", ok);
	CHECK_OK(iovm_cbuf_free(cb));
}

/* Lock-free translation of live memory while other threads churn the heap. */
#define LIVE 32
static uint8_t *live[LIVE];
static iovm_pa_t live_pa[LIVE];
static _Atomic int stop;

static void *churn(void *arg)
{
	uint64_t seed = (uintptr_t)arg;
	void *held[16] = { 0 };

	while (!atomic_load(&stop)) {
		unsigned i = test_rand(&seed) % 16;
		if (held[i]) {
			CHECK_OK(iovm_dma_free(ctx, held[i]));
			held[i] = NULL;
		} else {
			size_t sz = (size_t)1 << (test_rand(&seed) % 23);
			held[i] = iovm_dma_alloc(ctx, sz, 0, test_rand(&seed) % 4 == 0 ? IOVM_DMA_CONTIG : 0);
			if (held[i])
				memset(held[i], 0xcc, sz);
		}
		if (test_rand(&seed) % 64 == 0)
			CHECK(iovm_dma_trim(ctx, IOVM_TRIM_ALL) >= 0);
	}
	for (int i = 0; i < 16; i++)
		if (held[i])
			CHECK_OK(iovm_dma_free(ctx, held[i]));
	return NULL;
}

TEST(xlate_of_live_memory_is_stable_while_the_heap_churns)
{
	pthread_t t[2];
	uint64_t seed = 99;
	unsigned long iters = 0;

	for (int i = 0; i < LIVE; i++) {
		live[i] = iovm_dma_alloc(ctx, (size_t)4096 << (i % 10), 0, 0);
		CHECK(live[i] != NULL);
		memset(live[i], i, (size_t)4096 << (i % 10));
		CHECK_OK(iovm_dma_pa(ctx, live[i], &live_pa[i]));
	}
	atomic_store(&stop, 0);
	for (int i = 0; i < 2; i++)
		CHECK(pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)(i + 7)) == 0);
	for (iters = 0; iters < 400000; iters++) {
		int i = test_rand(&seed) % LIVE;
		iovm_pa_t pa;
		struct iovm_dma_xlate x;
		int r = iovm_dma_pa(ctx, live[i], &pa);
		if (r || pa.addr != live_pa[i].addr)
			test_fail("live allocation %d: pa %d %#llx, was %#llx", i, r,
				  (unsigned long long)pa.addr, (unsigned long long)live_pa[i].addr);
		r = iovm_dma_xlate(ctx, live[i] + 17, &x);
		if (r || x.pa.addr != live_pa[i].addr + 17)
			test_fail("live allocation %d: xlate %d", i, r);
		if (iovm_dma_ptr(ctx, live_pa[i]) != live[i])
			test_fail("live allocation %d: dma_ptr no longer leads back", i);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	CHECK(iters > 0);
	for (int i = 0; i < LIVE; i++) {
		CHECK(all_bytes(live[i], (size_t)4096 << (i % 10), (uint8_t)i));
		CHECK_OK(iovm_dma_free(ctx, live[i]));
	}
}

int main(void)
{
	test_init();
	pagemap_fd = open("/proc/self/pagemap", O_RDONLY);
	ctx = attack_open(NULL);
	RUN(xlate_pa_ptr_agree_on_every_page_and_interior_pointer);
	RUN(xlate_refuses_null_and_foreign_pointers);
	RUN(dma_ptr_refuses_pas_no_committed_page_holds);
	RUN(xlate_of_released_memory_is_enoent);
	RUN(xlate_of_a_common_buffer_agrees_with_its_pages);
	RUN(xlate_of_live_memory_is_stable_while_the_heap_churns);
	iovm_close(ctx);
	ctx = attack_open("page_size=4K");
	RUN(xlate_pa_ptr_agree_on_every_page_and_interior_pointer);
	RUN(xlate_of_live_memory_is_stable_while_the_heap_churns);
	iovm_close(ctx);
	return attack_status();
}
