// SPDX-License-Identifier: MIT
/*
 * The cluster model's store: nodes and pods in arrays named by index (a freed
 * slot is reused), found through string maps, replaced in place when an
 * object changes, and charged to their node through account.c.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_int.h"

void pw_sched_err_set(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!err || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

char *pw_sched_strdup(const char *s, bool *oom)
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
	pw_map_free(&m->node_map);
	pw_map_free(&m->pod_map);
	free(m->peer_pods);
	memset(m, 0, sizeof(*m));
}

/* ---- insert, replace, delete ---- */

/*
 * Room for element @n of an array of capacity *cap (doubling). @arrp is the
 * address of the array pointer (the project builds with -fno-strict-aliasing).
 */
static int pw_array_grow(void *arrp, size_t elem, unsigned n, unsigned *cap)
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
	if (pw_array_grow(&m->nodes, sizeof(*m->nodes), m->nnodes, &cap) ||
	    pw_array_grow(&m->hot, sizeof(*m->hot), m->nnodes, &m->cap_nodes))
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

/* Node @ni leaves the model: the charges of its pods go back, its slot is freed. */
static void pw_node_remove(struct pw_model *m, int ni)
{
	for (unsigned i = 0; i < m->npods; i++)
		if (m->pods[i].key && m->pods[i].acct_node == ni)
			pw_pod_charge(m, (int)i, -1);
	pw_map_del(&m->node_map, m->nodes[ni].name);
	pw_node_clear(&m->nodes[ni]);
	m->live_nodes--;
	pw_node_hot_refresh(m, ni);
}

int pw_model_put_node(struct pw_model *m, const cJSON *obj, char *err, size_t errlen)
{
	struct pw_node n;
	int r, ni;

	r = pw_node_parse(m, obj, &n, err, errlen);
	if (r)
		return r;
	/* Replace: take back every charge, swap, charge again. */
	ni = pw_map_find(&m->node_map, n.name);
	if (ni >= 0)
		pw_node_remove(m, ni);
	else
		ni = pw_node_slot(m);
	if (ni < 0) {
		pw_node_clear(&n);
		return ni;
	}
	m->live_nodes++;
	m->nodes[ni] = n;
	m->gen++;
	r = pw_map_put(&m->node_map, m->nodes[ni].name, ni);
	if (r) {
		pw_node_remove(m, ni);
		return r;
	}
	pw_node_hot_refresh(m, ni);
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
	pw_node_remove(m, ni);
	return 0;
}

static int pw_pod_slot(struct pw_model *m)
{
	if (m->live_pods < m->npods)
		for (unsigned i = 0; i < m->npods; i++)
			if (!m->pods[i].key)
				return (int)i;
	if (pw_array_grow(&m->pods, sizeof(*m->pods), m->npods, &m->cap_pods))
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
	if (pw_array_grow(&m->peer_pods, sizeof(*m->peer_pods), m->npeer_pods, &m->cap_peer_pods))
		return -ENOMEM;
	m->peer_pods[m->npeer_pods++] = pi;
	return 0;
}

/*
 * Pod @pi leaves the model: its charge goes back, the pods naming it as their
 * peer are re-charged while it is gone from the map, its slot is freed.
 */
static void pw_pod_remove(struct pw_model *m, int pi)
{
	pw_pod_charge(m, pi, -1);
	pw_map_del(&m->pod_map, m->pods[pi].key);
	pw_pod_peers_recharge(m, pi);
	pw_pod_clear(&m->pods[pi]);
	m->live_pods--;
}

/* A new version @p of pod @o: the same pod (uid) keeps its retry state. */
static void pw_pod_update(struct pw_model *m, struct pw_pod *o, struct pw_pod *p)
{
	if ((!o->uid && !p->uid) || (o->uid && p->uid && !strcmp(o->uid, p->uid))) {
		p->attempts = o->attempts;
		p->retry_at_ns = o->retry_at_ns;
		p->failed_at_ns = o->failed_at_ns;
		p->fail_gen = o->fail_gen;
		p->fail_event = o->fail_event; /* moved: @o is cleared next */
		p->fail_event_n = o->fail_event_n;
		o->fail_event = NULL;
	}
	if (!o->node_name != !p->node_name || o->phase != p->phase)
		m->gen++;
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
		pw_pod_update(m, &m->pods[pi], &p);
		pw_pod_remove(m, pi);
	} else {
		pi = pw_pod_slot(m);
		if (pi < 0) {
			pw_pod_clear(&p);
			return pi;
		}
		if (m->npeer_pods)
			m->gen++; /* a pending peer lets co-location start */
	}
	m->live_pods++;
	m->pods[pi] = p;
	r = pw_map_put(&m->pod_map, m->pods[pi].key, pi);
	if (!r && p.peer)
		r = pw_peer_track(m, pi);
	if (r) {
		pw_pod_remove(m, pi);
		return r;
	}
	pw_pod_charge(m, pi, +1);
	pw_pod_peers_recharge(m, pi);
	return pi;
}

int pw_model_del_pod(struct pw_model *m, const char *ns, const char *name)
{
	int pi = pw_model_find_pod(m, ns, name);

	if (pi < 0)
		return -ENOENT;
	m->gen++;
	pw_pod_remove(m, pi);
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
	pw_pod_peers_recharge(m, pi);
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
	pw_pod_peers_recharge(m, pi);
	return 0;
}
