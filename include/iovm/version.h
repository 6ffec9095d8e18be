/* SPDX-License-Identifier: MIT */
/*
 * iovm/version.h - the version of the headers a program is built with,
 * and iovm_version(), the version of the library it runs with.
 *
 * Versions follow semantic versioning (README, "ABI"): a release that
 * keeps the ABI keeps the soname (libiovm.so.0) and the symbol version
 * node of each function; new functions raise the minor number. A program
 * that needs a function of a later minor release checks IOVM_VERSION at
 * build time with IOVM_VERSION_AT_LEAST(), and iovm_version() at run time
 * if it may run with an older shared library.
 */
#ifndef IOVM_VERSION_H
#define IOVM_VERSION_H

#include <iovm/base.h>

#ifdef __cplusplus
extern "C" {
#endif

#define IOVM_VERSION_MAJOR 0
#define IOVM_VERSION_MINOR 1
#define IOVM_VERSION_PATCH 0
#define IOVM_VERSION_STRING "0.1.0"

/* One number that orders versions: 10000 * major + 100 * minor + patch. */
#define IOVM_VERSION_ENCODE(major, minor, patch) ((major) * 10000 + (minor) * 100 + (patch))
#define IOVM_VERSION IOVM_VERSION_ENCODE(IOVM_VERSION_MAJOR, IOVM_VERSION_MINOR, IOVM_VERSION_PATCH)
/* Whether these headers are of @major.@minor.@patch or later. */
#define IOVM_VERSION_AT_LEAST(major, minor, patch) (IOVM_VERSION >= IOVM_VERSION_ENCODE(major, minor, patch))

/**
 * iovm_version() - the version of the library running this program.
 * @number: where to put it as IOVM_VERSION_ENCODE() makes it, or NULL.
 *
 * It may differ from IOVM_VERSION_STRING, the headers' version, when a
 * program runs with another build of the shared library than it was built
 * with.
 *
 * Thread safety: safe; no context needed.
 *
 * Return: the version as "MAJOR.MINOR.PATCH", a static string.
 */
IOVM_API const char *iovm_version(unsigned *number);

#ifdef __cplusplus
}
#endif

#endif /* IOVM_VERSION_H */
