// SPDX-License-Identifier: MIT
/*
 * Kubernetes resource quantities:
 *   <signedNumber><suffix>, suffix one of Ki Mi Gi Ti Pi Ei (powers of 2),
 *   n u m "" k M G T P E (powers of 10) or e<int>/E<int> (exponent).
 * Kept exact with a 128-bit mantissa; the result is rounded up.
 */
#include <errno.h>
#include <string.h>

#include "json.h"
#include "sched_model.h"

#define PW_QTY_DIGITS 36 /* significant digits kept (< 2^120); the rest only round up */

typedef __int128 pw_i128;

static const pw_i128 pw_i64_max = INT64_MAX;

/* The suffix after the number: SI (decimal or binary) or an exponent. */
static int pw_qty_suffix(const char **pp, int *exp10, int *bin)
{
	static const char dec[] = "num kMGTPE", binc[] = "KMGTPE";
	const char *p = *pp, *d;

	if (!*p)
		return 0;
	/* "e3"/"E-3" are exponents, "E" alone is exa and "Ei" exbi. */
	if ((*p == 'e' || *p == 'E') && p[1] && p[1] != 'i') {
		int e = 0, sign = 1;

		p++;
		if (*p == '+' || *p == '-')
			sign = *p++ == '-' ? -1 : 1;
		if (*p < '0' || *p > '9')
			return -EINVAL;
		for (; *p >= '0' && *p <= '9'; p++)
			if ((e = e * 10 + (*p - '0')) > 1000)
				return -ERANGE;
		*exp10 += sign * e;
	} else if (p[1] == 'i' && (d = strchr(binc, *p))) {
		*bin = 10 * (int)(d - binc + 1);
		p += 2;
	} else if (*p != ' ' && (d = strchr(dec, *p))) {
		*exp10 += 3 * (int)(d - dec - 3); /* n=-9 u=-6 m=-3 k=3 M=6 ... E=18 */
		p++;
	} else {
		return -EINVAL;
	}
	*pp = p;
	return 0;
}

int pw_qty_parse(const char *s, int scale, int64_t *ret_v)
{
	pw_i128 mant = 0, v;
	int exp10 = 0, ndig = 0, bin = 0;
	bool neg = false, sticky = false, any = false;
	const char *p = s;
	int r;

	if (!s || !*s)
		return -EINVAL;
	if (*p == '+' || *p == '-')
		neg = *p++ == '-';
	for (; *p >= '0' && *p <= '9'; p++, any = true) {
		if (ndig < PW_QTY_DIGITS) {
			mant = mant * 10 + (*p - '0');
			ndig += mant != 0;
		} else {
			exp10++;
			sticky |= *p != '0';
		}
	}
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++, any = true) {
			if (ndig < PW_QTY_DIGITS) {
				mant = mant * 10 + (*p - '0');
				ndig += mant != 0;
				exp10--;
			} else {
				sticky |= *p != '0';
			}
		}
	}
	if (!any)
		return -EINVAL;
	r = pw_qty_suffix(&p, &exp10, &bin);
	if (r)
		return r;
	if (*p)
		return -EINVAL;

	/* A mantissa that large could only fit after a huge negative exponent: refuse. */
	if (mant >= ((pw_i128)1 << (126 - bin)))
		return -ERANGE;
	v = mant << bin;
	exp10 -= scale;
	for (; exp10 > 0 && v != 0; exp10--) {
		if (v > pw_i64_max)
			return -ERANGE;
		v *= 10;
	}
	for (; exp10 < 0 && v != 0; exp10++) {
		sticky |= v % 10 != 0;
		v /= 10;
	}
	if (sticky)
		v++; /* round away from zero, as resource.Quantity does */
	if (v > pw_i64_max)
		return -ERANGE;
	*ret_v = neg ? -(int64_t)v : (int64_t)v;
	return 0;
}

int pw_qty_parse_json(const cJSON *v, int scale, int64_t *ret_v)
{
	char buf[64];
	const char *s = pw_json_scalar_str(v, buf, sizeof(buf));

	/* true, false, inf and nan do not parse either. */
	return s ? pw_qty_parse(s, scale, ret_v) : -EINVAL;
}
