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

/* ---- the command line (cli.c) ---- */

enum pw_cli_kind {
	PW_CLI_STR,	  /* *(const char **)dst = the argument */
	PW_CLI_FLAG,	  /* *(bool *)dst = true; no argument */
	PW_CLI_INT,	  /* *(int *)dst = the argument, a whole number min..max */
	PW_CLI_LOG_LEVEL, /* the argument sets the log level (pw_cli_log_level) */
};

/* One option of a subcommand; -h/--help comes with every table. */
struct pw_cli_opt {
	const char *name; /* the long option */
	char key;	  /* the short option; 0: none */
	enum pw_cli_kind kind;
	void *dst;
	int min, max; /* PW_CLI_INT */
};

/* An entry of kind STR, FLAG or LOG_LEVEL. */
#define PW_CLI_OPT(n, k, kd, d)                                                                    \
	{                                                                                          \
		.name = (n), .key = (k), .kind = (kd), .dst = (d)                                  \
	}

#define PW_CLI_MAX_OPTS 24

/*
 * Parse @argv by the @n options of @opts. Returns 0; -1 after --help (the
 * usage on stdout: exit 0); 2 after an error on stderr (getopt's, then
 * @usage for an unknown option or a missing argument).
 */
int pw_cli_parse(int argc, char **argv, const struct pw_cli_opt *opts, size_t n, const char *usage);
/* The policy from @path or the defaults; prints the error. 0 or -1. */
int pw_cli_policy(struct pw_policy *pol, const char *path);
/* That, and an empty model on it. 0 or -1 (both freed). */
int pw_cli_model(struct pw_policy *pol, struct pw_model *m, const char *policy_path);
/* Apply --log-level's argument: 0, or 2 after a message. */
int pw_cli_log_level(const char *arg);
/* "podwire-scheduler CMD: MSG" and the usage on stderr; returns 2. */
int pw_cli_usage_error(const char *cmd, const char *msg, const char *usage);
/* Record SIGTERM and SIGINT (see pw_cli_signal_caught); ignore SIGPIPE. */
void pw_cli_signals_catch(void);
/* The SIGTERM or SIGINT that arrived, or 0. */
int pw_cli_signal_caught(void);

/*
 * The extender's HTTP server (libmicrohttpd, its own thread). It reads the
 * model under @lock. @bind (NULL: /bind answers an error) binds through the
 * API server and charges the model; it is called with @lock NOT held.
 */
typedef int (*pw_ext_bind_fn)(void *arg, const char *ns, const char *name, const char *uid,
			      const char *node, char *err, size_t errlen);

struct pw_ext;
int pw_ext_start(const char *listen, struct pw_model *m, pthread_mutex_t *lock, pw_ext_bind_fn bind,
		 void *bind_arg, struct pw_ext **ret_e);
void pw_ext_stop(struct pw_ext *e);

#endif /* PW_SCHED_CMD_H */
