/* SPDX-License-Identifier: MIT */
/* pwkube internals shared by its source files. */
#ifndef PW_KUBE_INT_H
#define PW_KUBE_INT_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>

#include <curl/curl.h>

#include "json.h"
#include "kube.h"

#define PW_KUBE_UA	  "podwire/0.1" /* the default User-Agent */
#define PW_KUBE_ERR_LEN	  512
#define PW_KUBE_LEASE_OBS 8
#define PW_KUBE_MAX_BODY  ((size_t)256 << 20)
#define PW_KUBE_TOKEN_MAX ((size_t)64 << 10)

struct pw_kube_blob {
	void *data;
	size_t len;
};

/* What this handle last saw of a lease, for client-go's skew-safe expiry. */
struct pw_kube_lease_obs {
	char *key;    /* "ns/name" */
	char *record; /* spec, printed unformatted */
	uint64_t at_ns;
};

struct pw_kube {
	char *server; /* no trailing '/' */
	char *ns;
	char *token;	  /* current bearer token or NULL */
	char *token_file; /* re-read when it changes; NULL: static token */
	struct stat token_st;
	uint64_t token_read_ns;
	unsigned token_refresh_s;
	bool token_stale; /* a 401 came back: re-read before the next request */
	char *username, *password;

	char *ca_file, *cert_file, *key_file;
	struct pw_kube_blob ca, cert, key; /* decoded *-data (PEM), wiped on close */
	bool insecure;

	long connect_ms, total_ms;
	char *user_agent;
	size_t max_line;

	CURLM *multi;
	CURL *easy;
	atomic_bool canceled;
	uint64_t rng;
	char err[PW_KUBE_ERR_LEN];
	char curl_err[CURL_ERROR_SIZE];

	struct pw_kube_lease_obs obs[PW_KUBE_LEASE_OBS];
};

/* A growable byte buffer with a cap. */
struct pw_kube_buf {
	char *p;
	size_t len, cap, max;
};

int pw_kube_buf_add(struct pw_kube_buf *b, const void *data, size_t len);
void pw_kube_buf_free(struct pw_kube_buf *b);

/* One transfer. write NULL: the body is collected into body (capped). */
struct pw_kube_xfer {
	const char *method;
	const char *url_path; /* path + query */
	const char *content_type;
	const char *body;
	size_t body_len;
	curl_write_callback write;
	void *write_arg;
	int *write_err;	 /* where the write callback leaves its reason for failing */
	long timeout_ms; /* total; 0: none */
	struct pw_kube_buf *out;
};

/* Runs x on k's handle; 0 with *status when the server answered. */
int pw_kube_perform(struct pw_kube *k, const struct pw_kube_xfer *x, long *status);

/* Fill k->err; returns err for `return pw_kube_fail(k, -EINVAL, ...)`. */
int pw_kube_fail(struct pw_kube *k, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* For a non-2xx answer: PW_KUBE_E_HTTP, with the Status reason/message in k->err. */
int pw_kube_http_fail(struct pw_kube *k, const char *method, const char *path, long status,
		      const cJSON *body);

/* A new handle with defaults, server not set. Inits curl once. */
int pw_kube_new(struct pw_kube **ret_k);
/* Copy k's error to the calling thread's open-error text, close k, return err. */
int pw_kube_open_fail(struct pw_kube *k, int err);
/* End of an open: *ret_k = k when err is 0, else pw_kube_open_fail(). */
int pw_kube_open_done(struct pw_kube *k, int err, struct pw_kube **ret_k);
void pw_kube_thread_error_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* explicit_bzero and free a NUL-terminated secret; accepts NULL. */
void pw_kube_secret_free(char *s);

/* A whole small file (NUL-terminated, at most @max bytes; @ret_len may be
 * NULL); -errno, or PW_KUBE_E_TOOBIG. Wipes what it read on failure. */
int pw_kube_file_read(const char *path, size_t max, char **ret_data, size_t *ret_len);
/* Re-read the token file if due (or force); keeps the old token on failure. */
void pw_kube_token_refresh(struct pw_kube *k, bool force);

/* Sleep up to ms, woken early by pw_kube_cancel(); PW_KUBE_E_CANCELED then. */
int pw_kube_sleep(struct pw_kube *k, unsigned ms);
uint64_t pw_kube_random(struct pw_kube *k);

/* "ns/name"-style path join: prefix + escaped segments; NULL on ENOMEM. */
char *pw_kube_path(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* RFC 3339 with seconds only ("2006-01-02T15:04:05Z"), as metav1.Time. */
void pw_kube_time_sec(char *buf, size_t len);

#endif /* PW_KUBE_INT_H */
