// SPDX-License-Identifier: MIT
/* Addresses: conversions, text and prefixes (see addr.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "addr.h"

/* The 12 bytes before an IPv4 address in ::ffff:a.b.c.d. */
static const uint8_t pw_addr_v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

/* ---- sockaddr and wire ---- */

int pw_addr_to4(const struct sockaddr *sa, socklen_t len, struct sockaddr_in *ret)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };

	if (len >= sizeof(struct sockaddr_in) && sa->sa_family == AF_INET) {
		memcpy(ret, sa, sizeof(*ret));
		return 0;
	}
	if (sa->sa_family != AF_INET6)
		return -EAFNOSUPPORT;
	if (len < sizeof(struct sockaddr_in6))
		return -EINVAL;
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
	sin.sin_port = s6->sin6_port;
	if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
		memcpy(&sin.sin_addr, &s6->sin6_addr.s6_addr[12], 4);
	else if (!IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr))
		return -EAFNOSUPPORT;
	*ret = sin;
	return 0;
}

socklen_t pw_addr_from4(const struct sockaddr_in *sin, int family, struct sockaddr_storage *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (family != AF_INET6) {
		memcpy(ret, sin, sizeof(*sin));
		return sizeof(*sin);
	}
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ret;
	s6->sin6_family = AF_INET6;
	s6->sin6_port = sin->sin_port;
	memcpy(s6->sin6_addr.s6_addr, pw_addr_v4mapped, sizeof(pw_addr_v4mapped));
	memcpy(&s6->sin6_addr.s6_addr[12], &sin->sin_addr, 4);
	return sizeof(*s6);
}

void pw_addr_to_wire(const struct sockaddr_in *sin, int family, struct pw_wire_addr *ret)
{
	memset(ret, 0, sizeof(*ret));
	ret->port = sin->sin_port;
	if (family == AF_INET6) {
		ret->family = AF_INET6;
		memcpy(ret->addr, pw_addr_v4mapped, sizeof(pw_addr_v4mapped));
		memcpy(&ret->addr[12], &sin->sin_addr, 4);
	} else {
		ret->family = AF_INET;
		memcpy(ret->addr, &sin->sin_addr, 4);
	}
}

int pw_addr_from_wire(const struct pw_wire_addr *w, struct sockaddr_in *ret, int *ret_family)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = w->port };

	if (w->family == AF_INET)
		memcpy(&sin.sin_addr, w->addr, 4);
	else if (w->family == AF_INET6 && !memcmp(w->addr, pw_addr_v4mapped, 12))
		memcpy(&sin.sin_addr, &w->addr[12], 4);
	else
		return -EAFNOSUPPORT;
	*ret = sin;
	if (ret_family)
		*ret_family = w->family;
	return 0;
}

bool pw_addr_eq(const struct sockaddr_in *a, const struct sockaddr_in *b)
{
	return a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
}

bool pw_addr_is_loopback(const struct sockaddr_in *a)
{
	return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
}

/* ---- text ---- */

const char *pw_addr_format(const struct sockaddr_in *sin, char buf[static PW_ADDR_STRLEN])
{
	char ip[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
	snprintf(buf, PW_ADDR_STRLEN, "%s:%u", ip, ntohs(sin->sin_port));
	return buf;
}

const char *pw_addr_wire_format(const struct pw_wire_addr *w, char buf[static PW_ADDR_STRLEN])
{
	struct sockaddr_in sin;

	if (pw_addr_from_wire(w, &sin, NULL) == 0)
		return pw_addr_format(&sin, buf);
	snprintf(buf, PW_ADDR_STRLEN, "?:%u", ntohs(w->port));
	return buf;
}

/*
 * @s[0..@n) as a decimal number of at most @max: digits only, no leading
 * zero (but "0"). Returns it, or -1.
 */
static long pw_addr_number(const char *s, size_t n, long max)
{
	long v = 0;

	if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v <= max ? v : -1;
}

int pw_addr_parse(const char *s, struct sockaddr_in *ret)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	char host[INET_ADDRSTRLEN];
	const char *colon = strrchr(s, ':');

	if (!colon || (size_t)(colon - s) >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	long port = pw_addr_number(colon + 1, strlen(colon + 1), 65535);
	if (port <= 0 || inet_pton(AF_INET, host, &sin.sin_addr) != 1)
		return -EINVAL;
	sin.sin_port = htons((uint16_t)port);
	*ret = sin;
	return 0;
}

/*
 * Call @fn on each item of the list @s (separated by PW_ADDR_LIST_SEPS,
 * NUL-terminated in a copy), stopping at its first error; *@ret_bad then
 * points at the item in @s. An item longer than any address is -EINVAL.
 */
static int pw_addr_list_each(const char *s, int (*fn)(const char *item, void *arg), void *arg,
			     const char **ret_bad)
{
	char item[PW_ADDR_CIDR_STRLEN + 8];

	for (;;) {
		s += strspn(s, PW_ADDR_LIST_SEPS);
		if (!*s)
			return 0;
		size_t n = strcspn(s, PW_ADDR_LIST_SEPS);
		int r = -EINVAL;
		if (n < sizeof(item)) {
			memcpy(item, s, n);
			item[n] = '\0';
			r = fn(item, arg);
		}
		if (r < 0) {
			if (ret_bad)
				*ret_bad = s;
			return r;
		}
		s += n;
	}
}

struct pw_addr_list {
	void *v; /* struct sockaddr_in or struct pw_wire_prefix [max] */
	unsigned n, max, flags;
};

static int pw_addr_list_one(const char *item, void *arg)
{
	struct pw_addr_list *l = arg;

	if (l->n == l->max)
		return -E2BIG;
	int r = pw_addr_parse(item, (struct sockaddr_in *)l->v + l->n);
	l->n += r == 0;
	return r;
}

int pw_addr_list_parse(const char *s, struct sockaddr_in *ret, unsigned max, const char **ret_bad)
{
	struct pw_addr_list l = { .v = ret, .max = max };
	int r = pw_addr_list_each(s, pw_addr_list_one, &l, ret_bad);

	return r < 0 ? r : (int)l.n;
}

/* ---- prefixes (CIDR) ---- */

uint32_t pw_addr_mask(unsigned len)
{
	if (len >= 32)
		return ~0u;
	return len ? ~0u << (32 - len) : 0;
}

/* Clear the bits of @addr (@bytes long, network order) past the first @len. */
static void pw_addr_clear_host(uint8_t *addr, unsigned bytes, unsigned len)
{
	for (unsigned i = 0; i < bytes; i++) {
		unsigned keep = len > 8 * i ? len - 8 * i : 0;

		if (keep < 8)
			addr[i] &= (uint8_t)(0xff00u >> keep);
	}
}

int pw_addr_cidr_parse(const char *s, unsigned flags, struct pw_wire_prefix *ret)
{
	struct pw_wire_prefix p = { 0 };
	char ip[INET6_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);

	if (alen == 0 || alen >= sizeof(ip) || (!slash && !(flags & PW_ADDR_CIDR_HOST)))
		return -EINVAL;
	memcpy(ip, s, alen);
	ip[alen] = '\0';
	p.family = memchr(ip, ':', alen) ? AF_INET6 : AF_INET;
	if (p.family == AF_INET6 && !(flags & PW_ADDR_CIDR_INET6))
		return -EAFNOSUPPORT;
	if (inet_pton(p.family, ip, p.addr) != 1)
		return -EINVAL;
	long max = p.family == AF_INET ? 32 : 128;
	long len = slash ? pw_addr_number(slash + 1, strlen(slash + 1), max) : max;
	if (len < 0)
		return -EINVAL;
	p.len = (uint8_t)len;
	if (flags & PW_ADDR_CIDR_NET)
		pw_addr_clear_host(p.addr, p.family == AF_INET ? 4 : 16, p.len);
	*ret = p;
	return 0;
}

static int pw_addr_cidr_list_one(const char *item, void *arg)
{
	struct pw_addr_list *l = arg;

	if (l->n == l->max)
		return -E2BIG;
	int r = pw_addr_cidr_parse(item, l->flags, (struct pw_wire_prefix *)l->v + l->n);
	l->n += r == 0;
	return r;
}

int pw_addr_cidr_list_parse(const char *s, unsigned flags, struct pw_wire_prefix *ret, unsigned max,
			    const char **ret_bad)
{
	struct pw_addr_list l = { .v = ret, .max = max, .flags = flags };
	int r = pw_addr_list_each(s, pw_addr_cidr_list_one, &l, ret_bad);

	return r < 0 ? r : (int)l.n;
}

const char *pw_addr_cidr_format(const struct pw_wire_prefix *p,
				char buf[static PW_ADDR_CIDR_STRLEN])
{
	char ip[INET6_ADDRSTRLEN];

	if ((p->family != AF_INET && p->family != AF_INET6) ||
	    !inet_ntop(p->family, p->addr, ip, sizeof(ip)))
		strcpy(ip, "?");
	snprintf(buf, PW_ADDR_CIDR_STRLEN, "%s/%u", ip, p->len);
	return buf;
}

bool pw_addr_cidr_has(const struct pw_wire_prefix *p, const struct sockaddr_in *a)
{
	uint32_t net, mask = pw_addr_mask(p->len);

	if (p->family != AF_INET)
		return false;
	memcpy(&net, p->addr, 4);
	return (ntohl(a->sin_addr.s_addr) & mask) == (ntohl(net) & mask);
}

int pw_addr_cidr_match(const struct pw_wire_prefix *v, unsigned n, const struct sockaddr_in *a)
{
	int best = -1;

	for (unsigned i = 0; i < n; i++)
		if (v[i].len > best && pw_addr_cidr_has(&v[i], a))
			best = v[i].len;
	return best;
}

int pw_addr_unix(const char *path, struct sockaddr_un *ret)
{
	size_t len = strlen(path);

	if (len >= sizeof(ret->sun_path))
		return -ENAMETOOLONG;
	ret->sun_family = AF_UNIX;
	memcpy(ret->sun_path, path, len + 1);
	return 0;
}

const char *pw_addr_mac_format(const uint8_t mac[6], char buf[static PW_ADDR_MAC_STRLEN])
{
	snprintf(buf, PW_ADDR_MAC_STRLEN, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2],
		 mac[3], mac[4], mac[5]);
	return buf;
}
