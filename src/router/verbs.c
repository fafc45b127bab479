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
#include "../common/util.h"
#include "router.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

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
	int svc;       /* its service eventfd (pw_vsvc) */
};

/* A queue pair the router numbered. */
struct pw_vqp_reg {
	struct pw_client *owner;
	uint32_t qpn, slot;
	bool connected, paired;
	bool remote;		 /* its peer is on another node (PEER_VQP) */
	bool has_data;		 /* remote: its owner took their data connection */
	uint32_t dest, dest_qpn; /* where VERBS_CONNECT pointed it */
	int evfd;		 /* wakes its receive completions' channel */
	struct pw_vqp_reg *next;
};

/* Another node's QP that went to RTR towards one of ours (PEER_VQP UP). */
struct pw_vqp_far {
	const struct pw_peer_link *link;
	uint32_t addr, qpn;	 /* it */
	uint32_t dest, dest_qpn; /* ours */
	struct pw_vqp_far *next;
};

static struct pw_vqp_reg *pw_vqps;
static struct pw_vqp_far *pw_vfars;
static uint32_t pw_vqpn_next;
static struct {
	uint64_t opens, qps, pairs, remote_pairs;
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
		"podwire_verbs_pairs_total %" PRIu64 "\n"
		"# HELP podwire_verbs_remote_pairs_total Queue pairs connected to another "
		"node's (a TCP connection between the two processes).\n"
		"# TYPE podwire_verbs_remote_pairs_total counter\n"
		"podwire_verbs_remote_pairs_total %" PRIu64 "\n",
		pw_vstats.opens, pw_vstats.qps, pw_vstats.pairs, pw_vstats.remote_pairs);
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
	if (fcntl(fds[1], F_GET_SEALS) < 0 || !pw_fd_is_eventfd(fds[2]))
		return -EBADF;
	r = pw_verbs_caller(fds[0], &dev, &addr);
	if (r < 0)
		return r;
	c->verbs = calloc(1, sizeof(*c->verbs));
	if (!c->verbs)
		return -ENOMEM;
	c->verbs->addr = addr;
	c->verbs->arena = fds[1];
	c->verbs->svc = fds[2];
	fds[1] = fds[2] = -1; /* (kept) */
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

/* Write @v at field offset @field of @q's slot in its owner's arena. */
static int pw_vqp_slot_put(const struct pw_vqp_reg *q, size_t field, uint32_t v)
{
	uint64_t off = PW_VARENA_META + PW_VQP_OFF + (uint64_t)q->slot * sizeof(struct pw_vqp);

	return pwrite(q->owner->verbs->arena, &v, 4, (off_t)(off + field)) == 4 ? 0 : -errno;
}

/* @p's peer went: its slot's peer_gone, and a wake-up of whoever waits for
 * its completions. */
static void pw_vqp_tell_gone(struct pw_vqp_reg *p)
{
	p->paired = false;
	if (pw_vqp_slot_put(p, offsetof(struct pw_vqp, peer_gone), 1) < 0)
		pw_warn("QP %u: cannot tell it its peer is gone: %s", p->qpn, strerror(errno));
	if (p->evfd >= 0)
		eventfd_write(p->evfd, 1);
	pw_dbg("QP %u (pid %d): its peer QP %u went", p->qpn, p->owner->pid, p->dest_qpn);
}

/* @q is going: its peer, if paired, learns it, and @q's own slot says it is
 * no longer live (a process killed never cleared it). */
static void pw_vqp_gone(struct pw_vqp_reg *q)
{
	struct pw_vqp_reg *p;

	if (pw_vqp_slot_put(q, offsetof(struct pw_vqp, qpn), 0) < 0)
		pw_warn("QP %u: cannot mark its slot: %s", q->qpn, strerror(errno));
	pw_peers_cancel(q);
	if (q->remote && q->connected) {
		/* The other node's router forgets it; its process learns from
		 * their connection closing, or, unpaired yet, from its router. */
		struct sockaddr_in d = { .sin_family = AF_INET, .sin_addr.s_addr = q->dest };
		struct pw_peer_link *l = pw_peer_route(&d);
		struct pw_wire_peer_vqp v = { .op = PW_PEER_VQP_GONE,
					      .src = q->owner->verbs->addr,
					      .src_qpn = q->qpn,
					      .dst = q->dest,
					      .dst_qpn = q->dest_qpn };
		if (l && pw_peer_link_send(l, PW_PEER_VQP, &v, sizeof(v), NULL, 0) < 0)
			pw_warn("QP %u: cannot tell the other node it went", q->qpn);
		return;
	}
	if (!q->paired)
		return;
	p = pw_vqp_find(q->dest, q->dest_qpn);
	if (p && p->paired && p->dest == q->owner->verbs->addr && p->dest_qpn == q->qpn)
		pw_vqp_tell_gone(p);
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
	int fds[3] = { p->owner->verbs->arena, p->evfd, p->owner->verbs->svc };

	if (pw_msg_send(q->owner->fd, PW_MSG_VERBS_PAIRED, 0, &body, sizeof(body), NULL, 0, fds,
			3) < 0)
		pw_warn("pid %d: cannot tell QP %u of its peer: %s", q->owner->pid, q->qpn,
			strerror(errno));
}

/* ---- queue pairs on two nodes ---- */

/* A remote pair's key: our QP's address and number. */
static uint64_t pw_vqp_key(const struct pw_vqp_reg *q)
{
	return (uint64_t)q->owner->verbs->addr << 32 | q->qpn;
}

static struct pw_vqp_reg *pw_vqp_by_key(uint64_t key)
{
	return pw_vqp_find((uint32_t)(key >> 32), (uint32_t)key);
}

/* The data connection of remote pair @q is there: its owner takes it. */
static void pw_vqp_remote_sock(struct pw_vqp_reg *q, int s)
{
	struct pw_wire_verbs_paired body = { .qpn = q->qpn, .peer_qpn = q->dest_qpn };
	int one = 1;

	/* Small messages each go at once: a verb's latency is the point. */
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (pw_msg_send(q->owner->fd, PW_MSG_VERBS_PAIRED_TCP, 0, &body, sizeof(body), NULL, 0, &s,
			1) < 0) {
		pw_warn("pid %d: cannot give QP %u its connection: %s", q->owner->pid, q->qpn,
			strerror(errno));
	} else {
		q->has_data = true;
		pw_vstats.remote_pairs++;
	}
	close(s);
}

/* The dialling side's connection (pw_peers_vqp_dial). */
static void pw_vqp_dialled(void *ctx, int s, uint64_t conn)
{
	struct pw_vqp_reg *q = ctx;

	(void)conn;
	if (s < 0) {
		pw_warn("QP %u: no data connection to QP %u on the other node: %s", q->qpn,
			q->dest_qpn, strerror(-s));
		return;
	}
	pw_vqp_remote_sock(q, s);
}

/* The accepting side's (pw_peers_expect). */
static void pw_vqp_accepted(uint64_t key, int s)
{
	struct pw_vqp_reg *q = pw_vqp_by_key(key);

	if (!q || !q->remote || !q->paired) {
		close(s); /* it went meanwhile */
		return;
	}
	pw_vqp_remote_sock(q, s);
}

/* Both sides of remote pair @q are at RTR. The lower (address, number)
 * dials the connection between the two processes; the other expects it. */
static void pw_vqp_pair_remote(struct pw_vqp_reg *q)
{
	uint32_t a = ntohl(q->owner->verbs->addr), b = ntohl(q->dest);

	q->paired = true;
	pw_dbg("QP %u (pid %d) and QP %u of the other node paired", q->qpn, q->owner->pid,
	       q->dest_qpn);
	if (a > b || (a == b && q->qpn > q->dest_qpn))
		return;
	struct pw_wire_peer_vqp v = { .src = q->owner->verbs->addr,
				      .src_qpn = q->qpn,
				      .dst = q->dest,
				      .dst_qpn = q->dest_qpn };
	int r = pw_peers_vqp_dial(&v, pw_vqp_dialled, q);
	if (r < 0)
		pw_warn("QP %u: cannot dial QP %u on the other node: %s", q->qpn, q->dest_qpn,
			strerror(-r));
}

int pw_verbs_peer_msg(struct pw_peer_link *l, const struct pw_wire_peer_vqp *v)
{
	struct sockaddr_in src = { .sin_family = AF_INET, .sin_addr.s_addr = v->src };
	struct sockaddr_in dst = { .sin_family = AF_INET, .sin_addr.s_addr = v->dst };
	struct pw_vqp_reg *q;

	/* From the peer's pods, about ours: anything else is dropped. */
	if (!pw_peer_link_has(l, &src) || !pw_peers_pod_has(&dst) || v->src_qpn > 0xffffffu ||
	    v->dst_qpn > 0xffffffu)
		return 0;
	q = pw_vqp_find(v->dst, v->dst_qpn);
	if (q && (!q->remote || q->dest != v->src || q->dest_qpn != v->src_qpn))
		q = NULL; /* ours points elsewhere (or nowhere yet) */
	switch (v->op) {
	case PW_PEER_VQP_UP: {
		struct pw_vqp_far *f = calloc(1, sizeof(*f));
		if (!f)
			return 0;
		*f = (struct pw_vqp_far){ .link = l,
					  .addr = v->src,
					  .qpn = v->src_qpn,
					  .dest = v->dst,
					  .dest_qpn = v->dst_qpn,
					  .next = pw_vfars };
		pw_vfars = f;
		if (q && !q->paired)
			pw_vqp_pair_remote(q);
		return 0;
	}
	case PW_PEER_VQP_DIAL:
		if (!q || !q->paired) {
			pw_dbg("a data connection for no QP of ours (%u): ignored", v->dst_qpn);
			return 0;
		}
		if (pw_peers_expect(l, &v->data, v->token, pw_vqp_accepted, pw_vqp_key(q)) < 0)
			pw_warn("QP %u: cannot expect its data connection", q->qpn);
		return 0;
	case PW_PEER_VQP_GONE:
		for (struct pw_vqp_far **pp = &pw_vfars; *pp;) {
			struct pw_vqp_far *f = *pp;
			if (f->addr == v->src && f->qpn == v->src_qpn) {
				*pp = f->next;
				free(f);
			} else {
				pp = &f->next;
			}
		}
		/* With their data connection, the owner learns from its end,
		 * which follows every answer the peer wrote: told now, it
		 * could fail a send whose ACK is still on the way (rping's
		 * last, when the client disconnects at once). */
		if (q && q->paired && q->has_data)
			q->paired = false;
		else if (q && q->paired)
			pw_vqp_tell_gone(q);
		return 0;
	default:
		return 0;
	}
}

void pw_verbs_link_lost(const struct pw_peer_link *l)
{
	for (struct pw_vqp_far **pp = &pw_vfars; *pp;) {
		struct pw_vqp_far *f = *pp;
		if (f->link == l) {
			*pp = f->next;
			free(f);
		} else {
			pp = &f->next;
		}
	}
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
	if (!pw_fd_is_eventfd(fds[0]))
		return -EBADF;
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
	/* Another node's pod: its router pairs them with us (PEER_VQP). */
	struct sockaddr_in d = { .sin_family = AF_INET, .sin_addr.s_addr = q->dest };
	struct pw_peer_link *l = NULL;
	if (pw_peers_enabled() && !pw_peers_pod_has(&d)) {
		l = pw_peer_route(&d);
		if (!l || body->dest_qpn > 0xffffffu) {
			q->dest = 0;
			return l ? -EINVAL : -ENETUNREACH;
		}
	}
	q->connected = true;
	q->remote = l != NULL;
	q->dest_qpn = body->dest_qpn;
	q->evfd = fds[0];
	fds[0] = -1; /* (kept) */
	r = pw_client_reply(c, m->seq, 0);
	if (r < 0)
		return r;
	if (l) {
		struct pw_wire_peer_vqp v = { .op = PW_PEER_VQP_UP,
					      .src = c->verbs->addr,
					      .src_qpn = q->qpn,
					      .dst = q->dest,
					      .dst_qpn = q->dest_qpn };
		if (pw_peer_link_send(l, PW_PEER_VQP, &v, sizeof(v), NULL, 0) < 0)
			pw_warn("QP %u: cannot tell the other node of it", q->qpn);
		for (const struct pw_vqp_far *f = pw_vfars; f; f = f->next)
			if (f->addr == q->dest && f->qpn == q->dest_qpn &&
			    f->dest == c->verbs->addr && f->dest_qpn == q->qpn) {
				pw_vqp_pair_remote(q);
				break;
			}
		return 0;
	}
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
	close(c->verbs->svc);
	free(c->verbs);
	c->verbs = NULL;
}
