/* SPDX-License-Identifier: MIT */
/*
 * The router's pod table: which network namespace holds which pod addresses,
 * as registered by the CNI plugin (PW_MSG_POD_ADD / PW_MSG_POD_DEL).
 */
#ifndef PW_ROUTER_PODS_H
#define PW_ROUTER_PODS_H

#include <stdint.h>
#include <sys/types.h>

#include "proto.h"

/*
 * Handle a pod-registry request (POD_ADD, POD_DEL or PODS) from the client on
 * @sock whose peer is process @pid of user @uid, and send the reply. @fd is
 * the netns that came with POD_ADD (borrowed: the table keeps its own copy),
 * -1 otherwise. Changes are refused (EPERM) unless the peer is uid 0 in the
 * router's own network namespace, where runtimes run CNI plugins: a pod
 * cannot register addresses, even its own.
 * Returns 0, or the error of sending the reply (the caller drops the client).
 */
int pw_pods_request(int sock, pid_t pid, uid_t uid, const struct pw_msg *m, int fd);

/* The netns fd of the pod that owns IPv4 address @addr (network order), or
 * -ENOENT. The fd stays the table's: do not close it. */
int pw_pods_netns(uint32_t addr);

/* Forget every pod (at shutdown). */
void pw_pods_clear(void);

#endif /* PW_ROUTER_PODS_H */
