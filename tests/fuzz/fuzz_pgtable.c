/* SPDX-License-Identifier: MIT */
/*
 * fuzz_pgtable.c - the IO page table model (tests/iommu/pgtable_model.h)
 * driven by the input bytes: the first picks the subject (the bare page
 * table, a strict or a deferred managed domain through the public API),
 * the rest are the operations, checked step by step against the model.
 * At most 64 steps an input, so that one runs in milliseconds.
 */
#include <stdio.h>
#include <stdlib.h>

#include <iovm.h>

#define MODEL_FAIL(fmt, ...)                                   \
	do {                                                   \
		fprintf(stderr, "fuzz_pgtable: " fmt "\n", ##__VA_ARGS__); \
		abort();                                       \
	} while (0)

#include "iommu/pgtable_model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_STEPS 64

/* One context and one buffer for every input: a domain is made afresh for each. */
static struct iovm_ctx *ctx;
static uint64_t buf_pa;

static void setup(void)
{
	void *buf;
	iovm_pa_t pa;

	if (iovm_open("page_size=4K,host_pa=off,oracle=on,log_level=error", &ctx))
		MODEL_FAIL("cannot open a context");
	buf = iovm_dma_alloc(ctx, PGM_BUF, SZ_2M, IOVM_DMA_CONTIG);
	if (!buf || iovm_dma_pa(ctx, buf, &pa))
		MODEL_FAIL("no DMA buffer");
	buf_pa = pa.addr;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pgm g;
	enum pgm_kind kind;

	if (!size)
		return 0;
	kind = (enum pgm_kind)(data[0] % PGM_KINDS);
	if (kind != PGM_PT && !ctx)
		setup();
	if (pgm_open(&g, kind, ctx, buf_pa))
		MODEL_FAIL("cannot make the subject");
	pgm_run(&g, data + 1, size - 1, MAX_STEPS);
	pgm_close(&g);
	return 0;
}
