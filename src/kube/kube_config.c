/* SPDX-License-Identifier: MIT */
/*
 * Configuration: kubeconfig files (YAML, read with libyaml into a cJSON tree)
 * and the in-cluster service account.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <yaml.h>

#include "kube_int.h"

#define PW_KUBECONFIG_MAX      ((size_t)16 << 20)
#define PW_KUBE_YAML_MAX_DEPTH 64
#define PW_KUBE_YAML_MAX_NODES 1000000 /* after alias expansion: stops "billion laughs" */
#define PW_KUBE_SA_DIR	       "/var/run/secrets/kubernetes.io/serviceaccount"

/* ---- YAML → cJSON ---- */

struct pw_kube_yconv {
	yaml_document_t *doc;
	long budget;
	char *err;
	size_t errlen;
};

static bool pw_kube_yaml_plain_is(const yaml_node_t *n, const char *const *words)
{
	for (; *words; words++)
		if (n->data.scalar.length == strlen(*words) &&
		    !memcmp(n->data.scalar.value, *words, n->data.scalar.length))
			return true;
	return false;
}

static cJSON *pw_kube_yaml_scalar(const yaml_node_t *n)
{
	static const char *const yes[] = { "true", "True", "TRUE", NULL };
	static const char *const no[] = { "false", "False", "FALSE", NULL };
	static const char *const null[] = { "null", "Null", "NULL", "~", "", NULL };
	char *s;
	cJSON *v;

	if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
		if (pw_kube_yaml_plain_is(n, yes))
			return cJSON_CreateTrue();
		if (pw_kube_yaml_plain_is(n, no))
			return cJSON_CreateFalse();
		if (pw_kube_yaml_plain_is(n, null))
			return cJSON_CreateNull();
	}
	/* Numbers stay strings: kubeconfig has none we read as numbers. */
	s = strndup((const char *)n->data.scalar.value, n->data.scalar.length);
	if (!s)
		return NULL;
	v = cJSON_CreateString(s);
	free(s);
	return v;
}

static cJSON *pw_kube_yaml_node(struct pw_kube_yconv *c, int id, int depth)
{
	yaml_node_t *n = yaml_document_get_node(c->doc, id);
	cJSON *out = NULL;

	if (!n)
		return NULL;
	if (depth > PW_KUBE_YAML_MAX_DEPTH || --c->budget < 0) {
		snprintf(c->err, c->errlen, "nesting or alias expansion too large");
		return NULL;
	}
	switch (n->type) {
	case YAML_SCALAR_NODE:
		out = pw_kube_yaml_scalar(n);
		break;
	case YAML_SEQUENCE_NODE:
		out = cJSON_CreateArray();
		for (yaml_node_item_t *it = n->data.sequence.items.start;
		     out && it < n->data.sequence.items.top; it++) {
			cJSON *v = pw_kube_yaml_node(c, *it, depth + 1);

			if (!v || !cJSON_AddItemToArray(out, v)) {
				cJSON_Delete(v);
				cJSON_Delete(out);
				out = NULL;
			}
		}
		break;
	case YAML_MAPPING_NODE:
		out = cJSON_CreateObject();
		for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
		     out && p < n->data.mapping.pairs.top; p++) {
			yaml_node_t *kn = yaml_document_get_node(c->doc, p->key);
			char *key;
			cJSON *v;

			if (!kn || kn->type != YAML_SCALAR_NODE) {
				snprintf(c->err, c->errlen, "line %zu: mapping key is not a scalar",
					 kn ? kn->start_mark.line + 1 : 0);
				cJSON_Delete(out);
				return NULL;
			}
			key = strndup((const char *)kn->data.scalar.value, kn->data.scalar.length);
			v = key ? pw_kube_yaml_node(c, p->value, depth + 1) : NULL;
			if (!v) {
				free(key);
				cJSON_Delete(out);
				return NULL;
			}
			/* Duplicate keys: the last one wins. */
			cJSON_DeleteItemFromObjectCaseSensitive(out, key);
			if (!cJSON_AddItemToObject(out, key, v)) {
				cJSON_Delete(v);
				cJSON_Delete(out);
				out = NULL;
			}
			free(key);
		}
		break;
	default:
		break;
	}
	if (!out && !c->err[0])
		snprintf(c->err, c->errlen, "out of memory");
	return out;
}

/* Parse YAML (or JSON) text; NULL with err filled on failure. */
static cJSON *pw_kube_yaml_to_json(const char *text, size_t len, char *err, size_t errlen)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root;
	cJSON *out = NULL;
	struct pw_kube_yconv c = {
		.doc = &doc, .budget = PW_KUBE_YAML_MAX_NODES, .err = err, .errlen = errlen
	};

	err[0] = '\0';
	if (!yaml_parser_initialize(&parser)) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		snprintf(err, errlen, "YAML error at line %zu column %zu: %s%s%s",
			 parser.problem_mark.line + 1, parser.problem_mark.column + 1,
			 parser.problem ? parser.problem : "syntax error",
			 parser.context ? " " : "", parser.context ? parser.context : "");
		yaml_parser_delete(&parser);
		return NULL;
	}
	root = yaml_document_get_root_node(&doc);
	if (!root)
		snprintf(err, errlen, "empty document");
	else
		out = pw_kube_yaml_node(&c, 1, 0);
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	return out;
}

/* ---- base64 ---- */

static int pw_kube_b64_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Standard base64, whitespace ignored, padding optional. -EINVAL on junk. */
static int pw_kube_b64_decode(const char *in, struct pw_kube_blob *ret_blob)
{
	size_t n = strlen(in);
	unsigned char *p = malloc(n / 4 * 3 + 4);
	unsigned acc = 0, bits = 0, pad = 0;
	size_t len = 0;

	if (!p)
		return -ENOMEM;
	for (; *in; in++) {
		unsigned char c = (unsigned char)*in;
		int v;

		if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
			continue;
		if (c == '=') {
			pad++;
			continue;
		}
		v = pw_kube_b64_val(c);
		if (v < 0 || pad)
			goto bad;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			p[len++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (bits >= 6 || pad > 2 || len == 0)
		goto bad;
	p[len] = '\0';
	ret_blob->data = p;
	ret_blob->len = len;
	return 0;
bad:
	explicit_bzero(p, len);
	free(p);
	return -EINVAL;
}

/* ---- kubeconfig ---- */

/* The named entry's inner object in a kubeconfig list ("clusters" → "cluster"). */
static const cJSON *pw_kube_config_named(const cJSON *root, const char *list, const char *inner,
					 const char *name)
{
	const cJSON *arr = pw_json_get(root, list), *it;

	cJSON_ArrayForEach(it, arr)
	{
		const char *n = pw_json_get_str(it, "name");

		if (n && !strcmp(n, name))
			return pw_json_get(it, inner);
	}
	return NULL;
}

static bool pw_kube_config_true(const cJSON *v)
{
	return cJSON_IsTrue(v) || (cJSON_IsString(v) && !strcmp(v->valuestring, "true"));
}

/* Absolute path of a kubeconfig-relative path; NULL on ENOMEM. */
static char *pw_kube_path_resolve(const char *dir, const char *p)
{
	char *out;

	if (p[0] == '/')
		return strdup(p);
	if (asprintf(&out, "%s/%s", dir, p) < 0)
		return NULL;
	return out;
}

static int pw_kube_file_readable(struct pw_kube *k, const char *what, const char *path)
{
	if (access(path, R_OK))
		return pw_kube_fail(k, -errno, "kubeconfig: %s %s: %s", what, path,
				    strerror(errno));
	return 0;
}

/* A file field (resolved against dir, must be readable) or a base64 -data field. */
static int pw_kube_config_file_or_data(struct pw_kube *k, const cJSON *obj, const char *field,
				       const char *dir, char **file, struct pw_kube_blob *blob)
{
	char dfield[64];
	const char *data, *path;
	int rc;

	snprintf(dfield, sizeof(dfield), "%s-data", field);
	data = pw_json_get_str(obj, dfield);
	path = pw_json_get_str(obj, field);
	if (data && data[0]) {
		rc = pw_kube_b64_decode(data, blob);
		if (rc == -EINVAL)
			return pw_kube_fail(k, PW_KUBE_E_CONFIG,
					    "kubeconfig: %s is not valid base64", dfield);
		if (rc)
			return pw_kube_fail(k, rc, "out of memory");
		return 0;
	}
	if (path && path[0]) {
		*file = pw_kube_path_resolve(dir, path);
		if (!*file)
			return pw_kube_fail(k, -ENOMEM, "out of memory");
		return pw_kube_file_readable(k, field, *file);
	}
	return 0;
}

static int pw_kube_strdup_into(struct pw_kube *k, char **dst, const char *s)
{
	*dst = strdup(s);
	return *dst ? 0 : pw_kube_fail(k, -ENOMEM, "out of memory");
}

static int pw_kube_config_user_load(struct pw_kube *k, const cJSON *user, const char *dir)
{
	const char *token = pw_json_get_str(user, "token");
	const char *token_file = pw_json_get_str(user, "tokenFile");
	const char *s;
	int rc;

	if (!cJSON_IsObject(user))
		return 0; /* anonymous */
	if (token_file && token_file[0]) {
		/* tokenFile wins over token, and is re-read as it changes (client-go). */
		k->token_file = pw_kube_path_resolve(dir, token_file);
		if (!k->token_file)
			return pw_kube_fail(k, -ENOMEM, "out of memory");
		rc = pw_kube_file_readable(k, "tokenFile", k->token_file);
		if (rc)
			return rc;
		pw_kube_token_refresh(k, true);
		if (!k->token)
			return pw_kube_fail(k, PW_KUBE_E_CONFIG,
					    "kubeconfig: tokenFile %s is empty", k->token_file);
	} else if (token && token[0]) {
		rc = pw_kube_strdup_into(k, &k->token, token);
		if (rc)
			return rc;
	}
	rc = pw_kube_config_file_or_data(k, user, "client-certificate", dir, &k->cert_file,
					 &k->cert);
	if (!rc)
		rc = pw_kube_config_file_or_data(k, user, "client-key", dir, &k->key_file, &k->key);
	if (rc)
		return rc;
	if ((k->cert_file || k->cert.data) != (k->key_file || k->key.data))
		return pw_kube_fail(
			k, PW_KUBE_E_CONFIG,
			"kubeconfig: client-certificate and client-key must come together");
	if ((s = pw_json_get_str(user, "username")) &&
	    (rc = pw_kube_strdup_into(k, &k->username, s)))
		return rc;
	if ((s = pw_json_get_str(user, "password")) &&
	    (rc = pw_kube_strdup_into(k, &k->password, s)))
		return rc;
	if (!k->token && !k->cert_file && !k->cert.data && !k->username &&
	    (pw_json_get(user, "exec") || pw_json_get(user, "auth-provider")))
		return pw_kube_fail(
			k, -ENOTSUP,
			"kubeconfig: exec and auth-provider credentials are not supported; "
			"use a token, tokenFile or client certificate");
	return 0;
}

static int pw_kube_config_cluster_load(struct pw_kube *k, const cJSON *cluster, const char *dir)
{
	const char *server = pw_json_get_str(cluster, "server");
	size_t n;
	int rc;

	if (!server || !server[0])
		return pw_kube_fail(k, PW_KUBE_E_CONFIG, "kubeconfig: cluster has no server");
	if (strncmp(server, "https://", 8) != 0 && strncmp(server, "http://", 7) != 0)
		return pw_kube_fail(k, PW_KUBE_E_CONFIG,
				    "kubeconfig: server %s is not an http:// or https:// URL",
				    server);
	if (pw_json_get(cluster, "proxy-url") || pw_json_get(cluster, "tls-server-name"))
		return pw_kube_fail(k, -ENOTSUP,
				    "kubeconfig: proxy-url and tls-server-name are not supported");
	rc = pw_kube_strdup_into(k, &k->server, server);
	if (rc)
		return rc;
	n = strlen(k->server);
	while (n > 0 && k->server[n - 1] == '/')
		k->server[--n] = '\0';
	k->insecure = pw_kube_config_true(pw_json_get(cluster, "insecure-skip-tls-verify"));
	return pw_kube_config_file_or_data(k, cluster, "certificate-authority", dir, &k->ca_file,
					   &k->ca);
}

static int pw_kube_config_load(struct pw_kube *k, const cJSON *root, const char *ctx_name,
			       const char *dir)
{
	const cJSON *ctx, *cluster, *user = NULL;
	const char *cname, *uname, *ns;
	int rc;

	if (!cJSON_IsObject(root))
		return pw_kube_fail(k, PW_KUBE_E_CONFIG, "kubeconfig: top level is not a mapping");
	if (!ctx_name)
		ctx_name = pw_json_get_str(root, "current-context");
	if (!ctx_name || !ctx_name[0])
		return pw_kube_fail(k, PW_KUBE_E_CONFIG,
				    "kubeconfig: no context given and current-context is not set");
	ctx = pw_kube_config_named(root, "contexts", "context", ctx_name);
	if (!cJSON_IsObject(ctx))
		return pw_kube_fail(k, PW_KUBE_E_CONFIG, "kubeconfig: context \"%s\" not found",
				    ctx_name);
	cname = pw_json_get_str(ctx, "cluster");
	cluster = cname ? pw_kube_config_named(root, "clusters", "cluster", cname) : NULL;
	if (!cJSON_IsObject(cluster))
		return pw_kube_fail(k, PW_KUBE_E_CONFIG,
				    "kubeconfig: cluster \"%s\" of context \"%s\" not found",
				    cname ? cname : "", ctx_name);
	uname = pw_json_get_str(ctx, "user");
	if (uname && uname[0]) {
		user = pw_kube_config_named(root, "users", "user", uname);
		if (!cJSON_IsObject(user))
			return pw_kube_fail(k, PW_KUBE_E_CONFIG,
					    "kubeconfig: user \"%s\" of context \"%s\" not found",
					    uname, ctx_name);
	}
	ns = pw_json_get_str(ctx, "namespace");
	rc = pw_kube_strdup_into(k, &k->ns, ns && ns[0] ? ns : "default");
	if (!rc)
		rc = pw_kube_config_cluster_load(k, cluster, dir);
	if (!rc)
		rc = pw_kube_config_user_load(k, user, dir);
	return rc;
}

int pw_kube_open_kubeconfig(const char *path, const char *context, struct pw_kube **kp)
{
	char *owned = NULL, *abs = NULL, *text = NULL, *slash;
	struct pw_kube *k = NULL;
	cJSON *root = NULL;
	size_t len;
	int rc;

	*kp = NULL;
	rc = pw_kube_new(&k);
	if (rc)
		return rc;
	if (!path) {
		const char *env = getenv("KUBECONFIG"), *home = getenv("HOME");

		if (env && env[0]) {
			owned = strndup(env, strcspn(env, ":"));
		} else if (home && home[0]) {
			if (asprintf(&owned, "%s/.kube/config", home) < 0)
				owned = NULL;
		} else {
			rc = pw_kube_fail(k, -ENOENT, "no kubeconfig: KUBECONFIG and HOME unset");
			goto out;
		}
		if (!owned) {
			rc = pw_kube_fail(k, -ENOMEM, "out of memory");
			goto out;
		}
		path = owned;
	}
	if (path[0] == '/') {
		abs = strdup(path);
	} else {
		char cwd[PATH_MAX];

		if (!getcwd(cwd, sizeof(cwd)) || asprintf(&abs, "%s/%s", cwd, path) < 0)
			abs = NULL;
	}
	if (!abs) {
		rc = pw_kube_fail(k, -ENOMEM, "out of memory");
		goto out;
	}
	rc = pw_kube_file_read(abs, PW_KUBECONFIG_MAX, &text, &len);
	if (rc) {
		pw_kube_fail(k, rc, "kubeconfig %s: %s", path, strerror(-rc));
		goto out;
	}
	root = pw_kube_yaml_to_json(text, len, k->err, sizeof(k->err));
	if (!root) {
		char why[PW_KUBE_ERR_LEN];

		snprintf(why, sizeof(why), "%s", k->err);
		rc = pw_kube_fail(k, PW_KUBE_E_CONFIG, "kubeconfig %s: %s", path, why);
		goto out;
	}
	slash = strrchr(abs, '/');
	*(slash == abs ? slash + 1 : slash) = '\0';
	rc = pw_kube_config_load(k, root, context, abs);
out:
	cJSON_Delete(root);
	if (text) {
		explicit_bzero(text, len);
		free(text);
	}
	free(abs);
	free(owned);
	return pw_kube_open_done(k, rc, kp);
}

int pw_kube_open_incluster(struct pw_kube **kp)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");
	const char *dir = getenv("PODWIRE_SA_DIR");
	struct pw_kube *k;
	char *ca = NULL, *nsfile = NULL, *ns = NULL;
	size_t len;
	int rc;

	*kp = NULL;
	if (!host || !host[0] || !port || !port[0]) {
		pw_kube_thread_error_set("not in a cluster: KUBERNETES_SERVICE_HOST/PORT unset");
		return -ENXIO;
	}
	if (!dir || !dir[0])
		dir = PW_KUBE_SA_DIR;
	rc = pw_kube_new(&k);
	if (rc)
		return rc;
	if (asprintf(&k->server, strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host,
		     port) < 0 ||
	    asprintf(&k->token_file, "%s/token", dir) < 0 || asprintf(&ca, "%s/ca.crt", dir) < 0 ||
	    asprintf(&nsfile, "%s/namespace", dir) < 0) {
		rc = pw_kube_fail(k, -ENOMEM, "out of memory");
		goto out;
	}
	pw_kube_token_refresh(k, true);
	if (!k->token) {
		rc = pw_kube_fail(k, -ENOENT, "in-cluster: cannot read token %s", k->token_file);
		goto out;
	}
	if (access(ca, R_OK) == 0) {
		k->ca_file = ca;
		ca = NULL;
	}
	if (pw_kube_file_read(nsfile, 4096, &ns, &len) == 0) {
		while (len > 0 && (ns[len - 1] == '\n' || ns[len - 1] == ' '))
			ns[--len] = '\0';
	}
	if (ns && ns[0]) {
		k->ns = ns;
		ns = NULL;
	} else if (pw_kube_strdup_into(k, &k->ns, "default")) {
		rc = -ENOMEM;
	}
out:
	free(ca);
	free(nsfile);
	free(ns);
	return pw_kube_open_done(k, rc, kp);
}

int pw_kube_open(const char *kubeconfig, struct pw_kube **k)
{
	const char *env = getenv("KUBECONFIG"), *host = getenv("KUBERNETES_SERVICE_HOST");

	if (!kubeconfig && !(env && env[0]) && host && host[0])
		return pw_kube_open_incluster(k);
	return pw_kube_open_kubeconfig(kubeconfig, NULL, k);
}
