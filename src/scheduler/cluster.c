// SPDX-License-Identifier: MIT
/* Cluster files for simulate and the stand-alone extender. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "json.h"

void pw_cluster_free(struct pw_cluster *c)
{
	if (!c)
		return;
	free(c->order);
	memset(c, 0, sizeof(*c));
}

static const char *pw_item_kind(const cJSON *it, const char *list_kind)
{
	const char *k = pw_json_get_str(it, "kind");

	if (k)
		return k;
	/* The API server leaves kind out of the items of a typed list. */
	if (list_kind && !strcmp(list_kind, "NodeList"))
		return "Node";
	if (list_kind && !strcmp(list_kind, "PodList"))
		return "Pod";
	return NULL;
}

static int pw_cluster_item_add(struct pw_model *m, struct pw_cluster *c, const cJSON *it, bool node,
			       const char *where, char *err, size_t errlen)
{
	const cJSON *meta = pw_json_get(it, "metadata");
	const char *name = pw_json_get_str(meta, "name"), *ns = pw_json_get_str(meta, "namespace");
	char e[PW_SCHED_ERRLEN] = "";
	int r;

	if (!cJSON_IsObject(it)) {
		snprintf(err, errlen, "%s: want an object", where);
		return -EINVAL;
	}
	if (name && (node ? pw_model_find_node(m, name)
			  : pw_model_find_pod(m, ns && *ns ? ns : "default", name)) >= 0) {
		snprintf(err, errlen, "%s: duplicate %s %s", where, node ? "node" : "pod", name);
		return -EINVAL;
	}
	r = node ? pw_model_put_node(m, it, e, sizeof(e)) : pw_model_put_pod(m, it, e, sizeof(e));
	if (r < 0) {
		snprintf(err, errlen, "%s: %s", where, r == -ENOMEM ? "out of memory" : e);
		return r;
	}
	if (node) {
		c->nodes++;
	} else {
		c->order[c->norder++] = r;
		c->pods++;
	}
	return 0;
}

int pw_cluster_load(struct pw_model *m, const char *path, struct pw_cluster *c, char *err,
		    size_t errlen)
{
	const cJSON *items, *nodes, *pods, *it;
	const char *kind;
	char *buf = NULL, where[64];
	cJSON *doc = NULL;
	size_t len;
	int r, i;

	memset(c, 0, sizeof(*c));
	r = pw_sched_read_file(path, &buf, &len, err, errlen);
	if (r)
		return r;
	doc = pw_json_parse(buf, len, path, err, errlen);
	free(buf);
	if (!doc)
		return -EINVAL;
	items = pw_json_get(doc, "items");
	nodes = pw_json_get(doc, "nodes");
	pods = pw_json_get(doc, "pods");
	kind = pw_json_get_str(doc, "kind");
	if (!cJSON_IsObject(doc) ||
	    !(cJSON_IsArray(items) || cJSON_IsArray(nodes) || cJSON_IsArray(pods)) ||
	    (nodes && !cJSON_IsArray(nodes)) || (pods && !cJSON_IsArray(pods))) {
		snprintf(err, errlen,
			 "%s: want a v1 List ({\"items\":[...]}) or "
			 "{\"nodes\":[...],\"pods\":[...]}",
			 path);
		r = -EINVAL;
		goto out;
	}
	c->order = calloc((size_t)cJSON_GetArraySize(items) + (size_t)cJSON_GetArraySize(pods) + 1,
			  sizeof(*c->order));
	if (!c->order) {
		r = -ENOMEM;
		goto out;
	}
	/* Nodes first, then pods, each in file order. */
	for (int pass = 0; pass < 2; pass++) {
		i = 0;
		cJSON_ArrayForEach(it, items)
		{
			const char *k = pw_item_kind(it, kind);

			snprintf(where, sizeof(where), "%s: items[%d]", path, i++);
			if (!k) {
				if (!pass) {
					snprintf(err, errlen, "%s: no kind", where);
					r = -EINVAL;
					goto out;
				}
				continue;
			}
			if (strcmp(k, pass ? "Pod" : "Node") != 0) {
				if (pass && strcmp(k, "Node") != 0 && strcmp(k, "Pod") != 0)
					c->ignored++;
				continue;
			}
			if ((r = pw_cluster_item_add(m, c, it, !pass, where, err, errlen)))
				goto out;
		}
		i = 0;
		cJSON_ArrayForEach(it, (pass ? pods : nodes))
		{
			snprintf(where, sizeof(where), "%s: %s[%d]", path, pass ? "pods" : "nodes",
				 i++);
			if ((r = pw_cluster_item_add(m, c, it, !pass, where, err, errlen)))
				goto out;
		}
	}
	r = 0;
out:
	if (r)
		pw_cluster_free(c);
	cJSON_Delete(doc);
	return r;
}
