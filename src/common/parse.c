// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "parse.h"

static bool pw_parse_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Leading decimal digits of @s into *@ret; *@ret_end after them. */
static int pw_parse_digits(const char *s, uint64_t *ret, const char **ret_end)
{
	uint64_t v = 0;
	const char *p = s;

	if (!pw_parse_digit(*p))
		return -EINVAL;
	for (; pw_parse_digit(*p); p++) {
		if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	*ret = v;
	*ret_end = p;
	return 0;
}

int pw_parse_u64(const char *s, uint64_t max, uint64_t *ret_value)
{
	uint64_t v;
	const char *end;
	int r = pw_parse_digits(s, &v, &end);

	if (r < 0)
		return r;
	if (*end)
		return -EINVAL;
	if (v > max)
		return -ERANGE;
	*ret_value = v;
	return 0;
}

int pw_parse_size(const char *s, uint64_t max, uint64_t *ret_bytes)
{
	uint64_t v;
	const char *end;
	unsigned shift = 0;
	int r = pw_parse_digits(s, &v, &end);

	if (r < 0)
		return r;
	switch (*end) {
	case 'k':
	case 'K':
		shift = 10;
		break;
	case 'm':
	case 'M':
		shift = 20;
		break;
	case 'g':
	case 'G':
		shift = 30;
		break;
	default:
		break;
	}
	if (shift)
		end++;
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end)
		return -EINVAL;
	if (v > (UINT64_MAX >> shift) || (v << shift) > max)
		return -ERANGE;
	*ret_bytes = v << shift;
	return 0;
}

int pw_parse_seconds(const char *s, double min, double max, double *ret_seconds)
{
	const char *p = s;
	bool digits = false;

	/* The form first: strtod(3) alone would take spaces, signs, hex,
	 * exponents, "inf" and "nan". */
	for (; pw_parse_digit(*p); p++)
		digits = true;
	if (*p == '.')
		for (p++; pw_parse_digit(*p); p++)
			digits = true;
	if (!digits || (*p && !(p[0] == 's' && !p[1])))
		return -EINVAL;
	errno = 0;
	double v = strtod(s, NULL);
	if (errno || !(v >= min && v <= max))
		return -ERANGE;
	*ret_seconds = v;
	return 0;
}

static int pw_parse_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int pw_parse_mac(const char *s, uint8_t ret_mac[6])
{
	uint8_t m[6];

	for (int i = 0; i < 6; i++, s += 3) {
		int hi = pw_parse_hex(s[0]), lo = hi < 0 ? -1 : pw_parse_hex(s[1]);
		if (lo < 0 || s[2] != (i < 5 ? ':' : '\0'))
			return -EINVAL;
		m[i] = (uint8_t)(hi << 4 | lo);
	}
	if (m[0] & 1)
		return -EINVAL;
	for (int i = 0; i < 6; i++)
		ret_mac[i] = m[i];
	return 0;
}
