/* SPDX-License-Identifier: MIT */
/*
 * test_attack_follow_heap.c - attacks IOVM_DOMAIN_FOLLOW_HEAP and
 * iovm_dma_iova() (iommu.h) as the README's example uses them: the IOVA
 * of an allocation, then a device access of its whole length. An
 * allocation that spans two heap commits must be as contiguous in the
 * domain as it is in the process, or a device access that starts at its
 * IOVA runs into whatever the domain mapped next: another buffer.
 */
#include "attack.h"
#include "hugepage_util.h"

/* Every page of [p, p+n) sits at dma_iova(p) + its offset. */
static size_t iova_break(struct iovm_domain *d, const uint8_t *p, size_t n)
{
	iovm_iova_t base, io;

	CHECK_OK(iovm_dma_iova(d, p, &base));
	for (size_t off = 4096 - ((uintptr_t)p & 4095); off < n; off += 4096) {
		CHECK_OK(iovm_dma_iova(d, p + off, &io));
		if (io.addr != base.addr + off)
			return off;
	}
	return n;
}

/*
 * Whether the machine's pool has room for a 2 MiB-page context's heap
 * right now (other processes take pages too): say why not, and skip it.
 */
#define HUGE_NEEDED 64

static bool huge_room(const char *what)
{
	uint64_t n = hugepages_available(UINT64_C(2) << 20, -1);

	if (n >= HUGE_NEEDED)
		return true;
	printf("# SKIP %s with 2 MiB pages: %" PRIu64 " free in the pool, %d needed\n", what, n, HUGE_NEEDED);
	return false;
}

static void allocations_are_iova_contiguous(const char *opts, uint32_t dflags)
{
	if (strstr(opts, "page_size=2M") && !huge_room("contiguous allocations"))
		return;
	struct rig r;
	struct iovm_domain_attr a = { .type = IOVM_DOMAIN_MANAGED, .flags = IOVM_DOMAIN_FOLLOW_HEAP | dflags };
	uint64_t seed = 42;
	uint8_t *v[64];
	size_t sz[64];
	unsigned broken = 0;

	rig_open(&r, opts, &a, IOVM_QUEUE_POLLED);
	for (int i = 0; i < 64; i++) {
		sz[i] = (size_t)1 << (12 + test_rand(&seed) % 11); /* 4 KiB to 4 MiB */
		v[i] = iovm_dma_alloc(r.ctx, sz[i], 16, 0);
		CHECK(v[i] != NULL);
		size_t at = iova_break(r.dom, v[i], sz[i]);
		if (at < sz[i] && broken++ < 3)
			EXPECT_MSG(0, "%s: allocation %d of %zu bytes at %p: its IOVA jumps at +%#zx", opts, i,
				   sz[i], (void *)v[i], at);
	}
	EXPECT_MSG(broken == 0, "%s: %u of 64 allocations are not contiguous in the domain", opts, broken);
	for (int i = 0; i < 64; i++)
		CHECK_OK(iovm_dma_free(r.ctx, v[i]));
	rig_close(&r);
}

TEST(an_allocation_is_contiguous_in_a_domain_that_follows_the_heap)
{
	allocations_are_iova_contiguous("oracle=on,log_level=error,page_size=2M", 0);
	allocations_are_iova_contiguous("oracle=on,log_level=error,page_size=4K", 0);
	allocations_are_iova_contiguous("oracle=on,log_level=error", 0);
	allocations_are_iova_contiguous("oracle=on,log_level=error,page_size=2M", IOVM_DOMAIN_DEFERRED);
}

TEST(a_device_fill_of_a_whole_allocation_stays_inside_it)
{
	/* The README's pattern: iovm_dma_iova(dom, b), then a device write of b's length. */
	struct rig r;
	uint8_t *v[16];
	const size_t n = 2u << 20;
	unsigned broken = 0;

	if (!huge_room("a device fill of whole allocations"))
		return;
	rig_open(&r, "oracle=on,log_level=error,page_size=2M", NULL, IOVM_QUEUE_POLLED);
	for (int i = 0; i < 16; i++) {
		v[i] = iovm_dma_alloc(r.ctx, n, 16, 0);
		CHECK(v[i] != NULL);
		memset(v[i], 0x10 + i, n);
	}
	uint32_t done[16] = { 0 };
	for (int i = 0; i < 16; i++) {
		struct iovm_completion c = run_desc(&r, (struct iovm_desc){ .op = IOVM_OP_FILL,
			.dst = iova_of(&r, v[i]), .len = (uint32_t)n, .pattern = 0xf0f0f0f0f0f0f0f0ull });
		EXPECT_MSG(c.status == IOVM_STATUS_SUCCESS, "fill of allocation %d: status %u after %u bytes, "
			   "fault at %#llx", i, c.status, c.bytes_completed, (unsigned long long)c.fault_addr);
		done[i] = c.status == IOVM_STATUS_SUCCESS ? (uint32_t)n : c.bytes_completed;
		/* Every buffer holds what its own fill did, and nothing else did. */
		for (int j = 0; j < 16; j++) {
			if (!all_bytes(v[j], done[j], 0xf0) || !all_bytes(v[j] + done[j], n - done[j],
									  (uint8_t)(0x10 + j))) {
				if (j != i && broken++ < 3)
					EXPECT_MSG(0, "a device fill of allocation %d (at its IOVA, of its length) "
						   "wrote into allocation %d", i, j);
				memset(v[j], 0xf0, done[j]);
				memset(v[j] + done[j], 0x10 + j, n - done[j]);
			}
		}
	}
	EXPECT_MSG(broken == 0, "%u buffers overwritten by fills of others", broken);
	for (int i = 0; i < 16; i++)
		CHECK_OK(iovm_dma_free(r.ctx, v[i]));
	rig_close(&r);
}

int main(void)
{
	test_init();
	RUN(an_allocation_is_contiguous_in_a_domain_that_follows_the_heap);
	RUN(a_device_fill_of_a_whole_allocation_stays_inside_it);
	return attack_status();
}
