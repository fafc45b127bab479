/* SPDX-License-Identifier: MIT */
/*
 * Shared by the model (model.c, map.c, object.c, account.c), the placement
 * code and the policy; not by the CLI.
 */
#ifndef PW_SCHED_MODEL_INT_H
#define PW_SCHED_MODEL_INT_H

#include "sched_model.h"

#define PW_PEER_NONE (-2) /* no peer, or the peer is not in the model */
#define PW_PEER_ANY  (-1) /* the peer is pending: co-location may start anywhere */

void pw_sched_err_set(char *err, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ---- the string map (map.c): key -> index, keys owned by the objects ---- */

/* FNV-1a of @s (the map's hash; tests use it to make collisions). */
uint32_t pw_map_hash(const char *s);
/* The index stored under @key, or -1. */
int pw_map_find(const struct pw_map *mp, const char *key);
/* Add @key -> @id; @key must not be there yet and must outlive its entry. The
 * table doubles (from 64) to stay at most half full. 0 or -ENOMEM. */
int pw_map_put(struct pw_map *mp, const char *key, int32_t id);
/* Remove @key if it is there. */
void pw_map_del(struct pw_map *mp, const char *key);
void pw_map_free(struct pw_map *mp);

/* ---- objects (object.c) ---- */

/* The value of node label @key, or NULL. */
const char *pw_node_label(const struct pw_node *n, const char *key);

/* ---- accounting (account.c) ---- */

/* Refresh the packed summary of node @ni (after a change to it or its charges). */
void pw_node_hot_refresh(struct pw_model *m, int ni);
/* Charge bound pod @pi to its node (@sign +1), or take the charge back (-1). */
void pw_pod_charge(struct pw_model *m, int pi, int sign);
/* Pods naming @pi as their peer may now need a different path: re-charge them. */
void pw_pod_peers_recharge(struct pw_model *m, int pi);
/* Best free network (not co-located) path of the node: its capability. */
uint32_t pw_node_cap_lat(const struct pw_model *m, const struct pw_node *n);
/* Where pod @p's peer is: a node index, PW_PEER_ANY (pending) or PW_PEER_NONE. */
int pw_peer_node(const struct pw_model *m, const struct pw_pod *p);
/* Latency of path @p on node @n (index @ni) for a pod whose peer is on @peer_node. */
uint32_t pw_path_lat_for(const struct pw_model *m, const struct pw_node *n, int ni, unsigned p,
			 int peer_node);
/*
 * The path a pod uses on a node: an explicitly requested device path, else a
 * non-scarce path meeting its latency, else a scarce one, the slowest that
 * meets in each case. @need_free skips scarce paths with no device left.
 * Returns the path index (-1: none) and in *@ret_count the devices it takes.
 */
int pw_path_choose(const struct pw_model *m, const struct pw_pod *pod, const struct pw_node *n,
		   int ni, int peer_node, bool need_free, int32_t *ret_count);

#endif /* PW_SCHED_MODEL_INT_H */
