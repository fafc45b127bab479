/* SPDX-License-Identifier: MIT */
/*
 * List and watch against the API-server double: events split across chunks
 * and several per chunk, bookmarks, selector transitions, 410 Gone (in-stream
 * and HTTP), a malformed line, streams cut mid-event, the line cap, cancel
 * from another thread, and the informer's backoff, resume and re-list.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube_test.h"

#define MAX_EV 256

struct ev {
	enum pw_kube_ev type;
	char name[64];
	char rv[PW_KUBE_RV_MAX];
	int code;
};

struct rec {
	pthread_mutex_t mu;
	struct ev ev[MAX_EV];
	int n;
	int lists, list_items;
	int errs[64];
	int nerr;
	bool done;
	int rc;
	struct pw_kube *k;
	struct pw_kube_watch w;
	struct pw_kube_informer inf;
	pthread_t thread;
};

static struct kt_double dbl;
static struct pw_kube *ctl;

static int record(void *arg, enum pw_kube_ev type, cJSON **obj)
{
	struct rec *r = arg;
	const cJSON *meta = cJSON_GetObjectItem(*obj, "metadata");
	const cJSON *name = cJSON_GetObjectItem(meta, "name"), *rv;
	struct ev *e;

	pthread_mutex_lock(&r->mu);
	if (type == PW_KUBE_EV_LIST) {
		r->lists++;
		r->list_items = cJSON_GetArraySize(cJSON_GetObjectItem(*obj, "items"));
	} else if (r->n < MAX_EV) {
		e = &r->ev[r->n++];
		memset(e, 0, sizeof(*e));
		e->type = type;
		if (cJSON_IsString(name))
			snprintf(e->name, sizeof(e->name), "%s", name->valuestring);
		rv = cJSON_GetObjectItem(meta, "resourceVersion");
		if (cJSON_IsString(rv))
			snprintf(e->rv, sizeof(e->rv), "%s", rv->valuestring);
		if (type == PW_KUBE_EV_ERROR)
			e->code = cJSON_GetObjectItem(*obj, "code")->valueint;
	}
	pthread_mutex_unlock(&r->mu);
	if (type == PW_KUBE_EV_ADDED) {
		/* Take ownership, as a cache would. */
		cJSON_Delete(*obj);
		*obj = NULL;
	}
	return 0;
}

static void on_error(void *arg, int err, const char *msg)
{
	struct rec *r = arg;

	(void)msg;
	pthread_mutex_lock(&r->mu);
	if (r->nerr < 64)
		r->errs[r->nerr++] = err;
	pthread_mutex_unlock(&r->mu);
}

/* Runs r's informer when it has one, else its single watch. */
static void *watch_thread(void *arg)
{
	struct rec *r = arg;
	int rc = r->inf.path ? pw_kube_informer_run(r->k, &r->inf) : pw_kube_watch(r->k, &r->w);

	pthread_mutex_lock(&r->mu);
	r->rc = rc;
	r->done = true;
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

static struct rec *rec_new(void)
{
	struct rec *r = calloc(1, sizeof(*r));

	PW_CHECK(r, "calloc");
	pthread_mutex_init(&r->mu, NULL);
	r->k = kt_open(&dbl);
	return r;
}

static void rec_free(struct rec *r)
{
	pw_kube_close(r->k);
	pthread_mutex_destroy(&r->mu);
	free(r);
}

/* Start watching path from rv in a thread. */
static struct rec *watch_start(const char *path, const char *query, const char *rv, int timeout)
{
	struct rec *r = rec_new();

	kt_wait_watches(ctl, 0); /* the double has noticed earlier watches end */
	r->w.path = path;
	r->w.query = query;
	r->w.timeout_s = timeout;
	r->w.cb = record;
	r->w.arg = r;
	snprintf(r->w.rv, sizeof(r->w.rv), "%s", rv);
	PW_CHECK(pthread_create(&r->thread, NULL, watch_thread, r) == 0, "pthread_create");
	return r;
}

/* Wait (10 s at most) until r has n events, or is done when n < 0. */
static void rec_wait(struct rec *r, int n, int line)
{
	double end = kt_now() + 10;

	for (;;) {
		pthread_mutex_lock(&r->mu);
		bool ok = n < 0 ? r->done : r->n >= n;
		int have = r->n, done = r->done, rc = r->rc;
		pthread_mutex_unlock(&r->mu);
		if (ok)
			return;
		if (kt_now() > end)
			PW_FAIL("line %d: waited for %d events, have %d (done %d rc %d)", line, n,
				have, done, rc);
		kt_msleep(5);
	}
}

static int rec_join(struct rec *r)
{
	pthread_join(r->thread, NULL);
	return r->rc;
}

static void current_rv(char rv[PW_KUBE_RV_MAX])
{
	cJSON *s = kt_ctl(ctl, "GET", "/_test/state", NULL);

	snprintf(rv, PW_KUBE_RV_MAX, "%s", cJSON_GetObjectItem(s, "resourceVersion")->valuestring);
	cJSON_Delete(s);
}

#define POD(ns, name)                                                                              \
	"{\"metadata\":{\"name\":\"" name "\",\"namespace\":\"" ns "\","                           \
	"\"labels\":{\"app\":\"podwire-test-with-a-longish-label-value\"}},"                       \
	"\"spec\":{\"schedulerName\":\"pw\",\"containers\":[{\"name\":\"c\"}]}}"

static void test_list_watch(void)
{
	char rv[PW_KUBE_RV_MAX], now[PW_KUBE_RV_MAX], *q;
	struct pw_kube *k;
	cJSON *list;
	struct rec *r;
	double t0;
	int rc;

	kt_ctl0(ctl, "POST", "/_test/objects",
		"{\"pods\":[" POD("default", "p1") "," POD("default", "p2") "]}");
	k = kt_open(&dbl);
	rc = pw_kube_list(k, "/api/v1/namespaces/default/pods", NULL, &list, rv);
	PW_CHECK(rc == 0, "rc %d: %s", rc, pw_kube_last_error(k));
	PW_CHECK(!strcmp(cJSON_GetObjectItem(list, "kind")->valuestring, "PodList"), "kind");
	PW_CHECK_EQ(cJSON_GetArraySize(cJSON_GetObjectItem(list, "items")), 2);
	current_rv(now);
	PW_CHECK(!strcmp(rv, now), "list rv %s, server %s", rv, now);
	cJSON_Delete(list);

	/* Field selectors as the scheduler uses them. */
	q = pw_kube_escape("spec.schedulerName=pw,spec.nodeName=");
	char query[256];
	snprintf(query, sizeof(query), "fieldSelector=%s", q);
	free(q);
	rc = pw_kube_list(k, "/api/v1/pods", query, &list, now);
	PW_CHECK(rc == 0 && cJSON_GetArraySize(cJSON_GetObjectItem(list, "items")) == 2, "rc %d",
		 rc);
	cJSON_Delete(list);
	rc = pw_kube_list(k, "/api/v1/pods", "fieldSelector=status.phase%21%3DPending", &list, now);
	PW_CHECK(rc == 0 && cJSON_GetArraySize(cJSON_GetObjectItem(list, "items")) == 0, "rc %d",
		 rc);
	cJSON_Delete(list);
	rc = pw_kube_list(k, "/api/v1/pods", "fieldSelector=spec.bogus%3Dx", &list, now);
	PW_CHECK(rc == PW_KUBE_E_HTTP && strstr(pw_kube_last_error(k), "not supported"), "rc %d %s",
		 rc, pw_kube_last_error(k));
	pw_kube_close(k);

	/* Watch with events cut into 7-byte chunks, three events written together. */
	kt_ctl0(ctl, "POST", "/_test/split", "{\"bytes\":7}");
	r = watch_start("/api/v1/namespaces/default/pods", NULL, rv, 30);
	kt_wait_watches(ctl, 1);
	kt_ctl0(ctl, "POST", "/_test/objects",
		"{\"pods\":[" POD("default", "p3") "," POD("default", "p4") "," POD("default",
										    "p5") "]}");
	rec_wait(r, 3, __LINE__);
	kt_ctl0(ctl, "POST", "/_test/split", "{\"bytes\":0}");
	current_rv(now);
	for (int i = 0; i < 3; i++) {
		char want[8];

		snprintf(want, sizeof(want), "p%d", i + 3);
		PW_CHECK(r->ev[i].type == PW_KUBE_EV_ADDED && !strcmp(r->ev[i].name, want),
			 "event %d: %s %s", i, pw_kube_ev_name(r->ev[i].type), r->ev[i].name);
	}
	PW_CHECK(!strcmp(r->ev[2].rv, now), "rv %s, server %s", r->ev[2].rv, now);

	/* A bookmark carries the current resourceVersion. */
	kt_ctl0(ctl, "POST", "/_test/bookmarks", "{\"interval\":0.1}");
	rec_wait(r, 4, __LINE__);
	kt_ctl0(ctl, "POST", "/_test/bookmarks", "{\"interval\":60}");
	PW_CHECK(r->ev[3].type == PW_KUBE_EV_BOOKMARK, "got %s", pw_kube_ev_name(r->ev[3].type));
	PW_CHECK(!strcmp(r->ev[3].rv, now), "bookmark rv %s, server %s", r->ev[3].rv, now);

	/* Deletion. */
	kt_ctl0(ctl, "DELETE", "/_test/objects/pods/default/p3", NULL);
	rec_wait(r, 5, __LINE__);
	PW_CHECK(r->ev[4].type == PW_KUBE_EV_DELETED && !strcmp(r->ev[4].name, "p3"), "%s %s",
		 pw_kube_ev_name(r->ev[4].type), r->ev[4].name);
	pthread_mutex_lock(&r->mu);
	int nbefore = r->n;
	pthread_mutex_unlock(&r->mu);

	/* Cancel from this thread: the watch returns promptly. */
	t0 = kt_now();
	pw_kube_cancel(r->k);
	rc = rec_join(r);
	PW_CHECK(rc == PW_KUBE_E_CANCELED, "rc %d", rc);
	PW_CHECK(kt_now() - t0 < 0.9, "cancel took %.3f s", kt_now() - t0);
	PW_CHECK(!strcmp(r->w.rv, r->ev[nbefore - 1].rv), "watch rv %s", r->w.rv);
	PW_CHECK(pw_kube_canceled(r->k), "sticky");
	PW_CHECK(pw_kube_get(r->k, "/healthz", NULL, NULL) == PW_KUBE_E_CANCELED, "still canceled");
	pw_kube_cancel_reset(r->k);
	PW_CHECK(pw_kube_get(r->k, "/healthz", NULL, NULL) == 0, "usable again");
	rec_free(r);

	/* The server ends the watch (timeoutSeconds): 0. From "" the current
	 * objects arrive first as synthetic ADDED events. */
	r = watch_start("/api/v1/namespaces/default/pods", NULL, "", 1);
	rec_wait(r, -1, __LINE__);
	PW_CHECK(r->rc == 0, "rc %d: %s", r->rc, pw_kube_last_error(r->k));
	PW_CHECK_EQ(r->n, 4); /* p1 p2 p4 p5 */
	rec_join(r);
	rec_free(r);
}

static void test_selector_transition(void)
{
	char rv[PW_KUBE_RV_MAX];
	struct pw_kube *k;
	struct rec *r;
	long st;

	/* Unassigned pods: binding one makes it leave the selection: DELETED. */
	current_rv(rv);
	r = watch_start("/api/v1/pods", "fieldSelector=spec.nodeName%3D", rv, 30);
	kt_wait_watches(ctl, 1);
	k = kt_open(&dbl);
	PW_CHECK(pw_kube_pod_bind(k, "default", "p4", NULL, "node-1", &st) == 0 && st == 201,
		 "bind: %s", pw_kube_last_error(k));
	rec_wait(r, 1, __LINE__);
	PW_CHECK(r->ev[0].type == PW_KUBE_EV_DELETED && !strcmp(r->ev[0].name, "p4"), "%s %s",
		 pw_kube_ev_name(r->ev[0].type), r->ev[0].name);
	pw_kube_cancel(r->k);
	PW_CHECK_EQ(rec_join(r), PW_KUBE_E_CANCELED);
	rec_free(r);
	pw_kube_close(k);
}

static void test_gone(void)
{
	char rv[PW_KUBE_RV_MAX], path[128];
	struct rec *r;
	long st;
	int rc;

	current_rv(rv);
	kt_ctl0(ctl, "POST", "/_test/objects", "{\"pods\":[" POD("default", "g1") "]}");
	kt_ctl0(ctl, "POST", "/_test/compact", "{}");

	/* In-stream ERROR 410, delivered, then PW_KUBE_E_GONE. */
	r = watch_start("/api/v1/pods", NULL, rv, 30);
	rec_wait(r, -1, __LINE__);
	PW_CHECK(r->rc == PW_KUBE_E_GONE, "rc %d: %s", r->rc, pw_kube_last_error(r->k));
	PW_CHECK(r->n == 1 && r->ev[0].type == PW_KUBE_EV_ERROR && r->ev[0].code == 410,
		 "n %d type %s code %d", r->n, pw_kube_ev_name(r->ev[0].type), r->ev[0].code);
	PW_CHECK(!strcmp(r->w.rv, rv), "rv must not move: %s", r->w.rv);
	rec_join(r);

	/* A list at a too old resourceVersion: HTTP 410 with a Status. */
	snprintf(path, sizeof(path), "/api/v1/pods?resourceVersion=%s", rv);
	rc = pw_kube_request(r->k, "GET", path, NULL, NULL, &st, NULL);
	PW_CHECK(rc == 0 && st == 410, "rc %d st %ld", rc, st);

	/* A watch answered with HTTP 410 (older servers): also PW_KUBE_E_GONE. */
	kt_ctl0(ctl, "POST", "/_test/fail", "{\"count\":1,\"code\":410}");
	current_rv(r->w.rv);
	rc = pw_kube_watch(r->k, &r->w);
	PW_CHECK(rc == PW_KUBE_E_GONE, "rc %d: %s", rc, pw_kube_last_error(r->k));
	rec_free(r);
}

static void test_malformed(void)
{
	char rv[PW_KUBE_RV_MAX];
	struct rec *r;
	cJSON *a;

	current_rv(rv);
	r = watch_start("/api/v1/pods", NULL, rv, 30);
	kt_wait_watches(ctl, 1);
	kt_ctl0(ctl, "POST", "/_test/objects", "{\"pods\":[" POD("default", "m1") "]}");
	rec_wait(r, 1, __LINE__);
	a = kt_ctl(ctl, "POST", "/_test/inject", "{\"what\":\"malformed\"}");
	PW_CHECK_EQ(cJSON_GetObjectItem(a, "watches")->valueint, 1);
	cJSON_Delete(a);
	rec_wait(r, -1, __LINE__);
	PW_CHECK(r->rc == PW_KUBE_E_PROTO, "rc %d", r->rc);
	PW_CHECK(strstr(pw_kube_last_error(r->k), "malformed"), "%s", pw_kube_last_error(r->k));
	/* Neither the bad line nor the valid bookmark after it was delivered. */
	PW_CHECK(r->n == 1 && !strcmp(r->ev[0].name, "m1"), "n %d", r->n);
	rec_join(r);
	rec_free(r);
}

static void test_truncated(void)
{
	char rv[PW_KUBE_RV_MAX];
	struct rec *r;

	/* The connection cut in the middle of an event line. */
	current_rv(rv);
	r = watch_start("/api/v1/pods", NULL, rv, 30);
	kt_wait_watches(ctl, 1);
	kt_ctl0(ctl, "POST", "/_test/objects", "{\"pods\":[" POD("default", "t1") "]}");
	rec_wait(r, 1, __LINE__);
	kt_ctl0(ctl, "POST", "/_test/inject", "{\"what\":\"truncate\"}");
	rec_wait(r, -1, __LINE__);
	PW_CHECK(r->rc == PW_KUBE_E_TRUNC, "rc %d: %s", r->rc, pw_kube_last_error(r->k));
	PW_CHECK(strstr(pw_kube_last_error(r->k), "mid-event"), "%s", pw_kube_last_error(r->k));
	PW_CHECK(r->n == 1, "n %d", r->n);
	rec_join(r);
	rec_free(r);

	/* A clean end of stream (terminating chunk) after half a line. */
	current_rv(rv);
	r = watch_start("/api/v1/pods", NULL, rv, 1);
	kt_wait_watches(ctl, 1);
	kt_ctl0(ctl, "POST", "/_test/inject",
		"{\"what\":\"raw\",\"data\":\"{\\\"type\\\":\\\"ADDED\\\",\\\"object\\\":{\"}");
	rec_wait(r, -1, __LINE__);
	PW_CHECK(r->rc == PW_KUBE_E_TRUNC, "rc %d: %s", r->rc, pw_kube_last_error(r->k));
	PW_CHECK(r->n == 0, "n %d", r->n);
	rec_join(r);
	rec_free(r);
}

static void test_line_cap(void)
{
	char rv[PW_KUBE_RV_MAX], *big = malloc(20000);
	struct rec *r;

	PW_CHECK(big, "malloc");
	current_rv(rv);
	r = rec_new();
	kt_wait_watches(ctl, 0);
	pw_kube_set_max_line(r->k, 8192);
	r->w = (struct pw_kube_watch){
		.path = "/api/v1/pods", .timeout_s = 30, .cb = record, .arg = r
	};
	snprintf(r->w.rv, sizeof(r->w.rv), "%s", rv);
	PW_CHECK(pthread_create(&r->thread, NULL, watch_thread, r) == 0, "pthread_create");
	kt_wait_watches(ctl, 1);
	memset(big, 'x', 4000);
	big[4000] = '\0';
	kt_ctl0(ctl, "POST", "/_test/objects",
		"{\"pods\":[{\"metadata\":{\"name\":\"c1\",\"annotations\":{\"a\":\"%s\"}}}]}",
		big);
	rec_wait(r, 1, __LINE__);
	memset(big, 'y', 7000);
	big[7000] = '\0';
	kt_ctl0(ctl, "POST", "/_test/objects",
		"{\"pods\":[{\"metadata\":{\"name\":\"c2\",\"annotations\":{\"a\":\"%s\",\"b\":\"%"
		"s\"}}}]}",
		big, big);
	rec_wait(r, -1, __LINE__);
	PW_CHECK(r->rc == PW_KUBE_E_TOOBIG, "rc %d: %s", r->rc, pw_kube_last_error(r->k));
	PW_CHECK(r->n == 1 && !strcmp(r->ev[0].name, "c1"), "n %d", r->n);
	rec_join(r);
	rec_free(r);
	free(big);
}

static bool has_err(struct rec *r, int err)
{
	bool found = false;

	pthread_mutex_lock(&r->mu);
	for (int i = 0; i < r->nerr; i++)
		found |= r->errs[i] == err;
	pthread_mutex_unlock(&r->mu);
	return found;
}

static void wait_lists(struct rec *r, int n)
{
	double end = kt_now() + 10;

	for (;;) {
		pthread_mutex_lock(&r->mu);
		int have = r->lists;
		pthread_mutex_unlock(&r->mu);
		if (have >= n)
			return;
		if (kt_now() > end)
			PW_FAIL("waited for %d lists, have %d", n, have);
		kt_msleep(5);
	}
}

static const char *last_name(struct rec *r)
{
	static char name[64];

	pthread_mutex_lock(&r->mu);
	snprintf(name, sizeof(name), "%s", r->n ? r->ev[r->n - 1].name : "");
	pthread_mutex_unlock(&r->mu);
	return name;
}

static void test_informer(void)
{
	struct rec *r = rec_new();
	double t0;
	int n;

	kt_ctl0(ctl, "POST", "/_test/objects", "{\"pods\":[" POD("inf", "i0") "]}");
	kt_ctl0(ctl, "DELETE", "/_test/requests", NULL);
	/* The first two lists fail with 500: backoff, then success. */
	kt_ctl0(ctl, "POST", "/_test/fail", "{\"count\":2,\"code\":500,\"match\":\"/inf/\"}");
	r->inf = (struct pw_kube_informer){
		.path = "/api/v1/namespaces/inf/pods",
		.watch_timeout_s = 30,
		.backoff_min_ms = 50,
		.backoff_max_ms = 400,
		.cb = record,
		.on_error = on_error,
		.arg = r,
	};
	PW_CHECK(pthread_create(&r->thread, NULL, watch_thread, r) == 0, "pthread_create");
	wait_lists(r, 1);
	PW_CHECK_EQ(r->list_items, 1);
	PW_CHECK_EQ(r->nerr, 2);
	PW_CHECK(r->errs[0] == PW_KUBE_E_HTTP && r->errs[1] == PW_KUBE_E_HTTP, "errs %d %d",
		 r->errs[0], r->errs[1]);
	PW_CHECK_EQ(kt_count_requests(ctl, "GET", "/inf/pods", 500), 2);

	kt_wait_watches(ctl, 1);
	kt_ctl0(ctl, "POST", "/_test/objects", "{\"pods\":[" POD("inf", "i1") "]}");
	rec_wait(r, 1, __LINE__);
	PW_CHECK(!strcmp(last_name(r), "i1"), "%s", last_name(r));

	/* The server drops every connection: resume from the last resourceVersion,
	 * no re-list; an object created meanwhile still arrives. */
	kt_ctl0(ctl, "POST", "/_test/restart", "{}");
	kt_ctl0(ctl, "POST", "/_test/objects", "{\"pods\":[" POD("inf", "i2") "]}");
	rec_wait(r, 2, __LINE__);
	PW_CHECK(!strcmp(last_name(r), "i2"), "%s", last_name(r));
	PW_CHECK_EQ(r->lists, 1);
	PW_CHECK(has_err(r, PW_KUBE_E_TRUNC), "a cut stream reported");

	/* Restart with compaction: the resume gets 410, the informer re-lists. */
	kt_wait_watches(ctl, 1);
	kt_ctl0(ctl, "POST", "/_test/restart", "{\"compact\":true}");
	wait_lists(r, 2);
	PW_CHECK_EQ(r->list_items, 3);
	PW_CHECK(has_err(r, PW_KUBE_E_GONE), "410 reported");
	kt_wait_watches(ctl, 1);
	pthread_mutex_lock(&r->mu);
	n = r->n;
	pthread_mutex_unlock(&r->mu);
	kt_ctl0(ctl, "POST", "/_test/objects", "{\"pods\":[" POD("inf", "i3") "]}");
	rec_wait(r, n + 1, __LINE__);
	PW_CHECK(!strcmp(last_name(r), "i3"), "%s", last_name(r));

	/* A malformed line: reported, then the informer resumes and goes on. */
	kt_ctl0(ctl, "POST", "/_test/inject", "{\"what\":\"malformed\"}");
	kt_ctl0(ctl, "POST", "/_test/objects", "{\"pods\":[" POD("inf", "i4") "]}");
	rec_wait(r, n + 2, __LINE__);
	PW_CHECK(!strcmp(last_name(r), "i4"), "%s", last_name(r));
	PW_CHECK(has_err(r, PW_KUBE_E_PROTO), "malformed line reported");
	PW_CHECK_EQ(r->lists, 2);

	t0 = kt_now();
	pw_kube_cancel(r->k);
	PW_CHECK_EQ(rec_join(r), PW_KUBE_E_CANCELED);
	PW_CHECK(kt_now() - t0 < 0.9, "cancel took %.3f s", kt_now() - t0);
	rec_free(r);
}

int main(int argc, char **argv)
{
	static const char *const args[] = { "--bookmark-interval", "60", NULL };

	ctl = kt_start(argc, argv, &dbl, args);
	test_list_watch();
	test_selector_transition();
	test_gone();
	test_malformed();
	test_truncated();
	test_line_cap();
	test_informer();
	kt_finish(ctl, &dbl, "kube-watch");
	return 0;
}
