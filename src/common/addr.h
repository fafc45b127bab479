/* SPDX-License-Identifier: MIT */
/*
 * Addresses, one home for them: IPv4 endpoints as podwire carries them, in
 * sockaddr_in, on the wire and in the IPv4-mapped IPv6 form (::ffff:a.b.c.d)
 * that dual-stack AF_INET6 sockets show (Java opens every socket as AF_INET6,
 * Node listens on ::); "ip:port" and "addr/len" text; strict parsing of both;
 * prefix masks.
 *
 * Pure functions: no allocation, no printing, no interposed libc call, so the
 * preload library (glibc and musl builds) uses them too. Private: not
 * installed.
 */
#ifndef PW_COMMON_ADDR_H
#define PW_COMMON_ADDR_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <podwire/wire.h>

/* "255.255.255.255:65535" and its NUL. */
#define PW_ADDR_STRLEN 22
/* An IPv6 address, "/128" and the NUL. */
#define PW_ADDR_CIDR_STRLEN (INET6_ADDRSTRLEN + 4)
/* What separates the items of an address list: "a,b", "a, b" or "a b". */
#define PW_ADDR_LIST_SEPS ", \t\n"

/* ---- sockaddr and wire ---- */

/*
 * @sa as an IPv4 endpoint: AF_INET as it is; AF_INET6 when it holds an
 * IPv4-mapped address, or the unspecified address :: (a dual-stack socket
 * bound to any address, which is 0.0.0.0 for IPv4).
 * Errors: -EAFNOSUPPORT another family, or a real IPv6 address; -EINVAL
 * @len too short. *@ret is untouched on failure.
 */
int pw_addr_to4(const struct sockaddr *sa, socklen_t len, struct sockaddr_in *ret);

/* @sin as a socket of @family shows it: AF_INET as it is, AF_INET6 mapped.
 * Returns the length of what it wrote to @ret. */
socklen_t pw_addr_from4(const struct sockaddr_in *sin, int family, struct sockaddr_storage *ret);

/* @sin on the wire, in the form of a socket of @family (AF_INET6: mapped). */
void pw_addr_to_wire(const struct sockaddr_in *sin, int family, struct pw_wire_addr *ret);

/*
 * A wire endpoint as IPv4, and the family it was given in (to show it as the
 * socket it belongs to does; @ret_family may be NULL).
 * Errors: -EAFNOSUPPORT not IPv4 or IPv4-mapped.
 */
int pw_addr_from_wire(const struct pw_wire_addr *w, struct sockaddr_in *ret, int *ret_family);

/* Same address and port. */
bool pw_addr_eq(const struct sockaddr_in *a, const struct sockaddr_in *b);

/* In 127.0.0.0/8. */
bool pw_addr_is_loopback(const struct sockaddr_in *a);

/* ---- text ---- */

/* "a.b.c.d:port" into @buf; returns @buf. */
/* An Ethernet address as "02:00:5e:00:00:01" (lower case); returns @buf. */
#define PW_ADDR_MAC_STRLEN 18
const char *pw_addr_mac_format(const uint8_t mac[6], char buf[static PW_ADDR_MAC_STRLEN]);
const char *pw_addr_format(const struct sockaddr_in *sin, char buf[static PW_ADDR_STRLEN]);

/* A wire endpoint as "a.b.c.d:port", or "?:port" if it is not IPv4. */
const char *pw_addr_wire_format(const struct pw_wire_addr *w, char buf[static PW_ADDR_STRLEN]);

/*
 * "a.b.c.d:port", strictly: a dotted-quad IPv4 address, a colon and a decimal
 * port 1 to 65535 (no sign, spaces or leading zeros), nothing else.
 * Errors: -EINVAL (*@ret untouched).
 */
int pw_addr_parse(const char *s, struct sockaddr_in *ret);

/*
 * A list of "a.b.c.d:port" separated by PW_ADDR_LIST_SEPS (empty items are
 * skipped), into @ret. Returns how many, or -EINVAL (an item is malformed;
 * *@ret_bad, if not NULL, points at it in @s), -E2BIG (more than @max).
 */
int pw_addr_list_parse(const char *s, struct sockaddr_in *ret, unsigned max, const char **ret_bad);

/* ---- prefixes (CIDR) ---- */

/* The netmask of a /@len IPv4 prefix, in host order (@len above 32: 32). */
uint32_t pw_addr_mask(unsigned len);

/* Flags of pw_addr_cidr_parse(). */
#define PW_ADDR_CIDR_INET6 0x1u /* IPv6 ("2001:db8::/32") is accepted too */
#define PW_ADDR_CIDR_HOST  0x2u /* a bare address is a host: /32 (IPv6 /128) */
#define PW_ADDR_CIDR_NET   0x4u /* clear the host bits: the network of the prefix */

/*
 * "a.b.c.d/len", strictly: an address inet_pton(3) takes, a slash and a
 * decimal length (no sign, spaces or leading zeros) of at most 32 (IPv6:
 * 128), nothing else. "/x", "/33", "/", "a.b.c.d/8x" and "/8" are errors, so
 * a typo never widens a prefix. The address keeps its host bits unless
 * PW_ADDR_CIDR_NET. Errors: -EINVAL malformed; -EAFNOSUPPORT IPv6 without
 * PW_ADDR_CIDR_INET6. *@ret is untouched on failure.
 */
int pw_addr_cidr_parse(const char *s, unsigned flags, struct pw_wire_prefix *ret);

/*
 * A list of prefixes separated by PW_ADDR_LIST_SEPS (empty items are
 * skipped), each parsed as pw_addr_cidr_parse(@flags) does, into @ret.
 * Returns how many, or the first item's error (-EINVAL, -EAFNOSUPPORT;
 * *@ret_bad, if not NULL, points at that item in @s), or -E2BIG (more than
 * @max).
 */
int pw_addr_cidr_list_parse(const char *s, unsigned flags, struct pw_wire_prefix *ret, unsigned max,
			    const char **ret_bad);

/* "addr/len" into @buf ("?/len" for an unknown family); returns @buf. */
const char *pw_addr_cidr_format(const struct pw_wire_prefix *p,
				char buf[static PW_ADDR_CIDR_STRLEN]);

/* Does the IPv4 prefix @p hold the address of @a? (false for IPv6 @p) */
bool pw_addr_cidr_has(const struct pw_wire_prefix *p, const struct sockaddr_in *a);

/* The length of the longest of the @n prefixes @v that holds @a, or -1. */
int pw_addr_cidr_match(const struct pw_wire_prefix *v, unsigned n, const struct sockaddr_in *a);

/* ---- Unix sockets ---- */

struct sockaddr_un;

/* @path into @ret (AF_UNIX). Errors: -ENAMETOOLONG (*@ret untouched). */
int pw_addr_unix(const char *path, struct sockaddr_un *ret);

#endif /* PW_COMMON_ADDR_H */
