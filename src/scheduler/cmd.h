/* SPDX-License-Identifier: MIT */
/* podwire-scheduler's subcommands and what they share. */
#ifndef PW_SCHED_CMD_H
#define PW_SCHED_CMD_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "sched_model.h"

#define PW_SCHED_DEFAULT_NAME "podwire-scheduler"

int pw_cmd_simulate(int argc, char **argv);
int pw_cmd_run(int argc, char **argv);
int pw_cmd_extender(int argc, char **argv);

/* Nodes and pods of a cluster file, stored in @m; pod indices in file order. */
struct pw_cluster {
	unsigned nodes, pods, ignored;
	int32_t *order;
	unsigned norder;
};

/*
 * Load a `v1` List (items of kind Node/Pod) or {"nodes":[...],"pods":[...]}.
 * Nodes go in first so that bound pods are charged whatever the order.
 * Returns 0, or -errno with a message in @err (malformed JSON, duplicates...).
 */
int pw_cluster_load(struct pw_model *m, const char *path, struct pw_cluster *c, char *err,
		    size_t errlen);
void pw_cluster_free(struct pw_cluster *c);

/* The policy from @path or the defaults; prints the error. 0 or -1. */
int pw_cli_policy(struct pw_policy *pol, const char *path);
/* That, and an empty model on it. 0 or -1 (both freed). */
int pw_cli_model(struct pw_policy *pol, struct pw_model *m, const char *policy_path);
/* Apply --log-level's argument: 0, or 2 after a message. */
int pw_cli_log_level(const char *arg);
/* "podwire-scheduler CMD: MSG" and the usage on stderr; returns 2. */
int pw_cli_usage_error(const char *cmd, const char *msg, const char *usage);

/*
 * The extender's HTTP server (libmicrohttpd, its own thread). It reads the
 * model under @lock. @bind (NULL: /bind answers an error) binds through the
 * API server and charges the model; it is called with @lock NOT held.
 */
typedef int (*pw_ext_bind_fn)(void *arg, const char *ns, const char *name, const char *uid,
			      const char *node, char *err, size_t errlen);

struct pw_ext;
int pw_ext_start(const char *listen, struct pw_model *m, pthread_mutex_t *lock, pw_ext_bind_fn bind,
		 void *bind_arg, struct pw_ext **out);
void pw_ext_stop(struct pw_ext *e);

#endif /* PW_SCHED_CMD_H */
