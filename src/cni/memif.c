// SPDX-License-Identifier: MIT
/*
 * podwire-cni's memif mode: a packet interface for a DPDK pod, the role
 * SR-IOV CNI plays with a VF. ADD asks the node's podwire-switch for a port
 * whose memif socket is an abstract name bound inside the pod's network
 * namespace (so only that pod can reach it), pinned to a MAC address; it
 * writes the DPDK arguments for it to a file the pod can mount. DEL removes
 * both. The port's name and MAC derive from (network, container,
 * interface), so DEL and CHECK need no state.
 *
 *   "memif": {
 *     "switchDir": "/run/podwire/switch",   the switch's run directory
 *     "socket": "/run/podwire/memif/IFNAME.sock",  the abstract name
 *     "id": 0,                               the memif interface id
 *     "infoDir": "/run/podwire/memif"        where the pod's files go
 *   }
 *
 * The files: INFODIR/NAMESPACE/POD/IFNAME.json and IFNAME.args when the
 * runtime passes K8S_POD_NAMESPACE and K8S_POD_NAME in CNI_ARGS (Kubernetes;
 * podman passes K8S_POD_NAME, the container's name), else
 * INFODIR/CONTAINERID/. IFNAME.args is a ready --vdev for DPDK.
 */
#include <sys/stat.h>

#include "cni.h"
#include "swctl.h"

#define PW_CNI_MEMIF_DIR "/run/podwire/memif"

/* CNI_ARGS "K=V;K=V": the pod's namespace and name, if the runtime gave
 * them and they are safe as path components. */
static void pw_cni_memif_args(struct pw_cni *c)
{
	const char *a = getenv("CNI_ARGS");
	char buf[1024];

	if (!a || strlen(a) >= sizeof(buf))
		return;
	snprintf(buf, sizeof(buf), "%s", a);
	for (char *save = NULL, *kv = strtok_r(buf, ";", &save); kv;
	     kv = strtok_r(NULL, ";", &save)) {
		char *v = strchr(kv, '=');
		if (!v)
			continue;
		*v++ = '\0';
		if (!pw_cni_id_ok(v))
			continue;
		if (!strcmp(kv, "K8S_POD_NAMESPACE"))
			snprintf(c->pod_ns, sizeof(c->pod_ns), "%s", v);
		else if (!strcmp(kv, "K8S_POD_NAME"))
			snprintf(c->pod_name, sizeof(c->pod_name), "%s", v);
	}
}

int pw_cni_conf_memif(struct pw_cni *c, const cJSON *m)
{
	static char sock[108];
	long long id = 0;
	int r;

	c->memif = true;
	if (!cJSON_IsObject(m))
		return pw_cni_fail(c, PW_CNI_E_CONFIG, "invalid network configuration",
				   "memif must be an object");
	c->sw_dir = pw_json_get_str(m, "switchDir");
	c->memif_socket = pw_json_get_str(m, "socket");
	c->memif_dir = pw_json_get_str(m, "infoDir");
	if ((pw_json_get(m, "switchDir") && (!c->sw_dir || c->sw_dir[0] != '/')) ||
	    (pw_json_get(m, "infoDir") && (!c->memif_dir || c->memif_dir[0] != '/')) ||
	    (pw_json_get(m, "socket") &&
	     (!c->memif_socket || c->memif_socket[0] != '/' || strlen(c->memif_socket) > 100)))
		return pw_cni_fail(c, PW_CNI_E_CONFIG, "invalid network configuration",
				   "memif.switchDir, memif.infoDir and memif.socket must be "
				   "absolute paths (socket: at most 100 bytes)");
	r = pw_json_want_int(pw_json_get(m, "id"), 0, UINT32_MAX, &id, NULL, NULL, 0);
	if (r < 0 && r != -ENOENT)
		return pw_cni_fail(c, PW_CNI_E_CONFIG, "invalid network configuration",
				   "memif.id must be an integer from 0 to %u", UINT32_MAX);
	c->memif_id = (uint32_t)id;
	if (!c->sw_dir)
		c->sw_dir = PW_SW_DEFAULT_DIR;
	if (!c->memif_dir)
		c->memif_dir = PW_CNI_MEMIF_DIR;
	if (!c->memif_socket) {
		snprintf(sock, sizeof(sock), "/run/podwire/memif/%s.sock", c->ifname);
		c->memif_socket = sock;
	}
	pw_cni_memif_args(c);
	return 0;
}

/* The switch port's name and the pod's MAC (locally administered). */
static void pw_cni_memif_names(const struct pw_cni *c, char port[16], uint8_t mac[6], char smac[18])
{
	uint64_t h = pw_cni_hash(c);

	snprintf(port, 16, "m%012llx", (unsigned long long)(h & 0xffffffffffffull));
	h = h * 0x9E3779B97F4A7C15ull;
	mac[0] = 0x02;
	for (int i = 1; i < 6; i++)
		mac[i] = (uint8_t)(h >> (8 * i));
	snprintf(smac, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4],
		 mac[5]);
}

/* The directory of the pod's files; -1 if too long. */
static int pw_cni_memif_infodir(const struct pw_cni *c, char *out, size_t n)
{
	int k = c->pod_name[0] ? snprintf(out, n, "%s/%s/%s", c->memif_dir,
					  c->pod_ns[0] ? c->pod_ns : "_", c->pod_name)
			       : snprintf(out, n, "%s/%s", c->memif_dir, c->id);
	return k < 0 || (size_t)k >= n ? -1 : 0;
}

/* One request to the switch: 0, or -1 with the error recorded (@what
 * says which). -ENOENT (without an error recorded) when the reply says
 * there is no such port, and @absent_ok. */
static int pw_cni_memif_call(struct pw_cni *c, cJSON *req, const char *what, bool absent_ok,
			     cJSON **ret_reply)
{
	char err[512];
	int e = 0;
	cJSON *reply = pw_swctl_call(c->sw_dir, req, 5000, err, sizeof(err), &e);

	cJSON_Delete(req);
	if (!reply) {
		if (absent_ok && (e == ENOENT || e == ECONNREFUSED))
			return -ENOENT; /* no switch: its ports are gone with it */
		return pw_cni_fail(c, PW_CNI_E_LINK, "podwire-switch is not answering", "%s: %s",
				   what, err);
	}
	if (!pw_json_get_bool(reply, "ok", false)) {
		const char *msg = pw_json_get_str(reply, "error");
		int r = absent_ok && pw_json_get_int(reply, "errno", 0) == ENOENT ? -ENOENT : -1;
		if (r == -1)
			pw_cni_fail(c, PW_CNI_E_LINK, "podwire-switch refused", "%s: %s", what,
				    msg ? msg : "?");
		cJSON_Delete(reply);
		return r;
	}
	if (ret_reply)
		*ret_reply = reply;
	else
		cJSON_Delete(reply);
	return 0;
}

static int pw_cni_memif_port_del(struct pw_cni *c, const char *port)
{
	cJSON *req = cJSON_CreateObject();

	cJSON_AddStringToObject(req, "cmd", "port-del");
	cJSON_AddStringToObject(req, "name", port);
	int r = pw_cni_memif_call(c, req, "removing the port", true, NULL);
	return r == -ENOENT ? 0 : r;
}

/* Write @text to @dir/@ifname@ext, atomically (a file the pod may read at
 * any time). */
static int pw_cni_memif_file(struct pw_cni *c, const char *dir, const char *ext, const char *text)
{
	char path[4096], tmp[4096];

	if ((size_t)snprintf(path, sizeof(path), "%s/%s%s", dir, c->ifname, ext) >= sizeof(path) ||
	    (size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return pw_cni_fail(c, PW_CNI_E_IO, "path too long", "%s", dir);
	FILE *f = fopen(tmp, "we");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0 || rename(tmp, path) < 0) {
		int err = errno;
		unlink(tmp);
		return pw_cni_fail(c, PW_CNI_E_IO, "cannot write the pod's interface file",
				   "%s: %s", path, strerror(err));
	}
	return 0;
}

/* mkdir -p @path, mode 0755 (the pod reads what is in it). */
static int pw_cni_mkdirs(char *path)
{
	for (char *p = path + 1;; p++) {
		if (*p != '/' && *p)
			continue;
		char saved = *p;
		*p = '\0';
		int r = mkdir(path, 0755);
		*p = saved;
		if (r < 0 && errno != EEXIST)
			return -errno;
		if (!saved)
			return 0;
	}
}

int pw_cni_add_memif(struct pw_cni *c, cJSON **ret)
{
	char port[16], smac[18], dir[4096], args[512];
	uint8_t mac[6];

	if (pw_cni_open_netns(c) < 0)
		return -1;
	if (pw_cni_memif_infodir(c, dir, sizeof(dir)) < 0)
		return pw_cni_fail(c, PW_CNI_E_CONFIG, "invalid network configuration",
				   "memif.infoDir is too long");
	pw_cni_memif_names(c, port, mac, smac);
	cJSON *req = cJSON_CreateObject();
	cJSON_AddStringToObject(req, "cmd", "port-add");
	cJSON_AddStringToObject(req, "name", port);
	cJSON_AddStringToObject(req, "socket", c->memif_socket);
	cJSON_AddBoolToObject(req, "abstract", true);
	cJSON_AddStringToObject(req, "netns", c->netns_path);
	cJSON_AddNumberToObject(req, "id", c->memif_id);
	cJSON_AddStringToObject(req, "mac", smac);
	if (pw_cni_memif_call(c, req, "adding a port", false, NULL) < 0)
		return -1;

	/* What DPDK in the pod needs: the socket is abstract (DPDK's default). */
	snprintf(args, sizeof(args), "net_memif0,role=client,id=%u,socket=%s,mac=%s", c->memif_id,
		 c->memif_socket, smac);
	cJSON *info = cJSON_CreateObject();
	cJSON_AddStringToObject(info, "interface", c->ifname);
	cJSON_AddStringToObject(info, "type", "memif");
	cJSON_AddStringToObject(info, "socket", c->memif_socket);
	cJSON_AddBoolToObject(info, "abstract", true);
	cJSON_AddNumberToObject(info, "id", c->memif_id);
	cJSON_AddStringToObject(info, "mac", smac);
	cJSON_AddStringToObject(info, "vdev", args);
	char *text = cJSON_Print(info);
	cJSON_Delete(info);
	/* (Each failure below is recorded in c->code.) */
	int r = pw_cni_mkdirs(dir);
	if (r < 0) {
		pw_cni_fail(c, PW_CNI_E_IO, "cannot make the pod's interface directory", "%s: %s",
			    dir, strerror(-r));
	} else if (pw_cni_memif_file(c, dir, ".json", text) == 0) {
		size_t n = strlen(args);
		args[n] = '\n';
		args[n + 1] = '\0';
		pw_cni_memif_file(c, dir, ".args", args);
	}
	cJSON_free(text);
	if (c->code) {
		pw_cni_memif_port_del(c, port);
		return -1;
	}

	/* The result: our interface after prevResult's, if chained. */
	cJSON *res = c->prev ? cJSON_Duplicate(c->prev, true) : cJSON_CreateObject();
	cJSON *ifs = cJSON_GetObjectItemCaseSensitive(res, "interfaces");
	if (!ifs)
		ifs = cJSON_AddArrayToObject(res, "interfaces");
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "name", c->ifname);
	cJSON_AddStringToObject(o, "mac", smac);
	cJSON_AddStringToObject(o, "sandbox", c->netns_path);
	cJSON_AddStringToObject(o, "socketPath", c->memif_socket);
	cJSON_AddItemToArray(ifs, o);
	pw_cni_result_format(c, res);
	*ret = res;
	pw_info("%s: port %s, @%s in %s, %s", c->ifname, port, c->memif_socket, c->netns_path,
		smac);
	return 0;
}

int pw_cni_del_memif(struct pw_cni *c)
{
	char port[16], smac[18], dir[4096], path[4200];
	uint8_t mac[6];

	pw_cni_memif_names(c, port, mac, smac);
	if (pw_cni_memif_port_del(c, port) < 0)
		return -1;
	if (pw_cni_memif_infodir(c, dir, sizeof(dir)) == 0) {
		snprintf(path, sizeof(path), "%s/%s.json", dir, c->ifname);
		unlink(path);
		snprintf(path, sizeof(path), "%s/%s.args", dir, c->ifname);
		unlink(path);
		/* The pod's directories, if this was its last interface. */
		if (rmdir(dir) == 0 && c->pod_name[0]) {
			char *slash = strrchr(dir, '/');
			*slash = '\0';
			rmdir(dir);
		}
	}
	return 0;
}

int pw_cni_check_memif(struct pw_cni *c)
{
	char port[16], smac[18];
	uint8_t mac[6];
	cJSON *reply = NULL;
	const cJSON *p;
	bool found = false;

	pw_cni_memif_names(c, port, mac, smac);
	cJSON *req = cJSON_CreateObject();
	cJSON_AddStringToObject(req, "cmd", "status");
	if (pw_cni_memif_call(c, req, "status", false, &reply) < 0)
		return -1;
	cJSON_ArrayForEach(p, pw_json_get(reply, "ports"))
	{
		const char *name = pw_json_get_str(p, "name"), *m = pw_json_get_str(p, "mac");
		if (name && !strcmp(name, port))
			found = m && !strcmp(m, smac);
	}
	cJSON_Delete(reply);
	if (!found)
		return pw_cni_fail(c, PW_CNI_E_CHECK, "the packet interface is gone",
				   "podwire-switch has no port %s with MAC %s for %s", port, smac,
				   c->ifname);
	return 0;
}
