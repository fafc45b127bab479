// SPDX-License-Identifier: MIT
/*
 * Accounting: what a bound pod charges to its node (its requests, a pod
 * slot, and the scarce devices of the path it uses, which may depend on where
 * its peer runs) and the packed per-node summary the placement scan reads.
 */
#include <string.h>

#include "model_int.h"

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

void pw_node_hot_refresh(struct pw_model *m, int ni)
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
		   int ni, int peer_node, bool need_free, int32_t *ret_count)
{
	int best = -1;
	bool best_scarce = true;
	uint32_t best_lat = 0;

	*ret_count = 0;
	/* An explicit request for a path's devices names the path. */
	for (unsigned p = 0; p < m->pol->npaths; p++) {
		int64_t v = m->path_res[p] >= 0 ? pw_pod_req(pod, m->path_res[p]) : 0;

		if (v > 0) {
			*ret_count = (int32_t)(v > INT32_MAX ? INT32_MAX : v);
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
		*ret_count = 1;
	return best;
}

void pw_pod_charge(struct pw_model *m, int pi, int sign)
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
	pw_node_hot_refresh(m, ni);
}

/* Pods naming @pi as their peer may now need a different path. */
void pw_pod_peers_recharge(struct pw_model *m, int pi)
{
	const char *key = m->pods[pi].key;

	for (unsigned i = 0; i < m->npeer_pods; i++) {
		int q = m->peer_pods[i];

		if (q == pi || !m->pods[q].key || !m->pods[q].peer || m->pods[q].acct_node < 0 ||
		    strcmp(m->pods[q].peer, key) != 0)
			continue;
		pw_pod_charge(m, q, -1);
		pw_pod_charge(m, q, +1);
	}
}
