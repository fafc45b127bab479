// SPDX-License-Identifier: MIT
/* podwire-cni: namespaces and interface names, results in each CNI version, and
 * registering the pod with podwired. */
#include "cni.h"

/* ---- namespaces and names ---- */

int pw_cni_open_netns(struct pw_cni *c)
{
	c->netns = open(c->netns_path, O_RDONLY | O_CLOEXEC);
	if (c->netns < 0) {
		int err = errno;
		return pw_cni_fail(c, err == ENOENT ? PW_CNI_E_UNKNOWN : PW_CNI_E_IO,
				   "cannot open the container's network namespace",
				   "CNI_NETNS=%.200s: %s", c->netns_path, strerror(err));
	}
	if (ioctl(c->netns, NS_GET_NSTYPE) != CLONE_NEWNET)
		return pw_cni_fail(c, PW_CNI_E_ENV, "invalid CNI_NETNS",
				   "CNI_NETNS=%.200s is not a network namespace", c->netns_path);
	return 0;
}

/* The host end of the veth. */
/* FNV-1a of (network, container, interface), with their NULs: what an
 * attachment's names derive from, so that a repeated ADD or a DEL finds them
 * without any state. */
uint64_t pw_cni_hash(const struct pw_cni *c)
{
	uint64_t h = 0xcbf29ce484222325ull;
	const char *parts[3] = { c->name, c->id, c->ifname };

	for (int i = 0; i < 3; i++)
		for (const char *p = parts[i];; p++) {
			h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
			if (!*p)
				break;
		}
	return h;
}

void pw_cni_host_ifname(const struct pw_cni *c, char name[IF_NAMESIZE])
{
	snprintf(name, IF_NAMESIZE, "pwv%012llx",
		 (unsigned long long)(pw_cni_hash(c) & 0xffffffffffffull));
}

/* ---- results ---- */

void pw_cni_fmt_mac(const struct pw_nl_link *l, char buf[18])
{
	pw_addr_mac_format(l->mac, buf);
}

static void pw_cni_add_iface(cJSON *arr, const struct pw_nl_link *l, const char *sandbox)
{
	cJSON *o = cJSON_CreateObject();
	char mac[18];

	cJSON_AddStringToObject(o, "name", l->name);
	if (l->has_mac) {
		pw_cni_fmt_mac(l, mac);
		cJSON_AddStringToObject(o, "mac", mac);
	}
	if (sandbox)
		cJSON_AddStringToObject(o, "sandbox", sandbox);
	cJSON_AddItemToArray(arr, o);
}

const char *pw_cni_ntop(uint32_t be, char buf[INET_ADDRSTRLEN])
{
	return inet_ntop(AF_INET, &be, buf, INET_ADDRSTRLEN);
}

/* "a.b.c.d/len" of @be (network order). */
static const char *pw_cni_cidr(uint32_t be, uint8_t len, char buf[static PW_ADDR_CIDR_STRLEN])
{
	struct pw_wire_prefix p = { .family = AF_INET, .len = len };

	memcpy(p.addr, &be, 4);
	return pw_addr_cidr_format(&p, buf);
}

/* Bring a result (ours or a prevResult) to the format of our cniVersion. */
void pw_cni_result_format(const struct pw_cni *c, cJSON *res)
{
	cJSON *ips = cJSON_GetObjectItemCaseSensitive(res, "ips"), *ip; /* changed in place */

	if (pw_json_get(res, "cniVersion"))
		cJSON_ReplaceItemInObjectCaseSensitive(res, "cniVersion",
						       cJSON_CreateString(c->version));
	else
		cJSON_AddStringToObject(res, "cniVersion", c->version);
	cJSON_ArrayForEach(ip, ips)
	{
		const cJSON *addr = pw_json_get(ip, "address");

		cJSON_DeleteItemFromObjectCaseSensitive(ip, "version");
		if (pw_cni_pre_1_0(c->version) && cJSON_IsString(addr))
			cJSON_AddStringToObject(ip, "version",
						strchr(addr->valuestring, ':') ? "6" : "4");
	}
}

cJSON *pw_cni_result(const struct pw_cni *c, const struct pw_nl_link *br,
		     const struct pw_nl_link *host, const struct pw_nl_link *cont, uint32_t ip)
{
	cJSON *res = cJSON_CreateObject();
	cJSON *ifs, *ips, *routes, *o = cJSON_CreateObject();
	char a[INET_ADDRSTRLEN], cidr[PW_ADDR_CIDR_STRLEN];

	cJSON_AddStringToObject(res, "cniVersion", c->version);
	ifs = cJSON_AddArrayToObject(res, "interfaces");
	ips = cJSON_AddArrayToObject(res, "ips");
	routes = cJSON_AddArrayToObject(res, "routes");

	pw_cni_add_iface(ifs, br, NULL);
	pw_cni_add_iface(ifs, host, NULL);
	pw_cni_add_iface(ifs, cont, c->netns_path);
	cJSON_AddStringToObject(o, "address", pw_cni_cidr(htonl(ip), c->ipam.plen, cidr));
	cJSON_AddStringToObject(o, "gateway", pw_cni_ntop(htonl(c->ipam.gw), a));
	cJSON_AddNumberToObject(o, "interface", 2);
	cJSON_AddItemToArray(ips, o);
	for (unsigned i = 0; i < c->nroutes; i++) {
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "dst",
					pw_cni_cidr(c->routes[i].dst, c->routes[i].len, cidr));
		if (c->routes[i].gw)
			cJSON_AddStringToObject(o, "gw", pw_cni_ntop(c->routes[i].gw, a));
		cJSON_AddItemToArray(routes, o);
	}
	cJSON_AddItemToObject(res, "dns",
			      c->dns ? cJSON_Duplicate(c->dns, true) : cJSON_CreateObject());
	pw_cni_result_format(c, res);
	return res;
}

/*
 * The pod's addresses in a result: those of the interface named CNI_IFNAME
 * with a sandbox, or with no interface index at all. Fills @pod (key and
 * addresses); *@ret_iface is that interface's index in "interfaces" or -1.
 */
int pw_cni_result_pod(struct pw_cni *c, const cJSON *res, struct pw_wire_pod *pod, int *ret_iface)
{
	const cJSON *ifs = pw_json_get(res, "interfaces");
	const cJSON *ips = pw_json_get(res, "ips"), *v;
	int idx = -1, i = 0;

	memset(pod, 0, sizeof(*pod));
	snprintf(pod->key.id, sizeof(pod->key.id), "%s", c->id);
	snprintf(pod->key.ifname, sizeof(pod->key.ifname), "%s", c->ifname);
	cJSON_ArrayForEach(v, ifs)
	{
		const cJSON *name = pw_json_get(v, "name");
		const cJSON *sb = pw_json_get(v, "sandbox");

		if (idx < 0 && cJSON_IsString(name) && !strcmp(name->valuestring, c->ifname) &&
		    cJSON_IsString(sb) && sb->valuestring[0])
			idx = i;
		i++;
	}
	*ret_iface = idx;
	i = 0;
	cJSON_ArrayForEach(v, ips)
	{
		const cJSON *addr = pw_json_get(v, "address");
		const cJSON *iface = pw_json_get(v, "interface");
		struct pw_wire_prefix p;

		if (!cJSON_IsString(addr) ||
		    pw_addr_cidr_parse(addr->valuestring, PW_ADDR_CIDR_INET6, &p) < 0)
			return pw_cni_fail(c, PW_CNI_E_CONFIG, "invalid prevResult",
					   "ips[%d].address is not an address/prefix", i);
		i++;
		if (iface && (!cJSON_IsNumber(iface) || iface->valueint != idx))
			continue;
		if (pod->count == PW_WIRE_POD_MAX_ADDRS) {
			pw_warn("more than %u addresses on %s: registering the first %u",
				PW_WIRE_POD_MAX_ADDRS, c->ifname, PW_WIRE_POD_MAX_ADDRS);
			break;
		}
		pod->addr[pod->count++] = p;
	}
	return 0;
}

/* Acceleration is optional: failing to register is a warning, never an error. */
void pw_cni_register(const struct pw_cni *c, const struct pw_wire_pod *pod)
{
	int r;

	if (strlen(c->id) >= sizeof(pod->key.id)) {
		pw_warn("container id longer than %u bytes: not registered with podwired",
			PW_WIRE_POD_ID_LEN - 1);
		return;
	}
	r = pw_reg_add(c->sock, pod, c->netns);
	if (r < 0)
		pw_warn("cannot register the pod with podwired at %s: %s; it works, without "
			"podwire acceleration",
			c->sock, strerror(-r));
}

void pw_cni_unregister(const struct pw_cni *c)
{
	struct pw_wire_pod_key key = { 0 };
	int r;

	if (strlen(c->id) >= sizeof(key.id))
		return;
	snprintf(key.id, sizeof(key.id), "%s", c->id);
	snprintf(key.ifname, sizeof(key.ifname), "%s", c->ifname);
	r = pw_reg_del(c->sock, &key);
	/* Gone already, or no router: both are what DEL wants. */
	if (r < 0 && r != -ENOENT && r != -ECONNREFUSED)
		pw_warn("podwired at %s: unregistering the pod: %s", c->sock, strerror(-r));
}
