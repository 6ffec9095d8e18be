/* SPDX-License-Identifier: MIT */
/*
 * test_version.c - the version macros and iovm_version() agree with each
 * other and with meson.build's project version (passed in by the build):
 * a release that bumps one of them and forgets another fails here.
 */
#include <stdio.h>
#include <string.h>

#include <iovm.h>

#include "harness.h"

TEST(the_versions_agree)
{
	unsigned number = 0, major, minor, patch;
	char tail;

	CHECK(!strcmp(iovm_version(&number), IOVM_VERSION_STRING));
	CHECK(!strcmp(iovm_version(NULL), IOVM_MESON_VERSION));
	CHECK_EQ(number, IOVM_VERSION);
	CHECK_EQ(sscanf(IOVM_VERSION_STRING, "%u.%u.%u%c", &major, &minor, &patch, &tail), 3);
	CHECK_EQ(major, IOVM_VERSION_MAJOR);
	CHECK_EQ(minor, IOVM_VERSION_MINOR);
	CHECK_EQ(patch, IOVM_VERSION_PATCH);
	CHECK_EQ(IOVM_VERSION, IOVM_VERSION_ENCODE(major, minor, patch));
}

TEST(at_least_orders_versions)
{
	CHECK(IOVM_VERSION_AT_LEAST(IOVM_VERSION_MAJOR, IOVM_VERSION_MINOR, IOVM_VERSION_PATCH));
	CHECK(IOVM_VERSION_AT_LEAST(0, 0, 0));
	CHECK(!IOVM_VERSION_AT_LEAST(IOVM_VERSION_MAJOR + 1, 0, 0));
	CHECK(!IOVM_VERSION_AT_LEAST(IOVM_VERSION_MAJOR, IOVM_VERSION_MINOR + 1, 0));
	CHECK(!IOVM_VERSION_AT_LEAST(IOVM_VERSION_MAJOR, IOVM_VERSION_MINOR, IOVM_VERSION_PATCH + 1));
	/* Each part has two decimal digits of room below the next. */
	CHECK(IOVM_VERSION_ENCODE(0, 1, 99) < IOVM_VERSION_ENCODE(0, 2, 0));
	CHECK(IOVM_VERSION_ENCODE(0, 99, 99) < IOVM_VERSION_ENCODE(1, 0, 0));
}

int main(void)
{
	test_init();
	RUN(the_versions_agree);
	RUN(at_least_orders_versions);
	return 0;
}
