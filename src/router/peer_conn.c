// SPDX-License-Identifier: MIT
/*
 * Cross-node connections, over the authenticated links of peer_link.c.
 *
 * A cross-node connect: the client's router (A) binds a data socket on its
 * underlay address and sends CONNECT(src, dst, data address, token) to the
 * router (B) that advertises dst. B connects to the pod's listener, as for a
 * local client, remembers (data address, token) and answers CONNECT_OK. A
 * connects the data socket to B and writes the token; with CONNECT_OK it
 * hands the socket to the client. B accepts it, matches its source address,
 * reads and checks the token, and gives the socket to the server when it
 * accepts. From then on the two pods talk over plain TCP between the nodes:
 * no overlay, no NAT, no router on the path.
 *
 * A dials the data connection as soon as the CONNECT is on the wire, not
 * after the answer: one underlay round trip instead of two. The CONNECT
 * reaches B first (sent first, on the same path), and the data connection is
 * acceptable only a round trip later, so B has it by then; if B's loop has
 * not read it yet, it reads its links before it decides what an
 * unannounced connection is (peer_link.c). Should B refuse, A closes the
 * data socket and B drops what it accepted.
 *
 * Pools (docs/FEDERATION.md, "Pools"): A asks B where the listener of dst
 * takes pooled connections (POOL); B answers with the port of the
 * listener's own socket on its underlay address and the listener's key
 * (POOL_OK). A makes the sockets, each connected there with TCP Fast Open
 * deferred (TCP_FASTOPEN_CONNECT: no packet yet), and a token that names
 * its client, sealed with that key, and hands them to its client. No router
 * has a part in them after that: connect() writes the token, the kernel
 * sends it in the SYN, and the server's kernel makes the connection
 * acceptable at once, with the token in it (TCP_FASTOPEN, no cookie); the
 * server's library accepts it and checks the seal. The client's pod only
 * ever holds sockets connected to where its router chose.
 *
 * Here: A's connects and pool asks in flight (struct pw_peer_out) and B's
 * expected data connections (struct pw_peer_expect).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include <podwire/wire.h>

#include "../common/addr.h"
#include "../common/log.h"
#include "../common/util.h"
#include "router.h"

#define PW_PEER_CONNECT_NS (800ull * 1000000u) /* the client gives up at 1 s */
#define PW_PEER_EXPECT_NS  (5ull * 1000000000u)
#define PW_PEER_REFUSED_NS (1ull * 1000000000u)

/* Where the SYN cannot carry the token (Fast Open off on the client's node),
 * the handshake comes first, and the kernel holds the connection from
 * accept() until the token follows (TCP_DEFER_ACCEPT, s). */
#define PW_POOL_DEFER_S 30

/* Our connect in flight to another node. */
struct pw_peer_out {
	struct pw_ev ev; /* pw_peer_out_event, once the data socket connects */
	uint64_t req;
	struct pw_peer_link *link; /* NULL once the CONNECT is answered or the link died */
	int data;
	uint8_t token[PW_PEER_TOKEN_LEN];
	struct sockaddr_in src, dst;
	uint64_t conn;
	uint64_t deadline_ns;
	bool dialed;   /* the data socket's connect() was called */
	bool answered; /* CONNECT_OK came */
	bool ready;    /* the data socket connected and carries the token */
	pw_peers_done_fn done;
	unsigned npool;		    /* a pool ask for this many (no data socket), or 0 */
	pw_peers_pool_fn pool_done; /* and its answer */
	void *ctx;
	struct pw_peer_out *next;
};

/* Another node's data connection we were told to expect. */
struct pw_peer_expect {
	struct pw_ev ev; /* pw_peer_expect_event, once accepted */
	struct sockaddr_in from;
	uint8_t token[PW_PEER_TOKEN_LEN];
	uint8_t got[PW_PEER_TOKEN_LEN];
	size_t ngot;
	uint64_t conn;
	uint64_t deadline_ns;
	int fd;
	bool refused;	       /* we said CONNECT_ERR: close it quietly if it comes */
	pw_peers_expect_fn fn; /* not a connection to a listener: fn(conn, socket) */
	struct pw_peer_expect *next;
};

static struct {
	struct pw_peer_out *outs;
	struct pw_peer_expect *expects;
	uint64_t next_req;

	/* counters for the metrics */
	uint64_t n_out, n_out_ok, n_out_fail, n_in, n_in_ok, n_in_bad;
	uint64_t n_pool_out, n_pool_in; /* dialled for pools; granted to other nodes */
} pw_peer_conns;

static void pw_peer_out_event(struct pw_ev *ev, uint32_t events);
static void pw_peer_expect_event(struct pw_ev *ev, uint32_t events);

/* ---- connects to other nodes ---- */

static void pw_peer_out_free(struct pw_peer_out *o);

/* Connect @o's data socket to B's data address @to. */
static int pw_peer_out_dial(struct pw_peer_out *o, const struct sockaddr_in *to)
{
	if (connect(o->data, (const struct sockaddr *)to, sizeof(*to)) < 0 && errno != EINPROGRESS)
		return -errno;
	if (pw_loop_add(o->data, EPOLLOUT, &o->ev) < 0)
		return -ENOMEM;
	o->dialed = true;
	return 0;
}

/* Both halves are there: the answer and the data socket. */
static void pw_peer_out_done(struct pw_peer_out *o)
{
	int s = o->data;

	o->data = -1;
	pw_peer_conns.n_out_ok++;
	o->done(o->ctx, s, o->conn);
	pw_peer_out_free(o);
}

/* A data socket on our underlay address (socket(2) @flags with it), and its
 * port. */
static int pw_peer_data_socket(int flags, in_port_t *ret_port)
{
	struct sockaddr_in me = *pw_peers_underlay();
	socklen_t len = sizeof(me);
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);

	me.sin_port = 0;
	if (s < 0 || bind(s, (struct sockaddr *)&me, sizeof(me)) < 0 ||
	    getsockname(s, (struct sockaddr *)&me, &len) < 0) {
		int r = -errno;
		if (s >= 0)
			close(s);
		return r;
	}
	*ret_port = me.sin_port;
	return s;
}

/* A request of @ctx from @src to @dst, to the peer that advertises @dst:
 * not yet in the list (pw_peer_out_add). NULL and *@ret_err: -ENETUNREACH
 * no peer has @dst, -ENOMEM. */
static struct pw_peer_out *pw_peer_out_new(const struct sockaddr_in *src,
					   const struct sockaddr_in *dst, void *ctx, int *ret_err)
{
	struct pw_peer_link *l = pw_peers_enabled() ? pw_peer_route(dst) : NULL;
	struct pw_peer_out *o = l ? calloc(1, sizeof(*o)) : NULL;

	if (!o) {
		*ret_err = l ? -ENOMEM : -ENETUNREACH;
		return NULL;
	}
	o->data = -1;
	o->req = ++pw_peer_conns.next_req;
	o->link = l;
	o->src = *src;
	o->dst = *dst;
	o->ctx = ctx;
	o->deadline_ns = pw_now_ns() + PW_PEER_CONNECT_NS;
	return o;
}

static void pw_peer_out_add(struct pw_peer_out *o)
{
	o->next = pw_peer_conns.outs;
	pw_peer_conns.outs = o;
}

/* A data connection for @o (just made by pw_peer_out_new()): its socket on
 * our underlay address (@ret_me) and its token. 0, or -errno with @o freed. */
static int pw_peer_out_arm(struct pw_peer_out *o, pw_peers_done_fn done, struct sockaddr_in *ret_me)
{
	*ret_me = *pw_peers_underlay();
	o->ev.fn = pw_peer_out_event;
	o->done = done;
	o->data = pw_peer_data_socket(SOCK_NONBLOCK, &ret_me->sin_port);
	if (o->data < 0 || getrandom(o->token, sizeof(o->token), 0) != sizeof(o->token)) {
		int r = o->data < 0 ? o->data : -errno;
		if (o->data >= 0)
			close(o->data);
		free(o);
		return r < 0 ? r : -EIO; /* (a short getrandom() sets no errno) */
	}
	return 0;
}

/* Announce @o's data connection (@type, @body: it names the token), then
 * dial it, only behind the announcement: B must see it first (else at the
 * next tick, or with the answer). 0, or -errno with @o freed. */
static int pw_peer_out_send(struct pw_peer_out *o, uint16_t type, const void *body, size_t len)
{
	int r = pw_peer_link_send(o->link, type, body, len, NULL, 0);

	if (r < 0) {
		close(o->data);
		free(o);
		return r;
	}
	pw_peer_out_add(o);
	pw_peer_conns.n_out++;
	if (pw_peer_link_flushed(o->link)) {
		r = pw_peer_out_dial(o, pw_peer_link_data(o->link));
		if (r < 0) {
			pw_peer_out_free(o);
			pw_peer_conns.n_out_fail++;
			return r;
		}
	}
	return 0;
}

int pw_peers_connect(const struct sockaddr_in *src, const struct sockaddr_in *dst,
		     pw_peers_done_fn done, void *ctx)
{
	struct sockaddr_in me;
	int r;
	struct pw_peer_out *o = pw_peer_out_new(src, dst, ctx, &r);

	if (!o)
		return r;
	r = pw_peer_out_arm(o, done, &me);
	if (r < 0)
		return r;
	struct pw_wire_peer_connect c = { .req = o->req };
	memcpy(c.token, o->token, sizeof(c.token));
	pw_addr_to_wire(src, AF_INET, &c.src);
	pw_addr_to_wire(dst, AF_INET, &c.dst);
	pw_addr_to_wire(&me, AF_INET, &c.data);
	return pw_peer_out_send(o, PW_PEER_CONNECT, &c, sizeof(c));
}

int pw_peers_vqp_dial(struct pw_wire_peer_vqp *body, pw_peers_done_fn done, void *ctx)
{
	struct sockaddr_in me, src = { .sin_family = AF_INET }, dst = { .sin_family = AF_INET };
	int r;

	src.sin_addr.s_addr = body->src;
	dst.sin_addr.s_addr = body->dst;
	struct pw_peer_out *o = pw_peer_out_new(&src, &dst, ctx, &r);
	if (!o)
		return r;
	r = pw_peer_out_arm(o, done, &me);
	if (r < 0)
		return r;
	o->answered = true; /* (nothing answers a DIAL) */
	body->op = PW_PEER_VQP_DIAL;
	memcpy(body->token, o->token, sizeof(body->token));
	pw_addr_to_wire(&me, AF_INET, &body->data);
	return pw_peer_out_send(o, PW_PEER_VQP, body, sizeof(*body));
}

int pw_peers_expect(const struct pw_peer_link *l, const struct pw_wire_addr *from,
		    const uint8_t token[PW_PEER_TOKEN_LEN], pw_peers_expect_fn fn, uint64_t key)
{
	struct sockaddr_in a;
	struct pw_peer_expect *e;

	if (from->family != AF_INET || pw_addr_from_wire(from, &a, NULL) < 0 ||
	    a.sin_addr.s_addr != pw_peer_link_data(l)->sin_addr.s_addr)
		return -EACCES; /* only from the peer's own host */
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->ev.fn = pw_peer_expect_event;
	e->from = a;
	memcpy(e->token, token, sizeof(e->token));
	e->conn = key;
	e->fn = fn;
	e->fd = -1;
	e->deadline_ns = pw_now_ns() + PW_PEER_EXPECT_NS;
	e->next = pw_peer_conns.expects;
	pw_peer_conns.expects = e;
	pw_peer_conns.n_in++;
	return 0;
}

void pw_peers_fastopen(void)
{
	static const char path[] = "/proc/sys/net/ipv4/tcp_fastopen";
	char buf[32];
	long v = -1;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
		if (n > 0) {
			buf[n] = '\0';
			v = strtol(buf, NULL, 0);
		}
		close(fd);
	}
	/* 1: clients may send data in a SYN; 2: listeners that ask for it
	 * with TCP_FASTOPEN take it (ours; any other that asks was meant to). */
	if (v >= 0 && (v & 3) != 3) {
		int len = snprintf(buf, sizeof(buf), "%ld", v | 3);
		fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd >= 0 && write(fd, buf, (size_t)len) == len)
			pw_info("%s: %ld (was %ld), for pooled connections", path, v | 3, v);
		else
			v = -1;
		if (fd >= 0)
			close(fd);
	}
	if (v < 0)
		pw_warn("cannot enable TCP Fast Open (%s): pooled connections from other "
			"nodes wait for a handshake",
			path);
}

int pw_peers_pool_ask(const struct sockaddr_in *src, const struct sockaddr_in *dst, unsigned n,
		      pw_peers_pool_fn done, void *ctx)
{
	int r;
	struct pw_peer_out *o = pw_peer_out_new(src, dst, ctx, &r);

	if (!o)
		return r;
	o->npool = n;
	o->pool_done = done;

	struct pw_wire_peer_pool p = { .req = o->req, .count = n };
	pw_addr_to_wire(src, AF_INET, &p.src);
	pw_addr_to_wire(dst, AF_INET, &p.dst);
	r = pw_peer_link_send(o->link, PW_PEER_POOL, &p, sizeof(p), NULL, 0);
	if (r < 0) {
		free(o);
		return r;
	}
	pw_peer_out_add(o);
	return 0;
}

/* @l's answer to pool ask @o: dial its connections at the peer's port,
 * each sealed with the listener's key, and hand them over. */
static void pw_peer_pool_dial(struct pw_peer_out *o, const struct pw_peer_link *l,
			      const struct pw_wire_peer_pool_ok *ok)
{
	struct sockaddr_in to = *pw_peer_link_data(l);
	struct pw_wire_pool_token toks[PW_POOL_MAX];
	int socks[PW_POOL_MAX];
	unsigned n = ok->count < o->npool ? ok->count : o->npool, got = 0;
	int r = -ECONNREFUSED;

	to.sin_port = ok->port;
	for (unsigned i = 0; i < n && i < PW_POOL_MAX; i++) {
		in_port_t port;
		/* Blocking, as most applications' sockets are: fewer flags to
		 * change when one is taken (it is never waited on here). */
		int s = pw_peer_data_socket(0, &port), one = 1;
		if (s < 0) {
			r = s;
			break;
		}
		/* Connected, not dialled: the SYN leaves with the token. */
		if (setsockopt(s, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &one, sizeof(one)) < 0 ||
		    setsockopt(s, IPPROTO_TCP, TCP_FASTOPEN_NO_COOKIE, &one, sizeof(one)) < 0 ||
		    (connect(s, (const struct sockaddr *)&to, sizeof(to)) < 0 &&
		     errno != EINPROGRESS)) {
			r = -errno;
			close(s);
			break;
		}
		/* The port the server sees is the client's: this one. */
		toks[got] =
			(struct pw_wire_pool_token){ .src = o->src.sin_addr.s_addr,
						     .dst = o->dst.sin_addr.s_addr,
						     .via = pw_peers_underlay()->sin_addr.s_addr,
						     .sport = port,
						     .dport = o->dst.sin_port };
		pw_pool_token_seal(&toks[got], ok->key);
		socks[got++] = s;
	}
	pw_peer_conns.n_out += n;
	pw_peer_conns.n_out_ok += got;
	pw_peer_conns.n_pool_out += got;
	pw_peer_conns.n_out_fail += n - got;
	pw_peers_pool_fn done = o->pool_done;
	o->pool_done = NULL;
	done(o->ctx, got ? (int)got : r, socks, toks);
}

int pw_peers_pool_listener(unsigned backlog, in_port_t *ret_port)
{
	int s = pw_peer_data_socket(SOCK_NONBLOCK, ret_port), defer = PW_POOL_DEFER_S,
	    qlen = (int)backlog, one = 1;

	if (s < 0)
		return s;
	/* (The library listens, once the socket has its listener's options.) */
	if (setsockopt(s, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer, sizeof(defer)) < 0 ||
	    setsockopt(s, IPPROTO_TCP, TCP_FASTOPEN, &qlen, sizeof(qlen)) < 0 ||
	    setsockopt(s, IPPROTO_TCP, TCP_FASTOPEN_NO_COOKIE, &one, sizeof(one)) < 0) {
		int r = -errno;
		close(s);
		return r;
	}
	return s;
}

static void pw_peer_out_free(struct pw_peer_out *o)
{
	for (struct pw_peer_out **pp = &pw_peer_conns.outs; *pp; pp = &(*pp)->next)
		if (*pp == o) {
			*pp = o->next;
			break;
		}
	if (o->data >= 0) {
		pw_loop_del(o->data, &o->ev);
		close(o->data);
	}
	free(o);
}

static void pw_peer_out_fail(struct pw_peer_out *o, int err)
{
	char b[PW_ADDR_STRLEN];

	pw_peer_conns.n_out_fail += o->npool ? o->npool : 1;
	pw_dbg("%s to %s over the underlay failed: %s", o->npool ? "pool" : "connect",
	       pw_addr_format(&o->dst, b), strerror(err));
	if (o->pool_done)
		o->pool_done(o->ctx, -err, NULL, NULL);
	else if (o->done)
		o->done(o->ctx, -err, 0);
	pw_peer_out_free(o);
}

void pw_peers_cancel(const void *ctx)
{
	for (struct pw_peer_out *o = pw_peer_conns.outs, *next; o; o = next) {
		next = o->next;
		if (o->ctx == ctx)
			pw_peer_out_free(o);
	}
}

int pw_peer_conn_reply(struct pw_peer_link *l, const struct pw_msg *m)
{
	uint64_t req = m->type == PW_PEER_CONNECT_OK ? m->u.peer_connect_ok.req
		       : m->type == PW_PEER_POOL_OK  ? m->u.peer_pool_ok.req
						     : m->u.peer_connect_err.req;
	struct pw_peer_out *o = pw_peer_conns.outs;

	while (o && (o->req != req || o->link != l))
		o = o->next;
	if (!o)
		return 0; /* we gave up on it already */
	o->link = NULL;
	if (m->type == PW_PEER_CONNECT_ERR) {
		int err = m->u.peer_connect_err.err;
		pw_peer_out_fail(o, err > 0 && err < 4096 ? err : EIO);
		return 0;
	}
	if ((m->type == PW_PEER_POOL_OK) != (o->npool != 0))
		return -EPROTO; /* an answer of the other kind */
	if (o->npool) {
		pw_peer_pool_dial(o, l, &m->u.peer_pool_ok);
		pw_peer_out_free(o);
		return 0;
	}
	o->conn = m->u.peer_connect_ok.conn;
	o->answered = true;
	if (o->ready) {
		pw_peer_out_done(o);
		return 0;
	}
	if (!o->dialed) {
		int r = pw_peer_out_dial(o, pw_peer_link_data(l));
		if (r < 0)
			pw_peer_out_fail(o, -r);
	}
	return 0;
}

/* Our data socket connected: the token goes first, then (with the answer) it
 * is the client's. */
static void pw_peer_out_event(struct pw_ev *ev, uint32_t events)
{
	struct pw_peer_out *o = (struct pw_peer_out *)ev;
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(o->data, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (!err) {
		ssize_t n = send(o->data, o->token, sizeof(o->token), MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n != (ssize_t)sizeof(o->token))
			err = n < 0 ? errno : EIO; /* a fresh socket takes 16 bytes */
	}
	if (err) {
		pw_peer_out_fail(o, err);
		return;
	}
	pw_loop_del(o->data, &o->ev);
	o->ready = true;
	if (o->answered)
		pw_peer_out_done(o);
}

/* ---- connects from other nodes ---- */

int pw_peer_conn_request(struct pw_peer_link *l, const struct pw_wire_peer_connect *c)
{
	struct sockaddr_in src, dst, from;
	uint64_t id = 0;
	int r;

	pw_peer_conns.n_in++;
	/* Only to pods of ours, and only from the peer's own data address. */
	bool ours = c->src.family == AF_INET && c->dst.family == AF_INET &&
		    pw_addr_from_wire(&c->src, &src, NULL) == 0 &&
		    pw_addr_from_wire(&c->dst, &dst, NULL) == 0 &&
		    pw_addr_from_wire(&c->data, &from, NULL) == 0;
	bool from_peer = ours && from.sin_addr.s_addr == pw_peer_link_data(l)->sin_addr.s_addr;
	if (!from_peer || !pw_peers_pod_has(&dst))
		r = -EACCES;
	else
		r = pw_router_remote_conn(&src, &dst, &id);
	/* Refused too: the data connection the peer dialled may come still. */
	struct pw_peer_expect *e = from_peer ? calloc(1, sizeof(*e)) : NULL;
	if (e) {
		e->ev.fn = pw_peer_expect_event;
		e->from = from;
		memcpy(e->token, c->token, sizeof(e->token));
		e->conn = id;
		e->fd = -1;
		e->refused = r < 0;
		/* (It is dialled along with the CONNECT, if at all.) */
		e->deadline_ns =
			pw_now_ns() + (e->refused ? PW_PEER_REFUSED_NS : PW_PEER_EXPECT_NS);
		e->next = pw_peer_conns.expects;
		pw_peer_conns.expects = e;
	} else if (r == 0) {
		pw_router_remote_drop(id);
		r = -ENOMEM;
	}
	if (r < 0) {
		struct pw_wire_peer_connect_err er = { .req = c->req, .err = -r };
		return pw_peer_link_send(l, PW_PEER_CONNECT_ERR, &er, sizeof(er), NULL, 0) < 0
			       ? -EIO
			       : 0;
	}
	struct pw_wire_peer_connect_ok ok = { .req = c->req, .conn = id };
	return pw_peer_link_send(l, PW_PEER_CONNECT_OK, &ok, sizeof(ok), NULL, 0) < 0 ? -EIO : 0;
}

int pw_peer_pool_request(struct pw_peer_link *l, const struct pw_wire_peer_pool *p)
{
	struct sockaddr_in src, dst;
	struct pw_listener *ls = NULL;
	int err = ECONNREFUSED;

	/* For pods of ours, from pods of the peer's (its routes). */
	if (p->src.family != AF_INET || p->dst.family != AF_INET ||
	    pw_addr_from_wire(&p->src, &src, NULL) < 0 ||
	    pw_addr_from_wire(&p->dst, &dst, NULL) < 0 || p->count == 0 || p->count > PW_POOL_MAX ||
	    !pw_peer_link_has(l, &src) || !pw_peers_pod_has(&dst) || pw_addr_is_loopback(&dst))
		err = EACCES;
	else
		ls = pw_listener_pick(0, &dst, ntohs(src.sin_port));
	if (!ls || !ls->uport) {
		struct pw_wire_peer_connect_err er = { .req = p->req, .err = err };
		return pw_peer_link_send(l, PW_PEER_CONNECT_ERR, &er, sizeof(er), NULL, 0) < 0
			       ? -EIO
			       : 0;
	}
	struct pw_wire_peer_pool_ok ok = { .req = p->req, .port = ls->uport, .count = p->count };
	memcpy(ok.key, ls->ukey, sizeof(ok.key));
	pw_peer_conns.n_pool_in += p->count;
	return pw_peer_link_send(l, PW_PEER_POOL_OK, &ok, sizeof(ok), NULL, 0) < 0 ? -EIO : 0;
}

static void pw_peer_expect_free(struct pw_peer_expect *e, bool drop_conn)
{
	for (struct pw_peer_expect **pp = &pw_peer_conns.expects; *pp; pp = &(*pp)->next)
		if (*pp == e) {
			*pp = e->next;
			break;
		}
	if (e->fd >= 0) {
		pw_loop_del(e->fd, &e->ev);
		close(e->fd);
	}
	if (drop_conn && !e->fn)
		pw_router_remote_drop(e->conn);
	free(e);
}

static void pw_peer_expect_event(struct pw_ev *ev, uint32_t events)
{
	struct pw_peer_expect *e = (struct pw_peer_expect *)ev;

	for (;;) {
		ssize_t n = recv(e->fd, e->got + e->ngot, sizeof(e->got) - e->ngot, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			pw_peer_conns.n_in_bad++;
			pw_peer_expect_free(e, true);
			return;
		}
		e->ngot += (size_t)n;
		if (e->ngot < sizeof(e->got))
			continue;
		if (CRYPTO_memcmp(e->got, e->token, sizeof(e->token)) != 0) {
			char b[PW_ADDR_STRLEN];
			pw_peer_conns.n_in_bad++;
			pw_warn("data connection from %s: wrong token; closed",
				pw_addr_format(&e->from, b));
			pw_peer_expect_free(e, true);
			return;
		}
		int s = e->fd;
		pw_loop_del(s, &e->ev);
		e->fd = -1;
		pw_peer_conns.n_in_ok++;
		if (e->fn)
			e->fn(e->conn, s);
		else
			pw_router_remote_data(e->conn, s);
		pw_peer_expect_free(e, false);
		return;
	}
}

bool pw_peer_conns_accept(int s, const struct sockaddr_in *from)
{
	struct pw_peer_expect *e = pw_peer_conns.expects;

	while (e && (e->fd >= 0 || !pw_addr_eq(&e->from, from)))
		e = e->next;
	if (!e)
		return false;
	if (e->refused) {
		close(s);
		pw_peer_expect_free(e, false);
		return true;
	}
	e->fd = s;
	if (pw_loop_add(s, EPOLLIN, &e->ev) < 0)
		pw_peer_expect_free(e, true);
	return true;
}

void pw_peer_conns_link_lost(const struct pw_peer_link *l)
{
	/* Connects waiting for this link's answer fail; established
	 * connections do not depend on it. */
	for (struct pw_peer_out *o = pw_peer_conns.outs, *next; o; o = next) {
		next = o->next;
		if (o->link == l)
			pw_peer_out_fail(o, ECONNABORTED);
	}
}

void pw_peer_conns_tick(uint64_t now)
{
	for (struct pw_peer_out *o = pw_peer_conns.outs, *next; o; o = next) {
		next = o->next;
		if (now > o->deadline_ns) {
			pw_peer_out_fail(o, ETIMEDOUT);
			continue;
		}
		/* A DIAL that waited in the link's buffer has left now. */
		if (!o->dialed && o->answered && o->link && pw_peer_link_flushed(o->link)) {
			int r = pw_peer_out_dial(o, pw_peer_link_data(o->link));
			if (r < 0)
				pw_peer_out_fail(o, -r);
		}
	}
	for (struct pw_peer_expect *e = pw_peer_conns.expects, *next; e; e = next) {
		next = e->next;
		if (now > e->deadline_ns) {
			if (!e->refused)
				pw_peer_conns.n_in_bad++;
			pw_peer_expect_free(e, !e->refused);
		}
	}
}

void pw_peer_conns_teardown(void)
{
	while (pw_peer_conns.outs)
		pw_peer_out_fail(pw_peer_conns.outs, ESHUTDOWN);
	while (pw_peer_conns.expects)
		pw_peer_expect_free(pw_peer_conns.expects, false);
}

void pw_peer_conns_metrics(FILE *f)
{
	fprintf(f,
		"# HELP podwire_remote_connects_total Connects to other nodes' pods over the "
		"underlay, by result.\n"
		"# TYPE podwire_remote_connects_total counter\n"
		"podwire_remote_connects_total{result=\"ok\"} %" PRIu64 "\n"
		"podwire_remote_connects_total{result=\"failed\"} %" PRIu64 "\n"
		"# HELP podwire_remote_accepts_total Connects from other nodes to our pods, by "
		"result.\n"
		"# TYPE podwire_remote_accepts_total counter\n"
		"podwire_remote_accepts_total{result=\"ok\"} %" PRIu64 "\n"
		"podwire_remote_accepts_total{result=\"refused\"} %" PRIu64 "\n"
		"# HELP podwire_remote_pooled_total Connections dialled for pools (before the "
		"application asks), and granted to other nodes for our pods' listeners.\n"
		"# TYPE podwire_remote_pooled_total counter\n"
		"podwire_remote_pooled_total{dir=\"out\"} %" PRIu64 "\n"
		"podwire_remote_pooled_total{dir=\"in\"} %" PRIu64 "\n",
		pw_peer_conns.n_out_ok, pw_peer_conns.n_out_fail, pw_peer_conns.n_in_ok,
		pw_peer_conns.n_in - pw_peer_conns.n_in_ok > pw_peer_conns.n_in
			? 0
			: pw_peer_conns.n_in - pw_peer_conns.n_in_ok,
		pw_peer_conns.n_pool_out, pw_peer_conns.n_pool_in);
}
