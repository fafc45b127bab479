// SPDX-License-Identifier: MIT
/*
 * The listener registry: the accelerated listening sockets clients told us
 * about (LISTEN), each with its address, its network namespace and its
 * accept queue; which of them a connect reaches; and handing a connection to
 * one.
 *
 * The accept queue is a SOCK_SEQPACKET socketpair. The library holds one end
 * (and so does every process it forks with the listener); we hold the other
 * and send one message per connection: CONN with the channel's memfd and
 * end 1, or CONN_TCP with a kernel socket from another node. accept() takes
 * the next message; the queue's end in the application's poll or epoll set
 * stands for the listener. No kernel connection is made, and a connection
 * in the queue outlives us: the messages are the receiver's once sent. The
 * listener is gone when the last holder closes its end (we see a hang-up).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/addr.h"
#include "../common/log.h"
#include "../common/util.h"
#include "router.h"

/* Room for this many queued connections at least (a message with its fds
 * costs the kernel about 1 KiB): the kernel's own backlog cap, somaxconn. */
#define PW_QUEUE_BYTES (4096u * 1024u)

/* The kernel's cap on a listen(2) backlog (net.core.somaxconn's default). */
#define PW_BACKLOG_MAX 4096u

/* How often a full queue looks again at which connections were taken. */
#define PW_RECOUNT_NS 1000000ull

/* How long the answer "is this address local in the listener's netns" is
 * trusted: a pod's addresses change rarely, and the check costs a route
 * lookup. */
#define PW_LOCAL_TTL_NS 1000000000ull

static struct pw_listener *pw_listeners;
static uint64_t pw_listener_serial;

static void pw_listener_unlink(struct pw_listener *l)
{
	for (struct pw_listener **pp = &pw_listeners; *pp; pp = &(*pp)->next)
		if (*pp == l) {
			*pp = l->next;
			break;
		}
}

static void pw_listener_free(struct pw_listener *l)
{
	if (l->queue >= 0) {
		pw_loop_del(l->queue, &l->ev);
		pw_close(l->queue);
	}
	pw_close(l->probe);
	free(l);
}

/* The listener is closed: every holder of the queue's other end is gone. */
static void pw_listener_gone(struct pw_listener *l)
{
	char b[PW_ADDR_STRLEN];

	pw_info("listener %s of pid %d (netns %" PRIu64 ") closed", pw_addr_format(&l->addr, b),
		(int)l->pid, l->cookie);
	pw_listener_unlink(l);
	pw_conns_listener_gone(l->serial);
	pw_listener_free(l);
}

static void pw_listener_event(struct pw_ev *ev, uint32_t events)
{
	(void)events; /* only hang-ups are asked for: we never read */
	pw_listener_gone((struct pw_listener *)ev);
}

int pw_listener_add(const struct pw_client *c, int fd, int backlog, int *ret_queue, int *ret_ul,
		    uint8_t ret_key[PW_POOL_KEY_LEN])
{
	char b[PW_ADDR_STRLEN];
	struct pw_listener *l = NULL;
	int sv[2] = { -1, -1 }, netns = -1, ul = -1, bytes = PW_QUEUE_BYTES, r;
	int family = pw_sock_check_tcp(fd, 1);

	if (family < 0)
		return family;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->ev.fn = pw_listener_event;
	l->queue = l->probe = -1;
	l->family = family;
	l->pid = c->pid;
	/* As the kernel: the backlog is capped (a negative one is the cap),
	 * and one more than it is queued before the queue counts as full. */
	l->backlog = (backlog < 0 || (unsigned)backlog > PW_BACKLOG_MAX ? PW_BACKLOG_MAX
									: (unsigned)backlog) +
		     1;
	if (pw_sock_cookie(fd, &l->cookie) < 0) {
		r = -errno;
		goto fail;
	}
	r = pw_sock_addr4(fd, false, &l->addr); /* a dual-stack listener on :: is 0.0.0.0 */
	if (r < 0)
		goto fail;
	if (l->addr.sin_addr.s_addr == htonl(INADDR_ANY)) {
		netns = pw_sock_netns(fd);
		if (netns < 0) {
			r = netns;
			goto fail;
		}
		l->probe = pw_netns_socket(netns, SOCK_DGRAM);
		if (l->probe < 0) {
			r = l->probe;
			goto fail;
		}
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		r = -errno;
		goto fail;
	}
	/* Never wait on a server that does not accept: a full queue sends
	 * the client to the kernel, which keeps the real backlog. */
	if (fcntl(sv[0], F_SETFL, O_NONBLOCK) < 0) {
		r = -errno;
		goto fail;
	}
	if (setsockopt(sv[0], SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof(bytes)) < 0)
		setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
	/* Other nodes' pooled connections come to a socket of its own on the
	 * underlay, which only its processes accept from (docs/FEDERATION.md,
	 * "Pools"). */
	if (pw_peers_enabled() && !pw_addr_is_loopback(&l->addr)) {
		ul = pw_peers_pool_listener(l->backlog, &l->uport);
		if (ul < 0 || getrandom(l->ukey, sizeof(l->ukey), 0) != (ssize_t)sizeof(l->ukey)) {
			r = ul < 0 ? ul : -errno;
			goto fail;
		}
		memcpy(ret_key, l->ukey, sizeof(l->ukey));
	}
	/* Hang-ups only (EPOLLRDHUP for the peer's close): nothing is read. */
	if (pw_loop_add(sv[0], EPOLLRDHUP, &l->ev) < 0) {
		r = -errno;
		goto fail;
	}
	l->queue = sv[0];
	l->serial = ++pw_listener_serial;
	l->next = pw_listeners;
	pw_listeners = l;
	pw_close(netns);
	*ret_queue = sv[1];
	*ret_ul = ul;
	pw_info("pid %d listens on %s (netns %" PRIu64 "; from other nodes at port %u)", c->pid,
		pw_addr_format(&l->addr, b), l->cookie, ntohs(l->uport));
	return 0;
fail:
	pw_close(ul);
	pw_close(sv[0]);
	pw_close(sv[1]);
	pw_close(netns);
	pw_close(l->probe);
	free(l);
	return r;
}

/* Is @dst an address of @l's netns? The route the kernel picks there for a
 * local address has that address as its source. */
static bool pw_listener_is_local(struct pw_listener *l, const struct sockaddr_in *dst)
{
	uint64_t now = pw_now_ns();
	struct sockaddr_in src = { 0 };
	socklen_t len = sizeof(src);

	if (l->local_until > now && l->local_dst.s_addr == dst->sin_addr.s_addr)
		return l->local_yes;
	l->local_yes = connect(l->probe, (const struct sockaddr *)dst, sizeof(*dst)) == 0 &&
		       getsockname(l->probe, (struct sockaddr *)&src, &len) == 0 &&
		       src.sin_addr.s_addr == dst->sin_addr.s_addr;
	l->local_dst = dst->sin_addr;
	l->local_until = now + PW_LOCAL_TTL_NS;
	return l->local_yes;
}

/* How well @l matches a connect from netns @cookie to @dst: 2 bound to the
 * address, 1 on the wildcard, 0 not at all. */
static int pw_listener_rank(struct pw_listener *l, uint64_t cookie, const struct sockaddr_in *dst)
{
	if (l->addr.sin_port != dst->sin_port)
		return 0;
	/* Loopback never leaves a namespace. */
	if (pw_addr_is_loopback(dst) && l->cookie != cookie)
		return 0;
	if (l->addr.sin_addr.s_addr == dst->sin_addr.s_addr)
		return 2;
	if (l->addr.sin_addr.s_addr != htonl(INADDR_ANY))
		return 0;
	return pw_addr_is_loopback(dst) || pw_listener_is_local(l, dst) ? 1 : 0;
}

struct pw_listener *pw_listener_pick(uint64_t cookie, const struct sockaddr_in *dst, uint32_t hash)
{
	int best = 0;
	unsigned n = 0;

	for (struct pw_listener *l = pw_listeners; l; l = l->next) {
		int rank = pw_listener_rank(l, cookie, dst);
		if (rank > best) {
			best = rank;
			n = 0;
		}
		if (rank && rank == best)
			n++;
	}
	if (!n)
		return NULL;
	/* Several sockets on one address (SO_REUSEPORT): as the kernel, the
	 * same client goes to the same one. */
	n = hash % n;
	for (struct pw_listener *l = pw_listeners; l; l = l->next)
		if (pw_listener_rank(l, cookie, dst) == best && n-- == 0)
			return l;
	return NULL;
}

struct pw_listener *pw_listener_by_serial(uint64_t serial)
{
	for (struct pw_listener *l = pw_listeners; l; l = l->next)
		if (l->serial == serial)
			return l;
	return NULL;
}

void pw_listener_unqueue(uint64_t serial)
{
	for (struct pw_listener *l = pw_listeners; l; l = l->next)
		if (l->serial == serial) {
			if (l->queued)
				l->queued--;
			return;
		}
}

int pw_listener_deliver(struct pw_listener *l, uint16_t type, const struct pw_wire_conn *body,
			const void *extra, size_t elen, const int *fds, unsigned nfds)
{
	if (l->queued >= l->backlog) {
		/* Taken connections are learnt from their channels: look, but
		 * not at every connect to a listener that does not accept. */
		uint64_t now = pw_now_ns();

		int unread = 0;

		/* Nothing unread in the queue: every connection was taken. */
		if (ioctl(l->queue, SIOCOUTQ, &unread) == 0 && unread == 0)
			l->queued = 0;
		else if (now - l->recount_ns >= PW_RECOUNT_NS) {
			l->recount_ns = now;
			pw_conns_refresh();
		}
		if (l->queued >= l->backlog)
			return -EAGAIN;
	}
	int r = pw_msg_send(l->queue, type, 0, body, sizeof(*body), extra, elen, fds, nfds);

	/* Only channels are counted: their taking shows in the channel. A
	 * socket from another node is bounded by the queue's buffer. */
	if (r == 0 && type == PW_MSG_CONN)
		l->queued++;
	if (r == -EPIPE || r == -ECONNREFUSED || r == -ECONNRESET) {
		/* Closed, and we have not seen the hang-up yet. */
		pw_listener_gone(l);
		return -EPIPE;
	}
	return r == -EWOULDBLOCK ? -EAGAIN : r;
}

unsigned pw_listeners_count(void)
{
	unsigned n = 0;

	for (const struct pw_listener *l = pw_listeners; l; l = l->next)
		n++;
	return n;
}

void pw_listeners_teardown(void)
{
	while (pw_listeners) {
		struct pw_listener *l = pw_listeners;
		pw_listeners = l->next;
		pw_listener_free(l);
	}
}
