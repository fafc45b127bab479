// SPDX-License-Identifier: MIT
/* Strict number parsing: every accepted form, and malformed values refused
 * with the output untouched. */
#include <errno.h>
#include <stdint.h>

#include "../../src/common/parse.h"
#include "pw_test.h"

static void test_u64(void)
{
	uint64_t v = 7;

	PW_CHECK(pw_parse_u64("0", 10, &v) == 0 && v == 0, "0");
	PW_CHECK(pw_parse_u64("18446744073709551615", UINT64_MAX, &v) == 0 && v == UINT64_MAX,
		 "max");
	PW_CHECK_EQ(pw_parse_u64("18446744073709551616", UINT64_MAX, &v), -ERANGE);
	PW_CHECK_EQ(pw_parse_u64("11", 10, &v), -ERANGE);
	static const char *const bad[] = { "", "-1", "+1", " 1", "1 ", "0x10", "1k", "1.0", "a" };
	for (size_t i = 0; i < PW_ARRAY_SIZE(bad); i++) {
		v = 7;
		PW_CHECK(pw_parse_u64(bad[i], UINT64_MAX, &v) == -EINVAL && v == 7, "\"%s\"",
			 bad[i]);
	}
}

static void test_size(void)
{
	static const struct {
		const char *s;
		uint64_t v;
	} good[] = {
		{ "4096", 4096 },     { "64K", 65536 },	      { "64k", 65536 },
		{ "64KB", 65536 },    { "1M", 1u << 20 },     { "256m", 256u << 20 },
		{ "1G", 1ull << 30 }, { "3g", 3ull << 30 },   { "100b", 100 },
		{ "0", 0 },	      { "16G", 16ull << 30 },
	};
	uint64_t v;

	for (size_t i = 0; i < PW_ARRAY_SIZE(good); i++)
		PW_CHECK(pw_parse_size(good[i].s, UINT64_MAX, &v) == 0 && v == good[i].v,
			 "\"%s\": %llu", good[i].s, (unsigned long long)v);
	static const char *const bad[] = { "",	   "K",	 "1KK", "1 K", "-1K", "1.5M",
					   "1KiB", "1T", "1Kx", "0x1", " 1",  "1e3" };
	for (size_t i = 0; i < PW_ARRAY_SIZE(bad); i++) {
		v = 7;
		PW_CHECK(pw_parse_size(bad[i], UINT64_MAX, &v) == -EINVAL && v == 7, "\"%s\"",
			 bad[i]);
	}
	v = 7;
	PW_CHECK(pw_parse_size("4G", UINT32_MAX, &v) == -ERANGE && v == 7, "above max");
	PW_CHECK(pw_parse_size("17179869184G", UINT64_MAX, &v) == -ERANGE && v == 7, "overflow");
	PW_CHECK(pw_parse_size("4294967295", UINT32_MAX, &v) == 0 && v == UINT32_MAX, "at max");
}

static void test_seconds(void)
{
	static const struct {
		const char *s;
		double v;
	} good[] = { { "10", 10 },    { "0.5", 0.5 }, { "2.", 2 },
		     { ".25", 0.25 }, { "3s", 3 },    { "0", 0 } };
	double v;

	for (size_t i = 0; i < PW_ARRAY_SIZE(good); i++)
		PW_CHECK(pw_parse_seconds(good[i].s, 0, 100, &v) == 0 && v == good[i].v,
			 "\"%s\": %g", good[i].s, v);
	static const char *const bad[] = { "",	  ".",	 "s",	"-1",	"+1",  " 1",  "1 ",
					   "1e3", "inf", "nan", "0x10", "1ss", "1ms", "1,5" };
	for (size_t i = 0; i < PW_ARRAY_SIZE(bad); i++) {
		v = 7;
		PW_CHECK(pw_parse_seconds(bad[i], 0, 100, &v) == -EINVAL && v == 7, "\"%s\"",
			 bad[i]);
	}
	v = 7;
	PW_CHECK(pw_parse_seconds("101", 0, 100, &v) == -ERANGE && v == 7, "above max");
	PW_CHECK(pw_parse_seconds("0", 0.001, 100, &v) == -ERANGE && v == 7, "below min");
}

static void test_mac(void)
{
	uint8_t m[6] = { 7, 7, 7, 7, 7, 7 };
	static const char *const bad[] = { "",
					   "02:00:00:00:00",
					   "02:00:00:00:00:00:",
					   "02:00:00:00:00:0g",
					   "02-00-00-00-00-00",
					   "2:00:00:00:00:00",
					   "01:00:5e:00:00:01",
					   "02:00:00:00:00:001" };

	PW_CHECK(pw_parse_mac("02:aB:00:ff:10:9e", m) == 0 && m[0] == 2 && m[1] == 0xab &&
			 m[3] == 0xff && m[5] == 0x9e,
		 "good");
	for (size_t i = 0; i < PW_ARRAY_SIZE(bad); i++) {
		memset(m, 7, sizeof(m));
		PW_CHECK(pw_parse_mac(bad[i], m) == -EINVAL && m[0] == 7, "\"%s\"", bad[i]);
	}
}

int main(void)
{
	test_u64();
	test_size();
	test_seconds();
	test_mac();
	return 0;
}
