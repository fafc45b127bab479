// SPDX-License-Identifier: MIT
/* The webhook's answer to one AdmissionReview: a JSONPatch for an opted-in pod. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "json.h"
#include "webhook.h"

struct pw_patch {
	cJSON *ops;  /* the JSONPatch */
	cJSON *warn; /* warnings for the user */
	bool oom;
};

/* Append one operation; takes @value (NULL: out of memory). */
static void pw_patch_op(struct pw_patch *p, const char *op, const char *path, cJSON *value)
{
	cJSON *o = cJSON_CreateObject();

	if (!value || !o || !cJSON_AddStringToObject(o, "op", op) ||
	    !cJSON_AddStringToObject(o, "path", path)) {
		cJSON_Delete(value);
		goto fail;
	}
	if (!cJSON_AddItemToObject(o, "value", value)) {
		cJSON_Delete(value);
		goto fail;
	}
	if (cJSON_AddItemToArray(p->ops, o))
		return;
fail:
	cJSON_Delete(o);
	p->oom = true;
}

/* Add @item to the array at @path: "add path/-" when it exists, else "add path [item]". */
static void pw_patch_append(struct pw_patch *p, bool exists, const char *path, cJSON *item)
{
	char buf[160];
	cJSON *arr;

	if (exists) {
		snprintf(buf, sizeof(buf), "%s/-", path);
		pw_patch_op(p, "add", buf, item);
		return;
	}
	arr = cJSON_CreateArray();
	if (!item || !arr || !cJSON_AddItemToArray(arr, item)) {
		cJSON_Delete(item);
		cJSON_Delete(arr);
		arr = NULL;
	}
	pw_patch_op(p, "add", path, arr);
}

static cJSON *pw_env_var(const char *name, const char *value)
{
	cJSON *e = cJSON_CreateObject();

	if (e && (!cJSON_AddStringToObject(e, "name", name) ||
		  !cJSON_AddStringToObject(e, "value", value))) {
		cJSON_Delete(e);
		e = NULL;
	}
	return e;
}

/* Is @lib one of the ':'- or ' '-separated entries of @list? */
static bool pw_preload_has(const char *list, const char *lib)
{
	size_t n = strlen(lib);

	for (const char *s = list; (s = strstr(s, lib)); s++) {
		bool start = s == list || s[-1] == ':' || s[-1] == ' ';
		bool end = s[n] == 0 || s[n] == ':' || s[n] == ' ';

		if (start && end)
			return true;
	}
	return false;
}

/* The env entry named @name in @env, its index in *idx; NULL when absent. */
static const cJSON *pw_env_find(const cJSON *env, const char *name, int *idx)
{
	const cJSON *e;
	int i = 0;

	cJSON_ArrayForEach(e, env)
	{
		const char *n = pw_json_get_str(e, "name");

		if (n && !strcmp(n, name)) {
			*idx = i;
			return e;
		}
		i++;
	}
	return NULL;
}

static void pw_patch_container(const struct pw_webhook_cfg *cfg, struct pw_patch *p, const cJSON *c,
			       int ci)
{
	const cJSON *env = pw_json_get(c, "env"), *mounts = pw_json_get(c, "volumeMounts"), *m, *e;
	const char *cname = pw_json_get_str(c, "name");
	char path[128], msg[512];
	bool mounted = false, env_made = false;
	int idx = -1;

	/* The directory, read-only: connecting to the socket needs no write access. */
	cJSON_ArrayForEach(m, mounts)
	{
		const char *mp = pw_json_get_str(m, "mountPath");

		if (mp && !strcmp(mp, cfg->mount_path))
			mounted = true;
	}
	if (!mounted) {
		cJSON *vm = cJSON_CreateObject();

		if (vm && (!cJSON_AddStringToObject(vm, "name", PW_WEBHOOK_VOLUME) ||
			   !cJSON_AddStringToObject(vm, "mountPath", cfg->mount_path) ||
			   !cJSON_AddTrueToObject(vm, "readOnly"))) {
			cJSON_Delete(vm);
			vm = NULL;
		}
		snprintf(path, sizeof(path), "/spec/containers/%d/volumeMounts", ci);
		pw_patch_append(p, mounts != NULL, path, vm);
	}

	/* The environment: each variable added, or LD_PRELOAD extended. */
	snprintf(path, sizeof(path), "/spec/containers/%d/env", ci);
	e = pw_env_find(env, "LD_PRELOAD", &idx);
	if (!e) {
		pw_patch_append(p, env != NULL, path, pw_env_var("LD_PRELOAD", cfg->preload));
		env_made = true;
	} else if (pw_json_get(e, "valueFrom")) {
		snprintf(msg, sizeof(msg),
			 "podwire: container %s sets LD_PRELOAD from valueFrom; podwire's "
			 "library was not added to it",
			 cname ? cname : "?");
		if (!cJSON_AddItemToArray(p->warn, cJSON_CreateString(msg)))
			p->oom = true;
	} else {
		const char *old = pw_json_get_str(e, "value");

		if (!old || !*old) {
			snprintf(path, sizeof(path), "/spec/containers/%d/env/%d/value", ci, idx);
			pw_patch_op(p, "add", path, cJSON_CreateString(cfg->preload));
		} else if (!pw_preload_has(old, cfg->preload)) {
			size_t n = strlen(old) + strlen(cfg->preload) + 2;
			char *v = malloc(n);

			if (!v) {
				p->oom = true;
				return;
			}
			snprintf(v, n, "%s:%s", old, cfg->preload);
			snprintf(path, sizeof(path), "/spec/containers/%d/env/%d/value", ci, idx);
			pw_patch_op(p, "replace", path, cJSON_CreateString(v));
			free(v);
		}
	}
	if (!pw_env_find(env, "PODWIRE_SOCKET", &idx)) {
		snprintf(path, sizeof(path), "/spec/containers/%d/env", ci);
		pw_patch_append(p, env != NULL || env_made, path,
				pw_env_var("PODWIRE_SOCKET", cfg->socket));
	}
}

/* Is @v absent, or an array whose members are all objects? */
static bool pw_objects_or_absent(const cJSON *v)
{
	const cJSON *e;

	if (!v)
		return true;
	if (!cJSON_IsArray(v))
		return false;
	cJSON_ArrayForEach(e, v)
	{
		if (!cJSON_IsObject(e))
			return false;
	}
	return true;
}

/*
 * Does @pod have a pod's shape where the patch goes? The API server only
 * sends decoded pods, but anyone may post to the webhook: nothing is patched
 * into a shape that would make the patch fail or mean something else.
 */
static bool pw_pod_shape_ok(const cJSON *pod)
{
	const cJSON *meta = pw_json_get(pod, "metadata"), *spec = pw_json_get(pod, "spec"),
		    *ann = pw_json_get(meta, "annotations"), *cs = pw_json_get(spec, "containers"),
		    *c;

	if (!cJSON_IsObject(meta) || !cJSON_IsObject(spec) || !cJSON_IsArray(cs) ||
	    (ann && !cJSON_IsObject(ann)) || !pw_objects_or_absent(pw_json_get(spec, "volumes")) ||
	    !pw_objects_or_absent(cs))
		return false;
	cJSON_ArrayForEach(c, cs)
	{
		if (!pw_objects_or_absent(pw_json_get(c, "env")) ||
		    !pw_objects_or_absent(pw_json_get(c, "volumeMounts")))
			return false;
	}
	return true;
}

/* The patch for @pod; ops stay empty for a pod already injected. */
static void pw_patch_pod(const struct pw_webhook_cfg *cfg, struct pw_patch *p, const cJSON *pod)
{
	const cJSON *meta = pw_json_get(pod, "metadata"), *spec = pw_json_get(pod, "spec"),
		    *ann = pw_json_get(meta, "annotations"), *vols = pw_json_get(spec, "volumes"),
		    *v, *c;
	bool have_vol = false;
	int ci = 0;

	if (!pw_pod_shape_ok(pod) || pw_json_get(ann, PW_WEBHOOK_ANNOTATION))
		return;
	if (!ann) {
		cJSON *a = cJSON_CreateObject();

		if (a && !cJSON_AddStringToObject(a, PW_WEBHOOK_ANNOTATION, "true")) {
			cJSON_Delete(a);
			a = NULL;
		}
		pw_patch_op(p, "add", "/metadata/annotations", a);
	} else {
		pw_patch_op(p, "add", "/metadata/annotations/podwire.io~1injected",
			    cJSON_CreateString("true"));
	}
	cJSON_ArrayForEach(v, vols)
	{
		const char *n = pw_json_get_str(v, "name");

		if (n && !strcmp(n, PW_WEBHOOK_VOLUME))
			have_vol = true;
	}
	if (!have_vol) {
		cJSON *vol = cJSON_CreateObject(), *hp = NULL;

		if (!vol || !cJSON_AddStringToObject(vol, "name", PW_WEBHOOK_VOLUME) ||
		    !(hp = cJSON_AddObjectToObject(vol, "hostPath")) ||
		    !cJSON_AddStringToObject(hp, "path", cfg->host_dir) ||
		    !cJSON_AddStringToObject(hp, "type", "Directory")) {
			cJSON_Delete(vol);
			vol = NULL;
		}
		pw_patch_append(p, vols != NULL, "/spec/volumes", vol);
	}
	cJSON_ArrayForEach(c, pw_json_get(spec, "containers"))
	{
		pw_patch_container(cfg, p, c, ci++);
	}
}

/* Standard base64 of @s (malloc'ed), or NULL. */
static char *pw_base64(const char *s)
{
	size_t n = strlen(s);
	char *out = malloc(4 * ((n + 2) / 3) + 1);

	if (out)
		EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s, (int)n);
	return out;
}

cJSON *pw_webhook_review(const struct pw_webhook_cfg *cfg, const cJSON *review, const char **err)
{
	const cJSON *req = pw_json_get(review, "request"), *kind = pw_json_get(req, "kind");
	const char *uid = pw_json_get_str(req, "uid"), *api = pw_json_get_str(review, "apiVersion");
	const char *op = pw_json_get_str(req, "operation"), *k = pw_json_get_str(kind, "kind");
	struct pw_patch p = { .ops = cJSON_CreateArray(), .warn = cJSON_CreateArray() };
	cJSON *out = NULL, *resp;
	char *text = NULL, *b64 = NULL;

	*err = NULL;
	if (!cJSON_IsObject(req) || !uid || !api ||
	    (strcmp(api, "admission.k8s.io/v1") != 0 &&
	     strcmp(api, "admission.k8s.io/v1beta1") != 0)) {
		*err = "want an admission.k8s.io/v1 or v1beta1 AdmissionReview with request.uid";
		goto done;
	}
	if (!p.ops || !p.warn)
		goto nomem;
	if (op && !strcmp(op, "CREATE") && k && !strcmp(k, "Pod") &&
	    cJSON_IsObject(pw_json_get(req, "object")))
		pw_patch_pod(cfg, &p, pw_json_get(req, "object"));
	if (p.oom)
		goto nomem;
	out = cJSON_CreateObject();
	resp = out ? cJSON_AddObjectToObject(out, "response") : NULL;
	if (!resp || !cJSON_AddStringToObject(out, "apiVersion", api) ||
	    !cJSON_AddStringToObject(out, "kind", "AdmissionReview") ||
	    !cJSON_AddStringToObject(resp, "uid", uid) || !cJSON_AddTrueToObject(resp, "allowed"))
		goto nomem;
	if (cJSON_GetArraySize(p.ops)) {
		if (!(text = cJSON_PrintUnformatted(p.ops)) || !(b64 = pw_base64(text)) ||
		    !cJSON_AddStringToObject(resp, "patchType", "JSONPatch") ||
		    !cJSON_AddStringToObject(resp, "patch", b64))
			goto nomem;
	}
	if (cJSON_GetArraySize(p.warn)) {
		cJSON_AddItemToObject(resp, "warnings", p.warn);
		p.warn = NULL;
	}
	goto done;
nomem:
	*err = "out of memory";
	cJSON_Delete(out);
	out = NULL;
done:
	free(text);
	free(b64);
	cJSON_Delete(p.ops);
	cJSON_Delete(p.warn);
	return out;
}
