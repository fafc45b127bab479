// SPDX-License-Identifier: MIT
/*
 * What podwire-scheduler's subcommands share on the command line: a table
 * of options parsed in one place, the policy and the model they start from,
 * the log level and the usage errors.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "log.h"

/* getopt_long's value for table entry @i when it has no short option. */
#define PW_CLI_LONG 256

static int pw_cli_opt_apply(const struct pw_cli_opt *o, const char *arg)
{
	char *end;
	int v;

	switch (o->kind) {
	case PW_CLI_STR:
		*(const char **)o->dst = arg;
		return 0;
	case PW_CLI_FLAG:
		*(bool *)o->dst = true;
		return 0;
	case PW_CLI_INT:
		v = (int)strtol(arg, &end, 10);
		*(int *)o->dst = v;
		if (*end || v < o->min || v > o->max) {
			fprintf(stderr, "podwire-scheduler: --%s: want %d..%d\n", o->name, o->min,
				o->max);
			return 2;
		}
		return 0;
	case PW_CLI_LOG_LEVEL:
		return pw_cli_log_level(arg);
	}
	return 2;
}

int pw_cli_parse(int argc, char **argv, const struct pw_cli_opt *opts, size_t n, const char *usage)
{
	struct option lo[PW_CLI_MAX_OPTS + 2];
	char so[2 * PW_CLI_MAX_OPTS + 2], *s = so;
	int opt, r;

	if (n > PW_CLI_MAX_OPTS)
		return 2;
	for (size_t i = 0; i < n; i++) {
		int has_arg = opts[i].kind == PW_CLI_FLAG ? no_argument : required_argument;

		lo[i] = (struct option){ opts[i].name, has_arg, NULL,
					 opts[i].key ? opts[i].key : PW_CLI_LONG + (int)i };
		if (opts[i].key) {
			*s++ = opts[i].key;
			if (has_arg == required_argument)
				*s++ = ':';
		}
	}
	lo[n] = (struct option){ "help", no_argument, NULL, 'h' };
	lo[n + 1] = (struct option){ 0 };
	*s++ = 'h';
	*s = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, so, lo, NULL)) != -1) {
		const struct pw_cli_opt *o = NULL;

		if (opt == 'h') {
			fputs(usage, stdout);
			return -1;
		}
		for (size_t i = 0; i < n && !o; i++)
			if (opt == (opts[i].key ? opts[i].key : PW_CLI_LONG + (int)i))
				o = &opts[i];
		if (!o) {
			fputs(usage, stderr);
			return 2;
		}
		r = pw_cli_opt_apply(o, optarg);
		if (r)
			return r;
	}
	return 0;
}

int pw_cli_policy(struct pw_policy *pol, const char *path)
{
	char err[PW_SCHED_ERRLEN];
	int r;

	if (!path)
		r = pw_policy_default(pol);
	else
		r = pw_policy_load(pol, path, err, sizeof(err));
	if (r) {
		fprintf(stderr, "podwire-scheduler: %s\n", path ? err : strerror(-r));
		return -1;
	}
	return 0;
}

int pw_cli_model(struct pw_policy *pol, struct pw_model *m, const char *policy_path)
{
	if (pw_cli_policy(pol, policy_path))
		return -1;
	if (pw_model_init(m, pol)) {
		fprintf(stderr, "podwire-scheduler: out of memory\n");
		pw_policy_free(pol);
		return -1;
	}
	return 0;
}

int pw_cli_log_level(const char *arg)
{
	int lvl = pw_log_parse(arg);

	if (lvl < 0) {
		fprintf(stderr,
			"podwire-scheduler: --log-level: want error, warn, info or debug\n");
		return 2;
	}
	pw_log_max = (enum pw_log_level)lvl;
	return 0;
}

int pw_cli_usage_error(const char *cmd, const char *msg, const char *usage)
{
	fprintf(stderr, "podwire-scheduler %s: %s\n\n%s", cmd, msg, usage);
	return 2;
}

static atomic_int pw_cli_signal;

static void pw_cli_on_signal(int sig)
{
	atomic_store(&pw_cli_signal, sig);
}

void pw_cli_signals_catch(void)
{
	struct sigaction sa = { .sa_handler = pw_cli_on_signal };

	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
}

int pw_cli_signal_caught(void)
{
	return atomic_load(&pw_cli_signal);
}
