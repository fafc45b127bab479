// SPDX-License-Identifier: MIT
/*
 * The listener registry (src/router/listeners.c) on real listening sockets:
 * which listener a connect reaches (address, wildcard, port, netns cookie
 * for loopback, SO_REUSEPORT, dual-stack sockets seen as IPv4) and the
 * accept queue. The wildcard's netns probe needs root; the rest does not.
 */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "router_test.h"

static struct pw_client owner = { .pid = 4242 };

/* A listening TCP socket on @ip (port @port, 0: any), with SO_REUSEPORT if
 * @reuse; its port in *ret_port. */
static int tcp_listener(const char *ip, uint16_t port, bool reuse, uint16_t *ret_port)
{
	struct sockaddr_in a = rt_sin(ip, port);
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	PW_CHECK(fd >= 0, "socket: %s", strerror(errno));
	if (reuse)
		PW_CHECK(setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == 0,
			 "SO_REUSEPORT: %s", strerror(errno));
	PW_CHECK(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(fd, 8) == 0 &&
			 getsockname(fd, (struct sockaddr *)&a, &len) == 0,
		 "listen on %s:%u: %s", ip, port, strerror(errno));
	*ret_port = ntohs(a.sin_port);
	return fd;
}

/* Register @fd (listen backlog @backlog); the library's end of its queue
 * in *ret_q. */
static void add_backlog(int fd, int backlog, int *ret_q)
{
	unsigned n = pw_listeners_count();
	uint8_t key[PW_POOL_KEY_LEN];
	int ul = -2;

	PW_CHECK_EQ(pw_listener_add(&owner, fd, backlog, ret_q, &ul, key), 0);
	PW_CHECK_EQ(pw_listeners_count(), n + 1);
	PW_CHECK_EQ(ul, -1); /* no federation here: no socket on an underlay */
}

static void add(int fd, int *ret_q)
{
	add_backlog(fd, 128, ret_q);
}

static const struct pw_listener *pick(uint64_t cookie, const char *ip, uint16_t port, uint32_t hash)
{
	struct sockaddr_in dst = rt_sin(ip, port);

	return pw_listener_pick(cookie, &dst, hash);
}

/* Which listener a connect reaches: address, port, netns for loopback, the
 * address before the wildcard, SO_REUSEPORT groups. */
static void test_match(void)
{
	uint16_t p1, p2, p3;
	int q[6], fd[6];
	uint64_t me;

	fd[0] = tcp_listener("127.0.0.1", 0, false, &p1);
	PW_CHECK_EQ(pw_sock_cookie(fd[0], &me), 0);
	add(fd[0], &q[0]);
	const struct pw_listener *l = pick(me, "127.0.0.1", p1, 0);
	PW_CHECK(l && l->cookie == me && l->pid == 4242 && l->family == AF_INET, "exact address");
	PW_CHECK(!pick(me, "127.0.0.1", (uint16_t)(p1 + 1), 0), "another port");
	PW_CHECK(!pick(me, "127.0.0.2", p1, 0), "another address");
	PW_CHECK(!pick(me + 1, "127.0.0.1", p1, 0), "loopback from another netns");

	/* Two sockets on one address: the same client, the same socket. */
	fd[1] = tcp_listener("127.0.0.1", 0, true, &p3);
	fd[2] = tcp_listener("127.0.0.1", p3, true, &p3);
	add(fd[1], &q[1]);
	add(fd[2], &q[2]);
	const struct pw_listener *g0 = pick(me, "127.0.0.1", p3, 0);
	const struct pw_listener *g1 = pick(me, "127.0.0.1", p3, 1);
	PW_CHECK(g0 && g1 && g0 != g1, "SO_REUSEPORT: both chosen");
	PW_CHECK(pick(me, "127.0.0.1", p3, 2) == g0, "the same hash, the same socket");

	/* The wildcard: its netns's addresses (and loopback there), after a
	 * socket bound to the address. Probing the netns needs root. */
	if (geteuid() != 0) {
		fprintf(stderr, "not root: wildcard listeners not tested\n");
		for (int i = 0; i < 3; i++)
			close(fd[i]), close(q[i]);
		pw_listeners_teardown();
		return;
	}
	fd[3] = tcp_listener("0.0.0.0", 0, true, &p2);
	fd[4] = tcp_listener("127.0.0.1", p2, true, &p2);
	add(fd[3], &q[3]);
	add(fd[4], &q[4]);
	l = pick(me, "127.0.0.1", p2, 0);
	PW_CHECK(l && l->addr.sin_addr.s_addr == htonl(INADDR_LOOPBACK), "address first");
	PW_CHECK(pick(me, "127.0.0.1", p2, 1) == l, "address first, any hash");
	l = pick(me, "127.0.0.9", p2, 0);
	PW_CHECK(l && l->addr.sin_addr.s_addr == htonl(INADDR_ANY), "wildcard, loopback");
	PW_CHECK(!pick(me + 1, "127.0.0.9", p2, 0), "wildcard, loopback, another netns");
	PW_CHECK(!pick(me, "198.18.77.1", p2, 0), "wildcard: not an address of its netns");
	PW_CHECK_EQ(pw_listeners_count(), 5);
	for (int i = 0; i < 5; i++)
		close(fd[i]), close(q[i]);
	pw_listeners_teardown();
	PW_CHECK_EQ(pw_listeners_count(), 0);
}

/* A connection goes into the queue whole; a full queue says so; a closed
 * one removes its listener. */
static void test_deliver(void)
{
	static uint8_t buf[PW_WIRE_MAX] __attribute__((aligned(8)));
	uint16_t port;
	int q, sv[2], got[PW_WIRE_MAX_FDS];
	unsigned n = 0;
	uint64_t me;
	struct pw_msg m;
	int fd = tcp_listener("127.0.0.1", 0, false, &port);

	PW_CHECK_EQ(pw_sock_cookie(fd, &me), 0);
	add(fd, &q);
	struct pw_listener *l = pw_listener_pick(me, &(struct sockaddr_in){ 0 }, 0);
	PW_CHECK(!l, "port 0 reaches nothing");
	struct sockaddr_in dst = rt_sin("127.0.0.1", port);
	l = pw_listener_pick(me, &dst, 0);
	PW_CHECK(l, "registered");
	PW_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	struct pw_wire_conn body = { .id = 99, .side = 1 };
	PW_CHECK_EQ(pw_listener_deliver(l, PW_MSG_CONN, &body, NULL, 0, sv, 2), 0);
	ssize_t len = pw_msg_recv(q, buf, sizeof(buf), got, &n, MSG_DONTWAIT);
	PW_CHECK(len > 0, "recv: %zd", len);
	PW_CHECK_EQ(pw_msg_parse(buf, (size_t)len, n, &m), 0);
	PW_CHECK(m.type == PW_MSG_CONN && m.u.conn.id == 99 && n == 2, "the connection");
	close(got[0]);
	close(got[1]);

	/* Nobody accepts: the queue fills at the backlog (128, and one more,
	 * as the kernel's), and says so without waiting; a connection taken
	 * makes room. */
	int r = 0;
	unsigned queued = 1;
	while (queued < 1000 &&
	       (r = pw_listener_deliver(l, PW_MSG_CONN, &body, NULL, 0, sv, 2)) == 0)
		queued++;
	PW_CHECK_EQ(r, -EAGAIN);
	PW_CHECK_EQ(queued, 129);
	PW_CHECK_EQ(l->queued, 129);
	pw_listener_unqueue(l->serial);
	PW_CHECK_EQ(pw_listener_deliver(l, PW_MSG_CONN, &body, NULL, 0, sv, 2), 0);
	PW_CHECK_EQ(pw_listener_deliver(l, PW_MSG_CONN, &body, NULL, 0, sv, 2), -EAGAIN);

	/* The last holder closes: the listener goes, its queue with it (the
	 * loop sees the hang-up; a delivery meanwhile finds out too). */
	pw_listener_unqueue(l->serial);
	close(q);
	PW_CHECK_EQ(pw_listener_deliver(l, PW_MSG_CONN, &body, NULL, 0, sv, 2), -EPIPE);
	PW_CHECK_EQ(pw_listeners_count(), 0);
	PW_CHECK(!pw_listener_pick(me, &dst, 0), "gone");
	close(sv[0]);
	close(sv[1]);
	close(fd);
}

/* An IPv6 TCP listener bound to @ip, dual-stack unless @v6only; -1 if this
 * host has no IPv6. */
static int v6_listener(const char *ip, bool v6only, uint16_t *ret_port)
{
	struct sockaddr_in6 a = { .sin6_family = AF_INET6 };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0), v = v6only;

	if (fd < 0)
		return -1;
	PW_CHECK(inet_pton(AF_INET6, ip, &a.sin6_addr) == 1, "%s", ip);
	PW_CHECK(setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v, sizeof(v)) == 0, "V6ONLY: %s",
		 strerror(errno));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -1;
	}
	PW_CHECK(listen(fd, 1) == 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0,
		 "listen: %s", strerror(errno));
	*ret_port = ntohs(a.sin6_port);
	return fd;
}

/* What LISTEN registers for a dual-stack socket: its IPv4 view. */
static void test_v4_mapped(void)
{
	struct sockaddr_in a;
	uint64_t cookie;
	uint16_t port;
	int fd = v6_listener("::ffff:127.0.0.1", false, &port);

	if (fd < 0) {
		fprintf(stderr, "no IPv6 here: v4-mapped listeners not tested\n");
		return;
	}
	if (pw_sock_cookie(fd, &cookie) < 0) {
		fprintf(stderr, "no SO_NETNS_COOKIE: v4-mapped listeners not tested\n");
		close(fd);
		return;
	}
	PW_CHECK_EQ(pw_sock_check_tcp(fd, 1), AF_INET6);
	PW_CHECK_EQ(pw_sock_check_tcp(fd, 0), -EINVAL); /* it listens */
	PW_CHECK_EQ(pw_sock_addr4(fd, false, &a), 0);
	PW_CHECK(a.sin_addr.s_addr == htonl(INADDR_LOOPBACK) && ntohs(a.sin_port) == port,
		 "::ffff:127.0.0.1 is 127.0.0.1");
	int q;
	add(fd, &q);
	const struct pw_listener *l = pick(cookie, "127.0.0.1", port, 0);
	PW_CHECK(l && l->family == AF_INET6, "mapped listener, same netns, accepts IPv6");
	PW_CHECK(!pick(cookie + 1, "127.0.0.1", port, 0), "mapped listener, another netns");
	close(fd);
	close(q);

	/* A dual-stack socket on :: is the IPv4 wildcard. */
	fd = v6_listener("::", false, &port);
	PW_CHECK(fd >= 0, "bind ::");
	PW_CHECK_EQ(pw_sock_addr4(fd, false, &a), 0);
	PW_CHECK(a.sin_addr.s_addr == htonl(INADDR_ANY), ":: is 0.0.0.0");
	close(fd);

	/* An IPv6-only socket, or a real IPv6 address, is not ours. */
	fd = v6_listener("::", true, &port);
	PW_CHECK(fd >= 0, "bind :: v6only");
	PW_CHECK_EQ(pw_sock_check_tcp(fd, 1), -EPROTOTYPE);
	close(fd);
	fd = v6_listener("::1", false, &port);
	if (fd >= 0) {
		PW_CHECK_EQ(pw_sock_addr4(fd, false, &a), -EAFNOSUPPORT);
		close(fd);
	}
	pw_listeners_teardown();
	PW_CHECK_EQ(pw_listeners_count(), 0);
}

int main(void)
{
	PW_CHECK_EQ(pw_loop_open(), 0);
	test_match();
	test_deliver();
	test_v4_mapped();
	pw_loop_close();
	return 0;
}
