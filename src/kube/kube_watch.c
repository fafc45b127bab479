/* SPDX-License-Identifier: MIT */
/*
 * List, watch and the informer loop. A watch is one long GET whose chunked
 * body is newline-delimited JSON events; curl hands us arbitrary pieces of
 * it, so lines are reassembled here, capped at k->max_line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube_int.h"
#include "../common/util.h"

#define PW_KUBE_WATCH_SLACK_MS	  30000 /* beyond timeoutSeconds before we give up on the server */
#define PW_KUBE_WATCH_ERRBODY	  (1u << 20)
#define PW_KUBE_INFORMER_MIN_MS	  500
#define PW_KUBE_INFORMER_MAX_MS	  30000
#define PW_KUBE_INFORMER_QUICK_NS 1000000000ull /* a clean watch end sooner than this backs off */

static const char *const pw_kube_ev_names[] = {
	[PW_KUBE_EV_ADDED] = "ADDED",	  [PW_KUBE_EV_MODIFIED] = "MODIFIED",
	[PW_KUBE_EV_DELETED] = "DELETED", [PW_KUBE_EV_BOOKMARK] = "BOOKMARK",
	[PW_KUBE_EV_ERROR] = "ERROR",	  [PW_KUBE_EV_LIST] = "LIST",
};

const char *pw_kube_ev_name(enum pw_kube_ev type)
{
	if ((unsigned)type < sizeof(pw_kube_ev_names) / sizeof(pw_kube_ev_names[0]))
		return pw_kube_ev_names[type];
	return "?";
}

static void pw_kube_rv_set(char rv[PW_KUBE_RV_MAX], const cJSON *obj)
{
	const char *s = pw_json_get_str(pw_json_get(obj, "metadata"), "resourceVersion");

	size_t len = s ? strlen(s) : 0;

	if (len && len < PW_KUBE_RV_MAX)
		memcpy(rv, s, len + 1);
}

int pw_kube_list(struct pw_kube *k, const char *path, const char *query, cJSON **list,
		 char rv[PW_KUBE_RV_MAX])
{
	const cJSON *items;
	cJSON *json = NULL;
	char *url;
	long status;
	int rc;

	*list = NULL;
	if (asprintf(&url, "%s%s%s", path, query && query[0] ? "?" : "", query ? query : "") < 0)
		return pw_kube_fail(k, -ENOMEM, "out of memory");
	rc = pw_kube_request(k, "GET", url, NULL, NULL, &status, &json);
	if (rc)
		goto out;
	if (status == 410) {
		rc = pw_kube_fail(k, PW_KUBE_E_GONE, "GET %s: 410 Gone", url);
		goto out;
	}
	if (status != 200) {
		rc = pw_kube_http_fail(k, "GET", url, status, json);
		goto out;
	}
	items = pw_json_get(json, "items");
	if (!cJSON_IsArray(items) && !cJSON_IsNull(items)) {
		rc = pw_kube_fail(k, PW_KUBE_E_PROTO, "GET %s: the answer is not a List", url);
		goto out;
	}
	rv[0] = '\0';
	pw_kube_rv_set(rv, json);
	*list = json;
	json = NULL;
out:
	cJSON_Delete(json);
	free(url);
	return rc;
}

struct pw_kube_wstate {
	struct pw_kube *k;
	struct pw_kube_watch *w;
	struct pw_kube_buf line;
	struct pw_kube_buf errbody;
	long http;
	int err;
	unsigned delivered;
};

static int pw_kube_ev_parse(const char *s, enum pw_kube_ev *t)
{
	for (unsigned i = 0; i <= PW_KUBE_EV_ERROR; i++)
		if (!strcmp(s, pw_kube_ev_names[i])) {
			*t = (enum pw_kube_ev)i;
			return 0;
		}
	return -1;
}

/* One complete line: parse, check, deliver. Returns 0 or the error ending the watch. */
static int pw_kube_watch_line(struct pw_kube_wstate *ws, const char *p, size_t len)
{
	struct pw_kube *k = ws->k;
	cJSON *ev, *obj = NULL;
	const char *type;
	enum pw_kube_ev t;
	int rc = 0;

	while (len > 0 && (p[len - 1] == '\r' || p[len - 1] == ' ' || p[len - 1] == '\t'))
		len--;
	if (len == 0)
		return 0;
	ev = cJSON_ParseWithLength(p, len);
	type = pw_json_get_str(ev, "type");
	if (!ev || !type || pw_kube_ev_parse(type, &t) ||
	    !cJSON_IsObject(pw_json_get(ev, "object"))) {
		rc = pw_kube_fail(k, PW_KUBE_E_PROTO,
				  "watch %s: malformed event line (%zu bytes): %.60s", ws->w->path,
				  len, p);
		goto out;
	}
	obj = cJSON_DetachItemFromObjectCaseSensitive(ev, "object");
	if (t == PW_KUBE_EV_ERROR) {
		const char *msg = pw_json_get_str(obj, "message");
		bool gone = pw_json_get_num(obj, "code", 0) == 410;

		ws->delivered++;
		rc = ws->w->cb(ws->w->arg, t, &obj);
		if (rc == 0)
			rc = pw_kube_fail(k, gone ? PW_KUBE_E_GONE : PW_KUBE_E_PROTO,
					  "watch %s: ERROR event, code %d: %s", ws->w->path,
					  pw_json_get_int(obj, "code", 0), msg ? msg : "");
		goto out;
	}
	pw_kube_rv_set(ws->w->rv, obj);
	ws->delivered++;
	rc = ws->w->cb(ws->w->arg, t, &obj);
	if (rc)
		pw_kube_fail(k, rc, "watch %s: stopped by the callback (%d)", ws->w->path, rc);
out:
	cJSON_Delete(obj);
	cJSON_Delete(ev);
	return rc;
}

static size_t pw_kube_watch_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct pw_kube_wstate *ws = arg;
	size_t n = size * nmemb, off = 0;

	if (ws->http == 0)
		curl_easy_getinfo(ws->k->easy, CURLINFO_RESPONSE_CODE, &ws->http);
	if (ws->http != 200) {
		/* An error answer: keep (some of) the Status body for the message. */
		pw_kube_buf_add(&ws->errbody, ptr, n);
		return n;
	}
	while (off < n) {
		const char *nl = memchr(ptr + off, '\n', n - off);
		size_t seg = nl ? (size_t)(nl - (ptr + off)) : n - off;

		if (ws->line.len + seg > ws->k->max_line) {
			ws->err = pw_kube_fail(ws->k, PW_KUBE_E_TOOBIG,
					       "watch %s: event line over %zu bytes", ws->w->path,
					       ws->k->max_line);
			return 0;
		}
		if (!nl) {
			if (pw_kube_buf_add(&ws->line, ptr + off, seg)) {
				ws->err = pw_kube_fail(ws->k, -ENOMEM, "out of memory");
				return 0;
			}
			break;
		}
		if (ws->line.len == 0) {
			ws->err = pw_kube_watch_line(ws, ptr + off,
						     seg); /* whole line in this piece */
		} else if (pw_kube_buf_add(&ws->line, ptr + off, seg)) {
			ws->err = pw_kube_fail(ws->k, -ENOMEM, "out of memory");
		} else {
			ws->err = pw_kube_watch_line(ws, ws->line.p, ws->line.len);
			ws->line.len = 0;
		}
		if (ws->err)
			return 0;
		off += seg + 1;
	}
	return n;
}

int pw_kube_watch(struct pw_kube *k, struct pw_kube_watch *w)
{
	struct pw_kube_wstate ws = {
		.k = k,
		.w = w,
		.line = { .max = k->max_line + 1 },
		.errbody = { .max = PW_KUBE_WATCH_ERRBODY },
	};
	int timeout_s = w->timeout_s > 0 ? w->timeout_s : 300;
	char *rv = NULL, *url = NULL;
	struct pw_kube_xfer x = {
		.method = "GET",
		.write = pw_kube_watch_write,
		.write_arg = &ws,
		.write_err = &ws.err,
		.timeout_ms = timeout_s * 1000L + PW_KUBE_WATCH_SLACK_MS,
	};
	long status;
	int rc;

	k->err[0] = '\0';
	if (!w->path || w->path[0] != '/' || !w->cb)
		return pw_kube_fail(k, -EINVAL, "watch: a path and a callback are needed");
	w->rv[PW_KUBE_RV_MAX - 1] = '\0';
	rv = pw_kube_escape(w->rv);
	if (!rv || asprintf(&url, "%s?watch=1%s%s%s&timeoutSeconds=%d%s%s", w->path,
			    w->rv[0] ? "&resourceVersion=" : "", rv,
			    w->no_bookmarks ? "" : "&allowWatchBookmarks=true", timeout_s,
			    w->query && w->query[0] ? "&" : "", w->query ? w->query : "") < 0) {
		url = NULL;
		rc = pw_kube_fail(k, -ENOMEM, "out of memory");
		goto out;
	}
	x.url_path = url;
	rc = pw_kube_perform(k, &x, &status);
	if (rc == PW_KUBE_E_TRUNC || (rc == 0 && ws.line.len && status == 200)) {
		if (ws.line.len)
			rc = pw_kube_fail(
				k, PW_KUBE_E_TRUNC,
				"watch %s: stream cut mid-event (%zu bytes of a partial line "
				"dropped)",
				w->path, ws.line.len);
		goto out;
	}
	if (rc)
		goto out;
	if (status != 200) {
		cJSON *body =
			ws.errbody.len ? cJSON_ParseWithLength(ws.errbody.p, ws.errbody.len) : NULL;

		if (status == 410)
			rc = pw_kube_fail(k, PW_KUBE_E_GONE, "watch %s: 410 Gone", w->path);
		else
			rc = pw_kube_http_fail(k, "GET", url, status, body);
		cJSON_Delete(body);
	}
out:
	pw_kube_buf_free(&ws.line);
	pw_kube_buf_free(&ws.errbody);
	free(rv);
	free(url);
	return rc;
}

/* ---- informer ---- */

struct pw_kube_inf_state {
	const struct pw_kube_informer *inf;
	int cb_rc;
	unsigned events;
};

static int pw_kube_informer_cb(void *arg, enum pw_kube_ev type, cJSON **obj)
{
	struct pw_kube_inf_state *s = arg;
	int rc = s->inf->cb(s->inf->arg, type, obj);

	s->events++;
	s->cb_rc = rc;
	return rc;
}

static void pw_kube_informer_report(struct pw_kube *k, const struct pw_kube_informer *inf, int err)
{
	if (inf->on_error)
		inf->on_error(inf->arg, err, k->err);
}

/*
 * After failure @err (0: a watch that ended too soon, nothing to tell): tell
 * inf->on_error, sleep a jittered delay in [d/2, d], then double d up to the
 * cap. Returns 0 or PW_KUBE_E_CANCELED.
 */
static int pw_kube_informer_backoff(struct pw_kube *k, const struct pw_kube_informer *inf, int err,
				    unsigned *delay, unsigned max)
{
	unsigned d = *delay, half = d / 2;
	int rc;

	if (err)
		pw_kube_informer_report(k, inf, err);
	rc = pw_kube_sleep(k, half + (unsigned)(pw_kube_random(k) % (d - half + 1)));
	*delay = d >= max / 2 ? max : d * 2;
	return rc;
}

int pw_kube_informer_run(struct pw_kube *k, const struct pw_kube_informer *inf)
{
	unsigned min = inf->backoff_min_ms ? inf->backoff_min_ms : PW_KUBE_INFORMER_MIN_MS;
	unsigned max = inf->backoff_max_ms ? inf->backoff_max_ms : PW_KUBE_INFORMER_MAX_MS;
	unsigned delay = min;
	struct pw_kube_inf_state s = { .inf = inf };
	struct pw_kube_watch w = {
		.path = inf->path,
		.query = inf->query,
		.timeout_s = inf->watch_timeout_s,
		.no_bookmarks = inf->no_bookmarks,
		.cb = pw_kube_informer_cb,
		.arg = &s,
	};
	int rc;

	if (!inf->path || !inf->cb)
		return pw_kube_fail(k, -EINVAL, "informer: a path and a callback are needed");
	if (max < min)
		max = min;
	for (;;) {
		cJSON *list = NULL;

		rc = pw_kube_list(k, inf->path, inf->query, &list, w.rv);
		if (rc == PW_KUBE_E_CANCELED)
			return rc;
		if (rc) {
			rc = pw_kube_informer_backoff(k, inf, rc, &delay, max);
			if (rc)
				return rc;
			continue;
		}
		s.cb_rc = 0;
		rc = pw_kube_informer_cb(&s, PW_KUBE_EV_LIST, &list);
		cJSON_Delete(list);
		if (rc)
			return rc;
		for (;;) {
			uint64_t start = pw_now_ns();

			s.events = 0;
			rc = pw_kube_watch(k, &w);
			if (s.cb_rc)
				return s.cb_rc;
			if (rc == PW_KUBE_E_CANCELED)
				return rc;
			if (s.events)
				delay = min;
			if (rc == PW_KUBE_E_GONE) {
				pw_kube_informer_report(k, inf, rc);
				break; /* re-list */
			}
			if (rc == 0 &&
			    (s.events || pw_now_ns() - start >= PW_KUBE_INFORMER_QUICK_NS))
				continue;
			rc = pw_kube_informer_backoff(k, inf, rc, &delay, max);
			if (rc)
				return rc;
		}
	}
}
