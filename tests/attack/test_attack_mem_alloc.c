/* SPDX-License-Identifier: MIT */
/*
 * test_attack_mem_alloc.c - attacks the promises of iovm_dma_alloc(),
 * _zalloc(), _realloc(), _free(), _size() and _trim() (mem.h): every
 * documented errno, odd sizes and alignments, boundaries in virtual and
 * physical address, realloc's flags honoured in place, canaries around
 * every buffer.
 */
#include "attack.h"

static struct iovm_ctx *ctx;

/* The physical address of every 4 KiB page of [p, p+n) follows the first. */
static int pa_contiguous(const void *p, size_t n)
{
	iovm_pa_t base, pa;

	if (iovm_dma_pa(ctx, p, &base))
		return 0;
	for (size_t off = 4096 - ((uintptr_t)p & 4095); off < n; off += 4096) {
		if (iovm_dma_pa(ctx, (const uint8_t *)p + off, &pa))
			return 0;
		if (pa.addr != base.addr + off)
			return 0;
	}
	if (n > 1) {
		if (iovm_dma_pa(ctx, (const uint8_t *)p + n - 1, &pa))
			return 0;
		if (pa.addr != base.addr + n - 1)
			return 0;
	}
	return 1;
}

TEST(dma_alloc_einval_for_each_documented_bad_argument)
{
	CHECK_NULL_ERRNO(iovm_dma_alloc(ctx, 0, 0, 0), EINVAL);
	CHECK_NULL_ERRNO(iovm_dma_alloc(NULL, 64, 0, 0), EINVAL);
	CHECK_NULL_ERRNO(iovm_dma_alloc(ctx, 64, 3, 0), EINVAL);
	CHECK_NULL_ERRNO(iovm_dma_alloc(ctx, 64, 48, 0), EINVAL);
	CHECK_NULL_ERRNO(iovm_dma_alloc(ctx, 64, (size_t)1 << 31, 0), EINVAL);
	CHECK_NULL_ERRNO(iovm_dma_alloc(ctx, 64, (size_t)1 << 63, 0), EINVAL);
	CHECK_NULL_ERRNO(iovm_dma_alloc(ctx, 64, SIZE_MAX, 0), EINVAL);
	CHECK_NULL_ERRNO(iovm_dma_alloc(ctx, 64, 0, 1u << 6), EINVAL);
	CHECK_NULL_ERRNO(iovm_dma_alloc(ctx, 64, 0, 1u << 31), EINVAL);
	CHECK_NULL_ERRNO(iovm_dma_alloc(ctx, 64, 0, 1u << 7), EINVAL);
	CHECK_NULL_ERRNO(iovm_dma_alloc(ctx, 64, 0, IOVM_DMA_PAGE_4K | IOVM_DMA_PAGE_2M), EINVAL);
	CHECK_NULL_ERRNO(iovm_dma_alloc(ctx, 64, 0, IOVM_DMA_PAGE_4K | IOVM_DMA_PAGE_1G), EINVAL);
	CHECK_NULL_ERRNO(iovm_dma_alloc(ctx, 64, 0, IOVM_DMA_PAGE_2M | IOVM_DMA_PAGE_1G), EINVAL);
	CHECK_NULL_ERRNO(iovm_dma_alloc(ctx, 64, 0,
					IOVM_DMA_PAGE_4K | IOVM_DMA_PAGE_2M | IOVM_DMA_PAGE_1G), EINVAL);
	/* A boundary smaller than the size, or above 2^40. */
	CHECK_NULL_ERRNO(iovm_dma_alloc(ctx, 4097, 0, IOVM_DMA_BOUNDARY(12)), EINVAL);
	CHECK_NULL_ERRNO(iovm_dma_alloc(ctx, 3, 0, IOVM_DMA_BOUNDARY(1)), EINVAL);
	CHECK_NULL_ERRNO(iovm_dma_alloc(ctx, 64, 0, IOVM_DMA_BOUNDARY(41)), EINVAL);
	CHECK_NULL_ERRNO(iovm_dma_alloc(ctx, 64, 0, IOVM_DMA_BOUNDARY(255)), EINVAL);
	/* A node that is not online: 254 is the largest encodable. */
	CHECK_NULL_ERRNO(iovm_dma_alloc(ctx, 64, 0, IOVM_DMA_NODE(254)), EINVAL);
	CHECK_NULL_ERRNO(iovm_dma_zalloc(ctx, 0, 0, 0), EINVAL);
	CHECK_NULL_ERRNO(iovm_dma_zalloc(ctx, 64, 5, 0), EINVAL);
	CHECK_NULL_ERRNO(iovm_dma_zalloc(ctx, 64, 0, IOVM_DMA_PAGE_4K | IOVM_DMA_PAGE_2M), EINVAL);
}

TEST(dma_alloc_boundary_equal_to_size_is_accepted)
{
	/* "a boundary smaller than the size" fails: one equal to it does not. */
	for (unsigned shift = 1; shift <= 22; shift++) {
		size_t size = (size_t)1 << shift;
		uint8_t *p = iovm_dma_alloc(ctx, size, 0, IOVM_DMA_BOUNDARY(shift));

		CHECK_MSG(p != NULL, "size 2^%u, boundary 2^%u: %s [%s]", shift, shift, strerror(errno),
			  iovm_error_detail());
		CHECK_EQ((uintptr_t)p >> shift, ((uintptr_t)p + size - 1) >> shift);
		iovm_pa_t a, b;
		CHECK_OK(iovm_dma_pa(ctx, p, &a));
		CHECK_OK(iovm_dma_pa(ctx, p + size - 1, &b));
		CHECK_MSG(a.addr >> shift == b.addr >> shift, "PA crosses 2^%u: %#llx..%#llx", shift,
			  (unsigned long long)a.addr, (unsigned long long)b.addr);
		CHECK_EQ(b.addr - a.addr, size - 1);
		CHECK_OK(iovm_dma_free(ctx, p));
	}
}

TEST(dma_alloc_huge_sizes_fail_with_enomem_not_a_wrapped_small_buffer)
{
	static const size_t sizes[] = {
		SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 15, SIZE_MAX - 63, SIZE_MAX - 4095,
		SIZE_MAX - (2u << 20) + 1, (size_t)1 << 63, ((size_t)1 << 63) + 1,
		((size_t)1 << 62), (size_t)1 << 48, ((size_t)1 << 47) + 4096,
	};
	static const size_t aligns[] = { 0, 16, 4096, (size_t)1 << 21, (size_t)1 << 30 };

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		for (size_t j = 0; j < sizeof(aligns) / sizeof(aligns[0]); j++) {
			errno = 0;
			void *p = iovm_dma_alloc(ctx, sizes[i], aligns[j], 0);
			CHECK_MSG(p == NULL, "size %#zx align %#zx: got %p", sizes[i], aligns[j], p);
			CHECK_MSG(errno == ENOMEM, "size %#zx align %#zx: errno %s [%s]", sizes[i],
				  aligns[j], strerror(errno), iovm_error_detail());
			p = iovm_dma_zalloc(ctx, sizes[i], aligns[j], IOVM_DMA_CONTIG);
			CHECK(p == NULL);
			CHECK_MSG(errno == ENOMEM, "zalloc contig size %#zx align %#zx: errno %s",
				  sizes[i], aligns[j], strerror(errno));
		}
}

TEST(dma_alloc_alignment_and_canaries_for_odd_sizes)
{
	static const size_t sizes[] = { 1, 2, 15, 16, 17, 63, 64, 65, 4095, 4096, 4097, 32767, 32768,
					32769, 65535, (2u << 20) - 1, 2u << 20, (2u << 20) + 1 };
	enum { N = sizeof(sizes) / sizeof(sizes[0]) };
	uint8_t *p[N][6];
	size_t usable[N][6];

	for (unsigned i = 0; i < N; i++)
		for (unsigned a = 0; a < 6; a++) {
			size_t align = a == 0 ? 0 : (size_t)1 << (a * 4); /* 16 .. 1 MiB */
			p[i][a] = iovm_dma_alloc(ctx, sizes[i], align, 0);
			CHECK_MSG(p[i][a] != NULL, "size %zu align %zu: %s", sizes[i], align,
				  strerror(errno));
			CHECK_EQ((uintptr_t)p[i][a] % (align ? align : 16), 0);
			usable[i][a] = iovm_dma_size(ctx, p[i][a]);
			CHECK(usable[i][a] >= sizes[i]);
			/* The whole usable size is ours: fill it with a byte of its own. */
			memset(p[i][a], (int)(i * 6 + a + 1), usable[i][a]);
		}
	for (unsigned i = 0; i < N; i++)
		for (unsigned a = 0; a < 6; a++) {
			CHECK_MSG(all_bytes(p[i][a], usable[i][a], (uint8_t)(i * 6 + a + 1)),
				  "allocation %u/%u overwritten by a neighbour", i, a);
			check_translation(ctx, p[i][a]);
			check_translation(ctx, p[i][a] + usable[i][a] - 1);
			CHECK_OK(iovm_dma_free(ctx, p[i][a]));
		}
}

TEST(dma_alloc_one_gib_alignment_is_accepted)
{
	uint8_t *p = iovm_dma_alloc(ctx, 64, (size_t)1 << 30, 0);

	if (!p && errno == ENOMEM)
		SKIP_CASE("no room for a 1 GiB aligned block: %s", iovm_error_detail());
	CHECK_MSG(p != NULL, "align 1 GiB: %s [%s]", strerror(errno), iovm_error_detail());
	CHECK_EQ((uintptr_t)p & ((1u << 30) - 1), 0);
	p[0] = 1;
	p[63] = 2;
	CHECK_OK(iovm_dma_free(ctx, p));
}

TEST(dma_alloc_contig_is_physically_contiguous)
{
	static const size_t sizes[] = { 4097, 65536, (2u << 20) + 1, 6u << 20, 9u << 20 };

	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint8_t *p = iovm_dma_alloc(ctx, sizes[i], 0, IOVM_DMA_CONTIG);
		struct iovm_dma_xlate x;

		CHECK_MSG(p != NULL, "contig %zu: %s", sizes[i], strerror(errno));
		CHECK_OK(iovm_dma_xlate(ctx, p, &x));
		CHECK_MSG(x.contig >= sizes[i], "contig %zu, xlate says %zu", sizes[i], x.contig);
		CHECK_MSG(pa_contiguous(p, sizes[i]), "contig %zu is not contiguous page by page",
			  sizes[i]);
		CHECK_OK(iovm_dma_free(ctx, p));
	}
}

TEST(dma_alloc_page_flags_give_that_page_size)
{
	struct iovm_dma_xlate x;
	uint8_t *p = iovm_dma_alloc(ctx, 100, 0, IOVM_DMA_PAGE_4K);

	CHECK(p != NULL);
	CHECK_OK(iovm_dma_xlate(ctx, p, &x));
	CHECK_EQ(x.page_size, 4096);
	CHECK_OK(iovm_dma_free(ctx, p));

	p = iovm_dma_alloc(ctx, 100, 0, IOVM_DMA_PAGE_2M);
	if (!p) {
		CHECK_MSG(errno == ENOMEM || errno == EOPNOTSUPP, "PAGE_2M: %s", strerror(errno));
	} else {
		CHECK_OK(iovm_dma_xlate(ctx, p, &x));
		CHECK_EQ(x.page_size, 2u << 20);
		CHECK_OK(iovm_dma_free(ctx, p));
	}
}

TEST(dma_zero_flag_zeroes_reused_memory)
{
	static const size_t sizes[] = { 1, 24, 100, 4096, 32768, 32769, 100000, 3u << 20 };

	for (int round = 0; round < 3; round++)
		for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			uint8_t *p = iovm_dma_alloc(ctx, sizes[i], 0, 0);
			size_t n;

			CHECK(p != NULL);
			n = iovm_dma_size(ctx, p);
			memset(p, 0xee, n);
			CHECK_OK(iovm_dma_free(ctx, p));
			p = round == 0 ? iovm_dma_zalloc(ctx, sizes[i], 0, 0)
				       : iovm_dma_alloc(ctx, sizes[i], 0, IOVM_DMA_ZERO);
			CHECK(p != NULL);
			CHECK_MSG(all_bytes(p, sizes[i], 0), "size %zu round %d: byte %zu not zero",
				  sizes[i], round, first_not(p, sizes[i], 0));
			CHECK_OK(iovm_dma_free(ctx, p));
		}
}

TEST(dma_free_refuses_interior_foreign_and_freed_pointers)
{
	uint8_t *p = iovm_dma_alloc(ctx, 8192, 0, 0);
	uint8_t *q = iovm_dma_alloc(ctx, 48, 0, 0);
	static uint8_t not_ours[64];
	uint8_t *m = malloc(64);

	CHECK(p && q && m);
	memset(p, 1, 8192);
	memset(q, 2, 48);
	CHECK_RET(iovm_dma_free(ctx, p + 1), -EINVAL);
	CHECK_RET(iovm_dma_free(ctx, p + 16), -EINVAL);
	CHECK_RET(iovm_dma_free(ctx, p + 4096), -EINVAL);
	CHECK_RET(iovm_dma_free(ctx, p + iovm_dma_size(ctx, p)), -EINVAL);
	CHECK_RET(iovm_dma_free(ctx, q + 16), -EINVAL);
	CHECK_RET(iovm_dma_free(ctx, not_ours), -EINVAL);
	CHECK_RET(iovm_dma_free(ctx, m), -EINVAL);
	CHECK_RET(iovm_dma_free(ctx, (void *)(uintptr_t)4096), -EINVAL);
	CHECK_RET(iovm_dma_free(ctx, (void *)UINTPTR_MAX), -EINVAL);
	CHECK_RET(iovm_dma_free(NULL, p), -EINVAL);
	CHECK_RET(iovm_dma_free(ctx, NULL), 0);
	/* Untouched by the refusals. */
	CHECK(all_bytes(p, 8192, 1));
	CHECK(all_bytes(q, 48, 2));
	CHECK_OK(iovm_dma_free(ctx, p));
	CHECK_OK(iovm_dma_free(ctx, q));
	CHECK_RET(iovm_dma_free(ctx, p), -EINVAL);
	CHECK_RET(iovm_dma_free(ctx, q), -EINVAL);
	/* Freed, then the same slot handed out again: the first free's pointer is that allocation now. */
	free(m);
}

TEST(dma_free_of_freed_pointer_while_neighbours_live)
{
	/* A double free among live small neighbours must not free a neighbour. */
	uint8_t *v[64];

	for (int i = 0; i < 64; i++) {
		v[i] = iovm_dma_alloc(ctx, 64, 0, 0);
		CHECK(v[i] != NULL);
		memset(v[i], i + 1, 64);
	}
	for (int i = 0; i < 64; i += 2)
		CHECK_OK(iovm_dma_free(ctx, v[i]));
	for (int i = 0; i < 64; i += 2)
		CHECK_RET(iovm_dma_free(ctx, v[i]), -EINVAL);
	for (int i = 1; i < 64; i += 2) {
		CHECK_MSG(all_bytes(v[i], 64, (uint8_t)(i + 1)), "live neighbour %d changed", i);
		CHECK(iovm_dma_size(ctx, v[i]) >= 64);
	}
	/* Allocating again must not hand out a live one. */
	uint8_t *w[32];
	for (int i = 0; i < 32; i++) {
		w[i] = iovm_dma_alloc(ctx, 64, 0, 0);
		CHECK(w[i] != NULL);
		for (int j = 1; j < 64; j += 2)
			CHECK(w[i] != v[j]);
		memset(w[i], 0x77, 64);
	}
	for (int i = 1; i < 64; i += 2) {
		CHECK(all_bytes(v[i], 64, (uint8_t)(i + 1)));
		CHECK_OK(iovm_dma_free(ctx, v[i]));
	}
	for (int i = 0; i < 32; i++)
		CHECK_OK(iovm_dma_free(ctx, w[i]));
}

TEST(dma_size_refuses_pointers_iovm_did_not_allocate)
{
	uint8_t *p = iovm_dma_alloc(ctx, 1000, 0, 0);
	static uint8_t not_ours[16];

	CHECK(p != NULL);
	errno = 0;
	CHECK_EQ(iovm_dma_size(ctx, p + 8), 0);
	CHECK_EQ(errno, EINVAL);
	errno = 0;
	CHECK_EQ(iovm_dma_size(ctx, not_ours), 0);
	CHECK_EQ(errno, EINVAL);
	errno = 0;
	CHECK_EQ(iovm_dma_size(ctx, NULL), 0);
	CHECK_EQ(errno, EINVAL);
	errno = 0;
	CHECK_EQ(iovm_dma_size(NULL, p), 0);
	CHECK_EQ(errno, EINVAL);
	CHECK_OK(iovm_dma_free(ctx, p));
}

TEST(dma_realloc_keeps_contents_and_honours_new_alignment)
{
	/* In place or not, the result has the alignment asked now. */
	static const size_t aligns[] = { 64, 4096, 65536, 1u << 21 };

	for (unsigned a = 0; a < 4; a++) {
		for (int grow = 0; grow < 2; grow++) {
			uint8_t *p = iovm_dma_alloc(ctx, 3000, 16, 0);
			CHECK(p != NULL);
			memset(p, 0x3c, 3000);
			size_t nsize = grow ? 5000 : 1000;
			uint8_t *q = iovm_dma_realloc(ctx, p, nsize, aligns[a], 0);
			CHECK_MSG(q != NULL, "realloc: %s", strerror(errno));
			CHECK_MSG((uintptr_t)q % aligns[a] == 0,
				  "realloc to %zu, align %zu: %p is not aligned", nsize, aligns[a], q);
			CHECK(all_bytes(q, grow ? 3000 : 1000, 0x3c));
			CHECK(iovm_dma_size(ctx, q) >= nsize);
			CHECK_OK(iovm_dma_free(ctx, q));
		}
	}
}

TEST(dma_realloc_honours_new_boundary_contig_and_page_flags)
{
	struct iovm_dma_xlate x;
	uint8_t *p, *q;

	/* A 3000-byte buffer that crosses a 4 KiB boundary, shrunk with BOUNDARY(12). */
	for (int tries = 0; tries < 64; tries++) {
		p = iovm_dma_alloc(ctx, 3000, 16, 0);
		CHECK(p != NULL);
		memset(p, 0x42, 3000);
		if (((uintptr_t)p >> 12) != (((uintptr_t)p + 2999) >> 12))
			break;
		iovm_dma_free(ctx, p);
		p = NULL;
	}
	if (p) {
		q = iovm_dma_realloc(ctx, p, 2000, 0, IOVM_DMA_BOUNDARY(12));
		CHECK(q != NULL);
		CHECK_MSG((uintptr_t)q >> 12 == ((uintptr_t)q + 1999) >> 12,
			  "realloc with BOUNDARY(12) returned %p, crossing 4 KiB", q);
		CHECK(all_bytes(q, 2000, 0x42));
		CHECK_OK(iovm_dma_free(ctx, q));
	}

	/* Grown with CONTIG: the new memory is physically contiguous. */
	p = iovm_dma_alloc(ctx, 8192, 0, 0);
	CHECK(p != NULL);
	memset(p, 0x11, 8192);
	q = iovm_dma_realloc(ctx, p, 3u << 20, 0, IOVM_DMA_CONTIG);
	CHECK(q != NULL);
	CHECK(all_bytes(q, 8192, 0x11));
	CHECK_MSG(pa_contiguous(q, 3u << 20), "realloc with CONTIG is not contiguous");
	CHECK_OK(iovm_dma_free(ctx, q));

	/* Shrunk with PAGE_4K from (maybe) a hugepage: only 4 KiB pages. */
	p = iovm_dma_alloc(ctx, 100000, 0, 0);
	CHECK(p != NULL);
	memset(p, 0x12, 100000);
	q = iovm_dma_realloc(ctx, p, 50000, 0, IOVM_DMA_PAGE_4K);
	CHECK(q != NULL);
	CHECK(all_bytes(q, 50000, 0x12));
	CHECK_OK(iovm_dma_xlate(ctx, q, &x));
	CHECK_MSG(x.page_size == 4096, "realloc with PAGE_4K: page size %llu",
		  (unsigned long long)x.page_size);
	CHECK_OK(iovm_dma_free(ctx, q));

	/* ZERO on realloc: what is beyond the old size is zero? The header keeps contents only. */
}

TEST(dma_realloc_failure_leaves_ptr_untouched)
{
	uint8_t *p = iovm_dma_alloc(ctx, 5000, 0, 0), *q;
	static uint8_t not_ours[64];

	CHECK(p != NULL);
	memset(p, 0x5d, 5000);
	CHECK_NULL_ERRNO(iovm_dma_realloc(ctx, p, 0, 0, 0), EINVAL);
	CHECK_NULL_ERRNO(iovm_dma_realloc(ctx, p, 100, 3, 0), EINVAL);
	CHECK_NULL_ERRNO(iovm_dma_realloc(ctx, p, 100, 0, 1u << 6), EINVAL);
	CHECK_NULL_ERRNO(iovm_dma_realloc(ctx, p, 10000, 0, IOVM_DMA_PAGE_4K | IOVM_DMA_PAGE_2M), EINVAL);
	CHECK_NULL_ERRNO(iovm_dma_realloc(ctx, p, SIZE_MAX, 0, 0), ENOMEM);
	CHECK_NULL_ERRNO(iovm_dma_realloc(ctx, p, SIZE_MAX - 4095, 64, 0), ENOMEM);
	CHECK_NULL_ERRNO(iovm_dma_realloc(ctx, p + 16, 100, 0, 0), EINVAL);
	CHECK_NULL_ERRNO(iovm_dma_realloc(ctx, not_ours, 100, 0, 0), EINVAL);
	CHECK(all_bytes(p, 5000, 0x5d));
	CHECK(iovm_dma_size(ctx, p) >= 5000);
	CHECK_OK(iovm_dma_free(ctx, p));
	CHECK_NULL_ERRNO(iovm_dma_realloc(ctx, p, 100, 0, 0), EINVAL);

	q = iovm_dma_realloc(ctx, NULL, 77, 0, 0);
	CHECK(q != NULL);
	CHECK(iovm_dma_size(ctx, q) >= 77);
	CHECK_OK(iovm_dma_free(ctx, q));
}

static _Atomic int cb_mode;
static _Atomic int cb_ran;
static int cb_alloc_errno[3], cb_free_ret, cb_free_small_ret;
static void *cb_got[3], *cb_small;

static int alloc_in_callback(void *arg, const struct iovm_mem_event *ev)
{
	static const size_t sizes[3] = { 64, 100000, 4u << 20 };

	(void)arg;
	if (ev->type == IOVM_MEM_EVENT_COMMIT && atomic_load(&cb_mode) == 1 &&
	    !atomic_exchange(&cb_ran, 1)) {
		for (int i = 0; i < 3; i++) {
			errno = 0;
			cb_got[i] = iovm_dma_alloc(ctx, sizes[i], 0, 0);
			cb_alloc_errno[i] = cb_got[i] ? 0 : errno;
		}
		cb_free_ret = iovm_dma_free(ctx, (void *)(uintptr_t)0x1000);
		cb_free_small_ret = iovm_dma_free(ctx, cb_small);
	}
	return 0;
}

TEST(dma_alloc_and_free_from_an_event_callback_are_edeadlk)
{
	struct iovm_mem_sub *sub;
	uint8_t *p;

	cb_small = iovm_dma_alloc(ctx, 64, 0, 0);
	CHECK(cb_small != NULL);
	int sr = iovm_mem_event_subscribe(ctx, alloc_in_callback, NULL, &sub);
	CHECK_MSG(sr == 0, "subscribe: %d [%s]", sr, iovm_error_detail());
	atomic_store(&cb_mode, 1);
	/* Something large enough to commit new pages. */
	p = iovm_dma_alloc(ctx, 64u << 20, 0, 0);
	atomic_store(&cb_mode, 0);
	CHECK(p != NULL);
	CHECK_MSG(atomic_load(&cb_ran), "no commit event for a 64 MiB allocation");
	CHECK_OK(iovm_mem_event_unsubscribe(ctx, sub));
	for (int i = 0; i < 3; i++)
		if (cb_got[i])
			iovm_dma_free(ctx, cb_got[i]);
	CHECK_OK(iovm_dma_free(ctx, p));
	if (cb_free_small_ret == -EDEADLK)
		CHECK_OK(iovm_dma_free(ctx, cb_small));
	printf("# in callback: alloc errno %d/%d/%d, free(bogus) %d, free(live 64 B) %d\n",
	       cb_alloc_errno[0], cb_alloc_errno[1], cb_alloc_errno[2], cb_free_ret, cb_free_small_ret);
	EXPECT_MSG(cb_alloc_errno[0] == EDEADLK && cb_alloc_errno[1] == EDEADLK &&
		  cb_alloc_errno[2] == EDEADLK,
		  "alloc of 64 B / 100000 B / 4 MiB inside a COMMIT callback: errno %d/%d/%d "
		  "(pointers %p/%p/%p), expected EDEADLK each",
		  cb_alloc_errno[0], cb_alloc_errno[1], cb_alloc_errno[2], cb_got[0], cb_got[1], cb_got[2]);
	EXPECT_EQ(cb_free_ret, -EDEADLK);
	EXPECT_MSG(cb_free_small_ret == -EDEADLK, "free of a live 64 B allocation inside a COMMIT "
		  "callback: %d, expected -EDEADLK", cb_free_small_ret);
}

TEST(dma_trim_refuses_bad_arguments_and_releases)
{
	CHECK_RET(iovm_dma_trim(NULL, 0), -EINVAL);
	CHECK_RET(iovm_dma_trim(ctx, 1u << 1), -EINVAL);
	CHECK_RET(iovm_dma_trim(ctx, UINT32_MAX), -EINVAL);
	/*
	 * A context of its own: memory goes back in whole commits, and in the
	 * shared one an earlier test's commit (4 KiB pages, when hugepages are
	 * short, commit a run as large as the allocation that made it) may
	 * hold both live memory and part of this block.
	 */
	struct iovm_ctx *own = attack_open("release_delay_ms=60000");
	uint8_t *p = iovm_dma_alloc(own, 8u << 20, 0, 0);
	CHECK(p != NULL);
	memset(p, 1, 8u << 20);
	CHECK_OK(iovm_dma_free(own, p));
	int64_t got = iovm_dma_trim(own, IOVM_TRIM_ALL);
	CHECK(got >= (int64_t)(8u << 20));
	/* Released pages are no longer translated: every one of them. */
	struct iovm_dma_xlate x;
	for (size_t off = 0; off < (8u << 20); off += 4096)
		CHECK_RET(iovm_dma_xlate(own, p + off, &x), -ENOENT);
	CHECK_RET(iovm_dma_trim(own, IOVM_TRIM_ALL), 0);
	CHECK_OK(iovm_close(own));
}

int main(void)
{
	test_init();
	ctx = attack_open("release_delay_ms=60000");
	RUN(dma_alloc_einval_for_each_documented_bad_argument);
	RUN(dma_alloc_boundary_equal_to_size_is_accepted);
	RUN(dma_alloc_huge_sizes_fail_with_enomem_not_a_wrapped_small_buffer);
	RUN(dma_alloc_alignment_and_canaries_for_odd_sizes);
	RUN(dma_alloc_one_gib_alignment_is_accepted);
	RUN(dma_alloc_contig_is_physically_contiguous);
	RUN(dma_alloc_page_flags_give_that_page_size);
	RUN(dma_zero_flag_zeroes_reused_memory);
	RUN(dma_free_refuses_interior_foreign_and_freed_pointers);
	RUN(dma_free_of_freed_pointer_while_neighbours_live);
	RUN(dma_size_refuses_pointers_iovm_did_not_allocate);
	RUN(dma_realloc_keeps_contents_and_honours_new_alignment);
	RUN(dma_realloc_honours_new_boundary_contig_and_page_flags);
	RUN(dma_realloc_failure_leaves_ptr_untouched);
	RUN(dma_alloc_and_free_from_an_event_callback_are_edeadlk);
	RUN(dma_trim_refuses_bad_arguments_and_releases);
	iovm_close(ctx);
	return attack_status();
}
