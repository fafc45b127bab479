/* SPDX-License-Identifier: MIT */
/*
 * IPv4 endpoints as podwire carries them, in sockaddr_in, on the wire and in
 * the IPv4-mapped IPv6 form (::ffff:a.b.c.d) that dual-stack AF_INET6 sockets
 * show (Java opens every socket as AF_INET6, Node listens on ::). Shared by
 * the router and the preload library. Private: not installed.
 */
#ifndef PW_COMMON_ADDR_H
#define PW_COMMON_ADDR_H

#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>

#include <podwire/wire.h>

/*
 * @sa as an IPv4 endpoint: AF_INET as it is; AF_INET6 when it holds an
 * IPv4-mapped address, or the unspecified address :: (a dual-stack socket
 * bound to any address, which is 0.0.0.0 for IPv4).
 * Errors: -EAFNOSUPPORT another family, or a real IPv6 address; -EINVAL
 * @len too short.
 */
static inline int pw_addr_to4(const struct sockaddr *sa, socklen_t len, struct sockaddr_in *ret)
{
	if (len >= sizeof(struct sockaddr_in) && sa->sa_family == AF_INET) {
		memcpy(ret, sa, sizeof(*ret));
		return 0;
	}
	if (sa->sa_family != AF_INET6)
		return -EAFNOSUPPORT;
	if (len < sizeof(struct sockaddr_in6))
		return -EINVAL;
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
	memset(ret, 0, sizeof(*ret));
	ret->sin_family = AF_INET;
	ret->sin_port = s6->sin6_port;
	if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
		memcpy(&ret->sin_addr, &s6->sin6_addr.s6_addr[12], 4);
	else if (!IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr))
		return -EAFNOSUPPORT;
	return 0;
}

/* @sin as a socket of @family shows it: AF_INET as it is, AF_INET6 mapped.
 * Returns the length of what it wrote to @ret. */
static inline socklen_t pw_addr_from4(const struct sockaddr_in *sin, int family,
				      struct sockaddr_storage *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (family != AF_INET6) {
		memcpy(ret, sin, sizeof(*sin));
		return sizeof(*sin);
	}
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ret;
	s6->sin6_family = AF_INET6;
	s6->sin6_port = sin->sin_port;
	s6->sin6_addr.s6_addr[10] = 0xff;
	s6->sin6_addr.s6_addr[11] = 0xff;
	memcpy(&s6->sin6_addr.s6_addr[12], &sin->sin_addr, 4);
	return sizeof(*s6);
}

/* @sin on the wire, in the form of a socket of @family (AF_INET6: mapped). */
static inline void pw_addr_to_wire(const struct sockaddr_in *sin, int family,
				   struct pw_wire_addr *w)
{
	memset(w, 0, sizeof(*w));
	w->port = sin->sin_port;
	if (family == AF_INET6) {
		w->family = AF_INET6;
		w->addr[10] = 0xff;
		w->addr[11] = 0xff;
		memcpy(&w->addr[12], &sin->sin_addr, 4);
	} else {
		w->family = AF_INET;
		memcpy(w->addr, &sin->sin_addr, 4);
	}
}

/*
 * A wire endpoint as IPv4, and the family it was given in (to show it as the
 * socket it belongs to does). Errors: -EAFNOSUPPORT not IPv4 or IPv4-mapped.
 */
static inline int pw_addr_from_wire(const struct pw_wire_addr *w, struct sockaddr_in *sin,
				    int *ret_family)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_port = w->port;
	if (w->family == AF_INET)
		memcpy(&sin->sin_addr, w->addr, 4);
	else if (w->family == AF_INET6 && !memcmp(w->addr, mapped, sizeof(mapped)))
		memcpy(&sin->sin_addr, &w->addr[12], 4);
	else
		return -EAFNOSUPPORT;
	if (ret_family)
		*ret_family = w->family;
	return 0;
}

#endif /* PW_COMMON_ADDR_H */
