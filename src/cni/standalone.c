// SPDX-License-Identifier: MIT
/* podwire-cni: standalone mode: the bridge, the veth pair, addresses, routes and
 * IPAM allocations. */
#include "cni.h"

/* ---- standalone mode: links ---- */

/* Ignore "already there": a repeated ADD finds its own work done. */
static int pw_cni_exist_ok(int r)
{
	return r == -EEXIST ? 0 : r;
}

static int pw_cni_bridge(struct pw_cni *c, struct pw_nl *h, struct pw_nl_link *br)
{
	int r = pw_nl_link_get(h, c->bridge, br);

	if (r == -ENODEV) {
		r = pw_cni_exist_ok(pw_nl_bridge_add(h, c->bridge, c->mtu));
		if (r == 0)
			r = pw_nl_link_get(h, c->bridge, br);
	}
	if (r < 0)
		return pw_cni_fail(c, PW_CNI_E_LINK, "cannot set up the bridge", "bridge %s: %s",
				   c->bridge, strerror(-r));
	if (strcmp(br->kind, "bridge") != 0)
		return pw_cni_fail(c, PW_CNI_E_LINK, "cannot set up the bridge",
				   "%s exists and is not a bridge (kind \"%s\")", c->bridge,
				   br->kind);
	r = pw_cni_exist_ok(pw_nl_addr_add(h, br->index, htonl(c->ipam.gw), c->ipam.plen));
	if (r == 0)
		r = pw_nl_link_up(h, br->index, 0);
	if (r < 0)
		return pw_cni_fail(c, PW_CNI_E_LINK, "cannot set up the bridge",
				   "bridge %s: gateway address or link up: %s", c->bridge,
				   strerror(-r));
	return 0;
}

/*
 * The veth pair, the pod's address and routes. A CNI_IFNAME that exists is
 * accepted only if it is our veth (its peer is our host end): that is a
 * repeated ADD. *@ret_created tells whether this call made the pair.
 */
static int pw_cni_links(struct pw_cni *c, uint32_t ip, struct pw_nl_link *br,
			struct pw_nl_link *host, struct pw_nl_link *cont, bool *ret_created)
{
	struct pw_nl h = { 0 }, ns = { 0 };
	char hname[IF_NAMESIZE];
	int r;

	*ret_created = false;
	pw_cni_host_ifname(c, hname);
	r = pw_nl_open(&h, -1);
	if (r == 0)
		r = pw_nl_open(&ns, c->netns);
	if (r < 0) {
		pw_cni_fail(c, PW_CNI_E_LINK, "cannot open netlink", "%s", strerror(-r));
		goto out;
	}
	r = pw_cni_bridge(c, &h, br);
	if (r < 0)
		goto out;

	r = pw_nl_link_get(&ns, c->ifname, cont);
	if (r == 0) {
		if (pw_nl_link_get(&h, hname, host) < 0 || strcmp(cont->kind, "veth") != 0 ||
		    cont->peer != host->index) {
			r = pw_cni_fail(c, PW_CNI_E_LINK, "interface already exists",
					"%s already exists in %s and is not podwire-cni's veth",
					c->ifname, c->netns_path);
			goto out;
		}
	} else if (r == -ENODEV) {
		/* A host end without its peer is debris of an interrupted ADD. */
		if (pw_nl_link_get(&h, hname, host) == 0)
			pw_nl_link_del(&h, host->index);
		r = pw_nl_veth_add(&h, hname, c->ifname, c->netns, c->mtu);
		if (r < 0) {
			pw_cni_fail(c, PW_CNI_E_LINK, "cannot create the veth pair", "%s/%s: %s",
				    hname, c->ifname, strerror(-r));
			goto out;
		}
		*ret_created = true;
		r = pw_nl_link_get(&h, hname, host);
		if (r == 0)
			r = pw_nl_link_get(&ns, c->ifname, cont);
	}
	if (r < 0) {
		pw_cni_fail(c, PW_CNI_E_LINK, "cannot find the interfaces", "%s/%s: %s", hname,
			    c->ifname, strerror(-r));
		goto out;
	}
	r = pw_nl_link_up(&h, host->index, br->index);
	if (r == 0)
		r = pw_cni_exist_ok(pw_nl_addr_add(&ns, cont->index, htonl(ip), c->ipam.plen));
	if (r == 0)
		r = pw_nl_link_up(&ns, cont->index, 0);
	for (unsigned i = 0; i < c->nroutes && r == 0; i++) {
		uint32_t gw = c->routes[i].gw ? c->routes[i].gw : htonl(c->ipam.gw);

		r = pw_cni_exist_ok(
			pw_nl_route_add(&ns, cont->index, c->routes[i].dst, c->routes[i].len, gw));
	}
	if (r < 0) {
		pw_cni_fail(c, PW_CNI_E_LINK, "cannot configure the interfaces",
			    "%s (host %s, bridge %s): %s", c->ifname, hname, c->bridge,
			    strerror(-r));
		goto out;
	}
	/* Addresses as they are now: a bridge takes its MAC from its ports. */
	if (pw_nl_link_get(&h, c->bridge, br) < 0 || pw_nl_link_get(&h, hname, host) < 0 ||
	    pw_nl_link_get(&ns, c->ifname, cont) < 0)
		r = pw_cni_fail(c, PW_CNI_E_LINK, "interfaces vanished", "%s/%s", hname, c->ifname);
out:
	if (r < 0 && *ret_created && host->index > 0)
		pw_nl_link_del(&h, host->index);
	pw_nl_close(&ns);
	pw_nl_close(&h);
	return r < 0 ? -1 : 0;
}

static int pw_cni_ipam_lock(struct pw_cni *c)
{
	int lock = pw_ipam_lock(c->ipam.dir, PW_CNI_LOCK_MS);

	if (lock == -EAGAIN)
		return pw_cni_fail(c, PW_CNI_E_AGAIN, "IPAM is busy",
				   "%s/lock still held after %d ms", c->ipam.dir, PW_CNI_LOCK_MS);
	if (lock < 0)
		return pw_cni_fail(c, PW_CNI_E_IO, "cannot open the IPAM data directory", "%s: %s",
				   c->ipam.dir, strerror(-lock));
	return lock;
}

int pw_cni_add_standalone(struct pw_cni *c, cJSON **ret)
{
	struct pw_nl_link br, host = { 0 }, cont;
	struct pw_wire_pod pod;
	uint32_t ip = 0;
	bool fresh, created;
	int lock, r, idx;

	if (pw_cni_open_netns(c) < 0)
		return -1;
	lock = pw_cni_ipam_lock(c);
	if (lock < 0)
		return -1;
	r = pw_ipam_alloc(&c->ipam, c->id, c->ifname, &ip, &fresh);
	pw_ipam_unlock(lock);
	if (r == -ENOSPC) {
		char a[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN];
		return pw_cni_fail(c, PW_CNI_E_IPAM, "no free address",
				   "all addresses from %s to %s of network %s are allocated (%s)",
				   pw_cni_ntop(htonl(c->ipam.start), a),
				   pw_cni_ntop(htonl(c->ipam.end), b), c->name, c->ipam.dir);
	}
	if (r < 0)
		return pw_cni_fail(c, PW_CNI_E_IO, "cannot allocate an address", "%s: %s",
				   c->ipam.dir, strerror(-r));
	if (pw_cni_links(c, ip, &br, &host, &cont, &created) < 0) {
		if (fresh) {
			lock = pw_ipam_lock(c->ipam.dir, PW_CNI_LOCK_MS);
			if (lock >= 0)
				pw_ipam_release(c->ipam.dir, c->id, c->ifname);
			pw_ipam_unlock(lock);
		}
		return -1;
	}
	*ret = pw_cni_result(c, &br, &host, &cont, ip);
	if (pw_cni_result_pod(c, *ret, &pod, &idx) == 0)
		pw_cni_register(c, &pod);
	return 0;
}

int pw_cni_del_standalone(struct pw_cni *c)
{
	struct pw_nl h = { 0 }, ns = { 0 };
	struct pw_nl_link l;
	char hname[IF_NAMESIZE];
	int lock, r;

	pw_cni_unregister(c);
	pw_cni_host_ifname(c, hname);
	/* Removing one end of a veth removes both. */
	r = pw_nl_open(&h, -1);
	if (r == 0 && pw_nl_link_get(&h, hname, &l) == 0 && strcmp(l.kind, "veth") == 0) {
		r = pw_nl_link_del(&h, l.index);
		if (r < 0 && r != -ENODEV)
			pw_warn("deleting %s: %s", hname, strerror(-r));
	}
	pw_nl_close(&h);
	/* The netns may be gone, which is fine; if not, our end may be left. */
	if (c->netns_path) {
		c->netns = open(c->netns_path, O_RDONLY | O_CLOEXEC);
		if (c->netns >= 0 && pw_nl_open(&ns, c->netns) == 0 &&
		    pw_nl_link_get(&ns, c->ifname, &l) == 0 && strcmp(l.kind, "veth") == 0)
			pw_nl_link_del(&ns, l.index);
		pw_nl_close(&ns);
	}
	lock = pw_cni_ipam_lock(c);
	if (lock < 0)
		return -1;
	r = pw_ipam_release(c->ipam.dir, c->id, c->ifname);
	pw_ipam_unlock(lock);
	if (r < 0)
		return pw_cni_fail(c, PW_CNI_E_IO, "cannot release the address", "%s: %s",
				   c->ipam.dir, strerror(-r));
	return 0;
}
