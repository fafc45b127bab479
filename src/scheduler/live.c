// SPDX-License-Identifier: MIT
/*
 * podwire-scheduler run: the live scheduler.
 *
 * Threads, each with its own API-server handle: a pod informer and a node
 * informer keep the model current (list, then watch; 410 re-lists; the kube
 * library reconnects with backoff); a lease thread does leader election; the
 * main thread places pending pods of our schedulerName and binds them; the
 * extender (optional) serves kube-scheduler. One mutex guards the model and
 * is never held across an HTTP request.
 *
 * A pod we bind is charged at once ("assumed"); a late watch event that
 * still shows it pending does not undo that until the assumption expires.
 * A 409 on bind means someone else bound it: re-read the pod and move on.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "json.h"
#include "kube.h"
#include "log.h"
#include "util.h"

#define PW_LIVE_BATCH	    256 /* placements between looks at new events */
#define PW_LIVE_ASSUME_NS   (30ull * 1000000000ull)
#define PW_LIVE_BACKOFF_MIN 1000000000ull	     /* kube-scheduler's podInitialBackoff */
#define PW_LIVE_BACKOFF_MAX 10000000000ull	     /* and podMaxBackoff */
#define PW_LIVE_FLUSH_NS    (300ull * 1000000000ull) /* retry unchanged unschedulable pods */
#define PW_LIVE_BIND_FAILED UINT64_MAX /* fail_gen of a failed bind: no change needed */
#define PW_LIVE_QUEUE	    1024       /* placed pods waiting for a worker */
#define PW_LIVE_EV_QUEUE    8192       /* Scheduled events waiting for a worker */
#define PW_LIVE_WORKERS	    16	       /* default --concurrency */

struct pw_assumed {
	char *key, *uid, *node;
	uint64_t at;
};

struct pw_live_ring {
	struct pw_live_todo *v;
	unsigned head, len, cap;
};

struct pw_live {
	/* options */
	const char *kubeconfig, *master, *name, *lease_ns, *lease_name, *identity, *ext_listen;
	bool in_cluster, leader_elect;
	int lease_s;
	/* state */
	struct pw_policy pol;
	struct pw_model m;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool dirty, pods_synced, nodes_synced;
	struct pw_assumed *assumed;
	unsigned nassumed, cap_assumed;
	struct pw_kube *k, *kpods, *knodes, *klease, *kext;
	struct pw_ext *ext;
	pthread_t tpods, tnodes, tlease;
	bool have_pods, have_nodes, have_lease;
	_Atomic uint64_t leader_until;
	atomic_bool is_leader;
	unsigned long binds, conflicts, failures; /* under lock */
	/* placed pods waiting for a worker, and Scheduled events, which wait
	 * until no pod does (rings, under lock) */
	struct pw_live_ring q, ev;
	unsigned long ev_dropped;
	bool qstop;
	pthread_cond_t qcond, qspace;
	int nworkers;
	struct pw_live_worker *workers;
};

struct pw_live_worker {
	struct pw_live *l;
	struct pw_kube *k;
	pthread_t t;
	bool started;
};

static int pw_live_open(struct pw_live *l, struct pw_kube **k)
{
	int r;

	if (l->master)
		r = pw_kube_open_url(l->master, NULL, k);
	else if (l->in_cluster)
		r = pw_kube_open_incluster(k);
	else
		r = pw_kube_open(l->kubeconfig, k);
	if (r) {
		pw_err("API server configuration: %s", pw_kube_last_error(NULL));
		return r;
	}
	pw_kube_set_user_agent(*k, "podwire-scheduler");
	return 0;
}

/* ---- assumed bindings ---- */

static void pw_assumed_drop(struct pw_live *l, unsigned i)
{
	free(l->assumed[i].key);
	free(l->assumed[i].uid);
	free(l->assumed[i].node);
	unsigned last = --l->nassumed;
	if (i != last)
		l->assumed[i] = l->assumed[last];
	memset(&l->assumed[last], 0, sizeof(l->assumed[last])); /* no stale pointers */
}

static int pw_assumed_find(struct pw_live *l, const char *key)
{
	for (unsigned i = 0; i < l->nassumed; i++)
		if (!strcmp(l->assumed[i].key, key))
			return (int)i;
	return -1;
}

static void pw_assumed_add(struct pw_live *l, const struct pw_pod *p, const char *node)
{
	int i = pw_assumed_find(l, p->key);

	if (i >= 0)
		pw_assumed_drop(l, (unsigned)i);
	if (l->nassumed == l->cap_assumed) {
		unsigned nc = l->cap_assumed ? l->cap_assumed * 2 : 64;
		struct pw_assumed *na = realloc(l->assumed, nc * sizeof(*na));

		if (!na)
			return; /* only the late-event protection is lost */
		l->assumed = na;
		l->cap_assumed = nc;
	}
	struct pw_assumed *a = &l->assumed[l->nassumed];
	a->key = strdup(p->key);
	a->uid = p->uid ? strdup(p->uid) : NULL;
	a->node = strdup(node);
	a->at = pw_now_ns();
	if (!a->key || !a->node || (p->uid && !a->uid)) {
		free(a->key);
		free(a->uid);
		free(a->node);
		return;
	}
	l->nassumed++;
}

/* Forget our binding of pod @key, if we have one. */
static void pw_assumed_forget(struct pw_live *l, const char *key)
{
	int i = pw_assumed_find(l, key);

	if (i >= 0)
		pw_assumed_drop(l, (unsigned)i);
}

/* After a pod event: keep our binding over a stale "pending", forget it once confirmed. */
static void pw_assumed_apply(struct pw_live *l, int pi)
{
	struct pw_pod *p = &l->m.pods[pi];
	int i = pw_assumed_find(l, p->key), ni;
	struct pw_assumed *a;

	if (i < 0)
		return;
	a = &l->assumed[i];
	if (p->node_name || pw_now_ns() - a->at > PW_LIVE_ASSUME_NS ||
	    (a->uid && (!p->uid || strcmp(a->uid, p->uid) != 0))) {
		pw_assumed_drop(l, (unsigned)i);
		return;
	}
	ni = pw_model_find_node(&l->m, a->node);
	if (ni >= 0 && pw_pod_pending(p))
		pw_model_bind(&l->m, pi, ni);
}

/* ---- informers ---- */

/* An object's metadata.name, and its namespace ("default" when it has none). */
static const char *pw_live_obj_name(const cJSON *o, const char **ret_ns)
{
	const cJSON *meta = pw_json_get(o, "metadata");
	const char *ns = pw_json_get_str(meta, "namespace");

	*ret_ns = ns && *ns ? ns : "default";
	return pw_json_get_str(meta, "name");
}

/* Replace the model's nodes or pods with a List's items. */
static void pw_live_relist(struct pw_live *l, const cJSON *list, bool pods)
{
	const cJSON *items = pw_json_get(list, "items"), *it;
	unsigned n = pods ? l->m.npods : l->m.nnodes;
	bool *seen = calloc(n + 1, sizeof(*seen));
	char err[PW_SCHED_ERRLEN];
	unsigned bad = 0;

	cJSON_ArrayForEach(it, items)
	{
		int i = pods ? pw_model_put_pod(&l->m, it, err, sizeof(err))
			     : pw_model_put_node(&l->m, it, err, sizeof(err));

		if (i < 0) {
			if (bad++ < 5)
				pw_warn("%s list: ignoring an item: %s", pods ? "pod" : "node",
					err);
			continue;
		}
		if (seen && (unsigned)i < n)
			seen[i] = true;
		if (pods)
			pw_assumed_apply(l, i);
	}
	/* Objects the list no longer has were deleted while we were not watching. */
	for (unsigned i = 0; seen && i < n; i++) {
		if (seen[i])
			continue;
		if (pods && l->m.pods[i].key) {
			char *ns = strdup(l->m.pods[i].ns), *name = strdup(l->m.pods[i].name);

			if (ns && name)
				pw_model_del_pod(&l->m, ns, name);
			free(ns);
			free(name);
		} else if (!pods && l->m.nodes[i].name) {
			char *name = strdup(l->m.nodes[i].name);

			if (name)
				pw_model_del_node(&l->m, name);
			free(name);
		}
	}
	free(seen);
	pw_info("%s list: %d items, model has %u nodes and %u pods", pods ? "pod" : "node",
		cJSON_GetArraySize(items), l->m.live_nodes, l->m.live_pods);
}

static int pw_live_event(struct pw_live *l, enum pw_kube_ev type, const cJSON *o, bool pods)
{
	char err[PW_SCHED_ERRLEN];
	const char *ns, *name;
	int i;

	pthread_mutex_lock(&l->lock);
	switch (type) {
	case PW_KUBE_EV_LIST:
		pw_live_relist(l, o, pods);
		if (pods)
			l->pods_synced = true;
		else
			l->nodes_synced = true;
		break;
	case PW_KUBE_EV_ADDED:
	case PW_KUBE_EV_MODIFIED:
		i = pods ? pw_model_put_pod(&l->m, o, err, sizeof(err))
			 : pw_model_put_node(&l->m, o, err, sizeof(err));
		if (i < 0)
			pw_warn("%s %s: ignoring the object: %s", pods ? "pod" : "node",
				pw_kube_ev_name(type), i == -ENOMEM ? "out of memory" : err);
		else if (pods)
			pw_assumed_apply(l, i);
		break;
	case PW_KUBE_EV_DELETED:
		name = pw_live_obj_name(o, &ns);
		if (name && pods) {
			char key[512];

			pw_model_del_pod(&l->m, ns, name);
			snprintf(key, sizeof(key), "%s/%s", ns, name);
			pw_assumed_forget(l, key);
		} else if (name) {
			pw_model_del_node(&l->m, name);
		}
		break;
	default:
		break;
	}
	l->dirty = true;
	pthread_cond_signal(&l->cond);
	pthread_mutex_unlock(&l->lock);
	return 0;
}

static int pw_live_pod_cb(void *arg, enum pw_kube_ev type, cJSON **obj)
{
	return pw_live_event(arg, type, *obj, true);
}

static int pw_live_node_cb(void *arg, enum pw_kube_ev type, cJSON **obj)
{
	return pw_live_event(arg, type, *obj, false);
}

static void pw_live_pod_err(void *arg, int err, const char *msg)
{
	pw_warn("pod watch: %s (%s); retrying", msg, pw_kube_strerror(err));
}

static void pw_live_node_err(void *arg, int err, const char *msg)
{
	pw_warn("node watch: %s (%s); retrying", msg, pw_kube_strerror(err));
}

static void *pw_live_pods_thread(void *arg)
{
	struct pw_live *l = arg;
	/* Finished pods use nothing; with this selector they leave as DELETED. */
	static const char sel[] = "status.phase!=Succeeded,status.phase!=Failed";
	char *esc = pw_kube_escape(sel), *query = NULL;

	if (esc && asprintf(&query, "fieldSelector=%s", esc) < 0)
		query = NULL;
	const struct pw_kube_informer inf = {
		.path = "/api/v1/pods",
		.query = query,
		.cb = pw_live_pod_cb,
		.on_error = pw_live_pod_err,
		.arg = l,
	};
	if (query)
		pw_kube_informer_run(l->kpods, &inf);
	else
		pw_err("out of memory");
	free(esc);
	free(query);
	return NULL;
}

static void *pw_live_nodes_thread(void *arg)
{
	struct pw_live *l = arg;
	const struct pw_kube_informer inf = {
		.path = "/api/v1/nodes",
		.cb = pw_live_node_cb,
		.on_error = pw_live_node_err,
		.arg = l,
	};

	pw_kube_informer_run(l->knodes, &inf);
	return NULL;
}

/* ---- leader election ---- */

static void *pw_live_lease_thread(void *arg)
{
	struct pw_live *l = arg;
	uint64_t period = (uint64_t)l->lease_s * 1000000000ull / 3;

	while (!pw_cli_signal_caught() && !pw_kube_canceled(l->klease)) {
		bool leader = false, was = atomic_load(&l->is_leader);
		uint64_t t = pw_now_ns();
		int r = pw_kube_lease_try(l->klease, l->lease_ns, l->lease_name, l->identity,
					  l->lease_s, &leader);

		if (r && r != PW_KUBE_E_CANCELED)
			pw_warn("leader election: %s", pw_kube_last_error(l->klease));
		/* Others wait a full lease duration after they last saw it change: binding
		 * stays safe for that long after the renewal began; keep a margin. */
		atomic_store(&l->leader_until, leader ? t + period * 2 : 0);
		atomic_store(&l->is_leader, leader);
		if (leader != was) {
			pw_info("leader election: %s lease %s/%s as %s",
				leader ? "acquired" : "lost", l->lease_ns, l->lease_name,
				l->identity);
			pthread_mutex_lock(&l->lock);
			l->dirty = true;
			pthread_cond_signal(&l->cond);
			pthread_mutex_unlock(&l->lock);
		}
		for (uint64_t end = pw_now_ns() + period; pw_now_ns() < end;) {
			if (pw_cli_signal_caught() || pw_kube_canceled(l->klease))
				break;
			struct timespec ts = { 0, 50 * 1000000L };
			nanosleep(&ts, NULL);
		}
	}
	return NULL;
}

static bool pw_live_may_bind(struct pw_live *l)
{
	return !l->leader_elect || pw_now_ns() < atomic_load(&l->leader_until);
}

/* ---- scheduling ---- */

static uint64_t pw_live_backoff(uint32_t attempts)
{
	uint64_t b = PW_LIVE_BACKOFF_MIN;

	while (--attempts > 0 && b < PW_LIVE_BACKOFF_MAX)
		b *= 2;
	return b < PW_LIVE_BACKOFF_MAX ? b : PW_LIVE_BACKOFF_MAX;
}

static bool pw_live_due(const struct pw_live *l, const struct pw_pod *p, uint64_t now)
{
	if (!pw_pod_pending(p) || strcmp(p->sched_name, l->name) != 0)
		return false;
	if (!p->attempts)
		return true;
	if (now < p->retry_at_ns)
		return false;
	return p->fail_gen != l->m.gen || now - p->failed_at_ns >= PW_LIVE_FLUSH_NS;
}

struct pw_live_todo {
	char *key, *ns, *name, *uid, *node; /* node NULL: report it unschedulable */
	bool bound;			    /* bound: post its Scheduled event */
	char reason[PW_SCHED_ERRLEN];
};

static void pw_live_todo_clear(struct pw_live_todo *t)
{
	free(t->key);
	free(t->ns);
	free(t->name);
	free(t->uid);
	free(t->node);
	memset(t, 0, sizeof(*t));
}

/* Move *t into @r (t is zeroed); false when @r is full. Lock held. */
static bool pw_live_ring_put(struct pw_live_ring *r, struct pw_live_todo *t)
{
	if (r->len == r->cap)
		return false;
	r->v[(r->head + r->len) % r->cap] = *t;
	r->len++;
	memset(t, 0, sizeof(*t));
	return true;
}

/* Take the oldest entry of @r into *t; false when empty. Lock held. */
static bool pw_live_ring_take(struct pw_live_ring *r, struct pw_live_todo *t)
{
	if (!r->len)
		return false;
	*t = r->v[r->head];
	memset(&r->v[r->head], 0, sizeof(*t));
	r->head = (r->head + 1) % r->cap;
	r->len--;
	return true;
}

static int pw_live_ring_init(struct pw_live_ring *r, unsigned cap)
{
	r->v = calloc(cap, sizeof(*r->v));
	r->cap = cap;
	return r->v ? 0 : -ENOMEM;
}

static void pw_live_ring_free(struct pw_live_ring *r)
{
	struct pw_live_todo t;

	while (r->v && pw_live_ring_take(r, &t))
		pw_live_todo_clear(&t);
	free(r->v);
	r->v = NULL;
}

static void pw_live_fail(struct pw_live *l, int pi, uint64_t gen)
{
	struct pw_pod *p = &l->m.pods[pi];
	uint64_t now = pw_now_ns();

	p->attempts++;
	p->failed_at_ns = now;
	p->fail_gen = gen;
	p->retry_at_ns = now + pw_live_backoff(p->attempts);
}

/* The model's pod of @t, if it is still the same pod (uid). Lock held. */
static struct pw_pod *pw_live_todo_pod(struct pw_live *l, const struct pw_live_todo *t)
{
	int pi = pw_model_find_pod(&l->m, t->ns, t->name);
	struct pw_pod *p = pi >= 0 ? &l->m.pods[pi] : NULL;

	if (p && t->uid && (!p->uid || strcmp(p->uid, t->uid) != 0))
		return NULL;
	return p;
}

static void pw_live_event_fill(const struct pw_live *l, const struct pw_live_todo *t,
			       const char *type, const char *reason, struct pw_kube_event *ev)
{
	*ev = (struct pw_kube_event){
		.type = type,
		.reason = reason,
		.message = t->reason,
		.component = l->name,
		.instance = l->identity,
		.kind = "Pod",
		.ns = t->ns,
		.name = t->name,
		.uid = t->uid,
	};
}

/*
 * Report an unschedulable pod: a Warning FailedScheduling Event, which each
 * later attempt updates (count, lastTimestamp, message) as kube-scheduler's
 * event correlator does, and PodScheduled=False/Unschedulable, patched only
 * when the pod does not have that condition with this message already.
 * Lock not held.
 */
static void pw_live_report(struct pw_live *l, struct pw_kube *k, const struct pw_live_todo *t)
{
	struct pw_kube_event_series ser = { .count = 0 };
	struct pw_kube_event ev;
	struct pw_pod *p;
	bool patch = true;
	long st = 0;

	pthread_mutex_lock(&l->lock);
	p = pw_live_todo_pod(l, t);
	if (p && p->fail_event) {
		snprintf(ser.name, sizeof(ser.name), "%s", p->fail_event);
		ser.count = p->fail_event_n;
	}
	if (p && p->unsched_msg && !strcmp(p->unsched_msg, t->reason))
		patch = false;
	pthread_mutex_unlock(&l->lock);

	pw_live_event_fill(l, t, "Warning", "FailedScheduling", &ev);
	if (pw_kube_event_record(k, &ev, &ser, &st))
		pw_warn("%s: event: %s", t->key, pw_kube_last_error(k));
	if (patch && pw_kube_pod_condition_set(k, t->ns, t->name, "PodScheduled", "False",
					       "Unschedulable", t->reason, &st)) {
		if (st != 404)
			pw_warn("%s: status: %s", t->key, pw_kube_last_error(k));
		patch = false;
	}

	pthread_mutex_lock(&l->lock);
	p = pw_live_todo_pod(l, t);
	if (p && ser.count) {
		char *name = strdup(ser.name);

		if (name) {
			free(p->fail_event);
			p->fail_event = name;
			p->fail_event_n = ser.count;
		}
	}
	if (p && patch) { /* the watch will say so too; until then, no second patch */
		char *msg = strdup(t->reason);

		if (msg) {
			free(p->unsched_msg);
			p->unsched_msg = msg;
		}
	}
	pthread_mutex_unlock(&l->lock);
}

/*
 * The model charges @t's pod to t->node for a binding that did not happen:
 * take it back. Lock held. Returns the pod's index, or -1 when it is gone.
 */
static int pw_live_unbind(struct pw_live *l, const struct pw_live_todo *t)
{
	int pi = pw_model_find_pod(&l->m, t->ns, t->name);

	if (pi >= 0 && l->m.pods[pi].node_name && !strcmp(l->m.pods[pi].node_name, t->node))
		pw_model_unbind(&l->m, pi);
	return pi;
}

/*
 * Someone else bound the pod (409), or it is gone (404): read it back so that
 * the model has the truth. Until then the model keeps charging our binding,
 * so that the placing thread, which runs beside the binds, does not place
 * the pod again meanwhile. When it cannot be read, our charge is undone and
 * the pod tried again after backoff. Lock not held.
 */
static void pw_live_reread(struct pw_live *l, struct pw_kube *k, const struct pw_live_todo *t)
{
	cJSON *pod = NULL;
	long st = 0;
	int r, pi;

	r = pw_kube_pod_get(k, t->ns, t->name, &st, &pod);
	pthread_mutex_lock(&l->lock);
	pi = pw_model_find_pod(&l->m, t->ns, t->name);
	if (pi >= 0 && !r) {
		char err[PW_SCHED_ERRLEN];

		pw_assumed_forget(l, t->key);
		if (pw_model_put_pod(&l->m, pod, err, sizeof(err)) < 0)
			pw_warn("%s: re-read: %s", t->key, err);
	} else if (pi >= 0 && st == 404) {
		pw_model_del_pod(&l->m, t->ns, t->name);
	} else if (pi >= 0) {
		pw_warn("%s: re-read: %s", t->key, pw_kube_last_error(k));
		pi = pw_live_unbind(l, t);
		pw_assumed_forget(l, t->key);
		if (pi >= 0)
			pw_live_fail(l, pi, PW_LIVE_BIND_FAILED);
	}
	pthread_mutex_unlock(&l->lock);
	cJSON_Delete(pod);
}

/* Bind one placed pod; the model already charges it. Lock not held. */
static void pw_live_bind(struct pw_live *l, struct pw_kube *k, struct pw_live_todo *t)
{
	long st = 0;
	int r, pi;

	if (!pw_live_may_bind(l)) {
		r = -EPERM;
		snprintf(t->reason, sizeof(t->reason), "not the leader any more");
	} else {
		r = pw_kube_pod_bind(k, t->ns, t->name, t->uid, t->node, &st);
	}
	if (!r) {
		pw_info("bound %s to %s: %s", t->key, t->node, t->reason);
		t->bound = true;
		pthread_mutex_lock(&l->lock);
		l->binds++;
		/* Its event waits until no bind does, as kube-scheduler's broadcaster
		 * posts them off the scheduling path (and drops them when full). */
		if (pw_live_ring_put(&l->ev, t))
			pthread_cond_signal(&l->qcond);
		else
			l->ev_dropped++;
		pthread_mutex_unlock(&l->lock);
		return;
	}
	if (r == PW_KUBE_E_HTTP && (st == 409 || st == 404)) {
		pw_info("%s: %s on bind (%s); re-reading it", t->key,
			st == 409 ? "conflict" : "not found", pw_kube_last_error(k));
		pthread_mutex_lock(&l->lock);
		l->conflicts++;
		pthread_mutex_unlock(&l->lock);
		pw_live_reread(l, k, t);
		return;
	}
	if (r != -EPERM && r != PW_KUBE_E_CANCELED)
		pw_warn("bind %s to %s: %s", t->key, t->node, pw_kube_last_error(k));
	pthread_mutex_lock(&l->lock);
	l->failures++;
	pi = pw_live_unbind(l, t);
	if (pi >= 0) {
		pw_assumed_forget(l, t->key);
		pw_live_fail(l, pi, PW_LIVE_BIND_FAILED);
	}
	pthread_mutex_unlock(&l->lock);
}

static void pw_live_scheduled(struct pw_live *l, struct pw_kube *k, const struct pw_live_todo *t)
{
	struct pw_kube_event ev;

	pw_live_event_fill(l, t, "Normal", "Scheduled", &ev);
	if (pw_kube_event_create(k, &ev, NULL))
		pw_dbg("%s: event: %s", t->key, pw_kube_last_error(k));
}

/* ---- the workers: binds and reports go out concurrently, in placement order ---- */

static void *pw_live_worker(void *arg)
{
	struct pw_live_worker *w = arg;
	struct pw_live *l = w->l;

	pthread_mutex_lock(&l->lock);
	for (;;) {
		struct pw_live_todo t;
		bool got = false;

		while (!l->qstop && !(got = pw_live_ring_take(&l->q, &t)) &&
		       !(got = pw_live_ring_take(&l->ev, &t)))
			pthread_cond_wait(&l->qcond, &l->lock);
		if (l->qstop) {
			/* What is still queued stays pending for the next leader. */
			if (got)
				pw_live_todo_clear(&t);
			break;
		}
		pthread_cond_signal(&l->qspace);
		pthread_mutex_unlock(&l->lock);
		if (t.bound)
			pw_live_scheduled(l, w->k, &t);
		else if (t.node)
			pw_live_bind(l, w->k, &t);
		else
			pw_live_report(l, w->k, &t);
		pw_live_todo_clear(&t);
		pthread_mutex_lock(&l->lock);
	}
	pthread_mutex_unlock(&l->lock);
	return NULL;
}

/* Queue @t for a worker (it takes t's strings); waits while the queue is full. Lock held. */
static void pw_live_push(struct pw_live *l, struct pw_live_todo *t)
{
	while (l->q.len == l->q.cap && !l->qstop)
		pthread_cond_wait(&l->qspace, &l->lock);
	if (l->qstop || !pw_live_ring_put(&l->q, t)) {
		pw_live_todo_clear(t);
		return;
	}
	pthread_cond_signal(&l->qcond);
}

/* One round: place due pods, up to a batch. Called and returns with the lock held. */
static void pw_live_round(struct pw_live *l)
{
	uint64_t now = pw_now_ns();
	struct pw_live_todo t;
	unsigned done = 0;

	for (unsigned i = 0; i < l->m.npods && done < PW_LIVE_BATCH; i++) {
		struct pw_decision d;
		bool oom = false;

		if (pw_cli_signal_caught())
			return;
		if (!l->m.pods[i].key || !pw_live_due(l, &l->m.pods[i], now))
			continue;
		if (l->leader_elect && !pw_live_may_bind(l))
			return;
		done++;
		pw_sched_place(&l->m, (int)i, &d);

		const struct pw_pod *p = &l->m.pods[i];
		memset(&t, 0, sizeof(t));
		t.key = pw_sched_strdup(p->key, &oom);
		t.ns = pw_sched_strdup(p->ns, &oom);
		t.name = pw_sched_strdup(p->name, &oom);
		t.uid = pw_sched_strdup(p->uid, &oom);
		if (d.node >= 0)
			t.node = pw_sched_strdup(l->m.nodes[d.node].name, &oom);
		snprintf(t.reason, sizeof(t.reason), "%s", d.reason);
		if (oom) {
			pw_live_todo_clear(&t);
			return;
		}
		if (d.node >= 0) {
			pw_model_bind(&l->m, (int)i, d.node);
			pw_assumed_add(l, p, t.node);
		} else {
			pw_live_fail(l, (int)i, l->m.gen);
			pw_info("cannot place %s: %s", t.key, t.reason);
		}
		pw_live_push(l, &t); /* may wait, and the model change meanwhile */
		now = pw_now_ns();
	}
}

static int pw_live_ext_bind(void *arg, const char *ns, const char *name, const char *uid,
			    const char *node, char *err, size_t errlen)
{
	struct pw_live *l = arg;
	long st = 0;
	int pi, ni;

	if (pw_kube_pod_bind(l->kext, ns, name, uid, node, &st)) {
		snprintf(err, errlen, "%s", pw_kube_last_error(l->kext));
		return -1;
	}
	pthread_mutex_lock(&l->lock);
	pi = pw_model_find_pod(&l->m, ns, name);
	ni = pw_model_find_node(&l->m, node);
	if (pi >= 0 && ni >= 0 && pw_pod_pending(&l->m.pods[pi])) {
		pw_model_bind(&l->m, pi, ni);
		pw_assumed_add(l, &l->m.pods[pi], node);
	}
	pthread_mutex_unlock(&l->lock);
	pw_info("extender bound %s/%s to %s", ns, name, node);
	return 0;
}

static const char pw_run_usage[] =
	"Usage: podwire-scheduler run [OPTIONS]\n"
	"\n"
	"Schedule the pods whose spec.schedulerName is podwire-scheduler: list and\n"
	"watch pods and nodes, place each pending pod by its latency requirement and\n"
	"resources, bind it (pods/binding), and for a pod that fits nowhere post a\n"
	"FailedScheduling event and set PodScheduled=False (Unschedulable); it is\n"
	"tried again when the cluster changes, with backoff (1 s doubling to 10 s).\n"
	"A repeat updates the same event (its count) and patches the pod's status\n"
	"only when the condition's message changes.\n"
	"\n"
	"API server (default: $KUBECONFIG, in-cluster when\n"
	"$KUBERNETES_SERVICE_HOST is set, else ~/.kube/config):\n"
	"  -k, --kubeconfig PATH    kubeconfig file (token or client certificate users)\n"
	"  -i, --in-cluster         the pod's service account\n"
	"  -m, --master URL         this URL, no credentials (tests)\n"
	"\n"
	"Scheduling:\n"
	"  -n, --scheduler-name N   pods to schedule (default: the policy's,\n"
	"                           podwire-scheduler)\n"
	"  -p, --policy FILE        policy JSON (also --config); default: built-in\n"
	"  -c, --concurrency N      API requests in flight for binds and reports\n"
	"                           (default 16, 1..256): decisions are made one at a\n"
	"                           time, in order; their binds go out while the next\n"
	"                           pods are placed\n"
	"\n"
	"Leader election (only the holder of the Lease binds):\n"
	"  -L, --leader-elect       take part\n"
	"      --lease-namespace NS (default kube-system)\n"
	"      --lease-name NAME    (default podwire-scheduler)\n"
	"      --identity ID        (default HOSTNAME_PID)\n"
	"      --lease-duration S   seconds (default 15); renewed every S/3\n"
	"\n"
	"  -x, --extender-listen HOST:PORT  also serve kube-scheduler's extender API\n"
	"  -v, --log-level LEVEL    error, warn, info (default) or debug\n"
	"  -h, --help               this text\n"
	"\n"
	"Stops on SIGTERM or SIGINT (gives the lease up) with status 0; 1 when the\n"
	"API server configuration is unusable, 2 on bad usage.\n";

static int pw_live_parse(struct pw_live *l, int argc, char **argv, const char **policy)
{
	const struct pw_cli_opt opts[] = {
		PW_CLI_OPT("kubeconfig", 'k', PW_CLI_STR, &l->kubeconfig),
		PW_CLI_OPT("in-cluster", 'i', PW_CLI_FLAG, &l->in_cluster),
		PW_CLI_OPT("master", 'm', PW_CLI_STR, &l->master),
		PW_CLI_OPT("scheduler-name", 'n', PW_CLI_STR, &l->name),
		PW_CLI_OPT("policy", 'p', PW_CLI_STR, policy),
		PW_CLI_OPT("config", 0, PW_CLI_STR, policy),
		PW_CLI_OPT("leader-elect", 'L', PW_CLI_FLAG, &l->leader_elect),
		PW_CLI_OPT("lease-namespace", 0, PW_CLI_STR, &l->lease_ns),
		PW_CLI_OPT("lease-name", 0, PW_CLI_STR, &l->lease_name),
		PW_CLI_OPT("identity", 0, PW_CLI_STR, &l->identity),
		{ .name = "lease-duration",
		  .kind = PW_CLI_INT,
		  .dst = &l->lease_s,
		  .min = 2,
		  .max = 3600 },
		{ .name = "concurrency",
		  .key = 'c',
		  .kind = PW_CLI_INT,
		  .dst = &l->nworkers,
		  .min = 1,
		  .max = 256 },
		PW_CLI_OPT("extender-listen", 'x', PW_CLI_STR, &l->ext_listen),
		PW_CLI_OPT("log-level", 'v', PW_CLI_LOG_LEVEL, NULL),
	};
	int r = pw_cli_parse(argc, argv, opts, PW_ARRAY_SIZE(opts), pw_run_usage);

	if (r)
		return r;
	if (optind != argc)
		return pw_cli_usage_error("run", "unexpected argument", pw_run_usage);
	if (!!l->kubeconfig + l->in_cluster + !!l->master > 1) {
		fprintf(stderr, "podwire-scheduler run: --kubeconfig, --in-cluster and --master "
				"exclude each other\n");
		return 2;
	}
	return 0;
}

/* Handles, the extender and the informer and lease threads. 0, or -1 (logged). */
static int pw_live_start(struct pw_live *l)
{
	if (pw_live_open(l, &l->k) || pw_live_open(l, &l->kpods) || pw_live_open(l, &l->knodes) ||
	    (l->leader_elect && pw_live_open(l, &l->klease)) ||
	    (l->ext_listen && pw_live_open(l, &l->kext)))
		return -1;
	pw_info("scheduling pods of %s via %s%s", l->name, pw_kube_server(l->k),
		l->leader_elect ? " (leader election on)" : "");
	if (l->ext_listen &&
	    pw_ext_start(l->ext_listen, &l->m, &l->lock, pw_live_ext_bind, l, &l->ext))
		return -1;
	if (pthread_create(&l->tnodes, NULL, pw_live_nodes_thread, l))
		return -1;
	l->have_nodes = true;
	if (pthread_create(&l->tpods, NULL, pw_live_pods_thread, l))
		return -1;
	l->have_pods = true;
	if (l->leader_elect) {
		if (pthread_create(&l->tlease, NULL, pw_live_lease_thread, l))
			return -1;
		l->have_lease = true;
	}
	l->workers = calloc((size_t)l->nworkers, sizeof(*l->workers));
	if (pw_live_ring_init(&l->q, PW_LIVE_QUEUE) ||
	    pw_live_ring_init(&l->ev, PW_LIVE_EV_QUEUE) || !l->workers) {
		pw_err("out of memory");
		return -1;
	}
	for (int i = 0; i < l->nworkers; i++) {
		struct pw_live_worker *w = &l->workers[i];

		w->l = l;
		if (pw_live_open(l, &w->k) || pthread_create(&w->t, NULL, pw_live_worker, w))
			return -1;
		w->started = true;
	}
	return 0;
}

/* Place pods as the model changes, until a signal. */
static void pw_live_loop(struct pw_live *l)
{
	pthread_mutex_lock(&l->lock);
	while (!pw_cli_signal_caught()) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 200 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		if (!l->dirty)
			pthread_cond_timedwait(&l->cond, &l->lock, &ts);
		l->dirty = false;
		if (l->pods_synced && l->nodes_synced)
			pw_live_round(l);
	}
	pthread_mutex_unlock(&l->lock);
	pw_info("signal %d: stopping (%lu bound, %lu conflicts, %lu bind failures)",
		pw_cli_signal_caught(), l->binds, l->conflicts, l->failures);
}

/* Undo whatever part of pw_live_start ran; give the lease up if we hold it. */
static void pw_live_stop(struct pw_live *l)
{
	if (l->ext)
		pw_ext_stop(l->ext);
	if (l->kpods)
		pw_kube_cancel(l->kpods);
	if (l->knodes)
		pw_kube_cancel(l->knodes);
	if (l->klease)
		pw_kube_cancel(l->klease);
	if (l->have_pods)
		pthread_join(l->tpods, NULL);
	if (l->have_nodes)
		pthread_join(l->tnodes, NULL);
	if (l->have_lease)
		pthread_join(l->tlease, NULL);
	pthread_mutex_lock(&l->lock);
	l->qstop = true;
	pthread_cond_broadcast(&l->qcond);
	pthread_cond_broadcast(&l->qspace);
	pthread_mutex_unlock(&l->lock);
	for (int i = 0; l->workers && i < l->nworkers; i++) {
		if (l->workers[i].started) {
			pw_kube_cancel(l->workers[i].k);
			pthread_join(l->workers[i].t, NULL);
		}
		pw_kube_close(l->workers[i].k);
	}
	free(l->workers);
	if (l->ev.len || l->ev_dropped)
		pw_info("%u Scheduled events not posted at exit, %lu dropped (queue full)",
			l->ev.len, l->ev_dropped);
	pw_live_ring_free(&l->q);
	pw_live_ring_free(&l->ev);
	if (l->leader_elect && l->k && atomic_load(&l->is_leader) &&
	    pw_kube_lease_release(l->k, l->lease_ns, l->lease_name, l->identity))
		pw_warn("leader election: release: %s", pw_kube_last_error(l->k));
	pw_kube_close(l->k);
	pw_kube_close(l->kpods);
	pw_kube_close(l->knodes);
	pw_kube_close(l->klease);
	pw_kube_close(l->kext);
}

int pw_cmd_run(int argc, char **argv)
{
	static struct pw_live live; /* large */
	struct pw_live *l = &live;
	const char *policy = NULL;
	char idbuf[300], host[256] = "podwire-scheduler";
	int r, ret = 1;

	memset(l, 0, sizeof(*l));
	l->lease_ns = "kube-system";
	l->lease_name = "podwire-scheduler";
	l->lease_s = 15;
	l->nworkers = PW_LIVE_WORKERS;
	pw_log_ident = "podwire-scheduler";
	r = pw_live_parse(l, argc, argv, &policy);
	if (r)
		return r < 0 ? 0 : r;
	if (pw_cli_model(&l->pol, &l->m, policy))
		return 1;
	if (!l->name)
		l->name = l->pol.scheduler_name;
	if (!l->identity) {
		gethostname(host, sizeof(host) - 1);
		snprintf(idbuf, sizeof(idbuf), "%s_%ld", host, (long)getpid());
		l->identity = idbuf;
	}
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->cond, NULL);
	pthread_cond_init(&l->qcond, NULL);
	pthread_cond_init(&l->qspace, NULL);
	pw_cli_signals_catch();
	if (!pw_live_start(l)) {
		pw_live_loop(l);
		ret = 0;
	}
	pw_live_stop(l);
	while (l->nassumed)
		pw_assumed_drop(l, 0);
	free(l->assumed);
	pw_model_free(&l->m);
	pw_policy_free(&l->pol);
	pthread_cond_destroy(&l->cond);
	pthread_cond_destroy(&l->qcond);
	pthread_cond_destroy(&l->qspace);
	pthread_mutex_destroy(&l->lock);
	return ret;
}
