/* SPDX-License-Identifier: MIT */
/* Shared between the model, the placement code and the policy (not the CLI). */
#ifndef PW_SCHED_MODEL_INT_H
#define PW_SCHED_MODEL_INT_H

#include "sched_model.h"

#define PW_PEER_NONE (-2) /* no peer, or the peer is not in the model */
#define PW_PEER_ANY  (-1) /* the peer is pending: co-location may start anywhere */

void pw_seterr(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
const char *pw_node_label(const struct pw_node *n, const char *key);
/* Best free network (not co-located) path of the node: its capability. */
uint32_t pw_node_cap_lat(const struct pw_model *m, const struct pw_node *n);
int pw_peer_node(const struct pw_model *m, const struct pw_pod *p);
/* Latency of path @p on node @n (index @ni) for a pod whose peer is on @peer_node. */
uint32_t pw_path_lat_for(const struct pw_model *m, const struct pw_node *n, int ni, unsigned p,
			 int peer_node);
/*
 * The path a pod uses on a node: an explicitly requested device path, else a
 * non-scarce path meeting its latency, else a scarce one, the slowest that
 * meets in each case. @need_free skips scarce paths with no device left.
 * Returns the path index (-1: none) and in @count the devices it takes.
 */
int pw_path_choose(const struct pw_model *m, const struct pw_pod *pod, const struct pw_node *n,
		   int ni, int peer_node, bool need_free, int32_t *count);

#endif /* PW_SCHED_MODEL_INT_H */
