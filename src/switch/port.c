// SPDX-License-Identifier: MIT
/*
 * Ports: each a memif socket the switch listens on, at a path or as an
 * abstract name bound inside a pod's network namespace (where only that
 * pod can reach it), with at most one client at a time. The client is a
 * pod and hostile: its messages are decoded strictly (msg.c) and applied by
 * conn.c; anything wrong ends the connection with a DISCONNECT saying why.
 */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/log.h"
#include "../common/netns.h"
#include "../common/util.h"
#include "proto.h"
#include "switch.h"

struct pw_sw pw_sw = { .epfd = -1 };

struct pw_sw_port *pw_sw_port_find(const char *name)
{
	for (unsigned i = 0; i < pw_sw.top; i++)
		if (pw_sw.ports[i].used && !strcmp(pw_sw.ports[i].name, name))
			return &pw_sw.ports[i];
	return NULL;
}

static void pw_sw_send(struct pw_sw_port *p, const struct pw_memif_msg *m)
{
	ssize_t n;

	do
		n = send(p->cfd, m, sizeof(*m), MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	/* A client that does not read its socket loses the message, not us
	 * our time: it is dropped at the next error. */
}

void pw_sw_port_disconnect(struct pw_sw_port *p, const char *why)
{
	struct pw_memif_conn *c = &p->conn;

	if (p->cfd < 0)
		return;
	if (why) {
		struct pw_memif_msg m;
		pw_memif_msg_disconnect(&m, 0, why);
		pw_sw_send(p, &m);
		pw_info("port %s: disconnecting %s: %s", p->name, c->peer[0] ? c->peer : "client",
			why);
	} else {
		pw_info("port %s: %s disconnected", p->name, c->peer[0] ? c->peer : "client");
	}
	/* Out of epoll first: the client holds its eventfds open, so closing
	 * ours would leave them registered. */
	for (unsigned i = 0; i < c->nrings[0]; i++)
		pw_sw_loop_del(c->rings[0][i].evfd);
	pw_sw_loop_del(p->cfd);
	pw_memif_stats_add(&p->done, &c->stats);
	pw_memif_conn_close(c);
	memset(&c->stats, 0, sizeof(c->stats));
	p->cfd = pw_close(p->cfd);
	p->gen++;
}

/* The client connected: its interrupts wake us (edge-triggered: we never
 * read its eventfds, a read could block on one it drained). */
static int pw_sw_port_connected(struct pw_sw_port *p)
{
	struct pw_memif_conn *c = &p->conn;

	for (unsigned i = 0; i < c->nrings[0]; i++) {
		int r = pw_sw_loop_add(c->rings[0][i].evfd, EPOLLIN | EPOLLET, &p->iev);
		if (r < 0) {
			while (i--)
				pw_sw_loop_del(c->rings[0][i].evfd);
			return r;
		}
	}
	pw_memif_rx_poll(c);
	p->connects++;
	pw_info("port %s: %s connected (%u+%u rings of %u)", p->name, c->peer, c->nrings[0],
		c->nrings[1], 1u << c->rings[0][0].log2);
	return 0;
}

static void pw_sw_port_msg(struct pw_sw_ev *ev, uint32_t events)
{
	struct pw_sw_port *p = pw_container_of(ev, struct pw_sw_port, cev);
	uint8_t buf[2 * PW_MEMIF_MSG_SIZE];
	int fds[PW_WIRE_MAX_FDS];

	for (;;) {
		unsigned nfds = 0;
		struct pw_memif_msg m, reply;
		ssize_t n = pw_msg_recv(p->cfd, buf, sizeof(buf), fds, &nfds, MSG_DONTWAIT);

		if (n == -EAGAIN)
			break;
		if (n <= 0) {
			p->refused += n < 0 && p->conn.state != PW_MEMIF_S_CONNECTED;
			pw_sw_port_disconnect(p, n < 0 ? "bad message" : NULL);
			return;
		}
		int r = pw_memif_msg_parse(buf, (size_t)n, nfds, &m);
		if (r < 0) {
			for (unsigned i = 0; i < nfds; i++)
				pw_close(fds[i]);
			p->refused += p->conn.state != PW_MEMIF_S_CONNECTED;
			pw_sw_port_disconnect(p, "malformed message");
			return;
		}
		bool was = p->conn.state == PW_MEMIF_S_CONNECTED;
		r = pw_memif_conn_apply(&p->conn, &m, nfds ? fds[0] : -1, &reply);
		if (r == 1) {
			pw_sw_port_disconnect(p, NULL);
			return;
		}
		if (r < 0) {
			char why[PW_MEMIF_REASON + 1];
			pw_memif_name(reply.disconnect.reason, PW_MEMIF_REASON, why);
			p->refused++;
			pw_sw_port_disconnect(p, why);
			return;
		}
		if (!was && p->conn.state == PW_MEMIF_S_CONNECTED && pw_sw_port_connected(p) < 0) {
			pw_sw_port_disconnect(p, "switch error");
			return;
		}
		pw_sw_send(p, &reply);
	}
	if (events & (EPOLLHUP | EPOLLERR))
		pw_sw_port_disconnect(p, NULL);
}

/* Interrupts need no work here: the loop polls every port when it wakes. */
static void pw_sw_port_irq(struct pw_sw_ev *ev, uint32_t events)
{
	(void)ev;
	(void)events;
	pw_sw.wakeups++;
}

static void pw_sw_port_accept(struct pw_sw_ev *ev, uint32_t events)
{
	struct pw_sw_port *p = pw_container_of(ev, struct pw_sw_port, lev);
	int fd = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	struct pw_memif_msg m;

	(void)events;
	if (fd < 0)
		return;
	if (p->cfd >= 0) {
		/* One client per port: a second is told so. */
		pw_memif_msg_disconnect(&m, 0, "port busy");
		ssize_t n = send(fd, &m, sizeof(m), MSG_NOSIGNAL | MSG_DONTWAIT);
		(void)n;
		pw_close(fd);
		p->refused++;
		return;
	}
	p->cfd = fd;
	pw_memif_conn_init(&p->conn, p->id, p->secret[0] ? p->secret : NULL);
	if (pw_sw_loop_add(fd, EPOLLIN, &p->cev) < 0) {
		p->cfd = pw_close(p->cfd);
		return;
	}
	pw_memif_conn_hello(&m, "podwire-switch");
	pw_sw_send(p, &m);
}

/* A listening socket at @p's address, made inside @netns if not -1. */
static int pw_sw_port_listen(struct pw_sw_port *p, int netns)
{
	int fd, r;

	if (netns >= 0 && (r = pw_netns_enter(netns)) < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	r = fd < 0 ? -errno : 0;
	if (netns >= 0)
		pw_netns_leave();
	if (r < 0)
		return r;
	if (bind(fd, (struct sockaddr *)&p->addr, p->addrlen) < 0) {
		r = -errno;
		/* A path left by a switch that died: take it back if no one
		 * answers on it. */
		if (r == -EADDRINUSE && !p->abstract) {
			int probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
			struct stat st;
			if (probe >= 0 && lstat(p->addr.sun_path, &st) == 0 &&
			    S_ISSOCK(st.st_mode) &&
			    connect(probe, (struct sockaddr *)&p->addr, p->addrlen) < 0 &&
			    errno == ECONNREFUSED && unlink(p->addr.sun_path) == 0 &&
			    bind(fd, (struct sockaddr *)&p->addr, p->addrlen) == 0)
				r = 0;
			pw_close(probe);
		}
		if (r < 0) {
			pw_close(fd);
			return r == -EADDRINUSE ? -EEXIST : r;
		}
	}
	if (!p->abstract)
		chmod(p->addr.sun_path, 0600);
	if (listen(fd, 4) < 0) {
		r = -errno;
		pw_close(fd);
		return r;
	}
	return fd;
}

static bool pw_sw_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (!n || n >= PW_SW_NAME)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(s[i] == '-' || s[i] == '_' || s[i] == '.' || (s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
			return false;
	return true;
}

int pw_sw_port_add(const struct pw_sw_port_spec *spec)
{
	struct pw_sw_port *p = NULL;
	size_t n = spec->socket ? strlen(spec->socket) : 0;
	unsigned i;
	int r;

	if (!pw_sw_name_ok(spec->name) || !n || (spec->abstract && spec->netns < 0) ||
	    (spec->secret && strlen(spec->secret) > PW_MEMIF_SECRET))
		return -EINVAL;
	/* An abstract name takes the byte after the leading NUL on; a path
	 * its NUL. */
	if (n + 1 > sizeof(p->addr.sun_path))
		return -ENAMETOOLONG;
	if (pw_sw_port_find(spec->name))
		return -EEXIST;
	if (pw_sw.nports >= (pw_sw.cfg.max_ports ? pw_sw.cfg.max_ports : PW_SW_PORTS))
		return -ENOSPC;
	for (i = 0; i < PW_SW_PORTS && pw_sw.ports[i].used; i++)
		;
	if (i == PW_SW_PORTS)
		return -ENOSPC;
	p = &pw_sw.ports[i];
	uint32_t gen = p->gen + 1; /* nothing learned on the slot's last port */
	memset(p, 0, sizeof(*p));
	p->gen = gen;
	p->idx = i;
	p->cfd = -1;
	p->rule = -1;
	snprintf(p->name, sizeof(p->name), "%s", spec->name);
	p->addr.sun_family = AF_UNIX;
	p->abstract = spec->abstract;
	memcpy(p->addr.sun_path + spec->abstract, spec->socket, n);
	p->addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	p->id = spec->id;
	if (spec->secret)
		snprintf(p->secret, sizeof(p->secret), "%s", spec->secret);
	p->has_mac = spec->has_mac;
	memcpy(p->mac, spec->mac, 6);
	p->lev.fn = pw_sw_port_accept;
	p->cev.fn = pw_sw_port_msg;
	p->iev.fn = pw_sw_port_irq;
	p->lfd = pw_sw_port_listen(p, spec->abstract ? spec->netns : -1);
	if (p->lfd < 0)
		return p->lfd;
	r = pw_sw_loop_add(p->lfd, EPOLLIN, &p->lev);
	if (r < 0) {
		p->lfd = pw_close(p->lfd);
		if (!p->abstract)
			unlink(p->addr.sun_path);
		return r;
	}
	p->used = true;
	pw_sw.nports++;
	if (i >= pw_sw.top)
		pw_sw.top = i + 1;
	pw_info("port %s: listening on %s%s", p->name, p->abstract ? "@" : "", spec->socket);
	return 0;
}

int pw_sw_port_del(const char *name)
{
	struct pw_sw_port *p = pw_sw_port_find(name);

	if (!p)
		return -ENOENT;
	pw_sw_port_disconnect(p, "port removed");
	pw_sw_loop_del(p->lfd);
	p->lfd = pw_close(p->lfd);
	if (!p->abstract)
		unlink(p->addr.sun_path);
	/* Rules that led here lead nowhere now. */
	for (unsigned i = 0; i < pw_sw.top; i++)
		if (pw_sw.ports[i].rule == (int)p->idx)
			pw_sw.ports[i].rule = -1;
	p->used = false;
	pw_sw.nports--;
	while (pw_sw.top && !pw_sw.ports[pw_sw.top - 1].used)
		pw_sw.top--;
	pw_info("port %s: removed", name);
	return 0;
}

void pw_sw_ports_teardown(void)
{
	for (unsigned i = pw_sw.top; i--;)
		if (pw_sw.ports[i].used)
			pw_sw_port_del(pw_sw.ports[i].name);
}
