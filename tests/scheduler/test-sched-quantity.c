// SPDX-License-Identifier: MIT
/* Kubernetes quantities: suffixes, exponents, rounding up, overflow, garbage. */
#include <errno.h>
#include <stdint.h>

#include "pw_test.h"
#include "sched_model.h"

static void check(const char *s, int scale, int want_r, int64_t want)
{
	int64_t v = -12345;
	int r = pw_qty_parse(s, scale, &v);

	if (r != want_r || (!r && v != want))
		PW_FAIL("\"%s\" scale %d: got r=%d v=%lld, want r=%d v=%lld", s, scale, r,
			(long long)v, want_r, (long long)want);
}

int main(void)
{
	/* cpu in millicores */
	check("500m", -3, 0, 500);
	check("2", -3, 0, 2000);
	check("0.1", -3, 0, 100);
	check("1.5", -3, 0, 1500);
	check("31500m", -3, 0, 31500);
	check("100u", -3, 0, 1); /* 0.1m rounds up, as MilliValue() */
	check("1n", -3, 0, 1);
	check("0.0001", -3, 0, 1);
	check("1.0000000000000000000000000000000000000001", -3, 0, 1001); /* sticky digits */
	check("0", -3, 0, 0);
	check("0m", -3, 0, 0);
	/* memory and counts in units */
	check("1Gi", 0, 0, 1073741824);
	check("1G", 0, 0, 1000000000);
	check("128974848", 0, 0, 128974848);
	check("123Mi", 0, 0, 128974848);
	check("129e6", 0, 0, 129000000);
	check("129M", 0, 0, 129000000);
	check("1e3", 0, 0, 1000);
	check("1E3", 0, 0, 1000);
	check("1e+3", 0, 0, 1000);
	check("1e-3", 0, 0, 1); /* rounds up */
	check("1.5Gi", 0, 0, 1610612736);
	check("1Ki", 0, 0, 1024);
	check("1k", 0, 0, 1000);
	check("7Ei", 0, 0, 7LL << 60);
	check("1.5", 0, 0, 2);
	check(".5", 0, 0, 1);
	check("5.", 0, 0, 5);
	check("+5", 0, 0, 5);
	check("-5", 0, 0, -5);
	check("500Mi", -3, 0, 524288000000LL);
	check("9223372036854775807", 0, 0, INT64_MAX);
	check("0.000000000000000000000000000000000000000000001", 0, 0, 1);
	/* out of range */
	check("8Ei", 0, -ERANGE, 0);
	check("9223372036854775808", 0, -ERANGE, 0);
	check("12345678901234567890", 0, -ERANGE, 0);
	check("1e1000", 0, -ERANGE, 0);
	check("1e1001", 0, -ERANGE, 0);
	check("10E", -3, -ERANGE, 0);
	/* malformed */
	static const char *const bad[] = { "",	   "abc",  "1.2.3", "1Kb", "Ki",   "1 Gi",
					   " 1",   "1 ",   "1e",    "1e+", ".",	   "1iK",
					   "1Gii", "1KiB", "1mi",   "--1", "0x10", "1,5",
					   "1m5",  "e3",   "1Zi",   "1Ti5" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		check(bad[i], 0, -EINVAL, 0);
	int64_t v;
	PW_CHECK(pw_qty_parse(NULL, 0, &v) == -EINVAL, "NULL");

	/* JSON numbers as hand-written files have them */
	cJSON *n = cJSON_CreateNumber(2);
	PW_CHECK_EQ(pw_qty_parse_json(n, -3, &v), 0);
	PW_CHECK_EQ(v, 2000);
	cJSON_SetNumberValue(n, 0.25);
	PW_CHECK_EQ(pw_qty_parse_json(n, -3, &v), 0);
	PW_CHECK_EQ(v, 250);
	cJSON_Delete(n);
	n = cJSON_CreateTrue();
	PW_CHECK_EQ(pw_qty_parse_json(n, 0, &v), -EINVAL);
	cJSON_Delete(n);
	printf("quantity: ok\n");
	return 0;
}
