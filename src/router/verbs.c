// SPDX-License-Identifier: MIT
/*
 * The virtual RDMA device's identity (docs/RDMA.md). The router, not the
 * pod, says who a pod is: its GID is the IPv4 address its own netns holds
 * inside the router's prefix, read from the netns of a socket the caller
 * made, so a pod cannot take another's GID. The node's own namespace has
 * no device.
 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <string.h>
#include <unistd.h>

#include "../common/log.h"
#include "router.h"

/* Unicast LIDs are 0x0001-0xbfff (IBA 4.1.3). */
#define PW_LID_MAX 0xbfffu

/* Does @a (network order) lie in prefix @p? */
static bool pw_prefix_has4(const struct pw_wire_prefix *p, uint32_t a)
{
	uint32_t base, mask;

	if (p->family != AF_INET || p->len > 32)
		return false;
	memcpy(&base, p->addr, 4);
	mask = p->len ? htonl(~0u << (32 - p->len)) : 0;
	return (a & mask) == (base & mask);
}

/* The first IPv4 address up in the current netns inside a prefix of ours
 * (@ret), and that prefix; NULL when there is none, or getifaddrs(3) failed. */
static const struct pw_wire_prefix *pw_verbs_addr(uint32_t *ret)
{
	const struct pw_router_cfg *cfg = &pw_router_cfg;
	const struct pw_wire_prefix *p = NULL;
	struct ifaddrs *ifa;

	if (getifaddrs(&ifa) < 0)
		return NULL;
	for (const struct ifaddrs *i = ifa; i && !p; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || !(i->ifa_flags & IFF_UP) ||
		    (i->ifa_flags & IFF_LOOPBACK))
			continue;
		uint32_t a = ((const struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr;
		for (unsigned k = 0; k < cfg->nprefixes && !p; k++)
			if (pw_prefix_has4(&cfg->prefixes[k], a)) {
				*ret = a;
				p = &cfg->prefixes[k];
			}
	}
	freeifaddrs(ifa);
	return p;
}

void pw_verbs_identity(uint32_t addr, const struct pw_wire_prefix *p, struct pw_wire_verbs_dev *ret)
{
	uint32_t base, off;

	memset(ret, 0, sizeof(*ret));
	/* ::ffff:a.b.c.d, as RoCE v2 writes an IPv4 address. */
	ret->gid[10] = 0xff;
	ret->gid[11] = 0xff;
	memcpy(&ret->gid[12], &addr, 4);
	/* The GUID: "pw" and the address, locally administered (EUI-64 bit 1). */
	ret->guid = htobe64(0x0270770000000000ull | ntohl(addr));
	memcpy(&base, p->addr, 4);
	off = ntohl(addr) - ntohl(base);
	ret->lid = off >= 1 && off <= PW_LID_MAX ? htons((uint16_t)off) : 0;
}

int pw_request_verbs_dev(struct pw_client *c, const struct pw_msg *m, int fds[PW_WIRE_MAX_FDS])
{
	const struct pw_wire_prefix *p = NULL;
	struct pw_wire_verbs_dev dev;
	uint32_t addr = 0;
	int ns, r;

	ns = pw_sock_netns(fds[0]);
	if (ns < 0)
		return ns;
	/* The node's own namespace is no pod, though it holds the pods'
	 * gateway address (and so do host-network pods). */
	if (pw_netns_is_self(ns)) {
		close(ns);
		return -ENOENT;
	}
	r = pw_netns_enter(ns);
	if (r == 0) {
		p = pw_verbs_addr(&addr);
		pw_netns_leave();
	}
	close(ns);
	if (r < 0)
		return r;
	if (!p)
		return -ENOENT;
	pw_verbs_identity(addr, p, &dev);
	char b[INET_ADDRSTRLEN];
	pw_dbg("pid %d: RDMA device for %s (LID %u)", c->pid,
	       inet_ntop(AF_INET, &addr, b, sizeof(b)) ? b : "?", ntohs(dev.lid));
	return pw_msg_send(c->fd, PW_MSG_VERBS_DEV_OK, m->seq, &dev, sizeof(dev), NULL, 0, NULL, 0);
}
