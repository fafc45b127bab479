// SPDX-License-Identifier: MIT
/*
 * podwire-webhook: a mutating admission webhook (HTTPS, POST /mutate) that
 * injects podwire into the pods of opted-in namespaces. The
 * MutatingWebhookConfiguration in deploy/webhook.yaml selects them and sets
 * failurePolicy: Ignore, so an outage of this server never blocks a pod.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "httpd.h"
#include "log.h"
#include "webhook.h"

#define PW_WH_MAX_BODY (8u << 20) /* the API server sends the whole pod twice at most */
#define PW_WH_MAX_PEM  (1u << 20)

static const char pw_usage[] =
	"Usage: podwire-webhook --tls-cert FILE --tls-key FILE [OPTIONS]\n"
	"\n"
	"A mutating admission webhook for Kubernetes that gives pods podwire: for\n"
	"each Pod CREATE the API server sends to POST /mutate, it adds\n"
	"  - a hostPath volume of the node's podwire directory, mounted read-only\n"
	"    into every container,\n"
	"  - LD_PRELOAD with podwire's library (appended to a value the container\n"
	"    already sets),\n"
	"  - PODWIRE_SOCKET, the router's socket,\n"
	"  - the annotation podwire.io/injected=true, which makes it a no-op on a\n"
	"    second pass.\n"
	"It never refuses a pod. Which pods it sees is the\n"
	"MutatingWebhookConfiguration's choice (deploy/webhook.yaml: namespaces\n"
	"labelled podwire.io/inject=enabled, pods labelled likewise, not pods\n"
	"labelled podwire.io/inject=disabled). GET /healthz answers ok.\n"
	"\n"
	"  -l, --listen HOST:PORT  (default 0.0.0.0:8443)\n"
	"  -c, --tls-cert FILE     serving certificate chain, PEM (required)\n"
	"  -k, --tls-key FILE      its private key, PEM (required)\n"
	"      --host-dir DIR      the node's podwire directory (default /run/podwire)\n"
	"      --mount-path DIR    where containers see it (default: the same)\n"
	"      --preload LIST      what LD_PRELOAD gets (default\n"
	"                          "
	"MOUNT/preload/$LIB/libpodwire.so:MOUNT/preload/$LIB/libpodwire-verbs.so;\n"
	"                          $LIB is for the dynamic loader: one value for glibc\n"
	"                          and musl images)\n"
	"      --socket PATH       PODWIRE_SOCKET (default MOUNT/podwired.sock)\n"
	"  -v, --log-level LEVEL   error, warn, info (default) or debug (one line per\n"
	"                          review)\n"
	"  -h, --help              this text\n"
	"\n"
	"Stops on SIGTERM or SIGINT with status 0; 1 when it cannot start (a\n"
	"certificate or key it cannot read or use, an address it cannot listen on);\n"
	"2 on bad usage.\n";

static struct pw_webhook_cfg pw_cfg;
/* Counted on the server's thread, read at exit. */
static _Atomic unsigned long pw_reviews, pw_injected, pw_bad;

/* A whole file (at most PW_WH_MAX_PEM bytes), NUL-terminated, or NULL with errno. */
static char *pw_file_read(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t n;

	if (!f)
		return NULL;
	buf = malloc(PW_WH_MAX_PEM + 1);
	if (buf) {
		n = fread(buf, 1, PW_WH_MAX_PEM + 1, f);
		if (ferror(f) || n > PW_WH_MAX_PEM || n == 0) {
			free(buf);
			buf = NULL;
			errno = n > PW_WH_MAX_PEM ? EFBIG : n == 0 ? ENODATA : EIO;
		} else {
			buf[n] = 0;
		}
	}
	fclose(f);
	return buf;
}

static cJSON *pw_wh_error(const char *msg)
{
	cJSON *o = cJSON_CreateObject();

	if (o)
		cJSON_AddStringToObject(o, "error", msg);
	return o;
}

static cJSON *pw_wh_serve(void *arg, const char *method, const char *path, const cJSON *body,
			  const char *bad, unsigned *code)
{
	const char *err = NULL;
	cJSON *out;

	if (strcmp(path, "/mutate") != 0) {
		*code = 404;
		return pw_wh_error("no such path: POST /mutate");
	}
	if (strcmp(method, "POST") != 0) {
		*code = 405;
		return pw_wh_error("want POST");
	}
	if (!body) {
		atomic_fetch_add_explicit(&pw_bad, 1, memory_order_relaxed);
		pw_warn("review refused: %s", bad);
		*code = 400;
		return pw_wh_error(bad);
	}
	out = pw_webhook_review(&pw_cfg, body, &err);
	if (!out) {
		atomic_fetch_add_explicit(&pw_bad, 1, memory_order_relaxed);
		pw_warn("review refused: %s", err);
		*code = err && !strcmp(err, "out of memory") ? 500 : 400;
		return pw_wh_error(err ? err : "?");
	}
	atomic_fetch_add_explicit(&pw_reviews, 1, memory_order_relaxed);
	{
		const cJSON *req = cJSON_GetObjectItemCaseSensitive(body, "request");
		const cJSON *resp = cJSON_GetObjectItemCaseSensitive(out, "response");
		const char *ns =
			cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "namespace"));
		const char *name =
			cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "name"));
		bool patched = cJSON_GetObjectItemCaseSensitive(resp, "patch") != NULL;

		if (patched)
			atomic_fetch_add_explicit(&pw_injected, 1, memory_order_relaxed);
		pw_dbg("review %s/%s: %s", ns ? ns : "?", name && *name ? name : "(generated name)",
		       patched ? "injected" : "unchanged");
	}
	return out;
}

static int pw_wh_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "tls-cert", required_argument, NULL, 'c' },
		{ "tls-key", required_argument, NULL, 'k' },
		{ "host-dir", required_argument, NULL, 'H' },
		{ "mount-path", required_argument, NULL, 'M' },
		{ "preload", required_argument, NULL, 'P' },
		{ "socket", required_argument, NULL, 'S' },
		{ "log-level", required_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *listen_on = "0.0.0.0:8443", *cert_path = NULL, *key_path = NULL;
	char *cert = NULL, *key = NULL, preload[1024], sock[512], bound[300];
	struct pw_httpd *h = NULL;
	sigset_t set;
	int o, r, sig, ret = 1;

	pw_cfg.host_dir = "/run/podwire";
	while ((o = getopt_long(argc, argv, "l:c:k:v:h", opts, NULL)) != -1) {
		switch (o) {
		case 'l':
			listen_on = optarg;
			break;
		case 'c':
			cert_path = optarg;
			break;
		case 'k':
			key_path = optarg;
			break;
		case 'H':
			pw_cfg.host_dir = optarg;
			break;
		case 'M':
			pw_cfg.mount_path = optarg;
			break;
		case 'P':
			pw_cfg.preload = optarg;
			break;
		case 'S':
			pw_cfg.socket = optarg;
			break;
		case 'v':
			r = pw_log_parse(optarg);
			if (r < 0) {
				fprintf(stderr, "podwire-webhook: --log-level: want error, warn, "
						"info or debug\n");
				return 2;
			}
			pw_log_max = (enum pw_log_level)r;
			break;
		case 'h':
			fputs(pw_usage, stdout);
			return 0;
		default:
			fputs(pw_usage, stderr);
			return 2;
		}
	}
	if (optind != argc || !cert_path || !key_path) {
		fprintf(stderr, "podwire-webhook: %s\n\n%s",
			optind != argc ? "unexpected argument"
				       : "--tls-cert and --tls-key are required",
			pw_usage);
		return 2;
	}
	if (!pw_cfg.mount_path)
		pw_cfg.mount_path = pw_cfg.host_dir;
	if (pw_cfg.host_dir[0] != '/' || pw_cfg.mount_path[0] != '/' ||
	    (pw_cfg.socket && pw_cfg.socket[0] != '/')) {
		fprintf(stderr, "podwire-webhook: --host-dir, --mount-path and --socket take "
				"absolute paths\n");
		return 2;
	}
	if (!pw_cfg.preload) {
		snprintf(preload, sizeof(preload),
			 "%s/preload/$LIB/libpodwire.so:%s/preload/$LIB/libpodwire-verbs.so",
			 pw_cfg.mount_path, pw_cfg.mount_path);
		pw_cfg.preload = preload;
	}
	if (!pw_cfg.socket) {
		snprintf(sock, sizeof(sock), "%s/podwired.sock", pw_cfg.mount_path);
		pw_cfg.socket = sock;
	}
	cert = pw_file_read(cert_path);
	if (!cert) {
		pw_err("--tls-cert %s: %s", cert_path, strerror(errno));
		goto out;
	}
	key = pw_file_read(key_path);
	if (!key) {
		pw_err("--tls-key %s: %s", key_path, strerror(errno));
		goto out;
	}
	/* Signals are taken with sigwait below; the server's thread inherits the mask. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	const struct pw_httpd_opts ho = {
		.listen = listen_on,
		.cert_pem = cert,
		.key_pem = key,
		.max_body = PW_WH_MAX_BODY,
		.fn = pw_wh_serve,
	};
	r = pw_httpd_start(&ho, &h, bound, sizeof(bound));
	if (r) {
		pw_err("cannot serve on %s: %s", listen_on,
		       r == -EINVAL ? "want HOST:PORT"
		       : r == -EIO  ? "TLS did not start (is the key the certificate's, both PEM?)"
				    : strerror(-r));
		goto out;
	}
	pw_info("serving https://%s/mutate: LD_PRELOAD+=%s PODWIRE_SOCKET=%s, hostPath %s at %s",
		bound, pw_cfg.preload, pw_cfg.socket, pw_cfg.host_dir, pw_cfg.mount_path);
	while (sigwait(&set, &sig) == EINTR)
		;
	pw_info("signal %d: stopping (%lu reviews, %lu pods injected, %lu refused requests)", sig,
		atomic_load_explicit(&pw_reviews, memory_order_relaxed),
		atomic_load_explicit(&pw_injected, memory_order_relaxed),
		atomic_load_explicit(&pw_bad, memory_order_relaxed));
	ret = 0;
out:
	pw_httpd_stop(h);
	free(cert);
	free(key);
	return ret;
}

int main(int argc, char **argv)
{
	pw_log_ident = "podwire-webhook";
	return pw_wh_main(argc, argv);
}
