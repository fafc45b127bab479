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
 * Here: A's connects in flight (struct pw_peer_out) and B's expected data
 * connections (struct pw_peer_expect).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
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
	bool refused; /* we said CONNECT_ERR: close it quietly if it comes */
	bool pool;    /* for a pool: to the listener at once, with the token */
	struct pw_peer_expect *next;
};

static struct {
	struct pw_peer_out *outs;
	struct pw_peer_expect *expects;
	uint64_t next_req;

	/* counters for the metrics */
	uint64_t n_out, n_out_ok, n_out_fail, n_in, n_in_ok, n_in_bad;
	uint64_t n_pool_out, n_pool_in; /* of those, dialled for pools, and taken in */
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

/* A data socket on our underlay address, and its port. */
static int pw_peer_data_socket(in_port_t *ret_port)
{
	struct sockaddr_in me = *pw_peers_underlay();
	socklen_t len = sizeof(me);
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

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

int pw_peers_connect(const struct sockaddr_in *src, const struct sockaddr_in *dst,
		     pw_peers_done_fn done, void *ctx)
{
	struct pw_peer_link *l = pw_peers_enabled() ? pw_peer_route(dst) : NULL;
	struct sockaddr_in me = *pw_peers_underlay();
	struct pw_peer_out *o;

	if (!l)
		return -ENETUNREACH;
	o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	o->ev.fn = pw_peer_out_event;
	o->data = pw_peer_data_socket(&me.sin_port);
	if (o->data < 0 || getrandom(o->token, sizeof(o->token), 0) != sizeof(o->token)) {
		int err = o->data < 0 ? o->data : -errno;
		if (o->data >= 0)
			close(o->data);
		free(o);
		return err;
	}
	o->req = ++pw_peer_conns.next_req;
	o->link = l;
	o->src = *src;
	o->dst = *dst;
	o->done = done;
	o->ctx = ctx;
	o->deadline_ns = pw_now_ns() + PW_PEER_CONNECT_NS;

	struct pw_wire_peer_connect c = { .req = o->req };
	memcpy(c.token, o->token, sizeof(c.token));
	pw_addr_to_wire(src, AF_INET, &c.src);
	pw_addr_to_wire(dst, AF_INET, &c.dst);
	pw_addr_to_wire(&me, AF_INET, &c.data);
	int r = pw_peer_link_send(l, PW_PEER_CONNECT, &c, sizeof(c), NULL, 0);
	if (r < 0) {
		close(o->data);
		free(o);
		return r;
	}
	o->next = pw_peer_conns.outs;
	pw_peer_conns.outs = o;
	pw_peer_conns.n_out++;
	/* Only behind a CONNECT that has left: B must see it first. */
	if (pw_peer_link_flushed(l)) {
		r = pw_peer_out_dial(o, pw_peer_link_data(l));
		if (r < 0) {
			pw_peer_out_free(o);
			pw_peer_conns.n_out_fail++;
			return r;
		}
	}
	return 0;
}

int pw_peers_pool_dial(const struct sockaddr_in *src, const struct sockaddr_in *dst, unsigned n,
		       int socks[], in_port_t ports[], uint8_t tokens[][PW_PEER_TOKEN_LEN])
{
	struct pw_peer_link *l = pw_peers_enabled() ? pw_peer_route(dst) : NULL;
	struct sockaddr_in me = *pw_peers_underlay(), from = *src;
	unsigned k = 0, ok = 0;
	int r = 0;

	if (!l)
		return -ENETUNREACH;
	if (getrandom(tokens, (size_t)n * PW_PEER_TOKEN_LEN, 0) != (ssize_t)n * PW_PEER_TOKEN_LEN)
		return -errno;
	/* Every request first, in one write; then the dials behind them. */
	for (; k < n; k++) {
		struct pw_wire_peer_connect c = { .req = 0 };
		socks[k] = pw_peer_data_socket(&ports[k]);
		if (socks[k] < 0) {
			r = socks[k];
			break;
		}
		memcpy(c.token, tokens[k], sizeof(c.token));
		from.sin_port = me.sin_port = ports[k]; /* the port the server sees is this one */
		pw_addr_to_wire(&from, AF_INET, &c.src);
		pw_addr_to_wire(dst, AF_INET, &c.dst);
		pw_addr_to_wire(&me, AF_INET, &c.data);
		r = pw_peer_link_queue(l, PW_PEER_POOL, &c, sizeof(c), NULL, 0);
		if (r < 0) {
			close(socks[k]);
			break;
		}
	}
	pw_peer_link_flush(l);
	pw_peer_conns.n_out += k;
	/* Only behind requests that have left: the peer must see them first. */
	for (unsigned i = 0; i < k; i++) {
		if (pw_peer_link_flushed(l) &&
		    (connect(socks[i], (const struct sockaddr *)pw_peer_link_data(l),
			     sizeof(struct sockaddr_in)) == 0 ||
		     errno == EINPROGRESS)) {
			socks[ok] = socks[i];
			ports[ok] = ports[i];
			memmove(tokens[ok], tokens[i], PW_PEER_TOKEN_LEN);
			ok++;
			continue;
		}
		r = pw_peer_link_flushed(l) ? -errno : -EAGAIN;
		close(socks[i]);
	}
	pw_peer_conns.n_out_ok += ok;
	pw_peer_conns.n_pool_out += ok;
	pw_peer_conns.n_out_fail += k - ok;
	return ok ? (int)ok : r < 0 ? r : -EAGAIN;
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

	pw_peer_conns.n_out_fail++;
	pw_dbg("connect to %s over the underlay failed: %s", pw_addr_format(&o->dst, b),
	       strerror(err));
	if (o->done)
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

int pw_peer_conn_request(struct pw_peer_link *l, const struct pw_wire_peer_connect *c, bool pool)
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
		r = pw_router_remote_conn(&src, &dst, pool, &id);
	/* Refused too: the data connection the peer dialled may come still. */
	struct pw_peer_expect *e = from_peer ? calloc(1, sizeof(*e)) : NULL;
	if (e) {
		e->ev.fn = pw_peer_expect_event;
		e->from = from;
		memcpy(e->token, c->token, sizeof(e->token));
		e->conn = id;
		e->fd = -1;
		e->refused = r < 0;
		e->pool = pool;
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
	if (pool)
		return 0; /* its dialler does not wait */
	struct pw_wire_peer_connect_ok ok = { .req = c->req, .conn = id };
	return pw_peer_link_send(l, PW_PEER_CONNECT_OK, &ok, sizeof(ok), NULL, 0) < 0 ? -EIO : 0;
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
	if (drop_conn)
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
		pw_router_remote_data(e->conn, s, NULL);
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
	if (e->pool) {
		/* Its token is the server's to read, when the client starts it. */
		pw_peer_conns.n_in_ok++;
		pw_peer_conns.n_pool_in++;
		pw_router_remote_data(e->conn, s, e->token);
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
		if (now > o->deadline_ns)
			pw_peer_out_fail(o, ETIMEDOUT);
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
		"# HELP podwire_remote_pooled_total Of those, connections dialled for pools "
		"(before the application asks), and taken in for our pods.\n"
		"# TYPE podwire_remote_pooled_total counter\n"
		"podwire_remote_pooled_total{dir=\"out\"} %" PRIu64 "\n"
		"podwire_remote_pooled_total{dir=\"in\"} %" PRIu64 "\n",
		pw_peer_conns.n_out_ok, pw_peer_conns.n_out_fail, pw_peer_conns.n_in_ok,
		pw_peer_conns.n_in - pw_peer_conns.n_in_ok > pw_peer_conns.n_in
			? 0
			: pw_peer_conns.n_in - pw_peer_conns.n_in_ok,
		pw_peer_conns.n_pool_out, pw_peer_conns.n_pool_in);
}
