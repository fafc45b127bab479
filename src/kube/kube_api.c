/* SPDX-License-Identifier: MIT */
/* Typed helpers: pod binding and conditions, events, node labels, leases. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kube_int.h"
#include "../common/util.h"

/* A request with a cJSON body on a path built by pw_kube_path(); 0 only for 2xx. */
static int pw_kube_call(struct pw_kube *k, const char *method, char *path, const char *ctype,
			const cJSON *body, long *status, cJSON **out)
{
	cJSON *json = NULL;
	long st = 0;
	int rc;

	if (out)
		*out = NULL;
	if (!path) {
		rc = pw_kube_fail(k, -ENOMEM, "out of memory");
		goto done;
	}
	rc = pw_kube_request_json(k, method, path, ctype, body, &st, &json);
	if (rc == 0 && (st < 200 || st >= 300))
		rc = pw_kube_http_fail(k, method, path, st, json);
	if (rc == 0 && out) {
		*out = json;
		json = NULL;
	}
done:
	if (status)
		*status = st;
	cJSON_Delete(json);
	free(path);
	return rc;
}

static cJSON *pw_kube_obj_add(cJSON *parent, const char *name)
{
	return parent ? cJSON_AddObjectToObject(parent, name) : NULL;
}

/* Adds a string member when s is not NULL; false only when out of memory. */
static bool pw_kube_str_add(cJSON *obj, const char *name, const char *s)
{
	return !s || (obj && cJSON_AddStringToObject(obj, name, s));
}

int pw_kube_pod_bind(struct pw_kube *k, const char *ns, const char *name, const char *uid,
		     const char *node, long *status)
{
	cJSON *b = cJSON_CreateObject(), *meta, *target;
	int rc;

	if (status)
		*status = 0;
	if (!ns || !name || !node) {
		cJSON_Delete(b);
		return pw_kube_fail(k, -EINVAL, "bind: namespace, pod and node needed");
	}
	meta = pw_kube_obj_add(b, "metadata");
	target = pw_kube_obj_add(b, "target");
	if (!pw_kube_str_add(b, "apiVersion", "v1") || !pw_kube_str_add(b, "kind", "Binding") ||
	    !pw_kube_str_add(meta, "name", name) || !pw_kube_str_add(meta, "namespace", ns) ||
	    !pw_kube_str_add(meta, "uid", uid) || !pw_kube_str_add(target, "apiVersion", "v1") ||
	    !pw_kube_str_add(target, "kind", "Node") || !pw_kube_str_add(target, "name", node)) {
		cJSON_Delete(b);
		return pw_kube_fail(k, -ENOMEM, "out of memory");
	}
	rc = pw_kube_call(k, "POST",
			  pw_kube_path("/api/v1/namespaces/%s/pods/%s/binding", ns, name), NULL, b,
			  status, NULL);
	cJSON_Delete(b);
	return rc;
}

int pw_kube_pod_condition_set(struct pw_kube *k, const char *ns, const char *name, const char *type,
			      const char *cstatus, const char *reason, const char *message,
			      long *status)
{
	cJSON *p = cJSON_CreateObject(), *st, *conds, *c;
	char now[40];
	int rc;

	if (status)
		*status = 0;
	if (!ns || !name || !type || !cstatus) {
		cJSON_Delete(p);
		return pw_kube_fail(k, -EINVAL,
				    "pod condition: namespace, pod, type and status needed");
	}
	pw_kube_time_sec(now, sizeof(now));
	st = pw_kube_obj_add(p, "status");
	conds = st ? cJSON_AddArrayToObject(st, "conditions") : NULL;
	c = cJSON_CreateObject();
	if (!conds || !c || !cJSON_AddItemToArray(conds, c)) {
		cJSON_Delete(c);
		c = NULL;
	}
	if (!c || !pw_kube_str_add(c, "type", type) || !pw_kube_str_add(c, "status", cstatus) ||
	    !pw_kube_str_add(c, "reason", reason) || !pw_kube_str_add(c, "message", message) ||
	    !cJSON_AddNullToObject(c, "lastProbeTime") ||
	    !pw_kube_str_add(c, "lastTransitionTime", now)) {
		cJSON_Delete(p);
		return pw_kube_fail(k, -ENOMEM, "out of memory");
	}
	rc = pw_kube_call(k, "PATCH",
			  pw_kube_path("/api/v1/namespaces/%s/pods/%s/status", ns, name),
			  "application/strategic-merge-patch+json", p, status, NULL);
	cJSON_Delete(p);
	return rc;
}

/* POST a new Event (count 1); its generated name goes to @name (may be NULL). */
static int pw_kube_event_post(struct pw_kube *k, const struct pw_kube_event *ev, char *name,
			      size_t namelen, long *status)
{
	const char *ns = ev->ns ? ev->ns : "default";
	cJSON *e = cJSON_CreateObject(), *meta, *inv, *src;
	char now[40], buf[PW_KUBE_EVENT_NAME_MAX];
	struct timespec ts;
	int rc;

	if (status)
		*status = 0;
	if (!ev->name || !ev->kind) {
		cJSON_Delete(e);
		return pw_kube_fail(k, -EINVAL, "event: involved object kind and name needed");
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(buf, sizeof(buf), "%.200s.%llx", ev->name,
		 (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec);
	pw_kube_time_sec(now, sizeof(now));
	meta = pw_kube_obj_add(e, "metadata");
	inv = pw_kube_obj_add(e, "involvedObject");
	src = pw_kube_obj_add(e, "source");
	if (!pw_kube_str_add(e, "apiVersion", "v1") || !pw_kube_str_add(e, "kind", "Event") ||
	    !pw_kube_str_add(meta, "name", buf) || !pw_kube_str_add(meta, "namespace", ns) ||
	    !pw_kube_str_add(inv, "kind", ev->kind) ||
	    !pw_kube_str_add(inv, "apiVersion", ev->api_version ? ev->api_version : "v1") ||
	    !pw_kube_str_add(inv, "namespace", ev->ns) || !pw_kube_str_add(inv, "name", ev->name) ||
	    !pw_kube_str_add(inv, "uid", ev->uid) ||
	    !pw_kube_str_add(e, "type", ev->type ? ev->type : "Normal") ||
	    !pw_kube_str_add(e, "reason", ev->reason) ||
	    !pw_kube_str_add(e, "message", ev->message) ||
	    !pw_kube_str_add(src, "component", ev->component) ||
	    !pw_kube_str_add(e, "reportingComponent", ev->component ? ev->component : "") ||
	    !pw_kube_str_add(e, "reportingInstance", ev->instance ? ev->instance : "") ||
	    !pw_kube_str_add(e, "firstTimestamp", now) ||
	    !pw_kube_str_add(e, "lastTimestamp", now) || !cJSON_AddNumberToObject(e, "count", 1) ||
	    !cJSON_AddNullToObject(e, "eventTime")) {
		cJSON_Delete(e);
		return pw_kube_fail(k, -ENOMEM, "out of memory");
	}
	rc = pw_kube_call(k, "POST", pw_kube_path("/api/v1/namespaces/%s/events", ns), NULL, e,
			  status, NULL);
	cJSON_Delete(e);
	if (!rc && name)
		snprintf(name, namelen, "%s", buf);
	return rc;
}

int pw_kube_event_create(struct pw_kube *k, const struct pw_kube_event *ev, long *status)
{
	return pw_kube_event_post(k, ev, NULL, 0, status);
}

int pw_kube_event_record(struct pw_kube *k, const struct pw_kube_event *ev,
			 struct pw_kube_event_series *series, long *status)
{
	const char *ns = ev->ns ? ev->ns : "default";
	cJSON *p;
	char now[40];
	long st = 0;
	int rc;

	if (series->count && series->name[0] && series->count < UINT32_MAX) {
		pw_kube_time_sec(now, sizeof(now));
		p = cJSON_CreateObject();
		if (!p || !cJSON_AddNumberToObject(p, "count", series->count + 1.0) ||
		    !pw_kube_str_add(p, "lastTimestamp", now) ||
		    !pw_kube_str_add(p, "message", ev->message)) {
			cJSON_Delete(p);
			return pw_kube_fail(k, -ENOMEM, "out of memory");
		}
		rc = pw_kube_call(k, "PATCH",
				  pw_kube_path("/api/v1/namespaces/%s/events/%s", ns, series->name),
				  "application/merge-patch+json", p, &st, NULL);
		cJSON_Delete(p);
		if (!rc) {
			series->count++;
			if (status)
				*status = st;
			return 0;
		}
		/* Gone (events expire after the server's --event-ttl): start a new one. */
		if (rc != PW_KUBE_E_HTTP || st != 404) {
			if (status)
				*status = st;
			return rc;
		}
	}
	rc = pw_kube_event_post(k, ev, series->name, sizeof(series->name), status);
	series->count = rc ? 0 : 1;
	if (rc)
		series->name[0] = 0;
	return rc;
}

int pw_kube_pod_get(struct pw_kube *k, const char *ns, const char *name, long *status, cJSON **pod)
{
	return pw_kube_call(k, "GET", pw_kube_path("/api/v1/namespaces/%s/pods/%s", ns, name), NULL,
			    NULL, status, pod);
}

int pw_kube_node_get(struct pw_kube *k, const char *name, long *status, cJSON **node)
{
	return pw_kube_call(k, "GET", pw_kube_path("/api/v1/nodes/%s", name), NULL, NULL, status,
			    node);
}

int pw_kube_node_labels_patch(struct pw_kube *k, const char *name, const cJSON *labels,
			      long *status, cJSON **node)
{
	cJSON *p = cJSON_CreateObject(), *meta = pw_kube_obj_add(p, "metadata"), *dup;
	int rc;

	dup = cJSON_Duplicate(labels, true);
	if (!meta || !dup || !cJSON_AddItemToObject(meta, "labels", dup)) {
		cJSON_Delete(dup);
		cJSON_Delete(p);
		if (status)
			*status = 0;
		if (node)
			*node = NULL;
		return pw_kube_fail(k, -ENOMEM, "out of memory");
	}
	rc = pw_kube_call(k, "PATCH", pw_kube_path("/api/v1/nodes/%s", name),
			  "application/merge-patch+json", p, status, node);
	cJSON_Delete(p);
	return rc;
}

/* ---- leases ---- */

#define PW_KUBE_LEASES "/apis/coordination.k8s.io/v1/namespaces/%s/leases"

int pw_kube_lease_get(struct pw_kube *k, const char *ns, const char *name, long *status,
		      cJSON **lease)
{
	return pw_kube_call(k, "GET", pw_kube_path(PW_KUBE_LEASES "/%s", ns, name), NULL, NULL,
			    status, lease);
}

int pw_kube_lease_create(struct pw_kube *k, const char *ns, const cJSON *lease, long *status,
			 cJSON **out)
{
	return pw_kube_call(k, "POST", pw_kube_path(PW_KUBE_LEASES, ns), NULL, lease, status, out);
}

int pw_kube_lease_update(struct pw_kube *k, const char *ns, const cJSON *lease, long *status,
			 cJSON **out)
{
	const char *name = pw_json_get_str(pw_json_get(lease, "metadata"), "name");

	if (!name) {
		if (status)
			*status = 0;
		if (out)
			*out = NULL;
		return pw_kube_fail(k, -EINVAL, "lease update: metadata.name missing");
	}
	return pw_kube_call(k, "PUT", pw_kube_path(PW_KUBE_LEASES "/%s", ns, name), NULL, lease,
			    status, out);
}

static struct pw_kube_lease_obs *pw_kube_lease_obs_find(struct pw_kube *k, const char *key)
{
	struct pw_kube_lease_obs *oldest = &k->obs[0];

	for (int i = 0; i < PW_KUBE_LEASE_OBS; i++) {
		if (k->obs[i].key && !strcmp(k->obs[i].key, key))
			return &k->obs[i];
		if (!k->obs[i].key || (oldest->key && k->obs[i].at_ns < oldest->at_ns))
			oldest = &k->obs[i];
	}
	free(oldest->key);
	free(oldest->record);
	oldest->record = NULL;
	oldest->at_ns = 0;
	oldest->key = strdup(key);
	return oldest->key ? oldest : NULL;
}

/* Remember spec as observed now if it differs from what we saw last. */
static void pw_kube_lease_obs_note(struct pw_kube_lease_obs *o, const cJSON *spec, bool force)
{
	char *rec = cJSON_PrintUnformatted(spec);

	if (!rec)
		return;
	if (force || !o->record || strcmp(o->record, rec) != 0) {
		free(o->record);
		o->record = rec;
		o->at_ns = pw_now_ns();
	} else {
		free(rec);
	}
}

/* spec for identity: times now except acquireTime kept when acquire is NULL. */
static cJSON *pw_kube_lease_spec(const char *identity, int seconds, const char *acquire,
				 int transitions)
{
	cJSON *s = cJSON_CreateObject();
	char now[40];

	pw_kube_time_micro(now, sizeof(now));
	if (!pw_kube_str_add(s, "holderIdentity", identity) ||
	    !cJSON_AddNumberToObject(s, "leaseDurationSeconds", seconds) ||
	    !pw_kube_str_add(s, "acquireTime", acquire ? acquire : now) ||
	    !pw_kube_str_add(s, "renewTime", now) ||
	    !cJSON_AddNumberToObject(s, "leaseTransitions", transitions)) {
		cJSON_Delete(s);
		return NULL;
	}
	return s;
}

/* @nspec (taken; NULL: it could not be made) becomes @lease's spec. 0 or -ENOMEM. */
static int pw_kube_lease_spec_set(struct pw_kube *k, cJSON *lease, cJSON *nspec)
{
	if (!nspec || !cJSON_ReplaceItemInObjectCaseSensitive(lease, "spec", nspec)) {
		cJSON_Delete(nspec);
		return pw_kube_fail(k, -ENOMEM, "out of memory");
	}
	return 0;
}

static int pw_kube_lease_try_create(struct pw_kube *k, const char *ns, const char *name,
				    const char *identity, int seconds, struct pw_kube_lease_obs *o,
				    bool *is_leader)
{
	cJSON *l = cJSON_CreateObject(), *meta = pw_kube_obj_add(l, "metadata"), *spec, *out = NULL;
	long st;
	int rc;

	spec = pw_kube_lease_spec(identity, seconds, NULL, 0);
	if (!spec || !pw_kube_str_add(l, "apiVersion", "coordination.k8s.io/v1") ||
	    !pw_kube_str_add(l, "kind", "Lease") || !pw_kube_str_add(meta, "name", name) ||
	    !pw_kube_str_add(meta, "namespace", ns) || !cJSON_AddItemToObject(l, "spec", spec)) {
		cJSON_Delete(spec);
		cJSON_Delete(l);
		return pw_kube_fail(k, -ENOMEM, "out of memory");
	}
	rc = pw_kube_lease_create(k, ns, l, &st, &out);
	if (rc == 0) {
		pw_kube_lease_obs_note(o, pw_json_get(out, "spec"), true);
		*is_leader = true;
	} else if (rc == PW_KUBE_E_HTTP && st == 409) {
		rc = 0; /* another candidate created it first */
	}
	cJSON_Delete(out);
	cJSON_Delete(l);
	return rc;
}

int pw_kube_lease_try(struct pw_kube *k, const char *ns, const char *name, const char *identity,
		      int lease_seconds, bool *is_leader)
{
	struct pw_kube_lease_obs *o;
	cJSON *lease = NULL, *out = NULL, *nspec;
	const cJSON *spec;
	const char *holder;
	char *key = NULL;
	uint64_t now;
	long st;
	bool mine;
	int rc;

	*is_leader = false;
	if (!ns || !name || !identity || !identity[0] || lease_seconds <= 0)
		return pw_kube_fail(k, -EINVAL,
				    "lease: namespace, name, identity and duration needed");
	if (asprintf(&key, "%s/%s", ns, name) < 0)
		return pw_kube_fail(k, -ENOMEM, "out of memory");
	o = pw_kube_lease_obs_find(k, key);
	free(key);
	if (!o)
		return pw_kube_fail(k, -ENOMEM, "out of memory");
	rc = pw_kube_lease_get(k, ns, name, &st, &lease);
	if (rc == PW_KUBE_E_HTTP && st == 404)
		return pw_kube_lease_try_create(k, ns, name, identity, lease_seconds, o, is_leader);
	if (rc)
		return rc;
	spec = pw_json_get(lease, "spec");
	if (!cJSON_IsObject(spec)) {
		spec = cJSON_AddObjectToObject(lease, "spec");
		if (!spec) {
			rc = pw_kube_fail(k, -ENOMEM, "out of memory");
			goto out;
		}
	}
	pw_kube_lease_obs_note(o, spec, false);
	holder = pw_json_get_str(spec, "holderIdentity");
	mine = holder && !strcmp(holder, identity);
	now = pw_now_ns();
	if (holder && holder[0] && !mine &&
	    o->at_ns + (uint64_t)pw_json_get_int(spec, "leaseDurationSeconds", 0) * 1000000000ull >
		    now) {
		rc = 0; /* held by another and not expired */
		goto out;
	}
	nspec = pw_kube_lease_spec(identity, lease_seconds,
				   mine ? pw_json_get_str(spec, "acquireTime") : NULL,
				   pw_json_get_int(spec, "leaseTransitions", 0) + (mine ? 0 : 1));
	rc = pw_kube_lease_spec_set(k, lease, nspec);
	if (rc)
		goto out;
	rc = pw_kube_lease_update(k, ns, lease, &st, &out);
	if (rc == 0) {
		pw_kube_lease_obs_note(o, pw_json_get(out, "spec"), true);
		*is_leader = true;
	} else if (rc == PW_KUBE_E_HTTP && st == 409) {
		rc = 0; /* somebody else wrote it since our GET */
	}
out:
	cJSON_Delete(out);
	cJSON_Delete(lease);
	return rc;
}

int pw_kube_lease_release(struct pw_kube *k, const char *ns, const char *name, const char *identity)
{
	cJSON *lease = NULL, *nspec;
	const cJSON *spec;
	const char *holder;
	long st;
	int rc;

	rc = pw_kube_lease_get(k, ns, name, &st, &lease);
	if (rc == PW_KUBE_E_HTTP && st == 404)
		return 0;
	if (rc)
		return rc;
	spec = pw_json_get(lease, "spec");
	holder = pw_json_get_str(spec, "holderIdentity");
	if (!holder || strcmp(holder, identity) != 0)
		goto out;
	nspec = pw_kube_lease_spec("", 1, NULL, pw_json_get_int(spec, "leaseTransitions", 0));
	rc = pw_kube_lease_spec_set(k, lease, nspec);
	if (rc)
		goto out;
	rc = pw_kube_lease_update(k, ns, lease, &st, NULL);
	if (rc == PW_KUBE_E_HTTP && st == 409)
		rc = 0; /* it changed hands meanwhile: not ours to release */
	for (int i = 0; i < PW_KUBE_LEASE_OBS; i++) {
		free(k->obs[i].record); /* forget what we saw: the next try starts fresh */
		k->obs[i].record = NULL;
	}
out:
	cJSON_Delete(lease);
	return rc;
}
