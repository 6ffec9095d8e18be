/* SPDX-License-Identifier: MIT */
/*
 * iovm/base.h - what every layer of iovm shares: the address types, errors
 * and logging.
 *
 * Addresses of different spaces are distinct struct types, so that a
 * physical address cannot be passed where an IOVA is expected without the
 * compiler noticing (Xen's mfn_t/gfn_t do the same for frame numbers).
 */
#ifndef IOVM_BASE_H
#define IOVM_BASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define IOVM_API __attribute__((visibility("default")))

/**
 * typedef iovm_pa_t - a physical (bus) address on iovm's platform.
 *
 * On the software platform this is an emulated physical address owned by
 * iovm's physical address space. In host-PA mode, hugepage memory has its
 * host physical address here.
 */
typedef struct iovm_pa {
	uint64_t addr;
} iovm_pa_t;

/**
 * typedef iovm_hpa_t - a host physical address, as /proc/self/pagemap
 * reveals it (root only).
 */
typedef struct iovm_hpa {
	uint64_t addr;
} iovm_hpa_t;

/** typedef iovm_iova_t - an address in an IO address space (a domain). */
typedef struct iovm_iova {
	uint64_t addr;
} iovm_iova_t;

/** typedef iovm_gpa_t - a guest physical address. */
typedef struct iovm_gpa {
	uint64_t addr;
} iovm_gpa_t;

/* Returned where an address is unknown (a host PA nobody can read). */
#define IOVM_ADDR_INVALID UINT64_MAX

#define IOVM_PA(a) ((iovm_pa_t){ .addr = (a) })
#define IOVM_HPA(a) ((iovm_hpa_t){ .addr = (a) })
#define IOVM_IOVA(a) ((iovm_iova_t){ .addr = (a) })
#define IOVM_GPA(a) ((iovm_gpa_t){ .addr = (a) })

/**
 * iovm_strerror() - describe an iovm error code.
 * @err: a negative errno as returned by iovm (a positive one is accepted too)
 *
 * Thread safety: safe; the string is static.
 *
 * Return: a short description, never NULL.
 */
IOVM_API const char *iovm_strerror(int err);

/**
 * iovm_error_detail() - what the calling thread's last failed call said.
 *
 * A call that fails leaves a sentence here that names the call and what
 * was wrong: which argument failed which check (every -EINVAL), which
 * option or value, which address. Every call starts with an empty detail,
 * so a detail never belongs to an earlier call; the calls of the hot paths
 * (iovm_dma_pa(), iovm_dma_xlate(), iovm_dma_ptr(), iovm_dma_iova(),
 * iovm_mr_iova(), iovm_rcache_get(), iovm_rcache_put(), iovm_queue_submit(),
 * iovm_queue_process(), iovm_queue_reap()) leave it as it was when they
 * succeed, and set it when they fail. A failure whose errno says it all (a
 * resource short deep inside; iovm_queue_submit()'s -EAGAIN for a full
 * ring, which a poller retries at once) may leave it empty.
 *
 * Thread safety: per thread; the string stays valid until the thread's next
 * call into iovm.
 *
 * Return: the message, or "" when the last call left none.
 */
IOVM_API const char *iovm_error_detail(void);

/* Log levels, lowest is most severe. */
enum iovm_log_level {
	IOVM_LOG_ERR = 0,
	IOVM_LOG_WARN = 1,
	IOVM_LOG_NOTICE = 2,
	IOVM_LOG_INFO = 3,
	IOVM_LOG_DEBUG = 4,
};

typedef void (*iovm_log_fn)(void *arg, enum iovm_log_level level, const char *msg);

/**
 * iovm_log_set_level() - set the process-wide log level.
 * @level: messages above this level are dropped
 *
 * The log_level option of iovm_open() sets it too.
 *
 * Thread safety: safe.
 *
 * Return: 0, or -EINVAL for a level out of range.
 */
IOVM_API int iovm_log_set_level(int level);

/**
 * iovm_log_set_handler() - send log messages somewhere other than stderr.
 * @fn: called once per message, with the message without a newline; NULL
 *      restores the default (stderr)
 * @arg: passed to @fn
 *
 * Thread safety: safe; @fn may be called from any thread, concurrently.
 *
 * Return: 0.
 */
IOVM_API int iovm_log_set_handler(iovm_log_fn fn, void *arg);

/**
 * iovm_opts_help() - the options iovm_open() accepts, one per line.
 *
 * Each line gives an option's name, its values and what it does, in
 * columns; `iovm --help` prints them.
 *
 * Thread safety: safe; the string is static.
 *
 * Return: the table, a static string, never NULL.
 */
IOVM_API const char *iovm_opts_help(void);

/**
 * iovm_size_parse() - a size as the options take it (mem_limit=, pin_budget=,
 * pool=): decimal (or 0x hexadecimal) digits and an optional suffix K, M,
 * G or T (powers of 1024, either case), optionally followed by "B" or
 * "iB": "4096", "64K", "2MiB", "1T".
 * @s: the string
 * @bytes: set to the size
 *
 * Thread safety: safe.
 *
 * Return: 0; -EINVAL for NULL arguments, anything else after the digits
 * (an unknown suffix, a space, a fraction), or a size beyond 64 bits.
 */
IOVM_API int iovm_size_parse(const char *s, uint64_t *bytes);

#ifdef __cplusplus
}
#endif

#endif /* IOVM_BASE_H */
