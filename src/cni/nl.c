// SPDX-License-Identifier: MIT
/*
 * rtnetlink for podwire-cni over libmnl. A socket belongs to the network
 * namespace it was created in, so working inside a container's namespace
 * means creating the socket there (setns for that one call) and using it
 * from the host's: the plugin never runs anything else inside the pod.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../common/addr.h"
#include "../common/util.h"
#include "nl.h"

#define PW_NL_BUF	32768
#define PW_NL_TIMEOUT_S 5

int pw_nl_open(struct pw_nl *nl, int netns)
{
	struct timeval tv = { .tv_sec = PW_NL_TIMEOUT_S };
	int self = -1, err = 0;

	memset(nl, 0, sizeof(*nl));
	if (netns >= 0) {
		self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
		if (self < 0)
			return -errno;
		if (setns(netns, CLONE_NEWNET) < 0) {
			err = -errno;
			pw_close(self);
			return err;
		}
	}
	nl->sk = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!nl->sk)
		err = -errno;
	if (self >= 0) {
		if (setns(self, CLONE_NEWNET) < 0) {
			/* Configuring the host from inside a pod would be worse than dying. */
			fprintf(stderr, "podwire-cni: cannot return to the host namespace: %s\n",
				strerror(errno));
			abort();
		}
		pw_close(self);
	}
	if (err)
		return err;
	if (mnl_socket_bind(nl->sk, 0, MNL_SOCKET_AUTOPID) < 0) {
		err = -errno;
		pw_nl_close(nl);
		return err;
	}
	/* A kernel that never answers must not hang the runtime. */
	setsockopt(mnl_socket_get_fd(nl->sk), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	nl->portid = mnl_socket_get_portid(nl->sk);
	nl->seq = (unsigned)time(NULL);
	return 0;
}

void pw_nl_close(struct pw_nl *nl)
{
	if (nl->sk)
		mnl_socket_close(nl->sk);
	nl->sk = NULL;
}

/*
 * Send @nlh and read replies until the kernel's ACK (or NLMSG_DONE of a
 * dump), passing each reply to @cb. Returns 0 or the kernel's -errno.
 */
static int pw_nl_talk(struct pw_nl *nl, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
	char *buf;
	int r;

	nlh->nlmsg_seq = ++nl->seq;
	if ((nlh->nlmsg_flags & NLM_F_DUMP) != NLM_F_DUMP) /* NLM_F_EXCL shares a bit */
		nlh->nlmsg_flags |= NLM_F_ACK;
	if (mnl_socket_sendto(nl->sk, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	buf = malloc(PW_NL_BUF);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(nl->sk, buf, PW_NL_BUF);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = errno == EAGAIN ? -ETIMEDOUT : -errno;
			break;
		}
		r = mnl_cb_run(buf, (size_t)n, nl->seq, nl->portid, cb, data);
		if (r == MNL_CB_ERROR) {
			r = errno ? -errno : -EIO;
			break;
		}
		if (r == MNL_CB_STOP) {
			r = 0;
			break;
		}
	}
	free(buf);
	return r;
}

/* A request in @buf (MNL_SOCKET_BUFFER_SIZE bytes), zeroed: libmnl leaves
 * attribute padding as it finds it, and the kernel should not see garbage. */
static struct nlmsghdr *pw_nl_msg(char *buf, uint16_t type, uint16_t flags)
{
	struct nlmsghdr *nlh;

	memset(buf, 0, MNL_SOCKET_BUFFER_SIZE);
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	return nlh;
}

static struct nlmsghdr *pw_nl_link_msg(char *buf, uint16_t type, uint16_t flags, int index)
{
	struct nlmsghdr *nlh = pw_nl_msg(buf, type, flags);
	struct ifinfomsg *ifi;

	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = index;
	return nlh;
}

struct pw_nl_attrs {
	const struct nlattr *tb[IFLA_MAX + 1];
	int max;
};

static int pw_nl_attr_cb(const struct nlattr *attr, void *data)
{
	struct pw_nl_attrs *a = data;
	int type = mnl_attr_get_type(attr);

	if (type <= a->max)
		a->tb[type] = attr;
	return MNL_CB_OK;
}

static int pw_nl_link_cb(const struct nlmsghdr *nlh, void *data)
{
	struct pw_nl_link *l = data;
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
	struct pw_nl_attrs a = { .max = IFLA_MAX };

	if (nlh->nlmsg_type != RTM_NEWLINK)
		return MNL_CB_OK;
	memset(l, 0, sizeof(*l));
	l->index = ifi->ifi_index;
	l->flags = ifi->ifi_flags;
	if (mnl_attr_parse(nlh, sizeof(*ifi), pw_nl_attr_cb, &a) < 0)
		return MNL_CB_ERROR;
	if (a.tb[IFLA_IFNAME])
		snprintf(l->name, sizeof(l->name), "%s", mnl_attr_get_str(a.tb[IFLA_IFNAME]));
	if (a.tb[IFLA_MASTER])
		l->master = (int)mnl_attr_get_u32(a.tb[IFLA_MASTER]);
	if (a.tb[IFLA_LINK])
		l->peer = (int)mnl_attr_get_u32(a.tb[IFLA_LINK]);
	if (a.tb[IFLA_ADDRESS] && mnl_attr_get_payload_len(a.tb[IFLA_ADDRESS]) == 6) {
		memcpy(l->mac, mnl_attr_get_payload(a.tb[IFLA_ADDRESS]), 6);
		l->has_mac = true;
	}
	if (a.tb[IFLA_LINKINFO]) {
		struct pw_nl_attrs info = { .max = IFLA_INFO_MAX };

		if (mnl_attr_parse_nested(a.tb[IFLA_LINKINFO], pw_nl_attr_cb, &info) >= 0 &&
		    info.tb[IFLA_INFO_KIND])
			snprintf(l->kind, sizeof(l->kind), "%s",
				 mnl_attr_get_str(info.tb[IFLA_INFO_KIND]));
	}
	return MNL_CB_OK;
}

int pw_nl_link_get(struct pw_nl *nl, const char *name, struct pw_nl_link *ret)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = pw_nl_link_msg(buf, RTM_GETLINK, 0, 0);

	memset(ret, 0, sizeof(*ret));
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	int r = pw_nl_talk(nl, nlh, pw_nl_link_cb, ret);
	if (r == 0 && ret->index == 0)
		r = -ENODEV;
	return r;
}

int pw_nl_bridge_add(struct pw_nl *nl, const char *name, unsigned mtu)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = pw_nl_link_msg(buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, 0);

	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	if (mtu)
		mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
	struct nlattr *info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "bridge");
	mnl_attr_nest_end(nlh, info);
	return pw_nl_talk(nl, nlh, NULL, NULL);
}

int pw_nl_veth_add(struct pw_nl *nl, const char *name, const char *peer, int peer_netns,
		   unsigned mtu)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = pw_nl_link_msg(buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, 0);
	struct ifinfomsg *pifi;

	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	if (mtu)
		mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
	struct nlattr *info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
	struct nlattr *data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
	/* The peer is described by an ifinfomsg and its own attributes. */
	struct nlattr *p = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
	pifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*pifi));
	pifi->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, peer);
	mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, (uint32_t)peer_netns);
	if (mtu)
		mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
	mnl_attr_nest_end(nlh, p);
	mnl_attr_nest_end(nlh, data);
	mnl_attr_nest_end(nlh, info);
	return pw_nl_talk(nl, nlh, NULL, NULL);
}

int pw_nl_link_up(struct pw_nl *nl, int index, int master)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = pw_nl_link_msg(buf, RTM_NEWLINK, 0, index);
	struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);

	ifi->ifi_change = IFF_UP;
	ifi->ifi_flags = IFF_UP;
	if (master > 0)
		mnl_attr_put_u32(nlh, IFLA_MASTER, (uint32_t)master);
	return pw_nl_talk(nl, nlh, NULL, NULL);
}

int pw_nl_link_del(struct pw_nl *nl, int index)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];

	return pw_nl_talk(nl, pw_nl_link_msg(buf, RTM_DELLINK, 0, index), NULL, NULL);
}

int pw_nl_addr_add(struct pw_nl *nl, int index, uint32_t addr, uint8_t plen)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = pw_nl_msg(buf, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
	struct ifaddrmsg *ifa;
	uint32_t mask = htonl(pw_addr_mask(plen));

	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = AF_INET;
	ifa->ifa_prefixlen = plen;
	ifa->ifa_scope = RT_SCOPE_UNIVERSE;
	ifa->ifa_index = (uint32_t)index;
	mnl_attr_put_u32(nlh, IFA_LOCAL, addr);
	mnl_attr_put_u32(nlh, IFA_ADDRESS, addr);
	if (plen < 31)
		mnl_attr_put_u32(nlh, IFA_BROADCAST, addr | ~mask);
	return pw_nl_talk(nl, nlh, NULL, NULL);
}

struct pw_nl_addr_q {
	int index, family;
	const void *addr;
	uint8_t plen;
	int found;
};

static int pw_nl_addr_cb(const struct nlmsghdr *nlh, void *data)
{
	struct pw_nl_addr_q *q = data;
	const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
	struct pw_nl_attrs a = { .max = IFA_MAX };
	size_t len = q->family == AF_INET ? 4 : 16;

	if (nlh->nlmsg_type != RTM_NEWADDR || (int)ifa->ifa_index != q->index ||
	    ifa->ifa_family != q->family || ifa->ifa_prefixlen != q->plen)
		return MNL_CB_OK;
	if (mnl_attr_parse(nlh, sizeof(*ifa), pw_nl_attr_cb, &a) < 0)
		return MNL_CB_ERROR;
	/* IPv4 puts the address in IFA_LOCAL (IFA_ADDRESS is the peer's on p2p). */
	const struct nlattr *at = a.tb[IFA_LOCAL] ? a.tb[IFA_LOCAL] : a.tb[IFA_ADDRESS];
	if (at && mnl_attr_get_payload_len(at) == len &&
	    !memcmp(mnl_attr_get_payload(at), q->addr, len))
		q->found = 1;
	return MNL_CB_OK;
}

int pw_nl_addr_has(struct pw_nl *nl, int index, int family, const void *addr, uint8_t plen)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = pw_nl_msg(buf, RTM_GETADDR, NLM_F_DUMP);
	struct pw_nl_addr_q q = { index, family, addr, plen, 0 };
	struct ifaddrmsg *ifa;

	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = (uint8_t)family;
	int r = pw_nl_talk(nl, nlh, pw_nl_addr_cb, &q);
	return r < 0 ? r : q.found;
}

int pw_nl_route_add(struct pw_nl *nl, int index, uint32_t dst, uint8_t len, uint32_t gw)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = pw_nl_msg(buf, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
	struct rtmsg *rtm;

	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = AF_INET;
	rtm->rtm_dst_len = len;
	rtm->rtm_table = RT_TABLE_MAIN;
	rtm->rtm_protocol = RTPROT_BOOT;
	rtm->rtm_scope = gw ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
	rtm->rtm_type = RTN_UNICAST;
	if (len)
		mnl_attr_put_u32(nlh, RTA_DST, dst);
	if (gw)
		mnl_attr_put_u32(nlh, RTA_GATEWAY, gw);
	mnl_attr_put_u32(nlh, RTA_OIF, (uint32_t)index);
	return pw_nl_talk(nl, nlh, NULL, NULL);
}
