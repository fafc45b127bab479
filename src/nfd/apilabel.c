// SPDX-License-Identifier: MIT
/*
 * Node labelling through the API server: one RFC 6902 JSON patch that sets
 * the labels we produce and removes the owned ones we no longer produce,
 * guarded by `test` ops on every old value it relies on; the same patch
 * keeps the annotation naming podwired's socket (a path: not a label value).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "kube.h"
#include "log.h"
#include "nfd.h"

/* An op on member @key of metadata.@map ("labels" or "annotations"). */
static cJSON *pw_nfd_meta_op_add(cJSON *ops, const char *map, const char *op, const char *key,
				 const cJSON *value)
{
	char *esc = pw_kube_json_pointer_escape(key);
	char *path = NULL;
	cJSON *o = NULL;

	if (!esc || asprintf(&path, "/metadata/%s/%s", map, esc) < 0) {
		path = NULL;
		goto out;
	}
	o = cJSON_CreateObject();
	if (!o || !cJSON_AddStringToObject(o, "op", op) ||
	    !cJSON_AddStringToObject(o, "path", path) ||
	    (value && !cJSON_AddItemToObject(o, "value", cJSON_Duplicate(value, true)))) {
		cJSON_Delete(o);
		o = NULL;
		goto out;
	}
	cJSON_AddItemToArray(ops, o);
out:
	free(esc);
	free(path);
	return o;
}

static cJSON *pw_nfd_patch_op_add(cJSON *ops, const char *op, const char *key, const cJSON *value)
{
	return pw_nfd_meta_op_add(ops, "labels", op, key, value);
}

/*
 * Append to @ops what makes annotation @key of the annotations @cur (NULL
 * or not an object: none) @value, or absent (@value NULL); *@n counts it.
 * False when out of memory.
 */
static bool pw_nfd_annotation_ops(cJSON *ops, const cJSON *cur, const char *key, const char *value,
				  unsigned *n)
{
	const cJSON *old = cJSON_IsObject(cur) ? pw_json_get(cur, key) : NULL;
	cJSON *v;
	bool ok;

	if (!value) {
		if (!old)
			return true;
		(*n)++;
		return pw_nfd_meta_op_add(ops, "annotations", "test", key, old) &&
		       pw_nfd_meta_op_add(ops, "annotations", "remove", key, NULL);
	}
	const char *ov = old ? cJSON_GetStringValue(old) : NULL;
	if (ov && !strcmp(ov, value))
		return true;
	v = cJSON_CreateString(value);
	if (!v)
		return false;
	(*n)++;
	if (!cJSON_IsObject(cur)) {
		cJSON *o = cJSON_CreateObject(), *map = cJSON_CreateObject();

		ok = o && map && cJSON_AddStringToObject(o, "op", "add") &&
		     cJSON_AddStringToObject(o, "path", "/metadata/annotations") &&
		     cJSON_AddItemToObject(o, "value", map);
		if (!ok) {
			cJSON_Delete(map);
			cJSON_Delete(o);
		} else {
			ok = cJSON_AddItemToArray(ops, o) &&
			     pw_nfd_meta_op_add(ops, "annotations", "add", key, v);
		}
	} else if (!old) {
		ok = pw_nfd_meta_op_add(ops, "annotations", "add", key, v);
	} else {
		ok = pw_nfd_meta_op_add(ops, "annotations", "test", key, old) &&
		     pw_nfd_meta_op_add(ops, "annotations", "replace", key, v);
	}
	cJSON_Delete(v);
	return ok;
}

cJSON *pw_nfd_label_patch(const cJSON *cur, const struct pw_nfd_labels *ls, bool compat,
			  unsigned *nchanges)
{
	cJSON *ops = cJSON_CreateArray();
	unsigned n = 0;
	const cJSON *e;

	if (!ops)
		return NULL;
	if (!cJSON_IsObject(cur)) {
		/* No labels map yet: create it, then every label is an add. */
		cJSON *empty = cJSON_CreateObject();
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "op", "add");
		cJSON_AddStringToObject(o, "path", "/metadata/labels");
		cJSON_AddItemToObject(o, "value", empty);
		cJSON_AddItemToArray(ops, o);
		cur = NULL;
	}
	for (size_t i = 0; i < ls->n; i++) {
		const cJSON *old = pw_json_get(cur, ls->l[i].key);
		cJSON *v = cJSON_CreateString(ls->l[i].value);
		bool ok = true;

		if (!old) {
			ok = pw_nfd_patch_op_add(ops, "add", ls->l[i].key, v);
			n++;
		} else if (!cJSON_IsString(old) || strcmp(old->valuestring, ls->l[i].value) != 0) {
			ok = pw_nfd_patch_op_add(ops, "test", ls->l[i].key, old) &&
			     pw_nfd_patch_op_add(ops, "replace", ls->l[i].key, v);
			n++;
		}
		cJSON_Delete(v);
		if (!ok)
			goto fail;
	}
	cJSON_ArrayForEach(e, cur)
	{
		if (!e->string || !pw_nfd_label_owned(e->string, compat) ||
		    pw_nfd_labels_get(ls, e->string))
			continue;
		if (!pw_nfd_patch_op_add(ops, "test", e->string, e) ||
		    !pw_nfd_patch_op_add(ops, "remove", e->string, NULL))
			goto fail;
		n++;
	}
	*nchanges = n;
	return ops;
fail:
	cJSON_Delete(ops);
	return NULL;
}

int pw_nfd_label_node(struct pw_kube *k, const char *node, const struct pw_nfd_labels *ls,
		      bool compat, const char *socket, unsigned *nchanges)
{
	char *esc = pw_kube_escape(node);
	char *path = NULL;
	cJSON *obj = NULL, *ops = NULL;
	long status = 0;
	int r = -ENOMEM;

	*nchanges = 0;
	if (!esc || asprintf(&path, "/api/v1/nodes/%s", esc) < 0) {
		path = NULL;
		goto out;
	}
	/* A `test` fails (422) or the server reports a conflict (409) when
	 * another writer changed a label between our read and our patch: read
	 * again and recompute. */
	for (int attempt = 0; attempt < 4; attempt++) {
		cJSON_Delete(obj);
		cJSON_Delete(ops);
		obj = ops = NULL;
		r = pw_kube_get(k, path, &status, &obj);
		if (r < 0)
			goto out;
		const cJSON *md = pw_json_get(obj, "metadata");
		const cJSON *cur = pw_json_get(md, "labels");
		if (!cJSON_IsObject(md)) {
			r = PW_KUBE_E_PROTO;
			goto out;
		}
		ops = pw_nfd_label_patch(cur, ls, compat, nchanges);
		if (!ops || !pw_nfd_annotation_ops(ops, pw_json_get(md, "annotations"),
						   PW_NFD_SOCKET_ANNOTATION, socket, nchanges)) {
			r = -ENOMEM;
			goto out;
		}
		if (!*nchanges) {
			r = 0;
			goto out;
		}
		r = pw_kube_patch_json(k, path, PW_KUBE_PATCH_JSON, ops, &status, NULL);
		if (r == 0)
			goto out;
		if (r != PW_KUBE_E_HTTP || (status != 409 && status != 422))
			goto out;
		pw_info("node %s changed while we labelled it (HTTP %ld); retrying", node, status);
		*nchanges = 0;
	}
out:
	cJSON_Delete(obj);
	cJSON_Delete(ops);
	free(path);
	free(esc);
	return r;
}
