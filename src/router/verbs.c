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
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <string.h>
#include <unistd.h>

#include "../common/log.h"
#include "router.h"

#include <podwire/shm.h>

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

/* Who the maker of socket @proof is: its pod's identity in @ret and address
 * in @ret_addr. -ENOENT: not a pod (the node's own netns, or no address of
 * ours); errors of SIOCGSKNS and setns(2). */
static int pw_verbs_caller(int proof, struct pw_wire_verbs_dev *ret, uint32_t *ret_addr)
{
	const struct pw_wire_prefix *p = NULL;
	uint32_t addr = 0;
	int ns, r;

	ns = pw_sock_netns(proof);
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
	pw_verbs_identity(addr, p, ret);
	*ret_addr = addr;
	return 0;
}

int pw_request_verbs_dev(struct pw_client *c, const struct pw_msg *m, int fds[PW_WIRE_MAX_FDS])
{
	struct pw_wire_verbs_dev dev;
	uint32_t addr;
	int r = pw_verbs_caller(fds[0], &dev, &addr);

	if (r < 0)
		return r;
	char b[INET_ADDRSTRLEN];
	pw_dbg("pid %d: RDMA device for %s (LID %u)", c->pid,
	       inet_ntop(AF_INET, &addr, b, sizeof(b)) ? b : "?", ntohs(dev.lid));
	return pw_msg_send(c->fd, PW_MSG_VERBS_DEV_OK, m->seq, &dev, sizeof(dev), NULL, 0, NULL, 0);
}

/* ---- queue pairs: numbers and pairing ---- */

/* A process that opened podwire0 (VERBS_OPEN), on its client connection. */
struct pw_vclient {
	uint32_t addr; /* its pod's address, network order */
	int arena;     /* its arena (shm.h) */
};

/* A queue pair the router numbered. */
struct pw_vqp_reg {
	struct pw_client *owner;
	uint32_t qpn, slot;
	bool connected, paired;
	uint32_t dest, dest_qpn; /* where VERBS_CONNECT pointed it */
	int evfd;		 /* wakes its receive completions' channel */
	struct pw_vqp_reg *next;
};

static struct pw_vqp_reg *pw_vqps;
static uint32_t pw_vqpn_next;
static struct {
	uint64_t opens, qps, pairs;
} pw_vstats;

void pw_verbs_metrics(FILE *f)
{
	fprintf(f,
		"# HELP podwire_verbs_opens_total Processes that opened podwire0, the virtual "
		"RDMA device.\n"
		"# TYPE podwire_verbs_opens_total counter\n"
		"podwire_verbs_opens_total %" PRIu64 "\n"
		"# HELP podwire_verbs_qps_total Queue pairs numbered.\n"
		"# TYPE podwire_verbs_qps_total counter\n"
		"podwire_verbs_qps_total %" PRIu64 "\n"
		"# HELP podwire_verbs_pairs_total Queue pairs connected to each other (shared "
		"memory, this node).\n"
		"# TYPE podwire_verbs_pairs_total counter\n"
		"podwire_verbs_pairs_total %" PRIu64 "\n",
		pw_vstats.opens, pw_vstats.qps, pw_vstats.pairs);
}

int pw_request_verbs_open(struct pw_client *c, const struct pw_msg *m, int fds[PW_WIRE_MAX_FDS])
{
	struct pw_wire_verbs_dev dev;
	uint32_t addr;
	int r;

	if (c->verbs)
		return -EBUSY;
	if (m->u.verbs_open.layout != PW_VARENA_VERSION)
		return -EPROTONOSUPPORT; /* a library of another podwire */
	/* The arena must be a memfd: sealable, as no other file is. */
	if (fcntl(fds[1], F_GET_SEALS) < 0)
		return -EBADF;
	r = pw_verbs_caller(fds[0], &dev, &addr);
	if (r < 0)
		return r;
	c->verbs = calloc(1, sizeof(*c->verbs));
	if (!c->verbs)
		return -ENOMEM;
	c->verbs->addr = addr;
	c->verbs->arena = fds[1];
	fds[1] = -1; /* (kept) */
	pw_vstats.opens++;
	return pw_msg_send(c->fd, PW_MSG_VERBS_DEV_OK, m->seq, &dev, sizeof(dev), NULL, 0, NULL, 0);
}

static struct pw_vqp_reg *pw_vqp_find(uint32_t addr, uint32_t qpn)
{
	for (struct pw_vqp_reg *q = pw_vqps; q; q = q->next)
		if (q->qpn == qpn && q->owner->verbs->addr == addr)
			return q;
	return NULL;
}

/* @q is going: its peer, if paired, learns it (its slot's peer_gone, and a
 * wake-up of whoever waits for its completions), and @q's own slot says it
 * is no longer live (a process killed never cleared it). */
static void pw_vqp_gone(struct pw_vqp_reg *q)
{
	static const uint32_t one = 1, zero = 0;
	uint64_t base = PW_VARENA_META + PW_VQP_OFF;
	struct pw_vqp_reg *p;

	if (pwrite(q->owner->verbs->arena, &zero, 4,
		   (off_t)(base + (uint64_t)q->slot * sizeof(struct pw_vqp) +
			   offsetof(struct pw_vqp, qpn))) != 4)
		pw_warn("QP %u: cannot mark its slot: %s", q->qpn, strerror(errno));
	if (!q->paired)
		return;
	p = pw_vqp_find(q->dest, q->dest_qpn);
	if (!p || !p->paired || p->dest != q->owner->verbs->addr || p->dest_qpn != q->qpn)
		return;
	p->paired = false;
	if (pwrite(p->owner->verbs->arena, &one, 4,
		   (off_t)(base + (uint64_t)p->slot * sizeof(struct pw_vqp) +
			   offsetof(struct pw_vqp, peer_gone))) != 4)
		pw_warn("QP %u: cannot tell it its peer is gone: %s", p->qpn, strerror(errno));
	if (p->evfd >= 0)
		eventfd_write(p->evfd, 1);
	pw_dbg("QP %u (pid %d): its peer QP %u went", p->qpn, p->owner->pid, q->qpn);
}

static void pw_vqp_free(struct pw_vqp_reg **pp)
{
	struct pw_vqp_reg *q = *pp;

	pw_vqp_gone(q);
	*pp = q->next;
	if (q->evfd >= 0)
		close(q->evfd);
	free(q);
}

int pw_request_verbs_qp(struct pw_client *c, const struct pw_msg *m, int fds[PW_WIRE_MAX_FDS])
{
	struct pw_wire_verbs_qp body = m->u.verbs_qp;

	if (!c->verbs)
		return -EPERM;
	if (m->type == PW_MSG_VERBS_QP_DEL) {
		for (struct pw_vqp_reg **pp = &pw_vqps; *pp; pp = &(*pp)->next)
			if ((*pp)->owner == c && (*pp)->qpn == body.qpn) {
				pw_vqp_free(pp);
				return pw_client_reply(c, m->seq, 0);
			}
		return -ENOENT;
	}
	if (body.slot >= PW_VQPS)
		return -EINVAL;
	for (const struct pw_vqp_reg *q = pw_vqps; q; q = q->next)
		if (q->owner == c && q->slot == body.slot)
			return -EEXIST;
	struct pw_vqp_reg *q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	/* 24-bit numbers, 0 and 1 reserved (QP0, QP1), none live twice. */
	do
		body.qpn = (pw_vqpn_next++ & 0xffffffu);
	while (body.qpn < 2 || pw_vqp_find(c->verbs->addr, body.qpn));
	*q = (struct pw_vqp_reg){
		.owner = c, .qpn = body.qpn, .slot = body.slot, .evfd = -1, .next = pw_vqps
	};
	pw_vqps = q;
	pw_vstats.qps++;
	return pw_msg_send(c->fd, PW_MSG_VERBS_QP_OK, m->seq, &body, sizeof(body), NULL, 0, NULL,
			   0);
}

/* Tell @q's owner that its peer @p is there: @p's arena and eventfd. */
static void pw_vqp_paired(const struct pw_vqp_reg *q, const struct pw_vqp_reg *p)
{
	struct pw_wire_verbs_paired body = { .qpn = q->qpn,
					     .peer_qpn = p->qpn,
					     .peer_slot = p->slot };
	int fds[2] = { p->owner->verbs->arena, p->evfd };

	if (pw_msg_send(q->owner->fd, PW_MSG_VERBS_PAIRED, 0, &body, sizeof(body), NULL, 0, fds,
			2) < 0)
		pw_warn("pid %d: cannot tell QP %u of its peer: %s", q->owner->pid, q->qpn,
			strerror(errno));
}

int pw_request_verbs_connect(struct pw_client *c, const struct pw_msg *m, int fds[PW_WIRE_MAX_FDS])
{
	const struct pw_wire_verbs_connect *body = &m->u.verbs_connect;
	struct pw_vqp_reg *q, *p;
	int r;

	if (!c->verbs)
		return -EPERM;
	q = pw_vqp_find(c->verbs->addr, body->qpn);
	if (!q || q->owner != c)
		return -ENOENT;
	if (q->connected)
		return -EISCONN;
	q->dest = body->dest;
	if (!q->dest) {
		/* A LID: the address at that offset in the caller's prefix. */
		const struct pw_router_cfg *cfg = &pw_router_cfg;
		for (unsigned k = 0; k < cfg->nprefixes && !q->dest; k++) {
			uint32_t base;
			memcpy(&base, cfg->prefixes[k].addr, 4);
			if (pw_prefix_has4(&cfg->prefixes[k], c->verbs->addr) && body->dlid &&
			    body->dlid <= PW_LID_MAX)
				q->dest = htonl(ntohl(base) + body->dlid);
		}
		if (!q->dest)
			return -EINVAL;
	}
	/* Another node's pod: not yet (docs/RDMA.md). */
	struct sockaddr_in d = { .sin_family = AF_INET, .sin_addr.s_addr = q->dest };
	if (pw_peers_enabled() && !pw_peers_pod_has(&d)) {
		q->dest = 0;
		return -EOPNOTSUPP;
	}
	q->connected = true;
	q->dest_qpn = body->dest_qpn;
	q->evfd = fds[0];
	fds[0] = -1; /* (kept) */
	r = pw_client_reply(c, m->seq, 0);
	if (r < 0)
		return r;
	/* The peer, if it is on this node and pointed back at us already. */
	p = pw_vqp_find(q->dest, q->dest_qpn);
	if (p && p->connected && !p->paired && p->dest == c->verbs->addr && p->dest_qpn == q->qpn) {
		q->paired = p->paired = true;
		pw_vstats.pairs++;
		pw_vqp_paired(q, p);
		pw_vqp_paired(p, q);
		pw_dbg("QP %u (pid %d) and QP %u (pid %d) paired", q->qpn, c->pid, p->qpn,
		       p->owner->pid);
	}
	return 0;
}

void pw_verbs_client_gone(struct pw_client *c)
{
	if (!c->verbs)
		return;
	for (struct pw_vqp_reg **pp = &pw_vqps; *pp;)
		if ((*pp)->owner == c)
			pw_vqp_free(pp);
		else
			pp = &(*pp)->next;
	close(c->verbs->arena);
	free(c->verbs);
	c->verbs = NULL;
}
