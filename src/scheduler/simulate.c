// SPDX-License-Identifier: MIT
/*
 * podwire-scheduler simulate: offline what-if. Places the pending pods of a
 * cluster file in file order, each decision applied to the model before the
 * next, and prints every decision with its reason.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cmd.h"

static const char pw_simulate_usage[] =
	"Usage: podwire-scheduler simulate --cluster FILE.json [OPTIONS]\n"
	"\n"
	"Place the pending pods of FILE.json as podwire-scheduler would, in the order\n"
	"they appear, each placement changing what the next pod finds; print every\n"
	"decision with its reason. Nothing is contacted.\n"
	"\n"
	"FILE.json is a v1 List whose items are Nodes and Pods (as `kubectl get\n"
	"nodes,pods -A -o json` prints), or {\"nodes\": [...], \"pods\": [...]}. Pods\n"
	"with spec.nodeName are already bound: they use their node's resources and\n"
	"devices. Pending pods (no nodeName, phase Pending) are considered when their\n"
	"spec.schedulerName is the scheduler's name, or all of them with --all.\n"
	"\n"
	"Options:\n"
	"  -c, --cluster FILE       the cluster (required)\n"
	"  -p, --policy FILE        policy JSON (also --config); default: built-in\n"
	"  -n, --scheduler-name N   pods of this scheduler (default: the policy's,\n"
	"                           podwire-scheduler)\n"
	"  -a, --all                consider every pending pod, whatever its scheduler\n"
	"  -j, --json               print a JSON array of {\"pod\":\"ns/name\",\n"
	"                           \"node\":\"name\"|null,\"reason\":\"...\"}\n"
	"  -s, --stats              print timing, decisions/s and peak RSS on stderr\n"
	"  -h, --help               this text\n"
	"\n"
	"Exit status: 0 when every decision was made (placed or not), 1 for bad\n"
	"input (the error names the file, item and field), 2 for bad usage.\n";

static double pw_secs(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static void pw_print_decision(const struct pw_model *m, const struct pw_pod *p,
			      const struct pw_decision *d, bool json, bool first)
{
	if (json) {
		cJSON *o = cJSON_CreateObject();
		char *s;

		if (!o)
			return;
		cJSON_AddStringToObject(o, "pod", p->key);
		if (d->node >= 0)
			cJSON_AddStringToObject(o, "node", m->nodes[d->node].name);
		else
			cJSON_AddNullToObject(o, "node");
		cJSON_AddStringToObject(o, "reason", d->reason);
		s = cJSON_PrintUnformatted(o);
		if (s)
			printf("%s%s", first ? "[\n  " : ",\n  ", s);
		free(s);
		cJSON_Delete(o);
		return;
	}
	printf("%s -> %s: %s\n", p->key, d->node >= 0 ? m->nodes[d->node].name : "(none)",
	       d->reason);
}

int pw_cmd_simulate(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "cluster", required_argument, NULL, 'c' },
		{ "policy", required_argument, NULL, 'p' },
		{ "config", required_argument, NULL, 'p' },
		{ "scheduler-name", required_argument, NULL, 'n' },
		{ "all", no_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'j' },
		{ "stats", no_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *cluster = NULL, *policy = NULL, *name = NULL;
	bool all = false, json = false, stats = false;
	struct pw_policy pol;
	struct pw_model m;
	struct pw_cluster c;
	struct timespec t0, t1, t2, t3;
	uint64_t decide_ns = 0;
	unsigned considered = 0, placed = 0;
	char err[PW_SCHED_ERRLEN];
	int opt, r, ret = 1;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "c:p:n:ajsh", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			cluster = optarg;
			break;
		case 'p':
			policy = optarg;
			break;
		case 'n':
			name = optarg;
			break;
		case 'a':
			all = true;
			break;
		case 'j':
			json = true;
			break;
		case 's':
			stats = true;
			break;
		case 'h':
			fputs(pw_simulate_usage, stdout);
			return 0;
		default:
			fputs(pw_simulate_usage, stderr);
			return 2;
		}
	}
	if (!cluster || optind != argc)
		return pw_cli_usage_error(
			"simulate", cluster ? "unexpected argument" : "--cluster FILE is required",
			pw_simulate_usage);
	if (pw_cli_model(&pol, &m, policy))
		return 1;
	if (!name)
		name = pol.scheduler_name;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = pw_cluster_load(&m, cluster, &c, err, sizeof(err));
	if (r) {
		fprintf(stderr, "podwire-scheduler: %s\n", r == -ENOMEM ? "out of memory" : err);
		goto out;
	}
	if (c.ignored)
		fprintf(stderr,
			"podwire-scheduler: %s: ignored %u items that are not Node or Pod\n",
			cluster, c.ignored);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	for (unsigned i = 0; i < c.norder; i++) {
		const struct pw_pod *p = &m.pods[c.order[i]];
		struct pw_decision d;
		struct timespec a, b;

		if (!pw_pod_pending(p) || (!all && strcmp(p->sched_name, name)))
			continue;
		clock_gettime(CLOCK_MONOTONIC, &a);
		pw_sched_place(&m, c.order[i], &d);
		if (d.node >= 0) {
			r = pw_model_bind(&m, c.order[i], d.node);
			if (r) {
				fprintf(stderr, "podwire-scheduler: %s: %s\n", p->key,
					strerror(-r));
				goto out_cluster;
			}
			placed++;
		}
		clock_gettime(CLOCK_MONOTONIC, &b);
		decide_ns += (uint64_t)(b.tv_sec - a.tv_sec) * 1000000000ull +
			     (uint64_t)(b.tv_nsec - a.tv_nsec);
		pw_print_decision(&m, p, &d, json, considered == 0);
		considered++;
	}
	if (json)
		fputs(considered ? "\n]\n" : "[]\n", stdout);
	clock_gettime(CLOCK_MONOTONIC, &t2);
	if (fflush(stdout) || ferror(stdout)) {
		fprintf(stderr, "podwire-scheduler: writing the output: %s\n", strerror(errno));
		goto out_cluster;
	}
	clock_gettime(CLOCK_MONOTONIC, &t3);
	if (stats) {
		struct rusage ru;
		double dec = (double)decide_ns / 1e9;

		getrusage(RUSAGE_SELF, &ru);
		fprintf(stderr,
			"simulate: %u nodes, %u pods, %u pending for %s: %u placed, %u "
			"unschedulable\n"
			"simulate: load %.3f s; decisions %.3f s = %.0f decisions/s; "
			"decisions with output %.3f s = %.0f/s; total %.3f s\n"
			"simulate: peak RSS %ld KiB\n",
			c.nodes, c.pods, considered, all ? "any scheduler" : name, placed,
			considered - placed, pw_secs(&t0, &t1), dec,
			dec > 0 ? considered / dec : 0.0, pw_secs(&t1, &t2),
			pw_secs(&t1, &t2) > 0 ? considered / pw_secs(&t1, &t2) : 0.0,
			pw_secs(&t0, &t3), ru.ru_maxrss);
	}
	ret = 0;
out_cluster:
	pw_cluster_free(&c);
out:
	pw_model_free(&m);
	pw_policy_free(&pol);
	return ret;
}
