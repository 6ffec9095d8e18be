/* SPDX-License-Identifier: MIT */
/*
 * cmd_info.c - `iovm info [--json]`: page sizes and hugepage pools per NUMA
 * node, host physical addresses, userfaultfd, IOMMU groups, VFIO and
 * iommufd, CPUs; and what iovm_open() makes of the configuration here.
 * Unprivileged, it says what it cannot see.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <iovm.h>

#include "cmd.h"
#include "json.h"

static const char *pagemap_text(int pagemap)
{
	if (pagemap == 1)
		return "readable: pagemap shows host physical addresses";
	if (pagemap == 0)
		return "hidden: pagemap shows no frame numbers without root (CAP_SYS_ADMIN)";
	return "unreadable: /proc/self/pagemap cannot be read";
}

static void print_pools(const struct iovm_sysinfo *in, int node)
{
	char a[32];
	bool any = false;

	for (unsigned i = 0; i < in->nr_pools; i++) {
		const struct iovm_hugepage_pool *p = &in->pools[i];

		if (p->node != node)
			continue;
		printf("  %s: %llu total, %llu free", fmt_size(p->page_size, a, sizeof(a)),
		       (unsigned long long)p->total, (unsigned long long)p->free);
		any = true;
	}
	if (!any)
		printf("  none");
	printf("\n");
}

/* iovm_open()'s error detail, kept: any later call of the library clears it. */
static char open_detail[256];

static void text(const struct iovm_sysinfo *in, const struct iovm_ctx_info *ci, int open_err)
{
	char a[32], b[32], c[32];

	printf("kernel          %s%s\n", in->kernel, in->root ? " (running as root)" : " (not root)");
	printf("CPUs            %u online, %u NUMA node%s (memory policy %s)\n", in->nr_cpus_online,
	       in->nr_nodes, in->nr_nodes == 1 ? "" : "s",
	       in->numa_policy ? "available" : "unavailable");
	for (unsigned i = 0; i < in->nr_nodes; i++)
		printf("  node %-3d      %u CPUs\n", in->nodes[i], in->node_cpus[i]);
	printf("page sizes      base %s; hugepages:", fmt_size(in->base_page_size, a, sizeof(a)));
	for (unsigned i = 0; i < in->nr_page_sizes; i++)
		printf(" %s", fmt_size(in->page_sizes[i], a, sizeof(a)));
	printf("%s\n", in->nr_page_sizes ? "" : " none (no hugetlbfs)");
	printf("hugepage pools  machine:");
	print_pools(in, -1);
	for (unsigned i = 0; i < in->nr_nodes; i++) {
		printf("                node %d: ", in->nodes[i]);
		print_pools(in, in->nodes[i]);
	}
	printf("host PAs        %s", pagemap_text(in->pagemap));
	if (in->phys_addr_bits)
		printf("; CPU reports %u physical address bits", in->phys_addr_bits);
	printf("\n");
	if (in->uffd) {
		printf("userfaultfd     available (%s); features:", in->uffd_via);
		for (unsigned bit = 0; bit < 64; bit++)
			if (in->uffd_features & (UINT64_C(1) << bit)) {
				const char *n = iovm_uffd_feature_name(bit);

				if (n)
					printf(" %s", n);
				else
					printf(" bit%u", bit);
			}
		printf("\n");
	} else {
		printf("userfaultfd     unavailable: %s\n", iovm_strerror(in->uffd_error));
	}
	if (in->nr_iommu_groups) {
		printf("IOMMU groups    %u%s\n", in->nr_iommu_groups,
		       in->iommu_groups_truncated ? " (first ones shown)" : "");
		for (unsigned i = 0; i < in->nr_iommu_groups; i++) {
			printf("  group %-7u", in->groups[i].id);
			for (unsigned d = 0; d < in->groups[i].nr_devices; d++)
				printf(" %s", in->groups[i].devices[d]);
			printf("\n");
		}
	} else {
		printf("IOMMU groups    none: no IOMMU, or it is off\n");
	}
	printf("VFIO            /dev/vfio/vfio %s, %u group node%s, %u device cdev%s; iommufd /dev/iommu %s\n",
	       in->vfio ? "present" : "absent", in->nr_vfio_groups, in->nr_vfio_groups == 1 ? "" : "s",
	       in->nr_vfio_cdevs, in->nr_vfio_cdevs == 1 ? "" : "s", in->iommufd ? "present" : "absent");
	printf("vfio-pci        ");
	for (unsigned i = 0; i < in->nr_vfio_pci; i++)
		printf("%s ", in->vfio_pci[i]);
	printf("%s\n", in->nr_vfio_pci ? "" : "no device bound");
	if (open_err) {
		printf("iovm            cannot open with IOVM_OPTS: %s: %s\n", iovm_strerror(open_err),
		       open_detail);
		return;
	}
	printf("iovm            page size %s%s; host-PA mode %s; mem_limit %s; NUMA node %s; "
	       "release delay %u ms\n",
	       fmt_size(ci->page_size, a, sizeof(a)), ci->page_size_fallback ? ", 4 KiB fallback" : "",
	       ci->host_pa_only ? "on, strict (every PA handed out is a host PA, or the call fails)"
	       : ci->host_pa	? "on (device addresses of hugepages are host PAs)"
				: "off (emulated PAs)",
	       fmt_size(ci->mem_limit, b, sizeof(b)),
	       ci->numa_node < 0 ? "any" : (snprintf(c, sizeof(c), "%d", ci->numa_node), c),
	       ci->release_delay_ms);
}

static void json(const struct iovm_sysinfo *in, const struct iovm_ctx_info *ci, int open_err)
{
	struct json j;

	json_init(&j, stdout);
	json_begin(&j, NULL, '{');
	json_str(&j, "kernel", in->kernel);
	json_bool(&j, "root", in->root);
	json_u64(&j, "base_page_size", in->base_page_size);
	json_u64(&j, "phys_addr_bits", in->phys_addr_bits);
	json_begin(&j, "cpus", '{');
	json_u64(&j, "online", in->nr_cpus_online);
	json_bool(&j, "numa_policy", in->numa_policy);
	json_begin(&j, "nodes", '[');
	for (unsigned i = 0; i < in->nr_nodes; i++) {
		json_begin(&j, NULL, '{');
		json_i64(&j, "node", in->nodes[i]);
		json_u64(&j, "cpus", in->node_cpus[i]);
		json_end(&j, '}');
	}
	json_end(&j, ']');
	json_end(&j, '}');
	json_begin(&j, "hugepage_sizes", '[');
	for (unsigned i = 0; i < in->nr_page_sizes; i++)
		json_u64(&j, NULL, in->page_sizes[i]);
	json_end(&j, ']');
	json_begin(&j, "hugepage_pools", '[');
	for (unsigned i = 0; i < in->nr_pools; i++) {
		json_begin(&j, NULL, '{');
		json_u64(&j, "page_size", in->pools[i].page_size);
		if (in->pools[i].node < 0)
			json_null(&j, "node");
		else
			json_i64(&j, "node", in->pools[i].node);
		json_u64(&j, "total", in->pools[i].total);
		json_u64(&j, "free", in->pools[i].free);
		json_end(&j, '}');
	}
	json_end(&j, ']');
	json_str(&j, "host_pa", in->pagemap == 1 ? "readable" : in->pagemap == 0 ? "hidden" : "unreadable");
	json_begin(&j, "userfaultfd", '{');
	json_bool(&j, "available", in->uffd);
	if (in->uffd) {
		json_str(&j, "via", in->uffd_via);
		json_u64(&j, "features", in->uffd_features);
		json_begin(&j, "feature_names", '[');
		for (unsigned bit = 0; bit < 64; bit++)
			if ((in->uffd_features & (UINT64_C(1) << bit)) && iovm_uffd_feature_name(bit))
				json_str(&j, NULL, iovm_uffd_feature_name(bit));
		json_end(&j, ']');
	} else {
		json_str(&j, "error", iovm_strerror(in->uffd_error));
	}
	json_end(&j, '}');
	json_begin(&j, "iommu_groups", '[');
	for (unsigned i = 0; i < in->nr_iommu_groups; i++) {
		json_begin(&j, NULL, '{');
		json_u64(&j, "id", in->groups[i].id);
		json_begin(&j, "devices", '[');
		for (unsigned d = 0; d < in->groups[i].nr_devices; d++)
			json_str(&j, NULL, in->groups[i].devices[d]);
		json_end(&j, ']');
		json_end(&j, '}');
	}
	json_end(&j, ']');
	json_begin(&j, "vfio", '{');
	json_bool(&j, "container", in->vfio);
	json_u64(&j, "groups", in->nr_vfio_groups);
	json_u64(&j, "cdevs", in->nr_vfio_cdevs);
	json_bool(&j, "iommufd", in->iommufd);
	json_begin(&j, "vfio_pci_devices", '[');
	for (unsigned i = 0; i < in->nr_vfio_pci; i++)
		json_str(&j, NULL, in->vfio_pci[i]);
	json_end(&j, ']');
	json_end(&j, '}');
	json_begin(&j, "iovm", '{');
	if (open_err) {
		json_str(&j, "error", iovm_strerror(open_err));
		json_str(&j, "detail", open_detail);
	} else {
		json_u64(&j, "page_size", ci->page_size);
		json_bool(&j, "page_size_fallback", ci->page_size_fallback);
		json_bool(&j, "host_pa_mode", ci->host_pa);
		json_bool(&j, "host_pa_only", ci->host_pa_only);
		json_u64(&j, "mem_limit", ci->mem_limit);
		json_i64(&j, "numa_node", ci->numa_node);
		json_u64(&j, "release_delay_ms", ci->release_delay_ms);
	}
	json_end(&j, '}');
	json_end(&j, '}');
}

static void quiet(void *arg, enum iovm_log_level level, const char *msg)
{
	(void)arg;
	(void)level;
	(void)msg;
}

int cmd_info(int argc, char **argv)
{
	struct iovm_ctx_info ci = { 0 };
	struct iovm_sysinfo *in;
	struct iovm_ctx *ctx;
	bool as_json = false;
	int ret, open_err;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			as_json = true;
		} else {
			fprintf(stderr, "iovm info: unknown argument '%s'\n", argv[i]);
			cmd_usage(stderr, "info");
			return 2;
		}
	}
	ret = iovm_sysinfo_get(&in);
	if (ret) {
		fprintf(stderr, "iovm info: %s\n", iovm_strerror(ret));
		return 1;
	}
	/* Quietly: an IOVM_OPTS error is part of the report, not a log line. */
	iovm_log_set_handler(quiet, NULL);
	open_err = iovm_open(NULL, &ctx);
	snprintf(open_detail, sizeof(open_detail), "%s", open_err ? iovm_error_detail() : "");
	iovm_log_set_handler(NULL, NULL);
	if (!open_err) {
		iovm_ctx_info(ctx, &ci);
		iovm_close(ctx);
	}
	if (as_json)
		json(in, &ci, open_err);
	else
		text(in, &ci, open_err);
	iovm_sysinfo_free(in);
	return 0;
}
