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

#include "cmd.h"
#include "util.h"

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

struct pw_sim {
	const char *cluster, *policy, *name;
	bool all, json, stats;
	struct pw_model m;
	struct pw_cluster c;
	uint64_t t0, t1, t2, t3, decide_ns; /* start, loaded, decided, output flushed */
	unsigned considered, placed;
};

static double pw_sim_secs(uint64_t from, uint64_t to)
{
	return (double)(to - from) / 1e9;
}

static void pw_sim_decision_print(const struct pw_model *m, const struct pw_pod *p,
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

/* Place the pending pods in file order, each placement applied. 0 or -1. */
static int pw_sim_place(struct pw_sim *s)
{
	for (unsigned i = 0; i < s->c.norder; i++) {
		const struct pw_pod *p = &s->m.pods[s->c.order[i]];
		struct pw_decision d;
		uint64_t a;
		int r;

		if (!pw_pod_pending(p) || (!s->all && strcmp(p->sched_name, s->name) != 0))
			continue;
		a = pw_now_ns();
		pw_sched_place(&s->m, s->c.order[i], &d);
		if (d.node >= 0) {
			r = pw_model_bind(&s->m, s->c.order[i], d.node);
			if (r) {
				fprintf(stderr, "podwire-scheduler: %s: %s\n", p->key,
					strerror(-r));
				return -1;
			}
			s->placed++;
		}
		s->decide_ns += pw_now_ns() - a;
		pw_sim_decision_print(&s->m, p, &d, s->json, s->considered == 0);
		s->considered++;
	}
	if (s->json)
		fputs(s->considered ? "\n]\n" : "[]\n", stdout);
	return 0;
}

static void pw_sim_stats(const struct pw_sim *s)
{
	double dec = (double)s->decide_ns / 1e9, out = pw_sim_secs(s->t1, s->t2);
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	fprintf(stderr,
		"simulate: %u nodes, %u pods, %u pending for %s: %u placed, %u "
		"unschedulable\n"
		"simulate: load %.3f s; decisions %.3f s = %.0f decisions/s; "
		"decisions with output %.3f s = %.0f/s; total %.3f s\n"
		"simulate: peak RSS %ld KiB\n",
		s->c.nodes, s->c.pods, s->considered, s->all ? "any scheduler" : s->name, s->placed,
		s->considered - s->placed, pw_sim_secs(s->t0, s->t1), dec,
		dec > 0 ? s->considered / dec : 0.0, out, out > 0 ? s->considered / out : 0.0,
		pw_sim_secs(s->t0, s->t3), ru.ru_maxrss);
}

int pw_cmd_simulate(int argc, char **argv)
{
	struct pw_sim sim = { 0 }, *s = &sim;
	const struct pw_cli_opt opts[] = {
		PW_CLI_OPT("cluster", 'c', PW_CLI_STR, &s->cluster),
		PW_CLI_OPT("policy", 'p', PW_CLI_STR, &s->policy),
		PW_CLI_OPT("config", 0, PW_CLI_STR, &s->policy),
		PW_CLI_OPT("scheduler-name", 'n', PW_CLI_STR, &s->name),
		PW_CLI_OPT("all", 'a', PW_CLI_FLAG, &s->all),
		PW_CLI_OPT("json", 'j', PW_CLI_FLAG, &s->json),
		PW_CLI_OPT("stats", 's', PW_CLI_FLAG, &s->stats),
	};
	struct pw_policy pol;
	char err[PW_SCHED_ERRLEN];
	int r, ret = 1;

	r = pw_cli_parse(argc, argv, opts, PW_ARRAY_SIZE(opts), pw_simulate_usage);
	if (r)
		return r < 0 ? 0 : r;
	if (!s->cluster || optind != argc)
		return pw_cli_usage_error("simulate",
					  s->cluster ? "unexpected argument"
						     : "--cluster FILE is required",
					  pw_simulate_usage);
	if (pw_cli_model(&pol, &s->m, s->policy))
		return 1;
	if (!s->name)
		s->name = pol.scheduler_name;
	s->t0 = pw_now_ns();
	r = pw_cluster_load(&s->m, s->cluster, &s->c, err, sizeof(err));
	if (r) {
		fprintf(stderr, "podwire-scheduler: %s\n", r == -ENOMEM ? "out of memory" : err);
		goto out;
	}
	if (s->c.ignored)
		fprintf(stderr,
			"podwire-scheduler: %s: ignored %u items that are not Node or Pod\n",
			s->cluster, s->c.ignored);
	s->t1 = pw_now_ns();
	if (pw_sim_place(s))
		goto out;
	s->t2 = pw_now_ns();
	if (fflush(stdout) || ferror(stdout)) {
		fprintf(stderr, "podwire-scheduler: writing the output: %s\n", strerror(errno));
		goto out;
	}
	s->t3 = pw_now_ns();
	if (s->stats)
		pw_sim_stats(s);
	ret = 0;
out:
	pw_cluster_free(&s->c);
	pw_model_free(&s->m);
	pw_policy_free(&pol);
	return ret;
}
