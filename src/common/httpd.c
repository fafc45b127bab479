// SPDX-License-Identifier: MIT
/* pwhttpd: JSON over HTTP(S) with libmicrohttpd (httpd.h). */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "httpd.h"

#define PW_HTTPD_MAX_BODY_DEFAULT (1u << 20)

struct pw_httpd {
	struct MHD_Daemon *d;
	int fd;
	size_t max_body;
	pw_httpd_fn fn;
	void *arg;
	char *cert, *key; /* libmicrohttpd keeps pointers to them */
};

struct pw_httpd_req {
	char *buf;
	size_t len, cap;
	bool too_big;
};

static enum MHD_Result pw_httpd_reply(struct MHD_Connection *c, unsigned code, cJSON *body)
{
	char *s = body ? cJSON_PrintUnformatted(body) : NULL;
	struct MHD_Response *r;
	enum MHD_Result ret;

	cJSON_Delete(body);
	if (!s && body)
		code = MHD_HTTP_INTERNAL_SERVER_ERROR;
	r = s ? MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE)
	      : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	if (!r) {
		free(s);
		return MHD_NO;
	}
	if (s)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	ret = MHD_queue_response(
		c, s || code != MHD_HTTP_OK ? code : MHD_HTTP_INTERNAL_SERVER_ERROR, r);
	MHD_destroy_response(r);
	return ret;
}

/* Gather an upload chunk; false when out of memory. */
static bool pw_httpd_gather(struct pw_httpd *h, struct pw_httpd_req *rq, const char *data, size_t n)
{
	if (rq->too_big || rq->len + n > h->max_body) {
		rq->too_big = true;
		return true;
	}
	if (rq->len + n + 1 > rq->cap) {
		size_t nc = (rq->len + n + 1) * 2;
		char *nb = realloc(rq->buf, nc);

		if (!nb)
			return false;
		rq->buf = nb;
		rq->cap = nc;
	}
	memcpy(rq->buf + rq->len, data, n);
	rq->len += n;
	return true;
}

static enum MHD_Result pw_httpd_handle(void *cls, struct MHD_Connection *c, const char *url,
				       const char *method, const char *version, const char *upload,
				       size_t *upload_size, void **state)
{
	struct pw_httpd *h = cls;
	struct pw_httpd_req *rq = *state;
	unsigned code = MHD_HTTP_OK;
	const char *bad = NULL;
	cJSON *body = NULL, *res;

	if (!rq) {
		if (!(rq = calloc(1, sizeof(*rq))))
			return MHD_NO;
		*state = rq;
		return MHD_YES;
	}
	if (*upload_size) {
		if (!pw_httpd_gather(h, rq, upload, *upload_size))
			return MHD_NO;
		*upload_size = 0;
		return MHD_YES;
	}
	if (!strcmp(method, "GET") && !strcmp(url, "/healthz")) {
		struct MHD_Response *r =
			MHD_create_response_from_buffer(2, (void *)"ok", MHD_RESPMEM_PERSISTENT);
		enum MHD_Result ret;

		if (!r)
			return MHD_NO;
		ret = MHD_queue_response(c, MHD_HTTP_OK, r);
		MHD_destroy_response(r);
		return ret;
	}
	if (rq->too_big)
		bad = "body too large";
	else if (!strcmp(method, "POST") &&
		 !(body = rq->buf ? cJSON_ParseWithLength(rq->buf, rq->len) : NULL))
		bad = "body is not JSON";
	res = h->fn(h->arg, method, url, body, bad, &code);
	cJSON_Delete(body);
	return pw_httpd_reply(c, code, res);
}

static void pw_httpd_done(void *cls, struct MHD_Connection *c, void **state,
			  enum MHD_RequestTerminationCode toe)
{
	struct pw_httpd_req *rq = *state;

	if (rq) {
		free(rq->buf);
		free(rq);
	}
	*state = NULL;
}

/* HOST:PORT or [V6]:PORT; port 0 picks one. Returns a listening fd or -errno. */
static int pw_httpd_listen(const char *spec, char *bound, size_t blen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *ai, *a;
	char host[256], *colon;
	size_t len = strlen(spec);
	const char *port;
	int fd = -1, one = 1, r;

	if (len >= sizeof(host))
		return -EINVAL;
	memcpy(host, spec, len + 1);
	colon = strrchr(host, ':');
	if (!colon)
		return -EINVAL;
	*colon = 0;
	port = colon + 1;
	if (host[0] == '[' && colon > host + 1 && colon[-1] == ']') {
		colon[-1] = 0;
		memmove(host, host + 1, strlen(host));
	}
	r = getaddrinfo(*host ? host : NULL, port, &hints, &ai);
	if (r)
		return r == EAI_SYSTEM ? -errno : -EADDRNOTAVAIL;
	r = -EADDRNOTAVAIL;
	for (a = ai; a; a = a->ai_next) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		char hb[NI_MAXHOST], pb[NI_MAXSERV];

		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		if (fd < 0) {
			r = -errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, a->ai_addr, a->ai_addrlen) || listen(fd, 64) ||
		    getsockname(fd, (struct sockaddr *)&ss, &sl)) {
			r = -errno;
			close(fd);
			fd = -1;
			continue;
		}
		if (bound && getnameinfo((struct sockaddr *)&ss, sl, hb, sizeof(hb), pb, sizeof(pb),
					 NI_NUMERICHOST | NI_NUMERICSERV) == 0)
			snprintf(bound, blen, strchr(hb, ':') ? "[%s]:%s" : "%s:%s", hb, pb);
		break;
	}
	freeaddrinfo(ai);
	return fd >= 0 ? fd : r;
}

int pw_httpd_start(const struct pw_httpd_opts *o, struct pw_httpd **ret, char *bound,
		   size_t boundlen)
{
	struct pw_httpd *h;
	unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD;
	int r;

	*ret = NULL;
	if (!o->listen || !o->fn || !o->cert_pem != !o->key_pem)
		return -EINVAL;
	if (bound && boundlen)
		snprintf(bound, boundlen, "?");
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->fn = o->fn;
	h->arg = o->arg;
	h->max_body = o->max_body ? o->max_body : PW_HTTPD_MAX_BODY_DEFAULT;
	if (o->cert_pem) {
		h->cert = strdup(o->cert_pem);
		h->key = strdup(o->key_pem);
		if (!h->cert || !h->key) {
			r = -ENOMEM;
			goto fail;
		}
		flags |= MHD_USE_TLS;
	}
	h->fd = pw_httpd_listen(o->listen, bound, boundlen);
	if (h->fd < 0) {
		r = h->fd;
		goto fail;
	}
	if (h->cert)
		h->d = MHD_start_daemon(
			flags, 0, NULL, NULL, pw_httpd_handle, h, MHD_OPTION_LISTEN_SOCKET, h->fd,
			MHD_OPTION_NOTIFY_COMPLETED, pw_httpd_done, h,
			MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_HTTPS_MEM_CERT,
			h->cert, MHD_OPTION_HTTPS_MEM_KEY, h->key, MHD_OPTION_END);
	else
		h->d = MHD_start_daemon(
			flags, 0, NULL, NULL, pw_httpd_handle, h, MHD_OPTION_LISTEN_SOCKET, h->fd,
			MHD_OPTION_NOTIFY_COMPLETED, pw_httpd_done, h,
			MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_END);
	if (!h->d) {
		close(h->fd);
		r = -EIO;
		goto fail;
	}
	*ret = h;
	return 0;
fail:
	free(h->cert);
	free(h->key);
	free(h);
	return r;
}

void pw_httpd_stop(struct pw_httpd *h)
{
	if (!h)
		return;
	/* Quiesce hands the listen socket back, so it is closed exactly once, here. */
	MHD_quiesce_daemon(h->d);
	MHD_stop_daemon(h->d);
	close(h->fd);
	free(h->cert);
	free(h->key);
	free(h);
}
