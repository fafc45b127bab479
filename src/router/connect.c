// SPDX-License-Identifier: MIT
/*
 * Connection setup. CONNECT to a listener of this node: the router makes a
 * channel, puts end 1 in the listener's accept queue (listeners.c) and
 * answers the client with end 0; the server's accept() takes the queued
 * end. No kernel connection is made, and nothing waits. A destination no
 * listener of this node has may be a pod of another node (peer_conn.c): the
 * client then gets a kernel TCP socket connected to it directly, and the
 * other node's router puts its end in the server's queue
 * (pw_router_remote_*).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <podwire/chan.h>

#include "../common/addr.h"
#include "../common/log.h"
#include "../common/util.h"
#include "router.h"

/* A local client's connect (or pool ask) to another node's pod, waiting for
 * the peers. */
struct pw_rconnect {
	struct pw_client *c;
	uint32_t seq;
	int family; /* of the client's socket */
	struct sockaddr_in local, dst;
	struct sockaddr_in vip; /* a Service's ClusterIP:port, what the client sees; or dst */
	unsigned count;		/* a pool ask: connections asked for */
	struct pw_rconnect *next;
};

static struct pw_rconnect *pw_rconnects;

/* ---- connections with other nodes' pods ---- */

static void pw_rconnect_unlink(struct pw_rconnect *rc)
{
	for (struct pw_rconnect **pp = &pw_rconnects; *pp; pp = &(*pp)->next)
		if (*pp == rc) {
			*pp = rc->next;
			break;
		}
}

static void pw_rconnect_done(void *ctx, int sock, uint64_t conn)
{
	struct pw_rconnect *rc = ctx;
	char b1[PW_ADDR_STRLEN], b2[PW_ADDR_STRLEN];

	pw_rconnect_unlink(rc);
	if (sock >= 0) {
		struct pw_wire_conn body = { .id = conn, .side = 0 };
		pw_addr_to_wire(&rc->local, rc->family, &body.local);
		pw_addr_to_wire(&rc->vip, rc->family, &body.peer);
		if (pw_msg_send(rc->c->fd, PW_MSG_CONN_TCP, rc->seq, &body, sizeof(body), NULL, 0,
				&sock, 1) == 0) {
			pw_router_stats.remote++;
			pw_dbg("pid %d %s -> %s: direct over the underlay (remote conn %" PRIu64
			       ")",
			       rc->c->pid, pw_addr_format(&rc->local, b1),
			       pw_addr_format(&rc->dst, b2), conn);
		}
		close(sock);
	} else {
		pw_router_stats.fallbacks++;
		pw_client_reply_err(rc->c, rc->seq, -sock);
	}
	free(rc);
}

static int pw_rconnect_start(struct pw_client *c, uint32_t seq, int family,
			     const struct sockaddr_in *local, const struct sockaddr_in *dst,
			     const struct sockaddr_in *vip)
{
	struct pw_rconnect *rc = calloc(1, sizeof(*rc));
	int r;

	if (!rc)
		return -ENOMEM;
	rc->c = c;
	rc->seq = seq;
	rc->family = family;
	rc->local = *local;
	rc->dst = *dst;
	rc->vip = vip ? *vip : *dst;
	r = pw_peers_connect(local, dst, pw_rconnect_done, rc);
	if (r < 0) {
		free(rc);
		return r;
	}
	rc->next = pw_rconnects;
	pw_rconnects = rc;
	return 0;
}

void pw_rconnects_drop_client(const struct pw_client *c)
{
	for (struct pw_rconnect **pp = &pw_rconnects; *pp;) {
		struct pw_rconnect *rc = *pp;
		if (rc->c == c) {
			*pp = rc->next;
			pw_peers_cancel(rc);
			free(rc);
		} else {
			pp = &rc->next;
		}
	}
}

/*
 * Put @cn's server end (@fds, a message of @type) in the queue of @l, the
 * listener a connect from netns @cookie to @dst reaches (@hash chooses in a
 * group); one that closed meanwhile gives way to the next that reaches @dst.
 * -ECONNREFUSED: none is left; -EAGAIN: its queue is full.
 */
static int pw_conn_hand_over(struct pw_conn *cn, struct pw_listener *l, uint64_t cookie,
			     const struct sockaddr_in *dst, uint32_t hash, uint16_t type,
			     const void *extra, size_t elen, const int *fds, unsigned nfds)
{
	for (; l; l = pw_listener_pick(cookie, dst, hash)) {
		cn->fam[1] = l->family;
		/* Counted in the listener's backlog: channels only (as it counts). */
		cn->listener = type == PW_MSG_CONN ? l->serial : 0;
		struct pw_wire_conn body = pw_conn_body(cn, 1);
		int r = pw_listener_deliver(l, type, &body, extra, elen, fds, nfds);
		if (r != -EPIPE)
			return r;
	}
	return -ECONNREFUSED;
}

int pw_router_remote_conn(const struct sockaddr_in *src, const struct sockaddr_in *dst,
			  uint64_t *ret_id)
{
	char b1[PW_ADDR_STRLEN], b2[PW_ADDR_STRLEN];
	struct pw_conn *cn;

	if (pw_addr_is_loopback(dst) || pw_addr_is_loopback(src))
		return -EACCES;
	if (!pw_listener_pick(0, dst, ntohs(src->sin_port)))
		return -ECONNREFUSED;
	cn = pw_conn_new();
	if (!cn)
		return -ENOMEM;
	cn->remote = true;
	pw_addr_to_wire(src, AF_INET, &cn->addr[0]);
	pw_addr_to_wire(dst, AF_INET, &cn->addr[1]);
	pw_conn_insert(cn);
	pw_dbg("conn %" PRIu64 ": %s (another node) -> %s, waiting for its data connection", cn->id,
	       pw_addr_format(src, b1), pw_addr_format(dst, b2));
	*ret_id = cn->id;
	return 0;
}

void pw_router_remote_data(uint64_t id, int sock)
{
	struct pw_conn *cn = pw_conn_by_id(id);
	struct sockaddr_in src, dst;
	int r;

	if (!cn || !cn->remote) {
		pw_close(sock);
		return;
	}
	pw_addr_from_wire(&cn->addr[0], &src, NULL);
	pw_addr_from_wire(&cn->addr[1], &dst, NULL);
	/* The listener may have closed since; another may take it. */
	r = pw_conn_hand_over(cn, pw_listener_pick(0, &dst, ntohs(src.sin_port)), 0, &dst,
			      ntohs(src.sin_port), PW_MSG_CONN_TCP, NULL, 0, &sock, 1);
	if (r == 0) {
		pw_router_stats.claims++;
		pw_dbg("conn %" PRIu64 ": handed to the listener (direct from another node)",
		       cn->id);
	} else {
		/* The client reads a reset, as from a port nobody listens on. */
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };
		setsockopt(sock, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	pw_close(sock);
	pw_conn_remove(cn);
}

void pw_router_remote_drop(uint64_t id)
{
	struct pw_conn *cn = pw_conn_by_id(id);

	if (cn && cn->remote)
		pw_conn_remove(cn);
}

/* ---- CONNECT ---- */

/*
 * The source address the kernel would choose for @dst in the namespace of
 * the client's socket @fd (netns @cookie). Asking costs two setns(2) and a
 * socket, and a client connects to the same few destinations over and over:
 * the answer is kept for a second. It only names the client's own address
 * to itself and to the server (getsockname, getpeername).
 */
#define PW_SOURCE_CACHE	 64u
#define PW_SOURCE_TTL_NS 1000000000ull

static struct pw_source_entry {
	uint64_t cookie, expires;
	struct in_addr dst, src;
} pw_source_cache[PW_SOURCE_CACHE];

static int pw_connect_source(int fd, uint64_t cookie, const struct sockaddr_in *dst,
			     struct in_addr *ret)
{
	struct pw_source_entry *e =
		&pw_source_cache[(cookie * 0x9e3779b97f4a7c15ull ^ dst->sin_addr.s_addr) %
				 PW_SOURCE_CACHE];
	uint64_t now = pw_now_ns();
	struct sockaddr_in src;
	int ns, r;

	if (e->cookie == cookie && e->dst.s_addr == dst->sin_addr.s_addr && now < e->expires) {
		*ret = e->src;
		return 0;
	}
	ns = pw_sock_netns(fd);
	if (ns < 0)
		return ns;
	r = pw_netns_source(ns, dst, &src);
	close(ns);
	if (r < 0)
		return r;
	*ret = src.sin_addr;
	*e = (struct pw_source_entry){ .cookie = cookie,
				       .expires = now + PW_SOURCE_TTL_NS,
				       .dst = dst->sin_addr,
				       .src = src.sin_addr };
	return 0;
}

/*
 * The connection of @c (socket family @family, netns @cookie) from @local to
 * @dst, a listener of this node: make the channel, queue end 1 for the
 * server's accept() and answer CONN with end 0. -ECONNREFUSED: no listener
 * takes it.
 */
static int pw_connect_local(struct pw_client *c, uint32_t seq, int family,
			    const struct sockaddr_in *local, const struct sockaddr_in *dst,
			    const struct sockaddr_in *vip, uint64_t cookie)
{
	int memfd = -1, sv[2] = { -1, -1 }, r;
	char b1[PW_ADDR_STRLEN], b2[PW_ADDR_STRLEN];
	uint32_t hash = ntohs(local->sin_port);
	struct pw_listener *l = pw_listener_pick(cookie, dst, hash);
	struct pw_conn *cn = NULL;
	struct pw_chan_ids ids;

	if (!l)
		return -ECONNREFUSED;
	cn = pw_conn_new();
	if (!cn)
		return -ENOMEM;
	/* Within the connecting pod's limits, or the kernel's path. */
	r = pw_conn_charge(cn, cookie);
	if (r < 0)
		goto fail;
	r = pw_conn_chan_make(cn->ring_size, &memfd, sv, &ids);
	if (r < 0)
		goto fail;
	cn->pid[0] = c->pid;
	pw_addr_to_wire(local, AF_INET, &cn->addr[0]);
	pw_addr_to_wire(dst, AF_INET, &cn->addr[1]);
	if (vip) {
		cn->has_vip = true;
		pw_addr_to_wire(vip, AF_INET, &cn->vip);
	}
	cn->fam[0] = family;
	cn->sock_ino[0] = ids.ino[0];
	cn->sock_ino[1] = ids.ino[1];
	cn->sock_dev = ids.dev;

	/* The server's end first: a client told "connected" has a server. */
	int fds[2] = { memfd, sv[1] };
	r = pw_conn_hand_over(cn, l, cookie, dst, hash, PW_MSG_CONN, NULL, 0, fds, 2);
	if (r < 0)
		goto fail;
	sv[1] = pw_close(sv[1]);
	cn->memfd = memfd;
	memfd = -1;
	pw_conn_insert(cn);

	struct pw_wire_conn body = pw_conn_body(cn, 0);
	fds[0] = cn->memfd;
	fds[1] = sv[0];
	r = pw_msg_send(c->fd, PW_MSG_CONN, seq, &body, sizeof(body), NULL, 0, fds, 2);
	pw_close(sv[0]);
	if (r < 0)
		return r; /* the client is gone: the server reads an empty stream */
	pw_router_stats.accelerated++;
	pw_router_stats.claims++;
	pw_dbg("conn %" PRIu64 ": pid %d %s -> %s, in the listener's queue", cn->id, c->pid,
	       pw_addr_format(local, b1), pw_addr_format(dst, b2));
	return 0;
fail:
	pw_conn_free(cn);
	pw_close(memfd);
	pw_close(sv[0]);
	pw_close(sv[1]);
	return r;
}

int pw_request_connect(struct pw_client *c, const struct pw_msg *m, int fds[PW_WIRE_MAX_FDS])
{
	struct sockaddr_in local, dst = { 0 }, vip;
	bool svc;
	char b[PW_ADDR_STRLEN];
	uint64_t cookie;
	int fd = fds[0], r;

	pw_router_stats.connects++;
	int family = pw_sock_check_tcp(fd, 0);
	if (family < 0)
		return family;
	if (pw_addr_from_wire(&m->u.connect.peer, &dst, NULL) < 0 ||
	    pw_addr_from_wire(&m->u.connect.local, &local, NULL) < 0) {
		r = -EAFNOSUPPORT;
		goto fail;
	}
	if (pw_sock_cookie(fd, &cookie) < 0) {
		r = -errno;
		goto fail;
	}
	/* The client's address as the server will see it: for a socket bound
	 * to any address, the source the kernel would choose, and its port. */
	if (local.sin_addr.s_addr == htonl(INADDR_ANY)) {
		r = pw_connect_source(fd, cookie, &dst, &local.sin_addr);
		if (r < 0)
			goto fail;
	}
	/* A Service's ClusterIP: one of its backends, as kube-proxy would pick. */
	r = pw_svc_resolve(&local, &dst, &vip);
	if (r < 0)
		goto fail; /* no endpoints: the kernel's way refuses it too */
	svc = r > 0;
	r = pw_connect_local(c, m->seq, family, &local, &dst, svc ? &vip : NULL, cookie);
	if (r == 0)
		return 0;
	/* Not a pod of this node: perhaps of another's. */
	if (r == -ECONNREFUSED && pw_peers_enabled() && !pw_addr_is_loopback(&dst) &&
	    pw_rconnect_start(c, m->seq, family, &local, &dst, svc ? &vip : NULL) == 0)
		return PW_REQUEST_LATER;
fail:
	pw_router_stats.fallbacks++;
	pw_dbg("pid %d connect to %s: kernel path (%s)", c->pid, pw_addr_format(&dst, b),
	       strerror(-r));
	return r;
}

/* ---- POOL ---- */

/* Pooled connections one pod (netns) may ask for in a second: above what
 * one pod connects at here (host to host: about 11k a second), so that a
 * pod that asks for more, PW_POOL_MAX to a message, only has the routers dial for
 * nothing so fast. */
#define PW_POOL_RATE 16384u
#define PW_POOL_PODS 64u

static struct pw_pool_budget {
	uint64_t cookie, since;
	uint32_t asked;
} pw_pool_budgets[PW_POOL_PODS];

/* Charge @n pooled connections to the pod in netns @cookie: false if its
 * budget for this second is spent. */
static bool pw_pool_budget_take(uint64_t cookie, uint32_t n)
{
	struct pw_pool_budget *b = NULL, *oldest = &pw_pool_budgets[0];
	uint64_t now = pw_now_ns();

	for (unsigned i = 0; i < PW_POOL_PODS && !b; i++) {
		if (pw_pool_budgets[i].cookie == cookie)
			b = &pw_pool_budgets[i];
		else if (pw_pool_budgets[i].since < oldest->since)
			oldest = &pw_pool_budgets[i];
	}
	if (!b) {
		b = oldest;
		*b = (struct pw_pool_budget){ .cookie = cookie, .since = now };
	}
	if (now - b->since >= 1000000000u) {
		b->since = now;
		b->asked = 0;
	}
	if (b->asked + n > PW_POOL_RATE) {
		pw_router_stats.limit_pool++;
		return false;
	}
	b->asked += n;
	return true;
}

/* The peers answered pool ask @ctx: one CONN_POOL with the connections, an
 * ERR for each asked for and not there. */
static void pw_pool_asked(void *ctx, int got, const int socks[],
			  const struct pw_wire_pool_token toks[])
{
	struct pw_rconnect *rc = ctx;
	char b[PW_ADDR_STRLEN];
	unsigned n = 0;
	int err = got < 0 ? -got : EAGAIN;

	pw_rconnect_unlink(rc);
	if (got > 0) {
		/* Their local port is each token's: 0 in what they share. */
		struct pw_wire_conn_pool body = { .conn.side = 0, .count = (uint32_t)got };
		struct sockaddr_in src = rc->local;

		src.sin_port = 0;
		pw_addr_to_wire(&src, rc->family, &body.conn.local);
		pw_addr_to_wire(&rc->dst, rc->family, &body.conn.peer);
		if (pw_msg_send(rc->c->fd, PW_MSG_CONN_POOL, rc->seq, &body, sizeof(body), toks,
				(size_t)got * sizeof(toks[0]), socks, (unsigned)got) == 0) {
			n = (unsigned)got;
			pw_dbg("pid %d: %u pooled connection(s) to %s", rc->c->pid, n,
			       pw_addr_format(&rc->dst, b));
		}
		for (int i = 0; i < got; i++)
			close(socks[i]);
	}
	/* One answer per connection asked for: the rest are errors. */
	for (; n < rc->count; n++)
		if (pw_client_reply_err(rc->c, rc->seq, err) < 0)
			break;
	free(rc);
}

int pw_request_pool(struct pw_client *c, const struct pw_msg *m, int fds[PW_WIRE_MAX_FDS])
{
	struct sockaddr_in local = { .sin_family = AF_INET }, dst;
	uint32_t count = m->u.pool.count;
	uint64_t cookie;
	int r;

	int family = pw_sock_check_tcp(fds[0], 0);
	if (family < 0)
		return family;
	if (count == 0 || count > PW_POOL_MAX || pw_addr_from_wire(&m->u.pool.peer, &dst, NULL) < 0)
		return -EINVAL;
	if (pw_sock_cookie(fds[0], &cookie) < 0)
		return -errno;
	if (!pw_pool_budget_take(cookie, count))
		return -EAGAIN;
	/* Only to another node's pod: a listener here is for a channel; a
	 * Service's backend is chosen connect by connect. */
	if (!pw_peers_enabled() || pw_addr_is_loopback(&dst) || pw_listener_pick(cookie, &dst, 0) ||
	    pw_svc_is(&dst))
		return -ENETUNREACH;
	r = pw_connect_source(fds[0], cookie, &dst, &local.sin_addr);
	if (r < 0)
		return r;
	struct pw_rconnect *rc = calloc(1, sizeof(*rc));
	if (!rc)
		return -ENOMEM;
	*rc = (struct pw_rconnect){ .c = c,
				    .seq = m->seq,
				    .family = family,
				    .local = local,
				    .dst = dst,
				    .vip = dst,
				    .count = count };
	r = pw_peers_pool_ask(&local, &dst, count, pw_pool_asked, rc);
	if (r < 0) {
		free(rc);
		return r;
	}
	rc->next = pw_rconnects;
	pw_rconnects = rc;
	return PW_REQUEST_LATER;
}
