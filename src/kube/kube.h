/* SPDX-License-Identifier: MIT */
/*
 * pwkube: a small Kubernetes REST client (libcurl + cJSON), for podwire's
 * scheduler and node-feature daemon. Not installed; link with pwkube_dep.
 *
 * Return values. Every int function returns 0 on success or a negative code:
 *   -errno                transport or local failure (-ENOMEM, -ECONNREFUSED,
 *                         -ETIMEDOUT, -EHOSTUNREACH, -EINVAL, -ENOENT...);
 *   PW_KUBE_E_*           the named codes below.
 * pw_kube_request() returns 0 whenever the server answered, whatever the HTTP
 * status. The typed helpers (bind, patch, lease...) return 0 only for a 2xx
 * answer and PW_KUBE_E_HTTP for any other status; their `status` out-parameter
 * (may be NULL) then holds it (0 when no answer arrived), so a caller can
 * handle e.g. 409 Conflict; their cJSON out-parameters are set on success
 * only (NULL otherwise). pw_kube_last_error(k) explains the last failure
 * (for an HTTP error it includes the Status object's reason and message).
 * The library never prints.
 *
 * Threads. A struct pw_kube is used by one thread at a time (give each thread
 * its own handle: opening one is cheap). The exception is pw_kube_cancel(),
 * which any thread may call at any time on a live handle, e.g. to stop a
 * watch or informer running in another thread. libcurl is initialised once
 * per process (pthread_once); handles in different threads are independent.
 * The library asks curl for CURLOPT_NOSIGNAL: programs should ignore SIGPIPE.
 *
 * Objects. JSON in and out is cJSON. Out-parameters `cJSON **json` receive a
 * tree the caller frees with cJSON_Delete(), or NULL when the body was empty
 * or not JSON; they may be NULL to discard the body.
 */
#ifndef PW_KUBE_H
#define PW_KUBE_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

/* Named error codes (negative errno values, so strerror() also makes sense). */
#define PW_KUBE_E_GONE	   (-ESTALE)	   /* 410 Gone: resourceVersion too old; re-list */
#define PW_KUBE_E_PROTO	   (-EPROTO)	   /* malformed JSON line / unexpected response body */
#define PW_KUBE_E_TRUNC	   (-ECONNRESET)   /* stream or connection cut (possibly mid-event) */
#define PW_KUBE_E_HTTP	   (-EREMOTEIO)	   /* the server answered a non-2xx status */
#define PW_KUBE_E_TOOBIG   (-EMSGSIZE)	   /* one watch line or a body exceeded the cap */
#define PW_KUBE_E_CANCELED (-ECANCELED)	   /* pw_kube_cancel() was called */
#define PW_KUBE_E_TLS	   (-EKEYREJECTED) /* TLS handshake / certificate verification failed */
#define PW_KUBE_E_CONFIG   (-EBADMSG)	   /* kubeconfig malformed or unusable */

/* Room for a resourceVersion string, with its NUL (the server's are far shorter). */
#define PW_KUBE_RV_MAX 64

/* Default cap on one watch line (one event); see pw_kube_set_max_line(). */
#define PW_KUBE_MAX_LINE_DEFAULT (16u << 20)

struct pw_kube;

/* ---- Opening ------------------------------------------------------------ */

/*
 * From a kubeconfig file (YAML or JSON). path NULL: $KUBECONFIG (its first
 * ':'-separated entry), then ~/.kube/config. context NULL: current-context.
 * Supported: clusters[].cluster.{server, certificate-authority(-data),
 * insecure-skip-tls-verify}; users[].user.{token, tokenFile,
 * client-certificate(-data), client-key(-data), username/password};
 * contexts[].context.{cluster, user, namespace}. *-data fields are base64 PEM
 * handed to curl in memory (never written to disk). Relative file paths are
 * relative to the kubeconfig's directory. exec/auth-provider users fail with
 * -ENOTSUP.
 * Returns 0 and *k, or -ENOENT (no file), PW_KUBE_E_CONFIG (malformed: YAML
 * error with line/column, missing context/cluster/user, bad base64...),
 * -ENOTSUP, -ENOMEM. On failure *k is NULL and pw_kube_last_error(NULL)
 * (same thread) says why.
 */
int pw_kube_open_kubeconfig(const char *path, const char *context, struct pw_kube **k);

/*
 * In-cluster service account: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT,
 * token, ca.crt and namespace from /var/run/secrets/kubernetes.io/serviceaccount,
 * or from the directory in $PODWIRE_SA_DIR when set (tests). The token file is
 * re-read when it changes (checked with stat before each request), at least
 * every 60 s, and once more on a 401 answer (then the request is retried once),
 * so rotated projected tokens work.
 * Returns 0, -ENXIO (not in a cluster: variables unset), -ENOENT (token
 * missing), -ENOMEM. Error text via pw_kube_last_error(NULL).
 */
int pw_kube_open_incluster(struct pw_kube **k);

/*
 * The usual resolution: kubeconfig path given → that; else $KUBECONFIG set →
 * that; else $KUBERNETES_SERVICE_HOST set → in-cluster; else ~/.kube/config.
 */
int pw_kube_open(const char *kubeconfig, struct pw_kube **k);

/*
 * Direct: server URL ("http://127.0.0.1:8080", "https://..."), optional bearer
 * token (NULL: none). https is verified against the system CAs unless
 * pw_kube_set_insecure(). Mostly for tests and tools.
 */
int pw_kube_open_url(const char *server, const char *token, struct pw_kube **k);

/* Frees everything; accepts NULL. No call may be running on k (join first). */
void pw_kube_close(struct pw_kube *k);

/* ---- Settings (call before use, from the owning thread) ----------------- */

/* Connect timeout and total timeout of ordinary requests, in ms (defaults
 * 5000 and 30000; 0 keeps the current value). Watches have no total timeout
 * beyond their timeoutSeconds plus 30 s. */
void pw_kube_set_timeouts(struct pw_kube *k, long connect_ms, long total_ms);
/* Skip TLS verification (like insecure-skip-tls-verify). */
void pw_kube_set_insecure(struct pw_kube *k, bool insecure);
/* User-Agent header (default "podwire/<version>"); copied. Returns 0 or -ENOMEM. */
int pw_kube_set_user_agent(struct pw_kube *k, const char *ua);
/* Cap on one watch line (default PW_KUBE_MAX_LINE_DEFAULT, minimum 4096). */
void pw_kube_set_max_line(struct pw_kube *k, size_t bytes);
/* Token file re-read period in seconds (default 60; 0 = before every request). */
void pw_kube_set_token_refresh(struct pw_kube *k, unsigned seconds);

/* ---- Accessors ---------------------------------------------------------- */

/* Server URL without trailing '/'. */
const char *pw_kube_server(const struct pw_kube *k);
/* Namespace of the kubeconfig context / service account; "default" if none. */
const char *pw_kube_namespace(const struct pw_kube *k);
/*
 * Text of the last failure on k (never NULL; "" if none). k NULL: the last
 * failed open on the calling thread. Valid until the next call on k.
 */
const char *pw_kube_last_error(const struct pw_kube *k);
/* Text for a return code (PW_KUBE_E_* or -errno). Static storage. */
const char *pw_kube_strerror(int err);

/*
 * Make the running call on k (from another thread) and every later one fail
 * with PW_KUBE_E_CANCELED, promptly (it wakes curl's poll and any backoff
 * sleep). Sticky until pw_kube_cancel_reset(). Thread-safe; not for signal
 * handlers (set a flag there and call it from a thread).
 */
void pw_kube_cancel(struct pw_kube *k);
void pw_kube_cancel_reset(struct pw_kube *k);
bool pw_kube_canceled(const struct pw_kube *k);

/* ---- Raw requests ------------------------------------------------------- */

/*
 * One HTTP request. method "GET", "POST", "PUT", "PATCH", "DELETE"; path
 * starts with '/' and may carry a query (already escaped). content_type and
 * body may be NULL (no body). Returns 0 when the server answered (any
 * status): *status = HTTP status, *json = parsed body or NULL. Negative on
 * transport failure, PW_KUBE_E_TOOBIG for a body over 256 MiB,
 * PW_KUBE_E_CANCELED, PW_KUBE_E_TLS.
 */
int pw_kube_request(struct pw_kube *k, const char *method, const char *path,
		    const char *content_type, const char *body, long *status, cJSON **json);

/* Same with a cJSON body (serialised unformatted; may be NULL); content_type NULL:
 * "application/json". */
int pw_kube_request_json(struct pw_kube *k, const char *method, const char *path,
			 const char *content_type, const cJSON *body, long *status, cJSON **json);

/* GET path; 0 only for 2xx (else PW_KUBE_E_HTTP, see the top comment). */
int pw_kube_get(struct pw_kube *k, const char *path, long *status, cJSON **json);

enum pw_kube_patch {
	PW_KUBE_PATCH_JSON,	 /* application/json-patch+json (RFC 6902) */
	PW_KUBE_PATCH_MERGE,	 /* application/merge-patch+json (RFC 7386) */
	PW_KUBE_PATCH_STRATEGIC, /* application/strategic-merge-patch+json */
};

/* PATCH path with body (text) of the given type; 0 only for 2xx. */
int pw_kube_patch(struct pw_kube *k, const char *path, enum pw_kube_patch type, const char *body,
		  long *status, cJSON **json);
int pw_kube_patch_json(struct pw_kube *k, const char *path, enum pw_kube_patch type,
		       const cJSON *body, long *status, cJSON **json);

/* ---- String helpers (results are malloc'ed; NULL on ENOMEM) ------------- */

/* Percent-encode for a URL query value or path segment (RFC 3986 unreserved kept). */
char *pw_kube_escape(const char *s);
/* Escape a key for a JSON pointer (RFC 6901): '~' → "~0", '/' → "~1". */
char *pw_kube_json_pointer_escape(const char *key);
/* Current time as Kubernetes MicroTime "2006-01-02T15:04:05.000000Z" into buf (>= 32). */
void pw_kube_time_micro(char *buf, size_t len);
/* Parse RFC 3339 (with or without fraction, 'Z' or ±hh:mm) into µs since the epoch; -EINVAL. */
int pw_kube_time_parse(const char *s, long long *ret_usec);

/* ---- List and watch ----------------------------------------------------- */

enum pw_kube_ev {
	PW_KUBE_EV_ADDED,
	PW_KUBE_EV_MODIFIED,
	PW_KUBE_EV_DELETED,
	PW_KUBE_EV_BOOKMARK, /* object holds only kind/apiVersion/metadata.resourceVersion */
	PW_KUBE_EV_ERROR,    /* object is a Status; the watch then ends (410 → PW_KUBE_E_GONE) */
	PW_KUBE_EV_LIST,     /* informer only: object is the whole List (items, metadata);
			      * replace your cache with its items (initial list and re-lists) */
};

/* Name of an event type ("ADDED", ...). */
const char *pw_kube_ev_name(enum pw_kube_ev type);

/*
 * Watch/informer callback. *object is owned by the library and freed after
 * the call, unless the callback takes it by setting *object = NULL (it then
 * frees it). Return 0 to go on; any other value stops the watch/informer,
 * which returns that value (use a negative one to tell it from success).
 */
typedef int (*pw_kube_watch_cb)(void *arg, enum pw_kube_ev type, cJSON **object);

/*
 * GET a collection ("/api/v1/pods", "/api/v1/namespaces/ns/pods", "/api/v1/nodes")
 * with an optional query (escaped, no '?': "fieldSelector=spec.nodeName%3D").
 * Returns 0 with *list (caller frees) and its metadata.resourceVersion in rv;
 * PW_KUBE_E_GONE on 410, PW_KUBE_E_HTTP on other statuses, PW_KUBE_E_PROTO
 * for a body that is not a List.
 */
int pw_kube_list(struct pw_kube *k, const char *path, const char *query, cJSON **list,
		 char rv[PW_KUBE_RV_MAX]);

struct pw_kube_watch {
	const char *path;  /* collection path, as for pw_kube_list() */
	const char *query; /* extra query (escaped, no '?') or NULL */
	int timeout_s;	   /* timeoutSeconds asked of the server; 0 → 300 */
	bool no_bookmarks; /* don't ask for allowWatchBookmarks */
	pw_kube_watch_cb cb;
	void *arg;
	/* In: resourceVersion to watch from ("" or "0": the server's choice,
	 * which sends synthetic ADDED events for existing objects). Out: the
	 * last resourceVersion seen in an event or bookmark. */
	char rv[PW_KUBE_RV_MAX];
};

/*
 * One watch connection: GET path?watch=1&resourceVersion=RV&allowWatchBookmarks=true
 * &timeoutSeconds=N, delivering each newline-delimited event to w->cb as it
 * arrives (events may span chunks, chunks may hold many events). Returns:
 *   0                   the server ended the stream cleanly (timeout): watch again from w->rv;
 *   PW_KUBE_E_GONE      HTTP 410, or an in-stream ERROR event with code 410: re-list;
 *   PW_KUBE_E_PROTO     a line that is not a JSON watch event (it is not delivered; events
 *                       before it were), or an ERROR event with another code;
 *   PW_KUBE_E_TRUNC     the connection broke, possibly mid-line (the partial line is dropped);
 *   PW_KUBE_E_TOOBIG    a line over the max-line cap;
 *   PW_KUBE_E_HTTP      another HTTP status; PW_KUBE_E_CANCELED; -errno; or the cb's value.
 * After anything but GONE, watching again from w->rv loses nothing. It does not
 * retry or back off itself: pw_kube_informer_run() does.
 */
int pw_kube_watch(struct pw_kube *k, struct pw_kube_watch *w);

struct pw_kube_informer {
	const char *path;    /* collection path */
	const char *query;   /* selectors etc. (escaped, no '?') or NULL */
	int watch_timeout_s; /* per watch connection; 0 → 300 */
	bool no_bookmarks;
	unsigned backoff_min_ms; /* first retry delay; 0 → 500 */
	unsigned backoff_max_ms; /* cap; 0 → 30000. Delays double, with jitter in [d/2, d] */
	pw_kube_watch_cb cb;
	/* Optional: told about each failure before the informer backs off and
	 * retries (err is the code, msg pw_kube_last_error()). For logging. */
	void (*on_error)(void *arg, int err, const char *msg);
	void *arg;
};

/*
 * List then watch forever: delivers PW_KUBE_EV_LIST (the whole List), then
 * watch events from the list's resourceVersion. A clean end of a watch
 * re-watches at once; a failure (transport, 5xx, malformed line, cut stream)
 * backs off and re-watches from the last resourceVersion; 410 Gone re-lists
 * (another PW_KUBE_EV_LIST) at once. A failed list backs off and retries.
 * The backoff resets after a watch that delivered an event. Runs until
 * pw_kube_cancel(k) (returns PW_KUBE_E_CANCELED) or the callback returns
 * non-zero (returns that). Meant for a thread of its own with its own k.
 */
int pw_kube_informer_run(struct pw_kube *k, const struct pw_kube_informer *inf);

/* ---- Pods, nodes, events ------------------------------------------------ */

/*
 * POST /api/v1/namespaces/NS/pods/NAME/binding with a v1 Binding to node.
 * uid (may be NULL) makes the binding conditional on the pod's uid. 0 on 201;
 * PW_KUBE_E_HTTP with *status 409 when the pod is already bound (or the uid
 * differs), 404 when it does not exist.
 */
int pw_kube_pod_bind(struct pw_kube *k, const char *ns, const char *name, const char *uid,
		     const char *node, long *status);

/*
 * Set one pod status condition by strategic-merge PATCH of pods/NAME/status
 * (conditions merge by type), lastTransitionTime now. For the scheduler:
 * type "PodScheduled", cstatus "False", reason "Unschedulable".
 */
int pw_kube_pod_condition_set(struct pw_kube *k, const char *ns, const char *name, const char *type,
			      const char *cstatus, const char *reason, const char *message,
			      long *status);

/* A core/v1 Event about an object. NULL fields are left out unless noted. */
struct pw_kube_event {
	const char *type;   /* "Normal" or "Warning"; NULL → "Normal" */
	const char *reason; /* e.g. "FailedScheduling" */
	const char *message;
	const char *component;	 /* source.component and reportingComponent */
	const char *instance;	 /* reportingInstance (e.g. host name) */
	const char *kind;	 /* involvedObject.kind, e.g. "Pod", "Node" */
	const char *api_version; /* involvedObject.apiVersion; NULL → "v1" */
	const char *ns;		 /* involvedObject.namespace and the Event's own
				  * namespace; NULL (cluster-scoped) → "default" */
	const char *name;	 /* involvedObject.name (required) */
	const char *uid;	 /* involvedObject.uid */
};

/* POST /api/v1/namespaces/NS/events; name is "<object>.<hex ns timestamp>" like client-go. */
int pw_kube_event_create(struct pw_kube *k, const struct pw_kube_event *ev, long *status);
/* Room for an Event's name, with its NUL. */
#define PW_KUBE_EVENT_NAME_MAX 256
/* One Event that a repeated occurrence updates; zero it before the first use. */
struct pw_kube_event_series {
	char name[PW_KUBE_EVENT_NAME_MAX]; /* the Event's name once created */
	unsigned count;			   /* its count; 0: none yet */
};
/*
 * Record @ev once more, as client-go's event correlator does for a repeat:
 * the first call creates the Event (count 1); later calls merge-PATCH its
 * count, lastTimestamp and message. When the Event is gone (404: it expired),
 * a new one is created. *series is updated on success and cleared when a
 * create fails. Returns as pw_kube_event_create().
 */
int pw_kube_event_record(struct pw_kube *k, const struct pw_kube_event *ev,
			 struct pw_kube_event_series *series, long *status);

/* GET /api/v1/namespaces/NS/pods/NAME. */
int pw_kube_pod_get(struct pw_kube *k, const char *ns, const char *name, long *status, cJSON **pod);

/* GET /api/v1/nodes/NAME. */
int pw_kube_node_get(struct pw_kube *k, const char *name, long *status, cJSON **node);

/*
 * Merge-patch node labels: labels is an object whose string members are set
 * and whose null members are removed ({"podwire.io/dpdk": "true", "old": null}).
 * *node (may be NULL) receives the patched node.
 */
int pw_kube_node_labels_patch(struct pw_kube *k, const char *name, const cJSON *labels,
			      long *status, cJSON **node);

/* ---- Leases and leader election ----------------------------------------- */

/* GET/POST/PUT coordination.k8s.io/v1 leases in ns. update is a PUT of the whole
 * lease, which must carry metadata.resourceVersion: 409 when it changed meanwhile. */
int pw_kube_lease_get(struct pw_kube *k, const char *ns, const char *name, long *status,
		      cJSON **lease);
int pw_kube_lease_create(struct pw_kube *k, const char *ns, const cJSON *lease, long *status,
			 cJSON **out);
int pw_kube_lease_update(struct pw_kube *k, const char *ns, const cJSON *lease, long *status,
			 cJSON **out);

/*
 * One round of leader election as client-go's tryAcquireOrRenew: create the
 * lease if missing; renew it if identity holds it (renewTime now, acquireTime
 * and leaseTransitions kept); take it over (acquireTime now, leaseTransitions+1)
 * only if it is released (empty holderIdentity) or expired, where expired
 * means its record has not changed for its leaseDurationSeconds as observed
 * by THIS handle's clock (skew-safe: a handle that first sees a foreign
 * lease waits a full duration). Writes use the lease's resourceVersion, so of
 * racing candidates only one wins (the others see 409: not leader).
 * Call every few seconds (e.g. lease_seconds / 3); leadership is lost when a
 * renewal fails. Returns 0 with *is_leader, or a negative code (*is_leader
 * false). Observations are kept in k (up to 8 leases).
 */
int pw_kube_lease_try(struct pw_kube *k, const char *ns, const char *name, const char *identity,
		      int lease_seconds, bool *is_leader);

/* Give the lease up if identity holds it (holderIdentity "", as client-go's
 * ReleaseOnCancel). 0 also when not held. */
int pw_kube_lease_release(struct pw_kube *k, const char *ns, const char *name,
			  const char *identity);

#endif /* PW_KUBE_H */
