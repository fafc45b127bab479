// SPDX-License-Identifier: MIT
/*
 * Peers from the API server (--kube-peers): a thread lists and watches the
 * Node objects (pwkube's informer) and hands the loop, through an eventfd,
 * the routers to dial (every other node that is Ready, at its InternalIP and
 * this router's peer port) and this node's pod prefixes (its
 * spec.podCIDRs); the loop applies them with pw_peers_set(). Nodes added,
 * removed or NotReady are followed as the watch reports them. The loop never
 * waits for the API server.
 */
#include <arpa/inet.h>
#include <errno.h>
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
} pw_disc = { .efd = -1, .lock = PTHREAD_MUTEX_INITIALIZER };

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

int pw_disc_start(const char *kubeconfig, const char *self, uint16_t port, bool own_routes)
{
	int r;

	pw_disc.self = self;
	pw_disc.port = htons(port);
	pw_disc.own_routes = own_routes;
	r = pw_kube_open(kubeconfig, &pw_disc.k);
	if (r) {
		pw_err("--kube-peers: API server configuration: %s", pw_kube_last_error(NULL));
		return -EINVAL;
	}
	pw_kube_set_user_agent(pw_disc.k, "podwired");
	pw_disc.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (pw_disc.efd < 0)
		return -errno;
	pw_disc.ev.fn = pw_disc_event;
	r = pw_loop_add(pw_disc.efd, EPOLLIN, &pw_disc.ev);
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
