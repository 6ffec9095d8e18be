/* SPDX-License-Identifier: MIT */
/*
 * ctx.c - iovm_open() and iovm_close(): options resolved against what the
 * machine offers, then the layers created bottom up and destroyed top down.
 *
 * This is the top of the library: it may include every layer.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <iovm/ctx.h>
#include <iovm/mp.h>
#include <iovm/phys.h>

#include "base/ctx.h"
#include "base/error.h"
#include "base/fault_inject.h"
#include "base/log.h"
#include "dev/dev.h"
#include "guest/guest.h"
#include "iommu/iommu.h"
#include "reg/reg.h"
#include "mem/mem.h"
#include "mem/memmap.h"
#include "mp/mp.h"
#include "os/hugepage.h"
#include "os/pagemap.h"
#include "phys/phys.h"

static uint64_t machine_ram(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);

	if (pages <= 0 || size <= 0)
		return SZ_1G;
	return (uint64_t)pages * (uint64_t)size;
}

static bool any_hugepages(void)
{
	uint64_t sizes[OS_MAX_HUGEPAGE_SIZES];

	return os_hugepage_sizes(sizes, OS_MAX_HUGEPAGE_SIZES) > 0;
}

/*
 * Decide host-PA mode; fills @host_pa and @readable. Whether each hugepage's
 * host PA fits below the emulated window (PHYS_EMU_HIGH) is checked per bank:
 * the CPU's address width says little (this EPYC reports 48 bits for 24 GiB).
 */
static int resolve_host_pa(const struct iovm_config *cfg, bool *host_pa, bool *readable)
{
	bool huge = cfg->page_size ? cfg->page_size != os_page_size() : any_hugepages();

	*readable = os_pagemap_probe() == 1;
	switch (cfg->host_pa) {
	case CONFIG_HOST_PA_OFF:
		*host_pa = false;
		return 0;
	case CONFIG_HOST_PA_AUTO:
		*host_pa = *readable && huge;
		return 0;
	case CONFIG_HOST_PA_ON:
		break;
	}
	if (!huge)
		return err_detail(-EINVAL, IOVM_LOG_ERR,
				  "host_pa=on needs hugepages: 4 KiB pages have no stable host PA");
	if (!*readable)
		return err_detail(-EPERM, IOVM_LOG_ERR,
				  "host_pa=on: /proc/self/pagemap hides host physical addresses "
				  "(needs root or CAP_SYS_ADMIN)");
	*host_pa = true;
	return 0;
}

/*
 * The reserved pools the options ask for, carved while memory is still
 * whole. They stay until the context goes (or iovm_pool_destroy()).
 */
static int start_pools(struct iovm_ctx *ctx)
{
	for (unsigned i = 0; i < ctx->cfg.nr_pools; i++) {
		const struct config_pool *p = &ctx->cfg.pools[i];
		struct iovm_pool *pool;
		int ret = iovm_pool_create(ctx, p->name, p->size, p->page_size, IOVM_POOL_MAX_RANGES, &pool);

		if (ret)
			return err_detail(ret, IOVM_LOG_ERR, "pool=%s:%luM: cannot reserve it: %s", p->name,
					  (unsigned long)(p->size >> 20), strerror(-ret));
	}
	return 0;
}

/* iovm_open() without err_enter(): iovm_attach()'s details name iovm_attach(). */
static int ctx_open(const char *opts, struct iovm_ctx **out)
{
	struct phys_params params;
	struct iovm_config cfg;
	struct iovm_ctx *ctx;
	bool host_pa = false, readable = false;
	int ret;

	if (!out)
		return err_inval("!out");
	config_defaults(&cfg);
	ret = config_parse(&cfg, opts ? opts : getenv("IOVM_OPTS"));
	if (ret)
		return ret;
	if (cfg.share[0] && cfg.attach[0])
		return err_inval("share= and attach=: a context makes a share or joins one, not both");
	if ((cfg.share[0] && mp_name_check(cfg.share)) || (cfg.attach[0] && mp_name_check(cfg.attach)))
		return -EINVAL;
	if (cfg.log_level != CONFIG_LOG_UNCHANGED)
		/* Not the public call: its err_enter() would name it in the details of iovm_open()'s errors. */
		log_set_level(cfg.log_level);
	if (!cfg.mem_limit)
		cfg.mem_limit = MAX(machine_ram(), SZ_2M);
	if (!cfg.pin_budget)
		cfg.pin_budget = MAX(machine_ram() / 4, (uint64_t)SZ_2M);
	if (cfg.page_size && cfg.page_size != os_page_size() && !os_hugepage_supported(cfg.page_size))
		return err_detail(-EOPNOTSUPP, IOVM_LOG_ERR,
				  "page_size=%luK: the kernel has no hugepages of that size",
				  (unsigned long)(cfg.page_size >> 10));
	ret = resolve_host_pa(&cfg, &host_pa, &readable);
	if (ret)
		return ret;

	ctx = fi_calloc(1, sizeof(*ctx));
	if (!ctx)
		return -ENOMEM;
	ctx->cfg = cfg;
	ctx->host_pa = host_pa;
	ctx->host_pa_only = host_pa && cfg.host_pa == CONFIG_HOST_PA_ON;
	ctx->host_pa_readable = readable;
	epoch_init(&ctx->epoch);
	params = (struct phys_params){
		.limit = cfg.mem_limit,
		.host_pa = host_pa,
		.host_pa_only = ctx->host_pa_only,
		.read_hpa = readable,
		.epoch = &ctx->epoch,
	};
	ret = phys_create(&params, &ctx->phys);
	if (ret)
		goto destroy_epoch;
	ret = mem_create(ctx, &ctx->mem);
	if (ret)
		goto destroy_phys;
	ret = iommu_create(ctx, &ctx->epoch, cfg.oracle, &ctx->iommu);
	if (ret)
		goto destroy_mem;
	ret = reg_create(ctx, &ctx->reg);
	if (ret)
		goto destroy_iommu;
	ret = dev_create(ctx, &ctx->dev);
	if (ret)
		goto destroy_reg;
	ret = guest_space_create(ctx, &ctx->guest);
	if (ret)
		goto destroy_dev;
	ret = start_pools(ctx);
	if (ret)
		goto destroy_guest;
	/* Last: the share takes over the heap of a context made whole. */
	if (cfg.share[0]) {
		struct iovm_share_params sp = { .heap_size = cfg.share_size, .group = cfg.share_group };

		ret = mp_share(ctx, cfg.share, &sp);
	} else if (cfg.attach[0]) {
		ret = mp_attach(ctx, cfg.attach);
	}
	if (ret)
		goto destroy_guest;
	log_info("opened: page size %s, mem_limit %lu MiB, host-PA mode %s",
		 cfg.page_size ? (cfg.page_size == SZ_4K ? "4K" : cfg.page_size == SZ_2M ? "2M" : "1G")
			       : "auto",
		 (unsigned long)(cfg.mem_limit >> 20),
		 ctx->host_pa_only ? "on: host PAs only, hugepages only"
		 : host_pa ? "on for hugepages; 4 KiB pages get emulated PAs" : "off: emulated PAs");
	*out = ctx;
	return 0;

destroy_guest:
	guest_space_destroy(ctx->guest);
destroy_dev:
	dev_destroy(ctx->dev);
destroy_reg:
	reg_destroy(ctx->reg);
destroy_iommu:
	iommu_destroy(ctx->iommu);
destroy_mem:
	mem_destroy(ctx->mem);
destroy_phys:
	phys_destroy(ctx->phys);
destroy_epoch:
	epoch_destroy(&ctx->epoch);
	free(ctx);
	return ret;
}

/* Every layer, top down; leaves the calling thread's error detail alone. */
static void ctx_destroy(struct iovm_ctx *ctx)
{
	/*
	 * Top down: guests give their devices back, devices stop, registrations
	 * go, domains unmap (and leave the heap), the share is left (what this
	 * process held in it freed), then memory goes.
	 */
	guest_space_destroy(ctx->guest);
	dev_destroy(ctx->dev);
	reg_destroy(ctx->reg);
	iommu_destroy(ctx->iommu);
	/* Before the share goes and the heap with it: the maps follow the heap's events. */
	memmap_destroy(ctx);
	mp_close(ctx);
	mem_destroy(ctx->mem);
	phys_destroy(ctx->phys);
	epoch_destroy(&ctx->epoch);
	free(ctx);
}

IOVM_API int iovm_open(const char *opts, struct iovm_ctx **out)
{
	err_enter();
	return ctx_open(opts, out);
}

IOVM_API int iovm_close(struct iovm_ctx *ctx)
{
	err_enter();
	if (!ctx)
		return 0;
	ctx_destroy(ctx);
	return 0;
}

IOVM_API int iovm_ctx_info(const struct iovm_ctx *ctx, struct iovm_ctx_info *info)
{
	uint64_t page_size;

	err_enter();
	if (!ctx || !info)
		return err_inval("!ctx || !info");
	page_size = ctx->cfg.page_size;
	if (!page_size)
		page_size = os_hugepage_supported(SZ_2M) ? SZ_2M : ctx->host_pa_only ? SZ_1G : SZ_4K;
	*info = (struct iovm_ctx_info){
		.page_size = page_size,
		/* Host PAs only: no 4 KiB pages to fall back on. */
		.page_size_fallback = !ctx->cfg.page_size && !ctx->host_pa_only,
		.mem_limit = ctx->cfg.mem_limit,
		.numa_node = ctx->cfg.numa_node,
		.host_pa = ctx->host_pa,
		.host_pa_readable = ctx->host_pa_readable,
		.release_delay_ms = ctx->cfg.release_delay_ms,
		.host_pa_only = ctx->host_pa_only,
	};
	return 0;
}

IOVM_API int iovm_attach(const char *name, const char *opts, struct iovm_ctx **out)
{
	struct iovm_ctx *ctx;
	int ret;

	err_enter();
	if (!name || !out)
		return err_inval("!name || !out");
	ret = mp_name_check(name);
	if (ret)
		return ret;
	{
		struct iovm_config cfg;

		/* Before anything is made: a share= in them would make a share of its own first. */
		config_defaults(&cfg);
		if (!config_parse(&cfg, opts ? opts : getenv("IOVM_OPTS")) && (cfg.share[0] || cfg.attach[0]))
			return err_inval("the options of iovm_attach() may not share or attach themselves");
	}
	ret = ctx_open(opts, &ctx);
	if (ret)
		return ret;
	ret = mp_attach(ctx, name);
	if (ret) {
		ctx_destroy(ctx);
		return ret;
	}
	*out = ctx;
	return 0;
}
