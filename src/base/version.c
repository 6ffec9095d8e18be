/* SPDX-License-Identifier: MIT */
/*
 * version.c - iovm_version(): the version this library was built as, from
 * the headers it was built with (tests/base/test_version.c checks that they
 * say what meson.build says).
 */
#include <iovm/version.h>

IOVM_API const char *iovm_version(unsigned *number)
{
	if (number)
		*number = IOVM_VERSION;
	return IOVM_VERSION_STRING;
}
