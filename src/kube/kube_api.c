/* SPDX-License-Identifier: MIT */
/* Typed helpers: pod binding and conditions, events, node labels, leases. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kube_int.h"
#include "../common/util.h"

/* A request with a cJSON body on a path built by kube_path(); 0 only for 2xx. */
static int call(struct pw_kube *k, const char *method, char *path, const char *ctype,
		const cJSON *body, long *status, cJSON **out)
{
	cJSON *json = NULL;
	long st = 0;
	int rc;

	if (out)
		*out = NULL;
	if (!path) {
		rc = kube_fail(k, -ENOMEM, "out of memory");
		goto done;
	}
	rc = pw_kube_request_json(k, method, path, ctype, body, &st, &json);
	if (rc == 0 && (st < 200 || st >= 300))
		rc = kube_http_fail(k, method, path, st, json);
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

static cJSON *obj_add(cJSON *parent, const char *name)
{
	return parent ? cJSON_AddObjectToObject(parent, name) : NULL;
}

/* Adds a string member when s is not NULL; false only when out of memory. */
static bool str_add(cJSON *obj, const char *name, const char *s)
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
		return kube_fail(k, -EINVAL, "bind: namespace, pod and node needed");
	}
	meta = obj_add(b, "metadata");
	target = obj_add(b, "target");
	if (!str_add(b, "apiVersion", "v1") || !str_add(b, "kind", "Binding") ||
	    !str_add(meta, "name", name) || !str_add(meta, "namespace", ns) ||
	    !str_add(meta, "uid", uid) || !str_add(target, "apiVersion", "v1") ||
	    !str_add(target, "kind", "Node") || !str_add(target, "name", node)) {
		cJSON_Delete(b);
		return kube_fail(k, -ENOMEM, "out of memory");
	}
	rc = call(k, "POST", kube_path("/api/v1/namespaces/%s/pods/%s/binding", ns, name), NULL, b,
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
		return kube_fail(k, -EINVAL,
				 "pod condition: namespace, pod, type and status needed");
	}
	kube_time_sec(now, sizeof(now));
	st = obj_add(p, "status");
	conds = st ? cJSON_AddArrayToObject(st, "conditions") : NULL;
	c = cJSON_CreateObject();
	if (!conds || !c || !cJSON_AddItemToArray(conds, c)) {
		cJSON_Delete(c);
		c = NULL;
	}
	if (!c || !str_add(c, "type", type) || !str_add(c, "status", cstatus) ||
	    !str_add(c, "reason", reason) || !str_add(c, "message", message) ||
	    !cJSON_AddNullToObject(c, "lastProbeTime") || !str_add(c, "lastTransitionTime", now)) {
		cJSON_Delete(p);
		return kube_fail(k, -ENOMEM, "out of memory");
	}
	rc = call(k, "PATCH", kube_path("/api/v1/namespaces/%s/pods/%s/status", ns, name),
		  "application/strategic-merge-patch+json", p, status, NULL);
	cJSON_Delete(p);
	return rc;
}

int pw_kube_event_create(struct pw_kube *k, const struct pw_kube_event *ev, long *status)
{
	const char *ns = ev->ns ? ev->ns : "default";
	cJSON *e = cJSON_CreateObject(), *meta, *inv, *src;
	char now[40], name[300];
	struct timespec ts;
	int rc;

	if (status)
		*status = 0;
	if (!ev->name || !ev->kind) {
		cJSON_Delete(e);
		return kube_fail(k, -EINVAL, "event: involved object kind and name needed");
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(name, sizeof(name), "%.240s.%llx", ev->name,
		 (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec);
	kube_time_sec(now, sizeof(now));
	meta = obj_add(e, "metadata");
	inv = obj_add(e, "involvedObject");
	src = obj_add(e, "source");
	if (!str_add(e, "apiVersion", "v1") || !str_add(e, "kind", "Event") ||
	    !str_add(meta, "name", name) || !str_add(meta, "namespace", ns) ||
	    !str_add(inv, "kind", ev->kind) ||
	    !str_add(inv, "apiVersion", ev->api_version ? ev->api_version : "v1") ||
	    !str_add(inv, "namespace", ev->ns) || !str_add(inv, "name", ev->name) ||
	    !str_add(inv, "uid", ev->uid) || !str_add(e, "type", ev->type ? ev->type : "Normal") ||
	    !str_add(e, "reason", ev->reason) || !str_add(e, "message", ev->message) ||
	    !str_add(src, "component", ev->component) ||
	    !str_add(e, "reportingComponent", ev->component ? ev->component : "") ||
	    !str_add(e, "reportingInstance", ev->instance ? ev->instance : "") ||
	    !str_add(e, "firstTimestamp", now) || !str_add(e, "lastTimestamp", now) ||
	    !cJSON_AddNumberToObject(e, "count", 1) || !cJSON_AddNullToObject(e, "eventTime")) {
		cJSON_Delete(e);
		return kube_fail(k, -ENOMEM, "out of memory");
	}
	rc = call(k, "POST", kube_path("/api/v1/namespaces/%s/events", ns), NULL, e, status, NULL);
	cJSON_Delete(e);
	return rc;
}

int pw_kube_pod_get(struct pw_kube *k, const char *ns, const char *name, long *status, cJSON **pod)
{
	return call(k, "GET", kube_path("/api/v1/namespaces/%s/pods/%s", ns, name), NULL, NULL,
		    status, pod);
}

int pw_kube_node_get(struct pw_kube *k, const char *name, long *status, cJSON **node)
{
	return call(k, "GET", kube_path("/api/v1/nodes/%s", name), NULL, NULL, status, node);
}

int pw_kube_node_labels_patch(struct pw_kube *k, const char *name, const cJSON *labels,
			      long *status, cJSON **node)
{
	cJSON *p = cJSON_CreateObject(), *meta = obj_add(p, "metadata"), *dup;
	int rc;

	dup = cJSON_Duplicate(labels, true);
	if (!meta || !dup || !cJSON_AddItemToObject(meta, "labels", dup)) {
		cJSON_Delete(dup);
		cJSON_Delete(p);
		if (status)
			*status = 0;
		if (node)
			*node = NULL;
		return kube_fail(k, -ENOMEM, "out of memory");
	}
	rc = call(k, "PATCH", kube_path("/api/v1/nodes/%s", name), "application/merge-patch+json",
		  p, status, node);
	cJSON_Delete(p);
	return rc;
}

/* ---- leases ---- */

#define LEASES "/apis/coordination.k8s.io/v1/namespaces/%s/leases"

int pw_kube_lease_get(struct pw_kube *k, const char *ns, const char *name, long *status,
		      cJSON **lease)
{
	return call(k, "GET", kube_path(LEASES "/%s", ns, name), NULL, NULL, status, lease);
}

int pw_kube_lease_create(struct pw_kube *k, const char *ns, const cJSON *lease, long *status,
			 cJSON **out)
{
	return call(k, "POST", kube_path(LEASES, ns), NULL, lease, status, out);
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
		return kube_fail(k, -EINVAL, "lease update: metadata.name missing");
	}
	return call(k, "PUT", kube_path(LEASES "/%s", ns, name), NULL, lease, status, out);
}

static struct kube_lease_obs *obs_find(struct pw_kube *k, const char *key)
{
	struct kube_lease_obs *oldest = &k->obs[0];

	for (int i = 0; i < KUBE_LEASE_OBS; i++) {
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
static void obs_note(struct kube_lease_obs *o, const cJSON *spec, bool force)
{
	char *rec = cJSON_PrintUnformatted(spec);

	if (!rec)
		return;
	if (force || !o->record || strcmp(o->record, rec)) {
		free(o->record);
		o->record = rec;
		o->at_ns = pw_now_ns();
	} else {
		free(rec);
	}
}

/* spec for identity: times now except acquireTime kept when acquire is NULL. */
static cJSON *lease_spec(const char *identity, int seconds, const char *acquire, int transitions)
{
	cJSON *s = cJSON_CreateObject();
	char now[40];

	pw_kube_time_micro(now, sizeof(now));
	if (!str_add(s, "holderIdentity", identity) ||
	    !cJSON_AddNumberToObject(s, "leaseDurationSeconds", seconds) ||
	    !str_add(s, "acquireTime", acquire ? acquire : now) || !str_add(s, "renewTime", now) ||
	    !cJSON_AddNumberToObject(s, "leaseTransitions", transitions)) {
		cJSON_Delete(s);
		return NULL;
	}
	return s;
}

static int lease_create(struct pw_kube *k, const char *ns, const char *name, const char *identity,
			int seconds, struct kube_lease_obs *o, bool *is_leader)
{
	cJSON *l = cJSON_CreateObject(), *meta = obj_add(l, "metadata"), *spec, *out = NULL;
	long st;
	int rc;

	spec = lease_spec(identity, seconds, NULL, 0);
	if (!spec || !str_add(l, "apiVersion", "coordination.k8s.io/v1") ||
	    !str_add(l, "kind", "Lease") || !str_add(meta, "name", name) ||
	    !str_add(meta, "namespace", ns) || !cJSON_AddItemToObject(l, "spec", spec)) {
		cJSON_Delete(spec);
		cJSON_Delete(l);
		return kube_fail(k, -ENOMEM, "out of memory");
	}
	rc = pw_kube_lease_create(k, ns, l, &st, &out);
	if (rc == 0) {
		obs_note(o, pw_json_get(out, "spec"), true);
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
	struct kube_lease_obs *o;
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
		return kube_fail(k, -EINVAL,
				 "lease: namespace, name, identity and duration needed");
	if (asprintf(&key, "%s/%s", ns, name) < 0)
		return kube_fail(k, -ENOMEM, "out of memory");
	o = obs_find(k, key);
	free(key);
	if (!o)
		return kube_fail(k, -ENOMEM, "out of memory");
	rc = pw_kube_lease_get(k, ns, name, &st, &lease);
	if (rc == PW_KUBE_E_HTTP && st == 404)
		return lease_create(k, ns, name, identity, lease_seconds, o, is_leader);
	if (rc)
		return rc;
	spec = pw_json_get(lease, "spec");
	if (!cJSON_IsObject(spec)) {
		spec = cJSON_AddObjectToObject(lease, "spec");
		if (!spec) {
			rc = kube_fail(k, -ENOMEM, "out of memory");
			goto out;
		}
	}
	obs_note(o, spec, false);
	holder = pw_json_get_str(spec, "holderIdentity");
	mine = holder && !strcmp(holder, identity);
	now = pw_now_ns();
	if (holder && holder[0] && !mine &&
	    o->at_ns + (uint64_t)pw_json_get_int(spec, "leaseDurationSeconds", 0) * 1000000000ull >
		    now) {
		rc = 0; /* held by another and not expired */
		goto out;
	}
	nspec = lease_spec(identity, lease_seconds,
			   mine ? pw_json_get_str(spec, "acquireTime") : NULL,
			   pw_json_get_int(spec, "leaseTransitions", 0) + (mine ? 0 : 1));
	if (!nspec || !cJSON_ReplaceItemInObjectCaseSensitive(lease, "spec", nspec)) {
		cJSON_Delete(nspec);
		rc = kube_fail(k, -ENOMEM, "out of memory");
		goto out;
	}
	rc = pw_kube_lease_update(k, ns, lease, &st, &out);
	if (rc == 0) {
		obs_note(o, pw_json_get(out, "spec"), true);
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
	if (!holder || strcmp(holder, identity))
		goto out;
	nspec = lease_spec("", 1, NULL, pw_json_get_int(spec, "leaseTransitions", 0));
	if (!nspec || !cJSON_ReplaceItemInObjectCaseSensitive(lease, "spec", nspec)) {
		cJSON_Delete(nspec);
		rc = kube_fail(k, -ENOMEM, "out of memory");
		goto out;
	}
	rc = pw_kube_lease_update(k, ns, lease, &st, NULL);
	if (rc == PW_KUBE_E_HTTP && st == 409)
		rc = 0; /* it changed hands meanwhile: not ours to release */
	for (int i = 0; i < KUBE_LEASE_OBS; i++) {
		free(k->obs[i].record); /* forget what we saw: the next try starts fresh */
		k->obs[i].record = NULL;
	}
out:
	cJSON_Delete(lease);
	return rc;
}
