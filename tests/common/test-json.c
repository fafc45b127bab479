// SPDX-License-Identifier: MIT
/*
 * src/common/json.c: lookups on objects, non-objects and wrong types; the
 * scalar text; every check's accepted values, its codes (-ENOENT absent,
 * -EINVAL wrong) and message, and that a failed check leaves its
 * out-parameter alone; parse errors with line and column.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "json.h"
#include "pw_test.h"

static cJSON *parse(const char *text)
{
	cJSON *j = cJSON_Parse(text);

	PW_CHECK(j, "parse %s", text);
	return j;
}

static void test_get(void)
{
	cJSON *o = parse("{\"s\":\"x\",\"e\":\"\",\"n\":2.5,\"big\":1e12,\"neg\":-1e12,"
			 "\"t\":true,\"f\":false,\"z\":null,\"o\":{\"in\":\"y\"},\"a\":[1]}");
	cJSON *arr = parse("[{\"s\":\"x\"}]");

	PW_CHECK(pw_json_get(o, "o") && cJSON_IsObject(pw_json_get(o, "o")), "object member");
	PW_CHECK(!pw_json_get(o, "missing"), "missing member");
	PW_CHECK(!pw_json_get(o, "S"), "keys are case-sensitive");
	PW_CHECK(!pw_json_get(NULL, "s"), "NULL object");
	PW_CHECK(!pw_json_get(arr, "s") && !pw_json_get(pw_json_get(o, "s"), "s"), "non-objects");
	PW_CHECK(!strcmp(pw_json_get_str(pw_json_get(o, "o"), "in"), "y"), "chained");
	PW_CHECK(!pw_json_get_str(pw_json_get(o, "nope"), "in"), "chain through a missing member");
	PW_CHECK(!strcmp(pw_json_get_str(o, "s"), "x") && !strcmp(pw_json_get_str(o, "e"), ""),
		 "strings");
	PW_CHECK(!pw_json_get_str(o, "n") && !pw_json_get_str(o, "z"), "not strings");
	PW_CHECK(pw_json_get_num(o, "n", -1) == 2.5 && pw_json_get_num(o, "s", -1) == -1 &&
			 pw_json_get_num(o, "missing", 7) == 7,
		 "numbers");
	PW_CHECK_EQ(pw_json_get_int(o, "n", 0), 2);
	PW_CHECK_EQ(pw_json_get_int(o, "big", 0), INT_MAX);
	PW_CHECK_EQ(pw_json_get_int(o, "neg", 0), INT_MIN);
	PW_CHECK_EQ(pw_json_get_int(o, "t", 9), 9);
	PW_CHECK(pw_json_get_bool(o, "t", false) && !pw_json_get_bool(o, "f", true), "booleans");
	PW_CHECK(pw_json_get_bool(o, "s", true) && !pw_json_get_bool(o, "missing", false),
		 "default for a non-boolean");
	cJSON_Delete(o);
	cJSON_Delete(arr);
}

static void test_scalar(void)
{
	cJSON *o = parse("{\"s\":\"2\",\"n\":2,\"f\":0.1,\"t\":true,\"z\":null,\"a\":[]}");
	char buf[64];

	PW_CHECK(!strcmp(pw_json_scalar_str(pw_json_get(o, "s"), buf, sizeof(buf)), "2"), "string");
	PW_CHECK(!strcmp(pw_json_scalar_str(pw_json_get(o, "n"), buf, sizeof(buf)), "2"), "int");
	PW_CHECK(!strcmp(pw_json_scalar_str(pw_json_get(o, "f"), buf, sizeof(buf)),
			 "0.10000000000000001"),
		 "%%.17g: %s", buf);
	PW_CHECK(!strcmp(pw_json_scalar_str(pw_json_get(o, "t"), buf, sizeof(buf)), "true"),
		 "bool");
	PW_CHECK(!pw_json_scalar_str(pw_json_get(o, "z"), buf, sizeof(buf)) &&
			 !pw_json_scalar_str(pw_json_get(o, "a"), buf, sizeof(buf)) &&
			 !pw_json_scalar_str(NULL, buf, sizeof(buf)),
		 "not scalars");
	cJSON_Delete(o);
}

static void test_want_str(void)
{
	cJSON *o = parse("{\"s\":\"x\",\"e\":\"\",\"n\":1,\"z\":null}");
	const char *s = "kept";
	char err[128] = "";

	PW_CHECK_EQ(pw_json_want_str(pw_json_get(o, "s"), false, &s, "s", err, sizeof(err)), 0);
	PW_CHECK(!strcmp(s, "x"), "value");
	PW_CHECK_EQ(pw_json_want_str(pw_json_get(o, "z"), true, &s, "z", err, sizeof(err)), 0);
	PW_CHECK(!s, "null when nullable");
	s = "kept";
	PW_CHECK_EQ(pw_json_want_str(pw_json_get(o, "e"), false, &s, "e", err, sizeof(err)),
		    -EINVAL);
	PW_CHECK(!strcmp(err, "e: want a non-empty string") && !strcmp(s, "kept"), "%s", err);
	PW_CHECK_EQ(pw_json_want_str(pw_json_get(o, "n"), true, &s, "n", err, sizeof(err)),
		    -EINVAL);
	PW_CHECK(!strcmp(err, "n: want a non-empty string or null"), "%s", err);
	PW_CHECK_EQ(pw_json_want_str(pw_json_get(o, "z"), false, &s, "z", NULL, 0), -EINVAL);
	PW_CHECK_EQ(pw_json_want_str(pw_json_get(o, "missing"), true, &s, "m", NULL, 0), -ENOENT);
	PW_CHECK(!strcmp(s, "kept"), "untouched on failure");
	cJSON_Delete(o);
}

static void test_want_strs(void)
{
	cJSON *o = parse("{\"one\":\"a\",\"two\":[\"a\",\"b\"],\"none\":[],\"many\":[\"a\",\"b\","
			 "\"c\"],\"hole\":[\"a\",\"\"],\"num\":[1],\"e\":\"\",\"z\":null}");
	const char *v[2] = { NULL, NULL };
	unsigned n = 99;
	char err[128] = "";

	PW_CHECK_EQ(pw_json_want_strs(pw_json_get(o, "one"), 2, v, &n, "one", err, sizeof(err)), 0);
	PW_CHECK(n == 1 && !strcmp(v[0], "a"), "one string: %u", n);
	PW_CHECK_EQ(pw_json_want_strs(pw_json_get(o, "two"), 2, v, &n, "two", err, sizeof(err)), 0);
	PW_CHECK(n == 2 && !strcmp(v[0], "a") && !strcmp(v[1], "b"), "two strings: %u", n);
	PW_CHECK_EQ(pw_json_want_strs(pw_json_get(o, "none"), 2, v, &n, "none", err, sizeof(err)),
		    0);
	PW_CHECK_EQ(n, 0);
	n = 99;
	for (const char *k = "many\0hole\0num\0e\0z\0"; *k; k += strlen(k) + 1) {
		PW_CHECK_EQ(pw_json_want_strs(pw_json_get(o, k), 2, v, &n, k, err, sizeof(err)),
			    -EINVAL);
		PW_CHECK_EQ(n, 99);
	}
	PW_CHECK(!strcmp(err, "z: want a non-empty string or an array of at most 2"), "%s", err);
	PW_CHECK_EQ(pw_json_want_strs(NULL, 2, v, &n, "m", NULL, 0), -ENOENT);
	cJSON_Delete(o);
}

static void test_want_bool_int(void)
{
	cJSON *o = parse("{\"t\":true,\"s\":\"true\",\"i\":7,\"f\":7.5,\"lo\":-1,\"hi\":101,"
			 "\"huge\":1e300}");
	long long v = 42;
	bool b = false;
	char err[128] = "";

	PW_CHECK_EQ(pw_json_want_bool(pw_json_get(o, "t"), &b, "t", err, sizeof(err)), 0);
	PW_CHECK(b, "true");
	PW_CHECK_EQ(pw_json_want_bool(pw_json_get(o, "s"), &b, "s", err, sizeof(err)), -EINVAL);
	PW_CHECK(!strcmp(err, "s: want true or false"), "%s", err);
	PW_CHECK_EQ(pw_json_want_bool(NULL, &b, "m", NULL, 0), -ENOENT);

	PW_CHECK_EQ(pw_json_want_int(pw_json_get(o, "i"), 0, 100, &v, "i", err, sizeof(err)), 0);
	PW_CHECK_EQ(v, 7);
	v = 42;
	for (const char *k = "f\0lo\0hi\0huge\0s\0"; *k; k += strlen(k) + 1) {
		PW_CHECK_EQ(pw_json_want_int(pw_json_get(o, k), 0, 100, &v, k, err, sizeof(err)),
			    -EINVAL);
		PW_CHECK_EQ(v, 42);
	}
	PW_CHECK(!strcmp(err, "s: want an integer 0..100"), "%s", err);
	PW_CHECK_EQ(pw_json_want_int(NULL, 0, 1, &v, "m", NULL, 0), -ENOENT);
	cJSON_Delete(o);
}

static void test_parse(void)
{
	static const char bad[] = "{\n  \"a\": 1,\n  \"b\": ]\n}";
	static const char cut[] = "{\"a\": [1, 2";
	char err[128] = "";
	cJSON *j;

	j = pw_json_parse("{\"a\":1}", 7, "x", err, sizeof(err));
	PW_CHECK(j && pw_json_get_int(j, "a", 0) == 1, "parses");
	cJSON_Delete(j);
	PW_CHECK(!pw_json_parse(bad, strlen(bad), "f.json", err, sizeof(err)), "bad");
	PW_CHECK(!strcmp(err, "f.json: invalid JSON at line 3, column 8"), "%s", err);
	PW_CHECK(!pw_json_parse(cut, strlen(cut), "g", err, sizeof(err)), "truncated");
	PW_CHECK(!strncmp(err, "g: invalid JSON at line 1, column ", 34), "%s", err);
	PW_CHECK(!pw_json_parse("", 0, "e", err, sizeof(err)), "empty");
	PW_CHECK(!strcmp(err, "e: invalid JSON at line 1, column 1 (truncated?)"), "%s", err);
	PW_CHECK(!pw_json_parse("", 0, "e", NULL, 0), "no error buffer");
}

int main(void)
{
	test_get();
	test_scalar();
	test_want_str();
	test_want_strs();
	test_want_bool_int();
	test_parse();
	return 0;
}
