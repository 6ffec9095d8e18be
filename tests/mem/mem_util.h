/* SPDX-License-Identifier: MIT */
/*
 * mem_util.h - helpers the DMA heap tests share: opening a context, and
 * checking an allocation against the physical address space underneath.
 */
#ifndef IOVM_TESTS_MEM_UTIL_H
#define IOVM_TESTS_MEM_UTIL_H

#include <iovm.h>

#include "base/compiler.h"
#include "base/ctx.h"
#include "os/hugepage.h"
#include "phys/phys.h"
#include "harness.h"

static inline struct iovm_ctx *open_ctx(const char *opts)
{
	struct iovm_ctx *ctx = NULL;
	int ret = iovm_open(opts, &ctx);

	CHECK_MSG(ret == 0, "iovm_open(\"%s\"): %s: %s", opts, strerror(-ret), iovm_error_detail());
	return ctx;
}

static inline uint64_t free_hugepages_2m(void)
{
	uint64_t total = 0, free = 0;

	if (!os_hugepage_supported(SZ_2M) || os_hugepage_pool(SZ_2M, -1, &total, &free))
		return 0;
	return free;
}

/*
 * The memory at @p, as the heap maps it, is the memory the bus reaches at its
 * PA, and the reverse map leads back to @p: the translation agrees with the
 * frame allocator underneath.
 */
static inline void check_translation(struct iovm_ctx *ctx, uint8_t *p)
{
	struct iovm_dma_xlate x;
	volatile uint8_t *bus;
	iovm_pa_t pa;
	uint8_t old;

	CHECK_OK(iovm_dma_xlate(ctx, p, &x));
	CHECK_OK(iovm_dma_pa(ctx, p, &pa));
	CHECK_EQ(pa.addr, x.pa.addr);
	CHECK(x.contig >= 1);
	bus = phys_bus_ptr(ctx->phys, x.pa);
	CHECK(bus != NULL);
	old = *p;
	*p = (uint8_t)(old ^ 0x5a);
	CHECK_EQ(*bus, (uint8_t)(old ^ 0x5a));
	*p = old;
	CHECK(iovm_dma_ptr(ctx, x.pa) == p);
}

#endif /* IOVM_TESTS_MEM_UTIL_H */
