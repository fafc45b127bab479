/* SPDX-License-Identifier: MIT */
/*
 * One set of getters over cJSON trees, for every module that reads JSON:
 * Kubernetes objects, policy and configuration files, state files.
 * Private: not installed. Link pwjson_dep. Never prints, never allocates.
 *
 * Lookups (pw_json_get*) never fail: they answer NULL or the caller's default
 * when @obj is not an object, lacks @key, or holds another type there, so a
 * chain such as pw_json_get_str(pw_json_get(o, "metadata"), "name") needs no
 * checks in between. Keys are case-sensitive, as Kubernetes' are.
 *
 * Checks (pw_json_want_*) validate one value and say what was wrong. They
 * return 0, -ENOENT when the value is absent (@v NULL) or -EINVAL when it is
 * something else, and on error write "WHAT: want ..." into @err (of
 * @errlen bytes); a caller with its own wording passes NULL, 0 and words the
 * error from the code. Out-parameters named ret_* are set on success only.
 */
#ifndef PW_COMMON_JSON_H
#define PW_COMMON_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

/* ---- lookups ---- */

/* Member @key of object @obj; NULL when @obj is not an object or lacks it. */
const cJSON *pw_json_get(const cJSON *obj, const char *key);
/* Its string value; NULL when absent or not a string. */
const char *pw_json_get_str(const cJSON *obj, const char *key);
/* Its number; @dflt when absent or not a number. */
double pw_json_get_num(const cJSON *obj, const char *key, double dflt);
/* Its number as an int (fraction dropped, saturated to INT_MIN..INT_MAX, as
 * cJSON's valueint); @dflt when absent or not a number. */
int pw_json_get_int(const cJSON *obj, const char *key, int dflt);
/* Its boolean; @dflt when absent or not true or false. */
bool pw_json_get_bool(const cJSON *obj, const char *key, bool dflt);

/*
 * Scalar @v as text: a string as it is, true/false, a number printed with
 * "%.17g" into @buf (hand-written files say `dpdk: 2` where the API server
 * would send "2"). NULL for null, objects, arrays or a NULL @v.
 */
const char *pw_json_scalar_str(const cJSON *v, char *buf, size_t len);

/* ---- checks (see the top comment for the return values) ---- */

/* A non-empty string; with @nullable also null (*ret_s = NULL). */
int pw_json_want_str(const cJSON *v, bool nullable, const char **ret_s, const char *what, char *err,
		     size_t errlen);
/*
 * A non-empty string, or an array of at most @max non-empty strings: their
 * values into @ret_v (room for @max), their count into *ret_n.
 */
int pw_json_want_strs(const cJSON *v, unsigned max, const char **ret_v, unsigned *ret_n,
		      const char *what, char *err, size_t errlen);
/* true or false. */
int pw_json_want_bool(const cJSON *v, bool *ret_b, const char *what, char *err, size_t errlen);
/* A whole number from @min to @max (both within +-2^53, exact as doubles). */
int pw_json_want_int(const cJSON *v, long long min, long long max, long long *ret_n,
		     const char *what, char *err, size_t errlen);

/* ---- parsing ---- */

/*
 * cJSON_ParseWithLength, and on failure "WHAT: invalid JSON at line L,
 * column C" (plus " (truncated?)" when the text ended first) into @err.
 * Returns the tree (cJSON_Delete it) or NULL.
 */
cJSON *pw_json_parse(const char *buf, size_t len, const char *what, char *err, size_t errlen);

#endif /* PW_COMMON_JSON_H */
