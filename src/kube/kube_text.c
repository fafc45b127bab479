/* SPDX-License-Identifier: MIT */
/* pwkube strings: URL and JSON-pointer escaping, request paths, API times. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kube_int.h"

char *pw_kube_escape(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s);
	char *out = malloc(3 * n + 1), *o = out;

	if (!out)
		return NULL;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~') {
			*o++ = (char)c;
		} else {
			*o++ = '%';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 15];
		}
	}
	*o = '\0';
	return out;
}

char *pw_kube_json_pointer_escape(const char *key)
{
	char *out = malloc(2 * strlen(key) + 1), *o = out;

	if (!out)
		return NULL;
	for (; *key; key++) {
		if (*key == '~' || *key == '/') {
			*o++ = '~';
			*o++ = *key == '~' ? '0' : '1';
		} else {
			*o++ = *key;
		}
	}
	*o = '\0';
	return out;
}

char *pw_kube_path(const char *fmt, ...)
{
	struct pw_kube_buf b = { .max = 1 << 20 };
	va_list ap;
	int rc = 0;

	va_start(ap, fmt);
	for (const char *p = fmt; *p && !rc; p++) {
		if (p[0] == '%' && p[1] == 's') {
			char *e = pw_kube_escape(va_arg(ap, const char *));

			rc = e ? pw_kube_buf_add(&b, e, strlen(e)) : -ENOMEM;
			free(e);
			p++;
		} else {
			rc = pw_kube_buf_add(&b, p, 1);
		}
	}
	va_end(ap);
	if (rc) {
		pw_kube_buf_free(&b);
		return NULL;
	}
	return b.p;
}

void pw_kube_time_micro(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	char sec[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(sec, sizeof(sec), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%06ldZ", sec, ts.tv_nsec / 1000);
}

void pw_kube_time_sec(char *buf, size_t len)
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static long long pw_kube_days_from_civil(long long y, unsigned m, unsigned d)
{
	/* Howard Hinnant's algorithm: days since 1970-01-01 of a Gregorian date. */
	y -= m <= 2;
	long long era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + (long long)doe - 719468;
}

/* @n decimal digits at @s, exactly. */
static bool pw_kube_digits(const char *s, int n, int *ret)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*ret = v;
	return true;
}

int pw_kube_time_parse(const char *s, long long *ret_usec)
{
	int y, mo, d, h, mi, sec, n = 19;
	long long frac = 0, off = 0;
	int digits = 0;

	/* YYYY-MM-DD[Tt ]HH:MM:SS, fixed width. */
	if (!s || strlen(s) < 19 || !pw_kube_digits(s, 4, &y) || s[4] != '-' ||
	    !pw_kube_digits(s + 5, 2, &mo) || s[7] != '-' || !pw_kube_digits(s + 8, 2, &d) ||
	    (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !pw_kube_digits(s + 11, 2, &h) ||
	    s[13] != ':' || !pw_kube_digits(s + 14, 2, &mi) || s[16] != ':' ||
	    !pw_kube_digits(s + 17, 2, &sec))
		return -EINVAL;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return -EINVAL;
	s += n;
	if (*s == '.') {
		for (s++; *s >= '0' && *s <= '9'; s++, digits++)
			if (digits < 6)
				frac = frac * 10 + (*s - '0');
		if (!digits)
			return -EINVAL;
		for (; digits < 6; digits++)
			frac *= 10;
	}
	if (*s == 'Z' || *s == 'z') {
		s++;
	} else if (*s == '+' || *s == '-') {
		int oh, om;

		if (!pw_kube_digits(s + 1, 2, &oh) || s[3] != ':' || !pw_kube_digits(s + 4, 2, &om))
			return -EINVAL;
		off = (oh * 60LL + om) * 60 * (*s == '+' ? 1 : -1);
		s += 6;
	} else {
		return -EINVAL;
	}
	if (*s)
		return -EINVAL;
	*ret_usec = ((pw_kube_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600LL +
		      mi * 60LL + sec - off) *
		     1000000LL) +
		    frac;
	return 0;
}
