// SPDX-License-Identifier: MIT
/*
 * Policy: the data paths a node can offer a pod, their latency and how a node
 * advertises them, plus the annotation names. Defaults are seed 000's tiers
 * (DPDK 800 µs, OvS-DPDK 5000 µs, plain kernel networking 10000 µs) and
 * podwire's same-node paths. A JSON file overrides them, merged by path name.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "model_int.h"

static void pw_path_def_clear(struct pw_path_def *d)
{
	free(d->name);
	for (unsigned i = 0; i < d->ncount; i++)
		free(d->count_labels[i]);
	for (unsigned i = 0; i < d->nflag; i++)
		free(d->flag_labels[i]);
	free(d->measured_label);
	free(d->resource);
	memset(d, 0, sizeof(*d));
}

void pw_policy_free(struct pw_policy *p)
{
	if (!p)
		return;
	free(p->scheduler_name);
	for (unsigned i = 0; i < p->npaths; i++)
		pw_path_def_clear(&p->paths[i]);
	for (unsigned i = 0; i < p->nlat_annot; i++)
		free(p->latency_annotations[i]);
	free(p->peer_annotation);
	memset(p, 0, sizeof(*p));
}

struct pw_path_init {
	const char *name;
	uint32_t lat_us;
	bool colocated, always;
	const char *count[2], *flag[2], *measured, *resource;
};

/*
 * The shm default (100 µs) covers podwire's measured p99.99 shared-memory
 * round trip under load (docs/BENCHMARKS.md, issue 2); the same-node kernel
 * path has no default and exists only where podwire-nfd measured it.
 */
static const struct pw_path_init pw_default_paths[] = {
	{ "dpdk",
	  800,
	  false,
	  false,
	  { "podwire.io/dpdk-interfaces", "dpdk" },
	  { NULL },
	  "podwire.io/dpdk-rtt-ns",
	  "podwire.io/dpdk-interface" },
	{ "sriov",
	  800,
	  false,
	  false,
	  { "podwire.io/sriov-vfs" },
	  { NULL },
	  "podwire.io/sriov-rtt-ns",
	  "podwire.io/sriov-vf" },
	/* A port of podwire-switch (docs/NFV.md): a DPDK pod's packet interface
	 * with no NIC. 1000 µs: its chain's p99 at 100 kpps and p50 overloaded
	 * on a 2-vCPU node (BENCHMARKS.md, issue 13). */
	{ "memif",
	  1000,
	  false,
	  false,
	  { "podwire.io/packet-interfaces" },
	  { NULL },
	  "podwire.io/memif-rtt-ns",
	  "podwire.io/packet-interface" },
	{ "ovs-dpdk",
	  5000,
	  false,
	  false,
	  { NULL },
	  { "podwire.io/ovs-dpdk", "ovs-dpdk" },
	  "podwire.io/ovs-dpdk-rtt-ns",
	  NULL },
	{ "kernel", 10000, false, true, { NULL }, { NULL }, "podwire.io/kernel-rtt-ns", NULL },
	{ "shm",
	  100,
	  true,
	  false,
	  { NULL },
	  { "podwire.io/podwired" },
	  "podwire.io/shm-rtt-ns",
	  NULL },
	{ "loopback", PW_LAT_NONE, true, true, { NULL }, { NULL }, "podwire.io/tcp-rtt-ns", NULL },
};

static int pw_strdup_to(char **dst, const char *s)
{
	char *c = s ? strdup(s) : NULL;

	if (s && !c)
		return -ENOMEM;
	free(*dst);
	*dst = c;
	return 0;
}

int pw_policy_default(struct pw_policy *p)
{
	memset(p, 0, sizeof(*p));
	if (pw_strdup_to(&p->scheduler_name, "podwire-scheduler") ||
	    pw_strdup_to(&p->peer_annotation, "podwire.io/peer") ||
	    pw_strdup_to(&p->latency_annotations[0], "podwire.io/max-latency-us") ||
	    pw_strdup_to(&p->latency_annotations[1], "latency"))
		goto fail;
	p->nlat_annot = 2;
	for (size_t i = 0; i < sizeof(pw_default_paths) / sizeof(pw_default_paths[0]); i++) {
		const struct pw_path_init *in = &pw_default_paths[i];
		struct pw_path_def *d = &p->paths[p->npaths++];

		d->lat_us = in->lat_us;
		d->colocated = in->colocated;
		d->always = in->always;
		if (pw_strdup_to(&d->name, in->name) ||
		    pw_strdup_to(&d->measured_label, in->measured) ||
		    pw_strdup_to(&d->resource, in->resource))
			goto fail;
		for (unsigned k = 0; k < 2; k++) {
			if (in->count[k] &&
			    pw_strdup_to(&d->count_labels[d->ncount++], in->count[k]))
				goto fail;
			if (in->flag[k] && pw_strdup_to(&d->flag_labels[d->nflag++], in->flag[k]))
				goto fail;
		}
	}
	return 0;
fail:
	pw_policy_free(p);
	return -ENOMEM;
}

/* A string array (or one string) into @dst; replaces what was there. */
static int pw_policy_strs_set(const cJSON *v, char **dst, unsigned *n, const char *what, char *err,
			      size_t errlen)
{
	const char *vals[PW_SCHED_MAX_ALIAS];
	unsigned nv = 0;
	int r;

	r = pw_json_want_strs(v, PW_SCHED_MAX_ALIAS, vals, &nv, what, err, errlen);
	if (r)
		return r;
	for (unsigned i = 0; i < *n; i++) {
		free(dst[i]);
		dst[i] = NULL;
	}
	*n = 0;
	for (unsigned i = 0; i < nv; i++) {
		*n = i + 1;
		if (pw_strdup_to(&dst[i], vals[i]))
			return -ENOMEM;
	}
	return 0;
}

/* A non-empty string (or with @nullable null: NULL) into @dst. */
static int pw_policy_str_set(const cJSON *v, char **dst, bool nullable, const char *what, char *err,
			     size_t errlen)
{
	const char *s;
	int r = pw_json_want_str(v, nullable, &s, what, err, errlen);

	return r ? r : pw_strdup_to(dst, s);
}

static int pw_policy_path_json(struct pw_policy *p, const cJSON *o, unsigned idx, char *err,
			       size_t errlen)
{
	const cJSON *name = pw_json_get(o, "name"), *v;
	struct pw_path_def *d = NULL;
	char what[96];
	bool disabled = false;
	int r;

	if (!cJSON_IsObject(o) || !cJSON_IsString(name) || !*name->valuestring) {
		pw_sched_err_set(err, errlen, "paths[%u]: want an object with a \"name\"", idx);
		return -EINVAL;
	}
	for (unsigned i = 0; i < p->npaths; i++)
		if (!strcmp(p->paths[i].name, name->valuestring))
			d = &p->paths[i];
	if (!d) {
		if (p->npaths == PW_SCHED_MAX_PATHS) {
			pw_sched_err_set(err, errlen, "paths: at most %d paths",
					 PW_SCHED_MAX_PATHS);
			return -EINVAL;
		}
		d = &p->paths[p->npaths++];
		d->lat_us = PW_LAT_NONE;
		if (pw_strdup_to(&d->name, name->valuestring))
			return -ENOMEM;
	}
	cJSON_ArrayForEach(v, o)
	{
		const char *k = v->string;

		snprintf(what, sizeof(what), "paths[%u] (%s).%s", idx, d->name, k);
		if (!strcmp(k, "name")) {
			r = 0;
		} else if (!strcmp(k, "latencyUs")) {
			if (cJSON_IsNull(v)) {
				d->lat_us = PW_LAT_NONE;
				r = 0;
			} else if (cJSON_IsNumber(v) && v->valuedouble >= 0 &&
				   v->valuedouble < (double)PW_LAT_NONE &&
				   v->valuedouble == (double)(uint32_t)v->valuedouble) {
				d->lat_us = (uint32_t)v->valuedouble;
				r = 0;
			} else {
				pw_sched_err_set(err, errlen, "%s: want an integer 0..%u or null",
						 what, PW_LAT_NONE - 1);
				r = -EINVAL;
			}
		} else if (!strcmp(k, "colocated")) {
			r = pw_json_want_bool(v, &d->colocated, what, err, errlen);
		} else if (!strcmp(k, "always")) {
			r = pw_json_want_bool(v, &d->always, what, err, errlen);
		} else if (!strcmp(k, "disabled")) {
			r = pw_json_want_bool(v, &disabled, what, err, errlen);
		} else if (!strcmp(k, "countLabels")) {
			r = pw_policy_strs_set(v, d->count_labels, &d->ncount, what, err, errlen);
		} else if (!strcmp(k, "flagLabels")) {
			r = pw_policy_strs_set(v, d->flag_labels, &d->nflag, what, err, errlen);
		} else if (!strcmp(k, "measuredLabel")) {
			r = pw_policy_str_set(v, &d->measured_label, true, what, err, errlen);
		} else if (!strcmp(k, "resource")) {
			r = pw_policy_str_set(v, &d->resource, true, what, err, errlen);
		} else {
			pw_sched_err_set(err, errlen, "%s: unknown key", what);
			r = -EINVAL;
		}
		if (r)
			return r;
	}
	if (disabled) {
		unsigned at = (unsigned)(d - p->paths);

		pw_path_def_clear(d);
		memmove(d, d + 1, (p->npaths - at - 1) * sizeof(*d));
		memset(&p->paths[--p->npaths], 0, sizeof(*d));
	}
	return 0;
}

int pw_policy_from_json(struct pw_policy *p, const cJSON *doc, char *err, size_t errlen)
{
	const cJSON *v, *it;
	unsigned i = 0;
	int r;

	r = pw_policy_default(p);
	if (r)
		return r;
	if (!cJSON_IsObject(doc)) {
		pw_sched_err_set(err, errlen, "policy: want a JSON object");
		r = -EINVAL;
		goto fail;
	}
	cJSON_ArrayForEach(v, doc)
	{
		const char *k = v->string;

		if (!strcmp(k, "schedulerName")) {
			r = pw_policy_str_set(v, &p->scheduler_name, false, k, err, errlen);
		} else if (!strcmp(k, "latencyAnnotations")) {
			r = pw_policy_strs_set(v, p->latency_annotations, &p->nlat_annot, k, err,
					       errlen);
		} else if (!strcmp(k, "peerAnnotation")) {
			r = pw_policy_str_set(v, &p->peer_annotation, false, k, err, errlen);
		} else if (!strcmp(k, "paths")) {
			if (!cJSON_IsArray(v)) {
				pw_sched_err_set(err, errlen, "paths: want an array");
				r = -EINVAL;
				goto fail;
			}
			i = 0;
			cJSON_ArrayForEach(it, v)
			{
				r = pw_policy_path_json(p, it, i++, err, errlen);
				if (r)
					goto fail;
			}
		} else if (!strcmp(k, "comment")) {
			r = 0;
		} else {
			pw_sched_err_set(err, errlen, "policy: unknown key \"%s\"", k);
			r = -EINVAL;
		}
		if (r)
			goto fail;
	}
	for (i = 0; i < p->npaths; i++) {
		struct pw_path_def *d = &p->paths[i];

		if (!d->always && !d->ncount && !d->nflag && !d->measured_label) {
			pw_sched_err_set(err, errlen,
					 "path %s: no node can have it (set always, countLabels, "
					 "flagLabels or measuredLabel)",
					 d->name);
			r = -EINVAL;
			goto fail;
		}
		if (d->ncount && d->colocated) {
			pw_sched_err_set(err, errlen, "path %s: a colocated path cannot be counted",
					 d->name);
			r = -EINVAL;
			goto fail;
		}
	}
	return 0;
fail:
	pw_policy_free(p);
	return r;
}

int pw_sched_read_file(const char *path, char **ret_buf, size_t *ret_len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	size_t n = 0, cap = 0;
	char *buf = NULL;
	int r = 0;

	if (!f) {
		r = -errno;
		pw_sched_err_set(err, errlen, "%s: %s", path, strerror(errno));
		return r;
	}
	for (;;) {
		if (cap - n < 4096) {
			char *nb = cap > SIZE_MAX / 4 ? NULL
						      : realloc(buf, cap = cap ? cap * 2 : 65536);

			if (!nb) {
				r = -ENOMEM;
				pw_sched_err_set(err, errlen, "%s: out of memory", path);
				goto out;
			}
			buf = nb;
		}
		size_t k = fread(buf + n, 1, cap - n - 1, f);

		n += k;
		if (k == 0)
			break;
	}
	if (ferror(f)) {
		r = -EIO;
		pw_sched_err_set(err, errlen, "%s: read error", path);
		goto out;
	}
	buf[n] = 0;
	*ret_buf = buf;
	*ret_len = n;
	buf = NULL;
out:
	free(buf);
	fclose(f);
	return r;
}

int pw_policy_load(struct pw_policy *p, const char *path, char *err, size_t errlen)
{
	char *buf = NULL;
	cJSON *doc = NULL;
	size_t n = 0;
	int r;

	memset(p, 0, sizeof(*p));
	r = pw_sched_read_file(path, &buf, &n, err, errlen);
	if (r)
		return r;
	doc = pw_json_parse(buf, n, path, err, errlen);
	if (!doc) {
		r = -EINVAL;
		goto out;
	}
	r = pw_policy_from_json(p, doc, err, errlen);
	if (r && err && errlen) {
		char tmp[PW_SCHED_ERRLEN];

		snprintf(tmp, sizeof(tmp), "%s", err);
		pw_sched_err_set(err, errlen, "%s: %s", path, tmp);
	}
out:
	cJSON_Delete(doc);
	free(buf);
	return r;
}

static cJSON *pw_strs_json(char *const *s, unsigned n)
{
	cJSON *a = cJSON_CreateArray();

	for (unsigned i = 0; a && i < n; i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(s[i]));
	return a;
}

cJSON *pw_policy_to_json(const struct pw_policy *p)
{
	cJSON *o = cJSON_CreateObject(), *paths;

	if (!o)
		return NULL;
	cJSON_AddStringToObject(o, "schedulerName", p->scheduler_name);
	cJSON_AddItemToObject(o, "latencyAnnotations",
			      pw_strs_json(p->latency_annotations, p->nlat_annot));
	cJSON_AddStringToObject(o, "peerAnnotation", p->peer_annotation);
	paths = cJSON_AddArrayToObject(o, "paths");
	for (unsigned i = 0; paths && i < p->npaths; i++) {
		const struct pw_path_def *d = &p->paths[i];
		cJSON *j = cJSON_CreateObject();

		if (!j)
			break;
		cJSON_AddStringToObject(j, "name", d->name);
		if (d->lat_us == PW_LAT_NONE)
			cJSON_AddNullToObject(j, "latencyUs");
		else
			cJSON_AddNumberToObject(j, "latencyUs", d->lat_us);
		cJSON_AddBoolToObject(j, "colocated", d->colocated);
		cJSON_AddBoolToObject(j, "always", d->always);
		cJSON_AddItemToObject(j, "countLabels", pw_strs_json(d->count_labels, d->ncount));
		cJSON_AddItemToObject(j, "flagLabels", pw_strs_json(d->flag_labels, d->nflag));
		if (d->measured_label)
			cJSON_AddStringToObject(j, "measuredLabel", d->measured_label);
		else
			cJSON_AddNullToObject(j, "measuredLabel");
		if (d->resource)
			cJSON_AddStringToObject(j, "resource", d->resource);
		else
			cJSON_AddNullToObject(j, "resource");
		cJSON_AddItemToArray(paths, j);
	}
	return o;
}
