// SPDX-License-Identifier: MIT
/*
 * podwired: the node router. It brokers connection setup between pods on this
 * node and is never on the data path. See docs/PRELOAD.md.
 *
 * Single-threaded: one epoll loop. Namespace work (making a socket inside a
 * pod's network namespace) switches this thread's netns with setns(2) and
 * switches back at once.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include <podwire/chan.h>
#include <podwire/wire.h>

#include "../common/addr.h"
#include "../common/log.h"
#include "../common/util.h"
#include "pods.h"
#include "proto.h"
#include "router.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

#define PW_DEFAULT_PREFIX     "198.18.0.0/15"
#define PW_CONNECT_TIMEOUT_MS 200
#define PW_MAX_CLIENTS	      4096

struct pw_client {
	struct pw_ev ev;
	int fd;
	pid_t pid;
	uid_t uid;
	struct pw_client *next;
};

struct pw_listener {
	uint64_t cookie; /* netns */
	int netns;	 /* fd of the netns, to connect inside it */
	struct sockaddr_in addr;
	const struct pw_client *owner;
	unsigned refs;
	struct pw_listener *next;
};

struct pw_conn {
	struct pw_ev ev; /* K_PENDING: the router's TCP socket while unclaimed */
	uint64_t id;
	uint32_t state;
	/* From another node: the data connection replaces the channel. */
	bool remote;
	int data;		   /* -1 until it arrived */
	struct pw_client *claimer; /* accepted before the data came */
	uint32_t claim_seq;
	uint64_t srv_cookie;
	struct sockaddr_in router_end; /* our TCP socket's address, what accept() sees */
	int tcp;		       /* -1 once claimed */
	int memfd;		       /* kept: a program may re-attach after exec */
	ino_t sock_ino[2];	       /* the socketpair ends: proof for re-attach */
	bool gone[2];		       /* that end's socket no longer exists */
	dev_t sock_dev;
	int srv_sock;		     /* channel end 1, -1 once claimed */
	struct pw_chan_view *view;   /* for status; NULL if it could not be mapped */
	struct pw_wire_addr addr[2]; /* IPv4 */
	int fam[2];		     /* each side's socket family: it sees addr[] in it */
	pid_t pid[2];
	struct pw_conn *next;
};

/* A local client's connect to another node's pod, waiting for the peers. */
struct pw_rconnect {
	struct pw_client *c;
	uint32_t seq;
	int family; /* of the client's socket */
	struct sockaddr_in local, dst;
	struct pw_rconnect *next;
};

static struct {
	const char *socket_path;
	const char *metrics;
	struct pw_wire_prefix prefixes[PW_WIRE_MAX_PREFIXES]; /* IPv4, host bits clear */
	unsigned nprefixes;
	uint32_t ring_size;
	bool foreground;

	int ep, lfd, sigfd, tfd, mfd, self_ns;
	struct pw_ev ev_listen, ev_signal, ev_timer, ev_metrics;
	struct pw_client *clients;
	unsigned nclients;
	struct pw_listener *listeners;
	struct pw_conn *conns;
	struct pw_rconnect *rconnects;
	uint64_t next_id;
	unsigned ticks;
	bool stop;

	/* counters for --metrics */
	uint64_t n_connect, n_accel, n_fallback, n_claim, n_claim_miss, n_bad_msg, n_remote;
	uint64_t bytes_reaped; /* carried by connections already forgotten */
} g = { .ep = -1, .lfd = -1, .sigfd = -1, .tfd = -1, .mfd = -1, .self_ns = -1 };

/* ---- addresses ---- */

/* --prefix: IPv4 prefixes, a bare address being a /32. */
static int pw_parse_prefixes(const char *s)
{
	int n = pw_addr_cidr_list_parse(s, PW_ADDR_CIDR_HOST | PW_ADDR_CIDR_NET, g.prefixes,
					PW_WIRE_MAX_PREFIXES, NULL);

	if (n <= 0)
		return -EINVAL;
	g.nprefixes = (unsigned)n;
	return 0;
}

/* ---- namespaces ---- */

static int pw_sock_cookie(int fd, uint64_t *ret)
{
	socklen_t len = sizeof(*ret);

	return getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, ret, &len) < 0 ? -errno : 0;
}

/*
 * @fd is a TCP socket that speaks IPv4: AF_INET, or a dual-stack AF_INET6
 * one (not IPV6_V6ONLY). @listening: 1 listening, 0 not, -1 either.
 * Returns its family.
 */
static int pw_check_tcp(int fd, int listening)
{
	int v[3];
	socklen_t len = sizeof(int);
	static const int opts[3] = { SO_DOMAIN, SO_TYPE, SO_PROTOCOL };
	static const int want[3] = { AF_INET, SOCK_STREAM, IPPROTO_TCP };

	for (int i = 0; i < 3; i++) {
		len = sizeof(int);
		if (getsockopt(fd, SOL_SOCKET, opts[i], &v[i], &len) < 0)
			return -errno;
		if (v[i] != want[i] && !(i == 0 && v[i] == AF_INET6))
			return -EPROTOTYPE;
	}
	int family = v[0];
	if (family == AF_INET6) {
		len = sizeof(int);
		if (getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v[1], &len) < 0)
			return -errno;
		if (v[1])
			return -EPROTOTYPE;
	}
	len = sizeof(int);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v[0], &len) < 0)
		return -errno;
	return listening < 0 || !!v[0] == listening ? family : -EINVAL;
}

/* A socket's own (@peer false) or peer's address, as IPv4 (see addr.h). */
static int pw_sock_addr4(int fd, bool peer, struct sockaddr_in *ret)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len = sizeof(ss);
	int r = peer ? getpeername(fd, (struct sockaddr *)&ss, &len)
		     : getsockname(fd, (struct sockaddr *)&ss, &len);

	if (r < 0)
		return -errno;
	return pw_addr_to4((struct sockaddr *)&ss, len, ret);
}

/* Make a socket inside the namespace @netns (an nsfs fd). */
static int pw_netns_socket(int netns, int type)
{
	int s, err;

	if (setns(netns, CLONE_NEWNET) < 0)
		return -errno;
	s = socket(AF_INET, type | SOCK_CLOEXEC, 0);
	err = errno;
	if (setns(g.self_ns, CLONE_NEWNET) < 0) {
		/* Stuck in a pod's namespace: nothing we do next can be trusted. */
		pw_err("cannot return to our own network namespace: %s", strerror(errno));
		abort();
	}
	return s < 0 ? -err : s;
}

/* The source address the kernel would pick in @netns to reach @dst. */
static int pw_netns_source(int netns, const struct sockaddr_in *dst, struct sockaddr_in *ret)
{
	int s = pw_netns_socket(netns, SOCK_DGRAM);
	socklen_t len = sizeof(*ret);
	int r = 0;

	if (s < 0)
		return s;
	if (connect(s, (const struct sockaddr *)dst, sizeof(*dst)) < 0 ||
	    getsockname(s, (struct sockaddr *)ret, &len) < 0)
		r = -errno;
	close(s);
	return r;
}

/*
 * Connect a TCP socket, inside @netns, to @dst, waiting at most
 * PW_CONNECT_TIMEOUT_MS. Bound to @dst's address, so it also proves that @dst
 * is an address of that namespace. Returns the socket or -errno.
 */
static int pw_netns_connect(int netns, const struct sockaddr_in *dst)
{
	struct sockaddr_in src = { .sin_family = AF_INET, .sin_addr = dst->sin_addr };
	int s = pw_netns_socket(netns, SOCK_STREAM | SOCK_NONBLOCK);
	int one = 1, err = 0;
	socklen_t len = sizeof(err);

	if (s < 0)
		return s;
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (bind(s, (const struct sockaddr *)&src, sizeof(src)) < 0)
		goto fail;
	if (connect(s, (const struct sockaddr *)dst, sizeof(*dst)) < 0 && errno != EINPROGRESS)
		goto fail;
	struct pollfd pfd = { .fd = s, .events = POLLOUT };
	int n;
	do
		n = poll(&pfd, 1, PW_CONNECT_TIMEOUT_MS);
	while (n < 0 && errno == EINTR);
	if (n == 0) {
		errno = ETIMEDOUT;
		goto fail;
	}
	if (getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		goto fail;
	if (err) {
		errno = err;
		goto fail;
	}
	return s;
fail:
	err = -errno;
	close(s);
	return err;
}

/* ---- epoll bookkeeping ---- */

static int pw_ep_add(int fd, uint32_t events, struct pw_ev *ev)
{
	struct epoll_event e = { .events = events, .data.ptr = ev };

	return epoll_ctl(g.ep, EPOLL_CTL_ADD, fd, &e) < 0 ? -errno : 0;
}

int pw_router_ep_add(int fd, uint32_t events, struct pw_ev *ev)
{
	return pw_ep_add(fd, events, ev);
}

int pw_router_ep_mod(int fd, uint32_t events, struct pw_ev *ev)
{
	struct epoll_event e = { .events = events, .data.ptr = ev };

	return epoll_ctl(g.ep, EPOLL_CTL_MOD, fd, &e) < 0 ? -errno : 0;
}

void pw_router_ep_del(int fd)
{
	epoll_ctl(g.ep, EPOLL_CTL_DEL, fd, NULL);
}

/* ---- listeners ---- */

static void pw_listener_free(struct pw_listener *l)
{
	pw_close(l->netns);
	free(l);
}

static void pw_listeners_drop_owner(const struct pw_client *c)
{
	for (struct pw_listener **pp = &g.listeners; *pp;) {
		struct pw_listener *l = *pp;

		if (l->owner == c) {
			*pp = l->next;
			pw_listener_free(l);
		} else {
			pp = &l->next;
		}
	}
}

static struct pw_listener **pw_listener_find(const struct pw_client *c, uint64_t cookie,
					     const struct sockaddr_in *a)
{
	for (struct pw_listener **pp = &g.listeners; *pp; pp = &(*pp)->next)
		if ((*pp)->owner == c && (*pp)->cookie == cookie && pw_addr_eq(&(*pp)->addr, a))
			return pp;
	return NULL;
}

static int pw_do_listen(struct pw_client *c, int fd, bool add)
{
	struct sockaddr_in a;
	uint64_t cookie;
	int r;
	char buf[PW_ADDR_STRLEN];

	/* A listener being closed may still listen, or be shut down. */
	r = pw_check_tcp(fd, add ? 1 : -1);
	if (r < 0)
		return r;
	if (pw_sock_cookie(fd, &cookie) < 0)
		return -errno;
	r = pw_sock_addr4(fd, false, &a); /* a dual-stack listener on :: is 0.0.0.0 */
	if (r < 0)
		return r;

	struct pw_listener **pp = pw_listener_find(c, cookie, &a);
	if (!add) {
		if (!pp)
			return -ENOENT;
		if (--(*pp)->refs == 0) {
			struct pw_listener *l = *pp;
			*pp = l->next;
			pw_listener_free(l);
		}
		pw_info("pid %d unlistened %s", c->pid, pw_addr_format(&a, buf));
		return 0;
	}
	if (pp) {
		(*pp)->refs++;
		return 0;
	}
	struct pw_listener *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	/* The netns of the socket itself, not whatever the client claims. */
	l->netns = ioctl(fd, SIOCGSKNS);
	if (l->netns < 0) {
		r = -errno;
		free(l);
		return r;
	}
	fcntl(l->netns, F_SETFD, FD_CLOEXEC);
	l->cookie = cookie;
	l->addr = a;
	l->owner = c;
	l->refs = 1;
	l->next = g.listeners;
	g.listeners = l;
	pw_info("pid %d listens on %s (netns %" PRIu64 ")", c->pid, pw_addr_format(&a, buf),
		cookie);
	return 0;
}

/* ---- connections ---- */

/* Speak for the accepting side that never came: the client gets ECONNRESET,
 * as from a listener that closed with the connection in its queue. */
static void pw_conn_reset_unclaimed(struct pw_conn *cn)
{
	if (cn->state != PW_CONN_PENDING || cn->memfd < 0)
		return;
	pw_chan_reset_unattached(cn->memfd, 1);
}

static void pw_conn_unpend(struct pw_conn *cn)
{
	if (cn->tcp >= 0) {
		/* Our end of the pod-local connection was only a ticket: reset it,
		 * so neither end sits in TIME_WAIT on the server's port (servers
		 * that re-bind their listener would find it taken). */
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };
		setsockopt(cn->tcp, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		epoll_ctl(g.ep, EPOLL_CTL_DEL, cn->tcp, NULL);
		cn->tcp = pw_close(cn->tcp);
	}
	cn->srv_sock = pw_close(cn->srv_sock);
}

static void pw_conn_free(struct pw_conn *cn)
{
	pw_conn_unpend(cn);
	cn->data = pw_close(cn->data);
	cn->memfd = pw_close(cn->memfd);
	pw_chan_view_close(cn->view);
	free(cn);
}

static void pw_conn_remove(struct pw_conn *cn)
{
	for (struct pw_conn **pp = &g.conns; *pp; pp = &(*pp)->next)
		if (*pp == cn) {
			*pp = cn->next;
			break;
		}
	pw_conn_free(cn);
}

static int pw_reply_err(struct pw_client *c, uint32_t seq, int err)
{
	struct pw_wire_err e = { .err = err };

	return pw_msg_send(c->fd, PW_MSG_ERR, seq, &e, sizeof(e), NULL, 0, NULL, 0);
}

static bool pw_is_loopback(const struct sockaddr_in *a)
{
	return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
}

/* Find a listener that can take a connection to @dst from netns @cookie and
 * connect to it; returns the connected socket and the listener's netns cookie. */
static int pw_find_and_connect(uint64_t cookie, const struct sockaddr_in *dst, uint64_t *ret_cookie)
{
	int last = -ECONNREFUSED;

	for (struct pw_listener *l = g.listeners; l; l = l->next) {
		if (l->addr.sin_port != dst->sin_port)
			continue;
		if (l->addr.sin_addr.s_addr != htonl(INADDR_ANY) &&
		    l->addr.sin_addr.s_addr != dst->sin_addr.s_addr)
			continue;
		/* Loopback never leaves a namespace. */
		if (pw_is_loopback(dst) && l->cookie != cookie)
			continue;
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

static void pw_rconnect_done(void *ctx, int sock, uint64_t conn)
{
	struct pw_rconnect *rc = ctx;
	char b1[PW_ADDR_STRLEN], b2[PW_ADDR_STRLEN];

	for (struct pw_rconnect **pp = &g.rconnects; *pp; pp = &(*pp)->next)
		if (*pp == rc) {
			*pp = rc->next;
			break;
		}
	if (sock >= 0) {
		struct pw_wire_conn body = { .id = conn, .side = 0 };
		pw_addr_to_wire(&rc->local, rc->family, &body.local);
		pw_addr_to_wire(&rc->dst, rc->family, &body.peer);
		if (pw_msg_send(rc->c->fd, PW_MSG_CONN_TCP, rc->seq, &body, sizeof(body), NULL, 0,
				&sock, 1) == 0) {
			g.n_remote++;
			pw_info("pid %d %s -> %s: direct over the underlay (remote conn %" PRIu64
				")",
				rc->c->pid, pw_addr_format(&rc->local, b1),
				pw_addr_format(&rc->dst, b2), conn);
		}
		close(sock);
	} else {
		g.n_fallback++;
		pw_reply_err(rc->c, rc->seq, -sock);
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
	rc->next = g.rconnects;
	g.rconnects = rc;
	return 0;
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

	if (pw_is_loopback(dst) || pw_is_loopback(src))
		return -EACCES;
	tcp = pw_find_and_connect(0, dst, &srv_cookie);
	if (tcp < 0)
		return tcp;
	if (getsockname(tcp, (struct sockaddr *)&router_end, &len) < 0) {
		r = -errno;
		close(tcp);
		return r;
	}
	cn = calloc(1, sizeof(*cn));
	if (!cn) {
		close(tcp);
		return -ENOMEM;
	}
	cn->ev.kind = K_PENDING;
	cn->id = ++g.next_id;
	cn->state = PW_CONN_PENDING;
	cn->remote = true;
	cn->srv_cookie = srv_cookie;
	cn->router_end = router_end;
	cn->tcp = tcp;
	cn->memfd = -1;
	cn->srv_sock = -1;
	cn->data = -1;
	pw_addr_to_wire(src, AF_INET, &cn->addr[0]);
	pw_addr_to_wire(dst, AF_INET, &cn->addr[1]);
	pw_ep_add(tcp, EPOLLRDHUP, &cn->ev);
	cn->next = g.conns;
	g.conns = cn;
	pw_info("conn %" PRIu64 ": %s (another node) -> %s, waiting for accept", cn->id,
		pw_addr_format(src, b1), pw_addr_format(dst, b2));
	*ret_id = cn->id;
	return 0;
}

/* The CONN body for @side: its own address and its peer's, in its family. */
static struct pw_wire_conn pw_conn_body(const struct pw_conn *cn, unsigned side)
{
	struct pw_wire_conn body = { .id = cn->id, .side = side };
	struct sockaddr_in a;

	pw_addr_from_wire(&cn->addr[side], &a, NULL);
	pw_addr_to_wire(&a, cn->fam[side], &body.local);
	pw_addr_from_wire(&cn->addr[!side], &a, NULL);
	pw_addr_to_wire(&a, cn->fam[side], &body.peer);
	return body;
}

static struct pw_conn *pw_conn_by_id(uint64_t id)
{
	for (struct pw_conn *cn = g.conns; cn; cn = cn->next)
		if (cn->id == id)
			return cn;
	return NULL;
}

/* Hand the data connection to the server that accepted; the connection is
 * then none of our business. */
static int pw_remote_give(struct pw_conn *cn, struct pw_client *c, uint32_t seq)
{
	struct pw_wire_conn body = pw_conn_body(cn, 1);
	int r = pw_msg_send(c->fd, PW_MSG_CONN_TCP, seq, &body, sizeof(body), NULL, 0, &cn->data,
			    1);

	if (r == 0) {
		g.n_claim++;
		pw_info("conn %" PRIu64 ": accepted by pid %d (direct from another node)", cn->id,
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
		if (pw_remote_give(cn, cn->claimer, cn->claim_seq) < 0)
			pw_reply_err(cn->claimer, cn->claim_seq, EIO);
		pw_conn_remove(cn);
	}
}

void pw_router_remote_drop(uint64_t id)
{
	struct pw_conn *cn = pw_conn_by_id(id);

	if (!cn || !cn->remote)
		return;
	if (cn->claimer)
		pw_reply_err(cn->claimer, cn->claim_seq, ECONNRESET);
	pw_conn_remove(cn);
}

static int pw_do_connect(struct pw_client *c, const struct pw_msg *m, int fd)
{
	struct sockaddr_in local = { 0 }, dst = { 0 }, router_end = { 0 };
	socklen_t len = sizeof(router_end);
	uint64_t cookie, srv_cookie = 0;
	int memfd = -1, sv[2] = { -1, -1 }, tcp = -1, r, cns = -1;
	struct pw_conn *cn = NULL;
	char b1[PW_ADDR_STRLEN], b2[PW_ADDR_STRLEN];

	g.n_connect++;
	int family = pw_check_tcp(fd, 0);
	if (family < 0)
		return family;
	if (pw_addr_from_wire(&m->u.connect.peer, &dst, NULL) < 0 ||
	    pw_addr_from_wire(&m->u.connect.local, &local, NULL) < 0)
		return -EAFNOSUPPORT;
	if (pw_sock_cookie(fd, &cookie) < 0)
		return -errno;

	/* The client's address as the server will see it: the source the
	 * kernel would choose in the client's namespace, and its port. */
	if (local.sin_addr.s_addr == htonl(INADDR_ANY)) {
		struct sockaddr_in src;

		cns = ioctl(fd, SIOCGSKNS);
		if (cns < 0)
			goto fail_errno;
		r = pw_netns_source(cns, &dst, &src);
		if (r < 0)
			goto fail;
		local.sin_addr = src.sin_addr;
	}

	tcp = pw_find_and_connect(cookie, &dst, &srv_cookie);
	if (tcp == -ECONNREFUSED && pw_peers_enabled() && !pw_is_loopback(&dst)) {
		/* Not a pod of this node: perhaps of another's. */
		r = pw_rconnect_start(c, m->seq, family, &local, &dst);
		if (r == 0) {
			pw_close(cns);
			return 1; /* answered when the peer has */
		}
	}
	if (tcp < 0) {
		r = tcp;
		tcp = -1;
		goto fail;
	}
	if (getsockname(tcp, (struct sockaddr *)&router_end, &len) < 0)
		goto fail_errno;

	/* Both readers start armed: a socket with data waiting is readable to
	 * poll and epoll even if its reader never waited (data sent before
	 * accept, a thread already asleep in epoll_wait when the fd is added). */
	r = pw_chan_create(g.ring_size, PW_CHAN_ARMED, &memfd, sv);
	if (r < 0)
		goto fail;
	cn = calloc(1, sizeof(*cn));
	if (!cn) {
		r = -ENOMEM;
		goto fail;
	}
	cn->ev.kind = K_PENDING;
	cn->id = ++g.next_id;
	cn->state = PW_CONN_PENDING;
	cn->srv_cookie = srv_cookie;
	cn->router_end = router_end;
	cn->tcp = tcp;
	cn->memfd = memfd;
	cn->srv_sock = sv[1];
	cn->data = -1;
	cn->pid[0] = c->pid;
	pw_addr_to_wire(&local, AF_INET, &cn->addr[0]);
	pw_addr_to_wire(&dst, AF_INET, &cn->addr[1]);
	cn->fam[0] = family;
	struct stat st0, st1;
	if (fstat(sv[0], &st0) == 0 && fstat(sv[1], &st1) == 0) {
		cn->sock_ino[0] = st0.st_ino;
		cn->sock_ino[1] = st1.st_ino;
		cn->sock_dev = st0.st_dev;
	}
	if (pw_chan_view_open(memfd, &cn->view) < 0)
		cn->view = NULL;

	struct pw_wire_conn body = pw_conn_body(cn, 0);
	int fds[2] = { memfd, sv[0] };
	r = pw_msg_send(c->fd, PW_MSG_CONN, m->seq, &body, sizeof(body), NULL, 0, fds, 2);
	if (r < 0)
		goto fail;
	pw_close(sv[0]);
	pw_close(cns);
	/* If the server side closes the connection unclaimed, give up on it. */
	pw_ep_add(tcp, EPOLLRDHUP, &cn->ev);
	cn->next = g.conns;
	g.conns = cn;
	g.n_accel++;
	pw_info("conn %" PRIu64 ": pid %d %s -> %s, waiting for accept", cn->id, c->pid,
		pw_addr_format(&local, b1), pw_addr_format(&dst, b2));
	return 0;

fail_errno:
	r = -errno;
fail:
	if (cn) {
		pw_chan_view_close(cn->view);
		free(cn);
	}
	pw_close(memfd);
	pw_close(sv[0]);
	pw_close(sv[1]);
	pw_close(tcp);
	pw_close(cns);
	g.n_fallback++;
	pw_dbg("pid %d connect to %s: kernel path (%s)", c->pid, pw_addr_format(&dst, b2),
	       strerror(-r));
	return r;
}

static int pw_do_claim(struct pw_client *c, const struct pw_msg *m, int fd)
{
	struct sockaddr_in peer;
	uint64_t cookie;
	int family = pw_check_tcp(fd, 0);
	int r;

	if (family < 0)
		return family;
	if (pw_sock_cookie(fd, &cookie) < 0)
		return -errno;
	r = pw_sock_addr4(fd, true, &peer);
	if (r < 0)
		return r;
	for (struct pw_conn *cn = g.conns; cn; cn = cn->next) {
		if (cn->state != PW_CONN_PENDING || cn->srv_cookie != cookie ||
		    !pw_addr_eq(&cn->router_end, &peer))
			continue;
		if (cn->remote) {
			if (cn->claimer)
				return -EBUSY;
			cn->fam[1] = family;
			if (cn->data < 0) {
				/* The data connection is still on its way. */
				cn->claimer = c;
				cn->claim_seq = m->seq;
				return 1;
			}
			r = pw_remote_give(cn, c, m->seq);
			if (r == 0)
				pw_conn_remove(cn);
			return r;
		}
		cn->fam[1] = family;
		struct pw_wire_conn body = pw_conn_body(cn, 1);
		int fds[2] = { cn->memfd, cn->srv_sock };
		r = pw_msg_send(c->fd, PW_MSG_CONN, m->seq, &body, sizeof(body), NULL, 0, fds, 2);
		if (r < 0)
			return r;
		cn->pid[1] = c->pid;
		cn->state = PW_CONN_OPEN;
		pw_conn_unpend(cn);
		g.n_claim++;
		pw_info("conn %" PRIu64 ": accepted by pid %d", cn->id, c->pid);
		return 0;
	}
	g.n_claim_miss++;
	return -ENOENT;
}

/* The connection @id whose channel socket @fd is, and which side. */
static struct pw_conn *pw_conn_by_sock(uint64_t id, int fd, unsigned *ret_side)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return NULL;
	for (struct pw_conn *cn = g.conns; cn; cn = cn->next) {
		if ((id && cn->id != id) || cn->memfd < 0 || st.st_dev != cn->sock_dev)
			continue;
		for (unsigned side = 0; side < 2; side++)
			if (cn->sock_ino[side] == st.st_ino) {
				*ret_side = side;
				return cn;
			}
	}
	return NULL;
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
static int pw_do_reattach(struct pw_client *c, const struct pw_msg *m, int fd)
{
	unsigned side;
	struct pw_conn *cn = m->u.reattach.id ? pw_conn_by_sock(m->u.reattach.id, fd, &side) : NULL;

	if (!cn)
		return -ENOENT;
	int r = pw_conn_give(c, m->seq, cn, side, fd);
	if (r == 0)
		pw_info("conn %" PRIu64 ": side %u re-attached by pid %d after exec", cn->id, side,
			c->pid);
	return r;
}

/*
 * The application passes a connection to another process (SCM_RIGHTS): it
 * proves it holds side @side with the channel's socket, and gets a kernel
 * stream to pass instead, which we relay (relay.c) until the receiver takes
 * the channel over, or for good if it does not run the library.
 */
static int pw_do_relay(struct pw_client *c, const struct pw_msg *m, int *fd)
{
	unsigned side;
	struct pw_conn *cn = m->u.relay.id ? pw_conn_by_sock(m->u.relay.id, *fd, &side) : NULL;
	int app, r;

	if (!cn || cn->state == PW_CONN_PENDING)
		return -ENOENT;
	r = pw_relay_start(cn->id, cn->memfd, *fd, side, m->u.relay.flags & PW_RELAY_NOW, &app);
	*fd = -1; /* taken */
	if (r < 0)
		return r;
	struct pw_wire_conn body = pw_conn_body(cn, side);
	r = pw_msg_send(c->fd, PW_MSG_RELAY_OK, m->seq, &body, sizeof(body), NULL, 0, &app, 1);
	close(app);
	if (r == 0) {
		cn->pid[side] = 0; /* the router's, until someone takes it */
		pw_info("conn %" PRIu64 ": side %u handed on by pid %d, relayed", cn->id, side,
			c->pid);
	}
	return r;
}

/* A receiver that runs the library proves it holds a relayed stream. */
static int pw_do_take(struct pw_client *c, const struct pw_msg *m, int fd)
{
	uint64_t id;
	unsigned side;
	int sock;
	int r = pw_relay_take(fd, &id, &side, &sock);

	if (r < 0)
		return r;
	struct pw_conn *cn = pw_conn_by_id(id);
	r = cn ? pw_conn_give(c, m->seq, cn, side, sock) : -ENOENT;
	close(sock);
	if (r == 0)
		pw_info("conn %" PRIu64 ": side %u taken over by pid %d", id, side, c->pid);
	return r;
}

static uint32_t pw_conn_state(const struct pw_conn *cn)
{
	struct pw_chan_state st;

	if (cn->state == PW_CONN_PENDING || !cn->view)
		return cn->state;
	pw_chan_view_get(cn->view, &st);
	/* A side whose socket is gone ended, even without saying so (its
	 * process died, or the last of several holders closed). */
	bool closed0 = st.closed[0] || cn->gone[0], closed1 = st.closed[1] || cn->gone[1];
	if (closed0 && closed1)
		return PW_CONN_CLOSED;
	if (st.wr_done[0] || st.wr_done[1] || closed0 || closed1)
		return PW_CONN_HALF;
	return PW_CONN_OPEN;
}

/* Bytes @side wrote into the connection so far. */
static uint64_t pw_conn_bytes(const struct pw_conn *cn, unsigned side)
{
	struct pw_chan_state st;

	if (!cn->view)
		return 0;
	pw_chan_view_get(cn->view, &st);
	return st.bytes[side];
}

static bool pw_pid_alive(pid_t pid)
{
	return pid <= 0 || kill(pid, 0) == 0 || errno == EPERM;
}

/*
 * Which channel sockets are gone, from one look at every Unix socket of our
 * namespace (the channels' socketpairs are made here). Without the kernel's
 * socket diagnostics, a side whose process is gone counts as gone.
 */
static void pw_conns_check_sockets(void)
{
	uint32_t *inodes = NULL;
	size_t n = 0;
	bool any = false;

	for (struct pw_conn *cn = g.conns; cn && !any; cn = cn->next)
		any = cn->state != PW_CONN_PENDING && !cn->remote;
	if (!any)
		return;
	int r = pw_diag_unix_inodes(&inodes, &n);
	for (struct pw_conn *cn = g.conns; cn; cn = cn->next) {
		if (cn->state == PW_CONN_PENDING || cn->remote)
			continue;
		for (unsigned side = 0; side < 2; side++)
			cn->gone[side] =
				r == 0 ? !pw_diag_has(inodes, n, (uint32_t)cn->sock_ino[side])
				       : !pw_pid_alive(cn->pid[side]);
	}
	free(inodes);
}

/* Forget connections that both ends closed or whose sockets are gone. */
static void pw_conns_reap(void)
{
	pw_conns_check_sockets();
	for (struct pw_conn **pp = &g.conns; *pp;) {
		struct pw_conn *cn = *pp;
		bool gone = cn->state != PW_CONN_PENDING && pw_conn_state(cn) == PW_CONN_CLOSED;

		if (gone) {
			pw_dbg("conn %" PRIu64 ": reaped", cn->id);
			g.bytes_reaped += pw_conn_bytes(cn, 0) + pw_conn_bytes(cn, 1);
			*pp = cn->next;
			pw_conn_free(cn);
		} else {
			pp = &cn->next;
		}
	}
}

static int pw_do_status(struct pw_client *c, const struct pw_msg *m)
{
	static struct pw_wire_status_entry ents[PW_WIRE_STATUS_PAGE];
	struct pw_wire_status st = { 0 };

	for (struct pw_conn *cn = g.conns; cn; cn = cn->next) {
		st.total++;
		if (st.count == PW_WIRE_STATUS_PAGE)
			continue;
		struct pw_wire_status_entry *e = &ents[st.count++];
		memset(e, 0, sizeof(*e));
		e->id = cn->id;
		e->addr[0] = cn->addr[0];
		e->addr[1] = cn->addr[1];
		e->pid[0] = cn->pid[0];
		e->pid[1] = cn->pid[1];
		e->state = pw_conn_state(cn);
		e->bytes[0] = pw_conn_bytes(cn, 0);
		e->bytes[1] = pw_conn_bytes(cn, 1);
	}
	return pw_msg_send(c->fd, PW_MSG_STATUS_OK, m->seq, &st, sizeof(st), ents,
			   st.count * sizeof(ents[0]), NULL, 0);
}

static int pw_do_hello(struct pw_client *c, const struct pw_msg *m)
{
	struct pw_wire_hello_ok ok = { .node_version = PW_WIRE_VERSION, .count = g.nprefixes };

	return pw_msg_send(c->fd, PW_MSG_HELLO_OK, m->seq, &ok, sizeof(ok), g.prefixes,
			   g.nprefixes * sizeof(g.prefixes[0]), NULL, 0);
}

/* ---- clients ---- */

static void pw_client_drop(struct pw_client *c)
{
	for (struct pw_client **pp = &g.clients; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	pw_listeners_drop_owner(c);
	for (struct pw_rconnect **pp = &g.rconnects; *pp;) {
		struct pw_rconnect *rc = *pp;
		if (rc->c == c) {
			*pp = rc->next;
			pw_peers_cancel(rc);
			free(rc);
		} else {
			pp = &rc->next;
		}
	}
	for (struct pw_conn *cn = g.conns; cn; cn = cn->next)
		if (cn->claimer == c)
			cn->claimer = NULL;
	epoll_ctl(g.ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	g.nclients--;
	pw_dbg("client pid %d gone", c->pid);
	free(c);
}

/* One request. Returns <0 to drop the client (malformed input). */
static int pw_client_request(struct pw_client *c)
{
	static uint8_t buf[PW_WIRE_MAX] __attribute__((aligned(8)));
	int fds[PW_WIRE_MAX_FDS];
	unsigned nfds = 0;
	struct pw_msg m;
	ssize_t n = pw_msg_recv(c->fd, buf, sizeof(buf), fds, &nfds, MSG_DONTWAIT);
	int r;

	if (n == -EAGAIN)
		return 0;
	if (n <= 0)
		return n == 0 ? -EPIPE : (int)n;
	r = pw_msg_parse(buf, (size_t)n, nfds, &m);
	if (r < 0) {
		g.n_bad_msg++;
		pw_warn("pid %d: malformed request (%s); dropping the client", c->pid,
			strerror(-r));
		for (unsigned i = 0; i < nfds; i++)
			close(fds[i]);
		return r;
	}
	switch (m.type) {
	case PW_MSG_HELLO:
		r = pw_do_hello(c, &m);
		break;
	case PW_MSG_LISTEN:
	case PW_MSG_UNLISTEN:
		r = pw_do_listen(c, fds[0], m.type == PW_MSG_LISTEN);
		/* Our copy keeps the socket alive: dropped before the answer, or an
		 * app that closes its listener on the answer and binds the port
		 * again (iperf3 -s after each test) races it to EADDRINUSE. */
		for (; nfds > 0; nfds--)
			close(fds[nfds - 1]);
		r = r < 0 ? pw_reply_err(c, m.seq, -r)
			  : pw_msg_send(c->fd, PW_MSG_OK, m.seq, NULL, 0, NULL, 0, NULL, 0);
		break;
	case PW_MSG_CONNECT:
		r = pw_do_connect(c, &m, fds[0]);
		if (r < 0)
			r = pw_reply_err(c, m.seq, -r);
		r = r > 0 ? 0 : r; /* >0: answered later */
		break;
	case PW_MSG_CLAIM:
		r = pw_do_claim(c, &m, fds[0]);
		if (r < 0)
			r = pw_reply_err(c, m.seq, -r);
		r = r > 0 ? 0 : r;
		break;
	case PW_MSG_STATUS:
		r = pw_do_status(c, &m);
		break;
	case PW_MSG_REATTACH:
		r = pw_do_reattach(c, &m, fds[0]);
		if (r < 0)
			r = pw_reply_err(c, m.seq, -r);
		break;
	case PW_MSG_RELAY:
		r = pw_do_relay(c, &m, &fds[0]);
		if (r < 0)
			r = pw_reply_err(c, m.seq, -r);
		break;
	case PW_MSG_TAKE:
		r = pw_do_take(c, &m, fds[0]);
		if (r < 0)
			r = pw_reply_err(c, m.seq, -r);
		break;
	case PW_MSG_POD_ADD:
	case PW_MSG_POD_DEL:
	case PW_MSG_PODS:
		r = pw_pods_request(c->fd, c->pid, c->uid, &m, nfds ? fds[0] : -1);
		break;
	default:
		g.n_bad_msg++;
		pw_warn("pid %d: reply type %u sent as a request; dropping the client", c->pid,
			m.type);
		r = -EPROTO;
	}
	for (unsigned i = 0; i < nfds; i++)
		pw_close(fds[i]);
	return r;
}

static void pw_client_accept(void)
{
	for (;;) {
		int fd = accept4(g.lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		struct ucred cred;
		socklen_t len = sizeof(cred);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				pw_warn("accept: %s", strerror(errno));
			return;
		}
		if (g.nclients >= PW_MAX_CLIENTS) {
			pw_warn("too many clients (%u); refusing one", g.nclients);
			close(fd);
			continue;
		}
		struct pw_client *c = calloc(1, sizeof(*c));
		if (!c || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
			free(c);
			close(fd);
			continue;
		}
		c->ev.kind = K_CLIENT;
		c->fd = fd;
		c->pid = cred.pid;
		c->uid = cred.uid;
		if (pw_ep_add(fd, EPOLLIN, &c->ev) < 0) {
			free(c);
			close(fd);
			continue;
		}
		c->next = g.clients;
		g.clients = c;
		g.nclients++;
		pw_dbg("client pid %d uid %u", c->pid, c->uid);
	}
}

/* ---- metrics (Prometheus text format over HTTP/1.0) ---- */

static void pw_metrics_serve(void)
{
	int fd = accept4(g.mfd, NULL, NULL, SOCK_CLOEXEC);
	char body[8192], req[1024];
	unsigned open = 0, pending = 0, listeners = 0;
	uint64_t bytes = g.bytes_reaped;

	if (fd < 0)
		return;
	/* Read the request line, but never wait long for it. */
	struct timeval tv = { .tv_sec = 0, .tv_usec = 200000 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (recv(fd, req, sizeof(req), 0) < 0) {
		close(fd);
		return;
	}
	for (struct pw_conn *cn = g.conns; cn; cn = cn->next) {
		if (cn->state == PW_CONN_PENDING)
			pending++;
		else if (pw_conn_state(cn) != PW_CONN_CLOSED)
			open++;
		bytes += pw_conn_bytes(cn, 0) + pw_conn_bytes(cn, 1);
	}
	for (struct pw_listener *l = g.listeners; l; l = l->next)
		listeners++;
	int n = snprintf(
		body, sizeof(body),
		"# HELP podwire_connect_requests_total connect() calls brokered or refused\n"
		"# TYPE podwire_connect_requests_total counter\n"
		"podwire_connect_requests_total %" PRIu64 "\n"
		"# TYPE podwire_connections_accelerated_total counter\n"
		"podwire_connections_accelerated_total %" PRIu64 "\n"
		"# TYPE podwire_connections_fallback_total counter\n"
		"podwire_connections_fallback_total %" PRIu64 "\n"
		"# TYPE podwire_claims_total counter\n"
		"podwire_claims_total %" PRIu64 "\n"
		"# TYPE podwire_claims_unmatched_total counter\n"
		"podwire_claims_unmatched_total %" PRIu64 "\n"
		"# TYPE podwire_bad_messages_total counter\n"
		"podwire_bad_messages_total %" PRIu64 "\n"
		"# TYPE podwire_connections gauge\n"
		"podwire_connections{state=\"open\"} %u\n"
		"podwire_connections{state=\"pending\"} %u\n"
		"# TYPE podwire_listeners gauge\n"
		"podwire_listeners %u\n"
		"# TYPE podwire_clients gauge\n"
		"podwire_clients %u\n"
		"# HELP podwire_bytes_total bytes carried over shared memory\n"
		"# TYPE podwire_bytes_total counter\n"
		"podwire_bytes_total %" PRIu64 "\n",
		g.n_connect, g.n_accel, g.n_fallback, g.n_claim, g.n_claim_miss, g.n_bad_msg, open,
		pending, listeners, g.nclients, bytes);
	if (n > 0 && (size_t)n < sizeof(body)) {
		FILE *f = fmemopen(body + n, sizeof(body) - (size_t)n, "w");
		if (f) {
			pw_peers_metrics(f);
			pw_relays_metrics(f);
			fflush(f);
			n += (int)ftell(f);
			fclose(f);
		}
	}
	char head[160];
	int h = snprintf(head, sizeof(head),
			 "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
			 "Content-Length: %d\r\nConnection: close\r\n\r\n",
			 n);
	struct iovec iov[2] = { { head, (size_t)h }, { body, (size_t)n } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
	sendmsg(fd, &mh, MSG_NOSIGNAL);
	close(fd);
}

static int pw_metrics_open(const char *spec)
{
	struct sockaddr_in a;
	int one = 1;

	if (pw_addr_parse(spec, &a) < 0)
		return -EINVAL;
	g.mfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (g.mfd < 0)
		return -errno;
	setsockopt(g.mfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(g.mfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(g.mfd, 16) < 0)
		return -errno;
	g.ev_metrics.kind = K_METRICS;
	return pw_ep_add(g.mfd, EPOLLIN, &g.ev_metrics);
}

/* ---- setup ---- */

static int pw_mkdir_parents(const char *path)
{
	char buf[sizeof(((struct sockaddr_un *)0)->sun_path)];

	if (strlen(path) >= sizeof(buf))
		return -ENAMETOOLONG;
	strcpy(buf, path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return 0;
}

static int pw_listen_open(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int r;

	if (strlen(path) >= sizeof(a.sun_path))
		return -ENAMETOOLONG;
	strcpy(a.sun_path, path);
	r = pw_mkdir_parents(path);
	if (r < 0)
		return r;
	g.lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (g.lfd < 0)
		return -errno;
	/* A socket file left by a dead router is stale; a live one is not ours. */
	int probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (probe >= 0 && connect(probe, (struct sockaddr *)&a, sizeof(a)) == 0) {
		close(probe);
		return -EADDRINUSE;
	}
	pw_close(probe);
	unlink(path);
	if (bind(g.lfd, (struct sockaddr *)&a, sizeof(a)) < 0)
		return -errno;
	/* Pods run as any user; what they may do is decided per request. */
	chmod(path, 0666);
	if (listen(g.lfd, 128) < 0)
		return -errno;
	g.ev_listen.kind = K_LISTEN;
	return pw_ep_add(g.lfd, EPOLLIN, &g.ev_listen);
}

static int pw_setup(void)
{
	sigset_t set;
	int r;

	/* One memfd per connection is kept open: take all the fds allowed. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	g.self_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (g.self_ns < 0)
		return -errno;
	g.ep = epoll_create1(EPOLL_CLOEXEC);
	if (g.ep < 0)
		return -errno;
	r = pw_listen_open(g.socket_path);
	if (r < 0) {
		pw_err("cannot listen on %s: %s", g.socket_path, strerror(-r));
		return r;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	g.sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	g.ev_signal.kind = K_SIGNAL;
	if (g.sigfd < 0 || pw_ep_add(g.sigfd, EPOLLIN, &g.ev_signal) < 0)
		return -errno;
	g.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	struct itimerspec its = { .it_interval = { 0, PW_TICK_MS * 1000000L },
				  .it_value = { 0, PW_TICK_MS * 1000000L } };
	g.ev_timer.kind = K_TIMER;
	if (g.tfd < 0 || timerfd_settime(g.tfd, 0, &its, NULL) < 0 ||
	    pw_ep_add(g.tfd, EPOLLIN, &g.ev_timer) < 0)
		return -errno;
	if (g.metrics) {
		r = pw_metrics_open(g.metrics);
		if (r < 0) {
			pw_err("cannot serve metrics on %s: %s", g.metrics, strerror(-r));
			return r;
		}
	}
	return 0;
}

static void pw_teardown(void)
{
	pw_peers_teardown();
	pw_relays_teardown();
	while (g.clients)
		pw_client_drop(g.clients);
	while (g.conns) {
		struct pw_conn *cn = g.conns;
		g.conns = cn->next;
		pw_conn_free(cn);
	}
	if (g.lfd >= 0)
		unlink(g.socket_path);
	pw_close(g.lfd);
	pw_close(g.mfd);
	pw_close(g.tfd);
	pw_close(g.sigfd);
	pw_close(g.ep);
	pw_close(g.self_ns);
}

static void pw_loop(void)
{
	struct epoll_event evs[64];

	while (!g.stop) {
		int n = epoll_wait(g.ep, evs, 64, -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			pw_err("epoll_wait: %s", strerror(errno));
			return;
		}
		for (int i = 0; i < n; i++) {
			struct pw_ev *ev = evs[i].data.ptr;

			switch (ev->kind) {
			case K_LISTEN:
				pw_client_accept();
				break;
			case K_SIGNAL: {
				struct signalfd_siginfo si;
				if (read(g.sigfd, &si, sizeof(si)) == sizeof(si) &&
				    si.ssi_signo != SIGHUP) {
					pw_info("signal %u: shutting down", si.ssi_signo);
					g.stop = true;
				}
				break;
			}
			case K_TIMER: {
				uint64_t ticks;
				if (read(g.tfd, &ticks, sizeof(ticks)) <= 0)
					break;
				pw_peers_tick();
				if (++g.ticks % (1000 / PW_TICK_MS) == 0)
					pw_conns_reap();
				break;
			}
			case K_METRICS:
				pw_metrics_serve();
				break;
			case K_CLIENT: {
				struct pw_client *c = (struct pw_client *)ev;
				if (evs[i].events & (EPOLLHUP | EPOLLERR) &&
				    !(evs[i].events & EPOLLIN)) {
					pw_client_drop(c);
					break;
				}
				if (pw_client_request(c) < 0)
					pw_client_drop(c);
				break;
			}
			case K_PENDING: {
				struct pw_conn *cn = (struct pw_conn *)ev;
				pw_info("conn %" PRIu64 ": closed by the server before it was "
					"claimed; resetting the client",
					cn->id);
				pw_conn_reset_unclaimed(cn);
				if (cn->claimer)
					pw_reply_err(cn->claimer, cn->claim_seq, ECONNRESET);
				pw_conn_remove(cn);
				break;
			}
			case K_RELAY_CHAN:
			case K_RELAY_APP:
			case K_RELAY_TIMER:
				pw_relay_event(ev, evs[i].events);
				break;
			default:
				pw_peers_event(ev, evs[i].events);
				break;
			}
		}
	}
}

static const char pw_usage[] =
	"Usage: podwired [OPTIONS]\n"
	"\n"
	"The podwire node router: it brokers TCP connections between pods on this\n"
	"node onto shared-memory channels. Applications load libpodwire.so\n"
	"(LD_PRELOAD) and ask it over a Unix socket; it is never on the data path.\n"
	"\n"
	"Options:\n"
	"  -s, --socket PATH     control socket (default " PW_WIRE_DEFAULT_SOCKET ")\n"
	"  -p, --prefix CIDRS    destinations to accelerate, comma-separated IPv4\n"
	"                        prefixes (default " PW_DEFAULT_PREFIX ")\n"
	"  -m, --metrics H:P     serve Prometheus metrics over HTTP on IPv4 H, port P\n"
	"      --ring-size N     bytes per direction of each channel (default 256K)\n"
	"  -f, --foreground      stay in the foreground (default: detach)\n"
	"  -l, --log-level L     error, warn, info (default) or debug; logs go to stderr\n"
	"\n"
	"Federation (pods on other nodes: direct TCP over the underlay, no overlay):\n"
	"      --peer-listen A:P  this node's underlay address and a port, for other\n"
	"                        routers and for the data connections they broker\n"
	"      --peers A:P,...   other nodes' routers to dial (their --peer-listen)\n"
	"      --pod-cidr CIDRS  pod addresses of this node, advertised to peers\n"
	"      --secret-file F   the cluster's shared secret (16 bytes or more); peers\n"
	"                        prove they know it before anything else\n"
	"      --node-name NAME  how peers log this node (default: the host name)\n"
	"  -h, --help            show this help\n"
	"\n"
	"Signals: SIGTERM or SIGINT shut down cleanly (established connections keep\n"
	"working: they do not depend on the router).\n";

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "prefix", required_argument, NULL, 'p' },
		{ "metrics", required_argument, NULL, 'm' },
		{ "ring-size", required_argument, NULL, 'r' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ "peer-listen", required_argument, NULL, 'L' },
		{ "peers", required_argument, NULL, 'P' },
		{ "pod-cidr", required_argument, NULL, 'C' },
		{ "secret-file", required_argument, NULL, 'S' },
		{ "node-name", required_argument, NULL, 'N' },
		{ 0 },
	};
	const char *prefix = PW_DEFAULT_PREFIX;
	struct pw_peers_cfg peers = { 0 };
	int c, r;

	pw_log_ident = "podwired";
	g.socket_path = PW_WIRE_DEFAULT_SOCKET;
	g.ring_size = 256u * 1024u;
	while ((c = getopt_long(argc, argv, "s:p:m:fl:h", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			g.socket_path = optarg;
			break;
		case 'p':
			prefix = optarg;
			break;
		case 'm':
			g.metrics = optarg;
			break;
		case 'r': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);
			if (*end == 'K' || *end == 'k')
				v <<= 10, end++;
			else if (*end == 'M' || *end == 'm')
				v <<= 20, end++;
			if (*end || v > UINT32_MAX || !pw_chan_ring_size_ok((uint32_t)v)) {
				fprintf(stderr,
					"podwired: bad --ring-size '%s' (a power of two, "
					"4K to 1G)\n",
					optarg);
				return 2;
			}
			g.ring_size = (uint32_t)v;
			break;
		}
		case 'f':
			g.foreground = true;
			break;
		case 'l':
			r = pw_log_parse(optarg);
			if (r < 0) {
				fprintf(stderr, "podwired: bad --log-level '%s'\n", optarg);
				return 2;
			}
			pw_log_max = (enum pw_log_level)r;
			break;
		case 'h':
			fputs(pw_usage, stdout);
			return 0;
		case 'L':
			peers.listen = optarg;
			break;
		case 'P':
			peers.peers = optarg;
			break;
		case 'C':
			peers.pod_cidrs = optarg;
			break;
		case 'S':
			peers.secret_file = optarg;
			break;
		case 'N':
			peers.node_name = optarg;
			break;
		default:
			fprintf(stderr, "Try 'podwired --help'.\n");
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "podwired: unexpected argument '%s'\nTry 'podwired --help'.\n",
			argv[optind]);
		return 2;
	}
	if (pw_parse_prefixes(prefix) < 0) {
		fprintf(stderr, "podwired: bad --prefix '%s' (e.g. 198.18.0.0/15,127.0.0.0/8)\n",
			prefix);
		return 2;
	}
	if (!g.foreground && daemon(0, 1) < 0) {
		fprintf(stderr, "podwired: daemon: %s\n", strerror(errno));
		return 1;
	}
	r = pw_setup();
	if (r < 0) {
		if (r != -EADDRINUSE)
			pw_err("setup failed: %s", strerror(-r));
		else
			pw_err("another podwired is serving %s", g.socket_path);
		pw_teardown();
		return 1;
	}
	r = pw_peers_setup(&peers);
	if (r < 0) {
		pw_teardown();
		return r == -EINVAL ? 2 : 1;
	}
	pw_info("serving %s, %u prefix(es), ring %u bytes", g.socket_path, g.nprefixes,
		g.ring_size);
	pw_loop();
	pw_teardown();
	pw_info("stopped");
	return 0;
}
