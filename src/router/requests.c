// SPDX-License-Identifier: MIT
/*
 * The requests other than connection setup (connect.c) and the pod table
 * (pods.c): HELLO, LISTEN, STATUS, and those about a connection
 * that exists: REATTACH after exec, RELAY and TAKE when a process hands it
 * to another (docs/PRELOAD.md).
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include "../common/addr.h"
#include "../common/log.h"
#include "../common/util.h"
#include "router.h"

struct pw_router_cfg pw_router_cfg = {
	.socket_path = PW_WIRE_DEFAULT_SOCKET,
	.ring_size = 1024u * 1024u,
	.pod_max_pending = PW_POD_MAX_PENDING_DEFAULT,
	.pod_max_memory = PW_POD_MAX_MEMORY_DEFAULT,
};

int pw_router_prefixes_parse(const char *s)
{
	struct pw_router_cfg *cfg = &pw_router_cfg;
	struct pw_wire_prefix v[PW_WIRE_MAX_PREFIXES];
	int n = pw_addr_cidr_list_parse(s, PW_ADDR_CIDR_HOST | PW_ADDR_CIDR_NET, v,
					PW_WIRE_MAX_PREFIXES, NULL);

	if (n <= 0)
		return -EINVAL;
	memcpy(cfg->prefixes, v, (size_t)n * sizeof(v[0]));
	cfg->nprefixes = (unsigned)n;
	return 0;
}

/* HELLO: the prefix table, the destinations the library accelerates. */
int pw_request_hello(struct pw_client *c, const struct pw_msg *m, int fds[PW_WIRE_MAX_FDS])
{
	const struct pw_router_cfg *cfg = &pw_router_cfg;
	struct pw_wire_hello_ok ok = { .node_version = PW_WIRE_VERSION, .count = cfg->nprefixes };

	return pw_msg_send(c->fd, PW_MSG_HELLO_OK, m->seq, &ok, sizeof(ok), cfg->prefixes,
			   cfg->nprefixes * sizeof(cfg->prefixes[0]), NULL, 0);
}

/* LISTEN: register the listener and answer with its accept queue. */
int pw_request_listen(struct pw_client *c, const struct pw_msg *m, int fds[PW_WIRE_MAX_FDS])
{
	int q[2] = { -1, -1 };
	struct pw_wire_listen_pool lp;
	int r = pw_listener_add(c, fds[0], m->u.listen.backlog, &q[0], &q[1], lp.key);

	/* Our copy would keep the socket alive: dropped before the answer, or
	 * an app that closes its listener on the answer and binds the port
	 * again (iperf3 -s after each test) races it to EADDRINUSE. */
	fds[0] = pw_close(fds[0]);
	if (r < 0)
		return pw_client_reply_err(c, m->seq, -r);
	if (q[1] < 0) {
		r = pw_msg_send(c->fd, PW_MSG_LISTEN_OK, m->seq, NULL, 0, NULL, 0, q, 1);
	} else {
		r = pw_msg_send(c->fd, PW_MSG_LISTEN_POOL, m->seq, &lp, sizeof(lp), NULL, 0, q, 2);
	}
	pw_close(q[0]);
	pw_close(q[1]);
	return r;
}

int pw_request_status(struct pw_client *c, const struct pw_msg *m, int fds[PW_WIRE_MAX_FDS])
{
	static struct pw_wire_status_entry ents[PW_WIRE_STATUS_PAGE];
	struct pw_wire_status st;

	pw_conns_status(ents, PW_WIRE_STATUS_PAGE, &st);
	return pw_msg_send(c->fd, PW_MSG_STATUS_OK, m->seq, &st, sizeof(st), ents,
			   st.count * sizeof(ents[0]), NULL, 0);
}

/* Send @cn's channel to the process that holds side @side's socket @sock. */
static int pw_conn_give(struct pw_client *c, uint32_t seq, struct pw_conn *cn, unsigned side,
			int sock)
{
	struct pw_wire_conn body = pw_conn_body(cn, side);
	int fds[2] = { cn->memfd, sock };
	int r = pw_msg_send(c->fd, PW_MSG_CONN, seq, &body, sizeof(body), NULL, 0, fds, 2);

	if (r == 0)
		cn->pid[side] = c->pid;
	return r;
}

/* A program that exec()ed still holds the channel's socket: that proves
 * which end it is, and it gets the shared memory back. */
int pw_request_reattach(struct pw_client *c, const struct pw_msg *m, int fds[PW_WIRE_MAX_FDS])
{
	unsigned side;
	struct pw_conn *cn =
		m->u.reattach.id ? pw_conn_by_sock(m->u.reattach.id, fds[0], &side) : NULL;

	if (!cn)
		return -ENOENT;
	int r = pw_conn_give(c, m->seq, cn, side, fds[0]);
	if (r == 0)
		pw_dbg("conn %" PRIu64 ": side %u re-attached by pid %d after exec", cn->id, side,
		       c->pid);
	return r;
}

/*
 * The application passes a connection to another process (SCM_RIGHTS): it
 * proves it holds side @side with the channel's socket, and gets a kernel
 * stream to pass instead, which we relay (relay.c) until the receiver takes
 * the channel over, or for good if it does not run the library.
 */
int pw_request_relay(struct pw_client *c, const struct pw_msg *m, int fds[PW_WIRE_MAX_FDS])
{
	unsigned side;
	struct pw_conn *cn = m->u.relay.id ? pw_conn_by_sock(m->u.relay.id, fds[0], &side) : NULL;
	int app, r;

	if (!cn)
		return -ENOENT;
	r = pw_relay_start(cn->id, cn->memfd, fds[0], side, m->u.relay.flags & PW_RELAY_NOW, &app);
	fds[0] = -1; /* taken */
	if (r < 0)
		return r;
	struct pw_wire_conn body = pw_conn_body(cn, side);
	r = pw_msg_send(c->fd, PW_MSG_RELAY_OK, m->seq, &body, sizeof(body), NULL, 0, &app, 1);
	close(app);
	if (r == 0) {
		cn->pid[side] = 0; /* the router's, until someone takes it */
		pw_dbg("conn %" PRIu64 ": side %u handed on by pid %d, relayed", cn->id, side,
		       c->pid);
	}
	return r;
}

/*
 * A server process gives up a parked channel that its client claimed for a
 * new connection before this process took it (its listener closed here, or
 * it exits; PRELOAD.md, "Reuse"): it proves it holds the accepting end, and
 * the connection goes back to its listener's queue, for another process
 * that holds the listener, as the kernel's accept queue would keep it.
 */
int pw_request_requeue(struct pw_client *c, const struct pw_msg *m, int fds[PW_WIRE_MAX_FDS])
{
	unsigned side = 0;
	struct pw_conn *cn =
		m->u.reattach.id ? pw_conn_by_sock(m->u.reattach.id, fds[0], &side) : NULL;
	if (!cn || side != 1)
		return -ENOENT;
	struct pw_listener *l = pw_listener_by_serial(cn->listener);
	if (!l)
		return -ECONNREFUSED; /* closed everywhere: the caller resets it */
	if (!pw_conn_unattached(cn))
		return -EBUSY;
	struct pw_wire_conn body = pw_conn_body(cn, 1);
	int qfds[2] = { cn->memfd, fds[0] };
	int r = pw_listener_deliver(l, PW_MSG_CONN, &body, NULL, 0, qfds, 2);
	if (r < 0)
		return r;
	cn->state = PW_CONN_PENDING; /* as any queued: a listener gone resets it */
	cn->pid[1] = 0;
	pw_router_stats.requeued++;
	pw_dbg("conn %" PRIu64 ": a claimed parked channel given up by pid %d, queued again",
	       cn->id, c->pid);
	return pw_client_reply(c, m->seq, 0);
}

/* A receiver that runs the library proves it holds a relayed stream. */
int pw_request_take(struct pw_client *c, const struct pw_msg *m, int fds[PW_WIRE_MAX_FDS])
{
	uint64_t id;
	unsigned side;
	int sock;
	int r = pw_relay_take(fds[0], &id, &side, &sock);

	if (r < 0)
		return r;
	struct pw_conn *cn = pw_conn_by_id(id);
	r = cn ? pw_conn_give(c, m->seq, cn, side, sock) : -ENOENT;
	close(sock);
	if (r == 0)
		pw_dbg("conn %" PRIu64 ": side %u taken over by pid %d", id, side, c->pid);
	return r;
}
