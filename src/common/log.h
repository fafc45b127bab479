/* SPDX-License-Identifier: MIT */
/*
 * Logging, one scheme for the project: the levels and their names, a parser,
 * and pw_log(). Daemons and CLIs write to stderr with a time and their
 * ident (the default sink). The preload library, which must not touch the
 * application's stdio, installs a sink of its own (pw_log_sink) that writes
 * with the real write(2); no other library code logs.
 */
#ifndef PW_COMMON_LOG_H
#define PW_COMMON_LOG_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

enum pw_log_level { PW_LOG_ERROR, PW_LOG_WARN, PW_LOG_INFO, PW_LOG_DEBUG };

/* Messages above this level are dropped (default: info). */
extern enum pw_log_level pw_log_max;
/* The default sink's name for the program ("podwired"). */
extern const char *pw_log_ident;

/* Where a message goes instead of stderr, if set: @msg is the formatted
 * message (at most PW_LOG_SINK_MAX - 1 bytes), without a newline. */
#define PW_LOG_SINK_MAX 512
extern void (*pw_log_sink)(enum pw_log_level lvl, const char *msg);

/* Log at @lvl; errno is preserved. */
void pw_log(enum pw_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Parse "error", "warn", "info" or "debug"; -1 if none of them. */
int pw_log_parse(const char *s);
/* The name of @lvl ("error" ...). */
const char *pw_log_name(enum pw_log_level lvl);

#define pw_err(...)  pw_log(PW_LOG_ERROR, __VA_ARGS__)
#define pw_warn(...) pw_log(PW_LOG_WARN, __VA_ARGS__)
#define pw_info(...) pw_log(PW_LOG_INFO, __VA_ARGS__)
#define pw_dbg(...)                                                                                \
	do {                                                                                       \
		if (pw_log_max >= PW_LOG_DEBUG)                                                    \
			pw_log(PW_LOG_DEBUG, __VA_ARGS__);                                         \
	} while (0)

#endif /* PW_COMMON_LOG_H */
