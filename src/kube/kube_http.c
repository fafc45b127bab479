/* SPDX-License-Identifier: MIT */
/*
 * pwkube transfers: the curl transfer loop, TLS and authentication headers,
 * and the request helpers. Transfers run on a private multi handle so that
 * pw_kube_cancel() can wake them at once (curl_multi_wakeup) instead of
 * waiting for a progress callback.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube_int.h"

static int pw_kube_curl_fail(struct pw_kube *k, CURLcode c, const char *url)
{
	const char *what = k->curl_err[0] ? k->curl_err : curl_easy_strerror(c);
	int err;

	switch (c) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		err = -EHOSTUNREACH;
		break;
	case CURLE_COULDNT_CONNECT:
		err = -ECONNREFUSED;
		break;
	case CURLE_OPERATION_TIMEDOUT:
		err = -ETIMEDOUT;
		break;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_SSL_CLIENTCERT:
		err = PW_KUBE_E_TLS;
		break;
	case CURLE_GOT_NOTHING:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_PARTIAL_FILE:
		err = PW_KUBE_E_TRUNC;
		break;
	case CURLE_OUT_OF_MEMORY:
		err = -ENOMEM;
		break;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
		err = -EINVAL;
		break;
	case CURLE_ABORTED_BY_CALLBACK:
		err = PW_KUBE_E_CANCELED;
		break;
	default:
		err = -EIO;
		break;
	}
	return pw_kube_fail(k, err, "%s: %s", url, what);
}

static size_t pw_kube_body_collect(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct pw_kube_buf *b = arg;

	if (pw_kube_buf_add(b, ptr, size * nmemb))
		return 0;
	return size * nmemb;
}

/* A client certificate or key: in memory (curl copies nothing) or a file. */
static void pw_kube_pem_set(CURL *e, const struct pw_kube_blob *b, CURLoption blob_opt,
			    CURLoption type_opt, const char *file, CURLoption file_opt)
{
	if (b->data) {
		struct curl_blob blob = { b->data, b->len, CURL_BLOB_NOCOPY };

		curl_easy_setopt(e, blob_opt, &blob);
		curl_easy_setopt(e, type_opt, "PEM");
	} else if (file) {
		curl_easy_setopt(e, file_opt, file);
	}
}

static int pw_kube_xfer_setup(struct pw_kube *k, const struct pw_kube_xfer *x, const char *url,
			      struct curl_slist **hdrs)
{
	CURL *e = k->easy;
	struct curl_slist *h = NULL, *t;
	char *auth = NULL;
	int rc = -ENOMEM;

#define PW_KUBE_HDR_ADD(s)                                                                         \
	do {                                                                                       \
		t = curl_slist_append(h, (s));                                                     \
		if (!t)                                                                            \
			goto out;                                                                  \
		h = t;                                                                             \
	} while (0)

	curl_easy_reset(e);
	k->curl_err[0] = '\0';
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, k->curl_err);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, k->connect_ms);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, x->timeout_ms);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 30L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 10L);
	curl_easy_setopt(e, CURLOPT_USERAGENT, k->user_agent ? k->user_agent : PW_KUBE_UA);
	if (!strcmp(x->method, "GET"))
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	else
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, x->method);
	if (x->body) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->body_len);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body);
	}
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, x->write ? x->write : pw_kube_body_collect);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x->write ? x->write_arg : (void *)x->out);

	if (k->insecure) {
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	} else if (k->ca.data || k->ca_file) {
		/* Trust exactly the cluster's CA, as client-go does. */
		curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
		if (k->ca.data) {
			struct curl_blob blob = { k->ca.data, k->ca.len, CURL_BLOB_NOCOPY };

			curl_easy_setopt(e, CURLOPT_CAINFO, NULL);
			curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &blob);
		} else {
			curl_easy_setopt(e, CURLOPT_CAINFO, k->ca_file);
		}
	}
	pw_kube_pem_set(e, &k->cert, CURLOPT_SSLCERT_BLOB, CURLOPT_SSLCERTTYPE, k->cert_file,
			CURLOPT_SSLCERT);
	pw_kube_pem_set(e, &k->key, CURLOPT_SSLKEY_BLOB, CURLOPT_SSLKEYTYPE, k->key_file,
			CURLOPT_SSLKEY);

	PW_KUBE_HDR_ADD("Accept: application/json");
	PW_KUBE_HDR_ADD("Expect:"); /* no 100-continue round trip for big bodies */
	if (x->content_type) {
		if (asprintf(&auth, "Content-Type: %s", x->content_type) < 0) {
			auth = NULL;
			goto out;
		}
		PW_KUBE_HDR_ADD(auth);
		free(auth);
		auth = NULL;
	}
	if (k->token) {
		if (asprintf(&auth, "Authorization: Bearer %s", k->token) < 0) {
			auth = NULL;
			goto out;
		}
		PW_KUBE_HDR_ADD(auth);
	} else if (k->username) {
		curl_easy_setopt(e, CURLOPT_USERNAME, k->username);
		curl_easy_setopt(e, CURLOPT_PASSWORD, k->password ? k->password : "");
	}
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	*hdrs = h;
	h = NULL;
	rc = 0;
out:
	pw_kube_secret_free(auth); /* curl_slist_append copied it */
	curl_slist_free_all(h);
	return rc;
#undef PW_KUBE_HDR_ADD
}

int pw_kube_perform(struct pw_kube *k, const struct pw_kube_xfer *x, long *status)
{
	struct curl_slist *hdrs = NULL;
	CURLcode result = CURLE_OK;
	char *url = NULL;
	CURLMsg *msg;
	bool added = false;
	int rc, left;

	*status = 0;
	if (atomic_load(&k->canceled))
		return pw_kube_fail(k, PW_KUBE_E_CANCELED, "canceled");
	pw_kube_token_refresh(k, false);
	if (asprintf(&url, "%s%s", k->server, x->url_path) < 0) {
		url = NULL;
		rc = pw_kube_fail(k, -ENOMEM, "out of memory");
		goto out;
	}
	rc = pw_kube_xfer_setup(k, x, url, &hdrs);
	if (rc) {
		pw_kube_fail(k, rc, "out of memory");
		goto out;
	}
	if (curl_multi_add_handle(k->multi, k->easy) != CURLM_OK) {
		rc = pw_kube_fail(k, -ENOMEM, "curl_multi_add_handle failed");
		goto out;
	}
	added = true;
	for (;;) {
		int running = 0;
		CURLMcode mc = curl_multi_perform(k->multi, &running);

		if (mc != CURLM_OK) {
			rc = pw_kube_fail(k, -EIO, "%s: %s", url, curl_multi_strerror(mc));
			goto out;
		}
		if (!running)
			break;
		if (atomic_load(&k->canceled)) {
			rc = pw_kube_fail(k, PW_KUBE_E_CANCELED, "%s: canceled", url);
			goto out;
		}
		mc = curl_multi_poll(k->multi, NULL, 0, 1000, NULL);
		if (mc != CURLM_OK) {
			rc = pw_kube_fail(k, -EIO, "%s: %s", url, curl_multi_strerror(mc));
			goto out;
		}
	}
	while ((msg = curl_multi_info_read(k->multi, &left)))
		if (msg->msg == CURLMSG_DONE && msg->easy_handle == k->easy)
			result = msg->data.result;
	curl_easy_getinfo(k->easy, CURLINFO_RESPONSE_CODE, status);
	if (result == CURLE_WRITE_ERROR && x->write_err && *x->write_err) {
		rc = *x->write_err; /* the callback already wrote k->err */
	} else if (result == CURLE_WRITE_ERROR && x->out) {
		rc = pw_kube_fail(k, x->out->len >= x->out->max ? PW_KUBE_E_TOOBIG : -ENOMEM,
				  "%s: response body over %zu bytes or out of memory", url,
				  x->out->max);
	} else if (result != CURLE_OK) {
		rc = pw_kube_curl_fail(k, result, url);
	} else {
		rc = 0;
		if (*status == 401 && k->token_file)
			k->token_stale = true;
	}
out:
	if (added)
		curl_multi_remove_handle(k->multi, k->easy);
	curl_slist_free_all(hdrs);
	free(url);
	return rc;
}

static int pw_kube_request_once(struct pw_kube *k, const char *method, const char *path,
				const char *content_type, const char *body, long *status,
				cJSON **json)
{
	struct pw_kube_buf out = { .max = PW_KUBE_MAX_BODY };
	struct pw_kube_xfer x = {
		.method = method,
		.url_path = path,
		.content_type = body ? content_type : NULL,
		.body = body,
		.body_len = body ? strlen(body) : 0,
		.timeout_ms = k->total_ms,
		.out = &out,
	};
	int rc;

	rc = pw_kube_perform(k, &x, status);
	if (rc == 0 && json && out.len)
		*json = cJSON_ParseWithLength(out.p, out.len);
	pw_kube_buf_free(&out);
	return rc;
}

int pw_kube_request(struct pw_kube *k, const char *method, const char *path,
		    const char *content_type, const char *body, long *status, cJSON **json)
{
	long st_local;
	int rc;

	if (!status)
		status = &st_local;
	if (json)
		*json = NULL;
	if (!method || !path || path[0] != '/')
		return pw_kube_fail(k, -EINVAL,
				    "request: method and a path starting with '/' needed");
	k->err[0] = '\0';
	rc = pw_kube_request_once(k, method, path, content_type, body, status, json);
	if (rc == 0 && *status == 401 && k->token_file) {
		/* The token may have been rotated under us: re-read and retry once. */
		char *old = k->token ? strdup(k->token) : NULL;

		pw_kube_token_refresh(k, true);
		if (k->token && (!old || strcmp(old, k->token) != 0)) {
			if (json) {
				cJSON_Delete(*json);
				*json = NULL;
			}
			rc = pw_kube_request_once(k, method, path, content_type, body, status,
						  json);
		}
		pw_kube_secret_free(old);
	}
	return rc;
}

int pw_kube_request_json(struct pw_kube *k, const char *method, const char *path,
			 const char *content_type, const cJSON *body, long *status, cJSON **json)
{
	char *text = NULL;
	int rc;

	if (body) {
		text = cJSON_PrintUnformatted(body);
		if (!text) {
			if (json)
				*json = NULL;
			if (status)
				*status = 0;
			return pw_kube_fail(k, -ENOMEM, "out of memory");
		}
	}
	rc = pw_kube_request(k, method, path, content_type ? content_type : "application/json",
			     text, status, json);
	free(text);
	return rc;
}

/* Non-2xx answers become PW_KUBE_E_HTTP (the Status body parsed for the text); *json on success
 * only. */
static int pw_kube_request_2xx(struct pw_kube *k, const char *method, const char *path,
			       const char *content_type, const char *body, long *status,
			       cJSON **json)
{
	cJSON *j = NULL;
	long st = 0;
	int rc = pw_kube_request(k, method, path, content_type, body, &st, &j);

	if (rc == 0 && (st < 200 || st >= 300))
		rc = pw_kube_http_fail(k, method, path, st, j);
	if (status)
		*status = st;
	if (json && rc == 0) {
		*json = j;
	} else {
		cJSON_Delete(j);
		if (json)
			*json = NULL;
	}
	return rc;
}

int pw_kube_get(struct pw_kube *k, const char *path, long *status, cJSON **json)
{
	return pw_kube_request_2xx(k, "GET", path, NULL, NULL, status, json);
}

static const char *pw_kube_patch_type(enum pw_kube_patch type)
{
	switch (type) {
	case PW_KUBE_PATCH_JSON:
		return "application/json-patch+json";
	case PW_KUBE_PATCH_MERGE:
		return "application/merge-patch+json";
	case PW_KUBE_PATCH_STRATEGIC:
	default:
		return "application/strategic-merge-patch+json";
	}
}

int pw_kube_patch(struct pw_kube *k, const char *path, enum pw_kube_patch type, const char *body,
		  long *status, cJSON **json)
{
	return pw_kube_request_2xx(k, "PATCH", path, pw_kube_patch_type(type), body, status, json);
}

int pw_kube_patch_json(struct pw_kube *k, const char *path, enum pw_kube_patch type,
		       const cJSON *body, long *status, cJSON **json)
{
	char *text = cJSON_PrintUnformatted(body);
	int rc;

	if (!text) {
		if (status)
			*status = 0;
		if (json)
			*json = NULL;
		return pw_kube_fail(k, -ENOMEM, "out of memory");
	}
	rc = pw_kube_patch(k, path, type, text, status, json);
	free(text);
	return rc;
}
