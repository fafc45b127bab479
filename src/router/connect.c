// SPDX-License-Identifier: MIT
/*
 * Connection setup. CONNECT: the router connects to the destination's
 * listener inside the listener's network namespace, as the client would
 * have, and hands the client a channel; the server's accept() returns that
 * pod-local connection, and its CLAIM, matched by address, gets the other
 * end of the channel. A destination no listener of this node has may be a
 * pod of another node (peer_conn.c): the client then gets a kernel TCP socket
 * connected to it directly, and the other node's router hands its end to
 * the server that accepts (pw_router_remote_*).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <podwire/chan.h>

#include "../common/addr.h"
#include "../common/log.h"
#include "../common/util.h"
#include "router.h"

/* A local client's connect to another node's pod, waiting for the peers. */
struct pw_rconnect {
	struct pw_client *c;
	uint32_t seq;
	int family; /* of the client's socket */
	struct sockaddr_in local, dst;
	struct pw_rconnect *next;
};

static struct pw_rconnect *pw_rconnects;

/* Connect to a listener that can take a connection to @dst from netns
 * @cookie; returns the connected socket and the listener's netns cookie. */
static int pw_listeners_connect(uint64_t cookie, const struct sockaddr_in *dst,
				uint64_t *ret_cookie)
{
	int last = -ECONNREFUSED;

	for (struct pw_listener *l = pw_listener_next(NULL, cookie, dst); l;
	     l = pw_listener_next(l, cookie, dst)) {
		int s = pw_netns_connect(l->netns, dst);
		if (s >= 0) {
			*ret_cookie = l->cookie;
			return s;
		}
		last = s;
	}
	return last;
}

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
		pw_addr_to_wire(&rc->dst, rc->family, &body.peer);
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
			     const struct sockaddr_in *local, const struct sockaddr_in *dst)
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

int pw_router_remote_conn(const struct sockaddr_in *src, const struct sockaddr_in *dst,
			  uint64_t *ret_id)
{
	struct sockaddr_in router_end;
	socklen_t len = sizeof(router_end);
	uint64_t srv_cookie = 0;
	struct pw_conn *cn;
	char b1[PW_ADDR_STRLEN], b2[PW_ADDR_STRLEN];
	int tcp, r;

	if (pw_addr_is_loopback(dst) || pw_addr_is_loopback(src))
		return -EACCES;
	tcp = pw_listeners_connect(0, dst, &srv_cookie);
	if (tcp < 0)
		return tcp;
	if (getsockname(tcp, (struct sockaddr *)&router_end, &len) < 0) {
		r = -errno;
		close(tcp);
		return r;
	}
	cn = pw_conn_new();
	if (!cn) {
		close(tcp);
		return -ENOMEM;
	}
	cn->remote = true;
	cn->srv_cookie = srv_cookie;
	cn->router_end = router_end;
	cn->tcp = tcp;
	pw_addr_to_wire(src, AF_INET, &cn->addr[0]);
	pw_addr_to_wire(dst, AF_INET, &cn->addr[1]);
	pw_loop_add(tcp, EPOLLRDHUP, &cn->ev);
	pw_conn_insert(cn);
	pw_dbg("conn %" PRIu64 ": %s (another node) -> %s, waiting for accept", cn->id,
	       pw_addr_format(src, b1), pw_addr_format(dst, b2));
	*ret_id = cn->id;
	return 0;
}

/* Hand the data connection to the server that accepted; the connection is
 * then none of our business. */
static int pw_remote_conn_give(struct pw_conn *cn, struct pw_client *c, uint32_t seq)
{
	struct pw_wire_conn body = pw_conn_body(cn, 1);
	int r = pw_msg_send(c->fd, PW_MSG_CONN_TCP, seq, &body, sizeof(body), NULL, 0, &cn->data,
			    1);

	if (r == 0) {
		pw_router_stats.claims++;
		pw_dbg("conn %" PRIu64 ": accepted by pid %d (direct from another node)", cn->id,
		       c->pid);
	}
	return r;
}

void pw_router_remote_data(uint64_t id, int sock)
{
	struct pw_conn *cn = pw_conn_by_id(id);

	if (!cn || !cn->remote || cn->data >= 0) {
		close(sock);
		return;
	}
	cn->data = sock;
	if (cn->claimer) {
		if (pw_remote_conn_give(cn, cn->claimer, cn->claim_seq) < 0)
			pw_client_reply_err(cn->claimer, cn->claim_seq, EIO);
		pw_conn_remove(cn);
	}
}

void pw_router_remote_drop(uint64_t id)
{
	struct pw_conn *cn = pw_conn_by_id(id);

	if (!cn || !cn->remote)
		return;
	if (cn->claimer)
		pw_client_reply_err(cn->claimer, cn->claim_seq, ECONNRESET);
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
 * The connection of @c (socket family @family) from @local to @dst, a pod of
 * this node: @tcp is the router's end of the pod-local connection to its
 * listener in netns @srv_cookie (taken). Makes the channel, answers CONN with
 * end 0 and keeps end 1 for the server's CLAIM.
 */
static int pw_connect_local(struct pw_client *c, uint32_t seq, int family,
			    const struct sockaddr_in *local, const struct sockaddr_in *dst, int tcp,
			    uint64_t srv_cookie, uint64_t cli_cookie)
{
	int memfd = -1, sv[2] = { -1, -1 }, r;
	char b1[PW_ADDR_STRLEN], b2[PW_ADDR_STRLEN];
	struct sockaddr_in router_end;
	socklen_t len = sizeof(router_end);
	struct pw_conn *cn = NULL;
	struct stat st0, st1;

	if (getsockname(tcp, (struct sockaddr *)&router_end, &len) < 0) {
		r = -errno;
		goto fail;
	}
	cn = pw_conn_new();
	if (!cn) {
		r = -ENOMEM;
		goto fail;
	}
	/* Within the connecting pod's limits, or the kernel's path. */
	r = pw_conn_charge(cn, cli_cookie);
	if (r < 0)
		goto fail;
	r = pw_conn_chan_make(&memfd, sv);
	if (r < 0)
		goto fail;
	cn->router_end = router_end;
	cn->srv_cookie = srv_cookie;
	cn->pid[0] = c->pid;
	pw_addr_to_wire(local, AF_INET, &cn->addr[0]);
	pw_addr_to_wire(dst, AF_INET, &cn->addr[1]);
	cn->fam[0] = family;
	if (fstat(sv[0], &st0) == 0 && fstat(sv[1], &st1) == 0) {
		cn->sock_ino[0] = st0.st_ino;
		cn->sock_ino[1] = st1.st_ino;
		cn->sock_dev = st0.st_dev;
	}
	pw_conn_chan_watch(cn, memfd);

	struct pw_wire_conn body = pw_conn_body(cn, 0);
	int fds[2] = { memfd, sv[0] };
	r = pw_msg_send(c->fd, PW_MSG_CONN, seq, &body, sizeof(body), NULL, 0, fds, 2);
	if (r < 0)
		goto fail;
	pw_close(sv[0]);
	cn->tcp = tcp;
	cn->memfd = memfd;
	cn->srv_sock = sv[1];
	/* If the server side closes the connection unclaimed, give up on it. */
	pw_loop_add(tcp, EPOLLRDHUP, &cn->ev);
	pw_conn_insert(cn);
	pw_router_stats.accelerated++;
	pw_dbg("conn %" PRIu64 ": pid %d %s -> %s, waiting for accept", cn->id, c->pid,
	       pw_addr_format(local, b1), pw_addr_format(dst, b2));
	return 0;
fail:
	if (cn)
		pw_conn_free(cn); /* holds no fd yet */
	pw_close(memfd);
	pw_close(sv[0]);
	pw_close(sv[1]);
	pw_close(tcp);
	return r;
}

/*
 * A client's connect to a listener of this node, under way. The router's
 * connect inside the listener's namespace never blocks the loop: a
 * listener whose backlog is full (its process stopped, or slow) makes the
 * handshake wait, and every other pod's connection setup with it. The
 * candidates are tried in turn, each for at most PW_LCONNECT_NS.
 */
#define PW_LCONNECT_NS (200ull * 1000000u)

struct pw_lconnect {
	struct pw_ev ev; /* first: the loop's handle on sock */
	struct pw_client *c;
	uint32_t seq;
	int family; /* of the client's socket */
	struct sockaddr_in local, dst;
	uint64_t cookie;     /* the client's netns */
	uint64_t srv_cookie; /* the netns of the listener being tried */
	unsigned tried;	     /* candidates tried so far */
	int sock;	     /* the attempt under way, or -1 */
	int err;	     /* why the last attempt failed */
	uint64_t deadline;
	struct pw_lconnect *next;
};

static struct pw_lconnect *pw_lconnects;

static void pw_lconnect_free(struct pw_lconnect *lc)
{
	for (struct pw_lconnect **pp = &pw_lconnects; *pp; pp = &(*pp)->next)
		if (*pp == lc) {
			*pp = lc->next;
			break;
		}
	if (lc->sock >= 0) {
		pw_loop_del(lc->sock, &lc->ev);
		close(lc->sock);
	}
	free(lc);
}

/* Start on the next candidate listener: 0 connected (lc->sock), 1 under way,
 * or -errno when none is left. */
static int pw_lconnect_next(struct pw_lconnect *lc)
{
	unsigned skip = lc->tried;

	for (struct pw_listener *l = pw_listener_next(NULL, lc->cookie, &lc->dst); l;
	     l = pw_listener_next(l, lc->cookie, &lc->dst)) {
		if (skip) {
			skip--;
			continue;
		}
		lc->tried++;
		int r = pw_listener_socket(l);
		if (r >= 0) {
			lc->sock = r;
			r = pw_netns_connect_start(lc->sock, &lc->dst);
			if (r < 0 && r != -EINPROGRESS)
				lc->sock = pw_close(lc->sock);
		}
		if (r == 0 || r == -EINPROGRESS) {
			lc->srv_cookie = l->cookie;
			if (r == 0)
				return 0;
			lc->deadline = pw_now_ns() + PW_LCONNECT_NS;
			if (pw_loop_add(lc->sock, EPOLLOUT, &lc->ev) == 0)
				return 1;
			r = -errno;
			lc->sock = pw_close(lc->sock);
		}
		lc->err = r;
	}
	return lc->err;
}

/* The connect is over: connected (lc->sock) if @r is 0. Answers the client
 * and frees @lc. */
static void pw_lconnect_end(struct pw_lconnect *lc, int r)
{
	char b[PW_ADDR_STRLEN];
	int sock = lc->sock;

	if (r == 0) {
		pw_loop_del(sock, &lc->ev);
		lc->sock = -1;
		/* Takes sock, also on failure. */
		r = pw_connect_local(lc->c, lc->seq, lc->family, &lc->local, &lc->dst, sock,
				     lc->srv_cookie, lc->cookie);
	} else if (r == -ECONNREFUSED && pw_peers_enabled() && !pw_addr_is_loopback(&lc->dst) &&
		   pw_rconnect_start(lc->c, lc->seq, lc->family, &lc->local, &lc->dst) == 0) {
		pw_lconnect_free(lc); /* not a pod of this node: perhaps of another's */
		return;
	}
	if (r < 0) {
		pw_router_stats.fallbacks++;
		pw_dbg("pid %d connect to %s: kernel path (%s)", lc->c->pid,
		       pw_addr_format(&lc->dst, b), strerror(-r));
		pw_client_reply_err(lc->c, lc->seq, -r);
	}
	pw_lconnect_free(lc);
}

/* The attempt under way failed with @err: the next candidate, or the end. */
static void pw_lconnect_retry(struct pw_lconnect *lc, int err)
{
	pw_loop_del(lc->sock, &lc->ev);
	lc->sock = pw_close(lc->sock);
	lc->err = err;
	int r = pw_lconnect_next(lc);
	if (r != 1)
		pw_lconnect_end(lc, r);
}

static void pw_lconnect_event(struct pw_ev *ev, uint32_t events)
{
	struct pw_lconnect *lc = (struct pw_lconnect *)ev;
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(lc->sock, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err)
		pw_lconnect_retry(lc, -err);
	else
		pw_lconnect_end(lc, 0);
}

void pw_lconnects_tick(uint64_t now)
{
	for (struct pw_lconnect *lc = pw_lconnects, *next; lc; lc = next) {
		next = lc->next;
		if (lc->sock >= 0 && now >= lc->deadline)
			pw_lconnect_retry(lc, -ETIMEDOUT);
	}
}

void pw_lconnects_drop_client(const struct pw_client *c)
{
	for (struct pw_lconnect *lc = pw_lconnects, *next; lc; lc = next) {
		next = lc->next;
		if (lc->c == c)
			pw_lconnect_free(lc);
	}
}

int pw_request_connect(struct pw_client *c, const struct pw_msg *m, int fds[PW_WIRE_MAX_FDS])
{
	struct pw_lconnect *lc;
	int fd = fds[0], r;

	pw_router_stats.connects++;
	int family = pw_sock_check_tcp(fd, 0);
	if (family < 0)
		return family;
	lc = calloc(1, sizeof(*lc));
	if (!lc)
		return -ENOMEM;
	*lc = (struct pw_lconnect){ .ev.fn = pw_lconnect_event,
				    .c = c,
				    .seq = m->seq,
				    .family = family,
				    .sock = -1,
				    .err = -ECONNREFUSED };
	if (pw_addr_from_wire(&m->u.connect.peer, &lc->dst, NULL) < 0 ||
	    pw_addr_from_wire(&m->u.connect.local, &lc->local, NULL) < 0) {
		r = -EAFNOSUPPORT;
		goto fail;
	}
	if (pw_sock_cookie(fd, &lc->cookie) < 0) {
		r = -errno;
		goto fail;
	}
	/* The client's address as the server will see it: for a socket bound
	 * to any address, the source the kernel would choose, and its port. */
	if (lc->local.sin_addr.s_addr == htonl(INADDR_ANY)) {
		r = pw_connect_source(fd, lc->cookie, &lc->dst, &lc->local.sin_addr);
		if (r < 0)
			goto fail;
	}
	lc->next = pw_lconnects;
	pw_lconnects = lc;
	r = pw_lconnect_next(lc);
	if (r == 1)
		return PW_REQUEST_LATER;
	pw_lconnect_end(lc, r);
	return 0;
fail:
	pw_router_stats.fallbacks++;
	free(lc);
	return r;
}

/* ---- CLAIM ---- */

/* A server's accept() returned the connection the router made: the channel's
 * other end, or the data connection from another node. */
int pw_request_claim(struct pw_client *c, const struct pw_msg *m, int fds[PW_WIRE_MAX_FDS])
{
	struct sockaddr_in peer;
	uint64_t cookie;
	int family = pw_sock_check_tcp(fds[0], 0);
	int r;

	if (family < 0)
		return family;
	if (pw_sock_cookie(fds[0], &cookie) < 0)
		return -errno;
	r = pw_sock_addr4(fds[0], true, &peer);
	if (r < 0)
		return r;
	struct pw_conn *cn = pw_conn_by_router_end(cookie, &peer);
	if (!cn) {
		pw_router_stats.claim_misses++;
		return -ENOENT;
	}
	if (cn->remote) {
		if (cn->claimer)
			return -EBUSY;
		cn->fam[1] = family;
		if (cn->data < 0) {
			/* The data connection is still on its way. */
			cn->claimer = c;
			cn->claim_seq = m->seq;
			return PW_REQUEST_LATER;
		}
		r = pw_remote_conn_give(cn, c, m->seq);
		if (r == 0)
			pw_conn_remove(cn);
		return r;
	}
	cn->fam[1] = family;
	struct pw_wire_conn body = pw_conn_body(cn, 1);
	int cfds[2] = { cn->memfd, cn->srv_sock };
	r = pw_msg_send(c->fd, PW_MSG_CONN, m->seq, &body, sizeof(body), NULL, 0, cfds, 2);
	if (r < 0)
		return r;
	cn->pid[1] = c->pid;
	cn->state = PW_CONN_OPEN;
	pw_conn_unpend(cn);
	pw_router_stats.claims++;
	pw_dbg("conn %" PRIu64 ": accepted by pid %d", cn->id, c->pid);
	return 0;
}
