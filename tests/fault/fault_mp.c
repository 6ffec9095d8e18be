/* SPDX-License-Identifier: MIT */
/*
 * fault_mp.c - fault-injection scenarios of iovm/mp.h: sharing a context,
 * attaching a second one to it (in the same process: the owner's server
 * thread answers), allocating in one and freeing in the other, zones, and
 * the calls on a share. A failed share or attach leaves no socket, memfd
 * or mapping behind, and asked again it succeeds.
 */
#include <stdio.h>
#include <unistd.h>

#include "fault.h"

static void sc_share(void)
{
	struct iovm_share_params p = { .heap_size = 4 << 20, .page_size = 4096, .group = -1 };
	struct iovm_ctx *owner = fault_open(FAULT_OPTS), *att = NULL;
	const struct iovm_zone *z, *z2;
	struct iovm_share_info info;
	char name[64];
	iovm_pa_t pa;
	void *a, *b;

	snprintf(name, sizeof(name), "fault-share-%d", (int)getpid());
	FI_INT(iovm_share(owner, name, &p));
	FI_INT(iovm_attach(name, FAULT_OPTS, &att));
	a = FI_PTR(iovm_dma_alloc(att, 4096, 0, 0));
	b = FI_PTR(iovm_dma_zalloc(owner, 100, 0, IOVM_DMA_KEEP));
	CHECK_EQ(((uint8_t *)b)[99], 0);
	FI_INT(iovm_dma_pa(att, a, &pa));
	FI_INT(iovm_dma_free(owner, iovm_dma_ptr(owner, pa)));
	CHECK_EQ(FI_INT(iovm_zone_reserve(att, "fault-zone", 8192, 0, 0, &z)), 0);
	CHECK_EQ(FI_INT(iovm_zone_lookup(owner, "fault-zone", &z2)), 0);
	CHECK_EQ(z->pa.addr, z2->pa.addr);
	FI_INT(iovm_share_info(owner, &info));
	CHECK_EQ(info.processes, 2);
	CHECK_EQ(info.zones, 1);
	FI_INT(iovm_share_check(att));
	CHECK_EQ(FI_INT(iovm_share_reap(owner)), 0);
	FI_INT(iovm_zone_free(owner, z2));
	FI_INT(iovm_dma_pa(owner, b, &pa));
	FI_INT(iovm_dma_free(att, iovm_dma_ptr(att, pa)));
	CHECK_EQ(iovm_close(att), 0);
	FI_INT(iovm_share_info(owner, &info));
	CHECK_EQ(info.blocks, 0);
	CHECK_EQ(info.processes, 1);
	CHECK_EQ(iovm_close(owner), 0);
}

static const struct fault_scenario fault_mp_scenarios[] = {
	{ "share and attach", sc_share },
	{ NULL, NULL },
};
