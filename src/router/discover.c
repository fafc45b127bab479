// SPDX-License-Identifier: MIT
/*
 * Peers from the API server (--kube-peers): a thread lists and watches the
 * Node objects (pwkube's informer) and hands the loop, through an eventfd,
 * the routers to dial (every other node that is Ready, at its InternalIP and
 * this router's peer port) and this node's pod prefixes (its
 * spec.podCIDRs); the loop applies them with pw_peers_set(). Nodes added,
 * removed or NotReady are followed as the watch reports them.
 *
 * Services (--kube-services): two more threads watch Services and Endpoints
 * (core/v1, which kube-proxy's EndpointSlices mirror); each change rebuilds
 * the whole table of ClusterIP:port -> ready backends, which the loop takes
 * (services.c). The loop never waits for the API server.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <podwire/wire.h>

#include "../common/addr.h"
#include "../common/json.h"
#include "../common/log.h"
#include "kube.h"
#include "router.h"

#define PW_DISC_MAX_NODES 4096

/* Objects by namespace/name, as a watch reports them (one thread each). */
struct pw_disc_obj {
	char *key;
	cJSON *obj;
};

struct pw_disc_store {
	struct pw_disc_obj *v;
	unsigned n, cap;
};

struct pw_disc_node {
	char *name;
	struct sockaddr_in addr; /* InternalIP:port; sin_family 0 without one */
	bool ready;
	struct pw_wire_prefix cidrs[PW_WIRE_MAX_PREFIXES];
	unsigned ncidrs;
};

static struct {
	const char *self;
	uint16_t port; /* network order */
	bool own_routes;
	struct pw_kube *k;
	pthread_t t;
	bool started;
	int efd;
	struct pw_ev ev;
	/* the thread's table */
	struct pw_disc_node *nodes;
	unsigned nnodes;
	/* what the loop takes (under lock) */
	pthread_mutex_t lock;
	struct sockaddr_in dial[PW_PEER_MAX_DIAL];
	unsigned ndial;
	struct pw_wire_prefix routes[PW_WIRE_MAX_PREFIXES];
	int nroutes;
	bool fresh;
	/* services: the two threads' objects (under store_lock), the table for the loop */
	struct pw_kube *ks, *ke;
	pthread_t ts, te;
	bool svc_started[2];
	pthread_mutex_t store_lock;
	struct pw_disc_store svcs, eps;
	struct pw_svc_table *svc_next; /* under lock: the loop takes it */
} pw_disc = { .efd = -1,
	      .lock = PTHREAD_MUTEX_INITIALIZER,
	      .store_lock = PTHREAD_MUTEX_INITIALIZER };

/* A Node object into @n (strings owned by @n). 0, or -EINVAL for one without a name. */
static int pw_disc_parse(const cJSON *o, struct pw_disc_node *n)
{
	const cJSON *meta = pw_json_get(o, "metadata"), *spec = pw_json_get(o, "spec"),
		    *status = pw_json_get(o, "status"), *v;
	const char *name = pw_json_get_str(meta, "name");

	memset(n, 0, sizeof(*n));
	if (!name || !*name || !(n->name = strdup(name)))
		return -EINVAL;
	cJSON_ArrayForEach(v, pw_json_get(status, "addresses"))
	{
		const char *type = pw_json_get_str(v, "type"), *a = pw_json_get_str(v, "address");

		if (type && a && !strcmp(type, "InternalIP") &&
		    inet_pton(AF_INET, a, &n->addr.sin_addr) == 1) {
			n->addr.sin_family = AF_INET;
			n->addr.sin_port = pw_disc.port;
			break;
		}
	}
	cJSON_ArrayForEach(v, pw_json_get(status, "conditions"))
	{
		const char *type = pw_json_get_str(v, "type"), *st = pw_json_get_str(v, "status");

		if (type && st && !strcmp(type, "Ready"))
			n->ready = !strcmp(st, "True");
	}
	/* spec.podCIDRs (1.16 and later) holds spec.podCIDR first; IPv4 ones only. */
	const cJSON *cidrs = pw_json_get(spec, "podCIDRs");
	if (!cJSON_IsArray(cidrs))
		cidrs = NULL;
	if (!cidrs && pw_json_get_str(spec, "podCIDR") &&
	    pw_addr_cidr_parse(pw_json_get_str(spec, "podCIDR"), PW_ADDR_CIDR_NET, &n->cidrs[0]) ==
		    0 &&
	    n->cidrs[0].family == AF_INET)
		n->ncidrs = 1;
	cJSON_ArrayForEach(v, cidrs)
	{
		if (n->ncidrs < PW_WIRE_MAX_PREFIXES && cJSON_IsString(v) &&
		    pw_addr_cidr_parse(v->valuestring, PW_ADDR_CIDR_NET, &n->cidrs[n->ncidrs]) ==
			    0 &&
		    n->cidrs[n->ncidrs].family == AF_INET)
			n->ncidrs++;
	}
	return 0;
}

static void pw_disc_clear(void)
{
	for (unsigned i = 0; i < pw_disc.nnodes; i++)
		free(pw_disc.nodes[i].name);
	pw_disc.nnodes = 0;
}

static int pw_disc_find(const char *name)
{
	for (unsigned i = 0; i < pw_disc.nnodes; i++)
		if (!strcmp(pw_disc.nodes[i].name, name))
			return (int)i;
	return -1;
}

static void pw_disc_put(const cJSON *o)
{
	struct pw_disc_node n;
	int i;

	if (pw_disc_parse(o, &n) < 0)
		return;
	i = pw_disc_find(n.name);
	if (i >= 0) {
		free(pw_disc.nodes[i].name);
		pw_disc.nodes[i] = n;
		return;
	}
	if (pw_disc.nnodes == PW_DISC_MAX_NODES) {
		free(n.name);
		return;
	}
	if (!pw_disc.nodes &&
	    !(pw_disc.nodes = calloc(PW_DISC_MAX_NODES, sizeof(*pw_disc.nodes)))) {
		free(n.name);
		return;
	}
	pw_disc.nodes[pw_disc.nnodes++] = n;
}

static void pw_disc_del(const cJSON *o)
{
	const char *name = pw_json_get_str(pw_json_get(o, "metadata"), "name");
	int i = name ? pw_disc_find(name) : -1;

	if (i < 0)
		return;
	free(pw_disc.nodes[i].name);
	pw_disc.nodes[i] = pw_disc.nodes[--pw_disc.nnodes];
}

/* The table into what the loop takes, and wake it. */
static void pw_disc_publish(void)
{
	uint64_t one = 1;
	ssize_t w;

	pthread_mutex_lock(&pw_disc.lock);
	pw_disc.ndial = 0;
	pw_disc.nroutes = pw_disc.own_routes ? 0 : -1;
	for (unsigned i = 0; i < pw_disc.nnodes; i++) {
		const struct pw_disc_node *n = &pw_disc.nodes[i];

		if (!strcmp(n->name, pw_disc.self)) {
			if (pw_disc.own_routes) {
				memcpy(pw_disc.routes, n->cidrs, n->ncidrs * sizeof(n->cidrs[0]));
				pw_disc.nroutes = (int)n->ncidrs;
			}
		} else if (n->ready && n->addr.sin_family == AF_INET &&
			   pw_disc.ndial < PW_PEER_MAX_DIAL) {
			pw_disc.dial[pw_disc.ndial++] = n->addr;
		}
	}
	pw_disc.fresh = true;
	pthread_mutex_unlock(&pw_disc.lock);
	do
		w = write(pw_disc.efd, &one, sizeof(one));
	while (w < 0 && errno == EINTR);
}

static int pw_disc_cb(void *arg, enum pw_kube_ev type, cJSON **obj)
{
	const cJSON *it;

	switch (type) {
	case PW_KUBE_EV_LIST:
		pw_disc_clear();
		cJSON_ArrayForEach(it, pw_json_get(*obj, "items"))
		{
			pw_disc_put(it);
		}
		break;
	case PW_KUBE_EV_ADDED:
	case PW_KUBE_EV_MODIFIED:
		pw_disc_put(*obj);
		break;
	case PW_KUBE_EV_DELETED:
		pw_disc_del(*obj);
		break;
	default:
		return 0; /* bookmarks change nothing */
	}
	pw_disc_publish();
	return 0;
}

static void pw_disc_err(void *arg, int err, const char *msg)
{
	pw_warn("node watch: %s (%s); retrying", msg, pw_kube_strerror(err));
}

static void *pw_disc_thread(void *arg)
{
	const struct pw_kube_informer inf = {
		.path = "/api/v1/nodes",
		.cb = pw_disc_cb,
		.on_error = pw_disc_err,
		.backoff_max_ms = 10000,
	};

	pw_kube_informer_run(pw_disc.k, &inf);
	return NULL;
}

/* The loop's side: take the newest table. */
static void pw_disc_event(struct pw_ev *ev, uint32_t events)
{
	struct sockaddr_in dial[PW_PEER_MAX_DIAL];
	struct pw_wire_prefix routes[PW_WIRE_MAX_PREFIXES];
	uint64_t v;
	unsigned n;
	int nr;

	while (read(pw_disc.efd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&pw_disc.lock);
	if (pw_disc.svc_next) {
		pw_svc_table_set(pw_disc.svc_next);
		pw_disc.svc_next = NULL;
	}
	if (!pw_disc.fresh) {
		pthread_mutex_unlock(&pw_disc.lock);
		return;
	}
	pw_disc.fresh = false;
	n = pw_disc.ndial;
	nr = pw_disc.nroutes;
	memcpy(dial, pw_disc.dial, n * sizeof(dial[0]));
	if (nr > 0)
		memcpy(routes, pw_disc.routes, (size_t)nr * sizeof(routes[0]));
	pthread_mutex_unlock(&pw_disc.lock);
	pw_peers_set(dial, n, routes, nr);
}

/* ---- Services ---- */

static void pw_disc_store_clear(struct pw_disc_store *st)
{
	for (unsigned i = 0; i < st->n; i++) {
		free(st->v[i].key);
		cJSON_Delete(st->v[i].obj);
	}
	st->n = 0;
}

static void pw_disc_store_free(struct pw_disc_store *st)
{
	pw_disc_store_clear(st);
	free(st->v);
	memset(st, 0, sizeof(*st));
}

/* The index of namespace/name of @o in @st, or -1; *ret_key (malloc'd) the key, NULL if none. */
static int pw_disc_store_find(const struct pw_disc_store *st, const cJSON *o, char **ret_key)
{
	const cJSON *meta = pw_json_get(o, "metadata");
	const char *ns = pw_json_get_str(meta, "namespace"), *name = pw_json_get_str(meta, "name");

	*ret_key = NULL;
	if (!ns || !name || asprintf(ret_key, "%s/%s", ns, name) < 0) {
		*ret_key = NULL;
		return -1;
	}
	for (unsigned i = 0; i < st->n; i++)
		if (!strcmp(st->v[i].key, *ret_key))
			return (int)i;
	return -1;
}

/* Take @o (owned) under its namespace/name. */
static void pw_disc_store_put(struct pw_disc_store *st, cJSON *o)
{
	char *key;
	int i = pw_disc_store_find(st, o, &key);

	if (!key) {
		cJSON_Delete(o);
		return;
	}
	if (i >= 0) {
		free(key);
		cJSON_Delete(st->v[i].obj);
		st->v[i].obj = o;
		return;
	}
	if (st->n == st->cap) {
		unsigned nc = st->cap ? st->cap * 2 : 64;
		struct pw_disc_obj *nv = realloc(st->v, nc * sizeof(*nv));

		if (!nv) {
			free(key);
			cJSON_Delete(o);
			return;
		}
		st->v = nv;
		st->cap = nc;
	}
	st->v[st->n++] = (struct pw_disc_obj){ .key = key, .obj = o };
}

static void pw_disc_store_del(struct pw_disc_store *st, const cJSON *o)
{
	char *key;
	int i = pw_disc_store_find(st, o, &key);

	free(key);
	if (i < 0)
		return;
	free(st->v[i].key);
	cJSON_Delete(st->v[i].obj);
	st->v[i] = st->v[--st->n];
}

static const cJSON *pw_disc_store_get(const struct pw_disc_store *st, const char *key)
{
	for (unsigned i = 0; i < st->n; i++)
		if (!strcmp(st->v[i].key, key))
			return st->v[i].obj;
	return NULL;
}

/* Append backend @a to @t; false when out of memory. */
static bool pw_disc_be_add(struct pw_svc_table *t, unsigned *cap, const struct sockaddr_in *a)
{
	if (t->nbe == *cap) {
		unsigned nc = *cap ? *cap * 2 : 64;
		struct sockaddr_in *nb = realloc(t->be, nc * sizeof(*nb));

		if (!nb)
			return false;
		t->be = nb;
		*cap = nc;
	}
	t->be[t->nbe++] = *a;
	return true;
}

/*
 * The ready addresses of @ep for the Service port named @pname: each subset
 * with a TCP port of that name (kube-proxy matches by name; a Service's one
 * unnamed port matches an unnamed one), its addresses at that port. Not-ready
 * addresses (notReadyAddresses) are left out, as kube-proxy does.
 */
static bool pw_disc_backends(struct pw_svc_table *t, unsigned *cap, const cJSON *ep,
			     const char *pname)
{
	const cJSON *sub, *p, *a;

	cJSON_ArrayForEach(sub, pw_json_get(ep, "subsets"))
	{
		int port = 0;

		cJSON_ArrayForEach(p, pw_json_get(sub, "ports"))
		{
			const char *n = pw_json_get_str(p, "name"),
				   *proto = pw_json_get_str(p, "protocol");

			if (strcmp(n ? n : "", pname) == 0 && (!proto || !strcmp(proto, "TCP")))
				port = pw_json_get_int(p, "port", 0);
		}
		if (port <= 0 || port > 65535)
			continue;
		cJSON_ArrayForEach(a, pw_json_get(sub, "addresses"))
		{
			const char *ip = pw_json_get_str(a, "ip");
			struct sockaddr_in be = { .sin_family = AF_INET,
						  .sin_port = htons((uint16_t)port) };

			if (ip && inet_pton(AF_INET, ip, &be.sin_addr) == 1 &&
			    !pw_disc_be_add(t, cap, &be))
				return false;
		}
	}
	return true;
}

/* The entry for @svc's port @p with its backends from @ep; false when out of memory. */
static bool pw_disc_svc_port(struct pw_svc_table *t, unsigned *cap_e, unsigned *cap_be,
			     struct in_addr vip, uint32_t aff_s, const cJSON *p, const cJSON *ep)
{
	const char *proto = pw_json_get_str(p, "protocol"), *pname = pw_json_get_str(p, "name");
	int port = pw_json_get_int(p, "port", 0);
	struct pw_svc_entry *e;

	if ((proto && strcmp(proto, "TCP") != 0) || port <= 0 || port > 65535)
		return true;
	if (t->n == *cap_e) {
		unsigned nc = *cap_e ? *cap_e * 2 : 64;
		struct pw_svc_entry *ne = realloc(t->e, nc * sizeof(*ne));

		if (!ne)
			return false;
		t->e = ne;
		*cap_e = nc;
	}
	e = &t->e[t->n];
	*e = (struct pw_svc_entry){
		.vip = { .sin_family = AF_INET,
			 .sin_addr = vip,
			 .sin_port = htons((uint16_t)port) },
		.affinity_s = aff_s,
		.be = t->nbe,
	};
	if (ep && !pw_disc_backends(t, cap_be, ep, pname ? pname : ""))
		return false;
	e->nbe = t->nbe - e->be;
	t->n++;
	return true;
}

/* The table from every Service and its Endpoints. NULL when out of memory. Under store_lock. */
static struct pw_svc_table *pw_disc_svc_build(void)
{
	struct pw_svc_table *t = calloc(1, sizeof(*t));
	unsigned cap_e = 0, cap_be = 0;

	if (!t)
		return NULL;
	for (unsigned i = 0; i < pw_disc.svcs.n; i++) {
		const cJSON *spec = pw_json_get(pw_disc.svcs.v[i].obj, "spec"), *p;
		const char *ip = pw_json_get_str(spec, "clusterIP"),
			   *aff = pw_json_get_str(spec, "sessionAffinity");
		const cJSON *ep = pw_disc_store_get(&pw_disc.eps, pw_disc.svcs.v[i].key);
		struct in_addr vip;
		uint32_t aff_s = 0;

		if (!ip || inet_pton(AF_INET, ip, &vip) != 1)
			continue; /* headless ("None"), or not IPv4 */
		if (aff && !strcmp(aff, "ClientIP")) {
			const cJSON *cfg =
				pw_json_get(pw_json_get(spec, "sessionAffinityConfig"), "clientIP");
			int to = pw_json_get_int(cfg, "timeoutSeconds", 10800);

			aff_s = to > 0 ? (uint32_t)to : 10800;
		}
		cJSON_ArrayForEach(p, pw_json_get(spec, "ports"))
		{
			if (!pw_disc_svc_port(t, &cap_e, &cap_be, vip, aff_s, p, ep)) {
				pw_svc_table_free(t);
				return NULL;
			}
		}
	}
	return t;
}

/* A watch event of Services or Endpoints (@st): store it, rebuild, hand over. */
static int pw_disc_svc_cb(struct pw_disc_store *st, enum pw_kube_ev type, cJSON **obj)
{
	struct pw_svc_table *t;
	const cJSON *it;
	uint64_t one = 1;
	ssize_t w;

	pthread_mutex_lock(&pw_disc.store_lock);
	switch (type) {
	case PW_KUBE_EV_LIST:
		pw_disc_store_clear(st);
		cJSON_ArrayForEach(it, pw_json_get(*obj, "items"))
		{
			cJSON *dup = cJSON_Duplicate(it, true);

			if (dup)
				pw_disc_store_put(st, dup);
		}
		break;
	case PW_KUBE_EV_ADDED:
	case PW_KUBE_EV_MODIFIED:
		pw_disc_store_put(st, *obj);
		*obj = NULL; /* taken */
		break;
	case PW_KUBE_EV_DELETED:
		pw_disc_store_del(st, *obj);
		break;
	default:
		pthread_mutex_unlock(&pw_disc.store_lock);
		return 0;
	}
	t = pw_disc_svc_build();
	pthread_mutex_unlock(&pw_disc.store_lock);
	/* Out of memory: the loop keeps the last table. */
	if (!t)
		return 0;
	pw_svc_table_sort(t); /* (here, not in the loop) */
	pthread_mutex_lock(&pw_disc.lock);
	pw_svc_table_free(pw_disc.svc_next);
	pw_disc.svc_next = t;
	pthread_mutex_unlock(&pw_disc.lock);
	do
		w = write(pw_disc.efd, &one, sizeof(one));
	while (w < 0 && errno == EINTR);
	return 0;
}

static int pw_disc_svcs_cb(void *arg, enum pw_kube_ev type, cJSON **obj)
{
	return pw_disc_svc_cb(&pw_disc.svcs, type, obj);
}

static int pw_disc_eps_cb(void *arg, enum pw_kube_ev type, cJSON **obj)
{
	return pw_disc_svc_cb(&pw_disc.eps, type, obj);
}

static void pw_disc_svc_err(void *arg, int err, const char *msg)
{
	pw_warn("%s watch: %s (%s); retrying", (const char *)arg, msg, pw_kube_strerror(err));
}

/* One informer; @arg is its path, "/api/v1/services" or "/api/v1/endpoints". */
static void *pw_disc_svc_thread(void *arg)
{
	bool svcs = !strcmp(arg, "/api/v1/services");
	const struct pw_kube_informer inf = {
		.path = arg,
		.cb = svcs ? pw_disc_svcs_cb : pw_disc_eps_cb,
		.on_error = pw_disc_svc_err,
		.arg = svcs ? "service" : "endpoints",
		.backoff_max_ms = 10000,
	};

	pw_kube_informer_run(svcs ? pw_disc.ks : pw_disc.ke, &inf);
	return NULL;
}

/* The eventfd the threads wake the loop with, once. */
static int pw_disc_wakeup_open(void)
{
	if (pw_disc.efd >= 0)
		return 0;
	pw_disc.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (pw_disc.efd < 0)
		return -errno;
	pw_disc.ev.fn = pw_disc_event;
	return pw_loop_add(pw_disc.efd, EPOLLIN, &pw_disc.ev);
}

static int pw_disc_open(const char *kubeconfig, const char *what, struct pw_kube **k)
{
	if (pw_kube_open(kubeconfig, k)) {
		pw_err("%s: API server configuration: %s", what, pw_kube_last_error(NULL));
		return -EINVAL;
	}
	pw_kube_set_user_agent(*k, "podwired");
	return 0;
}

int pw_disc_start(const char *kubeconfig, const char *self, uint16_t port, bool own_routes)
{
	int r;

	pw_disc.self = self;
	pw_disc.port = htons(port);
	pw_disc.own_routes = own_routes;
	r = pw_disc_open(kubeconfig, "--kube-peers", &pw_disc.k);
	if (r < 0)
		return r;
	r = pw_disc_wakeup_open();
	if (r < 0)
		return r;
	r = -pthread_create(&pw_disc.t, NULL, pw_disc_thread, NULL);
	if (r < 0)
		return r;
	pw_disc.started = true;
	pw_info("federation: peers from the API server at %s (node %s)", pw_kube_server(pw_disc.k),
		self);
	return 0;
}

void pw_disc_stop(void)
{
	if (pw_disc.started) {
		pw_kube_cancel(pw_disc.k);
		pthread_join(pw_disc.t, NULL);
		pw_disc.started = false;
	}
	for (int i = 0; i < 2; i++) {
		if (!pw_disc.svc_started[i])
			continue;
		pw_kube_cancel(i ? pw_disc.ke : pw_disc.ks);
		pthread_join(i ? pw_disc.te : pw_disc.ts, NULL);
		pw_disc.svc_started[i] = false;
	}
	pw_kube_close(pw_disc.ks);
	pw_kube_close(pw_disc.ke);
	pw_disc.ks = pw_disc.ke = NULL;
	pw_disc_store_free(&pw_disc.svcs);
	pw_disc_store_free(&pw_disc.eps);
	pw_svc_table_free(pw_disc.svc_next);
	pw_disc.svc_next = NULL;
	pw_svc_table_set(NULL);
	if (pw_disc.efd >= 0) {
		pw_loop_del(pw_disc.efd, &pw_disc.ev);
		close(pw_disc.efd);
		pw_disc.efd = -1;
	}
	pw_kube_close(pw_disc.k);
	pw_disc.k = NULL;
	pw_disc_clear();
	free(pw_disc.nodes);
	pw_disc.nodes = NULL;
}

int pw_disc_services_start(const char *kubeconfig)
{
	static char svcs[] = "/api/v1/services", eps[] = "/api/v1/endpoints";
	int r = pw_disc_open(kubeconfig, "--kube-services", &pw_disc.ks);

	if (r < 0 || (r = pw_disc_open(kubeconfig, "--kube-services", &pw_disc.ke)) < 0)
		return r;
	r = pw_disc_wakeup_open();
	if (r < 0)
		return r;
	/* An empty table until the first lists: ClusterIPs take the kernel's way meanwhile. */
	pw_svc_table_set(calloc(1, sizeof(struct pw_svc_table)));
	r = -pthread_create(&pw_disc.ts, NULL, pw_disc_svc_thread, svcs);
	if (r < 0)
		return r;
	pw_disc.svc_started[0] = true;
	r = -pthread_create(&pw_disc.te, NULL, pw_disc_svc_thread, eps);
	if (r < 0)
		return r;
	pw_disc.svc_started[1] = true;
	pw_info("services: ClusterIPs from the API server at %s", pw_kube_server(pw_disc.ks));
	return 0;
}
