/* SPDX-License-Identifier: MIT */
/*
 * test_attack15_info.c - `iovm info` (docs/command.md) with IOVM_OPTS that
 * cannot open, and with host_pa on and off: where the open fails, the
 * report says why (the detail iovm_open() gave), in the table and in
 * --json; where it opens, it says the mode it runs in. Run as
 * test_attack15_info PATH_TO_IOVM.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <iovm.h>

#include "harness.h"

static const char *iovm_cmd;

/* `iovm info [--json]` with IOVM_OPTS=@opts: its stdout in @out, its exit status. */
static int info(const char *opts, const char *args, char *out, size_t cap)
{
	char cmd[1024];
	size_t n = 0;
	FILE *p;
	int st;

	snprintf(cmd, sizeof(cmd), "IOVM_OPTS='%s' '%s' info %s 2>/dev/null", opts, iovm_cmd, args);
	p = popen(cmd, "r");
	CHECK(p != NULL);
	while (n + 1 < cap) {
		size_t r = fread(out + n, 1, cap - 1 - n, p);

		if (!r)
			break;
		n += r;
	}
	out[n] = 0;
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The "iovm" line of the table. */
static const char *iovm_line(const char *out, char *line, size_t cap)
{
	const char *l = strstr(out, "\niovm ");

	CHECK_MSG(l != NULL, "no iovm line in:\n%s", out);
	l++;
	snprintf(line, cap, "%.*s", (int)strcspn(l, "\n"), l);
	return line;
}

/* What iovm_open() says of @opts, straight from the library: 0, or its errno and detail. */
static int open_says(const char *opts, char *detail, size_t cap)
{
	struct iovm_ctx *c;
	int ret = iovm_open(opts, &c);

	snprintf(detail, cap, "%s", ret ? iovm_error_detail() : "");
	if (!ret)
		CHECK_OK(iovm_close(c));
	return ret;
}

TEST(open_failures_say_why)
{
	static const char *const bad[] = {
		"bogus=1", "host_pa=maybe", "host_pa=on,page_size=4K", "page_size=3M", "mem_limit=0",
		"host_pa=on,bogus=1", "pin_budget=1",
	};
	static char out[1 << 16], line[4096], detail[1024];

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int ret = open_says(bad[i], detail, sizeof(detail));

		CHECK_MSG(ret < 0, "%s opens", bad[i]);
		CHECK_MSG(*detail, "%s: no detail from iovm_open()", bad[i]);
		CHECK_EQ(info(bad[i], "", out, sizeof(out)), 0);
		iovm_line(out, line, sizeof(line));
		CHECK_MSG(strstr(line, "cannot open") && strstr(line, detail), "IOVM_OPTS=%s: '%s' (open said '%s')",
			  bad[i], line, detail);
		CHECK_EQ(info(bad[i], "--json", out, sizeof(out)), 0);
		CHECK_MSG(strstr(out, "\"error\"") && strstr(out, "\"detail\""), "IOVM_OPTS=%s --json: %s", bad[i], out);
	}
}

/* host_pa=off always opens; host_pa=on opens, or fails saying why (pagemap, hugepages). */
TEST(host_pa_on_off)
{
	static char out[1 << 16], line[4096], detail[1024];
	int ret;

	CHECK_EQ(open_says("host_pa=off", detail, sizeof(detail)), 0);
	CHECK_EQ(info("host_pa=off", "", out, sizeof(out)), 0);
	iovm_line(out, line, sizeof(line));
	CHECK_MSG(strstr(line, "host-PA mode off") && !strstr(line, "cannot open"), "%s", line);

	ret = open_says("host_pa=on", detail, sizeof(detail));
	CHECK_EQ(info("host_pa=on", "", out, sizeof(out)), 0);
	iovm_line(out, line, sizeof(line));
	if (ret) {
		CHECK_MSG(strstr(line, "cannot open") && strstr(line, detail), "host_pa=on: '%s' (open said '%s')",
			  line, detail);
		printf("# host_pa=on does not open here: %s\n", detail);
	} else {
		CHECK_MSG(strstr(line, "host-PA mode on"), "%s", line);
	}
	CHECK_EQ(info("host_pa=on", "--json", out, sizeof(out)), 0);
	CHECK(strstr(out, ret ? "\"detail\"" : "\"host_pa_mode\": true") != NULL);
}

int main(int argc, char **argv)
{
	test_init();
	if (argc < 2)
		SKIP("usage: test_attack15_info PATH_TO_IOVM");
	iovm_cmd = argv[1];
	RUN(open_failures_say_why);
	RUN(host_pa_on_off);
	return 0;
}
