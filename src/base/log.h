/* SPDX-License-Identifier: MIT */
/*
 * log.h - iovm's log: one process-wide level and handler.
 */
#ifndef IOVM_BASE_LOG_H
#define IOVM_BASE_LOG_H

#include <iovm/base.h>

#include "base/compiler.h"

__printf(2, 3) void log_msg(int level, const char *fmt, ...);
bool log_enabled(int level);

#define log_err(...) log_msg(IOVM_LOG_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(IOVM_LOG_WARN, __VA_ARGS__)
#define log_notice(...) log_msg(IOVM_LOG_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(IOVM_LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(IOVM_LOG_DEBUG, __VA_ARGS__)

#endif /* IOVM_BASE_LOG_H */
