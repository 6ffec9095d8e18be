/* SPDX-License-Identifier: MIT */
/*
 * test_mirror.c - a managed domain mirrored into another IOMMU (as a VFIO
 * device's domain is into the kernel's): a fake mirror records what it is
 * told, and must hold exactly what iovm's table maps, in runs; IOVAs come
 * only from the usable ranges; a refused map is undone; mappings made
 * before the mirror are replayed to it; heap-following domains too.
 */
#include "dev/dev_util.h"
#include "iommu/iommu.h"

#define RW (IOVM_MAP_READ | IOVM_MAP_WRITE)
#define MAXE 256

static const char *opts = "page_size=4K,host_pa=off,oracle=on";

struct held_range {
	uint64_t iova, len;
	bool write;
	uint8_t *va;
};

/* The fake: a list of [iova, iova+len) it holds, and how it was asked. */
struct fake {
	struct held_range e[MAXE];
	unsigned n, maps, unmaps;
	unsigned cuts;  /* unmaps that took part of an entry: a kernel IOMMU would unmap it all first */
	int fail_next; /* refuse the next map with this */
};

static int fake_map(void *arg, iova_t at, void *va, uint64_t len, bool write)
{
	uint64_t iova = iova_val(at);
	struct fake *f = arg;

	CHECK(va != NULL);
	f->maps++;
	if (f->fail_next) {
		int ret = f->fail_next;

		f->fail_next = 0;
		return ret;
	}
	for (unsigned i = 0; i < f->n; i++)
		CHECK_MSG(iova + len <= f->e[i].iova || iova >= f->e[i].iova + f->e[i].len, "mapped twice");
	CHECK(f->n < MAXE);
	f->e[f->n++] = (struct held_range){ iova, len, write, va };
	return 0;
}

static void fake_unmap(void *arg, iova_t at, uint64_t len)
{
	uint64_t iova = iova_val(at);
	struct fake *f = arg;

	f->unmaps++;
	for (unsigned i = 0; i < f->n;) {
		uint64_t s = f->e[i].iova, e = s + f->e[i].len;

		if (e <= iova || s >= iova + len) {
			i++;
			continue;
		}
		/* What is left either side stays held. */
		struct held_range old = f->e[i];

		if (s < iova || e > iova + len)
			f->cuts++;
		f->e[i] = f->e[--f->n];
		if (s < iova)
			f->e[f->n++] = (struct held_range){ s, iova - s, old.write, old.va };
		if (e > iova + len)
			f->e[f->n++] = (struct held_range){ iova + len, e - iova - len, old.write,
							    old.va + (iova + len - s) };
	}
}

static const struct iommu_mirror_ops fake_ops = { .map = fake_map, .unmap = fake_unmap };

static iovm_pa_t pa_of(struct iovm_ctx *ctx, const void *p)
{
	struct iovm_dma_xlate x;

	CHECK_OK(iovm_dma_xlate(ctx, p, &x));
	return x.pa;
}

/* Bytes the fake holds inside [iova, +len). */
static uint64_t held(const struct fake *f, uint64_t iova, uint64_t len)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < f->n; i++) {
		uint64_t s = MAX(iova, f->e[i].iova), e = MIN(iova + len, f->e[i].iova + f->e[i].len);

		if (s < e)
			n += e - s;
	}
	return n;
}

/* Entries of the fake that overlap [iova, +len), and the process address that maps @iova. */
static unsigned entries_in(const struct fake *f, uint64_t iova, uint64_t len, uint8_t **va)
{
	unsigned n = 0;

	*va = NULL;
	for (unsigned i = 0; i < f->n; i++) {
		if (f->e[i].iova + f->e[i].len <= iova || f->e[i].iova >= iova + len)
			continue;
		n++;
		if (iova >= f->e[i].iova && iova < f->e[i].iova + f->e[i].len)
			*va = f->e[i].va + (iova - f->e[i].iova);
	}
	return n;
}

static uint64_t total(const struct fake *f)
{
	return held(f, 0, UINT64_MAX);
}

TEST(maps_and_unmaps_mirrored)
{
	struct iovm_ctx *ctx = open_ctx(opts);
	struct iovm_domain *dom;
	struct fake f = { 0 };
	iovm_iova_t a, b;
	uint8_t *buf = iovm_dma_alloc(ctx, 64 * 4096, 4096, 0), *early = iovm_dma_alloc(ctx, 4096, 4096, 0);
	/* What the other IOMMU can map: below 4 GiB but its MSI window, and [8 GiB, 16 GiB). */
	struct iommu_iova_range usable[] = { { { 0x1000 }, 0xfedff000 }, { { 0xfef00000 }, 0x1100000 },
					     { { 0x200000000 }, 0x200000000 } };

	CHECK_OK(iovm_domain_create(ctx, NULL, &dom));
	/*
	 * Mapped before the mirror, where the other IOMMU can map (iovm's
	 * allocator gives high IOVAs first, beyond what it could): replayed.
	 */
	a = IOVM_IOVA(0x10000000);
	CHECK_OK(iovm_domain_map(dom, &a, pa_of(ctx, early), 4096, IOVM_MAP_READ));
	CHECK_OK(iommu_domain_mirror(dom, &fake_ops, &f, usable, 3));
	CHECK_EQ(iommu_domain_mirror(dom, &fake_ops, &f, usable, 3), -EBUSY);
	CHECK_EQ(f.n, 1);
	CHECK_EQ(held(&f, a.addr, 4096), 4096);
	CHECK(!f.e[0].write);
	/* A mapping now: held whole, writable, at an IOVA inside the usable ranges. */
	CHECK_OK(iovm_domain_map_ptr(dom, buf, 64 * 4096, RW, &b));
	CHECK_EQ(held(&f, b.addr, 64 * 4096), 64 * 4096);
	CHECK(b.addr + 64 * 4096 <= 0xfee00000 || (b.addr >= 0xfef00000 && b.addr + 64 * 4096 <= 0x100000000) ||
	      (b.addr >= 0x200000000 && b.addr + 64 * 4096 <= 0x400000000));
	/* A partial unmap: the rest stays held. */
	CHECK_OK(iovm_domain_unmap(dom, IOVM_IOVA(b.addr + 16 * 4096), 8 * 4096));
	CHECK_EQ(held(&f, b.addr, 64 * 4096), 56 * 4096);
	CHECK_EQ(held(&f, b.addr + 16 * 4096, 8 * 4096), 0);
	/* An explicit IOVA outside the usable ranges is refused: outside the window, as a hole. */
	{
		iovm_iova_t out = IOVM_IOVA(0x100000000);

		CHECK_EQ(iovm_domain_map(dom, &out, pa_of(ctx, early), 4096, RW), -EINVAL);
		out = IOVM_IOVA(0x500000000);
		CHECK_EQ(iovm_domain_map(dom, &out, pa_of(ctx, early), 4096, RW), -EINVAL);
	}
	/* A map the mirror refuses fails, and leaves nothing mapped in iovm's table either. */
	{
		iovm_iova_t c;
		uint64_t before = total(&f);

		f.fail_next = -ENOSPC;
		CHECK_EQ(iovm_domain_map_ptr(dom, buf, 4 * 4096, RW, &c), -ENOSPC);
		CHECK_EQ(total(&f), before);
	}
	/* Many allocations: every IOVA inside the usable ranges. */
	for (unsigned i = 0; i < 32; i++) {
		iovm_iova_t c;
		uint64_t end;

		CHECK_OK(iovm_domain_map_ptr(dom, buf, 4096, RW, &c));
		end = c.addr + 4096;
		CHECK((c.addr >= 0x1000 && end <= 0xfee00000) || (c.addr >= 0xfef00000 && end <= 0x100000000) ||
		      (c.addr >= 0x200000000 && end <= 0x400000000));
		CHECK_OK(iovm_domain_unmap(dom, c, 4096));
	}
	CHECK_OK(iovm_domain_unmap(dom, b, 64 * 4096));
	CHECK_OK(iovm_domain_unmap(dom, a, 4096));
	CHECK_EQ(total(&f), 0);
	iommu_domain_unmirror(dom);
	/* Unmirrored: the reserved IOVAs are given back (the whole space is usable again). */
	{
		iovm_iova_t out = IOVM_IOVA(0x500000000);

		CHECK_OK(iovm_domain_map(dom, &out, pa_of(ctx, early), 4096, RW));
		CHECK_OK(iovm_domain_unmap(dom, out, 4096));
	}
	CHECK_OK(iovm_domain_destroy(dom));
	iovm_close(ctx);
}

TEST(heap_followed)
{
	struct iovm_ctx *ctx = open_ctx(opts);
	struct iovm_domain_attr attr = { .type = IOVM_DOMAIN_MANAGED, .flags = IOVM_DOMAIN_FOLLOW_HEAP };
	struct iovm_domain *dom;
	struct fake f = { 0 };
	iovm_iova_t iova;
	uint8_t *p;

	CHECK_OK(iovm_domain_create(ctx, &attr, &dom));
	CHECK_OK(iommu_domain_mirror(dom, &fake_ops, &f, NULL, 0));
	p = iovm_dma_alloc(ctx, 1 << 20, 4096, 0);
	CHECK(p != NULL);
	CHECK_OK(iovm_dma_iova(dom, p, &iova));
	/* Committed memory is mapped for the other IOMMU as it is for iovm's. */
	CHECK_EQ(held(&f, iova.addr, 1 << 20), 1 << 20);
	CHECK(f.maps >= 1);
	/* What one commit made is one range for the mirror, at the heap's own addresses. */
	{
		uint8_t *va;

		CHECK_EQ(entries_in(&f, iova.addr, 1 << 20, &va), 1);
		CHECK(va == p);
	}
	iommu_domain_unmirror(dom);
	CHECK_OK(iovm_domain_destroy(dom));
	iovm_close(ctx);
}

/*
 * The heap gives memory back in whole commits: a commit is one entry for
 * the mirror, and a kernel IOMMU unmaps whole entries only, so a page
 * given back out of a commit still in use would unmap its live rest for a
 * moment. Free pages of such a commit stay until all of it is free, and a
 * contiguous allocation does not take them apart either.
 */
TEST(heap_trimmed_in_whole_commits)
{
	struct iovm_ctx *ctx = open_ctx(opts);
	struct iovm_domain_attr attr = { .type = IOVM_DOMAIN_MANAGED, .flags = IOVM_DOMAIN_FOLLOW_HEAP };
	struct iovm_domain *dom;
	struct fake f = { 0 };
	iovm_iova_t iova, iq;
	uint8_t *p, *q, *c, *va;
	unsigned unmaps;

	CHECK_OK(iovm_domain_create(ctx, &attr, &dom));
	CHECK_OK(iommu_domain_mirror(dom, &fake_ops, &f, NULL, 0));
	p = iovm_dma_alloc(ctx, 1 << 20, 4096, 0);
	CHECK(p != NULL);
	CHECK_OK(iovm_dma_iova(dom, p, &iova));
	CHECK_EQ(entries_in(&f, iova.addr, 1 << 20, &va), 1);
	/* Shrunk in place to its first 64 KiB: the other 960 KiB of the commit are free. */
	CHECK(iovm_dma_realloc(ctx, p, 64 << 10, 4096, 0) == p);
	memset(p, 0x5a, 64 << 10);
	unmaps = f.unmaps;
	CHECK_EQ(iovm_dma_trim(ctx, IOVM_TRIM_ALL), 0);
	CHECK_EQ(f.unmaps, unmaps);
	CHECK_EQ(held(&f, iova.addr, 1 << 20), 1 << 20);
	/* The free part serves the next allocation, still in the same entry. */
	q = iovm_dma_alloc(ctx, 128 << 10, 4096, 0);
	CHECK(q != NULL);
	CHECK_OK(iovm_dma_iova(dom, q, &iq));
	CHECK(q > p && q < p + (1 << 20));
	CHECK_EQ(entries_in(&f, iq.addr, 128 << 10, &va), 1);
	/* A physically contiguous allocation does not cut the commit either. */
	c = iovm_dma_alloc(ctx, 256 << 10, 4096, IOVM_DMA_CONTIG);
	CHECK(c != NULL);
	{
		struct iovm_dma_xlate x;

		CHECK_OK(iovm_dma_xlate(ctx, c, &x));
		CHECK(x.contig >= 256 << 10);
	}
	CHECK_EQ(held(&f, iova.addr, 1 << 20), 1 << 20);
	CHECK_EQ(f.cuts, 0);
	/* All of it free: the commit goes, as one unmap of the whole entry. */
	iovm_dma_free(ctx, c);
	iovm_dma_free(ctx, q);
	iovm_dma_free(ctx, p);
	unmaps = f.unmaps;
	CHECK(iovm_dma_trim(ctx, IOVM_TRIM_ALL) >= 1 << 20);
	CHECK(f.unmaps > unmaps);
	CHECK_EQ(held(&f, iova.addr, 1 << 20), 0);
	CHECK_EQ(f.cuts, 0);
	iommu_domain_unmirror(dom);
	CHECK_OK(iovm_domain_destroy(dom));
	iovm_close(ctx);
}

/*
 * The mirror is told process addresses: a range contiguous in IOVA and in
 * the process's address space is one range for it, however scattered its
 * pages; pages that are not contiguous in the process are not merged.
 */
TEST(coalesced_by_process_address)
{
	struct iovm_ctx *ctx = open_ctx(opts);
	struct iovm_domain *dom;
	struct fake f = { 0 };
	iovm_pa_t pages[16];
	iovm_iova_t a, b, c;
	uint8_t *buf = iovm_dma_alloc(ctx, 16 * 4096, 4096, 0), *va;

	CHECK(buf != NULL);
	CHECK_OK(iovm_domain_create(ctx, NULL, &dom));
	CHECK_OK(iommu_domain_mirror(dom, &fake_ops, &f, NULL, 0));
	CHECK_OK(iovm_domain_map_ptr(dom, buf, 16 * 4096, RW, &a));
	CHECK_EQ(entries_in(&f, a.addr, 16 * 4096, &va), 1);
	CHECK(va == buf);
	/* Page by page in order: one range again. */
	for (unsigned i = 0; i < 16; i++)
		pages[i] = pa_of(ctx, buf + i * 4096);
	b = IOVM_IOVA(IOVM_ADDR_INVALID);
	CHECK_OK(iovm_domain_map_pages(dom, &b, pages, 16, IOVM_MAP_READ));
	CHECK_EQ(entries_in(&f, b.addr, 16 * 4096, &va), 1);
	CHECK(va == buf);
	/* Backwards: each page on its own, each at its own address. */
	for (unsigned i = 0; i < 16; i++)
		pages[i] = pa_of(ctx, buf + (15 - i) * 4096);
	c = IOVM_IOVA(IOVM_ADDR_INVALID);
	CHECK_OK(iovm_domain_map_pages(dom, &c, pages, 16, RW));
	CHECK_EQ(entries_in(&f, c.addr, 16 * 4096, &va), 16);
	for (unsigned i = 0; i < 16; i++) {
		CHECK_EQ(entries_in(&f, c.addr + i * 4096, 4096, &va), 1);
		CHECK(va == buf + (15 - i) * 4096);
	}
	/* A refusal in the middle of a batch: nothing of it is left held. */
	{
		iovm_iova_t d = IOVM_IOVA(IOVM_ADDR_INVALID);
		uint64_t before = total(&f);

		f.fail_next = -ENOSPC;
		CHECK_EQ(iovm_domain_map_pages(dom, &d, pages, 16, RW), -ENOSPC);
		CHECK_EQ(total(&f), before);
	}
	CHECK_OK(iovm_domain_unmap(dom, a, 16 * 4096));
	CHECK_OK(iovm_domain_unmap(dom, b, 16 * 4096));
	CHECK_OK(iovm_domain_unmap(dom, c, 16 * 4096));
	CHECK_EQ(total(&f), 0);
	iommu_domain_unmirror(dom);
	CHECK_OK(iovm_domain_destroy(dom));
	iovm_close(ctx);
}

/*
 * Deferred invalidation: the mirror keeps an unmapped range (the kernel's
 * mapping is the device's IOTLB) until the flush, which unmaps adjacent
 * ranges in one call; the IOVAs are not handed out again before.
 */
TEST(deferred_unmaps_at_the_flush)
{
	struct iovm_ctx *ctx = open_ctx(opts);
	struct iovm_domain_attr attr = { .type = IOVM_DOMAIN_MANAGED, .flags = IOVM_DOMAIN_DEFERRED,
					 .flush_batch = 64, .flush_timeout_us = 60000000 };
	struct iovm_domain *dom;
	struct fake f = { 0 };
	iovm_iova_t io[8];
	uint8_t *buf = iovm_dma_alloc(ctx, 8 * 4096, 4096, 0);
	unsigned unmaps;

	CHECK(buf != NULL);
	CHECK_OK(iovm_domain_create(ctx, &attr, &dom));
	CHECK_OK(iommu_domain_mirror(dom, &fake_ops, &f, NULL, 0));
	for (unsigned i = 0; i < 8; i++)
		CHECK_OK(iovm_domain_map_ptr(dom, buf + i * 4096, 4096, RW, &io[i]));
	CHECK_EQ(total(&f), 8 * 4096);
	unmaps = f.unmaps;
	for (unsigned i = 0; i < 8; i++)
		CHECK_OK(iovm_domain_unmap(dom, io[i], 4096));
	/* Unmapped in iovm's table; still in the mirror, as in a stale IOTLB. */
	CHECK_EQ(f.unmaps, unmaps);
	CHECK_EQ(total(&f), 8 * 4096);
	{
		iovm_iova_t again;

		/* Quarantined: a new mapping gets none of those IOVAs. */
		CHECK_OK(iovm_domain_map_ptr(dom, buf, 4096, RW, &again));
		for (unsigned i = 0; i < 8; i++)
			CHECK(again.addr != io[i].addr);
		CHECK_EQ(held(&f, again.addr, 4096), 4096);
		CHECK_OK(iovm_domain_flush(dom));
		/* The flush takes the eight away, and leaves the live mapping. */
		CHECK_EQ(total(&f), 4096);
		CHECK_EQ(held(&f, again.addr, 4096), 4096);
		CHECK_OK(iovm_domain_unmap(dom, again, 4096));
	}
	/* Adjacent IOVAs (the allocator hands them out in order): fewer calls than ranges. */
	CHECK(f.unmaps - unmaps < 8);
	CHECK_OK(iovm_domain_flush(dom));
	CHECK_EQ(total(&f), 0);
	iommu_domain_unmirror(dom);
	CHECK_OK(iovm_domain_destroy(dom));
	iovm_close(ctx);
}

TEST(bad_mirror)
{
	struct iovm_ctx *ctx = open_ctx(opts);
	struct iovm_domain_attr va = { .type = IOVM_DOMAIN_VA };
	struct iovm_domain *dom, *vdom;
	struct fake f = { 0 };
	struct iommu_mirror_ops half = { .map = fake_map };
	struct iommu_iova_range empty[] = { { { 0x200000 }, 0 } };
	struct iommu_iova_range past_the_top[] = { { { UINT64_MAX - 0xfff }, 0x2000 } };
	struct iommu_iova_range unordered[] = { { { 0x100000000 }, 0x100000000 }, { { 0x1000 }, 0xf000 } };
	uint8_t *p = iovm_dma_alloc(ctx, 4096, 4096, 0);
	iovm_iova_t at = IOVM_IOVA(0x300000000);

	CHECK_OK(iovm_domain_create(ctx, NULL, &dom));
	CHECK_OK(iovm_domain_create(ctx, &va, &vdom));
	CHECK_EQ(iommu_domain_mirror(NULL, &fake_ops, &f, NULL, 0), -EINVAL);
	CHECK_EQ(iommu_domain_mirror(dom, NULL, &f, NULL, 0), -EINVAL);
	CHECK_EQ(iommu_domain_mirror(dom, &half, &f, NULL, 0), -EINVAL);
	CHECK_EQ(iommu_domain_mirror(dom, &fake_ops, &f, NULL, 1), -EINVAL);
	CHECK_EQ(iommu_domain_mirror(dom, &fake_ops, &f, empty, 1), -EINVAL);
	CHECK_EQ(iommu_domain_mirror(dom, &fake_ops, &f, past_the_top, 1), -EINVAL);
	CHECK_EQ(iommu_domain_mirror(dom, &fake_ops, &f, unordered, 2), -EINVAL);
	CHECK_EQ(iommu_domain_mirror(vdom, &fake_ops, &f, NULL, 0), -EOPNOTSUPP);
	/* A mapping where the other IOMMU cannot map: the mirror is refused. */
	CHECK_OK(iovm_domain_map(dom, &at, pa_of(ctx, p), 4096, RW));
	CHECK_EQ(iommu_domain_mirror(dom, &fake_ops, &f, unordered + 1, 1), -EBUSY);
	CHECK_EQ(f.n, 0);
	CHECK_OK(iovm_domain_unmap(dom, at, 4096));
	CHECK_OK(iovm_domain_destroy(vdom));
	CHECK_OK(iovm_domain_destroy(dom));
	iovm_close(ctx);
}

int main(void)
{
	test_init();
	RUN(maps_and_unmaps_mirrored);
	RUN(heap_followed);
	RUN(heap_trimmed_in_whole_commits);
	RUN(coalesced_by_process_address);
	RUN(deferred_unmaps_at_the_flush);
	RUN(bad_mirror);
	return 0;
}
