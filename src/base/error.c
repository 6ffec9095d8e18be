/* SPDX-License-Identifier: MIT */
/*
 * error.c - iovm_strerror() and the per-thread error detail.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <iovm/base.h>

#include "base/error.h"
#include "base/log.h"

/* Long enough for an option string quoted back at the user. */
#define ERR_DETAIL_MAX 512

__thread const char *err_api __tls_ie;
__thread char err_detail_buf[ERR_DETAIL_MAX] __tls_ie;

int err_detail(int err, int level, const char *fmt, ...)
{
	int n = 0;
	va_list ap;

	if (err_api)
		n = snprintf(err_detail_buf, ERR_DETAIL_MAX, "%s: ", err_api);
	va_start(ap, fmt);
	vsnprintf(err_detail_buf + n, (size_t)(ERR_DETAIL_MAX - n), fmt, ap);
	va_end(ap);
	log_msg(level, "%s", err_detail_buf);
	return err;
}

void err_clear(void)
{
	err_detail_buf[0] = '\0';
}

IOVM_API const char *iovm_error_detail(void)
{
	return err_detail_buf;
}

IOVM_API const char *iovm_strerror(int err)
{
	const char *s;

	if (err == 0)
		return "success";
	if (err == INT_MIN)
		return "unknown error"; /* -INT_MIN does not exist */
	if (err < 0)
		err = -err;
	/* strerrordesc_np() returns a static string: safe from any thread. */
	s = strerrordesc_np(err);
	return s ? s : "unknown error";
}
