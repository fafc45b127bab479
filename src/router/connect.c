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

/* The source address the kernel would choose for @dst in the namespace of
 * the client's socket @fd. */
static int pw_connect_source(int fd, const struct sockaddr_in *dst, struct in_addr *ret)
{
	struct sockaddr_in src;
	int ns, r;

	ns = pw_sock_netns(fd);
	if (ns < 0)
		return ns;
	r = pw_netns_source(ns, dst, &src);
	close(ns);
	if (r == 0)
		*ret = src.sin_addr;
	return r;
}

/*
 * The connection of @c (socket family @family) from @local to @dst, a pod of
 * this node: @tcp is the router's end of the pod-local connection to its
 * listener in netns @srv_cookie (taken). Makes the channel, answers CONN with
 * end 0 and keeps end 1 for the server's CLAIM.
 */
static int pw_connect_local(struct pw_client *c, uint32_t seq, int family,
			    const struct sockaddr_in *local, const struct sockaddr_in *dst, int tcp,
			    uint64_t srv_cookie)
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
	r = pw_conn_chan_make(&memfd, sv);
	if (r < 0)
		goto fail;
	cn = pw_conn_new();
	if (!cn) {
		r = -ENOMEM;
		goto fail;
	}
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

int pw_request_connect(struct pw_client *c, const struct pw_msg *m, int fds[PW_WIRE_MAX_FDS])
{
	struct sockaddr_in local, dst;
	uint64_t cookie, srv_cookie = 0;
	char b[PW_ADDR_STRLEN];
	int fd = fds[0], tcp, r;

	pw_router_stats.connects++;
	int family = pw_sock_check_tcp(fd, 0);
	if (family < 0)
		return family;
	if (pw_addr_from_wire(&m->u.connect.peer, &dst, NULL) < 0 ||
	    pw_addr_from_wire(&m->u.connect.local, &local, NULL) < 0)
		return -EAFNOSUPPORT;
	if (pw_sock_cookie(fd, &cookie) < 0)
		return -errno;

	/* The client's address as the server will see it: for a socket bound
	 * to any address, the source the kernel would choose, and its port. */
	if (local.sin_addr.s_addr == htonl(INADDR_ANY)) {
		r = pw_connect_source(fd, &dst, &local.sin_addr);
		if (r < 0)
			goto fail;
	}
	tcp = pw_listeners_connect(cookie, &dst, &srv_cookie);
	if (tcp == -ECONNREFUSED && pw_peers_enabled() && !pw_addr_is_loopback(&dst)) {
		/* Not a pod of this node: perhaps of another's. */
		if (pw_rconnect_start(c, m->seq, family, &local, &dst) == 0)
			return PW_REQUEST_LATER; /* answered when the peer has */
	}
	r = tcp < 0 ? tcp : pw_connect_local(c, m->seq, family, &local, &dst, tcp, srv_cookie);
	if (r == 0)
		return 0;
fail:
	pw_router_stats.fallbacks++;
	pw_dbg("pid %d connect to %s: kernel path (%s)", c->pid, pw_addr_format(&dst, b),
	       strerror(-r));
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
