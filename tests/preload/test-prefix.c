// SPDX-License-Identifier: MIT
/*
 * The prefix table: PODWIRE_PREFIX's form parsed strictly (a malformed value
 * accelerates nothing, never a wider prefix), the router's list taken with
 * its IPv6 and impossible entries skipped, lookups, and publication.
 */
#include "preload.h"
#include "pw_test.h"

struct pw_real_fns pw_real;
struct pw_cfg pw_cfg;

static struct sockaddr_in ip(const char *s)
{
	struct sockaddr_in a = { .sin_family = AF_INET };

	PW_CHECK(inet_pton(AF_INET, s, &a.sin_addr) == 1, "%s", s);
	return a;
}

static bool has(const struct pw_prefixes *t, const char *s)
{
	struct sockaddr_in a = ip(s);

	return pw_prefixes_has(t, &a);
}

static void test_parse_good(void)
{
	struct pw_prefixes t;
	const char *bad = NULL;

	PW_CHECK_EQ(pw_prefixes_parse("198.18.0.0/15, 198.1.2.3,198.20.7.9/24", &t, &bad), 0);
	PW_CHECK_EQ(t.n, 3);
	PW_CHECK(has(&t, "198.19.255.255") && has(&t, "198.18.0.1"), "the /15");
	PW_CHECK(!has(&t, "198.20.0.1") && !has(&t, "198.17.255.255"), "outside the /15");
	PW_CHECK(has(&t, "198.1.2.3") && !has(&t, "198.1.2.4"), "a bare address is a /32");
	PW_CHECK(has(&t, "198.20.7.200") && !has(&t, "198.20.8.1"), "host bits are cleared");
	PW_CHECK_EQ(pw_prefixes_parse("0.0.0.0/0", &t, &bad), 0);
	PW_CHECK(has(&t, "8.8.8.8"), "an explicit /0 is everything");
}

/* Each of these must be refused whole, and leave an empty table. */
static void test_parse_bad(void)
{
	static const char *const bad_values[] = {
		"198.0.0.0/x",	 "198.0.0.0/33",  "198.0.0.0/",	   "/8",
		"198.0.0.0/8x",	 "198.0.0.0/-1",  "198.0.0.0/ 8",  "198.0.0/8",
		"198.0.0.256/8", "198.0.0.0/08",  "2001:db8::/32", "198.18.0.0/15,198.0.0.0/x",
		"hello",	 "198.0.0.0/8/8", "198.0.0.0//8",
	};
	struct pw_prefixes t;
	const char *bad;

	for (size_t i = 0; i < PW_ARRAY_SIZE(bad_values); i++) {
		bad = NULL;
		t.n = 99;
		int r = pw_prefixes_parse(bad_values[i], &t, &bad);
		PW_CHECK(r == -EINVAL || r == -EAFNOSUPPORT, "\"%s\": %d", bad_values[i], r);
		PW_CHECK(t.n == 99, "\"%s\" touched the table", bad_values[i]);
		PW_CHECK(bad && bad >= bad_values[i] && bad < bad_values[i] + strlen(bad_values[i]),
			 "\"%s\": the bad item is not pointed at", bad_values[i]);
	}
	/* The bad item of a list is the one pointed at. */
	const char *v = "198.18.0.0/15,198.0.0.0/x";
	pw_prefixes_parse(v, &t, &bad);
	PW_CHECK(bad == v + 14, "points at \"%s\"", bad);

	char many[2048] = "";
	for (unsigned i = 0; i <= PW_WIRE_MAX_PREFIXES; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), "10.%u.0.0/16,", i);
	t.n = 99;
	PW_CHECK_EQ(pw_prefixes_parse(many, &t, &bad), -E2BIG);
	PW_CHECK_EQ(t.n, 99);
}

/* A HELLO_OK reply: IPv4 prefixes kept; IPv6 ones and lengths over 32
 * skipped. */
static void test_from_wire(void)
{
	struct pw_wire_prefix p[4] = {
		{ .family = AF_INET, .len = 16, .addr = { 198, 18, 0, 0 } },
		{ .family = AF_INET6, .len = 64, .addr = { 0x20, 0x01, 0x0d, 0xb8 } },
		{ .family = AF_INET, .len = 40, .addr = { 198, 0, 0, 0 } },
		{ .family = AF_INET, .len = 32, .addr = { 198, 9, 9, 9 } },
	};
	struct pw_wire_hello_ok ok = { .node_version = PW_WIRE_VERSION, .count = 4 };
	static uint8_t buf[PW_WIRE_MAX];
	struct pw_msg m;
	struct pw_prefixes t;
	int sv[2], fds[PW_WIRE_MAX_FDS];
	unsigned nfds;

	PW_CHECK_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	PW_CHECK_EQ(pw_msg_send(sv[0], PW_MSG_HELLO_OK, 1, &ok, sizeof(ok), p, sizeof(p), NULL, 0),
		    0);
	ssize_t n = pw_msg_recv(sv[1], buf, sizeof(buf), fds, &nfds, 0);
	PW_CHECK(n > 0, "recv: %zd", n);
	PW_CHECK_EQ(pw_msg_parse(buf, (size_t)n, nfds, &m), 0);
	close(sv[0]);
	close(sv[1]);
	pw_prefixes_from_wire(&m, &t);
	PW_CHECK_EQ(t.n, 2);
	PW_CHECK(has(&t, "198.18.200.1") && has(&t, "198.9.9.9"), "kept");
	PW_CHECK(!has(&t, "198.0.0.1") && !has(&t, "198.19.0.1"), "skipped or outside");
}

static void test_publish(void)
{
	struct pw_prefixes t;
	const char *bad;
	struct sockaddr_in a = ip("198.18.1.1"), b = ip("127.0.0.1");

	PW_CHECK(!pw_in_prefixes(&a), "nothing is accelerated before a table");
	PW_CHECK_EQ(pw_prefixes_parse("198.18.0.0/15", &t, &bad), 0);
	PW_CHECK_EQ(pw_prefixes_publish(&t), 0);
	t.n = 0; /* published by copy */
	PW_CHECK(pw_in_prefixes(&a) && !pw_in_prefixes(&b), "the /15 in use");
	PW_CHECK_EQ(pw_prefixes_parse("127.0.0.0/8", &t, &bad), 0);
	PW_CHECK_EQ(pw_prefixes_publish(&t), 0);
	PW_CHECK(!pw_in_prefixes(&a) && pw_in_prefixes(&b), "replaced");
	t.n = 0;
	PW_CHECK_EQ(pw_prefixes_publish(&t), 0);
	PW_CHECK(!pw_in_prefixes(&a) && !pw_in_prefixes(&b), "an empty table accelerates nothing");
}

int main(void)
{
	test_parse_good();
	test_parse_bad();
	test_from_wire();
	test_publish();
	return 0;
}
