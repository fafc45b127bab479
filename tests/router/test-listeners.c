// SPDX-License-Identifier: MIT
/*
 * The listener registry (src/router/listeners.c) and which registered
 * listener a connect reaches: address, wildcard, port, netns cookie for
 * loopback, and dual-stack sockets seen as IPv4. No root needed.
 */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "router_test.h"

static struct pw_client owner_a, owner_b;

/* The listeners a connect from netns @cookie to @ip:@port reaches, in the
 * order the router tries them, into @v. */
static int reach(uint64_t cookie, const char *ip, uint16_t port, const struct pw_listener **v,
		 int max)
{
	struct sockaddr_in dst = rt_sin(ip, port);
	int n = 0;

	for (struct pw_listener *l = pw_listener_next(NULL, cookie, &dst); l;
	     l = pw_listener_next(l, cookie, &dst)) {
		PW_CHECK(n < max, "more than %d listeners reach %s:%u", max, ip, port);
		v[n++] = l;
	}
	return n;
}

static const struct pw_listener *reach_one(uint64_t cookie, const char *ip, uint16_t port)
{
	const struct pw_listener *v[4];
	int n = reach(cookie, ip, port, v, 4);

	PW_CHECK(n <= 1, "%d listeners reach %s:%u from netns %llu", n, ip, port,
		 (unsigned long long)cookie);
	return n ? v[0] : NULL;
}

static void add(const struct pw_client *owner, uint64_t cookie, const char *ip, uint16_t port)
{
	struct sockaddr_in a = rt_sin(ip, port);

	PW_CHECK(!pw_listener_ref(owner, cookie, &a), "%s:%u registered already", ip, port);
	PW_CHECK_EQ(pw_listener_insert(owner, cookie, &a, -1), 0);
}

static void test_match(void)
{
	const struct pw_listener *l, *v[4];

	add(&owner_a, 1, "198.18.0.1", 80);
	l = reach_one(2, "198.18.0.1", 80);
	PW_CHECK(l && l->owner == &owner_a && l->cookie == 1, "exact address from another netns");
	PW_CHECK(!reach_one(2, "198.18.0.1", 81), "another port");
	PW_CHECK(!reach_one(2, "198.18.0.2", 80), "another address");

	/* The wildcard takes any address on its port. */
	add(&owner_b, 3, "0.0.0.0", 90);
	l = reach_one(1, "198.19.9.9", 90);
	PW_CHECK(l && l->owner == &owner_b, "wildcard");
	PW_CHECK(!reach_one(1, "198.19.9.9", 91), "wildcard, another port");

	/* Loopback never leaves a namespace: only the listener's own. */
	add(&owner_a, 1, "127.0.0.1", 70);
	PW_CHECK(reach_one(1, "127.0.0.1", 70), "loopback, same netns");
	PW_CHECK(!reach_one(2, "127.0.0.1", 70), "loopback, another netns");
	PW_CHECK(!reach_one(1, "127.0.0.2", 70), "another loopback address");
	PW_CHECK(reach_one(3, "127.0.0.5", 90), "wildcard, loopback, same netns");
	PW_CHECK(!reach_one(1, "127.0.0.5", 90), "wildcard, loopback, another netns");

	/* Every listener that matches, for the caller to try in turn. */
	add(&owner_a, 4, "0.0.0.0", 80);
	PW_CHECK_EQ(reach(2, "198.18.0.1", 80, v, 4), 2);
	PW_CHECK(v[0]->cookie == 4 && v[1]->cookie == 1, "both, newest first");
	PW_CHECK_EQ(reach(2, "198.18.0.7", 80, v, 4), 1);
	PW_CHECK_EQ(pw_listeners_count(), 4);
}

static void test_registrations(void)
{
	struct sockaddr_in a = rt_sin("198.18.0.1", 80);

	/* A second LISTEN of the same socket counts; each UNLISTEN takes one. */
	PW_CHECK(pw_listener_ref(&owner_a, 1, &a), "registered");
	PW_CHECK(!pw_listener_ref(&owner_b, 1, &a), "another owner's");
	PW_CHECK(!pw_listener_ref(&owner_a, 2, &a), "another netns");
	PW_CHECK_EQ(pw_listener_remove(&owner_b, 1, &a), -ENOENT);
	PW_CHECK_EQ(pw_listener_remove(&owner_a, 1, &a), 0);
	PW_CHECK_EQ(pw_listeners_count(), 4);
	PW_CHECK_EQ(pw_listener_remove(&owner_a, 1, &a), 0);
	PW_CHECK_EQ(pw_listeners_count(), 3);
	PW_CHECK_EQ(pw_listener_remove(&owner_a, 1, &a), -ENOENT);

	/* A client that goes takes its listeners along. */
	pw_listeners_drop_owner(&owner_a);
	PW_CHECK_EQ(pw_listeners_count(), 1);
	pw_listeners_drop_owner(&owner_b);
	PW_CHECK_EQ(pw_listeners_count(), 0);
	PW_CHECK(!reach_one(1, "198.19.9.9", 90), "nothing left");
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
	PW_CHECK_EQ(pw_listener_insert(&owner_a, cookie, &a, -1), 0);
	PW_CHECK(reach_one(cookie, "127.0.0.1", port), "mapped listener, same netns");
	PW_CHECK(!reach_one(cookie + 1, "127.0.0.1", port), "mapped listener, another netns");
	close(fd);

	/* A dual-stack socket on :: is the IPv4 wildcard. */
	fd = v6_listener("::", false, &port);
	PW_CHECK(fd >= 0, "bind ::");
	PW_CHECK_EQ(pw_sock_addr4(fd, false, &a), 0);
	PW_CHECK(a.sin_addr.s_addr == htonl(INADDR_ANY), ":: is 0.0.0.0");
	PW_CHECK_EQ(pw_listener_insert(&owner_a, cookie, &a, -1), 0);
	PW_CHECK(reach_one(cookie + 1, "198.18.2.3", port), "wildcard from another netns");
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
	pw_listeners_drop_owner(&owner_a);
	PW_CHECK_EQ(pw_listeners_count(), 0);
}

int main(void)
{
	test_match();
	test_registrations();
	test_v4_mapped();
	return 0;
}
