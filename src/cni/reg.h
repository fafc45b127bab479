/* SPDX-License-Identifier: MIT */
/* podwire-cni's side of the pod registry in podwired (PW_MSG_POD_*). */
#ifndef PW_CNI_REG_H
#define PW_CNI_REG_H

#include <podwire/wire.h>

/*
 * Register @pod, whose network namespace is @netns, with the router at @path.
 * Errors: -ECONNREFUSED no router there (even if the socket file is missing);
 * -ETIMEDOUT no answer; the
 * router's refusal (-EPERM not uid 0, -EADDRNOTAVAIL an address is not on the
 * interface, -EINVAL); other errors of the exchange.
 */
int pw_reg_add(const char *path, const struct pw_wire_pod *pod, int netns);

/* Unregister. Errors as pw_reg_add(), and -ENOENT: the router does not know
 * the pod. */
int pw_reg_del(const char *path, const struct pw_wire_pod_key *key);

/*
 * Look @key up in the router's pod list; the registration goes to *@ret.
 * Errors: -ENOENT not registered; -ERANGE not in the first page of a very
 * long list (cannot tell); errors of the exchange.
 */
int pw_reg_find(const char *path, const struct pw_wire_pod_key *key, struct pw_wire_pod *ret);

#endif /* PW_CNI_REG_H */
