/* SPDX-License-Identifier: MIT */
/*
 * ctx.h - the context: the one object an application holds, and through
 * which every layer finds its own state.
 *
 * It is defined in base, below every layer, so that each layer can reach
 * its part; the layers' types are only named here, never included. src/ctx
 * creates and destroys them, in order.
 */
#ifndef IOVM_BASE_CTX_H
#define IOVM_BASE_CTX_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/config.h"
#include "base/epoch.h"

struct phys_space;
struct mem_space;
struct iommu_space;
struct reg_space;
struct dev_space;
struct guest_space;
struct mp_space;
struct memmap_space;

struct iovm_ctx {
	struct iovm_config cfg; /* as resolved by iovm_open(); read-only afterwards */
	bool host_pa;           /* host-PA mode, resolved from cfg */
	bool host_pa_only;      /* host_pa=on: every PA handed out is a host PA, or the call fails */
	bool host_pa_readable;  /* pagemap shows host PAs */
	/*
	 * Device-side sections: engines enter them around every access; unmaps,
	 * flushes and bank releases wait them out. Here, so that it outlives
	 * every layer that uses it.
	 */
	struct epoch epoch;
	struct phys_space *phys;
	struct mem_space *mem;
	struct iommu_space *iommu;
	struct reg_space *reg;
	struct dev_space *dev;
	struct guest_space *guest;
	struct mp_space *mp;    /* NULL unless shared or attached (iovm/mp.h) */
	/*
	 * SPDK's memory maps (iovm/memmap.h), from the first call that needs
	 * them: published once, read without a lock (iovm_vtophys()).
	 */
	_Atomic(struct memmap_space *) memmap;
};

#endif /* IOVM_BASE_CTX_H */
