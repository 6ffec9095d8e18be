/* SPDX-License-Identifier: MIT */
/*
 * test_copy_bytes.c - the engine's copy of a hot COPY (dev/copy.c), which
 * takes whole multiples of 256 bytes through a vector loop on some CPUs:
 * every length around its bounds, at every alignment of either side,
 * copies exactly those bytes and touches none beside them. Then the same
 * through the engine itself, descriptors of those lengths between
 * heap buffers, checked against the bytes.
 */
#include "dev/dev_internal.h"
#include "dev/dev_util.h"

#define AREA (UINT64_C(300) * 1024)

static void fill(uint8_t *p, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(test_rand(&seed) >> 56);
}

TEST(every_length_and_alignment)
{
	static const uint32_t lens[] = { 1, 63, 64, 255, 256, 257, 512, 4096, 4095, 4352, 16384, 65536,
					 256 * 1024 - 256, 256 * 1024, 256 * 1024 + 256 };
	uint8_t *src = malloc(AREA + 128), *dst = malloc(AREA + 256), *want = malloc(AREA + 256);

	CHECK(src && dst && want);
	fill(src, AREA + 128, 1);
	for (unsigned l = 0; l < sizeof(lens) / sizeof(lens[0]); l++)
		for (unsigned so = 0; so < 64; so += 9)
			for (unsigned doff = 0; doff < 64; doff += 7) {
				fill(dst, AREA + 256, l * 4096 + so * 64 + doff);
				memcpy(want, dst, AREA + 256);
				memcpy(want + 64 + doff, src + so, lens[l]);
				engine_copy_bytes(dst + 64 + doff, src + so, lens[l]);
				CHECK_MSG(!memcmp(dst, want, AREA + 256), "length %u, source offset %u, destination offset %u",
					  lens[l], so, doff);
			}
	free(src);
	free(dst);
	free(want);
}

TEST(through_the_engine)
{
	static const uint32_t lens[] = { 256, 4096, 4096 + 256, 65536, 256 * 1024 };
	struct rig r;
	uint8_t *src, *dst;

	rig_open(&r, "page_size=4K,host_pa=off,oracle=on", NULL, IOVM_QUEUE_POLLED);
	src = iovm_dma_alloc(r.ctx, AREA, 4096, 0);
	dst = iovm_dma_alloc(r.ctx, AREA, 4096, 0);
	CHECK(src && dst);
	fill(src, AREA, 7);
	for (unsigned l = 0; l < sizeof(lens) / sizeof(lens[0]); l++)
		for (unsigned off = 0; off < 3; off++) {
			uint64_t so = off * 64, doff = off * 160;

			memset(dst, 0xcc, AREA);
			/* Twice: the second time the IOTLB holds both sides, and the hot way copies. */
			for (int k = 0; k < 2; k++)
				CHECK_EQ(run_polled(r.q, (struct iovm_desc){ .op = IOVM_OP_COPY, .src = iova_of(&r, src) + so,
									      .dst = iova_of(&r, dst) + doff, .len = lens[l] }),
					 IOVM_STATUS_SUCCESS);
			CHECK_MSG(!memcmp(dst + doff, src + so, lens[l]), "length %u offset %u", lens[l], off);
			CHECK(dst[doff + lens[l]] == 0xcc && (!doff || dst[doff - 1] == 0xcc));
		}
	CHECK_OK(iovm_dma_free(r.ctx, src));
	CHECK_OK(iovm_dma_free(r.ctx, dst));
	rig_close(&r);
}

int main(void)
{
	test_init();
	RUN(every_length_and_alignment);
	RUN(through_the_engine);
	return 0;
}
