/* SPDX-License-Identifier: MIT */
/* Logging for daemons and CLIs (never for library code). */
#ifndef PW_COMMON_LOG_H
#define PW_COMMON_LOG_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

enum pw_log_level { PW_LOG_ERROR, PW_LOG_WARN, PW_LOG_INFO, PW_LOG_DEBUG };

extern enum pw_log_level pw_log_max;
extern const char *pw_log_ident;

void pw_log(enum pw_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Parse "error", "warn", "info" or "debug"; -1 if none of them. */
int pw_log_parse(const char *s);

#define pw_err(...)  pw_log(PW_LOG_ERROR, __VA_ARGS__)
#define pw_warn(...) pw_log(PW_LOG_WARN, __VA_ARGS__)
#define pw_info(...) pw_log(PW_LOG_INFO, __VA_ARGS__)
#define pw_dbg(...)                                                                                \
	do {                                                                                       \
		if (pw_log_max >= PW_LOG_DEBUG)                                                    \
			pw_log(PW_LOG_DEBUG, __VA_ARGS__);                                         \
	} while (0)

#endif /* PW_COMMON_LOG_H */
