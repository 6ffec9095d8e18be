/* SPDX-License-Identifier: MIT */
/*
 * cmd_devsrv.c - `iovm device-server NAME --share SHARE [--own SIZE]
 * [--workers N] [--stats SECONDS]`: a device process (iovm/mp.h). It
 * attaches to the share SHARE (or, with --own, makes it: a heap of SIZE)
 * and serves the software DMA engine under NAME to the share's client
 * processes until SIGINT or SIGTERM; then it stops serving, closes, and
 * prints its counters.
 *
 * Its output is for scripts as much as for people: one "ready" line once
 * clients can open queues, a "stats" line every SECONDS with --stats, and
 * a "stopped" line with the final counters; each line is flushed at once.
 * Exit status: 0 after a clean stop, 1 when a call failed (its
 * iovm_error_detail() on stderr), 2 for a bad command line.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <iovm.h>

#include "cmd.h"

struct devsrv_args {
	const char *name;
	const char *share;
	uint64_t own_size;  /* --own: the heap of a share of our own; 0: attach */
	unsigned workers;   /* 0: the library's default */
	unsigned stats_sec; /* 0: no periodic line */
};

static int usage(void)
{
	fprintf(stderr, "usage: iovm device-server NAME --share SHARE [--own SIZE] [--workers N] [--stats SECONDS]\n"
			"  serves the software DMA engine under NAME to the processes of the share SHARE;\n"
			"  --own SIZE makes the share (a heap of SIZE) instead of attaching to it.\n"
			"  Runs until SIGINT or SIGTERM. Options of the context: IOVM_OPTS.\n");
	return 2;
}

/* A whole decimal number in [lo, hi]. */
static bool parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
	char *end;
	unsigned long v;

	if (!s || *s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return false;
	*out = (unsigned)v;
	return true;
}

static int parse_args(int argc, char **argv, struct devsrv_args *a)
{
	memset(a, 0, sizeof(*a));
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(arg, "-h") || !strcmp(arg, "--help"))
			return usage();
		if (!strcmp(arg, "--share") && val) {
			a->share = val;
		} else if (!strcmp(arg, "--own") && val) {
			if (iovm_size_parse(val, &a->own_size) || !a->own_size) {
				fprintf(stderr, "iovm device-server: '%s' is not a size (bytes, or with a suffix K, M, G or T)\n", val);
				return 2;
			}
		} else if (!strcmp(arg, "--workers") && val) {
			if (!parse_uint(val, 1, 64, &a->workers)) {
				fprintf(stderr, "iovm device-server: --workers takes 1 to 64, not '%s'\n", val);
				return 2;
			}
		} else if (!strcmp(arg, "--stats") && val) {
			if (!parse_uint(val, 1, 86400, &a->stats_sec)) {
				fprintf(stderr, "iovm device-server: --stats takes 1 to 86400 seconds, not '%s'\n", val);
				return 2;
			}
		} else if (arg[0] != '-' && !a->name) {
			a->name = arg;
			continue;
		} else {
			fprintf(stderr, "iovm device-server: unknown or incomplete argument '%s'\n", arg);
			return usage();
		}
		i++; /* the option's value */
	}
	if (!a->name || !a->share)
		return usage();
	return 0;
}

static int fail(const char *call, int err)
{
	fprintf(stderr, "iovm device-server: %s: %s: %s\n", call, iovm_strerror(err), iovm_error_detail());
	return 1;
}

static void print_counters(const char *what, const struct iovm_device_server_info *info)
{
	printf("%s: clients %u, queues opened %" PRIu64 ", descriptors %" PRIu64 ", torn down %" PRIu64
	       ", refused %" PRIu64 "\n",
	       what, info->clients, info->opened, info->descriptors, info->torn_down, info->refused);
	fflush(stdout);
}

/*
 * Wait for SIGINT or SIGTERM (blocked in every thread), printing the
 * counters every @stats_sec seconds meanwhile. Returns the signal.
 */
static int wait_for_stop(struct iovm_device_server *srv, const sigset_t *stop, unsigned stats_sec)
{
	struct timespec every = { .tv_sec = stats_sec };

	for (;;) {
		struct iovm_device_server_info info;
		int sig = stats_sec ? sigtimedwait(stop, NULL, &every) : sigwaitinfo(stop, NULL);

		if (sig > 0)
			return sig;
		if (sig < 0 && errno == EAGAIN && !iovm_device_server_info(srv, &info))
			print_counters("stats", &info);
	}
}

int cmd_devsrv(int argc, char **argv)
{
	struct iovm_share_params params = { .group = -1 };
	struct iovm_device_server_info info = { 0 };
	struct iovm_device_server *srv;
	struct iovm_ctx *ctx;
	struct devsrv_args a;
	sigset_t stop;
	int ret, sig;

	if ((ret = parse_args(argc, argv, &a)))
		return ret;
	/*
	 * Blocked before any thread starts, so that every thread the library
	 * starts inherits the mask and the signal waits for sigwaitinfo().
	 * Never unblocked: a second signal while stopping must not cut the
	 * final counters short; the process ends right after.
	 */
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	sigprocmask(SIG_BLOCK, &stop, NULL);
	if (a.own_size) {
		params.heap_size = a.own_size;
		if ((ret = iovm_open(NULL, &ctx)))
			return fail("iovm_open", ret);
		if ((ret = iovm_share(ctx, a.share, &params))) {
			fail("iovm_share", ret);
			goto close_ctx;
		}
	} else if ((ret = iovm_attach(a.share, NULL, &ctx))) {
		return fail("iovm_attach", ret);
	}
	if ((ret = iovm_device_serve(ctx, a.name, a.workers, &srv))) {
		fail("iovm_device_serve", ret);
		goto close_ctx;
	}
	printf("ready: device server %s on share %s (%s), workers %u, pid %d\n", a.name, a.share,
	       a.own_size ? "its own" : "attached", a.workers ? a.workers : 1, (int)getpid());
	fflush(stdout);

	sig = wait_for_stop(srv, &stop, a.stats_sec);
	/* The last counters: after the stop no call on the server may follow. */
	iovm_device_server_info(srv, &info);
	if ((ret = iovm_device_server_stop(srv))) {
		fail("iovm_device_server_stop", ret);
		goto close_ctx;
	}
	if ((ret = iovm_close(ctx)))
		return fail("iovm_close", ret);
	printf("stopped by %s\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
	print_counters("counters", &info);
	return 0;

close_ctx:
	iovm_close(ctx);
	return 1;
}
