/* SPDX-License-Identifier: MIT */
/*
 * devsrv_child.h - a device process for the attack rounds that need one
 * (attack6_devown.h, attack18.h): a child attached to a share, serving
 * its engine under a name, that answers devsrv_info() over its pipe
 * until devsrv_stop(). Needs mp/mp_util.h (child_start(), put64(),
 * get64()) included first.
 */
#ifndef IOVM_TESTS_DEVSRV_CHILD_H
#define IOVM_TESTS_DEVSRV_CHILD_H

#include <iovm/mp.h>

/* The share and the device's name the next devsrv_start() serves: read by the child, which the fork copies them into. */
static const char *devsrv_share, *devsrv_dev;
/* Set before devsrv_start(): the device process prints why each of its descriptors faulted (its debug lines). */
static bool devsrv_fault_reasons;

/* The device's own debug lines ("device: ..."), not the rest of the library's: why it faulted. */
static void devsrv_log(void *arg, enum iovm_log_level level, const char *msg)
{
	(void)arg;
	if (level != IOVM_LOG_DEBUG || strstr(msg, "device: "))
		fprintf(stderr, "devsrv: %s\n", msg);
}

enum { DEVSRV_STOP = 1, DEVSRV_INFO = 2 };

static void devsrv_main(int rd, int wr, void *arg)
{
	struct iovm_ctx *ctx = NULL;
	struct iovm_device_server *srv;
	unsigned workers = arg ? (unsigned)(uintptr_t)arg : 2;
	int ret;

	/* To see why the device faulted (its bus faults say so at debug level): DEVSRV_DEBUG=1. */
	if (getenv("DEVSRV_DEBUG"))
		iovm_log_set_level(IOVM_LOG_DEBUG);
	else if (devsrv_fault_reasons) {
		iovm_log_set_handler(devsrv_log, NULL);
		iovm_log_set_level(IOVM_LOG_DEBUG);
	}
	ret = iovm_attach(devsrv_share, "oracle=on", &ctx);
	CHECK_MSG(ret == 0, "attach: %s", iovm_error_detail());
	ret = iovm_device_serve(ctx, devsrv_dev, workers, &srv);
	CHECK_MSG(ret == 0, "serve: %s", iovm_error_detail());
	put64(wr, 1);
	for (;;) {
		uint64_t cmd = get64(rd);
		struct iovm_device_server_info info;

		if (cmd != DEVSRV_INFO)
			break;
		CHECK_OK(iovm_device_server_info(srv, &info));
		put64(wr, info.clients);
		put64(wr, info.opened);
		put64(wr, info.torn_down);
		put64(wr, info.descriptors);
		put64(wr, info.refused);
	}
	CHECK_OK(iovm_device_server_stop(srv));
	CHECK_OK(iovm_close(ctx));
}

/* A device process serving @dev on @share with @workers threads (0: 2), once it serves. */
static inline struct child devsrv_start(const char *share, const char *dev, unsigned workers)
{
	struct child srv;

	devsrv_share = share;
	devsrv_dev = dev;
	srv = child_start(devsrv_main, (void *)(uintptr_t)workers);
	CHECK_EQ(get64(srv.rd), 1);
	return srv;
}

static inline struct iovm_device_server_info devsrv_info(struct child *srv)
{
	struct iovm_device_server_info info;

	put64(srv->wr, DEVSRV_INFO);
	info.clients = (unsigned)get64(srv->rd);
	info.opened = get64(srv->rd);
	info.torn_down = get64(srv->rd);
	info.descriptors = get64(srv->rd);
	info.refused = get64(srv->rd);
	return info;
}

static inline void devsrv_stop(struct child *srv)
{
	put64(srv->wr, DEVSRV_STOP);
	child_ok(srv);
}

#endif /* IOVM_TESTS_DEVSRV_CHILD_H */
