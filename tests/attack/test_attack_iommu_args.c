/* SPDX-License-Identifier: MIT */
/*
 * test_attack_iommu_args.c - attacks the argument promises of iommu.h:
 * domain attributes, the window of each kind of domain (page 0, the DMA
 * mask, reserved holes, 2^64), alignment and length checks of map, unmap,
 * translate and read_dirty, -EEXIST without side effects, -ENOSPC when
 * the window is full, and unmap's partial and spanning ranges.
 */
#include "attack.h"

static struct iovm_ctx *ctx;
static uint8_t *buf;      /* 4 MiB of heap memory, 2 MiB aligned */
static iovm_pa_t buf_pa;  /* its PA (contiguous) */

#define RW (IOVM_MAP_READ | IOVM_MAP_WRITE)

static struct iovm_domain *mk(enum iovm_domain_type type, uint32_t flags, unsigned bits)
{
	struct iovm_domain_attr a = { .type = type, .flags = flags, .dma_bits = bits };
	struct iovm_domain *d = NULL;

	CHECK_OK(iovm_domain_create(ctx, &a, &d));
	return d;
}

static int mapped(struct iovm_domain *d, uint64_t iova, uint64_t *pa, uint32_t *perm)
{
	iovm_pa_t p;
	uint32_t pm;
	int r = iovm_domain_translate(d, IOVM_IOVA(iova), &p, &pm);

	if (pa)
		*pa = p.addr;
	if (perm)
		*perm = pm;
	return r;
}

TEST(domain_create_refuses_each_bad_attribute)
{
	struct iovm_domain *d;
	struct iovm_iova_range r[2];
	struct iovm_domain_attr a;

	CHECK_RET(iovm_domain_create(NULL, NULL, &d), -EINVAL);
	CHECK_RET(iovm_domain_create(ctx, NULL, NULL), -EINVAL);
	memset(&a, 0, sizeof(a));
	a.type = 5;
	CHECK_RET(iovm_domain_create(ctx, &a, &d), -EINVAL);
	a.type = (enum iovm_domain_type)-1;
	CHECK_RET(iovm_domain_create(ctx, &a, &d), -EINVAL);
	a.type = IOVM_DOMAIN_GUEST;
	CHECK_RET(iovm_domain_create(ctx, &a, &d), -EINVAL);
	a.type = IOVM_DOMAIN_NESTED;
	CHECK_RET(iovm_domain_create(ctx, &a, &d), -EINVAL);
	a.type = IOVM_DOMAIN_MANAGED;
	a.flags = 1u << 2;
	CHECK_RET(iovm_domain_create(ctx, &a, &d), -EINVAL);
	a.flags = 1u << 31;
	CHECK_RET(iovm_domain_create(ctx, &a, &d), -EINVAL);
	a.flags = 0;
	static const unsigned badbits[] = { 1, 12, 31, 49, 52, 57, 64, 65, 1000, UINT32_MAX };
	for (unsigned i = 0; i < sizeof(badbits) / sizeof(badbits[0]); i++) {
		a.dma_bits = badbits[i];
		CHECK_RET(iovm_domain_create(ctx, &a, &d), -EINVAL);
	}
	a.dma_bits = 0;
	/* Reserved ranges without a count, empty, past 2^64. */
	r[0] = (struct iovm_iova_range){ IOVM_IOVA(0x100000), 0x1000 };
	a.reserved = r;
	a.nr_reserved = 0;
	CHECK_RET(iovm_domain_create(ctx, &a, &d), -EINVAL);
	a.reserved = r;
	a.nr_reserved = 1;
	r[0].len = 0;
	CHECK_RET(iovm_domain_create(ctx, &a, &d), -EINVAL);
	r[0] = (struct iovm_iova_range){ IOVM_IOVA(UINT64_MAX - 0xfff), 0x2000 };
	CHECK_RET(iovm_domain_create(ctx, &a, &d), -EINVAL);
	r[0] = (struct iovm_iova_range){ IOVM_IOVA(UINT64_MAX), 2 };
	CHECK_RET(iovm_domain_create(ctx, &a, &d), -EINVAL);
	r[0] = (struct iovm_iova_range){ IOVM_IOVA(2), UINT64_MAX };
	CHECK_RET(iovm_domain_create(ctx, &a, &d), -EINVAL);
	/* Ending exactly at 2^64 is fine; so are overlapping ranges. */
	r[0] = (struct iovm_iova_range){ IOVM_IOVA(UINT64_MAX - 0xfff), 0x1000 };
	r[1] = (struct iovm_iova_range){ IOVM_IOVA(0), UINT64_MAX };
	a.nr_reserved = 1;
	CHECK_RET(iovm_domain_create(ctx, &a, &d), 0);
	CHECK_OK(iovm_domain_destroy(d));
	r[0] = (struct iovm_iova_range){ IOVM_IOVA(0x100000), 0x10000 };
	r[1] = (struct iovm_iova_range){ IOVM_IOVA(0x108000), 0x10000 };
	a.nr_reserved = 2;
	CHECK_RET(iovm_domain_create(ctx, &a, &d), 0);
	CHECK_OK(iovm_domain_destroy(d));
	CHECK_RET(iovm_domain_destroy(NULL), -EINVAL);
	/* The bounds of dma_bits are accepted. */
	a.reserved = NULL;
	a.nr_reserved = 0;
	for (unsigned b = 32; b <= 48; b += 16) {
		a.dma_bits = b;
		CHECK_RET(iovm_domain_create(ctx, &a, &d), 0);
		CHECK_OK(iovm_domain_destroy(d));
	}
}

TEST(map_window_edges_in_a_managed_domain)
{
	for (unsigned bits = 32; bits <= 48; bits += 8) {
		struct iovm_domain *d = mk(IOVM_DOMAIN_MANAGED, 0, bits);
		uint64_t top = 1ull << bits;
		iovm_iova_t io;
		uint64_t pa;

		/* Page 0 is outside the window. */
		io = IOVM_IOVA(0);
		CHECK_RET(iovm_domain_map(d, &io, buf_pa, 4096, RW), -EINVAL);
		CHECK_RET(mapped(d, 0, NULL, NULL), -ENOENT);
		/* The last page below the mask is inside; one more is not. */
		io = IOVM_IOVA(top - 4096);
		CHECK_RET(iovm_domain_map(d, &io, buf_pa, 4096, RW), 0);
		CHECK_EQ(io.addr, top - 4096);
		CHECK_RET(mapped(d, top - 1, &pa, NULL), 0);
		CHECK_EQ(pa, buf_pa.addr + 4095);
		io = IOVM_IOVA(top - 4096);
		CHECK_RET(iovm_domain_map(d, &io, buf_pa, 8192, RW), -EINVAL);
		io = IOVM_IOVA(top);
		CHECK_RET(iovm_domain_map(d, &io, buf_pa, 4096, RW), -EINVAL);
		io = IOVM_IOVA(UINT64_MAX - 4095);
		CHECK_RET(iovm_domain_map(d, &io, buf_pa, 4096, RW), -EINVAL);
		io = IOVM_IOVA(UINT64_MAX & ~0xfffull);
		CHECK_RET(iovm_domain_map(d, &io, buf_pa, 8192, RW), -EINVAL);
		CHECK_RET(mapped(d, top, NULL, NULL), -ENOENT);
		CHECK_RET(mapped(d, UINT64_MAX, NULL, NULL), -ENOENT);
		/* The MSI window is a hole, whole or in part. */
		io = IOVM_IOVA(0xfee00000);
		CHECK_RET(iovm_domain_map(d, &io, buf_pa, 4096, RW), -EINVAL);
		io = IOVM_IOVA(0xfeeff000);
		CHECK_RET(iovm_domain_map(d, &io, buf_pa, 4096, RW), -EINVAL);
		io = IOVM_IOVA(0xfedff000);
		CHECK_RET(iovm_domain_map(d, &io, buf_pa, 8192, RW), -EINVAL);
		CHECK_RET(mapped(d, 0xfedff000, NULL, NULL), -ENOENT); /* nothing of the refused map */
		io = IOVM_IOVA(0xfef00000);
		CHECK_RET(iovm_domain_map(d, &io, buf_pa, 4096, RW), 0);
		io = IOVM_IOVA(0xfedff000);
		CHECK_RET(iovm_domain_map(d, &io, buf_pa, 4096, RW), 0);
		/* Unmap: ending exactly at 2^64 is fine (nothing there); past it is not. */
		CHECK_RET(iovm_domain_unmap(d, IOVM_IOVA(UINT64_MAX - 4095), 4096), -ENOENT);
		CHECK_RET(iovm_domain_unmap(d, IOVM_IOVA(UINT64_MAX - 4095), 8192), -EINVAL);
		CHECK_RET(iovm_domain_unmap(d, IOVM_IOVA(top), 4096), -ENOENT);
		CHECK_RET(iovm_domain_unmap(d, IOVM_IOVA(0), 4096), -ENOENT);
		CHECK_RET(iovm_domain_unmap(d, IOVM_IOVA(8192), SIZE_MAX & ~(size_t)4095), -EINVAL);
		CHECK_RET(iovm_domain_unmap(d, IOVM_IOVA(top - 4096), 4096), 0);
		CHECK_RET(iovm_domain_unmap(d, IOVM_IOVA(0xfef00000), 4096), 0);
		CHECK_RET(iovm_domain_unmap(d, IOVM_IOVA(0xfedff000), 4096), 0);
		CHECK_OK(iovm_domain_destroy(d));
	}
}

TEST(map_window_edges_in_a_va_domain)
{
	struct iovm_domain *d = mk(IOVM_DOMAIN_VA, 0, 48);
	iovm_iova_t io;

	io = IOVM_IOVA(0);
	CHECK_RET(iovm_domain_map(d, &io, buf_pa, 4096, RW), -EINVAL);
	io = IOVM_IOVA((1ull << 48) - 4096);
	CHECK_RET(iovm_domain_map(d, &io, buf_pa, 4096, RW), 0);
	io = IOVM_IOVA(1ull << 48);
	CHECK_RET(iovm_domain_map(d, &io, buf_pa, 4096, RW), -EINVAL);
	/* VA domains have no reserved holes: the MSI window is a plain VA. */
	io = IOVM_IOVA(0xfee00000);
	CHECK_RET(iovm_domain_map(d, &io, buf_pa, 4096, RW), 0);
	CHECK_RET(iovm_domain_unmap(d, IOVM_IOVA(0xfee00000), 4096), 0);
	CHECK_RET(iovm_domain_unmap(d, IOVM_IOVA((1ull << 48) - 4096), 4096), 0);
	/* map_ptr uses the pointer. */
	CHECK_RET(iovm_domain_map_ptr(d, buf, 8192, RW, &io), 0);
	CHECK_EQ(io.addr, (uintptr_t)buf);
	iovm_iova_t io2 = IOVM_IOVA(0);
	/* iovm_dma_iova(): "in a domain that follows the heap (or a VA or identity domain)". */
	CHECK_RET(iovm_dma_iova(d, buf + 100, &io2), 0);
	EXPECT_EQ(io2.addr, (uintptr_t)buf + 100);
	CHECK_RET(iovm_dma_iova(d, buf + 8192, &io2), -ENOENT);
	CHECK_RET(iovm_domain_unmap(d, io, 8192), 0);
	CHECK_RET(iovm_dma_iova(d, buf + 100, &io2), -ENOENT);
	CHECK_OK(iovm_domain_destroy(d));
}

TEST(identity_domain_maps_nothing_and_translates_every_pa)
{
	struct iovm_domain *d = mk(IOVM_DOMAIN_IDENTITY, 0, 0);
	iovm_iova_t io = IOVM_IOVA(buf_pa.addr);
	uint64_t pa;
	uint32_t perm;
	bool acc, dirty;

	CHECK_RET(iovm_domain_map(d, &io, buf_pa, 4096, RW), -EOPNOTSUPP);
	io = IOVM_IOVA_ANY;
	CHECK_RET(iovm_domain_map(d, &io, buf_pa, 4096, RW), -EOPNOTSUPP);
	CHECK_RET(iovm_domain_map_pages(d, &io, &buf_pa, 1, RW), -EOPNOTSUPP);
	CHECK_RET(mapped(d, buf_pa.addr + 123, &pa, &perm), 0);
	CHECK_EQ(pa, buf_pa.addr + 123);
	CHECK_EQ(perm, RW);
	CHECK_RET(iovm_dma_iova(d, buf + 77, &io), 0);
	CHECK_EQ(io.addr, buf_pa.addr + 77);
	CHECK_RET(iovm_domain_map_ptr(d, buf, 4096, RW, &io), 0);
	CHECK_EQ(io.addr, buf_pa.addr);
	CHECK_RET(iovm_domain_read_dirty(d, IOVM_IOVA(buf_pa.addr), 4096, false, &acc, &dirty),
		  -EOPNOTSUPP);
	CHECK_OK(iovm_domain_destroy(d));
}

TEST(map_refuses_misaligned_empty_overflowing_and_foreign_pa)
{
	struct iovm_domain *d = mk(IOVM_DOMAIN_MANAGED, 0, 48);
	struct iovm_phys_stats ps;
	iovm_iova_t io;

	io = IOVM_IOVA(0x10000);
	CHECK_RET(iovm_domain_map(NULL, &io, buf_pa, 4096, RW), -EINVAL);
	CHECK_RET(iovm_domain_map(d, NULL, buf_pa, 4096, RW), -EINVAL);
	CHECK_RET(iovm_domain_map(d, &io, buf_pa, 0, RW), -EINVAL);
	CHECK_RET(iovm_domain_map(d, &io, buf_pa, 4095, RW), -EINVAL);
	CHECK_RET(iovm_domain_map(d, &io, buf_pa, 4097, RW), -EINVAL);
	CHECK_RET(iovm_domain_map(d, &io, IOVM_PA(buf_pa.addr + 1), 4096, RW), -EINVAL);
	io = IOVM_IOVA(0x10001);
	CHECK_RET(iovm_domain_map(d, &io, buf_pa, 4096, RW), -EINVAL);
	io = IOVM_IOVA(0x10000);
	CHECK_RET(iovm_domain_map(d, &io, buf_pa, 4096, 0), -EINVAL);
	CHECK_RET(iovm_domain_map(d, &io, buf_pa, 4096, 1u << 2), -EINVAL);
	CHECK_RET(iovm_domain_map(d, &io, buf_pa, 4096, RW | (1u << 7)), -EINVAL);
	CHECK_RET(iovm_domain_map(d, &io, buf_pa, SIZE_MAX & ~(size_t)4095, RW), -EINVAL);
	io = IOVM_IOVA_ANY;
	CHECK_RET(iovm_domain_map(d, &io, buf_pa, SIZE_MAX & ~(size_t)4095, RW), -EINVAL);
	io = IOVM_IOVA_ANY;
	CHECK_RET(iovm_domain_map(d, &io, buf_pa, (size_t)1 << 63, RW), -EINVAL);
	/* PAs no bank holds. */
	CHECK_OK(iovm_phys_stats(ctx, &ps));
	io = IOVM_IOVA(0x10000);
	CHECK_RET(iovm_domain_map(d, &io, IOVM_PA(UINT64_MAX & ~0xfffull), 4096, RW), -EINVAL);
	CHECK_RET(iovm_domain_map(d, &io, IOVM_PA(1ull << 52), 4096, RW), -EINVAL);
	CHECK_RET(iovm_domain_map(d, &io, IOVM_PA(UINT64_MAX & ~0xfffull), 8192, RW), -EINVAL);
	/* Starting in a bank, running past the PA space's end: (2^64 wraps). */
	CHECK_RET(iovm_domain_map(d, &io, buf_pa, (size_t)(0 - buf_pa.addr), RW), -EINVAL);
	CHECK_RET(mapped(d, 0x10000, NULL, NULL), -ENOENT);
	/* Unmap arguments. */
	CHECK_RET(iovm_domain_unmap(NULL, IOVM_IOVA(0x10000), 4096), -EINVAL);
	CHECK_RET(iovm_domain_unmap(d, IOVM_IOVA(0x10000), 0), -EINVAL);
	CHECK_RET(iovm_domain_unmap(d, IOVM_IOVA(0x10000), 100), -EINVAL);
	CHECK_RET(iovm_domain_unmap(d, IOVM_IOVA(0x10800), 4096), -EINVAL);
	/* Translate and read_dirty arguments. */
	iovm_pa_t pa;
	uint32_t perm;
	bool acc, dirty;
	CHECK_RET(iovm_domain_translate(NULL, IOVM_IOVA(0x10000), &pa, &perm), -EINVAL);
	CHECK_RET(iovm_domain_translate(d, IOVM_IOVA(0x10000), NULL, &perm), -EINVAL);
	CHECK_RET(iovm_domain_read_dirty(d, IOVM_IOVA(0x10000), 0, false, &acc, &dirty), -EINVAL);
	CHECK_RET(iovm_domain_read_dirty(d, IOVM_IOVA(UINT64_MAX - 4095), 8192, false, &acc, &dirty), -EINVAL);
	CHECK_RET(iovm_domain_read_dirty(NULL, IOVM_IOVA(0x10000), 4096, false, &acc, &dirty), -EINVAL);
	CHECK_RET(iovm_domain_read_dirty(d, IOVM_IOVA(0x10000), 4096, false, NULL, &dirty), -EINVAL);
	CHECK_OK(iovm_domain_destroy(d));
}

TEST(map_eexist_has_no_side_effect)
{
	struct iovm_domain *d = mk(IOVM_DOMAIN_MANAGED, 0, 48);
	iovm_iova_t io = IOVM_IOVA(0x400000);
	uint64_t pa;
	uint32_t perm;

	CHECK_RET(iovm_domain_map(d, &io, buf_pa, 4096, IOVM_MAP_READ), 0);
	/* Overlapping at its end: the first page of the new range is free. */
	io = IOVM_IOVA(0x3ff000);
	CHECK_RET(iovm_domain_map(d, &io, IOVM_PA(buf_pa.addr + 0x100000), 8192, RW), -EEXIST);
	EXPECT_MSG(mapped(d, 0x3ff000, NULL, NULL) == -ENOENT,
		   "a map refused with -EEXIST left its first page mapped");
	CHECK_RET(mapped(d, 0x400000, &pa, &perm), 0);
	CHECK_EQ(pa, buf_pa.addr);
	CHECK_EQ(perm, IOVM_MAP_READ);
	/* Same with map_pages. */
	iovm_pa_t pages[3] = { IOVM_PA(buf_pa.addr + 0x200000), IOVM_PA(buf_pa.addr + 0x201000),
			       IOVM_PA(buf_pa.addr + 0x202000) };
	io = IOVM_IOVA(0x3fe000);
	CHECK_RET(iovm_domain_map_pages(d, &io, pages, 3, RW), -EEXIST);
	EXPECT_MSG(mapped(d, 0x3fe000, NULL, NULL) == -ENOENT && mapped(d, 0x3ff000, NULL, NULL) == -ENOENT,
		   "map_pages refused with -EEXIST left pages mapped");
	CHECK_RET(mapped(d, 0x400000, &pa, &perm), 0);
	CHECK_EQ(pa, buf_pa.addr);
	/* A huge mapping, then a 4 KiB map inside it. */
	io = IOVM_IOVA(0x40000000);
	CHECK_RET(iovm_domain_map(d, &io, buf_pa, 2u << 20, RW), 0);
	io = IOVM_IOVA(0x40001000);
	CHECK_RET(iovm_domain_map(d, &io, buf_pa, 4096, RW), -EEXIST);
	io = IOVM_IOVA(0x401ff000);
	CHECK_RET(iovm_domain_map(d, &io, buf_pa, 8192, RW), -EEXIST);
	EXPECT(mapped(d, 0x40200000, NULL, NULL) == -ENOENT);
	CHECK_RET(mapped(d, 0x40001000, &pa, NULL), 0);
	CHECK_EQ(pa, buf_pa.addr + 0x1000);
	CHECK_OK(iovm_domain_destroy(d));
}

TEST(unmap_partial_spanning_and_absent_ranges)
{
	struct iovm_domain *d = mk(IOVM_DOMAIN_MANAGED, 0, 48);
	iovm_iova_t io = IOVM_IOVA(0x40000000);
	uint64_t pa;
	struct iovm_domain_stats st;

	CHECK_RET(iovm_domain_map(d, &io, buf_pa, 4u << 20, RW), 0);
	CHECK_OK(iovm_domain_stats(d, &st));
	EXPECT_MSG(st.leaves_2m == 2, "4 MiB at a 2 MiB aligned IOVA and PA: %llu 2 MiB leaves",
		   (unsigned long long)st.leaves_2m);
	/* A 4 KiB hole in the first leaf, a 12 KiB one across the two. */
	CHECK_RET(iovm_domain_unmap(d, IOVM_IOVA(0x40100000), 4096), 0);
	CHECK_RET(iovm_domain_unmap(d, IOVM_IOVA(0x401ff000), 12288), 0);
	for (uint64_t off = 0; off < (4u << 20); off += 4096) {
		int hole = off == 0x100000 || (off >= 0x1ff000 && off < 0x202000);
		int r = mapped(d, 0x40000000 + off, &pa, NULL);
		if (hole) {
			EXPECT_MSG(r == -ENOENT, "hole at +%#llx still mapped", (unsigned long long)off);
		} else {
			EXPECT_MSG(r == 0 && pa == buf_pa.addr + off, "+%#llx: %d %#llx", (unsigned long long)off,
				   r, (unsigned long long)pa);
		}
	}
	/* The holes map again at once (item 7). */
	io = IOVM_IOVA(0x40100000);
	CHECK_RET(iovm_domain_map(d, &io, IOVM_PA(buf_pa.addr + 0x300000), 4096, IOVM_MAP_READ), 0);
	io = IOVM_IOVA(0x401ff000);
	CHECK_RET(iovm_domain_map(d, &io, IOVM_PA(buf_pa.addr + 0x1ff000), 12288, RW), 0);
	CHECK_RET(mapped(d, 0x40100000, &pa, NULL), 0);
	CHECK_EQ(pa, buf_pa.addr + 0x300000);
	/* An unmap over mapped and unmapped parts takes what is there. */
	CHECK_RET(iovm_domain_unmap(d, IOVM_IOVA(0x3fe00000), 8u << 20), 0);
	CHECK_RET(mapped(d, 0x40000000, NULL, NULL), -ENOENT);
	CHECK_RET(mapped(d, 0x403ff000, NULL, NULL), -ENOENT);
	CHECK_RET(iovm_domain_unmap(d, IOVM_IOVA(0x40000000), 4u << 20), -ENOENT);
	CHECK_OK(iovm_domain_destroy(d));
}

TEST(map_any_fills_a_32_bit_window_then_enospc)
{
	struct iovm_domain *d = mk(IOVM_DOMAIN_MANAGED, 0, 32);
	enum { MAX = 4096 };
	static uint64_t got[MAX];
	int n = 0, r = 0;

	for (n = 0; n < MAX; n++) {
		iovm_iova_t io = IOVM_IOVA_ANY;
		r = iovm_domain_map(d, &io, buf_pa, 2u << 20, IOVM_MAP_READ);
		if (r)
			break;
		got[n] = io.addr;
		EXPECT_MSG(io.addr && io.addr + (2u << 20) <= (1ull << 32) && !(io.addr & 4095),
			   "IOVA %#llx outside the 32-bit window", (unsigned long long)io.addr);
		EXPECT_MSG(io.addr + (2u << 20) <= 0xfee00000 || io.addr >= 0xfef00000,
			   "IOVA %#llx in the MSI hole", (unsigned long long)io.addr);
	}
	CHECK_RET(r, -ENOSPC);
	CHECK_MSG(n > 2000, "only %d 2 MiB maps in a 4 GiB window", n);
	/* Pairwise distinct: sort and compare neighbours. */
	for (int i = 1; i < n; i++) {
		uint64_t v = got[i];
		int j = i - 1;
		while (j >= 0 && got[j] > v) {
			got[j + 1] = got[j];
			j--;
		}
		got[j + 1] = v;
	}
	for (int i = 1; i < n; i++)
		EXPECT_MSG(got[i] >= got[i - 1] + (2u << 20), "IOVAs %#llx and %#llx overlap",
			   (unsigned long long)got[i - 1], (unsigned long long)got[i]);
	/* A 4 KiB map may still fit; then unmap one and 2 MiB fits again. */
	CHECK_RET(iovm_domain_unmap(d, IOVM_IOVA(got[n / 2]), 2u << 20), 0);
	iovm_iova_t io = IOVM_IOVA_ANY;
	CHECK_RET(iovm_domain_map(d, &io, buf_pa, 2u << 20, IOVM_MAP_READ), 0);
	CHECK_OK(iovm_domain_destroy(d));
}

TEST(map_any_in_a_full_deferred_window_after_unmap)
{
	/* Everything taken, one range unmapped and queued: what does ANY do? */
	struct iovm_domain *d = mk(IOVM_DOMAIN_MANAGED, IOVM_DOMAIN_DEFERRED, 32);
	uint64_t last = 0;
	int r, n;

	for (n = 0;; n++) {
		iovm_iova_t io = IOVM_IOVA_ANY;
		r = iovm_domain_map(d, &io, buf_pa, 2u << 20, IOVM_MAP_READ);
		if (r)
			break;
		last = io.addr;
	}
	CHECK_RET(r, -ENOSPC);
	CHECK_RET(iovm_domain_unmap(d, IOVM_IOVA(last), 2u << 20), 0);
	iovm_iova_t io = IOVM_IOVA_ANY;
	r = iovm_domain_map(d, &io, buf_pa, 2u << 20, IOVM_MAP_READ);
	printf("# deferred, full window, one range in quarantine: map ANY -> %d\n", r);
	CHECK(r == 0 || r == -ENOSPC);
	CHECK_OK(iovm_domain_flush(d));
	if (r) {
		io = IOVM_IOVA_ANY;
		CHECK_RET(iovm_domain_map(d, &io, buf_pa, 2u << 20, IOVM_MAP_READ), 0);
	}
	CHECK_OK(iovm_domain_destroy(d));
}

TEST(translate_ignores_no_iova_bit)
{
	/* An IOVA with high bits set never reaches a low mapping (item 6, translate side). */
	static const unsigned types[] = { IOVM_DOMAIN_MANAGED, IOVM_DOMAIN_VA };
	for (unsigned t = 0; t < 2; t++) {
		struct iovm_domain *d = mk(types[t], 0, 48);
		iovm_iova_t io = IOVM_IOVA(0x200000);
		CHECK_RET(iovm_domain_map(d, &io, buf_pa, 2u << 20, RW), 0);
		for (unsigned bit = 21; bit < 64; bit++) {
			uint64_t a = 0x200000 | (1ull << bit);
			if (a >= 0x200000 && a < 0x400000)
				continue;
			EXPECT_MSG(mapped(d, a, NULL, NULL) == -ENOENT, "type %u: %#llx translates",
				   types[t], (unsigned long long)a);
		}
		CHECK_OK(iovm_domain_destroy(d));
	}
}

TEST(fault_queue_pop_and_handler_arguments)
{
	struct iovm_domain *d = mk(IOVM_DOMAIN_MANAGED, 0, 48);
	struct iovm_fault f;

	CHECK_RET(iovm_domain_fault_pop(d, &f), -EAGAIN);
	CHECK_RET(iovm_domain_fault_pop(NULL, &f), -EINVAL);
	CHECK_RET(iovm_domain_fault_pop(d, NULL), -EINVAL);
	CHECK_RET(iovm_domain_set_fault_handler(NULL, NULL, NULL), -EINVAL);
	CHECK_RET(iovm_domain_set_fault_handler(d, NULL, NULL), 0);
	CHECK_RET(iovm_domain_flush(NULL), -EINVAL);
	CHECK_RET(iovm_domain_flush(d), 0);
	struct iovm_domain_stats st;
	CHECK_RET(iovm_domain_stats(NULL, &st), -EINVAL);
	CHECK_RET(iovm_domain_stats(d, NULL), -EINVAL);
	CHECK_OK(iovm_domain_destroy(d));
}

TEST(map_pages_and_map_ptr_arguments_and_results)
{
	struct iovm_domain *d = mk(IOVM_DOMAIN_MANAGED, 0, 48);
	enum { N = 1500 };
	static iovm_pa_t pages[N];
	uint8_t *m = iovm_dma_alloc(ctx, N * 4096, 4096, IOVM_DMA_PAGE_4K);
	iovm_iova_t io;
	uint64_t pa;
	uint32_t perm;

	CHECK(m != NULL);
	/* Scattered order: page i maps the (i * 7 % N)th page of m. */
	for (unsigned i = 0; i < N; i++)
		CHECK_OK(iovm_dma_pa(ctx, m + (size_t)(i * 7 % N) * 4096, &pages[i]));
	io = IOVM_IOVA_ANY;
	CHECK_RET(iovm_domain_map_pages(d, &io, pages, 0, RW), -EINVAL);
	CHECK_RET(iovm_domain_map_pages(d, &io, NULL, 4, RW), -EINVAL);
	CHECK_RET(iovm_domain_map_pages(NULL, &io, pages, 4, RW), -EINVAL);
	iovm_pa_t odd[2] = { pages[0], IOVM_PA(pages[1].addr + 8) };
	CHECK_RET(iovm_domain_map_pages(d, &io, odd, 2, RW), -EINVAL);
	CHECK_RET(iovm_domain_map_pages(d, &io, pages, 0, 1u << 4), -EINVAL);
	io = IOVM_IOVA_ANY;
	CHECK_RET(iovm_domain_map_pages(d, &io, pages, N, RW), 0);
	for (unsigned i = 0; i < N; i++) {
		int r = mapped(d, io.addr + (uint64_t)i * 4096 + 9, &pa, &perm);
		if (r || pa != pages[i].addr + 9) {
			EXPECT_MSG(0, "map_pages: page %u: %d %#llx, expected %#llx", i, r, (unsigned long long)pa,
				   (unsigned long long)(pages[i].addr + 9));
			break;
		}
	}
	CHECK_RET(mapped(d, io.addr + (uint64_t)N * 4096, NULL, NULL), -ENOENT);
	CHECK_RET(iovm_domain_unmap(d, IOVM_IOVA(io.addr + 4096), 4096 * 600), 0);
	CHECK_RET(mapped(d, io.addr, &pa, NULL), 0);
	CHECK_RET(mapped(d, io.addr + 4096, NULL, NULL), -ENOENT);
	CHECK_RET(mapped(d, io.addr + 601 * 4096, &pa, NULL), 0);
	EXPECT_EQ(pa, pages[601].addr);
	CHECK_RET(iovm_domain_unmap(d, io, (size_t)N * 4096), 0);
	/* map_ptr: alignment, committed memory. */
	CHECK_RET(iovm_domain_map_ptr(d, m + 1, 4096, RW, &io), -EINVAL);
	CHECK_RET(iovm_domain_map_ptr(d, m, 4095, RW, &io), -EINVAL);
	CHECK_RET(iovm_domain_map_ptr(d, m, 0, RW, &io), -EINVAL);
	CHECK_RET(iovm_domain_map_ptr(d, m, 4096, RW, NULL), -EINVAL);
	static uint8_t stat_buf[8192] __attribute__((aligned(4096)));
	CHECK_RET(iovm_domain_map_ptr(d, stat_buf, 4096, RW, &io), -ENOENT);
	CHECK_RET(iovm_domain_map_ptr(d, m, (size_t)N * 4096, RW, &io), 0);
	for (unsigned i = 0; i < N; i += 97) {
		iovm_pa_t want;
		CHECK_OK(iovm_dma_pa(ctx, m + (size_t)i * 4096, &want));
		CHECK_RET(mapped(d, io.addr + (uint64_t)i * 4096, &pa, NULL), 0);
		EXPECT_EQ(pa, want.addr);
	}
	iovm_iova_t io2;
	int r = iovm_dma_iova(d, m + 5, &io2);
	printf("# iovm_dma_iova in a managed domain that does not follow the heap, of memory mapped "
	       "by map_ptr: %d\n", r);
	CHECK_RET(iovm_domain_unmap(d, io, (size_t)N * 4096), 0);
	CHECK_OK(iovm_dma_free(ctx, m));
	CHECK_OK(iovm_domain_destroy(d));
}

int main(void)
{
	test_init();
	ctx = attack_open(NULL);
	buf = iovm_dma_alloc(ctx, 4u << 20, 2u << 20, IOVM_DMA_CONTIG);
	CHECK(buf != NULL);
	CHECK_OK(iovm_dma_pa(ctx, buf, &buf_pa));
	if (buf_pa.addr & ((2u << 20) - 1)) {
		/* 4 KiB pages: the 2 MiB leaf checks need a 2 MiB aligned PA. */
		iovm_dma_free(ctx, buf);
		buf = iovm_dma_alloc(ctx, 6u << 20, 0, IOVM_DMA_CONTIG);
		CHECK(buf != NULL);
		CHECK_OK(iovm_dma_pa(ctx, buf, &buf_pa));
		size_t skip = ((buf_pa.addr + (2u << 20) - 1) & ~(uint64_t)((2u << 20) - 1)) - buf_pa.addr;
		buf += skip;
		buf_pa.addr += skip;
	}
	RUN(domain_create_refuses_each_bad_attribute);
	RUN(map_window_edges_in_a_managed_domain);
	RUN(map_window_edges_in_a_va_domain);
	RUN(identity_domain_maps_nothing_and_translates_every_pa);
	RUN(map_refuses_misaligned_empty_overflowing_and_foreign_pa);
	RUN(map_eexist_has_no_side_effect);
	RUN(unmap_partial_spanning_and_absent_ranges);
	RUN(map_any_fills_a_32_bit_window_then_enospc);
	RUN(map_any_in_a_full_deferred_window_after_unmap);
	RUN(translate_ignores_no_iova_bit);
	RUN(fault_queue_pop_and_handler_arguments);
	RUN(map_pages_and_map_ptr_arguments_and_results);
	iovm_close(ctx);
	return attack_status();
}
