/* SPDX-License-Identifier: MIT */
/*
 * pwhttpd: a small JSON-over-HTTP(S) server on libmicrohttpd, for the
 * scheduler's extender and the admission webhook. Daemons only (it logs
 * nothing itself; the caller logs what start returns).
 *
 * Each POST body (up to max_body bytes) is parsed as JSON and handed to the
 * handler with the method and path; the handler returns the JSON answer
 * (taken and freed) and sets *code. GET /healthz answers "ok" without the
 * handler. Requests are served by libmicrohttpd's own thread, one at a time.
 */
#ifndef PW_HTTPD_H
#define PW_HTTPD_H
#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>

/*
 * @body is the parsed POST body, or NULL for a GET or a body that is not
 * JSON (@bad then says why: "body is not JSON", "body too large"). Return
 * the answer (NULL: 500 with no body) and set *code (200 unless set).
 */
typedef cJSON *(*pw_httpd_fn)(void *arg, const char *method, const char *path, const cJSON *body,
			      const char *bad, unsigned *code);

struct pw_httpd_opts {
	const char *listen;   /* HOST:PORT or [V6]:PORT; port 0 picks one */
	const char *cert_pem; /* TLS certificate chain and key, PEM text; both NULL: plain HTTP */
	const char *key_pem;
	size_t max_body; /* 0: 1 MiB */
	pw_httpd_fn fn;
	void *arg;
};

struct pw_httpd;

/*
 * Listen and serve. @bound (may be NULL) receives the address listened on,
 * "HOST:PORT". Returns 0, -EINVAL (listen is not HOST:PORT, or only one of
 * cert and key), -EADDRNOTAVAIL, -errno of socket/bind/listen, -EIO
 * (libmicrohttpd did not start: for TLS, a certificate or key it refused),
 * -ENOMEM.
 */
int pw_httpd_start(const struct pw_httpd_opts *o, struct pw_httpd **ret, char *bound,
		   size_t boundlen);
/* Stop serving and free; NULL is fine. */
void pw_httpd_stop(struct pw_httpd *h);

#endif /* PW_HTTPD_H */
