// SPDX-License-Identifier: MIT
/*
 * Placement: filter every node (state, taints, selectors, latency path,
 * scarce devices, resources), then prefer the least capable node that still
 * meets the pod's latency, then a node with its peer, then the least loaded.
 * The scan reads the packed pw_node_hot array and looks at the full node
 * only when the pod or the node needs it, so 5,000 nodes cost microseconds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_int.h"

#define PW_FAIL_TAINTS 4 /* distinct taints named in a reason; more are "other" */

struct pw_fails {
	unsigned notready, unsched, selector, latency, pods;
	/* The taints that turned nodes away, by kind, as kube-scheduler names
	 * them ("untolerated taint {key: value}"). */
	struct {
		const struct pw_taint *t;
		unsigned n;
	} taints[PW_FAIL_TAINTS];
	unsigned ntaint_kinds, taint_other;
	unsigned pathfull[PW_SCHED_MAX_PATHS];
	unsigned res[PW_SCHED_MAX_RES];
	uint32_t lat_best;
};

static bool pw_pod_tolerates(const struct pw_pod *p, const char *key, const char *val,
			     uint8_t effect)
{
	for (unsigned i = 0; i < p->ntols; i++) {
		const struct pw_toleration *t = &p->tols[i];

		if (t->effect != PW_EFFECT_ANY && t->effect != effect)
			continue;
		if (!*t->key) {
			if (t->exists)
				return true; /* empty key + Exists tolerates everything */
			continue;
		}
		if (!strcmp(t->key, key) && (t->exists || !strcmp(t->val, val)))
			return true;
	}
	return false;
}

/* Count a node turned away by taint @t, under its kind. */
static void pw_fails_taint(struct pw_fails *f, const struct pw_taint *t)
{
	for (unsigned i = 0; i < f->ntaint_kinds; i++) {
		const struct pw_taint *u = f->taints[i].t;
		if (u->effect == t->effect && !strcmp(u->key, t->key) && !strcmp(u->val, t->val)) {
			f->taints[i].n++;
			return;
		}
	}
	if (f->ntaint_kinds == PW_FAIL_TAINTS) {
		f->taint_other++;
		return;
	}
	f->taints[f->ntaint_kinds].t = t;
	f->taints[f->ntaint_kinds++].n = 1;
}

/* Node conditions and taints, as kube-scheduler's NodeUnschedulable and TaintToleration. */
static int pw_node_state_check(const struct pw_pod *p, const struct pw_node *n, struct pw_fails *f)
{
	if (n->not_ready &&
	    !pw_pod_tolerates(p, "node.kubernetes.io/not-ready", "", PW_EFFECT_NOSCHEDULE)) {
		f->notready++;
		return -1;
	}
	if (n->unschedulable &&
	    !pw_pod_tolerates(p, "node.kubernetes.io/unschedulable", "", PW_EFFECT_NOSCHEDULE)) {
		f->unsched++;
		return -1;
	}
	for (unsigned i = 0; i < n->ntaints; i++) {
		const struct pw_taint *t = &n->taints[i];

		if (t->effect == PW_EFFECT_PREFER)
			continue;
		if (!pw_pod_tolerates(p, t->key, t->val, t->effect)) {
			pw_fails_taint(f, t);
			return -1;
		}
	}
	return 0;
}

static bool pw_ll_parse(const char *s, long long *v)
{
	char *end;

	if (!s || !*s)
		return false;
	*v = strtoll(s, &end, 10);
	return !*end;
}

static bool pw_selreq_match(const struct pw_selreq *rq, const struct pw_node *n)
{
	const char *v = rq->field ? (strcmp(rq->key, "metadata.name") ? NULL : n->name)
				  : pw_node_label(n, rq->key);
	long long a, b;
	bool in = false;

	for (unsigned i = 0; v && i < rq->nvals && !in; i++)
		in = !strcmp(v, rq->vals[i]);
	switch (rq->op) {
	case PW_SEL_IN:
		return in;
	case PW_SEL_NOTIN:
		return !in;
	case PW_SEL_EXISTS:
		return v != NULL;
	case PW_SEL_NOTEXIST:
		return v == NULL;
	case PW_SEL_GT:
	case PW_SEL_LT:
		if (!pw_ll_parse(v, &a) || !pw_ll_parse(rq->vals[0], &b))
			return false;
		return rq->op == PW_SEL_GT ? a > b : a < b;
	}
	return false;
}

/* spec.nodeSelector and required node affinity (terms ORed, requirements ANDed). */
static bool pw_selector_match(const struct pw_pod *p, const struct pw_node *n)
{
	for (unsigned i = 0; i < p->nselector; i++) {
		const char *v = pw_node_label(n, p->selector[i].key);

		if (!v || strcmp(v, p->selector[i].val) != 0)
			return false;
	}
	if (!p->has_affinity)
		return true;
	for (unsigned t = 0; t < p->naffinity; t++) {
		const struct pw_selterm *term = &p->affinity[t];
		bool ok = term->nreqs > 0; /* an empty term matches nothing */

		for (unsigned i = 0; ok && i < term->nreqs; i++)
			ok = pw_selreq_match(&term->reqs[i], n);
		if (ok)
			return true;
	}
	return false;
}

/*
 * The latency part of the filter. @cap_lat is the node's best free network
 * path; co-located paths count on the peer's node (or anywhere while the
 * peer is pending). On failure, says whether a full scarce path would have
 * met the requirement.
 */
static bool pw_node_latency_check(const struct pw_model *m, const struct pw_pod *p,
				  const struct pw_node *n, int ni, int peer, uint32_t cap_lat,
				  struct pw_fails *f)
{
	uint32_t r = p->max_lat_us, best = PW_LAT_NONE;
	int full = -1;

	if (r == PW_LAT_NONE || cap_lat <= r)
		return true;
	for (unsigned k = 0; k < m->pol->npaths; k++) {
		uint32_t lat = pw_path_lat_for(m, n, ni, k, peer);

		if (lat == PW_LAT_NONE)
			continue;
		if (lat <= r) {
			if (m->pol->paths[k].colocated)
				return true;
			full = (int)k; /* a network path that meets r but is full */
		}
		if (lat < best)
			best = lat;
	}
	if (full >= 0) {
		f->pathfull[full]++;
	} else {
		f->latency++;
		if (best < f->lat_best)
			f->lat_best = best;
	}
	return false;
}

/* Requests beyond cpu and memory, and devices asked for by name. */
static bool pw_node_other_check(const struct pw_model *m, const struct pw_pod *p,
				const struct pw_node *n, struct pw_fails *f)
{
	for (unsigned i = 0; i < p->nreq; i++) {
		const struct pw_req *rq = &p->req[i];

		if (rq->id == PW_RES_CPU || rq->id == PW_RES_MEMORY)
			continue;
		if (n->used[rq->id] + rq->v > n->alloc[rq->id]) {
			f->res[rq->id]++;
			return false;
		}
		for (unsigned k = 0; k < m->pol->npaths; k++) {
			const struct pw_node_path *np = &n->path[k];

			if (m->path_res[k] != rq->id || np->cap < 0)
				continue;
			if (np->used + rq->v > np->cap) {
				f->pathfull[k]++;
				return false;
			}
		}
	}
	return true;
}

static double pw_node_load(const struct pw_node_hot *h, const struct pw_pod *p)
{
	double l = 0;

	if (h->cpu_alloc > 0)
		l += (double)(h->cpu_used + p->cpu) / (double)h->cpu_alloc;
	if (h->mem_alloc > 0)
		l += (double)(h->mem_used + p->mem) / (double)h->mem_alloc;
	if (h->pods_alloc > 0)
		l += (double)(h->pods_used + 1) / (double)h->pods_alloc;
	return l;
}

#define PW_APPEND(buf, len, off, ...)                                                              \
	do {                                                                                       \
		if ((off) < (len))                                                                 \
			(off) += (size_t)snprintf((buf) + (off), (len) - (off), __VA_ARGS__);      \
	} while (0)

static void pw_decision_fail_explain(const struct pw_model *m, const struct pw_pod *p,
				     const struct pw_fails *f, unsigned total, char *buf,
				     size_t len)
{
	size_t off = 0;
	const char *sep = "";

	PW_APPEND(buf, len, off, "0/%u nodes fit", total);
	if (!total) {
		PW_APPEND(buf, len, off, ": no nodes");
		return;
	}
	PW_APPEND(buf, len, off, ":");
#define PW_ITEM(n, ...)                                                                            \
	do {                                                                                       \
		if (n) {                                                                           \
			PW_APPEND(buf, len, off, "%s %u ", sep, (n));                              \
			PW_APPEND(buf, len, off, __VA_ARGS__);                                     \
			sep = ",";                                                                 \
		}                                                                                  \
	} while (0)
	PW_ITEM(f->notready, "not ready");
	PW_ITEM(f->unsched, "unschedulable");
	for (unsigned i = 0; i < f->ntaint_kinds; i++) {
		const struct pw_taint *t = f->taints[i].t;
		PW_ITEM(f->taints[i].n, "untolerated taint {%s: %s}%s", t->key, t->val,
			t->effect == PW_EFFECT_NOEXECUTE ? " (NoExecute)" : "");
	}
	PW_ITEM(f->taint_other, "untolerated taint (others)");
	PW_ITEM(f->selector, "node selector/affinity mismatch");
	if (f->lat_best == PW_LAT_NONE)
		PW_ITEM(f->latency, "no path <= %uus", p->max_lat_us);
	else
		PW_ITEM(f->latency, "no path <= %uus (best %uus)", p->max_lat_us, f->lat_best);
	for (unsigned k = 0; k < m->pol->npaths; k++)
		PW_ITEM(f->pathfull[k], "no free %s", m->pol->paths[k].name);
	PW_ITEM(f->pods, "too many pods");
	for (unsigned i = 0; i < m->nres; i++)
		PW_ITEM(f->res[i], "insufficient %s", m->res[i]);
#undef PW_ITEM
}

static void pw_decision_ok_explain(const struct pw_model *m, const struct pw_pod *p, int ni,
				   int peer, unsigned feasible, unsigned total,
				   struct pw_decision *d)
{
	const struct pw_node *n = &m->nodes[ni];
	size_t off = 0, len = sizeof(d->reason);
	int32_t count;
	int k = pw_path_choose(m, p, n, ni, peer, true, &count);

	d->path = k;
	if (k < 0)
		PW_APPEND(d->reason, len, off, "no latency requirement");
	else if (p->max_lat_us == PW_LAT_NONE)
		PW_APPEND(d->reason, len, off, "no latency requirement, path %s",
			  m->pol->paths[k].name);
	else
		PW_APPEND(d->reason, len, off, "path %s %uus <= %uus", m->pol->paths[k].name,
			  pw_path_lat_for(m, n, ni, (unsigned)k, peer), p->max_lat_us);
	if (k >= 0 && count > 0)
		PW_APPEND(d->reason, len, off, ", %s %d/%d in use", m->pol->paths[k].name,
			  n->path[k].used + count, n->path[k].cap);
	if (peer == ni && p->peer)
		PW_APPEND(d->reason, len, off, ", with peer %s", p->peer);
	else if (peer == PW_PEER_ANY && k >= 0 && m->pol->paths[k].colocated)
		PW_APPEND(d->reason, len, off, ", for pending peer %s", p->peer);
	PW_APPEND(d->reason, len, off, "; %u/%u nodes fit", feasible, total);
}

int pw_sched_place(struct pw_model *m, int pi, struct pw_decision *d)
{
	const struct pw_pod *p = &m->pods[pi];
	struct pw_fails f;
	int best = -1, peer;
	uint32_t best_cap = 0;
	bool best_colo = false, slow_pod;
	double best_load = 0;
	unsigned total = 0;

	memset(d, 0, sizeof(*d));
	d->node = d->path = -1;
	if (p->invalid) {
		snprintf(d->reason, sizeof(d->reason), "invalid pod: %s", p->invalid);
		return 0;
	}
	memset(&f, 0, sizeof(f));
	f.lat_best = PW_LAT_NONE;
	peer = pw_peer_node(m, p);
	slow_pod = p->nselector || p->has_affinity;
	for (unsigned i = 0; i < m->nnodes; i++) {
		const struct pw_node_hot *h = &m->hot[i];
		const struct pw_node *n = &m->nodes[i];

		if (h->flags & PW_HOT_FREE)
			continue;
		total++;
		if ((h->flags & PW_HOT_SLOW) && pw_node_state_check(p, n, &f))
			continue;
		if (slow_pod && !pw_selector_match(p, n)) {
			f.selector++;
			continue;
		}
		if (!pw_node_latency_check(m, p, n, (int)i, peer, h->cap_lat, &f))
			continue;
		if (h->pods_used + 1 > h->pods_alloc) {
			f.pods++;
			continue;
		}
		if (p->cpu && h->cpu_used + p->cpu > h->cpu_alloc) {
			f.res[PW_RES_CPU]++;
			continue;
		}
		if (p->mem && h->mem_used + p->mem > h->mem_alloc) {
			f.res[PW_RES_MEMORY]++;
			continue;
		}
		if (p->other_req && !pw_node_other_check(m, p, n, &f))
			continue;
		d->feasible++;

		bool colo = peer == (int)i;
		double load = pw_node_load(h, p);

		if (best >= 0) {
			if (h->cap_lat != best_cap) {
				if (h->cap_lat < best_cap)
					continue;
			} else if (colo != best_colo) {
				if (!colo)
					continue;
			} else if (load >= best_load) {
				continue;
			}
		}
		best = (int)i;
		best_cap = h->cap_lat;
		best_colo = colo;
		best_load = load;
	}
	if (best < 0) {
		size_t off;

		pw_decision_fail_explain(m, p, &f, total, d->reason, sizeof(d->reason));
		off = strlen(d->reason);
		if (p->peer && peer >= 0)
			PW_APPEND(d->reason, sizeof(d->reason), off, "; peer %s is on %s", p->peer,
				  m->nodes[peer].name);
		else if (p->peer)
			PW_APPEND(d->reason, sizeof(d->reason), off, "; peer %s %s", p->peer,
				  peer == PW_PEER_ANY ? "is pending" : "not found");
		return 0;
	}
	d->node = best;
	pw_decision_ok_explain(m, p, best, peer, d->feasible, total, d);
	return 0;
}

bool pw_sched_check_node(struct pw_model *m, const struct pw_pod *pod, const struct pw_node *n,
			 int ni, char *why, size_t whylen, uint32_t *cap_lat)
{
	struct pw_fails f;
	int peer;

	*cap_lat = pw_node_cap_lat(m, n);
	if (pod->invalid) {
		snprintf(why, whylen, "invalid pod: %s", pod->invalid);
		return false;
	}
	memset(&f, 0, sizeof(f));
	f.lat_best = PW_LAT_NONE;
	peer = pw_peer_node(m, pod);
	/* Devices asked for by name; kube-scheduler checks the other resources. */
	for (unsigned i = 0; i < pod->nreq; i++)
		for (unsigned k = 0; k < m->pol->npaths; k++) {
			const struct pw_node_path *np = &n->path[k];

			if (m->path_res[k] != pod->req[i].id || np->cap < 0)
				continue;
			if (np->used + pod->req[i].v > np->cap) {
				snprintf(why, whylen, "no free %s (%d/%d in use)",
					 m->pol->paths[k].name, np->used, np->cap);
				return false;
			}
		}
	if (pw_node_latency_check(m, pod, n, ni, peer, *cap_lat, &f))
		return true;
	for (unsigned k = 0; k < m->pol->npaths; k++)
		if (f.pathfull[k]) {
			snprintf(why, whylen, "no free %s (%d/%d in use)", m->pol->paths[k].name,
				 n->path[k].used, n->path[k].cap);
			return false;
		}
	if (f.lat_best == PW_LAT_NONE)
		snprintf(why, whylen, "no path <= %uus", pod->max_lat_us);
	else
		snprintf(why, whylen, "no path <= %uus (best %uus)", pod->max_lat_us, f.lat_best);
	return false;
}

int pw_sched_peer_node(const struct pw_model *m, const struct pw_pod *p)
{
	return pw_peer_node(m, p);
}
