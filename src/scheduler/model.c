// SPDX-License-Identifier: MIT
/*
 * The cluster model: nodes and pods from Kubernetes JSON, and what bound pods
 * charge to their node (requests, a pod slot, one scarce device when the
 * pod's latency needs it).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "model_int.h"

/* ---- string map: open addressing, linear probing, backward-shift delete ---- */

struct pw_map_ent {
	const char *key; /* owned by the object */
	uint32_t hash;
	int32_t id;
};

static uint32_t pw_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

static int pw_map_find(const struct pw_map *mp, const char *key)
{
	uint32_t h, i;

	if (!mp->cap)
		return -1;
	h = pw_hash(key);
	for (i = h & (mp->cap - 1); mp->e[i].key; i = (i + 1) & (mp->cap - 1))
		if (mp->e[i].hash == h && !strcmp(mp->e[i].key, key))
			return mp->e[i].id;
	return -1;
}

static void pw_map_insert(struct pw_map *mp, const char *key, uint32_t h, int32_t id)
{
	uint32_t i = h & (mp->cap - 1);

	while (mp->e[i].key)
		i = (i + 1) & (mp->cap - 1);
	mp->e[i] = (struct pw_map_ent){ key, h, id };
	mp->n++;
}

static int pw_map_put(struct pw_map *mp, const char *key, int32_t id)
{
	if ((mp->n + 1) * 2 > mp->cap) {
		uint32_t ncap = mp->cap ? mp->cap * 2 : 64;
		struct pw_map_ent *old = mp->e, *ne = calloc(ncap, sizeof(*ne));
		uint32_t ocap = mp->cap;

		if (!ne)
			return -ENOMEM;
		mp->e = ne;
		mp->cap = ncap;
		mp->n = 0;
		for (uint32_t i = 0; i < ocap; i++)
			if (old[i].key)
				pw_map_insert(mp, old[i].key, old[i].hash, old[i].id);
		free(old);
	}
	pw_map_insert(mp, key, pw_hash(key), id);
	return 0;
}

static void pw_map_del(struct pw_map *mp, const char *key)
{
	uint32_t h, i, j, mask = mp->cap - 1;

	if (!mp->cap)
		return;
	h = pw_hash(key);
	for (i = h & mask; mp->e[i].key; i = (i + 1) & mask)
		if (mp->e[i].hash == h && !strcmp(mp->e[i].key, key))
			break;
	if (!mp->e[i].key)
		return;
	/* Shift later members of the probe run back over the hole. */
	for (j = (i + 1) & mask; mp->e[j].key; j = (j + 1) & mask) {
		uint32_t home = mp->e[j].hash & mask;

		if (((j - home) & mask) >= ((j - i) & mask)) {
			mp->e[i] = mp->e[j];
			i = j;
		}
	}
	mp->e[i].key = NULL;
	mp->n--;
}

/* ---- helpers ---- */

void pw_seterr(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!err || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

static char *pw_xstrdup(const char *s, bool *oom)
{
	char *c;

	if (!s)
		return NULL;
	c = strdup(s);
	if (!c)
		*oom = true;
	return c;
}

int pw_model_res_id(struct pw_model *m, const char *name, bool add)
{
	for (unsigned i = 0; i < m->nres; i++)
		if (!strcmp(m->res[i], name))
			return (int)i;
	if (!add)
		return -ENOENT;
	if (m->nres == PW_SCHED_MAX_RES)
		return -ENOSPC;
	if (!(m->res[m->nres] = strdup(name)))
		return -ENOMEM;
	return (int)m->nres++;
}

int pw_model_init(struct pw_model *m, const struct pw_policy *pol)
{
	static const char *const fixed[] = { "cpu", "memory", "ephemeral-storage", "pods" };

	memset(m, 0, sizeof(*m));
	m->pol = pol;
	for (unsigned i = 0; i < 4; i++)
		if (pw_model_res_id(m, fixed[i], true) < 0)
			goto fail;
	for (unsigned i = 0; i < pol->npaths; i++) {
		m->path_res[i] = -1;
		if (pol->paths[i].resource &&
		    (m->path_res[i] = pw_model_res_id(m, pol->paths[i].resource, true)) < 0)
			goto fail;
	}
	return 0;
fail:
	pw_model_free(m);
	return -ENOMEM;
}

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
	for (unsigned i = 0; i < n->ntaints; i++) {
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

void pw_model_free(struct pw_model *m)
{
	if (!m)
		return;
	for (unsigned i = 0; i < m->nnodes; i++)
		pw_node_clear(&m->nodes[i]);
	for (unsigned i = 0; i < m->npods; i++)
		pw_pod_clear(&m->pods[i]);
	for (unsigned i = 0; i < m->nres; i++)
		free(m->res[i]);
	free(m->nodes);
	free(m->hot);
	free(m->pods);
	free(m->node_map.e);
	free(m->pod_map.e);
	free(m->peer_pods);
	memset(m, 0, sizeof(*m));
}

/* ---- nodes ---- */

const char *pw_node_label(const struct pw_node *n, const char *key)
{
	for (unsigned i = 0; i < n->nlabels; i++)
		if (!strcmp(n->labels[i].key, key))
			return n->labels[i].val;
	return NULL;
}

static int pw_parse_kvs(const cJSON *obj, struct pw_kv **out, unsigned *nout, const char *what,
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
		pw_seterr(err, errlen, "%s: want an object", what);
		return -EINVAL;
	}
	kv = calloc((size_t)cJSON_GetArraySize(obj) + 1, sizeof(*kv));
	if (!kv)
		return -ENOMEM;
	cJSON_ArrayForEach(v, obj)
	{
		const char *s = pw_json_scalar_str(v, buf, sizeof(buf));

		if (!s) {
			pw_seterr(err, errlen, "%s.%s: want a string", what, v->string);
			pw_kvs_free(kv, n);
			return -EINVAL;
		}
		kv[n].key = pw_xstrdup(v->string, &oom);
		kv[n].val = pw_xstrdup(s, &oom);
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

static uint8_t pw_effect(const char *s)
{
	if (!s || !*s)
		return PW_EFFECT_ANY;
	if (!strcmp(s, "NoSchedule"))
		return PW_EFFECT_NOSCHEDULE;
	if (!strcmp(s, "PreferNoSchedule"))
		return PW_EFFECT_PREFER;
	if (!strcmp(s, "NoExecute"))
		return PW_EFFECT_NOEXECUTE;
	return 0xff;
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
static void pw_node_paths(struct pw_model *m, struct pw_node *n)
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

uint32_t pw_node_cap_lat(const struct pw_model *m, const struct pw_node *n)
{
	uint32_t best = PW_LAT_NONE;

	for (unsigned p = 0; p < m->pol->npaths; p++) {
		const struct pw_node_path *np = &n->path[p];

		if (m->pol->paths[p].colocated || np->lat_us == PW_LAT_NONE)
			continue;
		if (np->cap >= 0 && np->used >= np->cap)
			continue;
		if (np->lat_us < best)
			best = np->lat_us;
	}
	return best;
}

static void pw_hot_refresh(struct pw_model *m, int ni)
{
	const struct pw_node *n = &m->nodes[ni];
	struct pw_node_hot *h = &m->hot[ni];

	if (!n->name) {
		memset(h, 0, sizeof(*h));
		h->flags = PW_HOT_FREE;
		return;
	}
	h->flags = 0;
	if (n->unschedulable || n->not_ready)
		h->flags |= PW_HOT_SLOW;
	for (unsigned i = 0; i < n->ntaints; i++)
		if (n->taints[i].effect != PW_EFFECT_PREFER)
			h->flags |= PW_HOT_SLOW;
	h->cap_lat = pw_node_cap_lat(m, n);
	h->cpu_alloc = n->alloc[PW_RES_CPU];
	h->cpu_used = n->used[PW_RES_CPU];
	h->mem_alloc = n->alloc[PW_RES_MEMORY];
	h->mem_used = n->used[PW_RES_MEMORY];
	h->pods_alloc = n->alloc[PW_RES_PODS];
	h->pods_used = n->used[PW_RES_PODS];
}

static int pw_parse_alloc(struct pw_model *m, const cJSON *res, struct pw_node *n, char *err,
			  size_t errlen)
{
	const cJSON *v;

	if (!res || cJSON_IsNull(res))
		return 0;
	if (!cJSON_IsObject(res)) {
		pw_seterr(err, errlen, "node %s: status.allocatable: want an object", n->name);
		return -EINVAL;
	}
	cJSON_ArrayForEach(v, res)
	{
		int id = pw_model_res_id(m, v->string, true);
		int64_t q;
		int r;

		if (id == -ENOSPC)
			continue; /* no pod can ask for it either: see pw_pod_requests */
		if (id < 0)
			return id;
		r = pw_qty_parse_json(v, id == PW_RES_CPU ? -3 : 0, &q);
		if (r || q < 0) {
			char buf[64];
			const char *s = pw_json_scalar_str(v, buf, sizeof(buf));

			pw_seterr(err, errlen, "node %s: allocatable %s: bad quantity \"%s\"",
				  n->name, v->string, s ? s : "?");
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
		pw_seterr(err, errlen, "node without metadata.name");
		return -EINVAL;
	}
	n->name = pw_xstrdup(name, &oom);
	n->rv = pw_xstrdup(pw_json_get_str(meta, "resourceVersion"), &oom);
	if (oom) {
		r = -ENOMEM;
		goto fail;
	}
	snprintf(what, sizeof(what), "node %s: metadata.labels", name);
	r = pw_parse_kvs(pw_json_get(meta, "labels"), &n->labels, &n->nlabels, what, err, errlen);
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
				pw_seterr(err, errlen, "node %s: spec.taints: want key and effect",
					  name);
				r = -EINVAL;
				goto fail;
			}
			tt->key = pw_xstrdup(key, &oom);
			tt->val = pw_xstrdup(
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
		pw_seterr(err, errlen, "node %s: spec.taints: want an array", name);
		r = -EINVAL;
		goto fail;
	}
	/* kubelet always reports allocatable; capacity is the fallback of hand-made files. */
	alloc = pw_json_get(status, "allocatable");
	if (!alloc)
		alloc = pw_json_get(status, "capacity");
	r = pw_parse_alloc(m, alloc, n, err, errlen);
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
				n->not_ready = !st || strcmp(st, "True");
		}
	}
	pw_node_paths(m, n);
	return 0;
fail:
	pw_node_clear(n);
	return r;
}

/* ---- accounting ---- */

/* Where pod @p's peer is: a node index, PW_PEER_ANY (pending) or PW_PEER_NONE. */
int pw_peer_node(const struct pw_model *m, const struct pw_pod *p)
{
	int pi;

	if (!p->peer)
		return PW_PEER_NONE;
	pi = pw_map_find(&m->pod_map, p->peer);
	if (pi < 0)
		return PW_PEER_NONE;
	if (m->pods[pi].node_name) {
		int ni = pw_map_find(&m->node_map, m->pods[pi].node_name);

		return ni >= 0 ? ni : PW_PEER_NONE;
	}
	return pw_pod_pending(&m->pods[pi]) ? PW_PEER_ANY : PW_PEER_NONE;
}

static int64_t pw_pod_req(const struct pw_pod *p, int id)
{
	for (unsigned i = 0; i < p->nreq; i++)
		if (p->req[i].id == id)
			return p->req[i].v;
	return 0;
}

uint32_t pw_path_lat_for(const struct pw_model *m, const struct pw_node *n, int ni, unsigned p,
			 int peer_node)
{
	if (n->path[p].lat_us == PW_LAT_NONE)
		return PW_LAT_NONE;
	if (m->pol->paths[p].colocated && !(peer_node == PW_PEER_ANY || peer_node == ni))
		return PW_LAT_NONE;
	return n->path[p].lat_us;
}

int pw_path_choose(const struct pw_model *m, const struct pw_pod *pod, const struct pw_node *n,
		   int ni, int peer_node, bool need_free, int32_t *count)
{
	int best = -1;
	bool best_scarce = true;
	uint32_t best_lat = 0;

	*count = 0;
	/* An explicit request for a path's devices names the path. */
	for (unsigned p = 0; p < m->pol->npaths; p++) {
		int64_t v = m->path_res[p] >= 0 ? pw_pod_req(pod, m->path_res[p]) : 0;

		if (v > 0) {
			*count = (int32_t)(v > INT32_MAX ? INT32_MAX : v);
			return (int)p;
		}
	}
	for (unsigned p = 0; p < m->pol->npaths; p++) {
		const struct pw_node_path *np = &n->path[p];
		uint32_t lat = pw_path_lat_for(m, n, ni, p, peer_node);
		bool scarce = np->cap >= 0;

		if (lat == PW_LAT_NONE || (pod->max_lat_us != PW_LAT_NONE && lat > pod->max_lat_us))
			continue;
		if (scarce && need_free && np->used >= np->cap)
			continue;
		/* Spend no scarce device when a plain path will do; else the slowest that meets. */
		if (best < 0 || (best_scarce && !scarce) ||
		    (best_scarce == scarce && lat > best_lat)) {
			best = (int)p;
			best_scarce = scarce;
			best_lat = lat;
		}
	}
	if (best >= 0 && best_scarce)
		*count = 1;
	return best;
}

static void pw_pod_charge(struct pw_model *m, int pi, int sign)
{
	struct pw_pod *p = &m->pods[pi];
	struct pw_node *n;
	int ni, peer;

	if (sign > 0) {
		if (p->acct_node >= 0 || !p->node_name || p->phase == PW_PHASE_SUCCEEDED ||
		    p->phase == PW_PHASE_FAILED)
			return;
		ni = pw_map_find(&m->node_map, p->node_name);
		if (ni < 0)
			return; /* charged when the node appears */
		n = &m->nodes[ni];
		/* Bound pods: a peer that is merely pending is not co-located yet. */
		peer = pw_peer_node(m, p);
		if (peer == PW_PEER_ANY)
			peer = PW_PEER_NONE;
		p->acct_path = (int8_t)pw_path_choose(m, p, n, ni, peer, false, &p->acct_path_n);
		p->acct_node = ni;
	} else {
		if (p->acct_node < 0)
			return;
		ni = p->acct_node;
		n = &m->nodes[ni];
		p->acct_node = -1;
	}
	for (unsigned i = 0; i < p->nreq; i++)
		n->used[p->req[i].id] += sign * p->req[i].v;
	n->used[PW_RES_PODS] += sign;
	if (p->acct_path >= 0)
		n->path[p->acct_path].used += sign * p->acct_path_n;
	pw_hot_refresh(m, ni);
}

/* Pods naming @pi as their peer may now need a different path. */
static void pw_recharge_peers_of(struct pw_model *m, int pi)
{
	const char *key = m->pods[pi].key;

	for (unsigned i = 0; i < m->npeer_pods; i++) {
		int q = m->peer_pods[i];

		if (q == pi || !m->pods[q].key || !m->pods[q].peer || m->pods[q].acct_node < 0 ||
		    strcmp(m->pods[q].peer, key))
			continue;
		pw_pod_charge(m, q, -1);
		pw_pod_charge(m, q, +1);
	}
}

/* ---- pods ---- */

static int pw_tols_parse(const cJSON *v, struct pw_pod *p, char *err, size_t errlen)
{
	const cJSON *t;
	bool oom = false;

	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsArray(v)) {
		pw_seterr(err, errlen, "spec.tolerations: want an array");
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

		if (!cJSON_IsObject(t) || (op && strcmp(op, "Exists") && strcmp(op, "Equal")) ||
		    pw_effect(eff) == 0xff) {
			pw_seterr(err, errlen, "spec.tolerations: bad toleration");
			return -EINVAL;
		}
		tl->exists = op && !strcmp(op, "Exists");
		tl->effect = pw_effect(eff);
		tl->key = pw_xstrdup(pw_json_get_str(t, "key") ? pw_json_get_str(t, "key") : "",
				     &oom);
		tl->val = pw_xstrdup(pw_json_get_str(t, "value") ? pw_json_get_str(t, "value") : "",
				     &oom);
		p->ntols++;
	}
	return oom ? -ENOMEM : 0;
}

static int pw_selreq_parse(const cJSON *e, bool field, struct pw_selreq *rq, char *err,
			   size_t errlen)
{
	static const char *const ops[] = { "In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt" };
	const char *key = pw_json_get_str(e, "key"), *op = pw_json_get_str(e, "operator");
	const cJSON *vals = pw_json_get(e, "values"), *v;
	bool oom = false;
	unsigned i;

	if (!key || !op)
		goto bad;
	for (i = 0; i < 6 && strcmp(op, ops[i]); i++)
		;
	if (i == 6 || (field && i > PW_SEL_NOTIN))
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
		rq->vals[rq->nvals++] = pw_xstrdup(v->valuestring, &oom);
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
	pw_seterr(err, errlen, "node affinity: bad %s requirement",
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
		pw_seterr(err, errlen, "node affinity: want nodeSelectorTerms");
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
			pw_seterr(err, errlen, "node affinity: bad nodeSelectorTerm");
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
static int pw_res_map(struct pw_model *m, const cJSON *reqs, const cJSON *lims, const char *what,
		      int64_t *acc, uint32_t *mask, char *err, size_t errlen)
{
	const cJSON *v;
	char buf[64];

	for (int pass = 0; pass < 2; pass++) {
		const cJSON *set = pass ? lims : reqs;

		if (set && !cJSON_IsObject(set) && !cJSON_IsNull(set)) {
			pw_seterr(err, errlen, "%s: want an object of quantities", what);
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
				pw_seterr(err, errlen, "resource %s: more than %d resource names",
					  v->string, PW_SCHED_MAX_RES);
				return -EINVAL;
			}
			if (id < 0)
				return id;
			if (pw_qty_parse_json(v, id == PW_RES_CPU ? -3 : 0, &q) || q < 0) {
				const char *s = pw_json_scalar_str(v, buf, sizeof(buf));

				pw_seterr(err, errlen, "%s: bad quantity %s=\"%s\"", what,
					  v->string, s ? s : "?");
				return -EINVAL;
			}
			acc[id] = q;
			*mask |= 1u << id;
		}
	}
	return 0;
}

static int pw_container_req(struct pw_model *m, const cJSON *c, int64_t *acc, uint32_t *mask,
			    char *err, size_t errlen)
{
	const cJSON *res = pw_json_get(c, "resources");
	const char *cname = pw_json_get_str(c, "name");
	char what[96];

	if (!cJSON_IsObject(c)) {
		pw_seterr(err, errlen, "spec.containers: want objects");
		return -EINVAL;
	}
	snprintf(what, sizeof(what), "container %s", cname ? cname : "?");
	return pw_res_map(m, pw_json_get(res, "requests"), pw_json_get(res, "limits"), what, acc,
			  mask, err, errlen);
}

/*
 * Effective requests as the scheduler and kubelet compute them: the sum over
 * containers and restartable (sidecar) init containers, or the largest init
 * container plus the sidecars started before it, whichever is larger; plus
 * spec.overhead.
 */
static int pw_pod_requests(struct pw_model *m, const cJSON *spec, struct pw_pod *p, char *err,
			   size_t errlen)
{
	int64_t sum[PW_SCHED_MAX_RES] = { 0 }, side[PW_SCHED_MAX_RES] = { 0 },
		init_max[PW_SCHED_MAX_RES] = { 0 }, one[PW_SCHED_MAX_RES];
	const cJSON *c, *cs = pw_json_get(spec, "containers"),
			*ics = pw_json_get(spec, "initContainers");
	uint32_t mask = 0, cmask;
	int r;

	if ((cs && !cJSON_IsArray(cs)) || (ics && !cJSON_IsArray(ics) && !cJSON_IsNull(ics))) {
		pw_seterr(err, errlen, "spec.containers: want an array");
		return -EINVAL;
	}
	cJSON_ArrayForEach(c, ics)
	{
		const char *rp = pw_json_get_str(c, "restartPolicy");

		memset(one, 0, sizeof(one));
		cmask = 0;
		if ((r = pw_container_req(m, c, one, &cmask, err, errlen)))
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
		if ((r = pw_container_req(m, c, one, &cmask, err, errlen)))
			return r;
		mask |= cmask;
		for (unsigned i = 0; i < PW_SCHED_MAX_RES; i++)
			sum[i] += one[i];
	}
	memset(one, 0, sizeof(one));
	cmask = 0;
	r = pw_res_map(m, pw_json_get(spec, "overhead"), NULL, "spec.overhead", one, &cmask, err,
		       errlen);
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

static uint8_t pw_phase(const char *s)
{
	if (!s || !strcmp(s, "Pending"))
		return PW_PHASE_PENDING;
	if (!strcmp(s, "Running"))
		return PW_PHASE_RUNNING;
	if (!strcmp(s, "Succeeded"))
		return PW_PHASE_SUCCEEDED;
	if (!strcmp(s, "Failed"))
		return PW_PHASE_FAILED;
	return PW_PHASE_UNKNOWN;
}

/* The pod's latency requirement in µs; a bad value makes the pod invalid. */
static int pw_pod_latency(const struct pw_policy *pol, const cJSON *ann, struct pw_pod *p,
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
			pw_seterr(why, whylen,
				  "annotation %s=\"%s\": want a whole number of microseconds",
				  pol->latency_annotations[i], s ? s : "?");
			return -EINVAL;
		}
		p->max_lat_us = (uint32_t)us;
		return 0;
	}
	return 0;
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
	int r = 0;

	memset(p, 0, sizeof(*p));
	p->acct_node = -1;
	p->acct_path = -1;
	if (!cJSON_IsObject(obj) || !name || !*name) {
		pw_seterr(err, errlen, "pod without metadata.name");
		return -EINVAL;
	}
	if (!ns || !*ns)
		ns = "default";
	if (spec && !cJSON_IsObject(spec)) {
		pw_seterr(err, errlen, "pod %s/%s: spec: want an object", ns, name);
		return -EINVAL;
	}
	klen = strlen(ns) + strlen(name) + 2;
	p->key = malloc(klen);
	if (!p->key)
		return -ENOMEM;
	snprintf(p->key, klen, "%s/%s", ns, name);
	p->name = p->key + strlen(ns) + 1;
	p->ns = pw_xstrdup(ns, &oom);
	p->uid = pw_xstrdup(pw_json_get_str(meta, "uid"), &oom);
	p->rv = pw_xstrdup(pw_json_get_str(meta, "resourceVersion"), &oom);
	v = pw_json_get(meta, "deletionTimestamp");
	p->deleting = v && !cJSON_IsNull(v);
	p->sched_name = pw_xstrdup(pw_json_get_str(spec, "schedulerName")
					   ? pw_json_get_str(spec, "schedulerName")
					   : "default-scheduler",
				   &oom);
	if (pw_json_get_str(spec, "nodeName") && *pw_json_get_str(spec, "nodeName"))
		p->node_name = pw_xstrdup(pw_json_get_str(spec, "nodeName"), &oom);
	p->phase = pw_phase(pw_json_get_str(status, "phase"));
	if (oom)
		goto nomem;
	if (ann && !cJSON_IsObject(ann) && !cJSON_IsNull(ann)) {
		pw_seterr(why, sizeof(why), "metadata.annotations: want an object");
	} else {
		const cJSON *peer = pw_json_get(ann, m->pol->peer_annotation);
		const char *ps = peer ? pw_json_scalar_str(peer, buf, sizeof(buf)) : NULL;

		pw_pod_latency(m->pol, ann, p, why, sizeof(why));
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
			pw_seterr(why, sizeof(why), "annotation %s: want a pod name",
				  m->pol->peer_annotation);
		}
	}
	/* Structure errors below leave the pod unschedulable with the reason, not unknown. */
	if (!*why && (r = pw_pod_requests(m, spec, p, why, sizeof(why))) == -ENOMEM)
		goto nomem;
	if (!*why &&
	    (r = pw_tols_parse(pw_json_get(spec, "tolerations"), p, why, sizeof(why))) == -ENOMEM)
		goto nomem;
	if (!*why &&
	    (r = pw_parse_kvs(pw_json_get(spec, "nodeSelector"), &p->selector, &p->nselector,
			      "spec.nodeSelector", why, sizeof(why))) == -ENOMEM)
		goto nomem;
	if (!*why && (r = pw_affinity_parse(spec, p, why, sizeof(why))) == -ENOMEM)
		goto nomem;
	if (*why && !(p->invalid = strdup(why)))
		goto nomem;
	return 0;
nomem:
	pw_pod_clear(p);
	return -ENOMEM;
}

/* ---- insert, replace, delete ---- */

/*
 * Room for element @n of an array of capacity *cap (doubling). @arrp is the
 * address of the array pointer (the project builds with -fno-strict-aliasing).
 */
static int pw_grow(void *arrp, size_t elem, unsigned n, unsigned *cap)
{
	void **arr = arrp, *na;
	unsigned nc;

	if (n < *cap)
		return 0;
	nc = *cap ? *cap * 2 : 64;
	na = realloc(*arr, (size_t)nc * elem);
	if (!na)
		return -ENOMEM;
	*arr = na;
	*cap = nc;
	return 0;
}

static int pw_node_slot(struct pw_model *m)
{
	unsigned cap = m->cap_nodes;

	if (m->live_nodes < m->nnodes)
		for (unsigned i = 0; i < m->nnodes; i++)
			if (!m->nodes[i].name)
				return (int)i;
	if (pw_grow(&m->nodes, sizeof(*m->nodes), m->nnodes, &cap) ||
	    pw_grow(&m->hot, sizeof(*m->hot), m->nnodes, &m->cap_nodes))
		return -ENOMEM;
	memset(&m->nodes[m->nnodes], 0, sizeof(m->nodes[0]));
	m->hot[m->nnodes].flags = PW_HOT_FREE;
	return (int)m->nnodes++;
}

int pw_model_find_node(const struct pw_model *m, const char *name)
{
	return pw_map_find(&m->node_map, name);
}

int pw_model_find_pod(const struct pw_model *m, const char *ns, const char *name)
{
	char key[512];

	if ((size_t)snprintf(key, sizeof(key), "%s/%s", ns, name) >= sizeof(key))
		return -1;
	return pw_map_find(&m->pod_map, key);
}

int pw_model_put_node(struct pw_model *m, const cJSON *obj, char *err, size_t errlen)
{
	struct pw_node n;
	int r, ni;

	r = pw_node_parse(m, obj, &n, err, errlen);
	if (r)
		return r;
	ni = pw_map_find(&m->node_map, n.name);
	if (ni >= 0) {
		/* Replace: take back every charge, swap, charge again. */
		for (unsigned i = 0; i < m->npods; i++)
			if (m->pods[i].key && m->pods[i].acct_node == ni)
				pw_pod_charge(m, (int)i, -1);
		pw_map_del(&m->node_map, m->nodes[ni].name);
		pw_node_clear(&m->nodes[ni]);
	} else {
		ni = pw_node_slot(m);
		if (ni < 0) {
			pw_node_clear(&n);
			return ni;
		}
		m->live_nodes++;
	}
	m->nodes[ni] = n;
	m->gen++;
	r = pw_map_put(&m->node_map, m->nodes[ni].name, ni);
	if (r) {
		pw_node_clear(&m->nodes[ni]);
		m->live_nodes--;
		pw_hot_refresh(m, ni);
		return r;
	}
	pw_hot_refresh(m, ni);
	for (unsigned i = 0; i < m->npods; i++)
		if (m->pods[i].key && m->pods[i].node_name &&
		    !strcmp(m->pods[i].node_name, m->nodes[ni].name))
			pw_pod_charge(m, (int)i, +1);
	return ni;
}

int pw_model_del_node(struct pw_model *m, const char *name)
{
	int ni = pw_map_find(&m->node_map, name);

	if (ni < 0)
		return -ENOENT;
	for (unsigned i = 0; i < m->npods; i++)
		if (m->pods[i].key && m->pods[i].acct_node == ni)
			pw_pod_charge(m, (int)i, -1);
	pw_map_del(&m->node_map, m->nodes[ni].name);
	pw_node_clear(&m->nodes[ni]);
	m->live_nodes--;
	pw_hot_refresh(m, ni);
	return 0;
}

static int pw_pod_slot(struct pw_model *m)
{
	if (m->live_pods < m->npods)
		for (unsigned i = 0; i < m->npods; i++)
			if (!m->pods[i].key)
				return (int)i;
	if (pw_grow(&m->pods, sizeof(*m->pods), m->npods, &m->cap_pods))
		return -ENOMEM;
	memset(&m->pods[m->npods], 0, sizeof(m->pods[0]));
	return (int)m->npods++;
}

static int pw_peer_track(struct pw_model *m, int pi)
{
	for (unsigned i = 0; i < m->npeer_pods; i++)
		if (m->peer_pods[i] == pi)
			return 0;
	/* Drop entries whose pod is gone or lost its peer before growing. */
	unsigned k = 0;
	for (unsigned i = 0; i < m->npeer_pods; i++)
		if (m->pods[m->peer_pods[i]].key && m->pods[m->peer_pods[i]].peer)
			m->peer_pods[k++] = m->peer_pods[i];
	m->npeer_pods = k;
	if (pw_grow(&m->peer_pods, sizeof(*m->peer_pods), m->npeer_pods, &m->cap_peer_pods))
		return -ENOMEM;
	m->peer_pods[m->npeer_pods++] = pi;
	return 0;
}

int pw_model_put_pod(struct pw_model *m, const cJSON *obj, char *err, size_t errlen)
{
	struct pw_pod p;
	int r, pi;

	r = pw_pod_parse(m, obj, &p, err, errlen);
	if (r)
		return r;
	pi = pw_map_find(&m->pod_map, p.key);
	if (pi >= 0) {
		const struct pw_pod *o = &m->pods[pi];

		if ((!o->uid && !p.uid) || (o->uid && p.uid && !strcmp(o->uid, p.uid))) {
			p.attempts = o->attempts;
			p.retry_at_ns = o->retry_at_ns;
			p.failed_at_ns = o->failed_at_ns;
			p.fail_gen = o->fail_gen;
		}
		if (!o->node_name != !p.node_name || o->phase != p.phase)
			m->gen++;
		pw_pod_charge(m, pi, -1);
		pw_map_del(&m->pod_map, m->pods[pi].key);
		pw_pod_clear(&m->pods[pi]);
	} else {
		pi = pw_pod_slot(m);
		if (pi < 0) {
			pw_pod_clear(&p);
			return pi;
		}
		m->live_pods++;
		if (m->npeer_pods)
			m->gen++; /* a pending peer lets co-location start */
	}
	m->pods[pi] = p;
	r = pw_map_put(&m->pod_map, m->pods[pi].key, pi);
	if (!r && p.peer)
		r = pw_peer_track(m, pi);
	if (r) {
		pw_map_del(&m->pod_map, m->pods[pi].key);
		pw_pod_clear(&m->pods[pi]);
		m->pods[pi].key = NULL;
		m->live_pods--;
		return r;
	}
	pw_pod_charge(m, pi, +1);
	pw_recharge_peers_of(m, pi);
	return pi;
}

int pw_model_del_pod(struct pw_model *m, const char *ns, const char *name)
{
	int pi = pw_model_find_pod(m, ns, name);

	if (pi < 0)
		return -ENOENT;
	pw_pod_charge(m, pi, -1);
	m->gen++;
	/* Peers are re-charged while this pod is gone from the map. */
	pw_map_del(&m->pod_map, m->pods[pi].key);
	pw_recharge_peers_of(m, pi);
	pw_pod_clear(&m->pods[pi]);
	m->live_pods--;
	return 0;
}

int pw_model_bind(struct pw_model *m, int pi, int ni)
{
	struct pw_pod *p = &m->pods[pi];

	if (p->node_name)
		return -EEXIST;
	if (!(p->node_name = strdup(m->nodes[ni].name)))
		return -ENOMEM;
	pw_pod_charge(m, pi, +1);
	pw_recharge_peers_of(m, pi);
	if (m->npeer_pods)
		m->gen++; /* a pod waiting for this one as its peer may fit now */
	return 0;
}

int pw_model_unbind(struct pw_model *m, int pi)
{
	struct pw_pod *p = &m->pods[pi];

	if (!p->node_name)
		return -ENOENT;
	pw_pod_charge(m, pi, -1);
	free(p->node_name);
	p->node_name = NULL;
	pw_recharge_peers_of(m, pi);
	return 0;
}
