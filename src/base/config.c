/* SPDX-License-Identifier: MIT */
/*
 * config.c - the options table and its parser.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <iovm/base.h>

#include "base/compiler.h"
#include "base/config.h"
#include "base/error.h"

/* An option string longer than this is refused rather than truncated. */
#define OPTS_MAX_LEN 4096

struct opt_desc {
	const char *name;
	const char *values; /* for the help text and the error messages */
	const char *help;
	int (*parse)(struct iovm_config *cfg, const char *val);
};

static int parse_page_size(struct iovm_config *cfg, const char *val)
{
	uint64_t sz;

	if (!strcasecmp(val, "auto")) {
		cfg->page_size = 0;
		return 0;
	}
	if (config_parse_size(val, &sz) || (sz != SZ_4K && sz != SZ_2M && sz != SZ_1G))
		return -EINVAL;
	cfg->page_size = sz;
	return 0;
}

static int parse_mem_limit(struct iovm_config *cfg, const char *val)
{
	uint64_t sz;

	/* Less than one 2 MiB page could not hold a single hugepage bank. */
	if (config_parse_size(val, &sz) || sz < SZ_2M)
		return -EINVAL;
	cfg->mem_limit = sz;
	return 0;
}

static int parse_int(const char *val, long lo, long hi, long *out)
{
	char *end;
	long v;

	if (!*val || isspace((unsigned char)*val))
		return -EINVAL;
	errno = 0;
	v = strtol(val, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_numa_node(struct iovm_config *cfg, const char *val)
{
	long v;

	if (!strcasecmp(val, "any")) {
		cfg->numa_node = CONFIG_NODE_ANY;
		return 0;
	}
	/* Linux's MAX_NUMNODES is at most 1024. */
	if (parse_int(val, 0, 1023, &v))
		return -EINVAL;
	cfg->numa_node = (int)v;
	return 0;
}

static int parse_host_pa(struct iovm_config *cfg, const char *val)
{
	if (!strcasecmp(val, "auto"))
		cfg->host_pa = CONFIG_HOST_PA_AUTO;
	else if (!strcasecmp(val, "on") || !strcmp(val, "1"))
		cfg->host_pa = CONFIG_HOST_PA_ON;
	else if (!strcasecmp(val, "off") || !strcmp(val, "0"))
		cfg->host_pa = CONFIG_HOST_PA_OFF;
	else
		return -EINVAL;
	return 0;
}

static int parse_log_level(struct iovm_config *cfg, const char *val)
{
	static const char *const names[] = { "error", "warn", "notice", "info", "debug" };
	long v;

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		if (!strcasecmp(val, names[i])) {
			cfg->log_level = (int)i;
			return 0;
		}
	}
	if (parse_int(val, IOVM_LOG_ERR, IOVM_LOG_DEBUG, &v))
		return -EINVAL;
	cfg->log_level = (int)v;
	return 0;
}

static int parse_release_delay(struct iovm_config *cfg, const char *val)
{
	long v;

	/* An hour is already far past any useful hysteresis. */
	if (parse_int(val, 0, 3600 * 1000, &v))
		return -EINVAL;
	cfg->release_delay_ms = (uint32_t)v;
	return 0;
}

static int parse_oracle(struct iovm_config *cfg, const char *val)
{
	if (!strcasecmp(val, "on") || !strcmp(val, "1"))
		cfg->oracle = true;
	else if (!strcasecmp(val, "off") || !strcmp(val, "0"))
		cfg->oracle = false;
	else
		return -EINVAL;
	return 0;
}

static int parse_name(char *dst, const char *val)
{
	size_t n = strlen(val);

	/* The characters are the share layer's to check: it says which are allowed. */
	if (!n || n >= CONFIG_SHARE_NAMESIZE)
		return -EINVAL;
	memcpy(dst, val, n + 1);
	return 0;
}

static int parse_share(struct iovm_config *cfg, const char *val)
{
	return parse_name(cfg->share, val);
}

static int parse_attach(struct iovm_config *cfg, const char *val)
{
	return parse_name(cfg->attach, val);
}

static int parse_share_size(struct iovm_config *cfg, const char *val)
{
	uint64_t sz;

	if (config_parse_size(val, &sz) || !sz)
		return -EINVAL;
	cfg->share_size = sz;
	return 0;
}

static int parse_share_group(struct iovm_config *cfg, const char *val)
{
	char *end;
	long long g;

	errno = 0;
	g = strtoll(val, &end, 10);
	if (errno || *end || end == val || g < -1 || g > INT32_MAX)
		return -EINVAL;
	cfg->share_group = g;
	return 0;
}

static int parse_pin_budget(struct iovm_config *cfg, const char *val)
{
	uint64_t sz;

	/* At least one prefetch window (64 KiB), or on-demand faults could never be served. */
	if (config_parse_size(val, &sz) || sz < 64 * 1024)
		return -EINVAL;
	cfg->pin_budget = sz;
	return 0;
}

/* NAME:SIZE[:PAGE]; each use adds a pool. */
static int parse_pool(struct iovm_config *cfg, const char *val)
{
	struct config_pool *p;
	char buf[128], *size, *page;

	if (cfg->nr_pools == CONFIG_MAX_POOLS || strlen(val) >= sizeof(buf))
		return -EINVAL;
	snprintf(buf, sizeof(buf), "%s", val);
	size = strchr(buf, ':');
	if (!size || size == buf || (size_t)(size - buf) >= CONFIG_POOL_NAMESIZE)
		return -EINVAL;
	*size++ = '\0';
	page = strchr(size, ':');
	if (page)
		*page++ = '\0';
	p = &cfg->pools[cfg->nr_pools];
	*p = (struct config_pool){ 0 };
	if (config_parse_size(size, &p->size) || !p->size)
		return -EINVAL;
	if (page && (config_parse_size(page, &p->page_size) ||
		     (p->page_size != SZ_4K && p->page_size != SZ_2M && p->page_size != SZ_1G)))
		return -EINVAL;
	if (!is_aligned(p->size, page ? p->page_size : SZ_4K))
		return -EINVAL;
	for (unsigned i = 0; i < cfg->nr_pools; i++)
		if (!strcmp(cfg->pools[i].name, buf))
			return -EINVAL;
	memcpy(p->name, buf, strlen(buf) + 1); /* fits: checked above */
	cfg->nr_pools++;
	return 0;
}

static const struct opt_desc opt_table[] = {
	{ "page_size", "auto|4K|2M|1G",
	  "page size of DMA memory; auto takes 2M hugepages and falls back to 4K",
	  parse_page_size },
	{ "mem_limit", "SIZE (e.g. 512M, 4G)",
	  "most physical memory iovm takes; default: the machine's RAM", parse_mem_limit },
	{ "numa_node", "any|N", "NUMA node of DMA memory; placement is verified",
	  parse_numa_node },
	{ "host_pa", "auto|on|off",
	  "hugepage memory at its host physical address (root); on: only such memory, or the call fails",
	  parse_host_pa },
	{ "log_level", "error|warn|notice|info|debug", "process-wide log level",
	  parse_log_level },
	{ "release_delay_ms", "0..3600000",
	  "how long a free page stays committed before it is given back",
	  parse_release_delay },
	{ "pin_budget", "SIZE (e.g. 256M)",
	  "most memory on-demand registrations keep pinned; default: a quarter of RAM",
	  parse_pin_budget },
	{ "oracle", "on|off",
	  "check every device access against a shadow of the mappings (for tests)",
	  parse_oracle },
	{ "pool", "NAME:SIZE[:4K|2M|1G] (repeatable)",
	  "reserve physical memory at start-up for direct-mapped guests (iovm_pool_lookup)",
	  parse_pool },
	{ "share", "NAME", "share the DMA heap and zones with other processes under NAME (iovm_share)",
	  parse_share },
	{ "share_size", "SIZE (e.g. 256M)", "the shared heap's size; default 64M", parse_share_size },
	{ "share_group", "-1|GID", "a group whose members may attach besides this user", parse_share_group },
	{ "attach", "NAME", "use the DMA heap and zones another process shares as NAME (iovm_attach)",
	  parse_attach },
};

void config_defaults(struct iovm_config *cfg)
{
	*cfg = (struct iovm_config){
		.page_size = 0,
		.mem_limit = 0,
		.numa_node = CONFIG_NODE_ANY,
		.host_pa = CONFIG_HOST_PA_AUTO,
		.log_level = CONFIG_LOG_UNCHANGED,
		/*
		 * Long enough that a buffer freed and allocated again in a loop
		 * finds its pages still mapped, short enough that memory a burst
		 * needed goes back within a second.
		 */
		.release_delay_ms = 500,
		.share_group = -1,
	};
}

int config_parse_size(const char *s, uint64_t *out)
{
	unsigned long long v;
	unsigned shift = 0;
	char *end;

	if (!s || !isdigit((unsigned char)*s))
		return err_inval("a size starts with a digit");
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno)
		return err_detail(-EINVAL, IOVM_LOG_DEBUG, "invalid argument: size '%s' is out of range", s);
	switch (toupper((unsigned char)*end)) {
	case '\0':
		break;
	case 'K':
		shift = 10;
		break;
	case 'M':
		shift = 20;
		break;
	case 'G':
		shift = 30;
		break;
	case 'T':
		shift = 40;
		break;
	default:
		return err_detail(-EINVAL, IOVM_LOG_DEBUG, "invalid argument: size '%s': unknown suffix", s);
	}
	if (*end) {
		end++;
		if (!strcasecmp(end, "iB") || !strcasecmp(end, "B"))
			end += strlen(end);
	}
	if (*end)
		return err_detail(-EINVAL, IOVM_LOG_DEBUG, "invalid argument: size '%s': unknown suffix", s);
	if (shift && v > (UINT64_MAX >> shift))
		return err_detail(-EINVAL, IOVM_LOG_DEBUG, "invalid argument: size '%s' does not fit 64 bits", s);
	*out = (uint64_t)v << shift;
	return 0;
}

IOVM_API int iovm_size_parse(const char *s, uint64_t *bytes)
{
	int ret;

	err_enter();
	if (!bytes)
		return err_inval("!bytes");
	ret = config_parse_size(s, bytes);
	if (ret)
		return err_detail(ret, IOVM_LOG_DEBUG, "'%s' is not a size in bytes", s ? s : "(null)");
	return 0;
}

static const struct opt_desc *opt_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(opt_table); i++)
		if (!strcmp(opt_table[i].name, name))
			return &opt_table[i];
	return NULL;
}

int config_parse(struct iovm_config *cfg, const char *opts)
{
	struct iovm_config tmp = *cfg;
	char __autofree *copy = NULL;
	char *save = NULL, *item;

	if (!opts)
		return 0;
	if (strlen(opts) > OPTS_MAX_LEN)
		return err_detail(-EINVAL, IOVM_LOG_ERR, "options string longer than %d characters",
				  OPTS_MAX_LEN);
	copy = strdup(opts);
	if (!copy)
		return -ENOMEM;

	for (item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		const struct opt_desc *d;
		char *eq, *val, *key = item;

		while (isspace((unsigned char)*key))
			key++;
		if (!*key)
			continue; /* "a=1,,b=2" and a trailing comma are harmless */
		eq = strchr(key, '=');
		if (eq)
			*eq = '\0';
		for (char *e = key + strlen(key); e > key && isspace((unsigned char)e[-1]); e--)
			e[-1] = '\0';

		d = opt_find(key);
		if (!d) {
			char known[256] = "";

			/* The names from the table, so that the message never misses one. */
			for (size_t i = 0; i < sizeof(opt_table) / sizeof(opt_table[0]); i++)
				snprintf(known + strlen(known), sizeof(known) - strlen(known), "%s%s", i ? ", " : "",
					 opt_table[i].name);
			return err_detail(-EINVAL, IOVM_LOG_ERR, "unknown option '%s' (known: %s)", key, known);
		}
		val = eq ? eq + 1 : NULL;
		if (val) {
			while (isspace((unsigned char)*val))
				val++;
			for (char *e = val + strlen(val); e > val && isspace((unsigned char)e[-1]); e--)
				e[-1] = '\0';
		}
		if (!val || !*val)
			return err_detail(-EINVAL, IOVM_LOG_ERR, "option '%s' has no value (expected %s)",
					  key, d->values);
		if (d->parse(&tmp, val))
			return err_detail(-EINVAL, IOVM_LOG_ERR,
					  "option '%s': invalid value '%s' (expected %s)", key, val,
					  d->values);
	}
	*cfg = tmp;
	return 0;
}

static char opts_help_text[2048];
static pthread_once_t opts_help_once = PTHREAD_ONCE_INIT;

static void opts_help_build(void)
{
	size_t off = 0;

	for (size_t i = 0; i < ARRAY_SIZE(opt_table) && off < sizeof(opts_help_text); i++)
		off += (size_t)snprintf(opts_help_text + off, sizeof(opts_help_text) - off,
					"  %-18s %-30s %s\n", opt_table[i].name, opt_table[i].values,
					opt_table[i].help);
}

IOVM_API const char *iovm_opts_help(void)
{
	pthread_once(&opts_help_once, opts_help_build);
	return opts_help_text;
}
