/* SPDX-License-Identifier: MIT */
/*
 * fuzz_iova.c - the IOVA allocator model (tests/iommu/iova_model.h) driven
 * by the input bytes: the first picks the subject (the allocator itself,
 * a strict or a deferred managed domain through the public API), the rest
 * are the operations and the threads that run them, checked step by step
 * against the model. At most 64 steps an input.
 */
#include <stdio.h>
#include <stdlib.h>

#include <iovm.h>

#define MODEL_FAIL(fmt, ...)                                      \
	do {                                                      \
		fprintf(stderr, "fuzz_iova: " fmt "\n", ##__VA_ARGS__); \
		abort();                                          \
	} while (0)

#include "iommu/iova_model.h"

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
	buf = iovm_dma_alloc(ctx, SZ_2M, SZ_2M, IOVM_DMA_CONTIG);
	if (!buf || iovm_dma_pa(ctx, buf, &pa))
		MODEL_FAIL("no DMA buffer");
	buf_pa = pa.addr;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ivm v;
	enum ivm_kind kind;

	if (!size)
		return 0;
	kind = (enum ivm_kind)(data[0] % IVM_KINDS);
	if (kind != IVM_RAW && !ctx)
		setup();
	if (ivm_open(&v, kind, ctx, buf_pa))
		MODEL_FAIL("cannot make the subject");
	ivm_run(&v, data + 1, size - 1, MAX_STEPS);
	ivm_close(&v);
	return 0;
}
