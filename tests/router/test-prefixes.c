// SPDX-License-Identifier: MIT
/*
 * The router's prefix table (--prefix): what HELLO tells the library to
 * accelerate. A malformed --prefix is refused whole and never widens the
 * table; the table HELLO hands out holds exactly the destinations given.
 */
#include <errno.h>
#include <string.h>

#include "router_test.h"

/* The table as HELLO_OK carries it. */
static unsigned hello(struct pw_wire_prefix *v, unsigned max)
{
	static uint8_t buf[PW_WIRE_MAX] __attribute__((aligned(8)));
	struct pw_wire_hello h = { 0 };
	struct pw_client c;
	int peer = rt_client_open(&c, 1000);
	struct pw_msg m;

	PW_CHECK_EQ(pw_msg_send(peer, PW_MSG_HELLO, 5, &h, sizeof(h), NULL, 0, NULL, 0), 0);
	PW_CHECK_EQ(pw_client_serve(&c, pw_requests, pw_nrequests), 0);
	PW_CHECK_EQ(rt_reply(peer, &m, buf), 0);
	PW_CHECK_EQ(m.type, PW_MSG_HELLO_OK);
	PW_CHECK_EQ(m.u.hello_ok.node_version, PW_WIRE_VERSION);
	PW_CHECK(m.nentries <= max, "%u prefixes", m.nentries);
	for (uint32_t i = 0; i < m.nentries; i++)
		PW_CHECK_EQ(pw_msg_entry(&m, i, &v[i], sizeof(v[i])), 0);
	close(peer);
	close(c.fd);
	return m.nentries;
}

static bool accelerated(const struct pw_wire_prefix *v, unsigned n, const char *ip)
{
	struct sockaddr_in a = rt_sin(ip, 80);

	return pw_addr_cidr_match(v, n, &a) >= 0;
}

static void check_table(const char *want)
{
	struct pw_wire_prefix v[PW_WIRE_MAX_PREFIXES];
	char buf[PW_ADDR_CIDR_STRLEN], got[PW_WIRE_MAX_PREFIXES * PW_ADDR_CIDR_STRLEN] = "";
	unsigned n = hello(v, PW_WIRE_MAX_PREFIXES);
	size_t off = 0;

	for (unsigned i = 0; i < n; i++) {
		PW_CHECK_EQ(v[i].family, AF_INET);
		off += (size_t)snprintf(got + off, sizeof(got) - off, "%s%s", i ? " " : "",
					pw_addr_cidr_format(&v[i], buf));
	}
	PW_CHECK(!strcmp(got, want), "HELLO has \"%s\", want \"%s\"", got, want);
}

int main(void)
{
	static const char *const bad[] = {
		"198.0.0.0/x",
		"198.0.0.0/",
		"/8",
		"198.0.0.0/33",
		"198.0.0.0/8x",
		"",
		",",
		"198.0.0.0/8,198.1.0.0/x",
		"198.0.0.0/-1",
		"2001:db8::/32",
		"198.0.0.0/8;",
	};
	static const struct {
		const char *prefix, *table, *yes[2], *no[2];
	} good[] = {
		{ "198.18.0.0/15",
		  "198.18.0.0/15",
		  { "198.18.0.1", "198.19.255.254" },
		  { "198.20.0.1", "198.0.0.1" } },
		{ "198.1.2.3/8, 127.0.0.1",
		  "198.0.0.0/8 127.0.0.1/32",
		  { "198.200.0.1", "127.0.0.1" },
		  { "127.0.0.2", "11.0.0.1" } },
	};
	struct pw_wire_prefix v[PW_WIRE_MAX_PREFIXES];
	char many[PW_WIRE_MAX_PREFIXES * 16 + 32] = "";
	unsigned n;

	/* The default; host bits cleared, a bare address a /32, spaces
	 * allowed; and which destinations each table accelerates. */
	for (size_t i = 0; i < PW_ARRAY_SIZE(good); i++) {
		PW_CHECK_EQ(pw_router_prefixes_parse(good[i].prefix), 0);
		check_table(good[i].table);
		n = hello(v, PW_WIRE_MAX_PREFIXES);
		for (size_t k = 0; k < 2; k++) {
			PW_CHECK(accelerated(v, n, good[i].yes[k]), "%s", good[i].yes[k]);
			PW_CHECK(!accelerated(v, n, good[i].no[k]), "%s", good[i].no[k]);
		}
	}

	/* A bad --prefix is refused and leaves the table as it was: a typo
	 * never turns into /0 (every destination). */
	for (size_t i = 0; i < PW_ARRAY_SIZE(bad); i++) {
		if (pw_router_prefixes_parse(bad[i]) != -EINVAL)
			PW_FAIL("--prefix \"%s\" accepted", bad[i]);
		check_table("198.0.0.0/8 127.0.0.1/32");
	}

	/* At most PW_WIRE_MAX_PREFIXES. */
	for (unsigned i = 0; i < PW_WIRE_MAX_PREFIXES; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), "%s10.%u.0.0/16",
			 i ? "," : "", i);
	PW_CHECK_EQ(pw_router_prefixes_parse(many), 0);
	PW_CHECK_EQ(hello(v, PW_WIRE_MAX_PREFIXES), PW_WIRE_MAX_PREFIXES);
	snprintf(many + strlen(many), sizeof(many) - strlen(many), ",11.0.0.0/8");
	PW_CHECK_EQ(pw_router_prefixes_parse(many), -EINVAL);
	PW_CHECK_EQ(hello(v, PW_WIRE_MAX_PREFIXES), PW_WIRE_MAX_PREFIXES);
	return 0;
}
