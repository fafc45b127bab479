/* SPDX-License-Identifier: MIT */
/*
 * pwkube core: handles, the curl transfer loop, authentication headers,
 * errors and small helpers. Transfers run on a private multi handle so that
 * pw_kube_cancel() can wake them at once (curl_multi_wakeup) instead of
 * waiting for a progress callback.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "kube_int.h"
#include "../common/util.h"

#define KUBE_UA "podwire/0.1"

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;
static __thread char open_err[KUBE_ERR_LEN];

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int kube_buf_add(struct kube_buf *b, const void *data, size_t len)
{
	if (len > b->max - b->len)
		return PW_KUBE_E_TOOBIG;
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *p;

		while (cap < b->len + len + 1)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p)
			return -ENOMEM;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, len);
	b->len += len;
	b->p[b->len] = '\0';
	return 0;
}

void kube_buf_free(struct kube_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

int kube_fail(struct pw_kube *k, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(k->err, sizeof(k->err), fmt, ap);
	va_end(ap);
	return err;
}

void kube_set_thread_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(open_err, sizeof(open_err), fmt, ap);
	va_end(ap);
}

int kube_http_fail(struct pw_kube *k, const char *method, const char *path, long status,
		   const cJSON *body)
{
	const char *reason = pw_json_get_str(body, "reason");
	const char *msg = pw_json_get_str(body, "message");

	return kube_fail(k, PW_KUBE_E_HTTP, "%s %s: HTTP %ld%s%s%s%s", method, path, status,
			 reason ? " " : "", reason ? reason : "", msg ? ": " : "", msg ? msg : "");
}

uint64_t kube_random(struct pw_kube *k)
{
	/* xorshift64*: jitter only, not security. */
	k->rng ^= k->rng >> 12;
	k->rng ^= k->rng << 25;
	k->rng ^= k->rng >> 27;
	return k->rng * 0x2545F4914F6CDD1Dull;
}

int kube_new(struct pw_kube **kp)
{
	struct pw_kube *k;

	*kp = NULL;
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK) {
		kube_set_thread_error("curl_global_init: %s", curl_easy_strerror(curl_init_rc));
		return -ENOMEM;
	}
	k = calloc(1, sizeof(*k));
	if (!k)
		goto nomem;
	k->connect_ms = 5000;
	k->total_ms = 30000;
	k->max_line = PW_KUBE_MAX_LINE_DEFAULT;
	k->token_refresh_s = 60;
	atomic_init(&k->canceled, false);
	if (getrandom(&k->rng, sizeof(k->rng), GRND_NONBLOCK) != sizeof(k->rng))
		k->rng = pw_now_ns() ^ ((uint64_t)getpid() << 32);
	k->rng |= 1;
	k->multi = curl_multi_init();
	k->easy = curl_easy_init();
	if (!k->multi || !k->easy)
		goto nomem;
	*kp = k;
	return 0;
nomem:
	pw_kube_close(k);
	kube_set_thread_error("out of memory");
	return -ENOMEM;
}

int kube_open_done(struct pw_kube *k, int err, struct pw_kube **kp)
{
	if (err)
		return kube_open_fail(k, err);
	*kp = k;
	return 0;
}

int kube_open_fail(struct pw_kube *k, int err)
{
	if (k)
		snprintf(open_err, sizeof(open_err), "%s",
			 k->err[0] ? k->err : pw_kube_strerror(err));
	pw_kube_close(k);
	return err;
}

static void blob_free(struct kube_blob *b)
{
	if (b->data) {
		explicit_bzero(b->data, b->len);
		free(b->data);
	}
	b->data = NULL;
	b->len = 0;
}

static void free_secret(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

void pw_kube_close(struct pw_kube *k)
{
	if (!k)
		return;
	if (k->easy)
		curl_easy_cleanup(k->easy);
	if (k->multi)
		curl_multi_cleanup(k->multi);
	free(k->server);
	free(k->ns);
	free_secret(k->token);
	free(k->token_file);
	free(k->username);
	free_secret(k->password);
	free(k->ca_file);
	free(k->cert_file);
	free(k->key_file);
	blob_free(&k->ca);
	blob_free(&k->cert);
	blob_free(&k->key);
	free(k->user_agent);
	for (int i = 0; i < KUBE_LEASE_OBS; i++) {
		free(k->obs[i].key);
		free(k->obs[i].record);
	}
	free(k);
}

int pw_kube_open_url(const char *server, const char *token, struct pw_kube **kp)
{
	struct pw_kube *k;
	size_t n;
	int rc;

	*kp = NULL;
	if (!server || (strncmp(server, "http://", 7) && strncmp(server, "https://", 8))) {
		kube_set_thread_error("server URL must start with http:// or https://: %s",
				      server ? server : "(null)");
		return -EINVAL;
	}
	rc = kube_new(&k);
	if (rc)
		return rc;
	k->server = strdup(server);
	k->ns = strdup("default");
	if (token)
		k->token = strdup(token);
	if (!k->server || !k->ns || (token && !k->token))
		return kube_open_fail(k, kube_fail(k, -ENOMEM, "out of memory"));
	n = strlen(k->server);
	while (n > 0 && k->server[n - 1] == '/')
		k->server[--n] = '\0';
	*kp = k;
	return 0;
}

void pw_kube_set_timeouts(struct pw_kube *k, long connect_ms, long total_ms)
{
	if (connect_ms > 0)
		k->connect_ms = connect_ms;
	if (total_ms > 0)
		k->total_ms = total_ms;
}

void pw_kube_set_insecure(struct pw_kube *k, bool insecure)
{
	k->insecure = insecure;
}

int pw_kube_set_user_agent(struct pw_kube *k, const char *ua)
{
	char *s = strdup(ua);

	if (!s)
		return -ENOMEM;
	free(k->user_agent);
	k->user_agent = s;
	return 0;
}

void pw_kube_set_max_line(struct pw_kube *k, size_t bytes)
{
	k->max_line = bytes < 4096 ? 4096 : bytes;
}

void pw_kube_set_token_refresh(struct pw_kube *k, unsigned seconds)
{
	k->token_refresh_s = seconds;
}

const char *pw_kube_server(const struct pw_kube *k)
{
	return k->server;
}

const char *pw_kube_namespace(const struct pw_kube *k)
{
	return k->ns ? k->ns : "default";
}

const char *pw_kube_last_error(const struct pw_kube *k)
{
	return k ? k->err : open_err;
}

const char *pw_kube_strerror(int err)
{
	switch (err) {
	case 0:
		return "success";
	case PW_KUBE_E_GONE:
		return "resourceVersion too old (410 Gone): re-list";
	case PW_KUBE_E_PROTO:
		return "malformed response or watch event";
	case PW_KUBE_E_TRUNC:
		return "connection or watch stream cut";
	case PW_KUBE_E_HTTP:
		return "the API server answered an error status";
	case PW_KUBE_E_TOOBIG:
		return "response or watch event too large";
	case PW_KUBE_E_CANCELED:
		return "canceled";
	case PW_KUBE_E_TLS:
		return "TLS handshake or certificate verification failed";
	case PW_KUBE_E_CONFIG:
		return "invalid kubeconfig";
	default:
		return strerror(err < 0 ? -err : err);
	}
}

void pw_kube_cancel(struct pw_kube *k)
{
	atomic_store(&k->canceled, true);
	curl_multi_wakeup(k->multi);
}

void pw_kube_cancel_reset(struct pw_kube *k)
{
	atomic_store(&k->canceled, false);
}

bool pw_kube_canceled(const struct pw_kube *k)
{
	return atomic_load(&((struct pw_kube *)k)->canceled);
}

int kube_sleep(struct pw_kube *k, unsigned ms)
{
	uint64_t end = pw_now_ns() + (uint64_t)ms * 1000000u;

	for (;;) {
		uint64_t now = pw_now_ns();

		if (atomic_load(&k->canceled))
			return kube_fail(k, PW_KUBE_E_CANCELED, "canceled");
		if (now >= end)
			return 0;
		/* With no transfers, curl_multi_poll just waits (or is woken). */
		curl_multi_poll(k->multi, NULL, 0, (int)((end - now + 999999) / 1000000), NULL);
	}
}

int kube_read_file(const char *path, size_t max, char **data, size_t *len)
{
	struct kube_buf b = { .max = max };
	char chunk[4096];
	int fd, rc = 0;

	*data = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			goto out;
		}
		if (n == 0)
			break;
		rc = kube_buf_add(&b, chunk, (size_t)n);
		if (rc)
			goto out;
	}
	if (!b.p)
		rc = kube_buf_add(&b, "", 0);
out:
	explicit_bzero(chunk, sizeof(chunk));
	close(fd);
	if (rc) {
		if (b.p)
			explicit_bzero(b.p, b.len);
		kube_buf_free(&b);
		return rc;
	}
	*data = b.p;
	if (len)
		*len = b.len;
	return 0;
}

void kube_token_refresh(struct pw_kube *k, bool force)
{
	uint64_t now = pw_now_ns();
	struct stat st;
	char *tok;
	size_t n;

	if (!k->token_file)
		return;
	if (stat(k->token_file, &st))
		return; /* keep the old token; the server will say if it is bad */
	if (!force && !k->token_stale && st.st_ino == k->token_st.st_ino &&
	    st.st_dev == k->token_st.st_dev && st.st_size == k->token_st.st_size &&
	    st.st_mtim.tv_sec == k->token_st.st_mtim.tv_sec &&
	    st.st_mtim.tv_nsec == k->token_st.st_mtim.tv_nsec &&
	    now - k->token_read_ns < (uint64_t)k->token_refresh_s * 1000000000u)
		return;
	if (kube_read_file(k->token_file, KUBE_TOKEN_MAX, &tok, &n))
		return;
	while (n > 0 && (tok[n - 1] == '\n' || tok[n - 1] == '\r' || tok[n - 1] == ' ' ||
			 tok[n - 1] == '\t'))
		tok[--n] = '\0';
	if (n == 0) {
		free(tok); /* a rotation caught half-written: keep the old one */
		return;
	}
	free_secret(k->token);
	k->token = tok;
	k->token_st = st;
	k->token_read_ns = now;
	k->token_stale = false;
}

static int map_curl(struct pw_kube *k, CURLcode c, const char *url)
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
	return kube_fail(k, err, "%s: %s", url, what);
}

static size_t collect(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct kube_buf *b = arg;

	if (kube_buf_add(b, ptr, size * nmemb))
		return 0;
	return size * nmemb;
}

/* A client certificate or key: in memory (curl copies nothing) or a file. */
static void set_pem(CURL *e, const struct kube_blob *b, CURLoption blob_opt, CURLoption type_opt,
		    const char *file, CURLoption file_opt)
{
	if (b->data) {
		struct curl_blob blob = { b->data, b->len, CURL_BLOB_NOCOPY };

		curl_easy_setopt(e, blob_opt, &blob);
		curl_easy_setopt(e, type_opt, "PEM");
	} else if (file) {
		curl_easy_setopt(e, file_opt, file);
	}
}

static int setup(struct pw_kube *k, const struct kube_xfer *x, const char *url,
		 struct curl_slist **hdrs)
{
	CURL *e = k->easy;
	struct curl_slist *h = NULL, *t;
	char *auth = NULL;
	int rc = -ENOMEM;

#define ADD_HDR(s)                                                                                 \
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
	curl_easy_setopt(e, CURLOPT_USERAGENT, k->user_agent ? k->user_agent : KUBE_UA);
	if (!strcmp(x->method, "GET"))
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	else
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, x->method);
	if (x->body) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->body_len);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body);
	}
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, x->write ? x->write : collect);
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
	set_pem(e, &k->cert, CURLOPT_SSLCERT_BLOB, CURLOPT_SSLCERTTYPE, k->cert_file,
		CURLOPT_SSLCERT);
	set_pem(e, &k->key, CURLOPT_SSLKEY_BLOB, CURLOPT_SSLKEYTYPE, k->key_file, CURLOPT_SSLKEY);

	ADD_HDR("Accept: application/json");
	ADD_HDR("Expect:"); /* no 100-continue round trip for big bodies */
	if (x->content_type) {
		if (asprintf(&auth, "Content-Type: %s", x->content_type) < 0) {
			auth = NULL;
			goto out;
		}
		ADD_HDR(auth);
		free(auth);
		auth = NULL;
	}
	if (k->token) {
		if (asprintf(&auth, "Authorization: Bearer %s", k->token) < 0) {
			auth = NULL;
			goto out;
		}
		ADD_HDR(auth);
	} else if (k->username) {
		curl_easy_setopt(e, CURLOPT_USERNAME, k->username);
		curl_easy_setopt(e, CURLOPT_PASSWORD, k->password ? k->password : "");
	}
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	*hdrs = h;
	h = NULL;
	rc = 0;
out:
	free_secret(auth); /* curl_slist_append copied it */
	curl_slist_free_all(h);
	return rc;
#undef ADD_HDR
}

int kube_perform(struct pw_kube *k, const struct kube_xfer *x, long *status)
{
	struct curl_slist *hdrs = NULL;
	CURLcode result = CURLE_OK;
	char *url = NULL;
	CURLMsg *msg;
	bool added = false;
	int rc, left;

	*status = 0;
	if (atomic_load(&k->canceled))
		return kube_fail(k, PW_KUBE_E_CANCELED, "canceled");
	kube_token_refresh(k, false);
	if (asprintf(&url, "%s%s", k->server, x->url_path) < 0) {
		url = NULL;
		rc = kube_fail(k, -ENOMEM, "out of memory");
		goto out;
	}
	rc = setup(k, x, url, &hdrs);
	if (rc) {
		kube_fail(k, rc, "out of memory");
		goto out;
	}
	if (curl_multi_add_handle(k->multi, k->easy) != CURLM_OK) {
		rc = kube_fail(k, -ENOMEM, "curl_multi_add_handle failed");
		goto out;
	}
	added = true;
	for (;;) {
		int running = 0;
		CURLMcode mc = curl_multi_perform(k->multi, &running);

		if (mc != CURLM_OK) {
			rc = kube_fail(k, -EIO, "%s: %s", url, curl_multi_strerror(mc));
			goto out;
		}
		if (!running)
			break;
		if (atomic_load(&k->canceled)) {
			rc = kube_fail(k, PW_KUBE_E_CANCELED, "%s: canceled", url);
			goto out;
		}
		mc = curl_multi_poll(k->multi, NULL, 0, 1000, NULL);
		if (mc != CURLM_OK) {
			rc = kube_fail(k, -EIO, "%s: %s", url, curl_multi_strerror(mc));
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
		rc = kube_fail(k, x->out->len >= x->out->max ? PW_KUBE_E_TOOBIG : -ENOMEM,
			       "%s: response body over %zu bytes or out of memory", url,
			       x->out->max);
	} else if (result != CURLE_OK) {
		rc = map_curl(k, result, url);
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

static int request_once(struct pw_kube *k, const char *method, const char *path,
			const char *content_type, const char *body, long *status, cJSON **json)
{
	struct kube_buf out = { .max = KUBE_MAX_BODY };
	struct kube_xfer x = {
		.method = method,
		.url_path = path,
		.content_type = body ? content_type : NULL,
		.body = body,
		.body_len = body ? strlen(body) : 0,
		.timeout_ms = k->total_ms,
		.out = &out,
	};
	int rc;

	rc = kube_perform(k, &x, status);
	if (rc == 0 && json && out.len)
		*json = cJSON_ParseWithLength(out.p, out.len);
	kube_buf_free(&out);
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
		return kube_fail(k, -EINVAL, "request: method and a path starting with '/' needed");
	k->err[0] = '\0';
	rc = request_once(k, method, path, content_type, body, status, json);
	if (rc == 0 && *status == 401 && k->token_file) {
		/* The token may have been rotated under us: re-read and retry once. */
		char *old = k->token ? strdup(k->token) : NULL;

		kube_token_refresh(k, true);
		if (k->token && (!old || strcmp(old, k->token))) {
			if (json) {
				cJSON_Delete(*json);
				*json = NULL;
			}
			rc = request_once(k, method, path, content_type, body, status, json);
		}
		free_secret(old);
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
			return kube_fail(k, -ENOMEM, "out of memory");
		}
	}
	rc = pw_kube_request(k, method, path, content_type ? content_type : "application/json",
			     text, status, json);
	free(text);
	return rc;
}

/* Non-2xx answers become PW_KUBE_E_HTTP (the Status body parsed for the text); *json on success
 * only. */
static int request_2xx(struct pw_kube *k, const char *method, const char *path,
		       const char *content_type, const char *body, long *status, cJSON **json)
{
	cJSON *j = NULL;
	long st = 0;
	int rc = pw_kube_request(k, method, path, content_type, body, &st, &j);

	if (rc == 0 && (st < 200 || st >= 300))
		rc = kube_http_fail(k, method, path, st, j);
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
	return request_2xx(k, "GET", path, NULL, NULL, status, json);
}

static const char *patch_type(enum pw_kube_patch type)
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
	return request_2xx(k, "PATCH", path, patch_type(type), body, status, json);
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
		return kube_fail(k, -ENOMEM, "out of memory");
	}
	rc = pw_kube_patch(k, path, type, text, status, json);
	free(text);
	return rc;
}

char *pw_kube_escape(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s);
	char *out = malloc(3 * n + 1), *o = out;

	if (!out)
		return NULL;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~') {
			*o++ = (char)c;
		} else {
			*o++ = '%';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 15];
		}
	}
	*o = '\0';
	return out;
}

char *pw_kube_json_pointer_escape(const char *key)
{
	char *out = malloc(2 * strlen(key) + 1), *o = out;

	if (!out)
		return NULL;
	for (; *key; key++) {
		if (*key == '~' || *key == '/') {
			*o++ = '~';
			*o++ = *key == '~' ? '0' : '1';
		} else {
			*o++ = *key;
		}
	}
	*o = '\0';
	return out;
}

char *kube_path(const char *fmt, ...)
{
	struct kube_buf b = { .max = 1 << 20 };
	va_list ap;
	int rc = 0;

	va_start(ap, fmt);
	for (const char *p = fmt; *p && !rc; p++) {
		if (p[0] == '%' && p[1] == 's') {
			char *e = pw_kube_escape(va_arg(ap, const char *));

			rc = e ? kube_buf_add(&b, e, strlen(e)) : -ENOMEM;
			free(e);
			p++;
		} else {
			rc = kube_buf_add(&b, p, 1);
		}
	}
	va_end(ap);
	if (rc) {
		kube_buf_free(&b);
		return NULL;
	}
	return b.p;
}

void pw_kube_time_micro(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	char sec[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(sec, sizeof(sec), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%06ldZ", sec, ts.tv_nsec / 1000);
}

void kube_time_sec(char *buf, size_t len)
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static long long days_from_civil(long long y, unsigned m, unsigned d)
{
	/* Howard Hinnant's algorithm: days since 1970-01-01 of a Gregorian date. */
	y -= m <= 2;
	long long era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + (long long)doe - 719468;
}

int pw_kube_time_parse(const char *s, long long *usec)
{
	int y, mo, d, h, mi, sec, n = 0;
	long long frac = 0, off = 0;
	int digits = 0;

	if (!s ||
	    sscanf(s, "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 ||
	    n != 19)
		return -EINVAL;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return -EINVAL;
	s += n;
	if (*s == '.') {
		for (s++; *s >= '0' && *s <= '9'; s++, digits++)
			if (digits < 6)
				frac = frac * 10 + (*s - '0');
		if (!digits)
			return -EINVAL;
		for (; digits < 6; digits++)
			frac *= 10;
	}
	if (*s == 'Z' || *s == 'z') {
		s++;
	} else if (*s == '+' || *s == '-') {
		int oh, om, m2 = 0;

		if (sscanf(s + 1, "%2d:%2d%n", &oh, &om, &m2) != 2 || m2 != 5)
			return -EINVAL;
		off = (oh * 60LL + om) * 60 * (*s == '+' ? 1 : -1);
		s += 6;
	} else {
		return -EINVAL;
	}
	if (*s)
		return -EINVAL;
	*usec = ((days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600LL + mi * 60LL +
		  sec - off) *
		 1000000LL) +
		frac;
	return 0;
}
