/* SPDX-License-Identifier: MIT */
/*
 * fault_base.c - fault-injection scenarios of iovm/base.h, ctx.h and os.h:
 * contexts opened with several option strings, refused options, the log,
 * and the machine's description.
 */
#include "fault.h"

static void open_close(const char *opts)
{
	struct iovm_ctx *ctx = fault_open(opts);
	struct iovm_ctx_info info;

	FI_INT(iovm_ctx_info(ctx, &info));
	CHECK(info.page_size >= 4096);
	CHECK_EQ(iovm_close(ctx), 0);
}

static void sc_open(void)
{
	struct iovm_ctx *ctx = NULL;

	open_close(FAULT_OPTS);
	open_close("");
	open_close("page_size=auto,mem_limit=64M,numa_node=any,host_pa=off");
	open_close("page_size=4K,oracle=on,pin_budget=16M,log_level=error");
	open_close("page_size=4K,pool=fault0:1M:4K,pool=fault1:512K:4K");
	/* A refused option names itself, whatever else failed first. */
	FI_EXPECT(iovm_open("page_size=4K,no_such_option=1", &ctx), -EINVAL);
	CHECK(ctx == NULL);
	CHECK(strstr(iovm_error_detail(), "no_such_option") != NULL);
	FI_EXPECT(iovm_open("page_size=3K", &ctx), -EINVAL);
	CHECK(ctx == NULL);
}

static unsigned logged;

static void count_log(void *arg __attribute__((unused)), enum iovm_log_level level __attribute__((unused)),
		      const char *msg)
{
	CHECK(msg != NULL);
	logged++;
}

static void sc_base(void)
{
	struct iovm_sysinfo *info = NULL;
	struct iovm_ctx *ctx;

	CHECK(strlen(iovm_strerror(-ENOMEM)) > 0);
	CHECK(strlen(iovm_opts_help()) > 0);
	CHECK(strlen(iovm_version(NULL)) > 0); /* these allocate nothing: no failure to inject */
	CHECK(strlen(iovm_status_name(IOVM_STATUS_PAGE_FAULT)) > 0);
	CHECK(strlen(iovm_fault_reason_name(IOVM_FAULT_PERMISSION)) > 0);
	CHECK(iovm_uffd_feature_name(6) != NULL);
	{
		uint64_t size;

		FI_INT(iovm_size_parse("2M", &size));
		CHECK_EQ(size, 2u << 20);
	}
	FI_INT(iovm_log_set_handler(count_log, NULL));
	FI_INT(iovm_log_set_level(IOVM_LOG_DEBUG));
	logged = 0;
	ctx = fault_open(FAULT_OPTS);
	CHECK_EQ(iovm_close(ctx), 0);
	CHECK(logged > 0); /* debug messages of the open and close, through the handler */
	FI_INT(iovm_log_set_level(IOVM_LOG_WARN));
	FI_INT(iovm_log_set_handler(fault_quiet_log, NULL));
	FI_INT(iovm_sysinfo_get(&info));
	CHECK(info != NULL);
	CHECK(info->base_page_size == 4096);
	iovm_sysinfo_free(info);
}

static const struct fault_scenario fault_base_scenarios[] = {
	{ "open and close", sc_open },
	{ "log and sysinfo", sc_base },
	{ NULL, NULL },
};
