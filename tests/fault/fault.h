/* SPDX-License-Identifier: MIT */
/*
 * fault.h - fault injection over the public API: what a scenario uses.
 *
 * A scenario is a sequence of public calls, from iovm_open() to
 * iovm_close(), that checks what each call did. The runner (fault_run.c)
 * runs it with the calling thread's n-th allocation, mmap, system call or
 * thread creation failing (fi_arm(), src/base/fault_inject.h), for n = 1,
 * 2, ... until a run no longer reaches the n-th point. Each call of the
 * scenario goes through one of the macros below, which, when the call
 * fails:
 *  - require that the injected failure fired (a failure without one is a
 *    bug of its own) and that the call failed cleanly: a negative errno
 *    (NULL with errno set) that says the resource ran out (ENOMEM, EMFILE,
 *    ENFILE, EAGAIN, ENOSPC, or the errno injected);
 *  - ask the same call again, with nothing injected any more: it must now
 *    succeed, so the failed call left no half-made state behind (a fixed
 *    IOVA mapped twice is -EEXIST, a zone made twice says it existed) and
 *    the objects made before it are still usable;
 *  - and the scenario goes on, using those objects, to its end.
 * After iovm_close() the runner checks that no file descriptor and no
 * mapping outlived the run; LeakSanitizer (the ASan build) checks the heap
 * at exit.
 */
#ifndef IOVM_TESTS_FAULT_H
#define IOVM_TESTS_FAULT_H

#include <iovm.h>

#include "base/fault_inject.h"
#include "harness.h"

/* The log handler of the runs: injected failures are logged, and need not be printed. */
void fault_quiet_log(void *arg, enum iovm_log_level level, const char *msg);

/* A failed call: checks the failure and disarms injection, so that the call can be asked again. */
void fault_met(const char *call, int err, const char *file, int line);

/* A call returning a count or 0, or a negative errno: its value once it succeeded. */
#define FI_INT(call)                                                                                 \
	__extension__({                                                                              \
		long long _ret = (call);                                                             \
		if (_ret < 0) {                                                                      \
			fault_met(#call, (int)_ret, __FILE__, __LINE__);                             \
			_ret = (call);                                                               \
			CHECK_MSG(_ret >= 0, "%s, asked again with nothing injected: %lld (%s)",     \
				  #call, _ret, strerror((int)-_ret));                                \
		}                                                                                    \
		CHECK(_ret >= 0);                                                                    \
		_ret;                                                                                \
	})

/*
 * As FI_INT(), for a call whose retry meets a bug filed elsewhere: asked
 * again, it may give @known_err, which is counted and said (with @why), not
 * failed, so that this test keeps finding everything else meanwhile. Once
 * the bug is fixed, the marker goes.
 */
void fault_known(const char *call, int err, const char *why, const char *file, int line);
#define FI_INT_KNOWN(call, known_err, why)                                                           \
	__extension__({                                                                              \
		long long _ret = (call);                                                             \
		if (_ret < 0) {                                                                      \
			fault_met(#call, (int)_ret, __FILE__, __LINE__);                             \
			_ret = (call);                                                               \
			if (_ret == (known_err)) {                                                   \
				fault_known(#call, (int)_ret, why, __FILE__, __LINE__);              \
			} else {                                                                     \
				CHECK_MSG(_ret >= 0, "%s, asked again with nothing injected: %lld (%s)", \
					  #call, _ret, strerror((int)-_ret));                        \
			}                                                                            \
		}                                                                                    \
		_ret;                                                                                \
	})

/* A pointer-returning call (NULL and errno on failure): the pointer once it succeeded. */
#define FI_PTR(call)                                                                                 \
	__extension__({                                                                              \
		void *_p;                                                                            \
		errno = 0;                                                                           \
		_p = (call);                                                                         \
		if (!_p) {                                                                           \
			fault_met(#call, errno ? -errno : -999, __FILE__, __LINE__);                 \
			_p = (call);                                                                 \
			CHECK_MSG(_p != NULL, "%s, asked again with nothing injected: %s", #call,    \
				  strerror(errno));                                                  \
		}                                                                                    \
		CHECK(_p != NULL);                                                                   \
		_p;                                                                                  \
	})

/*
 * A call that must fail with @want (an argument it refuses, say): with a
 * failure injected it may instead run out of a resource first; asked
 * again, it must give @want.
 */
#define FI_EXPECT(call, want)                                                                        \
	do {                                                                                         \
		int _ret = (call);                                                                   \
		if (_ret != (want) && _ret < 0) {                                                    \
			fault_met(#call, _ret, __FILE__, __LINE__);                                  \
			_ret = (call);                                                               \
		}                                                                                    \
		CHECK_MSG(_ret == (want), "%s: %d, expected %d", #call, _ret, (int)(want));          \
	} while (0)

/* Options every scenario's context starts from: 4 KiB pages (hugepages are the machine's, not ours). */
#define FAULT_OPTS "page_size=4K,host_pa=off,release_delay_ms=0"

struct fault_scenario {
	const char *name;
	void (*run)(void);
};

/*
 * The scenarios, by layer (fault_LAYER.c, each a list fault_LAYER_scenarios
 * ending with a { NULL, NULL } entry), are built into the runner's program.
 */

/* Whether this run has nothing injected: the reference of the scenario. */
bool fault_reference_run(void);

/* Opens a context as a scenario's first step. */
static inline struct iovm_ctx *fault_open(const char *opts)
{
	struct iovm_ctx *ctx = NULL;

	FI_INT(iovm_open(opts, &ctx));
	CHECK(ctx != NULL);
	return ctx;
}

#endif /* IOVM_TESTS_FAULT_H */
