/* SPDX-License-Identifier: MIT */
/*
 * pwkube core: handles and their settings, errors, cancellation, the token
 * file. The transfers are in kube_http.c, the string helpers in kube_text.c.
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

static pthread_once_t pw_kube_curl_once = PTHREAD_ONCE_INIT;
static CURLcode pw_kube_curl_rc;
static __thread char pw_kube_open_err[PW_KUBE_ERR_LEN];

static void pw_kube_curl_init(void)
{
	pw_kube_curl_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int pw_kube_buf_add(struct pw_kube_buf *b, const void *data, size_t len)
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

void pw_kube_buf_free(struct pw_kube_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

int pw_kube_fail(struct pw_kube *k, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(k->err, sizeof(k->err), fmt, ap);
	va_end(ap);
	return err;
}

void pw_kube_thread_error_set(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(pw_kube_open_err, sizeof(pw_kube_open_err), fmt, ap);
	va_end(ap);
}

int pw_kube_http_fail(struct pw_kube *k, const char *method, const char *path, long status,
		      const cJSON *body)
{
	const char *reason = pw_json_get_str(body, "reason");
	const char *msg = pw_json_get_str(body, "message");

	return pw_kube_fail(k, PW_KUBE_E_HTTP, "%s %s: HTTP %ld%s%s%s%s", method, path, status,
			    reason ? " " : "", reason ? reason : "", msg ? ": " : "",
			    msg ? msg : "");
}

uint64_t pw_kube_random(struct pw_kube *k)
{
	/* xorshift64*: jitter only, not security. */
	k->rng ^= k->rng >> 12;
	k->rng ^= k->rng << 25;
	k->rng ^= k->rng >> 27;
	return k->rng * 0x2545F4914F6CDD1Dull;
}

int pw_kube_new(struct pw_kube **ret_k)
{
	struct pw_kube *k;

	pthread_once(&pw_kube_curl_once, pw_kube_curl_init);
	if (pw_kube_curl_rc != CURLE_OK) {
		pw_kube_thread_error_set("curl_global_init: %s",
					 curl_easy_strerror(pw_kube_curl_rc));
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
	*ret_k = k;
	return 0;
nomem:
	pw_kube_close(k);
	pw_kube_thread_error_set("out of memory");
	return -ENOMEM;
}

int pw_kube_open_done(struct pw_kube *k, int err, struct pw_kube **ret_k)
{
	if (err)
		return pw_kube_open_fail(k, err);
	*ret_k = k;
	return 0;
}

int pw_kube_open_fail(struct pw_kube *k, int err)
{
	if (k)
		snprintf(pw_kube_open_err, sizeof(pw_kube_open_err), "%s",
			 k->err[0] ? k->err : pw_kube_strerror(err));
	pw_kube_close(k);
	return err;
}

static void pw_kube_blob_free(struct pw_kube_blob *b)
{
	if (b->data) {
		explicit_bzero(b->data, b->len);
		free(b->data);
	}
	b->data = NULL;
	b->len = 0;
}

void pw_kube_secret_free(char *s)
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
	pw_kube_secret_free(k->token);
	free(k->token_file);
	free(k->username);
	pw_kube_secret_free(k->password);
	free(k->ca_file);
	free(k->cert_file);
	free(k->key_file);
	pw_kube_blob_free(&k->ca);
	pw_kube_blob_free(&k->cert);
	pw_kube_blob_free(&k->key);
	free(k->user_agent);
	for (int i = 0; i < PW_KUBE_LEASE_OBS; i++) {
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
	if (!server ||
	    (strncmp(server, "http://", 7) != 0 && strncmp(server, "https://", 8) != 0)) {
		pw_kube_thread_error_set("server URL must start with http:// or https://: %s",
					 server ? server : "(null)");
		return -EINVAL;
	}
	rc = pw_kube_new(&k);
	if (rc)
		return rc;
	k->server = strdup(server);
	k->ns = strdup("default");
	if (token)
		k->token = strdup(token);
	if (!k->server || !k->ns || (token && !k->token))
		return pw_kube_open_fail(k, pw_kube_fail(k, -ENOMEM, "out of memory"));
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
	return k ? k->err : pw_kube_open_err;
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

int pw_kube_sleep(struct pw_kube *k, unsigned ms)
{
	uint64_t end = pw_now_ns() + (uint64_t)ms * 1000000u;

	for (;;) {
		uint64_t now = pw_now_ns();

		if (atomic_load(&k->canceled))
			return pw_kube_fail(k, PW_KUBE_E_CANCELED, "canceled");
		if (now >= end)
			return 0;
		/* With no transfers, curl_multi_poll just waits (or is woken). */
		curl_multi_poll(k->multi, NULL, 0, (int)((end - now + 999999) / 1000000), NULL);
	}
}

int pw_kube_file_read(const char *path, size_t max, char **ret_data, size_t *ret_len)
{
	struct pw_kube_buf b = { .max = max };
	char chunk[4096];
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t n = pw_read_full(fd, chunk, sizeof(chunk));

		if (n < 0) {
			rc = (int)n;
			goto out;
		}
		if (n == 0)
			break;
		rc = pw_kube_buf_add(&b, chunk, (size_t)n);
		if (rc)
			goto out;
	}
	if (!b.p)
		rc = pw_kube_buf_add(&b, "", 0);
out:
	explicit_bzero(chunk, sizeof(chunk));
	close(fd);
	if (rc) {
		if (b.p)
			explicit_bzero(b.p, b.len);
		pw_kube_buf_free(&b);
		return rc;
	}
	*ret_data = b.p;
	if (ret_len)
		*ret_len = b.len;
	return 0;
}

void pw_kube_token_refresh(struct pw_kube *k, bool force)
{
	uint64_t now = pw_now_ns();
	struct stat st;
	char *tok = NULL;
	size_t n = 0;

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
	if (pw_kube_file_read(k->token_file, PW_KUBE_TOKEN_MAX, &tok, &n))
		return;
	while (n > 0 && (tok[n - 1] == '\n' || tok[n - 1] == '\r' || tok[n - 1] == ' ' ||
			 tok[n - 1] == '\t'))
		tok[--n] = '\0';
	if (n == 0) {
		free(tok); /* a rotation caught half-written: keep the old one */
		return;
	}
	pw_kube_secret_free(k->token);
	k->token = tok;
	k->token_st = st;
	k->token_read_ns = now;
	k->token_stale = false;
}
