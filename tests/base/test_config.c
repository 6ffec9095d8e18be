/* SPDX-License-Identifier: MIT */
/*
 * test_config.c - the options string: every key, sizes, and error messages
 * that name the key or the value at fault.
 */
#include <iovm/base.h>

#include "base/config.h"
#include "harness.h"

TEST(defaults_and_keys)
{
	struct iovm_config c;

	config_defaults(&c);
	CHECK_EQ(c.page_size, 0);
	CHECK_EQ(c.numa_node, CONFIG_NODE_ANY);
	CHECK_EQ(c.host_pa, CONFIG_HOST_PA_AUTO);
	CHECK_OK(config_parse(&c, "page_size=2M,mem_limit=512M,numa_node=0,host_pa=off,"
				  "log_level=debug,release_delay_ms=0"));
	CHECK_EQ(c.page_size, 2u << 20);
	CHECK_EQ(c.mem_limit, 512u << 20);
	CHECK_EQ(c.numa_node, 0);
	CHECK_EQ(c.host_pa, CONFIG_HOST_PA_OFF);
	CHECK_EQ(c.log_level, IOVM_LOG_DEBUG);
	CHECK_EQ(c.release_delay_ms, 0);
	CHECK_OK(config_parse(&c, " page_size = 4K , host_pa=on,numa_node=any,"));
	CHECK_EQ(c.page_size, 4096);
	CHECK_EQ(c.host_pa, CONFIG_HOST_PA_ON);
	CHECK_EQ(c.numa_node, CONFIG_NODE_ANY);
	CHECK_OK(config_parse(&c, "page_size=auto,page_size=1G"));
	CHECK_EQ(c.page_size, 1u << 30);
	CHECK_OK(config_parse(&c, ""));
	CHECK_OK(config_parse(&c, NULL));
	CHECK_OK(config_parse(&c, "log_level=2"));
	CHECK_EQ(c.log_level, 2);
}

TEST(sizes)
{
	uint64_t v;

	CHECK_OK(config_parse_size("4096", &v));
	CHECK_EQ(v, 4096);
	CHECK_OK(config_parse_size("2M", &v));
	CHECK_EQ(v, 2u << 20);
	CHECK_OK(config_parse_size("2MiB", &v));
	CHECK_EQ(v, 2u << 20);
	CHECK_OK(config_parse_size("1g", &v));
	CHECK_EQ(v, 1u << 30);
	CHECK_OK(config_parse_size("3T", &v));
	CHECK_EQ(v, UINT64_C(3) << 40);
	CHECK_OK(config_parse_size("0x1000", &v));
	CHECK_EQ(v, 4096);
	CHECK_EQ(config_parse_size("", &v), -EINVAL);
	CHECK_EQ(config_parse_size("-1", &v), -EINVAL);
	CHECK_EQ(config_parse_size("12Q", &v), -EINVAL);
	CHECK_EQ(config_parse_size("1Mx", &v), -EINVAL);
	CHECK_EQ(config_parse_size("99999999999999999999", &v), -EINVAL);
	CHECK_EQ(config_parse_size("17000000T", &v), -EINVAL);
}

/* Each bad string, and a word the error message must contain. */
static const struct {
	const char *opts;
	const char *names;
} bad[] = {
	{ "pagesize=2M", "'pagesize'" },
	{ "page_size", "'page_size' has no value" },
	{ "page_size=", "'page_size' has no value" },
	{ "page_size=3M", "'3M'" },
	{ "page_size=8K", "'8K'" },
	{ "mem_limit=lots", "'lots'" },
	{ "mem_limit=1M", "'1M'" },
	{ "numa_node=-2", "'-2'" },
	{ "numa_node=1024", "'1024'" },
	{ "numa_node=0x", "'0x'" },
	{ "host_pa=maybe", "'maybe'" },
	{ "log_level=loud", "'loud'" },
	{ "log_level=9", "'9'" },
	{ "release_delay_ms=-5", "'-5'" },
	{ "release_delay_ms=999999999", "'999999999'" },
	{ "page_size=2M,bogus=1", "'bogus'" },
	{ "=1", "''" },
};

TEST(errors_name_the_culprit)
{
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct iovm_config c, before;

		config_defaults(&c);
		before = c;
		CHECK_MSG(config_parse(&c, bad[i].opts) == -EINVAL, "'%s' accepted", bad[i].opts);
		CHECK_MSG(strstr(iovm_error_detail(), bad[i].names), "'%s': message '%s' lacks %s",
			  bad[i].opts, iovm_error_detail(), bad[i].names);
		/* A failed parse leaves the configuration as it was. */
		CHECK(!memcmp(&c, &before, sizeof(c)));
	}
}

TEST(too_long)
{
	struct iovm_config c;
	char *s = malloc(8192);

	CHECK(s != NULL);
	memset(s, 'a', 8191);
	s[8191] = '\0';
	config_defaults(&c);
	CHECK_EQ(config_parse(&c, s), -EINVAL);
	free(s);
	CHECK(strstr(iovm_opts_help(), "page_size") != NULL);
	CHECK(strstr(iovm_opts_help(), "release_delay_ms") != NULL);
}

static void quiet(void *arg, enum iovm_log_level level, const char *msg)
{
	(void)arg;
	(void)level;
	(void)msg;
}

int main(void)
{
	iovm_log_set_handler(quiet, NULL); /* the bad strings are expected */
	test_init();
	RUN(defaults_and_keys);
	RUN(sizes);
	RUN(errors_name_the_culprit);
	RUN(too_long);
	return 0;
}
