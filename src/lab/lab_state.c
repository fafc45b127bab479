// SPDX-License-Identifier: MIT
/*
 * A lab's state: /run/podwire/lab/NAME/state.json, what 'up' made (sizes,
 * overlay, the routers' pids and start times, the paths it used). 'status
 * --json' prints the same object with live fields added.
 */
#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "../common/json.h"
#include "lab.h"

#define PW_LAB_STATE_FILE "state.json"
#define PW_LAB_STATE_MAX  (1 << 24) /* bytes: anything larger is not ours */

static const char *const pw_lab_overlays[] = {
	[PW_LAB_OVERLAY_VXLAN] = "vxlan",
	[PW_LAB_OVERLAY_HOSTGW] = "host-gw",
};

const char *pw_lab_overlay_name(enum pw_lab_overlay overlay)
{
	return pw_lab_overlays[overlay];
}

int pw_lab_overlay_parse(const char *s, enum pw_lab_overlay *ret_overlay)
{
	for (size_t i = 0; i < sizeof(pw_lab_overlays) / sizeof(pw_lab_overlays[0]); i++) {
		if (!strcmp(s, pw_lab_overlays[i])) {
			*ret_overlay = (enum pw_lab_overlay)i;
			return 0;
		}
	}
	return -EINVAL;
}

void pw_lab_free(struct pw_lab *lab)
{
	if (!lab)
		return;
	for (size_t i = 0; i < lab->nmade; i++)
		free(lab->made[i]);
	free(lab->made);
	free(lab->router);
	lab->made = NULL;
	lab->router = NULL;
	lab->nmade = 0;
}

void pw_lab_path_format(const struct pw_lab *lab, const char *file, char *ret_path, size_t len)
{
	snprintf(ret_path, len, "%s/%s", lab->dir, file);
}

void pw_lab_node_path_format(const struct pw_lab *lab, unsigned n, const char *file, char *ret_path,
			     size_t len)
{
	if (file)
		snprintf(ret_path, len, "%s/" PW_LAB_NODE_FMT "/%s", lab->dir, n, file);
	else
		snprintf(ret_path, len, "%s/" PW_LAB_NODE_FMT, lab->dir, n);
}

bool pw_lab_router_is_alive(const struct pw_lab_router *rt)
{
	return rt->start && pw_lab_proc_start_time(rt->pid) == rt->start;
}

/* Node n's router: pid, start time, files, metrics; alive if live. */
static void pw_lab_router_to_json(const struct pw_lab *lab, unsigned n, bool live, cJSON *node)
{
	const struct pw_lab_router *rt = &lab->router[n - 1];
	cJSON *r = cJSON_AddObjectToObject(node, "router");
	char buf[PATH_MAX];

	cJSON_AddNumberToObject(r, "pid", rt->pid);
	cJSON_AddNumberToObject(r, "start_time", (double)rt->start);
	if (live)
		cJSON_AddBoolToObject(r, "alive", pw_lab_router_is_alive(rt));
	pw_lab_node_path_format(lab, n, "podwired.sock", buf, sizeof(buf));
	cJSON_AddStringToObject(r, "socket", buf);
	pw_lab_node_path_format(lab, n, "podwired.log", buf, sizeof(buf));
	cJSON_AddStringToObject(r, "log", buf);
	cJSON_AddStringToObject(r, "metrics", PW_LAB_METRICS);
}

/* Node n with its pods, appended to the array nodes. */
static void pw_lab_node_to_json(const struct pw_lab *lab, unsigned n, bool live, cJSON *nodes)
{
	cJSON *no = cJSON_CreateObject(), *pods;
	struct pw_lab_node_addr addr;
	char ns[PW_LAB_NS_LEN];

	pw_lab_node_addr_format(n, &addr);
	cJSON_AddItemToArray(nodes, no);
	cJSON_AddStringToObject(no, "name", addr.name);
	pw_lab_ns_format(lab->name, n, 0, ns);
	cJSON_AddStringToObject(no, "netns", ns);
	if (live)
		cJSON_AddBoolToObject(no, "netns_present", pw_lab_ns_exists(ns));
	cJSON_AddStringToObject(no, "underlay_ip", addr.underlay);
	cJSON_AddStringToObject(no, "pod_subnet", addr.subnet);
	cJSON_AddStringToObject(no, "gateway", addr.gateway);
	if (lab->podwire)
		pw_lab_router_to_json(lab, n, live, no);
	else
		cJSON_AddNullToObject(no, "router");
	pods = cJSON_AddArrayToObject(no, "pods");
	for (unsigned k = 1; k <= lab->pods; k++) {
		cJSON *po = cJSON_CreateObject();
		struct pw_lab_pod_addr pod;

		pw_lab_pod_addr_format(n, k, &pod);
		cJSON_AddItemToArray(pods, po);
		cJSON_AddStringToObject(po, "name", pod.name);
		pw_lab_ns_format(lab->name, n, k, ns);
		cJSON_AddStringToObject(po, "netns", ns);
		if (live)
			cJSON_AddBoolToObject(po, "netns_present", pw_lab_ns_exists(ns));
		cJSON_AddStringToObject(po, "ip", pod.ip);
	}
}

cJSON *pw_lab_state_to_json(const struct pw_lab *lab, bool live)
{
	char ns[PW_LAB_NS_LEN], buf[PATH_MAX];
	cJSON *o = cJSON_CreateObject(), *nodes, *u;

	if (!o)
		return NULL;
	cJSON_AddStringToObject(o, "name", lab->name);
	cJSON_AddStringToObject(o, "state_dir", lab->dir);
	cJSON_AddStringToObject(o, "overlay", pw_lab_overlay_name(lab->overlay));
	cJSON_AddBoolToObject(o, "podwire", lab->podwire);
	cJSON_AddBoolToObject(o, "federation", lab->federation);
	cJSON_AddNumberToObject(o, "node_count", lab->nodes);
	cJSON_AddNumberToObject(o, "pods_per_node", lab->pods);
	cJSON_AddStringToObject(o, "pod_prefix", PW_LAB_POD_PREFIX);
	if (lab->podwire) {
		cJSON_AddStringToObject(o, "podwired", lab->podwired);
		cJSON_AddStringToObject(o, "lib", lab->lib);
	} else {
		cJSON_AddNullToObject(o, "podwired");
		cJSON_AddNullToObject(o, "lib");
	}
	pw_lab_path_format(lab, "secret", buf, sizeof(buf));
	cJSON_AddStringToObject(o, "secret_file", buf);
	cJSON_AddBoolToObject(o, "kube", lab->kube);
	if (lab->kube) {
		pw_lab_kube_path(lab, PW_LAB_KUBECONFIG, buf, sizeof(buf));
		cJSON_AddStringToObject(o, "kubeconfig", buf);
		snprintf(buf, sizeof(buf), "https://%s:%d", PW_LAB_API_IP, PW_LAB_API_PORT);
		cJSON_AddStringToObject(o, "apiserver", buf);
		cJSON_AddStringToObject(o, "service_cidr", PW_LAB_SERVICE_CIDR);
	} else {
		cJSON_AddNullToObject(o, "kubeconfig");
	}
	u = cJSON_AddObjectToObject(o, "underlay");
	pw_lab_ns_format(lab->name, 0, 0, ns);
	cJSON_AddStringToObject(u, "netns", ns);
	cJSON_AddStringToObject(u, "bridge", PW_LAB_UNDERLAY_BRIDGE);
	cJSON_AddStringToObject(u, "subnet", PW_LAB_UNDERLAY_SUBNET);
	nodes = cJSON_AddArrayToObject(o, "nodes");
	for (unsigned n = 1; n <= lab->nodes; n++)
		pw_lab_node_to_json(lab, n, live, nodes);
	return o;
}

int pw_lab_state_write(const struct pw_lab *lab)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	cJSON *o = pw_lab_state_to_json(lab, false);
	char *s = o ? cJSON_Print(o) : NULL;
	int fd = -1, r = 0;
	size_t len;

	if (!s) {
		r = -ENOMEM;
		goto out;
	}
	pw_lab_path_format(lab, PW_LAB_STATE_FILE, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	len = strlen(s);
	if (write(fd, s, len) != (ssize_t)len || write(fd, "\n", 1) != 1 || fsync(fd) < 0) {
		r = errno ? -errno : -EIO;
		goto out;
	}
	if (rename(tmp, path) < 0)
		r = -errno;
out:
	pw_lab_fd_close(fd);
	cJSON_free(s);
	cJSON_Delete(o);
	return r;
}

/* A string member, "" when absent: the state's names compare as unset. */
static const char *pw_lab_json_str_get(const cJSON *o, const char *key)
{
	const char *s = pw_json_get_str(o, key);

	return s ? s : "";
}

/* The routers' pids and start times from the state's nodes; a bad one stays 0. */
static void pw_lab_routers_from_json(struct pw_lab *lab, const cJSON *nodes)
{
	for (unsigned n = 0; n < lab->nodes; n++) {
		const cJSON *rt = pw_json_get(cJSON_GetArrayItem(nodes, (int)n), "router");
		double pid = pw_json_get_num(rt, "pid", NAN);
		double start = pw_json_get_num(rt, "start_time", NAN);

		if (pid > 0 && pid < INT_MAX && start > 0) {
			lab->router[n].pid = (pid_t)pid;
			lab->router[n].start = (unsigned long long)start;
		}
	}
}

/* Fill lab from the parsed state o. 0, -EINVAL if it is not a state of lab->name, -ENOMEM. */
static int pw_lab_state_from_json(struct pw_lab *lab, const cJSON *o)
{
	const cJSON *nodes = pw_json_get(o, "nodes");
	double nn = pw_json_get_num(o, "node_count", NAN);
	double np = pw_json_get_num(o, "pods_per_node", NAN);
	enum pw_lab_overlay overlay;

	if (!o || strcmp(pw_lab_json_str_get(o, "name"), lab->name) != 0 ||
	    !(nn >= 1 && nn <= PW_LAB_MAX_NODES) || !(np >= 0 && np <= PW_LAB_MAX_PODS) ||
	    cJSON_GetArraySize(nodes) != (int)nn ||
	    pw_lab_overlay_parse(pw_lab_json_str_get(o, "overlay"), &overlay) < 0)
		return -EINVAL;
	lab->nodes = (unsigned)nn;
	lab->pods = (unsigned)np;
	lab->overlay = overlay;
	lab->podwire = pw_json_get_bool(o, "podwire", false);
	lab->federation = pw_json_get_bool(o, "federation", false);
	lab->kube = pw_json_get_bool(o, "kube", false);
	snprintf(lab->podwired, sizeof(lab->podwired), "%s", pw_lab_json_str_get(o, "podwired"));
	snprintf(lab->lib, sizeof(lab->lib), "%s", pw_lab_json_str_get(o, "lib"));
	lab->router = calloc(lab->nodes, sizeof(*lab->router));
	if (!lab->router)
		return -ENOMEM;
	pw_lab_routers_from_json(lab, nodes);
	return 0;
}

int pw_lab_state_read(struct pw_lab *lab)
{
	char path[PATH_MAX], *text = NULL;
	cJSON *o = NULL;
	struct stat st;
	int fd, r = 0;

	pw_lab_path_format(lab, PW_LAB_STATE_FILE, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || st.st_size > PW_LAB_STATE_MAX) {
		r = -EINVAL;
		goto out;
	}
	text = calloc(1, (size_t)st.st_size + 1);
	if (!text || read(fd, text, (size_t)st.st_size) != st.st_size) {
		r = -EIO;
		goto out;
	}
	o = cJSON_Parse(text);
	r = pw_lab_state_from_json(lab, o);
	if (r == -EINVAL)
		pw_lab_err("%s is not a lab state file this podwire understands", path);
out:
	cJSON_Delete(o);
	free(text);
	close(fd);
	return r;
}
