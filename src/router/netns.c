// SPDX-License-Identifier: MIT
/*
 * Sockets and network namespaces. Namespace work (making a socket inside a
 * pod's network namespace, reading its addresses) switches this thread's
 * netns with setns(2) and switches back at once: between two calls the
 * router is always in its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/addr.h"
#include "../common/log.h"
#include "../common/netns.h"
#include "../common/util.h"
#include "router.h"

int pw_sock_cookie(int fd, uint64_t *ret)
{
	socklen_t len = sizeof(*ret);

	return getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, ret, &len) < 0 ? -errno : 0;
}

int pw_sock_check_tcp(int fd, int listening)
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

int pw_sock_addr4(int fd, bool peer, struct sockaddr_in *ret)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len = sizeof(ss);
	int r = peer ? getpeername(fd, (struct sockaddr *)&ss, &len)
		     : getsockname(fd, (struct sockaddr *)&ss, &len);

	if (r < 0)
		return -errno;
	return pw_addr_to4((struct sockaddr *)&ss, len, ret);
}

int pw_sock_netns(int fd)
{
	/* The netns of the socket itself, not whatever the client claims. */
	int ns = ioctl(fd, SIOCGSKNS);

	if (ns < 0)
		return -errno;
	fcntl(ns, F_SETFD, FD_CLOEXEC);
	return ns;
}

int pw_netns_socket(int netns, int type)
{
	int s, err, r = pw_netns_enter(netns);

	if (r < 0)
		return r;
	s = socket(AF_INET, type | SOCK_CLOEXEC, 0);
	err = errno;
	pw_netns_leave();
	return s < 0 ? -err : s;
}

int pw_netns_source(int netns, const struct sockaddr_in *dst, struct sockaddr_in *ret)
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
