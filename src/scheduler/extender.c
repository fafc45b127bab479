// SPDX-License-Identifier: MIT
/*
 * kube-scheduler extender (k8s.io/kube-scheduler/extender/v1) over
 * libmicrohttpd: POST .../filter and .../prioritize take ExtenderArgs
 * {Pod, Nodes|NodeNames}; .../bind takes ExtenderBindingArgs. Only the
 * podwire part of the filter runs here (latency path, scarce devices):
 * kube-scheduler's own plugins check resources, taints and affinity.
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "cmd.h"
#include "httpd.h"
#include "json.h"
#include "log.h"
#include "util.h"

#define PW_EXT_MAX_BODY (64u << 20) /* a NodeList of 5,000 full nodes is ~25 MiB */
#define PW_EXT_MAX_PRIO 10	    /* extender v1 MaxExtenderPriority */
#define PW_EXT_NO_NODE	(-3)	    /* a node not in the model: never the peer's */

struct pw_ext {
	struct pw_httpd *h;
	struct pw_model *m;
	pthread_mutex_t *lock;
	pw_ext_bind_fn bind;
	void *bind_arg;
};

static cJSON *pw_ext_error(const char *msg)
{
	cJSON *o = cJSON_CreateObject();

	if (o)
		cJSON_AddStringToObject(o, "Error", msg);
	return o;
}

/* One candidate node of ExtenderArgs, resolved against the model. */
struct pw_ext_node {
	const char *name;
	const cJSON *obj; /* the request's Node, or NULL (NodeNames) */
	struct pw_node tmp;
	const struct pw_node *n;
	int idx;
	bool ok, unresolvable;
	uint32_t cap_lat;
	char why[PW_SCHED_ERRLEN];
};

/*
 * Parse Pod and candidate nodes; runs the podwire filter on each. Returns
 * the node array (caller frees with pw_ext_nodes_free) or NULL with @err.
 */
static struct pw_ext_node *pw_ext_eval(struct pw_ext *e, const cJSON *args, struct pw_pod *pod,
				       unsigned *nn, bool *by_name, char *err, size_t errlen)
{
	const cJSON *pobj = pw_json_get(args, "Pod");
	const cJSON *nodes = pw_json_get(args, "Nodes");
	const cJSON *names = pw_json_get(args, "NodeNames"), *it;
	const cJSON *items = pw_json_get(nodes, "items");
	struct pw_ext_node *v;
	char perr[PW_SCHED_ERRLEN] = "";
	unsigned k = 0;

	if (!cJSON_IsObject(args) || !cJSON_IsObject(pobj)) {
		snprintf(err, errlen, "want ExtenderArgs with a Pod");
		return NULL;
	}
	*by_name = !cJSON_IsArray(items);
	if (*by_name && !cJSON_IsArray(names)) {
		snprintf(err, errlen, "want Nodes.items or NodeNames");
		return NULL;
	}
	if (pw_pod_parse(e->m, pobj, pod, perr, sizeof(perr))) {
		snprintf(err, errlen, "Pod: %s", *perr ? perr : "out of memory");
		return NULL;
	}
	v = calloc((size_t)cJSON_GetArraySize(*by_name ? names : items) + 1, sizeof(*v));
	if (!v) {
		pw_pod_clear(pod);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	cJSON_ArrayForEach(it, (*by_name ? names : items))
	{
		struct pw_ext_node *x = &v[k++];

		x->idx = PW_EXT_NO_NODE;
		if (*by_name) {
			if (!cJSON_IsString(it)) {
				snprintf(err, errlen, "NodeNames: want strings");
				goto fail;
			}
			x->name = it->valuestring;
			x->idx = pw_model_find_node(e->m, x->name);
			if (x->idx < 0) {
				x->idx = PW_EXT_NO_NODE;
				snprintf(x->why, sizeof(x->why),
					 "node unknown to podwire-scheduler");
				continue;
			}
			x->n = &e->m->nodes[x->idx];
		} else {
			char nerr[PW_SCHED_ERRLEN] = "";

			x->obj = it;
			if (pw_node_parse(e->m, it, &x->tmp, nerr, sizeof(nerr))) {
				snprintf(err, errlen, "Nodes.items[%u]: %s", k - 1,
					 *nerr ? nerr : "out of memory");
				goto fail;
			}
			x->name = x->tmp.name;
			/* The model knows what is bound there; the request's copy does not. */
			x->idx = pw_model_find_node(e->m, x->name);
			x->n = x->idx >= 0 ? &e->m->nodes[x->idx] : &x->tmp;
			if (x->idx < 0)
				x->idx = PW_EXT_NO_NODE;
		}
		x->ok = pw_sched_check_node(e->m, pod, x->n, x->idx, x->why, sizeof(x->why),
					    &x->cap_lat);
		/* Preemption frees devices, not latency: tell kube-scheduler which is which. */
		x->unresolvable = !x->ok && strncmp(x->why, "no free ", 8) != 0;
	}
	*nn = k;
	return v;
fail:
	for (unsigned i = 0; i < k; i++)
		pw_node_clear(&v[i].tmp);
	free(v);
	pw_pod_clear(pod);
	return NULL;
}

static void pw_ext_nodes_free(struct pw_ext_node *v, unsigned n)
{
	for (unsigned i = 0; v && i < n; i++)
		pw_node_clear(&v[i].tmp);
	free(v);
}

static cJSON *pw_ext_filter(struct pw_ext *e, const cJSON *args, unsigned *code)
{
	struct pw_ext_node *v;
	struct pw_pod pod;
	unsigned n = 0;
	bool by_name;
	char err[PW_SCHED_ERRLEN];
	cJSON *res = NULL, *ok = NULL, *failed, *unres;

	v = pw_ext_eval(e, args, &pod, &n, &by_name, err, sizeof(err));
	if (!v) {
		*code = MHD_HTTP_BAD_REQUEST;
		return pw_ext_error(err);
	}
	res = cJSON_CreateObject();
	if (!res)
		goto out;
	if (by_name) {
		cJSON_AddNullToObject(res, "Nodes");
		ok = cJSON_AddArrayToObject(res, "NodeNames");
	} else {
		cJSON *list = cJSON_AddObjectToObject(res, "Nodes");

		if (list) {
			cJSON_AddStringToObject(list, "kind", "NodeList");
			cJSON_AddStringToObject(list, "apiVersion", "v1");
			cJSON_AddObjectToObject(list, "metadata");
			ok = cJSON_AddArrayToObject(list, "items");
		}
		cJSON_AddNullToObject(res, "NodeNames");
	}
	failed = cJSON_AddObjectToObject(res, "FailedNodes");
	unres = cJSON_AddObjectToObject(res, "FailedAndUnresolvableNodes");
	cJSON_AddStringToObject(res, "Error", "");
	if (!ok || !failed || !unres) {
		cJSON_Delete(res);
		res = NULL;
		goto out;
	}
	for (unsigned i = 0; i < n; i++) {
		if (v[i].ok)
			cJSON_AddItemToArray(ok, by_name ? cJSON_CreateString(v[i].name)
							 : cJSON_Duplicate(v[i].obj, true));
		else if (v[i].name) {
			/* An unresolvable node goes in both maps: kube-scheduler
			 * 1.21 and later skip a FailedNodes entry that is also in
			 * FailedAndUnresolvableNodes; 1.20 and earlier read only
			 * FailedNodes, and would say "0/3 nodes are available: ."
			 * with the reason in the other map alone. */
			cJSON_AddStringToObject(failed, v[i].name, v[i].why);
			if (v[i].unresolvable)
				cJSON_AddStringToObject(unres, v[i].name, v[i].why);
		}
	}
out:
	pw_ext_nodes_free(v, n);
	pw_pod_clear(&pod);
	*code = res ? MHD_HTTP_OK : MHD_HTTP_INTERNAL_SERVER_ERROR;
	return res ? res : pw_ext_error("out of memory");
}

static int pw_u32_cmp_desc(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? 1 : x > y ? -1 : 0;
}

/*
 * Scores 0..10: nodes that fail get 0; the others by capability class, the
 * least capable class 10 down to 10/K for the most capable of K classes; the
 * peer's node 10. Load balancing is left to kube-scheduler's own scoring.
 */
static cJSON *pw_ext_prioritize(struct pw_ext *e, const cJSON *args, unsigned *code)
{
	struct pw_ext_node *v;
	struct pw_pod pod;
	unsigned n = 0, k = 0;
	uint32_t *cls;
	bool by_name;
	char err[PW_SCHED_ERRLEN];
	cJSON *res;
	int peer;

	v = pw_ext_eval(e, args, &pod, &n, &by_name, err, sizeof(err));
	if (!v) {
		*code = MHD_HTTP_BAD_REQUEST;
		return pw_ext_error(err);
	}
	peer = pw_sched_peer_node(e->m, &pod);
	cls = calloc(n + 1, sizeof(*cls));
	res = cJSON_CreateArray();
	if (!cls || !res) {
		cJSON_Delete(res);
		res = NULL;
		goto out;
	}
	for (unsigned i = 0; i < n; i++)
		if (v[i].ok)
			cls[k++] = v[i].cap_lat;
	qsort(cls, k, sizeof(*cls), pw_u32_cmp_desc);
	{
		unsigned u = 0;

		for (unsigned i = 0; i < k; i++)
			if (!u || cls[u - 1] != cls[i])
				cls[u++] = cls[i];
		k = u;
	}
	for (unsigned i = 0; i < n; i++) {
		cJSON *hp = cJSON_CreateObject();
		long score = 0;

		if (!hp)
			break;
		if (v[i].ok) {
			unsigned rank = 0;

			while (rank < k && cls[rank] != v[i].cap_lat)
				rank++;
			score = (long)(PW_EXT_MAX_PRIO * (k - rank) / k);
			if (peer >= 0 && v[i].idx == peer)
				score = PW_EXT_MAX_PRIO;
		}
		cJSON_AddStringToObject(hp, "Host", v[i].name ? v[i].name : "");
		cJSON_AddNumberToObject(hp, "Score", (double)score);
		cJSON_AddItemToArray(res, hp);
	}
out:
	free(cls);
	pw_ext_nodes_free(v, n);
	pw_pod_clear(&pod);
	*code = res ? MHD_HTTP_OK : MHD_HTTP_INTERNAL_SERVER_ERROR;
	return res ? res : pw_ext_error("out of memory");
}

static cJSON *pw_ext_bind(struct pw_ext *e, const cJSON *args, unsigned *code)
{
	const char *name = pw_json_get_str(args, "PodName");
	const char *ns = pw_json_get_str(args, "PodNamespace");
	const char *uid = pw_json_get_str(args, "PodUID");
	const char *node = pw_json_get_str(args, "Node");
	char err[PW_SCHED_ERRLEN] = "";

	*code = MHD_HTTP_OK;
	if (!name || !*name || !ns || !*ns || !node || !*node) {
		*code = MHD_HTTP_BAD_REQUEST;
		return pw_ext_error(
			"want ExtenderBindingArgs {PodName, PodNamespace, PodUID, Node}");
	}
	if (!e->bind)
		return pw_ext_error("no API server: bind needs `podwire-scheduler run "
				    "--extender-listen`");
	if (e->bind(e->bind_arg, ns, name, uid && *uid ? uid : NULL, node, err, sizeof(err)))
		return pw_ext_error(*err ? err : "bind failed");
	return pw_ext_error("");
}

/* POST .../filter, .../prioritize and .../bind (pwhttpd answers GET /healthz). */
static cJSON *pw_ext_serve(void *arg, const char *method, const char *path, const cJSON *args,
			   const char *bad, unsigned *code)
{
	struct pw_ext *e = arg;
	const char *verb = strrchr(path, '/');
	cJSON *res;

	verb = verb ? verb + 1 : path;
	if (strcmp(verb, "filter") != 0 && strcmp(verb, "prioritize") != 0 &&
	    strcmp(verb, "bind") != 0) {
		*code = MHD_HTTP_NOT_FOUND;
		return pw_ext_error("no such verb");
	}
	if (strcmp(method, "POST") != 0) {
		*code = MHD_HTTP_METHOD_NOT_ALLOWED;
		return pw_ext_error("want POST");
	}
	if (!args) {
		*code = !strcmp(bad, "body too large") ? MHD_HTTP_CONTENT_TOO_LARGE
						       : MHD_HTTP_BAD_REQUEST;
		return pw_ext_error(bad);
	}
	if (!strcmp(verb, "bind"))
		return pw_ext_bind(e, args, code); /* takes the lock itself, around the model */
	pthread_mutex_lock(e->lock);
	res = !strcmp(verb, "filter") ? pw_ext_filter(e, args, code)
				      : pw_ext_prioritize(e, args, code);
	pthread_mutex_unlock(e->lock);
	return res;
}

int pw_ext_start(const char *listen_on, struct pw_model *m, pthread_mutex_t *lock,
		 pw_ext_bind_fn bind_fn, void *bind_arg, struct pw_ext **ret_e)
{
	struct pw_ext *e = calloc(1, sizeof(*e));
	char bound[300] = "?";
	int r;

	if (!e)
		return -ENOMEM;
	e->m = m;
	e->lock = lock;
	e->bind = bind_fn;
	e->bind_arg = bind_arg;
	const struct pw_httpd_opts o = {
		.listen = listen_on,
		.max_body = PW_EXT_MAX_BODY,
		.fn = pw_ext_serve,
		.arg = e,
	};
	r = pw_httpd_start(&o, &e->h, bound, sizeof(bound));
	if (r) {
		pw_err("extender: cannot listen on %s: %s", listen_on,
		       r == -EINVAL ? "want HOST:PORT"
		       : r == -EIO  ? "libmicrohttpd did not start"
				    : strerror(-r));
		free(e);
		return r;
	}
	pw_info("extender listening on %s", bound);
	*ret_e = e;
	return 0;
}

void pw_ext_stop(struct pw_ext *e)
{
	if (!e)
		return;
	pw_httpd_stop(e->h);
	free(e);
}

/* ---- stand-alone: `podwire-scheduler extender` ---- */

static const char pw_extender_usage[] =
	"Usage: podwire-scheduler extender --listen HOST:PORT [OPTIONS]\n"
	"\n"
	"Serve kube-scheduler's extender API (POST /filter, /prioritize, /bind; GET\n"
	"/healthz) without an API server: the candidate Nodes come in each request,\n"
	"and --cluster FILE may add the pods already bound (so devices in use are\n"
	"counted) and nodes for NodeNames requests. /bind answers an error; in a\n"
	"cluster use `podwire-scheduler run --extender-listen HOST:PORT`.\n"
	"\n"
	"Options:\n"
	"  -l, --listen HOST:PORT   address to serve on (port 0: any free port,\n"
	"                           logged)\n"
	"  -c, --cluster FILE       nodes and pods as for `simulate`\n"
	"  -p, --policy FILE        policy JSON (also --config)\n"
	"  -v, --log-level LEVEL    error, warn, info (default) or debug\n"
	"  -h, --help               this text\n"
	"\n"
	"Runs until SIGTERM or SIGINT; exit status 0 then, 1 on errors, 2 on bad usage.\n";

int pw_cmd_extender(int argc, char **argv)
{
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	const char *listen_on = NULL, *cluster = NULL, *policy = NULL;
	const struct pw_cli_opt opts[] = {
		PW_CLI_OPT("listen", 'l', PW_CLI_STR, &listen_on),
		PW_CLI_OPT("cluster", 'c', PW_CLI_STR, &cluster),
		PW_CLI_OPT("policy", 'p', PW_CLI_STR, &policy),
		PW_CLI_OPT("config", 0, PW_CLI_STR, &policy),
		PW_CLI_OPT("log-level", 'v', PW_CLI_LOG_LEVEL, NULL),
	};
	struct pw_policy pol;
	struct pw_model m;
	struct pw_cluster c = { 0 };
	struct pw_ext *e = NULL;
	char err[PW_SCHED_ERRLEN];
	int r, ret = 1;

	pw_log_ident = "podwire-scheduler";
	r = pw_cli_parse(argc, argv, opts, PW_ARRAY_SIZE(opts), pw_extender_usage);
	if (r)
		return r < 0 ? 0 : r;
	if (!listen_on || optind != argc)
		return pw_cli_usage_error("extender",
					  listen_on ? "unexpected argument"
						    : "--listen HOST:PORT is required",
					  pw_extender_usage);
	if (pw_cli_model(&pol, &m, policy))
		return 1;
	if (cluster && pw_cluster_load(&m, cluster, &c, err, sizeof(err))) {
		pw_err("%s", err);
		goto out;
	}
	pw_cli_signals_catch();
	if (pw_ext_start(listen_on, &m, &lock, NULL, NULL, &e))
		goto out;
	while (!pw_cli_signal_caught())
		poll(NULL, 0, 200);
	pw_info("signal %d: stopping", pw_cli_signal_caught());
	pw_ext_stop(e);
	ret = 0;
out:
	pw_cluster_free(&c);
	pw_model_free(&m);
	pw_policy_free(&pol);
	return ret;
}
