/* SPDX-License-Identifier: MIT */
/*
 * fuzz_options.c - the options string (config_parse()): any bytes give 0
 * or -EINVAL with a detail that names what was wrong; a failed parse leaves
 * the configuration as it was; a successful one is stable (the same string
 * parsed again on its own result changes nothing) and within the ranges
 * the table promises.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <iovm/base.h>

#include "base/config.h"
#include "base/log.h"

#define FUZZ_CHECK(c)      \
	do {               \
		if (!(c))  \
			abort(); \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Field by field: a struct copy need not copy padding. */
static bool config_equal(const struct iovm_config *a, const struct iovm_config *b)
{
	if (a->page_size != b->page_size || a->mem_limit != b->mem_limit || a->numa_node != b->numa_node ||
	    a->host_pa != b->host_pa || a->log_level != b->log_level ||
	    a->release_delay_ms != b->release_delay_ms || a->pin_budget != b->pin_budget ||
	    a->oracle != b->oracle || a->nr_pools != b->nr_pools)
		return false;
	for (unsigned i = 0; i < a->nr_pools; i++)
		if (strcmp(a->pools[i].name, b->pools[i].name) || a->pools[i].size != b->pools[i].size ||
		    a->pools[i].page_size != b->pools[i].page_size)
			return false;
	return true;
}

static void quiet(void *arg, enum iovm_log_level level, const char *msg)
{
	(void)arg;
	(void)level;
	(void)msg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct iovm_config c, before, again;
	char *s = malloc(size + 1);
	int ret;

	if (!s)
		return 0;
	iovm_log_set_handler(quiet, NULL);
	memcpy(s, data, size);
	s[size] = '\0';
	config_defaults(&c);
	before = c;
	ret = config_parse(&c, s);
	FUZZ_CHECK(ret == 0 || ret == -EINVAL);
	if (ret) {
		FUZZ_CHECK(config_equal(&c, &before));
		FUZZ_CHECK(iovm_error_detail()[0] != '\0');
	} else {
		FUZZ_CHECK(c.page_size == 0 || c.page_size == 4096 || c.page_size == (2u << 20) ||
			   c.page_size == (1u << 30));
		FUZZ_CHECK(c.nr_pools <= CONFIG_MAX_POOLS);
		FUZZ_CHECK(c.release_delay_ms <= 3600000);
		for (unsigned i = 0; i < c.nr_pools; i++)
			FUZZ_CHECK(memchr(c.pools[i].name, '\0', sizeof(c.pools[i].name)));
		/* Parsing the same string over its own result is a fixed point, pools aside (they add up). */
		if (!c.nr_pools) {
			again = c;
			FUZZ_CHECK(config_parse(&again, s) == 0);
			FUZZ_CHECK(config_equal(&again, &c));
		}
	}
	free(s);
	return 0;
}
