// SPDX-License-Identifier: MIT
/*
 * Kubernetes objects into the model's structs: a Node's labels, taints,
 * allocatable resources, readiness and the data paths its labels advertise;
 * a Pod's effective requests, tolerations, node selector and affinity, and
 * its latency and peer annotations. Nothing here stores into the model
 * beyond interning resource names.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "model_int.h"
#include "util.h"

static void pw_kvs_free(struct pw_kv *kv, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		free(kv[i].key);
		free(kv[i].val);
	}
	free(kv);
}

void pw_node_clear(struct pw_node *n)
{
	if (!n)
		return;
	free(n->name);
	free(n->rv);
	pw_kvs_free(n->labels, n->nlabels);
	for (unsigned i = 0; n->taints && i < n->ntaints; i++) {
		free(n->taints[i].key);
		free(n->taints[i].val);
	}
	free(n->taints);
	memset(n, 0, sizeof(*n));
}

void pw_pod_clear(struct pw_pod *p)
{
	if (!p)
		return;
	free(p->key);
	free(p->ns);
	free(p->uid);
	free(p->rv);
	free(p->sched_name);
	free(p->node_name);
	free(p->peer);
	free(p->invalid);
	free(p->fail_event);
	free(p->unsched_msg);
	free(p->req);
	for (unsigned i = 0; i < p->ntols; i++) {
		free(p->tols[i].key);
		free(p->tols[i].val);
	}
	free(p->tols);
	pw_kvs_free(p->selector, p->nselector);
	for (unsigned t = 0; t < p->naffinity; t++) {
		struct pw_selterm *term = &p->affinity[t];

		for (unsigned i = 0; i < term->nreqs; i++) {
			free(term->reqs[i].key);
			for (unsigned k = 0; k < term->reqs[i].nvals; k++)
				free(term->reqs[i].vals[k]);
			free(term->reqs[i].vals);
		}
		free(term->reqs);
	}
	free(p->affinity);
	memset(p, 0, sizeof(*p));
	p->acct_node = -1;
	p->acct_path = -1;
}

/* ---- nodes ---- */

const char *pw_node_label(const struct pw_node *n, const char *key)
{
	for (unsigned i = 0; i < n->nlabels; i++)
		if (!strcmp(n->labels[i].key, key))
			return n->labels[i].val;
	return NULL;
}

static int pw_kvs_parse(const cJSON *obj, struct pw_kv **out, unsigned *nout, const char *what,
			char *err, size_t errlen)
{
	const cJSON *v;
	struct pw_kv *kv;
	unsigned n = 0;
	bool oom = false;
	char buf[64];

	*out = NULL;
	*nout = 0;
	if (!obj || cJSON_IsNull(obj))
		return 0;
	if (!cJSON_IsObject(obj)) {
		pw_sched_err_set(err, errlen, "%s: want an object", what);
		return -EINVAL;
	}
	kv = calloc((size_t)cJSON_GetArraySize(obj) + 1, sizeof(*kv));
	if (!kv)
		return -ENOMEM;
	cJSON_ArrayForEach(v, obj)
	{
		const char *s = pw_json_scalar_str(v, buf, sizeof(buf));

		if (!s) {
			pw_sched_err_set(err, errlen, "%s.%s: want a string", what, v->string);
			pw_kvs_free(kv, n);
			return -EINVAL;
		}
		kv[n].key = pw_sched_strdup(v->string, &oom);
		kv[n].val = pw_sched_strdup(s, &oom);
		n++;
	}
	if (oom) {
		pw_kvs_free(kv, n);
		return -ENOMEM;
	}
	*out = kv;
	*nout = n;
	return 0;
}

/* Names of the enums of sched_model.h, indexed by value. */
static const char *const pw_effect_names[] = {
	[PW_EFFECT_ANY] = "",
	[PW_EFFECT_NOSCHEDULE] = "NoSchedule",
	[PW_EFFECT_PREFER] = "PreferNoSchedule",
	[PW_EFFECT_NOEXECUTE] = "NoExecute",
};
static const char *const pw_phase_names[] = {
	[PW_PHASE_PENDING] = "Pending",
	[PW_PHASE_RUNNING] = "Running",
	[PW_PHASE_SUCCEEDED] = "Succeeded",
	[PW_PHASE_FAILED] = "Failed",
};
static const char *const pw_selop_names[] = {
	[PW_SEL_IN] = "In",	    [PW_SEL_NOTIN] = "NotIn",
	[PW_SEL_EXISTS] = "Exists", [PW_SEL_NOTEXIST] = "DoesNotExist",
	[PW_SEL_GT] = "Gt",	    [PW_SEL_LT] = "Lt",
};

/* The value named @s in @names (@n of them): @if_null for NULL, @if_unknown for none. */
static uint8_t pw_enum_parse(const char *s, const char *const *names, unsigned n, uint8_t if_null,
			     uint8_t if_unknown)
{
	if (!s)
		return if_null;
	for (unsigned i = 0; i < n; i++)
		if (!strcmp(s, names[i]))
			return (uint8_t)i;
	return if_unknown;
}

/* A taint's or toleration's effect; none is "any", 0xff an unknown one. */
static uint8_t pw_effect(const char *s)
{
	return pw_enum_parse(s, pw_effect_names, PW_ARRAY_SIZE(pw_effect_names), PW_EFFECT_ANY,
			     0xff);
}

/* An RTT label in ns to µs, rounded up; PW_LAT_NONE if absent or bad. */
static uint32_t pw_label_ns_to_us(const char *s)
{
	unsigned long long ns;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return PW_LAT_NONE;
	errno = 0;
	ns = strtoull(s, &end, 10);
	if (errno || *end || ns / 1000 >= PW_LAT_NONE - 1)
		return PW_LAT_NONE;
	return (uint32_t)((ns + 999) / 1000);
}

/* A non-negative count label; -1 if absent, -2 if malformed. */
static long pw_label_count(const char *s)
{
	long v;
	char *end;

	if (!s)
		return -1;
	if (*s < '0' || *s > '9')
		return -2;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v > INT32_MAX)
		return -2;
	return v;
}

/* Which paths the node has, with their latency and device count. */
static void pw_node_paths_find(struct pw_model *m, struct pw_node *n)
{
	const struct pw_policy *pol = m->pol;

	for (unsigned p = 0; p < pol->npaths; p++) {
		const struct pw_path_def *d = &pol->paths[p];
		struct pw_node_path *np = &n->path[p];
		uint32_t meas = d->measured_label
					? pw_label_ns_to_us(pw_node_label(n, d->measured_label))
					: PW_LAT_NONE;
		bool have = d->always || meas != PW_LAT_NONE, denied = false;
		long count = -1;

		np->lat_us = PW_LAT_NONE;
		np->cap = -1;
		for (unsigned i = 0; i < d->nflag; i++) {
			const char *v = pw_node_label(n, d->flag_labels[i]);

			if (v && !strcmp(v, "true"))
				have = true;
			else if (v)
				denied = true;
		}
		for (unsigned i = 0; i < d->ncount && count < 0; i++) {
			long c = pw_label_count(pw_node_label(n, d->count_labels[i]));

			if (c >= 0)
				count = c;
		}
		/* A device plugin's allocatable count wins over a label. */
		if (m->path_res[p] >= 0 && (n->alloc_mask & (1u << m->path_res[p])))
			count = (long)n->alloc[m->path_res[p]];
		if (d->ncount || (m->path_res[p] >= 0 && count >= 0)) {
			if (count > 0) {
				have = true;
				np->cap = (int32_t)(count > INT32_MAX ? INT32_MAX : count);
			} else if (!d->always) {
				have = false;
			}
		}
		if (denied && !d->always && count <= 0)
			have = false;
		if (have)
			np->lat_us = meas != PW_LAT_NONE ? meas : d->lat_us;
	}
}

static int pw_alloc_parse(struct pw_model *m, const cJSON *res, struct pw_node *n, char *err,
			  size_t errlen)
{
	const cJSON *v;

	if (!res || cJSON_IsNull(res))
		return 0;
	if (!cJSON_IsObject(res)) {
		pw_sched_err_set(err, errlen, "node %s: status.allocatable: want an object",
				 n->name);
		return -EINVAL;
	}
	cJSON_ArrayForEach(v, res)
	{
		int id = pw_model_res_id(m, v->string, true);
		int64_t q;
		int r;

		if (id == -ENOSPC)
			continue; /* no pod can ask for it either: see pw_pod_requests_parse */
		if (id < 0)
			return id;
		r = pw_qty_parse_json(v, id == PW_RES_CPU ? -3 : 0, &q);
		if (r || q < 0) {
			char buf[64];
			const char *s = pw_json_scalar_str(v, buf, sizeof(buf));

			pw_sched_err_set(err, errlen,
					 "node %s: allocatable %s: bad quantity \"%s\"", n->name,
					 v->string, s ? s : "?");
			return -EINVAL;
		}
		n->alloc[id] = q;
		n->alloc_mask |= 1u << id;
	}
	return 0;
}

int pw_node_parse(struct pw_model *m, const cJSON *obj, struct pw_node *n, char *err, size_t errlen)
{
	const cJSON *meta = pw_json_get(obj, "metadata"), *spec = pw_json_get(obj, "spec"),
		    *status = pw_json_get(obj, "status"), *v, *alloc;
	const char *name = pw_json_get_str(meta, "name");
	char what[300];
	bool oom = false;
	int r;

	memset(n, 0, sizeof(*n));
	if (!cJSON_IsObject(obj) || !name || !*name) {
		pw_sched_err_set(err, errlen, "node without metadata.name");
		return -EINVAL;
	}
	n->name = pw_sched_strdup(name, &oom);
	n->rv = pw_sched_strdup(pw_json_get_str(meta, "resourceVersion"), &oom);
	if (oom) {
		r = -ENOMEM;
		goto fail;
	}
	snprintf(what, sizeof(what), "node %s: metadata.labels", name);
	r = pw_kvs_parse(pw_json_get(meta, "labels"), &n->labels, &n->nlabels, what, err, errlen);
	if (r)
		goto fail;
	v = pw_json_get(spec, "unschedulable");
	n->unschedulable = cJSON_IsTrue(v);
	v = pw_json_get(spec, "taints");
	if (cJSON_IsArray(v)) {
		const cJSON *t;

		n->taints = calloc((size_t)cJSON_GetArraySize(v) + 1, sizeof(*n->taints));
		if (!n->taints) {
			r = -ENOMEM;
			goto fail;
		}
		cJSON_ArrayForEach(t, v)
		{
			const char *key = pw_json_get_str(t, "key"),
				   *eff = pw_json_get_str(t, "effect");
			struct pw_taint *tt = &n->taints[n->ntaints];

			if (!key || !eff || pw_effect(eff) == 0xff || pw_effect(eff) == 0) {
				pw_sched_err_set(err, errlen,
						 "node %s: spec.taints: want key and effect", name);
				r = -EINVAL;
				goto fail;
			}
			tt->key = pw_sched_strdup(key, &oom);
			tt->val = pw_sched_strdup(
				pw_json_get_str(t, "value") ? pw_json_get_str(t, "value") : "",
				&oom);
			tt->effect = pw_effect(eff);
			n->ntaints++;
		}
		if (oom) {
			r = -ENOMEM;
			goto fail;
		}
	} else if (v && !cJSON_IsNull(v)) {
		pw_sched_err_set(err, errlen, "node %s: spec.taints: want an array", name);
		r = -EINVAL;
		goto fail;
	}
	/* kubelet always reports allocatable; capacity is the fallback of hand-made files. */
	alloc = pw_json_get(status, "allocatable");
	if (!alloc)
		alloc = pw_json_get(status, "capacity");
	r = pw_alloc_parse(m, alloc, n, err, errlen);
	if (r)
		goto fail;
	v = pw_json_get(status, "conditions");
	if (cJSON_IsArray(v)) {
		const cJSON *c;

		cJSON_ArrayForEach(c, v)
		{
			const char *type = pw_json_get_str(c, "type"),
				   *st = pw_json_get_str(c, "status");

			if (type && !strcmp(type, "Ready"))
				n->not_ready = !st || strcmp(st, "True") != 0;
		}
	}
	pw_node_paths_find(m, n);
	return 0;
fail:
	pw_node_clear(n);
	return r;
}

/* ---- pods ---- */

static int pw_tols_parse(const cJSON *v, struct pw_pod *p, char *err, size_t errlen)
{
	const cJSON *t;
	bool oom = false;

	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsArray(v)) {
		pw_sched_err_set(err, errlen, "spec.tolerations: want an array");
		return -EINVAL;
	}
	p->tols = calloc((size_t)cJSON_GetArraySize(v) + 1, sizeof(*p->tols));
	if (!p->tols)
		return -ENOMEM;
	cJSON_ArrayForEach(t, v)
	{
		struct pw_toleration *tl = &p->tols[p->ntols];
		const char *op = pw_json_get_str(t, "operator"),
			   *eff = pw_json_get_str(t, "effect");

		if (!cJSON_IsObject(t) ||
		    (op && strcmp(op, "Exists") != 0 && strcmp(op, "Equal") != 0) ||
		    pw_effect(eff) == 0xff) {
			pw_sched_err_set(err, errlen, "spec.tolerations: bad toleration");
			return -EINVAL;
		}
		tl->exists = op && !strcmp(op, "Exists");
		tl->effect = pw_effect(eff);
		tl->key = pw_sched_strdup(
			pw_json_get_str(t, "key") ? pw_json_get_str(t, "key") : "", &oom);
		tl->val = pw_sched_strdup(
			pw_json_get_str(t, "value") ? pw_json_get_str(t, "value") : "", &oom);
		p->ntols++;
	}
	return oom ? -ENOMEM : 0;
}

static int pw_selreq_parse(const cJSON *e, bool field, struct pw_selreq *rq, char *err,
			   size_t errlen)
{
	const char *key = pw_json_get_str(e, "key"), *op = pw_json_get_str(e, "operator");
	const cJSON *vals = pw_json_get(e, "values"), *v;
	bool oom = false;
	unsigned i;

	if (!key || !op)
		goto bad;
	i = pw_enum_parse(op, pw_selop_names, PW_ARRAY_SIZE(pw_selop_names), 0xff, 0xff);
	if (i == 0xff || (field && i > PW_SEL_NOTIN))
		goto bad;
	rq->op = (uint8_t)i;
	rq->field = field;
	if (!(rq->key = strdup(key)))
		return -ENOMEM;
	if (vals && !cJSON_IsArray(vals))
		goto bad;
	rq->vals = calloc((size_t)cJSON_GetArraySize(vals) + 1, sizeof(*rq->vals));
	if (!rq->vals)
		return -ENOMEM;
	cJSON_ArrayForEach(v, vals)
	{
		if (!cJSON_IsString(v))
			goto bad;
		rq->vals[rq->nvals++] = pw_sched_strdup(v->valuestring, &oom);
	}
	if (oom)
		return -ENOMEM;
	/* The API server's validation: In/NotIn need values, Gt/Lt exactly one. */
	if (((i == PW_SEL_IN || i == PW_SEL_NOTIN) && !rq->nvals) ||
	    ((i == PW_SEL_EXISTS || i == PW_SEL_NOTEXIST) && rq->nvals) ||
	    ((i == PW_SEL_GT || i == PW_SEL_LT) && rq->nvals != 1))
		goto bad;
	return 0;
bad:
	pw_sched_err_set(err, errlen, "node affinity: bad %s requirement",
			 field ? "matchFields" : "matchExpressions");
	return -EINVAL;
}

static int pw_affinity_parse(const cJSON *spec, struct pw_pod *p, char *err, size_t errlen)
{
	const cJSON *req = pw_json_get(pw_json_get(pw_json_get(spec, "affinity"), "nodeAffinity"),
				       "requiredDuringSchedulingIgnoredDuringExecution");
	const cJSON *terms = pw_json_get(req, "nodeSelectorTerms"), *t;
	int r;

	if (!req || cJSON_IsNull(req))
		return 0;
	if (!cJSON_IsArray(terms)) {
		pw_sched_err_set(err, errlen, "node affinity: want nodeSelectorTerms");
		return -EINVAL;
	}
	p->has_affinity = true;
	p->affinity = calloc((size_t)cJSON_GetArraySize(terms) + 1, sizeof(*p->affinity));
	if (!p->affinity)
		return -ENOMEM;
	cJSON_ArrayForEach(t, terms)
	{
		struct pw_selterm *term = &p->affinity[p->naffinity++];
		const cJSON *ex = pw_json_get(t, "matchExpressions"),
			    *fx = pw_json_get(t, "matchFields"), *e;

		if ((ex && !cJSON_IsArray(ex) && !cJSON_IsNull(ex)) ||
		    (fx && !cJSON_IsArray(fx) && !cJSON_IsNull(fx))) {
			pw_sched_err_set(err, errlen, "node affinity: bad nodeSelectorTerm");
			return -EINVAL;
		}
		term->reqs = calloc((size_t)(cJSON_GetArraySize(ex) + cJSON_GetArraySize(fx)) + 1,
				    sizeof(*term->reqs));
		if (!term->reqs)
			return -ENOMEM;
		cJSON_ArrayForEach(e, ex)
		{
			if ((r = pw_selreq_parse(e, false, &term->reqs[term->nreqs++], err,
						 errlen)))
				return r;
		}
		cJSON_ArrayForEach(e, fx)
		{
			if ((r = pw_selreq_parse(e, true, &term->reqs[term->nreqs++], err, errlen)))
				return r;
		}
	}
	return 0;
}

/* One requests map (and limits standing in for missing requests) into @acc. */
static int pw_res_map_parse(struct pw_model *m, const cJSON *reqs, const cJSON *lims,
			    const char *what, int64_t *acc, uint32_t *mask, char *err,
			    size_t errlen)
{
	const cJSON *v;
	char buf[64];

	for (int pass = 0; pass < 2; pass++) {
		const cJSON *set = pass ? lims : reqs;

		if (set && !cJSON_IsObject(set) && !cJSON_IsNull(set)) {
			pw_sched_err_set(err, errlen, "%s: want an object of quantities", what);
			return -EINVAL;
		}
		cJSON_ArrayForEach(v, set)
		{
			int id;
			int64_t q;

			if (pass && pw_json_get(reqs, v->string))
				continue;
			id = pw_model_res_id(m, v->string, true);
			if (id == -ENOSPC) {
				pw_sched_err_set(err, errlen,
						 "resource %s: more than %d resource names",
						 v->string, PW_SCHED_MAX_RES);
				return -EINVAL;
			}
			if (id < 0)
				return id;
			if (pw_qty_parse_json(v, id == PW_RES_CPU ? -3 : 0, &q) || q < 0) {
				const char *s = pw_json_scalar_str(v, buf, sizeof(buf));

				pw_sched_err_set(err, errlen, "%s: bad quantity %s=\"%s\"", what,
						 v->string, s ? s : "?");
				return -EINVAL;
			}
			acc[id] = q;
			*mask |= 1u << id;
		}
	}
	return 0;
}

static int pw_container_req_parse(struct pw_model *m, const cJSON *c, int64_t *acc, uint32_t *mask,
				  char *err, size_t errlen)
{
	const cJSON *res = pw_json_get(c, "resources");
	const char *cname = pw_json_get_str(c, "name");
	char what[96];

	if (!cJSON_IsObject(c)) {
		pw_sched_err_set(err, errlen, "spec.containers: want objects");
		return -EINVAL;
	}
	snprintf(what, sizeof(what), "container %s", cname ? cname : "?");
	return pw_res_map_parse(m, pw_json_get(res, "requests"), pw_json_get(res, "limits"), what,
				acc, mask, err, errlen);
}

/*
 * Effective requests as the scheduler and kubelet compute them: the sum over
 * containers and restartable (sidecar) init containers, or the largest init
 * container plus the sidecars started before it, whichever is larger; plus
 * spec.overhead.
 */
static int pw_pod_requests_parse(struct pw_model *m, const cJSON *spec, struct pw_pod *p, char *err,
				 size_t errlen)
{
	int64_t sum[PW_SCHED_MAX_RES] = { 0 }, side[PW_SCHED_MAX_RES] = { 0 },
		init_max[PW_SCHED_MAX_RES] = { 0 }, one[PW_SCHED_MAX_RES];
	const cJSON *c, *cs = pw_json_get(spec, "containers"),
			*ics = pw_json_get(spec, "initContainers");
	uint32_t mask = 0, cmask;
	int r;

	if ((cs && !cJSON_IsArray(cs)) || (ics && !cJSON_IsArray(ics) && !cJSON_IsNull(ics))) {
		pw_sched_err_set(err, errlen, "spec.containers: want an array");
		return -EINVAL;
	}
	cJSON_ArrayForEach(c, ics)
	{
		const char *rp = pw_json_get_str(c, "restartPolicy");

		memset(one, 0, sizeof(one));
		cmask = 0;
		if ((r = pw_container_req_parse(m, c, one, &cmask, err, errlen)))
			return r;
		mask |= cmask;
		for (unsigned i = 0; i < PW_SCHED_MAX_RES; i++) {
			int64_t need = side[i] + one[i];

			if (rp && !strcmp(rp, "Always"))
				side[i] = need;
			if (need > init_max[i])
				init_max[i] = need;
		}
	}
	cJSON_ArrayForEach(c, cs)
	{
		memset(one, 0, sizeof(one));
		cmask = 0;
		if ((r = pw_container_req_parse(m, c, one, &cmask, err, errlen)))
			return r;
		mask |= cmask;
		for (unsigned i = 0; i < PW_SCHED_MAX_RES; i++)
			sum[i] += one[i];
	}
	memset(one, 0, sizeof(one));
	cmask = 0;
	r = pw_res_map_parse(m, pw_json_get(spec, "overhead"), NULL, "spec.overhead", one, &cmask,
			     err, errlen);
	if (r)
		return r;
	mask |= cmask;
	p->req = calloc(PW_SCHED_MAX_RES, sizeof(*p->req));
	if (!p->req)
		return -ENOMEM;
	for (unsigned i = 0; i < PW_SCHED_MAX_RES; i++) {
		int64_t v = sum[i] + side[i];

		if (!(mask & (1u << i)))
			continue;
		if (init_max[i] > v)
			v = init_max[i];
		v += one[i];
		if (!v || i == PW_RES_PODS)
			continue;
		p->req[p->nreq++] = (struct pw_req){ (uint16_t)i, v };
		if (i == PW_RES_CPU)
			p->cpu = v;
		else if (i == PW_RES_MEMORY)
			p->mem = v;
		else
			p->other_req = true;
	}
	return 0;
}

/* The pod's latency requirement in µs; a bad value makes the pod invalid. */
static int pw_pod_latency_parse(const struct pw_policy *pol, const cJSON *ann, struct pw_pod *p,
				char *why, size_t whylen)
{
	p->max_lat_us = PW_LAT_NONE;
	for (unsigned i = 0; i < pol->nlat_annot; i++) {
		const cJSON *v = pw_json_get(ann, pol->latency_annotations[i]);
		const char *s;
		char buf[64], *end;
		unsigned long long us;

		if (!v)
			continue;
		s = pw_json_scalar_str(v, buf, sizeof(buf));
		errno = 0;
		us = s && *s >= '0' && *s <= '9' ? strtoull(s, &end, 10) : 0;
		if (!s || *s < '0' || *s > '9' || errno || *end || us >= PW_LAT_NONE) {
			pw_sched_err_set(
				why, whylen,
				"annotation %s=\"%s\": want a whole number of microseconds",
				pol->latency_annotations[i], s ? s : "?");
			return -EINVAL;
		}
		p->max_lat_us = (uint32_t)us;
		return 0;
	}
	return 0;
}

/* The message of a PodScheduled=False/Unschedulable condition ("" without one). */
static void pw_pod_unsched_parse(const cJSON *conds, struct pw_pod *p, bool *oom)
{
	const cJSON *c;

	if (!cJSON_IsArray(conds))
		return;
	cJSON_ArrayForEach(c, conds)
	{
		const char *type = pw_json_get_str(c, "type"), *st = pw_json_get_str(c, "status"),
			   *reason = pw_json_get_str(c, "reason"),
			   *msg = pw_json_get_str(c, "message");

		if (type && st && reason && !strcmp(type, "PodScheduled") && !strcmp(st, "False") &&
		    !strcmp(reason, "Unschedulable")) {
			p->unsched_msg = pw_sched_strdup(msg ? msg : "", oom);
			return;
		}
	}
}

int pw_pod_parse(struct pw_model *m, const cJSON *obj, struct pw_pod *p, char *err, size_t errlen)
{
	const cJSON *meta = pw_json_get(obj, "metadata"), *spec = pw_json_get(obj, "spec"),
		    *status = pw_json_get(obj, "status"), *ann = pw_json_get(meta, "annotations"),
		    *v;
	const char *name = pw_json_get_str(meta, "name"), *ns = pw_json_get_str(meta, "namespace");
	char why[PW_SCHED_ERRLEN] = "", buf[64];
	bool oom = false;
	size_t klen;

	memset(p, 0, sizeof(*p));
	p->acct_node = -1;
	p->acct_path = -1;
	if (!cJSON_IsObject(obj) || !name || !*name) {
		pw_sched_err_set(err, errlen, "pod without metadata.name");
		return -EINVAL;
	}
	if (!ns || !*ns)
		ns = "default";
	if (spec && !cJSON_IsObject(spec)) {
		pw_sched_err_set(err, errlen, "pod %s/%s: spec: want an object", ns, name);
		return -EINVAL;
	}
	klen = strlen(ns) + strlen(name) + 2;
	p->key = malloc(klen);
	if (!p->key)
		return -ENOMEM;
	snprintf(p->key, klen, "%s/%s", ns, name);
	p->name = p->key + strlen(ns) + 1;
	p->ns = pw_sched_strdup(ns, &oom);
	p->uid = pw_sched_strdup(pw_json_get_str(meta, "uid"), &oom);
	p->rv = pw_sched_strdup(pw_json_get_str(meta, "resourceVersion"), &oom);
	v = pw_json_get(meta, "deletionTimestamp");
	p->deleting = v && !cJSON_IsNull(v);
	p->sched_name = pw_sched_strdup(pw_json_get_str(spec, "schedulerName")
						? pw_json_get_str(spec, "schedulerName")
						: "default-scheduler",
					&oom);
	if (pw_json_get_str(spec, "nodeName") && *pw_json_get_str(spec, "nodeName"))
		p->node_name = pw_sched_strdup(pw_json_get_str(spec, "nodeName"), &oom);
	p->phase = pw_enum_parse(pw_json_get_str(status, "phase"), pw_phase_names,
				 PW_ARRAY_SIZE(pw_phase_names), PW_PHASE_PENDING, PW_PHASE_UNKNOWN);
	pw_pod_unsched_parse(pw_json_get(status, "conditions"), p, &oom);
	if (oom)
		goto nomem;
	if (ann && !cJSON_IsObject(ann) && !cJSON_IsNull(ann)) {
		pw_sched_err_set(why, sizeof(why), "metadata.annotations: want an object");
	} else {
		const cJSON *peer = pw_json_get(ann, m->pol->peer_annotation);
		const char *ps = peer ? pw_json_scalar_str(peer, buf, sizeof(buf)) : NULL;

		pw_pod_latency_parse(m->pol, ann, p, why, sizeof(why));
		if (ps && *ps) {
			/* "name" in the pod's namespace, or "namespace/name". */
			size_t n = strlen(ns) + strlen(ps) + 2;

			if (!(p->peer = malloc(n)))
				goto nomem;
			if (strchr(ps, '/'))
				snprintf(p->peer, n, "%s", ps);
			else
				snprintf(p->peer, n, "%s/%s", ns, ps);
		} else if (peer) {
			pw_sched_err_set(why, sizeof(why), "annotation %s: want a pod name",
					 m->pol->peer_annotation);
		}
	}
	/* Structure errors below leave the pod unschedulable with the reason, not unknown. */
	if (!*why && pw_pod_requests_parse(m, spec, p, why, sizeof(why)) == -ENOMEM)
		goto nomem;
	if (!*why &&
	    pw_tols_parse(pw_json_get(spec, "tolerations"), p, why, sizeof(why)) == -ENOMEM)
		goto nomem;
	if (!*why && pw_kvs_parse(pw_json_get(spec, "nodeSelector"), &p->selector, &p->nselector,
				  "spec.nodeSelector", why, sizeof(why)) == -ENOMEM)
		goto nomem;
	if (!*why && pw_affinity_parse(spec, p, why, sizeof(why)) == -ENOMEM)
		goto nomem;
	if (*why && !(p->invalid = strdup(why)))
		goto nomem;
	return 0;
nomem:
	pw_pod_clear(p);
	return -ENOMEM;
}
