/* SPDX-License-Identifier: MIT */
/*
 * test_attack20_badpa.c - attacks the promise that every public call
 * taking a physical address returns a negative errno on a bad one and
 * never crashes: iovm_domain_map() and _map_pages() (managed, VA, a
 * guest's stage 2), iovm_dma_ptr(), iovm_pa_is_host(), a guest's named
 * banks (iovm_guest_create() PLACE_BANKS), with PAs 0, 2^46, 2^47, 2^52,
 * 2^63, ~0 and its last page, just past the heap's committed pages,
 * ranges whose end wraps past 2^64, and lengths of 0 and near 2^64.
 * Heap PAs that no committed page holds (dma_ptr() says ENOENT) may be
 * mapped (free heap memory is iovm's): a device access through such a
 * mapping must complete (a fault or success), the oracle clean.
 */
#include "attack20.h"

static const uint64_t odd[] = {
	0,
	UINT64_C(1) << 46,
	UINT64_C(1) << 47,
	UINT64_C(1) << 52,
	UINT64_C(1) << 63,
	(UINT64_C(1) << 63) - 4096,
	UINT64_MAX & ~UINT64_C(4095),
	UINT64_MAX - (UINT64_C(2) << 20) + 1,
};

TEST(odd_pas)
{
	struct rig r;
	struct iovm_domain *va, *s2;
	struct iovm_domain_attr vattr = { .type = IOVM_DOMAIN_VA };
	struct iovm_guest_attr ga = { .size = 16 * PG, .page_size = PG };
	struct iovm_guest *g;
	struct iovm_domain *doms[3];
	const char *names[3] = { "managed", "va", "stage2" };
	const uint64_t fixed[3] = { UINT64_C(8) << 30, UINT64_C(1) << 40, UINT64_C(1) << 30 };
	const size_t lens[] = { PG, 2 * PG, 2u << 20, 1u << 30 };
	unsigned calls = 0;

	rig_open(&r, "oracle=on,log_level=error," A20_OPTS, NULL, IOVM_QUEUE_POLLED);
	CHECK_OK(iovm_domain_create(r.ctx, &vattr, &va));
	CHECK_OK(iovm_guest_create(r.ctx, &ga, &g));
	CHECK_OK(iovm_guest_stage2(g, &s2));
	doms[0] = r.dom;
	doms[1] = va;
	doms[2] = s2;
	for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
		iovm_pa_t pa = IOVM_PA(odd[i]);

		if (odd[i] == 0) {
			/* PA 0: whatever is there, a map of it answers (it may be the heap's first page). */
			int ret;

			errno = 0;
			(void)iovm_dma_ptr(r.ctx, pa);
			ret = iovm_pa_is_host(r.ctx, pa);
			EXPECT(ret == 0 || ret == 1 || ret == -ENOENT);
			continue;
		}
		CHECK_NULL_ERRNO(iovm_dma_ptr(r.ctx, pa), ENOENT);
		CHECK_RET(iovm_pa_is_host(r.ctx, pa), -ENOENT);
		for (unsigned d = 0; d < 3; d++) {
			for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
				iovm_iova_t at = IOVM_IOVA(fixed[d]), any = IOVM_IOVA_ANY;
				iovm_pa_t pages[2] = { pa, IOVM_PA(pa.addr + PG) };
				uint64_t before = a20_leaves(doms[d]);
				int ret = iovm_domain_map(doms[d], &at, pa, lens[l], A20_RW);

				calls++;
				EXPECT_MSG(ret == -EINVAL, "iovm_domain_map(%s, pa %#llx, len %zu): %d [%s]", names[d],
					   (unsigned long long)pa.addr, lens[l], ret, iovm_error_detail());
				if (ret == 0)
					CHECK_OK(iovm_domain_unmap(doms[d], at, lens[l]));
				if (d == 0) {
					ret = iovm_domain_map(doms[d], &any, pa, lens[l], IOVM_MAP_READ);
					EXPECT_MSG(ret == -EINVAL, "iovm_domain_map(any, pa %#llx, len %zu): %d", (unsigned long long)pa.addr,
						   lens[l], ret);
					if (ret == 0)
						CHECK_OK(iovm_domain_unmap(doms[d], any, lens[l]));
				}
				at = IOVM_IOVA(fixed[d]);
				ret = iovm_domain_map_pages(doms[d], &at, pages, 2, A20_RW);
				EXPECT_MSG(ret == -EINVAL, "iovm_domain_map_pages(%s, %#llx): %d", names[d],
					   (unsigned long long)pa.addr, ret);
				if (ret == 0)
					CHECK_OK(iovm_domain_unmap(doms[d], at, 2 * PG));
				EXPECT_EQ(a20_leaves(doms[d]), before);
			}
		}
		/* A guest's bank there: not iovm's memory, or a range that wraps. */
		{
			struct iovm_guest_bank b = { .pa = pa, .len = 2 * PG };
			struct iovm_guest_attr ba = { .page_size = PG, .placement = IOVM_PLACE_BANKS, .banks = &b,
						      .nr_banks = 1 };
			struct iovm_guest *bg = NULL;
			int ret = iovm_guest_create(r.ctx, &ba, &bg);

			EXPECT_MSG(ret == -ENOENT || ret == -EINVAL, "iovm_guest_create(bank at %#llx): %d [%s]",
				   (unsigned long long)pa.addr, ret, iovm_error_detail());
			if (ret == 0)
				CHECK_OK(iovm_guest_destroy(bg));
		}
	}
	CHECK(calls > 50);
	/* Lengths: none, unaligned, wrapping, with a PA of the heap. */
	{
		uint8_t *h = iovm_dma_zalloc(r.ctx, PG, PG, 0);
		iovm_pa_t hpa;
		iovm_iova_t at = IOVM_IOVA(UINT64_C(8) << 30);

		CHECK(h != NULL);
		CHECK_OK(iovm_dma_pa(r.ctx, h, &hpa));
		CHECK_RET(iovm_domain_map(r.dom, &at, hpa, 0, A20_RW), -EINVAL);
		CHECK_RET(iovm_domain_map(r.dom, &at, hpa, PG + 1, A20_RW), -EINVAL);
		CHECK_RET(iovm_domain_map(r.dom, &at, IOVM_PA(hpa.addr + 1), PG, A20_RW), -EINVAL);
		CHECK_RET(iovm_domain_map(r.dom, &at, hpa, SIZE_MAX & ~(size_t)4095, A20_RW), -EINVAL);
		CHECK_RET(iovm_domain_map(r.dom, &at, hpa, (size_t)(0 - hpa.addr), A20_RW), -EINVAL);
		CHECK_RET(iovm_domain_map(r.dom, &at, hpa, PG, 0), -EINVAL);
		CHECK_RET(iovm_domain_map(r.dom, &at, hpa, PG, 0x80), -EINVAL);
		CHECK_RET(iovm_domain_map_pages(r.dom, &at, &hpa, 0, A20_RW), -EINVAL);
		CHECK_RET(iovm_domain_map_pages(r.dom, &at, NULL, 1, A20_RW), -EINVAL);
		CHECK_OK(iovm_dma_free(r.ctx, h));
	}
	CHECK_OK(iovm_guest_destroy(g));
	CHECK_OK(iovm_domain_destroy(va));
	rig_close(&r);
}

/*
 * PAs past the committed pages of the heap, and between them: mapped or
 * refused, a device access through what was mapped completes, the oracle
 * clean, and the process lives.
 */
TEST(past_the_heap)
{
	struct rig r;
	struct iovm_domain *other;
	uint8_t *p[8], *buf;
	uint64_t hi = 0, lo = UINT64_MAX;
	unsigned mapped = 0, refused = 0, probes = 0;

	rig_open(&r, "oracle=on,log_level=error," A20_OPTS, NULL, IOVM_QUEUE_POLLED);
	CHECK_OK(iovm_domain_create(r.ctx, NULL, &other));
	CHECK_OK(iovm_device_attach(r.dev, other, 3));
	iovm_iova_t bufio, compio;

	buf = iovm_dma_zalloc(r.ctx, PG, PG, 0);
	CHECK(buf != NULL);
	CHECK_OK(iovm_domain_map_ptr(other, buf, PG, A20_RW, &bufio));
	CHECK_OK(iovm_domain_map_ptr(other, r.comp, PG, A20_RW, &compio));
	for (unsigned i = 0; i < 8; i++) {
		struct iovm_dma_xlate x;

		p[i] = iovm_dma_alloc(r.ctx, (size_t)(i + 1) * 3 * PG, PG, 0);
		CHECK(p[i] != NULL);
		CHECK_OK(iovm_dma_xlate(r.ctx, p[i], &x));
		lo = x.pa.addr < lo ? x.pa.addr : lo;
		hi = x.pa.addr + x.contig > hi ? x.pa.addr + x.contig : hi;
	}
	/* Free every other one and trim: holes of decommitted pages. */
	for (unsigned i = 0; i < 8; i += 2)
		CHECK_OK(iovm_dma_free(r.ctx, p[i]));
	CHECK(iovm_dma_trim(r.ctx, IOVM_TRIM_ALL) >= 0);
	for (uint64_t pa = lo & ~UINT64_C(4095); pa < hi + (UINT64_C(4) << 20); pa += (pa < hi ? PG : 64 * PG)) {
		iovm_iova_t at = IOVM_IOVA_ANY;
		int ret;

		if (iovm_dma_ptr(r.ctx, IOVM_PA(pa)))
			continue; /* committed: ordinary */
		probes++;
		ret = iovm_domain_map(other, &at, IOVM_PA(pa), PG, A20_RW);
		EXPECT_MSG(ret == 0 || ret == -EINVAL, "iovm_domain_map(uncommitted pa %#llx): %d", (unsigned long long)pa,
			   ret);
		if (ret) {
			refused++;
			continue;
		}
		mapped++;
		{
			struct iovm_completion c = a20_run_at(&r, (struct iovm_desc){ .op = IOVM_OP_COPY, .pasid = 3,
										     .src = at.addr, .dst = bufio.addr, .len = 64 },
							      compio.addr);

			/* Free heap memory, or no memory: it completes either way. */
			EXPECT(c.status == IOVM_STATUS_SUCCESS || c.status == IOVM_STATUS_PAGE_FAULT);
		}
		CHECK_OK(iovm_domain_unmap(other, at, PG));
	}
	printf("# %s: %u uncommitted heap PAs probed: %u mapped, %u refused\n", test_current, probes, mapped, refused);
	CHECK(probes > 0);
	check_domain_clean(other);
	for (unsigned i = 1; i < 8; i += 2)
		CHECK_OK(iovm_dma_free(r.ctx, p[i]));
	CHECK_OK(iovm_domain_unmap(other, bufio, PG));
	CHECK_OK(iovm_domain_unmap(other, compio, PG));
	CHECK_OK(iovm_dma_free(r.ctx, buf));
	CHECK_OK(iovm_device_detach(r.dev, 3));
	CHECK_OK(iovm_domain_destroy(other));
	rig_close(&r);
}

int main(void)
{
	test_init();
	RUN(odd_pas);
	RUN(past_the_heap);
	return attack_status();
}
