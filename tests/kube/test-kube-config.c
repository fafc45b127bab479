/* SPDX-License-Identifier: MIT */
/*
 * Kubeconfig parsing against the API-server double (plain HTTP, bearer
 * tokens): token, tokenFile with a relative path, contexts and namespaces,
 * JSON as YAML, $KUBECONFIG, and clear errors for broken files.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube_test.h"

static struct kt_double dbl;
static struct pw_kube *ctl;

static void write_kubeconfig(const char *path, const char *server)
{
	kt_write_file(path,
		      "apiVersion: v1\n"
		      "kind: Config\n"
		      "# two contexts, two users\n"
		      "current-context: ctx-a\n"
		      "clusters:\n"
		      "- name: test\n"
		      "  cluster:\n"
		      "    server: \"%s/\"\n"
		      "contexts:\n"
		      "- name: ctx-a\n"
		      "  context: {cluster: test, user: alice, namespace: team-a}\n"
		      "- name: ctx-b\n"
		      "  context:\n"
		      "    cluster: test\n"
		      "    user: bob\n"
		      "- name: ctx-missing-user\n"
		      "  context: {cluster: test, user: nobody}\n"
		      "- name: ctx-exec\n"
		      "  context: {cluster: test, user: execuser}\n"
		      "users:\n"
		      "- name: alice\n"
		      "  user:\n"
		      "    token: token-a\n"
		      "- name: bob\n"
		      "  user:\n"
		      "    token: ignored-because-tokenFile-wins\n"
		      "    tokenFile: secrets/bob-token\n"
		      "- name: execuser\n"
		      "  user:\n"
		      "    exec:\n"
		      "      command: some-plugin\n",
		      server);
}

/* GET /api/v1/nodes through k must succeed and carry token want. */
static void expect_auth(struct pw_kube *k, const char *want)
{
	cJSON *nodes = NULL;
	long st = 0;
	int rc = pw_kube_get(k, "/api/v1/nodes", &st, &nodes);

	PW_CHECK(rc == 0 && st == 200, "rc %d status %ld: %s", rc, st, pw_kube_last_error(k));
	PW_CHECK(!strcmp(cJSON_GetObjectItem(nodes, "kind")->valuestring, "NodeList"), "kind");
	cJSON_Delete(nodes);
	PW_CHECK(!strcmp(kt_last_auth(ctl), want), "auth %s, want %s", kt_last_auth(ctl), want);
}

static void test_contexts(void)
{
	struct pw_kube *k;
	char cwd[4096];
	int rc;

	PW_CHECK(mkdir(kt_path("kc"), 0700) == 0, "mkdir");
	PW_CHECK(mkdir(kt_path("kc/secrets"), 0700) == 0, "mkdir");
	write_kubeconfig(kt_path("kc/config"), dbl.url);
	kt_write_file(kt_path("kc/secrets/bob-token"), "token-b\n");

	/* current-context: alice's token and namespace; trailing '/' of server dropped. */
	rc = pw_kube_open_kubeconfig(kt_path("kc/config"), NULL, &k);
	PW_CHECK(rc == 0, "rc %d: %s", rc, pw_kube_last_error(NULL));
	PW_CHECK(!strcmp(pw_kube_namespace(k), "team-a"), "ns %s", pw_kube_namespace(k));
	PW_CHECK(!strcmp(pw_kube_server(k), dbl.url), "server %s", pw_kube_server(k));
	expect_auth(k, "token-a");
	pw_kube_close(k);

	/* Explicit context; tokenFile relative to the kubeconfig's directory, not
	 * the cwd, and it wins over token. */
	PW_CHECK(getcwd(cwd, sizeof(cwd)), "getcwd");
	PW_CHECK(chdir("/") == 0, "chdir");
	rc = pw_kube_open_kubeconfig(kt_path("kc/config"), "ctx-b", &k);
	PW_CHECK(rc == 0, "rc %d: %s", rc, pw_kube_last_error(NULL));
	PW_CHECK(!strcmp(pw_kube_namespace(k), "default"), "ns %s", pw_kube_namespace(k));
	expect_auth(k, "token-b");
	pw_kube_close(k);

	/* A relative kubeconfig path: relative to the cwd, then its files to its dir. */
	PW_CHECK(chdir(kt_tmp) == 0, "chdir");
	rc = pw_kube_open_kubeconfig("kc/config", "ctx-b", &k);
	PW_CHECK(rc == 0, "rc %d: %s", rc, pw_kube_last_error(NULL));
	expect_auth(k, "token-b");
	pw_kube_close(k);
	PW_CHECK(chdir(cwd) == 0, "chdir back");

	/* $KUBECONFIG (first of a list) when no path is given; pw_kube_open too. */
	setenv("KUBECONFIG", kt_path("kc/config"), 1);
	rc = pw_kube_open_kubeconfig(NULL, NULL, &k);
	PW_CHECK(rc == 0, "rc %d: %s", rc, pw_kube_last_error(NULL));
	expect_auth(k, "token-a");
	pw_kube_close(k);
	char list[1200];
	snprintf(list, sizeof(list), "%s:/nonexistent/other", kt_path("kc/config"));
	setenv("KUBECONFIG", list, 1);
	rc = pw_kube_open(NULL, &k);
	PW_CHECK(rc == 0, "rc %d: %s", rc, pw_kube_last_error(NULL));
	expect_auth(k, "token-a");
	pw_kube_close(k);
	unsetenv("KUBECONFIG");

	/* Broken references fail clearly. */
	rc = pw_kube_open_kubeconfig(kt_path("kc/config"), "no-such-ctx", &k);
	PW_CHECK(rc == PW_KUBE_E_CONFIG && !k, "rc %d", rc);
	PW_CHECK(strstr(pw_kube_last_error(NULL), "no-such-ctx"), "%s", pw_kube_last_error(NULL));
	rc = pw_kube_open_kubeconfig(kt_path("kc/config"), "ctx-missing-user", &k);
	PW_CHECK(rc == PW_KUBE_E_CONFIG, "rc %d", rc);
	PW_CHECK(strstr(pw_kube_last_error(NULL), "nobody"), "%s", pw_kube_last_error(NULL));
	rc = pw_kube_open_kubeconfig(kt_path("kc/config"), "ctx-exec", &k);
	PW_CHECK(rc == -ENOTSUP, "rc %d", rc);
	PW_CHECK(strstr(pw_kube_last_error(NULL), "exec"), "%s", pw_kube_last_error(NULL));

	/* The token file gone: a clear error naming it. */
	PW_CHECK(unlink(kt_path("kc/secrets/bob-token")) == 0, "unlink");
	rc = pw_kube_open_kubeconfig(kt_path("kc/config"), "ctx-b", &k);
	PW_CHECK(rc == -ENOENT, "rc %d", rc);
	PW_CHECK(strstr(pw_kube_last_error(NULL), "bob-token"), "%s", pw_kube_last_error(NULL));
}

/* A kubeconfig with this text must fail to open with PW_KUBE_E_CONFIG, saying needle. */
static void expect_config_error(const char *name, const char *text, const char *needle)
{
	struct pw_kube *k = (struct pw_kube *)1;
	int rc;

	kt_write_file(kt_path(name), "%s", text);
	rc = pw_kube_open_kubeconfig(kt_path(name), NULL, &k);
	PW_CHECK(rc == PW_KUBE_E_CONFIG && !k, "%s: rc %d", name, rc);
	PW_CHECK(strstr(pw_kube_last_error(NULL), needle), "%s: %s", name,
		 pw_kube_last_error(NULL));
}

static void test_json_and_errors(void)
{
	struct pw_kube *k;
	int rc;

	/* JSON is YAML: the same config as JSON. */
	kt_write_file(kt_path("config.json"),
		      "{\"apiVersion\":\"v1\",\"kind\":\"Config\",\"current-context\":\"c\","
		      "\"clusters\":[{\"name\":\"x\",\"cluster\":{\"server\":\"%s\"}}],"
		      "\"contexts\":[{\"name\":\"c\",\"context\":{\"cluster\":\"x\",\"user\":\"u\","
		      "\"namespace\":\"json-ns\"}}],"
		      "\"users\":[{\"name\":\"u\",\"user\":{\"token\":\"token-a\"}}]}",
		      dbl.url);
	rc = pw_kube_open_kubeconfig(kt_path("config.json"), NULL, &k);
	PW_CHECK(rc == 0, "rc %d: %s", rc, pw_kube_last_error(NULL));
	PW_CHECK(!strcmp(pw_kube_namespace(k), "json-ns"), "ns %s", pw_kube_namespace(k));
	expect_auth(k, "token-a");
	pw_kube_close(k);

	/* Malformed YAML: the error says where. */
	expect_config_error("bad.yaml",
			    "apiVersion: v1\nclusters:\n- name: x\n  cluster: [\n"
			    "current-context: : :\n",
			    "line");

	/* Not a mapping; no current-context; bad base64; no server; empty. */
	expect_config_error("list.yaml", "- a\n- b\n", "mapping");
	expect_config_error("noctx.yaml", "apiVersion: v1\nkind: Config\n", "current-context");
	expect_config_error("b64.yaml",
			    "current-context: c\n"
			    "contexts: [{name: c, context: {cluster: x}}]\n"
			    "clusters: [{name: x, cluster: {server: 'https://127.0.0.1:1',"
			    " certificate-authority-data: 'not*base64!'}}]\n",
			    "base64");
	expect_config_error("noserver.yaml",
			    "current-context: c\n"
			    "contexts: [{name: c, context: {cluster: x}}]\n"
			    "clusters: [{name: x, cluster: {}}]\n",
			    "server");
	expect_config_error("empty.yaml", "", "empty");

	/* Missing file. */
	rc = pw_kube_open_kubeconfig(kt_path("does-not-exist"), NULL, &k);
	PW_CHECK(rc == -ENOENT && !k, "rc %d", rc);
	PW_CHECK(strstr(pw_kube_last_error(NULL), "does-not-exist"), "%s",
		 pw_kube_last_error(NULL));

	/* An alias bomb is refused, not expanded. */
	expect_config_error("bomb.yaml",
			    "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
			    "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
			    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
			    "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
			    "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
			    "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
			    "g: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n",
			    "too large");
}

/* No token: 401 with a Status, reported as PW_KUBE_E_HTTP with the reason. */
static void test_unauthorized(void)
{
	struct pw_kube *k;
	cJSON *j = NULL;
	long st = 0;
	int rc;

	k = kt_open(&dbl);
	rc = pw_kube_request(k, "GET", "/api/v1/nodes", NULL, NULL, &st, &j);
	PW_CHECK(rc == 0 && st == 401, "rc %d st %ld", rc, st);
	PW_CHECK(!strcmp(cJSON_GetObjectItem(j, "kind")->valuestring, "Status"), "Status body");
	PW_CHECK(cJSON_GetObjectItem(j, "code")->valueint == 401, "code");
	cJSON_Delete(j);
	rc = pw_kube_get(k, "/api/v1/nodes", &st, &j);
	PW_CHECK(rc == PW_KUBE_E_HTTP && st == 401, "rc %d st %ld", rc, st);
	PW_CHECK(strstr(pw_kube_last_error(k), "Unauthorized"), "%s", pw_kube_last_error(k));
	cJSON_Delete(j);
	pw_kube_close(k);

	/* Nothing listening: a transport error, not a status. */
	PW_CHECK(pw_kube_open_url("http://127.0.0.1:1", "x", &k) == 0, "open");
	rc = pw_kube_get(k, "/api/v1/nodes", &st, NULL);
	PW_CHECK(rc == -ECONNREFUSED && st == 0, "rc %d st %ld", rc, st);
	PW_CHECK(pw_kube_last_error(k)[0], "an error text");
	pw_kube_close(k);
	PW_CHECK(pw_kube_open_url("ftp://x", NULL, &k) == -EINVAL, "bad scheme");
}

int main(int argc, char **argv)
{
	static const char *const args[] = { "--token", "token-a", "--token", "token-b", NULL };

	ctl = kt_start(argc, argv, &dbl, args);
	test_contexts();
	test_json_and_errors();
	test_unauthorized();
	kt_finish(ctl, &dbl, "kube-config");
	return 0;
}
