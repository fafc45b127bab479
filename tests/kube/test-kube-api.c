/* SPDX-License-Identifier: MIT */
/*
 * Typed helpers against the API-server double: binding (409 on a double
 * bind), JSON patch with ~1 escaping, merge and strategic-merge patches,
 * the PodScheduled condition, events, leases and leader election between
 * handles, injected 500s, and the string/time helpers.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube_test.h"

static struct kt_double dbl;
static struct pw_kube *ctl;

static cJSON *state_obj(const char *res, const char *name)
{
	cJSON *s = kt_ctl(ctl, "GET", "/_test/state", NULL), *o, *found = NULL;

	cJSON_ArrayForEach(o, cJSON_GetObjectItem(s, res))
	{
		const cJSON *n = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "metadata"), "name");

		if (!strcmp(n->valuestring, name))
			found = cJSON_Duplicate(o, true);
	}
	cJSON_Delete(s);
	PW_CHECK(found, "%s %s not in the double's state", res, name);
	return found;
}

static const char *sget(const cJSON *o, const char *path)
{
	char buf[256], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = strtok_r(buf, ".", &save); p && o; p = strtok_r(NULL, ".", &save))
		o = cJSON_GetObjectItem(o, p);
	return cJSON_IsString(o) ? o->valuestring : NULL;
}

static void test_bind(void)
{
	struct pw_kube *k = kt_open(&dbl);
	cJSON *pod;
	long st = 0;
	int rc;

	kt_ctl0(ctl, "POST", "/_test/objects",
		"{\"pods\":[{\"metadata\":{\"name\":\"web\",\"namespace\":\"apps\"},"
		"\"spec\":{\"schedulerName\":\"podwire\"}},"
		"{\"metadata\":{\"name\":\"db\",\"namespace\":\"apps\"}}]}");
	kt_ctl0(ctl, "DELETE", "/_test/requests", NULL);
	pod = state_obj("pods", "web");

	/* A uid that is not the pod's: 409 (precondition). */
	rc = pw_kube_pod_bind(k, "apps", "web", "00000000-0000-0000-0000-000000000000", "n1", &st);
	PW_CHECK(rc == PW_KUBE_E_HTTP && st == 409, "rc %d st %ld", rc, st);
	rc = pw_kube_pod_bind(k, "apps", "web", sget(pod, "metadata.uid"), "n1", &st);
	PW_CHECK(rc == 0 && st == 201, "rc %d st %ld: %s", rc, st, pw_kube_last_error(k));
	cJSON_Delete(pod);
	pod = state_obj("pods", "web");
	PW_CHECK(!strcmp(sget(pod, "spec.nodeName"), "n1"), "nodeName");
	cJSON_Delete(pod);

	/* Binding again: 409 Conflict, the reason in the error text. */
	rc = pw_kube_pod_bind(k, "apps", "web", NULL, "n2", &st);
	PW_CHECK(rc == PW_KUBE_E_HTTP && st == 409, "rc %d st %ld", rc, st);
	PW_CHECK(strstr(pw_kube_last_error(k), "Conflict") &&
			 strstr(pw_kube_last_error(k), "already assigned"),
		 "%s", pw_kube_last_error(k));
	rc = pw_kube_pod_bind(k, "apps", "nope", NULL, "n2", &st);
	PW_CHECK(rc == PW_KUBE_E_HTTP && st == 404, "rc %d st %ld", rc, st);
	PW_CHECK_EQ(kt_count_requests(ctl, "POST", "/binding", 201), 1);
	PW_CHECK_EQ(kt_count_requests(ctl, "POST", "/binding", 409), 2);

	/* The binding body is a v1 Binding. */
	cJSON *r = kt_ctl(ctl, "GET", "/_test/requests", NULL), *e, *b = NULL;
	cJSON_ArrayForEach(
		e, cJSON_GetObjectItem(
			   r, "requests")) if (cJSON_GetObjectItem(e, "status")->valueint == 201)
		b = cJSON_GetObjectItem(e, "body");
	PW_CHECK(b && !strcmp(sget(b, "kind"), "Binding") && !strcmp(sget(b, "apiVersion"), "v1") &&
			 !strcmp(sget(b, "metadata.name"), "web") &&
			 !strcmp(sget(b, "metadata.namespace"), "apps") &&
			 !strcmp(sget(b, "target.kind"), "Node") &&
			 !strcmp(sget(b, "target.name"), "n1"),
		 "binding body");
	cJSON_Delete(r);
	pw_kube_close(k);
}

static void test_condition_event(void)
{
	struct pw_kube *k = kt_open(&dbl);
	struct pw_kube_event ev = {
		.type = "Warning",
		.reason = "FailedScheduling",
		.message = "0/3 nodes are available: 3 Insufficient podwire.io/dpdk.",
		.component = "podwire-scheduler",
		.kind = "Pod",
		.ns = "apps",
		.name = "db",
		.uid = "u-1",
	};
	cJSON *pod, *conds, *c, *s, *evs, *found = NULL;
	long st = 0;
	int rc, n = 0;

	rc = pw_kube_pod_condition_set(k, "apps", "db", "PodScheduled", "False", "Unschedulable",
				       "no node fits", &st);
	PW_CHECK(rc == 0 && st == 200, "rc %d st %ld: %s", rc, st, pw_kube_last_error(k));
	rc = pw_kube_pod_condition_set(k, "apps", "db", "PodScheduled", "False", "Unschedulable",
				       "still no node fits", &st);
	PW_CHECK(rc == 0, "rc %d", rc);
	pod = state_obj("pods", "db");
	conds = cJSON_GetObjectItem(cJSON_GetObjectItem(pod, "status"), "conditions");
	cJSON_ArrayForEach(c, conds)
	{
		if (!strcmp(sget(c, "type"), "PodScheduled")) {
			n++;
			PW_CHECK(!strcmp(sget(c, "status"), "False") &&
					 !strcmp(sget(c, "reason"), "Unschedulable") &&
					 !strcmp(sget(c, "message"), "still no node fits") &&
					 sget(c, "lastTransitionTime"),
				 "condition fields");
		}
	}
	PW_CHECK_EQ(n, 1); /* merged by type, not appended */
	PW_CHECK(!strcmp(sget(pod, "status.phase"), "Pending"), "the rest of status kept");
	cJSON_Delete(pod);
	PW_CHECK(pw_kube_pod_condition_set(k, "apps", "gone", "PodScheduled", "False", NULL, NULL,
					   &st) == PW_KUBE_E_HTTP &&
			 st == 404,
		 "404");

	rc = pw_kube_event_create(k, &ev, &st);
	PW_CHECK(rc == 0 && st == 201, "rc %d st %ld: %s", rc, st, pw_kube_last_error(k));
	s = kt_ctl(ctl, "GET", "/_test/state", NULL);
	evs = cJSON_GetObjectItem(s, "events");
	PW_CHECK_EQ(cJSON_GetArraySize(evs), 1);
	found = cJSON_GetArrayItem(evs, 0);
	PW_CHECK(!strcmp(sget(found, "type"), "Warning") &&
			 !strcmp(sget(found, "reason"), "FailedScheduling") &&
			 !strcmp(sget(found, "involvedObject.name"), "db") &&
			 !strcmp(sget(found, "involvedObject.kind"), "Pod") &&
			 !strcmp(sget(found, "involvedObject.uid"), "u-1") &&
			 !strcmp(sget(found, "metadata.namespace"), "apps") &&
			 !strncmp(sget(found, "metadata.name"), "db.", 3) &&
			 !strcmp(sget(found, "source.component"), "podwire-scheduler"),
		 "event fields");
	cJSON_Delete(s);
	pw_kube_close(k);
}

/* The number of events in the double, and the count and message of the one named @name. */
static int events_count(const char *name, double *count, char *msg, size_t len)
{
	cJSON *s = kt_ctl(ctl, "GET", "/_test/state", NULL), *e;
	int n = cJSON_GetArraySize(cJSON_GetObjectItem(s, "events"));

	*count = 0;
	msg[0] = 0;
	cJSON_ArrayForEach(e, cJSON_GetObjectItem(s, "events"))
	{
		if (!strcmp(sget(e, "metadata.name"), name)) {
			*count = cJSON_GetNumberValue(cJSON_GetObjectItem(e, "count"));
			snprintf(msg, len, "%s", sget(e, "message"));
		}
	}
	cJSON_Delete(s);
	return n;
}

/* A repeat updates one Event's count and message; an expired one is created anew. */
static void test_event_series(void)
{
	struct pw_kube *k = kt_open(&dbl);
	struct pw_kube_event ev = {
		.type = "Warning",
		.reason = "FailedScheduling",
		.message = "first",
		.kind = "Pod",
		.ns = "apps",
		.name = "web",
	};
	struct pw_kube_event_series ser = { .count = 0 };
	char first[PW_KUBE_EVENT_NAME_MAX], msg[64], path[400];
	double count;
	long st = 0;
	int n0, rc;

	n0 = events_count("", &count, msg, sizeof(msg));
	rc = pw_kube_event_record(k, &ev, &ser, &st);
	PW_CHECK(rc == 0 && st == 201 && ser.count == 1 && !strncmp(ser.name, "web.", 4),
		 "rc %d st %ld count %u name %s: %s", rc, st, ser.count, ser.name,
		 pw_kube_last_error(k));
	snprintf(first, sizeof(first), "%s", ser.name);
	ev.message = "second";
	rc = pw_kube_event_record(k, &ev, &ser, &st);
	PW_CHECK(rc == 0 && st == 200 && ser.count == 2, "rc %d st %ld count %u", rc, st,
		 ser.count);
	ev.message = "third";
	PW_CHECK_EQ(pw_kube_event_record(k, &ev, &ser, &st), 0);
	PW_CHECK_EQ(events_count(first, &count, msg, sizeof(msg)), n0 + 1);
	PW_CHECK(count == 3 && !strcmp(msg, "third"), "count %g message %s", count, msg);
	PW_CHECK(!strcmp(ser.name, first), "name %s", ser.name);

	/* It expired: the next repeat starts a new Event. */
	snprintf(path, sizeof(path), "/_test/objects/events/apps/%s", first);
	kt_ctl0(ctl, "DELETE", path, NULL);
	PW_CHECK_EQ(pw_kube_event_record(k, &ev, &ser, &st), 0);
	PW_CHECK(ser.count == 1 && strcmp(ser.name, first) != 0, "count %u name %s", ser.count,
		 ser.name);
	PW_CHECK_EQ(events_count(ser.name, &count, msg, sizeof(msg)), n0 + 1);
	PW_CHECK(count == 1, "count %g", count);
	pw_kube_close(k);
}

static void test_node_patches(void)
{
	struct pw_kube *k = kt_open(&dbl);
	char *key = pw_kube_json_pointer_escape("podwire.io/dpdk-interfaces"), body[512];
	cJSON *node = NULL, *labels;
	long st = 0;
	int rc;

	PW_CHECK(key && !strcmp(key, "podwire.io~1dpdk-interfaces"), "%s", key ? key : "(null)");
	free(key);
	key = pw_kube_json_pointer_escape("a~b/c");
	PW_CHECK(!strcmp(key, "a~0b~1c"), "%s", key);
	free(key);
	kt_ctl0(ctl, "POST", "/_test/objects",
		"{\"nodes\":[{\"metadata\":{\"name\":\"n1\",\"labels\":{\"keep\":\"me\"}},"
		"\"status\":{\"capacity\":{\"cpu\":\"4\"}}}]}");

	/* JSON patch: add a label whose key has a '/', as ~1. */
	snprintf(body, sizeof(body),
		 "[{\"op\":\"add\",\"path\":\"/metadata/labels/%s\","
		 "\"value\":\"2\"}]",
		 "podwire.io~1dpdk-interfaces");
	rc = pw_kube_patch(k, "/api/v1/nodes/n1", PW_KUBE_PATCH_JSON, body, &st, &node);
	PW_CHECK(rc == 0 && st == 200, "rc %d st %ld: %s", rc, st, pw_kube_last_error(k));
	labels = cJSON_GetObjectItem(cJSON_GetObjectItem(node, "metadata"), "labels");
	PW_CHECK(!strcmp(sget(labels, "keep"), "me"), "other label kept");
	PW_CHECK(cJSON_GetObjectItem(labels, "podwire.io/dpdk-interfaces") &&
			 !strcmp(cJSON_GetObjectItem(labels, "podwire.io/dpdk-interfaces")
					 ->valuestring,
				 "2"),
		 "label set");
	cJSON_Delete(node);

	/* A failing test op: nothing changes, 422. */
	rc = pw_kube_patch(k, "/api/v1/nodes/n1", PW_KUBE_PATCH_JSON,
			   "[{\"op\":\"test\",\"path\":\"/metadata/labels/keep\",\"value\":\"x\"},"
			   "{\"op\":\"remove\",\"path\":\"/metadata/labels/keep\"}]",
			   &st, NULL);
	PW_CHECK(rc == PW_KUBE_E_HTTP && st == 422, "rc %d st %ld", rc, st);
	node = state_obj("nodes", "n1");
	PW_CHECK(sget(node, "metadata.labels.keep"), "label survived a failed patch");
	cJSON_Delete(node);
	/* Wrong content type for a patch: 415. */
	rc = pw_kube_request(k, "PATCH", "/api/v1/nodes/n1", "application/json", "{}", &st, NULL);
	PW_CHECK(rc == 0 && st == 415, "rc %d st %ld", rc, st);

	/* Merge-patch labels: set one, remove one (null). */
	labels = cJSON_CreateObject();
	cJSON_AddStringToObject(labels, "podwire.io/dpdk", "true");
	cJSON_AddNullToObject(labels, "keep");
	rc = pw_kube_node_labels_patch(k, "n1", labels, &st, &node);
	cJSON_Delete(labels);
	PW_CHECK(rc == 0 && st == 200, "rc %d: %s", rc, pw_kube_last_error(k));
	labels = cJSON_GetObjectItem(cJSON_GetObjectItem(node, "metadata"), "labels");
	PW_CHECK(!cJSON_GetObjectItem(labels, "keep"), "removed");
	PW_CHECK(cJSON_GetObjectItem(labels, "podwire.io/dpdk") &&
			 cJSON_GetObjectItem(labels, "podwire.io/dpdk-interfaces"),
		 "set and kept");
	cJSON_Delete(node);

	/* get: the status is untouched by main-resource patches. */
	rc = pw_kube_node_get(k, "n1", &st, &node);
	PW_CHECK(rc == 0 && st == 200, "rc %d", rc);
	PW_CHECK(!strcmp(sget(node, "status.capacity.cpu"), "4"), "status kept");
	cJSON_Delete(node);
	rc = pw_kube_node_get(k, "nope", &st, &node);
	PW_CHECK(rc == PW_KUBE_E_HTTP && st == 404 && !node, "rc %d st %ld", rc, st);

	/* Injected failure: the next request gets 500 with a Status. */
	kt_ctl0(ctl, "POST", "/_test/fail", "{\"count\":1,\"code\":500}");
	rc = pw_kube_node_get(k, "n1", &st, &node);
	PW_CHECK(rc == PW_KUBE_E_HTTP && st == 500, "rc %d st %ld", rc, st);
	PW_CHECK(strstr(pw_kube_last_error(k), "InternalError"), "%s", pw_kube_last_error(k));
	rc = pw_kube_node_get(k, "n1", &st, &node);
	PW_CHECK(rc == 0, "only one failure");
	cJSON_Delete(node);
	pw_kube_close(k);
}

static cJSON *lease_of(struct pw_kube *k, const char *name)
{
	cJSON *l = NULL;
	long st;
	int rc = pw_kube_lease_get(k, "kube-system", name, &st, &l);

	PW_CHECK(rc == 0 && st == 200, "rc %d st %ld", rc, st);
	return l;
}

static int lease_int(const cJSON *l, const char *f)
{
	return cJSON_GetObjectItem(cJSON_GetObjectItem(l, "spec"), f)->valueint;
}

struct racer {
	struct pw_kube *k;
	const char *id;
	pthread_barrier_t *go;
	bool leader;
	int rc;
};

static void *race(void *arg)
{
	struct racer *r = arg;

	pthread_barrier_wait(r->go);
	r->rc = pw_kube_lease_try(r->k, "kube-system", "race", r->id, 10, &r->leader);
	return NULL;
}

static void test_leases(void)
{
	struct pw_kube *a = kt_open(&dbl), *b = kt_open(&dbl), *c = kt_open(&dbl);
	char acquired[64];
	bool la = false, lb = false;
	cJSON *l, *stale;
	double t0, took;
	long st;
	int rc;

	/* Raw optimistic concurrency: an update with a stale resourceVersion is 409. */
	l = cJSON_Parse("{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\","
			"\"metadata\":{\"name\":\"raw\"},\"spec\":{\"holderIdentity\":\"x\"}}");
	rc = pw_kube_lease_create(a, "kube-system", l, &st, NULL);
	PW_CHECK(rc == 0 && st == 201, "rc %d st %ld", rc, st);
	rc = pw_kube_lease_create(a, "kube-system", l, &st, NULL);
	PW_CHECK(rc == PW_KUBE_E_HTTP && st == 409, "AlreadyExists: rc %d st %ld", rc, st);
	cJSON_Delete(l);
	stale = lease_of(a, "raw");
	l = lease_of(a, "raw");
	cJSON_ReplaceItemInObject(cJSON_GetObjectItem(l, "spec"), "holderIdentity",
				  cJSON_CreateString("y"));
	PW_CHECK(pw_kube_lease_update(a, "kube-system", l, &st, NULL) == 0 && st == 200, "update");
	cJSON_Delete(l);
	rc = pw_kube_lease_update(b, "kube-system", stale, &st, NULL);
	PW_CHECK(rc == PW_KUBE_E_HTTP && st == 409, "stale update: rc %d st %ld", rc, st);
	cJSON_Delete(stale);

	/* a creates and holds; b is refused while a renews. */
	PW_CHECK(pw_kube_lease_try(a, "kube-system", "sched", "a", 2, &la) == 0 && la, "a leads");
	l = lease_of(a, "sched");
	PW_CHECK(!strcmp(sget(l, "spec.holderIdentity"), "a"), "holder");
	PW_CHECK_EQ(lease_int(l, "leaseDurationSeconds"), 2);
	PW_CHECK_EQ(lease_int(l, "leaseTransitions"), 0);
	/* MicroTime: 2006-01-02T15:04:05.000000Z */
	PW_CHECK(strlen(sget(l, "spec.renewTime")) == 27 && sget(l, "spec.renewTime")[19] == '.' &&
			 sget(l, "spec.renewTime")[26] == 'Z',
		 "%s", sget(l, "spec.renewTime"));
	long long us;
	PW_CHECK(pw_kube_time_parse(sget(l, "spec.renewTime"), &us) == 0, "parse");
	snprintf(acquired, sizeof(acquired), "%s", sget(l, "spec.acquireTime"));
	cJSON_Delete(l);
	for (int i = 0; i < 8; i++) {
		PW_CHECK(pw_kube_lease_try(a, "kube-system", "sched", "a", 2, &la) == 0 && la,
			 "a renews (%d)", i);
		PW_CHECK(pw_kube_lease_try(b, "kube-system", "sched", "b", 2, &lb) == 0 && !lb,
			 "b must not lead while a renews (%d)", i);
		kt_msleep(300);
	}
	l = lease_of(a, "sched");
	PW_CHECK(!strcmp(sget(l, "spec.acquireTime"), acquired), "acquireTime kept on renew");
	PW_CHECK_EQ(lease_int(l, "leaseTransitions"), 0);
	cJSON_Delete(l);

	/* a stops renewing: b takes over only after the lease duration. */
	t0 = kt_now();
	while (!lb && kt_now() - t0 < 6) {
		PW_CHECK(pw_kube_lease_try(b, "kube-system", "sched", "b", 2, &lb) == 0, "try");
		if (!lb)
			kt_msleep(100);
	}
	took = kt_now() - t0;
	PW_CHECK(lb, "b never took over");
	PW_CHECK(took >= 1.4 && took < 4.5, "b took over after %.2f s (lease 2 s)", took);
	l = lease_of(b, "sched");
	PW_CHECK(!strcmp(sget(l, "spec.holderIdentity"), "b"), "holder b");
	PW_CHECK_EQ(lease_int(l, "leaseTransitions"), 1);
	PW_CHECK(strcmp(sget(l, "spec.acquireTime"), acquired), "new acquireTime");
	cJSON_Delete(l);
	/* a comes back: not leader (b's lease is fresh). */
	PW_CHECK(pw_kube_lease_try(a, "kube-system", "sched", "a", 2, &la) == 0 && !la,
		 "a follows");

	/* Release: the next candidate takes over at once. */
	PW_CHECK(pw_kube_lease_release(a, "kube-system", "sched", "a") == 0, "not held: no-op");
	PW_CHECK(pw_kube_lease_release(b, "kube-system", "sched", "b") == 0, "release");
	l = lease_of(a, "sched");
	PW_CHECK(!strcmp(sget(l, "spec.holderIdentity"), ""), "released");
	cJSON_Delete(l);
	PW_CHECK(pw_kube_lease_try(a, "kube-system", "sched", "a", 2, &la) == 0 && la, "a again");

	/* Three candidates race, six rounds: for a new lease (create races) and for
	 * one its holder released (update races). One leader each time. */
	const char *winner = NULL;
	for (int round = 0; round < 6; round++) {
		struct pw_kube *ks[3] = { a, b, c };
		const char *ids[3] = { "a", "b", "c" };
		struct racer rs[3];
		pthread_t th[3];
		pthread_barrier_t go;
		int leaders = 0;

		if (round % 2)
			PW_CHECK(pw_kube_lease_release(ks[winner[0] - 'a'], "kube-system", "race",
						       winner) == 0,
				 "release");
		else if (round)
			kt_ctl0(ctl, "DELETE", "/_test/objects/leases/kube-system/race", NULL);
		pthread_barrier_init(&go, NULL, 3);
		for (int i = 0; i < 3; i++) {
			rs[i] = (struct racer){ .k = ks[i], .id = ids[i], .go = &go };
			pthread_create(&th[i], NULL, race, &rs[i]);
		}
		for (int i = 0; i < 3; i++) {
			pthread_join(th[i], NULL);
			PW_CHECK(rs[i].rc == 0, "round %d %s: rc %d", round, ids[i], rs[i].rc);
			leaders += rs[i].leader;
		}
		pthread_barrier_destroy(&go);
		PW_CHECK(leaders == 1, "round %d: %d leaders", round, leaders);
		l = lease_of(a, "race");
		for (int i = 0; i < 3; i++)
			if (rs[i].leader)
				winner = ids[i];
		PW_CHECK(!strcmp(sget(l, "spec.holderIdentity"), winner), "holder");
		PW_CHECK_EQ(lease_int(l, "leaseTransitions"), round % 2);
		cJSON_Delete(l);
	}
	PW_CHECK(pw_kube_lease_try(a, "kube-system", "x", "", 2, &la) == -EINVAL, "no identity");
	pw_kube_close(a);
	pw_kube_close(b);
	pw_kube_close(c);
}

static void test_helpers(void)
{
	char *e = pw_kube_escape("spec.schedulerName=pw,status.phase!=Succeeded a/b");
	long long us;

	PW_CHECK(!strcmp(e, "spec.schedulerName%3Dpw%2Cstatus.phase%21%3DSucceeded%20a%2Fb"), "%s",
		 e);
	free(e);
	PW_CHECK(pw_kube_time_parse("1970-01-01T00:00:01Z", &us) == 0 && us == 1000000, "epoch");
	PW_CHECK(pw_kube_time_parse("2006-01-02T15:04:05.000123Z", &us) == 0 &&
			 us == 1136214245000123LL,
		 "%lld", us);
	PW_CHECK(pw_kube_time_parse("2006-01-02T16:04:05.5+01:00", &us) == 0 &&
			 us == 1136214245500000LL,
		 "%lld", us);
	PW_CHECK(pw_kube_time_parse("2006-01-02 15:04", &us) == -EINVAL, "junk");
	PW_CHECK(pw_kube_time_parse("2006-01-02T15:04:05", &us) == -EINVAL, "no zone");
	PW_CHECK(!strcmp(pw_kube_ev_name(PW_KUBE_EV_BOOKMARK), "BOOKMARK"), "ev name");
	PW_CHECK(strstr(pw_kube_strerror(PW_KUBE_E_GONE), "410"), "strerror");
}

int main(int argc, char **argv)
{
	ctl = kt_start(argc, argv, &dbl, NULL);
	test_helpers();
	test_bind();
	test_condition_event();
	test_event_series();
	test_node_patches();
	test_leases();
	kt_finish(ctl, &dbl, "kube-api");
	return 0;
}
