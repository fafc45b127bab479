// SPDX-License-Identifier: MIT
/* Getters over cJSON trees (json.h). */
#include <errno.h>
#include <stdio.h>

#include "json.h"

const cJSON *pw_json_get(const cJSON *obj, const char *key)
{
	return cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
}

const char *pw_json_get_str(const cJSON *obj, const char *key)
{
	const cJSON *v = pw_json_get(obj, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

double pw_json_get_num(const cJSON *obj, const char *key, double dflt)
{
	const cJSON *v = pw_json_get(obj, key);

	return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

int pw_json_get_int(const cJSON *obj, const char *key, int dflt)
{
	const cJSON *v = pw_json_get(obj, key);

	return cJSON_IsNumber(v) ? v->valueint : dflt;
}

bool pw_json_get_bool(const cJSON *obj, const char *key, bool dflt)
{
	const cJSON *v = pw_json_get(obj, key);

	return cJSON_IsBool(v) ? cJSON_IsTrue(v) : dflt;
}

const char *pw_json_scalar_str(const cJSON *v, char *buf, size_t len)
{
	if (cJSON_IsString(v))
		return v->valuestring;
	if (cJSON_IsBool(v))
		return cJSON_IsTrue(v) ? "true" : "false";
	if (cJSON_IsNumber(v)) {
		snprintf(buf, len, "%.17g", v->valuedouble);
		return buf;
	}
	return NULL;
}

static bool pw_json_nonempty(const cJSON *v)
{
	return cJSON_IsString(v) && *v->valuestring;
}

int pw_json_want_str(const cJSON *v, bool nullable, const char **ret_s, const char *what, char *err,
		     size_t errlen)
{
	if (nullable && cJSON_IsNull(v)) {
		*ret_s = NULL;
		return 0;
	}
	if (!pw_json_nonempty(v)) {
		snprintf(err, errlen, "%s: want a non-empty string%s", what,
			 nullable ? " or null" : "");
		return v ? -EINVAL : -ENOENT;
	}
	*ret_s = v->valuestring;
	return 0;
}

int pw_json_want_strs(const cJSON *v, unsigned max, const char **ret_v, unsigned *ret_n,
		      const char *what, char *err, size_t errlen)
{
	const cJSON *it;
	unsigned n = 0;

	if (pw_json_nonempty(v)) {
		if (!max)
			goto bad;
		ret_v[0] = v->valuestring;
		*ret_n = 1;
		return 0;
	}
	if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) > (int)max)
		goto bad;
	cJSON_ArrayForEach(it, v)
	{
		if (!pw_json_nonempty(it))
			goto bad;
	}
	cJSON_ArrayForEach(it, v)
	{
		ret_v[n++] = it->valuestring;
	}
	*ret_n = n;
	return 0;
bad:
	snprintf(err, errlen, "%s: want a non-empty string or an array of at most %u", what, max);
	return v ? -EINVAL : -ENOENT;
}

int pw_json_want_bool(const cJSON *v, bool *ret_b, const char *what, char *err, size_t errlen)
{
	if (!cJSON_IsBool(v)) {
		snprintf(err, errlen, "%s: want true or false", what);
		return v ? -EINVAL : -ENOENT;
	}
	*ret_b = cJSON_IsTrue(v);
	return 0;
}

int pw_json_want_int(const cJSON *v, long long min, long long max, long long *ret_n,
		     const char *what, char *err, size_t errlen)
{
	/* The range check comes first: only then is the conversion defined. */
	if (!cJSON_IsNumber(v) || !(v->valuedouble >= (double)min) ||
	    !(v->valuedouble <= (double)max) ||
	    v->valuedouble != (double)(long long)v->valuedouble) {
		snprintf(err, errlen, "%s: want an integer %lld..%lld", what, min, max);
		return v ? -EINVAL : -ENOENT;
	}
	*ret_n = (long long)v->valuedouble;
	return 0;
}

cJSON *pw_json_parse(const char *buf, size_t len, const char *what, char *err, size_t errlen)
{
	cJSON *doc = cJSON_ParseWithLength(buf, len);
	const char *at, *p;
	size_t off, line = 1, col = 1;

	if (doc)
		return doc;
	at = cJSON_GetErrorPtr();
	off = at && at >= buf && at <= buf + len ? (size_t)(at - buf) : len;
	for (p = buf; p < buf + off; p++, col++)
		if (*p == '\n')
			line++, col = 0;
	snprintf(err, errlen, "%s: invalid JSON at line %zu, column %zu%s", what, line, col,
		 off >= len ? " (truncated?)" : "");
	return NULL;
}
