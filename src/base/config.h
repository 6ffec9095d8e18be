/* SPDX-License-Identifier: MIT */
/*
 * config.h - iovm's configuration and the options string that sets it.
 *
 * One string, "key=value,key=value", from IOVM_OPTS or iovm_open(). Every key
 * is described once, in the table of config.c; the parser, the help text and
 * the error messages all come from that table.
 */
#ifndef IOVM_BASE_CONFIG_H
#define IOVM_BASE_CONFIG_H

#include <stdint.h>

enum config_host_pa {
	CONFIG_HOST_PA_AUTO = 0, /* on where pagemap reveals host PAs */
	CONFIG_HOST_PA_OFF,      /* emulated PAs only */
	CONFIG_HOST_PA_ON,       /* host PAs required: fail where unreadable */
};

#define CONFIG_NODE_ANY (-1)
#define CONFIG_LOG_UNCHANGED (-1)

/* Reserved pools made at start-up (option pool=NAME:SIZE[:PAGE], repeated). */
#define CONFIG_MAX_POOLS 8
#define CONFIG_POOL_NAMESIZE 32
/* As IOVM_SHARE_NAMESIZE (iovm/mp.h). */
#define CONFIG_SHARE_NAMESIZE 64

struct config_pool {
	char name[CONFIG_POOL_NAMESIZE];
	uint64_t size;      /* bytes */
	uint64_t page_size; /* 0: the context's */
};

struct iovm_config {
	uint64_t page_size;        /* 0: auto (2 MiB hugepages, else 4 KiB) */
	uint64_t mem_limit;        /* bytes of physical memory; 0: the machine's RAM */
	int numa_node;             /* default node of allocations, or CONFIG_NODE_ANY */
	enum config_host_pa host_pa;
	int log_level;             /* or CONFIG_LOG_UNCHANGED */
	uint32_t release_delay_ms; /* how long a free page stays committed */
	uint64_t pin_budget;       /* bytes on-demand registrations may pin; 0: a quarter of RAM */
	bool oracle;               /* check every device access against a shadow (tests) */
	struct config_pool pools[CONFIG_MAX_POOLS];
	unsigned nr_pools;
	/* Multi-process (iovm/mp.h): share the heap under a name, or attach to one; "" for neither. */
	char share[CONFIG_SHARE_NAMESIZE];
	char attach[CONFIG_SHARE_NAMESIZE];
	uint64_t share_size;       /* 0: the default */
	int64_t share_group;       /* -1: none */
};

void config_defaults(struct iovm_config *cfg);

/*
 * config_parse() - apply an options string on top of @cfg.
 * An unknown key, a key without a value or a malformed value gives -EINVAL
 * and an error detail naming it. @cfg is left unchanged on error.
 */
int config_parse(struct iovm_config *cfg, const char *opts);

/* Parse a size with an optional binary suffix (K, M, G, T; "KiB" too). */
int config_parse_size(const char *s, uint64_t *out);

#endif /* IOVM_BASE_CONFIG_H */
