/* SPDX-License-Identifier: MIT */
/*
 * TLS against the API-server double with certificates made here by the
 * openssl CLI: CA and client certificate as kubeconfig *-data (in memory) and
 * as relative files, a wrong CA, insecure-skip-tls-verify, a missing client
 * certificate; then in-cluster configuration with token rotation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kube_test.h"

static struct kt_double dbl, incl;

__attribute__((format(printf, 1, 2))) static void sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = system(cmd);
	if (rc != 0)
		PW_FAIL("command failed (%d): %s", rc, cmd);
}

/* Base64 of a file's contents (malloc'ed). */
static char *b64_file(const char *path)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	FILE *f = fopen(path, "rb");
	unsigned char buf[16384];
	size_t n, o = 0;
	char *out;

	if (!f)
		PW_FAIL("%s: %s", path, strerror(errno));
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	out = malloc(n / 3 * 4 + 8);
	PW_CHECK(out, "malloc");
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = buf[i] << 16 | (i + 1 < n ? buf[i + 1] << 8 : 0) |
			     (i + 2 < n ? buf[i + 2] : 0);

		out[o++] = tab[v >> 18 & 63];
		out[o++] = tab[v >> 12 & 63];
		out[o++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? tab[v & 63] : '=';
	}
	out[o] = '\0';
	return out;
}

static void make_certs(void)
{
	const char *d = kt_tmp;

	kt_write_file(kt_path("server.ext"), "subjectAltName=IP:127.0.0.1\n"
					     "basicConstraints=CA:FALSE\n"
					     "extendedKeyUsage=serverAuth\n");
	kt_write_file(kt_path("client.ext"), "basicConstraints=CA:FALSE\n"
					     "extendedKeyUsage=clientAuth\n");
	/* Two CAs: the real one and one the server is not signed by. */
	for (int i = 0; i < 2; i++)
		sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
		   "-keyout %s/%s.key -out %s/%s.crt -days 2 -subj /CN=%s >/dev/null 2>&1",
		   d, i ? "otherca" : "ca", d, i ? "otherca" : "ca", i ? "other-ca" : "test-ca");
	sh("openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "
	   "%s/server.key -out %s/server.csr -subj /CN=apiserver >/dev/null 2>&1 && "
	   "openssl x509 -req -in %s/server.csr -CA %s/ca.crt -CAkey %s/ca.key -CAcreateserial "
	   "-out %s/server.crt -days 2 -extfile %s/server.ext >/dev/null 2>&1",
	   d, d, d, d, d, d, d);
	sh("openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "
	   "%s/client.key -out %s/client.csr -subj /CN=podwire-test/O=system:masters "
	   ">/dev/null 2>&1 && "
	   "openssl x509 -req -in %s/client.csr -CA %s/ca.crt -CAkey %s/ca.key -CAcreateserial "
	   "-out %s/client.crt -days 2 -extfile %s/client.ext >/dev/null 2>&1",
	   d, d, d, d, d, d, d);
}

static int try_get(const char *kubeconfig, long *st)
{
	struct pw_kube *k;
	int rc = pw_kube_open_kubeconfig(kubeconfig, NULL, &k);

	PW_CHECK(rc == 0, "open %s: rc %d: %s", kubeconfig, rc, pw_kube_last_error(NULL));
	pw_kube_set_timeouts(k, 3000, 5000);
	rc = pw_kube_get(k, "/api/v1/nodes", st, NULL);
	if (rc)
		fprintf(stderr, "  (%s: rc %d: %s)\n", kubeconfig, rc, pw_kube_last_error(k));
	pw_kube_close(k);
	return rc;
}

static void kubeconfig(const char *name, const char *cluster_extra, const char *user_extra)
{
	kt_write_file(kt_path(name),
		      "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
		      "clusters:\n- name: x\n  cluster:\n    server: https://127.0.0.1:%d\n%s"
		      "contexts:\n- name: c\n  context: {cluster: x, user: u}\n"
		      "users:\n- name: u\n  user:\n%s",
		      dbl.port, cluster_extra, user_extra);
}

static void test_kubeconfig_tls(void)
{
	char *ca = b64_file(kt_path("ca.crt")), *other = b64_file(kt_path("otherca.crt"));
	char *cert = b64_file(kt_path("client.crt")), *key = b64_file(kt_path("client.key"));
	char cl[8192], us[8192];
	long st = 0;
	int rc;

	/* *-data: all in memory. */
	snprintf(cl, sizeof(cl), "    certificate-authority-data: %s\n", ca);
	snprintf(us, sizeof(us), "    client-certificate-data: %s\n    client-key-data: %s\n", cert,
		 key);
	kubeconfig("data.yaml", cl, us);
	rc = try_get(kt_path("data.yaml"), &st);
	PW_CHECK(rc == 0 && st == 200, "data: rc %d st %ld", rc, st);

	/* Files, relative to the kubeconfig's directory. */
	PW_CHECK(mkdir(kt_path("pki"), 0700) == 0, "mkdir");
	sh("cp %s/ca.crt %s/client.crt %s/client.key %s/pki/", kt_tmp, kt_tmp, kt_tmp, kt_tmp);
	kubeconfig("files.yaml", "    certificate-authority: pki/ca.crt\n",
		   "    client-certificate: pki/client.crt\n    client-key: pki/client.key\n");
	rc = try_get(kt_path("files.yaml"), &st);
	PW_CHECK(rc == 0 && st == 200, "files: rc %d st %ld", rc, st);

	/* The wrong CA: certificate verification fails. */
	snprintf(cl, sizeof(cl), "    certificate-authority-data: %s\n", other);
	kubeconfig("wrongca.yaml", cl, us);
	rc = try_get(kt_path("wrongca.yaml"), &st);
	PW_CHECK(rc == PW_KUBE_E_TLS && st == 0, "wrong CA: rc %d st %ld", rc, st);

	/* No CA but the system's: fails too (our CA is not a system CA). */
	kubeconfig("noca.yaml", "", us);
	rc = try_get(kt_path("noca.yaml"), &st);
	PW_CHECK(rc == PW_KUBE_E_TLS, "system CAs: rc %d", rc);

	/* insecure-skip-tls-verify: no verification, client certificate still sent. */
	kubeconfig("insecure.yaml", "    insecure-skip-tls-verify: true\n", us);
	rc = try_get(kt_path("insecure.yaml"), &st);
	PW_CHECK(rc == 0 && st == 200, "insecure: rc %d st %ld", rc, st);

	/* No client certificate: the server (--client-ca) refuses the connection. */
	snprintf(cl, sizeof(cl), "    certificate-authority-data: %s\n", ca);
	kubeconfig("nocert.yaml", cl, "    token: whatever\n");
	rc = try_get(kt_path("nocert.yaml"), &st);
	PW_CHECK(rc < 0 && rc != PW_KUBE_E_HTTP && st == 0, "no client cert: rc %d st %ld", rc, st);

	/* A certificate without its key is a config error. */
	snprintf(us, sizeof(us), "    client-certificate-data: %s\n", cert);
	kubeconfig("halfcert.yaml", cl, us);
	struct pw_kube *k;
	rc = pw_kube_open_kubeconfig(kt_path("halfcert.yaml"), NULL, &k);
	PW_CHECK(rc == PW_KUBE_E_CONFIG, "half cert: rc %d", rc);
	free(ca);
	free(other);
	free(cert);
	free(key);
}

static void expect_ok(struct pw_kube *k, struct pw_kube *ctl, const char *tok)
{
	long st = 0;
	int rc = pw_kube_get(k, "/api/v1/nodes", &st, NULL);

	PW_CHECK(rc == 0 && st == 200, "rc %d st %ld: %s", rc, st, pw_kube_last_error(k));
	PW_CHECK(!strcmp(kt_last_auth(ctl), tok), "auth %s, want %s", kt_last_auth(ctl), tok);
}

static void test_incluster(void)
{
	struct pw_kube *k, *ctl;
	char port[16];
	struct stat before;
	long st;
	int rc;

	PW_CHECK(mkdir(kt_path("sa"), 0700) == 0, "mkdir");
	sh("cp %s/ca.crt %s/sa/ca.crt", kt_tmp, kt_tmp);
	kt_write_file(kt_path("sa/token"), "tok-1\n");
	kt_write_file(kt_path("sa/namespace"), "podwire-system");
	snprintf(port, sizeof(port), "%d", incl.port);

	PW_CHECK(pw_kube_open_incluster(&k) == -ENXIO, "without the variables: ENXIO");
	setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", port, 1);
	setenv("PODWIRE_SA_DIR", kt_path("sa"), 1);
	rc = pw_kube_open(NULL, &k); /* picks in-cluster: no kubeconfig set */
	PW_CHECK(rc == 0, "rc %d: %s", rc, pw_kube_last_error(NULL));
	PW_CHECK(!strcmp(pw_kube_namespace(k), "podwire-system"), "ns %s", pw_kube_namespace(k));
	PW_CHECK(!strncmp(pw_kube_server(k), "https://127.0.0.1:", 18), "%s", pw_kube_server(k));
	rc = pw_kube_open_incluster(&ctl);
	PW_CHECK(rc == 0, "rc %d", rc);
	expect_ok(k, ctl, "tok-1");

	/* The server moves on to a new token: with the old file, 401. */
	kt_ctl0(ctl, "POST", "/_test/tokens", "{\"tokens\":[\"tok-2\"]}");
	rc = pw_kube_get(k, "/api/v1/nodes", &st, NULL);
	PW_CHECK(rc == PW_KUBE_E_HTTP && st == 401, "rc %d st %ld", rc, st);

	/* Rotation as the kubelet does it (a new file renamed over): picked up at once. */
	kt_write_file(kt_path("sa/token.new"), "tok-2\n");
	PW_CHECK(rename(kt_path("sa/token.new"), kt_path("sa/token")) == 0, "rename");
	kt_ctl0(ctl, "POST", "/_test/tokens", "{\"tokens\":[\"tok-2\",\"ctl\"]}");
	expect_ok(k, ctl, "tok-2");
	expect_ok(k, ctl, "tok-2");

	/* A rewrite that stat cannot see (same inode, size, mtime): the 401 makes
	 * the library re-read the file and retry once. */
	PW_CHECK(stat(kt_path("sa/token"), &before) == 0, "stat");
	kt_ctl0(ctl, "POST", "/_test/tokens", "{\"tokens\":[\"tok-3\"]}");
	{
		FILE *f = fopen(kt_path("sa/token"), "r+");
		struct timespec ts[2] = { before.st_atim, before.st_mtim };

		PW_CHECK(f && fputs("tok-3\n", f) >= 0 && fflush(f) == 0, "rewrite");
		PW_CHECK(futimens(fileno(f), ts) == 0, "futimens");
		fclose(f);
	}
	kt_ctl0(ctl, "DELETE", "/_test/requests", NULL);
	expect_ok(k, ctl, "tok-3");
	PW_CHECK_EQ(kt_count_requests(ctl, "GET", "/api/v1/nodes", 401), 1);
	PW_CHECK_EQ(kt_count_requests(ctl, "GET", "/api/v1/nodes", 200), 1);

	/* No token file: a clear error. */
	PW_CHECK(unlink(kt_path("sa/token")) == 0, "unlink");
	pw_kube_close(k);
	rc = pw_kube_open_incluster(&k);
	PW_CHECK(rc == -ENOENT && strstr(pw_kube_last_error(NULL), "token"), "rc %d: %s", rc,
		 pw_kube_last_error(NULL));
	pw_kube_close(ctl);
	unsetenv("KUBERNETES_SERVICE_HOST");
}

int main(int argc, char **argv)
{
	char cert[600], key[600], ca[600];

	kt_init(argc, argv);
	if (system("openssl version >/dev/null 2>&1") != 0)
		PW_SKIP("the openssl CLI is missing (Debian package openssl)");
	make_certs();
	snprintf(cert, sizeof(cert), "%s", kt_path("server.crt"));
	snprintf(key, sizeof(key), "%s", kt_path("server.key"));
	snprintf(ca, sizeof(ca), "%s", kt_path("ca.crt"));
	{
		const char *args[] = {
			"--tls-cert", cert, "--tls-key", key, "--client-ca", ca, NULL
		};
		kt_double_start(&dbl, args);
	}
	{
		const char *args[] = { "--tls-cert", cert,	"--tls-key", key, "--token",
				       "tok-1",	     "--token", "ctl",	     NULL };
		kt_double_start(&incl, args);
	}
	test_kubeconfig_tls();
	test_incluster();
	PW_CHECK_EQ(kt_double_stop(&dbl), 0);
	PW_CHECK_EQ(kt_double_stop(&incl), 0);
	printf("kube-tls: ok\n");
	return 0;
}
