// SPDX-License-Identifier: MIT
#include <errno.h>

#include "log.h"

enum pw_log_level pw_log_max = PW_LOG_INFO;
const char *pw_log_ident = "podwire";

void (*pw_log_sink)(enum pw_log_level lvl, const char *msg);

static const char *const pw_log_names[] = { "error", "warn", "info", "debug" };

const char *pw_log_name(enum pw_log_level lvl)
{
	return (unsigned)lvl <= PW_LOG_DEBUG ? pw_log_names[lvl] : "?";
}

int pw_log_parse(const char *s)
{
	for (int i = 0; i <= PW_LOG_DEBUG; i++)
		if (!strcmp(s, pw_log_names[i]))
			return i;
	return -1;
}

void pw_log(enum pw_log_level lvl, const char *fmt, ...)
{
	int saved = errno;
	struct timespec ts;
	struct tm tm;
	char when[32];
	va_list ap;

	if (lvl > pw_log_max)
		return;
	if (pw_log_sink) {
		char msg[PW_LOG_SINK_MAX];

		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
		pw_log_sink(lvl, msg);
		errno = saved;
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ld %s[%s] ", when, ts.tv_nsec / 1000000, pw_log_ident,
		pw_log_names[lvl]);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	errno = saved;
}
