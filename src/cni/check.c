// SPDX-License-Identifier: MIT
/* podwire-cni: CHECK: the networking is as ADD left it, and podwired knows the pod. */
#include "cni.h"

/* ---- CHECK ---- */

/* The pod's interface and addresses in its netns, as @pod lists them. */
static int pw_cni_check_pod(struct pw_cni *c, const cJSON *prev, int idx,
			    const struct pw_wire_pod *pod)
{
	struct pw_nl ns = { 0 };
	struct pw_nl_link l;
	int r;

	r = pw_nl_open(&ns, c->netns);
	if (r < 0) {
		pw_cni_fail(c, PW_CNI_E_CHECK, "cannot open netlink", "%s", strerror(-r));
		goto out;
	}
	r = pw_nl_link_get(&ns, c->ifname, &l);
	if (r < 0) {
		pw_cni_fail(c, PW_CNI_E_CHECK, "interface missing", "%s in %s: %s", c->ifname,
			    c->netns_path, strerror(-r));
		goto out;
	}
	if (!(l.flags & IFF_UP)) {
		r = pw_cni_fail(c, PW_CNI_E_CHECK, "interface down", "%s in %s is down", c->ifname,
				c->netns_path);
		goto out;
	}
	const cJSON *ifs = pw_json_get(prev, "interfaces");
	const cJSON *ifc = idx >= 0 ? cJSON_GetArrayItem(ifs, idx) : NULL;
	const cJSON *mac = pw_json_get(ifc, "mac");
	char now[18];
	pw_cni_fmt_mac(&l, now);
	if (cJSON_IsString(mac) && l.has_mac && strcasecmp(mac->valuestring, now) != 0) {
		r = pw_cni_fail(c, PW_CNI_E_CHECK, "interface changed",
				"%s has MAC %s, prevResult says %.32s", c->ifname, now,
				mac->valuestring);
		goto out;
	}
	for (uint32_t i = 0; i < pod->count; i++) {
		const struct pw_wire_prefix *p = &pod->addr[i];
		char a[PW_ADDR_CIDR_STRLEN];

		r = pw_nl_addr_has(&ns, l.index, p->family, p->addr, p->len);
		if (r <= 0) {
			r = pw_cni_fail(c, PW_CNI_E_CHECK, "address missing", "%s on %s: %s",
					pw_addr_cidr_format(p, a), c->ifname,
					r < 0 ? strerror(-r) : "not configured");
			goto out;
		}
	}
	r = 0;
out:
	pw_nl_close(&ns);
	return r < 0 ? -1 : 0;
}

/* Standalone: our host end on our bridge, and the IPAM reservation. */
static int pw_cni_check_standalone(struct pw_cni *c, const struct pw_wire_pod *pod)
{
	struct pw_nl h = { 0 };
	struct pw_nl_link br = { 0 }, host = { 0 };
	char hname[IF_NAMESIZE], a[INET_ADDRSTRLEN];
	uint32_t held;
	int r;

	pw_cni_host_ifname(c, hname);
	r = pw_nl_open(&h, -1);
	if (r == 0)
		r = pw_nl_link_get(&h, c->bridge, &br);
	if (r == 0)
		r = pw_nl_link_get(&h, hname, &host);
	pw_nl_close(&h);
	if (r < 0)
		return pw_cni_fail(c, PW_CNI_E_CHECK, "host interface missing", "%s or %s: %s",
				   c->bridge, hname, strerror(-r));
	if (host.master != br.index || !(host.flags & IFF_UP))
		return pw_cni_fail(c, PW_CNI_E_CHECK, "host interface changed",
				   "%s is not up on bridge %s", hname, c->bridge);
	r = pw_ipam_find(c->ipam.dir, c->id, c->ifname, &held);
	if (r < 0)
		return pw_cni_fail(c, PW_CNI_E_CHECK, "IP reservation missing",
				   "no allocation for %s/%s in %s", c->id, c->ifname, c->ipam.dir);
	held = htonl(held);
	for (uint32_t i = 0; i < pod->count; i++)
		if (pod->addr[i].family == AF_INET && !memcmp(pod->addr[i].addr, &held, 4))
			return 0;
	return pw_cni_fail(c, PW_CNI_E_CHECK, "IP reservation changed",
			   "%s/%s holds %s, which prevResult does not list", c->id, c->ifname,
			   pw_cni_ntop(held, a));
}

/* The router, if there is one, must know the pod with these addresses. */
static int pw_cni_check_registered(struct pw_cni *c, const struct pw_wire_pod *pod)
{
	struct pw_wire_pod got;
	int r = pw_reg_find(c->sock, &pod->key, &got);

	if (r == -ENOENT)
		return pw_cni_fail(c, PW_CNI_E_ROUTER, "pod not registered with podwired",
				   "podwired at %s does not know %s/%s (restarted since ADD?)",
				   c->sock, c->id, c->ifname);
	if (r < 0) {
		pw_warn("cannot check the registration with podwired at %s: %s", c->sock,
			strerror(-r));
		return 0;
	}
	for (uint32_t i = 0; i < pod->count; i++) {
		bool found = false;

		for (uint32_t k = 0; k < got.count && k < PW_WIRE_POD_MAX_ADDRS; k++)
			found |= got.addr[k].family == pod->addr[i].family &&
				 !memcmp(got.addr[k].addr, pod->addr[i].addr,
					 pod->addr[i].family == AF_INET ? 4 : 16);
		if (!found)
			return pw_cni_fail(c, PW_CNI_E_ROUTER, "registration differs",
					   "podwired knows %s/%s with other addresses", c->id,
					   c->ifname);
	}
	return 0;
}

int pw_cni_check(struct pw_cni *c)
{
	struct pw_wire_pod pod;
	int idx;

	if (!strcmp(c->version, "0.3.0") || !strcmp(c->version, "0.3.1"))
		return pw_cni_fail(c, PW_CNI_E_VERSION, "incompatible CNI version",
				   "CHECK needs cniVersion 0.4.0 or later, not %s", c->version);
	if (!c->prev)
		return pw_cni_fail(c, PW_CNI_E_CONFIG, "invalid network configuration",
				   "CHECK needs prevResult");
	if (pw_cni_open_netns(c) < 0 || pw_cni_result_pod(c, c->prev, &pod, &idx) < 0 ||
	    pw_cni_check_pod(c, c->prev, idx, &pod) < 0)
		return -1;
	if (c->standalone && pw_cni_check_standalone(c, &pod) < 0)
		return -1;
	return pw_cni_check_registered(c, &pod);
}
