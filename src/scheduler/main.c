// SPDX-License-Identifier: MIT
/*
 * podwire-scheduler: latency-aware placement of pods on nodes whose data path
 * (DPDK, SR-IOV, OvS-DPDK, kernel, podwire shared memory) meets each pod's
 * latency requirement. Subcommands: run, simulate, extender, policy.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

static const char pw_usage[] =
	"Usage: podwire-scheduler COMMAND [OPTIONS]\n"
	"\n"
	"A Kubernetes scheduler that binds each pod to a node whose data path meets\n"
	"the pod's latency requirement (annotation podwire.io/max-latency-us, or seed\n"
	"000's `latency`, in microseconds), preferring the least capable node that\n"
	"does, so scarce DPDK interfaces and SR-IOV VFs go to pods that need them.\n"
	"\n"
	"Commands:\n"
	"  run        schedule pods of schedulerName podwire-scheduler on a live\n"
	"             cluster (list+watch, bind, events, leader election), and\n"
	"             optionally serve kube-scheduler's extender API\n"
	"  simulate   place the pending pods of a cluster file offline, with reasons\n"
	"  extender   serve the extender API without an API server (testing)\n"
	"  policy     print the effective policy as JSON (defaults or --policy FILE)\n"
	"  help       this text; `podwire-scheduler COMMAND --help` for a command's\n"
	"\n"
	"See docs/SCHEDULER.md for the annotation and label vocabulary and the policy.\n";

static int pw_cmd_policy(int argc, char **argv)
{
	struct pw_policy pol;
	const char *path = NULL;
	cJSON *j;
	char *s;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			puts("Usage: podwire-scheduler policy [--policy FILE]\n\n"
			     "Print the effective policy (the defaults merged with FILE) as JSON.");
			return 0;
		}
		if ((!strcmp(argv[i], "--policy") || !strcmp(argv[i], "--config")) &&
		    i + 1 < argc) {
			path = argv[++i];
			continue;
		}
		fprintf(stderr, "podwire-scheduler policy: unexpected argument %s\n", argv[i]);
		return 2;
	}
	if (pw_cli_policy(&pol, path))
		return 1;
	j = pw_policy_to_json(&pol);
	s = j ? cJSON_Print(j) : NULL;
	if (s)
		puts(s);
	free(s);
	cJSON_Delete(j);
	pw_policy_free(&pol);
	return s ? 0 : 1;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} cmds[] = {
		{ "run", pw_cmd_run },
		{ "simulate", pw_cmd_simulate },
		{ "extender", pw_cmd_extender },
		{ "policy", pw_cmd_policy },
	};

	if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "--help") ||
	    !strcmp(argv[1], "-h")) {
		fputs(pw_usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(argv[1], cmds[i].name))
			return cmds[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "podwire-scheduler: unknown command \"%s\"\n\n%s", argv[1], pw_usage);
	return 2;
}
